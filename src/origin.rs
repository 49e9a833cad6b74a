//! The `Origin` check of socket handshakes (cross-site WebSocket hijacking defence). A leaf
//! module: the engine keeps the policy, the socket flow applies it.

use http::HeaderMap;

/// Which `Origin`s may open a socket (cross-site WebSocket hijacking defence).
#[derive(Debug, Clone, Default)]
pub(crate) struct OriginPolicy {
    /// Exact origins (`scheme://host[:port]`, lower case) accepted besides same-origin ones.
    allowed: Vec<String>,
    /// The site's scheme, known from its cookies: `https` when they are `Secure`.
    https: bool,
}

impl OriginPolicy {
    /// Same-origin handshakes plus `allowed` (normalised: trimmed, lower case, no `/`).
    pub(crate) fn new<I, O>(allowed: I) -> Self
    where
        I: IntoIterator<Item = O>,
        O: Into<String>,
    {
        Self {
            allowed: allowed
                .into_iter()
                .map(|o| o.into().trim().trim_end_matches('/').to_ascii_lowercase())
                .collect(),
            https: false,
        }
    }

    /// The site is served over https (its cookies are `Secure`): a same-origin page has an
    /// `https://` origin, and a plain `http://` page on the same host is another origin.
    pub(crate) fn https(mut self, on: bool) -> Self {
        self.https = on;
        self
    }

    /// See [`origin_allowed`].
    pub(crate) fn allows(&self, headers: &HeaderMap) -> bool {
        origin_allowed(self, headers)
    }
}

/// Accepts a handshake with no `Origin` (not a browser, or a same-origin browser request that
/// omitted it), one on the allowlist, or a same-origin one: the scheme the site's cookies
/// imply (`https` when `Secure`, else `http`), and the host and port of `Host` (a missing port
/// is the scheme's default).
fn origin_allowed(policy: &OriginPolicy, headers: &HeaderMap) -> bool {
    let mut origins = headers.get_all(http::header::ORIGIN).iter();
    let Some(origin) = origins.next() else {
        return true;
    };
    if origins.next().is_some() {
        return false; // more than one Origin: malformed
    }
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let origin = origin.trim().to_ascii_lowercase();
    if policy.allowed.contains(&origin) {
        return true;
    }
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false; // "null" and other opaque origins
    };
    let (default_port, https) = match scheme {
        "http" | "ws" => ("80", false),
        "https" | "wss" => ("443", true),
        _ => return false,
    };
    if https != policy.https {
        return false; // another scheme is another origin
    }
    let Some(host) = headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
    else {
        return false; // no Host (behind some proxies, HTTP/2): use `allowed_origins`
    };
    let (origin_host, origin_port) = split_port(authority, default_port);
    let (host, port) = split_port(host.trim(), default_port);
    origin_host.eq_ignore_ascii_case(host) && origin_port == port
}

/// `host[:port]` (IPv6 in brackets) into host and port, the default when absent, so that
/// `https://app.example` and `Host: app.example:443` compare equal.
fn split_port<'a>(authority: &'a str, default_port: &'a str) -> (&'a str, &'a str) {
    match authority.rsplit_once(':') {
        Some((host, port))
            if !port.is_empty()
                && port.bytes().all(|b| b.is_ascii_digit())
                && (!host.starts_with('[') || host.ends_with(']')) =>
        {
            (host, port)
        }
        _ => (authority, default_port),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, http::HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn origin_policy() {
        let none = OriginPolicy::default();
        let listed = OriginPolicy::new(["https://app.example"]);
        assert!(origin_allowed(&none, &headers(&[("host", "a.test:3000")])));
        assert!(origin_allowed(
            &none,
            &headers(&[("host", "a.test:3000"), ("origin", "http://a.test:3000")])
        ));
        assert!(origin_allowed(
            &none,
            &headers(&[("host", "A.test:3000"), ("origin", "http://a.TEST:3000")])
        ));
        assert!(!origin_allowed(
            &none,
            &headers(&[("host", "a.test:3000"), ("origin", "http://evil.test")])
        ));
        assert!(!origin_allowed(
            &none,
            &headers(&[("host", "a.test:3000"), ("origin", "http://a.test:3001")])
        ));
        assert!(!origin_allowed(
            &none,
            &headers(&[("host", "a.test"), ("origin", "null")])
        ));
        // Default ports compare equal to absent ones; other schemes and ports do not.
        let allowed = |host: &'static str, origin: &'static str| {
            origin_allowed(&none, &headers(&[("host", host), ("origin", origin)]))
        };
        let secure = OriginPolicy::default().https(true);
        let allowed_secure = |host: &'static str, origin: &'static str| {
            origin_allowed(&secure, &headers(&[("host", host), ("origin", origin)]))
        };
        assert!(allowed_secure("a.test:443", "https://a.test"));
        assert!(allowed("a.test", "http://a.test:80"));
        assert!(!allowed_secure("a.test:8443", "https://a.test"));
        // The scheme counts: with Secure cookies a plain-http page is another origin, and a
        // plain-http site does not take an https page's socket either.
        assert!(!allowed_secure("a.test", "http://a.test"));
        assert!(!allowed_secure("a.test:80", "http://a.test"));
        assert!(!allowed("a.test:443", "https://a.test"));
        assert!(allowed("[::1]:3000", "http://[::1]:3000"));
        assert!(!allowed("[::1]", "http://[::1]:3000"));
        assert!(!allowed("a.test", "ftp://a.test"));
        assert!(!origin_allowed(
            &none,
            &headers(&[("origin", "http://a.test")])
        ));
        assert!(origin_allowed(
            &listed,
            &headers(&[("host", "a.test"), ("origin", "https://app.example")])
        ));
        assert!(!origin_allowed(
            &listed,
            &headers(&[
                ("host", "a.test"),
                ("origin", "https://app.example"),
                ("origin", "https://app.example")
            ])
        ));
    }

    /// S1 (the handshake's `Origin` check): an IPv6 host in brackets splits at the `:` after
    /// its `]`, never at one inside the address, so a default port written out or left out
    /// compares equal for it as for a name.
    #[test]
    fn s1_an_ipv6_host_splits_after_its_bracket() {
        let none = OriginPolicy::default();
        let allowed = |host: &'static str, origin: &'static str| {
            origin_allowed(&none, &headers(&[("host", host), ("origin", origin)]))
        };
        assert!(allowed("[::1]:80", "http://[::1]"));
        assert!(allowed("[::1]", "http://[::1]:80"));
        assert!(allowed("[::1]:3000", "http://[::1]:3000"));
        assert!(!allowed("[::1]:3001", "http://[::1]:3000"));
        assert!(!allowed("[::1]", "http://[::2]"));
        assert_eq!(split_port("[::1]:3000", "80"), ("[::1]", "3000"));
        assert_eq!(split_port("[::1]", "80"), ("[::1]", "80"));
        assert_eq!(split_port("[2001:db8::7]", "443"), ("[2001:db8::7]", "443"));
    }

    /// S1: only digits after the last `:` are a port. An empty or non-numeric one is not
    /// split off: the authority stays whole (so it equals no well-formed one) with the
    /// default port.
    #[test]
    fn s1_an_empty_or_non_numeric_port_is_not_a_port() {
        assert_eq!(split_port("a.test:", "80"), ("a.test:", "80"));
        assert_eq!(split_port("a.test:abc", "80"), ("a.test:abc", "80"));
        assert_eq!(split_port("a.test:3000", "80"), ("a.test", "3000"));
        assert_eq!(split_port("a.test", "443"), ("a.test", "443"));
        let none = OriginPolicy::default();
        let allowed = |host: &'static str, origin: &'static str| {
            origin_allowed(&none, &headers(&[("host", host), ("origin", origin)]))
        };
        assert!(!allowed("a.test:", "http://a.test"));
        assert!(!allowed("a.test:abc", "http://a.test"));
        assert!(!allowed("a.test", "http://a.test:abc"));
    }
}

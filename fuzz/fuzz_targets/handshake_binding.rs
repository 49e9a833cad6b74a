//! Socket handshake binding (SPEC S1, S2, H2, C1, C4, X1, L2) and the Origin check.
//!
//! Each run builds a bridge and two browsers `A` and `B`, both with stored sessions, made
//! through the public API. The structured input builds a handshake: `Cookie` lines whose
//! pairs are A's or B's real cookie values (as they are, under the other cookie name, or
//! mutated: truncated, a byte flipped, a byte appended, quoted, padded with spaces) and junk
//! pairs; an `Origin` (scheme, host, port; `null`; an opaque value; none; two of them) and a
//! `Host` (host, port; none). Then `bind_socket`, and:
//!
//! - Origin: when an `Origin` is cross-site (its scheme is not http(s)/ws(s), or its host or
//!   effective port differs from `Host`'s, or there is no `Host`, or it is not a
//!   `scheme://host` at all), the bind is `Err(Error::ForbiddenOrigin)`; with exactly one
//!   same-site `Origin`, or none, it binds.
//! - Binding (checked on the handshake as built, when it binds, and always on the same
//!   handshake without `Origin`/`Host`): what the socket sees is A's session, B's session or
//!   nothing; A's only when the headers carry A's exact session pair (the client cookie alone
//!   never yields the session held at the handshake) and A's exact client pair; B's likewise;
//!   the socket's client id is A's, B's or none, and only when the headers carry that exact
//!   client pair; a socket bound to A's client never sees B's session and vice versa;
//!   `session_id()` names the session it sees, or none.
//! - Liveness: when the handshake carries A's exact pairs and none of B's, in visible ASCII,
//!   the socket sees A's session. Junk values never hide them (C6: only values of the right
//!   shape count towards the 8 candidates verified per name).
//! - Two planted pairs (C4): when the handshake carries both A's and B's complete pairs, the
//!   socket sees neither session.
//! - The attacker's moves before the handshake (H2, issue 18): a request with only A's (or
//!   B's) client cookie reads nothing and, when it writes, is answered with another client
//!   id; the session it creates is nobody's the handshake can reach.
//! - Afterwards, A's and B's own cookies still see their own sessions over HTTP.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};
use session_bridge::{Error, SessionBridge, SocketSession, id::SequentialIdGen};

const SESSION: &str = "app.sid";
const CLIENT: &str = "app.sid.cid";
const MAX_PAIRS: usize = 12;

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Who {
    A,
    B,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Which {
    Client,
    Session,
}

#[derive(Arbitrary, Debug)]
enum Edit {
    Truncate(u8),
    Flip { at: u8, xor: u8 },
    Append(u8),
    Quote,
    Pad,
}

#[derive(Arbitrary, Debug)]
enum Pair {
    /// A real value under its own name.
    Real(Who, Which),
    /// A real value under the other cookie name.
    Swapped(Who, Which),
    /// A real value, edited.
    Edited(Who, Which, Edit),
    /// `name=<bytes>` with one of our names, another name or none (`len % 17` bytes).
    Junk { name: u8, bytes: [u8; 16], len: u8 },
}

/// The `Cookie` lines as a flat list (seed files stay easy to write by hand).
#[derive(Arbitrary, Debug)]
enum Item {
    Pair(Pair),
    /// Starts a new `Cookie` header line.
    NewLine,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Scheme {
    Http,
    Https,
    Ws,
    Wss,
    Ftp,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum HostName {
    App,
    AppUpper,
    Sub,
    Evil,
    Ipv6,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Port {
    None,
    P80,
    P443,
    P3000,
    Any(u16),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
struct Authority {
    host: HostName,
    port: Port,
}

#[derive(Arbitrary, Debug)]
enum Origin {
    Absent,
    One(Scheme, Authority),
    Two((Scheme, Authority), (Scheme, Authority)),
    Null,
    /// Bytes with neither `:` nor `/`: never a `scheme://host` origin.
    Opaque([u8; 12]),
}

/// What an attacker holding only a browser's client cookie does before the handshake.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Move {
    /// An HTTP request that reads the session.
    ClientOnlyRead(Who),
    /// An HTTP request that writes the session (capture through the mapping, attack 1).
    ClientOnlyWrite(Who),
}

#[derive(Arbitrary, Debug)]
struct Input {
    moves: Vec<Move>,
    origin: Origin,
    host: Option<Authority>,
    items: Vec<Item>,
}

struct Owner {
    cid: String,
    sid: String,
    client: String,
    session: String,
    data: Map<String, Value>,
}

impl Owner {
    fn value(&self, which: Which) -> &str {
        match which {
            Which::Client => &self.client,
            Which::Session => &self.session,
        }
    }
}

fn name_of(which: Which) -> &'static str {
    match which {
        Which::Client => CLIENT,
        Which::Session => SESSION,
    }
}

fn other(which: Which) -> Which {
    match which {
        Which::Client => Which::Session,
        Which::Session => Which::Client,
    }
}

fn set_cookie_pairs(headers: &http::HeaderMap) -> Vec<(String, String)> {
    headers
        .get_all(http::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

async fn new_owner(bridge: &SessionBridge, who: &str) -> Owner {
    let data = json!({ "owner": who }).as_object().cloned().unwrap();
    let ctx = bridge.begin_request(&http::HeaderMap::new());
    ctx.session()
        .replace(data.clone())
        .await
        .expect("new session");
    let cid = ctx.client_id().into_string();
    let sid = ctx
        .session()
        .session_id()
        .await
        .expect("no store call")
        .expect("H6: a written session has its id")
        .into_string();
    let mut out = http::HeaderMap::new();
    ctx.commit(&mut out).await.expect("commit of a new session");
    let pairs = set_cookie_pairs(&out);
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .expect("the first response sets both cookies")
    };
    Owner {
        cid,
        sid,
        client: get(CLIENT),
        session: get(SESSION),
        data,
    }
}

fn pair_bytes(pair: &Pair, a: &Owner, b: &Owner) -> Vec<u8> {
    let owner = |who: Who| match who {
        Who::A => a,
        Who::B => b,
    };
    match pair {
        Pair::Real(who, which) => {
            format!("{}={}", name_of(*which), owner(*who).value(*which)).into_bytes()
        }
        Pair::Swapped(who, which) => {
            format!("{}={}", name_of(other(*which)), owner(*who).value(*which)).into_bytes()
        }
        Pair::Edited(who, which, edit) => {
            let mut v = owner(*who).value(*which).as_bytes().to_vec();
            match *edit {
                Edit::Truncate(n) => v.truncate(usize::from(n) % v.len().max(1)),
                Edit::Flip { at, xor } => {
                    let at = usize::from(at) % v.len().max(1);
                    if let Some(byte) = v.get_mut(at) {
                        *byte ^= xor.max(1);
                    }
                }
                Edit::Append(byte) => v.push(byte),
                Edit::Quote => {
                    v.insert(0, b'"');
                    v.push(b'"');
                }
                Edit::Pad => {
                    v.insert(0, b' ');
                    v.push(b' ');
                }
            }
            [name_of(*which).as_bytes(), b"=", &v].concat()
        }
        Pair::Junk { name, bytes, len } => {
            let names: [&[u8]; 4] = [SESSION.as_bytes(), CLIENT.as_bytes(), b"theme", b""];
            let mut out = names[usize::from(*name) % names.len()].to_vec();
            out.push(b'=');
            out.extend(&bytes[..usize::from(*len) % 17]);
            out
        }
    }
}

/// The `(name, value)` pairs an RFC 6265 reader finds: split at `;`, name and value trimmed of
/// spaces and tabs, one pair of quotes around the value removed. The bridge may see fewer
/// (a malformed line or pair skipped), never others.
fn pairs(lines: &[Vec<u8>]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let trim = |s: &[u8]| -> Vec<u8> {
        let is_ws = |b: &u8| *b == b' ' || *b == b'\t';
        let start = s.iter().position(|b| !is_ws(b)).unwrap_or(s.len());
        let end = s.iter().rposition(|b| !is_ws(b)).map_or(start, |e| e + 1);
        s[start..end].to_vec()
    };
    let mut out = Vec::new();
    for line in lines {
        for piece in line.split(|&b| b == b';') {
            let Some(eq) = piece.iter().position(|&b| b == b'=') else {
                continue;
            };
            let name = trim(&piece[..eq]);
            let mut value = trim(&piece[eq + 1..]);
            if value.len() >= 2 && value[0] == b'"' && value[value.len() - 1] == b'"' {
                value = value[1..value.len() - 1].to_vec();
            }
            out.push((name, value));
        }
    }
    out
}

fn host_text(a: Authority) -> String {
    let host = match a.host {
        HostName::App => "app.example",
        HostName::AppUpper => "App.EXAMPLE",
        HostName::Sub => "sub.app.example",
        HostName::Evil => "evil.example",
        HostName::Ipv6 => "[::1]",
    };
    match port_number(a.port) {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    }
}

fn port_number(p: Port) -> Option<u16> {
    match p {
        Port::None => None,
        Port::P80 => Some(80),
        Port::P443 => Some(443),
        Port::P3000 => Some(3000),
        Port::Any(n) => Some(n),
    }
}

fn scheme_text(s: Scheme) -> &'static str {
    match s {
        Scheme::Http => "http",
        Scheme::Https => "https",
        Scheme::Ws => "ws",
        Scheme::Wss => "wss",
        Scheme::Ftp => "ftp",
    }
}

/// RFC 6454 same-origin of an `Origin` (scheme, authority) with the request's `Host`: the
/// site's scheme (the bridge's cookies are `Secure`, so the site is https: an `http`/`ws`
/// page is another origin), equal hosts (ASCII case-insensitive) and equal effective ports.
fn same_site(scheme: Scheme, origin: Authority, host: Option<Authority>) -> bool {
    let Some(host) = host else { return false };
    let default = match scheme {
        Scheme::Https | Scheme::Wss => 443,
        Scheme::Http | Scheme::Ws | Scheme::Ftp => return false,
    };
    let name = |h: HostName| {
        host_text(Authority {
            host: h,
            port: Port::None,
        })
        .to_ascii_lowercase()
    };
    name(origin.host) == name(host.host)
        && port_number(origin.port).unwrap_or(default) == port_number(host.port).unwrap_or(default)
}

/// What the socket sees, through its public handle.
async fn view(socket: &SocketSession) -> (Option<String>, Option<String>, Map<String, Value>) {
    let data = socket
        .with_session_or_else(async |ctx| ctx.data().clone(), Map::new)
        .await
        .expect("with_session never fails on cookie input (LiveStore)");
    (
        socket.client_id().map(|c| c.into_string()),
        socket
            .session_id()
            .await
            .expect("mapping")
            .map(|s| s.into_string()),
        data,
    )
}

fn check_binding(
    label: &str,
    seen: &(Option<String>, Option<String>, Map<String, Value>),
    found: &[(Vec<u8>, Vec<u8>)],
    expect_a: bool,
    a: &Owner,
    b: &Owner,
) {
    let carries = |name: &str, value: &str| {
        found
            .iter()
            .any(|(k, v)| k == name.as_bytes() && v == value.as_bytes())
    };
    let (cid, sid, data) = seen;
    for (me, you, tag) in [(a, b, "A"), (b, a, "B")] {
        if cid.as_deref() == Some(me.cid.as_str()) {
            assert!(
                carries(CLIENT, &me.client),
                "{label}: bound to {tag}'s client id without {tag}'s exact client pair"
            );
            assert_ne!(
                *data, you.data,
                "{label}: a socket of {tag}'s client sees the other browser's session"
            );
        }
        if *data == me.data {
            assert!(
                carries(SESSION, &me.session),
                "{label}: S1: {tag}'s session without {tag}'s exact session pair"
            );
            assert!(
                carries(CLIENT, &me.client),
                "{label}: {tag}'s session without {tag}'s exact client pair"
            );
            assert_eq!(
                cid.as_deref(),
                Some(me.cid.as_str()),
                "{label}: {tag}'s session on a socket of another client"
            );
            assert_eq!(
                sid.as_deref(),
                Some(me.sid.as_str()),
                "{label}: S2: session_id() does not name the session the socket sees"
            );
        }
    }
    if *data != a.data && *data != b.data {
        assert!(data.is_empty(), "{label}: a session nobody has: {data:?}");
        assert_eq!(*sid, None, "{label}: a session id without a session");
    }
    assert!(
        cid.is_none() || *cid == Some(a.cid.clone()) || *cid == Some(b.cid.clone()),
        "{label}: a client id nobody has"
    );
    if expect_a {
        assert_eq!(
            *data, a.data,
            "{label}: A's exact pairs and none of B's, yet not A's session"
        );
    }
}

/// C6's cheap shape of one of our signed values: a 32-character id and a 43-character
/// signature, both URL-safe base64, joined by one `.`.
fn shaped(v: &[u8]) -> bool {
    let url_safe = |b: &u8| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_';
    v.len() == 76 && v[32] == b'.' && v[..32].iter().all(url_safe) && v[33..].iter().all(url_safe)
}

/// An attacker's request carrying only `who`'s client cookie (H2, S1).
async fn client_only(bridge: &SessionBridge, who: &Owner, write: bool) {
    let mut h = http::HeaderMap::new();
    let line = format!("{CLIENT}={}", who.client);
    h.insert(http::header::COOKIE, line.parse().expect("valid header"));
    let ctx = bridge.begin_request(&h);
    let seen = ctx.session().data().await.expect("LiveStore never fails");
    assert!(
        seen.is_empty(),
        "H2: the client cookie alone yielded a session: {seen:?}"
    );
    if write {
        ctx.session()
            .insert("evil", true)
            .await
            .expect("LiveStore never fails");
    }
    let mut out = http::HeaderMap::new();
    ctx.commit(&mut out).await.expect("LiveStore never fails");
    if write {
        let client = set_cookie_pairs(&out)
            .into_iter()
            .find(|(k, _)| k == CLIENT)
            .map(|(_, v)| v);
        assert!(
            client.is_some_and(|c| c != who.client),
            "H2: a session created with only a held client cookie kept that client id"
        );
    }
}

async fn http_sees(bridge: &SessionBridge, who: &Owner) -> Map<String, Value> {
    let mut h = http::HeaderMap::new();
    let line = format!("{CLIENT}={}; {SESSION}={}", who.client, who.session);
    h.insert(http::header::COOKIE, line.parse().expect("valid header"));
    let ctx = bridge.begin_request(&h);
    let data = ctx.session().data().await.expect("LiveStore never fails");
    ctx.commit(&mut http::HeaderMap::new())
        .await
        .expect("read-only commit");
    data
}

fuzz_target!(|input: Input| {
    let mut lines_in: Vec<Vec<&Pair>> = vec![Vec::new()];
    for item in &input.items {
        match item {
            Item::Pair(p) => lines_in.last_mut().expect("one line").push(p),
            Item::NewLine => lines_in.push(Vec::new()),
        }
    }
    let total: usize = lines_in.iter().map(Vec::len).sum();
    if lines_in.len() > 4 || total > MAX_PAIRS || input.moves.len() > 3 {
        return;
    }
    let bridge = SessionBridge::builder()
        .key(SESSION)
        .keys([[7u8; 32]])
        .ids(SequentialIdGen::new("h"))
        .build()
        .expect("valid options");
    futures::executor::block_on(async {
        let a = new_owner(&bridge, "A").await;
        let b = new_owner(&bridge, "B").await;
        for m in &input.moves {
            match *m {
                Move::ClientOnlyRead(Who::A) => client_only(&bridge, &a, false).await,
                Move::ClientOnlyRead(Who::B) => client_only(&bridge, &b, false).await,
                Move::ClientOnlyWrite(Who::A) => client_only(&bridge, &a, true).await,
                Move::ClientOnlyWrite(Who::B) => client_only(&bridge, &b, true).await,
            }
        }

        let lines: Vec<Vec<u8>> = lines_in
            .iter()
            .filter(|line| !line.is_empty())
            .map(|line| {
                line.iter()
                    .map(|p| pair_bytes(p, &a, &b))
                    .collect::<Vec<_>>()
                    .join(&b"; "[..])
            })
            .collect();
        let mut cookies = http::HeaderMap::new();
        for line in &lines {
            // A request can only carry valid header bytes.
            let Ok(value) = http::HeaderValue::from_bytes(line) else {
                return;
            };
            cookies.append(http::header::COOKIE, value);
        }
        let found = pairs(&lines);
        let carries = |name: &str, value: &str| {
            found
                .iter()
                .any(|(k, v)| k == name.as_bytes() && v == value.as_bytes())
        };
        let visible_ascii = lines
            .iter()
            .flatten()
            .all(|&b| b == b'\t' || (b' '..=b'~').contains(&b));
        // C6: at most 8 values of one name are verified, counting only values of the right
        // shape (malformed pairs the bridge skips only move A's earlier), so "among the first
        // 8 shaped values of that name" is a safe claim.
        let within_cap = |name: &str, value: &str| {
            found
                .iter()
                .filter(|(k, v)| k == name.as_bytes() && shaped(v))
                .take(8)
                .any(|(_, v)| v == value.as_bytes())
        };
        let expect_a = within_cap(CLIENT, &a.client)
            && within_cap(SESSION, &a.session)
            && !carries(CLIENT, &b.client)
            && !carries(SESSION, &b.session)
            && visible_ascii;
        // C4: both complete pairs, both verified: neither session is trusted.
        let two_pairs = within_cap(CLIENT, &a.client)
            && within_cap(SESSION, &a.session)
            && within_cap(CLIENT, &b.client)
            && within_cap(SESSION, &b.session)
            && visible_ascii;

        // The handshake as built: Origin and Host.
        let mut handshake = cookies.clone();
        if let Some(host) = input.host {
            handshake.insert(http::header::HOST, host_text(host).parse().unwrap());
        }
        let origin_text =
            |s: Scheme, a: Authority| format!("{}://{}", scheme_text(s), host_text(a));
        let allowed = match &input.origin {
            Origin::Absent => Some(true),
            Origin::One(s, o) => {
                handshake.insert(http::header::ORIGIN, origin_text(*s, *o).parse().unwrap());
                Some(same_site(*s, *o, input.host))
            }
            Origin::Two((s1, o1), (s2, o2)) => {
                handshake.append(http::header::ORIGIN, origin_text(*s1, *o1).parse().unwrap());
                handshake.append(http::header::ORIGIN, origin_text(*s2, *o2).parse().unwrap());
                // Forbidden when either is cross-site; two same-site ones: unspecified.
                (!same_site(*s1, *o1, input.host) || !same_site(*s2, *o2, input.host))
                    .then_some(false)
            }
            Origin::Null => {
                handshake.insert(http::header::ORIGIN, "null".parse().unwrap());
                Some(false)
            }
            Origin::Opaque(bytes) => {
                let text: Vec<u8> = bytes
                    .iter()
                    .map(|b| b"abcdefghijklmnopqrstuvwxyz.-_[]@%"[usize::from(*b) % 33])
                    .collect();
                handshake.insert(
                    http::header::ORIGIN,
                    http::HeaderValue::from_bytes(&text).unwrap(),
                );
                Some(false)
            }
        };
        let result = bridge.bind_socket(&handshake).await;
        match (allowed, &result) {
            (Some(false), Err(Error::ForbiddenOrigin)) | (None, _) => {}
            (Some(false), Ok(_)) => panic!("a cross-site handshake bound: {:?}", input.origin),
            (Some(false), Err(e)) => panic!("a cross-site handshake failed otherwise: {e}"),
            (Some(true), Ok(_)) => {}
            (Some(true), Err(e)) => panic!("a same-site handshake was refused: {e}"),
        }
        if let Ok(socket) = &result {
            let seen = view(socket).await;
            check_binding("handshake", &seen, &found, expect_a, &a, &b);
            assert!(
                !two_pairs || seen.2.is_empty(),
                "C4: two planted complete pairs, yet a session was trusted"
            );
        }
        // The same cookies without Origin/Host: the binding is always checked.
        let socket = bridge
            .bind_socket(&cookies)
            .await
            .expect("S1: a handshake without Origin binds");
        let seen = view(&socket).await;
        check_binding("handshake without Origin", &seen, &found, expect_a, &a, &b);
        assert!(
            !two_pairs || seen.2.is_empty(),
            "C4: two planted complete pairs, yet a session was trusted (no Origin)"
        );

        assert_eq!(
            http_sees(&bridge, &a).await,
            a.data,
            "A still sees A's session"
        );
        assert_eq!(
            http_sees(&bridge, &b).await,
            b.data,
            "B still sees B's session"
        );
    });
});

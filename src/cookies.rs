//! Signed cookies (SPEC C1-C4): reading `Cookie` headers, verifying, writing `Set-Cookie`.
//!
//! Wire format: `<id>.<sig>`, where `<sig>` is base64url (no padding) of
//! HMAC-SHA256(key, `<cookie name>=<id>`). The cookie NAME is inside the MAC, so a value copied
//! into another cookie (say the client cookie into the session cookie) does not verify. This is
//! why the `cookie` crate's `SignedJar` (which signs the value only) is not used for signing;
//! the crate is used to build the `Set-Cookie` attributes.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cookie::{Cookie, SameSite};
use hmac::{KeyInit, Mac};
use http::{HeaderMap, HeaderValue, header};

use crate::error::Error;
use crate::id::{IdGen, IdTag};
use crate::verified::{CookieKind, DEFAULT_SLOTS, VerifiedCache};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// Owner tags (ST2): their own domain label, so they never equal a room or log tag.
const OWNER_TAG_DOMAIN: &str = "record-owner";
/// 22 base64url chars = 132 bits: no collision between clients in practice.
const OWNER_TAG_LEN: usize = 22;
/// Length of the base64url signature of a cookie.
const SIG_LEN: usize = 43;

/// A signing key of at least [`Key::MIN_LEN`] bytes. `Debug` prints nothing of it.
///
/// ```
/// use session_bridge::Key;
/// assert!(Key::try_from(&[1u8; 32][..]).is_ok());
/// assert!(Key::try_from(&b"too short"[..]).is_err());
/// assert_eq!(format!("{:?}", Key::generate()), "Key(..)");
/// ```
#[derive(Clone)]
pub struct Key {
    /// HMAC state with the key already absorbed: cloning it skips the key setup (two SHA-256
    /// blocks) on every signature.
    keyed: HmacSha256,
}

impl Key {
    /// Minimum length of a signing key in bytes.
    ///
    /// ```
    /// use session_bridge::Key;
    /// assert!(Key::try_from(vec![7u8; Key::MIN_LEN]).is_ok());
    /// assert!(Key::try_from(vec![7u8; Key::MIN_LEN - 1]).is_err());
    /// ```
    pub const MIN_LEN: usize = 32;

    /// A random 32-byte key. Cookies signed with it die with the process: prefer fixed keys.
    ///
    /// ```
    /// use session_bridge::Key;
    /// let key = Key::generate();
    /// assert_eq!(format!("{key:?}"), "Key(..)", "Debug never shows the bytes");
    /// ```
    pub fn generate() -> Self {
        Self::from_bytes(crate::id::random_bytes::<32>().to_vec())
    }

    fn from_bytes(bytes: Vec<u8>) -> Self {
        // HMAC accepts keys of any length, so this never fails; keep a total function anyway.
        let keyed = HmacSha256::new_from_slice(&bytes)
            .unwrap_or_else(|_| HmacSha256::new(&Default::default()));
        Self { keyed }
    }

    fn mac(&self) -> HmacSha256 {
        self.keyed.clone()
    }

    /// The HMAC keyed with this key (tags are made from clones of it).
    pub(crate) fn keyed(&self) -> &HmacSha256 {
        &self.keyed
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(..)")
    }
}

impl TryFrom<&[u8]> for Key {
    type Error = Error;
    fn try_from(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() < Self::MIN_LEN {
            return Err(Error::option(
                "keys",
                format!(
                    "a signing key must be at least {} bytes, got {}",
                    Self::MIN_LEN,
                    bytes.len()
                ),
            ));
        }
        Ok(Key::from_bytes(bytes.to_vec()))
    }
}

impl TryFrom<Vec<u8>> for Key {
    type Error = Error;
    fn try_from(bytes: Vec<u8>) -> Result<Self, Error> {
        Key::try_from(bytes.as_slice())
    }
}

impl TryFrom<&str> for Key {
    type Error = Error;
    fn try_from(text: &str) -> Result<Self, Error> {
        Key::try_from(text.as_bytes())
    }
}

/// A key read from configuration (`SESSION_KEYS`): its UTF-8 bytes.
impl TryFrom<String> for Key {
    type Error = Error;
    fn try_from(text: String) -> Result<Self, Error> {
        Key::try_from(text.into_bytes())
    }
}

impl<const N: usize> TryFrom<[u8; N]> for Key {
    type Error = Error;
    fn try_from(bytes: [u8; N]) -> Result<Self, Error> {
        Key::try_from(&bytes[..])
    }
}

/// Signing keys, newest first: sign with the first, verify with any (SPEC C2).
#[derive(Clone, Debug)]
pub(crate) struct KeyRing {
    keys: Vec<Key>,
}

/// A verified cookie value.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Verified {
    id: String,
    /// Verified with an older key: re-send it signed with the newest (C2).
    stale_key: bool,
}

impl KeyRing {
    pub(crate) fn new(keys: Vec<Key>) -> Option<Self> {
        (!keys.is_empty()).then_some(Self { keys })
    }

    pub(crate) fn newest(&self) -> &Key {
        // `new` refuses an empty ring.
        &self.keys[0]
    }

    fn signature(key: &Key, name: &str, id: &str) -> HmacSha256 {
        #[cfg(test)]
        tests::MACS.with(|n| n.set(n.get() + 1));
        let mut mac = key.mac();
        mac.update(name.as_bytes());
        mac.update(b"=");
        mac.update(id.as_bytes());
        mac
    }

    /// `<id>.<sig>` for cookie `name` (C1).
    pub(crate) fn sign(&self, name: &str, id: &str) -> String {
        let tag = Self::signature(self.newest(), name, id)
            .finalize()
            .into_bytes();
        format!("{id}.{}", URL_SAFE_NO_PAD.encode(tag))
    }

    /// C2: split at the last `.`, check the id's shape, compare the MAC in constant time
    /// against each key, newest first.
    fn verify(&self, name: &str, value: &str, ids: &dyn IdGen) -> Option<Verified> {
        let (id, sig) = value.rsplit_once('.')?;
        if sig.len() != SIG_LEN || !ids.is_valid(id) {
            return None;
        }
        // Decoded on the stack: a signature is 32 bytes.
        let mut buf = [0u8; 48];
        let len = URL_SAFE_NO_PAD.decode_slice(sig, &mut buf).ok()?;
        let sig = buf.get(..len)?;
        self.keys.iter().enumerate().find_map(|(i, key)| {
            Self::signature(key, name, id)
                .verify_slice(sig)
                .ok()
                .map(|()| Verified {
                    id: id.to_owned(),
                    stale_key: i > 0,
                })
        })
    }
}

/// At most this many values of one cookie name are verified per request (C6): a header
/// stuffed with candidates costs a bounded number of MACs. Only values of the right shape
/// count towards it, so junk values cannot push a real cookie out.
pub(crate) const MAX_CANDIDATES: usize = 8;

/// The values of cookie `name` in the request's `Cookie` headers that pass `shape`, in order
/// (C4), at most [`MAX_CANDIDATES`].
///
/// Parsed byte by byte (C6): a malformed pair (no `=`, a byte outside visible ASCII) is skipped
/// on its own and the other pairs of the line still count. One pass over the header; nothing
/// allocates except the returned slices' vector.
pub(crate) fn request_values<'h>(
    headers: &'h HeaderMap,
    name: &str,
    shape: impl Fn(&str) -> bool,
) -> Vec<&'h str> {
    let [values, _] = request_values_of(headers, [name, name], shape);
    values.into_iter().collect()
}

/// Up to [`MAX_CANDIDATES`] values of one cookie name, kept inline: reading a request's
/// cookies allocates nothing for them.
pub(crate) struct Candidates<'h> {
    values: [&'h str; MAX_CANDIDATES],
    len: usize,
}

impl<'h> Candidates<'h> {
    fn new() -> Self {
        Self {
            values: [""; MAX_CANDIDATES],
            len: 0,
        }
    }

    /// Keeps `value` unless [`MAX_CANDIDATES`] are kept already (C6).
    fn push(&mut self, value: &'h str) {
        if let Some(slot) = self.values.get_mut(self.len) {
            *slot = value;
            self.len += 1;
        }
    }
}

impl<'h> IntoIterator for Candidates<'h> {
    type Item = &'h str;
    type IntoIter = std::iter::Take<std::array::IntoIter<&'h str, MAX_CANDIDATES>>;
    fn into_iter(self) -> Self::IntoIter {
        self.values.into_iter().take(self.len)
    }
}

/// [`request_values`] of two names in one pass over the headers. `shape` is checked before
/// a value is kept, so the cap counts only candidates of the right shape (C6).
pub(crate) fn request_values_of<'h>(
    headers: &'h HeaderMap,
    names: [&str; 2],
    shape: impl Fn(&str) -> bool,
) -> [Candidates<'h>; 2] {
    let mut out = [Candidates::new(), Candidates::new()];
    let wanted = names.map(str::as_bytes);
    for value in headers.get_all(header::COOKIE) {
        let mut rest = value.as_bytes();
        while !rest.is_empty() {
            // memchr: the line is scanned a word at a time, not a byte at a time.
            let end = memchr::memchr(b';', rest).unwrap_or(rest.len());
            let pair = &rest[..end];
            rest = rest.get(end + 1..).unwrap_or_default();
            let Some(eq) = memchr::memchr(b'=', pair) else {
                continue;
            };
            let k = trim(&pair[..eq]);
            let Some(slot) = wanted.iter().position(|w| *w == k) else {
                continue;
            };
            let v = trim(&pair[eq + 1..]);
            // RFC 6265 allows a quoted value.
            let v = v
                .strip_prefix(b"\"")
                .and_then(|v| v.strip_suffix(b"\""))
                .unwrap_or(v);
            // Only visible ASCII: anything else is not one of our values (and not UTF-8
            // safe). A fold without an early exit, which the compiler vectorizes.
            if !v.iter().fold(true, |ok, b| ok & b.is_ascii_graphic()) {
                continue;
            }
            let Ok(v) = std::str::from_utf8(v) else {
                continue;
            };
            if !shape(v) {
                continue;
            }
            if let Some(values) = out.get_mut(slot) {
                values.push(v);
            }
        }
    }
    out
}

/// `bytes` without leading and trailing spaces and tabs.
fn trim(bytes: &[u8]) -> &[u8] {
    let is_space = |b: &u8| *b == b' ' || *b == b'\t';
    let start = bytes
        .iter()
        .position(|b| !is_space(b))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_space(b))
        .map_or(start, |i| i + 1);
    &bytes[start..end.max(start)]
}

/// Attributes shared by the session and the client cookie (SPEC H5, H8), formatted once: a
/// `Set-Cookie` value is `name=value` + these + `Max-Age` (+ `Expires` when removing), the same
/// text the `cookie` crate writes (checked by a unit test), without building a `Cookie` per
/// response.
#[derive(Clone, Debug)]
pub(crate) struct CookieAttrs {
    /// `; HttpOnly; SameSite=..; Secure; Path=..; Domain=..`, as the `cookie` crate orders them.
    suffix: String,
    /// `; Expires=<the epoch>`, for a removal.
    expired: String,
}

impl CookieAttrs {
    pub(crate) fn new(
        http_only: bool,
        secure: bool,
        same_site: Option<SameSite>,
        path: String,
        domain: Option<String>,
    ) -> Self {
        let mut c = Cookie::new("n", "v");
        c.set_http_only(http_only);
        c.set_secure(secure);
        c.set_path(path);
        if let Some(ss) = same_site {
            c.set_same_site(ss);
        }
        if let Some(d) = domain {
            c.set_domain(d);
        }
        let suffix = c.to_string().split_off("n=v".len());
        let mut gone = Cookie::new("n", "v");
        gone.set_expires(cookie::time::OffsetDateTime::UNIX_EPOCH);
        let expired = gone.to_string().split_off("n=v".len());
        Self { suffix, expired }
    }

    /// A `Set-Cookie` value. `max_age_ms`: `Some(0)` removes the cookie, `None` makes a
    /// browser-session cookie.
    pub(crate) fn set_cookie(&self, name: &str, value: &str, max_age_ms: Option<u64>) -> String {
        self.set_cookie_parts(name, &[value], max_age_ms)
    }

    /// [`set_cookie`](Self::set_cookie) with the value given in pieces, written into one
    /// string of the exact length (it becomes the header's bytes without a copy).
    fn set_cookie_parts(&self, name: &str, value: &[&str], max_age_ms: Option<u64>) -> String {
        // Not percent-encoded: names are validated tokens and values are URL-safe ids, and an
        // encoded NAME (`app|sid` -> `app%7Csid`) would come back as a name we never look for.
        const MAX_AGE: &str = "; Max-Age=";
        let mut digits = [0u8; 20];
        let mut start = digits.len();
        let age = max_age_ms.map(|ms| {
            let mut secs = ms / 1000;
            loop {
                start -= 1;
                digits[start] = b'0' + (secs % 10) as u8;
                secs /= 10;
                if secs == 0 {
                    break start;
                }
            }
        });
        let age_len = match (age, max_age_ms) {
            (Some(start), Some(0)) => MAX_AGE.len() + digits.len() - start + self.expired.len(),
            (Some(start), _) => MAX_AGE.len() + digits.len() - start,
            _ => 0,
        };
        let value_len: usize = value.iter().map(|v| v.len()).sum();
        let mut out =
            String::with_capacity(name.len() + 1 + value_len + self.suffix.len() + age_len);
        out.push_str(name);
        out.push('=');
        for v in value {
            out.push_str(v);
        }
        out.push_str(&self.suffix);
        if let Some(start) = age {
            out.push_str(MAX_AGE);
            out.extend(digits[start..].iter().map(|d| char::from(*d)));
            if max_age_ms == Some(0) {
                out.push_str(&self.expired);
            }
        }
        out
    }
}

/// The cookie codec of one bridge: its two cookie names, attributes and signing, so every
/// flow reads and writes cookies the same way (C1-C4, H1, H8).
#[derive(Clone)]
pub(crate) struct CookieConfig {
    session_name: String,
    client_name: String,
    attrs: CookieAttrs,
    /// `signed(false)`: bare ids (SPEC C3).
    signed: bool,
    keys: KeyRing,
    ids: Arc<dyn IdGen>,
    /// No `Max-Age` on the session cookie: it ends with the browser session.
    browser_session: bool,
    client_max_age: u64,
    client_always_roll: bool,
    /// Values that verified, so a browser's next request skips their MACs (shared by clones).
    verified: Arc<VerifiedCache>,
}

impl fmt::Debug for CookieConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CookieConfig")
            .field("session_name", &self.session_name)
            .field("client_name", &self.client_name)
            .field("signed", &self.signed)
            .finish_non_exhaustive()
    }
}

/// A cookie's signature, kept inline (no allocation) so the cookie can be re-sent as it came.
pub(crate) type Signature = [u8; SIG_LEN];

/// A cookie id read from a request, and whether it must be re-signed with the newest key.
#[derive(Clone)]
pub(crate) struct ReadId {
    id: String,
    stale: bool,
    /// The value's signature when it verified with the newest key: re-sending the cookie
    /// needs no new MAC (H1 `client_always_roll`). `None` when unsigned or stale.
    sig: Option<Signature>,
}

impl ReadId {
    /// An id taken as read (a client id already decided), for pairing it with candidates.
    pub(crate) fn plain(id: &str) -> Self {
        Self {
            id: id.to_owned(),
            stale: false,
            sig: None,
        }
    }

    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    /// The id, and whether it verified with an older key (C2: re-sign it).
    pub(crate) fn into_parts(self) -> (String, bool) {
        (self.id, self.stale)
    }

    /// The id, the stale flag, and the signature to echo when it needs no re-signing.
    pub(crate) fn into_parts_with_sig(self) -> (String, bool, Option<Signature>) {
        (self.id, self.stale, self.sig)
    }
}

/// The signature part of a verified `<id>.<sig>` value of `id_len` id characters.
fn signature_of(value: &str, id_len: usize) -> Option<Signature> {
    value.as_bytes().get(id_len + 1..)?.try_into().ok()
}

impl CookieConfig {
    pub(crate) fn new(
        session_name: String,
        client_name: String,
        attrs: CookieAttrs,
        signed: bool,
        keys: KeyRing,
        ids: Arc<dyn IdGen>,
    ) -> Self {
        Self {
            session_name,
            client_name,
            attrs,
            signed,
            keys,
            ids,
            browser_session: false,
            client_max_age: 365 * 24 * 3_600_000,
            client_always_roll: true,
            verified: Arc::new(VerifiedCache::new(DEFAULT_SLOTS)),
        }
    }

    /// How many verified values are remembered (0: every cookie is verified every time).
    pub(crate) fn verified_slots(mut self, slots: usize) -> Self {
        self.verified = Arc::new(VerifiedCache::new(slots));
        self
    }

    fn name(&self, kind: CookieKind) -> &str {
        match kind {
            CookieKind::Client => &self.client_name,
            CookieKind::Session => &self.session_name,
        }
    }

    /// The session cookie carries no `Max-Age` (a browser-session cookie).
    pub(crate) fn browser_session(mut self, on: bool) -> Self {
        self.browser_session = on;
        self
    }

    /// The client cookie's `Max-Age` (ms) and whether it is re-sent on every response (H1).
    pub(crate) fn client_cookie(mut self, max_age_ms: u64, always_roll: bool) -> Self {
        self.client_max_age = max_age_ms;
        self.client_always_roll = always_roll;
        self
    }

    pub(crate) fn session_name(&self) -> &str {
        &self.session_name
    }

    pub(crate) fn client_always_roll(&self) -> bool {
        self.client_always_roll
    }

    /// The key that keyed tags are made with (the newest signing key).
    pub(crate) fn tag_key(&self) -> &HmacSha256 {
        &self.keys.newest().keyed
    }

    /// How many keys the ring holds (one: every tag was made with the newest).
    pub(crate) fn key_count(&self) -> usize {
        // A 0 here is equivalent: its one use skips a re-tag check that finds nothing with one key.
        self.keys.keys.len()
    }

    /// The owner tag a record of client `cid` carries (ST2): keyed with the newest key.
    pub(crate) fn owner_tag(&self, cid: &str) -> String {
        IdTag::new(self.tag_key(), OWNER_TAG_DOMAIN, cid, OWNER_TAG_LEN)
            .as_str()
            .to_owned()
    }

    /// Whether `owner` is client `cid`'s tag under any key of the ring (a record written
    /// before a key rotation still belongs to its client).
    pub(crate) fn is_owner(&self, owner: &str, cid: &str) -> bool {
        self.keys.keys.iter().any(|key| {
            IdTag::new(&key.keyed, OWNER_TAG_DOMAIN, cid, OWNER_TAG_LEN).as_str() == owner
        })
    }

    /// Every distinct client id the request's client cookies carry that verifies (H1, C4).
    pub(crate) fn read_clients(&self, headers: &HeaderMap) -> Vec<ReadId> {
        self.read(headers, CookieKind::Client)
    }

    /// Every distinct session id the request's session cookies carry that verifies (H2, C4).
    pub(crate) fn read_sessions(&self, headers: &HeaderMap) -> Vec<ReadId> {
        self.read(headers, CookieKind::Session)
    }

    /// The name of the client cookie (for a warning that names a cookie by name only).
    pub(crate) fn client_name(&self) -> &str {
        &self.client_name
    }

    /// Every candidate of cookie `name` that verifies, deduplicated by id, in order (C4).
    fn read(&self, headers: &HeaderMap, kind: CookieKind) -> Vec<ReadId> {
        let shape = |v: &str| self.has_shape(v);
        self.verify_all(kind, request_values(headers, self.name(kind), shape))
    }

    /// The cheap shape check of a cookie value (C6), before any MAC: signed, `<id>.<sig>`
    /// with exactly one `.`, an id of the generator's shape and a signature of 43 base64url
    /// characters; unsigned (C3), an id of the generator's shape.
    pub(crate) fn has_shape(&self, value: &str) -> bool {
        if !self.signed {
            return self.ids.is_valid(value);
        }
        let Some((id, sig)) = value.split_once('.') else {
            return false;
        };
        crate::id::is_url_safe_id(sig, SIG_LEN) && self.ids.is_valid(id)
    }

    fn verify_all<'v>(
        &self,
        kind: CookieKind,
        values: impl IntoIterator<Item = &'v str>,
    ) -> Vec<ReadId> {
        let mut out: Vec<ReadId> = Vec::new();
        for value in values {
            if let Some(read) = self.verify_one(kind, value)
                && !out.iter().any(|r| r.id == read.id)
            {
                out.push(read);
            }
        }
        out
    }

    /// The client cookie's candidate that verifies (C4; `true` when two different ids
    /// verify: the caller reads everything again), and the session cookie's candidates
    /// unverified, joined by `;` (an HTTP request verifies them only if it touches the
    /// session), from one pass over the `Cookie` headers. Allocates only the two ids' texts.
    pub(crate) fn read_client_and_session_candidates(
        &self,
        headers: &HeaderMap,
    ) -> (Option<ReadId>, bool, String) {
        let shape = |v: &str| self.has_shape(v);
        let [clients, sessions] =
            request_values_of(headers, [&self.client_name, &self.session_name], shape);
        let mut client: Option<ReadId> = None;
        let mut several = false;
        for value in clients {
            if let Some(read) = self.verify_one(CookieKind::Client, value) {
                match &client {
                    None => client = Some(read),
                    Some(first) if first.id != read.id => {
                        several = true;
                        break;
                    }
                    Some(_) => {}
                }
            }
        }
        // Cookie values never hold a `;` (C6 splits pairs at it).
        let mut pending = String::new();
        for (i, value) in sessions.into_iter().enumerate() {
            if i > 0 {
                pending.push(';');
            }
            pending.push_str(value);
        }
        (client, several, pending)
    }

    /// Session cookie candidates (as [`read_client_and_session_candidates`] joins them) that
    /// verify, deduplicated (C4).
    ///
    /// [`read_client_and_session_candidates`]: Self::read_client_and_session_candidates
    pub(crate) fn verify_sessions(&self, candidates: &str) -> Vec<ReadId> {
        self.verify_all(CookieKind::Session, candidates.split(';'))
    }

    /// One candidate of cookie `kind` (C2): remembered values skip the MAC (see
    /// [`VerifiedCache`]), others are verified and remembered when they pass.
    fn verify_one(&self, kind: CookieKind, value: &str) -> Option<ReadId> {
        if !self.signed {
            return self.ids.is_valid(value).then(|| ReadId {
                id: value.to_owned(),
                stale: false,
                sig: None,
            });
        }
        let (id, stale) = match self.verified.lookup(kind, value) {
            // A remembered value verified as `<id>.<sig>` with a 43-character signature.
            Some(stale) => {
                let id_len = value.len().checked_sub(SIG_LEN + 1)?;
                (value.get(..id_len)?.to_owned(), stale)
            }
            None => {
                let v = self
                    .keys
                    .verify(self.name(kind), value, self.ids.as_ref())?;
                self.verified.remember(kind, value, v.stale_key);
                (v.id, v.stale_key)
            }
        };
        let sig = if stale {
            None
        } else {
            signature_of(value, id.len())
        };
        Some(ReadId { id, stale, sig })
    }

    fn value(&self, name: &str, id: &str) -> String {
        if self.signed {
            self.keys.sign(name, id)
        } else {
            id.to_owned()
        }
    }

    /// `Set-Cookie` for the client cookie (H1, H8: same attributes as the session cookie).
    pub(crate) fn client_set_cookie(&self, cid: &str) -> String {
        let value = self.value(&self.client_name, cid);
        self.attrs
            .set_cookie(&self.client_name, &value, Some(self.client_max_age))
    }

    /// `Set-Cookie` re-sending client cookie `<cid>.<sig>` as it came (it verified with the
    /// newest key): no new MAC.
    pub(crate) fn client_set_cookie_echo(&self, cid: &str, sig: &Signature) -> String {
        match std::str::from_utf8(sig) {
            Ok(sig) => self.attrs.set_cookie_parts(
                &self.client_name,
                &[cid, ".", sig],
                Some(self.client_max_age),
            ),
            // A verified signature is base64url text; sign anew should that ever not hold.
            Err(_) => self.client_set_cookie(cid),
        }
    }

    /// `Set-Cookie` for the session cookie naming `sid`, living `ttl_ms` (H4, H11).
    pub(crate) fn session_set_cookie(&self, sid: &str, ttl_ms: u64) -> String {
        let value = self.value(&self.session_name, sid);
        let max_age = (!self.browser_session).then_some(ttl_ms);
        self.attrs.set_cookie(&self.session_name, &value, max_age)
    }

    /// `Set-Cookie` that clears the session cookie (H4 destroy).
    pub(crate) fn clear_session_cookie(&self) -> String {
        self.attrs.set_cookie(&self.session_name, "", Some(0))
    }
}

pub(crate) fn append_set_cookie(headers: &mut HeaderMap, value: String) {
    // Names, path and domain are validated at build time (visible ASCII) and values are
    // URL-safe ids, so this always parses; say so loudly if that ever stops being true. The
    // string becomes the header's bytes without a copy.
    match HeaderValue::try_from(value) {
        Ok(v) => {
            headers.append(header::SET_COOKIE, v);
        }
        Err(_) => tracing::error!("a Set-Cookie header could not be built and was not sent"),
    }
}

/// Whether `value` may stand in a cookie attribute (`Path`, `Domain`): visible ASCII or
/// space, no `;`.
pub(crate) fn is_valid_attribute(value: &str) -> bool {
    value
        .bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b';')
}

/// Whether `name` is a valid cookie name (RFC 6265 token).
pub(crate) fn is_valid_cookie_name(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| {
            b.is_ascii_graphic()
                && !matches!(
                    b,
                    b'(' | b')'
                        | b'<'
                        | b'>'
                        | b'@'
                        | b','
                        | b';'
                        | b':'
                        | b'\\'
                        | b'"'
                        | b'/'
                        | b'['
                        | b']'
                        | b'?'
                        | b'='
                        | b'{'
                        | b'}'
                )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::{RandomIdGen, SequentialIdGen};

    thread_local! {
        /// MACs computed on this thread (signing and verifying).
        pub(super) static MACS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    fn macs() -> usize {
        MACS.with(std::cell::Cell::get)
    }

    fn codec(keys: &[u8], memo: usize) -> CookieConfig {
        CookieConfig::new(
            "app.sid".into(),
            "app.sid.cid".into(),
            CookieAttrs::new(true, true, Some(SameSite::Lax), "/".into(), None),
            true,
            ring(keys),
            Arc::new(RandomIdGen),
        )
        .verified_slots(memo)
    }

    /// C2 with the memo: a value that verified skips its MAC the next time and reads the
    /// same (id, stale key); a value that never verified, or verified only for the other
    /// cookie (C1), is checked and refused every time.
    #[test]
    fn remembered_values_skip_the_mac_and_read_the_same() {
        let old = codec(&[1], 0);
        let bridge = codec(&[2, 1], 16);
        let id = RandomIdGen.generate();
        for (value, stale) in [
            (bridge.value("app.sid", &id), false),
            (old.value("app.sid", &id), true),
        ] {
            let first = bridge.verify_one(CookieKind::Session, &value).unwrap();
            let before = macs();
            let again = bridge.verify_one(CookieKind::Session, &value).unwrap();
            assert_eq!(macs(), before, "the second read computes no MAC");
            assert_eq!((first.id(), first.stale), (id.as_str(), stale));
            assert_eq!((again.id(), again.stale), (id.as_str(), stale));
            assert_eq!(again.sig, first.sig);
            assert_eq!(
                first.sig.is_some(),
                !stale,
                "a stale value is re-signed, not echoed"
            );
            let before = macs();
            assert!(
                bridge.verify_one(CookieKind::Client, &value).is_none(),
                "C1"
            );
            assert!(
                macs() > before,
                "the other cookie's name goes through the MAC"
            );
        }
        let session = bridge.value("app.sid", &id);
        // The signature's first character carries 6 bits of the MAC (the last one only 4, and
        // a change there may fail the base64 decode before any MAC is computed).
        let mut forged = session.clone().into_bytes();
        let first = forged.len() - SIG_LEN;
        forged[first] = if forged[first] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(forged).unwrap();
        for _ in 0..2 {
            let before = macs();
            assert!(bridge.verify_one(CookieKind::Session, &forged).is_none());
            assert!(macs() > before, "a forged value is checked every time");
        }
        let off = codec(&[2, 1], 0);
        for _ in 0..2 {
            let before = macs();
            assert!(off.verify_one(CookieKind::Session, &session).is_some());
            assert!(macs() > before, "memo off: every read computes the MAC");
        }
    }

    fn ring(keys: &[u8]) -> KeyRing {
        KeyRing::new(
            keys.iter()
                .map(|b| Key::try_from([*b; 32]).unwrap())
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn signature_binds_the_cookie_name() {
        let r = ring(&[1]);
        let id = SequentialIdGen::new("x").generate();
        let v = r.sign("app.sid", &id);
        assert_eq!(v.len(), id.len() + 1 + SIG_LEN);
        assert!(r.verify("app.sid", &v, &RandomIdGen).is_some());
        assert!(r.verify("app.sid.cid", &v, &RandomIdGen).is_none());
    }

    #[test]
    fn older_keys_verify_and_are_flagged() {
        let old = ring(&[1]);
        let rotated = ring(&[2, 1]);
        let id = RandomIdGen.generate();
        let v = old.sign("k", &id);
        assert_eq!(
            rotated.verify("k", &v, &RandomIdGen),
            Some(Verified {
                id: id.clone(),
                stale_key: true
            })
        );
        assert!(
            !rotated
                .verify("k", &rotated.sign("k", &id), &RandomIdGen)
                .unwrap()
                .stale_key
        );
        assert!(ring(&[3]).verify("k", &v, &RandomIdGen).is_none());
    }

    #[test]
    fn tampered_values_fail() {
        let r = ring(&[1]);
        let id = RandomIdGen.generate();
        let v = r.sign("k", &id);
        let mut flipped = v.clone().into_bytes();
        flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).unwrap();
        for bad in [
            "",
            ".",
            "abc",
            &id,
            &format!("{id}."),
            &format!("{v}x"),
            &flipped,
            &v[..v.len() - 1],
            &format!("{id}.{}", "A".repeat(SIG_LEN)),
            &format!("{id}.{}", "é".repeat(SIG_LEN)),
        ] {
            assert!(r.verify("k", bad, &RandomIdGen).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn request_values_handles_many_headers_and_junk() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; k=first;junk; k = \"second\""),
        );
        h.append(header::COOKIE, HeaderValue::from_static("k=third"));
        h.append(header::COOKIE, HeaderValue::from_bytes(b"k=\xff").unwrap());
        let any = |_: &str| true;
        assert_eq!(
            request_values(&h, "k", any),
            vec!["first", "second", "third"]
        );
        assert!(request_values(&h, "missing", any).is_empty());
    }

    #[test]
    fn set_cookie_text_is_the_cookie_crates() {
        for (http_only, secure, same_site, domain) in [
            (true, true, Some(SameSite::Lax), None),
            (false, false, None, Some("example.com")),
            (true, false, Some(SameSite::Strict), Some(".example.com")),
            (true, true, Some(SameSite::None), None),
        ] {
            let attrs = CookieAttrs::new(
                http_only,
                secure,
                same_site,
                "/app".into(),
                domain.map(str::to_owned),
            );
            for max_age in [None, Some(0), Some(86_400_000), Some(1_500)] {
                let mut c = Cookie::new("app.sid", "abc.def");
                c.set_http_only(http_only);
                c.set_secure(secure);
                c.set_path("/app");
                if let Some(ss) = same_site {
                    c.set_same_site(ss);
                }
                if let Some(d) = domain {
                    c.set_domain(d);
                }
                if let Some(ms) = max_age {
                    c.set_max_age(cookie::time::Duration::seconds((ms / 1000) as i64));
                    if ms == 0 {
                        c.set_expires(cookie::time::OffsetDateTime::UNIX_EPOCH);
                    }
                }
                assert_eq!(
                    attrs.set_cookie("app.sid", "abc.def", max_age),
                    c.to_string()
                );
            }
        }
    }

    /// `set_cookie_parts` sizes its string exactly (`with_capacity` gives exactly what it is
    /// asked for), so it is never reallocated while written nor copied into the header.
    #[test]
    fn set_cookie_text_is_written_at_its_exact_length() {
        let attrs = CookieAttrs::new(true, true, Some(SameSite::Lax), "/".into(), None);
        for max_age in [
            None,
            Some(0),
            Some(999),
            Some(1_000),
            Some(86_400_000),
            Some(u64::MAX),
        ] {
            let text = attrs.set_cookie("app.sid", "abc.def", max_age);
            assert_eq!(text.capacity(), text.len(), "{text}");
        }
    }

    /// L1: the codec's `Debug` shows its cookie names and mode, never a key.
    #[test]
    fn l1_the_codec_debugs_its_names_never_its_keys() {
        assert_eq!(
            format!("{:?}", codec(&[7], 16)),
            r#"CookieConfig { session_name: "app.sid", client_name: "app.sid.cid", signed: true, .. }"#
        );
    }

    #[test]
    fn set_cookie_attributes() {
        let attrs = CookieAttrs::new(
            true,
            true,
            Some(SameSite::Lax),
            "/".into(),
            Some("example.com".into()),
        );
        let s = attrs.set_cookie("app.sid", "v", Some(86_400_000));
        for part in [
            "app.sid=v",
            "HttpOnly",
            "Secure",
            "SameSite=Lax",
            "Path=/",
            "Domain=example.com",
            "Max-Age=86400",
        ] {
            assert!(s.contains(part), "{s} lacks {part}");
        }
        assert!(!attrs.set_cookie("a", "v", None).contains("Max-Age"));
        assert!(attrs.set_cookie("a", "", Some(0)).contains("Max-Age=0"));
    }

    #[test]
    fn cookie_names() {
        assert!(is_valid_cookie_name("app.sid"));
        assert!(!is_valid_cookie_name("a b"));
        assert!(!is_valid_cookie_name("a=b"));
        assert!(!is_valid_cookie_name(""));
    }
}

//! Ids behind a trait (SPEC GW5): random in production, deterministic in tests.
//!
//! An id is what goes into a cookie, so its shape is checked when it comes back (SPEC C2): exact
//! length, URL-safe alphabet, no `.`.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Length in characters of every id made by [`RandomIdGen`] (24 random bytes, 192 bits).
///
/// ```
/// use session_bridge::{id::{ID_LEN, IdGen, RandomIdGen}};
/// assert_eq!(RandomIdGen.generate().len(), ID_LEN);
/// ```
pub const ID_LEN: usize = 32;

/// Makes session ids and client ids, and says which strings are ids it could have made.
///
/// ```
/// use session_bridge::{SessionBridge, id::{IdGen, RandomIdGen}};
///
/// // Random ids whose first character names the node that made them.
/// struct NodeIds(char);
/// impl IdGen for NodeIds {
///     fn generate(&self) -> String {
///         format!("{}{}", self.0, &RandomIdGen.generate()[1..])
///     }
/// }
/// let ids = NodeIds('b');
/// assert!(ids.is_valid(&ids.generate())); // the default check: 32 URL-safe characters
/// let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).ids(ids).build()?;
/// # Ok::<(), session_bridge::Error>(())
/// ```
pub trait IdGen: Send + Sync + 'static {
    /// A fresh id. Must be unguessable in production.
    ///
    /// ```
    /// use session_bridge::{id::{IdGen, RandomIdGen}};
    /// assert_ne!(RandomIdGen.generate(), RandomIdGen.generate());
    /// ```
    fn generate(&self) -> String;

    /// Whether `id` has this generator's shape. Cookie values failing it are ignored unread.
    /// The default accepts exactly [`ID_LEN`] characters of `[A-Za-z0-9_-]`.
    ///
    /// ```
    /// use session_bridge::{id::{IdGen, RandomIdGen}};
    /// assert!(RandomIdGen.is_valid(&RandomIdGen.generate()));
    /// assert!(!RandomIdGen.is_valid("../../etc/passwd"));
    /// ```
    fn is_valid(&self, id: &str) -> bool {
        is_url_safe_id(id, ID_LEN)
    }
}

/// True when `id` has exactly `len` characters of the URL-safe base64 alphabet.
pub(crate) fn is_url_safe_id(id: &str, len: usize) -> bool {
    // A table and a fold without an early exit: a few instructions per byte, and the
    // same time for every id of that length.
    id.len() == len && id.bytes().fold(true, |ok, b| ok & URL_SAFE[usize::from(b)])
}

/// The URL-safe base64 alphabet, by byte.
static URL_SAFE: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || c == b'-' || c == b'_';
        b += 1;
    }
    table
};

/// 192-bit ids from the operating system's CSPRNG, URL-safe base64, 32 characters.
///
/// ```
/// use session_bridge::{id::{IdGen, RandomIdGen}};
/// let id = RandomIdGen.generate();
/// assert_eq!(id.len(), 32);
/// assert!(RandomIdGen.is_valid(&id));
/// assert!(!RandomIdGen.is_valid("short"));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct RandomIdGen;

impl IdGen for RandomIdGen {
    fn generate(&self) -> String {
        URL_SAFE_NO_PAD.encode(random_bytes::<24>())
    }
}

/// A random, unguessable token (lease holders, node ids): 128 bits, URL-safe base64.
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<16>())
}

/// Bytes from the OS CSPRNG. Without an OS source of randomness the crate cannot make
/// unguessable ids at all, so this is one of the few places that refuses to go on.
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    if let Err(e) = getrandom::fill(&mut buf) {
        // No safe fallback exists: a predictable id would hand sessions to attackers.
        panic!("the operating system's random number generator failed: {e}");
    }
    buf
}

/// Deterministic ids for tests: `prefix` then a counter, padded to [`ID_LEN`] characters.
///
/// ```
/// use session_bridge::{id::{IdGen, SequentialIdGen}};
/// let ids = SequentialIdGen::new("sid");
/// assert_eq!(ids.generate(), "sid00000000000000000000000000001");
/// assert_eq!(ids.generate(), "sid00000000000000000000000000002");
/// ```
///
/// Its `Debug` output shows neither the prefix nor the counter: together they are the next
/// id it will hand out (SPEC L1).
#[derive(Default)]
pub struct SequentialIdGen {
    prefix: String,
    next: AtomicU64,
}

impl SequentialIdGen {
    /// A generator whose ids start with `prefix` (keep it short and URL-safe).
    ///
    /// ```
    /// use session_bridge::{id::{IdGen, SequentialIdGen}};
    /// let ids = SequentialIdGen::new("client");
    /// assert_eq!(ids.generate(), "client00000000000000000000000001");
    /// ```
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
            next: AtomicU64::new(1),
        }
    }
}

impl fmt::Debug for SequentialIdGen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SequentialIdGen").finish_non_exhaustive()
    }
}

impl IdGen for SequentialIdGen {
    fn generate(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let width = ID_LEN.saturating_sub(self.prefix.len());
        format!("{}{:0>width$}", self.prefix, n, width = width)
    }
}

/// A short one-way digest of an id for `Debug` output: lets two lines be matched without
/// showing the id (a prefix of SHA-256 of a 192-bit random id reveals nothing usable).
pub(crate) fn redact(id: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(id.as_bytes());
    let text = URL_SAFE_NO_PAD.encode(digest);
    format!("#{}", text.get(..8).unwrap_or_default())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $label:literal) => {
        $(#[$doc])*
        ///
        /// Its `Debug` output is a short one-way digest, never the id: ids are secrets (a
        /// session id is a bearer credential). There is no `Display`: the text comes out only
        /// on purpose, through [`as_str`](Self::as_str) or serde (as a plain JSON string, for a
        /// response body the app chose to send).
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The id as text (for a store key, a database column; never for a log line).
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The id as an owned `String`.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                Self(id)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                Self(id.to_owned())
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($label, "({})"), redact(&self.0))
            }
        }
    };
}

id_type! {
    /// The id of one server-side session record, carried by the signed session cookie.
    ///
    /// ```
    /// use session_bridge::SessionId;
    /// let id = SessionId::from("f3kD9x2LqP0aZ7mN4vB8cR1tY6uE5wQs");
    /// assert_eq!(id.as_str(), "f3kD9x2LqP0aZ7mN4vB8cR1tY6uE5wQs");
    /// assert!(!format!("{id:?}").contains("f3kD9x2L")); // Debug shows a digest only
    /// ```
    SessionId, "SessionId"
}

id_type! {
    /// The long-lived id of one browser, carried by the signed client cookie; the bridge
    /// maps it 1:1 to the browser's current [`SessionId`].
    ///
    /// ```
    /// use session_bridge::ClientId;
    /// let id = ClientId::from("f3kD9x2LqP0aZ7mN4vB8cR1tY6uE5wQs");
    /// assert_eq!(id, "f3kD9x2LqP0aZ7mN4vB8cR1tY6uE5wQs");
    /// assert!(format!("{id:?}").starts_with("ClientId(#"));
    /// ```
    ClientId, "ClientId"
}

/// A short keyed hash of an id, safe to log or show in an error (never the id itself).
///
/// Two tags are equal when the ids and the key are; without the key a tag reveals nothing.
///
/// ```
/// use session_bridge::SessionBridge;
/// let node_a = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build()?;
/// let node_b = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build()?;
/// let other = SessionBridge::builder().key("app.sid").keys([[8u8; 32]]).build()?;
/// let id = "f3kD9x2LqP0aZ7mN4vB8cR1tY6uE5wQs".into();
/// assert_eq!(node_a.client_tag(&id), node_b.client_tag(&id)); // same keys, same tag
/// assert_ne!(node_a.client_tag(&id), other.client_tag(&id));
/// # Ok::<(), session_bridge::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct IdTag(String);

impl IdTag {
    /// Tags `id` under `key` with a domain label, so tags of one purpose never equal another's.
    /// `key`: the HMAC already keyed (its pads computed once per key, not per tag).
    pub(crate) fn new(key: &hmac::Hmac<sha2::Sha256>, domain: &str, id: &str, len: usize) -> Self {
        use hmac::Mac;
        let mut mac = key.clone();
        mac.update(domain.as_bytes());
        mac.update(&[0]);
        mac.update(id.as_bytes());
        let full = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        IdTag(full.chars().take(len).collect())
    }

    /// The tag as text.
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # let bridge = session_bridge::testing::test_bridge();
    /// let tag = bridge.client_tag(&"f3kD9x2LqP0aZ7mN4vB8cR1tY6uE5wQs".into());
    /// assert_eq!(tag.to_string(), format!("#{}", tag.as_str())); // `Display` adds a `#`
    /// # Ok::<(), session_bridge::Error>(())
    /// ```
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IdTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

impl fmt::Debug for IdTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_are_distinct_and_valid() {
        let a = RandomIdGen.generate();
        let b = RandomIdGen.generate();
        assert_ne!(a, b);
        assert!(RandomIdGen.is_valid(&a) && RandomIdGen.is_valid(&b));
    }

    #[test]
    fn validation_rejects_wrong_length_and_alphabet() {
        let ok = "A".repeat(ID_LEN);
        assert!(RandomIdGen.is_valid(&ok));
        assert!(!RandomIdGen.is_valid(&"A".repeat(ID_LEN - 1)));
        assert!(!RandomIdGen.is_valid(&"A".repeat(ID_LEN + 1)));
        let mut dotted = "A".repeat(ID_LEN - 1);
        dotted.push('.');
        assert!(!RandomIdGen.is_valid(&dotted));
        let mut unicode = "A".repeat(ID_LEN - 2);
        unicode.push('é');
        assert!(!RandomIdGen.is_valid(&unicode));
    }

    #[test]
    fn tags_hide_the_id_and_depend_on_the_key() {
        let keyed = |k: &[u8]| {
            <hmac::Hmac<sha2::Sha256> as hmac::KeyInit>::new_from_slice(k).expect("any length")
        };
        let (one, two) = (keyed(b"key-one"), keyed(b"key-two"));
        let t1 = IdTag::new(&one, "sid", "secret-id", 12);
        let t2 = IdTag::new(&two, "sid", "secret-id", 12);
        assert_ne!(t1, t2);
        assert_eq!(t1, IdTag::new(&one, "sid", "secret-id", 12));
        assert!(!t1.to_string().contains("secret"));
        assert_eq!(t1.as_str().len(), 12);
    }
}

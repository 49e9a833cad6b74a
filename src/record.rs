//! What a store keeps for one session id (SPEC ST2), and its stable serialized form.

use serde_json::{Map, Value};
use std::borrow::Cow;

/// One stored session.
///
/// * `session`: the session as JSON text of an object (no bookkeeping fields inside).
/// * `expires_at`: unix milliseconds after which the record is dead (SPEC GW1).
/// * `ttl`: the time-to-live in ms the record was written with (its cookie's max-age).
/// * `version`: incremented by every write through the bridge; stores that support
///   compare-and-set use it so that two writers cannot overwrite each other (ST5).
/// * `created_at`: unix ms of the session's creation; never changes, not even on
///   `regenerate` (the absolute timeout, H9, counts from it).
/// * `owner`: a keyed tag of the client id that holds the session (never the client id
///   itself, so a dump of the store reveals no cookie). A record found by a request whose
///   client does not own it is never adopted (H2 b). `None` only for records written without
///   an owner (format 1, or by an app through [`Record::new`]).
///
/// # Serialized form
///
/// [`encode`](Record::encode) writes one JSON object, stable across releases (format 2):
///
/// ```text
/// {"createdAt":1699990000000,"expiresAt":1700000000000,"format":2,"owner":"h3Xq...","session":"{\"n\":1}","ttl":86400000,"version":3}
/// ```
///
/// Keys are written in this (lexicographic) order; readers must not depend on the order.
/// `owner` is `null` when there is none. `session` is a string holding JSON text, exactly as
/// the store contract says; `format` lets a later release read records written by this one.
/// [`decode`](Record::decode) also reads format 1 (no `createdAt`, no `owner`): its
/// `created_at` is taken as `expiresAt - ttl` (the last write; the best that is known) and it
/// has no owner.
///
/// ```
/// use session_bridge::Record;
/// let r = Record::new(r#"{"n":1}"#, 1_000, 500);
/// let text = r.encode();
/// assert_eq!(
///     text,
///     r#"{"createdAt":500,"expiresAt":1000,"format":2,"owner":null,"session":"{\"n\":1}","ttl":500,"version":0}"#
/// );
/// assert_eq!(Record::decode(&text).unwrap(), r);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Record {
    /// JSON text of the session object.
    pub session: String,
    /// Expiry instant, unix ms.
    pub expires_at: u64,
    /// Time-to-live in ms.
    pub ttl: u64,
    /// Write counter for compare-and-set.
    pub version: u64,
    /// Creation instant, unix ms; never changes.
    pub created_at: u64,
    /// Keyed tag of the owning client id (H2 b), never the id.
    pub owner: Option<String>,
}

/// Shows the session's size, never its text (it may hold secrets).
impl std::fmt::Debug for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Record")
            .field("session", &format_args!("<{} bytes>", self.session.len()))
            .field("expires_at", &self.expires_at)
            .field("ttl", &self.ttl)
            .field("version", &self.version)
            .field("created_at", &self.created_at)
            .field("owner", &self.owner.as_ref().map(|_| "<tag>"))
            .finish()
    }
}

impl Record {
    /// Version of [`Record::encode`]'s format. Bumped only with a decoder for the older one.
    ///
    /// ```
    /// use session_bridge::Record;
    /// let text = Record::new("{}", 1_000, 500).encode();
    /// assert!(text.contains(&format!(r#""format":{}"#, Record::FORMAT)));
    /// ```
    pub const FORMAT: u64 = 2;

    /// A record at version 0, created `ttl` before `expires_at`, without an owner.
    ///
    /// ```
    /// use session_bridge::Record;
    /// let now = 1_700_000_000_000;
    /// let record = Record::new(r#"{"user":"ada"}"#, now + 3_600_000, 3_600_000);
    /// assert_eq!(record.version, 0);
    /// ```
    pub fn new(session: impl Into<String>, expires_at: u64, ttl: u64) -> Self {
        Self {
            session: session.into(),
            expires_at,
            ttl,
            version: 0,
            created_at: expires_at.saturating_sub(ttl),
            owner: None,
        }
    }

    /// Whether the record is dead at `now_ms` (`now >= expires_at`, SPEC GW1).
    ///
    /// ```
    /// use session_bridge::Record;
    /// let record = Record::new("{}", 1_000, 1_000);
    /// assert!(!record.is_expired(999));
    /// assert!(record.is_expired(1_000));
    /// ```
    pub fn is_expired(&self, now_ms: u64) -> bool {
        now_ms >= self.expires_at
    }

    /// The stable serialized form (see the type's docs).
    ///
    /// ```
    /// use session_bridge::Record;
    /// // What a store that keeps text (Redis, a file) writes.
    /// let text = Record::new(r#"{"n":1}"#, 1_000, 500).encode();
    /// assert!(text.starts_with(r#"{"createdAt":500,"expiresAt":1000,"#));
    /// ```
    pub fn encode(&self) -> String {
        // Written by hand so the key order is fixed whatever serde_json features are enabled.
        let owner = match &self.owner {
            Some(tag) => Value::from(tag.as_str()),
            None => Value::Null,
        };
        format!(
            r#"{{"createdAt":{},"expiresAt":{},"format":{},"owner":{},"session":{},"ttl":{},"version":{}}}"#,
            self.created_at,
            self.expires_at,
            Self::FORMAT,
            owner,
            Value::from(self.session.as_str()),
            self.ttl,
            self.version
        )
    }

    /// Reads the serialized form back.
    ///
    /// ```
    /// use session_bridge::Record;
    /// let record = Record::new(r#"{"n":1}"#, 1_000, 500);
    /// assert_eq!(Record::decode(&record.encode()), Ok(record));
    /// assert!(Record::decode(r#"{"format":99}"#).is_err());
    /// // A record of format 1 is migrated: created at its last write, no owner.
    /// let old = Record::decode(r#"{"expiresAt":1000,"format":1,"session":"{}","ttl":400,"version":2}"#)?;
    /// assert_eq!((old.created_at, old.owner, old.version), (600, None, 2));
    /// # Ok::<(), std::borrow::Cow<'static, str>>(())
    /// ```
    ///
    /// # Errors
    /// A description of what is wrong when `text` is not a record of a known format. The
    /// session text inside is not parsed here: the gateway checks it is a JSON object.
    pub fn decode(text: &str) -> Result<Self, Cow<'static, str>> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| Cow::Owned(format!("not JSON: {e}")))?;
        let Value::Object(map) = value else {
            return Err("not a JSON object".into());
        };
        let format = field_u64(&map, "format")?;
        if format != 1 && format != Self::FORMAT {
            return Err(Cow::Owned(format!("unknown record format {format}")));
        }
        let session = match map.get("session") {
            Some(Value::String(s)) => s.clone(),
            _ => return Err("field `session` is not a string".into()),
        };
        let expires_at = field_u64(&map, "expiresAt")?;
        let ttl = field_u64(&map, "ttl")?;
        let (created_at, owner) = if format == 1 {
            // Format 1 kept neither: the record was last written `ttl` before its expiry.
            (expires_at.saturating_sub(ttl), None)
        } else {
            let owner = match map.get("owner") {
                Some(Value::Null) => None,
                Some(Value::String(tag)) if !tag.is_empty() => Some(tag.clone()),
                _ => return Err("field `owner` is neither null nor a tag".into()),
            };
            (field_u64(&map, "createdAt")?, owner)
        };
        Ok(Self {
            session,
            expires_at,
            ttl,
            version: field_u64(&map, "version")?,
            created_at,
            owner,
        })
    }

    /// The format number of `text` when it is a record of a format newer than this version
    /// knows (a newer node wrote it, GW1): stores read such a record as missing and leave it in
    /// place, so old and new nodes can run side by side during an upgrade. `None` for a record
    /// this version reads, and for anything that is not a record at all (corrupt).
    ///
    /// ```
    /// use session_bridge::Record;
    /// assert_eq!(Record::newer_format(r#"{"format":99,"whatever":true}"#), Some(99));
    /// assert_eq!(Record::newer_format(&Record::new("{}", 1_000, 500).encode()), None);
    /// assert_eq!(Record::newer_format("not a record"), None);
    /// ```
    pub fn newer_format(text: &str) -> Option<u64> {
        let Ok(Value::Object(map)) = serde_json::from_str::<Value>(text) else {
            return None;
        };
        map.get("format")
            .and_then(Value::as_u64)
            .filter(|&format| format > Self::FORMAT)
    }

    /// Parses `session` into a JSON object.
    ///
    /// ```
    /// use session_bridge::Record;
    /// let record = Record::new(r#"{"user":"ada"}"#, 1_000, 500);
    /// assert_eq!(record.session_object()?["user"], "ada");
    /// assert!(Record::new("[1, 2]", 1_000, 500).session_object().is_err());
    /// # Ok::<(), std::borrow::Cow<'static, str>>(())
    /// ```
    ///
    /// # Errors
    /// A description when the text is not JSON or not an object.
    pub fn session_object(&self) -> Result<Map<String, Value>, Cow<'static, str>> {
        match serde_json::from_str::<Value>(&self.session) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(_) => Err("session is not a JSON object".into()),
            Err(e) => Err(Cow::Owned(format!("session is not JSON: {e}"))),
        }
    }
}

fn field_u64(map: &Map<String, Value>, name: &'static str) -> Result<u64, Cow<'static, str>> {
    map.get(name)
        .and_then(Value::as_u64)
        .ok_or_else(|| Cow::Owned(format!("field `{name}` is not an unsigned integer")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_version_created_at_and_owner() {
        let mut r = Record::new("{}", u64::MAX, 0);
        r.version = 42;
        r.created_at = 7;
        r.owner = Some("tag-of-a-client".into());
        assert_eq!(Record::decode(&r.encode()), Ok(r));
    }

    #[test]
    fn st2_format_1_records_migrate() {
        let old = r#"{"expiresAt":1000,"format":1,"session":"{\"n\":1}","ttl":300,"version":5}"#;
        let r = Record::decode(old).unwrap();
        assert_eq!(r.session, r#"{"n":1}"#);
        assert_eq!((r.expires_at, r.ttl, r.version), (1000, 300, 5));
        assert_eq!((r.created_at, r.owner.as_deref()), (700, None));
        // Re-encoded, it is a format 2 record that decodes to the same value.
        assert!(r.encode().contains(r#""format":2"#));
        assert_eq!(Record::decode(&r.encode()), Ok(r));
    }

    #[test]
    fn rejects_bad_text() {
        for bad in [
            "",
            "[]",
            "null",
            "{}",
            r#"{"format":3,"session":"{}","expiresAt":1,"ttl":1,"version":0}"#,
            r#"{"format":2,"session":"{}","expiresAt":1,"ttl":1,"version":0}"#,
            r#"{"format":2,"session":"{}","expiresAt":1,"ttl":1,"version":0,"createdAt":0,"owner":7}"#,
            r#"{"format":2,"session":"{}","expiresAt":1,"ttl":1,"version":0,"createdAt":0,"owner":""}"#,
            r#"{"format":1,"session":{},"expiresAt":1,"ttl":1,"version":0}"#,
            r#"{"format":1,"session":"{}","expiresAt":-1,"ttl":1,"version":0}"#,
            r#"{"format":1,"session":"{}","expiresAt":1,"ttl":1}"#,
        ] {
            assert!(Record::decode(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn session_object_requires_an_object() {
        assert!(Record::new("[1]", 0, 0).session_object().is_err());
        assert!(Record::new("{", 0, 0).session_object().is_err());
        assert!(Record::new(r#"{"a":1}"#, 0, 0).session_object().is_ok());
    }
}

//! `RedisStore`: sessions in Redis (SPEC ST3, ST5, M4; feature `redis`).
//!
//! # What is stored
//!
//! One Redis string per session: key `<prefix><session id>`, value [`Record::encode`] (the
//! stable serialized form, ST2), with a Redis expiry at the record's `expires_at`
//! (`PXAT`). Redis enforces the TTL itself: a dead session disappears from Redis even if no
//! cleanup ever runs, and a write whose expiry is already past deletes the key.
//!
//! # Why the key is the session id and not a hash of it
//!
//! A hashed key (`<prefix>sha256(sid)`) would keep live session ids out of a dump of
//! Redis, but [`Store::list`] must give the ids back: cleanup (GW4) reads each listed id and
//! the bridge announces its end to the client the mapping ties to it. A hash cannot be turned
//! back into an id, and keeping the id inside the value would put it right back into the dump.
//! So the key holds the id, and:
//!
//! * with signed cookies (the default, C1) an id alone is not a credential: a cookie must
//!   carry `HMAC(key, name=id)`, which needs the bridge's signing keys, never stored here;
//! * the owner field is a keyed tag, never the client id (ST2), so a dump reveals no client
//!   cookie either;
//! * Redis holds the session data anyway, so treat it as confidential (ACLs, TLS, no public
//!   dumps) whatever the key scheme; with `signed(false)` (C3) the id *is* the cookie.
//!
//! # Atomic writes (ST5)
//!
//! * `create`: `SET key value NX PXAT expires_at`: never overwrites, atomic across nodes.
//! * `update`: one Lua script ([`redis::Script`], `EVALSHA` with a fallback to `EVAL`): read
//!   the stored value, `cjson.decode` it, compare its `version` with the expected one, write
//!   with the new expiry. It answers `ok`, `gone` (missing: never resurrected), `conflict`
//!   (another writer moved it) or `corrupt` (not a record); all but `ok` are `Ok(false)`, as
//!   the trait says, and the caller re-reads.
//! * `destroy`: one Lua script that deletes the value only if its version is the expected one
//!   (a value that is not a record goes whatever the version, a newer format's stays);
//!   `list`: `SCAN MATCH <prefix>* COUNT 500` (never `KEYS`).
//!
//! # Corrupt values (GW1, X2)
//!
//! A value that [`Record::decode`] rejects is logged (a warning without id or data) and read
//! as a record whose session text is not JSON. The gateway then does what it does with any
//! corrupt record: destroys it, logs a warning naming the session by tag, announces the end
//! (`EndReason::Corrupt`) and reads the session as missing; the rest of the store keeps
//! working. A record of a format newer than this version knows ([`Record::newer_format`]: a
//! newer node wrote it during an upgrade) reads as missing and is left in place.
//!
//! # Runtime, timeouts, outages (M4)
//!
//! [`RedisStore::connect`] must be called inside a tokio runtime with IO and time enabled
//! (`#[tokio::main]` has both); every store call runs as a task on that runtime, so the
//! store's futures can be awaited from any executor. The connection is a
//! [`redis::aio::ConnectionManager`] with explicit connection and response timeouts; it
//! reconnects by itself after an outage. On top of that every store call has a deadline
//! ([`RedisOptions::response_timeout`]): while Redis is down, calls fail with
//! [`Error::Store`] within that time instead of waiting for the reconnection, and work
//! resumes when Redis is back, without rebuilding the store. Nothing is ever half-written: a
//! value is written by one `SET` (or one script), or not at all.
//!
//! The expiry is an absolute Unix time compared with Redis's clock: use the default
//! wall clock in the bridge (a manual test clock would put expiries in 1970, which deletes).

use std::fmt;
use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{AsyncCommands, Client, ExistenceCheck, Script, SetExpiry, SetOptions};

use crate::error::{Error, Result};
use crate::record::Record;
use crate::store::Store;

/// The compare-and-set of [`Store::update`]. KEYS[1] = the record's key; ARGV = the new
/// value, the expected version, the new expiry (unix ms). Versions compare as Lua numbers
/// (exact below 2^53: a counter of writes never gets there).
const UPDATE_SCRIPT: &str = r#"
local current = redis.call('GET', KEYS[1])
if not current then
  return 'gone'
end
local ok, record = pcall(cjson.decode, current)
if not ok or type(record) ~= 'table' or type(record.version) ~= 'number' then
  return 'corrupt'
end
if record.version ~= tonumber(ARGV[2]) then
  return 'conflict'
end
redis.call('SET', KEYS[1], ARGV[1], 'XX', 'PXAT', ARGV[3])
return 'ok'
"#;

/// The conditional delete of [`Store::destroy`] (ST5). KEYS[1] = the record's key; ARGV = the
/// expected version, this version's record format. A value that is not a record goes whatever
/// the version; a record of a newer format stays (GW1: a newer node wrote it). 1: deleted.
const DESTROY_SCRIPT: &str = r#"
local current = redis.call('GET', KEYS[1])
if not current then
  return 0
end
local ok, record = pcall(cjson.decode, current)
if ok and type(record) == 'table' then
  if type(record.format) == 'number' and record.format > tonumber(ARGV[2]) then
    return 0
  end
  if type(record.version) == 'number' and record.version ~= tonumber(ARGV[1]) then
    return 0
  end
end
redis.call('DEL', KEYS[1])
return 1
"#;

/// Keys asked for per `SCAN` round-trip.
const SCAN_COUNT: usize = 500;

/// Options of [`RedisStore::connect`].
///
/// ```
/// use session_bridge::store::RedisOptions;
/// use std::time::Duration;
/// let options = RedisOptions::default()
///     .prefix("myapp:sess:")
///     .connection_timeout(Duration::from_secs(2))
///     .response_timeout(Duration::from_millis(500));
/// assert_eq!(options.get_prefix(), "myapp:sess:");
/// ```
#[derive(Clone)]
pub struct RedisOptions {
    prefix: String,
    connection_timeout: Duration,
    response_timeout: Duration,
    reconnect_retries: usize,
}

impl Default for RedisOptions {
    /// Prefix `session-bridge:`, connection timeout 2 s, response timeout 1 s, 2 retries
    /// per reconnection attempt.
    fn default() -> Self {
        Self {
            prefix: "session-bridge:".to_owned(),
            connection_timeout: Duration::from_secs(2),
            response_timeout: Duration::from_secs(1),
            reconnect_retries: 2,
        }
    }
}

impl fmt::Debug for RedisOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisOptions")
            .field("prefix", &self.prefix)
            .field("connection_timeout", &self.connection_timeout)
            .field("response_timeout", &self.response_timeout)
            .field("reconnect_retries", &self.reconnect_retries)
            .finish()
    }
}

impl RedisOptions {
    /// Prefix of every key of this store (not empty: `list` scans `<prefix>*`, so keep it
    /// unique to the sessions of one app).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long one attempt to open the TCP connection (and handshake) may take.
    pub fn connection_timeout(mut self, timeout: Duration) -> Self {
        self.connection_timeout = timeout;
        self
    }

    /// How long Redis may take to answer one command, and the deadline of every store call,
    /// including the wait for a reconnection while Redis is down (M4).
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// How many times one reconnection attempt retries (with an exponential back-off capped at
    /// one second) before the next store call starts a new one.
    pub fn reconnect_retries(mut self, retries: usize) -> Self {
        self.reconnect_retries = retries;
        self
    }

    /// The key prefix.
    pub fn get_prefix(&self) -> &str {
        &self.prefix
    }

    /// The response timeout (the deadline of every call).
    pub(crate) fn response_timeout_value(&self) -> Duration {
        self.response_timeout
    }

    /// The connection manager's configuration for these options.
    pub(crate) fn manager_config(&self) -> ConnectionManagerConfig {
        ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.connection_timeout))
            .set_response_timeout(Some(self.response_timeout))
            .set_number_of_retries(self.reconnect_retries)
            .set_min_delay(Duration::from_millis(20))
            .set_max_delay(Duration::from_secs(1))
    }

    fn validate(&self) -> Result<()> {
        if self.prefix.is_empty() {
            return Err(Error::option(
                "prefix",
                "must not be empty (list scans `<prefix>*`)",
            ));
        }
        for (name, value) in [
            ("connection_timeout", self.connection_timeout),
            ("response_timeout", self.response_timeout),
        ] {
            if value.is_zero() || value > Duration::from_secs(3600) {
                return Err(Error::option(name, "must be between 1 ms and 1 hour"));
            }
        }
        Ok(())
    }
}

/// A session store in Redis (feature `redis`): TTL enforced by Redis, atomic `create`
/// (`SET NX`) and `update` (a Lua compare-and-set), `list` by `SCAN`. See the
/// [module docs](self) for the key scheme, corrupt values and outages.
///
/// ```no_run
/// use session_bridge::SessionBridge;
/// use session_bridge::store::{RedisOptions, RedisStore};
/// # async fn run() -> Result<(), session_bridge::Error> {
/// let store = RedisStore::connect("redis://127.0.0.1:6379/", RedisOptions::default()).await?;
/// let bridge = SessionBridge::builder()
///     .key("app.sid")
///     .keys([[7u8; 32]])
///     .store(store)
///     .build()?;
/// # let _ = bridge; Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    runtime: tokio::runtime::Handle,
    prefix: String,
    deadline: Duration,
    update: Script,
    destroy: Script,
}

/// The prefix and timeouts; never the URL (it may hold a password).
impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects to the Redis at `url` (`redis://[:password@]host[:port][/db]`) and checks it
    /// answers (`PING`). Call it inside the tokio runtime that should run the store's I/O.
    ///
    /// # Errors
    /// [`Error::InvalidOption`] for bad options; [`Error::Store`] (op `connect`) when there is
    /// no tokio runtime, the URL does not parse or Redis does not answer in time.
    pub async fn connect(url: &str, options: RedisOptions) -> Result<Self> {
        options.validate()?;
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|e| Error::store("connect", format!("no tokio runtime: {e}")))?;
        let client = Client::open(url).map_err(|e| Error::store("connect", e))?;
        let config = options.manager_config();
        let deadline = options.response_timeout;
        // The first connection may retry: bound it by every attempt's timeout plus back-off.
        let connect_deadline = (options.connection_timeout + options.response_timeout)
            * u32::try_from(options.reconnect_retries.saturating_add(1)).unwrap_or(u32::MAX)
            + Duration::from_secs(1);
        let conn = runtime
            .spawn(async move {
                let connected = tokio::time::timeout(
                    connect_deadline,
                    ConnectionManager::new_with_config(client, config),
                )
                .await;
                match connected {
                    Err(_) => Err(Error::store(
                        "connect",
                        format!("redis did not answer within {connect_deadline:?}"),
                    )),
                    Ok(Err(e)) => Err(Error::store("connect", e)),
                    Ok(Ok(mut conn)) => {
                        match tokio::time::timeout(
                            deadline,
                            ::redis::cmd("PING").query_async::<String>(&mut conn),
                        )
                        .await
                        {
                            Ok(Ok(_)) => Ok(conn),
                            Ok(Err(e)) => Err(Error::store("connect", e)),
                            Err(_) => Err(Error::store("connect", "PING timed out")),
                        }
                    }
                }
            })
            .await
            .map_err(|e| Error::store("connect", e))??;
        Ok(Self {
            conn,
            runtime,
            prefix: options.prefix,
            deadline,
            update: Script::new(UPDATE_SCRIPT),
            destroy: Script::new(DESTROY_SCRIPT),
        })
    }

    /// The Redis key of session `sid`.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), session_bridge::Error> {
    /// use session_bridge::store::{RedisOptions, RedisStore};
    /// let store = RedisStore::connect("redis://127.0.0.1/", RedisOptions::default().prefix("p:")).await?;
    /// assert_eq!(store.key("abc"), "p:abc");
    /// # Ok(()) }
    /// ```
    pub fn key(&self, sid: &str) -> String {
        format!("{}{sid}", self.prefix)
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The runtime that runs this store's I/O.
    pub(crate) fn runtime(&self) -> &tokio::runtime::Handle {
        &self.runtime
    }

    /// Runs `op` on the store's runtime with the call deadline; a timeout, a Redis error or
    /// a lost task is `Error::Store { op, .. }`.
    pub(crate) fn run<T, F>(
        &self,
        op: &'static str,
        work: impl FnOnce(ConnectionManager) -> F,
    ) -> impl Future<Output = Result<T>> + Send + 'static
    where
        T: Send + 'static,
        F: Future<Output = ::redis::RedisResult<T>> + Send + 'static,
    {
        let deadline = self.deadline;
        let fut = work(self.conn.clone());
        let task = self.runtime.spawn(async move {
            match tokio::time::timeout(deadline, fut).await {
                Ok(result) => result.map_err(|e| Error::store(op, e)),
                Err(_) => Err(Error::store(
                    op,
                    format!("redis did not answer within {deadline:?}"),
                )),
            }
        });
        // Unconstrained: awaiting the task must not draw on the caller's tokio budget. A caller
        // that drives these futures with its own executor inside a runtime thread (the
        // conformance suite's threaded race) would otherwise see `Pending` forever once the
        // budget of the enclosing task is spent.
        async move {
            tokio::task::unconstrained(task)
                .await
                .map_err(|e| Error::store(op, e))?
        }
    }
}

/// Unix ms now, by the system clock (only to stamp a corrupt value's stand-in record).
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `PXAT` takes a positive time; 0 (the epoch) is as dead as 1.
fn pxat(expires_at: u64) -> u64 {
    expires_at.max(1)
}

/// A stored value as a record; an undecodable one becomes a stand-in whose session text is not
/// JSON, so that the gateway drops and reports it (GW1, X2). A record of a newer format (a
/// newer node wrote it) is `None`: missing to this version, and left in place (GW1).
fn decode(bytes: Vec<u8>) -> Option<Record> {
    let reason = match std::str::from_utf8(&bytes) {
        Err(_) => std::borrow::Cow::Borrowed("not UTF-8"),
        Ok(text) => match Record::decode(text) {
            Ok(record) => return Some(record),
            Err(_) if Record::newer_format(text).is_some() => return None,
            Err(reason) => reason,
        },
    };
    tracing::warn!(%reason, "redis store: undecodable session record, handing it to the gateway to drop");
    Some(Record {
        session: String::new(),
        expires_at: u64::MAX,
        ttl: 0,
        version: u64::MAX,
        created_at: now_ms(),
        owner: None,
    })
}

impl Store for RedisStore {
    fn get(&self, sid: &str) -> impl Future<Output = Result<Option<Record>>> + Send {
        let key = self.key(sid);
        let read = self.run("get", move |mut conn| async move {
            conn.get::<_, Option<Vec<u8>>>(key).await
        });
        async move { Ok(read.await?.and_then(decode)) }
    }

    fn destroy(
        &self,
        sid: &str,
        expected_version: u64,
    ) -> impl Future<Output = Result<bool>> + Send {
        let key = self.key(sid);
        let script = self.destroy.clone();
        self.run("destroy", move |mut conn| async move {
            let deleted: u64 = script
                .key(key)
                .arg(expected_version)
                .arg(Record::FORMAT)
                .invoke_async(&mut conn)
                .await?;
            Ok(deleted == 1)
        })
    }

    fn create(&self, sid: &str, record: Record) -> impl Future<Output = Result<bool>> + Send {
        let key = self.key(sid);
        let options = SetOptions::default()
            .conditional_set(ExistenceCheck::NX)
            .with_expiration(SetExpiry::PXAT(pxat(record.expires_at)));
        let value = record.encode();
        self.run("create", move |mut conn| async move {
            // `OK` when written, nil when the key exists.
            conn.set_options::<_, _, Option<String>>(key, value, options)
                .await
                .map(|reply| reply.is_some())
        })
    }

    fn update(
        &self,
        sid: &str,
        record: Record,
        expected_version: u64,
    ) -> impl Future<Output = Result<bool>> + Send {
        let key = self.key(sid);
        let value = record.encode();
        let at = pxat(record.expires_at);
        let script = self.update.clone();
        self.run("update", move |mut conn| async move {
            let reply: String = script
                .key(key)
                .arg(value)
                .arg(expected_version)
                .arg(at)
                .invoke_async(&mut conn)
                .await?;
            Ok(reply == "ok")
        })
    }

    fn list(&self) -> impl Future<Output = Result<Vec<String>>> + Send {
        let prefix = self.prefix.clone();
        let pattern = format!("{}*", glob_escape(&self.prefix));
        let store = self.clone();
        async move {
            let mut ids = std::collections::BTreeSet::new();
            let mut cursor: u64 = 0;
            loop {
                let pattern = pattern.clone();
                // One deadline per SCAN round-trip: a large database takes many.
                let (next, keys): (u64, Vec<String>) = store
                    .run("list", move |mut conn| async move {
                        ::redis::cmd("SCAN")
                            .arg(cursor)
                            .arg("MATCH")
                            .arg(pattern)
                            .arg("COUNT")
                            .arg(SCAN_COUNT)
                            .query_async(&mut conn)
                            .await
                    })
                    .await?;
                // SCAN may return a key twice; the set keeps one.
                ids.extend(
                    keys.into_iter()
                        .filter_map(|k| k.strip_prefix(&prefix).map(str::to_owned)),
                );
                if next == 0 {
                    break;
                }
                cursor = next;
            }
            Ok(ids.into_iter().collect())
        }
    }
}

/// `prefix` as a literal in a `SCAN MATCH` glob.
fn glob_escape(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len());
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_specials_are_escaped() {
        assert_eq!(glob_escape("a*b?[c]\\:"), "a\\*b\\?\\[c\\]\\\\:");
    }

    #[test]
    fn x2_an_undecodable_value_reads_as_a_record_the_gateway_drops() {
        let r = decode(b"{not a record".to_vec()).unwrap();
        assert!(r.session_object().is_err());
        assert!(!r.is_expired(now_ms()));
        let ok = Record::new(r#"{"a":1}"#, 10, 5);
        assert_eq!(decode(ok.encode().into_bytes()), Some(ok));
        assert!(decode(vec![0xff, 0xfe]).unwrap().session_object().is_err());
        // GW1: a newer node's record is missing to us (and left in place by the caller).
        assert_eq!(decode(br#"{"format":9,"session":"{}"}"#.to_vec()), None);
    }

    #[test]
    fn options_are_validated() {
        assert!(RedisOptions::default().validate().is_ok());
        assert!(RedisOptions::default().prefix("").validate().is_err());
        assert!(
            RedisOptions::default()
                .response_timeout(Duration::ZERO)
                .validate()
                .is_err()
        );
    }
}

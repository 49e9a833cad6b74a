//! Many nodes of one app on one Redis (SPEC M1-M4; feature `redis`).
//!
//! [`RedisNodes::connect`] opens everything the nodes share, under one app name `<app>`:
//!
//! | what | Redis | rule |
//! |---|---|---|
//! | sessions | [`RedisStore`], keys `<app>:sess:<sid>` | ST3, ST5 |
//! | mapping | [`RedisClientMap`]: `<app>:map:c:<cid>` -> sid, `<app>:map:s:<sid>` -> cid, both expiring with the session (`PXAT`); retired client ids `<app>:map:r:<cid>` (10 min) | M1 |
//! | exclusion | [`RedisLease`]: `<app>:lease:<sid>` holds a random token (`PX` time to live, renewed while held), `<app>:leaseq:<sid>` the FIFO of waiters | M2 |
//! | notices | [`RedisNotices`]: pub/sub channel `<app>:notices` | M3 |
//!
//! # The lease (M2)
//!
//! Three Lua scripts keep it atomic. `acquire`: a free lease with nobody queued is taken at
//! once (`SET <lease> <token> PX ttl`); otherwise the token joins the queue. `release`: the
//! holder (compare-and-delete on the token) hands the lease straight to the oldest live
//! waiter and publishes its token on `<app>:lease-wake`, so waiters are served in arrival
//! order across nodes and woken without polling; a waiter also re-checks every `ttl / 3`,
//! which refreshes its "alive" mark (a waiter that died is skipped) and covers a lost wake-up.
//! A holder renews its lease every `ttl / 3`; a node that dies holding one blocks the session
//! for at most `ttl`. A holder that stalls past its lease is fenced by the record's version:
//! its socket handler's save fails with [`Error::LeaseLost`].
//!
//! # Outages (M4)
//!
//! Every call has the deadline of [`RedisOptions::response_timeout`]; while Redis is down each
//! fails with [`Error::Store`] within it, and work resumes by itself when
//! Redis is back: the connections reconnect, the pub/sub connection re-subscribes (a watchdog
//! pings it every second so that happens without waiting for traffic). Notices sent during the
//! outage are lost; they only inform, so nothing else is.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use ::redis::aio::ConnectionManager;
use ::redis::{AsyncCommands, Client, FromRedisValue, PushInfo, PushKind, Script};
use futures::future::BoxFuture;
use serde_json::{Value, json};

use super::{ClientMap, Exclusion, Lease, Notice, NoticeBus};
use crate::error::{Error, Result};
use crate::events::{BridgeEvent, EndReason};
use crate::store::{RedisOptions, RedisStore};

/// Options of [`RedisNodes::connect`].
///
/// ```
/// use session_bridge::nodes::redis::RedisNodesOptions;
/// use session_bridge::store::RedisOptions;
/// use std::time::Duration;
/// let options = RedisNodesOptions::new("myapp")
///     .redis(RedisOptions::default().response_timeout(Duration::from_millis(500)))
///     .lease_ttl(Duration::from_secs(5));
/// assert_eq!(options.app(), "myapp");
/// ```
#[derive(Debug, Clone)]
pub struct RedisNodesOptions {
    app: String,
    redis: RedisOptions,
    lease_ttl: Duration,
    lease_wait: Duration,
}

impl RedisNodesOptions {
    /// Options for the nodes of app `app` (the namespace of every key and channel; not
    /// empty, no whitespace). Lease time to live 5 s, longest wait for a lease 30 s, Redis
    /// timeouts of [`RedisOptions::default`].
    pub fn new(app: impl Into<String>) -> Self {
        Self {
            app: app.into(),
            redis: RedisOptions::default(),
            lease_ttl: Duration::from_secs(5),
            lease_wait: Duration::from_secs(30),
        }
    }

    /// Connection and response timeouts, retries (the prefix is set from the app name).
    pub fn redis(mut self, options: RedisOptions) -> Self {
        self.redis = options;
        self
    }

    /// How long a lease lives without renewal (100 ms to 10 min): the longest a crashed
    /// node can block a session. Held leases are renewed every third of it.
    pub fn lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = ttl;
        self
    }

    /// How long `acquire` waits for a contended lease before it fails (a store error).
    pub fn lease_wait(mut self, wait: Duration) -> Self {
        self.lease_wait = wait;
        self
    }

    /// The app name.
    pub fn app(&self) -> &str {
        &self.app
    }

    fn validate(&self) -> Result<()> {
        if self.app.is_empty() || self.app.chars().any(char::is_whitespace) {
            return Err(Error::option(
                "app",
                "must not be empty nor contain whitespace",
            ));
        }
        let ttl = self.lease_ttl;
        if ttl < Duration::from_millis(100) || ttl > Duration::from_secs(600) {
            return Err(Error::option(
                "lease_ttl",
                "must be between 100 ms and 10 minutes",
            ));
        }
        if self.lease_wait.is_zero() || self.lease_wait > Duration::from_secs(3600) {
            return Err(Error::option(
                "lease_wait",
                "must be between 1 ms and 1 hour",
            ));
        }
        Ok(())
    }
}

/// Everything the nodes of one app share in Redis: pass it to
/// [`SessionBridgeBuilder::nodes`](crate::SessionBridgeBuilder::nodes). See the
/// [module docs](self).
pub struct RedisNodes {
    app: String,
    store: RedisStore,
    map: Arc<RedisClientMap>,
    lease: Arc<RedisLease>,
    notices: Arc<RedisNotices>,
    #[cfg_attr(not(feature = "redis-adapter"), allow(dead_code))]
    pubsub: Arc<PubSub>,
}

impl std::fmt::Debug for RedisNodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisNodes")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

/// The parts a builder takes.
pub(crate) struct Parts {
    pub(crate) store: RedisStore,
    pub(crate) map: Arc<dyn ClientMap>,
    pub(crate) exclusion: Arc<dyn Exclusion>,
    pub(crate) notices: Arc<dyn NoticeBus>,
}

impl RedisNodes {
    /// Connects to the Redis at `url` (`redis://[:password@]host[:port][/db]`, Redis 6.2 or
    /// newer: pub/sub runs on RESP3) inside the tokio runtime that should run the I/O.
    ///
    /// # Errors
    /// [`Error::InvalidOption`] for bad options; [`Error::Store`] (op `connect`) when Redis
    /// does not answer in time.
    pub async fn connect(url: &str, options: RedisNodesOptions) -> Result<Self> {
        options.validate()?;
        let app = options.app.clone();
        let redis = options.redis.clone().prefix(format!("{app}:sess:"));
        let store = RedisStore::connect(url, redis.clone()).await?;
        let pubsub = Arc::new(PubSub::connect(url, &redis, store.runtime().clone()).await?);
        let map = Arc::new(RedisClientMap {
            store: store.clone(),
            prefix: format!("{app}:map:"),
            link: Script::new(LINK_SCRIPT),
            touch: Script::new(TOUCH_SCRIPT),
            detach: Script::new(DETACH_SCRIPT),
        });
        let lease = Arc::new(RedisLease::new(
            store.clone(),
            &app,
            options.lease_ttl,
            options.lease_wait,
        ));
        let wake = Arc::clone(&lease.waiters);
        pubsub
            .subscribe(
                lease.wake_channel.clone(),
                Arc::new(move |_, token: &[u8]| {
                    if let Ok(token) = std::str::from_utf8(token) {
                        wake.wake(token);
                    }
                }),
            )
            .await?;
        let notices = Arc::new(RedisNotices {
            node: crate::id::random_token(),
            channel: format!("{app}:notices"),
            store: store.clone(),
            pubsub: Arc::clone(&pubsub),
        });
        Ok(Self {
            app,
            store,
            map,
            lease,
            notices,
            pubsub,
        })
    }

    /// The session store part.
    pub fn store(&self) -> &RedisStore {
        &self.store
    }

    /// The mapping part.
    pub fn client_map(&self) -> Arc<RedisClientMap> {
        Arc::clone(&self.map)
    }

    /// The exclusion part.
    pub fn lease(&self) -> Arc<RedisLease> {
        Arc::clone(&self.lease)
    }

    /// The notices part.
    pub fn notices(&self) -> Arc<RedisNotices> {
        Arc::clone(&self.notices)
    }

    /// This node's id in the notices.
    pub fn node(&self) -> &str {
        &self.notices.node
    }

    /// The app name (the namespace of the keys and channels).
    pub fn app(&self) -> &str {
        &self.app
    }

    /// The pub/sub connection (reconnecting, re-subscribing), for the socket.io adapter.
    #[cfg(feature = "redis-adapter")]
    pub(crate) fn pubsub(&self) -> Arc<PubSub> {
        Arc::clone(&self.pubsub)
    }

    pub(crate) fn into_parts(self) -> Parts {
        Parts {
            store: self.store,
            map: self.map,
            exclusion: self.lease,
            notices: self.notices,
        }
    }
}

// -- pub/sub ---------------------------------------------------------------------------------

type Handler = Arc<dyn Fn(&str, &[u8]) + Send + Sync>;

/// One RESP3 connection for every subscription of a node: it reconnects and re-subscribes by
/// itself, and dispatches messages to handlers by channel (the handlers never block).
pub(crate) struct PubSub {
    conn: ConnectionManager,
    handlers: Arc<RwLock<HashMap<String, Handler>>>,
    runtime: tokio::runtime::Handle,
    deadline: Duration,
}

impl PubSub {
    async fn connect(
        url: &str,
        options: &RedisOptions,
        runtime: tokio::runtime::Handle,
    ) -> Result<Self> {
        let url = with_resp3(url);
        let client = Client::open(url.as_str()).map_err(|e| Error::store("connect", e))?;
        let handlers: Arc<RwLock<HashMap<String, Handler>>> = Arc::default();
        let dispatch = Arc::clone(&handlers);
        let config = options
            .manager_config()
            .set_push_sender(move |info: PushInfo| {
                dispatch_push(&dispatch, info);
                Ok::<(), std::convert::Infallible>(())
            })
            .set_automatic_resubscription();
        let deadline = options.response_timeout_value();
        let conn = runtime
            .spawn(async move {
                tokio::time::timeout(
                    deadline * 4 + Duration::from_secs(1),
                    ConnectionManager::new_with_config(client, config),
                )
                .await
            })
            .await
            .map_err(|e| Error::store("connect", e))?
            .map_err(|_| Error::store("connect", "redis pub/sub did not answer in time"))?
            .map_err(|e| Error::store("connect", e))?;
        // The watchdog: a command on the connection makes it notice a lost link, reconnect
        // and re-subscribe even when nothing else is sent on it.
        let mut ping = conn.clone();
        let weak = Arc::downgrade(&handlers);
        runtime.spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                if weak.strong_count() == 0 {
                    return;
                }
                let _ = tokio::time::timeout(
                    deadline,
                    ::redis::cmd("PING").query_async::<::redis::Value>(&mut ping),
                )
                .await;
            }
        });
        Ok(Self {
            conn,
            handlers,
            runtime,
            deadline,
        })
    }

    /// Subscribes `handler` to `channel` (replacing an earlier handler of it).
    pub(crate) async fn subscribe(&self, channel: String, handler: Handler) -> Result<()> {
        self.handlers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(channel.clone(), handler);
        let mut conn = self.conn.clone();
        let deadline = self.deadline;
        self.runtime
            .spawn(async move {
                match tokio::time::timeout(deadline, conn.subscribe(channel.as_str())).await {
                    Ok(result) => result.map_err(|e| Error::store("subscribe", e)),
                    Err(_) => Err(Error::store("subscribe", "redis did not answer in time")),
                }
            })
            .await
            .map_err(|e| Error::store("subscribe", e))?
    }

    /// Unsubscribes `channel`.
    #[cfg(feature = "redis-adapter")]
    pub(crate) async fn unsubscribe(&self, channel: String) -> Result<()> {
        self.handlers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&channel);
        let mut conn = self.conn.clone();
        let deadline = self.deadline;
        self.runtime
            .spawn(async move {
                match tokio::time::timeout(deadline, conn.unsubscribe(channel.as_str())).await {
                    Ok(result) => result.map_err(|e| Error::store("unsubscribe", e)),
                    Err(_) => Err(Error::store("unsubscribe", "redis did not answer in time")),
                }
            })
            .await
            .map_err(|e| Error::store("unsubscribe", e))?
    }

    /// `PUBLISH channel payload` on the subscriber connection (RESP3 allows commands there).
    #[cfg(feature = "redis-adapter")]
    pub(crate) async fn publish(&self, channel: String, payload: Vec<u8>) -> Result<()> {
        let mut conn = self.conn.clone();
        let deadline = self.deadline;
        self.runtime
            .spawn(async move {
                match tokio::time::timeout(
                    deadline,
                    conn.publish::<_, _, ::redis::Value>(channel, payload),
                )
                .await
                {
                    Ok(result) => result.map(drop).map_err(|e| Error::store("publish", e)),
                    Err(_) => Err(Error::store("publish", "redis did not answer in time")),
                }
            })
            .await
            .map_err(|e| Error::store("publish", e))?
    }

    /// `PUBSUB NUMSUB channel`: how many connections listen on it.
    #[cfg(feature = "redis-adapter")]
    pub(crate) async fn subscribers(&self, channel: String) -> Result<u16> {
        let mut conn = self.conn.clone();
        let deadline = self.deadline;
        self.runtime
            .spawn(async move {
                let mut cmd = ::redis::cmd("PUBSUB");
                cmd.arg("NUMSUB").arg(channel);
                let query = cmd.query_async::<(String, u16)>(&mut conn);
                match tokio::time::timeout(deadline, query).await {
                    Ok(result) => result
                        .map(|(_, n)| n)
                        .map_err(|e| Error::store("numsub", e)),
                    Err(_) => Err(Error::store("numsub", "redis did not answer in time")),
                }
            })
            .await
            .map_err(|e| Error::store("numsub", e))?
    }
}

fn dispatch_push(handlers: &RwLock<HashMap<String, Handler>>, info: PushInfo) {
    if !matches!(info.kind, PushKind::Message) || info.data.len() < 2 {
        return;
    }
    let mut data = info.data.into_iter();
    let (Some(channel), Some(payload)) = (data.next(), data.next()) else {
        return;
    };
    let (Ok(channel), Ok(payload)) = (
        String::from_redis_value(channel),
        Vec::<u8>::from_redis_value(payload),
    ) else {
        return;
    };
    let handler = handlers
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&channel)
        .cloned();
    if let Some(handler) = handler {
        handler(&channel, &payload);
    }
}

/// `url` with `protocol=resp3` (push messages on a managed connection need it).
fn with_resp3(url: &str) -> String {
    if url.contains("protocol=") {
        return url.to_owned();
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}protocol=resp3")
}

/// Runs `script` with `keys` and `args` through the store's connection, deadline and errors.
fn eval<T: FromRedisValue + Send + 'static>(
    store: &RedisStore,
    op: &'static str,
    script: &Script,
    keys: Vec<String>,
    args: Vec<String>,
) -> impl std::future::Future<Output = Result<T>> + Send + 'static {
    let script = script.clone();
    store.run(op, move |mut conn| async move {
        let mut invocation = script.prepare_invoke();
        for key in keys {
            invocation.key(key);
        }
        for arg in args {
            invocation.arg(arg);
        }
        invocation.invoke_async::<T>(&mut conn).await
    })
}

// -- the mapping (M1) ------------------------------------------------------------------------

/// Links a client and a session 1:1, unlinking what either had. KEYS: c:<cid>, s:<sid>;
/// ARGV: cid, sid, expiry (unix ms), map prefix, mode: "1" = only if unclaimed by another
/// client, "2" = only while the client's entry is ARGV[6] ("" = no entry), "0" = always.
const LINK_SCRIPT: &str = r#"
local owner = redis.call('GET', KEYS[2])
if ARGV[5] == '1' and owner and owner ~= ARGV[1] then
  return 0
end
local old_sid = redis.call('GET', KEYS[1])
if ARGV[5] == '2' and (old_sid or '') ~= ARGV[6] then
  return 0
end
if old_sid and old_sid ~= ARGV[2] then
  local k = ARGV[4] .. 's:' .. old_sid
  if redis.call('GET', k) == ARGV[1] then redis.call('DEL', k) end
end
if owner and owner ~= ARGV[1] then
  local k = ARGV[4] .. 'c:' .. owner
  if redis.call('GET', k) == ARGV[2] then redis.call('DEL', k) end
end
redis.call('SET', KEYS[1], ARGV[2], 'PXAT', ARGV[3])
redis.call('SET', KEYS[2], ARGV[1], 'PXAT', ARGV[3])
return 1
"#;

/// Moves a mapped session's expiry; returns its client. KEYS: s:<sid>; ARGV: expiry, prefix,
/// sid.
const TOUCH_SCRIPT: &str = r#"
local cid = redis.call('GET', KEYS[1])
if not cid then return false end
redis.call('PEXPIREAT', KEYS[1], ARGV[1])
local k = ARGV[2] .. 'c:' .. cid
if redis.call('GET', k) == ARGV[3] then redis.call('PEXPIREAT', k, ARGV[1]) end
return cid
"#;

/// Unlinks a session; returns its client. KEYS: s:<sid>; ARGV: prefix, sid.
const DETACH_SCRIPT: &str = r#"
local cid = redis.call('GET', KEYS[1])
if not cid then return false end
redis.call('DEL', KEYS[1])
local k = ARGV[1] .. 'c:' .. cid
if redis.call('GET', k) == ARGV[2] then redis.call('DEL', k) end
return cid
"#;

/// The [`ClientMap`] of many nodes: both directions in Redis, expiring with the session
/// (`PXAT`, so nothing needs retiring by hand), linked and unlinked by Lua scripts so both
/// directions always move together. It caches nothing: every look-up asks Redis.
pub struct RedisClientMap {
    store: RedisStore,
    prefix: String,
    link: Script,
    touch: Script,
    detach: Script,
}

impl std::fmt::Debug for RedisClientMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisClientMap")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// When [`RedisClientMap::link`] links.
enum Link<'a> {
    Always,
    /// Unless another client holds the session (H2 b).
    Unclaimed,
    /// Only while the client's entry is this session (`None`: no entry; H2 creation).
    ClientAt(Option<&'a str>),
}

impl RedisClientMap {
    fn key(&self, kind: &str, id: &str) -> String {
        format!("{}{kind}:{id}", self.prefix)
    }

    fn link(
        &self,
        cid: &str,
        sid: &str,
        expires_at: u64,
        mode: Link<'_>,
    ) -> BoxFuture<'static, Result<bool>> {
        let (mode, expected) = match mode {
            Link::Always => ("0", ""),
            Link::Unclaimed => ("1", ""),
            Link::ClientAt(expected) => ("2", expected.unwrap_or_default()),
        };
        let fut = eval::<i64>(
            &self.store,
            "map_attach",
            &self.link,
            vec![self.key("c", cid), self.key("s", sid)],
            vec![
                cid.to_owned(),
                sid.to_owned(),
                expires_at.max(1).to_string(),
                self.prefix.clone(),
                mode.to_owned(),
                expected.to_owned(),
            ],
        );
        Box::pin(async move { Ok(fut.await? == 1) })
    }
}

impl ClientMap for RedisClientMap {
    fn session_id<'a>(&'a self, cid: &'a str) -> BoxFuture<'a, Result<Option<String>>> {
        let key = self.key("c", cid);
        Box::pin(self.store.run("map_get", move |mut conn| async move {
            conn.get::<_, Option<String>>(key).await
        }))
    }

    fn client_id<'a>(&'a self, sid: &'a str) -> BoxFuture<'a, Result<Option<String>>> {
        let key = self.key("s", sid);
        Box::pin(self.store.run("map_get", move |mut conn| async move {
            conn.get::<_, Option<String>>(key).await
        }))
    }

    fn attach<'a>(
        &'a self,
        cid: &'a str,
        sid: &'a str,
        expires_at: u64,
    ) -> BoxFuture<'a, Result<()>> {
        let fut = self.link(cid, sid, expires_at, Link::Always);
        Box::pin(async move { fut.await.map(drop) })
    }

    fn attach_if_unclaimed<'a>(
        &'a self,
        cid: &'a str,
        sid: &'a str,
        expires_at: u64,
    ) -> BoxFuture<'a, Result<bool>> {
        self.link(cid, sid, expires_at, Link::Unclaimed)
    }

    fn attach_new<'a>(
        &'a self,
        cid: &'a str,
        sid: &'a str,
        expires_at: u64,
        expected: Option<&'a str>,
    ) -> BoxFuture<'a, Result<bool>> {
        self.link(cid, sid, expires_at, Link::ClientAt(expected))
    }

    fn touch<'a>(&'a self, sid: &'a str, expires_at: u64) -> BoxFuture<'a, Result<Option<String>>> {
        Box::pin(eval(
            &self.store,
            "map_touch",
            &self.touch,
            vec![self.key("s", sid)],
            vec![
                expires_at.max(1).to_string(),
                self.prefix.clone(),
                sid.to_owned(),
            ],
        ))
    }

    fn detach<'a>(&'a self, sid: &'a str) -> BoxFuture<'a, Result<Option<String>>> {
        Box::pin(eval(
            &self.store,
            "map_detach",
            &self.detach,
            vec![self.key("s", sid)],
            vec![self.prefix.clone(), sid.to_owned()],
        ))
    }

    fn retire_client<'a>(
        &'a self,
        cid: &'a str,
        until: u64,
        _now: u64,
    ) -> BoxFuture<'a, Result<()>> {
        let key = self.key("r", cid);
        Box::pin(self.store.run("map_retire", move |mut conn| async move {
            ::redis::cmd("SET")
                .arg(key)
                .arg(1)
                .arg("PXAT")
                .arg(until.max(1))
                .query_async::<()>(&mut conn)
                .await
        }))
    }

    fn is_retired_client<'a>(&'a self, cid: &'a str, _now: u64) -> BoxFuture<'a, Result<bool>> {
        let key = self.key("r", cid);
        Box::pin(self.store.run("map_retired", move |mut conn| async move {
            conn.exists::<_, bool>(key).await
        }))
    }
}

// -- the lease (M2) --------------------------------------------------------------------------

/// KEYS: lease, queue; ARGV: token, ttl ms, alive prefix, waiter ttl ms. 1: held.
const ACQUIRE_SCRIPT: &str = r#"
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('LREM', KEYS[2], 0, ARGV[1])
  redis.call('DEL', ARGV[3] .. ARGV[1])
  return 1
end
if not holder then
  while true do
    local head = redis.call('LINDEX', KEYS[2], 0)
    if (not head) or head == ARGV[1] or redis.call('EXISTS', ARGV[3] .. head) == 1 then break end
    redis.call('LPOP', KEYS[2])
  end
  local head = redis.call('LINDEX', KEYS[2], 0)
  if (not head) or head == ARGV[1] then
    if head then redis.call('LPOP', KEYS[2]) end
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
    redis.call('DEL', ARGV[3] .. ARGV[1])
    return 1
  end
end
redis.call('SET', ARGV[3] .. ARGV[1], '1', 'PX', ARGV[4])
if not redis.call('LPOS', KEYS[2], ARGV[1]) then
  redis.call('RPUSH', KEYS[2], ARGV[1])
end
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return 0
"#;

/// Leaves the queue and, when holding, hands the lease to the oldest live waiter (publishing
/// its token) or frees it. KEYS: lease, queue; ARGV: token, ttl ms, alive prefix, channel.
const RELEASE_SCRIPT: &str = r#"
redis.call('LREM', KEYS[2], 0, ARGV[1])
redis.call('DEL', ARGV[3] .. ARGV[1])
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
while true do
  local head = redis.call('LPOP', KEYS[2])
  if not head then break end
  if redis.call('EXISTS', ARGV[3] .. head) == 1 then
    redis.call('SET', KEYS[1], head, 'PX', ARGV[2])
    redis.call('PUBLISH', ARGV[4], head)
    return 2
  end
end
redis.call('DEL', KEYS[1])
return 1
"#;

/// The longest this node's next local waiter waits for a release to be answered.
const HANDOVER_BOUND: Duration = Duration::from_millis(100);

/// KEYS: lease; ARGV: token, ttl ms. 1: still held and renewed.
const RENEW_SCRIPT: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"#;

/// Local waiters by token, woken by the wake channel.
#[derive(Default)]
struct Waiters(Mutex<HashMap<String, Arc<tokio::sync::Notify>>>);

impl Waiters {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<tokio::sync::Notify>>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wake(&self, token: &str) {
        if let Some(notify) = self.lock().get(token) {
            notify.notify_one();
        }
    }
}

/// The [`Exclusion`] of many nodes: a Redis lease per session, FIFO across nodes. See the
/// [module docs](self).
pub struct RedisLease {
    inner: Arc<LeaseInner>,
    waiters: Arc<Waiters>,
    wake_channel: String,
}

struct LeaseInner {
    store: RedisStore,
    prefix: String,
    alive_prefix: String,
    wake_channel: String,
    ttl: Duration,
    wait: Duration,
    acquire: Script,
    release: Script,
    renew: Script,
}

impl std::fmt::Debug for RedisLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLease")
            .field("prefix", &self.inner.prefix)
            .field("ttl", &self.inner.ttl)
            .finish_non_exhaustive()
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl RedisLease {
    fn new(store: RedisStore, app: &str, ttl: Duration, wait: Duration) -> Self {
        let wake_channel = format!("{app}:lease-wake");
        Self {
            inner: Arc::new(LeaseInner {
                store,
                prefix: format!("{app}:lease"),
                alive_prefix: format!("{app}:leasew:"),
                wake_channel: wake_channel.clone(),
                ttl,
                wait,
                acquire: Script::new(ACQUIRE_SCRIPT),
                release: Script::new(RELEASE_SCRIPT),
                renew: Script::new(RENEW_SCRIPT),
            }),
            waiters: Arc::default(),
            wake_channel,
        }
    }
}

impl LeaseInner {
    fn keys(&self, sid: &str) -> (String, String) {
        (
            format!("{}:{sid}", self.prefix),
            format!("{}q:{sid}", self.prefix),
        )
    }

    async fn try_acquire(&self, sid: &str, token: &str) -> Result<bool> {
        let (lease, queue) = self.keys(sid);
        let ttl = ms(self.ttl).to_string();
        let held = eval::<i64>(
            &self.store,
            "lease_acquire",
            &self.acquire,
            vec![lease, queue],
            vec![
                token.to_owned(),
                ttl.clone(),
                self.alive_prefix.clone(),
                ttl,
            ],
        )
        .await?;
        Ok(held == 1)
    }

    fn release_task(
        &self,
        sid: &str,
        token: &str,
    ) -> impl std::future::Future<Output = Result<i64>> + Send + 'static {
        let (lease, queue) = self.keys(sid);
        eval(
            &self.store,
            "lease_release",
            &self.release,
            vec![lease, queue],
            vec![
                token.to_owned(),
                ms(self.ttl).to_string(),
                self.alive_prefix.clone(),
                self.wake_channel.clone(),
            ],
        )
    }

    fn renew_task(
        &self,
        sid: &str,
        token: &str,
    ) -> impl std::future::Future<Output = Result<i64>> + Send + 'static {
        let (lease, _) = self.keys(sid);
        eval(
            &self.store,
            "lease_renew",
            &self.renew,
            vec![lease],
            vec![token.to_owned(), ms(self.ttl).to_string()],
        )
    }
}

/// Leaves the queue (and passes on a lease handed over meanwhile) when an `acquire` is
/// dropped before it finished.
struct Waiting {
    inner: Arc<LeaseInner>,
    waiters: Arc<Waiters>,
    sid: String,
    token: String,
    done: bool,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.waiters.lock().remove(&self.token);
        if !self.done {
            let release = self.inner.release_task(&self.sid, &self.token);
            self.inner.store.runtime().spawn(release);
        }
    }
}

impl Exclusion for RedisLease {
    fn acquire<'a>(&'a self, sid: &'a str) -> BoxFuture<'a, Result<Box<dyn Lease>>> {
        Box::pin(async move {
            let inner = &self.inner;
            let token = crate::id::random_token();
            let notify = Arc::new(tokio::sync::Notify::new());
            self.waiters
                .lock()
                .insert(token.clone(), Arc::clone(&notify));
            let mut waiting = Waiting {
                inner: Arc::clone(inner),
                waiters: Arc::clone(&self.waiters),
                sid: sid.to_owned(),
                token: token.clone(),
                done: false,
            };
            let started = tokio::time::Instant::now();
            let recheck = inner.ttl / 3;
            loop {
                // Ask first, wait after: a wake-up that comes between the two is kept by the
                // `Notify` permit.
                if inner.try_acquire(sid, &token).await? {
                    break;
                }
                let left = inner.wait.saturating_sub(started.elapsed());
                if left.is_zero() {
                    return Err(Error::store(
                        "lease_acquire",
                        format!("the session's lease stayed taken for {:?}", inner.wait),
                    ));
                }
                let _ = tokio::time::timeout(recheck.min(left), notify.notified()).await;
            }
            waiting.done = true;
            drop(waiting);
            let lost = Arc::new(AtomicBool::new(false));
            let renewer = {
                let inner = Arc::clone(inner);
                let (sid, token, lost) = (sid.to_owned(), token.clone(), Arc::clone(&lost));
                inner.store.runtime().clone().spawn(async move {
                    let mut last_ok = tokio::time::Instant::now();
                    loop {
                        tokio::time::sleep(inner.ttl / 3).await;
                        match inner.renew_task(&sid, &token).await {
                            Ok(1) => last_ok = tokio::time::Instant::now(),
                            Ok(_) => {
                                lost.store(true, Ordering::Relaxed);
                                return;
                            }
                            Err(_) if last_ok.elapsed() >= inner.ttl => {
                                lost.store(true, Ordering::Relaxed);
                                return;
                            }
                            Err(_) => {}
                        }
                    }
                })
            };
            Ok(Box::new(RedisHeld {
                inner: Arc::clone(inner),
                sid: sid.to_owned(),
                token,
                lost,
                renewer,
                released: false,
            }) as Box<dyn Lease>)
        })
    }
}

/// A held lease: released by [`Lease::release`], or when dropped without it (then in the
/// background, and nothing waits for it).
struct RedisHeld {
    inner: Arc<LeaseInner>,
    sid: String,
    token: String,
    lost: Arc<AtomicBool>,
    renewer: tokio::task::JoinHandle<()>,
    released: bool,
}

impl Lease for RedisHeld {
    fn lost(&self) -> bool {
        self.lost.load(Ordering::Relaxed)
    }

    fn release(mut self: Box<Self>, then: Box<dyn FnOnce() + Send>) {
        let mut release = self.spawn_release();
        self.inner.store.runtime().spawn(async move {
            // This node's next waiter gets the local lock once the lease is released, or after
            // a short bound when Redis is slow to answer (an outage): it then queues behind
            // the lease in Redis instead of behind this release's timeout.
            let _ = tokio::time::timeout(HANDOVER_BOUND, &mut release).await;
            then();
        });
    }
}

impl RedisHeld {
    /// Stops the renewals and releases the lease in the background (once).
    fn spawn_release(&mut self) -> tokio::task::JoinHandle<()> {
        self.renewer.abort();
        self.released = true;
        let release = self.inner.release_task(&self.sid, &self.token);
        self.inner.store.runtime().spawn(async move {
            if let Err(err) = release.await {
                tracing::debug!(error = %err, "releasing a session lease failed; it lapses by itself");
            }
        })
    }
}

impl Drop for RedisHeld {
    fn drop(&mut self) {
        if !self.released {
            self.spawn_release();
        }
    }
}

// -- notices (M3) ----------------------------------------------------------------------------

/// The [`NoticeBus`] of many nodes: Redis pub/sub on `<app>:notices`, re-subscribed after a
/// reconnect. A notice is a small JSON object naming the node, the event and its ids.
pub struct RedisNotices {
    node: String,
    channel: String,
    store: RedisStore,
    pubsub: Arc<PubSub>,
}

impl std::fmt::Debug for RedisNotices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisNotices")
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

/// The wire form of a notice (`None` for events that do not travel).
pub(crate) fn encode_notice(notice: &Notice) -> Option<String> {
    let body = match &notice.event {
        BridgeEvent::SessionSet {
            client_id,
            session_id,
            is_new,
            is_init,
        } => json!({
            "node": notice.node, "kind": "set", "sid": session_id.as_str(),
            "cid": client_id.as_ref().map(|c| c.as_str()), "new": is_new, "init": is_init,
        }),
        BridgeEvent::SessionDestroy {
            client_id,
            session_id,
            reason,
        } => json!({
            "node": notice.node, "kind": "destroy", "sid": session_id.as_str(),
            "cid": client_id.as_ref().map(|c| c.as_str()), "reason": reason.as_str(),
        }),
        _ => return None,
    };
    Some(body.to_string())
}

/// Reads a notice; `None` for anything malformed (a notice grants nothing, so a bad one is
/// simply dropped).
pub(crate) fn decode_notice(bytes: &[u8]) -> Option<Notice> {
    let value: Value = serde_json::from_slice(bytes).ok()?;
    let text = |k: &str| value.get(k).and_then(Value::as_str);
    let node = text("node")?.to_owned();
    let session_id = text("sid")?.into();
    let client_id = text("cid").map(Into::into);
    let flag = |k: &str| value.get(k).and_then(Value::as_bool);
    let event = match text("kind")? {
        "set" => BridgeEvent::SessionSet {
            client_id,
            session_id,
            is_new: flag("new")?,
            is_init: flag("init")?,
        },
        "destroy" => BridgeEvent::SessionDestroy {
            client_id,
            session_id,
            reason: EndReason::from_word(text("reason")?)?,
        },
        _ => return None,
    };
    Some(Notice { node, event })
}

impl NoticeBus for RedisNotices {
    fn node(&self) -> &str {
        &self.node
    }

    fn publish(&self, notice: Notice) {
        let Some(payload) = encode_notice(&notice) else {
            return;
        };
        let channel = self.channel.clone();
        let publish = self.store.run("notice", move |mut conn| async move {
            conn.publish::<_, _, ::redis::Value>(channel, payload).await
        });
        self.store.runtime().spawn(async move {
            if let Err(err) = publish.await {
                tracing::debug!(error = %err, "a notice to the other nodes was lost");
            }
        });
    }

    fn listen(&self, deliver: Box<dyn Fn(Notice) + Send + Sync>) {
        let pubsub = Arc::clone(&self.pubsub);
        let channel = self.channel.clone();
        let deliver: Arc<dyn Fn(Notice) + Send + Sync> = Arc::from(deliver);
        self.store.runtime().spawn(async move {
            let handler: Handler = Arc::new(move |_, bytes: &[u8]| {
                if let Some(notice) = decode_notice(bytes) {
                    deliver(notice);
                }
            });
            // Until the first subscription succeeds (Redis may be down at start); after it the
            // connection re-subscribes by itself.
            while let Err(err) = pubsub
                .subscribe(channel.clone(), Arc::clone(&handler))
                .await
            {
                tracing::warn!(error = %err, "subscribing to the nodes' notices failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_round_trip_and_malformed_ones_are_dropped() {
        for event in [
            BridgeEvent::SessionSet {
                client_id: Some("c".into()),
                session_id: "s".into(),
                is_new: false,
                is_init: true,
            },
            BridgeEvent::SessionDestroy {
                client_id: None,
                session_id: "s".into(),
                reason: EndReason::Regenerated,
            },
        ] {
            let notice = Notice {
                node: "n1".into(),
                event,
            };
            let wire = encode_notice(&notice).unwrap_or_default();
            assert_eq!(decode_notice(wire.as_bytes()), Some(notice));
        }
        for bad in [
            &b"not json"[..],
            br#"{"node":"n","kind":"destroy","sid":"s","reason":"nope"}"#,
            br#"{"node":"n","kind":"grant","sid":"s"}"#,
            br#"{"kind":"set","sid":"s","new":true,"init":true}"#,
        ] {
            assert_eq!(decode_notice(bad), None);
        }
    }

    #[test]
    fn resp3_is_added_to_the_url_once() {
        assert_eq!(with_resp3("redis://h:1/0"), "redis://h:1/0?protocol=resp3");
        assert_eq!(
            with_resp3("redis://h/?x=1"),
            "redis://h/?x=1&protocol=resp3"
        );
        assert_eq!(
            with_resp3("redis://h/?protocol=resp3"),
            "redis://h/?protocol=resp3"
        );
    }
}

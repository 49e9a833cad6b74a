//! What the poem and salvo quick starts share: the seed README's protocol, written once.
//!
//! HTTP (`/api/session`, `/api/read`, `/api/user`, `/api/login`, `/api/logout`, `/plain`,
//! `/`) is routed by each framework and calls the
//! functions here; the socket.io side is the same for both.
#![allow(dead_code)] // each example uses a subset

use std::time::Duration;

use serde_json::{Value, json};
use session_bridge::clock::{Clock, SystemClock};
use session_bridge::integrations::socketioxide::{
    OnSessionEnd, bind_session, forward_session_changes, forward_session_ends,
};
use session_bridge::{
    Key, SameSite, Session, SessionBridge, SessionContext, SessionId, SocketSession,
};
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, Data, SocketRef};
use socketioxide::handler::ConnectHandler;
use socketioxide_core::adapter::{DefinedAdapter, Spawnable};

/// The warning printed when `SESSION_KEYS` is unset (O1).
pub const EPHEMERAL_WARNING: &str =
    "SESSION_KEYS is not set: using ephemeral keys; every restart logs everyone out";

/// The signing keys of `SESSION_KEYS` (O1): comma-separated, newest first (the first signs,
/// all verify), each at least [`Key::MIN_LEN`] bytes. `Ok(None)` when the variable is unset;
/// an error message (naming the variable and the key's position, never the key) when it is
/// set but not usable.
pub fn session_keys_from(value: Option<&str>) -> Result<Option<Vec<Key>>, String> {
    let Some(value) = value else {
        return Ok(None);
    };
    let parts: Vec<&str> = value.split(',').map(str::trim).collect();
    let total = parts.len();
    let mut keys = Vec::with_capacity(total);
    for (i, part) in parts.into_iter().enumerate() {
        if part.len() < Key::MIN_LEN {
            return Err(format!(
                "SESSION_KEYS: key {} of {total} is {} bytes; each key must be at least {} bytes \
                 (comma-separated, newest first)",
                i + 1,
                part.len(),
                Key::MIN_LEN
            ));
        }
        keys.push(Key::try_from(part).map_err(|err| format!("SESSION_KEYS: {err}"))?);
    }
    Ok(Some(keys))
}

/// What a quick start runs on: its bridge and, in multi-node mode, the socket.io adapter
/// that makes the browsers' rooms span the nodes.
pub struct QuickStart {
    pub bridge: SessionBridge,
    #[cfg(feature = "redis-adapter")]
    pub adapter: Option<
        socketioxide_redis::RedisAdapterCtr<
            session_bridge::integrations::socketioxide::redis::NodesDriver,
        >,
    >,
}

/// The bridge of the Quick Start: key `app.sid`, signed with `SESSION_KEYS` (ephemeral keys
/// and a warning on stderr when unset), 1 day, SameSite Lax, HttpOnly, `secure(false)` for
/// local http. A bad `SESSION_KEYS` or option exits with status 2 and a message.
///
/// `SESSION_STORE=redis://...` runs the quick start as one node of many (M1-M4): sessions,
/// the client mapping, the per-session lease and the notices all on that Redis, and the
/// socket.io adapter over it; start two on two ports with the same `SESSION_KEYS` and they
/// serve the same browsers.
pub async fn bridge() -> QuickStart {
    let env = std::env::var("SESSION_KEYS");
    let keys = match env {
        Ok(value) => session_keys_from(Some(&value)),
        Err(std::env::VarError::NotPresent) => session_keys_from(None),
        Err(std::env::VarError::NotUnicode(_)) => Err("SESSION_KEYS is not valid UTF-8".into()),
    };
    let builder = SessionBridge::builder()
        .key("app.sid")
        .max_age(Duration::from_secs(24 * 3600))
        .same_site(Some(SameSite::Lax))
        .http_only(true)
        .secure(false);
    let builder = match keys {
        Ok(Some(keys)) => builder.keys(keys),
        Ok(None) => {
            eprintln!("warning: {EPHEMERAL_WARNING}");
            builder.ephemeral_keys(true)
        }
        Err(message) => {
            eprintln!("error: {message}");
            std::process::exit(2);
        }
    };
    #[cfg(feature = "redis-adapter")]
    let mut adapter = None;
    let builder = match store_from_env().await {
        Ok(Some(store)) => {
            #[cfg(feature = "redis-adapter")]
            if let ChosenStore::Redis(nodes) = &store {
                adapter = Some(nodes.socket_adapter());
            }
            store.apply(builder)
        }
        Ok(None) => builder,
        Err(message) => {
            eprintln!("error: {message}");
            std::process::exit(2);
        }
    };
    let builder = load_env(builder);
    match builder.build() {
        Ok(bridge) => QuickStart {
            bridge,
            #[cfg(feature = "redis-adapter")]
            adapter,
        },
        Err(err) => {
            eprintln!("error: invalid bridge options: {err}");
            std::process::exit(2);
        }
    }
}

/// A store chosen by `SESSION_STORE`.
enum ChosenStore {
    #[cfg(feature = "redis-adapter")]
    Redis(Box<session_bridge::nodes::redis::RedisNodes>),
    #[cfg(feature = "file")]
    File(session_bridge::store::FileStore),
}

impl ChosenStore {
    fn apply(
        self,
        builder: session_bridge::SessionBridgeBuilder,
    ) -> session_bridge::SessionBridgeBuilder {
        match self {
            #[cfg(feature = "redis-adapter")]
            ChosenStore::Redis(nodes) => builder.nodes(*nodes),
            #[cfg(feature = "file")]
            ChosenStore::File(store) => builder.store(store),
        }
    }
}

/// `SESSION_STORE`: unset or `memory` -> the default LiveStore (`Ok(None)`);
/// `redis://host:port[/db]` -> a RedisStore (feature `redis`); `file:<dir>` -> a FileStore
/// (feature `file`). A bad value is an error message for stderr, never a panic.
async fn store_from_env() -> Result<Option<ChosenStore>, String> {
    let value = match std::env::var("SESSION_STORE") {
        Ok(value) => value,
        Err(std::env::VarError::NotPresent) => return Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => {
            return Err("SESSION_STORE is not valid UTF-8".into());
        }
    };
    if value.is_empty() || value == "memory" {
        return Ok(None);
    }
    if value.starts_with("redis://") {
        #[cfg(feature = "redis-adapter")]
        {
            use session_bridge::nodes::redis::{RedisNodes, RedisNodesOptions};
            return match RedisNodes::connect(&value, RedisNodesOptions::new("quick-start")).await {
                Ok(nodes) => {
                    eprintln!(
                        "multi-node mode: sessions, mapping, leases, notices and socket.io rooms \
                         on Redis (SESSION_STORE)"
                    );
                    Ok(Some(ChosenStore::Redis(Box::new(nodes))))
                }
                Err(err) => Err(format!("SESSION_STORE: cannot use that Redis: {err}")),
            };
        }
        #[cfg(not(feature = "redis-adapter"))]
        return Err(
            "SESSION_STORE=redis://... needs the `redis-adapter` feature \
                    (--features ...,redis-adapter)"
                .into(),
        );
    }
    if let Some(dir) = value.strip_prefix("file:") {
        #[cfg(feature = "file")]
        {
            return match session_bridge::store::FileStore::open(dir) {
                Ok(store) => {
                    eprintln!("sessions are kept in files (SESSION_STORE)");
                    Ok(Some(ChosenStore::File(store)))
                }
                Err(err) => Err(format!("SESSION_STORE: cannot use that directory: {err}")),
            };
        }
        #[cfg(not(feature = "file"))]
        {
            let _ = dir;
            return Err(
                "SESSION_STORE=file:<dir> needs the `file` feature (--features ...,file)".into(),
            );
        }
    }
    Err("SESSION_STORE must be `memory`, `file:<dir>` or `redis://host:port[/db]`".into())
}

/// S6: tells a browser's sockets when its session ends (`session:ended` with the reason,
/// sockets kept connected); the demo page then reconnects to bind to its new session.
///
/// Live push: also tells them when the session changed (`session:changed`), so the demo
/// page's socket panel follows HTTP writes and logins by itself.
pub fn spawn_session_end_notices<A: Adapter>(io: &SocketIo<A>, bridge: &SessionBridge) {
    tokio::spawn(forward_session_ends(
        io.clone(),
        bridge.clone(),
        OnSessionEnd::Notify,
    ));
    tokio::spawn(forward_session_changes(io.clone(), bridge.clone()));
}

/// `PORT` from the environment, default 3000.
pub fn port() -> u16 {
    std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000)
}

/// `{ ok, clientId, sessionId, session }`, the body of `/api/session` and `/api/read`.
pub async fn http_payload(session: &Session) -> session_bridge::Result<Value> {
    let mut payload = json!({
        "ok": true,
        "clientId": session.client_id().as_str(),
        "sessionId": session.session_id().await?.as_ref().map(SessionId::as_str),
    });
    // The map itself: `json!` would serialize it into a copy.
    payload["session"] = Value::Object(session.data().await?);
    Ok(payload)
}

/// benches/load's floor for `/api/read`: the same JSON (same keys, ids of the same length, the
/// session object of a browser after one `/api/session`), built from constants without any
/// session. `/api/read` can cost no less than this route plus the bridge's own work.
pub fn reference_payload() -> Value {
    json!({
        "ok": true,
        "clientId": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "sessionId": "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB",
        "session": { "createdAt": 1_765_000_000_000_u64, "httpCount": 1 },
    })
}

/// `GET /api/session[?reset=1]`.
pub async fn api_session(session: &Session, reset: bool) -> session_bridge::Result<Value> {
    if reset {
        session.destroy().await?;
        return Ok(json!({ "ok": true, "from": "http:reset" }));
    }
    // One atomic update under the session's lock (H12): parallel requests of one browser each
    // add exactly 1, none is lost and none is refused.
    let now = SystemClock.now_ms();
    session
        .update(|data| {
            data.entry("createdAt").or_insert_with(|| now.into());
            let count = data.get("httpCount").and_then(Value::as_u64).unwrap_or(0);
            data.insert("httpCount".into(), (count + 1).into());
        })
        .await?;
    http_payload(session).await
}

/// Whether the query string has `reset=1`.
pub fn wants_reset(query: Option<&str>) -> bool {
    query.is_some_and(|q| q.split('&').any(|kv| kv == "reset=1"))
}

fn socket_payload(ctx: &SessionContext) -> Value {
    json!({ "ok": true, "sessionId": ctx.session_id().as_str(), "session": ctx.data() })
}

fn missing() -> Value {
    json!({ "ok": false, "error": "missing-session" })
}

async fn increment(session: &SocketSession, delay: Duration) -> Value {
    session
        .with_session_or_else(
            async |ctx| {
                // A stored value that is not a number counts as 0, as in the seed.
                let n = ctx.get::<u64>("wsCount").ok().flatten().unwrap_or(0) + 1;
                ctx.insert_value("wsCount", n.into());
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                socket_payload(ctx)
            },
            missing,
        )
        .await
        .unwrap_or_else(|err| json!({ "ok": false, "error": err.to_string() }))
}

/// The socket.io side: every socket is bound by `bind_session`, then answers the events.
///
/// Middlewares run last-added first: `bind_session`, then `register_events`. The events are
/// registered in a middleware, not in the connect handler, because socketioxide 0.18 sends
/// CONNECT before it runs the connect handler: a client that emits on `connect` could beat
/// handlers registered there, and its event would be dropped without an ack.
/// With a remote adapter (multi-node mode) the namespace's adapter starts in the background.
pub fn register_socket_handlers<A: Adapter + DefinedAdapter>(io: &SocketIo<A>) {
    io.ns("/", (async || {}).with(register_events).with(bind_session))
        .spawn();
}

async fn register_events<A: Adapter>(s: SocketRef<A>) -> Result<(), std::convert::Infallible> {
    // benches/load's reference event: acked without touching the session.
    s.on("bare", async |ack: AckSender<A>| {
        ack.send(&json!({ "ok": true })).ok();
    });
    s.on(
        "session:get",
        async |session: SocketSession, ack: AckSender<A>| {
            let reply = session
                .with_session_or_else(async |ctx| socket_payload(ctx), missing)
                .await
                .unwrap_or_else(|err| json!({ "ok": false, "error": err.to_string() }));
            ack.send(&reply).ok();
        },
    );
    s.on(
        "session:inc",
        async |session: SocketSession, ack: AckSender<A>| {
            ack.send(&increment(&session, Duration::ZERO).await).ok();
        },
    );
    s.on(
        "session:inc-slow",
        async |session: SocketSession, Data(delay_ms): Data<u64>, ack: AckSender<A>| {
            let delay = Duration::from_millis(delay_ms.min(10_000));
            ack.send(&increment(&session, delay).await).ok();
        },
    );
    s.on(
        "session:reset",
        async |session: SocketSession, ack: AckSender<A>| {
            let reply = session
                .with_session_or_else(
                    async |ctx| {
                        ctx.destroy();
                        json!({ "ok": true })
                    },
                    missing,
                )
                .await
                .unwrap_or_else(|err| json!({ "ok": false, "error": err.to_string() }));
            ack.send(&reply).ok();
        },
    );
    Ok(())
}

/// With `EVENT_LOG=1`, prints every bridge event as one JSON line on stdout.
pub fn spawn_event_log(bridge: &SessionBridge) {
    if std::env::var("EVENT_LOG").as_deref() != Ok("1") {
        return;
    }
    let mut events = bridge.events();
    tokio::spawn(async move {
        use futures::StreamExt;
        while let Some(event) = events.next().await {
            let Some(line) = crate::event_line::event_line(SystemClock.now_ms(), &event) else {
                continue;
            };
            println!("{line}");
        }
    });
}

/// The demo page.
pub const INDEX_HTML: &str = include_str!("../static/index.html");

/// The real socket.io browser client from `examples/node_modules` (`npm ci --prefix examples`).
pub fn socket_io_client_js() -> Option<Vec<u8>> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/node_modules/socket.io-client/dist/socket.io.min.js"
    );
    match std::fs::read(path) {
        Ok(bytes) => Some(bytes),
        Err(err) => {
            eprintln!("cannot read {path} ({err}); run `npm ci --prefix examples`");
            None
        }
    }
}

/// `GET /api/user?name=..`: sets `user` (the demo page's "Set user" button).
pub async fn api_user(session: &Session, query: Option<&str>) -> session_bridge::Result<Value> {
    let name = query
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("name=")))
        .unwrap_or("anonymous");
    let name: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(32)
        .collect();
    session.insert("user", name).await?;
    http_payload(session).await
}

/// A login name (`GET /api/login?name=..`): 1 to 32 characters of `[A-Za-z0-9_-]`, taken as
/// is from the query (no percent-decoding: every allowed character is sent unencoded).
pub fn login_name(query: Option<&str>) -> Option<&str> {
    let name = query?.split('&').find_map(|kv| kv.strip_prefix("name="))?;
    let valid = (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    valid.then_some(name)
}

/// The body of a 400 for a bad login name.
pub fn bad_name() -> Value {
    json!({ "ok": false, "error": "bad-name" })
}

/// `GET /api/login?name=NAME`: `Ok(Err(bad_name()))` (answered 400, session untouched) for a
/// bad name; else a new session id and a new client id first (H8: a client cookie planted
/// before the login cannot follow the session; the old record ends with `regenerated`, S6),
/// then `user` = NAME, answered like `/api/session`.
pub async fn api_login(
    session: &Session,
    query: Option<&str>,
) -> session_bridge::Result<Result<Value, Value>> {
    let Some(name) = login_name(query) else {
        return Ok(Err(bad_name()));
    };
    session.regenerate().await?;
    session.insert("user", name).await?;
    http_payload(session).await.map(Ok)
}

/// `GET /api/logout`: destroys the session (its sockets hear `session:ended` `destroyed`, S6).
pub async fn api_logout(session: &Session) -> session_bridge::Result<Value> {
    session.destroy().await?;
    Ok(json!({ "ok": true, "from": "http:logout" }))
}

/// benches/load's knobs, read at start: `SESSION_MAX_AGE_MS` replaces the 1 day max age (the
/// builder refuses less than 1 minute), so a load run can watch sessions expire.
fn load_env(builder: session_bridge::SessionBridgeBuilder) -> session_bridge::SessionBridgeBuilder {
    match std::env::var("SESSION_MAX_AGE_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        Some(ms) => builder.max_age(Duration::from_millis(ms)),
        None => builder,
    }
}

/// benches/load: with `SESSION_CLEANUP_MS` set, runs [`SessionBridge::cleanup`] every that
/// many ms (at least 100) and prints on stderr, whenever a figure changed,
/// `session cleanup: removed N, mapped sessions M` (M: [`SessionBridge::mapped_sessions`]).
pub fn spawn_load_cleanup(bridge: &SessionBridge) {
    let Some(ms) = std::env::var("SESSION_CLEANUP_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    else {
        return;
    };
    let bridge = bridge.clone();
    tokio::spawn(async move {
        let mut last = None;
        loop {
            tokio::time::sleep(Duration::from_millis(ms.max(100))).await;
            let removed = match bridge.cleanup().await {
                Ok(removed) => removed,
                Err(err) => {
                    eprintln!("session cleanup failed: {err}");
                    continue;
                }
            };
            let mapped = bridge.mapped_sessions();
            if removed > 0 || last != Some(mapped) {
                eprintln!("session cleanup: removed {removed}, mapped sessions {mapped}");
                last = Some(mapped);
            }
        }
    });
}

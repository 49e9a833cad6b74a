//! What the poem and salvo quick starts share: the seed README's protocol, written once.
//!
//! HTTP (`/api/session`, `/api/read`, `/plain`, `/`) is routed by each framework and calls the
//! functions here; the socket.io side is the same for both.
#![allow(dead_code)] // each example uses a subset

use std::time::Duration;

use serde_json::{Value, json};
use session_bridge::clock::{Clock, SystemClock};
use session_bridge::integrations::socketioxide::bind_session;
use session_bridge::{SameSite, Session, SessionBridge, SessionContext, SessionId, SocketSession};
use socketioxide::SocketIo;
use socketioxide::extract::{AckSender, Data, SocketRef};
use socketioxide::handler::ConnectHandler;

/// Fixed demo keys: a real app loads its own from configuration.
const DEMO_KEYS: [&str; 2] = [
    "demo key 1: replace me with 32+ random bytes",
    "demo key 2: an older key that still verifies",
];

/// The bridge of the Quick Start: key `app.sid`, signed, 1 day, SameSite Lax, HttpOnly,
/// `secure(false)` for local http.
pub fn bridge() -> SessionBridge {
    let built = SessionBridge::builder()
        .key("app.sid")
        .keys(DEMO_KEYS)
        .max_age(Duration::from_secs(24 * 3600))
        .same_site(Some(SameSite::Lax))
        .http_only(true)
        .secure(false)
        .build();
    match built {
        Ok(bridge) => bridge,
        Err(err) => {
            eprintln!("invalid bridge options: {err}");
            std::process::exit(2);
        }
    }
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
    Ok(json!({
        "ok": true,
        "clientId": session.client_id().as_str(),
        "sessionId": session.session_id().await?.as_ref().map(SessionId::as_str),
        "session": session.data().await?,
    }))
}

/// `GET /api/session[?reset=1]`.
pub async fn api_session(session: &Session, reset: bool) -> session_bridge::Result<Value> {
    if reset {
        session.destroy().await?;
        return Ok(json!({ "ok": true, "from": "http:reset" }));
    }
    if session.get_value("createdAt").await?.is_none() {
        session.insert("createdAt", SystemClock.now_ms()).await?;
    }
    let count = session.get::<u64>("httpCount").await?.unwrap_or(0);
    session.insert("httpCount", count + 1).await?;
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
pub fn register_socket_handlers(io: &SocketIo) {
    io.ns("/", (async || {}).with(register_events).with(bind_session));
}

async fn register_events(s: SocketRef) -> Result<(), std::convert::Infallible> {
    s.on(
        "session:get",
        async |session: SocketSession, ack: AckSender| {
            let reply = session
                .with_session_or_else(async |ctx| socket_payload(ctx), missing)
                .await
                .unwrap_or_else(|err| json!({ "ok": false, "error": err.to_string() }));
            ack.send(&reply).ok();
        },
    );
    s.on(
        "session:inc",
        async |session: SocketSession, ack: AckSender| {
            ack.send(&increment(&session, Duration::ZERO).await).ok();
        },
    );
    s.on(
        "session:inc-slow",
        async |session: SocketSession, Data(delay_ms): Data<u64>, ack: AckSender| {
            let delay = Duration::from_millis(delay_ms.min(10_000));
            ack.send(&increment(&session, delay).await).ok();
        },
    );
    s.on(
        "session:reset",
        async |session: SocketSession, ack: AckSender| {
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

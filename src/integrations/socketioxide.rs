//! socketioxide glue (feature `socketioxide`): a connect middleware that binds each socket to
//! its browser's session from the handshake cookies, and [`SocketSession`] as an extractor.
//!
//! ```no_run
//! use session_bridge::{SessionBridge, SocketSession};
//! use session_bridge::integrations::socketioxide::bind_session;
//! use socketioxide::{SocketIo, extract::{AckSender, SocketRef}, handler::ConnectHandler};
//! use serde_json::json;
//!
//! let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build().unwrap();
//! let (layer, io) = SocketIo::builder().with_state(bridge.clone()).build_layer();
//! // Middlewares run last-added first: bind_session, then register_events.
//! io.ns("/", (async || {}).with(register_events).with(bind_session));
//!
//! async fn register_events(s: SocketRef) -> Result<(), std::convert::Infallible> {
//!     s.on("session:inc", async |session: SocketSession, ack: AckSender| {
//!         let reply = session
//!             .with_session_or_else(
//!                 async |ctx| {
//!                     let n = ctx.get::<u64>("wsCount")?.unwrap_or(0) + 1;
//!                     ctx.insert("wsCount", n)?;
//!                     Ok(json!({ "ok": true, "wsCount": n }))
//!                 },
//!                 || Ok(json!({ "ok": false, "error": "missing-session" })),
//!             )
//!             .await
//!             .and_then(|reply| reply)
//!             .unwrap_or_else(|_| json!({ "ok": false, "error": "session-error" }));
//!         ack.send(&reply).ok();
//!     });
//!     Ok(())
//! }
//! ```
//!
//! Register event handlers in a middleware placed after `bind_session`, as above, rather than
//! in the connect handler: socketioxide 0.18 sends CONNECT to the client before it runs the
//! connect handler, so a client that emits as soon as it is connected can beat handlers
//! registered there, and that event is dropped without an ack.
//!
//! The handshake request is the only request socketioxide keeps (`Socket::req_parts`), so the
//! cookies are read once, at connect; from then on the session is followed through the client
//! mapping (SPEC S2), which is what makes a login over HTTP visible to an open socket.

#[cfg(feature = "redis-adapter")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis-adapter")))]
pub mod redis;

use std::sync::Arc;

use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{SocketRef, State};
use socketioxide::handler::{FromConnectParts, FromMessageParts, Value};
use socketioxide::socket::Socket;

use crate::{ClientId, Error, SessionBridge, SocketSession};

/// Why a handshake was refused; its text is what the client's `connect_error` shows, so it
/// says nothing about internals.
///
/// ```
/// use session_bridge::integrations::socketioxide::ConnectRejection;
/// // The whole of what a refused client sees in its `connect_error`.
/// assert_eq!(ConnectRejection::ForbiddenOrigin.to_string(), "origin not allowed");
/// assert_eq!(ConnectRejection::Unavailable.to_string(), "session unavailable");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectRejection {
    /// The page's `Origin` is neither same-origin nor allowed.
    #[error("origin not allowed")]
    ForbiddenOrigin,
    /// The session store failed while binding (details are logged, not sent).
    #[error("session unavailable")]
    Unavailable,
}

/// Connect middleware (SPEC S1): checks the `Origin`, reads the handshake's cookies, binds the
/// socket to its browser's session, joins the browser's room
/// ([`SessionBridge::client_room`]) and stores the [`SocketSession`] in the socket's
/// extensions. Never creates a client id or a session, never sets a cookie.
///
/// Needs the bridge as socketioxide state: `SocketIo::builder().with_state(bridge)`; mount
/// with `io.ns("/", (async || {}).with(register_events).with(bind_session))`, where
/// `register_events` is your middleware that calls `s.on(..)` (see the module docs).
///
/// ```
/// use session_bridge::SessionBridge;
/// use session_bridge::integrations::socketioxide::bind_session;
/// use socketioxide::{SocketIo, extract::SocketRef, handler::ConnectHandler};
///
/// let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build()?;
/// let (layer, io) = SocketIo::builder().with_state(bridge).build_layer();
/// io.ns("/", (async |_s: SocketRef| {}).with(bind_session));
/// # Ok::<(), session_bridge::Error>(())
/// ```
///
/// # Errors
/// A [`ConnectRejection`], which socketioxide sends to the client as `connect_error`.
pub async fn bind_session<A: Adapter>(
    s: SocketRef<A>,
    State(bridge): State<SessionBridge>,
) -> Result<(), ConnectRejection> {
    let socket = match bridge.bind_socket(&s.req_parts().headers).await {
        Ok(socket) => socket,
        Err(Error::ForbiddenOrigin) => return Err(ConnectRejection::ForbiddenOrigin),
        Err(err) => {
            tracing::warn!(error = %err, "binding a socket to its session failed");
            return Err(ConnectRejection::Unavailable);
        }
    };
    if let Some(room) = socket.room() {
        s.join(room);
    }
    s.extensions.insert(socket);
    Ok(())
}

/// Disconnects every socket of one browser on this node's namespace `/` (after a logout, a
/// ban, a `regenerate`).
///
/// After [`Session::regenerate`](crate::Session::regenerate) the browser has a new client id
/// (SPEC H8) while its open sockets keep the old one, so they no longer find the session:
/// disconnect them by the *old* client id and the browser's client reconnects with the new
/// cookies.
///
/// ```
/// # use session_bridge::SessionBridge;
/// # use session_bridge::integrations::socketioxide::bind_session;
/// # use socketioxide::{SocketIo, extract::SocketRef, handler::ConnectHandler};
/// # futures::executor::block_on(async {
/// # let bridge = session_bridge::testing::test_bridge();
/// # let (_layer, io) = SocketIo::builder().with_state(bridge.clone()).build_layer();
/// # io.ns("/", (async |_s: SocketRef| {}).with(bind_session));
/// # let client_id = session_bridge::testing::Browser::new().request(&bridge, async |s| s.insert("user", "ada").await.map(|()| s.client_id())).await??;
/// use session_bridge::integrations::socketioxide::disconnect_client;
/// // Logout of browser `client_id` over HTTP: close its sockets too.
/// bridge.destroy_by_client_id(&client_id).await?;
/// disconnect_client(&io, &bridge, &client_id).await?;
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
///
/// # Errors
/// The adapter's broadcast error.
pub async fn disconnect_client<A: Adapter>(
    io: &SocketIo<A>,
    bridge: &SessionBridge,
    client_id: &ClientId,
) -> Result<(), socketioxide::BroadcastError> {
    io.to(bridge.client_room(client_id)).disconnect().await
}

/// Emits `event` with `data` to every socket of one browser.
///
/// ```
/// # use session_bridge::SessionBridge;
/// # use session_bridge::integrations::socketioxide::bind_session;
/// # use socketioxide::{SocketIo, extract::SocketRef, handler::ConnectHandler};
/// # futures::executor::block_on(async {
/// # let bridge = session_bridge::testing::test_bridge();
/// # let (_layer, io) = SocketIo::builder().with_state(bridge.clone()).build_layer();
/// # io.ns("/", (async |_s: SocketRef| {}).with(bind_session));
/// # let client_id = session_bridge::testing::Browser::new().request(&bridge, async |s| s.insert("user", "ada").await.map(|()| s.client_id())).await??;
/// use session_bridge::integrations::socketioxide::emit_to_client;
/// // Tell every tab of browser `client_id` that its cart changed.
/// let cart = serde_json::json!({ "items": 3 });
/// emit_to_client(&io, &bridge, &client_id, "cart:changed", &cart).await?;
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
///
/// # Errors
/// The adapter's broadcast error.
pub async fn emit_to_client<A: Adapter, T: serde::Serialize + ?Sized>(
    io: &SocketIo<A>,
    bridge: &SessionBridge,
    client_id: &ClientId,
    event: &str,
    data: &T,
) -> Result<(), socketioxide::BroadcastError> {
    io.to(bridge.client_room(client_id)).emit(event, data).await
}

/// The event [`forward_session_changes`] emits to a browser's sockets when its session changed.
pub const SESSION_CHANGED: &str = "session:changed";

/// Live push (opt-in): runs until the bridge's event stream ends (spawn it once beside the
/// socket.io layer). Whenever a browser's session is written (over HTTP, by another socket,
/// by the by-id API) it emits [`SESSION_CHANGED`] with `{ "isNew": bool }` to that browser's
/// sockets, at most once per browser every 50 ms (a burst of writes is one push), through its
/// client room (with a multi-node adapter, on every node), so a page can follow
/// changes without polling. The notice carries no data and grants nothing: the page asks for
/// what it may see (`with_session` answers as always).
///
/// ```
/// use session_bridge::integrations::socketioxide::forward_session_changes;
/// # let bridge = session_bridge::testing::test_bridge();
/// let (_layer, io) = socketioxide::SocketIo::builder().with_state(bridge.clone()).build_layer();
/// let pushes = forward_session_changes(io, bridge);
/// # drop(pushes);
/// // In an app: `tokio::spawn(pushes);`
/// ```
pub async fn forward_session_changes<A: Adapter>(io: SocketIo<A>, bridge: SessionBridge) {
    use futures::StreamExt as _;
    // Only writes of a browser's session wake this task.
    let mut events = bridge.events_matching(|e| {
        matches!(
            e,
            crate::BridgeEvent::SessionSet {
                client_id: Some(_),
                ..
            }
        )
    });
    let mut missed = 0;
    while let Some(first) = events.next().await {
        // Coalesce a burst (100 increments in a row) into one push per browser: wait a
        // moment, then take everything that arrived meanwhile.
        futures_timer::Delay::new(PUSH_COALESCE).await;
        // One entry per browser (a hash map: a window may hold the writes of many browsers).
        let mut changed: hashbrown::HashMap<ClientId, bool> = hashbrown::HashMap::new();
        let mut note = |event: crate::BridgeEvent| {
            if let crate::BridgeEvent::SessionSet {
                client_id: Some(client_id),
                is_new,
                ..
            } = event
            {
                *changed.entry(client_id).or_insert(false) |= is_new;
            }
        };
        note(first);
        while let Some(event) = events.try_next() {
            note(event);
        }
        if events.missed() != missed {
            missed = events.missed();
            tracing::warn!(
                missed,
                "session-change pushes fell behind; some pages were not told"
            );
        }
        for (client_id, is_new) in changed {
            let notice = serde_json::json!({ "isNew": is_new });
            if let Err(err) = io
                .to(bridge.client_room(&client_id))
                .emit(SESSION_CHANGED, &notice)
                .await
            {
                tracing::debug!(error = %err, "a session-change push did not reach every socket");
            }
        }
    }
}

/// How long [`forward_session_changes`] gathers changes before it pushes (one push per
/// browser per window).
const PUSH_COALESCE: std::time::Duration = std::time::Duration::from_millis(50);

/// The event [`forward_session_ends`] emits to a browser's sockets when its session ends.
pub const SESSION_ENDED: &str = "session:ended";

/// What to do with a browser's sockets when its session ends (S6).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum OnSessionEnd {
    /// Emit [`SESSION_ENDED`] with `{ "reason": ... }` and keep the sockets connected: they
    /// get the missing outcome until the browser has a session again (a socket of a
    /// regenerated session should reconnect to bind to the new one).
    #[default]
    Notify,
    /// Emit [`SESSION_ENDED`], then disconnect the sockets.
    NotifyAndDisconnect,
}

/// S6: session boundaries reach the sockets. Runs until the bridge's event stream ends (spawn
/// it once beside the socket.io layer): for every session that ends, by HTTP, a socket, the
/// by-id API, expiry, cleanup or `regenerate`, it emits [`SESSION_ENDED`] with
/// `{ "reason": "destroyed" | "regenerated" | "expired" | "corrupt" }` to that browser's
/// sockets (its client room, so with a multi-node adapter on every node) and, with
/// [`OnSessionEnd::NotifyAndDisconnect`], disconnects them. The notice grants nothing:
/// every later `with_session` on those sockets already gets the missing outcome.
///
/// ```
/// use session_bridge::integrations::socketioxide::{OnSessionEnd, forward_session_ends};
/// # let bridge = session_bridge::testing::test_bridge();
/// let (_layer, io) = socketioxide::SocketIo::builder().with_state(bridge.clone()).build_layer();
/// let notices = forward_session_ends(io, bridge, OnSessionEnd::Notify);
/// # drop(notices);
/// // In an app: `tokio::spawn(notices);`
/// ```
pub async fn forward_session_ends<A: Adapter>(
    io: SocketIo<A>,
    bridge: SessionBridge,
    on_end: OnSessionEnd,
) {
    use futures::StreamExt as _;
    // Only session ends wake this task (not every write).
    let mut events =
        bridge.events_matching(|e| matches!(e, crate::BridgeEvent::SessionDestroy { .. }));
    let mut missed = 0;
    while let Some(event) = events.next().await {
        if events.missed() != missed {
            missed = events.missed();
            tracing::warn!(
                missed,
                "session-end notices fell behind; some sockets were not told"
            );
        }
        let crate::BridgeEvent::SessionDestroy {
            client_id: Some(client_id),
            reason,
            ..
        } = event
        else {
            continue;
        };
        let room = io.to(bridge.client_room(&client_id));
        let notice = serde_json::json!({ "reason": reason.as_str() });
        if let Err(err) = room.emit(SESSION_ENDED, &notice).await {
            tracing::debug!(error = %err, "a session-end notice did not reach every socket");
        }
        if on_end == OnSessionEnd::NotifyAndDisconnect
            && let Err(err) = io.to(bridge.client_room(&client_id)).disconnect().await
        {
            tracing::debug!(error = %err, "a socket of an ended session did not disconnect");
        }
    }
}

/// The extractor found no binding: [`bind_session`] is not installed on this namespace.
///
/// ```
/// use session_bridge::integrations::socketioxide::NotBound;
/// assert!(NotBound.to_string().contains("`bind_session` middleware is not installed"));
/// ```
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("session-bridge: `bind_session` middleware is not installed on this namespace")]
pub struct NotBound;

fn bound<A: Adapter>(s: &Arc<Socket<A>>) -> Result<SocketSession, NotBound> {
    s.extensions.get::<SocketSession>().ok_or(NotBound)
}

impl<A: Adapter> FromConnectParts<A> for SocketSession {
    type Error = NotBound;
    fn from_connect_parts(s: &Arc<Socket<A>>, _: &Option<Value>) -> Result<Self, NotBound> {
        bound(s)
    }
}

impl<A: Adapter> FromMessageParts<A> for SocketSession {
    type Error = NotBound;
    fn from_message_parts(
        s: &Arc<Socket<A>>,
        _: &mut Value,
        _: &Option<i64>,
    ) -> Result<Self, NotBound> {
        bound(s)
    }
}

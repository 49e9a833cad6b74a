//! The socket flow (SPEC S1-S5), framework-free: bind a socket at its handshake from the
//! request's headers, resolve its session through the client mapping at every read, and run
//! handlers on the session under its per-session FIFO lock.

use std::sync::Arc;

use http::HeaderMap;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::gateway::Loaded;
use crate::id::IdTag;

/// The room name of a client tag.
pub(crate) fn client_room(tag: &IdTag) -> String {
    format!("sb-client:{}", tag.as_str())
}
use crate::locks::SessionLock;
use crate::session::Changes;

/// How many times `with_session` re-takes the lock when the socket's session moved while it
/// waited (S3), before giving up with [`Error::Contention`].
const BIND_ATTEMPTS: u32 = 3;

/// A socket's link to its browser's session (SPEC S1, S2). Cheap to clone, `Send + Sync`.
///
/// The client id is fixed at the handshake; the session id is looked up through the client
/// mapping each time it is read, so a session created, replaced or destroyed over HTTP after
/// the socket connected is seen at once.
///
/// ```
/// use session_bridge::SessionBridge;
/// # futures::executor::block_on(async {
/// let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build().unwrap();
/// // A handshake without cookies binds to no client: it never gets a session (S5).
/// let socket = bridge.bind_socket(&http::HeaderMap::new()).await.unwrap();
/// assert_eq!(socket.client_id(), None);
/// let fallback = socket.with_session_or(async |ctx| ctx.session.len(), 0).await.unwrap();
/// assert_eq!(fallback, 0);
/// # });
/// ```
#[derive(Clone)]
pub struct SocketSession {
    engine: Arc<Engine>,
    client_id: Option<Arc<str>>,
    /// Set on the handle given to a `with_session` handler: the session it already holds, so
    /// that locking it again fails fast instead of waiting for itself forever.
    holding: Option<Arc<str>>,
}

impl std::fmt::Debug for SocketSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketSession")
            .field("bound", &self.client_id.is_some())
            .finish_non_exhaustive()
    }
}

/// What a `with_session` handler works on (S3).
///
/// ```
/// # use session_bridge::SessionBridge;
/// # futures::executor::block_on(async {
/// # let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build()?;
/// # let request = bridge.begin_request(&http::HeaderMap::new());
/// # request.session().insert("user", "ada").await?;
/// # let client_id = request.client_id();
/// # let mut set_cookie = http::HeaderMap::new();
/// # request.commit(&mut set_cookie).await?;
/// # let pairs: Vec<&str> = set_cookie.get_all("set-cookie").iter().map(|v| v.to_str().unwrap().split(';').next().unwrap()).collect();
/// # let mut cookie = http::HeaderMap::new();
/// # cookie.insert("cookie", pairs.join("; ").parse().unwrap());
/// # let socket = bridge.bind_socket(&cookie).await?;
/// // `socket`: bound at the handshake of a browser that has a session.
/// let visits = socket
///     .with_session(async |ctx| {
///         let n = ctx.get::<u32>("visits").unwrap_or(0) + 1;
///         ctx.insert("visits", n).map(|()| n)
///     })
///     .await??;
/// assert_eq!(visits, 1);
/// # Ok::<_, session_bridge::Error>(())
/// # }).unwrap();
/// ```
pub struct SessionContext {
    /// The id of the session being handled.
    pub session_id: String,
    /// The session object. Change it freely: it is saved after the handler if it changed.
    pub session: Map<String, Value>,
    /// The socket's handle (to read its client id, for instance).
    pub socket: SocketSession,
    destroyed: bool,
}

/// Shows the shape only: ids and data are secrets.
impl std::fmt::Debug for SessionContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionContext")
            .field("session_id", &crate::id::redact(&self.session_id))
            .field("keys", &self.session.len())
            .field("destroyed", &self.destroyed)
            .finish_non_exhaustive()
    }
}

impl SessionContext {
    /// The value under `key`, deserialized; `None` when absent or not a `T`.
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # futures::executor::block_on(async {
    /// # let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build()?;
    /// # let request = bridge.begin_request(&http::HeaderMap::new());
    /// # request.session().insert("user", "ada").await?;
    /// # let client_id = request.client_id();
    /// # let mut set_cookie = http::HeaderMap::new();
    /// # request.commit(&mut set_cookie).await?;
    /// # let pairs: Vec<&str> = set_cookie.get_all("set-cookie").iter().map(|v| v.to_str().unwrap().split(';').next().unwrap()).collect();
    /// # let mut cookie = http::HeaderMap::new();
    /// # cookie.insert("cookie", pairs.join("; ").parse().unwrap());
    /// # let socket = bridge.bind_socket(&cookie).await?;
    /// let (user, as_number) = socket
    ///     .with_session(async |ctx| (ctx.get::<String>("user"), ctx.get::<u64>("user")))
    ///     .await?;
    /// assert_eq!(user.as_deref(), Some("ada"));
    /// assert_eq!(as_number, None, "not a u64");
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        self.session
            .get(key)
            .and_then(|v| serde_json::from_value(v.clone()).ok())
    }

    /// Sets `key`.
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # futures::executor::block_on(async {
    /// # let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build()?;
    /// # let request = bridge.begin_request(&http::HeaderMap::new());
    /// # request.session().insert("user", "ada").await?;
    /// # let client_id = request.client_id();
    /// # let mut set_cookie = http::HeaderMap::new();
    /// # request.commit(&mut set_cookie).await?;
    /// # let pairs: Vec<&str> = set_cookie.get_all("set-cookie").iter().map(|v| v.to_str().unwrap().split(';').next().unwrap()).collect();
    /// # let mut cookie = http::HeaderMap::new();
    /// # cookie.insert("cookie", pairs.join("; ").parse().unwrap());
    /// # let socket = bridge.bind_socket(&cookie).await?;
    /// // `socket`: bound at the handshake of browser `client_id`, which has a session.
    /// socket.with_session(async |ctx| ctx.insert("theme", "dark")).await??;
    /// let stored = bridge.get_by_client_id(&client_id).await?.unwrap_or_default();
    /// assert_eq!(stored["theme"], "dark");
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// [`Error::Json`] when `value` cannot be serialized.
    pub fn insert<T: Serialize>(&mut self, key: &str, value: T) -> Result<()> {
        self.session
            .insert(key.to_owned(), serde_json::to_value(value)?);
        Ok(())
    }

    /// Destroys the session after the handler (the seed's `session = null`, S3).
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # futures::executor::block_on(async {
    /// # let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build()?;
    /// # let request = bridge.begin_request(&http::HeaderMap::new());
    /// # request.session().insert("user", "ada").await?;
    /// # let client_id = request.client_id();
    /// # let mut set_cookie = http::HeaderMap::new();
    /// # request.commit(&mut set_cookie).await?;
    /// # let pairs: Vec<&str> = set_cookie.get_all("set-cookie").iter().map(|v| v.to_str().unwrap().split(';').next().unwrap()).collect();
    /// # let mut cookie = http::HeaderMap::new();
    /// # cookie.insert("cookie", pairs.join("; ").parse().unwrap());
    /// # let socket = bridge.bind_socket(&cookie).await?;
    /// // Logout over the socket of browser `client_id`.
    /// socket.with_session(async |ctx| ctx.destroy()).await?;
    /// assert_eq!(socket.session_id(), None);
    /// assert_eq!(bridge.get_by_client_id(&client_id).await?, None);
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn destroy(&mut self) {
        self.destroyed = true;
    }
}

/// What `with_session` does when the socket has no session (S4).
///
/// ```
/// # use session_bridge::SessionBridge;
/// # futures::executor::block_on(async {
/// # let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build()?;
/// # let socket = bridge.bind_socket(&http::HeaderMap::new()).await?;
/// use session_bridge::{Error, OnMissing};
/// // `socket` belongs to a browser without a session.
/// let count = async |ctx: &mut session_bridge::SessionContext| ctx.session.len();
/// let n = socket.with_session_on_missing(count, OnMissing::Value(0)).await?;
/// assert_eq!(n, 0);
/// let missing = socket.with_session_on_missing(count, OnMissing::Error).await;
/// assert!(matches!(missing, Err(Error::SessionMissing)));
/// # Ok::<_, session_bridge::Error>(())
/// # }).unwrap();
/// ```
pub enum OnMissing<R> {
    /// Return [`Error::SessionMissing`] (the default).
    Error,
    /// Return this value.
    Value(R),
    /// Call this and return its value.
    Call(Box<dyn FnOnce() -> R + Send>),
}

impl<R> OnMissing<R> {
    fn resolve(self) -> Result<R> {
        match self {
            OnMissing::Error => Err(Error::SessionMissing),
            OnMissing::Value(v) => Ok(v),
            OnMissing::Call(f) => Ok(f()),
        }
    }
}

impl<R> std::fmt::Debug for OnMissing<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            OnMissing::Error => "OnMissing::Error",
            OnMissing::Value(_) => "OnMissing::Value(..)",
            OnMissing::Call(_) => "OnMissing::Call(..)",
        })
    }
}

/// A session held under its lock: the guard style of [`SocketSession::with_session`].
/// Read and change [`data`](Self::data), then [`commit`](Self::commit); dropping the guard
/// without committing discards the changes and releases the lock.
///
/// ```
/// # use session_bridge::SessionBridge;
/// # futures::executor::block_on(async {
/// # let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build()?;
/// # let request = bridge.begin_request(&http::HeaderMap::new());
/// # request.session().insert("user", "ada").await?;
/// # let client_id = request.client_id();
/// # let mut set_cookie = http::HeaderMap::new();
/// # request.commit(&mut set_cookie).await?;
/// # let pairs: Vec<&str> = set_cookie.get_all("set-cookie").iter().map(|v| v.to_str().unwrap().split(';').next().unwrap()).collect();
/// # let mut cookie = http::HeaderMap::new();
/// # cookie.insert("cookie", pairs.join("; ").parse().unwrap());
/// # let socket = bridge.bind_socket(&cookie).await?;
/// // `socket`: bound at the handshake of browser `client_id`, which has a session.
/// if let Some(mut guard) = socket.lock().await? {
///     guard.data.insert("seen".into(), true.into());
///     guard.commit().await?;
/// }
/// let stored = bridge.get_by_client_id(&client_id).await?.unwrap_or_default();
/// assert_eq!(stored["seen"], true);
/// # Ok::<_, session_bridge::Error>(())
/// # }).unwrap();
/// ```
pub struct SessionGuard {
    socket: SocketSession,
    session_id: String,
    loaded: Loaded,
    /// The session object; change it freely before `commit`.
    pub data: Map<String, Value>,
    _lock: SessionLock,
}

impl std::fmt::Debug for SessionGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionGuard")
            .field("keys", &self.data.len())
            .finish_non_exhaustive()
    }
}

impl SessionGuard {
    /// The id of the locked session.
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # futures::executor::block_on(async {
    /// # let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build()?;
    /// # let request = bridge.begin_request(&http::HeaderMap::new());
    /// # request.session().insert("user", "ada").await?;
    /// # let client_id = request.client_id();
    /// # let mut set_cookie = http::HeaderMap::new();
    /// # request.commit(&mut set_cookie).await?;
    /// # let pairs: Vec<&str> = set_cookie.get_all("set-cookie").iter().map(|v| v.to_str().unwrap().split(';').next().unwrap()).collect();
    /// # let mut cookie = http::HeaderMap::new();
    /// # cookie.insert("cookie", pairs.join("; ").parse().unwrap());
    /// # let socket = bridge.bind_socket(&cookie).await?;
    /// let guard = socket.lock().await?;
    /// let locked = guard.as_ref().map(|g| g.session_id().to_owned());
    /// assert_eq!(locked, socket.session_id());
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// Saves the changes (only the keys that changed are written over the stored record) and
    /// releases the lock. Unchanged data writes nothing.
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # futures::executor::block_on(async {
    /// # let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build()?;
    /// # let request = bridge.begin_request(&http::HeaderMap::new());
    /// # request.session().insert("user", "ada").await?;
    /// # let client_id = request.client_id();
    /// # let mut set_cookie = http::HeaderMap::new();
    /// # request.commit(&mut set_cookie).await?;
    /// # let pairs: Vec<&str> = set_cookie.get_all("set-cookie").iter().map(|v| v.to_str().unwrap().split(';').next().unwrap()).collect();
    /// # let mut cookie = http::HeaderMap::new();
    /// # cookie.insert("cookie", pairs.join("; ").parse().unwrap());
    /// # let socket = bridge.bind_socket(&cookie).await?;
    /// if let Some(mut guard) = socket.lock().await? {
    ///     let n = guard.data.get("visits").and_then(|v| v.as_u64()).unwrap_or(0);
    ///     guard.data.insert("visits".into(), (n + 1).into());
    ///     guard.commit().await?; // saves and releases the lock
    /// }
    /// assert_eq!(bridge.active_locks(), 0);
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// A store error, [`Error::SessionTooLarge`], [`Error::Conflict`], or
    /// [`Error::SessionMissing`] when the session was destroyed meanwhile by a path that does
    /// not take its lock (expiry seen by a reader): the changes are not written (never
    /// resurrected).
    pub async fn commit(self) -> Result<()> {
        self.socket
            .save(&self.session_id, self.loaded, &self.data)
            .await
    }

    /// Destroys the session and releases the lock.
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # futures::executor::block_on(async {
    /// # let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build()?;
    /// # let request = bridge.begin_request(&http::HeaderMap::new());
    /// # request.session().insert("user", "ada").await?;
    /// # let client_id = request.client_id();
    /// # let mut set_cookie = http::HeaderMap::new();
    /// # request.commit(&mut set_cookie).await?;
    /// # let pairs: Vec<&str> = set_cookie.get_all("set-cookie").iter().map(|v| v.to_str().unwrap().split(';').next().unwrap()).collect();
    /// # let mut cookie = http::HeaderMap::new();
    /// # cookie.insert("cookie", pairs.join("; ").parse().unwrap());
    /// # let socket = bridge.bind_socket(&cookie).await?;
    /// if let Some(guard) = socket.lock().await? {
    ///     guard.destroy().await?;
    /// }
    /// assert_eq!(socket.session_id(), None);
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// A store error.
    pub async fn destroy(self) -> Result<()> {
        self.socket.engine.destroy(&self.session_id).await.map(drop)
    }
}

impl SocketSession {
    /// S1: reads the client and session cookies of a handshake request. Never creates a
    /// client id or a session and sets no cookie; attaches an existing live session that no
    /// other client holds (H2 a-d).
    pub(crate) async fn bind(engine: Arc<Engine>, headers: &HeaderMap) -> Result<Self> {
        if !crate::origin::origin_allowed(&engine.origins, headers) {
            return Err(Error::ForbiddenOrigin);
        }
        let client_id = engine
            .read_cookie(headers, &engine.cookies.client_name)
            .map(|(cid, _)| cid);
        if let Some(cid) = &client_id {
            let cookie_sid = engine
                .read_cookie(headers, &engine.cookies.session_name)
                .map(|(sid, _)| sid);
            engine.resolve(cid, cookie_sid.as_deref()).await?;
        }
        Ok(Self {
            engine,
            client_id: client_id.map(Arc::from),
            holding: None,
        })
    }

    /// The browser's client id, fixed at the handshake (S2); `None` without a valid cookie.
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # futures::executor::block_on(async {
    /// # let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build()?;
    /// # let request = bridge.begin_request(&http::HeaderMap::new());
    /// # request.session().insert("user", "ada").await?;
    /// # let client_id = request.client_id();
    /// # let mut set_cookie = http::HeaderMap::new();
    /// # request.commit(&mut set_cookie).await?;
    /// # let pairs: Vec<&str> = set_cookie.get_all("set-cookie").iter().map(|v| v.to_str().unwrap().split(';').next().unwrap()).collect();
    /// # let mut cookie = http::HeaderMap::new();
    /// # cookie.insert("cookie", pairs.join("; ").parse().unwrap());
    /// # let socket = bridge.bind_socket(&cookie).await?;
    /// // `socket`: bound at the handshake of browser `client_id`.
    /// assert_eq!(socket.client_id(), Some(client_id.as_str()));
    /// let anonymous = bridge.bind_socket(&http::HeaderMap::new()).await?;
    /// assert_eq!(anonymous.client_id(), None);
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn client_id(&self) -> Option<&str> {
        self.client_id.as_deref()
    }

    /// The session id, looked up through the client mapping now (S2).
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # futures::executor::block_on(async {
    /// # let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build()?;
    /// # let request = bridge.begin_request(&http::HeaderMap::new());
    /// # request.session().insert("user", "ada").await?;
    /// # let client_id = request.client_id();
    /// # let mut set_cookie = http::HeaderMap::new();
    /// # request.commit(&mut set_cookie).await?;
    /// # let pairs: Vec<&str> = set_cookie.get_all("set-cookie").iter().map(|v| v.to_str().unwrap().split(';').next().unwrap()).collect();
    /// # let mut cookie = http::HeaderMap::new();
    /// # cookie.insert("cookie", pairs.join("; ").parse().unwrap());
    /// # let socket = bridge.bind_socket(&cookie).await?;
    /// // `socket`: bound at the handshake of browser `client_id`, which has a session.
    /// assert_eq!(socket.session_id(), bridge.get_session_id(&client_id));
    /// // Changes made over HTTP are seen at once, without reconnecting.
    /// bridge.destroy_by_client_id(&client_id).await?;
    /// assert_eq!(socket.session_id(), None);
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn session_id(&self) -> Option<String> {
        self.client_id
            .as_deref()
            .and_then(|cid| self.engine.mapping.session_id(cid))
    }

    /// The room of this browser's sockets (`None` when unbound): named by a keyed,
    /// non-reversible tag of the client id, never the id itself. See
    /// [`SessionBridge::client_room`](crate::SessionBridge::client_room).
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # futures::executor::block_on(async {
    /// # let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build()?;
    /// # let request = bridge.begin_request(&http::HeaderMap::new());
    /// # request.session().insert("user", "ada").await?;
    /// # let client_id = request.client_id();
    /// # let mut set_cookie = http::HeaderMap::new();
    /// # request.commit(&mut set_cookie).await?;
    /// # let pairs: Vec<&str> = set_cookie.get_all("set-cookie").iter().map(|v| v.to_str().unwrap().split(';').next().unwrap()).collect();
    /// # let mut cookie = http::HeaderMap::new();
    /// # cookie.insert("cookie", pairs.join("; ").parse().unwrap());
    /// # let socket = bridge.bind_socket(&cookie).await?;
    /// // `socket`: bound at the handshake of browser `client_id`.
    /// assert_eq!(socket.room(), Some(bridge.client_room(&client_id)));
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn room(&self) -> Option<String> {
        self.client_id
            .as_deref()
            .map(|cid| client_room(&self.engine.client_tag(cid)))
    }

    /// S3: runs `handler` on the session under its lock; destroyed -> destroy, changed ->
    /// save, unchanged -> no write; returns the handler's value. A socket without a session
    /// gets [`Error::SessionMissing`] (S4).
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # async fn demo(socket: session_bridge::SocketSession) -> session_bridge::Result<u64> {
    /// socket
    ///     .with_session(async |ctx| {
    ///         let n = ctx.get::<u64>("wsCount").unwrap_or(0) + 1;
    ///         ctx.session.insert("wsCount".into(), n.into());
    ///         n
    ///     })
    ///     .await
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`Error::Reentrant`] when called from a handler on the session it holds (the lock is
    /// not re-entrant; calling other bridge methods that lock the same session from inside the
    /// handler, such as `set_by_id` or `destroy_by_id`, would wait forever: work on
    /// `ctx.session` instead). [`Error::SessionMissing`], a store error, [`Error::SessionTooLarge`],
    /// [`Error::Contention`] or [`Error::Conflict`].
    pub async fn with_session<F, R>(&self, handler: F) -> Result<R>
    where
        F: AsyncFnOnce(&mut SessionContext) -> R,
    {
        self.with_session_on_missing(handler, OnMissing::Error)
            .await
    }

    /// [`with_session`](Self::with_session) returning `fallback` when there is no session (S4).
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # futures::executor::block_on(async {
    /// # let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build()?;
    /// # let socket = bridge.bind_socket(&http::HeaderMap::new()).await?;
    /// // `socket` belongs to a browser without a session.
    /// let user = socket
    ///     .with_session_or(async |ctx| ctx.get::<String>("user"), None)
    ///     .await?;
    /// assert_eq!(user, None);
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// As [`with_session`](Self::with_session), except a missing session.
    pub async fn with_session_or<F, R>(&self, handler: F, fallback: R) -> Result<R>
    where
        F: AsyncFnOnce(&mut SessionContext) -> R,
    {
        self.with_session_on_missing(handler, OnMissing::Value(fallback))
            .await
    }

    /// [`with_session`](Self::with_session) calling `fallback` when there is no session (S4).
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # futures::executor::block_on(async {
    /// # let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build()?;
    /// # let socket = bridge.bind_socket(&http::HeaderMap::new()).await?;
    /// // `socket` belongs to a browser without a session.
    /// let reply = socket
    ///     .with_session_or_else(async |ctx| format!("{} keys", ctx.session.len()), || {
    ///         "log in first".to_owned()
    ///     })
    ///     .await?;
    /// assert_eq!(reply, "log in first");
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// As [`with_session`](Self::with_session), except a missing session.
    pub async fn with_session_or_else<F, R>(
        &self,
        handler: F,
        fallback: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R>
    where
        F: AsyncFnOnce(&mut SessionContext) -> R,
    {
        self.with_session_on_missing(handler, OnMissing::Call(Box::new(fallback)))
            .await
    }

    /// The general form of [`with_session`](Self::with_session) (S3, S4).
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # futures::executor::block_on(async {
    /// # let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build()?;
    /// # let socket = bridge.bind_socket(&http::HeaderMap::new()).await?;
    /// use session_bridge::OnMissing;
    /// // `socket` belongs to a browser without a session.
    /// let fallback = OnMissing::Call(Box::new(Vec::new));
    /// let cart: Vec<u32> = socket
    ///     .with_session_on_missing(async |ctx| ctx.get("cart").unwrap_or_default(), fallback)
    ///     .await?;
    /// assert!(cart.is_empty());
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// As [`with_session`](Self::with_session).
    pub async fn with_session_on_missing<F, R>(
        &self,
        handler: F,
        on_missing: OnMissing<R>,
    ) -> Result<R>
    where
        F: AsyncFnOnce(&mut SessionContext) -> R,
    {
        let Some(guard) = self.lock().await? else {
            return on_missing.resolve();
        };
        let mut ctx = SessionContext {
            session_id: guard.session_id.clone(),
            session: guard.data.clone(),
            socket: SocketSession {
                holding: Some(Arc::from(guard.session_id.as_str())),
                ..self.clone()
            },
            destroyed: false,
        };
        let value = handler(&mut ctx).await;
        if ctx.destroyed {
            guard.destroy().await?;
            return Ok(value);
        }
        let mut guard = guard;
        guard.data = ctx.session;
        match guard.commit().await {
            Ok(()) => Ok(value),
            // The session died while the handler ran (expired, destroyed by HTTP or by
            // cleanup): its changes had nowhere to go, which is the missing case (S4).
            Err(Error::SessionMissing) => on_missing.resolve(),
            Err(err) => Err(err),
        }
    }

    /// Takes the session's lock and loads it: the guard style (S3). `Ok(None)` when the
    /// socket has no session. Hold the guard briefly: every other writer of this session,
    /// HTTP commits included, waits for it.
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # futures::executor::block_on(async {
    /// # let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build()?;
    /// # let request = bridge.begin_request(&http::HeaderMap::new());
    /// # request.session().insert("user", "ada").await?;
    /// # let client_id = request.client_id();
    /// # let mut set_cookie = http::HeaderMap::new();
    /// # request.commit(&mut set_cookie).await?;
    /// # let pairs: Vec<&str> = set_cookie.get_all("set-cookie").iter().map(|v| v.to_str().unwrap().split(';').next().unwrap()).collect();
    /// # let mut cookie = http::HeaderMap::new();
    /// # cookie.insert("cookie", pairs.join("; ").parse().unwrap());
    /// # let socket = bridge.bind_socket(&cookie).await?;
    /// let guard = socket.lock().await?;
    /// assert!(guard.is_some_and(|g| g.data["user"] == "ada"));
    /// let anonymous = bridge.bind_socket(&http::HeaderMap::new()).await?;
    /// assert!(anonymous.lock().await?.is_none());
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// A store error, or [`Error::Contention`] when the session kept moving.
    pub async fn lock(&self) -> Result<Option<SessionGuard>> {
        for _ in 0..BIND_ATTEMPTS {
            let Some(sid) = self.session_id() else {
                return Ok(None);
            };
            if self.holding.as_deref() == Some(sid.as_str()) {
                return Err(Error::Reentrant);
            }
            let lock = self.engine.lock(&sid).await;
            // The session may have moved (regenerated, destroyed) while we waited.
            if self.session_id().as_deref() != Some(sid.as_str()) {
                continue;
            }
            let Some(loaded) = self.engine.load(&sid).await? else {
                return Ok(None);
            };
            return Ok(Some(SessionGuard {
                socket: self.clone(),
                data: loaded.data.clone(),
                loaded,
                session_id: sid,
                _lock: lock,
            }));
        }
        Err(Error::Contention {
            attempts: BIND_ATTEMPTS,
        })
    }

    /// Writes the keys that changed between `loaded` and `data` over the stored record.
    async fn save(&self, sid: &str, loaded: Loaded, data: &Map<String, Value>) -> Result<()> {
        let changes = Changes::diff(&loaded.data, data);
        if changes.is_empty() {
            return Ok(());
        }
        let ours = data.clone();
        let apply = move |fresh: &mut Map<String, Value>| changes.apply(&ours, fresh);
        match self
            .engine
            .update_existing(sid, loaded, None, false, &apply)
            .await?
        {
            Some(_) => Ok(()),
            None => Err(Error::SessionMissing),
        }
    }
}

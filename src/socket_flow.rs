//! The socket flow (SPEC S1-S5), framework-free: bind a socket at its handshake from the
//! request's headers, resolve its session through the client mapping at every read, and run
//! handlers on the session under its per-session FIFO lock.

use std::sync::Arc;

use http::HeaderMap;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::changes::Changes;
use crate::engine::{Edit, Engine};
use crate::error::{Error, Result};
use crate::gateway::Loaded;
use crate::id::{ClientId, IdTag, SessionId};
use tracing::Instrument as _;

/// The room name of a client tag.
pub(crate) fn client_room(tag: &IdTag) -> String {
    format!("sb-client:{}", tag.as_str())
}

/// The session a socket that does not follow its client proved at its handshake.
#[derive(Clone)]
struct Pinned(Option<Arc<str>>);

/// What a handshake bound a socket to (S1).
enum Bound {
    /// No valid client cookie.
    Anonymous,
    /// A (client id, session id) pair proved with both signed cookies: the socket follows
    /// the client's sessions.
    Pair(String),
    /// The client id alone, whose client held no live session: the socket follows the
    /// client's later sessions.
    Client,
    /// The client id alone, whose client held a live session the cookies did not prove: the
    /// socket never gets any session.
    Unproven,
}

impl Bound {
    /// The client id the socket keeps (none when the binding did not earn one), with `self`.
    fn with_client(self, cid: String) -> (Self, Option<String>) {
        match self {
            Bound::Unproven | Bound::Anonymous => (self, None),
            Bound::Pair(_) | Bound::Client => (self, Some(cid)),
        }
    }
}

/// How many times `with_session` re-takes the lock when the socket's session moved while it
/// waited (S3), before giving up with [`Error::Contention`].
const BIND_ATTEMPTS: u32 = 3;

/// A socket's link to its browser's session (SPEC S1, S2). Cheap to clone, `Send + Sync`.
///
/// The client id is fixed at the handshake; the session id is looked up through the client
/// mapping each time it is read, so a session created, replaced or destroyed over HTTP after
/// the socket connected is seen at once, by a socket that proved its (client, session) pair
/// at the handshake or whose client held no session then (S1). A socket that presented only
/// the client cookie of a client holding a session is bound to nothing.
///
/// ```
/// # futures::executor::block_on(async {
/// # let bridge = session_bridge::testing::test_bridge();
/// // A handshake without cookies binds to no client: it never gets a session (S5).
/// let socket = bridge.bind_socket(&http::HeaderMap::new()).await?;
/// assert_eq!(socket.client_id(), None);
/// let n = socket.with_session_or_else(async |ctx| ctx.data().len(), || 0).await?;
/// assert_eq!(n, 0);
/// # Ok::<_, session_bridge::Error>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct SocketSession {
    engine: Arc<Engine>,
    /// The client whose sessions this socket follows (S1, S2): `None` without a valid client
    /// cookie, and also when the client held a live session at the handshake that the
    /// handshake's cookies did not prove (the client cookie alone is no credential: such a
    /// socket is never given any session).
    client_id: Option<ClientId>,
    /// With `sockets_follow_client(false)`: the one session this socket proved at its
    /// handshake (none: it sees no session).
    pinned: Option<Pinned>,
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

/// What a [`with_session`](SocketSession::with_session) handler works on (S3): the session's
/// data, read and changed with the same methods as the HTTP [`Session`](crate::Session)
/// (synchronous here: the session is already loaded and locked).
///
/// ```
/// # futures::executor::block_on(async {
/// # let bridge = session_bridge::testing::test_bridge();
/// # let mut browser = session_bridge::testing::Browser::new();
/// # browser.request(&bridge, async |s| s.insert("user", "ada").await).await??;
/// # let socket = browser.socket(&bridge).await?;
/// let visits = socket
///     .with_session(async |ctx| {
///         let n = ctx.get::<u32>("visits")?.unwrap_or(0) + 1;
///         ctx.insert("visits", n).map(|()| n)
///     })
///     .await??;
/// assert_eq!(visits, 1);
/// # Ok::<_, session_bridge::Error>(())
/// # }).unwrap();
/// ```
pub struct SessionContext {
    session_id: SessionId,
    data: Map<String, Value>,
    socket: SocketSession,
    destroyed: bool,
    /// The handler asked to change the data: only then is it compared with the record and
    /// saved (a read-only handler costs no serialization).
    touched: bool,
}

/// Shows the shape only: ids and data are secrets.
impl std::fmt::Debug for SessionContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionContext")
            .field("session_id", &self.session_id)
            .field("keys", &self.data.len())
            .field("destroyed", &self.destroyed)
            .finish_non_exhaustive()
    }
}

impl SessionContext {
    /// The id of the session being handled.
    pub fn session_id(&self) -> &SessionId {
        &self.session_id
    }

    /// The socket's handle (its client id, its room).
    pub fn socket(&self) -> &SocketSession {
        &self.socket
    }

    /// The value under `key`, deserialized as a `T`; `None` when absent (as
    /// [`Session::get`](crate::Session::get)).
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// # let bridge = session_bridge::testing::test_bridge();
    /// # let mut browser = session_bridge::testing::Browser::new();
    /// # browser.request(&bridge, async |s| s.insert("user", "ada").await).await??;
    /// # let socket = browser.socket(&bridge).await?;
    /// let (user, as_number) = socket
    ///     .with_session(async |ctx| (ctx.get::<String>("user"), ctx.get::<u64>("user")))
    ///     .await?;
    /// assert_eq!(user?.as_deref(), Some("ada"));
    /// assert!(as_number.is_err(), "a string is not a u64");
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// [`Error::Json`] when the stored value is not a `T`.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        match self.data.get(key) {
            Some(v) => Ok(Some(T::deserialize(v)?)),
            None => Ok(None),
        }
    }

    /// The JSON value under `key`.
    pub fn get_value(&self, key: &str) -> Option<&Value> {
        self.data.get(key)
    }

    /// Sets `key` to `value`, serialized.
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// # let bridge = session_bridge::testing::test_bridge();
    /// # let mut browser = session_bridge::testing::Browser::new();
    /// # browser.request(&bridge, async |s| s.insert("user", "ada").await).await??;
    /// # let socket = browser.socket(&bridge).await?;
    /// socket.with_session(async |ctx| ctx.insert("theme", "dark")).await??;
    /// let theme = browser.request(&bridge, async |s| s.get::<String>("theme").await).await??;
    /// assert_eq!(theme.as_deref(), Some("dark"));
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// [`Error::Json`] when `value` cannot be serialized.
    pub fn insert<T: Serialize>(&mut self, key: &str, value: T) -> Result<()> {
        self.insert_value(key, serde_json::to_value(value)?);
        Ok(())
    }

    /// Sets `key` to a JSON value.
    pub fn insert_value(&mut self, key: &str, value: Value) {
        self.touched = true;
        self.data.insert(key.to_owned(), value);
    }

    /// Removes `key`, returning its value deserialized as a `T`.
    ///
    /// # Errors
    /// [`Error::Json`] when the removed value is not a `T` (it is removed all the same).
    pub fn remove<T: DeserializeOwned>(&mut self, key: &str) -> Result<Option<T>> {
        match self.remove_value(key) {
            Some(v) => Ok(Some(serde_json::from_value(v)?)),
            None => Ok(None),
        }
    }

    /// Removes `key`, returning its JSON value.
    pub fn remove_value(&mut self, key: &str) -> Option<Value> {
        self.touched = true;
        self.data.remove(key)
    }

    /// The whole session object.
    pub fn data(&self) -> &Map<String, Value> {
        &self.data
    }

    /// The whole session object, to change freely: it is saved after the handler if it
    /// changed.
    pub fn data_mut(&mut self) -> &mut Map<String, Value> {
        self.touched = true;
        &mut self.data
    }

    /// Destroys the session after the handler (the seed's `session = null`, S3).
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// # let bridge = session_bridge::testing::test_bridge();
    /// # let mut browser = session_bridge::testing::Browser::new();
    /// # browser.request(&bridge, async |s| s.insert("user", "ada").await).await??;
    /// # let socket = browser.socket(&bridge).await?;
    /// socket.with_session(async |ctx| ctx.destroy()).await?; // logout over the socket
    /// assert_eq!(socket.session_id().await?, None);
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn destroy(&mut self) {
        self.destroyed = true;
    }
}

impl SocketSession {
    /// S1: reads the client and session cookies of a handshake request. Never creates a
    /// client id or a session and sets no cookie; attaches an existing live session that no
    /// other client holds (H2 a-d).
    pub(crate) async fn bind(engine: Arc<Engine>, headers: &HeaderMap) -> Result<Self> {
        // Observability: one span per handshake: whether it bound a client and a session (the
        // session named by its keyed tag, never its id), or why not.
        let span = tracing::debug_span!(
            "session_bridge.bind",
            session = tracing::field::Empty,
            outcome = tracing::field::Empty,
        );
        let result = Self::bind_inner(engine, headers)
            .instrument(span.clone())
            .await;
        let outcome = match &result {
            Ok((socket, bound)) => match bound {
                Bound::Pair(sid) => {
                    if !span.is_disabled() {
                        let tag = socket.engine.session_tag(sid);
                        span.record("session", tracing::field::display(tag));
                    }
                    "session"
                }
                Bound::Client => "client",
                Bound::Unproven => "unproven",
                Bound::Anonymous => "anonymous",
            },
            Err(Error::ForbiddenOrigin) => "forbidden-origin",
            Err(_) => "error",
        };
        span.record("outcome", outcome);
        result.map(|(socket, _)| socket)
    }

    /// The bound socket and what it was bound to (S1).
    async fn bind_inner(engine: Arc<Engine>, headers: &HeaderMap) -> Result<(Self, Bound)> {
        if !engine.origin_allows(headers) {
            return Err(Error::ForbiddenOrigin);
        }
        let (client, session) = engine.read_pair(headers).await?;
        let (bound, client_id) = match client {
            None => (Bound::Anonymous, None),
            Some(client) => {
                let cid = client.into_parts().0;
                let cookie_sid = session.map(|read| read.into_parts().0);
                match engine.resolve(&cid, cookie_sid.as_deref()).await? {
                    // A (client, session) pair proved with both signed cookies.
                    Some(_) => Bound::Pair(cookie_sid.unwrap_or_default()),
                    // The client cookie alone: followed only if the client held no live
                    // session it did not prove.
                    None if engine.holds_live_session(&cid).await? => Bound::Unproven,
                    None => Bound::Client,
                }
                .with_client(cid)
            }
        };
        let pinned = engine.pins_sockets().then(|| match &bound {
            Bound::Pair(sid) => Pinned(Some(Arc::from(sid.as_str()))),
            _ => Pinned(None),
        });
        let socket = Self {
            engine,
            client_id: client_id.map(ClientId::from),
            pinned,
            holding: None,
        };
        Ok((socket, bound))
    }

    /// The browser's client id, fixed at the handshake (S2); `None` without a valid client
    /// cookie, or when its client held a session the handshake did not prove (S1).
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// # let bridge = session_bridge::testing::test_bridge();
    /// let mut browser = session_bridge::testing::Browser::new();
    /// let client_id = browser.request(&bridge, async |s| s.client_id()).await?;
    /// let socket = browser.socket(&bridge).await?;
    /// assert_eq!(socket.client_id(), Some(client_id));
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn client_id(&self) -> Option<ClientId> {
        self.client_id.clone()
    }

    /// The session id, looked up through the client mapping now (S2).
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// # let bridge = session_bridge::testing::test_bridge();
    /// let mut browser = session_bridge::testing::Browser::new();
    /// let socket = browser.socket(&bridge).await?; // before the browser has a session
    /// assert_eq!(socket.session_id().await?, None);
    /// browser.request(&bridge, async |s| s.insert("user", "ada").await).await??;
    /// assert!(socket.session_id().await?.is_none(), "no client id at its handshake: never bound");
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// A failure of a shared mapping (many nodes); the in-memory one never fails.
    pub async fn session_id(&self) -> Result<Option<SessionId>> {
        let Some(cid) = self.client_id.as_ref() else {
            return Ok(None);
        };
        let sid = self.engine.session_of(cid.as_str()).await?;
        if let Some(Pinned(pinned)) = &self.pinned
            && pinned.as_deref() != sid.as_deref()
        {
            return Ok(None); // S1: only the session it proved
        }
        Ok(sid.map(SessionId::from))
    }

    /// The room of this browser's sockets (`None` when unbound): named by a keyed,
    /// non-reversible tag of the client id, never the id itself. See
    /// [`SessionBridge::client_room`](crate::SessionBridge::client_room).
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// # let bridge = session_bridge::testing::test_bridge();
    /// let mut browser = session_bridge::testing::Browser::new();
    /// let client_id = browser.request(&bridge, async |s| s.client_id()).await?;
    /// let socket = browser.socket(&bridge).await?;
    /// assert_eq!(socket.room(), Some(bridge.client_room(&client_id)));
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn room(&self) -> Option<String> {
        let cid = self.client_id.as_ref()?;
        Some(client_room(&self.engine.client_tag(cid.as_str())))
    }

    /// S3: runs `handler` on the session under its lock; destroyed -> destroy, changed ->
    /// save, unchanged -> no write; returns the handler's value. A socket without a session
    /// gets [`Error::SessionMissing`] (S4), which the caller can match.
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// # let bridge = session_bridge::testing::test_bridge();
    /// # let mut browser = session_bridge::testing::Browser::new();
    /// # browser.request(&bridge, async |s| s.insert("user", "ada").await).await??;
    /// # let socket = browser.socket(&bridge).await?;
    /// let count = socket
    ///     .with_session(async |ctx| {
    ///         let n = ctx.get::<u64>("wsCount")?.unwrap_or(0) + 1;
    ///         ctx.insert("wsCount", n).map(|()| n)
    ///     })
    ///     .await??;
    /// assert_eq!(count, 1);
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// [`Error::SessionMissing`] when the socket has no session (or it died while the handler
    /// ran). [`Error::Reentrant`] when called from a handler on the session it holds (the lock
    /// is not re-entrant; calling bridge methods that lock the same session from inside the
    /// handler, such as `set_by_id` or `destroy_by_id`, would wait forever: work on the
    /// context instead). A store error, [`Error::SessionTooLarge`], [`Error::Contention`] or
    /// [`Error::Conflict`].
    pub async fn with_session<F, R>(&self, handler: F) -> Result<R>
    where
        F: AsyncFnOnce(&mut SessionContext) -> R,
    {
        self.run(handler).await?.ok_or(Error::SessionMissing)
    }

    /// [`with_session`](Self::with_session) that returns `on_missing()` instead of
    /// [`Error::SessionMissing`] when there is no session (S4).
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// # let bridge = session_bridge::testing::test_bridge();
    /// let socket = bridge.bind_socket(&http::HeaderMap::new()).await?; // no session
    /// let reply = socket
    ///     .with_session_or_else(async |ctx| ctx.get::<u64>("n"), || Ok(None))
    ///     .await??;
    /// assert_eq!(reply, None);
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// As [`with_session`](Self::with_session), except [`Error::SessionMissing`].
    pub async fn with_session_or_else<F, R>(
        &self,
        handler: F,
        on_missing: impl FnOnce() -> R,
    ) -> Result<R>
    where
        F: AsyncFnOnce(&mut SessionContext) -> R,
    {
        Ok(self.run(handler).await?.unwrap_or_else(on_missing))
    }

    /// `Ok(None)`: no session (before the handler, or it died while the handler ran).
    async fn run<F, R>(&self, handler: F) -> Result<Option<R>>
    where
        F: AsyncFnOnce(&mut SessionContext) -> R,
    {
        // Observability: one span per call, with the session's keyed tag, what happened, the
        // wait for the session's lock and the whole time (handler included).
        let span = tracing::debug_span!(
            "session_bridge.with_session",
            session = tracing::field::Empty,
            outcome = tracing::field::Empty,
            lock_wait_us = tracing::field::Empty,
            elapsed_us = tracing::field::Empty,
        );
        let timer = crate::clock::SpanTimer::start(&span);
        let result = self
            .run_inner(&span, handler)
            .instrument(span.clone())
            .await;
        let outcome = match &result {
            Ok(Some(_)) => "ok",
            Ok(None) => "missing",
            Err(Error::Conflict { .. } | Error::LeaseLost) => "conflict",
            Err(_) => "error",
        };
        span.record("outcome", outcome);
        timer.record(&span, "elapsed_us");
        result
    }

    async fn run_inner<F, R>(&self, span: &tracing::Span, handler: F) -> Result<Option<R>>
    where
        F: AsyncFnOnce(&mut SessionContext) -> R,
    {
        // The look-up, lock and load, and the save below, are boxed: socketioxide spawns
        // every handler's future, and the copy it makes grows with what the future holds.
        let Some((sid, loaded, lock)) = Box::pin(self.acquire(span)).await? else {
            return Ok(None);
        };
        // The handler works on the loaded data itself; the record (its text) is the base the
        // save compares with.
        let (base, data) = loaded.into_parts();
        let mut ctx = SessionContext {
            session_id: SessionId::from(sid.as_str()),
            data,
            socket: SocketSession {
                holding: Some(Arc::from(sid.as_str())),
                ..self.clone()
            },
            destroyed: false,
            touched: false,
        };
        let value = handler(&mut ctx).await;
        // M2: the nodes' lease lapsed while the handler ran: another node may hold the
        // session now, so nothing of this handler is saved.
        lock.check()?;
        let saved = if ctx.destroyed {
            Box::pin(self.engine.destroy(&sid)).await?;
            true
        } else if !ctx.touched {
            // The data is the record's own: `save_edit` would find the same text and write
            // nothing.
            true
        } else {
            Box::pin(self.save(&sid, base, ctx.data, &lock)).await?
        };
        drop(lock);
        // The session died while the handler ran (expired, destroyed by HTTP or by cleanup):
        // its changes had nowhere to go, which is the missing case (S4).
        Ok(saved.then_some(value))
    }

    /// Saves a handler's edit of `base` (S3). When a writer that does not take the lock (a
    /// process sharing the store without the nodes' exclusion) moved the record meanwhile, the
    /// handler's changes go onto the fresh record key by key, but only if none of the keys it
    /// changed moved: otherwise [`Error::Conflict`] and nothing is written. The handler (an
    /// async closure, run once: Rust cannot yet prove the future of one that may run again
    /// `Send`, which socketioxide needs) never has a value it computed merged over a value it
    /// did not see (H12). `false`: the session is gone.
    async fn save(
        &self,
        sid: &str,
        base: crate::record::Record,
        edited: serde_json::Map<String, serde_json::Value>,
        lock: &crate::locks::Guard,
    ) -> Result<bool> {
        let (mut base, mut edited) = (base, edited);
        // What the handler saw and what it changed, once a conflict needs them.
        let mut seen: Option<(serde_json::Map<String, serde_json::Value>, Changes)> = None;
        for _ in 0..crate::engine::WRITE_ATTEMPTS {
            match self.engine.save_edit(sid, base, edited, lock).await? {
                Edit::Done(saved) => return Ok(saved.is_some()),
                Edit::Rerun {
                    fresh,
                    base: refused,
                    edited: ours,
                } => {
                    let (before, changes) = match &seen {
                        Some(seen) => seen,
                        None => {
                            let before = serde_json::from_str(&refused.session)?;
                            let changes = Changes::diff(&before, &ours);
                            seen.insert((before, changes))
                        }
                    };
                    if changes.moved(before, fresh.data()) {
                        return Err(Error::Conflict { attempts: 1 });
                    }
                    let (record, mut data) = fresh.into_parts();
                    changes.apply(&ours, &mut data);
                    (base, edited) = (record, data);
                }
            }
        }
        Err(Error::Conflict {
            attempts: crate::engine::WRITE_ATTEMPTS,
        })
    }

    /// The socket's session, loaded under its lock; `None` when it has none.
    async fn acquire(
        &self,
        span: &tracing::Span,
    ) -> Result<Option<(String, Loaded, crate::locks::Guard)>> {
        for _ in 0..BIND_ATTEMPTS {
            let Some(sid) = self.session_id().await? else {
                return Ok(None);
            };
            let sid = sid.into_string();
            if self.holding.as_deref() == Some(sid.as_str()) {
                return Err(Error::Reentrant);
            }
            // The keyed tag costs a MAC: only for a span someone listens to.
            if !span.is_disabled() {
                span.record(
                    "session",
                    tracing::field::display(self.engine.session_tag(&sid)),
                );
            }
            let lock = self.engine.lock_timed(&sid, span).await?;
            let cid = self
                .client_id
                .as_ref()
                .map(ClientId::as_str)
                .unwrap_or_default();
            // The session may have moved (regenerated, destroyed) while we waited. A move ends
            // the old record, so the mapping is asked again only when the record is gone: one
            // look-up per call on the common path, which counts on a network map (M1).
            let Some(loaded) = self.engine.load_owned(cid, &sid).await? else {
                let now = self.session_id().await?;
                if now.as_ref().map(SessionId::as_str) != Some(sid.as_str()) {
                    continue;
                }
                return Ok(None);
            };
            return Ok(Some((sid, loaded, lock)));
        }
        Err(Error::Contention {
            attempts: BIND_ATTEMPTS,
        })
    }
}

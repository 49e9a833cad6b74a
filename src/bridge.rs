//! `SessionBridge`: the façade an app and its framework glue talk to. It starts HTTP requests
//! and binds sockets; the by-id API lives in `by_id.rs`, cleanup in `cleanup.rs`, options in
//! `builder.rs`.

use std::sync::Arc;

use http::HeaderMap;

use crate::builder::SessionBridgeBuilder;
use crate::cleanup::CleanupSchedule;
use crate::engine::Engine;
use crate::error::Result;
use crate::events::EventStream;
use crate::http_flow::RequestContext;
use crate::id::{ClientId, IdTag};
use crate::socket_flow::SocketSession;

/// One session shared by HTTP and sockets. Cheap to clone; all clones are the same bridge.
///
/// ```
/// use session_bridge::SessionBridge;
/// use std::time::Duration;
/// let bridge = SessionBridge::builder()
///     .key("app.sid")
///     .keys(["a stable secret of at least 32 bytes!!"])
///     .max_age(Duration::from_secs(24 * 3600))
///     .build()
///     .unwrap();
/// let unknown = futures::executor::block_on(bridge.get_session_id(&"unknown".into()));
/// assert_eq!(unknown.unwrap(), None);
/// ```
#[derive(Clone)]
pub struct SessionBridge {
    engine: Arc<Engine>,
    schedule: Arc<CleanupSchedule>,
}

impl std::fmt::Debug for SessionBridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionBridge")
            .field("key", &self.engine.cookies().session_name())
            .field("sessions_mapped", &self.engine.mapped_sessions())
            .finish_non_exhaustive()
    }
}

impl SessionBridge {
    pub(crate) fn new(engine: Engine, schedule: CleanupSchedule) -> Self {
        Self {
            engine: Arc::new(engine),
            schedule: Arc::new(schedule),
        }
    }

    pub(crate) fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    pub(crate) fn schedule(&self) -> &Arc<CleanupSchedule> {
        &self.schedule
    }

    /// A builder with the defaults of SPEC O1.
    ///
    /// ```
    /// use session_bridge::SessionBridge;
    /// let bridge = SessionBridge::builder()
    ///     .key("app.sid")
    ///     .keys(["a stable secret of at least 32 bytes!!"])
    ///     .build()?;
    /// assert_eq!(bridge.mapped_sessions(), 0);
    /// # Ok::<(), session_bridge::Error>(())
    /// ```
    pub fn builder() -> SessionBridgeBuilder {
        SessionBridgeBuilder::default()
    }

    /// Starts an HTTP request: reads its cookies, touches no store (H1, H3). Run the handler,
    /// then [`RequestContext::commit`] into the response headers.
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # futures::executor::block_on(async {
    /// # let bridge = SessionBridge::builder().key("k").keys([[1u8; 32]]).build().unwrap();
    /// let request = bridge.begin_request(&http::HeaderMap::new());
    /// request.session().insert("user", "ada").await.unwrap();
    /// let mut headers = http::HeaderMap::new();
    /// request.commit(&mut headers).await.unwrap();
    /// # });
    /// ```
    #[must_use = "a request context does nothing until it is committed into the response"]
    pub fn begin_request(&self, headers: &HeaderMap) -> RequestContext {
        RequestContext::begin(Arc::clone(&self.engine), headers)
    }

    /// Binds a socket at its handshake from the handshake request's headers (S1): reads the
    /// client and session cookies, never creates a client id or a session, sets no cookie.
    ///
    /// ```
    /// # use session_bridge::{Error, SessionBridge};
    /// # futures::executor::block_on(async {
    /// # let bridge = session_bridge::testing::test_bridge();
    /// use http::{HeaderMap, HeaderValue, header};
    /// // A page on another site tries to open a socket with the browser's cookies.
    /// let mut handshake = HeaderMap::new();
    /// handshake.insert(header::HOST, HeaderValue::from_static("app.example"));
    /// handshake.insert(header::ORIGIN, HeaderValue::from_static("https://evil.example"));
    /// let refused = bridge.bind_socket(&handshake).await;
    /// assert!(matches!(refused, Err(Error::ForbiddenOrigin)));
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// [`Error::ForbiddenOrigin`](crate::Error::ForbiddenOrigin) when the handshake's `Origin` is neither same-origin nor
    /// allowed ([`SessionBridgeBuilder::allowed_origins`]); a store error while attaching an
    /// existing session.
    pub async fn bind_socket(&self, headers: &HeaderMap) -> Result<SocketSession> {
        SocketSession::bind(Arc::clone(&self.engine), headers).await
    }

    /// A new subscription to the bridge's events (B5).
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # futures::executor::block_on(async {
    /// # let bridge = session_bridge::testing::test_bridge();
    /// use futures::StreamExt;
    /// use session_bridge::BridgeEvent;
    /// let mut events = bridge.events();
    /// let request = bridge.begin_request(&http::HeaderMap::new());
    /// request.session().insert("user", "ada").await?;
    /// request.commit(&mut http::HeaderMap::new()).await?;
    /// let created = events.next().await;
    /// let first_write = matches!(created, Some(BridgeEvent::SessionSet { is_new: true, .. }));
    /// assert!(first_write);
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn events(&self) -> EventStream {
        self.engine.subscribe(crate::events::every_event)
    }

    /// [`events`](Self::events) that takes only the events `filter` accepts. The filter runs
    /// when an event is published: an event it refuses is not copied into this stream's
    /// queue and does not wake its reader (a task that waits for session ends costs nothing
    /// on every write). The stream's `missed` counts only accepted events.
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # futures::executor::block_on(async {
    /// # let bridge = session_bridge::testing::test_bridge();
    /// use futures::StreamExt;
    /// use session_bridge::BridgeEvent;
    /// let mut ends = bridge.events_matching(|e| matches!(e, BridgeEvent::SessionDestroy { .. }));
    /// let mut browser = session_bridge::testing::Browser::new();
    /// browser.request(&bridge, async |s| s.insert("user", "ada").await).await??;
    /// assert!(ends.try_next().is_none(), "a SessionSet: not taken");
    /// browser.request(&bridge, async |s| s.destroy().await).await??;
    /// assert!(matches!(ends.try_next(), Some(BridgeEvent::SessionDestroy { .. })));
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn events_matching(&self, filter: crate::events::EventFilter) -> EventStream {
        self.engine.subscribe(filter)
    }

    /// A keyed, non-reversible tag of a client id: the same for every node sharing the signing
    /// keys, useless to anyone without them. Socket glue names its per-browser room with it.
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # futures::executor::block_on(async {
    /// # let bridge = session_bridge::testing::test_bridge();
    /// # let client_id = session_bridge::testing::Browser::new().request(&bridge, async |s| s.insert("user", "ada").await.map(|()| s.client_id())).await??;
    /// // Log the tag of browser `client_id`, never the id: it matches across nodes sharing
    /// // the keys.
    /// let tag = bridge.client_tag(&client_id);
    /// tracing::info!(client = %tag, "user logged in");
    /// assert_eq!(tag, bridge.client_tag(&client_id));
    /// assert!(!tag.to_string().contains(client_id.as_str()));
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn client_tag(&self, client_id: &ClientId) -> IdTag {
        self.engine.client_tag(client_id.as_str())
    }

    /// The socket.io room that holds every socket of one browser, for emitting to it or
    /// disconnecting it (`io.to(bridge.client_room(cid))`). Named by a keyed tag, so room
    /// names (which adapters may log or publish) never reveal a client id.
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # futures::executor::block_on(async {
    /// # let bridge = session_bridge::testing::test_bridge();
    /// # let client_id = session_bridge::testing::Browser::new().request(&bridge, async |s| s.insert("user", "ada").await.map(|()| s.client_id())).await??;
    /// // `client_id`: a browser whose session was created over HTTP.
    /// let room = bridge.client_room(&client_id);
    /// assert!(!room.contains(client_id.as_str()));
    /// // With socketioxide: `io.to(room).emit("logout", &()).await`.
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn client_room(&self, client_id: &ClientId) -> String {
        crate::socket_flow::client_room(&self.engine.client_tag(client_id.as_str()))
    }

    /// Number of sessions mapped to a client (observability; bounded by live sessions).
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # futures::executor::block_on(async {
    /// # let bridge = session_bridge::testing::test_bridge();
    /// assert_eq!(bridge.mapped_sessions(), 0);
    /// let request = bridge.begin_request(&http::HeaderMap::new());
    /// request.session().insert("user", "ada").await?;
    /// request.commit(&mut http::HeaderMap::new()).await?;
    /// assert_eq!(bridge.mapped_sessions(), 1); // one browser has a session
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn mapped_sessions(&self) -> usize {
        self.engine.mapped_sessions()
    }

    /// Number of session ids with a lock holder or waiter right now (0 when idle).
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # futures::executor::block_on(async {
    /// # let bridge = session_bridge::testing::test_bridge();
    /// # let mut browser = session_bridge::testing::Browser::new();
    /// # let client_id = browser.request(&bridge, async |s| s.insert("user", "ada").await.map(|()| s.client_id())).await??;
    /// # let cookie = browser.headers();
    /// # let socket = bridge.bind_socket(&cookie).await?;
    /// assert_eq!(bridge.active_locks(), 0);
    /// let held = socket.with_session(async |_| bridge.active_locks()).await?;
    /// assert_eq!(held, 1, "held while the handler runs");
    /// assert_eq!(bridge.active_locks(), 0);
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn active_locks(&self) -> usize {
        self.engine.active_locks()
    }
}

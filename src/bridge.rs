//! `SessionBridge`: the façade an app and its framework glue talk to (SPEC B1-B5, O1-O2).

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use cookie::SameSite;
use futures::future::{Either, select};
use http::HeaderMap;
use serde_json::{Map, Value};

use crate::clock::{Clock, SystemClock, millis};
use crate::cookies::{CookieAttrs, Key, KeyRing, is_valid_attribute, is_valid_cookie_name};
use crate::engine::{CleanupControl, CookieConfig, Engine};
use crate::error::{Error, Result};
use crate::events::{BridgeEvent, EventStream, Events};
use crate::gateway::Gateway;
use crate::http_flow::RequestContext;
use crate::id::{IdGen, IdTag, RandomIdGen};
use crate::locks::LockTable;
use crate::mapping::Mapping;
use crate::origin::OriginPolicy;
use crate::session::{Changes, checked_max_age};
use crate::socket_flow::SocketSession;
use crate::store::{DynStore, LiveStore, Store};

const MINUTE: u64 = 60_000;
const DAY: u64 = 24 * 60 * MINUTE;
const YEAR: u64 = 365 * DAY;

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
/// assert_eq!(bridge.get_session_id("unknown"), None);
/// ```
#[derive(Clone)]
pub struct SessionBridge {
    pub(crate) engine: Arc<Engine>,
}

impl std::fmt::Debug for SessionBridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionBridge")
            .field("key", &self.engine.cookies.session_name)
            .field("sessions_mapped", &self.engine.mapping.len())
            .finish_non_exhaustive()
    }
}

impl SessionBridge {
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
    pub fn begin_request(&self, headers: &HeaderMap) -> RequestContext {
        RequestContext::begin(Arc::clone(&self.engine), headers)
    }

    /// Binds a socket at its handshake from the handshake request's headers (S1): reads the
    /// client and session cookies, never creates a client id or a session, sets no cookie.
    ///
    /// ```
    /// # use session_bridge::{Error, SessionBridge};
    /// # futures::executor::block_on(async {
    /// # let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build()?;
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
    /// [`Error::ForbiddenOrigin`] when the handshake's `Origin` is neither same-origin nor
    /// allowed ([`SessionBridgeBuilder::allowed_origins`]); a store error while attaching an
    /// existing session.
    pub async fn bind_socket(&self, headers: &HeaderMap) -> Result<SocketSession> {
        SocketSession::bind(Arc::clone(&self.engine), headers).await
    }

    /// The session id mapped to a client id (B1).
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # futures::executor::block_on(async {
    /// # let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build()?;
    /// # let request = bridge.begin_request(&http::HeaderMap::new());
    /// # request.session().insert("user", "ada").await?;
    /// # let client_id = request.client_id();
    /// # request.commit(&mut http::HeaderMap::new()).await?;
    /// // `client_id`: a browser whose session was created over HTTP, which made the mapping.
    /// assert!(bridge.get_session_id(&client_id).is_some());
    /// assert_eq!(bridge.get_session_id("a client without a session"), None);
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn get_session_id(&self, client_id: &str) -> Option<String> {
        self.engine.mapping.session_id(client_id)
    }

    /// The client id mapped to a session id (B1).
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # futures::executor::block_on(async {
    /// # let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build()?;
    /// # let request = bridge.begin_request(&http::HeaderMap::new());
    /// # request.session().insert("user", "ada").await?;
    /// # let client_id = request.client_id();
    /// # request.commit(&mut http::HeaderMap::new()).await?;
    /// # let session_id = bridge.get_session_id(&client_id).unwrap();
    /// // `client_id`: a browser with a session, created over HTTP; `session_id`: that session.
    /// assert_eq!(bridge.get_client_id(&session_id), Some(client_id));
    /// assert_eq!(bridge.get_client_id("an unknown session id"), None);
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn get_client_id(&self, session_id: &str) -> Option<String> {
        self.engine.mapping.client_id(session_id)
    }

    /// The session data of a mapped session id; `None` when unmapped or gone (B2).
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # futures::executor::block_on(async {
    /// # let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build()?;
    /// # let request = bridge.begin_request(&http::HeaderMap::new());
    /// # request.session().insert("user", "ada").await?;
    /// # let client_id = request.client_id();
    /// # request.commit(&mut http::HeaderMap::new()).await?;
    /// # let session_id = bridge.get_session_id(&client_id).unwrap();
    /// // `session_id`: a live session, created over HTTP.
    /// let data = bridge.get_by_id(&session_id).await?.unwrap_or_default();
    /// assert_eq!(data["user"], "ada");
    /// assert_eq!(bridge.get_by_id("an unmapped id").await?, None);
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// A store error, or a corrupt record (which is dropped).
    pub async fn get_by_id(&self, session_id: &str) -> Result<Option<Map<String, Value>>> {
        if self.engine.mapping.client_id(session_id).is_none() {
            return Ok(None);
        }
        Ok(self.engine.load(session_id).await?.map(|l| l.data))
    }

    /// [`get_by_id`](Self::get_by_id) through the client mapping (B2).
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # futures::executor::block_on(async {
    /// # let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build()?;
    /// # let request = bridge.begin_request(&http::HeaderMap::new());
    /// # request.session().insert("user", "ada").await?;
    /// # let client_id = request.client_id();
    /// # request.commit(&mut http::HeaderMap::new()).await?;
    /// // `client_id`: a browser whose session was created over HTTP.
    /// let data = bridge.get_by_client_id(&client_id).await?;
    /// let user = data.and_then(|d| d.get("user").cloned());
    /// assert_eq!(user, Some(serde_json::json!("ada")));
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// As [`get_by_id`](Self::get_by_id).
    pub async fn get_by_client_id(&self, client_id: &str) -> Result<Option<Map<String, Value>>> {
        match self.get_session_id(client_id) {
            Some(sid) => self.get_by_id(&sid).await,
            None => Ok(None),
        }
    }

    /// Destroys a mapped session; `false` when unmapped or already gone (B2, GW3).
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # futures::executor::block_on(async {
    /// # let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build()?;
    /// # let request = bridge.begin_request(&http::HeaderMap::new());
    /// # request.session().insert("user", "ada").await?;
    /// # let client_id = request.client_id();
    /// # request.commit(&mut http::HeaderMap::new()).await?;
    /// # let session_id = bridge.get_session_id(&client_id).unwrap();
    /// // `client_id`: a browser with a session, created over HTTP; `session_id`: that session.
    /// assert!(bridge.destroy_by_id(&session_id).await?);
    /// assert_eq!(bridge.get_session_id(&client_id), None);
    /// assert!(!bridge.destroy_by_id(&session_id).await?, "already gone");
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// A store error.
    pub async fn destroy_by_id(&self, session_id: &str) -> Result<bool> {
        if self.engine.mapping.client_id(session_id).is_none() {
            return Ok(false);
        }
        let _lock = self.engine.lock(session_id).await;
        self.engine.destroy(session_id).await
    }

    /// [`destroy_by_id`](Self::destroy_by_id) through the client mapping (B2).
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # futures::executor::block_on(async {
    /// # let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build()?;
    /// # let request = bridge.begin_request(&http::HeaderMap::new());
    /// # request.session().insert("user", "ada").await?;
    /// # let client_id = request.client_id();
    /// # request.commit(&mut http::HeaderMap::new()).await?;
    /// // Log browser `client_id` out from the server side (an admin action, a ban).
    /// assert!(bridge.destroy_by_client_id(&client_id).await?);
    /// assert_eq!(bridge.get_by_client_id(&client_id).await?, None);
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// A store error.
    pub async fn destroy_by_client_id(&self, client_id: &str) -> Result<bool> {
        match self.get_session_id(client_id) {
            Some(sid) => self.destroy_by_id(&sid).await,
            None => Ok(false),
        }
    }

    /// Replaces a mapped session's data (`None` destroys it), under its lock (B2, GW2).
    /// Never creates a session. Returns `false` when the session had meanwhile disappeared.
    ///
    /// ```
    /// # use session_bridge::{Error, SessionBridge};
    /// # futures::executor::block_on(async {
    /// # let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build()?;
    /// # let request = bridge.begin_request(&http::HeaderMap::new());
    /// # request.session().insert("user", "ada").await?;
    /// # let client_id = request.client_id();
    /// # request.commit(&mut http::HeaderMap::new()).await?;
    /// # let session_id = bridge.get_session_id(&client_id).unwrap();
    /// // `session_id`: a live session, created over HTTP.
    /// let mut data = bridge.get_by_id(&session_id).await?.unwrap_or_default();
    /// data.insert("role".into(), "admin".into());
    /// assert!(bridge.set_by_id(&session_id, Some(data), None).await?);
    /// // This path never creates a session.
    /// let unmapped = bridge.set_by_id("an unmapped id", None, None).await;
    /// assert!(matches!(unmapped, Err(Error::NotMapped)));
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// [`Error::NotMapped`] for an unmapped id; a store error; [`Error::SessionTooLarge`].
    pub async fn set_by_id(
        &self,
        session_id: &str,
        session: Option<Map<String, Value>>,
        max_age: Option<Duration>,
    ) -> Result<bool> {
        if self.engine.mapping.client_id(session_id).is_none() {
            return Err(Error::NotMapped);
        }
        let ttl = max_age.map(checked_max_age).transpose()?;
        let _lock = self.engine.lock(session_id).await;
        let Some(data) = session else {
            return self.engine.destroy(session_id).await;
        };
        let Some(current) = self.engine.load(session_id).await? else {
            return Ok(false);
        };
        let changes = Changes {
            replaced: true,
            keys: Default::default(),
        };
        let apply = move |fresh: &mut Map<String, Value>| changes.apply(&data, fresh);
        Ok(self
            .engine
            .update_existing(session_id, current, ttl, false, &apply)
            .await?
            .is_some())
    }

    /// [`set_by_id`](Self::set_by_id) through the client mapping (B2).
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # futures::executor::block_on(async {
    /// # let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build()?;
    /// # let request = bridge.begin_request(&http::HeaderMap::new());
    /// # request.session().insert("user", "ada").await?;
    /// # let client_id = request.client_id();
    /// # request.commit(&mut http::HeaderMap::new()).await?;
    /// use std::time::Duration;
    /// // `client_id`: a browser whose session was created over HTTP.
    /// let data = serde_json::json!({ "user": "grace" }).as_object().cloned();
    /// let one_hour = Some(Duration::from_secs(3600));
    /// assert!(bridge.set_by_client_id(&client_id, data, one_hour).await?);
    /// let stored = bridge.get_by_client_id(&client_id).await?.unwrap_or_default();
    /// assert_eq!(stored["user"], "grace");
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// As [`set_by_id`](Self::set_by_id).
    pub async fn set_by_client_id(
        &self,
        client_id: &str,
        session: Option<Map<String, Value>>,
        max_age: Option<Duration>,
    ) -> Result<bool> {
        match self.get_session_id(client_id) {
            Some(sid) => self.set_by_id(&sid, session, max_age).await,
            None => Err(Error::NotMapped),
        }
    }

    /// Destroys every expired record now; returns how many (B3, GW4).
    ///
    /// ```
    /// use session_bridge::{ManualClock, SessionBridge};
    /// use std::time::Duration;
    /// # futures::executor::block_on(async {
    /// let clock = ManualClock::new(1_700_000_000_000);
    /// let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]])
    ///     .clock(clock.clone())
    ///     .max_age(Duration::from_secs(3600))
    ///     .build()?;
    /// # let request = bridge.begin_request(&http::HeaderMap::new());
    /// # request.session().insert("user", "ada").await?;
    /// # let client_id = request.client_id();
    /// # request.commit(&mut http::HeaderMap::new()).await?;
    /// clock.advance(Duration::from_secs(3600));
    /// assert_eq!(bridge.cleanup().await?, 1);
    /// assert_eq!(bridge.mapped_sessions(), 0);
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// [`Error::Unsupported`] when the store has no `list`; a store error.
    pub async fn cleanup(&self) -> Result<usize> {
        self.engine.cleanup().await
    }

    /// Turns periodic cleanup on (B3); `interval` defaults to `max_age / 4` clamped to
    /// [1 minute, 1 day], and a given one is clamped to [1 second, 1 day]. Returns `false` if it was already on. The cleanup itself runs in
    /// [`auto_cleanup_worker`](Self::auto_cleanup_worker), which the app spawns once.
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build()?;
    /// use std::time::Duration;
    /// assert!(bridge.start_auto_cleanup(Some(Duration::from_secs(600))));
    /// assert!(!bridge.start_auto_cleanup(None), "it was already on");
    /// # Ok::<(), session_bridge::Error>(())
    /// ```
    pub fn start_auto_cleanup(&self, interval: Option<Duration>) -> bool {
        let ms = interval
            .map(|d| millis(d).clamp(1_000, DAY))
            .unwrap_or(self.engine.default_cleanup_interval);
        let c = &self.engine.cleanup;
        let was = c.interval_ms.swap(ms, Ordering::SeqCst);
        c.generation.fetch_add(1, Ordering::SeqCst);
        c.changed.notify(usize::MAX);
        was == 0
    }

    /// Turns periodic cleanup off; returns `false` if it was off (B3).
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build()?;
    /// assert!(!bridge.stop_auto_cleanup(), "off by default");
    /// bridge.start_auto_cleanup(None);
    /// assert!(bridge.stop_auto_cleanup());
    /// # Ok::<(), session_bridge::Error>(())
    /// ```
    pub fn stop_auto_cleanup(&self) -> bool {
        let c = &self.engine.cleanup;
        let was = c.interval_ms.swap(0, Ordering::SeqCst);
        c.generation.fetch_add(1, Ordering::SeqCst);
        c.changed.notify(usize::MAX);
        was != 0
    }

    /// The cleanup loop, for the app to spawn on its runtime (the core has none, B3):
    /// `tokio::spawn(bridge.auto_cleanup_worker())`. It idles while auto cleanup is off, runs
    /// [`cleanup`](Self::cleanup) every interval while it is on (store errors are logged and
    /// the loop goes on, ST4), and ends when the last clone of the bridge is dropped.
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]])
    ///     .auto_cleanup(true)
    ///     .build()?;
    /// let runtime = tokio::runtime::Runtime::new()?;
    /// let worker = runtime.spawn(bridge.auto_cleanup_worker());
    /// drop(bridge); // the last clone: the worker returns
    /// runtime.block_on(worker)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn auto_cleanup_worker(&self) -> impl Future<Output = ()> + Send + 'static {
        let weak: Weak<Engine> = Arc::downgrade(&self.engine);
        async move {
            loop {
                let (listener, sleep, generation) = {
                    let Some(engine) = weak.upgrade() else { return };
                    let c = &engine.cleanup;
                    let listener = c.changed.listen();
                    let generation = c.generation.load(Ordering::SeqCst);
                    let ms = c.interval_ms.load(Ordering::SeqCst);
                    let sleep =
                        (ms > 0).then(|| engine.gateway.clock.sleep(Duration::from_millis(ms)));
                    (listener, sleep, generation)
                };
                let Some(sleep) = sleep else {
                    listener.await;
                    continue;
                };
                if let Either::Right(((), _)) = select(listener, sleep).await {
                    let Some(engine) = weak.upgrade() else { return };
                    if engine.cleanup.generation.load(Ordering::SeqCst) != generation {
                        continue;
                    }
                    if let Err(err) = engine.cleanup().await {
                        tracing::warn!(error = %err, "auto cleanup failed; will retry next interval");
                    }
                }
            }
        }
    }

    /// For apps that wrote to the store directly: announces a write so the mapping and events
    /// stay consistent (B4).
    ///
    /// ```
    /// use session_bridge::{BridgeEvent, LiveStore, SessionBridge, SyncStore};
    /// use std::sync::Arc;
    /// # futures::executor::block_on(async {
    /// let store = Arc::new(LiveStore::new());
    /// let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]])
    ///     .store(Arc::clone(&store))
    ///     .build()?;
    /// # let request = bridge.begin_request(&http::HeaderMap::new());
    /// # request.session().insert("user", "ada").await?;
    /// # let client_id = request.client_id();
    /// # request.commit(&mut http::HeaderMap::new()).await?;
    /// # let session_id = bridge.get_session_id(&client_id).unwrap();
    /// let mut events = bridge.events();
    /// // The app rewrites the record of session `session_id` itself, then tells the bridge.
    /// if let Some(mut record) = store.get(&session_id)? {
    ///     record.session = r#"{"user":"grace"}"#.into();
    ///     record.version += 1;
    ///     store.set(&session_id, record)?;
    ///     bridge.notify_store_set(&session_id, false).await?;
    /// }
    /// assert!(matches!(events.try_next(), Some(BridgeEvent::SessionSet { is_new: false, .. })));
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// A store error while reading the record back.
    pub async fn notify_store_set(&self, session_id: &str, is_new: bool) -> Result<()> {
        match self.engine.load(session_id).await? {
            Some(l) => self
                .engine
                .announce_set(session_id, l.record.expires_at, is_new, true),
            None => {
                self.engine.mapping.detach(session_id);
            }
        }
        Ok(())
    }

    /// For apps that destroyed a record directly: mapping entry removed, `SessionDestroy` (B4).
    ///
    /// ```
    /// use session_bridge::{LiveStore, SessionBridge, SyncStore};
    /// use std::sync::Arc;
    /// # futures::executor::block_on(async {
    /// let store = Arc::new(LiveStore::new());
    /// let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]])
    ///     .store(Arc::clone(&store))
    ///     .build()?;
    /// # let request = bridge.begin_request(&http::HeaderMap::new());
    /// # request.session().insert("user", "ada").await?;
    /// # let client_id = request.client_id();
    /// # request.commit(&mut http::HeaderMap::new()).await?;
    /// # let session_id = bridge.get_session_id(&client_id).unwrap();
    /// // `client_id`: a browser with a session, created over HTTP; `session_id`: that session.
    /// store.destroy(&session_id)?;
    /// bridge.notify_store_destroy(&session_id);
    /// assert_eq!(bridge.get_session_id(&client_id), None);
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn notify_store_destroy(&self, session_id: &str) {
        self.engine.announce_destroy(session_id);
    }

    /// For apps that cleaned the store themselves: emits `Cleanup(count)` (B4).
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build()?;
    /// use session_bridge::BridgeEvent;
    /// let mut events = bridge.events();
    /// bridge.notify_store_cleanup(2);
    /// assert_eq!(events.try_next(), Some(BridgeEvent::Cleanup(2)));
    /// # Ok::<(), session_bridge::Error>(())
    /// ```
    pub fn notify_store_cleanup(&self, count: usize) {
        self.engine.events.publish(BridgeEvent::Cleanup(count));
    }

    /// A new subscription to the bridge's events (B5).
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # futures::executor::block_on(async {
    /// # let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build()?;
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
        self.engine.events.subscribe()
    }

    /// A keyed, non-reversible tag of a client id: the same for every node sharing the signing
    /// keys, useless to anyone without them. Socket glue names its per-browser room with it.
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # futures::executor::block_on(async {
    /// # let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build()?;
    /// # let request = bridge.begin_request(&http::HeaderMap::new());
    /// # request.session().insert("user", "ada").await?;
    /// # let client_id = request.client_id();
    /// # request.commit(&mut http::HeaderMap::new()).await?;
    /// // Log the tag of browser `client_id`, never the id: it matches across nodes sharing
    /// // the keys.
    /// let tag = bridge.client_tag(&client_id);
    /// tracing::info!(client = %tag, "user logged in");
    /// assert_eq!(tag, bridge.client_tag(&client_id));
    /// assert!(!tag.to_string().contains(&client_id));
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn client_tag(&self, client_id: &str) -> IdTag {
        self.engine.client_tag(client_id)
    }

    /// The socket.io room that holds every socket of one browser, for emitting to it or
    /// disconnecting it (`io.to(bridge.client_room(cid))`). Named by a keyed tag, so room
    /// names (which adapters may log or publish) never reveal a client id.
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # futures::executor::block_on(async {
    /// # let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build()?;
    /// # let request = bridge.begin_request(&http::HeaderMap::new());
    /// # request.session().insert("user", "ada").await?;
    /// # let client_id = request.client_id();
    /// # request.commit(&mut http::HeaderMap::new()).await?;
    /// // `client_id`: a browser whose session was created over HTTP.
    /// let room = bridge.client_room(&client_id);
    /// assert!(!room.contains(&client_id));
    /// // With socketioxide: `io.to(room).emit("logout", &()).await`.
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn client_room(&self, client_id: &str) -> String {
        crate::socket_flow::client_room(&self.engine.client_tag(client_id))
    }

    /// Number of sessions mapped to a client (observability; bounded by live sessions).
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # futures::executor::block_on(async {
    /// # let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build()?;
    /// assert_eq!(bridge.mapped_sessions(), 0);
    /// let request = bridge.begin_request(&http::HeaderMap::new());
    /// request.session().insert("user", "ada").await?;
    /// request.commit(&mut http::HeaderMap::new()).await?;
    /// assert_eq!(bridge.mapped_sessions(), 1); // one browser has a session
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn mapped_sessions(&self) -> usize {
        self.engine.mapping.len()
    }

    /// Number of session ids with a lock holder or waiter right now (0 when idle).
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
    /// assert_eq!(bridge.active_locks(), 0);
    /// let guard = socket.lock().await?;
    /// assert_eq!(bridge.active_locks(), 1);
    /// drop(guard);
    /// assert_eq!(bridge.active_locks(), 0);
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn active_locks(&self) -> usize {
        self.engine.locks.len()
    }
}

/// Builder of a [`SessionBridge`]; every option is checked by [`build`](Self::build) (O2).
///
/// | option | default |
/// |---|---|
/// | `key` | random `sb.<id>` (with a warning: cookies die on restart) |
/// | `keys` | one random key (with a warning) |
/// | `signed` | `true` |
/// | `store` | [`LiveStore`] |
/// | `max_age` | 30 days (1 minute ..= 1 year) |
/// | `browser_session` | `false` |
/// | `rolling`, `renew` | `false` |
/// | `http_only` | `true` |
/// | `secure` | `true` |
/// | `same_site` | `Lax` |
/// | `path` | `/` |
/// | `client_key` | `"{key}.cid"` |
/// | `client_max_age` | 1 year (1 minute ..= 400 days) |
/// | `client_always_roll` | `true` |
/// | `auto_cleanup` | `false`; interval `max_age / 4` clamped to 1 minute ..= 1 day |
/// | `max_session_bytes` | 64 KiB |
/// | `event_buffer` | 1024 events per subscriber |
/// | `allowed_origins` | none: sockets only from same-origin pages (or without `Origin`) |
///
/// ```
/// use session_bridge::{SameSite, SessionBridge};
/// use std::time::Duration;
/// let bridge = SessionBridge::builder()
///     .key("app.sid")
///     .keys(["newest secret, at least 32 bytes!", "previous secret, still verifies!!"])
///     .max_age(Duration::from_secs(7 * 24 * 3600))
///     .same_site(Some(SameSite::Strict))
///     .rolling(true)
///     .build()?;
/// assert_eq!(bridge.mapped_sessions(), 0);
/// # Ok::<(), session_bridge::Error>(())
/// ```
#[must_use]
pub struct SessionBridgeBuilder {
    key: Option<String>,
    keys: Vec<Result<Key>>,
    signed: bool,
    store: Option<Arc<dyn DynStore>>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGen>,
    max_age: Duration,
    browser_session: bool,
    rolling: bool,
    renew: bool,
    http_only: bool,
    secure: bool,
    same_site: Option<SameSite>,
    path: String,
    domain: Option<String>,
    client_key: Option<String>,
    client_max_age: Duration,
    client_always_roll: bool,
    auto_cleanup: bool,
    auto_cleanup_interval: Option<Duration>,
    max_session_bytes: usize,
    event_buffer: usize,
    allowed_origins: Vec<String>,
}

impl Default for SessionBridgeBuilder {
    fn default() -> Self {
        Self {
            key: None,
            keys: Vec::new(),
            signed: true,
            store: None,
            clock: Arc::new(SystemClock),
            ids: Arc::new(RandomIdGen),
            max_age: Duration::from_millis(30 * DAY),
            browser_session: false,
            rolling: false,
            renew: false,
            http_only: true,
            secure: true,
            same_site: Some(SameSite::Lax),
            path: "/".into(),
            domain: None,
            client_key: None,
            client_max_age: Duration::from_millis(YEAR),
            client_always_roll: true,
            auto_cleanup: false,
            auto_cleanup_interval: None,
            max_session_bytes: 64 * 1024,
            event_buffer: 1024,
            allowed_origins: Vec::new(),
        }
    }
}

macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident: $ty:ty),* $(,)?) => {$(
        $(#[$doc])*
        pub fn $name(mut self, value: $ty) -> Self {
            self.$name = value;
            self
        }
    )*};
}

impl SessionBridgeBuilder {
    setters! {
        /// Sign cookies (default `true`). `false` sends bare ids: only for tests and trusted
        /// networks, since anyone can then forge any id (SPEC C3).
        ///
        /// ```
        /// # use session_bridge::SessionBridge;
        /// # fn set_cookies(bridge: &session_bridge::SessionBridge) -> [String; 2] {
        /// #     futures::executor::block_on(async {
        /// #         let request = bridge.begin_request(&http::HeaderMap::new());
        /// #         request.session().insert("user", "ada").await.unwrap();
        /// #         let mut headers = http::HeaderMap::new();
        /// #         request.commit(&mut headers).await.unwrap();
        /// #         let all = headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned());
        /// #         all.collect::<Vec<_>>().try_into().unwrap()
        /// #     })
        /// # }
        /// // `set_cookies`: the [client, session] `Set-Cookie` values of a first response.
        /// let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]])
        ///     .signed(false)
        ///     .build()?;
        /// let [_, session] = set_cookies(&bridge);
        /// // The bare id, no signature.
        /// let value = session.split(';').next().unwrap_or_default();
        /// assert_eq!(value.len(), "app.sid=".len() + session_bridge::ID_LEN);
        /// # Ok::<(), session_bridge::Error>(())
        /// ```
        signed: bool,
        /// Session TTL and cookie max-age (1 minute ..= 1 year).
        ///
        /// ```
        /// # use session_bridge::SessionBridge;
        /// # fn set_cookies(bridge: &session_bridge::SessionBridge) -> [String; 2] {
        /// #     futures::executor::block_on(async {
        /// #         let request = bridge.begin_request(&http::HeaderMap::new());
        /// #         request.session().insert("user", "ada").await.unwrap();
        /// #         let mut headers = http::HeaderMap::new();
        /// #         request.commit(&mut headers).await.unwrap();
        /// #         let all = headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned());
        /// #         all.collect::<Vec<_>>().try_into().unwrap()
        /// #     })
        /// # }
        /// // `set_cookies`: the [client, session] `Set-Cookie` values of a first response.
        /// use std::time::Duration;
        /// let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]])
        ///     .max_age(Duration::from_secs(3600))
        ///     .build()?;
        /// let [_, session] = set_cookies(&bridge);
        /// assert!(session.contains("Max-Age=3600"));
        /// let one_second = SessionBridge::builder().max_age(Duration::from_secs(1)).build();
        /// assert!(one_second.is_err(), "1 minute at least");
        /// # Ok::<(), session_bridge::Error>(())
        /// ```
        max_age: Duration,
        /// Send the session cookie without `Max-Age`, so it ends with the browser session
        /// (the record still lives `max_age`).
        ///
        /// ```
        /// # use session_bridge::SessionBridge;
        /// # fn set_cookies(bridge: &session_bridge::SessionBridge) -> [String; 2] {
        /// #     futures::executor::block_on(async {
        /// #         let request = bridge.begin_request(&http::HeaderMap::new());
        /// #         request.session().insert("user", "ada").await.unwrap();
        /// #         let mut headers = http::HeaderMap::new();
        /// #         request.commit(&mut headers).await.unwrap();
        /// #         let all = headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned());
        /// #         all.collect::<Vec<_>>().try_into().unwrap()
        /// #     })
        /// # }
        /// // `set_cookies`: the [client, session] `Set-Cookie` values of a first response.
        /// let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]])
        ///     .browser_session(true)
        ///     .build()?;
        /// let [client, session] = set_cookies(&bridge);
        /// assert!(!session.contains("Max-Age"));
        /// assert!(client.contains("Max-Age"), "the client cookie keeps its own max-age");
        /// # Ok::<(), session_bridge::Error>(())
        /// ```
        browser_session: bool,
        /// Re-send the session cookie and refresh the TTL on every response that loaded it.
        ///
        /// ```
        /// # use session_bridge::SessionBridge;
        /// # futures::executor::block_on(async {
        /// let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]])
        ///     .rolling(true)
        ///     .build()?;
        /// # let request = bridge.begin_request(&http::HeaderMap::new());
        /// # request.session().insert("user", "ada").await?;
        /// # let client_id = request.client_id();
        /// # let mut set_cookie = http::HeaderMap::new();
        /// # request.commit(&mut set_cookie).await?;
        /// # let pairs: Vec<&str> = set_cookie.get_all("set-cookie").iter().map(|v| v.to_str().unwrap().split(';').next().unwrap()).collect();
        /// # let mut cookie = http::HeaderMap::new();
        /// # cookie.insert("cookie", pairs.join("; ").parse().unwrap());
        /// // `cookie`: the `Cookie` header of a browser that has a session. A later request
        /// // that only reads the session still re-sends the session cookie.
        /// let request = bridge.begin_request(&cookie);
        /// assert_eq!(request.session().get::<String>("user").await?.as_deref(), Some("ada"));
        /// let mut headers = http::HeaderMap::new();
        /// request.commit(&mut headers).await?;
        /// let cookies = headers.get_all("set-cookie");
        /// assert!(cookies.iter().any(|c| c.as_bytes().starts_with(b"app.sid=")));
        /// # Ok::<_, session_bridge::Error>(())
        /// # }).unwrap();
        /// ```
        rolling: bool,
        /// Refresh cookie and TTL when less than half the TTL is left.
        ///
        /// ```
        /// # use session_bridge::{ManualClock, SessionBridge};
        /// # use std::time::Duration;
        /// # futures::executor::block_on(async {
        /// let clock = ManualClock::new(1_700_000_000_000);
        /// let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]])
        ///     .clock(clock.clone())
        ///     .max_age(Duration::from_secs(3600))
        ///     .renew(true)
        ///     .build()?;
        /// # let request = bridge.begin_request(&http::HeaderMap::new());
        /// # request.session().insert("user", "ada").await?;
        /// # let client_id = request.client_id();
        /// # let mut set_cookie = http::HeaderMap::new();
        /// # request.commit(&mut set_cookie).await?;
        /// # let pairs: Vec<&str> = set_cookie.get_all("set-cookie").iter().map(|v| v.to_str().unwrap().split(';').next().unwrap()).collect();
        /// # let mut cookie = http::HeaderMap::new();
        /// # cookie.insert("cookie", pairs.join("; ").parse().unwrap());
        /// clock.advance(Duration::from_secs(31 * 60)); // less than half the TTL left
        /// // `cookie`: the `Cookie` header of a browser that has a session.
        /// let request = bridge.begin_request(&cookie);
        /// assert!(!request.session().is_empty().await?);
        /// let mut headers = http::HeaderMap::new();
        /// request.commit(&mut headers).await?;
        /// let cookies = headers.get_all("set-cookie");
        /// assert!(cookies.iter().any(|c| c.as_bytes().starts_with(b"app.sid=")));
        /// # Ok::<_, session_bridge::Error>(())
        /// # }).unwrap();
        /// ```
        renew: bool,
        /// `HttpOnly` on both cookies (default `true`).
        ///
        /// ```
        /// # use session_bridge::SessionBridge;
        /// # fn set_cookies(bridge: &session_bridge::SessionBridge) -> [String; 2] {
        /// #     futures::executor::block_on(async {
        /// #         let request = bridge.begin_request(&http::HeaderMap::new());
        /// #         request.session().insert("user", "ada").await.unwrap();
        /// #         let mut headers = http::HeaderMap::new();
        /// #         request.commit(&mut headers).await.unwrap();
        /// #         let all = headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned());
        /// #         all.collect::<Vec<_>>().try_into().unwrap()
        /// #     })
        /// # }
        /// // `set_cookies`: the [client, session] `Set-Cookie` values of a first response.
        /// let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]])
        ///     .http_only(false)
        ///     .build()?;
        /// let [client, session] = set_cookies(&bridge);
        /// assert!(!client.contains("HttpOnly") && !session.contains("HttpOnly"));
        /// # Ok::<(), session_bridge::Error>(())
        /// ```
        http_only: bool,
        /// `Secure` on both cookies (default `true`; turn off only for plain-http development).
        ///
        /// ```
        /// # use session_bridge::SessionBridge;
        /// # fn set_cookies(bridge: &session_bridge::SessionBridge) -> [String; 2] {
        /// #     futures::executor::block_on(async {
        /// #         let request = bridge.begin_request(&http::HeaderMap::new());
        /// #         request.session().insert("user", "ada").await.unwrap();
        /// #         let mut headers = http::HeaderMap::new();
        /// #         request.commit(&mut headers).await.unwrap();
        /// #         let all = headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned());
        /// #         all.collect::<Vec<_>>().try_into().unwrap()
        /// #     })
        /// # }
        /// // `set_cookies`: the [client, session] `Set-Cookie` values of a first response.
        /// // Plain-http development only.
        /// let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]])
        ///     .secure(false)
        ///     .build()?;
        /// let [client, session] = set_cookies(&bridge);
        /// assert!(!client.contains("Secure") && !session.contains("Secure"));
        /// # Ok::<(), session_bridge::Error>(())
        /// ```
        secure: bool,
        /// `SameSite` on both cookies (default `Lax`; `None` omits the attribute).
        ///
        /// ```
        /// # use session_bridge::SessionBridge;
        /// # fn set_cookies(bridge: &session_bridge::SessionBridge) -> [String; 2] {
        /// #     futures::executor::block_on(async {
        /// #         let request = bridge.begin_request(&http::HeaderMap::new());
        /// #         request.session().insert("user", "ada").await.unwrap();
        /// #         let mut headers = http::HeaderMap::new();
        /// #         request.commit(&mut headers).await.unwrap();
        /// #         let all = headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned());
        /// #         all.collect::<Vec<_>>().try_into().unwrap()
        /// #     })
        /// # }
        /// // `set_cookies`: the [client, session] `Set-Cookie` values of a first response.
        /// use session_bridge::SameSite;
        /// let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]])
        ///     .same_site(Some(SameSite::Strict))
        ///     .build()?;
        /// let [_, session] = set_cookies(&bridge);
        /// assert!(session.contains("SameSite=Strict"));
        /// // Browsers reject `SameSite=None` without `Secure`, so the builder does too.
        /// let insecure = SessionBridge::builder().same_site(Some(SameSite::None)).secure(false);
        /// assert!(insecure.build().is_err());
        /// # Ok::<(), session_bridge::Error>(())
        /// ```
        same_site: Option<SameSite>,
        /// Client cookie max-age (1 minute ..= 400 days).
        ///
        /// ```
        /// # use session_bridge::SessionBridge;
        /// # fn set_cookies(bridge: &session_bridge::SessionBridge) -> [String; 2] {
        /// #     futures::executor::block_on(async {
        /// #         let request = bridge.begin_request(&http::HeaderMap::new());
        /// #         request.session().insert("user", "ada").await.unwrap();
        /// #         let mut headers = http::HeaderMap::new();
        /// #         request.commit(&mut headers).await.unwrap();
        /// #         let all = headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned());
        /// #         all.collect::<Vec<_>>().try_into().unwrap()
        /// #     })
        /// # }
        /// // `set_cookies`: the [client, session] `Set-Cookie` values of a first response.
        /// use std::time::Duration;
        /// let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]])
        ///     .client_max_age(Duration::from_secs(30 * 24 * 3600))
        ///     .build()?;
        /// let [client, _] = set_cookies(&bridge);
        /// assert!(client.contains("Max-Age=2592000"));
        /// # Ok::<(), session_bridge::Error>(())
        /// ```
        client_max_age: Duration,
        /// Re-send the client cookie on every response (default `true`).
        ///
        /// ```
        /// # use session_bridge::SessionBridge;
        /// # futures::executor::block_on(async {
        /// let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]])
        ///     .client_always_roll(false)
        ///     .build()?;
        /// # let request = bridge.begin_request(&http::HeaderMap::new());
        /// # request.session().insert("user", "ada").await?;
        /// # let client_id = request.client_id();
        /// # let mut set_cookie = http::HeaderMap::new();
        /// # request.commit(&mut set_cookie).await?;
        /// # let pairs: Vec<&str> = set_cookie.get_all("set-cookie").iter().map(|v| v.to_str().unwrap().split(';').next().unwrap()).collect();
        /// # let mut cookie = http::HeaderMap::new();
        /// # cookie.insert("cookie", pairs.join("; ").parse().unwrap());
        /// // A returning browser (`cookie`: its `Cookie` header) whose request changes nothing
        /// // gets no cookie at all.
        /// let mut headers = http::HeaderMap::new();
        /// bridge.begin_request(&cookie).commit(&mut headers).await?;
        /// assert!(headers.get("set-cookie").is_none());
        /// # Ok::<_, session_bridge::Error>(())
        /// # }).unwrap();
        /// ```
        client_always_roll: bool,
        /// Run periodic cleanup from the start (needs `auto_cleanup_worker` spawned).
        ///
        /// ```
        /// # use session_bridge::SessionBridge;
        /// let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]])
        ///     .auto_cleanup(true)
        ///     .build()?;
        /// // Spawn the loop once on your runtime: `tokio::spawn(bridge.auto_cleanup_worker());`
        /// assert!(bridge.stop_auto_cleanup(), "it was on from the start");
        /// # Ok::<(), session_bridge::Error>(())
        /// ```
        auto_cleanup: bool,
        /// Largest session JSON accepted, in bytes (SPEC X3).
        ///
        /// ```
        /// # use session_bridge::SessionBridge;
        /// # futures::executor::block_on(async {
        /// use session_bridge::Error;
        /// let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]])
        ///     .max_session_bytes(64)
        ///     .build()?;
        /// let request = bridge.begin_request(&http::HeaderMap::new());
        /// request.session().insert("blob", "x".repeat(100)).await?;
        /// let result = request.commit(&mut http::HeaderMap::new()).await;
        /// assert!(matches!(result, Err(Error::SessionTooLarge { limit: 64, .. })));
        /// # Ok::<_, session_bridge::Error>(())
        /// # }).unwrap();
        /// ```
        max_session_bytes: usize,
        /// Events buffered per slow subscriber before the oldest are dropped.
        ///
        /// ```
        /// # use session_bridge::SessionBridge;
        /// use session_bridge::BridgeEvent;
        /// let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]])
        ///     .event_buffer(2)
        ///     .build()?;
        /// let mut events = bridge.events();
        /// (1..=3).for_each(|n| bridge.notify_store_cleanup(n));
        /// assert_eq!(events.missed(), 1); // the oldest was dropped
        /// assert_eq!(events.try_next(), Some(BridgeEvent::Cleanup(2)));
        /// # Ok::<(), session_bridge::Error>(())
        /// ```
        event_buffer: usize,
    }

    /// Session cookie name.
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # fn set_cookies(bridge: &session_bridge::SessionBridge) -> [String; 2] {
    /// #     futures::executor::block_on(async {
    /// #         let request = bridge.begin_request(&http::HeaderMap::new());
    /// #         request.session().insert("user", "ada").await.unwrap();
    /// #         let mut headers = http::HeaderMap::new();
    /// #         request.commit(&mut headers).await.unwrap();
    /// #         let all = headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned());
    /// #         all.collect::<Vec<_>>().try_into().unwrap()
    /// #     })
    /// # }
    /// // `set_cookies`: the [client, session] `Set-Cookie` values of a first response.
    /// let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build()?;
    /// let [client, session] = set_cookies(&bridge);
    /// assert!(session.starts_with("app.sid="));
    /// assert!(client.starts_with("app.sid.cid="));
    /// # Ok::<(), session_bridge::Error>(())
    /// ```
    pub fn key(mut self, name: impl Into<String>) -> Self {
        self.key = Some(name.into());
        self
    }

    /// Client cookie name (default `"{key}.cid"`).
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # fn set_cookies(bridge: &session_bridge::SessionBridge) -> [String; 2] {
    /// #     futures::executor::block_on(async {
    /// #         let request = bridge.begin_request(&http::HeaderMap::new());
    /// #         request.session().insert("user", "ada").await.unwrap();
    /// #         let mut headers = http::HeaderMap::new();
    /// #         request.commit(&mut headers).await.unwrap();
    /// #         let all = headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned());
    /// #         all.collect::<Vec<_>>().try_into().unwrap()
    /// #     })
    /// # }
    /// // `set_cookies`: the [client, session] `Set-Cookie` values of a first response.
    /// let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]])
    ///     .client_key("app.browser")
    ///     .build()?;
    /// let [client, _] = set_cookies(&bridge);
    /// assert!(client.starts_with("app.browser="));
    /// let same = SessionBridge::builder().key("app.sid").client_key("app.sid").build();
    /// assert!(same.is_err(), "must differ from `key`");
    /// # Ok::<(), session_bridge::Error>(())
    /// ```
    pub fn client_key(mut self, name: impl Into<String>) -> Self {
        self.client_key = Some(name.into());
        self
    }

    /// Signing keys, newest first: the first signs, all verify (C2). Each at least 32 bytes.
    ///
    /// ```
    /// use session_bridge::{Error, SessionBridge};
    /// // Rotation: sign with the new key, still accept cookies signed with the old one.
    /// let bridge = SessionBridge::builder()
    ///     .key("app.sid")
    ///     .keys(["new secret, at least 32 bytes long!", "old secret, at least 32 bytes long!"])
    ///     .build()?;
    /// let short = SessionBridge::builder().key("app.sid").keys(["too short"]).build();
    /// assert!(matches!(short, Err(Error::InvalidOption { option: "keys", .. })));
    /// # Ok::<(), session_bridge::Error>(())
    /// ```
    pub fn keys<K, I>(mut self, keys: I) -> Self
    where
        I: IntoIterator<Item = K>,
        K: TryInto<Key>,
        K::Error: Into<Error>,
    {
        self.keys = keys
            .into_iter()
            .map(|k| k.try_into().map_err(Into::into))
            .collect();
        self
    }

    /// Cookie `Path` (default `/`).
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # fn set_cookies(bridge: &session_bridge::SessionBridge) -> [String; 2] {
    /// #     futures::executor::block_on(async {
    /// #         let request = bridge.begin_request(&http::HeaderMap::new());
    /// #         request.session().insert("user", "ada").await.unwrap();
    /// #         let mut headers = http::HeaderMap::new();
    /// #         request.commit(&mut headers).await.unwrap();
    /// #         let all = headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned());
    /// #         all.collect::<Vec<_>>().try_into().unwrap()
    /// #     })
    /// # }
    /// // `set_cookies`: the [client, session] `Set-Cookie` values of a first response.
    /// let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]])
    ///     .path("/app")
    ///     .build()?;
    /// let [client, session] = set_cookies(&bridge);
    /// assert!(client.contains("Path=/app") && session.contains("Path=/app"));
    /// # Ok::<(), session_bridge::Error>(())
    /// ```
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// Cookie `Domain` (default none: host-only).
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # fn set_cookies(bridge: &session_bridge::SessionBridge) -> [String; 2] {
    /// #     futures::executor::block_on(async {
    /// #         let request = bridge.begin_request(&http::HeaderMap::new());
    /// #         request.session().insert("user", "ada").await.unwrap();
    /// #         let mut headers = http::HeaderMap::new();
    /// #         request.commit(&mut headers).await.unwrap();
    /// #         let all = headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned());
    /// #         all.collect::<Vec<_>>().try_into().unwrap()
    /// #     })
    /// # }
    /// // `set_cookies`: the [client, session] `Set-Cookie` values of a first response.
    /// // Share the cookies with every subdomain of example.com.
    /// let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]])
    ///     .domain("example.com")
    ///     .build()?;
    /// let [_, session] = set_cookies(&bridge);
    /// assert!(session.contains("Domain=example.com"));
    /// # Ok::<(), session_bridge::Error>(())
    /// ```
    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(domain.into());
        self
    }

    /// The session store (default [`LiveStore`] on the bridge's clock).
    ///
    /// ```
    /// use session_bridge::{LiveStore, SessionBridge};
    /// use std::sync::Arc;
    /// # futures::executor::block_on(async {
    /// // Keep a handle on the store (any `Store` works, `Arc<S>` included).
    /// let store = Arc::new(LiveStore::new());
    /// let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]])
    ///     .store(Arc::clone(&store))
    ///     .build()?;
    /// # let request = bridge.begin_request(&http::HeaderMap::new());
    /// # request.session().insert("user", "ada").await?;
    /// # let client_id = request.client_id();
    /// # request.commit(&mut http::HeaderMap::new()).await?;
    /// assert_eq!(store.len(), 1);
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn store(mut self, store: impl Store) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// The clock (default [`SystemClock`]); tests use [`ManualClock`](crate::ManualClock).
    ///
    /// ```
    /// use session_bridge::{ManualClock, SessionBridge};
    /// use std::time::Duration;
    /// # futures::executor::block_on(async {
    /// let clock = ManualClock::new(1_700_000_000_000);
    /// let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]])
    ///     .clock(clock.clone())
    ///     .max_age(Duration::from_secs(60))
    ///     .build()?;
    /// # let request = bridge.begin_request(&http::HeaderMap::new());
    /// # request.session().insert("user", "ada").await?;
    /// # let client_id = request.client_id();
    /// # request.commit(&mut http::HeaderMap::new()).await?;
    /// clock.advance(Duration::from_secs(60)); // no sleeping in tests
    /// // The session of browser `client_id` has expired.
    /// assert_eq!(bridge.get_by_client_id(&client_id).await?, None);
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The id generator (default [`RandomIdGen`]); tests use
    /// [`SequentialIdGen`](crate::SequentialIdGen). [`build`](Self::build) draws one id to
    /// check that the generator accepts its own ids (else no cookie would ever come back).
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// use session_bridge::SequentialIdGen;
    /// let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]])
    ///     .ids(SequentialIdGen::new("test"))
    ///     .build()?; // drew ...0001 for its check
    /// let request = bridge.begin_request(&http::HeaderMap::new());
    /// assert_eq!(request.client_id(), "test0000000000000000000000000002");
    /// # Ok::<(), session_bridge::Error>(())
    /// ```
    pub fn ids(mut self, ids: impl IdGen) -> Self {
        self.ids = Arc::new(ids);
        self
    }

    /// Origins (`scheme://host[:port]`) allowed to open sockets besides same-origin pages.
    /// By default only same-origin handshakes and handshakes without `Origin` are accepted.
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # futures::executor::block_on(async {
    /// use http::{HeaderMap, HeaderValue, header};
    /// let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]])
    ///     .allowed_origins(["https://app.example"])
    ///     .build()?;
    /// let mut handshake = HeaderMap::new();
    /// handshake.insert(header::HOST, HeaderValue::from_static("api.example"));
    /// handshake.insert(header::ORIGIN, HeaderValue::from_static("https://app.example"));
    /// assert!(bridge.bind_socket(&handshake).await.is_ok());
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn allowed_origins<I, O>(mut self, origins: I) -> Self
    where
        I: IntoIterator<Item = O>,
        O: Into<String>,
    {
        self.allowed_origins = origins
            .into_iter()
            .map(|o| o.into().trim().trim_end_matches('/').to_ascii_lowercase())
            .collect();
        self
    }

    /// Interval of periodic cleanup (1 second ..= 1 day).
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// use std::time::Duration;
    /// let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]])
    ///     .auto_cleanup(true)
    ///     .auto_cleanup_interval(Duration::from_secs(300))
    ///     .build()?;
    /// let too_often = SessionBridge::builder().key("app.sid").keys([[7u8; 32]])
    ///     .auto_cleanup_interval(Duration::from_millis(10))
    ///     .build();
    /// assert!(too_often.is_err());
    /// # Ok::<(), session_bridge::Error>(())
    /// ```
    pub fn auto_cleanup_interval(mut self, interval: Duration) -> Self {
        self.auto_cleanup_interval = Some(interval);
        self
    }

    /// Checks every option and builds the bridge.
    ///
    /// # Errors
    /// [`Error::InvalidOption`] naming the option and the accepted range.
    ///
    /// ```
    /// use session_bridge::{Error, SessionBridge};
    /// use std::time::Duration;
    /// let err = SessionBridge::builder().max_age(Duration::from_secs(1)).build().unwrap_err();
    /// assert!(matches!(err, Error::InvalidOption { option: "max_age", .. }));
    /// ```
    pub fn build(self) -> Result<SessionBridge> {
        let max_age = checked_max_age(self.max_age)?;
        let client_max_age = millis(self.client_max_age);
        if !(MINUTE..=400 * DAY).contains(&client_max_age) {
            return Err(Error::option(
                "client_max_age",
                "must be between 1 minute and 400 days",
            ));
        }
        let interval = match self.auto_cleanup_interval {
            Some(d) => {
                let v = millis(d);
                if !(1_000..=DAY).contains(&v) {
                    return Err(Error::option(
                        "auto_cleanup_interval",
                        "must be between 1 second and 1 day",
                    ));
                }
                v
            }
            None => (max_age / 4).clamp(MINUTE, DAY),
        };
        if self.max_session_bytes < 2 {
            return Err(Error::option(
                "max_session_bytes",
                "must be at least 2 (`{}`)",
            ));
        }
        if self.event_buffer == 0 {
            return Err(Error::option("event_buffer", "must be at least 1"));
        }
        let key = match self.key {
            Some(k) => k,
            None => {
                let k = format!("sb.{}", &RandomIdGen.generate()[..8]);
                tracing::warn!(
                    "no session cookie name (`key`) set: using a random one, so cookies will not survive a restart"
                );
                k
            }
        };
        if !is_valid_cookie_name(&key) {
            return Err(Error::option(
                "key",
                "must be a non-empty cookie name token",
            ));
        }
        let client_name = self.client_key.unwrap_or_else(|| format!("{key}.cid"));
        if !is_valid_cookie_name(&client_name) {
            return Err(Error::option(
                "client_key",
                "must be a non-empty cookie name token",
            ));
        }
        if client_name == key {
            return Err(Error::option("client_key", "must differ from `key`"));
        }
        if !self.path.starts_with('/') || !is_valid_attribute(&self.path) {
            return Err(Error::option(
                "path",
                "must start with `/` and hold only visible ASCII, no `;`",
            ));
        }
        if let Some(d) = &self.domain
            && (d.is_empty() || d.contains(' ') || !is_valid_attribute(d))
        {
            return Err(Error::option("domain", "must be a host name"));
        }
        if self.same_site == Some(SameSite::None) && !self.secure {
            return Err(Error::option(
                "same_site",
                "`SameSite=None` requires `secure(true)`; browsers reject it otherwise",
            ));
        }
        // An id the generator's own check rejects would never come back from a cookie:
        // every request would silently start a new session.
        let probe = self.ids.generate();
        if !self.ids.is_valid(&probe) || probe.contains('.') || probe.is_empty() {
            return Err(Error::option(
                "ids",
                "the id generator makes ids its own `is_valid` rejects (or ids with a `.`)",
            ));
        }
        let mut keys = Vec::with_capacity(self.keys.len());
        for k in self.keys {
            keys.push(k?);
        }
        if keys.is_empty() {
            tracing::warn!(
                "no signing keys set: using a random one, so signed cookies will not survive a restart"
            );
            keys.push(Key::generate());
        }
        let keys = KeyRing::new(keys).ok_or_else(|| Error::option("keys", "must not be empty"))?;
        let store = match self.store {
            Some(s) => s,
            None => Arc::new(LiveStore::with_clock(ClockRef(Arc::clone(&self.clock)))),
        };
        let tag_key = keys.newest().bytes().to_vec();
        let engine = Engine {
            gateway: Gateway {
                store,
                clock: self.clock,
                default_ttl: max_age,
                max_session_bytes: self.max_session_bytes,
                tag_key,
            },
            mapping: Mapping::default(),
            events: Events::new(self.event_buffer),
            locks: LockTable::default(),
            ids: self.ids,
            cookies: CookieConfig {
                session_name: key,
                client_name,
                attrs: CookieAttrs {
                    http_only: self.http_only,
                    secure: self.secure,
                    same_site: self.same_site,
                    path: self.path,
                    domain: self.domain,
                },
                signed: self.signed,
                keys,
                browser_session: self.browser_session,
                rolling: self.rolling,
                renew: self.renew,
                client_max_age,
                client_always_roll: self.client_always_roll,
            },
            cleanup: CleanupControl {
                interval_ms: AtomicU64::new(if self.auto_cleanup { interval } else { 0 }),
                generation: AtomicU64::new(0),
                changed: event_listener::Event::new(),
            },
            default_cleanup_interval: interval,
            origins: OriginPolicy {
                allowed: self.allowed_origins,
            },
            retired: Default::default(),
        };
        Ok(SessionBridge {
            engine: Arc::new(engine),
        })
    }
}

/// Shares the bridge's clock with the default LiveStore.
struct ClockRef(Arc<dyn Clock>);

impl Clock for ClockRef {
    fn now_ms(&self) -> u64 {
        self.0.now_ms()
    }
    fn sleep(&self, duration: Duration) -> crate::clock::Sleep {
        self.0.sleep(duration)
    }
}

//! The by-id API (SPEC B1, B2, B4): look-ups through the mapping, reads and writes of a
//! session by its id or its client's id, and the notices for apps that write to the store
//! themselves. Nothing here creates a session: creating belongs to the HTTP flow (H4).

use std::time::Duration;

use serde_json::{Map, Value};

use crate::bridge::SessionBridge;
use crate::changes::Changes;
use crate::error::{Error, Result};
use crate::gateway::Loaded;
use crate::id::{ClientId, SessionId};
use crate::session::checked_max_age;

impl SessionBridge {
    /// The session id mapped to a client id (B1).
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # futures::executor::block_on(async {
    /// # let bridge = session_bridge::testing::test_bridge();
    /// # let client_id = session_bridge::testing::Browser::new().request(&bridge, async |s| s.insert("user", "ada").await.map(|()| s.client_id())).await??;
    /// // `client_id`: a browser whose session was created over HTTP, which made the mapping.
    /// assert!(bridge.get_session_id(&client_id).await?.is_some());
    /// assert_eq!(bridge.get_session_id(&"a client without a session".into()).await?, None);
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// A failure of a shared mapping (many nodes); the in-memory one never fails.
    pub async fn get_session_id(&self, client_id: &ClientId) -> Result<Option<SessionId>> {
        Ok(self
            .engine()
            .session_of(client_id.as_str())
            .await?
            .map(SessionId::from))
    }

    /// The client id mapped to a session id (B1).
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # futures::executor::block_on(async {
    /// # let bridge = session_bridge::testing::test_bridge();
    /// # let client_id = session_bridge::testing::Browser::new().request(&bridge, async |s| s.insert("user", "ada").await.map(|()| s.client_id())).await??;
    /// # let session_id = bridge.get_session_id(&client_id).await?.unwrap();
    /// // `client_id`: a browser with a session, created over HTTP; `session_id`: that session.
    /// assert_eq!(bridge.get_client_id(&session_id).await?, Some(client_id));
    /// assert_eq!(bridge.get_client_id(&"an unknown session id".into()).await?, None);
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// A failure of a shared mapping (many nodes); the in-memory one never fails.
    pub async fn get_client_id(&self, session_id: &SessionId) -> Result<Option<ClientId>> {
        Ok(self
            .engine()
            .client_of(session_id.as_str())
            .await?
            .map(ClientId::from))
    }

    /// The session data of a mapped session id; `None` when unmapped or gone (B2).
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # futures::executor::block_on(async {
    /// # let bridge = session_bridge::testing::test_bridge();
    /// # let client_id = session_bridge::testing::Browser::new().request(&bridge, async |s| s.insert("user", "ada").await.map(|()| s.client_id())).await??;
    /// # let session_id = bridge.get_session_id(&client_id).await?.unwrap();
    /// // `session_id`: a live session, created over HTTP.
    /// let data = bridge.get_by_id(&session_id).await?.unwrap_or_default();
    /// assert_eq!(data["user"], "ada");
    /// assert_eq!(bridge.get_by_id(&"an unmapped id".into()).await?, None);
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// A store error, or a corrupt record (which is dropped).
    pub async fn get_by_id(&self, session_id: &SessionId) -> Result<Option<Map<String, Value>>> {
        let engine = self.engine();
        let sid = session_id.as_str();
        if engine.client_of(sid).await?.is_none() {
            return Ok(None);
        }
        Ok(engine.load(sid).await?.map(Loaded::into_data))
    }

    /// [`get_by_id`](Self::get_by_id) through the client mapping (B2).
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # futures::executor::block_on(async {
    /// # let bridge = session_bridge::testing::test_bridge();
    /// # let client_id = session_bridge::testing::Browser::new().request(&bridge, async |s| s.insert("user", "ada").await.map(|()| s.client_id())).await??;
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
    pub async fn get_by_client_id(
        &self,
        client_id: &ClientId,
    ) -> Result<Option<Map<String, Value>>> {
        match self.get_session_id(client_id).await? {
            Some(sid) => self.get_by_id(&sid).await,
            None => Ok(None),
        }
    }

    /// Destroys a mapped session; `false` when unmapped or already gone (B2, GW3).
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # futures::executor::block_on(async {
    /// # let bridge = session_bridge::testing::test_bridge();
    /// # let client_id = session_bridge::testing::Browser::new().request(&bridge, async |s| s.insert("user", "ada").await.map(|()| s.client_id())).await??;
    /// # let session_id = bridge.get_session_id(&client_id).await?.unwrap();
    /// // `client_id`: a browser with a session, created over HTTP; `session_id`: that session.
    /// assert!(bridge.destroy_by_id(&session_id).await?);
    /// assert_eq!(bridge.get_session_id(&client_id).await?, None);
    /// assert!(!bridge.destroy_by_id(&session_id).await?, "already gone");
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// A store error.
    pub async fn destroy_by_id(&self, session_id: &SessionId) -> Result<bool> {
        let engine = self.engine();
        let sid = session_id.as_str();
        if engine.client_of(sid).await?.is_none() {
            return Ok(false);
        }
        let lock = engine.lock(sid).await?;
        lock.check()?;
        engine.destroy(sid).await
    }

    /// [`destroy_by_id`](Self::destroy_by_id) through the client mapping (B2).
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # futures::executor::block_on(async {
    /// # let bridge = session_bridge::testing::test_bridge();
    /// # let client_id = session_bridge::testing::Browser::new().request(&bridge, async |s| s.insert("user", "ada").await.map(|()| s.client_id())).await??;
    /// // Log browser `client_id` out from the server side (an admin action, a ban).
    /// assert!(bridge.destroy_by_client_id(&client_id).await?);
    /// assert_eq!(bridge.get_by_client_id(&client_id).await?, None);
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// A store error.
    pub async fn destroy_by_client_id(&self, client_id: &ClientId) -> Result<bool> {
        match self.get_session_id(client_id).await? {
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
    /// # let bridge = session_bridge::testing::test_bridge();
    /// # let client_id = session_bridge::testing::Browser::new().request(&bridge, async |s| s.insert("user", "ada").await.map(|()| s.client_id())).await??;
    /// # let session_id = bridge.get_session_id(&client_id).await?.unwrap();
    /// // `session_id`: a live session, created over HTTP.
    /// let mut data = bridge.get_by_id(&session_id).await?.unwrap_or_default();
    /// data.insert("role".into(), "admin".into());
    /// assert!(bridge.set_by_id(&session_id, Some(data), None).await?);
    /// // This path never creates a session.
    /// let unmapped = bridge.set_by_id(&"an unmapped id".into(), None, None).await;
    /// assert!(matches!(unmapped, Err(Error::NotMapped)));
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// [`Error::NotMapped`] for an unmapped id; a store error; [`Error::SessionTooLarge`].
    pub async fn set_by_id(
        &self,
        session_id: &SessionId,
        session: Option<Map<String, Value>>,
        max_age: Option<Duration>,
    ) -> Result<bool> {
        let engine = self.engine();
        let sid = session_id.as_str();
        if engine.client_of(sid).await?.is_none() {
            return Err(Error::NotMapped);
        }
        let ttl = max_age.map(checked_max_age).transpose()?;
        let lock = engine.lock(sid).await?;
        let Some(data) = session else {
            lock.check()?;
            return engine.destroy(sid).await;
        };
        let Some(current) = engine.load(sid).await? else {
            return Ok(false);
        };
        let changes = Changes::replacement();
        let apply = move |fresh: &mut Map<String, Value>| {
            changes.apply(&data, fresh);
            Ok(())
        };
        Ok(engine
            .update_existing(sid, current, ttl, false, &lock, &apply)
            .await?
            .is_some())
    }

    /// [`set_by_id`](Self::set_by_id) through the client mapping (B2).
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # futures::executor::block_on(async {
    /// # let bridge = session_bridge::testing::test_bridge();
    /// # let client_id = session_bridge::testing::Browser::new().request(&bridge, async |s| s.insert("user", "ada").await.map(|()| s.client_id())).await??;
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
        client_id: &ClientId,
        session: Option<Map<String, Value>>,
        max_age: Option<Duration>,
    ) -> Result<bool> {
        match self.get_session_id(client_id).await? {
            Some(sid) => self.set_by_id(&sid, session, max_age).await,
            None => Err(Error::NotMapped),
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
    /// # let client_id = session_bridge::testing::Browser::new().request(&bridge, async |s| s.insert("user", "ada").await.map(|()| s.client_id())).await??;
    /// # let session_id = bridge.get_session_id(&client_id).await?.unwrap();
    /// let mut events = bridge.events();
    /// // The app rewrites the record of session `session_id` itself, then tells the bridge.
    /// if let Some(mut record) = store.get(session_id.as_str())? {
    ///     let seen = record.version;
    ///     record.session = r#"{"user":"grace"}"#.into();
    ///     record.version += 1;
    ///     store.update(session_id.as_str(), record, seen)?;
    ///     bridge.notify_store_set(&session_id, false).await?;
    /// }
    /// assert!(matches!(events.try_next(), Some(BridgeEvent::SessionSet { is_new: false, .. })));
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// A store error while reading the record back.
    pub async fn notify_store_set(&self, session_id: &SessionId, is_new: bool) -> Result<()> {
        let engine = self.engine();
        let sid = session_id.as_str();
        match engine.load(sid).await? {
            Some(l) => {
                engine
                    .announce_set(sid, l.record().expires_at, is_new, true)
                    .await
            }
            None => engine.forget(sid).await,
        }
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
    /// # let client_id = session_bridge::testing::Browser::new().request(&bridge, async |s| s.insert("user", "ada").await.map(|()| s.client_id())).await??;
    /// # let session_id = bridge.get_session_id(&client_id).await?.unwrap();
    /// // `client_id`: a browser with a session, created over HTTP; `session_id`: that session.
    /// if let Some(record) = store.get(session_id.as_str())? {
    ///     store.destroy(session_id.as_str(), record.version)?;
    /// }
    /// bridge.notify_store_destroy(&session_id).await?;
    /// assert_eq!(bridge.get_session_id(&client_id).await?, None);
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// A failure of a shared mapping (many nodes); the in-memory one never fails.
    pub async fn notify_store_destroy(&self, session_id: &SessionId) -> Result<()> {
        self.engine()
            .announce_destroy(session_id.as_str(), crate::events::EndReason::Destroyed)
            .await
    }

    /// For apps that cleaned the store themselves: emits `Cleanup(count)` (B4).
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # let bridge = session_bridge::testing::test_bridge();
    /// use session_bridge::BridgeEvent;
    /// let mut events = bridge.events();
    /// bridge.notify_store_cleanup(2);
    /// assert_eq!(events.try_next(), Some(BridgeEvent::Cleanup(2)));
    /// # Ok::<(), session_bridge::Error>(())
    /// ```
    pub fn notify_store_cleanup(&self, count: usize) {
        self.engine().announce_cleanup(count);
    }
}

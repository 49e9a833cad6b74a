//! The HTTP session handle: a JSON object loaded on first use, with typed helpers.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::record::Record;

/// Accepted range of a max-age, in ms (1 minute to 1 year, SPEC O1).
const MAX_AGE_RANGE: std::ops::RangeInclusive<u64> = 60_000..=365 * 24 * 3_600_000;

/// A max-age in ms, or the error naming `max_age` and its range: the one check behind the
/// builder, `Session::set_max_age` and `SessionBridge::set_by_id`.
pub(crate) fn checked_max_age(max_age: Duration) -> Result<u64> {
    let ms = crate::clock::millis(max_age);
    if MAX_AGE_RANGE.contains(&ms) {
        Ok(ms)
    } else {
        Err(Error::option(
            "max_age",
            "must be between 1 minute and 1 year",
        ))
    }
}

/// One request's view of its browser's session (SPEC H3-H6).
///
/// Cheap to clone (`Arc`), `Send + Sync`. Nothing is read from the store until a method that
/// needs the data is called, so a request that never touches its session costs no store
/// round-trip (H3). Changes are recorded key by key and applied at commit onto the freshly
/// read record, under the session's lock, so a concurrent socket write to another key is never
/// lost (see the crate docs, "Concurrency").
///
/// ```
/// use session_bridge::SessionBridge;
/// use http::HeaderMap;
/// # futures::executor::block_on(async {
/// let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build().unwrap();
/// let request = bridge.begin_request(&HeaderMap::new());
/// let session = request.session();
/// assert_eq!(session.get::<u32>("visits").await.unwrap(), None);
/// session.insert("visits", 1).await.unwrap();
/// // H6: the creating response already knows the new session's id.
/// assert!(session.id().await.unwrap().is_some());
/// let mut response_headers = HeaderMap::new();
/// request.commit(&mut response_headers).await.unwrap();
/// assert_eq!(response_headers.get_all("set-cookie").iter().count(), 2);
/// # });
/// ```
#[derive(Clone)]
pub struct Session {
    shared: Arc<Shared>,
}

struct Shared {
    engine: Arc<Engine>,
    /// The session id the request's signed cookie names, if it verified.
    cookie_sid: Option<String>,
    /// Serializes the first load when several tasks share the handle.
    load_gate: async_lock::Mutex<()>,
    state: Mutex<State>,
}

/// Key-level record of what the request changed (applied onto the fresh record at commit).
#[derive(Debug, Default, Clone)]
pub(crate) struct Changes {
    /// The whole object was replaced (`clear`, `replace`): write our data as is.
    pub(crate) replaced: bool,
    /// key -> new value (`None`: removed).
    pub(crate) keys: BTreeMap<String, Option<Value>>,
}

impl Changes {
    pub(crate) fn is_empty(&self) -> bool {
        !self.replaced && self.keys.is_empty()
    }

    /// The key-level changes that turn `before` into `after`.
    pub(crate) fn diff(before: &Map<String, Value>, after: &Map<String, Value>) -> Self {
        let mut keys = BTreeMap::new();
        for (k, v) in after {
            if before.get(k) != Some(v) {
                keys.insert(k.clone(), Some(v.clone()));
            }
        }
        for k in before.keys() {
            if !after.contains_key(k) {
                keys.insert(k.clone(), None);
            }
        }
        Self {
            replaced: false,
            keys,
        }
    }

    /// Applies these changes onto `fresh`; `ours` is the request's full view.
    pub(crate) fn apply(&self, ours: &Map<String, Value>, fresh: &mut Map<String, Value>) {
        if self.replaced {
            *fresh = ours.clone();
            return;
        }
        for (k, v) in &self.keys {
            match v {
                Some(v) => {
                    fresh.insert(k.clone(), v.clone());
                }
                None => {
                    fresh.remove(k);
                }
            }
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct State {
    pub(crate) loaded: bool,
    pub(crate) client_id: String,
    /// The session's id: the existing one, or the one a new session got at its first write.
    pub(crate) sid: Option<String>,
    /// The record as loaded; `None` for a new session.
    pub(crate) base: Option<Record>,
    pub(crate) data: Map<String, Value>,
    pub(crate) changes: Changes,
    /// Sessions to destroy at commit (`destroy`).
    pub(crate) destroy: Vec<String>,
    /// The stored session `regenerate` moves away from: at commit, its fresh record plus this
    /// request's changes become the new session, and it is destroyed.
    pub(crate) moved_from: Option<String>,
    pub(crate) max_age: Option<u64>,
    /// The client id `regenerate` replaced (H8): never re-sent again.
    pub(crate) retired_client: Option<String>,
}

impl Session {
    pub(crate) fn new(engine: Arc<Engine>, client_id: String, cookie_sid: Option<String>) -> Self {
        Self {
            shared: Arc::new(Shared {
                engine,
                cookie_sid,
                load_gate: async_lock::Mutex::new(()),
                state: Mutex::new(State {
                    loaded: false,
                    client_id,
                    sid: None,
                    base: None,
                    data: Map::new(),
                    changes: Changes::default(),
                    destroy: Vec::new(),
                    moved_from: None,
                    max_age: None,
                    retired_client: None,
                }),
            }),
        }
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        // Only plain field updates happen under this lock; a poisoned state is still whole.
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn engine(&self) -> &Arc<Engine> {
        &self.shared.engine
    }

    pub(crate) fn cookie_sid(&self) -> Option<&str> {
        self.shared.cookie_sid.as_deref()
    }

    /// Loads the session once (H2). Later calls return at once.
    pub(crate) async fn ensure_loaded(&self) -> Result<()> {
        if self.state().loaded {
            return Ok(());
        }
        let _gate = self.shared.load_gate.lock().await;
        let cid = {
            let st = self.state();
            if st.loaded {
                return Ok(());
            }
            st.client_id.clone()
        };
        let loaded = self.shared.engine.resolve(&cid, self.cookie_sid()).await?;
        let mut st = self.state();
        if let Some(loaded) = loaded {
            // The cookie's id was resolved, so it is `Some` here.
            st.sid = self.shared.cookie_sid.clone();
            st.data = loaded.data;
            st.base = Some(loaded.record);
        }
        st.loaded = true;
        Ok(())
    }

    async fn with_data<R>(&self, f: impl FnOnce(&mut State) -> R) -> Result<R> {
        self.ensure_loaded().await?;
        let mut st = self.state();
        Ok(f(&mut st))
    }

    /// Records a change of `key` and gives a new session its id at its first write (H6).
    fn changed(&self, st: &mut State, key: &str, value: Option<Value>) {
        st.changes.keys.insert(key.to_owned(), value);
        self.assign_id_if_new(st);
    }

    fn assign_id_if_new(&self, st: &mut State) {
        if st.sid.is_none() && !st.data.is_empty() {
            st.sid = Some(self.shared.engine.ids.generate());
        }
    }

    /// The client id of this browser (SPEC H1, H6).
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # futures::executor::block_on(async {
    /// # let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build()?;
    /// # let request = bridge.begin_request(&http::HeaderMap::new());
    /// # let session = request.session().clone();
    /// session.insert("user", "ada").await?;
    /// let (client_id, session_id) = (session.client_id(), session.id().await?);
    /// request.commit(&mut http::HeaderMap::new()).await?;
    /// assert_eq!(bridge.get_session_id(&client_id), session_id);
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn client_id(&self) -> String {
        self.state().client_id.clone()
    }

    /// The session id (H6): `None` until the session exists or gets its first write. An
    /// existing session's id is resolved through the client mapping when read, so a session
    /// replaced meanwhile (by another request of the same browser) shows its new id.
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # futures::executor::block_on(async {
    /// # let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build()?;
    /// # let request = bridge.begin_request(&http::HeaderMap::new());
    /// # let session = request.session();
    /// assert_eq!(session.id().await?, None); // no session yet
    /// session.insert("user", "ada").await?;
    /// assert!(session.id().await?.is_some(), "known before the response is sent");
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// A store error while loading.
    pub async fn id(&self) -> Result<Option<String>> {
        self.ensure_loaded().await?;
        let (cid, sid, is_new) = {
            let st = self.state();
            (st.client_id.clone(), st.sid.clone(), st.base.is_none())
        };
        if is_new {
            return Ok(sid);
        }
        let mapped = self.shared.engine.mapping.session_id(&cid);
        Ok(mapped.or(sid))
    }

    /// Whether this request started a new session (no record existed for it).
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
    /// // `cookie` carries the cookies of an earlier response that created the session.
    /// let returning = bridge.begin_request(&cookie);
    /// assert!(!returning.session().is_new().await?);
    /// let first_visit = bridge.begin_request(&http::HeaderMap::new());
    /// assert!(first_visit.session().is_new().await?);
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// A store error while loading.
    pub async fn is_new(&self) -> Result<bool> {
        self.with_data(|st| st.base.is_none()).await
    }

    /// The value under `key`, deserialized.
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # futures::executor::block_on(async {
    /// # let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build()?;
    /// # let request = bridge.begin_request(&http::HeaderMap::new());
    /// # let session = request.session();
    /// use session_bridge::Error;
    /// session.insert("cart", [3, 5]).await?;
    /// assert_eq!(session.get::<Vec<u32>>("cart").await?, Some(vec![3, 5]));
    /// assert_eq!(session.get::<u32>("missing").await?, None);
    /// assert!(matches!(session.get::<String>("cart").await, Err(Error::Json { .. })));
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// A store error while loading, or [`Error::Json`] when the value is not a `T`.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        match self.get_value(key).await? {
            Some(v) => Ok(Some(serde_json::from_value(v)?)),
            None => Ok(None),
        }
    }

    /// The raw JSON value under `key`.
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # futures::executor::block_on(async {
    /// # let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build()?;
    /// # let request = bridge.begin_request(&http::HeaderMap::new());
    /// # let session = request.session();
    /// use serde_json::json;
    /// session.insert_value("prefs", json!({ "theme": "dark" })).await?;
    /// let prefs = session.get_value("prefs").await?;
    /// assert_eq!(prefs.as_ref().and_then(|p| p.get("theme")), Some(&json!("dark")));
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// A store error while loading.
    pub async fn get_value(&self, key: &str) -> Result<Option<Value>> {
        self.with_data(|st| st.data.get(key).cloned()).await
    }

    /// Sets `key` to `value`. Writing the value already there is not a change.
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # futures::executor::block_on(async {
    /// # let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build()?;
    /// # let request = bridge.begin_request(&http::HeaderMap::new());
    /// # let session = request.session();
    /// #[derive(serde::Serialize, serde::Deserialize)]
    /// struct User { name: String, admin: bool }
    ///
    /// session.insert("user", User { name: "ada".into(), admin: false }).await?;
    /// let user: Option<User> = session.get("user").await?;
    /// assert!(user.is_some_and(|u| u.name == "ada" && !u.admin));
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// A store error while loading, or [`Error::Json`] when `value` cannot be serialized.
    pub async fn insert<T: Serialize>(&self, key: &str, value: T) -> Result<()> {
        let value = serde_json::to_value(value)?;
        self.insert_value(key, value).await
    }

    /// Sets `key` to a raw JSON value.
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # futures::executor::block_on(async {
    /// # let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build()?;
    /// # let request = bridge.begin_request(&http::HeaderMap::new());
    /// # let session = request.session();
    /// session.insert_value("flags", serde_json::json!(["beta", "dark-mode"])).await?;
    /// assert_eq!(session.data().await?.len(), 1);
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// A store error while loading.
    pub async fn insert_value(&self, key: &str, value: Value) -> Result<()> {
        self.with_data(|st| {
            if st.data.get(key) != Some(&value) {
                st.data.insert(key.to_owned(), value.clone());
                self.changed(st, key, Some(value));
            }
        })
        .await
    }

    /// Removes `key`, returning its value deserialized.
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # futures::executor::block_on(async {
    /// # let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build()?;
    /// # let request = bridge.begin_request(&http::HeaderMap::new());
    /// # let session = request.session();
    /// // A one-shot flash message: read it and drop it.
    /// session.insert("flash", "Saved!").await?;
    /// let flash: Option<String> = session.remove("flash").await?;
    /// assert_eq!(flash.as_deref(), Some("Saved!"));
    /// assert_eq!(session.remove::<String>("flash").await?, None);
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// A store error while loading, or [`Error::Json`] when the value is not a `T`.
    pub async fn remove<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        match self.remove_value(key).await? {
            Some(v) => Ok(Some(serde_json::from_value(v)?)),
            None => Ok(None),
        }
    }

    /// Removes `key`, returning its raw value.
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # futures::executor::block_on(async {
    /// # let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build()?;
    /// # let request = bridge.begin_request(&http::HeaderMap::new());
    /// # let session = request.session();
    /// session.insert("step", 2).await?;
    /// assert_eq!(session.remove_value("step").await?, Some(serde_json::json!(2)));
    /// assert!(session.is_empty().await?);
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// A store error while loading.
    pub async fn remove_value(&self, key: &str) -> Result<Option<Value>> {
        self.with_data(|st| {
            let old = st.data.remove(key);
            if old.is_some() {
                self.changed(st, key, None);
            }
            old
        })
        .await
    }

    /// Replaces the whole session object. At commit the object is written as it is here,
    /// not merged with concurrent changes.
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # futures::executor::block_on(async {
    /// # let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build()?;
    /// # let request = bridge.begin_request(&http::HeaderMap::new());
    /// # let session = request.session();
    /// let mut data = serde_json::Map::new();
    /// data.insert("user".into(), "ada".into());
    /// data.insert("role".into(), "admin".into());
    /// session.replace(data.clone()).await?;
    /// assert_eq!(session.data().await?, data);
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// A store error while loading.
    pub async fn replace(&self, data: Map<String, Value>) -> Result<()> {
        self.with_data(|st| {
            if st.data != data {
                st.data = data;
                st.changes = Changes {
                    replaced: true,
                    keys: BTreeMap::new(),
                };
                self.assign_id_if_new(st);
            }
        })
        .await
    }

    /// Empties the session (it stays alive; use [`destroy`](Self::destroy) to end it).
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # futures::executor::block_on(async {
    /// # let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build()?;
    /// # let request = bridge.begin_request(&http::HeaderMap::new());
    /// # let session = request.session();
    /// session.insert("cart", [3, 5]).await?;
    /// session.clear().await?;
    /// assert!(session.is_empty().await?);
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// A store error while loading.
    pub async fn clear(&self) -> Result<()> {
        self.replace(Map::new()).await
    }

    /// A copy of the whole session object.
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # futures::executor::block_on(async {
    /// # let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build()?;
    /// # let request = bridge.begin_request(&http::HeaderMap::new());
    /// # let session = request.session();
    /// session.insert("user", "ada").await?;
    /// session.insert("visits", 3).await?;
    /// let data = session.data().await?;
    /// assert_eq!(data["visits"], 3);
    /// assert_eq!(data.len(), 2);
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// A store error while loading.
    pub async fn data(&self) -> Result<Map<String, Value>> {
        self.with_data(|st| st.data.clone()).await
    }

    /// Whether the session object has no keys.
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # futures::executor::block_on(async {
    /// # let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build()?;
    /// # let request = bridge.begin_request(&http::HeaderMap::new());
    /// # let session = request.session();
    /// assert!(session.is_empty().await?);
    /// session.insert("user", "ada").await?;
    /// assert!(!session.is_empty().await?);
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// A store error while loading.
    pub async fn is_empty(&self) -> Result<bool> {
        self.with_data(|st| st.data.is_empty()).await
    }

    /// Ends the session: at commit its record is destroyed and its cookie cleared (H4).
    /// Writing to the handle afterwards starts a new, empty session.
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
    /// // Logout of browser `client_id`: `cookie` carries the cookies it was sent.
    /// let logout = bridge.begin_request(&cookie);
    /// logout.session().destroy().await?;
    /// let mut headers = http::HeaderMap::new();
    /// logout.commit(&mut headers).await?;
    /// assert_eq!(bridge.get_session_id(&client_id), None);
    /// let mut cookies = headers.get_all("set-cookie").iter();
    /// let removed = cookies.any(|c| c.to_str().is_ok_and(|c| c.contains("Max-Age=0")));
    /// assert!(removed, "the session cookie is removed");
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// A store error while loading.
    pub async fn destroy(&self) -> Result<()> {
        self.with_data(|st| {
            if let (Some(sid), Some(_)) = (st.sid.take(), st.base.take()) {
                st.destroy.push(sid);
            }
            if let Some(from) = st.moved_from.take() {
                st.destroy.push(from);
            }
            st.data.clear();
            st.changes = Changes::default();
        })
        .await
    }

    /// Moves the session to a new id and the browser to a new client id, keeping the data
    /// (H5, H8): the defence against session fixation. Call it at login. The new ids are
    /// readable at once; the old record is destroyed at commit.
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
    /// // Login of browser `client_id`: `cookie` carries the cookies of its pre-login session.
    /// let login = bridge.begin_request(&cookie);
    /// let before = login.session().id().await?;
    /// login.session().regenerate().await?;
    /// login.session().insert("user", "grace").await?;
    /// assert_ne!(login.session().id().await?, before);
    /// assert_ne!(login.client_id(), client_id);
    /// login.commit(&mut http::HeaderMap::new()).await?;
    /// assert_eq!(bridge.get_by_client_id(&client_id).await?, None, "the old ids are dead");
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// A store error while loading.
    pub async fn regenerate(&self) -> Result<()> {
        let engine = Arc::clone(&self.shared.engine);
        self.with_data(|st| {
            // The stored session (if any) moves at commit; its changes stay key by key, so
            // writes made to it meanwhile (by sockets) move along too.
            if let (Some(sid), Some(_)) = (st.sid.take(), st.base.take()) {
                st.moved_from = Some(sid);
            }
            self.assign_id_if_new(st);
            let old_client = std::mem::replace(&mut st.client_id, engine.ids.generate());
            st.retired_client.get_or_insert(old_client);
        })
        .await
    }

    /// Overrides this session's max-age (its record TTL and cookie max-age), from this
    /// response on.
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # futures::executor::block_on(async {
    /// # let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build()?;
    /// # let request = bridge.begin_request(&http::HeaderMap::new());
    /// # let session = request.session();
    /// use std::time::Duration;
    /// // "Remember me": keep this session for 30 days.
    /// session.insert("user", "ada").await?;
    /// session.set_max_age(Duration::from_secs(30 * 24 * 3600))?;
    /// assert!(session.set_max_age(Duration::from_secs(1)).is_err(), "1 minute at least");
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidOption`] outside 1 minute to 1 year.
    pub fn set_max_age(&self, max_age: Duration) -> Result<()> {
        self.state().max_age = Some(checked_max_age(max_age)?);
        Ok(())
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Ids and data are secrets: show only the shape.
        let st = self.state();
        f.debug_struct("Session")
            .field("loaded", &st.loaded)
            .field("is_new", &st.base.is_none())
            .field("keys", &st.data.len())
            .field("changed", &!st.changes.is_empty())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn handles_are_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Session>();
        assert_send_sync::<crate::RequestContext>();
        assert_send_sync::<crate::SocketSession>();
        assert_send_sync::<crate::SessionBridge>();
    }

    #[test]
    fn diff_then_apply_merges_onto_a_fresher_record() {
        let before = obj(json!({"a": 1, "b": 1, "gone": true}));
        let after = obj(json!({"a": 2, "b": 1, "new": "x"}));
        let changes = Changes::diff(&before, &after);
        assert_eq!(changes.keys.len(), 3);
        // Someone else changed `b` and added `c` meanwhile: both survive.
        let mut fresh = obj(json!({"a": 1, "b": 5, "c": 7, "gone": true}));
        changes.apply(&after, &mut fresh);
        assert_eq!(fresh, obj(json!({"a": 2, "b": 5, "c": 7, "new": "x"})));
        assert!(Changes::diff(&after, &after).is_empty());
    }

    #[test]
    fn a_replacement_wins_whole() {
        let ours = obj(json!({"only": 1}));
        let changes = Changes {
            replaced: true,
            keys: BTreeMap::new(),
        };
        let mut fresh = obj(json!({"other": 2}));
        changes.apply(&ours, &mut fresh);
        assert_eq!(fresh, ours);
    }
}

#[cfg(test)]
#[path = "changes_tests.rs"]
mod changes_tests;

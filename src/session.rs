//! The HTTP session handle: a JSON object loaded on first use, with typed helpers.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use http::HeaderMap;
use tracing::Instrument as _;

use crate::changes::Changes;
use crate::cookies::{Signature, append_set_cookie};
use crate::engine::SessionCookie;
use crate::engine::{Edit, Engine, Reloaded};
use crate::error::{Error, Result};
use crate::events::EndReason;
use crate::gateway::Loaded;
use crate::id::{ClientId, SessionId};
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
/// assert!(session.session_id().await.unwrap().is_some());
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
    /// The request's session cookie, verified at the first load (never, if untouched).
    cookie: SessionCookie,
    /// The client id the request came with (or got, when it had none).
    client: String,
    /// The client cookie's signature when it verified with the newest key (re-sent as is).
    client_sig: Option<Signature>,
    /// Serializes the first load when several tasks share the handle.
    load_gate: async_lock::Mutex<()>,
    state: Mutex<State>,
}

#[derive(Debug, Clone)]
struct State {
    loaded: bool,
    /// The client id that replaced the request's: `regenerate` or a rotating `destroy` (H8),
    /// or a session created while the request's client held another it did not prove (H2).
    new_client: Option<String>,
    /// The request's client id held a live session at the load that the request did not
    /// prove: a session this request creates goes to a fresh client id (H2).
    client_held: bool,
    /// The request's own client id is retired with the replacement (H8: never re-sent);
    /// false when the replacement only kept a new session off another browser's client (H2).
    retire_own_client: bool,
    /// The request's session cookie verified only with an older key (C2: re-signed at
    /// commit).
    cookie_stale: bool,
    /// The session's id: the existing one, or the one a new session got at its first write.
    sid: Option<String>,
    /// The record as loaded; `None` for a new session.
    base: Option<Record>,
    data: Map<String, Value>,
    changes: Changes,
    /// Sessions to destroy at commit (`destroy`).
    destroy: Vec<String>,
    /// The stored session `regenerate` moves away from: at commit, its fresh record plus this
    /// request's changes become the new session, and it is destroyed.
    moved_from: Option<String>,
    max_age: Option<u64>,
    /// `update` wrote the record: the commit re-sends the session cookie (H11).
    rewritten: bool,
    /// H12: the stored value of each key this request read before writing it (`None`:
    /// absent), checked against the fresh record at commit.
    reads: BTreeMap<String, Option<Value>>,
    /// `data()` read every key: the value each had then is recorded in `reads` only when
    /// something is about to change it ([`State::before_write`], [`State::settle_reads`]),
    /// instead of copying every value at the read. Until then `data` still holds exactly
    /// what was read for every key this request has not touched.
    read_all: bool,
}

/// Records that the request saw `seen` under `key`, unless the key is its own write or was
/// read before (the first read counts).
fn note_read(
    reads: &mut BTreeMap<String, Option<Value>>,
    changes: &Changes,
    key: &str,
    seen: Option<&Value>,
) {
    if !changes.touches(key) && !reads.contains_key(key) {
        reads.insert(key.to_owned(), seen.cloned());
    }
}

impl State {
    /// Remembers what the request saw of `key`, unless it is its own write.
    fn read(&mut self, key: &str) {
        note_read(&mut self.reads, &self.changes, key, self.data.get(key));
    }

    /// `key` is about to change: what a `data()` call saw of it becomes a recorded read
    /// (it saw only the keys that were there).
    fn before_write(&mut self, key: &str) {
        if self.read_all && self.data.contains_key(key) {
            self.read(key);
        }
    }

    /// The whole data is about to change: every read a `data()` call made is recorded now.
    fn settle_reads(&mut self) {
        if !std::mem::take(&mut self.read_all) {
            return;
        }
        let State {
            data,
            reads,
            changes,
            ..
        } = self;
        for (key, value) in data.iter() {
            note_read(reads, changes, key, Some(value));
        }
    }
}

impl Session {
    pub(crate) fn new(
        engine: Arc<Engine>,
        client: String,
        cookie: SessionCookie,
        client_sig: Option<Signature>,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                engine,
                cookie,
                client,
                client_sig,
                load_gate: async_lock::Mutex::new(()),
                state: Mutex::new(State {
                    loaded: false,
                    new_client: None,
                    client_held: false,
                    retire_own_client: false,
                    cookie_stale: false,
                    sid: None,
                    base: None,
                    data: Map::new(),
                    changes: Changes::default(),
                    destroy: Vec::new(),
                    moved_from: None,
                    max_age: None,
                    rewritten: false,
                    reads: BTreeMap::new(),
                    read_all: false,
                }),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Only plain field updates happen under this lock; a poisoned state is still whole.
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// H10 for this request's response status (the engine's policy).
    pub(crate) fn commits(&self, status: http::StatusCode) -> bool {
        self.shared.engine.commits(status)
    }

    /// Loads the session once (H2). Later calls return at once.
    async fn ensure_loaded(&self) -> Result<()> {
        if self.state().loaded {
            return Ok(());
        }
        // Boxed: every accessor's future embeds this one, and the load is once per request.
        Box::pin(self.load_once()).await
    }

    async fn load_once(&self) -> Result<()> {
        let _gate = self.shared.load_gate.lock().await;
        if self.state().loaded {
            return Ok(());
        }
        let engine = &self.shared.engine;
        let proof = engine
            .prove(&self.current_client(), &self.shared.cookie)
            .await?;
        if let Some(client) = proof.client {
            // C4: the one pair that belongs together is another client value of the request:
            // the request answers as that client (not a replacement to retire).
            self.state().new_client = Some(client);
        }
        let cid = self.current_client();
        let (cookie_sid, cookie_stale) = match proof.session {
            Some(read) => {
                let (sid, stale) = read.into_parts();
                (Some(sid), stale)
            }
            None => (None, false),
        };
        let loaded = engine.resolve(&cid, cookie_sid.as_deref()).await?;
        // H2: a client id that holds a live session this request did not prove (the client
        // cookie alone) never gets a new session: one created here goes to a fresh id.
        let client_held = loaded.is_none() && engine.holds_live_session(&cid).await?;
        let mut st = self.state();
        st.client_held = client_held;
        st.cookie_stale = cookie_stale;
        if let Some(loaded) = loaded {
            // The cookie's id was resolved, so it is `Some` here.
            st.sid = cookie_sid;
            let (record, data) = loaded.into_parts();
            st.data = data;
            st.base = Some(record);
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
        st.changes.record(key, value);
        self.assign_id_if_new(st);
    }

    fn assign_id_if_new(&self, st: &mut State) {
        if st.sid.is_none() && !st.data.is_empty() {
            st.sid = Some(self.shared.engine.new_id());
            // H2: the new session's client id, known to the handler from here on (H6).
            if st.client_held && st.new_client.is_none() {
                st.new_client = Some(self.shared.engine.new_id());
            }
        }
    }

    /// The client id of this browser (SPEC H1, H6).
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # futures::executor::block_on(async {
    /// # let bridge = session_bridge::testing::test_bridge();
    /// # let request = bridge.begin_request(&http::HeaderMap::new());
    /// # let session = request.session().clone();
    /// session.insert("user", "ada").await?;
    /// let (client_id, session_id) = (session.client_id(), session.session_id().await?);
    /// request.commit(&mut http::HeaderMap::new()).await?;
    /// assert_eq!(bridge.get_session_id(&client_id).await?, session_id);
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn client_id(&self) -> ClientId {
        ClientId::from(self.current_client().into_owned())
    }

    /// The session id (H6): `None` until the session exists or gets its first write. An
    /// existing session's id is resolved through the client mapping when read, so a session
    /// replaced meanwhile (by another request of the same browser) shows its new id.
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # futures::executor::block_on(async {
    /// # let bridge = session_bridge::testing::test_bridge();
    /// # let request = bridge.begin_request(&http::HeaderMap::new());
    /// # let session = request.session();
    /// assert_eq!(session.session_id().await?, None); // no session yet
    /// session.insert("user", "ada").await?;
    /// assert!(session.session_id().await?.is_some(), "known before the response is sent");
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// A store error while loading.
    pub async fn session_id(&self) -> Result<Option<SessionId>> {
        self.ensure_loaded().await?;
        let (sid, is_new) = {
            let st = self.state();
            (st.sid.clone(), st.base.is_none())
        };
        if is_new {
            return Ok(sid.map(SessionId::from));
        }
        let mapped = self
            .shared
            .engine
            .session_of(&self.current_client())
            .await?;
        Ok(mapped.or(sid).map(SessionId::from))
    }

    /// Whether this request started a new session (no record existed for it).
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # futures::executor::block_on(async {
    /// # let bridge = session_bridge::testing::test_bridge();
    /// # let mut browser = session_bridge::testing::Browser::new();
    /// # let client_id = browser.request(&bridge, async |s| s.insert("user", "ada").await.map(|()| s.client_id())).await??;
    /// # let cookie = browser.headers();
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
    /// # let bridge = session_bridge::testing::test_bridge();
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
    /// # let bridge = session_bridge::testing::test_bridge();
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
        self.with_data(|st| {
            st.read(key);
            st.data.get(key).cloned()
        })
        .await
    }

    /// Sets `key` to `value`. Writing the value already there is not a change.
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # futures::executor::block_on(async {
    /// # let bridge = session_bridge::testing::test_bridge();
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
    /// # let bridge = session_bridge::testing::test_bridge();
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
                st.before_write(key);
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
    /// # let bridge = session_bridge::testing::test_bridge();
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
    /// # let bridge = session_bridge::testing::test_bridge();
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
            st.read(key);
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
    /// # let bridge = session_bridge::testing::test_bridge();
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
                st.settle_reads();
                st.data = data;
                st.changes = Changes::replacement();
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
    /// # let bridge = session_bridge::testing::test_bridge();
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
    /// # let bridge = session_bridge::testing::test_bridge();
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
        self.with_data(|st| {
            // Every key counts as read (H12); the values are recorded when they are about
            // to change, not copied now.
            st.read_all = true;
            st.data.clone()
        })
        .await
    }

    /// Whether the session object has no keys.
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # futures::executor::block_on(async {
    /// # let bridge = session_bridge::testing::test_bridge();
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
    /// # let bridge = session_bridge::testing::test_bridge();
    /// # let mut browser = session_bridge::testing::Browser::new();
    /// # let client_id = browser.request(&bridge, async |s| s.insert("user", "ada").await.map(|()| s.client_id())).await??;
    /// # let cookie = browser.headers();
    /// // Logout of browser `client_id`: `cookie` carries the cookies it was sent.
    /// let logout = bridge.begin_request(&cookie);
    /// logout.session().destroy().await?;
    /// let mut headers = http::HeaderMap::new();
    /// logout.commit(&mut headers).await?;
    /// assert_eq!(bridge.get_session_id(&client_id).await?, None);
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
            st.settle_reads();
            st.data.clear();
            st.changes = Changes::default();
            // H8 option: the browser leaves with a new client id too.
            if self.shared.engine.rotates_client_on_destroy() {
                st.new_client = Some(self.shared.engine.new_id());
                st.retire_own_client = true;
            }
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
    /// # let bridge = session_bridge::testing::test_bridge();
    /// # let mut browser = session_bridge::testing::Browser::new();
    /// # let client_id = browser.request(&bridge, async |s| s.insert("user", "ada").await.map(|()| s.client_id())).await??;
    /// # let cookie = browser.headers();
    /// // Login of browser `client_id`: `cookie` carries the cookies of its pre-login session.
    /// let login = bridge.begin_request(&cookie);
    /// let before = login.session().session_id().await?;
    /// login.session().regenerate().await?;
    /// login.session().insert("user", "grace").await?;
    /// assert_ne!(login.session().session_id().await?, before);
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
            st.new_client = Some(engine.new_id());
            st.retire_own_client = true;
        })
        .await
    }

    /// H12: read-modify-write at once, under the session's lock, on the record as it is in
    /// the store now, like a socket's `with_session`: `f` changes the session object and its
    /// result is written before `update` returns, so N concurrent requests that each add 1
    /// give exactly +N. The way to update shared keys (counters, carts) over HTTP; a plain
    /// `get` then `insert` of a key another writer changed meanwhile is refused at commit
    /// ([`Error::ReadConflict`]). A new session (not stored yet) is updated in place and
    /// stored at commit. The request's other changes still go in at commit, and the response
    /// re-sends the session cookie when `f` changed the record (H11).
    ///
    /// `f` may run more than once: when a writer that does not take the lock (a process
    /// sharing the store without the nodes' exclusion) changed the record between the read
    /// and the compare-and-set, `f` runs again on the fresh record, so its values are never
    /// merged over ones it did not see (H12). The value returned is the last run's. Under
    /// the nodes' lease the write is refused instead ([`Error::LeaseLost`], M2).
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// # let bridge = session_bridge::testing::test_bridge();
    /// # let mut browser = session_bridge::testing::Browser::new();
    /// let visits = browser
    ///     .request(&bridge, async |s| {
    ///         s.update(|data| {
    ///             let n = data.get("visits").and_then(|v| v.as_u64()).unwrap_or(0) + 1;
    ///             data.insert("visits".into(), n.into());
    ///             n
    ///         })
    ///         .await
    ///     })
    ///     .await??;
    /// assert_eq!(visits, 1);
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// A store error, [`Error::SessionTooLarge`], [`Error::Conflict`] (the record kept
    /// changing under writers that do not take the lock), [`Error::LeaseLost`].
    pub async fn update<R>(&self, mut f: impl FnMut(&mut Map<String, Value>) -> R) -> Result<R> {
        self.ensure_loaded().await?;
        let engine = Arc::clone(&self.shared.engine);
        // The stored session, and its data as this request read it when it has not changed
        // it since (then an unchanged record need not be parsed again under the lock).
        let stored = {
            let st = self.state();
            match (&st.sid, &st.base, &st.moved_from) {
                (Some(sid), Some(base), None) => Some((
                    sid.clone(),
                    st.changes
                        .is_empty()
                        .then(|| (base.clone(), st.data.clone())),
                )),
                _ => None,
            }
        };
        if let Some((sid, seen)) = stored {
            let lock = engine.lock(&sid).await?;
            let mut fresh = match seen {
                Some((base, data)) => match engine.reload(&sid, &base).await? {
                    Some(Reloaded::Same(record)) => Some(Loaded::new(record, data)),
                    Some(Reloaded::Changed(fresh)) => Some(fresh),
                    None => None,
                },
                None => engine.load(&sid).await?,
            };
            // `f` runs on the record as stored; when another writer moved it before our
            // compare-and-set, `f` runs again on the fresh record (its values are never
            // merged onto a record it did not see, H12).
            let mut attempts = 0;
            while let Some(current) = fresh.take() {
                attempts += 1;
                if attempts > crate::engine::WRITE_ATTEMPTS {
                    return Err(Error::Conflict {
                        attempts: crate::engine::WRITE_ATTEMPTS,
                    });
                }
                let (record, before) = current.into_parts();
                let mut ours = before.clone();
                let value = f(&mut ours);
                let changes = Changes::diff(&before, &ours);
                if changes.is_empty() {
                    return Ok(value);
                }
                drop(before);
                let saved = match engine.save_edit(&sid, record, ours, &lock).await? {
                    Edit::Rerun { fresh: next, .. } => {
                        fresh = Some(next);
                        continue;
                    }
                    Edit::Done(saved) => saved,
                };
                let mut st = self.state();
                // The data is replaced by what is stored now: what `data()` saw is recorded.
                st.settle_reads();
                match saved {
                    Some(saved) => {
                        // H11: the write re-sends the session cookie at commit.
                        st.rewritten |= saved.written();
                        // The request's own pending changes stay on top of what is stored
                        // now; what `f` wrote counts as read at its new value (it is not a
                        // stale read).
                        let (record, mut data) = saved.into_loaded().into_parts();
                        let written: Vec<(String, Option<Value>)> = data
                            .keys()
                            .chain(st.reads.keys())
                            .filter(|key| changes.touches(key))
                            .map(|key| (key.clone(), data.get(key).cloned()))
                            .collect();
                        st.changes.apply(&st.data, &mut data);
                        st.reads.extend(written);
                        st.data = data;
                        st.base = Some(record);
                    }
                    None => Self::forget_stored(&mut st),
                }
                return Ok(value);
            }
            // Gone meanwhile (never resurrected): what `f` writes starts a new session.
            Self::forget_stored(&mut self.state());
        }
        // Not in the store (new, moving in a regenerate, or gone): change it in place.
        let mut st = self.state();
        st.settle_reads(); // `f` may change any key
        let before = st.data.clone();
        let value = f(&mut st.data);
        let changes = Changes::diff(&before, &st.data);
        st.changes.absorb(changes);
        self.assign_id_if_new(&mut st);
        Ok(value)
    }

    /// The client cookie's `Set-Cookie` for `cid`: the request's own value echoed when it
    /// verified with the newest key and is still this browser's id, else signed now.
    fn client_cookie(&self, cid: &str) -> String {
        let cfg = self.shared.engine.cookies();
        match &self.shared.client_sig {
            Some(sig) if cid == self.shared.client => cfg.client_set_cookie_echo(cid, sig),
            _ => cfg.client_set_cookie(cid),
        }
    }

    /// The client id this request answers with now: the one that replaced the request's
    /// (`regenerate`, a rotating `destroy`, H8), else the request's own.
    fn current_client(&self) -> Cow<'_, str> {
        match self.state().new_client.clone() {
            Some(new) => Cow::Owned(new),
            None => Cow::Borrowed(&self.shared.client),
        }
    }

    /// A session the engine created for this request: when it had to go to a fresh client id
    /// (H2), the browser gets that id (the request's own is not retired: another browser
    /// may hold it).
    fn adopt_created(&self, created: crate::engine::Created) -> Loaded {
        if let Some(fresh) = created.new_client {
            self.state().new_client = Some(fresh);
        }
        created.loaded
    }

    /// The client id `st` has retired (H8): the request's own, once `regenerate` or a
    /// rotating `destroy` replaced it.
    fn retired_client<'s>(&'s self, st: &State) -> Option<&'s str> {
        (st.retire_own_client && st.new_client.is_some()).then_some(self.shared.client.as_str())
    }

    /// The stored session this request was working on is gone: from here on it is a new one.
    fn forget_stored(st: &mut State) {
        st.settle_reads();
        st.sid = None;
        st.base = None;
        st.data = Map::new();
        st.changes = Changes::default();
    }

    /// Overrides this session's max-age (its record TTL and cookie max-age), from this
    /// response on.
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # futures::executor::block_on(async {
    /// # let bridge = session_bridge::testing::test_bridge();
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

    /// H4, H1, H8: stores what the request changed and appends the `Set-Cookie` headers.
    /// `send_client_cookie`: the client cookie is due (new, re-signed, or always rolled);
    /// `discard`: commit nothing of the session (H10), only the client cookie that was due.
    /// A session cookie that verified with an older key (C2) is re-signed when the request
    /// touched the session (an untouched request never verifies it).
    pub(crate) async fn commit(
        &self,
        headers: &mut HeaderMap,
        send_client_cookie: bool,
        discard: bool,
    ) -> Result<()> {
        // Observability: one span per commit, with the session's keyed tag (never its id),
        // what happened, how long the commit waited for the session's lock and took in all.
        let span = tracing::debug_span!(
            "session_bridge.commit",
            session = tracing::field::Empty,
            outcome = tracing::field::Empty,
            lock_wait_us = tracing::field::Empty,
            elapsed_us = tracing::field::Empty,
        );
        let timer = crate::clock::SpanTimer::start(&span);
        let result = self
            .commit_inner(&span, headers, send_client_cookie, discard)
            .instrument(span.clone())
            .await;
        let outcome = match &result {
            Ok(outcome) => *outcome,
            Err(Error::ReadConflict | Error::Conflict { .. }) => "conflict",
            Err(_) => "error",
        };
        span.record("outcome", outcome);
        timer.record(&span, "elapsed_us");
        result.map(drop)
    }

    async fn commit_inner(
        &self,
        span: &tracing::Span,
        headers: &mut HeaderMap,
        send_client_cookie: bool,
        discard: bool,
    ) -> Result<&'static str> {
        let engine = &self.shared.engine;
        if discard {
            // The browser keeps the client id it came with (a `regenerate` or a rotating
            // destroy is discarded with the rest).
            let cid = self.shared.client.as_str();
            if send_client_cookie && !engine.is_retired_client(cid).await? {
                append_set_cookie(headers, self.client_cookie(cid));
            }
            return Ok("discarded");
        }
        let (loaded, max_age) = {
            let st = self.state();
            (st.loaded, st.max_age)
        };
        if !loaded {
            if max_age.is_none() {
                self.send_client_cookie(headers, send_client_cookie).await?;
                return Ok("untouched"); // H3: never touched
            }
            // H5: a max age takes effect whether or not the request read the session.
            self.ensure_loaded().await?;
        }
        // The common read-only request: a stored session, nothing changed, nothing due. Answer
        // it without copying the request's state (H3, H4 "unchanged -> no store write").
        let unchanged = {
            let st = self.state();
            if let (Some(sid), Some(base), None, true, true, false, false) = (
                &st.sid,
                &st.base,
                &st.moved_from,
                st.destroy.is_empty(),
                st.changes.is_empty(),
                st.cookie_stale,
                st.rewritten,
            ) && !engine.refresh_due(base)
                && st.max_age.is_none_or(|ms| ms == base.ttl)
            {
                if !span.is_disabled() {
                    span.record("session", tracing::field::display(engine.session_tag(sid)));
                }
                true
            } else {
                false
            }
        };
        if unchanged {
            self.send_client_cookie(headers, send_client_cookie).await?;
            return Ok("unchanged");
        }
        // The rest is the write path: boxed, so the futures of every request (which embed
        // this one and are moved by the framework) stay small.
        let cid = self.current_client().into_owned();
        let mut session_cookies = HeaderMap::new();
        let outcome = Box::pin(self.commit_stored(span, &mut session_cookies, &cid)).await?;
        // The client cookie is decided after the store (a session created here may have
        // given the browser a new client id, H2) and sent first, as on every other path.
        self.send_client_cookie(headers, send_client_cookie).await?;
        for value in session_cookies.get_all(http::header::SET_COOKIE) {
            headers.append(http::header::SET_COOKIE, value.clone());
        }
        Ok(outcome)
    }

    /// H1, H8: (re)sends the client cookie when it is due or the client id was replaced, but
    /// never one that a `regenerate` retired: a request sent before the login response
    /// arrived would roll the browser back.
    async fn send_client_cookie(&self, headers: &mut HeaderMap, due: bool) -> Result<()> {
        let cid = self.current_client();
        let replaced = cid != self.shared.client.as_str();
        if (due || replaced) && !self.shared.engine.is_retired_client(&cid).await? {
            append_set_cookie(headers, self.client_cookie(&cid));
        }
        Ok(())
    }

    /// The write half of [`commit_inner`](Self::commit_inner): destroy, regenerate, create,
    /// update (H4, H5, H8, H11, H12), each under the session's lock.
    async fn commit_stored(
        &self,
        span: &tracing::Span,
        headers: &mut HeaderMap,
        cid: &str,
    ) -> Result<&'static str> {
        let engine = &self.shared.engine;
        let cfg = engine.cookies();
        let st = self.state().clone();
        let session_cookie_stale = st.cookie_stale;

        // Owners now, before a new session is mapped to this client and hides them (H7).
        let mut owners: Vec<(String, Option<String>)> = Vec::new();
        for sid in st.destroy.iter().chain(st.moved_from.iter()) {
            owners.push((sid.clone(), engine.client_of(sid).await?));
        }
        let owner_of = |sid: &str| {
            owners
                .iter()
                .find(|(s, _)| s == sid)
                .and_then(|(_, o)| o.clone())
        };
        // Sessions this request ended with `destroy`.
        let destroy_ended = async || -> Result<bool> {
            for sid in &st.destroy {
                let lock = engine.lock_timed(sid, span).await?;
                lock.check()?;
                engine
                    .destroy_owned(sid, owner_of(sid), EndReason::Destroyed)
                    .await?;
            }
            Ok(!st.destroy.is_empty())
        };

        if let Some(sid) = st.moved_from.as_deref().or(st.sid.as_deref()) {
            // The keyed tag costs a MAC: only for a span someone listens to.
            if !span.is_disabled() {
                span.record("session", tracing::field::display(engine.session_tag(sid)));
            }
        }
        // The sessions this request proved with its session cookie: a session created here
        // may replace those in the client's mapping, and no other (H2).
        let proven: Vec<&str> = st
            .destroy
            .iter()
            .chain(st.moved_from.iter())
            .map(String::as_str)
            .collect();
        let mut outcome = "unchanged";
        match (&st.sid, &st.base) {
            // `regenerate`: the stored session, re-read under its lock with this request's
            // changes applied, moves to the new id; the old record goes only after the new
            // one is written, so a refused write loses nothing (H5, H8).
            (new_sid, None) if st.moved_from.is_some() => {
                let from = st.moved_from.as_deref().unwrap_or_default();
                let lock = engine.lock_timed(from, span).await?;
                let Some(fresh) = engine.load(from).await? else {
                    // Destroyed meanwhile (logout, ban, expiry): nothing to move, and never
                    // resurrect it.
                    destroy_ended().await?;
                    return Ok("gone");
                };
                let (fresh_record, mut data) = fresh.into_parts();
                if !engine.last_writer_wins() && st.changes.conflicts(&st.reads, &data) {
                    return Err(Error::ReadConflict); // H12, as for a plain write
                }
                st.changes.apply(&st.data, &mut data);
                let ttl = st.max_age.unwrap_or(fresh_record.ttl);
                let created = if data.is_empty() {
                    None
                } else {
                    // Sockets may have filled a session this request had emptied: it still moves.
                    let sid = new_sid.clone().unwrap_or_else(|| engine.new_id());
                    // It keeps its creation time: a regenerate never extends the absolute
                    // timeout (H9). `None`: that time ran out, nothing to move to.
                    let created = engine
                        .create(
                            cid,
                            &proven,
                            &sid,
                            &data,
                            Some(ttl),
                            Some(fresh_record.created_at),
                        )
                        .await?;
                    created.map(|created| (sid, self.adopt_created(created)))
                };
                lock.check()?;
                engine
                    .destroy_owned(from, owner_of(from), EndReason::Regenerated)
                    .await?;
                destroy_ended().await?;
                if let Some(old) = self.retired_client(&st) {
                    engine.retire_client(old).await?;
                }
                let cookie = match created {
                    Some((sid, created)) => {
                        cfg.session_set_cookie(&sid, cookie_max_age(created.record(), engine.now()))
                    }
                    None => cfg.clear_session_cookie(),
                };
                append_set_cookie(headers, cookie);
                outcome = "regenerated";
            }
            // New session: stored only when non-empty (H4).
            (Some(sid), None) if !st.data.is_empty() => {
                let created = engine
                    .create(cid, &proven, sid, &st.data, st.max_age, None)
                    .await?
                    .map(|created| self.adopt_created(created));
                destroy_ended().await?;
                if let Some(old) = self.retired_client(&st) {
                    engine.retire_client(old).await?;
                }
                if let Some(created) = created {
                    let max_age = cookie_max_age(created.record(), engine.now());
                    append_set_cookie(headers, cfg.session_set_cookie(sid, max_age));
                    outcome = "created";
                }
            }
            (Some(sid), Some(base)) => {
                // A session cookie signed with an older key is re-signed, and its record
                // written once so its owner tag moves to the newest key too (ST2, C2).
                let refresh = engine.refresh_due(base) || session_cookie_stale;
                let ttl_changed = st.max_age.is_some_and(|ms| ms != base.ttl);
                if st.changes.is_empty() && !refresh && !ttl_changed {
                    // H11: an `update` of this request wrote the record; C2: a re-signed
                    // cookie.
                    if session_cookie_stale || st.rewritten {
                        let max_age = cookie_max_age(base, engine.now());
                        append_set_cookie(headers, cfg.session_set_cookie(sid, max_age));
                    }
                    return Ok("unchanged");
                }
                let lock = engine.lock_timed(sid, span).await?;
                // Re-read under the lock and apply only what this request changed. A session
                // destroyed meanwhile (by a socket, cleanup, another request, a regenerate) is
                // never resurrected, and its cookie is left alone: a dead id is harmless
                // (H2 d), while clearing it could erase the cookie a concurrent login just set.
                let Some(fresh) = engine.load(sid).await? else {
                    return Ok("gone");
                };
                // `st` is this commit's own copy: its parts move into the closure.
                let (changes, ours, reads) = (st.changes, st.data, st.reads);
                let check = !engine.last_writer_wins();
                let apply = move |fresh: &mut Map<String, Value>| {
                    // H12: a key read and written here that someone changed meanwhile: refuse
                    // the whole request rather than lose their write silently.
                    if check && changes.conflicts(&reads, fresh) {
                        return Err(Error::ReadConflict);
                    }
                    changes.apply(&ours, fresh);
                    Ok(())
                };
                let saved = engine
                    .update_existing(sid, fresh, st.max_age, refresh, &lock, &apply)
                    .await?;
                // H11: every write re-sends the cookie with the record's TTL, so the browser's
                // cookie never expires before the record; a re-signed cookie goes out too.
                if saved.as_ref().is_some_and(|saved| saved.written()) {
                    outcome = "updated";
                }
                if let Some(saved) = saved
                    && (saved.written() || session_cookie_stale)
                {
                    let max_age = cookie_max_age(saved.loaded().record(), engine.now());
                    append_set_cookie(headers, cfg.session_set_cookie(sid, max_age));
                }
            }
            // Destroyed and not replaced by a new non-empty session: clear the cookie.
            _ => {
                if destroy_ended().await? {
                    append_set_cookie(headers, cfg.clear_session_cookie());
                    outcome = "destroyed";
                }
                if let Some(old) = self.retired_client(&st) {
                    engine.retire_client(old).await?;
                }
            }
        }
        Ok(outcome)
    }
}

/// The session cookie's `Max-Age`: what is left of the record's life, so the cookie never
/// outlives it (an absolute timeout can end a record before its TTL, H9).
fn cookie_max_age(record: &Record, now: u64) -> u64 {
    // Rounded up to the second the cookie counts in: the cookie may outlive the record by
    // less than a second, never the other way round (H11).
    let left = record.expires_at.saturating_sub(now).saturating_add(999);
    record.ttl.min(left)
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
    #[test]
    fn handles_are_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<super::Session>();
        assert_send_sync::<crate::RequestContext>();
        assert_send_sync::<crate::SocketSession>();
        assert_send_sync::<crate::SessionBridge>();
    }
}

//! The store contract (SPEC ST1) and the built-in stores.
//!
//! A store keeps [`Record`]s by session id and knows nothing else: expiry rules, change detection,
//! events and the client mapping live above it, in the gateway and the bridge. Write an async
//! store by implementing [`Store`], or a synchronous one by implementing [`SyncStore`] (a blanket
//! impl makes every `SyncStore` a `Store`). Either way, run `testing::conformance` on it
//! (feature `testing`).
//!
//! ```
//! use session_bridge::SessionBridge;
//! use session_bridge::store::LiveStore;
//! use std::sync::Arc;
//! # futures::executor::block_on(async {
//! // Plug a store in, keeping a handle on it for observability.
//! let store = Arc::new(LiveStore::new());
//! let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]])
//!     .store(Arc::clone(&store))
//!     .build()?;
//! # let request = bridge.begin_request(&http::HeaderMap::new());
//! # request.session().insert("user", "ada").await?;
//! # request.commit(&mut http::HeaderMap::new()).await?;
//! assert_eq!(store.len(), 1); // one browser has a session
//! # Ok::<_, session_bridge::Error>(())
//! # }).unwrap();
//! ```

#[cfg(feature = "file")]
#[cfg_attr(docsrs, doc(cfg(feature = "file")))]
pub mod file;
mod live;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis;

#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use self::redis::{RedisOptions, RedisStore};
#[cfg(feature = "file")]
#[cfg_attr(docsrs, doc(cfg(feature = "file")))]
pub use file::{FileStore, FileStoreBuilder};
pub use live::LiveStore;

use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;

use crate::error::{Error, Result};
use crate::record::Record;

/// An async session store (SPEC ST1).
///
/// Only `get`, `set` and `destroy` are required. The defaults of `create` and `update` are
/// built on `get` + `set` and are therefore not atomic: a store shared by several processes
/// should override them with an atomic primitive (Redis `SET NX` / a Lua compare-and-set,
/// `O_EXCL` files, a SQL `WHERE version = ?`), which is what keeps two nodes from overwriting each
/// other (ST5).
///
/// ```
/// use session_bridge::{Error, Record, Store};
/// use std::collections::HashMap;
/// use std::sync::Mutex;
///
/// #[derive(Default)]
/// struct MapStore(Mutex<HashMap<String, Record>>);
///
/// impl Store for MapStore {
///     async fn get(&self, sid: &str) -> Result<Option<Record>, Error> {
///         Ok(self.0.lock().map_err(|_| Error::store("get", "poisoned"))?.get(sid).cloned())
///     }
///     async fn set(&self, sid: &str, record: Record) -> Result<bool, Error> {
///         self.0.lock().map_err(|_| Error::store("set", "poisoned"))?.insert(sid.into(), record);
///         Ok(true)
///     }
///     async fn destroy(&self, sid: &str) -> Result<bool, Error> {
///         Ok(self.0.lock().map_err(|_| Error::store("destroy", "poisoned"))?.remove(sid).is_some())
///     }
/// }
/// ```
pub trait Store: Send + Sync + 'static {
    /// The record stored under `sid`, expired or not (the gateway checks expiry).
    ///
    /// ```
    /// use session_bridge::{LiveStore, Record, Store};
    /// # futures::executor::block_on(async {
    /// let store = LiveStore::new();
    /// let record = Record::new(r#"{"user":"ada"}"#, u64::MAX, 3_600_000);
    /// assert_eq!(Store::get(&store, "sid").await?, None);
    /// Store::set(&store, "sid", record.clone()).await?;
    /// assert_eq!(Store::get(&store, "sid").await?, Some(record));
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// A backend failure, as [`Error::Store`].
    fn get(&self, sid: &str) -> impl Future<Output = Result<Option<Record>>> + Send;

    /// Writes `record` under `sid`, replacing any previous one. Returns whether it was written.
    ///
    /// ```
    /// use session_bridge::{LiveStore, Record, Store};
    /// # futures::executor::block_on(async {
    /// let store = LiveStore::new();
    /// let record = Record::new(r#"{"user":"ada"}"#, u64::MAX, 3_600_000);
    /// assert!(Store::set(&store, "sid", record.clone()).await?);
    /// assert!(Store::set(&store, "sid", record).await?, "replaces");
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// A backend failure, as [`Error::Store`].
    fn set(&self, sid: &str, record: Record) -> impl Future<Output = Result<bool>> + Send;

    /// Removes `sid`. Returns whether a record was there.
    ///
    /// ```
    /// use session_bridge::{LiveStore, Record, Store};
    /// # futures::executor::block_on(async {
    /// let store = LiveStore::new();
    /// let record = Record::new(r#"{"user":"ada"}"#, u64::MAX, 3_600_000);
    /// Store::set(&store, "sid", record).await?;
    /// assert!(Store::destroy(&store, "sid").await?);
    /// assert!(!Store::destroy(&store, "sid").await?, "already gone");
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// A backend failure, as [`Error::Store`].
    fn destroy(&self, sid: &str) -> impl Future<Output = Result<bool>> + Send;

    /// Writes `record` only if nothing is stored under `sid`; `Ok(false)` when something is.
    ///
    /// ```
    /// use session_bridge::{LiveStore, Record, Store};
    /// # futures::executor::block_on(async {
    /// let store = LiveStore::new();
    /// let record = Record::new(r#"{"user":"ada"}"#, u64::MAX, 3_600_000);
    /// assert!(Store::create(&store, "sid", record.clone()).await?);
    /// assert!(!Store::create(&store, "sid", record).await?, "never overwrites");
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// A backend failure, as [`Error::Store`].
    fn create(&self, sid: &str, record: Record) -> impl Future<Output = Result<bool>> + Send {
        async move {
            if self.get(sid).await?.is_some() {
                return Ok(false);
            }
            self.set(sid, record).await
        }
    }

    /// Writes `record` only if a record is stored under `sid` with version `expected_version`;
    /// `Ok(false)` when it is missing (never resurrect a deleted one) or another writer moved it.
    ///
    /// ```
    /// use session_bridge::{LiveStore, Record, Store};
    /// # futures::executor::block_on(async {
    /// let store = LiveStore::new();
    /// let record = Record::new(r#"{"user":"ada"}"#, u64::MAX, 3_600_000);
    /// Store::create(&store, "sid", record.clone()).await?;
    /// let mut next = record.clone();
    /// next.version = 1;
    /// assert!(Store::update(&store, "sid", next.clone(), 0).await?);
    /// assert!(!Store::update(&store, "sid", next.clone(), 0).await?, "stale version");
    /// assert!(!Store::update(&store, "gone", next, 0).await?, "never resurrects");
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// A backend failure, as [`Error::Store`].
    fn update(
        &self,
        sid: &str,
        record: Record,
        expected_version: u64,
    ) -> impl Future<Output = Result<bool>> + Send {
        async move {
            match self.get(sid).await? {
                Some(current) if current.version == expected_version => self.set(sid, record).await,
                _ => Ok(false),
            }
        }
    }

    /// Every stored session id (needed by cleanup). Defaults to [`Error::Unsupported`].
    ///
    /// ```
    /// use session_bridge::{LiveStore, Record, Store};
    /// # futures::executor::block_on(async {
    /// let store = LiveStore::new();
    /// let record = Record::new(r#"{"user":"ada"}"#, u64::MAX, 3_600_000);
    /// Store::set(&store, "sid", record).await?;
    /// assert_eq!(Store::list(&store).await?, vec!["sid".to_owned()]);
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// A backend failure, as [`Error::Store`], or [`Error::Unsupported`] from the default.
    fn list(&self) -> impl Future<Output = Result<Vec<String>>> + Send {
        async { Err(Error::Unsupported("list")) }
    }

    /// Called after a cleanup removed `cleared` records, e.g. to compact a file.
    ///
    /// ```
    /// use session_bridge::{LiveStore, Record, Store};
    /// # futures::executor::block_on(async {
    /// let store = LiveStore::new();
    /// # let record = Record::new(r#"{"user":"ada"}"#, u64::MAX, 3_600_000);
    /// # Store::set(&store, "sid", record).await?;
    /// // The bridge calls it after a cleanup pass; `LiveStore` gives memory back.
    /// Store::optimize(&store, 1_000).await?;
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// A backend failure, as [`Error::Store`].
    fn optimize(&self, cleared: usize) -> impl Future<Output = Result<()>> + Send {
        let _ = cleared;
        async { Ok(()) }
    }
}

/// A synchronous store; every `SyncStore` is a [`Store`] through a blanket impl (SPEC ST1).
///
/// Its methods run inline on the async task that calls them, so keep them fast (an in-memory
/// map, a local file): a blocking network call here stalls the executor. With both traits in
/// scope, `store.get(..)` is ambiguous: import only the one you call, or write
/// `SyncStore::get(&store, ..)`.
///
/// ```
/// use session_bridge::{Error, Record, SyncStore};
/// use std::collections::HashMap;
/// use std::sync::Mutex;
///
/// #[derive(Default)]
/// struct MapStore(Mutex<HashMap<String, Record>>);
///
/// impl MapStore {
///     fn map(&self) -> Result<std::sync::MutexGuard<'_, HashMap<String, Record>>, Error> {
///         self.0.lock().map_err(|_| Error::store("lock", "poisoned"))
///     }
/// }
///
/// impl SyncStore for MapStore {
///     fn get(&self, sid: &str) -> Result<Option<Record>, Error> { Ok(self.map()?.get(sid).cloned()) }
///     fn set(&self, sid: &str, r: Record) -> Result<bool, Error> { self.map()?.insert(sid.into(), r); Ok(true) }
///     fn destroy(&self, sid: &str) -> Result<bool, Error> { Ok(self.map()?.remove(sid).is_some()) }
/// }
/// ```
pub trait SyncStore: Send + Sync + 'static {
    /// See [`Store::get`].
    ///
    /// ```
    /// use session_bridge::{LiveStore, Record, SyncStore};
    /// let store = LiveStore::new();
    /// let record = Record::new(r#"{"user":"ada"}"#, u64::MAX, 3_600_000);
    /// store.set("sid", record.clone())?;
    /// assert_eq!(store.get("sid")?, Some(record));
    /// # Ok::<(), session_bridge::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Store::get`].
    fn get(&self, sid: &str) -> Result<Option<Record>>;
    /// See [`Store::set`].
    ///
    /// ```
    /// use session_bridge::{LiveStore, Record, SyncStore};
    /// let store = LiveStore::new();
    /// let record = Record::new(r#"{"user":"ada"}"#, u64::MAX, 3_600_000);
    /// assert!(store.set("sid", record)?);
    /// assert_eq!(store.len(), 1);
    /// # Ok::<(), session_bridge::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Store::set`].
    fn set(&self, sid: &str, record: Record) -> Result<bool>;
    /// See [`Store::destroy`].
    ///
    /// ```
    /// use session_bridge::{LiveStore, Record, SyncStore};
    /// let store = LiveStore::new();
    /// let record = Record::new(r#"{"user":"ada"}"#, u64::MAX, 3_600_000);
    /// store.set("sid", record)?;
    /// assert!(store.destroy("sid")?);
    /// assert!(store.get("sid")?.is_none());
    /// # Ok::<(), session_bridge::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Store::destroy`].
    fn destroy(&self, sid: &str) -> Result<bool>;
    /// See [`Store::create`]; the default is `get` then `set`.
    ///
    /// ```
    /// use session_bridge::{LiveStore, Record, SyncStore};
    /// let store = LiveStore::new();
    /// let record = Record::new(r#"{"user":"ada"}"#, u64::MAX, 3_600_000);
    /// assert!(store.create("sid", record.clone())?);
    /// assert!(!store.create("sid", record)?, "never overwrites");
    /// # Ok::<(), session_bridge::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Store::create`].
    fn create(&self, sid: &str, record: Record) -> Result<bool> {
        if SyncStore::get(self, sid)?.is_some() {
            return Ok(false);
        }
        SyncStore::set(self, sid, record)
    }
    /// See [`Store::update`]; the default is `get`, compare, `set`.
    ///
    /// ```
    /// use session_bridge::{LiveStore, Record, SyncStore};
    /// let store = LiveStore::new();
    /// let record = Record::new(r#"{"user":"ada"}"#, u64::MAX, 3_600_000);
    /// store.create("sid", record.clone())?;
    /// let next = Record { version: 1, ..record };
    /// assert!(store.update("sid", next.clone(), 0)?);
    /// assert!(!store.update("sid", next, 0)?, "stale version");
    /// # Ok::<(), session_bridge::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Store::update`].
    fn update(&self, sid: &str, record: Record, expected_version: u64) -> Result<bool> {
        match SyncStore::get(self, sid)? {
            Some(current) if current.version == expected_version => {
                SyncStore::set(self, sid, record)
            }
            _ => Ok(false),
        }
    }
    /// See [`Store::list`].
    ///
    /// ```
    /// use session_bridge::{LiveStore, Record, SyncStore};
    /// let store = LiveStore::new();
    /// let record = Record::new(r#"{"user":"ada"}"#, u64::MAX, 3_600_000);
    /// store.set("sid", record)?;
    /// assert_eq!(store.list()?, vec!["sid".to_owned()]);
    /// # Ok::<(), session_bridge::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Store::list`].
    fn list(&self) -> Result<Vec<String>> {
        Err(Error::Unsupported("list"))
    }
    /// See [`Store::optimize`].
    ///
    /// ```
    /// use session_bridge::{LiveStore, Record, SyncStore};
    /// let store = LiveStore::new();
    /// # let record = Record::new(r#"{"user":"ada"}"#, u64::MAX, 3_600_000);
    /// # store.set("sid", record)?;
    /// store.optimize(1_000)?; // after a cleanup pass
    /// # Ok::<(), session_bridge::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Store::optimize`].
    fn optimize(&self, cleared: usize) -> Result<()> {
        let _ = cleared;
        Ok(())
    }
}

impl<T: SyncStore> Store for T {
    fn get(&self, sid: &str) -> impl Future<Output = Result<Option<Record>>> + Send {
        std::future::ready(SyncStore::get(self, sid))
    }
    fn set(&self, sid: &str, record: Record) -> impl Future<Output = Result<bool>> + Send {
        std::future::ready(SyncStore::set(self, sid, record))
    }
    fn destroy(&self, sid: &str) -> impl Future<Output = Result<bool>> + Send {
        std::future::ready(SyncStore::destroy(self, sid))
    }
    fn create(&self, sid: &str, record: Record) -> impl Future<Output = Result<bool>> + Send {
        std::future::ready(SyncStore::create(self, sid, record))
    }
    fn update(
        &self,
        sid: &str,
        record: Record,
        expected_version: u64,
    ) -> impl Future<Output = Result<bool>> + Send {
        std::future::ready(SyncStore::update(self, sid, record, expected_version))
    }
    fn list(&self) -> impl Future<Output = Result<Vec<String>>> + Send {
        std::future::ready(SyncStore::list(self))
    }
    fn optimize(&self, cleared: usize) -> impl Future<Output = Result<()>> + Send {
        std::future::ready(SyncStore::optimize(self, cleared))
    }
}

/// Lets an app keep a handle on the store it gave the bridge.
impl<S: Store> Store for Arc<S> {
    fn get(&self, sid: &str) -> impl Future<Output = Result<Option<Record>>> + Send {
        S::get(self, sid)
    }
    fn set(&self, sid: &str, record: Record) -> impl Future<Output = Result<bool>> + Send {
        S::set(self, sid, record)
    }
    fn destroy(&self, sid: &str) -> impl Future<Output = Result<bool>> + Send {
        S::destroy(self, sid)
    }
    fn create(&self, sid: &str, record: Record) -> impl Future<Output = Result<bool>> + Send {
        S::create(self, sid, record)
    }
    fn update(
        &self,
        sid: &str,
        record: Record,
        expected_version: u64,
    ) -> impl Future<Output = Result<bool>> + Send {
        S::update(self, sid, record, expected_version)
    }
    fn list(&self) -> impl Future<Output = Result<Vec<String>>> + Send {
        S::list(self)
    }
    fn optimize(&self, cleared: usize) -> impl Future<Output = Result<()>> + Send {
        S::optimize(self, cleared)
    }
}

/// Object-safe mirror of [`Store`]: the bridge keeps its store behind this, so that
/// `SessionBridge`, `Session` and the framework glue are one concrete type each, whatever
/// store an app plugs in. The cost is one boxed future per store call.
pub(crate) trait DynStore: Send + Sync + 'static {
    fn get<'a>(&'a self, sid: &'a str) -> BoxFuture<'a, Result<Option<Record>>>;
    fn create<'a>(&'a self, sid: &'a str, record: Record) -> BoxFuture<'a, Result<bool>>;
    fn update<'a>(
        &'a self,
        sid: &'a str,
        record: Record,
        expected: u64,
    ) -> BoxFuture<'a, Result<bool>>;
    fn destroy<'a>(&'a self, sid: &'a str) -> BoxFuture<'a, Result<bool>>;
    fn list(&self) -> BoxFuture<'_, Result<Vec<String>>>;
    fn optimize(&self, cleared: usize) -> BoxFuture<'_, Result<()>>;
    /// The store as `Any`, so the gateway can call the built-in [`LiveStore`] directly.
    fn into_any(self: Arc<Self>) -> Arc<dyn std::any::Any + Send + Sync>;
}

impl<S: Store> DynStore for S {
    fn get<'a>(&'a self, sid: &'a str) -> BoxFuture<'a, Result<Option<Record>>> {
        Box::pin(Store::get(self, sid))
    }
    fn create<'a>(&'a self, sid: &'a str, record: Record) -> BoxFuture<'a, Result<bool>> {
        Box::pin(Store::create(self, sid, record))
    }
    fn update<'a>(
        &'a self,
        sid: &'a str,
        record: Record,
        expected: u64,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(Store::update(self, sid, record, expected))
    }
    fn destroy<'a>(&'a self, sid: &'a str) -> BoxFuture<'a, Result<bool>> {
        Box::pin(Store::destroy(self, sid))
    }
    fn list(&self) -> BoxFuture<'_, Result<Vec<String>>> {
        Box::pin(Store::list(self))
    }
    fn optimize(&self, cleared: usize) -> BoxFuture<'_, Result<()>> {
        Box::pin(Store::optimize(self, cleared))
    }
    fn into_any(self: Arc<Self>) -> Arc<dyn std::any::Any + Send + Sync> {
        self
    }
}

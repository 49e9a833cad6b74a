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

/// An async session store (SPEC ST1, ST5).
///
/// Four operations, each atomic on its own: `get`; `create`, which never overwrites an
/// existing id (Redis `SET NX`, a file opened with `create_new`, SQL `INSERT`); `update`, a
/// compare-and-set on the record's version that never resurrects a deleted id (a Lua script,
/// `UPDATE .. WHERE version = ?`, a lock held across read-compare-write); and `destroy`,
/// conditional on the version too, so a destroy decided on an old read never removes a newer
/// record. There is no unconditional write and no get-then-write default: a store shared by
/// several processes must make each of these atomic itself, which is what keeps two nodes from
/// overwriting each other. `list` (for cleanup) and `optimize` are optional. Run
/// [`testing::conformance`](crate::testing::conformance) on your store.
///
/// ```
/// use session_bridge::{Error, Record, Store};
/// use std::collections::HashMap;
/// use std::sync::{Mutex, MutexGuard};
///
/// #[derive(Default)]
/// struct MapStore(Mutex<HashMap<String, Record>>);
///
/// impl MapStore {
///     fn map(&self) -> Result<MutexGuard<'_, HashMap<String, Record>>, Error> {
///         self.0.lock().map_err(|_| Error::store("lock", "poisoned"))
///     }
/// }
///
/// // Each operation holds the lock across its read, compare and write.
/// impl Store for MapStore {
///     async fn get(&self, sid: &str) -> Result<Option<Record>, Error> {
///         Ok(self.map()?.get(sid).cloned())
///     }
///     async fn create(&self, sid: &str, record: Record) -> Result<bool, Error> {
///         let mut map = self.map()?;
///         if map.contains_key(sid) {
///             return Ok(false);
///         }
///         map.insert(sid.into(), record);
///         Ok(true)
///     }
///     async fn update(&self, sid: &str, record: Record, expected: u64) -> Result<bool, Error> {
///         let mut map = self.map()?;
///         match map.get_mut(sid) {
///             Some(current) if current.version == expected => *current = record,
///             _ => return Ok(false),
///         }
///         Ok(true)
///     }
///     async fn destroy(&self, sid: &str, expected: u64) -> Result<bool, Error> {
///         let mut map = self.map()?;
///         if map.get(sid).is_some_and(|r| r.version == expected) {
///             map.remove(sid);
///             return Ok(true);
///         }
///         Ok(false)
///     }
/// }
/// # futures::executor::block_on(async {
/// # let report = session_bridge::testing::conformance(&MapStore::default()).await.unwrap();
/// # assert!(report.checks > 0);
/// # });
/// ```
pub trait Store: Send + Sync + 'static {
    /// The record stored under `sid`, expired or not (the gateway checks expiry). A value
    /// that is not a record of a format this version knows: `None` for a newer format (left
    /// in place, see [`Record::newer_format`]); a corrupt one may be returned as a record
    /// whose session text is not JSON, which the gateway drops.
    ///
    /// ```
    /// use session_bridge::{LiveStore, Record, Store};
    /// # futures::executor::block_on(async {
    /// let store = LiveStore::new();
    /// let record = Record::new(r#"{"user":"ada"}"#, u64::MAX, 3_600_000);
    /// assert_eq!(Store::get(&store, "sid").await?, None);
    /// Store::create(&store, "sid", record.clone()).await?;
    /// assert_eq!(Store::get(&store, "sid").await?, Some(record));
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// A backend failure, as [`Error::Store`].
    fn get(&self, sid: &str) -> impl Future<Output = Result<Option<Record>>> + Send;

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
    fn create(&self, sid: &str, record: Record) -> impl Future<Output = Result<bool>> + Send;

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
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Removes the record stored under `sid` only if its version is `expected_version`
    /// (a value that is not a record at all may be removed whatever the version). Returns
    /// whether it removed one: `Ok(false)` when nothing is there or another writer moved it
    /// (then the caller reads again, and decides again).
    ///
    /// ```
    /// use session_bridge::{LiveStore, Record, Store};
    /// # futures::executor::block_on(async {
    /// let store = LiveStore::new();
    /// let record = Record::new(r#"{"user":"ada"}"#, u64::MAX, 3_600_000);
    /// Store::create(&store, "sid", record).await?;
    /// assert!(!Store::destroy(&store, "sid", 7).await?, "another version: kept");
    /// assert!(Store::destroy(&store, "sid", 0).await?);
    /// assert!(!Store::destroy(&store, "sid", 0).await?, "already gone");
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// A backend failure, as [`Error::Store`].
    fn destroy(
        &self,
        sid: &str,
        expected_version: u64,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Every stored session id (needed by cleanup). Defaults to [`Error::Unsupported`].
    ///
    /// ```
    /// use session_bridge::{LiveStore, Record, Store};
    /// # futures::executor::block_on(async {
    /// let store = LiveStore::new();
    /// let record = Record::new(r#"{"user":"ada"}"#, u64::MAX, 3_600_000);
    /// Store::create(&store, "sid", record).await?;
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
    /// use session_bridge::{LiveStore, Store};
    /// # futures::executor::block_on(async {
    /// let store = LiveStore::new();
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
/// The same four atomic operations as [`Store`], each holding whatever lock the store has
/// across its read, compare and write.
///
/// Its methods run inline on the async task that calls them, so keep them fast (an in-memory
/// map, a local file): a blocking network call here stalls the executor. With both traits in
/// scope, `store.get(..)` is ambiguous: import only the one you call, or write
/// `SyncStore::get(&store, ..)`.
///
/// ```
/// use session_bridge::{Error, Record, SyncStore};
/// use std::collections::HashMap;
/// use std::sync::{Mutex, MutexGuard};
///
/// #[derive(Default)]
/// struct MapStore(Mutex<HashMap<String, Record>>);
///
/// impl MapStore {
///     fn map(&self) -> Result<MutexGuard<'_, HashMap<String, Record>>, Error> {
///         self.0.lock().map_err(|_| Error::store("lock", "poisoned"))
///     }
/// }
///
/// impl SyncStore for MapStore {
///     fn get(&self, sid: &str) -> Result<Option<Record>, Error> { Ok(self.map()?.get(sid).cloned()) }
///     fn create(&self, sid: &str, r: Record) -> Result<bool, Error> {
///         let mut map = self.map()?;
///         Ok(!map.contains_key(sid) && map.insert(sid.into(), r).is_none())
///     }
///     fn update(&self, sid: &str, r: Record, expected: u64) -> Result<bool, Error> {
///         let mut map = self.map()?;
///         let Some(current) = map.get_mut(sid).filter(|c| c.version == expected) else {
///             return Ok(false);
///         };
///         *current = r;
///         Ok(true)
///     }
///     fn destroy(&self, sid: &str, expected: u64) -> Result<bool, Error> {
///         let mut map = self.map()?;
///         let here = map.get(sid).is_some_and(|c| c.version == expected);
///         Ok(here && map.remove(sid).is_some())
///     }
/// }
/// ```
pub trait SyncStore: Send + Sync + 'static {
    /// See [`Store::get`].
    ///
    /// ```
    /// use session_bridge::{LiveStore, Record, SyncStore};
    /// let store = LiveStore::new();
    /// let record = Record::new(r#"{"user":"ada"}"#, u64::MAX, 3_600_000);
    /// store.create("sid", record.clone())?;
    /// assert_eq!(store.get("sid")?, Some(record));
    /// # Ok::<(), session_bridge::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Store::get`].
    fn get(&self, sid: &str) -> Result<Option<Record>>;
    /// See [`Store::create`].
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
    fn create(&self, sid: &str, record: Record) -> Result<bool>;
    /// See [`Store::update`].
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
    fn update(&self, sid: &str, record: Record, expected_version: u64) -> Result<bool>;
    /// See [`Store::destroy`].
    ///
    /// ```
    /// use session_bridge::{LiveStore, Record, SyncStore};
    /// let store = LiveStore::new();
    /// let record = Record::new(r#"{"user":"ada"}"#, u64::MAX, 3_600_000);
    /// store.create("sid", record)?;
    /// assert!(store.destroy("sid", 0)?);
    /// assert!(store.get("sid")?.is_none());
    /// # Ok::<(), session_bridge::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Store::destroy`].
    fn destroy(&self, sid: &str, expected_version: u64) -> Result<bool>;
    /// See [`Store::list`].
    ///
    /// ```
    /// use session_bridge::{LiveStore, Record, SyncStore};
    /// let store = LiveStore::new();
    /// let record = Record::new(r#"{"user":"ada"}"#, u64::MAX, 3_600_000);
    /// store.create("sid", record)?;
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
    /// use session_bridge::{LiveStore, SyncStore};
    /// let store = LiveStore::new();
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
    fn destroy(
        &self,
        sid: &str,
        expected_version: u64,
    ) -> impl Future<Output = Result<bool>> + Send {
        std::future::ready(SyncStore::destroy(self, sid, expected_version))
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
    fn destroy(
        &self,
        sid: &str,
        expected_version: u64,
    ) -> impl Future<Output = Result<bool>> + Send {
        S::destroy(self, sid, expected_version)
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
    fn destroy<'a>(&'a self, sid: &'a str, expected: u64) -> BoxFuture<'a, Result<bool>>;
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
    fn destroy<'a>(&'a self, sid: &'a str, expected: u64) -> BoxFuture<'a, Result<bool>> {
        Box::pin(Store::destroy(self, sid, expected))
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

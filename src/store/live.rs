//! `LiveStore`: the default, in-memory store (SPEC ST3).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use hashbrown::HashMap;

use crate::clock::{Clock, SystemClock};
use crate::error::Result;
use crate::record::Record;
use crate::store::SyncStore;

/// How many expired records a write may sweep. More than one, so that the number of dead
/// records shrinks even when every write adds a record.
const SWEEP_PER_WRITE: usize = 8;

/// In-memory store: a hash map plus an expiry index.
///
/// Memory never grows without bound: besides [`cleanup`](crate::SessionBridge::cleanup), every
/// write sweeps up to a few expired records from the expiry index, so dead sessions are
/// reclaimed even with auto cleanup off (SPEC ST3). Records vanish with the process.
///
/// ```
/// use session_bridge::{LiveStore, Record, SyncStore, clock::ManualClock};
/// use std::time::Duration;
/// let clock = ManualClock::new(0);
/// let store = LiveStore::with_clock(clock.clone());
/// store.set("a", Record::new("{}", 10, 10)).unwrap();
/// clock.advance(Duration::from_millis(10));
/// store.set("b", Record::new("{}", 100, 90)).unwrap(); // sweeps "a"
/// assert_eq!(store.len(), 1);
/// ```
#[doc(alias = "MemoryStore")]
#[derive(Clone)]
pub struct LiveStore {
    inner: Arc<Mutex<Inner>>,
    clock: Arc<dyn Clock>,
}

#[derive(Default)]
struct Inner {
    records: HashMap<String, Record>,
    /// (expires_at, sid) for every record, so the soonest-dead are found in O(log n).
    expiry: BTreeSet<(u64, String)>,
}

impl Inner {
    fn insert(&mut self, sid: &str, record: Record) {
        if let Some(old) = self.records.get(sid) {
            self.expiry.remove(&(old.expires_at, sid.to_owned()));
        }
        self.expiry.insert((record.expires_at, sid.to_owned()));
        self.records.insert(sid.to_owned(), record);
    }

    fn remove(&mut self, sid: &str) -> bool {
        match self.records.remove(sid) {
            Some(old) => {
                self.expiry.remove(&(old.expires_at, sid.to_owned()));
                true
            }
            None => false,
        }
    }

    fn sweep(&mut self, now: u64) {
        for _ in 0..SWEEP_PER_WRITE {
            match self.expiry.first() {
                Some((at, _)) if *at <= now => {
                    if let Some((_, sid)) = self.expiry.pop_first() {
                        self.records.remove(&sid);
                    }
                }
                _ => break,
            }
        }
    }
}

impl Default for LiveStore {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for LiveStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveStore")
            .field("len", &self.len())
            .finish()
    }
}

impl LiveStore {
    /// An empty store on the system clock.
    ///
    /// ```
    /// use session_bridge::LiveStore;
    /// let store = LiveStore::new();
    /// assert!(store.is_empty());
    /// ```
    pub fn new() -> Self {
        Self::with_clock(SystemClock)
    }

    /// An empty store whose write-time sweep reads `clock` (share the bridge's clock in tests).
    ///
    /// ```
    /// use session_bridge::{LiveStore, SessionBridge, clock::ManualClock};
    /// let clock = ManualClock::new(1_700_000_000_000);
    /// let store = LiveStore::with_clock(clock.clone());
    /// let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]])
    ///     .clock(clock)
    ///     .store(store)
    ///     .build()?;
    /// # Ok::<(), session_bridge::Error>(())
    /// ```
    pub fn with_clock(clock: impl Clock) -> Self {
        Self {
            inner: Arc::default(),
            clock: Arc::new(clock),
        }
    }

    /// Number of records held, expired ones not yet swept included.
    ///
    /// ```
    /// use session_bridge::{LiveStore, Record, SyncStore};
    /// let store = LiveStore::new();
    /// store.set("sid", Record::new("{}", u64::MAX, 60_000))?;
    /// assert_eq!(store.len(), 1);
    /// # Ok::<(), session_bridge::Error>(())
    /// ```
    pub fn len(&self) -> usize {
        self.lock().records.len()
    }

    /// Whether the store holds no record.
    ///
    /// ```
    /// use session_bridge::{LiveStore, Record, SyncStore};
    /// let store = LiveStore::new();
    /// assert!(store.is_empty());
    /// store.set("sid", Record::new("{}", u64::MAX, 60_000))?;
    /// assert!(!store.is_empty());
    /// # Ok::<(), session_bridge::Error>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    // A panic while holding this lock cannot leave the maps inconsistent with each other in a
    // way that matters (both are updated before any call that could panic), so recover it.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self, f: impl FnOnce(&mut Inner) -> bool) -> bool {
        let now = self.clock.now_ms();
        let mut inner = self.lock();
        let done = f(&mut inner);
        inner.sweep(now);
        done
    }
}

impl SyncStore for LiveStore {
    fn get(&self, sid: &str) -> Result<Option<Record>> {
        Ok(self.lock().records.get(sid).cloned())
    }

    fn set(&self, sid: &str, record: Record) -> Result<bool> {
        Ok(self.write(|inner| {
            inner.insert(sid, record);
            true
        }))
    }

    // No sweep here: a cleanup pass destroys records one by one and must count each itself.
    fn destroy(&self, sid: &str) -> Result<bool> {
        Ok(self.lock().remove(sid))
    }

    fn create(&self, sid: &str, record: Record) -> Result<bool> {
        Ok(self.write(|inner| {
            if inner.records.contains_key(sid) {
                return false;
            }
            inner.insert(sid, record);
            true
        }))
    }

    fn update(&self, sid: &str, record: Record, expected_version: u64) -> Result<bool> {
        Ok(self.write(|inner| {
            match inner.records.get(sid) {
                Some(current) if current.version == expected_version => {}
                _ => return false,
            }
            inner.insert(sid, record);
            true
        }))
    }

    fn list(&self) -> Result<Vec<String>> {
        Ok(self.lock().records.keys().cloned().collect())
    }

    fn optimize(&self, _cleared: usize) -> Result<()> {
        let mut inner = self.lock();
        inner.records.shrink_to_fit();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use std::time::Duration;

    #[test]
    fn writes_sweep_expired_records_without_cleanup() {
        let clock = ManualClock::new(0);
        let store = LiveStore::with_clock(clock.clone());
        for i in 0..1_000 {
            store
                .set(&format!("old{i}"), Record::new("{}", 100, 100))
                .unwrap();
        }
        clock.advance(Duration::from_millis(100));
        // Each write adds one record and sweeps up to SWEEP_PER_WRITE dead ones.
        for i in 0..200 {
            store
                .set(&format!("new{i}"), Record::new("{}", 10_000, 9_900))
                .unwrap();
        }
        assert_eq!(store.len(), 200);
    }

    #[test]
    fn update_needs_the_expected_version_and_an_existing_record() {
        let store = LiveStore::new();
        let mut r = Record::new("{}", u64::MAX, 1);
        assert!(!store.update("x", r.clone(), 0).unwrap());
        assert!(store.create("x", r.clone()).unwrap());
        assert!(!store.create("x", r.clone()).unwrap());
        r.version = 1;
        assert!(!store.update("x", r.clone(), 5).unwrap());
        assert!(store.update("x", r.clone(), 0).unwrap());
        assert_eq!(store.get("x").unwrap().map(|r| r.version), Some(1));
    }
}

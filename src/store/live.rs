//! `LiveStore`: the default, in-memory store (SPEC ST3).

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::clock::{Clock, SystemClock};
use crate::compact::{Cursor, Id, Index, pos, should_shrink};
use crate::error::Result;
use crate::record::Record;
use crate::store::SyncStore;

/// How many records each write examines for expiry (those found dead are dropped).
const SWEEP_PER_WRITE: usize = 16;

/// In-memory store: compact entries (ids and owner tags inline, the JSON text in one
/// allocation) in one table with a hash index of positions.
///
/// Memory never grows without bound: besides [`cleanup`](crate::SessionBridge::cleanup), every
/// write examines the next few records of the table (a cursor that goes round) and drops the
/// dead ones, so dead sessions are reclaimed even with auto cleanup off (SPEC ST3), and the
/// table gives memory back once most of it is empty. Records vanish with the process.
///
/// ```
/// use session_bridge::{LiveStore, Record, SyncStore, clock::ManualClock};
/// use std::time::Duration;
/// let clock = ManualClock::new(0);
/// let store = LiveStore::with_clock(clock.clone());
/// store.create("a", Record::new("{}", 10, 10)).unwrap();
/// clock.advance(Duration::from_millis(10));
/// store.create("b", Record::new("{}", 100, 90)).unwrap(); // sweeps "a"
/// assert_eq!(store.len(), 1);
/// ```
#[doc(alias = "MemoryStore")]
#[derive(Clone)]
pub struct LiveStore {
    inner: Arc<Mutex<Inner>>,
    clock: Arc<dyn Clock>,
}

/// A record as kept here: its id and owner tag inline, its JSON text in one allocation.
struct Stored {
    sid: Id,
    session: Box<str>,
    owner: Option<Id>,
    expires_at: u64,
    ttl: u64,
    version: u64,
    created_at: u64,
}

impl Stored {
    fn new(sid: Id, record: Record) -> Self {
        Self {
            sid,
            session: record.session.into_boxed_str(),
            owner: record.owner.as_deref().map(Id::new),
            expires_at: record.expires_at,
            ttl: record.ttl,
            version: record.version,
            created_at: record.created_at,
        }
    }

    fn record(&self) -> Record {
        Record {
            session: self.session.to_string(),
            expires_at: self.expires_at,
            ttl: self.ttl,
            version: self.version,
            created_at: self.created_at,
            owner: self.owner.as_ref().map(|o| o.as_str().to_owned()),
        }
    }
}

#[derive(Default)]
struct Inner {
    entries: Vec<Stored>,
    index: Index,
    cursor: Cursor,
}

impl Inner {
    fn find(&self, sid: &str) -> Option<usize> {
        let entries = &self.entries;
        self.index
            .find(sid.as_bytes(), |p| entries[p as usize].sid.as_bytes())
            .map(|p| p as usize)
    }

    fn get(&self, sid: &str) -> Option<&Stored> {
        self.find(sid).map(|i| &self.entries[i])
    }

    fn insert(&mut self, sid: &str, record: Record) {
        match self.find(sid) {
            Some(i) => {
                let id = std::mem::replace(&mut self.entries[i].sid, Id::new(""));
                self.entries[i] = Stored::new(id, record);
            }
            None => {
                self.entries.push(Stored::new(Id::new(sid), record));
                let Inner { entries, index, .. } = self;
                index.insert(sid.as_bytes(), pos(entries.len() - 1), |p| {
                    entries[p as usize].sid.as_bytes()
                });
            }
        }
    }

    fn remove(&mut self, sid: &str) -> bool {
        match self.find(sid) {
            Some(i) => {
                self.remove_at(i);
                self.maybe_shrink();
                true
            }
            None => false,
        }
    }

    fn remove_at(&mut self, i: usize) {
        let Inner { entries, index, .. } = self;
        index.remove(entries[i].sid.as_bytes(), pos(i));
        let last = entries.len() - 1;
        entries.swap_remove(i);
        if i != last {
            index.moved(entries[i].sid.as_bytes(), pos(last), pos(i));
        }
    }

    /// Gives memory back once most of the table is empty.
    fn maybe_shrink(&mut self) {
        if should_shrink(self.entries.len(), self.entries.capacity())
            || should_shrink(self.entries.len(), self.index.capacity())
        {
            let Inner { entries, index, .. } = self;
            entries.shrink_to_fit();
            index.shrink(|p| entries[p as usize].sid.as_bytes());
        }
    }

    /// Drops the dead records among the next few the cursor points at.
    fn sweep(&mut self, now: u64) {
        let mut dead: Vec<usize> = self
            .cursor
            .next(self.entries.len(), SWEEP_PER_WRITE)
            .filter(|&i| self.entries[i].expires_at <= now)
            .collect();
        if dead.is_empty() {
            return;
        }
        // Highest first: a swap-remove only moves the last entry, which is then not one of
        // the positions still to drop.
        dead.sort_unstable_by(|a, b| b.cmp(a));
        dead.dedup();
        for i in dead {
            self.remove_at(i);
        }
        self.maybe_shrink();
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

    /// Writes `record` under `sid` whatever is stored there. Not part of the store contract
    /// (ST5 has no unconditional write) and never called by the bridge: for tests and tools
    /// that fill a store by hand (an old, foreign or broken record).
    ///
    /// ```
    /// use session_bridge::{LiveStore, Record, SyncStore};
    /// let store = LiveStore::new();
    /// store.put("sid", Record::new("[not an object]", u64::MAX, 60_000));
    /// assert_eq!(store.get("sid")?.map(|r| r.session), Some("[not an object]".to_owned()));
    /// # Ok::<(), session_bridge::Error>(())
    /// ```
    pub fn put(&self, sid: &str, record: Record) {
        self.write(|inner| {
            inner.insert(sid, record);
            true
        });
    }

    /// Number of records held, expired ones not yet swept included.
    ///
    /// ```
    /// use session_bridge::{LiveStore, Record, SyncStore};
    /// let store = LiveStore::new();
    /// store.create("sid", Record::new("{}", u64::MAX, 60_000))?;
    /// assert_eq!(store.len(), 1);
    /// # Ok::<(), session_bridge::Error>(())
    /// ```
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether the store holds no record.
    ///
    /// ```
    /// use session_bridge::{LiveStore, Record, SyncStore};
    /// let store = LiveStore::new();
    /// assert!(store.is_empty());
    /// store.create("sid", Record::new("{}", u64::MAX, 60_000))?;
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
        Ok(self.lock().get(sid).map(Stored::record))
    }

    // No sweep here: a cleanup pass destroys records one by one and must count each itself.
    fn destroy(&self, sid: &str, expected_version: u64) -> Result<bool> {
        let mut inner = self.lock();
        match inner.get(sid) {
            Some(current) if current.version == expected_version => Ok(inner.remove(sid)),
            _ => Ok(false),
        }
    }

    fn create(&self, sid: &str, record: Record) -> Result<bool> {
        Ok(self.write(|inner| {
            if inner.find(sid).is_some() {
                return false;
            }
            inner.insert(sid, record);
            true
        }))
    }

    fn update(&self, sid: &str, record: Record, expected_version: u64) -> Result<bool> {
        Ok(self.write(|inner| {
            match inner.get(sid) {
                Some(current) if current.version == expected_version => {}
                _ => return false,
            }
            inner.insert(sid, record);
            true
        }))
    }

    fn list(&self) -> Result<Vec<String>> {
        Ok(self
            .lock()
            .entries
            .iter()
            .map(|e| e.sid.as_str().to_owned())
            .collect())
    }

    fn optimize(&self, _cleared: usize) -> Result<()> {
        self.lock().maybe_shrink();
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
                .create(&format!("old{i}"), Record::new("{}", 100, 100))
                .unwrap();
        }
        clock.advance(Duration::from_millis(100));
        // Each write adds one record and sweeps up to SWEEP_PER_WRITE dead ones.
        for i in 0..200 {
            store
                .create(&format!("new{i}"), Record::new("{}", 10_000, 9_900))
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

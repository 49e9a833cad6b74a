//! The client id <-> session id mapping of one process: 1:1, in memory, safe under
//! concurrent use (the default [`ClientMap`]).
//!
//! Every entry also remembers when its session expires, so entries of sessions that died
//! without anyone asking (no cleanup, LiveStore's silent sweep) can be found and retired:
//! the mapping stays bounded by the number of live sessions.
//!
//! One entry per pair (both ids inline, no heap string), two hash indexes of positions (by
//! session, by client) and a cursor that goes round for [`due`](MemoryMap::due): about a
//! hundred bytes per pair (`cargo bench --bench memory`).

use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use futures::future::{BoxFuture, ready};
use hashbrown::HashMap;

use super::ClientMap;
use crate::compact::{Cursor, Id, Index, pos, should_shrink};
use crate::error::Result;
use crate::mapping::Holder;

/// How many entries one [`MemoryMap::due`] call examines.
const DUE_SCAN: usize = 64;

/// At most this many retired client ids are remembered (oldest forgotten first).
const RETIRED_CLIENT_CAP: usize = 100_000;

/// The in-memory [`ClientMap`] of one process, the bridge's default: both directions kept
/// in step under one lock, an expiry index so entries of sessions that died unseen are found
/// and retired (the map stays bounded by the live sessions), and a bounded set of retired
/// client ids.
///
/// ```
/// use session_bridge::nodes::{ClientMap, MemoryMap};
/// # futures::executor::block_on(async {
/// let map = MemoryMap::default();
/// map.attach("client", "session", 1_000).await?;
/// assert_eq!(map.session_id("client").await?.as_deref(), Some("session"));
/// assert!(!map.attach_if_unclaimed("intruder", "session", 1_000).await?);
/// # Ok::<_, session_bridge::Error>(())
/// # }).unwrap();
/// ```
#[derive(Default)]
pub struct MemoryMap {
    inner: RwLock<Maps>,
    retired: std::sync::Mutex<RetiredClients>,
}

impl std::fmt::Debug for MemoryMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryMap")
            .field("pairs", &self.len())
            .finish_non_exhaustive()
    }
}

/// Client ids replaced by `regenerate`, remembered briefly and boundedly.
#[derive(Default)]
struct RetiredClients {
    until: HashMap<String, u64>,
    order: std::collections::VecDeque<(u64, String)>,
}

impl RetiredClients {
    fn insert(&mut self, cid: &str, until: u64, now: u64) {
        while let Some((at, _)) = self.order.front() {
            if *at > now && self.order.len() < RETIRED_CLIENT_CAP {
                break;
            }
            if let Some((_, old)) = self.order.pop_front() {
                self.until.remove(&old);
            }
        }
        self.until.insert(cid.to_owned(), until);
        self.order.push_back((until, cid.to_owned()));
    }

    fn contains(&self, cid: &str, now: u64) -> bool {
        self.until.get(cid).is_some_and(|until| *until > now)
    }
}

struct Entry {
    sid: Id,
    cid: Id,
    expires_at: u64,
}

#[derive(Default)]
struct Maps {
    entries: Vec<Entry>,
    by_sid: Index,
    by_cid: Index,
    cursor: Cursor,
}

impl Maps {
    fn find_sid(&self, sid: &str) -> Option<usize> {
        let entries = &self.entries;
        self.by_sid
            .find(sid.as_bytes(), |p| entries[p as usize].sid.as_bytes())
            .map(|p| p as usize)
    }

    fn find_cid(&self, cid: &str) -> Option<usize> {
        let entries = &self.entries;
        self.by_cid
            .find(cid.as_bytes(), |p| entries[p as usize].cid.as_bytes())
            .map(|p| p as usize)
    }

    fn link(&mut self, cid: &str, sid: &str, expires_at: u64) {
        if let Some(i) = self.find_cid(cid) {
            if self.entries[i].sid.is(sid) {
                self.entries[i].expires_at = expires_at;
                return;
            }
            self.remove_at(i);
        }
        if let Some(i) = self.find_sid(sid) {
            self.remove_at(i);
        }
        self.entries.push(Entry {
            sid: Id::new(sid),
            cid: Id::new(cid),
            expires_at,
        });
        let Maps {
            entries,
            by_sid,
            by_cid,
            ..
        } = self;
        let at = pos(entries.len() - 1);
        by_sid.insert(sid.as_bytes(), at, |p| entries[p as usize].sid.as_bytes());
        by_cid.insert(cid.as_bytes(), at, |p| entries[p as usize].cid.as_bytes());
    }

    fn remove_at(&mut self, i: usize) {
        let Maps {
            entries,
            by_sid,
            by_cid,
            ..
        } = self;
        by_sid.remove(entries[i].sid.as_bytes(), pos(i));
        by_cid.remove(entries[i].cid.as_bytes(), pos(i));
        let last = entries.len() - 1;
        entries.swap_remove(i);
        if i != last {
            by_sid.moved(entries[i].sid.as_bytes(), pos(last), pos(i));
            by_cid.moved(entries[i].cid.as_bytes(), pos(last), pos(i));
        }
    }

    fn remove_sid(&mut self, sid: &str) -> Option<String> {
        let i = self.find_sid(sid)?;
        let cid = self.entries[i].cid.as_str().to_owned();
        self.remove_at(i);
        if should_shrink(self.entries.len(), self.entries.capacity())
            || should_shrink(self.entries.len(), self.by_sid.capacity())
        {
            let Maps {
                entries,
                by_sid,
                by_cid,
                ..
            } = self;
            entries.shrink_to_fit();
            by_sid.shrink(|p| entries[p as usize].sid.as_bytes());
            by_cid.shrink(|p| entries[p as usize].cid.as_bytes());
        }
        Some(cid)
    }
}

impl MemoryMap {
    // Nothing panics while these locks are held (plain map operations), so a poisoned lock
    // still guards consistent maps.
    fn read(&self) -> RwLockReadGuard<'_, Maps> {
        self.inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
    fn write(&self) -> RwLockWriteGuard<'_, Maps> {
        self.inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn session_id(&self, cid: &str) -> Option<String> {
        let m = self.read();
        m.find_cid(cid)
            .map(|i| m.entries[i].sid.as_str().to_owned())
    }

    pub(crate) fn client_id(&self, sid: &str) -> Option<String> {
        let m = self.read();
        m.find_sid(sid)
            .map(|i| m.entries[i].cid.as_str().to_owned())
    }

    /// Who holds `sid`, told about `cid` (no copy of the holder's id).
    pub(crate) fn holder(&self, sid: &str, cid: &str) -> Holder {
        let m = self.read();
        match m.find_sid(sid) {
            Some(i) if m.entries[i].cid.as_str() == cid => Holder::This,
            Some(_) => Holder::Other,
            None => Holder::Nobody,
        }
    }

    /// Links `cid` and `sid`, dropping whatever either was linked to before (1:1).
    pub(crate) fn attach(&self, cid: &str, sid: &str, expires_at: u64) {
        let mut m = self.write();
        m.link(cid, sid, expires_at);
    }

    /// Links `cid` and `sid` unless another client holds `sid`, in one step under one lock, so
    /// two clients racing for the same unclaimed session cannot both get it (H2 b, c).
    pub(crate) fn attach_if_unclaimed(&self, cid: &str, sid: &str, expires_at: u64) -> bool {
        let mut m = self.write();
        if m.find_sid(sid).is_some_and(|i| !m.entries[i].cid.is(cid)) {
            return false;
        }
        m.link(cid, sid, expires_at);
        true
    }

    /// Links `cid` to the new session `sid` only while `cid`'s entry is still `expected`
    /// (`None`: no entry), in one step under one lock: a session created for a client never
    /// moves it away from a session another request attached meanwhile (H2).
    pub(crate) fn attach_new(
        &self,
        cid: &str,
        sid: &str,
        expires_at: u64,
        expected: Option<&str>,
    ) -> bool {
        let mut m = self.write();
        let current = m.find_cid(cid).map(|i| m.entries[i].sid.as_str());
        if current != expected {
            return false;
        }
        m.link(cid, sid, expires_at);
        true
    }

    /// Records a new expiry for a mapped sid; returns its client id, if mapped.
    pub(crate) fn touch(&self, sid: &str, expires_at: u64) -> Option<String> {
        let mut m = self.write();
        let i = m.find_sid(sid)?;
        let entry = &mut m.entries[i];
        entry.expires_at = expires_at;
        Some(entry.cid.as_str().to_owned())
    }

    /// Unlinks `sid`; returns the client id it had.
    pub(crate) fn detach(&self, sid: &str) -> Option<String> {
        self.write().remove_sid(sid)
    }

    /// Up to `max` mapped sids whose recorded expiry is at or before `now`, among the next
    /// few entries of a cursor that goes round: repeated calls find every one.
    pub(crate) fn due(&self, now: u64, max: usize) -> Vec<String> {
        let m = self.read();
        m.cursor
            .next(m.entries.len(), DUE_SCAN)
            .filter(|&i| m.entries[i].expires_at <= now)
            .take(max)
            .map(|i| m.entries[i].sid.as_str().to_owned())
            .collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.read().entries.len()
    }

    fn retired(&self) -> std::sync::MutexGuard<'_, RetiredClients> {
        self.retired
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Remembers until `until` that `cid` was replaced by a `regenerate`.
    pub(crate) fn retire(&self, cid: &str, until: u64, now: u64) {
        self.retired().insert(cid, until, now);
    }

    /// Whether `cid` was retired and `now` is before its `until`.
    /// `now` is called only when some client is remembered (most maps hold none).
    pub(crate) fn is_retired(&self, cid: &str, now: impl FnOnce() -> u64) -> bool {
        let retired = self.retired();
        !retired.until.is_empty() && retired.contains(cid, now())
    }
}

/// Every call answers at once (no I/O); the bridge calls the inherent methods directly.
impl ClientMap for MemoryMap {
    fn session_id<'a>(&'a self, cid: &'a str) -> BoxFuture<'a, Result<Option<String>>> {
        Box::pin(ready(Ok(MemoryMap::session_id(self, cid))))
    }

    fn client_id<'a>(&'a self, sid: &'a str) -> BoxFuture<'a, Result<Option<String>>> {
        Box::pin(ready(Ok(MemoryMap::client_id(self, sid))))
    }

    fn attach<'a>(
        &'a self,
        cid: &'a str,
        sid: &'a str,
        expires_at: u64,
    ) -> BoxFuture<'a, Result<()>> {
        MemoryMap::attach(self, cid, sid, expires_at);
        Box::pin(ready(Ok(())))
    }

    fn attach_if_unclaimed<'a>(
        &'a self,
        cid: &'a str,
        sid: &'a str,
        expires_at: u64,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(ready(Ok(MemoryMap::attach_if_unclaimed(
            self, cid, sid, expires_at,
        ))))
    }

    fn attach_new<'a>(
        &'a self,
        cid: &'a str,
        sid: &'a str,
        expires_at: u64,
        expected: Option<&'a str>,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(ready(Ok(MemoryMap::attach_new(
            self, cid, sid, expires_at, expected,
        ))))
    }

    fn touch<'a>(&'a self, sid: &'a str, expires_at: u64) -> BoxFuture<'a, Result<Option<String>>> {
        Box::pin(ready(Ok(MemoryMap::touch(self, sid, expires_at))))
    }

    fn detach<'a>(&'a self, sid: &'a str) -> BoxFuture<'a, Result<Option<String>>> {
        Box::pin(ready(Ok(MemoryMap::detach(self, sid))))
    }

    fn due(&self, now: u64, max: usize) -> BoxFuture<'_, Result<Vec<String>>> {
        Box::pin(ready(Ok(MemoryMap::due(self, now, max))))
    }

    fn retire_client<'a>(
        &'a self,
        cid: &'a str,
        until: u64,
        now: u64,
    ) -> BoxFuture<'a, Result<()>> {
        self.retire(cid, until, now);
        Box::pin(ready(Ok(())))
    }

    fn is_retired_client<'a>(&'a self, cid: &'a str, now: u64) -> BoxFuture<'a, Result<bool>> {
        Box::pin(ready(Ok(self.is_retired(cid, || now))))
    }

    fn local_len(&self) -> usize {
        self.len()
    }

    fn cached_session_id(&self, cid: &str) -> Option<String> {
        MemoryMap::session_id(self, cid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holder_tells_this_client_from_another_and_from_nobody() {
        let m = MemoryMap::default();
        m.attach("c1", "s1", 10);
        assert_eq!(m.holder("s1", "c1"), Holder::This);
        assert_eq!(m.holder("s1", "c2"), Holder::Other);
        assert_eq!(m.holder("s2", "c1"), Holder::Nobody);
    }

    #[test]
    fn attach_is_one_to_one() {
        let m = MemoryMap::default();
        m.attach("c1", "s1", 10);
        m.attach("c2", "s2", 10);
        // c1 moves to s2: s1 loses its client, c2 loses its session.
        m.attach("c1", "s2", 20);
        assert_eq!(m.session_id("c1").as_deref(), Some("s2"));
        assert_eq!(m.client_id("s2").as_deref(), Some("c1"));
        assert_eq!(m.session_id("c2"), None);
        assert_eq!(m.client_id("s1"), None);
        assert_eq!(m.len(), 1);
        assert_eq!(m.due(15, 10), Vec::<String>::new());
        assert_eq!(m.due(20, 10), vec!["s2".to_owned()]);
    }

    #[test]
    fn attach_if_unclaimed_never_takes_another_clients_session() {
        let m = MemoryMap::default();
        assert!(m.attach_if_unclaimed("c1", "s", 10));
        assert!(!m.attach_if_unclaimed("c2", "s", 10));
        assert!(
            m.attach_if_unclaimed("c1", "s", 20),
            "its own: a no-op claim"
        );
        assert_eq!(m.client_id("s").as_deref(), Some("c1"));
        assert_eq!(m.session_id("c2"), None);
    }

    #[test]
    fn racing_claims_leave_exactly_one_owner() {
        for round in 0..200 {
            let m = std::sync::Arc::new(MemoryMap::default());
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
            let handles: Vec<_> = ["a", "b"]
                .into_iter()
                .map(|cid| {
                    let (m, barrier) = (m.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        barrier.wait();
                        m.attach_if_unclaimed(cid, "s", 10)
                    })
                })
                .collect();
            let wins = handles
                .into_iter()
                .map(|h| h.join().unwrap_or(false))
                .filter(|won| *won)
                .count();
            assert_eq!(wins, 1, "round {round}");
        }
    }

    #[test]
    fn detach_and_touch() {
        let m = MemoryMap::default();
        m.attach("c", "s", 5);
        assert_eq!(m.touch("s", 50).as_deref(), Some("c"));
        assert!(m.due(10, 1).is_empty());
        assert_eq!(m.detach("s").as_deref(), Some("c"));
        assert_eq!(m.session_id("c"), None);
        assert_eq!(m.touch("s", 1), None);
        assert!(m.due(u64::MAX, 10).is_empty());
    }
}

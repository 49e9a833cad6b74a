//! Per-session FIFO locks (SPEC S3): calls on one session id never overlap, and they run in
//! the order they asked.
//!
//! `async_lock::Mutex` is only eventually fair (it lets a newcomer barge in unless a waiter has
//! starved for 0.5 ms), so the order S3 promises is kept here with an explicit queue of
//! one-shot hand-offs. An entry lives only while someone holds or waits for the lock, so the
//! table is empty when the traffic stops.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use futures::channel::oneshot;
use hashbrown::HashMap;

#[derive(Default)]
pub(crate) struct LockTable {
    inner: Arc<Mutex<HashMap<String, VecDeque<oneshot::Sender<()>>>>>,
}

type Table = HashMap<String, VecDeque<oneshot::Sender<()>>>;

fn lock(m: &Mutex<Table>) -> MutexGuard<'_, Table> {
    // Only map and queue operations run under this lock: a poisoned one is still consistent.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl LockTable {
    /// Waits for the lock of `sid`. The entry exists (with an empty queue) while it is held.
    pub(crate) fn acquire(&self, sid: &str) -> Acquire {
        let mut table = lock(&self.inner);
        let waiting = match table.get_mut(sid) {
            None => {
                table.insert(sid.to_owned(), VecDeque::new());
                None
            }
            Some(queue) => {
                let (tx, rx) = oneshot::channel();
                queue.push_back(tx);
                Some(rx)
            }
        };
        Acquire {
            guard: Some(SessionLock {
                table: Arc::clone(&self.inner),
                sid: sid.to_owned(),
                armed: true,
            }),
            waiting,
        }
    }

    /// Number of session ids with a holder or a waiter.
    pub(crate) fn len(&self) -> usize {
        lock(&self.inner).len()
    }
}

/// Held lock of one session id; released on drop, handing over to the next waiter in order.
pub(crate) struct SessionLock {
    table: Arc<Mutex<Table>>,
    sid: String,
    /// False for the guard of a waiter that gave up before its turn: it owns nothing.
    armed: bool,
}

impl Drop for SessionLock {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let mut table = lock(&self.table);
        let Some(queue) = table.get_mut(&self.sid) else {
            return;
        };
        // Hand over to the oldest waiter still interested; a waiter whose future was dropped
        // has closed its receiver, so its send fails and the next one is tried.
        while let Some(tx) = queue.pop_front() {
            if tx.send(()).is_ok() {
                return;
            }
        }
        table.remove(&self.sid);
    }
}

/// Future of [`LockTable::acquire`]. Dropping it while waiting gives up the place in the queue
/// (and passes the lock on if it had just been handed over).
pub(crate) struct Acquire {
    guard: Option<SessionLock>,
    waiting: Option<oneshot::Receiver<()>>,
}

impl Future for Acquire {
    type Output = SessionLock;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<SessionLock> {
        if let Some(rx) = self.waiting.as_mut() {
            match Pin::new(rx).poll(cx) {
                Poll::Pending => return Poll::Pending,
                // Ok: handed over. Err: the holder's sender vanished, which only happens when
                // the table entry was dropped, so nobody holds the lock: take it.
                Poll::Ready(_) => self.waiting = None,
            }
        }
        match self.guard.take() {
            Some(guard) => Poll::Ready(guard),
            // Polled after completion: a contract violation by the caller, not by user input.
            None => Poll::Pending,
        }
    }
}

impl Drop for Acquire {
    fn drop(&mut self) {
        // Still queued: close our receiver, and unless the lock was handed to us meanwhile
        // (then the guard's drop passes it on), disarm the guard: it owns nothing. Never
        // queued: the guard, if still here, drops and releases the lock it got at once.
        if let Some(mut rx) = self.waiting.take() {
            rx.close();
            if !matches!(rx.try_recv(), Ok(Some(())))
                && let Some(guard) = self.guard.as_mut()
            {
                guard.armed = false;
            }
        }
    }
}

/// A session's exclusion as the flows hold it: this process's FIFO lock, and inside it the
/// lease of the other nodes when the bridge runs on many (SPEC M2). Dropping it releases the
/// lease first, then the local lock.
pub(crate) struct Guard {
    lease: Option<Box<dyn crate::nodes::Lease>>,
    local: Option<SessionLock>,
}

impl Guard {
    pub(crate) fn new(local: SessionLock, lease: Option<Box<dyn crate::nodes::Lease>>) -> Self {
        Self {
            lease,
            local: Some(local),
        }
    }

    /// Whether other nodes are excluded by a lease (then a write that finds the record moved
    /// means the lease lapsed: it is fenced, never merged).
    pub(crate) fn is_shared(&self) -> bool {
        self.lease.is_some()
    }

    /// Whether the lease is known to have lapsed while held.
    pub(crate) fn lost(&self) -> bool {
        self.lease.as_ref().is_some_and(|lease| lease.lost())
    }

    /// [`Error::LeaseLost`](crate::Error::LeaseLost) when the lease is known to have lapsed:
    /// nothing is written or destroyed under it (M2).
    pub(crate) fn check(&self) -> crate::Result<()> {
        if self.lost() {
            return Err(crate::Error::LeaseLost);
        }
        Ok(())
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        // The local lock hands over only once the nodes' lease is released, so this node's
        // next waiter does not queue behind our own lease.
        let local = self.local.take();
        match self.lease.take() {
            Some(lease) => lease.release(Box::new(move || drop(local))),
            None => drop(local),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    #[test]
    fn waiters_are_served_in_order_and_the_table_empties() {
        let table = LockTable::default();
        let first = table.acquire("s").now_or_never().expect("free lock");
        let mut second = Box::pin(table.acquire("s"));
        let mut third = Box::pin(table.acquire("s"));
        assert!((&mut second).now_or_never().is_none());
        assert!((&mut third).now_or_never().is_none());
        drop(first);
        assert!(
            (&mut third).now_or_never().is_none(),
            "third must wait for second"
        );
        let second = second.now_or_never().expect("second is next");
        drop(second);
        let third = third.now_or_never().expect("third is next");
        drop(third);
        assert_eq!(table.len(), 0);
    }

    #[test]
    fn a_cancelled_waiter_gives_its_turn_away() {
        let table = LockTable::default();
        let first = table.acquire("s").now_or_never().expect("free lock");
        let mut second = Box::pin(table.acquire("s"));
        assert!((&mut second).now_or_never().is_none());
        let mut third = Box::pin(table.acquire("s"));
        assert!((&mut third).now_or_never().is_none());
        drop(second); // cancelled while queued
        drop(first);
        let third = third
            .now_or_never()
            .expect("third skips the cancelled waiter");
        drop(third);
        assert_eq!(table.len(), 0);
    }

    #[test]
    fn a_waiter_cancelled_after_hand_over_releases() {
        let table = LockTable::default();
        let first = table.acquire("s").now_or_never().expect("free lock");
        let mut second = Box::pin(table.acquire("s"));
        assert!((&mut second).now_or_never().is_none());
        drop(first); // hands over to second, which never polls again
        drop(second);
        assert_eq!(table.len(), 0);
        assert!(table.acquire("s").now_or_never().is_some());
    }
}

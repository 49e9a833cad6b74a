//! Bridge events (SPEC B5), delivered to any number of subscribers as a `Stream`.
//!
//! Publishing never waits: each subscriber has a bounded buffer, and when a slow subscriber's
//! buffer is full its OLDEST event is dropped and counted ([`EventStream::missed`]). A request
//! therefore never blocks on a consumer that does not keep up.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll, Waker};

use futures::Stream;

use crate::id::{ClientId, SessionId};

/// Something that happened to a session.
///
/// Flags of `SessionSet` (as in the original README):
///
/// | `is_new` | `is_init` | meaning |
/// |---|---|---|
/// | true | true | a session was created and attached to its client now |
/// | false | true | an existing session was attached to a client now (e.g. after a restart) |
/// | false | false | an attached session was updated |
///
/// ```
/// # use session_bridge::SessionBridge;
/// # futures::executor::block_on(async {
/// # let bridge = session_bridge::testing::test_bridge();
/// use session_bridge::BridgeEvent;
/// let mut events = bridge.events();
/// let request = bridge.begin_request(&http::HeaderMap::new());
/// request.session().insert("user", "ada").await?;
/// request.commit(&mut http::HeaderMap::new()).await?;
/// let mut live = 0;
/// while let Some(event) = events.try_next() {
///     match event {
///         BridgeEvent::SessionSet { is_new: true, .. } => live += 1,
///         BridgeEvent::SessionDestroy { .. } => live -= 1,
///         _ => {} // updates, cleanups, variants added later
///     }
/// }
/// assert_eq!(live, 1);
/// # Ok::<_, session_bridge::Error>(())
/// # }).unwrap();
/// ```
/// Why a session ended (the `reason` of [`BridgeEvent::SessionDestroy`], S6).
///
/// ```
/// use session_bridge::EndReason;
/// assert_eq!(EndReason::Regenerated.as_str(), "regenerated");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EndReason {
    /// Destroyed by the app: an HTTP `destroy`, a socket handler's `destroy`, the by-id API, or
    /// a store change announced with `notify_store_destroy`.
    Destroyed,
    /// Moved to a new id by `regenerate` (a login): the browser has a new session and a new
    /// client id; sockets of the old one should reconnect.
    Regenerated,
    /// Its time ran out (max age, absolute timeout), found on a read, by cleanup, or swept by
    /// the store.
    Expired,
    /// Its record was corrupt and was dropped (GW1, X2).
    Corrupt,
}

impl EndReason {
    /// The reason named by [`as_str`](Self::as_str)'s word (read back from a notice).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn from_word(word: &str) -> Option<Self> {
        [
            EndReason::Destroyed,
            EndReason::Regenerated,
            EndReason::Expired,
            EndReason::Corrupt,
        ]
        .into_iter()
        .find(|reason| reason.as_str() == word)
    }

    /// The reason as the word the socketioxide glue sends (`"destroyed"`, `"regenerated"`,
    /// `"expired"`, `"corrupt"`).
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Destroyed => "destroyed",
            EndReason::Regenerated => "regenerated",
            EndReason::Expired => "expired",
            EndReason::Corrupt => "corrupt",
        }
    }
}

/// `Debug` shows ids as short one-way digests ([`SessionId`], [`ClientId`]): it ends up in logs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BridgeEvent {
    /// A session record was written, or attached to a client.
    SessionSet {
        /// The client the session is mapped to (none when written by id with no mapping).
        client_id: Option<ClientId>,
        /// The session.
        session_id: SessionId,
        /// The store had no record for this id before.
        is_new: bool,
        /// The client <-> session mapping was made by this event.
        is_init: bool,
    },
    /// A session record was really destroyed: by the app, by expiry or by cleanup (SPEC H7).
    SessionDestroy {
        /// The client the session was mapped to, if any.
        client_id: Option<ClientId>,
        /// The destroyed session.
        session_id: SessionId,
        /// Why it ended (S6: what the glue tells the sockets).
        reason: EndReason,
    },
    /// A cleanup pass removed this many expired records.
    Cleanup(usize),
    /// Another node's `SessionDestroy` or mapping move (`SessionSet` with `is_init`), heard
    /// through the nodes' notices (M3). This node's sockets are reached by the node that
    /// announced it (through the socket.io adapter), so the socketioxide glue ignores these;
    /// an app that keeps per-session state of its own drops it here too.
    Remote(Box<BridgeEvent>),
}

/// Which events a subscriber takes (see [`SessionBridge::events_matching`](crate::SessionBridge::events_matching)).
pub type EventFilter = fn(&BridgeEvent) -> bool;

/// Every event.
pub(crate) fn every_event(_: &BridgeEvent) -> bool {
    true
}

/// Fan-out of events to subscribers.
pub(crate) struct Events {
    /// Each subscriber's filter (which events it takes) and queue.
    subscribers: Mutex<Vec<(EventFilter, Weak<Mutex<Queue>>)>>,
    capacity: usize,
}

struct Queue {
    buf: VecDeque<BridgeEvent>,
    missed: u64,
    waker: Option<Waker>,
    closed: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Only plain queue operations run under these locks: a poisoned one is still consistent.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Events {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            subscribers: Mutex::new(Vec::new()),
            capacity: capacity.max(1),
        }
    }

    pub(crate) fn subscribe(&self, filter: EventFilter) -> EventStream {
        let queue = Arc::new(Mutex::new(Queue {
            buf: VecDeque::new(),
            missed: 0,
            waker: None,
            closed: false,
        }));
        lock(&self.subscribers).push((filter, Arc::downgrade(&queue)));
        EventStream { queue }
    }

    pub(crate) fn publish(&self, event: BridgeEvent) {
        let mut subs = lock(&self.subscribers);
        subs.retain(|(filter, weak)| {
            // A subscriber that does not take this event is neither queued to nor woken.
            if !filter(&event) {
                return weak.strong_count() > 0;
            }
            let Some(queue) = weak.upgrade() else {
                return false;
            };
            let waker = {
                let mut q = lock(&queue);
                if q.buf.len() >= self.capacity {
                    q.buf.pop_front();
                    q.missed += 1;
                }
                q.buf.push_back(event.clone());
                q.waker.take()
            };
            if let Some(w) = waker {
                w.wake();
            }
            true
        });
    }

    #[cfg(test)]
    pub(crate) fn subscriber_count(&self) -> usize {
        let mut subs = lock(&self.subscribers);
        subs.retain(|(_, w)| w.strong_count() > 0);
        subs.len()
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        for (_, weak) in lock(&self.subscribers).drain(..) {
            if let Some(queue) = weak.upgrade() {
                let waker = {
                    let mut q = lock(&queue);
                    q.closed = true;
                    q.waker.take()
                };
                if let Some(w) = waker {
                    w.wake();
                }
            }
        }
    }
}

/// A subscription to [`BridgeEvent`]s; ends when the bridge is dropped.
///
/// ```
/// use futures::StreamExt;
/// use session_bridge::{BridgeEvent, SessionBridge};
/// # futures::executor::block_on(async {
/// let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build().unwrap();
/// let mut events = bridge.events();
/// bridge.notify_store_cleanup(3);
/// assert_eq!(events.next().await, Some(BridgeEvent::Cleanup(3)));
/// # });
/// ```
pub struct EventStream {
    queue: Arc<Mutex<Queue>>,
}

impl EventStream {
    /// How many events were dropped because this subscriber fell behind.
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]])
    ///     .event_buffer(8)
    ///     .build()?;
    /// let slow = bridge.events();
    /// (0..10).for_each(|n| bridge.notify_store_cleanup(n));
    /// assert_eq!(slow.missed(), 2);
    /// # Ok::<(), session_bridge::Error>(())
    /// ```
    pub fn missed(&self) -> u64 {
        lock(&self.queue).missed
    }

    /// The next event if one is buffered, without waiting.
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # let bridge = session_bridge::testing::test_bridge();
    /// use session_bridge::BridgeEvent;
    /// let mut events = bridge.events();
    /// assert_eq!(events.try_next(), None); // nothing buffered: returns at once
    /// bridge.notify_store_cleanup(1);
    /// assert_eq!(events.try_next(), Some(BridgeEvent::Cleanup(1)));
    /// # Ok::<(), session_bridge::Error>(())
    /// ```
    pub fn try_next(&mut self) -> Option<BridgeEvent> {
        lock(&self.queue).buf.pop_front()
    }
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let q = lock(&self.queue);
        f.debug_struct("EventStream")
            .field("buffered", &q.buf.len())
            .field("missed", &q.missed)
            .finish()
    }
}

impl Stream for EventStream {
    type Item = BridgeEvent;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<BridgeEvent>> {
        let mut q = lock(&self.queue);
        if let Some(ev) = q.buf.pop_front() {
            return Poll::Ready(Some(ev));
        }
        if q.closed {
            return Poll::Ready(None);
        }
        q.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    #[test]
    fn slow_subscriber_loses_oldest_and_counts_it() {
        let events = Events::new(2);
        let mut slow = events.subscribe(every_event);
        for n in 0..5 {
            events.publish(BridgeEvent::Cleanup(n));
        }
        assert_eq!(slow.missed(), 3);
        assert_eq!(slow.try_next(), Some(BridgeEvent::Cleanup(3)));
        assert_eq!(slow.try_next(), Some(BridgeEvent::Cleanup(4)));
        assert_eq!(slow.try_next(), None);
    }

    #[test]
    fn every_subscriber_gets_every_event_and_streams_end_on_drop() {
        let events = Events::new(8);
        let a = events.subscribe(every_event);
        let b = events.subscribe(every_event);
        events.publish(BridgeEvent::Cleanup(1));
        drop(events);
        let got_a: Vec<_> = futures::executor::block_on(a.collect());
        let got_b: Vec<_> = futures::executor::block_on(b.collect());
        assert_eq!(got_a, vec![BridgeEvent::Cleanup(1)]);
        assert_eq!(got_a, got_b);
    }

    #[test]
    fn a_filtered_subscriber_is_neither_queued_to_nor_woken_by_other_events() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::task::{Context, Wake};
        struct Count(AtomicUsize);
        impl Wake for Count {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let events = Events::new(2);
        let mut big = events.subscribe(|e| matches!(e, BridgeEvent::Cleanup(n) if *n > 10));
        let wakes = Arc::new(Count(AtomicUsize::new(0)));
        let waker = std::task::Waker::from(Arc::clone(&wakes));
        assert!(
            big.poll_next_unpin(&mut Context::from_waker(&waker))
                .is_pending()
        );
        for n in 0..5 {
            events.publish(BridgeEvent::Cleanup(n));
        }
        assert_eq!(
            wakes.0.load(Ordering::SeqCst),
            0,
            "refused events wake nobody"
        );
        assert_eq!(
            (big.try_next(), big.missed()),
            (None, 0),
            "nor are they queued or missed"
        );
        events.publish(BridgeEvent::Cleanup(11));
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1);
        assert_eq!(big.try_next(), Some(BridgeEvent::Cleanup(11)));
    }

    #[test]
    fn dropped_subscribers_are_forgotten() {
        let events = Events::new(8);
        let a = events.subscribe(every_event);
        assert_eq!(events.subscriber_count(), 1);
        drop(a);
        events.publish(BridgeEvent::Cleanup(1));
        assert_eq!(events.subscriber_count(), 0);
    }
}

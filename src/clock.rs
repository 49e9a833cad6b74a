//! Time, behind a trait (SPEC GW5): the core never reads the system clock directly, so tests
//! drive expiry with [`ManualClock`] instead of sleeping.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `d` in whole milliseconds, saturating (a `Duration` can exceed `u64` ms).
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A stopwatch for a span's duration fields (observability only: session time comes from the
/// [`Clock`], GW5). It reads the system clock only when someone listens to the span.
pub(crate) struct SpanTimer(Option<std::time::Instant>);

impl SpanTimer {
    pub(crate) fn start(span: &tracing::Span) -> Self {
        Self((!span.is_disabled()).then(std::time::Instant::now))
    }

    /// Records the microseconds since [`start`](Self::start) in `span`'s `field`.
    pub(crate) fn record(&self, span: &tracing::Span, field: &str) {
        if let Some(started) = self.0 {
            let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
            span.record(field, micros);
        }
    }
}

/// A boxed, sendable future, as returned by [`Clock::sleep`].
///
/// ```
/// use session_bridge::{clock::{Clock, ManualClock, Sleep}};
/// use std::time::Duration;
/// let clock = ManualClock::new(0);
/// let nap: Sleep = clock.sleep(Duration::from_secs(5));
/// clock.advance(Duration::from_secs(5));
/// futures::executor::block_on(nap); // already due: returns at once
/// ```
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A source of time: "now" in unix milliseconds, and a way to wait.
///
/// `sleep` is what lets the auto-cleanup loop run on any async runtime: the default
/// [`SystemClock`] uses a runtime-independent timer thread.
///
/// ```
/// use session_bridge::{SessionBridge, clock::{Clock, Sleep, SystemClock}};
/// use std::time::Duration;
///
/// // Waits on tokio's timer instead of a `futures-timer` thread.
/// struct TokioClock;
/// impl Clock for TokioClock {
///     fn now_ms(&self) -> u64 { SystemClock.now_ms() }
///     fn sleep(&self, duration: Duration) -> Sleep { Box::pin(tokio::time::sleep(duration)) }
/// }
/// let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]])
///     .clock(TokioClock)
///     .build()?;
/// # Ok::<(), session_bridge::Error>(())
/// ```
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the unix epoch.
    ///
    /// ```
    /// use session_bridge::{clock::{Clock, ManualClock, SystemClock}};
    /// assert_eq!(ManualClock::new(42).now_ms(), 42);
    /// assert!(SystemClock.now_ms() > 1_600_000_000_000); // after September 2020
    /// ```
    fn now_ms(&self) -> u64;
    /// A future that completes after `duration` has passed on this clock.
    ///
    /// ```
    /// use futures::FutureExt;
    /// use session_bridge::{clock::{Clock, ManualClock}};
    /// use std::time::Duration;
    /// let clock = ManualClock::new(0);
    /// let mut nap = clock.sleep(Duration::from_millis(100));
    /// assert!((&mut nap).now_or_never().is_none());
    /// clock.advance(Duration::from_millis(100));
    /// assert!(nap.now_or_never().is_some());
    /// ```
    fn sleep(&self, duration: Duration) -> Sleep;
}

/// The wall clock; waits through `futures-timer` (no runtime needed).
///
/// ```
/// use session_bridge::{clock::{Clock, SystemClock}};
/// assert!(SystemClock.now_ms() > 1_600_000_000_000);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(millis)
            .unwrap_or(0)
    }

    fn sleep(&self, duration: Duration) -> Sleep {
        Box::pin(futures_timer::Delay::new(duration))
    }
}

/// A clock that moves only when told to: for tests (SPEC GW5).
///
/// Clones share the same time. [`advance`](ManualClock::advance) wakes every sleeper whose
/// deadline has passed.
///
/// ```
/// use session_bridge::{clock::{Clock, ManualClock}};
/// use std::time::Duration;
/// let clock = ManualClock::new(1_000);
/// let other = clock.clone();
/// clock.advance(Duration::from_secs(1));
/// assert_eq!(other.now_ms(), 2_000);
/// ```
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    inner: Arc<ManualInner>,
}

#[derive(Debug, Default)]
struct ManualInner {
    now: AtomicU64,
    next_sleeper: AtomicU64,
    /// (sleeper id, deadline, waker) of every pending sleep.
    sleepers: Mutex<Vec<(u64, u64, Waker)>>,
}

impl ManualClock {
    /// A clock that reads `start_ms`.
    ///
    /// ```
    /// use session_bridge::{clock::{Clock, ManualClock}};
    /// let clock = ManualClock::new(1_700_000_000_000);
    /// assert_eq!(clock.now_ms(), 1_700_000_000_000);
    /// ```
    pub fn new(start_ms: u64) -> Self {
        let clock = Self::default();
        clock.inner.now.store(start_ms, Ordering::SeqCst);
        clock
    }

    /// Moves time forward and wakes due sleepers.
    ///
    /// ```
    /// use session_bridge::{clock::{Clock, ManualClock}};
    /// use std::time::Duration;
    /// let clock = ManualClock::new(0);
    /// clock.advance(Duration::from_secs(90));
    /// assert_eq!(clock.now_ms(), 90_000);
    /// ```
    pub fn advance(&self, by: Duration) {
        let by = millis(by);
        let now = self
            .inner
            .now
            .fetch_add(by, Ordering::SeqCst)
            .saturating_add(by);
        self.wake_due(now);
    }

    /// Sets the time (it may go backwards, to test clock skew) and wakes due sleepers.
    ///
    /// ```
    /// use session_bridge::{clock::{Clock, ManualClock}};
    /// let clock = ManualClock::new(10_000);
    /// clock.set(4_000); // the clock stepped back
    /// assert_eq!(clock.now_ms(), 4_000);
    /// ```
    pub fn set(&self, now_ms: u64) {
        self.inner.now.store(now_ms, Ordering::SeqCst);
        self.wake_due(now_ms);
    }

    /// How many sleeps are pending (lets a test know a background loop reached its sleep).
    /// A sleep counts once polled, until it completes or is dropped.
    ///
    /// ```
    /// use futures::FutureExt;
    /// use session_bridge::{clock::{Clock, ManualClock}};
    /// use std::time::Duration;
    /// let clock = ManualClock::new(0);
    /// let mut nap = clock.sleep(Duration::from_secs(1));
    /// assert_eq!(clock.sleepers(), 0, "not polled yet");
    /// assert!((&mut nap).now_or_never().is_none());
    /// assert_eq!(clock.sleepers(), 1);
    /// clock.advance(Duration::from_secs(1));
    /// assert_eq!(clock.sleepers(), 0);
    /// ```
    pub fn sleepers(&self) -> usize {
        self.lock_sleepers().len()
    }

    fn lock_sleepers(&self) -> std::sync::MutexGuard<'_, Vec<(u64, u64, Waker)>> {
        self.inner
            .sleepers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn wake_due(&self, now: u64) {
        let due: Vec<Waker> = {
            let mut sleepers = self.lock_sleepers();
            let (due, keep): (Vec<_>, Vec<_>) =
                sleepers.drain(..).partition(|(_, at, _)| *at <= now);
            *sleepers = keep;
            due.into_iter().map(|(_, _, w)| w).collect()
        };
        due.into_iter().for_each(Waker::wake);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.inner.now.load(Ordering::SeqCst)
    }

    fn sleep(&self, duration: Duration) -> Sleep {
        let deadline = self.now_ms().saturating_add(millis(duration));
        Box::pin(ManualSleep {
            id: self.inner.next_sleeper.fetch_add(1, Ordering::Relaxed),
            clock: self.clone(),
            deadline,
        })
    }
}

struct ManualSleep {
    id: u64,
    clock: ManualClock,
    deadline: u64,
}

impl Future for ManualSleep {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.clock.now_ms() >= self.deadline {
            return Poll::Ready(());
        }
        let mut sleepers = self.clock.lock_sleepers();
        // Re-check under the lock: `advance` may have run between the read and the lock.
        if self.clock.now_ms() >= self.deadline {
            return Poll::Ready(());
        }
        let id = self.id;
        sleepers.retain(|(other, _, _)| *other != id);
        sleepers.push((id, self.deadline, cx.waker().clone()));
        Poll::Pending
    }
}

impl Drop for ManualSleep {
    fn drop(&mut self) {
        let id = self.id;
        self.clock
            .lock_sleepers()
            .retain(|(other, _, _)| *other != id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    #[test]
    fn manual_sleep_completes_only_after_advance() {
        let clock = ManualClock::new(0);
        let mut sleep = clock.sleep(Duration::from_millis(100));
        assert!((&mut sleep).now_or_never().is_none());
        assert_eq!(clock.sleepers(), 1);
        clock.advance(Duration::from_millis(99));
        assert!((&mut sleep).now_or_never().is_none());
        clock.advance(Duration::from_millis(1));
        assert_eq!(clock.sleepers(), 0);
        assert!(sleep.now_or_never().is_some());
    }

    #[test]
    fn a_dropped_sleep_is_no_longer_counted() {
        let clock = ManualClock::new(0);
        let mut sleep = clock.sleep(Duration::from_millis(100));
        assert!((&mut sleep).now_or_never().is_none());
        assert!((&mut sleep).now_or_never().is_none());
        assert_eq!(clock.sleepers(), 1, "re-polling does not add a sleeper");
        drop(sleep);
        assert_eq!(clock.sleepers(), 0);
    }
}

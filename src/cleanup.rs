//! Cleanup (SPEC GW4, B3): the schedule of the periodic pass and the worker loop that runs it
//! on whatever runtime the app has. The pass itself is the engine's (each record examined
//! under its session's lock).

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures::future::{Either, select};

use crate::bridge::SessionBridge;
use crate::clock::millis;
use crate::engine::Engine;
use crate::error::Result;

const MINUTE: u64 = 60_000;
const DAY: u64 = 24 * 60 * MINUTE;

/// The default interval: `max_age / 4` clamped to [1 minute, 1 day] (B3).
pub(crate) fn default_interval(max_age_ms: u64) -> u64 {
    (max_age_ms / 4).clamp(MINUTE, DAY)
}

/// Whether periodic cleanup is on, and how often. Shared by the bridge's clones and read by
/// the worker; dropping the last bridge wakes the worker so it ends.
pub(crate) struct CleanupSchedule {
    /// 0 = stopped; otherwise the interval in ms.
    interval_ms: AtomicU64,
    /// Bumped on each start/stop so a sleeping worker notices.
    generation: AtomicU64,
    changed: event_listener::Event,
    default_interval: u64,
}

impl CleanupSchedule {
    /// A schedule whose default interval is `default_interval` ms, started if `on`.
    pub(crate) fn new(default_interval: u64, on: bool) -> Self {
        Self {
            interval_ms: AtomicU64::new(if on { default_interval } else { 0 }),
            generation: AtomicU64::new(0),
            changed: event_listener::Event::new(),
            default_interval,
        }
    }

    /// Starts (or re-times) the schedule; `false` if it was already on.
    fn start(&self, interval_ms: Option<u64>) -> bool {
        let ms = interval_ms.unwrap_or(self.default_interval);
        let was = self.interval_ms.swap(ms, Ordering::SeqCst);
        self.changed_now();
        was == 0
    }

    /// Stops the schedule; `false` if it was off.
    fn stop(&self) -> bool {
        let was = self.interval_ms.swap(0, Ordering::SeqCst);
        self.changed_now();
        was != 0
    }

    fn changed_now(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.changed.notify(usize::MAX);
    }
}

impl Drop for CleanupSchedule {
    fn drop(&mut self) {
        // Wake a sleeping worker so it sees the bridge is gone and ends.
        self.changed.notify(usize::MAX);
    }
}

/// The worker loop: idles while the schedule is off, runs a pass every interval while it is
/// on, and ends once the bridge (its schedule) is gone.
async fn worker(engine: Weak<Engine>, schedule: Weak<CleanupSchedule>) {
    {
        loop {
            let (listener, sleep, generation) = {
                let (Some(engine), Some(schedule)) = (engine.upgrade(), schedule.upgrade()) else {
                    return;
                };
                let listener = schedule.changed.listen();
                let generation = schedule.generation.load(Ordering::SeqCst);
                let ms = schedule.interval_ms.load(Ordering::SeqCst);
                let sleep = (ms > 0).then(|| engine.clock().sleep(Duration::from_millis(ms)));
                (listener, sleep, generation)
            };
            let Some(sleep) = sleep else {
                listener.await;
                continue;
            };
            if let Either::Right(((), _)) = select(listener, sleep).await {
                let (Some(engine), Some(schedule)) = (engine.upgrade(), schedule.upgrade()) else {
                    return;
                };
                if schedule.generation.load(Ordering::SeqCst) != generation {
                    continue;
                }
                if let Err(err) = engine.cleanup().await {
                    tracing::warn!(error = %err, "auto cleanup failed; will retry next interval");
                }
            }
        }
    }
}

impl SessionBridge {
    /// Destroys every expired record now; returns how many (B3, GW4).
    ///
    /// ```
    /// use session_bridge::{SessionBridge, clock::ManualClock};
    /// use std::time::Duration;
    /// # futures::executor::block_on(async {
    /// let clock = ManualClock::new(1_700_000_000_000);
    /// let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]])
    ///     .clock(clock.clone())
    ///     .max_age(Duration::from_secs(3600))
    ///     .build()?;
    /// # let client_id = session_bridge::testing::Browser::new().request(&bridge, async |s| s.insert("user", "ada").await.map(|()| s.client_id())).await??;
    /// clock.advance(Duration::from_secs(3600));
    /// assert_eq!(bridge.cleanup().await?, 1);
    /// assert_eq!(bridge.mapped_sessions(), 0);
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// [`Error::Unsupported`](crate::Error::Unsupported) when the store has no `list`; a store error.
    pub async fn cleanup(&self) -> Result<usize> {
        self.engine().cleanup().await
    }

    /// Turns periodic cleanup on (B3); `interval` defaults to `max_age / 4` clamped to
    /// [1 minute, 1 day], and a given one is clamped to [1 second, 1 day]. Returns `false` if it was already on. The cleanup itself runs in
    /// [`auto_cleanup_worker`](Self::auto_cleanup_worker), which the app spawns once.
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # let bridge = session_bridge::testing::test_bridge();
    /// use std::time::Duration;
    /// assert!(bridge.start_auto_cleanup(Some(Duration::from_secs(600))));
    /// assert!(!bridge.start_auto_cleanup(None), "it was already on");
    /// # Ok::<(), session_bridge::Error>(())
    /// ```
    pub fn start_auto_cleanup(&self, interval: Option<Duration>) -> bool {
        self.schedule()
            .start(interval.map(|d| millis(d).clamp(1_000, DAY)))
    }

    /// Turns periodic cleanup off; returns `false` if it was off (B3).
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # let bridge = session_bridge::testing::test_bridge();
    /// assert!(!bridge.stop_auto_cleanup(), "off by default");
    /// bridge.start_auto_cleanup(None);
    /// assert!(bridge.stop_auto_cleanup());
    /// # Ok::<(), session_bridge::Error>(())
    /// ```
    pub fn stop_auto_cleanup(&self) -> bool {
        self.schedule().stop()
    }

    /// The cleanup loop, for the app to spawn on its runtime (the core has none, B3):
    /// `tokio::spawn(bridge.auto_cleanup_worker())`. It idles while auto cleanup is off, runs
    /// [`cleanup`](Self::cleanup) every interval while it is on (store errors are logged and
    /// the loop goes on, ST4), and ends when the last clone of the bridge is dropped.
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]])
    ///     .auto_cleanup(true)
    ///     .build()?;
    /// let runtime = tokio::runtime::Runtime::new()?;
    /// let worker = runtime.spawn(bridge.auto_cleanup_worker());
    /// drop(bridge); // the last clone: the worker returns
    /// runtime.block_on(worker)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn auto_cleanup_worker(&self) -> impl Future<Output = ()> + Send + 'static {
        worker(
            Arc::downgrade(self.engine()),
            Arc::downgrade(self.schedule()),
        )
    }
}

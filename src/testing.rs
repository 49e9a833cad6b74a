//! Test support: a cookie-following [`Browser`] and a [`test_bridge`] for your app's tests,
//! and the store conformance suite (SPEC ST3): one call checks that a store keeps the contract
//! every built-in store keeps. Run it on your own store in a test:
//!
//! ```
//! use session_bridge::{LiveStore, testing};
//! # futures::executor::block_on(async {
//! testing::conformance(&LiveStore::new()).await.unwrap();
//! # });
//! ```
//!
//! Each check uses fresh random ids, so the suite can run against a shared store (a Redis
//! database in use by other tests) without touching other keys; it destroys what it wrote.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Barrier};

mod browser;
pub use browser::{Browser, test_bridge};

use crate::Error;
use crate::id::{IdGen, RandomIdGen};
use crate::record::Record;
use crate::store::Store;

/// A check of the suite that the store failed.
///
/// ```
/// use session_bridge::{Record, Result, SyncStore, testing};
///
/// // A store that forgets every write.
/// struct Forgetful;
/// impl SyncStore for Forgetful {
///     fn get(&self, _: &str) -> Result<Option<Record>> { Ok(None) }
///     fn create(&self, _: &str, _: Record) -> Result<bool> { Ok(true) }
///     fn update(&self, _: &str, _: Record, _: u64) -> Result<bool> { Ok(true) }
///     fn destroy(&self, _: &str, _: u64) -> Result<bool> { Ok(false) }
/// }
/// let failure = futures::executor::block_on(testing::conformance(&Forgetful)).unwrap_err();
/// assert_eq!(failure.check, "get returns what create wrote, every field");
/// ```
#[derive(Debug)]
pub struct ConformanceFailure {
    /// Short name of the check.
    pub check: &'static str,
    /// What was expected and what happened.
    pub detail: String,
}

impl fmt::Display for ConformanceFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "store conformance check `{}` failed: {}",
            self.check, self.detail
        )
    }
}

impl std::error::Error for ConformanceFailure {}

/// What the suite found out about optional capabilities.
///
/// ```
/// use session_bridge::{LiveStore, testing};
/// let report = futures::executor::block_on(testing::conformance(&LiveStore::new()))?;
/// assert!(report.supports_list, "cleanup works with this store");
/// # Ok::<(), testing::ConformanceFailure>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConformanceReport {
    /// The store implements `list` (so cleanup works with it).
    pub supports_list: bool,
    /// Number of checks that ran.
    pub checks: usize,
}

struct Suite<'s, S> {
    store: &'s S,
    checks: usize,
}

fn fail<T>(check: &'static str, detail: impl Into<String>) -> Result<T, ConformanceFailure> {
    Err(ConformanceFailure {
        check,
        detail: detail.into(),
    })
}

fn store_err(check: &'static str, e: Error) -> ConformanceFailure {
    ConformanceFailure {
        check,
        detail: format!("store returned an error: {e}"),
    }
}

fn record(session: &str, version: u64) -> Record {
    Record {
        session: session.to_owned(),
        expires_at: 4_102_444_800_000, // 2100-01-01
        ttl: 86_400_000,
        version,
        created_at: 4_102_358_400_000,
        owner: Some("conformance-owner-tag".to_owned()),
    }
}

impl<S: Store> Suite<'_, S> {
    async fn get(
        &mut self,
        check: &'static str,
        sid: &str,
    ) -> Result<Option<Record>, ConformanceFailure> {
        self.store.get(sid).await.map_err(|e| store_err(check, e))
    }

    async fn expect(
        &mut self,
        check: &'static str,
        sid: &str,
        want: Option<&Record>,
    ) -> Result<(), ConformanceFailure> {
        self.checks += 1;
        let got = self.get(check, sid).await?;
        if got.as_ref() != want {
            return fail(check, format!("get returned {got:?}, expected {want:?}"));
        }
        Ok(())
    }

    async fn bool(
        &mut self,
        check: &'static str,
        got: crate::Result<bool>,
        want: bool,
    ) -> Result<(), ConformanceFailure> {
        self.checks += 1;
        match got {
            Ok(b) if b == want => Ok(()),
            Ok(b) => fail(check, format!("returned {b}, expected {want}")),
            Err(e) => Err(store_err(check, e)),
        }
    }
}

/// Rounds of the threaded create race, and threads released together in each.
const CREATE_RACE_ROUNDS: usize = 64;
const CREATE_RACE_THREADS: usize = 4;

/// How long one store call of the threaded race may take before the suite gives up on it.
const CALL_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Drives `fut` to completion on the current thread, parking it while the future waits;
/// `None` when it did not complete within `limit` (the suite fails instead of hanging).
fn block_on<F: Future>(fut: F, limit: std::time::Duration) -> Option<F::Output> {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let deadline = std::time::Instant::now() + limit;
    let waker = std::task::Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        if let std::task::Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return Some(out);
        }
        let left = deadline.checked_duration_since(std::time::Instant::now())?;
        std::thread::park_timeout(left);
    }
}

/// [`block_on`] with [`CALL_LIMIT`], a timeout reported as a store error.
fn call<T>(fut: impl Future<Output = crate::Result<T>>) -> crate::Result<T> {
    block_on(fut, CALL_LIMIT).unwrap_or_else(|| {
        Err(Error::store(
            "conformance",
            format!("a store call did not complete within {CALL_LIMIT:?}"),
        ))
    })
}

/// ST5: creates of one id released together from several OS threads (a `Barrier`), many
/// rounds: exactly one wins each round and the stored record is the winner's.
fn create_race<S: Store>(store: &S, ids: &RandomIdGen) -> Result<(), ConformanceFailure> {
    const CHECK: &str = "concurrent creates";
    for round in 0..CREATE_RACE_ROUNDS {
        let id = ids.generate();
        let barrier = Barrier::new(CREATE_RACE_THREADS);
        let results: Vec<crate::Result<bool>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..CREATE_RACE_THREADS)
                .map(|i| {
                    let (id, barrier) = (&id, &barrier);
                    scope.spawn(move || {
                        barrier.wait();
                        call(store.create(id, record(&format!(r#"{{"i":{i}}}"#), 0)))
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(Error::store("create", "create panicked")))
                })
                .collect()
        });
        let mut winners = Vec::new();
        for (i, result) in results.into_iter().enumerate() {
            if result.map_err(|e| store_err(CHECK, e))? {
                winners.push(i);
            }
        }
        let stored = call(store.get(&id)).map_err(|e| store_err(CHECK, e))?;
        call(store.destroy(&id, 0)).map_err(|e| store_err("destroy (teardown)", e))?;
        if winners.len() != 1 {
            return fail(
                CHECK,
                format!(
                    "round {round}: {} of {CREATE_RACE_THREADS} creates of one id, released \
                     together from {CREATE_RACE_THREADS} threads, succeeded; expected 1",
                    winners.len()
                ),
            );
        }
        let want = record(&format!(r#"{{"i":{}}}"#, winners[0]), 0);
        if stored.as_ref() != Some(&want) {
            return fail(
                CHECK,
                format!("round {round}: the stored record is not the winning create's"),
            );
        }
    }
    Ok(())
}

/// Runs every check against `store`.
///
/// The atomic-create check calls `store.create` from several OS threads at once, each driving
/// its future with a minimal parking executor (no runtime context): a store whose futures need
/// one (a tokio-bound client) should hand its I/O to its runtime (a `Handle`, a channel).
/// That check blocks the calling thread while the threads race.
///
/// ```
/// use session_bridge::{LiveStore, testing};
/// use std::sync::Arc;
/// // In your store's tests; here a shared handle on the built-in store.
/// let store = Arc::new(LiveStore::new());
/// let report = futures::executor::block_on(testing::conformance(&store))?;
/// assert!(report.checks > 0);
/// assert!(store.is_empty(), "the suite cleans up after itself");
/// # Ok::<(), testing::ConformanceFailure>(())
/// ```
///
/// # Errors
/// The first check that failed, with what was expected.
pub async fn conformance<S: Store>(store: &S) -> Result<ConformanceReport, ConformanceFailure> {
    let mut s = Suite { store, checks: 0 };
    let ids = RandomIdGen;
    let a = ids.generate();
    let b = ids.generate();

    s.expect("get of a missing id is none", &a, None).await?;

    let r1 = record(r#"{"n":1}"#, 0);
    s.bool(
        "create returns true",
        store.create(&a, r1.clone()).await,
        true,
    )
    .await?;
    s.expect("get returns what create wrote, every field", &a, Some(&r1))
        .await?;
    s.expect("ids are independent", &b, None).await?;

    let r2 = record(r#"{"n":2,"text":"quotes \" and \\ and ünïcødé 🦀"}"#, 1);
    s.bool(
        "update replaces",
        store.update(&a, r2.clone(), 0).await,
        true,
    )
    .await?;
    s.expect("get after update, every field", &a, Some(&r2))
        .await?;

    let big = format!(r#"{{"blob":"{}"}}"#, "x".repeat(60 * 1024));
    let rb = record(&big, 0);
    s.bool(
        "create of a 60 KiB session",
        store.create(&b, rb.clone()).await,
        true,
    )
    .await?;
    s.expect("60 KiB session round-trips", &b, Some(&rb))
        .await?;

    // ST2: a record without an owner (format 1 migrated, or written by an app) keeps it so.
    let c = ids.generate();
    let unowned = Record {
        owner: None,
        ..record(r#"{"owner":"none"}"#, 0)
    };
    s.bool(
        "create of an unowned record",
        store.create(&c, unowned.clone()).await,
        true,
    )
    .await?;
    s.expect("an unowned record round-trips", &c, Some(&unowned))
        .await?;
    store
        .destroy(&c, 0)
        .await
        .map_err(|e| store_err("destroy of an unowned record", e))?;
    // GW1: a record whose expiry has passed is returned whole (the gateway then destroys
    // it) or not at all (the store enforces the TTL itself); never an error, never changed.
    let dead = Record {
        expires_at: 1,
        created_at: 0,
        ..record(r#"{"dead":true}"#, 0)
    };
    s.checks += 1;
    if let Err(e) = store.create(&c, dead.clone()).await {
        return Err(store_err("create of an expired record", e));
    }
    s.checks += 1;
    match s
        .get("an expired record is returned whole or not at all", &c)
        .await?
    {
        None => {}
        Some(r) if r == dead => {}
        Some(r) => {
            return fail(
                "an expired record is returned whole or not at all",
                format!("get returned {r:?}, expected {dead:?} or none"),
            );
        }
    }
    store
        .destroy(&c, 0)
        .await
        .map_err(|e| store_err("destroy of an expired record", e))?;

    // ST5: destroy is conditional on the version; never a bare delete.
    s.bool(
        "destroy with another version is refused",
        store.destroy(&a, 0).await,
        false,
    )
    .await?;
    s.expect("record intact after a refused destroy", &a, Some(&r2))
        .await?;
    s.bool(
        "destroy with the current version is true",
        store.destroy(&a, 1).await,
        true,
    )
    .await?;
    s.expect("get after destroy is none", &a, None).await?;
    s.bool(
        "destroy of a missing id is false",
        store.destroy(&a, 1).await,
        false,
    )
    .await?;
    s.bool(
        "update after destroy is refused (no resurrection)",
        store.update(&a, record("{}", 2), 1).await,
        false,
    )
    .await?;
    s.expect("no resurrection", &a, None).await?;

    let c = ids.generate();
    let rc = record("{}", 0);
    s.bool(
        "create on a free id",
        store.create(&c, rc.clone()).await,
        true,
    )
    .await?;
    s.bool(
        "create never overwrites",
        store.create(&c, record(r#"{"x":1}"#, 9)).await,
        false,
    )
    .await?;
    s.expect("record intact after refused create", &c, Some(&rc))
        .await?;

    let d = ids.generate();
    s.bool(
        "update of a missing id is refused",
        store.update(&d, record("{}", 1), 0).await,
        false,
    )
    .await?;
    s.expect("refused update does not create (no resurrection)", &d, None)
        .await?;

    let next = record(r#"{"v":1}"#, 1);
    s.bool(
        "update with a stale version is refused",
        store.update(&c, next.clone(), 5).await,
        false,
    )
    .await?;
    s.expect("record intact after refused update", &c, Some(&rc))
        .await?;
    s.bool(
        "update with the current version",
        store.update(&c, next.clone(), 0).await,
        true,
    )
    .await?;
    s.expect("get after update", &c, Some(&next)).await?;

    // Concurrent creates of one id: exactly one wins (atomic create, ST5).
    let e = ids.generate();
    let results = futures::future::join_all(
        (0..8u64).map(|i| store.create(&e, record(&format!(r#"{{"i":{i}}}"#), 0))),
    )
    .await;
    s.checks += 1;
    let wins = results
        .into_iter()
        .map(|r| r.map_err(|err| store_err("concurrent creates", err)))
        .collect::<Result<Vec<bool>, _>>()?
        .into_iter()
        .filter(|w| *w)
        .count();
    if wins != 1 {
        return fail(
            "concurrent creates",
            format!("{wins} of 8 creates of one id succeeded, expected 1"),
        );
    }

    // The same from several OS threads released together, many rounds: on one executor the
    // creates above run one after the other whenever the store's futures never wait, so a
    // get-then-set `create` (the trait's default) would pass them.
    s.checks += 1;
    create_race(store, &ids)?;

    let supports_list = match store.list().await {
        Ok(listed) => {
            s.checks += 1;
            if !listed.contains(&b) || !listed.contains(&c) || listed.contains(&a) {
                return fail(
                    "list",
                    "list must hold every stored id and no destroyed one",
                );
            }
            true
        }
        Err(Error::Unsupported(_)) => false,
        Err(e) => return Err(store_err("list", e)),
    };
    s.checks += 1;
    store
        .optimize(0)
        .await
        .map_err(|e| store_err("optimize", e))?;

    for (id, version) in [(&b, 0), (&c, 1), (&e, 0)] {
        store
            .destroy(id, version)
            .await
            .map_err(|err| store_err("destroy (teardown)", err))?;
    }
    s.expect("teardown left nothing", &c, None).await?;
    Ok(ConformanceReport {
        supports_list,
        checks: s.checks,
    })
}

/// The conformance checks of a [`ClientMap`](crate::nodes::ClientMap) (SPEC M1): 1:1 links
/// in both directions, `attach_if_unclaimed` never taking another client's session (also
/// when two claims race), `touch` and `detach` answering the client, retired client ids, and
/// entries that expire (by themselves, or listed by `due`). Returns how many checks ran.
///
/// Each run uses fresh random ids (a shared Redis is fine) and detaches what it linked.
///
/// ```
/// use session_bridge::nodes::MemoryMap;
/// use session_bridge::testing;
/// let checks = futures::executor::block_on(testing::client_map_conformance(&MemoryMap::default()))?;
/// assert!(checks > 10);
/// # Ok::<(), testing::ConformanceFailure>(())
/// ```
///
/// # Errors
/// The first check that failed, with what was expected.
pub async fn client_map_conformance(
    map: &dyn crate::nodes::ClientMap,
) -> Result<usize, ConformanceFailure> {
    use crate::clock::{Clock, SystemClock};
    let ids = RandomIdGen;
    let [c1, c2, c3, s1, s2, s3, dead_c, dead_s] = std::array::from_fn(|_| ids.generate());
    let now = SystemClock.now_ms();
    let later = now + 3_600_000;
    let mut checks = 0;
    macro_rules! check {
        ($name:literal, $call:expr, $want:expr) => {{
            checks += 1;
            let got = $call.await.map_err(|e| store_err($name, e))?;
            if got != $want {
                return fail($name, format!("got {got:?}, expected {:?}", $want));
            }
        }};
    }
    let none = None::<String>;
    check!(
        "an unknown client has no session",
        map.session_id(&c1),
        none
    );
    check!("an unknown session has no client", map.client_id(&s1), none);
    check!("attach links", map.attach(&c1, &s1, later), ());
    check!("client -> session", map.session_id(&c1), Some(s1.clone()));
    check!("session -> client", map.client_id(&s1), Some(c1.clone()));
    check!("attach moves a client", map.attach(&c1, &s2, later), ());
    check!("the old session lost its client", map.client_id(&s1), none);
    check!(
        "the client is on the new session",
        map.session_id(&c1),
        Some(s2.clone())
    );
    check!(
        "attach_if_unclaimed never takes another client's session",
        map.attach_if_unclaimed(&c2, &s2, later),
        false
    );
    check!(
        "the refused client stays unlinked",
        map.session_id(&c2),
        none
    );
    check!(
        "attach_if_unclaimed of its own session is a no-op success",
        map.attach_if_unclaimed(&c1, &s2, later),
        true
    );
    check!(
        "attach_if_unclaimed of a free session links",
        map.attach_if_unclaimed(&c2, &s3, later),
        true
    );
    checks += 1;
    let (a, b) = futures::join!(
        map.attach_if_unclaimed(&c3, &s1, later),
        map.attach_if_unclaimed(&dead_c, &s1, later)
    );
    match (a, b) {
        (Ok(a), Ok(b)) if a != b => {}
        (Ok(a), Ok(b)) => {
            return fail(
                "two racing claims of one session: exactly one wins",
                format!("results {a} and {b}"),
            );
        }
        (Err(e), _) | (_, Err(e)) => {
            return Err(store_err("two racing claims of one session", e));
        }
    }
    check!(
        "touch answers the client",
        map.touch(&s3, later + 1),
        Some(c2.clone())
    );
    check!(
        "touch of an unmapped session",
        map.touch(&dead_s, later),
        none
    );
    check!(
        "detach answers the client",
        map.detach(&s3),
        Some(c2.clone())
    );
    check!("detach unlinks both ways", map.session_id(&c2), none);
    check!("detach twice", map.detach(&s3), none);
    check!("retire_client", map.retire_client(&c3, later, now), ());
    check!(
        "a retired client is retired",
        map.is_retired_client(&c3, now),
        true
    );
    check!(
        "another client is not",
        map.is_retired_client(&c2, now),
        false
    );
    // An entry whose session has expired disappears, or is listed by `due` for the bridge.
    check!(
        "attach of an expired session",
        map.attach(&dead_c, &dead_s, now.saturating_sub(1_000)),
        ()
    );
    checks += 1;
    let gone = map
        .session_id(&dead_c)
        .await
        .map_err(|e| store_err("an expired entry", e))?
        .is_none();
    // `due` may look at a slice of the map per call: ask a bounded number of times.
    let mut listed = false;
    for _ in 0..1_000 {
        if gone || listed {
            break;
        }
        listed = map
            .due(now, usize::MAX)
            .await
            .map_err(|e| store_err("due", e))?
            .contains(&dead_s);
    }
    if !gone && !listed {
        return fail(
            "an expired entry expires by itself or is listed by due",
            "it is still mapped and due() does not list it",
        );
    }
    for sid in [&s1, &s2, &s3, &dead_s] {
        map.detach(sid).await.map_err(|e| store_err("cleanup", e))?;
    }
    Ok(checks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SyncStore;

    #[test]
    fn live_store_conforms() {
        let report = futures::executor::block_on(conformance(&crate::LiveStore::new())).unwrap();
        assert!(report.supports_list);
        assert!(report.checks > 20);
    }

    /// A store that silently drops writes must fail the suite (the suite can fail).
    #[test]
    fn a_broken_store_fails() {
        struct Forgetful;
        impl SyncStore for Forgetful {
            fn get(&self, _: &str) -> crate::Result<Option<Record>> {
                Ok(None)
            }
            fn create(&self, _: &str, _: Record) -> crate::Result<bool> {
                Ok(true)
            }
            fn update(&self, _: &str, _: Record, _: u64) -> crate::Result<bool> {
                Ok(true)
            }
            fn destroy(&self, _: &str, _: u64) -> crate::Result<bool> {
                Ok(false)
            }
        }
        let err = futures::executor::block_on(conformance(&Forgetful)).unwrap_err();
        assert_eq!(err.check, "get returns what create wrote, every field");
    }
}

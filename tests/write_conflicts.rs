//! The multi-writer path (ST5, crate docs "Concurrency"): a write made on a stale record
//! version is refused by `Store::update`, and the engine re-reads the record and re-applies its
//! key-level changes, a bounded number of times, then fails with `Error::Conflict`. Two store
//! wrappers reach that path end to end: one slips a foreign process's write in before our first
//! `update`, one refuses every update. And "never resurrected" (H4, H9) on the plain HTTP
//! commit path: a session destroyed between a request's load and its commit stays dead.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{Browser, KEY_A};
use futures::executor::block_on;
use http::{HeaderMap, HeaderValue, header};
use serde_json::{Map, Value, json};
use session_bridge::{BridgeEvent, Error, LiveStore, Record, SessionBridge, SessionId, Store};

/// A store shared with "another process": before our first `update` reaches it, that other
/// process writes `{"foreign": 1}` into the record (a proper compare-and-set on the current
/// version), so our update carries a stale version.
#[derive(Default)]
struct ForeignWriteFirst {
    inner: LiveStore,
    updates: AtomicUsize,
    slipped: AtomicUsize,
    /// Only when armed (the setup request writes freely).
    armed: std::sync::atomic::AtomicBool,
    /// The foreign write adds 1 to `n` (a concurrent increment) instead of setting `foreign`.
    increments: std::sync::atomic::AtomicBool,
}

impl Store for ForeignWriteFirst {
    async fn get(&self, sid: &str) -> Result<Option<Record>, Error> {
        self.inner.get(sid).await
    }
    async fn create(&self, sid: &str, record: Record) -> Result<bool, Error> {
        self.inner.create(sid, record).await
    }
    async fn update(&self, sid: &str, record: Record, expected: u64) -> Result<bool, Error> {
        self.updates.fetch_add(1, Ordering::SeqCst);
        if self.armed.swap(false, Ordering::SeqCst) {
            let current = self.inner.get(sid).await?.expect("the record exists");
            let mut data: Map<String, Value> = serde_json::from_str(&current.session).unwrap();
            if self.increments.load(Ordering::SeqCst) {
                let n = data.get("n").and_then(Value::as_u64).unwrap_or(0);
                data.insert("n".into(), (n + 1).into());
            } else {
                data.insert("foreign".into(), 1.into());
            }
            let foreign = Record {
                session: Value::Object(data).to_string(),
                version: current.version + 1,
                ..current.clone()
            };
            assert!(self.inner.update(sid, foreign, current.version).await?);
            self.slipped.fetch_add(1, Ordering::SeqCst);
        }
        self.inner.update(sid, record, expected).await
    }
    async fn destroy(&self, sid: &str, expected: u64) -> Result<bool, Error> {
        self.inner.destroy(sid, expected).await
    }
    async fn list(&self) -> Result<Vec<String>, Error> {
        self.inner.list().await
    }
}

/// A store on which some other writer always got there first: every update is refused.
#[derive(Default)]
struct AlwaysConflicts {
    inner: LiveStore,
    updates: AtomicUsize,
    armed: std::sync::atomic::AtomicBool,
}

impl Store for AlwaysConflicts {
    async fn get(&self, sid: &str) -> Result<Option<Record>, Error> {
        self.inner.get(sid).await
    }
    async fn create(&self, sid: &str, record: Record) -> Result<bool, Error> {
        self.inner.create(sid, record).await
    }
    async fn update(&self, sid: &str, record: Record, expected: u64) -> Result<bool, Error> {
        if self.armed.load(Ordering::SeqCst) {
            self.updates.fetch_add(1, Ordering::SeqCst);
            return Ok(false);
        }
        self.inner.update(sid, record, expected).await
    }
    async fn destroy(&self, sid: &str, expected: u64) -> Result<bool, Error> {
        self.inner.destroy(sid, expected).await
    }
}

fn bridge_on(store: impl Store) -> SessionBridge {
    SessionBridge::builder()
        .key("app.sid")
        .keys([KEY_A])
        .store(store)
        .build()
        .unwrap()
}

/// A browser whose session holds n = 1; returns its session id.
fn setup(bridge: &SessionBridge, b: &mut Browser) -> SessionId {
    block_on(b.request(bridge, |s| async move {
        s.insert("n", 1).await.unwrap();
        s.session_id().await.unwrap().unwrap()
    }))
    .value
}

fn stored(store: &impl Store, sid: &str) -> Option<Value> {
    block_on(store.get(sid))
        .unwrap()
        .map(|r| serde_json::from_str(&r.session).unwrap())
}

fn handshake(b: &Browser) -> HeaderMap {
    let mut h = b.build_request().headers().clone();
    h.insert(header::HOST, HeaderValue::from_static("localhost:3000"));
    h
}

#[test]
fn st5_http_commit_after_a_foreign_write_rereads_and_keeps_both() {
    let store = Arc::new(ForeignWriteFirst::default());
    let bridge = bridge_on(Arc::clone(&store));
    let mut b = Browser::new();
    let sid = setup(&bridge, &mut b);
    store.armed.store(true, Ordering::SeqCst);
    block_on(b.request(&bridge, |s| async move {
        s.insert("ours", 2).await.unwrap();
    }));
    assert_eq!(
        store.slipped.load(Ordering::SeqCst),
        1,
        "the foreign write happened"
    );
    assert_eq!(
        store.updates.load(Ordering::SeqCst),
        2,
        "our first update was refused, the retry went through"
    );
    assert_eq!(
        stored(&*store, sid.as_str()),
        Some(json!({"n": 1, "foreign": 1, "ours": 2})),
        "the foreign write and ours both survive"
    );
}

#[test]
fn st5_socket_save_after_a_foreign_write_rereads_and_keeps_both() {
    let store = Arc::new(ForeignWriteFirst::default());
    let bridge = bridge_on(Arc::clone(&store));
    let mut b = Browser::new();
    let sid = setup(&bridge, &mut b);
    let socket = block_on(bridge.bind_socket(&handshake(&b))).unwrap();
    store.armed.store(true, Ordering::SeqCst);
    block_on(socket.with_session(async |ctx| {
        ctx.insert_value("ws", 3.into());
    }))
    .unwrap();
    assert_eq!(store.slipped.load(Ordering::SeqCst), 1);
    assert_eq!(store.updates.load(Ordering::SeqCst), 2);
    assert_eq!(
        stored(&*store, sid.as_str()),
        Some(json!({"n": 1, "foreign": 1, "ws": 3}))
    );
}

#[test]
fn st5_http_commit_that_always_conflicts_fails_with_conflict_and_writes_nothing() {
    let store = Arc::new(AlwaysConflicts::default());
    let bridge = bridge_on(Arc::clone(&store));
    let mut b = Browser::new();
    let sid = setup(&bridge, &mut b);
    let before = block_on(store.inner.get(sid.as_str())).unwrap();
    let mut events = bridge.events();
    store.armed.store(true, Ordering::SeqCst);
    let result = block_on(b.try_request(&bridge, |s| async move {
        s.insert("ours", 2).await.unwrap();
    }));
    match result {
        Err(Error::Conflict { attempts }) => {
            assert!(attempts > 1, "bounded retries, more than one: {attempts}");
            assert_eq!(store.updates.load(Ordering::SeqCst), attempts as usize);
        }
        other => panic!("expected Error::Conflict, got {:?}", other.map(|_| ())),
    }
    assert_eq!(
        block_on(store.inner.get(sid.as_str())).unwrap(),
        before,
        "nothing written"
    );
    assert_eq!(events.try_next(), None, "no SessionSet for a refused write");
}

#[test]
fn st5_socket_save_that_always_conflicts_fails_with_conflict_and_writes_nothing() {
    let store = Arc::new(AlwaysConflicts::default());
    let bridge = bridge_on(Arc::clone(&store));
    let mut b = Browser::new();
    let sid = setup(&bridge, &mut b);
    let socket = block_on(bridge.bind_socket(&handshake(&b))).unwrap();
    let before = block_on(store.inner.get(sid.as_str())).unwrap();
    store.armed.store(true, Ordering::SeqCst);
    let result = block_on(socket.with_session(async |ctx| {
        ctx.insert_value("ws", 3.into());
    }));
    assert!(
        matches!(result, Err(Error::Conflict { .. })),
        "expected Error::Conflict, got {result:?}"
    );
    assert_eq!(block_on(store.inner.get(sid.as_str())).unwrap(), before);
    assert_eq!(bridge.active_locks(), 0);
}

#[test]
fn h4_a_session_destroyed_between_load_and_commit_is_not_resurrected() {
    let store = Arc::new(LiveStore::new());
    let bridge = bridge_on(Arc::clone(&store));
    let mut b = Browser::new();
    let sid = setup(&bridge, &mut b);
    let cid = block_on(bridge.get_client_id(&sid))
        .expect("mapping")
        .unwrap();
    let mut events = bridge.events();

    let request = bridge.begin_request(b.build_request().headers());
    block_on(async {
        assert_eq!(request.session().get::<u64>("n").await.unwrap(), Some(1));
        // Meanwhile an admin logs the browser out.
        assert!(bridge.destroy_by_id(&sid).await.unwrap());
        request.session().insert("n", 2).await.unwrap();
        request.session().insert("late", true).await.unwrap();
    });
    assert!(matches!(
        events.try_next(),
        Some(BridgeEvent::SessionDestroy { .. })
    ));
    let mut out = HeaderMap::new();
    block_on(request.commit(&mut out)).unwrap();

    assert_eq!(
        block_on(store.get(sid.as_str())).unwrap(),
        None,
        "no record"
    );
    assert!(store.is_empty(), "no record under any id");
    assert_eq!(
        block_on(bridge.get_session_id(&cid)).expect("mapping"),
        None,
        "no mapping"
    );
    assert_eq!(block_on(bridge.get_client_id(&sid)).expect("mapping"), None);
    assert_eq!(bridge.mapped_sessions(), 0);
    assert_eq!(events.try_next(), None, "no SessionSet");
    let session_cookies: Vec<String> = common::set_cookies(&out)
        .into_iter()
        .filter(|c| c.starts_with("app.sid="))
        .collect();
    assert!(session_cookies.is_empty(), "{session_cookies:?}");
}

/// H12, issue 19 defect 3: `Session::update` merged the *absolute values* its closure wrote
/// onto the record another writer had changed meanwhile: two increments (ours and a foreign
/// one slipped in between our load and our compare-and-set) gave +1. Now the closure runs
/// again on the fresh record: +2.
#[test]
fn h12_update_after_a_foreign_increment_runs_again_on_the_fresh_record() {
    let store = Arc::new(ForeignWriteFirst::default());
    let bridge = bridge_on(Arc::clone(&store));
    let mut b = Browser::new();
    let sid = setup(&bridge, &mut b);
    store.increments.store(true, Ordering::SeqCst);
    store.armed.store(true, Ordering::SeqCst);
    let seen = block_on(b.request(&bridge, |s| async move {
        s.update(|data| {
            let n = data.get("n").and_then(Value::as_u64).unwrap_or(0) + 1;
            data.insert("n".into(), n.into());
            n
        })
        .await
        .unwrap()
    }))
    .value;
    assert_eq!(
        store.slipped.load(Ordering::SeqCst),
        1,
        "the foreign write happened"
    );
    assert_eq!(
        stored(&*store, sid.as_str()),
        Some(json!({"n": 3})),
        "+2, none lost"
    );
    assert_eq!(
        seen, 3,
        "the closure's value is from the run that was saved"
    );
}

/// S3, issue 19 defect 3: the socket's `with_session` merged its handler's absolute values
/// onto a record another writer had changed meanwhile (+1 for two increments). Its handler
/// runs once (an async closure that may run again cannot be proven `Send`, which socketioxide
/// needs), so when a key it changed moved meanwhile the save is refused with
/// `Error::Conflict` and nothing is written: the foreign increment is kept, none is lost
/// silently. Changes to keys nobody else touched still go in (the test before this one).
#[test]
fn s3_with_session_after_a_foreign_increment_is_a_conflict_not_a_lost_update() {
    let store = Arc::new(ForeignWriteFirst::default());
    let bridge = bridge_on(Arc::clone(&store));
    let mut b = Browser::new();
    let sid = setup(&bridge, &mut b);
    let socket = block_on(bridge.bind_socket(&handshake(&b))).unwrap();
    store.increments.store(true, Ordering::SeqCst);
    store.armed.store(true, Ordering::SeqCst);
    let result = block_on(socket.with_session(async |ctx| {
        let n = ctx.get::<u64>("n").unwrap().unwrap_or(0) + 1;
        ctx.insert("n", n).unwrap();
        n
    }));
    assert_eq!(store.slipped.load(Ordering::SeqCst), 1);
    assert!(matches!(result, Err(Error::Conflict { .. })), "{result:?}");
    assert_eq!(
        stored(&*store, sid.as_str()),
        Some(json!({"n": 2})),
        "the foreign +1 kept"
    );
    // The app retries the event: +2 in all.
    let n = block_on(socket.with_session(async |ctx| {
        let n = ctx.get::<u64>("n").unwrap().unwrap_or(0) + 1;
        ctx.insert("n", n).unwrap();
        n
    }))
    .unwrap();
    assert_eq!(n, 3);
}

/// An exclusion that always grants (one node of many whose lease never says it lapsed).
struct Granting;

struct Held;

impl session_bridge::nodes::Lease for Held {}

impl session_bridge::nodes::Exclusion for Granting {
    fn acquire<'a>(
        &'a self,
        _sid: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<Box<dyn session_bridge::nodes::Lease>, Error>> {
        Box::pin(async { Ok(Box::new(Held) as Box<dyn session_bridge::nodes::Lease>) })
    }
}

/// M2, issue 19 defect 3: only the socket path was fenced. Under a nodes' lease, a record
/// that moved between a writer's load and its compare-and-set means the lease lapsed and
/// another node wrote: every writer (HTTP commit, `update`, `set_by_id`) now fails with
/// `LeaseLost` and writes nothing, instead of merging over the live holder's write.
#[test]
fn m2_every_writer_under_a_lease_is_fenced() {
    let store = Arc::new(ForeignWriteFirst::default());
    let bridge = SessionBridge::builder()
        .key("app.sid")
        .keys([KEY_A])
        .store(Arc::clone(&store))
        .exclusion(Arc::new(Granting))
        .build()
        .unwrap();
    let mut b = Browser::new();
    let sid = setup(&bridge, &mut b);
    let after_foreign = |n: u64| Some(json!({"n": n, "foreign": 1}));

    store.armed.store(true, Ordering::SeqCst);
    let commit = block_on(b.try_request(&bridge, |s| async move {
        s.insert("ours", 2).await.unwrap();
    }));
    assert!(
        matches!(commit, Err(Error::LeaseLost)),
        "HTTP commit: {:?}",
        commit.map(|_| ())
    );
    assert_eq!(
        stored(&*store, sid.as_str()),
        after_foreign(1),
        "HTTP commit merged"
    );

    store.armed.store(true, Ordering::SeqCst);
    let update = block_on(b.request(&bridge, |s| async move {
        s.update(|data| {
            data.insert("ours".into(), 3.into());
        })
        .await
    }))
    .value;
    assert!(
        matches!(update, Err(Error::LeaseLost)),
        "update: {update:?}"
    );

    store.armed.store(true, Ordering::SeqCst);
    let mut data = Map::new();
    data.insert("n".into(), 9.into());
    let by_id = block_on(bridge.set_by_id(&sid, Some(data), None));
    assert!(
        matches!(by_id, Err(Error::LeaseLost)),
        "set_by_id: {by_id:?}"
    );
}

//! RedisStore against a real Redis (feature `redis`): ST3, ST5, GW1/X2, H2 b, M4.
//!
//! The shared tests need a Redis on 127.0.0.1:6379 (`.ci/run` starts one when none answers);
//! they FAIL, never skip, when it does not answer. Each test works under its own random key
//! prefix and deletes its keys at the end, also when it fails (a guard with `Drop`). The
//! outage test starts and stops its own `redis-server` on port 6391.
#![cfg(feature = "redis")]

mod common;

use common::redis::PrivateRedis;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use session_bridge::store::{RedisOptions, RedisStore};
use session_bridge::testing::{self, Browser};
use session_bridge::{Error, Record, SessionBridge, Store};

const SHARED_URL: &str = "redis://127.0.0.1:6379/";
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);

fn now_ms() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

fn random_prefix(test: &str) -> String {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("random bytes");
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("sb-test:{test}:{hex}:")
}

/// A blocking connection for raw checks (PTTL, corrupt values, teardown).
fn raw(url: &str) -> redis::Connection {
    redis::Client::open(url)
        .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(2)))
        .unwrap_or_else(|e| {
            panic!(
                "no Redis answers at {url} ({e}). These tests need a real Redis: start one with \
                 `redis-server --port 6379 --bind 127.0.0.1 --save \"\" --daemonize yes` \
                 (.ci/run does); a missing Redis is a failure, never a skip"
            )
        })
}

/// Every key under `prefix` (SCAN, as the store does).
fn keys_under(conn: &mut redis::Connection, prefix: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, page): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(1000)
            .query(conn)
            .unwrap();
        keys.extend(page);
        if next == 0 {
            return keys;
        }
        cursor = next;
    }
}

/// Deletes every key under its prefix when dropped (also when the test panics).
struct Keys {
    url: &'static str,
    prefix: String,
}

impl Drop for Keys {
    fn drop(&mut self) {
        let Ok(client) = redis::Client::open(self.url) else {
            return;
        };
        let Ok(mut conn) = client.get_connection_with_timeout(Duration::from_secs(1)) else {
            return;
        };
        let keys = keys_under(&mut conn, &self.prefix);
        if !keys.is_empty() {
            let _: redis::RedisResult<u64> = redis::cmd("DEL").arg(&keys).query(&mut conn);
        }
    }
}

async fn connect(url: &str, prefix: &str) -> RedisStore {
    RedisStore::connect(
        url,
        RedisOptions::default()
            .prefix(prefix)
            .connection_timeout(Duration::from_secs(1))
            .response_timeout(RESPONSE_TIMEOUT),
    )
    .await
    .unwrap_or_else(|e| {
        panic!(
            "RedisStore::connect({url}) failed: {e} ({:?}). Start a Redis there (.ci/run does); \
             a missing Redis is a failure, never a skip",
            std::error::Error::source(&e).map(ToString::to_string)
        )
    })
}

/// A store on the shared Redis under a fresh prefix, and the guard that empties it.
async fn shared(test: &str) -> (RedisStore, Keys) {
    let prefix = random_prefix(test);
    let store = connect(SHARED_URL, &prefix).await;
    (
        store,
        Keys {
            url: SHARED_URL,
            prefix,
        },
    )
}

fn record(session: &str, expires_at: u64, version: u64) -> Record {
    let mut r = Record::new(session, expires_at, 60_000);
    r.version = version;
    r.owner = Some("owner-tag".into());
    r
}

fn bridge(store: RedisStore) -> SessionBridge {
    SessionBridge::builder()
        .key("app.sid")
        .keys([[7u8; 32]])
        .store(store)
        .build()
        .unwrap()
}

/// The public suite, threaded create race included: its threads drive the store's futures
/// with no runtime context, which works because every call runs as a task on the runtime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn st3_st5_redis_store_passes_the_conformance_suite() {
    let (store, keys) = shared("conformance").await;
    let report = testing::conformance(&store).await.unwrap();
    assert!(report.supports_list);
    assert!(report.checks > 20, "{report:?}");
    assert!(
        keys_under(&mut raw(SHARED_URL), &keys.prefix).is_empty(),
        "the suite cleans up after itself"
    );
}

/// TTL is Redis's: the key carries a PXAT expiry, disappears by itself, and a write whose
/// expiry is already past deletes instead of writing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn st3_the_ttl_is_enforced_by_redis() {
    let (store, keys) = shared("ttl").await;
    let mut conn = raw(SHARED_URL);

    let short = record(r#"{"n":1}"#, now_ms() + 300, 0);
    assert!(store.create("short", short).await.unwrap());
    let pttl: i64 = redis::cmd("PTTL")
        .arg(store.key("short"))
        .query(&mut conn)
        .unwrap();
    assert!(0 < pttl && pttl <= 300, "PTTL {pttl} ms, expected (0, 300]");

    let long = record(r#"{"n":2}"#, now_ms() + 3_600_000, 0);
    assert!(store.create("long", long.clone()).await.unwrap());
    let pttl: i64 = redis::cmd("PTTL")
        .arg(store.key("long"))
        .query(&mut conn)
        .unwrap();
    assert!(
        3_590_000 < pttl && pttl <= 3_600_000,
        "create carries the expiry: PTTL {pttl}"
    );

    // Gone from Redis itself (no cleanup, no read through the gateway), within a bounded wait.
    let start = Instant::now();
    loop {
        let exists: u64 = redis::cmd("EXISTS")
            .arg(store.key("short"))
            .query(&mut conn)
            .unwrap();
        if exists == 0 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "an expired key is still in Redis after 3 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(store.get("short").await.unwrap(), None);
    assert!(
        start.elapsed() >= Duration::from_millis(200),
        "not before its time"
    );

    // An update whose expiry is past deletes; so does a create.
    let past = record(r#"{"n":3}"#, now_ms() - 1, 1);
    assert!(store.update("long", past.clone(), 0).await.unwrap());
    assert_eq!(
        store.get("long").await.unwrap(),
        None,
        "past expiry deletes"
    );
    assert!(store.create("long", past.clone()).await.unwrap());
    assert_eq!(store.get("long").await.unwrap(), None);
    // Expiry 0 (the epoch) is valid input and as dead.
    assert!(store.create("zero", record("{}", 0, 0)).await.unwrap());
    assert_eq!(store.get("zero").await.unwrap(), None);
    drop(keys);
}

/// SET NX: of many tasks creating one id at once, exactly one wins, every round, and the
/// stored record is the winner's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn st5_create_never_overwrites_under_concurrency() {
    let (store, _keys) = shared("create-race").await;
    let store = Arc::new(store);
    let at = now_ms() + 600_000;
    for round in 0..20 {
        let sid = format!("race{round}");
        let tasks: Vec<_> = (0..32u64)
            .map(|i| {
                let (store, sid) = (Arc::clone(&store), sid.clone());
                tokio::spawn(async move {
                    let won = store
                        .create(&sid, record(&format!(r#"{{"i":{i}}}"#), at, 0))
                        .await
                        .unwrap();
                    (i, won)
                })
            })
            .collect();
        let mut winners = Vec::new();
        for task in tasks {
            let (i, won) = task.await.unwrap();
            if won {
                winners.push(i);
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        let stored = store.get(&sid).await.unwrap().unwrap();
        assert_eq!(stored.session, format!(r#"{{"i":{}}}"#, winners[0]));
    }
}

/// The Lua compare-and-set: the expected version wins once, a stale one is a conflict that
/// changes nothing, a missing record is never resurrected, a corrupt value is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn st5_update_is_a_compare_and_set_that_never_resurrects() {
    let (store, _keys) = shared("cas").await;
    let at = now_ms() + 600_000;
    let v0 = record(r#"{"n":0}"#, at, 0);
    assert!(store.create("a", v0.clone()).await.unwrap());

    let v1 = record(r#"{"n":1}"#, at + 1_000, 1);
    assert!(store.update("a", v1.clone(), 0).await.unwrap(), "ok");
    assert_eq!(store.get("a").await.unwrap(), Some(v1.clone()));
    // Stale: the version moved to 1.
    assert!(
        !store
            .update("a", record(r#"{"n":"lost"}"#, at, 1), 0)
            .await
            .unwrap(),
        "conflict"
    );
    assert_eq!(store.get("a").await.unwrap(), Some(v1.clone()));
    // The new expiry was written.
    let pttl: i64 = redis::cmd("PTTL")
        .arg(store.key("a"))
        .query(&mut raw(SHARED_URL))
        .unwrap();
    assert!(pttl > 600_000, "update moved the expiry: PTTL {pttl}");

    // Gone: never resurrected, whether it never existed or was destroyed.
    assert!(!store.update("never", v1.clone(), 0).await.unwrap());
    assert_eq!(store.get("never").await.unwrap(), None);
    // ST5: destroy is conditional on the version (a destroy decided on an old read never
    // removes a newer record).
    assert!(
        !store.destroy("a", 0).await.unwrap(),
        "another version: kept"
    );
    assert!(store.get("a").await.unwrap().is_some());
    assert!(store.destroy("a", 1).await.unwrap());
    assert!(!store.update("a", v1.clone(), 1).await.unwrap());
    assert_eq!(store.get("a").await.unwrap(), None);
    assert!(!store.destroy("a", 1).await.unwrap());

    // Concurrent updates from one version: exactly one wins.
    assert!(store.create("b", v0.clone()).await.unwrap());
    let results = futures::future::join_all(
        (0..16u64).map(|i| store.update("b", record(&format!(r#"{{"w":{i}}}"#), at, 1), 0)),
    )
    .await;
    let wins = results.into_iter().filter(|r| *r.as_ref().unwrap()).count();
    assert_eq!(wins, 1);

    // A value that is not a record: refused (the caller re-reads and the gateway drops it).
    let _: () = redis::cmd("SET")
        .arg(store.key("c"))
        .arg("garbage{")
        .query(&mut raw(SHARED_URL))
        .unwrap();
    assert!(!store.update("c", v1, 0).await.unwrap());
    // ... and destroyed whatever the version given.
    assert!(store.destroy("c", 7).await.unwrap());
}

/// SCAN-based list: every id under the prefix (more than one SCAN page), nothing of another
/// prefix, glob characters in the prefix taken literally.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn st3_list_scans_only_its_own_prefix() {
    let (store, keys) = shared("list").await;
    let at = now_ms() + 600_000;
    let n = 1_200;
    let ids: Vec<String> = (0..n).map(|i| format!("id{i:04}")).collect();
    let writes =
        futures::future::join_all(ids.iter().map(|id| store.create(id, record("{}", at, 0)))).await;
    assert!(writes.into_iter().all(|w| w.unwrap()));

    // A neighbour whose prefix extends ours with a glob character, and one that shares a
    // start: never listed as ours.
    let glob = connect(SHARED_URL, &format!("{}*x:", keys.prefix)).await;
    assert!(glob.create("other", record("{}", at, 0)).await.unwrap());
    let mut listed = store.list().await.unwrap();
    listed.sort();
    let glob_listed = glob.list().await.unwrap();
    assert_eq!(glob_listed, vec!["other".to_owned()]);
    // Ours includes the neighbour's key as `*x:other` (it is under our prefix in Redis); the
    // neighbour's list sees only its own, with `*` matched literally.
    let mut want = ids.clone();
    want.push("*x:other".to_owned());
    want.sort();
    assert_eq!(listed, want);

    for id in ["id0000", "id0001"] {
        assert!(store.destroy(id, 0).await.unwrap());
    }
    let listed = store.list().await.unwrap();
    assert_eq!(listed.len(), n + 1 - 2);
    assert!(!listed.contains(&"id0000".to_owned()));
}

/// H2 b: a session written through one bridge is read by a new bridge (a restart: empty
/// mapping) on the same Redis with the same cookies, and keeps working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn st3_h2b_a_session_survives_a_bridge_restart() {
    let (store, keys) = shared("restart").await;
    let mut browser = Browser::new();
    let first = bridge(store.clone());
    browser
        .request(&first, async |s| s.insert("user", "ada").await)
        .await
        .unwrap()
        .unwrap();
    let sid = browser
        .request(&first, async |s| s.session_id().await)
        .await
        .unwrap()
        .unwrap()
        .expect("a session");
    drop(first);
    let stored = keys_under(&mut raw(SHARED_URL), &keys.prefix);
    assert_eq!(stored.len(), 1, "one record in Redis");

    let second = bridge(connect(SHARED_URL, &keys.prefix).await);
    let (user, sid_after) = browser
        .request(&second, async |s| {
            let user = s.get::<String>("user").await.unwrap();
            s.insert("visits", 1).await.unwrap();
            (user, s.session_id().await.unwrap())
        })
        .await
        .unwrap();
    assert_eq!(user.as_deref(), Some("ada"));
    assert_eq!(sid_after, Some(sid), "same session, reattached");
    let visits = browser
        .request(&second, async |s| s.get::<u64>("visits").await)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(visits, Some(1));
    let text: String = redis::cmd("GET")
        .arg(&stored[0])
        .query(&mut raw(SHARED_URL))
        .unwrap();
    let record = Record::decode(&text).unwrap();
    assert!(record.session.contains("visits"));
    assert!(record.owner.is_some(), "the owner tag is stored");
}

/// GW1 / X2: bytes in Redis that are not a record are dropped and reported by the gateway
/// (the key deleted, the request reads no session), the next request starts fresh, other sessions keep working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gw1_x2_a_corrupt_redis_value_is_dropped_and_reported() {
    let (store, keys) = shared("corrupt").await;
    let bridge = bridge(store.clone());
    let (mut victim, mut other) = (Browser::new(), Browser::new());
    for b in [&mut victim, &mut other] {
        b.request(&bridge, async |s| s.insert("n", 1).await)
            .await
            .unwrap()
            .unwrap();
    }
    let sid = victim
        .request(&bridge, async |s| s.session_id().await)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let key = store.key(sid.as_str());
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg(b"\xff{not a record".as_slice())
        .query(&mut raw(SHARED_URL))
        .unwrap();

    let read = victim
        .request(&bridge, async |s| s.get::<u64>("n").await)
        .await
        .unwrap();
    // GW1, issue 19 defect 4: dropped and reported, and the request goes on without it.
    assert!(matches!(read, Ok(None)), "read as missing: {read:?}");
    let exists: u64 = redis::cmd("EXISTS")
        .arg(&key)
        .query(&mut raw(SHARED_URL))
        .unwrap();
    assert_eq!(exists, 0, "dropped from Redis");
    let fresh = victim
        .request(&bridge, async |s| s.get::<u64>("n").await)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(fresh, None, "the next request starts fresh");
    let kept = other
        .request(&bridge, async |s| s.get::<u64>("n").await)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept, Some(1), "the rest of the store keeps working");
    drop(keys);
}

// ---------------------------------------------------------------------------------------------
// M4: an outage of a private Redis.

const OUTAGE_PORT: u16 = 6391;

/// The error of a request, wherever it surfaced (the handler's store read or the commit).
fn request_error<T>(result: session_bridge::Result<session_bridge::Result<T>>) -> Option<Error> {
    match result {
        Ok(Ok(_)) => None,
        Ok(Err(e)) | Err(e) => Some(e),
    }
}

/// M4 / ST4: requests in flight through a bridge when its Redis shuts down fail with a store
/// error within the response timeout (no panic, no hang); once Redis is back the same bridge
/// and store work again by themselves; no stored value is ever half-written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn m4_st4_a_redis_outage_gives_store_errors_and_work_resumes() {
    let url: &'static str = "redis://127.0.0.1:6391/";
    assert!(
        !PrivateRedis::answers(OUTAGE_PORT),
        "port {OUTAGE_PORT} is already in use by another Redis"
    );
    let server = PrivateRedis::start(OUTAGE_PORT);
    let store = connect(url, "outage:").await;
    let bridge = Arc::new(bridge(store.clone()));

    // Load: 4 browsers, each counting its requests.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (bridge, stop) = (Arc::clone(&bridge), Arc::clone(&stop));
            tokio::spawn(async move {
                let mut browser = Browser::new();
                let (mut ok, mut failures, mut slowest_failure) =
                    (0u32, Vec::new(), Duration::ZERO);
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let started = Instant::now();
                    let result = browser
                        .request(&bridge, async |s| {
                            let n = s.get::<u64>("n").await?.unwrap_or(0);
                            s.insert("n", n + 1).await?;
                            s.insert("pad", "x".repeat(4096)).await
                        })
                        .await;
                    match request_error(result) {
                        None => ok += 1,
                        Some(e) => {
                            slowest_failure = slowest_failure.max(started.elapsed());
                            failures.push(e);
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                    }
                }
                (ok, failures, slowest_failure)
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_millis(300)).await;
    server.shutdown();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut ok_before = 0;
    let mut failures = Vec::new();
    let mut slowest = Duration::ZERO;
    for w in workers {
        let (ok, f, s) = w.await.expect("no worker panicked");
        ok_before += ok;
        failures.extend(f);
        slowest = slowest.max(s);
    }
    assert!(ok_before > 0, "requests succeeded before the outage");
    assert!(!failures.is_empty(), "requests failed during the outage");
    for e in &failures {
        assert!(
            matches!(e, Error::Store { .. }),
            "a store error (HTTP 500), got {e:?}"
        );
        assert_eq!(e.status(), http::StatusCode::INTERNAL_SERVER_ERROR);
    }
    // A request makes a read and a write: at most two deadlines, plus scheduling slack.
    let bound = RESPONSE_TIMEOUT * 2 + Duration::from_millis(500);
    assert!(
        slowest <= bound,
        "slowest failing request took {slowest:?}, bound {bound:?}"
    );
    eprintln!(
        "m4: {ok_before} requests ok before the outage, {} failed during it, slowest failure {slowest:?}",
        failures.len()
    );

    // Down: a direct store call fails within its deadline too.
    let started = Instant::now();
    let down = store.get("anything").await;
    assert!(
        matches!(down, Err(Error::Store { op: "get", .. })),
        "{down:?}"
    );
    assert!(started.elapsed() <= RESPONSE_TIMEOUT + Duration::from_millis(300));

    // Back: the same bridge works again without being rebuilt.
    let server = PrivateRedis::start(OUTAGE_PORT);
    let mut browser = Browser::new();
    let start = Instant::now();
    let recovered_after = loop {
        let result = browser
            .request(&bridge, async |s| s.insert("back", true).await)
            .await;
        if request_error(result).is_none() {
            break start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "requests still fail 10 s after Redis came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!("m4: requests succeed again {recovered_after:?} after Redis restarted");
    let back = browser
        .request(&bridge, async |s| s.get::<bool>("back").await)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back, Some(true));

    // Nothing half-written: every value in Redis decodes to a record holding a JSON object.
    let mut conn = raw(url);
    let stored = keys_under(&mut conn, "outage:");
    assert!(!stored.is_empty());
    for key in stored {
        let text: String = redis::cmd("GET").arg(&key).query(&mut conn).unwrap();
        let record = Record::decode(&text).expect("every stored value decodes");
        assert!(record.session_object().is_ok());
    }
    drop(server);
}

/// GW1, issue 19 defect 4: a value in a record format this version does not know (a newer
/// node wrote it during a rolling upgrade) reads as missing and is left in place; it was
/// destroyed before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gw1_a_redis_value_of_a_newer_format_reads_as_missing_and_is_left_in_place() {
    let (store, _keys) = shared("newer").await;
    let bridge = bridge(store.clone());
    let mut b = Browser::new();
    b.request(&bridge, async |s| s.insert("n", 1).await)
        .await
        .unwrap()
        .unwrap();
    let sid = b
        .request(&bridge, async |s| s.session_id().await)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let key = store.key(sid.as_str());
    let text: String = redis::cmd("GET")
        .arg(&key)
        .query(&mut raw(SHARED_URL))
        .unwrap();
    let newer = text.replace(r#""format":2"#, r#""format":3"#);
    assert_ne!(newer, text, "the record names its format");
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg(&newer)
        .query(&mut raw(SHARED_URL))
        .unwrap();
    let n = b
        .request(&bridge, async |s| s.get::<u64>("n").await)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, None, "read as missing");
    let kept: Option<String> = redis::cmd("GET")
        .arg(&key)
        .query(&mut raw(SHARED_URL))
        .unwrap();
    assert_eq!(kept.as_deref(), Some(newer.as_str()), "left in place");
}

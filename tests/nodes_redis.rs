//! Many nodes on one Redis, in process (SPEC M1-M4): two bridges built on two `RedisNodes`
//! of one app are two nodes. The Redis on 127.0.0.1:6379 serves the tests that need no
//! outage (each on its own random app name); the outage and restart tests start their own.
//! A missing Redis fails these tests, never skips them (`.ci/setup` starts one).
#![cfg(feature = "redis")]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::Browser;
use common::redis::PrivateRedis;
use futures::StreamExt;
use session_bridge::nodes::redis::{RedisNodes, RedisNodesOptions};
use session_bridge::nodes::{Exclusion, MemoryMap};
use session_bridge::store::RedisOptions;
use session_bridge::{BridgeEvent, EndReason, Error, SessionBridge, testing};

const SHARED: &str = "redis://127.0.0.1:6379/";
const KEY: [u8; 32] = [42; 32];

fn app() -> String {
    use session_bridge::id::IdGen;
    format!(
        "nodes-test-{}",
        &session_bridge::id::RandomIdGen.generate()[..12]
    )
}

async fn connect(url: &str, app: &str, lease_ttl: Duration) -> RedisNodes {
    let options = RedisNodesOptions::new(app)
        .lease_ttl(lease_ttl)
        .lease_wait(Duration::from_secs(10))
        .redis(RedisOptions::default().response_timeout(Duration::from_millis(500)));
    RedisNodes::connect(url, options)
        .await
        .unwrap_or_else(|e| panic!("a Redis must answer on {url} (bash .ci/setup): {e}"))
}

fn bridge(nodes: RedisNodes) -> SessionBridge {
    SessionBridge::builder()
        .key("app.sid")
        .keys([KEY])
        .nodes(nodes)
        .build()
        .expect("valid options")
}

/// Two nodes of one app.
async fn two_nodes(url: &str, lease_ttl: Duration) -> (SessionBridge, SessionBridge) {
    let app = app();
    let a = bridge(connect(url, &app, lease_ttl).await);
    let b = bridge(connect(url, &app, lease_ttl).await);
    (a, b)
}

async fn raw(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("a raw connection")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn m1_memory_and_redis_maps_pass_the_client_map_conformance_checks() {
    let memory = testing::client_map_conformance(&MemoryMap::default())
        .await
        .unwrap_or_else(|f| panic!("MemoryMap: {f}"));
    let nodes = connect(SHARED, &app(), Duration::from_secs(5)).await;
    let redis = testing::client_map_conformance(nodes.client_map().as_ref())
        .await
        .unwrap_or_else(|f| panic!("RedisClientMap: {f}"));
    assert_eq!(memory, redis, "both ran every check");
}

/// M1 across nodes: a session created over HTTP on A is the session of a socket bound on B,
/// and B's HTTP requests with the browser's cookies are served from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn m1_a_session_made_on_one_node_is_found_on_the_other() {
    let (a, b) = two_nodes(SHARED, Duration::from_secs(5)).await;
    let mut browser = Browser::new();
    browser
        .request(
            &a,
            |s| async move { s.insert("user", "ada").await.unwrap() },
        )
        .await;
    let socket = b
        .bind_socket(browser.build_request().headers())
        .await
        .unwrap();
    let user = socket
        .with_session(async |ctx| ctx.get::<String>("user").ok().flatten())
        .await
        .unwrap();
    assert_eq!(user.as_deref(), Some("ada"));
    let over_http = browser
        .request(
            &b,
            |s| async move { s.get::<String>("user").await.unwrap() },
        )
        .await
        .value;
    assert_eq!(over_http.as_deref(), Some("ada"));
}

/// M2: 2 x 50 concurrent increments of one session, half through each node, are exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn m2_increments_spread_over_two_nodes_are_exact() {
    let (a, b) = two_nodes(SHARED, Duration::from_secs(5)).await;
    let mut browser = Browser::new();
    browser
        .request(&a, |s| async move { s.insert("n", 0).await.unwrap() })
        .await;
    let headers = browser.build_request().headers().clone();
    let sockets = [
        a.bind_socket(&headers).await.unwrap(),
        b.bind_socket(&headers).await.unwrap(),
    ];
    let mut tasks = Vec::new();
    for i in 0..100 {
        let socket = sockets[i % 2].clone();
        tasks.push(tokio::spawn(async move {
            socket
                .with_session(async |ctx| {
                    let n = ctx.get::<u64>("n").ok().flatten().unwrap_or(0) + 1;
                    ctx.insert("n", n).map(|()| n)
                })
                .await
        }));
    }
    let mut seen = Vec::new();
    for task in tasks {
        seen.push(task.await.unwrap().unwrap().unwrap());
    }
    seen.sort_unstable();
    assert_eq!(
        seen,
        (1..=100).collect::<Vec<u64>>(),
        "each increment saw its own count"
    );
    let n = browser
        .request(&b, |s| async move { s.get::<u64>("n").await.unwrap() })
        .await
        .value;
    assert_eq!(n, Some(100));
}

/// M2: leases of one session never overlap across nodes, and waiters are served in the order
/// they asked, whichever node they are on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn m2_leases_exclude_across_nodes_and_serve_waiters_in_arrival_order() {
    let app = app();
    let nodes = [
        connect(SHARED, &app, Duration::from_secs(5)).await,
        connect(SHARED, &app, Duration::from_secs(5)).await,
    ];
    let leases = [nodes[0].lease(), nodes[1].lease()];
    let held = leases[0].acquire("the-session").await.unwrap();
    let in_use = Arc::new(AtomicUsize::new(0));
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut waiters = Vec::new();
    for i in 0..6 {
        let lease = Arc::clone(&leases[i % 2]);
        let (in_use, order) = (Arc::clone(&in_use), Arc::clone(&order));
        waiters.push(tokio::spawn(async move {
            let guard = lease.acquire("the-session").await.unwrap();
            assert_eq!(
                in_use.fetch_add(1, Ordering::SeqCst),
                0,
                "two holders at once"
            );
            order.lock().unwrap().push(i);
            tokio::time::sleep(Duration::from_millis(20)).await;
            in_use.fetch_sub(1, Ordering::SeqCst);
            drop(guard);
        }));
        // Each waiter has queued before the next asks.
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    assert!(
        order.lock().unwrap().is_empty(),
        "nobody got the lease while it was held"
    );
    drop(held);
    for waiter in waiters {
        tokio::time::timeout(Duration::from_secs(10), waiter)
            .await
            .expect("every waiter is served")
            .unwrap();
    }
    assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3, 4, 5]);
}

/// M2: a node that died holding a lease blocks the session for at most the lease's time to
/// live; a waiter that gave up does not block the ones behind it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn m2_a_dead_holder_lapses_and_a_cancelled_waiter_is_skipped() {
    let app = app();
    let nodes = connect(SHARED, &app, Duration::from_millis(300)).await;
    let lease = nodes.lease();
    // A dead node's lease: a token nobody renews.
    let mut conn = raw(SHARED).await;
    let _: () = redis::cmd("SET")
        .arg(format!("{app}:lease:dead"))
        .arg("a-dead-nodes-token")
        .arg("PX")
        .arg(300)
        .query_async(&mut conn)
        .await
        .unwrap();
    let started = Instant::now();
    let got = lease.acquire("dead").await.unwrap();
    let waited = started.elapsed();
    assert!(
        (Duration::from_millis(200)..Duration::from_secs(2)).contains(&waited),
        "waited {waited:?} for a lease with 300 ms to live"
    );
    // A waiter that gives up while queued...
    let cancelled = tokio::time::timeout(Duration::from_millis(50), lease.acquire("dead")).await;
    assert!(
        cancelled.is_err(),
        "the lease is held: the waiter had to wait"
    );
    // ... is skipped: the next one gets the lease as soon as the holder releases.
    let next = tokio::spawn({
        let lease = Arc::clone(&lease);
        async move {
            let asked = Instant::now();
            let guard = lease.acquire("dead").await.unwrap();
            (asked.elapsed(), guard)
        }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(got);
    let (waited, _guard) = tokio::time::timeout(Duration::from_secs(5), next)
        .await
        .expect("served")
        .unwrap();
    assert!(
        waited < Duration::from_millis(250),
        "the waiter behind a cancelled one waited {waited:?}"
    );
}

/// M2 fencing: a handler whose lease lapsed (its node stalled, another node took the
/// session) saves nothing; the other node's write stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn m2_a_holder_whose_lease_lapsed_is_fenced_by_the_record_version() {
    let app = app();
    let a = bridge(connect(SHARED, &app, Duration::from_millis(300)).await);
    let b = bridge(connect(SHARED, &app, Duration::from_millis(300)).await);
    let mut browser = Browser::new();
    let sid = browser
        .request(&a, |s| async move {
            s.insert("n", 1).await.unwrap();
            s.session_id().await.unwrap().unwrap()
        })
        .await
        .value;
    let headers = browser.build_request().headers().clone();
    let on_a = a.bind_socket(&headers).await.unwrap();
    let on_b = b.bind_socket(&headers).await.unwrap();
    let lease_key = format!("{app}:lease:{}", sid.as_str());
    let stalled = on_a.with_session(async |ctx| {
        let n = ctx.get::<u64>("n").ok().flatten().unwrap_or(0);
        // The stall: A's lease vanishes (as if it had lapsed) and B writes meanwhile.
        let mut conn = raw(SHARED).await;
        let _: () = redis::cmd("DEL")
            .arg(&lease_key)
            .query_async(&mut conn)
            .await
            .unwrap();
        let b_wrote = on_b
            .with_session(async |ctx| ctx.insert("n", 100))
            .await
            .unwrap();
        assert!(b_wrote.is_ok());
        ctx.insert("n", n + 1)
    });
    let outcome = tokio::time::timeout(Duration::from_secs(10), stalled)
        .await
        .expect("bounded");
    assert!(
        matches!(outcome, Err(Error::LeaseLost)),
        "the late holder's save: {outcome:?}"
    );
    let n = browser
        .request(&b, |s| async move { s.get::<u64>("n").await.unwrap() })
        .await
        .value;
    assert_eq!(n, Some(100), "the other node's write was kept");
}

async fn remote_destroy(events: &mut session_bridge::EventStream) -> Option<EndReason> {
    let wait = async {
        while let Some(event) = events.next().await {
            if let BridgeEvent::Remote(inner) = event
                && let BridgeEvent::SessionDestroy { reason, .. } = *inner
            {
                return Some(reason);
            }
        }
        None
    };
    tokio::time::timeout(Duration::from_secs(5), wait)
        .await
        .ok()
        .flatten()
}

/// M3: a logout on A reaches B's listeners as a remote notice (never as B's own event), also
/// after Redis restarted (the pub/sub connection re-subscribes by itself); M4: while Redis is
/// down, calls fail cleanly within the deadline, and work resumes without a rebuild.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn m3_m4_notices_cross_nodes_and_everything_recovers_after_a_redis_restart() {
    let redis = PrivateRedis::start(6394);
    let url = format!("redis://127.0.0.1:{}/", redis.port);
    let (a, b) = two_nodes(&url, Duration::from_secs(2)).await;
    let mut events = b.events();
    // The listener subscribes in the background: let it settle.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut browser = Browser::new();
    browser
        .request(
            &a,
            |s| async move { s.insert("user", "ada").await.unwrap() },
        )
        .await;
    browser
        .request(&a, |s| async move { s.destroy().await.unwrap() })
        .await;
    assert_eq!(
        remote_destroy(&mut events).await,
        Some(EndReason::Destroyed)
    );

    redis.shutdown();
    let socket_headers = browser.build_request().headers().clone();
    let started = Instant::now();
    let failed = Browser::new()
        .try_request(&a, |s| async move { s.insert("user", "bob").await })
        .await;
    let took = started.elapsed();
    assert!(
        matches!(failed, Err(Error::Store { .. }))
            || matches!(failed, Ok(ref x) if x.value.is_err()),
        "a write while Redis is down fails as a store error"
    );
    assert!(took < Duration::from_secs(3), "the failure took {took:?}");
    assert!(matches!(
        b.bind_socket(&socket_headers).await,
        Err(Error::Store { .. })
    ));

    redis.restart();
    let back = Instant::now();
    let mut browser = Browser::new();
    loop {
        let done = browser
            .try_request(&a, |s| async move { s.insert("user", "cy").await })
            .await;
        if matches!(done, Ok(ref x) if x.value.is_ok()) {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(10),
            "no recovery: {done:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The notices come back too (re-subscribed): poll until one arrives, bounded.
    let mut heard = None;
    while heard.is_none() && back.elapsed() < Duration::from_secs(10) {
        let mut fresh = Browser::new();
        fresh
            .request(
                &a,
                |s| async move { s.insert("user", "dee").await.unwrap() },
            )
            .await;
        fresh
            .request(&a, |s| async move { s.destroy().await.unwrap() })
            .await;
        heard = remote_destroy(&mut events).await;
    }
    assert_eq!(
        heard,
        Some(EndReason::Destroyed),
        "notices after the restart"
    );
}

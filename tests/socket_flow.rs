//! The socket flow in-process (SPEC S1-S5): handshake headers built by hand from a real
//! browser's cookies, no network. Each test names the rules it checks.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Browser, KEY_A, Probe};
use http::{HeaderMap, HeaderValue, header};
use serde_json::{Value, json};
use session_bridge::{Error, LiveStore, SessionBridge, SocketSession, clock::ManualClock};

fn bridge_with_store() -> (SessionBridge, Arc<Probe<LiveStore>>) {
    let store = Arc::new(Probe::new(LiveStore::new()));
    let bridge = SessionBridge::builder()
        .key("app.sid")
        .keys([KEY_A])
        .store(Arc::clone(&store))
        .build()
        .unwrap();
    (bridge, store)
}

/// The handshake request a browser with this jar would send.
fn handshake(b: &Browser) -> HeaderMap {
    let mut h = b.build_request().headers().clone();
    h.insert(header::HOST, HeaderValue::from_static("localhost:3000"));
    h
}

async fn http_count(b: &mut Browser, bridge: &SessionBridge, key: &'static str) -> u64 {
    b.request(bridge, |s| async move {
        let n = s.get::<u64>(key).await.unwrap().unwrap_or(0) + 1;
        s.insert(key, n).await.unwrap();
        n
    })
    .await
    .value
}

async fn ws_inc(socket: &SocketSession, key: &'static str) -> Result<u64, Error> {
    socket
        .with_session(async |ctx| {
            let n = ctx.get::<u64>(key).unwrap().unwrap_or(0) + 1;
            ctx.insert_value(key, n.into());
            n
        })
        .await
}

#[tokio::test]
async fn s1_s3_socket_and_http_see_each_others_writes() {
    let (bridge, _) = bridge_with_store();
    let mut b = Browser::new();
    http_count(&mut b, &bridge, "httpCount").await;
    let socket = bridge.bind_socket(&handshake(&b)).await.unwrap();
    let http_sid = b
        .request(&bridge, |s| async move { s.session_id().await.unwrap() })
        .await
        .value;
    assert_eq!(socket.session_id().await.expect("mapping"), http_sid);
    assert_eq!(
        socket
            .with_session(async |ctx| ctx.get::<u64>("httpCount"))
            .await
            .unwrap()
            .unwrap(),
        Some(1)
    );
    assert_eq!(ws_inc(&socket, "wsCount").await.unwrap(), 1);
    let seen = b
        .request(&bridge, |s| async move {
            s.get::<u64>("wsCount").await.unwrap()
        })
        .await
        .value;
    assert_eq!(seen, Some(1));
}

#[tokio::test]
async fn s2_a_socket_connected_before_the_session_sees_it_and_its_replacement() {
    let (bridge, _) = bridge_with_store();
    let mut b = Browser::new();
    b.visit(&bridge).await; // client cookie only
    let socket = bridge.bind_socket(&handshake(&b)).await.unwrap();
    assert!(socket.client_id().is_some());
    assert_eq!(socket.session_id().await.expect("mapping"), None);
    assert!(matches!(
        ws_inc(&socket, "w").await,
        Err(Error::SessionMissing)
    ));

    http_count(&mut b, &bridge, "h").await;
    let first = socket
        .session_id()
        .await
        .expect("mapping")
        .expect("S2: created later over HTTP, seen now");
    assert_eq!(ws_inc(&socket, "w").await.unwrap(), 1);

    b.request(&bridge, |s| async move { s.destroy().await.unwrap() })
        .await;
    assert_eq!(socket.session_id().await.expect("mapping"), None);
    http_count(&mut b, &bridge, "h").await;
    let second = socket
        .session_id()
        .await
        .expect("mapping")
        .expect("the re-created session");
    assert_ne!(first, second);
    assert_eq!(ws_inc(&socket, "w").await.unwrap(), 1, "a fresh session");
}

#[tokio::test]
async fn s4_s5_a_socket_without_cookies_gets_the_fallback_and_never_creates_a_session() {
    let (bridge, store) = bridge_with_store();
    let socket = bridge.bind_socket(&HeaderMap::new()).await.unwrap();
    assert_eq!(socket.client_id(), None);
    assert!(matches!(
        ws_inc(&socket, "w").await,
        Err(Error::SessionMissing)
    ));
    let called = socket
        .with_session_or_else(async |_| 1, || 42)
        .await
        .unwrap();
    assert_eq!(called, 42);
    assert_eq!(store.calls(), 0);
    assert_eq!(bridge.mapped_sessions(), 0);
}

#[tokio::test]
async fn s1_tampered_and_foreign_cookies_bind_to_nothing() {
    let (bridge, _) = bridge_with_store();
    let mut alice = Browser::new();
    http_count(&mut alice, &bridge, "n").await;

    let mut tampered = alice.clone();
    let cid = tampered.get("app.sid.cid").unwrap().replace('.', "x");
    tampered.set("app.sid.cid", &cid);
    let s = bridge.bind_socket(&handshake(&tampered)).await.unwrap();
    assert_eq!(s.client_id(), None);
    assert_eq!(s.session_id().await.expect("mapping"), None);

    // Mallory has her own client id and alice's session cookie: not attached (H2 c).
    let mut mallory = Browser::new();
    mallory.visit(&bridge).await;
    mallory.set("app.sid", alice.get("app.sid").unwrap());
    let s = bridge.bind_socket(&handshake(&mallory)).await.unwrap();
    assert!(s.client_id().is_some());
    assert_eq!(s.session_id().await.expect("mapping"), None);
    assert!(matches!(ws_inc(&s, "n").await, Err(Error::SessionMissing)));
}

#[tokio::test]
async fn s1_a_handshake_reattaches_an_existing_session_after_a_restart() {
    let store = Arc::new(LiveStore::new());
    let build = || {
        SessionBridge::builder()
            .key("app.sid")
            .keys([KEY_A])
            .store(Arc::clone(&store))
            .build()
            .unwrap()
    };
    let mut b = Browser::new();
    http_count(&mut b, &build(), "n").await;
    let restarted = build();
    let socket = restarted.bind_socket(&handshake(&b)).await.unwrap();
    assert!(socket.session_id().await.expect("mapping").is_some());
    assert_eq!(ws_inc(&socket, "n").await.unwrap(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_two_sockets_times_100_concurrent_increments_is_exactly_200() {
    let (bridge, _) = bridge_with_store();
    let mut b = Browser::new();
    http_count(&mut b, &bridge, "h").await;
    let s1 = bridge.bind_socket(&handshake(&b)).await.unwrap();
    let s2 = bridge.bind_socket(&handshake(&b)).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..200 {
        let s = if i % 2 == 0 { s1.clone() } else { s2.clone() };
        tasks.push(tokio::spawn(async move {
            s.with_session(async |ctx| {
                let n = ctx.get::<u64>("wsCount").unwrap().unwrap_or(0);
                tokio::task::yield_now().await; // widen the race window
                ctx.insert_value("wsCount", (n + 1).into());
            })
            .await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let n = s1
        .with_session(async |ctx| ctx.get::<u64>("wsCount"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, Some(200));
    assert_eq!(bridge.active_locks(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_lost_update_a_slow_http_request_and_100_socket_increments_keep_both() {
    let (bridge, _) = bridge_with_store();
    let mut b = Browser::new();
    http_count(&mut b, &bridge, "h").await;
    let socket = bridge.bind_socket(&handshake(&b)).await.unwrap();

    // The slow request loads the session (b absent) and changes `a`; it stays open, loaded and
    // not committed, until all 100 socket increments are done: the overlap is ordered by
    // awaiting them, not by a sleep.
    let request = bridge.begin_request(b.build_request().headers());
    let session = request.session().clone();
    assert_eq!(session.get::<u64>("b").await.unwrap(), None);
    session.insert("a", 1).await.unwrap();
    let sid = session
        .session_id()
        .await
        .unwrap()
        .expect("an existing session");

    let mut tasks = Vec::new();
    for _ in 0..100 {
        let s = socket.clone();
        tasks.push(tokio::spawn(async move { ws_inc(&s, "b").await }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    // The overlap happened: the store has every increment and not yet the request's write,
    // while the request still works on the view it loaded before them.
    let stored = bridge.get_by_id(&sid).await.unwrap().unwrap();
    assert_eq!(stored.get("b"), Some(&json!(100)));
    assert_eq!(stored.get("a"), None, "the request has not committed yet");
    assert_eq!(
        session.get::<u64>("b").await.unwrap(),
        None,
        "the request's view predates the increments"
    );
    let mut out = HeaderMap::new();
    request.commit(&mut out).await.unwrap();
    let (a, bv) = socket
        .with_session(async |ctx| (ctx.get::<u64>("a"), ctx.get::<u64>("b")))
        .await
        .unwrap();
    assert_eq!(a.unwrap(), Some(1), "the HTTP write survived");
    assert_eq!(bv.unwrap(), Some(100), "every socket increment survived");
}

#[tokio::test]
async fn s3_a_handler_that_destroys_the_session_destroys_it() {
    let (bridge, _) = bridge_with_store();
    let mut b = Browser::new();
    http_count(&mut b, &bridge, "n").await;
    http_count(&mut b, &bridge, "n").await;
    let socket = bridge.bind_socket(&handshake(&b)).await.unwrap();
    let sid = socket.session_id().await.expect("mapping").unwrap();
    let mut events = bridge.events();
    socket
        .with_session(async |ctx| ctx.destroy())
        .await
        .unwrap();
    assert!(matches!(
        events.try_next(),
        Some(session_bridge::BridgeEvent::SessionDestroy { session_id, .. }) if session_id == sid
    ));
    assert_eq!(socket.session_id().await.expect("mapping"), None);
    assert_eq!(
        http_count(&mut b, &bridge, "n").await,
        1,
        "next HTTP request starts anew"
    );
}

#[tokio::test]
async fn s3_unchanged_sessions_are_not_written() {
    let (bridge, store) = bridge_with_store();
    let mut b = Browser::new();
    http_count(&mut b, &bridge, "n").await;
    let socket = bridge.bind_socket(&handshake(&b)).await.unwrap();
    let writes = store.writes();
    let v: Option<Value> = socket
        .with_session(async |ctx| ctx.get_value("n").cloned())
        .await
        .unwrap();
    assert_eq!(v, Some(json!(1)));
    assert_eq!(store.writes(), writes);
}

/// S3: whichever way a handler changes the data (`insert_value`, `remove_value`, `data_mut`),
/// the change is saved; a handler that asks for the data mutably but leaves it as it was
/// writes nothing.
#[tokio::test]
async fn s3_every_way_of_changing_the_data_is_saved() {
    let (bridge, store) = bridge_with_store();
    let mut b = Browser::new();
    http_count(&mut b, &bridge, "n").await;
    let socket = bridge.bind_socket(&handshake(&b)).await.unwrap();
    socket
        .with_session(async |ctx| {
            ctx.data_mut().insert("via_data_mut".into(), json!(1));
        })
        .await
        .unwrap();
    socket
        .with_session(async |ctx| ctx.insert_value("via_insert", json!(2)))
        .await
        .unwrap();
    socket
        .with_session(async |ctx| ctx.remove_value("n"))
        .await
        .unwrap();
    let seen = b
        .request(&bridge, |s| async move { s.data().await.unwrap() })
        .await
        .value;
    assert_eq!(
        Value::Object(seen),
        json!({ "via_data_mut": 1, "via_insert": 2 }),
        "all three changes are stored"
    );
    let writes = store.writes();
    socket
        .with_session(async |ctx| {
            let data = ctx.data_mut();
            let v = data.remove("via_insert");
            data.insert("via_insert".into(), v.unwrap_or_default());
        })
        .await
        .unwrap();
    assert_eq!(store.writes(), writes, "same data, no write");
}

#[tokio::test]
async fn s3_lock_entries_are_freed_10k_calls_on_1k_sessions() {
    let (bridge, _) = bridge_with_store();
    let mut sockets = Vec::new();
    for _ in 0..1_000 {
        let mut b = Browser::new();
        http_count(&mut b, &bridge, "n").await;
        sockets.push(bridge.bind_socket(&handshake(&b)).await.unwrap());
    }
    let calls = futures::future::join_all((0..10_000).map(|i| {
        let s = sockets[i % 1_000].clone();
        async move { ws_inc(&s, "w").await }
    }))
    .await;
    assert!(calls.iter().all(Result::is_ok));
    assert_eq!(bridge.active_locks(), 0);
    let total: u64 = futures::future::join_all(
        sockets
            .iter()
            .map(|s| s.with_session(async |ctx| ctx.get::<u64>("w").unwrap().unwrap_or(0))),
    )
    .await
    .into_iter()
    .map(Result::unwrap)
    .sum();
    assert_eq!(total, 10_000);
}

#[tokio::test]
async fn s1_a_foreign_origin_or_scheme_is_refused_and_an_allowed_one_accepted() {
    let (bridge, _) = bridge_with_store();
    let mut b = Browser::new();
    http_count(&mut b, &bridge, "n").await;
    let mut h = handshake(&b);
    h.insert(
        header::ORIGIN,
        HeaderValue::from_static("http://evil.example"),
    );
    assert!(matches!(
        bridge.bind_socket(&h).await,
        Err(Error::ForbiddenOrigin)
    ));
    h.insert(
        header::ORIGIN,
        HeaderValue::from_static("https://localhost:3000"),
    );
    assert!(bridge.bind_socket(&h).await.is_ok());
    // Secure cookies: the site is https, so a plain-http page on the same host and port is
    // another origin (its socket would carry the cookies to a page an attacker on the
    // network can script).
    h.insert(
        header::ORIGIN,
        HeaderValue::from_static("http://localhost:3000"),
    );
    assert!(matches!(
        bridge.bind_socket(&h).await,
        Err(Error::ForbiddenOrigin)
    ));

    let allowing = SessionBridge::builder()
        .key("app.sid")
        .keys([KEY_A])
        .allowed_origins(["http://evil.example/"])
        .build()
        .unwrap();
    h.insert(
        header::ORIGIN,
        HeaderValue::from_static("http://evil.example"),
    );
    assert!(allowing.bind_socket(&h).await.is_ok());
}

#[tokio::test]
async fn s3_expired_session_is_missing_for_the_socket() {
    let clock = ManualClock::new(0);
    let bridge = SessionBridge::builder()
        .key("app.sid")
        .keys([KEY_A])
        .clock(clock.clone())
        .max_age(Duration::from_secs(3600))
        .build()
        .unwrap();
    let mut b = Browser::new();
    http_count(&mut b, &bridge, "n").await;
    let socket = bridge.bind_socket(&handshake(&b)).await.unwrap();
    clock.advance(Duration::from_secs(3600));
    assert!(matches!(
        ws_inc(&socket, "n").await,
        Err(Error::SessionMissing)
    ));
    assert_eq!(
        socket.session_id().await.expect("mapping"),
        None,
        "the mapping followed the destroy"
    );
}

/// Review finding: the per-session lock is not re-entrant; asking for it again from the
/// handler that holds it fails fast instead of hanging (S3).
#[tokio::test]
async fn s3_a_nested_with_session_on_the_same_session_is_an_error_not_a_deadlock() {
    let (bridge, _) = bridge_with_store();
    let mut b = Browser::new();
    http_count(&mut b, &bridge, "n").await;
    let socket = bridge.bind_socket(&handshake(&b)).await.unwrap();
    let nested = tokio::time::timeout(
        Duration::from_secs(5),
        socket.with_session(async |ctx| {
            let inner = ctx.socket().clone();
            inner.with_session(async |_| ()).await
        }),
    )
    .await
    .expect("no deadlock")
    .unwrap();
    assert!(matches!(nested, Err(Error::Reentrant)));
    assert_eq!(bridge.active_locks(), 0);
}

/// Review finding: a session that dies while a handler runs (expired and dropped by a
/// reader) is not resurrected, and the caller gets the missing-session outcome (S3, S4).
#[tokio::test]
async fn s4_a_session_that_dies_during_the_handler_yields_the_missing_outcome() {
    let clock = ManualClock::new(0);
    let bridge = SessionBridge::builder()
        .key("app.sid")
        .keys([KEY_A])
        .clock(clock.clone())
        .max_age(Duration::from_secs(3600))
        .build()
        .unwrap();
    let mut b = Browser::new();
    http_count(&mut b, &bridge, "n").await;
    let socket = bridge.bind_socket(&handshake(&b)).await.unwrap();
    let request = b.build_request();
    let outcome = socket
        .with_session_or_else(
            async |ctx| {
                ctx.insert_value("late", json!(true));
                clock.advance(Duration::from_secs(3600));
                // An HTTP read sees the expired record and drops it (no lock needed).
                let reader = bridge.begin_request(request.headers());
                assert!(reader.session().data().await.unwrap().is_empty());
                "saved"
            },
            || "missing",
        )
        .await
        .unwrap();
    assert_eq!(outcome, "missing");
    assert_eq!(bridge.mapped_sessions(), 0, "not resurrected");
}

/// Attack 1 of the security review (S1): the client cookie alone is not a credential. Alice
/// logs in; a socket that presents only her client cookie (no session cookie, or a broken
/// one) never sees that session, neither reading nor writing, and is bound to no client (it
/// joins no room); nor does it see the session her browser creates after a logout (attack 2
/// of the second review). A socket that proved the pair follows the browser's next session.
#[tokio::test]
async fn s1_the_client_cookie_alone_never_yields_the_session_of_the_handshake() {
    let (bridge, _) = bridge_with_store();
    let mut alice = Browser::new();
    http_count(&mut alice, &bridge, "secret").await;
    let full = handshake(&alice);
    let client_only = {
        let mut b = alice.clone();
        b.jar.remove("app.sid");
        handshake(&b)
    };
    let broken = {
        let mut b = alice.clone();
        if let Some(v) = b.jar.get_mut("app.sid") {
            v.pop();
        }
        handshake(&b)
    };
    for (name, headers) in [
        ("client cookie only", &client_only),
        ("broken session cookie", &broken),
    ] {
        let socket = bridge.bind_socket(headers).await.unwrap();
        assert_eq!(socket.client_id(), None, "{name}: bound to no client");
        assert_eq!(socket.room(), None, "{name}: in no room");
        assert_eq!(
            socket.session_id().await.expect("mapping"),
            None,
            "{name}: no session id"
        );
        let read = socket.with_session(async |ctx| ctx.data().clone()).await;
        assert!(
            matches!(read, Err(Error::SessionMissing)),
            "{name}: {read:?}"
        );
        let write = socket
            .with_session(async |ctx| ctx.insert("evil", true))
            .await;
        assert!(matches!(write, Err(Error::SessionMissing)), "{name}");
    }
    // The real pair still works, and nothing was written by the cookie-only sockets.
    let socket = bridge.bind_socket(&full).await.unwrap();
    let data = socket
        .with_session(async |ctx| ctx.data().clone())
        .await
        .unwrap();
    assert_eq!(data.get("secret"), Some(&json!(1)));
    assert!(!data.contains_key("evil"));

    // Logout, then a new session over HTTP (no login): the cookie-only socket never sees it
    // (S1: its client held a session it did not prove), the socket that proved the pair does
    // (the seed's "a reset and re-created session is seen by the open socket").
    let watcher = bridge.bind_socket(&client_only).await.unwrap();
    alice
        .request(&bridge, |s| async move { s.destroy().await.unwrap() })
        .await;
    http_count(&mut alice, &bridge, "fresh").await;
    let spied = watcher
        .with_session(async |ctx| ctx.get::<u64>("fresh"))
        .await;
    assert!(
        matches!(spied, Err(Error::SessionMissing)),
        "S1: a client-cookie-only socket followed the browser's next session: {spied:?}"
    );
    let seen = socket
        .with_session(async |ctx| ctx.get::<u64>("fresh"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen, Some(1), "the proved socket follows the new session");
}

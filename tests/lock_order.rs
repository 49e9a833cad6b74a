//! S3 and the crate docs' "Concurrency: what is guaranteed": every writer of a session takes
//! its lock (an HTTP commit for its write, `set_by_id`, `destroy_by_id`, cleanup), and waiters
//! run first come, first served. Each test holds a socket's lock, starts the writers as pinned
//! futures, polls them by hand (no sleeps, no runtime), checks that they wait and the store is
//! untouched, releases the lock and checks they complete in the order they asked, even when
//! polled in the reverse order.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use common::{Browser, Journal, KEY_A, poll_once};
use futures::channel::oneshot;
use futures::executor::block_on;
use http::{HeaderMap, HeaderValue, header};
use serde_json::json;
use session_bridge::{LiveStore, SessionBridge, SessionId, SocketSession};

struct World {
    bridge: SessionBridge,
    store: Arc<Journal<LiveStore>>,
    browser: Browser,
    sid: SessionId,
    socket: SocketSession,
}

fn world() -> World {
    let store = Arc::new(Journal::new(LiveStore::new()));
    let bridge = SessionBridge::builder()
        .key("app.sid")
        .keys([KEY_A])
        .store(Arc::clone(&store))
        .build()
        .unwrap();
    let mut browser = Browser::new();
    let sid = block_on(browser.request(&bridge, |s| async move {
        s.insert("n", 1).await.unwrap();
        s.session_id().await.unwrap().unwrap()
    }))
    .value;
    let mut handshake = browser.build_request().headers().clone();
    handshake.insert(header::HOST, HeaderValue::from_static("localhost:3000"));
    let socket = block_on(bridge.bind_socket(&handshake)).unwrap();
    assert_eq!(
        block_on(socket.session_id()).expect("mapping").as_ref(),
        Some(&sid)
    );
    World {
        bridge,
        store,
        browser,
        sid,
        socket,
    }
}

type Waiter<'a> = (&'static str, Pin<Box<dyn Future<Output = String> + 'a>>);

/// The four writers the docs promise wait for the lock, in the order they are started.
fn writers<'a>(w: &'a World, request: session_bridge::RequestContext) -> Vec<Waiter<'a>> {
    let set_data = json!({"admin": true}).as_object().cloned();
    vec![
        (
            "http commit",
            Box::pin(async move {
                let mut out = HeaderMap::new();
                format!("{:?}", request.commit(&mut out).await)
            }),
        ),
        (
            "set_by_id",
            Box::pin(
                async move { format!("{:?}", w.bridge.set_by_id(&w.sid, set_data, None).await) },
            ),
        ),
        (
            "destroy_by_id",
            Box::pin(async move { format!("{:?}", w.bridge.destroy_by_id(&w.sid).await) }),
        ),
        (
            "cleanup",
            Box::pin(async move { format!("{:?}", w.bridge.cleanup().await) }),
        ),
    ]
}

/// An HTTP request of the browser that has read the session and changed a key; its commit is
/// what must wait.
fn loaded_request(w: &World) -> session_bridge::RequestContext {
    let request = w.bridge.begin_request(w.browser.build_request().headers());
    block_on(async {
        assert_eq!(request.session().get::<u64>("n").await.unwrap(), Some(1));
        request.session().insert("http", 1).await.unwrap();
    });
    request
}

/// Starts every waiter (one poll each, in order) and checks they all wait without writing.
fn start_and_check_pending(w: &World, waiters: &mut [Waiter<'_>]) {
    let before = w.store.entries();
    for (name, fut) in waiters.iter_mut() {
        assert!(
            poll_once(fut.as_mut()).is_none(),
            "{name} completed while a socket held the session's lock"
        );
    }
    // Poll again: a waiter must stay parked, not spin its way past the lock.
    for (name, fut) in waiters.iter_mut() {
        assert!(poll_once(fut.as_mut()).is_none(), "{name} (second poll)");
    }
    assert_eq!(
        w.store.entries(),
        before,
        "nothing reached the store while the lock was held"
    );
    assert_eq!(w.bridge.active_locks(), 1);
}

/// Drives the waiters to completion, polling them in REVERSE order each round (so a lock that
/// let any poller barge in would run the last one first); returns the completion order.
fn finish_in_reverse(waiters: Vec<Waiter<'_>>) -> Vec<(&'static str, String)> {
    let mut pending: Vec<Option<Waiter<'_>>> = waiters.into_iter().map(Some).collect();
    let mut done = Vec::new();
    for _round in 0..100 {
        for slot in pending.iter_mut().rev() {
            if let Some((name, fut)) = slot
                && let Some(out) = poll_once(fut.as_mut())
            {
                done.push((*name, out));
                *slot = None;
            }
        }
        if pending.iter().all(Option::is_none) {
            return done;
        }
    }
    let stuck: Vec<_> = pending.iter().flatten().map(|(n, _)| *n).collect();
    panic!("after 100 rounds of polls these writers never got the lock: {stuck:?}");
}

fn check_first_come_order(w: &World, done: &[(&'static str, String)], socket_wrote: bool) {
    let order: Vec<&str> = done.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        order,
        ["http commit", "set_by_id", "destroy_by_id", "cleanup"],
        "first come, first served: {done:?}"
    );
    assert_eq!(done[0].1, "Ok(())");
    assert_eq!(done[1].1, "Ok(true)");
    assert_eq!(done[2].1, "Ok(true)");
    assert_eq!(done[3].1, "Ok(0)");
    // The store saw the writes in that order too: the holder's, the HTTP merge, the
    // replacement, the destroy.
    let after_setup: Vec<(&str, String)> = w
        .store
        .entries()
        .into_iter()
        .skip(1) // the create of the first request
        .map(|e| (e.op, e.session))
        .collect();
    let mut expected = Vec::new();
    if socket_wrote {
        expected.push(("update", r#"{"n":1,"socket":1}"#.to_owned()));
        expected.push(("update", r#"{"http":1,"n":1,"socket":1}"#.to_owned()));
    } else {
        expected.push(("update", r#"{"http":1,"n":1}"#.to_owned()));
    }
    expected.push(("update", r#"{"admin":true}"#.to_owned()));
    expected.push(("destroy", String::new()));
    assert_eq!(after_setup, expected);
    assert_eq!(w.bridge.active_locks(), 0);
    assert_eq!(w.bridge.mapped_sessions(), 0);
}

#[test]
fn s3_a_writing_socket_handler_makes_commit_set_destroy_and_cleanup_wait_in_order() {
    let w = world();
    let request = loaded_request(&w);
    let (release, released) = oneshot::channel::<()>();
    let mut handler = Box::pin(w.socket.with_session(async move |ctx| {
        ctx.insert_value("socket", 1.into());
        released.await.unwrap();
    }));
    assert!(
        poll_once(handler.as_mut()).is_none(),
        "the handler holds the lock"
    );
    let mut waiters = writers(&w, request);
    start_and_check_pending(&w, &mut waiters);
    // The holder writes, then releases: the waiters follow, oldest first.
    release.send(()).unwrap();
    poll_once(handler.as_mut())
        .expect("the handler ends once released")
        .unwrap();
    let done = finish_in_reverse(waiters);
    check_first_come_order(&w, &done, true);
}

#[test]
fn s3_a_with_session_handler_blocked_on_a_channel_makes_the_writers_wait_in_order() {
    let w = world();
    let request = loaded_request(&w);
    let (release, released) = oneshot::channel::<()>();
    let mut handler = Box::pin(w.socket.with_session(async move |_ctx| {
        released.await.unwrap();
    }));
    assert!(
        poll_once(handler.as_mut()).is_none(),
        "the handler waits on its channel"
    );
    let mut waiters = writers(&w, request);
    start_and_check_pending(&w, &mut waiters);
    release.send(()).unwrap();
    poll_once(handler.as_mut())
        .expect("the handler ends once released")
        .unwrap();
    let done = finish_in_reverse(waiters);
    check_first_come_order(&w, &done, false);
}

#[test]
fn s3_a_waiter_that_gives_up_passes_its_turn_on() {
    let w = world();
    let request = loaded_request(&w);
    let (release, released) = oneshot::channel::<()>();
    let mut handler = Box::pin(w.socket.with_session(async move |_ctx| {
        released.await.unwrap();
    }));
    assert!(
        poll_once(handler.as_mut()).is_none(),
        "the handler holds the lock"
    );
    let mut waiters = writers(&w, request);
    start_and_check_pending(&w, &mut waiters);
    // set_by_id gives up (its future is dropped) before its turn.
    let dropped = waiters.remove(1);
    drop(dropped);
    release.send(()).unwrap();
    poll_once(handler.as_mut())
        .expect("the handler ends once released")
        .unwrap();
    let done = finish_in_reverse(waiters);
    let order: Vec<&str> = done.iter().map(|(n, _)| *n).collect();
    assert_eq!(order, ["http commit", "destroy_by_id", "cleanup"]);
    let ops: Vec<&str> = w.store.entries().iter().map(|e| e.op).collect();
    assert_eq!(ops, ["create", "update", "destroy"]);
    assert_eq!(w.bridge.active_locks(), 0);
}

//! The socketioxide glue with real sockets (S1, S6, M3's per-browser rooms): a `SocketIo`
//! service with the bridge's `bind_session` middleware, driven in process through its hyper
//! `Service` impl with hand-built engine.io v4 polling requests (as socketioxide's own
//! tests/fixture.rs does), handshakes carrying the browsers' Cookie headers. No network, no
//! sleeps: a long-poll that never answers fails after a bounded wait.
//!
//! Alice has two tabs, Bob one, and one socket has no cookies. `emit_to_client` must reach
//! exactly Alice's two sockets, and `disconnect_client` must disconnect exactly them.

#![cfg(feature = "socketioxide")]

mod common;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use common::{Browser, KEY_A};
use http::{Method, Request, Response, header};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper::service::Service as _;
use serde_json::{Value, json};
use session_bridge::SessionBridge;
use session_bridge::integrations::socketioxide::{
    OnSessionEnd, bind_session, disconnect_client, emit_to_client, forward_session_ends,
};
use socketioxide::SocketIo;
use socketioxide::handler::ConnectHandler as _;

type Body = Full<Bytes>;

/// How long one long-poll may wait for a packet that must come (a guard, not a sleep).
const POLL_GUARD: Duration = Duration::from_secs(5);

/// The socket.io service, type-erased: a request in, (status, body text) out.
type Caller = Rc<dyn Fn(Request<Body>) -> Pin<Box<dyn Future<Output = (u16, String)>>>>;

/// The socket.io service the glue runs in (everything that is not socket.io is a 404), with
/// `bind_session` on namespace `/`.
fn service(bridge: &SessionBridge) -> (Caller, SocketIo) {
    let not_found = hyper::service::service_fn(|_req: Request<Body>| async {
        let mut res = Response::new(Full::new(Bytes::new()));
        *res.status_mut() = http::StatusCode::NOT_FOUND;
        Ok::<_, Infallible>(res)
    });
    let (svc, io) = SocketIo::builder()
        .with_state(bridge.clone())
        .build_with_inner_svc(not_found);
    io.ns("/", (async || {}).with(bind_session));
    let call: Caller = Rc::new(move |req| {
        let svc = svc.clone();
        Box::pin(async move {
            let res = svc.call(req).await.expect("the service answers");
            let status = res.status().as_u16();
            let bytes = res.into_body().collect().await.unwrap().to_bytes();
            (status, String::from_utf8(bytes.to_vec()).unwrap())
        })
    });
    (call, io)
}

async fn send(
    svc: &Caller,
    method: Method,
    query: &str,
    cookie: Option<&str>,
    body: &str,
) -> (u16, String) {
    let mut req = Request::builder()
        .method(method)
        .uri(format!(
            "http://localhost:3000/socket.io/?EIO=4&transport=polling{query}"
        ))
        .header(header::HOST, "localhost:3000");
    if let Some(cookie) = cookie {
        req = req.header(header::COOKIE, cookie);
    }
    let req = req.body(Full::new(Bytes::from(body.to_owned()))).unwrap();
    tokio::time::timeout(POLL_GUARD, svc(req))
        .await
        .unwrap_or_else(|_| panic!("no answer within {POLL_GUARD:?} to {query:?}"))
}

/// One engine.io polling connection, bound to a socket.io socket on namespace `/`.
struct Tab<'a> {
    svc: &'a Caller,
    sid: String,
    name: &'static str,
}

impl<'a> Tab<'a> {
    /// The engine.io handshake (carrying the browser's cookies: the request socketioxide
    /// keeps as the socket's `req_parts`), then the socket.io CONNECT to `/`.
    async fn open(svc: &'a Caller, name: &'static str, cookie: Option<&str>) -> Self {
        let (status, open) = send(svc, Method::GET, "", cookie, "").await;
        assert_eq!(status, 200, "{name}: engine.io handshake: {open}");
        let open: Value = serde_json::from_str(open.strip_prefix('0').expect("an OPEN packet"))
            .expect("OPEN is JSON");
        let sid = open["sid"].as_str().expect("an engine.io sid").to_owned();
        let tab = Tab { svc, sid, name };
        let (status, ok) = send(svc, Method::POST, &tab.query(), None, "40").await;
        assert_eq!((status, ok.as_str()), (200, "ok"), "{name}: CONNECT sent");
        let packets = tab.poll_until(|p| p.starts_with('4')).await;
        assert!(
            packets.len() == 1 && packets[0].starts_with("40{"),
            "{name}: bind_session accepted the socket: {packets:?}"
        );
        tab
    }

    fn query(&self) -> String {
        format!("&sid={}", self.sid)
    }

    /// One long-poll: the packets the server had for this connection.
    async fn poll(&self) -> Vec<String> {
        let (status, text) = send(self.svc, Method::GET, &self.query(), None, "").await;
        if status != 200 {
            return vec![format!("HTTP {status}")];
        }
        let mut packets = Vec::new();
        for packet in text.split('\u{1e}') {
            if packet == "2" {
                // An engine.io heartbeat ping: answer it, it is not a socket.io packet.
                let (status, ok) = send(self.svc, Method::POST, &self.query(), None, "3").await;
                assert_eq!((status, ok.as_str()), (200, "ok"), "{}: pong", self.name);
            } else {
                packets.push(packet.to_owned());
            }
        }
        packets
    }

    /// Polls until a packet satisfies `last` (bounded); returns every packet seen.
    async fn poll_until(&self, last: impl Fn(&str) -> bool) -> Vec<String> {
        let mut seen = Vec::new();
        for _ in 0..10 {
            let packets = self.poll().await;
            let done = packets.iter().any(|p| last(p));
            seen.extend(packets);
            if done {
                return seen;
            }
        }
        panic!("{}: the awaited packet never came; got {seen:?}", self.name);
    }

    /// The socket.io events received until the broadcast marker `marker`.
    async fn events_until(&self, marker: &str) -> Vec<String> {
        let needle = format!(r#"42["{marker}""#);
        self.poll_until(|p| p.starts_with(&needle))
            .await
            .iter()
            .map(|p| match p.strip_prefix("42") {
                Some(event) => {
                    let v: Value = serde_json::from_str(event).expect("an EVENT is JSON");
                    format!("{}:{}", v[0].as_str().unwrap(), v[1])
                }
                None => p.clone(),
            })
            .collect()
    }
}

/// A browser with a session; its Cookie header and client id.
fn browser_with_session(bridge: &SessionBridge, who: &str) -> (String, session_bridge::ClientId) {
    let mut b = Browser::new();
    let who = who.to_owned();
    let cid = futures::executor::block_on(b.request(bridge, |s| async move {
        s.insert("user", who).await.unwrap();
        s.client_id()
    }))
    .value;
    let cookie = b
        .build_request()
        .headers()
        .get(header::COOKIE)
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    (cookie, cid)
}

#[tokio::test]
async fn s6_emit_to_client_and_disconnect_client_reach_exactly_that_browsers_sockets() {
    let bridge = SessionBridge::builder()
        .key("app.sid")
        .keys([KEY_A])
        .build()
        .unwrap();
    let (svc, io) = service(&bridge);
    let (alice_cookie, alice) = browser_with_session(&bridge, "alice");
    let (bob_cookie, bob) = browser_with_session(&bridge, "bob");

    let alice_1 = Tab::open(&svc, "alice tab 1", Some(&alice_cookie)).await;
    let alice_2 = Tab::open(&svc, "alice tab 2", Some(&alice_cookie)).await;
    let bob_1 = Tab::open(&svc, "bob", Some(&bob_cookie)).await;
    let anonymous = Tab::open(&svc, "no cookies", None).await;

    // The per-browser rooms (joined by bind_session) hold exactly each browser's sockets.
    assert_eq!(io.sockets().len(), 4);
    assert_eq!(io.within(bridge.client_room(&alice)).sockets().len(), 2);
    assert_eq!(io.within(bridge.client_room(&bob)).sockets().len(), 1);

    // emit_to_client: to Alice, then to Bob, then a broadcast marker to everyone. Each
    // socket's queue, read up to the marker, shows what it was sent.
    emit_to_client(&io, &bridge, &alice, "note", &json!("for alice"))
        .await
        .unwrap();
    emit_to_client(&io, &bridge, &bob, "note", &json!("for bob"))
        .await
        .unwrap();
    io.emit("marker", &1).await.unwrap();
    for tab in [&alice_1, &alice_2] {
        assert_eq!(
            tab.events_until("marker").await,
            [r#"note:"for alice""#, "marker:1"],
            "{}",
            tab.name
        );
    }
    assert_eq!(
        bob_1.events_until("marker").await,
        [r#"note:"for bob""#, "marker:1"]
    );
    assert_eq!(anonymous.events_until("marker").await, ["marker:1"]);

    // disconnect_client: exactly Alice's two sockets get the namespace DISCONNECT.
    disconnect_client(&io, &bridge, &alice).await.unwrap();
    for tab in [&alice_1, &alice_2] {
        let packets = tab.poll_until(|p| p == "41").await;
        assert_eq!(packets, ["41"], "{}", tab.name);
    }
    assert_eq!(io.within(bridge.client_room(&alice)).sockets().len(), 0);
    assert_eq!(io.sockets().len(), 2, "Bob's and the anonymous socket stay");
    io.emit("marker", &2).await.unwrap();
    assert_eq!(
        bob_1.events_until("marker").await,
        ["marker:2"],
        "no DISCONNECT for Bob"
    );
    assert_eq!(anonymous.events_until("marker").await, ["marker:2"]);
    // Bob's socket still works with its session.
    emit_to_client(&io, &bridge, &bob, "note", &json!("still here"))
        .await
        .unwrap();
    io.emit("marker", &3).await.unwrap();
    assert_eq!(
        bob_1.events_until("marker").await,
        [r#"note:"still here""#, "marker:3"]
    );
}

/// S6: session boundaries reach the sockets. A regenerate (login) over HTTP tells exactly
/// that browser's sockets `session:ended` with the reason, a logout (destroy) likewise, and
/// with `NotifyAndDisconnect` they are disconnected too; other browsers hear nothing.
#[tokio::test]
async fn s6_regenerate_and_destroy_tell_that_browsers_sockets_and_nobody_else() {
    for on_end in [OnSessionEnd::Notify, OnSessionEnd::NotifyAndDisconnect] {
        let bridge = SessionBridge::builder()
            .key("app.sid")
            .keys([KEY_A])
            .build()
            .unwrap();
        let (svc, io) = service(&bridge);
        let notices = tokio::spawn(forward_session_ends(io.clone(), bridge.clone(), on_end));
        let mut alice = Browser::new();
        alice
            .request(&bridge, |s| async move {
                s.insert("user", "alice").await.unwrap()
            })
            .await;
        let cookie = |b: &Browser| {
            b.build_request().headers()[header::COOKIE]
                .to_str()
                .unwrap()
                .to_owned()
        };
        let (bob_cookie, _) = browser_with_session(&bridge, "bob");
        let alice_tab = Tab::open(&svc, "alice", Some(&cookie(&alice))).await;
        let bob_tab = Tab::open(&svc, "bob", Some(&bob_cookie)).await;

        // Login again: the session moves, the old client id's sockets are told.
        alice
            .request(&bridge, |s| async move { s.regenerate().await.unwrap() })
            .await;
        let ended = r#"session:ended:{"reason":"regenerated"}"#;
        match on_end {
            OnSessionEnd::Notify => {
                // The notice comes from a spawned task: wait for it (bounded polls).
                let heard = alice_tab.poll_until(|p| p.contains("session:ended")).await;
                assert_eq!(heard, [format!("42[\"session:ended\",{}]", &ended[14..])]);
                // A reconnecting tab (new cookies) binds to the new session; a logout
                // tells it `destroyed`.
                let again = Tab::open(&svc, "alice again", Some(&cookie(&alice))).await;
                alice
                    .request(&bridge, |s| async move { s.destroy().await.unwrap() })
                    .await;
                let heard = again.poll_until(|p| p.contains("session:ended")).await;
                assert_eq!(heard, [r#"42["session:ended",{"reason":"destroyed"}]"#]);
                // Both notices are out; Bob heard neither.
                io.emit("marker", &2).await.unwrap();
                assert_eq!(bob_tab.events_until("marker").await, ["marker:2"]);
            }
            OnSessionEnd::NotifyAndDisconnect => {
                let packets = alice_tab.poll_until(|p| p == "41").await;
                assert!(
                    packets
                        .iter()
                        .any(|p| p.contains(r#""reason":"regenerated""#)),
                    "{packets:?}"
                );
                assert_eq!(packets.last().map(String::as_str), Some("41"));
                io.emit("marker", &3).await.unwrap();
                assert_eq!(bob_tab.events_until("marker").await, ["marker:3"]);
            }
            _ => unreachable!(),
        }
        notices.abort();
    }
}

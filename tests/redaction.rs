//! L1: no raw session id, client id, cookie value, signing key or session data in any `Debug`
//! (or `Display`) output. Every public type that holds one of them is built here holding
//! sentinels, formatted, and searched for every sentinel, including any 10-character window of
//! the ids and cookie values (a truncated id is still a leak).

mod common;

use std::sync::Arc;

use common::{Browser, Probe};
use futures::executor::block_on;
use http::{HeaderMap, HeaderValue, header};
use session_bridge::{Error, Key, LiveStore, Record, SessionBridge, Store, clock::ManualClock};

const DATA_KEY: &str = "secretkey-sentinel";
const DATA_VALUE: &str = "s3cr3t-sentinel-data";
const KEY_TEXT: &str = "KEYSENTINEL-KEYSENTINEL-KEYSENTI";

struct Sentinels(Vec<String>);

impl Sentinels {
    fn add_secret(&mut self, s: &str) {
        // The whole value and every 10-character window of it.
        self.0.push(s.to_owned());
        let chars: Vec<char> = s.chars().collect();
        for w in chars.windows(10) {
            self.0.push(w.iter().collect());
        }
    }

    #[track_caller]
    fn check(&self, what: &str, text: &str) {
        for s in &self.0 {
            assert!(
                !text.contains(s.as_str()),
                "{what} shows the secret {s:?}: {text}"
            );
        }
    }
}

struct World {
    bridge: SessionBridge,
    store: Arc<Probe<LiveStore>>,
    browser: Browser,
    cid: session_bridge::ClientId,
    sid: session_bridge::SessionId,
    secrets: Sentinels,
}

fn world() -> World {
    let clock = ManualClock::new(1_700_000_000_000);
    let store = Arc::new(Probe::new(LiveStore::with_clock(clock.clone())));
    let bridge = SessionBridge::builder()
        .key("app.sid")
        .keys([KEY_TEXT])
        .clock(clock)
        .store(Arc::clone(&store))
        .max_session_bytes(4096)
        .build()
        .unwrap();
    let mut browser = Browser::new();
    let (cid, sid) = block_on(browser.request(&bridge, |s| async move {
        s.insert(DATA_KEY, DATA_VALUE).await.unwrap();
        (s.client_id(), s.session_id().await.unwrap().unwrap())
    }))
    .value;
    let mut secrets = Sentinels(vec![
        DATA_KEY.into(),
        DATA_VALUE.into(),
        "KEYSENTINEL".into(),
    ]);
    secrets.add_secret(cid.as_str());
    secrets.add_secret(sid.as_str());
    secrets.add_secret(browser.get("app.sid").unwrap());
    secrets.add_secret(browser.get("app.sid.cid").unwrap());
    World {
        bridge,
        store,
        browser,
        cid,
        sid,
        secrets,
    }
}

fn handshake(b: &Browser) -> HeaderMap {
    let mut h = b.build_request().headers().clone();
    h.insert(header::HOST, HeaderValue::from_static("localhost:3000"));
    h
}

#[test]
fn l1_bridge_request_session_socket_and_guards_redact_ids_and_data() {
    let w = world();
    let s = &w.secrets;
    s.check("SessionBridge", &format!("{:?}", w.bridge));
    s.check("SessionBridge (alternate)", &format!("{:#?}", w.bridge));

    let ctx = w.bridge.begin_request(w.browser.build_request().headers());
    block_on(async {
        assert_eq!(
            ctx.session()
                .get::<String>(DATA_KEY)
                .await
                .unwrap()
                .as_deref(),
            Some(DATA_VALUE),
            "loaded, so the Debug output below has the data to leak"
        );
        ctx.session().insert("another", DATA_VALUE).await.unwrap();
    });
    s.check("RequestContext", &format!("{ctx:?}"));
    s.check("RequestContext (alternate)", &format!("{ctx:#?}"));
    s.check("Session", &format!("{:?}", ctx.session()));
    block_on(ctx.commit(&mut HeaderMap::new())).unwrap();

    let socket = block_on(w.bridge.bind_socket(&handshake(&w.browser))).unwrap();
    assert_eq!(
        block_on(socket.session_id()).expect("mapping").as_ref(),
        Some(&w.sid)
    );
    s.check("SocketSession", &format!("{socket:?}"));
    s.check("SocketSession (alternate)", &format!("{socket:#?}"));
    let ctx_debug = block_on(socket.with_session(async |ctx| {
        assert!(ctx.data().contains_key(DATA_KEY));
        format!("{ctx:?} {ctx:#?}")
    }))
    .unwrap();
    s.check("SessionContext", &ctx_debug);
    for id in [format!("{:?}", w.sid), format!("{:?}", w.cid)] {
        s.check("SessionId / ClientId", &id);
    }
    let mut browser_debug = session_bridge::testing::Browser::new();
    browser_debug.set_cookie("app.sid", w.browser.get("app.sid").unwrap());
    s.check("testing::Browser", &format!("{browser_debug:?}"));
}

#[test]
fn l1_records_events_streams_keys_tags_and_stores_redact() {
    let w = world();
    let s = &w.secrets;
    let mut events = w.bridge.events();
    // Events with both ids: a change, then a destroy.
    block_on(
        w.bridge.set_by_id(
            &w.sid,
            serde_json::json!({ DATA_KEY: DATA_VALUE, "n": 2 })
                .as_object()
                .cloned(),
            None,
        ),
    )
    .unwrap();
    s.check("EventStream (buffered)", &format!("{events:?} {events:#?}"));
    s.check(
        "LiveStore",
        &format!("{:?} {:#?}", w.store.inner, w.store.inner),
    );
    let record = block_on(w.store.inner.get(w.sid.as_str()))
        .unwrap()
        .expect("stored");
    assert!(record.session.contains(DATA_VALUE));
    s.check("Record", &format!("{record:?} {record:#?}"));
    block_on(w.bridge.destroy_by_id(&w.sid)).unwrap();
    let mut seen = 0;
    while let Some(event) = events.try_next() {
        seen += 1;
        s.check("BridgeEvent", &format!("{event:?} {event:#?}"));
    }
    assert_eq!(seen, 2, "a SessionSet and a SessionDestroy were formatted");

    let key = Key::try_from(KEY_TEXT).unwrap();
    s.check("Key", &format!("{key:?} {key:#?}"));
    assert_eq!(
        format!("{key:?}"),
        "Key(..)",
        "a key shows it is there, not its bytes"
    );
    let tag = w.bridge.client_tag(&w.cid);
    s.check("IdTag", &format!("{tag:?} {tag:#?} {tag}"));
    s.check("client_room", &w.bridge.client_room(&w.cid));

    let planted = Record::new(
        format!(r#"{{"{DATA_KEY}":"{DATA_VALUE}"}}"#),
        u64::MAX,
        1000,
    );
    s.check("Record::new", &format!("{planted:?}"));
}

/// Each error variant the flows can produce, made with sentinel ids and data around it.
#[test]
fn l1_every_error_variant_redacts_in_debug_and_display() {
    let mut errors: Vec<(&str, Error, Sentinels)> = Vec::new();

    // Store: a failing store.
    let w = world();
    w.store
        .fail
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let ctx = w.bridge.begin_request(w.browser.build_request().headers());
    errors.push((
        "Store",
        block_on(ctx.session().data()).unwrap_err(),
        world_secrets(&w),
    ));
    w.store
        .fail
        .store(false, std::sync::atomic::Ordering::SeqCst);

    // SessionTooLarge, Json, NotMapped, SessionMissing, ForbiddenOrigin, Reentrant.
    let w = world();
    let ctx = w.bridge.begin_request(w.browser.build_request().headers());
    block_on(ctx.session().insert("big", DATA_VALUE.repeat(400))).unwrap();
    errors.push((
        "SessionTooLarge",
        block_on(ctx.commit(&mut HeaderMap::new())).unwrap_err(),
        world_secrets(&w),
    ));
    let ctx = w.bridge.begin_request(w.browser.build_request().headers());
    errors.push((
        "Json",
        block_on(ctx.session().get::<u64>(DATA_KEY)).unwrap_err(),
        world_secrets(&w),
    ));
    errors.push((
        "NotMapped",
        block_on(w.bridge.set_by_id(&w.cid.as_str().into(), None, None)).unwrap_err(),
        world_secrets(&w),
    ));
    let anonymous = block_on(w.bridge.bind_socket(&HeaderMap::new())).unwrap();
    errors.push((
        "SessionMissing",
        block_on(anonymous.with_session(async |_| ())).unwrap_err(),
        world_secrets(&w),
    ));
    let mut foreign = handshake(&w.browser);
    foreign.insert(
        header::ORIGIN,
        HeaderValue::from_static("https://evil.example"),
    );
    errors.push((
        "ForbiddenOrigin",
        block_on(w.bridge.bind_socket(&foreign)).unwrap_err(),
        world_secrets(&w),
    ));
    let socket = block_on(w.bridge.bind_socket(&handshake(&w.browser))).unwrap();
    let nested = block_on(socket.with_session(async |ctx| {
        let inner = ctx.socket().clone();
        inner.with_session(async |_| ()).await
    }))
    .unwrap();
    errors.push(("Reentrant", nested.unwrap_err(), world_secrets(&w)));

    // InvalidOption: a too-short key made of sentinel text.
    let bad = SessionBridge::builder()
        .key("app.sid")
        .keys(["KEYSENTINEL-short"])
        .build()
        .unwrap_err();
    errors.push(("InvalidOption", bad, world_secrets(&w)));

    for (name, err, secrets) in &errors {
        let text = format!(
            "{err:?} | {err:#?} | {err} | {:?}",
            std::error::Error::source(err)
        );
        secrets.check(name, &text);
    }
}

fn world_secrets(w: &World) -> Sentinels {
    let mut s = Sentinels(vec![
        DATA_KEY.into(),
        DATA_VALUE.into(),
        "KEYSENTINEL".into(),
    ]);
    s.add_secret(w.cid.as_str());
    s.add_secret(w.sid.as_str());
    s
}

#[test]
fn l1_conformance_failures_redact_records() {
    use session_bridge::{SyncStore, testing};
    // A store that returns a record full of sentinel data for every id.
    struct Liar;
    impl SyncStore for Liar {
        fn get(&self, _: &str) -> session_bridge::Result<Option<Record>> {
            Ok(Some(Record::new(
                format!(r#"{{"{DATA_KEY}":"{DATA_VALUE}"}}"#),
                u64::MAX,
                1,
            )))
        }
        fn create(&self, _: &str, _: Record) -> session_bridge::Result<bool> {
            Ok(true)
        }
        fn update(&self, _: &str, _: Record, _: u64) -> session_bridge::Result<bool> {
            Ok(true)
        }
        fn destroy(&self, _: &str, _: u64) -> session_bridge::Result<bool> {
            Ok(true)
        }
    }
    let failure = block_on(testing::conformance(&Liar)).unwrap_err();
    let text = format!("{failure:?} {failure}");
    assert!(
        text.contains("Record"),
        "the failure shows the record: {text}"
    );
    assert!(
        !text.contains(DATA_VALUE) && !text.contains(DATA_KEY),
        "{text}"
    );
}

#[cfg(feature = "socketioxide")]
#[test]
fn l1_socketioxide_glue_types_redact() {
    use session_bridge::integrations::socketioxide::{ConnectRejection, NotBound};
    let w = world();
    for text in [
        format!(
            "{:?} {}",
            ConnectRejection::ForbiddenOrigin,
            ConnectRejection::ForbiddenOrigin
        ),
        format!(
            "{:?} {}",
            ConnectRejection::Unavailable,
            ConnectRejection::Unavailable
        ),
        format!("{NotBound:?} {NotBound}"),
    ] {
        w.secrets.check("socketioxide glue", &text);
    }
}

#[cfg(feature = "poem")]
#[test]
fn l1_poem_glue_types_redact() {
    use poem::Middleware as _;
    use session_bridge::integrations::poem::SessionMiddleware;
    let w = world();
    let middleware = SessionMiddleware::new(w.bridge.clone());
    w.secrets.check(
        "poem SessionMiddleware",
        &format!("{middleware:?} {middleware:#?}"),
    );
    #[derive(Debug)]
    struct Ok;
    impl poem::Endpoint for Ok {
        type Output = &'static str;
        async fn call(&self, _: poem::Request) -> poem::Result<&'static str> {
            poem::Result::Ok("ok")
        }
    }
    let endpoint = middleware.transform(Ok);
    w.secrets
        .check("poem SessionEndpoint", &format!("{endpoint:?}"));
    #[cfg(feature = "socketioxide")]
    {
        let sio = session_bridge::integrations::poem::SocketIoEndpoint::new(());
        w.secrets
            .check("poem SocketIoEndpoint", &format!("{sio:?}"));
    }
}

#[cfg(feature = "salvo")]
#[test]
fn l1_salvo_glue_types_redact() {
    use session_bridge::integrations::salvo::SessionHandler;
    let w = world();
    let handler = SessionHandler::new(w.bridge.clone());
    w.secrets
        .check("salvo SessionHandler", &format!("{handler:?} {handler:#?}"));
}

#[cfg(feature = "axum")]
#[test]
fn l1_axum_glue_types_redact() {
    use session_bridge::integrations::axum::SessionLayer;
    use tower::Layer as _;
    let w = world();
    let layer = SessionLayer::new(w.bridge.clone());
    w.secrets
        .check("axum SessionLayer", &format!("{layer:?} {layer:#?}"));
    let service = layer.layer(tower::service_fn(async |_: http::Request<()>| {
        Ok::<_, std::convert::Infallible>(http::Response::new(()))
    }));
    w.secrets
        .check("axum SessionService", &format!("{service:?} {service:#?}"));
}

//! L1 in logs: no raw session id, client id, cookie value or session data in any log line,
//! tracing field or span field, nor in the `Display` / `Debug` of any error a flow returns.
//!
//! Every test installs a small capturing `tracing` subscriber on its own thread
//! (`tracing::subscriber::set_default`, restored when the test ends, so tests never see each
//! other's events), drives log sites and error paths with sentinels everywhere a secret can
//! be (ids from an id generator whose ids contain `SENTINEL`, session data containing
//! `DATASENTINEL`, a signing key containing `KEYSENTINEL`, forged cookie values containing
//! `COOKIESENTINEL`, an `Origin` containing `ORIGINSENTINEL`), then searches every captured
//! event message, event field and span field for each sentinel, for the real ids and cookie
//! values, and for every 10-character window of those (a truncated id is still a leak).
//!
//! Each test also asserts that the log site it aims at really fired (by its message), so a
//! test whose site stopped logging, or that no longer reaches it, fails instead of passing
//! with nothing to search.
//!
//! A store error keeps the backend's own error as its `source` (ST4: the operator needs it).
//! That text is the store's, not ours: it is marked with `BACKEND_MSG`, and our log lines and
//! our `Display` must not repeat it (a backend may well quote the key it failed on); see
//! `l1_a_backend_message_naming_the_sid_stays_in_source`.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::capture::Logs;
use common::{Browser, poll_once};
use futures::executor::block_on;
use http::{HeaderMap, HeaderValue, header};
use serde_json::{Map, Value, json};
use session_bridge::clock::ManualClock;
use session_bridge::id::{IdGen, RandomIdGen, SequentialIdGen};
use session_bridge::{
    ClientId, Error, LiveStore, Record, SessionBridge, SessionId, Store, SyncStore,
};

// ---------------------------------------------------------------------------------------
// The capturing subscriber (tests/common/capture.rs), and what this file checks with it.

impl Logs {
    /// No captured line shows any secret.
    #[track_caller]
    fn assert_clean(&self, secrets: &Secrets) {
        let lines = self.lines();
        for line in &lines {
            secrets.check("log line", line);
            assert!(
                !line.contains(BACKEND_MSG),
                "a log line repeats the store backend's own message: {line}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Sentinels.

const DATA_KEY: &str = "DATASENTINEL-key";
const DATA_VALUE: &str = "DATASENTINEL-value";
const KEY_TEXT: &str = "KEYSENTINEL-KEYSENTINEL-KEYSENTI";
const FORGED: &str = "COOKIESENTINEL-forged-cookie-value";
const ORIGIN: &str = "https://ORIGINSENTINEL.example";
/// The store backend's own error text (not ours: it may reach `source()`, never our lines).
const BACKEND_MSG: &str = "BACKEND-FAULT-q7Zx";

/// The texts that must never show, and every 10-character window of the real ids and
/// cookie values.
#[derive(Clone)]
struct Secrets(Vec<String>);

impl Secrets {
    fn new() -> Self {
        Secrets(vec![
            // Every id of `SentinelIds`, every data key/value, the key, forged cookies, origin.
            "SENTINEL".into(),
        ])
    }

    fn add(&mut self, s: &str) {
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

    /// `Display`, alternate `Debug` and `Debug` of an error, and the `Display` of its source
    /// chain unless it is the backend's (`Error::Store`).
    #[track_caller]
    fn check_error(&self, what: &str, err: &Error) {
        let display = err.to_string();
        self.check(what, &display);
        assert!(!display.contains(BACKEND_MSG), "{what}: {display}");
        self.check(what, &format!("{err:?} {err:#?}"));
        if !matches!(err, Error::Store { .. }) {
            let mut source = std::error::Error::source(err);
            while let Some(s) = source {
                self.check(what, &s.to_string());
                source = s.source();
            }
        }
    }
}

/// Ids of the right shape (32 URL-safe characters) that all contain `SENTINEL`, with a random
/// tail so that windows of one never match unrelated text.
struct SentinelIds;

impl IdGen for SentinelIds {
    fn generate(&self) -> String {
        format!("SENTINELid{}", &RandomIdGen.generate()[10..])
    }
}

// ---------------------------------------------------------------------------------------
// A store that fails on demand, with the backend's message in its errors.

#[derive(Default)]
struct Faulty {
    inner: LiveStore,
    /// Operations that fail (`"*"`: all of them).
    fail: Mutex<Vec<&'static str>>,
    /// Fail only for this session id.
    only: Mutex<Option<String>>,
    /// `update` answers "the version moved" (a concurrent writer), forever.
    refuse_updates: AtomicBool,
    /// The backend's message quotes the key it failed on.
    echo_sid: AtomicBool,
}

impl Faulty {
    fn new(inner: LiveStore) -> Self {
        Faulty {
            inner,
            ..Faulty::default()
        }
    }

    fn fail(&self, ops: &[&'static str]) {
        *self.fail.lock().unwrap() = ops.to_vec();
    }

    fn fail_all(&self) {
        self.fail(&["*"]);
    }

    fn heal(&self) {
        self.fail(&[]);
        *self.only.lock().unwrap() = None;
    }

    fn only_for(&self, sid: &SessionId) {
        *self.only.lock().unwrap() = Some(sid.as_str().to_owned());
    }

    fn check(&self, op: &'static str, sid: &str) -> session_bridge::Result<()> {
        let failing = {
            let ops = self.fail.lock().unwrap();
            ops.contains(&op) || ops.contains(&"*")
        };
        let targeted = self
            .only
            .lock()
            .unwrap()
            .as_deref()
            .is_none_or(|only| only == sid);
        if failing && targeted {
            let msg = if self.echo_sid.load(Ordering::SeqCst) {
                format!("{BACKEND_MSG}: {op} failed on key sess:{sid}")
            } else {
                format!("{BACKEND_MSG}: {op} failed")
            };
            return Err(Error::store(op, std::io::Error::other(msg)));
        }
        Ok(())
    }
}

impl Faulty {
    /// Plants `record` under `sid` (`LiveStore::put`): a record the test makes by hand.
    async fn set(&self, sid: &str, record: Record) -> session_bridge::Result<bool> {
        self.inner.put(sid, record);
        Ok(true)
    }
}

impl Store for Faulty {
    async fn get(&self, sid: &str) -> session_bridge::Result<Option<Record>> {
        self.check("get", sid)?;
        Store::get(&self.inner, sid).await
    }
    async fn create(&self, sid: &str, record: Record) -> session_bridge::Result<bool> {
        self.check("create", sid)?;
        Store::create(&self.inner, sid, record).await
    }
    async fn update(
        &self,
        sid: &str,
        record: Record,
        expected: u64,
    ) -> session_bridge::Result<bool> {
        self.check("update", sid)?;
        if self.refuse_updates.load(Ordering::SeqCst) {
            return Ok(false);
        }
        Store::update(&self.inner, sid, record, expected).await
    }
    async fn destroy(&self, sid: &str, expected: u64) -> session_bridge::Result<bool> {
        self.check("destroy", sid)?;
        Store::destroy(&self.inner, sid, expected).await
    }
    async fn list(&self) -> session_bridge::Result<Vec<String>> {
        self.check("list", "")?;
        Store::list(&self.inner).await
    }
    async fn optimize(&self, cleared: usize) -> session_bridge::Result<()> {
        self.check("optimize", "")?;
        Store::optimize(&self.inner, cleared).await
    }
}

// ---------------------------------------------------------------------------------------
// The world: a bridge with sentinel ids and key over a faulty store on a manual clock.

const T0: u64 = 1_700_000_000_000;
const DAY: Duration = Duration::from_secs(24 * 3600);

struct World {
    bridge: SessionBridge,
    clock: ManualClock,
    store: Arc<Faulty>,
    secrets: Secrets,
}

/// Browser, its client id and session id.
struct Login {
    browser: Browser,
    cid: ClientId,
    sid: SessionId,
}

fn builder(clock: &ManualClock, store: &Arc<Faulty>) -> session_bridge::SessionBridgeBuilder {
    SessionBridge::builder()
        .key("app.sid")
        .keys([KEY_TEXT])
        .ids(SentinelIds)
        .clock(clock.clone())
        .store(Arc::clone(store))
        .max_age(DAY)
        .max_session_bytes(4096)
}

fn world() -> World {
    let clock = ManualClock::new(T0);
    let store = Arc::new(Faulty::new(LiveStore::with_clock(clock.clone())));
    World {
        bridge: builder(&clock, &store).build().unwrap(),
        clock,
        store,
        secrets: Secrets::new(),
    }
}

impl World {
    /// A browser that logged in: a stored session holding the sentinel data. Its ids and
    /// both cookie values join the secrets.
    fn login(&mut self) -> Login {
        let mut browser = Browser::new();
        let (cid, sid) = block_on(browser.request(&self.bridge, |s| async move {
            s.insert(DATA_KEY, DATA_VALUE).await.unwrap();
            (s.client_id(), s.session_id().await.unwrap().unwrap())
        }))
        .value;
        assert!(cid.as_str().contains("SENTINEL") && sid.as_str().contains("SENTINEL"));
        self.secrets.add(cid.as_str());
        self.secrets.add(sid.as_str());
        for value in browser.jar.values() {
            self.secrets.add(value);
        }
        Login { browser, cid, sid }
    }
}

fn handshake(b: &Browser) -> HeaderMap {
    let mut h = b.build_request().headers().clone();
    h.insert(header::HOST, HeaderValue::from_static("localhost:3000"));
    h
}

fn sentinel_data() -> Map<String, Value> {
    json!({ DATA_KEY: DATA_VALUE })
        .as_object()
        .cloned()
        .unwrap()
}

/// A value whose serialization fails with a message quoting session data.
struct Unserializable;

impl serde::Serialize for Unserializable {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom(format!(
            "cannot store {DATA_VALUE}"
        )))
    }
}

// ---------------------------------------------------------------------------------------
// Builder: the two key warnings and every option error.

#[test]
fn l1_builder_warnings_and_option_errors_name_no_secret() {
    let logs = Logs::install();
    let secrets = Secrets::new();

    // Neither `key` nor `keys` (development keys asked for): both warnings.
    let bridge = SessionBridge::builder()
        .ids(SentinelIds)
        .ephemeral_keys(true)
        .build()
        .unwrap();
    logs.expect("no session cookie name (`key`) set");
    logs.expect("ephemeral signing keys");
    secrets.check("SessionBridge", &format!("{bridge:?}"));

    let base = || SessionBridge::builder().key("app.sid").keys([KEY_TEXT]);
    let errors: Vec<(&str, Error)> = vec![
        ("key", base().key("SENTINEL;bad").build().unwrap_err()),
        (
            "client_key",
            base().client_key("SENTINEL;bad").build().unwrap_err(),
        ),
        ("path", base().path("SENTINEL").build().unwrap_err()),
        ("path ;", base().path("/SENTINEL;x").build().unwrap_err()),
        ("domain", base().domain("SENTINEL bad").build().unwrap_err()),
        (
            "keys",
            SessionBridge::builder()
                .key("app.sid")
                .keys(["KEYSENTINEL-short"])
                .build()
                .unwrap_err(),
        ),
        (
            "max_age",
            base().max_age(Duration::from_secs(1)).build().unwrap_err(),
        ),
        (
            "client_max_age",
            base()
                .client_max_age(Duration::from_secs(1))
                .build()
                .unwrap_err(),
        ),
        (
            "auto_cleanup_interval",
            base()
                .auto_cleanup_interval(Duration::from_millis(1))
                .build()
                .unwrap_err(),
        ),
        (
            "max_session_bytes",
            base().max_session_bytes(1).build().unwrap_err(),
        ),
        ("event_buffer", base().event_buffer(0).build().unwrap_err()),
        (
            "same_site",
            base()
                .secure(false)
                .same_site(Some(session_bridge::SameSite::None))
                .build()
                .unwrap_err(),
        ),
        (
            "ids",
            base()
                .ids(SequentialIdGen::new("SENTINEL."))
                .build()
                .unwrap_err(),
        ),
    ];
    for (what, err) in &errors {
        assert!(
            matches!(err, Error::InvalidOption { .. }),
            "{what}: {err:?}"
        );
        secrets.check_error(what, err);
    }
    logs.assert_clean(&secrets);
}

#[test]
fn l1_builder_and_sequential_id_debug_redact() {
    let logs = Logs::install();
    let mut secrets = Secrets::new();
    let ids = SequentialIdGen::new("SENTINEL");
    let first = ids.generate();
    secrets.add(&first);
    // The next id it will hand out: prefix and counter together.
    secrets.add(&first.replace("00001", "00002"));
    let debug = format!("{ids:?} {ids:#?}");
    secrets.check("SequentialIdGen", &debug);
    assert!(debug.contains("SequentialIdGen"), "{debug}");

    let clock = ManualClock::new(T0);
    let store = Arc::new(Faulty::new(LiveStore::with_clock(clock.clone())));
    block_on(Faulty::set(
        &store,
        &first,
        Record::new(format!(r#"{{"{DATA_KEY}":"{DATA_VALUE}"}}"#), u64::MAX, 1),
    ))
    .unwrap();
    let b = builder(&clock, &store)
        .ids(ids)
        .domain("example.com")
        .allowed_origins(["https://app.example.com"]);
    let debug = format!("{b:?} {b:#?}");
    secrets.check("SessionBridgeBuilder", &debug);
    assert!(
        debug.contains("app.sid") && debug.contains("example.com"),
        "configuration stays visible: {debug}"
    );
    logs.assert_clean(&secrets);
}

// ---------------------------------------------------------------------------------------
// Store errors on every path that reaches the store.

#[test]
fn l1_store_failures_on_every_path_name_no_id() {
    let logs = Logs::install();
    let mut w = world();
    let a = w.login();
    let mut errors: Vec<(&str, Error)> = Vec::new();
    w.store.fail_all();

    // HTTP: a read, a destroy, a regenerate (at commit), a new session's create.
    let read = w.bridge.begin_request(&handshake(&a.browser));
    errors.push(("http get", block_on(read.session().data()).unwrap_err()));
    let mut b = a.browser.clone();
    errors.push((
        "http destroy",
        match block_on(b.try_request(&w.bridge, |s| async move { s.destroy().await })) {
            Ok(x) => x.value.unwrap_err(),
            Err(e) => e,
        },
    ));
    let mut fresh = Browser::new();
    errors.push((
        "http create",
        block_on(fresh.try_request(&w.bridge, |s| async move {
            s.insert(DATA_KEY, DATA_VALUE).await.unwrap();
        }))
        .unwrap_err(),
    ));
    // A loaded session whose update fails.
    w.store.fail(&["update"]);
    let mut b = a.browser.clone();
    errors.push((
        "http update",
        block_on(b.try_request(&w.bridge, |s| async move {
            s.insert("more", DATA_VALUE).await.unwrap();
        }))
        .unwrap_err(),
    ));
    w.store.fail(&["create"]);
    let mut b = a.browser.clone();
    errors.push((
        "http regenerate",
        block_on(b.try_request(&w.bridge, |s| async move {
            s.regenerate().await.unwrap();
        }))
        .unwrap_err(),
    ));

    // Socket: bound while the store works, then every call fails.
    w.store.heal();
    let socket = block_on(w.bridge.bind_socket(&handshake(&a.browser))).unwrap();
    w.store.fail_all();
    errors.push((
        "socket with_session",
        block_on(socket.with_session(async |ctx| ctx.data().len())).unwrap_err(),
    ));
    w.store.heal();
    w.store.fail(&["update"]);
    errors.push((
        "socket save",
        block_on(socket.with_session(async |ctx| {
            ctx.insert_value("ws", DATA_VALUE.into());
        }))
        .unwrap_err(),
    ));
    w.store.fail(&["destroy"]);
    errors.push((
        "socket destroy",
        block_on(socket.with_session(async |ctx| ctx.destroy())).unwrap_err(),
    ));

    // The bridge API by id and by client id, and cleanup.
    w.store.fail_all();
    errors.push((
        "get_by_id",
        block_on(w.bridge.get_by_id(&a.sid)).unwrap_err(),
    ));
    errors.push((
        "get_by_client_id",
        block_on(w.bridge.get_by_client_id(&a.cid)).unwrap_err(),
    ));
    errors.push((
        "set_by_id",
        block_on(w.bridge.set_by_id(&a.sid, Some(sentinel_data()), None)).unwrap_err(),
    ));
    errors.push((
        "set_by_client_id",
        block_on(
            w.bridge
                .set_by_client_id(&a.cid, Some(sentinel_data()), None),
        )
        .unwrap_err(),
    ));
    errors.push((
        "destroy_by_id",
        block_on(w.bridge.destroy_by_id(&a.sid)).unwrap_err(),
    ));
    errors.push((
        "destroy_by_client_id",
        block_on(w.bridge.destroy_by_client_id(&a.cid)).unwrap_err(),
    ));
    errors.push((
        "notify_store_set",
        block_on(w.bridge.notify_store_set(&a.sid, false)).unwrap_err(),
    ));
    errors.push(("cleanup list", block_on(w.bridge.cleanup()).unwrap_err()));
    w.store.fail(&["optimize"]);
    errors.push((
        "cleanup optimize",
        block_on(w.bridge.cleanup()).unwrap_err(),
    ));

    // A restarted node (same keys and store, empty mapping) binding a socket must read the
    // record named by the cookie: that read fails.
    w.store.heal();
    let node2 = builder(&w.clock, &w.store).build().unwrap();
    w.store.fail_all();
    errors.push((
        "bind_socket",
        block_on(node2.bind_socket(&handshake(&a.browser))).unwrap_err(),
    ));

    for (what, err) in &errors {
        assert!(matches!(err, Error::Store { .. }), "{what}: {err:?}");
        w.secrets.check_error(what, err);
        let source = std::error::Error::source(err).map(ToString::to_string);
        assert!(
            source.as_deref().is_some_and(|s| s.contains(BACKEND_MSG)),
            "{what}: the backend's error is kept as the source (ST4): {source:?}"
        );
    }
    logs.assert_clean(&w.secrets);
}

/// A backend whose message quotes the raw key it failed on: that text is reachable through
/// `source()` (it is the backend's), but no log line and no `Display` of ours repeats it.
#[test]
fn l1_a_backend_message_naming_the_sid_stays_in_source() {
    let logs = Logs::install();
    let mut w = world();
    let a = w.login();
    w.store.echo_sid.store(true, Ordering::SeqCst);
    w.store.fail_all();
    w.bridge.start_auto_cleanup(Some(Duration::from_secs(60)));
    let mut worker = Box::pin(w.bridge.auto_cleanup_worker());
    assert!(poll_once(worker.as_mut()).is_none());
    let ctx = w.bridge.begin_request(&handshake(&a.browser));
    let err = block_on(ctx.session().data()).unwrap_err();
    let source = std::error::Error::source(&err).unwrap().to_string();
    assert!(source.contains(a.sid.as_str()), "{source}");
    w.secrets.check("Display", &err.to_string());
    // The same failure in the one place that logs store errors (ST4): the cleanup loop
    // reading that record.
    w.store.fail(&["get"]);
    w.store.only_for(&a.sid);
    w.clock.advance(Duration::from_secs(60));
    assert!(poll_once(worker.as_mut()).is_none());
    logs.expect("auto cleanup failed");
    logs.assert_clean(&w.secrets);
}

// ---------------------------------------------------------------------------------------
// Corrupt records: the gateway's warning (HTTP, socket, cleanup).

#[test]
fn l1_corrupt_records_are_reported_by_tag_only() {
    let logs = Logs::install();
    let mut w = world();
    let texts = [
        format!(r#"["{DATA_VALUE}"]"#),
        format!(r#"{{"{DATA_KEY}": "{DATA_VALUE}"#),
        format!(r#""{DATA_VALUE}""#),
    ];
    // HTTP read.
    let a = w.login();
    block_on(Faulty::set(
        &w.store,
        a.sid.as_str(),
        Record::new(texts[0].clone(), u64::MAX, 1000),
    ))
    .unwrap();
    let ctx = w.bridge.begin_request(&handshake(&a.browser));
    // GW1: dropped and reported, and the request goes on without it.
    assert!(block_on(ctx.session().data()).unwrap().is_empty());
    // Socket.
    let b = w.login();
    let socket = block_on(w.bridge.bind_socket(&handshake(&b.browser))).unwrap();
    block_on(Faulty::set(
        &w.store,
        b.sid.as_str(),
        Record::new(texts[1].clone(), u64::MAX, 1000),
    ))
    .unwrap();
    let missing = block_on(socket.with_session(async |_| ()));
    assert!(matches!(missing, Err(Error::SessionMissing)), "{missing:?}");
    // Cleanup (counts it as cleared, logs the warning).
    let c = w.login();
    block_on(Faulty::set(
        &w.store,
        c.sid.as_str(),
        Record::new(texts[2].clone(), u64::MAX, 1000),
    ))
    .unwrap();
    assert_eq!(block_on(w.bridge.cleanup()).unwrap(), 1);

    assert_eq!(logs.count("dropped a corrupt session record"), 3);
    for line in logs.lines() {
        if line.contains("dropped a corrupt session record") {
            assert!(line.contains('#'), "the record is named by its tag: {line}");
        }
    }
    logs.assert_clean(&w.secrets);
}

// ---------------------------------------------------------------------------------------
// The other error variants the flows return.

#[test]
fn l1_size_json_mapping_socket_and_origin_errors_name_no_secret() {
    let logs = Logs::install();
    let mut w = world();
    let a = w.login();
    let mut errors: Vec<(&str, Error)> = Vec::new();

    // SessionTooLarge: HTTP commit, socket save, set_by_id.
    let mut b = a.browser.clone();
    errors.push((
        "too large (http)",
        block_on(b.try_request(&w.bridge, |s| async move {
            s.insert("big", DATA_VALUE.repeat(400)).await.unwrap();
        }))
        .unwrap_err(),
    ));
    let socket = block_on(w.bridge.bind_socket(&handshake(&a.browser))).unwrap();
    errors.push((
        "too large (socket)",
        block_on(socket.with_session(async |ctx| {
            ctx.insert_value("big", DATA_VALUE.repeat(400).into());
        }))
        .unwrap_err(),
    ));
    let mut big = sentinel_data();
    big.insert("big".into(), DATA_VALUE.repeat(400).into());
    errors.push((
        "too large (set_by_id)",
        block_on(w.bridge.set_by_id(&a.sid, Some(big), None)).unwrap_err(),
    ));

    // Json: a stored string read as a number (serde_json's message quotes the value), and a
    // value whose serialization fails with a message quoting data; HTTP and socket.
    let ctx = w.bridge.begin_request(&handshake(&a.browser));
    errors.push((
        "json get (http)",
        block_on(ctx.session().get::<u64>(DATA_KEY)).unwrap_err(),
    ));
    errors.push((
        "json insert (http)",
        block_on(ctx.session().insert("x", Unserializable)).unwrap_err(),
    ));
    errors.push((
        "json remove (http)",
        block_on(ctx.session().remove::<u64>(DATA_KEY)).unwrap_err(),
    ));
    let (get, insert) = block_on(socket.with_session(async |ctx| {
        (
            ctx.get::<u64>(DATA_KEY).unwrap_err(),
            ctx.insert("x", Unserializable).unwrap_err(),
        )
    }))
    .unwrap();
    errors.push(("json get (socket)", get));
    errors.push(("json insert (socket)", insert));

    // NotMapped: sentinel ids nobody holds.
    let stranger = SentinelIds.generate();
    w.secrets.add(&stranger);
    errors.push((
        "set_by_id unmapped",
        block_on(
            w.bridge
                .set_by_id(&stranger.as_str().into(), Some(sentinel_data()), None),
        )
        .unwrap_err(),
    ));
    errors.push((
        "set_by_client_id unmapped",
        block_on(
            w.bridge
                .set_by_client_id(&stranger.as_str().into(), Some(sentinel_data()), None),
        )
        .unwrap_err(),
    ));

    // SessionMissing: a socket without cookies, and one with a forged cookie.
    let anonymous = block_on(w.bridge.bind_socket(&HeaderMap::new())).unwrap();
    errors.push((
        "missing",
        block_on(anonymous.with_session(async |_| ())).unwrap_err(),
    ));
    let mut forged = a.browser.clone();
    forged.set("app.sid", FORGED);
    forged.set("app.sid.cid", FORGED);
    let forged_socket = block_on(w.bridge.bind_socket(&handshake(&forged))).unwrap();
    errors.push((
        "missing (forged)",
        block_on(forged_socket.with_session(async |_| ())).unwrap_err(),
    ));

    // ForbiddenOrigin.
    let mut foreign = handshake(&a.browser);
    foreign.insert(header::ORIGIN, HeaderValue::from_static(ORIGIN));
    errors.push((
        "origin",
        block_on(w.bridge.bind_socket(&foreign)).unwrap_err(),
    ));

    // Reentrant.
    let nested = block_on(socket.with_session(async |ctx| {
        let inner = ctx.socket().clone();
        inner.with_session(async |_| ()).await
    }))
    .unwrap();
    errors.push(("reentrant", nested.unwrap_err()));

    // Unsupported: cleanup over a store without `list`.
    struct NoList;
    impl SyncStore for NoList {
        fn get(&self, _: &str) -> session_bridge::Result<Option<Record>> {
            Ok(None)
        }
        fn create(&self, _: &str, _: Record) -> session_bridge::Result<bool> {
            Ok(true)
        }
        fn update(&self, _: &str, _: Record, _: u64) -> session_bridge::Result<bool> {
            Ok(true)
        }
        fn destroy(&self, _: &str, _: u64) -> session_bridge::Result<bool> {
            Ok(false)
        }
    }
    let no_list = SessionBridge::builder()
        .key("app.sid")
        .keys([KEY_TEXT])
        .store(NoList)
        .build()
        .unwrap();
    errors.push(("unsupported", block_on(no_list.cleanup()).unwrap_err()));

    // Contention needs a session id that keeps moving across several lock waits; no flow of
    // a single-threaded test reaches it, so its text is checked as constructed.
    errors.push(("contention", Error::Contention { attempts: 3 }));

    let kinds: Vec<&str> = errors
        .iter()
        .map(|(_, e)| match e {
            Error::SessionTooLarge { .. } => "SessionTooLarge",
            Error::Json { .. } => "Json",
            Error::NotMapped => "NotMapped",
            Error::SessionMissing => "SessionMissing",
            Error::ForbiddenOrigin => "ForbiddenOrigin",
            Error::Reentrant => "Reentrant",
            Error::Unsupported(_) => "Unsupported",
            Error::Contention { .. } => "Contention",
            _ => "other",
        })
        .collect();
    assert!(!kinds.contains(&"other"), "{errors:?}");
    for (what, err) in &errors {
        w.secrets.check_error(what, err);
    }
    logs.assert_clean(&w.secrets);
}

#[test]
fn l1_a_commit_that_always_conflicts_names_no_id() {
    let logs = Logs::install();
    let mut w = world();
    let a = w.login();
    w.store.refuse_updates.store(true, Ordering::SeqCst);
    let mut b = a.browser.clone();
    let http = block_on(b.try_request(&w.bridge, |s| async move {
        s.insert("n", DATA_VALUE).await.unwrap();
    }))
    .unwrap_err();
    let socket = block_on(w.bridge.bind_socket(&handshake(&a.browser))).unwrap();
    let ws = block_on(socket.with_session(async |ctx| {
        ctx.insert_value("ws", DATA_VALUE.into());
    }))
    .unwrap_err();
    for err in [&http, &ws] {
        assert!(matches!(err, Error::Conflict { .. }), "{err:?}");
        w.secrets.check_error("Conflict", err);
    }
    logs.assert_clean(&w.secrets);
}

// ---------------------------------------------------------------------------------------
// Background and incidental log sites.

#[test]
fn l1_auto_cleanup_failures_are_logged_without_ids() {
    let logs = Logs::install();
    let mut w = world();
    let a = w.login();
    let b = w.login();
    w.bridge.start_auto_cleanup(Some(Duration::from_secs(60)));
    let mut worker = Box::pin(w.bridge.auto_cleanup_worker());
    assert!(poll_once(worker.as_mut()).is_none());
    assert_eq!(
        w.clock.sleepers(),
        1,
        "the worker sleeps until the interval"
    );

    // 1. `list` fails.
    w.store.fail(&["list"]);
    w.clock.advance(Duration::from_secs(60));
    assert!(poll_once(worker.as_mut()).is_none());
    assert_eq!(logs.count("auto cleanup failed"), 1);

    // 2. Reading one expired record fails (the pass stops there and is retried).
    w.store.heal();
    w.store.fail(&["get"]);
    w.store.only_for(&a.sid);
    w.clock.advance(Duration::from_secs(60));
    assert!(poll_once(worker.as_mut()).is_none());
    assert_eq!(logs.count("auto cleanup failed"), 2);

    // 3. A corrupt record is dropped by the pass (the gateway's warning, from the worker).
    w.store.heal();
    block_on(Faulty::set(
        &w.store,
        b.sid.as_str(),
        Record::new(format!(r#"["{DATA_VALUE}"]"#), u64::MAX, 1000),
    ))
    .unwrap();
    w.clock.advance(Duration::from_secs(60));
    assert!(poll_once(worker.as_mut()).is_none());
    logs.expect("dropped a corrupt session record");

    // 4. Destroying an expired record fails.
    w.store.fail(&["destroy"]);
    w.clock.advance(2 * DAY);
    assert!(poll_once(worker.as_mut()).is_none());
    assert_eq!(logs.count("auto cleanup failed"), 3);

    logs.assert_clean(&w.secrets);
}

/// A write retires mapping entries whose sessions should have expired; a store error while
/// checking one is logged at debug and the write goes on.
#[test]
fn l1_retiring_an_expired_mapping_logs_no_id() {
    let logs = Logs::install();
    let mut w = world();
    let a = w.login();
    w.clock.advance(2 * DAY);
    w.store.fail(&["get"]);
    w.store.only_for(&a.sid);
    let c = w.login();
    assert_ne!(c.sid, a.sid);
    logs.expect("retiring an expired mapping failed");
    logs.assert_clean(&w.secrets);
}

/// Forged, duplicated and tossed cookies (C2, C4, C6) over HTTP and at a socket handshake:
/// whatever is logged about them names no cookie value.
#[test]
fn l1_bad_and_duplicate_cookies_log_no_value() {
    let logs = Logs::install();
    let mut w = world();
    let a = w.login();
    let b = w.login();
    let jar_a = &a.browser.jar;
    let jar_b = &b.browser.jar;
    let cookie_lines: Vec<String> = vec![
        format!("app.sid={FORGED}; app.sid.cid={FORGED}"),
        format!("app.sid={}.{FORGED}", a.sid.as_str()),
        // Two verified values of one name (cookie tossing): neither is trusted.
        format!(
            "app.sid={}; app.sid={}; app.sid.cid={}",
            jar_a["app.sid"], jar_b["app.sid"], jar_a["app.sid.cid"]
        ),
        format!(
            "app.sid.cid={}; app.sid.cid={}; app.sid={}",
            jar_a["app.sid.cid"], jar_b["app.sid.cid"], jar_b["app.sid"]
        ),
        format!("app.sid=\u{e9}{FORGED}; {FORGED}; app.sid.cid={FORGED}=="),
    ];
    for line in &cookie_lines {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_bytes(line.as_bytes()).unwrap(),
        );
        headers.insert(header::HOST, HeaderValue::from_static("localhost:3000"));
        let ctx = w.bridge.begin_request(&headers);
        let _ = block_on(ctx.session().data());
        let mut out = HeaderMap::new();
        block_on(ctx.commit(&mut out)).unwrap();
        let socket = block_on(w.bridge.bind_socket(&headers)).unwrap();
        w.secrets.check(
            "socket with_session",
            &format!("{:?}", block_on(socket.with_session(async |_| ()))),
        );
    }
    w.secrets.add(FORGED);
    logs.assert_clean(&w.secrets);
}

/// An id generator whose ids a header cannot carry: the Set-Cookie site logs, without the
/// value.
#[test]
fn l1_an_unsendable_set_cookie_is_logged_without_its_value() {
    struct Unsendable;
    impl IdGen for Unsendable {
        fn generate(&self) -> String {
            format!("SENTINELid\u{7f}{}", &RandomIdGen.generate()[11..])
        }
        fn is_valid(&self, _: &str) -> bool {
            true
        }
    }
    let logs = Logs::install();
    let bridge = SessionBridge::builder()
        .key("app.sid")
        .keys([KEY_TEXT])
        .ids(Unsendable)
        .build()
        .unwrap();
    let mut b = Browser::new();
    block_on(b.request(&bridge, |s| async move {
        s.insert(DATA_KEY, DATA_VALUE).await.unwrap();
    }));
    logs.expect("a Set-Cookie header could not be built");
    logs.assert_clean(&Secrets::new());
}

// ---------------------------------------------------------------------------------------
// poem glue: commit failures, `?` in a handler, the extractor without the middleware.

#[cfg(feature = "poem")]
#[test]
fn l1_poem_glue_logs_name_no_secret() {
    use poem::{Endpoint, EndpointExt, IntoResponse, handler};
    use session_bridge::Session;
    use session_bridge::integrations::poem::SessionMiddleware;

    #[handler]
    async fn write(session: Session) -> &'static str {
        let _ = session.insert("more", DATA_VALUE).await;
        "ok"
    }
    #[handler]
    async fn too_big(session: Session) -> &'static str {
        let _ = session.insert("big", DATA_VALUE.repeat(400)).await;
        "ok"
    }
    #[handler]
    async fn read(session: Session) -> poem::Result<String> {
        // `?` on a session error: `ResponseError` answers and logs it.
        let n = session.get::<u64>(DATA_KEY).await?;
        Ok(format!("{n:?}"))
    }

    fn call<E: Endpoint>(ep: E, b: &Browser) -> poem::http::StatusCode {
        let mut req = poem::Request::builder();
        for (name, value) in b.build_request().headers() {
            req = req.header(name, value);
        }
        match block_on(ep.call(req.finish())) {
            Ok(out) => out.into_response().status(),
            Err(err) => err.into_response().status(),
        }
    }

    let logs = Logs::install();
    let mut w = world();
    let a = w.login();
    let mw = || SessionMiddleware::new(w.bridge.clone());

    // `?`: Json error (the stored string read as a number), then a store error.
    assert_eq!(call(read.with(mw()), &a.browser), 500);
    w.store.fail(&["get"]);
    assert_eq!(call(read.with(mw()), &a.browser), 500);
    assert_eq!(logs.count("session error answered with an empty"), 2);
    // Commit failures: store down, too large, conflict.
    w.store.heal();
    w.store.fail(&["update"]);
    assert_eq!(call(write.with(mw()), &a.browser), 500);
    w.store.heal();
    assert_eq!(call(too_big.with(mw()), &a.browser), 500);
    w.store.refuse_updates.store(true, Ordering::SeqCst);
    assert_eq!(call(write.with(mw()), &a.browser), 409);
    assert_eq!(logs.count("session commit failed"), 3);
    // The extractor without the middleware.
    assert_eq!(call(write, &a.browser), 500);
    logs.expect("extracted on a route without `SessionMiddleware`");
    logs.assert_clean(&w.secrets);
}

// ---------------------------------------------------------------------------------------
// salvo glue: the same three sites.

#[cfg(feature = "salvo")]
#[test]
fn l1_salvo_glue_logs_name_no_secret() {
    use salvo::{Depot, FlowCtrl, Handler, Request, Response, Writer as _, handler};
    use session_bridge::Session;
    use session_bridge::integrations::salvo::SessionHandler;

    #[handler]
    async fn write(session: Session) -> &'static str {
        let _ = session.insert("more", DATA_VALUE).await;
        "ok"
    }
    #[handler]
    async fn too_big(session: Session) -> &'static str {
        let _ = session.insert("big", DATA_VALUE.repeat(400)).await;
        "ok"
    }
    #[handler]
    async fn read(session: Session) -> Result<String, Error> {
        // `?` on a session error: `Scribe` answers and logs it.
        let n = session.get::<u64>(DATA_KEY).await?;
        Ok(format!("{n:?}"))
    }

    fn call(chain: Vec<Arc<dyn Handler>>, b: &Browser) -> u16 {
        let mut req = Request::new();
        for (name, value) in b.build_request().headers() {
            req.headers_mut().insert(name, value.clone());
        }
        let (mut depot, mut res) = (Depot::new(), Response::new());
        let mut ctrl = FlowCtrl::new(chain);
        block_on(ctrl.call_next(&mut req, &mut depot, &mut res));
        res.status_code.map_or(200, |s| s.as_u16())
    }

    let logs = Logs::install();
    let mut w = world();
    let a = w.login();
    let hoop = || -> Arc<dyn Handler> { Arc::new(SessionHandler::new(w.bridge.clone())) };

    assert_eq!(call(vec![hoop(), Arc::new(read)], &a.browser), 500);
    w.store.fail(&["get"]);
    assert_eq!(call(vec![hoop(), Arc::new(read)], &a.browser), 500);
    assert_eq!(logs.count("session error answered with an empty"), 2);
    w.store.heal();
    w.store.fail(&["update"]);
    assert_eq!(call(vec![hoop(), Arc::new(write)], &a.browser), 500);
    w.store.heal();
    assert_eq!(call(vec![hoop(), Arc::new(too_big)], &a.browser), 500);
    w.store.refuse_updates.store(true, Ordering::SeqCst);
    assert_eq!(call(vec![hoop(), Arc::new(write)], &a.browser), 409);
    assert_eq!(logs.count("session commit failed"), 3);
    assert_eq!(call(vec![Arc::new(write)], &a.browser), 500);
    logs.expect("extracted on a route without `SessionHandler`");
    logs.assert_clean(&w.secrets);
}

// ---------------------------------------------------------------------------------------
// axum glue: the same three sites.

#[cfg(feature = "axum")]
#[test]
fn l1_axum_glue_logs_name_no_secret() {
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use session_bridge::Session;
    use session_bridge::integrations::axum::SessionLayer;
    use tower::ServiceExt as _;

    async fn write(session: Session) -> &'static str {
        let _ = session.insert("more", DATA_VALUE).await;
        "ok"
    }
    async fn too_big(session: Session) -> &'static str {
        let _ = session.insert("big", DATA_VALUE.repeat(400)).await;
        "ok"
    }
    async fn read(session: Session) -> Result<String, Error> {
        // `?` on a session error: `IntoResponse` answers and logs it.
        let n = session.get::<u64>(DATA_KEY).await?;
        Ok(format!("{n:?}"))
    }

    fn call(app: Router, b: &Browser) -> u16 {
        let mut req = http::Request::get("/").body(Body::empty()).unwrap();
        *req.headers_mut() = b.build_request().headers().clone();
        block_on(app.oneshot(req)).unwrap().status().as_u16()
    }

    let logs = Logs::install();
    let mut w = world();
    let a = w.login();
    let app = |route: Router| route.layer(SessionLayer::new(w.bridge.clone()));

    assert_eq!(
        call(app(Router::new().route("/", get(read))), &a.browser),
        500
    );
    w.store.fail(&["get"]);
    assert_eq!(
        call(app(Router::new().route("/", get(read))), &a.browser),
        500
    );
    assert_eq!(logs.count("session error answered with an empty"), 2);
    w.store.heal();
    w.store.fail(&["update"]);
    assert_eq!(
        call(app(Router::new().route("/", get(write))), &a.browser),
        500
    );
    w.store.heal();
    assert_eq!(
        call(app(Router::new().route("/", get(too_big))), &a.browser),
        500
    );
    w.store.refuse_updates.store(true, Ordering::SeqCst);
    assert_eq!(
        call(app(Router::new().route("/", get(write))), &a.browser),
        409
    );
    assert_eq!(logs.count("session commit failed"), 3);
    assert_eq!(call(Router::new().route("/", get(write)), &a.browser), 500);
    logs.expect("extracted on a route without `SessionLayer`");
    logs.assert_clean(&w.secrets);
}

// ---------------------------------------------------------------------------------------
// socketioxide glue: `bind_session` failing at a real (in-process) handshake.

#[cfg(feature = "socketioxide")]
#[tokio::test]
async fn l1_socketioxide_bind_failure_logs_no_cookie() {
    use std::convert::Infallible;

    use http::{Method, Request, Response};
    use http_body_util::{BodyExt as _, Full};
    use hyper::body::Bytes;
    use hyper::service::Service as _;
    use session_bridge::integrations::socketioxide::bind_session;
    use socketioxide::handler::ConnectHandler as _;

    let logs = Logs::install();
    let mut w = world();
    let a = w.login();
    // A restarted node (same keys and store, empty mapping) must read the record the
    // handshake's session cookie names: the store is down.
    let node2 = builder(&w.clock, &w.store).build().unwrap();
    w.store.fail_all();

    let not_found = hyper::service::service_fn(|_req: Request<Full<Bytes>>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
    });
    let (svc, io) = socketioxide::SocketIo::builder()
        .with_state(node2)
        .build_with_inner_svc(not_found);
    io.ns("/", (async || {}).with(bind_session));
    let cookie = a.browser.build_request().headers()[header::COOKIE].clone();
    let send = async |method: Method, query: String, cookie: Option<HeaderValue>, body: &str| {
        let mut req = Request::builder().method(method).uri(format!(
            "http://localhost:3000/socket.io/?EIO=4&transport=polling{query}"
        ));
        req = req.header(header::HOST, "localhost:3000");
        if let Some(cookie) = cookie {
            req = req.header(header::COOKIE, cookie);
        }
        let req = req.body(Full::new(Bytes::from(body.to_owned()))).unwrap();
        let res = tokio::time::timeout(Duration::from_secs(5), svc.call(req))
            .await
            .expect("an answer")
            .unwrap();
        let status = res.status().as_u16();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    };
    let (status, open) = send(Method::GET, String::new(), Some(cookie), "").await;
    assert_eq!(status, 200, "{open}");
    let open: Value = serde_json::from_str(open.strip_prefix('0').unwrap()).unwrap();
    let query = format!("&sid={}", open["sid"].as_str().unwrap());
    let (status, ok) = send(Method::POST, query.clone(), None, "40").await;
    assert_eq!((status, ok.as_str()), (200, "ok"));
    let mut seen = Vec::new();
    for _ in 0..10 {
        let (_, text) = send(Method::GET, query.clone(), None, "").await;
        seen.push(text.clone());
        if text.split('\u{1e}').any(|p| p.starts_with("44")) {
            break;
        }
    }
    assert!(
        seen.iter().any(|t| t.contains("session unavailable")),
        "the handshake was refused: {seen:?}"
    );
    for text in &seen {
        w.secrets.check("connect_error", text);
    }
    logs.expect("binding a socket to its session failed");
    logs.assert_clean(&w.secrets);
}

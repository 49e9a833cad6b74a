//! Runs the Gherkin scenarios of `features/*.feature` (SPEC GW, H, C, B, X) with cucumber:
//! `cargo test --test features`. The process fails on any failed, skipped or undefined step.
//!
//! Every scenario gets a fresh world: a bridge on a manual clock (GW5), a counting store
//! ([`Probe`]), deterministic ids, and named browsers (Alice, Bob, Mallory...) that follow
//! cookies. Generated ids never appear in the feature files: a browser's ids are the ones its
//! responses' `Set-Cookie` headers gave it, and events are shown with those names
//! ("Alice" is her latest id, "Alice (previous)" the one before).

mod common;

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{Browser, KEY_A, KEY_B, Probe, headers_with_cookies, set_cookies};
use cucumber::gherkin::Step;
use cucumber::writer::Stats as _;
use cucumber::{World as _, given, then, when};
use futures::StreamExt as _;
use hmac::{KeyInit as _, Mac as _};
use http::HeaderMap;
use serde_json::{Map, Value, json};
use session_bridge::clock::Clock as _;
use session_bridge::{
    BridgeEvent, ClientId, Error, EventStream, LiveStore, Record, Session, SessionBridge,
    SessionId, Store,
    clock::ManualClock,
    id::{IdGen, SequentialIdGen},
};

/// How long a step may wait for the background cleanup task (a guard, not a sleep).
const WORKER_GUARD: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// The world
// ---------------------------------------------------------------------------------------------

/// One id generator shared across restarts, so a restarted bridge never reuses an id.
#[derive(Clone)]
struct SharedIds(Arc<SequentialIdGen>);

impl IdGen for SharedIds {
    fn generate(&self) -> String {
        self.0.generate()
    }
    fn is_valid(&self, id: &str) -> bool {
        self.0.is_valid(id)
    }
}

/// Builder options, set by `Given` steps before the bridge is first used.
struct Options {
    key: String,
    max_age: Duration,
    keys: Vec<[u8; 32]>,
    signed: bool,
    rolling: bool,
    renew: bool,
    browser_session: bool,
    client_always_roll: bool,
    max_session_bytes: Option<usize>,
}

impl Options {
    fn client_key(&self) -> String {
        format!("{}.cid", self.key)
    }
}

/// A named browser and the ids its responses gave it, oldest first.
#[derive(Default)]
struct Client {
    browser: Browser,
    sids: Vec<String>,
    cids: Vec<String>,
}

/// What the last request or app call produced.
#[derive(Default)]
struct Last {
    /// The handler's (or call's) value, or the error of the handler, the call or the commit.
    outcome: Option<Result<Value, Error>>,
    /// The response headers (none when the commit failed inside a browser request).
    response: Option<HeaderMap>,
    /// The browser that sent the request, and its cookies before it.
    who: Option<String>,
    jar_before: BTreeMap<String, String>,
    /// The client id the bridge used for the request (what it read or generated).
    client_id: Option<String>,
    /// Store counters before the request or call.
    calls_before: usize,
    writes_before: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Session,
    Client,
}

#[derive(cucumber::World)]
#[world(init = Self::new)]
struct BridgeWorld {
    clock: ManualClock,
    store: Arc<Probe<LiveStore>>,
    ids: SharedIds,
    options: Options,
    bridge: Option<SessionBridge>,
    events: Option<EventStream>,
    /// Events received and not yet checked.
    seen: VecDeque<BridgeEvent>,
    clients: BTreeMap<String, Client>,
    /// Ids written straight into the store, by name.
    named: BTreeMap<String, String>,
    last: Last,
    /// Results of a batch of raw requests: (case, outcome, response headers).
    batch: Vec<(String, Result<Value, Error>, HeaderMap)>,
    /// The client id each request of the batch was given.
    batch_client_ids: Vec<String>,
    worker: Option<tokio::task::JoinHandle<()>>,
}

impl fmt::Debug for BridgeWorld {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BridgeWorld")
            .field("bridge", &self.bridge)
            .field("browsers", &self.clients.keys().collect::<Vec<_>>())
            .field("unchecked_events", &self.seen)
            .finish_non_exhaustive()
    }
}

impl BridgeWorld {
    fn new() -> Self {
        let clock = ManualClock::new(1_700_000_000_000);
        let store = Arc::new(Probe::new(LiveStore::with_clock(clock.clone())));
        Self {
            clock,
            store,
            ids: SharedIds(Arc::new(SequentialIdGen::new("t"))),
            options: Options {
                key: "app.sid".into(),
                max_age: Duration::from_secs(24 * 3600),
                keys: vec![KEY_A],
                signed: true,
                rolling: false,
                renew: false,
                browser_session: false,
                client_always_roll: true,
                max_session_bytes: None,
            },
            bridge: None,
            events: None,
            seen: VecDeque::new(),
            clients: BTreeMap::new(),
            named: BTreeMap::new(),
            last: Last::default(),
            batch: Vec::new(),
            batch_client_ids: Vec::new(),
            worker: None,
        }
    }

    fn options_mut(&mut self) -> &mut Options {
        assert!(
            self.bridge.is_none(),
            "bridge options must be set before the bridge is first used"
        );
        &mut self.options
    }

    /// The bridge, built on first use from the options; events are recorded from then on.
    fn bridge(&mut self) -> SessionBridge {
        if let Some(bridge) = &self.bridge {
            return bridge.clone();
        }
        let o = &self.options;
        let mut builder = SessionBridge::builder()
            .key(o.key.clone())
            .keys(o.keys.clone())
            .max_age(o.max_age)
            .clock(self.clock.clone())
            .store(Arc::clone(&self.store))
            .ids(self.ids.clone())
            .signed(o.signed)
            .rolling(o.rolling)
            .renew(o.renew)
            .browser_session(o.browser_session)
            .client_always_roll(o.client_always_roll);
        if let Some(limit) = o.max_session_bytes {
            builder = builder.max_session_bytes(limit);
        }
        let bridge = builder.build().expect("valid bridge options");
        self.events = Some(bridge.events());
        self.bridge = Some(bridge.clone());
        bridge
    }

    /// A new bridge process over the same store, clock and id sequence: the mapping is gone.
    fn restart(&mut self, keys: Option<Vec<[u8; 32]>>) {
        self.drain();
        self.bridge = None;
        self.events = None;
        if let Some(keys) = keys {
            self.options.keys = keys;
        }
        self.bridge();
    }

    /// Moves the events received so far into `seen`.
    fn drain(&mut self) {
        if let Some(events) = &mut self.events {
            assert_eq!(events.missed(), 0, "the event buffer overflowed");
            while let Some(event) = events.try_next() {
                self.seen.push_back(event);
            }
        }
    }

    /// Starts a request or call: counters and cookies as they are before it.
    fn begin(&mut self, who: Option<&str>) {
        let jar_before = who
            .and_then(|w| self.clients.get(w))
            .map(|c| c.browser.jar.clone())
            .unwrap_or_default();
        self.last = Last {
            outcome: None,
            response: None,
            who: who.map(str::to_owned),
            jar_before,
            client_id: None,
            calls_before: self.store.calls(),
            writes_before: self.store.writes(),
        };
    }

    /// One request from browser `who`: begin, handler, commit, cookies followed.
    async fn send<F, Fut>(&mut self, who: &str, handler: F)
    where
        F: FnOnce(Session) -> Fut,
        Fut: Future<Output = Result<Value, Error>>,
    {
        let bridge = self.bridge();
        self.begin(Some(who));
        let mut client = self.clients.remove(who).unwrap_or_default();
        let used_cid = Arc::new(std::sync::Mutex::new(None));
        let seen = Arc::clone(&used_cid);
        let handler = move |s: Session| {
            *seen.lock().unwrap() = Some(s.client_id().into_string());
            handler(s)
        };
        let result = client.browser.try_request(&bridge, handler).await;
        self.last.client_id = used_cid.lock().unwrap().take();
        match result {
            Ok(exchange) => {
                let headers = exchange.response.headers().clone();
                self.remember_ids(&mut client, &headers);
                self.last.outcome = Some(exchange.value);
                self.last.response = Some(headers);
            }
            Err(err) => self.last.outcome = Some(Err(err)),
        }
        self.clients.insert(who.to_owned(), client);
    }

    /// A request with exactly these `Cookie` header values, whose handler reads the session.
    async fn send_raw(&mut self, headers: HeaderMap) {
        let bridge = self.bridge();
        self.begin(None);
        let ctx = bridge.begin_request(&headers);
        self.last.client_id = Some(ctx.client_id().into_string());
        let read = ctx.session().data().await.map(Value::Object);
        let mut response = HeaderMap::new();
        let committed = ctx.commit(&mut response).await;
        self.last.outcome = Some(committed.and(read));
        self.last.response = Some(response);
    }

    /// Records an app call's result.
    fn record<T: Into<Value>>(&mut self, result: Result<T, Error>) {
        self.last.outcome = Some(result.map(Into::into));
    }

    fn remember_ids(&self, client: &mut Client, headers: &HeaderMap) {
        for (name, history) in [
            (self.options.key.clone(), &mut client.sids),
            (self.options.client_key(), &mut client.cids),
        ] {
            if let Some(cookie) = find_set_cookie(headers, &name) {
                let parsed = cookie::Cookie::parse(cookie).expect("parseable Set-Cookie");
                if !parsed.value().is_empty() {
                    let id = id_of(parsed.value()).to_owned();
                    if history.last() != Some(&id) {
                        history.push(id);
                    }
                }
            }
        }
    }

    fn client(&self, who: &str) -> &Client {
        self.clients
            .get(who)
            .unwrap_or_else(|| panic!("{who} has not been seen yet"))
    }

    fn client_mut(&mut self, who: &str) -> &mut Client {
        self.clients.entry(who.to_owned()).or_default()
    }

    fn cookie_name(&self, which: &str) -> String {
        match which {
            "session" => self.options.key.clone(),
            "client" => self.options.client_key(),
            other => panic!("unknown cookie {other:?}"),
        }
    }

    /// The raw value of a cookie in a browser's jar.
    fn jar_value(&self, who: &str, which: &str) -> String {
        let name = self.cookie_name(which);
        self.client(who)
            .browser
            .get(&name)
            .unwrap_or_else(|| panic!("{who} holds no {which} cookie"))
            .to_owned()
    }

    /// An id named in a step: "Alice's session id", "Alice's previous client id",
    /// `session "orphan"`, "an unknown session id".
    fn resolve(&self, reference: &str) -> (Kind, String) {
        match reference {
            "an unknown session id" => return (Kind::Session, self.unknown_id(Kind::Session)),
            "an unknown client id" => return (Kind::Client, self.unknown_id(Kind::Client)),
            _ => {}
        }
        if let Some(name) = reference
            .strip_prefix("session \"")
            .and_then(|r| r.strip_suffix('"'))
        {
            let id = self.named.get(name).cloned().unwrap_or_else(|| name.into());
            return (Kind::Session, id);
        }
        let (who, what) = reference
            .split_once("'s ")
            .unwrap_or_else(|| panic!("cannot read the id reference {reference:?}"));
        let client = self.client(who);
        let (kind, history, back) = match what {
            "session id" => (Kind::Session, &client.sids, 1),
            "previous session id" => (Kind::Session, &client.sids, 2),
            "client id" => (Kind::Client, &client.cids, 1),
            "previous client id" => (Kind::Client, &client.cids, 2),
            other => panic!("cannot read the id reference {other:?}"),
        };
        let id = history
            .len()
            .checked_sub(back)
            .and_then(|i| history.get(i))
            .unwrap_or_else(|| panic!("{who} has no {what}"));
        (kind, id.clone())
    }

    /// A well-formed id that was never issued and sits as close as possible to real ones: a
    /// known id of that kind with its last character changed (a fresh generated id when none
    /// is known). A constant like "unknown-id" could never be mapped, whatever the mapping did.
    fn unknown_id(&self, kind: Kind) -> String {
        let known: Vec<&String> = self
            .clients
            .values()
            .flat_map(|c| match kind {
                Kind::Session => &c.sids,
                Kind::Client => &c.cids,
            })
            .collect();
        let id = match known.last() {
            Some(real) => {
                let mut id = real.to_string();
                let last = id.pop().expect("a non-empty id");
                id.push(if last == 'A' { 'B' } else { 'A' });
                id
            }
            None => self.ids.generate(),
        };
        assert!(self.ids.is_valid(&id), "{id:?} is well formed");
        assert!(
            self.clients
                .values()
                .all(|c| !c.sids.contains(&id) && !c.cids.contains(&id)),
            "an unknown id must not be a known one"
        );
        id
    }

    fn session_ref(&self, reference: &str) -> String {
        match self.resolve(reference) {
            (Kind::Session, id) => id,
            (Kind::Client, _) => panic!("{reference:?} is not a session id"),
        }
    }

    /// The name an id is shown by in event tables.
    fn label(&self, kind: Kind, id: &str) -> String {
        for (who, client) in &self.clients {
            let history = match kind {
                Kind::Session => &client.sids,
                Kind::Client => &client.cids,
            };
            if let Some(pos) = history.iter().rposition(|h| h == id) {
                return match history.len() - 1 - pos {
                    0 => who.clone(),
                    1 => format!("{who} (previous)"),
                    n => format!("{who} (-{n})"),
                };
            }
        }
        self.named
            .iter()
            .find(|(_, v)| v.as_str() == id)
            .map_or_else(|| format!("unknown id {id}"), |(name, _)| name.clone())
    }

    fn render(&self, event: &BridgeEvent) -> Vec<String> {
        let client = |c: &Option<ClientId>| {
            c.as_ref().map_or_else(
                || "none".to_owned(),
                |c| self.label(Kind::Client, c.as_str()),
            )
        };
        let row = |cells: [String; 5]| cells.to_vec();
        match event {
            BridgeEvent::SessionSet {
                client_id,
                session_id,
                is_new,
                is_init,
            } => row([
                "SessionSet".into(),
                client(client_id),
                self.label(Kind::Session, session_id.as_str()),
                is_new.to_string(),
                is_init.to_string(),
            ]),
            BridgeEvent::SessionDestroy {
                client_id,
                session_id,
                ..
            } => row([
                "SessionDestroy".into(),
                client(client_id),
                self.label(Kind::Session, session_id.as_str()),
                String::new(),
                String::new(),
            ]),
            BridgeEvent::Cleanup(n) => row([
                format!("Cleanup({n})"),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
            ]),
            other => row([
                format!("{other:?}"),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
            ]),
        }
    }

    /// Checks (and consumes) every event not checked yet against the step's table.
    fn expect_events(&mut self, step: &Step, any_order: bool) {
        self.drain();
        let table = step.table.as_ref().expect("the step has a table of events");
        let mut expected: Vec<Vec<String>> = table.rows.iter().skip(1).cloned().collect();
        let events: Vec<BridgeEvent> = self.seen.drain(..).collect();
        let mut actual: Vec<Vec<String>> = events.iter().map(|e| self.render(e)).collect();
        if any_order {
            expected.sort();
            actual.sort();
        }
        assert_eq!(
            actual, expected,
            "events emitted (left) vs expected (right)"
        );
    }

    fn outcome(&self) -> &Value {
        match &self.last.outcome {
            Some(Ok(value)) => value,
            Some(Err(err)) => panic!("the last request or call failed: {err} ({err:?})"),
            None => panic!("no request or call was made"),
        }
    }

    fn error(&self) -> &Error {
        match &self.last.outcome {
            Some(Err(err)) => err,
            Some(Ok(value)) => panic!("the last request or call succeeded with {value}"),
            None => panic!("no request or call was made"),
        }
    }

    fn response(&self) -> &HeaderMap {
        self.last
            .response
            .as_ref()
            .unwrap_or_else(|| panic!("no response: {:?}", self.last.outcome))
    }

    fn response_cookie(&self, which: &str) -> Option<String> {
        find_set_cookie(self.response(), &self.cookie_name(which))
    }

    fn expect_response_cookie(&self, which: &str) -> String {
        self.response_cookie(which)
            .unwrap_or_else(|| panic!("the response sets no {which} cookie"))
    }

    /// Expands `{...}` tokens of a header written in a step into bytes.
    fn expand(&self, text: &str) -> Vec<u8> {
        let mut out = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find('{') {
            out.extend_from_slice(&rest.as_bytes()[..start]);
            let len = rest[start..].find('}').expect("a closing brace");
            out.extend(self.token(&rest[start + 1..start + len]));
            rest = &rest[start + len + 1..];
        }
        out.extend_from_slice(rest.as_bytes());
        out
    }

    fn token(&self, token: &str) -> Vec<u8> {
        if let Some(hex) = token.strip_prefix("bytes ") {
            return hex
                .split_whitespace()
                .map(|b| u8::from_str_radix(b, 16).expect("a hex byte"))
                .collect();
        }
        if let Some((count, text)) = token.split_once(" times ") {
            return text.repeat(count.parse().expect("a count")).into_bytes();
        }
        let (who, what) = token
            .split_once("'s ")
            .unwrap_or_else(|| panic!("unknown token {{{token}}}"));
        let session = self.jar_value(who, "session");
        let value = match what {
            "session cookie" => session,
            "client cookie" => self.jar_value(who, "client"),
            "session cookie minus 2 characters" => session[..session.len() - 2].to_owned(),
            "session id" => id_of(&session).to_owned(),
            "session signature" => session.rsplit_once('.').expect("signed").1.to_owned(),
            other => panic!("unknown token {other:?}"),
        };
        value.into_bytes()
    }

    fn ttl_ms(&self) -> u64 {
        u64::try_from(self.options.max_age.as_millis()).expect("max age in ms")
    }

    async fn write_record(&mut self, sid: &str, text: &str) {
        let ttl = self.ttl_ms();
        let record = Record::new(text, self.clock_now() + ttl, ttl);
        assert!(self.store.set(sid, record).await.expect("store write"));
    }

    fn clock_now(&self) -> u64 {
        self.clock.now_ms()
    }
}

fn find_set_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    set_cookies(headers)
        .into_iter()
        .find(|c| c.starts_with(&format!("{name}=")))
}

/// The id inside a cookie value: `<id>.<sig>` when signed, the bare id otherwise.
fn id_of(value: &str) -> &str {
    value.rsplit_once('.').map_or(value, |(id, _)| id)
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{text:?} is not JSON: {e}"))
}

fn object(text: &str) -> Map<String, Value> {
    match json(text) {
        Value::Object(map) => map,
        other => panic!("{other} is not a JSON object"),
    }
}

fn duration(text: &str) -> Duration {
    let (n, unit) = text
        .split_once(' ')
        .unwrap_or_else(|| panic!("cannot read the duration {text:?}"));
    let n: u64 = n.parse().expect("a whole number");
    match unit {
        "ms" => Duration::from_millis(n),
        "second" | "seconds" => Duration::from_secs(n),
        "minute" | "minutes" => Duration::from_secs(n * 60),
        "hour" | "hours" => Duration::from_secs(n * 3600),
        "day" | "days" => Duration::from_secs(n * 24 * 3600),
        other => panic!("unknown time unit {other:?}"),
    }
}

fn key(name: &str) -> [u8; 32] {
    match name {
        "A" => KEY_A,
        "B" => KEY_B,
        other => panic!("unknown key {other:?}"),
    }
}

fn on_off(value: &str) -> bool {
    value == "on"
}

/// The session after the handler, as the value a request step reports.
async fn data(s: &Session) -> Result<Value, Error> {
    Ok(Value::Object(s.data().await?))
}

fn has_attributes(set_cookie: &str, attributes: &str) {
    let parts: Vec<&str> = set_cookie.split("; ").collect();
    for attribute in attributes.split(", ") {
        assert!(
            parts.contains(&attribute),
            "{set_cookie:?} lacks {attribute:?}"
        );
    }
}

/// Base64url (no padding) HMAC-SHA256 of `message` under `key`: the signature of SPEC C1.
fn signature(key: &[u8], message: &str) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("any key length");
    mac.update(message.as_bytes());
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// A value with the first character of its signature changed.
fn tamper(value: &str) -> String {
    let (id, sig) = value.rsplit_once('.').expect("a signed value");
    let mut sig: Vec<char> = sig.chars().collect();
    sig[0] = if sig[0] == 'A' { 'B' } else { 'A' };
    format!("{id}.{}", sig.into_iter().collect::<String>())
}

// ---------------------------------------------------------------------------------------------
// Given: the bridge
// ---------------------------------------------------------------------------------------------

#[given(
    regex = r#"^a bridge with session cookie "([^"]+)" and a max age of (.+), on a manual clock$"#
)]
fn a_bridge(w: &mut BridgeWorld, name: String, max_age: String) {
    let o = w.options_mut();
    o.key = name;
    o.max_age = duration(&max_age);
}

#[given(regex = r#"^the bridge option "(\w+)" is (on|off)$"#)]
fn bridge_option(w: &mut BridgeWorld, option: String, value: String) {
    let value = on_off(&value);
    let o = w.options_mut();
    match option.as_str() {
        "signed" => o.signed = value,
        "rolling" => o.rolling = value,
        "renew" => o.renew = value,
        "browser_session" => o.browser_session = value,
        "client_always_roll" => o.client_always_roll = value,
        other => panic!("unknown option {other:?}"),
    }
}

#[given(regex = r"^the bridge signs with key ([AB])$")]
fn signs_with(w: &mut BridgeWorld, k: String) {
    w.options_mut().keys = vec![key(&k)];
}

#[given(regex = r"^the bridge limits sessions to (\d+) bytes of JSON$")]
fn limits_sessions(w: &mut BridgeWorld, limit: usize) {
    w.options_mut().max_session_bytes = Some(limit);
}

#[given("the auto cleanup worker is spawned")]
fn spawn_worker(w: &mut BridgeWorld) {
    let worker = w.bridge().auto_cleanup_worker();
    w.worker = Some(tokio::spawn(worker));
}

#[given("the events so far are ignored")]
#[when("the events so far are ignored")]
fn ignore_events(w: &mut BridgeWorld) {
    w.bridge();
    w.drain();
    w.seen.clear();
}

#[given("the store starts failing")]
fn store_fails(w: &mut BridgeWorld) {
    w.store.fail.store(true, Ordering::SeqCst);
}

#[given("the store works again")]
fn store_works(w: &mut BridgeWorld) {
    w.store.fail.store(false, Ordering::SeqCst);
}

#[when("the server restarts")]
fn server_restarts(w: &mut BridgeWorld) {
    w.restart(None);
}

#[when(regex = r"^the server restarts signing with key ([AB]) and still accepting key ([AB])$")]
fn server_restarts_rotating(w: &mut BridgeWorld, newest: String, older: String) {
    w.restart(Some(vec![key(&newest), key(&older)]));
}

#[when(regex = r"^the server restarts signing with key ([AB]) only$")]
fn server_restarts_one_key(w: &mut BridgeWorld, newest: String) {
    w.restart(Some(vec![key(&newest)]));
}

#[given(regex = r"^the clock advances by (.+)$")]
#[when(regex = r"^the clock advances by (.+)$")]
fn clock_advances(w: &mut BridgeWorld, by: String) {
    w.clock.advance(duration(&by));
}

// ---------------------------------------------------------------------------------------------
// Given: browsers and their cookies
// ---------------------------------------------------------------------------------------------

#[given(
    regex = r#"^([A-Z]\w*) has a session holding (\w+) = (-?\d+|"[^"]*"|true|false|null|\{.*\})$"#
)]
async fn has_session(w: &mut BridgeWorld, who: String, key: String, value: String) {
    let value = json(&value);
    w.send(&who, |s| async move {
        s.insert_value(&key, value).await?;
        data(&s).await
    })
    .await;
    w.outcome();
    w.expect_response_cookie("session");
}

#[given(regex = r"^([A-Z]\w*) has visited without touching the session$")]
async fn has_visited(w: &mut BridgeWorld, who: String) {
    w.send(&who, |_| async { Ok(Value::Null) }).await;
    w.outcome();
}

#[given(regex = r"^([A-Z]\w*)'s (session|client) cookie has a tampered signature$")]
fn tampered(w: &mut BridgeWorld, who: String, which: String) {
    let name = w.cookie_name(&which);
    let value = tamper(&w.jar_value(&who, &which));
    w.client_mut(&who).browser.set(&name, &value);
}

#[given(regex = r"^([A-Z]\w*) copies ([A-Z]\w*)'s (session|client) cookie$")]
fn copies_cookie(w: &mut BridgeWorld, thief: String, victim: String, which: String) {
    let name = w.cookie_name(&which);
    let value = w.jar_value(&victim, &which);
    w.client_mut(&thief).browser.set(&name, &value);
}

#[given(regex = r"^([A-Z]\w*) holds a copy of ([A-Z]\w*)'s cookies$")]
fn copies_jar(w: &mut BridgeWorld, thief: String, victim: String) {
    let jar = w.client(&victim).browser.jar.clone();
    w.client_mut(&thief).browser.jar = jar;
}

#[given(
    regex = r"^([A-Z]\w*) holds ([A-Z]\w*)'s client cookie as her session cookie and \w+'s session cookie as her client cookie$"
)]
fn swapped_cookies(w: &mut BridgeWorld, thief: String, victim: String) {
    let (session_name, client_name) = (w.cookie_name("session"), w.cookie_name("client"));
    let (session, client) = (
        w.jar_value(&victim, "session"),
        w.jar_value(&victim, "client"),
    );
    let browser = &mut w.client_mut(&thief).browser;
    browser.set(&session_name, &client);
    browser.set(&client_name, &session);
}

#[given(regex = r#"^([A-Z]\w*)'s session cookie names the unknown id "([^"]+)"$"#)]
fn names_unknown_id(w: &mut BridgeWorld, who: String, id: String) {
    let name = w.cookie_name("session");
    w.client_mut(&who).browser.set(&name, &id);
    w.named.insert(id.clone(), id);
}

#[given(regex = r#"^the record of (.+) is overwritten in the store with the text "(.*)"$"#)]
async fn overwrite_record(w: &mut BridgeWorld, reference: String, text: String) {
    let sid = w.session_ref(&reference);
    w.write_record(&sid, &text).await;
}

#[given(
    regex = r#"^the app has written a record "(\w+)" holding (\{.*\}) straight into the store$"#
)]
async fn planted_record(w: &mut BridgeWorld, name: String, data: String) {
    w.bridge();
    w.named.insert(name.clone(), name.clone());
    w.write_record(&name, &json(&data).to_string()).await;
}

#[given(regex = r"^the app has destroyed the session of (.+)$")]
async fn has_destroyed(w: &mut BridgeWorld, reference: String) {
    app_destroys(w, reference).await;
    assert_eq!(w.outcome(), &json!(true));
}

// ---------------------------------------------------------------------------------------------
// When: requests
// ---------------------------------------------------------------------------------------------

#[when(regex = r"^([A-Z]\w*) sends a request that does not touch the session$")]
async fn untouched(w: &mut BridgeWorld, who: String) {
    w.send(&who, |_| async { Ok(Value::Null) }).await;
}

#[when(regex = r"^([A-Z]\w*) sends a request that reads the session$")]
async fn reads(w: &mut BridgeWorld, who: String) {
    w.send(&who, |s| async move { data(&s).await }).await;
}

#[when(regex = r"^([A-Z]\w*) sends a request that increments (\w+)$")]
async fn increments(w: &mut BridgeWorld, who: String, key: String) {
    w.send(&who, |s| async move {
        let n = s.get::<i64>(&key).await?.unwrap_or(0);
        s.insert(&key, n + 1).await?;
        data(&s).await
    })
    .await;
}

#[when(
    regex = r#"^([A-Z]\w*) sends a request that sets (\w+) to (-?\d+|"[^"]*"|true|false|null|\{.*\})$"#
)]
async fn sets(w: &mut BridgeWorld, who: String, key: String, value: String) {
    let value = json(&value);
    w.send(&who, |s| async move {
        s.insert_value(&key, value).await?;
        data(&s).await
    })
    .await;
}

#[when(regex = r"^([A-Z]\w*) sends a request that sets (\w+) to (-?\d+) and then removes it$")]
async fn sets_and_removes(w: &mut BridgeWorld, who: String, key: String, value: String) {
    let value = json(&value);
    w.send(&who, |s| async move {
        s.insert_value(&key, value).await?;
        s.remove_value(&key).await?;
        data(&s).await
    })
    .await;
}

#[when(
    regex = r#"^([A-Z]\w*) sends a request that sets (\w+) to ("[^"]*") and reports the session id before and after$"#
)]
async fn reports_id(w: &mut BridgeWorld, who: String, key: String, value: String) {
    let value = json(&value);
    w.send(&who, |s| async move {
        let before = s.session_id().await?;
        s.insert_value(&key, value).await?;
        let after = s.session_id().await?;
        let text = |id: Option<SessionId>| id.map(String::from);
        Ok(json!({ "before": text(before), "after": text(after) }))
    })
    .await;
}

#[when(regex = r"^([A-Z]\w*) sends a request that sets (\w+) to (-?\d+) and then back to (-?\d+)$")]
async fn sets_and_back(w: &mut BridgeWorld, who: String, key: String, first: String, then: String) {
    let (first, then) = (json(&first), json(&then));
    w.send(&who, |s| async move {
        s.insert_value(&key, first).await?;
        s.insert_value(&key, then).await?;
        data(&s).await
    })
    .await;
}

#[when(regex = r"^([A-Z]\w*) sends a request that destroys the session$")]
async fn destroys(w: &mut BridgeWorld, who: String) {
    w.send(&who, |s| async move {
        s.destroy().await?;
        data(&s).await
    })
    .await;
}

#[when(regex = r"^([A-Z]\w*) sends a request that regenerates the session$")]
async fn regenerates(w: &mut BridgeWorld, who: String) {
    w.send(&who, |s| async move {
        s.regenerate().await?;
        data(&s).await
    })
    .await;
}

#[when(
    regex = r"^([A-Z]\w*) sends a request that sets the session's max age to (\d+ \w+) and sets (\w+) to (-?\d+)$"
)]
async fn sets_max_age_and_value(
    w: &mut BridgeWorld,
    who: String,
    max_age: String,
    key: String,
    value: String,
) {
    let (max_age, value) = (duration(&max_age), json(&value));
    w.send(&who, |s| async move {
        s.set_max_age(max_age)?;
        s.insert_value(&key, value).await?;
        data(&s).await
    })
    .await;
}

#[when(regex = r"^([A-Z]\w*) sends a request that sets the session's max age to (\d+ \w+)$")]
async fn sets_max_age(w: &mut BridgeWorld, who: String, max_age: String) {
    let max_age = duration(&max_age);
    w.send(&who, |s| async move {
        s.set_max_age(max_age)?;
        data(&s).await
    })
    .await;
}

#[when(regex = r"^([A-Z]\w*) sends a request that stores a (\d+)-byte string under (\w+)$")]
async fn stores_blob(w: &mut BridgeWorld, who: String, size: usize, key: String) {
    w.send(&who, |s| async move {
        s.insert(&key, "x".repeat(size)).await?;
        data(&s).await
    })
    .await;
}

#[when("requests arrive, one with each of these Cookie headers, and read the session:")]
async fn raw_header_each(w: &mut BridgeWorld, step: &Step) {
    let table = step
        .table
        .as_ref()
        .expect("a table of cases and Cookie headers");
    let mut results = Vec::new();
    let mut client_ids = Vec::new();
    for row in table.rows.iter().skip(1) {
        // ` || ` separates Cookie header lines of one request.
        let raws: Vec<Vec<u8>> = row[1].split(" || ").map(|h| w.expand(h)).collect();
        let values: Vec<&[u8]> = raws.iter().map(Vec::as_slice).collect();
        w.send_raw(headers_with_cookies(&values)).await;
        let outcome = w.last.outcome.take().expect("an outcome");
        let response = w.last.response.take().expect("a response");
        results.push((row[0].clone(), outcome, response));
        client_ids.push(w.last.client_id.take().expect("a client id"));
    }
    w.batch = results;
    w.batch_client_ids = client_ids;
}

#[when("a request arrives with these Cookie headers and reads the session:")]
async fn raw_headers(w: &mut BridgeWorld, step: &Step) {
    let table = step.table.as_ref().expect("a table of Cookie headers");
    let raws: Vec<Vec<u8>> = table.rows.iter().map(|row| w.expand(&row[0])).collect();
    let values: Vec<&[u8]> = raws.iter().map(Vec::as_slice).collect();
    w.send_raw(headers_with_cookies(&values)).await;
}

// ---------------------------------------------------------------------------------------------
// When: the app calls the bridge
// ---------------------------------------------------------------------------------------------

#[when(regex = r"^the app reads the session of (.+)$")]
async fn app_reads(w: &mut BridgeWorld, reference: String) {
    let bridge = w.bridge();
    let (kind, id) = w.resolve(&reference);
    w.begin(None);
    let found = match kind {
        Kind::Session => bridge.get_by_id(&SessionId::from(id.as_str())).await,
        Kind::Client => bridge.get_by_client_id(&ClientId::from(id.as_str())).await,
    };
    w.record(found.map(|m| m.map_or(Value::Null, Value::Object)));
}

#[when(regex = r"^the app sets the session of (.+) to (\{.*\}|nothing)$")]
async fn app_sets(w: &mut BridgeWorld, reference: String, data: String) {
    let bridge = w.bridge();
    let (kind, id) = w.resolve(&reference);
    let data = (data != "nothing").then(|| object(&data));
    w.begin(None);
    let result = match kind {
        Kind::Session => {
            bridge
                .set_by_id(&SessionId::from(id.as_str()), data, None)
                .await
        }
        Kind::Client => {
            bridge
                .set_by_client_id(&ClientId::from(id.as_str()), data, None)
                .await
        }
    };
    w.record(result);
}

#[when(regex = r"^the app destroys the session of (.+)$")]
async fn app_destroys(w: &mut BridgeWorld, reference: String) {
    let bridge = w.bridge();
    let (kind, id) = w.resolve(&reference);
    w.begin(None);
    let result = match kind {
        Kind::Session => bridge.destroy_by_id(&SessionId::from(id.as_str())).await,
        Kind::Client => {
            bridge
                .destroy_by_client_id(&ClientId::from(id.as_str()))
                .await
        }
    };
    w.record(result);
}

#[when("the app runs a cleanup")]
async fn app_cleanup(w: &mut BridgeWorld) {
    let bridge = w.bridge();
    w.begin(None);
    w.record(bridge.cleanup().await);
}

#[when(regex = r"^the app starts auto cleanup every (.+)$")]
fn app_starts_auto_cleanup(w: &mut BridgeWorld, interval: String) {
    let bridge = w.bridge();
    w.begin(None);
    w.record(Ok(bridge.start_auto_cleanup(Some(duration(&interval)))));
}

#[when("the app starts auto cleanup with the default interval")]
fn app_starts_auto_cleanup_default(w: &mut BridgeWorld) {
    let bridge = w.bridge();
    w.begin(None);
    w.record(Ok(bridge.start_auto_cleanup(None)));
}

#[when("the app stops auto cleanup")]
fn app_stops_auto_cleanup(w: &mut BridgeWorld) {
    let bridge = w.bridge();
    w.begin(None);
    w.record(Ok(bridge.stop_auto_cleanup()));
}

#[when("the worker is asleep until its next run")]
async fn worker_asleep(w: &mut BridgeWorld) {
    assert!(w.worker.is_some(), "no worker was spawned");
    let clock = w.clock.clone();
    tokio::time::timeout(WORKER_GUARD, async {
        while clock.sleepers() == 0 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the worker went to sleep on the manual clock");
}

#[when("the worker has finished a cleanup run")]
async fn worker_ran(w: &mut BridgeWorld) {
    let BridgeWorld { events, seen, .. } = w;
    let events = events.as_mut().expect("the bridge is running");
    tokio::time::timeout(WORKER_GUARD, async {
        loop {
            let event = events.next().await.expect("the bridge is alive");
            let done = matches!(event, BridgeEvent::Cleanup(_));
            seen.push_back(event);
            if done {
                break;
            }
        }
    })
    .await
    .expect("the worker ran a cleanup after the clock passed its interval");
    let worker = w.worker.as_ref().expect("a spawned worker");
    assert!(!worker.is_finished(), "the worker keeps running");
}

#[when(regex = r"^the app writes (\{.*\}) straight into the store under (.+)$")]
async fn app_writes_store(w: &mut BridgeWorld, data: String, reference: String) {
    let sid = w.session_ref(&reference);
    w.write_record(&sid, &json(&data).to_string()).await;
}

#[given(regex = r"^the app has destroyed the record of (.+) straight in the store$")]
#[when(regex = r"^the app destroys the record of (.+) straight in the store$")]
async fn app_destroys_in_store(w: &mut BridgeWorld, reference: String) {
    let sid = w.session_ref(&reference);
    let version = w
        .store
        .get(&sid)
        .await
        .expect("store read")
        .expect("a record")
        .version;
    assert!(w.store.destroy(&sid, version).await.expect("store destroy"));
}

#[when(regex = r"^the app calls notify_store_set for (.+) with is_new = (true|false)$")]
async fn app_notifies_set(w: &mut BridgeWorld, reference: String, is_new: bool) {
    let bridge = w.bridge();
    let sid = w.session_ref(&reference);
    w.begin(None);
    w.record(
        bridge
            .notify_store_set(&SessionId::from(sid.as_str()), is_new)
            .await
            .map(|()| Value::Null),
    );
}

#[when(regex = r"^the app calls notify_store_destroy for (.+)$")]
fn app_notifies_destroy(w: &mut BridgeWorld, reference: String) {
    let bridge = w.bridge();
    let sid = w.session_ref(&reference);
    futures::executor::block_on(bridge.notify_store_destroy(&SessionId::from(sid.as_str())))
        .expect("mapping");
}

#[when(regex = r"^the app calls notify_store_cleanup with (\d+)$")]
fn app_notifies_cleanup(w: &mut BridgeWorld, count: usize) {
    w.bridge().notify_store_cleanup(count);
}

// ---------------------------------------------------------------------------------------------
// Then: what the handler or call saw
// ---------------------------------------------------------------------------------------------

#[then(regex = r"^the session is (\{.*\})$")]
fn session_is(w: &mut BridgeWorld, expected: String) {
    assert_eq!(w.outcome(), &json(&expected));
}

#[then(regex = r#"^([a-z_]\w*) is (-?\d+|"[^"]*"|true|false|null)$"#)]
fn key_is(w: &mut BridgeWorld, key: String, expected: String) {
    assert_eq!(w.outcome().get(&key), Some(&json(&expected)), "{key}");
}

#[then(regex = r"^the call returns (.+)$")]
fn call_returns(w: &mut BridgeWorld, expected: String) {
    let expected = if expected == "nothing" {
        Value::Null
    } else {
        json(&expected)
    };
    assert_eq!(w.outcome(), &expected);
}

#[then("every one of those requests succeeded with an empty session and no session cookie")]
fn batch_saw_nothing(w: &mut BridgeWorld) {
    assert!(!w.batch.is_empty(), "no requests were sent");
    let session_name = w.cookie_name("session");
    for (case, outcome, response) in &w.batch {
        match outcome {
            Ok(value) => assert_eq!(value, &json!({}), "{case}: saw a session"),
            Err(err) => panic!("{case}: failed with {err}"),
        }
        let cookie = find_set_cookie(response, &session_name);
        assert_eq!(cookie, None, "{case}: got a session cookie");
    }
}

#[then(regex = r"^each of those requests kept ([A-Z]\w*)'s client id$")]
fn batch_kept_client_id(w: &mut BridgeWorld, who: String) {
    assert!(!w.batch.is_empty(), "no requests were sent");
    let cid = id_of(&w.jar_value(&who, "client")).to_owned();
    for ((case, _, _), used) in w.batch.iter().zip(&w.batch_client_ids) {
        assert_eq!(
            used, &cid,
            "{case}: {who}'s client cookie was not recognised, so this row tested a request \
             without it"
        );
    }
}

#[then("the request succeeded")]
fn request_succeeded(w: &mut BridgeWorld) {
    w.outcome();
    w.response();
}

#[then(regex = r"^the (?:request|call) fails with (\w+)$")]
fn fails_with(w: &mut BridgeWorld, variant: String) {
    let err = w.error();
    let name = match err {
        Error::Store { .. } => "Store",
        Error::SessionTooLarge { .. } => "SessionTooLarge",
        Error::Json { .. } => "Json",
        Error::InvalidOption { .. } => "InvalidOption",
        Error::Unsupported { .. } => "Unsupported",
        Error::NotMapped => "NotMapped",
        Error::SessionMissing => "SessionMissing",
        Error::Contention { .. } => "Contention",
        Error::Conflict { .. } => "Conflict",
        _ => "another error",
    };
    assert_eq!(name, variant, "{err}");
}

#[then(regex = r"^the error does not reveal (.+)$")]
fn error_hides(w: &mut BridgeWorld, reference: String) {
    let (_, id) = w.resolve(&reference);
    let err = w.error();
    for shown in [err.to_string(), format!("{err:?}")] {
        assert!(!shown.contains(&id), "{shown:?} reveals {reference}");
    }
}

#[then(regex = r"^the error names the limit of (\d+) bytes$")]
fn error_names_limit(w: &mut BridgeWorld, expected: usize) {
    match w.error() {
        Error::SessionTooLarge { limit, size } => {
            assert_eq!(*limit, expected);
            assert!(size > limit, "{size} > {limit}");
        }
        other => panic!("not SessionTooLarge: {other}"),
    }
}

#[then(regex = r"^the error names the option (\w+)$")]
fn error_names_option(w: &mut BridgeWorld, expected: String) {
    match w.error() {
        Error::InvalidOption { option, .. } => assert_eq!(*option, expected),
        other => panic!("not InvalidOption: {other}"),
    }
}

#[then("the session id reported before the write is none")]
fn id_before_write(w: &mut BridgeWorld) {
    assert_eq!(w.outcome()["before"], Value::Null);
}

#[then("the session id reported after the write is the one in the response's session cookie")]
fn id_after_write(w: &mut BridgeWorld) {
    let cookie = w.expect_response_cookie("session");
    let cookie = cookie::Cookie::parse(cookie).expect("parseable");
    assert_eq!(w.outcome()["after"], json!(id_of(cookie.value())));
}

// ---------------------------------------------------------------------------------------------
// Then: the store
// ---------------------------------------------------------------------------------------------

#[then(regex = r"^the (?:request|call) made no store call$")]
fn no_store_call(w: &mut BridgeWorld) {
    assert_eq!(w.store.calls() - w.last.calls_before, 0);
}

#[then(regex = r"^the (?:request|call) wrote nothing to the store$")]
fn no_store_write(w: &mut BridgeWorld) {
    assert_eq!(w.store.writes() - w.last.writes_before, 0);
}

#[then(regex = r"^the (?:request|call) wrote to the store once$")]
fn one_store_write(w: &mut BridgeWorld) {
    assert_eq!(w.store.writes() - w.last.writes_before, 1);
}

#[then(regex = r"^the store holds (no|a) record for (.+)$")]
async fn store_holds(w: &mut BridgeWorld, presence: String, reference: String) {
    let sid = w.session_ref(&reference);
    let record = Store::get(&w.store.inner, &sid).await.expect("store read");
    assert_eq!(record.is_some(), presence == "a", "{reference}: {record:?}");
}

// ---------------------------------------------------------------------------------------------
// Then: the mapping and the events
// ---------------------------------------------------------------------------------------------

#[then(regex = r"^(.+) is mapped to (.+)$")]
fn is_mapped(w: &mut BridgeWorld, client: String, session: String) {
    let bridge = w.bridge();
    let (kind, cid) = w.resolve(&client);
    assert_eq!(kind, Kind::Client, "{client} is not a client id");
    let sid = w.session_ref(&session);
    let (cid, sid) = (ClientId::from(cid), SessionId::from(sid));
    assert_eq!(
        futures::executor::block_on(bridge.get_session_id(&cid))
            .expect("mapping")
            .as_ref(),
        Some(&sid)
    );
    assert_eq!(
        futures::executor::block_on(bridge.get_client_id(&sid))
            .expect("mapping")
            .as_ref(),
        Some(&cid)
    );
}

#[then(regex = r"^(.+) is not mapped$")]
fn is_not_mapped(w: &mut BridgeWorld, reference: String) {
    let bridge = w.bridge();
    let found = match w.resolve(&reference) {
        (Kind::Client, cid) => futures::executor::block_on(bridge.get_session_id(&cid.into()))
            .expect("mapping")
            .is_some(),
        (Kind::Session, sid) => futures::executor::block_on(bridge.get_client_id(&sid.into()))
            .expect("mapping")
            .is_some(),
    };
    assert!(!found, "{reference}");
}

#[then(regex = r"^the bridge has (\d+) mapped sessions?$")]
fn mapped_sessions(w: &mut BridgeWorld, expected: usize) {
    assert_eq!(w.bridge().mapped_sessions(), expected);
}

#[then("the bridge emitted exactly:")]
fn emitted_exactly(w: &mut BridgeWorld, step: &Step) {
    w.expect_events(step, false);
}

#[then("the bridge emitted, in any order:")]
fn emitted_any_order(w: &mut BridgeWorld, step: &Step) {
    w.expect_events(step, true);
}

#[then("the bridge emitted no event")]
fn emitted_nothing(w: &mut BridgeWorld) {
    w.bridge();
    w.drain();
    let events: Vec<_> = w.seen.drain(..).collect();
    assert!(events.is_empty(), "unexpected events: {events:?}");
}

// ---------------------------------------------------------------------------------------------
// Then: browsers' ids and cookies
// ---------------------------------------------------------------------------------------------

/// The id a response gave browser `who` in cookie `which`, and the id it had sent.
fn ids_around_last_request(w: &BridgeWorld, who: &str, which: &str) -> (Option<String>, String) {
    assert_eq!(
        w.last.who.as_deref(),
        Some(who),
        "the last request was not {who}'s"
    );
    let name = w.cookie_name(which);
    let sent = w.last.jar_before.get(&name).map(|v| id_of(v).to_owned());
    let cookie = find_set_cookie(w.response(), &name)
        .unwrap_or_else(|| panic!("the response sets no {which} cookie"));
    let cookie = cookie::Cookie::parse(cookie).expect("parseable");
    (sent, id_of(cookie.value()).to_owned())
}

#[then(regex = r"^([A-Z]\w*) got a new (session|client) id$")]
fn got_new_id(w: &mut BridgeWorld, who: String, which: String) {
    let (sent, given) = ids_around_last_request(w, &who, &which);
    assert!(!given.is_empty(), "the {which} cookie was cleared");
    assert_ne!(
        sent.as_ref(),
        Some(&given),
        "{who} kept the {which} id she sent"
    );
}

#[then(regex = r"^([A-Z]\w*) kept (?:her|his|their) client id$")]
fn kept_client_id(w: &mut BridgeWorld, who: String) {
    assert_eq!(
        w.last.who.as_deref(),
        Some(who.as_str()),
        "the last request was not {who}'s"
    );
    let name = w.cookie_name("client");
    let sent = w
        .last
        .jar_before
        .get(&name)
        .map(|v| id_of(v).to_owned())
        .unwrap_or_else(|| panic!("{who} sent no client cookie"));
    // The id the bridge actually used for the request, whether or not a cookie was re-sent
    // (with client_always_roll off a kept id is never re-sent, so the response alone proves
    // nothing).
    assert_eq!(
        w.last.client_id.as_deref(),
        Some(sent.as_str()),
        "the bridge did not use the client id {who} sent"
    );
    match find_set_cookie(w.response(), &name) {
        Some(cookie) => {
            let cookie = cookie::Cookie::parse(cookie).expect("parseable");
            assert_eq!(id_of(cookie.value()), sent);
        }
        None => assert!(
            !w.options.client_always_roll,
            "client_always_roll is on, yet the client cookie was not re-sent"
        ),
    }
}

#[then(regex = r"^([A-Z]\w*)'s session id differs from (.+)$")]
fn session_id_differs(w: &mut BridgeWorld, who: String, reference: String) {
    let mine = w.session_ref(&format!("{who}'s session id"));
    assert_ne!(mine, w.session_ref(&reference));
}

#[then(
    regex = r#"^([A-Z]\w*)'s (session|client) cookie is (?:her|his) (?:session|client) id, a dot and the base64url HMAC-SHA256 of "([^"]+)=<id>" under key ([AB])$"#
)]
fn cookie_is_signed_id(w: &mut BridgeWorld, who: String, which: String, name: String, k: String) {
    assert_eq!(
        name,
        w.cookie_name(&which),
        "the MAC covers the cookie's own name"
    );
    let value = w.jar_value(&who, &which);
    let id = match which.as_str() {
        "session" => w.session_ref(&format!("{who}'s session id")),
        _ => w.resolve(&format!("{who}'s client id")).1,
    };
    let expected = format!("{id}.{}", signature(&key(&k), &format!("{name}={id}")));
    assert_eq!(value, expected);
}

// ---------------------------------------------------------------------------------------------
// Then: the response's cookies
// ---------------------------------------------------------------------------------------------

#[then("the response sets no session cookie")]
fn no_session_cookie(w: &mut BridgeWorld) {
    let cookie = w.response_cookie("session");
    assert_eq!(cookie, None);
}

#[then("the response sets no cookie")]
fn no_cookie(w: &mut BridgeWorld) {
    assert_eq!(set_cookies(w.response()), Vec::<String>::new());
}

#[then(regex = r#"^the response sets exactly the cookies ((?:"[^"]+"(?:, )?)+)$"#)]
fn exactly_cookies(w: &mut BridgeWorld, names: String) {
    let mut expected: Vec<String> = names
        .split(", ")
        .map(|n| n.trim_matches('"').to_owned())
        .collect();
    let mut actual: Vec<String> = set_cookies(w.response())
        .iter()
        .map(|c| c.split_once('=').expect("name=value").0.to_owned())
        .collect();
    expected.sort();
    actual.sort();
    assert_eq!(actual, expected);
}

#[then(regex = r"^the response sets the client cookie with (.+)$")]
fn client_cookie_with(w: &mut BridgeWorld, attributes: String) {
    has_attributes(&w.expect_response_cookie("client"), &attributes);
}

#[then(regex = r"^the response sets a session cookie with (.+)$")]
fn session_cookie_with(w: &mut BridgeWorld, attributes: String) {
    has_attributes(&w.expect_response_cookie("session"), &attributes);
}

#[then("the response sets a session cookie without Max-Age")]
fn session_cookie_without_max_age(w: &mut BridgeWorld) {
    let cookie = w.expect_response_cookie("session");
    assert!(!cookie.contains("Max-Age"), "{cookie}");
    assert!(!cookie.contains("Expires"), "{cookie}");
}

#[then("the response clears the session cookie")]
fn clears_session_cookie(w: &mut BridgeWorld) {
    let cookie = w.expect_response_cookie("session");
    has_attributes(&cookie, "Max-Age=0");
    let parsed = cookie::Cookie::parse(cookie.as_str()).expect("parseable");
    assert_eq!(parsed.value(), "", "{cookie}");
}

#[then(regex = r"^the response re-signs ([A-Z]\w*)'s (session|client) cookie with (.+)$")]
fn re_signs(w: &mut BridgeWorld, who: String, which: String, attributes: String) {
    let name = w.cookie_name(&which);
    let before = w
        .last
        .jar_before
        .get(&name)
        .unwrap_or_else(|| panic!("{who} sent no {which} cookie"))
        .clone();
    let raw = w.expect_response_cookie(&which);
    has_attributes(&raw, &attributes);
    let after = cookie::Cookie::parse(raw.as_str()).expect("parseable");
    assert_ne!(after.value(), before, "not re-signed");
    assert_eq!(
        id_of(after.value()),
        id_of(&before),
        "same id, new signature"
    );
}

// ---------------------------------------------------------------------------------------------
// The runner
// ---------------------------------------------------------------------------------------------

#[tokio::main]
async fn main() {
    let features = concat!(env!("CARGO_MANIFEST_DIR"), "/features");
    let summary = BridgeWorld::cucumber()
        .fail_on_skipped()
        .run(features)
        .await;
    // `fail_on_skipped` turns skipped and undefined steps into failures; a run that found no
    // scenario at all is a failure too.
    let failed = summary.execution_has_failed()
        || summary.skipped_steps() > 0
        || summary.passed_steps() == 0;
    if failed {
        std::process::exit(1);
    }
}

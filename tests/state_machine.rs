//! A state machine over the whole bridge (SPEC L2, H2, H4, H5, H7, H8, S1, S3, S5, B2, GW1,
//! ST4): random sequences of operations by two browsers `A` and `B`, checked against a model
//! after every step.
//!
//! Operations: an HTTP request that loads, increments and commits a counter; an HTTP read; a
//! socket handshake (with the browser's current cookies) and a `with_session` increment;
//! `regenerate`; destroy over HTTP and by id; advancing the manual clock; arming a store
//! failure (the next store call, or the next store write, fails); restarting the bridge (a new bridge over the same
//! store, cookies kept). And an attacker, `M` (issue 18): it steals a browser's client cookie
//! (only that cookie: its jar is replaced by it), writes over HTTP with whatever its jar holds
//! (marking the session `M`'s), and plants its whole (client, session) pair in front of a
//! browser's own cookies, for one HTTP read and one socket read of that browser (H2, S1, C4).
//!
//! The model keeps, per browser, the counter of its live session (none when it has none), the
//! instant it expires (the last write plus the max age: reads do not refresh it), the id it
//! lives under and whether the restarted bridge's mapping knows it yet. After every step:
//!
//! - exact counters: every observed counter equals the model's; an acknowledged increment is
//!   counted exactly once; an operation that failed (only an injected store failure may make
//!   one fail) left the counter before or after the operation, never anything else (ST4:
//!   nothing half-written), and the model follows what a read then sees;
//! - no takeover: A never sees a session marked B's and vice versa, nor `M`'s (not even through
//!   a planted pair while its own session is live), and `M` never sees A's or B's;
//! - strict ids: a session id or client id seen by A is never seen by B;
//! - no resurrection: a destroyed, regenerated-away or expired session id never shows up
//!   again, and `get_by_id` never finds it; a destroyed session's counter never comes back;
//! - expiry: once the clock is past a session's last write plus the max age (or its creation
//!   plus the absolute timeout, whatever refreshed it: H9), nothing finds
//!   it (`get_by_id`, HTTP, sockets) and the next write starts at 1;
//! - `get_by_id` of every live session the bridge's mapping knows returns the model's counter;
//!   of one it does not know (after a restart), none (B2).

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use futures::executor::block_on;
use proptest::prelude::*;
use session_bridge::clock::ManualClock;
use session_bridge::testing::Browser;
use session_bridge::{Error, LiveStore, Record, Result, Session, SessionBridge, SessionId, Store};

const MAX_AGE: Duration = Duration::from_secs(24 * 3600);
const MAX_AGE_MS: u64 = 24 * 3600 * 1000;
/// H9: every session dies this long after its creation, whatever refreshed it (a few active
/// hours of 1- and 6-hour steps reach it).
const ABSOLUTE: Duration = Duration::from_secs(8 * 3600);
const ABSOLUTE_MS: u64 = 8 * 3600 * 1000;
const START_MS: u64 = 1_700_000_000_000;
/// Clock steps: short ones, and one past the max age.
const STEPS: [Duration; 5] = [
    Duration::from_secs(60),
    Duration::from_secs(3600),
    Duration::from_secs(6 * 3600),
    Duration::from_secs(23 * 3600),
    Duration::from_secs(25 * 3600),
];

/// A store whose next call (or next write) fails when armed: one failure per arming.
#[derive(Default)]
struct Faulty {
    inner: LiveStore,
    armed: AtomicBool,
    armed_write: AtomicBool,
    fired: AtomicUsize,
}

impl Faulty {
    fn trip(&self, op: &'static str) -> Result<()> {
        let write = matches!(op, "set" | "create" | "update" | "destroy");
        if self.armed.swap(false, Ordering::SeqCst)
            || (write && self.armed_write.swap(false, Ordering::SeqCst))
        {
            self.fired.fetch_add(1, Ordering::SeqCst);
            return Err(Error::store(op, std::io::Error::other("injected failure")));
        }
        Ok(())
    }

    fn fired(&self) -> usize {
        self.fired.load(Ordering::SeqCst)
    }
}

impl Store for Faulty {
    async fn get(&self, sid: &str) -> Result<Option<Record>> {
        self.trip("get")?;
        self.inner.get(sid).await
    }
    async fn create(&self, sid: &str, record: Record) -> Result<bool> {
        self.trip("create")?;
        self.inner.create(sid, record).await
    }
    async fn update(&self, sid: &str, record: Record, expected: u64) -> Result<bool> {
        self.trip("update")?;
        self.inner.update(sid, record, expected).await
    }
    async fn destroy(&self, sid: &str, expected: u64) -> Result<bool> {
        self.trip("destroy")?;
        self.inner.destroy(sid, expected).await
    }
    async fn list(&self) -> Result<Vec<String>> {
        self.trip("list")?;
        self.inner.list().await
    }
    async fn optimize(&self, cleared: usize) -> Result<()> {
        self.inner.optimize(cleared).await
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    A,
    B,
}

impl Who {
    fn name(self) -> &'static str {
        match self {
            Who::A => "A",
            Who::B => "B",
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    HttpIncrement(Who),
    HttpRead(Who),
    SocketIncrement(Who),
    Regenerate(Who),
    HttpDestroy(Who),
    DestroyById(Who),
    Advance(usize),
    FailNextStoreCall,
    FailNextStoreWrite,
    Restart,
    /// `M`'s jar becomes the browser's client cookie alone.
    StealClient(Who),
    /// `M` writes over HTTP with its jar.
    MalloryWrite,
    /// The browser reads (HTTP and a socket) with `M`'s pair planted before its own cookies.
    PlantedPair(Who),
}

fn who() -> impl Strategy<Value = Who> {
    prop_oneof![Just(Who::A), Just(Who::B)]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => who().prop_map(Op::HttpIncrement),
        2 => who().prop_map(Op::HttpRead),
        4 => who().prop_map(Op::SocketIncrement),
        1 => who().prop_map(Op::Regenerate),
        1 => who().prop_map(Op::HttpDestroy),
        1 => who().prop_map(Op::DestroyById),
        2 => (0..STEPS.len()).prop_map(Op::Advance),
        1 => Just(Op::FailNextStoreCall),
        1 => Just(Op::FailNextStoreWrite),
        1 => Just(Op::Restart),
        1 => who().prop_map(Op::StealClient),
        2 => Just(Op::MalloryWrite),
        1 => who().prop_map(Op::PlantedPair),
    ]
}

/// What one operation saw of a browser's session.
#[derive(Debug, Default)]
struct Seen {
    owner: Option<String>,
    /// The counter before the operation changed it.
    n: Option<u64>,
    /// The session id after the operation (none when it ended with no session).
    sid: Option<String>,
    cid: Option<String>,
}

/// The model of one browser.
struct Side {
    who: Who,
    browser: Browser,
    /// The counter of the live session; `None`: no live session.
    count: Option<u64>,
    /// When the live session expires (its last write plus the max age, never past its
    /// creation plus the absolute timeout).
    expires_at: u64,
    /// When the live session was created (a regenerate keeps it, H9).
    created_at: u64,
    /// The id of the live session.
    sid: Option<String>,
    /// Whether the bridge's mapping holds the live session (`None`: unknown, after a failure).
    mapped: Option<bool>,
    /// The client cookie under which `M` holds a session of its own: `M` stole it and wrote
    /// with it while this process's mapping knew no live session of it (the browser was
    /// anonymous, or a restart forgot the mapping). Both sessions are then tied to one client
    /// id and each one's next request re-attaches its own (the residual risk README names);
    /// while the browser keeps that client id, which one the mapping holds is unknown.
    contested: Option<String>,
    sids: HashSet<String>,
    cids: HashSet<String>,
}

impl Side {
    fn new(who: Who) -> Self {
        Self {
            who,
            browser: Browser::new(),
            count: None,
            expires_at: 0,
            created_at: 0,
            sid: None,
            mapped: None,
            contested: None,
            sids: HashSet::new(),
            cids: HashSet::new(),
        }
    }

    /// A write at `now` moved the expiry: the max age from now, capped by the absolute
    /// timeout from the creation (H9).
    fn refreshed(&mut self, now: u64) {
        self.expires_at = (now + MAX_AGE_MS).min(self.created_at + ABSOLUTE_MS);
    }

    /// The session ended (destroyed, moved away, expired): its id is dead for good.
    fn end(&mut self, dead: &mut HashSet<String>) {
        if let Some(sid) = self.sid.take() {
            dead.insert(sid);
        }
        self.count = None;
        self.mapped = None;
    }

    /// Whether the mapping's hold on this browser's session is unknown (see `contested`).
    fn is_contested(&self) -> bool {
        self.contested.is_some() && self.contested.as_deref() == self.browser.cookie(CLIENT)
    }

    /// A write at `now` left the live session `sid` with counter `n`.
    fn written(&mut self, n: u64, sid: Option<String>, now: u64) {
        if self.count.is_none() {
            self.created_at = now;
        }
        self.count = Some(n);
        self.refreshed(now);
        self.sid = sid;
        self.mapped = Some(true);
    }
}

struct World {
    clock: ManualClock,
    store: Arc<Faulty>,
    bridge: SessionBridge,
    sides: [Side; 2],
    /// The attacker's jar.
    mallory: Browser,
    /// Session ids that ended: never live again.
    dead: HashSet<String>,
}

fn build(clock: &ManualClock, store: &Arc<Faulty>) -> SessionBridge {
    SessionBridge::builder()
        .key("app.sid")
        .keys([[7u8; 32]])
        .max_age(MAX_AGE)
        .absolute_timeout(ABSOLUTE)
        .clock(clock.clone())
        .store(Arc::clone(store))
        .build()
        .expect("valid options")
}

async fn http_read(bridge: &SessionBridge, browser: &mut Browser) -> Result<Seen> {
    browser
        .request(bridge, async |s: &Session| -> Result<Seen> {
            Ok(Seen {
                owner: s.get::<String>("owner").await?,
                n: s.get::<u64>("n").await?,
                sid: s.session_id().await?.map(SessionId::into_string),
                cid: Some(s.client_id().into_string()),
            })
        })
        .await?
}

async fn http_increment(bridge: &SessionBridge, browser: &mut Browser, who: Who) -> Result<Seen> {
    browser
        .request(bridge, async |s: &Session| -> Result<Seen> {
            let owner = s.get::<String>("owner").await?;
            let n = s.get::<u64>("n").await?;
            s.insert("n", n.unwrap_or(0) + 1).await?;
            s.insert("owner", who.name()).await?;
            Ok(Seen {
                owner,
                n,
                sid: s.session_id().await?.map(SessionId::into_string),
                cid: Some(s.client_id().into_string()),
            })
        })
        .await?
}

async fn socket_increment(bridge: &SessionBridge, browser: &Browser) -> Result<Seen> {
    let socket = browser.socket(bridge).await?;
    let cid = socket.client_id().map(|c| c.into_string());
    let seen = socket
        .with_session_or_else(
            async |ctx| {
                let owner = ctx.get::<String>("owner").expect("a string");
                let n = ctx.get::<u64>("n").expect("a number");
                ctx.insert("n", n.unwrap_or(0) + 1).expect("a number");
                Seen {
                    owner,
                    n,
                    sid: Some(ctx.session_id().as_str().to_owned()),
                    cid: cid.clone(),
                }
            },
            Seen::default,
        )
        .await?;
    Ok(Seen { cid, ..seen })
}

const CLIENT: &str = "app.sid.cid";
const SESSION: &str = "app.sid";

/// `M`'s HTTP write: reads what its jar gives it, then marks the session `M`'s.
async fn mallory_write(bridge: &SessionBridge, browser: &mut Browser) -> Result<Seen> {
    browser
        .request(bridge, async |s: &Session| -> Result<Seen> {
            let owner = s.get::<String>("owner").await?;
            s.insert("owner", "M").await?;
            Ok(Seen {
                owner,
                ..Seen::default()
            })
        })
        .await?
}

/// The `owner` mark an HTTP read and a socket read see with `headers`.
async fn planted_read(
    bridge: &SessionBridge,
    headers: &http::HeaderMap,
) -> (Result<Option<String>>, Result<Option<String>>) {
    let http = async {
        let request = bridge.begin_request(headers);
        let owner = request.session().get::<String>("owner").await?;
        request.commit(&mut http::HeaderMap::new()).await?;
        Ok(owner)
    }
    .await;
    let socket = async {
        let socket = bridge.bind_socket(headers).await?;
        socket
            .with_session_or_else(async |ctx| ctx.get::<String>("owner"), || Ok(None))
            .await?
    }
    .await;
    (http, socket)
}

async fn regenerate(bridge: &SessionBridge, browser: &mut Browser) -> Result<Seen> {
    browser
        .request(bridge, async |s: &Session| -> Result<Seen> {
            let owner = s.get::<String>("owner").await?;
            let n = s.get::<u64>("n").await?;
            s.regenerate().await?;
            Ok(Seen {
                owner,
                n,
                sid: s.session_id().await?.map(SessionId::into_string),
                cid: Some(s.client_id().into_string()),
            })
        })
        .await?
}

async fn http_destroy(bridge: &SessionBridge, browser: &mut Browser) -> Result<Seen> {
    browser
        .request(bridge, async |s: &Session| -> Result<Seen> {
            let owner = s.get::<String>("owner").await?;
            let n = s.get::<u64>("n").await?;
            s.destroy().await?;
            Ok(Seen {
                owner,
                n,
                sid: None,
                cid: Some(s.client_id().into_string()),
            })
        })
        .await?
}

impl World {
    fn new() -> Self {
        let clock = ManualClock::new(START_MS);
        let store = Arc::new(Faulty {
            inner: LiveStore::with_clock(clock.clone()),
            ..Faulty::default()
        });
        let bridge = build(&clock, &store);
        Self {
            clock,
            store,
            bridge,
            sides: [Side::new(Who::A), Side::new(Who::B)],
            mallory: Browser::new(),
            dead: HashSet::new(),
        }
    }

    fn now(&self) -> u64 {
        use session_bridge::clock::Clock;
        self.clock.now_ms()
    }

    fn index(who: Who) -> usize {
        match who {
            Who::A => 0,
            Who::B => 1,
        }
    }

    /// Sessions whose time is up are gone (GW1): the model ends them.
    fn expire(&mut self) {
        let now = self.now();
        for side in &mut self.sides {
            if side.count.is_some() && now >= side.expires_at {
                side.end(&mut self.dead);
            }
        }
    }

    /// Checks an observation of `who`'s session: owner, ids.
    fn observe(&mut self, who: Who, seen: &Seen, live_after: bool) {
        let i = Self::index(who);
        let other = &self.sides[1 - i];
        if let Some(owner) = &seen.owner {
            assert_eq!(owner, who.name(), "takeover: {who:?} saw {owner}'s session");
        } else {
            assert_eq!(seen.n, None, "{who:?}: a counter without an owner mark");
        }
        if let Some(cid) = &seen.cid {
            assert!(
                !other.cids.contains(cid),
                "strict ids: {who:?} uses the other browser's client id"
            );
        }
        if let Some(sid) = &seen.sid {
            assert!(
                !other.sids.contains(sid),
                "strict ids: {who:?} sees a session id the other browser saw"
            );
            if live_after {
                assert!(
                    !self.dead.contains(sid),
                    "resurrection: {who:?}'s live session has a dead id"
                );
            }
        }
        let side = &mut self.sides[i];
        side.cids.extend(seen.cid.clone());
        side.sids.extend(seen.sid.clone());
    }

    fn step(&mut self, op: &Op) {
        self.expire();
        let fired = self.store.fired();
        let now = self.now();
        match *op {
            Op::Advance(i) => {
                self.clock.advance(STEPS[i]);
                self.expire();
            }
            Op::FailNextStoreCall => self.store.armed.store(true, Ordering::SeqCst),
            Op::FailNextStoreWrite => self.store.armed_write.store(true, Ordering::SeqCst),
            Op::Restart => {
                self.bridge = build(&self.clock, &self.store);
                for side in &mut self.sides {
                    side.mapped = Some(false);
                }
            }
            Op::StealClient(who) => {
                let mut stolen = Browser::new();
                if let Some(cid) = self.sides[Self::index(who)].browser.cookie(CLIENT) {
                    stolen.set_cookie(CLIENT, cid);
                }
                self.mallory = stolen;
            }
            Op::MalloryWrite => {
                let result = block_on(mallory_write(&self.bridge, &mut self.mallory));
                // M kept the stolen client id: its session is tied to that browser's id.
                let kept = self.mallory.cookie(CLIENT).map(str::to_owned);
                for side in &mut self.sides {
                    if kept.is_some() && side.browser.cookie(CLIENT) == kept.as_deref() {
                        side.contested = kept.clone();
                    }
                }
                match result {
                    Ok(seen) => assert!(
                        seen.owner.is_none() || seen.owner.as_deref() == Some("M"),
                        "takeover: M saw {:?}'s session",
                        seen.owner
                    ),
                    Err(e) => assert!(
                        self.store.fired() > fired,
                        "ST4: M's write failed without an injected store failure: {e}"
                    ),
                }
            }
            Op::PlantedPair(who) => {
                let i = Self::index(who);
                let (Some(mc), Some(ms)) =
                    (self.mallory.cookie(CLIENT), self.mallory.cookie(SESSION))
                else {
                    return;
                };
                let mut line = format!("{CLIENT}={mc}; {SESSION}={ms}");
                for name in [CLIENT, SESSION] {
                    if let Some(v) = self.sides[i].browser.cookie(name) {
                        line.push_str(&format!("; {name}={v}"));
                    }
                }
                let mut headers = http::HeaderMap::new();
                headers.insert(
                    http::header::COOKIE,
                    http::HeaderValue::from_str(&line).expect("cookie values are ASCII"),
                );
                // One read each, whose response the browser does not follow.
                let read = block_on(planted_read(&self.bridge, &headers));
                let live = self.sides[i].count.is_some();
                if live && self.sides[i].mapped == Some(false) {
                    // When M's pair is dead, the browser's own pair ties alone and its read
                    // re-attaches the session after a restart (H2 b): the model cannot tell.
                    self.sides[i].mapped = None;
                }
                for (path, seen) in [("HTTP", read.0), ("socket", read.1)] {
                    match seen {
                        Ok(owner) if live => assert_ne!(
                            owner.as_deref(),
                            Some("M"),
                            "C4: {who:?}'s {path} read ran in M's planted session"
                        ),
                        // With no live session of its own, a browser carries one tied pair:
                        // M's (cookie tossing; `__Host-` names prevent it, C5).
                        Ok(_) => {}
                        Err(e) => assert!(
                            self.store.fired() > fired,
                            "ST4: a read failed without an injected store failure: {e}"
                        ),
                    }
                }
            }
            Op::HttpRead(who) => {
                let i = Self::index(who);
                let before = self.sides[i].count;
                let result = block_on(http_read(&self.bridge, &mut self.sides[i].browser));
                match result {
                    Ok(seen) => {
                        self.observe(who, &seen, true);
                        assert_eq!(seen.n, before, "exact counters: {who:?} read");
                        if before.is_some() {
                            assert_eq!(seen.sid, self.sides[i].sid, "{who:?}: the id moved");
                            self.sides[i].mapped = Some(true);
                        }
                    }
                    Err(e) => self.failed(who, fired, &e, &[before]),
                }
            }
            Op::HttpIncrement(who) => {
                let i = Self::index(who);
                let before = self.sides[i].count;
                let after = Some(before.unwrap_or(0) + 1);
                let result = block_on(http_increment(
                    &self.bridge,
                    &mut self.sides[i].browser,
                    who,
                ));
                match result {
                    Ok(seen) => {
                        self.observe(who, &seen, true);
                        assert_eq!(seen.n, before, "exact counters: {who:?} HTTP increment");
                        if before.is_some() {
                            assert_eq!(seen.sid, self.sides[i].sid, "{who:?}: the id moved");
                        }
                        self.sides[i].written(before.unwrap_or(0) + 1, seen.sid, now);
                    }
                    Err(e) => self.failed(who, fired, &e, &[before, after]),
                }
            }
            Op::SocketIncrement(who) => {
                let i = Self::index(who);
                let before = self.sides[i].count;
                let result = block_on(socket_increment(&self.bridge, &self.sides[i].browser));
                match result {
                    Ok(seen) if seen.sid.is_none() => {
                        self.observe(who, &seen, false);
                        assert_eq!(
                            before, None,
                            "{who:?}: the socket sees no session, the model has one"
                        );
                    }
                    Ok(seen) => {
                        self.observe(who, &seen, true);
                        assert_eq!(seen.n, before, "exact counters: {who:?} socket increment");
                        assert_eq!(seen.sid, self.sides[i].sid, "{who:?}: the id moved");
                        self.sides[i].written(before.unwrap_or(0) + 1, seen.sid, now);
                    }
                    Err(e) => {
                        let after = before.map(|n| n + 1);
                        self.failed(who, fired, &e, &[before, after]);
                    }
                }
            }
            Op::Regenerate(who) => {
                let i = Self::index(who);
                let before = self.sides[i].count;
                let result = block_on(regenerate(&self.bridge, &mut self.sides[i].browser));
                match result {
                    Ok(seen) => {
                        self.observe(who, &seen, before.is_some());
                        assert_eq!(seen.n, before, "exact counters: {who:?} regenerate");
                        if let Some(n) = before {
                            assert_ne!(seen.sid, self.sides[i].sid, "H5: regenerate keeps the id");
                            // H9: the moved session keeps its creation time.
                            let created_at = self.sides[i].created_at;
                            self.sides[i].end(&mut self.dead);
                            self.sides[i].written(n, seen.sid, now);
                            self.sides[i].created_at = created_at;
                            self.sides[i].refreshed(now);
                        }
                    }
                    Err(e) => self.failed(who, fired, &e, &[before]),
                }
            }
            Op::HttpDestroy(who) => {
                let i = Self::index(who);
                let before = self.sides[i].count;
                let result = block_on(http_destroy(&self.bridge, &mut self.sides[i].browser));
                match result {
                    Ok(seen) => {
                        self.observe(who, &seen, false);
                        assert_eq!(seen.n, before, "exact counters: {who:?} destroy");
                        self.sides[i].end(&mut self.dead);
                    }
                    Err(e) => self.failed(who, fired, &e, &[before, None]),
                }
            }
            Op::DestroyById(who) => {
                let i = Self::index(who);
                let before = self.sides[i].count;
                let Some(sid) = self.sides[i].sid.clone() else {
                    return;
                };
                let mapped = self.sides[i]
                    .mapped
                    .filter(|_| !self.sides[i].is_contested());
                match block_on(self.bridge.destroy_by_id(&SessionId::from(sid.as_str()))) {
                    Ok(true) => {
                        assert_ne!(
                            mapped,
                            Some(false),
                            "B2: destroy_by_id destroyed a session the mapping does not hold"
                        );
                        self.sides[i].end(&mut self.dead);
                    }
                    Ok(false) => assert_ne!(
                        mapped,
                        Some(true),
                        "B2: destroy_by_id of a live, mapped session found nothing"
                    ),
                    Err(e) => self.failed(who, fired, &e, &[before, None]),
                }
            }
        }
        self.check_invariants();
    }

    /// An operation of `who` failed: only an injected store failure may cause that. The
    /// session was left as before or as after the operation (one of `allowed`): a read
    /// tells which, and the model follows it.
    fn failed(&mut self, who: Who, fired: usize, err: &Error, allowed: &[Option<u64>]) {
        assert!(
            self.store.fired() > fired,
            "ST4: {who:?}'s operation failed without an injected store failure: {err}"
        );
        let i = Self::index(who);
        let now = self.now();
        // The read must not trip an arming left over (a write one, when a read failed).
        let armed_write = self.store.armed_write.swap(false, Ordering::SeqCst);
        let seen = block_on(http_read(&self.bridge, &mut self.sides[i].browser))
            .expect("the read after a failure (nothing is armed)");
        self.store.armed_write.store(armed_write, Ordering::SeqCst);
        self.observe(who, &seen, seen.n.is_some());
        assert!(
            allowed.contains(&seen.n),
            "ST4: after a failed operation {who:?}'s counter is {:?}, expected one of {allowed:?}",
            seen.n
        );
        let side = &mut self.sides[i];
        match seen.n {
            None => side.end(&mut self.dead),
            Some(n) => {
                if side.count != Some(n) {
                    // The failed operation's write went through: it refreshed the expiry.
                    if side.count.is_none() {
                        side.created_at = now;
                    }
                    side.refreshed(now);
                }
                if side.sid != seen.sid {
                    side.sid = seen.sid.clone();
                    side.refreshed(now);
                }
                side.count = Some(n);
                side.mapped = Some(true);
            }
        }
    }

    fn check_invariants(&mut self) {
        let armed = self.store.armed.swap(false, Ordering::SeqCst);
        let armed_write = self.store.armed_write.swap(false, Ordering::SeqCst);
        let [a, b] = &self.sides;
        assert!(
            a.sids.is_disjoint(&b.sids),
            "strict ids: a session id seen by both"
        );
        assert!(
            a.cids.is_disjoint(&b.cids),
            "strict ids: a client id used by both"
        );
        for side in &self.sides {
            if let (Some(n), Some(sid)) = (side.count, &side.sid) {
                let data = block_on(self.bridge.get_by_id(&SessionId::from(sid.as_str())))
                    .expect("nothing is armed");
                match side.mapped.filter(|_| !side.is_contested()) {
                    Some(true) => {
                        let data = data.unwrap_or_else(|| {
                            panic!("{:?}'s live session is gone (model: n = {n})", side.who)
                        });
                        assert_eq!(data.get("n"), Some(&n.into()), "exact counters: get_by_id");
                        assert_eq!(data.get("owner"), Some(&side.who.name().into()));
                    }
                    Some(false) => assert_eq!(data, None, "B2: get_by_id of an unmapped id"),
                    None => {}
                }
            }
        }
        for sid in &self.dead {
            let data = block_on(self.bridge.get_by_id(&SessionId::from(sid.as_str())))
                .expect("nothing is armed");
            assert_eq!(data, None, "resurrection: get_by_id finds an ended session");
        }
        self.store.armed.store(armed, Ordering::SeqCst);
        self.store.armed_write.store(armed_write, Ordering::SeqCst);
    }
}

proptest! {
    // 64 cases unless PROPTEST_CASES asks for more (a longer local search).
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64),
        ..ProptestConfig::default()
    })]

    /// L2: the bridge against the model, 64 random sequences of up to 30 operations.
    #[test]
    fn bridge_follows_the_model(ops in prop::collection::vec(op(), 1..30)) {
        let mut world = World::new();
        for op in &ops {
            world.step(op);
        }
    }
}

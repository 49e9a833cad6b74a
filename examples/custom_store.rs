//! A user-written session store plugged into the bridge.
//!
//! The store is a plain `HashMap<String, Record>` behind a `std::sync::Mutex`, implementing the
//! synchronous [`SyncStore`] trait (a blanket impl makes it a `Store`). It overrides `create` and
//! `update` so each is one atomic step under the lock (ST5), implements `list` so cleanup
//! works with it, and maps a poisoned lock to an `Error` instead of panicking (SPEC ST4).
//!
//! `main` then
//! 1. runs the public conformance suite on it (`session_bridge::testing::conformance`),
//! 2. drives HTTP requests through a `SessionBridge` that uses it, following the cookies like a
//!    browser, and
//! 3. moves a `ManualClock` past the max-age to show the session expire without sleeping.
//!
//! Every claim it prints is also asserted, and CI runs it:
//!
//! ```text
//! cargo run --example custom_store
//! ```

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::executor::block_on;
use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderValue};
use session_bridge::{
    BridgeEvent, Error, Record, SessionBridge, SessionId, SyncStore, clock::ManualClock, testing,
};

const DAY: Duration = Duration::from_secs(24 * 3600);

/// A synchronous in-memory store: one lock, so every method is atomic.
#[derive(Debug, Default)]
struct MapStore {
    records: Mutex<HashMap<String, Record>>,
}

impl MapStore {
    /// The map, or a store error when a thread panicked while holding the lock: the bridge then
    /// answers that request with an error (a 500 from the glue) instead of panicking in turn.
    fn map(&self) -> Result<MutexGuard<'_, HashMap<String, Record>>, Error> {
        self.records
            .lock()
            .map_err(|_| Error::store("lock", "the store's mutex was poisoned by a panic"))
    }

    /// How many records are stored (expired or not).
    fn len(&self) -> Result<usize, Error> {
        Ok(self.map()?.len())
    }
}

impl SyncStore for MapStore {
    fn get(&self, sid: &str) -> Result<Option<Record>, Error> {
        Ok(self.map()?.get(sid).cloned())
    }

    /// Check and remove under one lock, on the version the caller read (ST5: a destroy decided
    /// on an old read never removes a newer record).
    fn destroy(&self, sid: &str, expected_version: u64) -> Result<bool, Error> {
        let mut map = self.map()?;
        if map.get(sid).is_none_or(|r| r.version != expected_version) {
            return Ok(false);
        }
        Ok(map.remove(sid).is_some())
    }

    /// Check and insert under one lock: of two concurrent creates of an id, exactly one wins
    /// (a `get` then an insert could let both through).
    fn create(&self, sid: &str, record: Record) -> Result<bool, Error> {
        use std::collections::hash_map::Entry;
        match self.map()?.entry(sid.to_owned()) {
            Entry::Occupied(_) => Ok(false),
            Entry::Vacant(slot) => {
                slot.insert(record);
                Ok(true)
            }
        }
    }

    /// Compare-and-set on the version under one lock; a missing record is never resurrected.
    fn update(&self, sid: &str, record: Record, expected_version: u64) -> Result<bool, Error> {
        match self.map()?.get_mut(sid) {
            Some(current) if current.version == expected_version => {
                *current = record;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn list(&self) -> Result<Vec<String>, Error> {
        Ok(self.map()?.keys().cloned().collect())
    }

    /// After a cleanup removed records, give the memory back.
    fn optimize(&self, cleared: usize) -> Result<(), Error> {
        if cleared > 0 {
            self.map()?.shrink_to_fit();
        }
        Ok(())
    }
}

/// A minimal cookie jar: what a browser keeps between requests.
#[derive(Debug, Default)]
struct Jar(BTreeMap<String, String>);

impl Jar {
    /// Follows a response's `Set-Cookie` headers (a `Max-Age=0` cookie deletes).
    fn absorb(&mut self, response: &HeaderMap) -> Result<(), Box<dyn std::error::Error>> {
        for value in response.get_all(SET_COOKIE) {
            let c = cookie::Cookie::parse(value.to_str()?)?;
            if c.max_age()
                .is_some_and(|age| age.is_zero() || age.is_negative())
            {
                self.0.remove(c.name());
            } else {
                self.0.insert(c.name().to_owned(), c.value().to_owned());
            }
        }
        Ok(())
    }

    /// The headers of the next request: one `Cookie` header with every cookie.
    fn request_headers(&self) -> Result<HeaderMap, Box<dyn std::error::Error>> {
        let mut headers = HeaderMap::new();
        if !self.0.is_empty() {
            let line = self
                .0
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect::<Vec<_>>()
                .join("; ");
            headers.insert(COOKIE, HeaderValue::from_str(&line)?);
        }
        Ok(headers)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    block_on(run())
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    // 1. The conformance suite every built-in store passes.
    let store = Arc::new(MapStore::default());
    let report = testing::conformance(&*store).await?;
    println!("conformance: passed {} checks; {report:?}", report.checks);
    assert!(report.supports_list, "list is implemented");
    assert_eq!(store.len()?, 0, "the suite destroys what it wrote");

    // 2. The same store behind a bridge; the example keeps its own `Arc` handle on it.
    let clock = ManualClock::new(1_700_000_000_000);
    let bridge = SessionBridge::builder()
        .key("app.sid")
        .keys(["demo signing key: replace with 32+ random bytes"])
        .max_age(DAY)
        .secure(false)
        .clock(clock.clone())
        .store(Arc::clone(&store))
        .build()?;
    let mut events = bridge.events();
    let mut jar = Jar::default();

    // Request 1: no cookies; the handler writes, so a session is created.
    let ctx = bridge.begin_request(&jar.request_headers()?);
    ctx.session().insert("user", "ada").await?;
    ctx.session().insert("visits", 1).await?;
    let sid = ctx
        .session()
        .session_id()
        .await?
        .ok_or("a written session has an id")?
        .into_string();
    let mut response = HeaderMap::new();
    ctx.commit(&mut response).await?;
    jar.absorb(&response)?;
    println!(
        "request 1: created a session, set cookies {:?}",
        jar.0.keys()
    );
    assert!(jar.0.contains_key("app.sid") && jar.0.contains_key("app.sid.cid"));

    let stored = store.get(&sid)?.ok_or("the record is in our store")?;
    println!(
        "           our store holds {} record(s): session {}, ttl {} ms",
        store.len()?,
        stored.session,
        stored.ttl
    );
    assert_eq!(store.len()?, 1);
    assert_eq!(stored.session, r#"{"user":"ada","visits":1}"#);
    assert_eq!(u128::from(stored.ttl), DAY.as_millis());
    assert!(matches!(
        events.try_next(),
        Some(BridgeEvent::SessionSet {
            is_new: true,
            is_init: true,
            ..
        })
    ));

    // Request 2: the browser sends the cookies back; the session is read from our store.
    let ctx = bridge.begin_request(&jar.request_headers()?);
    let user: Option<String> = ctx.session().get("user").await?;
    let visits: u64 = ctx.session().get("visits").await?.unwrap_or(0) + 1;
    ctx.session().insert("visits", visits).await?;
    let same_sid = ctx.session().session_id().await?;
    let mut response = HeaderMap::new();
    ctx.commit(&mut response).await?;
    jar.absorb(&response)?;
    println!("request 2: read back user = {user:?}, visits is now {visits}, same session id");
    assert_eq!(user.as_deref(), Some("ada"));
    assert_eq!(visits, 2);
    assert_eq!(same_sid.as_ref().map(SessionId::as_str), Some(sid.as_str()));
    assert!(
        store
            .get(&sid)?
            .is_some_and(|r| r.session.contains(r#""visits":2"#))
    );

    // 3. A day passes on the manual clock: no sleeping.
    clock.advance(DAY);
    println!("clock: advanced by max_age ({} s)", DAY.as_secs());
    while events.try_next().is_some() {}

    let ctx = bridge.begin_request(&jar.request_headers()?);
    let data = ctx.session().data().await?;
    let is_new = ctx.session().is_new().await?;
    let mut response = HeaderMap::new();
    ctx.commit(&mut response).await?;
    println!(
        "request 3: the session expired; this request got a fresh one (new: {is_new}, data: {data:?}), \
         and our store holds {} record(s)",
        store.len()?
    );
    assert!(is_new && data.is_empty());
    assert_eq!(store.len()?, 0, "the expired record was destroyed on read");
    assert_eq!(
        bridge
            .get_client_id(&SessionId::from(sid.as_str()))
            .await
            .expect("mapping"),
        None,
        "its mapping is gone"
    );
    assert!(matches!(
        events.try_next(),
        Some(BridgeEvent::SessionDestroy { session_id, .. }) if session_id == sid.as_str()
    ));
    println!("done: a custom store, conformance-checked, serving the bridge");
    Ok(())
}

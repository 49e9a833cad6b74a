//! The gateway over a store (SPEC GW1-GW5): expiry, JSON change detection, size limit,
//! versioned create/update. It knows nothing of clients, cookies or events: it reports what it
//! did, and the engine above turns that into mapping changes and events.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::id::IdTag;
use crate::record::Record;
use crate::store::{DynStore, LiveStore, SyncStore};

/// A live session as read from the store.
#[derive(Debug, Clone)]
pub(crate) struct Loaded {
    record: Record,
    data: Map<String, Value>,
}

impl Loaded {
    pub(crate) fn new(record: Record, data: Map<String, Value>) -> Self {
        Self { record, data }
    }

    pub(crate) fn record(&self) -> &Record {
        &self.record
    }

    pub(crate) fn data(&self) -> &Map<String, Value> {
        &self.data
    }

    pub(crate) fn into_data(self) -> Map<String, Value> {
        self.data
    }

    pub(crate) fn into_parts(self) -> (Record, Map<String, Value>) {
        (self.record, self.data)
    }
}

/// What `fetch` found.
#[derive(Debug)]
pub(crate) enum Fetched {
    Missing,
    /// The record was expired and has been destroyed (GW1).
    Expired,
    /// The record was corrupt and has been destroyed and reported (GW1, X2).
    Corrupt,
    Live(Loaded),
    /// Live, with the text and version the caller had seen (`fetch_unless_same`).
    Same(Record),
}

/// What `write` did.
/// What a write starts from: the stored record the change was made on, or a new session.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Base<'a> {
    Existing(&'a Record),
    /// A new record: owned by `owner` (a keyed tag, H2 b), created at `created_at` (now when
    /// `None`; a regenerated session keeps its creation time, H9).
    New {
        owner: Option<&'a str>,
        created_at: Option<u64>,
    },
}

#[derive(Debug)]
pub(crate) enum Written {
    /// Its time ran out before it could be written (the absolute timeout, H9): an existing
    /// record was destroyed, a new one not created.
    Gone,
    /// Same text and no refresh asked: nothing written (GW2).
    Unchanged,
    /// Written; `data_changed` is false for a TTL-only refresh.
    Stored { record: Record, data_changed: bool },
    /// `create` found the id taken, or `update` found it gone or moved by another writer.
    Conflict,
}

/// The bridge's store. The built-in [`LiveStore`] is called directly: its calls answer at
/// once, so a boxed future per call (what any other store costs, through [`DynStore`]) would
/// be an allocation for nothing.
struct StoreRef {
    any: Arc<dyn DynStore>,
    live: Option<Arc<LiveStore>>,
}

impl StoreRef {
    fn new(store: Arc<dyn DynStore>) -> Self {
        let live = Arc::clone(&store).into_any().downcast::<LiveStore>().ok();
        Self { any: store, live }
    }

    async fn get(&self, sid: &str) -> Result<Option<Record>> {
        match &self.live {
            Some(live) => SyncStore::get(&**live, sid),
            None => self.any.get(sid).await,
        }
    }

    async fn create(&self, sid: &str, record: Record) -> Result<bool> {
        match &self.live {
            Some(live) => SyncStore::create(&**live, sid, record),
            None => self.any.create(sid, record).await,
        }
    }

    async fn update(&self, sid: &str, record: Record, expected: u64) -> Result<bool> {
        match &self.live {
            Some(live) => SyncStore::update(&**live, sid, record, expected),
            None => self.any.update(sid, record, expected).await,
        }
    }

    async fn destroy(&self, sid: &str, expected: u64) -> Result<bool> {
        match &self.live {
            Some(live) => SyncStore::destroy(&**live, sid, expected),
            None => self.any.destroy(sid, expected).await,
        }
    }

    async fn list(&self) -> Result<Vec<String>> {
        self.any.list().await
    }

    async fn optimize(&self, cleared: usize) -> Result<()> {
        self.any.optimize(cleared).await
    }
}

pub(crate) struct Gateway {
    store: StoreRef,
    clock: Arc<dyn Clock>,
    default_ttl: u64,
    max_session_bytes: usize,
    tag_key: hmac::Hmac<sha2::Sha256>,
    /// H9: a session dies this long after `created_at`, whatever refreshed it (ms).
    absolute_timeout: Option<u64>,
}

impl Gateway {
    pub(crate) fn new(
        store: Arc<dyn DynStore>,
        clock: Arc<dyn Clock>,
        default_ttl: u64,
        max_session_bytes: usize,
        tag_key: hmac::Hmac<sha2::Sha256>,
    ) -> Self {
        Self {
            store: StoreRef::new(store),
            clock,
            default_ttl,
            max_session_bytes,
            tag_key,
            absolute_timeout: None,
        }
    }

    /// H9: sessions die `ms` after their creation, whatever refreshed them.
    pub(crate) fn absolute_timeout(mut self, ms: Option<u64>) -> Self {
        self.absolute_timeout = ms;
        self
    }

    /// The latest expiry a record created at `created_at` may have (H9).
    fn deadline(&self, created_at: u64) -> u64 {
        self.absolute_timeout
            .map_or(u64::MAX, |limit| created_at.saturating_add(limit))
    }

    /// GW1 and H9: whether `record` is dead at `now`.
    fn is_dead(&self, record: &Record, now: u64) -> bool {
        record.is_expired(now) || now >= self.deadline(record.created_at)
    }

    pub(crate) fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Every id in the store (GW4; `Err` when the store cannot list).
    pub(crate) async fn list(&self) -> Result<Vec<String>> {
        self.store.list().await
    }

    /// Lets the store compact after a cleanup that cleared `cleared` records (GW4).
    pub(crate) async fn optimize(&self, cleared: usize) -> Result<()> {
        self.store.optimize(cleared).await
    }

    pub(crate) fn now(&self) -> u64 {
        self.clock.now_ms()
    }

    pub(crate) fn tag(&self, sid: &str) -> IdTag {
        IdTag::new(&self.tag_key, "sid", sid, 10)
    }

    /// GW1: missing -> none; expired -> destroyed, none; not a JSON object -> destroyed, error.
    pub(crate) async fn fetch(&self, sid: &str) -> Result<Fetched> {
        self.fetch_unless_same(sid, None).await
    }

    /// [`fetch`](Self::fetch), except that a live record whose text and version are `seen`'s
    /// comes back as [`Fetched::Same`], not parsed again (its data is what the caller parsed
    /// from `seen`).
    pub(crate) async fn fetch_unless_same(
        &self,
        sid: &str,
        seen: Option<&Record>,
    ) -> Result<Fetched> {
        let Some(record) = self.store.get(sid).await? else {
            return Ok(Fetched::Missing);
        };
        // A destroy that finds nothing means another reader got there first and reports it:
        // say `Missing`, so each death is announced once.
        if self.is_dead(&record, self.now()) {
            let destroyed = self.store.destroy(sid, record.version).await?;
            return Ok(if destroyed {
                Fetched::Expired
            } else {
                Fetched::Missing
            });
        }
        if seen.is_some_and(|seen| seen.version == record.version && seen.session == record.session)
        {
            return Ok(Fetched::Same(record));
        }
        match record.session_object() {
            Ok(data) => Ok(Fetched::Live(Loaded { record, data })),
            Err(reason) => {
                if !self.store.destroy(sid, record.version).await? {
                    return Ok(Fetched::Missing);
                }
                let session = self.tag(sid);
                tracing::warn!(%session, %reason, "dropped a corrupt session record");
                Ok(Fetched::Corrupt)
            }
        }
    }

    /// GW2 with ST5's create/update split, from `base`. `ttl` overrides the record's TTL;
    /// `refresh` rewrites an unchanged session to push its expiry (rolling / renew). The
    /// expiry never passes the absolute timeout (H9): a write whose time has run out destroys
    /// instead (a TTL that ends in the past means delete).
    pub(crate) async fn write(
        &self,
        sid: &str,
        data: &Map<String, Value>,
        base: Base<'_>,
        ttl: Option<u64>,
        refresh: bool,
    ) -> Result<Written> {
        let text = serde_json::to_string(data)?;
        self.write_text(sid, text, base, ttl, refresh).await
    }

    /// [`write`](Self::write) of data already serialized as `text` (a JSON object).
    pub(crate) async fn write_text(
        &self,
        sid: &str,
        text: String,
        base: Base<'_>,
        ttl: Option<u64>,
        refresh: bool,
    ) -> Result<Written> {
        let previous = match base {
            Base::Existing(p) => Some(p),
            Base::New { .. } => None,
        };
        if text.len() > self.max_session_bytes {
            return Err(Error::SessionTooLarge {
                size: text.len(),
                limit: self.max_session_bytes,
            });
        }
        let ttl = ttl.or(previous.map(|p| p.ttl)).unwrap_or(self.default_ttl);
        let data_changed = previous.is_none_or(|p| p.session != text);
        let ttl_changed = previous.is_some_and(|p| p.ttl != ttl);
        if !data_changed && !ttl_changed && !refresh {
            return Ok(Written::Unchanged);
        }
        let now = self.now();
        let (created_at, owner) = match base {
            Base::Existing(p) => (p.created_at, p.owner.clone()),
            Base::New { owner, created_at } => {
                (created_at.unwrap_or(now), owner.map(str::to_owned))
            }
        };
        let expires_at = now.saturating_add(ttl).min(self.deadline(created_at));
        if expires_at <= now {
            if let Some(p) = previous {
                // Refused only when another writer moved it: its time is up all the same.
                self.store.destroy(sid, p.version).await?;
            }
            return Ok(Written::Gone);
        }
        let record = Record {
            session: text,
            expires_at,
            ttl,
            version: previous.map_or(0, |p| p.version.wrapping_add(1)),
            created_at,
            owner,
        };
        let ok = match previous {
            None => self.store.create(sid, record.clone()).await?,
            Some(p) => self.store.update(sid, record.clone(), p.version).await?,
        };
        Ok(if ok {
            Written::Stored {
                record,
                data_changed,
            }
        } else {
            Written::Conflict
        })
    }

    /// GW3 (the store part): destroys the record as it is now, conditionally on the version
    /// just read (ST5: never a bare delete that could remove a newer record; one that moved
    /// meanwhile is read again). Whether a record was there.
    pub(crate) async fn destroy(&self, sid: &str) -> Result<bool> {
        for _ in 0..crate::engine::WRITE_ATTEMPTS {
            let Some(record) = self.store.get(sid).await? else {
                return Ok(false);
            };
            if self.store.destroy(sid, record.version).await? {
                return Ok(true);
            }
        }
        Err(Error::Conflict {
            attempts: crate::engine::WRITE_ATTEMPTS,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::store::LiveStore;
    use futures::executor::block_on;

    const NEW: Base<'static> = Base::New {
        owner: None,
        created_at: None,
    };

    fn gateway(clock: &ManualClock, store: &LiveStore) -> Gateway {
        Gateway::new(
            Arc::new(store.clone()),
            Arc::new(clock.clone()),
            1_000,
            64,
            <hmac::Hmac<sha2::Sha256> as hmac::KeyInit>::new_from_slice(&[1; 32])
                .expect("any key length"),
        )
    }

    fn obj(text: &str) -> Map<String, Value> {
        match serde_json::from_str(text) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn gw1_expiry_is_inclusive_and_destroys() {
        let clock = ManualClock::new(0);
        let store = LiveStore::with_clock(clock.clone());
        let g = gateway(&clock, &store);
        block_on(async {
            assert!(matches!(
                g.write("s", &obj(r#"{"a":1}"#), NEW, None, false).await,
                Ok(Written::Stored { .. })
            ));
            clock.set(999);
            assert!(matches!(g.fetch("s").await, Ok(Fetched::Live(_))));
            clock.set(1_000);
            assert!(matches!(g.fetch("s").await, Ok(Fetched::Expired)));
            assert!(matches!(g.fetch("s").await, Ok(Fetched::Missing)));
        });
    }

    #[test]
    fn gw1_a_non_object_session_is_destroyed_and_reported_by_tag() {
        let clock = ManualClock::new(0);
        let store = LiveStore::with_clock(clock.clone());
        let g = gateway(&clock, &store);
        store.put("secret-sid", Record::new("[1,2]", 10, 10));
        block_on(async {
            match g.fetch("secret-sid").await {
                // Reported by a warning naming the tag (tests/log_hygiene.rs checks the line).
                Ok(Fetched::Corrupt) => {}
                other => panic!("{other:?}"),
            }
            assert_eq!(store.len(), 0);
        });
    }

    #[test]
    fn gw2_unchanged_text_writes_nothing_unless_refreshed() {
        let clock = ManualClock::new(0);
        let store = LiveStore::with_clock(clock.clone());
        let g = gateway(&clock, &store);
        block_on(async {
            let data = obj(r#"{"a":1}"#);
            let Ok(Written::Stored {
                record,
                data_changed: true,
            }) = g.write("s", &data, NEW, None, false).await
            else {
                panic!("create");
            };
            assert!(matches!(
                g.write("s", &data, Base::Existing(&record), None, false)
                    .await,
                Ok(Written::Unchanged)
            ));
            clock.set(500);
            match g
                .write("s", &data, Base::Existing(&record), None, true)
                .await
            {
                Ok(Written::Stored {
                    record: r2,
                    data_changed: false,
                }) => {
                    assert_eq!(r2.expires_at, 1_500);
                    assert_eq!(r2.version, record.version + 1);
                }
                other => panic!("{other:?}"),
            }
            // A writer holding the old version is refused (ST5).
            assert!(matches!(
                g.write(
                    "s",
                    &obj(r#"{"a":2}"#),
                    Base::Existing(&record),
                    None,
                    false
                )
                .await,
                Ok(Written::Conflict)
            ));
        });
    }

    #[test]
    fn x3_over_the_limit_is_refused_before_any_write() {
        let clock = ManualClock::new(0);
        let store = LiveStore::with_clock(clock.clone());
        let g = gateway(&clock, &store);
        let big = obj(&format!(r#"{{"a":"{}"}}"#, "x".repeat(100)));
        block_on(async {
            assert!(matches!(
                g.write("s", &big, NEW, None, false).await,
                Err(Error::SessionTooLarge { limit: 64, .. })
            ));
        });
        assert!(store.is_empty());
    }
}

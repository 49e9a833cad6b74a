//! The gateway over a store (SPEC GW1-GW5): expiry, JSON change detection, size limit,
//! versioned create/update. It knows nothing of clients, cookies or events: it reports what it
//! did, and the engine above turns that into mapping changes and events.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::id::IdTag;
use crate::record::Record;
use crate::store::DynStore;

/// A live session as read from the store.
#[derive(Debug, Clone)]
pub(crate) struct Loaded {
    pub(crate) record: Record,
    pub(crate) data: Map<String, Value>,
}

/// What `fetch` found.
#[derive(Debug)]
pub(crate) enum Fetched {
    Missing,
    /// The record was expired and has been destroyed (GW1).
    Expired,
    /// The record was corrupt and has been destroyed (GW1, X2).
    Corrupt(Error),
    Live(Loaded),
}

/// What `write` did.
#[derive(Debug)]
pub(crate) enum Written {
    /// Same text and no refresh asked: nothing written (GW2).
    Unchanged,
    /// Written; `data_changed` is false for a TTL-only refresh.
    Stored { record: Record, data_changed: bool },
    /// `create` found the id taken, or `update` found it gone or moved by another writer.
    Conflict,
}

pub(crate) struct Gateway {
    pub(crate) store: Arc<dyn DynStore>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) default_ttl: u64,
    pub(crate) max_session_bytes: usize,
    pub(crate) tag_key: Vec<u8>,
}

impl Gateway {
    pub(crate) fn now(&self) -> u64 {
        self.clock.now_ms()
    }

    pub(crate) fn tag(&self, sid: &str) -> IdTag {
        IdTag::new(&self.tag_key, "sid", sid, 10)
    }

    /// GW1: missing -> none; expired -> destroyed, none; not a JSON object -> destroyed, error.
    pub(crate) async fn fetch(&self, sid: &str) -> Result<Fetched> {
        let Some(record) = self.store.get(sid).await? else {
            return Ok(Fetched::Missing);
        };
        if record.is_expired(self.now()) {
            self.store.destroy(sid).await?;
            return Ok(Fetched::Expired);
        }
        match record.session_object() {
            Ok(data) => Ok(Fetched::Live(Loaded { record, data })),
            Err(reason) => {
                self.store.destroy(sid).await?;
                let err = Error::CorruptRecord {
                    tag: self.tag(sid),
                    reason,
                };
                tracing::warn!(error = %err, "dropped a corrupt session record");
                Ok(Fetched::Corrupt(err))
            }
        }
    }

    /// GW2 with R1's create/update split. `previous` is the record the change was made on
    /// (`None`: create). `ttl` overrides the record's TTL; `refresh` rewrites an unchanged
    /// session to push its expiry (rolling / renew).
    pub(crate) async fn write(
        &self,
        sid: &str,
        data: &Map<String, Value>,
        previous: Option<&Record>,
        ttl: Option<u64>,
        refresh: bool,
    ) -> Result<Written> {
        let text = serde_json::to_string(data)?;
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
        let record = Record {
            session: text,
            expires_at: self.now().saturating_add(ttl),
            ttl,
            version: previous.map_or(0, |p| p.version.wrapping_add(1)),
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

    /// GW3 (the store part): whether a record was there.
    pub(crate) async fn destroy(&self, sid: &str) -> Result<bool> {
        self.store.destroy(sid).await
    }

    /// GW4 (the store part): destroys every expired or corrupt record, returns their ids.
    pub(crate) async fn sweep_expired(&self) -> Result<Vec<String>> {
        let ids = self.store.list().await?;
        let mut cleared = Vec::new();
        for sid in ids {
            match self.fetch(&sid).await? {
                Fetched::Expired | Fetched::Corrupt(_) => cleared.push(sid),
                Fetched::Missing | Fetched::Live(_) => {}
            }
        }
        self.store.optimize(cleared.len()).await?;
        Ok(cleared)
    }
}

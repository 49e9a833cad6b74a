//! The engine's view of the client id <-> session id mapping: the in-memory map of one
//! process called directly (no boxed future, no I/O), or a shared [`ClientMap`] across nodes
//! (SPEC M1).

use std::sync::Arc;

use crate::error::Result;
use crate::nodes::{ClientMap, MemoryMap};

/// Who holds a session id in the mapping, as seen by one client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Holder {
    /// That client.
    This,
    /// Another client.
    Other,
    /// No client.
    Nobody,
}

pub(crate) enum Mapping {
    Memory(MemoryMap),
    Shared(Arc<dyn ClientMap>),
}

impl Default for Mapping {
    fn default() -> Self {
        Mapping::Memory(MemoryMap::default())
    }
}

impl Mapping {
    pub(crate) async fn session_id(&self, cid: &str) -> Result<Option<String>> {
        match self {
            Mapping::Memory(m) => Ok(m.session_id(cid)),
            Mapping::Shared(m) => m.session_id(cid).await,
        }
    }

    pub(crate) async fn client_id(&self, sid: &str) -> Result<Option<String>> {
        match self {
            Mapping::Memory(m) => Ok(m.client_id(sid)),
            Mapping::Shared(m) => m.client_id(sid).await,
        }
    }

    /// Who holds `sid`, as seen by client `cid` (H2).
    pub(crate) async fn holder(&self, sid: &str, cid: &str) -> Result<Holder> {
        match self {
            Mapping::Memory(m) => Ok(m.holder(sid, cid)),
            Mapping::Shared(m) => Ok(match m.client_id(sid).await? {
                Some(owner) if owner == cid => Holder::This,
                Some(_) => Holder::Other,
                None => Holder::Nobody,
            }),
        }
    }

    pub(crate) async fn attach(&self, cid: &str, sid: &str, expires_at: u64) -> Result<()> {
        match self {
            Mapping::Memory(m) => {
                m.attach(cid, sid, expires_at);
                Ok(())
            }
            Mapping::Shared(m) => m.attach(cid, sid, expires_at).await,
        }
    }

    pub(crate) async fn attach_if_unclaimed(
        &self,
        cid: &str,
        sid: &str,
        expires_at: u64,
    ) -> Result<bool> {
        match self {
            Mapping::Memory(m) => Ok(m.attach_if_unclaimed(cid, sid, expires_at)),
            Mapping::Shared(m) => m.attach_if_unclaimed(cid, sid, expires_at).await,
        }
    }

    pub(crate) async fn attach_new(
        &self,
        cid: &str,
        sid: &str,
        expires_at: u64,
        expected: Option<&str>,
    ) -> Result<bool> {
        match self {
            Mapping::Memory(m) => Ok(m.attach_new(cid, sid, expires_at, expected)),
            Mapping::Shared(m) => m.attach_new(cid, sid, expires_at, expected).await,
        }
    }

    pub(crate) async fn touch(&self, sid: &str, expires_at: u64) -> Result<Option<String>> {
        match self {
            Mapping::Memory(m) => Ok(m.touch(sid, expires_at)),
            Mapping::Shared(m) => m.touch(sid, expires_at).await,
        }
    }

    pub(crate) async fn detach(&self, sid: &str) -> Result<Option<String>> {
        match self {
            Mapping::Memory(m) => Ok(m.detach(sid)),
            Mapping::Shared(m) => m.detach(sid).await,
        }
    }

    pub(crate) async fn due(&self, now: u64, max: usize) -> Result<Vec<String>> {
        match self {
            Mapping::Memory(m) => Ok(m.due(now, max)),
            Mapping::Shared(m) => m.due(now, max).await,
        }
    }

    pub(crate) async fn retire_client(&self, cid: &str, until: u64, now: u64) -> Result<()> {
        match self {
            Mapping::Memory(m) => {
                m.retire(cid, until, now);
                Ok(())
            }
            Mapping::Shared(m) => m.retire_client(cid, until, now).await,
        }
    }

    pub(crate) async fn is_retired_client(
        &self,
        cid: &str,
        now: impl FnOnce() -> u64,
    ) -> Result<bool> {
        match self {
            Mapping::Memory(m) => Ok(m.is_retired(cid, now)),
            Mapping::Shared(m) => m.is_retired_client(cid, now()).await,
        }
    }

    /// Whether this is the process's own in-memory map (written only by this engine).
    pub(crate) fn is_local(&self) -> bool {
        matches!(self, Mapping::Memory(_))
    }

    /// C4 only: what this process knows without I/O (the store re-validates the choice).
    pub(crate) fn cached_session_id(&self, cid: &str) -> Option<String> {
        match self {
            Mapping::Memory(m) => m.session_id(cid),
            Mapping::Shared(m) => m.cached_session_id(cid),
        }
    }

    pub(crate) fn local_len(&self) -> usize {
        match self {
            Mapping::Memory(m) => m.len(),
            Mapping::Shared(m) => m.local_len(),
        }
    }

    pub(crate) fn invalidate(&self, sid: &str, cid: Option<&str>) {
        if let Mapping::Shared(m) = self {
            m.invalidate(sid, cid);
        }
    }
}

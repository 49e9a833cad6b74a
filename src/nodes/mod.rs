//! What nodes of one app share when they run behind a load balancer (SPEC M1-M4): the client
//! id <-> session id mapping ([`ClientMap`]), per-session exclusion ([`Exclusion`]) and
//! notices of session ends and moves ([`NoticeBus`]).
//!
//! One process needs none of this: the bridge keeps its mapping in memory ([`MemoryMap`]),
//! its locks in memory, and its events to itself. Many processes on one Redis plug the three
//! Redis implementations of [`redis`] (feature `redis`) with one call,
//! [`SessionBridgeBuilder::nodes`](crate::SessionBridgeBuilder::nodes).
//!
//! Nothing here is trusted over the store: every HTTP load and every `with_session`
//! re-validates what the mapping says against the record (its expiry, its existence, its
//! owner tag), so a stale or forged mapping entry can only make a session look missing, never
//! hand it to another browser (M1). Notices only invalidate and inform (M3); the record's
//! version is the fencing token of the exclusion (M2).

use futures::future::BoxFuture;

use crate::error::Result;
use crate::events::BridgeEvent;

mod memory;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis;

pub use memory::MemoryMap;

/// The client id <-> session id mapping (SPEC M1): 1:1, each entry expiring with its
/// session. It also remembers, briefly, the client ids that a `regenerate` replaced (so a
/// request still carrying one does not roll it back into the browser).
///
/// Every method may fail (a network map); the bridge turns a failure into a store error of
/// the request or socket call that needed it, and changes nothing else.
///
/// The conformance checks of [`testing::client_map_conformance`](crate::testing::client_map_conformance)
/// hold for [`MemoryMap`] and [`redis::RedisClientMap`]; run them on your own implementation.
pub trait ClientMap: Send + Sync + 'static {
    /// The session id mapped to client `cid`.
    fn session_id<'a>(&'a self, cid: &'a str) -> BoxFuture<'a, Result<Option<String>>>;

    /// The client id mapped to session `sid`.
    fn client_id<'a>(&'a self, sid: &'a str) -> BoxFuture<'a, Result<Option<String>>>;

    /// Links `cid` and `sid` until `expires_at` (ms), dropping whatever either was linked to
    /// before (1:1).
    fn attach<'a>(
        &'a self,
        cid: &'a str,
        sid: &'a str,
        expires_at: u64,
    ) -> BoxFuture<'a, Result<()>>;

    /// [`attach`](Self::attach) unless another client holds `sid`, atomically: two clients
    /// racing for one unclaimed session never both get it (H2 b, c). `true`: linked.
    fn attach_if_unclaimed<'a>(
        &'a self,
        cid: &'a str,
        sid: &'a str,
        expires_at: u64,
    ) -> BoxFuture<'a, Result<bool>>;

    /// Links `cid` to the newly created session `sid` only while `cid`'s entry is still
    /// `expected` (`None`: `cid` has no entry), atomically: a session created for a client
    /// never moves the client away from a session that another request attached meanwhile
    /// (H2: creation never moves a held client). `true`: linked.
    fn attach_new<'a>(
        &'a self,
        cid: &'a str,
        sid: &'a str,
        expires_at: u64,
        expected: Option<&'a str>,
    ) -> BoxFuture<'a, Result<bool>>;

    /// Moves the expiry of a mapped `sid`; returns its client id, if mapped.
    fn touch<'a>(&'a self, sid: &'a str, expires_at: u64) -> BoxFuture<'a, Result<Option<String>>>;

    /// Unlinks `sid`; returns the client id it had.
    fn detach<'a>(&'a self, sid: &'a str) -> BoxFuture<'a, Result<Option<String>>>;

    /// Up to `max` mapped session ids whose expiry is at or before `now`, for a map that does
    /// not expire its entries by itself (the bridge checks each against the store and retires
    /// it). A call may examine only part of the map, as long as repeated calls find every
    /// such entry. A map whose entries expire by themselves returns none (the default).
    fn due(&self, now: u64, max: usize) -> BoxFuture<'_, Result<Vec<String>>> {
        let _ = (now, max);
        Box::pin(async { Ok(Vec::new()) })
    }

    /// Remembers until `until` (ms) that `cid` was replaced by a `regenerate`; `now` lets a
    /// map without its own expiry forget the entries that ran out.
    fn retire_client<'a>(&'a self, cid: &'a str, until: u64, now: u64)
    -> BoxFuture<'a, Result<()>>;

    /// Whether `cid` was retired and `now` is before its `until`.
    fn is_retired_client<'a>(&'a self, cid: &'a str, now: u64) -> BoxFuture<'a, Result<bool>>;

    /// How many client <-> session pairs this process holds in its memory (all of them for
    /// [`MemoryMap`]; for a network map, the ones it caches, or 0).
    fn local_len(&self) -> usize {
        0
    }

    /// Drops whatever this process caches about `sid` and `cid` (called on another node's
    /// notice, M3). A map without a cache ignores it (the default).
    fn invalidate(&self, sid: &str, cid: Option<&str>) {
        let _ = (sid, cid);
    }

    /// The session id this process's cache maps to `cid`, without any I/O: used only to pick
    /// among several verified cookie values of one request (C4), after which the store
    /// re-validates the choice. `None` when unknown here.
    fn cached_session_id(&self, cid: &str) -> Option<String> {
        let _ = cid;
        None
    }
}

/// Per-session exclusion across processes (SPEC M2): while a [`Lease`] of a session id is
/// held, no other holder of the same id, on any node, holds one. The bridge takes it inside
/// its own per-session FIFO lock, so each node asks for a session's lease once at a time.
///
/// A lease may lapse (the holder stalled longer than its time to live); the record's version
/// then fences the late holder: its write is refused, never applied over a newer record.
pub trait Exclusion: Send + Sync + 'static {
    /// Waits for the lease of `sid` (in a fair order across nodes) or fails (the backend is
    /// down, or the wait exceeded the implementation's bound).
    fn acquire<'a>(&'a self, sid: &'a str) -> BoxFuture<'a, Result<Box<dyn Lease>>>;
}

/// A held lease.
pub trait Lease: Send + Sync {
    /// Whether the lease is known to have lapsed while held (a renewal found it gone).
    fn lost(&self) -> bool {
        false
    }

    /// Releases the lease, then calls `then` (which hands this node's own per-session lock to
    /// its next waiter, so that waiter does not queue behind a lease being released). `then`
    /// must be called exactly once, also when the release fails (the lease then lapses by
    /// itself). The default releases on drop and calls `then` at once.
    fn release(self: Box<Self>, then: Box<dyn FnOnce() + Send>) {
        drop(self);
        then();
    }
}

/// A session end or move, as sent between nodes (SPEC M3). It carries ids (the store holds
/// them anyway), never data, and grants nothing: a receiving node drops caches and tells its
/// listeners ([`BridgeEvent::Remote`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The sending node (notices of this node are ignored when they come back).
    pub node: String,
    /// What happened, as the sending node's bridge announced it.
    pub event: BridgeEvent,
}

/// Carries [`Notice`]s between the nodes of one app (SPEC M3).
pub trait NoticeBus: Send + Sync + 'static {
    /// This node's id, unique among the nodes (random per process).
    fn node(&self) -> &str;

    /// Sends `notice` to the other nodes. Never waits for them; a failure is logged, and
    /// loses only the notice (nothing depends on it for correctness).
    fn publish(&self, notice: Notice);

    /// Starts delivering the other nodes' notices to `deliver`, also after the backend
    /// reconnects. Called once, by the bridge's builder.
    fn listen(&self, deliver: Box<dyn Fn(Notice) + Send + Sync>);
}

//! The engine: the consistency core. It owns the state every flow shares (gateway, mapping,
//! events, locks, cookie codec), privately, and offers the few operations that keep mapping
//! and events consistent with the store (resolve, load, create, update, destroy, cleanup).
//! Both the HTTP flow and the socket flow go through these, so each rule is written once.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::clock::Clock;
use crate::cookies::{CookieConfig, ReadId};
use crate::error::{Error, Result};
use crate::events::{BridgeEvent, EndReason, EventStream, Events};
use crate::gateway::{Base, Fetched, Gateway, Loaded, Written};
use crate::id::{ClientId, IdGen, IdTag};
use crate::locks::{Guard, LockTable};
use crate::mapping::{Holder, Mapping};
use crate::nodes::{Exclusion, Notice, NoticeBus};
use crate::origin::OriginPolicy;
use crate::record::Record;

/// How many mapped-but-expired sessions one write may retire (keeps the mapping bounded).
const RETIRE_PER_WRITE: usize = 2;
/// How long a client id replaced by `regenerate` is never re-sent (covers requests in flight).
const RETIRED_CLIENT_TTL: u64 = 10 * 60_000;

/// C4: several different values of one cookie verified; none is trusted.
fn warn_ambiguous(cookie: &str) {
    tracing::warn!(
        cookie,
        "several different values of one cookie verify; trusting none of them"
    );
}

/// C4: two different complete (client, session) pairs both belong together; neither is
/// trusted (someone planted a whole pair of its own).
fn warn_tied_pairs(cookie: &str) {
    tracing::warn!(
        cookie,
        "two different complete cookie pairs verify and belong together; trusting neither"
    );
}

/// How many client ids a creation tries (H2: the caller's, then fresh ones).
const CREATE_ATTEMPTS: u32 = 3;

/// How many times a write retries when another writer moved the record (ST5).
pub(crate) const WRITE_ATTEMPTS: u32 = 4;

/// The HTTP commit policy: when an unchanged session is written anyway to move its expiry
/// (H5 `rolling` / `renew`), whether a 5xx response commits (H10), whether a destroy rotates
/// the client id (H8).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Policy {
    rolling: bool,
    renew: bool,
    commit_on_server_error: bool,
    rotate_client_on_destroy: bool,
    /// `false`: a socket sees only the session it proved at its handshake (S1).
    pin_sockets: bool,
    last_writer_wins: bool,
}

impl Policy {
    pub(crate) fn new(rolling: bool, renew: bool) -> Self {
        Self {
            rolling,
            renew,
            ..Self::default()
        }
    }

    pub(crate) fn commit_on_server_error(mut self, on: bool) -> Self {
        self.commit_on_server_error = on;
        self
    }

    pub(crate) fn rotate_client_on_destroy(mut self, on: bool) -> Self {
        self.rotate_client_on_destroy = on;
        self
    }

    pub(crate) fn sockets_follow_client(mut self, on: bool) -> Self {
        self.pin_sockets = !on;
        self
    }

    pub(crate) fn last_writer_wins(mut self, on: bool) -> Self {
        self.last_writer_wins = on;
        self
    }
}

/// The consistency core every flow shares. Its state is private: flows call its methods.
pub(crate) struct Engine {
    gateway: Gateway,
    mapping: Mapping,
    events: Events,
    locks: LockTable,
    ids: Arc<dyn IdGen>,
    cookies: CookieConfig,
    policy: Policy,
    origins: OriginPolicy,
    exclusion: Option<Arc<dyn Exclusion>>,
    notices: Option<Arc<dyn NoticeBus>>,
}

/// What the nodes of one app share (SPEC M1-M3); all local for one process.
#[derive(Default)]
pub(crate) struct Shared {
    pub(crate) mapping: Mapping,
    pub(crate) exclusion: Option<Arc<dyn Exclusion>>,
    pub(crate) notices: Option<Arc<dyn NoticeBus>>,
}

/// The session cookie of an HTTP request: none, verified, or candidates not verified yet.
pub(crate) enum SessionCookie {
    Absent,
    /// The candidates, unverified, joined by `;`.
    Pending(String),
    /// Several client values verified: every verified (client, session) candidate, paired
    /// at the first load against the mapping and the records' owners (C4).
    Pairs(Vec<ReadId>, Vec<ReadId>),
}

/// What a request's cookies prove at its first load (C4): the session cookie to use, and the
/// client id of the one pair that belongs together when it is not the one the request began
/// with.
pub(crate) struct Proof {
    pub(crate) client: Option<String>,
    pub(crate) session: Option<ReadId>,
}

/// The state an update left: the record as stored and whether this call wrote it (H11: a
/// write re-sends the session cookie).
pub(crate) struct Saved {
    loaded: Loaded,
    written: bool,
}

impl Saved {
    pub(crate) fn loaded(&self) -> &Loaded {
        &self.loaded
    }

    pub(crate) fn written(&self) -> bool {
        self.written
    }

    /// The record and data as stored now.
    pub(crate) fn into_loaded(self) -> Loaded {
        self.loaded
    }
}

/// What [`Engine::reload`] found of a live session.
pub(crate) enum Reloaded {
    /// The record the caller had seen, unchanged.
    Same(Record),
    /// Another record (parsed).
    Changed(Loaded),
}

/// A session [`Engine::create`] made.
pub(crate) struct Created {
    pub(crate) loaded: Loaded,
    /// The fresh client id the session belongs to, when it could not be the caller's (H2).
    pub(crate) new_client: Option<String>,
}

/// What [`Engine::save_edit`] came to.
pub(crate) enum Edit {
    /// Written, unchanged, or gone (`None`).
    Done(Option<Saved>),
    /// Another writer moved the record: the fresh one, for the closure to run again on, and
    /// the record and edit that were refused.
    Rerun {
        fresh: Loaded,
        base: Record,
        edited: Map<String, Value>,
    },
}

/// What one write attempt came to.
enum Attempt {
    /// Written, unchanged, or gone (`None`).
    Done(Option<Saved>),
    /// Another writer moved the record: the record and the data back.
    Conflict(Record, Map<String, Value>),
}

/// Either a loaded session or nothing; `Err` only for store failures and corrupt records.
pub(crate) type LoadResult = Result<Option<Loaded>>;

impl Engine {
    pub(crate) fn new(
        gateway: Gateway,
        cookies: CookieConfig,
        ids: Arc<dyn IdGen>,
        policy: Policy,
        origins: OriginPolicy,
        event_buffer: usize,
        shared: Shared,
    ) -> Self {
        Self {
            gateway,
            mapping: shared.mapping,
            events: Events::new(event_buffer),
            locks: LockTable::default(),
            ids,
            cookies,
            policy,
            origins,
            exclusion: shared.exclusion,
            notices: shared.notices,
        }
    }

    /// The notice bus, if the bridge runs on many nodes.
    pub(crate) fn notices(&self) -> Option<&Arc<dyn NoticeBus>> {
        self.notices.as_ref()
    }

    /// Another node's notice (M3): drops what this node caches about the session and tells
    /// this node's listeners, as [`BridgeEvent::Remote`]. Grants nothing.
    pub(crate) fn receive(&self, notice: Notice) {
        if self
            .notices
            .as_ref()
            .is_some_and(|bus| bus.node() == notice.node)
        {
            return;
        }
        match &notice.event {
            BridgeEvent::SessionSet {
                client_id,
                session_id,
                ..
            }
            | BridgeEvent::SessionDestroy {
                client_id,
                session_id,
                ..
            } => self.mapping.invalidate(
                session_id.as_str(),
                client_id.as_ref().map(ClientId::as_str),
            ),
            _ => return,
        }
        self.events
            .publish(BridgeEvent::Remote(Box::new(notice.event)));
    }

    /// Publishes `event` to this node's subscribers and, for session ends and mapping moves,
    /// to the other nodes (M3).
    fn announce(&self, event: BridgeEvent) {
        if let Some(bus) = &self.notices {
            let travels = matches!(
                event,
                BridgeEvent::SessionDestroy { .. } | BridgeEvent::SessionSet { is_init: true, .. }
            );
            if travels {
                bus.publish(Notice {
                    node: bus.node().to_owned(),
                    event: event.clone(),
                });
            }
        }
        self.events.publish(event);
    }

    pub(crate) fn now(&self) -> u64 {
        self.gateway.now()
    }

    pub(crate) fn clock(&self) -> &Arc<dyn Clock> {
        self.gateway.clock()
    }

    /// The cookie codec (names, attributes, signing).
    pub(crate) fn cookies(&self) -> &CookieConfig {
        &self.cookies
    }

    /// A fresh id from the bridge's `IdGen` (GW5).
    pub(crate) fn new_id(&self) -> String {
        self.ids.generate()
    }

    /// The client id and the session id a socket handshake's cookies carry, after C4 (see
    /// [`pick_pair`](Self::pick_pair)).
    pub(crate) async fn read_pair(
        &self,
        headers: &http::HeaderMap,
    ) -> Result<(Option<ReadId>, Option<ReadId>)> {
        let clients = self.cookies.read_clients(headers);
        let sessions = self.cookies.read_sessions(headers);
        self.pick_pair(clients, sessions, true).await
    }

    /// C4 with repeated names: the one (client, session) pair that belongs together (the
    /// mapping or the record's owner tag ties them) wins, whatever the order; when two
    /// different complete pairs both tie (someone planted a whole pair of its own), neither
    /// session cookie is trusted; otherwise two different values of one name trust neither.
    /// Each refusal logs a warning that names the cookie, never a value (the client cookie's
    /// only when `warn_clients`: the caller may have warned already).
    async fn pick_pair(
        &self,
        clients: Vec<ReadId>,
        sessions: Vec<ReadId>,
        warn_clients: bool,
    ) -> Result<(Option<ReadId>, Option<ReadId>)> {
        if clients.len() <= 1 && sessions.len() <= 1 {
            return Ok((clients.into_iter().next(), sessions.into_iter().next()));
        }
        let mut tied = Vec::new();
        for client in &clients {
            for session in &sessions {
                if self.ties(client.id(), session.id()).await? {
                    tied.push((client, session));
                }
            }
        }
        let client_name = warn_clients.then(|| self.cookies.client_name());
        Ok(match tied.as_slice() {
            [(client, session)] => (Some((*client).clone()), Some((*session).clone())),
            [] => (
                self.only(clients, client_name),
                self.only(sessions, Some(self.cookies.session_name())),
            ),
            _ => {
                warn_tied_pairs(self.cookies.session_name());
                (self.only(clients, client_name), None)
            }
        })
    }

    /// The one value of a cookie name, or none (with C4's warning naming it, when `name` is
    /// given) when several verified.
    fn only(&self, mut found: Vec<ReadId>, name: Option<&str>) -> Option<ReadId> {
        if found.len() > 1 {
            if let Some(name) = name {
                warn_ambiguous(name);
            }
            return None;
        }
        found.pop()
    }

    /// C4: whether client `cid` and session `sid` belong together: the mapping links them,
    /// or the live record of `sid` carries `cid`'s owner tag (a tag, not its absence).
    async fn ties(&self, cid: &str, sid: &str) -> Result<bool> {
        if self.mapping.session_id(cid).await?.as_deref() == Some(sid) {
            return Ok(true);
        }
        let loaded = self.load(sid).await?;
        Ok(loaded.is_some_and(|l| self.tagged_for(l.record(), cid)))
    }

    /// H1/C4 for an HTTP request: the client cookie verified now, the session cookie's
    /// candidates kept unverified (a request that never touches the session never pays for
    /// them). With several client values, the request begins with the one whose pair this
    /// process's mapping ties (its client id is needed at once, without I/O), else none (a
    /// new client id); every candidate is kept, and the first load pairs them for good
    /// against the mapping and the records' owners ([`prove`](Self::prove)).
    pub(crate) fn read_ids_lazy(
        &self,
        headers: &http::HeaderMap,
    ) -> (Option<ReadId>, SessionCookie) {
        let (client, several, candidates) =
            self.cookies.read_client_and_session_candidates(headers);
        if several {
            let clients = self.cookies.read_clients(headers);
            let sessions = self.cookies.read_sessions(headers);
            let mut cached = clients.iter().filter(|client| {
                let mapped = self.mapping.cached_session_id(client.id());
                sessions.iter().any(|s| mapped.as_deref() == Some(s.id()))
            });
            let begin = match (cached.next(), cached.next()) {
                (Some(only), None) => Some(only.clone()),
                _ => {
                    warn_ambiguous(self.cookies.client_name());
                    None
                }
            };
            return (begin, SessionCookie::Pairs(clients, sessions));
        }
        let session = if candidates.is_empty() {
            SessionCookie::Absent
        } else {
            SessionCookie::Pending(candidates)
        };
        (client, session)
    }

    /// What the cookies of a request that began as client `cid` prove (C1, C2, C4): one
    /// session value that verifies, or among several the one that belongs to `cid` (the
    /// mapping or the record's owner tag ties them); with several client values, the one
    /// pair that belongs together ([`pick_pair`](Self::pick_pair)), whose client the request
    /// then answers as. No session when nothing, or more than one pair, belongs together.
    pub(crate) async fn prove(&self, cid: &str, cookie: &SessionCookie) -> Result<Proof> {
        let session = match cookie {
            SessionCookie::Absent => None,
            SessionCookie::Pending(candidates) => {
                let verified = self.cookies.verify_sessions(candidates);
                let clients = Vec::from([ReadId::plain(cid)]);
                self.pick_pair(clients, verified, false).await?.1
            }
            SessionCookie::Pairs(clients, sessions) => {
                let (client, session) = self
                    .pick_pair(clients.clone(), sessions.clone(), false)
                    .await?;
                let client = client
                    .map(|c| c.into_parts().0)
                    .filter(|c| session.is_some() && c != cid);
                return Ok(Proof { client, session });
            }
        };
        Ok(Proof {
            client: None,
            session,
        })
    }

    /// Whether a socket handshake's `Origin` may open a socket.
    pub(crate) fn origin_allows(&self, headers: &http::HeaderMap) -> bool {
        self.origins.allows(headers)
    }

    /// Whether an unchanged session with record `base` is rewritten now to move its expiry.
    pub(crate) fn refresh_due(&self, base: &Record) -> bool {
        let renew_due =
            self.policy.renew && base.expires_at.saturating_sub(self.now()) < base.ttl / 2;
        self.policy.rolling || renew_due
    }

    /// H10: whether a response with this status commits the request's session changes.
    pub(crate) fn commits(&self, status: http::StatusCode) -> bool {
        !status.is_server_error() || self.policy.commit_on_server_error
    }

    /// H12: whether an HTTP commit skips the read-set conflict check.
    pub(crate) fn last_writer_wins(&self) -> bool {
        self.policy.last_writer_wins
    }

    /// S1: whether a socket sees only the session it proved at its handshake.
    pub(crate) fn pins_sockets(&self) -> bool {
        self.policy.pin_sockets
    }

    /// H8: whether destroying a session gives the browser a new client id.
    pub(crate) fn rotates_client_on_destroy(&self) -> bool {
        self.policy.rotate_client_on_destroy
    }

    /// The session id mapped to `cid` (B1).
    pub(crate) async fn session_of(&self, cid: &str) -> Result<Option<String>> {
        self.mapping.session_id(cid).await
    }

    /// The client id mapped to `sid` (B1).
    pub(crate) async fn client_of(&self, sid: &str) -> Result<Option<String>> {
        self.mapping.client_id(sid).await
    }

    /// How many client <-> session pairs this process's mapping holds in memory.
    pub(crate) fn mapped_sessions(&self) -> usize {
        self.mapping.local_len()
    }

    /// How many sessions have a lock entry (held or waited for).
    pub(crate) fn active_locks(&self) -> usize {
        self.locks.len()
    }

    pub(crate) fn subscribe(&self, filter: crate::events::EventFilter) -> EventStream {
        self.events.subscribe(filter)
    }

    /// `Cleanup(count)` (GW4, B4).
    pub(crate) fn announce_cleanup(&self, count: usize) {
        self.announce(BridgeEvent::Cleanup(count));
    }

    /// A keyed, non-reversible tag of a client id (rooms, logs).
    pub(crate) fn client_tag(&self, cid: &str) -> IdTag {
        IdTag::new(self.cookies.tag_key(), "client-room", cid, 22)
    }

    /// The exclusion of `sid` (S3, M2): this process's FIFO lock, then, on many nodes, the
    /// nodes' lease. Fails only when the lease cannot be had (its backend is down).
    pub(crate) async fn lock(&self, sid: &str) -> Result<Guard> {
        let local = self.locks.acquire(sid).await;
        let lease = match &self.exclusion {
            Some(exclusion) => Some(exclusion.acquire(sid).await?),
            None => None,
        };
        Ok(Guard::new(local, lease))
    }

    /// [`lock`](Self::lock), recording the wait in `span`'s `lock_wait_us`.
    pub(crate) async fn lock_timed(&self, sid: &str, span: &tracing::Span) -> Result<Guard> {
        let timer = crate::clock::SpanTimer::start(span);
        let guard = self.lock(sid).await;
        timer.record(span, "lock_wait_us");
        guard
    }

    /// The keyed tag that names session `sid` in logs and spans (L1), never the id.
    pub(crate) fn session_tag(&self, sid: &str) -> IdTag {
        self.gateway.tag(sid)
    }

    /// GW1 plus its consequences: an expired or corrupt record is destroyed and announced.
    pub(crate) async fn load(&self, sid: &str) -> LoadResult {
        let fetched = self.gateway.fetch(sid).await?;
        Ok(match self.loaded_from(sid, fetched).await? {
            Some(Reloaded::Changed(loaded)) => Some(loaded),
            // `fetch` compares with nothing, so this does not come; parsed all the same.
            Some(Reloaded::Same(record)) => match record.session_object() {
                Ok(data) => Some(Loaded::new(record, data)),
                Err(_) => None,
            },
            None => None,
        })
    }

    /// [`load`](Self::load) under the session's lock of a session last seen as `seen`: when
    /// the record still has `seen`'s version and text it is not parsed again (`Same`: its
    /// data is what the caller parsed from `seen`).
    pub(crate) async fn reload(&self, sid: &str, seen: &Record) -> Result<Option<Reloaded>> {
        let fetched = self.gateway.fetch_unless_same(sid, Some(seen)).await?;
        self.loaded_from(sid, fetched).await
    }

    async fn loaded_from(&self, sid: &str, fetched: Fetched) -> Result<Option<Reloaded>> {
        match fetched {
            Fetched::Missing => {
                self.announce_if_mapped(sid).await?;
                Ok(None)
            }
            Fetched::Live(loaded) => Ok(Some(Reloaded::Changed(loaded))),
            Fetched::Same(record) => Ok(Some(Reloaded::Same(record))),
            Fetched::Expired => {
                self.announce_destroy(sid, EndReason::Expired).await?;
                Ok(None)
            }
            // GW1: dropped and reported (a warning by tag, the end announced); the caller
            // goes on without it.
            Fetched::Corrupt => {
                self.announce_destroy(sid, EndReason::Corrupt).await?;
                Ok(None)
            }
        }
    }

    /// [`load`](Self::load) of the session the mapping gives client `cid`, re-validated
    /// against the record (M1): a record whose owner tag names another client is not this
    /// client's, whatever the mapping says (a stale or forged entry), so it is `None`.
    pub(crate) async fn load_owned(&self, cid: &str, sid: &str) -> LoadResult {
        let Some(loaded) = self.load(sid).await? else {
            return Ok(None);
        };
        // This process's own map is written only by this engine, after the same owner checks:
        // re-checking it would cost a MAC per call for nothing. A shared map is checked.
        if self.mapping.is_local() {
            return Ok(Some(loaded));
        }
        if !self.owned_by(loaded.record(), cid) {
            tracing::warn!(
                session = %self.session_tag(sid),
                "the client mapping names a session whose record another client owns; ignored"
            );
            return Ok(None);
        }
        Ok(Some(loaded))
    }

    /// Whether client `cid` holds a live session of its own now (S1: a socket that did not
    /// prove it is given none; H2: a creation that did not prove it never moves the client).
    pub(crate) async fn holds_live_session(&self, cid: &str) -> Result<bool> {
        match self.mapping.session_id(cid).await? {
            Some(held) => Ok(self.load_owned(cid, &held).await?.is_some()),
            None => Ok(false),
        }
    }

    /// H2: the session an HTTP request (or a socket handshake, S1) may use, given its client
    /// id and the id its signed session cookie names. Never adopts an unknown id, never takes
    /// a session that another client holds.
    pub(crate) async fn resolve(&self, cid: &str, cookie_sid: Option<&str>) -> LoadResult {
        let Some(sid) = cookie_sid else {
            return Ok(None);
        };
        match self.mapping.holder(sid, cid).await? {
            // (a) already ours, if the record agrees (M1)
            Holder::This => self.load_owned(cid, sid).await,
            // (c) another client's, says the mapping; the record decides (M1): its owner tag
            // names this client only if the entry is stale or forged, and then the browser
            // keeps its session. Anyone else's cookie is ignored.
            Holder::Other => {
                let Some(loaded) = self.load(sid).await? else {
                    return Ok(None);
                };
                // An unowned record (format 1) is not reclaimed: only a tag can prove it.
                if !self.tagged_for(loaded.record(), cid) {
                    return Ok(None);
                }
                self.mapping
                    .attach(cid, sid, loaded.record().expires_at)
                    .await?;
                self.announce_attached(cid, sid);
                Ok(Some(loaded))
            }
            Holder::Nobody => {
                // (b) live, unclaimed and tagged for this client: attach; (d) unknown: ignore.
                // A live record owned by another client is never adopted: a tossed session
                // cookie must not move a victim into the attacker's session (ST2). Nor is a
                // record with no owner tag: anyone holding its signed id could take it.
                let Some(loaded) = self.load(sid).await? else {
                    return Ok(None);
                };
                if self.tagged_for(loaded.record(), cid)
                    && self.claim(cid, sid, loaded.record().expires_at).await?
                {
                    Ok(Some(loaded))
                } else {
                    Ok(None)
                }
            }
        }
    }

    /// Attaches `cid` <-> `sid` unless another client claimed `sid` meanwhile; announces
    /// `SessionSet { is_new: false, is_init: true }` (H2 b).
    async fn claim(&self, cid: &str, sid: &str, expires_at: u64) -> Result<bool> {
        if !self
            .mapping
            .attach_if_unclaimed(cid, sid, expires_at)
            .await?
        {
            return Ok(false);
        }
        self.announce_attached(cid, sid);
        Ok(true)
    }

    /// `SessionSet { is_new: false, is_init: true }`: an existing session attached to `cid`.
    fn announce_attached(&self, cid: &str, sid: &str) {
        self.announce(BridgeEvent::SessionSet {
            client_id: Some(cid.into()),
            session_id: sid.into(),
            is_new: false,
            is_init: true,
        });
    }

    /// Whether `record` may be `cid`'s when the mapping already links them (M1): its owner
    /// tag names `cid` under a key of the ring, or it has no owner (a format-1 record, which
    /// only its mapped client keeps; ST2).
    fn owned_by(&self, record: &Record, cid: &str) -> bool {
        record.owner.is_none() || self.tagged_for(record, cid)
    }

    /// Whether `record` carries `cid`'s owner tag: the only proof that adopts a record the
    /// mapping does not link to `cid` (H2 b, c; a record without a tag is never adopted).
    fn tagged_for(&self, record: &Record, cid: &str) -> bool {
        record
            .owner
            .as_deref()
            .is_some_and(|owner| self.cookies.is_owner(owner, cid))
    }

    /// Announces a write that went through the gateway (GW2) and keeps the mapping's expiry.
    pub(crate) async fn announce_set(
        &self,
        sid: &str,
        record_expires_at: u64,
        is_new: bool,
        data_changed: bool,
    ) -> Result<()> {
        let client_id = self.mapping.touch(sid, record_expires_at).await?;
        if data_changed {
            self.announce(BridgeEvent::SessionSet {
                client_id: client_id.map(ClientId::from),
                session_id: sid.into(),
                is_new,
                is_init: false,
            });
        }
        Ok(())
    }

    /// Emits `SessionDestroy` (H7): the one place that builds it.
    fn publish_destroy(&self, client_id: Option<String>, sid: &str, reason: EndReason) {
        self.announce(BridgeEvent::SessionDestroy {
            client_id: client_id.map(ClientId::from),
            session_id: sid.into(),
            reason,
        });
    }

    /// A mapped session found missing from the store was destroyed behind the bridge's back
    /// (LiveStore's expiry sweep, another process, a TTL in Redis): say so once (H7), so
    /// sockets and listeners do not wait for a session that is dead.
    async fn announce_if_mapped(&self, sid: &str) -> Result<()> {
        if let Some(cid) = self.mapping.detach(sid).await? {
            // Behind our back means its time ran out somewhere (a sweep, a store TTL) or
            // another process destroyed it: either way it has expired for us.
            self.publish_destroy(Some(cid), sid, EndReason::Expired);
        }
        Ok(())
    }

    /// A session found gone: its mapping entry is dropped, nothing announced (B4).
    pub(crate) async fn forget(&self, sid: &str) -> Result<()> {
        self.mapping.detach(sid).await.map(drop)
    }

    /// A record is gone (GW3): mapping entry removed, `SessionDestroy` emitted (H7).
    pub(crate) async fn announce_destroy(&self, sid: &str, reason: EndReason) -> Result<()> {
        let client_id = self.mapping.detach(sid).await?;
        self.publish_destroy(client_id, sid, reason);
        Ok(())
    }

    /// GW3: destroys `sid` at the app's request; announces it only if a record was really
    /// there (H7).
    pub(crate) async fn destroy(&self, sid: &str) -> Result<bool> {
        self.destroy_owned(sid, None, EndReason::Destroyed).await
    }

    /// [`destroy`](Self::destroy), naming `owner` in the event when the mapping no longer
    /// knows it (the request that destroys a session may have just mapped its client to a
    /// new one).
    pub(crate) async fn destroy_owned(
        &self,
        sid: &str,
        owner: Option<String>,
        reason: EndReason,
    ) -> Result<bool> {
        let existed = self.gateway.destroy(sid).await?;
        let mapped = self.mapping.detach(sid).await?;
        if existed {
            self.publish_destroy(mapped.or(owner), sid, reason);
        }
        Ok(existed)
    }

    /// Remembers a client id that `regenerate` replaced, so that a request still carrying it
    /// (sent before the login response arrived) does not roll it back into the browser.
    pub(crate) async fn retire_client(&self, cid: &str) -> Result<()> {
        let now = self.now();
        let until = now.saturating_add(RETIRED_CLIENT_TTL);
        self.mapping.retire_client(cid, until, now).await
    }

    /// Whether `cid` was replaced by a `regenerate` in the last few minutes.
    pub(crate) async fn is_retired_client(&self, cid: &str) -> Result<bool> {
        // The clock is read only when some client was retired.
        self.mapping.is_retired_client(cid, || self.now()).await
    }

    /// Writes `data` as the new state of an existing session, under the caller's `guard`,
    /// retrying against a concurrent writer (ST5): each retry re-reads the record and re-applies
    /// `apply` to it (the HTTP commit's key-level changes, H12). `Ok(None)`: the session is
    /// gone (never resurrected).
    ///
    /// Fenced (M2): under a nodes' lease, a record that moved since the caller's read means
    /// the lease lapsed and another node wrote: the write is refused ([`Error::LeaseLost`]),
    /// never merged; so is any write once the lease is known to be lost.
    pub(crate) async fn update_existing(
        &self,
        sid: &str,
        mut current: Loaded,
        ttl: Option<u64>,
        refresh: bool,
        guard: &Guard,
        apply: &(dyn Fn(&mut Map<String, Value>) -> Result<()> + Send + Sync),
    ) -> Result<Option<Saved>> {
        for _ in 0..WRITE_ATTEMPTS {
            // The fresh data is ours to change: a conflict reloads it.
            let (record, mut data) = current.into_parts();
            apply(&mut data)?;
            let text = serde_json::to_string(&data)?;
            match self
                .write_attempt(sid, record, data, text, ttl, refresh, guard)
                .await?
            {
                Attempt::Done(saved) => return Ok(saved),
                Attempt::Conflict(..) => match self.after_conflict(sid, guard).await? {
                    Some(fresh) => current = fresh,
                    None => return Ok(None),
                },
            }
        }
        Err(Error::Conflict {
            attempts: WRITE_ATTEMPTS,
        })
    }

    /// One compare-and-set of a closure's edit (S3 `with_session`, H12 `Session::update`):
    /// `edited` is `base`'s data as the closure left it, under the caller's `guard`. Unchanged
    /// text writes nothing; a record still at `base`'s version takes `edited` whole. When
    /// another writer got in between, the fresh record comes back ([`Edit::Rerun`]) for the
    /// caller to run its closure again on it (`Session::update`), or to apply its edit only
    /// where nobody else wrote (`with_session`): a closure's absolute values are never merged
    /// over a value it did not see (H12). Fenced as [`update_existing`](Self::update_existing).
    pub(crate) async fn save_edit(
        &self,
        sid: &str,
        base: Record,
        edited: Map<String, Value>,
        guard: &Guard,
    ) -> Result<Edit> {
        let text = serde_json::to_string(&edited)?;
        if text == base.session {
            return Ok(Edit::Done(Some(Saved {
                loaded: Loaded::new(base, edited),
                written: false,
            })));
        }
        match self
            .write_attempt(sid, base, edited, text, None, false, guard)
            .await?
        {
            Attempt::Done(saved) => Ok(Edit::Done(saved)),
            Attempt::Conflict(base, edited) => Ok(match self.after_conflict(sid, guard).await? {
                Some(fresh) => Edit::Rerun {
                    fresh,
                    base,
                    edited,
                },
                None => Edit::Done(None),
            }),
        }
    }

    /// After a refused compare-and-set: the fresh record to retry on (`None`: gone), or
    /// [`Error::LeaseLost`] under a nodes' lease (M2: the record moved, so the lease lapsed).
    async fn after_conflict(&self, sid: &str, guard: &Guard) -> LoadResult {
        if guard.is_shared() {
            return Err(Error::LeaseLost);
        }
        self.reload_after_conflict(sid).await
    }

    /// One compare-and-set of `data` (serialized as `text`) over `record`, and what follows
    /// a write (events, mapping expiry). `Conflict` hands `data` back.
    #[allow(clippy::too_many_arguments)]
    async fn write_attempt(
        &self,
        sid: &str,
        record: Record,
        data: Map<String, Value>,
        text: String,
        ttl: Option<u64>,
        refresh: bool,
        guard: &Guard,
    ) -> Result<Attempt> {
        // M2: a lease known to be lost writes nothing.
        if guard.lost() {
            return Err(Error::LeaseLost);
        }
        // An owner tag made with an older key is re-made with the newest one at this
        // write, as cookies are re-signed, so the old key can be retired later (ST2).
        let base = match self.retagged(sid, &record).await? {
            Some(owner) => std::borrow::Cow::Owned(Record {
                owner: Some(owner),
                ..record.clone()
            }),
            None => std::borrow::Cow::Borrowed(&record),
        };
        let refresh = refresh || base.owner != record.owner;
        let written = self
            .gateway
            .write_text(sid, text, Base::Existing(&base), ttl, refresh)
            .await?;
        Ok(match written {
            Written::Gone => {
                // Its absolute time ran out (H9): destroyed by the write, never resurrected.
                self.announce_destroy(sid, EndReason::Expired).await?;
                Attempt::Done(None)
            }
            Written::Unchanged => Attempt::Done(Some(Saved {
                loaded: Loaded::new(record, data),
                written: false,
            })),
            Written::Stored {
                record,
                data_changed,
            } => {
                self.announce_set(sid, record.expires_at, false, data_changed)
                    .await?;
                self.retire_expired_mappings().await;
                Attempt::Done(Some(Saved {
                    loaded: Loaded::new(record, data),
                    written: true,
                }))
            }
            Written::Conflict => Attempt::Conflict(record, data),
        })
    }

    /// The fresh record after a write conflict; `None` (and the mapping detached) when the
    /// session is gone meanwhile.
    async fn reload_after_conflict(&self, sid: &str) -> LoadResult {
        let fresh = self.load(sid).await?;
        if fresh.is_none() {
            self.mapping.detach(sid).await?;
        }
        Ok(fresh)
    }

    /// The owner tag `record` of `sid` gets at this write: the newest-key tag when its tag
    /// was made with an older key, or, for a record with no owner (format 1), the tag of the
    /// client the mapping links it to (ST2: only its mapped client gives it an owner).
    async fn retagged(&self, sid: &str, record: &Record) -> Result<Option<String>> {
        let owner = record.owner.as_deref();
        // With one key every tag that names an owner was made with it: nothing to re-make
        // (and no mapping look-up or MAC per write).
        if owner.is_some() && self.cookies.key_count() == 1 {
            return Ok(None);
        }
        let Some(cid) = self.mapping.client_id(sid).await? else {
            return Ok(None);
        };
        let newest = self.cookies.owner_tag(&cid);
        Ok(match owner {
            None => Some(newest),
            Some(owner) => {
                (owner != newest && self.cookies.is_owner(owner, &cid)).then_some(newest)
            }
        })
    }

    /// Creates a session under a fresh `sid` for client `cid` (H4, H6, ST2). `proven`: the
    /// sessions this request proved with its session cookie (it may replace those).
    /// `created_at`: the creation time a regenerated session keeps (H9); `None` for a new one.
    ///
    /// H2: creation never moves a held client. When `cid` holds a live session the request did
    /// not prove (someone holding only the client cookie), or another request attaches one to
    /// `cid` while this one creates, the new session goes to a fresh client id instead
    /// ([`Created::new_client`]), and the held session and its sockets are untouched.
    /// `Ok(None)`: its absolute time had already run out, so it was not created.
    pub(crate) async fn create(
        &self,
        cid: &str,
        proven: &[&str],
        sid: &str,
        data: &Map<String, Value>,
        ttl: Option<u64>,
        created_at: Option<u64>,
    ) -> Result<Option<Created>> {
        let mut client = std::borrow::Cow::Borrowed(cid);
        for _ in 0..CREATE_ATTEMPTS {
            let held = self.mapping.session_id(&client).await?;
            if let Some(held) = held.as_deref()
                && !proven.contains(&held)
                && self.load_owned(&client, held).await?.is_some()
            {
                client = std::borrow::Cow::Owned(self.new_id());
                continue;
            }
            let owner = self.cookies.owner_tag(&client);
            let base = Base::New {
                owner: Some(&owner),
                created_at,
            };
            let record = match self.gateway.write(sid, data, base, ttl, true).await? {
                Written::Stored { record, .. } => record,
                Written::Gone => return Ok(None),
                // A fresh random id is taken: never overwrite it (ST5).
                Written::Unchanged | Written::Conflict => {
                    return Err(Error::Conflict { attempts: 1 });
                }
            };
            let linked = self
                .mapping
                .attach_new(&client, sid, record.expires_at, held.as_deref())
                .await?;
            if !linked {
                // Another session was attached to this client meanwhile: this new one (no one
                // else knows its id yet) goes to a fresh client id.
                self.gateway.destroy(sid).await?;
                client = std::borrow::Cow::Owned(self.new_id());
                continue;
            }
            self.announce(BridgeEvent::SessionSet {
                client_id: Some(client.as_ref().into()),
                session_id: sid.into(),
                is_new: true,
                is_init: true,
            });
            self.retire_expired_mappings().await;
            let new_client = match client {
                std::borrow::Cow::Owned(fresh) => Some(fresh),
                std::borrow::Cow::Borrowed(_) => None,
            };
            return Ok(Some(Created {
                loaded: Loaded::new(record, data.clone()),
                new_client,
            }));
        }
        Err(Error::Conflict {
            attempts: CREATE_ATTEMPTS,
        })
    }

    /// Retires a few mapping entries whose sessions should have expired: each is checked
    /// against the store (GW1 destroys and announces it if it really expired), so a session
    /// refreshed elsewhere keeps its entry.
    async fn retire_expired_mappings(&self) {
        let due = match self.mapping.due(self.now(), RETIRE_PER_WRITE).await {
            Ok(due) => due,
            Err(err) => {
                tracing::debug!(error = %err, "listing expired mappings failed");
                return;
            }
        };
        for sid in due {
            match self.load(&sid).await {
                Ok(Some(loaded)) => {
                    if let Err(err) = self.mapping.touch(&sid, loaded.record().expires_at).await {
                        tracing::debug!(error = %err, "moving a mapping's expiry failed");
                    }
                }
                // Gone: `load` has already detached and announced it.
                Ok(None) => {}
                Err(err) => tracing::debug!(error = %err, "retiring an expired mapping failed"),
            }
        }
    }

    /// GW4: destroys expired (and corrupt) records, announces each and the count. Each
    /// record is examined under its session's lock, so a cleanup never pulls a session from
    /// under a running `with_session` handler or HTTP commit.
    pub(crate) async fn cleanup(&self) -> Result<usize> {
        let ids = self.gateway.list().await?;
        let mut cleared = 0;
        for sid in ids {
            let _lock = self.lock(&sid).await?;
            match self.gateway.fetch(&sid).await? {
                Fetched::Expired => {
                    cleared += 1;
                    self.announce_destroy(&sid, EndReason::Expired).await?;
                }
                Fetched::Corrupt => {
                    cleared += 1;
                    self.announce_destroy(&sid, EndReason::Corrupt).await?;
                }
                Fetched::Missing => self.announce_if_mapped(&sid).await?,
                Fetched::Live(_) | Fetched::Same(_) => {}
            }
        }
        self.gateway.optimize(cleared).await?;
        self.announce(BridgeEvent::Cleanup(cleared));
        Ok(cleared)
    }
}

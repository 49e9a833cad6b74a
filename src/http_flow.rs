//! The HTTP flow (SPEC H1-H8) in two framework-free steps: [`RequestContext::begin`] reads the
//! request's cookies (no store call), [`RequestContext::commit`] writes what changed and the
//! `Set-Cookie` headers. Every framework glue is these two calls around a handler.

use std::sync::Arc;

use http::HeaderMap;

use crate::cookies::append_set_cookie;
use crate::engine::Engine;
use crate::error::Result;
use crate::session::Session;

/// One HTTP request's session context: the browser's client id and its [`Session`].
///
/// Made by [`SessionBridge::begin_request`](crate::SessionBridge::begin_request); finish it
/// with [`commit`](Self::commit) once the handler has run.
///
/// ```
/// use http::{HeaderMap, Response};
/// use session_bridge::{Result, SessionBridge};
///
/// // Framework glue is these two calls around a handler.
/// async fn handle(bridge: &SessionBridge, request: &HeaderMap) -> Result<Response<String>> {
///     let ctx = bridge.begin_request(request);
///     let visits = ctx.session().get::<u64>("visits").await?.unwrap_or(0) + 1;
///     ctx.session().insert("visits", visits).await?;
///     let mut response = Response::new(format!("visit number {visits}"));
///     ctx.commit(response.headers_mut()).await?;
///     Ok(response)
/// }
/// # let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build()?;
/// let response = futures::executor::block_on(handle(&bridge, &HeaderMap::new()))?;
/// assert_eq!(response.headers().get_all("set-cookie").iter().count(), 2);
/// # Ok::<(), session_bridge::Error>(())
/// ```
pub struct RequestContext {
    session: Session,
    /// The client cookie must be (re)sent: new id, older key, or always-roll.
    send_client_cookie: bool,
    /// The session cookie verified only with an older key (C2).
    session_cookie_stale: bool,
}

impl std::fmt::Debug for RequestContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestContext")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl RequestContext {
    /// H1: reads the client cookie (a new client id when missing or bad) and the session
    /// cookie's id. Touches no store.
    pub(crate) fn begin(engine: Arc<Engine>, headers: &HeaderMap) -> Self {
        let cookies = &engine.cookies;
        let (cid, client_stale, client_new) =
            match engine.read_cookie(headers, &cookies.client_name) {
                Some((cid, stale)) => (cid, stale, false),
                None => (engine.ids.generate(), false, true),
            };
        let session_cookie = engine.read_cookie(headers, &cookies.session_name);
        let send_client_cookie = client_new || client_stale || cookies.client_always_roll;
        let (cookie_sid, session_cookie_stale) = match session_cookie {
            Some((sid, stale)) => (Some(sid), stale),
            None => (None, false),
        };
        Self {
            session: Session::new(engine, cid, cookie_sid),
            send_client_cookie,
            session_cookie_stale,
        }
    }

    /// The session handle (clone it freely into the handler).
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # futures::executor::block_on(async {
    /// # let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build()?;
    /// let request = bridge.begin_request(&http::HeaderMap::new());
    /// let session = request.session().clone(); // hand a clone to the handler
    /// session.insert("user", "ada").await?;
    /// request.commit(&mut http::HeaderMap::new()).await?;
    /// assert_eq!(bridge.mapped_sessions(), 1);
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The browser's client id (H6).
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # futures::executor::block_on(async {
    /// # let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build()?;
    /// # let request = bridge.begin_request(&http::HeaderMap::new());
    /// # request.session().insert("user", "ada").await?;
    /// # let client_id = request.client_id();
    /// # let mut set_cookie = http::HeaderMap::new();
    /// # request.commit(&mut set_cookie).await?;
    /// # let pairs: Vec<&str> = set_cookie.get_all("set-cookie").iter().map(|v| v.to_str().unwrap().split(';').next().unwrap()).collect();
    /// # let mut cookie = http::HeaderMap::new();
    /// # cookie.insert("cookie", pairs.join("; ").parse().unwrap());
    /// // `cookie` carries the cookies sent to browser `client_id` on its first visit.
    /// let returning = bridge.begin_request(&cookie);
    /// assert_eq!(returning.client_id(), client_id);
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn client_id(&self) -> String {
        self.session.client_id()
    }

    /// H4: stores what changed and appends the `Set-Cookie` headers to `headers`.
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # futures::executor::block_on(async {
    /// # let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build()?;
    /// let request = bridge.begin_request(&http::HeaderMap::new());
    /// let mut headers = http::HeaderMap::new();
    /// request.commit(&mut headers).await?;
    /// // The session was never touched: no store call, only the client cookie is set.
    /// assert_eq!(headers.get_all("set-cookie").iter().count(), 1);
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// A store error, [`Error::SessionTooLarge`](crate::Error::SessionTooLarge), or
    /// [`Error::Conflict`](crate::Error::Conflict). Glue answers a 500 with an empty body;
    /// nothing was half-written.
    pub async fn commit(self, headers: &mut HeaderMap) -> Result<()> {
        let engine = Arc::clone(self.session.engine());
        let cfg = &engine.cookies;
        // An old-key session cookie must be re-signed, which needs the record's TTL.
        if self.session_cookie_stale {
            self.session.ensure_loaded().await?;
        }
        let st = self.session.state().clone();
        let cid = st.client_id.clone();

        // H1, H8: (re)send the client cookie, but never one that a `regenerate` replaced: a
        // request sent before the login response arrived would roll the browser back.
        if (self.send_client_cookie || st.retired_client.is_some())
            && !engine.is_retired_client(&cid)
        {
            let value = engine.cookie_value(&cfg.client_name, &cid);
            let set = cfg
                .attrs
                .set_cookie(&cfg.client_name, &value, Some(cfg.client_max_age));
            append_set_cookie(headers, &set);
        }
        if !st.loaded {
            return Ok(()); // H3: never touched
        }

        let session_cookie = |sid: &str, max_age: u64| -> String {
            let value = engine.cookie_value(&cfg.session_name, sid);
            let max_age = (!cfg.browser_session).then_some(max_age);
            cfg.attrs.set_cookie(&cfg.session_name, &value, max_age)
        };
        let clear_cookie = || cfg.attrs.set_cookie(&cfg.session_name, "", Some(0));
        // Owners now, before a new session is mapped to this client and hides them (H7).
        let owners: Vec<(String, Option<String>)> = st
            .destroy
            .iter()
            .chain(st.moved_from.iter())
            .map(|sid| (sid.clone(), engine.mapping.client_id(sid)))
            .collect();
        let owner_of = |sid: &str| {
            owners
                .iter()
                .find(|(s, _)| s == sid)
                .and_then(|(_, o)| o.clone())
        };
        // Sessions this request ended with `destroy`.
        let destroy_ended = async || -> Result<bool> {
            for sid in &st.destroy {
                let _lock = engine.lock(sid).await;
                engine.destroy_owned(sid, owner_of(sid)).await?;
            }
            Ok(!st.destroy.is_empty())
        };

        match (&st.sid, &st.base) {
            // `regenerate`: the stored session, re-read under its lock with this request's
            // changes applied, moves to the new id; the old record goes only after the new
            // one is written, so a refused write loses nothing (H5, H8).
            (new_sid, None) if st.moved_from.is_some() => {
                let from = st.moved_from.as_deref().unwrap_or_default();
                let _lock = engine.lock(from).await;
                let Some(fresh) = engine.load(from).await? else {
                    // Destroyed meanwhile (logout, ban, expiry): nothing to move, and never
                    // resurrect it.
                    destroy_ended().await?;
                    return Ok(());
                };
                let mut data = fresh.data;
                st.changes.apply(&st.data, &mut data);
                let ttl = st.max_age.unwrap_or(fresh.record.ttl);
                let created = if data.is_empty() {
                    None
                } else {
                    // Sockets may have filled a session this request had emptied: it still moves.
                    let sid = new_sid.clone().unwrap_or_else(|| engine.ids.generate());
                    let created = engine.create(&cid, &sid, &data, Some(ttl)).await?;
                    Some((sid, created))
                };
                engine.destroy_owned(from, owner_of(from)).await?;
                destroy_ended().await?;
                if let Some(st) = st.retired_client.as_deref() {
                    engine.retire_client(st);
                }
                let cookie = match created {
                    Some((sid, created)) => session_cookie(&sid, created.record.ttl),
                    None => clear_cookie(),
                };
                append_set_cookie(headers, &cookie);
            }
            // New session: stored only when non-empty (H4).
            (Some(sid), None) if !st.data.is_empty() => {
                let created = engine.create(&cid, sid, &st.data, st.max_age).await?;
                destroy_ended().await?;
                if let Some(st) = st.retired_client.as_deref() {
                    engine.retire_client(st);
                }
                append_set_cookie(headers, &session_cookie(sid, created.record.ttl));
            }
            (Some(sid), Some(base)) => {
                let now = engine.now();
                let renew_due = cfg.renew && base.expires_at.saturating_sub(now) < base.ttl / 2;
                let refresh = cfg.rolling || renew_due;
                let ttl_changed = st.max_age.is_some_and(|ms| ms != base.ttl);
                if st.changes.is_empty() && !refresh && !ttl_changed {
                    if self.session_cookie_stale {
                        append_set_cookie(headers, &session_cookie(sid, base.ttl));
                    }
                    return Ok(());
                }
                let _lock = engine.lock(sid).await;
                // Re-read under the lock and apply only what this request changed. A session
                // destroyed meanwhile (by a socket, cleanup, another request, a regenerate) is
                // never resurrected, and its cookie is left alone: a dead id is harmless
                // (H2 d), while clearing it could erase the cookie a concurrent login just set.
                let Some(fresh) = engine.load(sid).await? else {
                    return Ok(());
                };
                let changes = st.changes.clone();
                let ours = st.data.clone();
                let apply = move |fresh: &mut serde_json::Map<String, serde_json::Value>| {
                    changes.apply(&ours, fresh)
                };
                let saved = engine
                    .update_existing(sid, fresh, st.max_age, refresh, &apply)
                    .await?;
                if let Some(saved) = saved
                    && (refresh || ttl_changed || self.session_cookie_stale)
                {
                    append_set_cookie(headers, &session_cookie(sid, saved.record.ttl));
                }
            }
            // Destroyed and not replaced by a new non-empty session: clear the cookie.
            _ => {
                if destroy_ended().await? {
                    append_set_cookie(headers, &clear_cookie());
                }
            }
        }
        Ok(())
    }
}

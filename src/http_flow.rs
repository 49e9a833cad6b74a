//! The HTTP flow (SPEC H1-H8) in two framework-free steps: [`RequestContext::begin`] reads the
//! request's cookies (no store call), [`RequestContext::commit`] writes what changed and the
//! `Set-Cookie` headers. Every framework glue is these two calls around a handler.

use std::sync::Arc;

use http::HeaderMap;

use crate::engine::Engine;
use crate::error::Result;
use crate::id::ClientId;
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
/// # let bridge = session_bridge::testing::test_bridge();
/// let response = futures::executor::block_on(handle(&bridge, &HeaderMap::new()))?;
/// assert_eq!(response.headers().get_all("set-cookie").iter().count(), 2);
/// # Ok::<(), session_bridge::Error>(())
/// ```
#[must_use = "changes are lost unless the context is committed into the response"]
pub struct RequestContext {
    session: Session,
    /// The client cookie must be (re)sent: new id, older key, or always-roll.
    send_client_cookie: bool,
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
        let (client, session) = engine.read_ids_lazy(headers);
        let (cid, client_stale, client_new, echo) = match client {
            Some(read) => {
                let (cid, stale, sig) = read.into_parts_with_sig();
                (cid, stale, false, sig)
            }
            None => (engine.new_id(), false, true, None),
        };
        let send_client_cookie =
            client_new || client_stale || engine.cookies().client_always_roll();
        Self {
            session: Session::new(engine, cid, session, echo),
            send_client_cookie,
        }
    }

    /// The session handle (clone it freely into the handler).
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # futures::executor::block_on(async {
    /// # let bridge = session_bridge::testing::test_bridge();
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
    /// # let bridge = session_bridge::testing::test_bridge();
    /// # let mut browser = session_bridge::testing::Browser::new();
    /// # let client_id = browser.request(&bridge, async |s| s.insert("user", "ada").await.map(|()| s.client_id())).await??;
    /// # let cookie = browser.headers();
    /// // `cookie` carries the cookies sent to browser `client_id` on its first visit.
    /// let returning = bridge.begin_request(&cookie);
    /// assert_eq!(returning.client_id(), client_id);
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn client_id(&self) -> ClientId {
        self.session.client_id()
    }

    /// H4: stores what changed and appends the `Set-Cookie` headers to `headers`.
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # futures::executor::block_on(async {
    /// # let bridge = session_bridge::testing::test_bridge();
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
    #[must_use = "dropping the commit's result loses a store error: answer 500 on `Err`"]
    pub async fn commit(self, headers: &mut HeaderMap) -> Result<()> {
        self.session
            .commit(headers, self.send_client_cookie, false)
            .await
    }

    /// [`commit`](Self::commit) for a response with `status`: a 5xx commits nothing of the
    /// session (H10; the builder's `commit_on_server_error` turns this off), only the client
    /// cookie that was due. What framework glue calls.
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// # let bridge = session_bridge::testing::test_bridge();
    /// let request = bridge.begin_request(&http::HeaderMap::new());
    /// request.session().insert("half", "done").await?;
    /// let mut headers = http::HeaderMap::new();
    /// request.commit_response(http::StatusCode::INTERNAL_SERVER_ERROR, &mut headers).await?;
    /// assert_eq!(bridge.mapped_sessions(), 0, "the failed request stored nothing");
    /// assert_eq!(headers.get_all("set-cookie").iter().count(), 1, "the client cookie only");
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// As [`commit`](Self::commit).
    #[must_use = "dropping the commit's result loses a store error: answer 500 on `Err`"]
    pub async fn commit_response(
        self,
        status: http::StatusCode,
        headers: &mut HeaderMap,
    ) -> Result<()> {
        let discard = !self.session.commits(status);
        self.session
            .commit(headers, self.send_client_cookie, discard)
            .await
    }
}

//! salvo glue (feature `salvo`): [`SessionHandler`] runs the HTTP flow around the routes it
//! hoops, handlers reach the [`Session`] as an argument (`session: Session`) or through
//! [`SessionDepotExt`], and [`Error`] works with `?` in a handler returning
//! `Result<_, session_bridge::Error>` (an empty 500, or 409 for a conflict). With the
//! `socketioxide` feature too, `socket_io_hoop` mounts socketioxide so that all three
//! socket.io transports work (polling, websocket, polling upgraded to websocket).
//!
//! ```no_run
//! # #[cfg(feature = "socketioxide")] mod demo {
//! use salvo::prelude::*;
//! use session_bridge::{Session, SessionBridge};
//! use session_bridge::integrations::salvo::{SessionHandler, socket_io_hoop};
//! use session_bridge::integrations::socketioxide::bind_session;
//! use socketioxide::{SocketIo, extract::SocketRef, handler::ConnectHandler};
//!
//! #[handler]
//! async fn count(session: Session) -> Result<Json<u64>, session_bridge::Error> {
//!     let n = session.get::<u64>("n").await?.unwrap_or(0) + 1;
//!     session.insert("n", n).await?;
//!     Ok(Json(n))
//! }
//!
//! # pub async fn run() {
//! let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build().unwrap();
//! let (layer, io) = SocketIo::builder().with_state(bridge.clone()).build_layer();
//! io.ns("/", (async |_s: SocketRef| {}).with(bind_session));
//! let router = Router::new()
//!     .hoop(SessionHandler::new(bridge))
//!     .push(Router::with_path("count").get(count));
//! // socket.io is a *service* hoop, so it answers before the router's session handler runs.
//! let service = Service::new(router).hoop(socket_io_hoop(layer));
//! let acceptor = TcpListener::new("127.0.0.1:3000").bind().await;
//! Server::new(acceptor).serve(service).await;
//! # }}
//! ```
//!
//! Composition: hoop socket.io on the [`Service`](salvo::Service) and the session handler on
//! the [`Router`](salvo::Router). Service hoops run before router hoops, and the socket.io hoop
//! answers `/socket.io/` requests itself without calling the rest of the chain, so no
//! socket.io request reaches the session handler's commit: the socket side never sets a cookie
//! (SPEC S1), it reads the handshake's cookies itself. Every other request passes through the
//! socket.io hoop untouched.

use salvo::http::StatusCode;
use salvo::http::body::ResBody;
use salvo::{Depot, Extractible, FlowCtrl, Handler, Request, Response, Scribe, async_trait};

use crate::{Error, Session, SessionBridge};

/// `?` on a session call in a salvo handler returning `Result<_, session_bridge::Error>`: the
/// status of [`Error::status`] with an empty body, and the error logged (its message names no
/// id and no data).
impl Scribe for Error {
    fn render(self, res: &mut Response) {
        tracing::error!(error = %self, "session error answered with an empty {}", self.status());
        empty(res, self.status());
    }
}

/// An empty `Once` body, not `None`: `None` would let the catcher write a page.
fn empty(res: &mut Response, status: StatusCode) {
    res.status_code(status);
    res.body(ResBody::Once(Default::default()));
}

/// Runs the HTTP flow (SPEC H1-H8) around the handlers after it: reads the cookies before them
/// (no store call), puts the [`Session`] into the [`Depot`] and the request's extensions,
/// commits after them and appends the `Set-Cookie` headers. Hoop it on a [`Router`]:
/// `Router::new().hoop(SessionHandler::new(bridge))`.
///
/// A commit error (store down, session too large) is logged and answered with an
/// empty-bodied 500 that keeps only the headers set before this handler ran: nothing about
/// internals, and none of the failed response's headers, reaches the client. Like poem's glue
/// the 500 is final; salvo's catcher does not replace its empty body.
///
/// Changes are committed even when a handler ceased the chain (`FlowCtrl::cease`): what a
/// handler wrote to the session is never silently dropped.
///
/// [`Router`]: salvo::Router
///
/// ```
/// use salvo::prelude::*;
/// use session_bridge::{Session, SessionBridge};
/// use session_bridge::integrations::salvo::SessionHandler;
/// use std::sync::Arc;
///
/// #[handler]
/// async fn login(session: Session) -> Result<&'static str, StatusError> {
///     session.insert("user", "ada").await.map_err(|_| StatusError::internal_server_error())?;
///     Ok("welcome")
/// }
/// # let bridge = session_bridge::testing::test_bridge();
/// // In an app: `Router::new().hoop(SessionHandler::new(bridge)).get(login)`; here, by hand:
/// let mut chain = FlowCtrl::new(vec![Arc::new(SessionHandler::new(bridge)), Arc::new(login)]);
/// let (mut req, mut depot, mut res) = (Request::new(), Depot::new(), Response::new());
/// futures::executor::block_on(chain.call_next(&mut req, &mut depot, &mut res));
/// assert_eq!(res.headers().get_all("set-cookie").iter().count(), 2);
/// # Ok::<(), session_bridge::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct SessionHandler {
    bridge: SessionBridge,
}

impl SessionHandler {
    /// The session handler for `bridge`.
    ///
    /// ```
    /// use salvo::prelude::*;
    /// use session_bridge::{Session, SessionBridge};
    /// use session_bridge::integrations::salvo::SessionHandler;
    /// # #[handler] async fn count(_session: Session) {}
    /// let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build()?;
    /// let router = Router::new()
    ///     .hoop(SessionHandler::new(bridge))
    ///     .push(Router::with_path("count").get(count));
    /// # Ok::<(), session_bridge::Error>(())
    /// ```
    pub fn new(bridge: SessionBridge) -> Self {
        Self { bridge }
    }
}

#[async_trait]
impl Handler for SessionHandler {
    async fn handle(
        &self,
        req: &mut Request,
        depot: &mut Depot,
        res: &mut Response,
        ctrl: &mut FlowCtrl,
    ) {
        let ctx = self.bridge.begin_request(req.headers());
        // The depot serves salvo handlers; the request's extensions serve tower layers after
        // this one (they see only the hyper request, never the depot).
        req.extensions_mut().insert(ctx.session().clone());
        depot.insert_typed(ctx.session().clone());
        let outer_headers = res.headers().clone();
        ctrl.call_next(req, depot, res).await;
        // H10: a 5xx response commits nothing of the session (unless the bridge says so).
        let status = res.status_code.unwrap_or(StatusCode::OK);
        if let Err(err) = ctx.commit_response(status, res.headers_mut()).await {
            tracing::error!(error = %err, "session commit failed");
            *res.headers_mut() = outer_headers;
            empty(res, err.status());
        }
    }
}

/// Reaches the request's [`Session`] from the [`Depot`], where [`SessionHandler`] put it.
///
/// ```
/// use salvo::prelude::*;
/// use session_bridge::integrations::salvo::SessionDepotExt;
///
/// #[handler]
/// async fn whoami(depot: &mut Depot) -> String {
///     match depot.session() {
///         Some(session) => format!("{:?}", session.client_id()), // a digest, never the id
///         None => "no SessionHandler on this route".to_owned(),
///     }
/// }
/// ```
pub trait SessionDepotExt {
    /// The session, or `None` on a route without [`SessionHandler`].
    ///
    /// ```
    /// use salvo::prelude::*;
    /// use session_bridge::integrations::salvo::SessionDepotExt;
    ///
    /// #[handler]
    /// async fn logout(depot: &mut Depot) -> StatusCode {
    ///     let Some(session) = depot.session() else { return StatusCode::INTERNAL_SERVER_ERROR };
    ///     match session.destroy().await {
    ///         Ok(()) => StatusCode::NO_CONTENT,
    ///         Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
    ///     }
    /// }
    /// assert!(Depot::new().session().is_none(), "no SessionHandler ran");
    /// ```
    fn session(&self) -> Option<&Session>;
}

impl SessionDepotExt for Depot {
    fn session(&self) -> Option<&Session> {
        self.get_typed::<Session>().ok()
    }
}

/// `session: Session` as a `#[handler]` argument. On a route without [`SessionHandler`] the
/// handler is not called and the answer is a 500 (a wiring mistake, logged).
impl<'ex> Extractible<'ex> for Session {
    fn metadata() -> &'static salvo::extract::Metadata {
        static METADATA: salvo::extract::Metadata = salvo::extract::Metadata::new("Session");
        &METADATA
    }

    #[allow(refining_impl_trait)]
    async fn extract(
        _req: &'ex mut Request,
        depot: &'ex mut Depot,
    ) -> Result<Self, salvo::http::StatusError> {
        depot.session().cloned().ok_or_else(|| {
            tracing::error!("`Session` extracted on a route without `SessionHandler`");
            salvo::http::StatusError::internal_server_error()
        })
    }
}

#[cfg(feature = "socketioxide")]
#[cfg_attr(docsrs, doc(cfg(feature = "socketioxide")))]
/// The salvo hoop that serves socket.io: `Service::new(router).hoop(socket_io_hoop(layer))`
/// with the layer from `SocketIo::builder().build_layer()`.
///
/// Requests to socketioxide's path (`/socket.io/` by default) are answered by socketioxide,
/// websocket upgrades included (salvo keeps hyper's upgrade handle, unlike poem); every other
/// request continues down the salvo chain unchanged. Hoop it on the `Service`, before the
/// router's [`SessionHandler`] (see the module docs).
///
/// Call it inside a Tokio runtime: salvo's tower adapter spawns a buffer task.
///
/// ```
/// use salvo::prelude::*;
/// use session_bridge::SessionBridge;
/// use session_bridge::integrations::salvo::{SessionHandler, socket_io_hoop};
/// use session_bridge::integrations::socketioxide::bind_session;
/// use socketioxide::{SocketIo, extract::SocketRef, handler::ConnectHandler};
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build()?;
/// let (layer, io) = SocketIo::builder().with_state(bridge.clone()).build_layer();
/// io.ns("/", (async |_s: SocketRef| {}).with(bind_session));
/// let router = Router::new().hoop(SessionHandler::new(bridge));
/// let service = Service::new(router).hoop(socket_io_hoop(layer));
/// # Ok::<_, session_bridge::Error>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn socket_io_hoop<A: socketioxide::adapter::Adapter>(
    layer: socketioxide::layer::SocketIoLayer<A>,
) -> impl Handler {
    use salvo::prelude::TowerLayerCompat;
    layer.compat()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use salvo::http::HeaderValue;
    use salvo::http::header::{CONTENT_TYPE, SET_COOKIE};
    use salvo::prelude::*;

    use super::*;
    use crate::Error;

    fn bridge(max_session_bytes: usize) -> SessionBridge {
        SessionBridge::builder()
            .key("app.sid")
            .keys([[7u8; 32]])
            .max_session_bytes(max_session_bytes)
            .build()
            .unwrap()
    }

    /// Runs `SessionHandler` then `goal` on a fresh request, as salvo's router would.
    fn run(bridge: SessionBridge, goal: impl Handler) -> (Request, Response) {
        let mut req = Request::new();
        let mut depot = Depot::new();
        let mut res = Response::new();
        // Set by an outer hoop before the session handler: survives a failed commit.
        res.headers_mut()
            .insert("x-outer", HeaderValue::from_static("kept"));
        let mut ctrl = FlowCtrl::new(vec![Arc::new(SessionHandler::new(bridge)), Arc::new(goal)]);
        futures::executor::block_on(ctrl.call_next(&mut req, &mut depot, &mut res));
        (req, res)
    }

    #[handler]
    async fn write_big(session: Session, req: &mut Request, res: &mut Response) {
        assert!(req.extensions().get::<Session>().is_some());
        session.insert("big", "x".repeat(100)).await.unwrap();
        res.render(Json(serde_json::json!({ "secret": "internal" })));
    }

    #[handler]
    async fn write_small(depot: &mut Depot, res: &mut Response) {
        let session = depot.session().unwrap();
        session.insert("n", 1).await.unwrap();
        res.render("ok");
    }

    #[test]
    fn commit_sets_both_cookies() {
        let (_, res) = run(bridge(64 * 1024), write_small);
        // (the router's default 200 is set by salvo's service, not here)
        assert_ne!(res.status_code, Some(StatusCode::INTERNAL_SERVER_ERROR));
        assert_eq!(res.headers().get_all(SET_COOKIE).iter().count(), 2);
    }

    #[test]
    fn failed_commit_is_an_empty_500_without_the_handlers_headers() {
        let (_, res) = run(bridge(16), write_big);
        assert_eq!(res.status_code, Some(StatusCode::INTERNAL_SERVER_ERROR));
        assert!(matches!(&res.body, ResBody::Once(b) if b.is_empty()));
        assert!(res.headers().get(SET_COOKIE).is_none());
        assert!(res.headers().get(CONTENT_TYPE).is_none());
        assert_eq!(res.headers()["x-outer"], "kept");
    }

    #[handler]
    async fn write_then_fail(session: Session, res: &mut Response) {
        session.insert("n", 1).await.unwrap();
        res.status_code(StatusCode::SERVICE_UNAVAILABLE);
    }

    #[handler]
    async fn question_mark(session: Session) -> Result<&'static str, Error> {
        session.insert("big", "x".repeat(100)).await?;
        session.data().await?; // fine
        Err(Error::Conflict { attempts: 4 })
    }

    /// H10: the handler wrote, then answered 503: nothing is stored, no session cookie, and
    /// only the client cookie is sent.
    #[test]
    fn h10_a_5xx_answer_commits_nothing() {
        let bridge = bridge(64 * 1024);
        let (_, res) = run(bridge.clone(), write_then_fail);
        assert_eq!(res.status_code, Some(StatusCode::SERVICE_UNAVAILABLE));
        let cookies: Vec<_> = res.headers().get_all(SET_COOKIE).iter().collect();
        assert_eq!(cookies.len(), 1, "{cookies:?}");
        assert!(cookies[0].to_str().unwrap().starts_with("app.sid.cid="));
        assert_eq!(bridge.mapped_sessions(), 0, "no session was created");
    }

    /// `?` on `session_bridge::Error` in a salvo handler: the error's status, empty body.
    #[test]
    fn question_mark_on_a_session_error_is_its_status_with_an_empty_body() {
        let (_, res) = run(bridge(64 * 1024), question_mark);
        assert_eq!(res.status_code, Some(StatusCode::CONFLICT));
        assert!(matches!(&res.body, ResBody::Once(b) if b.is_empty()));
    }

    #[test]
    fn extracting_without_the_handler_is_an_error() {
        let mut req = Request::new();
        let mut depot = Depot::new();
        let extracted = futures::executor::block_on(Session::extract(&mut req, &mut depot));
        assert!(extracted.is_err());
    }
}

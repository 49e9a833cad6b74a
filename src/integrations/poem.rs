//! poem glue (feature `poem`): [`SessionMiddleware`] runs the HTTP flow around every request,
//! [`Session`] is an extractor, and [`Error`] works with `?` in a handler (an
//! empty 500, or 409 for a conflict: nothing internal reaches the client). With the
//! `socketioxide` feature too, `SocketIoEndpoint` mounts socketioxide so that all three
//! socket.io transports work (polling, websocket, polling upgraded to websocket).
//!
//! ```no_run
//! # #[cfg(feature = "socketioxide")] mod demo {
//! use poem::{Route, get, handler, web::Json, EndpointExt};
//! use session_bridge::{Session, SessionBridge};
//! use session_bridge::integrations::poem::{SessionMiddleware, SocketIoEndpoint};
//! use session_bridge::integrations::socketioxide::bind_session;
//! use socketioxide::{SocketIo, extract::SocketRef, handler::ConnectHandler};
//!
//! #[handler]
//! async fn count(session: Session) -> poem::Result<Json<u64>> {
//!     let n = session.get::<u64>("n").await?.unwrap_or(0) + 1;
//!     session.insert("n", n).await?;
//!     Ok(Json(n))
//! }
//!
//! # pub async fn run() -> std::io::Result<()> {
//! let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build().unwrap();
//! let (svc, io) = SocketIo::builder().with_state(bridge.clone()).build_svc();
//! io.ns("/", (async |_s: SocketRef| {}).with(bind_session));
//! let app = Route::new()
//!     .at("/count", get(count).with(SessionMiddleware::new(bridge)))
//!     .nest_no_strip("/socket.io", SocketIoEndpoint::new(svc));
//! poem::Server::new(poem::listener::TcpListener::bind("127.0.0.1:3000")).run(app).await
//! # }}
//! ```
//!
//! Mount socket.io *outside* the session middleware: the socket side never sets a cookie
//! (SPEC S1), it reads the handshake's cookies itself.

use poem::error::ResponseError;
use poem::http::StatusCode;
use poem::{Endpoint, FromRequest, IntoResponse, Middleware, Request, RequestBody, Response};

use crate::{Error, Session, SessionBridge};

#[cfg(feature = "socketioxide")]
mod socket_io;
#[cfg(feature = "socketioxide")]
#[cfg_attr(docsrs, doc(cfg(feature = "socketioxide")))]
pub use socket_io::SocketIoEndpoint;

/// `?` on a session call in a poem handler: the status of [`Error::status`] with an empty
/// body, and the error logged (its message names no id and no data).
impl ResponseError for Error {
    fn status(&self) -> StatusCode {
        Error::status(self)
    }

    fn as_response(&self) -> Response {
        tracing::error!(error = %self, "session error answered with an empty {}", self.status());
        Error::status(self).into_response()
    }
}

/// Runs the HTTP flow (SPEC H1-H8) around the endpoints it wraps: reads the cookies before the
/// handler (no store call), makes the [`Session`] available as an extractor, commits after it
/// and appends the `Set-Cookie` headers. A commit error (store down, session too large) is
/// logged and answered with an empty-bodied 500: nothing about internals reaches the client.
///
/// ```
/// use poem::{Endpoint, EndpointExt, Request, handler};
/// use session_bridge::{Session, SessionBridge};
/// use session_bridge::integrations::poem::SessionMiddleware;
///
/// #[handler]
/// async fn login(session: Session) -> poem::Result<&'static str> {
///     session.insert("user", "ada").await.map_err(poem::error::InternalServerError)?;
///     Ok("welcome")
/// }
/// # let bridge = session_bridge::testing::test_bridge();
/// let app = login.with(SessionMiddleware::new(bridge));
/// let response = futures::executor::block_on(app.call(Request::default()))?;
/// assert_eq!(response.headers().get_all("set-cookie").iter().count(), 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct SessionMiddleware {
    bridge: SessionBridge,
}

impl SessionMiddleware {
    /// The middleware for `bridge`.
    ///
    /// ```
    /// use poem::{EndpointExt, Route, get, handler};
    /// use session_bridge::SessionBridge;
    /// use session_bridge::integrations::poem::SessionMiddleware;
    /// # #[handler] fn index() -> &'static str { "hi" }
    /// let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build()?;
    /// // Every route of `app` gets the session; a socket.io mount goes outside it.
    /// let app = Route::new().at("/", get(index)).with(SessionMiddleware::new(bridge));
    /// # Ok::<(), session_bridge::Error>(())
    /// ```
    pub fn new(bridge: SessionBridge) -> Self {
        Self { bridge }
    }
}

impl<E: Endpoint> Middleware<E> for SessionMiddleware {
    type Output = SessionEndpoint<E>;
    fn transform(&self, ep: E) -> Self::Output {
        SessionEndpoint {
            inner: ep,
            bridge: self.bridge.clone(),
        }
    }
}

/// The endpoint made by [`SessionMiddleware`].
///
/// ```
/// use poem::{EndpointExt, handler};
/// use session_bridge::SessionBridge;
/// use session_bridge::integrations::poem::{SessionEndpoint, SessionMiddleware};
/// # #[handler] fn index() -> &'static str { "hi" }
/// # let bridge = session_bridge::testing::test_bridge();
/// let app: SessionEndpoint<_> = index.with(SessionMiddleware::new(bridge));
/// # Ok::<(), session_bridge::Error>(())
/// ```
#[derive(Debug)]
pub struct SessionEndpoint<E> {
    inner: E,
    bridge: SessionBridge,
}

impl<E: Endpoint> Endpoint for SessionEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let ctx = self.bridge.begin_request(req.headers());
        req.extensions_mut().insert(ctx.session().clone());
        let mut response = match self.inner.call(req).await {
            Ok(output) => output.into_response(),
            Err(err) => err.into_response(),
        };
        // H10: a 5xx response commits nothing of the session (unless the bridge says so).
        let status = response.status();
        if let Err(err) = ctx.commit_response(status, response.headers_mut()).await {
            tracing::error!(error = %err, "session commit failed");
            return Ok(err.status().into_response());
        }
        Ok(response)
    }
}

impl<'a> FromRequest<'a> for Session {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        req.extensions().get::<Session>().cloned().ok_or_else(|| {
            tracing::error!("`Session` extracted on a route without `SessionMiddleware`");
            poem::Error::from_status(StatusCode::INTERNAL_SERVER_ERROR)
        })
    }
}
#[cfg(test)]
mod tests {
    use poem::{EndpointExt, handler, http::header::SET_COOKIE};

    use super::*;
    use crate::{Error, Record, SyncStore};

    /// A store whose every call fails, to reach the 500 path.
    struct Down;
    impl SyncStore for Down {
        fn get(&self, _: &str) -> crate::Result<Option<Record>> {
            Err(Error::store("get", "down"))
        }
        fn create(&self, _: &str, _: Record) -> crate::Result<bool> {
            Err(Error::store("create", "down"))
        }
        fn update(&self, _: &str, _: Record, _: u64) -> crate::Result<bool> {
            Err(Error::store("update", "down"))
        }
        fn destroy(&self, _: &str, _: u64) -> crate::Result<bool> {
            Err(Error::store("destroy", "down"))
        }
    }

    #[handler]
    async fn write(session: Session) -> &'static str {
        // The store error surfaces here too; the handler ignores it on purpose, so that the
        // commit is what fails.
        let _ = session.insert("n", 1).await;
        "handler body with internals"
    }

    #[handler]
    async fn write_ok(session: Session) -> &'static str {
        let _ = session.insert("n", 1).await;
        "ok"
    }

    fn call<E: Endpoint>(ep: E) -> Response {
        let req = Request::builder().finish();
        match futures::executor::block_on(ep.call(req)) {
            Ok(output) => output.into_response(),
            Err(err) => err.into_response(),
        }
    }

    #[handler]
    async fn write_then_fail(session: Session) -> poem::Result<&'static str> {
        session.insert("n", 1).await?;
        Err(poem::Error::from_status(StatusCode::BAD_GATEWAY))
    }

    #[handler]
    async fn question_mark(session: Session) -> poem::Result<&'static str> {
        session.insert("n", 1).await?;
        Err(Error::Conflict { attempts: 4 })?
    }

    /// H10: the handler wrote, then answered 502: nothing is stored, no session cookie, only
    /// the client cookie.
    #[test]
    fn h10_a_5xx_answer_commits_nothing() {
        let bridge = crate::testing::test_bridge();
        let res = call(write_then_fail.with(SessionMiddleware::new(bridge.clone())));
        assert_eq!(res.status(), StatusCode::BAD_GATEWAY);
        let cookies: Vec<_> = res.headers().get_all(SET_COOKIE).iter().collect();
        assert_eq!(cookies.len(), 1, "{cookies:?}");
        assert!(cookies[0].to_str().unwrap().starts_with("app.sid.cid="));
        assert_eq!(bridge.mapped_sessions(), 0, "no session was created");
    }

    /// `?` on `session_bridge::Error` in a poem handler: the error's status, empty body.
    #[test]
    fn question_mark_on_a_session_error_is_its_status_with_an_empty_body() {
        let res = call(question_mark.with(SessionMiddleware::new(crate::testing::test_bridge())));
        assert_eq!(res.status(), StatusCode::CONFLICT);
        let body = futures::executor::block_on(res.into_body().into_vec()).unwrap();
        assert!(body.is_empty());
    }

    #[test]
    fn commit_sets_both_cookies() {
        let bridge = SessionBridge::builder()
            .key("app.sid")
            .keys([[7u8; 32]])
            .build()
            .unwrap();
        let res = call(write_ok.with(SessionMiddleware::new(bridge)));
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers().get_all(SET_COOKIE).iter().count(), 2);
    }

    #[test]
    fn a_failed_commit_is_an_empty_500_without_cookies() {
        let bridge = SessionBridge::builder()
            .key("app.sid")
            .keys([[7u8; 32]])
            .max_session_bytes(4)
            .build()
            .unwrap();
        let res = call(write.with(SessionMiddleware::new(bridge)));
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(res.headers().get(SET_COOKIE).is_none());
        let body = futures::executor::block_on(res.into_body().into_vec()).unwrap();
        assert!(body.is_empty());
    }

    #[test]
    fn a_store_outage_is_an_empty_500() {
        let bridge = SessionBridge::builder()
            .key("app.sid")
            .keys([[7u8; 32]])
            .store(Down)
            .build()
            .unwrap();
        // A new session's first write needs no read; its create fails at commit.
        let res = call(write.with(SessionMiddleware::new(bridge)));
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = futures::executor::block_on(res.into_body().into_vec()).unwrap();
        assert!(body.is_empty());
    }

    #[test]
    fn the_extractor_without_the_middleware_is_a_500_not_a_panic() {
        let res = call(write_ok);
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}

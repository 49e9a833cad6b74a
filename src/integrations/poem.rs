//! poem glue (feature `poem`): [`SessionMiddleware`] runs the HTTP flow around every request,
//! [`Session`] is an extractor, and [`SocketIoEndpoint`] mounts socketioxide so that all three
//! socket.io transports work (polling, websocket, polling upgraded to websocket).
//!
//! ```no_run
//! use poem::{Route, get, handler, web::Json, EndpointExt};
//! use session_bridge::{Session, SessionBridge};
//! use session_bridge::integrations::poem::{SessionMiddleware, SocketIoEndpoint};
//! use session_bridge::integrations::socketioxide::bind_session;
//! use socketioxide::{SocketIo, extract::SocketRef, handler::ConnectHandler};
//!
//! #[handler]
//! async fn count(session: Session) -> poem::Result<Json<u64>> {
//!     let n = session.get::<u64>("n").await.map_err(poem::error::InternalServerError)?.unwrap_or(0) + 1;
//!     session.insert("n", n).await.map_err(poem::error::InternalServerError)?;
//!     Ok(Json(n))
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build().unwrap();
//! let (svc, io) = SocketIo::builder().with_state(bridge.clone()).build_svc();
//! io.ns("/", (async |_s: SocketRef| {}).with(bind_session));
//! let app = Route::new()
//!     .at("/count", get(count).with(SessionMiddleware::new(bridge)))
//!     .nest_no_strip("/socket.io", SocketIoEndpoint::new(svc));
//! poem::Server::new(poem::listener::TcpListener::bind("127.0.0.1:3000")).run(app).await
//! # }
//! ```
//!
//! Mount socket.io *outside* the session middleware: the socket side never sets a cookie
//! (SPEC S1), it reads the handshake's cookies itself.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use poem::endpoint::TowerCompatExt;
use poem::http::{HeaderValue, StatusCode, header};
use poem::{Endpoint, FromRequest, IntoResponse, Middleware, Request, RequestBody, Response};
use sha1::Digest;
/// poem's internal request body type, which `compat()` hands to tower services.
type BoxBody = http_body_util::combinators::BoxBody<bytes::Bytes, std::io::Error>;
use tower_service::Service;

use crate::{Session, SessionBridge};

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
/// # let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build()?;
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
/// # let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build()?;
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
        if let Err(err) = ctx.commit(response.headers_mut()).await {
            tracing::error!(error = %err, "session commit failed");
            return Ok(StatusCode::INTERNAL_SERVER_ERROR.into_response());
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

/// Mounts a socketioxide service in poem: `route.nest_no_strip("/socket.io", ..)`.
///
/// poem's own `TowerCompatExt::compat()` serves polling but drops hyper's upgrade handle, so
/// websocket clients time out and polling clients never upgrade. This endpoint answers a
/// websocket upgrade itself (`101` with `Sec-WebSocket-Accept`), then hands the upgraded
/// connection and the rebuilt handshake request to socketioxide; every other request goes
/// through `compat()`.
///
/// ```
/// use poem::Route;
/// use session_bridge::SessionBridge;
/// use session_bridge::integrations::{poem::SocketIoEndpoint, socketioxide::bind_session};
/// use socketioxide::{SocketIo, extract::SocketRef, handler::ConnectHandler};
///
/// let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build()?;
/// let (svc, io) = SocketIo::builder().with_state(bridge).build_svc();
/// io.ns("/", (async |_s: SocketRef| {}).with(bind_session));
/// let app = Route::new().nest_no_strip("/socket.io", SocketIoEndpoint::new(svc));
/// # Ok::<(), session_bridge::Error>(())
/// ```
pub struct SocketIoEndpoint<S> {
    svc: S,
}

impl<S> SocketIoEndpoint<S> {
    /// Wraps the service from `SocketIo::builder().build_svc()`.
    ///
    /// ```
    /// use poem::Route;
    /// use session_bridge::SessionBridge;
    /// use session_bridge::integrations::{poem::SocketIoEndpoint, socketioxide::bind_session};
    /// use socketioxide::{SocketIo, extract::SocketRef, handler::ConnectHandler};
    ///
    /// let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build()?;
    /// let (svc, io) = SocketIo::builder().with_state(bridge).build_svc();
    /// io.ns("/", (async |_s: SocketRef| {}).with(bind_session));
    /// let endpoint = SocketIoEndpoint::new(svc);
    /// let app = Route::new().nest_no_strip("/socket.io", endpoint);
    /// # Ok::<(), session_bridge::Error>(())
    /// ```
    pub fn new(svc: S) -> Self {
        Self { svc }
    }
}

impl<S> std::fmt::Debug for SocketIoEndpoint<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SocketIoEndpoint")
    }
}

/// RFC 6455: base64(SHA-1(key + GUID)).
fn accept_key(key: &[u8]) -> String {
    let mut sha = sha1::Sha1::new();
    sha.update(key);
    sha.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    STANDARD.encode(sha.finalize())
}

fn is_websocket_upgrade(req: &Request) -> bool {
    let has_token = |name: header::HeaderName, token: &str| {
        req.headers().get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    has_token(header::CONNECTION, "upgrade") && has_token(header::UPGRADE, "websocket")
}

impl<S, ResBody, Err, Fut> Endpoint for SocketIoEndpoint<S>
where
    S: Service<
            http::Request<BoxBody>,
            Response = http::Response<ResBody>,
            Error = Err,
            Future = Fut,
        > + Service<(poem::Upgraded, http::Request<()>)>
        + Clone
        + Send
        + Sync
        + 'static,
    <S as Service<(poem::Upgraded, http::Request<()>)>>::Future: Send,
    <S as Service<(poem::Upgraded, http::Request<()>)>>::Error: std::fmt::Display,
    ResBody: http_body::Body + Send + Sync + 'static,
    ResBody::Data: Into<bytes::Bytes> + Send + 'static,
    ResBody::Error: std::error::Error + Send + Sync + 'static,
    Err: Into<poem::Error>,
    Fut: std::future::Future<Output = Result<http::Response<ResBody>, Err>> + Send + 'static,
{
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        if !is_websocket_upgrade(&req) {
            return self
                .svc
                .clone()
                .compat::<ResBody, Err, Fut>()
                .call(req)
                .await
                .map(IntoResponse::into_response);
        }
        let Some(key) = req.headers().get(header::SEC_WEBSOCKET_KEY).cloned() else {
            return Ok(StatusCode::BAD_REQUEST.into_response());
        };
        if req
            .headers()
            .get(header::SEC_WEBSOCKET_VERSION)
            .is_none_or(|v| v.as_bytes() != b"13")
        {
            return Ok(StatusCode::BAD_REQUEST.into_response());
        }
        let on_upgrade = match req.take_upgrade() {
            Ok(u) => u,
            Err(_) => return Ok(StatusCode::BAD_REQUEST.into_response()),
        };
        let mut handshake = http::Request::new(());
        *handshake.method_mut() = req.method().clone();
        *handshake.uri_mut() = req.uri().clone();
        *handshake.version_mut() = req.version();
        *handshake.headers_mut() = req.headers().clone();
        *handshake.extensions_mut() = req.extensions().clone();
        let mut svc = self.svc.clone();
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => {
                    let call = Service::<(poem::Upgraded, http::Request<()>)>::call(
                        &mut svc,
                        (upgraded, handshake),
                    );
                    if let Err(err) = call.await {
                        tracing::debug!(error = %err, "socket.io refused a websocket");
                    }
                }
                Err(err) => tracing::debug!(error = %err, "websocket upgrade failed"),
            }
        });
        let accept = HeaderValue::from_str(&accept_key(key.as_bytes()))
            .map_err(|_| poem::Error::from_status(StatusCode::BAD_REQUEST))?;
        Ok(Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header(header::CONNECTION, "upgrade")
            .header(header::UPGRADE, "websocket")
            .header(header::SEC_WEBSOCKET_ACCEPT, accept)
            .finish())
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
        fn set(&self, _: &str, _: Record) -> crate::Result<bool> {
            Err(Error::store("set", "down"))
        }
        fn destroy(&self, _: &str) -> crate::Result<bool> {
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

    #[test]
    fn accept_key_matches_rfc_6455_example() {
        assert_eq!(
            super::accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }
}

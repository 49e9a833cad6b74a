//! axum glue (feature `axum`): [`SessionLayer`] is a tower layer that runs the HTTP flow around
//! the routes it wraps, [`Session`] is an extractor, and [`Error`] is an `IntoResponse`, so `?`
//! works in a handler returning `Result<_, session_bridge::Error>` (an empty 500, or 409 for a
//! conflict: nothing internal reaches the client).
//!
//! socket.io needs no glue of its own on axum: socketioxide's `SocketIoLayer` is a tower layer
//! too, websocket upgrades included. Add it *after* (outside) the session layer, so that it
//! answers `/socket.io/` requests before the session layer runs: the socket side never sets a
//! cookie (SPEC S1), [`bind_session`](crate::integrations::socketioxide::bind_session) reads
//! the handshake's cookies itself.
//!
//! ```no_run
//! # #[cfg(feature = "socketioxide")] mod demo {
//! use axum::{Json, Router, routing::get};
//! use session_bridge::{Session, SessionBridge};
//! use session_bridge::integrations::axum::SessionLayer;
//! use session_bridge::integrations::socketioxide::bind_session;
//! use socketioxide::{SocketIo, extract::SocketRef, handler::ConnectHandler};
//!
//! async fn count(session: Session) -> Result<Json<u64>, session_bridge::Error> {
//!     let n = session.get::<u64>("n").await?.unwrap_or(0) + 1;
//!     session.insert("n", n).await?;
//!     Ok(Json(n))
//! }
//!
//! # pub async fn run() -> std::io::Result<()> {
//! let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build().unwrap();
//! let (layer, io) = SocketIo::builder().with_state(bridge.clone()).build_layer();
//! io.ns("/", (async |_s: SocketRef| {}).with(bind_session));
//! let app = Router::new()
//!     .route("/count", get(count))
//!     .layer(SessionLayer::new(bridge))
//!     .layer(layer); // outermost: socket.io answers before the session layer runs
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await
//! # }}
//! ```
//!
//! Modelled on tower-sessions' `SessionManagerLayer`: the layer is generic over the request
//! and response bodies (any `Default` response body serves the empty error answer), so it
//! also wraps a plain tower service, not only an axum `Router`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{Request, StatusCode};
use tower_layer::Layer;
use tower_service::Service;

use crate::{Error, Session, SessionBridge};

/// `?` on a session call in an axum handler returning `Result<_, session_bridge::Error>`: the
/// status of [`Error::status`] with an empty body, and the error logged (its message names no
/// id and no data).
///
/// ```
/// use axum::response::IntoResponse;
/// use session_bridge::Error;
///
/// let response = Error::Conflict { attempts: 4 }.into_response();
/// assert_eq!(response.status(), http::StatusCode::CONFLICT);
/// ```
impl IntoResponse for Error {
    fn into_response(self) -> Response {
        tracing::error!(error = %self, "session error answered with an empty {}", self.status());
        self.status().into_response()
    }
}

/// The tower layer that runs the HTTP flow (SPEC H1-H12) around the services it wraps: reads
/// the cookies before the handler (no store call), puts the [`Session`] into the request's
/// extensions (where the [`Session`] extractor finds it), commits after the handler and
/// appends the `Set-Cookie` headers.
///
/// - A 5xx response commits nothing of the session (H10), unless the bridge says so.
/// - A commit error (store down, session too large, a conflict: H12) is logged and answered
///   with an empty-bodied [`Error::status`] (500, or 409 for a conflict) that keeps none of
///   the handler's headers: nothing about internals reaches the client.
/// - An error of the inner service (never, for an axum `Router`) is passed on and commits
///   nothing: there is no response to put a cookie on.
///
/// ```
/// use axum::{Router, body::Body, routing::get};
/// use session_bridge::Session;
/// use session_bridge::integrations::axum::SessionLayer;
/// use tower::ServiceExt;
///
/// async fn login(session: Session) -> Result<&'static str, session_bridge::Error> {
///     session.insert("user", "ada").await?;
///     Ok("welcome")
/// }
/// # let bridge = session_bridge::testing::test_bridge();
/// let app = Router::new().route("/login", get(login)).layer(SessionLayer::new(bridge));
/// let request = http::Request::get("/login").body(Body::empty())?;
/// let response = futures::executor::block_on(app.oneshot(request))?;
/// assert_eq!(response.status(), http::StatusCode::OK);
/// // The client cookie and the session cookie.
/// assert_eq!(response.headers().get_all("set-cookie").iter().count(), 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct SessionLayer {
    bridge: SessionBridge,
}

impl SessionLayer {
    /// The layer for `bridge`.
    ///
    /// ```
    /// use axum::{Router, routing::get};
    /// use session_bridge::SessionBridge;
    /// use session_bridge::integrations::axum::SessionLayer;
    /// let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build()?;
    /// // Every route of `app` gets the session; a socket.io layer goes outside it.
    /// let app: Router = Router::new()
    ///     .route("/", get(async || "hi"))
    ///     .layer(SessionLayer::new(bridge));
    /// # Ok::<(), session_bridge::Error>(())
    /// ```
    pub fn new(bridge: SessionBridge) -> Self {
        Self { bridge }
    }
}

impl<S> Layer<S> for SessionLayer {
    type Service = SessionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionService {
            inner,
            bridge: self.bridge.clone(),
        }
    }
}

/// The service made by [`SessionLayer`] around `S`.
///
/// ```
/// use session_bridge::integrations::axum::{SessionLayer, SessionService};
/// use tower::{Layer, service_fn};
/// # let bridge = session_bridge::testing::test_bridge();
/// // Any tower service with `http` types; an axum `Router` is one.
/// let echo = service_fn(async |_req: http::Request<String>| {
///     Ok::<_, std::convert::Infallible>(http::Response::new(String::from("ok")))
/// });
/// let svc: SessionService<_> = SessionLayer::new(bridge).layer(echo);
/// ```
#[derive(Clone, Debug)]
pub struct SessionService<S> {
    inner: S,
    bridge: SessionBridge,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SessionService<S>
where
    S: Service<Request<ReqBody>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        // The service that `poll_ready` readied serves this request; the clone left behind
        // is readied by the next `poll_ready` (tower's contract, as in tower-sessions).
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let ctx = self.bridge.begin_request(req.headers());
        req.extensions_mut().insert(ctx.session().clone());
        Box::pin(async move {
            let mut response = inner.call(req).await?;
            // H10: a 5xx response commits nothing of the session (unless the bridge says so).
            let status = response.status();
            if let Err(err) = ctx.commit_response(status, response.headers_mut()).await {
                tracing::error!(error = %err, "session commit failed");
                let mut empty = http::Response::new(ResBody::default());
                *empty.status_mut() = err.status();
                return Ok(empty);
            }
            Ok(response)
        })
    }
}

/// `session: Session` as an axum handler argument. On a route without [`SessionLayer`] the
/// handler is not called and the answer is a 500 (a wiring mistake, logged).
///
/// ```
/// use axum::{Router, body::Body, routing::get};
/// use session_bridge::Session;
/// use tower::ServiceExt;
///
/// async fn whoami(session: Session) -> String {
///     format!("{:?}", session.client_id()) // a digest, never the id
/// }
/// let app = Router::new().route("/", get(whoami)); // no SessionLayer
/// let request = http::Request::get("/").body(Body::empty())?;
/// let response = futures::executor::block_on(app.oneshot(request))?;
/// assert_eq!(response.status(), http::StatusCode::INTERNAL_SERVER_ERROR);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = StatusCode;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, StatusCode> {
        parts.extensions.get::<Session>().cloned().ok_or_else(|| {
            tracing::error!("`Session` extracted on a route without `SessionLayer`");
            StatusCode::INTERNAL_SERVER_ERROR
        })
    }
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::{Body, to_bytes};
    use axum::routing::get;
    use http::header::{CONTENT_TYPE, SET_COOKIE};
    use tower::ServiceExt;

    use super::*;
    use crate::{Record, SyncStore};

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

    fn bridge(max_session_bytes: usize) -> SessionBridge {
        SessionBridge::builder()
            .key("app.sid")
            .keys([[7u8; 32]])
            .max_session_bytes(max_session_bytes)
            .build()
            .unwrap()
    }

    /// `GET /` through `app`; the status, the `Set-Cookie` values and the body.
    fn call(app: Router) -> (StatusCode, http::HeaderMap, Vec<u8>) {
        let req = Request::get("/").body(Body::empty()).unwrap();
        futures::executor::block_on(async {
            let res = app.oneshot(req).await.unwrap();
            let status = res.status();
            let headers = res.headers().clone();
            let body = to_bytes(res.into_body(), usize::MAX).await.unwrap();
            (status, headers, body.to_vec())
        })
    }

    fn with_layer(bridge: SessionBridge, router: Router) -> Router {
        router.layer(SessionLayer::new(bridge))
    }

    async fn write(session: Session) -> axum::Json<serde_json::Value> {
        // The store error surfaces here too; the handler ignores it on purpose, so that the
        // commit is what fails.
        let _ = session.insert("n", "x".repeat(100)).await;
        axum::Json(serde_json::json!({ "secret": "handler body with internals" }))
    }

    async fn write_ok(session: Session) -> &'static str {
        session.insert("n", 1).await.unwrap();
        "ok"
    }

    async fn write_then_fail(session: Session) -> StatusCode {
        session.insert("n", 1).await.unwrap();
        StatusCode::BAD_GATEWAY
    }

    async fn question_mark(session: Session) -> Result<&'static str, Error> {
        session.insert("n", 1).await?;
        Err(Error::Conflict { attempts: 4 })
    }

    #[test]
    fn commit_sets_both_cookies() {
        let app = with_layer(bridge(64 * 1024), Router::new().route("/", get(write_ok)));
        let (status, headers, body) = call(app);
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers.get_all(SET_COOKIE).iter().count(), 2);
        assert_eq!(body, b"ok");
    }

    #[test]
    fn a_failed_commit_is_an_empty_500_without_cookies() {
        let app = with_layer(bridge(16), Router::new().route("/", get(write)));
        let (status, headers, body) = call(app);
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(headers.get(SET_COOKIE).is_none(), "{headers:?}");
        assert!(
            headers.get(CONTENT_TYPE).is_none(),
            "the handler's headers are dropped"
        );
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
        let app = with_layer(bridge, Router::new().route("/", get(write)));
        let (status, headers, body) = call(app);
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(headers.get(SET_COOKIE).is_none());
        assert!(body.is_empty());
    }

    /// H10: the handler wrote, then answered 502: nothing is stored, no session cookie, only
    /// the client cookie.
    #[test]
    fn h10_a_5xx_answer_commits_nothing() {
        let bridge = bridge(64 * 1024);
        let app = with_layer(
            bridge.clone(),
            Router::new().route("/", get(write_then_fail)),
        );
        let (status, headers, _) = call(app);
        assert_eq!(status, StatusCode::BAD_GATEWAY);
        let cookies: Vec<_> = headers.get_all(SET_COOKIE).iter().collect();
        assert_eq!(cookies.len(), 1, "{cookies:?}");
        assert!(cookies[0].to_str().unwrap().starts_with("app.sid.cid="));
        assert_eq!(bridge.mapped_sessions(), 0, "no session was created");
    }

    /// `?` on `session_bridge::Error` in an axum handler: the error's status, empty body.
    #[test]
    fn question_mark_on_a_session_error_is_its_status_with_an_empty_body() {
        let app = with_layer(
            bridge(64 * 1024),
            Router::new().route("/", get(question_mark)),
        );
        let (status, _, body) = call(app);
        assert_eq!(status, StatusCode::CONFLICT);
        assert!(body.is_empty());
    }

    /// H5, as tower-sessions' `set_expiry` test does: a route that only sets the session's
    /// expiry (it never reads the session) changes the record's TTL and re-sends the cookie
    /// with the new Max-Age (issue 19 defect 2: it was silently dropped).
    #[test]
    fn h5_set_max_age_on_a_route_that_never_reads_the_session() {
        async fn set_expiry(session: Session) -> Result<&'static str, Error> {
            session.set_max_age(std::time::Duration::from_secs(24 * 3600))?;
            Ok("ok")
        }
        let bridge = bridge(64 * 1024);
        let app = with_layer(
            bridge,
            Router::new()
                .route("/", get(write_ok))
                .route("/set_expiry", get(set_expiry)),
        );
        let (_, first, _) = call(app.clone());
        let cookie = first
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_owned))
            .collect::<Vec<_>>()
            .join("; ");
        let req = Request::get("/set_expiry")
            .header(http::header::COOKIE, cookie)
            .body(Body::empty())
            .unwrap();
        let res = futures::executor::block_on(app.oneshot(req)).unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let session_cookie = res
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("app.sid="))
            .map(str::to_owned);
        assert!(
            session_cookie
                .as_deref()
                .is_some_and(|c| c.contains("Max-Age=86400")),
            "{session_cookie:?}"
        );
    }

    #[test]
    fn the_extractor_without_the_layer_is_a_500_not_a_panic() {
        let (status, headers, body) = call(Router::new().route("/", get(write_ok)));
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(headers.get(SET_COOKIE).is_none());
        assert!(body.is_empty());
    }

    /// A plain tower service (not an axum `Router`) under the layer, with its own body type.
    #[test]
    fn the_layer_wraps_any_tower_service() {
        let svc = SessionLayer::new(bridge(64 * 1024)).layer(tower::service_fn(
            async |req: Request<String>| {
                let session = req.extensions().get::<Session>().unwrap().clone();
                session.insert("n", 1).await.unwrap();
                Ok::<_, std::convert::Infallible>(http::Response::new(String::from("ok")))
            },
        ));
        let res = futures::executor::block_on(svc.oneshot(Request::new(String::new()))).unwrap();
        assert_eq!(res.headers().get_all(SET_COOKIE).iter().count(), 2);
    }
}

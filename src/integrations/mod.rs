//! Framework glue, one module per cargo feature. Each turns the framework-free flows
//! ([`RequestContext`](crate::RequestContext), [`SocketSession`](crate::SocketSession)) into
//! the framework's middleware and extractors, and nothing more.
//!
//! Glue for a framework without a module here is the same two calls around its handler:
//!
//! ```
//! use http::{HeaderMap, Response, StatusCode};
//! use session_bridge::{Session, SessionBridge};
//!
//! async fn with_session<F>(bridge: &SessionBridge, req: &HeaderMap, handler: F) -> Response<String>
//! where
//!     F: AsyncFnOnce(Session) -> Response<String>,
//! {
//!     let ctx = bridge.begin_request(req); // reads cookies, no store call
//!     let mut response = handler(ctx.session().clone()).await;
//!     // A 5xx commits nothing of the session (H10).
//!     let status = response.status();
//!     if ctx.commit_response(status, response.headers_mut()).await.is_err() {
//!         // Log it; the client learns nothing about the store.
//!         response = Response::new(String::new());
//!         *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
//!     }
//!     response
//! }
//! # let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build().unwrap();
//! # let response = futures::executor::block_on(with_session(&bridge, &HeaderMap::new(), async |s: Session| {
//! #     s.insert("user", "ada").await.unwrap();
//! #     Response::new("ok".to_owned())
//! # }));
//! # assert_eq!(response.headers().get_all("set-cookie").iter().count(), 2);
//! ```

#[cfg(feature = "socketioxide")]
#[cfg_attr(docsrs, doc(cfg(feature = "socketioxide")))]
pub mod socketioxide;

#[cfg(feature = "poem")]
#[cfg_attr(docsrs, doc(cfg(feature = "poem")))]
pub mod poem;

#[cfg(feature = "salvo")]
#[cfg_attr(docsrs, doc(cfg(feature = "salvo")))]
pub mod salvo;

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod axum;

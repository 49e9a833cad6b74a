//! The socket.io mount for poem (features `poem` + `socketioxide`): poem's stock tower mount
//! drops hyper's upgrade, so websocket upgrades are answered here and handed to socketioxide.

use poem::endpoint::TowerCompatExt;
use poem::http::{HeaderValue, StatusCode, header};
use poem::{Endpoint, IntoResponse, Request, Response};
use tower_service::Service;

/// poem's internal request body type, which `compat()` hands to tower services.
type BoxBody = http_body_util::combinators::BoxBody<bytes::Bytes, std::io::Error>;

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
        let accept =
            HeaderValue::from_str(&tungstenite::handshake::derive_accept_key(key.as_bytes()))
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
    #[test]
    fn accept_key_matches_rfc_6455_example() {
        assert_eq!(
            tungstenite::handshake::derive_accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }
}

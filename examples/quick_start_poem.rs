//! The seed README's Quick Start on poem: one session shared by HTTP routes and socket.io.
//!
//! ```sh
//! npm ci --prefix examples && cargo run --example quick_start_poem --features poem,socketioxide
//! ```
//! then open http://127.0.0.1:3000/ (`PORT` changes the port; `EVENT_LOG=1` prints events;
//! `SESSION_KEYS` holds the signing keys, comma-separated, newest first, each 32+ bytes:
//! without it the keys are ephemeral and every restart logs everyone out).

#[path = "shared/event_line.rs"]
mod event_line;
#[path = "shared/quick_start.rs"]
mod shared;

use poem::http::StatusCode;
use poem::listener::TcpListener;
use poem::web::{Html, Json};
use poem::{EndpointExt, IntoResponse, Request, Response, Route, Server, get, handler};
use session_bridge::Session;
use session_bridge::integrations::poem::{SessionMiddleware, SocketIoEndpoint};
use socketioxide::SocketIo;

/// A handler result: JSON, or an empty 500 when the session store fails.
fn reply(result: session_bridge::Result<serde_json::Value>) -> Response {
    match result {
        Ok(body) => Json(body).into_response(),
        Err(err) => {
            eprintln!("session error: {err}");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

#[handler]
async fn api_session(req: &Request, session: Session) -> Response {
    reply(shared::api_session(&session, shared::wants_reset(req.uri().query())).await)
}

#[handler]
async fn api_read(session: Session) -> Response {
    reply(shared::http_payload(&session).await)
}

#[handler]
async fn api_user(req: &Request, session: Session) -> Response {
    reply(shared::api_user(&session, req.uri().query()).await)
}

#[handler]
async fn api_login(req: &Request, session: Session) -> Response {
    match shared::api_login(&session, req.uri().query()).await {
        Ok(Ok(body)) => Json(body).into_response(),
        Ok(Err(bad)) => (StatusCode::BAD_REQUEST, Json(bad)).into_response(),
        Err(err) => reply(Err(err)),
    }
}

#[handler]
async fn api_logout(session: Session) -> Response {
    reply(shared::api_logout(&session).await)
}

#[handler]
fn plain() -> &'static str {
    "plain: this route never touches the session"
}

/// benches/load's reference route, outside the session middleware.
#[handler]
fn bare() -> &'static str {
    "bare"
}

/// benches/load's floor for `/api/read`: its JSON from constants, outside the middleware.
#[handler]
fn bare_json() -> Json<serde_json::Value> {
    Json(shared::reference_payload())
}

#[handler]
fn index() -> Html<&'static str> {
    Html(shared::INDEX_HTML)
}

#[handler]
fn socket_io_js() -> Response {
    match shared::socket_io_client_js() {
        Some(js) => Response::builder()
            .content_type("application/javascript")
            .body(js),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// poem's TCP acceptor with `TCP_NODELAY` on every connection: socket.io pushes and acks are
/// small frames, which Nagle's algorithm would hold back until the peer's delayed ACK (40 ms).
struct NoDelay(poem::listener::TcpAcceptor);

impl poem::listener::Acceptor for NoDelay {
    type Io = tokio::net::TcpStream;

    fn local_addr(&self) -> Vec<poem::web::LocalAddr> {
        self.0.local_addr()
    }

    async fn accept(
        &mut self,
    ) -> std::io::Result<(
        Self::Io,
        poem::web::LocalAddr,
        poem::web::RemoteAddr,
        poem::http::uri::Scheme,
    )> {
        let accepted = self.0.accept().await?;
        accepted.0.set_nodelay(true)?;
        Ok(accepted)
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let app = shared::bridge().await;
    let bridge = app.bridge;
    shared::spawn_event_log(&bridge);
    let builder = SocketIo::builder().with_state(bridge.clone());
    #[cfg(feature = "redis-adapter")]
    if let Some(adapter) = app.adapter {
        use session_bridge::integrations::socketioxide::redis::NodesAdapter;
        let (svc, io) = builder.with_adapter::<NodesAdapter<_>>(adapter).build_svc();
        return serve(bridge, SocketIoEndpoint::new(svc), io).await;
    }
    let (svc, io) = builder.build_svc();
    serve(bridge, SocketIoEndpoint::new(svc), io).await
}

/// Serves the app with socket.io on `io` (one process, or one node of many).
async fn serve<A, E>(
    bridge: session_bridge::SessionBridge,
    socket_io: E,
    io: SocketIo<A>,
) -> std::io::Result<()>
where
    A: socketioxide::adapter::Adapter + socketioxide_core::adapter::DefinedAdapter,
    E: poem::Endpoint + 'static,
{
    use poem::listener::{Acceptor, Listener};
    use std::io::Write;

    shared::register_socket_handlers(&io);
    shared::spawn_session_end_notices(&io, &bridge);
    shared::spawn_load_cleanup(&bridge);

    // The session middleware on each session route (one routing level for every route, so
    // `/bare` and `/plain` differ by the middleware alone); socket.io sits outside it: it
    // reads cookies, never sets them.
    let session = SessionMiddleware::new(bridge);
    let root = Route::new()
        .at("/", get(index).with(session.clone()))
        .at("/api/session", get(api_session).with(session.clone()))
        .at("/api/read", get(api_read).with(session.clone()))
        .at("/api/user", get(api_user).with(session.clone()))
        .at("/api/login", get(api_login).with(session.clone()))
        .at("/api/logout", get(api_logout).with(session.clone()))
        .at("/plain", get(plain).with(session))
        .at("/vendor/socket.io.min.js", get(socket_io_js))
        .at("/bare", get(bare))
        .at("/bare/json", get(bare_json))
        .nest_no_strip("/socket.io", socket_io);

    // `PORT=0` binds an ephemeral port: print the address really bound, flushed, so a test
    // that reads this first line knows where to connect.
    let acceptor = NoDelay(
        TcpListener::bind(format!("127.0.0.1:{}", shared::port()))
            .into_acceptor()
            .await?,
    );
    let addr = acceptor
        .local_addr()
        .into_iter()
        .find_map(|local| local.as_socket_addr().copied())
        .ok_or_else(|| std::io::Error::other("the listener has no socket address"))?;
    println!("quick_start_poem listening on http://{addr}");
    std::io::stdout().flush()?;
    Server::new_with_acceptor(acceptor).run(root).await
}

//! The seed README's Quick Start on axum: one session shared by HTTP routes and socket.io.
//!
//! ```sh
//! npm ci --prefix examples && cargo run --example quick_start_axum --features axum,socketioxide
//! ```
//! then open http://127.0.0.1:3000/ (`PORT` changes the port; `EVENT_LOG=1` prints events;
//! `SESSION_KEYS` holds the signing keys, comma-separated, newest first, each 32+ bytes:
//! without it the keys are ephemeral and every restart logs everyone out).

#[path = "shared/event_line.rs"]
mod event_line;
#[path = "shared/quick_start.rs"]
mod shared;

use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::http::{StatusCode, Uri};
use axum::response::{Html, IntoResponse, Json, Response};
use axum::routing::get;
use session_bridge::Session;
use session_bridge::integrations::axum::SessionLayer;
use socketioxide::SocketIo;

/// A handler result: JSON, or an empty 500 when the session store fails (the error's
/// `IntoResponse` logs it).
fn reply(result: session_bridge::Result<serde_json::Value>) -> Response {
    match result {
        Ok(body) => Json(body).into_response(),
        Err(err) => {
            eprintln!("session error: {err}");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

async fn api_session(uri: Uri, session: Session) -> Response {
    reply(shared::api_session(&session, shared::wants_reset(uri.query())).await)
}

async fn api_read(session: Session) -> Response {
    reply(shared::http_payload(&session).await)
}

async fn api_user(uri: Uri, session: Session) -> Response {
    reply(shared::api_user(&session, uri.query()).await)
}

async fn api_login(uri: Uri, session: Session) -> Response {
    match shared::api_login(&session, uri.query()).await {
        Ok(Ok(body)) => Json(body).into_response(),
        Ok(Err(bad)) => (StatusCode::BAD_REQUEST, Json(bad)).into_response(),
        Err(err) => reply(Err(err)),
    }
}

async fn api_logout(session: Session) -> Response {
    reply(shared::api_logout(&session).await)
}

async fn plain() -> &'static str {
    "plain: this route never touches the session"
}

async fn index() -> Html<&'static str> {
    Html(shared::INDEX_HTML)
}

async fn socket_io_js() -> Response {
    match shared::socket_io_client_js() {
        Some(js) => ([(CONTENT_TYPE, "application/javascript")], js).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
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
        let (layer, io) = builder
            .with_adapter::<NodesAdapter<_>>(adapter)
            .build_layer();
        return serve(bridge, layer, io).await;
    }
    let (layer, io) = builder.build_layer();
    serve(bridge, layer, io).await
}

/// Serves the app with socket.io on `io` (one process, or one node of many).
async fn serve<A>(
    bridge: session_bridge::SessionBridge,
    layer: socketioxide::layer::SocketIoLayer<A>,
    io: SocketIo<A>,
) -> std::io::Result<()>
where
    A: socketioxide::adapter::Adapter + socketioxide_core::adapter::DefinedAdapter,
{
    use std::io::Write;

    shared::register_socket_handlers(&io);
    shared::spawn_session_end_notices(&io, &bridge);

    let app = Router::new()
        .route("/", get(index))
        .route("/api/session", get(api_session))
        .route("/api/read", get(api_read))
        .route("/api/user", get(api_user))
        .route("/api/login", get(api_login))
        .route("/api/logout", get(api_logout))
        .route("/plain", get(plain))
        .layer(SessionLayer::new(bridge));
    // socket.io is the outermost layer: it answers `/socket.io/` before the session layer
    // runs, so it reads cookies and never sets them. The static script needs no session.
    let root = Router::new()
        .route("/vendor/socket.io.min.js", get(socket_io_js))
        .merge(app)
        .layer(layer);

    // `PORT=0` binds an ephemeral port: print the address really bound, flushed, so a test
    // that reads this first line knows where to connect.
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{}", shared::port())).await?;
    let addr = listener.local_addr()?;
    println!("quick_start_axum listening on http://{addr}");
    std::io::stdout().flush()?;
    axum::serve(listener, root).await
}

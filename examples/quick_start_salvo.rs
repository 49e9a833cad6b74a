//! The seed README's Quick Start on salvo: one session shared by HTTP routes and socket.io.
//!
//! ```sh
//! npm ci --prefix examples && cargo run --example quick_start_salvo --features salvo,socketioxide
//! ```
//! then open http://127.0.0.1:3000/ (`PORT` changes the port; `EVENT_LOG=1` prints events;
//! `SESSION_KEYS` holds the signing keys, comma-separated, newest first, each 32+ bytes:
//! without it the keys are ephemeral and every restart logs everyone out).

#[path = "shared/event_line.rs"]
mod event_line;
#[path = "shared/quick_start.rs"]
mod shared;

use salvo::http::HeaderValue;
use salvo::http::header::CONTENT_TYPE;
use salvo::prelude::*;
use session_bridge::Session;
use session_bridge::integrations::salvo::{SessionHandler, socket_io_hoop};
use socketioxide::SocketIo;

/// Writes a handler result: JSON, or an empty 500 when the session store fails.
fn reply(res: &mut Response, result: session_bridge::Result<serde_json::Value>) {
    match result {
        Ok(body) => res.render(Json(body)),
        Err(err) => {
            eprintln!("session error: {err}");
            res.status_code(StatusCode::INTERNAL_SERVER_ERROR);
            res.body(Vec::new()); // empty, not unset: salvo's catcher would write a page
        }
    }
}

#[handler]
async fn api_session(req: &mut Request, session: Session, res: &mut Response) {
    let reset = shared::wants_reset(req.uri().query());
    reply(res, shared::api_session(&session, reset).await);
}

#[handler]
async fn api_read(session: Session, res: &mut Response) {
    reply(res, shared::http_payload(&session).await);
}

#[handler]
async fn api_user(req: &mut Request, session: Session, res: &mut Response) {
    reply(res, shared::api_user(&session, req.uri().query()).await);
}

#[handler]
async fn api_login(req: &mut Request, session: Session, res: &mut Response) {
    match shared::api_login(&session, req.uri().query()).await {
        Ok(Ok(body)) => res.render(Json(body)),
        Ok(Err(bad)) => {
            res.status_code(StatusCode::BAD_REQUEST);
            res.render(Json(bad));
        }
        Err(err) => reply(res, Err(err)),
    }
}

#[handler]
async fn api_logout(session: Session, res: &mut Response) {
    reply(res, shared::api_logout(&session).await);
}

#[handler]
async fn plain() -> &'static str {
    "plain: this route never touches the session"
}

#[handler]
async fn index() -> Text<&'static str> {
    Text::Html(shared::INDEX_HTML)
}

#[handler]
async fn socket_io_js(res: &mut Response) {
    match shared::socket_io_client_js() {
        Some(js) => {
            res.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/javascript"),
            );
            res.body(js);
        }
        None => {
            res.status_code(StatusCode::NOT_FOUND);
        }
    }
}

#[tokio::main]
async fn main() -> salvo::Result<()> {
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
) -> salvo::Result<()>
where
    A: socketioxide::adapter::Adapter + socketioxide_core::adapter::DefinedAdapter,
{
    use std::io::Write;

    shared::register_socket_handlers(&io);
    shared::spawn_session_end_notices(&io, &bridge);

    let app = Router::new()
        .hoop(SessionHandler::new(bridge))
        .get(index)
        .push(Router::with_path("api/session").get(api_session))
        .push(Router::with_path("api/read").get(api_read))
        .push(Router::with_path("api/user").get(api_user))
        .push(Router::with_path("api/login").get(api_login))
        .push(Router::with_path("api/logout").get(api_logout))
        .push(Router::with_path("plain").get(plain));
    let root = Router::new()
        .push(Router::with_path("vendor/socket.io.min.js").get(socket_io_js))
        .push(app);
    // socket.io is a service hoop: it answers before the router's session handler runs, so
    // it reads cookies and never sets them.
    let service = Service::new(root).hoop(socket_io_hoop(layer));

    // `PORT=0` binds an ephemeral port: print the address really bound, flushed, so a test
    // that reads this first line knows where to connect.
    let acceptor = TcpListener::new(format!("127.0.0.1:{}", shared::port()))
        .try_bind()
        .await?;
    let addr = acceptor.local_addr()?;
    println!("quick_start_salvo listening on http://{addr}");
    std::io::stdout().flush()?;
    Server::new(acceptor).serve(service).await;
    Ok(())
}

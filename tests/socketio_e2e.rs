//! Black-box end-to-end test over real TCP: an in-process server speaking the seed README's
//! Quick Start protocol (a small hyper 1 server wrapped by socketioxide, glued with
//! session-bridge), driven by the real Node `socket.io-client` through
//! `tests/e2e/quick_start_scenario.mjs` on the websocket, polling, and polling-then-upgrade
//! transports.
//!
//! The script checks, on every transport (details at its top):
//! - socket and HTTP see each other's writes under one session id (S1, S2, S3, H2, H4, H7);
//! - a socket connected before its session existed sees it once HTTP creates it, and the new
//!   one after an HTTP reset; the handshake sets no cookie (S1, S2, S5, H1, H4);
//! - a socket without cookies gets `missing-session` and never a session (S4, S5);
//! - 2 sockets x 100 concurrent `session:inc` give exactly +200 (S3);
//! - HTTP requests during a slow socket handler lose no update on either side (S3, H4);
//! - `session:reset` over the socket destroys the session; HTTP then starts a new one (S2, S3,
//!   H2 d, H4);
//! - a foreign `Origin` is refused with `connect_error` "origin not allowed" (S1);
//! - login (`/api/login`, regenerate first) and logout (`/api/logout`) reach the sockets as
//!   `session:ended` (`forward_session_ends`); a socket reconnected with the new cookies sees
//!   the new session, one with only the client cookie never does; a client cookie planted
//!   before the login does not follow the session; bad names get 400 (H8, S1, S6);
//! - a request with only the victim's client cookie that writes the session gets a new client
//!   id and a session of its own; the victim's open socket stays on the victim's session
//!   (H2, H8, S1, S2);
//! - two tied pairs (the attacker's complete pair sent before the victim's) trust neither:
//!   no session over HTTP or the socket, the attacker's session never written (C4).
//!
//! The server is the brief's shape with one deliberate change: the event handlers are
//! registered in a connect middleware after `bind_session` (see [`register_events`]), not in
//! the connect handler, because socketioxide spawns the connect handler only after sending
//! CONNECT, and a client emitting on `connect` could otherwise lose its first event.
//!
//! Needs `node` (20+) and, on a fresh checkout, `npm`: the test runs
//! `npm ci --prefix tests/e2e` itself when `tests/e2e/node_modules` is missing, and fails
//! (never skips) when either tool is absent.
#![cfg(feature = "socketioxide")]

mod common;

use common::pass_line::require_pass_line;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use http::header::CONTENT_TYPE;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value, json};
use session_bridge::integrations::socketioxide::{
    OnSessionEnd, bind_session, forward_session_ends,
};
use session_bridge::{
    SameSite, Session, SessionBridge, SocketSession,
    clock::{Clock, SystemClock},
};
use socketioxide::SocketIo;
use socketioxide::extract::{AckSender, SocketRef, TryData};
use socketioxide::handler::ConnectHandler;
use tokio::net::TcpListener;
use tokio::process::Command;
use tokio::task::{JoinHandle, JoinSet};

/// Fixed signing key (32+ bytes): the test's cookies stay verifiable for its whole run.
const KEY: &str = "socketio-e2e signing key, 32+ bytes long";
/// The scenario script's whole-run limit is 50 s; this one only guards against a stuck node.
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(55);
const NPM_CI_TIMEOUT: Duration = Duration::from_secs(180);
/// The scenario's closing line is `PASS <n> checks, ...`; `n` below this means that part of it
/// did not run (a scenario or a transport dropped, a check skipped), whatever its exit code.
/// The count of the full run today: 12 scenarios x 3 transports.
const SCENARIO_MIN_CHECKS: u64 = 462;
/// Upper bound for `session:inc-slow`'s delay.
const MAX_SLOW_DELAY_MS: u64 = 5_000;

type Body = Full<Bytes>;

/// The one JSON payload of every handler: `{ ok: true, [clientId,] sessionId, session }`.
fn session_payload(
    client_id: Option<String>,
    session_id: Option<String>,
    session: &Map<String, Value>,
) -> Value {
    let mut payload = json!({ "ok": true, "sessionId": session_id, "session": session });
    if let Some(cid) = client_id {
        payload["clientId"] = cid.into();
    }
    payload
}

fn missing_session() -> Value {
    json!({ "ok": false, "error": "missing-session" })
}

// -- HTTP side ---------------------------------------------------------------------------

fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    let mut res = Response::new(Full::new(body.into()));
    *res.status_mut() = status;
    if !content_type.is_empty() {
        res.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    res
}

fn json_response(body: &Value) -> Response<Body> {
    respond(StatusCode::OK, "application/json", body.to_string())
}

/// The HTTP session payload as this request sees it now.
async fn http_payload(session: &Session) -> session_bridge::Result<Value> {
    Ok(session_payload(
        Some(session.client_id().into_string()),
        session.session_id().await?.map(String::from),
        &session.data().await?,
    ))
}

/// The Quick Start routes; `/socket.io/` never gets here (socketioxide answers it).
async fn route(
    session: &Session,
    req: &Request<Incoming>,
) -> session_bridge::Result<Response<Body>> {
    let reset = req
        .uri()
        .query()
        .is_some_and(|q| q.split('&').any(|pair| pair == "reset=1"));
    Ok(match req.uri().path() {
        "/api/session" if reset => {
            session.destroy().await?;
            json_response(&json!({ "ok": true, "from": "http:reset" }))
        }
        "/api/session" => {
            // One atomic update under the session's lock (H12): parallel requests of one browser each
            // add exactly 1, none is lost and none is refused.
            let now = SystemClock.now_ms();
            session
                .update(|data| {
                    data.entry("createdAt").or_insert_with(|| now.into());
                    let count = data.get("httpCount").and_then(Value::as_u64).unwrap_or(0);
                    data.insert("httpCount".into(), (count + 1).into());
                })
                .await?;
            json_response(&http_payload(session).await?)
        }
        "/api/read" => json_response(&http_payload(session).await?),
        // The quick starts' login (H8: regenerate first) and logout, for the script's S6
        // scenarios.
        "/api/login" => match login_name(req.uri().query()) {
            Some(name) => {
                session.regenerate().await?;
                session.insert("user", name).await?;
                json_response(&http_payload(session).await?)
            }
            None => respond(
                StatusCode::BAD_REQUEST,
                "application/json",
                json!({ "ok": false, "error": "bad-name" }).to_string(),
            ),
        },
        "/api/logout" => {
            session.destroy().await?;
            json_response(&json!({ "ok": true, "from": "http:logout" }))
        }
        "/plain" => respond(StatusCode::OK, "text/plain", "plain"),
        _ => respond(StatusCode::NOT_FOUND, "text/plain", "not found"),
    })
}

/// `name=` of the query: 1 to 32 characters of `[A-Za-z0-9_-]`.
fn login_name(query: Option<&str>) -> Option<&str> {
    let name = query?.split('&').find_map(|kv| kv.strip_prefix("name="))?;
    let valid = (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    valid.then_some(name)
}

/// The glue around every route: begin (cookies in), route, commit (Set-Cookie out); a store
/// error answers 500 with an empty body.
async fn handle(
    bridge: SessionBridge,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let internal_error = || respond(StatusCode::INTERNAL_SERVER_ERROR, "", Bytes::new());
    let ctx = bridge.begin_request(req.headers());
    let Ok(mut res) = route(ctx.session(), &req).await else {
        return Ok(internal_error());
    };
    match ctx.commit(res.headers_mut()).await {
        Ok(()) => Ok(res),
        Err(_) => Ok(internal_error()),
    }
}

// -- socket side -------------------------------------------------------------------------

/// What a socket event does to its session.
#[derive(Clone, Copy)]
enum Op {
    Get,
    Inc { delay: Duration },
    Reset,
}

/// Runs `op` on the socket's session under its lock (S3); `missing-session` without one (S4).
async fn socket_op(session: &SocketSession, op: Op) -> Value {
    session
        .with_session_or_else(
            async |ctx| {
                match op {
                    Op::Get => {}
                    Op::Inc { delay } => {
                        let n = ctx.get::<u64>("wsCount").ok().flatten().unwrap_or(0) + 1;
                        ctx.insert_value("wsCount", n.into());
                        if !delay.is_zero() {
                            tokio::time::sleep(delay).await;
                        }
                    }
                    Op::Reset => {
                        ctx.destroy();
                        return json!({ "ok": true });
                    }
                }
                session_payload(None, Some(ctx.session_id().as_str().into()), ctx.data())
            },
            missing_session,
        )
        .await
        .unwrap_or_else(|err| json!({ "ok": false, "error": err.to_string() }))
}

/// Registers the event handlers, as a connect middleware that runs after [`bind_session`].
///
/// Not in the connect handler: socketioxide 0.18 sends the CONNECT packet and only then
/// spawns the connect handler, so an event the client emits the moment it sees `connect`
/// can arrive before handlers registered there exist, and is dropped without an ack.
/// Middleware runs before CONNECT is sent.
async fn register_events(s: SocketRef) -> Result<(), Infallible> {
    s.on(
        "session:get",
        async |session: SocketSession, ack: AckSender| {
            ack.send(&socket_op(&session, Op::Get).await).ok();
        },
    );
    s.on(
        "session:inc",
        async |session: SocketSession, ack: AckSender| {
            let op = Op::Inc {
                delay: Duration::ZERO,
            };
            ack.send(&socket_op(&session, op).await).ok();
        },
    );
    s.on(
        "session:reset",
        async |session: SocketSession, ack: AckSender| {
            ack.send(&socket_op(&session, Op::Reset).await).ok();
        },
    );
    s.on(
        "session:inc-slow",
        async |session: SocketSession, TryData(delay): TryData<u64>, ack: AckSender| {
            let reply = match delay {
                Ok(ms) => {
                    let delay = Duration::from_millis(ms.min(MAX_SLOW_DELAY_MS));
                    socket_op(&session, Op::Inc { delay }).await
                }
                Err(err) => json!({ "ok": false, "error": err.to_string() }),
            };
            ack.send(&reply).ok();
        },
    );
    Ok(())
}

// -- server ------------------------------------------------------------------------------

/// The in-process server; dropping it stops accepting and closes every connection.
struct Server {
    port: u16,
    task: JoinHandle<()>,
    notices: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        // The accept loop owns the JoinSet of connections: aborting it aborts them all.
        self.task.abort();
        self.notices.abort();
    }
}

async fn start_server() -> Server {
    let bridge = SessionBridge::builder()
        .key("app.sid")
        .keys([KEY])
        .secure(false)
        .same_site(Some(SameSite::Lax))
        .max_age(Duration::from_secs(24 * 3600))
        .build()
        .expect("valid bridge options");
    let http = service_fn({
        let bridge = bridge.clone();
        move |req| handle(bridge.clone(), req)
    });
    let (svc, io) = SocketIo::builder()
        .with_state(bridge.clone())
        .build_with_inner_svc(http);
    // S6: `session:ended` to the sockets of a browser whose session ends.
    let notices = tokio::spawn(forward_session_ends(
        io.clone(),
        bridge,
        OnSessionEnd::Notify,
    ));
    // `bind_session` runs first (the last `with`), then `register_events`; both before CONNECT.
    io.ns("/", (async || {}).with(register_events).with(bind_session));

    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let port = listener.local_addr().expect("local addr").port();
    let task = tokio::spawn(async move {
        let mut connections = JoinSet::new();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            while connections.try_join_next().is_some() {}
            let svc = svc.clone();
            connections.spawn(async move {
                // Errors here are client-side disconnects; the scenario reports real failures.
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .with_upgrades()
                    .await;
            });
        }
    });
    Server {
        port,
        task,
        notices,
    }
}

// -- node --------------------------------------------------------------------------------

fn e2e_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("e2e")
}

/// Runs `cmd` to completion within `limit`; panics with a clear message when the program is
/// missing or too slow.
async fn run(cmd: &mut Command, what: &str, limit: Duration) -> Output {
    let child = cmd
        .kill_on_drop(true)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| {
            panic!(
                "cannot run {what}: {err}. This test needs Node.js 20+ and npm on PATH \
                 (it drives the real socket.io-client); install them, e.g. `apt-get install nodejs npm`."
            )
        });
    match tokio::time::timeout(limit, child.wait_with_output()).await {
        Ok(output) => output.unwrap_or_else(|err| panic!("waiting for {what}: {err}")),
        Err(_) => panic!("{what} did not finish within {limit:?} (killed)"),
    }
}

fn print_output(what: &str, output: &Output) {
    println!("---- {what}: {}", output.status);
    print!("{}", String::from_utf8_lossy(&output.stdout));
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !stderr.trim().is_empty() {
        println!("---- {what} stderr");
        print!("{stderr}");
    }
}

/// `npm ci` when `tests/e2e/node_modules` is missing (a fresh checkout).
async fn ensure_node_modules(dir: &Path) {
    if dir.join("node_modules").join("socket.io-client").is_dir() {
        return;
    }
    let what = "npm ci --prefix tests/e2e";
    let output = run(
        Command::new("npm")
            .args(["ci", "--prefix"])
            .arg(dir)
            .args(["--no-audit", "--no-fund"]),
        what,
        NPM_CI_TIMEOUT,
    )
    .await;
    print_output(what, &output);
    assert!(output.status.success(), "{what} failed: {}", output.status);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn quick_start_protocol_with_the_real_socket_io_client() {
    let dir = e2e_dir();
    ensure_node_modules(&dir).await;
    let server = start_server().await;
    let base = format!("http://127.0.0.1:{}", server.port);

    let started = Instant::now();
    let what = "node tests/e2e/quick_start_scenario.mjs";
    let output = run(
        Command::new("node")
            .arg(dir.join("quick_start_scenario.mjs"))
            .arg(&base)
            .current_dir(&dir),
        what,
        SCENARIO_TIMEOUT,
    )
    .await;
    print_output(what, &output);
    println!("---- {what} took {:?}", started.elapsed());
    drop(server);
    assert!(
        output.status.success(),
        "{what} failed ({}); its output is printed above",
        output.status
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    require_pass_line(what, &stdout, SCENARIO_MIN_CHECKS);
}

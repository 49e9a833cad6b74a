//! Quick start: the HTTP flow without a web framework.
//!
//! Two requests go through the bridge the way a browser sends them: the first with no cookies,
//! the second with the cookies the first response set. The handler is the original README's
//! `/api/session` route: it sets `createdAt` once, counts `httpCount`, and answers
//! `{ ok, clientId, sessionId, session }`. Every bridge event is printed as one JSON line.
//!
//! ```text
//! cargo run --example quick_start
//! ```
//!
//! A framework glue does exactly this around each handler: `begin_request(&headers)` before,
//! `commit(&mut response_headers)` after.

#[path = "shared/event_line.rs"]
mod event_line;

use std::collections::BTreeMap;
use std::time::Duration;

use futures::executor::block_on;
use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderValue};
use serde_json::{Value, json};
use session_bridge::{
    EventStream, SameSite, Session, SessionBridge,
    clock::{Clock, SystemClock},
};

/// The `/api/session` handler of the original README.
async fn api_session(session: &Session) -> session_bridge::Result<Value> {
    if session.get_value("createdAt").await?.is_none() {
        session.insert("createdAt", SystemClock.now_ms()).await?;
    }
    // Like the original's `Number.isFinite` check: anything but a count restarts at 0.
    let count = session
        .get_value("httpCount")
        .await?
        .and_then(|v| v.as_u64())
        .unwrap_or(0);
    session.insert("httpCount", count + 1).await?;
    Ok(json!({
        "ok": true,
        "clientId": session.client_id(),
        "sessionId": session.session_id().await?,
        "session": session.data().await?,
    }))
}

/// One request: cookies from the jar in, handler, commit, `Set-Cookie` back into the jar.
async fn request(
    bridge: &SessionBridge,
    jar: &mut BTreeMap<String, String>,
) -> Result<Value, Box<dyn std::error::Error>> {
    let mut headers = HeaderMap::new();
    if !jar.is_empty() {
        let line = jar
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ");
        println!("  Cookie: {line}");
        headers.insert(COOKIE, HeaderValue::from_str(&line)?);
    } else {
        println!("  (no cookies)");
    }

    let ctx = bridge.begin_request(&headers);
    let body = api_session(ctx.session()).await?;
    let mut response = HeaderMap::new();
    ctx.commit(&mut response).await?;

    for value in response.get_all(SET_COOKIE) {
        let text = value.to_str()?;
        println!("  Set-Cookie: {text}");
        let c = cookie::Cookie::parse(text)?;
        if c.max_age().is_some_and(|age| age.is_zero()) {
            jar.remove(c.name());
        } else {
            jar.insert(c.name().to_owned(), c.value().to_owned());
        }
    }
    println!("  body: {body}");
    Ok(body)
}

/// Prints the events published so far, one JSON line each, with the original's names.
fn print_events(events: &mut EventStream) {
    while let Some(event) = events.try_next() {
        if let Some(line) = event_line::event_line(SystemClock.now_ms(), &event) {
            println!("  event: {line}");
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Signing keys come from the environment (`SESSION_KEYS`, comma-separated, newest first,
    // 32+ bytes each), never from source code; without them this one-process demo uses
    // ephemeral keys (O1).
    let keys: Vec<String> = std::env::var("SESSION_KEYS")
        .map(|v| v.split(',').map(str::to_owned).collect())
        .unwrap_or_default();
    if keys.is_empty() {
        eprintln!("SESSION_KEYS is not set: using ephemeral keys (fine for this demo)");
    }
    let bridge = SessionBridge::builder()
        .key("app.sid")
        .ephemeral_keys(keys.is_empty())
        .keys(keys)
        .max_age(Duration::from_secs(24 * 3600))
        .secure(false) // local plain http; keep the default `true` in production
        .same_site(Some(SameSite::Lax))
        .build()?;
    let mut events = bridge.events();
    let mut jar = BTreeMap::new();

    block_on(async {
        println!("request 1: a browser's first visit");
        let first = request(&bridge, &mut jar).await?;
        print_events(&mut events);

        println!("request 2: the same browser, sending its cookies back");
        let second = request(&bridge, &mut jar).await?;
        print_events(&mut events);

        assert_eq!(first["session"]["httpCount"], 1);
        assert_eq!(second["session"]["httpCount"], 2);
        assert_eq!(second["sessionId"], first["sessionId"]);
        assert_eq!(second["clientId"], first["clientId"]);
        assert_eq!(
            second["session"]["createdAt"],
            first["session"]["createdAt"]
        );
        println!(
            "ok: same session {}, httpCount = {}",
            second["sessionId"], second["session"]["httpCount"]
        );
        Ok(())
    })
}

//! The poem, salvo and axum quick starts, run as the real example binaries and tested from
//! outside: the same black-box scenario against each, so the three glues are proven equal.
//!
//! For each of `quick_start_poem`, `quick_start_salvo` and `quick_start_axum` (built by `cargo
//! test --all-features`, which builds the examples whose required features are on), the test
//! 1. starts the binary with `PORT=0 EVENT_LOG=1` (poem and axum with `SESSION_KEYS` set, salvo
//!    without it: ephemeral keys) and reads the address it really bound from its first stdout
//!    line;
//! 2. runs `tests/e2e/quick_start_scenario.mjs` (the real Node `socket.io-client`: websocket,
//!    polling, polling then upgrade; the checks of `tests/socketio_e2e.rs`, login and logout
//!    reaching the sockets as `session:ended` included: H8, S1, S6; the victim's client cookie
//!    alone never moving the victim's socket: H2, S2; two tied pairs trusting neither: C4)
//!    against it;
//! 3. runs `tests/e2e/browser.mjs`: Debian's headless Chromium clicks through the demo page
//!    (HTTP and socket.io panels sharing one session, reset, a new session, log in, the
//!    socket's automatic reconnect after `session:ended`, log out, a bad name) and leaves a
//!    screenshot in `tests/output/browser-<poem|salvo|axum>.png`;
//! 4. checks the `EVENT_LOG` lines: one JSON object per line with the seed's field names in the
//!    documented order (`t`, `event`, ...), at least one `sessionSet` with `isNew` and `isInit`,
//!    at least one `sessionDestroy`, and no session destroyed before it was set or destroyed
//!    twice (H4, H6, H7);
//! 5. checks stderr: the ephemeral-keys warning exactly when `SESSION_KEYS` is unset (O1).
//!
//! `quick_starts_refuse_bad_session_keys`: a key shorter than 32 bytes in `SESSION_KEYS` stops
//! every binary with exit status 2 and a message, no panic, the key never printed (O1, L1).
//!
//! The binary is killed at the end, also when a check fails. Finding, starting and stopping
//! the binaries and running Node are in `tests/common/examples.rs` (shared with
//! `tests/multi_node_e2e.rs`).
//!
//! Needs Node 20+ and npm (the test runs `npm ci` in `tests/e2e` and `examples` when their
//! `node_modules` are missing) and `/usr/bin/chromium`; it fails, never skips, without them:
//! `bash .ci/setup` installs them. The examples run one after the other.
#![cfg(all(
    feature = "poem",
    feature = "salvo",
    feature = "axum",
    feature = "socketioxide"
))]

mod common;

use common::examples::{
    Example, LISTEN_TIMEOUT, POLL, ensure_node_modules, example_binary, print_output, root, run,
    serial,
};
use common::pass_line::{closing_check_count, require_pass_line};
use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

const CHROMIUM: &str = "/usr/bin/chromium";
/// The scenario bounds itself to 50 s, the browser script to 60 s; these only guard against a
/// stuck node.
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(55);
const BROWSER_TIMEOUT: Duration = Duration::from_secs(65);
/// Each script ends with `PASS <n> checks`; `n` below these means part of it did not run (a
/// scenario, a transport or a step dropped), whatever its exit code. The counts of the full
/// runs today.
const SCENARIO_MIN_CHECKS: u64 = 462;
const BROWSER_MIN_CHECKS: u64 = 67;
/// For the event log to show the events that the scenarios caused.
const EVENTS_TIMEOUT: Duration = Duration::from_secs(5);

fn require_tools() {
    assert!(
        Path::new(CHROMIUM).is_file(),
        "{CHROMIUM} is missing: the browser test drives Debian's chromium; run `bash .ci/setup` \
         (as root: it installs chromium and the npm packages the tests need)"
    );
    ensure_node_modules(
        "tests/e2e",
        &[
            "node_modules/socket.io-client/package.json",
            "node_modules/playwright-core/package.json",
        ],
    );
    ensure_node_modules(
        "examples",
        &["node_modules/socket.io-client/dist/socket.io.min.js"],
    );
}

// -- the event log -------------------------------------------------------------------------

/// The JSON objects of the event log (every stdout line after the first); panics on a line
/// that is not one.
fn parse_events(name: &str, lines: &[String]) -> Vec<serde_json::Map<String, Value>> {
    lines
        .iter()
        .skip(1)
        .map(|line| match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(event)) => {
                check_field_order(name, line, &event);
                event
            }
            _ => panic!("{name}: an EVENT_LOG line is not a one-line JSON object: {line:?}"),
        })
        .collect()
}

/// The fields of an event, in their documented order; none for an unknown `event`.
fn documented_fields(event: &serde_json::Map<String, Value>) -> Option<&'static [&'static str]> {
    match event.get("event").and_then(Value::as_str)? {
        "sessionSet" => Some(&["t", "event", "clientId", "sessionId", "isNew", "isInit"]),
        "sessionDestroy" => Some(&["t", "event", "clientId", "sessionId"]),
        _ => None,
    }
}

/// The line writes its fields in the documented order (`t`, `event`, ...). Ids and flags
/// never contain a quote, so a key's first occurrence in the line is the key itself.
fn check_field_order(name: &str, line: &str, event: &serde_json::Map<String, Value>) {
    let Some(fields) = documented_fields(event) else {
        return; // reported by check_events
    };
    let positions: Vec<Option<usize>> = fields
        .iter()
        .map(|field| line.find(&format!("\"{field}\":")))
        .collect();
    assert!(
        line.starts_with("{\"t\":") && positions.windows(2).all(|w| w[0] < w[1]),
        "{name}: an EVENT_LOG line does not keep the documented field order {fields:?}: {line}"
    );
}

fn is_new_session(event: &serde_json::Map<String, Value>) -> bool {
    event["event"] == "sessionSet" && event["isNew"] == true && event["isInit"] == true
}

/// Each event has `t` and the seed's field names with the right types; the set/destroy
/// history is consistent.
fn check_events(name: &str, events: &[serde_json::Map<String, Value>]) {
    let mut set = HashSet::new();
    let mut destroyed = HashSet::new();
    for event in events {
        let show = Value::Object(event.clone());
        let has = |field: &str, ok: fn(&Value) -> bool| {
            assert!(
                event.get(field).is_some_and(ok),
                "{name}: event without a valid `{field}`: {show}"
            );
        };
        has("t", |v| v.as_u64().is_some_and(|t| t > 0));
        let Some(fields) = documented_fields(event) else {
            panic!("{name}: unexpected `event` in {show}");
        };
        if event["event"] == "sessionSet" {
            has("isNew", Value::is_boolean);
            has("isInit", Value::is_boolean);
        }
        has("sessionId", |v| v.as_str().is_some_and(|s| !s.is_empty()));
        has("clientId", |v| {
            v.is_null() || v.as_str().is_some_and(|s| !s.is_empty())
        });
        let mut keys: Vec<&str> = event.keys().map(String::as_str).collect();
        let mut expected = fields.to_vec();
        keys.sort_unstable();
        expected.sort_unstable();
        assert_eq!(keys, expected, "{name}: the fields of {show}");

        let sid = event["sessionId"].as_str().unwrap_or_default().to_owned();
        if event["event"] == "sessionSet" {
            assert!(
                !destroyed.contains(&sid),
                "{name}: H7: a destroyed session is set again: {show}"
            );
            set.insert(sid);
        } else {
            assert!(
                set.contains(&sid),
                "{name}: H7: a session destroyed before any sessionSet announced it: {show}"
            );
            assert!(
                destroyed.insert(sid),
                "{name}: H7: a session announced destroyed twice: {show}"
            );
        }
    }
}

/// Polls the example's event log until it shows a new session and a destroy, bounded.
fn wait_for_events(example: &Example) -> Vec<serde_json::Map<String, Value>> {
    let deadline = Instant::now() + EVENTS_TIMEOUT;
    loop {
        let events = parse_events(example.name, &example.stdout_lines());
        let new = events.iter().filter(|e| is_new_session(e)).count();
        let destroys = events
            .iter()
            .filter(|e| e["event"] == "sessionDestroy")
            .count();
        if new > 0 && destroys > 0 {
            return events;
        }
        assert!(
            Instant::now() < deadline,
            "{}: after {EVENTS_TIMEOUT:?} the EVENT_LOG shows {new} sessionSet with isNew and \
             isInit and {destroys} sessionDestroy, expected at least one of each ({} lines)",
            example.name,
            events.len()
        );
        thread::sleep(POLL);
    }
}

// -- the test --------------------------------------------------------------------------------

/// Two valid keys, newest first (O1): what `SESSION_KEYS` holds in production.
const VALID_KEYS: &str =
    "quick start e2e key 2 (newest) 32+ bytes long,quick start e2e key 1 (older) 32+ bytes long";
/// The stderr line of a quick start started without `SESSION_KEYS` (O1).
const EPHEMERAL_WARNING: &str =
    "SESSION_KEYS is not set: using ephemeral keys; every restart logs everyone out";

fn quick_start_end_to_end(name: &'static str, short: &str, keys: Option<&str>) {
    let _serial = serial();
    require_tools();
    let started = Instant::now();
    let (mut example, url) = Example::start(name, keys);
    println!("---- {name} listening on {url}");
    let full_stderr = Arc::clone(&example.process.stderr);
    let e2e = root().join("tests").join("e2e");

    let what = format!("node tests/e2e/quick_start_scenario.mjs ({name})");
    let scenario_started = Instant::now();
    let output = run(
        Command::new("node")
            .arg(e2e.join("quick_start_scenario.mjs"))
            .arg(&url)
            .current_dir(&e2e),
        &what,
        SCENARIO_TIMEOUT,
    );
    print_output(&what, &output);
    println!("---- {what} took {:?}", scenario_started.elapsed());
    assert!(
        output.status.success(),
        "{what} failed ({}); its output is printed above",
        output.status
    );
    require_pass_line(&what, &output.stdout, SCENARIO_MIN_CHECKS);
    example.assert_running("the scenario");

    let screenshot = root()
        .join("tests")
        .join("output")
        .join(format!("browser-{short}.png"));
    if screenshot.exists() {
        std::fs::remove_file(&screenshot)
            .unwrap_or_else(|err| panic!("cannot remove the old {}: {err}", screenshot.display()));
    }
    let what = format!("node tests/e2e/browser.mjs ({name})");
    let browser_started = Instant::now();
    let output = run(
        Command::new("node")
            .arg(e2e.join("browser.mjs"))
            .arg(&url)
            .arg(&screenshot)
            .current_dir(&e2e),
        &what,
        BROWSER_TIMEOUT,
    );
    print_output(&what, &output);
    println!("---- {what} took {:?}", browser_started.elapsed());
    assert!(
        output.status.success(),
        "{what} failed ({}); its output is printed above, the page is in {}",
        output.status,
        screenshot.display()
    );
    require_pass_line(&what, &output.stdout, BROWSER_MIN_CHECKS);
    let size = std::fs::metadata(&screenshot).map(|m| m.len()).unwrap_or(0);
    assert!(
        size > 0,
        "{what} passed but left no screenshot at {}",
        screenshot.display()
    );
    println!("---- screenshot {} ({size} bytes)", screenshot.display());
    example.assert_running("the browser test");

    let events = wait_for_events(&example);
    check_events(name, &events);
    println!(
        "---- {name}: {} EVENT_LOG lines, all valid; {} new sessions, {} destroyed",
        events.len(),
        events.iter().filter(|e| is_new_session(e)).count(),
        events
            .iter()
            .filter(|e| e["event"] == "sessionDestroy")
            .count()
    );
    let stderr = example.stderr();
    if !stderr.trim().is_empty() {
        println!("---- {name} stderr\n{stderr}");
    }
    drop(example);
    // O1: the warning about ephemeral keys exactly when SESSION_KEYS is unset. Read after the
    // process was killed and its stderr reader joined: the whole stderr.
    let stderr = full_stderr
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    assert_eq!(
        stderr.contains(EPHEMERAL_WARNING),
        keys.is_none(),
        "{name}: O1: the ephemeral-keys warning on stderr (SESSION_KEYS {}); stderr:\n{stderr}",
        if keys.is_some() { "set" } else { "unset" },
    );
    println!("---- {name}: everything took {:?}", started.elapsed());
}

/// poem runs with `SESSION_KEYS` set, salvo without (ephemeral keys): both ways of O1 serve
/// the whole scenario.
#[test]
fn quick_start_poem_end_to_end() {
    quick_start_end_to_end("quick_start_poem", "poem", Some(VALID_KEYS));
}

#[test]
fn quick_start_salvo_end_to_end() {
    quick_start_end_to_end("quick_start_salvo", "salvo", None);
}

/// axum: `SessionLayer` on the routes, socketioxide's own tower layer outside it.
#[test]
fn quick_start_axum_end_to_end() {
    quick_start_end_to_end("quick_start_axum", "axum", Some(VALID_KEYS));
}

/// O1, O2: a `SESSION_KEYS` with a key shorter than 32 bytes (or an empty one) stops the
/// quick start at once with status 2 and a message naming the variable and the rule; no
/// panic, no listening, and the key itself is never printed (L1).
#[test]
fn quick_starts_refuse_bad_session_keys() {
    const SHORT: &str = "short-key-sentinel-31-bytes-xyz";
    assert_eq!(SHORT.len(), 31);
    let _serial = serial();
    for name in ["quick_start_poem", "quick_start_salvo", "quick_start_axum"] {
        let bin = example_binary(name);
        let cases = [
            (
                format!(
                    "{}{SHORT}",
                    &VALID_KEYS[..VALID_KEYS.find(',').unwrap() + 1]
                ),
                "key 2 of 2 is 31 bytes",
            ),
            (SHORT.to_owned(), "key 1 of 1 is 31 bytes"),
            (String::new(), "key 1 of 1 is 0 bytes"),
        ];
        for (keys, why) in cases {
            let what = format!("{name} with a bad SESSION_KEYS ({why})");
            let out = run(
                Command::new(&bin)
                    .current_dir(root())
                    .env("PORT", "0")
                    .env("SESSION_KEYS", &keys),
                &what,
                LISTEN_TIMEOUT,
            );
            assert_eq!(
                out.status.code(),
                Some(2),
                "{what}: exit status; stderr:\n{}",
                out.stderr
            );
            assert!(
                out.stderr.contains("SESSION_KEYS")
                    && out.stderr.contains(why)
                    && out.stderr.contains("at least 32 bytes"),
                "{what}: stderr should name SESSION_KEYS, the key and the rule:\n{}",
                out.stderr
            );
            assert!(
                !out.stderr.contains("panicked"),
                "{what}: a panic:\n{}",
                out.stderr
            );
            assert!(
                !out.stderr.contains(SHORT),
                "{what}: L1: the key is printed:\n{}",
                out.stderr
            );
            assert!(
                !out.stdout.contains("listening on"),
                "{what}: it listened:\n{}",
                out.stdout
            );
            println!("---- {what}: exit 2, {:?}", out.stderr.trim());
        }
    }
}

/// One HTTP/1.1 GET over a plain TCP connection: (status, Set-Cookie pairs, JSON body).
fn http_get(base: &str, path: &str, cookie: &str) -> (u16, Vec<String>, Value) {
    use std::io::{Read as _, Write as _};
    let addr = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).expect("connect to the quick start");
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).expect("send");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).expect("read the response");
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let cookies = head
        .lines()
        .filter_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("set-cookie")
                .then(|| value.trim().split(';').next().unwrap_or("").to_owned())
        })
        .collect();
    // A chunked body has size lines around the JSON: take the object itself.
    let json = body
        .find('{')
        .and_then(|start| body.rfind('}').map(|end| &body[start..=end]))
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or(Value::Null);
    (status, cookies, json)
}

/// Issue "stores": a session created before `kill -9` of the quick start is there after it
/// restarts, with the Redis store (`SESSION_STORE=redis://...`) and the file store
/// (`SESSION_STORE=file:<dir>`). The keys are fixed for the test (`SESSION_KEYS`), as a
/// real deployment's are.
#[test]
fn st3_a_session_survives_kill_9_of_the_quick_start_with_a_persistent_store() {
    let _serial = serial();
    let keys = "restart test key -- at least 32 bytes long";
    let mut stores = vec![
        ("memory", "memory".to_owned()),
        ("redis", "redis://127.0.0.1:6379".to_owned()),
    ];
    let dir = std::env::temp_dir().join(format!("sb-restart-{}", std::process::id()));
    if cfg!(feature = "file") {
        stores.push(("file", format!("file:{}", dir.display())));
    }
    for (kind, store) in &stores {
        let env = [("SESSION_STORE", store.as_str())];
        let (mut first, url) = Example::start_with("quick_start_poem", Some(keys), &env);
        let (status, cookies, body) = http_get(&url, "/api/session", "");
        assert_eq!(status, 200, "{kind}: {body}");
        assert_eq!(body["session"]["httpCount"], 1, "{kind}: {body}");
        let sid = body["sessionId"].clone();
        let jar = cookies.join("; ");
        // kill -9: no shutdown, no flush.
        first.process.child.kill().expect("SIGKILL the quick start");
        first.process.child.wait().ok();
        drop(first);
        let (_second, url) = Example::start_with("quick_start_poem", Some(keys), &env);
        let (status, _, body) = http_get(&url, "/api/read", &jar);
        assert_eq!(status, 200, "{kind}: {body}");
        if *kind == "memory" {
            // The control: in memory, kill -9 loses the session (so the check below can fail).
            assert_eq!(body["sessionId"], Value::Null, "memory: {body}");
            continue;
        }
        assert_eq!(
            body["sessionId"], sid,
            "{kind}: the same session after the restart"
        );
        assert_eq!(body["session"]["httpCount"], 1, "{kind}: {body}");
        // Leave nothing behind: log out (destroys the record).
        let (status, _, _) = http_get(&url, "/api/logout", &jar);
        assert_eq!(status, 200, "{kind}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_closing_line_is_required() {
    assert_eq!(
        closing_check_count("ok a\nPASS 12 checks, 7 scenarios\n"),
        Some(12)
    );
    assert_eq!(closing_check_count("PASS 3 checks in 10 ms\n\n"), Some(3));
    assert_eq!(closing_check_count("PASS 3 checks\nok later\n"), None);
    assert_eq!(closing_check_count("ok a\n"), None);
    assert_eq!(closing_check_count(""), None);
    assert_eq!(closing_check_count("PASS x checks\n"), None);
    assert_eq!(closing_check_count("PASS 3 checkmarks\n"), None);
}

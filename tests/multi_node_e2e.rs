//! Many nodes behind one Redis (M1-M4), tested from outside: two `quick_start_poem` processes
//! on one private Redis, driven by `tests/e2e/two_nodes.mjs` as one browser sees them (one
//! cookie jar shared by its HTTP requests and its socket.io connections, HTTP to one node and
//! the socket to the other).
//!
//! Each test
//! 1. starts its own `redis-server` on 127.0.0.1:6393 (`--save ""`: memory only), flushes it;
//! 2. starts two quick starts (`PORT=0`, the same `SESSION_KEYS`,
//!    `SESSION_STORE=redis://127.0.0.1:6393`, `EVENT_LOG=1`) and reads the address each bound;
//! 3. runs `two_nodes.mjs` against both (its scenarios a-i: a login on A is the session of a
//!    socket on B; B's socket follows A's HTTP writes live; no update lost between HTTP on one
//!    node and sockets on the other, also 2 x 100 concurrent increments split across nodes;
//!    logout and login on A reach B's socket as `session:ended`; a copied session cookie is
//!    ignored on both nodes; a request with only the victim's client cookie that writes the
//!    session on one node gets a new client id and never moves the victim's socket on the
//!    other node into its session (H2, H8, S1, S2); two tied pairs, the attacker's planted
//!    first, trust neither over HTTP on A and a socket on B (C4)) and judges it by its closing
//!    `PASS <n> checks` line;
//! 4. checks that neither node exited or panicked; prints their stderr;
//! 5. kills the nodes (by PID, on drop) and shuts Redis down after them, also on a panic.
//!
//! `m4_two_nodes_survive_a_redis_restart_mid_run` runs `two_nodes.mjs --outage`: part of the
//! scenarios, then a load on both nodes (one browser logged in on A: 3 sockets per node in
//! closed loops of `session:inc`, closed loops of HTTP `/api/session` on A and on B), and while
//! it runs the script prints `WAIT down`: Redis is shut down (`shutdown nosave`) under that
//! load, which goes on for 1 s more (longer while a request sent before the kill is still
//! unanswered, so that each loop also sends one with Redis down). Every answer of the load must
//! come within 3 s and be a success or a clean error (an empty 500; `ok: false` with an error
//! string, never missing-session), all of them a success before the kill and an error once
//! Redis is down; the increments and HTTP writes answered ok must be distinct (none lost or
//! counted twice) and successive states of the one session (none half-written); the sockets
//! stay connected. Then HTTP on both nodes must answer an empty 500 within 2 s and socket
//! events an error outcome, neither node may exit or panic; then (at `WAIT up`) Redis is
//! restarted on the same port, empty, and within 10 s both nodes serve again: a new login on A
//! is seen by a socket on B, 2 x 50 increments split across the nodes are exact, and a logout
//! on A reaches B's socket. Sessions stored before the outage are lost (Redis kept nothing):
//! expected, the test checks recovery, not persistence.
//!
//! `the_two_node_scripts_pass_against_one_node_given_twice` is the control: the same scripts
//! with one quick start as both A and B must pass on the single-node crate of today, so a
//! failure of the two-node tests is the nodes' and not the harness's.
//!
//! `two_nodes.mjs` stops at the first failed check; `KEEP_GOING=1 cargo test ...` (inherited
//! by the script) runs every scenario and reports each failing one.
//!
//! Needs Node 20+ and npm (`npm ci` in `tests/e2e` when its `node_modules` is missing), and
//! `redis-server` / `redis-cli`; it fails, never skips, without them. The tests run one after
//! the other (they share port 6393).
#![cfg(all(feature = "poem", feature = "socketioxide", feature = "redis"))]

mod common;

use std::process::Command;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use common::examples::{
    Example, Finished, Running, ensure_node_modules, print_output, root, run, serial,
};
use common::pass_line::require_pass_line;
use common::redis::PrivateRedis;

const QUICK_START: &str = "quick_start_poem";
const REDIS_PORT: u16 = 6393;
const REDIS_URL: &str = "redis://127.0.0.1:6393";
/// The keys every node signs and verifies with (O1): the same on both, as in a deployment.
const KEYS: &str =
    "two nodes e2e key 2 (newest) 32+ bytes long,two nodes e2e key 1 (older) 32+ bytes long";
/// The script bounds itself to 60 s; this only guards against a stuck node.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(75);
/// `two_nodes.mjs` ends with `PASS <n> checks`; `n` below these means part of it did not run
/// (a scenario or a step dropped), whatever its exit code. The counts of the full runs.
const MIN_CHECKS: u64 = 111;
const OUTAGE_MIN_CHECKS: u64 = 84;
/// How many stderr lines of a node to print at the end (an outage makes one per failure).
const STDERR_LINES: usize = 30;

/// A private Redis and quick starts on it. The fields drop in order: the nodes are killed
/// first, then Redis is shut down.
struct Nodes {
    nodes: Vec<Example>,
    urls: Vec<String>,
    redis: PrivateRedis,
}

impl Nodes {
    /// `count` quick starts on a fresh private Redis.
    fn start(count: usize) -> Self {
        assert!(
            !PrivateRedis::answers(REDIS_PORT),
            "a Redis already answers on port {REDIS_PORT} (left by an earlier run?); stop it with \
             `redis-cli -p {REDIS_PORT} shutdown nosave`"
        );
        let redis = PrivateRedis::start(REDIS_PORT);
        let flushed = redis.cli(&["flushall"]);
        assert!(
            flushed.status.success() && flushed.stdout.starts_with(b"OK"),
            "redis-cli -p {REDIS_PORT} flushall: {flushed:?}"
        );
        let env = [("SESSION_STORE", REDIS_URL)];
        let (mut nodes, mut urls) = (Vec::new(), Vec::new());
        for name in ["A", "B"].into_iter().take(count) {
            let (node, url) = Example::start_with(QUICK_START, Some(KEYS), &env);
            println!(
                "---- node {name}: {QUICK_START} (pid {}) listening on {url}, sessions in {REDIS_URL}",
                node.process.child.id()
            );
            nodes.push(node);
            urls.push(url);
        }
        Self { nodes, urls, redis }
    }

    /// The bases the script gets as A and B (one node given twice when there is one).
    fn pair(&self) -> [String; 2] {
        [self.urls[0].clone(), self.urls[self.urls.len() - 1].clone()]
    }

    /// Every node is still running and printed no panic.
    fn check_alive(&mut self, during: &str) {
        for (name, node) in ["A", "B"].into_iter().zip(&mut self.nodes) {
            node.assert_running(during);
            let stderr = node.stderr();
            assert!(
                !stderr.contains("panicked"),
                "node {name} panicked during {during}; stderr:\n{stderr}"
            );
        }
    }

    /// Each node's event-log counts and (the start of) its stderr.
    fn report(&self) {
        for (name, node) in ["A", "B"].into_iter().zip(&self.nodes) {
            let events = node.stdout_lines();
            let count = |kind: &str| {
                let needle = format!("\"event\":\"{kind}\"");
                events.iter().filter(|l| l.contains(&needle)).count()
            };
            println!(
                "---- node {name}: {} sessionSet, {} sessionDestroy in its EVENT_LOG",
                count("sessionSet"),
                count("sessionDestroy")
            );
            let stderr = node.stderr();
            let lines: Vec<&str> = stderr.lines().collect();
            if lines.is_empty() {
                continue;
            }
            println!("---- node {name} stderr ({} lines)", lines.len());
            for line in lines.iter().take(STDERR_LINES) {
                println!("{line}");
            }
            if lines.len() > STDERR_LINES {
                println!("... ({} more lines)", lines.len() - STDERR_LINES);
            }
        }
    }
}

fn e2e_dir() -> std::path::PathBuf {
    root().join("tests").join("e2e")
}

fn node_script(args: &[&str]) -> Command {
    let mut cmd = Command::new("node");
    cmd.arg(e2e_dir().join("two_nodes.mjs"))
        .args(args)
        .current_dir(e2e_dir());
    cmd
}

/// The script's `FAIL` lines, for the panic message (the whole output is printed above): the
/// first failure, or every failing scenario's with `KEEP_GOING=1`.
fn failures(stdout: &str) -> String {
    let lines: Vec<&str> = stdout.lines().filter(|l| l.starts_with("FAIL")).collect();
    if lines.is_empty() {
        "(no FAIL line)".to_owned()
    } else {
        lines.join("\n")
    }
}

fn require_node() {
    ensure_node_modules("tests/e2e", &["node_modules/socket.io-client/package.json"]);
}

/// `two_nodes.mjs A B`: the scenarios a-i.
fn scenarios(nodes: &mut Nodes, label: &str) {
    let [a, b] = nodes.pair();
    let what = format!("node tests/e2e/two_nodes.mjs ({label})");
    let started = Instant::now();
    let output = run(&mut node_script(&[&a, &b]), &what, SCRIPT_TIMEOUT);
    print_output(&what, &output);
    println!("---- {what} took {:?}", started.elapsed());
    judge(nodes, &what, &output, MIN_CHECKS);
}

/// After a run of `what`: the nodes' report, both alive and without a panic, the script
/// exited 0 and closed with `PASS <n> checks`, `n` at least `min`.
fn judge(nodes: &mut Nodes, what: &str, output: &Finished, min: u64) {
    nodes.report();
    nodes.check_alive(what);
    assert!(
        output.status.success(),
        "{what} failed ({}); its output is printed above:\n{}",
        output.status,
        failures(&output.stdout)
    );
    require_pass_line(what, &output.stdout, min);
}

/// `two_nodes.mjs A B --outage`: the script prints `WAIT down` when it wants Redis stopped (its
/// load still running: Redis dies under it) and `WAIT up` when it wants it back, and waits for
/// that word on its stdin.
fn outage(nodes: &mut Nodes, label: &str) {
    let [a, b] = nodes.pair();
    let what = format!("node tests/e2e/two_nodes.mjs --outage ({label})");
    let started = Instant::now();
    let mut script = Running::spawn(&mut node_script(&[&a, &b, "--outage"]), &what, true)
        .unwrap_or_else(|err| panic!("cannot run {what}: {err}; this test needs Node.js 20+"));
    let deadline = started + SCRIPT_TIMEOUT;
    let (mut down_at, mut outage) = (None, None);
    println!("---- {what}");
    loop {
        let line = match script.next_line(deadline) {
            Ok(line) => line,
            Err(RecvTimeoutError::Disconnected) => break, // the script closed its stdout
            Err(RecvTimeoutError::Timeout) => {
                panic!("{what} did not finish within {SCRIPT_TIMEOUT:?} (killed)")
            }
        };
        println!("{line}");
        match line.as_str() {
            "WAIT down" => {
                nodes.check_alive("the run before the outage");
                nodes.redis.shutdown();
                assert!(
                    !nodes.redis.pings(),
                    "Redis on port {REDIS_PORT} still answers after `shutdown nosave`"
                );
                println!("---- Redis on port {REDIS_PORT} is down (shutdown nosave)");
                down_at = Some(Instant::now());
                script.say("down");
            }
            "WAIT up" => {
                nodes.check_alive("the Redis outage");
                nodes.redis.restart();
                let lasted = down_at.map(|t| t.elapsed()).unwrap_or_default();
                println!(
                    "---- Redis on port {REDIS_PORT} is back (empty) after an outage of {lasted:?}; both nodes ran through it"
                );
                outage = Some(lasted);
                script.say("up");
            }
            _ => {}
        }
    }
    let output = script.finish(Duration::from_secs(5));
    println!("---- {what}: {} in {:?}", output.status, started.elapsed());
    if !output.stderr.trim().is_empty() {
        println!("---- {what} stderr\n{}", output.stderr);
    }
    judge(nodes, &what, &output, OUTAGE_MIN_CHECKS);
    assert!(
        outage.is_some(),
        "{what} passed without asking for the outage (no `WAIT down` and `WAIT up`)"
    );
}

/// `body` on `count` fresh nodes on a fresh Redis; all of it shut down after, also on a panic.
fn on_nodes(count: usize, body: impl FnOnce(&mut Nodes)) {
    let _serial = serial();
    require_node();
    let started = Instant::now();
    let mut nodes = Nodes::start(count);
    body(&mut nodes);
    drop(nodes);
    println!("---- everything took {:?}", started.elapsed());
}

/// M1 (the client->session mapping in Redis: a socket on B finds the session A made, and
/// follows it), M2 (per-session exclusion across nodes: no update lost between HTTP on one
/// node and sockets on the other), M3 (cross-node notices: `session:changed` and
/// `session:ended` reach B's sockets for A's writes, logout and login); H2/S1 on both nodes;
/// H2/H8/S2 (a client cookie alone never moves a held client) and C4 across the nodes.
#[test]
fn m1_m2_m3_two_quick_starts_on_one_redis_share_sessions_live() {
    on_nodes(2, |nodes| scenarios(nodes, "two quick starts on one Redis"));
}

/// M4: Redis shut down under load and restarted in the middle of a two-node run: successes or
/// clean, bounded errors while it dies (no acked write lost or counted twice, none
/// half-written), clean, fast errors during the outage (an empty 500, `ok: false`), no node
/// exits or panics, and both serve again by themselves, across nodes, once Redis is back.
#[test]
fn m4_two_nodes_survive_a_redis_restart_mid_run() {
    on_nodes(2, |nodes| outage(nodes, "two quick starts on one Redis"));
}

/// The control: one quick start given as both A and B serves both scripts today, so their
/// checks hold for one node and a two-node failure is the nodes' own.
#[test]
fn the_two_node_scripts_pass_against_one_node_given_twice() {
    on_nodes(1, |nodes| {
        scenarios(nodes, "one quick start as A and B");
        outage(nodes, "one quick start as A and B");
    });
}

//! A private `redis-server` of one test, on its own port, kept in memory only (`--save ""`,
//! no AOF): started by [`PrivateRedis::start`], shut down (`shutdown nosave`) when dropped,
//! also when the test panics. Needs `redis-server` and `redis-cli` on PATH.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// How long a start or a shutdown may take before the test fails (start) or gives up (stop).
const SETTLE: Duration = Duration::from_secs(5);

/// A `redis-server` of this test; shut down when dropped (also when the test fails).
pub struct PrivateRedis {
    pub port: u16,
}

impl PrivateRedis {
    /// Starts `redis-server` on 127.0.0.1:`port` and waits until it answers PING.
    pub fn start(port: u16) -> Self {
        let server = Self { port };
        server.restart();
        server
    }

    /// Starts it again on the same port (after [`shutdown`](Self::shutdown)); it comes back
    /// empty.
    pub fn restart(&self) {
        let port = self.port;
        let status = Command::new("redis-server")
            .args(["--port", &port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--daemonize", "yes"])
            .status()
            .unwrap_or_else(|e| {
                panic!("cannot run redis-server (apt-get install redis-server): {e}")
            });
        assert!(
            status.success(),
            "redis-server --port {port} failed: {status}"
        );
        let start = Instant::now();
        while !self.pings() {
            assert!(
                start.elapsed() < SETTLE,
                "redis-server on port {port} does not answer PING after {SETTLE:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether some Redis answers PING on `port` (to refuse a port that is already taken).
    pub fn answers(port: u16) -> bool {
        Command::new("redis-cli")
            .args(["-p", &port.to_string(), "ping"])
            .output()
            .is_ok_and(|o| o.status.success() && o.stdout.starts_with(b"PONG"))
    }

    pub fn pings(&self) -> bool {
        Self::answers(self.port)
    }

    /// `redis-cli -p <port> <args>`.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run redis-cli (apt-get install redis-server): {e}"))
    }

    /// `shutdown nosave`, then waits (bounded) until it no longer answers.
    pub fn shutdown(&self) {
        let _ = Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "shutdown", "nosave"])
            .output();
        let start = Instant::now();
        while self.pings() && start.elapsed() < SETTLE {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.shutdown();
    }
}

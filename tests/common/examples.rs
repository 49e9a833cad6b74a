//! The quick-start example binaries run as real processes, and the Node scripts that test
//! them from outside: what `tests/examples_e2e.rs` and `tests/multi_node_e2e.rs` share.
//!
//! - [`example_binary`] finds `target/<profile>/examples/<name>` (built by `cargo test
//!   --all-features`) and refuses a stale one;
//! - [`Example`] starts one with `PORT=0 EVENT_LOG=1`, reads the address it bound from its
//!   first stdout line, keeps its output, and kills it when dropped (also on a panic);
//! - [`Running`] is any program running with its output collected (by lines, for a driver
//!   that waits for a line and answers on stdin), killed when dropped; [`run`] runs one
//!   (`node`, `npm`) to completion within a time bound;
//! - [`ensure_node_modules`] runs `npm ci` where the scripts' packages are missing.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};

/// From spawn to the "listening on" line.
pub const LISTEN_TIMEOUT: Duration = Duration::from_secs(20);
pub const NPM_CI_TIMEOUT: Duration = Duration::from_secs(180);
pub const POLL: Duration = Duration::from_millis(20);

/// The examples of one test binary run one after the other, and `npm ci` runs once at a time.
static SERIAL: Mutex<()> = Mutex::new(());

pub fn serial() -> MutexGuard<'static, ()> {
    // A failed test poisons the lock; the next one can still run.
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The name of the running test binary (`examples_e2e`, `multi_node_e2e`), for messages.
fn this_test() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .map(|stem| match stem.rsplit_once('-') {
            Some((name, _hash)) => name.to_owned(),
            None => stem,
        })
        .unwrap_or_else(|| "<this test>".to_owned())
}

// -- the example binaries ----------------------------------------------------------------

/// `target/<profile>/examples/<name>`, next to this test's `target/<profile>/deps/`.
pub fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .unwrap_or_else(|| panic!("unexpected test binary location {}", exe.display()));
    let bin = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "the example binary {} is missing: run `cargo test --all-features` (it builds the \
         examples whose required features are on; `cargo test --test {}` alone does not)",
        bin.display(),
        this_test()
    );
    check_fresh(&bin);
    bin
}

/// Fails when a source of the example binary `bin` changed after `bin` was built but before
/// this test was: the build that made this test skipped the examples (`cargo test --test
/// <this test>` does), and testing the stale binary would pass or fail for code that is no
/// longer there. A source changed after this test was built (an edit during the run) only
/// gets a warning: the test binary itself is no fresher. The sources are those of cargo's
/// dep-info file next to the binary (`<bin>.d`: the example's and the crate's files).
fn check_fresh(bin: &Path) {
    let (Some(built), Ok(dep_info)) = (
        modified(bin),
        std::fs::read_to_string(bin.with_extension("d")),
    ) else {
        return;
    };
    let test_built = std::env::current_exe().ok().and_then(|exe| modified(&exe));
    let Some((_, sources)) = dep_info.split_once(": ") else {
        return;
    };
    let sources = sources.replace("\\ ", "\0");
    for source in sources.split_whitespace() {
        let source = PathBuf::from(source.replace('\0', " "));
        let Some(changed) = modified(&source).filter(|m| *m > built) else {
            continue;
        };
        if test_built.is_some_and(|t| changed <= t) {
            panic!(
                "the example binary {} is older than {}: run `cargo test --all-features` (it \
                 rebuilds the examples; `cargo test --test {}` alone does not)",
                bin.display(),
                source.display(),
                this_test()
            );
        }
        println!(
            "---- warning: {} changed after {} and this test were built; testing the build",
            source.display(),
            bin.display()
        );
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// A running example; dropping it kills the process (also when a check panics).
pub struct Example {
    pub name: &'static str,
    /// The process; its stdout lines start with the "listening on" line.
    pub process: Running,
}

impl Example {
    /// Starts `name` with `PORT=0 EVENT_LOG=1` and `SESSION_KEYS` = `keys` (unset when
    /// none); returns it and its base URL.
    pub fn start(name: &'static str, keys: Option<&str>) -> (Self, String) {
        Self::start_with(name, keys, &[])
    }

    /// [`start`](Self::start) with extra environment variables.
    pub fn start_with(
        name: &'static str,
        keys: Option<&str>,
        env: &[(&str, &str)],
    ) -> (Self, String) {
        let bin = example_binary(name);
        let mut cmd = Command::new(&bin);
        cmd.envs(env.iter().copied());
        match keys {
            Some(keys) => cmd.env("SESSION_KEYS", keys),
            None => cmd.env_remove("SESSION_KEYS"),
        };
        cmd.current_dir(root())
            .env("PORT", "0")
            .env("EVENT_LOG", "1");
        let process = Running::spawn(&mut cmd, name, false)
            .unwrap_or_else(|err| panic!("cannot start {}: {err}", bin.display()));
        let example = Example { name, process };
        let url = example.listening_url();
        (example, url)
    }

    /// The URL of the first stdout line, `<name> listening on http://127.0.0.1:<port>`.
    fn listening_url(&self) -> String {
        let line = match self.process.next_line(Instant::now() + LISTEN_TIMEOUT) {
            Ok(line) => line,
            Err(err) => panic!(
                "{} printed no \"listening on\" line within {LISTEN_TIMEOUT:?} ({err}); stderr:\n{}",
                self.name,
                self.stderr()
            ),
        };
        let prefix = format!("{} listening on http://127.0.0.1:", self.name);
        let port = line
            .strip_prefix(&prefix)
            .and_then(|port| port.parse::<u16>().ok())
            .unwrap_or_else(|| panic!("{}: unexpected first stdout line {line:?}", self.name));
        assert_ne!(
            port, 0,
            "{}: printed the requested port, not the bound one",
            self.name
        );
        format!("http://127.0.0.1:{port}")
    }

    pub fn stdout_lines(&self) -> Vec<String> {
        self.process.stdout_lines()
    }

    pub fn stderr(&self) -> String {
        self.process.stderr()
    }

    /// Panics when the process has exited.
    pub fn assert_running(&mut self, after: &str) {
        if let Ok(Some(status)) = self.process.child.try_wait() {
            panic!(
                "{} exited ({status}) during {after}; stderr:\n{}",
                self.name,
                self.stderr()
            );
        }
    }
}

/// Collects everything `pipe` gives into `into` until EOF.
pub fn spawn_collector(
    mut pipe: impl Read + Send + 'static,
    into: Arc<Mutex<String>>,
) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            into.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    })
}

/// Reads `pipe` line by line until EOF (bytes that are not UTF-8 replaced): every line is
/// appended to `into` and sent on the returned channel, for whoever waits for a particular
/// line (dropping the receiver is fine).
fn spawn_line_reader(
    pipe: impl Read + Send + 'static,
    into: Arc<Mutex<Vec<String>>>,
) -> (JoinHandle<()>, Receiver<String>) {
    let (tx, rx) = mpsc::channel();
    let reader = thread::spawn(move || {
        let mut pipe = BufReader::new(pipe);
        let mut buf = Vec::new();
        while matches!(pipe.read_until(b'\n', &mut buf), Ok(n) if n > 0) {
            let line = String::from_utf8_lossy(&buf)
                .trim_end_matches(['\n', '\r'])
                .to_owned();
            buf.clear();
            into.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(line.clone());
            tx.send(line).ok();
        }
    });
    (reader, rx)
}

// -- processes: node, npm, the examples ------------------------------------------------------

/// What a program that ran to completion printed.
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// A program running with its stdout (by lines) and stderr collected; killed when dropped
/// (also when a check panics). Its stdin is a pipe when it is `interactive` ([`say`]), else
/// closed.
///
/// [`say`]: Running::say
pub struct Running {
    pub what: String,
    pub child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    pub stdout: Arc<Mutex<Vec<String>>>,
    pub stderr: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
}

impl Running {
    pub fn spawn(cmd: &mut Command, what: &str, interactive: bool) -> std::io::Result<Self> {
        let mut child = cmd
            .stdin(if interactive {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let (stdout_reader, lines) =
            spawn_line_reader(child.stdout.take().expect("piped"), Arc::clone(&stdout));
        let stderr_reader =
            spawn_collector(child.stderr.take().expect("piped"), Arc::clone(&stderr));
        Ok(Running {
            what: what.to_owned(),
            stdin: child.stdin.take(),
            child,
            lines,
            stdout,
            stderr,
            readers: vec![stdout_reader, stderr_reader],
        })
    }

    /// The next stdout line not taken yet; an error at EOF or past `deadline`.
    pub fn next_line(&self, deadline: Instant) -> Result<String, RecvTimeoutError> {
        self.lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
    }

    /// Writes `line` and a newline to its stdin (an interactive program's).
    pub fn say(&mut self, line: &str) {
        let stdin = self
            .stdin
            .as_mut()
            .unwrap_or_else(|| panic!("{} was not started interactive", self.what));
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|err| panic!("writing {line:?} to {}: {err}", self.what));
    }

    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Kills it, waits for it, and for its output readers (its pipes are closed now).
    fn stop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
        for reader in self.readers.drain(..) {
            reader.join().ok();
        }
    }

    /// Waits until it exits, within `limit` (killed and a panic past it); what it printed.
    pub fn finish(mut self, limit: Duration) -> Finished {
        self.stdin = None; // EOF for a program that reads on
        let deadline = Instant::now() + limit;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => thread::sleep(POLL),
                Ok(None) => {
                    self.stop();
                    panic!(
                        "{} did not finish within {limit:?} (killed); its output:\n{}\n{}",
                        self.what,
                        self.stdout_lines().join("\n"),
                        self.stderr()
                    );
                }
                Err(err) => panic!("waiting for {}: {err}", self.what),
            }
        };
        self.stop();
        let mut stdout = self.stdout_lines().join("\n");
        if !stdout.is_empty() {
            stdout.push('\n');
        }
        Finished {
            status,
            stdout,
            stderr: self.stderr(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs `cmd` to completion within `limit` (killed and a panic past it); panics with a clear
/// message when the program is missing.
pub fn run(cmd: &mut Command, what: &str, limit: Duration) -> Finished {
    Running::spawn(cmd, what, false)
        .unwrap_or_else(|err| {
            panic!(
                "cannot run {what}: {err}. This test needs Node.js 20+ and npm on PATH \
                 (`bash .ci/setup` installs the rest)"
            )
        })
        .finish(limit)
}

pub fn print_output(what: &str, output: &Finished) {
    println!("---- {what}: {}", output.status);
    print!("{}", output.stdout);
    if !output.stderr.trim().is_empty() {
        println!("---- {what} stderr");
        print!("{}", output.stderr);
    }
}

/// `npm ci --prefix <dir>` when one of `markers` (paths under `dir`) is missing.
pub fn ensure_node_modules(dir: &str, markers: &[&str]) {
    let path = root().join(dir);
    if markers.iter().all(|m| path.join(m).exists()) {
        return;
    }
    let what = format!("npm ci --prefix {dir}");
    let output = run(
        Command::new("npm")
            .args(["ci", "--prefix"])
            .arg(&path)
            .args(["--no-audit", "--no-fund"]),
        &what,
        NPM_CI_TIMEOUT,
    );
    print_output(&what, &output);
    assert!(output.status.success(), "{what} failed: {}", output.status);
}

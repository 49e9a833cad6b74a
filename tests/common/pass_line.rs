//! The closing line of the Node scenario scripts (`PASS <n> checks`): the e2e tests judge a
//! script by it, not by its exit code alone (#13 item 14).

/// The `n` of `PASS <n> checks`, the last line a scenario script prints on success.
pub fn closing_check_count(stdout: &str) -> Option<u64> {
    let last = stdout.lines().rev().find(|line| !line.trim().is_empty())?;
    let rest = last.strip_prefix("PASS ")?;
    let (n, rest) = rest.split_once(' ')?;
    if rest != "checks" && !rest.starts_with("checks ") && !rest.starts_with("checks,") {
        return None;
    }
    n.parse().ok()
}

/// A script is judged by its closing line too, not by its exit code alone: it must end with
/// `PASS <n> checks`, no line may start with `FAIL`, and `n` must reach `min`.
pub fn require_pass_line(what: &str, stdout: &str, min: u64) {
    let failed: Vec<&str> = stdout.lines().filter(|l| l.starts_with("FAIL")).collect();
    assert!(failed.is_empty(), "{what} exited 0 but printed {failed:?}");
    let Some(n) = closing_check_count(stdout) else {
        panic!(
            "{what} exited 0 without its closing `PASS <n> checks` line; its output is printed above"
        );
    };
    assert!(
        n >= min,
        "{what} passed only {n} checks, expected at least {min}: part of it did not run"
    );
    println!("---- {what}: {n} checks (at least {min} required)");
}

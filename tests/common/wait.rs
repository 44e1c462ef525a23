//! Waiting for a condition instead of sleeping for a guessed time.

use std::time::{Duration, Instant};

/// Polls `ok` until it is true and returns how long that took; panics with `what` after
/// `limit`. Polls often at first (most conditions hold within milliseconds), then every 50 ms.
#[track_caller]
pub fn wait_for(limit: Duration, what: &str, ok: impl FnMut() -> bool) -> Duration {
    let t = Instant::now();
    assert!(
        poll_until(limit, ok),
        "timed out after {limit:?} waiting for {what}"
    );
    t.elapsed()
}

/// Polls `ok` until it is true (→ true) or `limit` has passed (→ false).
pub fn poll_until(limit: Duration, mut ok: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    let mut pause = Duration::from_millis(2);
    while !ok() {
        if t.elapsed() >= limit {
            return false;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
    true
}

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
    poll_for(limit, || ok().then_some(())).is_some()
}

/// Polls `f` until it gives something (→ `Some`) or `limit` has passed (→ `None`).
pub fn poll_for<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let t = Instant::now();
    let mut pause = Duration::from_millis(2);
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if t.elapsed() >= limit {
            return None;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

//! Time helpers shared by the engine, the store and the tools: µs since the epoch.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Wall-clock now in µs since the epoch.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(usecs)
        .unwrap_or(0)
}

/// Microseconds in a `Duration`, saturating.
pub fn usecs(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

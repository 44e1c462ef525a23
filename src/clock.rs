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

/// µs since the epoch as RFC 3339 in UTC (`2026-12-01T10:00:00Z`), for messages.
pub fn rfc3339(us: u64) -> String {
    i64::try_from(us)
        .ok()
        .and_then(|us| jiff::Timestamp::from_microsecond(us).ok())
        .map(|t| t.round(jiff::Unit::Second).unwrap_or(t).to_string())
        .unwrap_or_else(|| us.to_string())
}

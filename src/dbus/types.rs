//! Structures on the wire.

use serde::{Deserialize, Serialize};

use crate::engine::BanInfo;

/// One active ban: D-Bus signature `(ssttuu)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, zbus::Type)]
pub struct BanRecord {
    pub jail: String,
    /// Address or prefix as text (`203.0.113.9`, `2001:db8::/64`).
    pub address: String,
    /// Ban start, µs since the epoch.
    pub start_usec: u64,
    /// Ban end, µs since the epoch; 0 = permanent.
    pub end_usec: u64,
    /// The n-th ban of this address.
    pub count: u32,
    /// Failures that triggered it (0 for a manual ban).
    pub failures: u32,
}

impl From<BanInfo> for BanRecord {
    fn from(b: BanInfo) -> Self {
        BanRecord {
            jail: b.jail,
            address: b.address,
            start_usec: b.start_us,
            end_usec: b.end_us,
            count: b.count,
            failures: b.failures,
        }
    }
}

/// One past ban of an address: D-Bus signature `(st)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, zbus::Type)]
pub struct HistoryEntry {
    pub jail: String,
    /// Ban start, µs since the epoch.
    pub start_usec: u64,
}

/// One past ban of any address: D-Bus signature `(sst)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, zbus::Type)]
pub struct PastBanRecord {
    pub jail: String,
    /// Address or prefix as text.
    pub address: String,
    /// Ban start, µs since the epoch.
    pub start_usec: u64,
}

/// One action's delivery counters: D-Bus signature `(ssttttt)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, zbus::Type)]
pub struct ActionRecord {
    pub name: String,
    /// `webhook`, `command`, `mail`, `abuseipdb`, or `fleet`.
    pub kind: String,
    pub sent: u64,
    pub failed: u64,
    pub dropped: u64,
    pub pending: u64,
    pub retries: u64,
}

impl From<crate::engine::ActionStatus> for ActionRecord {
    fn from(a: crate::engine::ActionStatus) -> Self {
        ActionRecord {
            name: a.name,
            kind: a.kind,
            sent: a.stats.sent,
            failed: a.stats.failed,
            dropped: a.stats.dropped,
            pending: a.stats.pending,
            retries: a.stats.retries,
        }
    }
}

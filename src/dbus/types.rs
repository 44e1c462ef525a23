//! Structures on the wire.

use serde::{Deserialize, Serialize};

use crate::engine::BanInfo;

/// One active ban: D-Bus signature `(ssttuus)`.
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
    /// Who ordered it: `local`, `manual`, `peer:HOST` (a fleet peer), `import`.
    pub origin: String,
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
            origin: b.origin,
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

/// A fleet peer as `GetFleet` returns it: D-Bus signature `(sttt)`: host, when its newest
/// message was published (µs), its decisions applied here, refused here.
pub type FleetPeer = (String, u64, u64, u64);
/// A recent peer decision: `(tsssss)`: time received (µs), host, event, jail, address,
/// outcome (`applied`, `unchanged`, `refused: REASON`).
pub type FleetRecent = (u64, String, String, String, String, String);
/// `GetFleet`'s answer: configured, host, stream, servers, connected, the stream's last
/// sequence, the sequence applied here, decisions published, peers, refusals by reason,
/// recent decisions.
pub type FleetReply = (
    bool,
    String,
    String,
    Vec<String>,
    bool,
    u64,
    u64,
    u64,
    Vec<FleetPeer>,
    std::collections::HashMap<String, u64>,
    Vec<FleetRecent>,
);

/// `GetFleet`'s answer from the fleet's state (`None`: not configured, all empty).
pub fn fleet_reply(s: Option<crate::fleet::FleetSnapshot>) -> FleetReply {
    let Some(s) = s else {
        return Default::default();
    };
    (
        true,
        s.host,
        s.stream,
        s.servers,
        s.connected,
        s.last_seq,
        s.applied_seq,
        s.published,
        (s.peers.into_iter())
            .map(|(h, p)| (h, p.last_seen_us, p.applied, p.refused))
            .collect(),
        s.refused.into_iter().collect(),
        (s.recent.into_iter())
            .map(|r| (r.time_us, r.host, r.event, r.jail, r.address, r.outcome))
            .collect(),
    )
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

/// One blocklist feed: D-Bus signature `(ssstttttttasst)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, zbus::Type)]
pub struct FeedRecord {
    pub name: String,
    /// URL or path.
    pub source: String,
    /// `plain`, `spamhaus-drop` or `firehol`.
    pub format: String,
    /// Good entries of the list in force.
    pub entries_v4: u64,
    pub entries_v6: u64,
    /// Ranges in the firewall (merged, ignored and own addresses cut out).
    pub elements: u64,
    /// µs since the epoch; 0 = never.
    pub last_fetch_usec: u64,
    pub last_change_usec: u64,
    pub next_refresh_usec: u64,
    /// Bad lines of the last body read, and the first few by line number.
    pub bad_lines: u64,
    pub bad_examples: Vec<String>,
    /// Why the last fetch or its enforcement failed ("" when all is well).
    pub last_error: String,
    /// Failed fetches since f2bd started.
    pub fetch_failures: u64,
}

impl From<crate::engine::FeedInfo> for FeedRecord {
    fn from(f: crate::engine::FeedInfo) -> Self {
        FeedRecord {
            name: f.name,
            source: f.source,
            format: f.format,
            entries_v4: f.entries_v4,
            entries_v6: f.entries_v6,
            elements: f.elements,
            last_fetch_usec: f.last_fetch_us,
            last_change_usec: f.last_change_us,
            next_refresh_usec: f.next_refresh_us,
            bad_lines: f.bad_lines,
            bad_examples: f.bad_examples,
            last_error: f.last_error,
            fetch_failures: f.fetch_failures,
        }
    }
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

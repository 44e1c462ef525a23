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

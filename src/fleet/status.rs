//! What the fleet shows: connection, lag, peers, last decisions and counters. Shared between
//! the fleet's tasks (which write it) and the engine (which reports it over D-Bus, in the
//! metrics and in systemd's STATUS).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

/// Last decisions kept for `f2b fleet`.
pub const RECENT: usize = 20;

/// One peer as seen from here.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PeerStats {
    /// When its last message was published, µs since the epoch.
    pub last_seen_us: u64,
    /// Its decisions applied here.
    pub applied: u64,
    /// Its decisions refused here (any reason).
    pub refused: u64,
}

/// A decision received lately.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Recent {
    pub time_us: u64,
    pub host: String,
    /// `ban` or `unban`.
    pub event: String,
    pub jail: String,
    pub address: String,
    /// `applied`, `duplicate`, or `refused: REASON`.
    pub outcome: String,
}

/// Everything at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct FleetSnapshot {
    /// This host's name in the fleet.
    pub host: String,
    pub stream: String,
    pub servers: Vec<String>,
    pub connected: bool,
    /// Newest stream sequence known.
    pub last_seq: u64,
    /// Newest sequence applied here (stored with the bans).
    pub applied_seq: u64,
    /// Decisions of this host published.
    pub published: u64,
    pub peers: BTreeMap<String, PeerStats>,
    /// Refusals by reason.
    pub refused: BTreeMap<String, u64>,
    /// Newest last.
    pub recent: Vec<Recent>,
}

impl FleetSnapshot {
    /// Messages in the stream not applied here yet.
    pub fn lag(&self) -> u64 {
        self.last_seq.saturating_sub(self.applied_seq)
    }
}

#[derive(Debug, Default)]
struct Inner {
    snap: FleetSnapshot,
    recent: VecDeque<Recent>,
}

/// The shared status. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Status {
    inner: Arc<Mutex<Inner>>,
    connected: watch::Sender<bool>,
}

impl Status {
    pub fn new(host: &str, stream: &str, servers: &[String]) -> Status {
        let inner = Inner {
            snap: FleetSnapshot {
                host: host.to_string(),
                stream: stream.to_string(),
                servers: servers.to_vec(),
                ..FleetSnapshot::default()
            },
            recent: VecDeque::new(),
        };
        Status {
            inner: Arc::new(Mutex::new(inner)),
            connected: watch::channel(false).0,
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> Option<T> {
        self.inner.lock().ok().map(|mut i| f(&mut i))
    }

    pub fn snapshot(&self) -> FleetSnapshot {
        self.with(|i| {
            let mut s = i.snap.clone();
            s.connected = *self.connected.borrow();
            s.recent = i.recent.iter().cloned().collect();
            s
        })
        .unwrap_or_default()
    }

    pub fn set_connected(&self, up: bool) {
        self.connected
            .send_if_modified(|c| std::mem::replace(c, up) != up);
    }

    pub fn connected(&self) -> bool {
        *self.connected.borrow()
    }

    /// Told when the connection state changes.
    pub fn watch_connected(&self) -> watch::Receiver<bool> {
        self.connected.subscribe()
    }

    pub fn published(&self) {
        self.with(|i| i.snap.published += 1);
    }

    /// The stream holds messages up to `seq`.
    pub fn stream_at(&self, seq: u64) {
        self.with(|i| i.snap.last_seq = i.snap.last_seq.max(seq));
    }

    pub fn applied_to(&self, seq: u64) {
        self.with(|i| {
            i.snap.applied_seq = seq;
            i.snap.last_seq = i.snap.last_seq.max(seq);
        });
    }

    pub fn seen(&self, host: &str, published_us: u64) {
        self.with(|i| {
            let p = i.snap.peers.entry(host.to_string()).or_default();
            p.last_seen_us = p.last_seen_us.max(published_us);
        });
    }

    /// A peer decision's outcome: `Ok(applied)` (false = it was a duplicate), or refused.
    pub fn outcome(&self, r: Recent, result: Result<bool, &str>) {
        self.with(|i| {
            let p = i.snap.peers.entry(r.host.clone()).or_default();
            match result {
                Ok(true) => p.applied += 1,
                Ok(false) => {}
                Err(why) => {
                    p.refused += 1;
                    *i.snap.refused.entry(why.to_string()).or_default() += 1;
                }
            }
            if i.recent.len() == RECENT {
                i.recent.pop_front();
            }
            i.recent.push_back(r);
        });
    }

    /// A refusal of a message that names no peer.
    pub fn refused(&self, why: &str) {
        self.with(|i| *i.snap.refused.entry(why.to_string()).or_default() += 1);
    }
}

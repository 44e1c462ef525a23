//! The engine's message API: what the control plane (D-Bus), signal handlers and timers may
//! ask of the engine, and the events it publishes. The engine task is the only owner of jail
//! and ban state; everything else holds an [`EngineHandle`].

use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;
use tokio::sync::{broadcast, mpsc, oneshot};

/// Errors the engine returns to callers. Rendered into D-Bus errors by the control plane.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum CommandError {
    #[error("no such jail: {0}")]
    NoSuchJail(String),
    #[error("invalid address: {0}")]
    InvalidAddress(String),
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("firewall error: {0}")]
    Firewall(String),
    #[error("f2bd is shutting down")]
    ShuttingDown,
}

/// One active ban as reported to clients.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BanInfo {
    pub jail: String,
    /// Address or prefix as text (`203.0.113.9`, `2001:db8::/64`).
    pub address: String,
    /// Ban start, µs since the epoch.
    pub start_us: u64,
    /// Ban end, µs since the epoch; 0 = permanent.
    pub end_us: u64,
    /// The n-th ban of this address (incremental ban times).
    pub count: u32,
    /// Failures that triggered it (0 for manual bans).
    pub failures: u32,
}

/// A jail's settings and counters.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct JailInfo {
    pub name: String,
    pub enabled: bool,
    /// Filter name ("" for a bans-sourced jail), with `:mode` when a mode is set.
    pub filter: String,
    pub maxretry: u32,
    pub findtime_s: u64,
    /// Seconds; -1 = permanent.
    pub bantime_s: i64,
    pub currently_failed: u32,
    pub total_failed: u64,
    pub currently_banned: u32,
    pub total_banned: u64,
}

/// Tunables that can be changed at run time without a reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tunable {
    MaxRetry(u32),
    FindTime(Duration),
    /// `None` = permanent.
    BanTime(Option<Duration>),
}

/// What a reload changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReloadSummary {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
    pub unchanged: Vec<String>,
}

/// Requests to the engine. Each carries its reply channel.
#[derive(Debug)]
pub enum Command {
    ListJails(oneshot::Sender<Vec<JailInfo>>),
    Jail(String, oneshot::Sender<Result<JailInfo, CommandError>>),
    /// Bans of one jail (or all when `None`), sorted by (jail, address), paged.
    ListBans {
        jail: Option<String>,
        offset: usize,
        limit: usize,
        reply: oneshot::Sender<Result<(Vec<BanInfo>, usize), CommandError>>,
    },
    /// Ban `addr` (address or CIDR) in `jail` for `duration` (`None` = the jail's bantime,
    /// with increments). Returns the ban end in µs (0 = permanent).
    Ban {
        jail: String,
        addr: IpNet,
        duration: Option<Duration>,
        reply: oneshot::Sender<Result<u64, CommandError>>,
    },
    /// Unban `addr` from `jail` (every jail when `None`). Returns how many bans were lifted.
    Unban {
        jail: Option<String>,
        addr: IpNet,
        reply: oneshot::Sender<Result<u32, CommandError>>,
    },
    /// Unban everything in `jail` (every jail when `None`).
    UnbanAll {
        jail: Option<String>,
        reply: oneshot::Sender<Result<u32, CommandError>>,
    },
    /// Start (enable) or stop (disable) a configured jail at run time.
    SetEnabled {
        jail: String,
        enabled: bool,
        reply: oneshot::Sender<Result<(), CommandError>>,
    },
    SetTunable {
        jail: String,
        value: Tunable,
        reply: oneshot::Sender<Result<(), CommandError>>,
    },
    /// Re-read the configuration; on error the running config stays.
    Reload(oneshot::Sender<Result<ReloadSummary, CommandError>>),
    /// Past bans of an address: (jail, start µs).
    History {
        addr: IpAddr,
        reply: oneshot::Sender<Vec<(String, u64)>>,
    },
    /// Counters for the Prometheus endpoint (see [`crate::metrics`]).
    Metrics(oneshot::Sender<crate::metrics::Snapshot>),
    /// Read-only questions answered from the engine's state (`engine/queries.rs`).
    Query(Query),
}

/// One past ban: (jail, address or prefix as text, ban start µs).
pub type PastBan = (String, String, u64);

/// Read-only questions for pages and reports (the Cockpit page's chart and jail view).
#[derive(Debug)]
pub enum Query {
    /// Bans that started at or after `since_us`, oldest first (ties by jail, address); at
    /// most the newest `limit`.
    BanHistory {
        since_us: u64,
        limit: usize,
        reply: oneshot::Sender<Vec<PastBan>>,
    },
    /// The journal matches a jail reads (`FIELD=value`, as configured); empty for a jail fed
    /// by other jails' bans.
    JournalMatches {
        jail: String,
        reply: oneshot::Sender<Result<Vec<String>, CommandError>>,
    },
    /// What the firewall enforces, read back from it (answered off the engine loop).
    Firewall(oneshot::Sender<FirewallState>),
}

/// The firewall as read back from the backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirewallState {
    /// The backend ("nftables", "dry-run").
    pub backend: String,
    /// Elements in f2b's sets, or why they could not be listed.
    pub elements: Result<u32, String>,
}

/// Events the engine publishes (D-Bus signals, `f2b monitor`, metrics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Banned {
        jail: String,
        address: String,
        /// µs since the epoch; 0 = permanent.
        until_us: u64,
    },
    Unbanned {
        jail: String,
        address: String,
    },
    /// Jails were added, removed or changed (reload, start/stop, tunables).
    JailsChanged,
    /// Counters of these jails changed (rate-limited by the consumer).
    CountersChanged(Vec<String>),
}

/// Cloneable handle for talking to the engine.
#[derive(Clone)]
pub struct EngineHandle {
    pub(crate) tx: mpsc::Sender<Command>,
    pub(crate) events: broadcast::Sender<Event>,
}

impl EngineHandle {
    /// Send a command built around a fresh reply channel and await the reply.
    pub async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, CommandError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(make(tx))
            .await
            .map_err(|_| CommandError::ShuttingDown)?;
        rx.await.map_err(|_| CommandError::ShuttingDown)
    }

    /// Subscribe to engine events.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// A handle not connected to any engine loop, with the receiving end of its commands
    /// (for tests of the control plane).
    pub fn detached(capacity: usize) -> (EngineHandle, mpsc::Receiver<Command>) {
        let (tx, rx) = mpsc::channel(capacity);
        let (events, _) = broadcast::channel(1024);
        (EngineHandle { tx, events }, rx)
    }

    /// Publish an event (engine side).
    pub fn publish(&self, ev: Event) {
        let _ = self.events.send(ev);
    }
}

//! The engine's message API: what the control plane (D-Bus), signal handlers and timers may
//! ask of the engine, and the events it publishes. The engine task is the only owner of jail
//! and ban state; everything else holds an [`EngineHandle`].

use std::net::IpAddr;
use std::time::Duration;

use std::sync::Arc;

use ipnet::IpNet;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::addr::host_text;
use crate::config::{port_text, JailConfig, LoadOptions, Settings};
use crate::firewall::{Protocol, Verdict};
pub use crate::jail::Origin;

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
    /// Who ordered it: "local", "manual:…", "peer:HOST", "import".
    pub origin: String,
}

/// A jail's settings and counters.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct JailInfo {
    pub name: String,
    pub enabled: bool,
    /// Filter name ("" for a bans-sourced jail), with `:mode` when a mode is set.
    pub filter: String,
    pub maxretry: u32,
    pub findtime_s: u64,
    /// Seconds; -1 = permanent.
    pub bantime_s: i64,
    /// Addresses with failures in their window now.
    pub currently_failed: u32,
    /// Failures in the open windows now.
    pub current_failures: u64,
    /// Failures counted since the jail was first started (kept across restarts).
    pub total_failed: u64,
    pub currently_banned: u32,
    /// Bans made since the jail was first started (kept across restarts).
    pub total_banned: u64,
    /// What the jail enforces.
    pub settings: JailSettings,
}

/// What a jail enforces, as clients show it: [`JailSettings::from`] a [`JailConfig`].
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct JailSettings {
    /// Port ranges as written (`22`, `8000-8100`); empty = every port.
    pub ports: Vec<String>,
    /// `tcp`, `udp`, `tcp+udp` or `all`.
    pub protocol: String,
    /// `drop` or `reject`.
    pub action: String,
    /// Networks never banned (`ignoreip`).
    pub ignoreip: Vec<String>,
    /// The host's own addresses are never banned.
    pub ignoreself: bool,
    pub ipv4_prefix: u8,
    pub ipv6_prefix: u8,
    /// Incremental ban times (the `bantime_*` keys below apply only when set).
    pub bantime_increment: bool,
    pub bantime_factor: f64,
    pub bantime_multipliers: Vec<f64>,
    /// Longest incremented ban, seconds (0 = no limit).
    pub bantime_maxtime_s: u64,
    /// Random extra ban time, at most this many seconds.
    pub bantime_rndtime_s: u64,
    pub bantime_overalljails: bool,
    pub bantime_fastrebans: bool,
}

impl From<&JailConfig> for JailSettings {
    fn from(cfg: &JailConfig) -> Self {
        let inc = cfg.increment.as_ref();
        JailSettings {
            ports: cfg.rules.ports.iter().map(port_text).collect(),
            protocol: match cfg.rules.protocol {
                Protocol::Tcp => "tcp",
                Protocol::Udp => "udp",
                Protocol::TcpUdp => "tcp+udp",
                Protocol::All => "all",
            }
            .into(),
            action: match cfg.rules.verdict {
                Verdict::Drop => "drop",
                Verdict::Reject => "reject",
            }
            .into(),
            ignoreip: cfg.ignore.nets().iter().map(host_text).collect(),
            ignoreself: cfg.ignoreself,
            ipv4_prefix: cfg.ipv4_prefix,
            ipv6_prefix: cfg.ipv6_prefix,
            bantime_increment: inc.is_some(),
            bantime_factor: inc.map_or(1.0, |i| i.factor),
            bantime_multipliers: inc.map(|i| i.multipliers.clone()).unwrap_or_default(),
            bantime_maxtime_s: inc.and_then(|i| i.maxtime).map_or(0, |d| d.as_secs()),
            bantime_rndtime_s: inc.map_or(0, |i| i.rndtime.as_secs()),
            bantime_overalljails: inc.is_some_and(|i| i.overall_jails),
            bantime_fastrebans: inc.is_some_and(|i| i.fast_rebans),
        }
    }
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
    /// with increments). A prefix holding an ignored or own address is refused unless
    /// `force`. Returns the ban end in µs (0 = permanent). Errors when the firewall refused it.
    Ban {
        jail: String,
        addr: IpNet,
        duration: Option<Duration>,
        force: bool,
        /// Who asked (logged, kept with the ban).
        origin: Origin,
        reply: oneshot::Sender<Result<u64, CommandError>>,
    },
    /// Unban `addr` from `jail` (every jail when `None`). Returns how many bans were lifted.
    Unban {
        jail: Option<String>,
        addr: IpNet,
        /// Who asked (logged).
        origin: Origin,
        reply: oneshot::Sender<Result<u32, CommandError>>,
    },
    /// Unban everything in `jail` (every jail when `None`).
    UnbanAll {
        jail: Option<String>,
        /// Who asked (logged).
        origin: Origin,
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
    /// Switch to a new, validated configuration (see [`EngineHandle::reload`], which loads it
    /// off the engine loop); on error the running configuration stays.
    Reload {
        settings: Box<Settings>,
        reply: oneshot::Sender<Result<ReloadSummary, CommandError>>,
    },
    /// Past bans of an address: (jail, start µs).
    History {
        addr: IpAddr,
        reply: oneshot::Sender<Vec<(String, u64)>>,
    },
    /// Counters for the Prometheus endpoint (see [`crate::metrics`]).
    Metrics(oneshot::Sender<MetricsSnapshot>),
    /// Read-only questions answered from the engine's state (`engine/queries.rs`).
    Query(Query),
    /// Blocklist feeds (`engine/feeds.rs`).
    Feeds(FeedsCommand),
    /// Decisions of fleet peers to apply (`engine/peers.rs`, issue 17).
    Peer(PeerBatch),
    /// The fleet's state (`None` without `[fleet]`).
    Fleet(oneshot::Sender<Option<crate::fleet::FleetSnapshot>>),
}

/// A ban or an unban by a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerEvent {
    Ban,
    Unban,
}

impl PeerEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            PeerEvent::Ban => "ban",
            PeerEvent::Unban => "unban",
        }
    }
}

/// One decision of a peer, within the local limits of `[fleet]` already.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerDecision {
    /// Its stream sequence.
    pub seq: u64,
    /// The peer.
    pub host: String,
    pub event: PeerEvent,
    /// The peer's jail (applied into the local jail of that name, else into the fleet jail).
    pub jail: String,
    pub net: IpNet,
    /// When the ban ends (capped by `max_bantime`); `None` for unbans.
    pub end_us: Option<u64>,
    /// The peer's ban count.
    pub count: u32,
}

/// Peer decisions read from the stream up to `last_seq`: the engine applies them and stores
/// `last_seq` at `position` in the same transaction. Replies one outcome per decision.
#[derive(Debug)]
pub struct PeerBatch {
    pub position: String,
    pub last_seq: u64,
    pub decisions: Vec<PeerDecision>,
    pub reply: oneshot::Sender<Vec<PeerOutcome>>,
}

/// What became of a peer decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerOutcome {
    Applied,
    /// Nothing to do: already banned here, already over, or not this peer's ban to lift.
    Unchanged,
    /// The local rules refused it (the reason: `ignored`, `own`, `unbannable`, `no_jail`).
    Refused(&'static str),
}

impl std::fmt::Display for PeerOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PeerOutcome::Applied => f.write_str("applied"),
            PeerOutcome::Unchanged => f.write_str("unchanged"),
            PeerOutcome::Refused(why) => write!(f, "refused: {why}"),
        }
    }
}

/// Blocklist feeds: their tasks' news, and the control plane's questions.
#[derive(Debug)]
pub enum FeedsCommand {
    /// From a feed's task; answered once the engine enforces it (or failed to).
    Update(Box<crate::feeds::FeedUpdate>, oneshot::Sender<()>),
    /// Every enabled feed, in name order.
    List(oneshot::Sender<Vec<FeedInfo>>),
    /// Fetch feed `name` (every feed when `None`) now. The answer comes at once; its receiver
    /// completes once every one was fetched and what it brought is enforced.
    Refresh {
        name: Option<String>,
        reply: oneshot::Sender<Result<oneshot::Receiver<()>, CommandError>>,
    },
}

/// A blocklist feed as reported to clients (`f2b feeds`, metrics).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct FeedInfo {
    pub name: String,
    /// URL or path.
    pub source: String,
    /// `plain`, `spamhaus-drop` or `firehol`.
    pub format: String,
    /// Good entries of the list in force.
    pub entries_v4: u64,
    pub entries_v6: u64,
    /// Ranges in the firewall (entries merged, ignored and own addresses cut out).
    pub elements: u64,
    /// µs since the epoch; 0 = never.
    pub last_fetch_us: u64,
    pub last_change_us: u64,
    pub next_refresh_us: u64,
    /// Bad lines of the last body read, and the first few ("line 7: …").
    pub bad_lines: u64,
    pub bad_examples: Vec<String>,
    /// Why the last fetch or the enforcement failed ("" when all is well).
    pub last_error: String,
    /// Fetches that failed since f2bd started.
    pub fetch_failures: u64,
}

/// One running filter's counters, for the metrics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FilterMetrics {
    pub jail: String,
    pub filter: String,
    pub seen: u64,
    pub matched: u64,
    pub ignored: u64,
    pub no_address: u64,
    /// Journal time of the newest match, µs; 0 = none yet.
    pub last_match_us: u64,
}

/// The engine's numbers at one moment (rendered by [`crate::metrics`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricsSnapshot {
    pub jails: Vec<JailInfo>,
    pub filters: Vec<FilterMetrics>,
    /// Per jail: failure windows dropped because the jail tracked `max_tracked` addresses.
    pub windows_evicted: Vec<(String, u64)>,
    /// Bans the firewall has not accepted yet (retried).
    pub pending_bans: u64,
    pub entries_read: u64,
    /// Journal time of the newest entry processed, µs; 0 = none yet.
    pub journal_us: u64,
    /// The startup backlog has been processed.
    pub caught_up: bool,
    /// Wall clock when the snapshot was taken, µs.
    pub now_us: u64,
    /// The log files of file jails, with their counters.
    pub files: Vec<crate::source::files::FileView>,
    /// The blocklist feeds.
    pub feeds: Vec<FeedInfo>,
    /// The fleet (issue 17), when configured.
    pub fleet: Option<crate::fleet::FleetSnapshot>,
    /// The actions' delivery counters.
    pub actions: Vec<ActionStatus>,
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
    /// The log files a file jail follows: (path, state, lines given to its filter, failures
    /// found); empty for other jails.
    LogFiles {
        jail: String,
        reply: oneshot::Sender<Result<Vec<LogFile>, CommandError>>,
    },
    /// Every action (and the fleet) with its delivery counters, by name.
    Actions(oneshot::Sender<Vec<ActionStatus>>),
}

/// One action's delivery counters (see [`crate::outbox::SinkStats`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ActionStatus {
    pub name: String,
    /// `webhook`, `command`, `mail`, `abuseipdb`, or `fleet`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(flatten)]
    pub stats: crate::outbox::SinkStats,
}

/// A followed log file of a jail: (path, state, lines given to its filter, failures found).
pub type LogFile = (String, String, u64, u64);

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
    /// How [`EngineHandle::reload`] reads the configuration.
    load: Arc<LoadOptions>,
}

impl EngineHandle {
    pub(crate) fn new(
        tx: mpsc::Sender<Command>,
        events: broadcast::Sender<Event>,
        load: LoadOptions,
    ) -> EngineHandle {
        EngineHandle {
            tx,
            events,
            load: Arc::new(load),
        }
    }

    /// Re-read the configuration (on a blocking thread: files, filters, regex compilation)
    /// and hand the validated settings to the engine. A configuration that does not load,
    /// or that the firewall refuses, changes nothing.
    pub async fn reload(&self) -> Result<ReloadSummary, CommandError> {
        let load = self.load.clone();
        let settings = tokio::task::spawn_blocking(move || crate::config::load(&load))
            .await
            .map_err(|_| CommandError::ShuttingDown)?
            .map_err(|e| CommandError::InvalidConfig(e.to_string()))?;
        self.call(|reply| Command::Reload {
            settings: Box::new(settings),
            reply,
        })
        .await?
    }

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
        (EngineHandle::new(tx, events, LoadOptions::default()), rx)
    }

    /// Publish an event (engine side).
    pub fn publish(&self, ev: Event) {
        let _ = self.events.send(ev);
    }
}

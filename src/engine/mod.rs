//! The engine: the one owner of jail and ban state.
//!
//! One tokio task runs [`Engine::run`] ([`run`]): a `select!` over batches from the sources,
//! [`Command`]s from the control plane, the ban-expiry timer, firewall retries and shutdown.
//! Nobody else mutates jail or ban state; everything else holds an [`EngineHandle`].
//!
//! The engine's jobs, one module each:
//! - [`run`]: the loop, its timers and shutdown;
//! - [`ingest`]: source batches → jails → ban decisions (and recidive over the engine's own
//!   bans); one store commit per batch with the decisions, the open windows and the source
//!   positions;
//! - [`enforce`]: decisions and restores → the firewall, expiry, firewall repair, and the
//!   bans the firewall refused (retried when transient, rolled back when not: no signal,
//!   metric or history row claims a ban that is not enforced);
//! - [`control`]: the commands of the control plane (ban, unban, start/stop, tunables);
//! - [`reload`]: a new configuration as a pure plan, committed only once the firewall took it;
//! - [`routes`]: which jails read which source (the journal, log files), and the reader
//!   threads;
//! - [`report`]: jail info, metrics snapshots, systemd STATUS;
//! - [`queries`]: read-only questions answered from the engine's state.
//!
//! The clock is the journal's: while a source works through a backlog, bans expire by the
//! time of the entries processed, so a replay of an old journal makes the decisions a live run
//! made. Once caught up, the wall clock drives expiry.

pub mod api;
mod control;
mod enforce;
mod feeds;
mod heap;
mod ingest;
mod notify;
mod peers;
mod queries;
mod reload;
mod report;
mod restore;
mod routes;
mod run;

use std::collections::BTreeMap;
use std::time::Duration;

use ipnet::IpNet;
use tokio::sync::{broadcast, mpsc, watch};

pub use crate::addr::host_text;
pub use crate::clock::now_us;
pub use api::{
    ActionStatus, BanInfo, Command, CommandError, EngineHandle, Event, FeedInfo, FeedsCommand,
    FilterMetrics, JailInfo, JailSettings, MetricsSnapshot, Origin, ReloadSummary, Tunable,
};
pub use feeds::STEP_ELEMENTS as FEED_STEP_ELEMENTS;
pub use notify::FLEET_SINK;
pub use peers::reason as peer_refusal;

use crate::config::{LoadOptions, Settings};
use crate::firewall::FirewallHandle;
use crate::jail::{History, Jail};
use crate::source::{RouteStats, SourceConfig, SourceEvent};
use crate::store::{Snapshot, StoreHandle};

use enforce::{Expiries, Pending};
use routes::Routes;

/// Engine failures that stop the daemon.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Source(#[from] crate::source::SourceError),
    #[error("firewall setup: {0}")]
    Firewall(#[from] crate::firewall::FirewallError),
    #[error("reader failed: {0}")]
    Reader(String),
}

/// How the engine is run.
pub struct EngineOptions {
    /// How to re-read the configuration on reload.
    pub load: LoadOptions,
    /// Journal source (its `start` is used unless a saved cursor says otherwise).
    pub source: SourceConfig,
    pub firewall: FirewallHandle,
    /// Told `true` once bans are restored and the journal is being read (READY=1).
    pub ready: Option<watch::Sender<bool>>,
    /// Summary for STATUS=, updated as things change.
    pub status: Option<watch::Sender<String>>,
    /// Liveness ticks of the engine loop itself (watchdog), every `tick` interval.
    pub tick: Option<(Duration, mpsc::Sender<()>)>,
    /// Persistence; `None` = nothing survives a restart (tests, `--ephemeral`).
    pub store: Option<StoreHandle>,
    /// What the store held at start (bans, history, windows, cursor).
    pub snapshot: Option<Snapshot>,
    /// Resume from the snapshot's cursor when there is one (else `source.start`).
    pub resume: bool,
    /// Someone else changed f2b's firewall objects (e.g. `nft flush ruleset`): a description
    /// per event. The engine re-creates the table and every active ban.
    pub firewall_events: Option<mpsc::UnboundedReceiver<String>>,
    /// Something the admin must know, shown first in STATUS= for the daemon's life (a damaged
    /// state database that was moved aside at start).
    pub notice: Option<String>,
    /// Where messages about bans go (actions, the fleet); `None` = nowhere.
    pub outbox: Option<crate::outbox::OutboxHandle>,
    /// This host's name, in messages.
    pub host: String,
    /// The fleet's state, when `[fleet]` is configured (issue 17): reported by `GetFleet`,
    /// the metrics and STATUS.
    pub fleet: Option<crate::fleet::Status>,
}

/// Where the engine's clock stands.
#[derive(Debug, Default)]
struct Clock {
    /// The sources have processed their backlog.
    caught_up: bool,
    /// Sources follow new entries (else the run ends at the end of the backlog).
    follow: bool,
    /// Time of the newest entry processed, µs.
    journal_us: u64,
}

impl Clock {
    /// The clock bans expire by: journal time while catching up, wall time after.
    fn now(&self) -> u64 {
        if self.live() {
            now_us().max(self.journal_us)
        } else {
            self.journal_us
        }
    }

    /// Wall-clock mode: caught up and following.
    fn live(&self) -> bool {
        self.caught_up && self.follow
    }
}

/// The engine state.
pub struct Engine {
    settings: Settings,
    opts: EngineOptions,
    jails: BTreeMap<String, Jail>,
    history: History,
    routes: Routes,
    source_tx: mpsc::Sender<SourceEvent>,
    source_rx: mpsc::Receiver<SourceEvent>,
    handle: EngineHandle,
    clock: Clock,
    ended: bool,
    expiries: Expiries,
    /// Bans decided but not (yet) enforced: the firewall refused them for a transient reason.
    pending: Pending,
    /// Per-jail filter counters (cumulative).
    stats: BTreeMap<String, RouteStats>,
    self_addrs: Vec<IpNet>,
    entries_read: u64,
    cursor: Option<String>,
    /// The other readers' positions (log files), as last committed.
    positions: BTreeMap<String, String>,
    /// Outbox messages waiting for their decision to be enforced.
    held: notify::Held,
    /// Blocklist feeds (`feeds.rs`).
    feeds: feeds::Feeds,
    /// Which fleet peer owns which peer ban.
    peers: peers::PeerBans,
}

impl Engine {
    /// Build the engine and its handle. Nothing runs until [`Engine::run`].
    pub fn new(
        settings: Settings,
        opts: EngineOptions,
    ) -> (Engine, EngineHandle, mpsc::Receiver<Command>) {
        let (cmd_tx, cmd_rx) = mpsc::channel(256);
        let (events, _) = broadcast::channel(4096);
        let handle = EngineHandle::new(cmd_tx, events, opts.load.clone());
        let (source_tx, source_rx) = mpsc::channel(64);
        let self_addrs = crate::system::local_addresses();
        let history = History::new(crate::clock::usecs(settings.daemon.history_max_age));
        let follow = opts.source.follow;
        let mut e = Engine {
            jails: BTreeMap::new(),
            history,
            routes: Routes::default(),
            source_tx,
            source_rx,
            handle: handle.clone(),
            clock: Clock {
                follow,
                ..Clock::default()
            },
            ended: false,
            expiries: Expiries::default(),
            pending: Pending::default(),
            stats: BTreeMap::new(),
            self_addrs,
            entries_read: 0,
            cursor: None,
            positions: BTreeMap::new(),
            held: notify::Held::default(),
            feeds: feeds::Feeds::default(),
            peers: peers::PeerBans::default(),
            settings,
            opts,
        };
        for j in e.settings.enabled_jails().cloned().collect::<Vec<_>>() {
            e.jails.insert(j.name.clone(), Jail::new(j, &e.self_addrs));
        }
        (e, handle, cmd_rx)
    }

    /// A jail's state (for tests and metrics).
    pub fn jail(&self, name: &str) -> Option<&Jail> {
        self.jails.get(name)
    }

    fn rules(&self) -> Vec<crate::firewall::JailRules> {
        self.jails.values().map(|j| j.cfg.rules.clone()).collect()
    }
}

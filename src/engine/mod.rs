//! The engine: the one owner of jail and ban state.
//!
//! One tokio task runs [`Engine::run`]: a `select!` over journal batches from the reader
//! thread, [`Command`]s from the control plane, the ban-expiry timer and shutdown. Each batch
//! is turned into ban decisions by the jails; decisions are persisted (store, with the journal
//! cursor, in one transaction) and then applied to the firewall in one batch, then announced
//! ([`Event`]s, one log line each). Nobody else mutates jail or ban state.
//!
//! The clock is the journal's: while the reader works through a backlog, bans expire by the
//! time of the entries processed, so a replay of an old journal makes the decisions a live run
//! made. Once caught up, the wall clock drives expiry.

pub mod api;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ipnet::IpNet;
use tokio::sync::{broadcast, mpsc, watch};
use tracing::{debug, info, warn};

pub use api::{
    BanInfo, Command, CommandError, EngineHandle, Event, JailInfo, ReloadSummary, Tunable,
};

use crate::config::{
    self, format_duration, BanTime, JailConfig, JailSource, LoadOptions, Settings,
};
use crate::firewall::{Change, FirewallHandle};
use crate::jail::{usecs, ActiveBan, BanDecision, History, Jail, Verdict};
use crate::logging::{MSGID_BAN, MSGID_RELOAD, MSGID_RESTORE, MSGID_UNBAN};
use crate::source::{self, Batch, Route, RouteStats, SourceConfig, SourceEvent, StartAt};
use crate::store::{Commit, Snapshot, StoreHandle, StoredBan};

/// How often old history and expired rows are purged.
const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// Wall-clock now in µs since the epoch.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(usecs)
        .unwrap_or(0)
}

/// Engine failures that stop the daemon.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Source(#[from] crate::source::SourceError),
    #[error("firewall setup: {0}")]
    Firewall(#[from] crate::firewall::FirewallError),
    #[error("journal reader failed: {0}")]
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
}

/// A decision or restore waiting to be announced after the firewall took it.
struct Applied {
    jail: String,
    net: IpNet,
    end_us: Option<u64>,
}

/// The engine state.
pub struct Engine {
    settings: Settings,
    opts: EngineOptions,
    jails: BTreeMap<String, Jail>,
    history: History,
    /// Route index → jail name, for the routes generation in force and the previous one.
    routes: Vec<(u64, Vec<String>)>,
    generation: u64,
    reader: Option<source::ReaderHandle>,
    source_tx: mpsc::Sender<SourceEvent>,
    source_rx: mpsc::Receiver<SourceEvent>,
    handle: EngineHandle,
    caught_up: bool,
    ended: bool,
    /// Journal time of the newest entry processed.
    journal_us: u64,
    /// Ban ends, earliest first (lazy: checked against the jail on pop).
    expiries: BinaryHeap<Reverse<(u64, String, IpNet)>>,
    /// Per-jail filter counters (cumulative).
    pub stats: BTreeMap<String, RouteStats>,
    self_addrs: Vec<IpNet>,
    entries_read: u64,
    cursor: Option<String>,
}

impl Engine {
    /// Build the engine and its handle. Nothing runs until [`Engine::run`].
    pub fn new(
        settings: Settings,
        opts: EngineOptions,
    ) -> (Engine, EngineHandle, mpsc::Receiver<Command>) {
        let (cmd_tx, cmd_rx) = mpsc::channel(256);
        let (events, _) = broadcast::channel(4096);
        let handle = EngineHandle { tx: cmd_tx, events };
        let (source_tx, source_rx) = mpsc::channel(64);
        let self_addrs = config::local_addresses();
        let history = History::new(usecs(settings.daemon.history_max_age));
        let mut e = Engine {
            jails: BTreeMap::new(),
            history,
            routes: Vec::new(),
            generation: 0,
            reader: None,
            source_tx,
            source_rx,
            handle: handle.clone(),
            caught_up: false,
            ended: false,
            journal_us: 0,
            expiries: BinaryHeap::new(),
            stats: BTreeMap::new(),
            self_addrs,
            entries_read: 0,
            cursor: None,
            settings,
            opts,
        };
        for j in e.settings.enabled_jails().cloned().collect::<Vec<_>>() {
            e.jails.insert(j.name.clone(), Jail::new(j, &e.self_addrs));
        }
        (e, handle, cmd_rx)
    }

    fn rules(&self) -> Vec<crate::firewall::JailRules> {
        self.jails.values().map(|j| j.cfg.rules.clone()).collect()
    }

    fn build_routes(&self) -> (Vec<Route>, Vec<String>) {
        let mut routes = Vec::new();
        let mut names = Vec::new();
        for j in self.jails.values() {
            if let JailSource::Journal { matches, .. } = &j.cfg.source {
                if let Some(filter) = self.settings.filters.get(j.name()) {
                    routes.push(Route {
                        jail: Arc::from(j.name()),
                        matches: matches.clone(),
                        filter: filter.clone(),
                    });
                    names.push(j.name().to_string());
                }
            }
        }
        (routes, names)
    }

    /// Start: set up the firewall, start the reader; then serve until `shutdown` turns true
    /// (or, when not following, until the journal's end has been processed).
    pub async fn run(
        mut self,
        mut cmds: mpsc::Receiver<Command>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), EngineError> {
        self.opts.firewall.setup(self.rules()).await?;
        info!(
            firewall = self.opts.firewall.name(),
            jails = self.jails.len(),
            "firewall ready"
        );
        let mut start = self.opts.source.start.clone();
        if let Some(snap) = self.opts.snapshot.take() {
            if self.opts.resume {
                if let Some(c) = &snap.cursor {
                    start = StartAt::Cursor(c.clone());
                    self.cursor = Some(c.clone());
                }
            }
            self.restore_snapshot(snap).await;
        }
        self.start_reader(start)?;
        if let Some(r) = &self.opts.ready {
            let _ = r.send(true);
        }
        self.update_status();
        let mut tick = self
            .opts
            .tick
            .as_ref()
            .map(|(d, _)| tokio::time::interval(*d));
        let mut fw_events = self.opts.firewall_events.take();
        let mut purge =
            tokio::time::interval_at(tokio::time::Instant::now() + PURGE_EVERY, PURGE_EVERY);
        while !self.ended {
            let next_expiry = self.next_expiry_delay();
            tokio::select! {
                biased;
                _ = shutdown.changed() => {
                    if *shutdown.borrow() { break; }
                }
                // Before the journal: a long backlog must not starve the watchdog pings.
                _ = tick_opt(&mut tick) => {
                    if let Some((_, tx)) = &self.opts.tick {
                        let _ = tx.try_send(());
                    }
                }
                Some(cmd) = cmds.recv() => self.command(cmd).await,
                ev = self.source_rx.recv() => {
                    match ev {
                        Some(ev) => {
                            if self.source_event(ev).await? { break; }
                        }
                        None => break,
                    }
                }
                _ = sleep_opt(next_expiry) => {
                    let now = self.clock();
                    self.expire(now).await;
                }
                _ = purge.tick() => self.purge().await,
                Some(what) = recv_opt(&mut fw_events) => self.firewall_lost(what, &mut fw_events).await,
            }
        }
        if let Some(r) = self.reader.take() {
            tokio::task::spawn_blocking(move || r.stop()).await.ok();
        }
        info!(entries = self.entries_read, "engine stopped");
        Ok(())
    }

    fn start_reader(&mut self, start: StartAt) -> Result<(), EngineError> {
        let (routes, names) = self.build_routes();
        self.routes = vec![(self.generation, names)];
        if routes.is_empty() {
            info!("no enabled journal jails: not reading the journal");
            self.caught_up = true;
            if !self.opts.source.follow {
                self.ended = true;
            }
            return Ok(());
        }
        let mut cfg = self.opts.source.clone();
        cfg.start = start;
        let reader = source::spawn(cfg, routes, self.source_tx.clone())?;
        self.reader = Some(reader);
        Ok(())
    }

    /// The clock bans expire by: journal time while catching up, wall time after.
    fn clock(&self) -> u64 {
        if self.caught_up && self.opts.source.follow {
            now_us().max(self.journal_us)
        } else {
            self.journal_us
        }
    }

    fn next_expiry_delay(&self) -> Option<Duration> {
        let Reverse((end, _, _)) = self.expiries.peek()?;
        if !(self.caught_up && self.opts.source.follow) {
            // Journal clock: expiries are handled as batches advance it.
            return None;
        }
        Some(Duration::from_micros(end.saturating_sub(now_us())))
    }

    /// Handle one reader event; `Ok(true)` = stop the loop.
    async fn source_event(&mut self, ev: SourceEvent) -> Result<bool, EngineError> {
        match ev {
            SourceEvent::Batch(b) => self.batch(b).await,
            SourceEvent::CaughtUp => {
                if !self.caught_up {
                    info!(entries = self.entries_read, "journal backlog processed");
                }
                self.caught_up = true;
                let now = self.clock();
                self.expire(now).await;
                self.update_status();
            }
            SourceEvent::Ended => {
                self.ended = true;
                return Ok(true);
            }
            SourceEvent::Warning(w) => warn!("{w}"),
            SourceEvent::Failed(e) => return Err(EngineError::Reader(e)),
        }
        Ok(false)
    }

    async fn batch(&mut self, b: Batch) {
        self.entries_read += b.entries;
        let names = self
            .routes
            .iter()
            .find(|(g, _)| *g == b.generation)
            .map(|(_, n)| n.clone())
            .unwrap_or_default();
        for (i, st) in b.stats.iter().enumerate() {
            if let Some(name) = names.get(i) {
                self.stats.entry(name.clone()).or_default().add(st);
            }
        }
        let mut decisions = Vec::new();
        let mut touched = Vec::new();
        let mut windows: Vec<(String, IpNet)> = Vec::new();
        for hit in &b.hits {
            let Some(name) = names.get(hit.route) else {
                continue;
            };
            let Some(jail) = self.jails.get_mut(name) else {
                continue;
            };
            // Bans expire by journal time while the backlog is read.
            if !self.caught_up && hit.time_us > self.journal_us {
                self.journal_us = hit.time_us;
            }
            let verdict = jail.failure(hit.addr, hit.time_us, &hit.message, &self.history);
            windows.push((name.clone(), jail.key(hit.addr)));
            match &verdict {
                Verdict::Counted { failures, needed } => debug!(
                    F2B_JAIL = %name, F2B_ADDRESS = %hit.addr,
                    "[{name}] Found {} ({failures}/{needed})", hit.addr
                ),
                Verdict::Ignored => {
                    debug!(F2B_JAIL = %name, F2B_ADDRESS = %hit.addr, "[{name}] Ignore {}", hit.addr)
                }
                Verdict::AlreadyBanned => {
                    debug!(F2B_JAIL = %name, F2B_ADDRESS = %hit.addr, "[{name}] {} already banned", hit.addr)
                }
                Verdict::Ban(_) => {}
            }
            if let Verdict::Ban(d) = verdict {
                decisions.push(d);
            }
            touched.push(name.clone());
        }
        if b.last_time_us > self.journal_us {
            self.journal_us = b.last_time_us;
        }
        if b.cursor.is_some() {
            self.cursor = b.cursor;
        }
        // Bans feed the jails that watch bans (recidive over f2b's own history).
        let mut i = 0;
        while i < decisions.len() {
            let d = decisions[i].clone();
            self.history.record(d.net, &d.jail, d.start_us);
            for w in self.watchers_of(&d.jail) {
                let jail = self.jails.get_mut(&w).expect("watcher exists");
                let line = format!("[{}] Ban {}", d.jail, d.net);
                if let Verdict::Ban(rd) =
                    jail.failure(d.net.addr(), d.start_us, &line, &self.history)
                {
                    decisions.push(rd);
                }
            }
            i += 1;
        }
        // Persist decisions, open windows and the cursor in one transaction before enforcing.
        if self.opts.store.is_some() && b.entries > 0 {
            windows.sort();
            windows.dedup();
            let mut c = Commit {
                cursor: self.cursor.clone(),
                ..Default::default()
            };
            for (jail, net) in windows {
                match self.jails.get(&jail).and_then(|j| j.window_of(&net)) {
                    Some(times) => c
                        .windows_set
                        .push((jail, net, times.iter().copied().collect())),
                    None => c.windows_cleared.push((jail, net)),
                }
            }
            for d in &decisions {
                c.bans_added.push(stored(d));
                c.history_added.push((d.net, d.jail.clone(), d.start_us));
            }
            self.persist(c, false).await;
        }
        if !decisions.is_empty() {
            self.apply_decisions(decisions).await;
        }
        if !self.caught_up || !self.opts.source.follow {
            let now = self.clock();
            self.expire(now).await;
        }
        if !touched.is_empty() {
            touched.sort();
            touched.dedup();
            self.handle.publish(Event::CountersChanged(touched));
            self.update_status();
        }
    }

    fn watchers_of(&self, jail: &str) -> Vec<String> {
        self.jails
            .values()
            .filter(|j| match &j.cfg.source {
                JailSource::Bans { jails } => {
                    j.name() != jail && (jails.is_empty() || jails.iter().any(|x| x == jail))
                }
                _ => false,
            })
            .map(|j| j.name().to_string())
            .collect()
    }

    /// Persist, apply to the firewall, announce.
    async fn apply_decisions(&mut self, decisions: Vec<BanDecision>) {
        let now = now_us();
        let mut changes = Vec::new();
        let mut applied = Vec::new();
        for d in &decisions {
            let bt = match d.bantime {
                BanTime::For(x) => format_duration(x),
                BanTime::Forever => "ever".into(),
            };
            info!(
                F2B_JAIL = %d.jail, F2B_ADDRESS = %host_text(&d.net), F2B_EVENT = "ban",
                F2B_FAILURES = d.failures, F2B_BAN_COUNT = d.count, MESSAGE_ID = MSGID_BAN,
                "[{}] Ban {} for {} after {} failures", d.jail, host_text(&d.net), bt, d.failures
            );
            for l in &d.lines {
                debug!(F2B_JAIL = %d.jail, "[{}]   {}", d.jail, l);
            }
            if let Some(end) = d.end_us {
                self.expiries.push(Reverse((end, d.jail.clone(), d.net)));
            }
            let timeout = match d.end_us {
                None => None,
                Some(end) if end > now => Some(Duration::from_micros(end - now)),
                // Already over (an old entry replayed): nothing to enforce.
                Some(_) => continue,
            };
            changes.push(Change::Ban {
                jail: d.jail.clone(),
                net: d.net,
                timeout,
            });
            applied.push(Applied {
                jail: d.jail.clone(),
                net: d.net,
                end_us: d.end_us,
            });
        }
        if let Err(e) = self.opts.firewall.apply_all(changes).await {
            warn!("firewall: could not apply {} ban(s): {e}", applied.len());
        }
        for a in applied {
            self.handle.publish(Event::Banned {
                jail: a.jail,
                address: host_text(&a.net),
                until_us: a.end_us.unwrap_or(0),
            });
        }
    }

    /// Lift bans whose end is at or before `now`.
    async fn expire(&mut self, now: u64) {
        let mut changes = Vec::new();
        let mut lifted = Vec::new();
        while let Some(Reverse((end, _, _))) = self.expiries.peek() {
            if *end > now {
                break;
            }
            let Reverse((end, jail, net)) = self.expiries.pop().expect("peeked");
            let Some(j) = self.jails.get_mut(&jail) else {
                continue;
            };
            // Lazy heap: the ban may have been lifted or replaced since.
            match j.ban_of(&net) {
                Some(b) if b.end_us == Some(end) => {
                    j.lift_expired(&net);
                }
                _ => continue,
            }
            changes.push(Change::Unban {
                jail: jail.clone(),
                net,
            });
            lifted.push((jail, net));
        }
        if lifted.is_empty() {
            return;
        }
        let c = Commit {
            bans_removed: lifted.clone(),
            ..Default::default()
        };
        self.persist(c, false).await;
        if let Err(e) = self.opts.firewall.apply_all(changes).await {
            warn!("firewall: unban failed: {e}");
        }
        for (jail, net) in lifted {
            self.announce_unban(&jail, &net);
        }
        self.update_status();
    }

    /// Write a commit; errors are logged (the firewall still gets the change: protection
    /// first, and a restart re-derives from the journal what the store missed).
    async fn persist(&self, c: Commit, durable: bool) {
        let Some(store) = &self.opts.store else {
            return;
        };
        let res = if durable {
            store.commit_durable(c).await
        } else {
            store.commit(c).await
        };
        if let Err(e) = res {
            warn!("state store: {e}");
        }
    }

    async fn purge(&mut self) {
        let now = now_us();
        self.history.purge(now);
        for j in self.jails.values_mut() {
            j.prune(self.journal_us.max(now));
        }
        if let Some(store) = &self.opts.store {
            match store
                .purge(usecs(self.settings.daemon.history_max_age), now)
                .await
            {
                Ok(st) => debug!(?st, "purged old state"),
                Err(e) => warn!("state store purge: {e}"),
            }
        }
    }

    /// The firewall lost (some of) our objects: set the table up again and re-apply every
    /// active ban with its remaining time, in one batch. Bursts of events are coalesced.
    async fn firewall_lost(
        &mut self,
        what: String,
        rx: &mut Option<mpsc::UnboundedReceiver<String>>,
    ) {
        let started = std::time::Instant::now();
        // Let a burst (flush ruleset deletes many objects) settle, then act once.
        tokio::time::sleep(Duration::from_millis(20)).await;
        if let Some(rx) = rx {
            while rx.try_recv().is_ok() {}
        }
        warn!("firewall changed behind our back ({what}); restoring the table and bans");
        if let Err(e) = self.opts.firewall.setup(self.rules()).await {
            warn!("firewall setup after an outside change failed: {e}");
            return;
        }
        let now = now_us();
        let mut changes = Vec::new();
        for j in self.jails.values() {
            for (net, b) in j.bans() {
                if !b.active_at(now) {
                    continue;
                }
                changes.push(Change::Ban {
                    jail: j.name().to_string(),
                    net: *net,
                    timeout: b.end_us.map(|e| Duration::from_micros(e - now)),
                });
            }
        }
        let n = changes.len();
        match self.opts.firewall.apply_all(changes).await {
            Ok(()) => info!(
                bans = n,
                "firewall restored with {n} ban(s) in {:.1} ms",
                started.elapsed().as_secs_f64() * 1e3
            ),
            Err(e) => warn!("firewall: re-applying {n} ban(s) failed: {e}"),
        }
    }

    /// Bring back bans, history and open windows; re-apply the bans in one firewall pass.
    async fn restore_snapshot(&mut self, snap: Snapshot) {
        let started = std::time::Instant::now();
        for (net, jail, t) in &snap.history {
            self.history.record(*net, jail, *t);
        }
        for (jail, net, times) in snap.windows {
            if let Some(j) = self.jails.get_mut(&jail) {
                j.restore_window(net, times);
            }
        }
        let mut changes = Vec::new();
        let mut gone = Vec::new();
        for b in &snap.bans {
            let ban = ActiveBan {
                start_us: b.start_us,
                end_us: b.end_us,
                count: b.count,
                failures: b.failures,
            };
            match self.restore(&b.jail, b.net, ban) {
                Some(c) => changes.push(c),
                None => gone.push((b.jail.clone(), b.net)),
            }
        }
        let n = changes.len();
        if let Err(e) = self.opts.firewall.apply_all(changes).await {
            warn!("firewall: restoring {n} ban(s) failed: {e}");
        }
        if !gone.is_empty() {
            // Bans of jails no longer enabled, or already over.
            let c = Commit {
                bans_removed: gone,
                ..Default::default()
            };
            self.persist(c, false).await;
        }
        info!(
            bans = n,
            history = snap.history.len(),
            "restored {n} ban(s) in {:.1} ms",
            started.elapsed().as_secs_f64() * 1e3
        );
    }

    fn announce_unban(&self, jail: &str, net: &IpNet) {
        info!(
            F2B_JAIL = %jail, F2B_ADDRESS = %host_text(net), F2B_EVENT = "unban", MESSAGE_ID = MSGID_UNBAN,
            "[{jail}] Unban {}", host_text(net)
        );
        self.handle.publish(Event::Unbanned {
            jail: jail.to_string(),
            address: host_text(net),
        });
    }

    /// Restore a ban from saved state (start of day): keeps the jail's view and the kernel in
    /// step. Returns the firewall change, if the ban is still running.
    pub fn restore(&mut self, jail: &str, net: IpNet, ban: ActiveBan) -> Option<Change> {
        let j = self.jails.get_mut(jail)?;
        let now = now_us();
        if !ban.active_at(now) {
            return None;
        }
        j.restore_ban(net, ban);
        if let Some(end) = ban.end_us {
            self.expiries.push(Reverse((end, jail.to_string(), net)));
        }
        let timeout = ban.end_us.map(|e| Duration::from_micros(e - now));
        debug!(
            F2B_JAIL = %jail, F2B_ADDRESS = %host_text(&net), F2B_EVENT = "restore", MESSAGE_ID = MSGID_RESTORE,
            "[{jail}] Restore ban {} for {}", host_text(&net),
            timeout.map(format_duration).unwrap_or_else(|| "ever".into())
        );
        Some(Change::Ban {
            jail: jail.to_string(),
            net,
            timeout,
        })
    }

    fn update_status(&self) {
        let Some(tx) = &self.opts.status else { return };
        let banned: usize = self.jails.values().map(|j| j.banned_count()).sum();
        let failures: u64 = self.jails.values().map(|j| j.counters.total_failed).sum();
        let s = format!(
            "{} jail{}, {} banned, {} failures{}",
            self.jails.len(),
            if self.jails.len() == 1 { "" } else { "s" },
            banned,
            failures,
            if self.caught_up {
                ""
            } else {
                " (reading backlog)"
            }
        );
        tx.send_if_modified(|old| {
            if *old != s {
                *old = s;
                true
            } else {
                false
            }
        });
    }

    fn jail_info(&self, name: &str) -> Option<JailInfo> {
        let cfg = self.settings.jail(name)?;
        let live = self.jails.get(name);
        let cfg = live.map(|j| &j.cfg).unwrap_or(cfg);
        Some(JailInfo {
            name: name.to_string(),
            enabled: live.is_some(),
            filter: match &cfg.source {
                JailSource::Journal { filter, mode, .. } => match mode {
                    Some(m) => format!("{filter}:{m}"),
                    None => filter.clone(),
                },
                JailSource::Bans { .. } => String::new(),
            },
            maxretry: cfg.maxretry,
            findtime_s: cfg.findtime.as_secs(),
            bantime_s: match cfg.bantime {
                BanTime::For(d) => d.as_secs() as i64,
                BanTime::Forever => -1,
            },
            currently_failed: live.map_or(0, |j| j.failing_count() as u32),
            total_failed: live.map_or(0, |j| j.counters.total_failed),
            currently_banned: live.map_or(0, |j| j.banned_count() as u32),
            total_banned: live.map_or(0, |j| j.counters.total_banned),
        })
    }

    async fn command(&mut self, cmd: Command) {
        match cmd {
            Command::ListJails(r) => {
                let v = self
                    .settings
                    .jails
                    .iter()
                    .filter_map(|j| self.jail_info(&j.name))
                    .collect();
                let _ = r.send(v);
            }
            Command::Jail(name, r) => {
                let _ = r.send(self.jail_info(&name).ok_or(CommandError::NoSuchJail(name)));
            }
            Command::ListBans {
                jail,
                offset,
                limit,
                reply,
            } => {
                let _ = reply.send(self.list_bans(jail.as_deref(), offset, limit));
            }
            Command::Ban {
                jail,
                addr,
                duration,
                reply,
            } => {
                let res = self.manual_ban(&jail, addr, duration).await;
                let _ = reply.send(res);
            }
            Command::Unban { jail, addr, reply } => {
                let res = self.unban(jail.as_deref(), Some(addr)).await;
                let _ = reply.send(res);
            }
            Command::UnbanAll { jail, reply } => {
                let res = self.unban(jail.as_deref(), None).await;
                let _ = reply.send(res);
            }
            Command::SetEnabled {
                jail,
                enabled,
                reply,
            } => {
                let res = self.set_enabled(&jail, enabled).await;
                let _ = reply.send(res);
            }
            Command::SetTunable { jail, value, reply } => {
                let res = match self.jails.get_mut(&jail) {
                    None => Err(CommandError::NoSuchJail(jail)),
                    Some(j) => {
                        match value {
                            Tunable::MaxRetry(n) if n >= 1 => j.cfg.maxretry = n,
                            Tunable::FindTime(d) if !d.is_zero() => j.cfg.findtime = d,
                            Tunable::BanTime(Some(d)) if !d.is_zero() => {
                                j.cfg.bantime = BanTime::For(d)
                            }
                            Tunable::BanTime(None) => j.cfg.bantime = BanTime::Forever,
                            other => {
                                let _ = reply.send(Err(CommandError::InvalidArgument(format!(
                                    "{other:?}: must be greater than 0"
                                ))));
                                return;
                            }
                        }
                        self.handle.publish(Event::JailsChanged);
                        Ok(())
                    }
                };
                let _ = reply.send(res);
            }
            Command::Reload(r) => {
                let res = self.reload().await;
                let _ = r.send(res);
            }
            Command::History { addr, reply } => {
                let mut out = Vec::new();
                for j in self.jails.values() {
                    let key = j.key(addr);
                    for (jail, t) in self.history.of(&key) {
                        if jail == j.name() {
                            out.push((jail, t));
                        }
                    }
                }
                out.sort_by_key(|(_, t)| *t);
                out.dedup();
                let _ = reply.send(out);
            }
            Command::Metrics(r) => {
                let _ = r.send(self.metrics());
            }
        }
    }

    fn metrics(&self) -> crate::metrics::Snapshot {
        let jails: Vec<JailInfo> = (self.settings.jails.iter())
            .filter_map(|j| self.jail_info(&j.name))
            .collect();
        // Every running journal jail, with zeros until its first entry (no missing series).
        let filters = (jails.iter())
            .filter(|j| j.enabled && !j.filter.is_empty())
            .map(|j| {
                let st = self.stats.get(&j.name).cloned().unwrap_or_default();
                crate::metrics::FilterMetrics {
                    jail: j.name.clone(),
                    filter: j.filter.clone(),
                    seen: st.seen,
                    matched: st.matched,
                    ignored: st.ignored,
                    no_address: st.no_address,
                    last_match_us: st.last_match_us,
                }
            })
            .collect();
        crate::metrics::Snapshot {
            jails,
            filters,
            entries_read: self.entries_read,
            journal_us: self.journal_us,
            caught_up: self.caught_up,
            now_us: now_us(),
        }
    }

    fn list_bans(
        &self,
        jail: Option<&str>,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<BanInfo>, usize), CommandError> {
        if let Some(j) = jail {
            if !self.jails.contains_key(j) {
                return Err(CommandError::NoSuchJail(j.to_string()));
            }
        }
        let mut all: Vec<BanInfo> = self
            .jails
            .values()
            .filter(|j| jail.is_none_or(|x| x == j.name()))
            .flat_map(|j| {
                j.bans().map(|(net, b)| BanInfo {
                    jail: j.name().to_string(),
                    address: host_text(net),
                    start_us: b.start_us,
                    end_us: b.end_us.unwrap_or(0),
                    count: b.count,
                    failures: b.failures,
                })
            })
            .collect();
        all.sort_by(|a, b| (&a.jail, &a.address).cmp(&(&b.jail, &b.address)));
        let total = all.len();
        let page = all.into_iter().skip(offset).take(limit).collect();
        Ok((page, total))
    }

    async fn manual_ban(
        &mut self,
        jail: &str,
        addr: IpNet,
        duration: Option<Duration>,
    ) -> Result<u64, CommandError> {
        let j = self
            .jails
            .get_mut(jail)
            .ok_or_else(|| CommandError::NoSuchJail(jail.to_string()))?;
        let addr = addr.trunc();
        if addr.prefix_len() == 0 {
            return Err(CommandError::InvalidAddress(format!(
                "{addr}: refusing to ban a whole address family"
            )));
        }
        if j.is_ignored(addr.addr()) && addr.prefix_len() == addr.max_prefix_len() {
            return Err(CommandError::InvalidArgument(format!(
                "{} is in jail {jail}'s ignoreip (or is this host's own address)",
                addr.addr()
            )));
        }
        // A single address is banned as the jail's aggregation unit.
        let net = if addr.prefix_len() == addr.max_prefix_len() {
            j.key(addr.addr())
        } else {
            addr
        };
        let now = now_us();
        let d = j.manual_ban(net, now, duration.map(BanTime::For), &self.history);
        let end = d.end_us.unwrap_or(0);
        self.history.record(d.net, &d.jail, d.start_us);
        let c = Commit {
            bans_added: vec![stored(&d)],
            history_added: vec![(d.net, d.jail.clone(), d.start_us)],
            windows_cleared: vec![(d.jail.clone(), d.net)],
            ..Default::default()
        };
        self.persist(c, true).await;
        self.apply_decisions(vec![d]).await;
        self.update_status();
        Ok(end)
    }

    async fn unban(
        &mut self,
        jail: Option<&str>,
        addr: Option<IpNet>,
    ) -> Result<u32, CommandError> {
        if let Some(j) = jail {
            if !self.jails.contains_key(j) {
                return Err(CommandError::NoSuchJail(j.to_string()));
            }
        }
        let mut lifted = Vec::new();
        for j in self.jails.values_mut() {
            if jail.is_some_and(|x| x != j.name()) {
                continue;
            }
            let targets: Vec<IpNet> = match addr {
                None => j.bans().map(|(n, _)| *n).collect(),
                Some(a) => {
                    let a = a.trunc();
                    j.bans()
                        .map(|(n, _)| *n)
                        .filter(|n| {
                            // The exact ban, or the aggregated unit holding a single address.
                            *n == a
                                || (a.prefix_len() == a.max_prefix_len() && n.contains(&a.addr()))
                        })
                        .collect()
                }
            };
            for n in targets {
                j.unban(&n);
                lifted.push((j.name().to_string(), n));
            }
        }
        if !lifted.is_empty() {
            let c = Commit {
                bans_removed: lifted.clone(),
                ..Default::default()
            };
            self.persist(c, true).await;
        }
        let changes = lifted
            .iter()
            .map(|(jail, net)| Change::Unban {
                jail: jail.clone(),
                net: *net,
            })
            .collect();
        self.opts
            .firewall
            .apply_all(changes)
            .await
            .map_err(|e| CommandError::Firewall(e.to_string()))?;
        for (j, n) in &lifted {
            self.announce_unban(j, n);
        }
        self.update_status();
        Ok(lifted.len() as u32)
    }

    async fn set_enabled(&mut self, name: &str, enabled: bool) -> Result<(), CommandError> {
        let cfg = self
            .settings
            .jail(name)
            .cloned()
            .ok_or_else(|| CommandError::NoSuchJail(name.to_string()))?;
        if enabled == self.jails.contains_key(name) {
            return Ok(());
        }
        if enabled {
            if let JailSource::Journal { filter, mode, .. } = &cfg.source {
                let def = self.settings.library.get(filter).ok_or_else(|| {
                    CommandError::InvalidConfig(format!("unknown filter {filter}"))
                })?;
                let compiled = def
                    .compile(mode.as_deref())
                    .map_err(|e| CommandError::InvalidConfig(e.to_string()))?;
                self.settings.filters.insert(name.to_string(), compiled);
            }
            self.jails
                .insert(name.to_string(), Jail::new(cfg, &self.self_addrs));
        } else {
            let bans: Vec<IpNet> = self
                .jails
                .get(name)
                .map(|j| j.bans().map(|(n, _)| *n).collect())
                .unwrap_or_default();
            self.jails.remove(name);
            for n in bans {
                self.announce_unban(name, &n);
            }
        }
        self.opts
            .firewall
            .setup(self.rules())
            .await
            .map_err(|e| CommandError::Firewall(e.to_string()))?;
        self.refresh_routes();
        self.handle.publish(Event::JailsChanged);
        self.update_status();
        Ok(())
    }

    fn refresh_routes(&mut self) {
        self.generation += 1;
        let (routes, names) = self.build_routes();
        let prev = self.routes.pop();
        self.routes = prev
            .into_iter()
            .chain(std::iter::once((self.generation, names)))
            .collect();
        match &self.reader {
            Some(r) if !routes.is_empty() => r.set_routes(routes, self.generation),
            Some(_) => {
                // No journal jail left: stop reading.
                if let Some(r) = self.reader.take() {
                    std::thread::spawn(move || r.stop());
                }
            }
            None if !routes.is_empty() => {
                let start = match &self.cursor {
                    Some(c) => StartAt::Cursor(c.clone()),
                    None => StartAt::Tail,
                };
                if let Err(e) = self.start_reader(start) {
                    warn!("cannot start the journal reader: {e}");
                }
            }
            None => {}
        }
    }

    /// Re-read the configuration; apply it as a diff. Errors leave everything as it was.
    async fn reload(&mut self) -> Result<ReloadSummary, CommandError> {
        let new = config::load(&self.opts.load)
            .map_err(|e| CommandError::InvalidConfig(e.to_string()))?;
        let mut summary = ReloadSummary::default();
        let old_names: Vec<String> = self.jails.keys().cloned().collect();
        let mut next: BTreeMap<String, Jail> = BTreeMap::new();
        let mut removed_bans = Vec::new();
        let mut old = std::mem::take(&mut self.jails);
        for cfg in new.enabled_jails() {
            match old.remove(&cfg.name) {
                Some(mut j) => {
                    if same_jail(&j.cfg, cfg) {
                        summary.unchanged.push(cfg.name.clone());
                    } else {
                        summary.changed.push(cfg.name.clone());
                    }
                    j.reconfigure(cfg.clone(), &self.self_addrs);
                    next.insert(cfg.name.clone(), j);
                }
                None => {
                    summary.added.push(cfg.name.clone());
                    next.insert(cfg.name.clone(), Jail::new(cfg.clone(), &self.self_addrs));
                }
            }
        }
        for (name, j) in old {
            summary.removed.push(name.clone());
            for (n, _) in j.bans() {
                removed_bans.push((name.clone(), *n));
            }
        }
        let rules: Vec<_> = next.values().map(|j| j.cfg.rules.clone()).collect();
        if let Err(e) = self.opts.firewall.setup(rules).await {
            // Keep the old jails: the firewall still has their layout.
            let mut restored = BTreeMap::new();
            for n in old_names {
                if let Some(j) = next.remove(&n) {
                    restored.insert(n, j);
                }
            }
            self.jails = restored;
            return Err(CommandError::Firewall(e.to_string()));
        }
        self.jails = next;
        self.settings = new;
        self.history.max_age_us = usecs(self.settings.daemon.history_max_age);
        for (j, n) in &removed_bans {
            self.announce_unban(j, n);
        }
        if !summary.removed.is_empty() {
            let c = Commit {
                jails_removed: summary.removed.clone(),
                ..Default::default()
            };
            self.persist(c, true).await;
        }
        self.refresh_routes();
        info!(
            MESSAGE_ID = MSGID_RELOAD,
            "configuration reloaded: {} added, {} removed, {} changed, {} unchanged",
            summary.added.len(),
            summary.removed.len(),
            summary.changed.len(),
            summary.unchanged.len()
        );
        self.handle.publish(Event::JailsChanged);
        self.update_status();
        Ok(summary)
    }

    /// Per-jail counters (for metrics and tests).
    pub fn jail(&self, name: &str) -> Option<&Jail> {
        self.jails.get(name)
    }
}

fn stored(d: &BanDecision) -> StoredBan {
    StoredBan {
        jail: d.jail.clone(),
        net: d.net,
        start_us: d.start_us,
        end_us: d.end_us,
        count: d.count,
        failures: d.failures,
    }
}

fn same_jail(a: &JailConfig, b: &JailConfig) -> bool {
    format!("{a:?}") == format!("{b:?}")
}

/// An address as text: a host without its /32 or /128, a prefix with it.
pub fn host_text(net: &IpNet) -> String {
    if net.prefix_len() == net.max_prefix_len() {
        net.addr().to_string()
    } else {
        net.to_string()
    }
}

async fn sleep_opt(d: Option<Duration>) {
    match d {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

async fn recv_opt(rx: &mut Option<mpsc::UnboundedReceiver<String>>) -> Option<String> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn tick_opt(t: &mut Option<tokio::time::Interval>) {
    match t {
        Some(t) => {
            t.tick().await;
        }
        None => std::future::pending().await,
    }
}

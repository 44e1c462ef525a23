//! Blocklist feeds in the engine: the engine owns the firewall, so the feeds' tasks send it
//! their content ([`FeedsCommand::Update`]) and it enforces it in the feed's set group.
//!
//! What a feed enforces is its list without the addresses nothing may drop: every enabled
//! jail's `ignoreip`, the feed's own `ignoreip`, loopback and the host's own addresses (a range
//! that holds one is split around it). A list is applied as a diff in bounded steps
//! ([`STEP_ELEMENTS`] elements per netlink transaction), one step per turn of the engine loop
//! and only when nothing else is waiting, so that a 100,000-entry feed never holds up a ban
//! for long.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;

use ipnet::IpNet;
use tokio::sync::{mpsc, oneshot};
use tracing::{error, info, warn};

use super::api::{FeedInfo, FeedsCommand};
use super::{CommandError, Engine};
use crate::config::FeedConfig;
use crate::feeds::task::{self, Control, Loaded};
use crate::feeds::{cache::Cache, AddrRanges, FetchStatus};

/// Elements (range starts and ends) added or deleted per firewall transaction.
pub const STEP_ELEMENTS: usize = 8192;

/// Never dropped by a feed, whatever the configuration says.
const ALWAYS_IGNORED: [&str; 2] = ["127.0.0.0/8", "::1/128"];

/// The engine's view of the feeds.
#[derive(Default)]
pub(super) struct Feeds {
    /// The manager of the feeds' tasks (started with the engine loop).
    control: Option<mpsc::UnboundedSender<Control>>,
    feeds: BTreeMap<String, FeedState>,
    /// Feeds whose sets are not (known to be) what they should hold, in order.
    queue: VecDeque<String>,
}

struct FeedState {
    cfg: FeedConfig,
    status: FetchStatus,
    /// The list in force, as fetched.
    raw: Option<Arc<AddrRanges>>,
    /// `raw` without the ignored addresses: what the sets must hold.
    want: Arc<AddrRanges>,
    /// Ranges in the sets (IPv4, IPv6).
    held: (usize, usize),
    apply_error: Option<String>,
    /// Told once the sets hold `want`.
    acks: Vec<oneshot::Sender<()>>,
}

impl FeedState {
    fn new(cfg: FeedConfig) -> FeedState {
        FeedState {
            cfg,
            status: FetchStatus::default(),
            raw: None,
            want: Arc::default(),
            held: (0, 0),
            apply_error: None,
            acks: Vec::new(),
        }
    }
}

impl Feeds {
    pub(super) fn has_work(&self) -> bool {
        !self.queue.is_empty()
    }

    fn enqueue(&mut self, name: &str) {
        if !self.queue.iter().any(|n| n == name) {
            self.queue.push_back(name.to_string());
        }
    }
}

impl Engine {
    /// What no feed may drop, for feed `cfg`.
    fn feed_ignored(&self, cfg: &FeedConfig) -> AddrRanges {
        let always: Vec<IpNet> = ALWAYS_IGNORED
            .iter()
            .filter_map(|s| s.parse().ok())
            .collect();
        let nets = (self.jails.values())
            .flat_map(|j| j.cfg.ignore.nets())
            .chain(cfg.ignore.nets())
            .chain(&self.self_addrs)
            .chain(&always);
        AddrRanges::from_nets(nets)
    }

    fn feed_rules(&self) -> Vec<crate::firewall::FeedRules> {
        (self.feeds.feeds.values())
            .map(|f| crate::firewall::FeedRules {
                name: f.cfg.name.clone(),
                ports: f.cfg.ports.clone(),
                protocol: f.cfg.protocol,
                verdict: f.cfg.verdict,
            })
            .collect()
    }

    /// At start: the feeds' sets, their last good copies (from `cache`) enforced before
    /// anything is fetched, and the feeds' tasks.
    pub(super) async fn start_feeds(&mut self, cache_dir: Option<PathBuf>) {
        let cache = cache_dir.map(Cache::new);
        for cfg in self.settings.enabled_feeds() {
            self.feeds
                .feeds
                .insert(cfg.name.clone(), FeedState::new(cfg.clone()));
        }
        if self.feeds.feeds.is_empty() {
            // Sets of feeds no longer configured go (f2b owns the table).
            if let Err(e) = self.opts.firewall.setup_feeds(Vec::new()).await {
                warn!(error = %e, "firewall: removing the sets of old feeds failed: {e}");
            }
        } else if let Err(e) = self.opts.firewall.setup_feeds(self.feed_rules()).await {
            error!(error = %e, "firewall: the feeds' sets could not be set up: {e}");
        }
        let mut preloaded = BTreeMap::new();
        if let Some(cache) = &cache {
            let cfgs: Vec<FeedConfig> = self.feeds.feeds.values().map(|f| f.cfg.clone()).collect();
            let c = cache.clone();
            let loaded: Vec<(String, Loaded)> = tokio::task::spawn_blocking(move || {
                cfgs.iter()
                    .filter_map(|cfg| Some((cfg.name.clone(), task::load_cached(&c, cfg)?)))
                    .collect()
            })
            .await
            .unwrap_or_default();
            for (name, l) in loaded {
                info!(feed = %name, "feed {name}: enforcing its last good copy from {}", cache.dir().display());
                let status = l.status();
                let ranges = Arc::new(l.parsed.ranges.clone());
                self.feed_content(&name, status, Some(ranges));
                preloaded.insert(name, l);
            }
            // Before READY: the copies are enforced.
            while self.feeds.has_work() {
                self.feed_step().await;
            }
        }
        let control = task::spawn(self.handle.clone(), cache);
        let feeds = self.feeds.feeds.values().map(|f| f.cfg.clone()).collect();
        let _ = control.send(Control::Configure { feeds, preloaded });
        self.feeds.control = Some(control);
    }

    /// A new configuration's feeds (after the firewall took the jails' layout).
    pub(super) async fn reload_feeds(&mut self) {
        let new: Vec<FeedConfig> = self.settings.enabled_feeds().cloned().collect();
        self.feeds
            .feeds
            .retain(|name, _| new.iter().any(|f| f.name == *name));
        self.feeds
            .queue
            .retain(|name| new.iter().any(|f| f.name == *name));
        for cfg in &new {
            match self.feeds.feeds.get_mut(&cfg.name) {
                Some(f) => f.cfg = cfg.clone(),
                None => {
                    self.feeds
                        .feeds
                        .insert(cfg.name.clone(), FeedState::new(cfg.clone()));
                }
            }
        }
        if let Err(e) = self.opts.firewall.setup_feeds(self.feed_rules()).await {
            error!(error = %e, "firewall: the feeds' sets could not be set up: {e}");
        }
        // The ignored addresses may have changed: every feed is checked again.
        let names: Vec<String> = self.feeds.feeds.keys().cloned().collect();
        for name in names {
            self.recompute_want(&name);
            self.feeds.enqueue(&name);
        }
        if let Some(c) = &self.feeds.control {
            let preloaded = BTreeMap::new();
            let _ = c.send(Control::Configure {
                feeds: new,
                preloaded,
            });
        }
    }

    /// After somebody else changed the table: the feeds' sets again, then their elements.
    pub(super) async fn restore_feeds(&mut self) {
        if self.feeds.feeds.is_empty() {
            return;
        }
        if let Err(e) = self.opts.firewall.setup_feeds(self.feed_rules()).await {
            warn!(error = %e, "firewall: the feeds' sets could not be set up again: {e}");
            return;
        }
        let names: Vec<String> = self.feeds.feeds.keys().cloned().collect();
        names.iter().for_each(|n| self.feeds.enqueue(n));
    }

    fn recompute_want(&mut self, name: &str) {
        let Some(f) = self.feeds.feeds.get(name) else {
            return;
        };
        let ignored = self.feed_ignored(&f.cfg);
        let want = match &f.raw {
            Some(raw) => Arc::new(raw.subtract(&ignored)),
            None => Arc::default(),
        };
        if let Some(f) = self.feeds.feeds.get_mut(name) {
            f.want = want;
        }
    }

    /// A feed's task reports; new content is queued for the firewall.
    fn feed_content(&mut self, name: &str, status: FetchStatus, ranges: Option<Arc<AddrRanges>>) {
        let Some(f) = self.feeds.feeds.get_mut(name) else {
            return;
        };
        f.status = status;
        let retry = f.apply_error.is_some();
        let new = ranges.is_some();
        if let Some(r) = ranges {
            f.raw = Some(r);
        }
        if new {
            self.recompute_want(name);
        }
        if new || retry {
            self.feeds.enqueue(name);
        }
    }

    pub(super) fn feeds_command(&mut self, cmd: FeedsCommand) {
        match cmd {
            FeedsCommand::Update(u, ack) => {
                let u = *u;
                self.feed_content(&u.name, u.status, u.ranges);
                match self.feeds.feeds.get_mut(&u.name) {
                    Some(f) if self.feeds.queue.contains(&u.name) => f.acks.push(ack),
                    _ => drop(ack.send(())),
                }
            }
            FeedsCommand::List(reply) => {
                let _ = reply.send(self.feed_infos());
            }
            FeedsCommand::Refresh { name, reply } => {
                let names: Vec<String> = match name {
                    Some(n) if !self.feeds.feeds.contains_key(&n) => {
                        let _ = reply.send(Err(CommandError::InvalidArgument(format!(
                            "no such feed: {n}"
                        ))));
                        return;
                    }
                    Some(n) => vec![n],
                    None => self.feeds.feeds.keys().cloned().collect(),
                };
                let (done, rx) = oneshot::channel();
                if let Some(c) = &self.feeds.control {
                    let _ = c.send(Control::Refresh { names, done });
                }
                let _ = reply.send(Ok(rx));
            }
        }
    }

    /// One bounded step of the first queued feed's sync.
    pub(super) async fn feed_step(&mut self) {
        let Some(name) = self.feeds.queue.front().cloned() else {
            return;
        };
        let Some(f) = self.feeds.feeds.get(&name) else {
            self.feeds.queue.pop_front();
            return;
        };
        let started = std::time::Instant::now();
        let want = f.want.clone();
        let r = (self.opts.firewall)
            .sync_feed(&name, want.clone(), STEP_ELEMENTS)
            .await;
        let Some(f) = self.feeds.feeds.get_mut(&name) else {
            return;
        };
        let done = match r {
            Ok(s) => {
                f.held = s.held;
                f.apply_error = None;
                tracing::debug!(
                    feed = %name, sent = s.sent, remaining = s.remaining,
                    "feed {name}: {} element(s) in {:.1} ms", s.sent, started.elapsed().as_secs_f64() * 1e3
                );
                if s.remaining == 0 {
                    let (v4, v6) = s.held;
                    info!(feed = %name, v4, v6, "feed {name}: enforced as {v4} IPv4 and {v6} IPv6 range(s)");
                }
                s.remaining == 0
            }
            Err(e) => {
                error!(feed = %name, error = %e, "feed {name}: the firewall refused it: {e}");
                f.apply_error = Some(format!("firewall: {e}"));
                true
            }
        };
        if done {
            self.feeds.queue.pop_front();
            for ack in f.acks.drain(..) {
                let _ = ack.send(());
            }
        }
    }

    pub(super) fn feed_infos(&self) -> Vec<FeedInfo> {
        (self.feeds.feeds.values())
            .map(|f| {
                let s = &f.status;
                let last_error = match (&f.apply_error, s.last_error.is_empty()) {
                    (Some(e), _) => e.clone(),
                    (None, _) => s.last_error.clone(),
                };
                FeedInfo {
                    name: f.cfg.name.clone(),
                    source: f.cfg.source.to_string(),
                    format: f.cfg.format.name().to_string(),
                    entries_v4: s.entries.0 as u64,
                    entries_v6: s.entries.1 as u64,
                    elements: (f.held.0 + f.held.1) as u64,
                    last_fetch_us: s.last_fetch_us,
                    last_change_us: s.last_change_us,
                    next_refresh_us: s.next_refresh_us,
                    bad_lines: s.bad_lines as u64,
                    bad_examples: s.bad_examples.clone(),
                    last_error,
                    fetch_failures: s.fetch_failures,
                }
            })
            .collect()
    }
}

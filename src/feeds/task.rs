//! The feeds' tasks, off the engine loop: one per feed (its timer, fetch, parse and cache) and
//! a manager that starts, stops and restarts them as the configuration changes. A task sends
//! the engine its status and new content as a message and waits until the engine enforces it;
//! the engine never waits on a task.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{info, warn};

use super::cache::{Cache, Meta};
use super::fetch::{self, Fetched};
use super::parse::{self, Parsed};
use super::{AddrRanges, FeedError, FeedUpdate, FetchStatus};
use crate::clock::now_us;
use crate::config::FeedConfig;
use crate::engine::api::FeedsCommand;
use crate::engine::{Command, EngineHandle};

/// After a failed fetch, the next one comes this soon (or at the refresh, if that is sooner).
pub const RETRY_AFTER: Duration = Duration::from_secs(300);

/// A feed's last good copy as read from the cache.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub meta: Meta,
    pub parsed: Parsed,
}

impl Loaded {
    /// The status a feed starts with when its copy comes from the cache.
    pub fn status(&self) -> FetchStatus {
        FetchStatus {
            entries: self.parsed.entries,
            last_fetch_us: self.meta.fetched_us,
            last_change_us: self.meta.changed_us,
            bad_lines: self.parsed.bad,
            bad_examples: self.parsed.bad_lines.clone(),
            ..FetchStatus::default()
        }
    }
}

/// Feed `cfg`'s last good copy, if the cache has one of its source (blocking: file reads).
pub fn load_cached(cache: &Cache, cfg: &FeedConfig) -> Option<Loaded> {
    let (meta, body) = cache.load(&cfg.name, &cfg.source.to_string())?;
    let parsed = parse::parse(cfg.format, &body);
    if let Err(e) = parse::check(&parsed, body.len(), cfg.max_entries) {
        warn!(feed = %cfg.name, error = %e, "feed {}: the copy in {} is not used: {e}", cfg.name, cache.dir().display());
        return None;
    }
    Some(Loaded { meta, parsed })
}

/// What the manager is told.
#[derive(Debug)]
pub enum Control {
    /// The enabled feeds; copies the engine already enforces (read at start) by name.
    Configure {
        feeds: Vec<FeedConfig>,
        preloaded: BTreeMap<String, Loaded>,
    },
    /// Fetch `names` now; `done` is dropped once every one was fetched and enforced.
    Refresh {
        names: Vec<String>,
        done: oneshot::Sender<()>,
    },
}

struct Running {
    cfg: FeedConfig,
    task: JoinHandle<()>,
    refresh: mpsc::UnboundedSender<oneshot::Sender<()>>,
}

/// Starts the manager; it stops (with every feed task) when the sender is dropped.
pub fn spawn(engine: EngineHandle, cache: Option<Cache>) -> mpsc::UnboundedSender<Control> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let client = fetch::client();
        let mut running: BTreeMap<String, Running> = BTreeMap::new();
        while let Some(ctl) = rx.recv().await {
            match ctl {
                Control::Configure {
                    feeds,
                    mut preloaded,
                } => {
                    running.retain(|name, r| {
                        let keep = feeds
                            .iter()
                            .any(|f| f.name == *name && f.same_source(&r.cfg));
                        if !keep {
                            r.task.abort();
                        }
                        keep
                    });
                    for cfg in feeds {
                        if let Some(r) = running.get_mut(&cfg.name) {
                            r.cfg = cfg;
                            continue;
                        }
                        let (refresh, refresh_rx) = mpsc::unbounded_channel();
                        let feed = Feed {
                            loaded: preloaded.remove(&cfg.name),
                            cfg: cfg.clone(),
                            cache: cache.clone(),
                            client: client.as_ref().map_err(|e| e.to_string()).cloned(),
                            engine: engine.clone(),
                        };
                        let task = tokio::spawn(feed.run(refresh_rx));
                        running.insert(cfg.name.clone(), Running { cfg, task, refresh });
                    }
                }
                Control::Refresh { names, done } => {
                    let waits: Vec<oneshot::Receiver<()>> = names
                        .iter()
                        .filter_map(|n| running.get(n))
                        .filter_map(|r| {
                            let (tx, rx) = oneshot::channel();
                            r.refresh.send(tx).ok().map(|_| rx)
                        })
                        .collect();
                    tokio::spawn(async move {
                        for w in waits {
                            let _ = w.await;
                        }
                        drop(done);
                    });
                }
            }
        }
        for r in running.values() {
            r.task.abort();
        }
    });
    tx
}

/// One feed's task.
struct Feed {
    cfg: FeedConfig,
    cache: Option<Cache>,
    client: Result<reqwest::Client, String>,
    engine: EngineHandle,
    loaded: Option<Loaded>,
}

impl Feed {
    async fn run(mut self, mut refresh: mpsc::UnboundedReceiver<oneshot::Sender<()>>) {
        let mut meta = Meta {
            source: self.cfg.source.to_string(),
            ..Meta::default()
        };
        let mut status = FetchStatus::default();
        let mut current: Option<Arc<AddrRanges>> = None;
        // The copy on disk: enforced by the engine already (read at start), or sent now.
        let loaded = match self.loaded.take() {
            Some(l) => Some((l, false)),
            None => match &self.cache {
                Some(c) => {
                    let (c, cfg) = (c.clone(), self.cfg.clone());
                    tokio::task::spawn_blocking(move || load_cached(&c, &cfg))
                        .await
                        .ok()
                        .flatten()
                        .map(|l| (l, true))
                }
                None => None,
            },
        };
        let mut due = Instant::now();
        if let Some((l, send)) = loaded {
            status = l.status();
            meta = l.meta.clone();
            let ranges = Arc::new(l.parsed.ranges);
            current = Some(ranges.clone());
            let age = Duration::from_micros(now_us().saturating_sub(meta.fetched_us));
            due += self.cfg.refresh.saturating_sub(age);
            if send {
                status.next_refresh_us =
                    now_us() + self.cfg.refresh.saturating_sub(age).as_micros() as u64;
                self.send(&status, Some(ranges)).await;
            }
        }
        let mut waiting = Vec::new();
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(due) => {}
                r = refresh.recv() => match r {
                    Some(w) => waiting.push(w),
                    None => return,
                },
            }
            while let Ok(w) = refresh.try_recv() {
                waiting.push(w);
            }
            let new = self.fetch_once(&mut meta, &mut status, &current).await;
            let wait = if status.last_error.is_empty() {
                self.cfg.refresh
            } else {
                self.cfg.refresh.min(RETRY_AFTER)
            };
            due = Instant::now() + wait;
            status.next_refresh_us = now_us() + wait.as_micros() as u64;
            if let Some(n) = &new {
                current = Some(n.clone());
            }
            self.send(&status, new).await;
            // Dropping the senders tells `f2b feeds --refresh` that this feed is done.
            waiting.clear();
        }
    }

    /// Tells the engine and waits until it enforces it.
    async fn send(&self, status: &FetchStatus, ranges: Option<Arc<AddrRanges>>) {
        let update = FeedUpdate {
            name: self.cfg.name.clone(),
            status: status.clone(),
            ranges,
        };
        let _ = self
            .engine
            .call(|ack| Command::Feeds(FeedsCommand::Update(Box::new(update), ack)))
            .await;
    }

    /// One fetch: the status follows; new content (to enforce) is returned.
    async fn fetch_once(
        &self,
        meta: &mut Meta,
        status: &mut FetchStatus,
        current: &Option<Arc<AddrRanges>>,
    ) -> Option<Arc<AddrRanges>> {
        let cfg = &self.cfg;
        let result = match &self.client {
            Ok(client) => fetch::fetch(client, &cfg.source, cfg.max_size, &meta.validators).await,
            Err(e) => Err(FeedError::Http(e.clone())),
        };
        let now = now_us();
        let (bytes, validators) = match result {
            Ok(Fetched::NotModified) => {
                meta.fetched_us = now;
                status.last_fetch_us = now;
                status.last_error.clear();
                self.keep_meta(meta);
                tracing::debug!(feed = %cfg.name, "feed {}: not modified", cfg.name);
                return None;
            }
            Ok(Fetched::Body { bytes, validators }) => (bytes, validators),
            Err(e) => {
                self.failed(status, &e);
                return None;
            }
        };
        let format = cfg.format;
        let body = Arc::new(bytes);
        let b = body.clone();
        let parsed = tokio::task::spawn_blocking(move || parse::parse(format, &b))
            .await
            .unwrap_or_default();
        status.bad_lines = parsed.bad;
        status.bad_examples = parsed.bad_lines.clone();
        if let Err(e) = parse::check(&parsed, body.len(), cfg.max_entries) {
            // A broken upstream must not wipe the list: the previous copy stays.
            self.failed(status, &e);
            return None;
        }
        status.last_fetch_us = now;
        status.last_error.clear();
        status.entries = parsed.entries;
        let changed = current.as_deref() != Some(&parsed.ranges);
        if changed {
            status.last_change_us = now;
            meta.changed_us = now;
        }
        meta.fetched_us = now;
        meta.validators = validators;
        if let Some(c) = &self.cache {
            if let Err(e) = c.store(&cfg.name, meta, &body) {
                warn!(feed = %cfg.name, error = %e, "feed {}: cannot keep its copy in {}: {e}", cfg.name, c.dir().display());
            }
        }
        let (v4, v6) = parsed.entries;
        if parsed.bad > 0 {
            warn!(
                feed = %cfg.name, bad = parsed.bad,
                "feed {}: {} bad line(s) skipped; {}", cfg.name, parsed.bad, parsed.bad_lines.join("; ")
            );
        }
        if !changed {
            return None;
        }
        info!(feed = %cfg.name, v4, v6, "feed {}: {v4} IPv4 and {v6} IPv6 entries from {}", cfg.name, cfg.source);
        Some(Arc::new(parsed.ranges))
    }

    fn failed(&self, status: &mut FetchStatus, e: &FeedError) {
        status.last_error = e.to_string();
        status.fetch_failures += 1;
        warn!(
            feed = %self.cfg.name, error = %e,
            "feed {}: {e}; the previous copy stays enforced", self.cfg.name
        );
    }

    fn keep_meta(&self, meta: &Meta) {
        if let Some(c) = &self.cache {
            if let Err(e) = c.store_meta(&self.cfg.name, meta) {
                warn!(feed = %self.cfg.name, error = %e, "feed {}: cannot update {}: {e}", self.cfg.name, c.dir().display());
            }
        }
    }
}

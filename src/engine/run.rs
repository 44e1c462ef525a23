//! The engine loop: start of day, the `select!` over every input, shutdown.

use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tracing::info;

use super::{Command, Engine, EngineError};
use crate::source::StartAt;

/// How often old history and expired rows are purged.
const PURGE_EVERY: Duration = Duration::from_secs(3600);

impl Engine {
    /// Start: set up the firewall, restore the saved state, start the readers; then serve
    /// until `shutdown` turns true (or, when not following, until the sources' end has been
    /// processed).
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
                self.positions = snap.positions.clone();
            }
            self.restore_snapshot(snap).await;
        }
        // Feeds' last good copies are kept only where the state is.
        let feed_cache =
            (self.opts.store.is_some()).then(|| self.settings.daemon.state_dir.join("feeds"));
        self.start_feeds(feed_cache).await;
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
        // STATUS says when the fleet is disconnected.
        let mut fleet_conn = self.opts.fleet.as_ref().map(|f| f.watch_connected());
        let mut purge =
            tokio::time::interval_at(tokio::time::Instant::now() + PURGE_EVERY, PURGE_EVERY);
        while !self.ended {
            let next_expiry = self.next_expiry_delay();
            let next_retry = self.pending.next_retry();
            tokio::select! {
                biased;
                _ = shutdown.changed() => {
                    if *shutdown.borrow() { break; }
                }
                // Before the sources: a long backlog must not starve the watchdog pings.
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
                _ = sleep_until_opt(next_retry) => self.retry_pending().await,
                _ = sleep_opt(next_expiry) => {
                    let now = self.clock.now();
                    self.expire(now).await;
                }
                _ = purge.tick() => self.purge().await,
                Some(what) = recv_opt(&mut fw_events) => self.firewall_lost(what, &mut fw_events).await,
                _ = changed_opt(&mut fleet_conn) => self.update_status(),
                // Last: a feed's sync goes one bounded step at a time when nothing else waits.
                _ = std::future::ready(()), if self.feeds.has_work() => self.feed_step().await,
            }
        }
        self.routes.stop_reader().await;
        info!(entries = self.entries_read, "engine stopped");
        Ok(())
    }
}

async fn sleep_opt(d: Option<Duration>) {
    match d {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

async fn sleep_until_opt(t: Option<tokio::time::Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

async fn recv_opt(rx: &mut Option<mpsc::UnboundedReceiver<String>>) -> Option<String> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// A change of a watched value; pending forever without one (or once its sender is gone).
async fn changed_opt(w: &mut Option<watch::Receiver<bool>>) {
    let gone = match w {
        Some(rx) => rx.changed().await.is_err(),
        None => true,
    };
    if gone {
        *w = None;
        std::future::pending::<()>().await;
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

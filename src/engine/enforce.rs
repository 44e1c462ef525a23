//! Enforcement: decisions → the firewall; expiry; repair after outside changes; bans the
//! firewall refused (start-of-day restores are in [`super::restore`]).
//!
//! A decision is persisted (with the source position) before the firewall sees it, so that a
//! crash re-derives it. It is announced — journal line, `Banned` signal — only once the
//! firewall accepted it. When the firewall refuses a batch, its bans wait in [`Pending`] and
//! are retried with a growing delay (1 s … 60 s); after [`MAX_ATTEMPTS`] they are rolled back
//! (jail, history, store) and reported as errors, so that nothing claims a ban that is not
//! enforced.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use ipnet::IpNet;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use super::{host_text, now_us, Engine, Event};
use crate::clock::usecs;
use crate::config::{format_duration, BanTime};
use crate::firewall::{Change, Refusal};
use crate::jail::{BanDecision, OriginKind};
use crate::logging::{MSGID_BAN, MSGID_UNBAN};
use crate::store::{Commit, HistoryEntry, StoredBan, Totals};

/// Attempts at enforcing a refused ban before it is rolled back.
pub(super) const MAX_ATTEMPTS: u32 = 8;

/// Ban ends, earliest first (lazy: checked against the jail on pop). An entry is 32 bytes:
/// the jail is a number, its name interned here.
#[derive(Default)]
pub(super) struct Expiries {
    heap: BinaryHeap<Reverse<(u64, IpNet, u32)>>,
    names: Vec<Box<str>>,
}

impl Expiries {
    pub(super) fn push(&mut self, end: u64, jail: &str, net: IpNet) {
        let id = match self.names.iter().position(|n| &**n == jail) {
            Some(i) => i,
            None => {
                self.names.push(jail.into());
                self.names.len() - 1
            }
        };
        self.heap.push(Reverse((end, net, id as u32)));
    }

    /// Room for `n` more (a restore knows how many come).
    pub(super) fn reserve(&mut self, n: usize) {
        self.heap.reserve(n);
    }

    fn peek_end(&self) -> Option<u64> {
        self.heap.peek().map(|Reverse((end, _, _))| *end)
    }

    /// The earliest end, its net and its jail's name.
    fn pop(&mut self) -> Option<(u64, IpNet, &str)> {
        let Reverse((end, net, id)) = self.heap.pop()?;
        Some((end, net, &self.names[id as usize]))
    }
}

/// Bans the firewall has not accepted yet.
#[derive(Default)]
pub(super) struct Pending {
    bans: Vec<BanDecision>,
    attempts: u32,
    next: Option<Instant>,
}

impl Pending {
    pub(super) fn next_retry(&self) -> Option<Instant> {
        self.next
    }

    pub(super) fn len(&self) -> usize {
        self.bans.len()
    }
}

/// A decision as the store keeps it.
pub(super) fn stored(d: &BanDecision) -> StoredBan {
    StoredBan {
        jail: d.jail.clone(),
        net: d.net,
        start_us: d.start_us,
        end_us: d.end_us,
        count: d.count,
        failures: d.failures,
        origin: (&d.origin).into(),
    }
}

/// A decision as the store's history keeps it.
pub(super) fn history_entry(d: &BanDecision) -> HistoryEntry {
    HistoryEntry {
        net: d.net,
        jail: d.jail.clone(),
        t_us: d.start_us,
        origin: (&d.origin).into(),
    }
}

impl Engine {
    /// The firewall change enforcing `d` now, or `None` when the ban is already over (an old
    /// entry replayed).
    fn change_for(d: &BanDecision, now: u64) -> Option<Change> {
        let timeout = match d.end_us {
            None => None,
            Some(end) if end > now => Some(Duration::from_micros(end - now)),
            Some(_) => return None,
        };
        Some(Change::Ban {
            jail: d.jail.clone(),
            net: d.net,
            timeout,
        })
    }

    /// Apply decisions to the firewall in one batch, then announce those it took. Refused
    /// bans wait for a retry when the refusal is transient, and are rolled back when it is
    /// not (see the module docs).
    pub(super) async fn apply_decisions(&mut self, decisions: Vec<BanDecision>) {
        for d in &decisions {
            if let Some(end) = d.end_us {
                self.expiries.push(end, &d.jail, d.net);
            }
        }
        let refused = self.enforce(decisions).await;
        self.handle_refused(refused, true).await;
    }

    /// One firewall batch for `decisions`; announces each one enforced, returns the others
    /// with why the firewall refused them.
    async fn enforce(&mut self, decisions: Vec<BanDecision>) -> Vec<(BanDecision, Refusal)> {
        let now = now_us();
        let mut at = Vec::new();
        let mut changes = Vec::new();
        for (i, d) in decisions.iter().enumerate() {
            if let Some(c) = Self::change_for(d, now) {
                at.push(i);
                changes.push(c);
            }
        }
        let mut refused: Vec<Option<Refusal>> = vec![None; decisions.len()];
        if !changes.is_empty() {
            match self.opts.firewall.apply(changes).await {
                Ok(applied) => {
                    for r in applied.refused {
                        refused[at[r.index]] = Some(r.reason);
                    }
                }
                Err(e) => {
                    let r = Refusal::from_error(&e);
                    for &i in &at {
                        refused[i] = Some(r);
                    }
                }
            }
        }
        let mut out = Vec::new();
        let mut enforced = Vec::new();
        for (d, r) in decisions.into_iter().zip(refused) {
            match r {
                None => {
                    self.announce_ban(&d, now);
                    enforced.push(d);
                }
                Some(r) => out.push((d, r)),
            }
        }
        self.release_ban_notices(&enforced).await;
        out
    }

    /// Bans the firewall refused: transient refusals wait for a retry (`retry`), the others
    /// are rolled back and logged as errors.
    async fn handle_refused(&mut self, refused: Vec<(BanDecision, Refusal)>, retry: bool) {
        if refused.is_empty() {
            return;
        }
        let mut dropped = Vec::new();
        for (d, why) in refused {
            if retry && why.is_transient() {
                warn!(
                    F2B_JAIL = %d.jail, F2B_ADDRESS = %host_text(&d.net), error = %why,
                    "[{}] Ban {} not enforced yet ({why}); retrying", d.jail, host_text(&d.net)
                );
                self.pending.bans.push(d);
            } else {
                error!(
                    F2B_JAIL = %d.jail, F2B_ADDRESS = %host_text(&d.net), error = %why,
                    "[{}] Ban {} refused by the firewall: {why}; it is dropped",
                    d.jail, host_text(&d.net)
                );
                dropped.push(d);
            }
        }
        if !dropped.is_empty() {
            self.roll_back(&dropped).await;
        }
        if !self.pending.bans.is_empty() && self.pending.next.is_none() {
            self.schedule_retry();
        }
        self.update_status();
    }

    fn announce_ban(&self, d: &BanDecision, now: u64) {
        let bt = match d.bantime {
            BanTime::For(x) => format_duration(x),
            BanTime::Forever => "ever".into(),
        };
        let addr = host_text(&d.net);
        let why = if d.origin.counts_as_offence() {
            format!("after {} failures", d.failures)
        } else {
            format!("by {}", d.origin)
        };
        let narrowed = match &d.narrowed_from {
            Some(p) => format!(" (not {p}: it holds an ignored or own address)"),
            None => String::new(),
        };
        info!(
            F2B_JAIL = %d.jail, F2B_ADDRESS = %addr, F2B_EVENT = "ban",
            F2B_FAILURES = d.failures, F2B_BAN_COUNT = d.count, F2B_ORIGIN = %d.origin,
            MESSAGE_ID = MSGID_BAN,
            "[{}] Ban {addr} for {bt} {why}{narrowed}", d.jail
        );
        for l in &d.lines {
            debug!(F2B_JAIL = %d.jail, "[{}]   {}", d.jail, l);
        }
        if d.end_us.is_none_or(|e| e > now) {
            self.handle.publish(Event::Banned {
                jail: d.jail.clone(),
                address: addr,
                until_us: d.end_us.unwrap_or(0),
            });
        }
    }

    fn schedule_retry(&mut self) {
        let secs = 1u64 << self.pending.attempts.min(6);
        self.pending.next = Some(Instant::now() + Duration::from_secs(secs.min(60)));
    }

    /// Try the pending bans again; roll them back after [`MAX_ATTEMPTS`].
    pub(super) async fn retry_pending(&mut self) {
        self.pending.next = None;
        let bans = std::mem::take(&mut self.pending.bans);
        // Only bans the jails still hold (an unban or reload may have lifted them).
        let bans: Vec<BanDecision> = bans
            .into_iter()
            .filter(|d| {
                self.jails
                    .get(&d.jail)
                    .and_then(|j| j.ban_of(&d.net))
                    .is_some_and(|b| b.start_us == d.start_us)
            })
            .collect();
        if bans.is_empty() {
            self.pending.attempts = 0;
            self.update_status();
            return;
        }
        self.pending.attempts += 1;
        let n = bans.len();
        let refused = self.enforce(bans).await;
        if refused.len() < n {
            info!(
                bans = n - refused.len(),
                "firewall: {} pending ban(s) enforced",
                n - refused.len()
            );
        }
        let retry = self.pending.attempts < MAX_ATTEMPTS;
        if refused.is_empty() || !retry {
            self.pending.attempts = 0;
        }
        self.handle_refused(refused, retry).await;
        if self.pending.bans.is_empty() {
            self.pending.attempts = 0;
        } else if self.pending.next.is_none() {
            self.schedule_retry();
        }
        self.update_status();
    }

    /// Undo decisions the firewall never accepted: the jails forget them, the history and
    /// the store too.
    pub(super) async fn roll_back(&mut self, bans: &[BanDecision]) {
        let mut c = Commit::default();
        for d in bans {
            if let Some(j) = self.jails.get_mut(&d.jail) {
                if j.ban_of(&d.net).is_some_and(|b| b.start_us == d.start_us) {
                    j.unban(&d.net);
                    j.counters.total_banned = j.counters.total_banned.saturating_sub(1);
                }
            }
            self.history.forget(d.net, &d.jail, d.start_us);
            c.bans_removed.push((d.jail.clone(), d.net));
            c.history_removed.push(history_entry(d));
        }
        self.drop_ban_notices(bans, &mut c);
        self.persist(c, true).await;
    }

    /// Lift bans whose end is at or before `now`.
    pub(super) async fn expire(&mut self, now: u64) {
        let mut changes = Vec::new();
        let mut lifted = Vec::new();
        while let Some(end) = self.expiries.peek_end() {
            if end > now {
                break;
            }
            let (end, net, jail) = self.expiries.pop().expect("peeked");
            let Some(j) = self.jails.get_mut(jail) else {
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
                jail: jail.to_string(),
                net,
            });
            lifted.push((jail.to_string(), net));
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
            // The kernel lifts timed elements by itself; only a permanent ban can stay.
            warn!(error = %e, "firewall: unban failed: {e}");
        }
        for (jail, net) in lifted {
            self.announce_unban(&jail, &net);
            self.notify_unban(&jail, net, "local").await;
        }
        self.update_status();
    }

    /// Delay until the next ban ends, in wall-clock mode.
    pub(super) fn next_expiry_delay(&self) -> Option<Duration> {
        let end = self.expiries.peek_end()?;
        if !self.clock.live() {
            // Journal clock: expiries are handled as batches advance it.
            return None;
        }
        Some(Duration::from_micros(end.saturating_sub(now_us())))
    }

    /// Write a commit; errors are logged (the firewall still gets the change: protection
    /// first, and a restart re-derives from the journal what the store missed).
    pub(super) async fn persist(&mut self, c: Commit, durable: bool) {
        let Some(store) = &self.opts.store else {
            return;
        };
        let res = if durable {
            store.commit_durable(c).await
        } else {
            store.commit(c).await
        };
        match res {
            Ok(()) => {}
            Err(e) if e.is_damage() => self.recover_store(e).await,
            Err(e) => warn!(error = %e, "state store: {e}"),
        }
    }

    /// The database was found damaged while running: move it aside (the store does), start a
    /// fresh one with everything the engine holds, and say so loudly (journal and STATUS).
    async fn recover_store(&mut self, cause: crate::store::StoreError) {
        let Some(store) = self.opts.store.clone() else {
            return;
        };
        let r = match store.recover(cause).await {
            Ok(r) => r,
            Err(e) => {
                error!(error = %e, "state store damaged and could not be replaced: {e}");
                return;
            }
        };
        error!(F2B_STATE_MOVED_TO = %r.moved_to.display(), "{r}");
        self.opts.notice = Some(format!(
            "the state database was damaged and moved to {}",
            r.moved_to.display()
        ));
        let mut c = Commit {
            cursor: self.cursor.clone(),
            ..Default::default()
        };
        for j in self.jails.values() {
            for (net, b) in j.bans() {
                c.bans_added.push(StoredBan {
                    jail: j.name().to_string(),
                    net: *net,
                    start_us: b.start_us,
                    end_us: b.end_us,
                    count: b.count,
                    failures: b.failures,
                    origin: match b.origin {
                        OriginKind::Manual => crate::store::Origin::Manual { uid: None },
                        OriginKind::Import => crate::store::Origin::Import,
                        OriginKind::Peer => match self.peers.owner(j.name(), *net) {
                            Some(h) => crate::store::Origin::Peer(h.clone()),
                            None => crate::store::Origin::Local,
                        },
                        OriginKind::Local => crate::store::Origin::Local,
                    },
                });
            }
            for (net, times) in j.windows() {
                c.sync_window(j.name(), *net, times.iter().copied(), times.len());
            }
            c.totals_added.push((
                j.name().to_string(),
                Totals {
                    failed: j.counters.total_failed,
                    banned: j.counters.total_banned,
                    ignored: j.counters.ignored,
                },
            ));
        }
        for (net, p) in self.history.since(0) {
            c.history_added.push(HistoryEntry {
                net: *net,
                jail: p.jail.to_string(),
                t_us: p.t,
                origin: if p.offence {
                    crate::store::Origin::Local
                } else {
                    crate::store::Origin::Manual { uid: None }
                },
            });
        }
        if let Err(e) = store.commit_durable(c).await {
            error!(error = %e, "state store: writing the state into the new database failed: {e}");
        }
        self.update_status();
    }

    /// Forget old history and lapsed windows (hourly).
    pub(super) async fn purge(&mut self) {
        let now = now_us();
        self.history.purge(now);
        let t = self.clock.journal_us.max(now);
        for j in self.jails.values_mut() {
            j.prune(t);
        }
        if let Some(store) = &self.opts.store {
            match store
                .purge(usecs(self.settings.daemon.history_max_age), now)
                .await
            {
                Ok(st) => debug!(?st, "purged old state"),
                Err(e) => warn!(error = %e, "state store purge: {e}"),
            }
        }
    }

    /// The firewall lost (some of) our objects: set the table up again and re-apply every
    /// active ban with its remaining time, in one batch. Bursts of events are coalesced.
    pub(super) async fn firewall_lost(
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
            warn!(error = %e, "firewall setup after an outside change failed: {e}");
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
            Err(e) => warn!(error = %e, "firewall: re-applying {n} ban(s) failed: {e}"),
        }
        self.restore_feeds().await;
    }

    /// Every jail's counters now (to persist what a batch added to them).
    pub(super) fn counters(&self) -> Vec<(String, crate::jail::Counters)> {
        (self.jails.values())
            .map(|j| (j.name().to_string(), j.counters))
            .collect()
    }

    /// What each jail's counters gained since `before` (jails without change left out).
    pub(super) fn totals_since(
        &self,
        before: &[(String, crate::jail::Counters)],
    ) -> Vec<(String, Totals)> {
        (self.jails.values())
            .filter_map(|j| {
                let b = (before.iter())
                    .find(|(n, _)| n == j.name())
                    .map_or_else(Default::default, |(_, c)| *c);
                let t = Totals {
                    failed: j.counters.total_failed.saturating_sub(b.total_failed),
                    banned: j.counters.total_banned.saturating_sub(b.total_banned),
                    ignored: j.counters.ignored.saturating_sub(b.ignored),
                };
                (!t.is_zero()).then(|| (j.name().to_string(), t))
            })
            .collect()
    }

    pub(super) fn announce_unban(&self, jail: &str, net: &IpNet) {
        info!(
            F2B_JAIL = %jail, F2B_ADDRESS = %host_text(net), F2B_EVENT = "unban", MESSAGE_ID = MSGID_UNBAN,
            "[{jail}] Unban {}", host_text(net)
        );
        self.handle.publish(Event::Unbanned {
            jail: jail.to_string(),
            address: host_text(net),
        });
    }
}

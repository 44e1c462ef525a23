//! Source batches → jails → ban decisions.

use std::collections::BTreeMap;

use ipnet::IpNet;
use tracing::{debug, info, warn};

use super::{Engine, EngineError, Event};
use crate::config::JailSource;
use crate::jail::{BanDecision, Verdict};
use crate::source::{Batch, SourceEvent};
use crate::store::Commit;

impl Engine {
    /// Handle one reader event; `Ok(true)` = stop the loop.
    pub(super) async fn source_event(&mut self, ev: SourceEvent) -> Result<bool, EngineError> {
        match ev {
            SourceEvent::Batch(b) => self.batch(b).await,
            SourceEvent::CaughtUp(kind) => {
                if !self.routes.caught_up(kind) || self.clock.caught_up {
                    return Ok(false);
                }
                info!(entries = self.entries_read, "backlog processed");
                self.clock.caught_up = true;
                let now = self.clock.now();
                self.expire(now).await;
                self.update_status();
            }
            SourceEvent::Ended(kind) => {
                if self.routes.ended(kind) {
                    self.ended = true;
                    return Ok(true);
                }
            }
            SourceEvent::Warning(w) => warn!("{w}"),
            SourceEvent::Failed(e) => return Err(EngineError::Reader(e)),
        }
        Ok(false)
    }

    async fn batch(&mut self, b: Batch) {
        self.entries_read += b.entries;
        let names: Vec<String> = self
            .routes
            .names(b.kind, b.generation)
            .map(<[String]>::to_vec)
            .unwrap_or_default();
        for (i, st) in b.stats.iter().enumerate() {
            if let Some(name) = names.get(i) {
                self.stats.entry(name.clone()).or_default().add(st);
            }
        }
        let mut decisions = Vec::new();
        let mut touched = Vec::new();
        // Windows that counted failures in this batch: how many each.
        let mut windows: BTreeMap<(String, IpNet), usize> = BTreeMap::new();
        let totals_before = self.opts.store.as_ref().map(|_| self.counters());
        for hit in b.hits.iter().filter(|h| h.counts) {
            let Some(name) = names.get(hit.route) else {
                continue;
            };
            let Some(jail) = self.jails.get_mut(name) else {
                continue;
            };
            // Bans expire by journal time while the backlog is read.
            if !self.clock.caught_up && hit.time_us > self.clock.journal_us {
                self.clock.journal_us = hit.time_us;
            }
            let verdict = jail.failure(hit.addr, hit.time_us, &hit.message, &self.history);
            if matches!(verdict, Verdict::Counted { .. } | Verdict::Ban(_)) {
                *windows
                    .entry((name.clone(), jail.key(hit.addr)))
                    .or_default() += 1;
            }
            match &verdict {
                Verdict::Counted { failures, needed } => debug!(
                    F2B_JAIL = %name, F2B_ADDRESS = %hit.addr,
                    "[{name}] Found {} ({failures}/{needed})", hit.addr
                ),
                Verdict::Ignored => {
                    debug!(F2B_JAIL = %name, F2B_ADDRESS = %hit.addr, "[{name}] Ignore {}", hit.addr)
                }
                Verdict::Unbannable(why) => warn!(
                    F2B_JAIL = %name, F2B_ADDRESS = %hit.addr,
                    "[{name}] Ignore {}: {why} is never banned (a malformed or forged log line?)",
                    hit.addr
                ),
                Verdict::AlreadyBanned => {
                    debug!(F2B_JAIL = %name, F2B_ADDRESS = %hit.addr, "[{name}] {} already banned", hit.addr)
                }
                Verdict::Ban(_) => {}
            }
            if jail.counters.evicted > 0 && !jail.evicted_logged {
                jail.evicted_logged = true;
                warn!(
                    F2B_JAIL = %name,
                    "[{name}] tracking {} addresses (max_tracked): the oldest failure windows are \
                     dropped from now on (counted in f2b_jail_windows_evicted_total)",
                    jail.max_tracked
                );
            }
            if let Verdict::Ban(d) = verdict {
                decisions.push(d);
            }
            touched.push(name.clone());
        }
        if b.last_time_us > self.clock.journal_us {
            self.clock.journal_us = b.last_time_us;
        }
        // An attack is under way while the failures just counted are in their windows: until
        // then the reader does not wait for journald's (coalesced) change notifications.
        if self.clock.live() && !touched.is_empty() {
            let findtime = (touched.iter())
                .filter_map(|n| self.jails.get(n))
                .map(|j| crate::clock::usecs(j.cfg.findtime))
                .max()
                .unwrap_or(0);
            self.routes
                .urgent_until(crate::clock::now_us().saturating_add(findtime));
        }
        if b.cursor.is_some() {
            self.cursor = b.cursor;
        }
        for (key, value) in &b.positions {
            match value {
                Some(v) => self.positions.insert(key.clone(), v.clone()),
                None => self.positions.remove(key),
            };
        }
        self.recidive(&mut decisions, &mut windows);
        // Persist decisions, what changed in the windows, the totals, the messages about the
        // bans, the cursor and the other sources' positions in one transaction before enforcing.
        let mut c = Commit::default();
        self.hold_ban_notices(&decisions, &mut c);
        if self.opts.store.is_some() && (b.entries > 0 || !b.positions.is_empty()) {
            c.cursor = self.cursor.clone();
            c.positions = b.positions;
            c.totals_added = self.totals_since(totals_before.as_deref().unwrap_or_default());
            for ((jail, net), new) in windows {
                match self.jails.get(&jail).and_then(|j| j.window_of(&net)) {
                    Some(times) => c.sync_window(&jail, net, times.iter().copied(), new),
                    None => c.windows_cleared.push((jail, net)),
                }
            }
            for d in &decisions {
                c.bans_added.push(super::enforce::stored(d));
                c.history_added.push(super::enforce::history_entry(d));
            }
            self.persist(c, false).await;
        }
        if !decisions.is_empty() {
            self.apply_decisions(decisions).await;
        }
        if !self.clock.live() {
            let now = self.clock.now();
            self.expire(now).await;
        }
        if !touched.is_empty() {
            touched.sort();
            touched.dedup();
            self.handle.publish(Event::CountersChanged(touched));
            self.update_status();
        }
    }

    /// Bans feed the jails that watch bans (recidive over f2b's own history): each decision
    /// is recorded in the history, and may make a watching jail decide a ban too.
    fn recidive(
        &mut self,
        decisions: &mut Vec<BanDecision>,
        windows: &mut BTreeMap<(String, IpNet), usize>,
    ) {
        let mut i = 0;
        while i < decisions.len() {
            let d = decisions[i].clone();
            self.history
                .record(d.net, &d.jail, d.start_us, d.origin.counts_as_offence());
            for w in self.watchers_of(&d.jail) {
                let jail = self.jails.get_mut(&w).expect("watcher exists");
                let line = format!("[{}] Ban {}", d.jail, d.net);
                let verdict = jail.failure(d.net.addr(), d.start_us, &line, &self.history);
                if matches!(verdict, Verdict::Counted { .. } | Verdict::Ban(_)) {
                    *windows
                        .entry((w.clone(), jail.key(d.net.addr())))
                        .or_default() += 1;
                }
                if let Verdict::Ban(rd) = verdict {
                    decisions.push(rd);
                }
            }
            i += 1;
        }
    }

    /// The jails that watch `jail`'s bans.
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
}

//! Start of day: the stored state back into the engine — history, open windows, totals,
//! active bans (into the jails, the expiry heap and, a batch at a time, the firewall), the
//! outbox — and the memory that took handed back.

use std::time::Duration;

use ipnet::IpNet;
use tracing::{debug, error, info};

use super::{host_text, now_us, Engine};
use crate::config::format_duration;
use crate::firewall::Change;
use crate::jail::{ActiveBan, OriginKind};
use crate::logging::MSGID_RESTORE;
use crate::store::{Commit, JailId, Snapshot};

/// Bans re-applied to the firewall per batch at start: what a restore needs beside the bans
/// themselves stays small (a change carries its jail's name, the firewall plans and encodes a
/// batch at a time), whatever their number. Measured with 100,000 bans (benches/memory.rs):
/// 2,048 held least memory after the restore at no more CPU; much smaller batches cost CPU
/// (each plans against the whole prefix index).
const RESTORE_BATCH: usize = 2048;

/// Restored bans on their way to the firewall, a batch at a time.
#[derive(Default)]
struct Batch {
    changes: Vec<Change>,
    /// Sent so far.
    applied: usize,
    /// Of those, not enforced.
    failed: usize,
    /// The last error.
    error: Option<String>,
}

impl Engine {
    /// Bring back bans, history, open windows and totals; re-apply the bans to the firewall
    /// a batch at a time ([`RESTORE_BATCH`]).
    pub(super) async fn restore_snapshot(&mut self, mut snap: Snapshot) {
        let started = std::time::Instant::now();
        let mut snap_outbox = std::mem::take(&mut snap.outbox);
        let outbox_next_id = snap.outbox_next_id;
        for h in std::mem::take(&mut snap.history) {
            let offence = !matches!(
                h.origin,
                crate::store::Origin::Manual { .. } | crate::store::Origin::Peer(_)
            );
            self.history
                .record(h.net, snap.jail(h.jail), h.t_us, offence);
        }
        for w in std::mem::take(&mut snap.windows) {
            if let Some(j) = self.jails.get_mut(snap.jail(w.jail)) {
                j.restore_window(w.net, w.times);
            }
        }
        for (id, t) in &snap.totals {
            if let Some(j) = self.jails.get_mut(snap.jail(*id)) {
                j.counters.total_failed += t.failed;
                j.counters.total_banned += t.banned;
                j.counters.ignored += t.ignored;
            }
        }
        // The tables get their final size at once: no copies while they grow.
        let mut per_jail = vec![0usize; snap.jails.len()];
        for b in &snap.bans {
            per_jail[b.jail.0 as usize] += 1;
        }
        for (id, n) in per_jail.into_iter().enumerate() {
            if let Some(j) = self.jails.get_mut(snap.jail(JailId(id as u32))) {
                j.reserve_bans(n);
            }
        }
        self.expiries.reserve(snap.bans.len());
        let mut batch = Batch::default();
        let mut gone = Vec::new();
        let now = now_us();
        for b in std::mem::take(&mut snap.bans) {
            let ban = ActiveBan {
                start_us: b.start_us,
                end_us: b.end_us,
                count: b.count,
                failures: b.failures,
                origin: OriginKind::from(&b.origin),
            };
            let jail = snap.jail(b.jail);
            match self.restore(jail, b.net, ban, now) {
                Some(c) => {
                    if let crate::store::Origin::Peer(host) = &b.origin {
                        self.peers.set(jail, b.net, host);
                    }
                    batch.changes.push(c)
                }
                None => gone.push((jail.to_string(), b.net)),
            }
            if batch.changes.len() >= RESTORE_BATCH {
                self.apply_restored(&mut batch).await;
            }
        }
        drop(snap);
        self.apply_restored(&mut batch).await;
        let n = batch.applied;
        if let Some(e) = batch.error {
            error!(error = %e, "firewall: restoring {} of {n} ban(s) failed: {e}", batch.failed);
        }
        let outbox = std::mem::take(&mut snap_outbox);
        self.restore_outbox(outbox, outbox_next_id).await;
        if !gone.is_empty() {
            // Bans of jails no longer enabled, or already over.
            let c = Commit {
                bans_removed: gone,
                ..Default::default()
            };
            self.persist(c, false).await;
        }
        // What the restore needed on its way (the loaded rows, the firewall's plans and
        // messages) was freed on several threads; give those pages back.
        super::heap::release_freed();
        info!(
            bans = n,
            history = self.history.len(),
            "restored {n} ban(s) in {:.1} ms",
            started.elapsed().as_secs_f64() * 1e3
        );
    }

    /// Send the restored bans collected in `batch` to the firewall.
    async fn apply_restored(&self, batch: &mut Batch) {
        if batch.changes.is_empty() {
            return;
        }
        let changes = std::mem::replace(&mut batch.changes, Vec::with_capacity(RESTORE_BATCH));
        let n = changes.len();
        batch.applied += n;
        if let Err(e) = self.opts.firewall.apply_all(changes).await {
            batch.failed += match &e {
                crate::firewall::FirewallError::Refused(r) => r.len(),
                _ => n,
            };
            batch.error = Some(e.to_string());
        }
    }

    /// Restore a ban known from the store (start of day): keeps the jail's view and the kernel
    /// in step. Returns the firewall change, if the ban is still running.
    fn restore(&mut self, jail: &str, net: IpNet, ban: ActiveBan, now: u64) -> Option<Change> {
        let j = self.jails.get_mut(jail)?;
        if !ban.active_at(now) {
            return None;
        }
        j.restore_ban(net, ban);
        if let Some(end) = ban.end_us {
            self.expiries.push(end, jail, net);
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
}

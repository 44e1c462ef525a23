//! What the engine tells: jail info, metrics snapshots, systemd STATUS.

use super::{host_text, now_us, BanInfo, CommandError, Engine, FilterMetrics, JailInfo};
use super::{JailSettings, MetricsSnapshot};
use crate::config::BanTime;

impl Engine {
    /// STATUS= for systemd: jails, bans, failures, and anything wrong.
    pub(super) fn update_status(&self) {
        let Some(tx) = &self.opts.status else { return };
        let banned: usize = self.jails.values().map(|j| j.banned_count()).sum();
        let failures: u64 = self.jails.values().map(|j| j.counters.total_failed).sum();
        let n = self.jails.len();
        let mut s = match &self.opts.notice {
            Some(w) => format!("WARNING: {w}; "),
            None => String::new(),
        };
        s += &format!(
            "{n} jail{}, {banned} banned, {failures} failure{}",
            if n == 1 { "" } else { "s" },
            if failures == 1 { "" } else { "s" },
        );
        if !self.clock.caught_up {
            s.push_str(" (reading backlog)");
        }
        if let Some(f) = &self.opts.fleet {
            if !f.connected() {
                s.push_str("; fleet disconnected (shared bans wait)");
            }
        }
        let pending = self.pending.len();
        if pending > 0 {
            s.push_str(&format!(
                "; {pending} ban{} NOT enforced yet (firewall refused, retrying)",
                if pending == 1 { "" } else { "s" }
            ));
        }
        tx.send_if_modified(|old| {
            if *old != s {
                *old = s;
                true
            } else {
                false
            }
        });
    }

    /// A jail's settings and counters (enabled or not).
    pub(super) fn jail_info(&self, name: &str) -> Option<JailInfo> {
        let cfg = self.settings.jail(name)?;
        let live = self.jails.get(name);
        let cfg = live.map(|j| &j.cfg).unwrap_or(cfg);
        Some(JailInfo {
            name: name.to_string(),
            enabled: live.is_some(),
            filter: match cfg.source.filter_mode() {
                Some((filter, Some(m))) => format!("{filter}:{m}"),
                Some((filter, None)) => filter.to_string(),
                None => String::new(),
            },
            maxretry: cfg.maxretry,
            findtime_s: cfg.findtime.as_secs(),
            bantime_s: match cfg.bantime {
                BanTime::For(d) => d.as_secs() as i64,
                BanTime::Forever => -1,
            },
            currently_failed: live.map_or(0, |j| j.failing_count() as u32),
            current_failures: live.map_or(0, |j| j.failures_in_windows()),
            total_failed: live.map_or(0, |j| j.counters.total_failed),
            currently_banned: live.map_or(0, |j| j.banned_count() as u32),
            total_banned: live.map_or(0, |j| j.counters.total_banned),
            settings: JailSettings::from(cfg),
        })
    }

    /// Bans of one jail (or all), sorted by (jail, address), paged.
    pub(super) fn list_bans(
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
        let mut all: Vec<BanInfo> = (self.jails.values())
            .filter(|j| jail.is_none_or(|x| x == j.name()))
            .flat_map(|j| {
                j.bans().map(|(net, b)| BanInfo {
                    jail: j.name().to_string(),
                    address: host_text(net),
                    start_us: b.start_us,
                    end_us: b.end_us.unwrap_or(0),
                    count: b.count,
                    failures: b.failures,
                    origin: self.origin_text(j.name(), net, b.origin),
                })
            })
            .collect();
        all.sort_by(|a, b| (&a.jail, &a.address).cmp(&(&b.jail, &b.address)));
        let total = all.len();
        let page = all.into_iter().skip(offset).take(limit).collect();
        Ok((page, total))
    }

    /// The numbers for the Prometheus endpoint.
    pub(super) fn metrics(&self) -> MetricsSnapshot {
        let jails: Vec<JailInfo> = (self.settings.jails.iter())
            .filter_map(|j| self.jail_info(&j.name))
            .collect();
        // Every running journal jail, with zeros until its first entry (no missing series).
        let filters = (jails.iter())
            .filter(|j| j.enabled && !j.filter.is_empty())
            .map(|j| {
                let st = self.stats.get(&j.name).cloned().unwrap_or_default();
                FilterMetrics {
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
        MetricsSnapshot {
            jails,
            filters,
            windows_evicted: (self.jails.values())
                .map(|j| (j.name().to_string(), j.counters.evicted))
                .collect(),
            pending_bans: self.pending.len() as u64,
            entries_read: self.entries_read,
            journal_us: self.clock.journal_us,
            caught_up: self.clock.caught_up,
            now_us: now_us(),
            files: (self.routes.files_view())
                .map(|v| v.files())
                .unwrap_or_default(),
            feeds: self.feed_infos(),
            fleet: self.opts.fleet.as_ref().map(|f| f.snapshot()),
            actions: self.action_status(),
        }
    }
}

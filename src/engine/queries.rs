//! Read-only questions answered from the engine's state ([`Query`]): what the Cockpit page
//! needs beyond the jail properties and ban lists (the ban history of a time range for its
//! chart, a jail's journal matches, what the firewall enforces). Nothing here changes state.

use super::api::{ActionStatus, CommandError, FirewallState, PastBan, Query};
use super::{host_text, Engine};
use crate::config::JailSource;

impl Engine {
    /// Answer one [`Query`].
    pub(super) fn query(&self, q: Query) {
        match q {
            Query::BanHistory {
                since_us,
                limit,
                reply,
            } => {
                let _ = reply.send(self.ban_history(since_us, limit));
            }
            Query::JournalMatches { jail, reply } => {
                let _ = reply.send(self.journal_matches(&jail));
            }
            Query::LogFiles { jail, reply } => {
                let files = match self.settings.jail(&jail) {
                    None => Err(CommandError::NoSuchJail(jail)),
                    Some(_) => Ok((self.routes.files_view())
                        .map(|v| v.of_jail(&jail))
                        .unwrap_or_default()),
                };
                let _ = reply.send(files);
            }
            Query::Actions(reply) => {
                let _ = reply.send(self.action_status());
            }
            Query::Firewall(reply) => {
                // Listing a large set takes a while: the firewall worker answers, not the loop.
                let fw = self.opts.firewall.clone();
                tokio::spawn(async move {
                    let elements = match fw.list().await {
                        Ok(list) => Ok(u32::try_from(list.len()).unwrap_or(u32::MAX)),
                        Err(e) => Err(e.to_string()),
                    };
                    let _ = reply.send(FirewallState {
                        backend: fw.name().to_string(),
                        elements,
                    });
                });
            }
        }
    }

    /// Every sink of the outbox with its type and counters.
    pub(super) fn action_status(&self) -> Vec<ActionStatus> {
        let Some(o) = &self.opts.outbox else {
            return Vec::new();
        };
        let live = o.sinks();
        (o.stats().snapshot().into_iter())
            .filter(|(name, _)| live.contains(name))
            .map(|(name, stats)| ActionStatus {
                kind: (self.settings.actions.get(&name))
                    .map_or(super::FLEET_SINK, |a| a.type_name())
                    .to_string(),
                name,
                stats,
            })
            .collect()
    }

    /// Recorded bans since `since_us`, oldest first; at most the newest `limit`.
    fn ban_history(&self, since_us: u64, limit: usize) -> Vec<PastBan> {
        let mut out: Vec<PastBan> = self
            .history
            .since(since_us)
            .map(|(net, p)| (p.jail.to_string(), host_text(net), p.t))
            .collect();
        out.sort_by(|a, b| (a.2, &a.0, &a.1).cmp(&(b.2, &b.0, &b.1)));
        if out.len() > limit {
            out.drain(..out.len() - limit);
        }
        out
    }

    /// The journal matches of a configured jail (the running copy when it runs).
    fn journal_matches(&self, jail: &str) -> Result<Vec<String>, CommandError> {
        let cfg = match self.jails.get(jail) {
            Some(j) => &j.cfg,
            None => self
                .settings
                .jail(jail)
                .ok_or_else(|| CommandError::NoSuchJail(jail.to_string()))?,
        };
        Ok(match &cfg.source {
            JailSource::Journal { matches, .. } => matches.iter().map(|m| m.to_string()).collect(),
            JailSource::Bans { .. } | JailSource::Fleet | JailSource::File { .. } => Vec::new(),
        })
    }

    /// Past bans of an address, in the jails that count it (each jail by its own aggregation
    /// unit): (jail, start µs), oldest first.
    pub(super) fn history_of(&self, addr: std::net::IpAddr) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        for j in self.jails.values() {
            let key = j.key(addr);
            for p in self.history.of(&key) {
                if p.jail == j.name() {
                    out.push((p.jail.to_string(), p.t));
                }
            }
        }
        out.sort_by_key(|(_, t)| *t);
        out.dedup();
        out
    }
}

//! Messages for the outbox ([`crate::outbox`]): which sinks hear of a ban or an unban, the
//! rows written with a decision, released once the firewall took it, removed when it never
//! happened.

use std::collections::HashMap;

use ipnet::IpNet;

use super::{host_text, now_us, Engine};
use crate::jail::BanDecision;
use crate::outbox::{Notice, NoticeEvent};
use crate::store::{Commit, OutboxRow};

/// The sink that shares bans with the fleet (issue 17), when configured.
pub const FLEET_SINK: &str = "fleet";

/// Outbox rows written with decisions and not released yet, by (jail, net, ban start).
#[derive(Default)]
pub(super) struct Held {
    rows: HashMap<(String, IpNet, u64), Vec<OutboxRow>>,
    pub(super) next_id: u64,
}

fn key(d: &BanDecision) -> (String, IpNet, u64) {
    (d.jail.clone(), d.net, d.start_us)
}

impl Engine {
    /// The sinks that hear of `jail`'s `event`: its actions that take the event, and the
    /// fleet.
    fn sinks_for(&self, jail: &str, event: NoticeEvent) -> Vec<String> {
        let Some(outbox) = &self.opts.outbox else {
            return Vec::new();
        };
        let mut sinks: Vec<String> = (self.jails.get(jail))
            .map(|j| j.cfg.actions.clone())
            .unwrap_or_default();
        let shared = (self.settings.fleet.as_ref()).is_some_and(|f| f.shares(jail));
        if outbox.has(FLEET_SINK) && shared {
            sinks.push(FLEET_SINK.to_string());
        }
        let takes =
            |s: &String| (self.settings.actions.get(s)).is_none_or(|a| a.events.contains(&event));
        sinks.retain(|s| outbox.has(s) && takes(s));
        sinks.dedup();
        sinks
    }

    fn notice(&self, event: NoticeEvent, d: &BanDecision) -> Notice {
        Notice {
            event,
            jail: d.jail.clone(),
            address: host_text(&d.net),
            prefix: d.net.prefix_len() < d.net.max_prefix_len(),
            failures: d.failures,
            bantime: match d.bantime {
                crate::config::BanTime::For(t) => t.as_secs() as i64,
                crate::config::BanTime::Forever => -1,
            },
            bancount: d.count,
            end_us: d.end_us.unwrap_or(0),
            host: self.opts.host.clone(),
            time_us: d.start_us,
            origin: crate::store::Origin::from(&d.origin).to_string(),
            lines: Notice::bounded_lines(d.lines.iter().map(String::as_str)),
        }
    }

    /// The rows of a notice, one per sink; `share`: the fleet hears of it too (not of what
    /// came from a peer: no echoes).
    fn rows(&mut self, notice: &Notice, ready: bool, share: bool) -> Vec<OutboxRow> {
        let mut sinks = self.sinks_for(&notice.jail, notice.event);
        if !share {
            sinks.retain(|s| s != FLEET_SINK);
        }
        if sinks.is_empty() {
            return Vec::new();
        }
        let payload = match serde_json::to_string(notice) {
            Ok(p) => p,
            Err(_) => return Vec::new(),
        };
        let now = now_us();
        sinks
            .into_iter()
            .map(|sink| {
                self.held.next_id += 1;
                OutboxRow {
                    id: self.held.next_id,
                    sink,
                    created_us: now,
                    ready,
                    attempts: 0,
                    next_us: 0,
                    payload: payload.clone(),
                }
            })
            .collect()
    }

    /// Outbox rows for new ban decisions, written (not ready) with them in `c`.
    pub(super) fn hold_ban_notices(&mut self, decisions: &[BanDecision], c: &mut Commit) {
        if self.opts.outbox.is_none() {
            return;
        }
        for d in decisions {
            let from_peer = matches!(d.origin, crate::jail::Origin::Peer(_));
            if !from_peer {
                // This host's own ban now (a peer's ban of the same net, if any, is over).
                self.peers.clear(&d.jail, d.net);
            }
            let n = self.notice(NoticeEvent::Ban, d);
            let rows = self.rows(&n, false, !from_peer);
            if !rows.is_empty() {
                c.outbox_added.extend(rows.iter().cloned());
                self.held.rows.insert(key(d), rows);
            }
        }
    }

    /// The firewall took these bans: release their messages.
    pub(super) async fn release_ban_notices(&mut self, decisions: &[BanDecision]) {
        let rows: Vec<OutboxRow> = (decisions.iter())
            .filter_map(|d| self.held.rows.remove(&key(d)))
            .flatten()
            .collect();
        self.release(rows).await;
    }

    async fn release(&mut self, mut rows: Vec<OutboxRow>) {
        if rows.is_empty() {
            return;
        }
        let c = Commit {
            outbox_released: rows.iter().map(|r| r.id).collect(),
            ..Default::default()
        };
        self.persist(c, false).await;
        for r in &mut rows {
            r.ready = true;
        }
        if let Some(o) = &self.opts.outbox {
            o.deliver(rows);
        }
    }

    /// These bans never happened: their held messages go (into `c`).
    pub(super) fn drop_ban_notices(&mut self, decisions: &[BanDecision], c: &mut Commit) {
        for d in decisions {
            if let Some(rows) = self.held.rows.remove(&key(d)) {
                c.outbox_removed.extend(rows.iter().map(|r| r.id));
            }
        }
    }

    /// An unban (expiry, by hand, a jail stopped): its message, ready at once.
    pub(super) async fn notify_unban(&mut self, jail: &str, net: IpNet, origin: &str) {
        // The end of a peer's ban is the peer's to tell.
        let from_peer = self.peers.clear(jail, net).is_some();
        if self.opts.outbox.is_none() || self.sinks_for(jail, NoticeEvent::Unban).is_empty() {
            return;
        }
        let n = Notice {
            event: NoticeEvent::Unban,
            jail: jail.to_string(),
            address: host_text(&net),
            prefix: net.prefix_len() < net.max_prefix_len(),
            failures: 0,
            bantime: 0,
            bancount: 0,
            end_us: 0,
            host: self.opts.host.clone(),
            time_us: now_us(),
            origin: origin.to_string(),
            lines: Vec::new(),
        };
        let rows = self.rows(&n, true, !from_peer);
        let c = Commit {
            outbox_added: rows.clone(),
            ..Default::default()
        };
        self.persist(c, false).await;
        if let Some(o) = &self.opts.outbox {
            o.deliver(rows);
        }
    }

    /// At start: messages left in the outbox. Ready ones are delivered; held ones whose ban
    /// is active (restored and enforced) are released, the others removed.
    pub(super) async fn restore_outbox(&mut self, rows: Vec<OutboxRow>, next_id: u64) {
        self.held.next_id = self.held.next_id.max(next_id.saturating_sub(1));
        let mut ready = Vec::new();
        let mut release = Vec::new();
        let mut gone = Vec::new();
        for r in rows {
            if r.ready {
                ready.push(r);
                continue;
            }
            let active = serde_json::from_str::<Notice>(&r.payload)
                .ok()
                .and_then(|n| {
                    let net: IpNet = match n.address.parse::<IpNet>() {
                        Ok(net) => net,
                        Err(_) => IpNet::from(n.address.parse::<std::net::IpAddr>().ok()?),
                    };
                    let j = self.jails.get(&n.jail)?;
                    j.ban_of(&net).map(|b| b.start_us == n.time_us)
                })
                .unwrap_or(false);
            if active {
                release.push(r);
            } else {
                gone.push(r.id);
            }
        }
        if !gone.is_empty() {
            let c = Commit {
                outbox_removed: gone,
                ..Default::default()
            };
            self.persist(c, false).await;
        }
        self.release(release).await;
        if let Some(o) = &self.opts.outbox {
            o.deliver(ready);
        }
    }
}

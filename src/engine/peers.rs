//! Bans of fleet peers ([`Command::Peer`](super::Command::Peer), issue 17).
//!
//! A peer's ban goes into the local jail of the same name, else into the fleet jail
//! (`source = "fleet"`, see [`crate::config::fleet::FLEET_JAIL`]), with its remaining time. The
//! local rules win: the jail's ignoreip, this host's own addresses and addresses that are never
//! banned are refused; a ban already in force here is left as it is. Peer bans carry their
//! origin (`peer:HOST`), are not shared again (no echoes) and are not offences for recidive or
//! incremental ban times. A peer's unban lifts only that peer's ban. The stream sequence is
//! stored in the same transaction as the bans it brought.

use std::collections::HashMap;
use std::sync::Arc;

use ipnet::IpNet;
use tracing::info;

use super::api::{PeerBatch, PeerDecision, PeerEvent, PeerOutcome};
use super::{host_text, now_us, Engine, Event};
use crate::addr::unbannable;
use crate::config::fleet::FLEET_JAIL;
use crate::config::{BanTime, JailSource};
use crate::firewall::Change;
use crate::jail::{ActiveBan, BanDecision, Origin, OriginKind};
use crate::logging::MSGID_UNBAN;
use crate::store::Commit;

/// Why the engine refused a peer decision (labels of f2b_fleet_refused_total).
pub mod reason {
    pub const IGNORED: &str = "ignored";
    pub const OWN: &str = "own";
    pub const UNBANNABLE: &str = "unbannable";
    pub const NO_JAIL: &str = "no_jail";
    pub const EXPIRED: &str = "expired";
}

/// Which peer owns which ban (jail, net): its unbans lift only its own bans, and the end of
/// a peer ban is not shared again.
#[derive(Debug, Default)]
pub(super) struct PeerBans {
    owners: HashMap<(String, IpNet), Arc<str>>,
}

impl PeerBans {
    pub(super) fn set(&mut self, jail: &str, net: IpNet, host: &str) {
        self.owners.insert((jail.to_string(), net), host.into());
    }

    pub(super) fn owner(&self, jail: &str, net: IpNet) -> Option<&Arc<str>> {
        self.owners.get(&(jail.to_string(), net))
    }

    /// The ban is gone (or now belongs to this host): forget its owner.
    pub(super) fn clear(&mut self, jail: &str, net: IpNet) -> Option<Arc<str>> {
        self.owners.remove(&(jail.to_string(), net))
    }
}

impl Engine {
    /// Apply a batch of peer decisions; the reply has one outcome per decision.
    pub(super) async fn peer_batch(&mut self, b: PeerBatch) {
        let mut outcomes = Vec::with_capacity(b.decisions.len());
        let mut bans: Vec<BanDecision> = Vec::new();
        let mut seq_of_bans = 0;
        for d in b.decisions {
            match d.event {
                PeerEvent::Ban => {
                    let o = self.peer_ban(&d);
                    outcomes.push(match o {
                        Ok(Some(ban)) => {
                            bans.push(ban);
                            PeerOutcome::Applied
                        }
                        Ok(None) => PeerOutcome::Unchanged,
                        Err(why) => PeerOutcome::Refused(why),
                    });
                    seq_of_bans = d.seq;
                }
                PeerEvent::Unban => {
                    // Bans before it are enforced first: the firewall sees them in order.
                    if !bans.is_empty() {
                        self.enforce_peer_bans(std::mem::take(&mut bans), &b.position, seq_of_bans)
                            .await;
                    }
                    outcomes.push(self.peer_unban(&d, &b.position).await);
                }
            }
        }
        self.enforce_peer_bans(bans, &b.position, b.last_seq).await;
        let _ = b.reply.send(outcomes);
        self.update_status();
    }

    /// The local jail a peer's decision for `jail` goes into.
    fn peer_jail(&self, jail: &str) -> Option<String> {
        if self.jails.contains_key(jail) {
            return Some(jail.to_string());
        }
        (self.jails.get(FLEET_JAIL))
            .filter(|j| j.cfg.source == JailSource::Fleet)
            .map(|_| FLEET_JAIL.to_string())
    }

    /// Judge and record one peer ban; `Ok(None)` when nothing is to be done.
    fn peer_ban(&mut self, d: &PeerDecision) -> Result<Option<BanDecision>, &'static str> {
        let jail = self.peer_jail(&d.jail).ok_or(reason::NO_JAIL)?;
        let now = now_us();
        let end = d.end_us.unwrap_or(now);
        if end <= now {
            return Err(reason::EXPIRED);
        }
        let single = d.net.prefix_len() == d.net.max_prefix_len();
        if single && unbannable(d.net.addr()).is_some() {
            return Err(reason::UNBANNABLE);
        }
        if (self.self_addrs.iter()).any(|own| crate::addr::overlaps(own, &d.net)) {
            return Err(reason::OWN);
        }
        let j = self.jails.get_mut(&jail).expect("peer_jail checked it");
        if (single && j.is_ignored(d.net.addr())) || (!single && j.protected(&d.net)) {
            return Err(reason::IGNORED);
        }
        if j.ban_of(&d.net).is_some_and(|b| b.active_at(now)) {
            return Ok(None);
        }
        j.restore_ban(
            d.net,
            ActiveBan {
                start_us: now,
                end_us: Some(end),
                count: d.count,
                failures: 0,
                origin: OriginKind::Peer,
            },
        );
        self.peers.set(&jail, d.net, &d.host);
        // Kept in the history (shown), never counted as an offence here.
        self.history.record(d.net, &jail, now, false);
        Ok(Some(BanDecision {
            jail,
            net: d.net,
            start_us: now,
            bantime: BanTime::For(std::time::Duration::from_micros(end - now)),
            end_us: Some(end),
            failures: 0,
            lines: Vec::new(),
            count: d.count,
            origin: Origin::Peer(d.host.clone()),
            narrowed_from: None,
        }))
    }

    /// Store the bans with the stream position, then enforce them.
    async fn enforce_peer_bans(&mut self, bans: Vec<BanDecision>, position: &str, seq: u64) {
        let mut c = Commit {
            positions: vec![(position.to_string(), Some(seq.to_string()))],
            ..Default::default()
        };
        for d in &bans {
            c.bans_added.push(super::enforce::stored(d));
            c.history_added.push(super::enforce::history_entry(d));
        }
        self.hold_ban_notices(&bans, &mut c);
        self.persist(c, false).await;
        if !bans.is_empty() {
            self.apply_decisions(bans).await;
        }
    }

    /// A peer's unban: lifts that peer's ban only.
    async fn peer_unban(&mut self, d: &PeerDecision, position: &str) -> PeerOutcome {
        let mut c = Commit {
            positions: vec![(position.to_string(), Some(d.seq.to_string()))],
            ..Default::default()
        };
        let jail = self.peer_jail(&d.jail);
        let owned = jail
            .as_deref()
            .is_some_and(|j| self.peers.owner(j, d.net).is_some_and(|h| **h == *d.host));
        let Some(jail) = jail.filter(|_| owned) else {
            self.persist(c, false).await;
            return PeerOutcome::Unchanged;
        };
        if let Some(j) = self.jails.get_mut(&jail) {
            j.unban(&d.net);
        }
        c.bans_removed.push((jail.clone(), d.net));
        self.persist(c, false).await;
        let change = Change::Unban {
            jail: jail.clone(),
            net: d.net,
        };
        if let Err(e) = self.opts.firewall.apply_all(vec![change]).await {
            tracing::warn!(error = %e, "firewall: unban failed: {e}");
        }
        let addr = host_text(&d.net);
        info!(
            F2B_JAIL = %jail, F2B_ADDRESS = %addr, F2B_EVENT = "unban",
            F2B_ORIGIN = %format!("peer:{}", d.host), MESSAGE_ID = MSGID_UNBAN,
            "[{jail}] Unban {addr} by peer {}", d.host
        );
        self.handle.publish(Event::Unbanned {
            jail: jail.clone(),
            address: addr,
        });
        self.notify_unban(&jail, d.net, &format!("peer:{}", d.host))
            .await;
        PeerOutcome::Applied
    }

    /// The origin of a ban as clients see it: `peer:HOST` for a peer's.
    pub(super) fn origin_text(&self, jail: &str, net: &IpNet, kind: OriginKind) -> String {
        match (kind, self.peers.owner(jail, *net)) {
            (OriginKind::Peer, Some(h)) => format!("peer:{h}"),
            (k, _) => k.as_str().to_string(),
        }
    }
}

//! The local limits on what a peer may impose, before the engine sees a decision: `accept`,
//! a message's host must be its publisher, prefix caps, a bound on ban length, and a rate per
//! peer. Pure: the clock comes in with each message (the stream's publish time), so a host
//! catching up on old messages is judged by the rate they were published at.

use std::collections::HashMap;

use ipnet::IpNet;

use super::{Decision, Event, Incoming};
use crate::clock::usecs;
use crate::config::FleetConfig;
use crate::engine::api::{PeerDecision, PeerEvent};

/// Why a peer's decision was not applied (the `reason` label of f2b_fleet_refused_total).
pub mod reason {
    /// The message is not a decision.
    pub const MALFORMED: &str = "malformed";
    /// Its host is not the host that published it.
    pub const SPOOFED: &str = "spoofed";
    /// The peer is not in `accept`.
    pub const NOT_ACCEPTED: &str = "not_accepted";
    /// A prefix wider than `max_prefix_v4` / `max_prefix_v6`, or not a valid ban target.
    pub const PREFIX: &str = "prefix";
    /// More than `max_bans_per_peer_per_minute`.
    pub const RATE: &str = "rate";
}

/// The limits, and the rate counters per peer.
pub struct Policy {
    cfg: FleetConfig,
    own: String,
    /// Per peer: (minute of the publish time, bans in it).
    rate: HashMap<String, (u64, u32)>,
}

/// A message judged.
#[derive(Debug, PartialEq)]
pub enum Judged {
    /// Published by this host: nothing to do.
    Own,
    /// For the engine.
    Apply(PeerDecision),
    /// Refused here: the peer (when known) and why.
    Refused(Option<String>, &'static str),
}

impl Policy {
    pub fn new(cfg: FleetConfig, own: String) -> Policy {
        Policy {
            cfg,
            own,
            rate: HashMap::new(),
        }
    }

    /// Judge one message. `rate_exceeded` is told the first refusal of a peer in a minute
    /// (to log it once).
    pub fn judge(&mut self, m: &Incoming, mut rate_exceeded: impl FnMut(&str, u32)) -> Judged {
        let Some(publisher) = Decision::subject_host(&m.subject) else {
            return Judged::Refused(None, reason::MALFORMED);
        };
        if publisher == self.own {
            return Judged::Own;
        }
        let peer = Some(publisher.to_string());
        let Ok(d) = serde_json::from_slice::<Decision>(&m.payload) else {
            return Judged::Refused(peer, reason::MALFORMED);
        };
        if d.host != publisher || d.subject() != m.subject {
            return Judged::Refused(peer, reason::SPOOFED);
        }
        if !self.cfg.accepts(&d.host) {
            return Judged::Refused(peer, reason::NOT_ACCEPTED);
        }
        if crate::config::limits::jail_name(&d.jail).is_err() {
            return Judged::Refused(peer, reason::MALFORMED);
        }
        let Ok(net) = crate::config::limits::ban_target(&d.net) else {
            return Judged::Refused(peer, reason::PREFIX);
        };
        let widest = match net {
            IpNet::V4(_) => self.cfg.max_prefix_v4,
            IpNet::V6(_) => self.cfg.max_prefix_v6,
        };
        if net.prefix_len() < widest {
            return Judged::Refused(peer, reason::PREFIX);
        }
        let event = match d.event {
            Event::Ban => PeerEvent::Ban,
            Event::Unban => PeerEvent::Unban,
        };
        if event == PeerEvent::Ban {
            let minute = m.published_us / 60_000_000;
            let limit = self.cfg.max_bans_per_peer_per_minute;
            let slot = self.rate.entry(d.host.clone()).or_insert((minute, 0));
            if slot.0 != minute {
                *slot = (minute, 0);
            }
            slot.1 += 1;
            if slot.1 > limit {
                if slot.1 == limit + 1 {
                    rate_exceeded(&d.host, limit);
                }
                return Judged::Refused(peer, reason::RATE);
            }
        }
        // Capped: no peer ban lasts longer than max_bantime from when it was published.
        let cap = m.published_us.saturating_add(usecs(self.cfg.max_bantime));
        let end_us = match (event, d.end_us) {
            (PeerEvent::Unban, _) => None,
            (PeerEvent::Ban, 0) => Some(cap),
            (PeerEvent::Ban, e) => Some(e.min(cap)),
        };
        Judged::Apply(PeerDecision {
            seq: m.seq,
            host: d.host,
            event,
            jail: d.jail,
            net,
            end_us,
            count: d.count,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{load_str, LoadOptions};

    fn policy(extra: &str) -> Policy {
        let text = format!("[fleet]\nservers = [\"nats://n:4222\"]\n{extra}");
        let opts = LoadOptions {
            no_system_filters: true,
            ..LoadOptions::default()
        };
        let s = load_str("f.toml", &text, &opts).unwrap();
        Policy::new(s.fleet.unwrap(), "me".into())
    }

    fn msg(seq: u64, host: &str, net: &str, end_us: u64, published_us: u64) -> Incoming {
        let d = Decision {
            event: Event::Ban,
            jail: "sshd".into(),
            net: net.into(),
            end_us,
            count: 1,
            host: host.into(),
            time_us: 1,
        };
        Incoming {
            seq,
            published_us,
            pending: 0,
            subject: d.subject(),
            payload: serde_json::to_vec(&d).unwrap(),
        }
    }

    fn refused(j: Judged) -> &'static str {
        match j {
            Judged::Refused(_, r) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn limits_of_a_peer() {
        let mut p = policy("accept = [\"a\", \"me\"]\nmax_bantime = \"1h\"\n");
        let never = |_: &str, _: u32| panic!("no rate limit here");
        assert_eq!(
            p.judge(&msg(1, "me", "192.0.2.1", 0, 0), never),
            Judged::Own
        );
        assert_eq!(
            refused(p.judge(&msg(2, "b", "192.0.2.1", 0, 0), never)),
            reason::NOT_ACCEPTED
        );
        assert_eq!(
            refused(p.judge(&msg(3, "a", "10.0.0.0/8", 0, 0), never)),
            reason::PREFIX
        );
        assert_eq!(
            refused(p.judge(&msg(3, "a", "0.0.0.0/0", 0, 0), never)),
            reason::PREFIX
        );
        let Judged::Apply(d) = p.judge(&msg(4, "a", "10.1.2.0/24", 0, 1_000), never) else {
            panic!()
        };
        assert_eq!((d.seq, d.end_us), (4, Some(1_000 + 3_600_000_000)));
        let Judged::Apply(d) = p.judge(&msg(5, "a", "10.1.2.3", 2_000, 1_000), never) else {
            panic!()
        };
        assert_eq!(d.end_us, Some(2_000));
        // A message whose payload names another host than its subject.
        let mut m = msg(6, "a", "10.1.2.3", 0, 0);
        m.subject = "f2b.c.sshd.ban".into();
        assert_eq!(refused(p.judge(&m, never)), reason::SPOOFED);
        m.payload = b"{".to_vec();
        assert_eq!(refused(p.judge(&m, never)), reason::MALFORMED);
    }

    #[test]
    fn rate_per_peer_per_minute_of_publish_time() {
        let mut p = policy("max_bans_per_peer_per_minute = 3\n");
        let mut told = Vec::new();
        let mut results = Vec::new();
        for i in 0..5 {
            results.push(
                p.judge(&msg(i, "a", "192.0.2.1", 0, 60_000_000 + i), |h, n| {
                    told.push((h.to_string(), n))
                }),
            );
        }
        assert!(matches!(results[2], Judged::Apply(_)));
        assert_eq!(refused(results.pop().unwrap()), reason::RATE);
        assert_eq!(told, [("a".to_string(), 3)]);
        // Another peer, and the next minute, have their own budget.
        assert!(matches!(
            p.judge(&msg(9, "b", "192.0.2.1", 0, 60_000_000), |_, _| {}),
            Judged::Apply(_)
        ));
        assert!(matches!(
            p.judge(&msg(9, "a", "192.0.2.1", 0, 120_000_000), |_, _| {}),
            Judged::Apply(_)
        ));
    }
}

//! The control plane's commands: ban, unban, start/stop, tunables (and dispatch).

use std::time::Duration;

use ipnet::IpNet;
use tracing::{info, warn};

use super::{host_text, now_us, Command, CommandError, Engine, Event, Tunable};
use crate::config::{BanTime, JailSource};
use crate::firewall::Change;
use crate::jail::{Jail, Origin};
use crate::logging::MSGID_UNBAN;
use crate::store::Commit;

impl Engine {
    /// Answer one command.
    pub(super) async fn command(&mut self, cmd: Command) {
        match cmd {
            Command::ListJails(r) => {
                let v = (self.settings.jails.iter())
                    .filter_map(|j| self.jail_info(&j.name))
                    .collect();
                let _ = r.send(v);
            }
            Command::Jail(name, r) => {
                let _ = r.send(self.jail_info(&name).ok_or(CommandError::NoSuchJail(name)));
            }
            Command::ListBans {
                jail,
                offset,
                limit,
                reply,
            } => {
                let _ = reply.send(self.list_bans(jail.as_deref(), offset, limit));
            }
            Command::Ban {
                jail,
                addr,
                duration,
                force,
                origin,
                reply,
            } => {
                let res = self.manual_ban(&jail, addr, duration, force, origin).await;
                let _ = reply.send(res);
            }
            Command::Unban {
                jail,
                addr,
                origin,
                reply,
            } => {
                let res = self.unban(jail.as_deref(), Some(addr), &origin).await;
                let _ = reply.send(res);
            }
            Command::UnbanAll {
                jail,
                origin,
                reply,
            } => {
                let res = self.unban(jail.as_deref(), None, &origin).await;
                let _ = reply.send(res);
            }
            Command::SetEnabled {
                jail,
                enabled,
                reply,
            } => {
                let res = self.set_enabled(&jail, enabled).await;
                let _ = reply.send(res);
            }
            Command::SetTunable { jail, value, reply } => {
                let _ = reply.send(self.set_tunable(&jail, value));
            }
            Command::Reload { settings, reply } => {
                let res = self.reload(*settings).await;
                let _ = reply.send(res);
            }
            Command::History { addr, reply } => {
                let _ = reply.send(self.history_of(addr));
            }
            Command::Metrics(r) => {
                let _ = r.send(self.metrics());
            }
            Command::Query(q) => self.query(q),
            Command::Feeds(c) => self.feeds_command(c),
            Command::Peer(b) => self.peer_batch(b).await,
            Command::Fleet(r) => {
                let _ = r.send(self.opts.fleet.as_ref().map(|f| f.snapshot()));
            }
        }
    }

    fn set_tunable(&mut self, jail: &str, value: Tunable) -> Result<(), CommandError> {
        let j = self
            .jails
            .get_mut(jail)
            .ok_or_else(|| CommandError::NoSuchJail(jail.to_string()))?;
        match value {
            Tunable::MaxRetry(n) if n >= 1 => j.cfg.maxretry = n,
            Tunable::FindTime(d) if !d.is_zero() => j.cfg.findtime = d,
            Tunable::BanTime(Some(d)) if !d.is_zero() => j.cfg.bantime = BanTime::For(d),
            Tunable::BanTime(None) => j.cfg.bantime = BanTime::Forever,
            other => {
                return Err(CommandError::InvalidArgument(format!(
                    "{other:?}: must be greater than 0"
                )))
            }
        }
        self.handle.publish(Event::JailsChanged);
        Ok(())
    }

    /// A ban by hand. Refused for an ignored or own address, and for a prefix holding one
    /// unless `force`; an error when the firewall refuses it (nothing is then kept).
    async fn manual_ban(
        &mut self,
        jail: &str,
        addr: IpNet,
        duration: Option<Duration>,
        force: bool,
        origin: Origin,
    ) -> Result<u64, CommandError> {
        let j = self
            .jails
            .get_mut(jail)
            .ok_or_else(|| CommandError::NoSuchJail(jail.to_string()))?;
        let addr = addr.trunc();
        if addr.prefix_len() == 0 {
            return Err(CommandError::InvalidAddress(format!(
                "{addr}: refusing to ban a whole address family"
            )));
        }
        let single = addr.prefix_len() == addr.max_prefix_len();
        if single && j.is_ignored(addr.addr()) {
            return Err(CommandError::InvalidArgument(format!(
                "{} is in jail {jail}'s ignoreip (or is this host's own address)",
                addr.addr()
            )));
        }
        if !single && !force && j.protected(&addr) {
            return Err(CommandError::InvalidArgument(format!(
                "{addr} holds an address of jail {jail}'s ignoreip or this host's own address; \
                 ban it anyway with force (`f2b ban --force`, D-Bus BanWithOptions)"
            )));
        }
        // A single address is banned as the jail's aggregation unit.
        let net = if single { j.key(addr.addr()) } else { addr };
        let now = now_us();
        let d = j.manual_ban(net, now, duration.map(BanTime::For), &self.history, origin);
        let end = d.end_us.unwrap_or(0);
        self.history
            .record(d.net, &d.jail, d.start_us, d.origin.counts_as_offence());
        let mut c = Commit {
            bans_added: vec![super::enforce::stored(&d)],
            history_added: vec![super::enforce::history_entry(&d)],
            windows_cleared: vec![(d.jail.clone(), d.net)],
            totals_added: vec![(
                d.jail.clone(),
                crate::store::Totals {
                    banned: 1,
                    ..Default::default()
                },
            )],
            ..Default::default()
        };
        self.hold_ban_notices(std::slice::from_ref(&d), &mut c);
        self.persist(c, true).await;
        if let Some(e) = d.end_us {
            self.expiries.push(e, &d.jail, d.net);
        }
        let change = Change::Ban {
            jail: d.jail.clone(),
            net: d.net,
            timeout: d
                .end_us
                .map(|e| Duration::from_micros(e.saturating_sub(now))),
        };
        let refused = match self.opts.firewall.apply(vec![change]).await {
            Ok(applied) => applied
                .refused
                .into_iter()
                .next()
                .map(|r| r.reason.to_string()),
            Err(e) => Some(e.to_string()),
        };
        if let Some(why) = refused {
            self.roll_back(std::slice::from_ref(&d)).await;
            self.update_status();
            return Err(CommandError::Firewall(why));
        }
        self.announce_manual(&d, now);
        self.release_ban_notices(std::slice::from_ref(&d)).await;
        self.update_status();
        Ok(end)
    }

    fn announce_manual(&self, d: &crate::jail::BanDecision, now: u64) {
        // Same line and signal as a jail's ban, naming who made it.
        let _ = now;
        let bt = match d.bantime {
            BanTime::For(x) => crate::config::format_duration(x),
            BanTime::Forever => "ever".into(),
        };
        info!(
            F2B_JAIL = %d.jail, F2B_ADDRESS = %host_text(&d.net), F2B_EVENT = "ban",
            F2B_ORIGIN = %d.origin, F2B_BAN_COUNT = d.count,
            MESSAGE_ID = crate::logging::MSGID_BAN,
            "[{}] Ban {} for {bt} by {}", d.jail, host_text(&d.net), d.origin
        );
        self.handle.publish(Event::Banned {
            jail: d.jail.clone(),
            address: host_text(&d.net),
            until_us: d.end_us.unwrap_or(0),
        });
    }

    async fn unban(
        &mut self,
        jail: Option<&str>,
        addr: Option<IpNet>,
        origin: &Origin,
    ) -> Result<u32, CommandError> {
        if let Some(j) = jail {
            if !self.jails.contains_key(j) {
                return Err(CommandError::NoSuchJail(j.to_string()));
            }
        }
        let mut lifted = Vec::new();
        for j in self.jails.values_mut() {
            if jail.is_some_and(|x| x != j.name()) {
                continue;
            }
            let targets: Vec<IpNet> = match addr {
                None => j.bans().map(|(n, _)| *n).collect(),
                Some(a) => {
                    let a = a.trunc();
                    j.bans()
                        .map(|(n, _)| *n)
                        .filter(|n| {
                            // The exact ban, or the aggregated unit holding a single address.
                            *n == a
                                || (a.prefix_len() == a.max_prefix_len() && n.contains(&a.addr()))
                        })
                        .collect()
                }
            };
            for n in targets {
                j.unban(&n);
                lifted.push((j.name().to_string(), n));
            }
        }
        if !lifted.is_empty() {
            let c = Commit {
                bans_removed: lifted.clone(),
                ..Default::default()
            };
            self.persist(c, true).await;
        }
        let changes = (lifted.iter())
            .map(|(jail, net)| Change::Unban {
                jail: jail.clone(),
                net: *net,
            })
            .collect();
        self.opts
            .firewall
            .apply_all(changes)
            .await
            .map_err(|e| CommandError::Firewall(e.to_string()))?;
        let by = crate::store::Origin::from(origin).to_string();
        for (j, n) in &lifted {
            self.notify_unban(j, *n, &by).await;
            if *origin == Origin::Local {
                self.announce_unban(j, n);
            } else {
                info!(
                    F2B_JAIL = %j, F2B_ADDRESS = %host_text(n), F2B_EVENT = "unban",
                    F2B_ORIGIN = %origin, MESSAGE_ID = MSGID_UNBAN,
                    "[{j}] Unban {} by {origin}", host_text(n)
                );
                self.handle.publish(Event::Unbanned {
                    jail: j.clone(),
                    address: host_text(n),
                });
            }
        }
        self.update_status();
        Ok(lifted.len() as u32)
    }

    /// Start (enable) or stop (disable) a configured jail at run time.
    async fn set_enabled(&mut self, name: &str, enabled: bool) -> Result<(), CommandError> {
        let cfg = self
            .settings
            .jail(name)
            .cloned()
            .ok_or_else(|| CommandError::NoSuchJail(name.to_string()))?;
        if enabled == self.jails.contains_key(name) {
            return Ok(());
        }
        let mut rules = self.rules();
        if enabled {
            if let JailSource::Journal { .. } | JailSource::File { .. } = &cfg.source {
                if !self.settings.filters.contains_key(name) {
                    return Err(CommandError::InvalidConfig(format!(
                        "jail {name}: its filter was not compiled; reload the configuration"
                    )));
                }
            }
            rules.push(cfg.rules.clone());
        } else {
            rules.retain(|r| r.name != name);
        }
        // The firewall first: when it refuses, nothing changes.
        self.opts
            .firewall
            .setup(rules)
            .await
            .map_err(|e| CommandError::Firewall(e.to_string()))?;
        if enabled {
            self.jails
                .insert(name.to_string(), Jail::new(cfg, &self.self_addrs));
        } else if let Some(j) = self.jails.get(name) {
            let bans: Vec<IpNet> = j.bans().map(|(n, _)| *n).collect();
            for n in bans {
                self.announce_unban(name, &n);
                self.notify_unban(name, n, "local").await;
            }
            self.jails.remove(name);
        }
        self.refresh_routes();
        info!(F2B_JAIL = %name, "[{name}] jail {}", if enabled { "started" } else { "stopped" });
        self.handle.publish(Event::JailsChanged);
        self.update_status();
        if !enabled {
            warn_if_last(self.jails.is_empty());
        }
        Ok(())
    }
}

fn warn_if_last(none_left: bool) {
    if none_left {
        warn!("no jail is running: nothing is protected until a jail is started");
    }
}

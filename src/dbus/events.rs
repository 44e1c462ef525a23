//! Engine events → D-Bus signals.
//!
//! `Banned`/`Unbanned` become signals of the manager at once. Counter and setting changes are
//! coalesced: a jail whose values changed is marked dirty and its `PropertiesChanged` (only the
//! properties whose values differ from the last ones sent) goes out at most once per
//! [`PROPERTIES_INTERVAL`](super::PROPERTIES_INTERVAL), so a ban storm does not flood the bus.
//! `JailsChanged` re-lists the jails and adds or removes jail objects.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use tokio::sync::broadcast::{self, error::RecvError};
use tokio::time::Instant;
use zbus::object_server::SignalEmitter;
use zbus::{Connection, Variant};

use super::jail::JailObject;
use super::manager::Manager;
use super::{jail_path, Shared, JAIL_IFACE, MANAGER_IFACE, MANAGER_PATH, PROPERTIES_INTERVAL};
use crate::engine::{Command, Event, JailInfo};

pub(crate) async fn add_jail(
    conn: &Connection,
    shared: &Arc<Shared>,
    name: &str,
) -> zbus::Result<()> {
    conn.object_server()
        .at(
            jail_path(name),
            JailObject {
                name: name.to_string(),
                shared: shared.clone(),
            },
        )
        .await?;
    Ok(())
}

/// What was last announced for one jail object.
struct JailState {
    last: Option<JailInfo>,
    /// When its values were last fetched (and announced, if they had changed): values are
    /// fetched at most once per interval, so a flood of events costs one engine call per
    /// second per jail.
    last_check: Option<Instant>,
    dirty: bool,
}

struct Forwarder {
    conn: Connection,
    shared: Arc<Shared>,
    jails: BTreeMap<String, JailState>,
}

pub(crate) async fn forward(
    conn: Connection,
    shared: Arc<Shared>,
    mut rx: broadcast::Receiver<Event>,
    initial: Vec<JailInfo>,
) {
    let mut f = Forwarder {
        conn,
        shared,
        jails: initial
            .into_iter()
            .map(|j| {
                (
                    j.name.clone(),
                    JailState {
                        last: Some(j),
                        last_check: None,
                        dirty: false,
                    },
                )
            })
            .collect(),
    };
    loop {
        // Sleep only while some jail waits for its interval: an idle daemon stays idle.
        let deadline = f.next_deadline();
        let wait = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            ev = rx.recv() => match ev {
                Ok(ev) => f.event(ev).await,
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!("D-Bus event forwarder lagged: {n} events were not signalled");
                    f.sync_jails().await;
                }
                Err(RecvError::Closed) => break,
            },
            _ = wait => {}
        }
        f.flush().await;
    }
}

impl Forwarder {
    /// When the earliest dirty jail may be announced.
    fn next_deadline(&self) -> Option<Instant> {
        self.jails
            .values()
            .filter(|s| s.dirty)
            .map(|s| match s.last_check {
                Some(t) => t + PROPERTIES_INTERVAL,
                None => Instant::now(),
            })
            .min()
    }

    fn mark(&mut self, jail: &str) {
        if let Some(s) = self.jails.get_mut(jail) {
            s.dirty = true;
        }
    }

    async fn event(&mut self, ev: Event) {
        let res = match ev {
            Event::Banned {
                jail,
                address,
                until_us,
            } => {
                let r = match self.manager_emitter() {
                    Ok(e) => Manager::banned(&e, &jail, &address, until_us).await,
                    Err(e) => Err(e),
                };
                self.mark(&jail);
                r
            }
            Event::Unbanned { jail, address } => {
                let r = match self.manager_emitter() {
                    Ok(e) => Manager::unbanned(&e, &jail, &address).await,
                    Err(e) => Err(e),
                };
                self.mark(&jail);
                r
            }
            Event::CountersChanged(jails) => {
                for j in jails {
                    self.mark(&j);
                }
                Ok(())
            }
            Event::JailsChanged => {
                self.sync_jails().await;
                Ok(())
            }
        };
        if let Err(e) = res {
            tracing::warn!("cannot emit a D-Bus signal: {e}");
        }
    }

    fn manager_emitter(&self) -> zbus::Result<SignalEmitter<'static>> {
        SignalEmitter::new(&self.conn, MANAGER_PATH).map(|e| e.into_owned())
    }

    /// Re-list the jails: add and remove objects, announce `Jails`, mark every jail dirty.
    async fn sync_jails(&mut self) {
        let list = match self.shared.engine.call(Command::ListJails).await {
            Ok(l) => l,
            Err(e) => {
                tracing::debug!("cannot list jails: {e}");
                return;
            }
        };
        let names: Vec<String> = list.iter().map(|j| j.name.clone()).collect();
        let gone: Vec<String> = self
            .jails
            .keys()
            .filter(|k| !names.contains(k))
            .cloned()
            .collect();
        let server = self.conn.object_server();
        for name in gone {
            if let Err(e) = server.remove::<JailObject, _>(jail_path(&name)).await {
                tracing::warn!(jail = %name, "cannot remove the D-Bus object: {e}");
            }
            self.jails.remove(&name);
        }
        for name in &names {
            if !self.jails.contains_key(name) {
                if let Err(e) = add_jail(&self.conn, &self.shared, name).await {
                    tracing::warn!(jail = %name, "cannot add the D-Bus object: {e}");
                    continue;
                }
                self.jails.insert(
                    name.clone(),
                    JailState {
                        last: None,
                        last_check: None,
                        dirty: false,
                    },
                );
            }
        }
        for s in self.jails.values_mut() {
            s.dirty = true;
        }
        let res = async {
            let emitter = self.manager_emitter()?;
            let mut changed = HashMap::new();
            changed.insert("Jails", Variant::from(names));
            zbus::fdo::Properties::properties_changed(
                &emitter,
                MANAGER_IFACE.try_into()?,
                changed,
                Cow::Borrowed(&[]),
            )
            .await
        }
        .await;
        if let Err(e) = res {
            tracing::warn!("cannot emit PropertiesChanged for Jails: {e}");
        }
    }

    /// Announce the changed properties of every dirty jail whose interval has passed.
    async fn flush(&mut self) {
        let now = Instant::now();
        let due: Vec<String> = self
            .jails
            .iter()
            .filter(|(_, s)| {
                s.dirty
                    && s.last_check
                        .is_none_or(|t| now.duration_since(t) >= PROPERTIES_INTERVAL)
            })
            .map(|(k, _)| k.clone())
            .collect();
        for name in due {
            let n = name.clone();
            let info = match self.shared.engine.call(|r| Command::Jail(n, r)).await {
                Ok(Ok(info)) => info,
                // Gone (a JailsChanged will follow) or shutting down.
                _ => {
                    if let Some(s) = self.jails.get_mut(&name) {
                        s.dirty = false;
                        s.last_check = Some(now);
                    }
                    continue;
                }
            };
            let Some(state) = self.jails.get_mut(&name) else {
                continue;
            };
            state.dirty = false;
            state.last_check = Some(now);
            let changed = changed_properties(state.last.as_ref(), &info);
            state.last = Some(info);
            if changed.is_empty() {
                continue;
            }
            let res = async {
                let emitter = SignalEmitter::new(&self.conn, jail_path(&name))?;
                zbus::fdo::Properties::properties_changed(
                    &emitter,
                    JAIL_IFACE.try_into()?,
                    changed,
                    Cow::Borrowed(&[]),
                )
                .await
            }
            .await;
            if let Err(e) = res {
                tracing::warn!(jail = %name, "cannot emit PropertiesChanged: {e}");
            }
        }
    }
}

/// The `org.f2b.Jail1` properties whose values differ between `old` and `new`.
fn changed_properties(
    old: Option<&JailInfo>,
    new: &JailInfo,
) -> HashMap<&'static str, Variant<'static>> {
    let mut out = HashMap::new();
    macro_rules! cmp {
        ($prop:literal, $field:ident) => {
            if old.is_none_or(|o| o.$field != new.$field) {
                out.insert($prop, Variant::from(new.$field.clone()));
            }
        };
    }
    cmp!("Enabled", enabled);
    cmp!("Filter", filter);
    cmp!("MaxRetry", maxretry);
    cmp!("FindTime", findtime_s);
    cmp!("BanTime", bantime_s);
    cmp!("CurrentlyFailed", currently_failed);
    cmp!("TotalFailed", total_failed);
    cmp!("CurrentlyBanned", currently_banned);
    cmp!("TotalBanned", total_banned);
    cmp!("CurrentFailures", current_failures);
    macro_rules! setting {
        ($prop:literal, $field:ident) => {
            if old.is_none_or(|o| o.settings.$field != new.settings.$field) {
                out.insert($prop, Variant::from(new.settings.$field.clone()));
            }
        };
    }
    setting!("Ports", ports);
    setting!("Protocol", protocol);
    setting!("Action", action);
    setting!("IgnoreIp", ignoreip);
    setting!("IgnoreSelf", ignoreself);
    setting!("Ipv4Prefix", ipv4_prefix);
    setting!("Ipv6Prefix", ipv6_prefix);
    setting!("BanTimeIncrement", bantime_increment);
    setting!("BanTimeFactor", bantime_factor);
    setting!("BanTimeMultipliers", bantime_multipliers);
    setting!("BanTimeMaxTime", bantime_maxtime_s);
    setting!("BanTimeRndTime", bantime_rndtime_s);
    setting!("BanTimeOverallJails", bantime_overalljails);
    setting!("BanTimeFastRebans", bantime_fastrebans);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> JailInfo {
        JailInfo {
            name: "sshd".into(),
            enabled: true,
            filter: "sshd".into(),
            maxretry: 5,
            findtime_s: 600,
            bantime_s: 3600,
            currently_failed: 0,
            current_failures: 0,
            total_failed: 0,
            currently_banned: 0,
            total_banned: 0,
            ..Default::default()
        }
    }

    #[test]
    fn only_changed_values_are_sent() {
        let a = info();
        assert_eq!(changed_properties(None, &a).len(), 24);
        assert!(changed_properties(Some(&a), &a).is_empty());
        let mut b = a.clone();
        b.currently_banned = 3;
        b.total_banned = 3;
        let c = changed_properties(Some(&a), &b);
        let mut keys: Vec<_> = c.keys().copied().collect();
        keys.sort();
        assert_eq!(keys, ["CurrentlyBanned", "TotalBanned"]);
        let mut d = a.clone();
        d.settings.ports = vec!["22".into()];
        let c = changed_properties(Some(&a), &d);
        assert_eq!(c.keys().copied().collect::<Vec<_>>(), ["Ports"]);
    }
}

//! Reload: a new configuration as a pure plan from the running jails, committed only once the
//! firewall accepted the new layout. A refused plan leaves everything as it was.

use std::collections::BTreeMap;

use tracing::info;

use super::{CommandError, Engine, Event, ReloadSummary};
use crate::config::{JailConfig, Settings};
use crate::firewall::JailRules;
use crate::jail::Jail;
use crate::logging::MSGID_RELOAD;
use crate::store::Commit;

/// What a reload will do, computed without touching anything.
#[derive(Debug, Default, PartialEq)]
pub(super) struct ReloadPlan {
    /// Jails that stay, with their new configuration.
    pub keep: Vec<JailConfig>,
    /// Jails that start.
    pub add: Vec<JailConfig>,
    /// Jails that stop (their bans are lifted).
    pub remove: Vec<String>,
    /// The firewall layout of the new set of jails.
    pub rules: Vec<JailRules>,
    pub summary: ReloadSummary,
}

/// Plan the switch from the running jails to `new`'s enabled jails.
pub(super) fn plan(running: &BTreeMap<String, Jail>, new: &Settings) -> ReloadPlan {
    let mut p = ReloadPlan::default();
    for cfg in new.enabled_jails() {
        match running.get(&cfg.name) {
            Some(j) => {
                if j.cfg.same_settings(cfg) {
                    p.summary.unchanged.push(cfg.name.clone());
                } else {
                    p.summary.changed.push(cfg.name.clone());
                }
                p.keep.push(cfg.clone());
            }
            None => {
                p.summary.added.push(cfg.name.clone());
                p.add.push(cfg.clone());
            }
        }
        p.rules.push(cfg.rules.clone());
    }
    for name in running.keys() {
        if new.jail(name).is_none_or(|c| !c.enabled) {
            p.summary.removed.push(name.clone());
            p.remove.push(name.clone());
        }
    }
    p
}

impl Engine {
    /// Switch to `new` (already loaded and validated off the engine loop).
    pub(super) async fn reload(&mut self, new: Settings) -> Result<ReloadSummary, CommandError> {
        let plan = plan(&self.jails, &new);
        // Actions whose configuration changed get new sinks (built before anything changes).
        let actions = match &self.opts.outbox {
            Some(_) => Some(
                crate::action::changes(&self.settings.actions, &new)
                    .map_err(|e| CommandError::InvalidConfig(e.to_string()))?,
            ),
            None => None,
        };
        // The firewall first: when it refuses the layout, nothing has changed yet.
        self.opts
            .firewall
            .setup(plan.rules.clone())
            .await
            .map_err(|e| CommandError::Firewall(e.to_string()))?;
        for cfg in plan.keep {
            if let Some(j) = self.jails.get_mut(&cfg.name) {
                j.reconfigure(cfg, &self.self_addrs);
            }
        }
        for cfg in plan.add {
            self.jails
                .insert(cfg.name.clone(), Jail::new(cfg, &self.self_addrs));
        }
        for name in &plan.remove {
            if let Some(j) = self.jails.remove(name) {
                for (n, _) in j.bans() {
                    self.announce_unban(name, n);
                }
            }
        }
        if let (Some(o), Some(crate::action::Changes { start, gone })) =
            (&self.opts.outbox, actions)
        {
            if !start.is_empty() || !gone.is_empty() {
                let started: Vec<&str> = start.iter().map(|s| s.name()).collect();
                info!(
                    started = started.join(","),
                    removed = gone.join(","),
                    "actions: {} (re)started, {} removed",
                    started.len(),
                    gone.len()
                );
            }
            o.replace(start, &gone);
        }
        self.settings = new;
        self.history.max_age_us = crate::clock::usecs(self.settings.daemon.history_max_age);
        self.reload_feeds().await;
        if !plan.remove.is_empty() {
            let c = Commit {
                jails_removed: plan.remove.clone(),
                ..Default::default()
            };
            self.persist(c, true).await;
        }
        self.refresh_routes();
        let s = &plan.summary;
        info!(
            MESSAGE_ID = MSGID_RELOAD,
            "configuration reloaded: {} added, {} removed, {} changed, {} unchanged",
            s.added.len(),
            s.removed.len(),
            s.changed.len(),
            s.unchanged.len()
        );
        self.handle.publish(Event::JailsChanged);
        self.update_status();
        Ok(plan.summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{load_str, LoadOptions};

    fn settings(text: &str) -> Settings {
        let opts = LoadOptions {
            config: "/nonexistent".into(),
            no_system_filters: true,
            ..LoadOptions::default()
        };
        load_str("t.toml", text, &opts).unwrap()
    }

    fn running(s: &Settings) -> BTreeMap<String, Jail> {
        s.enabled_jails()
            .map(|c| (c.name.clone(), Jail::new(c.clone(), &[])))
            .collect()
    }

    #[test]
    fn plan_sorts_jails_into_kept_added_removed() {
        let old =
            settings("[jail.sshd]\nenabled = true\n[jail.dovecot]\nenabled = true\nmaxretry = 3\n");
        let new = settings(
            "[jail.sshd]\nenabled = true\n[jail.dovecot]\nenabled = true\nmaxretry = 4\n\
             [jail.postfix]\nenabled = true\n[jail.nginx-http-auth]\nenabled = false\n",
        );
        let p = plan(&running(&old), &new);
        assert_eq!(p.summary.unchanged, ["sshd"]);
        assert_eq!(p.summary.changed, ["dovecot"]);
        assert_eq!(p.summary.added, ["postfix"]);
        assert!(p.summary.removed.is_empty());
        assert_eq!(p.rules.len(), 3);
        let p = plan(&running(&new), &old);
        assert_eq!(p.summary.removed, ["postfix"]);
    }

    #[test]
    fn an_identical_configuration_changes_nothing() {
        let s = settings("[jail.sshd]\nenabled = true\nignoreip = [\"10.0.0.0/8\"]\n");
        let p = plan(&running(&s), &s);
        assert_eq!(p.summary.unchanged, ["sshd"]);
        assert!(p.summary.changed.is_empty() && p.add.is_empty() && p.remove.is_empty());
    }
}

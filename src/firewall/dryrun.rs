//! `--firewall none`: logs every change and keeps an in-memory model of the sets.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use ipnet::IpNet;

use super::{Change, Element, Firewall, FirewallError, JailRules};

/// A backend that enforces nothing. It keeps what it was told so `list` answers like the real
/// one (including expiry), which makes engine tests independent of the kernel.
#[derive(Debug, Default)]
pub struct DryRun {
    jails: BTreeMap<String, JailRules>,
    elements: HashMap<(String, IpNet), Option<Instant>>,
}

impl DryRun {
    pub fn new() -> Self {
        Self::default()
    }
}

impl Firewall for DryRun {
    fn name(&self) -> &'static str {
        "dry-run"
    }

    fn setup(&mut self, jails: &[JailRules]) -> Result<(), FirewallError> {
        self.jails = jails.iter().map(|j| (j.name.clone(), j.clone())).collect();
        let jails = &self.jails;
        self.elements
            .retain(|(jail, _), _| jails.contains_key(jail));
        Ok(())
    }

    fn apply(&mut self, changes: &[Change]) -> Result<(), FirewallError> {
        for change in changes {
            match change {
                Change::Ban { jail, net, timeout } => {
                    if !self.jails.contains_key(jail) {
                        return Err(FirewallError::UnknownJail(jail.clone()));
                    }
                    tracing::debug!(F2B_JAIL = %jail, F2B_ADDRESS = %net, ?timeout, "dry-run: would ban");
                    self.elements
                        .insert((jail.clone(), *net), timeout.map(|t| Instant::now() + t));
                }
                Change::Unban { jail, net } => {
                    tracing::debug!(F2B_JAIL = %jail, F2B_ADDRESS = %net, "dry-run: would unban");
                    self.elements.remove(&(jail.clone(), *net));
                }
            }
        }
        Ok(())
    }

    fn list(&mut self) -> Result<Vec<Element>, FirewallError> {
        let now = Instant::now();
        self.elements.retain(|_, exp| exp.is_none_or(|e| e > now));
        let mut out: Vec<Element> = self
            .elements
            .iter()
            .map(|((jail, net), exp)| Element {
                jail: jail.clone(),
                net: *net,
                expires_in: exp.map(|e| {
                    e.saturating_duration_since(now)
                        .max(Duration::from_millis(1))
                }),
            })
            .collect();
        out.sort_by(|a, b| (&a.jail, a.net).cmp(&(&b.jail, b.net)));
        Ok(out)
    }

    fn teardown(&mut self) -> Result<(), FirewallError> {
        self.jails.clear();
        self.elements.clear();
        Ok(())
    }
}

//! `--firewall none`: logs every change and keeps an in-memory model of the sets.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use ipnet::IpNet;

use super::{
    normalize_net, Applied, Change, Element, FeedRules, FeedSync, Firewall, FirewallError,
    JailRules, Refusal, Refused,
};
use crate::feeds::AddrRanges;

/// A backend that enforces nothing. It keeps what it was told so `list` answers like the real
/// one (including expiry), and refuses what the real one refuses before sending (unknown jails,
/// /0 prefixes), which makes engine tests independent of the kernel.
#[derive(Debug, Default)]
pub struct DryRun {
    jails: BTreeMap<String, JailRules>,
    elements: HashMap<(String, IpNet), Option<Instant>>,
    /// What each feed's sets would hold.
    feeds: BTreeMap<String, AddrRanges>,
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

    fn apply(&mut self, changes: &[Change]) -> Result<Applied, FirewallError> {
        let mut applied = Applied::default();
        for (index, change) in changes.iter().enumerate() {
            let (Change::Ban { jail, net, .. } | Change::Unban { jail, net }) = change;
            let normalized = if self.jails.contains_key(jail) {
                normalize_net(net)
            } else {
                Err(Refusal::UnknownJail)
            };
            let net = match normalized {
                Ok(net) => net,
                Err(reason) => {
                    applied.refused.push(Refused {
                        index,
                        change: change.clone(),
                        reason,
                    });
                    continue;
                }
            };
            match change {
                Change::Ban { timeout, .. } => {
                    tracing::debug!(F2B_JAIL = %jail, F2B_ADDRESS = %net, ?timeout, "dry-run: would ban");
                    self.elements
                        .insert((jail.clone(), net), timeout.map(|t| Instant::now() + t));
                }
                Change::Unban { .. } => {
                    tracing::debug!(F2B_JAIL = %jail, F2B_ADDRESS = %net, "dry-run: would unban");
                    self.elements.remove(&(jail.clone(), net));
                }
            }
        }
        Ok(applied)
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
        self.feeds.clear();
        Ok(())
    }

    fn setup_feeds(&mut self, feeds: &[FeedRules]) -> Result<(), FirewallError> {
        self.feeds
            .retain(|name, _| feeds.iter().any(|f| f.name == *name));
        for f in feeds {
            self.feeds.entry(f.name.clone()).or_default();
        }
        Ok(())
    }

    fn sync_feed(
        &mut self,
        name: &str,
        want: &AddrRanges,
        _budget: usize,
    ) -> Result<FeedSync, FirewallError> {
        let held = self
            .feeds
            .get_mut(name)
            .ok_or_else(|| FirewallError::UnknownGroup(format!("feed {name}")))?;
        let (v4, v6) = want.counts();
        tracing::debug!(
            feed = name,
            v4,
            v6,
            "dry-run: feed would hold {v4} + {v6} range(s)"
        );
        let sent = usize::from(held != want) * (v4 + v6);
        *held = want.clone();
        Ok(FeedSync {
            sent,
            remaining: 0,
            held: (v4, v6),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firewall::{Protocol, Verdict};

    #[test]
    fn refuses_like_the_real_backend_and_applies_the_rest() {
        let mut fw = DryRun::new();
        fw.setup(&[JailRules {
            name: "sshd".into(),
            ports: vec![],
            protocol: Protocol::All,
            verdict: Verdict::Drop,
        }])
        .unwrap();
        let ban = |jail: &str, net: &str| Change::Ban {
            jail: jail.into(),
            net: net.parse().unwrap(),
            timeout: None,
        };
        let applied = fw
            .apply(&[
                ban("nope", "192.0.2.1/32"),
                ban("sshd", "0.0.0.0/0"),
                ban("sshd", "192.0.2.7/24"),
            ])
            .unwrap();
        let reasons: Vec<(usize, Refusal)> = applied
            .refused
            .iter()
            .map(|r| (r.index, r.reason))
            .collect();
        assert_eq!(
            reasons,
            vec![(0, Refusal::UnknownJail), (1, Refusal::ZeroPrefix)]
        );
        let listed = fw.list().unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].net, "192.0.2.0/24".parse::<IpNet>().unwrap());
    }
}

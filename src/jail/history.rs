//! Ban history per address: what makes incremental ban times and repeat-offender handling
//! work, and what the store persists across restarts.

use std::collections::HashMap;

use ipnet::IpNet;

/// One past ban.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Past {
    pub jail: std::sync::Arc<str>,
    /// Ban start, µs since the epoch.
    pub t: u64,
    /// Counts as a repeat offence for incremental ban times (not a ban by hand).
    pub offence: bool,
}

/// Past bans: address → bans. Bounded by `purge`.
#[derive(Debug, Default, Clone)]
pub struct History {
    by_net: HashMap<IpNet, Vec<Past>>,
    /// Bans older than this many µs before the asking time are not counted.
    pub max_age_us: u64,
}

impl History {
    pub fn new(max_age_us: u64) -> History {
        History {
            by_net: HashMap::new(),
            max_age_us,
        }
    }

    /// Record a ban of `net` in `jail` at `t`; `offence`: it counts for incremental ban times.
    pub fn record(&mut self, net: IpNet, jail: &str, t: u64, offence: bool) {
        let v = self.by_net.entry(net).or_default();
        let jail: std::sync::Arc<str> = v
            .iter()
            .find(|p| &*p.jail == jail)
            .map(|p| p.jail.clone())
            .unwrap_or_else(|| jail.into());
        v.push(Past { jail, t, offence });
    }

    /// Remove one recorded ban (a ban the firewall refused: it never happened).
    pub fn forget(&mut self, net: IpNet, jail: &str, t: u64) {
        if let Some(v) = self.by_net.get_mut(&net) {
            if let Some(i) = v.iter().rposition(|p| &*p.jail == jail && p.t == t) {
                v.remove(i);
            }
            if v.is_empty() {
                self.by_net.remove(&net);
            }
        }
    }

    /// Repeat offences of `net` (in `jail`, or anywhere when `None`) within max_age before `t`.
    pub fn count_offences(&self, net: IpNet, jail: Option<&str>, t: u64) -> u32 {
        let since = t.saturating_sub(self.max_age_us);
        self.by_net.get(&net).map_or(0, |v| {
            v.iter()
                .filter(|p| {
                    p.offence && p.t >= since && p.t <= t && jail.is_none_or(|x| x == &*p.jail)
                })
                .count() as u32
        })
    }

    /// Every recorded ban of `net`.
    pub fn of(&self, net: &IpNet) -> &[Past] {
        self.by_net.get(net).map(Vec::as_slice).unwrap_or_default()
    }

    /// Bans recorded at or after `since` (µs), any address: (net, ban).
    pub fn since(&self, since: u64) -> impl Iterator<Item = (&IpNet, &Past)> {
        self.by_net
            .iter()
            .flat_map(move |(n, v)| v.iter().filter(move |p| p.t >= since).map(move |p| (n, p)))
    }

    /// Forget bans older than max_age before `now`.
    pub fn purge(&mut self, now: u64) {
        let since = now.saturating_sub(self.max_age_us);
        self.by_net.retain(|_, v| {
            v.retain(|p| p.t >= since);
            !v.is_empty()
        });
    }

    pub fn len(&self) -> usize {
        self.by_net.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.by_net.is_empty()
    }
}

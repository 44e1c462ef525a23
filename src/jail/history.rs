//! Ban history per address: what makes incremental ban times and repeat-offender handling
//! work, and what the store persists across restarts.

use std::collections::HashMap;

use ipnet::IpNet;

/// Past bans: address → (jail, ban start µs). Bounded by `purge`.
#[derive(Debug, Default, Clone)]
pub struct History {
    by_net: HashMap<IpNet, Vec<(std::sync::Arc<str>, u64)>>,
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

    pub fn record(&mut self, net: IpNet, jail: &str, t: u64) {
        let v = self.by_net.entry(net).or_default();
        let jail: std::sync::Arc<str> = v
            .iter()
            .find(|(j, _)| &**j == jail)
            .map(|(j, _)| j.clone())
            .unwrap_or_else(|| jail.into());
        v.push((jail, t));
    }

    /// Bans of `net` (in `jail`, or anywhere when `None`) within max_age before `t`.
    pub fn count(&self, net: IpNet, jail: Option<&str>, t: u64) -> u32 {
        let since = t.saturating_sub(self.max_age_us);
        self.by_net.get(&net).map_or(0, |v| {
            v.iter()
                .filter(|(j, at)| *at >= since && *at <= t && jail.is_none_or(|x| x == &**j))
                .count() as u32
        })
    }

    /// Every recorded ban of `net`: (jail, start µs).
    pub fn of(&self, net: &IpNet) -> Vec<(String, u64)> {
        self.by_net
            .get(net)
            .map(|v| v.iter().map(|(j, t)| (j.to_string(), *t)).collect())
            .unwrap_or_default()
    }

    /// Every recorded ban that started at or after `since_us`: (address, jail, start µs), in
    /// no particular order.
    pub fn since(&self, since_us: u64) -> impl Iterator<Item = (&IpNet, &str, u64)> {
        self.by_net.iter().flat_map(move |(net, v)| {
            v.iter()
                .filter(move |(_, t)| *t >= since_us)
                .map(move |(j, t)| (net, &**j, *t))
        })
    }

    /// Forget bans older than max_age before `now`.
    pub fn purge(&mut self, now: u64) {
        let since = now.saturating_sub(self.max_age_us);
        self.by_net.retain(|_, v| {
            v.retain(|(_, t)| *t >= since);
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

//! Ban history per address: what makes incremental ban times and repeat-offender handling
//! work, and what the store persists across restarts.
//!
//! Kept compact, as it grows with every ban: jail names are interned (an entry holds a
//! number), and an address's first ban is held in the table itself (40 bytes with its key);
//! only addresses banned more than once have a list of the others on the heap.

use std::collections::HashMap;

use ipnet::IpNet;

/// One past ban.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Past<'a> {
    pub jail: &'a str,
    /// Ban start, µs since the epoch.
    pub t: u64,
    /// Counts as a repeat offence for incremental ban times (not a ban by hand).
    pub offence: bool,
}

/// A past ban as held: 16 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    t: u64,
    /// Index into [`History::jails`].
    jail: u32,
    offence: bool,
}

/// Past bans: address → bans. Bounded by `purge`.
#[derive(Debug, Default, Clone)]
pub struct History {
    /// Each address's first ban (of those still held).
    first: HashMap<IpNet, Entry>,
    /// The later bans of addresses banned more than once, in the order recorded.
    more: HashMap<IpNet, Vec<Entry>>,
    /// Interned jail names.
    jails: Vec<Box<str>>,
    /// Bans older than this many µs before the asking time are not counted.
    pub max_age_us: u64,
}

impl History {
    pub fn new(max_age_us: u64) -> History {
        History {
            max_age_us,
            ..History::default()
        }
    }

    fn jail_id(&mut self, jail: &str) -> u32 {
        match self.jails.iter().position(|j| &**j == jail) {
            Some(i) => i as u32,
            None => {
                self.jails.push(jail.into());
                (self.jails.len() - 1) as u32
            }
        }
    }

    fn find_jail(&self, jail: &str) -> Option<u32> {
        self.jails
            .iter()
            .position(|j| &**j == jail)
            .map(|i| i as u32)
    }

    fn past(&self, e: &Entry) -> Past<'_> {
        Past {
            jail: &self.jails[e.jail as usize],
            t: e.t,
            offence: e.offence,
        }
    }

    /// The entries of `net`, in the order recorded.
    fn entries(&self, net: &IpNet) -> impl Iterator<Item = &Entry> {
        let more = self.more.get(net).map(Vec::as_slice).unwrap_or_default();
        self.first.get(net).into_iter().chain(more)
    }

    /// Record a ban of `net` in `jail` at `t`; `offence`: it counts for incremental ban times.
    pub fn record(&mut self, net: IpNet, jail: &str, t: u64, offence: bool) {
        let e = Entry {
            t,
            jail: self.jail_id(jail),
            offence,
        };
        match self.first.entry(net) {
            std::collections::hash_map::Entry::Vacant(v) => drop(v.insert(e)),
            std::collections::hash_map::Entry::Occupied(_) => {
                self.more.entry(net).or_default().push(e)
            }
        }
    }

    /// Remove one recorded ban (a ban the firewall refused: it never happened).
    pub fn forget(&mut self, net: IpNet, jail: &str, t: u64) {
        let Some(jail) = self.find_jail(jail) else {
            return;
        };
        let hit = |e: &Entry| e.jail == jail && e.t == t;
        if let Some(v) = self.more.get_mut(&net) {
            if let Some(i) = v.iter().rposition(hit) {
                v.remove(i);
                if v.is_empty() {
                    self.more.remove(&net);
                }
                return;
            }
        }
        if self.first.get(&net).is_some_and(hit) {
            self.promote(net);
        }
    }

    /// The first entry of `net` is gone: the next one (if any) takes its place.
    fn promote(&mut self, net: IpNet) {
        let next = match self.more.get_mut(&net) {
            Some(v) if !v.is_empty() => Some(v.remove(0)),
            _ => None,
        };
        if self.more.get(&net).is_some_and(Vec::is_empty) {
            self.more.remove(&net);
        }
        match next {
            Some(e) => drop(self.first.insert(net, e)),
            None => drop(self.first.remove(&net)),
        }
    }

    /// Repeat offences of `net` (in `jail`, or anywhere when `None`) within max_age before `t`.
    pub fn count_offences(&self, net: IpNet, jail: Option<&str>, t: u64) -> u32 {
        let jail = match jail {
            Some(name) => match self.find_jail(name) {
                Some(id) => Some(id),
                None => return 0,
            },
            None => None,
        };
        let since = t.saturating_sub(self.max_age_us);
        self.entries(&net)
            .filter(|e| e.offence && e.t >= since && e.t <= t && jail.is_none_or(|j| j == e.jail))
            .count() as u32
    }

    /// Every recorded ban of `net`, in the order recorded.
    pub fn of(&self, net: &IpNet) -> impl Iterator<Item = Past<'_>> {
        self.entries(net).map(|e| self.past(e))
    }

    /// Bans recorded at or after `since` (µs), any address: (net, ban).
    pub fn since(&self, since: u64) -> impl Iterator<Item = (&IpNet, Past<'_>)> {
        let more = (self.more.iter()).flat_map(|(n, v)| v.iter().map(move |e| (n, e)));
        (self.first.iter())
            .chain(more)
            .filter(move |(_, e)| e.t >= since)
            .map(|(n, e)| (n, self.past(e)))
    }

    /// Forget bans older than max_age before `now`.
    pub fn purge(&mut self, now: u64) {
        let since = now.saturating_sub(self.max_age_us);
        self.more.retain(|_, v| {
            v.retain(|e| e.t >= since);
            !v.is_empty()
        });
        let old: Vec<IpNet> = (self.first.iter())
            .filter(|(_, e)| e.t < since)
            .map(|(n, _)| *n)
            .collect();
        for net in old {
            self.promote(net);
        }
    }

    /// Room for `n` more addresses (a restore knows how many come).
    pub fn reserve(&mut self, n: usize) {
        self.first.reserve(n);
    }

    pub fn len(&self) -> usize {
        self.first.len() + self.more.values().map(Vec::len).sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.first.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn an_address_banned_once_costs_one_table_entry() {
        assert!(std::mem::size_of::<(IpNet, Entry)>() <= 40);
        let mut h = History::new(1000);
        for i in 0..100u32 {
            let n = IpNet::from(std::net::IpAddr::from(i.to_be_bytes()));
            h.record(n, "sshd", 10, true);
        }
        assert_eq!(h.len(), 100);
        assert!(h.more.is_empty());
        assert_eq!(h.jails.len(), 1);
    }

    #[test]
    fn record_count_forget_purge() {
        let mut h = History::new(100);
        let a = net("192.0.2.1/32");
        h.record(a, "sshd", 10, true);
        h.record(a, "web", 20, true);
        h.record(a, "sshd", 30, false);
        h.record(a, "sshd", 40, true);
        assert_eq!(h.count_offences(a, Some("sshd"), 50), 2);
        assert_eq!(h.count_offences(a, None, 50), 3);
        assert_eq!(h.count_offences(a, Some("nope"), 50), 0);
        // Only within max_age, and not after the asking time.
        assert_eq!(h.count_offences(a, None, 115), 2);
        assert_eq!(h.count_offences(a, None, 25), 2);
        let seen: Vec<(&str, u64)> = h.of(&a).map(|p| (p.jail, p.t)).collect();
        assert_eq!(
            seen,
            [("sshd", 10), ("web", 20), ("sshd", 30), ("sshd", 40)]
        );
        // Forgetting the first promotes the next.
        h.forget(a, "sshd", 10);
        h.forget(a, "sshd", 40);
        h.forget(a, "nope", 20);
        let seen: Vec<u64> = h.of(&a).map(|p| p.t).collect();
        assert_eq!(seen, [20, 30]);
        assert_eq!(h.since(25).count(), 1);
        h.purge(125);
        assert_eq!(h.of(&a).map(|p| p.t).collect::<Vec<_>>(), [30]);
        h.purge(1000);
        assert!(h.is_empty() && h.more.is_empty());
        assert_eq!(h.len(), 0);
    }
}

//! A jail's active bans, compactly: 56 bytes a ban in the table (the net and a [`Held`]),
//! and the ends of bans lifted by the wall clock that are still ahead in journal time.

use std::collections::HashMap;

use ipnet::IpNet;

use super::{ActiveBan, OriginKind};

/// `end_us` of a permanent ban.
const PERMANENT: u64 = u64::MAX;

/// An [`ActiveBan`] as held: the end is a plain number ([`PERMANENT`] for none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Held {
    start_us: u64,
    end_us: u64,
    count: u32,
    failures: u32,
    origin: OriginKind,
}

impl From<ActiveBan> for Held {
    fn from(b: ActiveBan) -> Held {
        Held {
            start_us: b.start_us,
            // A ban ending at the end of time is as good as permanent.
            end_us: b.end_us.unwrap_or(PERMANENT),
            count: b.count,
            failures: b.failures,
            origin: b.origin,
        }
    }
}

impl From<Held> for ActiveBan {
    fn from(h: Held) -> ActiveBan {
        ActiveBan {
            start_us: h.start_us,
            end_us: (h.end_us != PERMANENT).then_some(h.end_us),
            count: h.count,
            failures: h.failures,
            origin: h.origin,
        }
    }
}

/// Active bans by net, and lifted ones whose end is still ahead in journal time.
#[derive(Debug, Default)]
pub struct Bans {
    held: HashMap<IpNet, Held>,
    /// Bans lifted by the wall clock whose end is still ahead in journal time: a failure
    /// logged while the address was banned is never counted, however late it is processed,
    /// so live runs and replays decide alike. Pruned once journal time passes their end.
    lifted: HashMap<IpNet, u64>,
}

impl Bans {
    pub fn get(&self, net: &IpNet) -> Option<ActiveBan> {
        self.held.get(net).map(|h| ActiveBan::from(*h))
    }

    pub fn insert(&mut self, net: IpNet, ban: ActiveBan) {
        self.held.insert(net, ban.into());
    }

    /// Change the ban of `net`, if there is one.
    pub fn update(&mut self, net: &IpNet, f: impl FnOnce(&mut ActiveBan)) {
        if let Some(h) = self.held.get_mut(net) {
            let mut b = ActiveBan::from(*h);
            f(&mut b);
            *h = b.into();
        }
    }

    pub fn remove(&mut self, net: &IpNet) -> Option<ActiveBan> {
        self.held.remove(net).map(ActiveBan::from)
    }

    /// Lift the ban of `net` because it ended; its end is remembered (see `lifted`).
    pub fn lift(&mut self, net: &IpNet) -> Option<ActiveBan> {
        let b = self.remove(net)?;
        if let Some(end) = b.end_us {
            self.lifted.insert(*net, end);
        }
        Some(b)
    }

    /// Whether a failure of `net` at `t` falls into a ban: an active one, or one lifted
    /// before its journal-time end. Forgets a lifted ban `t` is past.
    pub fn covers(&mut self, net: &IpNet, t: u64) -> bool {
        if self.held.get(net).is_some_and(|h| h.end_us > t) {
            return true;
        }
        match self.lifted.get(net) {
            Some(&end) if t < end => true,
            Some(_) => {
                self.lifted.remove(net);
                false
            }
            None => false,
        }
    }

    /// Remove and return the bans whose end is at or before `t` (their ends are remembered).
    pub fn expire(&mut self, t: u64) -> Vec<(IpNet, ActiveBan)> {
        let mut out = Vec::new();
        self.held.retain(|net, h| {
            if h.end_us > t {
                true
            } else {
                out.push((*net, ActiveBan::from(*h)));
                false
            }
        });
        for (net, b) in &out {
            if let Some(end) = b.end_us {
                self.lifted.insert(*net, end);
            }
        }
        out
    }

    /// Forget lifted bans whose end is at or before `t`.
    pub fn prune(&mut self, t: u64) {
        self.lifted.retain(|_, end| *end > t);
    }

    pub fn iter(&self) -> impl Iterator<Item = (&IpNet, ActiveBan)> {
        self.held.iter().map(|(n, h)| (n, ActiveBan::from(*h)))
    }

    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// Room for `n` more bans (a restore knows how many come).
    pub fn reserve(&mut self, n: usize) {
        self.held.reserve(n);
    }

    /// The earliest end of an active ban.
    pub fn next_end(&self) -> Option<u64> {
        (self.held.values())
            .map(|h| h.end_us)
            .filter(|&e| e != PERMANENT)
            .min()
    }

    /// Lifted bans remembered.
    #[cfg(test)]
    pub fn lifted_len(&self) -> usize {
        self.lifted.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_ban_is_small_and_round_trips() {
        assert!(std::mem::size_of::<(IpNet, Held)>() <= 56);
        let mut b = Bans::default();
        let net: IpNet = "192.0.2.1/32".parse().unwrap();
        for end in [Some(5), None] {
            let ban = ActiveBan {
                start_us: 1,
                end_us: end,
                count: 3,
                failures: 4,
                origin: OriginKind::Import,
            };
            b.insert(net, ban);
            assert_eq!(b.get(&net), Some(ban));
        }
        assert_eq!(b.next_end(), None);
    }

    #[test]
    fn lifted_bans_cover_until_their_end_then_are_pruned() {
        let mut b = Bans::default();
        let net: IpNet = "192.0.2.1/32".parse().unwrap();
        b.insert(
            net,
            ActiveBan {
                start_us: 0,
                end_us: Some(100),
                count: 1,
                failures: 1,
                origin: OriginKind::Local,
            },
        );
        assert!(b.covers(&net, 50));
        assert!(b.lift(&net).is_some());
        assert!(b.covers(&net, 99));
        b.prune(99);
        assert_eq!(b.lifted_len(), 1);
        b.prune(100);
        assert_eq!(b.lifted_len(), 0);
        assert!(!b.covers(&net, 99));
    }
}

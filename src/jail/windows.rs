//! Failure windows: per address (or prefix), the times of its failures within findtime.
//!
//! A window is what a distributed attack multiplies (one window per attacking address), so it
//! is kept small: a window holding one failure is its key and one time, 40 bytes in the table
//! (about 50 with the table's slack); only a second failure moves the times to the heap. The
//! matched lines are not here but in the jail's bounded ring ([`super::lines`]).
//!
//! The number of windows is bounded ([`Windows::make_room`]): at the cap, the windows whose
//! latest failure is oldest are dropped, a sixteenth of them at a time, so that the cost of
//! choosing them (one pass over the table) is shared by the many windows opened after.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};

use ipnet::IpNet;

/// The failure times of one window, in the order they were counted (oldest first when the
/// entries came in time order). Never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Times {
    /// One failure: the common case under a distributed attack, without a heap allocation.
    One(u64),
    /// Two or more.
    Many(Box<VecDeque<u64>>),
}

impl Times {
    /// Failures counted.
    pub fn len(&self) -> usize {
        match self {
            Times::One(_) => 1,
            Times::Many(d) => d.len(),
        }
    }

    /// Never true (a window holds at least one failure); for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The times, oldest first.
    pub fn iter(&self) -> TimesIter<'_> {
        let (a, b) = match self {
            Times::One(t) => (std::slice::from_ref(t), &[][..]),
            Times::Many(d) => d.as_slices(),
        };
        TimesIter {
            a: a.iter(),
            b: b.iter(),
        }
    }

    /// The failure counted last.
    pub fn newest(&self) -> u64 {
        match self {
            Times::One(t) => *t,
            Times::Many(d) => d.back().copied().unwrap_or(0),
        }
    }

    /// Count a failure at `t`: failures `findtime` or more older than it leave the window.
    /// Returns the failures now in the window.
    fn push(&mut self, t: u64, findtime: u64) -> u32 {
        let lapsed = |old: u64| t.saturating_sub(old) >= findtime;
        match self {
            Times::One(old) if lapsed(*old) => {
                *old = t;
                1
            }
            Times::One(old) => {
                *self = Times::Many(Box::new(VecDeque::from([*old, t])));
                2
            }
            Times::Many(d) => {
                while d.front().is_some_and(|&old| lapsed(old)) {
                    d.pop_front();
                }
                if d.is_empty() {
                    *self = Times::One(t);
                    return 1;
                }
                d.push_back(t);
                d.len() as u32
            }
        }
    }

    /// The times of a restored window (`None` if there are none).
    fn from_vec(times: Vec<u64>) -> Option<Times> {
        match times.len() {
            0 => None,
            1 => Some(Times::One(times[0])),
            _ => Some(Times::Many(Box::new(times.into()))),
        }
    }
}

/// Iterator over a window's times ([`Times::iter`]): double-ended and of known length, as
/// the store's incremental window writes need.
#[derive(Debug, Clone)]
pub struct TimesIter<'a> {
    a: std::slice::Iter<'a, u64>,
    b: std::slice::Iter<'a, u64>,
}

impl<'a> Iterator for TimesIter<'a> {
    type Item = &'a u64;

    fn next(&mut self) -> Option<&'a u64> {
        self.a.next().or_else(|| self.b.next())
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.a.len() + self.b.len();
        (n, Some(n))
    }
}

impl DoubleEndedIterator for TimesIter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.b.next_back().or_else(|| self.a.next_back())
    }
}

impl ExactSizeIterator for TimesIter<'_> {}

/// The open windows of one jail.
#[derive(Debug, Default)]
pub struct Windows {
    map: HashMap<IpNet, Times>,
}

/// At the cap, this fraction of the windows is dropped at once (1/16).
const EVICT_SHIFT: u32 = 4;

impl Windows {
    /// Count a failure of `key` at `t`; returns the failures now in its window, and whether
    /// the window was opened by it.
    pub fn count(&mut self, key: IpNet, t: u64, findtime: u64) -> (u32, bool) {
        match self.map.entry(key) {
            Entry::Occupied(mut o) => (o.get_mut().push(t, findtime), false),
            Entry::Vacant(v) => {
                v.insert(Times::One(t));
                (1, true)
            }
        }
    }

    pub fn get(&self, key: &IpNet) -> Option<&Times> {
        self.map.get(key)
    }

    pub fn contains(&self, key: &IpNet) -> bool {
        self.map.contains_key(key)
    }

    pub fn remove(&mut self, key: &IpNet) -> Option<Times> {
        self.map.remove(key)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&IpNet, &Times)> {
        self.map.iter()
    }

    /// Failures in all windows.
    pub fn failures(&self) -> u64 {
        self.map.values().map(|w| w.len() as u64).sum()
    }

    /// Put back a window known from the store; replaces what `key` had. An empty one is not
    /// kept.
    pub fn restore(&mut self, key: IpNet, times: Vec<u64>) {
        match Times::from_vec(times) {
            Some(w) => drop(self.map.insert(key, w)),
            None => drop(self.map.remove(&key)),
        }
    }

    /// Drop windows whose newest failure is `findtime` or more before `t`.
    pub fn prune(&mut self, t: u64, findtime: u64) {
        self.map
            .retain(|_, w| t.saturating_sub(w.newest()) < findtime);
    }

    /// Make room for one more window under the cap `max`: when `max` windows (or more) are
    /// open, drop those whose latest failure is oldest, a sixteenth of them (at least one, and
    /// enough to get below the cap). Returns how many were dropped.
    pub fn make_room(&mut self, max: usize) -> usize {
        let max = max.max(1);
        let len = self.map.len();
        if len < max {
            return 0;
        }
        let n = (len >> EVICT_SHIFT).max(len + 1 - max).min(len);
        let mut newest: Vec<u64> = self.map.values().map(Times::newest).collect();
        let (_, &mut cut, _) = newest.select_nth_unstable(n - 1);
        drop(newest);
        // Everything older than the cut goes; of the windows at the cut, as many as needed.
        let older = self.map.values().filter(|w| w.newest() < cut).count();
        let mut at_cut = n - older;
        self.map.retain(|_, w| {
            let t = w.newest();
            if t < cut {
                false
            } else if t == cut && at_cut > 0 {
                at_cut -= 1;
                false
            } else {
                true
            }
        });
        len - self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(i: u32) -> IpNet {
        IpNet::from(std::net::IpAddr::V4(std::net::Ipv4Addr::from(i)))
    }

    #[test]
    fn a_window_of_one_failure_is_small() {
        assert_eq!(std::mem::size_of::<Times>(), 16);
        assert!(std::mem::size_of::<(IpNet, Times)>() <= 40);
    }

    #[test]
    fn times_slide_and_iterate_both_ways() {
        let mut w = Windows::default();
        assert_eq!(w.count(net(1), 10, 100), (1, true));
        assert_eq!(w.count(net(1), 20, 100), (2, false));
        assert_eq!(w.count(net(1), 30, 100), (3, false));
        // 10 is 100 older than 110: it leaves.
        assert_eq!(w.count(net(1), 110, 100), (3, false));
        let t = w.get(&net(1)).unwrap();
        assert_eq!(t.iter().copied().collect::<Vec<_>>(), [20, 30, 110]);
        assert_eq!(t.iter().rev().copied().collect::<Vec<_>>(), [110, 30, 20]);
        assert_eq!(t.iter().len(), 3);
        // All lapsed: back to one failure, inline.
        assert_eq!(w.count(net(1), 1000, 100), (1, false));
        assert_eq!(w.get(&net(1)), Some(&Times::One(1000)));
        assert_eq!(w.failures(), 1);
    }

    #[test]
    fn the_cap_drops_the_least_recently_failing_windows() {
        let mut w = Windows::default();
        for i in 0..64 {
            w.count(net(i), u64::from(1000 - i), 10_000);
        }
        // Net 0 failed last; the windows of nets 60–63 failed longest ago.
        assert_eq!(w.make_room(100), 0);
        assert_eq!(w.make_room(64), 4, "a sixteenth of 64");
        assert_eq!(w.len(), 60);
        assert!((60..64).all(|i| !w.contains(&net(i))));
        assert!(w.contains(&net(0)) && w.contains(&net(59)));
        // Enough to get below a lower cap, at least.
        assert_eq!(w.make_room(10), 51);
        assert_eq!(w.len(), 9);
        assert!(w.contains(&net(0)) && w.contains(&net(8)));
        // Ties at the cut: exactly as many as needed go.
        let mut w = Windows::default();
        for i in 0..32 {
            w.count(net(i), 7, 10_000);
        }
        assert_eq!(w.make_room(32), 2);
        assert_eq!(w.len(), 30);
    }

    #[test]
    fn restore_and_prune() {
        let mut w = Windows::default();
        w.restore(net(1), vec![5, 6, 7]);
        w.restore(net(2), vec![50]);
        w.restore(net(3), vec![]);
        assert_eq!(w.len(), 2);
        assert_eq!(w.failures(), 4);
        w.prune(100, 60);
        assert_eq!(w.len(), 1);
        assert_eq!(w.get(&net(2)), Some(&Times::One(50)));
    }
}

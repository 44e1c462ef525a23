//! What the backend knows about the elements of its sets, kept small.
//!
//! - Host sets: address → expiry in a hash map (16 bytes per IPv4 ban, 24 per IPv6 ban, plus
//!   the table's slack): enough to tell whether a ban must replace an element (delete + add:
//!   an add of an existing element fails with EEXIST) or whether an unban has anything to
//!   delete (a delete of a missing element fails with ENOENT).
//! - Interval sets: the ranges the kernel holds (never overlapping) and, separately, the
//!   prefixes f2b was asked to ban, which may nest: the kernel holds the outermost one, and
//!   lifting it brings back the nested ones still wanted.
//!
//! The index is rebuilt from the kernel at setup and corrected from the kernel's answers (an
//! element somebody else removed or added shows up as ENOENT/EEXIST). Its clock counts
//! milliseconds from the backend's start; expiries computed from our send time are never later
//! than the kernel's, so "expired here" means "gone there, or within a few milliseconds".

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use ipnet::IpNet;

use super::layout::{key_value, SetKind, Span};
use super::wire::{ElemInfo, NFT_SET_ELEM_INTERVAL_END};

/// Two expiries this close are the same ban (a restored ban is not re-sent).
pub const TOLERANCE_MS: u64 = 1000;

/// Milliseconds since the backend started.
#[derive(Debug, Clone, Copy)]
pub struct Clock(Instant);

impl Clock {
    pub fn new() -> Clock {
        Clock(Instant::now())
    }
    pub fn now(&self) -> u64 {
        self.at(Instant::now())
    }
    /// `instant` on this clock.
    pub fn at(&self, instant: Instant) -> u64 {
        let ms = instant.saturating_duration_since(self.0).as_millis();
        u64::try_from(ms).unwrap_or(u64::MAX - 2)
    }
}

/// When an element expires, on the [`Clock`]; [`Expiry::NEVER`] for permanent ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Expiry(pub u64);

impl Expiry {
    pub const NEVER: Expiry = Expiry(u64::MAX);
    /// Present, expiry unknown (an element somebody else added): never "the same ban".
    pub const UNKNOWN: Expiry = Expiry(u64::MAX - 1);

    /// A ban made at `now` for `timeout` (`None` = permanent; at least 1 ms).
    pub fn after(now: u64, timeout: Option<Duration>) -> Expiry {
        match timeout {
            None => Expiry::NEVER,
            Some(t) => {
                let ms = u64::try_from(t.as_millis()).unwrap_or(u64::MAX).max(1);
                Expiry(now.saturating_add(ms).min(u64::MAX - 2))
            }
        }
    }
    /// Still there at `now`?
    pub fn live(self, now: u64) -> bool {
        self.0 > now
    }
    /// The timeout to send at `now` (`None` = permanent; zero would mean "no timeout").
    pub fn timeout_ms(self, now: u64) -> Option<u64> {
        (self != Expiry::NEVER).then(|| self.0.saturating_sub(now).max(1))
    }
    /// Time left at `now` (`None` = permanent).
    pub fn remaining(self, now: u64) -> Option<Duration> {
        (self != Expiry::NEVER).then(|| Duration::from_millis(self.0.saturating_sub(now)))
    }
    /// The same ban, give or take [`TOLERANCE_MS`]?
    pub fn close_to(self, other: Expiry) -> bool {
        if self == Expiry::UNKNOWN || other == Expiry::UNKNOWN {
            return false;
        }
        match (self == Expiry::NEVER, other == Expiry::NEVER) {
            (true, true) => true,
            (false, false) => self.0.abs_diff(other.0) <= TOLERANCE_MS,
            _ => false,
        }
    }
}

/// The kernel's ranges of an interval set (first → (last, expiry)), and the prefixes f2b was
/// asked to ban in it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ranges {
    pub kernel: BTreeMap<u128, (u128, Expiry)>,
    pub wanted: BTreeMap<IpNet, Expiry>,
}

impl Ranges {
    /// Kernel ranges that overlap `span`, in order.
    pub fn overlapping(&self, span: Span) -> impl Iterator<Item = (Span, Expiry)> + '_ {
        let before = self
            .kernel
            .range(..span.first)
            .next_back()
            .filter(|(_, (last, _))| *last >= span.first);
        before
            .into_iter()
            .chain(self.kernel.range(span.first..=span.last))
            .map(|(&first, &(last, exp))| (Span { first, last }, exp))
    }
}

/// What one set holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Elems {
    V4(HashMap<u32, Expiry>),
    V6(HashMap<[u8; 16], Expiry>),
    Ranges(Ranges),
}

impl Elems {
    pub fn empty(kind: SetKind) -> Elems {
        match kind {
            _ if kind.is_interval() => Elems::Ranges(Ranges::default()),
            SetKind::V6 => Elems::V6(HashMap::new()),
            _ => Elems::V4(HashMap::new()),
        }
    }

    /// The expiry of host `key`, if the index has it.
    pub fn host(&self, key: u128) -> Option<Expiry> {
        match self {
            Elems::V4(m) => m.get(&(key as u32)).copied(),
            Elems::V6(m) => m.get(&key.to_be_bytes()).copied(),
            Elems::Ranges(_) => None,
        }
    }

    /// Records host `key` as present until `exp`, or absent.
    pub fn set_host(&mut self, key: u128, exp: Option<Expiry>) {
        match (self, exp) {
            (Elems::V4(m), Some(e)) => drop(m.insert(key as u32, e)),
            (Elems::V4(m), None) => drop(m.remove(&(key as u32))),
            (Elems::V6(m), Some(e)) => drop(m.insert(key.to_be_bytes(), e)),
            (Elems::V6(m), None) => drop(m.remove(&key.to_be_bytes())),
            (Elems::Ranges(_), _) => {}
        }
    }

    /// The elements as the kernel reported them ([`decode`]d) replace what the index knew
    /// (the wanted prefixes of an interval set stay).
    pub fn load(&mut self, decoded: &[(Span, Expiry)]) {
        match self {
            Elems::V4(m) => {
                m.clear();
                m.extend(decoded.iter().map(|(s, e)| (s.first as u32, *e)));
            }
            Elems::V6(m) => {
                m.clear();
                m.extend(decoded.iter().map(|(s, e)| (s.first.to_be_bytes(), *e)));
            }
            Elems::Ranges(r) => {
                r.kernel = decoded
                    .iter()
                    .map(|(s, e)| (s.first, (s.last, *e)))
                    .collect();
            }
        }
    }
}

/// Every f2b set the backend knows, by name.
#[derive(Debug, Default)]
pub struct Index {
    pub sets: HashMap<String, Elems>,
}

/// Elements as dumped, each with the time its answer was received → (addresses, expiry).
/// Interval sets are reassembled from their start and end elements (`nft` may add ranges that
/// are no prefix).
pub fn decode(kind: SetKind, elems: &[(u64, ElemInfo)]) -> Vec<(Span, Expiry)> {
    // The kernel reports the time left when it wrote the answer, just before we received it.
    let expiry = |(at, e): &(u64, ElemInfo)| match (e.expiration, e.timeout) {
        (Some(ms), _) => Expiry(at + ms),
        (None, Some(t)) if t > 0 => Expiry(*at),
        _ => Expiry::NEVER,
    };
    let value = |(_, e): &(u64, ElemInfo)| {
        key_value(&e.key).filter(|_| e.key.len() as u32 == kind.key_len())
    };
    let is_end = |(_, e): &(u64, ElemInfo)| e.flags & NFT_SET_ELEM_INTERVAL_END != 0;
    if !kind.is_interval() {
        return elems
            .iter()
            .filter(|e| !is_end(e))
            .filter_map(|e| {
                let v = value(e)?;
                Some((Span { first: v, last: v }, expiry(e)))
            })
            .collect();
    }
    let mut sorted: Vec<(u128, bool, Expiry)> = elems
        .iter()
        .filter_map(|e| Some((value(e)?, is_end(e), expiry(e))))
        .collect();
    // At the same key an end (of the range before) sorts before a start.
    sorted.sort_by_key(|&(k, end, _)| (k, !end));
    let mut out = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let (first, end, exp) = sorted[i];
        i += 1;
        if end {
            continue; // orphan end (e.g. nft's leading "0 end" element)
        }
        let last = match sorted.get(i) {
            Some(&(k, true, _)) => {
                i += 1;
                k.checked_sub(1)
            }
            Some(&(k, false, _)) => k.checked_sub(1),
            None => Some(kind.max_key()), // open-ended
        };
        if let Some(last) = last.filter(|&l| l >= first) {
            out.push((Span { first, last }, exp));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An element received at time 1000 with `left` ms to go.
    fn elem(key: &[u8], end: bool, left: Option<u64>) -> (u64, ElemInfo) {
        let e = ElemInfo {
            key: key.to_vec(),
            flags: if end { NFT_SET_ELEM_INTERVAL_END } else { 0 },
            timeout: left,
            expiration: left,
            open: false,
        };
        (1000, e)
    }

    fn span(s: &str) -> Span {
        Span::of(&s.parse().unwrap())
    }

    #[test]
    fn intervals_are_reassembled() {
        let got = decode(
            SetKind::N4,
            &[
                elem(&[0, 0, 0, 0], true, None), // nft's leading end element
                elem(&[10, 0, 0, 0], false, Some(5000)),
                elem(&[10, 0, 1, 0], true, None),
                elem(&[20, 0, 0, 0], false, None),
                elem(&[20, 0, 0, 3], true, None), // 20.0.0.0-20.0.0.2: no prefix
                elem(&[255, 255, 255, 0], false, Some(7)), // open-ended
            ],
        );
        assert_eq!(
            got,
            vec![
                (span("10.0.0.0/24"), Expiry(6000)),
                (
                    Span {
                        first: 0x1400_0000,
                        last: 0x1400_0002
                    },
                    Expiry::NEVER
                ),
                (span("255.255.255.0/24"), Expiry(1007)),
            ]
        );
        let v6 = |s: &str| s.parse::<std::net::Ipv6Addr>().unwrap().octets();
        let got = decode(
            SetKind::N6,
            &[
                elem(&v6("2001:db8::"), false, None),
                elem(&v6("2001:db8:0:1::"), true, None),
            ],
        );
        assert_eq!(got, vec![(span("2001:db8::/64"), Expiry::NEVER)]);
        // Keys of the wrong length are ignored, not misread.
        assert!(decode(SetKind::V4, &[elem(&v6("::1"), false, None)]).is_empty());
    }

    #[test]
    fn expiries_compare_with_tolerance() {
        let a = Expiry::after(1000, Some(Duration::from_secs(60)));
        assert_eq!(a, Expiry(61_000));
        assert!(a.close_to(Expiry(61_900)));
        assert!(!a.close_to(Expiry(62_100)));
        assert!(!a.close_to(Expiry::NEVER));
        assert!(Expiry::NEVER.close_to(Expiry::NEVER));
        assert_eq!(
            Expiry::after(5, Some(Duration::ZERO)).timeout_ms(5),
            Some(1)
        );
        assert_eq!(Expiry::NEVER.timeout_ms(5), None);
        assert_eq!(a.timeout_ms(70_000), Some(1));
        assert!(a.live(60_999) && !a.live(61_000));
    }

    #[test]
    fn load_replaces_the_kernel_view_and_keeps_wanted_prefixes() {
        let mut e = Elems::empty(SetKind::N4);
        if let Elems::Ranges(r) = &mut e {
            r.wanted
                .insert("10.0.0.0/8".parse().unwrap(), Expiry::NEVER);
        }
        let dumped = [
            elem(&[10, 0, 0, 0], false, Some(100)),
            elem(&[11, 0, 0, 0], true, None),
        ];
        e.load(&decode(SetKind::N4, &dumped));
        let Elems::Ranges(r) = &e else { panic!() };
        assert_eq!(r.kernel.len(), 1);
        assert_eq!(r.kernel[&0x0a00_0000], (0x0aff_ffff, Expiry(1100)));
        assert_eq!(r.wanted.len(), 1);
        let over: Vec<_> = r.overlapping(span("10.1.0.0/16")).collect();
        assert_eq!(over, vec![(span("10.0.0.0/8"), Expiry(1100))]);
        assert_eq!(r.overlapping(span("12.0.0.0/8")).count(), 0);

        let mut h = Elems::empty(SetKind::V6);
        h.set_host(7, Some(Expiry(9)));
        assert_eq!(h.host(7), Some(Expiry(9)));
        h.set_host(7, None);
        assert_eq!(h.host(7), None);
    }
}

//! Address ranges of a blocklist: sorted, disjoint, inclusive ranges per family, built from
//! CIDRs and coalesced (touching ranges merge), with the subtraction that makes ignored and own
//! addresses win over a feed (a range holding an ignored address is split around it).
//!
//! Addresses are numbers: IPv4 in the low 32 bits of a `u128`, as the firewall's set keys.

use std::net::IpAddr;

use ipnet::IpNet;

/// Sorted, disjoint, non-touching inclusive ranges of each family.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddrRanges {
    pub v4: Vec<(u128, u128)>,
    pub v6: Vec<(u128, u128)>,
}

/// First and last address of `net` as numbers, and whether it is IPv6. IPv4-mapped IPv6
/// (`::ffff:a.b.c.d/n`, n ≥ 96) counts as IPv4: packets of IPv4 clients are IPv4 on the wire.
pub fn span_of(net: &IpNet) -> (bool, u128, u128) {
    let net = crate::config::limits::canonical(*net).trunc();
    match net {
        IpNet::V4(n) => (
            false,
            u32::from(n.network()).into(),
            u32::from(n.broadcast()).into(),
        ),
        IpNet::V6(n) => (true, n.network().into(), n.broadcast().into()),
    }
}

impl AddrRanges {
    /// The union of `nets`.
    pub fn from_nets<'a>(nets: impl IntoIterator<Item = &'a IpNet>) -> AddrRanges {
        let mut r = AddrRanges::default();
        for n in nets {
            let (v6, first, last) = span_of(n);
            if v6 { &mut r.v6 } else { &mut r.v4 }.push((first, last));
        }
        coalesce(&mut r.v4);
        coalesce(&mut r.v6);
        r
    }

    /// What is in `self` and not in `other`.
    pub fn subtract(&self, other: &AddrRanges) -> AddrRanges {
        AddrRanges {
            v4: subtract(&self.v4, &other.v4),
            v6: subtract(&self.v6, &other.v6),
        }
    }

    /// Ranges (firewall elements) per family.
    pub fn counts(&self) -> (usize, usize) {
        (self.v4.len(), self.v6.len())
    }

    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    /// Is `ip` in one of the ranges?
    pub fn contains(&self, ip: IpAddr) -> bool {
        let (v6, key, _) = span_of(&IpNet::from(ip));
        let list = if v6 { &self.v6 } else { &self.v4 };
        let i = list.partition_point(|&(first, _)| first <= key);
        i > 0 && list[i - 1].1 >= key
    }
}

/// Sorts and merges overlapping or touching ranges.
fn coalesce(v: &mut Vec<(u128, u128)>) {
    v.sort_unstable();
    let mut out: Vec<(u128, u128)> = Vec::with_capacity(v.len());
    for &(first, last) in v.iter() {
        match out.last_mut() {
            Some(prev) if first <= prev.1.saturating_add(1) => prev.1 = prev.1.max(last),
            _ => out.push((first, last)),
        }
    }
    *v = out;
}

/// `a` without `b` (both sorted and disjoint).
fn subtract(a: &[(u128, u128)], b: &[(u128, u128)]) -> Vec<(u128, u128)> {
    let mut out = Vec::with_capacity(a.len());
    let mut j = 0;
    for &(first, last) in a {
        let mut cur = first;
        // Skip holes that end before this range.
        while j < b.len() && b[j].1 < cur {
            j += 1;
        }
        let mut k = j;
        let mut whole = true;
        while k < b.len() && b[k].0 <= last {
            let (hf, hl) = b[k];
            if hf > cur {
                out.push((cur, hf - 1));
            }
            if hl >= last {
                whole = false;
                break;
            }
            cur = hl + 1;
            k += 1;
        }
        if whole {
            out.push((cur, last));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter()
            .map(|s| {
                s.parse::<IpNet>()
                    .unwrap_or_else(|_| IpNet::from(s.parse::<IpAddr>().unwrap()))
            })
            .collect()
    }
    fn ranges(list: &[&str]) -> AddrRanges {
        AddrRanges::from_nets(&nets(list))
    }
    fn v4(a: &str, b: &str) -> (u128, u128) {
        let n = |s: &str| u128::from(u32::from(s.parse::<std::net::Ipv4Addr>().unwrap()));
        (n(a), n(b))
    }

    #[test]
    fn nets_are_merged_and_touching_ranges_coalesce() {
        let r = ranges(&[
            "10.0.1.0/24",
            "10.0.0.0/24",
            "10.0.0.7",
            "192.0.2.9",
            "::ffff:192.0.2.10",
            "2001:db8::/32",
            "2001:db8:1::/48",
        ]);
        assert_eq!(
            r.v4,
            vec![v4("10.0.0.0", "10.0.1.255"), v4("192.0.2.9", "192.0.2.10")]
        );
        assert_eq!(r.counts(), (2, 1));
        assert!(r.contains("10.0.1.200".parse().unwrap()));
        assert!(!r.contains("10.0.2.0".parse().unwrap()));
        assert!(r.contains("2001:db8:ffff::1".parse().unwrap()));
        assert!(!r.contains("2001:db9::".parse().unwrap()));
        assert!(AddrRanges::default().is_empty());
    }

    #[test]
    fn an_ignored_address_splits_the_range_that_holds_it() {
        let feed = ranges(&[
            "10.77.0.0/24",
            "10.9.0.0/16",
            "203.0.113.0/24",
            "2001:db8::/64",
        ]);
        let ignore = ranges(&[
            "10.77.0.3",
            "10.77.0.1",
            "10.9.0.0/17",
            "203.0.113.0/24",
            "2001:db8::1",
        ]);
        let left = feed.subtract(&ignore);
        assert_eq!(
            left.v4,
            vec![
                v4("10.9.128.0", "10.9.255.255"),
                v4("10.77.0.0", "10.77.0.0"),
                v4("10.77.0.2", "10.77.0.2"),
                v4("10.77.0.4", "10.77.0.255"),
            ]
        );
        assert!(!left.contains("10.77.0.3".parse().unwrap()));
        assert!(left.contains("10.77.0.2".parse().unwrap()));
        assert!(!left.contains("203.0.113.5".parse().unwrap()));
        assert_eq!(left.v6.len(), 2);
        assert!(!left.contains("2001:db8::1".parse().unwrap()));
        assert!(left.contains("2001:db8::2".parse().unwrap()));
        // Edges: holes at the first and last address, and a hole covering everything.
        let r = ranges(&["10.0.0.0/30"]);
        assert_eq!(
            r.subtract(&ranges(&["10.0.0.0", "10.0.0.3"])).v4,
            vec![v4("10.0.0.1", "10.0.0.2")]
        );
        assert!(r.subtract(&ranges(&["10.0.0.0/8"])).is_empty());
        assert_eq!(r.subtract(&AddrRanges::default()), r);
    }
}

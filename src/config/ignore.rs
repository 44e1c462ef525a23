//! `ignoreip`: addresses and networks that are never banned.
//!
//! IPv4-mapped IPv6 addresses (`::ffff:198.51.100.9`) are their IPv4 address, in the list and
//! in the addresses looked up, so either spelling covers the other.

use std::net::IpAddr;

use ipnet::IpNet;

use super::limits::{canonical, parse_net};

/// A list of networks (single addresses are /32 or /128).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IgnoreList {
    nets: Vec<IpNet>,
}

impl IgnoreList {
    /// Parse addresses and CIDRs, v4 and v6. Host bits set in a CIDR are an error, since
    /// `10.0.0.5/8` usually means a typo.
    pub fn parse(items: &[String]) -> Result<IgnoreList, String> {
        let nets = items
            .iter()
            .map(|item| parse_net(item.trim()).map_err(|e| e.to_string()))
            .collect::<Result<_, _>>()?;
        Ok(IgnoreList { nets })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.nets.iter().any(|n| n.contains(&ip))
    }

    pub fn extend(&mut self, more: impl IntoIterator<Item = IpNet>) {
        self.nets.extend(more.into_iter().map(canonical));
    }

    pub fn nets(&self) -> &[IpNet] {
        &self.nets
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_matches() {
        let l = IgnoreList::parse(&[
            "10.0.0.0/8".into(),
            "2001:db8::/32".into(),
            "192.0.2.7".into(),
        ])
        .unwrap();
        assert!(l.contains("10.9.8.7".parse().unwrap()));
        assert!(l.contains("2001:db8:ffff::1".parse().unwrap()));
        assert!(l.contains("192.0.2.7".parse().unwrap()));
        assert!(!l.contains("192.0.2.8".parse().unwrap()));
        assert!(IgnoreList::parse(&["10.0.0.5/8".into()])
            .unwrap_err()
            .contains("10.0.0.0/8"));
        assert!(IgnoreList::parse(&["10.0.0.0/33".into()]).is_err());
        assert!(IgnoreList::parse(&["example.com".into()]).is_err());
    }

    /// Issue 10.11: `ignoreip = ["::ffff:198.51.100.9"]` was accepted but did not cover
    /// 198.51.100.9.
    #[test]
    fn ipv4_mapped_ignoreip_covers_the_ipv4_address_and_the_reverse() {
        let mapped = IgnoreList::parse(&["::ffff:198.51.100.9".into()]).unwrap();
        assert!(mapped.contains("198.51.100.9".parse().unwrap()));
        assert!(mapped.contains("::ffff:198.51.100.9".parse().unwrap()));
        assert!(!mapped.contains("198.51.100.10".parse().unwrap()));
        let plain = IgnoreList::parse(&["198.51.100.0/24".into()]).unwrap();
        assert!(plain.contains("::ffff:198.51.100.9".parse().unwrap()));
        let net = IgnoreList::parse(&["::ffff:198.51.100.0/120".into()]).unwrap();
        assert!(net.contains("198.51.100.200".parse().unwrap()));
        let mut own = IgnoreList::default();
        own.extend(["::ffff:192.0.2.1/128".parse().unwrap()]);
        assert!(own.contains("192.0.2.1".parse().unwrap()));
    }
}

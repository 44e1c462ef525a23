//! Address helpers: how addresses are shown, and which ones are never banned.

use std::net::IpAddr;

use ipnet::IpNet;

/// An address as text: a host without its /32 or /128, a prefix with it.
pub fn host_text(net: &IpNet) -> String {
    if net.prefix_len() == net.max_prefix_len() {
        net.addr().to_string()
    } else {
        net.to_string()
    }
}

/// Why an address found in a log line can never be a client to ban, if it is one: the
/// unspecified address, loopback, multicast and broadcast are not where connections come from
/// (a log line naming them is malformed or forged).
pub fn unbannable(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) if v4.is_unspecified() => Some("the unspecified address"),
        IpAddr::V4(v4) if v4.is_loopback() => Some("a loopback address"),
        IpAddr::V4(v4) if v4.is_multicast() => Some("a multicast address"),
        IpAddr::V4(v4) if v4.is_broadcast() => Some("the broadcast address"),
        IpAddr::V6(v6) if v6.is_unspecified() => Some("the unspecified address"),
        IpAddr::V6(v6) if v6.is_loopback() => Some("a loopback address"),
        IpAddr::V6(v6) if v6.is_multicast() => Some("a multicast address"),
        _ => None,
    }
}

/// Whether two networks share an address.
pub fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_addresses_are_unbannable() {
        for s in [
            "0.0.0.0",
            "::",
            "127.0.0.1",
            "::1",
            "224.0.0.1",
            "ff02::1",
            "255.255.255.255",
        ] {
            assert!(unbannable(s.parse().unwrap()).is_some(), "{s}");
        }
        for s in ["192.0.2.1", "2001:db8::1", "fe80::1", "10.0.0.1"] {
            assert!(unbannable(s.parse().unwrap()).is_none(), "{s}");
        }
    }

    #[test]
    fn overlap() {
        let n = |s: &str| -> IpNet { s.parse().unwrap() };
        assert!(overlaps(&n("2001:db8::/64"), &n("2001:db8::1/128")));
        assert!(overlaps(&n("2001:db8::1/128"), &n("2001:db8::/32")));
        assert!(!overlaps(&n("2001:db8::/64"), &n("2001:db8:1::/64")));
        assert!(!overlaps(&n("10.0.0.0/8"), &n("::/0")));
    }
}

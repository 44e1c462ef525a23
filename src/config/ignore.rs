//! `ignoreip`: addresses and networks that are never banned.

use std::net::IpAddr;

use ipnet::IpNet;

/// A list of networks (single addresses are /32 or /128).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IgnoreList {
    nets: Vec<IpNet>,
}

impl IgnoreList {
    /// Parse addresses and CIDRs, v4 and v6. Host bits set in a CIDR are an error, since
    /// `10.0.0.5/8` usually means a typo.
    pub fn parse(items: &[String]) -> Result<IgnoreList, String> {
        let mut nets = Vec::with_capacity(items.len());
        for item in items {
            let s = item.trim();
            let net = if s.contains('/') {
                let net: IpNet = s
                    .parse()
                    .map_err(|_| format!("{s:?} is not an address or CIDR network"))?;
                if net.trunc() != net {
                    return Err(format!(
                        "{s:?} has host bits set; did you mean {}?",
                        net.trunc()
                    ));
                }
                net
            } else {
                let ip: IpAddr = s
                    .parse()
                    .map_err(|_| format!("{s:?} is not an address or CIDR network"))?;
                IpNet::from(ip)
            };
            nets.push(net);
        }
        Ok(IgnoreList { nets })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|n| n.contains(&ip))
    }

    pub fn extend(&mut self, more: impl IntoIterator<Item = IpNet>) {
        self.nets.extend(more);
    }

    pub fn nets(&self) -> &[IpNet] {
        &self.nets
    }
}

/// The addresses of this host's interfaces (for `ignoreself`).
pub fn local_addresses() -> Vec<IpNet> {
    let mut out = Vec::new();
    // SAFETY: getifaddrs fills a linked list we only read and then free with freeifaddrs.
    unsafe {
        let mut ifap: *mut libc::ifaddrs = std::ptr::null_mut();
        if libc::getifaddrs(&mut ifap) != 0 {
            return out;
        }
        let mut cur = ifap;
        while !cur.is_null() {
            let addr = (*cur).ifa_addr;
            if !addr.is_null() {
                match (*addr).sa_family as i32 {
                    libc::AF_INET => {
                        let sin = &*(addr as *const libc::sockaddr_in);
                        let ip = std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                        out.push(IpNet::from(IpAddr::V4(ip)));
                    }
                    libc::AF_INET6 => {
                        let sin6 = &*(addr as *const libc::sockaddr_in6);
                        let ip = std::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr);
                        out.push(IpNet::from(IpAddr::V6(ip)));
                    }
                    _ => {}
                }
            }
            cur = (*cur).ifa_next;
        }
        libc::freeifaddrs(ifap);
    }
    out
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

    #[test]
    fn local_addresses_include_loopback() {
        let l = local_addresses();
        assert!(l.iter().any(|n| n.addr().is_loopback()), "{l:?}");
    }
}

//! How values are laid out in the database: addresses as network bytes + prefix length,
//! times as INTEGER µs.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// An address or prefix as stored: the network address in network byte order (4 bytes for
/// IPv4, 16 for IPv6, host bits cleared) and the prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NetKey {
    bytes: [u8; 16],
    len: usize,
    pub plen: u8,
}

impl NetKey {
    /// The canonical key of `net` (host bits cleared).
    pub fn of(net: &IpNet) -> NetKey {
        let net = net.trunc();
        NetKey::from_addr(net.network(), net.prefix_len())
    }

    /// The key of the last address of `net` (for range scans).
    pub fn broadcast_of(net: &IpNet) -> NetKey {
        NetKey::from_addr(net.broadcast(), net.prefix_len())
    }

    fn from_addr(addr: IpAddr, plen: u8) -> NetKey {
        let mut bytes = [0u8; 16];
        let len = match addr {
            IpAddr::V4(a) => {
                bytes[..4].copy_from_slice(&a.octets());
                4
            }
            IpAddr::V6(a) => {
                bytes = a.octets();
                16
            }
        };
        NetKey { bytes, len, plen }
    }

    pub fn addr(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// Decode a stored (addr, plen) pair; `None` if it is not one f2b writes.
    pub fn decode(addr: &[u8], plen: i64) -> Option<IpNet> {
        let ip = match addr.len() {
            4 => IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(addr).ok()?)),
            16 => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(addr).ok()?)),
            _ => return None,
        };
        let net = IpNet::new(ip, u8::try_from(plen).ok()?).ok()?;
        // Host bits set: f2b never writes that, and a removal could never match the row.
        (net.trunc() == net).then_some(net)
    }
}

/// µs as stored: INTEGER is signed, so times past i64::MAX (year 294247) are clamped.
pub(crate) fn time_to_sql(t: u64) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}

/// A stored time back; `None` if negative.
pub(crate) fn time_from_sql(v: i64) -> Option<u64> {
    u64::try_from(v).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_canonical() {
        let k = NetKey::of(&"203.0.113.9/24".parse().unwrap());
        assert_eq!(k.addr(), &[203, 0, 113, 0]);
        assert_eq!(k.plen, 24);
        let b = NetKey::broadcast_of(&"203.0.113.9/24".parse().unwrap());
        assert_eq!(b.addr(), &[203, 0, 113, 255]);
        let k6 = NetKey::of(&"2001:db8::1/64".parse().unwrap());
        assert_eq!(k6.addr().len(), 16);
        assert_eq!(
            NetKey::decode(k6.addr(), 64),
            Some("2001:db8::/64".parse().unwrap())
        );
        assert_eq!(NetKey::decode(&[1, 2, 3], 24), None);
        assert_eq!(NetKey::decode(&[1, 2, 3, 4], 33), None);
        assert_eq!(NetKey::decode(&[1, 2, 3, 4], -1), None);
        assert_eq!(NetKey::decode(&[1, 2, 3, 4], 24), None, "host bits set");
    }
}

//! What f2b puts in its table: names, set properties, and the one rule per set.
//!
//! ```text
//! table inet f2b {
//!   set sshd-v4 { type ipv4_addr; flags timeout; }            # host bans
//!   set sshd-v6 { type ipv6_addr; flags timeout; }
//!   set sshd-n4 { type ipv4_addr; flags interval,timeout; }   # prefix bans (CIDR)
//!   set sshd-n6 { type ipv6_addr; flags interval,timeout; }
//!   chain input {
//!     type filter hook input priority filter - 10; policy accept;
//!     meta nfproto ipv4 meta l4proto tcp th dport 22 ip saddr @sshd-v4 counter drop comment "f2b:sshd:v4:…"
//!     …one rule per set…
//!   }
//! }
//! ```

use std::ffi::CString;
use std::net::IpAddr;

use ipnet::IpNet;
use nftnl::expr::{
    Cmp, CmpOp, Counter, IcmpCode, Ipv4HeaderField, Ipv6HeaderField, Meta, NetworkHeaderField,
    Payload, RejectionType, TcpHeaderField, TransportHeaderField, Verdict as NftVerdict,
};
use nftnl::{Chain, MsgType, ProtoFamily, Rule, Table};

use super::batch::Batch;
use super::netlink as nl;
use super::sys::{Lookup, RawSet};
use crate::firewall::{FirewallError, JailRules, Protocol, Verdict, TABLE_NAME};

/// The base chain.
pub const CHAIN_NAME: &str = "input";
/// `filter - 10`: before the usual filter chains.
pub const CHAIN_PRIORITY: i32 = -10;
const NF_INET_LOCAL_IN: u32 = 1;
/// Bumped when the rule layout changes, so that existing rules get replaced on setup.
const LAYOUT_VERSION: u32 = 1;

const KEY_TYPE_IPV4: u32 = 7;
const KEY_TYPE_IPV6: u32 = 8;
const KEY_TYPE_INET_PROTO: u32 = 12;
const KEY_TYPE_INET_SERVICE: u32 = 13;

/// Element userdata nft writes on an open-ended interval (no end element because the range
/// reaches the last address): NFTNL_UDATA_SET_ELEM_FLAGS = NFTNL_SET_ELEM_F_INTERVAL_OPEN.
pub const UDATA_INTERVAL_OPEN: [u8; 6] = [1, 4, 1, 0, 0, 0];

/// The four sets of a jail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SetKind {
    /// IPv4 hosts.
    V4,
    /// IPv6 hosts.
    V6,
    /// IPv4 prefixes (interval set).
    N4,
    /// IPv6 prefixes (interval set).
    N6,
}

impl SetKind {
    pub const ALL: [SetKind; 4] = [SetKind::V4, SetKind::V6, SetKind::N4, SetKind::N6];

    pub fn suffix(self) -> &'static str {
        match self {
            SetKind::V4 => "v4",
            SetKind::V6 => "v6",
            SetKind::N4 => "n4",
            SetKind::N6 => "n6",
        }
    }
    pub fn is_interval(self) -> bool {
        matches!(self, SetKind::N4 | SetKind::N6)
    }
    pub fn is_v6(self) -> bool {
        matches!(self, SetKind::V6 | SetKind::N6)
    }
    pub fn key_len(self) -> usize {
        if self.is_v6() {
            16
        } else {
            4
        }
    }
    pub fn key_type(self) -> u32 {
        if self.is_v6() {
            KEY_TYPE_IPV6
        } else {
            KEY_TYPE_IPV4
        }
    }
    pub fn flags(self) -> u32 {
        if self.is_interval() {
            nl::NFT_SET_TIMEOUT | nl::NFT_SET_INTERVAL
        } else {
            nl::NFT_SET_TIMEOUT
        }
    }
    /// The set an (already normalised) network belongs in.
    pub fn for_net(net: &IpNet) -> SetKind {
        match net {
            IpNet::V4(n) if n.prefix_len() == 32 => SetKind::V4,
            IpNet::V4(_) => SetKind::N4,
            IpNet::V6(n) if n.prefix_len() == 128 => SetKind::V6,
            IpNet::V6(_) => SetKind::N6,
        }
    }
}

pub fn set_name(jail: &str, kind: SetKind) -> String {
    format!("{jail}-{}", kind.suffix())
}

/// `sshd-v4` → (`sshd`, V4).
pub fn parse_set_name(name: &str) -> Option<(&str, SetKind)> {
    let (jail, suffix) = name.rsplit_once('-')?;
    let kind = SetKind::ALL.into_iter().find(|k| k.suffix() == suffix)?;
    valid_jail_name(jail).then_some((jail, kind))
}

/// `[A-Za-z0-9_-]{1,32}`.
pub fn valid_jail_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Does an existing set have the properties we need?
pub fn set_matches(info: &nl::SetInfo, kind: SetKind) -> bool {
    info.flags == kind.flags()
        && info.key_type == kind.key_type()
        && info.key_len as usize == kind.key_len()
}

/// Is `info` our base chain as we create it (hook, priority, type)?
pub fn chain_matches(info: &nl::ChainInfo) -> bool {
    info.hook == Some((NF_INET_LOCAL_IN, CHAIN_PRIORITY))
        && info.chain_type.as_deref().unwrap_or("filter") == "filter"
}

/// Sorted, merged, validated destination port ranges; empty = any port.
pub fn normalize_ports(jail: &JailRules) -> Result<Vec<(u16, u16)>, FirewallError> {
    if jail.protocol == Protocol::All {
        return Ok(Vec::new());
    }
    let mut v: Vec<(u16, u16)> = Vec::with_capacity(jail.ports.len());
    for p in &jail.ports {
        if p.first > p.last {
            return Err(FirewallError::Other(format!(
                "jail {}: invalid port range {}-{}",
                jail.name, p.first, p.last
            )));
        }
        v.push((p.first, p.last));
    }
    v.sort_unstable();
    let mut merged: Vec<(u16, u16)> = Vec::with_capacity(v.len());
    for (a, b) in v {
        match merged.last_mut() {
            Some(last) if u32::from(a) <= u32::from(last.1) + 1 => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    if merged == [(0, u16::MAX)] {
        merged.clear();
    }
    Ok(merged)
}

/// The comment that identifies the rule of `jail`'s set `kind`: jail, set and a hash of the
/// rule's scope, so a changed scope or verdict yields a different comment (→ rule replaced).
pub fn rule_comment(jail: &JailRules, kind: SetKind) -> Result<String, FirewallError> {
    let ports = normalize_ports(jail)?;
    let mut desc = format!(
        "v{LAYOUT_VERSION}|{}|{:?}|{:?}|",
        set_name(&jail.name, kind),
        jail.protocol,
        jail.verdict
    );
    for (a, b) in &ports {
        desc.push_str(&format!("{a}-{b},"));
    }
    Ok(format!(
        "f2b:{}:{}:{:016x}",
        jail.name,
        kind.suffix(),
        fnv1a(desc.as_bytes())
    ))
}

/// FNV-1a, 64 bit: stable across Rust versions (unlike `DefaultHasher`).
fn fnv1a(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn cstring(s: &str) -> CString {
    // Names are validated ([A-Za-z0-9_-]) and never contain NUL.
    CString::new(s).unwrap_or_default()
}

/// Adds NEWSET for a named set.
pub fn add_named_set(batch: &mut Batch, name: &str, kind: SetKind, id: u32) {
    let mut set = RawSet::new(
        u16::from(nl::NFPROTO_INET),
        &cstring(TABLE_NAME),
        &cstring(name),
    );
    set.set_flags(kind.flags());
    set.set_key(kind.key_type(), kind.key_len() as u32);
    set.set_id(id);
    batch.add_set(
        &set,
        nl::NFT_MSG_NEWSET,
        nl::NLM_F_CREATE,
        format!("add set inet {TABLE_NAME} {name}"),
    );
}

/// Adds NEWCHAIN for the base chain (idempotent: no NLM_F_EXCL; resets the policy to accept).
pub fn add_chain(batch: &mut Batch) {
    let table = Table::new(cstring(TABLE_NAME), ProtoFamily::Inet);
    let mut chain = Chain::new(cstring(CHAIN_NAME), &table);
    chain.set_hook(nftnl::Hook::In, CHAIN_PRIORITY);
    chain.set_type(nftnl::ChainType::Filter);
    chain.set_policy(nftnl::Policy::Accept);
    batch.add_obj(
        &chain,
        MsgType::Add,
        format!("add chain inet {TABLE_NAME} {CHAIN_NAME}"),
    );
}

/// An anonymous constant set (for `l4proto { tcp, udp }` / `th dport { … }`), bound to the
/// rule that follows it in the same batch. Returns its lookup expression.
fn add_anon_set(
    batch: &mut Batch,
    key_type: u32,
    ranges: &[(u16, u16)],
    key_len: usize,
    id: u32,
    what: &str,
) -> Lookup {
    let interval = ranges.iter().any(|(a, b)| a != b);
    let name = c"__set%d";
    let mut set = RawSet::new(u16::from(nl::NFPROTO_INET), &cstring(TABLE_NAME), name);
    let mut flags = nl::NFT_SET_ANONYMOUS | nl::NFT_SET_CONSTANT;
    if interval {
        flags |= nl::NFT_SET_INTERVAL;
    }
    set.set_flags(flags);
    set.set_key(key_type, key_len as u32);
    set.set_id(id);
    batch.add_set(
        &set,
        nl::NFT_MSG_NEWSET,
        nl::NLM_F_CREATE,
        format!("add anonymous set for {what}"),
    );
    let key = |v: u16| -> Vec<u8> {
        if key_len == 1 {
            vec![v as u8]
        } else {
            v.to_be_bytes().to_vec()
        }
    };
    let max = if key_len == 1 { 0xff } else { u16::MAX };
    for &(a, b) in ranges {
        if !interval {
            set.push_elem(&key(a), 0, None, &[]);
        } else if b == max {
            set.push_elem(&key(a), 0, None, &UDATA_INTERVAL_OPEN);
        } else {
            set.push_elem(&key(a), 0, None, &[]);
            set.push_elem(&key(b + 1), nl::NFT_SET_ELEM_INTERVAL_END, None, &[]);
        }
    }
    batch.add_elems(
        &set,
        nl::NFT_MSG_NEWSETELEM,
        nl::NLM_F_CREATE,
        &format!("(anonymous, for {what})"),
    );
    Lookup {
        set: name.to_owned(),
        id,
    }
}

/// Adds the rule of `jail`'s set `kind` (and the anonymous sets it needs). `next_id` hands out
/// transaction-local set ids.
pub fn add_rule(
    batch: &mut Batch,
    jail: &JailRules,
    kind: SetKind,
    next_id: &mut u32,
) -> Result<(), FirewallError> {
    let ports = normalize_ports(jail)?;
    let comment = rule_comment(jail, kind)?;
    let set = set_name(&jail.name, kind);
    let table = Table::new(cstring(TABLE_NAME), ProtoFamily::Inet);
    let chain = Chain::new(cstring(CHAIN_NAME), &table);
    let mut rule = Rule::new(&chain);

    // meta nfproto ipv4|ipv6: required before a network-header payload in an inet table.
    rule.add_expr(&Meta::NfProto);
    let nfproto = if kind.is_v6() {
        nl::NFPROTO_IPV6
    } else {
        nl::NFPROTO_IPV4
    };
    rule.add_expr(&Cmp::new(CmpOp::Eq, nfproto));

    if jail.protocol != Protocol::All {
        rule.add_expr(&Meta::L4Proto);
        match jail.protocol {
            Protocol::Tcp => rule.add_expr(&Cmp::new(CmpOp::Eq, libc::IPPROTO_TCP as u8)),
            Protocol::Udp => rule.add_expr(&Cmp::new(CmpOp::Eq, libc::IPPROTO_UDP as u8)),
            _ => {
                *next_id += 1;
                let protos = [
                    (libc::IPPROTO_TCP as u16, libc::IPPROTO_TCP as u16),
                    (libc::IPPROTO_UDP as u16, libc::IPPROTO_UDP as u16),
                ];
                let lookup =
                    add_anon_set(batch, KEY_TYPE_INET_PROTO, &protos, 1, *next_id, &comment);
                rule.add_expr(&lookup);
            }
        }
        if !ports.is_empty() {
            // th dport (same offset for TCP and UDP).
            rule.add_expr(&Payload::Transport(TransportHeaderField::Tcp(
                TcpHeaderField::Dport,
            )));
            match ports[..] {
                [(a, b)] if a == b => {
                    rule.add_expr(&Cmp::new(CmpOp::Eq, &a.to_be_bytes()[..]));
                }
                _ => {
                    *next_id += 1;
                    let lookup =
                        add_anon_set(batch, KEY_TYPE_INET_SERVICE, &ports, 2, *next_id, &comment);
                    rule.add_expr(&lookup);
                }
            }
        }
    }

    // ip saddr @set / ip6 saddr @set
    let saddr = if kind.is_v6() {
        NetworkHeaderField::Ipv6(Ipv6HeaderField::Saddr)
    } else {
        NetworkHeaderField::Ipv4(Ipv4HeaderField::Saddr)
    };
    rule.add_expr(&Payload::Network(saddr));
    rule.add_expr(&Lookup {
        set: cstring(&set),
        id: 0,
    });
    rule.add_expr(&Counter);
    let verdict = match (jail.verdict, jail.protocol) {
        (Verdict::Drop, _) => NftVerdict::Drop,
        (Verdict::Reject, Protocol::Tcp) => NftVerdict::Reject(RejectionType::TcpRst),
        (Verdict::Reject, _) => NftVerdict::Reject(RejectionType::Icmp(IcmpCode::PortUnreach)),
    };
    rule.add_expr(&verdict);
    rule.set_comment(cstring(&comment))
        .map_err(|e| FirewallError::Other(format!("rule comment {comment:?}: {e}")))?;
    batch.add_obj(
        &rule,
        MsgType::Add,
        format!("add rule inet {TABLE_NAME} {CHAIN_NAME} for set {set}"),
    );
    Ok(())
}

/// Elements that represent `net` in its set: one key for a host; for a prefix, the start
/// element (carrying the timeout) and the end element = last address + 1 with
/// INTERVAL_END and no timeout — or, when the prefix reaches the end of the address space, the
/// start element alone, marked open-ended.
pub struct NetElems {
    pub start: Vec<u8>,
    /// Exclusive end key; `None` for a host or an open-ended prefix.
    pub end: Option<Vec<u8>>,
    pub interval: bool,
}

pub fn net_elems(net: &IpNet) -> NetElems {
    let interval = SetKind::for_net(net).is_interval();
    let (start, end) = match net {
        IpNet::V4(n) => {
            let end = u32::from(n.broadcast())
                .checked_add(1)
                .map(|e| e.to_be_bytes().to_vec());
            (n.network().octets().to_vec(), end)
        }
        IpNet::V6(n) => {
            let end = u128::from(n.broadcast())
                .checked_add(1)
                .map(|e| e.to_be_bytes().to_vec());
            (n.network().octets().to_vec(), end)
        }
    };
    NetElems {
        start,
        end: if interval { end } else { None },
        interval,
    }
}

/// Host address from a 4- or 16-byte key.
pub fn key_addr(key: &[u8]) -> Option<IpAddr> {
    match key.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(key).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(key).ok()?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firewall::PortRange;

    fn jail(ports: &[(u16, u16)], protocol: Protocol, verdict: Verdict) -> JailRules {
        JailRules {
            name: "sshd".into(),
            ports: ports
                .iter()
                .map(|&(first, last)| PortRange { first, last })
                .collect(),
            protocol,
            verdict,
        }
    }

    #[test]
    fn names_roundtrip() {
        for k in SetKind::ALL {
            let n = set_name("my-jail_1", k);
            assert_eq!(parse_set_name(&n), Some(("my-jail_1", k)));
        }
        assert_eq!(parse_set_name("sshd-x4"), None);
        assert_eq!(parse_set_name("__set0"), None);
        assert!(valid_jail_name(&"a".repeat(32)));
        assert!(!valid_jail_name(&"a".repeat(33)));
        assert!(!valid_jail_name("a b"));
        assert!(!valid_jail_name(""));
    }

    #[test]
    fn ports_are_merged() {
        let j = jail(
            &[(80, 90), (22, 22), (85, 100), (101, 101)],
            Protocol::Tcp,
            Verdict::Drop,
        );
        assert_eq!(normalize_ports(&j).unwrap(), vec![(22, 22), (80, 101)]);
        let j = jail(&[(0, 100), (50, 65535)], Protocol::Tcp, Verdict::Drop);
        assert!(normalize_ports(&j).unwrap().is_empty());
        let j = jail(&[(22, 22)], Protocol::All, Verdict::Drop);
        assert!(normalize_ports(&j).unwrap().is_empty());
        let j = jail(&[(30, 22)], Protocol::Tcp, Verdict::Drop);
        assert!(normalize_ports(&j).is_err());
    }

    #[test]
    fn comment_changes_with_scope() {
        let a = rule_comment(
            &jail(&[(22, 22)], Protocol::Tcp, Verdict::Drop),
            SetKind::V4,
        )
        .unwrap();
        let b = rule_comment(
            &jail(&[(22, 22)], Protocol::Tcp, Verdict::Reject),
            SetKind::V4,
        )
        .unwrap();
        let c = rule_comment(
            &jail(&[(2222, 2222)], Protocol::Tcp, Verdict::Drop),
            SetKind::V4,
        )
        .unwrap();
        let d = rule_comment(
            &jail(&[(22, 22)], Protocol::Tcp, Verdict::Drop),
            SetKind::V6,
        )
        .unwrap();
        assert!(a.starts_with("f2b:sshd:v4:"));
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
        assert_eq!(
            a,
            rule_comment(
                &jail(&[(22, 22)], Protocol::Tcp, Verdict::Drop),
                SetKind::V4
            )
            .unwrap()
        );
    }

    #[test]
    fn interval_elements() {
        let e = net_elems(&"10.0.0.0/24".parse().unwrap());
        assert_eq!(e.start, [10, 0, 0, 0]);
        assert_eq!(e.end.as_deref(), Some(&[10, 0, 1, 0][..]));
        let e = net_elems(&"255.255.255.0/24".parse().unwrap());
        assert_eq!(e.start, [255, 255, 255, 0]);
        assert_eq!(e.end, None);
        assert!(e.interval);
        let e = net_elems(&"10.0.0.1/32".parse().unwrap());
        assert_eq!(e.end, None);
        assert!(!e.interval);
        let e = net_elems(&"2001:db8:1:2::/64".parse().unwrap());
        let want: std::net::Ipv6Addr = "2001:db8:1:3::".parse().unwrap();
        assert_eq!(e.end.as_deref(), Some(&want.octets()[..]));
        let e = net_elems(&"ffff:ffff:ffff:ffff::/64".parse().unwrap());
        assert_eq!(e.end, None);
    }
}

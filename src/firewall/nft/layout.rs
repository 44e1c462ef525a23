//! What f2b puts in its table, as data: set groups, their sets and rules, names and comments.
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
//!
//! A *set group* is an owner's share of the table: its sets and one rule per set, scoped to
//! ports and a protocol with a verdict. A jail is one group; other owners (blocklist feeds:
//! interval sets only, named `feed.NAME-n4`) plug in as further groups with their own scope.
//! Names carry the owner, so setting up one owner's groups never touches another's.

use std::net::IpAddr;

use ipnet::IpNet;

use super::wire;
use crate::firewall::{FirewallError, JailRules, PortRange, Protocol, Verdict};

/// The base chain.
pub const CHAIN_NAME: &str = "input";
/// `filter - 10`: before the usual filter chains.
pub const CHAIN_PRIORITY: i32 = -10;
/// NF_INET_LOCAL_IN.
pub const HOOK_INPUT: u32 = 1;
/// Bumped when the rule layout changes, so that existing rules get replaced on setup.
const LAYOUT_VERSION: u32 = 1;

pub const KEY_TYPE_IPV4: u32 = 7;
pub const KEY_TYPE_IPV6: u32 = 8;

/// The kinds of sets a group can have.
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
    /// Interval sets only (e.g. a blocklist feed: hosts are one-address intervals).
    pub const INTERVALS: [SetKind; 2] = [SetKind::N4, SetKind::N6];

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
    pub fn key_len(self) -> u32 {
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
            wire::NFT_SET_TIMEOUT | wire::NFT_SET_INTERVAL
        } else {
            wire::NFT_SET_TIMEOUT
        }
    }
    /// The largest key (as a number) of the address family.
    pub fn max_key(self) -> u128 {
        if self.is_v6() {
            u128::MAX
        } else {
            u128::from(u32::MAX)
        }
    }
    /// The set of a group holding `net` (already normalised): hosts go to the host sets if the
    /// group has them, everything else to the interval sets.
    pub fn for_net(net: &IpNet, kinds: &[SetKind]) -> SetKind {
        let host = net.prefix_len() == net.max_prefix_len();
        match net {
            IpNet::V4(_) if host && kinds.contains(&SetKind::V4) => SetKind::V4,
            IpNet::V4(_) => SetKind::N4,
            IpNet::V6(_) if host && kinds.contains(&SetKind::V6) => SetKind::V6,
            IpNet::V6(_) => SetKind::N6,
        }
    }
}

/// Who owns a group of sets. The owner is part of every name, so owners never collide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Owner {
    /// A jail's bans: sets `NAME-v4` … `NAME-n6`.
    Jail,
    /// A blocklist feed (issue 16): sets `feed.NAME-n4`, `feed.NAME-n6`.
    Feed,
}

impl Owner {
    fn prefix(self) -> &'static str {
        match self {
            Owner::Jail => "",
            Owner::Feed => "feed.",
        }
    }
}

/// A group's identity: owner and name (`[A-Za-z0-9_-]{1,32}`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupId {
    pub owner: Owner,
    pub name: String,
}

impl GroupId {
    pub fn new(owner: Owner, name: &str) -> Result<Self, FirewallError> {
        if !valid_name(name) {
            return Err(FirewallError::InvalidName(name.to_string()));
        }
        Ok(GroupId {
            owner,
            name: name.to_string(),
        })
    }
    /// `sshd`, `feed.spamhaus`: the part of set names and rule comments before the kind.
    pub fn label(&self) -> String {
        format!("{}{}", self.owner.prefix(), self.name)
    }
    pub fn set_name(&self, kind: SetKind) -> String {
        format!("{}-{}", self.label(), kind.suffix())
    }
    /// `sshd` → jail sshd, `feed.x` → feed x.
    pub fn parse_label(label: &str) -> Option<GroupId> {
        let (owner, name) = match label.strip_prefix(Owner::Feed.prefix()) {
            Some(name) => (Owner::Feed, name),
            None => (Owner::Jail, label),
        };
        valid_name(name).then(|| GroupId {
            owner,
            name: name.to_string(),
        })
    }
}

/// `sshd-v4` → (jail sshd, V4).
pub fn parse_set_name(name: &str) -> Option<(GroupId, SetKind)> {
    let (label, suffix) = name.rsplit_once('-')?;
    let kind = SetKind::ALL.into_iter().find(|k| k.suffix() == suffix)?;
    Some((GroupId::parse_label(label)?, kind))
}

/// `[A-Za-z0-9_-]{1,32}`.
pub fn valid_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Where a group's rules apply and what they do.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    /// Sorted, merged destination port ranges; empty = any port.
    pub ports: Vec<(u16, u16)>,
    pub protocol: Protocol,
    pub verdict: Verdict,
}

impl Scope {
    /// Validates and normalises the port ranges (`Err` names the first bad range).
    pub fn new(
        ports: &[PortRange],
        protocol: Protocol,
        verdict: Verdict,
    ) -> Result<Scope, PortRange> {
        let mut v: Vec<(u16, u16)> = Vec::with_capacity(ports.len());
        if protocol != Protocol::All {
            for p in ports {
                if p.first > p.last {
                    return Err(*p);
                }
                v.push((p.first, p.last));
            }
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
        Ok(Scope {
            ports: merged,
            protocol,
            verdict,
        })
    }
}

/// One owner's group of sets with its rule scope: the desired state of that part of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSpec {
    pub id: GroupId,
    pub kinds: Vec<SetKind>,
    pub scope: Scope,
}

impl GroupSpec {
    /// A jail: host and prefix sets for both families.
    pub fn jail(rules: &JailRules) -> Result<GroupSpec, FirewallError> {
        Self::of(Owner::Jail, rules)
    }

    /// A blocklist feed: prefix (interval) sets only, both families.
    pub fn feed(rules: &JailRules) -> Result<GroupSpec, FirewallError> {
        Self::of(Owner::Feed, rules)
    }

    fn of(owner: Owner, rules: &JailRules) -> Result<GroupSpec, FirewallError> {
        let id = GroupId::new(owner, &rules.name)?;
        let scope = Scope::new(&rules.ports, rules.protocol, rules.verdict).map_err(|p| {
            FirewallError::InvalidPorts {
                group: id.label(),
                first: p.first,
                last: p.last,
            }
        })?;
        let kinds = match owner {
            Owner::Jail => SetKind::ALL.to_vec(),
            Owner::Feed => SetKind::INTERVALS.to_vec(),
        };
        Ok(GroupSpec { id, kinds, scope })
    }

    pub fn set_names(&self) -> impl Iterator<Item = (String, SetKind)> + '_ {
        self.kinds.iter().map(|&k| (self.id.set_name(k), k))
    }

    /// The comment that identifies the rule of set `kind`: group, set and a hash of the
    /// rule's scope, so a changed scope or verdict yields a different comment (→ rule replaced).
    pub fn rule_comment(&self, kind: SetKind) -> String {
        let mut desc = format!(
            "v{LAYOUT_VERSION}|{}|{:?}|{:?}|",
            self.id.set_name(kind),
            self.scope.protocol,
            self.scope.verdict
        );
        for (a, b) in &self.scope.ports {
            desc.push_str(&format!("{a}-{b},"));
        }
        format!(
            "f2b:{}:{}:{:016x}",
            self.id.label(),
            kind.suffix(),
            fnv1a(desc.as_bytes())
        )
    }
}

/// The group a rule comment `f2b:LABEL:KIND:HASH` belongs to.
pub fn comment_group(comment: &str) -> Option<GroupId> {
    let rest = comment.strip_prefix("f2b:")?;
    let mut parts = rest.rsplitn(3, ':');
    let (_hash, _kind, label) = (parts.next()?, parts.next()?, parts.next()?);
    GroupId::parse_label(label)
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

/// Does an existing set have the properties we create it with?
pub fn set_matches(info: &wire::SetInfo, kind: SetKind) -> bool {
    info.flags == kind.flags() && info.key_type == kind.key_type() && info.key_len == kind.key_len()
}

/// Is `info` our base chain as we create it (hook, priority, type)?
pub fn chain_matches(info: &wire::ChainInfo) -> bool {
    info.hook == Some((HOOK_INPUT, CHAIN_PRIORITY))
        && info.chain_type.as_deref().unwrap_or("filter") == "filter"
}

// --- addresses as set keys -------------------------------------------------------------------

/// An inclusive range of addresses of one family, as numbers (IPv4 in the low 32 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Span {
    pub first: u128,
    pub last: u128,
}

impl Span {
    pub fn of(net: &IpNet) -> Span {
        match net {
            IpNet::V4(n) => Span {
                first: u32::from(n.network()).into(),
                last: u32::from(n.broadcast()).into(),
            },
            IpNet::V6(n) => Span {
                first: u128::from(n.network()),
                last: u128::from(n.broadcast()),
            },
        }
    }
    pub fn contains(&self, other: &Span) -> bool {
        self.first <= other.first && other.last <= self.last
    }
    /// The CIDR prefixes that make up the span, in order.
    pub fn prefixes(&self, v6: bool) -> Vec<IpNet> {
        if v6 {
            ipnet::Ipv6Subnets::new(self.first.into(), self.last.into(), 0)
                .map(IpNet::V6)
                .collect()
        } else {
            ipnet::Ipv4Subnets::new((self.first as u32).into(), (self.last as u32).into(), 0)
                .map(IpNet::V4)
                .collect()
        }
    }
    pub fn first_addr(&self, v6: bool) -> IpAddr {
        addr(self.first, v6)
    }
    pub fn last_addr(&self, v6: bool) -> IpAddr {
        addr(self.last, v6)
    }
}

pub fn addr(value: u128, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(value.into())
    } else {
        IpAddr::V4((value as u32).into())
    }
}

/// A host address as a key number.
pub fn host_key(net: &IpNet) -> u128 {
    Span::of(net).first
}

/// Key bytes (network order) of a number in a set of `kind`, without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyBytes {
    buf: [u8; 16],
    len: usize,
}

impl KeyBytes {
    pub fn new(value: u128, kind: SetKind) -> KeyBytes {
        let mut buf = [0u8; 16];
        let len = if kind.is_v6() {
            buf = value.to_be_bytes();
            16
        } else {
            buf[..4].copy_from_slice(&(value as u32).to_be_bytes());
            4
        };
        KeyBytes { buf, len }
    }
    pub fn as_slice(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// A 4- or 16-byte key as a number.
pub fn key_value(key: &[u8]) -> Option<u128> {
    match key.len() {
        4 => Some(u32::from_be_bytes(key.try_into().ok()?).into()),
        16 => Some(u128::from_be_bytes(key.try_into().ok()?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firewall::PortRange;

    fn jail(ports: &[(u16, u16)], protocol: Protocol, verdict: Verdict) -> GroupSpec {
        GroupSpec::jail(&JailRules {
            name: "sshd".into(),
            ports: ports
                .iter()
                .map(|&(first, last)| PortRange { first, last })
                .collect(),
            protocol,
            verdict,
        })
        .unwrap()
    }

    #[test]
    fn names_roundtrip_and_owners_do_not_collide() {
        for k in SetKind::ALL {
            let id = GroupId::new(Owner::Jail, "my-jail_1").unwrap();
            assert_eq!(parse_set_name(&id.set_name(k)), Some((id, k)));
        }
        let feed = GroupId::new(Owner::Feed, "sshd").unwrap();
        assert_eq!(feed.set_name(SetKind::N4), "feed.sshd-n4");
        assert_eq!(
            parse_set_name("feed.sshd-n4"),
            Some((feed.clone(), SetKind::N4))
        );
        assert_ne!(
            parse_set_name("sshd-n4").map(|x| x.0),
            Some(feed),
            "a jail named like a feed is another group"
        );
        assert_eq!(parse_set_name("sshd-x4"), None);
        assert_eq!(parse_set_name("__set0"), None);
        assert_eq!(parse_set_name("a.b-v4"), None);
        assert!(valid_name(&"a".repeat(32)));
        assert!(!valid_name(&"a".repeat(33)));
        assert!(!valid_name("a b"));
        assert!(!valid_name(""));
        assert!(GroupId::new(Owner::Jail, "a.b").is_err());
    }

    #[test]
    fn ports_are_merged() {
        let s = |p: &[(u16, u16)], proto| {
            let ranges: Vec<PortRange> = p
                .iter()
                .map(|&(first, last)| PortRange { first, last })
                .collect();
            Scope::new(&ranges, proto, Verdict::Drop).map(|s| s.ports)
        };
        assert_eq!(
            s(&[(80, 90), (22, 22), (85, 100), (101, 101)], Protocol::Tcp).unwrap(),
            vec![(22, 22), (80, 101)]
        );
        assert!(s(&[(0, 100), (50, 65535)], Protocol::Tcp)
            .unwrap()
            .is_empty());
        assert!(s(&[(22, 22)], Protocol::All).unwrap().is_empty());
        assert_eq!(
            s(&[(30, 22)], Protocol::Tcp),
            Err(PortRange {
                first: 30,
                last: 22
            })
        );
    }

    #[test]
    fn comment_changes_with_scope_and_names_its_group() {
        let a = jail(&[(22, 22)], Protocol::Tcp, Verdict::Drop).rule_comment(SetKind::V4);
        let b = jail(&[(22, 22)], Protocol::Tcp, Verdict::Reject).rule_comment(SetKind::V4);
        let c = jail(&[(2222, 2222)], Protocol::Tcp, Verdict::Drop).rule_comment(SetKind::V4);
        let d = jail(&[(22, 22)], Protocol::Tcp, Verdict::Drop).rule_comment(SetKind::V6);
        // The comment f2b wrote before set groups existed: an upgrade keeps existing rules.
        assert_eq!(a, "f2b:sshd:v4:e12851a3cbdbd9e2");
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
        assert_eq!(
            comment_group(&a),
            Some(GroupId::new(Owner::Jail, "sshd").unwrap())
        );
        assert_eq!(
            comment_group("f2b:feed.drop:n4:0123"),
            Some(GroupId::new(Owner::Feed, "drop").unwrap())
        );
        assert_eq!(comment_group("something else"), None);
    }

    #[test]
    fn hosts_go_to_host_sets_when_the_group_has_them() {
        let n = |s: &str| s.parse::<IpNet>().unwrap();
        assert_eq!(
            SetKind::for_net(&n("10.0.0.1/32"), &SetKind::ALL),
            SetKind::V4
        );
        assert_eq!(
            SetKind::for_net(&n("10.0.0.0/24"), &SetKind::ALL),
            SetKind::N4
        );
        assert_eq!(SetKind::for_net(&n("::1/128"), &SetKind::ALL), SetKind::V6);
        assert_eq!(SetKind::for_net(&n("::/64"), &SetKind::ALL), SetKind::N6);
        assert_eq!(
            SetKind::for_net(&n("10.0.0.1/32"), &SetKind::INTERVALS),
            SetKind::N4
        );
    }

    #[test]
    fn spans_and_keys() {
        let s = Span::of(&"10.0.0.0/24".parse().unwrap());
        assert_eq!((s.first, s.last), (0x0a00_0000, 0x0a00_00ff));
        assert_eq!(
            KeyBytes::new(s.last + 1, SetKind::N4).as_slice(),
            [10, 0, 1, 0]
        );
        assert_eq!(KeyBytes::new(1, SetKind::V6).as_slice().len(), 16);
        assert_eq!(key_value(&[10, 0, 1, 0]), Some(0x0a00_0100));
        let odd = Span {
            first: 0x1400_0000,
            last: 0x1400_0002,
        };
        assert_eq!(
            odd.prefixes(false),
            vec![
                "20.0.0.0/31".parse::<IpNet>().unwrap(),
                "20.0.0.2/32".parse().unwrap()
            ]
        );
        let v6: IpNet = "2001:db8:1:2::/64".parse().unwrap();
        let s6 = Span::of(&v6);
        assert_eq!(s6.prefixes(true), vec![v6]);
        assert!(s6.contains(&Span::of(&"2001:db8:1:2::5/128".parse().unwrap())));
    }
}

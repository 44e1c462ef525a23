//! The rule of a set group's set, as nftnl expressions:
//! `meta nfproto … [meta l4proto … [th dport …]] ip[6] saddr @SET counter drop|reject`, with
//! the anonymous sets (`{ tcp, udp }`, port lists) it needs in the same transaction.

use std::net::Ipv4Addr;

use nftnl::expr::{
    Cmp, CmpOp, Counter, IcmpCode, Ipv4HeaderField, Ipv6HeaderField, Lookup, Meta,
    NetworkHeaderField, Payload, RejectionType, TcpHeaderField, TransportHeaderField,
    Verdict as NftVerdict,
};
use nftnl::set::{Set, SetKey};
use nftnl::{Chain, MsgType, ProtoFamily, Rule};

use super::encode::{cstring, table, Batch, CHAIN};
use super::ffi;
use super::layout::{GroupSpec, SetKind, CHAIN_NAME};
use super::wire;
use crate::firewall::{Protocol, Verdict, TABLE_NAME};

/// Key of an anonymous `meta l4proto { tcp, udp }` set (`inet_proto`).
struct ProtoKey;
impl SetKey for ProtoKey {
    const TYPE: u32 = 12;
    const LEN: u32 = 1;
    fn data(&self) -> Box<[u8]> {
        Box::new([])
    }
}

/// Key of an anonymous `th dport { … }` set (`inet_service`).
struct PortKey;
impl SetKey for PortKey {
    const TYPE: u32 = 13;
    const LEN: u32 = 2;
    fn data(&self) -> Box<[u8]> {
        Box::new([])
    }
}

impl Batch {
    /// An anonymous constant set bound to the rule that follows it in the same batch
    /// (`l4proto { tcp, udp }`, `th dport { … }`); returns its lookup expression.
    fn add_anon_set<K: SetKey>(&mut self, ranges: &[(u16, u16)], id: u32, what: &str) -> Lookup {
        let table = table();
        let mut set = Set::<K>::new(c"__set%d", id, &table, ProtoFamily::Inet);
        let interval = ranges.iter().any(|(a, b)| a != b);
        if interval {
            let flags = wire::NFT_SET_ANONYMOUS | wire::NFT_SET_CONSTANT | wire::NFT_SET_INTERVAL;
            ffi::set_flags(&mut set, flags);
        }
        let key = |v: u16| -> Vec<u8> {
            if K::LEN == 1 {
                vec![v as u8]
            } else {
                v.to_be_bytes().to_vec()
            }
        };
        let max = if K::LEN == 1 { 0xff } else { u16::MAX };
        for &(a, b) in ranges {
            if !interval {
                ffi::push_elem(&mut set, &key(a), 0, None, &[]);
            } else if b == max {
                ffi::push_elem(&mut set, &key(a), 0, None, &wire::UDATA_INTERVAL_OPEN);
            } else {
                ffi::push_elem(&mut set, &key(a), 0, None, &[]);
                let end = wire::NFT_SET_ELEM_INTERVAL_END;
                ffi::push_elem(&mut set, &key(b + 1), end, None, &[]);
            }
        }
        self.object(&set, MsgType::Add, format!("add anonymous set for {what}"));
        for msg in set.elems_iter() {
            self.object(
                &msg,
                MsgType::Add,
                format!("add elements of the anonymous set for {what}"),
            );
        }
        Lookup::new(&set)
    }

    /// Adds the rule of `group`'s set `kind` (and the anonymous sets it needs); `next_id` hands
    /// out transaction-local set ids.
    pub fn add_rule(&mut self, group: &GroupSpec, kind: SetKind, next_id: &mut u32) {
        let scope = &group.scope;
        let comment = group.rule_comment(kind);
        let set_name = group.id.set_name(kind);
        let table = table();
        let chain = Chain::new(CHAIN, &table);
        let mut rule = Rule::new(&chain);

        // meta nfproto ipv4|ipv6: required before a network-header payload in an inet table.
        rule.add_expr(&Meta::NfProto);
        let nfproto = if kind.is_v6() {
            wire::NFPROTO_IPV6
        } else {
            wire::NFPROTO_IPV4
        };
        rule.add_expr(&Cmp::new(CmpOp::Eq, nfproto));

        if scope.protocol != Protocol::All {
            rule.add_expr(&Meta::L4Proto);
            let (tcp, udp) = (libc::IPPROTO_TCP as u8, libc::IPPROTO_UDP as u8);
            match scope.protocol {
                Protocol::Tcp => rule.add_expr(&Cmp::new(CmpOp::Eq, tcp)),
                Protocol::Udp => rule.add_expr(&Cmp::new(CmpOp::Eq, udp)),
                _ => {
                    *next_id += 1;
                    let protos = [(tcp.into(), tcp.into()), (udp.into(), udp.into())];
                    let lookup = self.add_anon_set::<ProtoKey>(&protos, *next_id, &comment);
                    rule.add_expr(&lookup);
                }
            }
            if !scope.ports.is_empty() {
                // th dport (same offset for TCP and UDP).
                let dport = TransportHeaderField::Tcp(TcpHeaderField::Dport);
                rule.add_expr(&Payload::Transport(dport));
                match scope.ports[..] {
                    [(a, b)] if a == b => rule.add_expr(&Cmp::new(CmpOp::Eq, &a.to_be_bytes()[..])),
                    _ => {
                        *next_id += 1;
                        let lookup = self.add_anon_set::<PortKey>(&scope.ports, *next_id, &comment);
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
        let named = Set::<Ipv4Addr>::new_named(&cstring(&set_name), 0, &table, ProtoFamily::Inet);
        rule.add_expr(&Lookup::new(&named));
        rule.add_expr(&Counter);
        let verdict = match (scope.verdict, scope.protocol) {
            (Verdict::Drop, _) => NftVerdict::Drop,
            (Verdict::Reject, Protocol::Tcp) => NftVerdict::Reject(RejectionType::TcpRst),
            (Verdict::Reject, _) => NftVerdict::Reject(RejectionType::Icmp(IcmpCode::PortUnreach)),
        };
        rule.add_expr(&verdict);
        // Comments are short (< 64 bytes), far below NFTNL_UDATA_COMMENT_MAXLEN.
        rule.set_comment(cstring(&comment))
            .expect("rule comment fits");
        let what = format!("add rule inet {TABLE_NAME} {CHAIN_NAME} for set {set_name}");
        self.object(&rule, MsgType::Add, what);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firewall::JailRules;

    #[test]
    fn setup_objects_are_described() {
        let port = |p| crate::firewall::PortRange { first: p, last: p };
        let web = JailRules {
            name: "web".into(),
            ports: vec![port(80), port(443)],
            protocol: Protocol::TcpUdp,
            verdict: Verdict::Reject,
        };
        let g = GroupSpec::jail(&web).unwrap();
        let mut b = Batch::new(1);
        b.add_table();
        b.add_chain();
        b.add_set("web-v4", SetKind::V4, 1);
        let mut id = 1;
        b.add_rule(&g, SetKind::V4, &mut id);
        assert_eq!(id, 3, "two anonymous sets: protocols and ports");
        assert_eq!(b.describe(2, None), "add set inet f2b web-v4");
        assert_eq!(
            b.describe(b.len() - 1, None),
            "add rule inet f2b input for set web-v4"
        );
        assert_eq!(
            b.describe(99, None),
            format!("the transaction of {} messages", b.len())
        );
    }
}

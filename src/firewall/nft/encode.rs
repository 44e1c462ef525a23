//! Transactions as libnftnl encodes them: one contiguous buffer BATCH_BEGIN … BATCH_END (sent
//! with one sendmsg however many pages it spans), and a record of every message in it, so that
//! an error acknowledgement — its sequence number and the offset of the offending attribute —
//! names what failed and which changes it stood for.
//!
//! Every message is built by libnftnl: tables, chains, rules and sets through the `nftnl` crate,
//! set flags and elements with timeouts through the small wrapper in `ffi.rs`.

use std::ffi::{CStr, CString};
use std::net::{Ipv4Addr, Ipv6Addr};

use nftnl::set::Set;
use nftnl::{Chain, ChainType, Hook, MsgType, NlMsg, Policy, ProtoFamily, Rule, Table};

use super::ffi::{self, Msg};
use super::layout::{self, KeyBytes, SetKind, CHAIN_NAME, CHAIN_PRIORITY};
use super::overlay::Elem;
use super::wire;
use crate::firewall::TABLE_NAME;

const TABLE: &CStr = c"f2b";
pub(super) const CHAIN: &CStr = c"input";

pub(super) fn table() -> Table {
    Table::new(TABLE, ProtoFamily::Inet)
}

pub(super) fn cstring(s: &str) -> CString {
    // Names are validated ([A-Za-z0-9_.-]) and never contain NUL.
    CString::new(s).expect("nftables names contain no NUL")
}

/// What a message of the batch does.
#[derive(Debug)]
enum Entry {
    /// A table, chain, set or rule: "add set inet f2b sshd-v4".
    Object { what: String },
    /// Elements `first..` of element list `list`.
    Elems {
        offset: usize,
        list: usize,
        first: usize,
    },
}

/// The elements sent for one set in one direction, with the group of changes each element
/// (a start or an end of a range counts as one) stands for.
#[derive(Debug)]
pub struct ElemList {
    pub set: String,
    pub del: bool,
    pub groups: Vec<u32>,
}

/// One nf_tables transaction. Message `i` carries sequence number `begin_seq + 1 + i`.
pub struct Batch {
    buf: Vec<u8>,
    begin_seq: u32,
    entries: Vec<Entry>,
    lists: Vec<ElemList>,
    ended: bool,
}

impl Batch {
    pub fn new(begin_seq: u32) -> Batch {
        // Room for one message of any size plus a few small ones: one allocation for most
        // transactions.
        let mut buf = Vec::with_capacity(nftnl::nft_nlmsg_maxsize() as usize + 4096);
        ffi::put(&mut buf, begin_seq, Msg::BatchBegin);
        Batch {
            buf,
            begin_seq,
            entries: Vec::new(),
            lists: Vec::new(),
            ended: false,
        }
    }

    /// Messages between BATCH_BEGIN and BATCH_END.
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    pub fn begin_seq(&self) -> u32 {
        self.begin_seq
    }

    /// The whole transaction, BATCH_END included.
    pub fn finish(&mut self) -> &[u8] {
        if !self.ended {
            let seq = self.next_seq();
            ffi::put(&mut self.buf, seq, Msg::BatchEnd);
            self.ended = true;
        }
        &self.buf
    }

    fn next_seq(&self) -> u32 {
        self.begin_seq
            .wrapping_add(1)
            .wrapping_add(self.entries.len() as u32)
    }

    pub(super) fn object(&mut self, obj: &dyn NlMsg, ty: MsgType, what: String) {
        assert!(!self.ended, "message added after BATCH_END");
        let seq = self.next_seq();
        ffi::put(&mut self.buf, seq, Msg::Object(obj, ty));
        self.entries.push(Entry::Object { what });
    }

    // --- setup ---------------------------------------------------------------------------

    /// Creates the table, or adopts the existing one.
    pub fn add_table(&mut self) {
        self.object(
            &table(),
            MsgType::Add,
            format!("add table inet {TABLE_NAME}"),
        );
    }

    pub fn del_table(&mut self) {
        self.object(
            &table(),
            MsgType::Del,
            format!("delete table inet {TABLE_NAME}"),
        );
    }

    /// Creates the base chain, or resets an existing one's policy to accept.
    pub fn add_chain(&mut self) {
        let table = table();
        let mut chain = Chain::new(CHAIN, &table);
        chain.set_hook(Hook::In, CHAIN_PRIORITY);
        chain.set_type(ChainType::Filter);
        chain.set_policy(Policy::Accept);
        let what = format!("add chain inet {TABLE_NAME} {CHAIN_NAME}");
        self.object(&chain, MsgType::Add, what);
    }

    pub fn del_chain(&mut self, name: &str) {
        let table = table();
        let chain = Chain::new(cstring(name), &table);
        self.object(
            &chain,
            MsgType::Del,
            format!("delete chain inet {TABLE_NAME} {name}"),
        );
    }

    pub fn del_rule(&mut self, chain: &str, handle: u64, comment: Option<&str>) {
        let table = table();
        let chain_obj = Chain::new(cstring(chain), &table);
        let mut rule = Rule::new(&chain_obj);
        rule.set_handle(handle);
        let what = format!(
            "delete rule inet {TABLE_NAME} {chain} handle {handle} ({})",
            comment.unwrap_or("no comment")
        );
        self.object(&rule, MsgType::Del, what);
    }

    /// Creates a named set of `kind` (`id`: transaction-local id).
    pub fn add_set(&mut self, name: &str, kind: SetKind, id: u32) {
        let table = table();
        let name_c = cstring(name);
        let what = format!("add set inet {TABLE_NAME} {name}");
        if kind.is_v6() {
            let mut set = Set::<Ipv6Addr>::new_named(&name_c, id, &table, ProtoFamily::Inet);
            ffi::set_flags(&mut set, kind.flags());
            self.object(&set, MsgType::Add, what);
        } else {
            let mut set = Set::<Ipv4Addr>::new_named(&name_c, id, &table, ProtoFamily::Inet);
            ffi::set_flags(&mut set, kind.flags());
            self.object(&set, MsgType::Add, what);
        }
    }

    pub fn del_set(&mut self, name: &str) {
        let table = table();
        let set = Set::<Ipv4Addr>::new_named(&cstring(name), 0, &table, ProtoFamily::Inet);
        self.object(
            &set,
            MsgType::Del,
            format!("delete set inet {TABLE_NAME} {name}"),
        );
    }

    // --- elements --------------------------------------------------------------------------

    /// Adds or deletes `elems` of set `set`. Elements of `isolated` groups each go in messages
    /// of their own, so that an error without an element offset still names its group.
    pub fn elems(
        &mut self,
        set: &str,
        kind: SetKind,
        del: bool,
        elems: &[Elem],
        now: u64,
        isolated: &dyn Fn(u32) -> bool,
    ) {
        self.elem_list(
            set,
            kind,
            del,
            elems.iter().filter(|e| !isolated(e.group)),
            now,
        );
        let mut apart: Vec<&Elem> = elems.iter().filter(|e| isolated(e.group)).collect();
        apart.sort_by_key(|e| e.group);
        for one in apart.chunk_by(|a, b| a.group == b.group) {
            self.elem_list(set, kind, del, one.iter().copied(), now);
        }
    }

    fn elem_list<'e>(
        &mut self,
        set: &str,
        kind: SetKind,
        del: bool,
        elems: impl Iterator<Item = &'e Elem>,
        now: u64,
    ) {
        let mut elems = elems.peekable();
        if elems.peek().is_none() {
            return;
        }
        let table = table();
        let name = cstring(set);
        let mut handle = Set::<Ipv4Addr>::new_named(&name, 0, &table, ProtoFamily::Inet);
        let mut groups = Vec::with_capacity(elems.size_hint().0 * 2);
        for e in elems {
            let timeout = if del { None } else { e.expiry.timeout_ms(now) };
            let start = KeyBytes::new(e.span.first, kind);
            if !kind.is_interval() {
                ffi::push_elem(&mut handle, start.as_slice(), 0, timeout, &[]);
                groups.push(e.group);
            } else if e.span.last >= kind.max_key() {
                // Reaches the last address: no end element, marked open as nft does.
                let udata: &[u8] = if del { &[] } else { &wire::UDATA_INTERVAL_OPEN };
                ffi::push_elem(&mut handle, start.as_slice(), 0, timeout, udata);
                groups.push(e.group);
            } else {
                // The start carries the timeout; the end (last + 1) must not.
                ffi::push_elem(&mut handle, start.as_slice(), 0, timeout, &[]);
                let end = KeyBytes::new(e.span.last + 1, kind);
                let flag = wire::NFT_SET_ELEM_INTERVAL_END;
                ffi::push_elem(&mut handle, end.as_slice(), flag, None, &[]);
                groups.extend([e.group, e.group]);
            }
        }
        let list = self.lists.len();
        let ty = if del { MsgType::Del } else { MsgType::Add };
        let mut first = 0;
        for msg in handle.elems_iter() {
            let seq = self.next_seq();
            let offset = ffi::put(&mut self.buf, seq, Msg::Object(&msg, ty));
            let count = wire::elem_nests(&self.buf[offset..]).count();
            self.entries.push(Entry::Elems {
                offset,
                list,
                first,
            });
            first += count;
        }
        debug_assert_eq!(first, groups.len(), "every element went into a message");
        self.lists.push(ElemList {
            set: set.to_string(),
            del,
            groups,
        });
    }

    // --- errors ----------------------------------------------------------------------------

    fn message(&self, offset: usize) -> &[u8] {
        let len = wire::ne32(&self.buf[offset..]).unwrap_or(0) as usize;
        &self.buf[offset..(offset + len).min(self.buf.len())]
    }

    /// The element list of message `index`, if it is an element message.
    pub fn elem_list_of(&self, index: usize) -> Option<&ElemList> {
        match self.entries.get(index)? {
            Entry::Elems { list, .. } => self.lists.get(*list),
            Entry::Object { .. } => None,
        }
    }

    /// The groups of the elements in message `index`.
    pub fn groups_of(&self, index: usize) -> Vec<u32> {
        let Some(Entry::Elems {
            offset,
            list,
            first,
        }) = self.entries.get(index)
        else {
            return Vec::new();
        };
        let n = wire::elem_nests(self.message(*offset)).count();
        let mut g: Vec<u32> = self.lists[*list].groups[*first..*first + n].to_vec();
        g.dedup();
        g
    }

    /// The group of the element the kernel's error `offset` points at in message `index`.
    pub fn group_at(&self, index: usize, offset: Option<u32>) -> Option<u32> {
        let Some(Entry::Elems {
            offset: at,
            list,
            first,
        }) = self.entries.get(index)
        else {
            return None;
        };
        let k = wire::elem_at(self.message(*at), offset?)?;
        self.lists[*list].groups.get(first + k).copied()
    }

    /// Names message `index` for an error; an element message names the element the
    /// kernel's error `offset` points at.
    pub fn describe(&self, index: usize, offset: Option<u32>) -> String {
        match self.entries.get(index) {
            None => format!("the transaction of {} messages", self.len()),
            Some(Entry::Object { what, .. }) => what.clone(),
            Some(Entry::Elems {
                offset: at, list, ..
            }) => {
                let l = &self.lists[*list];
                let (op, prep) = if l.del {
                    ("delete", "from")
                } else {
                    ("add", "to")
                };
                let msg = self.message(*at);
                let elem = offset
                    .and_then(|o| wire::elem_at(msg, o))
                    .and_then(|k| wire::elem_nests(msg).nth(k))
                    .and_then(|(_, data)| wire::parse_elem(data));
                let set = &l.set;
                match elem.and_then(|e| Some((layout::key_value(&e.key)?, e))) {
                    Some((v, e)) => {
                        let end = if e.flags & wire::NFT_SET_ELEM_INTERVAL_END != 0 {
                            " (interval end)"
                        } else {
                            ""
                        };
                        let a = layout::addr(v, e.key.len() == 16);
                        format!("{op} element {a}{end} {prep} set inet {TABLE_NAME} {set}")
                    }
                    None => format!("{op} elements {prep} set inet {TABLE_NAME} {set}"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firewall::nft::index::Expiry;
    use crate::firewall::nft::layout::Span;

    fn span_of(s: &str) -> Span {
        Span::of(&s.parse().unwrap())
    }

    fn elems(n: u32) -> Vec<Elem> {
        (0..n)
            .map(|i| Elem {
                span: Span {
                    first: 0x0a00_0000 + u128::from(i),
                    last: 0x0a00_0000 + u128::from(i),
                },
                expiry: Expiry(60_000),
                group: i,
            })
            .collect()
    }

    #[test]
    fn table_name_matches() {
        assert_eq!(TABLE.to_str().unwrap(), TABLE_NAME);
        assert_eq!(CHAIN.to_str().unwrap(), CHAIN_NAME);
    }

    #[test]
    fn large_element_lists_span_messages_and_errors_map_back() {
        let mut b = Batch::new(100);
        let e = elems(20_000);
        b.elems("sshd-v4", SetKind::V4, false, &e, 0, &|_| false);
        assert!(b.len() > 1, "20,000 elements do not fit one message");
        let bytes = b.finish().to_vec();
        let msgs: Vec<wire::Msg> = wire::messages(&bytes).collect();
        assert_eq!(msgs.len(), b.len() + 2);
        let seqs: Vec<u32> = msgs.iter().map(|m| m.seq).collect();
        assert_eq!(seqs, (100..100 + msgs.len() as u32).collect::<Vec<_>>());
        assert!(msgs.iter().all(|m| m.raw.len() <= 65536 + 4096));
        // The 3rd element of the 2nd message is element first + 2 overall.
        let second = msgs[2].raw;
        let (at, _) = wire::elem_nests(second).nth(2).unwrap();
        let g = b.group_at(1, Some(at as u32 + 6)).unwrap();
        let first_of_second = wire::elem_nests(msgs[1].raw).count() as u32;
        assert_eq!(g, first_of_second + 2);
        let text = b.describe(1, Some(at as u32 + 6));
        let addr = std::net::Ipv4Addr::from(0x0a00_0000 + g);
        assert_eq!(text, format!("add element {addr} to set inet f2b sshd-v4"));
        assert_eq!(b.group_at(1, None), None);
        assert_eq!(b.groups_of(1).len(), wire::elem_nests(second).count());
    }

    #[test]
    fn intervals_have_a_start_with_the_timeout_and_an_end() {
        let mut b = Batch::new(1);
        let e = [
            Elem {
                span: span_of("10.0.0.0/24"),
                expiry: Expiry(5_000),
                group: 7,
            },
            Elem {
                span: span_of("255.255.255.0/24"),
                expiry: Expiry::NEVER,
                group: 8,
            },
        ];
        b.elems("sshd-n4", SetKind::N4, false, &e, 1_000, &|g| g == 8);
        assert_eq!(b.len(), 2, "the isolated group has a message of its own");
        let bytes = b.finish().to_vec();
        let m = wire::messages(&bytes).nth(1).unwrap();
        let parsed: Vec<wire::ElemInfo> = wire::elem_nests(m.raw)
            .filter_map(|(_, d)| wire::parse_elem(d))
            .collect();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].key, [10, 0, 0, 0]);
        assert_eq!(parsed[0].timeout, Some(4_000));
        assert_eq!(parsed[1].key, [10, 0, 1, 0]);
        assert_eq!(parsed[1].flags, wire::NFT_SET_ELEM_INTERVAL_END);
        assert_eq!(parsed[1].timeout, None);
        assert_eq!(b.groups_of(0), vec![7]);
        assert_eq!(b.groups_of(1), vec![8]);
        assert!(b
            .elem_list_of(1)
            .is_some_and(|l| !l.del && l.set == "sshd-n4"));
    }
}

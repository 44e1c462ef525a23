//! Netlink wire format as the kernel sends it: constants and a safe, bounds-checked parser for
//! replies, acknowledgements and events. No FFI: kernel data is never handed to C. (Messages
//! we send are encoded by libnftnl, see `encode.rs`.)

// --- netlink core -------------------------------------------------------------------------
pub const NLMSG_HDRLEN: usize = 16;
pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
pub const NLMSG_OVERRUN: u16 = 4;

pub const NLM_F_ACK: u16 = 0x4;
pub const NLM_F_DUMP_INTR: u16 = 0x10;
pub const NLM_F_DUMP: u16 = 0x300;
/// In an NLMSG_ERROR: the original payload was not echoed (NETLINK_CAP_ACK).
const NLM_F_CAPPED: u16 = 0x100;
/// In an NLMSG_ERROR: extended-ack TLVs follow.
const NLM_F_ACK_TLVS: u16 = 0x200;

const NLMSGERR_ATTR_MSG: u16 = 1;
const NLMSGERR_ATTR_OFFS: u16 = 2;

const NLA_TYPE_MASK: u16 = 0x3fff;

// --- nfnetlink / nf_tables ----------------------------------------------------------------
pub const NFNL_SUBSYS_NFTABLES: u16 = 10;
pub const NFNLGRP_NFTABLES: u32 = 7;

pub const NFPROTO_INET: u8 = 1;
pub const NFPROTO_IPV4: u8 = 2;
pub const NFPROTO_IPV6: u8 = 10;

pub const NFT_MSG_NEWTABLE: u8 = 0;
pub const NFT_MSG_GETTABLE: u8 = 1;
pub const NFT_MSG_DELTABLE: u8 = 2;
pub const NFT_MSG_NEWCHAIN: u8 = 3;
pub const NFT_MSG_GETCHAIN: u8 = 4;
pub const NFT_MSG_DELCHAIN: u8 = 5;
pub const NFT_MSG_NEWRULE: u8 = 6;
pub const NFT_MSG_GETRULE: u8 = 7;
pub const NFT_MSG_DELRULE: u8 = 8;
pub const NFT_MSG_NEWSET: u8 = 9;
pub const NFT_MSG_GETSET: u8 = 10;
pub const NFT_MSG_DELSET: u8 = 11;
pub const NFT_MSG_NEWSETELEM: u8 = 12;
pub const NFT_MSG_GETSETELEM: u8 = 13;
pub const NFT_MSG_NEWGEN: u8 = 15;
// Linux ≥ 6.3 ("destroy" commands; notifications may carry these types).
pub const NFT_MSG_DESTROYTABLE: u8 = 26;
pub const NFT_MSG_DESTROYCHAIN: u8 = 27;
pub const NFT_MSG_DESTROYRULE: u8 = 28;
pub const NFT_MSG_DESTROYSET: u8 = 29;

pub const NFTA_TABLE_NAME: u16 = 1;

pub const NFTA_CHAIN_TABLE: u16 = 1;
pub const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_HOOK: u16 = 4;
const NFTA_CHAIN_POLICY: u16 = 5;
const NFTA_CHAIN_TYPE: u16 = 7;
const NFTA_HOOK_HOOKNUM: u16 = 1;
const NFTA_HOOK_PRIORITY: u16 = 2;

pub const NFTA_RULE_TABLE: u16 = 1;
pub const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_HANDLE: u16 = 3;
const NFTA_RULE_USERDATA: u16 = 7;

pub const NFTA_SET_TABLE: u16 = 1;
pub const NFTA_SET_NAME: u16 = 2;
const NFTA_SET_FLAGS: u16 = 3;
const NFTA_SET_KEY_TYPE: u16 = 4;
const NFTA_SET_KEY_LEN: u16 = 5;

pub const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
pub const NFTA_SET_ELEM_LIST_SET: u16 = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
#[cfg(test)]
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_SET_ELEM_KEY: u16 = 1;
const NFTA_SET_ELEM_FLAGS: u16 = 3;
const NFTA_SET_ELEM_TIMEOUT: u16 = 4;
const NFTA_SET_ELEM_EXPIRATION: u16 = 5;
const NFTA_SET_ELEM_USERDATA: u16 = 6;
const NFTA_DATA_VALUE: u16 = 1;

const NFTA_GEN_PROC_PID: u16 = 2;
const NFTA_GEN_PROC_NAME: u16 = 3;

pub const NFT_SET_ANONYMOUS: u32 = 0x1;
pub const NFT_SET_CONSTANT: u32 = 0x2;
pub const NFT_SET_INTERVAL: u32 = 0x4;
pub const NFT_SET_TIMEOUT: u32 = 0x10;
pub const NFT_SET_ELEM_INTERVAL_END: u32 = 0x1;

/// Element userdata nft writes on an open-ended interval (no end element because the range
/// reaches the last address): NFTNL_UDATA_SET_ELEM_FLAGS = NFTNL_SET_ELEM_F_INTERVAL_OPEN.
pub const UDATA_INTERVAL_OPEN: [u8; 6] = [1, 4, 1, 0, 0, 0];

/// One netlink message borrowed from a receive buffer.
#[derive(Debug, Clone, Copy)]
pub struct Msg<'a> {
    pub ty: u16,
    pub flags: u16,
    pub seq: u32,
    pub pid: u32,
    /// Everything after the 16-byte header.
    pub payload: &'a [u8],
    /// The whole message, header included.
    pub raw: &'a [u8],
}

impl<'a> Msg<'a> {
    /// The first message in `buf` (a received datagram, or one of our own messages).
    pub fn parse(buf: &'a [u8]) -> Option<Msg<'a>> {
        let len = ne32(buf)? as usize;
        if len < NLMSG_HDRLEN || len > buf.len() {
            return None;
        }
        Some(Msg {
            ty: u16::from_ne_bytes([buf[4], buf[5]]),
            flags: u16::from_ne_bytes([buf[6], buf[7]]),
            seq: ne32(&buf[8..])?,
            pid: ne32(&buf[12..])?,
            payload: &buf[NLMSG_HDRLEN..len],
            raw: &buf[..len],
        })
    }
    /// The nf_tables message number, if this is an nf_tables message.
    pub fn nft_msg(&self) -> Option<u8> {
        (self.ty >> 8 == NFNL_SUBSYS_NFTABLES).then_some((self.ty & 0xff) as u8)
    }
    /// `nfgen_family` of an nfnetlink message.
    pub fn family(&self) -> Option<u8> {
        self.payload.first().copied()
    }
    /// The attributes after the 4-byte `nfgenmsg`.
    pub fn attrs(&self) -> Attrs<'a> {
        Attrs::new(self.payload.get(4..).unwrap_or(&[]))
    }
}

/// Iterates over the messages in a buffer; stops at the first malformed header.
#[cfg(test)]
pub fn messages(buf: &[u8]) -> impl Iterator<Item = Msg<'_>> {
    let mut rest = buf;
    std::iter::from_fn(move || {
        let msg = Msg::parse(rest)?;
        rest = rest.get(align4(msg.raw.len())..).unwrap_or(&[]);
        Some(msg)
    })
}

pub fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Netlink attributes: (type without the NESTED/BYTEORDER bits, offset of the attribute
/// header within the buffer given to [`Attrs::new`], payload).
#[derive(Clone)]
pub struct Attrs<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Attrs<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Attrs { buf, pos: 0 }
    }
    /// First attribute of the given type.
    pub fn get(&self, ty: u16) -> Option<&'a [u8]> {
        self.clone().find(|a| a.0 == ty).map(|a| a.2)
    }
}

impl<'a> Iterator for Attrs<'a> {
    type Item = (u16, usize, &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.buf.get(self.pos..)?;
        if rest.len() < 4 {
            return None;
        }
        let len = u16::from_ne_bytes([rest[0], rest[1]]) as usize;
        let ty = u16::from_ne_bytes([rest[2], rest[3]]) & NLA_TYPE_MASK;
        if len < 4 || len > rest.len() {
            self.pos = self.buf.len();
            return None;
        }
        let at = self.pos;
        self.pos += align4(len).max(4);
        Some((ty, at, &rest[4..len]))
    }
}

pub fn be32(d: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(d.get(..4)?.try_into().ok()?))
}
pub fn be64(d: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(d.get(..8)?.try_into().ok()?))
}
pub fn ne32(d: &[u8]) -> Option<u32> {
    Some(u32::from_ne_bytes(d.get(..4)?.try_into().ok()?))
}
/// A NUL-terminated string attribute.
pub fn string(d: &[u8]) -> String {
    let end = d.iter().position(|&b| b == 0).unwrap_or(d.len());
    String::from_utf8_lossy(&d[..end]).into_owned()
}

// --- acknowledgements ---------------------------------------------------------------------

/// A decoded NLMSG_ERROR (error 0 = ACK).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    /// 0 for an ACK, a positive errno otherwise.
    pub errno: i32,
    /// Sequence number of the request it answers.
    pub seq: u32,
    /// Offset of the offending attribute within the request (extended ACK).
    pub offset: Option<u32>,
    /// Kernel's extended-ACK message, if any.
    pub message: Option<String>,
}

pub fn parse_ack(msg: &Msg<'_>) -> Option<Ack> {
    if msg.ty != NLMSG_ERROR {
        return None;
    }
    let p = msg.payload;
    let error = ne32(p)? as i32;
    // The original header follows; its seq is the request's.
    let orig = p.get(4..4 + NLMSG_HDRLEN)?;
    let orig_len = ne32(orig)? as usize;
    let mut ack = Ack {
        errno: error.checked_neg().unwrap_or(i32::MAX).max(0),
        seq: ne32(&orig[8..])?,
        offset: None,
        message: None,
    };
    if msg.flags & NLM_F_ACK_TLVS != 0 {
        let tlv_start = if msg.flags & NLM_F_CAPPED != 0 || error == 0 {
            4 + NLMSG_HDRLEN
        } else {
            4 + align4(orig_len)
        };
        for (ty, _, d) in Attrs::new(p.get(tlv_start..).unwrap_or(&[])) {
            match ty {
                NLMSGERR_ATTR_OFFS => ack.offset = ne32(d),
                NLMSGERR_ATTR_MSG => ack.message = Some(string(d)),
                _ => {}
            }
        }
    }
    Some(ack)
}

/// Result code of an NLMSG_DONE (0 or a positive errno).
pub fn done_errno(msg: &Msg<'_>) -> i32 {
    ne32(msg.payload).map_or(0, |c| (c as i32).checked_neg().unwrap_or(0).max(0))
}

// --- set element messages (our own, as libnftnl encoded them) -------------------------------

/// The element nests of a NEWSETELEM/DELSETELEM message as libnftnl encodes it: offset of each
/// nest from the start of the message (header included), and its contents, in order. (libnftnl
/// numbers the nests 1, 2, 3…; the kernel, like this parser, takes every nest in the list.)
pub fn elem_nests(msg: &[u8]) -> impl Iterator<Item = (usize, &[u8])> + '_ {
    // nlmsghdr (16) + nfgenmsg (4), then the attributes.
    const ATTRS: usize = NLMSG_HDRLEN + 4;
    let len = ne32(msg).map_or(0, |l| l as usize).min(msg.len());
    let list = Attrs::new(msg.get(ATTRS..len).unwrap_or(&[]))
        .find(|a| a.0 == NFTA_SET_ELEM_LIST_ELEMENTS)
        .map(|(_, at, data)| (ATTRS + at + 4, data));
    list.into_iter()
        .flat_map(|(base, data)| Attrs::new(data).map(move |(_, at, e)| (base + at, e)))
}

/// Which element of `msg` the kernel's error offset points into (its position in the message).
pub fn elem_at(msg: &[u8], offset: u32) -> Option<usize> {
    let offset = offset as usize;
    let mut found = None;
    for (i, (start, data)) in elem_nests(msg).enumerate() {
        if start > offset {
            break;
        }
        if offset < start + 4 + data.len() {
            found = Some(i);
        }
    }
    found
}

// --- nf_tables objects ---------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainInfo {
    pub table: String,
    pub name: String,
    /// (hook number, priority) for base chains.
    pub hook: Option<(u32, i32)>,
    pub policy: Option<u32>,
    pub chain_type: Option<String>,
}

pub fn parse_chain(msg: &Msg<'_>) -> ChainInfo {
    let a = msg.attrs();
    let hook = a.get(NFTA_CHAIN_HOOK).and_then(|h| {
        let h = Attrs::new(h);
        Some((
            be32(h.get(NFTA_HOOK_HOOKNUM)?)?,
            be32(h.get(NFTA_HOOK_PRIORITY)?)? as i32,
        ))
    });
    ChainInfo {
        table: a.get(NFTA_CHAIN_TABLE).map(string).unwrap_or_default(),
        name: a.get(NFTA_CHAIN_NAME).map(string).unwrap_or_default(),
        hook,
        policy: a.get(NFTA_CHAIN_POLICY).and_then(be32),
        chain_type: a.get(NFTA_CHAIN_TYPE).map(string),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetInfo {
    pub table: String,
    pub name: String,
    pub flags: u32,
    pub key_type: u32,
    pub key_len: u32,
}

pub fn parse_set(msg: &Msg<'_>) -> SetInfo {
    let a = msg.attrs();
    SetInfo {
        table: a.get(NFTA_SET_TABLE).map(string).unwrap_or_default(),
        name: a.get(NFTA_SET_NAME).map(string).unwrap_or_default(),
        flags: a.get(NFTA_SET_FLAGS).and_then(be32).unwrap_or(0),
        key_type: a.get(NFTA_SET_KEY_TYPE).and_then(be32).unwrap_or(0),
        key_len: a.get(NFTA_SET_KEY_LEN).and_then(be32).unwrap_or(0),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleInfo {
    pub table: String,
    pub chain: String,
    pub handle: u64,
    pub comment: Option<String>,
}

pub fn parse_rule(msg: &Msg<'_>) -> RuleInfo {
    let a = msg.attrs();
    RuleInfo {
        table: a.get(NFTA_RULE_TABLE).map(string).unwrap_or_default(),
        chain: a.get(NFTA_RULE_CHAIN).map(string).unwrap_or_default(),
        handle: a.get(NFTA_RULE_HANDLE).and_then(be64).unwrap_or(0),
        comment: a.get(NFTA_RULE_USERDATA).and_then(udata_comment),
    }
}

/// The comment TLV (type 0, NFTNL_UDATA_RULE_COMMENT) of a rule's userdata.
fn udata_comment(mut d: &[u8]) -> Option<String> {
    while d.len() >= 2 {
        let (ty, len) = (d[0], d[1] as usize);
        let value = d.get(2..2 + len)?;
        if ty == 0 {
            return Some(string(value));
        }
        d = &d[2 + len..];
    }
    None
}

/// One set element as dumped by the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElemInfo {
    pub key: Vec<u8>,
    pub flags: u32,
    /// Configured timeout in ms.
    pub timeout: Option<u64>,
    /// Remaining time in ms.
    pub expiration: Option<u64>,
    /// nft's "open interval" mark (a range that reaches the last address has no end element).
    pub open: bool,
}

/// The elements of a NEWSETELEM message of the given table and set (a dump reply).
pub fn parse_set_elems(msg: &Msg<'_>, table: &str, set: &str) -> Vec<ElemInfo> {
    let a = msg.attrs();
    let named = |ty, want: &str| a.get(ty).is_none_or(|d| string(d) == want);
    if !named(NFTA_SET_ELEM_LIST_TABLE, table) || !named(NFTA_SET_ELEM_LIST_SET, set) {
        return Vec::new();
    }
    let Some(list) = a.get(NFTA_SET_ELEM_LIST_ELEMENTS) else {
        return Vec::new();
    };
    Attrs::new(list)
        .filter_map(|(_, _, e)| parse_elem(e))
        .collect()
}

/// Parses the inside of one NFTA_LIST_ELEM nest.
pub fn parse_elem(e: &[u8]) -> Option<ElemInfo> {
    let ea = Attrs::new(e);
    let key = Attrs::new(ea.get(NFTA_SET_ELEM_KEY)?)
        .get(NFTA_DATA_VALUE)?
        .to_vec();
    Some(ElemInfo {
        key,
        flags: ea.get(NFTA_SET_ELEM_FLAGS).and_then(be32).unwrap_or(0),
        timeout: ea.get(NFTA_SET_ELEM_TIMEOUT).and_then(be64),
        expiration: ea.get(NFTA_SET_ELEM_EXPIRATION).and_then(be64),
        open: ea
            .get(NFTA_SET_ELEM_USERDATA)
            .is_some_and(|u| u == UDATA_INTERVAL_OPEN),
    })
}

/// Table an nf_tables notification refers to, and the object's own name (for rules: the
/// chain).
pub fn object_names(msg: &Msg<'_>, nft: u8) -> (String, String) {
    let a = msg.attrs();
    let (t, n) = match nft {
        NFT_MSG_DELTABLE | NFT_MSG_DESTROYTABLE | NFT_MSG_NEWTABLE => {
            (NFTA_TABLE_NAME, NFTA_TABLE_NAME)
        }
        NFT_MSG_DELCHAIN | NFT_MSG_DESTROYCHAIN | NFT_MSG_NEWCHAIN => {
            (NFTA_CHAIN_TABLE, NFTA_CHAIN_NAME)
        }
        NFT_MSG_DELSET | NFT_MSG_DESTROYSET | NFT_MSG_NEWSET => (NFTA_SET_TABLE, NFTA_SET_NAME),
        NFT_MSG_DELRULE | NFT_MSG_DESTROYRULE | NFT_MSG_NEWRULE => {
            (NFTA_RULE_TABLE, NFTA_RULE_CHAIN)
        }
        _ => return (String::new(), String::new()),
    };
    (
        a.get(t).map(string).unwrap_or_default(),
        a.get(n).map(string).unwrap_or_default(),
    )
}

/// Process id and command name of a NEWGEN notification (who committed the transaction).
pub fn gen_process(msg: &Msg<'_>) -> (Option<u32>, Option<String>) {
    let a = msg.attrs();
    (
        a.get(NFTA_GEN_PROC_PID).and_then(be32),
        a.get(NFTA_GEN_PROC_NAME).map(string),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message as the kernel would lay it out: header, nfgenmsg, attributes.
    fn msg(ty: u16, flags: u16, seq: u32, attrs: &[(u16, &[u8])]) -> Vec<u8> {
        let mut b = vec![0u8; NLMSG_HDRLEN];
        b.extend_from_slice(&[NFPROTO_INET, 0, 0, 0]);
        for (t, d) in attrs {
            b.extend_from_slice(&((4 + d.len()) as u16).to_ne_bytes());
            b.extend_from_slice(&t.to_ne_bytes());
            b.extend_from_slice(d);
            b.resize(align4(b.len()), 0);
        }
        let len = b.len() as u32;
        b[0..4].copy_from_slice(&len.to_ne_bytes());
        b[4..6].copy_from_slice(&ty.to_ne_bytes());
        b[6..8].copy_from_slice(&flags.to_ne_bytes());
        b[8..12].copy_from_slice(&seq.to_ne_bytes());
        b
    }

    fn nest(attrs: &[(u16, &[u8])]) -> Vec<u8> {
        let m = msg(0, 0, 0, attrs);
        m[NLMSG_HDRLEN + 4..].to_vec()
    }

    #[test]
    fn messages_and_attributes_roundtrip() {
        let mut buf = msg(
            (NFNL_SUBSYS_NFTABLES << 8) | u16::from(NFT_MSG_NEWSET),
            0,
            7,
            &[(NFTA_SET_TABLE, b"f2b\0"), (NFTA_SET_NAME, b"sshd-v4\0")],
        );
        buf.extend(msg(NLMSG_DONE, 0, 8, &[]));
        let msgs: Vec<_> = messages(&buf).collect();
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[0].nft_msg(), Some(NFT_MSG_NEWSET));
        assert_eq!(msgs[0].seq, 7);
        let s = parse_set(&msgs[0]);
        assert_eq!((s.table.as_str(), s.name.as_str()), ("f2b", "sshd-v4"));
        assert_eq!(msgs[1].seq, 8);
    }

    #[test]
    fn truncated_input_is_not_a_panic() {
        let buf = msg(3, 0, 1, &[(1, b"abcdef\0")]);
        for cut in 0..buf.len() {
            let _ = messages(&buf[..cut])
                .map(|m| m.attrs().count())
                .sum::<usize>();
            let _ = elem_nests(&buf[..cut]).count();
        }
        assert!(Attrs::new(&[5, 0, 1]).next().is_none());
    }

    #[test]
    fn error_ack_with_offset_names_the_element() {
        // Our request: three elements.
        let key = |k: &[u8]| nest(&[(NFTA_SET_ELEM_KEY, &nest(&[(NFTA_DATA_VALUE, k)]))]);
        let elems: Vec<Vec<u8>> = [[10, 0, 0, 1], [10, 0, 0, 2], [10, 0, 0, 3]]
            .iter()
            .map(|k| key(k))
            .collect();
        // Numbered nests, as libnftnl writes them.
        let list = nest(&[(NFTA_LIST_ELEM, &elems[0]), (2, &elems[1]), (3, &elems[2])]);
        let req = msg(
            0xa0c,
            NLM_F_ACK,
            42,
            &[
                (NFTA_SET_ELEM_LIST_TABLE, b"f2b\0"),
                (NFTA_SET_ELEM_LIST_SET, b"sshd-v4\0"),
                (NFTA_SET_ELEM_LIST_ELEMENTS, &list),
            ],
        );
        let offs: Vec<usize> = elem_nests(&req).map(|(at, _)| at).collect();
        assert_eq!(offs.len(), 3);
        let second = offs[1] as u32;
        assert_eq!(elem_at(&req, second), Some(1));
        assert_eq!(elem_at(&req, second + 8), Some(1));
        assert_eq!(elem_at(&req, offs[2] as u32 + 4), Some(2));
        assert_eq!(elem_at(&req, 20), None); // the table name: not an element

        // The kernel's answer: -EEXIST, capped, with the offset TLV.
        let mut payload = (-libc::EEXIST).to_ne_bytes().to_vec();
        payload.extend_from_slice(&req[..NLMSG_HDRLEN]);
        payload.extend_from_slice(&8u16.to_ne_bytes());
        payload.extend_from_slice(&NLMSGERR_ATTR_OFFS.to_ne_bytes());
        payload.extend_from_slice(&second.to_ne_bytes());
        let mut ack = vec![0u8; NLMSG_HDRLEN];
        ack.extend_from_slice(&payload);
        let len = ack.len() as u32;
        ack[0..4].copy_from_slice(&len.to_ne_bytes());
        ack[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        ack[6..8].copy_from_slice(&(NLM_F_CAPPED | NLM_F_ACK_TLVS).to_ne_bytes());
        let m = messages(&ack).next().unwrap();
        let a = parse_ack(&m).unwrap();
        assert_eq!(
            a,
            Ack {
                errno: libc::EEXIST,
                seq: 42,
                offset: Some(second),
                message: None
            }
        );
    }

    #[test]
    fn comment_from_udata() {
        assert_eq!(udata_comment(b"\x00\x04abc\x00").as_deref(), Some("abc"));
        assert_eq!(
            udata_comment(b"\x01\x01x\x00\x02a\x00").as_deref(),
            Some("a")
        );
        assert_eq!(udata_comment(b"\x00\x09ab"), None);
    }
}

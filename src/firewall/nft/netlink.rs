//! Netlink wire format: constants, request builders and a safe, bounds-checked parser for the
//! replies and events the nftables backend reads (no FFI: kernel data is never handed to C).

use std::fmt::Write as _;

// --- netlink core -------------------------------------------------------------------------
pub const NLMSG_HDRLEN: usize = 16;
pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
pub const NLMSG_OVERRUN: u16 = 4;

pub const NLM_F_REQUEST: u16 = 0x1;
pub const NLM_F_ACK: u16 = 0x4;
pub const NLM_F_DUMP_INTR: u16 = 0x10;
pub const NLM_F_DUMP: u16 = 0x300;
pub const NLM_F_EXCL: u16 = 0x200;
pub const NLM_F_CREATE: u16 = 0x400;
/// In an NLMSG_ERROR: the original payload was not echoed (NETLINK_CAP_ACK).
pub const NLM_F_CAPPED: u16 = 0x100;
/// In an NLMSG_ERROR: extended-ack TLVs follow.
pub const NLM_F_ACK_TLVS: u16 = 0x200;

pub const NLMSGERR_ATTR_MSG: u16 = 1;
pub const NLMSGERR_ATTR_OFFS: u16 = 2;

const NLA_TYPE_MASK: u16 = 0x3fff;

// --- nfnetlink / nf_tables ----------------------------------------------------------------
pub const NFNL_SUBSYS_NFTABLES: u16 = 10;
pub const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
pub const NFNL_MSG_BATCH_END: u16 = 0x11;
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
pub const NFT_MSG_DELSETELEM: u8 = 14;
pub const NFT_MSG_NEWGEN: u8 = 15;
pub const NFT_MSG_GETGEN: u8 = 16;
// Linux ≥ 6.3 ("destroy" commands; notifications may carry these types).
pub const NFT_MSG_DESTROYTABLE: u8 = 26;
pub const NFT_MSG_DESTROYCHAIN: u8 = 27;
pub const NFT_MSG_DESTROYRULE: u8 = 28;
pub const NFT_MSG_DESTROYSET: u8 = 29;

pub const NFTA_TABLE_NAME: u16 = 1;

pub const NFTA_CHAIN_TABLE: u16 = 1;
pub const NFTA_CHAIN_NAME: u16 = 3;
pub const NFTA_CHAIN_HOOK: u16 = 4;
pub const NFTA_CHAIN_POLICY: u16 = 5;
pub const NFTA_CHAIN_TYPE: u16 = 7;
pub const NFTA_HOOK_HOOKNUM: u16 = 1;
pub const NFTA_HOOK_PRIORITY: u16 = 2;

pub const NFTA_RULE_TABLE: u16 = 1;
pub const NFTA_RULE_CHAIN: u16 = 2;
pub const NFTA_RULE_HANDLE: u16 = 3;
pub const NFTA_RULE_USERDATA: u16 = 7;

pub const NFTA_SET_TABLE: u16 = 1;
pub const NFTA_SET_NAME: u16 = 2;
pub const NFTA_SET_FLAGS: u16 = 3;
pub const NFTA_SET_KEY_TYPE: u16 = 4;
pub const NFTA_SET_KEY_LEN: u16 = 5;

pub const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
pub const NFTA_SET_ELEM_LIST_SET: u16 = 2;
pub const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
pub const NFTA_LIST_ELEM: u16 = 1;
pub const NFTA_SET_ELEM_KEY: u16 = 1;
pub const NFTA_SET_ELEM_FLAGS: u16 = 3;
pub const NFTA_SET_ELEM_TIMEOUT: u16 = 4;
pub const NFTA_SET_ELEM_EXPIRATION: u16 = 5;
pub const NFTA_DATA_VALUE: u16 = 1;

pub const NFTA_GEN_PROC_PID: u16 = 2;
pub const NFTA_GEN_PROC_NAME: u16 = 3;

pub const NFT_SET_ANONYMOUS: u32 = 0x1;
pub const NFT_SET_CONSTANT: u32 = 0x2;
pub const NFT_SET_INTERVAL: u32 = 0x4;
pub const NFT_SET_TIMEOUT: u32 = 0x10;
pub const NFT_SET_ELEM_INTERVAL_END: u32 = 0x1;

/// `nlmsg_type` of an nf_tables message.
pub fn nft_type(msg: u8) -> u16 {
    (NFNL_SUBSYS_NFTABLES << 8) | u16::from(msg)
}

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
pub fn messages(buf: &[u8]) -> impl Iterator<Item = Msg<'_>> {
    let mut rest = buf;
    std::iter::from_fn(move || {
        if rest.len() < NLMSG_HDRLEN {
            return None;
        }
        let len = u32::from_ne_bytes(rest[0..4].try_into().ok()?) as usize;
        if len < NLMSG_HDRLEN || len > rest.len() {
            rest = &[];
            return None;
        }
        let msg = Msg {
            ty: u16::from_ne_bytes(rest[4..6].try_into().ok()?),
            flags: u16::from_ne_bytes(rest[6..8].try_into().ok()?),
            seq: u32::from_ne_bytes(rest[8..12].try_into().ok()?),
            pid: u32::from_ne_bytes(rest[12..16].try_into().ok()?),
            payload: &rest[NLMSG_HDRLEN..len],
            raw: &rest[..len],
        };
        rest = rest.get(align4(len)..).unwrap_or(&[]);
        Some(msg)
    })
}

pub fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Netlink attributes (type without the NESTED/BYTEORDER bits, payload).
#[derive(Clone)]
pub struct Attrs<'a> {
    rest: &'a [u8],
}

impl<'a> Attrs<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Attrs { rest: buf }
    }
    /// First attribute of the given type.
    pub fn get(&self, ty: u16) -> Option<&'a [u8]> {
        self.clone().find(|(t, _)| *t == ty).map(|(_, d)| d)
    }
}

impl<'a> Iterator for Attrs<'a> {
    type Item = (u16, &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.len() < 4 {
            return None;
        }
        let len = u16::from_ne_bytes([self.rest[0], self.rest[1]]) as usize;
        let ty = u16::from_ne_bytes([self.rest[2], self.rest[3]]) & NLA_TYPE_MASK;
        if len < 4 || len > self.rest.len() {
            self.rest = &[];
            return None;
        }
        let data = &self.rest[4..len];
        self.rest = self.rest.get(align4(len)..).unwrap_or(&[]);
        Some((ty, data))
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

// --- building requests ---------------------------------------------------------------------

/// Appends one netlink message (header + nfgenmsg + attributes) to `buf`.
/// String attributes must include their NUL terminator.
pub fn put_msg(
    buf: &mut Vec<u8>,
    ty: u16,
    flags: u16,
    seq: u32,
    family: u8,
    res_id: u16,
    attrs: &[(u16, &[u8])],
) {
    let start = buf.len();
    buf.extend_from_slice(&[0; NLMSG_HDRLEN]);
    buf.extend_from_slice(&[family, 0]); // nfgen_family, version = NFNETLINK_V0
    buf.extend_from_slice(&res_id.to_be_bytes());
    for (aty, data) in attrs {
        let alen = 4 + data.len();
        buf.extend_from_slice(&(alen as u16).to_ne_bytes());
        buf.extend_from_slice(&aty.to_ne_bytes());
        buf.extend_from_slice(data);
        buf.resize(align4(buf.len()), 0);
    }
    let len = (buf.len() - start) as u32;
    buf[start..start + 4].copy_from_slice(&len.to_ne_bytes());
    buf[start + 4..start + 6].copy_from_slice(&ty.to_ne_bytes());
    buf[start + 6..start + 8].copy_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
    buf[start + 8..start + 12].copy_from_slice(&seq.to_ne_bytes());
    // nlmsg_pid stays 0: addressed to the kernel.
}

/// `name` as a NUL-terminated attribute payload.
pub fn strz(name: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(name.len() + 1);
    v.extend_from_slice(name.as_bytes());
    v.push(0);
    v
}

// --- errors --------------------------------------------------------------------------------

/// A decoded NLMSG_ERROR (error 0 = ACK).
#[derive(Debug, Clone)]
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
    let error = i32::from_ne_bytes(p.get(0..4)?.try_into().ok()?);
    // The original header follows; its seq is the request's.
    let orig = p.get(4..4 + NLMSG_HDRLEN)?;
    let orig_len = u32::from_ne_bytes(orig[0..4].try_into().ok()?) as usize;
    let seq = u32::from_ne_bytes(orig[8..12].try_into().ok()?);
    let mut ack = Ack {
        errno: error.checked_neg().unwrap_or(i32::MAX).max(0),
        seq,
        offset: None,
        message: None,
    };
    if msg.flags & NLM_F_ACK_TLVS != 0 {
        let tlv_start = if msg.flags & NLM_F_CAPPED != 0 || error == 0 {
            4 + NLMSG_HDRLEN
        } else {
            4 + align4(orig_len)
        };
        for (ty, d) in Attrs::new(p.get(tlv_start..).unwrap_or(&[])) {
            match ty {
                NLMSGERR_ATTR_OFFS => ack.offset = ne32(d),
                NLMSGERR_ATTR_MSG => ack.message = Some(string(d)),
                _ => {}
            }
        }
    }
    Some(ack)
}

/// Symbolic name of an errno value, e.g. `EEXIST`.
pub fn errno_name(errno: i32) -> String {
    let name = match errno {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EINTR => "EINTR",
        libc::EIO => "EIO",
        libc::E2BIG => "E2BIG",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::ENODEV => "ENODEV",
        libc::ENOTDIR => "ENOTDIR",
        libc::EINVAL => "EINVAL",
        libc::ENFILE => "ENFILE",
        libc::EMFILE => "EMFILE",
        libc::ENOSPC => "ENOSPC",
        libc::ERANGE => "ERANGE",
        libc::ENAMETOOLONG => "ENAMETOOLONG",
        libc::ELOOP => "ELOOP",
        libc::ENOTEMPTY => "ENOTEMPTY",
        libc::EOVERFLOW => "EOVERFLOW",
        libc::EMSGSIZE => "EMSGSIZE",
        libc::EPROTONOSUPPORT => "EPROTONOSUPPORT",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::EAFNOSUPPORT => "EAFNOSUPPORT",
        libc::ENOBUFS => "ENOBUFS",
        libc::ETIMEDOUT => "ETIMEDOUT",
        libc::ECONNREFUSED => "ECONNREFUSED",
        _ => return format!("errno {errno}"),
    };
    name.to_string()
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
}

#[derive(Debug, Clone)]
pub struct SetElems {
    pub table: String,
    pub set: String,
    pub elems: Vec<ElemInfo>,
}

pub fn parse_set_elems(msg: &Msg<'_>) -> SetElems {
    let a = msg.attrs();
    let mut elems = Vec::new();
    if let Some(list) = a.get(NFTA_SET_ELEM_LIST_ELEMENTS) {
        for (ty, e) in Attrs::new(list) {
            if ty == NFTA_LIST_ELEM {
                if let Some(elem) = parse_elem(e) {
                    elems.push(elem);
                }
            }
        }
    }
    SetElems {
        table: a
            .get(NFTA_SET_ELEM_LIST_TABLE)
            .map(string)
            .unwrap_or_default(),
        set: a
            .get(NFTA_SET_ELEM_LIST_SET)
            .map(string)
            .unwrap_or_default(),
        elems,
    }
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
    })
}

/// Name of the table an nf_tables notification refers to, and the object's own name.
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

/// Hex dump helper for unexpected keys.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_and_parse_roundtrip() {
        let mut buf = Vec::new();
        put_msg(
            &mut buf,
            nft_type(NFT_MSG_GETSET),
            NLM_F_DUMP,
            7,
            NFPROTO_INET,
            0,
            &[(NFTA_SET_TABLE, &strz("f2b"))],
        );
        put_msg(&mut buf, 3, 0, 8, 0, 0, &[]);
        let msgs: Vec<_> = messages(&buf).collect();
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[0].nft_msg(), Some(NFT_MSG_GETSET));
        assert_eq!(msgs[0].seq, 7);
        assert_eq!(msgs[0].family(), Some(NFPROTO_INET));
        assert_eq!(
            msgs[0].attrs().get(NFTA_SET_TABLE).map(string).as_deref(),
            Some("f2b")
        );
        assert_eq!(msgs[1].seq, 8);
    }

    #[test]
    fn truncated_input_is_not_a_panic() {
        let mut buf = Vec::new();
        put_msg(&mut buf, 3, 0, 1, 0, 0, &[(1, b"abcdef\0")]);
        for cut in 0..buf.len() {
            let _ = messages(&buf[..cut])
                .map(|m| m.attrs().count())
                .sum::<usize>();
        }
        assert!(Attrs::new(&[5, 0, 1]).next().is_none());
    }

    #[test]
    fn errno_names() {
        assert_eq!(errno_name(libc::EEXIST), "EEXIST");
        assert_eq!(errno_name(4242), "errno 4242");
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

//! Batches (nfnetlink transactions) and requests over one netlink socket, with every reply
//! matched by sequence number.
//!
//! Acknowledgement protocol, identical on every kernel version: BATCH_BEGIN/BATCH_END carry no
//! NLM_F_ACK (kernels ≥ 6.10 would ack BATCH_END only on success, older ones never), and every
//! message inside the batch carries NLM_F_ACK. The kernel then answers each message exactly once
//! — 0 or an errno, in order, also when the batch is aborted — so the reply to the last message
//! ends the exchange. Errors that concern the batch as a whole (EPERM, ENOMEM, commit failure)
//! answer the BATCH_BEGIN sequence number. The kernel processes a batch synchronously inside
//! sendmsg(), so after the first error the remaining replies are already queued: they are
//! drained without blocking, and SO_RCVTIMEO is a backstop against any other surprise.

use std::io;
use std::time::Duration;

use nftnl::{MsgType, NlMsg};

use super::netlink::{self as nl, Ack, Msg};
use super::sys::{self, NlSocket, RawSet};
use crate::firewall::FirewallError;

/// Receive buffer size: larger than any datagram the kernel sends us (dump skbs ≤ 32 KiB,
/// notifications ≤ 8 KiB, capped ACKs are tiny).
const RECV_BUF: usize = 256 * 1024;
/// SO_RCVBUF for the request socket: room for the ACKs of thousands of messages.
const RCVBUF_BYTES: i32 = 8 * 1024 * 1024;
/// Backstop for a kernel that never answers.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// What a message in a batch does, to name it in errors.
#[derive(Debug, Clone)]
pub enum What {
    /// A whole object: "add set inet f2b sshd-v4".
    Object(String),
    /// Elements of a set; the failing element is decoded from the kernel's error offset.
    Elems { op: &'static str, set: String },
}

/// One nf_tables transaction being built: a single contiguous buffer (BATCH_BEGIN, messages,
/// BATCH_END) sent with one sendto(), however many 128 KiB pages it spans.
pub struct Batch {
    buf: Vec<u8>,
    begin_seq: u32,
    next_seq: u32,
    /// (offset in buf, description) per message, in sequence order.
    msgs: Vec<(usize, What)>,
    finished: bool,
}

impl Batch {
    fn new(begin_seq: u32) -> Self {
        let mut buf = Vec::with_capacity(4096);
        nl::put_msg(
            &mut buf,
            nl::NFNL_MSG_BATCH_BEGIN,
            0,
            begin_seq,
            libc::AF_UNSPEC as u8,
            nl::NFNL_SUBSYS_NFTABLES,
            &[],
        );
        Batch {
            buf,
            begin_seq,
            next_seq: begin_seq.wrapping_add(1),
            msgs: Vec::new(),
            finished: false,
        }
    }

    fn take_seq(&mut self) -> u32 {
        let s = self.next_seq;
        self.next_seq = s.wrapping_add(1);
        s
    }

    /// No message besides BEGIN/END.
    pub fn is_empty(&self) -> bool {
        self.msgs.is_empty()
    }

    /// Adds a table/chain/rule object of the `nftnl` crate.
    pub fn add_obj<T: NlMsg>(&mut self, obj: &T, ty: MsgType, what: String) {
        let seq = self.take_seq();
        let off = sys::put_nlmsg(&mut self.buf, obj, ty, seq);
        self.msgs.push((off, What::Object(what)));
    }

    /// Adds NEWSET/DELSET for `set`.
    pub fn add_set(&mut self, set: &RawSet, msg: u8, flags: u16, what: String) {
        let seq = self.take_seq();
        let off = set.put_set(&mut self.buf, msg, flags | nl::NLM_F_ACK, seq);
        self.msgs.push((off, What::Object(what)));
    }

    /// Adds NEWSETELEM/DELSETELEM messages for the elements pushed on `set`.
    pub fn add_elems(&mut self, set: &RawSet, msg: u8, flags: u16, set_name: &str) {
        let op = if msg == nl::NFT_MSG_DELSETELEM {
            "delete"
        } else {
            "add"
        };
        let offsets = set.put_elems(&mut self.buf, msg, flags | nl::NLM_F_ACK, self.next_seq);
        for off in offsets {
            self.take_seq();
            self.msgs.push((
                off,
                What::Elems {
                    op,
                    set: set_name.to_string(),
                },
            ));
        }
    }

    /// Adds a message built by hand (e.g. DELTABLE by name).
    pub fn add_raw(&mut self, msg: u8, flags: u16, attrs: &[(u16, &[u8])], what: String) {
        let seq = self.take_seq();
        let off = self.buf.len();
        nl::put_msg(
            &mut self.buf,
            nl::nft_type(msg),
            flags | nl::NLM_F_ACK,
            seq,
            nl::NFPROTO_INET,
            0,
            attrs,
        );
        self.msgs.push((off, What::Object(what)));
    }

    fn finish(&mut self) {
        if !self.finished {
            let seq = self.take_seq();
            nl::put_msg(
                &mut self.buf,
                nl::NFNL_MSG_BATCH_END,
                0,
                seq,
                libc::AF_UNSPEC as u8,
                nl::NFNL_SUBSYS_NFTABLES,
                &[],
            );
            self.finished = true;
        }
    }

    /// Describes message `idx` for an error, decoding the failing element if the kernel told
    /// us its offset.
    fn describe(&self, idx: usize, offset: Option<u32>) -> String {
        let (off, what) = &self.msgs[idx];
        match what {
            What::Object(s) => s.clone(),
            What::Elems { op, set } => {
                let prep = if *op == "add" { "to" } else { "from" };
                let msg_end = nl::messages(&self.buf[*off..])
                    .next()
                    .map(|m| off + nl::NLMSG_HDRLEN + m.payload.len())
                    .unwrap_or(self.buf.len());
                let elem = offset
                    .and_then(|o| self.buf.get(off + o as usize..msg_end))
                    .and_then(|attr| nl::Attrs::new(attr).next())
                    .and_then(|(_, e)| nl::parse_elem(e));
                match elem {
                    Some(e) => {
                        let end = if e.flags & nl::NFT_SET_ELEM_INTERVAL_END != 0 {
                            " (interval end)"
                        } else {
                            ""
                        };
                        format!(
                            "{op} element {}{end} {prep} set inet f2b {set}",
                            key_to_string(&e.key)
                        )
                    }
                    None => format!("{op} elements {prep} set inet f2b {set}"),
                }
            }
        }
    }
}

/// A key as text: an address, a port or protocol number, or hex.
pub fn key_to_string(key: &[u8]) -> String {
    if let Some(addr) = super::layout::key_addr(key) {
        return addr.to_string();
    }
    match *key {
        [a, b] => u16::from_be_bytes([a, b]).to_string(),
        [a] => a.to_string(),
        _ => nl::hex(key),
    }
}

/// The request socket plus its receive buffer and sequence counter.
pub struct Conn {
    sock: NlSocket,
    seq: u32,
    rx: Vec<u8>,
    sndbuf: usize,
}

impl Conn {
    pub fn open() -> Result<Self, FirewallError> {
        let sock = NlSocket::open()?;
        // Capped ACKs: do not echo our (up to 64 KiB) requests back. Extended ACKs: the
        // offset of the failing attribute (which element). Both best effort.
        let _ = sock.set_opt(libc::SOL_NETLINK, libc::NETLINK_CAP_ACK, 1);
        let _ = sock.set_opt(libc::SOL_NETLINK, libc::NETLINK_EXT_ACK, 1);
        // A large receive buffer so the ACKs of a big batch are never dropped (ENOBUFS).
        // SO_RCVBUFFORCE needs CAP_NET_ADMIN; fall back to SO_RCVBUF.
        if sock
            .set_opt(libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, RCVBUF_BYTES)
            .is_err()
        {
            let _ = sock.set_opt(libc::SOL_SOCKET, libc::SO_RCVBUF, RCVBUF_BYTES);
        }
        sock.set_recv_timeout(REPLY_TIMEOUT)?;
        Ok(Conn {
            sock,
            seq: initial_seq(),
            rx: vec![0; RECV_BUF],
            sndbuf: 0,
        })
    }

    pub fn portid(&self) -> u32 {
        self.sock.portid()
    }

    fn next_seq(&mut self, n: u32) -> u32 {
        let s = self.seq;
        self.seq = self.seq.wrapping_add(n);
        s
    }

    pub fn batch(&mut self) -> Batch {
        // Sequence numbers are reserved when the batch is committed (see `commit`).
        Batch::new(0)
    }

    /// Makes sure SO_SNDBUF can take a datagram of `len` bytes (netlink refuses larger
    /// messages with EMSGSIZE; the default is ~208 KiB).
    fn ensure_sndbuf(&mut self, len: usize) -> io::Result<()> {
        if len + 64 * 1024 <= self.sndbuf {
            return Ok(());
        }
        let want = (len + 1024 * 1024).min(i32::MAX as usize / 2);
        self.sock
            .set_opt(libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, want as i32)
            .or_else(|_| {
                self.sock
                    .set_opt(libc::SOL_SOCKET, libc::SO_SNDBUF, want as i32)
            })?;
        // The kernel doubles the value it is given.
        self.sndbuf = want;
        Ok(())
    }

    /// Sends the batch as one transaction and checks every reply.
    pub fn commit(&mut self, mut batch: Batch) -> Result<(), FirewallError> {
        if batch.is_empty() {
            return Ok(());
        }
        batch.finish();
        // Renumber: BEGIN gets `base`, message i gets base + 1 + i, END gets base + n + 1.
        let n = batch.msgs.len() as u32;
        let base = self.next_seq(n + 2);
        let shift = base.wrapping_sub(batch.begin_seq);
        renumber(&mut batch.buf, shift);
        batch.begin_seq = base;
        self.ensure_sndbuf(batch.buf.len())?;
        self.sock.send(&batch.buf)?;

        let last = base.wrapping_add(n);
        let mut first_err: Option<(Ack, Option<usize>)> = None;
        let mut done = false;
        while !done {
            let len = match self.sock.recv(&mut self.rx, first_err.is_some()) {
                Ok(len) => len,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if first_err.is_some() {
                        break; // drained
                    }
                    return Err(FirewallError::Timeout(REPLY_TIMEOUT));
                }
                Err(e) => return Err(e.into()),
            };
            for msg in nl::messages(&self.rx[..len]) {
                let Some(ack) = nl::parse_ack(&msg) else {
                    continue;
                };
                let rel = ack.seq.wrapping_sub(base);
                if rel > n + 1 {
                    continue; // stale reply of an earlier exchange
                }
                if ack.errno != 0 {
                    // rel 0 (BEGIN) or n+1 (END): the batch as a whole failed.
                    let idx = (1..=n).contains(&rel).then(|| (rel - 1) as usize);
                    if first_err.is_none() {
                        first_err = Some((ack.clone(), idx));
                    }
                    if idx.is_none() {
                        done = true;
                    }
                }
                if ack.seq == last {
                    done = true;
                }
            }
            if done && first_err.is_some() {
                // Drain whatever else the kernel queued for this batch, without blocking.
                while let Ok(len) = self.sock.recv(&mut self.rx, true) {
                    if len == 0 {
                        break;
                    }
                }
            }
        }
        match first_err {
            None => Ok(()),
            Some((ack, idx)) => {
                let what = match idx {
                    Some(i) => batch.describe(i, ack.offset),
                    None => format!("the batch of {n} messages"),
                };
                Err(kernel_error(what, ack.errno, ack.message.as_deref()))
            }
        }
    }

    /// Sends one request (e.g. a dump) and calls `each` for every reply message until the dump
    /// ends. Returns the errno if the kernel refused the request.
    pub fn request(
        &mut self,
        msg: u8,
        flags: u16,
        attrs: &[(u16, &[u8])],
        mut each: impl FnMut(&Msg<'_>),
    ) -> Result<Result<(), i32>, FirewallError> {
        let dump = flags & nl::NLM_F_DUMP == nl::NLM_F_DUMP;
        'restart: for _attempt in 0..5 {
            let seq = self.next_seq(1);
            let mut req = Vec::with_capacity(128);
            nl::put_msg(
                &mut req,
                nl::nft_type(msg),
                flags | if dump { 0 } else { nl::NLM_F_ACK },
                seq,
                nl::NFPROTO_INET,
                0,
                attrs,
            );
            self.sock.send(&req)?;
            let mut interrupted = false;
            let mut replies: Vec<u8> = Vec::new();
            loop {
                let len = match self.sock.recv(&mut self.rx, false) {
                    Ok(len) => len,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        return Err(FirewallError::Timeout(REPLY_TIMEOUT));
                    }
                    Err(e) => return Err(e.into()),
                };
                let mut finished = None;
                for m in nl::messages(&self.rx[..len]) {
                    if m.seq != seq {
                        continue;
                    }
                    if m.flags & nl::NLM_F_DUMP_INTR != 0 {
                        interrupted = true;
                    }
                    match m.ty {
                        nl::NLMSG_ERROR => {
                            let errno = nl::parse_ack(&m).map(|a| a.errno).unwrap_or(libc::EIO);
                            finished = Some(if errno == 0 { Ok(()) } else { Err(errno) });
                        }
                        nl::NLMSG_DONE => {
                            let code = nl::ne32(m.payload).map(|c| c as i32).unwrap_or(0);
                            finished = Some(if code < 0 { Err(-code) } else { Ok(()) });
                        }
                        nl::NLMSG_OVERRUN => finished = Some(Err(libc::ENOBUFS)),
                        _ => {
                            if dump {
                                // Buffer replies: a dump interrupted by a concurrent change
                                // (NLM_F_DUMP_INTR) is restarted from scratch.
                                replies.extend_from_slice(m.raw);
                                replies.resize(nl::align4(replies.len()), 0);
                            } else {
                                // A GET answers with one object, then the ACK.
                                each(&m);
                            }
                        }
                    }
                }
                if let Some(result) = finished {
                    if interrupted && dump {
                        continue 'restart;
                    }
                    for m in nl::messages(&replies) {
                        each(&m);
                    }
                    return Ok(result);
                }
            }
        }
        Err(FirewallError::Other(
            "nftables dump kept being interrupted by concurrent changes".into(),
        ))
    }
}

/// Rewrites the sequence numbers of every message in `buf` by adding `shift`.
fn renumber(buf: &mut [u8], shift: u32) {
    if shift == 0 {
        return;
    }
    let mut off = 0;
    while off + nl::NLMSG_HDRLEN <= buf.len() {
        let len = u32::from_ne_bytes(buf[off..off + 4].try_into().unwrap()) as usize;
        let seq = u32::from_ne_bytes(buf[off + 8..off + 12].try_into().unwrap());
        buf[off + 8..off + 12].copy_from_slice(&seq.wrapping_add(shift).to_ne_bytes());
        if len < nl::NLMSG_HDRLEN {
            break;
        }
        off += nl::align4(len);
    }
}

fn initial_seq() -> u32 {
    // Any start value works (replies are matched exactly); vary it across sockets so stale
    // replies of a previous socket can never look current.
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (t.as_nanos() as u32) ^ std::process::id().rotate_left(16)
}

/// The error for a refused request; EPERM means we lack CAP_NET_ADMIN.
pub fn kernel_error(what: String, errno: i32, message: Option<&str>) -> FirewallError {
    if errno == libc::EPERM {
        return FirewallError::PermissionDenied;
    }
    let what = match message {
        Some(m) if !m.is_empty() => format!("{what} ({m})"),
        _ => what,
    };
    FirewallError::Kernel {
        what,
        errno,
        errno_name: nl::errno_name(errno),
    }
}

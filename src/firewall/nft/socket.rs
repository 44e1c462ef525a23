//! The request socket (libmnl, through the `mnl` crate) and its conversations with the kernel:
//! transactions with every acknowledgement matched by sequence number, and dumps.
//!
//! Acknowledgements, the same on every kernel version: BATCH_BEGIN/BATCH_END carry no
//! NLM_F_ACK (kernels ≥ 6.10 ack BATCH_END only after success, older ones never), every message
//! inside carries NLM_F_ACK. The kernel processes a transaction inside sendmsg() and queues one
//! answer per message, in order, also for a transaction it aborts — errors of messages after a
//! failed one included, which is why the caller trusts only the first error of each set. The
//! answer to the last message ends the exchange; an error that concerns the transaction as a
//! whole (EPERM, ENOMEM, a failed commit) answers BATCH_BEGIN and ends it too. Answers still
//! queued after that carry older sequence numbers and are skipped by the next exchange.
//! SO_RCVTIMEO is the backstop against any other surprise.
//!
//! A transaction larger than a page goes out in one sendmsg (the kernel needs it in one
//! message); the send buffer is grown with SO_SNDBUFFORCE to fit it.

use std::ffi::CStr;
use std::io;
use std::time::{Duration, Instant};

use rustix::net::sockopt;

use super::encode::Batch;
use super::ffi::{self, Msg as Out};
use super::wire::{self, Ack, Msg};
use crate::firewall::FirewallError;

/// Backstop for a kernel that never answers.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// SO_RCVBUF for the request socket: room for the answers of thousands of messages.
const RCVBUF: usize = 8 * 1024 * 1024;
/// Larger than any datagram the kernel sends us (dump skbs ≤ 32 KiB, notifications ≤ 8 KiB,
/// capped ACKs are tiny, an uncapped one ≤ 64 KiB).
const RX_LEN: usize = 128 * 1024;

/// A receive buffer aligned for `nlmsghdr`, as `mnl::Socket::recv` requires.
#[repr(C, align(8))]
pub struct RxBuf(pub [u8; RX_LEN]);

impl RxBuf {
    pub fn new() -> Box<RxBuf> {
        Box::new(RxBuf([0; RX_LEN]))
    }
}

/// How the kernel answered a transaction. Unless it committed, nothing of it took effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Committed,
    /// The messages it refused: (index in the batch, answer), in order.
    Refused(Vec<(usize, Ack)>),
    /// Refused as a whole (the answer to BATCH_BEGIN or BATCH_END).
    Aborted(Ack),
}

/// Opens a NETLINK_NETFILTER socket through libmnl, close-on-exec (a netlink socket keeps the
/// privileges of whoever opened it), bound to `groups`.
pub fn open_socket(groups: u32) -> Result<mnl::Socket, FirewallError> {
    let sock = mnl::Socket::open(mnl::Bus::Netfilter)?;
    let fd = ffi::fd(&sock);
    rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::CLOEXEC).map_err(io::Error::from)?;
    sock.bind(groups, 0).map_err(|e| match e.raw_os_error() {
        Some(libc::EPERM) => FirewallError::PermissionDenied,
        _ => e.into(),
    })?;
    Ok(sock)
}

/// Grows the socket's receive buffer (SO_RCVBUFFORCE needs CAP_NET_ADMIN; SO_RCVBUF is
/// capped by net.core.rmem_max).
pub fn grow_rcvbuf(sock: &mnl::Socket, bytes: usize) {
    let fd = ffi::fd(sock);
    if sockopt::set_socket_recv_buffer_size_force(fd, bytes).is_err() {
        let _ = sockopt::set_socket_recv_buffer_size(fd, bytes);
    }
}

/// The request socket with its receive buffer and sequence counter.
pub struct Conn {
    sock: mnl::Socket,
    seq: u32,
    rx: Box<RxBuf>,
    sndbuf: usize,
}

impl Conn {
    pub fn open() -> Result<Conn, FirewallError> {
        let sock = open_socket(0)?;
        // Capped ACKs: do not echo our (up to 64 KiB) requests back. Extended ACKs: the offset
        // of the failing attribute (which element). Both best effort.
        let _ = ffi::netlink_option(&sock, libc::NETLINK_CAP_ACK);
        let _ = ffi::netlink_option(&sock, libc::NETLINK_EXT_ACK);
        grow_rcvbuf(&sock, RCVBUF);
        let fd = ffi::fd(&sock);
        sockopt::set_socket_timeout(fd, sockopt::Timeout::Recv, Some(REPLY_TIMEOUT))
            .map_err(io::Error::from)?;
        Ok(Conn {
            sock,
            seq: initial_seq(),
            rx: RxBuf::new(),
            sndbuf: 0,
        })
    }

    /// Netlink port id (notifications of our changes carry it).
    pub fn portid(&self) -> u32 {
        self.sock.portid()
    }

    /// A new transaction, numbered from the next sequence number.
    pub fn batch(&self) -> Batch {
        Batch::new(self.seq)
    }

    /// Makes sure SO_SNDBUF takes a datagram of `len` bytes (netlink refuses larger messages
    /// with EMSGSIZE; the default is ~208 KiB).
    fn ensure_sndbuf(&mut self, len: usize) -> io::Result<()> {
        if len + 64 * 1024 <= self.sndbuf {
            return Ok(());
        }
        let want = (len + 1024 * 1024).min(i32::MAX as usize / 2);
        let fd = ffi::fd(&self.sock);
        sockopt::set_socket_send_buffer_size_force(fd, want)
            .or_else(|_| sockopt::set_socket_send_buffer_size(fd, want))?;
        self.sndbuf = want;
        Ok(())
    }

    fn recv(&mut self) -> Result<&[u8], FirewallError> {
        match self.sock.recv_raw(&mut self.rx.0) {
            Ok(n) => Ok(&self.rx.0[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                Err(FirewallError::Timeout(REPLY_TIMEOUT))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Sends the transaction in one message and collects the kernel's answers.
    pub fn commit(&mut self, batch: &mut Batch) -> Result<Reply, FirewallError> {
        if batch.is_empty() {
            return Ok(Reply::Committed);
        }
        let n = batch.len() as u32;
        let base = batch.begin_seq();
        // The next exchange starts after BATCH_END, whatever happens here.
        self.seq = base.wrapping_add(n + 2);
        let bytes = batch.finish();
        self.ensure_sndbuf(bytes.len())?;
        let sent = self.sock.send(bytes)?;
        if sent != bytes.len() {
            return Err(io::Error::other("netlink sendto sent a partial batch").into());
        }
        let mut refused = Vec::new();
        loop {
            let data = self.recv()?;
            for m in mnl::NlMessages::new(data) {
                let Some(ack) = Msg::parse(m?).as_ref().and_then(wire::parse_ack) else {
                    continue;
                };
                let rel = ack.seq.wrapping_sub(base);
                if rel > n + 1 {
                    continue; // an answer of an earlier exchange
                }
                if rel == 0 || rel == n + 1 {
                    if ack.errno != 0 {
                        return Ok(Reply::Aborted(ack));
                    }
                    continue;
                }
                let last = rel == n;
                if ack.errno != 0 {
                    refused.push((rel as usize - 1, ack));
                }
                if last {
                    return Ok(if refused.is_empty() {
                        Reply::Committed
                    } else {
                        Reply::Refused(refused)
                    });
                }
            }
        }
    }

    /// Sends a request of type `msg` (NFT_MSG_GET*) and calls `each` for every object in the
    /// answer, with the time the datagram holding it was received (the kernel writes a dump's
    /// next datagram when we ask for it: the time left of set elements is that recent).
    /// `dump`: all objects matching `attrs` (a dump interrupted by a concurrent change is
    /// started again), otherwise the one named. The inner error is the errno the kernel refused
    /// the request with (ENOENT: no such table/set/…).
    pub fn request(
        &mut self,
        msg: u8,
        dump: bool,
        attrs: &[(u16, &CStr)],
        mut each: impl FnMut(&Msg<'_>, Instant),
    ) -> Result<Result<(), i32>, FirewallError> {
        let flags = if dump {
            wire::NLM_F_DUMP
        } else {
            wire::NLM_F_ACK
        };
        for _attempt in 0..5 {
            let seq = self.seq;
            self.seq = seq.wrapping_add(1);
            let mut req = Vec::with_capacity(256);
            ffi::put(&mut req, seq, Out::Query { msg, flags, attrs });
            self.sock.send(&req)?;
            let mut interrupted = false;
            // A dump is buffered: if it was interrupted, its objects are discarded. `marks`:
            // where each datagram's objects start, and when it came.
            let mut objects: Vec<u8> = Vec::new();
            let mut marks: Vec<(usize, Instant)> = Vec::new();
            let result = 'answer: loop {
                let data = self.recv()?;
                marks.push((objects.len(), Instant::now()));
                for m in mnl::NlMessages::new(data) {
                    let Some(m) = Msg::parse(m?) else { continue };
                    if m.seq != seq {
                        continue;
                    }
                    interrupted |= m.flags & wire::NLM_F_DUMP_INTR != 0;
                    match m.ty {
                        wire::NLMSG_ERROR => {
                            let errno = wire::parse_ack(&m).map_or(libc::EIO, |a| a.errno);
                            break 'answer if errno == 0 { Ok(()) } else { Err(errno) };
                        }
                        wire::NLMSG_DONE => {
                            let errno = wire::done_errno(&m);
                            break 'answer if errno == 0 { Ok(()) } else { Err(errno) };
                        }
                        wire::NLMSG_OVERRUN => break 'answer Err(libc::ENOBUFS),
                        _ => {
                            objects.extend_from_slice(m.raw);
                            objects.resize(wire::align4(objects.len()), 0);
                        }
                    }
                }
            };
            if interrupted && dump {
                continue;
            }
            let mut at = 0;
            while let Some(m) = Msg::parse(&objects[at..]) {
                let received = marks[marks.partition_point(|&(start, _)| start <= at) - 1].1;
                each(&m, received);
                at = (at + wire::align4(m.raw.len())).min(objects.len());
            }
            return Ok(result);
        }
        Err(FirewallError::DumpInterrupted)
    }
}

fn initial_seq() -> u32 {
    // Any start value works (answers are matched exactly); vary it across sockets so answers
    // of a previous socket can never look current.
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (t.as_nanos() as u32) ^ std::process::id().rotate_left(16)
}

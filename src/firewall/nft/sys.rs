//! The only place with `unsafe` in the nftables backend: a netlink socket over libc, an eventfd
//! and `poll`, and the few libnftnl calls the high-level `nftnl` crate lacks (set flags,
//! per-element timeouts and flags, writing messages into our own batch buffer, a lookup
//! expression by set name). Everything exported here is safe to call.

use std::ffi::{c_void, CStr, CString};
use std::io;
use std::mem;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr::{self, NonNull};
use std::time::Duration;

use nftnl::{MsgType, NlMsg};
use nftnl_sys as sys;

use super::netlink::NLMSG_HDRLEN;

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

// --- netlink socket ------------------------------------------------------------------------

/// A `NETLINK_NETFILTER` socket bound to an automatic port id, in the network namespace of the
/// thread that opened it.
#[derive(Debug)]
pub struct NlSocket {
    fd: OwnedFd,
    portid: u32,
}

impl NlSocket {
    pub fn open() -> io::Result<Self> {
        // SAFETY: plain syscall; the returned descriptor is owned by the OwnedFd right away.
        let fd = cvt(unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_NETFILTER,
            )
        })?;
        // SAFETY: `fd` is a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: sockaddr_nl is plain old data; all-zero is a valid value.
        let mut addr: libc::sockaddr_nl = unsafe { mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        let len = mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t;
        // SAFETY: `addr` is a valid sockaddr_nl of `len` bytes.
        cvt(unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&raw const addr).cast::<libc::sockaddr>(),
                len,
            )
        })?;
        let mut out_len = len;
        // SAFETY: `addr`/`out_len` are valid for writes of a sockaddr_nl.
        cvt(unsafe {
            libc::getsockname(
                fd.as_raw_fd(),
                (&raw mut addr).cast::<libc::sockaddr>(),
                &mut out_len,
            )
        })?;
        Ok(NlSocket {
            fd,
            portid: addr.nl_pid,
        })
    }

    /// The port id the kernel assigned (appears as `nlmsg_pid` in notifications we cause).
    pub fn portid(&self) -> u32 {
        self.portid
    }

    pub fn set_opt(
        &self,
        level: libc::c_int,
        name: libc::c_int,
        value: libc::c_int,
    ) -> io::Result<()> {
        // SAFETY: `value` is a valid c_int for the duration of the call.
        cvt(unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                level,
                name,
                (&raw const value).cast::<c_void>(),
                mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        })
        .map(drop)
    }

    /// SO_RCVTIMEO: a blocking receive gives up after `timeout` (EAGAIN).
    pub fn set_recv_timeout(&self, timeout: Duration) -> io::Result<()> {
        let tv = libc::timeval {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_usec: timeout.subsec_micros() as libc::suseconds_t,
        };
        // SAFETY: `tv` is a valid timeval for the duration of the call.
        cvt(unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&raw const tv).cast::<c_void>(),
                mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        })
        .map(drop)
    }

    /// Sends `buf` to the kernel in ONE sendto() call (a batch must arrive as one message).
    pub fn send(&self, buf: &[u8]) -> io::Result<()> {
        // SAFETY: all-zero sockaddr_nl = the kernel (nl_pid 0, no groups).
        let mut dst: libc::sockaddr_nl = unsafe { mem::zeroed() };
        dst.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        loop {
            // SAFETY: `buf` and `dst` are valid for reads of the given lengths.
            let n = unsafe {
                libc::sendto(
                    self.fd.as_raw_fd(),
                    buf.as_ptr().cast::<c_void>(),
                    buf.len(),
                    0,
                    (&raw const dst).cast::<libc::sockaddr>(),
                    mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if n as usize != buf.len() {
                return Err(io::Error::other("netlink sendto sent a partial batch"));
            }
            return Ok(());
        }
    }

    /// Receives one datagram (possibly several netlink messages). `nonblocking` uses
    /// MSG_DONTWAIT. A datagram larger than `buf` is an error (never silently truncated).
    pub fn recv(&self, buf: &mut [u8], nonblocking: bool) -> io::Result<usize> {
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast::<c_void>(),
            iov_len: buf.len(),
        };
        // SAFETY: msghdr is plain old data; all-zero is valid (no name, no control).
        let mut mh: libc::msghdr = unsafe { mem::zeroed() };
        mh.msg_iov = &mut iov;
        mh.msg_iovlen = 1;
        let flags = if nonblocking { libc::MSG_DONTWAIT } else { 0 };
        loop {
            // SAFETY: `mh` points at one iovec covering `buf`, valid for writes.
            let n = unsafe { libc::recvmsg(self.fd.as_raw_fd(), &mut mh, flags) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if mh.msg_flags & libc::MSG_TRUNC != 0 {
                return Err(io::Error::other(
                    "netlink message larger than the receive buffer",
                ));
            }
            return Ok(n as usize);
        }
    }
}

impl AsFd for NlSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// An eventfd used to wake a thread blocked in [`poll_readable`].
#[derive(Debug)]
pub struct EventFd(OwnedFd);

impl EventFd {
    pub fn new() -> io::Result<Self> {
        // SAFETY: plain syscall; the descriptor is owned right away.
        let fd = cvt(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) })?;
        // SAFETY: fresh descriptor.
        Ok(EventFd(unsafe { OwnedFd::from_raw_fd(fd) }))
    }
    pub fn try_clone(&self) -> io::Result<Self> {
        Ok(EventFd(self.0.try_clone()?))
    }
    pub fn signal(&self) -> io::Result<()> {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a valid u64.
        let n = unsafe { libc::write(self.0.as_raw_fd(), (&raw const one).cast::<c_void>(), 8) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

impl AsFd for EventFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

/// Blocks until one of `fds` is readable (or has an error/hangup); returns which ones.
pub fn poll_readable<const N: usize>(fds: [BorrowedFd<'_>; N]) -> io::Result<[bool; N]> {
    let mut pfds = fds.map(|fd| libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    });
    loop {
        // SAFETY: `pfds` is a valid array of N pollfd structs.
        let r = unsafe { libc::poll(pfds.as_mut_ptr(), N as libc::nfds_t, -1) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        return Ok(pfds.map(|p| p.revents != 0));
    }
}

// --- libnftnl --------------------------------------------------------------------------------

/// Appends the netlink message of an `nftnl` object (table, chain, rule) to `buf`;
/// returns its offset.
pub fn put_nlmsg<T: NlMsg>(buf: &mut Vec<u8>, msg: &T, ty: MsgType, seq: u32) -> usize {
    // SAFETY: `reserve_and_write` gives `write` a buffer of nft_nlmsg_maxsize() bytes, which
    // is the contract of NlMsg::write.
    unsafe { reserve_and_write(buf, |p| msg.write(p, seq, ty)) }
}

/// Reserves room for the largest nf_tables message, lets `write` build one message at the end
/// of `buf`, and extends `buf` by the message's (aligned) length. Returns the offset.
///
/// # Safety
/// `write` must write one complete netlink message, at most `nft_nlmsg_maxsize()` bytes, at
/// the pointer it is given.
unsafe fn reserve_and_write(buf: &mut Vec<u8>, write: impl FnOnce(*mut c_void)) -> usize {
    let max = nftnl::nft_nlmsg_maxsize() as usize;
    buf.reserve(max);
    let off = buf.len();
    // SAFETY: `reserve` guarantees `max` writable bytes after `off`.
    let p = unsafe { buf.as_mut_ptr().add(off) };
    write(p.cast::<c_void>());
    // SAFETY: the writer initialised at least the 16-byte header.
    let len = unsafe { ptr::read_unaligned(p.cast::<u32>()) } as usize;
    assert!(
        (NLMSG_HDRLEN..=max).contains(&len),
        "libnftnl wrote a netlink message of {len} bytes"
    );
    let aligned = super::netlink::align4(len).min(max);
    // SAFETY: bytes [len, aligned) are inside the reservation; zero the padding, then every
    // byte up to `off + aligned` is initialised.
    unsafe {
        ptr::write_bytes(p.add(len), 0, aligned - len);
        buf.set_len(off + aligned);
    }
    off
}

/// An `nftnl_set` used as a message builder: a named or anonymous set (NEWSET/DELSET) and/or a
/// list of elements (NEWSETELEM/DELSETELEM) with per-element timeouts and flags.
pub struct RawSet {
    set: NonNull<sys::nftnl_set>,
    family: u16,
}

impl RawSet {
    pub fn new(family: u16, table: &CStr, name: &CStr) -> Self {
        // SAFETY: allocation checked for NULL below.
        let set = NonNull::new(unsafe { sys::nftnl_set_alloc() })
            .unwrap_or_else(|| std::process::abort());
        // SAFETY: `set` is valid; libnftnl copies the strings.
        unsafe {
            sys::nftnl_set_set_u32(
                set.as_ptr(),
                sys::NFTNL_SET_FAMILY as u16,
                u32::from(family),
            );
            sys::nftnl_set_set_str(set.as_ptr(), sys::NFTNL_SET_TABLE as u16, table.as_ptr());
            sys::nftnl_set_set_str(set.as_ptr(), sys::NFTNL_SET_NAME as u16, name.as_ptr());
        }
        RawSet { set, family }
    }

    fn set_u32(&mut self, attr: u32, value: u32) {
        // SAFETY: `self.set` is valid; u32 attributes are copied.
        unsafe { sys::nftnl_set_set_u32(self.set.as_ptr(), attr as u16, value) }
    }

    /// Transaction-local id, so rules in the same batch can refer to a new set.
    pub fn set_id(&mut self, id: u32) {
        self.set_u32(sys::NFTNL_SET_ID, id);
    }
    pub fn set_flags(&mut self, flags: u32) {
        self.set_u32(sys::NFTNL_SET_FLAGS, flags);
    }
    pub fn set_key(&mut self, key_type: u32, key_len: u32) {
        self.set_u32(sys::NFTNL_SET_KEY_TYPE, key_type);
        self.set_u32(sys::NFTNL_SET_KEY_LEN, key_len);
    }

    /// Adds an element: `key` in network byte order, element `flags` (e.g. INTERVAL_END),
    /// an optional timeout in milliseconds, and optional element userdata.
    pub fn push_elem(&mut self, key: &[u8], flags: u32, timeout_ms: Option<u64>, udata: &[u8]) {
        // SAFETY: allocation checked; every setter copies its data; ownership of `elem` passes
        // to the set in nftnl_set_elem_add (freed with it).
        unsafe {
            let elem = sys::nftnl_set_elem_alloc();
            if elem.is_null() {
                std::process::abort();
            }
            sys::nftnl_set_elem_set(
                elem,
                sys::NFTNL_SET_ELEM_KEY as u16,
                key.as_ptr().cast::<c_void>(),
                key.len() as u32,
            );
            if flags != 0 {
                sys::nftnl_set_elem_set_u32(elem, sys::NFTNL_SET_ELEM_FLAGS as u16, flags);
            }
            if let Some(ms) = timeout_ms {
                sys::nftnl_set_elem_set_u64(elem, sys::NFTNL_SET_ELEM_TIMEOUT as u16, ms);
            }
            if !udata.is_empty() {
                sys::nftnl_set_elem_set(
                    elem,
                    sys::NFTNL_SET_ELEM_USERDATA as u16,
                    udata.as_ptr().cast::<c_void>(),
                    udata.len() as u32,
                );
            }
            sys::nftnl_set_elem_add(self.set.as_ptr(), elem);
        }
    }

    /// Appends a NEWSET/DELSET message (`msg` = NFT_MSG_*, `flags` = NLM_F_*).
    pub fn put_set(&self, buf: &mut Vec<u8>, msg: u8, flags: u16, seq: u32) -> usize {
        let (set, family) = (self.set, self.family);
        // SAFETY: the writer builds one set message, bounded by nft_nlmsg_maxsize().
        unsafe {
            reserve_and_write(buf, |p| {
                let nlh = sys::nftnl_nlmsg_build_hdr(p.cast(), u16::from(msg), family, flags, seq);
                sys::nftnl_set_nlmsg_build_payload(nlh, set.as_ptr());
            })
        }
    }

    /// Appends as many NEWSETELEM/DELSETELEM messages as needed for all elements (each message
    /// holds up to ~64 KiB of elements), with sequence numbers `first_seq`, `first_seq + 1`, ….
    /// Returns the offset of each message.
    pub fn put_elems(&self, buf: &mut Vec<u8>, msg: u8, flags: u16, first_seq: u32) -> Vec<usize> {
        let mut offsets = Vec::new();
        // SAFETY: the iterator is created from a valid set, used only while the set lives,
        // and destroyed below; each writer call builds one message bounded by
        // nft_nlmsg_maxsize() (libnftnl stops a message before its nest overflows 64 KiB).
        unsafe {
            let iter = sys::nftnl_set_elems_iter_create(self.set.as_ptr());
            if iter.is_null() {
                std::process::abort();
            }
            let mut seq = first_seq;
            while !sys::nftnl_set_elems_iter_cur(iter).is_null() {
                let mut more = 0;
                let family = self.family;
                offsets.push(reserve_and_write(buf, |p| {
                    let nlh =
                        sys::nftnl_nlmsg_build_hdr(p.cast(), u16::from(msg), family, flags, seq);
                    more = sys::nftnl_set_elems_nlmsg_build_payload_iter(nlh, iter);
                }));
                seq = seq.wrapping_add(1);
                if more <= 0 {
                    break;
                }
            }
            sys::nftnl_set_elems_iter_destroy(iter);
        }
        offsets
    }
}

impl Drop for RawSet {
    fn drop(&mut self) {
        // SAFETY: `self.set` was allocated by nftnl_set_alloc and is freed once.
        unsafe { sys::nftnl_set_free(self.set.as_ptr()) }
    }
}

/// `lookup reg 1 set NAME` (by name; `id` lets the kernel find a set created in the same batch).
pub struct Lookup {
    pub set: CString,
    pub id: u32,
}

impl nftnl::expr::Expression for Lookup {
    fn to_expr(&self, _rule: &nftnl::Rule<'_>) -> NonNull<sys::nftnl_expr> {
        // SAFETY: allocation checked; setters copy the name; the rule takes ownership.
        unsafe {
            let expr = sys::nftnl_expr_alloc(c"lookup".as_ptr());
            let Some(expr) = NonNull::new(expr) else {
                std::process::abort();
            };
            sys::nftnl_expr_set_u32(
                expr.as_ptr(),
                sys::NFTNL_EXPR_LOOKUP_SREG as u16,
                libc::NFT_REG_1 as u32,
            );
            sys::nftnl_expr_set_str(
                expr.as_ptr(),
                sys::NFTNL_EXPR_LOOKUP_SET as u16,
                self.set.as_ptr(),
            );
            sys::nftnl_expr_set_u32(expr.as_ptr(), sys::NFTNL_EXPR_LOOKUP_SET_ID as u16, self.id);
            expr
        }
    }
}

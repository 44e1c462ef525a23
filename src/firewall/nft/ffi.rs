//! The FFI boundary of the nftables backend: the only module that calls C directly.
//! - writing a libnftnl message (an `nftnl` object, a GET request, BATCH_BEGIN/END) at the
//!   end of our batch buffer;
//! - the libnftnl set calls the `nftnl` crate does not wrap: set flags, and elements with
//!   flags, timeouts and userdata;
//! - the socket's descriptor and the SOL_NETLINK options `mnl::Socket` does not expose.
//!
//! Everything exported is safe to call.

#![allow(unsafe_code)]

use std::ffi::{c_int, c_void, CStr};
use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, BorrowedFd};

use mnl::mnl_sys;
use nftnl::set::Set;
use nftnl::{MsgType, NlMsg};
use nftnl_sys as sys;

use super::wire::{align4, NFPROTO_INET, NLMSG_HDRLEN};

/// A message to append to a batch buffer.
pub enum Msg<'a> {
    /// A table, chain, rule, set or set-elements message of the `nftnl` crate.
    Object(&'a dyn NlMsg, MsgType),
    /// An nf_tables request (`NFT_MSG_GET*`) in family inet with NUL-terminated string
    /// attributes.
    Query {
        msg: u8,
        flags: u16,
        attrs: &'a [(u16, &'a CStr)],
    },
    BatchBegin,
    BatchEnd,
}

/// Appends `msg` with sequence number `seq` to `out`; returns the offset it starts at.
pub fn put(out: &mut Vec<u8>, seq: u32, msg: Msg<'_>) -> usize {
    // Header (16) + nfgenmsg (4), then attributes.
    const HEAD: usize = NLMSG_HDRLEN + 4;
    let max = nftnl::nft_nlmsg_maxsize() as usize;
    let room = match &msg {
        Msg::Object(..) => max,
        Msg::Query { attrs, .. } => {
            HEAD + attrs
                .iter()
                .map(|(_, v)| align4(4 + v.to_bytes_with_nul().len()))
                .sum::<usize>()
        }
        Msg::BatchBegin | Msg::BatchEnd => HEAD,
    };
    out.reserve(room);
    let off = out.len();
    // SAFETY: `reserve` made `room` bytes after `off` writable. For an object that is
    // nft_nlmsg_maxsize(), the room `NlMsg::write` requires; a query is a header plus the
    // attributes counted into `room`, each written with the bounds-checked
    // mnl_attr_put_strz_check against `room`; a batch delimiter is one header and nfgenmsg.
    // libmnl initialises every byte up to nlmsg_len (it zeroes headers and attribute
    // padding), the alignment padding after it is zeroed below, so all bytes up to the new
    // length are initialised when `set_len` runs.
    unsafe {
        let p = out.as_mut_ptr().add(off);
        match msg {
            Msg::Object(obj, ty) => obj.write(p.cast::<c_void>(), seq, ty),
            Msg::Query { msg, flags, attrs } => {
                let nlh = sys::nftnl_nlmsg_build_hdr(
                    p.cast(),
                    u16::from(msg),
                    u16::from(NFPROTO_INET),
                    flags,
                    seq,
                );
                for (ty, value) in attrs {
                    if !mnl_sys::mnl_attr_put_strz_check(nlh, room, *ty, value.as_ptr()) {
                        panic!("netlink attribute {ty} does not fit a message");
                    }
                }
            }
            Msg::BatchBegin => drop(sys::nftnl_batch_begin(p.cast(), seq)),
            Msg::BatchEnd => drop(sys::nftnl_batch_end(p.cast(), seq)),
        }
        let len = std::ptr::read_unaligned(p.cast::<u32>()) as usize;
        assert!(
            (NLMSG_HDRLEN..=room).contains(&len),
            "libnftnl wrote a netlink message of {len} bytes"
        );
        let end = align4(len).min(room);
        std::ptr::write_bytes(p.add(len), 0, end - len);
        out.set_len(off + end);
    }
    off
}

/// Sets the set's NFTNL_SET_FLAGS (the crate sets flags only for anonymous sets).
pub fn set_flags<K>(set: &mut Set<'_, K>, flags: u32) {
    // SAFETY: `set` owns a valid nftnl_set for its lifetime; u32 attributes are copied.
    unsafe { sys::nftnl_set_set_u32(set.as_ptr().as_ptr(), sys::NFTNL_SET_FLAGS as u16, flags) }
}

/// Adds an element: `key` in network byte order, element `flags` (e.g. INTERVAL_END), a
/// timeout in milliseconds, and element userdata (nft's flags TLV).
pub fn push_elem<K>(
    set: &mut Set<'_, K>,
    key: &[u8],
    flags: u32,
    timeout_ms: Option<u64>,
    udata: &[u8],
) {
    // SAFETY: the allocation is checked; every setter copies its data (key and userdata are
    // read for their lengths only); nftnl_set_elem_add hands the element to the set, which
    // frees it together with itself. `set` owns a valid nftnl_set.
    unsafe {
        let elem = sys::nftnl_set_elem_alloc();
        if elem.is_null() {
            std::process::abort(); // out of memory, like std's allocation failure
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
        sys::nftnl_set_elem_add(set.as_ptr().as_ptr(), elem);
    }
}

/// The socket's descriptor, borrowed for as long as the socket.
pub fn fd(sock: &mnl::Socket) -> BorrowedFd<'_> {
    // SAFETY: the descriptor is owned by `sock`, which closes it only when dropped; the
    // borrow cannot outlive `sock`.
    unsafe { BorrowedFd::borrow_raw(sock.as_raw_fd()) }
}

/// Turns a SOL_NETLINK option on (NETLINK_CAP_ACK, NETLINK_EXT_ACK).
pub fn netlink_option(sock: &mnl::Socket, option: c_int) -> io::Result<()> {
    let mut on: c_int = 1;
    // SAFETY: `sock` is an open mnl socket; `on` is a valid c_int of the given length for the
    // duration of the call.
    let r = unsafe {
        mnl_sys::mnl_socket_setsockopt(
            sock.as_raw_socket(),
            option,
            (&raw mut on).cast::<c_void>(),
            size_of::<c_int>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

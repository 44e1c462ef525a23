//! Change monitor: notices when someone else removes f2b's table, chain, sets or rules
//! (`nft flush ruleset`, `systemctl restart nftables`, `nft delete table inet f2b`, …).
//!
//! A thread of its own subscribes a netlink socket to the nftables multicast group
//! (NFNLGRP_NFTABLES) and blocks in `poll()` on it and on an eventfd that stops it — no polling
//! loop. Deletions that concern `inet f2b` are collected per transaction and reported once,
//! when the transaction's NEWGEN notification arrives, through the callback given to
//! [`spawn_monitor`].
//!
//! Changes made by this process are not reported: every notification carries the netlink port
//! id of the socket that made the change, and the kernel lists which netlink sockets this
//! process holds (`/proc/self/fd` → socket inodes, `/proc/thread-self/net/netlink` → their port
//! ids). No registry of our own sockets is kept.
//!
//! If the kernel drops notifications (receive queue overrun, ENOBUFS — e.g. during a very
//! large ban batch), the monitor re-checks the table and chain directly and reports them if
//! they are gone (`overrun: true`).

use std::collections::HashSet;
use std::ffi::CStr;
use std::fmt;
use std::fs;
use std::io;
use std::os::fd::OwnedFd;
use std::sync::mpsc;
use std::thread::{self, JoinHandle};

use rustix::event::{EventfdFlags, PollFd, PollFlags};

use super::ffi;
use super::layout::CHAIN_NAME;
use super::socket::{self, Conn, RxBuf};
use super::wire::{self, Msg};
use crate::firewall::{FirewallError, TABLE_NAME};

/// One object of `inet f2b` that was removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removed {
    /// The whole table (everything in it is gone).
    Table,
    /// A chain, by name.
    Chain(String),
    /// A named set, by name (e.g. `sshd-v4`).
    Set(String),
    /// A rule in the given chain.
    Rule { chain: String },
}

/// Someone else removed parts of f2b's table: the engine should call `setup` and re-apply its
/// active bans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorEvent {
    /// What was removed, in the kernel's notification order.
    pub removed: Vec<Removed>,
    /// Process (pid as the kernel reports it, in the initial pid namespace) and command name
    /// that committed the change, when known.
    pub pid: Option<u32>,
    pub process: Option<String>,
    /// Notifications were lost; `removed` comes from re-checking the kernel.
    pub overrun: bool,
}

impl MonitorEvent {
    /// True if the whole table was deleted.
    pub fn table_deleted(&self) -> bool {
        self.removed.contains(&Removed::Table)
    }
}

impl fmt::Display for MonitorEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.table_deleted() {
            write!(f, "table inet {TABLE_NAME} deleted")?;
        } else {
            let mut parts = Vec::new();
            for r in &self.removed {
                match r {
                    Removed::Chain(c) => parts.push(format!("chain {c}")),
                    Removed::Set(s) => parts.push(format!("set {s}")),
                    Removed::Table | Removed::Rule { .. } => {}
                }
            }
            let rules = self
                .removed
                .iter()
                .filter(|r| matches!(r, Removed::Rule { .. }))
                .count();
            if rules > 0 {
                parts.push(format!("{rules} rule(s)"));
            }
            write!(
                f,
                "{} deleted from table inet {TABLE_NAME}",
                parts.join(", ")
            )?;
        }
        match (&self.process, self.pid) {
            (Some(p), Some(pid)) => write!(f, " by {p} (pid {pid})")?,
            (None, Some(pid)) => write!(f, " by pid {pid}")?,
            _ => {}
        }
        if self.overrun {
            write!(f, " (found after lost notifications)")?;
        }
        Ok(())
    }
}

/// Handle of a running monitor thread. Dropping it (or [`Monitor::stop`]) stops the thread and
/// waits for it.
pub struct Monitor {
    stop: OwnedFd,
    thread: Option<JoinHandle<()>>,
}

impl Monitor {
    /// Stops the monitor thread and waits for it to end.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(t) = self.thread.take() {
            let _ = rustix::io::write(&self.stop, &1u64.to_ne_bytes());
            let _ = t.join();
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.shutdown();
    }
}

const MONITOR_RCVBUF: usize = 16 * 1024 * 1024;

/// Starts the change monitor for the network namespace of the calling thread.
///
/// `on_event` runs on the monitor thread, once per foreign transaction that removed something
/// from `inet f2b`; keep it short (e.g. send into a `std::sync::mpsc` or
/// `tokio::sync::mpsc::UnboundedSender` and debounce in the engine). Changes made through any
/// netlink socket of this process are not reported.
///
/// Fails with [`FirewallError::PermissionDenied`] without CAP_NET_ADMIN.
pub fn spawn_monitor<F>(on_event: F) -> Result<Monitor, FirewallError>
where
    F: FnMut(MonitorEvent) + Send + 'static,
{
    let stop = rustix::event::eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)
        .map_err(io::Error::from)?;
    let stop_for_thread = stop.try_clone()?;
    let (ready_tx, ready_rx) = mpsc::channel();
    // The sockets are !Send: the thread opens them, in the namespace it inherits from ours.
    let thread = thread::Builder::new()
        .name("f2b-nft-monitor".into())
        .spawn(move || {
            let opened = socket::open_socket(1 << (wire::NFNLGRP_NFTABLES - 1))
                .and_then(|sock| Ok((sock, Conn::open()?)));
            match opened {
                Ok((sock, query)) => {
                    socket::grow_rcvbuf(&sock, MONITOR_RCVBUF);
                    let _ = ready_tx.send(Ok(()));
                    run(&sock, query, &stop_for_thread, on_event);
                }
                Err(e) => drop(ready_tx.send(Err(e))),
            }
        })?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(Monitor {
            stop,
            thread: Some(thread),
        }),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => Err(FirewallError::WorkerGone),
    }
}

fn run<F: FnMut(MonitorEvent)>(
    sock: &mnl::Socket,
    mut query: Conn,
    stop: &OwnedFd,
    mut on_event: F,
) {
    let mut rx = RxBuf::new();
    let mut pending: Vec<Removed> = Vec::new();
    loop {
        let sock_fd = ffi::fd(sock);
        let mut fds = [
            PollFd::new(&sock_fd, PollFlags::IN),
            PollFd::new(stop, PollFlags::IN),
        ];
        if let Err(e) = rustix::event::poll(&mut fds, None) {
            if e == rustix::io::Errno::INTR {
                continue;
            }
            tracing::error!(error = %e, "nftables monitor: poll failed");
            return;
        }
        if !fds[1].revents().is_empty() {
            return;
        }
        if fds[0].revents().is_empty() {
            continue;
        }
        match sock.recv_raw(&mut rx.0) {
            Ok(len) => {
                for m in mnl::NlMessages::new(&rx.0[..len]).flatten() {
                    if let Some(ev) = Msg::parse(m).and_then(|m| handle(&m, &mut pending)) {
                        on_event(ev);
                    }
                }
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                tracing::warn!("nftables monitor: notifications lost, re-checking the table");
                pending.clear();
                let removed = recheck(&mut query);
                if !removed.is_empty() {
                    on_event(MonitorEvent {
                        removed,
                        pid: None,
                        process: None,
                        overrun: true,
                    });
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                tracing::error!(error = %e, "nftables monitor: receive failed");
                return;
            }
        }
    }
}

/// One notification: collects deletions of `inet f2b` objects; at the end of a transaction
/// (NEWGEN) returns them as an event unless this process made the change.
fn handle(msg: &Msg<'_>, pending: &mut Vec<Removed>) -> Option<MonitorEvent> {
    let nft = msg.nft_msg()?;
    if nft == wire::NFT_MSG_NEWGEN {
        if pending.is_empty() {
            return None;
        }
        let removed = std::mem::take(pending);
        if msg.pid != 0 && own_ports().contains(&msg.pid) {
            return None;
        }
        let (pid, process) = wire::gen_process(msg);
        return Some(MonitorEvent {
            removed,
            pid,
            process,
            overrun: false,
        });
    }
    let deletion = matches!(
        nft,
        wire::NFT_MSG_DELTABLE
            | wire::NFT_MSG_DESTROYTABLE
            | wire::NFT_MSG_DELCHAIN
            | wire::NFT_MSG_DESTROYCHAIN
            | wire::NFT_MSG_DELSET
            | wire::NFT_MSG_DESTROYSET
            | wire::NFT_MSG_DELRULE
            | wire::NFT_MSG_DESTROYRULE
    );
    if !deletion || msg.family() != Some(wire::NFPROTO_INET) {
        return None;
    }
    let (table, name) = wire::object_names(msg, nft);
    if table != TABLE_NAME {
        return None;
    }
    pending.push(match nft {
        wire::NFT_MSG_DELTABLE | wire::NFT_MSG_DESTROYTABLE => Removed::Table,
        wire::NFT_MSG_DELCHAIN | wire::NFT_MSG_DESTROYCHAIN => Removed::Chain(name),
        wire::NFT_MSG_DELSET | wire::NFT_MSG_DESTROYSET if name.starts_with("__") => {
            return None; // the anonymous set of a rule
        }
        wire::NFT_MSG_DELSET | wire::NFT_MSG_DESTROYSET => Removed::Set(name),
        _ => Removed::Rule { chain: name },
    });
    None
}

/// Port ids of the netfilter netlink sockets this process holds in the calling thread's
/// network namespace: the kernel's list of netlink sockets (port id, inode) matched against
/// the socket inodes among our file descriptors.
fn own_ports() -> HashSet<u32> {
    let inodes: HashSet<u64> = match fs::read_dir("/proc/self/fd") {
        Ok(dir) => dir
            .filter_map(|e| {
                let target = fs::read_link(e.ok()?.path()).ok()?;
                let s = target
                    .to_str()?
                    .strip_prefix("socket:[")?
                    .strip_suffix(']')?;
                s.parse().ok()
            })
            .collect(),
        Err(_) => return HashSet::new(),
    };
    let Ok(table) = fs::read_to_string("/proc/thread-self/net/netlink") else {
        return HashSet::new();
    };
    parse_netlink_table(&table, &inodes)
}

/// `/proc/net/netlink`: `sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode` per socket.
fn parse_netlink_table(table: &str, inodes: &HashSet<u64>) -> HashSet<u32> {
    let netfilter = libc::NETLINK_NETFILTER.to_string();
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (proto, port, inode) = (f.get(1)?, f.get(2)?, f.get(9)?);
            let ours = *proto == netfilter && inodes.contains(&inode.parse().ok()?);
            ours.then(|| port.parse().ok()).flatten()
        })
        .collect()
}

/// After lost notifications: is the table, and its base chain, still there?
fn recheck(query: &mut Conn) -> Vec<Removed> {
    const TABLE: &CStr = c"f2b";
    const CHAIN: &CStr = c"input";
    let table = [(wire::NFTA_TABLE_NAME, TABLE)];
    match query.request(wire::NFT_MSG_GETTABLE, false, &table, |_, _| {}) {
        Ok(Err(libc::ENOENT)) => return vec![Removed::Table],
        Ok(_) => {}
        Err(e) => {
            tracing::error!(error = %e, "nftables monitor: re-check failed");
            return Vec::new();
        }
    }
    let chain = [
        (wire::NFTA_CHAIN_TABLE, TABLE),
        (wire::NFTA_CHAIN_NAME, CHAIN),
    ];
    match query.request(wire::NFT_MSG_GETCHAIN, false, &chain, |_, _| {}) {
        Ok(Err(libc::ENOENT)) => vec![Removed::Chain(CHAIN_NAME.to_string())],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_sockets_are_found_by_inode() {
        let table = "sk               Eth Pid        Groups   Rmem     Wmem     Dump  Locks    Drops    Inode\n\
                     0000000000000000 12  4242       00000000 0        0        0     2        0        777\n\
                     0000000000000000 12  99         00000040 0        0        0     2        0        778\n\
                     0000000000000000 0   4242       00000000 0        0        0     2        0        779\n";
        let ours = parse_netlink_table(table, &HashSet::from([777, 779]));
        assert_eq!(ours, HashSet::from([4242]));
    }

    #[test]
    fn this_process_sees_its_own_netlink_socket() {
        // No CAP_NET_ADMIN needed to open (not bind to groups) a netfilter netlink socket.
        let sock = socket::open_socket(0).expect("netlink socket");
        assert!(own_ports().contains(&sock.portid()));
    }
}

//! Change monitor: notices when someone else removes f2b's table, chain, sets or rules
//! (`nft flush ruleset`, `systemctl restart nftables`, `nft delete table inet f2b`, …).
//!
//! A second netlink socket subscribes to the nftables multicast group (NFNLGRP_NFTABLES) and a
//! dedicated thread blocks in `poll()` on it — no polling loop. Deletions that concern
//! `inet f2b` are collected per transaction and reported once, when the transaction's NEWGEN
//! notification arrives, through the callback given to [`spawn_monitor`].
//!
//! Changes made by f2b itself are ignored: every [`Nftables`](super::Nftables) socket of this
//! process registers its (network namespace, netlink port id), and notifications carry the
//! port id of the socket that caused them.
//!
//! If the kernel drops notifications (receive queue overrun, ENOBUFS — e.g. during a very
//! large ban batch), the monitor re-checks the table and chain directly and reports them if
//! they are gone (`overrun: true`).

use std::fmt;
use std::io;
use std::sync::Mutex;
use std::thread::{self, JoinHandle};

use super::batch::Conn;
use super::layout::CHAIN_NAME;
use super::netlink as nl;
use super::sys::{self, EventFd, NlSocket};
use crate::firewall::{FirewallError, TABLE_NAME};

/// (network namespace inode, netlink port id) of every f2b request socket in this process.
static OWN_SOCKETS: Mutex<Vec<(u64, u32)>> = Mutex::new(Vec::new());

pub(crate) fn register_own(netns: u64, portid: u32) {
    OWN_SOCKETS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((netns, portid));
}

pub(crate) fn unregister_own(netns: u64, portid: u32) {
    let mut v = OWN_SOCKETS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(i) = v.iter().position(|&x| x == (netns, portid)) {
        v.swap_remove(i);
    }
}

fn is_own(netns: u64, portid: u32) -> bool {
    portid != 0
        && OWN_SOCKETS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&(netns, portid))
}

/// Inode of the calling thread's network namespace (0 if /proc is unavailable).
pub(crate) fn current_netns() -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/thread-self/ns/net")
        .map(|m| m.ino())
        .unwrap_or(0)
}

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
    stop: EventFd,
    thread: Option<JoinHandle<()>>,
}

impl Monitor {
    /// Stops the monitor thread and waits for it to end.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(t) = self.thread.take() {
            let _ = self.stop.signal();
            let _ = t.join();
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.shutdown();
    }
}

const MONITOR_RCVBUF: i32 = 16 * 1024 * 1024;

/// Starts the change monitor for the network namespace of the calling thread.
///
/// `on_event` runs on the monitor thread, once per foreign transaction that removed something
/// from `inet f2b`; keep it short (e.g. send into a `std::sync::mpsc` or
/// `tokio::sync::mpsc::UnboundedSender` and debounce in the engine). Changes made through any
/// `Nftables` of this process are not reported.
///
/// Fails with [`FirewallError::PermissionDenied`] without CAP_NET_ADMIN.
pub fn spawn_monitor<F>(on_event: F) -> Result<Monitor, FirewallError>
where
    F: FnMut(MonitorEvent) + Send + 'static,
{
    // Sockets are created here, in the caller's thread, so they live in its namespace.
    let netns = current_netns();
    let sock = NlSocket::open()?;
    if let Err(e) = sock.set_opt(
        libc::SOL_NETLINK,
        libc::NETLINK_ADD_MEMBERSHIP,
        nl::NFNLGRP_NFTABLES as i32,
    ) {
        if e.raw_os_error() == Some(libc::EPERM) {
            return Err(FirewallError::PermissionDenied);
        }
        return Err(e.into());
    }
    if sock
        .set_opt(libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, MONITOR_RCVBUF)
        .is_err()
    {
        let _ = sock.set_opt(libc::SOL_SOCKET, libc::SO_RCVBUF, MONITOR_RCVBUF);
    }
    let query = Conn::open()?;
    let stop = EventFd::new()?;
    let stop_for_thread = stop.try_clone()?;
    let thread = thread::Builder::new()
        .name("f2b-nft-monitor".into())
        .spawn(move || run(sock, query, stop_for_thread, netns, on_event))?;
    Ok(Monitor {
        stop,
        thread: Some(thread),
    })
}

fn run<F: FnMut(MonitorEvent)>(
    sock: NlSocket,
    mut query: Conn,
    stop: EventFd,
    netns: u64,
    mut on_event: F,
) {
    let mut rx = vec![0u8; 256 * 1024];
    let mut pending: Vec<Removed> = Vec::new();
    loop {
        let ready = match sys::poll_readable([
            std::os::fd::AsFd::as_fd(&sock),
            std::os::fd::AsFd::as_fd(&stop),
        ]) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("nftables monitor: poll failed: {e}");
                return;
            }
        };
        if ready[1] {
            return;
        }
        loop {
            match sock.recv(&mut rx, true) {
                Ok(len) => {
                    for msg in nl::messages(&rx[..len]) {
                        handle(&msg, netns, &mut pending, &mut on_event);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    tracing::warn!("nftables monitor: notifications lost, re-checking table");
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
                Err(e) => {
                    tracing::error!("nftables monitor: receive failed: {e}");
                    return;
                }
            }
        }
    }
}

fn handle<F: FnMut(MonitorEvent)>(
    msg: &nl::Msg<'_>,
    netns: u64,
    pending: &mut Vec<Removed>,
    on_event: &mut F,
) {
    let Some(nft) = msg.nft_msg() else { return };
    match nft {
        nl::NFT_MSG_NEWGEN if !pending.is_empty() => {
            let a = msg.attrs();
            on_event(MonitorEvent {
                removed: std::mem::take(pending),
                pid: a.get(nl::NFTA_GEN_PROC_PID).and_then(nl::be32),
                process: a.get(nl::NFTA_GEN_PROC_NAME).map(nl::string),
                overrun: false,
            });
        }
        nl::NFT_MSG_DELTABLE
        | nl::NFT_MSG_DESTROYTABLE
        | nl::NFT_MSG_DELCHAIN
        | nl::NFT_MSG_DESTROYCHAIN
        | nl::NFT_MSG_DELSET
        | nl::NFT_MSG_DESTROYSET
        | nl::NFT_MSG_DELRULE
        | nl::NFT_MSG_DESTROYRULE => {
            if msg.family() != Some(nl::NFPROTO_INET) {
                return;
            }
            let (table, name) = nl::object_names(msg, nft);
            if table != TABLE_NAME || is_own(netns, msg.pid) {
                return;
            }
            let removed = match nft {
                nl::NFT_MSG_DELTABLE | nl::NFT_MSG_DESTROYTABLE => Removed::Table,
                nl::NFT_MSG_DELCHAIN | nl::NFT_MSG_DESTROYCHAIN => Removed::Chain(name),
                nl::NFT_MSG_DELSET | nl::NFT_MSG_DESTROYSET => {
                    if name.starts_with("__") {
                        return; // anonymous set of a rule
                    }
                    Removed::Set(name)
                }
                _ => Removed::Rule { chain: name },
            };
            pending.push(removed);
        }
        _ => {}
    }
}

/// After lost notifications: is the table, and its base chain, still there?
fn recheck(query: &mut Conn) -> Vec<Removed> {
    let table = nl::strz(TABLE_NAME);
    match query.request(
        nl::NFT_MSG_GETTABLE,
        0,
        &[(nl::NFTA_TABLE_NAME, &table)],
        |_| {},
    ) {
        Ok(Err(libc::ENOENT)) => return vec![Removed::Table],
        Ok(_) => {}
        Err(e) => {
            tracing::error!("nftables monitor: re-check failed: {e}");
            return Vec::new();
        }
    }
    let chain = nl::strz(CHAIN_NAME);
    match query.request(
        nl::NFT_MSG_GETCHAIN,
        0,
        &[
            (nl::NFTA_CHAIN_TABLE, &table),
            (nl::NFTA_CHAIN_NAME, &chain),
        ],
        |_| {},
    ) {
        Ok(Err(libc::ENOENT)) => vec![Removed::Chain(CHAIN_NAME.to_string())],
        _ => Vec::new(),
    }
}

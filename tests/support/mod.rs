//! Test helpers: private network namespaces without names or global state.
//!
//! `NetNs::new()` starts a thread that calls `unshare(CLONE_NEWNET)` (allowed on one thread of
//! a multi-threaded process), brings `lo` up, keeps an fd of the namespace and parks. Closures
//! run in the namespace on fresh threads that `setns()` into it. The namespace disappears when
//! the `NetNs`, and every socket created in it, is gone. The host's own ruleset is never
//! touched.

#![allow(dead_code)]

use std::fs::File;
use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::process::{Command, Output};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

pub struct NetNs {
    ns: File,
    tid: i32,
    park: Option<(mpsc::Sender<()>, thread::JoinHandle<()>)>,
}

/// True if we are root; otherwise prints why the test is skipped.
pub fn root_or_skip(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    if euid != 0 {
        eprintln!("SKIP {test}: needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN for network namespaces)");
        return false;
    }
    true
}

/// Like `root_or_skip`, and also that `nft` and `ip` are installed.
pub fn root_and_tools_or_skip(test: &str) -> bool {
    if !root_or_skip(test) {
        return false;
    }
    for tool in ["nft", "ip"] {
        if Command::new(tool).arg("-V").output().is_err() {
            eprintln!("SKIP {test}: `{tool}` is not installed");
            return false;
        }
    }
    // Root without CAP_SYS_ADMIN (some containers) cannot create network namespaces.
    let probe = thread::spawn(|| {
        // SAFETY: unshare only affects this short-lived thread.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    });
    if let Err(e) = probe.join().expect("probe thread") {
        eprintln!("SKIP {test}: cannot create a network namespace: {e}");
        return false;
    }
    true
}

fn gettid() -> i32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() }
}

impl NetNs {
    /// A fresh network namespace with `lo` up. Panics if unshare fails.
    pub fn new() -> NetNs {
        let (tx, rx) = mpsc::channel();
        let (park_tx, park_rx) = mpsc::channel::<()>();
        let handle = thread::spawn(move || {
            // SAFETY: unshare only affects this thread.
            let r = unsafe { libc::unshare(libc::CLONE_NEWNET) };
            if r != 0 {
                let _ = tx.send(Err(std::io::Error::last_os_error()));
                return;
            }
            let ns = File::open("/proc/thread-self/ns/net").map(|f| (f, gettid()));
            let _ = tx.send(ns);
            let _ = park_rx.recv();
        });
        let (ns, tid) = rx
            .recv()
            .expect("netns thread")
            .expect("unshare(CLONE_NEWNET)");
        let me = NetNs {
            ns,
            tid,
            park: Some((park_tx, handle)),
        };
        me.sh("ip link set lo up");
        me
    }

    /// TID of a thread living in the namespace (for `ip link … netns TID`).
    pub fn tid(&self) -> i32 {
        self.tid
    }

    /// Moves the calling thread into the namespace.
    pub fn enter(&self) {
        // SAFETY: `self.ns` is an open namespace fd; setns affects this thread only.
        let r = unsafe { libc::setns(self.ns.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(r, 0, "setns: {}", std::io::Error::last_os_error());
    }

    /// Runs `f` on a new thread inside the namespace and waits for it.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        thread::scope(|s| {
            s.spawn(|| {
                self.enter();
                f()
            })
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))
        })
    }

    /// Spawns `f` on a new thread inside the namespace.
    pub fn spawn<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> thread::JoinHandle<T> {
        let ns = self.ns.try_clone().expect("dup netns fd");
        thread::spawn(move || {
            // SAFETY: as in `enter`.
            let r = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(r, 0, "setns: {}", std::io::Error::last_os_error());
            drop(ns);
            f()
        })
    }

    /// Runs a shell command in the namespace; panics on failure.
    pub fn sh(&self, cmd: &str) -> String {
        let out = self.sh_output(cmd);
        assert!(
            out.status.success(),
            "`{cmd}` failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs a shell command in the namespace and returns its output, whatever the status.
    pub fn sh_output(&self, cmd: &str) -> Output {
        let cmd = cmd.to_string();
        self.run(move || {
            Command::new("sh")
                .arg("-c")
                .arg(&cmd)
                .output()
                .expect("spawn sh")
        })
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        if let Some((tx, h)) = self.park.take() {
            let _ = tx.send(());
            let _ = h.join();
        }
    }
}

/// Two namespaces joined by a veth pair: `srv` (vs: 10.77.0.1/24, fd77::1/64) and `atk`
/// (va: 10.77.0.2/24 + 10.77.0.3/24, fd77::2/64 + fd77::3/64), IPv6 without DAD.
pub struct Pair {
    pub srv: NetNs,
    pub atk: NetNs,
}

impl Pair {
    pub const SRV4: &'static str = "10.77.0.1";
    pub const ATK4: &'static str = "10.77.0.2";
    pub const ATK4_B: &'static str = "10.77.0.3";
    pub const SRV6: &'static str = "fd77::1";
    pub const ATK6: &'static str = "fd77::2";
    pub const ATK6_B: &'static str = "fd77::3";

    pub fn new() -> Pair {
        let srv = NetNs::new();
        let atk = NetNs::new();
        for ns in [&srv, &atk] {
            // No duplicate address detection at all (also for the link-local addresses,
            // which otherwise delay neighbour discovery by ~2 s).
            ns.run(|| {
                for conf in ["all", "default"] {
                    std::fs::write(format!("/proc/sys/net/ipv6/conf/{conf}/accept_dad"), "0")
                        .expect("disable DAD");
                }
            });
        }
        atk.sh(&format!(
            "ip link add va type veth peer name vs netns {}",
            srv.tid()
        ));
        atk.sh(
            "ip addr add 10.77.0.2/24 dev va && ip addr add 10.77.0.3/24 dev va && \
             ip -6 addr add fd77::2/64 dev va nodad && ip -6 addr add fd77::3/64 dev va nodad && \
             ip link set va up",
        );
        srv.sh(
            "ip addr add 10.77.0.1/24 dev vs && ip -6 addr add fd77::1/64 dev vs nodad && \
             ip link set vs up",
        );
        // The carrier comes up through linkwatch (up to ~1 s later); until then the device
        // drops what it sends.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        for (ns, dev) in [(&srv, "vs"), (&atk, "va")] {
            while !ns
                .sh(&format!("ip -o link show {dev}"))
                .contains("state UP")
            {
                assert!(
                    std::time::Instant::now() < deadline,
                    "{dev} did not come up"
                );
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
        Pair { srv, atk }
    }
}

/// How long a connect may take before we call it blocked (the SYN was dropped).
pub const BLOCKED_AFTER: Duration = Duration::from_millis(500);

#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Connected,
    TimedOut,
    Refused,
}

pub fn connect(atk: &NetNs, src: &str, dst: &str, port: u16) -> Outcome {
    connect_within(atk, src, dst, port, BLOCKED_AFTER)
}

pub fn connect_within(atk: &NetNs, src: &str, dst: &str, port: u16, limit: Duration) -> Outcome {
    let src: IpAddr = src.parse().unwrap();
    let dst: IpAddr = dst.parse().unwrap();
    atk.run(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let sock = if src.is_ipv4() {
                tokio::net::TcpSocket::new_v4()
            } else {
                tokio::net::TcpSocket::new_v6()
            }
            .unwrap();
            sock.bind(SocketAddr::new(src, 0)).unwrap();
            match tokio::time::timeout(limit, sock.connect(SocketAddr::new(dst, port))).await {
                Ok(Ok(_stream)) => Outcome::Connected,
                Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => Outcome::Refused,
                Ok(Err(e)) => panic!("connect {src} -> {dst}:{port}: {e}"),
                Err(_) => Outcome::TimedOut,
            }
        })
    })
}

/// A dual-stack listener on `port` in `ns` (connections complete in the backlog).
pub fn listen(ns: &NetNs, port: u16) -> TcpListener {
    ns.run(move || TcpListener::bind(("::", port)).unwrap())
}

//! Private network namespaces without names or global state, and a veth pair between a
//! server and an attacker namespace.
//!
//! `NetNs::new()` starts a thread that calls `unshare(CLONE_NEWNET)` (allowed on one thread of
//! a multi-threaded process), brings `lo` up, keeps an fd of the namespace and parks. Closures
//! run in the namespace on fresh threads that `setns()` into it. The namespace disappears when
//! the `NetNs`, and every socket created in it, is gone. The host's own ruleset is never
//! touched.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::process::{Command, Output};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use super::wait::wait_for;

/// A private network namespace, gone when this is dropped (and its sockets are closed).
pub struct NetNs {
    ns: File,
    tid: i32,
    park: Option<(mpsc::Sender<()>, thread::JoinHandle<()>)>,
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

    /// Starts `cmd` in the namespace (from a thread that joined it; the child stays there).
    pub fn spawn_cmd(&self, cmd: &mut Command) -> std::process::Child {
        self.run(|| cmd.spawn().unwrap_or_else(|e| panic!("{cmd:?}: {e}")))
    }

    /// Runs `cmd` in the namespace and returns its output, whatever the status.
    pub fn output(&self, cmd: &mut Command) -> Output {
        self.run(|| cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}")))
    }

    /// Is something listening on TCP `port` (any address) in the namespace? Read from the
    /// kernel's socket table, so that asking opens no connection a service would log.
    pub fn listening(&self, port: u16) -> bool {
        let want = format!(":{port:04X} ");
        self.run(|| {
            ["tcp", "tcp6"].iter().any(|t| {
                std::fs::read_to_string(format!("/proc/thread-self/net/{t}"))
                    .unwrap_or_default()
                    .lines()
                    .skip(1)
                    .map(|l| l.split_whitespace().collect::<Vec<_>>())
                    // local_address is field 1, st field 3 (0A = LISTEN)
                    .any(|f| f.len() > 3 && f[3] == "0A" && format!("{} ", f[1]).ends_with(&want))
            })
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
        self.output(Command::new("sh").arg("-c").arg(cmd))
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
/// (va: 10.77.0.2/24 + 10.77.0.3/24, fd77::2/64 + fd77::3/64), IPv6 without DAD. Connections
/// from `atk` come from ATK4 and ATK6 unless they bind another source address.
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
        // The first IPv4 and the last IPv6 address added are the default source addresses:
        // ATK4 and ATK6.
        atk.sh(
            "ip addr add 10.77.0.2/24 dev va && ip addr add 10.77.0.3/24 dev va && \
             ip -6 addr add fd77::3/64 dev va nodad && ip -6 addr add fd77::2/64 dev va nodad && \
             ip link set va up",
        );
        srv.sh(
            "ip addr add 10.77.0.1/24 dev vs && ip -6 addr add fd77::1/64 dev vs nodad && \
             ip link set vs up",
        );
        // The carrier comes up through linkwatch (up to ~1 s later); until then the device
        // drops what it sends.
        for (ns, dev) in [(&srv, "vs"), (&atk, "va")] {
            wait_for(Duration::from_secs(5), &format!("{dev} to come up"), || {
                ns.sh(&format!("ip -o link show {dev}"))
                    .contains("state UP")
            });
        }
        Pair { srv, atk }
    }
}

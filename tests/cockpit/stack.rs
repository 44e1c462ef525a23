//! What the page talks to besides the shared harness ([`crate::common::PrivateBus`],
//! [`crate::common::F2bd`] with `--firewall nftables` in a network namespace of its own):
//! Debian's cockpit-ws serving `packaging/cockpit` with a bridge on that bus, as root or as
//! uid 65534, and the nftables set f2bd fills.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::wait::poll_until;
use crate::common::{chmod, repo, NetNs, PrivateBus};

pub const COCKPIT_WS: &str = "/usr/lib/cockpit/cockpit-ws";

/// cockpit-ws without TLS or login: its session runs `cockpit-bridge` as the user cockpit-ws
/// runs as, with the private bus as "system" and `packaging/cockpit` as the package `f2b`.
pub struct CockpitWs {
    child: Child,
    pub port: u16,
    log: PathBuf,
}

impl CockpitWs {
    /// `uid`: None = root, Some(65534) = nobody. `dir` must be readable by that user.
    pub fn start(bus: &PrivateBus, dir: &Path, uid: Option<u32>) -> CockpitWs {
        let data = dir.join("data");
        let pkg = data.join("cockpit/f2b");
        std::fs::create_dir_all(&pkg).unwrap();
        for e in std::fs::read_dir(repo().join("packaging/cockpit")).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), pkg.join(e.file_name())).unwrap();
        }
        let runtime = dir.join("runtime");
        std::fs::create_dir_all(&runtime).unwrap();
        for p in [dir, &data, &data.join("cockpit"), &pkg] {
            chmod(p, 0o755);
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = dir.join("cockpit-ws.log");
        // As another user: setpriv, like the D-Bus tests (no supplementary groups either).
        let mut cmd = match uid {
            None => Command::new(COCKPIT_WS),
            Some(uid) => {
                let mut c = Command::new("setpriv");
                c.args([
                    &format!("--reuid={uid}"),
                    &format!("--regid={uid}"),
                    "--clear-groups",
                    COCKPIT_WS,
                ]);
                c
            }
        };
        cmd.args([
            "--no-tls",
            "--address",
            "127.0.0.1",
            "--port",
            &port.to_string(),
        ])
        .arg("--local-session=cockpit-bridge")
        .env("XDG_DATA_HOME", &data)
        .env("XDG_RUNTIME_DIR", &runtime)
        .env("DBUS_SYSTEM_BUS_ADDRESS", &bus.address)
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        // The bridge it spawns goes with it.
        .process_group(0);
        if let Some(uid) = uid {
            let status = Command::new("chown")
                .arg("-R")
                .arg(format!("{uid}:{uid}"))
                .arg(&runtime)
                .status()
                .unwrap();
            assert!(status.success());
            cmd.env("HOME", &runtime);
        }
        let child = cmd.spawn().expect("cockpit-ws");
        let ws = CockpitWs { child, port, log };
        if !poll_until(Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        }) {
            panic!("cockpit-ws does not listen:\n{}", ws.log());
        }
        ws
    }

    pub fn url(&self, fragment: &str) -> String {
        format!(
            "http://127.0.0.1:{}/cockpit/@localhost/f2b/index.html{fragment}",
            self.port
        )
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for CockpitWs {
    fn drop(&mut self) {
        // SAFETY: kill(2) of the process group made for cockpit-ws and its bridge.
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// The elements of f2b's sets in `ns`, as `nft` lists them.
pub fn nft_table(ns: &NetNs) -> String {
    ns.sh_output("nft list table inet f2b")
        .stdout
        .iter()
        .map(|&b| b as char)
        .collect()
}

/// Wait until `f(nft_table)` holds (or panic with `what` and the table after 10 s).
#[track_caller]
pub fn wait_nft(ns: &NetNs, what: &str, f: impl Fn(&str) -> bool) {
    if !poll_until(Duration::from_secs(10), || f(&nft_table(ns))) {
        panic!("{what}:\n{}", nft_table(ns));
    }
}

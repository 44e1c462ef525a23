//! What the page talks to, all real: a private system-like bus (dbus-daemon with the system
//! bus's default-deny policy and `dbus/org.f2b.conf`), f2bd with `--firewall nftables` inside
//! a network namespace of its own, and Debian's cockpit-ws serving `packaging/cockpit` with a
//! bridge on that bus, as root or as uid 65534.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::NetNs;

pub const COCKPIT_WS: &str = "/usr/lib/cockpit/cockpit-ws";
const F2BD: &str = env!("CARGO_BIN_EXE_f2bd");

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

pub struct Bus {
    child: Child,
    pub address: String,
}

impl Bus {
    /// dbus-daemon on `dir/bus`, its policy beside it in `dir/system.d`.
    pub fn start(dir: &Path) -> Bus {
        let policy = dir.join("system.d");
        std::fs::create_dir_all(&policy).unwrap();
        std::fs::copy(
            repo().join("dbus/org.f2b.conf"),
            policy.join("org.f2b.conf"),
        )
        .unwrap();
        let config = dir.join("bus.conf");
        std::fs::write(
            &config,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <auth>EXTERNAL</auth>
  <listen>unix:path={dir}/bus</listen>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Properties"/>
  </policy>
  <includedir>{policy}</includedir>
</busconfig>
"#,
                dir = dir.display(),
                policy = policy.display()
            ),
        )
        .unwrap();
        let mut child = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--print-address=1", "--nopidfile"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let address = line.trim().to_string();
        assert!(address.starts_with("unix:"), "dbus-daemon said {address:?}");
        Bus { child, address }
    }

    /// `busctl --address=… ARGS` as root.
    pub fn busctl(&self, args: &[&str]) -> Output {
        Command::new("busctl")
            .arg(format!("--address={}", self.address))
            .args(args)
            .output()
            .unwrap()
    }

    #[track_caller]
    pub fn busctl_ok(&self, args: &[&str]) -> String {
        let o = self.busctl(args);
        assert!(
            o.status.success(),
            "busctl {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

/// f2bd inside `ns` with the nftables firewall, on `bus`, reading `dir/journal` from its start.
pub struct F2bd {
    child: Child,
    log: PathBuf,
}

impl F2bd {
    pub fn start(ns: &NetNs, bus: &Bus, dir: &Path, config: &str) -> F2bd {
        std::fs::write(dir.join("f2b.toml"), config).unwrap();
        std::fs::create_dir_all(dir.join("state")).unwrap();
        let log = dir.join("f2bd.log");
        let mut cmd = Command::new(F2BD);
        cmd.args(["--bus", &bus.address, "--firewall", "nftables"])
            .args(["--log", "stderr", "--from-start", "--no-system-filters"])
            .arg("--filter-dir")
            .arg(repo().join("filters"))
            .arg("--config")
            .arg(dir.join("f2b.toml"))
            .arg("--journal-dir")
            .arg(dir.join("journal"))
            .arg("--state-dir")
            .arg(dir.join("state"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        // Spawned from a thread inside the namespace: f2bd's netlink socket is there.
        let child = ns.run(move || cmd.spawn().expect("f2bd"));
        let mut d = F2bd { child, log };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let o = bus.busctl(&["status", "org.f2b"]);
            if o.status.success() {
                break;
            }
            if let Some(st) = d.child.try_wait().unwrap() {
                panic!("f2bd exited ({st}):\n{}", d.log());
            }
            assert!(Instant::now() < deadline, "f2bd took no name:\n{}", d.log());
            std::thread::sleep(Duration::from_millis(25));
        }
        d
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for F2bd {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

/// cockpit-ws without TLS or login: its session runs `cockpit-bridge` as the user cockpit-ws
/// runs as, with the private bus as "system" and `packaging/cockpit` as the package `f2b`.
pub struct CockpitWs {
    child: Child,
    pub port: u16,
    log: PathBuf,
}

impl CockpitWs {
    /// `uid`: None = root, Some(65534) = nobody. `dir` must be readable by that user.
    pub fn start(bus: &Bus, dir: &Path, uid: Option<u32>) -> CockpitWs {
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
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "cockpit-ws does not listen:\n{}",
                ws.log()
            );
            std::thread::sleep(Duration::from_millis(25));
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

/// Wait until `f(nft_table)` holds (or panic with `what` after 10 s).
#[track_caller]
pub fn wait_nft(ns: &NetNs, what: &str, f: impl Fn(&str) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let t = nft_table(ns);
        if f(&t) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}:\n{t}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

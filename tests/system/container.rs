//! The Debian package on a real systemd: build it with cargo-deb, boot Debian 12 under
//! systemd-nspawn (systemd as PID 1, journald, the system bus, polkit, OpenSSH, in a network
//! namespace of its own), install the package with apt, and use it as an administrator would:
//!
//! 1. `apt install ./f2b_*.deb`: f2b.service is enabled and started, `systemctl status` shows
//!    its STATUS=, `systemd-analyze verify` finds nothing wrong with the units and
//!    `systemd-analyze security` rates f2b.service at 2.0 or better.
//! 2. `busctl call org.f2b /org/f2b org.f2b.Manager1 ListJails` answers.
//! 3. Failed password logins against the container's real sshd from another network namespace
//!    get that client banned by the shipped default configuration: its TCP connect to port 22
//!    fails while a second client still connects; `journalctl -u f2b` shows the ban with its
//!    F2B_JAIL and F2B_ADDRESS fields.
//!    Then the Cockpit page (tests/system/admin.rs): a PAM login through cockpit-ws on 9090,
//!    the attacker's ban shown, unbanned and banned again from the page by a polkit-authorized
//!    user, "not authorized" for a user without the rule.
//! 4. `systemctl reload f2b` works, and fails (keeping the running configuration) on an
//!    invalid drop-in.
//! 5. `systemctl restart f2b` keeps the ban.
//! 6. With the watchdog shortened (a drop-in), a frozen f2bd (SIGSTOP) is killed and restarted.
//! 7. Nothing listens on the metrics port until f2b-metrics.socket is enabled; then f2bd serves
//!    Prometheus metrics on the socket systemd passes.
//! 8. Timer mode: f2b-scan.timer and f2b.service exclude each other; an attacker who fails
//!    while no daemon runs is banned by the next f2b-scan.service run, which exits.
//!    A disabled f2b is not started again by D-Bus calls (issue 10.4), an enabled one is.
//!    A file jail (issue 13, tests/system/files.rs) on a /var/log file that only root and adm
//!    may read bans the client its appended failures name.
//! 9. An upgrade (`apt install` of the same package with revision 2) restarts f2bd and keeps
//!    the ban; `apt purge` removes the units, the state, the nftables table and /etc/f2b with
//!    an admin's drop-in in it (and says so).
//!
//! The root file system (mmdebstrap, minbase) is cached as a tarball under
//! `target/system-test/`; the container, its network namespaces and cgroups are removed at the
//! end, also when a check fails (F2B_SYSTEM_TEST_KEEP=1 leaves the container running, for
//! debugging). Set F2B_SKIP_SYSTEM_TEST=1 to skip.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::{have, is_root, repo};

/// Machine name, also the prefix of the network namespaces, veths and cgroups.
pub(crate) const NAME: &str = "f2bsys";
/// The container (server) on the attacker's link, the attacker, and on a second link a client
/// that must keep working.
pub(crate) const SRV_A: &str = "10.231.1.1";
pub(crate) const ATTACKER: &str = "10.231.1.2";
pub(crate) const SRV_B: &str = "10.231.2.1";
pub(crate) const CLIENT: &str = "10.231.2.2";
/// A third link: an attacker who comes while only the timer mode runs.
const SRV_C: &str = "10.231.3.1";
const ATTACKER2: &str = "10.231.3.2";
/// Packages of the root file system: the brief's list plus what f2b links (libsqlite3-0), so
/// that apt needs no network inside the container.
/// cockpit-ws and cockpit-bridge for the Cockpit page (admin.rs).
const INCLUDE: &str = "systemd,systemd-sysv,dbus,polkitd,openssh-server,nftables,iproute2,\
                       libsqlite3-0,libnftnl11,cockpit-ws,cockpit-bridge";

pub(crate) fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `ip ARGS` on the host; panics unless it succeeds.
pub(crate) fn ip(args: &str) {
    run_ok(Command::new("ip").args(args.split_whitespace()));
}

/// A shell script in the network namespace `ns`, in the background (output discarded).
pub(crate) fn netns_sh(ns: &str, script: &str) -> Child {
    Command::new("ip")
        .args(["netns", "exec", ns, "bash", "-c", script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// SIGKILL every process in the network namespace `ns` (`ip netns pids`).
pub(crate) fn kill_netns_pids(ns: &str) {
    let out = Command::new("ip")
        .args(["netns", "pids", ns])
        .output()
        .unwrap();
    for p in String::from_utf8_lossy(&out.stdout).lines() {
        if let Ok(p) = p.trim().parse::<libc::pid_t>() {
            // SAFETY: kill(2) on a pid of our own test namespace.
            unsafe { libc::kill(p, libc::SIGKILL) };
        }
    }
}

/// Run a host command; panic with its output unless it succeeds.
fn run_ok(cmd: &mut Command) -> String {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed:\n{}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn quiet(cmd: &mut Command) -> bool {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

pub(crate) fn step(what: &str, t0: Instant) {
    println!("[{:>6.1}s] {what}", t0.elapsed().as_secs_f64());
}

pub fn run() {
    if !is_root() {
        println!("SKIP: the system test needs root (network namespaces, systemd-nspawn)");
        return;
    }
    if std::env::var_os("F2B_SKIP_SYSTEM_TEST").is_some() {
        println!("SKIP: F2B_SKIP_SYSTEM_TEST is set");
        return;
    }
    for tool in [
        "mmdebstrap",
        "systemd-nspawn",
        "ip",
        "nsenter",
        "setsid",
        "sshpass",
        "ssh",
        "timeout",
    ] {
        assert!(
            have(tool),
            "{tool} is missing: run `bash packaging/build-deps.sh` (installs what the tests need)"
        );
    }
    assert!(
        quiet(Command::new(cargo()).args(["deb", "--version"])),
        "cargo-deb is missing: run `bash packaging/build-deps.sh` (cargo install cargo-deb)"
    );
    let t0 = Instant::now();
    let work = repo().join("target/system-test");
    fs::create_dir_all(&work).unwrap();

    let debs = build_debs(&work);
    step("packages built", t0);
    let tarball = rootfs_tarball(&work);
    step("root file system ready", t0);

    let mut c = Container::new(&work);
    c.unpack(&tarball, &debs);
    c.network();
    c.boot();
    step("container booted", t0);
    checks(&c, t0);
    step("all checks passed", t0);
    drop(c);
    step("container, namespaces and cgroups removed", t0);
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// Directory holding the package (revision 1) and `upgrade/` (the same build, revision 2).
fn build_debs(work: &Path) -> PathBuf {
    let out = work.join("debs");
    let _ = fs::remove_dir_all(&out);
    fs::create_dir_all(out.join("upgrade")).unwrap();
    run_ok(
        Command::new(cargo())
            .current_dir(repo())
            .args([
                "deb",
                "--locked",
                "--fast",
                "--no-dbgsym",
                "--strip",
                "--output",
            ])
            .arg(&out),
    );
    run_ok(
        Command::new(cargo())
            .current_dir(repo())
            .args([
                "deb",
                "--no-build",
                "--fast",
                "--no-dbgsym",
                "--deb-revision",
                "2",
            ])
            .arg("--output")
            .arg(out.join("upgrade")),
    );
    out
}

/// The cached minbase root file system, made with mmdebstrap on first use.
fn rootfs_tarball(work: &Path) -> PathBuf {
    let key: u32 = INCLUDE.bytes().fold(2166136261u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(16777619)
    });
    let tar = work.join(format!("bookworm-{key:08x}.tar"));
    if tar.exists() {
        return tar;
    }
    let tmp = work.join("rootfs.tar.partial");
    run_ok(
        Command::new("mmdebstrap")
            .args(["--quiet", "--variant=minbase", "--format=tar"])
            .arg(format!("--include={INCLUDE}"))
            .args(["bookworm"])
            .arg(&tmp),
    );
    fs::rename(&tmp, &tar).unwrap();
    tar
}

/// The booted container and everything made for it; dropped = torn down.
pub(crate) struct Container {
    dir: PathBuf,
    root: PathBuf,
    nspawn: Option<Child>,
    leader: u32,
    cgroups: Vec<PathBuf>,
    pub(crate) netns: Vec<String>,
}

impl Container {
    fn new(work: &Path) -> Container {
        let dir = work.join("run");
        let mut c = Container {
            root: dir.join("root"),
            dir,
            nspawn: None,
            leader: 0,
            cgroups: cgroup_dirs(),
            netns: vec![
                format!("{NAME}-srv"),
                format!("{NAME}-atk"),
                format!("{NAME}-ok"),
                format!("{NAME}-at2"),
            ],
        };
        // Leftovers of an earlier run that could not clean up (killed test).
        c.teardown();
        c
    }

    fn unpack(&mut self, tarball: &Path, debs: &Path) {
        fs::create_dir_all(&self.root).unwrap();
        run_ok(
            Command::new("tar")
                .arg("-xf")
                .arg(tarball)
                .arg("-C")
                .arg(&self.root),
        );
        let etc = self.root.join("etc/systemd/system");
        // A quiet boot: no getty on the console.
        for unit in ["console-getty.service", "getty.target"] {
            let p = etc.join(unit);
            let _ = fs::remove_file(&p);
            std::os::unix::fs::symlink("/dev/null", &p).unwrap();
        }
        let opt = self.root.join("opt/f2b");
        fs::create_dir_all(&opt).unwrap();
        run_ok(Command::new("cp").arg("-r").arg(debs).arg(&opt));
    }

    fn network(&self) {
        for ns in &self.netns {
            ip(&format!("netns add {ns}"));
            ip(&format!("-n {ns} link set lo up"));
        }
        let (srv, atk, ok, at2) = (
            &self.netns[0],
            &self.netns[1],
            &self.netns[2],
            &self.netns[3],
        );
        ip(&format!(
            "link add {NAME}-a0 netns {srv} type veth peer name {NAME}-a1 netns {atk}"
        ));
        ip(&format!(
            "link add {NAME}-b0 netns {srv} type veth peer name {NAME}-b1 netns {ok}"
        ));
        ip(&format!(
            "link add {NAME}-c0 netns {srv} type veth peer name {NAME}-c1 netns {at2}"
        ));
        ip(&format!("-n {srv} addr add {SRV_A}/24 dev {NAME}-a0"));
        ip(&format!("-n {srv} addr add {SRV_B}/24 dev {NAME}-b0"));
        ip(&format!("-n {atk} addr add {ATTACKER}/24 dev {NAME}-a1"));
        ip(&format!("-n {ok} addr add {CLIENT}/24 dev {NAME}-b1"));
        ip(&format!("-n {srv} addr add {SRV_C}/24 dev {NAME}-c0"));
        ip(&format!("-n {at2} addr add {ATTACKER2}/24 dev {NAME}-c1"));
        for (ns, dev) in [
            (srv, "a0"),
            (srv, "b0"),
            (srv, "c0"),
            (atk, "a1"),
            (ok, "b1"),
            (at2, "c1"),
        ] {
            ip(&format!("-n {ns} link set {NAME}-{dev} up"));
        }
    }

    fn boot(&mut self) {
        for cg in &self.cgroups {
            fs::create_dir_all(cg).unwrap();
        }
        let join: String = self
            .cgroups
            .iter()
            .map(|cg| format!("echo $$ > {}/cgroup.procs; ", cg.display()))
            .collect();
        let console = fs::File::create(self.dir.join("console.log")).unwrap();
        let script = format!(
            "{join}exec setsid systemd-nspawn -q -D {root} -M {NAME} --register=no --keep-unit \
             -b --console=passive --capability=CAP_NET_ADMIN \
             --network-namespace-path=/run/netns/{NAME}-srv",
            root = self.root.display()
        );
        let child = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(console.try_clone().unwrap())
            .stderr(console)
            .spawn()
            .unwrap();
        let nspawn = child.id();
        self.nspawn = Some(child);
        // The container's PID 1 is nspawn's child.
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.leader == 0 {
            // nspawn forks helpers first; the leader is the child that runs systemd.
            self.leader = children_of(nspawn)
                .into_iter()
                .find(|p| {
                    fs::read_to_string(format!("/proc/{p}/comm"))
                        .is_ok_and(|c| c.trim() == "systemd")
                })
                .unwrap_or(0);
            if self.leader == 0 {
                assert!(
                    Instant::now() < deadline,
                    "systemd-nspawn started no container:\n{}",
                    self.console()
                );
                if let Some(st) = self.nspawn.as_mut().unwrap().try_wait().unwrap() {
                    panic!("systemd-nspawn exited ({st}):\n{}", self.console());
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        // Until systemd has set up its bus, systemctl cannot even ask.
        let mut state = String::new();
        while Instant::now() < deadline + Duration::from_secs(60) {
            let out = self.sh("timeout 60 systemctl is-system-running --wait");
            state = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if !state.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(
            state == "running" || state == "degraded",
            "container boot: {state}\n{}\n{}",
            self.sh_text("systemctl --failed --no-pager"),
            self.console()
        );
    }

    fn console(&self) -> String {
        fs::read_to_string(self.dir.join("console.log")).unwrap_or_default()
    }

    /// Run a shell script inside the container (all its namespaces).
    pub(crate) fn sh(&self, script: &str) -> Output {
        Command::new("nsenter")
            .args(["-t", &self.leader.to_string(), "-a"])
            .args([
                "env",
                "-i",
                "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
                "LANG=C.UTF-8",
                "SYSTEMD_COLORS=0",
                "SYSTEMD_PAGER=",
                "DEBIAN_FRONTEND=noninteractive",
                "sh",
                "-c",
                script,
            ])
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// A shell script inside the container, in the background; its standard output is piped.
    pub(crate) fn spawn(&self, script: &str) -> Child {
        Command::new("nsenter")
            .args(["-t", &self.leader.to_string(), "-a"])
            .args([
                "env",
                "-i",
                "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
                "sh",
                "-c",
                script,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    pub(crate) fn sh_text(&self, script: &str) -> String {
        text(&self.sh(script))
    }

    /// Run a script that must succeed; returns its standard output.
    pub(crate) fn ok(&self, script: &str) -> String {
        let out = self.sh(script);
        assert!(
            out.status.success(),
            "in the container: {script}\n{}\n--- journal ---\n{}",
            text(&out),
            self.sh_text("journalctl --no-pager -n 60")
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Poll `script` until it succeeds (or panic after `secs`, showing `why`).
    pub(crate) fn wait_for(&self, script: &str, secs: u64, why: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let out = self.sh(script);
            if out.status.success() {
                return String::from_utf8_lossy(&out.stdout).into_owned();
            }
            if Instant::now() > deadline {
                panic!(
                    "{why} (after {secs} s): {script}\n{}\n--- f2b ---\n{}",
                    text(&out),
                    self.sh_text(
                        "systemctl status f2b --no-pager; journalctl -u f2b --no-pager -n 40"
                    )
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    pub(crate) fn main_pid(&self) -> u32 {
        self.ok("systemctl show -p MainPID --value f2b.service")
            .trim()
            .parse()
            .unwrap()
    }

    fn teardown(&mut self) {
        // 1. Power off, wait for nspawn.
        if let Some(mut child) = self.nspawn.take() {
            if self.leader != 0 {
                let _ = quiet(
                    Command::new("nsenter")
                        .args(["-t", &self.leader.to_string(), "-a"])
                        .args(["systemctl", "poweroff", "--no-block"]),
                );
            }
            let deadline = Instant::now() + Duration::from_secs(30);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            if child.try_wait().ok().flatten().is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        // 2. Whatever is left in our cgroups (a container that would not stop, or one left
        //    by an earlier run that was killed): kill it, then remove the cgroups deepest first.
        for cg in &self.cgroups {
            if cg.exists() {
                kill_cgroup(cg);
                remove_cgroup_tree(cg);
            }
        }
        // 3. Network namespaces (their veths go with them).
        for ns in &self.netns {
            if Path::new("/run/netns").join(ns).exists() {
                let _ = quiet(Command::new("ip").args(["netns", "del", ns]));
            }
        }
        // 4. The unpacked root (only when nothing can still be using it).
        if self.cgroups.iter().all(|cg| !cg.exists()) {
            let _ = fs::remove_dir_all(&self.dir);
        }
        self.leader = 0;
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if std::env::var_os("F2B_SYSTEM_TEST_KEEP").is_some() && self.leader != 0 {
            // For debugging by hand: the container stays up.
            println!(
                "F2B_SYSTEM_TEST_KEEP: container left running; enter it with\n  \
                 nsenter -t {} -a bash\nand remove it by running the test again (it cleans up \
                 first) or with `nsenter -t {} -a systemctl poweroff`",
                self.leader, self.leader
            );
            if let Some(child) = self.nspawn.take() {
                std::mem::forget(child);
            }
            return;
        }
        self.teardown();
    }
}

/// Where the container's cgroups go: both hierarchies of a hybrid host, or the one of a
/// unified host.
fn cgroup_dirs() -> Vec<PathBuf> {
    let base = Path::new("/sys/fs/cgroup");
    if base.join("cgroup.controllers").exists() {
        vec![base.join(NAME)]
    } else {
        vec![
            base.join("unified").join(NAME),
            base.join("systemd").join(NAME),
        ]
    }
}

fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        // pid (comm) state ppid …: comm may contain spaces, so split after the last ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|s| s.parse::<u32>().ok());
        if ppid == Some(pid) {
            out.push(p);
        }
    }
    out
}

fn kill_cgroup(cg: &Path) {
    if cg.join("cgroup.kill").exists() {
        let _ = fs::write(cg.join("cgroup.kill"), "1");
    }
    // v1 (and a fallback for v2): SIGKILL every process listed anywhere below.
    for _ in 0..50 {
        let mut pids = Vec::new();
        collect_procs(cg, &mut pids);
        if pids.is_empty() {
            return;
        }
        for p in pids {
            // SAFETY: kill(2) on a pid read from our own cgroup.
            unsafe { libc::kill(p as libc::pid_t, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn collect_procs(cg: &Path, out: &mut Vec<u32>) {
    if let Ok(s) = fs::read_to_string(cg.join("cgroup.procs")) {
        out.extend(s.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
    }
    if let Ok(rd) = fs::read_dir(cg) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                collect_procs(&e.path(), out);
            }
        }
    }
}

fn remove_cgroup_tree(cg: &Path) {
    if let Ok(rd) = fs::read_dir(cg) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup_tree(&e.path());
            }
        }
    }
    // cgroup directories are removed with rmdir(2), never recursively.
    for _ in 0..20 {
        if fs::remove_dir(cg).is_ok() || !cg.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Can `ns` open a TCP connection to `addr` port 22 within 3 s?
pub(crate) fn connects(ns: &str, addr: &str) -> bool {
    quiet(Command::new("ip").args([
        "netns",
        "exec",
        ns,
        "timeout",
        "3",
        "bash",
        "-c",
        &format!("exec 3<>/dev/tcp/{addr}/22"),
    ]))
}

/// One failed password login from the attacker's namespace to the container's `server`.
fn failed_login(ns: &str, server: &str, user: &str) -> Child {
    Command::new("ip")
        .args([
            "netns",
            "exec",
            ns,
            "sshpass",
            "-p",
            "not-the-password",
            "ssh",
        ])
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "PreferredAuthentications=password",
            "-o",
            "PubkeyAuthentication=no",
            "-o",
            "NumberOfPasswordPrompts=1",
            "-o",
            "ConnectTimeout=5",
        ])
        .arg(format!("{user}@{server}"))
        .arg("true")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

const GET_METRICS: &str = "exec 3<>/dev/tcp/127.0.0.1/9191 && \
     printf \"GET /metrics HTTP/1.0\\r\\n\\r\\n\" >&3 && cat <&3";

fn checks(c: &Container, t0: Instant) {
    let (atk, ok, at2) = (&c.netns[1], &c.netns[2], &c.netns[3]);

    // 1. Install: enabled, started, READY (Type=notify: `systemctl start` returned), STATUS=.
    c.ok("apt-get install -y -q /opt/f2b/debs/f2b_*.deb");
    step("package installed", t0);
    assert_eq!(c.ok("systemctl is-enabled f2b.service").trim(), "enabled");
    c.ok("test -f /usr/share/bash-completion/completions/f2b && \
         test -f /usr/share/zsh/vendor-completions/_f2b && \
         test -f /usr/share/fish/vendor_completions.d/f2b.fish");
    c.wait_for(
        "systemctl is-active -q f2b.service",
        30,
        "f2b.service is not active",
    );
    let status = c.ok("systemctl status f2b.service --no-pager --full");
    println!("{status}");
    assert!(
        status.contains("Status: \"1 jail, 0 banned"),
        "no STATUS= in systemctl status:\n{status}"
    );
    for unit in ["f2b-scan.timer", "f2b-metrics.socket"] {
        assert_eq!(
            c.sh_text(&format!("systemctl is-enabled {unit}")).trim(),
            "disabled",
            "{unit} must ship disabled"
        );
    }
    let verify = c.ok(
        "cd /usr/lib/systemd/system && systemd-analyze verify --man=no \
         f2b.service f2b-scan.service f2b-scan.timer f2b-metrics.socket 2>&1",
    );
    assert!(
        verify.trim().is_empty(),
        "systemd-analyze verify:\n{verify}"
    );
    let security = c.ok("systemd-analyze security --no-pager f2b.service 2>&1");
    let line = security
        .lines()
        .find(|l| l.contains("Overall exposure level for f2b.service"))
        .unwrap_or_else(|| panic!("{security}"))
        .to_string();
    println!("systemd-analyze security: {line}");
    let score: f64 = line
        .split(':')
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    assert!(score <= 2.0, "exposure {score} > 2.0:\n{security}");

    // 2. D-Bus.
    let jails = c.ok("busctl call org.f2b /org/f2b org.f2b.Manager1 ListJails");
    assert_eq!(jails.trim(), "as 1 \"sshd\"");
    // 2b. Issue 18: an idle f2bd (no failure yet) does not wake up periodically.
    crate::latency::idle_wakeups(c, t0);

    // 3. Real failed logins against the real sshd, from another network namespace.
    assert!(
        connects(atk, SRV_A) && connects(ok, SRV_B),
        "sshd unreachable"
    );
    let logins: Vec<Child> = (0..6)
        .map(|i| failed_login(atk, SRV_A, if i % 2 == 0 { "root" } else { "admin" }))
        .collect();
    for mut l in logins {
        let _ = l.wait();
    }
    step("failed logins done", t0);
    c.wait_for(
        &format!("journalctl -u f2b F2B_JAIL=sshd F2B_ADDRESS={ATTACKER} -o cat | grep -q 'Ban {ATTACKER}'"),
        30,
        "no ban in the journal",
    );
    step("attacker banned", t0);
    let entry = c.ok("journalctl -u f2b F2B_EVENT=ban -o verbose --no-pager");
    for field in [
        "F2B_JAIL=sshd".to_string(),
        format!("F2B_ADDRESS={ATTACKER}"),
        "MESSAGE_ID=12e938cb05544b94bda7720f4670cf98".to_string(),
    ] {
        assert!(entry.contains(&field), "no {field} in\n{entry}");
    }
    assert!(!connects(atk, SRV_A), "the banned address still connects");
    assert!(
        connects(ok, SRV_B),
        "another address cannot connect any more"
    );
    let bans = c.ok("busctl call org.f2b /org/f2b org.f2b.Manager1 GetBans suu '' 0 100");
    assert!(bans.contains(ATTACKER), "{bans}");
    let status = c.ok("systemctl show -p StatusText --value f2b");
    assert!(status.contains("1 banned"), "{status}");

    // 3a. Issue 18: 20 attackers at once, each ban timed from its sshd entry to the kernel set.
    crate::latency::ban_latency(c, t0);

    // 3b. The Cockpit page: see, unban and ban that attacker as an admin, refused as a reader.
    crate::admin::cockpit_page(c, t0);

    // 4. Reload: fine, then refused on a broken drop-in (and the daemon keeps running).
    c.ok("systemctl reload f2b");
    c.wait_for(
        "journalctl -u f2b -o cat | grep -q 'configuration reloaded'",
        10,
        "no reload in the journal",
    );
    c.ok("printf '[jail.sshd]\\nmaxretry = \"many\"\\n' > /etc/f2b/jail.d/99-broken.toml");
    let broken = c.sh("systemctl reload f2b");
    assert!(!broken.status.success(), "reload accepted a broken drop-in");
    c.ok("rm /etc/f2b/jail.d/99-broken.toml && systemctl is-active -q f2b");
    step("reload checked", t0);

    // 5. Restart keeps the ban (state restored from /var/lib/f2b; the kernel kept it anyway).
    let before = c.main_pid();
    c.ok("systemctl restart f2b");
    assert_ne!(c.main_pid(), before);
    c.wait_for(
        &format!(
            "journalctl -u f2b _PID={} -o cat | grep -q 'restored 1 ban'",
            c.main_pid()
        ),
        10,
        "ban not restored after restart",
    );
    let bans = c.ok("busctl call org.f2b /org/f2b org.f2b.Manager1 GetBans suu '' 0 100");
    assert!(bans.contains(ATTACKER), "ban lost by a restart: {bans}");
    assert!(
        !connects(atk, SRV_A),
        "the ban is not enforced after a restart"
    );
    step("restart keeps the ban", t0);

    // 6. Watchdog: a frozen f2bd is killed and restarted (WatchdogSec shortened for the test).
    c.ok(
        "mkdir -p /etc/systemd/system/f2b.service.d && \
         printf '[Service]\\nWatchdogSec=3s\\n' > /etc/systemd/system/f2b.service.d/50-test.conf && \
         systemctl daemon-reload && systemctl restart f2b",
    );
    let frozen = c.main_pid();
    c.ok(&format!("kill -STOP {frozen}"));
    c.wait_for(
        &format!(
            "[ \"$(systemctl show -p MainPID --value f2b)\" != {frozen} ] && \
             [ \"$(systemctl show -p MainPID --value f2b)\" != 0 ] && systemctl is-active -q f2b"
        ),
        40,
        "the watchdog did not restart a frozen f2bd",
    );
    let log = c.ok("journalctl -u f2b -o cat --no-pager");
    assert!(log.contains("Watchdog timeout"), "{log}");
    c.ok("rm -r /etc/systemd/system/f2b.service.d && systemctl daemon-reload");
    assert!(
        !connects(atk, SRV_A),
        "ban lost across the watchdog restart"
    );
    step("watchdog restarts a frozen f2bd", t0);

    // 7. Metrics: nothing listens until the socket unit is enabled.
    let listening = c.ok("ss -Hltn 'sport = :9191'");
    assert!(listening.trim().is_empty(), "{listening}");
    c.ok("systemctl stop f2b && systemctl enable --now f2b-metrics.socket && systemctl start f2b");
    let metrics = c.ok(&format!("bash -c '{GET_METRICS}'"));
    assert!(metrics.starts_with("HTTP/1.0 200 OK"), "{metrics}");
    assert!(
        metrics.contains("\nf2b_jail_banned{jail=\"sshd\"} 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("f2b_filter_entries_seen_total{jail=\"sshd\",filter=\"sshd:normal\"}"),
        "{metrics}"
    );
    step("metrics served on the passed socket", t0);

    // 8. Timer mode: excludes the daemon, runs one scan, exits.
    c.ok("systemctl start f2b-scan.timer");
    c.wait_for(
        "[ \"$(systemctl is-active f2b.service)\" = inactive ]",
        20,
        "starting f2b-scan.timer did not stop f2b.service",
    );
    // A new attacker while no daemon runs: banned by the next scan, which resumes from the
    // cursor the daemon saved.
    let logins: Vec<Child> = (0..6).map(|_| failed_login(at2, SRV_C, "root")).collect();
    for mut l in logins {
        let _ = l.wait();
    }
    assert!(connects(at2, SRV_C), "banned although no f2bd ran");
    step("failed logins while only the timer mode runs", t0);
    // sshd has logged them (a scan reads what the journal holds when it runs).
    c.wait_for(
        &format!(
            "[ $(journalctl -u ssh -o cat | grep -c 'Failed password for root from {ATTACKER2} ') -ge 5 ]"
        ),
        20,
        "sshd did not log the failures",
    );
    step("sshd logged them", t0);
    c.ok("systemctl start f2b-scan.service");
    assert_eq!(
        c.ok("systemctl show -p Result --value f2b-scan.service")
            .trim(),
        "success"
    );
    let scan = c.ok("journalctl -u f2b-scan.service -o cat --no-pager");
    assert!(
        scan.contains(&format!("[sshd] Ban {ATTACKER2} ")),
        "{scan}\n--- sshd ---\n{}",
        c.sh_text("journalctl -u ssh -o short-precise --no-pager -n 30; journalctl -u f2b -o short-precise --no-pager -n 20")
    );
    assert!(!connects(at2, SRV_C), "the scan's ban is not enforced");
    assert!(!connects(atk, SRV_A), "ban lost in timer mode");
    c.ok("systemctl start f2b.service");
    c.wait_for(
        "[ \"$(systemctl is-active f2b-scan.timer)\" = inactive ]",
        20,
        "starting f2b.service did not stop f2b-scan.timer",
    );
    step("timer mode checked", t0);

    // 8b. Issue 10.4: a disabled f2b is not brought back by D-Bus activation.
    crate::admin::disabled_f2b_stays_down_on_dbus_calls(c, t0);

    // 8c. Issue 13: a file jail on a root:adm 0640 file in /var/log.
    crate::files::file_jail_bans(c, t0);

    // 9. Upgrade keeps the ban; purge removes everything.
    let before = c.main_pid();
    c.ok("apt-get install -y -q /opt/f2b/debs/upgrade/f2b_*.deb");
    assert_eq!(c.ok("dpkg-query -W -f '${Version}' f2b").trim(), "0.1.0-2");
    c.wait_for(
        "systemctl is-active -q f2b",
        30,
        "f2b not active after the upgrade",
    );
    assert_ne!(c.main_pid(), before, "the upgrade did not restart f2bd");
    let bans = c.wait_for(
        &format!(
            "busctl call org.f2b /org/f2b org.f2b.Manager1 GetBans suu '' 0 100 | grep {ATTACKER}"
        ),
        10,
        "ban lost by the upgrade",
    );
    assert!(bans.contains(ATTACKER));
    assert!(!connects(atk, SRV_A), "ban not enforced after the upgrade");
    assert_eq!(
        c.ok("systemctl is-enabled f2b-metrics.socket").trim(),
        "enabled"
    );
    step("upgrade keeps the ban", t0);

    // An admin's drop-in: purge removes it with /etc/f2b (and says so), so that a later
    // installation does not silently run with it.
    c.ok("printf '[jail.sshd]\\nmaxretry = 4\\n' > /etc/f2b/jail.d/50-local.toml");
    let purge = c.ok("apt-get purge -y -q f2b 2>&1");
    assert!(
        purge.contains("purge removed /etc/f2b with 1 local file"),
        "{purge}"
    );
    c.ok(
        "! systemctl list-unit-files --no-legend f2b.service | grep -q f2b && \
         ! test -e /var/lib/f2b && ! test -e /etc/f2b && ! test -e /usr/bin/f2bd && \
         ! nft list table inet f2b >/dev/null 2>&1 && \
         ! systemctl is-active -q f2b.service f2b-metrics.socket",
    );
    assert!(
        connects(atk, SRV_A) && connects(at2, SRV_C),
        "the purged package left bans behind"
    );
    step("purge removed everything", t0);
}

//! Real-service tests: real daemons in a network namespace, real failed logins from an
//! "attacker" namespace, real journald in between; the shipped filters must report exactly the
//! attacker's address for every failure kind and nothing for a successful login.
//!
//! Debian packages these tests need (CI installs them):
//!   apt-get install -y systemd iproute2 util-linux openssh-server openssh-client sshpass \
//!       dovecot-imapd vsftpd nginx apache2 apache2-utils dropbear-bin
//! (systemd provides /lib/systemd/systemd-journald and journalctl; util-linux unshare/nsenter.)
//!
//! The tests need root (network namespaces, mounts). Without root they print why and pass.
//! Without the packages they print why and pass, unless F2B_REQUIRE_REAL_SERVICES=1 is set
//! (then a missing package is a failure).
//!
//! Layout per test: namespaces `SRV` and `ATK` joined by a veth pair (192.0.2.1 / 2001:db8::1 on
//! the server side; 192.0.2.66, 192.0.2.67 and 2001:db8::66 on the attacker side). A standalone
//! systemd-journald runs in a private mount namespace (tmpfs /run/systemd, /run/log and a private
//! /dev whose /dev/log is journald's socket); the daemons are started inside that mount namespace
//! and the server network namespace, so their syslog(3) lines become real journal entries, read
//! back with journalctl -o json. Everything is torn down by Drop, also when an assertion fails.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::io::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use f2b::filter::library::FilterLibrary;
use f2b::filter::{CompiledFilter, FilterDef, Outcome, PidCache};

const SRV4: &str = "192.0.2.1";
const SRV6: &str = "2001:db8::1";
const ATK4: &str = "192.0.2.66";
const ATK4B: &str = "192.0.2.67";
const ATK6: &str = "2001:db8::66";

// ---------------------------------------------------------------------------------------------
// Preconditions

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// `Some(reason)` when the test cannot run here.
fn missing(bins: &[&str]) -> Option<String> {
    if !is_root() {
        return Some("needs root (network namespaces, mounts)".into());
    }
    let absent: Vec<&str> = bins
        .iter()
        .copied()
        .filter(|b| !Path::new(b).exists())
        .collect();
    if absent.is_empty() {
        return None;
    }
    let msg = format!("missing {}", absent.join(", "));
    if std::env::var("F2B_REQUIRE_REAL_SERVICES").as_deref() == Ok("1") {
        panic!("{msg} (F2B_REQUIRE_REAL_SERVICES=1)");
    }
    Some(msg)
}

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ip(args: &[&str]) {
    run(Command::new("ip").args(args));
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

// ---------------------------------------------------------------------------------------------
// Network namespaces

/// A server and an attacker namespace joined by a veth pair; deleted on drop.
struct NetPair {
    srv: String,
    atk: String,
}

impl NetPair {
    fn new() -> NetPair {
        let tag = format!(
            "{}{}",
            std::process::id() % 100_000,
            SEQ.fetch_add(1, Ordering::SeqCst)
        );
        let pair = NetPair {
            srv: format!("f2bt-srv{tag}"),
            atk: format!("f2bt-atk{tag}"),
        };
        let (vs, va) = (format!("f2s{tag}"), format!("f2a{tag}"));
        ip(&["netns", "add", &pair.srv]);
        ip(&["netns", "add", &pair.atk]);
        ip(&[
            "link", "add", &vs, "netns", &pair.srv, "type", "veth", "peer", "name", &va, "netns",
            &pair.atk,
        ]);
        for a in [format!("{SRV4}/24"), format!("{SRV6}/64")] {
            ip(&["-n", &pair.srv, "addr", "add", &a, "dev", &vs, "nodad"]);
        }
        for a in [
            format!("{ATK4}/24"),
            format!("{ATK4B}/24"),
            format!("{ATK6}/64"),
        ] {
            ip(&["-n", &pair.atk, "addr", "add", &a, "dev", &va, "nodad"]);
        }
        for (ns, dev) in [(&pair.srv, &vs), (&pair.atk, &va)] {
            ip(&["-n", ns, "link", "set", "lo", "up"]);
            ip(&["-n", ns, "link", "set", dev, "up"]);
        }
        pair
    }

    /// Run `f` on a thread that has joined the attacker namespace (socket calls only).
    fn in_atk<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/run/netns/{}", self.atk);
        thread::scope(|s| {
            s.spawn(|| {
                let ns = fs::File::open(&path).expect("open netns");
                // SAFETY: setns on a valid fd; only this thread changes namespace.
                let r = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(r, 0, "setns: {}", std::io::Error::last_os_error());
                f()
            })
            .join()
            .expect("attacker thread panicked")
        })
    }

    /// A command run from the attacker namespace.
    fn atk_cmd(&self, prog: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.atk, "timeout", "60", prog]);
        c
    }

    /// Wait until `addr` accepts TCP connections from the attacker side.
    fn wait_listening(&self, addr: SocketAddr) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if self.in_atk(|| TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok())
            {
                return;
            }
            thread::sleep(Duration::from_millis(100));
        }
        panic!("{addr} did not start listening");
    }
}

impl Drop for NetPair {
    fn drop(&mut self) {
        for ns in [&self.srv, &self.atk] {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A standalone journald in a private mount namespace

struct Journald {
    child: Child,
    _dir: tempfile::TempDir,
    cursor: Option<String>,
}

/// One journal entry, the fields f2b uses.
#[derive(Debug, Clone)]
struct Entry {
    message: String,
    ident: String,
    pid: Option<u32>,
    time_us: u64,
}

const JOURNALD_SH: &str = r#"set -e
mount -t tmpfs tmpfs /run/systemd
mount -t tmpfs tmpfs /run/log
mkdir -p /run/systemd/journal
D="$1/dev"
mkdir -p "$D"
mount -t tmpfs tmpfs "$D"
for d in null zero random urandom tty ptmx full; do
  touch "$D/$d"; mount --bind "/dev/$d" "$D/$d"
done
mkdir -p "$D/pts" "$D/shm"
mount --bind /dev/pts "$D/pts"
mount -t tmpfs -o mode=1777 tmpfs "$D/shm"
ln -s /run/systemd/journal/dev-log "$D/log"
mount --move "$D" /dev
exec /lib/systemd/systemd-journald
"#;

impl Journald {
    fn start() -> Journald {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("journald.sh");
        fs::write(&script, JOURNALD_SH).unwrap();
        // slave propagation: mounts made later on the host (new /run/netns entries) are seen,
        // ours never reach the host.
        let child = Command::new("unshare")
            .args(["--mount", "--propagation", "slave", "sh"])
            .arg(&script)
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start journald");
        let j = Journald {
            child,
            _dir: dir,
            cursor: None,
        };
        let sock = j.root().join("run/systemd/journal/dev-log");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !sock.exists() {
            assert!(Instant::now() < deadline, "journald did not start");
            thread::sleep(Duration::from_millis(50));
        }
        j
    }

    /// The namespace's root as seen from the host.
    fn root(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root", self.child.id()))
    }

    /// A command run inside journald's mount namespace and the server network namespace.
    fn srv_cmd(&self, net: &NetPair, prog: &str) -> Command {
        let mut c = Command::new("nsenter");
        c.args([
            "-t",
            &self.child.id().to_string(),
            "-m",
            "ip",
            "netns",
            "exec",
        ])
        .args([&net.srv, prog]);
        // Its own process group: Apache's prefork signals its whole group when it stops.
        c.process_group(0);
        c
    }

    fn read_new(&mut self) -> Vec<Entry> {
        let dir = self.root().join("run/log/journal");
        let mut cmd = Command::new("journalctl");
        cmd.arg("-D").arg(&dir).args(["-o", "json", "--no-pager"]);
        if let Some(c) = &self.cursor {
            cmd.arg(format!("--after-cursor={c}"));
        }
        let out = cmd.output().expect("journalctl");
        let mut v = Vec::new();
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let Ok(j) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            if let Some(c) = j["__CURSOR"].as_str() {
                self.cursor = Some(c.to_string());
            }
            let text = |k: &str| -> Option<String> {
                match &j[k] {
                    serde_json::Value::String(s) => Some(s.clone()),
                    serde_json::Value::Array(b) => Some(
                        String::from_utf8_lossy(
                            &b.iter()
                                .filter_map(|x| x.as_u64().map(|n| n as u8))
                                .collect::<Vec<u8>>(),
                        )
                        .into_owned(),
                    ),
                    _ => None,
                }
            };
            v.push(Entry {
                message: text("MESSAGE").unwrap_or_default(),
                ident: text("SYSLOG_IDENTIFIER").unwrap_or_default(),
                pid: text("_PID").and_then(|p| p.parse().ok()),
                time_us: text("__REALTIME_TIMESTAMP")
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(0),
            });
        }
        v
    }

    /// Entries logged since the last call, once the journal has been quiet for `quiet`.
    fn settle(&mut self, quiet: Duration) -> Vec<Entry> {
        let mut all = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut last_new = Instant::now();
        loop {
            thread::sleep(Duration::from_millis(100));
            let new = self.read_new();
            if !new.is_empty() {
                all.extend(new);
                last_new = Instant::now();
            }
            if (!all.is_empty() && last_new.elapsed() >= quiet) || Instant::now() > deadline {
                return all;
            }
        }
    }

    /// Like [`settle`](Self::settle), and then until every process that logged (other than
    /// `keep`, the daemon's long-lived ones) has exited, so that a session's last lines (logged
    /// when it closes) belong to its attempt.
    fn settle_sessions(&mut self, quiet: Duration, keep: &[u32]) -> Vec<Entry> {
        let mut all = self.settle(quiet);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let alive: Vec<u32> = all
                .iter()
                .filter(|e| e.ident != "systemd-journald")
                .filter_map(|e| e.pid)
                .filter(|p| !keep.contains(p) && Path::new(&format!("/proc/{p}")).exists())
                .collect();
            if alive.is_empty() || Instant::now() > deadline {
                thread::sleep(Duration::from_millis(200));
                all.extend(self.read_new());
                return all;
            }
            thread::sleep(Duration::from_millis(100));
            all.extend(self.read_new());
        }
    }
}

impl Drop for Journald {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A daemon we started; SIGTERM then SIGKILL on drop.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the pid of our own child.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// Applying the shipped filter, the way the daemon does

struct Judge {
    def: FilterDef,
    modes: BTreeMap<String, (CompiledFilter, PidCache)>,
}

/// What one attempt produced in one mode.
#[derive(Debug, Default)]
struct Verdict {
    /// (address, message) of every failure
    failures: Vec<(IpAddr, String)>,
}

impl Judge {
    fn new(name: &str) -> Judge {
        let lib = FilterLibrary::load(&[]).expect("built-in filters load");
        let def = lib.get(name).expect("filter exists").clone();
        let mut modes: BTreeMap<String, (CompiledFilter, PidCache)> = def
            .modes()
            .map(|m| {
                (
                    m.to_string(),
                    (def.compile(Some(m)).unwrap(), PidCache::default()),
                )
            })
            .collect();
        if modes.is_empty() {
            modes.insert(
                "(default)".into(),
                (def.compile(None).unwrap(), PidCache::default()),
            );
        }
        Judge { def, modes }
    }

    /// Entries the filter's journal matches would route to it (by SYSLOG_IDENTIFIER here).
    fn routed<'a>(&self, entries: &'a [Entry]) -> Vec<&'a Entry> {
        entries
            .iter()
            .filter(|e| self.def.selects_ident(&e.ident))
            .collect()
    }

    fn judge(&mut self, entries: &[Entry]) -> BTreeMap<String, Verdict> {
        if std::env::var_os("F2B_TEST_VERBOSE").is_some() {
            for e in entries {
                eprintln!("journal [{}] {}", e.ident, e.message);
            }
        }
        // Every line the service wrote carries an identifier the filter's journal matches select.
        for e in entries {
            assert!(
                e.ident == "systemd-journald" || !self.routed(std::slice::from_ref(e)).is_empty(),
                "SYSLOG_IDENTIFIER {:?} of {:?} is not in the {} filter's matches",
                e.ident,
                e.message,
                self.def.name
            );
        }
        self.judge_routed(entries)
    }

    /// Like [`judge`](Self::judge), without requiring that every entry is routed here.
    fn judge_routed(&mut self, entries: &[Entry]) -> BTreeMap<String, Verdict> {
        let routed = self.routed(entries);
        let mut out = BTreeMap::new();
        for (mode, (filter, pids)) in &mut self.modes {
            let mut v = Verdict::default();
            for e in &routed {
                if let Outcome::Failure { addr, .. } =
                    filter.apply(&e.message, e.pid, e.time_us, pids)
                {
                    v.failures.push((addr, e.message.clone()));
                }
            }
            out.insert(mode.clone(), v);
        }
        out
    }
}

/// Check one attempt: in each mode of `min`, at least that many failures; every failure in
/// every mode from `attacker` only. `min` modes not listed expect zero failures when
/// `exact_zero` lists them.
fn expect(
    what: &str,
    entries: &[Entry],
    verdicts: &BTreeMap<String, Verdict>,
    attacker: &str,
    min: &[(&str, usize)],
    zero: &[&str],
) {
    let attacker: IpAddr = attacker.parse().unwrap();
    let dump = || {
        entries
            .iter()
            .map(|e| format!("  [{} {:?}] {}", e.ident, e.pid, e.message))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(
        !entries.is_empty(),
        "{what}: the service logged nothing at all"
    );
    for (mode, v) in verdicts {
        for (addr, msg) in &v.failures {
            assert_eq!(
                *addr,
                attacker,
                "{what}: mode {mode}: failure from {addr} (expected {attacker}) for {msg:?}\n{}",
                dump()
            );
        }
    }
    for (mode, n) in min {
        let got = verdicts[*mode].failures.len();
        assert!(
            got >= *n,
            "{what}: mode {mode}: expected at least {n} failures from {attacker}, got {got}\njournal:\n{}",
            dump()
        );
    }
    for mode in zero {
        let v = &verdicts[*mode];
        assert!(
            v.failures.is_empty(),
            "{what}: mode {mode}: expected no failure, got {:?}\njournal:\n{}",
            v.failures,
            dump()
        );
    }
    eprintln!(
        "{what}: {}",
        verdicts
            .iter()
            .map(|(m, v)| format!("{m}={}", v.failures.len()))
            .collect::<Vec<_>>()
            .join(" ")
    );
}

// ---------------------------------------------------------------------------------------------
// OpenSSH

/// A raw TCP probe run from the attacker namespace.
type Probe = Box<dyn Fn() + Send + Sync>;

const SSHD_BINS: &[&str] = &[
    "/usr/sbin/sshd",
    "/usr/bin/ssh",
    "/usr/bin/ssh-keygen",
    "/usr/bin/sshpass",
    "/lib/systemd/systemd-journald",
    "/usr/bin/journalctl",
    "/usr/bin/unshare",
    "/usr/bin/nsenter",
    "/usr/sbin/ip",
];

fn ssh_opts() -> Vec<String> {
    [
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        "LogLevel=ERROR",
        "-o",
        "ConnectTimeout=10",
        "-F",
        "/dev/null",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Run an ssh client from the attacker side; the outcome of the login does not matter here.
fn ssh_client(net: &NetPair, pre: &[&str], args: &[&str], env: &[(&str, &str)]) -> bool {
    let mut c = if pre.is_empty() {
        net.atk_cmd("ssh")
    } else {
        let mut c = net.atk_cmd(pre[0]);
        c.args(&pre[1..]).arg("ssh");
        c
    };
    c.args(ssh_opts()).args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.stdin(Stdio::null()).output().expect("ssh client");
    if std::env::var_os("F2B_TEST_VERBOSE").is_some() {
        eprintln!(
            "client {:?}: {}\n{}",
            args,
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out.status.success()
}

#[test]
fn sshd_real_failures_are_detected_with_the_attackers_address() {
    if let Some(why) = missing(SSHD_BINS) {
        eprintln!("SKIP sshd_real_failures_are_detected_with_the_attackers_address: {why}");
        return;
    }
    let net = NetPair::new();
    let mut jd = Journald::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::set_permissions(d, fs::Permissions::from_mode(0o755)).unwrap();
    for k in ["hostkey", "goodkey", "badkey", "k1", "k2", "k3", "k4"] {
        run(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(d.join(k)));
    }
    fs::copy(d.join("goodkey.pub"), d.join("authorized_keys")).unwrap();
    let config = d.join("sshd_config");
    fs::write(
        &config,
        format!(
            "Port 22\nListenAddress {SRV4}\nListenAddress {SRV6}\nHostKey {hk}\nPidFile none\n\
             LogLevel VERBOSE\nUsePAM yes\nPermitRootLogin yes\nPasswordAuthentication yes\n\
             KbdInteractiveAuthentication yes\nAuthorizedKeysFile {ak}\nStrictModes no\n\
             MaxAuthTries 3\nDenyUsers nobody\nLoginGraceTime 20\n",
            hk = d.join("hostkey").display(),
            ak = d.join("authorized_keys").display(),
        ),
    )
    .unwrap();
    fs::create_dir_all("/run/sshd").unwrap();
    let sshd = Daemon(
        jd.srv_cmd(&net, "/usr/sbin/sshd")
            .arg("-D")
            .arg("-f")
            .arg(&config)
            .stdin(Stdio::null())
            .spawn()
            .expect("start sshd"),
    );
    net.wait_listening(format!("{SRV4}:22").parse().unwrap());
    net.wait_listening(format!("[{SRV6}]:22").parse().unwrap());
    let _ = jd.settle(Duration::from_millis(500)); // startup lines and the probes above

    let mut judge = Judge::new("sshd");
    let quiet = Duration::from_millis(500);
    let listener = [sshd.0.id()];
    let key = |k: &str| d.join(k).display().to_string();
    let good = key("goodkey");
    let bad = key("badkey");
    let pw_once = ["sshpass", "-p", "wrong-password"];
    let all = ["normal", "ddos", "aggressive"];

    // A successful login: nothing, in any mode.
    assert!(
        ssh_client(
            &net,
            &[],
            &[
                "-o",
                "BatchMode=yes",
                "-o",
                "IdentitiesOnly=yes",
                "-i",
                &good
            ]
            .into_iter()
            .chain([format!("root@{SRV4}").as_str(), "true"])
            .collect::<Vec<_>>(),
            &[],
        ),
        "the good key must log in"
    );
    let e = jd.settle_sessions(quiet, &listener);
    let v = judge.judge(&e);
    expect("successful login (key)", &e, &v, ATK4, &[], &all);

    assert!(ssh_client(
        &net,
        &[],
        &[
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-i",
            &good,
            &format!("root@{SRV6}"),
            "true"
        ],
        &[]
    ));
    let e = jd.settle_sessions(quiet, &listener);
    let v = judge.judge(&e);
    expect("successful login over IPv6", &e, &v, ATK6, &[], &all);

    // One wrong password (sshpass answers the first prompt only).
    let pw = |user: &str, host: &str, method: &str, extra: &[&str]| {
        let mut a: Vec<String> = vec![
            "-o".into(),
            format!("PreferredAuthentications={method}"),
            "-o".into(),
            "NumberOfPasswordPrompts=1".into(),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        a.push(format!("{user}@{host}"));
        a.push("true".into());
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        ssh_client(&net, &pw_once, &a, &[]);
    };

    // Wrong password for an existing user.
    pw("root", SRV4, "password", &[]);
    let e = jd.settle_sessions(quiet, &listener);
    let v = judge.judge(&e);
    expect(
        "wrong password",
        &e,
        &v,
        ATK4,
        &[("normal", 1), ("aggressive", 1)],
        &["ddos"],
    );

    // The same from a second attacker address (ssh -b): the address is per line, not per run.
    pw("root", SRV4, "password", &["-b", ATK4B]);
    let e = jd.settle_sessions(quiet, &listener);
    let v = judge.judge(&e);
    expect(
        "wrong password from a second address",
        &e,
        &v,
        ATK4B,
        &[("normal", 1)],
        &["ddos"],
    );

    // Over IPv6.
    pw("root", SRV6, "password", &[]);
    let e = jd.settle_sessions(quiet, &listener);
    let v = judge.judge(&e);
    expect(
        "wrong password over IPv6",
        &e,
        &v,
        ATK6,
        &[("normal", 1)],
        &["ddos"],
    );

    // Invalid user: "Invalid user" + "Failed password for invalid user".
    pw("admin", SRV4, "password", &[]);
    let e = jd.settle_sessions(quiet, &listener);
    let v = judge.judge(&e);
    expect("invalid user", &e, &v, ATK4, &[("normal", 2)], &["ddos"]);

    // An invalid user whose name tries to inject another address.
    pw("x from 10.9.8.7 port 22", SRV4, "password", &[]);
    let e = jd.settle_sessions(quiet, &listener);
    let v = judge.judge(&e);
    expect(
        "invalid user with an address in its name",
        &e,
        &v,
        ATK4,
        &[("normal", 2)],
        &["ddos"],
    );

    // keyboard-interactive through PAM, valid and invalid user.
    for (what, user) in [
        ("keyboard-interactive/pam", "root"),
        ("keyboard-interactive/pam, invalid user", "oracle"),
    ] {
        pw(user, SRV4, "keyboard-interactive", &[]);
        let e = jd.settle_sessions(quiet, &listener);
        let v = judge.judge(&e);
        expect(what, &e, &v, ATK4, &[("normal", 2)], &["ddos"]);
    }

    // MaxAuthTries (3) exceeded: four wrong keys offered on one connection, for a valid and for
    // an invalid user: "maximum authentication attempts exceeded" + "Disconnecting … Too many
    // authentication failures".
    for (what, user, prefix) in [
        (
            "maximum authentication attempts",
            "root",
            "Disconnecting authenticating user root ",
        ),
        (
            "maximum authentication attempts, invalid user",
            "guest",
            "Disconnecting invalid user guest ",
        ),
    ] {
        let mut a: Vec<String> = vec!["-o".into(), "BatchMode=yes".into()];
        a.extend(["-o".into(), "IdentitiesOnly=yes".into()]);
        for k in ["k1", "k2", "k3", "k4"] {
            a.extend(["-i".into(), key(k)]);
        }
        a.extend([format!("{user}@{SRV4}"), "true".into()]);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        ssh_client(&net, &[], &a, &[]);
        let e = jd.settle_sessions(quiet, &listener);
        let v = judge.judge(&e);
        expect(
            what,
            &e,
            &v,
            ATK4,
            &[("normal", 2), ("aggressive", 2)],
            &["ddos"],
        );
        assert!(
            e.iter().any(|x| x.message.starts_with(prefix)),
            "{what}: sshd did not disconnect for too many failures"
        );
    }

    // DenyUsers.
    pw("nobody", SRV4, "password", &[]);
    let e = jd.settle_sessions(quiet, &listener);
    let v = judge.judge(&e);
    expect("DenyUsers", &e, &v, ATK4, &[("normal", 2)], &["ddos"]);

    // Wrong key for a valid user: aggressive only (a client may offer several keys).
    let a = [
        "-o",
        "BatchMode=yes",
        "-o",
        "IdentitiesOnly=yes",
        "-i",
        &bad,
        &format!("root@{SRV4}"),
        "true",
    ];
    ssh_client(&net, &[], &a, &[]);
    let e = jd.settle_sessions(quiet, &listener);
    let v = judge.judge(&e);
    expect(
        "wrong key",
        &e,
        &v,
        ATK4,
        &[("aggressive", 1)],
        &["normal", "ddos"],
    );

    // Wrong key for an invalid user: "Invalid user" counts.
    let a = [
        "-o",
        "BatchMode=yes",
        "-o",
        "IdentitiesOnly=yes",
        "-i",
        &bad,
        &format!("guest@{SRV4}"),
        "true",
    ];
    ssh_client(&net, &[], &a, &[]);
    let e = jd.settle_sessions(quiet, &listener);
    let v = judge.judge(&e);
    expect(
        "wrong key, invalid user",
        &e,
        &v,
        ATK4,
        &[("normal", 1), ("aggressive", 2)],
        &["ddos"],
    );

    // Probes: ddos and aggressive, never normal.
    let srv: SocketAddr = format!("{SRV4}:22").parse().unwrap();
    let probes: Vec<(&str, Probe)> = vec![
        (
            "HTTP request to the SSH port",
            Box::new(move || {
                let mut s = TcpStream::connect(srv).unwrap();
                let mut banner = [0u8; 64];
                let _ = s.read(&mut banner);
                s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
                thread::sleep(Duration::from_millis(300));
            }),
        ),
        (
            "connect and close",
            Box::new(move || {
                drop(TcpStream::connect(srv).unwrap());
            }),
        ),
        (
            "valid banner, then a garbage packet",
            Box::new(move || {
                let mut s = TcpStream::connect(srv).unwrap();
                let mut banner = [0u8; 64];
                let _ = s.read(&mut banner);
                s.write_all(b"SSH-2.0-probe\r\n").unwrap();
                thread::sleep(Duration::from_millis(200));
                let mut junk = vec![0u8, 0, 0xff, 0xff];
                junk.extend((0..64u8).map(|i| i.wrapping_mul(37)));
                s.write_all(&junk).unwrap();
                thread::sleep(Duration::from_millis(500));
            }),
        ),
    ];
    for (what, probe) in &probes {
        net.in_atk(probe);
        let e = jd.settle_sessions(quiet, &listener);
        let v = judge.judge(&e);
        expect(
            what,
            &e,
            &v,
            ATK4,
            &[("ddos", 1), ("aggressive", 1)],
            &["normal"],
        );
    }
    let a = [
        "-o",
        "KexAlgorithms=diffie-hellman-group1-sha1",
        &format!("root@{SRV4}"),
        "true",
    ];
    ssh_client(&net, &[], &a, &[]);
    let e = jd.settle_sessions(quiet, &listener);
    let v = judge.judge(&e);
    expect(
        "obsolete key exchange",
        &e,
        &v,
        ATK4,
        &[("ddos", 1)],
        &["normal"],
    );
}

// ---------------------------------------------------------------------------------------------
// Dovecot (IMAP)

/// (what, server, attacker address, user, passwords, minimum failures)
type ImapCase<'a> = (&'a str, SocketAddr, &'a str, &'a str, &'a [&'a str], usize);

const DOVECOT_BINS: &[&str] = &[
    "/usr/sbin/dovecot",
    "/usr/lib/dovecot/imap-login",
    "/lib/systemd/systemd-journald",
    "/usr/bin/journalctl",
    "/usr/bin/unshare",
    "/usr/bin/nsenter",
    "/usr/sbin/ip",
];

/// One IMAP session from the attacker side: LOGIN with each password in turn, then LOGOUT.
/// Returns the tagged responses.
fn imap_session(net: &NetPair, srv: SocketAddr, user: &str, passwords: &[&str]) -> Vec<String> {
    net.in_atk(|| {
        let s = TcpStream::connect_timeout(&srv, Duration::from_secs(5)).expect("connect imap");
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut w = s.try_clone().unwrap();
        let mut r = BufReader::new(s);
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        assert!(line.starts_with("* OK"), "greeting {line:?}");
        let quote = |t: &str| format!("\"{}\"", t.replace('\\', "\\\\").replace('"', "\\\""));
        let mut answers = Vec::new();
        for (i, pw) in passwords.iter().enumerate() {
            write!(w, "a{i} LOGIN {} {}\r\n", quote(user), quote(pw)).unwrap();
            loop {
                line.clear();
                if r.read_line(&mut line).unwrap() == 0 {
                    break;
                }
                if line.starts_with(&format!("a{i} ")) {
                    answers.push(line.trim_end().to_string());
                    break;
                }
            }
        }
        let _ = write!(w, "z LOGOUT\r\n");
        thread::sleep(Duration::from_millis(100));
        answers
    })
}

#[test]
fn dovecot_real_failures_are_detected_with_the_attackers_address() {
    if let Some(why) = missing(DOVECOT_BINS) {
        eprintln!("SKIP dovecot_real_failures_are_detected_with_the_attackers_address: {why}");
        return;
    }
    let net = NetPair::new();
    let mut jd = Journald::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::set_permissions(d, fs::Permissions::from_mode(0o755)).unwrap();
    for sub in ["run", "state", "home"] {
        fs::create_dir_all(d.join(sub)).unwrap();
    }
    fs::set_permissions(d.join("home"), fs::Permissions::from_mode(0o777)).unwrap();
    fs::write(d.join("passwd"), "alice:{PLAIN}secret123::::::\n").unwrap();
    let conf = d.join("dovecot.conf");
    fs::write(
        &conf,
        format!(
            "protocols = imap\nlisten = {SRV4}, {SRV6}\nbase_dir = {p}/run\nstate_dir = {p}/state\n\
             ssl = no\ndisable_plaintext_auth = no\nauth_mechanisms = plain login\n\
             auth_verbose = yes\nlog_path = syslog\nsyslog_facility = mail\n\
             passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN {p}/passwd\n}}\n\
             userdb {{\n  driver = static\n  args = uid=nobody gid=nogroup home={p}/home/%u\n}}\n\
             mail_location = maildir:~/Maildir\n",
            p = d.display()
        ),
    )
    .unwrap();
    let _dovecot = Daemon(
        jd.srv_cmd(&net, "/usr/sbin/dovecot")
            .arg("-F")
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .spawn()
            .expect("start dovecot"),
    );
    let srv4: SocketAddr = format!("{SRV4}:143").parse().unwrap();
    let srv6: SocketAddr = format!("[{SRV6}]:143").parse().unwrap();
    net.wait_listening(srv4);
    net.wait_listening(srv6);
    let _ = jd.settle(Duration::from_millis(500));
    let mut judge = Judge::new("dovecot");
    let quiet = Duration::from_millis(700);
    let both = ["normal", "aggressive"];

    let ok = imap_session(&net, srv4, "alice", &["secret123"]);
    assert!(ok[0].starts_with("a0 OK"), "{ok:?}");
    let e = jd.settle(quiet);
    let v = judge.judge(&e);
    expect("successful IMAP login", &e, &v, ATK4, &[], &both);

    let cases: [ImapCase; 5] = [
        ("wrong password", srv4, ATK4, "alice", &["nope"], 1),
        ("unknown user", srv4, ATK4, "nosuch", &["nope"], 1),
        (
            "wrong password over IPv6",
            srv6,
            ATK6,
            "alice",
            &["nope"],
            1,
        ),
        (
            "three wrong passwords on one connection",
            srv4,
            ATK4,
            "alice",
            &["a", "b", "c"],
            1,
        ),
        (
            "user name with an injected address",
            srv4,
            ATK4,
            "x>, method=PLAIN, rip=10.9.8.7, lip=10.9.8.6, y",
            &["nope"],
            1,
        ),
    ];
    for (what, srv, atk, user, pws, min) in cases {
        let answers = imap_session(&net, srv, user, pws);
        assert!(
            answers.iter().all(|a| a.contains(" NO ")),
            "{what}: {answers:?}"
        );
        let e = jd.settle(quiet);
        let v = judge.judge(&e);
        expect(
            what,
            &e,
            &v,
            atk,
            &[("normal", min), ("aggressive", min)],
            &[],
        );
        assert!(
            v["normal"].failures.len() == 1,
            "{what}: one failure per connection in normal mode, got {:?}",
            v["normal"].failures
        );
    }
}

// ---------------------------------------------------------------------------------------------
// vsftpd (FTP)

const VSFTPD_BINS: &[&str] = &[
    "/usr/sbin/vsftpd",
    "/etc/pam.d/vsftpd",
    "/lib/systemd/systemd-journald",
    "/usr/bin/journalctl",
    "/usr/bin/unshare",
    "/usr/bin/nsenter",
    "/usr/sbin/ip",
];

/// One FTP login from the attacker side; returns the reply to PASS.
fn ftp_login(net: &NetPair, srv: SocketAddr, user: &str, pass: &str) -> String {
    net.in_atk(|| {
        let s = TcpStream::connect_timeout(&srv, Duration::from_secs(5)).expect("connect ftp");
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut w = s.try_clone().unwrap();
        let mut r = BufReader::new(s);
        let mut reply = || {
            // multi-line replies end with "NNN " (space after the code)
            let mut line = String::new();
            loop {
                line.clear();
                if r.read_line(&mut line).unwrap() == 0 {
                    return String::new();
                }
                if line.len() >= 4 && line.as_bytes()[3] == b' ' {
                    return line.trim_end().to_string();
                }
            }
        };
        let greeting = reply();
        assert!(greeting.starts_with("220"), "greeting {greeting:?}");
        write!(w, "USER {user}\r\n").unwrap();
        let u = reply();
        assert!(u.starts_with("331") || u.starts_with("230"), "USER: {u:?}");
        write!(w, "PASS {pass}\r\n").unwrap();
        let p = reply();
        let _ = write!(w, "QUIT\r\n");
        let _ = reply();
        p
    })
}

#[test]
fn vsftpd_real_failures_are_detected_with_the_attackers_address() {
    if let Some(why) = missing(VSFTPD_BINS) {
        eprintln!("SKIP vsftpd_real_failures_are_detected_with_the_attackers_address: {why}");
        return;
    }
    let net = NetPair::new();
    let mut jd = Journald::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::set_permissions(d, fs::Permissions::from_mode(0o755)).unwrap();
    for sub in ["empty", "anon"] {
        fs::create_dir_all(d.join(sub)).unwrap();
        fs::set_permissions(d.join(sub), fs::Permissions::from_mode(0o555)).unwrap();
    }
    let conf = d.join("vsftpd.conf");
    fs::write(
        &conf,
        format!(
            "listen=NO\nlisten_ipv6=YES\nbackground=NO\nsyslog_enable=YES\n\
             anonymous_enable=YES\nno_anon_password=YES\nanon_root={p}/anon\n\
             local_enable=YES\npam_service_name=vsftpd\nsecure_chroot_dir={p}/empty\n\
             seccomp_sandbox=NO\n",
            p = d.display()
        ),
    )
    .unwrap();
    let vsftpd = Daemon(
        jd.srv_cmd(&net, "/usr/sbin/vsftpd")
            .arg(&conf)
            .stdin(Stdio::null())
            .spawn()
            .expect("start vsftpd"),
    );
    let srv4: SocketAddr = format!("{SRV4}:21").parse().unwrap();
    let srv6: SocketAddr = format!("[{SRV6}]:21").parse().unwrap();
    net.wait_listening(srv4);
    let listener = [vsftpd.0.id()];
    let quiet = Duration::from_millis(500);
    let _ = jd.settle_sessions(quiet, &listener);
    let mut judge = Judge::new("vsftpd");
    let both = ["normal", "syslog"];

    let ok = ftp_login(&net, srv4, "anonymous", "");
    assert!(ok.starts_with("230"), "anonymous login: {ok:?}");
    let e = jd.settle_sessions(quiet, &listener);
    let v = judge.judge(&e);
    expect("successful anonymous login", &e, &v, ATK4, &[], &both);

    let pam_and_own: &[(&str, usize)] = &[("normal", 1), ("syslog", 1)];
    let cases = [
        (
            "wrong password for an existing user",
            srv4,
            ATK4,
            "nobody",
            pam_and_own,
        ),
        ("unknown user", srv4, ATK4, "nosuchuser", pam_and_own),
        ("unknown user over IPv6", srv6, ATK6, "admin", pam_and_own),
        (
            // vsftpd does not even ask PAM for such a name: only its own line
            "user name with an injected address",
            srv4,
            ATK4,
            "a\" from 10.9.8.7] FAIL LOGIN: Client \"10.9.8.7",
            &[("syslog", 1)],
        ),
    ];
    for (what, srv, atk, user, min) in cases {
        let r = ftp_login(&net, srv, user, "wrong-password");
        assert!(r.starts_with("530"), "{what}: {r:?}");
        let e = jd.settle_sessions(quiet, &listener);
        let v = judge.judge(&e);
        expect(what, &e, &v, atk, min, &[]);
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP servers: nginx and Apache httpd

/// Send one raw HTTP request from the attacker side; returns the status line.
fn http_raw(net: &NetPair, srv: SocketAddr, request: &[u8]) -> String {
    net.in_atk(|| {
        let mut s = TcpStream::connect_timeout(&srv, Duration::from_secs(5)).expect("connect http");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(request).unwrap();
        let mut r = BufReader::new(s);
        let mut status = String::new();
        let _ = r.read_line(&mut status);
        let mut rest = Vec::new();
        let _ = r.read_to_end(&mut rest);
        status.trim_end().to_string()
    })
}

fn http_get(net: &NetPair, srv: SocketAddr, path: &str, headers: &[&str]) -> String {
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: www.example.org\r\nConnection: close\r\n");
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    http_raw(net, srv, req.as_bytes())
}

/// "Authorization: Basic …" for user:password (RFC 7617), without a base64 crate.
fn basic(user: &str, pass: &str) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let raw = format!("{user}:{pass}").into_bytes();
    let mut out = String::new();
    for c in raw.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    format!("Authorization: Basic {out}")
}

/// Several filters judging the same journal entries.
struct Judges(Vec<(&'static str, Judge)>);

impl Judges {
    fn new(names: &[&'static str]) -> Judges {
        Judges(names.iter().map(|n| (*n, Judge::new(n))).collect())
    }

    /// Failures per "filter/mode", after checking that every failure is from `attacker`.
    fn run(&mut self, what: &str, entries: &[Entry], attacker: &str) -> BTreeMap<String, usize> {
        if std::env::var_os("F2B_TEST_VERBOSE").is_some() {
            for e in entries {
                eprintln!("journal [{}] {}", e.ident, e.message);
            }
        }
        // Every line the service wrote reaches at least one of the filters.
        for e in entries {
            assert!(
                e.ident == "systemd-journald"
                    || self
                        .0
                        .iter()
                        .any(|(_, j)| !j.routed(std::slice::from_ref(e)).is_empty()),
                "{what}: SYSLOG_IDENTIFIER {:?} of {:?} is in no filter's matches",
                e.ident,
                e.message
            );
        }
        let mut out = BTreeMap::new();
        for (name, j) in &mut self.0 {
            let v = j.judge_routed(entries);
            expect(&format!("{what} [{name}]"), entries, &v, attacker, &[], &[]);
            for (mode, verdict) in v {
                out.insert(format!("{name}/{mode}"), verdict.failures.len());
            }
        }
        out
    }
}

/// Assert exact failure counts for the listed "filter/mode" keys and zero for all others.
fn counts(what: &str, got: &BTreeMap<String, usize>, want: &[(&str, usize)]) {
    for (k, n) in got {
        let expected = want
            .iter()
            .find(|(w, _)| w == k)
            .map(|(_, n)| *n)
            .unwrap_or(0);
        assert_eq!(*n, expected, "{what}: {k}: {got:?}");
    }
    for (k, _) in want {
        assert!(got.contains_key(*k), "{what}: no filter/mode {k}");
    }
}

const NGINX_BINS: &[&str] = &[
    "/usr/sbin/nginx",
    "/lib/systemd/systemd-journald",
    "/usr/bin/journalctl",
    "/usr/bin/unshare",
    "/usr/bin/nsenter",
    "/usr/sbin/ip",
];

#[test]
fn nginx_real_failures_are_detected_with_the_attackers_address() {
    if let Some(why) = missing(NGINX_BINS) {
        eprintln!("SKIP nginx_real_failures_are_detected_with_the_attackers_address: {why}");
        return;
    }
    let net = NetPair::new();
    let mut jd = Journald::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::set_permissions(d, fs::Permissions::from_mode(0o755)).unwrap();
    fs::create_dir_all(d.join("www/private")).unwrap();
    fs::create_dir_all(d.join("www/limited")).unwrap();
    fs::create_dir_all(d.join("tmp")).unwrap();
    fs::write(d.join("www/index.html"), "hello\n").unwrap();
    fs::write(d.join("www/private/index.html"), "secret\n").unwrap();
    fs::write(d.join("www/limited/index.html"), "limited\n").unwrap();
    fs::write(d.join("htpasswd"), "alice:{PLAIN}right-password\n").unwrap();
    let conf = d.join("nginx.conf");
    fs::write(
        &conf,
        format!(
            "worker_processes 1;\ndaemon off;\npid {p}/nginx.pid;\n\
             error_log syslog:server=unix:/dev/log,nohostname info;\nevents {{ worker_connections 64; }}\n\
             http {{\n  access_log syslog:server=unix:/dev/log,nohostname combined;\n\
               client_body_temp_path {p}/tmp/body;\n  proxy_temp_path {p}/tmp/proxy;\n\
               fastcgi_temp_path {p}/tmp/fcgi;\n  uwsgi_temp_path {p}/tmp/uwsgi;\n\
               scgi_temp_path {p}/tmp/scgi;\n\
               limit_req_zone $binary_remote_addr zone=one:1m rate=1r/m;\n\
               server {{\n    listen {SRV4}:80;\n    listen [{SRV6}]:80;\n    root {p}/www;\n\
                 location /private/ {{ auth_basic \"x\"; auth_basic_user_file {p}/htpasswd; }}\n\
                 location /limited/ {{ limit_req zone=one burst=1 nodelay; }}\n  }}\n}}\n",
            p = d.display()
        ),
    )
    .unwrap();
    let _nginx = Daemon(
        jd.srv_cmd(&net, "/usr/sbin/nginx")
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(d.join("startup-error.log"))
            .stdin(Stdio::null())
            .spawn()
            .expect("start nginx"),
    );
    let srv4: SocketAddr = format!("{SRV4}:80").parse().unwrap();
    let srv6: SocketAddr = format!("[{SRV6}]:80").parse().unwrap();
    net.wait_listening(srv4);
    let quiet = Duration::from_millis(400);
    let _ = jd.settle(quiet);
    let mut judges = Judges::new(&[
        "nginx-http-auth",
        "nginx-limit-req",
        "nginx-bad-request",
        "nginx-botsearch",
    ]);

    let st = http_get(
        &net,
        srv4,
        "/private/",
        &[&basic("alice", "right-password")],
    );
    assert!(st.contains(" 200 "), "{st}");
    let e = jd.settle(quiet);
    let c = judges.run("right password", &e, ATK4);
    counts("right password", &c, &[]);

    let st = http_get(&net, srv4, "/private/", &[&basic("alice", "wrong")]);
    assert!(st.contains(" 401 "), "{st}");
    let e = jd.settle(quiet);
    let c = judges.run("wrong password", &e, ATK4);
    counts(
        "wrong password",
        &c,
        &[
            ("nginx-http-auth/normal", 1),
            ("nginx-http-auth/aggressive", 1),
        ],
    );

    let st = http_get(&net, srv6, "/private/", &[&basic("bob", "x")]);
    assert!(st.contains(" 401 "), "{st}");
    let e = jd.settle(quiet);
    let c = judges.run("unknown user over IPv6", &e, ATK6);
    counts(
        "unknown user over IPv6",
        &c,
        &[
            ("nginx-http-auth/normal", 1),
            ("nginx-http-auth/aggressive", 1),
        ],
    );

    // A user name that tries to put another address before the real one.
    let st = http_get(
        &net,
        srv4,
        "/private/?client:%2010.9.8.7,",
        &[
            &basic("x\", client: 10.9.8.7, server: y", "x"),
            "Referer: client: 10.9.8.7, server: z",
        ],
    );
    assert!(st.contains(" 401 "), "{st}");
    let e = jd.settle(quiet);
    let c = judges.run("user name with an address", &e, ATK4);
    counts("user name with an address", &c, &[]);

    let st = http_get(&net, srv4, "/private/", &[]);
    assert!(st.contains(" 401 "), "{st}");
    let e = jd.settle(quiet);
    let c = judges.run("no credentials", &e, ATK4);
    counts("no credentials", &c, &[("nginx-http-auth/aggressive", 1)]);

    for _ in 0..2 {
        http_get(&net, srv4, "/limited/", &[]);
    }
    let st = http_get(&net, srv4, "/limited/", &[]);
    assert!(st.contains(" 503 "), "{st}");
    let e = jd.settle(quiet);
    let c = judges.run("rate limit", &e, ATK4);
    counts("rate limit", &c, &[("nginx-limit-req/(default)", 1)]);

    let st = http_raw(
        &net,
        srv4,
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n",
    );
    assert!(st.contains(" 400 "), "{st}");
    let e = jd.settle(quiet);
    let c = judges.run("bad request", &e, ATK4);
    counts("bad request", &c, &[("nginx-bad-request/(default)", 1)]);

    let st = http_get(&net, srv4, "/wp-login.php", &[]);
    assert!(st.contains(" 404 "), "{st}");
    let e = jd.settle(quiet);
    let c = judges.run("scanner path", &e, ATK4);
    // from the access log (the error log's twin line is not used: see the filter)
    counts("scanner path", &c, &[("nginx-botsearch/(default)", 1)]);

    let st = http_get(&net, srv4, "/missing.png", &[]);
    assert!(st.contains(" 404 "), "{st}");
    let e = jd.settle(quiet);
    let c = judges.run("ordinary 404", &e, ATK4);
    counts("ordinary 404", &c, &[]);
}

const APACHE_BINS: &[&str] = &[
    "/usr/sbin/apache2",
    "/usr/bin/htpasswd",
    "/usr/lib/apache2/modules/mod_auth_basic.so",
    "/usr/bin/logger",
    "/lib/systemd/systemd-journald",
    "/usr/bin/journalctl",
    "/usr/bin/unshare",
    "/usr/bin/nsenter",
    "/usr/sbin/ip",
];

#[test]
fn apache_real_failures_are_detected_with_the_attackers_address() {
    if let Some(why) = missing(APACHE_BINS) {
        eprintln!("SKIP apache_real_failures_are_detected_with_the_attackers_address: {why}");
        return;
    }
    let net = NetPair::new();
    let mut jd = Journald::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::set_permissions(d, fs::Permissions::from_mode(0o755)).unwrap();
    for sub in ["www/private", "www/denied", "cgi-bin", "run"] {
        fs::create_dir_all(d.join(sub)).unwrap();
    }
    fs::write(d.join("www/index.html"), "hello\n").unwrap();
    fs::write(d.join("www/private/index.html"), "secret\n").unwrap();
    run(Command::new("htpasswd")
        .args(["-cbB"])
        .arg(d.join("htpasswd"))
        .args(["alice", "right-password"]));
    fs::set_permissions(d.join("htpasswd"), fs::Permissions::from_mode(0o644)).unwrap();
    let m = "/usr/lib/apache2/modules";
    let conf = d.join("apache2.conf");
    fs::write(
        &conf,
        format!(
            "ServerRoot {p}\nServerName www.example.org\nPidFile {p}/run/httpd.pid\n\
             DefaultRuntimeDir {p}/run\nMutex file:{p}/run\n\
             LoadModule mpm_prefork_module {m}/mod_mpm_prefork.so\n\
             LoadModule authn_core_module {m}/mod_authn_core.so\n\
             LoadModule authn_file_module {m}/mod_authn_file.so\n\
             LoadModule authz_core_module {m}/mod_authz_core.so\n\
             LoadModule authz_user_module {m}/mod_authz_user.so\n\
             LoadModule auth_basic_module {m}/mod_auth_basic.so\n\
             LoadModule alias_module {m}/mod_alias.so\n\
             LoadModule cgi_module {m}/mod_cgi.so\n\
             User www-data\nGroup www-data\nListen {SRV4}:80\nListen [{SRV6}]:80\n\
             ErrorLog syslog:local1\nLogLevel info\n\
             LogFormat \"%h %l %u %t \\\"%r\\\" %>s %O \\\"%{{Referer}}i\\\" \\\"%{{User-Agent}}i\\\"\" combined\n\
             CustomLog \"|/usr/bin/logger -t apache2-access -p local1.info\" combined\n\
             DocumentRoot {p}/www\n<Directory {p}/www>\n  Require all granted\n</Directory>\n\
             <Location /private>\n  AuthType Basic\n  AuthName x\n  AuthUserFile {p}/htpasswd\n\
               Require valid-user\n</Location>\n\
             <Location /denied>\n  Require all denied\n</Location>\n\
             ScriptAlias /cgi-bin/ {p}/cgi-bin/\n<Directory {p}/cgi-bin>\n  Require all granted\n</Directory>\n",
            p = d.display()
        ),
    )
    .unwrap();
    let apache = Daemon(
        jd.srv_cmd(&net, "/usr/sbin/apache2")
            .arg("-f")
            .arg(&conf)
            .arg("-DFOREGROUND")
            .stdin(Stdio::null())
            .spawn()
            .expect("start apache2"),
    );
    let srv4: SocketAddr = format!("{SRV4}:80").parse().unwrap();
    let srv6: SocketAddr = format!("[{SRV6}]:80").parse().unwrap();
    net.wait_listening(srv4);
    let quiet = Duration::from_millis(500);
    let _ = jd.settle(quiet);
    let mut judges = Judges::new(&[
        "apache-auth",
        "apache-noscript",
        "apache-overflows",
        "apache-botsearch",
        "apache-badbots",
    ]);

    let st = http_get(
        &net,
        srv4,
        "/private/index.html",
        &[&basic("alice", "right-password")],
    );
    assert!(st.contains(" 200 "), "{st}");
    let e = jd.settle(quiet);
    let c = judges.run("right password", &e, ATK4);
    counts("right password", &c, &[]);

    let st = http_get(
        &net,
        srv4,
        "/private/index.html",
        &[&basic("alice", "wrong")],
    );
    assert!(st.contains(" 401 "), "{st}");
    let e = jd.settle(quiet);
    let c = judges.run("wrong password", &e, ATK4);
    counts(
        "wrong password",
        &c,
        &[("apache-auth/normal", 1), ("apache-auth/aggressive", 1)],
    );

    let st = http_get(
        &net,
        srv6,
        "/private/index.html",
        &[&basic("bob [client 10.9.8.7:1]", "x")],
    );
    assert!(st.contains(" 401 "), "{st}");
    let e = jd.settle(quiet);
    let c = judges.run("unknown user with an address, over IPv6", &e, ATK6);
    counts(
        "unknown user with an address, over IPv6",
        &c,
        &[("apache-auth/normal", 1), ("apache-auth/aggressive", 1)],
    );

    let st = http_get(&net, srv4, "/denied/x", &[]);
    assert!(st.contains(" 403 "), "{st}");
    let e = jd.settle(quiet);
    let c = judges.run("denied by configuration", &e, ATK4);
    counts(
        "denied by configuration",
        &c,
        &[("apache-auth/aggressive", 1)],
    );

    let st = http_get(&net, srv4, "/cgi-bin/php", &[]);
    assert!(st.contains(" 404 "), "{st}");
    let e = jd.settle(quiet);
    let c = judges.run("missing CGI script", &e, ATK4);
    counts(
        "missing CGI script",
        &c,
        &[("apache-noscript/(default)", 1)],
    );

    let st = http_get(&net, srv4, "/wp-login.php", &[]);
    assert!(st.contains(" 404 "), "{st}");
    let e = jd.settle(quiet);
    let c = judges.run("scanner path", &e, ATK4);
    // a .php that does not exist is also a noscript hit
    counts(
        "scanner path",
        &c,
        &[
            ("apache-botsearch/(default)", 1),
            ("apache-noscript/(default)", 1),
        ],
    );

    let long = format!("/{}", "a".repeat(9000));
    let st = http_get(&net, srv4, &long, &[]);
    assert!(st.contains(" 414 "), "{st}");
    let e = jd.settle(quiet);
    let c = judges.run("URI too long", &e, ATK4);
    counts("URI too long", &c, &[("apache-overflows/(default)", 1)]);

    let st = http_get(
        &net,
        srv4,
        "/index.html",
        &["User-Agent: sqlmap/1.7.2#stable (https://sqlmap.org)"],
    );
    assert!(st.contains(" 200 "), "{st}");
    let e = jd.settle(quiet);
    let c = judges.run("scanner user agent", &e, ATK4);
    counts("scanner user agent", &c, &[("apache-badbots/(default)", 1)]);

    let st = http_get(&net, srv4, "/missing.png", &[]);
    assert!(st.contains(" 404 "), "{st}");
    let e = jd.settle(quiet);
    let c = judges.run("ordinary 404", &e, ATK4);
    counts("ordinary 404", &c, &[]);
    drop(apache);
}

// ---------------------------------------------------------------------------------------------
// Dropbear

const DROPBEAR_BINS: &[&str] = &[
    "/usr/sbin/dropbear",
    "/usr/bin/dropbearkey",
    "/usr/bin/ssh",
    "/usr/bin/sshpass",
    "/lib/systemd/systemd-journald",
    "/usr/bin/journalctl",
    "/usr/bin/unshare",
    "/usr/bin/nsenter",
    "/usr/sbin/ip",
];

#[test]
fn dropbear_real_failures_are_detected_with_the_attackers_address() {
    if let Some(why) = missing(DROPBEAR_BINS) {
        eprintln!("SKIP dropbear_real_failures_are_detected_with_the_attackers_address: {why}");
        return;
    }
    let net = NetPair::new();
    let mut jd = Journald::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run(Command::new("dropbearkey")
        .args(["-t", "ed25519", "-f"])
        .arg(d.join("hostkey")));
    let dropbear = Daemon(
        jd.srv_cmd(&net, "/usr/sbin/dropbear")
            .args([
                "-F",
                "-p",
                &format!("{SRV4}:22"),
                "-p",
                &format!("[{SRV6}]:22"),
            ])
            .arg("-r")
            .arg(d.join("hostkey"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dropbear"),
    );
    net.wait_listening(format!("{SRV4}:22").parse().unwrap());
    let listener = [dropbear.0.id()];
    let quiet = Duration::from_millis(500);
    let _ = jd.settle_sessions(quiet, &listener);
    let mut judge = Judge::new("dropbear");
    let pw_once = ["sshpass", "-p", "wrong-password"];
    let cases = [
        ("wrong password", "root", SRV4, ATK4),
        (
            "unknown user over IPv6 (address from the session's _PID)",
            "nosuchuser",
            SRV6,
            ATK6,
        ),
        (
            "user name with an address",
            "x from 10.9.8.7:22",
            SRV4,
            ATK4,
        ),
    ];
    for (what, user, host, atk) in cases {
        let target = format!("{user}@{host}");
        let a = [
            "-o",
            "PreferredAuthentications=password",
            "-o",
            "NumberOfPasswordPrompts=1",
            &target,
            "true",
        ];
        ssh_client(&net, &pw_once, &a, &[]);
        let e = jd.settle_sessions(quiet, &listener);
        let v = judge.judge(&e);
        expect(what, &e, &v, atk, &[("(default)", 1)], &[]);
    }
}

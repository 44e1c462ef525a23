//! A private `systemd-journald` for real services, without systemd and without touching the
//! host's journal.
//!
//! journald runs in a private mount namespace: tmpfs on /run/systemd and /run/log, a private
//! /dev whose /dev/log is journald's socket. It also runs in a cgroup namespace whose root is a
//! cgroup of the test ([`Cgroup`]), in `system.slice/systemd-journald.service` below it, as on a
//! host. Services started with [`Journald::start_service`] join that mount namespace and a
//! network namespace of the test, in the cgroup `system.slice/UNIT` below the root: journald
//! derives their `_SYSTEMD_UNIT` (and `_SYSTEMD_SLICE`) from that cgroup as it does on a host,
//! so that their syslog(3) lines become real journal entries with real trusted fields, read back
//! with `journalctl -o json`. [`Journald::command`] runs any writer in any cgroup (a user's
//! session scope, for forged lines). [`Journald::collect`]
//! waits for a condition on what was logged; before each look it asks journald to process
//! everything already sent to it (`io.systemd.Journal.Synchronize` over its varlink socket), so
//! that a line logged before the condition was checked is never missed.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use f2b::filter::Field;

use super::cgroup::Cgroup;
use super::netns::NetNs;
use super::wait::{poll_until, wait_for};

/// The journald binary and the tools this module needs.
pub const NEEDS: &[&str] = &[
    "/lib/systemd/systemd-journald",
    "/usr/bin/journalctl",
    "/usr/bin/unshare",
    "/usr/bin/nsenter",
];

/// Run by `sh SCRIPT DIR PROCS` in new mount and cgroup namespaces: moves itself into the
/// cgroup whose `cgroup.procs` is PROCS, sets up /run and /dev, becomes journald.
const JOURNALD_SH: &str = r#"set -e
echo $$ > "$2"
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

/// Why a private journald cannot run here (a tool or systemd's cgroup hierarchy missing).
pub fn unavailable() -> Option<String> {
    let absent: Vec<&str> = NEEDS
        .iter()
        .copied()
        .filter(|b| !Path::new(b).exists())
        .collect();
    if !absent.is_empty() {
        return Some(format!("missing {}", absent.join(", ")));
    }
    super::cgroup::systemd_hierarchy()
        .is_none()
        .then(|| "no cgroup hierarchy of systemd's is mounted".to_string())
}

/// One journal entry, the fields the tests use.
#[derive(Debug, Clone)]
pub struct Entry {
    pub message: String,
    pub ident: String,
    pub pid: Option<u32>,
    pub time_us: u64,
    /// The routing fields ([`Field::ALL`], by [`Field::index`]) the entry has.
    fields: [Option<Vec<u8>>; Field::ALL.len()],
}

impl Entry {
    /// The entry's value of a routing field (`_SYSTEMD_UNIT`, `_UID`, …), if it has one.
    pub fn field(&self, f: Field) -> Option<&[u8]> {
        self.fields[f.index()].as_deref()
    }

    /// A routing field's value as text.
    pub fn text(&self, f: Field) -> Option<String> {
        self.field(f)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }

    /// Its `_SYSTEMD_UNIT`.
    pub fn unit(&self) -> Option<String> {
        self.text(Field::SystemdUnit)
    }

    /// Logged by journald itself ("Journal started", "Suppressed …").
    pub fn is_journald(&self) -> bool {
        self.unit().as_deref() == Some("systemd-journald.service")
    }

    /// Its routing fields as `FIELD=value` words, for messages.
    pub fn trusted(&self) -> String {
        Field::ALL
            .iter()
            .filter_map(|&f| {
                self.field(f)
                    .map(|v| format!("{}={}", f.name(), String::from_utf8_lossy(v)))
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl std::fmt::Display for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.pid {
            Some(p) => write!(f, "{}[{p}]: {}", self.ident, self.message),
            None => write!(f, "{}: {}", self.ident, self.message),
        }
    }
}

/// The private journald; killed on drop, with every process left in its cgroup subtree.
pub struct Journald {
    child: Child,
    cgroup: Cgroup,
    _dir: tempfile::TempDir,
    cursor: Option<String>,
}

impl Journald {
    pub fn start() -> Journald {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("journald.sh");
        std::fs::write(&script, JOURNALD_SH).unwrap();
        let cgroup = Cgroup::new();
        // Into the root first: the new cgroup namespace's root is the cgroup unshare is in.
        // slave propagation: mounts made later on the host are seen, ours never reach it.
        let child = Command::new("sh")
            .arg("-c")
            .arg(r#"echo $$ > "$1" && shift && exec unshare --cgroup --mount --propagation slave sh "$@""#)
            .arg("sh")
            .arg(cgroup.procs(""))
            .arg(&script)
            .arg(dir.path())
            .arg(cgroup.procs("system.slice/systemd-journald.service"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start journald");
        let j = Journald {
            child,
            cgroup,
            _dir: dir,
            cursor: None,
        };
        let sockets =
            ["io.systemd.journal", "dev-log"].map(|s| j.root().join("run/systemd/journal").join(s));
        wait_for(Duration::from_secs(10), "journald's sockets", || {
            sockets.iter().all(|s| s.exists())
        });
        j
    }

    /// The namespace's root as seen from the host.
    pub fn root(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root", self.child.id()))
    }

    /// The directory journald writes its journal files to (below a machine-id directory),
    /// for `journalctl -D` and `f2bd --journal-dir`.
    pub fn journal_dir(&self) -> PathBuf {
        self.root().join("run/log/journal")
    }

    fn varlink(&self) -> PathBuf {
        self.root().join("run/systemd/journal/io.systemd.journal")
    }

    /// A command that runs `prog ARGS` in journald's mount and cgroup namespaces, as a
    /// process of the cgroup `cgroup` below the namespace root (`system.slice/ssh.service`,
    /// `user.slice/user-1000.slice/session-1.scope` …): journald sees it as a process of the
    /// unit that path names.
    pub fn command<S: AsRef<std::ffi::OsStr>>(
        &self,
        cgroup: &str,
        prog: &str,
        args: &[S],
    ) -> Command {
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg(r#"echo $$ > "$1" && shift && exec nsenter "$@""#)
            .arg("sh")
            .arg(self.cgroup.procs(cgroup))
            .args(["-t", &self.child.id().to_string(), "-m", "-C", "--", prog])
            .args(args);
        c
    }

    /// `logger -t TAG` as a process of `cgroup` (see [`Journald::command`]), as user `uid`
    /// (`setpriv`) when given. It sends each line written to [`Logger::send`] as one syslog
    /// message and stays alive until [`Logger::close`], so that journald always finds the
    /// writer's process (its cgroup, uid, command) when it handles the messages.
    pub fn logger(&self, cgroup: &str, uid: Option<u32>, tag: &str) -> Logger {
        let mut args: Vec<String> = Vec::new();
        if let Some(uid) = uid {
            args.extend([
                format!("--reuid={uid}"),
                format!("--regid={uid}"),
                "--clear-groups".into(),
                "logger".into(),
            ]);
        }
        args.extend(["-t".into(), tag.into()]);
        let prog = if uid.is_some() { "setpriv" } else { "logger" };
        let child = self
            .command(cgroup, prog, &args)
            .stdin(Stdio::piped())
            .spawn()
            .expect("logger");
        Logger(child)
    }

    /// Starts `prog ARGS` as the system unit `unit` (`ssh.service` …: in the cgroup
    /// `system.slice/UNIT`, see [`Journald::command`]) and in the network namespace `net`, in a
    /// process group of its own (Apache's prefork signals its whole group when it stops).
    /// Its stdout and stderr go to the file `output`.
    pub fn start_service(
        &self,
        net: &NetNs,
        unit: &str,
        prog: &str,
        args: &[String],
        output: &Path,
    ) -> Service {
        let out = std::fs::File::create(output).unwrap();
        let mut c = self.command(&format!("system.slice/{unit}"), prog, args);
        c.stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .process_group(0);
        Service(net.spawn_cmd(&mut c))
    }

    /// Bind-mounts `src` over `dst` in journald's mount namespace (the services' view of the
    /// file system; the host's stays as it is).
    pub fn bind(&self, src: &Path, dst: &str) {
        let out = Command::new("nsenter")
            .args(["-t", &self.child.id().to_string(), "-m", "mount", "--bind"])
            .arg(src)
            .arg(dst)
            .output()
            .expect("nsenter mount");
        assert!(out.status.success(), "mount --bind {src:?} {dst}: {out:?}");
    }

    /// Asks journald to process every message already sent to it.
    pub fn sync(&self) {
        let mut s = UnixStream::connect(self.varlink()).expect("journald's varlink socket");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"{\"method\":\"io.systemd.Journal.Synchronize\",\"parameters\":{}}\0")
            .unwrap();
        let mut reply = Vec::new();
        let mut byte = [0u8; 1];
        while s.read(&mut byte).expect("journald's reply to Synchronize") == 1 && byte[0] != 0 {
            reply.push(byte[0]);
        }
        let reply = String::from_utf8_lossy(&reply);
        assert!(!reply.contains("\"error\""), "Synchronize: {reply}");
    }

    /// Entries logged since the last call.
    pub fn read_new(&mut self) -> Vec<Entry> {
        let mut cmd = Command::new("journalctl");
        cmd.arg("-D")
            .arg(self.journal_dir())
            .args(["-o", "json", "--no-pager"]);
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
            let bytes = |k: &str| -> Option<Vec<u8>> {
                match &j[k] {
                    serde_json::Value::String(s) => Some(s.clone().into_bytes()),
                    // Fields that are not valid UTF-8 come as arrays of bytes.
                    serde_json::Value::Array(b) => Some(
                        b.iter()
                            .filter_map(|x| x.as_u64().map(|n| n as u8))
                            .collect(),
                    ),
                    _ => None,
                }
            };
            let text = |k: &str| bytes(k).map(|b| String::from_utf8_lossy(&b).into_owned());
            v.push(Entry {
                message: text("MESSAGE").unwrap_or_default(),
                ident: text("SYSLOG_IDENTIFIER").unwrap_or_default(),
                pid: text("_PID").and_then(|p| p.parse().ok()),
                time_us: text("__REALTIME_TIMESTAMP")
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(0),
                fields: Field::ALL.map(|f| bytes(f.name())),
            });
        }
        v
    }

    /// Collects new entries until `done` holds for all of them and one more synchronization
    /// brings nothing new (so that a condition on processes, such as "they have exited", is
    /// judged on everything they logged); `Err` with what was collected when that does not
    /// happen within `limit`.
    pub fn collect(
        &mut self,
        limit: Duration,
        mut done: impl FnMut(&[Entry]) -> bool,
    ) -> Result<Vec<Entry>, Vec<Entry>> {
        let deadline = Instant::now() + limit;
        let mut all = Vec::new();
        let mut held = false;
        let mut pause = Duration::from_millis(5);
        loop {
            self.sync();
            let new = self.read_new();
            if held && new.is_empty() {
                return Ok(all);
            }
            all.extend(new);
            held = done(&all);
            if Instant::now() > deadline {
                return Err(all);
            }
            if !held {
                thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
        }
    }
}

impl Drop for Journald {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `logger` started by [`Journald::logger`]; killed on drop if not closed.
pub struct Logger(Child);

impl Logger {
    /// Sends `lines` at once: one write, one syslog message per line.
    pub fn send(&mut self, lines: &[String]) {
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        let stdin = self.0.stdin.as_mut().expect("logger's stdin");
        stdin.write_all(text.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// Ends its input and waits for it to exit successfully.
    pub fn close(mut self) {
        drop(self.0.stdin.take());
        let status = self.0.wait().unwrap();
        assert!(status.success(), "logger: {status}");
    }
}

impl Drop for Logger {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A service started under the private journald: SIGTERM, then SIGKILL after 5 s, on drop.
pub struct Service(Child);

impl Service {
    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the pid of our own child, not reaped yet.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        if !poll_until(Duration::from_secs(5), || {
            matches!(self.0.try_wait(), Ok(Some(_)))
        }) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Is process `pid` still there?
pub fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

//! The real `f2bd` as a child process, in a home of its own (config, journal, state, log).
//!
//! It is ready when it says so: the test creates the `NOTIFY_SOCKET` (a unix datagram socket,
//! as systemd does for `Type=notify`) and [`Builder::start`] returns once f2bd sent `READY=1`,
//! which it does after the firewall is set up, bans are restored, the journal reader is
//! positioned and `org.f2b` is on the bus. `STATUS=` lines are kept ([`F2bd::status`],
//! [`F2bd::wait_status`]); stderr goes to `f2bd.log` in the home ([`F2bd::log`]). Dropping an
//! [`F2bd`] kills and reaps the process; [`F2bd::stop`] stops it as systemd would (SIGTERM) and
//! checks that it exits cleanly.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use f2b::engine::now_us;
use f2b::source::export::ExportEntry;
use tempfile::TempDir;

use super::bus::{name_has_owner, PrivateBus};
use super::journal::{append, fixtures, ssh, web};
use super::netns::NetNs;
use super::wait::poll_for;

/// How long f2bd may take to say READY=1 (100,000 restored bans in a debug build included).
const READY_WITHIN: Duration = Duration::from_secs(30);
/// How long f2bd may take to exit after SIGTERM.
const STOP_WITHIN: Duration = Duration::from_secs(10);

/// A running `f2bd`.
pub struct F2bd {
    /// Its home: `f2b.toml`, `journal/`, `state/`, `f2bd.log` (stderr), `notify` (the socket).
    pub dir: TempDir,
    child: Option<Child>,
    notify: Notify,
    bus: Option<String>,
    journal: Option<PathBuf>,
}

/// How to start an `f2bd`: `--firewall none --bus none` unless told otherwise, the built-in
/// and the test filters only, the home's journal from its end, logs on stderr.
pub struct Builder<'a> {
    dir: TempDir,
    bus: Option<String>,
    firewall: &'static str,
    netns: Option<&'a NetNs>,
    journal: Option<PathBuf>,
    from_start: bool,
}

impl F2bd {
    /// f2bd with `config` on the private bus `bus`, with the dry-run firewall.
    pub fn start(bus: &PrivateBus, config: &str) -> F2bd {
        F2bd::with_config(config).bus(&bus.address).start()
    }

    /// A new home with `config`, an empty state directory and a journal that holds one entry
    /// of each test unit (sshd.service, web.service) that no test filter matches.
    pub fn with_config(config: &str) -> Builder<'static> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f2b.toml"), config).unwrap();
        std::fs::create_dir(dir.path().join("state")).unwrap();
        let t = now_us();
        append(
            &dir.path().join("journal"),
            "live.journal",
            vec![ssh(t, "Server listening on :: port 22."), web(t, "started")],
        );
        F2bd::in_home(dir)
    }

    /// A new home with `config` and an empty state directory, reading the journal directory
    /// `journal` (a private journald's, or one the test writes) instead of its own.
    pub fn on_journal(config: &str, journal: &Path) -> Builder<'static> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f2b.toml"), config).unwrap();
        std::fs::create_dir(dir.path().join("state")).unwrap();
        let mut b = F2bd::in_home(dir);
        b.journal = Some(journal.to_path_buf());
        b
    }

    /// Start in an existing home again (one that [`F2bd::stop`] returned).
    pub fn in_home(dir: TempDir) -> Builder<'static> {
        Builder {
            dir,
            bus: None,
            firewall: "none",
            netns: None,
            journal: None,
            from_start: false,
        }
    }

    /// Its process id (to read /proc/PID).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// CPU time it used so far (utime + stime of all its threads), in seconds.
    pub fn cpu_secs(&self) -> f64 {
        cpu_secs(&format!("/proc/{}/stat", self.pid()))
    }

    /// CPU time each of its threads used so far: (thread name, seconds).
    pub fn thread_cpu_secs(&self) -> Vec<(String, f64)> {
        let dir = format!("/proc/{}/task", self.pid());
        (std::fs::read_dir(dir).into_iter().flatten().flatten())
            .map(|t| {
                let path = t.path();
                let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
                let stat = path.join("stat");
                (name.trim().to_string(), cpu_secs(&stat.to_string_lossy()))
            })
            .collect()
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("f2b.toml")
    }

    /// The journal directory it reads.
    pub fn journal_dir(&self) -> PathBuf {
        self.journal
            .clone()
            .unwrap_or_else(|| self.dir.path().join("journal"))
    }

    /// Append entries to the journal f2bd follows.
    pub fn journal(&self, entries: Vec<ExportEntry>) {
        append(&self.journal_dir(), "live.journal", entries);
    }

    /// What f2bd wrote on stderr (all its runs in this home).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("f2bd.log")).unwrap_or_default()
    }

    /// The last `STATUS=` text ("" before the first).
    pub fn status(&self) -> String {
        self.notify
            .lines()
            .iter()
            .rev()
            .find_map(|l| l.strip_prefix("STATUS="))
            .unwrap_or_default()
            .to_string()
    }

    /// Wait until f2bd reports a `STATUS=` for which `ok` holds; returns it.
    #[track_caller]
    pub fn wait_status(&self, limit: Duration, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let found = self.notify.wait(limit, || {
            let s = self.status();
            ok(&s).then_some(s)
        });
        found.unwrap_or_else(|| {
            panic!(
                "no STATUS= with {what} within {limit:?}; last: {:?}\n--- f2bd ---\n{}",
                self.status(),
                self.log()
            )
        })
    }

    /// SIGTERM, as `systemctl stop` sends it: f2bd must say STOPPING=1, exit by itself,
    /// promptly and successfully, and leave the bus. Returns the home for a restart.
    #[track_caller]
    pub fn stop(mut self) -> TempDir {
        let mut child = self.child.take().expect("running");
        // SAFETY: kill(2) of our own child, which has not been reaped yet.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let Some(status) = poll_for(STOP_WITHIN, || child.try_wait().unwrap()) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "f2bd did not stop within {STOP_WITHIN:?} of SIGTERM:\n{}",
                self.log()
            );
        };
        assert!(
            status.success(),
            "f2bd exited with {status}:\n{}",
            self.log()
        );
        assert!(
            self.notify.lines().iter().any(|l| l == "STOPPING=1"),
            "f2bd did not say STOPPING=1: {:?}",
            self.notify.lines()
        );
        if let Some(bus) = &self.bus {
            assert!(
                !name_has_owner(bus),
                "org.f2b still owned after f2bd exited"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        std::mem::replace(&mut self.dir, dir)
    }
}

impl F2bd {
    /// SIGKILL, as a crash or the OOM killer would: no chance to write anything. Returns the
    /// home for a restart.
    pub fn kill9(mut self) -> TempDir {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let dir = tempfile::tempdir().unwrap();
        std::mem::replace(&mut self.dir, dir)
    }
}

impl Drop for F2bd {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl<'a> Builder<'a> {
    /// The home f2bd will run in (to prepare its state before the start).
    pub fn home(&self) -> &Path {
        self.dir.path()
    }

    /// Serve `org.f2b` on the bus at `address` (default: `--bus none`).
    pub fn bus(mut self, address: &str) -> Self {
        self.bus = Some(address.to_string());
        self
    }

    /// `--firewall KIND` (default `none`, the dry-run firewall).
    pub fn firewall(mut self, kind: &'static str) -> Self {
        self.firewall = kind;
        self
    }

    /// Run in the network namespace `ns` (for `--firewall nftables`).
    pub fn netns<'b>(self, ns: &'b NetNs) -> Builder<'b> {
        Builder {
            dir: self.dir,
            bus: self.bus,
            firewall: self.firewall,
            netns: Some(ns),
            journal: self.journal,
            from_start: self.from_start,
        }
    }

    /// `--from-start`: read the journal from its first entry (default: from its end).
    pub fn read_from_start(mut self) -> Self {
        self.from_start = true;
        self
    }

    /// Start f2bd and wait for READY=1; panics with its log if it exits or is not ready in
    /// time.
    #[track_caller]
    pub fn start(self) -> F2bd {
        let home = self.dir.path();
        let socket = home.join("notify");
        let _ = std::fs::remove_file(&socket);
        let notify = Notify::bind(socket.clone());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(home.join("f2bd.log"))
            .unwrap();
        let journal = self.journal.clone().unwrap_or_else(|| home.join("journal"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_f2bd"));
        if self.from_start {
            cmd.arg("--from-start");
        }
        cmd.args(["--firewall", self.firewall, "--log", "stderr"])
            .arg("--bus")
            .arg(self.bus.as_deref().unwrap_or("none"))
            .arg("--no-system-filters")
            .arg("--filter-dir")
            .arg(fixtures())
            .arg("--config")
            .arg(home.join("f2b.toml"))
            .arg("--journal-dir")
            .arg(&journal)
            .arg("--state-dir")
            .arg(home.join("state"))
            .env("NOTIFY_SOCKET", &socket)
            .env_remove("WATCHDOG_USEC")
            .env_remove("WATCHDOG_PID")
            .env_remove("LISTEN_FDS")
            .env_remove("LISTEN_PID")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        let child = match self.netns {
            Some(ns) => ns.spawn_cmd(&mut cmd),
            None => cmd.spawn().expect("start f2bd"),
        };
        let mut d = F2bd {
            dir: self.dir,
            child: Some(child),
            notify,
            bus: self.bus,
            journal: self.journal,
        };
        let child = d.child.as_mut().unwrap();
        let ready = d.notify.wait(READY_WITHIN, || {
            if let Some(status) = child.try_wait().unwrap() {
                return Some(Err(status));
            }
            d.notify
                .lines()
                .iter()
                .any(|l| l == "READY=1")
                .then_some(Ok(()))
        });
        match ready {
            Some(Ok(())) => d,
            Some(Err(status)) => panic!("f2bd exited ({status}) before READY=1:\n{}", d.log()),
            None => panic!("f2bd not READY within {READY_WITHIN:?}:\n{}", d.log()),
        }
    }
}

/// utime + stime of a `/proc/…/stat` file, in seconds (0 if it is gone).
fn cpu_secs(stat: &str) -> f64 {
    let Ok(text) = std::fs::read_to_string(stat) else {
        return 0.0;
    };
    let Some((_, rest)) = text.rsplit_once(')') else {
        return 0.0;
    };
    // After "pid (comm)": state is field 3, utime 14 and stime 15 (proc(5)).
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = (f.get(11..13).unwrap_or_default().iter())
        .filter_map(|v| v.parse::<u64>().ok())
        .sum();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    ticks as f64 / hz
}

/// The notify socket and the thread that reads it (so that f2bd never blocks on a full
/// socket buffer).
struct Notify {
    seen: Arc<(Mutex<Vec<String>>, Condvar)>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Notify {
    fn bind(path: PathBuf) -> Notify {
        let sock = UnixDatagram::bind(&path).expect("bind the notify socket");
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let seen = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (seen.clone(), stop.clone());
        let thread = thread::spawn(move || {
            let mut buf = vec![0u8; 4096];
            while !st.load(Ordering::Relaxed) {
                let Ok(n) = sock.recv(&mut buf) else { continue };
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                let (lines, cv) = &*s;
                lines
                    .lock()
                    .unwrap()
                    .extend(text.lines().map(str::to_string));
                cv.notify_all();
            }
        });
        Notify {
            seen,
            stop,
            thread: Some(thread),
        }
    }

    fn lines(&self) -> Vec<String> {
        self.seen.0.lock().unwrap().clone()
    }

    /// Re-evaluates `f` whenever a notification arrives (and every 20 ms, for conditions on
    /// other things) until it yields a value or `limit` has passed.
    fn wait<T>(&self, limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
        let deadline = Instant::now() + limit;
        let (lines, cv) = &*self.seen;
        loop {
            if let Some(v) = f() {
                return Some(v);
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            let guard = lines.lock().unwrap();
            let pause = (deadline - now).min(Duration::from_millis(20));
            drop(cv.wait_timeout(guard, pause).unwrap());
        }
    }
}

impl Drop for Notify {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

//! Log files as a source (issue 13), from outside.
//!
//! - The file reader on real files, in-process (no root): partial lines, delete + recreate,
//!   copytruncate, files that appear later, resuming at saved positions, ident selection.
//! - The real `f2bd` following an auth.log-style file, enforcing with nftables in a server
//!   network namespace (root): three appended failures within a second ban the attacker, still
//!   after the real `logrotate` rotates the file by rename + create and by copytruncate; after a
//!   restart, failures written while f2bd was down count, and nothing earlier counts twice; a
//!   rotation while f2bd was stopped loses nothing.

mod common;

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use f2b::filter::library::FilterLibrary;
use f2b::source::files::{self, FileRoute, FilesConfig, FilesHandle, FilesStart};
use f2b::source::{Batch, SourceEvent};
use tokio::sync::mpsc;

fn append(path: &Path, text: &str) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// An sshd syslog line (RFC 3164, now) with a failed password from `ip`.
fn failed(ip: &str, port: u32) -> String {
    let now = jiff::Timestamp::now()
        .to_zoned_datetime(jiff::tz::TimeZone::system())
        .strftime("%b %e %H:%M:%S");
    format!("{now} web1 sshd[{port}]: Failed password for root from {ip} port {port} ssh2\n")
}

fn route(jail: &str, filter: &str, logpath: &[String]) -> FileRoute {
    static LIB: std::sync::OnceLock<FilterLibrary> = std::sync::OnceLock::new();
    let lib = LIB.get_or_init(|| FilterLibrary::load(&[]).unwrap());
    let def = lib.get(filter).unwrap().clone();
    FileRoute {
        jail: Arc::from(jail),
        filter: def.compile(None).unwrap(),
        def: Arc::new(def),
        logpath: logpath.to_vec(),
    }
}

/// The file reader, and what it sends.
struct Files {
    handle: Option<FilesHandle>,
    rx: mpsc::Receiver<SourceEvent>,
    /// Positions as the engine would store them.
    positions: BTreeMap<String, String>,
    /// Failures found, by address.
    hits: BTreeMap<String, u64>,
    lines: u64,
    rt: tokio::runtime::Runtime,
}

impl Files {
    fn start(routes: Vec<FileRoute>, start: FilesStart, saved: BTreeMap<String, String>) -> Files {
        let mut f = Files::spawn(routes, start, saved);
        f.until("caught up", |_, ev| matches!(ev, SourceEvent::CaughtUp(_)));
        f
    }

    /// Started, without waiting for it to catch up.
    fn spawn(routes: Vec<FileRoute>, start: FilesStart, saved: BTreeMap<String, String>) -> Files {
        let (tx, rx) = mpsc::channel(64);
        let cfg = FilesConfig {
            start,
            follow: true,
            batch: 4096,
            saved: saved.clone(),
        };
        let handle = files::spawn(cfg, routes, 1, tx).unwrap();
        Files {
            handle: Some(handle),
            rx,
            positions: saved,
            hits: BTreeMap::new(),
            lines: 0,
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
        }
    }

    fn take(&mut self, b: &Batch) {
        self.lines += b.entries;
        for h in b.hits.iter().filter(|h| h.counts) {
            *self.hits.entry(h.addr.to_string()).or_default() += 1;
        }
        for (k, v) in &b.positions {
            match v {
                Some(v) => self.positions.insert(k.clone(), v.clone()),
                None => self.positions.remove(k),
            };
        }
    }

    /// Take events until `ok` holds for one (or panic after 5 s).
    fn until(&mut self, what: &str, mut ok: impl FnMut(&Files, &SourceEvent) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let (rt, rx) = (&self.rt, &mut self.rx);
            let ev = rt.block_on(async move { tokio::time::timeout(left, rx.recv()).await });
            let Ok(Some(ev)) = ev else {
                panic!("no {what} within 5 s; hits {:?}", self.hits)
            };
            if let SourceEvent::Batch(b) = &ev {
                self.take(b);
            }
            if let SourceEvent::Failed(e) = &ev {
                panic!("reader failed: {e}");
            }
            if ok(self, &ev) {
                return;
            }
        }
    }

    fn wait_hits(&mut self, ip: &str, n: u64) {
        if self.hits.get(ip).copied().unwrap_or(0) >= n {
            return;
        }
        let ip = ip.to_string();
        self.until(&format!("{n} failures of {ip}"), |f, _| {
            f.hits.get(&ip).copied().unwrap_or(0) >= n
        });
    }

    fn stop(&mut self) -> BTreeMap<String, String> {
        if let Some(h) = self.handle.take() {
            h.stop();
        }
        while let Ok(ev) = self.rx.try_recv() {
            if let SourceEvent::Batch(b) = &ev {
                self.take(b);
            }
        }
        self.positions.clone()
    }
}

#[test]
fn reader_starts_at_the_end_waits_for_newlines_and_follows_deletes_and_truncations() {
    let d = tempfile::tempdir().unwrap();
    let log = d.path().join("auth.log");
    append(&log, &failed("192.0.2.1", 1));
    let r = route("sshd", "sshd", &[log.display().to_string()]);
    let mut f = Files::start(vec![r], FilesStart::End, BTreeMap::new());
    // A partial line waits for its newline.
    let line = failed("192.0.2.2", 2);
    let (head, tail) = line.split_at(30);
    append(&log, head);
    std::thread::sleep(Duration::from_millis(100));
    assert!(f.hits.is_empty(), "{:?}", f.hits);
    append(&log, tail);
    f.wait_hits("192.0.2.2", 1);
    // Delete + recreate: the new file from its start.
    fs::remove_file(&log).unwrap();
    append(&log, &failed("192.0.2.3", 4));
    f.wait_hits("192.0.2.3", 1);
    // Truncated in place (copytruncate without a copy): from the start again.
    fs::write(&log, failed("192.0.2.4", 5)).unwrap();
    f.wait_hits("192.0.2.4", 1);
    std::thread::sleep(Duration::from_millis(100));
    let lines = f.lines;
    let hits = f.hits.clone();
    let positions = f.stop();
    assert_eq!(hits.get("192.0.2.1"), None, "a line from before the start");
    assert_eq!(hits.values().sum::<u64>(), 3, "{hits:?}");
    assert_eq!(lines, 3);
    assert!(positions.contains_key(&files::position_key(&log)));
}

/// Regression: `files::spawn` returned (and f2bd said READY=1) before the reader thread had
/// taken its start positions, so a failure appended right after the start was taken for one
/// written before it and skipped.
#[test]
fn a_line_appended_as_soon_as_the_reader_is_started_is_read() {
    let d = tempfile::tempdir().unwrap();
    let sshd = route("sshd", "sshd", &[]);
    for i in 0..20 {
        let log = d.path().join(format!("auth{i}.log"));
        append(&log, &failed("192.0.2.1", 1));
        let r = FileRoute {
            logpath: vec![log.display().to_string()],
            ..sshd.clone()
        };
        let mut f = Files::spawn(vec![r], FilesStart::End, BTreeMap::new());
        append(&log, &failed("192.0.2.9", 2));
        f.wait_hits("192.0.2.9", 1);
        f.stop();
        assert_eq!(
            f.hits.get("192.0.2.1"),
            None,
            "a line from before the start"
        );
    }
}

/// The reader on the sshd jail's `DIR/*/logs/*.log`, from the files' ends.
fn sites(dir: &Path) -> Files {
    let pat = dir.join("*/logs/*.log").display().to_string();
    let r = route("sshd", "sshd", &[pat]);
    Files::start(vec![r], FilesStart::End, BTreeMap::new())
}

/// Regression: a directory made just before the reader watched it (`mkdir -p site/logs` and
/// a log written at once, for a `*/logs/*.log` pattern) was listed before its watch was added,
/// so its log file was never seen.
#[test]
fn a_log_directory_tree_made_at_once_is_followed() {
    let d = tempfile::tempdir().unwrap();
    let mut f = sites(d.path());
    for i in 0..100 {
        let logs = d.path().join(format!("site{i}/logs"));
        let ip = format!("198.51.100.{}", i + 1);
        let line = failed(&ip, 1);
        fs::create_dir_all(&logs).unwrap();
        append(&logs.join("auth.log"), &line);
        f.wait_hits(&ip, 1);
    }
    f.stop();
}

#[test]
fn reader_resumes_at_saved_positions_and_finds_what_a_rotation_moved() {
    let d = tempfile::tempdir().unwrap();
    let log = d.path().join("auth.log");
    append(&log, &failed("192.0.2.1", 1));
    let routes = || vec![route("sshd", "sshd", &[log.display().to_string()])];
    let mut f = Files::start(routes(), FilesStart::Start, BTreeMap::new());
    f.wait_hits("192.0.2.1", 1);
    let saved = f.stop();
    // While stopped: two more lines, then a rename rotation and a line in the new file.
    append(&log, &failed("192.0.2.5", 2));
    append(&log, &failed("192.0.2.5", 3));
    fs::rename(&log, d.path().join("auth.log.1")).unwrap();
    append(&log, &failed("192.0.2.5", 4));
    let mut f = Files::start(routes(), FilesStart::End, saved);
    f.wait_hits("192.0.2.5", 3);
    std::thread::sleep(Duration::from_millis(100));
    let hits = f.hits.clone();
    let saved = f.stop();
    assert_eq!(hits.get("192.0.2.1"), None, "read twice");
    assert_eq!(hits.get("192.0.2.5"), Some(&3));
    // While stopped: copytruncate.
    append(&log, &failed("192.0.2.6", 5));
    fs::copy(&log, d.path().join("auth.log.1")).unwrap();
    fs::write(&log, "").unwrap();
    append(&log, &failed("192.0.2.6", 6));
    let mut f2 = Files::start(routes(), FilesStart::End, saved);
    f2.wait_hits("192.0.2.6", 2);
    std::thread::sleep(Duration::from_millis(100));
    f2.stop();
    assert_eq!(f2.hits.get("192.0.2.5"), None, "read twice");
    assert_eq!(f2.hits.get("192.0.2.1"), None, "read twice");
    assert_eq!(f2.hits.get("192.0.2.6"), Some(&2));
}

#[test]
fn reader_picks_up_files_that_appear_and_leaves_compressed_and_rotated_ones() {
    let d = tempfile::tempdir().unwrap();
    let mut f = sites(d.path());
    let site = d.path().join("site1/logs");
    fs::create_dir_all(&site).unwrap();
    // A directory that appears later, then a file in it: read from its start.
    append(&site.join("auth.log"), &failed("192.0.2.7", 1));
    f.wait_hits("192.0.2.7", 1);
    append(&site.join("old.log.gz"), &failed("192.0.2.8", 1));
    append(&site.join("auth.log.1"), &failed("192.0.2.8", 2));
    append(&site.join("auth.log"), &failed("192.0.2.7", 3));
    f.wait_hits("192.0.2.7", 2);
    // Lines of other programs are not given to the filter.
    append(
        &site.join("auth.log"),
        "Dec  1 10:00:00 web1 logger[5]: Failed password for root from 192.0.2.10 port 1 ssh2\n",
    );
    append(&site.join("auth.log"), &failed("192.0.2.7", 4));
    f.wait_hits("192.0.2.7", 3);
    f.stop();
    assert_eq!(f.hits.get("192.0.2.8"), None);
    assert_eq!(f.hits.get("192.0.2.10"), None, "another program's line");
}

// --- f2bd -------------------------------------------------------------------------------

const PORT: u16 = 2222;

fn config(log: &Path) -> String {
    format!(
        r#"
[defaults]
ignoreip = ["127.0.0.0/8"]
[jail.sshd]
enabled = true
source = "file"
logpath = ["{}"]
maxretry = 3
findtime = "10m"
bantime = "1h"
ports = [{PORT}]
"#,
        log.display()
    )
}

fn in_set(ns: &NetNs, set: &str, ip: &str) -> bool {
    let o = ns.sh_output(&format!("nft list set inet f2b {set}"));
    o.status.success() && String::from_utf8_lossy(&o.stdout).contains(ip)
}

/// Three failures of `ip` appended within a second; waits for the ban in the kernel and
/// checks that the attacker's connects fail.
fn attack_and_wait_ban(d: &F2bd, pair: &Pair, log: &Path, ip: &str, port0: u32) -> Duration {
    let set = if ip.contains(':') {
        "sshd-v6"
    } else {
        "sshd-v4"
    };
    let srv = if ip.contains(':') {
        Pair::SRV6
    } else {
        Pair::SRV4
    };
    assert_eq!(connect(&pair.atk, ip, srv, PORT), Outcome::Connected);
    let t = Instant::now();
    for i in 0..3 {
        append(log, &failed(ip, port0 + i));
        std::thread::sleep(Duration::from_millis(100));
    }
    if !common::wait::poll_until(Duration::from_secs(5), || in_set(&pair.srv, set, ip)) {
        panic!("no ban of {ip} within 5 s:\n{}", d.log());
    }
    let took = t.elapsed();
    assert_eq!(connect(&pair.atk, ip, srv, PORT), Outcome::TimedOut);
    took
}

fn logrotate(dir: &Path, log: &Path, how: &str) {
    let conf = format!(
        "{} {{\n  rotate 5\n  {how}\n  compress\n  delaycompress\n  missingok\n}}\n",
        log.display()
    );
    common::logrotate::force(dir, how, &conf);
}

fn total_failures(d: &F2bd, n: u64) {
    d.wait_status(Duration::from_secs(5), &format!("{n} failures"), |s| {
        s.contains(&format!(" {n} failures"))
    });
}

#[test]
fn auth_log_jail_bans_through_rotations_and_restarts() {
    let test = "auth_log_jail_bans_through_rotations_and_restarts";
    if !root_and_tools_or_skip(test) {
        return;
    }
    if which("logrotate").is_none() {
        eprintln!("SKIP {test}: logrotate is not installed");
        return;
    }
    let pair = Pair::new();
    let _l = listen(&pair.srv, PORT);
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("auth.log");
    // Before the first start: not read (a first start begins at the end).
    append(&log, &failed(Pair::ATK6_B, 1));
    append(&log, &failed(Pair::ATK6_B, 2));
    append(&log, &failed(Pair::ATK6_B, 3));
    let bus = PrivateBus::start();
    let d = F2bd::with_config(&config(&log))
        .bus(&bus.address)
        .firewall("nftables")
        .netns(&pair.srv)
        .start();
    let took = attack_and_wait_ban(&d, &pair, &log, Pair::ATK4, 100);
    eprintln!("banned {took:?} after the first of three appended failures");
    assert!(
        !in_set(&pair.srv, "sshd-v6", Pair::ATK6_B),
        "old lines read"
    );
    // logrotate, rename + create.
    logrotate(logs.path(), &log, "create");
    assert!(logs.path().join("auth.log.1").exists());
    attack_and_wait_ban(&d, &pair, &log, Pair::ATK4_B, 200);
    // logrotate, copytruncate.
    logrotate(logs.path(), &log, "copytruncate");
    attack_and_wait_ban(&d, &pair, &log, Pair::ATK6, 300);
    total_failures(&d, 9);
    // `f2b status JAIL` lists the file with its lines and failures.
    let out = Command::new(env!("CARGO_BIN_EXE_f2b"))
        .args(["status", "--bus", &bus.address, "sshd"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let row = text
        .lines()
        .find(|l| l.contains(&*log.display().to_string()))
        .unwrap_or_else(|| panic!("no log file in `f2b status sshd`:\n{text}{out:?}"));
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cols[1..], ["following", "9", "9"], "{text}");
    // Written while f2bd is down: counted once after the restart.
    let home = d.stop();
    append(&log, &failed(Pair::ATK6_B, 400));
    append(&log, &failed(Pair::ATK6_B, 401));
    logrotate(logs.path(), &log, "create");
    append(&log, &failed(Pair::ATK6_B, 402));
    let d = F2bd::in_home(home)
        .firewall("nftables")
        .netns(&pair.srv)
        .start();
    wait_for(Duration::from_secs(5), "the ban of ATK6_B", || {
        in_set(&pair.srv, "sshd-v6", Pair::ATK6_B)
    });
    total_failures(&d, 12);
    // And nothing more arrives from what was read before.
    std::thread::sleep(Duration::from_millis(300));
    total_failures(&d, 12);
    d.stop();
}

//! What a running f2bd costs (issue 18), measured on the real `f2bd` process (root; skips
//! otherwise): nftables in a network namespace of its own (`unshare --net`), its state database,
//! the watchdog on as f2b.service sets it (WatchdogSec=30s, so a ping every 15 s), following a
//! journal directory that `systemd-journal-remote` appends to.
//!
//! - idle: no failures since it started; the context switches of all its threads over a window
//!   (30 s), as wake-ups per second. The target is < 1/s.
//! - flood: 10,000 sshd failures a second (20,000 addresses, each banned at its fifth) appended
//!   for 10 s; f2bd's CPU time (utime + stime of /proc/PID/stat) from the first write until it
//!   has banned every address, divided by the flood's length: the cores it needs to keep up.
//!   The target is < 1 core.
//!
//! `cargo bench --bench cost`; under `cargo test` a short run of each checks the path.

use std::io::{BufWriter, Write};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use f2b::engine::now_us;
use f2b::source::export::{write_journal, ExportEntry, JOURNAL_REMOTE};

const CFG: &str = "[jail.sshd]\nenabled = true\nfilter = \"sshd\"\nmaxretry = 5\n\
                   findtime = \"10m\"\nbantime = \"1h\"\nbantime_increment = false\n";
/// As f2b.service: WatchdogSec=30s.
const WATCHDOG_USEC: &str = "30000000";

struct Figures {
    idle_window: Duration,
    flood_rate: u32,
    flood_secs: u32,
    addresses: u32,
}

/// The real f2bd in its own network namespace, ready (READY=1) and caught up.
struct Daemon {
    child: Child,
    notify: UnixDatagram,
    status: String,
    dir: tempfile::TempDir,
}

impl Daemon {
    fn start() -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path();
        std::fs::write(home.join("f2b.toml"), CFG).unwrap();
        std::fs::create_dir(home.join("state")).unwrap();
        let t = now_us();
        write_journal(
            &home.join("journal/live.journal"),
            [ExportEntry::service(
                t,
                "sshd.service",
                "sshd",
                1,
                "Server listening on :: port 22.",
            )],
        )
        .unwrap();
        let sock = home.join("notify");
        let notify = UnixDatagram::bind(&sock).unwrap();
        notify
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let log = std::fs::File::create(home.join("f2bd.log")).unwrap();
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let child = Command::new("unshare")
            .arg("--net")
            .arg(env!("CARGO_BIN_EXE_f2bd"))
            .arg("--config")
            .arg(home.join("f2b.toml"))
            .args(["--no-system-filters", "--filter-dir"])
            .arg(repo.join("filters"))
            .args(["--firewall", "nftables", "--bus", "none", "--log", "stderr"])
            .arg("--state-dir")
            .arg(home.join("state"))
            .arg("--journal-dir")
            .arg(home.join("journal"))
            .env("NOTIFY_SOCKET", &sock)
            .env("WATCHDOG_USEC", WATCHDOG_USEC)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut d = Daemon {
            child,
            notify,
            status: String::new(),
            dir,
        };
        d.wait_notify("READY=1", |l| l == "READY=1");
        // The caught-up STATUS may come before READY=1 (an empty backlog): then it is the last
        // status already, and no other comes while f2bd is idle.
        if d.status.is_empty() || d.status.contains("backlog") {
            d.wait_notify("caught up", |l| {
                l.starts_with("STATUS=") && !l.contains("backlog")
            });
        }
        d
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("f2bd.log")).unwrap_or_default()
    }

    /// Read notifications until one satisfies `ok` (keeps the last STATUS=).
    fn wait_notify(&mut self, what: &str, ok: impl Fn(&str) -> bool) {
        let mut buf = vec![0u8; 4096];
        // Watchdog pings keep the socket busy: bound the whole wait, not each read.
        let deadline = std::time::Instant::now() + Duration::from_secs(300);
        loop {
            assert!(
                std::time::Instant::now() < deadline,
                "no {what} from f2bd within 300 s; last status {:?}\n{}",
                self.status,
                self.log()
            );
            let n = self.notify.recv(&mut buf).unwrap_or_else(|e| {
                panic!(
                    "no {what} from f2bd ({e}); last status {:?}\n{}",
                    self.status,
                    self.log()
                )
            });
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            for l in msg.lines() {
                if let Some(s) = l.strip_prefix("STATUS=") {
                    self.status = s.to_string();
                }
                if ok(l) {
                    return;
                }
            }
        }
    }

    /// Context switches per thread (voluntary + involuntary).
    fn switches(&self) -> Vec<(u32, u64)> {
        let mut v = Vec::new();
        for e in std::fs::read_dir(format!("/proc/{}/task", self.pid()))
            .unwrap()
            .flatten()
        {
            let Ok(tid) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(st) = std::fs::read_to_string(e.path().join("status")) else {
                continue;
            };
            let n: u64 = st
                .lines()
                .filter(|l| l.contains("ctxt_switches"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum();
            v.push((tid, n));
        }
        v
    }

    /// utime + stime of the whole process, in seconds.
    fn cpu_secs(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap();
        let rest = stat.rsplit_once(')').unwrap().1;
        let f: Vec<&str> = rest.split_whitespace().collect();
        // After "pid (comm)": state is field 3, utime 14 and stime 15 (proc(5)).
        let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        ticks as f64 / hz
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn idle(d: &Daemon, window: Duration) {
    let before = d.switches();
    std::thread::sleep(window);
    let after = d.switches();
    let woken: u64 = after
        .iter()
        .map(|(t, n)| {
            let was = before.iter().find(|(b, _)| b == t).map_or(0, |b| b.1);
            n - was.min(*n)
        })
        .sum();
    let rate = woken as f64 / window.as_secs_f64();
    println!(
        "idle f2bd: {rate:.2} wake-ups/s ({woken} context switches of {} threads in {:.0} s; \
         watchdog on, ping every 15 s)",
        after.len(),
        window.as_secs_f64()
    );
}

/// A `systemd-journal-remote` appending what it reads on stdin to `dir/live.journal`.
fn writer(dir: &Path) -> (Child, BufWriter<ChildStdin>) {
    let mut w = Command::new(JOURNAL_REMOTE)
        .arg("-o")
        .arg(dir.join("live.journal"))
        .arg("-")
        .stdin(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdin = BufWriter::with_capacity(1 << 20, w.stdin.take().unwrap());
    (w, stdin)
}

fn flood(d: &mut Daemon, f: &Figures) {
    let journal: PathBuf = d.dir.path().join("journal");
    let (mut w, mut stdin) = writer(&journal);
    let total = f.flood_rate * f.flood_secs;
    // Every address fails `maxretry` times, the addresses interleaved.
    let per_tick = f.flood_rate / 100;
    let cpu0 = d.cpu_secs();
    let t0 = Instant::now();
    let mut buf = Vec::new();
    for i in 0..total {
        let a = i % f.addresses;
        let ip = format!("10.{}.{}.{}", 100 + a / 65536, (a / 256) % 256, a % 256);
        let msg = format!(
            "Failed password for root from {ip} port {} ssh2",
            1024 + i % 60000
        );
        buf.clear();
        ExportEntry::service(now_us(), "sshd.service", "sshd", 1000 + i, &msg)
            .write_to(&mut buf)
            .unwrap();
        stdin.write_all(&buf).unwrap();
        if (i + 1) % per_tick == 0 {
            stdin.flush().unwrap();
            // Pace: tick k is due at k × 10 ms.
            let due = Duration::from_millis(10 * u64::from((i + 1) / per_tick));
            if let Some(s) = due.checked_sub(t0.elapsed()) {
                std::thread::sleep(s);
            }
        }
    }
    stdin.flush().unwrap();
    let written = t0.elapsed();
    let want = format!("{} banned", f.addresses);
    d.wait_notify(&want, |l| l.starts_with("STATUS=") && l.contains(&want));
    let done = t0.elapsed();
    let cpu = d.cpu_secs() - cpu0;
    drop(stdin);
    let _ = w.wait();
    println!(
        "flood: {total} failures ({} addresses, all banned) written in {:.1} s ({:.0}/s); f2bd \
         caught up {:.0} ms after the last write, using {cpu:.2} s of CPU = {:.2} cores over the \
         flood",
        f.addresses,
        written.as_secs_f64(),
        f64::from(total) / written.as_secs_f64(),
        (done - written).as_secs_f64() * 1e3,
        cpu / written.as_secs_f64()
    );
}

fn main() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("SKIP cost bench: needs root (network namespaces, nftables)");
        return;
    }
    if !Path::new(JOURNAL_REMOTE).exists() {
        println!("SKIP cost bench: {JOURNAL_REMOTE} is not installed");
        return;
    }
    // `cargo bench` passes `--bench`; under `cargo test` a short run checks the path.
    let full = std::env::args().any(|a| a == "--bench");
    let f = if full {
        Figures {
            idle_window: Duration::from_secs(30),
            flood_rate: 10_000,
            flood_secs: 10,
            addresses: 20_000,
        }
    } else {
        Figures {
            idle_window: Duration::from_secs(2),
            flood_rate: 2_000,
            flood_secs: 1,
            addresses: 400,
        }
    };
    let mut d = Daemon::start();
    idle(&d, f.idle_window);
    flood(&mut d, &f);
}

//! Crash safety of the state store: a child process (this test binary, re-executed) commits in
//! a loop and is killed with SIGKILL at random points; after each kill the database must hold
//! exactly the state after some commit `m` — every commit fully present or fully absent — and
//! `m` must include every commit the child had been told was durable.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use f2b::store::{Commit, HistoryEntry, Origin, Store, StoreHandle, StoredBan, Totals};
use ipnet::IpNet;
use rand::Rng;

const CHILD_ENV: &str = "F2B_STORE_CRASH_CHILD";
const MODE_ENV: &str = "F2B_STORE_CRASH_MODE";
/// Bans rewritten by every commit, so that a transaction spans many pages.
const FILLER: u32 = 200;

fn net_of(n: u64) -> IpNet {
    IpNet::from(IpAddr::from(Ipv4Addr::from(0x0a00_0000 + n as u32)))
}

/// Commit n: the cursor "n" and a file position "n"; the "crash" ban moves from n-1 to n; all
/// filler bans get count n; one more history row; the window becomes [n, n, n]; the totals
/// grow by one failure and one ban.
fn commit_for(n: u64) -> Commit {
    let mut bans_added = vec![StoredBan {
        jail: "crash".into(),
        net: net_of(n),
        start_us: n,
        end_us: None,
        count: n as u32,
        failures: n as u32,
        origin: Origin::Local,
    }];
    bans_added.extend((0..FILLER).map(|i| StoredBan {
        jail: "filler".into(),
        net: IpNet::from(IpAddr::from(Ipv4Addr::from(0xc000_0000 + i))),
        start_us: n,
        end_us: Some(u64::MAX / 2),
        count: n as u32,
        failures: i,
        origin: Origin::Manual { uid: Some(i) },
    }));
    let window: IpNet = "192.0.2.1/32".parse().unwrap();
    Commit {
        cursor: Some(n.to_string()),
        positions: vec![("file:/var/log/crash.log".into(), Some(n.to_string()))],
        bans_added,
        bans_removed: vec![("crash".into(), net_of(n - 1))],
        history_added: vec![HistoryEntry {
            net: net_of(n),
            jail: "crash".into(),
            t_us: n,
            origin: Origin::Local,
        }],
        windows_cleared: vec![("crash".into(), window)],
        failures_added: vec![("crash".into(), window, n); 3],
        totals_added: vec![(
            "crash".into(),
            Totals {
                failed: 1,
                banned: 1,
                ignored: 0,
            },
        )],
        ..Commit::default()
    }
}

/// The n of the state in `dir`, after checking that it is exactly the state after commit n.
fn check_consistent(dir: &Path) -> u64 {
    let store = Store::open(dir).expect("reopen after SIGKILL");
    let snap = store.load(0).unwrap();
    let m: u64 = snap.cursor.as_deref().map_or(0, |c| c.parse().unwrap());
    let crash: Vec<_> = snap
        .bans
        .iter()
        .filter(|b| snap.jail(b.jail) == "crash")
        .collect();
    let filler: Vec<_> = snap
        .bans
        .iter()
        .filter(|b| snap.jail(b.jail) == "filler")
        .collect();
    if m == 0 {
        assert!(snap.bans.is_empty() && snap.history.is_empty() && snap.windows.is_empty());
        assert!(snap.totals.is_empty() && snap.positions.is_empty());
        return 0;
    }
    assert_eq!(crash.len(), 1, "cursor {m}: {crash:?}");
    assert_eq!(
        (crash[0].net, crash[0].count, crash[0].start_us),
        (net_of(m), m as u32, m)
    );
    assert_eq!(filler.len(), FILLER as usize, "cursor {m}");
    assert!(filler.iter().all(|b| b.count == m as u32), "cursor {m}");
    let mut times: Vec<u64> = snap.history.iter().map(|h| h.t_us).collect();
    times.sort();
    assert_eq!(times, (1..=m).collect::<Vec<_>>(), "cursor {m}");
    assert_eq!(snap.windows.len(), 1);
    assert_eq!(snap.windows[0].times, vec![m, m, m], "cursor {m}");
    assert_eq!(
        snap.totals_of("crash"),
        Totals {
            failed: m,
            banned: m,
            ignored: 0
        },
        "cursor {m}"
    );
    assert_eq!(
        snap.positions.get("file:/var/log/crash.log"),
        Some(&m.to_string()),
        "cursor {m}"
    );
    let conn = rusqlite::Connection::open(store.path()).unwrap();
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    m
}

fn ack(n: u64) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "ack {n}").unwrap();
    out.flush().unwrap();
}

/// The child: commit forever, printing "ack n" once commit n has returned.
fn child(dir: &Path, mode: &str) -> ! {
    let mut store = Store::open(dir).unwrap();
    let start: u64 = store
        .load(0)
        .unwrap()
        .cursor
        .map_or(0, |c| c.parse().unwrap());
    if mode == "store" {
        let mut n = start;
        loop {
            n += 1;
            store.commit(&commit_for(n)).unwrap();
            ack(n);
        }
    }
    // Through the handle: 16 commits in flight at a time, grouped by the worker.
    drop(store);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let (h, _) = StoreHandle::spawn(dir).unwrap();
        let mut n = start;
        loop {
            let mut set = tokio::task::JoinSet::new();
            for _ in 0..16 {
                n += 1;
                let (h, c) = (h.clone(), commit_for(n));
                set.spawn(async move { h.commit(c).await });
            }
            while let Some(r) = set.join_next().await {
                r.unwrap().unwrap();
            }
            ack(n);
        }
    })
}

/// Not a test by itself: the body of the child process (a no-op in a normal run).
#[test]
fn crash_child() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        let mode = std::env::var(MODE_ENV).unwrap_or_default();
        child(Path::new(&dir), &mode);
    }
}

#[test]
fn sigkill_at_random_points_leaves_every_commit_whole_or_absent() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut rng = rand::rng();
    let mut last = 0u64;
    let mut acked_total = 0u64;
    for round in 0..16 {
        let mode = if round % 2 == 0 { "store" } else { "handle" };
        let mut child = Command::new(&exe)
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path())
            .env(MODE_ENV, mode)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let acked = Arc::new(AtomicU64::new(0));
        let out = child.stdout.take().unwrap();
        let a = acked.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                // The first may follow libtest's "test crash_child ... " on the same line.
                if let Some((_, n)) = line.rsplit_once("ack ") {
                    a.store(n.trim().parse().unwrap(), Ordering::SeqCst);
                }
            }
        });
        // Mostly mid-run; now and then during start-up (open, migration, load).
        let ms = if round % 5 == 1 {
            rng.random_range(0..30)
        } else {
            rng.random_range(30..300)
        };
        std::thread::sleep(Duration::from_millis(ms));
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        reader.join().unwrap();
        assert!(
            !status.success(),
            "round {round}: the child must not exit by itself"
        );
        let acked = acked.load(Ordering::SeqCst);
        let m = check_consistent(dir.path());
        assert!(m >= last, "round {round}: went back from {last} to {m}");
        // Everything acknowledged is there; at most what was in flight beyond it.
        let in_flight = if mode == "store" { 1 } else { 16 };
        if acked > 0 {
            assert!(
                m >= acked && m <= acked + in_flight,
                "round {round} ({mode}): acked {acked}, stored {m}"
            );
            acked_total += acked - last;
        } else {
            assert!(
                m <= last + in_flight,
                "round {round}: stored {m} after {last}"
            );
        }
        last = m;
    }
    assert!(acked_total > 0, "the child never committed anything");
    eprintln!("{last} commits survived 16 SIGKILLs");
}

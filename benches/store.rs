//! State store figures: `cargo bench --bench store`.
//!
//! * one Commit of 100,000 bans (fresh database, then again as upserts);
//! * `load` of 100,000 active bans (the boot path: the bans must reach nftables in < 1 s),
//!   and the start as f2bd does it (`spawn_or_recover`: with an integrity check first);
//! * 10,000 small commits (1 ban + cursor each) through the `StoreHandle`, with 1, 16 and
//!   10,000 in flight (group commit), with `synchronous=NORMAL` and with FULL;
//! * purge of 100,000 expired bans;
//! * issue 10.5: peak memory and time of `load` of 100,000 active bans + 100,000 history
//!   entries, in a process of its own (this binary re-run with `--load-rss DIR`);
//! * issue 10.8: bytes written and time for 1,000 failures appended, one commit each, to a
//!   window already holding 200,000 failures.
//!
//! Figures before the changes of issues 10.5 and 10.8 (schema version 2, same machine kind,
//! 2 shared cores): load 100k bans + 100k history 101–116 ms CPU (wall 87–430 ms, with the
//! machine's other load), peak RSS +27.4 MiB (27.7 MiB of anonymous memory holding the
//! snapshot); 1,000 failures appended to a 200k window: 13,089 MiB written in 85 s (each
//! commit rewrote the whole window as JSON).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use f2b::store::{Commit, Durability, HistoryEntry, Origin, Store, StoreHandle, StoredBan};
use ipnet::IpNet;

const BANS: u32 = 100_000;
const SMALL: u32 = 10_000;
const NOW: u64 = 1_700_000_000_000_000;

fn ban(i: u32) -> StoredBan {
    // Nine in ten IPv4 /32, one in ten IPv6 /64, over four jails.
    let net = if i % 10 == 9 {
        let a = Ipv6Addr::new(0x2001, 0xdb8, (i >> 16) as u16, i as u16, 0, 0, 0, 0);
        IpNet::new(IpAddr::V6(a), 64).unwrap()
    } else {
        IpNet::from(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)))
    };
    StoredBan {
        jail: ["sshd", "nginx-auth", "postfix", "recidive"][i as usize % 4].to_string(),
        net,
        start_us: NOW + u64::from(i),
        end_us: (!i.is_multiple_of(50)).then_some(NOW + 3_600_000_000 + u64::from(i)),
        count: 1 + i % 3,
        failures: 5,
        origin: Origin::Local,
    }
}

/// The history entry of `ban(i)`.
fn history(i: u32) -> HistoryEntry {
    let b = ban(i);
    HistoryEntry {
        net: b.net,
        jail: b.jail,
        t_us: b.start_us,
        origin: b.origin,
    }
}

fn timed<T>(label: &str, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let r = f();
    println!("{label:<58} {:>9.1} ms", t.elapsed().as_secs_f64() * 1e3);
    r
}

/// Best and median of five runs of `f` (each on a freshly opened store).
fn timed5(label: &str, dir: &Path, f: impl Fn(&Store) -> usize) {
    let mut ms: Vec<f64> = (0..5)
        .map(|_| {
            let s = Store::open(dir).unwrap();
            let t = Instant::now();
            std::hint::black_box(f(&s));
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    println!(
        "{label:<58} {:>9.1} ms (median {:.1} ms of 5)",
        ms[0], ms[2]
    );
}

fn big(dir: &Path) {
    let bans = Commit {
        cursor: Some("s=0;i=1".into()),
        bans_added: (0..BANS).map(ban).collect(),
        ..Commit::default()
    };
    let history = Commit {
        history_added: (0..BANS).map(history).collect(),
        ..Commit::default()
    };
    let mut s = Store::open(dir).unwrap();
    timed("commit: 100,000 bans, one Commit", || {
        s.commit(&bans).unwrap()
    });
    s.close().unwrap();
    drop(timed("open (existing database)", || {
        Store::open(dir).unwrap()
    }));
    timed5("load: 100,000 active bans", dir, |s| {
        let snap = s.load(NOW).unwrap();
        assert_eq!(snap.bans.len(), BANS as usize);
        snap.bans.len()
    });

    let mut s = Store::open(dir).unwrap();
    timed("commit: 100,000 history entries, one Commit", || {
        s.commit(&history).unwrap()
    });
    let mut again = bans.clone();
    for b in &mut again.bans_added {
        b.count += 1;
    }
    timed("commit: the same 100,000 bans again (upserts)", || {
        s.commit(&again).unwrap()
    });
    s.close().unwrap();
    timed5("load: 100,000 active bans + 100,000 history", dir, |s| {
        let snap = s.load(NOW).unwrap();
        assert_eq!(snap.history.len(), BANS as usize);
        snap.bans.len()
    });
    let (h, snap) = timed(
        "StoreHandle::spawn: open + load (as above) + thread",
        || StoreHandle::spawn_with(dir, Durability::Normal, NOW).unwrap(),
    );
    assert_eq!(snap.bans.len(), BANS as usize);
    drop(h);
    drop(snap);
    let (h, snap, recovered) = timed(
        "StoreHandle::spawn_or_recover: the same + quick_check",
        || StoreHandle::spawn_or_recover_with(dir, Durability::Normal, NOW).unwrap(),
    );
    assert!(recovered.is_none());
    assert_eq!(snap.bans.len(), BANS as usize);
    drop(h);
    drop(snap);

    let mut s = Store::open(dir).unwrap();
    let stats = timed("purge: 98,000 expired bans + 100,000 history", || {
        s.purge(NOW + 2 * 3_600_000_000, NOW + 2 * 3_600_000_000)
            .unwrap()
    });
    assert_eq!(stats.bans, 98_000);
    let size = std::fs::metadata(s.path()).unwrap().len();
    println!("database file after the above: {} KiB", size / 1024);
}

/// A `key:   value kB` line of a /proc file.
fn proc_value(file: &str, key: &str) -> u64 {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {file}"))
}

/// CPU time of this thread, ms (wall-clock figures vary with the other load of a shared
/// machine; this one much less).
fn thread_cpu_ms() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a live, writable timespec; the clock id is a constant the kernel knows.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime");
    ts.tv_sec as f64 * 1e3 + ts.tv_nsec as f64 / 1e6
}

/// Issue 10.5, in a fresh process: open, then load 100,000 bans + 100,000 history entries.
fn load_rss_child(dir: &Path) {
    let s = Store::open(dir).unwrap();
    let hwm_open = proc_value("/proc/self/status", "VmHWM:") as f64;
    let (t, cpu) = (Instant::now(), thread_cpu_ms());
    let snap = s.load(NOW).unwrap();
    let ms = t.elapsed().as_secs_f64() * 1e3;
    let cpu = thread_cpu_ms() - cpu;
    let hwm = proc_value("/proc/self/status", "VmHWM:") as f64;
    let anon = proc_value("/proc/self/status", "RssAnon:");
    assert_eq!(
        (snap.bans.len(), snap.history.len()),
        (BANS as usize, BANS as usize)
    );
    // For the parent: wall ms, CPU ms, peak RSS growth KiB, anonymous KiB.
    println!("{ms} {cpu} {} {anon}", hwm - hwm_open);
    drop(snap);
}

fn load_rss(dir: &Path) {
    let mut s = Store::open(dir).unwrap();
    s.commit(&Commit {
        cursor: Some("s=0;i=1".into()),
        bans_added: (0..BANS).map(ban).collect(),
        history_added: (0..BANS).map(history).collect(),
        ..Commit::default()
    })
    .unwrap();
    s.close().unwrap();
    // Five processes: (wall ms, CPU ms, peak RSS growth KiB, anonymous KiB) each.
    let mut runs: Vec<Vec<f64>> = (0..5)
        .map(|_| {
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .args(["--bench", "--load-rss"])
                .arg(dir)
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
            String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .map(|v| v.parse().unwrap())
                .collect()
        })
        .collect();
    runs.sort_by(|a, b| a[1].total_cmp(&b[1]));
    let r = &runs[2];
    println!(
        "{:<58} {:>9.1} ms ({:.1} ms CPU; median of 5 by CPU), peak RSS +{:.1} MiB \
         (anonymous {:.1} MiB while holding it)",
        "load: 100,000 bans + 100,000 history, own process",
        r[0],
        r[1],
        r[2] / 1024.0,
        r[3] / 1024.0
    );
}

/// Bytes this thread has written (write/pwrite calls) so far.
fn thread_written() -> u64 {
    proc_value("/proc/thread-self/io", "wchar:")
}

/// Issue 10.8: 1,000 failures appended, one commit each (with the cursor), to a window of
/// 200,000 failures.
fn window_append(dir: &Path) {
    const WINDOW: u64 = 200_000;
    let mut s = Store::open(dir).unwrap();
    let net: IpNet = "192.0.2.1/32".parse().unwrap();
    s.commit(&Commit {
        failures_added: (0..WINDOW).map(|i| ("web".into(), net, NOW + i)).collect(),
        ..Commit::default()
    })
    .unwrap();
    let before = thread_written();
    let t = Instant::now();
    for i in 0..1_000 {
        s.commit(&Commit {
            cursor: Some(format!("s=abcdef;i={i:x};b=0123;m=1;t=5f;x=77")),
            failures_added: vec![("web".into(), net, NOW + WINDOW + i)],
            windows_trimmed: vec![("web".into(), net, NOW)],
            ..Commit::default()
        })
        .unwrap();
    }
    let ms = t.elapsed().as_secs_f64() * 1e3;
    let written = thread_written() - before;
    println!(
        "{:<58} {ms:>9.1} ms, {:.1} MiB written",
        "1,000 failures appended to a 200,000-failure window",
        written as f64 / 1_048_576.0
    );
}

fn small(dir: &Path, in_flight: usize, durable: bool, n: u32) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (h, _) = StoreHandle::spawn_with(dir, Durability::Normal, NOW).unwrap();
    let h = Arc::new(h);
    let before = h.stats();
    let t = Instant::now();
    rt.block_on(async {
        let mut set: tokio::task::JoinSet<Result<(), f2b::store::StoreError>> =
            tokio::task::JoinSet::new();
        for i in 0..n {
            if set.len() >= in_flight {
                set.join_next().await.unwrap().unwrap().unwrap();
            }
            let h = h.clone();
            let c = Commit {
                cursor: Some(format!("s=abcdef;i={i:x};b=0123;m=1;t=5f;x=77")),
                bans_added: vec![ban(i)],
                ..Commit::default()
            };
            set.spawn(async move {
                if durable {
                    h.commit_durable(c).await
                } else {
                    h.commit(c).await
                }
            });
        }
        while let Some(r) = set.join_next().await {
            r.unwrap().unwrap();
        }
    });
    let secs = t.elapsed().as_secs_f64();
    let after = h.stats();
    println!(
        "{:<58} {:>9.0} commits/s ({} transactions, {:.1} ms)",
        format!(
            "{n} small commits, {in_flight} in flight, {}",
            if durable { "FULL" } else { "NORMAL" }
        ),
        f64::from(n) / secs,
        after.transactions - before.transactions,
        secs * 1e3
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs it quickly with fewer items.
    let quick = !std::env::args().any(|a| a == "--bench");
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--load-rss") {
        load_rss_child(Path::new(&args[i + 1]));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    if quick {
        small(dir.path(), 16, false, 100);
        println!("(quick run; use cargo bench for the figures)");
        return;
    }
    println!(
        "SQLite {} (system library), database in {}",
        rusqlite::version(),
        dir.path().display()
    );
    big(&dir.path().join("big"));
    load_rss(&dir.path().join("rss"));
    window_append(&dir.path().join("window"));
    for (in_flight, durable, n) in [
        (1, false, SMALL),
        (16, false, SMALL),
        (SMALL as usize, false, SMALL),
        (1, true, 1_000),
        (16, true, SMALL),
        (SMALL as usize, true, SMALL),
    ] {
        let d = dir.path().join(format!("small-{in_flight}-{durable}"));
        small(&d, in_flight, durable, n);
    }
}

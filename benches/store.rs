//! State store figures: `cargo bench --bench store`.
//!
//! * one Commit of 100,000 bans (fresh database, then again as upserts);
//! * `load` of 100,000 active bans (the boot path: the bans must reach nftables in < 1 s);
//! * 10,000 small commits (1 ban + cursor each) through the `StoreHandle`, with 1, 16 and
//!   10,000 in flight (group commit), with `synchronous=NORMAL` and with FULL;
//! * purge of 100,000 expired bans.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use f2b::store::{Commit, Durability, Store, StoreHandle, StoredBan};
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
        history_added: (0..BANS)
            .map(|i| {
                let b = ban(i);
                (b.net, b.jail, b.start_us)
            })
            .collect(),
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

    let mut s = Store::open(dir).unwrap();
    let stats = timed("purge: 98,000 expired bans + 100,000 history", || {
        s.purge(NOW + 2 * 3_600_000_000, NOW + 2 * 3_600_000_000)
            .unwrap()
    });
    assert_eq!(stats.bans, 98_000);
    let size = std::fs::metadata(s.path()).unwrap().len();
    println!("database file after the above: {} KiB", size / 1024);
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

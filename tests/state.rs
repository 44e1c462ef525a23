//! State that survives: cursor resume, ban restore, crash consistency under kill -9.

mod common;

use std::collections::BTreeSet;
use std::process::{Command as Proc, Stdio};
use std::time::Duration;

use common::*;
use f2b::engine::{now_us, Command};
use f2b::source::StartAt;
use f2b::store::{Store, StoreHandle};

const CFG: &str = "[jail.ssh]\nenabled = true\nfilter = \"testssh\"\nmaxretry = 3\nfindtime = \"1h\"\nbantime = \"1d\"\n\
                   bantime_increment = true\n";

fn with_store(dir: &std::path::Path, state: &std::path::Path, follow: bool) -> Running {
    let (store, snap) = StoreHandle::spawn(state).unwrap();
    common::start_stored(settings(CFG), dir, StartAt::Head, follow, store, snap)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_resumes_after_the_cursor_and_restores_bans() {
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let t = now_us() - 600 * S;
    // Two failures of .1 (below maxretry), three of .2 (banned).
    append(
        dir.path(),
        "x.journal",
        vec![
            fail(t, "198.51.100.1"),
            fail(t + 1, "198.51.100.1"),
            fail(t + 2, "198.51.100.2"),
            fail(t + 3, "198.51.100.2"),
            fail(t + 4, "198.51.100.2"),
        ],
    );
    let mut r = with_store(dir.path(), state.path(), false);
    assert_eq!(r.next_ban(10).await.1, "198.51.100.2");
    r.task.await.unwrap().unwrap();
    // One more failure of .1: with its window remembered, that is the third → ban.
    append(dir.path(), "x.journal", vec![fail(t + 10, "198.51.100.1")]);
    let mut r = with_store(dir.path(), state.path(), false);
    let mut bans = BTreeSet::new();
    bans.insert(r.next_ban(10).await.1);
    r.task.await.unwrap().unwrap();
    assert_eq!(bans, BTreeSet::from(["198.51.100.1".to_string()]));
    // Nothing new: a third start re-reads nothing and counts nothing, but still has both bans.
    let (store, snap) = StoreHandle::spawn(state.path()).unwrap();
    assert_eq!(snap.bans.len(), 2);
    let mut r = common::start_stored(settings(CFG), dir.path(), StartAt::Head, true, store, snap);
    r.ready().await;
    // A line of the jail's unit that is no failure: once the engine has read it, it has read
    // whatever it would read before it. It must be the only entry read.
    append(
        dir.path(),
        "x.journal",
        vec![ssh(now_us(), "Server listening on :: port 22.")],
    );
    r.wait_read(1).await;
    let read = r.handle.call(Command::Metrics).await.unwrap().entries_read;
    assert_eq!(read, 1, "entries read again after the restart");
    let j = r.handle.call(Command::ListJails).await.unwrap();
    // The totals of the two runs before (5 + 1 failures, 2 bans), nothing counted again.
    assert_eq!(
        (j[0].total_failed, j[0].total_banned, j[0].currently_banned),
        (6, 2, 2)
    );
    assert!(r
        .bans_until_quiet(Duration::from_millis(300))
        .await
        .is_empty());
    // The repeat offender is known: one failure of .2 after its ban is lifted bans it again
    // (fast re-ban), for twice as long.
    let n = r
        .handle
        .call(|reply| Command::Unban {
            origin: Default::default(),
            jail: None,
            addr: "198.51.100.2/32".parse().unwrap(),
            reply,
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 1);
    append(
        dir.path(),
        "x.journal",
        vec![fail(now_us(), "198.51.100.2")],
    );
    assert_eq!(r.next_ban(10).await.1, "198.51.100.2");
    let (bans, _) = r
        .handle
        .call(|reply| Command::ListBans {
            jail: None,
            offset: 0,
            limit: 10,
            reply,
        })
        .await
        .unwrap()
        .unwrap();
    let b = bans.iter().find(|b| b.address == "198.51.100.2").unwrap();
    assert_eq!(b.count, 2);
    assert!((b.end_us - b.start_us) / S >= 2 * 86_400 - 1, "{b:?}");
    r.shutdown().await;
}

/// "BANNED 1, TOTAL BANNED 0" after a restart (issue 10): the totals of failures and bans
/// are stored with the decisions and come back at start, as do the open windows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn totals_are_not_reset_by_a_restart() {
    let (dir, state) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // Three failures of .7 (banned), one of .8, ten minutes ago.
    let t = now_us() - 600 * S;
    let ips = [
        "198.51.100.7",
        "198.51.100.7",
        "198.51.100.7",
        "198.51.100.8",
    ];
    let entries = (t..).zip(ips).map(|(t, ip)| fail(t, ip)).collect();
    append(dir.path(), "x.journal", entries);
    let mut r = with_store(dir.path(), state.path(), false);
    assert_eq!(r.next_ban(10).await.1, "198.51.100.7");
    r.task.await.unwrap().unwrap();
    let mut r = with_store(dir.path(), state.path(), true);
    let j = r.handle.call(Command::ListJails).await.unwrap();
    assert_eq!(
        (j[0].total_failed, j[0].total_banned, j[0].currently_banned),
        (4, 1, 1)
    );
    // .8 has one failure in its restored window: two more ban it.
    append(
        dir.path(),
        "x.journal",
        vec![
            fail(now_us(), "198.51.100.8"),
            fail(now_us(), "198.51.100.8"),
        ],
    );
    assert_eq!(r.next_ban(10).await.1, "198.51.100.8");
    let j = r.handle.call(Command::ListJails).await.unwrap();
    assert_eq!(
        (j[0].total_failed, j[0].total_banned, j[0].currently_banned),
        (6, 2, 2)
    );
    r.shutdown().await;
}

/// kill -9 at random points, restart each time: the database ends up with exactly the bans
/// of one uninterrupted run, and no entry was counted twice.
#[test]
fn kill9_at_random_points_loses_nothing_and_counts_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let cfgdir = tempfile::tempdir().unwrap();
    let cfg = cfgdir.path().join("f2b.toml");
    let reference = tempfile::tempdir().unwrap();
    let reference_path = reference.path().to_path_buf();
    std::fs::write(&cfg, CFG).unwrap();
    let t0 = now_us() - 3_000 * S;
    // 4,000 attackers × 3 failures, interleaved, plus noise: 4,000 bans.
    let mut e = Vec::new();
    for round in 0..3u64 {
        for a in 0..4_000u64 {
            let ip = format!("10.{}.{}.{}", 100 + a / 65536, (a / 256) % 256, a % 256);
            e.push(fail(t0 + (round * 4_000 + a) * 50_000, &ip));
            if a % 4 == 0 {
                e.push(ssh(
                    t0 + (round * 4_000 + a) * 50_000 + 1,
                    "Accepted publickey for x from 192.0.2.1 port 1 ssh2",
                ));
            }
        }
    }
    append(dir.path(), "x.journal", e);
    let f2bd = env!("CARGO_BIN_EXE_f2bd");
    // As root, each run enforces in a network namespace of its own (reference, crashed), so
    // the kernel sets are compared too; otherwise the dry-run firewall.
    let root = is_root();
    let ref_ns = root.then(common::NetNs::new);
    let crash_ns = root.then(common::NetNs::new);
    let run = |state: &std::path::Path, kill_after: Option<Duration>| -> bool {
        let ns = if state == reference_path {
            ref_ns.as_ref()
        } else {
            crash_ns.as_ref()
        };
        let mut cmd = Proc::new(f2bd);
        cmd.args(["--firewall", if root { "nftables" } else { "none" }])
            .args([
                "--bus",
                "none",
                "--log",
                "stderr",
                "--log-level",
                "warn",
                "--oneshot",
                "--no-system-filters",
            ])
            .arg("--filter-dir")
            .arg(fixtures())
            .arg("--config")
            .arg(&cfg)
            .arg("--journal-dir")
            .arg(dir.path())
            .arg("--state-dir")
            .arg(state)
            .arg("--from-start")
            .stdout(Stdio::null());
        let mut child = match ns {
            Some(ns) => ns.run(move || cmd.spawn().unwrap()),
            None => cmd.spawn().unwrap(),
        };
        if let Some(d) = kill_after {
            std::thread::sleep(d);
            if child.try_wait().unwrap().is_none() {
                child.kill().unwrap();
                child.wait().unwrap();
                return false;
            }
        }
        assert!(child.wait().unwrap().success());
        true
    };
    // --from-start only applies without a saved cursor: later runs resume.
    assert!(run(reference.path(), None));
    let crashed = tempfile::tempdir().unwrap();
    let mut seed: u64 = now_us();
    let mut kills = 0;
    for _ in 0..10 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        if !run(crashed.path(), Some(Duration::from_millis(5 + seed % 80))) {
            kills += 1;
        }
    }
    assert!(run(crashed.path(), None));
    let snap = |p: &std::path::Path| {
        let s = Store::open(p).unwrap().load(0).unwrap();
        let bans: BTreeSet<String> = s
            .bans
            .iter()
            .map(|b| {
                format!(
                    "{} {} {} {:?} {} {} {}",
                    s.jail(b.jail),
                    b.net,
                    b.start_us,
                    b.end_us,
                    b.count,
                    b.failures,
                    b.origin
                )
            })
            .collect();
        let hist: BTreeSet<String> = s
            .history
            .iter()
            .map(|h| format!("{} {} {} {}", h.net, s.jail(h.jail), h.t_us, h.origin))
            .collect();
        (
            bans,
            hist,
            s.windows.len(),
            s.cursor.clone(),
            s.totals_of("ssh"),
        )
    };
    let (rb, rh, rw, rc, rt) = snap(reference.path());
    let (cb, ch, cw, cc, ct) = snap(crashed.path());
    eprintln!("{kills} kills; reference: {} bans", rb.len());
    assert!(
        kills >= 3,
        "only {kills} runs were killed mid-way: make the journal larger"
    );
    assert_eq!(rb.len(), 4_000);
    let diff = |a: &BTreeSet<String>, b: &BTreeSet<String>| {
        (
            a.difference(b).count(),
            b.difference(a).count(),
            a.difference(b).next().cloned(),
            b.difference(a).next().cloned(),
        )
    };
    assert!(rb == cb, "bans differ: {:?}", diff(&rb, &cb));
    assert!(
        rh == ch,
        "history differs (an entry counted twice or lost): {:?}",
        diff(&rh, &ch)
    );
    assert_eq!((rw, rc), (cw, cc));
    // Totals are in the same transactions as the decisions: none lost, none doubled.
    assert_eq!(rt.failed, 12_000);
    assert_eq!((rt.banned, rt), (4_000, ct));
    if let (Some(a), Some(b)) = (&ref_ns, &crash_ns) {
        use f2b::firewall::Firewall;
        let kernel = |ns: &common::NetNs| -> BTreeSet<String> {
            ns.run(|| f2b::firewall::nft::Nftables::new().unwrap().list().unwrap())
                .iter()
                .map(|e| format!("{} {}", e.jail, e.net))
                .collect()
        };
        let (ka, kb) = (kernel(a), kernel(b));
        assert_eq!(ka.len(), 4_000);
        assert!(ka == kb, "kernel sets differ: {:?}", diff(&ka, &kb));
    }
}

//! Enforcement figures (root; skips otherwise), in a private network namespace:
//! - ban latency: from a failing entry appended to a followed journal (the write has returned)
//!   to the element being in the kernel set (the engine announces a ban after the netlink
//!   batch was acknowledged): p50 / p99 over 1,000 bans;
//! - restore: 100,000 active bans loaded from the SQLite store and put back into nftables at
//!   start, until READY.
//!
//! `cargo bench --bench latency`

use std::time::{Duration, Instant};

use f2b::config::{self, LoadOptions};
use f2b::engine::{now_us, Engine, EngineOptions, Event};
use f2b::firewall::FirewallHandle;
use f2b::source::export::{write_journal, ExportEntry};
use f2b::source::{JournalSpec, SourceConfig, StartAt};
use f2b::store::{Commit, Store, StoreHandle, StoredBan};
use tokio::sync::watch;

const CFG: &str =
    "[jail.sshd]\nenabled = true\nfilter = \"sshd\"\nmaxretry = 1\nbantime = \"1h\"\n";

fn firewall_in_new_netns() -> FirewallHandle {
    // The worker thread inherits the namespace of the thread that spawns it.
    std::thread::spawn(|| {
        // SAFETY: unshare on this thread only; it then creates the worker and exits.
        let r = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        assert_eq!(r, 0, "unshare: {}", std::io::Error::last_os_error());
        f2b::firewall::nft::spawn().expect("nftables")
    })
    .join()
    .unwrap()
}

fn options(
    fw: FirewallHandle,
    dir: &std::path::Path,
    store: Option<(StoreHandle, f2b::store::Snapshot)>,
    ready: watch::Sender<bool>,
) -> EngineOptions {
    EngineOptions {
        load: LoadOptions::default(),
        source: SourceConfig {
            spec: JournalSpec::Directory(dir.to_path_buf()),
            start: StartAt::Tail,
            follow: true,
            batch: 4096,
        },
        firewall: fw,
        ready: Some(ready),
        status: None,
        tick: None,
        resume: false,
        snapshot: store.as_ref().map(|(_, s)| s.clone()),
        store: store.map(|(h, _)| h),
        firewall_events: None,
        notice: None,
        outbox: None,
        host: "test".into(),
        fleet: None,
    }
}

fn settings() -> config::Settings {
    config::load_str(
        "bench.toml",
        CFG,
        &LoadOptions {
            no_system_filters: true,
            ..Default::default()
        },
    )
    .unwrap()
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("SKIP latency bench: needs root (network namespaces, nftables)");
        return;
    }
    // `cargo bench` passes `--bench`; under `cargo test` a small smoke run checks the path.
    let quick = !std::env::args().any(|a| a == "--bench");
    let (bans, restore) = if quick {
        (50u32, 5_000u32)
    } else {
        (1_000, 100_000)
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // Ban latency.
        let dir = tempfile::tempdir().unwrap();
        write_journal(&dir.path().join("x.journal"), [ExportEntry::service(now_us(), "sshd.service", "sshd", 1, "start")]).unwrap();
        let (ready_tx, mut ready) = watch::channel(false);
        let (status_tx, mut status) = watch::channel(String::new());
        let mut opts = options(firewall_in_new_netns(), dir.path(), None, ready_tx);
        opts.status = Some(status_tx);
        let (engine, handle, cmds) = Engine::new(settings(), opts);
        let mut events = handle.subscribe();
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(engine.run(cmds, stop_rx));
        while !*ready.borrow_and_update() {
            ready.changed().await.unwrap();
        }
        // Measure from the steady state: the journal's backlog read.
        status
            .wait_for(|s| !s.is_empty() && !s.contains("backlog"))
            .await
            .unwrap();
        // One long-lived writer: each entry is written and flushed to its stdin, which
        // appends it to the followed journal file at once.
        let mut writer = std::process::Command::new(f2b::source::export::JOURNAL_REMOTE)
            .arg("-o")
            .arg(dir.path().join("x.journal"))
            .arg("-")
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = writer.stdin.take().unwrap();
        let mut lat = Vec::new();
        for i in 0..bans {
            let ip = format!("10.{}.{}.{}", 1 + i / 65536, (i / 256) % 256, i % 256);
            let e = ExportEntry::service(now_us(), "sshd.service", "sshd", 7, &format!("Failed password for root from {ip} port 22 ssh2"));
            let mut buf = Vec::new();
            e.write_to(&mut buf).unwrap();
            let t = Instant::now();
            use std::io::Write;
            stdin.write_all(&buf).unwrap();
            stdin.flush().unwrap();
            loop {
                match events.recv().await.unwrap() {
                    Event::Banned { address, .. } if address == ip => break,
                    _ => {}
                }
            }
            lat.push(t.elapsed());
        }
        drop(stdin);
        writer.wait().unwrap();
        println!(
            "ban latency (entry handed to systemd-journal-remote → element in the kernel set), {} bans: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            lat.len(),
            pct(&mut lat, 0.5).as_secs_f64() * 1e3,
            pct(&mut lat, 0.99).as_secs_f64() * 1e3,
            pct(&mut lat, 1.0).as_secs_f64() * 1e3
        );
        let _ = stop.send(true);
        task.await.unwrap().unwrap();

        // Restore of 100,000 bans.
        let state = tempfile::tempdir().unwrap();
        {
            let mut s = Store::open(state.path()).unwrap();
            let now = now_us();
            let bans = (0..restore)
                .map(|i| StoredBan {
                    jail: "sshd".into(),
                    net: ipnet::IpNet::from(std::net::IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i))),
                    start_us: now,
                    end_us: Some(now + 3_600_000_000),
                    count: 1,
                    failures: 5,
                    origin: Default::default(),
                })
                .collect();
            s.commit(&Commit { bans_added: bans, ..Default::default() }).unwrap();
        }
        let t = Instant::now();
        let (h, snap) = StoreHandle::spawn(state.path()).unwrap();
        let loaded = t.elapsed();
        let (ready_tx, mut ready) = watch::channel(false);
        let fw = firewall_in_new_netns();
        let (engine, _handle, cmds) = Engine::new(settings(), options(fw.clone(), dir.path(), Some((h, snap)), ready_tx));
        let (stop, stop_rx) = watch::channel(false);
        let t2 = Instant::now();
        let task = tokio::spawn(engine.run(cmds, stop_rx));
        while !*ready.borrow_and_update() {
            ready.changed().await.unwrap();
        }
        let restored = t2.elapsed();
        let in_kernel = fw.list().await.unwrap().len();
        println!(
            "restore of {restore} bans: store load {:.0} ms + engine and nftables {:.0} ms = {:.0} ms ({in_kernel} elements in the kernel)",
            loaded.as_secs_f64() * 1e3,
            restored.as_secs_f64() * 1e3,
            (loaded + restored).as_secs_f64() * 1e3
        );
        let _ = stop.send(true);
        task.await.unwrap().unwrap();
    });
}

//! Actions and ban latency (issue 16), root only (nftables in a private network namespace):
//! - ban latency (entry handed to systemd-journal-remote → element in the kernel set) of
//!   sequential bans, without actions and with a webhook action (a local receiver) and a
//!   command action: the outbox must not slow a ban down;
//! - a flood of 10,000 bans written at once: time to the last ban with and without the
//!   webhook action, then how long the webhook takes to receive them all, and the action's
//!   counters (sent, dropped, pending) that account for every message.
//!
//! `cargo bench --bench actions`

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use f2b::config::{self, LoadOptions};
use f2b::engine::{now_us, Engine, EngineOptions, Event};
use f2b::source::export::{write_journal, ExportEntry};
use f2b::source::{JournalSpec, SourceConfig, StartAt};
use f2b::store::StoreHandle;
use tokio::sync::watch;

/// A counting HTTP endpoint on the loopback: answers 200 to every request.
fn endpoint() -> (u16, Arc<AtomicU64>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let n = Arc::new(AtomicU64::new(0));
    let count = n.clone();
    std::thread::spawn(move || {
        for c in l.incoming().flatten() {
            let count = count.clone();
            std::thread::spawn(move || {
                let mut r = BufReader::new(c);
                let mut len = 0usize;
                let mut line = String::new();
                while r.read_line(&mut line).unwrap_or(0) > 0 && line.trim() != "" {
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                    line.clear();
                }
                let mut body = vec![0; len];
                if r.read_exact(&mut body).is_ok() {
                    count.fetch_add(1, Ordering::Relaxed);
                    let _ = r.get_mut().write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                }
            });
        }
    });
    (port, n)
}

fn settings(actions: Option<(u16, &str)>) -> config::Settings {
    let mut cfg =
        "[jail.sshd]\nenabled = true\nfilter = \"sshd\"\nmaxretry = 1\nbantime = \"1h\"\n"
            .to_string();
    if let Some((port, out)) = actions {
        cfg.push_str(&format!(
            "actions = [\"hook\", \"run\"]\n[action.hook]\ntype = \"webhook\"\n\
             url = \"http://127.0.0.1:{port}/f2b\"\nevents = [\"ban\"]\n\
             [action.run]\ntype = \"command\"\nevents = [\"ban\"]\n\
             command = [\"/bin/sh\", \"-c\", 'echo \"$1\" >> {out}', \"-\", \"{{address}}\"]\n"
        ));
    }
    let opts = LoadOptions {
        no_system_filters: true,
        ..Default::default()
    };
    config::load_str("bench.toml", &cfg, &opts).unwrap()
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn entry(ip: &str) -> ExportEntry {
    let msg = format!("Failed password for root from {ip} port 22 ssh2");
    ExportEntry::service(now_us(), "sshd.service", "sshd", 7, &msg)
}

fn ip(run: u32, i: u32) -> String {
    format!(
        "10.{}.{}.{}",
        run * 8 + 1 + i / 65536,
        (i / 256) % 256,
        i % 256
    )
}

/// One engine with (or without) the actions: sequential ban latencies, then a flood.
async fn run(with_actions: bool, run_no: u32, seq: u32, flood: u32) {
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let journal = dir.path().join("x.journal");
    write_journal(&journal, [entry("192.0.2.200")]).unwrap();
    let (port, received) = endpoint();
    let out = state.path().join("command.out");
    let settings = settings(with_actions.then(|| (port, out.to_str().unwrap())));
    let (store, snap) = StoreHandle::spawn(state.path()).unwrap();
    let outbox = with_actions.then(|| {
        let sinks = f2b::action::sinks(&settings).unwrap();
        f2b::outbox::Deliverer::spawn(sinks, Some(store.clone()))
    });
    let (ready_tx, mut ready) = watch::channel(false);
    let (status_tx, status) = watch::channel(String::new());
    let fw = std::thread::spawn(|| {
        // SAFETY: unshare on this thread only; it then creates the worker and exits.
        let r = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        assert_eq!(r, 0, "unshare: {}", std::io::Error::last_os_error());
        f2b::firewall::nft::spawn().expect("nftables")
    })
    .join()
    .unwrap();
    let opts = EngineOptions {
        load: LoadOptions::default(),
        source: SourceConfig {
            spec: JournalSpec::Directory(dir.path().to_path_buf()),
            start: StartAt::Tail,
            follow: true,
            batch: 4096,
        },
        firewall: fw,
        ready: Some(ready_tx),
        status: Some(status_tx),
        tick: None,
        resume: false,
        snapshot: Some(snap),
        store: Some(store),
        firewall_events: None,
        notice: None,
        outbox: outbox.clone(),
        host: "bench".into(),
        fleet: None,
    };
    let (engine, handle, cmds) = Engine::new(settings, opts);
    let mut events = handle.subscribe();
    let (stop, stop_rx) = watch::channel(false);
    let task = tokio::spawn(engine.run(cmds, stop_rx));
    while !*ready.borrow_and_update() {
        ready.changed().await.unwrap();
    }
    let mut status = status;
    status
        .wait_for(|s| !s.is_empty() && !s.contains("backlog"))
        .await
        .unwrap();
    let mut writer = std::process::Command::new(f2b::source::export::JOURNAL_REMOTE)
        .arg("-o")
        .arg(&journal)
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = writer.stdin.take().unwrap();
    let label = if with_actions {
        "webhook + command"
    } else {
        "no actions"
    };
    let mut lat = Vec::new();
    for i in 0..seq {
        let ip = ip(run_no, i);
        let mut buf = Vec::new();
        entry(&ip).write_to(&mut buf).unwrap();
        let t = Instant::now();
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
    println!(
        "ban latency, {label}, {seq} bans: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        pct(&mut lat, 0.5).as_secs_f64() * 1e3,
        pct(&mut lat, 0.99).as_secs_f64() * 1e3,
        pct(&mut lat, 1.0).as_secs_f64() * 1e3
    );
    // The flood: every entry in one write.
    let mut buf = Vec::new();
    for i in seq..seq + flood {
        entry(&ip(run_no, i)).write_to(&mut buf).unwrap();
    }
    let t = Instant::now();
    stdin.write_all(&buf).unwrap();
    stdin.flush().unwrap();
    let mut banned = 0;
    while banned < flood {
        if let Ok(Event::Banned { .. }) = events.recv().await {
            banned += 1;
        }
    }
    let all_banned = t.elapsed();
    println!(
        "flood, {label}: {flood} bans in {:.0} ms ({:.0} bans/s)",
        all_banned.as_secs_f64() * 1e3,
        flood as f64 / all_banned.as_secs_f64()
    );
    if let Some(o) = &outbox {
        let want = (seq + flood) as u64;
        let deadline = Instant::now() + Duration::from_secs(300);
        while received.load(Ordering::Relaxed) < want && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let st = o.stats().snapshot();
        let (hook, run) = (st["hook"], st["run"]);
        println!(
            "flood, webhook received {} of {want} in {:.1} s; counters hook: sent {} dropped {} failed {} pending {}; run: sent {} dropped {} failed {} pending {}",
            received.load(Ordering::Relaxed),
            t.elapsed().as_secs_f64(),
            hook.sent, hook.dropped, hook.failed, hook.pending,
            run.sent, run.dropped, run.failed, run.pending,
        );
    }
    drop(stdin);
    writer.wait().unwrap();
    let _ = stop.send(true);
    task.await.unwrap().unwrap();
}

fn main() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("SKIP actions bench: needs root (network namespaces, nftables)");
        return;
    }
    // `cargo bench` passes `--bench`; under `cargo test` a small smoke run checks the path.
    let quick = !std::env::args().any(|a| a == "--bench");
    let (seq, flood) = if quick { (20, 200) } else { (500, 10_000) };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        run(false, 0, seq, flood).await;
        run(true, 1, seq, flood).await;
    });
}

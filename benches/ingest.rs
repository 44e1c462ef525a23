//! Ingest benchmark: 1,000,000 generated journal entries (half sshd, a tenth of those
//! failures, the rest other units) through the full path reader → filter → jail → ban
//! decisions, as f2bd runs it (engine task, dry-run firewall). Prints entries/s.
//!
//! `cargo bench --bench ingest` (needs systemd-journal-remote). `F2B_BENCH_ENTRIES` changes
//! the count. A second run enables a jail for every shipped filter at once. Under `cargo test`
//! (no `--bench` argument) it is a smoke run of 10,000 entries that checks the path decides
//! bans; its figures are debug-build noise.

use std::path::{Path, PathBuf};
use std::time::Instant;

use f2b::config::{self, LoadOptions};
use f2b::engine::{now_us, Command, Engine, EngineOptions};
use f2b::filter::library::FilterLibrary;
use f2b::firewall::{DryRun, Firewall, FirewallHandle};
use f2b::source::export::{synthetic, write_journal};
use f2b::source::{JournalSpec, SourceConfig, StartAt};
use tokio::sync::watch;

/// The journal of `n` entries, generated once and kept under target/. 5,000 attackers at
/// 1,000,000 entries; proportionally fewer in smaller journals, so that some reach maxretry.
fn journal(n: usize) -> PathBuf {
    let attackers = (n / 200).clamp(1, 5_000) as u32;
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("target/bench-journal-{n}-{attackers}"));
    if !dir.join("done").exists() {
        let _ = std::fs::remove_dir_all(&dir);
        let t = Instant::now();
        let start = now_us() - n as u64 * 1_000;
        write_journal(
            &dir.join("bench.journal"),
            synthetic(n, start, 1_000, attackers),
        )
        .expect("systemd-journal-remote");
        std::fs::write(dir.join("done"), "").unwrap();
        eprintln!(
            "generated {n} entries in {:.1} s",
            t.elapsed().as_secs_f64()
        );
    }
    dir
}

/// Runs the engine over the journal; returns (failures, bans).
fn run(label: &str, cfg: &str, dir: &Path, n: usize) -> (u64, u64) {
    let settings = config::load_str(
        "bench.toml",
        cfg,
        &LoadOptions {
            config: "bench.toml".into(),
            no_system_filters: true,
            ..Default::default()
        },
    )
    .unwrap();
    let jails = settings.enabled_jails().count();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (status_tx, mut status) = watch::channel(String::new());
        let fw = FirewallHandle::spawn(|| Ok(Box::new(DryRun::new()) as Box<dyn Firewall>)).unwrap();
        let opts = EngineOptions {
            load: LoadOptions::default(),
            source: SourceConfig {
                spec: JournalSpec::Directory(dir.to_path_buf()),
                start: StartAt::Head,
                follow: true,
                batch: 4096,
            },
            firewall: fw,
            ready: None,
            status: Some(status_tx),
            tick: None,
            store: None,
            snapshot: None,
            resume: false,
            firewall_events: None,
            notice: None,
            outbox: None,
            host: "test".into(),
            fleet: None,
        };
        let (engine, handle, cmds) = Engine::new(settings, opts);
        let (stop, stop_rx) = watch::channel(false);
        let t = Instant::now();
        let task = tokio::spawn(engine.run(cmds, stop_rx));
        // Done when the engine reports the backlog read (set on the reader's CaughtUp).
        loop {
            status.changed().await.unwrap();
            let s = status.borrow().clone();
            if !s.is_empty() && !s.contains("backlog") {
                break;
            }
        }
        let done_at = t.elapsed();
        let j = handle.call(Command::ListJails).await.unwrap();
        let last = (j.iter().map(|x| x.total_failed).sum::<u64>(), j.iter().map(|x| x.total_banned).sum::<u64>());
        let secs = done_at.as_secs_f64();
        println!(
            "{label}: {n} entries, {jails} jail(s), {} failures, {} bans in {secs:.3} s = {:.0} entries/s",
            last.0,
            last.1,
            n as f64 / secs
        );
        let _ = stop.send(true);
        task.await.unwrap().unwrap();
        last
    })
}

fn main() {
    // `cargo bench` passes `--bench`; under `cargo test` a small smoke run checks the path.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let n: usize = std::env::var("F2B_BENCH_ENTRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if smoke { 10_000 } else { 1_000_000 });
    let dir = journal(n);
    let (failures, bans) = run(
        "ingest (sshd jail)",
        "[jail.sshd]\nenabled = true\nfilter = \"sshd\"\nmaxretry = 5\nbantime = \"1h\"\n",
        &dir,
        n,
    );
    assert!(
        failures > 0 && bans > 0,
        "the sshd jail found {failures} failures and decided {bans} bans"
    );
    let lib = FilterLibrary::load(&[]).unwrap();
    let mut cfg = String::from("[defaults]\nbantime = \"1h\"\n");
    for name in lib.filters.keys() {
        cfg.push_str(&format!(
            "[jail.{name}]\nenabled = true\nfilter = \"{name}\"\n"
        ));
    }
    run(
        &format!("ingest (all {} filters)", lib.filters.len()),
        &cfg,
        &dir,
        n,
    );
    if smoke {
        println!("(smoke run; `cargo bench --bench ingest` prints the figures)");
    }
}

//! Memory figures (issue 10, item 5) of the real `f2bd` process, read from
//! `/proc/PID/status`: `RssAnon` (anonymous memory resident: the heap, what f2bd itself
//! holds; the journal files it maps are file-backed and not in it) and `VmHWM` (peak of all
//! resident memory, mapped journal files included).
//!
//! 1. A distributed attack: f2bd (`--firewall none`) follows a journal written by
//!    `systemd-journal-remote` while it runs; 200,000 distinct attackers fail once each, half
//!    IPv4 addresses, half IPv6 addresses each in a /64 of its own (`ipv6_prefix = 64`). Once
//!    STATUS says every failure is counted: RssAnon. Twice: with the default `max_tracked`
//!    (100,000: the oldest windows are evicted) and with every attacker tracked.
//! 2. A restart on 100,000 active bans (half IPv4 hosts, half IPv6 /64s, each with its history
//!    row) written with `f2b::store`: f2bd with `--firewall nftables` in a network namespace of
//!    its own (root; `--firewall none` otherwise). Time from the start of the process to
//!    READY=1, and RssAnon then. The restore's share is the difference to a start on an empty
//!    state (most of a start is compiling the filters); f2bd's own "restored … in" is shown.
//!
//! `cargo bench --bench memory`. Under `cargo test` (no `--bench` argument) a smoke run of
//! 5,000 attackers and bans checks the paths; its figures are debug-build noise.
//! `F2B_BENCH_ATTACKERS` and `F2B_BENCH_BANS` change the sizes; `F2B_BENCH_LOG=1` prints
//! f2bd's log and the CPU time of each of its threads at each start.

#[path = "../tests/common/mod.rs"]
mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use f2b::engine::now_us;
use f2b::source::export::ExportEntry;
use f2b::store::{Commit, HistoryEntry, Store, StoredBan};
use ipnet::IpNet;

use common::{F2bd, NetNs};

/// The jail of both runs: the built-in sshd filter, IPv6 counted and banned per /64.
const JAIL: &str = "[jail.sshd]\nenabled = true\nfilter = \"sshd\"\nmaxretry = 5\n\
                    findtime = \"1h\"\nbantime = \"1h\"\nipv6_prefix = 64\n";

/// Targets of issue 10, item 5.
const ATTACK_TARGET_MB: f64 = 64.0;
const RESTORE_TARGET_MB: f64 = 48.0;
const RESTORE_TARGET: Duration = Duration::from_secs(1);

/// Memory of a process, from /proc/PID/status.
struct Mem {
    rss_anon_kb: u64,
    hwm_kb: u64,
}

impl Mem {
    fn of(pid: u32) -> Mem {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let kb = |key: &str| {
            (status.lines())
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"))
        };
        Mem {
            rss_anon_kb: kb("RssAnon:"),
            hwm_kb: kb("VmHWM:"),
        }
    }
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "NOT met"
    }
}

/// Attacker `i` of `n`: the first half IPv4 hosts, the second half IPv6 hosts, each in a /64
/// of its own. As a net: the /32 or the /64 the jail counts and bans.
fn attacker(i: u32, n: u32) -> (IpAddr, IpNet) {
    if i < n / 2 {
        let a = Ipv4Addr::from(0x2d00_0000 + i);
        (IpAddr::V4(a), IpNet::from(IpAddr::V4(a)))
    } else {
        let prefix = (0x2a01_0db8_u128 << 96) | (u128::from(i) << 64);
        let host = u128::from(i).wrapping_mul(0x9E37_79B9_7F4A_7C15) as u64;
        let a = Ipv6Addr::from(prefix | u128::from(host | 1));
        let net = IpNet::new(IpAddr::V6(Ipv6Addr::from(prefix)), 64).unwrap();
        (IpAddr::V6(a), net)
    }
}

/// Run 1: `n` attackers, one failure each, written to the journal f2bd follows.
fn attack(n: u32, max_tracked: Option<usize>) -> Mem {
    let mut config = JAIL.to_string();
    if let Some(m) = max_tracked {
        config.push_str(&format!("max_tracked = {m}\n"));
    }
    let d = F2bd::with_config(&config).start();
    let idle = Mem::of(d.pid());
    let t0 = now_us();
    let started = Instant::now();
    let entries = (0..n).map(|i| {
        let (addr, _) = attacker(i, n);
        let msg = format!(
            "Failed password for root from {addr} port {} ssh2",
            1024 + i % 60_000
        );
        ExportEntry::service(t0 + u64::from(i), "sshd.service", "sshd", 4242, &msg)
    });
    f2b::source::export::write_journal(&d.journal_dir().join("live.journal"), entries)
        .expect("systemd-journal-remote");
    let want = format!("{n} failures");
    d.wait_status(Duration::from_secs(120), &want, |s| {
        s.contains(&format!(", {want}")) && !s.contains("backlog")
    });
    let took = started.elapsed();
    let after = Mem::of(d.pid());
    let tracked = max_tracked.map_or("default max_tracked (100,000)".to_string(), |m| {
        format!("max_tracked = {m}")
    });
    println!(
        "attack, {n} distinct attackers (half IPv4, half IPv6 /64s), one failure each, \
         {tracked}: RssAnon {:.1} MB after all were counted ({:.1} MB idle before; peak RSS \
         with mapped journal files {:.1} MB); written and counted in {:.1} s",
        mb(after.rss_anon_kb),
        mb(idle.rss_anon_kb),
        mb(after.hwm_kb),
        took.as_secs_f64()
    );
    d.stop();
    after
}

/// What a start on stored bans cost.
struct Restore {
    /// From the start of the process to READY=1.
    ready: Duration,
    /// CPU time f2bd used until READY=1 (all threads): on a busy machine the wall clock
    /// also counts the others' work.
    cpu: f64,
    /// Memory at READY=1.
    mem: Mem,
    firewall: &'static str,
}

/// Run 2: `n` active bans (with their history) in the state database, then f2bd started on
/// it.
fn restore(n: u32) -> Restore {
    let builder = F2bd::with_config(JAIL);
    {
        let mut s = Store::open(&builder.home().join("state")).unwrap();
        let now = now_us();
        let mut c = Commit::default();
        for i in 0..n {
            let (_, net) = attacker(i, n);
            let start_us = now - 600_000_000 + u64::from(i);
            c.bans_added.push(StoredBan {
                jail: "sshd".into(),
                net,
                start_us,
                end_us: Some(start_us + 3_600_000_000),
                count: 1,
                failures: 5,
                origin: Default::default(),
            });
            c.history_added.push(HistoryEntry {
                net,
                jail: "sshd".into(),
                t_us: start_us,
                origin: Default::default(),
            });
        }
        s.commit(&c).unwrap();
        s.close().unwrap();
    }
    let netns = common::is_root().then(NetNs::new);
    let (builder, firewall) = match &netns {
        Some(ns) => (builder.firewall("nftables").netns(ns), "nftables"),
        None => (builder, "none"),
    };
    let started = Instant::now();
    let d = builder.start();
    let ready = started.elapsed();
    let mem = Mem::of(d.pid());
    let cpu = d.cpu_secs();
    let want = format!("{n} banned");
    d.wait_status(Duration::from_secs(10), &want, |s| s.contains(&want));
    // f2bd's own figure: from the loaded snapshot to every ban in the jails and the firewall.
    let log = d.log();
    if std::env::var_os("F2B_BENCH_LOG").is_some() {
        println!("{log}\nCPU s by thread: {:?}", d.thread_cpu_secs());
    }
    let restored = (log.lines())
        .find_map(|l| l.split_once("restored ").map(|(_, r)| r))
        .and_then(|r| r.split_once(" in ").map(|(_, r)| r))
        .and_then(|r| r.split_once(" ms").map(|(ms, _)| ms.to_string()))
        .unwrap_or_else(|| "?".into());
    println!(
        "start on {n} active bans (half IPv4 hosts, half IPv6 /64s) with --firewall \
         {firewall}: READY=1 after {:.0} ms, {:.0} ms of CPU (f2bd: bans restored in \
         {restored} ms); RssAnon {:.1} MB then (peak RSS {:.1} MB)",
        ready.as_secs_f64() * 1e3,
        cpu * 1e3,
        mb(mem.rss_anon_kb),
        mb(mem.hwm_kb)
    );
    d.stop();
    Restore {
        ready,
        cpu,
        mem,
        firewall,
    }
}

fn size(var: &str, default: u32) -> u32 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    // `cargo bench` passes `--bench`; under `cargo test` a small smoke run checks the paths.
    let full = std::env::args().any(|a| a == "--bench");
    let attackers = size("F2B_BENCH_ATTACKERS", if full { 200_000 } else { 5_000 });
    let bans = size("F2B_BENCH_BANS", if full { 100_000 } else { 5_000 });
    if !std::path::Path::new(f2b::source::export::JOURNAL_REMOTE).exists() {
        println!("SKIP memory bench: needs systemd-journal-remote");
        return;
    }
    let default = attack(attackers, None);
    let all = attack(attackers, Some(10_000_000));
    if !common::is_root() {
        println!("restore: not root, so --firewall none (no network namespace)");
    }
    // The start itself (filters compiled, firewall set up, journal opened) is not the
    // restore's: a start on no bans tells it apart.
    let empty = restore(0);
    let r = restore(bans);
    if full {
        let worst = mb(default.rss_anon_kb.max(all.rss_anon_kb));
        println!(
            "target: {attackers} attackers ≤ {ATTACK_TARGET_MB} MB RssAnon: {} ({worst:.1} MB)",
            verdict(worst <= ATTACK_TARGET_MB)
        );
        let held = mb(r.mem.rss_anon_kb);
        let took = r.ready.saturating_sub(empty.ready);
        let cpu = (r.cpu - empty.cpu).max(0.0);
        println!(
            "target: {bans} bans restored in ≤ {:.0} s and held in ≤ {RESTORE_TARGET_MB} MB \
             (--firewall {}): {} ({:.0} ms more to READY=1 than without bans, {:.0} ms more \
             CPU; {held:.1} MB)",
            RESTORE_TARGET.as_secs_f64(),
            r.firewall,
            verdict(took <= RESTORE_TARGET && held <= RESTORE_TARGET_MB),
            took.as_secs_f64() * 1e3,
            cpu * 1e3
        );
    }
}

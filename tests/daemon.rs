//! The running daemon protects a host: f2bd follows a journal in a server network namespace,
//! programs nftables there, and an attacker's TCP connects fail while it is banned.
//! Restart keeps bans; `nft flush ruleset` is repaired within a second. Root only.

mod common;
mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use f2b::engine::now_us;
use support::{connect, listen, root_and_tools_or_skip, NetNs, Outcome, Pair};

const PORT: u16 = 2222;

const CFG: &str = r#"
[defaults]
ignoreself = true
ignoreip = ["127.0.0.0/8"]
[jail.ssh]
enabled = true
filter = "testssh"
maxretry = 3
findtime = "10m"
bantime = "3s"
ports = [2222]
[jail.webby]
enabled = true
filter = "testweb"
maxretry = 2
bantime = "1h"
"#;

struct Daemon {
    child: Child,
}

impl Daemon {
    fn start(ns: &NetNs, cfg: &Path, journal: &Path, state: &Path) -> Daemon {
        let (cfg, journal, state) = (
            cfg.to_path_buf(),
            journal.to_path_buf(),
            state.to_path_buf(),
        );
        let child = ns.run(move || {
            Command::new(env!("CARGO_BIN_EXE_f2bd"))
                .args([
                    "--firewall",
                    "nftables",
                    "--bus",
                    "none",
                    "--log",
                    "stderr",
                    "--no-system-filters",
                ])
                .arg("--filter-dir")
                .arg(fixtures())
                .arg("--config")
                .arg(&cfg)
                .arg("--journal-dir")
                .arg(&journal)
                .arg("--state-dir")
                .arg(&state)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        });
        let d = Daemon { child };
        wait_for(Duration::from_secs(10), || {
            ns.sh_output("nft list chain inet f2b input")
                .status
                .success()
        });
        // READY: the reader is positioned once the table is up; give it a moment.
        std::thread::sleep(Duration::from_millis(200));
        d
    }

    fn stop(mut self) {
        // SAFETY: plain kill(2) on our child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = self.child.wait().unwrap();
        assert!(status.success(), "f2bd exited with {status}");
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for(limit: Duration, mut ok: impl FnMut() -> bool) -> Duration {
    let t = Instant::now();
    while !ok() {
        assert!(t.elapsed() < limit, "condition not met within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    t.elapsed()
}

fn failures(ip: &str, n: u64) -> Vec<f2b::source::export::ExportEntry> {
    let t = now_us();
    (0..n).map(|i| fail(t + i, ip)).collect()
}

#[test]
fn banned_attacker_cannot_connect_until_the_kernel_expires_the_ban() {
    if !root_and_tools_or_skip("banned_attacker_cannot_connect_until_the_kernel_expires_the_ban") {
        return;
    }
    let pair = Pair::new();
    let _l = listen(&pair.srv, PORT);
    let _l80 = listen(&pair.srv, 8080);
    let dir = tempfile::tempdir().unwrap();
    let (journal, state) = (dir.path().join("journal"), dir.path().join("state"));
    append(&journal, "x.journal", vec![ssh(now_us(), "starting")]);
    let cfg = dir.path().join("f2b.toml");
    std::fs::write(&cfg, CFG).unwrap();
    let d = Daemon::start(&pair.srv, &cfg, &journal, &state);

    assert_eq!(
        connect(&pair.atk, Pair::ATK4, Pair::SRV4, PORT),
        Outcome::Connected
    );
    // Two failures: not yet.
    append(&journal, "x.journal", failures(Pair::ATK4, 2));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        connect(&pair.atk, Pair::ATK4, Pair::SRV4, PORT),
        Outcome::Connected
    );
    // The third: banned on port 2222 (the jail's scope) only.
    append(&journal, "x.journal", failures(Pair::ATK4, 1));
    let took = wait_for(Duration::from_secs(3), || {
        pair.srv
            .sh("nft list set inet f2b ssh-v4")
            .contains(Pair::ATK4)
    });
    eprintln!("ban in the kernel {took:?} after the append");
    assert_eq!(
        connect(&pair.atk, Pair::ATK4, Pair::SRV4, PORT),
        Outcome::TimedOut
    );
    assert_eq!(
        connect(&pair.atk, Pair::ATK4_B, Pair::SRV4, PORT),
        Outcome::Connected
    );
    assert_eq!(
        connect(&pair.atk, Pair::ATK4, Pair::SRV4, 8080),
        Outcome::Connected
    );
    // IPv6 the same way.
    append(&journal, "x.journal", failures(Pair::ATK6, 3));
    wait_for(Duration::from_secs(3), || {
        pair.srv
            .sh("nft list set inet f2b ssh-v6")
            .contains(Pair::ATK6)
    });
    assert_eq!(
        connect(&pair.atk, Pair::ATK6, Pair::SRV6, PORT),
        Outcome::TimedOut
    );
    assert_eq!(
        connect(&pair.atk, Pair::ATK6_B, Pair::SRV6, PORT),
        Outcome::Connected
    );
    // bantime 3 s: the kernel lets the attacker back in.
    wait_for(Duration::from_secs(6), || {
        connect(&pair.atk, Pair::ATK4, Pair::SRV4, PORT) == Outcome::Connected
    });
    d.stop();
}

#[test]
fn restart_keeps_bans_and_a_flushed_ruleset_is_repaired_within_a_second() {
    if !root_and_tools_or_skip(
        "restart_keeps_bans_and_a_flushed_ruleset_is_repaired_within_a_second",
    ) {
        return;
    }
    let pair = Pair::new();
    let _l = listen(&pair.srv, PORT);
    let dir = tempfile::tempdir().unwrap();
    let (journal, state) = (dir.path().join("journal"), dir.path().join("state"));
    append(&journal, "x.journal", vec![ssh(now_us(), "starting")]);
    let cfg = dir.path().join("f2b.toml");
    std::fs::write(&cfg, CFG).unwrap();
    let d = Daemon::start(&pair.srv, &cfg, &journal, &state);
    let t = now_us();
    append(
        &journal,
        "x.journal",
        vec![
            web(
                t,
                &format!("login failed for user \"a\" from {}", Pair::ATK4),
            ),
            web(
                t + 1,
                &format!("login failed for user \"a\" from {}", Pair::ATK4),
            ),
        ],
    );
    wait_for(Duration::from_secs(3), || {
        pair.srv
            .sh("nft list set inet f2b webby-v4")
            .contains(Pair::ATK4)
    });
    assert_eq!(
        connect(&pair.atk, Pair::ATK4, Pair::SRV4, PORT),
        Outcome::TimedOut
    );
    d.stop();
    // Stopped: the kernel still enforces.
    assert_eq!(
        connect(&pair.atk, Pair::ATK4, Pair::SRV4, PORT),
        Outcome::TimedOut
    );
    // Someone flushes everything while f2bd is down; the restart restores from the store.
    pair.srv.sh("nft flush ruleset");
    assert_eq!(
        connect(&pair.atk, Pair::ATK4, Pair::SRV4, PORT),
        Outcome::Connected
    );
    let d = Daemon::start(&pair.srv, &cfg, &journal, &state);
    wait_for(Duration::from_secs(2), || {
        pair.srv
            .sh("nft list set inet f2b webby-v4")
            .contains(Pair::ATK4)
    });
    assert_eq!(
        connect(&pair.atk, Pair::ATK4, Pair::SRV4, PORT),
        Outcome::TimedOut
    );
    // And while it runs: flush → back within a second, noticed from netlink events.
    for cmd in ["nft flush ruleset", "nft delete table inet f2b"] {
        pair.srv.sh(cmd);
        let took = wait_for(Duration::from_secs(1), || {
            let o = pair.srv.sh_output("nft list set inet f2b webby-v4");
            o.status.success() && String::from_utf8_lossy(&o.stdout).contains(Pair::ATK4)
        });
        eprintln!("`{cmd}` repaired in {took:?}");
    }
    assert_eq!(
        connect(&pair.atk, Pair::ATK4, Pair::SRV4, PORT),
        Outcome::TimedOut
    );
    d.stop();
}

/// 100,000 bans in the store come back into the kernel at start, in one pass.
#[test]
fn start_restores_100000_bans_from_the_store() {
    if !root_and_tools_or_skip("start_restores_100000_bans_from_the_store") {
        return;
    }
    use f2b::firewall::Firewall;
    let ns = NetNs::new();
    let dir = tempfile::tempdir().unwrap();
    let (journal, state) = (dir.path().join("journal"), dir.path().join("state"));
    append(&journal, "x.journal", vec![ssh(now_us(), "starting")]);
    let cfg = dir.path().join("f2b.toml");
    std::fs::write(&cfg, CFG).unwrap();
    {
        let mut s = f2b::store::Store::open(&state).unwrap();
        let now = now_us();
        let bans = (0..100_000u32)
            .map(|i| f2b::store::StoredBan {
                jail: "webby".into(),
                net: ipnet::IpNet::from(std::net::IpAddr::V4(std::net::Ipv4Addr::from(
                    0x0a00_0000 + i,
                ))),
                start_us: now,
                end_us: Some(now + 3_600_000_000),
                count: 1,
                failures: 2,
                origin: Default::default(),
            })
            .collect();
        s.commit(&f2b::store::Commit {
            bans_added: bans,
            ..Default::default()
        })
        .unwrap();
    }
    let t = Instant::now();
    let d = Daemon::start(&ns, &cfg, &journal, &state);
    let n = wait_for(Duration::from_secs(20), || {
        ns.run(|| {
            f2b::firewall::nft::Nftables::new()
                .unwrap()
                .list()
                .unwrap()
                .len()
        }) == 100_000
    });
    eprintln!(
        "100,000 bans back in the kernel {:?} after start ({n:?} of polling)",
        t.elapsed()
    );
    d.stop();
}

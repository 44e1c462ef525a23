//! The running daemon protects a host: f2bd follows a journal in a server network namespace,
//! programs nftables there, and an attacker's TCP connects fail while it is banned.
//! Restart keeps bans; `nft flush ruleset` is repaired within a second. Root only, but for
//! the stop right after READY=1 (dry-run firewall).

mod common;

use std::time::{Duration, Instant};

use common::f2bd;
use common::*;
use f2b::engine::now_us;

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

/// f2bd enforcing in the server namespace `ns`, with `CFG` in a new home.
fn start(ns: &NetNs) -> F2bd {
    restart(ns, F2bd::with_config(CFG))
}

fn restart(ns: &NetNs, f2bd: f2bd::Builder<'static>) -> F2bd {
    f2bd.firewall("nftables").netns(ns).start()
}

fn failures(ip: &str, n: u64) -> Vec<f2b::source::export::ExportEntry> {
    let t = now_us();
    (0..n).map(|i| fail(t + i, ip)).collect()
}

/// The kernel's ban set of a jail in `ns` lists `ip`.
fn in_set(ns: &NetNs, set: &str, ip: &str) -> bool {
    let o = ns.sh_output(&format!("nft list set inet f2b {set}"));
    o.status.success() && String::from_utf8_lossy(&o.stdout).contains(ip)
}

#[test]
fn banned_attacker_cannot_connect_until_the_kernel_expires_the_ban() {
    if !root_and_tools_or_skip("banned_attacker_cannot_connect_until_the_kernel_expires_the_ban") {
        return;
    }
    let pair = Pair::new();
    let _l = listen(&pair.srv, PORT);
    let _l80 = listen(&pair.srv, 8080);
    let d = start(&pair.srv);

    assert_eq!(
        connect(&pair.atk, Pair::ATK4, Pair::SRV4, PORT),
        Outcome::Connected
    );
    // Two failures: counted, not yet banned.
    d.journal(failures(Pair::ATK4, 2));
    d.wait_status(Duration::from_secs(5), "2 failures", |s| {
        s.contains(" 2 failures")
    });
    assert!(!in_set(&pair.srv, "ssh-v4", Pair::ATK4));
    assert_eq!(
        connect(&pair.atk, Pair::ATK4, Pair::SRV4, PORT),
        Outcome::Connected
    );
    // The third: banned on port 2222 (the jail's scope) only.
    let t = Instant::now();
    d.journal(failures(Pair::ATK4, 1));
    wait_for(Duration::from_secs(3), "the ban in the kernel", || {
        in_set(&pair.srv, "ssh-v4", Pair::ATK4)
    });
    eprintln!("ban in the kernel {:?} after the append", t.elapsed());
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
    d.journal(failures(Pair::ATK6, 3));
    wait_for(Duration::from_secs(3), "the IPv6 ban in the kernel", || {
        in_set(&pair.srv, "ssh-v6", Pair::ATK6)
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
    wait_for(Duration::from_secs(6), "the ban to expire", || {
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
    let d = start(&pair.srv);
    let t = now_us();
    let login = format!("login failed for user \"a\" from {}", Pair::ATK4);
    d.journal(vec![web(t, &login), web(t + 1, &login)]);
    wait_for(Duration::from_secs(3), "the ban in the kernel", || {
        in_set(&pair.srv, "webby-v4", Pair::ATK4)
    });
    assert_eq!(
        connect(&pair.atk, Pair::ATK4, Pair::SRV4, PORT),
        Outcome::TimedOut
    );
    let home = d.stop();
    // Stopped: the kernel still enforces.
    assert_eq!(
        connect(&pair.atk, Pair::ATK4, Pair::SRV4, PORT),
        Outcome::TimedOut
    );
    // Someone flushes everything while f2bd is down; the restart restores from the store
    // before it says READY=1.
    pair.srv.sh("nft flush ruleset");
    assert_eq!(
        connect(&pair.atk, Pair::ATK4, Pair::SRV4, PORT),
        Outcome::Connected
    );
    let d = restart(&pair.srv, F2bd::in_home(home));
    assert!(in_set(&pair.srv, "webby-v4", Pair::ATK4));
    assert_eq!(
        connect(&pair.atk, Pair::ATK4, Pair::SRV4, PORT),
        Outcome::TimedOut
    );
    // And while it runs: flush → back within a second, noticed from netlink events.
    for cmd in ["nft flush ruleset", "nft delete table inet f2b"] {
        pair.srv.sh(cmd);
        let took = wait_for(
            Duration::from_secs(1),
            &format!("repair after `{cmd}`"),
            || in_set(&pair.srv, "webby-v4", Pair::ATK4),
        );
        eprintln!("`{cmd}` repaired in {took:?}");
    }
    assert_eq!(
        connect(&pair.atk, Pair::ATK4, Pair::SRV4, PORT),
        Outcome::TimedOut
    );
    d.stop();
}

/// 100,000 bans in the store come back into the kernel at start, in one pass, before READY=1.
#[test]
fn start_restores_100000_bans_from_the_store() {
    if !root_and_tools_or_skip("start_restores_100000_bans_from_the_store") {
        return;
    }
    use f2b::firewall::Firewall;
    let ns = NetNs::new();
    let f2bd = F2bd::with_config(CFG);
    {
        let mut s = f2b::store::Store::open(&f2bd.home().join("state")).unwrap();
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
    let d = restart(&ns, f2bd);
    eprintln!("f2bd READY {:?} after start", t.elapsed());
    let in_kernel = ns.run(|| {
        f2b::firewall::nft::Nftables::new()
            .unwrap()
            .list()
            .unwrap()
            .len()
    });
    assert_eq!(in_kernel, 100_000);
    d.stop();
}

/// A SIGTERM right after READY=1 killed f2bd by the signal's default action (no STOPPING=1,
/// exit by signal 15): READY was sent by a task started before the handler was installed. The
/// memory bench stops f2bd as soon as it is ready and hit it. `stop` checks a clean exit.
#[test]
fn sigterm_right_after_ready_stops_f2bd_cleanly() {
    for _ in 0..3 {
        F2bd::with_config(CFG).start().stop();
    }
}

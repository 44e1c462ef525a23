//! Regression tests for what hostile and first-use testing found (issue 10), each named after
//! the bug, on real journal files and the real engine (dry-run firewall).

mod common;

use std::time::Duration;

use common::journald::{self, Journald};
use common::*;
use f2b::engine::{Command, CommandError};
use f2b::jail::Origin;
use f2b::source::export::ExportEntry;
use f2b::source::StartAt;

fn now() -> u64 {
    f2b::engine::now_us()
}

fn other(t: u64, i: u32) -> ExportEntry {
    ExportEntry::service(
        t,
        "cron.service",
        "CRON",
        100 + i,
        "pam_unix(cron:session): session opened",
    )
}

/// 10.6: with no entry of the jails' units in the journal at start (a new host, a vacuumed
/// journal), the first write after the start lost all but its first entry, for good: three
/// failures written at once, one counted. As on a host: the real f2bd follows a real journald's
/// journal that holds only journald's own entries; an sshd-like writer in sshd.service's
/// cgroup then logs three failures at once. Five fresh starts (new journald, new state): each
/// bans. (With the old positioning, `seek_tail` + `previous()` under the routes' matches, the
/// first start ends at "0 banned, 1 failure".)
#[test]
fn failures_written_at_once_after_a_start_at_the_tail_all_count() {
    if !is_root() {
        eprintln!("SKIP: needs root (a private journald in mount and cgroup namespaces)");
        return;
    }
    if let Some(why) = journald::unavailable().or_else(|| {
        (!have("logger")).then(|| "logger is missing (apt install bsdutils)".to_string())
    }) {
        eprintln!("SKIP: {why}");
        return;
    }
    // testssh takes sshd.service's and ssh.service's entries: none of journald's own (the
    // shipped sshd filter also takes every root process's entries with `_UID=0`, journald's
    // included, so that its journal is never empty of them).
    let config =
        "[jail.ssh]\nenabled = true\nfilter = \"testssh\"\nmaxretry = 3\nfindtime = \"1h\"\n";
    for round in 0..5 {
        let journald = Journald::start();
        let mut sshd = journald.logger("system.slice/sshd.service", None, "sshd");
        let d = F2bd::on_journal(config, &journald.journal_dir()).start();
        let ip = format!("198.51.100.{}", 10 + round);
        let lines: Vec<String> = (0..3)
            .map(|i| format!("Failed password for root from {ip} port {} ssh2", 40000 + i))
            .collect();
        sshd.send(&lines);
        d.wait_status(
            Duration::from_secs(10),
            &format!("a ban after three failures written at once (fresh start {round})"),
            |s| s.contains(" 1 banned, 3 failures"),
        );
        sshd.close();
        d.stop();
    }
}

/// 10.7: `f2b stop JAIL; f2b start JAIL` left the jail deaf: the restarted reader tagged its
/// batches with route generation 0 while the engine expected its current one.
#[tokio::test]
async fn a_jail_stopped_and_started_again_still_bans() {
    let dir = tempfile::tempdir().unwrap();
    append(dir.path(), "a.journal", vec![other(now() - S, 1)]);
    let s = settings("[jail.sshd]\nenabled = true\nmaxretry = 2\nfindtime = \"1h\"\n");
    let mut r = start(s, dir.path(), StartAt::Tail, true);
    for enabled in [false, true] {
        r.handle
            .call(|reply| Command::SetEnabled {
                jail: "sshd".into(),
                enabled,
                reply,
            })
            .await
            .unwrap()
            .unwrap();
    }
    // SetEnabled answers once the new reader is positioned: write at once.
    let t = now();
    append(
        dir.path(),
        "a.journal",
        (0..2).map(|i| fail(t + i, "203.0.113.77")).collect(),
    );
    assert_eq!(r.next_ban(10).await.1, "203.0.113.77");
    r.shutdown().await;
}

/// 10.2: with `ipv6_prefix = 64`, an attacker next to an ignored address got the whole /64
/// banned, the ignored address included.
#[tokio::test]
async fn a_prefix_ban_never_covers_an_ignored_address() {
    let dir = tempfile::tempdir().unwrap();
    let t = now() - 30 * S;
    let mut e: Vec<ExportEntry> = (0..3).map(|i| fail(t + i, "2001:db8:1:2::66")).collect();
    // A neighbour in a /64 that holds nothing ignored: aggregated as usual.
    e.extend((0..3).map(|i| fail(t + 10 + i, "2001:db8:9:9::5")));
    append(dir.path(), "a.journal", e);
    let s = settings(
        "[jail.sshd]\nenabled = true\nmaxretry = 3\nfindtime = \"1h\"\nipv6_prefix = 64\n\
         ignoreip = [\"2001:db8:1:2::1\"]\n",
    );
    let mut r = start(s, dir.path(), StartAt::Head, false);
    let bans = r.bans_until_quiet(Duration::from_secs(3)).await;
    let addrs: Vec<&str> = bans.iter().map(|(_, a)| a.as_str()).collect();
    assert_eq!(addrs, ["2001:db8:1:2::66", "2001:db8:9:9::/64"]);
}

/// 10.2: addresses that are never a client (unspecified, loopback, multicast, broadcast) are
/// never banned from log lines, and `::` does not become `::/64`.
#[tokio::test]
async fn unspecified_loopback_and_multicast_addresses_are_never_banned() {
    let dir = tempfile::tempdir().unwrap();
    let t = now() - 30 * S;
    let mut e = Vec::new();
    for (k, ip) in [
        "::",
        "0.0.0.0",
        "255.255.255.255",
        "224.0.0.9",
        "ff02::1",
        "127.0.0.2",
    ]
    .iter()
    .enumerate()
    {
        e.extend((0..3).map(|i| fail(t + k as u64 * 10 + i, ip)));
    }
    append(dir.path(), "a.journal", e);
    let s = settings(
        "[jail.sshd]\nenabled = true\nmaxretry = 3\nfindtime = \"1h\"\nipv6_prefix = 64\n\
         ignoreip = []\nignoreself = false\n",
    );
    let mut r = start(s, dir.path(), StartAt::Head, false);
    assert!(r.bans_until_quiet(Duration::from_secs(3)).await.is_empty());
}

/// 10.3: `Ban sshd 127.0.0.0/8` (or `::/16`, or the host's own /24) was accepted over D-Bus
/// while `Ban sshd 127.0.0.1` was refused.
#[tokio::test]
async fn a_manual_ban_of_a_prefix_holding_an_ignored_address_is_refused_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    append(dir.path(), "a.journal", vec![other(now(), 1)]);
    let s = settings(
        "[jail.sshd]\nenabled = true\nignoreip = [\"127.0.0.0/8\", \"::1\", \"192.0.2.10\"]\n",
    );
    let r = start(s, dir.path(), StartAt::Tail, true);
    let ban = |net: &str, force: bool| {
        let h = r.handle.clone();
        let addr = net.parse().unwrap();
        async move {
            h.call(|reply| Command::Ban {
                jail: "sshd".into(),
                addr,
                duration: Some(Duration::from_secs(60)),
                force,
                origin: Origin::Manual { uid: 0, user: None },
                reply,
            })
            .await
            .unwrap()
        }
    };
    for net in ["127.0.0.0/8", "::/16", "192.0.2.0/24", "127.0.0.1/32"] {
        assert!(
            matches!(ban(net, false).await, Err(CommandError::InvalidArgument(_))),
            "{net}"
        );
    }
    assert!(ban("192.0.2.0/24", true).await.is_ok());
    assert!(ban("198.51.100.0/24", false).await.is_ok());
    r.shutdown().await;
}

/// 10.9: a corrupt state database stopped f2bd ("file is not a database") and left the host
/// unprotected. Now the file is moved aside (kept), f2bd starts on an empty state, says so in
/// STATUS= and the journal, and bans.
#[test]
fn a_corrupt_state_database_is_moved_aside_and_f2bd_keeps_protecting() {
    let cfg = "[jail.ssh]\nenabled = true\nfilter = \"testssh\"\nmaxretry = 2\nfindtime = \"1h\"\n";
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("f2b.toml"), cfg).unwrap();
    std::fs::create_dir(home.path().join("state")).unwrap();
    std::fs::write(
        home.path().join("state/f2b.sqlite"),
        b"this is not a database, it was overwritten by something".repeat(100),
    )
    .unwrap();
    append(
        &home.path().join("journal"),
        "live.journal",
        vec![ssh(now(), "Server listening on :: port 22.")],
    );
    let d = F2bd::in_home(home).start();
    let status = d.wait_status(Duration::from_secs(10), "the warning", |s| {
        s.contains("WARNING") && s.contains("moved to")
    });
    assert!(status.contains("corrupt-"), "{status}");
    let kept: Vec<String> = std::fs::read_dir(d.dir.path().join("state"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        kept.iter().any(|n| n.starts_with("f2b.sqlite.corrupt-")),
        "{kept:?}"
    );
    assert!(d.log().contains("damaged"), "{}", d.log());
    let t = now();
    d.journal((0..2).map(|i| fail(t + i, "198.51.100.99")).collect());
    d.wait_status(Duration::from_secs(10), "a ban", |s| s.contains("1 banned"));
    d.stop();
}

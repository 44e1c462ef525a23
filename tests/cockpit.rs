//! The Cockpit page (`packaging/cockpit`) in a real browser, against the real daemon:
//! Debian's cockpit-ws serves the package with a bridge on a private system-like bus where a
//! real f2bd runs with the nftables firewall in a network namespace; Debian's headless
//! Chromium, driven over the DevTools protocol (`tests/cockpit/cdp.mjs`), opens the page.
//!
//! - [`page_shows_and_steers_f2bd`]: the sshd jail, a ban made over D-Bus, the chart from the
//!   history, live updates (signals, PropertiesChanged) without a reload; unbanning with the
//!   row's `[data-unban]` control removes the address from the nftables set; a ban from the
//!   form lands in it; the form refuses bad input before sending; settings change over Set.
//! - [`unprivileged_bridge_is_not_authorized`]: a session of uid 65534 sees everything, and
//!   every change it tries shows "not authorized" in place and changes nothing.
//! - [`ban_history_and_journal_matches_queries`]: the engine side of GetBanHistory and
//!   GetJournalMatches, without root.
//! - [`page_helpers_pass_their_node_tests`]: format.js's parsers under `node --test`.
//!
//! Screenshots go to `target/cockpit-test/`. Root and the Debian packages cockpit-ws,
//! cockpit-bridge, chromium, nodejs, dbus, nftables are needed; without them the tests say
//! why they skip.

#[path = "cockpit/browser.rs"]
mod browser;
mod common;
#[path = "cockpit/stack.rs"]
mod stack;

use std::path::{Path, PathBuf};
use std::process::Command;

use browser::{unban_button, Browser};
use common::{have, repo, F2bd, NetNs, PrivateBus, S};
use f2b::engine::api::Query;
use f2b::engine::{now_us, Command as EngineCommand};
use f2b::source::export::ExportEntry;
use serde_json::json;
use stack::{nft_table, wait_nft, CockpitWs};

const CONFIG: &str = r#"
[defaults]
ignoreself = false
ignoreip = []
[jail.sshd]
enabled = true
maxretry = 3
findtime = "10m"
bantime = "1h"
"#;

/// Hours ago of the sshd attacks in the journal (one attacker each): the chart's bars.
const ATTACK_HOURS: [u64; 5] = [20, 13, 6, 2, 0];

/// Print why and return false unless root and every tool is there.
fn can_run(test: &str) -> bool {
    if !common::is_root() {
        println!("SKIP {test}: needs root (f2bd owns org.f2b, nftables in a namespace)");
        return false;
    }
    for (path, pkg) in [
        (stack::COCKPIT_WS, "cockpit-ws"),
        ("/usr/bin/cockpit-bridge", "cockpit-bridge"),
        (browser::CHROMIUM, "chromium"),
        (
            f2b::source::export::JOURNAL_REMOTE,
            "systemd-journal-remote",
        ),
    ] {
        if !Path::new(path).exists() {
            println!("SKIP {test}: {path} is missing (apt install {pkg})");
            return false;
        }
    }
    for tool in ["dbus-daemon", "busctl", "nft", "ip"] {
        if !have(tool) {
            println!("SKIP {test}: {tool} is missing (bash packaging/build-deps.sh --tests)");
            return false;
        }
    }
    common::root_and_tools_or_skip(test)
}

/// sshd's own lines (journald's trusted fields as on Debian) for `ip`, `n` times at `t`.
fn sshd_failures(t: u64, ip: &str, n: u64) -> Vec<ExportEntry> {
    (0..n)
        .map(|i| {
            ExportEntry::service(
                t + i * S,
                "ssh.service",
                "sshd",
                4242,
                &format!("Failed password for root from {ip} port {} ssh2", 50000 + i),
            )
            .field("_UID", "0")
            .field("_COMM", "sshd")
            .field("_EXE", "/usr/sbin/sshd")
        })
        .collect()
}

/// A journal in `dir` with one attacker per hour of [`ATTACK_HOURS`] (198.51.100.H).
fn journal(dir: &Path) -> Vec<String> {
    let now = now_us();
    let mut entries = Vec::new();
    let mut addrs = Vec::new();
    for h in ATTACK_HOURS {
        let ip = format!("198.51.100.{}", h + 1);
        // Within the last hour: a few minutes ago, so that the ban is still active.
        let t = now - h * 3600 * S - 300 * S;
        entries.extend(sshd_failures(t, &ip, 3));
        addrs.push(ip);
    }
    common::append(dir, "sshd.journal", entries);
    addrs
}

fn in_set(table: &str, addr: &str) -> bool {
    table.contains(&format!(" {addr} "))
}

fn shots() -> PathBuf {
    repo().join("target/cockpit-test")
}

struct Setup {
    _journal: tempfile::TempDir,
    ns: NetNs,
    bus: PrivateBus,
    f2bd: F2bd,
    attackers: Vec<String>,
}

/// f2bd with the nftables firewall in a namespace of its own, on a private bus, reading the
/// journal of [`journal`] from its start.
fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let attackers = journal(dir.path());
    let ns = NetNs::new();
    let bus = PrivateBus::start();
    let f2bd = F2bd::on_journal(CONFIG, dir.path())
        .bus(&bus.address)
        .firewall("nftables")
        .netns(&ns)
        .read_from_start()
        .start();
    let newest = attackers.last().unwrap().clone();
    wait_nft(&ns, "the journal's newest attacker is not banned", |t| {
        in_set(t, &newest)
    });
    Setup {
        _journal: dir,
        ns,
        bus,
        f2bd,
        attackers,
    }
}

#[test]
fn page_shows_and_steers_f2bd() {
    if !can_run("page_shows_and_steers_f2bd") {
        return;
    }
    let s = setup();
    let dir = tempfile::tempdir().unwrap();
    // A ban made over D-Bus before the page opens.
    s.bus.busctl_ok(&[
        "call",
        "org.f2b",
        "/org/f2b",
        "org.f2b.Manager1",
        "Ban",
        "sst",
        "sshd",
        "192.0.2.10",
        "3600",
    ]);
    wait_nft(&s.ns, "the D-Bus ban is not in the set", |t| {
        in_set(t, "192.0.2.10")
    });
    let ws = CockpitWs::start(&s.bus, dir.path(), None);
    let mut b = Browser::start();
    b.goto(&ws.url(""));
    b.wait("document.body.dataset.loaded === 'yes'");

    // Overview: the sshd jail, its counters, the chart, the firewall.
    b.wait("document.querySelector('#jails tr[data-jail=\"sshd\"]')");
    let row = b.text("#jails tr[data-jail=\"sshd\"]");
    assert!(
        row.contains("Running") && row.contains("sshd:normal"),
        "{row}"
    );
    let bars = b.eval(
        "[...document.querySelectorAll('#chart rect')].reduce((n, r) => n + Number(r.dataset.count), 0)",
    );
    // Every journal ban (the ones 20 h ago too) and the D-Bus ban are in the last 24 hours.
    assert_eq!(bars, json!(ATTACK_HOURS.len() + 1), "bans in the chart");
    b.wait("document.querySelector('#stat-firewall').innerText.includes('nftables')");
    b.screenshot(&shots().join("overview.png"));

    // Bans: the D-Bus ban is listed with its unban control.
    b.eval("window.f2bNoReload = true");
    b.click("nav a[data-view=bans]");
    b.wait(&format!(
        "document.querySelector('{}')",
        unban_button("192.0.2.10")
    ));

    // Live: a ban made elsewhere appears without a reload.
    s.bus.busctl_ok(&[
        "call",
        "org.f2b",
        "/org/f2b",
        "org.f2b.Manager1",
        "Ban",
        "sst",
        "sshd",
        "192.0.2.11",
        "600",
    ]);
    b.wait(&format!(
        "document.querySelector('{}')",
        unban_button("192.0.2.11")
    ));

    // Unban from the page: gone from the page and from the nftables set.
    b.click(&unban_button("192.0.2.10"));
    b.wait(&format!(
        "!document.querySelector('{}')",
        unban_button("192.0.2.10")
    ));
    wait_nft(&s.ns, "unbanned from the page but still in the set", |t| {
        !in_set(t, "192.0.2.10")
    });
    assert!(
        in_set(&nft_table(&s.ns), "192.0.2.11"),
        "the other ban went too"
    );

    // The form refuses what f2bd would refuse, before sending anything.
    b.type_into("#ban-address", "10.0.0.1/8");
    b.click("#ban-submit");
    b.wait("document.querySelector('#ban-address-error').innerText.includes('host bits')");
    b.type_into("#ban-address", "192.0.2.99");
    b.type_into("#ban-duration", "ten minutes");
    b.click("#ban-submit");
    b.wait("document.querySelector('#ban-duration-error').innerText.includes('not a duration')");
    assert!(!in_set(&nft_table(&s.ns), "10.0.0.0/8"));

    // A ban from the form: in the table and in the set, for the duration asked.
    b.type_into("#ban-duration", "10m");
    b.click("#ban-submit");
    b.wait(&format!(
        "document.querySelector('{}')",
        unban_button("192.0.2.99")
    ));
    b.wait("document.querySelector('#ban-result').innerText.includes('banned in sshd')");
    wait_nft(&s.ns, "banned from the page but not in the set", |t| {
        in_set(t, "192.0.2.99")
    });
    let bans = s.bus.busctl_ok(&[
        "call",
        "org.f2b",
        "/org/f2b",
        "org.f2b.Manager1",
        "GetBans",
        "suu",
        "sshd",
        "0",
        "100",
    ]);
    assert!(bans.contains("\"192.0.2.99\""), "{bans}");
    // Search and sort.
    b.type_into("#ban-search", "192.0.2.9");
    b.wait("document.querySelectorAll('#bans tbody tr[data-address]').length === 1");
    b.type_into("#ban-search", "");
    b.click("[data-sort=address]");
    let order =
        b.eval("[...document.querySelectorAll('#bans tbody tr')].map(r => r.dataset.address)");
    let order: Vec<String> = serde_json::from_value(order).unwrap();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted, "sorted by address");
    b.screenshot(&shots().join("bans.png"));

    // The jail page: filter and journal matches, settings through Set, PropertiesChanged.
    b.goto(&ws.url("#/jail/sshd"));
    b.wait("document.querySelector('#jail-source li')");
    let source = b.text("#jail-source");
    assert!(source.contains("_SYSTEMD_UNIT=ssh.service"), "{source}");
    b.type_into("#set-MaxRetry", "5");
    b.eval("document.querySelector('#set-MaxRetry').dispatchEvent(new Event('change'))");
    b.wait("document.body.innerText.includes('saved')");
    let prop = s.bus.busctl_ok(&[
        "get-property",
        "org.f2b",
        "/org/f2b/jail/sshd",
        "org.f2b.Jail1",
        "MaxRetry",
    ]);
    assert_eq!(prop.trim(), "u 5");
    s.bus.busctl_ok(&[
        "set-property",
        "org.f2b",
        "/org/f2b/jail/sshd",
        "org.f2b.Jail1",
        "BanTime",
        "x",
        "7200",
    ]);
    b.wait("document.querySelector('#set-BanTime').value === '2h'");

    // History of an address from the journal.
    b.goto(&ws.url(&format!("#/history/{}", s.attackers[0])));
    b.wait("document.querySelector('#history-summary')");
    let summary = b.text("#history-summary");
    assert!(summary.contains("banned 1 time in sshd"), "{summary}");
    assert_eq!(
        b.eval("window.f2bNoReload"),
        json!(true),
        "the page was reloaded"
    );

    // Stop and start the jail from the overview: its bans are lifted, the page follows.
    b.goto(&ws.url("#/"));
    b.wait("document.querySelector('[data-toggle=sshd]')");
    b.click("[data-toggle=sshd]");
    b.wait("document.querySelector('#jails tr[data-jail=sshd]').innerText.includes('Stopped')");
    b.wait("document.querySelector('#stat-bans .f2b-stat-value').innerText === '0'");
    wait_nft(&s.ns, "a stopped jail's bans are still enforced", |t| {
        !in_set(t, "192.0.2.11")
    });
    b.click("[data-toggle=sshd]");
    b.wait("document.querySelector('#jails tr[data-jail=sshd]').innerText.includes('Running')");
    let enabled = s.bus.busctl_ok(&[
        "get-property",
        "org.f2b",
        "/org/f2b/jail/sshd",
        "org.f2b.Jail1",
        "Enabled",
    ]);
    assert_eq!(enabled.trim(), "b true");
    drop(b);
    drop(ws);
    let log = s.f2bd.log();
    assert!(!log.contains("ERROR"), "{log}");
}

#[test]
fn unprivileged_bridge_is_not_authorized() {
    if !can_run("unprivileged_bridge_is_not_authorized") {
        return;
    }
    let s = setup();
    let dir = tempfile::tempdir().unwrap();
    let victim = s.attackers.last().unwrap().clone();
    let ws = CockpitWs::start(&s.bus, dir.path(), Some(65534));
    let mut b = Browser::start();
    b.goto(&ws.url("#/bans"));
    b.wait("document.body.dataset.loaded === 'yes'");
    // Readers see everything.
    b.wait(&format!(
        "document.querySelector('{}')",
        unban_button(&victim)
    ));
    let before = s.bus.busctl_ok(&[
        "call",
        "org.f2b",
        "/org/f2b",
        "org.f2b.Manager1",
        "GetBans",
        "suu",
        "",
        "0",
        "100",
    ]);

    // Unban: refused in the row, the ban stays (page, D-Bus, nftables).
    b.click(&unban_button(&victim));
    b.wait(&format!(
        "document.querySelector('tr[data-address=\"{victim}\"]').innerText.includes('not authorized')"
    ));
    assert!(
        in_set(&nft_table(&s.ns), &victim),
        "unbanned although refused"
    );

    // Ban: refused under the form.
    b.type_into("#ban-address", "192.0.2.66");
    b.click("#ban-submit");
    b.wait("document.querySelector('#ban-result').innerText.includes('not authorized')");
    assert!(!in_set(&nft_table(&s.ns), "192.0.2.66"));
    b.screenshot(&shots().join("not-authorized.png"));

    // Stop and settings on the jail page: refused in place, nothing changes.
    b.goto(&ws.url("#/jail/sshd"));
    b.wait("document.querySelector('[data-toggle=sshd]')");
    b.click("[data-toggle=sshd]");
    b.wait("document.querySelector('.f2b-jail-header').innerText.includes('not authorized')");
    b.type_into("#set-MaxRetry", "9");
    b.eval("document.querySelector('#set-MaxRetry').dispatchEvent(new Event('change'))");
    b.wait("document.querySelector('#jail-settings').innerText.includes('not authorized')");
    let after = s.bus.busctl_ok(&[
        "call",
        "org.f2b",
        "/org/f2b",
        "org.f2b.Manager1",
        "GetBans",
        "suu",
        "",
        "0",
        "100",
    ]);
    assert_eq!(before, after, "the bans changed");
    for (prop, want) in [("Enabled", "b true"), ("MaxRetry", "u 3")] {
        let v = s.bus.busctl_ok(&[
            "get-property",
            "org.f2b",
            "/org/f2b/jail/sshd",
            "org.f2b.Jail1",
            prop,
        ]);
        assert_eq!(v.trim(), want, "{prop} changed");
    }
    drop(b);
    let log = ws.log();
    drop(ws);
    assert!(!log.contains("CRITICAL"), "{log}");
}

/// GetBanHistory's and GetJournalMatches' engine side: history of a time range, oldest first,
/// the newest `limit`; a jail's journal matches; an unknown jail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ban_history_and_journal_matches_queries() {
    if !Path::new(f2b::source::export::JOURNAL_REMOTE).exists() {
        println!("SKIP: systemd-journal-remote is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let now = now_us();
    let mut entries = Vec::new();
    // Bans 5 h and 3 h ago (long over: not announced, but in the history) and one now.
    for (i, ago) in [5 * 3600u64, 3 * 3600, 60].iter().enumerate() {
        entries
            .extend((0..3).map(|k| common::fail(now - ago * S + k * S, &format!("192.0.2.{i}"))));
    }
    common::append(dir.path(), "a.journal", entries);
    let settings = common::settings(
        "[defaults]\nignoreself = false\n[jail.ssh]\nenabled = true\nfilter = \"testssh\"\n\
         maxretry = 3\nfindtime = \"10m\"\nbantime = \"1h\"\n",
    );
    let mut run = common::start(settings, dir.path(), f2b::source::StartAt::Head, true);
    // Events come in order: once the newest ban is announced, the older ones are recorded.
    assert_eq!(run.next_ban(10).await.1, "192.0.2.2");
    let history = |since_us, limit| {
        run.handle.call(move |reply| {
            EngineCommand::Query(Query::BanHistory {
                since_us,
                limit,
                reply,
            })
        })
    };
    let all = history(0, 100).await.unwrap();
    let addrs: Vec<&str> = all.iter().map(|(_, a, _)| a.as_str()).collect();
    assert_eq!(
        addrs,
        ["192.0.2.0", "192.0.2.1", "192.0.2.2"],
        "oldest first"
    );
    assert!(all.iter().all(|(j, _, _)| j == "ssh"));
    let recent = history(now - 4 * 3600 * S, 100).await.unwrap();
    assert_eq!(recent.len(), 2, "{recent:?}");
    let newest = history(0, 1).await.unwrap();
    assert_eq!(newest[0].1, "192.0.2.2", "the limit keeps the newest");
    let matches = run
        .handle
        .call(|reply| {
            EngineCommand::Query(Query::JournalMatches {
                jail: "ssh".into(),
                reply,
            })
        })
        .await
        .unwrap()
        .unwrap();
    assert!(
        !matches.is_empty() && matches.iter().all(|m| m.contains('=')),
        "{matches:?}"
    );
    let unknown = run
        .handle
        .call(|reply| {
            EngineCommand::Query(Query::JournalMatches {
                jail: "nope".into(),
                reply,
            })
        })
        .await
        .unwrap();
    assert!(unknown.is_err());
    run.shutdown().await;
}

#[test]
fn page_helpers_pass_their_node_tests() {
    if !have("node") {
        println!("SKIP: node is not installed (apt install nodejs)");
        return;
    }
    let out = Command::new("node")
        .arg("--test")
        .arg(repo().join("tests/cockpit/format.test.mjs"))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("# fail 0"), "{text}");
}

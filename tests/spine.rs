//! The detection spine end to end: real journal files → reader → filter → jail → ban decisions.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use f2b::engine::{now_us, Command};
use f2b::source::{self, JournalSpec, Route, SourceConfig, SourceEvent, StartAt};

const TWO_JAILS: &str = r#"
[defaults]
maxretry = 3
findtime = "10m"
bantime = "1h"
ignoreip = ["192.0.2.0/24", "2001:db8:ffff::/48"]
[jail.ssh]
enabled = true
filter = "testssh"
[jail.web]
enabled = true
filter = "testweb"
maxretry = 2
"#;

fn sorted(v: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut v = v;
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_are_routed_to_the_jails_of_their_unit() {
    let dir = tempfile::tempdir().unwrap();
    let t = now_us() - 60 * S;
    append(
        dir.path(),
        "x.journal",
        vec![
            fail(t, "198.51.100.1"),
            web(t + 1, "login failed for user \"bob\" from 198.51.100.2"),
            // A web-style message from sshd.service and an ssh-style one from web.service:
            // neither counts, since each jail reads only its units.
            ssh(t + 2, "login failed for user \"bob\" from 198.51.100.3"),
            web(
                t + 3,
                "Failed password for root from 198.51.100.4 port 1 ssh2",
            ),
            fail(t + 4, "198.51.100.1"),
            web(t + 5, "login failed for user \"eve\" from 198.51.100.2"),
            ssh(t + 6, "login failed for user \"bob\" from 198.51.100.3"),
            web(
                t + 7,
                "Failed password for root from 198.51.100.4 port 1 ssh2",
            ),
            fail(t + 8, "198.51.100.1"),
            ssh(t + 9, "login failed for user \"bob\" from 198.51.100.3"),
            web(
                t + 10,
                "Failed password for root from 198.51.100.4 port 1 ssh2",
            ),
            // healthcheck is an ignoreregex of testweb.
            web(
                t + 11,
                "login failed for user \"healthcheck\" from 198.51.100.5",
            ),
            web(
                t + 12,
                "login failed for user \"healthcheck\" from 198.51.100.5",
            ),
        ],
    );
    let r = start(settings(TWO_JAILS), dir.path(), StartAt::Head, false);
    let bans = sorted(r.finish().await);
    assert_eq!(
        bans,
        vec![
            ("ssh".to_string(), "198.51.100.1".to_string()),
            ("web".to_string(), "198.51.100.2".to_string())
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_sees_appends_new_files_and_rotation_without_double_counting() {
    let dir = tempfile::tempdir().unwrap();
    let t = now_us();
    append(
        dir.path(),
        "x.journal",
        vec![fail(t - 5 * S, "198.51.100.9")],
    );
    let mut r = start(settings(TWO_JAILS), dir.path(), StartAt::Head, true);
    r.ready().await;
    // Append to the same file.
    append(
        dir.path(),
        "x.journal",
        vec![
            fail(t - 4 * S, "198.51.100.9"),
            fail(t - 3 * S, "198.51.100.9"),
        ],
    );
    assert_eq!(r.next_ban(10).await, ("ssh".into(), "198.51.100.9".into()));
    // A new file appears in the directory.
    append(
        dir.path(),
        "y.journal",
        (0..3)
            .map(|i| fail(t - 2 * S + i, "198.51.100.10"))
            .collect(),
    );
    assert_eq!(r.next_ban(10).await, ("ssh".into(), "198.51.100.10".into()));
    // Rotation as journald does it: the active file, read to its end, is archived (renamed)
    // and a new one begins.
    append(
        dir.path(),
        "x.journal",
        vec![
            fail(t - S, "198.51.100.11"),
            fail(t - S + 1, "198.51.100.11"),
        ],
    );
    r.wait_failed(8).await;
    std::fs::rename(
        dir.path().join("x.journal"),
        dir.path()
            .join("x@0123456789abcdef0123456789abcdef-0000000000000001-0005f0f0f0f0f0f0.journal~"),
    )
    .unwrap();
    append(dir.path(), "x.journal", vec![fail(t, "198.51.100.11")]);
    assert_eq!(r.next_ban(10).await, ("ssh".into(), "198.51.100.11".into()));
    // A later entry is counted once everything before it was read: nothing was counted twice,
    // 10 failures seen, 3 bans.
    append(dir.path(), "x.journal", vec![fail(t + 1, "198.51.100.12")]);
    let jails = r.wait_failed(10).await;
    let ssh = jails.iter().find(|j| j.name == "ssh").unwrap();
    assert_eq!(ssh.total_failed, 10);
    assert_eq!(ssh.total_banned, 3);
    assert!(r.bans_so_far().is_empty());
    r.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starting_at_the_tail_ignores_the_past() {
    let dir = tempfile::tempdir().unwrap();
    let t = now_us();
    append(
        dir.path(),
        "x.journal",
        (0..5)
            .map(|i| fail(t - 10 * S + i, "198.51.100.20"))
            .collect(),
    );
    let mut r = start(settings(TWO_JAILS), dir.path(), StartAt::Tail, true);
    r.ready().await;
    append(
        dir.path(),
        "x.journal",
        vec![fail(t, "198.51.100.20"), fail(t + 1, "198.51.100.20")],
    );
    let jails = r.wait_failed(2).await;
    let ssh = jails.iter().find(|j| j.name == "ssh").unwrap();
    assert_eq!(ssh.total_failed, 2, "old entries were counted");
    assert!(r.bans_so_far().is_empty(), "old entries were counted");
    append(dir.path(), "x.journal", vec![fail(t + 2, "198.51.100.20")]);
    assert_eq!(r.next_ban(10).await.1, "198.51.100.20");
    r.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignoreip_ipv6_and_prefix_aggregation() {
    let dir = tempfile::tempdir().unwrap();
    let t = now_us() - 60 * S;
    let mut e = Vec::new();
    for i in 0..3 {
        e.push(fail(t + i, "192.0.2.33")); // ignoreip 192.0.2.0/24
        e.push(fail(t + i, "2001:db8:ffff:1::5")); // ignoreip 2001:db8:ffff::/48
        e.push(fail(t + i, "2001:db8:1::1")); // plain v6
        e.push(fail(t + i, &format!("2001:db8:2:3::{}", i + 1))); // three hosts of one /64
    }
    append(dir.path(), "x.journal", e);
    let text = format!("{TWO_JAILS}\nipv6_prefix = 64\n");
    let text = text.replace(
        "[jail.web]\nenabled = true\nfilter = \"testweb\"\nmaxretry = 2\nipv6_prefix = 64\n",
        "[jail.web]\nenabled = true\nfilter = \"testweb\"\nmaxretry = 2\n",
    );
    let text = text.replace(
        "[jail.ssh]\nenabled = true\nfilter = \"testssh\"\n",
        "[jail.ssh]\nenabled = true\nfilter = \"testssh\"\nipv6_prefix = 64\n",
    );
    let r = start(settings(&text), dir.path(), StartAt::Head, false);
    let bans: BTreeSet<String> = r.finish().await.into_iter().map(|b| b.1).collect();
    assert_eq!(
        bans,
        BTreeSet::from([
            "2001:db8:1::/64".to_string(),
            "2001:db8:2:3::/64".to_string()
        ])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_address_in_user_name_is_not_banned() {
    let dir = tempfile::tempdir().unwrap();
    let t = now_us() - 60 * S;
    let e = (0..3)
        .map(|i| {
            ssh(
                t + i,
                "Invalid user admin from 10.0.0.1 from 203.0.113.9 port 22",
            )
        })
        .chain((0..3).map(|i| {
            ssh(
                t + 10 + i,
                "Failed password for x from 10.9.9.9 port 22 ssh2 from 203.0.113.10 port 22 ssh2",
            )
        }))
        .collect();
    append(dir.path(), "x.journal", e);
    let r = start(settings(TWO_JAILS), dir.path(), StartAt::Head, false);
    let bans: BTreeSet<String> = r.finish().await.into_iter().map(|b| b.1).collect();
    assert_eq!(
        bans,
        BTreeSet::from(["203.0.113.10".to_string(), "203.0.113.9".to_string()])
    );
}

/// Replaying a journal gives the decisions of a live run that saw the same entries, even
/// though the live run lifts bans by the wall clock and processes entries late.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_equals_live() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = "[jail.ssh]\nenabled = true\nfilter = \"testssh\"\nmaxretry = 3\nfindtime = \"1s\"\nbantime = \"1s\"\n";
    append(dir.path(), "x.journal", vec![ssh(now_us(), "hello")]);
    let live = start(settings(cfg), dir.path(), StartAt::Head, true);
    let addrs = ["198.51.100.71", "198.51.100.72", "2001:db8::73"];
    let mut entries = 1;
    for round in 0..40u64 {
        let t = now_us();
        let e: Vec<_> = (0..6u64)
            .map(|i| {
                if (round + i) % 3 == 0 {
                    ssh(t + i, "Accepted publickey for x from 192.0.2.1 port 1 ssh2")
                } else {
                    fail(t + i * 1000, addrs[((round * 7 + i) % 3) as usize])
                }
            })
            .collect();
        entries += e.len() as u64;
        append(dir.path(), "x.journal", e);
        // Wall-clock time passes between the bursts (bans of 1 s end in between).
        tokio::time::sleep(Duration::from_millis(120)).await;
    }
    live.wait_read(entries).await;
    let counters = |v: Vec<f2b::engine::JailInfo>| {
        v.iter()
            .map(|j| (j.total_failed, j.total_banned))
            .collect::<Vec<_>>()
    };
    let live_c = counters(live.handle.call(Command::ListJails).await.unwrap());
    live.shutdown().await;
    let replay = start(settings(cfg), dir.path(), StartAt::Head, true);
    replay.wait_read(entries).await;
    let replay_c = counters(replay.handle.call(Command::ListJails).await.unwrap());
    replay.shutdown().await;
    assert!(live_c[0].1 >= 5, "{live_c:?}");
    assert_eq!(live_c, replay_c);
}

/// Resuming from any batch's cursor yields exactly the rest: no gap, no double count.
#[test]
fn cursor_resume_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = now_us() - 3_000 * S;
    append(
        dir.path(),
        "x.journal",
        (0..500)
            .map(|i| fail(t0 + i * S, &format!("198.51.100.{}", i % 200)))
            .collect(),
    );
    let lib = f2b::filter::library::FilterLibrary::load(&[fixtures()]).unwrap();
    let def = lib.get("testssh").unwrap();
    let route = Route {
        jail: Arc::from("ssh"),
        matches: def.matches.clone(),
        filter: def.compile(None).unwrap(),
        report_missed: false,
    };
    let read = |start: StartAt| -> (Vec<u64>, Vec<String>) {
        let (tx, mut rx) = tokio::sync::mpsc::channel(64);
        let r = source::spawn(
            SourceConfig {
                spec: JournalSpec::Directory(dir.path().to_path_buf()),
                start,
                follow: false,
                batch: 37,
            },
            vec![route.clone()],
            tx,
        )
        .unwrap();
        let (mut times, mut cursors) = (Vec::new(), Vec::new());
        while let Some(ev) = rx.blocking_recv() {
            match ev {
                SourceEvent::Batch(b) => {
                    times.extend(b.hits.iter().map(|h| h.time_us));
                    cursors.push(b.cursor.unwrap());
                }
                SourceEvent::Ended(_) => break,
                SourceEvent::Warning(w) => panic!("{w}"),
                _ => {}
            }
        }
        r.stop();
        (times, cursors)
    };
    let (all, cursors) = read(StartAt::Head);
    assert_eq!(all.len(), 500);
    for (k, c) in cursors.iter().enumerate().step_by(3) {
        let (rest, _) = read(StartAt::Cursor(c.clone()));
        let done = 37 * (k + 1);
        assert_eq!(
            rest,
            all[done.min(500)..].to_vec(),
            "resume after batch {k}"
        );
    }
    // A cursor whose entry is gone: resume after its timestamp, with a warning.
    let gone = format!(
        "s=00000000000000000000000000000000;i=1;b=0f2b0f2b0f2b0f2b0f2b0f2b0f2b0f2b;m=1;t={:x};x=0",
        t0 + 99 * S + 1
    );
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let r = source::spawn(
        SourceConfig {
            spec: JournalSpec::Directory(dir.path().to_path_buf()),
            start: StartAt::Cursor(gone),
            follow: false,
            batch: 1000,
        },
        vec![route],
        tx,
    )
    .unwrap();
    let mut warned = false;
    let mut times = Vec::new();
    while let Some(ev) = rx.blocking_recv() {
        match ev {
            SourceEvent::Batch(b) => times.extend(b.hits.iter().map(|h| h.time_us)),
            SourceEvent::Warning(w) => warned = w.contains("skipped"),
            SourceEvent::Ended(_) => break,
            _ => {}
        }
    }
    r.stop();
    assert!(warned);
    assert_eq!(times, all[100..].to_vec());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_ban_unban_and_reload_keep_state() {
    let dir = tempfile::tempdir().unwrap();
    let cfgdir = tempfile::tempdir().unwrap();
    let path = cfgdir.path().join("f2b.toml");
    std::fs::write(&path, TWO_JAILS).unwrap();
    let t = now_us();
    append(
        dir.path(),
        "x.journal",
        vec![
            fail(t - 2 * S, "198.51.100.50"),
            fail(t - S, "198.51.100.50"),
        ],
    );
    let mut s = settings(TWO_JAILS);
    s.files = vec![path.clone()];
    let fw = f2b::firewall::FirewallHandle::spawn(|| {
        Ok(Box::new(f2b::firewall::DryRun::new()) as Box<dyn f2b::firewall::Firewall>)
    })
    .unwrap();
    let mut r = start_with(
        s,
        JournalSpec::Directory(dir.path().to_path_buf()),
        StartAt::Head,
        true,
        Some(fw.clone()),
    );
    r.ready().await;
    let until = r
        .handle
        .call(|reply| Command::Ban {
            origin: Default::default(),
            jail: "ssh".into(),
            addr: "203.0.113.77/32".parse().unwrap(),
            duration: Some(Duration::from_secs(60)),
            force: false,
            reply,
        })
        .await
        .unwrap()
        .unwrap();
    assert!(until > now_us());
    assert_eq!(r.next_ban(5).await.1, "203.0.113.77");
    assert_eq!(fw.list().await.unwrap().len(), 1);
    let n = r
        .handle
        .call(|reply| Command::Unban {
            origin: Default::default(),
            jail: None,
            addr: "203.0.113.77/32".parse().unwrap(),
            reply,
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 1);
    assert!(fw.list().await.unwrap().is_empty());
    let err = r
        .handle
        .call(|reply| Command::Ban {
            origin: Default::default(),
            jail: "nosuch".into(),
            addr: "203.0.113.77/32".parse().unwrap(),
            duration: None,
            force: false,
            reply,
        })
        .await
        .unwrap()
        .unwrap_err();
    assert!(err.to_string().contains("nosuch"));
    let err = r
        .handle
        .call(|reply| Command::Ban {
            origin: Default::default(),
            jail: "ssh".into(),
            addr: "192.0.2.1/32".parse().unwrap(),
            duration: None,
            force: false,
            reply,
        })
        .await
        .unwrap()
        .unwrap_err();
    assert!(err.to_string().contains("ignoreip"), "{err}");
    r.shutdown().await;
}

/// A jail over f2b's own ban history (recidive without parsing our log).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bans_sourced_jail_bans_repeat_offenders_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let t = now_us() - 600 * S;
    let cfg = "[jail.ssh]\nenabled = true\nfilter = \"testssh\"\nmaxretry = 2\nbantime = \"1s\"\n\
               [jail.web]\nenabled = true\nfilter = \"testweb\"\nmaxretry = 1\nbantime = \"1s\"\n\
               [jail.recidive]\nenabled = true\nsource = \"bans\"\nmaxretry = 3\nfindtime = \"1d\"\nbantime = \"1w\"\n";
    // Banned in ssh at t+0 and t+10, in web at t+20: the third ban anywhere → recidive.
    // Another address banned only twice is not a recidivist.
    let e = vec![
        fail(t, "198.51.100.99"),
        fail(t + 1, "198.51.100.99"),
        fail(t + 10 * S, "198.51.100.99"),
        fail(t + 10 * S + 1, "198.51.100.99"),
        web(t + 20 * S, "login failed for user \"x\" from 198.51.100.99"),
        fail(t + 30 * S, "198.51.100.98"),
        fail(t + 30 * S + 1, "198.51.100.98"),
        web(t + 40 * S, "login failed for user \"x\" from 198.51.100.98"),
    ];
    append(dir.path(), "x.journal", e);
    let r = start(settings(cfg), dir.path(), StartAt::Head, false);
    let bans = r.finish().await;
    let recidive: Vec<&String> = bans
        .iter()
        .filter(|(j, _)| j == "recidive")
        .map(|(_, a)| a)
        .collect();
    assert_eq!(recidive, vec!["198.51.100.99"]);
}

/// With more match terms than sd-journal evaluates quickly, every entry is read and routed
/// in-process: the decisions are the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_match_terms_route_in_process_alike() {
    let dir = tempfile::tempdir().unwrap();
    let t = now_us() - 60 * S;
    let mut e = Vec::new();
    for i in 0..3 {
        e.push(fail(t + i, "198.51.100.1"));
        e.push(web(
            t + i,
            "Failed password for root from 198.51.100.4 port 1 ssh2",
        ));
        e.push(ssh(
            t + i,
            "login failed for user \"bob\" from 198.51.100.3",
        ));
        e.push(web(
            t + i,
            "login failed for user \"bob\" from 198.51.100.2",
        ));
        e.push(f2b::source::export::ExportEntry::service(
            t + i,
            "other.service",
            "other",
            1,
            "login failed for user \"x\" from 198.51.100.5",
        ));
    }
    append(dir.path(), "x.journal", e);
    let extra: Vec<String> = (0..20)
        .map(|i| format!("\"_SYSTEMD_UNIT=unit{i}.service\""))
        .collect();
    let cfg = format!("{TWO_JAILS}extra_matches = [{}]\n", extra.join(", "));
    let r = start(settings(&cfg), dir.path(), StartAt::Head, false);
    let bans = sorted(r.finish().await);
    assert_eq!(
        bans,
        vec![
            ("ssh".to_string(), "198.51.100.1".to_string()),
            ("web".to_string(), "198.51.100.2".to_string())
        ]
    );
}

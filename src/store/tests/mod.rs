//! Tests of the store: commit semantics (here), windows ([`windows`]), totals and positions
//! ([`totals_positions`]), schema and migrations ([`schema`]), damage and recovery
//! ([`recover`]), the in-memory model of a commit ([`model`]) and the store thread
//! ([`handle`]).

mod handle;
mod model;
mod recover;
mod schema;
mod totals_positions;
mod windows;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use ipnet::IpNet;
use rusqlite::Connection;

use super::*;

pub(super) fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

pub(super) fn ban(
    jail: &str,
    n: &str,
    start: u64,
    end: Option<u64>,
    count: u32,
    failures: u32,
) -> StoredBan {
    StoredBan {
        jail: jail.into(),
        net: net(n),
        start_us: start,
        end_us: end,
        count,
        failures,
        origin: Origin::Local,
    }
}

pub(super) fn hist(n: &str, jail: &str, t: u64) -> HistoryEntry {
    HistoryEntry {
        net: net(n),
        jail: jail.into(),
        t_us: t,
        origin: Origin::Local,
    }
}

/// A snapshot with jail names resolved, sorted: what tests compare.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Owned {
    pub cursor: Option<String>,
    pub positions: BTreeMap<String, String>,
    pub bans: Vec<StoredBan>,
    pub history: Vec<HistoryEntry>,
    pub windows: Vec<(String, IpNet, Vec<u64>)>,
    pub totals: Vec<(String, Totals)>,
}

pub(super) fn owned(s: &Snapshot) -> Owned {
    let mut o = Owned {
        cursor: s.cursor.clone(),
        positions: s.positions.clone(),
        bans: s.bans.iter().map(|b| s.stored_ban(b)).collect(),
        history: s.history.iter().map(|h| s.history_entry(h)).collect(),
        windows: s
            .windows
            .iter()
            .map(|w| (s.jail(w.jail).to_string(), w.net, w.times.clone()))
            .collect(),
        totals: s
            .totals
            .iter()
            .map(|(j, t)| (s.jail(*j).to_string(), *t))
            .collect(),
    };
    o.bans
        .sort_by(|a, b| (&a.jail, a.net).cmp(&(&b.jail, b.net)));
    o.history.sort();
    o.windows.sort();
    o.totals.sort();
    o
}

pub(super) fn raw(dir: &Path) -> Connection {
    Connection::open(dir.join(DB_FILE)).unwrap()
}

#[test]
fn round_trip_of_every_field() {
    let dir = tempfile::tempdir().unwrap();
    let mut manual = ban("x", "2001:db8::7/128", 5, Some(2_000_000_000_000_000), 2, 2);
    manual.origin = Origin::Manual { uid: Some(1000) };
    let mut peer = ban("x", "::/0", 5, None, 2, 2);
    peer.origin = Origin::peer("web-2").unwrap();
    let bans = vec![
        ban(
            "sshd",
            "203.0.113.9/32",
            1_700_000_000_000_001,
            Some(1_800_000_000_000_000),
            3,
            5,
        ),
        ban("sshd", "2001:db8::/64", 1_700_000_000_000_002, None, 1, 0),
        ban(
            "nginx-auth",
            "198.51.100.0/24",
            7,
            Some(u64::MAX >> 1),
            u32::MAX,
            u32::MAX,
        ),
        ban("nginx-auth", "0.0.0.0/0", 0, Some(1), 0, 0),
        peer,
        manual,
    ];
    let mut imported = hist("2001:db8::/64", "recidive", 0);
    imported.origin = Origin::Import;
    let history = vec![
        hist("203.0.113.9/32", "sshd", 1_600_000_000_000_000),
        hist("203.0.113.9/32", "sshd", 1_700_000_000_000_001),
        imported,
    ];
    let w = |j: &str, n: &str, times: &[u64]| {
        times
            .iter()
            .map(|t| (j.to_string(), net(n), *t))
            .collect::<Vec<_>>()
    };
    let mut failures = w("sshd", "192.0.2.1/32", &[1, 2, 3]);
    failures.extend(w(
        "sshd",
        "2001:db8:1::/48",
        &[1_700_000_000_000_000, 1_700_000_000_000_500],
    ));
    let totals = Totals {
        failed: 7,
        banned: 2,
        ignored: 1,
    };
    {
        let mut s = Store::open(dir.path()).unwrap();
        assert_eq!(s.load(0).unwrap(), Snapshot::default());
        s.commit(&Commit {
            cursor: Some("s=abc;i=1;b=def;m=2;t=5f;x=9".into()),
            positions: vec![("file:/var/log/auth.log".into(), Some("8:3:1024:ab".into()))],
            bans_added: bans.clone(),
            history_added: history.clone(),
            failures_added: failures,
            totals_added: vec![("sshd".into(), totals)],
            ..Commit::default()
        })
        .unwrap();
        s.close().unwrap();
    }
    let s = Store::open(dir.path()).unwrap();
    assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
    let snap = s.load(1).unwrap();
    let mut bans = bans;
    // 0.0.0.0/0 ended at 1: not active at 1.
    bans.retain(|b| b.jail != "nginx-auth" || b.count != 0);
    bans.sort_by(|a, b| (&a.jail, a.net).cmp(&(&b.jail, b.net)));
    let mut history = history;
    history.sort();
    let cursor = "s=abc;i=1;b=def;m=2;t=5f;x=9".to_string();
    assert_eq!(
        owned(&snap),
        Owned {
            cursor: Some(cursor.clone()),
            positions: BTreeMap::from([
                ("file:/var/log/auth.log".into(), "8:3:1024:ab".into()),
                ("journal".into(), cursor),
            ]),
            bans,
            history,
            windows: vec![
                ("sshd".into(), net("192.0.2.1/32"), vec![1, 2, 3]),
                (
                    "sshd".into(),
                    net("2001:db8:1::/48"),
                    vec![1_700_000_000_000_000, 1_700_000_000_000_500]
                ),
            ],
            totals: vec![("sshd".into(), totals)],
        }
    );
    // History is loaded oldest first; jail names are stored once.
    assert!(snap.history.windows(2).all(|w| w[0].t_us <= w[1].t_us));
    let mut names = snap.jails.clone();
    names.sort();
    assert_eq!(names, vec!["nginx-auth", "recidive", "sshd", "x"]);
    assert_eq!(snap.totals_of("sshd"), totals);
    assert_eq!(snap.totals_of("x"), Totals::default());
}

#[test]
fn nets_are_canonical_and_times_clamped() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path()).unwrap();
    s.commit(&Commit {
        bans_added: vec![ban("j", "203.0.113.9/24", 1, Some(u64::MAX), 1, 1)],
        failures_added: vec![("j".into(), net("2001:db8::1/64"), u64::MAX)],
        ..Commit::default()
    })
    .unwrap();
    let snap = s.load(0).unwrap();
    assert_eq!(snap.bans[0].net, net("203.0.113.0/24"));
    assert_eq!(snap.bans[0].end_us, Some(i64::MAX as u64));
    assert_eq!(snap.windows[0].net, net("2001:db8::/64"));
    assert_eq!(snap.windows[0].times, vec![i64::MAX as u64]);
    // Removal by the non-canonical spelling finds the row.
    s.commit(&Commit {
        bans_removed: vec![("j".into(), net("203.0.113.77/24"))],
        windows_cleared: vec![("j".into(), net("2001:db8::2/64"))],
        ..Commit::default()
    })
    .unwrap();
    let snap = s.load(0).unwrap();
    assert!(snap.bans.is_empty() && snap.windows.is_empty());
}

#[test]
fn ban_upsert_replaces_every_field() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path()).unwrap();
    let first = ban("sshd", "192.0.2.1/32", 10, Some(20), 1, 5);
    let mut second = ban("sshd", "192.0.2.1/32", 30, None, 2, 3);
    second.origin = Origin::Manual { uid: None };
    let other_jail = ban("postfix", "192.0.2.1/32", 11, Some(21), 1, 4);
    s.commit(&Commit {
        bans_added: vec![first, other_jail.clone()],
        ..Commit::default()
    })
    .unwrap();
    s.commit(&Commit {
        bans_added: vec![second.clone()],
        ..Commit::default()
    })
    .unwrap();
    assert_eq!(owned(&s.load(0).unwrap()).bans, vec![other_jail, second]);
}

#[test]
fn ban_removal() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path()).unwrap();
    s.commit(&Commit {
        bans_added: vec![
            ban("sshd", "192.0.2.1/32", 1, None, 1, 1),
            ban("sshd", "192.0.2.2/32", 1, None, 1, 1),
            ban("other", "192.0.2.1/32", 1, None, 1, 1),
        ],
        ..Commit::default()
    })
    .unwrap();
    s.commit(&Commit {
        bans_removed: vec![
            ("sshd".into(), net("192.0.2.1/32")),
            ("sshd".into(), net("192.0.2.99/32")), // absent: ignored
            ("nojail".into(), net("192.0.2.2/32")),
        ],
        ..Commit::default()
    })
    .unwrap();
    let got: Vec<_> = owned(&s.load(0).unwrap())
        .bans
        .into_iter()
        .map(|b| (b.jail, b.net))
        .collect();
    assert_eq!(
        got,
        vec![
            ("other".into(), net("192.0.2.1/32")),
            ("sshd".into(), net("192.0.2.2/32"))
        ]
    );
}

#[test]
fn remove_and_add_in_one_commit_leaves_it_added() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path()).unwrap();
    let b = ban("sshd", "192.0.2.1/32", 1, None, 1, 1);
    s.commit(&Commit {
        bans_added: vec![b.clone()],
        bans_removed: vec![("sshd".into(), b.net)],
        ..Commit::default()
    })
    .unwrap();
    assert_eq!(owned(&s.load(0).unwrap()).bans, vec![b]);
}

#[test]
fn expired_bans_are_not_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path()).unwrap();
    s.commit(&Commit {
        bans_added: vec![
            ban("j", "192.0.2.1/32", 1, Some(99), 1, 1),
            ban("j", "192.0.2.2/32", 1, Some(100), 1, 1),
            ban("j", "192.0.2.3/32", 1, Some(101), 1, 1),
            ban("j", "192.0.2.4/32", 1, None, 1, 1),
        ],
        ..Commit::default()
    })
    .unwrap();
    let got: Vec<_> = owned(&s.load(100).unwrap())
        .bans
        .into_iter()
        .map(|b| b.net)
        .collect();
    // Ending at `now` is over (as `ActiveBan::active_at`).
    assert_eq!(got, vec![net("192.0.2.3/32"), net("192.0.2.4/32")]);
    assert_eq!(
        s.load(0).unwrap().bans.len(),
        4,
        "still stored until purged"
    );
}

#[test]
fn jails_removed_drops_bans_windows_and_totals_but_not_history() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path()).unwrap();
    let one = Totals {
        failed: 1,
        ..Totals::default()
    };
    s.commit(&Commit {
        bans_added: vec![
            ban("gone", "192.0.2.1/32", 1, None, 1, 1),
            ban("gone", "192.0.2.2/32", 1, Some(50), 1, 1),
            ban("kept", "192.0.2.1/32", 1, None, 1, 1),
        ],
        failures_added: vec![
            ("gone".into(), net("192.0.2.3/32"), 1),
            ("kept".into(), net("192.0.2.3/32"), 1),
        ],
        history_added: vec![
            hist("192.0.2.1/32", "gone", 1),
            hist("192.0.2.1/32", "kept", 1),
        ],
        totals_added: vec![("gone".into(), one), ("kept".into(), one)],
        ..Commit::default()
    })
    .unwrap();
    s.commit(&Commit {
        jails_removed: vec!["gone".into(), "never-was".into()],
        ..Commit::default()
    })
    .unwrap();
    let snap = owned(&s.load(0).unwrap());
    assert_eq!(snap.bans, vec![ban("kept", "192.0.2.1/32", 1, None, 1, 1)]);
    assert_eq!(
        snap.windows,
        vec![("kept".into(), net("192.0.2.3/32"), vec![1])]
    );
    assert_eq!(snap.totals, vec![("kept".into(), one)]);
    assert_eq!(snap.history.len(), 2);
    // Removing a jail, then banning in a jail of the same name, in one commit: the ban stays.
    s.commit(&Commit {
        jails_removed: vec!["kept".into()],
        bans_added: vec![ban("kept", "192.0.2.9/32", 1, None, 1, 1)],
        totals_added: vec![("kept".into(), one)],
        ..Commit::default()
    })
    .unwrap();
    let snap = owned(&s.load(0).unwrap());
    assert_eq!(snap.bans.len(), 1);
    assert_eq!(snap.totals, vec![("kept".into(), one)]);
}

#[test]
fn purge_deletes_old_history_expired_bans_and_old_failures() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path()).unwrap();
    let f = |n: &str, t: u64| ("j".to_string(), net(n), t);
    s.commit(&Commit {
        bans_added: vec![
            ban("j", "192.0.2.1/32", 1, Some(500), 1, 1),
            ban("j", "192.0.2.2/32", 1, Some(1000), 1, 1),
            ban("j", "192.0.2.3/32", 1, Some(1001), 1, 1),
            ban("j", "192.0.2.4/32", 1, None, 1, 1),
        ],
        history_added: vec![
            hist("192.0.2.1/32", "j", 10),
            hist("192.0.2.1/32", "j", 99),
            hist("192.0.2.1/32", "j", 100),
            hist("192.0.2.2/32", "j", 2000),
        ],
        failures_added: vec![
            f("192.0.2.5/32", 50),
            f("192.0.2.5/32", 99),
            f("192.0.2.6/32", 50),
            f("192.0.2.6/32", 100),
        ],
        ..Commit::default()
    })
    .unwrap();
    let stats = s.purge(100, 1000).unwrap();
    assert_eq!(
        stats,
        PurgeStats {
            history: 2,
            bans: 2,
            failures: 3
        }
    );
    let snap = owned(&s.load(0).unwrap());
    assert_eq!(
        snap.bans.iter().map(|b| b.net).collect::<Vec<_>>(),
        vec![net("192.0.2.3/32"), net("192.0.2.4/32")]
    );
    assert_eq!(
        snap.history.iter().map(|h| h.t_us).collect::<Vec<_>>(),
        vec![100, 2000]
    );
    assert_eq!(
        snap.windows,
        vec![("j".into(), net("192.0.2.6/32"), vec![100])]
    );
    assert_eq!(s.purge(100, 1000).unwrap(), PurgeStats::default());
}

#[test]
fn history_of_finds_the_address_its_prefixes_and_prefixes_inside() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path()).unwrap();
    let mut manual = hist("203.0.113.9/32", "sshd", 30);
    manual.origin = Origin::Manual { uid: Some(0) };
    s.commit(&Commit {
        history_added: vec![
            manual.clone(),
            hist("203.0.113.0/24", "recidive", 20),
            hist("203.0.0.0/16", "x", 10),
            hist("203.0.113.10/32", "sshd", 40), // a neighbour
            hist("203.0.114.9/32", "sshd", 50),  // outside the /24
            hist("::ffff:203.0.113.9/128", "sshd", 60), // IPv6, same low bytes
            hist("2001:db8::/64", "sshd", 70),
            hist("2001:db8::5/128", "sshd", 80),
            hist("2001:db8:0:1::5/128", "sshd", 90),
            hist("203.0.113.9/32", "sshd", 30), // duplicate: stored once, first origin kept
        ],
        ..Commit::default()
    })
    .unwrap();
    assert_eq!(
        s.history_of(net("203.0.113.9/32")).unwrap(),
        vec![
            ("x".to_string(), 10),
            ("recidive".to_string(), 20),
            ("sshd".to_string(), 30)
        ]
    );
    assert_eq!(
        s.history_detail(net("203.0.113.0/24")).unwrap(),
        vec![
            hist("203.0.0.0/16", "x", 10),
            hist("203.0.113.0/24", "recidive", 20),
            manual,
            hist("203.0.113.10/32", "sshd", 40),
        ]
    );
    assert_eq!(
        s.history_detail(net("2001:db8::5/128")).unwrap(),
        vec![
            hist("2001:db8::/64", "sshd", 70),
            hist("2001:db8::5/128", "sshd", 80)
        ]
    );
    assert_eq!(
        s.history_detail(net("2001:db8::/64")).unwrap(),
        vec![
            hist("2001:db8::/64", "sshd", 70),
            hist("2001:db8::5/128", "sshd", 80)
        ]
    );
    assert_eq!(s.history_of(net("0.0.0.0/0")).unwrap().len(), 5);
    assert!(s.history_of(net("192.0.2.1/32")).unwrap().is_empty());
}

#[test]
fn state_dir_and_file_modes() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("a/b");
    let s = Store::open(&state).unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&state), 0o700);
    assert_eq!(mode(&dir.path().join("a")), 0o700);
    assert_eq!(mode(s.path()), 0o600);
    assert_eq!(s.path(), state.join("f2b.sqlite"));
    let mode: String = raw(&state)
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn corrupt_rows_are_reported_with_their_table() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let c = raw(dir.path());
    // Rows no commit writes: (the row, its table, what the message says).
    for (insert, table, says) in [
        // Host bits set under a /24.
        (
            "INSERT INTO bans VALUES ('sshd', x'cb007109', 24, 1, NULL, 1, 1, 'local')",
            "bans",
            "jail sshd",
        ),
        // An origin f2b does not know.
        (
            "INSERT INTO history VALUES (x'cb007109', 32, 'sshd', 1, 'martian')",
            "history",
            "\"martian\"",
        ),
        // A repeat count of a trillion failures at one µs.
        (
            "INSERT INTO failures VALUES ('sshd', x'cb007109', 32, 1, 1000000000000)",
            "failures",
            "repeat count",
        ),
    ] {
        c.execute_batch("DELETE FROM bans; DELETE FROM history; DELETE FROM failures")
            .unwrap();
        c.execute(insert, []).unwrap();
        let err = s.load(0).unwrap_err();
        match &err {
            StoreError::Corrupt { table: t, .. } => assert_eq!(*t, table, "{err}"),
            e => panic!("{table}: wrong error: {e}"),
        }
        assert!(err.to_string().contains(says), "{err}");
        assert!(err.is_damage());
    }
}

#[test]
fn full_durability_commits() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open_with(dir.path(), Durability::Full).unwrap();
    let sync: i64 = s
        .conn
        .query_row("PRAGMA synchronous", [], |r| r.get(0))
        .unwrap();
    assert_eq!(sync, 2);
    s.commit(&Commit {
        cursor: Some("c".into()),
        ..Commit::default()
    })
    .unwrap();
    let mut s = Store::open(dir.path()).unwrap();
    s.commit_many(
        [&Commit {
            cursor: Some("d".into()),
            ..Commit::default()
        }],
        Durability::Full,
    )
    .unwrap();
    let sync: i64 = s
        .conn
        .query_row("PRAGMA synchronous", [], |r| r.get(0))
        .unwrap();
    assert_eq!(sync, 1, "back to NORMAL after the durable commit");
    assert_eq!(s.load(0).unwrap().cursor.as_deref(), Some("d"));
}

/// The snapshot rows stay small: 100,000 bans and their history must fit the daemon's
/// 48 MB budget with room to spare (issue 10.5).
#[test]
fn snapshot_rows_are_compact() {
    use std::mem::size_of;
    assert!(size_of::<BanRow>() <= 80, "{}", size_of::<BanRow>());
    assert!(size_of::<HistoryRow>() <= 56, "{}", size_of::<HistoryRow>());
    assert!(size_of::<Origin>() <= 24, "{}", size_of::<Origin>());
}

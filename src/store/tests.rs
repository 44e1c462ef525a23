use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;

use ipnet::IpNet;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rusqlite::Connection;

use super::schema::{APPLICATION_ID, V1};
use super::*;

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn ban(jail: &str, n: &str, start: u64, end: Option<u64>, count: u32, failures: u32) -> StoredBan {
    StoredBan {
        jail: jail.into(),
        net: net(n),
        start_us: start,
        end_us: end,
        count,
        failures,
    }
}

fn sorted(mut s: Snapshot) -> Snapshot {
    s.bans
        .sort_by(|a, b| (&a.jail, a.net).cmp(&(&b.jail, b.net)));
    s.history.sort();
    s.windows.sort();
    s
}

fn raw(dir: &Path) -> Connection {
    Connection::open(dir.join(DB_FILE)).unwrap()
}

#[test]
fn round_trip_of_every_field() {
    let dir = tempfile::tempdir().unwrap();
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
        ban("x", "::/0", 5, None, 2, 2),
        ban("x", "2001:db8::7/128", 5, Some(2_000_000_000_000_000), 2, 2),
    ];
    let history = vec![
        (
            net("203.0.113.9/32"),
            "sshd".to_string(),
            1_600_000_000_000_000,
        ),
        (
            net("203.0.113.9/32"),
            "sshd".to_string(),
            1_700_000_000_000_001,
        ),
        (net("2001:db8::/64"), "recidive".to_string(), 0),
    ];
    let windows = vec![
        ("sshd".to_string(), net("192.0.2.1/32"), vec![1, 2, 3]),
        (
            "sshd".to_string(),
            net("2001:db8:1::/48"),
            vec![1_700_000_000_000_000, 1_700_000_000_000_500],
        ),
    ];
    {
        let mut s = Store::open(dir.path()).unwrap();
        assert_eq!(s.load(0).unwrap(), Snapshot::default());
        s.commit(&Commit {
            cursor: Some("s=abc;i=1;b=def;m=2;t=5f;x=9".into()),
            bans_added: bans.clone(),
            history_added: history.clone(),
            windows_set: windows.clone(),
            ..Commit::default()
        })
        .unwrap();
        s.close().unwrap();
    }
    let s = Store::open(dir.path()).unwrap();
    assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
    let got = sorted(s.load(1).unwrap());
    let want = sorted(Snapshot {
        cursor: Some("s=abc;i=1;b=def;m=2;t=5f;x=9".into()),
        // 0.0.0.0/0 ended at 1: not active at 1.
        bans: bans
            .into_iter()
            .filter(|b| b.jail != "nginx-auth" || b.count != 0)
            .collect(),
        history,
        windows,
    });
    assert_eq!(got, want);
    // History is loaded oldest first.
    let h = s.load(1).unwrap().history;
    assert!(h.windows(2).all(|w| w[0].2 <= w[1].2));
}

#[test]
fn nets_are_canonical_and_times_clamped() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path()).unwrap();
    s.commit(&Commit {
        bans_added: vec![ban("j", "203.0.113.9/24", 1, Some(u64::MAX), 1, 1)],
        windows_set: vec![("j".into(), net("2001:db8::1/64"), vec![u64::MAX])],
        ..Commit::default()
    })
    .unwrap();
    let snap = s.load(0).unwrap();
    assert_eq!(snap.bans[0].net, net("203.0.113.0/24"));
    assert_eq!(snap.bans[0].end_us, Some(i64::MAX as u64));
    assert_eq!(snap.windows[0].1, net("2001:db8::/64"));
    assert_eq!(snap.windows[0].2, vec![i64::MAX as u64]);
    // Removal by the non-canonical spelling finds the row.
    s.commit(&Commit {
        bans_removed: vec![("j".into(), net("203.0.113.77/24"))],
        ..Commit::default()
    })
    .unwrap();
    assert!(s.load(0).unwrap().bans.is_empty());
}

#[test]
fn ban_upsert_replaces_every_field() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path()).unwrap();
    let first = ban("sshd", "192.0.2.1/32", 10, Some(20), 1, 5);
    let second = ban("sshd", "192.0.2.1/32", 30, None, 2, 3);
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
    let got = sorted(s.load(0).unwrap()).bans;
    assert_eq!(got, vec![other_jail, second]);
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
    let got: Vec<_> = sorted(s.load(0).unwrap())
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
    assert_eq!(s.load(0).unwrap().bans, vec![b]);
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
    let got: Vec<_> = sorted(s.load(100).unwrap())
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
fn windows_replace_and_clear() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path()).unwrap();
    let w = |j: &str, n: &str, t: Vec<u64>| (j.to_string(), net(n), t);
    s.commit(&Commit {
        windows_set: vec![
            w("sshd", "192.0.2.1/32", vec![1, 2]),
            w("sshd", "192.0.2.2/32", vec![3]),
            w("sshd", "192.0.2.3/32", vec![4]),
            w("other", "192.0.2.1/32", vec![5]),
        ],
        ..Commit::default()
    })
    .unwrap();
    s.commit(&Commit {
        windows_set: vec![
            w("sshd", "192.0.2.1/32", vec![2, 6, 7]),
            w("sshd", "192.0.2.3/32", vec![]), // empty = clear
        ],
        windows_cleared: vec![
            ("sshd".into(), net("192.0.2.2/32")),
            ("sshd".into(), net("192.0.2.200/32")), // absent
        ],
        ..Commit::default()
    })
    .unwrap();
    assert_eq!(
        sorted(s.load(0).unwrap()).windows,
        vec![
            w("other", "192.0.2.1/32", vec![5]),
            w("sshd", "192.0.2.1/32", vec![2, 6, 7]),
        ]
    );
    let last: i64 = raw(dir.path())
        .query_row("SELECT last_us FROM windows WHERE jail = 'sshd'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(last, 7);
}

#[test]
fn jails_removed_drops_bans_and_windows_but_not_history() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path()).unwrap();
    s.commit(&Commit {
        bans_added: vec![
            ban("gone", "192.0.2.1/32", 1, None, 1, 1),
            ban("gone", "192.0.2.2/32", 1, Some(50), 1, 1),
            ban("kept", "192.0.2.1/32", 1, None, 1, 1),
        ],
        windows_set: vec![
            ("gone".into(), net("192.0.2.3/32"), vec![1]),
            ("kept".into(), net("192.0.2.3/32"), vec![1]),
        ],
        history_added: vec![
            (net("192.0.2.1/32"), "gone".into(), 1),
            (net("192.0.2.1/32"), "kept".into(), 1),
        ],
        ..Commit::default()
    })
    .unwrap();
    s.commit(&Commit {
        jails_removed: vec!["gone".into(), "never-was".into()],
        ..Commit::default()
    })
    .unwrap();
    let snap = sorted(s.load(0).unwrap());
    assert_eq!(snap.bans, vec![ban("kept", "192.0.2.1/32", 1, None, 1, 1)]);
    assert_eq!(
        snap.windows,
        vec![("kept".into(), net("192.0.2.3/32"), vec![1])]
    );
    assert_eq!(snap.history.len(), 2);
    // Removing a jail, then banning in a jail of the same name, in one commit: the ban stays.
    s.commit(&Commit {
        jails_removed: vec!["kept".into()],
        bans_added: vec![ban("kept", "192.0.2.9/32", 1, None, 1, 1)],
        ..Commit::default()
    })
    .unwrap();
    assert_eq!(s.load(0).unwrap().bans.len(), 1);
}

#[test]
fn purge_deletes_old_history_expired_bans_and_stale_windows() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path()).unwrap();
    s.commit(&Commit {
        bans_added: vec![
            ban("j", "192.0.2.1/32", 1, Some(500), 1, 1),
            ban("j", "192.0.2.2/32", 1, Some(1000), 1, 1),
            ban("j", "192.0.2.3/32", 1, Some(1001), 1, 1),
            ban("j", "192.0.2.4/32", 1, None, 1, 1),
        ],
        history_added: vec![
            (net("192.0.2.1/32"), "j".into(), 10),
            (net("192.0.2.1/32"), "j".into(), 99),
            (net("192.0.2.1/32"), "j".into(), 100),
            (net("192.0.2.2/32"), "j".into(), 2000),
        ],
        windows_set: vec![
            ("j".into(), net("192.0.2.5/32"), vec![50, 99]),
            ("j".into(), net("192.0.2.6/32"), vec![50, 100]),
        ],
        ..Commit::default()
    })
    .unwrap();
    // An empty window (f2b itself never writes one).
    raw(dir.path())
        .execute(
            "INSERT INTO windows VALUES ('j', x'c0000207', 32, '[]', 5000)",
            [],
        )
        .unwrap();
    let stats = s.purge(100, 1000).unwrap();
    assert_eq!(
        stats,
        PurgeStats {
            history: 2,
            bans: 2,
            windows: 2
        }
    );
    let snap = sorted(s.load(0).unwrap());
    assert_eq!(
        snap.bans.iter().map(|b| b.net).collect::<Vec<_>>(),
        vec![net("192.0.2.3/32"), net("192.0.2.4/32")]
    );
    assert_eq!(
        snap.history.iter().map(|h| h.2).collect::<Vec<_>>(),
        vec![100, 2000]
    );
    assert_eq!(
        snap.windows,
        vec![("j".into(), net("192.0.2.6/32"), vec![50, 100])]
    );
    assert_eq!(s.purge(100, 1000).unwrap(), PurgeStats::default());
}

#[test]
fn cursor_is_one_row_and_the_latest_wins() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path()).unwrap();
    assert_eq!(s.load(0).unwrap().cursor, None);
    let c = |x: Option<&str>| Commit {
        cursor: x.map(str::to_string),
        ..Commit::default()
    };
    s.commit(&c(Some("one"))).unwrap();
    assert_eq!(s.load(0).unwrap().cursor.as_deref(), Some("one"));
    // None leaves it (and an empty commit writes nothing at all).
    let before = s.transactions();
    s.commit(&c(None)).unwrap();
    assert_eq!(s.transactions(), before);
    assert_eq!(s.load(0).unwrap().cursor.as_deref(), Some("one"));
    s.commit(&c(Some("two"))).unwrap();
    s.commit_many(
        [&c(Some("three")), &c(Some("four")), &c(None)],
        Durability::Normal,
    )
    .unwrap();
    assert_eq!(s.load(0).unwrap().cursor.as_deref(), Some("four"));
    let rows: i64 = raw(dir.path())
        .query_row("SELECT count(*) FROM cursor", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 1);
}

#[test]
fn history_of_finds_the_address_its_prefixes_and_prefixes_inside() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path()).unwrap();
    let h = |n: &str, j: &str, t: u64| (net(n), j.to_string(), t);
    s.commit(&Commit {
        history_added: vec![
            h("203.0.113.9/32", "sshd", 30),
            h("203.0.113.0/24", "recidive", 20),
            h("203.0.0.0/16", "x", 10),
            h("203.0.113.10/32", "sshd", 40),        // a neighbour
            h("203.0.114.9/32", "sshd", 50),         // outside the /24
            h("::ffff:203.0.113.9/128", "sshd", 60), // IPv6, same low bytes
            h("2001:db8::/64", "sshd", 70),
            h("2001:db8::5/128", "sshd", 80),
            h("2001:db8:0:1::5/128", "sshd", 90),
            h("203.0.113.9/32", "sshd", 30), // duplicate: stored once
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
            h("203.0.0.0/16", "x", 10),
            h("203.0.113.0/24", "recidive", 20),
            h("203.0.113.9/32", "sshd", 30),
            h("203.0.113.10/32", "sshd", 40),
        ]
    );
    assert_eq!(
        s.history_detail(net("2001:db8::5/128")).unwrap(),
        vec![
            h("2001:db8::/64", "sshd", 70),
            h("2001:db8::5/128", "sshd", 80)
        ]
    );
    assert_eq!(
        s.history_detail(net("2001:db8::/64")).unwrap(),
        vec![
            h("2001:db8::/64", "sshd", 70),
            h("2001:db8::5/128", "sshd", 80)
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

/// A version-1 database as f2b 0.1 wrote it, made by hand (not through `MIGRATIONS`).
fn make_v1(dir: &Path) {
    let c = raw(dir);
    c.execute_batch(&format!(
        "PRAGMA application_id = {APPLICATION_ID};
         BEGIN;
         {V1}
         INSERT INTO bans VALUES ('sshd', x'cb007109', 32, 1000, 5000, 2, 5);
         INSERT INTO bans VALUES ('sshd', x'20010db8000000000000000000000000', 64, 1000, NULL, 1, 3);
         INSERT INTO history VALUES (x'cb007109', 32, 'sshd', 1000);
         INSERT INTO history VALUES (x'cb007109', 32, 'sshd', 10);
         INSERT INTO cursor VALUES (1, 's=1;i=2');
         INSERT INTO windows VALUES ('sshd', x'c0000201', 32, '[100,300,200]');
         INSERT INTO windows VALUES ('sshd', x'c0000202', 32, '[7]');
         PRAGMA user_version = 1;
         COMMIT;"
    ))
    .unwrap();
}

#[test]
fn migrates_a_hand_made_v1_database() {
    let dir = tempfile::tempdir().unwrap();
    make_v1(dir.path());
    let mut s = Store::open(dir.path()).unwrap();
    assert_eq!(s.schema_version().unwrap(), 2);
    let snap = sorted(s.load(2000).unwrap());
    assert_eq!(snap.cursor.as_deref(), Some("s=1;i=2"));
    assert_eq!(
        snap.bans,
        vec![
            ban("sshd", "203.0.113.9/32", 1000, Some(5000), 2, 5),
            ban("sshd", "2001:db8::/64", 1000, None, 1, 3),
        ]
    );
    assert_eq!(snap.history.len(), 2);
    assert_eq!(
        snap.windows,
        vec![
            ("sshd".into(), net("192.0.2.1/32"), vec![100, 300, 200]),
            ("sshd".into(), net("192.0.2.2/32"), vec![7]),
        ]
    );
    // The new column was backfilled: purge by age sees the newest failure, not the last one.
    let stats = s.purge(250, 0).unwrap();
    assert_eq!(stats.windows, 1);
    assert_eq!(stats.history, 1);
    assert_eq!(s.load(0).unwrap().windows.len(), 1);
    let idx: i64 = raw(dir.path())
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name IN ('windows_last', 'history_time')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(idx, 2);
    // Reopening migrates nothing more.
    drop(s);
    assert_eq!(
        Store::open(dir.path()).unwrap().schema_version().unwrap(),
        2
    );
}

#[test]
fn a_failed_migration_leaves_the_previous_version() {
    let dir = tempfile::tempdir().unwrap();
    make_v1(dir.path());
    // Sabotage step 2: its index name is taken.
    raw(dir.path())
        .execute_batch("CREATE INDEX history_time ON history (jail)")
        .unwrap();
    let err = Store::open(dir.path()).unwrap_err();
    assert!(
        matches!(err, StoreError::Migration { version: 2, .. }),
        "{err}"
    );
    let msg = err.to_string();
    assert!(msg.contains("f2b.sqlite"), "{msg}");
    assert!(
        msg.contains("version 2") && msg.contains("stays at version 1"),
        "{msg}"
    );
    let (v, cols): (i64, i64) = raw(dir.path())
        .query_row(
            "SELECT (SELECT user_version FROM pragma_user_version),
                    (SELECT count(*) FROM pragma_table_info('windows') WHERE name = 'last_us')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((v, cols), (1, 0), "step 2 rolled back whole");
}

#[test]
fn a_newer_schema_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path()).unwrap());
    raw(dir.path())
        .execute_batch(&format!("PRAGMA user_version = {}", SCHEMA_VERSION + 1))
        .unwrap();
    let before = std::fs::read(dir.path().join(DB_FILE)).unwrap();
    let err = Store::open(dir.path()).unwrap_err();
    match &err {
        StoreError::TooNew {
            found, supported, ..
        } => assert_eq!((*found, *supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION)),
        e => panic!("wrong error: {e}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains(&dir.path().join(DB_FILE).display().to_string()),
        "{msg}"
    );
    assert!(
        msg.contains("schema version 3") && msg.contains("newer"),
        "{msg}"
    );
    assert_eq!(err.path(), dir.path().join(DB_FILE));
    assert_eq!(std::fs::read(dir.path().join(DB_FILE)).unwrap(), before);
}

#[test]
fn foreign_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    raw(dir.path())
        .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
        .unwrap();
    let err = Store::open(dir.path()).unwrap_err();
    assert!(matches!(err, StoreError::Foreign { .. }), "{err}");
    raw(dir.path())
        .execute_batch("PRAGMA application_id = 7")
        .unwrap();
    let err = Store::open(dir.path()).unwrap_err();
    assert!(err.to_string().contains("application_id is 0x7"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(DB_FILE), vec![b'x'; 4096]).unwrap();
    let err = Store::open(dir.path()).unwrap_err();
    assert!(matches!(err, StoreError::Sqlite { .. }), "{err}");
    assert!(err.to_string().contains("f2b.sqlite"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("file"), b"").unwrap();
    let err = Store::open(&dir.path().join("file/sub")).unwrap_err();
    assert!(matches!(err, StoreError::CreateDir { .. }), "{err}");
}

#[test]
fn a_corrupt_row_is_reported_with_its_table() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    // Host bits set under a /24: f2b never writes that.
    raw(dir.path())
        .execute(
            "INSERT INTO bans VALUES ('sshd', x'cb007109', 24, 1, NULL, 1, 1)",
            [],
        )
        .unwrap();
    let err = s.load(0).unwrap_err();
    assert!(
        matches!(err, StoreError::Corrupt { table: "bans", .. }),
        "{err}"
    );
    assert!(err.to_string().contains("jail sshd"), "{err}");
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

/// The semantics of a commit, in memory.
#[derive(Default)]
struct Model {
    cursor: Option<String>,
    bans: BTreeMap<(String, IpNet), StoredBan>,
    history: BTreeSet<(IpNet, String, u64)>,
    windows: BTreeMap<(String, IpNet), Vec<u64>>,
}

impl Model {
    fn apply(&mut self, c: &Commit) {
        for j in &c.jails_removed {
            self.bans.retain(|k, _| &k.0 != j);
            self.windows.retain(|k, _| &k.0 != j);
        }
        for (j, n) in &c.bans_removed {
            self.bans.remove(&(j.clone(), n.trunc()));
        }
        for b in &c.bans_added {
            let mut b = b.clone();
            b.net = b.net.trunc();
            self.bans.insert((b.jail.clone(), b.net), b);
        }
        for (j, n) in &c.windows_cleared {
            self.windows.remove(&(j.clone(), n.trunc()));
        }
        for (j, n, t) in &c.windows_set {
            if t.is_empty() {
                self.windows.remove(&(j.clone(), n.trunc()));
            } else {
                self.windows.insert((j.clone(), n.trunc()), t.clone());
            }
        }
        for (n, j, t) in &c.history_added {
            self.history.insert((n.trunc(), j.clone(), *t));
        }
        if c.cursor.is_some() {
            self.cursor = c.cursor.clone();
        }
    }

    fn snapshot(&self) -> Snapshot {
        sorted(Snapshot {
            cursor: self.cursor.clone(),
            // As loaded at time 0.
            bans: self
                .bans
                .values()
                .filter(|b| b.end_us != Some(0))
                .cloned()
                .collect(),
            history: self.history.iter().cloned().collect(),
            windows: self
                .windows
                .iter()
                .map(|((j, n), t)| (j.clone(), *n, t.clone()))
                .collect(),
        })
    }
}

fn random_commit(rng: &mut StdRng, i: usize) -> Commit {
    let jails = ["a", "b", "c"];
    let nets = [
        "192.0.2.1/32",
        "192.0.2.2/32",
        "192.0.2.0/24",
        "2001:db8::/64",
        "2001:db8::1/128",
    ];
    let pick = |rng: &mut StdRng| {
        (
            jails[rng.random_range(0..jails.len())].to_string(),
            net(nets[rng.random_range(0..nets.len())]),
        )
    };
    let mut c = Commit::default();
    if rng.random_bool(0.7) {
        c.cursor = Some(format!("cursor-{i}"));
    }
    for _ in 0..rng.random_range(0..3) {
        let (jail, net) = pick(rng);
        let end = rng.random_bool(0.8).then(|| rng.random_range(0..1000));
        c.bans_added.push(StoredBan {
            jail,
            net,
            start_us: rng.random_range(0..1000),
            end_us: end,
            count: rng.random_range(0..5),
            failures: rng.random_range(0..10),
        });
    }
    for _ in 0..rng.random_range(0..3) {
        c.bans_removed.push(pick(rng));
    }
    for _ in 0..rng.random_range(0..2) {
        let (j, n) = pick(rng);
        c.history_added.push((n, j, rng.random_range(0..20)));
    }
    for _ in 0..rng.random_range(0..3) {
        let (j, n) = pick(rng);
        let len = rng.random_range(0..4);
        c.windows_set
            .push((j, n, (0..len).map(|_| rng.random_range(0..100)).collect()));
    }
    for _ in 0..rng.random_range(0..2) {
        c.windows_cleared.push(pick(rng));
    }
    if rng.random_bool(0.05) {
        c.jails_removed.push(pick(rng).0);
    }
    c
}

/// Commits applied one by one, grouped in random runs (as the worker groups them), and by the
/// in-memory model all give the same state.
#[test]
fn grouped_commits_equal_sequential_commits() {
    for seed in 0..8u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let commits: Vec<Commit> = (0..300).map(|i| random_commit(&mut rng, i)).collect();
        let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let mut one = Store::open(d1.path()).unwrap();
        let mut grouped = Store::open(d2.path()).unwrap();
        let mut model = Model::default();
        let mut i = 0;
        while i < commits.len() {
            let n = rng.random_range(1..20).min(commits.len() - i);
            let run = &commits[i..i + n];
            for c in run {
                one.commit(c).unwrap();
                model.apply(c);
            }
            grouped.commit_many(run, Durability::Normal).unwrap();
            i += n;
            let want = model.snapshot();
            assert_eq!(sorted(one.load(0).unwrap()), want, "seed {seed} at {i}");
            assert_eq!(sorted(grouped.load(0).unwrap()), want, "seed {seed} at {i}");
        }
        assert!(grouped.transactions() < one.transactions());
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn handle_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let (h, snap) = StoreHandle::spawn(dir.path()).unwrap();
        assert_eq!(snap, Snapshot::default());
        h.commit(Commit {
            cursor: Some("c1".into()),
            bans_added: vec![ban("sshd", "192.0.2.1/32", 1, Some(100), 1, 3)],
            history_added: vec![(net("192.0.2.1/32"), "sshd".into(), 1)],
            windows_set: vec![("sshd".into(), net("192.0.2.2/32"), vec![5])],
            ..Commit::default()
        })
        .await
        .unwrap();
        h.commit_durable(Commit {
            bans_added: vec![ban("sshd", "192.0.2.3/32", 2, None, 1, 0)],
            history_added: vec![(net("192.0.2.3/32"), "sshd".into(), 2)],
            ..Commit::default()
        })
        .await
        .unwrap();
        assert_eq!(
            h.history_of(net("192.0.2.1/32")).await.unwrap(),
            vec![("sshd".to_string(), 1)]
        );
        assert_eq!(
            h.history_detail(net("192.0.2.0/24")).await.unwrap().len(),
            2
        );
        assert_eq!(h.load(0).await.unwrap().bans.len(), 2);
        let stats = h.purge(2, 100).await.unwrap();
        assert_eq!((stats.history, stats.bans, stats.windows), (1, 1, 0));
        assert_eq!(
            h.stats(),
            HandleStats {
                commits: 2,
                transactions: 3
            }
        );
        let other = h.clone();
        h.close().await.unwrap();
        let err = other.commit(Commit::default()).await.unwrap_err();
        assert!(matches!(err, StoreError::WorkerGone { .. }), "{err}");
        assert!(err.to_string().contains("f2b.sqlite"), "{err}");
    });
    let (_h, snap) = StoreHandle::spawn_with(dir.path(), Durability::Normal, 0).unwrap();
    assert_eq!(snap.cursor.as_deref(), Some("c1"));
    assert_eq!(snap.bans, vec![ban("sshd", "192.0.2.3/32", 2, None, 1, 0)]);
}

#[test]
fn handle_groups_concurrent_commits_in_order() {
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let (h, _) = StoreHandle::spawn(dir.path()).unwrap();
        // Sent back to back: add, remove, add-again of one ban; the last cursor wins.
        let b = |c: u32| ban("j", "192.0.2.1/32", 1, None, c, 1);
        let commits = vec![
            Commit {
                cursor: Some("1".into()),
                bans_added: vec![b(1)],
                ..Commit::default()
            },
            Commit {
                cursor: Some("2".into()),
                bans_removed: vec![("j".into(), net("192.0.2.1/32"))],
                ..Commit::default()
            },
            Commit {
                cursor: Some("3".into()),
                bans_added: vec![b(3)],
                ..Commit::default()
            },
            Commit {
                bans_added: vec![ban("j", "192.0.2.2/32", 1, None, 1, 1)],
                ..Commit::default()
            },
            Commit {
                bans_removed: vec![("j".into(), net("192.0.2.2/32"))],
                ..Commit::default()
            },
        ];
        let mut tasks = tokio::task::JoinSet::new();
        for c in commits {
            let h = h.clone();
            // Spawned in order on a current-thread runtime: sent in order.
            tasks.spawn(async move { h.commit(c).await });
        }
        while let Some(r) = tasks.join_next().await {
            r.unwrap().unwrap();
        }
        let snap = h.load(0).await.unwrap();
        assert_eq!(snap.cursor.as_deref(), Some("3"));
        assert_eq!(snap.bans, vec![b(3)]);

        // Many at once: all written, in fewer transactions.
        let before = h.stats();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..500u32 {
            let h = h.clone();
            tasks.spawn(async move {
                h.commit(Commit {
                    cursor: Some(i.to_string()),
                    bans_added: vec![StoredBan {
                        jail: "many".into(),
                        net: IpNet::from(std::net::IpAddr::from(std::net::Ipv4Addr::from(
                            0x0a00_0000 + i,
                        ))),
                        start_us: 1,
                        end_us: None,
                        count: i,
                        failures: 1,
                    }],
                    ..Commit::default()
                })
                .await
            });
        }
        while let Some(r) = tasks.join_next().await {
            r.unwrap().unwrap();
        }
        let after = h.stats();
        assert_eq!(after.commits - before.commits, 500);
        assert!(after.transactions - before.transactions < 500, "{after:?}");
        let snap = h.load(0).await.unwrap();
        assert_eq!(snap.bans.len(), 501);
        assert_eq!(snap.cursor.as_deref(), Some("499"));
    });
}

#[test]
fn a_failing_commit_in_a_group_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path()).unwrap());
    raw(dir.path())
        .execute_batch(
            "CREATE TRIGGER poison BEFORE INSERT ON bans WHEN NEW.jail = 'poison'
             BEGIN SELECT RAISE(ABORT, 'poisoned'); END;",
        )
        .unwrap();
    rt().block_on(async {
        let (h, _) = StoreHandle::spawn(dir.path()).unwrap();
        let mut tasks = tokio::task::JoinSet::new();
        for (i, jail) in ["a", "poison", "b"].into_iter().enumerate() {
            let h = h.clone();
            tasks.spawn(async move {
                let r = h
                    .commit(Commit {
                        cursor: Some(i.to_string()),
                        bans_added: vec![ban(jail, "192.0.2.1/32", 1, None, 1, 1)],
                        ..Commit::default()
                    })
                    .await;
                (jail, r)
            });
        }
        while let Some(r) = tasks.join_next().await {
            let (jail, r) = r.unwrap();
            if jail == "poison" {
                let e = r.unwrap_err();
                assert!(
                    matches!(
                        e,
                        StoreError::Sqlite {
                            what: "cannot commit",
                            ..
                        }
                    ),
                    "{e}"
                );
                assert!(e.to_string().contains("poisoned"), "{e}");
            } else {
                r.unwrap();
            }
        }
        let snap = h.load(0).await.unwrap();
        let jails: Vec<_> = snap.bans.iter().map(|b| b.jail.as_str()).collect();
        assert_eq!(jails, vec!["a", "b"]);
        assert_eq!(snap.cursor.as_deref(), Some("2"));
        assert_eq!(h.stats().commits, 2);
    });
}

//! Migrations from hand-made databases of every older version; foreign and newer files.

use super::super::schema::{APPLICATION_ID, V1, V2};
use super::*;

/// A version-1 database as f2b 0.1 wrote it, made by hand (not through `MIGRATIONS`).
fn make_v1(dir: &Path) {
    raw(dir)
        .execute_batch(&format!(
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

/// A version-2 database (windows with `last_us`), with windows f2b would write and some it
/// would not (a tampered or half-written row must not stop the migration).
fn make_v2(dir: &Path) {
    make_v1(dir);
    raw(dir)
        .execute_batch(&format!(
            "BEGIN;
         {V2}
         INSERT INTO windows VALUES ('web', x'c0000203', 32, '[5,5,6]', 6);
         INSERT INTO windows VALUES ('web', x'c0000204', 32, 'not json', 0);
         INSERT INTO windows VALUES ('web', x'c0000205', 32, '[1,\"x\",-3,2.5,{{}},4]', 4);
         INSERT INTO windows VALUES ('web', x'c0000206', 32, '[]', 0);
         PRAGMA user_version = 2;
         COMMIT;"
        ))
        .unwrap();
}

#[test]
fn migrates_a_hand_made_v1_database() {
    let dir = tempfile::tempdir().unwrap();
    make_v1(dir.path());
    let mut s = Store::open(dir.path()).unwrap();
    assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
    let snap = owned(&s.load(2000).unwrap());
    assert_eq!(snap.cursor.as_deref(), Some("s=1;i=2"));
    assert_eq!(
        snap.positions.get(JOURNAL_POSITION).map(String::as_str),
        Some("s=1;i=2")
    );
    assert_eq!(
        snap.bans,
        vec![
            ban("sshd", "203.0.113.9/32", 1000, Some(5000), 2, 5),
            ban("sshd", "2001:db8::/64", 1000, None, 1, 3),
        ]
    );
    assert_eq!(
        snap.history,
        vec![
            hist("203.0.113.9/32", "sshd", 10),
            hist("203.0.113.9/32", "sshd", 1000)
        ]
    );
    assert_eq!(
        snap.windows,
        vec![
            ("sshd".into(), net("192.0.2.1/32"), vec![100, 200, 300]),
            ("sshd".into(), net("192.0.2.2/32"), vec![7]),
        ]
    );
    assert!(snap.totals.is_empty());
    // Purge by age sees every failure time.
    let stats = s.purge(250, 0).unwrap();
    assert_eq!((stats.failures, stats.history), (3, 1));
    assert_eq!(
        owned(&s.load(0).unwrap()).windows,
        vec![("sshd".into(), net("192.0.2.1/32"), vec![300])]
    );
    let names: Vec<String> = raw(dir.path())
        .prepare("SELECT name FROM sqlite_master ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        !names.iter().any(|n| n == "cursor" || n == "windows"),
        "{names:?}"
    );
    for want in ["failures_time", "history_time", "positions", "counters"] {
        assert!(names.iter().any(|n| n == want), "{want} missing: {names:?}");
    }
    // Reopening migrates nothing more.
    drop(s);
    assert_eq!(
        Store::open(dir.path()).unwrap().schema_version().unwrap(),
        SCHEMA_VERSION
    );
}

#[test]
fn migrates_a_hand_made_v2_database_converting_json_windows() {
    let dir = tempfile::tempdir().unwrap();
    make_v2(dir.path());
    let s = Store::open(dir.path()).unwrap();
    let snap = owned(&s.load(0).unwrap());
    assert_eq!(
        snap.windows,
        vec![
            ("sshd".into(), net("192.0.2.1/32"), vec![100, 200, 300]),
            ("sshd".into(), net("192.0.2.2/32"), vec![7]),
            // Repeated times kept.
            ("web".into(), net("192.0.2.3/32"), vec![5, 5, 6]),
            // Only the non-negative integers of a tampered window; unreadable ones dropped.
            ("web".into(), net("192.0.2.5/32"), vec![1, 4]),
        ]
    );
    // Bans and history keep everything and are 'local'.
    assert_eq!(snap.bans.len(), 2);
    assert!(snap.bans.iter().all(|b| b.origin == Origin::Local));
    assert_eq!(snap.history.len(), 2);
}

#[test]
fn a_failed_migration_leaves_the_previous_version() {
    let dir = tempfile::tempdir().unwrap();
    make_v2(dir.path());
    // Sabotage step 3: its table name is taken.
    raw(dir.path())
        .execute_batch("CREATE TABLE counters (x)")
        .unwrap();
    let err = Store::open(dir.path()).unwrap_err();
    assert!(
        matches!(err, StoreError::Migration { version: 3, .. }),
        "{err}"
    );
    let msg = err.to_string();
    assert!(msg.contains("f2b.sqlite"), "{msg}");
    assert!(
        msg.contains("version 3") && msg.contains("stays at version 2"),
        "{msg}"
    );
    let (v, windows, failures): (i64, i64, i64) = raw(dir.path())
        .query_row(
            "SELECT (SELECT user_version FROM pragma_user_version),
                    (SELECT count(*) FROM windows),
                    (SELECT count(*) FROM sqlite_master WHERE name = 'failures')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(
        (v, windows, failures),
        (2, 6, 0),
        "step 3 rolled back whole"
    );
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
        msg.contains(&format!("schema version {}", SCHEMA_VERSION + 1)) && msg.contains("newer"),
        "{msg}"
    );
    assert_eq!(err.path(), dir.path().join(DB_FILE));
    assert!(!err.is_damage());
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
    assert!(!err.is_damage());

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(DB_FILE), vec![b'x'; 4096]).unwrap();
    let err = Store::open(dir.path()).unwrap_err();
    assert!(matches!(err, StoreError::CorruptDatabase { .. }), "{err}");
    assert!(err.to_string().contains("f2b.sqlite"), "{err}");
    assert!(err.to_string().contains("not a database"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("file"), b"").unwrap();
    let err = Store::open(&dir.path().join("file/sub")).unwrap_err();
    assert!(matches!(err, StoreError::CreateDir { .. }), "{err}");
}

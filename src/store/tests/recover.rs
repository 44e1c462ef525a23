//! Issue 10.9: a damaged database is moved aside and f2b goes on with an empty state; what is
//! not damage is still refused untouched.

use std::fs;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use super::*;

/// A closed database with enough bans and history to span many pages; returns its size.
fn make_full(dir: &Path) -> u64 {
    let mut s = Store::open(dir).unwrap();
    let bans: Vec<StoredBan> = (0..3000u32)
        .map(|i| StoredBan {
            net: IpNet::from(std::net::IpAddr::from(std::net::Ipv4Addr::from(
                0x0a00_0000 + i,
            ))),
            ..ban("sshd", "0.0.0.0/32", 1, None, 1, 3)
        })
        .collect();
    s.commit(&Commit {
        cursor: Some("c".into()),
        history_added: bans
            .iter()
            .map(|b| HistoryEntry {
                net: b.net,
                jail: b.jail.clone(),
                t_us: 1,
                origin: Origin::Local,
            })
            .collect(),
        bans_added: bans,
        ..Commit::default()
    })
    .unwrap();
    s.close().unwrap();
    fs::metadata(dir.join(DB_FILE)).unwrap().len()
}

/// Files in `dir` whose name starts with `f2b.sqlite.corrupt-`.
fn moved(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("f2b.sqlite.corrupt-")
        })
        .collect();
    v.sort();
    v
}

/// Open with recovery: the damaged bytes are kept aside, the new state is empty and usable.
fn assert_recovers(dir: &Path, what: &str) {
    let damaged = fs::read(dir.join(DB_FILE)).unwrap();
    let (mut s, rec) = Store::open_or_recover(dir).unwrap();
    let rec = rec.unwrap_or_else(|| panic!("{what}: not recovered"));
    assert!(rec.cause.is_damage(), "{what}: {}", rec.cause);
    assert!(
        matches!(rec.cause, StoreError::CorruptDatabase { .. }),
        "{what}: {}",
        rec.cause
    );
    let name = rec.moved_to.file_name().unwrap().to_string_lossy();
    let stamp = name.strip_prefix("f2b.sqlite.corrupt-").unwrap();
    assert_eq!(stamp.len(), 15, "{name}");
    assert_eq!(&stamp[8..9], "T", "{name}");
    assert!(
        stamp.chars().filter(|c| c.is_ascii_digit()).count() == 14,
        "{name}"
    );
    assert_eq!(
        fs::read(&rec.moved_to).unwrap(),
        damaged,
        "{what}: kept as is"
    );
    assert_eq!(moved(dir)[0], rec.moved_to);
    let msg = rec.to_string();
    assert!(
        msg.contains("damaged") && msg.contains(&*name) && msg.contains("EMPTY"),
        "{msg}"
    );
    assert_eq!(s.load(0).unwrap(), Snapshot::default(), "{what}");
    s.commit(&Commit {
        cursor: Some("fresh".into()),
        ..Commit::default()
    })
    .unwrap();
    s.quick_check().unwrap();
    drop(s);
    // The next start finds a sound database: nothing more is moved.
    let (s, rec) = Store::open_or_recover(dir).unwrap();
    assert!(rec.is_none(), "{what}");
    assert_eq!(s.load(0).unwrap().cursor.as_deref(), Some("fresh"));
}

#[test]
fn a_corrupt_database_does_not_stop_f2b_truncated_file() {
    let dir = tempfile::tempdir().unwrap();
    let size = make_full(dir.path());
    assert!(size > 64 * 1024, "{size}");
    let f = fs::OpenOptions::new()
        .write(true)
        .open(dir.path().join(DB_FILE))
        .unwrap();
    f.set_len(size / 2).unwrap();
    drop(f);
    assert_recovers(dir.path(), "truncated to half");

    // Cut inside the first page: not even the header is whole.
    let dir = tempfile::tempdir().unwrap();
    make_full(dir.path());
    let f = fs::OpenOptions::new()
        .write(true)
        .open(dir.path().join(DB_FILE))
        .unwrap();
    f.set_len(60).unwrap();
    drop(f);
    assert_recovers(dir.path(), "truncated to 60 bytes");
}

#[test]
fn a_corrupt_database_does_not_stop_f2b_garbage_file() {
    let dir = tempfile::tempdir().unwrap();
    let garbage: Vec<u8> = (0..65536u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    fs::write(dir.path().join(DB_FILE), garbage).unwrap();
    let (s, rec) = Store::open_or_recover(dir.path()).unwrap();
    let rec = rec.unwrap();
    assert!(
        rec.cause.to_string().contains("not a database"),
        "{}",
        rec.cause
    );
    assert_eq!(moved(dir.path()), vec![rec.moved_to.clone()]);
    assert_eq!(s.load(0).unwrap(), Snapshot::default());
    drop(s);

    // A second damaged database in the same second gets a name of its own.
    fs::write(dir.path().join(DB_FILE), vec![b'x'; 4096]).unwrap();
    let (_, rec2) = Store::open_or_recover(dir.path()).unwrap();
    let rec2 = rec2.unwrap();
    assert_ne!(rec2.moved_to, rec.moved_to);
    assert_eq!(fs::read(&rec2.moved_to).unwrap(), vec![b'x'; 4096]);
}

#[test]
fn a_corrupt_database_does_not_stop_f2b_damaged_page() {
    let dir = tempfile::tempdir().unwrap();
    let size = make_full(dir.path());
    // Overwrite one page in the middle (not the header page) with garbage.
    let page = 4096u64;
    let f = fs::OpenOptions::new()
        .write(true)
        .open(dir.path().join(DB_FILE))
        .unwrap();
    let at = (size / page / 2) * page;
    f.write_all_at(&vec![0xA5; page as usize], at).unwrap();
    drop(f);
    // A plain open does not read that page…
    drop(Store::open(dir.path()).unwrap());
    // …the recovering open checks every page.
    assert_recovers(dir.path(), "a damaged page");
}

/// Damage found after the start: the commit that runs into it fails with a distinct error,
/// and `recover` moves the file aside and carries on with an empty database.
#[test]
fn damage_found_by_a_commit_is_reported_and_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let size = make_full(dir.path());
    let f = fs::OpenOptions::new()
        .write(true)
        .open(dir.path().join(DB_FILE))
        .unwrap();
    // Everything after the schema page.
    f.write_all_at(&vec![0xFF; (size - 4096) as usize], 4096)
        .unwrap();
    drop(f);
    let mut s = Store::open(dir.path()).unwrap();
    let err = s
        .commit(&Commit {
            bans_added: vec![ban("sshd", "192.0.2.1/32", 1, None, 1, 1)],
            ..Commit::default()
        })
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::CorruptDatabase {
                what: "cannot commit",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("damaged"), "{err}");
    let rec = s.recover(err).unwrap();
    assert_eq!(moved(dir.path())[0], rec.moved_to);
    s.commit(&Commit {
        bans_added: vec![ban("sshd", "192.0.2.1/32", 1, None, 1, 1)],
        ..Commit::default()
    })
    .unwrap();
    assert_eq!(s.load(0).unwrap().bans.len(), 1);
    assert_eq!(s.path(), dir.path().join(DB_FILE));
}

/// Not damage: a foreign database, a newer schema, a database path that is a directory.
/// Refused, and nothing is moved.
#[test]
fn what_is_not_damage_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    raw(dir.path())
        .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
        .unwrap();
    let err = Store::open_or_recover(dir.path()).unwrap_err();
    assert!(matches!(err, StoreError::Foreign { .. }), "{err}");
    assert!(moved(dir.path()).is_empty());

    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path()).unwrap());
    raw(dir.path())
        .execute_batch(&format!("PRAGMA user_version = {}", SCHEMA_VERSION + 1))
        .unwrap();
    let err = Store::open_or_recover(dir.path()).unwrap_err();
    assert!(matches!(err, StoreError::TooNew { .. }), "{err}");
    assert!(moved(dir.path()).is_empty());

    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join(DB_FILE)).unwrap();
    let err = Store::open_or_recover(dir.path()).unwrap_err();
    assert!(!err.is_damage(), "{err}");
    assert!(moved(dir.path()).is_empty());
    assert!(dir.path().join(DB_FILE).is_dir());
}

/// The store thread's start: damage found by the load (a row f2b cannot have written) is
/// recovered too; a sound database is loaded as is.
#[test]
fn spawn_or_recover_recovers_from_damage_found_by_the_load() {
    let dir = tempfile::tempdir().unwrap();
    make_full(dir.path());
    let (h, snap, rec) =
        StoreHandle::spawn_or_recover_with(dir.path(), Durability::Full, 0).unwrap();
    assert!(rec.is_none());
    assert_eq!(snap.bans.len(), 3000);
    drop(h);
    raw(dir.path())
        .execute(
            "INSERT INTO bans VALUES ('sshd', x'cb007109', 24, 1, NULL, 1, 1, 'local')",
            [],
        )
        .unwrap();
    let (_h, snap, rec) = StoreHandle::spawn_or_recover(dir.path()).unwrap();
    let rec = rec.unwrap();
    assert!(
        matches!(rec.cause, StoreError::Corrupt { table: "bans", .. }),
        "{}",
        rec.cause
    );
    assert_eq!(snap, Snapshot::default());
    assert_eq!(moved(dir.path()).first(), Some(&rec.moved_to));
}

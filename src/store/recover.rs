//! A damaged database must not stop the daemon: [`Store::open_or_recover`] moves a corrupt
//! database aside (kept for inspection) and starts an empty one; [`Store::recover`] does the
//! same for corruption found later (a commit failing with [`StoreError::CorruptDatabase`]).
//!
//! Only damage is recovered from: SQLite's "database disk image is malformed"
//! (`SQLITE_CORRUPT`), "file is not a database" (`SQLITE_NOTADB`), a failed
//! `PRAGMA quick_check`, or rows f2b cannot have written ([`StoreError::Corrupt`]). A foreign
//! or newer-schema database, a permission problem, a full disk or an I/O error is still an
//! error: moving the file would not help, or would destroy someone else's data.

use std::fmt;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::Connection;

use super::error::sql;
use super::{Store, StoreError};

/// What was done about a damaged database. Its [`fmt::Display`] is the loud warning to log.
#[derive(Debug)]
pub struct Recovered {
    /// The database path (a fresh, empty database is there now).
    pub path: PathBuf,
    /// Where the damaged database was moved (`f2b.sqlite.corrupt-YYYYmmddTHHMMSS`, UTC).
    pub moved_to: PathBuf,
    /// Its `-wal` and `-shm` files, moved beside it (`…corrupt-…-wal`), where they existed.
    pub also_moved: Vec<PathBuf>,
    /// What showed the damage.
    pub cause: StoreError,
}

impl fmt::Display for Recovered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the state database {} is damaged ({}); it was moved to {} and f2b continues with \
             an EMPTY state: stored bans, ban history, failure windows, totals and the journal \
             position are gone (inspect the moved file with sqlite3)",
            self.path.display(),
            self.cause,
            self.moved_to.display()
        )
    }
}

impl StoreError {
    /// The file is damaged: what [`Store::open_or_recover`] and [`Store::recover`] recover
    /// from by moving it aside.
    pub fn is_damage(&self) -> bool {
        matches!(
            self,
            StoreError::CorruptDatabase { .. } | StoreError::Corrupt { .. }
        )
    }
}

impl Store {
    /// [`Store::open`], but a damaged database (see the module docs; checked with
    /// `PRAGMA quick_check`) is moved aside with its `-wal` and `-shm` files and an empty one
    /// is created in its place; the `Some(Recovered)` says what happened, to be logged loudly.
    /// Foreign and newer databases are still refused untouched.
    pub fn open_or_recover(state_dir: &Path) -> Result<(Store, Option<Recovered>), StoreError> {
        let opened = Store::open(state_dir).and_then(|s| s.quick_check().map(|()| s));
        match opened {
            Ok(s) => Ok((s, None)),
            Err(cause) if cause.is_damage() => {
                let path = state_dir.join(super::DB_FILE);
                let recovered = move_aside(&path, cause)?;
                Ok((Store::open(state_dir)?, Some(recovered)))
            }
            Err(e) => Err(e),
        }
    }

    /// `PRAGMA quick_check`: reads every page; [`StoreError::CorruptDatabase`] if it finds
    /// damage.
    pub fn quick_check(&self) -> Result<(), StoreError> {
        let path = &self.path;
        let e = "integrity check";
        let mut stmt = self
            .conn
            .prepare("PRAGMA quick_check(20)")
            .map_err(sql(path, e))?;
        let found: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .and_then(|rows| rows.collect())
            .map_err(sql(path, e))?;
        if found.len() == 1 && found[0] == "ok" {
            return Ok(());
        }
        Err(StoreError::CorruptDatabase {
            path: path.clone(),
            what: "the integrity check failed",
            detail: found.join("; "),
        })
    }

    /// The database turned out damaged while running (`cause`, e.g. a commit that failed with
    /// [`StoreError::CorruptDatabase`]): close it, move it aside as
    /// [`Store::open_or_recover`] does, and continue on a fresh, empty database. The caller
    /// then writes the state it holds (its bans, windows, totals and positions) as a commit.
    pub fn recover(&mut self, cause: StoreError) -> Result<Recovered, StoreError> {
        let path = self.path.clone();
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let placeholder =
            Connection::open_in_memory().map_err(sql(&path, "cannot open a placeholder"))?;
        // Dropping the damaged connection closes it (errors are moot: it is being replaced).
        drop(std::mem::replace(&mut self.conn, placeholder));
        let recovered = move_aside(&path, cause)?;
        let fresh = Store::open_with(&dir, self.durability)?;
        let transactions = self.transactions;
        *self = fresh;
        self.transactions = transactions;
        Ok(recovered)
    }
}

/// Rename `db` and its `-wal`/`-shm` to `db.corrupt-STAMP[-N]…`, the WAL and SHM first: a
/// crash in between must not leave the old WAL beside a new database.
fn move_aside(db: &Path, cause: StoreError) -> Result<Recovered, StoreError> {
    let dir = db.parent().unwrap_or(Path::new("."));
    let name = db
        .file_name()
        .map_or_else(|| "f2b.sqlite".into(), |n| n.to_string_lossy().into_owned());
    let stamp = utc_stamp(SystemTime::now());
    let side = |suffix: &str| db.with_file_name(format!("{name}{suffix}"));
    let target = (1..)
        .map(|n| match n {
            1 => dir.join(format!("{name}.corrupt-{stamp}")),
            n => dir.join(format!("{name}.corrupt-{stamp}-{n}")),
        })
        .find(|t| {
            ["", "-wal", "-shm"]
                .iter()
                .all(|s| fs::symlink_metadata(format!("{}{s}", t.display())).is_err())
        })
        .expect("an unused name");
    let rename = |from: &Path, to: &Path| {
        fs::rename(from, to).map_err(|source| StoreError::MoveAside {
            from: from.to_path_buf(),
            to: to.to_path_buf(),
            source,
        })
    };
    let mut also_moved = Vec::new();
    for suffix in ["-wal", "-shm"] {
        let from = side(suffix);
        match fs::symlink_metadata(&from) {
            Ok(_) => {
                let to = PathBuf::from(format!("{}{suffix}", target.display()));
                rename(&from, &to)?;
                also_moved.push(to);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(StoreError::MoveAside {
                    from,
                    to: target,
                    source,
                })
            }
        }
    }
    rename(db, &target)?;
    // Make the renames durable before a new database appears under the old name.
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| StoreError::MoveAside {
            from: db.to_path_buf(),
            to: target.clone(),
            source,
        })?;
    Ok(Recovered {
        path: db.to_path_buf(),
        moved_to: target,
        also_moved,
        cause,
    })
}

/// `YYYYmmddTHHMMSS` in UTC.
fn utc_stamp(t: SystemTime) -> String {
    match jiff::Timestamp::try_from(t) {
        Ok(ts) => ts.strftime("%Y%m%dT%H%M%S").to_string(),
        Err(_) => t
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
            .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// The WAL and SHM go with the database, under its new name; a second move in the same
    /// second gets a name of its own. (SQLite itself deletes a WAL without frames when it
    /// closes a database, and checkpoints one with frames, so these are tested here.)
    #[test]
    fn the_wal_and_shm_are_moved_along() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("f2b.sqlite");
        let put = |suffix: &str| fs::write(format!("{}{suffix}", db.display()), suffix).unwrap();
        for s in ["", "-wal", "-shm"] {
            put(s);
        }
        let cause = || StoreError::WorkerGone { path: db.clone() };
        let first = move_aside(&db, cause()).unwrap();
        let base = first.moved_to.display().to_string();
        assert!(
            base.starts_with(&format!("{}.corrupt-", db.display())),
            "{base}"
        );
        assert_eq!(
            first.also_moved,
            vec![
                PathBuf::from(format!("{base}-wal")),
                PathBuf::from(format!("{base}-shm"))
            ]
        );
        assert_eq!(fs::read(&first.also_moved[0]).unwrap(), b"-wal");
        assert_eq!(fs::read(&first.moved_to).unwrap(), b"");
        for s in ["", "-wal", "-shm"] {
            assert!(!Path::new(&format!("{}{s}", db.display())).exists(), "{s}");
        }
        put("");
        let second = move_aside(&db, cause()).unwrap();
        assert!(second.also_moved.is_empty());
        let stamp = utc_stamp(SystemTime::now());
        let (a, b) = (first.moved_to, second.moved_to);
        assert_ne!(a, b);
        // Unless the clock turned a second in between, the second one is numbered.
        if a.display().to_string().ends_with(&stamp) {
            assert_eq!(b.display().to_string(), format!("{}-2", a.display()));
        }
    }

    #[test]
    fn stamps_are_utc_basic_iso_8601() {
        let at = |s: u64| utc_stamp(UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0), "19700101T000000");
        // 2024-02-29 23:59:59 UTC (a leap day).
        assert_eq!(at(1_709_251_199), "20240229T235959");
        assert_eq!(at(1_709_251_200), "20240301T000000");
    }
}

//! The persistent state store: active bans, ban history, open failure windows, per-jail totals
//! and the reader positions (the journal cursor, file positions), in SQLite at
//! `STATE_DIR/f2b.sqlite`.
//!
//! # Ordering and crash safety
//!
//! The engine owns all state; this module only persists it. One [`Commit`] — the decisions
//! taken for a batch of log entries *and* the reader positions after that batch — is written
//! in ONE transaction, and the engine applies bans to the firewall only after the commit
//! returned. So after a crash at any point the database holds, for every commit, either all of
//! it or none of it, and the positions always match the decisions: replaying the log from the
//! stored positions re-derives exactly what was lost.
//!
//! # Durability: `synchronous=NORMAL`
//!
//! The database runs in WAL mode with `synchronous=NORMAL` by default ([`Durability::Normal`]).
//! A committed transaction then survives any crash of the *process* (SIGKILL, panic, OOM kill):
//! it is in the WAL in the kernel's page cache. Only an OS crash or power loss can roll back the
//! latest transactions (never partially, and never corrupting the file) — and such an event also
//! empties the kernel's nftables sets, so the firewall and the database are lost *together*, and
//! since the positions roll back with the bans, the restarted daemon re-reads those log entries
//! and re-derives the bans (as far as journald itself had them on disk). `FULL` would add an
//! fsync of the WAL to every commit (milliseconds on real disks) to protect a case the journal
//! replay already covers. What replay cannot re-derive are bans and unbans ordered by hand
//! (`f2b ban`): [`StoreHandle::commit_durable`] / [`Store::commit_many`] with
//! [`Durability::Full`] make one commit (and whatever is grouped with it) fsync'd before it
//! returns; [`Store::open_with`] can make every commit `FULL`.
//!
//! # Damage
//!
//! A damaged file (disk trouble, a copy taken mid-write, tampering) must not leave the host
//! unprotected: [`Store::open_or_recover`] / [`StoreHandle::spawn_or_recover`] move it aside
//! as `f2b.sqlite.corrupt-YYYYmmddTHHMMSS` (UTC; with its `-wal`/`-shm`), start an empty state
//! and return a [`Recovered`] for the daemon to warn about. Damage found while running makes
//! commits fail with [`StoreError::CorruptDatabase`]; [`Store::recover`] /
//! [`StoreHandle::recover`] then do the same move. See [`recover`] for what
//! counts as damage (a foreign or newer database never does).
//!
//! # Encoding
//!
//! * An address or prefix is stored as two columns: `addr`, the network address in network
//!   byte order (a 4-byte BLOB for IPv4, 16 bytes for IPv6) with the host bits cleared, and
//!   `plen`, the prefix length (32/128 for a single address). Nets are canonicalised on write
//!   (`203.0.113.9/24` is stored, and loaded back, as `203.0.113.0/24`). Blobs compare with
//!   memcmp, so an index on `(addr, plen)` answers "every recorded prefix inside this one" with
//!   one range scan ([`Store::history_of`]). `hex(addr)` reads them in the `sqlite3` shell.
//! * Times are INTEGER µs since the epoch; a time past `i64::MAX` (year 294247) is stored as
//!   `i64::MAX`.
//! * A failure window is its failure times, one row each in `failures` (`n` > 1 when several
//!   failures share one µs), so that a commit writes only what changed: the failures new in
//!   it and a range delete of those that left the window ([`Commit::sync_window`]). A window of
//!   200,000 failures costs nothing more per commit than one of 3.
//! * An origin is text: `local`, `manual`, `manual:UID`, `peer:HOST`, `import` ([`Origin`]).
//! * A position is opaque text under its source's key: the journal cursor under `journal`
//!   ([`JOURNAL_POSITION`]); other readers choose their keys and encodings.
//!
//! # Schema (version 3)
//!
//! ```sql
//! bans      (jail TEXT, addr BLOB, plen INTEGER, start_us INTEGER,
//!            end_us INTEGER NULL = permanent, count INTEGER, failures INTEGER,
//!            origin TEXT DEFAULT 'local',
//!            PRIMARY KEY (jail, addr, plen)) WITHOUT ROWID
//!            -- the primary key is the index of bans by jail; bans_end (end_us) for purge
//! history   (addr BLOB, plen INTEGER, jail TEXT, t_us INTEGER, origin TEXT DEFAULT 'local',
//!            PRIMARY KEY (addr, plen, jail, t_us)) WITHOUT ROWID
//!            -- the primary key is the index by address; history_time (t_us) for purge
//! failures  (jail TEXT, addr BLOB, plen INTEGER, t_us INTEGER, n INTEGER DEFAULT 1,
//!            PRIMARY KEY (jail, addr, plen, t_us)) WITHOUT ROWID
//!            -- one window = one key range; failures_time (t_us) for purge
//! counters  (jail TEXT PRIMARY KEY, failed INTEGER, banned INTEGER, ignored INTEGER)
//!            WITHOUT ROWID  -- totals since the jail first ran
//! positions (source TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID
//!            -- 'journal' = the journal cursor
//! ```
//!
//! `PRAGMA user_version` holds the schema version and `PRAGMA application_id` is `0x46324244`
//! ("F2BD"). See [`schema`] for the migrations (and how to add one). The exact SQL is in
//! [`schema::MIGRATIONS`].

mod codec;
mod error;
mod handle;
mod load;
mod model;
mod origin;
pub mod recover;
pub mod schema;
mod write;

use std::fs::{DirBuilder, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;

use error::sql;
pub use error::StoreError;
pub use handle::{HandleStats, StoreHandle};
pub use model::{
    Ban, BanRow, Commit, Durability, HistoryEntry, HistoryRow, JailId, OutboxRow, PastBan,
    PurgeStats, Snapshot, StoredBan, Totals, WindowRow, JOURNAL_POSITION,
};
pub use origin::{BadOrigin, Origin};
pub use recover::Recovered;
pub use schema::SCHEMA_VERSION;

/// The database file's name inside the state directory.
pub const DB_FILE: &str = "f2b.sqlite";

/// The default state directory.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/f2b";

/// How long to wait for another connection's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// SQLite's page cache, KiB: what commits touch (interior pages, recent leaves) stays cached.
/// The cache stays in memory for the life of the daemon, so it is part of its footprint.
const CACHE_KIB: i64 = 8 << 10;

/// The state database. Blocking: use it from a thread of its own ([`StoreHandle`]).
pub struct Store {
    conn: Connection,
    path: PathBuf,
    durability: Durability,
    transactions: u64,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("durability", &self.durability)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Open (creating and migrating as needed) `state_dir/f2b.sqlite`, with
    /// [`Durability::Normal`]. A missing `state_dir` is created with mode 0700, a missing
    /// database file with mode 0600.
    pub fn open(state_dir: &Path) -> Result<Store, StoreError> {
        Store::open_with(state_dir, Durability::Normal)
    }

    /// [`Store::open`] with the durability of every commit.
    pub fn open_with(state_dir: &Path, durability: Durability) -> Result<Store, StoreError> {
        if !state_dir.is_dir() {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(state_dir)
                .map_err(|source| StoreError::CreateDir {
                    path: state_dir.to_path_buf(),
                    source,
                })?;
        }
        let path = state_dir.join(DB_FILE);
        // Create it ourselves for its mode; SQLite gives -wal and -shm the same.
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(source) => return Err(StoreError::CreateFile { path, source }),
        }
        let mut conn = Connection::open(&path).map_err(sql(&path, "cannot open the database"))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(sql(&path, "cannot set the busy timeout"))?;
        conn.set_prepared_statement_cache_capacity(32);
        // Before anything writes: refuse foreign and newer files untouched.
        schema::check(&conn, &path)?;
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .map_err(sql(&path, "cannot switch to WAL mode"))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Unsupported {
                path,
                detail: format!("cannot switch to WAL mode: journal_mode stays {mode}"),
            });
        }
        conn.pragma_update(None, "synchronous", durability.pragma())
            .map_err(sql(&path, "cannot set synchronous"))?;
        conn.pragma_update(None, "cache_size", -CACHE_KIB)
            .map_err(sql(&path, "cannot set the cache size"))?;
        // A big commit grows the WAL; cut it back to this after each checkpoint.
        conn.pragma_update(None, "journal_size_limit", 8 << 20)
            .map_err(sql(&path, "cannot set the journal size limit"))?;
        schema::migrate(&mut conn, &path)?;
        Ok(Store {
            conn,
            path,
            durability,
            transactions: 0,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version of the open database (always [`SCHEMA_VERSION`] after open).
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        self.conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(sql(&self.path, "cannot read the schema version"))
    }

    /// Write transactions committed since open.
    pub fn transactions(&self) -> u64 {
        self.transactions
    }

    /// Close the database (checkpointing the WAL), reporting errors that drop would swallow.
    pub fn close(self) -> Result<(), StoreError> {
        let path = self.path;
        self.conn
            .close()
            .map_err(|(_, source)| sql(&path, "cannot close the database")(source))
    }
}

#[cfg(test)]
mod tests;

//! The persistent state store: active bans, ban history, open failure windows and the journal
//! cursor, in SQLite at `STATE_DIR/f2b.sqlite`.
//!
//! # Ordering and crash safety
//!
//! The engine owns all state; this module only persists it. One [`Commit`] — the decisions
//! taken for a batch of journal entries *and* the cursor after that batch — is written in ONE
//! transaction, and the engine applies bans to the firewall only after the commit returned. So
//! after a crash at any point the database holds, for every commit, either all of it or none of
//! it, and the cursor always matches the decisions: replaying the journal from the stored cursor
//! re-derives exactly what was lost.
//!
//! # Durability: `synchronous=NORMAL`
//!
//! The database runs in WAL mode with `synchronous=NORMAL` by default ([`Durability::Normal`]).
//! A committed transaction then survives any crash of the *process* (SIGKILL, panic, OOM kill):
//! it is in the WAL in the kernel's page cache. Only an OS crash or power loss can roll back the
//! latest transactions (never partially, and never corrupting the file) — and such an event also
//! empties the kernel's nftables sets, so the firewall and the database are lost *together*, and
//! since the cursor rolls back with the bans, the restarted daemon re-reads those journal entries
//! and re-derives the bans (as far as journald itself had them on disk). `FULL` would add an
//! fsync of the WAL to every commit (milliseconds on real disks) to protect a case the journal
//! replay already covers. What replay cannot re-derive are bans and unbans ordered by hand
//! (`f2b ban`): [`StoreHandle::commit_durable`] / [`Store::commit_many`] with
//! [`Durability::Full`] make one commit (and whatever is grouped with it) fsync'd before it
//! returns; [`Store::open_with`] can make every commit `FULL`.
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
//! * A failure window is a JSON array of failure times (`[1700000000000000,…]`, in the order
//!   given, ascending in practice) plus its newest time in `last_us`.
//!
//! # Schema (version 2)
//!
//! ```sql
//! bans    (jail TEXT, addr BLOB, plen INTEGER, start_us INTEGER, end_us INTEGER NULL = permanent,
//!          count INTEGER, failures INTEGER, PRIMARY KEY (jail, addr, plen)) WITHOUT ROWID
//!          -- the primary key is the index of bans by jail; bans_end (end_us) for purge
//! history (addr BLOB, plen INTEGER, jail TEXT, t_us INTEGER,
//!          PRIMARY KEY (addr, plen, jail, t_us)) WITHOUT ROWID
//!          -- the primary key is the index by address; history_time (t_us) for purge
//! cursor  (id INTEGER PRIMARY KEY CHECK (id = 1), value TEXT)          -- at most one row
//! windows (jail TEXT, addr BLOB, plen INTEGER, times TEXT, last_us INTEGER,
//!          PRIMARY KEY (jail, addr, plen)) WITHOUT ROWID  -- windows_last (last_us) for purge
//! ```
//!
//! `PRAGMA user_version` holds the schema version and `PRAGMA application_id` is `0x46324244`
//! ("F2BD"). See [`schema`] for the migrations. The exact SQL is in [`schema::MIGRATIONS`].

mod codec;
mod error;
mod handle;
pub mod schema;

use std::fs::{DirBuilder, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use rusqlite::{params, Connection, TransactionBehavior};

use codec::{decode_times, encode_times, time_from_sql, time_to_sql, NetKey};
pub use error::StoreError;
use error::{corrupt, sql};
pub use handle::{HandleStats, StoreHandle};
pub use schema::SCHEMA_VERSION;

/// The database file's name inside the state directory.
pub const DB_FILE: &str = "f2b.sqlite";

/// The default state directory.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/f2b";

/// How long to wait for another connection's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// An active ban as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBan {
    pub jail: String,
    /// The banned address (/32, /128) or prefix. Stored canonical (host bits cleared).
    pub net: IpNet,
    /// µs since the epoch.
    pub start_us: u64,
    /// µs since the epoch; `None` = permanent.
    pub end_us: Option<u64>,
    /// The n-th ban of this address (incremental ban times).
    pub count: u32,
    /// Failures that triggered it (0 for manual bans).
    pub failures: u32,
}

/// Everything the engine needs at start of day.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Journal cursor of the last entry whose consequences are stored.
    pub cursor: Option<String>,
    /// Bans still active at the load time (end after it, or permanent), by (jail, net).
    pub bans: Vec<StoredBan>,
    /// Every recorded ban: (net, jail, start µs), oldest first.
    pub history: Vec<(IpNet, String, u64)>,
    /// Open failure windows: (jail, net, failure times µs).
    pub windows: Vec<(String, IpNet, Vec<u64>)>,
}

/// One atomic change of the stored state.
///
/// Applied in ONE transaction, in this order: `jails_removed`, `bans_removed`, `bans_added`,
/// `windows_cleared`, `windows_set`, `history_added`, `cursor`. (So a commit that both removes
/// and adds a ban leaves it added; commits that must mean "add then remove" are two commits —
/// which the [`StoreHandle`] still groups into one transaction, applying them in order.)
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Commit {
    /// The new journal cursor; `None` leaves the stored one.
    pub cursor: Option<String>,
    /// Upserted by (jail, net).
    pub bans_added: Vec<StoredBan>,
    /// (jail, net); absent ones are ignored.
    pub bans_removed: Vec<(String, IpNet)>,
    /// (net, jail, start µs); an exact duplicate is stored once.
    pub history_added: Vec<(IpNet, String, u64)>,
    /// Replace the window of (jail, net); an empty list clears it.
    pub windows_set: Vec<(String, IpNet, Vec<u64>)>,
    pub windows_cleared: Vec<(String, IpNet)>,
    /// Drop the bans and windows of jails that no longer exist (their history stays).
    pub jails_removed: Vec<String>,
}

impl Commit {
    /// Nothing to write.
    pub fn is_empty(&self) -> bool {
        self.cursor.is_none()
            && self.bans_added.is_empty()
            && self.bans_removed.is_empty()
            && self.history_added.is_empty()
            && self.windows_set.is_empty()
            && self.windows_cleared.is_empty()
            && self.jails_removed.is_empty()
    }
}

/// What [`Store::purge`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PurgeStats {
    pub history: usize,
    pub bans: usize,
    pub windows: usize,
}

/// When a commit is on disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Durability {
    /// `synchronous=NORMAL`: survives a crash of the process; an OS crash or power loss may
    /// roll back the latest commits (atomically). See the module docs.
    #[default]
    Normal,
    /// `synchronous=FULL`: the WAL is fsync'd before the commit returns.
    Full,
}

impl Durability {
    fn pragma(self) -> &'static str {
        match self {
            Durability::Normal => "NORMAL",
            Durability::Full => "FULL",
        }
    }
}

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
        conn.pragma_update(None, "cache_size", -32768)
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

    /// Everything to restore at start of day: the cursor, the bans active at `now_us` (end
    /// after it, or permanent), all history, all windows. One read transaction.
    pub fn load(&self, now_us: u64) -> Result<Snapshot, StoreError> {
        let path = &self.path;
        let tx = self
            .conn
            .unchecked_transaction()
            .map_err(sql(path, "cannot begin the load"))?;
        let cursor = tx
            .query_row("SELECT value FROM cursor WHERE id = 1", [], |r| r.get(0))
            .map(Some)
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                e => Err(e),
            })
            .map_err(sql(path, "cannot load the cursor"))?;
        let mut snap = Snapshot {
            cursor,
            ..Snapshot::default()
        };

        let e = "cannot load the bans";
        let mut stmt = tx
            .prepare_cached(
                "SELECT jail, addr, plen, start_us, end_us, count, failures FROM bans
                 WHERE end_us IS NULL OR end_us > ?1",
            )
            .map_err(sql(path, e))?;
        let mut rows = stmt.query([time_to_sql(now_us)]).map_err(sql(path, e))?;
        while let Some(r) = rows.next().map_err(sql(path, e))? {
            let ban = (|| {
                Ok::<_, rusqlite::Error>((
                    r.get_ref(0)?.as_str()?,
                    r.get_ref(1)?.as_blob()?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, Option<i64>>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, i64>(6)?,
                ))
            })()
            .map_err(sql(path, e))?;
            let (jail, addr, plen, start, end, count, failures) = ban;
            let bad = |what: &str| corrupt(path, "bans", format!("{what} in ban of jail {jail}"));
            snap.bans.push(StoredBan {
                net: NetKey::decode(addr, plen).ok_or_else(|| bad("bad address"))?,
                start_us: time_from_sql(start).ok_or_else(|| bad("negative start"))?,
                end_us: match end {
                    Some(v) => Some(time_from_sql(v).ok_or_else(|| bad("negative end"))?),
                    None => None,
                },
                count: u32::try_from(count).map_err(|_| bad("count out of range"))?,
                failures: u32::try_from(failures).map_err(|_| bad("failures out of range"))?,
                jail: jail.to_owned(),
            });
        }
        drop(rows);
        drop(stmt);

        let e = "cannot load the history";
        let mut stmt = tx
            .prepare_cached("SELECT addr, plen, jail, t_us FROM history ORDER BY t_us")
            .map_err(sql(path, e))?;
        let mut rows = stmt.query([]).map_err(sql(path, e))?;
        while let Some(r) = rows.next().map_err(sql(path, e))? {
            let (net, jail, t) = history_row(r, path)?;
            snap.history.push((net, jail, t));
        }
        drop(rows);
        drop(stmt);

        let e = "cannot load the failure windows";
        let mut stmt = tx
            .prepare_cached("SELECT jail, addr, plen, times FROM windows")
            .map_err(sql(path, e))?;
        let mut rows = stmt.query([]).map_err(sql(path, e))?;
        while let Some(r) = rows.next().map_err(sql(path, e))? {
            let (jail, addr, plen, times) = (|| {
                Ok::<_, rusqlite::Error>((
                    r.get_ref(0)?.as_str()?,
                    r.get_ref(1)?.as_blob()?,
                    r.get::<_, i64>(2)?,
                    r.get_ref(3)?.as_str()?,
                ))
            })()
            .map_err(sql(path, e))?;
            let bad = |what: &str| corrupt(path, "windows", format!("{what} in jail {jail}"));
            let net = NetKey::decode(addr, plen).ok_or_else(|| bad("bad address"))?;
            let times = decode_times(times).ok_or_else(|| bad("bad failure times"))?;
            snap.windows.push((jail.to_owned(), net, times));
        }
        drop(rows);
        drop(stmt);
        tx.finish().map_err(sql(path, "cannot end the load"))?;
        Ok(snap)
    }

    /// Write `c` in one transaction (see [`Commit`] for the order within it).
    pub fn commit(&mut self, c: &Commit) -> Result<(), StoreError> {
        self.commit_many([c], Durability::Normal)
    }

    /// Write several commits in ONE transaction, applying them in order (a later cursor wins;
    /// a ban added by one and removed by a later one ends up removed, and vice versa). With
    /// `durability` above the store's, this transaction is fsync'd before it returns.
    pub fn commit_many<'a>(
        &mut self,
        commits: impl IntoIterator<Item = &'a Commit>,
        durability: Durability,
    ) -> Result<(), StoreError> {
        let path = &self.path;
        let raise = durability > self.durability;
        if raise {
            self.conn
                .pragma_update(None, "synchronous", durability.pragma())
                .map_err(sql(path, "cannot set synchronous"))?;
        }
        let result = apply_all(&mut self.conn, path, commits);
        if raise {
            self.conn
                .pragma_update(None, "synchronous", self.durability.pragma())
                .map_err(sql(path, "cannot set synchronous"))?;
        }
        if let Ok(true) = result {
            self.transactions += 1;
        }
        result.map(drop)
    }

    /// Delete history older than `history_older_than_us`, bans that ended at or before `now_us`,
    /// and windows that are empty or whose newest failure is older than
    /// `history_older_than_us` (the caller passes its history horizon, `now − dbpurgeage`,
    /// which is far beyond any findtime; the engine clears windows itself as they lapse, so
    /// this only catches leaks). One transaction.
    pub fn purge(
        &mut self,
        history_older_than_us: u64,
        now_us: u64,
    ) -> Result<PurgeStats, StoreError> {
        let path = &self.path;
        let e = "cannot purge";
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql(path, e))?;
        let horizon = time_to_sql(history_older_than_us);
        let stats = PurgeStats {
            history: tx
                .execute("DELETE FROM history WHERE t_us < ?1", [horizon])
                .map_err(sql(path, e))?,
            bans: tx
                .execute(
                    "DELETE FROM bans WHERE end_us IS NOT NULL AND end_us <= ?1",
                    [time_to_sql(now_us)],
                )
                .map_err(sql(path, e))?,
            windows: tx
                .execute(
                    "DELETE FROM windows WHERE last_us < ?1 OR times = '[]'",
                    [horizon],
                )
                .map_err(sql(path, e))?,
        };
        tx.commit().map_err(sql(path, e))?;
        self.transactions += 1;
        // Keep the planner's statistics fresh; cheap when nothing changed much.
        self.conn
            .execute_batch("PRAGMA optimize")
            .map_err(sql(path, "cannot optimize"))?;
        Ok(stats)
    }

    /// Past bans of `net`, as (jail, start µs), oldest first: the bans recorded for `net`
    /// itself, for every prefix containing it (an address's /24 or /64), and for every prefix
    /// inside it. See [`Store::history_detail`] for which net each entry is of.
    pub fn history_of(&self, net: IpNet) -> Result<Vec<(String, u64)>, StoreError> {
        Ok(self
            .history_detail(net)?
            .into_iter()
            .map(|(_, j, t)| (j, t))
            .collect())
    }

    /// [`Store::history_of`] with the net each entry was recorded for: (net, jail, start µs),
    /// ordered by time, then jail, then net.
    pub fn history_detail(&self, net: IpNet) -> Result<Vec<(IpNet, String, u64)>, StoreError> {
        let path = &self.path;
        let e = "cannot read the history";
        let net = net.trunc();
        let mut out = Vec::new();
        // Prefixes containing `net` (and `net` itself): one exact lookup per prefix length.
        let mut stmt = self
            .conn
            .prepare_cached("SELECT jail, t_us FROM history WHERE addr = ?1 AND plen = ?2")
            .map_err(sql(path, e))?;
        for plen in 0..=net.prefix_len() {
            let outer = IpNet::new(net.network(), plen)
                .expect("shorter prefix is valid")
                .trunc();
            let key = NetKey::of(&outer);
            let mut rows = stmt
                .query(params![key.addr(), key.plen])
                .map_err(sql(path, e))?;
            while let Some(r) = rows.next().map_err(sql(path, e))? {
                let jail: String = r.get(0).map_err(sql(path, e))?;
                let t: i64 = r.get(1).map_err(sql(path, e))?;
                let t = time_from_sql(t)
                    .ok_or_else(|| corrupt(path, "history", format!("negative time of {outer}")))?;
                out.push((outer, jail, t));
            }
        }
        // Prefixes inside `net`: one range scan.
        let lo = NetKey::of(&net);
        let hi = NetKey::broadcast_of(&net);
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT addr, plen, jail, t_us FROM history
                 WHERE addr BETWEEN ?1 AND ?2 AND length(addr) = ?3 AND plen > ?4",
            )
            .map_err(sql(path, e))?;
        let mut rows = stmt
            .query(params![
                lo.addr(),
                hi.addr(),
                lo.addr().len() as i64,
                net.prefix_len()
            ])
            .map_err(sql(path, e))?;
        while let Some(r) = rows.next().map_err(sql(path, e))? {
            out.push(history_row(r, path)?);
        }
        out.sort_by(|a, b| (a.2, &a.1, a.0).cmp(&(b.2, &b.1, b.0)));
        Ok(out)
    }

    /// Close the database (checkpointing the WAL), reporting errors that drop would swallow.
    pub fn close(self) -> Result<(), StoreError> {
        let path = self.path;
        self.conn.close().map_err(|(_, source)| StoreError::Sqlite {
            path,
            what: "cannot close the database",
            source,
        })
    }
}

/// One history row: (net, jail, t).
fn history_row(r: &rusqlite::Row<'_>, path: &Path) -> Result<(IpNet, String, u64), StoreError> {
    let e = "cannot read the history";
    let addr = r
        .get_ref(0)
        .and_then(|v| Ok(v.as_blob()?))
        .map_err(sql(path, e))?;
    let plen: i64 = r.get(1).map_err(sql(path, e))?;
    let jail: String = r.get(2).map_err(sql(path, e))?;
    let t: i64 = r.get(3).map_err(sql(path, e))?;
    let bad = |what: &str| corrupt(path, "history", format!("{what} in jail {jail}"));
    let net = NetKey::decode(addr, plen).ok_or_else(|| bad("bad address"))?;
    let t = time_from_sql(t).ok_or_else(|| bad("negative time"))?;
    Ok((net, jail, t))
}

/// Apply `commits` in order in one IMMEDIATE transaction. `Ok(false)` if there was nothing
/// to write (no transaction).
fn apply_all<'a>(
    conn: &mut Connection,
    path: &Path,
    commits: impl IntoIterator<Item = &'a Commit>,
) -> Result<bool, StoreError> {
    let e = "cannot commit";
    let mut commits = commits.into_iter().filter(|c| !c.is_empty()).peekable();
    if commits.peek().is_none() {
        return Ok(false);
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql(path, e))?;
    let mut cursor = None;
    for c in commits {
        apply(&tx, c).map_err(sql(path, e))?;
        if c.cursor.is_some() {
            cursor = c.cursor.as_deref();
        }
    }
    if let Some(cursor) = cursor {
        tx.prepare_cached(
            "INSERT INTO cursor (id, value) VALUES (1, ?1)
             ON CONFLICT (id) DO UPDATE SET value = excluded.value",
        )
        .and_then(|mut s| s.execute([cursor]))
        .map_err(sql(path, e))?;
    }
    tx.commit().map_err(sql(path, e))?;
    Ok(true)
}

/// One commit's statements, in the documented order (the cursor is written by the caller).
fn apply(tx: &rusqlite::Transaction<'_>, c: &Commit) -> rusqlite::Result<()> {
    if !c.jails_removed.is_empty() {
        let mut bans = tx.prepare_cached("DELETE FROM bans WHERE jail = ?1")?;
        let mut windows = tx.prepare_cached("DELETE FROM windows WHERE jail = ?1")?;
        for jail in &c.jails_removed {
            bans.execute([jail])?;
            windows.execute([jail])?;
        }
    }
    if !c.bans_removed.is_empty() {
        let mut s =
            tx.prepare_cached("DELETE FROM bans WHERE jail = ?1 AND addr = ?2 AND plen = ?3")?;
        for (jail, net) in &c.bans_removed {
            let k = NetKey::of(net);
            s.execute(params![jail, k.addr(), k.plen])?;
        }
    }
    if !c.bans_added.is_empty() {
        let mut s = tx.prepare_cached(
            "INSERT INTO bans (jail, addr, plen, start_us, end_us, count, failures)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (jail, addr, plen) DO UPDATE SET
                start_us = excluded.start_us, end_us = excluded.end_us,
                count = excluded.count, failures = excluded.failures",
        )?;
        for b in &c.bans_added {
            let k = NetKey::of(&b.net);
            s.execute(params![
                b.jail,
                k.addr(),
                k.plen,
                time_to_sql(b.start_us),
                b.end_us.map(time_to_sql),
                b.count,
                b.failures,
            ])?;
        }
    }
    if !c.windows_cleared.is_empty() {
        let mut s =
            tx.prepare_cached("DELETE FROM windows WHERE jail = ?1 AND addr = ?2 AND plen = ?3")?;
        for (jail, net) in &c.windows_cleared {
            let k = NetKey::of(net);
            s.execute(params![jail, k.addr(), k.plen])?;
        }
    }
    if !c.windows_set.is_empty() {
        let mut set = tx.prepare_cached(
            "INSERT INTO windows (jail, addr, plen, times, last_us) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (jail, addr, plen) DO UPDATE SET
                times = excluded.times, last_us = excluded.last_us",
        )?;
        let mut clear =
            tx.prepare_cached("DELETE FROM windows WHERE jail = ?1 AND addr = ?2 AND plen = ?3")?;
        for (jail, net, times) in &c.windows_set {
            let k = NetKey::of(net);
            if times.is_empty() {
                clear.execute(params![jail, k.addr(), k.plen])?;
            } else {
                let last = times.iter().copied().max().unwrap_or(0);
                set.execute(params![
                    jail,
                    k.addr(),
                    k.plen,
                    encode_times(times),
                    time_to_sql(last)
                ])?;
            }
        }
    }
    if !c.history_added.is_empty() {
        let mut s = tx.prepare_cached(
            "INSERT OR IGNORE INTO history (addr, plen, jail, t_us) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for (net, jail, t) in &c.history_added {
            let k = NetKey::of(net);
            s.execute(params![k.addr(), k.plen, jail, time_to_sql(*t)])?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;

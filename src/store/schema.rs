//! The schema and its forward migrations.
//!
//! `PRAGMA user_version` is the schema version; `PRAGMA application_id` marks the file as
//! f2b's. [`MIGRATIONS`]`[i]` takes the database from version `i` to `i + 1`; each runs in its
//! own `BEGIN IMMEDIATE` transaction together with the `user_version` bump, so a crash or an
//! error leaves the database at the previous version, never in between. Migrations are only
//! ever appended: a released step is never edited.
//!
//! # Adding a step
//!
//! Write the SQL as `V4` (tables for a new feature, data conversions with plain SQL — see
//! `V3`, which converts JSON windows to rows), append it to [`MIGRATIONS`], update the
//! schema section of the [`super`] module docs, and add a test that opens a database of the
//! previous version holding data (`src/store/tests/schema.rs` makes one by hand for each
//! version). [`SCHEMA_VERSION`] follows from the list.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use super::error::{damage, sql, StoreError};

/// `PRAGMA application_id` of an f2b state database: "F2BD".
pub const APPLICATION_ID: i32 = 0x4632_4244;

/// The schema version this code reads and writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// Version 1: the tables.
pub(crate) const V1: &str = "
CREATE TABLE bans (
    jail     TEXT    NOT NULL,
    addr     BLOB    NOT NULL CHECK (length(addr) IN (4, 16)),
    plen     INTEGER NOT NULL CHECK (plen BETWEEN 0 AND 8 * length(addr)),
    start_us INTEGER NOT NULL,
    end_us   INTEGER,              -- NULL = permanent
    count    INTEGER NOT NULL,
    failures INTEGER NOT NULL,
    PRIMARY KEY (jail, addr, plen)
) WITHOUT ROWID;
CREATE INDEX bans_end ON bans (end_us) WHERE end_us IS NOT NULL;

CREATE TABLE history (
    addr BLOB    NOT NULL CHECK (length(addr) IN (4, 16)),
    plen INTEGER NOT NULL CHECK (plen BETWEEN 0 AND 8 * length(addr)),
    jail TEXT    NOT NULL,
    t_us INTEGER NOT NULL,
    PRIMARY KEY (addr, plen, jail, t_us)
) WITHOUT ROWID;

CREATE TABLE cursor (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    value TEXT    NOT NULL
);

CREATE TABLE windows (
    jail  TEXT    NOT NULL,
    addr  BLOB    NOT NULL CHECK (length(addr) IN (4, 16)),
    plen  INTEGER NOT NULL CHECK (plen BETWEEN 0 AND 8 * length(addr)),
    times TEXT    NOT NULL,        -- JSON array of failure times, µs, ascending
    PRIMARY KEY (jail, addr, plen)
) WITHOUT ROWID;
";

/// Version 2: purge by age without scanning — the newest failure of each window as a column,
/// and history by time.
pub(crate) const V2: &str = "
ALTER TABLE windows ADD COLUMN last_us INTEGER NOT NULL DEFAULT 0;
UPDATE windows SET last_us = coalesce((SELECT max(value) FROM json_each(windows.times)), 0);
CREATE INDEX windows_last ON windows (last_us);
CREATE INDEX history_time ON history (t_us);
";

/// Version 3:
/// * reader positions by source; the journal cursor becomes position `journal` (issue 13);
/// * failure windows as one row per failure time (`n` = how many at that µs), so that a commit
///   writes only new failures (issue 10.8); JSON windows are converted (rows that are not
///   JSON arrays of non-negative integers are dropped: a window is soft state);
/// * the origin of bans and history entries;
/// * per-jail totals that survive restarts.
pub(crate) const V3: &str = "
CREATE TABLE positions (
    source TEXT PRIMARY KEY,
    value  TEXT NOT NULL
) WITHOUT ROWID;
INSERT INTO positions (source, value) SELECT 'journal', value FROM cursor WHERE id = 1;
DROP TABLE cursor;

CREATE TABLE failures (
    jail TEXT    NOT NULL,
    addr BLOB    NOT NULL CHECK (length(addr) IN (4, 16)),
    plen INTEGER NOT NULL CHECK (plen BETWEEN 0 AND 8 * length(addr)),
    t_us INTEGER NOT NULL,
    n    INTEGER NOT NULL DEFAULT 1 CHECK (n >= 1),
    PRIMARY KEY (jail, addr, plen, t_us)
) WITHOUT ROWID;
INSERT INTO failures (jail, addr, plen, t_us, n)
    SELECT w.jail, w.addr, w.plen, t.value, count(*)
    FROM windows AS w,
         json_each(CASE WHEN json_valid(w.times) THEN w.times ELSE '[]' END) AS t
    WHERE t.type = 'integer' AND t.value >= 0
    GROUP BY w.jail, w.addr, w.plen, t.value;
DROP TABLE windows;
CREATE INDEX failures_time ON failures (t_us);

ALTER TABLE bans ADD COLUMN origin TEXT NOT NULL DEFAULT 'local';
ALTER TABLE history ADD COLUMN origin TEXT NOT NULL DEFAULT 'local';

CREATE TABLE counters (
    jail    TEXT    PRIMARY KEY,
    failed  INTEGER NOT NULL DEFAULT 0,
    banned  INTEGER NOT NULL DEFAULT 0,
    ignored INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
";

/// Version 4: the outbox — notifications and fleet messages that must survive a restart
/// until they are delivered (actions, issue 16; fleet, issue 17).
pub(crate) const V4: &str = "
CREATE TABLE outbox (
    id         INTEGER PRIMARY KEY,  -- assigned by the engine, increasing
    sink       TEXT    NOT NULL,     -- an action's name, or 'fleet'
    created_us INTEGER NOT NULL,
    ready      INTEGER NOT NULL DEFAULT 0 CHECK (ready IN (0, 1)),
    attempts   INTEGER NOT NULL DEFAULT 0,
    next_us    INTEGER NOT NULL DEFAULT 0,
    payload    TEXT    NOT NULL      -- JSON
);
CREATE INDEX outbox_sink ON outbox (sink, id);
";

/// The forward migrations, in order (see the module docs).
pub const MIGRATIONS: &[&str] = &[V1, V2, V3, V4];

/// Refuse files that are not ours or are newer than this code; returns the current version.
pub(crate) fn check(conn: &Connection, path: &Path) -> Result<u32, StoreError> {
    let app_id: i32 = conn
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .map_err(sql(path, "cannot read the database header"))?;
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(sql(path, "cannot read the schema version"))?;
    if app_id != APPLICATION_ID && app_id != 0 {
        return Err(StoreError::Foreign {
            path: path.to_path_buf(),
            detail: format!("application_id is {app_id:#x}, f2b's is {APPLICATION_ID:#x}"),
        });
    }
    let version = u32::try_from(version).map_err(|_| StoreError::Foreign {
        path: path.to_path_buf(),
        detail: format!("user_version is {version}"),
    })?;
    if app_id == 0 {
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'",
                [],
                |r| r.get(0),
            )
            .map_err(sql(path, "cannot read the schema"))?;
        if version != 0 || tables != 0 {
            return Err(StoreError::Foreign {
                path: path.to_path_buf(),
                detail: format!(
                    "no f2b application_id, but {tables} schema objects and user_version {version}"
                ),
            });
        }
    }
    if version > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            path: path.to_path_buf(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(version)
}

/// Apply the missing migrations, one transaction each. Returns the version found at open.
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<u32, StoreError> {
    let found = check(conn, path)?;
    let mut migrated = None;
    for (i, step) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let version = i as u32 + 1;
        let err = |source: rusqlite::Error| match damage(&source) {
            Some(detail) => StoreError::CorruptDatabase {
                path: path.to_path_buf(),
                what: "cannot migrate the schema",
                detail,
            },
            None => StoreError::Migration {
                path: path.to_path_buf(),
                version,
                source,
            },
        };
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        // Another process may have migrated while we waited for the write lock.
        let now: i64 = tx
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(err)?;
        if now >= i64::from(version) {
            continue;
        }
        if version == 1 {
            tx.pragma_update(None, "application_id", APPLICATION_ID)
                .map_err(err)?;
        }
        tx.execute_batch(step).map_err(err)?;
        tx.pragma_update(None, "user_version", version)
            .map_err(err)?;
        tx.commit().map_err(err)?;
        migrated = Some(version);
    }
    if let Some(version) = migrated {
        if found == 0 {
            tracing::info!(path = %path.display(), version, "state database created (schema version {version})");
        } else {
            tracing::info!(path = %path.display(), from = found, version,
                "state database schema migrated from version {found} to {version}");
        }
    }
    // A newer f2b may have migrated past us meanwhile.
    check(conn, path)?;
    Ok(found)
}

//! Errors of the state store. Every variant names the database (or state directory) path and
//! what was being done, so a log line alone says which file to look at.

use std::io;
use std::path::{Path, PathBuf};

/// What went wrong in the state store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The state directory could not be created.
    #[error("{}: cannot create the state directory: {source}", .path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The database file could not be created (mode 0600).
    #[error("{}: cannot create the database file: {source}", .path.display())]
    CreateFile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// An SQLite operation failed; `what` says which.
    #[error("{}: {what}: {source}", .path.display())]
    Sqlite {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    /// A forward migration failed; the database stays at `version - 1`.
    #[error(
        "{}: migrating the schema to version {version} failed (the database stays at version {}): {source}",
        .path.display(), .version - 1
    )]
    Migration {
        path: PathBuf,
        version: u32,
        #[source]
        source: rusqlite::Error,
    },
    /// The database was written by a newer f2b: refused rather than misread.
    #[error(
        "{}: the database has schema version {found}, newer than version {supported} that this \
         f2b knows; refusing to use it (run the newer f2b, or move the file away to start afresh)",
        .path.display()
    )]
    TooNew {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    /// The file is an SQLite database of something else.
    #[error("{}: not an f2b state database ({detail}); refusing to touch it", .path.display())]
    Foreign { path: PathBuf, detail: String },
    /// The database cannot be set up as required (e.g. no WAL on this file system).
    #[error("{}: {detail}", .path.display())]
    Unsupported { path: PathBuf, detail: String },
    /// The database file is damaged: SQLite finds it malformed (`SQLITE_CORRUPT`) or not a
    /// database at all (`SQLITE_NOTADB`), or the integrity check failed. See
    /// [`super::Store::open_or_recover`] and [`super::Store::recover`].
    #[error("{}: the state database is damaged: {what}: {detail}", .path.display())]
    CorruptDatabase {
        path: PathBuf,
        what: &'static str,
        detail: String,
    },
    /// A damaged database could not be moved aside.
    #[error("cannot move the damaged state database {} to {}: {source}", .from.display(), .to.display())]
    MoveAside {
        from: PathBuf,
        to: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A row that f2b cannot have written (tampering, or a bug).
    #[error("{}: corrupt row in table {table}: {detail}", .path.display())]
    Corrupt {
        path: PathBuf,
        table: &'static str,
        detail: String,
    },
    /// The store worker thread could not be started.
    #[error("{}: cannot start the store thread: {source}", .path.display())]
    Spawn {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The store worker thread has stopped (closed, or panicked).
    #[error("{}: the store thread has stopped", .path.display())]
    WorkerGone { path: PathBuf },
}

impl StoreError {
    /// The database (or state directory) this error is about.
    pub fn path(&self) -> &Path {
        match self {
            StoreError::CreateDir { path, .. }
            | StoreError::CreateFile { path, .. }
            | StoreError::Sqlite { path, .. }
            | StoreError::Migration { path, .. }
            | StoreError::TooNew { path, .. }
            | StoreError::Foreign { path, .. }
            | StoreError::Unsupported { path, .. }
            | StoreError::Corrupt { path, .. }
            | StoreError::CorruptDatabase { path, .. }
            | StoreError::MoveAside { from: path, .. }
            | StoreError::Spawn { path, .. }
            | StoreError::WorkerGone { path } => path,
        }
    }
}

/// `map_err` helper: an SQLite error while doing `what` on `path` ([`StoreError::Sqlite`],
/// or [`StoreError::CorruptDatabase`] when SQLite says the file is damaged).
pub(crate) fn sql<'a>(
    path: &'a Path,
    what: &'static str,
) -> impl FnOnce(rusqlite::Error) -> StoreError + 'a {
    move |source| match damage(&source) {
        Some(detail) => StoreError::CorruptDatabase {
            path: path.to_path_buf(),
            what,
            detail,
        },
        None => StoreError::Sqlite {
            path: path.to_path_buf(),
            what,
            source,
        },
    }
}

/// SQLite's message if `e` says the database file is damaged.
pub(crate) fn damage(e: &rusqlite::Error) -> Option<String> {
    use rusqlite::ErrorCode::{DatabaseCorrupt, NotADatabase};
    matches!(e.sqlite_error_code(), Some(DatabaseCorrupt | NotADatabase)).then(|| e.to_string())
}

/// A corrupt-row error.
pub(crate) fn corrupt(path: &Path, table: &'static str, detail: String) -> StoreError {
    StoreError::Corrupt {
        path: path.to_path_buf(),
        table,
        detail,
    }
}

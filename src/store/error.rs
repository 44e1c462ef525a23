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
            | StoreError::Spawn { path, .. }
            | StoreError::WorkerGone { path } => path,
        }
    }
}

/// `map_err` helper: an SQLite error while doing `what` on `path`.
pub(crate) fn sql<'a>(
    path: &'a Path,
    what: &'static str,
) -> impl FnOnce(rusqlite::Error) -> StoreError + 'a {
    move |source| StoreError::Sqlite {
        path: path.to_path_buf(),
        what,
        source,
    }
}

/// A corrupt-row error.
pub(crate) fn corrupt(path: &Path, table: &'static str, detail: String) -> StoreError {
    StoreError::Corrupt {
        path: path.to_path_buf(),
        table,
        detail,
    }
}

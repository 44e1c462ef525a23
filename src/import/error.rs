//! Errors that stop an import as a whole. (What cannot be carried over for one jail, filter
//! or ban is not an error: it goes into the [report](super::report) and the exit status.)

use std::path::PathBuf;

use super::ini::IniError;
use crate::location::Location;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Syntax(#[from] IniError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{loc}: {msg}")]
    Config { loc: Location, msg: String },
    #[error("{path}: fail2ban database: {msg}")]
    Database { path: PathBuf, msg: String },
    #[error("f2b state: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Usage(String),
    /// The report could not be written (a closed pipe, usually).
    #[error("cannot write the report: {0}")]
    Output(std::io::Error),
}

//! The log file source: ONE reader thread for every file of every file jail
//! (`source = "file"`, `logpath = [...]`), in the style of the journal reader.
//!
//! - Following: inotify (through nix, [`watch`]) on the files and their directories; the
//!   thread sleeps in `poll(2)` on the inotify fd and its wake pipe with no timeout. Where
//!   inotify cannot be relied on, a [`BACKSTOP`] timeout bounds the wait.
//! - Lines ([`tail`]): read in chunks, a partial last line waits for its newline, a line
//!   longer than [`MAX_LINE`] is cut there (counted, and said once per file); memory is bounded
//!   by one chunk and one partial line per file.
//! - Rotation ([`follow`]): rename + create, copytruncate, delete + recreate and rotations while
//!   f2bd was stopped; compressed rotated files are never read.
//! - Positions ([`position`]): per file (device, inode, offset, fingerprint of the first
//!   bytes), sent in each [`Batch`] under `file:PATH` and stored in the same transaction as
//!   the decisions of the lines before them. Without a saved position a file present at start
//!   is read from its end (or its start with `--from-start`, or from `--since`); a file that
//!   appears later is read from its start.
//! - Lines are dispatched by [`lines`]: a syslog prefix gives ident, pid and time (the ident
//!   selects the filter's programs); otherwise the whole line is the message and its time
//!   comes from the filter's `datepattern` ([`super::date`]), else the arrival time.

mod follow;
mod lines;
pub mod position;
mod reader;
mod tail;
mod watch;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use reader::{spawn, FilesHandle};

use crate::filter::{CompiledFilter, FilterDef};

/// Position keys of files start with this.
pub const KEY_PREFIX: &str = "file:";

/// Longest line given to the filters; the rest of a longer line is dropped (and counted).
pub const MAX_LINE: usize = 16 << 10;

/// The longest wait where inotify cannot be relied on.
pub const BACKSTOP: Duration = Duration::from_secs(2);

/// The position key of a file.
pub fn position_key(path: &Path) -> String {
    format!("{KEY_PREFIX}{}", path.display())
}

/// One file jail's view for the reader.
#[derive(Debug, Clone)]
pub struct FileRoute {
    pub jail: Arc<str>,
    pub filter: CompiledFilter,
    /// The filter's definition: its programs (syslog idents) and date forms.
    pub def: Arc<FilterDef>,
    /// Absolute paths and globs.
    pub logpath: Vec<String>,
}

/// Where to start in files without a saved position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilesStart {
    /// After their last complete line.
    End,
    /// At their start.
    Start,
    /// At their start, skipping lines older than this (µs); a file last written before it
    /// is read from its end.
    Since(u64),
}

/// Reader settings.
#[derive(Debug, Clone)]
pub struct FilesConfig {
    pub start: FilesStart,
    pub follow: bool,
    /// Lines per batch at most.
    pub batch: usize,
    /// Saved positions by key (`file:PATH` → encoded [`position::Position`]).
    pub saved: BTreeMap<String, String>,
}

/// One followed file as `f2b status` and the metrics show it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileView {
    pub path: String,
    /// "following", "waiting: no such file", "waiting: Permission denied…".
    pub state: String,
    /// Lines read (since f2bd started).
    pub lines: u64,
    /// Lines longer than [`MAX_LINE`], cut.
    pub cut: u64,
    /// Per jail: lines given to its filter, failures found.
    pub jails: BTreeMap<String, (u64, u64)>,
}

/// The reader's files, shared with the engine (updated once per batch).
#[derive(Debug, Clone, Default)]
pub struct FilesView(Arc<Mutex<BTreeMap<String, FileView>>>);

impl FilesView {
    /// Every file.
    pub fn files(&self) -> Vec<FileView> {
        self.0
            .lock()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// The files of one jail: (path, state, lines given to its filter, failures found).
    pub fn of_jail(&self, jail: &str) -> Vec<(String, String, u64, u64)> {
        self.files()
            .into_iter()
            .filter_map(|f| {
                let (seen, matched) = *f.jails.get(jail)?;
                Some((f.path, f.state, seen, matched))
            })
            .collect()
    }

    fn update(&self, f: impl FnOnce(&mut BTreeMap<String, FileView>)) {
        if let Ok(mut m) = self.0.lock() {
            f(&mut m);
        }
    }
}

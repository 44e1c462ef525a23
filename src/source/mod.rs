//! The journal source: ONE sd-journal reader for every jail, on its own thread.
//!
//! The reader opens the live system journal, a directory, or files; installs the union of every
//! route's journal matches; reads MESSAGE (and the routing fields) of each entry; routes it to
//! the jails whose matches it satisfies; runs their filters there (so the engine only sees
//! failures); and sends [`Batch`]es to the engine, each carrying the cursor of the last entry
//! read so that a restart resumes exactly after it. In follow mode it sleeps in `poll(2)` on
//! the journal's inotify fd and a wake pipe (no polling sleeps), and survives rotation, vacuum
//! and new files appearing. `sd_journal` is `!Send`, hence the thread.

pub mod date;
pub mod export;
pub mod files;
mod reader;
mod route;
pub mod syslog;
mod thread;
pub mod wait;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

pub use reader::{spawn, spawn_at, ReaderHandle};

use crate::filter::{CompiledFilter, JournalMatch, Outcome};

/// Which journal to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JournalSpec {
    /// The local system journal (`/var/log/journal`, `/run/log/journal`).
    System,
    /// Every journal file in a directory (followed for new files).
    Directory(PathBuf),
    /// These files only.
    Files(Vec<PathBuf>),
}

/// Where to start reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartAt {
    /// After the last entry present now.
    Tail,
    /// From the oldest entry.
    Head,
    /// From the first entry at or after this realtime (µs).
    Since(u64),
    /// Right after the entry with this cursor; if the journal no longer has it, from the first
    /// entry after the cursor's timestamp (with a warning saying how much was skipped).
    Cursor(String),
}

/// One jail's view for the reader: its matches and compiled filter.
#[derive(Debug, Clone)]
pub struct Route {
    pub jail: Arc<str>,
    pub matches: Vec<JournalMatch>,
    pub filter: CompiledFilter,
    /// Send the MESSAGEs given to the filter that no failregex matched (`f2b test
    /// --show-missed`), at most [`MAX_MISSED_PER_BATCH`] per batch.
    pub report_missed: bool,
}

/// Bound on [`Batch::missed`].
pub const MAX_MISSED_PER_BATCH: usize = 256;

/// A MESSAGE no failregex matched.
#[derive(Debug, Clone)]
pub struct Missed {
    pub route: usize,
    pub time_us: u64,
    pub message: String,
}

/// A failure found by a filter.
#[derive(Debug, Clone)]
pub struct Hit {
    /// Index into the routes the reader was given.
    pub route: usize,
    pub addr: IpAddr,
    pub user: Option<String>,
    /// Index of the failregex (in the route's compiled filter).
    pub regex: usize,
    /// Whether it counts as a failure: `false` for a line of an attempt its session already
    /// counted (see [`crate::filter::session`]); such hits are reported, not counted.
    pub counts: bool,
    /// Journal realtime of the entry (µs since the epoch): the event time.
    pub time_us: u64,
    pub message: String,
    pub unit: Option<String>,
    pub ident: Option<String>,
    pub hostname: Option<String>,
    pub pid: Option<u32>,
}

/// Per-route counters, as deltas since the previous batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteStats {
    /// Entries routed to this jail.
    pub seen: u64,
    /// Failures with an address.
    pub matched: u64,
    /// Failregex hits cancelled by an ignoreregex.
    pub ignored: u64,
    /// Failregex hits with no usable address.
    pub no_address: u64,
    /// Failure lines of an attempt their session had already counted (not counted again).
    pub absorbed: u64,
    /// Hits per failregex.
    pub per_regex: Vec<u64>,
    /// Journal time of the newest match (µs), 0 = none in this batch.
    pub last_match_us: u64,
}

impl RouteStats {
    pub fn add(&mut self, d: &RouteStats) {
        self.seen += d.seen;
        self.matched += d.matched;
        self.ignored += d.ignored;
        self.no_address += d.no_address;
        self.absorbed += d.absorbed;
        if self.per_regex.len() < d.per_regex.len() {
            self.per_regex.resize(d.per_regex.len(), 0);
        }
        for (a, b) in self.per_regex.iter_mut().zip(&d.per_regex) {
            *a += b;
        }
        self.last_match_us = self.last_match_us.max(d.last_match_us);
    }
    pub fn missed(&self) -> u64 {
        self.seen - self.matched - self.ignored - self.no_address - self.absorbed
    }

    /// Count a filter's outcome for an entry of time `t`; the failure it found, if any:
    /// (regex, address, user, whether it counts).
    pub(crate) fn count(
        &mut self,
        out: Outcome,
        t: u64,
    ) -> Option<(usize, IpAddr, Option<String>, bool)> {
        match out {
            Outcome::Miss => None,
            Outcome::Ignored { .. } => {
                self.ignored += 1;
                None
            }
            Outcome::NoAddress { .. } => {
                self.no_address += 1;
                None
            }
            Outcome::Absorbed { regex, addr } => {
                self.absorbed += 1;
                self.per_regex[regex] += 1;
                Some((regex, addr, None, false))
            }
            Outcome::Failure { regex, addr, user } => {
                self.matched += 1;
                self.per_regex[regex] += 1;
                self.last_match_us = t;
                Some((regex, addr, user, true))
            }
        }
    }
}

/// Which reader a batch or event comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SourceKind {
    /// The sd-journal reader.
    #[default]
    Journal,
    /// The log file reader ([`files`]).
    Files,
}

/// What the reader sends.
#[derive(Debug)]
pub enum SourceEvent {
    /// Entries read since the previous batch.
    Batch(Batch),
    /// The reader reached the end of its backlog for the first time (startup backlog done).
    CaughtUp(SourceKind),
    /// Not following: the end was reached; the reader has stopped.
    Ended(SourceKind),
    /// A warning worth logging (cursor vacuumed, journal reopened…).
    Warning(String),
    /// The reader failed and stopped.
    Failed(String),
}

/// A batch of what was read.
#[derive(Debug, Default)]
pub struct Batch {
    /// The reader that read it.
    pub kind: SourceKind,
    pub hits: Vec<Hit>,
    /// Lines of routes with `report_missed` that no failregex matched.
    pub missed: Vec<Missed>,
    /// Entries read (all of them, matched by the journal matches or not routed).
    pub entries: u64,
    /// Cursor of the last entry read; resume after it.
    pub cursor: Option<String>,
    /// Other readers' positions after this batch, by source key (`file:PATH`; `None`: forget
    /// it), stored with the batch's decisions.
    pub positions: Vec<(String, Option<String>)>,
    /// Realtime of the last entry read (µs).
    pub last_time_us: u64,
    /// Routes generation the hits were made with (see [`ReaderHandle::set_routes`]).
    pub generation: u64,
    pub stats: Vec<RouteStats>,
}

/// Reader settings.
#[derive(Debug, Clone)]
pub struct SourceConfig {
    pub spec: JournalSpec,
    pub start: StartAt,
    pub follow: bool,
    /// Entries per batch at most (latency vs. throughput; 4096 is a good default).
    pub batch: usize,
}

/// Errors opening the journal.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot open the journal ({what}): {source}")]
    Open {
        what: String,
        source: std::io::Error,
    },
    #[error("journal: {0}")]
    Journal(#[from] std::io::Error),
    #[error("log file reader: {0}")]
    Files(std::io::Error),
}

/// Extract the realtime (µs) from a cursor string's `t=` field (hex).
pub fn cursor_realtime(cursor: &str) -> Option<u64> {
    cursor
        .split(';')
        .find_map(|kv| kv.strip_prefix("t="))
        .and_then(|h| u64::from_str_radix(h, 16).ok())
}

//! Blocklist feeds (`[feed.NAME]`): lists of addresses and CIDRs fetched over HTTP(S) or read
//! from a file, enforced in interval sets of the `inet f2b` table beside the jails.
//!
//! The jobs, one module each:
//! - [`parse`]: a body in one of the formats → merged ranges, bad lines named by number, and
//!   the guard against a broken upstream (garbage, empty, too many entries);
//! - [`ranges`]: address ranges: CIDRs merged, ignored addresses cut out;
//! - [`fetch`]: HTTP(S) with conditional GET and a size limit while streaming, or a file;
//! - [`cache`]: the last good copy on disk, used at start before any fetch;
//! - [`task`]: one task per feed off the engine loop (timer, fetch, parse, cache), sending the
//!   engine what to enforce; the engine owns the firewall (`engine/feeds.rs`).

pub mod cache;
pub mod fetch;
pub mod parse;
pub mod ranges;
pub mod task;

use std::path::PathBuf;
use std::sync::Arc;

pub use ranges::AddrRanges;

/// Why a fetch brought nothing usable (the previous copy stays enforced).
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("{0}")]
    Http(String),
    #[error("the server answered {0}")]
    Status(String),
    #[error("larger than max_size ({max} bytes)")]
    TooLarge { max: u64 },
    #[error("{}: {error}", .path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("the body is empty")]
    Empty,
    #[error("no blocklist: {bad} bad line(s) and {good} good; {first}")]
    Garbage {
        good: usize,
        bad: usize,
        first: String,
    },
    #[error("{entries} entries, more than max_entries ({max})")]
    TooManyEntries { entries: usize, max: usize },
}

/// What a feed's task knows: fetches, the content in force, problems.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchStatus {
    /// Good entries of the content in force (IPv4, IPv6).
    pub entries: (usize, usize),
    /// Last fetch that reached the source (a body or "not modified"), µs; 0 = never.
    pub last_fetch_us: u64,
    /// Last change of the content in force, µs; 0 = never.
    pub last_change_us: u64,
    /// When the next fetch is due, µs.
    pub next_refresh_us: u64,
    /// Bad lines of the last body read, and the first few by number.
    pub bad_lines: usize,
    pub bad_examples: Vec<String>,
    /// Why the last fetch brought nothing usable ("" after a good one).
    pub last_error: String,
    /// Fetches that failed since f2bd started.
    pub fetch_failures: u64,
}

/// From a feed's task to the engine: its status and, when it changed, the content to enforce.
#[derive(Debug, Clone)]
pub struct FeedUpdate {
    pub name: String,
    pub status: FetchStatus,
    /// New content (every good entry, merged; not yet without the ignored addresses).
    pub ranges: Option<Arc<AddrRanges>>,
}

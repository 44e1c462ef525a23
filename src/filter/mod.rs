//! Filters: which journal entries a service writes, and which of their MESSAGEs are failures.
//!
//! A filter is a TOML file (one per service, see `filters/` and `f2b.filter(5)`):
//!
//! ```toml
//! description = "OpenSSH server"
//! # Alternatives, each a conjunction of fields journald sets (see [`matches`]).
//! matches = ["_SYSTEMD_UNIT=ssh.service _UID=0", "_COMM=sshd _UID=0"]
//! default_mode = "normal"
//! sessionregex = ['^Connection from <HOST> port [0-9]+ on ']
//! [vars]
//! port = 'port [0-9]+'
//! [modes.normal]
//! failregex = ['^Failed password for (?P<user>.*) from <HOST> <port> ssh2$']
//! session_failregex = ['^Invalid user (?P<user>.*) from <HOST> <port>$']
//! [modes.aggressive]
//! include = ["normal"]
//! session_failregex = ['^Connection closed by invalid user .* <HOST> <port> \[preauth\]$']
//! ```
//!
//! Regexes use the linear-time `regex` crate: no look-around, no backreferences, so no ReDoS by
//! construction. `<HOST>` expands to a strict address group ([`host`]); `<F-USER>…</F-USER>`
//! and `<F-ID>…</F-ID>` are fail2ban's spellings of `(?P<user>…)` and `(?P<sid>…)`; `<name>`
//! inserts `[vars].name`; any other `<name>` is an error.
//!
//! A `failregex` line is one failed attempt; a `session_failregex` line stands for its whole
//! session; lines without `<HOST>` take the address of their session ([`session`]: by `_PID`
//! or a captured session id), which `sessionregex` lines name.
//!
//! Modules: [`matches`] (trusted journal matches), [`def`] (filter files, modes),
//! [`expand`] (tags), [`compiled`] (RegexSet per mode, [`Outcome`]), [`session`]
//! (correlation and counting), [`host`] (addresses), [`library`] (built-in and installed
//! filters), [`samples`] (sample files).
//!
//! Per jail, one [`CompiledFilter`] holds one `RegexSet` over every failregex of the chosen
//! mode; only the pattern that hit is run again for captures.

mod compiled;
mod def;
mod expand;
pub mod host;
pub mod library;
pub mod matches;
pub mod samples;
pub mod session;

use std::path::PathBuf;

pub use compiled::{CompiledFilter, EntryCtx, Outcome};
pub use def::{FilterDef, PatternKind, PatternSrc};
pub use matches::{Field, JournalMatch};
pub use session::Sessions;

/// The former name of [`Sessions`].
pub type PidCache = Sessions;

use crate::location::Location;

/// Errors while loading or compiling a filter. Every variant names the file and line.
#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    #[error("{loc}: {msg}")]
    Syntax { loc: Location, msg: String },
    #[error("{loc}: regex {pattern:?}: {msg}")]
    Regex {
        loc: Location,
        pattern: String,
        msg: String,
    },
    #[error("{loc}: unknown mode {mode:?} (filter {filter:?} has: {known})")]
    UnknownMode {
        loc: Location,
        filter: String,
        mode: String,
        known: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

#[cfg(test)]
mod tests;

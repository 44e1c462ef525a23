//! A filter compiled for one mode: what a jail runs on each MESSAGE.
//!
//! One `RegexSet` per list answers "does any pattern match" in one linear pass; only the
//! pattern that hit is run again for its captures.

use std::net::IpAddr;

use regex::{Regex, RegexSet};

use super::def::{PatternKind, PatternSrc};
use super::expand::explain_regex_error;
use super::host;
use super::session::{FailKind, SessionKey, Sessions};
use super::FilterError;
use crate::location::Location;

#[derive(Debug, Clone, Default)]
pub(super) struct CompiledList {
    pub(super) set: Option<RegexSet>,
    pub(super) regexes: Vec<Regex>,
    pub(super) sources: Vec<PatternSrc>,
    expanded: Vec<String>,
}

impl CompiledList {
    pub(super) fn push(&mut self, re: Regex, src: PatternSrc, expanded: String) {
        self.regexes.push(re);
        self.sources.push(src);
        self.expanded.push(expanded);
    }

    pub(super) fn build(mut self, origin: &str) -> Result<CompiledList, FilterError> {
        if !self.expanded.is_empty() {
            self.set = Some(
                RegexSet::new(&self.expanded).map_err(|e| FilterError::Regex {
                    loc: Location::new(origin, 0),
                    pattern: "(set)".into(),
                    msg: explain_regex_error(&e),
                })?,
            );
        }
        self.expanded = Vec::new();
        Ok(self)
    }

    fn first_match(&self, msg: &str) -> Option<usize> {
        self.set.as_ref()?.matches(msg).iter().next()
    }

    fn is_match(&self, msg: &str) -> bool {
        self.set.as_ref().is_some_and(|s| s.is_match(msg))
    }

    /// Every pattern of the list matching `msg`.
    pub(super) fn all_matches(&self, msg: &str) -> Vec<usize> {
        match &self.set {
            Some(s) => s.matches(msg).iter().collect(),
            None => Vec::new(),
        }
    }
}

/// A filter compiled for one mode.
#[derive(Debug, Clone)]
pub struct CompiledFilter {
    pub name: String,
    pub mode: Option<String>,
    pub(super) fail: CompiledList,
    pub(super) ignore: CompiledList,
    pub(super) session: CompiledList,
}

/// What a filter made of one MESSAGE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// No failregex matched (a sessionregex may have recorded an address).
    Miss,
    /// A failregex matched but an ignoreregex too.
    Ignored { regex: usize },
    /// A failregex matched but yielded no usable address (bad text, or no session context).
    NoAddress { regex: usize },
    /// A failure line of a session that has already counted this attempt (see
    /// [`super::session`]): not counted again.
    Absorbed { regex: usize, addr: IpAddr },
    /// A failure from `addr`.
    Failure {
        regex: usize,
        addr: IpAddr,
        user: Option<String>,
    },
}

/// The trusted facts of the entry a MESSAGE came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EntryCtx {
    /// Entry time, µs since the epoch.
    pub time_us: u64,
    /// `_PID` (journald sets it), or the pid of a syslog line.
    pub pid: Option<u32>,
    /// `_BOOT_ID`, hashed (0 when unknown): a pid is a session only within one boot.
    pub boot: u64,
}

impl CompiledFilter {
    /// Cheap pre-check: could [`apply`](Self::apply) do anything with `msg` (a failregex or a
    /// sessionregex matches)? One `RegexSet::is_match` per list, no captures.
    pub fn may_match(&self, msg: &str) -> bool {
        self.fail.is_match(msg) || self.session.is_match(msg)
    }

    /// Whether any pattern needs the entry's `_PID` (per-session correlation).
    pub fn uses_pid(&self) -> bool {
        !self.session.regexes.is_empty()
            || self
                .fail
                .sources
                .iter()
                .any(|p| p.kind == PatternKind::SessionFail)
            || self
                .fail
                .regexes
                .iter()
                .any(|r| !r.capture_names().flatten().any(|n| n == "host"))
    }

    /// Number of failregexes (both kinds) in this mode.
    pub fn fail_count(&self) -> usize {
        self.fail.regexes.len()
    }

    /// The source of failregex `i` (as reported in [`Outcome`]).
    pub fn fail_source(&self, i: usize) -> &PatternSrc {
        &self.fail.sources[i]
    }

    /// Indices of every failregex that matches `msg` (for sample checks: at most one should).
    pub fn all_fail_matches(&self, msg: &str) -> Vec<usize> {
        self.fail.all_matches(msg)
    }

    /// [`apply_entry`](Self::apply_entry) with only a pid and a time (one boot).
    pub fn apply(
        &self,
        msg: &str,
        pid: Option<u32>,
        time_us: u64,
        sessions: &mut Sessions,
    ) -> Outcome {
        let ctx = EntryCtx {
            time_us,
            pid,
            boot: 0,
        };
        self.apply_entry(msg, &ctx, sessions)
    }

    fn session_key(ctx: &EntryCtx, caps: &regex::Captures<'_>) -> Option<SessionKey> {
        match caps.name("sid") {
            Some(id) => Some(SessionKey::Id(id.as_str().into())),
            None => ctx.pid.map(|pid| SessionKey::Process {
                boot: ctx.boot,
                pid,
            }),
        }
    }

    /// Apply the filter to one MESSAGE of an entry.
    pub fn apply_entry(&self, msg: &str, ctx: &EntryCtx, sessions: &mut Sessions) -> Outcome {
        let Some(i) = self.fail.first_match(msg) else {
            if let Some(j) = self.session.first_match(msg) {
                if let Some(caps) = self.session.regexes[j].captures(msg) {
                    let addr = caps.name("host").and_then(|h| host::parse_host(h.as_str()));
                    if let (Some(addr), Some(key)) = (addr, Self::session_key(ctx, &caps)) {
                        sessions.open(key, addr, ctx.time_us);
                    }
                }
            }
            return Outcome::Miss;
        };
        if self.ignore.first_match(msg).is_some() {
            return Outcome::Ignored { regex: i };
        }
        let Some(caps) = self.fail.regexes[i].captures(msg) else {
            // The set and the single regex are built from the same text; cannot differ.
            return Outcome::NoAddress { regex: i };
        };
        let user = caps.name("user").map(|u| u.as_str().to_string());
        let key = Self::session_key(ctx, &caps);
        let addr = match caps.name("host") {
            Some(h) => host::parse_host(h.as_str()),
            None => key.as_ref().and_then(|k| sessions.addr(k, ctx.time_us)),
        };
        let Some(addr) = addr else {
            return Outcome::NoAddress { regex: i };
        };
        let kind = match self.fail.sources[i].kind {
            PatternKind::SessionFail => FailKind::Session,
            _ => FailKind::Attempt,
        };
        let counts = match key {
            Some(k) => sessions.count(k, addr, kind, ctx.time_us),
            None => true,
        };
        if counts {
            Outcome::Failure {
                regex: i,
                addr,
                user,
            }
        } else {
            Outcome::Absorbed { regex: i, addr }
        }
    }

    /// Every pattern of this mode (any kind) that matches `line`, as (kind, line, text).
    pub(super) fn patterns_hit(&self, line: &str) -> Vec<(PatternKind, usize, String)> {
        let mut out = Vec::new();
        for list in [&self.fail, &self.ignore, &self.session] {
            for i in list.all_matches(line) {
                let p = &list.sources[i];
                out.push((p.kind, p.loc.line, p.text.clone()));
            }
        }
        out
    }
}

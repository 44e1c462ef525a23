//! Filter sample files: lines a filter must match (with the expected address and user) and
//! lines it must not, checked through the same [`CompiledFilter::apply`] the daemon uses.
//!
//! Format (`tests/samples/NAME.toml`, compiled in; see `f2b.filter(5)`):
//!
//! ```toml
//! [[sample]]
//! line = 'Failed password for root from 203.0.113.9 port 22 ssh2'
//! ip = "203.0.113.9"          # expected failure address; absent = must NOT be a failure
//! user = "root"               # optional: expected `user` capture
//! mode = "aggressive"         # optional: mode to check in (default: the filter's default;
//!                             # for lines without ip: every mode)
//! pid = 1234                  # optional: _PID, for per-session correlation
//! ignored = true              # optional: must be hit by a failregex AND an ignoreregex
//! note = "OpenSSH 9.8 sshd-session"  # optional, free text (version, source)
//! ```
//!
//! Checks: each sample as expected; no sample line hit by two failregexes of one mode; every
//! failregex, ignoreregex and pidregex of every mode hit by at least one sample.

use std::collections::BTreeSet;
use std::net::IpAddr;

use serde::Deserialize;

use super::{CompiledFilter, EntryCtx, FilterDef, Outcome, Sessions};
use crate::location::line_of;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSamples {
    #[serde(default)]
    sample: Vec<toml::Spanned<Sample>>,
    #[serde(default)]
    session: Vec<toml::Spanned<SessionSample>>,
}

/// Lines of one connection, in order, and the failures they must count (see
/// [`super::session`]): checks correlation and that one attempt counts once.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionSample {
    pub lines: Vec<String>,
    /// The address of each failure counted, in order (empty: nothing counts).
    pub counts: Vec<IpAddr>,
    /// Mode to check in (default: the filter's default mode).
    pub mode: Option<String>,
    pub note: Option<String>,
}

/// A parsed sample file: single lines and sessions, each with its line in the file.
#[derive(Debug, Clone, Default)]
pub struct SampleFile {
    pub samples: Vec<(usize, Sample)>,
    pub sessions: Vec<(usize, SessionSample)>,
}

/// One sample line and what is expected of it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sample {
    pub line: String,
    pub ip: Option<IpAddr>,
    pub user: Option<String>,
    pub mode: Option<String>,
    pub pid: Option<u32>,
    #[serde(default)]
    pub ignored: bool,
    pub note: Option<String>,
}

/// The verdict over one sample file.
#[derive(Debug, Default)]
pub struct SampleReport {
    pub samples: usize,
    pub checks: usize,
    /// Human-readable problems, each naming the sample's line in the sample file.
    pub problems: Vec<String>,
}

impl SampleReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Parse a sample file. `origin` names it in errors.
pub fn parse(origin: &str, text: &str) -> Result<SampleFile, String> {
    let raw: RawSamples = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(0);
        format!("{origin}:{line}: {}", e.message())
    })?;
    Ok(SampleFile {
        samples: raw
            .sample
            .into_iter()
            .map(|s| (line_of(text, s.span().start), s.into_inner()))
            .collect(),
        sessions: raw
            .session
            .into_iter()
            .map(|s| (line_of(text, s.span().start), s.into_inner()))
            .collect(),
    })
}

/// Check `samples` against `def` (all modes).
pub fn check(def: &FilterDef, origin: &str, file: &SampleFile) -> SampleReport {
    let samples = &file.samples;
    let mut report = SampleReport {
        samples: samples.len() + file.sessions.len(),
        ..Default::default()
    };
    let modes: Vec<Option<String>> = if def.modes().next().is_none() {
        vec![None]
    } else {
        def.modes().map(|m| Some(m.to_string())).collect()
    };
    let compiled: Vec<(Option<String>, CompiledFilter)> = modes
        .iter()
        .map(|m| {
            (
                m.clone(),
                def.compile(m.as_deref()).expect("filter compiled at load"),
            )
        })
        .collect();
    let default_mode = def.default_mode.clone().or_else(|| modes[0].clone());
    // Coverage: (kind, location) of every pattern hit by some sample.
    let mut hit: BTreeSet<(String, usize, String)> = BTreeSet::new();
    let mut pid_caches: Vec<Sessions> = compiled.iter().map(|_| Sessions::default()).collect();

    for (n, (line_no, s)) in samples.iter().enumerate() {
        let at = format!("{origin}:{line_no}");
        if let Some(m) = &s.mode {
            if !modes.iter().any(|x| x.as_deref() == Some(m.as_str())) {
                report.problems.push(format!(
                    "{at}: unknown mode {m:?} (modes: {})",
                    def.mode_list()
                ));
                continue;
            }
        }
        let time = (n as u64 + 1) * 1_000_000;
        for (ci, (mode, filter)) in compiled.iter().enumerate() {
            let outcome = filter.apply(&s.line, s.pid, time, &mut pid_caches[ci]);
            // Coverage and the one-regex-per-line rule are checked in every mode.
            let hits = filter.all_fail_matches(&s.line);
            if hits.len() > 1 {
                let which: Vec<String> = hits
                    .iter()
                    .map(|&i| filter.fail_source(i).loc.to_string())
                    .collect();
                report.problems.push(format!(
                    "{at}: hit by {} failregexes in mode {}: {}",
                    hits.len(),
                    mode.as_deref().unwrap_or("(default)"),
                    which.join(", ")
                ));
            }
            for (kind, line, text) in filter.patterns_hit(&s.line) {
                hit.insert((kind.key().to_string(), line, text));
            }
            let applies = match (&s.mode, s.ip) {
                (Some(m), _) => mode.as_deref() == Some(m.as_str()),
                (None, Some(_)) => *mode == default_mode,
                (None, None) => true,
            };
            if !applies {
                continue;
            }
            report.checks += 1;
            let mname = mode.as_deref().unwrap_or("(default)");
            match (s.ip, &outcome) {
                (Some(ip), Outcome::Failure { addr, user, .. }) => {
                    if *addr != ip {
                        report.problems.push(format!(
                            "{at}: mode {mname}: expected address {ip}, got {addr}"
                        ));
                    }
                    if s.user.is_some() && *user != s.user {
                        report.problems.push(format!(
                            "{at}: mode {mname}: expected user {:?}, got {:?}",
                            s.user, user
                        ));
                    }
                }
                (Some(ip), other) => report.problems.push(format!(
                    "{at}: mode {mname}: expected a failure from {ip}, got {other:?}"
                )),
                (None, Outcome::Failure { addr, regex, .. }) => report.problems.push(format!(
                    "{at}: mode {mname}: must not match, but {} gave {addr}",
                    filter.fail_source(*regex).loc
                )),
                (None, Outcome::Ignored { .. })
                | (None, Outcome::Miss)
                | (None, Outcome::Absorbed { .. })
                | (None, Outcome::NoAddress { .. }) => {
                    if s.ignored && !matches!(outcome, Outcome::Ignored { .. }) {
                        report.problems.push(format!(
                            "{at}: mode {mname}: expected to be ignored by an ignoreregex, got {outcome:?}"
                        ));
                    }
                }
            }
        }
    }
    for (line_no, sess) in &file.sessions {
        let at = format!("{origin}:{line_no}");
        let mode = sess.mode.clone().or_else(|| default_mode.clone());
        let Some((_, filter)) = compiled.iter().find(|(m, _)| *m == mode) else {
            report.problems.push(format!(
                "{at}: unknown mode {mode:?} (modes: {})",
                def.mode_list()
            ));
            continue;
        };
        for (_, f) in &compiled {
            for l in &sess.lines {
                for (kind, line, text) in f.patterns_hit(l) {
                    hit.insert((kind.key().to_string(), line, text));
                }
            }
        }
        report.checks += 1;
        let mut sessions = Sessions::default();
        let counted: Vec<IpAddr> = (sess.lines.iter().enumerate())
            .filter_map(|(i, l)| {
                let ctx = EntryCtx {
                    time_us: (i as u64 + 1) * 1_000_000,
                    pid: Some(4242),
                    boot: 1,
                };
                match filter.apply_entry(l, &ctx, &mut sessions) {
                    Outcome::Failure { addr, .. } => Some(addr),
                    _ => None,
                }
            })
            .collect();
        if counted != sess.counts {
            report.problems.push(format!(
                "{at}: mode {}: the session counts {counted:?}, expected {:?}",
                mode.as_deref().unwrap_or("(default)"),
                sess.counts
            ));
        }
    }
    for p in def.all_patterns() {
        let key = (p.kind.key().to_string(), p.loc.line, p.text.clone());
        if !hit.contains(&key) {
            report.problems.push(format!(
                "{}: {} {:?} is hit by no sample",
                p.loc,
                p.kind.key(),
                p.text
            ));
        }
    }
    report
}

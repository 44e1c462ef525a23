//! Filters: which journal entries a service writes, and which of their MESSAGEs are failures.
//!
//! A filter is a TOML file (one per service, see `filters/` and `f2b.filter(5)`):
//!
//! ```toml
//! description = "OpenSSH server"
//! matches = ["_SYSTEMD_UNIT=sshd.service", "SYSLOG_IDENTIFIER=sshd"]
//! default_mode = "normal"
//! failregex = ['^Invalid user (?P<user>.*) from <HOST> port [0-9]+$']
//! ignoreregex = []
//! pidregex = ['^Connection from <HOST> port [0-9]+ on ']
//! [vars]
//! port = 'port [0-9]+'
//! [modes.aggressive]
//! include = ["normal"]
//! failregex = ['^Connection closed by invalid user .* <HOST> <port> \[preauth\]$']
//! ```
//!
//! Regexes use the linear-time `regex` crate: no look-around, no backreferences, so no ReDoS by
//! construction. `<HOST>` expands to a strict address group ([`host`]); `<F-USER>…</F-USER>`
//! is accepted as fail2ban's spelling of `(?P<user>…)`; `<name>` inserts `[vars].name`.
//! A failregex without `<HOST>` takes the address last seen for the same `_PID` (recorded by
//! `pidregex` lines and by failregex hits), which correlates multi-line sessions.
//!
//! Per jail, one [`CompiledFilter`] holds one `RegexSet` over every failregex of the chosen
//! mode; only the pattern that hit is run again for captures.

pub mod host;
pub mod library;
pub mod samples;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

use regex::{Regex, RegexSet};
use serde::Deserialize;
use toml::Spanned;

use crate::location::{line_of, Location};

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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFilter {
    description: Option<String>,
    #[serde(default)]
    matches: Vec<Spanned<String>>,
    default_mode: Option<Spanned<String>>,
    #[serde(default)]
    vars: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    failregex: Vec<Spanned<String>>,
    #[serde(default)]
    ignoreregex: Vec<Spanned<String>>,
    #[serde(default)]
    pidregex: Vec<Spanned<String>>,
    #[serde(default)]
    modes: BTreeMap<String, RawMode>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMode {
    #[allow(dead_code)]
    description: Option<String>,
    #[serde(default)]
    include: Vec<Spanned<String>>,
    #[serde(default)]
    failregex: Vec<Spanned<String>>,
    #[serde(default)]
    ignoreregex: Vec<Spanned<String>>,
    #[serde(default)]
    pidregex: Vec<Spanned<String>>,
}

/// A journal match term `FIELD=value`. Terms of one filter or jail are alternatives (OR).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct JournalMatch {
    pub field: String,
    pub value: String,
}

/// Journal fields a match may use: f2b reads exactly these per entry for routing.
pub const MATCH_FIELDS: &[&str] = &[
    "_SYSTEMD_UNIT",
    "SYSLOG_IDENTIFIER",
    "_COMM",
    "_SYSTEMD_USER_UNIT",
    "CONTAINER_NAME",
];

impl JournalMatch {
    /// Parse `FIELD=value`; the field must be one of [`MATCH_FIELDS`].
    pub fn parse(text: &str) -> Result<Self, String> {
        let (field, value) = text
            .split_once('=')
            .ok_or_else(|| format!("journal match {text:?} is not FIELD=value"))?;
        if !MATCH_FIELDS.contains(&field) {
            return Err(format!(
                "journal match {text:?}: field {field:?} is not one of {}",
                MATCH_FIELDS.join(", ")
            ));
        }
        if value.is_empty() {
            return Err(format!("journal match {text:?} has an empty value"));
        }
        Ok(JournalMatch {
            field: field.to_string(),
            value: value.to_string(),
        })
    }
}

impl fmt::Display for JournalMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.field, self.value)
    }
}

/// Which list of a filter a pattern came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PatternKind {
    Fail,
    Ignore,
    Pid,
}

/// One source regex, as written, with where it was written.
#[derive(Debug, Clone)]
pub struct PatternSrc {
    pub kind: PatternKind,
    /// `None` for the filter's base lists, else the mode that adds it.
    pub mode: Option<String>,
    pub text: String,
    pub loc: Location,
}

#[derive(Debug, Clone)]
struct ModeDef {
    include: Vec<(String, Location)>,
    patterns: Vec<PatternSrc>,
}

/// A loaded, validated filter definition (regexes checked, not yet compiled for a mode).
#[derive(Debug, Clone)]
pub struct FilterDef {
    pub name: String,
    /// Where it was loaded from (a path, or `builtin:NAME.toml`).
    pub origin: String,
    pub description: String,
    pub matches: Vec<JournalMatch>,
    pub default_mode: Option<String>,
    vars: BTreeMap<String, String>,
    base: Vec<PatternSrc>,
    modes: BTreeMap<String, ModeDef>,
}

impl FilterDef {
    /// Parse a filter file's text. `origin` names it in errors.
    pub fn parse(name: &str, origin: &str, text: &str) -> Result<FilterDef, FilterError> {
        let loc_at =
            |span: std::ops::Range<usize>| Location::new(origin, line_of(text, span.start));
        let raw: RawFilter = toml::from_str(text).map_err(|e| FilterError::Syntax {
            loc: Location::new(
                origin,
                e.span().map(|s| line_of(text, s.start)).unwrap_or(0),
            ),
            msg: e.message().to_string(),
        })?;
        let mut matches = Vec::new();
        for m in &raw.matches {
            matches.push(
                JournalMatch::parse(m.get_ref()).map_err(|msg| FilterError::Syntax {
                    loc: loc_at(m.span()),
                    msg,
                })?,
            );
        }
        let mut vars = BTreeMap::new();
        for (k, v) in &raw.vars {
            if !is_ident(k) || k.chars().any(|c| c.is_ascii_uppercase()) {
                return Err(FilterError::Syntax {
                    loc: loc_at(v.span()),
                    msg: format!("var name {k:?} must be lowercase [a-z0-9_]"),
                });
            }
            vars.insert(k.clone(), v.get_ref().clone());
        }
        let pats = |kind, mode: Option<&str>, list: &[Spanned<String>]| -> Vec<PatternSrc> {
            list.iter()
                .map(|s| PatternSrc {
                    kind,
                    mode: mode.map(str::to_string),
                    text: s.get_ref().clone(),
                    loc: loc_at(s.span()),
                })
                .collect()
        };
        let mut base = pats(PatternKind::Fail, None, &raw.failregex);
        base.extend(pats(PatternKind::Ignore, None, &raw.ignoreregex));
        base.extend(pats(PatternKind::Pid, None, &raw.pidregex));
        let mut modes = BTreeMap::new();
        for (mname, m) in &raw.modes {
            if !is_ident(mname) {
                return Err(FilterError::Syntax {
                    loc: Location::new(origin, 0),
                    msg: format!("mode name {mname:?} must be [A-Za-z0-9_-]"),
                });
            }
            let mut patterns = pats(PatternKind::Fail, Some(mname), &m.failregex);
            patterns.extend(pats(PatternKind::Ignore, Some(mname), &m.ignoreregex));
            patterns.extend(pats(PatternKind::Pid, Some(mname), &m.pidregex));
            let include = m
                .include
                .iter()
                .map(|s| (s.get_ref().clone(), loc_at(s.span())))
                .collect();
            modes.insert(mname.clone(), ModeDef { include, patterns });
        }
        let def = FilterDef {
            name: name.to_string(),
            origin: origin.to_string(),
            description: raw.description.unwrap_or_default(),
            matches,
            default_mode: raw.default_mode.as_ref().map(|s| s.get_ref().clone()),
            vars,
            base,
            modes,
        };
        if let Some(dm) = &raw.default_mode {
            def.check_mode(dm.get_ref(), loc_at(dm.span()))?;
        }
        for (mname, m) in &def.modes {
            for (inc, loc) in &m.include {
                def.check_mode(inc, loc.clone())?;
                if inc == mname {
                    return Err(FilterError::Syntax {
                        loc: loc.clone(),
                        msg: format!("mode {mname:?} includes itself"),
                    });
                }
            }
        }
        // Compile every mode once so that a broken pattern is reported at load time.
        for mode in def.mode_names_or_default() {
            def.compile(mode.as_deref())?;
        }
        Ok(def)
    }

    fn check_mode(&self, mode: &str, loc: Location) -> Result<(), FilterError> {
        if self.modes.contains_key(mode) {
            Ok(())
        } else {
            Err(FilterError::UnknownMode {
                loc,
                filter: self.name.clone(),
                mode: mode.to_string(),
                known: self.mode_list(),
            })
        }
    }

    /// Mode names, comma separated ("(none)" when the filter has no modes).
    pub fn mode_list(&self) -> String {
        if self.modes.is_empty() {
            "(none)".into()
        } else {
            self.modes.keys().cloned().collect::<Vec<_>>().join(", ")
        }
    }

    /// The modes, in name order.
    pub fn modes(&self) -> impl Iterator<Item = &str> {
        self.modes.keys().map(String::as_str)
    }

    fn mode_names_or_default(&self) -> Vec<Option<String>> {
        if self.modes.is_empty() {
            vec![None]
        } else {
            self.modes.keys().cloned().map(Some).collect()
        }
    }

    /// Every pattern of the filter (base and all modes), as written.
    pub fn all_patterns(&self) -> impl Iterator<Item = &PatternSrc> {
        self.base
            .iter()
            .chain(self.modes.values().flat_map(|m| m.patterns.iter()))
    }

    /// Patterns active in `mode`: the base lists, then included modes (depth first), then the
    /// mode's own. Each mode contributes once.
    fn patterns_for(&self, mode: Option<&str>) -> Vec<&PatternSrc> {
        let mut out: Vec<&PatternSrc> = self.base.iter().collect();
        let mut seen = Vec::new();
        fn walk<'a>(
            def: &'a FilterDef,
            mode: &str,
            seen: &mut Vec<String>,
            out: &mut Vec<&'a PatternSrc>,
        ) {
            if seen.iter().any(|s| s == mode) {
                return;
            }
            seen.push(mode.to_string());
            if let Some(m) = def.modes.get(mode) {
                for (inc, _) in &m.include {
                    walk(def, inc, seen, out);
                }
                out.extend(m.patterns.iter());
            }
        }
        if let Some(m) = mode {
            walk(self, m, &mut seen, &mut out);
        }
        out
    }

    /// Resolve the mode a jail asks for (`None` → the filter's default mode).
    pub fn resolve_mode(&self, mode: Option<&str>) -> Result<Option<String>, String> {
        match mode.or(self.default_mode.as_deref()) {
            None => Ok(None),
            Some(m) if self.modes.contains_key(m) => Ok(Some(m.to_string())),
            Some(m) => Err(format!(
                "filter {:?} has no mode {m:?} (modes: {})",
                self.name,
                self.mode_list()
            )),
        }
    }

    /// Compile the filter for one mode (`None` = default mode).
    pub fn compile(&self, mode: Option<&str>) -> Result<CompiledFilter, FilterError> {
        let mode = self.resolve_mode(mode).map_err(|msg| FilterError::Syntax {
            loc: Location::new(&self.origin, 0),
            msg,
        })?;
        let active = self.patterns_for(mode.as_deref());
        let has_pid = active.iter().any(|p| p.kind == PatternKind::Pid);
        let mut fail = PatternList::default();
        let mut ignore = PatternList::default();
        let mut pid = PatternList::default();
        for p in active {
            let expanded = expand(&p.text, &self.vars).map_err(|msg| FilterError::Regex {
                loc: p.loc.clone(),
                pattern: p.text.clone(),
                msg,
            })?;
            let re = Regex::new(&expanded).map_err(|e| FilterError::Regex {
                loc: p.loc.clone(),
                pattern: p.text.clone(),
                msg: explain_regex_error(&e),
            })?;
            let names: Vec<&str> = re.capture_names().flatten().collect();
            let has_host = names.contains(&"host");
            match p.kind {
                PatternKind::Fail if !has_host && !has_pid => {
                    return Err(FilterError::Regex {
                        loc: p.loc.clone(),
                        pattern: p.text.clone(),
                        msg: "failregex has no <HOST>, and the filter has no pidregex to take the address from the same _PID".into(),
                    })
                }
                PatternKind::Pid if !has_host => {
                    return Err(FilterError::Regex {
                        loc: p.loc.clone(),
                        pattern: p.text.clone(),
                        msg: "pidregex must contain <HOST>".into(),
                    })
                }
                _ => {}
            }
            let list = match p.kind {
                PatternKind::Fail => &mut fail,
                PatternKind::Ignore => &mut ignore,
                PatternKind::Pid => &mut pid,
            };
            list.regexes.push(re);
            list.sources.push(p.clone());
            list.expanded.push(expanded);
        }
        let build = |l: PatternList| -> Result<CompiledList, FilterError> {
            let set = RegexSet::new(&l.expanded).map_err(|e| FilterError::Regex {
                loc: Location::new(&self.origin, 0),
                pattern: "(set)".into(),
                msg: explain_regex_error(&e),
            })?;
            Ok(CompiledList {
                set,
                regexes: l.regexes,
                sources: l.sources,
            })
        };
        Ok(CompiledFilter {
            name: self.name.clone(),
            mode,
            fail: build(fail)?,
            ignore: build(ignore)?,
            pid: build(pid)?,
        })
    }
}

#[derive(Default)]
struct PatternList {
    regexes: Vec<Regex>,
    sources: Vec<PatternSrc>,
    expanded: Vec<String>,
}

#[derive(Debug, Clone)]
struct CompiledList {
    set: RegexSet,
    regexes: Vec<Regex>,
    sources: Vec<PatternSrc>,
}

impl CompiledList {
    fn first_match(&self, msg: &str) -> Option<usize> {
        if self.regexes.is_empty() {
            return None;
        }
        self.set.matches(msg).iter().next()
    }
}

fn is_ident(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Make the regex crate's error say what a filter author needs to know.
fn explain_regex_error(e: &regex::Error) -> String {
    let s = e.to_string();
    if s.contains("look-around") || s.contains("backreference") {
        format!(
            "this needs a backtracking regex engine (look-around or backreference), which f2b \
             refuses so that no log line can make matching slow; rewrite it with plain \
             alternatives and anchors.\n{s}"
        )
    } else if let regex::Error::CompiledTooBig(limit) = e {
        format!("the compiled regex exceeds the size limit of {limit} bytes; simplify it")
    } else {
        s
    }
}

/// Expand `<HOST>`, `<ADDR>`, `<IP4>`, `<IP6>`, `<F-USER>…</F-USER>` and `<var>` tags.
fn expand(pattern: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::with_capacity(pattern.len() + 256);
    let mut rest = pattern;
    let mut hosts = 0;
    while let Some(i) = rest.find('<') {
        let (before, tail) = rest.split_at(i);
        out.push_str(before);
        // `(?P<name>` and `(?<name>` are group syntax, never tags.
        // Only right after `(`: `)?<HOST>` (an optional group before a tag) is a tag.
        let is_group = before.ends_with("(?P") || before.ends_with("(?");
        let end = tail.find('>');
        let tag = end.map(|e| &tail[1..e]);
        match (is_group, tag) {
            (false, Some("HOST" | "ADDR")) => {
                hosts += 1;
                out.push_str(&host::host_group());
            }
            (false, Some("IP4")) => {
                hosts += 1;
                out.push_str(&format!("(?P<host>{})", host::ipv4_pattern()));
            }
            (false, Some("IP6")) => {
                hosts += 1;
                out.push_str(&format!(
                    r"(?P<host>{v6}|\[{v6}\])",
                    v6 = host::ipv6_pattern()
                ));
            }
            (false, Some("F-USER")) => out.push_str("(?P<user>"),
            (false, Some("/F-USER")) => out.push(')'),
            (false, Some(name)) if vars.contains_key(name) => {
                let v = &vars[name];
                if v.contains('<') && (v.contains("<HOST>") || v.contains("<ADDR>")) {
                    hosts += 1;
                }
                // Vars may use the address tags but not other vars (no recursion).
                out.push_str(
                    &expand(v, &BTreeMap::new()).map_err(|e| format!("in <{name}>: {e}"))?,
                );
            }
            _ => {
                out.push('<');
                rest = &tail[1..];
                continue;
            }
        }
        rest = &tail[end.unwrap_or(0) + 1..];
    }
    out.push_str(rest);
    if hosts > 1 {
        return Err("more than one <HOST> in one pattern: the address would be ambiguous".into());
    }
    Ok(out)
}

/// A filter compiled for one mode: what a jail runs on each entry.
#[derive(Debug, Clone)]
pub struct CompiledFilter {
    pub name: String,
    pub mode: Option<String>,
    fail: CompiledList,
    ignore: CompiledList,
    pid: CompiledList,
}

/// What a filter made of one MESSAGE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// No failregex matched (a pidregex may have recorded an address).
    Miss,
    /// A failregex matched but an ignoreregex too.
    Ignored { regex: usize },
    /// A failregex matched but yielded no usable address (bad text, or no _PID context).
    NoAddress { regex: usize },
    /// A failure from `addr`.
    Failure {
        regex: usize,
        addr: IpAddr,
        user: Option<String>,
    },
}

/// Addresses last seen per `_PID`, for failregexes without `<HOST>`. Bounded.
#[derive(Debug, Default)]
pub struct PidCache {
    map: HashMap<u32, (IpAddr, u64)>,
}

impl PidCache {
    /// Entries older than this (journal time) are forgotten.
    const MAX_AGE_US: u64 = 3_600 * 1_000_000;
    const MAX_LEN: usize = 16_384;

    fn put(&mut self, pid: u32, addr: IpAddr, time_us: u64) {
        if self.map.len() >= Self::MAX_LEN {
            let cutoff = time_us.saturating_sub(Self::MAX_AGE_US);
            self.map.retain(|_, (_, t)| *t >= cutoff);
            if self.map.len() >= Self::MAX_LEN {
                // Still full of recent sessions: keep the newer half.
                let mut times: Vec<u64> = self.map.values().map(|(_, t)| *t).collect();
                times.sort_unstable();
                let median = times[times.len() / 2];
                self.map.retain(|_, (_, t)| *t > median);
            }
        }
        self.map.insert(pid, (addr, time_us));
    }

    fn get(&self, pid: u32, time_us: u64) -> Option<IpAddr> {
        self.map
            .get(&pid)
            .filter(|(_, t)| time_us.saturating_sub(*t) <= Self::MAX_AGE_US)
            .map(|(a, _)| *a)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

impl CompiledFilter {
    /// Cheap pre-check: could [`apply`](Self::apply) do anything with `msg` (a failregex or a
    /// pidregex matches)? One `RegexSet::is_match` per list, no captures.
    pub fn may_match(&self, msg: &str) -> bool {
        (!self.fail.regexes.is_empty() && self.fail.set.is_match(msg))
            || (!self.pid.regexes.is_empty() && self.pid.set.is_match(msg))
    }

    /// Whether any pattern needs the entry's `_PID` (per-session correlation).
    pub fn uses_pid(&self) -> bool {
        !self.pid.regexes.is_empty()
            || self
                .fail
                .regexes
                .iter()
                .any(|r| !r.capture_names().flatten().any(|n| n == "host"))
    }

    /// Number of failregexes in this mode.
    pub fn fail_count(&self) -> usize {
        self.fail.regexes.len()
    }

    /// The source of failregex `i` (as reported in [`Outcome`]).
    pub fn fail_source(&self, i: usize) -> &PatternSrc {
        &self.fail.sources[i]
    }

    /// Indices of every failregex that matches `msg` (for sample checks: at most one should).
    pub fn all_fail_matches(&self, msg: &str) -> Vec<usize> {
        self.fail.set.matches(msg).iter().collect()
    }

    /// Apply the filter to one MESSAGE. `pid`/`pids` give per-session correlation.
    pub fn apply(&self, msg: &str, pid: Option<u32>, time_us: u64, pids: &mut PidCache) -> Outcome {
        let Some(i) = self.fail.first_match(msg) else {
            if let (Some(pid), Some(j)) = (pid, self.pid.first_match(msg)) {
                if let Some(addr) = self.pid.regexes[j]
                    .captures(msg)
                    .and_then(|c| c.name("host").and_then(|h| host::parse_host(h.as_str())))
                {
                    pids.put(pid, addr, time_us);
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
        let addr = match caps.name("host") {
            Some(h) => host::parse_host(h.as_str()),
            None => pid.and_then(|p| pids.get(p, time_us)),
        };
        match addr {
            Some(addr) => {
                if let Some(p) = pid {
                    pids.put(p, addr, time_us);
                }
                Outcome::Failure {
                    regex: i,
                    addr,
                    user,
                }
            }
            None => Outcome::NoAddress { regex: i },
        }
    }
}

#[cfg(test)]
mod tests;

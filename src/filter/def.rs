//! Filter files: parsing and validation of a [`FilterDef`], mode resolution.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::compiled::{CompiledFilter, CompiledList};
use super::expand::{expand, explain_regex_error, is_ident};
use super::{FilterError, JournalMatch};
use crate::location::{line_of, Location};
use crate::source::date::DateForm;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFilter {
    description: Option<String>,
    #[serde(default)]
    matches: Vec<Spanned<String>>,
    #[serde(default)]
    identifiers: Vec<String>,
    default_mode: Option<Spanned<String>>,
    #[serde(default)]
    vars: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    failregex: Vec<Spanned<String>>,
    #[serde(default)]
    session_failregex: Vec<Spanned<String>>,
    #[serde(default)]
    ignoreregex: Vec<Spanned<String>>,
    #[serde(default)]
    sessionregex: Vec<Spanned<String>>,
    /// The former name of `sessionregex`.
    #[serde(default)]
    pidregex: Vec<Spanned<String>>,
    #[serde(default)]
    modes: BTreeMap<String, RawMode>,
    /// The date forms of the service's own log files (one name or a list).
    datepattern: Option<Spanned<OneOrMany>>,
    /// Default log files per distribution (`debian = [...]`, `rhel = [...]`, `default = [...]`).
    #[serde(default)]
    logpath: BTreeMap<String, Vec<Spanned<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// The pattern lists a filter or a mode may have.
struct RawLists<'a> {
    failregex: &'a [Spanned<String>],
    session_failregex: &'a [Spanned<String>],
    ignoreregex: &'a [Spanned<String>],
    sessionregex: &'a [Spanned<String>],
    pidregex: &'a [Spanned<String>],
}

macro_rules! lists {
    ($raw:expr) => {
        RawLists {
            failregex: &$raw.failregex,
            session_failregex: &$raw.session_failregex,
            ignoreregex: &$raw.ignoreregex,
            sessionregex: &$raw.sessionregex,
            pidregex: &$raw.pidregex,
        }
    };
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
    session_failregex: Vec<Spanned<String>>,
    #[serde(default)]
    ignoreregex: Vec<Spanned<String>>,
    #[serde(default)]
    sessionregex: Vec<Spanned<String>>,
    /// The former name of `sessionregex`.
    #[serde(default)]
    pidregex: Vec<Spanned<String>>,
}

/// Which list of a filter a pattern came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PatternKind {
    /// `failregex`: one failed attempt.
    Fail,
    /// `session_failregex`: the whole session failed (counts once per session).
    SessionFail,
    /// `ignoreregex`: cancels a failure.
    Ignore,
    /// `sessionregex` (formerly `pidregex`): names the session's address.
    Session,
}

impl PatternKind {
    /// The key the list has in a filter file.
    pub fn key(self) -> &'static str {
        match self {
            PatternKind::Fail => "failregex",
            PatternKind::SessionFail => "session_failregex",
            PatternKind::Ignore => "ignoreregex",
            PatternKind::Session => "sessionregex",
        }
    }
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
    /// Alternatives: an entry belongs to the service when one of them holds.
    pub matches: Vec<JournalMatch>,
    /// Program names (syslog idents) of the service in text input, besides those `matches`
    /// names.
    pub identifiers: Vec<String>,
    pub default_mode: Option<String>,
    vars: BTreeMap<String, String>,
    base: Vec<PatternSrc>,
    modes: BTreeMap<String, ModeDef>,
    /// `datepattern`: the date forms of the service's own log files, tried in order.
    pub dates: Vec<DateForm>,
    /// `[logpath]`: default log files (absolute paths or globs) per distribution id.
    pub logpaths: BTreeMap<String, Vec<String>>,
}

fn patterns(
    lists: RawLists<'_>,
    mode: Option<&str>,
    loc_at: &impl Fn(std::ops::Range<usize>) -> Location,
) -> Vec<PatternSrc> {
    let each = |kind, list: &[Spanned<String>]| -> Vec<PatternSrc> {
        list.iter()
            .map(|s| PatternSrc {
                kind,
                mode: mode.map(str::to_string),
                text: s.get_ref().clone(),
                loc: loc_at(s.span()),
            })
            .collect()
    };
    let mut out = each(PatternKind::Fail, lists.failregex);
    out.extend(each(PatternKind::SessionFail, lists.session_failregex));
    out.extend(each(PatternKind::Ignore, lists.ignoreregex));
    out.extend(each(PatternKind::Session, lists.sessionregex));
    out.extend(each(PatternKind::Session, lists.pidregex));
    out
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
        let dates = match &raw.datepattern {
            None => Vec::new(),
            Some(d) => {
                let names = match d.get_ref() {
                    OneOrMany::One(n) => vec![n.clone()],
                    OneOrMany::Many(v) => v.clone(),
                };
                names
                    .iter()
                    .map(|n| DateForm::from_name(n))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|msg| FilterError::Syntax {
                        loc: loc_at(d.span()),
                        msg: format!("datepattern: {msg}"),
                    })?
            }
        };
        let mut logpaths = BTreeMap::new();
        for (distro, paths) in &raw.logpath {
            let mut list = Vec::new();
            for p in paths {
                if !p.get_ref().starts_with('/') {
                    return Err(FilterError::Syntax {
                        loc: loc_at(p.span()),
                        msg: format!(
                            "logpath.{distro}: {:?} is not an absolute path",
                            p.get_ref()
                        ),
                    });
                }
                list.push(p.get_ref().clone());
            }
            logpaths.insert(distro.clone(), list);
        }
        let base = patterns(lists!(raw), None, &loc_at);
        let mut modes = BTreeMap::new();
        for (mname, m) in &raw.modes {
            if !is_ident(mname) {
                return Err(FilterError::Syntax {
                    loc: Location::new(origin, 0),
                    msg: format!("mode name {mname:?} must be [A-Za-z0-9_-]"),
                });
            }
            let include = m
                .include
                .iter()
                .map(|s| (s.get_ref().clone(), loc_at(s.span())))
                .collect();
            let patterns = patterns(lists!(m), Some(mname), &loc_at);
            modes.insert(mname.clone(), ModeDef { include, patterns });
        }
        let def = FilterDef {
            name: name.to_string(),
            origin: origin.to_string(),
            description: raw.description.unwrap_or_default(),
            matches,
            identifiers: raw.identifiers,
            default_mode: raw.default_mode.as_ref().map(|s| s.get_ref().clone()),
            vars,
            base,
            modes,
            dates,
            logpaths,
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

    /// Whether a syslog text line with this ident is the service's (text has no trusted
    /// fields; see [`super::matches::ident_selected`]).
    pub fn selects_ident(&self, ident: &str) -> bool {
        self.identifiers
            .iter()
            .any(|i| super::matches::glob(i.as_bytes(), ident.as_bytes()))
            || (self.identifiers.is_empty() && super::matches::ident_selected(&self.matches, ident))
            || (!self.identifiers.is_empty() && super::matches::names_program(&self.matches, ident))
    }

    /// The default log files for a host whose os-release `ID` and `ID_LIKE` are `os_ids` (in
    /// that order): the `[logpath]` list of the first id the filter names, else its `default`.
    pub fn logpath_for(&self, os_ids: &[String]) -> Option<&[String]> {
        os_ids
            .iter()
            .find_map(|id| self.logpaths.get(id))
            .or_else(|| self.logpaths.get("default"))
            .map(Vec::as_slice)
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
        let has_session = active.iter().any(|p| p.kind == PatternKind::Session)
            || active.iter().any(|p| p.text.contains("<F-ID>"));
        let mut fail = CompiledList::default();
        let mut ignore = CompiledList::default();
        let mut session = CompiledList::default();
        for p in active {
            let err = |msg: String| FilterError::Regex {
                loc: p.loc.clone(),
                pattern: p.text.clone(),
                msg,
            };
            let expanded = expand(&p.text, &self.vars).map_err(err)?;
            let re = regex::Regex::new(&expanded).map_err(|e| err(explain_regex_error(&e)))?;
            let names: Vec<&str> = re.capture_names().flatten().collect();
            let has_host = names.contains(&"host");
            match p.kind {
                PatternKind::Fail | PatternKind::SessionFail if !has_host && !has_session => {
                    return Err(err(format!(
                        "{} has no <HOST>, and the filter has no sessionregex (or <F-ID>) to \
                         take the address from the line's session",
                        p.kind.key()
                    )))
                }
                PatternKind::Session if !has_host => {
                    return Err(err("sessionregex must contain <HOST>".into()))
                }
                _ => {}
            }
            let list = match p.kind {
                PatternKind::Fail | PatternKind::SessionFail => &mut fail,
                PatternKind::Ignore => &mut ignore,
                PatternKind::Session => &mut session,
            };
            list.push(re, p.clone(), expanded);
        }
        Ok(CompiledFilter {
            name: self.name.clone(),
            mode,
            fail: fail.build(&self.origin)?,
            ignore: ignore.build(&self.origin)?,
            session: session.build(&self.origin)?,
        })
    }
}

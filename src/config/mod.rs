//! Configuration: `/etc/f2b/f2b.toml` plus drop-ins `jail.d/*.toml` beside it.
//!
//! Parsed in stages: each file is read into raw, span-carrying structs (`serde`,
//! `deny_unknown_fields`, so an unknown key is an error with file:line); the files are merged
//! key by key (lexical order, later wins); then [`Settings`] is validated from the merge: typed
//! durations, parsed CIDRs, filters resolved and compiled. Every error names the file, line and
//! key. Nothing here touches the system, so `f2b check` and a reload can validate safely.

pub mod duration;
mod ignore;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

pub use duration::{format_duration, parse_duration, BanTime};
pub use ignore::{local_addresses, IgnoreList};

use crate::filter::library::FilterLibrary;
use crate::filter::{CompiledFilter, FilterError, JournalMatch};
use crate::firewall::{JailRules, PortRange, Protocol, Verdict};
use crate::location::{line_of, Location};

/// Default root configuration file.
pub const DEFAULT_CONFIG: &str = "/etc/f2b/f2b.toml";
/// Default state directory.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/f2b";

/// Errors of the configuration subsystem.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{loc}: {msg}")]
    Invalid { loc: Location, msg: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Filter(#[from] FilterError),
}

/// A duration as written: integer seconds or text such as "1h30m".
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum RawDur {
    Int(i64),
    Str(String),
}

/// A port as written: a number, "8000-8100", or a service name ("ssh").
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum RawPort {
    Int(i64),
    Str(String),
}

macro_rules! jail_keys {
    ($($name:ident : $ty:ty),* $(,)?) => {
        /// One `[defaults]` or `[jail.NAME]` table as written in one file.
        #[derive(Debug, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct RawJail { $( #[serde(default)] $name: Option<Spanned<$ty>>, )* }

        /// The same keys merged over all files: each value remembers its file.
        #[derive(Debug, Default, Clone)]
        struct MergedJail { $( $name: Option<(Spanned<$ty>, usize)>, )* }

        impl MergedJail {
            fn merge(&mut self, raw: RawJail, file: usize) {
                $( if let Some(v) = raw.$name { self.$name = Some((v, file)); } )*
            }
        }

        /// Every key a jail table accepts (for documentation and tests).
        pub const JAIL_KEYS: &[&str] = &[$(stringify!($name)),*];
    };
}

jail_keys! {
    enabled: bool,
    filter: String,
    mode: String,
    source: String,
    watch_jails: Vec<String>,
    matches: Vec<String>,
    extra_matches: Vec<String>,
    maxretry: i64,
    findtime: RawDur,
    bantime: RawDur,
    ignoreip: Vec<String>,
    ignoreself: bool,
    ports: Vec<RawPort>,
    protocol: String,
    action: String,
    ipv4_prefix: i64,
    ipv6_prefix: i64,
    bantime_increment: bool,
    bantime_factor: f64,
    bantime_multipliers: Vec<f64>,
    bantime_maxtime: RawDur,
    bantime_rndtime: RawDur,
    bantime_overalljails: bool,
    bantime_fastrebans: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDaemon {
    state_dir: Option<Spanned<String>>,
    history_max_age: Option<Spanned<RawDur>>,
    filter_dirs: Option<Spanned<Vec<String>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    daemon: Option<RawDaemon>,
    defaults: Option<RawJail>,
    #[serde(default)]
    jail: BTreeMap<String, Spanned<RawJail>>,
}

/// Where a jail's events come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JailSource {
    /// Journal entries through a filter.
    Journal {
        filter: String,
        mode: Option<String>,
        matches: Vec<JournalMatch>,
    },
    /// f2b's own bans in other jails (`recidive` without parsing our log). Empty = all jails.
    Bans { jails: Vec<String> },
}

/// Incremental ban times for repeat offenders.
#[derive(Debug, Clone, PartialEq)]
pub struct Increment {
    /// bantime × factor × 2^(bans) unless `multipliers` is given.
    pub factor: f64,
    /// bantime × multipliers[min(bans, len-1)].
    pub multipliers: Vec<f64>,
    pub maxtime: Option<Duration>,
    pub rndtime: Duration,
    /// Count previous bans of the address in every jail, not only this one.
    pub overall_jails: bool,
    /// A known offender is banned after maxretry >> bans failures (at least 1).
    pub fast_rebans: bool,
}

/// One validated jail.
#[derive(Debug, Clone)]
pub struct JailConfig {
    pub name: String,
    pub enabled: bool,
    pub source: JailSource,
    pub maxretry: u32,
    pub findtime: Duration,
    pub bantime: BanTime,
    pub ignore: IgnoreList,
    pub ignoreself: bool,
    pub rules: JailRules,
    pub ipv4_prefix: u8,
    pub ipv6_prefix: u8,
    pub increment: Option<Increment>,
    /// Where `[jail.NAME]` was declared.
    pub loc: Location,
}

impl JailConfig {
    /// The filter name, for journal jails.
    pub fn filter_name(&self) -> Option<&str> {
        match &self.source {
            JailSource::Journal { filter, .. } => Some(filter),
            JailSource::Bans { .. } => None,
        }
    }
}

/// Daemon-wide settings.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    pub state_dir: PathBuf,
    pub history_max_age: Duration,
    pub filter_dirs: Vec<PathBuf>,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub daemon: DaemonConfig,
    /// Every jail declared, enabled or not, in name order.
    pub jails: Vec<JailConfig>,
    /// Compiled filters of enabled journal jails, by jail name.
    pub filters: BTreeMap<String, CompiledFilter>,
    /// The files read, in merge order.
    pub files: Vec<PathBuf>,
    pub library: FilterLibrary,
}

impl Settings {
    pub fn enabled_jails(&self) -> impl Iterator<Item = &JailConfig> {
        self.jails.iter().filter(|j| j.enabled)
    }
    pub fn jail(&self, name: &str) -> Option<&JailConfig> {
        self.jails.iter().find(|j| j.name == name)
    }
}

/// Options that come from the command line rather than the files.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Root file; its directory's `jail.d/*.toml` are drop-ins. A missing root file is an
    /// error unless `allow_missing` (then built-in defaults and no jails).
    pub config: PathBuf,
    pub allow_missing: bool,
    /// Extra filter directories searched after the defaults (tests, `--filter-dir`).
    pub filter_dirs: Vec<PathBuf>,
    /// Do not search /usr/lib/f2b/filters and /etc/f2b/filters (tests).
    pub no_system_filters: bool,
    /// Text used in place of a missing root file (with `allow_missing`): the shipped default
    /// configuration, so that a fresh checkout runs with the `sshd` jail enabled.
    pub default_text: Option<&'static str>,
}

/// The shipped default configuration (`packaging/f2b.toml`).
pub const DEFAULT_CONFIG_TEXT: &str = include_str!("../../packaging/f2b.toml");

struct SourceFile {
    path: String,
    text: String,
}

impl SourceFile {
    fn loc(&self, span: std::ops::Range<usize>) -> Location {
        Location::new(&self.path, line_of(&self.text, span.start))
    }
}

/// Read, merge and validate the configuration.
pub fn load(opts: &LoadOptions) -> Result<Settings, ConfigError> {
    let mut paths = Vec::new();
    match fs::metadata(&opts.config) {
        Ok(_) => paths.push(opts.config.clone()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && opts.allow_missing => {}
        Err(source) => {
            return Err(ConfigError::Io {
                path: opts.config.clone(),
                source,
            })
        }
    }
    let dropin = opts
        .config
        .parent()
        .unwrap_or(Path::new("."))
        .join("jail.d");
    if let Ok(rd) = fs::read_dir(&dropin) {
        let mut more: Vec<PathBuf> = rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().and_then(|s| s.to_str()) == Some("toml"))
            .collect();
        more.sort();
        paths.extend(more);
    }
    let mut files = Vec::new();
    if paths.first() != Some(&opts.config) {
        if let Some(text) = opts.default_text {
            files.push(SourceFile {
                path: "builtin:packaging/f2b.toml".into(),
                text: text.to_string(),
            });
        }
    }
    for p in &paths {
        let text = fs::read_to_string(p).map_err(|source| ConfigError::Io {
            path: p.clone(),
            source,
        })?;
        files.push(SourceFile {
            path: p.display().to_string(),
            text,
        });
    }
    let mut settings = from_sources(&files, opts)?;
    settings.files = paths;
    Ok(settings)
}

/// Validate configuration given as text (tests, `f2b check -`).
pub fn load_str(name: &str, text: &str, opts: &LoadOptions) -> Result<Settings, ConfigError> {
    from_sources(
        &[SourceFile {
            path: name.to_string(),
            text: text.to_string(),
        }],
        opts,
    )
}

fn from_sources(files: &[SourceFile], opts: &LoadOptions) -> Result<Settings, ConfigError> {
    let mut defaults = MergedJail::default();
    let mut jails: BTreeMap<String, (MergedJail, Location)> = BTreeMap::new();
    let mut daemon = RawDaemon::default();
    let mut daemon_file = 0;
    for (i, f) in files.iter().enumerate() {
        let raw: RawFile = toml::from_str(&f.text).map_err(|e| ConfigError::Invalid {
            loc: Location::new(
                &f.path,
                e.span().map(|s| line_of(&f.text, s.start)).unwrap_or(0),
            ),
            msg: e.message().trim().to_string(),
        })?;
        if let Some(d) = raw.defaults {
            defaults.merge(d, i);
        }
        if let Some(d) = raw.daemon {
            daemon_file = i;
            if d.state_dir.is_some() {
                daemon.state_dir = d.state_dir;
            }
            if d.history_max_age.is_some() {
                daemon.history_max_age = d.history_max_age;
            }
            if d.filter_dirs.is_some() {
                daemon.filter_dirs = d.filter_dirs;
            }
        }
        for (name, j) in raw.jail {
            let loc = f.loc(j.span());
            if !valid_jail_name(&name) {
                return Err(ConfigError::Invalid {
                    loc,
                    msg: format!("jail name {name:?}: use 1–32 characters of [A-Za-z0-9_-]"),
                });
            }
            let entry = jails
                .entry(name)
                .or_insert_with(|| (MergedJail::default(), loc));
            entry.0.merge(j.into_inner(), i);
        }
    }
    let dfile = &files.get(daemon_file);
    let daemon_loc = |s: std::ops::Range<usize>| match dfile {
        Some(f) => f.loc(s),
        None => Location::new("(none)", 0),
    };
    let state_dir = daemon
        .state_dir
        .map(|s| PathBuf::from(s.into_inner()))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR));
    let history_max_age = match &daemon.history_max_age {
        Some(s) => dur(s.get_ref(), false).map_err(|msg| ConfigError::Invalid {
            loc: daemon_loc(s.span()),
            msg: format!("history_max_age: {msg}"),
        })?,
        None => BanTime::For(Duration::from_secs(30 * 86_400)),
    }
    .as_duration()
    .unwrap_or(Duration::MAX);
    let mut filter_dirs = Vec::new();
    if !opts.no_system_filters {
        filter_dirs.extend(FilterLibrary::default_dirs());
    }
    filter_dirs.extend(beside_filters(&opts.config));
    if let Some(d) = daemon.filter_dirs {
        filter_dirs.extend(d.into_inner().into_iter().map(PathBuf::from));
    }
    filter_dirs.extend(opts.filter_dirs.iter().cloned());
    let library = FilterLibrary::load(&filter_dirs)?;

    let mut out = Vec::new();
    let mut filters = BTreeMap::new();
    for (name, (merged, loc)) in &jails {
        let r = Resolver {
            files,
            jail: merged,
            defaults: &defaults,
            jail_name: name,
            decl: loc,
        };
        let jail = r.build(&library)?;
        if jail.enabled {
            if let JailSource::Journal { filter, mode, .. } = &jail.source {
                let def = library.get(filter).expect("checked by build");
                filters.insert(name.clone(), def.compile(mode.as_deref())?);
            }
        }
        out.push(jail);
    }
    // Bans-sourced jails may only watch jails that exist.
    for j in &out {
        if let JailSource::Bans { jails: watched } = &j.source {
            for w in watched {
                if !out.iter().any(|o| &o.name == w) || w == &j.name {
                    return Err(ConfigError::Invalid {
                        loc: j.loc.clone(),
                        msg: format!(
                            "jail {}: watch_jails names {w:?}, which is not another jail",
                            j.name
                        ),
                    });
                }
            }
        }
    }
    Ok(Settings {
        daemon: DaemonConfig {
            state_dir,
            history_max_age,
            filter_dirs,
        },
        jails: out,
        filters,
        files: Vec::new(),
        library,
    })
}

/// The `filters/` folder beside a root configuration file, searched for filters as `jail.d/`
/// is for drop-ins (after the system directories; `None` when it is one of them).
pub fn beside_filters(config: &Path) -> Option<PathBuf> {
    if config.as_os_str().is_empty() {
        return None;
    }
    let dir = config.parent().unwrap_or(Path::new(".")).join("filters");
    (!FilterLibrary::default_dirs().contains(&dir)).then_some(dir)
}

/// Jail names appear in nftables set names and D-Bus object paths: keep them plain.
pub fn valid_jail_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn dur(raw: &RawDur, allow_forever: bool) -> Result<BanTime, String> {
    match raw {
        RawDur::Int(-1) if allow_forever => Ok(BanTime::Forever),
        RawDur::Int(n) if *n >= 0 => Ok(BanTime::For(Duration::from_secs(*n as u64))),
        RawDur::Int(n) => Err(format!(
            "{n} is not a duration{}",
            if allow_forever {
                " (use -1 or \"forever\" for permanent)"
            } else {
                ""
            }
        )),
        RawDur::Str(s) if allow_forever && matches!(s.trim(), "forever" | "permanent" | "-1") => {
            Ok(BanTime::Forever)
        }
        RawDur::Str(s) => parse_duration(s).map(BanTime::For),
    }
}

struct Resolver<'a> {
    files: &'a [SourceFile],
    jail: &'a MergedJail,
    defaults: &'a MergedJail,
    jail_name: &'a str,
    decl: &'a Location,
}

macro_rules! get {
    ($r:expr, $key:ident) => {
        $r.jail
            .$key
            .as_ref()
            .or($r.defaults.$key.as_ref())
            .map(|(v, f)| (v.get_ref(), $r.files[*f].loc(v.span())))
    };
}

impl Resolver<'_> {
    fn err(&self, loc: Location, key: &str, msg: impl std::fmt::Display) -> ConfigError {
        ConfigError::Invalid {
            loc,
            msg: format!("jail {}: {key}: {msg}", self.jail_name),
        }
    }

    fn build(&self, library: &FilterLibrary) -> Result<JailConfig, ConfigError> {
        let enabled = get!(self, enabled).map(|(v, _)| *v).unwrap_or(false);
        let source_kind = get!(self, source);
        let source = match source_kind.as_ref().map(|(s, l)| (s.as_str(), l.clone())) {
            None | Some(("journal", _)) => {
                let (fname, floc) = get!(self, filter)
                    .map(|(v, l)| (v.clone(), l))
                    .unwrap_or_else(|| (self.jail_name.to_string(), self.decl.clone()));
                let def = library.get(&fname).ok_or_else(|| {
                    self.err(
                        floc.clone(),
                        "filter",
                        format!(
                            "unknown filter {fname:?} (known: {})",
                            library
                                .filters
                                .keys()
                                .cloned()
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    )
                })?;
                let mode = match get!(self, mode) {
                    Some((m, mloc)) => Some(
                        def.resolve_mode(Some(m))
                            .map_err(|e| self.err(mloc, "mode", e))?
                            .unwrap_or_default(),
                    ),
                    None => def
                        .resolve_mode(None)
                        .map_err(|e| self.err(floc.clone(), "mode", e))?,
                };
                let mut matches = match get!(self, matches) {
                    Some((list, l)) => self.parse_matches(list, l, "matches")?,
                    None => def.matches.clone(),
                };
                if let Some((list, l)) = get!(self, extra_matches) {
                    matches.extend(self.parse_matches(list, l, "extra_matches")?);
                }
                matches.sort();
                matches.dedup();
                if matches.is_empty() {
                    return Err(self.err(
                        floc,
                        "matches",
                        format!("filter {fname:?} has no journal matches and the jail sets none: it would read every entry of the journal; set matches = [\"_SYSTEMD_UNIT=…\"]"),
                    ));
                }
                JailSource::Journal {
                    filter: fname,
                    mode,
                    matches,
                }
            }
            Some(("bans", _)) => JailSource::Bans {
                jails: get!(self, watch_jails)
                    .map(|(v, _)| v.clone())
                    .unwrap_or_default(),
            },
            Some((other, l)) => {
                return Err(self.err(
                    l,
                    "source",
                    format!("{other:?} is not \"journal\" or \"bans\""),
                ))
            }
        };
        let maxretry = match get!(self, maxretry) {
            Some((n, l)) => u32::try_from(*n)
                .ok()
                .filter(|n| (1..=1_000_000).contains(n))
                .ok_or_else(|| self.err(l, "maxretry", format!("{n} is not in 1..=1000000")))?,
            None => 5,
        };
        let findtime = match get!(self, findtime) {
            Some((d, l)) => match dur(d, false).map_err(|e| self.err(l.clone(), "findtime", e))? {
                BanTime::For(d) if !d.is_zero() => d,
                _ => return Err(self.err(l, "findtime", "must be greater than 0")),
            },
            None => Duration::from_secs(600),
        };
        let bantime = match get!(self, bantime) {
            Some((d, l)) => match dur(d, true).map_err(|e| self.err(l.clone(), "bantime", e))? {
                BanTime::For(d) if d.is_zero() => {
                    return Err(self.err(
                        l,
                        "bantime",
                        "must be greater than 0 (or -1 for permanent)",
                    ))
                }
                b => b,
            },
            None => BanTime::For(Duration::from_secs(600)),
        };
        let ignore = match get!(self, ignoreip) {
            Some((list, l)) => IgnoreList::parse(list).map_err(|e| self.err(l, "ignoreip", e))?,
            None => IgnoreList::parse(&["127.0.0.0/8".to_string(), "::1".to_string()])
                .expect("built-in ignore list"),
        };
        let ignoreself = get!(self, ignoreself).map(|(v, _)| *v).unwrap_or(true);
        let ports = match get!(self, ports) {
            Some((list, l)) => list
                .iter()
                .map(parse_port)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| self.err(l, "ports", e))?,
            None => Vec::new(),
        };
        let protocol = match get!(self, protocol) {
            Some((p, l)) => match p.as_str() {
                "tcp" => Protocol::Tcp,
                "udp" => Protocol::Udp,
                "tcp+udp" | "tcpudp" | "both" => Protocol::TcpUdp,
                "all" => Protocol::All,
                o => {
                    return Err(self.err(
                        l,
                        "protocol",
                        format!("{o:?} is not tcp, udp, tcp+udp or all"),
                    ))
                }
            },
            None if ports.is_empty() => Protocol::All,
            None => Protocol::Tcp,
        };
        if protocol == Protocol::All && !ports.is_empty() {
            let l = get!(self, protocol)
                .map(|(_, l)| l)
                .unwrap_or(self.decl.clone());
            return Err(self.err(l, "protocol", "\"all\" cannot be combined with ports"));
        }
        let verdict = match get!(self, action) {
            Some((a, l)) => match a.as_str() {
                "drop" => Verdict::Drop,
                "reject" => Verdict::Reject,
                o => return Err(self.err(l, "action", format!("{o:?} is not drop or reject"))),
            },
            None => Verdict::Drop,
        };
        let prefix =
            |key: &str, v: Option<(&i64, Location)>, max: i64| -> Result<u8, ConfigError> {
                match v {
                    Some((n, l)) if (8..=max).contains(n) => {
                        let _ = l;
                        Ok(*n as u8)
                    }
                    Some((n, l)) => Err(self.err(l, key, format!("{n} is not in 8..={max}"))),
                    None => Ok(max as u8),
                }
            };
        let ipv4_prefix = prefix("ipv4_prefix", get!(self, ipv4_prefix), 32)?;
        let ipv6_prefix = prefix("ipv6_prefix", get!(self, ipv6_prefix), 128)?;
        let increment = if get!(self, bantime_increment)
            .map(|(v, _)| *v)
            .unwrap_or(false)
        {
            let factor = match get!(self, bantime_factor) {
                Some((f, l)) if !(f.is_finite() && *f > 0.0) => {
                    return Err(self.err(l, "bantime_factor", "must be a positive number"))
                }
                Some((f, _)) => *f,
                None => 1.0,
            };
            let multipliers = match get!(self, bantime_multipliers) {
                Some((m, l)) if m.iter().any(|x| !(x.is_finite() && *x > 0.0)) => {
                    return Err(self.err(
                        l,
                        "bantime_multipliers",
                        "every multiplier must be a positive number",
                    ))
                }
                Some((m, _)) => m.clone(),
                None => Vec::new(),
            };
            let maxtime = match get!(self, bantime_maxtime) {
                Some((d, l)) => dur(d, false)
                    .map_err(|e| self.err(l, "bantime_maxtime", e))?
                    .as_duration(),
                None => Some(Duration::from_secs(7 * 86_400)),
            };
            let rndtime = match get!(self, bantime_rndtime) {
                Some((d, l)) => dur(d, false)
                    .map_err(|e| self.err(l, "bantime_rndtime", e))?
                    .as_duration()
                    .unwrap_or_default(),
                None => Duration::ZERO,
            };
            Some(Increment {
                factor,
                multipliers,
                maxtime,
                rndtime,
                overall_jails: get!(self, bantime_overalljails)
                    .map(|(v, _)| *v)
                    .unwrap_or(false),
                fast_rebans: get!(self, bantime_fastrebans)
                    .map(|(v, _)| *v)
                    .unwrap_or(true),
            })
        } else {
            None
        };
        Ok(JailConfig {
            name: self.jail_name.to_string(),
            enabled,
            source,
            maxretry,
            findtime,
            bantime,
            ignore,
            ignoreself,
            rules: JailRules {
                name: self.jail_name.to_string(),
                ports,
                protocol,
                verdict,
            },
            ipv4_prefix,
            ipv6_prefix,
            increment,
            loc: self.decl.clone(),
        })
    }

    fn parse_matches(
        &self,
        list: &[String],
        l: Location,
        key: &str,
    ) -> Result<Vec<JournalMatch>, ConfigError> {
        list.iter()
            .map(|m| JournalMatch::parse(m).map_err(|e| self.err(l.clone(), key, e)))
            .collect()
    }
}

fn parse_port(p: &RawPort) -> Result<PortRange, String> {
    let one = |s: &str| -> Result<u16, String> {
        let s = s.trim();
        if let Ok(n) = s.parse::<u16>() {
            if n == 0 {
                return Err("port 0 is not a port".into());
            }
            return Ok(n);
        }
        service_port(s).ok_or_else(|| format!("{s:?} is not a port number or a known service name"))
    };
    match p {
        RawPort::Int(n) => u16::try_from(*n)
            .ok()
            .filter(|n| *n > 0)
            .map(|n| PortRange { first: n, last: n })
            .ok_or_else(|| format!("{n} is not a port (1–65535)")),
        RawPort::Str(s) => match s.split_once('-') {
            Some((a, b)) => {
                let (first, last) = (one(a)?, one(b)?);
                if first > last {
                    return Err(format!("range {s:?} is reversed"));
                }
                Ok(PortRange { first, last })
            }
            None => one(s).map(|n| PortRange { first: n, last: n }),
        },
    }
}

/// Resolve a service name from /etc/services (tcp), falling back to a few well-known names.
fn service_port(name: &str) -> Option<u16> {
    if let Ok(text) = fs::read_to_string("/etc/services") {
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            let mut parts = line.split_whitespace();
            let (Some(svc), Some(pp)) = (parts.next(), parts.next()) else {
                continue;
            };
            let Some((port, proto)) = pp.split_once('/') else {
                continue;
            };
            if proto == "tcp" && (svc == name || parts.any(|a| a == name)) {
                return port.parse().ok();
            }
        }
    }
    Some(match name {
        "ssh" => 22,
        "smtp" => 25,
        "http" => 80,
        "pop3" => 110,
        "imap" | "imap2" => 143,
        "https" => 443,
        "submission" => 587,
        "imaps" => 993,
        "pop3s" => 995,
        _ => return None,
    })
}

#[cfg(test)]
mod tests;

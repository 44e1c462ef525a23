//! `[feed.NAME]`: blocklist feeds enforced beside the jails. Each key is checked on its own, so
//! that every wrong key of a feed is reported with its file and line.

use std::path::PathBuf;
use std::time::Duration;

use super::duration::from_raw as dur;
use super::error::ConfigError;
use super::ignore::IgnoreList;
use super::ports::{parse_port, parse_protocol, parse_verdict, Services};
use super::raw::{MergedFeed, Val};
use crate::firewall::{PortRange, Protocol, Verdict};
use crate::location::Location;

/// Default `refresh`.
pub const REFRESH: Duration = Duration::from_secs(3600);
/// The shortest `refresh` (a feed server is somebody else's: do not hammer it).
pub const MIN_REFRESH: Duration = Duration::from_secs(60);
/// Default `max_size`: 16 MiB.
pub const MAX_SIZE: u64 = 16 << 20;
/// Default `max_entries`.
pub const MAX_ENTRIES: usize = 1_000_000;

/// How a feed's lines are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FeedFormat {
    /// An address or CIDR per line; `#` and `;` start comments; text after the first word is
    /// ignored.
    Plain,
    /// Spamhaus DROP: `CIDR ; SBLnnn` lines with `;` comments, or its JSON lines
    /// (`{"cidr":…}`, a last `{"type":"metadata",…}` line).
    SpamhausDrop,
    /// FireHOL netsets: an address or CIDR per line, `#` comments.
    Firehol,
}

impl FeedFormat {
    pub const NAMES: [&'static str; 3] = ["plain", "spamhaus-drop", "firehol"];

    pub fn name(self) -> &'static str {
        match self {
            FeedFormat::Plain => "plain",
            FeedFormat::SpamhausDrop => "spamhaus-drop",
            FeedFormat::Firehol => "firehol",
        }
    }

    fn parse(text: &str) -> Option<FeedFormat> {
        match text {
            "plain" => Some(FeedFormat::Plain),
            "spamhaus-drop" | "spamhaus" | "drop" => Some(FeedFormat::SpamhausDrop),
            "firehol" | "netset" => Some(FeedFormat::Firehol),
            _ => None,
        }
    }
}

/// Where a feed comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FeedSource {
    /// `http://` or `https://`.
    Url(String),
    /// A local file.
    Path(PathBuf),
}

impl std::fmt::Display for FeedSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FeedSource::Url(u) => f.write_str(u),
            FeedSource::Path(p) => write!(f, "{}", p.display()),
        }
    }
}

/// One validated feed.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedConfig {
    /// `[A-Za-z0-9_-]{1,32}`: part of the nftables set names `feed.NAME-n4`/`-n6`.
    pub name: String,
    pub enabled: bool,
    pub source: FeedSource,
    pub refresh: Duration,
    pub format: FeedFormat,
    /// Bodies larger than this are refused (checked while they arrive).
    pub max_size: u64,
    /// Feeds with more good entries are refused (the previous copy stays).
    pub max_entries: usize,
    /// Scope of the drop rule: empty = every port.
    pub ports: Vec<PortRange>,
    pub protocol: Protocol,
    pub verdict: Verdict,
    /// Addresses this feed never drops: its `ignoreip` and `[defaults]`' (besides every
    /// enabled jail's `ignoreip`, loopback and the host's own addresses, added by the engine).
    pub ignore: IgnoreList,
    /// Where `[feed.NAME]` was declared.
    pub loc: Location,
}

impl FeedConfig {
    /// The same content source: a change of these makes the feed fetched again at once.
    pub fn same_source(&self, other: &FeedConfig) -> bool {
        (&self.source, self.format, self.max_size, self.max_entries)
            == (
                &other.source,
                other.format,
                other.max_size,
                other.max_entries,
            )
    }
}

/// Resolves one merged `[feed.NAME]`; every problem found goes to `errors`.
pub(super) fn resolve(
    name: &str,
    m: &MergedFeed,
    decl: &Location,
    defaults_ignoreip: Option<&Val<Vec<String>>>,
    services: &Services,
    errors: &mut Vec<ConfigError>,
) -> Option<FeedConfig> {
    let err = |loc: &Location, key: &str, msg: &dyn std::fmt::Display| ConfigError::Invalid {
        loc: loc.clone(),
        msg: format!("feed {name}: {key}: {msg}"),
    };
    let before = errors.len();
    let source = match (&m.url, &m.path) {
        (Some(u), None) => {
            let url = u.v.trim();
            let lower = url.to_ascii_lowercase();
            let scheme_ok = ["http://", "https://"].iter().any(|s| lower.starts_with(s));
            if !scheme_ok || url.len() < 9 || url.contains(char::is_whitespace) {
                errors.push(err(
                    &u.loc,
                    "url",
                    &format!("{url:?} is not an http:// or https:// URL"),
                ));
            }
            Some(FeedSource::Url(url.to_string()))
        }
        (None, Some(p)) => {
            if !p.v.starts_with('/') {
                errors.push(err(&p.loc, "path", &"must be an absolute path"));
            }
            Some(FeedSource::Path(PathBuf::from(&p.v)))
        }
        (Some(_), Some(p)) => {
            errors.push(err(&p.loc, "path", &"give either url or path, not both"));
            None
        }
        (None, None) => {
            errors.push(ConfigError::Invalid {
                loc: decl.clone(),
                msg: format!("feed {name}: needs a url (http/https) or a path"),
            });
            None
        }
    };
    let refresh = match &m.refresh {
        None => REFRESH,
        Some(v) => match dur(&v.v, false) {
            Ok(d) => {
                let d = d.as_duration().unwrap_or(REFRESH);
                if d < MIN_REFRESH {
                    errors.push(err(&v.loc, "refresh", &"must be at least 1m"));
                }
                d
            }
            Err(e) => {
                errors.push(err(&v.loc, "refresh", &e));
                REFRESH
            }
        },
    };
    let format = match &m.format {
        None => FeedFormat::Plain,
        Some(v) => FeedFormat::parse(v.v.trim()).unwrap_or_else(|| {
            let known = FeedFormat::NAMES.join(", ");
            errors.push(err(
                &v.loc,
                "format",
                &format!("{:?} is not one of {known}", v.v),
            ));
            FeedFormat::Plain
        }),
    };
    let mut positive = |v: &Option<Val<i64>>, key: &str, default: u64| match v {
        None => default,
        Some(n) if n.v > 0 => n.v as u64,
        Some(n) => {
            errors.push(err(&n.loc, key, &"must be a positive number"));
            default
        }
    };
    let max_size = positive(&m.max_size, "max_size", MAX_SIZE);
    let max_entries = positive(&m.max_entries, "max_entries", MAX_ENTRIES as u64) as usize;
    let ports = match &m.ports {
        None => Vec::new(),
        Some(v) => {
            v.v.iter()
                .map(|p| parse_port(p, services))
                .collect::<Result<Vec<_>, _>>()
                .unwrap_or_else(|e| {
                    errors.push(err(&v.loc, "ports", &e));
                    Vec::new()
                })
        }
    };
    let protocol = match &m.protocol {
        None => parse_protocol(None, !ports.is_empty()).expect("a default"),
        Some(v) => parse_protocol(Some(v.v.as_str()), !ports.is_empty()).unwrap_or_else(|e| {
            errors.push(err(&v.loc, "protocol", &e));
            Protocol::All
        }),
    };
    let verdict = match &m.action {
        None => Verdict::Drop,
        Some(v) => parse_verdict(Some(v.v.as_str())).unwrap_or_else(|e| {
            errors.push(err(&v.loc, "action", &e));
            Verdict::Drop
        }),
    };
    // The feed's own ignoreip and [defaults]' (a wrong [defaults] list is reported there).
    let mut ignore = match &m.ignoreip {
        None => IgnoreList::default(),
        Some(v) => IgnoreList::parse(&v.v).unwrap_or_else(|e| {
            errors.push(err(&v.loc, "ignoreip", &e));
            IgnoreList::default()
        }),
    };
    if let Some(Ok(d)) = defaults_ignoreip.map(|v| IgnoreList::parse(&v.v)) {
        ignore.extend(d.nets().iter().copied());
    }
    if errors.len() > before {
        return None;
    }
    Some(FeedConfig {
        name: name.to_string(),
        enabled: m.enabled.as_ref().is_none_or(|v| v.v),
        source: source?,
        refresh,
        format,
        max_size,
        max_entries,
        ports,
        protocol,
        verdict,
        ignore,
        loc: decl.clone(),
    })
}

//! The validated configuration: what the rest of f2b reads.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::duration::BanTime;
use super::ignore::IgnoreList;
use crate::filter::library::FilterLibrary;
use crate::filter::{CompiledFilter, JournalMatch};
use crate::firewall::JailRules;
use crate::location::Location;

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
    Bans {
        jails: Vec<String>,
    },
    Fleet,
    /// Lines of log files through a filter (`source = "file"`).
    File {
        filter: String,
        mode: Option<String>,
        /// Absolute paths and globs (`logpath`, else the filter's default for this host).
        logpath: Vec<String>,
    },
}

impl JailSource {
    /// The filter and its mode, for jails that read a log (journal or files).
    pub fn filter_mode(&self) -> Option<(&str, Option<&str>)> {
        match self {
            JailSource::Journal { filter, mode, .. } | JailSource::File { filter, mode, .. } => {
                Some((filter, mode.as_deref()))
            }
            JailSource::Bans { .. } | JailSource::Fleet => None,
        }
    }
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
#[derive(Debug, Clone, PartialEq)]
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
    /// Addresses with open failure windows tracked at most (the oldest dropped beyond).
    pub max_tracked: usize,
    /// Named actions told of this jail's bans and unbans (besides the firewall).
    pub actions: Vec<String>,
    /// Where `[jail.NAME]` was declared.
    pub loc: Location,
}

impl JailConfig {
    /// The same settings (what enforces and counts), wherever the jail was written.
    pub fn same_settings(&self, other: &JailConfig) -> bool {
        let mut a = self.clone();
        a.loc = other.loc.clone();
        a == *other
    }

    /// The filter name, for journal and file jails.
    pub fn filter_name(&self) -> Option<&str> {
        self.source.filter_mode().map(|(f, _)| f)
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
    /// Compiled filters of every journal jail (enabled or not), by jail name.
    pub filters: BTreeMap<String, CompiledFilter>,
    /// The files read, in merge order.
    pub files: Vec<PathBuf>,
    pub library: FilterLibrary,
    /// Every blocklist feed declared (`[feed.NAME]`), enabled or not, in name order.
    pub feeds: Vec<super::feeds::FeedConfig>,
    /// `[fleet]`: bans shared with other hosts (issue 17); `None` = not configured.
    pub fleet: Option<super::fleet::FleetConfig>,
    /// `[action.NAME]` tables, by name.
    pub actions: BTreeMap<String, super::ActionConfig>,
}

impl Settings {
    pub fn enabled_jails(&self) -> impl Iterator<Item = &JailConfig> {
        self.jails.iter().filter(|j| j.enabled)
    }
    pub fn jail(&self, name: &str) -> Option<&JailConfig> {
        self.jails.iter().find(|j| j.name == name)
    }
    pub fn enabled_feeds(&self) -> impl Iterator<Item = &super::feeds::FeedConfig> {
        self.feeds.iter().filter(|f| f.enabled)
    }
}

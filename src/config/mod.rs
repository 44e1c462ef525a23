//! Configuration: `/etc/f2b/f2b.toml` plus drop-ins `jail.d/*.toml` beside it.
//!
//! In stages, one module each: [`fragments`] reads the files and merges them key by key
//! (lexical order, a later file wins), converting each key's value on its own ([`raw`]); jail
//! resolution ([`jail`]) validates each `[jail.NAME]` over `[defaults]` into a [`JailConfig`]:
//! durations ([`duration`]), ports ([`ports`]), the address lists ([`ignore`]) and the bounds
//! shared with the D-Bus API ([`limits`]); filters are resolved and compiled. Every problem is
//! reported, not only the first, each naming file, line and key ([`ConfigError`]).
//!
//! Nothing here touches the system: the facts it needs (the services table) come in
//! [`LoadOptions`] from [`crate::system`], so `f2b check` and a reload validate safely.

mod action_resolve;
mod actions;
pub mod duration;
mod error;
pub mod feeds;
pub mod fleet;
mod fragments;
mod ignore;
mod jail;
pub mod limits;
mod ports;
mod raw;
mod settings;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Moved to [`crate::system::local_addresses`] (the configuration does not read the system);
/// kept here for the callers that still use this path.
pub use crate::system::local_addresses;
pub use actions::{
    parse_header_lines, ActionConfig, ActionKind, MailTls, Secret, ABUSEIPDB_URL, ACTION_KEYS,
    DIGEST_SUBJECT, MAIL_BODY, MAIL_SUBJECT,
};
pub use duration::{format_duration, parse_duration, BanTime};
pub use error::ConfigError;
pub use feeds::{FeedConfig, FeedFormat, FeedSource};
pub use fleet::FleetConfig;
pub use ignore::IgnoreList;
pub use ports::{port_text, RawPort, Services};
pub use raw::{RawDur, DAEMON_KEYS, FEED_KEYS, FLEET_KEYS, JAIL_KEYS};
pub use settings::{DaemonConfig, Increment, JailConfig, JailSource, Settings};

use crate::filter::library::FilterLibrary;
use error::Problems;
use fragments::{Merged, SourceFile};

/// Default root configuration file.
pub const DEFAULT_CONFIG: &str = "/etc/f2b/f2b.toml";
/// Default state directory.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/f2b";
/// Default `history_max_age`: 30 days.
const HISTORY_MAX_AGE: Duration = Duration::from_secs(30 * 86_400);

/// Options that come from the command line and the system rather than the files.
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
    /// Service names for `ports` (the binaries pass [`crate::system::services`]; the default
    /// knows only the well-known names).
    pub services: Services,
    /// The host's distribution ids, most specific first ([`crate::system::os_ids`]): they
    /// choose a filter's default log files (`[logpath]`) for file jails without `logpath`.
    pub os_ids: Vec<String>,
}

/// The shipped default configuration (`packaging/f2b.toml`).
pub const DEFAULT_CONFIG_TEXT: &str = include_str!("../../packaging/f2b.toml");

/// Read, merge and validate the configuration.
pub fn load(opts: &LoadOptions) -> Result<Settings, ConfigError> {
    let (files, paths) = fragments::read_files(opts)?;
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

/// The `filters/` folder beside a root configuration file, searched for filters as `jail.d/`
/// is for drop-ins (after the system directories; `None` when it is one of them).
pub fn beside_filters(config: &Path) -> Option<PathBuf> {
    if config.as_os_str().is_empty() {
        return None;
    }
    let dir = config.parent().unwrap_or(Path::new(".")).join("filters");
    (!FilterLibrary::default_dirs().contains(&dir)).then_some(dir)
}

/// Jail names appear in nftables set names and D-Bus object paths: keep them plain
/// ([`limits::jail_name`]).
pub fn valid_jail_name(name: &str) -> bool {
    limits::jail_name(name).is_ok()
}

fn from_sources(files: &[SourceFile], opts: &LoadOptions) -> Result<Settings, ConfigError> {
    let mut problems = Problems::new(files.iter().map(|f| f.path.clone()).collect());
    let merged = fragments::merge(files, &mut problems);
    let daemon = daemon(&merged, opts, &mut problems);
    let library = match FilterLibrary::load(&daemon.filter_dirs) {
        Ok(l) => l,
        Err(e) => {
            // Without the filters, every journal jail would only repeat that it lacks one.
            problems.push(e.into());
            return Err(problems.into_error());
        }
    };
    let mut jails = Vec::new();
    let mut filters = BTreeMap::new();
    let fleet_cfg = fleet::resolve(&merged, &mut problems);
    let fleet_jail = fleet::fleet_jail(&merged).map(|j| (fleet::FLEET_JAIL.to_string(), j));
    for (name, (merged_jail, decl)) in merged
        .jails
        .iter()
        .chain(fleet_jail.iter().map(|(n, j)| (n, j)))
    {
        let r = jail::Resolver {
            jail: merged_jail,
            defaults: &merged.defaults,
            jail_name: name,
            decl,
            library: &library,
            services: &opts.services,
            os_ids: &opts.os_ids,
        };
        let jail = match r.build() {
            Ok(j) => j,
            Err(errors) => {
                errors.into_iter().for_each(|e| problems.push(e));
                continue;
            }
        };
        // Compiled for every jail, enabled or not: `f2b start JAIL` then compiles nothing.
        {
            if let Some((filter, mode)) = jail.source.filter_mode() {
                let def = library.get(filter).expect("checked by the resolver");
                match def.compile(mode) {
                    Ok(c) => {
                        filters.insert(name.clone(), c);
                    }
                    Err(e) => problems.push(e.into()),
                }
            }
        }
        jails.push(jail);
    }
    // The fleet jail comes last from the loop; the jails stay in name order.
    jails.sort_by(|a, b| a.name.cmp(&b.name));
    watched_jails_exist(&jails, &merged, &mut problems);
    let mut feeds = Vec::new();
    for (name, (m, decl)) in &merged.feeds {
        let mut errors = Vec::new();
        let defaults = merged.defaults.ignoreip.as_ref();
        feeds.extend(feeds::resolve(
            name,
            m,
            decl,
            defaults,
            &opts.services,
            &mut errors,
        ));
        errors.into_iter().for_each(|e| problems.push(e));
    }
    let actions = actions::resolve(&merged.actions, &mut problems);
    actions::check_jail_actions(&jails, &merged, &merged.actions, &mut problems);
    problems.finish(Settings {
        actions,
        daemon,
        jails,
        filters,
        files: Vec::new(),
        library,
        feeds,
        fleet: fleet_cfg,
    })
}

/// `[daemon]`, with the filter directories to search.
fn daemon(m: &Merged, opts: &LoadOptions, problems: &mut Problems) -> DaemonConfig {
    let state_dir = m
        .daemon
        .state_dir
        .as_ref()
        .map_or_else(|| PathBuf::from(DEFAULT_STATE_DIR), |s| PathBuf::from(&s.v));
    let history_max_age = match &m.daemon.history_max_age {
        Some(v) => match duration::from_raw(&v.v, false) {
            Ok(b) => b.as_duration().unwrap_or(Duration::MAX),
            Err(msg) => {
                problems.invalid(v.loc.clone(), format!("daemon: history_max_age: {msg}"));
                HISTORY_MAX_AGE
            }
        },
        None => HISTORY_MAX_AGE,
    };
    let mut filter_dirs = Vec::new();
    if !opts.no_system_filters {
        filter_dirs.extend(FilterLibrary::default_dirs());
    }
    filter_dirs.extend(beside_filters(&opts.config));
    if let Some(d) = &m.daemon.filter_dirs {
        filter_dirs.extend(d.v.iter().map(PathBuf::from));
    }
    filter_dirs.extend(opts.filter_dirs.iter().cloned());
    DaemonConfig {
        state_dir,
        history_max_age,
        filter_dirs,
    }
}

/// Bans-sourced jails may only watch jails that exist (valid or not: an invalid one is
/// reported by itself).
fn watched_jails_exist(jails: &[JailConfig], m: &Merged, problems: &mut Problems) {
    for j in jails {
        if let JailSource::Bans { jails: watched } = &j.source {
            for w in watched {
                if !m.jails.contains_key(w) || w == &j.name {
                    let loc = m.jails[&j.name]
                        .0
                        .watch_jails
                        .as_ref()
                        .map_or_else(|| j.loc.clone(), |v| v.loc.clone());
                    problems.invalid(
                        loc,
                        format!(
                            "jail {}: watch_jails names {w:?}, which is not another jail",
                            j.name
                        ),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;

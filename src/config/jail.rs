//! Jail resolution: one `[jail.NAME]` over `[defaults]` becomes a validated [`JailConfig`].
//! Each key is checked on its own, so that every wrong key of a jail is reported.

use std::time::Duration;

use super::duration::{from_raw as dur, BanTime};
use super::error::ConfigError;
use super::ignore::IgnoreList;
use super::limits;
use super::ports::{parse_port, parse_protocol, parse_verdict, Services};
use super::raw::{closest, MergedJail, RawDur};
use super::settings::{Increment, JailConfig, JailSource};
use crate::filter::library::FilterLibrary;
use crate::filter::{FilterDef, JournalMatch};
use crate::firewall::{JailRules, PortRange, Verdict};
use crate::location::Location;

/// Default `maxretry`, `findtime`, `bantime`, `ignoreip` and `bantime_maxtime`.
const MAXRETRY: u32 = 5;
const FINDTIME: Duration = Duration::from_secs(600);
const BANTIME: Duration = Duration::from_secs(600);
const IGNOREIP: [&str; 2] = ["127.0.0.0/8", "::1"];
const MAXTIME: Duration = Duration::from_secs(7 * 86_400);

pub(super) struct Resolver<'a> {
    pub(super) jail: &'a MergedJail,
    pub(super) defaults: &'a MergedJail,
    pub(super) jail_name: &'a str,
    pub(super) decl: &'a Location,
    pub(super) library: &'a FilterLibrary,
    pub(super) services: &'a Services,
    /// The host's distribution ids (for a filter's default `[logpath]`).
    pub(super) os_ids: &'a [String],
}

/// A key's value from the jail, else from `[defaults]`, with its location.
macro_rules! get {
    ($r:expr, $key:ident) => {
        $r.jail
            .$key
            .as_ref()
            .or($r.defaults.$key.as_ref())
            .map(|v| (&v.v, v.loc.clone()))
    };
}

/// "unknown filter …", with the closest name when one is close.
fn unknown_filter(name: &str, library: &FilterLibrary) -> String {
    let known: Vec<&str> = library.filters.keys().map(String::as_str).collect();
    match closest(name, &known) {
        Some(k) => format!("unknown filter {name:?}; did you mean {k:?}? (see `f2b filters`)"),
        None => format!("unknown filter {name:?} (see `f2b filters`)"),
    }
}

/// The value, or `None` with the error kept.
fn keep<T>(r: Result<T, ConfigError>, errors: &mut Vec<ConfigError>) -> Option<T> {
    r.map_err(|e| errors.push(e)).ok()
}

impl Resolver<'_> {
    fn err(&self, loc: Location, key: &str, msg: impl std::fmt::Display) -> ConfigError {
        ConfigError::Invalid {
            loc,
            msg: format!("jail {}: {key}: {msg}", self.jail_name),
        }
    }

    /// The jail, or every problem found in it.
    pub(super) fn build(&self) -> Result<JailConfig, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let source = keep(self.source(), &mut errors);
        let maxretry = keep(self.maxretry(), &mut errors);
        let findtime = keep(self.findtime(), &mut errors);
        let bantime = keep(self.bantime(), &mut errors);
        let ignore = keep(self.ignore(), &mut errors);
        let rules = keep(self.rules(), &mut errors);
        let ipv4_prefix = keep(
            self.prefix("ipv4_prefix", get!(self, ipv4_prefix), false),
            &mut errors,
        );
        let ipv6_prefix = keep(
            self.prefix("ipv6_prefix", get!(self, ipv6_prefix), true),
            &mut errors,
        );
        let increment = self.increment().map_err(|e| errors.extend(e)).ok();
        let max_tracked = keep(self.max_tracked(), &mut errors);
        let (
            Some(source),
            Some(maxretry),
            Some(findtime),
            Some(bantime),
            Some(ignore),
            Some(rules),
            Some(ipv4_prefix),
            Some(ipv6_prefix),
            Some(increment),
            Some(max_tracked),
        ) = (
            source,
            maxretry,
            findtime,
            bantime,
            ignore,
            rules,
            ipv4_prefix,
            ipv6_prefix,
            increment,
            max_tracked,
        )
        else {
            return Err(errors);
        };
        Ok(JailConfig {
            name: self.jail_name.to_string(),
            enabled: get!(self, enabled).map(|(v, _)| *v).unwrap_or(false),
            source,
            maxretry,
            findtime,
            bantime,
            ignore,
            ignoreself: get!(self, ignoreself).map(|(v, _)| *v).unwrap_or(true),
            rules,
            ipv4_prefix,
            ipv6_prefix,
            increment,
            max_tracked,
            actions: get!(self, actions)
                .map(|(v, _)| v.clone())
                .unwrap_or_default(),
            loc: self.decl.clone(),
        })
    }

    fn max_tracked(&self) -> Result<usize, ConfigError> {
        match get!(self, max_tracked) {
            Some((n, l)) => limits::max_tracked(*n).map_err(|e| self.err(l, "max_tracked", e)),
            None => Ok(crate::jail::DEFAULT_MAX_TRACKED),
        }
    }

    fn source(&self) -> Result<JailSource, ConfigError> {
        let source_kind = get!(self, source);
        let source = match source_kind.as_ref().map(|(s, l)| (s.as_str(), l.clone())) {
            None | Some(("journal", _)) => {
                let (fname, floc, def, mode) = self.filter()?;
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
            Some(("fleet", _)) => JailSource::Fleet,
            Some(("file", sloc)) => {
                let (fname, _, def, mode) = self.filter()?;
                for (key, v) in [
                    ("matches", get!(self, matches)),
                    ("extra_matches", get!(self, extra_matches)),
                ] {
                    if let Some((_, l)) = v {
                        return Err(self.err(
                            l,
                            key,
                            "journal matches do not apply to source = \"file\" (use logpath)",
                        ));
                    }
                }
                let logpath = match get!(self, logpath) {
                    Some((list, l)) => {
                        if list.is_empty() {
                            return Err(self.err(l, "logpath", "names no file"));
                        }
                        for p in list {
                            limits::log_path(p).map_err(|e| self.err(l.clone(), "logpath", e))?;
                        }
                        list.clone()
                    }
                    None => match def.logpath_for(self.os_ids) {
                        Some(paths) => paths.to_vec(),
                        None => {
                            return Err(self.err(
                                sloc,
                                "logpath",
                                format!(
                                    "source = \"file\" needs logpath = [\"/var/log/…\"]: filter \
                                     {fname:?} names no default log file for this system{}",
                                    match self.os_ids.first() {
                                        Some(id) => format!(" ({id})"),
                                        None => String::new(),
                                    }
                                ),
                            ))
                        }
                    },
                };
                JailSource::File {
                    filter: fname,
                    mode,
                    logpath,
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
                    format!("{other:?} is not \"journal\", \"file\", \"bans\" or \"fleet\""),
                ))
            }
        };
        Ok(source)
    }

    /// The jail's filter (by `filter`, else the jail's name) and its mode.
    fn filter(&self) -> Result<(String, Location, &FilterDef, Option<String>), ConfigError> {
        let library = self.library;
        let (fname, floc) = get!(self, filter)
            .map(|(v, l)| (v.clone(), l))
            .unwrap_or_else(|| (self.jail_name.to_string(), self.decl.clone()));
        let def = library
            .get(&fname)
            .ok_or_else(|| self.err(floc.clone(), "filter", unknown_filter(&fname, library)))?;
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
        Ok((fname, floc, def, mode))
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

    fn maxretry(&self) -> Result<u32, ConfigError> {
        match get!(self, maxretry) {
            Some((n, l)) => limits::max_retry(*n).map_err(|e| self.err(l, "maxretry", e)),
            None => Ok(MAXRETRY),
        }
    }

    fn findtime(&self) -> Result<Duration, ConfigError> {
        let Some((d, l)) = get!(self, findtime) else {
            return Ok(FINDTIME);
        };
        match dur(d, false).map_err(|e| self.err(l.clone(), "findtime", e))? {
            BanTime::For(d) => limits::positive_duration(d).map_err(|e| self.err(l, "findtime", e)),
            BanTime::Forever => Err(self.err(l, "findtime", "must be a duration")),
        }
    }

    fn bantime(&self) -> Result<BanTime, ConfigError> {
        let Some((d, l)) = get!(self, bantime) else {
            return Ok(BanTime::For(BANTIME));
        };
        match dur(d, true).map_err(|e| self.err(l.clone(), "bantime", e))? {
            BanTime::For(d) if d.is_zero() => {
                Err(self.err(l, "bantime", "must be greater than 0 (or -1 for permanent)"))
            }
            BanTime::For(d) => limits::positive_duration(d)
                .map(BanTime::For)
                .map_err(|e| self.err(l, "bantime", e)),
            BanTime::Forever => Ok(BanTime::Forever),
        }
    }

    fn ignore(&self) -> Result<IgnoreList, ConfigError> {
        match get!(self, ignoreip) {
            Some((list, l)) => IgnoreList::parse(list).map_err(|e| self.err(l, "ignoreip", e)),
            None => Ok(IgnoreList::parse(&IGNOREIP.map(String::from)).expect("built-in list")),
        }
    }

    /// Ports, protocol and action: the firewall rule.
    fn rules(&self) -> Result<JailRules, ConfigError> {
        let ports = match get!(self, ports) {
            Some((list, l)) => list
                .iter()
                .map(|p| parse_port(p, self.services))
                .collect::<Result<Vec<PortRange>, _>>()
                .map_err(|e| self.err(l, "ports", e))?,
            None => Vec::new(),
        };
        let protocol = match get!(self, protocol) {
            Some((p, l)) => parse_protocol(Some(p), !ports.is_empty())
                .map_err(|e| self.err(l, "protocol", e))?,
            None => parse_protocol(None, !ports.is_empty()).expect("a default"),
        };
        let verdict = match get!(self, action) {
            Some((a, l)) => parse_verdict(Some(a)).map_err(|e| self.err(l, "action", e))?,
            None => Verdict::Drop,
        };
        Ok(JailRules {
            name: self.jail_name.to_string(),
            ports,
            protocol,
            verdict,
        })
    }

    fn prefix(&self, key: &str, v: Option<(&i64, Location)>, v6: bool) -> Result<u8, ConfigError> {
        match v {
            Some((n, l)) => limits::prefix_len(*n, v6).map_err(|e| self.err(l, key, e)),
            None => Ok(*limits::prefix_range(v6).end()),
        }
    }

    /// `bantime_*`: `None` unless `bantime_increment = true`.
    fn increment(&self) -> Result<Option<Increment>, Vec<ConfigError>> {
        if !get!(self, bantime_increment).is_some_and(|(v, _)| *v) {
            return Ok(None);
        }
        let mut errors = Vec::new();
        let positive = |x: &f64| x.is_finite() && *x > 0.0;
        let factor = match get!(self, bantime_factor) {
            Some((f, l)) if !positive(f) => {
                errors.push(self.err(l, "bantime_factor", "must be a positive number"));
                1.0
            }
            Some((f, _)) => *f,
            None => 1.0,
        };
        let multipliers = match get!(self, bantime_multipliers) {
            Some((m, l)) if !m.iter().all(positive) => {
                errors.push(self.err(
                    l,
                    "bantime_multipliers",
                    "every multiplier must be a positive number",
                ));
                Vec::new()
            }
            Some((m, _)) => m.clone(),
            None => Vec::new(),
        };
        let mut duration = |key: &str, v: Option<(&RawDur, Location)>, default: Duration| {
            let Some((d, l)) = v else { return default };
            let checked = dur(d, false).and_then(|b| {
                limits::bounded_duration(b.as_duration().unwrap_or_default())
                    .map_err(|e| e.to_string())
            });
            checked.unwrap_or_else(|e| {
                errors.push(self.err(l, key, e));
                default
            })
        };
        let maxtime = Some(duration(
            "bantime_maxtime",
            get!(self, bantime_maxtime),
            MAXTIME,
        ));
        let rndtime = duration(
            "bantime_rndtime",
            get!(self, bantime_rndtime),
            Duration::ZERO,
        );
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Some(Increment {
            factor,
            multipliers,
            maxtime,
            rndtime,
            overall_jails: get!(self, bantime_overalljails).is_some_and(|(v, _)| *v),
            fast_rebans: get!(self, bantime_fastrebans).is_none_or(|(v, _)| *v),
        }))
    }
}

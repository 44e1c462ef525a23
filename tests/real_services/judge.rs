//! The judge step: the shipped filters applied to an attempt's journal entries the way the
//! daemon applies them (routed by each filter's trusted journal matches, every mode of each
//! filter, with its per-_PID memory across attempts), checked against what the attack expects.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::OnceLock;

use f2b::filter::library::FilterLibrary;
use f2b::filter::{CompiledFilter, FilterDef, Outcome, PidCache};

use crate::common::journald::Entry;
use crate::Attack;

/// How many failures a filter mode must find in one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    AtLeast(usize),
    Exactly(usize),
    /// Whatever it finds (only the address is checked).
    Any,
}

/// No failure at all.
pub const NONE: Want = Want::Exactly(0);

impl Want {
    fn holds(self, n: usize) -> bool {
        match self {
            Want::AtLeast(m) => n >= m,
            Want::Exactly(m) => n == m,
            Want::Any => true,
        }
    }
}

/// One filter compiled in each of its modes.
struct Judge {
    def: FilterDef,
    modes: BTreeMap<String, (CompiledFilter, PidCache)>,
}

impl Judge {
    fn new(lib: &FilterLibrary, name: &str) -> Judge {
        let def = lib
            .get(name)
            .unwrap_or_else(|| panic!("no filter {name}"))
            .clone();
        let mut modes: BTreeMap<String, (CompiledFilter, PidCache)> = def
            .modes()
            .map(|m| {
                (
                    m.to_string(),
                    (def.compile(Some(m)).unwrap(), PidCache::default()),
                )
            })
            .collect();
        if modes.is_empty() {
            modes.insert(
                "(default)".into(),
                (def.compile(None).unwrap(), PidCache::default()),
            );
        }
        Judge { def, modes }
    }

    /// Does the filter take this entry? Decided as the daemon's router decides: one of the
    /// filter's journal matches accepts the entry's trusted fields.
    fn routes(&self, e: &Entry) -> bool {
        accepts(&self.def, e)
    }

    /// Does a failregex of one of its modes match the entry's MESSAGE (whatever its route)?
    fn would_match(&self, e: &Entry) -> bool {
        self.modes.values().any(|(f, _)| {
            f.apply(&e.message, e.pid, e.time_us, &mut PidCache::default()) != Outcome::Miss
        })
    }
}

fn accepts(def: &FilterDef, e: &Entry) -> bool {
    def.matches.iter().any(|m| m.accepts(|f| e.field(f)))
}

/// The shipped filters, loaded once for all the tests of this binary (it takes seconds in a
/// debug build).
fn library() -> &'static FilterLibrary {
    static LIB: OnceLock<FilterLibrary> = OnceLock::new();
    LIB.get_or_init(|| FilterLibrary::load(&[]).expect("built-in filters load"))
}

/// The names of the shipped filters whose journal matches accept the entry.
pub fn filters_accepting(e: &Entry) -> Vec<String> {
    library()
        .filters
        .values()
        .filter(|d| accepts(d, e))
        .map(|d| d.name.clone())
        .collect()
}

/// The filters of one service.
pub struct Judges {
    judges: Vec<Judge>,
    /// Entries journald attributed to the service's unit, over all attempts.
    pub as_unit: usize,
}

/// (address, message) of each failure, per "filter/mode" (or "mode" for a single filter).
type Failures = BTreeMap<String, Vec<(IpAddr, String)>>;

impl Judges {
    pub fn new(names: &[&str]) -> Judges {
        Judges {
            judges: names.iter().map(|n| Judge::new(library(), n)).collect(),
            as_unit: 0,
        }
    }

    fn failures(&mut self, entries: &[Entry]) -> Failures {
        let single = self.judges.len() == 1;
        let mut out = BTreeMap::new();
        for j in &mut self.judges {
            let routed: Vec<&Entry> = entries.iter().filter(|e| j.routes(e)).collect();
            for (mode, (filter, pids)) in &mut j.modes {
                let mut found = Vec::new();
                for e in &routed {
                    if let Outcome::Failure { addr, .. } =
                        filter.apply(&e.message, e.pid, e.time_us, pids)
                    {
                        found.push((addr, e.message.clone()));
                    }
                }
                let key = if single {
                    mode.clone()
                } else {
                    format!("{}/{mode}", j.def.name)
                };
                out.insert(key, found);
            }
        }
        out
    }

    /// Checks the routing of one attempt's entries (see [`Judges::judge`]); returns the
    /// number of lines journald could not attribute to a unit, which no filter needs.
    fn check_routes(&mut self, entries: &[Entry], unit: &str, wrong: &mut Vec<String>) -> usize {
        let mut unattributed = 0;
        for e in entries.iter().filter(|e| !e.is_journald()) {
            let routed = self.judges.iter().any(|j| j.routes(e));
            if e.unit().as_deref() == Some(unit) {
                self.as_unit += 1;
            }
            if e.unit().is_none() {
                // journald read nothing of the writer: it had exited (a short-lived process,
                // such as sshd's PAM child or a connection closed at once) when journald
                // handled the message. As on a host.
                unattributed += 1;
            }
            match e.unit() {
                Some(u) if u != unit => wrong.push(format!(
                    "{:?} was logged as {u}, not {unit}: {}",
                    e.message,
                    e.trusted()
                )),
                _ if routed => {}
                _ if self.judges.iter().any(|j| j.would_match(e)) => wrong.push(format!(
                    "failure line lost: {:?} matches a failregex but no filter's journal \
                     matches take it: {}",
                    e.message,
                    e.trusted()
                )),
                Some(_) => wrong.push(format!(
                    "{:?} is taken by no filter's journal matches: {}",
                    e.message,
                    e.trusted()
                )),
                // Not the filters' business (pam-generic takes such PAM lines by their _UID).
                None => {}
            }
        }
        unattributed
    }

    /// Checks one attempt: the service logged (journald names no unit but `unit`); each of
    /// its entries is taken by one of the filters (by their trusted journal
    /// matches), except lines journald could not attribute to a unit (their writer had
    /// exited) that no failregex of these filters matches; every failure carries the
    /// attacker's address, each listed mode finds what the attack wants and every other mode
    /// what `unlisted` says. `Ok`: failures per mode, for the log.
    pub fn judge(
        &mut self,
        attack: &Attack,
        entries: &[Entry],
        unit: &str,
        unlisted: Want,
    ) -> Result<String, String> {
        let mut wrong = Vec::new();
        if entries.is_empty() {
            wrong.push("the service logged nothing at all".to_string());
        }
        let unattributed = self.check_routes(entries, unit, &mut wrong);
        let attacker: IpAddr = attack.from.parse().unwrap();
        let failures = self.failures(entries);
        for (mode, found) in &failures {
            for (addr, msg) in found {
                if *addr != attacker {
                    wrong.push(format!(
                        "{mode}: failure from {addr} (expected {attacker}) for {msg:?}"
                    ));
                }
            }
        }
        for (mode, _) in &attack.want {
            if !failures.contains_key(*mode) {
                wrong.push(format!("no filter mode {mode}"));
            }
        }
        for (mode, found) in &failures {
            let want = attack
                .want
                .iter()
                .find(|(m, _)| m == mode)
                .map_or(unlisted, |(_, w)| *w);
            if !want.holds(found.len()) {
                wrong.push(format!(
                    "{mode}: expected {want:?} failures from {attacker}, got {}: {:?}",
                    found.len(),
                    found.iter().map(|(_, m)| m).collect::<Vec<_>>()
                ));
            }
        }
        if let Some(start) = attack.logged {
            if !entries.iter().any(|e| e.message.starts_with(start)) {
                wrong.push(format!("no line starting with {start:?}"));
            }
        }
        if !wrong.is_empty() {
            return Err(wrong.join("\n  "));
        }
        let mut summary = failures
            .iter()
            .map(|(m, f)| format!("{m}={}", f.len()))
            .collect::<Vec<_>>()
            .join(" ");
        if unattributed > 0 {
            summary += &format!(" ({unattributed} without unit: the writer had exited)");
        }
        Ok(summary)
    }
}

//! The judge step: the shipped filters applied to an attempt's journal lines the way the
//! daemon applies them (every mode of each filter, with its per-_PID memory across attempts),
//! checked against what the attack expects.

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

    /// Is this entry the filter's service's (by its syslog identifier here)?
    fn routes(&self, e: &Entry) -> bool {
        self.def.selects_ident(&e.ident)
    }
}

/// The filters of one service.
pub struct Judges(Vec<Judge>);

/// (address, message) of each failure, per "filter/mode" (or "mode" for a single filter).
type Failures = BTreeMap<String, Vec<(IpAddr, String)>>;

impl Judges {
    pub fn new(names: &[&str]) -> Judges {
        // Loaded once for all the tests of this binary (it takes seconds in a debug build).
        static LIB: OnceLock<FilterLibrary> = OnceLock::new();
        let lib = LIB.get_or_init(|| FilterLibrary::load(&[]).expect("built-in filters load"));
        Judges(names.iter().map(|n| Judge::new(lib, n)).collect())
    }

    fn failures(&mut self, entries: &[Entry]) -> Failures {
        let single = self.0.len() == 1;
        let mut out = BTreeMap::new();
        for j in &mut self.0 {
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

    /// Checks one attempt: the service logged, each of its lines reaches one of the filters,
    /// every failure carries the attacker's address, each listed mode finds what the attack
    /// wants and every other mode what `unlisted` says. `Ok`: failures per mode, for the log.
    pub fn judge(
        &mut self,
        attack: &Attack,
        entries: &[Entry],
        unlisted: Want,
    ) -> Result<String, String> {
        let mut wrong = Vec::new();
        if entries.is_empty() {
            wrong.push("the service logged nothing at all".to_string());
        }
        for e in entries {
            if e.ident != "systemd-journald" && !self.0.iter().any(|j| j.routes(e)) {
                wrong.push(format!(
                    "SYSLOG_IDENTIFIER {:?} of {:?} is in no filter's matches",
                    e.ident, e.message
                ));
            }
        }
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
        Ok(failures
            .iter()
            .map(|(m, f)| format!("{m}={}", f.len()))
            .collect::<Vec<_>>()
            .join(" "))
    }
}

//! Routing journal entries to jails by their trusted fields.
//!
//! Each route (jail) has alternatives ([`JournalMatch`]es), each a conjunction of terms. The
//! reader asks sd-journal for a superset (every alternative's exact terms, OR-ed; see
//! [`journal_groups`]) and decides here, per entry, which routes take it: an index from
//! (field, exact value) to the alternatives naming it finds the candidates, which are then
//! checked term by term (globs included). When sd-journal already evaluates the alternatives
//! exactly and every route has the same ones, nothing is read: every entry goes to every route.

use std::collections::HashMap;
use std::sync::Arc;

use crate::filter::{Field, JournalMatch, Sessions};

use super::{Route, RouteStats};

/// More match terms than this make sd-journal slower than reading every entry and routing
/// in-process (measured: 138 terms → 53k entries/s; no terms → over 1M/s).
pub(super) const MAX_JOURNAL_TERMS: usize = 16;

/// The groups of terms to install in sd-journal (each group AND-ed, groups OR-ed), or `None`
/// when every entry must be read (a route without matches, an alternative made only of globs,
/// or too many terms for sd-journal to evaluate quickly).
pub(super) fn journal_groups(routes: &[Route]) -> Option<Vec<Vec<(Field, String)>>> {
    let mut groups: Vec<Vec<(Field, String)>> = Vec::new();
    for r in routes {
        if r.matches.is_empty() {
            return None;
        }
        for m in &r.matches {
            let g: Vec<(Field, String)> = m
                .exact_terms()
                .map(|t| (t.field, t.value.clone()))
                .collect();
            if g.is_empty() {
                return None;
            }
            groups.push(g);
        }
    }
    groups.sort();
    groups.dedup();
    let terms: usize = groups.iter().map(Vec::len).sum();
    (terms <= MAX_JOURNAL_TERMS).then_some(groups)
}

/// An alternative of a route, for the index.
type AltRef = (usize, usize);

/// Routes compiled for fast per-entry dispatch.
pub(super) struct Router {
    pub(super) routes: Arc<Vec<Route>>,
    pub(super) generation: u64,
    /// Every route takes every entry sd-journal returns.
    pub(super) all: Option<Vec<usize>>,
    /// Routes that take every entry (no matches: `f2b test --all-units`).
    always: Vec<usize>,
    /// The fields to read per entry.
    pub(super) fields: Vec<Field>,
    /// Per field (by [`Field::index`]): exact value → alternatives that name it.
    index: Vec<HashMap<Vec<u8>, Vec<AltRef>>>,
    /// Alternatives without an exact term: candidates for every entry.
    unindexed: Vec<AltRef>,
    pub(super) sessions: Vec<Sessions>,
    pub(super) stats: Vec<RouteStats>,
}

/// The routing field values of one entry (reused buffers).
#[derive(Default)]
pub(super) struct FieldValues {
    vals: [Vec<u8>; Field::ALL.len()],
    present: [bool; Field::ALL.len()],
}

impl FieldValues {
    pub(super) fn clear(&mut self) {
        self.present = [false; Field::ALL.len()];
    }

    pub(super) fn set(&mut self, f: Field, v: &[u8]) {
        let i = f.index();
        self.vals[i].clear();
        self.vals[i].extend_from_slice(v);
        self.present[i] = true;
    }

    pub(super) fn get(&self, f: Field) -> Option<&[u8]> {
        let i = f.index();
        self.present[i].then(|| self.vals[i].as_slice())
    }
}

impl Router {
    /// `exact`: sd-journal evaluates the routes' alternatives exactly (see [`journal_groups`]).
    pub(super) fn new(routes: Arc<Vec<Route>>, generation: u64, exact: bool) -> Router {
        let sorted = |r: &Route| {
            let mut m = r.matches.clone();
            m.sort();
            m
        };
        let first = routes.first().map(sorted);
        let same = routes.iter().all(|r| Some(sorted(r)) == first);
        let all_exact = routes
            .iter()
            .all(|r| r.matches.iter().all(JournalMatch::is_exact));
        let all_units = routes.iter().all(|r| r.matches.is_empty());
        let shortcut = same && ((exact && all_exact) || all_units);
        let mut index: Vec<HashMap<Vec<u8>, Vec<AltRef>>> =
            (0..Field::ALL.len()).map(|_| HashMap::new()).collect();
        let mut unindexed = Vec::new();
        let mut fields: Vec<Field> = Vec::new();
        if !shortcut {
            for (ri, r) in routes.iter().enumerate() {
                for (ai, m) in r.matches.iter().enumerate() {
                    for t in &m.terms {
                        if !fields.contains(&t.field) {
                            fields.push(t.field);
                        }
                    }
                    // Index by one exact term (the alternative is verified in full anyway).
                    match m.exact_terms().next() {
                        Some(t) => index[t.field.index()]
                            .entry(t.value.as_bytes().to_vec())
                            .or_default()
                            .push((ri, ai)),
                        None => unindexed.push((ri, ai)),
                    }
                }
            }
            fields.sort();
        }
        let n = routes.len();
        Router {
            all: shortcut.then(|| (0..n).collect()),
            always: (routes.iter().enumerate())
                .filter(|(_, r)| r.matches.is_empty())
                .map(|(i, _)| i)
                .collect(),
            fields,
            index,
            unindexed,
            sessions: (0..n).map(|_| Sessions::default()).collect(),
            stats: routes.iter().map(fresh_stats).collect(),
            routes,
            generation,
        }
    }

    /// The routes taking an entry with these field values, into `out` (cleared first).
    pub(super) fn select(&self, vals: &FieldValues, out: &mut Vec<usize>) {
        out.clear();
        if let Some(all) = &self.all {
            out.extend_from_slice(all);
            return;
        }
        out.extend_from_slice(&self.always);
        let check = |&(ri, ai): &AltRef, out: &mut Vec<usize>| {
            if !out.contains(&ri) && self.routes[ri].matches[ai].accepts(|f| vals.get(f)) {
                out.push(ri);
            }
        };
        for &f in &self.fields {
            let Some(v) = vals.get(f) else { continue };
            if let Some(alts) = self.index[f.index()].get(v) {
                for a in alts {
                    check(a, out);
                }
            }
        }
        for a in &self.unindexed {
            check(a, out);
        }
    }

    pub(super) fn take_stats(&mut self) -> Vec<RouteStats> {
        let fresh: Vec<RouteStats> = self.routes.iter().map(fresh_stats).collect();
        std::mem::replace(&mut self.stats, fresh)
    }
}

fn fresh_stats(r: &Route) -> RouteStats {
    RouteStats {
        per_regex: vec![0; r.filter.fail_count()],
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::FilterDef;

    fn route(name: &str, matches: &[&str]) -> Route {
        let def = FilterDef::parse("t", "t.toml", "failregex = ['^fail <HOST>$']").expect("filter");
        Route {
            jail: Arc::from(name),
            matches: matches
                .iter()
                .map(|m| JournalMatch::parse(m).unwrap())
                .collect(),
            filter: def.compile(None).unwrap(),
            report_missed: false,
        }
    }

    fn routed(r: &Router, fields: &[(Field, &str)]) -> Vec<usize> {
        let mut v = FieldValues::default();
        for (f, s) in fields {
            v.set(*f, s.as_bytes());
        }
        let mut out = Vec::new();
        r.select(&v, &mut out);
        out.sort();
        out
    }

    #[test]
    fn forged_identifier_from_a_user_process_is_not_routed() {
        let routes = vec![
            route(
                "sshd",
                &["_COMM=sshd _UID=0", "_SYSTEMD_UNIT=sshd@*.service"],
            ),
            route("web", &["_SYSTEMD_UNIT=nginx.service"]),
        ];
        let r = Router::new(Arc::new(routes), 0, false);
        // logger -t sshd from uid 1000 in a session scope.
        let forged = [
            (Field::SyslogIdentifier, "sshd"),
            (Field::Comm, "logger"),
            (Field::Uid, "1000"),
            (Field::SystemdUnit, "session-2.scope"),
        ];
        assert!(routed(&r, &forged).is_empty());
        // A process renamed to sshd, as a user.
        assert!(routed(&r, &[(Field::Comm, "sshd"), (Field::Uid, "1000")]).is_empty());
        // The real sshd, and a per-connection unit.
        assert_eq!(routed(&r, &[(Field::Comm, "sshd"), (Field::Uid, "0")]), [0]);
        let unit = "sshd@7-192.0.2.1:22-203.0.113.5:40000.service";
        assert_eq!(routed(&r, &[(Field::SystemdUnit, unit)]), [0]);
        assert_eq!(routed(&r, &[(Field::SystemdUnit, "nginx.service")]), [1]);
    }

    #[test]
    fn identical_exact_routes_need_no_reads() {
        let routes = vec![
            route("a", &["_COMM=sshd _UID=0"]),
            route("b", &["_COMM=sshd _UID=0"]),
        ];
        let r = Router::new(Arc::new(routes.clone()), 0, true);
        assert!(r.all.is_some());
        assert!(r.fields.is_empty());
        // Not filtered by sd-journal: fields are checked.
        let r = Router::new(Arc::new(routes), 0, false);
        assert!(r.all.is_none());
    }

    #[test]
    fn journal_groups_are_a_superset() {
        let routes = vec![route("s", &["_SYSTEMD_UNIT=sshd@*.service _UID=0"])];
        assert_eq!(
            journal_groups(&routes),
            Some(vec![vec![(Field::Uid, "0".to_string())]])
        );
        let routes = vec![route("s", &["_SYSTEMD_UNIT=sshd@*.service"])];
        assert_eq!(journal_groups(&routes), None);
    }
}

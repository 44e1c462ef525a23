//! fail2ban's `journalmatch` → f2b's journal matches.
//!
//! fail2ban: each line, split shell-like, is a match; `+` separates alternatives; within one
//! alternative, terms of different fields must all hold and terms of one field are
//! alternatives (sd-journal's rules). f2b: a list of single `FIELD=value` alternatives, on
//! the fields it routes by. Kept in this one function so that it can follow f2b's match
//! format (entries are to be trusted by their unit, `_UID` or `_COMM`, not by a
//! `SYSLOG_IDENTIFIER` alone).

use std::path::PathBuf;

use crate::filter::MATCH_FIELDS;

/// The f2b matches for one fail2ban journalmatch, and what changed on the way.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Matches {
    /// `FIELD=value` alternatives.
    pub terms: Vec<String>,
    /// Said in the report (mapped).
    pub notes: Vec<String>,
    /// Only untrusted fields (`SYSLOG_IDENTIFIER`, `CONTAINER_NAME`) and no unit found.
    pub needs_unit: bool,
}

/// Fields journald sets itself (a client cannot forge them).
const TRUSTED: &[&str] = &["_SYSTEMD_UNIT", "_SYSTEMD_USER_UNIT", "_COMM", "_UID"];

/// Where unit files are looked for, to add the service's unit to untrusted matches.
pub fn default_unit_dirs() -> Vec<PathBuf> {
    [
        "/etc/systemd/system",
        "/run/systemd/system",
        "/lib/systemd/system",
        "/usr/lib/systemd/system",
    ]
    .iter()
    .map(PathBuf::from)
    .collect()
}

/// Translate `journalmatch`. `services` are names that may be the service's unit (the
/// identifiers matched, the jail's name), looked up as `NAME.service` in `unit_dirs`.
pub fn translate(
    journalmatch: &str,
    services: &[String],
    unit_dirs: &[PathBuf],
) -> Result<Matches, String> {
    let mut groups: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for line in journalmatch.lines().filter(|l| !l.trim().is_empty()) {
        if !groups.last().is_some_and(Vec::is_empty) {
            groups.push(Vec::new());
        }
        for word in line.split_whitespace() {
            let word = word.trim_matches(['"', '\'']);
            if word == "+" {
                groups.push(Vec::new());
                continue;
            }
            let (f, v) = word
                .split_once('=')
                .ok_or_else(|| format!("journalmatch term {word:?} is not FIELD=value"))?;
            groups
                .last_mut()
                .expect("one group")
                .push((f.to_string(), v.to_string()));
        }
    }
    let mut out = Matches::default();
    for g in groups.iter().filter(|g| !g.is_empty()) {
        let usable: Vec<&(String, String)> = g
            .iter()
            .filter(|(f, _)| MATCH_FIELDS.contains(&f.as_str()))
            .collect();
        let dropped: Vec<String> = g
            .iter()
            .filter(|(f, _)| !MATCH_FIELDS.contains(&f.as_str()))
            .map(|(f, v)| format!("{f}={v}"))
            .collect();
        let fields: Vec<&str> = {
            let mut f: Vec<&str> = usable.iter().map(|(f, _)| f.as_str()).collect();
            f.dedup();
            f
        };
        if usable.is_empty() {
            out.notes.push(format!(
                "journal match {:?} uses no field f2b routes by ({}): left out",
                dropped.join(" "),
                MATCH_FIELDS.join(", ")
            ));
            continue;
        }
        let chosen: Vec<&(String, String)> = if fields.len() > 1 {
            // Every term must hold: keep the most specific field, the filter's regexes do
            // the rest.
            let best = [
                "_SYSTEMD_UNIT",
                "_SYSTEMD_USER_UNIT",
                "_COMM",
                "SYSLOG_IDENTIFIER",
            ]
            .into_iter()
            .chain(MATCH_FIELDS.iter().copied())
            .find(|b| fields.contains(b))
            .expect("a usable field");
            let kept: Vec<&(String, String)> =
                usable.into_iter().filter(|(f, _)| f == best).collect();
            out.notes.push(format!(
                "journal match {:?} requires all of its terms; f2b reads the entries of {} and lets the filter decide",
                g.iter().map(|(f, v)| format!("{f}={v}")).collect::<Vec<_>>().join(" "),
                kept.iter().map(|(f, v)| format!("{f}={v}")).collect::<Vec<_>>().join(" or ")
            ));
            kept
        } else {
            if !dropped.is_empty() {
                out.notes.push(format!(
                    "journal match terms {:?} are not f2b match fields: the filter's regexes decide instead",
                    dropped.join(" ")
                ));
            }
            usable
        };
        for (f, v) in chosen {
            let t = format!("{f}={v}");
            if !out.terms.contains(&t) {
                out.terms.push(t);
            }
        }
    }
    if out.terms.is_empty() {
        return Err(format!(
            "journalmatch {:?} leaves no journal match f2b can use",
            journalmatch.trim()
        ));
    }
    let trusted = out
        .terms
        .iter()
        .any(|t| TRUSTED.iter().any(|f| t.starts_with(&format!("{f}="))));
    if !trusted {
        let mut names: Vec<String> = out
            .terms
            .iter()
            .filter_map(|t| t.split_once('=').map(|(_, v)| v.to_string()))
            .collect();
        names.extend(services.iter().cloned());
        let unit = names.iter().find_map(|n| {
            let unit = format!("{n}.service");
            unit_dirs
                .iter()
                .any(|d| d.join(&unit).is_file())
                .then_some(unit)
        });
        match unit {
            Some(u) => {
                out.notes.push(format!(
                    "{} is set by the program itself; added _SYSTEMD_UNIT={u}, the service's unit",
                    out.terms.join(" | ")
                ));
                out.terms.push(format!("_SYSTEMD_UNIT={u}"));
            }
            None => {
                out.needs_unit = true;
                out.notes.push(format!(
                    "{} is set by the program itself (any local user can write it): add the service's unit, matches = [\"_SYSTEMD_UNIT=….service\"]",
                    out.terms.join(" | ")
                ));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alternatives_and_conjunctions() {
        let m = translate("_SYSTEMD_UNIT=sshd.service + _COMM=sshd", &[], &[]).unwrap();
        assert_eq!(m.terms, vec!["_SYSTEMD_UNIT=sshd.service", "_COMM=sshd"]);
        assert!(m.notes.is_empty() && !m.needs_unit);
        let m = translate("_SYSTEMD_UNIT=fail2ban.service PRIORITY=5", &[], &[]).unwrap();
        assert_eq!(m.terms, vec!["_SYSTEMD_UNIT=fail2ban.service"]);
        assert_eq!(m.notes.len(), 1);
        let m = translate(
            "_SYSTEMD_UNIT=a.service _COMM=a\n_SYSTEMD_UNIT=b.service",
            &[],
            &[],
        )
        .unwrap();
        assert_eq!(
            m.terms,
            vec!["_SYSTEMD_UNIT=a.service", "_SYSTEMD_UNIT=b.service"]
        );
        assert!(translate("PRIORITY=3", &[], &[]).is_err());
        assert!(translate("garbage", &[], &[]).is_err());
    }

    #[test]
    fn identifier_only_needs_the_unit() {
        let d = tempfile::tempdir().unwrap();
        let m = translate(
            "SYSLOG_IDENTIFIER=myapp",
            &["jail".into()],
            &[d.path().into()],
        )
        .unwrap();
        assert!(m.needs_unit);
        std::fs::write(d.path().join("myapp.service"), "").unwrap();
        let m = translate("SYSLOG_IDENTIFIER=myapp", &[], &[d.path().into()]).unwrap();
        assert!(!m.needs_unit);
        assert_eq!(
            m.terms,
            vec!["SYSLOG_IDENTIFIER=myapp", "_SYSTEMD_UNIT=myapp.service"]
        );
    }
}

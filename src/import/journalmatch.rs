//! fail2ban's `journalmatch` → f2b's journal matches.
//!
//! fail2ban: each line, split shell-like, is a match; `+` separates alternatives; within one
//! alternative, terms of different fields must all hold and terms of one field are
//! alternatives (sd-journal's rules). f2b: a list of alternatives, each a conjunction of
//! `FIELD=value` terms (one value per field), and each must name the writer by a field
//! journald sets (a system unit or `_UID`; see [`crate::filter::matches`]). A fail2ban
//! alternative becomes one f2b alternative per combination of its same-field values; terms on
//! fields f2b does not route by are left out (said in the report); an alternative that only
//! names the program (`SYSLOG_IDENTIFIER`, `_COMM`) gets the service's unit when a unit file
//! is found, else the jail needs one (`needs_unit`).

use std::path::PathBuf;

use crate::filter::{Field, JournalMatch};

/// The f2b matches for one fail2ban journalmatch, and what changed on the way.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Matches {
    /// Alternatives, as f2b writes them (`"FIELD=value FIELD=value"`).
    pub terms: Vec<String>,
    /// Said in the report (mapped).
    pub notes: Vec<String>,
    /// Some alternative names the program only and no unit file was found.
    pub needs_unit: bool,
}

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
    let known = |f: &str| Field::ALL.iter().any(|x| x.name() == f);
    let mut out = Matches::default();
    for g in groups.iter().filter(|g| !g.is_empty()) {
        let dropped: Vec<String> = (g.iter())
            .filter(|(f, _)| !known(f))
            .map(|(f, v)| format!("{f}={v}"))
            .collect();
        if !dropped.is_empty() {
            out.notes.push(format!(
                "journal match terms {:?} are not fields f2b routes by ({}): left out, the \
                 filter's regexes decide instead",
                dropped.join(" "),
                Field::ALL.map(Field::name).join(", ")
            ));
        }
        // Per field, its values (alternatives); every field must hold.
        let mut fields: Vec<(&str, Vec<&str>)> = Vec::new();
        for (f, v) in g.iter().filter(|(f, _)| known(f)) {
            match fields.iter_mut().find(|(x, _)| x == f) {
                Some((_, vs)) => vs.push(v),
                None => fields.push((f, vec![v])),
            }
        }
        if fields.is_empty() {
            continue;
        }
        let mut combos: Vec<Vec<String>> = vec![Vec::new()];
        for (f, vs) in &fields {
            combos = combos
                .iter()
                .flat_map(|c| {
                    vs.iter().map(move |v| {
                        let mut c = c.clone();
                        c.push(format!("{f}={v}"));
                        c
                    })
                })
                .collect();
        }
        for c in combos {
            let text = c.join(" ");
            let text = match JournalMatch::parse(&text) {
                Ok(_) => text,
                Err(_) => match unit_for(&c, services, unit_dirs) {
                    Some(u) => {
                        let with = format!("{text} _SYSTEMD_UNIT={u}");
                        out.notes.push(format!(
                            "{text:?} is set by the program itself (any local user can write \
                             it); added the service's unit: {with:?}"
                        ));
                        with
                    }
                    None => {
                        out.needs_unit = true;
                        out.notes.push(format!(
                            "{text:?} is set by the program itself (any local user can write \
                             it): add the service's unit, e.g. \"{text} _SYSTEMD_UNIT=….service\""
                        ));
                        continue;
                    }
                },
            };
            if JournalMatch::parse(&text).is_ok() && !out.terms.contains(&text) {
                out.terms.push(text);
            }
        }
    }
    if out.terms.is_empty() && !out.needs_unit {
        return Err(format!(
            "journalmatch {:?} leaves no journal match f2b can use",
            journalmatch.trim()
        ));
    }
    Ok(out)
}

/// The unit of the service an untrusted alternative names: `NAME.service` in `unit_dirs` for
/// a value of the alternative or one of `services`.
fn unit_for(terms: &[String], services: &[String], unit_dirs: &[PathBuf]) -> Option<String> {
    let mut names: Vec<String> = (terms.iter())
        .filter_map(|t| t.split_once('=').map(|(_, v)| v.to_string()))
        .collect();
    names.extend(services.iter().cloned());
    names.iter().find_map(|n| {
        let unit = format!("{n}.service");
        unit_dirs
            .iter()
            .any(|d| d.join(&unit).is_file())
            .then_some(unit)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alternatives_and_conjunctions() {
        let m = translate("_SYSTEMD_UNIT=sshd.service + _COMM=sshd _UID=0", &[], &[]).unwrap();
        assert_eq!(
            m.terms,
            vec!["_SYSTEMD_UNIT=sshd.service", "_COMM=sshd _UID=0"]
        );
        assert!(m.notes.is_empty() && !m.needs_unit);
        let m = translate("_SYSTEMD_UNIT=fail2ban.service PRIORITY=5", &[], &[]).unwrap();
        assert_eq!(m.terms, vec!["_SYSTEMD_UNIT=fail2ban.service"]);
        assert_eq!(m.notes.len(), 1);
        // Same field: alternatives; different fields: all must hold.
        let m = translate(
            "_SYSTEMD_UNIT=a.service _SYSTEMD_UNIT=b.service _UID=0",
            &[],
            &[],
        )
        .unwrap();
        assert_eq!(
            m.terms,
            vec![
                "_SYSTEMD_UNIT=a.service _UID=0",
                "_SYSTEMD_UNIT=b.service _UID=0"
            ]
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
        assert!(m.needs_unit && m.terms.is_empty());
        std::fs::write(d.path().join("myapp.service"), "").unwrap();
        let m = translate("SYSLOG_IDENTIFIER=myapp", &[], &[d.path().into()]).unwrap();
        assert!(!m.needs_unit);
        assert_eq!(
            m.terms,
            vec!["SYSLOG_IDENTIFIER=myapp _SYSTEMD_UNIT=myapp.service"]
        );
    }
}

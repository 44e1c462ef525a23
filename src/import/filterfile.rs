//! f2b filter files (`f2b.filter(5)`) written by the import, each checked by f2b's own filter
//! loader before it is kept: a pattern f2b refuses is reported, not written.

use crate::filter::library::builtin_filters;
use crate::filter::FilterDef;

use super::translate::Patterns;

/// A TOML string for a regex: a literal string where possible (no escaping to get wrong).
pub fn toml_str(s: &str) -> String {
    if !s.contains('\'') && !s.chars().any(char::is_control) {
        format!("'{s}'")
    } else if !s.contains("'''") && !s.ends_with('\'') && !s.chars().any(char::is_control) {
        format!("'''{s}'''")
    } else {
        toml::Value::String(s.to_string()).to_string()
    }
}

fn list(key: &str, items: &[String]) -> String {
    if items.is_empty() {
        return String::new();
    }
    let mut s = format!("{key} = [\n");
    for i in items {
        s.push_str("  ");
        s.push_str(&toml_str(i));
        s.push_str(",\n");
    }
    s.push_str("]\n");
    s
}

/// Check one filter text with f2b's loader; the error says why f2b refuses it.
pub fn check(name: &str, text: &str) -> Result<FilterDef, String> {
    FilterDef::parse(name, &format!("{name}.toml"), text).map_err(|e| e.to_string())
}

/// Keep only the patterns f2b accepts; the others become problems (message per pattern).
pub fn validate(p: &mut Patterns) -> Vec<String> {
    let mut refused = Vec::new();
    let probe = |body: String| {
        check(
            "probe",
            &format!("matches = [\"_SYSTEMD_UNIT=probe.service\"]\n{body}"),
        )
    };
    p.pidregex
        .retain(|r| match probe(list("pidregex", std::slice::from_ref(r))) {
            Ok(_) => true,
            Err(e) => {
                refused.push(format!("pidregex {r:?}: f2b refuses it: {e}"));
                false
            }
        });
    let pids = list("pidregex", &p.pidregex);
    p.failregex.retain(|r| {
        match probe(format!(
            "{}{pids}",
            list("failregex", std::slice::from_ref(r))
        )) {
            Ok(_) => true,
            Err(e) => {
                refused.push(format!("failregex {r:?}: f2b refuses it: {e}"));
                false
            }
        }
    });
    p.ignoreregex.retain(
        |r| match probe(list("ignoreregex", std::slice::from_ref(r))) {
            Ok(_) => true,
            Err(e) => {
                refused.push(format!("ignoreregex {r:?}: f2b refuses it: {e}"));
                false
            }
        },
    );
    refused
}

/// A translated filter file.
pub fn translated(name: &str, header: &[String], matches: &[String], p: &Patterns) -> String {
    let mut s = String::new();
    for h in header {
        s.push_str(&format!("# {h}\n"));
    }
    s.push_str(&format!(
        "description = {}\n",
        toml_str(&format!("{name} (imported from fail2ban)"))
    ));
    s.push_str(&list("matches", matches));
    s.push_str(&list("failregex", &p.failregex));
    s.push_str(&list("ignoreregex", &p.ignoreregex));
    s.push_str(&list("pidregex", &p.pidregex));
    s
}

/// f2b's built-in filter `base` with more patterns in its base lists (which every mode has).
pub fn derived(
    base: &str,
    header: &[String],
    extra_fail: &[String],
    extra_ignore: &[String],
) -> Result<String, String> {
    let text = builtin_filters()
        .iter()
        .find(|(n, _)| *n == base)
        .map(|(_, t)| *t)
        .ok_or_else(|| format!("f2b has no built-in filter {base:?}"))?;
    let mut table: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
    for (key, extra) in [("failregex", extra_fail), ("ignoreregex", extra_ignore)] {
        if extra.is_empty() {
            continue;
        }
        let arr = table
            .entry(key)
            .or_insert_with(|| toml::Value::Array(Vec::new()));
        if let toml::Value::Array(a) = arr {
            a.extend(extra.iter().cloned().map(toml::Value::String));
        }
    }
    if let Some(toml::Value::String(d)) = table.get_mut("description") {
        d.push_str(" + local additions imported from fail2ban");
    }
    let mut s: String = header.iter().map(|h| format!("# {h}\n")).collect();
    s.push_str(&toml::to_string(&table).map_err(|e| e.to_string())?);
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_round_trip_through_toml() {
        for s in [r"^a\d '<HOST>'$", r"x'''y", r"ends with '", "tab\there"] {
            let t: toml::Table = toml::from_str(&format!("k = {}", toml_str(s))).unwrap();
            assert_eq!(t["k"].as_str(), Some(s));
        }
    }

    #[test]
    fn refused_patterns_are_named_and_dropped() {
        let mut p = Patterns {
            failregex: vec!["^ok <HOST>$".into(), "^two <HOST> <HOST>$".into()],
            ignoreregex: vec!["(".into()],
            ..Patterns::default()
        };
        let refused = validate(&mut p);
        assert_eq!(p.failregex, vec!["^ok <HOST>$"]);
        assert!(p.ignoreregex.is_empty());
        assert_eq!(refused.len(), 2, "{refused:?}");
        let text = translated(
            "app",
            &["from x".into()],
            &["_SYSTEMD_UNIT=app.service".into()],
            &p,
        );
        check("app", &text).unwrap();
        let d = derived("sshd", &[], &["^extra <HOST>$".into()], &["^fine$".into()]).unwrap();
        let def = check("sshd-local", &d).unwrap();
        assert!(def.all_patterns().any(|p| p.text == "^extra <HOST>$"));
    }
}

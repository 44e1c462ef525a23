//! A fail2ban filter as it runs (prefregex, failregex, ignoreregex, after interpolation) →
//! f2b patterns: tags resolved, Python syntax rewritten, prefregex combined into each
//! pattern, `<F-NOFAIL>` session lines turned into pidregexes where fail2ban correlates a
//! session by its syslog prefix (the process), which f2b does by `_PID`.
//!
//! Whatever cannot be expressed is a [`Problem`] with the file and line where the construct
//! was written: the jail is then left out, never run with a weaker filter.

use super::ini::Value;
use super::jails::Effective;
use super::pyregex::{self, Problem};
use super::reader::Config;
use super::tags::{self, TagInfo};
use crate::location::Location;

/// f2b patterns for one filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Patterns {
    pub failregex: Vec<String>,
    pub ignoreregex: Vec<String>,
    pub pidregex: Vec<String>,
    /// What changed in meaning, for the report.
    pub notes: Vec<(Location, String)>,
    /// What could not be carried over.
    pub problems: Vec<(Location, String)>,
}

/// The prefregex, split and translated: (before the content, after it, group names used).
struct Prefix {
    before: String,
    after: String,
    names: Vec<String>,
    info: TagInfo,
}

fn locate(cfg: &Config, v: &Value, p: &Problem) -> Location {
    // The construct is usually written somewhere in the filter's files as it stands.
    let probe: String = p.snippet.chars().take(24).collect();
    cfg.find_text(&probe).unwrap_or_else(|| v.loc.clone())
}

fn prefix(cfg: &Config, v: &Value) -> Result<Prefix, (Location, String)> {
    let fail = |p: Problem| (locate(cfg, v, &p), format!("prefregex: {p}"));
    let (before, after) = tags::split_prefregex(&v.text).map_err(fail)?;
    let mut names = Vec::new();
    let (b, mut info) = tags::resolve(&before, &mut names).map_err(fail)?;
    let (a, info2) = tags::resolve(&after, &mut names).map_err(fail)?;
    info.has_host |= info2.has_host;
    Ok(Prefix {
        before: pyregex::translate(&b).map_err(fail)?,
        after: pyregex::translate(&a).map_err(fail)?,
        names,
        info,
    })
}

/// One pattern in f2b terms, with what its tags said.
fn one(pre: Option<&Prefix>, text: &str) -> Result<(String, TagInfo), Problem> {
    let mut names = pre.map(|p| p.names.clone()).unwrap_or_default();
    let (t, info) = tags::resolve(text, &mut names)?;
    let rust = pyregex::translate(&t)?;
    let rust = match pre {
        Some(p) => tags::combine(&p.before, &p.after, &rust)?,
        None => rust,
    };
    Ok((rust, info))
}

/// Does a pattern spell out a syslog prefix (`ident[pid]:`) instead of leaving it to
/// `__prefix_line`?
fn syslog_prefix(re: &str) -> bool {
    ["\\[[0-9]+\\]:", "\\[[0-9]+\\]?:", "\\[[0-9]*\\]:"]
        .iter()
        .any(|p| re.contains(p))
}

/// Translate a filter.
pub fn patterns(cfg: &Config, eff: &Effective) -> Patterns {
    let mut out = Patterns::default();
    let pre = match &eff.prefregex {
        Some(v) => match prefix(cfg, v) {
            Ok(p) => Some(p),
            Err(e) => {
                out.problems.push(e);
                return out;
            }
        },
        None => None,
    };
    if let Some(v) = eff.maxlines.as_ref().filter(|v| v.text.trim() != "1") {
        out.notes.push((
            v.loc.clone(),
            format!(
                "maxlines = {}: fail2ban joins lines; f2b matches each journal entry alone",
                v.text.trim()
            ),
        ));
    }
    // How fail2ban correlates the lines of a session: by the syslog prefix (host, ident,
    // pid — f2b's _PID) or by some id in the message (f2b cannot).
    let mut mlfid = pre.as_ref().and_then(|p| p.info.mlfid.clone());
    type Attempt<'a> = (&'a Value, Result<(String, TagInfo), Problem>);
    let translated: Vec<Attempt> = eff
        .failregex
        .iter()
        .map(|v| (v, one(pre.as_ref(), &v.text)))
        .collect();
    for (_, r) in &translated {
        if let Ok((_, i)) = r {
            if mlfid.is_none() {
                mlfid.clone_from(&i.mlfid);
            }
        }
    }
    let by_pid = mlfid.as_ref().is_some_and(|m| m.trim().is_empty());
    let mut notes_said = Vec::new();
    let mut note_once = |out: &mut Patterns, loc: &Location, msg: &str| {
        if !notes_said.contains(&msg.to_string()) {
            notes_said.push(msg.to_string());
            out.notes.push((loc.clone(), msg.to_string()));
        }
    };
    for (v, r) in translated {
        let (rust, info) = match r {
            Ok(x) => x,
            Err(p) => {
                out.problems
                    .push((locate(cfg, v, &p), format!("failregex {:?}: {p}", v.text)));
                continue;
            }
        };
        if info.session_markers {
            note_once(&mut out, &v.loc, "<F-MLFFORGET>/<F-MLFGAINED> session markers have no f2b equivalent: a session's address is kept for its process (_PID) for an hour");
        }
        if pre.is_none() && syslog_prefix(&rust) {
            note_once(&mut out, &v.loc, "a failregex seems to match a syslog prefix (program[pid]:) itself, not through %(__prefix_line)s; f2b matches the message alone: check it with f2b test");
        }
        if info.cidr {
            note_once(&mut out, &v.loc, "<CIDR>/<SUBNET>: the prefix length in the line is matched but not used; f2b bans the address (see ipv4_prefix/ipv6_prefix)");
        }
        match (&mlfid, info.nofail || info.nofail_nested) {
            (Some(_), true) if info.nofail_nested => {
                out.problems.push((
                    locate(cfg, v, &Problem { snippet: "<F-NOFAIL>".into(), reason: String::new() }),
                    format!("failregex {:?}: <F-NOFAIL> inside an alternative makes a line a failure or not by the branch taken, within fail2ban's session logic; f2b cannot express it", v.text),
                ));
            }
            (Some(_), true) if by_pid && info.has_host => {
                out.pidregex.extend(tags::split_host_alternatives(&rust))
            }
            (Some(_), true) => note_once(
                &mut out,
                &v.loc,
                "a <F-NOFAIL> line without <HOST> only marks a session in fail2ban: left out",
            ),
            (_, _) if !info.has_host && !by_pid => {
                out.problems.push((
                    v.loc.clone(),
                    format!("failregex {:?} has no <HOST> and fail2ban takes the address from an earlier line of the session ({}); f2b correlates lines by process (_PID) only", v.text,
                    mlfid.as_deref().map(|m| format!("<F-MLFID>{m}</F-MLFID>")).unwrap_or_else(|| "<F-ID>".into())),
                ));
            }
            _ => out.failregex.extend(tags::split_host_alternatives(&rust)),
        }
    }
    for v in &eff.ignoreregex {
        match one(pre.as_ref(), &v.text) {
            Ok((rust, _)) => out.ignoreregex.push(rust),
            Err(p) => out
                .problems
                .push((locate(cfg, v, &p), format!("ignoreregex {:?}: {p}", v.text))),
        }
    }
    if out.failregex.is_empty() && out.problems.is_empty() {
        let loc = eff
            .failregex
            .first()
            .map(|v| v.loc.clone())
            .unwrap_or_else(|| {
                Location::new(cfg.files.first().map(|f| f.path.as_str()).unwrap_or("?"), 0)
            });
        out.problems.push((
            loc,
            "the filter has no failregex that counts failures".into(),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::ini::IniFile;
    use super::*;

    fn eff(pref: Option<&str>, fail: &[&str], ignore: &[&str]) -> Effective {
        let loc = Location::new("filter.d/x.conf", 3);
        let v = |s: &&str| Value::new(*s, loc.clone());
        Effective {
            prefregex: pref.map(|p| v(&p)),
            failregex: fail.iter().map(v).collect(),
            ignoreregex: ignore.iter().map(v).collect(),
            ..Effective::default()
        }
    }

    #[test]
    fn prefregex_user_and_session_lines() {
        let cfg = Config::default();
        let p = patterns(
            &cfg,
            &eff(
                Some(r"^<F-MLFID></F-MLFID>(?:error: )?<F-CONTENT>.+</F-CONTENT>$"),
                &[
                    r"^Login failed for <F-USER>\S+</F-USER> from <HOST>$",
                    r"^<F-NOFAIL>Connection from</F-NOFAIL> <HOST>",
                    r"^Too many failures$",
                ],
                &[r"^Login failed for monitor "],
            ),
        );
        assert!(p.problems.is_empty(), "{:?}", p.problems);
        assert_eq!(
            p.failregex,
            vec![
                r"^(?:)(?:error: )?(?:Login failed for (?P<user>\S+) from <HOST>)$",
                r"^(?:)(?:error: )?(?:Too many failures)$",
            ]
        );
        assert_eq!(
            p.pidregex,
            vec![r"^(?:)(?:error: )?(?:(?:Connection from) <HOST>.*)$"]
        );
        assert_eq!(
            p.ignoreregex,
            vec![r"^(?:)(?:error: )?(?:Login failed for monitor .*)$"]
        );
    }

    #[test]
    fn problems_name_where_the_construct_is_written() {
        let mut cfg = Config::default();
        cfg.files.push(
            IniFile::parse(
                "filter.d/x.conf",
                "[Definition]\nx = 1\nfailregex = ^a(?!b) <HOST>$\n",
            )
            .unwrap(),
        );
        let p = patterns(&cfg, &eff(None, &[r"^a(?!b) <HOST>$", r"^ok <HOST>$"], &[]));
        assert_eq!(p.failregex, vec![r"^ok <HOST>$"]);
        assert_eq!(p.problems.len(), 1);
        assert_eq!(p.problems[0].0.to_string(), "filter.d/x.conf:3");
        assert!(p.problems[0].1.contains("look-around"), "{:?}", p.problems);
        let p = patterns(&cfg, &eff(None, &[r"^\S+ app\[\d+\]: bad <HOST>$"], &[]));
        assert!(
            p.notes.iter().any(|(_, n)| n.contains("syslog prefix")),
            "{p:?}"
        );
        // No <HOST> and no session by process: cannot count.
        let p = patterns(&cfg, &eff(None, &[r"^user <F-ID>\S+</F-ID> failed"], &[]));
        assert_eq!(p.problems.len(), 1, "{p:?}");
    }
}

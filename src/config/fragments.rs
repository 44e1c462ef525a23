//! Fragments: the root file and its drop-ins (`jail.d/*.toml` beside it, lexical order) are
//! read and merged key by key (a later file wins). Syntax errors, unknown keys and values of
//! the wrong type are collected, not returned at the first.

use std::collections::BTreeMap;
use std::fs;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::error::{ConfigError, Problems};
use super::limits;
use super::raw::{
    closest, MergedDaemon, MergedFeed, MergedFleet, MergedJail, DAEMON_KEYS, FEED_KEYS, FLEET_KEYS,
    JAIL_KEYS,
};
use super::LoadOptions;
use crate::location::{line_of, Location};

/// One configuration text and its name (a path, or `builtin:…`).
pub(super) struct SourceFile {
    pub(super) path: String,
    pub(super) text: String,
}

impl SourceFile {
    pub(super) fn loc(&self, span: Range<usize>) -> Location {
        Location::new(&self.path, line_of(&self.text, span.start))
    }
}

/// The root file (or the shipped default text in its place) and the drop-ins, in merge order;
/// the paths actually read.
pub(super) fn read_files(
    opts: &LoadOptions,
) -> Result<(Vec<SourceFile>, Vec<PathBuf>), ConfigError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |error| ConfigError::Io { path, error }
    };
    let mut paths = Vec::new();
    match fs::metadata(&opts.config) {
        Ok(_) => paths.push(opts.config.clone()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && opts.allow_missing => {}
        Err(e) => return Err(io(&opts.config)(e)),
    }
    let dropin = opts
        .config
        .parent()
        .unwrap_or(Path::new("."))
        .join("jail.d");
    match fs::read_dir(&dropin) {
        Ok(rd) => {
            let mut more = Vec::new();
            for entry in rd {
                let p = entry.map_err(io(&dropin))?.path();
                if p.extension().and_then(|s| s.to_str()) == Some("toml") {
                    more.push(p);
                }
            }
            more.sort();
            paths.extend(more);
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
            return Err(ConfigError::Invalid {
                loc: Location::new(dropin.display().to_string(), 0),
                msg: "is not a directory: drop-ins go into a directory jail.d/ beside the \
                      configuration file"
                    .into(),
            })
        }
        Err(e) => return Err(io(&dropin)(e)),
    }
    let mut files = Vec::new();
    if paths.first() != Some(&opts.config) {
        if let Some(text) = opts.default_text {
            files.push(SourceFile {
                path: "builtin:packaging/f2b.toml".into(),
                text: text.to_string(),
            });
        }
    }
    for p in &paths {
        let text = fs::read_to_string(p).map_err(io(p))?;
        files.push(SourceFile {
            path: p.display().to_string(),
            text,
        });
    }
    Ok((files, paths))
}

/// Every file merged: `[daemon]`, `[defaults]`, and each `[jail.NAME]` with where it was first
/// declared.
#[derive(Default)]
pub(super) struct Merged {
    pub(super) daemon: MergedDaemon,
    pub(super) defaults: MergedJail,
    pub(super) jails: BTreeMap<String, (MergedJail, Location)>,
    /// `[feed.NAME]` tables, with where each was first declared.
    pub(super) feeds: BTreeMap<String, (MergedFeed, Location)>,
    /// `[fleet]`, and where it was first written (`None`: no fleet).
    pub(super) fleet: MergedFleet,
    pub(super) fleet_decl: Option<Location>,
    /// `[action.NAME]` tables, with where each was first declared.
    pub(super) actions: BTreeMap<String, (super::actions::MergedAction, Location)>,
}

/// Parse and merge `files`; problems go to `problems`.
pub(super) fn merge(files: &[SourceFile], problems: &mut Problems) -> Merged {
    let mut m = Merged::default();
    for f in files {
        let (doc, syntax) = DeTable::parse_recoverable(&f.text);
        if !syntax.is_empty() {
            // What follows a syntax error is guesswork: report the errors, skip the file.
            for e in syntax {
                let line = e.span().map(|s| line_of(&f.text, s.start)).unwrap_or(0);
                problems.invalid(Location::new(&f.path, line), e.message().trim());
            }
            continue;
        }
        for (key, value) in doc.get_ref() {
            let at = f.loc(key.span());
            match key.get_ref().as_ref() {
                "daemon" => for_each(f, value, "[daemon]", problems, |k, v| {
                    m.daemon.set(k, v, |s| f.loc(s))
                }),
                "defaults" => for_each(f, value, "[defaults]", problems, |k, v| {
                    m.defaults.set(k, v, |s| f.loc(s))
                }),
                "jail" => jails(f, value, &mut m.jails, problems),
                "feed" => feeds(f, value, &mut m.feeds, problems),
                "fleet" => {
                    m.fleet_decl.get_or_insert(at);
                    for_each(f, value, "[fleet]", problems, |k, v| {
                        m.fleet.set(k, v, |s| f.loc(s))
                    })
                }
                "action" => super::actions::merge(f, value, &mut m.actions, problems),
                other => problems.invalid(
                    at,
                    unknown(
                        other,
                        "at the top level",
                        &["daemon", "defaults", "jail", "feed", "fleet", "action"],
                    ),
                ),
            }
        }
    }
    m
}

/// `[jail.NAME]` tables.
fn jails(
    f: &SourceFile,
    value: &Spanned<DeValue<'_>>,
    jails: &mut BTreeMap<String, (MergedJail, Location)>,
    problems: &mut Problems,
) {
    let Some(table) = value.get_ref().as_table() else {
        problems.invalid(
            f.loc(value.span()),
            "jail: expected tables [jail.NAME], one per jail",
        );
        return;
    };
    for (name, jail) in table {
        let decl = f.loc(jail.span());
        let name = name.get_ref().as_ref();
        if let Err(e) = limits::jail_name(name) {
            problems.invalid(decl, e.to_string());
            continue;
        }
        let entry = jails
            .entry(name.to_string())
            .or_insert_with(|| (MergedJail::default(), decl));
        let section = format!("[jail.{name}]");
        for_each(f, jail, &section, problems, |k, v| {
            entry.0.set(k, v, |s| f.loc(s))
        });
    }
}

/// `[feed.NAME]` tables.
fn feeds(
    f: &SourceFile,
    value: &Spanned<DeValue<'_>>,
    feeds: &mut BTreeMap<String, (MergedFeed, Location)>,
    problems: &mut Problems,
) {
    let Some(table) = value.get_ref().as_table() else {
        problems.invalid(
            f.loc(value.span()),
            "feed: expected tables [feed.NAME], one per feed",
        );
        return;
    };
    for (name, feed) in table {
        let decl = f.loc(feed.span());
        let name = name.get_ref().as_ref();
        if !crate::firewall::nft::valid_name(name) {
            let shown: String = name.chars().take(64).collect();
            problems.invalid(
                decl,
                format!("feed name {shown:?}: use 1–32 characters of [A-Za-z0-9_-]"),
            );
            continue;
        }
        let entry = feeds
            .entry(name.to_string())
            .or_insert_with(|| (MergedFeed::default(), decl));
        let section = format!("[feed.{name}]");
        for_each(f, feed, &section, problems, |k, v| {
            entry.0.set(k, v, |s| f.loc(s))
        });
    }
}

/// Set every key of the table `value` with `set`, reporting unknown keys and wrong types.
fn for_each(
    f: &SourceFile,
    value: &Spanned<DeValue<'_>>,
    section: &str,
    problems: &mut Problems,
    mut set: impl FnMut(&str, &Spanned<DeValue<'_>>) -> Result<(), Option<(Location, String)>>,
) {
    let Some(table) = value.get_ref().as_table() else {
        problems.invalid(f.loc(value.span()), format!("{section}: expected a table"));
        return;
    };
    let label = section.trim_matches(['[', ']']).replacen('.', " ", 1);
    let known = match section {
        "[daemon]" => DAEMON_KEYS,
        "[fleet]" => FLEET_KEYS,
        s if s.starts_with("[feed.") => FEED_KEYS,
        _ => JAIL_KEYS,
    };
    for (key, v) in table {
        let k = key.get_ref().as_ref();
        match set(k, v) {
            Ok(()) => {}
            Err(Some((loc, msg))) => problems.invalid(loc, format!("{label}: {k}: {msg}")),
            Err(None) => problems.invalid(
                f.loc(key.span()),
                unknown(k, &format!("in {section}"), known),
            ),
        }
    }
}

/// "unknown key …; did you mean …?"
fn unknown(key: &str, place: &str, known: &[&str]) -> String {
    let mut msg = format!("unknown key {key:?} {place}");
    if let Some(k) = closest(key, known) {
        msg.push_str(&format!("; did you mean {k:?}?"));
    } else if known == JAIL_KEYS && DAEMON_KEYS.contains(&key) {
        msg.push_str("; it belongs in [daemon]");
    } else if known == DAEMON_KEYS && JAIL_KEYS.contains(&key) {
        msg.push_str("; it belongs in [defaults] or [jail.NAME]");
    } else {
        msg.push_str(" (see f2b.toml(5) for the keys)");
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> String {
        let files = [SourceFile {
            path: "f.toml".into(),
            text: text.into(),
        }];
        let mut p = Problems::new(vec!["f.toml".into()]);
        merge(&files, &mut p);
        p.finish(())
            .map(|_| String::new())
            .unwrap_or_else(|e| e.to_string())
    }

    #[test]
    fn every_problem_with_its_line() {
        let e = problems(
            "[defaults]\nmaxretry = \"three\"\n[jail.sshd]\nmaxretries = 3\nban_time = 5\n\
             state_dir = \"/x\"\n[jail.web]\nenabled = \"yes\"\n[daemon]\nmaxretry = 1\n",
        );
        let lines: Vec<&str> = e.lines().collect();
        assert_eq!(
            lines,
            [
                "f.toml:2: defaults: maxretry: expected an integer, found string \"three\"",
                "f.toml:4: unknown key \"maxretries\" in [jail.sshd]; did you mean \"maxretry\"?",
                "f.toml:5: unknown key \"ban_time\" in [jail.sshd]; did you mean \"bantime\"?",
                "f.toml:6: unknown key \"state_dir\" in [jail.sshd]; it belongs in [daemon]",
                "f.toml:8: jail web: enabled: expected true or false, found string \"yes\"",
                "f.toml:10: unknown key \"maxretry\" in [daemon]; it belongs in [defaults] or [jail.NAME]",
            ],
            "{e}"
        );
        let e = problems("[jail.a]\nx = [\n[jail.b]\n");
        assert!(e.starts_with("f.toml:"), "{e}");
        assert!(problems("[jails.sshd]\n").contains("did you mean \"jail\"?"));
        assert!(problems("[jail.\"bad name!\"]\n").contains("jail name"));
    }
}

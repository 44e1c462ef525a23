//! Writing the result: `DIR/f2b.toml` (defaults, jails, actions; each key with the fail2ban
//! file and line it came from), `DIR/filters/*.toml`, key files of actions, and the report.
//! Files that exist are kept as `NAME.before-import` rather than overwritten.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::convert::OutJail;
use super::report::{Kind, Report};
use super::settings::Keys;
use super::ImportError;

/// Jail keys in the order they are written.
const ORDER: &[&str] = &[
    "maxretry",
    "findtime",
    "bantime",
    "ignoreip",
    "ignoreself",
    "ports",
    "protocol",
    "action",
    "bantime_increment",
    "bantime_factor",
    "bantime_multipliers",
    "bantime_maxtime",
    "bantime_rndtime",
    "bantime_overalljails",
];

/// Everything to write.
#[derive(Debug, Clone, Default)]
pub struct Output {
    pub config: String,
    /// File name under `filters/` → contents.
    pub filters: BTreeMap<String, String>,
    /// File name beside f2b.toml → secret contents (mode 0600).
    pub secrets: BTreeMap<String, String>,
}

fn keys_text(keys: &Keys, skip_equal_to: Option<&Keys>) -> String {
    let mut s = String::new();
    for k in ORDER {
        let Some((v, loc)) = keys.keys.get(k) else {
            continue;
        };
        if skip_equal_to
            .and_then(|d| d.keys.get(k))
            .is_some_and(|(dv, _)| dv == v)
        {
            continue;
        }
        let _ = writeln!(s, "{k} = {v}   # {loc}");
    }
    s
}

/// Render f2b.toml and the files it needs.
pub fn render(
    from: &Path,
    to: &Path,
    defaults: &Keys,
    jails: &[OutJail],
    filters: &BTreeMap<String, String>,
) -> Output {
    let mut out = Output::default();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# f2b configuration imported from fail2ban ({}) by `f2b import-fail2ban`.\n\
         # Each setting names the fail2ban file and line it comes from; the report is in\n\
         # import-report.txt. Check it with: f2b --config {}/f2b.toml check\n",
        from.display(),
        to.display()
    );
    let _ = writeln!(s, "[defaults]\n{}", keys_text(defaults, None));
    // Actions: one table per distinct configuration.
    // (name, table as planned, its secret, table as written)
    type Action<'a> = (
        String,
        &'a toml::Table,
        &'a Option<(String, String)>,
        toml::Table,
    );
    let mut actions: Vec<Action> = Vec::new();
    let mut jail_actions: Vec<Vec<String>> = Vec::new();
    for j in jails {
        let mut names = Vec::new();
        for n in &j.notify {
            let mut table = n.table.clone();
            let name = match actions
                .iter()
                .find(|(_, t, sec, _)| **t == n.table && **sec == n.secret)
            {
                Some((name, ..)) => name.clone(),
                None => {
                    let base = super::convert::jail_name(&n.hint);
                    let mut name = base.clone();
                    let mut i = 2;
                    while actions.iter().any(|(a, ..)| *a == name) {
                        name = format!("{base}-{i}");
                        i += 1;
                    }
                    if let Some((file, secret)) = &n.secret {
                        let file = format!("{name}-{file}");
                        table.insert(
                            "key_file".into(),
                            to.join(&file).display().to_string().into(),
                        );
                        out.secrets.insert(file, secret.clone());
                    }
                    actions.push((name.clone(), &n.table, &n.secret, table));
                    name
                }
            };
            if !names.contains(&name) {
                names.push(name);
            }
        }
        jail_actions.push(names);
    }
    for (j, acts) in jails.iter().zip(&jail_actions) {
        let mut body = format!("# fail2ban's jail {}, enabled at {}\n", j.from, j.loc);
        for (k, v) in &j.source {
            let _ = writeln!(body, "{k} = {v}");
        }
        body.push_str(&keys_text(&j.keys, Some(defaults)));
        if !acts.is_empty() {
            let v = toml::Value::Array(acts.iter().map(|a| a.as_str().into()).collect());
            let _ = writeln!(body, "actions = {v}");
        }
        match &j.left_out {
            None => {
                let _ = writeln!(s, "[jail.{}]\n{body}", j.name);
            }
            Some(why) => {
                let _ = writeln!(s, "# [jail.{}] NOT IMPORTED: {why}", j.name);
                for l in body.lines() {
                    let _ = writeln!(s, "# {l}");
                }
                s.push('\n');
            }
        }
    }
    for (name, _, _, table) in &actions {
        let _ = writeln!(s, "[action.{name}]");
        for (k, v) in table {
            let _ = writeln!(s, "{k} = {v}");
        }
        s.push('\n');
    }
    out.config = s;
    out.filters = filters
        .iter()
        .map(|(n, t)| {
            let file = if n.ends_with(".todo") {
                n.clone()
            } else {
                format!("{n}.toml")
            };
            (file, t.clone())
        })
        .collect();
    out
}

/// Keep an existing file as `NAME.before-import` (numbered if that exists too).
fn keep_old(path: &Path, new: &str, report: &mut Report) -> Result<(), ImportError> {
    match fs::read_to_string(path) {
        Ok(old) if old == new => Ok(()),
        Ok(_) => {
            let mut backup = PathBuf::from(format!("{}.before-import", path.display()));
            let mut i = 2;
            while backup.exists() {
                backup = PathBuf::from(format!("{}.before-import.{i}", path.display()));
                i += 1;
            }
            fs::rename(path, &backup).map_err(|source| ImportError::Io {
                path: path.to_path_buf(),
                source,
            })?;
            report.add(
                Kind::Mapped,
                format!("file {}", path.display()),
                None,
                format!("existed: kept as {}", backup.display()),
            );
            Ok(())
        }
        Err(_) => Ok(()),
    }
}

fn write_file(path: &Path, text: &str, mode: u32) -> Result<(), ImportError> {
    let io = |source| ImportError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)
}

/// Write everything under `to`.
pub fn write(to: &Path, out: &Output, report: &mut Report) -> Result<(), ImportError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ImportError::Io { path, source }
    };
    fs::create_dir_all(to).map_err(io(to))?;
    let cfg = to.join("f2b.toml");
    keep_old(&cfg, &out.config, report)?;
    write_file(&cfg, &out.config, 0o644)?;
    if !out.filters.is_empty() {
        let dir = to.join("filters");
        fs::create_dir_all(&dir).map_err(io(&dir))?;
        for (name, text) in &out.filters {
            let p = dir.join(name);
            keep_old(&p, text, report)?;
            write_file(&p, text, 0o644)?;
        }
    }
    for (name, secret) in &out.secrets {
        write_file(&to.join(name), secret, 0o600)?;
    }
    if let Ok(rd) = fs::read_dir(to.join("jail.d")) {
        let extra: Vec<String> = rd
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "toml"))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        if !extra.is_empty() {
            report.add(
                Kind::Mapped,
                format!("directory {}", to.join("jail.d").display()),
                None,
                format!(
                    "holds drop-ins that f2b merges over the imported f2b.toml: {}",
                    extra.join(", ")
                ),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::actions::Notify;
    use crate::import::convert::OutJail;
    use crate::location::Location;

    fn jail(name: &str, left_out: Option<&str>, notify: Vec<Notify>) -> OutJail {
        let loc = Location::new("jail.local", 3);
        let mut keys = Keys::default();
        keys.keys.insert("maxretry", (3.into(), loc.clone()));
        keys.keys.insert("bantime", ("1h".into(), loc.clone()));
        OutJail {
            name: name.into(),
            from: name.into(),
            loc,
            source: vec![("enabled", true.into()), ("filter", "sshd".into())],
            keys,
            notify,
            left_out: left_out.map(str::to_string),
        }
    }

    #[test]
    fn writes_toml_with_shared_actions_and_commented_jails() {
        let mut mail = toml::Table::new();
        mail.insert("type".into(), "mail".into());
        mail.insert("to".into(), "root@example.org".into());
        let notify = |secret: Option<(String, String)>| Notify {
            from: "sendmail-whois".into(),
            loc: Location::new("jail.local", 9),
            hint: "mail".into(),
            table: mail.clone(),
            secret,
        };
        let mut defaults = Keys::default();
        defaults
            .keys
            .insert("bantime", ("1h".into(), Location::new("jail.conf", 1)));
        let jails = vec![
            jail("a", None, vec![notify(None)]),
            jail(
                "b",
                None,
                vec![notify(None), notify(Some(("k".into(), "s3cret".into())))],
            ),
            jail("c", Some("look-around"), vec![]),
        ];
        let out = render(
            Path::new("/etc/fail2ban"),
            Path::new("/out"),
            &defaults,
            &jails,
            &BTreeMap::new(),
        );
        let t: toml::Table = toml::from_str(&out.config).unwrap();
        let j = t["jail"].as_table().unwrap();
        assert_eq!(j.keys().collect::<Vec<_>>(), vec!["a", "b"]);
        assert!(
            !j["a"].as_table().unwrap().contains_key("bantime"),
            "same as [defaults]"
        );
        assert_eq!(j["a"]["actions"].as_array().unwrap().len(), 1);
        assert_eq!(j["b"]["actions"].as_array().unwrap().len(), 2);
        let a = t["action"].as_table().unwrap();
        assert_eq!(a.len(), 2);
        assert_eq!(a["mail-2"]["key_file"].as_str(), Some("/out/mail-2-k"));
        assert_eq!(out.secrets["mail-2-k"], "s3cret");
        assert!(out.config.contains("# [jail.c] NOT IMPORTED: look-around"));
    }
}

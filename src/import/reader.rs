//! fail2ban's reading order (`ConfigReaderUnshared.read` and `SafeConfigParserWithIncludes`):
//! for a name such as `jail` or `filter.d/sshd`, the files `NAME.conf`, `NAME.d/*.conf`
//! (sorted), `NAME.local`, `NAME.d/*.local` (sorted) that exist; each file `X.conf` brings
//! its `X.local` right after it; `[INCLUDES] before = …` files come before the file that names
//! them, `after = …` files after it (recursively, paths relative to the including file).
//!
//! The files are merged in that order: `[DEFAULT]` key by key, sections key by key; the value
//! a later file replaces is kept in the section `KNOWN/NAME` (for `%(known/opt)s`).
//! A conditional section `[Init?family=inet6]` merges into `Init` with keys `opt?family=inet6`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::error::ImportError;
use super::ini::{IniFile, Options};
use crate::location::Location;

/// The merged configuration of one name (`jail`, `filter.d/sshd`, `action.d/…`).
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub defaults: Options,
    pub sections: BTreeMap<String, Options>,
    /// Sections in the order they first appeared (jails are reported in this order).
    pub order: Vec<String>,
    /// The files read, in merge order (without repeats).
    pub files: Vec<IniFile>,
}

/// Which files to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Everything fail2ban reads.
    All,
    /// Only `.conf` files: what the distribution shipped, without local changes.
    ConfOnly,
}

impl Config {
    /// Read `base/NAME.*` the way fail2ban does. Missing files are skipped; a file that cannot
    /// be parsed is an error naming its line.
    pub fn read(base: &Path, name: &str, scope: Scope) -> Result<Config, ImportError> {
        let basename = base.join(name);
        let dir = PathBuf::from(format!("{}.d", basename.display()));
        let mut list = vec![PathBuf::from(format!("{}.conf", basename.display()))];
        list.extend(sorted_glob(&dir, "conf"));
        if scope == Scope::All {
            list.push(PathBuf::from(format!("{}.local", basename.display())));
            list.extend(sorted_glob(&dir, "local"));
        }
        list.retain(|p| p.exists());
        let mut cache: BTreeMap<PathBuf, Option<IniFile>> = BTreeMap::new();
        let full = includes(&list, &[], scope, &mut cache)?;
        let mut cfg = Config::default();
        for path in full {
            let Some(Some(file)) = cache.get(&path) else {
                continue;
            };
            cfg.merge(file);
            if !cfg.files.iter().any(|f| f.path == file.path) {
                cfg.files.push(file.clone());
            }
        }
        Ok(cfg)
    }

    /// Merge one more file (later wins; replaced values go to `KNOWN/SECTION`).
    pub fn merge(&mut self, file: &IniFile) {
        for (k, v) in &file.defaults {
            self.defaults.insert(k.clone(), v.clone());
        }
        for (name, opts) in &file.sections {
            let (name, opts) = match conditional(name) {
                Some((base, cond)) => (
                    base.to_string(),
                    opts.iter()
                        .map(|(k, v)| (format!("{k}{cond}"), v.clone()))
                        .collect::<Options>(),
                ),
                None => (name.clone(), opts.clone()),
            };
            match self.sections.get_mut(&name) {
                Some(existing) => {
                    let replaced: Options = existing
                        .iter()
                        .filter(|(k, _)| opts.contains_key(*k))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    existing.extend(opts);
                    if !replaced.is_empty() {
                        self.sections
                            .entry(format!("KNOWN/{name}"))
                            .or_default()
                            .extend(replaced);
                    }
                }
                None => {
                    self.order.push(name.clone());
                    self.sections.insert(name, opts);
                }
            }
        }
    }

    /// Sections that are not `INCLUDES` or `KNOWN/…`, in the order first seen.
    pub fn user_sections(&self) -> impl Iterator<Item = &str> {
        self.order
            .iter()
            .map(String::as_str)
            .filter(|s| *s != "INCLUDES" && !s.starts_with("KNOWN/"))
    }

    /// The raw value of `option` in `section` (falling back to `[DEFAULT]`).
    #[cfg(test)]
    fn raw(&self, section: &str, option: &str) -> Option<&super::ini::Value> {
        self.sections
            .get(section)
            .and_then(|s| s.get(option))
            .or_else(|| self.defaults.get(option))
    }

    /// Whether `section` sets `option` itself (not through `[DEFAULT]`).
    pub fn has_own(&self, section: &str, option: &str) -> bool {
        self.sections
            .get(section)
            .is_some_and(|s| s.contains_key(option))
    }

    /// Where `needle` is first written in the files read (for reporting a construct found
    /// only after interpolation), if anywhere.
    pub fn find_text(&self, needle: &str) -> Option<Location> {
        if needle.is_empty() {
            return None;
        }
        self.files.iter().find_map(|f| {
            f.lines
                .iter()
                .position(|l| l.contains(needle))
                .map(|i| Location::new(&f.path, i + 1))
        })
    }
}

/// `Init?family=inet6` → ("Init", "?family=inet6").
fn conditional(name: &str) -> Option<(&str, &str)> {
    let q = name.find('?')?;
    let (base, cond) = name.split_at(q);
    (!base.is_empty() && base.chars().all(|c| c.is_alphanumeric() || c == '_') && cond.len() > 1)
        .then_some((base, cond))
}

fn sorted_glob(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let Ok(rd) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some(ext))
        .collect();
    v.sort();
    v
}

fn load<'a>(
    path: &Path,
    cache: &'a mut BTreeMap<PathBuf, Option<IniFile>>,
) -> Result<Option<&'a IniFile>, ImportError> {
    if !cache.contains_key(path) {
        let parsed = match fs::read_to_string(path) {
            Ok(text) => Some(IniFile::parse(&path.display().to_string(), &text)?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) if e.kind() == std::io::ErrorKind::IsADirectory => None,
            Err(source) => {
                return Err(ImportError::Io {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        cache.insert(path.to_path_buf(), parsed);
    }
    Ok(cache[path].as_ref())
}

/// `_getIncludes`: each file with its `.local`, each expanded with its includes.
fn includes(
    files: &[PathBuf],
    seen: &[PathBuf],
    scope: Scope,
    cache: &mut BTreeMap<PathBuf, Option<IniFile>>,
) -> Result<Vec<PathBuf>, ImportError> {
    let mut expanded = Vec::new();
    for f in files {
        expanded.push(f.clone());
        if scope == Scope::All {
            let local = f.with_extension("local");
            if !files.contains(&local) && local.is_file() {
                expanded.push(local);
            }
        }
    }
    let mut out = Vec::new();
    for f in &expanded {
        out.extend(one_with_includes(f, seen, scope, cache)?);
    }
    Ok(out)
}

fn one_with_includes(
    resource: &Path,
    seen: &[PathBuf],
    scope: Scope,
    cache: &mut BTreeMap<PathBuf, Option<IniFile>>,
) -> Result<Vec<PathBuf>, ImportError> {
    let Some(file) = load(resource, cache)? else {
        return Ok(Vec::new());
    };
    let dir = resource.parent().unwrap_or(Path::new(".")).to_path_buf();
    let inc = file.section("INCLUDES").cloned().unwrap_or_default();
    let mut before = Vec::new();
    let mut after = Vec::new();
    for (key, list) in [("before", &mut before), ("after", &mut after)] {
        let Some(v) = inc.get(key) else { continue };
        for item in v.text.split('\n').map(str::trim).filter(|s| !s.is_empty()) {
            let r = if Path::new(item).is_absolute() {
                PathBuf::from(item)
            } else {
                dir.join(item)
            };
            if seen.contains(&r) || (scope == Scope::ConfOnly && is_local(&r)) {
                continue;
            }
            let mut s = seen.to_vec();
            s.push(resource.to_path_buf());
            list.extend(includes(&[r], &s, scope, cache)?);
        }
    }
    let mut out = before;
    out.push(resource.to_path_buf());
    out.extend(after);
    Ok(out)
}

fn is_local(p: &Path) -> bool {
    p.extension().and_then(|e| e.to_str()) == Some("local")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        let p = dir.join(name);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }

    #[test]
    fn reading_order_includes_and_known() {
        let d = tempfile::tempdir().unwrap();
        let b = d.path();
        write(
            b,
            "paths-common.conf",
            "[DEFAULT]\nlog = common\nother = 1\n",
        );
        write(
            b,
            "paths-debian.conf",
            "[INCLUDES]\nbefore = paths-common.conf\n[DEFAULT]\nlog = debian\n",
        );
        write(
            b,
            "jail.conf",
            "[INCLUDES]\nbefore = paths-debian.conf\n[DEFAULT]\nbantime = 10m\n[sshd]\nport = ssh\nmaxretry = 5\n",
        );
        write(b, "jail.d/a.conf", "[sshd]\nmaxretry = 4\n");
        write(b, "jail.d/a.local", "[sshd]\nmaxretry = 2\n");
        write(
            b,
            "jail.local",
            "[sshd]\nmaxretry = 3\n[Init?family=inet6]\nx = 1\n",
        );
        write(b, "jail.d/b.local", "[DEFAULT]\nbantime = 1h\n");
        let c = Config::read(b, "jail", Scope::All).unwrap();
        // jail.conf, jail.d/a.conf (+ a.local right after it), jail.local, jail.d/*.local
        // (a.local again: harmless), so the last word is a.local's.
        assert_eq!(c.raw("sshd", "maxretry").unwrap().text, "2");
        assert_eq!(c.raw("sshd", "bantime").unwrap().text, "1h");
        assert_eq!(c.raw("sshd", "log").unwrap().text, "debian");
        assert_eq!(c.raw("sshd", "other").unwrap().text, "1");
        assert_eq!(c.sections["KNOWN/sshd"]["maxretry"].text, "3");
        assert_eq!(c.sections["Init"]["x?family=inet6"].text, "1");
        assert_eq!(c.user_sections().collect::<Vec<_>>(), vec!["sshd", "Init"]);
        let paths: Vec<&str> = c.files.iter().map(|f| f.path.as_str()).collect();
        assert!(paths[0].ends_with("paths-common.conf"), "{paths:?}");
        let stock = Config::read(b, "jail", Scope::ConfOnly).unwrap();
        assert_eq!(stock.raw("sshd", "maxretry").unwrap().text, "4");
    }
}

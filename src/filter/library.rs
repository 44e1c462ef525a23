//! The filter library: built-in filters, overridden by files in the filter directories.
//!
//! Search order (later wins, whole file per name): the filters compiled into the binary,
//! `/usr/lib/f2b/filters/*.toml`, `/etc/f2b/filters/*.toml`, then any `--filter-dir`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::{FilterDef, FilterError};

mod builtin {
    include!(concat!(env!("OUT_DIR"), "/builtin.rs"));
}

/// Directories searched after the built-in filters, in order.
pub const DEFAULT_DIRS: &[&str] = &["/usr/lib/f2b/filters", "/etc/f2b/filters"];

/// The built-in filter texts `(name, toml)`.
pub fn builtin_filters() -> &'static [(&'static str, &'static str)] {
    builtin::BUILTIN_FILTERS
}

/// The built-in sample files `(filter name, toml)`.
pub fn builtin_samples(name: &str) -> Option<&'static str> {
    builtin::BUILTIN_SAMPLES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
}

/// Every filter known, by name.
#[derive(Debug, Clone, Default)]
pub struct FilterLibrary {
    pub filters: BTreeMap<String, FilterDef>,
}

/// A filter name is a file stem: `[A-Za-z0-9_.-]`, not starting with a dot.
pub fn valid_filter_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

impl FilterLibrary {
    /// Built-ins plus every `*.toml` in `dirs` (missing directories are skipped).
    pub fn load(dirs: &[PathBuf]) -> Result<FilterLibrary, FilterError> {
        let mut lib = FilterLibrary::default();
        for (name, text) in builtin_filters() {
            let def = FilterDef::parse(name, &format!("builtin:filters/{name}.toml"), text)?;
            lib.filters.insert(name.to_string(), def);
        }
        for dir in dirs {
            lib.load_dir(dir)?;
        }
        Ok(lib)
    }

    /// The default search path.
    pub fn default_dirs() -> Vec<PathBuf> {
        DEFAULT_DIRS.iter().map(PathBuf::from).collect()
    }

    fn load_dir(&mut self, dir: &Path) -> Result<(), FilterError> {
        let rd = match fs::read_dir(dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(source) => {
                return Err(FilterError::Io {
                    path: dir.to_path_buf(),
                    source,
                })
            }
        };
        let mut paths: Vec<PathBuf> = rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().and_then(|s| s.to_str()) == Some("toml"))
            .collect();
        paths.sort();
        for path in paths {
            let name = path
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            if !valid_filter_name(&name) {
                continue;
            }
            let text = fs::read_to_string(&path).map_err(|source| FilterError::Io {
                path: path.clone(),
                source,
            })?;
            let def = FilterDef::parse(&name, &path.display().to_string(), &text)?;
            self.filters.insert(name, def);
        }
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<&FilterDef> {
        self.filters.get(name)
    }

    /// Load a single filter file given by path (for `f2b test ./my.toml`).
    pub fn load_file(path: &Path) -> Result<FilterDef, FilterError> {
        let text = fs::read_to_string(path).map_err(|source| FilterError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let name = path
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        FilterDef::parse(&name, &path.display().to_string(), &text)
    }
}

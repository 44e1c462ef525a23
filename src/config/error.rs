//! The errors of the configuration subsystem, and the collector that gathers every problem of
//! a configuration (not only the first) in file order.

use std::path::PathBuf;

use crate::filter::FilterError;
use crate::location::Location;

/// Errors of the configuration subsystem. Each message is complete (it names file, line and
/// key, and includes the cause's text): print it with `{}`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{loc}: {msg}")]
    Invalid { loc: Location, msg: String },
    /// A file or directory that cannot be read (the cause is part of the message).
    #[error("{}: {error}", .path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error(transparent)]
    Filter(#[from] FilterError),
    /// Several problems, one per line, in file order.
    #[error("{}", list(.0))]
    Several(Vec<ConfigError>),
}

fn list(errors: &[ConfigError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

impl ConfigError {
    /// Every single problem (a [`ConfigError::Several`] opened up).
    pub fn problems(&self) -> Vec<&ConfigError> {
        match self {
            ConfigError::Several(v) => v.iter().flat_map(|e| e.problems()).collect(),
            e => vec![e],
        }
    }
}

/// Collects problems while a configuration is read, merged and resolved.
#[derive(Debug, Default)]
pub(super) struct Problems {
    /// The files in merge order: problems are sorted by file, then line.
    files: Vec<String>,
    found: Vec<ConfigError>,
}

impl Problems {
    pub(super) fn new(files: Vec<String>) -> Self {
        Problems {
            files,
            found: Vec::new(),
        }
    }

    pub(super) fn push(&mut self, e: ConfigError) {
        self.found.push(e);
    }

    pub(super) fn invalid(&mut self, loc: Location, msg: impl Into<String>) {
        self.push(ConfigError::Invalid {
            loc,
            msg: msg.into(),
        });
    }

    /// `Ok(value)` when nothing was found; else every problem once, in file order.
    pub(super) fn finish<T>(self, value: T) -> Result<T, ConfigError> {
        if self.found.is_empty() {
            Ok(value)
        } else {
            Err(self.into_error())
        }
    }

    /// Every problem found, once each, in file order (files that cannot be read and filter
    /// errors first).
    pub(super) fn into_error(self) -> ConfigError {
        let Problems { files, mut found } = self;
        let order = |e: &ConfigError| match e {
            ConfigError::Invalid { loc, .. } => (
                files
                    .iter()
                    .position(|f| *f == loc.file)
                    .map_or(usize::MAX, |i| i + 1),
                loc.line,
            ),
            _ => (0, 0),
        };
        found.sort_by_key(|e| order(e));
        let mut seen = std::collections::HashSet::new();
        found.retain(|e| seen.insert(e.to_string()));
        if found.len() == 1 {
            found.pop().expect("one problem")
        } else {
            ConfigError::Several(found)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_in_file_order_once() {
        let mut p = Problems::new(vec!["a.toml".into(), "b.toml".into()]);
        p.invalid(Location::new("b.toml", 1), "x");
        p.invalid(Location::new("a.toml", 9), "y");
        p.invalid(Location::new("a.toml", 2), "z");
        p.invalid(Location::new("a.toml", 2), "z");
        let e = p.finish(()).unwrap_err();
        assert_eq!(e.to_string(), "a.toml:2: z\na.toml:9: y\nb.toml:1: x");
        assert_eq!(e.problems().len(), 3);
        assert!(Problems::new(vec![]).finish(1).is_ok());
    }
}

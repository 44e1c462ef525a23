//! The last good copy of each feed on disk (`STATE_DIR/feeds/NAME.body` and `NAME.json`), read
//! at start before any fetch, so that a feed server that is down still leaves its list
//! enforced. Written atomically (a temporary file renamed over the old one).

use std::io;
use std::path::{Path, PathBuf};

use super::fetch::Validators;

/// What we know of the copy on disk.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Meta {
    /// The URL or path it came from: a copy of another source is not used.
    pub source: String,
    pub validators: Validators,
    /// When it was last fetched (or found current), µs since the epoch.
    pub fetched_us: u64,
    /// When its content last changed, µs since the epoch.
    pub changed_us: u64,
}

/// The copies of every feed, in one directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    pub fn new(dir: PathBuf) -> Cache {
        Cache { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn paths(&self, name: &str) -> (PathBuf, PathBuf) {
        (
            self.dir.join(format!("{name}.body")),
            self.dir.join(format!("{name}.json")),
        )
    }

    /// The copy of feed `name` taken from `source`, if there is a readable one.
    pub fn load(&self, name: &str, source: &str) -> Option<(Meta, Vec<u8>)> {
        let (body, meta) = self.paths(name);
        let meta: Meta = serde_json::from_slice(&std::fs::read(meta).ok()?).ok()?;
        if meta.source != source {
            return None;
        }
        Some((meta, std::fs::read(body).ok()?))
    }

    /// Keeps `body` as feed `name`'s last good copy.
    pub fn store(&self, name: &str, meta: &Meta, body: &[u8]) -> io::Result<()> {
        let (body_path, meta_path) = self.paths(name);
        std::fs::create_dir_all(&self.dir)?;
        write_atomic(&body_path, body)?;
        self.store_meta_at(&meta_path, meta)
    }

    /// Updates the metadata only (a 304: fetched again, unchanged).
    pub fn store_meta(&self, name: &str, meta: &Meta) -> io::Result<()> {
        let (_, meta_path) = self.paths(name);
        self.store_meta_at(&meta_path, meta)
    }

    fn store_meta_at(&self, path: &Path, meta: &Meta) -> io::Result<()> {
        let text = serde_json::to_vec_pretty(meta).map_err(io::Error::other)?;
        write_atomic(path, &text)
    }
}

fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, data)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_comes_back_for_its_source_only() {
        let dir = tempfile::tempdir().unwrap();
        let c = Cache::new(dir.path().join("feeds"));
        assert!(c.load("drop", "http://x/").is_none());
        let meta = Meta {
            source: "http://x/".into(),
            validators: Validators {
                etag: Some("\"v1\"".into()),
                last_modified: None,
            },
            fetched_us: 5,
            changed_us: 4,
        };
        c.store("drop", &meta, b"192.0.2.1\n").unwrap();
        assert_eq!(
            c.load("drop", "http://x/"),
            Some((meta.clone(), b"192.0.2.1\n".to_vec()))
        );
        assert!(c.load("drop", "http://y/").is_none());
        let later = Meta {
            fetched_us: 9,
            ..meta
        };
        c.store_meta("drop", &later).unwrap();
        assert_eq!(c.load("drop", "http://x/").unwrap().0.fetched_us, 9);
    }
}

//! Real journal files (made by `systemd-journal-remote`, so that the reader sees what it sees on
//! a host), the test filters and configs built on them.

use std::path::{Path, PathBuf};

use f2b::config::{self, LoadOptions, Settings};
use f2b::source::export::{write_journal, ExportEntry};

/// One second in µs, the journal's unit.
pub const S: u64 = 1_000_000;

/// The test filters (`testssh`, `testweb`, …): tests/fixtures/filters.
pub fn fixtures() -> PathBuf {
    super::repo().join("tests/fixtures/filters")
}

/// An entry of sshd.service at `t` (µs since the epoch).
pub fn ssh(t: u64, msg: &str) -> ExportEntry {
    ExportEntry::service(t, "sshd.service", "sshd", 4242, msg)
}

/// A failed sshd password login from `ip` (a `testssh` failure).
pub fn fail(t: u64, ip: &str) -> ExportEntry {
    ssh(
        t,
        &format!("Failed password for root from {ip} port 50000 ssh2"),
    )
}

/// An entry of web.service (the `testweb` filter's unit).
pub fn web(t: u64, msg: &str) -> ExportEntry {
    ExportEntry::service(t, "web.service", "web", 77, msg)
}

/// Appends `entries` to the journal file `dir/file` (created if needed).
pub fn append(dir: &Path, file: &str, entries: Vec<ExportEntry>) {
    write_journal(&dir.join(file), entries)
        .expect("systemd-journal-remote (package systemd-journal-remote) must be installed");
}

/// Settings from a config text, with the test filters only.
pub fn settings(text: &str) -> Settings {
    config::load_str("test.toml", text, &load_opts(None)).unwrap()
}

/// How the tests load configs: the test filters only, never the system's.
pub fn load_opts(config: Option<PathBuf>) -> LoadOptions {
    LoadOptions {
        config: config.unwrap_or_else(|| "/nonexistent/f2b-test.toml".into()),
        allow_missing: false,
        filter_dirs: vec![fixtures()],
        no_system_filters: true,
        ..Default::default()
    }
}

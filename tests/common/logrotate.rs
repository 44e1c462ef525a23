//! The real `logrotate`, run by hand on a test's log files.

use std::fs;
use std::path::Path;
use std::process::Command;

/// Writes `conf` (a logrotate configuration) to `DIR/logrotate-NAME.conf` and runs
/// `logrotate -f` on it with its state in `DIR/logrotate.state`; panics with logrotate's
/// output if it fails.
#[track_caller]
pub fn force(dir: &Path, name: &str, conf: &str) {
    let path = dir.join(format!("logrotate-{name}.conf"));
    fs::write(&path, conf).unwrap();
    let out = Command::new("logrotate")
        .arg("-f")
        .arg("-s")
        .arg(dir.join("logrotate.state"))
        .arg(&path)
        .output()
        .expect("run logrotate");
    assert!(out.status.success(), "logrotate {name}: {out:?}");
}

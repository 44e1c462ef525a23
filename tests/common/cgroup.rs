//! A cgroup subtree of a test, on the hierarchy journald reads a writer's unit from.
//!
//! journald derives `_SYSTEMD_UNIT`, `_SYSTEMD_SLICE`, `_SYSTEMD_USER_UNIT` … from the
//! writer's cgroup path, as seen from journald's own cgroup namespace: a process in
//! `ROOT/system.slice/ssh.service` is `ssh.service` to a journald whose cgroup-namespace root is
//! `ROOT`. [`Cgroup::new`] makes such a `ROOT` (an empty directory of its own); the private
//! journald ([`super::journald`]) takes it as its namespace root and the services of a test are
//! started in unit directories below it, so that journald sees them as on a host.
//!
//! The hierarchy is the one systemd (and so journald) takes a process's unit from: cgroup2 at
//! /sys/fs/cgroup (unified), cgroup2 at /sys/fs/cgroup/unified (hybrid), or the named v1
//! hierarchy at /sys/fs/cgroup/systemd (legacy). Nothing is enabled in the subtree (no
//! controllers, no limits). On drop, every process left in it is killed and its directories
//! are removed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::wait::poll_until;

/// The mount point of the hierarchy journald reads units from, if one is mounted.
pub fn systemd_hierarchy() -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    let fstype = |point: &str| {
        mounts.lines().find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 3 && f[1] == point).then(|| (f[2].to_string(), f[3].to_string()))
        })
    };
    let candidates = [
        ("/sys/fs/cgroup", "cgroup2"),
        ("/sys/fs/cgroup/unified", "cgroup2"),
        ("/sys/fs/cgroup/systemd", "cgroup"),
    ];
    candidates.into_iter().find_map(|(point, want)| {
        let (t, opts) = fstype(point)?;
        let named_systemd = want == "cgroup2" || opts.split(',').any(|o| o == "name=systemd");
        (t == want && named_systemd).then(|| PathBuf::from(point))
    })
}

/// An empty cgroup directory of this test, removed (with its processes killed) on drop.
pub struct Cgroup {
    root: PathBuf,
}

impl Cgroup {
    /// A new directory `f2b-test-PID-N` at the top of the hierarchy; panics if there is none.
    pub fn new() -> Cgroup {
        static N: AtomicU32 = AtomicU32::new(0);
        let top = systemd_hierarchy().expect("no cgroup hierarchy of systemd's is mounted");
        let root = top.join(format!(
            "f2b-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir(&root).unwrap_or_else(|e| panic!("mkdir {}: {e}", root.display()));
        Cgroup { root }
    }

    /// The root directory (the namespace root of the journald that uses it).
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// The directory `rel` below the root (e.g. `system.slice/ssh.service`), created if
    /// needed; `""` is the root.
    pub fn dir(&self, rel: &str) -> PathBuf {
        let d = self.root.join(rel);
        std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("mkdir {}: {e}", d.display()));
        d
    }

    /// The `cgroup.procs` file of [`Cgroup::dir`]`(rel)`: a process that writes its pid there
    /// moves into that cgroup.
    pub fn procs(&self, rel: &str) -> PathBuf {
        self.dir(rel).join("cgroup.procs")
    }

    /// The processes in the subtree.
    pub fn pids(&self) -> Vec<String> {
        dirs_depth_first(&self.root)
            .iter()
            .flat_map(|d| {
                std::fs::read_to_string(d.join("cgroup.procs"))
                    .unwrap_or_default()
                    .lines()
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

/// `dir` and every directory below it, the deepest first.
fn dirs_depth_first(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                out.extend(dirs_depth_first(&e.path()));
            }
        }
    }
    out.push(dir.to_path_buf());
    out
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        let kill = self.root.join("cgroup.kill");
        if kill.exists() {
            let _ = std::fs::write(&kill, "1");
        }
        let empty = poll_until(Duration::from_secs(5), || {
            let left = self.pids();
            if !left.is_empty() {
                let _ = Command::new("kill").arg("-KILL").args(&left).output();
            }
            left.is_empty()
        });
        for d in dirs_depth_first(&self.root) {
            if let Err(e) = std::fs::remove_dir(&d) {
                eprintln!(
                    "cannot remove the test cgroup {} (empty: {empty}): {e}",
                    d.display()
                );
            }
        }
    }
}

//! Preconditions: root, tools on PATH, the repository's own files.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;

/// The repository (the crate's manifest directory).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `chmod MODE PATH` (files and directories other users of a test must reach).
pub fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", p.display()));
}

/// Is this process root? Tests that need it print why they skip.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// `prog` found on PATH.
pub fn which(prog: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(prog))
            .find(|f| f.is_file())
    })
}

/// Is `tool` on PATH?
pub fn have(tool: &str) -> bool {
    which(tool).is_some()
}

/// True if we are root; otherwise prints why the test is skipped.
pub fn root_or_skip(test: &str) -> bool {
    if !is_root() {
        eprintln!("SKIP {test}: needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN for network namespaces)");
        return false;
    }
    true
}

/// Like `root_or_skip`, and also that `nft` and `ip` are installed and that network
/// namespaces can be made here.
pub fn root_and_tools_or_skip(test: &str) -> bool {
    if !root_or_skip(test) {
        return false;
    }
    for tool in ["nft", "ip"] {
        if Command::new(tool).arg("-V").output().is_err() {
            eprintln!("SKIP {test}: `{tool}` is not installed");
            return false;
        }
    }
    // Root without CAP_SYS_ADMIN (some containers) cannot create network namespaces.
    let probe = thread::spawn(|| {
        // SAFETY: unshare only affects this short-lived thread.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    });
    if let Err(e) = probe.join().expect("probe thread") {
        eprintln!("SKIP {test}: cannot create a network namespace: {e}");
        return false;
    }
    true
}

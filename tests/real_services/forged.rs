//! Issue 10.1 on a real journald: a local user forges a service's failure lines.
//!
//! User 65534 (nobody), in a session scope (`user.slice/user-65534.slice/session-1.scope`, as
//! pam_systemd places a login), writes sshd's failure lines naming a victim with
//! `logger -t sshd`, and the same with every other identifier of the services tested here. It
//! also sends a native journal entry that claims `_SYSTEMD_UNIT=ssh.service _UID=0
//! _COMM=sshd` itself. journald marks all of them with the user's uid and scope; no shipped
//! filter's journal matches accept any. The same lines written as root from inside
//! `ssh.service` are accepted by the sshd filter: the lab does make entries the filters take.

use std::time::Duration;

use f2b::filter::Field;

use crate::common::chmod;
use crate::common::journald::{Entry, Journald};
use crate::judge::filters_accepting;

const VICTIM: &str = "203.0.113.66";
const USER_SCOPE: &str = "user.slice/user-65534.slice/session-1.scope";
const NOBODY: u32 = 65534;

/// The identifiers the real services log with.
const IDENTIFIERS: &[&str] = &[
    "sshd",
    "sshd-session",
    "dropbear",
    "dovecot",
    "auth",
    "vsftpd",
    "nginx",
    "apache2",
    "apache2-access",
];

fn lines() -> Vec<String> {
    vec![
        format!("Failed password for root from {VICTIM} port 4000 ssh2"),
        format!("Invalid user admin from {VICTIM} port 4001"),
        format!(
            "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh \
             ruser= rhost={VICTIM}  user=root"
        ),
        format!("{VICTIM} - - [01/Jan/2025:00:00:00 +0000] \"GET /wp-login.php HTTP/1.1\" 404 1 \"-\" \"sqlmap\""),
    ]
}

/// Writes `lines` with `logger -t tag` in `cgroup` as `uid`, and returns their entries once
/// journald has them all (the writer is alive until then).
fn write(j: &mut Journald, cgroup: &str, uid: Option<u32>, tag: &str) -> Vec<Entry> {
    let lines = lines();
    let mut logger = j.logger(cgroup, uid, tag);
    logger.send(&lines);
    let got = j.collect(Duration::from_secs(10), |e| {
        lines
            .iter()
            .all(|l| e.iter().any(|e| e.ident == tag && &e.message == l))
    });
    logger.close();
    let got = got.unwrap_or_else(|e| panic!("{tag}: the lines were not journaled: {e:#?}"));
    got.into_iter().filter(|e| e.ident == tag).collect()
}

/// A native journal entry from user `NOBODY` in the session scope that sets trusted fields
/// itself (journald must drop them).
fn forge_native(j: &mut Journald) -> Vec<Entry> {
    let fields = format!(
        "MESSAGE=Failed password for root from {VICTIM} port 4100 ssh2\n\
         SYSLOG_IDENTIFIER=sshd\n_SYSTEMD_UNIT=ssh.service\n_UID=0\n_COMM=sshd\n\
         _EXE=/usr/sbin/sshd\n_SYSTEMD_SLICE=system.slice\n"
    );
    // Readable by the user.
    let dir = tempfile::tempdir().unwrap();
    chmod(dir.path(), 0o755);
    let file = dir.path().join("entry");
    std::fs::write(&file, fields).unwrap();
    chmod(&file, 0o644);
    let out = j
        .command(
            USER_SCOPE,
            "setpriv",
            &[
                format!("--reuid={NOBODY}"),
                format!("--regid={NOBODY}"),
                "--clear-groups".into(),
                "logger".into(),
                format!("--journald={}", file.display()),
            ],
        )
        .output()
        .unwrap();
    assert!(out.status.success(), "logger --journald: {out:?}");
    let got = j.collect(Duration::from_secs(10), |e| {
        e.iter().any(|e| e.message.contains("port 4100"))
    });
    got.unwrap_or_else(|e| panic!("the native entry was not journaled: {e:#?}"))
        .into_iter()
        .filter(|e| e.message.contains("port 4100"))
        .collect()
}

/// The test: see the module docs.
pub fn run() {
    let mut j = Journald::start();
    j.sync();
    let _ = j.read_new();
    let mut wrong = Vec::new();
    for tag in IDENTIFIERS {
        for e in write(&mut j, USER_SCOPE, Some(NOBODY), tag) {
            // As on a host: the user's uid and session scope.
            let (uid, unit) = (e.text(Field::Uid), e.unit());
            if uid.as_deref() != Some("65534") || unit.as_deref() != Some("session-1.scope") {
                wrong.push(format!(
                    "{tag}: {:?} not marked as the user's: {}",
                    e.message,
                    e.trusted()
                ));
            }
            let taken = filters_accepting(&e);
            if !taken.is_empty() {
                wrong.push(format!(
                    "forged {tag} line {:?} ({}) is taken by {taken:?}",
                    e.message,
                    e.trusted()
                ));
            }
        }
    }
    for e in forge_native(&mut j) {
        if e.text(Field::Uid).as_deref() != Some("65534") {
            wrong.push(format!("journald kept a forged _UID: {}", e.trusted()));
        }
        let taken = filters_accepting(&e);
        if !taken.is_empty() {
            wrong.push(format!(
                "forged native entry ({}) is taken by {taken:?}",
                e.trusted()
            ));
        }
    }
    // The control: the same lines from root inside ssh.service are sshd's.
    for e in write(&mut j, "system.slice/ssh.service", None, "sshd") {
        if !filters_accepting(&e).iter().any(|f| f == "sshd") {
            wrong.push(format!(
                "control: {:?} from ssh.service ({}) is not taken by sshd",
                e.message,
                e.trusted()
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

//! Issue 10.1: jails accept journal entries only on fields journald sets itself. A local user
//! who writes `logger -t sshd "Failed password for root from VICTIM …"` must not get VICTIM
//! banned; sshd's own entries still ban.

mod common;

use std::time::Duration;

use common::*;
use f2b::source::export::ExportEntry;
use f2b::source::StartAt;

const VICTIM: &str = "203.0.113.66";
const ATTACKER: &str = "198.51.100.7";

fn forged_line() -> String {
    format!("Failed password for root from {VICTIM} port 4000 ssh2")
}

#[tokio::test]
async fn forged_sshd_identifier_from_a_user_bans_nobody() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = f2b::engine::now_us() - 60 * S;
    let mut entries = Vec::new();
    let mut t = t0;
    let mut next = || {
        t += 1_000;
        t
    };
    for _ in 0..6 {
        // From a user unit, from a session scope, and with no unit at all.
        entries.push(ExportEntry::forged(
            next(),
            1000,
            Some("evil.service"),
            "sshd",
            &forged_line(),
        ));
        entries.push(
            ExportEntry::forged(next(), 1000, None, "sshd", &forged_line())
                .field("_SYSTEMD_UNIT", "session-4.scope"),
        );
        entries.push(ExportEntry::forged(
            next(),
            1000,
            None,
            "sshd",
            &forged_line(),
        ));
        // A user process renamed to "sshd" (prctl PR_SET_NAME), inside sshd's own unit (a
        // session left in the unit's cgroup when pam_systemd is not used).
        entries.push(
            ExportEntry::service(next(), "ssh.service", "sshd", 999, &forged_line())
                .set("_UID", Some("1000")),
        );
        // sshd-session forged over stdout of a user unit.
        entries.push(
            ExportEntry::forged(
                next(),
                1000,
                Some("x.service"),
                "sshd-session",
                &forged_line(),
            )
            .set("_TRANSPORT", Some("stdout")),
        );
    }
    // The real sshd (root, in its unit) logs a real attacker.
    for i in 0..5 {
        entries.push(ExportEntry::service(
            next(),
            "ssh.service",
            "sshd",
            4000 + i,
            &format!("Failed password for root from {ATTACKER} port 4000 ssh2"),
        ));
    }
    append(dir.path(), "a.journal", entries);
    let settings = settings(
        r#"
[jail.sshd]
enabled = true
maxretry = 5
findtime = "1h"
"#,
    );
    let mut r = start(settings, dir.path(), StartAt::Head, false);
    let bans = r.bans_until_quiet(Duration::from_secs(3)).await;
    assert_eq!(bans, vec![("sshd".to_string(), ATTACKER.to_string())]);
    let _ = r.task.await;
}

#[tokio::test]
async fn sshd_in_a_socket_activated_per_connection_unit_still_bans() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = f2b::engine::now_us() - 60 * S;
    let entries = (0..5u32)
        .map(|i| {
            // Debian's ssh.socket (Accept=yes): one unit per connection, sshd running as root.
            let unit = format!("ssh@{i}-192.0.2.1:22-{ATTACKER}:{}.service", 40000 + i);
            ExportEntry::service(
                t0 + u64::from(i) * 1_000,
                &unit,
                "sshd",
                5000 + i,
                &format!(
                    "Failed password for root from {ATTACKER} port {} ssh2",
                    40000 + i
                ),
            )
        })
        .collect();
    append(dir.path(), "a.journal", entries);
    let settings = settings("[jail.sshd]\nenabled = true\nmaxretry = 5\nfindtime = \"1h\"\n");
    let mut r = start(settings, dir.path(), StartAt::Head, false);
    let bans = r.bans_until_quiet(Duration::from_secs(3)).await;
    assert_eq!(bans, vec![("sshd".to_string(), ATTACKER.to_string())]);
    let _ = r.task.await;
}

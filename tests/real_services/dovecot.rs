//! Dovecot IMAP (filter `dovecot`: modes normal, aggressive), attacked over IMAP.

use std::os::unix::fs::PermissionsExt;

use crate::clients::{server, Act};
use crate::common::journald::{Entry, Service};
use crate::common::Pair;
use crate::judge::{Want, NONE};
use crate::{Attack, Done, Lab, ServiceTest};

pub const DOVECOT: ServiceTest = ServiceTest {
    name: "dovecot",
    unit: "dovecot.service",
    needs: &["/usr/sbin/dovecot", "/usr/lib/dovecot/imap-login"],
    filters: &["dovecot"],
    ports: &[143],
    start,
    // Its processes live on; a connection's last line is imap-login's (or imap's)
    // "Disconnected: …".
    done: Done::EachConnectionEndsWith(disconnected),
    unlisted: Want::Any,
    attacks,
};

fn disconnected(e: &Entry) -> bool {
    e.message.contains(": Disconnected")
}

fn start(lab: &Lab) -> Service {
    for sub in ["run", "state", "home"] {
        std::fs::create_dir_all(lab.path(sub)).unwrap();
    }
    std::fs::set_permissions(lab.path("home"), std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::write(lab.path("passwd"), "alice:{PLAIN}secret123::::::\n").unwrap();
    let conf = lab.path("dovecot.conf");
    // Dovecot slows down failed logins (auth_failure_delay, and the anvil penalty that grows
    // per address up to 15 s): both off, the lines it logs stay the same.
    std::fs::write(
        &conf,
        format!(
            "protocols = imap\nlisten = {}, {}\nbase_dir = {p}/run\nstate_dir = {p}/state\n\
             ssl = no\ndisable_plaintext_auth = no\nauth_mechanisms = plain login\n\
             auth_verbose = yes\nlog_path = syslog\nsyslog_facility = mail\n\
             auth_failure_delay = 0\n\
             service anvil {{\n  unix_listener anvil-auth-penalty {{\n    mode = 0\n  }}\n}}\n\
             passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN {p}/passwd\n}}\n\
             userdb {{\n  driver = static\n  args = uid=nobody gid=nogroup home={p}/home/%u\n}}\n\
             mail_location = maildir:~/Maildir\n",
            Pair::SRV4,
            Pair::SRV6,
            p = lab.dir().display()
        ),
    )
    .unwrap();
    lab.start(
        "/usr/sbin/dovecot",
        &["-F".into(), "-c".into(), conf.display().to_string()],
    )
}

fn attacks(_: &Lab) -> Vec<Attack> {
    let (srv4, srv6) = server(143);
    let login = |to, user, passwords, answer| Act::Imap {
        to,
        user,
        passwords,
        answer,
    };
    // One failure per connection in normal mode, at least one in aggressive mode.
    let failed = [
        ("normal", Want::Exactly(1)),
        ("aggressive", Want::AtLeast(1)),
    ];
    vec![
        Attack::new(
            "successful IMAP login",
            Pair::ATK4,
            login(srv4, "alice", &["secret123"], " OK "),
            &[("normal", NONE), ("aggressive", NONE)],
        ),
        Attack::new(
            "wrong password",
            Pair::ATK4,
            login(srv4, "alice", &["nope"], " NO "),
            &failed,
        ),
        Attack::new(
            "unknown user",
            Pair::ATK4,
            login(srv4, "nosuch", &["nope"], " NO "),
            &failed,
        ),
        Attack::new(
            "wrong password over IPv6",
            Pair::ATK6,
            login(srv6, "alice", &["nope"], " NO "),
            &failed,
        ),
        Attack::new(
            "three wrong passwords on one connection",
            Pair::ATK4,
            login(srv4, "alice", &["a", "b", "c"], " NO "),
            &failed,
        ),
        Attack::new(
            "user name with an injected address",
            Pair::ATK4,
            login(
                srv4,
                "x>, method=PLAIN, rip=10.9.8.7, lip=10.9.8.6, y",
                &["nope"],
                " NO ",
            ),
            &failed,
        ),
    ]
}

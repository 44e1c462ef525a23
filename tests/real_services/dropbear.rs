//! Dropbear (filter `dropbear`, one mode), attacked with the OpenSSH client.

use std::process::Command;

use crate::clients::Act;
use crate::common::journald::Service;
use crate::common::Pair;
use crate::judge::Want;
use crate::{Attack, Done, Lab, ServiceTest};

pub const DROPBEAR: ServiceTest = ServiceTest {
    name: "dropbear",
    unit: "dropbear.service",
    needs: &[
        "/usr/sbin/dropbear",
        "/usr/bin/dropbearkey",
        "/usr/bin/ssh",
        "/usr/bin/sshpass",
    ],
    filters: &["dropbear"],
    ports: &[22],
    start,
    done: Done::SessionsExited,
    unlisted: Want::Any,
    attacks,
};

fn start(lab: &Lab) -> Service {
    let out = Command::new("dropbearkey")
        .args(["-t", "ed25519", "-f"])
        .arg(lab.path("hostkey"))
        .output()
        .expect("dropbearkey");
    assert!(out.status.success(), "dropbearkey: {out:?}");
    lab.start(
        "/usr/sbin/dropbear",
        &[
            "-F".into(),
            "-p".into(),
            format!("{}:22", Pair::SRV4),
            "-p".into(),
            format!("[{}]:22", Pair::SRV6),
            "-r".into(),
            lab.path("hostkey").display().to_string(),
        ],
    )
}

/// One wrong password for `user` (sshpass answers the first prompt only).
fn wrong_password(user: &str, host: &str) -> Act {
    Act::Ssh {
        args: vec![
            "-o".into(),
            "PreferredAuthentications=password".into(),
            "-o".into(),
            "NumberOfPasswordPrompts=1".into(),
            format!("{user}@{host}"),
            "true".into(),
        ],
        password: Some("wrong-password"),
        login: false,
    }
}

fn attacks(_: &Lab) -> Vec<Attack> {
    let one = [("normal", Want::AtLeast(1))];
    vec![
        Attack::new(
            "wrong password",
            Pair::ATK4,
            wrong_password("root", Pair::SRV4),
            &one,
        ),
        Attack::new(
            "unknown user over IPv6 (address from the session's _PID)",
            Pair::ATK6,
            wrong_password("nosuchuser", Pair::SRV6),
            &one,
        ),
        Attack::new(
            "user name with an address",
            Pair::ATK4,
            wrong_password("x from 10.9.8.7:22", Pair::SRV4),
            &one,
        ),
    ]
}

//! OpenSSH's sshd (filter `sshd`: modes normal, ddos, extra, aggressive), with PAM, attacked with the
//! OpenSSH client and raw TCP probes.

use std::process::Command;

use crate::clients::{server, Act, Probe};
use crate::common::journald::Service;
use crate::common::Pair;
use crate::judge::{Want, NONE};
use crate::{Attack, Done, Lab, ServiceTest};

const ATK4: &str = Pair::ATK4;
const ATK6: &str = Pair::ATK6;

pub const SSHD: ServiceTest = ServiceTest {
    name: "sshd",
    unit: "ssh.service",
    needs: &[
        "/usr/sbin/sshd",
        "/usr/bin/ssh",
        "/usr/bin/ssh-keygen",
        "/usr/bin/sshpass",
    ],
    filters: &["sshd"],
    ports: &[22],
    start,
    done: Done::SessionsExited,
    unlisted: Want::Any,
    attacks,
};

fn start(lab: &Lab) -> Service {
    for k in ["hostkey", "goodkey", "badkey", "k1", "k2", "k3", "k4"] {
        let out = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(lab.path(k))
            .output()
            .expect("ssh-keygen");
        assert!(out.status.success(), "ssh-keygen: {out:?}");
    }
    std::fs::copy(lab.path("goodkey.pub"), lab.path("authorized_keys")).unwrap();
    let config = lab.path("sshd_config");
    std::fs::write(
        &config,
        format!(
            "Port 22\nListenAddress {}\nListenAddress {}\nHostKey {}\nPidFile none\n\
             LogLevel VERBOSE\nUsePAM yes\nPermitRootLogin yes\nPasswordAuthentication yes\n\
             KbdInteractiveAuthentication yes\nAuthorizedKeysFile {}\nStrictModes no\n\
             MaxAuthTries 3\nDenyUsers nobody\nLoginGraceTime 20\n",
            Pair::SRV4,
            Pair::SRV6,
            lab.path("hostkey").display(),
            lab.path("authorized_keys").display(),
        ),
    )
    .unwrap();
    std::fs::create_dir_all("/run/sshd").unwrap();
    lab.pam_without_delay();
    lab.start(
        "/usr/sbin/sshd",
        &["-D".into(), "-f".into(), config.display().to_string()],
    )
}

/// ssh with these options and `user@host true`.
fn ssh(opts: &[&str], user: &str, host: &str) -> Vec<String> {
    opts.iter()
        .map(|s| s.to_string())
        .chain([format!("{user}@{host}"), "true".into()])
        .collect()
}

/// One wrong password (sshpass answers the first prompt only) with this method.
fn password(user: &str, host: &str, method: &str, extra: &[&str]) -> Act {
    let mut opts = vec![
        "-o".to_string(),
        format!("PreferredAuthentications={method}"),
        "-o".into(),
        "NumberOfPasswordPrompts=1".into(),
    ];
    opts.extend(extra.iter().map(|s| s.to_string()));
    let opts: Vec<&str> = opts.iter().map(String::as_str).collect();
    Act::Ssh {
        args: ssh(&opts, user, host),
        password: Some("wrong-password"),
        login: false,
    }
}

/// Public keys only, these key files, to the server's IPv4 address.
fn keys(lab: &Lab, files: &[&str], user: &str, login: bool) -> Act {
    keys_to(lab, files, user, Pair::SRV4, login)
}

fn keys_to(lab: &Lab, files: &[&str], user: &str, host: &str, login: bool) -> Act {
    let mut opts = vec!["-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes"];
    let paths: Vec<String> = files
        .iter()
        .map(|k| lab.path(k).display().to_string())
        .collect();
    for p in &paths {
        opts.extend(["-i", p.as_str()]);
    }
    Act::Ssh {
        args: ssh(&opts, user, host),
        password: None,
        login,
    }
}

fn attacks(lab: &Lab) -> Vec<Attack> {
    use Want::{AtLeast, Exactly};
    let all_none = [
        ("normal", NONE),
        ("ddos", NONE),
        ("extra", NONE),
        ("aggressive", NONE),
    ];
    // One connection with one failed attempt counts once, whatever the user name (the
    // "Invalid user" line and the "Failed password for invalid user" line are one attempt).
    let once = [
        ("normal", Exactly(1)),
        ("ddos", Exactly(1)),
        ("extra", AtLeast(1)),
        ("aggressive", AtLeast(1)),
    ];
    let (srv, _) = server(22);
    let probe = |probe| Act::Probe { to: srv, probe };
    let probed = [
        ("ddos", AtLeast(1)),
        ("aggressive", AtLeast(1)),
        ("normal", NONE),
    ];
    vec![
        // A successful login: nothing, in any mode.
        Attack::new(
            "successful login (key)",
            ATK4,
            keys(lab, &["goodkey"], "root", true),
            &all_none,
        ),
        Attack::new(
            "successful login over IPv6",
            ATK6,
            keys_to(lab, &["goodkey"], "root", Pair::SRV6, true),
            &all_none,
        ),
        Attack::new(
            "wrong password",
            ATK4,
            password("root", Pair::SRV4, "password", &[]),
            &once,
        ),
        // The address is per line, not per run.
        Attack::new(
            "wrong password from a second address",
            Pair::ATK4_B,
            password("root", Pair::SRV4, "password", &["-b", Pair::ATK4_B]),
            &once,
        ),
        Attack::new(
            "wrong password over IPv6",
            ATK6,
            password("root", Pair::SRV6, "password", &[]),
            &once,
        ),
        // "Invalid user" + "Failed password for invalid user": one attempt.
        Attack::new(
            "invalid user",
            ATK4,
            password("admin", Pair::SRV4, "password", &[]),
            &once,
        ),
        Attack::new(
            "invalid user with an address in its name",
            ATK4,
            password("x from 10.9.8.7 port 22", Pair::SRV4, "password", &[]),
            &once,
        ),
        Attack::new(
            "keyboard-interactive/pam",
            ATK4,
            password("root", Pair::SRV4, "keyboard-interactive", &[]),
            &once,
        ),
        Attack::new(
            "keyboard-interactive/pam, invalid user",
            ATK4,
            password("oracle", Pair::SRV4, "keyboard-interactive", &[]),
            &once,
        ),
        // MaxAuthTries (3) exceeded: four wrong keys on one connection: "maximum
        // authentication attempts exceeded" + "Disconnecting … Too many authentication
        // failures".
        Attack::new(
            "maximum authentication attempts",
            ATK4,
            keys(lab, &["k1", "k2", "k3", "k4"], "root", false),
            &[
                // Failed keys of a valid user count in aggressive only; normal counts the
                // session once.
                ("normal", Exactly(1)),
                ("ddos", Exactly(1)),
                ("aggressive", AtLeast(2)),
            ],
        )
        .logged("Disconnecting authenticating user root "),
        Attack::new(
            "maximum authentication attempts, invalid user",
            ATK4,
            keys(lab, &["k1", "k2", "k3", "k4"], "guest", false),
            &once,
        )
        .logged("Disconnecting invalid user guest "),
        Attack::new(
            "DenyUsers",
            ATK4,
            password("nobody", Pair::SRV4, "password", &[]),
            &once,
        ),
        // A wrong key for a valid user: aggressive only (a client may offer several keys).
        Attack::new(
            "wrong key",
            ATK4,
            keys(lab, &["badkey"], "root", false),
            // ddos counts the session closed during authentication.
            &[
                ("aggressive", AtLeast(1)),
                ("normal", NONE),
                ("ddos", Exactly(1)),
            ],
        ),
        // A wrong key for an invalid user: "Invalid user" counts.
        Attack::new(
            "wrong key, invalid user",
            ATK4,
            keys(lab, &["badkey"], "guest", false),
            &once,
        ),
        // Probes: ddos and aggressive, never normal.
        Attack::new(
            "HTTP request to the SSH port",
            ATK4,
            probe(Probe::HttpRequest),
            &probed,
        ),
        Attack::new(
            "connect and close",
            ATK4,
            probe(Probe::ConnectAndClose),
            &probed,
        ),
        Attack::new(
            "valid banner, then a garbage packet",
            ATK4,
            probe(Probe::BannerThenGarbage),
            &probed,
        ),
        Attack::new(
            "obsolete key exchange",
            ATK4,
            Act::Ssh {
                args: ssh(
                    &["-o", "KexAlgorithms=diffie-hellman-group1-sha1"],
                    "root",
                    Pair::SRV4,
                ),
                password: None,
                login: false,
            },
            // A client that cannot agree on algorithms: extra and aggressive.
            &[
                ("extra", AtLeast(1)),
                ("aggressive", AtLeast(1)),
                ("normal", NONE),
                ("ddos", NONE),
            ],
        ),
    ]
}

//! vsftpd with PAM (filter `vsftpd`: modes normal, syslog), attacked over FTP.

use std::os::unix::fs::PermissionsExt;

use crate::clients::{server, Act};
use crate::common::journald::Service;
use crate::common::Pair;
use crate::judge::{Want, NONE};
use crate::{Attack, Done, Lab, ServiceTest};

pub const VSFTPD: ServiceTest = ServiceTest {
    name: "vsftpd",
    unit: "vsftpd.service",
    needs: &["/usr/sbin/vsftpd", "/etc/pam.d/vsftpd"],
    filters: &["vsftpd"],
    ports: &[21],
    start,
    done: Done::SessionsExited,
    unlisted: Want::Any,
    attacks,
};

fn start(lab: &Lab) -> Service {
    for sub in ["empty", "anon"] {
        std::fs::create_dir_all(lab.path(sub)).unwrap();
        std::fs::set_permissions(lab.path(sub), std::fs::Permissions::from_mode(0o555)).unwrap();
    }
    // No pause after a failed login (PAM's nor vsftpd's own): the lines stay the same.
    lab.pam_without_delay();
    let conf = lab.path("vsftpd.conf");
    std::fs::write(
        &conf,
        format!(
            "listen=NO\nlisten_ipv6=YES\nbackground=NO\nsyslog_enable=YES\n\
             anonymous_enable=YES\nno_anon_password=YES\nanon_root={p}/anon\n\
             local_enable=YES\npam_service_name=vsftpd\nsecure_chroot_dir={p}/empty\n\
             seccomp_sandbox=NO\ndelay_failed_login=0\n",
            p = lab.dir().display()
        ),
    )
    .unwrap();
    lab.start("/usr/sbin/vsftpd", &[conf.display().to_string()])
}

fn attacks(_: &Lab) -> Vec<Attack> {
    let (srv4, srv6) = server(21);
    let wrong = |to, user| Act::Ftp {
        to,
        user,
        pass: "wrong-password",
        reply: "530",
    };
    // PAM's line and vsftpd's own.
    let pam_and_own = [("normal", Want::AtLeast(1)), ("syslog", Want::AtLeast(1))];
    vec![
        Attack::new(
            "successful anonymous login",
            Pair::ATK4,
            Act::Ftp {
                to: srv4,
                user: "anonymous",
                pass: "",
                reply: "230",
            },
            &[("normal", NONE), ("syslog", NONE)],
        ),
        Attack::new(
            "wrong password for an existing user",
            Pair::ATK4,
            wrong(srv4, "nobody"),
            &pam_and_own,
        ),
        Attack::new(
            "unknown user",
            Pair::ATK4,
            wrong(srv4, "nosuchuser"),
            &pam_and_own,
        ),
        Attack::new(
            "unknown user over IPv6",
            Pair::ATK6,
            wrong(srv6, "admin"),
            &pam_and_own,
        ),
        // vsftpd does not even ask PAM for such a name: only its own line.
        Attack::new(
            "user name with an injected address",
            Pair::ATK4,
            wrong(srv4, "a\" from 10.9.8.7] FAIL LOGIN: Client \"10.9.8.7"),
            &[("syslog", Want::AtLeast(1))],
        ),
    ]
}

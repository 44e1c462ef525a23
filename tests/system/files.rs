//! Issue 13 on the booted container of `container.rs`: the installed, hardened f2b.service
//! follows a log file in /var/log that only its owner and the group adm may read, as Debian
//! gives auth.log and the web servers' logs (f2bd is root without CAP_DAC_OVERRIDE and reads it
//! as a member of adm, `SupplementaryGroups=adm`). Three failures appended to it ban the client
//! they name: its connects to the container's sshd fail, until the jail is removed again.

use std::time::{Duration, Instant};

use crate::common::wait::poll_until;
use crate::container::{connects, step, Container, CLIENT, SRV_B};

const LOG: &str = "/var/log/f2b-test/auth.log";

/// `f2b status sshd-file` has the row of LOG with `state lines failures`.
fn row(c: &Container, want: &str) -> bool {
    let status = c.sh_text("f2b status sshd-file");
    status.lines().any(|l| {
        let cols: Vec<&str> = l.split_whitespace().collect();
        cols.first() == Some(&LOG) && cols[1..].join(" ") == want
    })
}

pub(crate) fn file_jail_bans(c: &Container, t0: Instant) {
    let ok = &c.netns[2];
    c.wait_for(
        "systemctl is-active -q f2b",
        20,
        "f2b.service is not active",
    );
    assert!(
        connects(ok, SRV_B),
        "the client cannot connect before the test"
    );
    c.ok(&format!(
        "install -d -m 0755 /var/log/f2b-test && \
         install -m 0640 -o nobody -g adm /dev/null {LOG}"
    ));
    c.ok(&format!(
        "printf '[jail.sshd-file]\\nenabled = true\\nfilter = \"sshd\"\\nsource = \"file\"\\n\
         logpath = [\"{LOG}\"]\\nmaxretry = 3\\nports = [22]\\n' \
         > /etc/f2b/jail.d/60-file.toml && systemctl reload f2b"
    ));
    assert!(
        poll_until(Duration::from_secs(10), || row(c, "following 0 0")),
        "{}",
        c.sh_text("f2b status sshd-file; journalctl -u f2b -o cat --no-pager -n 20")
    );
    c.ok(&format!(
        "for i in 1 2 3; do echo \"$(date '+%b %e %H:%M:%S') web1 sshd[$((4000 + i))]: \
         Failed password for root from {CLIENT} port $((50000 + i)) ssh2\" >> {LOG}; done"
    ));
    assert!(
        poll_until(Duration::from_secs(10), || !connects(ok, SRV_B)),
        "three failures in {LOG} did not ban {CLIENT}:\n{}",
        c.sh_text("f2b status sshd-file; journalctl -u f2b -o cat --no-pager -n 20")
    );
    assert!(
        poll_until(Duration::from_secs(5), || row(c, "following 3 3")),
        "{}",
        c.sh_text("f2b status sshd-file")
    );
    step("a file jail on /var/log (nobody:adm 0640) banned", t0);
    c.ok("rm /etc/f2b/jail.d/60-file.toml && systemctl reload f2b && rm -r /var/log/f2b-test");
    assert!(
        connects(ok, SRV_B),
        "the ban of a removed jail is still enforced"
    );
}

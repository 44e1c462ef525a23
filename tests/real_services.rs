//! Real-service tests: real daemons in a network namespace, real failed logins from an
//! "attacker" namespace, a real journald in between; the shipped filters must report exactly
//! the attacker's address for every failure kind and nothing for a successful login.
//!
//! Debian packages these tests need (CI installs them, see packaging/build-deps.sh):
//!   systemd iproute2 util-linux openssh-server openssh-client sshpass dovecot-imapd vsftpd
//!   nginx apache2 apache2-utils dropbear-bin
//!
//! The tests need root (network namespaces, mounts). Without root they print why and pass.
//! Without the packages they print why and pass, unless F2B_REQUIRE_REAL_SERVICES=1 is set
//! (then a missing package is a failure). F2B_TEST_VERBOSE=1 prints every journal line.
//!
//! Table-driven: each service is described once (tests/real_services/*.rs: how to start it,
//! its unit, the attacks, what each filter mode must find) and [`run`] executes the
//! description in a [`Lab`]: the server and attacker namespaces of [`Pair`] and a private
//! journald ([`Journald`]) that the service logs to as its systemd unit (it runs in the cgroup
//! `system.slice/UNIT` of journald's cgroup namespace, so that journald sets `_SYSTEMD_UNIT`,
//! `_UID`, `_COMM`, `_EXE` … as on a host). Every attack is three steps: act (the attacker's
//! client, which also checks the service's answer), wait (until the service has logged all of
//! the attempt: [`Done`]), judge (each entry routed by the filters' own trusted journal
//! matches, then the filters on the attempt's journal lines: [`judge`]). All steps run; a
//! failed one is reported with its service, step and journal lines at the end.
//!
//! [`forged_sshd_lines_from_a_user_session_reach_no_filter`]: a local user's
//! `logger -t sshd "Failed password … from VICTIM …"` in a session scope of the same journald
//! is accepted by no shipped filter (issue 10.1).

mod common;

#[path = "real_services/apache.rs"]
mod apache;
#[path = "real_services/clients.rs"]
mod clients;
#[path = "real_services/dovecot.rs"]
mod dovecot;
#[path = "real_services/dropbear.rs"]
mod dropbear;
#[path = "real_services/forged.rs"]
mod forged;
#[path = "real_services/judge.rs"]
mod judge;
#[path = "real_services/nginx.rs"]
mod nginx;
#[path = "real_services/sshd.rs"]
mod sshd;
#[path = "real_services/vsftpd.rs"]
mod vsftpd;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clients::Act;
use common::journald::{self, Entry, Journald, Service};
use common::wait::poll_until;
use common::{is_root, Pair};
use judge::{Judges, Want};

/// One real service under test.
pub struct ServiceTest {
    pub name: &'static str,
    /// The systemd unit it runs as on a host (the cgroup the lab starts it in).
    pub unit: &'static str,
    /// Files that must exist (the service's programs and the attacker's clients).
    pub needs: &'static [&'static str],
    /// The shipped filters that judge its lines; each line it logs must reach one of them.
    pub filters: &'static [&'static str],
    /// TCP ports it listens on once started.
    pub ports: &'static [u16],
    /// Writes its configuration into the lab's directory and starts it.
    pub start: fn(&Lab) -> Service,
    /// When an attempt is completely logged.
    pub done: Done,
    /// What filter modes an attack does not list must find.
    pub unlisted: Want,
    /// The attacks, in order.
    pub attacks: fn(&Lab) -> Vec<Attack>,
}

/// How to tell that the service has logged all of an attempt.
pub enum Done {
    /// Per-connection processes log (sshd, dropbear, vsftpd): one of them logged, and every
    /// process that logged, the listener aside, has exited.
    SessionsExited,
    /// Long-lived workers log: each connection ends with one entry for which this holds.
    EachConnectionEndsWith(fn(&Entry) -> bool),
}

/// One attempt from the attacker and what the filters must make of it.
pub struct Attack {
    pub what: &'static str,
    /// The address every failure must carry.
    pub from: &'static str,
    pub act: Act,
    /// Failures per filter mode ("mode", or "filter/mode" for services with several filters).
    pub want: Vec<(&'static str, Want)>,
    /// A line that must be logged (the start of its message).
    pub logged: Option<&'static str>,
}

impl Attack {
    pub fn new(
        what: &'static str,
        from: &'static str,
        act: Act,
        want: &[(&'static str, Want)],
    ) -> Attack {
        Attack {
            what,
            from,
            act,
            want: want.to_vec(),
            logged: None,
        }
    }

    pub fn logged(mut self, message_start: &'static str) -> Attack {
        self.logged = Some(message_start);
        self
    }
}

/// Where a service test runs: the namespaces, the journald, a directory for configs.
pub struct Lab {
    pub net: Pair,
    pub journald: Journald,
    /// The unit the service runs as.
    unit: &'static str,
    dir: tempfile::TempDir,
}

impl Lab {
    fn new(unit: &'static str) -> Lab {
        let dir = tempfile::tempdir().unwrap();
        // The services' unprivileged processes read their files here.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        Lab {
            net: Pair::new(),
            journald: Journald::start(),
            unit,
            dir,
        }
    }

    /// A path in the lab's directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// PAM for the lab's services without pam_unix's delay of about 2 s after a failed
    /// password (`nodelay`); the lines it logs stay the same.
    pub fn pam_without_delay(&self) {
        let common = std::fs::read_to_string("/etc/pam.d/common-auth").unwrap();
        let fast: String = common
            .lines()
            .map(|l| {
                if !l.trim_start().starts_with('#') && l.contains("pam_unix.so") {
                    format!("{l} nodelay\n")
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        assert!(
            fast.contains("nodelay"),
            "no pam_unix in /etc/pam.d/common-auth"
        );
        std::fs::write(self.path("common-auth"), fast).unwrap();
        self.journald
            .bind(&self.path("common-auth"), "/etc/pam.d/common-auth");
    }

    /// Starts a service program as the lab's unit in the server namespace, logging to the
    /// lab's journald; its stdout and stderr go to the file "output" in the lab's directory.
    pub fn start(&self, prog: &str, args: &[String]) -> Service {
        self.journald
            .start_service(&self.net.srv, self.unit, prog, args, &self.path("output"))
    }
}

/// `Some(reason)` when the test cannot run here.
fn missing(needs: &[&str]) -> Option<String> {
    if !is_root() {
        return Some("needs root (network namespaces, mounts)".into());
    }
    let absent: Vec<&str> = needs
        .iter()
        .chain(&["/usr/sbin/ip"])
        .copied()
        .filter(|b| !Path::new(b).exists())
        .collect();
    let msg = match journald::unavailable() {
        Some(why) => why,
        None if absent.is_empty() => return None,
        None => format!("missing {}", absent.join(", ")),
    };
    if std::env::var("F2B_REQUIRE_REAL_SERVICES").as_deref() == Ok("1") {
        panic!("{msg} (F2B_REQUIRE_REAL_SERVICES=1)");
    }
    Some(msg)
}

/// Runs a service's description: start, then act → wait → judge for each attack.
fn run(t: &ServiceTest) {
    if let Some(why) = missing(t.needs) {
        eprintln!("SKIP {}: {why}", t.name);
        return;
    }
    let t_lab = Instant::now();
    let mut lab = Lab::new(t.unit);
    let t_start = Instant::now();
    let service = (t.start)(&lab);
    for &port in t.ports {
        if !poll_until(Duration::from_secs(15), || lab.net.srv.listening(port)) {
            panic!(
                "{} does not listen on port {port}; its output:\n{}",
                t.name,
                std::fs::read_to_string(lab.path("output")).unwrap_or_default()
            );
        }
    }
    // Its start-up lines.
    lab.journald.sync();
    let _ = lab.journald.read_new();
    eprintln!(
        "[{}] lab {:.2} s, service started and listening {:.2} s",
        t.name,
        (t_start - t_lab).as_secs_f64(),
        t_start.elapsed().as_secs_f64()
    );
    let t_judges = Instant::now();
    let mut judges = Judges::new(t.filters);
    eprintln!(
        "[{}] filters loaded in {:.2} s",
        t.name,
        t_judges.elapsed().as_secs_f64()
    );
    let attacks = (t.attacks)(&lab);
    let mut failed = Vec::new();
    for (i, a) in attacks.iter().enumerate() {
        let step = format!("[{} {}/{}] {}", t.name, i + 1, attacks.len(), a.what);
        let t0 = Instant::now();
        let acted = a.act.run(&lab.net);
        let t1 = Instant::now();
        let connections = *acted.as_ref().unwrap_or(&1);
        let logged = lab.journald.collect(Duration::from_secs(30), |e| {
            t.done.holds(e, connections, service.pid())
        });
        let t2 = Instant::now();
        let times = format!(
            "act {:.2} s, wait {:.2} s",
            (t1 - t0).as_secs_f64(),
            (t2 - t1).as_secs_f64()
        );
        let entries = match &logged {
            Ok(e) | Err(e) => e,
        };
        if std::env::var_os("F2B_TEST_VERBOSE").is_some() {
            for e in entries {
                eprintln!("  journal {e}");
            }
        }
        let report = |phase: &str, why: &str| {
            format!(
                "{step}: {phase}: {why}\n  journal lines of this step:\n{}",
                dump(entries)
            )
        };
        if let Err(why) = &acted {
            failed.push(report("act", why));
        }
        if logged.is_err() {
            failed.push(report(
                "wait",
                "the attempt was not completely logged within 30 s",
            ));
            continue;
        }
        match judges.judge(a, entries, t.unit, t.unlisted) {
            Ok(summary) => eprintln!("{step}: {times}: {summary}"),
            Err(why) => failed.push(report("judge", &why)),
        }
    }
    // The lab works as a host does: journald saw the service as its unit.
    if judges.as_unit == 0 {
        failed.push(format!("no entry of {} was logged as {}", t.name, t.unit));
    }
    let t_stop = Instant::now();
    drop(service);
    drop(lab);
    eprintln!(
        "[{}] stopped in {:.2} s",
        t.name,
        t_stop.elapsed().as_secs_f64()
    );
    assert!(
        failed.is_empty(),
        "{} of {} attacks on {} failed:\n\n{}",
        failed.len(),
        attacks.len(),
        t.name,
        failed.join("\n\n")
    );
}

impl Done {
    fn holds(&self, entries: &[Entry], connections: usize, listener: u32) -> bool {
        match self {
            Done::SessionsExited => {
                let mut sessions = entries
                    .iter()
                    .filter(|e| !e.is_journald())
                    .filter_map(|e| e.pid)
                    .filter(|p| *p != listener)
                    .peekable();
                sessions.peek().is_some() && sessions.all(|p| !journald::alive(p))
            }
            Done::EachConnectionEndsWith(end) => {
                entries.iter().filter(|e| end(e)).count() >= connections
            }
        }
    }
}

fn dump(entries: &[Entry]) -> String {
    if entries.is_empty() {
        return "    (none)".into();
    }
    entries
        .iter()
        .map(|e| format!("    {e}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn sshd_real_failures_are_detected_with_the_attackers_address() {
    run(&sshd::SSHD);
}

#[test]
fn dropbear_real_failures_are_detected_with_the_attackers_address() {
    run(&dropbear::DROPBEAR);
}

#[test]
fn dovecot_real_failures_are_detected_with_the_attackers_address() {
    run(&dovecot::DOVECOT);
}

#[test]
fn vsftpd_real_failures_are_detected_with_the_attackers_address() {
    run(&vsftpd::VSFTPD);
}

#[test]
fn nginx_real_failures_are_detected_with_the_attackers_address() {
    run(&nginx::NGINX);
}

#[test]
fn apache_real_failures_are_detected_with_the_attackers_address() {
    run(&apache::APACHE);
}

#[test]
fn forged_sshd_lines_from_a_user_session_reach_no_filter() {
    if let Some(why) = missing(&["/usr/bin/logger", "/usr/bin/setpriv"]) {
        eprintln!("SKIP forged lines: {why}");
        return;
    }
    forged::run();
}

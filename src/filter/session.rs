//! Sessions: what the earlier lines of one connection said, so that later lines count right.
//!
//! A service logs one connection over several lines. Some carry no address ("Disconnecting:
//! Too many authentication failures"); some report the same failed attempt twice ("Invalid
//! user x from A" then "Failed password for invalid user x from A"). A session ties them
//! together: its key is a session id captured by the pattern (`(?P<sid>…)`: dovecot's
//! `session=<…>`, slapd's `conn=N`), else the writer's boot and `_PID` (journald sets both; an
//! sshd connection is one process). The session remembers its address and what it has counted.
//!
//! Counting rules (see [`Sessions::count`]):
//! - a `failregex` line is one failed attempt and counts once;
//! - a `session_failregex` line (invalid user, closed during authentication, too many
//!   failures) stands for the session: it counts once, and only if nothing of the session has
//!   counted yet;
//! - the first attempt after such a session line does not count again (the session line
//!   already stood for it): "Invalid user x" + three "Failed password for invalid user x"
//!   count three, like three failed passwords for root.

use std::collections::HashMap;
use std::net::IpAddr;

/// Which session a line belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SessionKey {
    /// The writer process: boot id (hashed) and `_PID`.
    Process { boot: u64, pid: u32 },
    /// A session id captured from the line (`(?P<sid>…)`).
    Id(Box<str>),
}

/// How a failure line counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailKind {
    /// One failed attempt (`failregex`).
    Attempt,
    /// The whole session failed (`session_failregex`).
    Session,
}

#[derive(Debug, Clone, Default)]
struct Session {
    addr: Option<IpAddr>,
    last_us: u64,
    attempts: u32,
    session_counted: bool,
    absorbed: bool,
}

/// Open sessions of one jail's filter. Bounded in size and age.
#[derive(Debug, Default)]
pub struct Sessions {
    map: HashMap<SessionKey, Session>,
}

impl Sessions {
    /// Sessions older than this (entry time) are forgotten.
    const MAX_AGE_US: u64 = 3_600 * 1_000_000;
    /// At most this many sessions are remembered; the older half goes when full.
    const MAX_LEN: usize = 16_384;

    fn entry(&mut self, key: SessionKey, time_us: u64) -> &mut Session {
        if !self.map.contains_key(&key) && self.map.len() >= Self::MAX_LEN {
            self.shrink(time_us);
        }
        let s = self.map.entry(key).or_default();
        if s.last_us != 0 && time_us.saturating_sub(s.last_us) > Self::MAX_AGE_US {
            // The id or pid was reused long after: a new session.
            *s = Session::default();
        }
        s.last_us = s.last_us.max(time_us);
        s
    }

    fn shrink(&mut self, time_us: u64) {
        let cutoff = time_us.saturating_sub(Self::MAX_AGE_US);
        self.map.retain(|_, s| s.last_us >= cutoff);
        if self.map.len() >= Self::MAX_LEN {
            let mut times: Vec<u64> = self.map.values().map(|s| s.last_us).collect();
            times.sort_unstable();
            let median = times[times.len() / 2];
            self.map.retain(|_, s| s.last_us > median);
        }
    }

    /// A line that names the session's address (`sessionregex`) starts it afresh.
    pub fn open(&mut self, key: SessionKey, addr: IpAddr, time_us: u64) {
        let s = self.entry(key, time_us);
        if s.addr != Some(addr) {
            *s = Session {
                addr: Some(addr),
                last_us: time_us,
                ..Session::default()
            };
        }
    }

    /// The address the session has, if any.
    pub fn addr(&self, key: &SessionKey, time_us: u64) -> Option<IpAddr> {
        self.map
            .get(key)
            .filter(|s| time_us.saturating_sub(s.last_us) <= Self::MAX_AGE_US)
            .and_then(|s| s.addr)
    }

    /// Record a failure line of the session at `addr`; returns whether it counts (see the
    /// module docs).
    pub fn count(&mut self, key: SessionKey, addr: IpAddr, kind: FailKind, time_us: u64) -> bool {
        let s = self.entry(key, time_us);
        if s.addr != Some(addr) {
            // Another address within one process (a daemon logging for many clients from
            // one pid): nothing earlier is about this address.
            *s = Session {
                addr: Some(addr),
                last_us: time_us,
                ..Session::default()
            };
        }
        match kind {
            FailKind::Attempt => {
                let counts = !(s.session_counted && !s.absorbed && s.attempts == 0);
                if !counts {
                    s.absorbed = true;
                }
                s.attempts += 1;
                counts
            }
            FailKind::Session => {
                if s.session_counted || s.attempts > 0 {
                    false
                } else {
                    s.session_counted = true;
                    true
                }
            }
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "192.0.2.1";

    fn key() -> SessionKey {
        SessionKey::Process { boot: 1, pid: 42 }
    }

    fn run(kinds: &[FailKind]) -> usize {
        let mut s = Sessions::default();
        let addr: IpAddr = A.parse().unwrap();
        kinds
            .iter()
            .enumerate()
            .filter(|(i, k)| s.count(key(), addr, **k, *i as u64 + 1))
            .count()
    }

    #[test]
    fn invalid_user_then_passwords_counts_each_password_once() {
        use FailKind::*;
        // "Invalid user x" + 3 × "Failed password for invalid user x"
        assert_eq!(run(&[Session, Attempt, Attempt, Attempt]), 3);
        // root: 3 × "Failed password"
        assert_eq!(run(&[Attempt, Attempt, Attempt]), 3);
        // invalid user, no attempt, then "Connection closed by invalid user … [preauth]"
        assert_eq!(run(&[Session, Session]), 1);
        // attempts then "maximum authentication attempts exceeded"
        assert_eq!(run(&[Attempt, Attempt, Session]), 2);
        // kbd-int/pam: "PAM: Authentication failure" before each "Failed keyboard-interactive"
        assert_eq!(run(&[Session, Attempt, Session, Attempt]), 2);
    }

    #[test]
    fn sessions_stay_bounded() {
        let mut s = Sessions::default();
        let addr: IpAddr = A.parse().unwrap();
        for pid in 0..100_000u32 {
            s.open(SessionKey::Process { boot: 1, pid }, addr, u64::from(pid));
        }
        assert!(s.len() <= Sessions::MAX_LEN);
    }

    #[test]
    fn a_reused_pid_starts_a_new_session() {
        let mut s = Sessions::default();
        let a: IpAddr = A.parse().unwrap();
        let b: IpAddr = "198.51.100.2".parse().unwrap();
        assert!(s.count(key(), a, FailKind::Session, 1));
        // Same pid, another client: its own session counts.
        assert!(s.count(key(), b, FailKind::Session, 2));
        // Long after, the same address on a reused pid.
        let later = 2 + Sessions::MAX_AGE_US + 1;
        assert!(s.count(key(), b, FailKind::Session, later));
    }
}

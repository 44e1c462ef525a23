//! The built-in sshd filter over a realistic /var/log/auth.log (tests/fixtures/auth-sshd.log):
//! OpenSSH 9.2 sessions logged as `sshd` with RFC 3164 timestamps at LogLevel INFO, then OpenSSH
//! 10.0 sessions logged as `sshd-session` with rsyslog's ISO timestamps at LogLevel VERBOSE;
//! legitimate users (keys, keyboard-interactive, a password typo), attackers (root and unknown
//! users, keyboard-interactive, MaxAuthTries, DenyUsers, JSch, changed user names, a key-only
//! scanner), probes, the 10.0 listener's drops, user names that inject other addresses, and other
//! programs' lines that look like sshd's (which must be skipped by their ident).
//!
//! Checks, per mode, through `f2b test --json` (the daemon's code path): exactly the attackers of
//! that mode are counted, no victim or legitimate user is, and the counts are one per attempt.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

fn fixture() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/auth-sshd.log")
        .display()
        .to_string()
}

/// Counted failures per address, and the lines of other programs, for `sshd:MODE`.
fn counted(mode: &str) -> (BTreeMap<String, usize>, u64) {
    let out = Command::new(env!("CARGO_BIN_EXE_f2b"))
        .args(["test", "--no-system-filters", "--json"])
        .arg(format!("sshd:{mode}"))
        .arg(fixture())
        .output()
        .expect("run f2b test");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut counts = BTreeMap::new();
    let mut other = 0;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if let Some(s) = v.get("summary") {
            other = s["other_programs"].as_u64().unwrap();
        } else if v["counted"] != false {
            *counts
                .entry(v["ip"].as_str().unwrap().to_string())
                .or_insert(0) += 1;
        }
    }
    (counts, other)
}

/// Addresses named in the log that must never be counted: injected into user names, written by
/// other programs, or legitimate users.
const NEVER: &[&str] = &[
    "192.0.2.200",
    "192.0.2.202",
    "198.51.100.201",
    "192.0.2.220",
    "192.0.2.221",
    "192.0.2.222",
    "192.0.2.10",
    "2001:db8:1::30",
];

/// Attackers every mode counts (fail2ban's normal forms), with the attempts they made.
const NORMAL: &[(&str, usize)] = &[
    // 2 × 3 connections × 3 passwords for root
    ("203.0.113.101", 18),
    // 2 × 3 unknown users, one password each: "Invalid user" and its Failed line count once
    ("198.51.100.102", 6),
    // 2 × keyboard-interactive for an unknown user: PAM error + Failed line count once
    ("2001:db8:bad::103", 2),
    // 2 × 6 passwords, then maximum-attempts and Too-many-failures lines that add nothing
    ("192.0.2.104", 12),
    // 2 × (invalid user + two passwords) with user names that carry other addresses
    ("203.0.113.105", 4),
    // 2 × an unknown user named "a: from …": refused rather than guessed at, counted once
    ("203.0.113.115", 2),
    ("198.51.100.106", 2),
    ("203.0.113.107", 2),
    ("192.0.2.108", 2),
    // a legitimate user's typo, twice
    ("198.51.100.20", 2),
];

/// `extra` adds attackers of `mode` or replaces a count of [`NORMAL`].
fn expect(mode: &str, extra: &[(&str, usize)]) {
    let (counts, other) = counted(mode);
    let want: BTreeMap<String, usize> = NORMAL
        .iter()
        .chain(extra)
        .map(|(a, n)| (a.to_string(), *n))
        .collect();
    for a in NEVER {
        assert!(!counts.contains_key(*a), "mode {mode}: {a} counted");
    }
    assert_eq!(counts, want, "mode {mode}");
    assert_eq!(other, 30, "mode {mode}: lines of other programs skipped");
}

#[test]
fn normal_counts_each_attempt_of_every_attacker_and_nobody_else() {
    expect("normal", &[]);
}

#[test]
fn ddos_adds_probes_scanners_and_listener_drops() {
    expect(
        "ddos",
        &[
            // connect-and-close: counted by its close line (9.2, INFO) and by the
            // kex_exchange_identification line with the VERBOSE Connection-from address (10.0)
            ("192.0.2.150", 2),
            ("203.0.113.151", 2),
            // a key-only scanner closing before authenticating
            ("198.51.100.109", 2),
            // 10.0 listener: LoginGraceTime expired
            ("198.51.100.153", 1),
            // the root brute-forcer's two PerSourcePenalties drops come on top
            ("203.0.113.101", 20),
        ],
    );
}

#[test]
fn extra_adds_negotiation_failures() {
    expect("extra", &[("198.51.100.152", 2)]);
}

#[test]
fn aggressive_adds_failed_keys_of_valid_users() {
    let (counts, _) = counted("aggressive");
    // the scanner's three refused keys (10.0, VERBOSE) plus its two closes
    assert_eq!(counts["198.51.100.109"], 6);
    // a legitimate user whose first key was refused: the price of aggressive
    assert_eq!(counts["203.0.113.50"], 1);
    for a in NEVER {
        assert!(!counts.contains_key(*a), "mode aggressive: {a} counted");
    }
}

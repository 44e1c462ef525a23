//! Syslog text as admins have it, through `f2b test --json` (the daemon's filter code): the
//! header variants real files carry (no hostname, no timestamp, ISO dates with a space,
//! `<facility.priority>` tokens, no colon after `ident[pid]`, Solaris message ids), rsyslog's
//! `message repeated N times` (N entries), globs in a filter's identifiers (Postfix instances),
//! and foreign programs in every form (skipped by their ident). Each hit names its line.

use std::collections::BTreeMap;
use std::process::Command;

/// Counted failures per address and the line numbers of the hits of `filter` over `text`.
fn run(filter: &str, text: &str) -> (BTreeMap<String, usize>, Vec<u64>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mail-auth.log");
    std::fs::write(&path, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_f2b"))
        .args(["test", "--no-system-filters", "--json", filter])
        .arg(&path)
        .output()
        .expect("run f2b test");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut counts = BTreeMap::new();
    let mut lines = Vec::new();
    for l in String::from_utf8_lossy(&out.stdout).lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        if v.get("summary").is_some() {
            continue;
        }
        lines.push(v["line"].as_u64().expect("a line number"));
        if v["counted"] == true {
            *counts
                .entry(v["ip"].as_str().unwrap().to_string())
                .or_insert(0) += 1;
        }
    }
    (counts, lines)
}

const SSHD: &str = "\
Dec  1 10:00:00 sshd[100]: Failed password for root from 192.0.2.1 port 22 ssh2
srv sshd[101]: Failed password for root from 192.0.2.2 port 22 ssh2
2026-12-01 10:00:00 +0000 srv sshd[102]: Failed password for root from 192.0.2.3 port 22 ssh2
Dec  1 10:00:00 <auth.info> srv sshd[103]: Failed password for root from 192.0.2.4 port 22 ssh2
Dec  1 10:00:00 srv sshd[104] Failed password for root from 192.0.2.5 port 22 ssh2
Dec  1 10:00:01 srv sshd[104]: message repeated 2 times: [ Failed password for root from 192.0.2.5 port 22 ssh2]
Dec  1 10:00:02 srv sshd[105]: [ID 800047 auth.info] Failed password for root from 192.0.2.6 port 22 ssh2
srv logger[106]: Failed password for root from 198.51.100.1 port 22 ssh2
Dec  1 10:00:03 logger[107]: Failed password for root from 198.51.100.2 port 22 ssh2
2026-12-01 10:00:04 srv logger[108]: Failed password for root from 198.51.100.3 port 22 ssh2
Dec  1 10:00:05 <auth.info> srv logger[109] Failed password for root from 198.51.100.4 port 22 ssh2
";

#[test]
fn header_variants_reach_the_filter_and_foreign_programs_do_not() {
    let (counts, lines) = run("sshd", SSHD);
    let want: BTreeMap<String, usize> = [
        ("192.0.2.1", 1),
        ("192.0.2.2", 1),
        ("192.0.2.3", 1),
        ("192.0.2.4", 1),
        // one line, then "message repeated 2 times": three attempts
        ("192.0.2.5", 3),
        ("192.0.2.6", 1),
    ]
    .into_iter()
    .map(|(a, n)| (a.to_string(), n))
    .collect();
    assert_eq!(counts, want);
    assert_eq!(lines, [1, 2, 3, 4, 5, 6, 6, 7]);
}

#[test]
fn identifier_globs_select_postfix_instances() {
    let text = "\
Dec  1 10:00:04 mx postfix-in/smtpd[200]: warning: unknown[192.0.2.20]: SASL LOGIN authentication failed: UGFzc3dvcmQ6
Dec  1 10:00:05 mx postfix-out/submission/smtpd[201]: warning: unknown[192.0.2.21]: SASL PLAIN authentication failed: 
Dec  1 10:00:06 mx postfix-in/smtp[202]: warning: unknown[198.51.100.20]: SASL LOGIN authentication failed: UGFzc3dvcmQ6
Dec  1 10:00:07 mx xpostfix/smtpd[203]: warning: unknown[198.51.100.21]: SASL LOGIN authentication failed: UGFzc3dvcmQ6
";
    let (counts, _) = run("postfix:auth", text);
    let got: Vec<&str> = counts.keys().map(String::as_str).collect();
    assert_eq!(got, ["192.0.2.20", "192.0.2.21"]);
}

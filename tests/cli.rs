//! The `f2b` command line: check, test, filters — as a user runs them.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::*;

fn f2b(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_f2b"))
        .args(["--no-system-filters", "--filter-dir"])
        .arg(fixtures())
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_reports_file_line_and_key() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("f2b.toml");
    std::fs::write(
        &p,
        "[jail.ssh]\nenabled = true\nfilter = \"testssh\"\nbantime = \"10 fortnights\"\n",
    )
    .unwrap();
    let (code, _, err) = f2b(&["check", "--config", p.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(
        err.contains(&format!("{}:4:", p.display())) && err.contains("bantime"),
        "{err}"
    );
    std::fs::write(&p, "[jail.ssh]\nenabled = true\nfilter = \"testssh\"\n").unwrap();
    let (code, out, err) = f2b(&["check", "--config", p.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("OK:") && out.contains("ssh"), "{out}");
}

#[test]
fn test_command_on_a_journal_with_json() {
    let d = tempfile::tempdir().unwrap();
    let t = f2b::engine::now_us();
    append(
        d.path(),
        "x.journal",
        vec![
            fail(t, "203.0.113.5"),
            ssh(t + 1, "Invalid user oracle from 2001:db8::5 port 4"),
            ssh(
                t + 2,
                "Accepted password for root from 203.0.113.5 port 1 ssh2",
            ),
            web(
                t + 3,
                "Failed password for root from 203.0.113.6 port 1 ssh2",
            ),
        ],
    );
    let (code, out, err) = f2b(&["test", "testssh", d.path().to_str().unwrap(), "--json"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert_eq!(lines[0]["ip"], "203.0.113.5");
    assert_eq!(lines[0]["unit"], "sshd.service");
    assert_eq!(lines[1]["ip"], "2001:db8::5");
    assert_eq!(lines[1]["user"], "oracle");
    let sum = &lines[2]["summary"];
    assert_eq!(sum["matched"], 2);
    assert_eq!(sum["missed"], 1);
    // --all-units also reads web.service.
    let (_, out, _) = f2b(&[
        "test",
        "testssh",
        d.path().to_str().unwrap(),
        "--json",
        "--all-units",
    ]);
    assert_eq!(out.lines().count(), 4);
    // Human output names the counts and the rate.
    let (_, out, _) = f2b(&["test", "testssh", d.path().to_str().unwrap()]);
    assert!(
        out.contains("2 matched") && out.contains("entries/s"),
        "{out}"
    );
}

#[test]
fn test_command_on_stdin_text_with_jail_replay() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("f2b.toml");
    std::fs::write(
        &p,
        "[jail.ssh]\nenabled = true\nfilter = \"testssh\"\nmaxretry = 2\n",
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_f2b"))
        .args(["--no-system-filters", "--filter-dir"])
        .arg(fixtures())
        .args([
            "--config",
            p.to_str().unwrap(),
            "test",
            "testssh",
            "-",
            "--jail",
            "ssh",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"Failed password for root from 198.51.100.7 port 1 ssh2\nnoise\nInvalid user a from 198.51.100.7 port 2\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&out.stdout);
    assert!(out.contains("ban  198.51.100.7"), "{out}");
    assert!(
        out.contains("2 matched") && out.contains("1 missed"),
        "{out}"
    );
}

#[test]
fn bad_filter_file_is_reported_with_its_line() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("bad.toml");
    std::fs::write(&p, "matches = [\"_SYSTEMD_UNIT=x.service\"]\nfailregex = [\n  '^ok <HOST>$',\n  '^(?<=x)bad <HOST>$',\n]\n").unwrap();
    let (code, _, err) = f2b(&["test", p.to_str().unwrap(), "-"]);
    assert_ne!(code, 0);
    assert!(
        err.contains(&format!("{}:4:", p.display())) && err.contains("backtracking"),
        "{err}"
    );
}

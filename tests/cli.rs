//! The `f2b` command line: check, test, filters — as a user runs them.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::*;

/// `f2b COMMAND --no-system-filters --filter-dir FIXTURES ARGS…`.
fn f2b_cmd(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_f2b"));
    c.arg(args[0])
        .args(["--no-system-filters", "--filter-dir"])
        .arg(fixtures())
        .args(&args[1..]);
    c
}

fn f2b(args: &[&str]) -> (i32, String, String) {
    let out = f2b_cmd(args).output().unwrap();
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
    // "1 jails" was the wording.
    assert!(out.contains("(1 jail, 1 enabled: ssh; "), "{out}");
}

/// Issue 10: only the first error was shown; a value of the wrong type named neither key nor
/// jail; an unknown key listed all 24 keys.
#[test]
fn check_shows_every_error_with_key_jail_and_a_suggestion() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("f2b.toml");
    std::fs::write(
        &p,
        "[jail.ssh]\nenabled = true\nfilter = \"testssh\"\nmaxretry = \"three\"\n\
         maxretries = 3\n[jail.web]\nfilter = \"testweb\"\nbantime = \"10 fortnights\"\n",
    )
    .unwrap();
    let (code, out, err) = f2b(&["check", "--config", p.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}{err}");
    let file = p.display().to_string();
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 3, "{err}");
    assert_eq!(
        lines[0],
        format!("f2b: {file}:4: jail ssh: maxretry: expected an integer, found string \"three\"")
    );
    assert_eq!(
        lines[1],
        format!(
            "f2b: {file}:5: unknown key \"maxretries\" in [jail.ssh]; did you mean \"maxretry\"?"
        )
    );
    assert!(
        lines[2].starts_with(&format!("f2b: {file}:8: jail web: bantime:")),
        "{err}"
    );
}

/// Issue 10.11: errors repeated their cause ("…(os error 2): …(os error 2)").
#[test]
fn errors_do_not_repeat_their_cause() {
    let (code, _, err) = f2b(&["check", "--config", "/nonexistent/f2b.toml"]);
    assert_eq!(code, 1);
    assert_eq!(err.matches("os error 2").count(), 1, "{err}");
    assert!(err.contains("/nonexistent/f2b.toml"), "{err}");
    let (code, _, err) = f2b(&["test", "testssh", "/nonexistent/lines.txt"]);
    assert_eq!(code, 1);
    assert_eq!(err.matches("os error 2").count(), 1, "{err}");
}

/// Issue 10.10: `f2b filters | head -1` panicked (exit 101) and `f2b test … | head -c1`
/// printed "f2b: Broken pipe (os error 32)". Standard output here is a real pipe whose reading
/// end is closed before f2b writes: every write fails with EPIPE.
#[test]
fn broken_pipe_ends_quietly() {
    let d = tempfile::tempdir().unwrap();
    let text = d.path().join("lines.txt");
    std::fs::write(
        &text,
        "Failed password for root from 198.51.100.7 port 1 ssh2\n".repeat(1000),
    )
    .unwrap();
    let text = text.to_str().unwrap();
    for args in [
        &["filters"][..],
        &["filters", "--json"],
        &["test", "testssh", text],
        &["test", "testssh", text, "--json"],
        &["completions", "bash"],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let mut cmd = if args[0] == "completions" {
            let mut c = Command::new(env!("CARGO_BIN_EXE_f2b"));
            c.args(args);
            c
        } else {
            f2b_cmd(args)
        };
        let out = cmd.stdout(writer).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
        assert!(err.is_empty(), "{args:?}: {err}");
    }
}

/// Issue 10.11: `f2b test sshd /etc` (no journal files) reported 0 entries with exit 0.
#[test]
fn test_on_a_directory_without_journal_files_is_an_error() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir(d.path().join("sub")).unwrap();
    std::fs::write(d.path().join("sub/notes.txt"), "x").unwrap();
    let (code, out, err) = f2b(&["test", "testssh", d.path().to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(
        err.contains(&d.path().display().to_string()) && err.contains("no journal files"),
        "{err}"
    );
    let (code, _, err) = f2b(&[
        "test",
        "testssh",
        "--journal-dir",
        d.path().to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("no journal files"), "{err}");
}

/// `f2b test FILTER` without a source reads the system journal, as fail2ban-regex users
/// expect (whatever it holds on this machine: the figures are not checked, the source is).
#[test]
fn test_without_a_source_reads_the_system_journal() {
    let (code, out, err) = f2b(&["test", "testssh"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("Source:     the system journal, matches: _SYSTEMD_UNIT=sshd.service"),
        "{out}"
    );
}

/// Options belong to the commands that use them; values are checked by the parser.
#[test]
fn usage_errors_name_the_argument() {
    for (args, want) in [
        (&["test", "testssh", "--bus", "session"][..], "--bus"),
        (&["filters", "--config", "x"], "--config"),
        (&["ban", "ssh", "203.0.113"], "<ADDR>"),
        (&["ban", "ssh", "1.2.3.4", "--for", "soon"], "--for"),
        (&["set", "ssh", "maxretry", "0"], "<VALUE>"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_f2b"))
            .args(args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
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
    // Human output names the source in words, the counts and the rate.
    let (_, out, _) = f2b(&["test", "testssh", d.path().to_str().unwrap()]);
    assert!(
        out.contains("2 matched") && out.contains("entries/s"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "Source:     journal directory {},",
            d.path().display()
        )),
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
    let mut child = f2b_cmd(&[
        "test",
        "--config",
        p.to_str().unwrap(),
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

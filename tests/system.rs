//! f2b as a systemd citizen.
//!
//! - The man pages render without warnings, f2b(1) is what the CLI generates, and the
//!   hand-written pages name every option, configuration key and D-Bus member.
//! - Metrics over a socket handed over like systemd does (`systemd-socket-activate`).
//! - [`debian_package_on_a_booted_systemd`]: the Debian package built with cargo-deb, installed
//!   with apt in a Debian 12 container that boots a real systemd (PID 1) under
//!   systemd-nspawn, and used as an administrator would (see `tests/system/container.rs`).
//!   Needs root; it says why it skips otherwise.

#[path = "system/admin.rs"]
mod admin;
#[path = "cockpit/browser.rs"]
mod browser;
mod common;
#[path = "system/container.rs"]
mod container;
#[path = "system/files.rs"]
mod files;
#[path = "system/latency.rs"]
mod latency;
#[path = "system/mangen.rs"]
mod mangen;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{have, repo};

fn man_pages() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(repo().join("man"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| ["1", "5", "8"].contains(&e))
        })
        .collect();
    v.sort();
    v
}

#[test]
fn man_pages_render_without_warnings() {
    if !have("man") {
        println!("SKIP: man (package man-db) is not installed");
        return;
    }
    let pages = man_pages();
    let names: Vec<String> = pages
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for want in ["f2b.1", "f2bd.8", "f2b.toml.5", "f2b.filter.5", "org.f2b.5"] {
        assert!(names.iter().any(|n| n == want), "man/{want} is missing");
    }
    for p in &pages {
        let out = Command::new("man")
            .args(["-l", "--warnings=w"])
            .arg(p)
            .env("MANWIDTH", "80")
            .env("MAN_KEEP_FORMATTING", "0")
            .env("LC_ALL", "C.UTF-8")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stderr.trim().is_empty(),
            "{}: man -l --warnings=w: {stderr}",
            p.display()
        );
        assert!(
            out.stdout.len() > 1000,
            "{} renders to almost nothing",
            p.display()
        );
    }
}

#[test]
fn f2b_1_is_generated_from_the_cli() {
    let page = mangen::render();
    let path = repo().join("man/f2b.1");
    if std::env::var_os("F2B_REGEN_MAN").is_some() {
        std::fs::write(&path, &page).unwrap();
        println!("wrote {}", path.display());
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == page,
        "man/f2b.1 is not what the CLI definitions give: regenerate it with\n  \
         F2B_REGEN_MAN=1 cargo test --test system f2b_1"
    );
}

/// The shell completion files the packages ship (packaging/completions/) are what
/// `f2b completions SHELL` prints for the CLI as it is.
#[test]
fn shipped_completions_are_current() {
    for (shell, file) in [("bash", "f2b.bash"), ("zsh", "_f2b"), ("fish", "f2b.fish")] {
        let out = Command::new(env!("CARGO_BIN_EXE_f2b"))
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "f2b completions {shell} failed");
        let path = repo().join("packaging/completions").join(file);
        if std::env::var_os("F2B_REGEN_COMPLETIONS").is_some() {
            std::fs::write(&path, &out.stdout).unwrap();
            println!("wrote {}", path.display());
            continue;
        }
        let committed = std::fs::read(&path).unwrap_or_default();
        assert!(
            committed == out.stdout,
            "{} is not what `f2b completions {shell}` prints: regenerate them with\n  \
             F2B_REGEN_COMPLETIONS=1 cargo test --test system shipped_completions",
            path.display()
        );
    }
}

/// Long options in clap's help output (`--name`).
fn long_options(help: &str) -> Vec<String> {
    let mut v: Vec<String> = help
        .split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == ']')
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .map(|w| {
            w.trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
                .split(['=', '<'])
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

#[test]
fn f2bd_8_documents_every_option() {
    let out = Command::new(env!("CARGO_BIN_EXE_f2bd"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    let page = std::fs::read_to_string(repo().join("man/f2bd.8")).unwrap();
    let opts = long_options(&help);
    assert!(opts.len() > 10, "{help}");
    for o in opts {
        let roff = o.replace('-', "\\-");
        assert!(
            page.contains(&format!("{roff} ")) || page.contains(&format!("{roff}\n")),
            "man/f2bd.8 does not document {o}"
        );
    }
}

#[test]
fn f2b_toml_5_documents_every_key() {
    let page = std::fs::read_to_string(repo().join("man/f2b.toml.5")).unwrap();
    let keys = f2b::config::JAIL_KEYS
        .iter()
        .chain(f2b::config::FEED_KEYS)
        .chain(f2b::config::FLEET_KEYS.iter())
        .chain(["state_dir", "history_max_age", "filter_dirs"].iter());
    for k in keys {
        assert!(
            page.contains(&format!("\n.B {k}\n")),
            "man/f2b.toml.5 has no entry (.B {k}) for the key {k}"
        );
    }
    // Every option that `f2b check` accepts in [daemon] is listed above: an unknown one is an
    // error, so a key missing from the list would show up as a failing load here.
    let text = "[daemon]\nstate_dir = \"/x\"\nhistory_max_age = \"1d\"\nfilter_dirs = []\n";
    let opts = f2b::config::LoadOptions {
        no_system_filters: true,
        ..Default::default()
    };
    f2b::config::load_str("t.toml", text, &opts).unwrap();
}

#[test]
fn org_f2b_5_documents_the_dbus_api() {
    let xml = std::fs::read_to_string(repo().join("dbus/org.f2b.xml")).unwrap();
    let page = std::fs::read_to_string(repo().join("man/org.f2b.5")).unwrap();
    let re = regex::Regex::new(r#"<(interface|method|signal|property) name="([^"]+)""#).unwrap();
    let mut n = 0;
    for c in re.captures_iter(&xml) {
        let name = &c[2];
        n += 1;
        assert!(
            page.contains(&format!(".B {name}("))
                || page.contains(&format!(".B {name} ("))
                || (&c[1] == "interface" && page.contains(&format!("INTERFACE {name}"))),
            "man/org.f2b.5 does not document {} {name}",
            &c[1]
        );
    }
    assert!(n > 20, "{n} members in dbus/org.f2b.xml?");
    let errors = regex::Regex::new(r"org\.f2b\.Error\.[A-Za-z]+").unwrap();
    for e in errors.find_iter(&xml) {
        assert!(
            page.contains(&format!(".B {}\n", e.as_str())),
            "man/org.f2b.5 does not document {}",
            e.as_str()
        );
    }
}

/// A free TCP port on 127.0.0.1 (bound and released; good enough for a test).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn http_get(addr: &str, path: &str, deadline: Instant) -> String {
    loop {
        match std::net::TcpStream::connect(addr) {
            Ok(mut s) => {
                s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
                write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
                let mut out = String::new();
                s.read_to_string(&mut out).unwrap();
                return out;
            }
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("connect {addr}: {e}"),
        }
    }
}

/// Metrics are served only on a socket handed over as systemd does it (LISTEN_FDS), with the
/// numbers of the engine: here f2bd reads a demonstration journal in dry-run mode.
#[test]
fn metrics_on_a_socket_passed_like_systemd_does() {
    if !have("systemd-socket-activate") {
        println!("SKIP: systemd-socket-activate (package systemd) is not installed");
        return;
    }
    if !Path::new("/lib/systemd/systemd-journal-remote").exists() {
        println!("SKIP: systemd-journal-remote is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal");
    let st = Command::new(env!("CARGO_BIN_EXE_f2b"))
        .args(["demo-journal", "--entries", "3000"])
        .arg(&journal)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let config = dir.path().join("f2b.toml");
    std::fs::write(
        &config,
        "[jail.testssh]\nenabled = true\nmaxretry = 3\nfindtime = \"1h\"\nbantime = \"1h\"\n",
    )
    .unwrap();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = Command::new("systemd-socket-activate")
        .args(["-l", &addr, "--fdname=metrics"])
        .arg(env!("CARGO_BIN_EXE_f2bd"))
        .arg("--config")
        .arg(&config)
        .args(["--no-system-filters", "--filter-dir"])
        .arg(repo().join("tests/fixtures/filters"))
        .args(["--firewall", "none", "--bus", "none", "--ephemeral"])
        .args(["--log", "stderr", "--from-start", "--journal-dir"])
        .arg(&journal)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // A condition, not a sleep: generous because the package test builds in parallel.
    let deadline = Instant::now() + Duration::from_secs(180);
    // systemd-socket-activate execs f2bd on the first connection.
    let mut body;
    loop {
        body = http_get(&addr, "/metrics", deadline);
        if body.contains("\nf2b_journal_caught_up 1\n") || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let index = http_get(&addr, "/", deadline);
    let missing = http_get(&addr, "/nope", deadline);
    let _ = child.kill();
    let _ = child.wait();
    assert!(body.starts_with("HTTP/1.0 200 OK\r\n"), "{body}");
    assert!(
        body.contains("Content-Type: text/plain; version=0.0.4"),
        "{body}"
    );
    assert!(body.contains("\nf2b_journal_caught_up 1\n"), "{body}");
    let value = |name: &str| -> f64 {
        body.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
            .unwrap_or_else(|| panic!("no {name} in\n{body}"))
    };
    assert!(value("f2b_journal_entries_read_total") > 0.0, "{body}");
    assert!(value("f2b_jail_failures_total{jail=\"testssh\"}") > 0.0);
    assert!(value("f2b_jail_bans_total{jail=\"testssh\"}") > 0.0);
    assert!(value("f2b_jail_banned{jail=\"testssh\"}") > 0.0);
    let seen = value("f2b_filter_entries_seen_total{jail=\"testssh\",filter=\"testssh\"}");
    let matched = value("f2b_filter_entries_matched_total{jail=\"testssh\",filter=\"testssh\"}");
    assert!(seen >= matched && matched > 0.0, "{body}");
    assert!(
        value("f2b_filter_last_match_timestamp_seconds{jail=\"testssh\",filter=\"testssh\"}") > 1e9
    );
    assert_eq!(value("f2b_journal_lag_seconds"), 0.0);
    assert!(index.starts_with("HTTP/1.0 200 OK"), "{index}");
    assert!(missing.starts_with("HTTP/1.0 404"), "{missing}");
}

#[test]
fn debian_package_on_a_booted_systemd() {
    container::run();
}

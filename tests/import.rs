//! `f2b import-fail2ban` against Debian's fail2ban package: its /etc/fail2ban as shipped plus
//! the jail.local files of the common setups (tests/fixtures/fail2ban/cases/*), read by the
//! import and by fail2ban's own Python code (the same answers), written as an f2b
//! configuration that f2b accepts with the same enabled jails; a custom filter that finds its
//! attacker in `f2b test`; a database written by fail2ban itself, imported and restored by
//! f2bd.
//!
//! Needs the `fail2ban` package (packaging/build-deps.sh --tests); tests say SKIP without it.

mod common;

#[path = "import/state.rs"]
mod state;
#[path = "import/stock.rs"]
mod stock;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use f2b::config::{self, LoadOptions};
use f2b::import::{self, jails, ImportArgs, Options, Outcome};
use f2b::source::export::ExportEntry;

const ETC: &str = "/etc/fail2ban";
const PYTHON: &str = "/usr/bin/python3";
const CASES: &[&str] = &[
    "tutorial",
    "sshd-systemd",
    "mail",
    "nginx-files",
    "recidive",
    "increment",
    "custom",
    "untranslatable",
    "done",
];

fn fixture(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/fail2ban")
        .join(p)
}

/// Debian's fail2ban package and its Python module are installed.
fn fail2ban_or_skip(test: &str) -> bool {
    let py = Command::new(PYTHON)
        .args(["-c", "import fail2ban.client.jailsreader"])
        .output();
    if !Path::new(ETC).join("jail.conf").is_file() || !py.is_ok_and(|o| o.status.success()) {
        eprintln!("SKIP {test}: Debian's fail2ban package is not installed (packaging/build-deps.sh --tests)");
        return false;
    }
    true
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        let t = to.join(e.file_name());
        if p.is_dir() {
            copy_dir(&p, &t);
        } else {
            fs::copy(&p, &t).unwrap();
        }
    }
}

/// A copy of /etc/fail2ban with a case's files laid over it.
fn etc(dir: &Path, case: &str) -> PathBuf {
    let etc = dir.join("etc");
    copy_dir(Path::new(ETC), &etc);
    copy_dir(&fixture(&format!("cases/{case}")), &etc);
    etc
}

/// A case's fail2ban configuration in a temporary directory (None: SKIP said).
fn case(test: &str, case: &str) -> Option<(tempfile::TempDir, PathBuf)> {
    if !fail2ban_or_skip(test) {
        return None;
    }
    let d = tempfile::tempdir().unwrap();
    let from = etc(d.path(), case);
    Some((d, from))
}

fn args(from: &Path, to: &Path) -> ImportArgs {
    ImportArgs {
        from: from.to_path_buf(),
        to: to.to_path_buf(),
        db: None,
        state_dir: None,
        dry_run: false,
    }
}

/// The host's units: the services the custom filters are for are installed (the import adds
/// their unit to a journal match that only names the program, which anyone could forge).
fn opts(dir: &Path) -> Options {
    let units = dir.join("units");
    fs::create_dir_all(&units).unwrap();
    for s in ["webapp", "portal", "dropbear"] {
        fs::write(units.join(format!("{s}.service")), "[Service]\n").unwrap();
    }
    Options {
        unit_dirs: vec![units],
        ..Options::default()
    }
}

#[test]
fn a_filter_known_only_by_its_program_name_needs_the_services_unit() {
    let d = tempfile::tempdir().unwrap();
    let Some((_t, from)) = case(
        "a_filter_known_only_by_its_program_name_needs_the_services_unit",
        "custom",
    ) else {
        return;
    };
    let o = import::import(
        &args(&from, &d.path().join("out")),
        &Options {
            unit_dirs: vec![d.path().join("no-units")],
            ..Options::default()
        },
    )
    .unwrap();
    let report = o.report.render();
    assert!(
        report.contains("jail webapp") && report.contains("any local user can forge"),
        "{report}"
    );
    assert!(!o
        .checked
        .unwrap_or_default()
        .contains(&"webapp".to_string()));
}

/// `f2b check` on the written configuration, with nothing but the built-in filters and the
/// `filters/` folder beside it.
fn check(out: &Path) -> Vec<String> {
    let s = config::load(&LoadOptions {
        config: out.join("f2b.toml"),
        allow_missing: false,
        filter_dirs: Vec::new(),
        no_system_filters: true,
        services: f2b::system::services(),
        ..LoadOptions::default()
    })
    .unwrap_or_else(|e| panic!("{}: {e}", out.display()));
    s.enabled_jails().map(|j| j.name.clone()).collect()
}

fn lost(o: &Outcome) -> Vec<String> {
    o.report
        .items
        .iter()
        .filter(|i| i.lost)
        .map(|i| {
            let at = i.loc.as_ref().map(|l| l.to_string()).unwrap_or_default();
            format!("{} ({at}): {}", i.subject, i.msg)
        })
        .collect()
}

#[test]
fn reading_is_fail2bans_own() {
    if !fail2ban_or_skip("reading_is_fail2bans_own") {
        return;
    }
    for case in CASES {
        let d = tempfile::tempdir().unwrap();
        let etc = etc(d.path(), case);
        // fail2ban itself, with the syslog prefix empty as the import reads filters.
        fs::write(
            etc.join("filter.d/common.local"),
            "[DEFAULT]\n__prefix_line =\n",
        )
        .unwrap();
        let out = Command::new(PYTHON)
            .arg(fixture("dump.py"))
            .arg(&etc)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{case}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let theirs: BTreeMap<String, serde_json::Value> =
            serde_json::from_slice(&out.stdout).unwrap();
        let cfg = jails::read_config(&etc).unwrap();
        let mut ours = Vec::new();
        for section in cfg.user_sections() {
            if let jails::JailRead::Enabled(j) = jails::read_jail(&cfg, &etc, section).unwrap() {
                ours.push(*j);
            }
        }
        let names: Vec<&str> = ours.iter().map(|j| j.name.as_str()).collect();
        assert_eq!(
            names.len(),
            theirs.len(),
            "{case}: {names:?} vs {:?}",
            theirs.keys()
        );
        for j in &ours {
            let t = &theirs[&j.name];
            let f = j.filter.as_ref().unwrap();
            let texts = |v: &[f2b::import::ini::Value]| -> Vec<String> {
                v.iter().map(|x| x.text.clone()).collect()
            };
            let list = |k: &str| -> Vec<String> {
                t[k].as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_str().unwrap().to_string())
                    .collect()
            };
            let what = format!("{case}/{}", j.name);
            assert_eq!(texts(&f.effective.failregex), list("failregex"), "{what}");
            assert_eq!(
                texts(&f.effective.ignoreregex),
                list("ignoreregex"),
                "{what}"
            );
            assert_eq!(
                f.effective.prefregex.as_ref().map(|v| v.text.as_str()),
                t["prefregex"].as_str(),
                "{what}"
            );
            let jm: Vec<String> = f
                .effective
                .journalmatch
                .iter()
                .flat_map(|v| v.text.lines().map(str::to_string).collect::<Vec<_>>())
                .collect();
            let theirs_jm: Vec<String> = t["journalmatch"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| {
                    m.as_array()
                        .unwrap()
                        .iter()
                        .map(|x| x.as_str().unwrap())
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect();
            assert_eq!(jm, theirs_jm, "{what}");
            assert_eq!(j.backend(), t["backend"].as_str().unwrap(), "{what}");
            for k in [
                "findtime",
                "bantime",
                "bantime.increment",
                "bantime.factor",
                "bantime.multipliers",
                "bantime.maxtime",
            ] {
                let mine = j.opts.get(k).map(|v| v.text.clone());
                let theirs = t.get(k).map(|v| match v {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Bool(b) => if *b { "true" } else { "false" }.to_string(),
                    other => other.to_string(),
                });
                match (&mine, &theirs) {
                    (Some(m), Some(th)) if k == "bantime.increment" => {
                        assert_eq!(jails::as_bool(m), th == "true", "{what} {k}")
                    }
                    _ => assert_eq!(mine, theirs, "{what} {k}"),
                }
            }
            assert_eq!(
                j.opts
                    .get("maxretry")
                    .map(|v| v.text.parse::<i64>().unwrap()),
                t["maxretry"].as_i64(),
                "{what}"
            );
        }
    }
}

/// (case, jails f2b runs, what the report must say is not carried over)
const EXPECT: &[(&str, &[&str], &[&str])] = &[
    ("tutorial", &["sshd"], &[]),
    ("sshd-systemd", &["sshd"], &[]),
    (
        "mail",
        &["dovecot", "postfix", "postfix-rbl", "postfix-sasl", "sshd"],
        &["jail sieve"],
    ),
    (
        "nginx-files",
        &["sshd"],
        &["nginx-http-auth", "nginx-botsearch"],
    ),
    ("recidive", &["recidive", "sshd"], &[]),
    ("increment", &["dropbear", "sshd"], &[]),
    ("custom", &["sshd", "webapp"], &[]),
    (
        "untranslatable",
        &["sshd"],
        &["legacy.conf:2", "legacy.conf:3"],
    ),
    ("done", &["portal", "recidive", "sshd"], &[]),
];

#[test]
fn every_case_gives_a_configuration_f2b_accepts() {
    if !fail2ban_or_skip("every_case_gives_a_configuration_f2b_accepts") {
        return;
    }
    let file_sources = config::JAIL_KEYS.contains(&"logpath");
    for (case, want, want_lost) in EXPECT {
        let d = tempfile::tempdir().unwrap();
        let from = etc(d.path(), case);
        let to = d.path().join("out");
        let o = import::import(&args(&from, &to), &opts(d.path())).unwrap();
        let report = o.report.render();
        let mut enabled = o
            .checked
            .clone()
            .unwrap_or_else(|| panic!("{case}: {report}"));
        enabled.sort();
        let mut want: Vec<&str> = want.to_vec();
        if *case == "nginx-files" && file_sources {
            want.extend(["nginx-botsearch", "nginx-http-auth"]);
            want.sort();
        }
        assert_eq!(enabled, want, "{case}:\n{report}");
        let lost = lost(&o);
        // The tutorial's mail action (sendmail-whois-lines) becomes an f2b mail action.
        if *case == "tutorial" {
            assert!(
                report.contains("action sendmail-whois-lines → f2b mail action"),
                "{report}"
            );
        }
        for w in *want_lost {
            if *case == "nginx-files" && file_sources {
                continue;
            }
            assert!(
                lost.iter().any(|l| l.contains(w)),
                "{case}: {w} not reported:\n{report}"
            );
        }
        let carried = *case == "nginx-files" && file_sources;
        assert_eq!(
            o.report.failed(),
            !want_lost.is_empty() && !carried,
            "{case}:\n{report}"
        );
        let written = fs::read_to_string(to.join("import-report.txt")).unwrap();
        assert_eq!(written, report);
    }
}

#[test]
fn modes_ports_increment_and_ignoreip_are_carried_over() {
    let Some((d, from)) = case(
        "modes_ports_increment_and_ignoreip_are_carried_over",
        "done",
    ) else {
        return;
    };
    let to = d.path().join("out");
    import::import(&args(&from, &to), &opts(d.path())).unwrap();
    let s = config::load(&LoadOptions {
        config: to.join("f2b.toml"),
        no_system_filters: true,
        services: f2b::system::services(),
        ..LoadOptions::default()
    })
    .unwrap();
    let sshd = s.jail("sshd").unwrap();
    let config::JailSource::Journal { filter, mode, .. } = &sshd.source else {
        panic!()
    };
    assert_eq!((filter.as_str(), mode.as_deref()), ("sshd", Some("ddos")));
    let ports: Vec<(u16, u16)> = sshd.rules.ports.iter().map(|p| (p.first, p.last)).collect();
    assert_eq!(ports, vec![(22, 22), (2222, 2222)]);
    assert_eq!(sshd.maxretry, 4);
    assert_eq!(sshd.findtime.as_secs(), 900);
    assert_eq!(
        sshd.bantime,
        config::BanTime::For(std::time::Duration::from_secs(3600))
    );
    let inc = sshd.increment.as_ref().unwrap();
    assert_eq!(inc.factor, 2.0);
    assert_eq!(inc.maxtime.unwrap().as_secs(), 14 * 86_400);
    assert!(sshd.ignore.contains("198.51.100.7".parse().unwrap()));
    assert!(sshd.ignore.contains("127.0.0.5".parse().unwrap()));
    assert!(!sshd.ignore.contains("203.0.113.1".parse().unwrap()));
    // nftables-multiport rejects (blocktype = reject).
    assert_eq!(sshd.rules.verdict, f2b::firewall::Verdict::Reject);
    let recidive = s.jail("recidive").unwrap();
    assert_eq!(recidive.source, config::JailSource::Bans { jails: vec![] });
    assert_eq!(
        recidive.bantime,
        config::BanTime::For(std::time::Duration::from_secs(7 * 86_400))
    );
    assert!(recidive.rules.ports.is_empty(), "recidive bans every port");
    let portal = s.jail("portal").unwrap();
    assert_eq!(portal.maxretry, 3);
    assert_eq!(portal.filter_name(), Some("portal"));
}

#[test]
fn custom_filter_finds_its_attacker() {
    let Some((d, from)) = case("custom_filter_finds_its_attacker", "done") else {
        return;
    };
    let to = d.path().join("out");
    import::import(&args(&from, &to), &opts(d.path())).unwrap();
    let journal = d.path().join("journal");
    let t = f2b::engine::now_us() - 60 * S;
    let e =
        |i: u64, msg: &str| ExportEntry::service(t + i * S, "portal.service", "portal", 321, msg);
    append(
        &journal,
        "portal.journal",
        vec![
            e(
                1,
                "auth: bad password for alice from 203.0.113.77 port 50001",
            ),
            e(
                2,
                "auth: bad password for probe-user from 10.9.9.9 port 50002",
            ),
            e(3, "auth: bad password for bob from 203.0.113.77 port 50003"),
            e(4, "auth: session opened for carol from 192.0.2.1"),
            e(
                5,
                "auth: account root locked after failures from 203.0.113.77",
            ),
        ],
    );
    let out = Command::new(env!("CARGO_BIN_EXE_f2b"))
        .args(["test", "--no-system-filters", "--config"])
        .arg(to.join("f2b.toml"))
        .args(["--jail", "portal", "portal"])
        .arg(&journal)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(
            "3 matched (+0 lines of attempts already counted for their session), 1 ignored"
        ),
        "{text}"
    );
    assert!(text.contains("203.0.113.77"), "{text}");
    assert!(!text.contains("10.9.9.9 "), "{text}");
    assert!(text.contains("ban  203.0.113.77"), "{text}");
}

#[test]
fn dry_run_writes_nothing_and_old_files_are_kept() {
    let Some((d, from)) = case("dry_run_writes_nothing_and_old_files_are_kept", "custom") else {
        return;
    };
    let to = d.path().join("out");
    let mut a = args(&from, &to);
    a.dry_run = true;
    a.state_dir = Some(d.path().join("state"));
    a.db = Some(d.path().join("none.sqlite3"));
    assert!(
        import::import(&a, &opts(d.path())).is_err(),
        "a missing --db is an error"
    );
    a.db = None;
    let o = import::import(&a, &opts(d.path())).unwrap();
    assert!(!to.exists() && !d.path().join("state").exists());
    assert!(o.output.config.contains("[jail.webapp]"));
    fs::create_dir_all(&to).unwrap();
    fs::write(to.join("f2b.toml"), "# mine\n").unwrap();
    a.dry_run = false;
    a.state_dir = None;
    import::import(&a, &opts(d.path())).unwrap();
    assert_eq!(
        fs::read_to_string(to.join("f2b.toml.before-import")).unwrap(),
        "# mine\n"
    );
    assert!(fs::read_to_string(to.join("f2b.toml"))
        .unwrap()
        .contains("[jail.webapp]"));
}

#[test]
fn cli_prints_the_report_and_exits_1_when_something_is_lost() {
    if !fail2ban_or_skip("cli_prints_the_report_and_exits_1_when_something_is_lost") {
        return;
    }
    for (case, code) in [("untranslatable", 1), ("recidive", 0)] {
        let d = tempfile::tempdir().unwrap();
        let from = etc(d.path(), case);
        let out = Command::new(env!("CARGO_BIN_EXE_f2b"))
            .args(["import-fail2ban", "--from"])
            .arg(&from)
            .arg("--to")
            .arg(d.path().join("out"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(code), "{case}: {text}");
        assert!(text.contains("jail(s) enabled in f2b"), "{text}");
    }
}

#[test]
fn stock_filters_edited_in_place_are_translated() {
    let Some((d, from)) = case("stock_filters_edited_in_place_are_translated", "increment") else {
        return;
    };
    // An edit of the packaged file itself (not a .local): dpkg's checksum tells.
    let f = from.join("filter.d/dropbear.conf");
    let mut text = fs::read_to_string(&f).unwrap();
    text.push_str("# local edit\n");
    fs::write(&f, text).unwrap();
    let to = d.path().join("out");
    let o = import::import(&args(&from, &to), &opts(d.path())).unwrap();
    let r = o.report.render();
    assert!(
        r.contains("dropbear.conf differs from the packaged file"),
        "{r}"
    );
    assert!(to.join("filters/dropbear-fail2ban.toml").is_file(), "{r}");
    assert!(
        o.output.config.contains("filter = \"dropbear-fail2ban\""),
        "{r}"
    );
    assert!(o.output.config.contains("filter = \"sshd\""), "{r}");
    assert_eq!(check(&to).len(), 2);
    // Without dpkg's records the files cannot be compared: said, and taken as stock.
    let to = d.path().join("out2");
    let o = import::import(
        &args(&from, &to),
        &Options {
            dpkg_status: d.path().join("no-status"),
            ..opts(d.path())
        },
    )
    .unwrap();
    let r = o.report.render();
    assert!(
        r.contains("could not be compared with the packaged file"),
        "{r}"
    );
    assert!(o.output.config.contains("filter = \"dropbear\""), "{r}");
}

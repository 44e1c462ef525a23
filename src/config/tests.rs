use super::*;
use std::fs;
use std::io::Write;

use crate::firewall::{PortRange, Protocol};

fn filter_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let mut f = fs::File::create(d.path().join("testsvc.toml")).unwrap();
    f.write_all(
        br#"matches = ["_SYSTEMD_UNIT=testsvc.service"]
default_mode = "normal"
failregex = ['^auth failure from <HOST>$']
[modes.normal]
[modes.aggressive]
failregex = ['^probe from <HOST>$']
"#,
    )
    .unwrap();
    d
}

fn opts(dir: &tempfile::TempDir) -> LoadOptions {
    LoadOptions {
        config: "unused".into(),
        allow_missing: false,
        filter_dirs: vec![dir.path().to_path_buf()],
        no_system_filters: true,
        default_text: None,
        services: Services::parse("gopher 70/tcp\n"),
        os_ids: vec!["ubuntu".into(), "debian".into()],
    }
}

fn err(text: &str) -> String {
    let d = filter_dir();
    load_str("f2b.toml", text, &opts(&d))
        .unwrap_err()
        .to_string()
}

#[test]
fn full_jail_validates() {
    let d = filter_dir();
    let s = load_str(
        "f2b.toml",
        r#"
[defaults]
bantime = "1h"
ignoreip = ["10.0.0.0/8", "2001:db8::/32"]
[jail.testsvc]
enabled = true
mode = "aggressive"
maxretry = 3
findtime = "1h30m"
ports = [22, "8000-8100", "http", "gopher"]
extra_matches = ["SYSLOG_IDENTIFIER=testsvc _UID=0"]
ipv6_prefix = 64
bantime_increment = true
bantime_multipliers = [1, 2, 4]
[jail.off]
filter = "testsvc"
"#,
        &opts(&d),
    )
    .unwrap();
    let j = s.jail("testsvc").unwrap();
    assert!(j.enabled);
    assert_eq!(j.maxretry, 3);
    assert_eq!(j.findtime, Duration::from_secs(5400));
    assert_eq!(j.bantime, BanTime::For(Duration::from_secs(3600)));
    assert_eq!(j.ipv6_prefix, 64);
    assert_eq!(j.rules.protocol, Protocol::Tcp);
    assert_eq!(j.rules.ports.len(), 4);
    assert_eq!(j.rules.ports[3].first, 70, "from the services table given");
    assert_eq!(
        j.rules.ports[2],
        PortRange {
            first: 80,
            last: 80
        }
    );
    assert!(j.ignore.contains("10.1.2.3".parse().unwrap()));
    match &j.source {
        JailSource::Journal { mode, matches, .. } => {
            assert_eq!(mode.as_deref(), Some("aggressive"));
            assert_eq!(matches.len(), 2);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        j.increment.as_ref().unwrap().multipliers,
        vec![1.0, 2.0, 4.0]
    );
    assert!(!s.jail("off").unwrap().enabled);
    assert_eq!(
        s.filters.len(),
        2,
        "every jail's filter is compiled, enabled or not"
    );
}

#[test]
fn errors_name_file_line_and_key() {
    let e = err("[jail.testsvc]\nenabled = true\nbogus = 1\n");
    assert!(e.starts_with("f2b.toml:3:") && e.contains("bogus"), "{e}");
    let e = err("[jail.testsvc]\nenabled = true\nfindtime = \"10 parsecs\"\n");
    assert!(
        e.starts_with("f2b.toml:3:") && e.contains("findtime") && e.contains("parsecs"),
        "{e}"
    );
    let e = err("[jail.testsvc]\nenabled = true\n\nignoreip = [\"10.0.0.0/40\"]\n");
    assert!(
        e.starts_with("f2b.toml:4:") && e.contains("ignoreip"),
        "{e}"
    );
    let e = err("[jail.x]\nenabled = true\nfilter = \"nosuch\"\n");
    assert!(
        e.starts_with("f2b.toml:3:") && e.contains("unknown filter \"nosuch\""),
        "{e}"
    );
    let e = err("[jail.x]\nfilter = \"testsv\"\n");
    assert!(e.contains("did you mean \"testsvc\"?"), "{e}");
    let e = err("[jail.testsvc]\nmode = \"ddos\"\n");
    assert!(e.starts_with("f2b.toml:2:") && e.contains("ddos"), "{e}");
    let e = err("[jail.testsvc]\nmaxretry = 0\n");
    assert!(
        e.starts_with("f2b.toml:2:") && e.contains("maxretry"),
        "{e}"
    );
    let e = err("[jail.testsvc]\nports = [70000]\n");
    assert!(e.contains("ports"), "{e}");
    let e = err("[jail.\"bad name!\"]\n");
    assert!(e.contains("jail name"), "{e}");
    let e = err("[defaults]\nbantime = \"x\"\n[jail.testsvc]\n");
    assert!(e.starts_with("f2b.toml:2:") && e.contains("bantime"), "{e}");
    let e = err("[jail.testsvc]\nmatches = [\"MESSAGE=hi\"]\n");
    assert!(e.contains("matches"), "{e}");
    let e = err("[jail.r]\nsource = \"bans\"\nwatch_jails = [\"nosuch\"]\n");
    assert!(e.contains("nosuch"), "{e}");
}

#[test]
fn dropins_merge_in_lexical_order() {
    let fdir = filter_dir();
    let cdir = tempfile::tempdir().unwrap();
    let root = cdir.path().join("f2b.toml");
    fs::write(
        &root,
        "[jail.testsvc]\nenabled = true\nmaxretry = 3\nbantime = \"1h\"\n",
    )
    .unwrap();
    fs::create_dir(cdir.path().join("jail.d")).unwrap();
    fs::write(
        cdir.path().join("jail.d/20-b.toml"),
        "[jail.testsvc]\nmaxretry = 7\n",
    )
    .unwrap();
    fs::write(
        cdir.path().join("jail.d/10-a.toml"),
        "[jail.testsvc]\nmaxretry = 4\nbantime = -1\n",
    )
    .unwrap();
    fs::write(
        cdir.path().join("jail.d/30-c.toml"),
        "[jail.testsvc]\nfindtime = 0\n",
    )
    .unwrap();
    let mut o = opts(&fdir);
    o.config = root;
    let e = load(&o).unwrap_err().to_string();
    assert!(e.contains("30-c.toml:2:") && e.contains("findtime"), "{e}");
    fs::remove_file(cdir.path().join("jail.d/30-c.toml")).unwrap();
    let s = load(&o).unwrap();
    let j = s.jail("testsvc").unwrap();
    assert_eq!(j.maxretry, 7);
    assert_eq!(j.bantime, BanTime::Forever);
    assert_eq!(s.files.len(), 3);
}

#[test]
fn missing_root_config() {
    let fdir = filter_dir();
    let mut o = opts(&fdir);
    o.config = "/nonexistent/f2b.toml".into();
    assert!(load(&o)
        .unwrap_err()
        .to_string()
        .contains("/nonexistent/f2b.toml"));
    o.allow_missing = true;
    assert!(load(&o).unwrap().jails.is_empty());
}

/// Issue 10 ("what an admin stumbled on"): a value of the wrong type named neither key nor
/// jail, only the first error was shown, and an unknown key listed every key.
#[test]
fn config_errors_name_key_and_jail_and_all_are_shown_in_file_order() {
    let d = filter_dir();
    let e = load_str(
        "f2b.toml",
        "[jail.testsvc]\nenabled = true\nmaxretry = \"three\"\nbantme = \"1h\"\n\
         findtime = \"soon\"\n[jail.other]\nfilter = \"testsvc\"\nipv6_prefix = 8\n",
        &opts(&d),
    )
    .unwrap_err();
    let lines: Vec<String> = e.problems().iter().map(|p| p.to_string()).collect();
    assert_eq!(lines.len(), 4, "{e}");
    assert_eq!(
        lines[0],
        "f2b.toml:3: jail testsvc: maxretry: expected an integer, found string \"three\""
    );
    assert_eq!(
        lines[1],
        "f2b.toml:4: unknown key \"bantme\" in [jail.testsvc]; did you mean \"bantime\"?"
    );
    assert!(
        lines[2].starts_with("f2b.toml:5: jail testsvc: findtime:"),
        "{}",
        lines[2]
    );
    assert_eq!(
        lines[3],
        "f2b.toml:8: jail other: ipv6_prefix: 8 is not in 16..=128"
    );
    assert_eq!(e.to_string(), lines.join("\n"));
}

#[test]
fn errors_of_several_files_in_merge_order() {
    let fdir = filter_dir();
    let cdir = tempfile::tempdir().unwrap();
    let root = cdir.path().join("f2b.toml");
    fs::write(&root, "[jail.testsvc]\nenabled = true\n\nbogus = 1\n").unwrap();
    fs::create_dir(cdir.path().join("jail.d")).unwrap();
    fs::write(
        cdir.path().join("jail.d/b.toml"),
        "[jail.testsvc]\nmaxretry = 0\n",
    )
    .unwrap();
    fs::write(
        cdir.path().join("jail.d/a.toml"),
        "[defaults]\nbantime = \"11y\"\n",
    )
    .unwrap();
    let mut o = opts(&fdir);
    o.config = root.clone();
    let e = load(&o).unwrap_err().to_string();
    let files: Vec<&str> = e
        .lines()
        .map(|l| l.split(':').next().unwrap().rsplit('/').next().unwrap())
        .collect();
    assert_eq!(files, ["f2b.toml", "a.toml", "b.toml"], "{e}");
}

/// Issue 10.11: a file named jail.d was silently ignored.
#[test]
fn jail_d_being_a_file_is_an_error_naming_it() {
    let fdir = filter_dir();
    let cdir = tempfile::tempdir().unwrap();
    let root = cdir.path().join("f2b.toml");
    fs::write(&root, "[jail.testsvc]\nenabled = true\n").unwrap();
    fs::write(cdir.path().join("jail.d"), "[jail.testsvc]\nmaxretry = 2\n").unwrap();
    let mut o = opts(&fdir);
    o.config = root;
    let e = load(&o).unwrap_err().to_string();
    assert!(
        e.contains(&cdir.path().join("jail.d").display().to_string())
            && e.contains("not a directory"),
        "{e}"
    );
}

#[test]
fn limits_are_the_shared_ones() {
    let e = err("[jail.testsvc]\nbantime = \"522w\"\n");
    assert!(e.contains("bantime") && e.contains("ten years"), "{e}");
    let e = err("[jail.testsvc]\nipv4_prefix = 7\n");
    assert!(e.contains("8..=32"), "{e}");
    let e = err("[jail.testsvc]\nmaxretry = 1000001\n");
    assert!(e.contains("1..=1000000"), "{e}");
}

#[test]
fn jail_matches_on_a_forgeable_identifier_are_refused() {
    let e = err("[jail.testsvc]\nenabled = true\nmatches = [\"SYSLOG_IDENTIFIER=sshd\"]\n");
    assert!(
        e.starts_with("f2b.toml:3:") && e.contains("forged") && e.contains("_SYSTEMD_UNIT"),
        "{e}"
    );
}

#[test]
fn file_jails_need_absolute_logpaths_or_a_filter_default() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("weblog.toml"),
        "failregex = ['^<HOST> fail$']\ndatepattern = \"clf\"\n[logpath]\ndebian = [\"/var/log/web/deb.log\"]\nrhel = [\"/var/log/web/rh.log\"]\n",
    )
    .unwrap();
    std::fs::write(
        d.path().join("bare.toml"),
        "failregex = ['^<HOST> fail$']\n",
    )
    .unwrap();
    let load = |text: &str| load_str("f2b.toml", text, &opts(&d));
    // ubuntu → debian (ID_LIKE) default.
    let s = load("[jail.weblog]\nenabled = true\nsource = \"file\"\n").unwrap();
    match &s.jail("weblog").unwrap().source {
        JailSource::File {
            logpath, filter, ..
        } => {
            assert_eq!(logpath, &["/var/log/web/deb.log"]);
            assert_eq!(filter, "weblog");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        s.filters.contains_key("weblog"),
        "compiled for the file jail"
    );
    let s = load("[jail.weblog]\nsource = \"file\"\nlogpath = [\"/srv/*/x.log\"]\n").unwrap();
    assert!(matches!(&s.jail("weblog").unwrap().source,
        JailSource::File { logpath, .. } if logpath == &["/srv/*/x.log"]));
    let e = load("[jail.weblog]\nsource = \"file\"\n\nlogpath = [\"logs/x.log\"]\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("f2b.toml:4:") && e.contains("logpath") && e.contains("absolute"),
        "{e}"
    );
    let e = load("[jail.bare]\nenabled = true\nsource = \"file\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("f2b.toml:3:") && e.contains("needs logpath"),
        "{e}"
    );
    let e = load("[jail.weblog]\nsource = \"file\"\nmatches = [\"_UID=0\"]\n")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("f2b.toml:3:") && e.contains("logpath"), "{e}");
}

#[test]
fn filter_logpath_and_datepattern_are_checked() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("f.toml"),
        "failregex = ['^<HOST> x$']\n[logpath]\ndebian = [\"var/log/x\"]\n",
    )
    .unwrap();
    let e = load_str("f2b.toml", "", &opts(&d)).unwrap_err().to_string();
    assert!(e.contains("f.toml:3") && e.contains("absolute"), "{e}");
    std::fs::write(
        d.path().join("f.toml"),
        "failregex = ['^<HOST> x$']\ndatepattern = \"%Y\"\n",
    )
    .unwrap();
    let e = load_str("f2b.toml", "", &opts(&d)).unwrap_err().to_string();
    assert!(e.contains("f.toml:2") && e.contains("datepattern"), "{e}");
}

#[test]
fn feeds_are_validated_key_by_key_with_their_lines() {
    let d = filter_dir();
    let s = load_str(
        "f2b.toml",
        "[defaults]\nignoreip = [\"192.0.2.0/24\"]\n[feed.drop]\nurl = \"https://example.org/drop.txt\"\n\
         format = \"spamhaus-drop\"\nrefresh = \"12h\"\n[feed.local]\npath = \"/etc/f2b/list\"\n\
         ports = [22]\nenabled = false\n",
        &opts(&d),
    )
    .unwrap();
    let drop = &s.feeds[0];
    assert_eq!(drop.name, "drop");
    assert_eq!(drop.format, FeedFormat::SpamhausDrop);
    assert_eq!(drop.refresh, Duration::from_secs(12 * 3600));
    assert_eq!(drop.max_size, feeds::MAX_SIZE);
    assert_eq!(drop.protocol, Protocol::All);
    assert!(
        drop.ignore.contains("192.0.2.9".parse().unwrap()),
        "[defaults] ignoreip"
    );
    let local = &s.feeds[1];
    assert_eq!(local.source, FeedSource::Path("/etc/f2b/list".into()));
    assert_eq!((local.protocol, local.ports.len()), (Protocol::Tcp, 1));
    assert_eq!(s.enabled_feeds().count(), 1);

    let e = err(
        "[feed.a]\nurl = \"ftp://x/y\"\nrefresh = \"10s\"\n[feed.b]\nformat = \"csv\"\n\
         [feed.c]\nurl = \"http://x/\"\npath = \"/x\"\nmax_size = 0\nrefrsh = 5\n[feed.\"bad name\"]\n",
    );
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(
        lines,
        [
            "f2b.toml:2: feed a: url: \"ftp://x/y\" is not an http:// or https:// URL",
            "f2b.toml:3: feed a: refresh: must be at least 1m",
            "f2b.toml:4: feed b: needs a url (http/https) or a path",
            "f2b.toml:5: feed b: format: \"csv\" is not one of plain, spamhaus-drop, firehol",
            "f2b.toml:8: feed c: path: give either url or path, not both",
            "f2b.toml:9: feed c: max_size: must be a positive number",
            "f2b.toml:10: unknown key \"refrsh\" in [feed.c]; did you mean \"refresh\"?",
            "f2b.toml:11: feed name \"bad name\": use 1–32 characters of [A-Za-z0-9_-]",
        ],
        "{e}"
    );
}

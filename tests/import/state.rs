//! fail2ban's database → f2b's state: one written by fail2ban's own database code, and the
//! whole migration with fail2ban-server banning in a network namespace and f2bd restoring.

use super::*;

#[test]
fn database_written_by_fail2ban_becomes_f2b_state() {
    let Some((d, from)) = case("database_written_by_fail2ban_becomes_f2b_state", "done") else {
        return;
    };
    let db = d.path().join("fail2ban.sqlite3");
    let now_s = f2b::engine::now_us() / S;
    let st = Command::new(PYTHON)
        .arg(fixture("makedb.py"))
        .arg(&db)
        .arg(now_s.to_string())
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let state = d.path().join("state");
    let mut a = args(&from, &d.path().join("out"));
    a.db = Some(db);
    a.state_dir = Some(state.clone());
    let o = import::import(
        &a,
        &Options {
            now_us: now_s * S,
            ..opts(d.path())
        },
    )
    .unwrap();
    let imported = o.db.as_ref().unwrap();
    assert_eq!(
        (imported.active, imported.expired),
        (3, 1),
        "{}",
        o.report.render()
    );
    let store = f2b::store::Store::open(&state).unwrap();
    let snap = store.load(now_s * S).unwrap();
    let ban = |ip: &str| {
        snap.bans
            .iter()
            .find(|b| b.net.addr().to_string() == ip)
            .unwrap_or_else(|| panic!("{ip} in {:?}", snap.bans))
            .clone()
    };
    let b = ban("203.0.113.10");
    assert_eq!((snap.jail(b.jail), b.count, b.failures), ("sshd", 1, 5));
    assert_eq!(b.origin, f2b::store::Origin::Import);
    assert_eq!(b.end_us, Some((now_s - 60 + 3600) * S));
    assert_eq!(
        ban("203.0.113.11").end_us,
        None,
        "permanent stays permanent"
    );
    let v6 = ban("2001:db8::7");
    assert_eq!((v6.count, v6.end_us), (3, Some((now_s - 30 + 14_400) * S)));
    assert!(!snap
        .bans
        .iter()
        .any(|b| b.net.addr().to_string() == "203.0.113.12"));
    assert!(!snap.bans.iter().any(|b| snap.jail(b.jail) == "apache-auth"));
    // Three bans of 2001:db8::7 in the history: the next one is its fourth, as in fail2ban.
    let hist = |ip: &str| {
        snap.history
            .iter()
            .filter(|h| h.net.addr().to_string() == ip && snap.jail(h.jail) == "sshd")
            .count()
    };
    assert_eq!(hist("2001:db8::7"), 3);
    assert_eq!(hist("203.0.113.12"), 1);
    assert!(
        o.report.render().contains("jail apache-auth"),
        "{}",
        o.report.render()
    );
}

/// Polls `f` until it gives something, for at most `secs`.
fn wait_for<T>(secs: u64, f: impl FnMut() -> Option<T>) -> Option<T> {
    common::wait::poll_for(std::time::Duration::from_secs(secs), f)
}

/// The whole migration on real parts: fail2ban-server (Debian's) follows a journal in a
/// network namespace and bans an attacker with its nftables action; it is stopped, the setup
/// and its database are imported, and f2bd started on the imported state in another
/// namespace puts the ban fail2ban held into its own nftables table.
#[test]
fn fail2bans_ban_is_restored_by_f2bd() {
    let test = "fail2bans_ban_is_restored_by_f2bd";
    if !common::root_and_tools_or_skip(test) || !fail2ban_or_skip(test) {
        return;
    }
    if !Command::new(PYTHON)
        .args(["-c", "import systemd.journal"])
        .output()
        .is_ok_and(|o| o.status.success())
    {
        eprintln!("SKIP {test}: python3-systemd (fail2ban's systemd backend) is not installed");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let conf = dir.join("conf");
    copy_dir(Path::new(ETC), &conf);
    let journal = dir.join("journal");
    fs::write(
        conf.join("jail.local"),
        format!(
            "[DEFAULT]\nbanaction = nftables-multiport\nbanaction_allports = nftables-allports\n\
             [sshd]\nenabled = true\nbackend = systemd[journalpath={}]\nmaxretry = 3\n\
             findtime = 1h\nbantime = 2h\n",
            journal.display()
        ),
    )
    .unwrap();
    let db = dir.join("fail2ban.sqlite3");
    let sock = dir.join("fail2ban.sock");
    fs::write(
        conf.join("fail2ban.local"),
        format!(
            "[Definition]\nlogtarget = {}\nsocket = {}\npidfile = {}\ndbfile = {}\n",
            dir.join("fail2ban.log").display(),
            sock.display(),
            dir.join("fail2ban.pid").display(),
            db.display()
        ),
    )
    .unwrap();
    let t = f2b::engine::now_us() - 30 * S;
    append(
        &journal,
        "sshd.journal",
        (0..4)
            .map(|i| {
                ssh(
                    t + i * S,
                    &format!(
                        "Failed password for root from 203.0.113.50 port {} ssh2",
                        5000 + i
                    ),
                )
                .field("_COMM", "sshd")
            })
            .collect(),
    );
    let ns = common::NetNs::new();
    let mut server = ns.run(|| {
        Command::new("fail2ban-server")
            .args(["-f", "-x", "-c"])
            .arg(&conf)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("fail2ban-server")
    });
    let banned = wait_for(60, || {
        let c =
            rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .ok()?;
        c.query_row("SELECT ip FROM bips WHERE jail = 'sshd'", [], |r| {
            r.get::<_, String>(0)
        })
        .ok()
    });
    let log = fs::read_to_string(dir.join("fail2ban.log")).unwrap_or_default();
    // fail2ban's own firewall has it too (its action runs after the database write).
    let theirs = wait_for(20, || {
        let o = ns.sh_output("nft list ruleset");
        String::from_utf8_lossy(&o.stdout)
            .contains("203.0.113.50")
            .then_some(())
    });
    let _ = Command::new("fail2ban-client")
        .arg("-s")
        .arg(&sock)
        .arg("stop")
        .output();
    if wait_for(20, || server.try_wait().ok().flatten()).is_none() {
        let _ = server.kill();
        let _ = server.wait();
    }
    assert_eq!(
        banned.as_deref(),
        Some("203.0.113.50"),
        "fail2ban did not ban:\n{log}"
    );
    assert!(
        theirs.is_some(),
        "fail2ban's nftables action did not run:\n{log}"
    );

    let out = dir.join("out");
    let state = dir.join("state");
    let mut a = args(&conf, &out);
    a.db = Some(db);
    a.state_dir = Some(state.clone());
    let o = import::import(&a, &opts(dir)).unwrap();
    assert!(!o.report.failed(), "{}", o.report.render());
    assert_eq!(o.db.as_ref().unwrap().active, 1, "{}", o.report.render());

    let ns2 = common::NetNs::new();
    let f2bd = ns2.run(|| {
        Command::new(env!("CARGO_BIN_EXE_f2bd"))
            .args([
                "--firewall",
                "nftables",
                "--bus",
                "none",
                "--log",
                "stderr",
                "--no-follow",
                "--no-system-filters",
            ])
            .arg("--config")
            .arg(out.join("f2b.toml"))
            .arg("--state-dir")
            .arg(&state)
            .arg("--journal-dir")
            .arg(&journal)
            .output()
            .unwrap()
    });
    let err = String::from_utf8_lossy(&f2bd.stderr);
    assert!(f2bd.status.success(), "{err}");
    assert!(err.contains("restored 1 ban"), "{err}");
    let shown = ns2.run(|| {
        Command::new(env!("CARGO_BIN_EXE_f2b"))
            .args(["firewall", "show"])
            .output()
            .unwrap()
    });
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.contains("sshd: 1 banned") && shown.contains("203.0.113.50"),
        "{shown}"
    );
}

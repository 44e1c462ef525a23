//! Real web servers writing their OWN log files (Debian's /var/log/apache2/error.log and
//! access.log, /var/log/nginx/error.log and access.log forms, with their timestamps), attacked
//! over a veth pair from another network namespace; the files are then read the way
//! `f2b test FILTER FILE` reads them ([`f2b::tester`]) and every shipped web filter must find
//! the attacker, and only the attacker, as often as it attacked. And the real `f2bd` follows
//! nginx's files (`source = "file"`) through logrotate's rename + create and copytruncate,
//! banning in the server namespace (issue 13).
//!
//! The journal forms of the same servers are tested in tests/real_services.rs. Needs root,
//! apache2 and apache2-utils (htpasswd), nginx, logrotate and nft; skips with the reason
//! otherwise.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::net::SocketAddr;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::http::{basic, get};
use common::wait::poll_until;
use common::{root_or_skip, Pair};
use f2b::filter::library::FilterLibrary;
use f2b::jail::BanDecision;
use f2b::tester::{self, Report, TestHit, TestOptions, TestSource};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn missing(bins: &[&str]) -> Option<String> {
    bins.iter()
        .find(|b| !Path::new(b).exists())
        .map(|b| format!("{b} is not installed"))
}

/// A daemonised server, stopped (SIGTERM to the pid in its pid file) when dropped.
struct Server {
    pidfile: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let Some(pid) = fs::read_to_string(&self.pidfile)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
        else {
            return;
        };
        // SAFETY: kill has no memory preconditions; the pid is the server we started.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        poll_until(Duration::from_secs(10), || {
            !Path::new(&format!("/proc/{pid}")).exists()
        });
    }
}

/// Starts a daemonising server in the server namespace; returns its guard and its IPv4 and
/// IPv6 port-80 addresses once it accepts connections.
fn start(pair: &Pair, cmd: &str, pidfile: PathBuf) -> (Server, SocketAddr, SocketAddr) {
    pair.srv.sh(cmd);
    let server = Server { pidfile };
    let a4: SocketAddr = format!("{}:80", Pair::SRV4).parse().unwrap();
    let a6: SocketAddr = format!("[{}]:80", Pair::SRV6).parse().unwrap();
    assert!(
        poll_until(Duration::from_secs(10), || pair.srv.listening(80)),
        "nothing listens on port 80 after `{cmd}`"
    );
    (server, a4, a6)
}

/// Sends one raw HTTP request from the attacker address `src` and returns the status line.
fn http(pair: &Pair, src: &str, dst: SocketAddr, request: Vec<u8>) -> String {
    let src = SocketAddr::new(src.parse().unwrap(), 0);
    pair.atk.run(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let exchange = async {
                let sock = if dst.is_ipv4() {
                    tokio::net::TcpSocket::new_v4()?
                } else {
                    tokio::net::TcpSocket::new_v6()?
                };
                sock.bind(src)?;
                let mut s = sock.connect(dst).await?;
                s.write_all(&request).await?;
                let mut out = Vec::new();
                let _ = s.read_to_end(&mut out).await;
                io::Result::Ok(
                    String::from_utf8_lossy(&out)
                        .lines()
                        .next()
                        .unwrap_or_default()
                        .to_string(),
                )
            };
            match tokio::time::timeout(Duration::from_secs(10), exchange).await {
                Ok(Ok(status)) => status,
                Ok(Err(e)) => format!("error: {e}"),
                Err(_) => "error: timed out".to_string(),
            }
        })
    })
}

/// Sends each request from the attacker address of its family and waits until the server has
/// logged the last one (a GET of /index.html) in `DIR/logs/access.log`; returns the error and
/// access log paths.
fn attack(pair: &Pair, dir: &Path, requests: Vec<(SocketAddr, Vec<u8>)>) -> (PathBuf, PathBuf) {
    for (dst, req) in requests {
        let src = if dst.is_ipv4() {
            Pair::ATK4
        } else {
            Pair::ATK6
        };
        let status = http(pair, src, dst, req);
        assert!(status.starts_with("HTTP/1.1 "), "{status}");
    }
    let logs = dir.join("logs");
    wait_lines(&logs.join("access.log"), "\"GET /index.html ", 1);
    (logs.join("error.log"), logs.join("access.log"))
}

/// Waits until `path` holds at least `lines` lines containing `needle`.
fn wait_lines(path: &Path, needle: &str, lines: usize) {
    let count = || {
        fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(needle))
            .count()
    };
    assert!(
        poll_until(Duration::from_secs(10), || count() >= lines),
        "{}: fewer than {lines} lines with {needle:?}:\n{}",
        path.display(),
        fs::read_to_string(path).unwrap_or_default()
    );
}

struct Quiet;

impl Report for Quiet {
    fn hit(&mut self, _: &TestHit<'_>) -> io::Result<()> {
        Ok(())
    }
    fn ban(&mut self, _: &BanDecision) -> io::Result<()> {
        Ok(())
    }
    fn missed(&mut self, _: &str) -> io::Result<()> {
        Ok(())
    }
}

/// `f2b test FILTER[:MODE] FILE`: the failures counted per address.
fn failures(filter: &str, mode: Option<&str>, file: &Path) -> BTreeMap<String, u64> {
    static LIB: std::sync::OnceLock<FilterLibrary> = std::sync::OnceLock::new();
    let lib = LIB.get_or_init(|| FilterLibrary::load(&[]).expect("built-in filters load"));
    let def = lib.get(filter).expect("filter exists");
    let compiled = def.compile(mode).expect("filter compiles");
    let opts = TestOptions {
        all_units: false,
        show_missed: false,
        jail: None,
    };
    let src = TestSource::Text(file.to_path_buf());
    let sum = tester::run(def, &compiled, &src, &opts, &mut Quiet).expect("f2b test runs");
    sum.addresses
}

/// A filter, a mode, and the failures it must count per address.
type Want<'a> = (&'a str, Option<&'a str>, &'a [(&'a str, u64)]);

fn expect(file: &Path, want: &[Want<'_>]) {
    let text = fs::read_to_string(file).unwrap_or_default();
    for (filter, mode, counts) in want {
        let got = failures(filter, *mode, file);
        let want: BTreeMap<String, u64> = counts.iter().map(|(a, n)| (a.to_string(), *n)).collect();
        assert_eq!(
            got,
            want,
            "{filter}:{} over {}:\n{text}",
            mode.unwrap_or("-"),
            file.display()
        );
    }
}

fn scratch_dir(subdirs: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    for sub in subdirs {
        fs::create_dir_all(dir.path().join(sub)).unwrap();
    }
    dir
}

const APACHE_BINS: &[&str] = &[
    "/usr/sbin/apache2",
    "/usr/bin/htpasswd",
    "/usr/lib/apache2/modules/mod_cgi.so",
];

/// Apache in a scratch directory `D` (configuration `D/apache2.conf`), with its error and
/// access log files in `D/logs`, basic authentication on /private/, /denied/ and CGI scripts
/// in /cgi-bin/.
fn apache(pair: &Pair) -> (tempfile::TempDir, Server, SocketAddr, SocketAddr) {
    let dir = scratch_dir(&["www/private", "www/denied", "cgi-bin", "run", "logs"]);
    let d = dir.path();
    fs::write(d.join("www/index.html"), "hello\n").unwrap();
    fs::write(d.join("www/private/index.html"), "secret\n").unwrap();
    let out = Command::new("/usr/bin/htpasswd")
        .arg("-cbB")
        .arg(d.join("htpasswd"))
        .args(["alice", "right-password"])
        .output()
        .unwrap();
    assert!(out.status.success(), "htpasswd: {out:?}");
    fs::set_permissions(d.join("htpasswd"), fs::Permissions::from_mode(0o644)).unwrap();
    let m = "/usr/lib/apache2/modules";
    let (srv4, srv6) = (Pair::SRV4, Pair::SRV6);
    let conf = d.join("apache2.conf");
    let modules: String = [
        "mpm_prefork",
        "authn_core",
        "authn_file",
        "authz_core",
        "authz_user",
        "auth_basic",
        "alias",
        "cgi",
    ]
    .iter()
    .map(|n| format!("LoadModule {n}_module {m}/mod_{n}.so\n"))
    .collect();
    let p = d.display();
    let lines = [
        format!("ServerRoot {p}"),
        "ServerName www.example.org".into(),
        format!("PidFile {p}/run/httpd.pid"),
        format!("DefaultRuntimeDir {p}/run"),
        format!("Mutex file:{p}/run"),
        modules,
        "User www-data".into(),
        "Group www-data".into(),
        format!("Listen {srv4}:80"),
        format!("Listen [{srv6}]:80"),
        format!("ErrorLog {p}/logs/error.log"),
        "LogLevel info".into(),
        r#"LogFormat "%h %l %u %t \"%r\" %>s %O \"%{Referer}i\" \"%{User-Agent}i\"" combined"#
            .into(),
        format!("CustomLog {p}/logs/access.log combined"),
        format!("DocumentRoot {p}/www"),
        format!("<Directory {p}/www>\nRequire all granted\n</Directory>"),
        format!("<Location /private>\nAuthType Basic\nAuthName x\nAuthUserFile {p}/htpasswd"),
        "Require valid-user\n</Location>".into(),
        "<Location /denied>\nRequire all denied\n</Location>".into(),
        format!("ScriptAlias /cgi-bin/ {p}/cgi-bin/"),
        format!("<Directory {p}/cgi-bin>\nRequire all granted\n</Directory>"),
    ];
    fs::write(&conf, lines.join("\n") + "\n").unwrap();
    let (server, a4, a6) = start(
        pair,
        &format!("/usr/sbin/apache2 -f {} -k start", conf.display()),
        d.join("run/httpd.pid"),
    );
    (dir, server, a4, a6)
}

#[test]
fn apache_error_and_access_log_files_name_the_attacker() {
    let test = "apache_error_and_access_log_files_name_the_attacker";
    if !root_or_skip(test) {
        return;
    }
    if let Some(why) = missing(APACHE_BINS) {
        eprintln!("SKIP {test}: {why}");
        return;
    }
    let pair = Pair::new();
    let (dir, _server, a4, a6) = apache(&pair);
    let d = dir.path();
    let host = "www.example.org";
    let long_uri = format!("/{}", "a".repeat(9000));
    let (atk4, atk6) = (Pair::ATK4, Pair::ATK6);
    let requests: Vec<(SocketAddr, Vec<u8>)> = vec![
        (a4, get("/private/", host, &[&basic("alice", "wrong")])),
        (a6, get("/private/", host, &[&basic("nobody", "x")])),
        (a4, get("/denied/", host, &[])),
        (a4, get("/cgi-bin/php", host, &["Referer: http://x/"])),
        (a4, get("/cgi-bin/.%2e/.%2e/bin/sh", host, &[])),
        (a4, get(&long_uri, host, &[])),
        (
            a4,
            get(
                "/wp-login.php",
                host,
                &["User-Agent: sqlmap/1.7.2#stable (https://sqlmap.org)"],
            ),
        ),
        (a4, get("/index.html", host, &[])),
    ];
    let (error_log, access_log) = attack(&pair, d, requests);
    wait_lines(&error_log, "AH00128", 1);
    expect(
        &error_log,
        &[
            ("apache-auth", Some("normal"), &[(atk4, 1), (atk6, 1)]),
            ("apache-auth", Some("denied"), &[(atk4, 2), (atk6, 1)]),
            ("apache-noscript", None, &[(atk4, 2)]),
            ("apache-overflows", None, &[(atk4, 2)]),
            ("apache-botsearch", None, &[(atk4, 1)]),
        ],
    );
    expect(&access_log, &[("apache-badbots", None, &[(atk4, 1)])]);
}

/// nginx in a scratch directory `D`, with its error and access log files in `D/logs`, basic
/// authentication on /private/ and a request limit on /limited/.
fn nginx(pair: &Pair) -> (tempfile::TempDir, Server, SocketAddr, SocketAddr) {
    let dir = scratch_dir(&["www/private", "www/limited", "tmp", "logs"]);
    let d = dir.path();
    fs::write(d.join("www/index.html"), "hello\n").unwrap();
    fs::write(d.join("www/private/index.html"), "secret\n").unwrap();
    fs::write(d.join("www/limited/index.html"), "limited\n").unwrap();
    fs::write(d.join("htpasswd"), "alice:{PLAIN}right-password\n").unwrap();
    let (srv4, srv6) = (Pair::SRV4, Pair::SRV6);
    let conf = d.join("nginx.conf");
    let p = d.display();
    let temp = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
        .map(|t| format!("{t}_temp_path {p}/tmp/{t};"));
    let lines = [
        "worker_processes 1;".to_string(),
        format!("pid {p}/nginx.pid;"),
        format!("error_log {p}/logs/error.log info;"),
        "events { worker_connections 64; }".into(),
        "http {".into(),
        format!("access_log {p}/logs/access.log combined;"),
        temp.join("\n"),
        "limit_req_zone $binary_remote_addr zone=one:1m rate=1r/m;".into(),
        format!("server {{ listen {srv4}:80; listen [{srv6}]:80; root {p}/www;"),
        format!("location /private/ {{ auth_basic x; auth_basic_user_file {p}/htpasswd; }}"),
        "location /limited/ { limit_req zone=one burst=1 nodelay; }".into(),
        "} }".into(),
    ];
    fs::write(&conf, lines.join("\n") + "\n").unwrap();
    let (server, a4, a6) = start(
        pair,
        &format!(
            "/usr/sbin/nginx -c {} -e {}",
            conf.display(),
            d.join("logs/startup.log").display()
        ),
        d.join("nginx.pid"),
    );
    (dir, server, a4, a6)
}

#[test]
fn nginx_error_and_access_log_files_name_the_attacker() {
    let test = "nginx_error_and_access_log_files_name_the_attacker";
    if !root_or_skip(test) {
        return;
    }
    if let Some(why) = missing(&["/usr/sbin/nginx"]) {
        eprintln!("SKIP {test}: {why}");
        return;
    }
    let pair = Pair::new();
    let (dir, _server, a4, a6) = nginx(&pair);
    let d = dir.path();
    let host = "www.example.org";
    let (atk4, atk6) = (Pair::ATK4, Pair::ATK6);
    let mut requests: Vec<(SocketAddr, Vec<u8>)> = vec![
        (a4, get("/private/", host, &[&basic("alice", "wrong")])),
        (a6, get("/private/", host, &[&basic("nobody", "x")])),
        // a name with a quote and client text (nginx cuts it at the ':')
        (
            a4,
            get("/private/", host, &[&basic("x\", client: 10.9.8.7", "y")]),
        ),
        (a4, get("/private/", host, &[])),
        (a4, get("/wp-login.php", host, &[])),
        (a4, b"\x16\x03\x01\x00\x05hello\r\n\r\n".to_vec()),
    ];
    for _ in 0..3 {
        requests.push((a4, get("/limited/", host, &[])));
    }
    requests.push((a4, get("/index.html", host, &[])));
    let (error_log, access_log) = attack(&pair, d, requests);
    wait_lines(&error_log, "limiting requests", 1);
    expect(
        &error_log,
        &[
            ("nginx-http-auth", Some("normal"), &[(atk4, 2), (atk6, 1)]),
            (
                "nginx-http-auth",
                Some("aggressive"),
                &[(atk4, 3), (atk6, 1)],
            ),
            ("nginx-limit-req", Some("normal"), &[(atk4, 1)]),
            ("nginx-botsearch", Some("errorlog"), &[(atk4, 1)]),
            ("nginx-botsearch", Some("normal"), &[]),
        ],
    );
    expect(
        &access_log,
        &[
            ("nginx-botsearch", Some("normal"), &[(atk4, 1)]),
            ("nginx-bad-request", None, &[(atk4, 1)]),
        ],
    );
}

/// f2bd follows nginx's own log files (`source = "file"`) and enforces in the server
/// namespace: a basic-auth brute force in the error log, half before and half after a logrotate
/// rename + create with nginx reopening its logs (USR1, as Debian's /etc/logrotate.d/nginx
/// does), bans; scanner requests in the access log after a logrotate copytruncate ban too; every
/// failure counts once.
#[test]
fn f2bd_follows_nginx_log_files_through_logrotate_and_bans() {
    let test = "f2bd_follows_nginx_log_files_through_logrotate_and_bans";
    if !common::root_and_tools_or_skip(test) {
        return;
    }
    if let Some(why) = missing(&["/usr/sbin/nginx", "/usr/sbin/logrotate"]) {
        eprintln!("SKIP {test}: {why}");
        return;
    }
    let pair = Pair::new();
    let (dir, _server, a4, a6) = nginx(&pair);
    let d = dir.path();
    let logs = d.join("logs");
    let f2bd = f2bd_with_file_jails(
        &pair,
        &[
            ("nginx-http-auth", &logs.join("error.log"), 3),
            ("nginx-botsearch", &logs.join("*.log"), 2),
        ],
    );
    two_auth_failures(&pair, d, &f2bd, a4);
    // logrotate as Debian configures it for nginx: rename + create, then USR1 to reopen.
    let pid = d.join("nginx.pid");
    let reopen = format!("kill -USR1 $(cat {})", pid.display());
    rotate(d, "create 0640 root root", &reopen);
    wait_reopened(&pid, &logs.join("error.log.1"));
    // The third failure, written to the new file, bans.
    http(&pair, Pair::ATK4, a4, wrong_password());
    wait_lines(&logs.join("error.log"), "password mismatch", 1);
    wait_banned(&pair, &f2bd, Pair::ATK4, Pair::SRV4);
    failures_counted(&f2bd, 3);
    // copytruncate: the files keep their inodes and start again from nothing; the copies in
    // *.log.1 hold what was read already.
    rotate(d, "copytruncate", &reopen);
    assert!(logs.join("error.log.2").exists());
    http(&pair, Pair::ATK6, a6, get("/wp-login.php", HOST, &[]));
    http(&pair, Pair::ATK6, a6, get("/phpmyadmin/", HOST, &[]));
    wait_banned(&pair, &f2bd, Pair::ATK6, Pair::SRV6);
    failures_counted(&f2bd, 5);
    f2bd.stop();
}

const HOST: &str = "www.example.org";

/// A request for /private/ with alice's wrong password.
fn wrong_password() -> Vec<u8> {
    get("/private/", HOST, &[&basic("alice", "wrong")])
}

/// f2bd enforcing in the server namespace, with file jails (name, logpath, maxretry) on port 80.
fn f2bd_with_file_jails(pair: &Pair, jails: &[(&str, &Path, u32)]) -> common::F2bd {
    let config: String = (jails.iter())
        .map(|(name, path, maxretry)| {
            format!(
                "[jail.{name}]\nenabled = true\nsource = \"file\"\nlogpath = [\"{}\"]\n\
                 maxretry = {maxretry}\nbantime = \"1h\"\nports = [80]\n",
                path.display()
            )
        })
        .collect();
    common::F2bd::with_config(&config)
        .firewall("nftables")
        .netns(&pair.srv)
        .start()
}

/// Two wrong passwords from the IPv4 attacker (and a request that shows they are logged):
/// counted by f2bd, not banned yet.
fn two_auth_failures(pair: &Pair, d: &Path, f2bd: &common::F2bd, a4: SocketAddr) {
    let index = get("/index.html", HOST, &[]);
    attack(
        pair,
        d,
        vec![(a4, wrong_password()), (a4, wrong_password()), (a4, index)],
    );
    failures_counted(f2bd, 2);
    assert_eq!(
        common::connect(&pair.atk, Pair::ATK4, Pair::SRV4, 80),
        common::Outcome::Connected,
        "banned after two failures:\n{}",
        f2bd.log()
    );
}

/// The real logrotate on `D/logs/*.log` with the rotation `how` (`create …` or
/// `copytruncate`), then `reopen` (a shell command: the server's postrotate script).
fn rotate(d: &Path, how: &str, reopen: &str) {
    let conf = format!(
        "{}/*.log {{\n  rotate 5\n  {how}\n  sharedscripts\n  postrotate\n    {reopen}\n  \
         endscript\n}}\n",
        d.join("logs").display(),
    );
    let name = how.split_whitespace().next().unwrap_or("rotate");
    common::logrotate::force(d, name, &conf);
}

/// f2bd follows Apache's own log files (`source = "file"`) and enforces in the server
/// namespace: a basic-auth brute force in the error log across a logrotate rename + create
/// followed by a graceful restart (as Debian's /etc/logrotate.d/apache2 does it) bans; a bad
/// bot's request in the access log after a copytruncate bans too; every failure counts once.
#[test]
fn f2bd_follows_apache_log_files_through_logrotate_and_bans() {
    let test = "f2bd_follows_apache_log_files_through_logrotate_and_bans";
    if !common::root_and_tools_or_skip(test) {
        return;
    }
    let bins = [APACHE_BINS, &["/usr/sbin/logrotate"]].concat();
    if let Some(why) = missing(&bins) {
        eprintln!("SKIP {test}: {why}");
        return;
    }
    let pair = Pair::new();
    let (dir, _server, a4, a6) = apache(&pair);
    let d = dir.path();
    let logs = d.join("logs");
    let f2bd = f2bd_with_file_jails(
        &pair,
        &[
            ("apache-auth", &logs.join("error.log"), 3),
            ("apache-badbots", &logs.join("access.log"), 1),
        ],
    );
    two_auth_failures(&pair, d, &f2bd, a4);
    let graceful = format!(
        "/usr/sbin/apache2 -f {} -k graceful",
        d.join("apache2.conf").display()
    );
    rotate(d, "create 0640 root root", &graceful);
    wait_reopened(&d.join("run/httpd.pid"), &logs.join("error.log.1"));
    http(&pair, Pair::ATK4, a4, wrong_password());
    wait_lines(&logs.join("error.log"), "AH01617", 1);
    wait_banned(&pair, &f2bd, Pair::ATK4, Pair::SRV4);
    failures_counted(&f2bd, 3);
    rotate(d, "copytruncate", &graceful);
    assert!(logs.join("access.log.2").exists());
    let bot = ["User-Agent: sqlmap/1.7.2#stable (https://sqlmap.org)"];
    http(&pair, Pair::ATK6, a6, get("/index.html", HOST, &bot));
    wait_banned(&pair, &f2bd, Pair::ATK6, Pair::SRV6);
    failures_counted(&f2bd, 4);
    f2bd.stop();
}

/// Waits until no process of the server whose master's pid is in `pidfile` has `rotated` open
/// (nginx reopens its logs on USR1, the master and then each worker; Apache on a graceful
/// restart, with new children).
fn wait_reopened(pidfile: &Path, rotated: &Path) {
    let master = fs::read_to_string(pidfile).unwrap().trim().to_string();
    let holds_rotated = || {
        let children = fs::read_to_string(format!("/proc/{master}/task/{master}/children"))
            .unwrap_or_default();
        let pids = std::iter::once(master.as_str()).chain(children.split_whitespace());
        pids.flat_map(|p| fs::read_dir(format!("/proc/{p}/fd")).into_iter().flatten())
            .flatten()
            .any(|fd| fs::read_link(fd.path()).is_ok_and(|l| l == rotated))
    };
    assert!(
        poll_until(Duration::from_secs(10), || !holds_rotated()),
        "the server still writes to {} after it was told to reopen its logs",
        rotated.display()
    );
}

/// Waits until f2bd's STATUS= counts `n` failures over its jails.
fn failures_counted(f2bd: &common::F2bd, n: u64) {
    f2bd.wait_status(Duration::from_secs(5), &format!("{n} failures"), |s| {
        s.contains(&format!(" {n} failures"))
    });
}

/// Waits until `src`'s connects to port 80 of `dst` time out (banned by `f2bd`).
fn wait_banned(pair: &Pair, f2bd: &common::F2bd, src: &str, dst: &str) {
    let blocked = || common::connect(&pair.atk, src, dst, 80) == common::Outcome::TimedOut;
    assert!(
        poll_until(Duration::from_secs(5), blocked),
        "{src} not banned:\n{}",
        f2bd.log()
    );
}

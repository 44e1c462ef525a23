//! Apache httpd (filters apache-auth, apache-noscript, apache-overflows, apache-botsearch,
//! apache-badbots): error log to syslog, access log piped to logger(1), attacked over HTTP.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use crate::clients::{basic, server, Act};
use crate::common::journald::{Entry, Service};
use crate::common::Pair;
use crate::judge::Want::Exactly;
use crate::{Attack, Done, Lab, ServiceTest};

pub const APACHE: ServiceTest = ServiceTest {
    name: "apache",
    unit: "apache2.service",
    needs: &[
        "/usr/sbin/apache2",
        "/usr/bin/htpasswd",
        "/usr/lib/apache2/modules/mod_auth_basic.so",
        "/usr/bin/logger",
    ],
    filters: &[
        "apache-auth",
        "apache-noscript",
        "apache-overflows",
        "apache-botsearch",
        "apache-badbots",
    ],
    ports: &[80],
    start,
    // Its workers live on; each request ends with its access log line.
    done: Done::EachConnectionEndsWith(access_line),
    unlisted: Exactly(0),
    attacks,
};

fn access_line(e: &Entry) -> bool {
    e.ident == "apache2-access"
}

fn start(lab: &Lab) -> Service {
    for sub in ["www/private", "www/denied", "cgi-bin", "run"] {
        std::fs::create_dir_all(lab.path(sub)).unwrap();
    }
    std::fs::write(lab.path("www/index.html"), "hello\n").unwrap();
    std::fs::write(lab.path("www/private/index.html"), "secret\n").unwrap();
    let out = Command::new("htpasswd")
        .arg("-cbB")
        .arg(lab.path("htpasswd"))
        .args(["alice", "right-password"])
        .output()
        .expect("htpasswd");
    assert!(out.status.success(), "htpasswd: {out:?}");
    std::fs::set_permissions(lab.path("htpasswd"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let m = "/usr/lib/apache2/modules";
    let conf = lab.path("apache2.conf");
    std::fs::write(
        &conf,
        format!(
            "ServerRoot {p}\nServerName www.example.org\nPidFile {p}/run/httpd.pid\n\
             DefaultRuntimeDir {p}/run\nMutex file:{p}/run\n\
             LoadModule mpm_prefork_module {m}/mod_mpm_prefork.so\n\
             LoadModule authn_core_module {m}/mod_authn_core.so\n\
             LoadModule authn_file_module {m}/mod_authn_file.so\n\
             LoadModule authz_core_module {m}/mod_authz_core.so\n\
             LoadModule authz_user_module {m}/mod_authz_user.so\n\
             LoadModule auth_basic_module {m}/mod_auth_basic.so\n\
             LoadModule alias_module {m}/mod_alias.so\n\
             LoadModule cgi_module {m}/mod_cgi.so\n\
             User www-data\nGroup www-data\nListen {}:80\nListen [{}]:80\n\
             ErrorLog syslog:local1\nLogLevel info\n\
             LogFormat \"%h %l %u %t \\\"%r\\\" %>s %O \\\"%{{Referer}}i\\\" \\\"%{{User-Agent}}i\\\"\" combined\n\
             CustomLog \"|/usr/bin/logger -t apache2-access -p local1.info\" combined\n\
             DocumentRoot {p}/www\n<Directory {p}/www>\n  Require all granted\n</Directory>\n\
             <Location /private>\n  AuthType Basic\n  AuthName x\n  AuthUserFile {p}/htpasswd\n\
               Require valid-user\n</Location>\n\
             <Location /denied>\n  Require all denied\n</Location>\n\
             ScriptAlias /cgi-bin/ {p}/cgi-bin/\n<Directory {p}/cgi-bin>\n  Require all granted\n</Directory>\n",
            Pair::SRV4,
            Pair::SRV6,
            p = lab.dir().display()
        ),
    )
    .unwrap();
    lab.start(
        "/usr/sbin/apache2",
        &[
            "-f".into(),
            conf.display().to_string(),
            "-DFOREGROUND".into(),
        ],
    )
}

fn attacks(_: &Lab) -> Vec<Attack> {
    let (srv4, srv6) = server(80);
    let auth = [
        ("apache-auth/normal", Exactly(1)),
        ("apache-auth/denied", Exactly(1)),
        ("apache-auth/aggressive", Exactly(1)),
    ];
    vec![
        Attack::new(
            "right password",
            Pair::ATK4,
            Act::get(
                srv4,
                "/private/index.html",
                &[&basic("alice", "right-password")],
                " 200 ",
            ),
            &[],
        ),
        Attack::new(
            "wrong password",
            Pair::ATK4,
            Act::get(
                srv4,
                "/private/index.html",
                &[&basic("alice", "wrong")],
                " 401 ",
            ),
            &auth,
        ),
        Attack::new(
            "unknown user with an address, over IPv6",
            Pair::ATK6,
            Act::get(
                srv6,
                "/private/index.html",
                &[&basic("bob [client 10.9.8.7:1]", "x")],
                " 401 ",
            ),
            &auth,
        ),
        Attack::new(
            "denied by configuration",
            Pair::ATK4,
            Act::get(srv4, "/denied/x", &[], " 403 "),
            // fail2ban's normal counts it; f2b's normal is authentication failures only.
            &[
                ("apache-auth/denied", Exactly(1)),
                ("apache-auth/aggressive", Exactly(1)),
            ],
        ),
        Attack::new(
            "missing CGI script",
            Pair::ATK4,
            Act::get(srv4, "/cgi-bin/php", &[], " 404 "),
            &[("apache-noscript/(default)", Exactly(1))],
        ),
        // A .php that does not exist is also a noscript hit.
        Attack::new(
            "scanner path",
            Pair::ATK4,
            Act::get(srv4, "/wp-login.php", &[], " 404 "),
            &[
                ("apache-botsearch/(default)", Exactly(1)),
                ("apache-noscript/(default)", Exactly(1)),
            ],
        ),
        Attack::new(
            "URI too long",
            Pair::ATK4,
            Act::get(srv4, &format!("/{}", "a".repeat(9000)), &[], " 414 "),
            &[("apache-overflows/(default)", Exactly(1))],
        ),
        Attack::new(
            "scanner user agent",
            Pair::ATK4,
            Act::get(
                srv4,
                "/index.html",
                &["User-Agent: sqlmap/1.7.2#stable (https://sqlmap.org)"],
                " 200 ",
            ),
            &[("apache-badbots/(default)", Exactly(1))],
        ),
        Attack::new(
            "ordinary 404",
            Pair::ATK4,
            Act::get(srv4, "/missing.png", &[], " 404 "),
            &[],
        ),
    ]
}

//! nginx (filters nginx-http-auth, nginx-limit-req, nginx-bad-request, nginx-botsearch),
//! logging its error and access logs to syslog, attacked over HTTP.

use crate::clients::{basic, get, server, Act};
use crate::common::journald::{Entry, Service};
use crate::common::Pair;
use crate::judge::Want::Exactly;
use crate::{Attack, Done, Lab, ServiceTest};

pub const NGINX: ServiceTest = ServiceTest {
    name: "nginx",
    unit: "nginx.service",
    needs: &["/usr/sbin/nginx"],
    filters: &[
        "nginx-http-auth",
        "nginx-limit-req",
        "nginx-bad-request",
        "nginx-botsearch",
    ],
    ports: &[80],
    start,
    // Its workers live on; each request ends with its access log line (written before the
    // connection is closed).
    done: Done::EachConnectionEndsWith(access_line),
    unlisted: Exactly(0),
    attacks,
};

/// "ADDRESS - USER [time] "request" status …" (the combined format).
fn access_line(e: &Entry) -> bool {
    e.message
        .split_once(" - ")
        .is_some_and(|(a, _)| a.parse::<std::net::IpAddr>().is_ok())
}

fn start(lab: &Lab) -> Service {
    for sub in ["www/private", "www/limited", "tmp"] {
        std::fs::create_dir_all(lab.path(sub)).unwrap();
    }
    std::fs::write(lab.path("www/index.html"), "hello\n").unwrap();
    std::fs::write(lab.path("www/private/index.html"), "secret\n").unwrap();
    std::fs::write(lab.path("www/limited/index.html"), "limited\n").unwrap();
    std::fs::write(lab.path("htpasswd"), "alice:{PLAIN}right-password\n").unwrap();
    let conf = lab.path("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "worker_processes 1;\ndaemon off;\npid {p}/nginx.pid;\n\
             error_log syslog:server=unix:/dev/log,nohostname info;\nevents {{ worker_connections 64; }}\n\
             http {{\n  access_log syslog:server=unix:/dev/log,nohostname combined;\n\
               client_body_temp_path {p}/tmp/body;\n  proxy_temp_path {p}/tmp/proxy;\n\
               fastcgi_temp_path {p}/tmp/fcgi;\n  uwsgi_temp_path {p}/tmp/uwsgi;\n\
               scgi_temp_path {p}/tmp/scgi;\n\
               limit_req_zone $binary_remote_addr zone=one:1m rate=1r/m;\n\
               server {{\n    listen {}:80;\n    listen [{}]:80;\n    root {p}/www;\n\
                 location /private/ {{ auth_basic \"x\"; auth_basic_user_file {p}/htpasswd; }}\n\
                 location /limited/ {{ limit_req zone=one burst=1 nodelay; }}\n  }}\n}}\n",
            Pair::SRV4,
            Pair::SRV6,
            p = lab.dir().display()
        ),
    )
    .unwrap();
    lab.start(
        "/usr/sbin/nginx",
        &[
            "-c".into(),
            conf.display().to_string(),
            "-e".into(),
            lab.path("startup-error.log").display().to_string(),
        ],
    )
}

fn attacks(_: &Lab) -> Vec<Attack> {
    let (srv4, srv6) = server(80);
    let auth = [
        ("nginx-http-auth/normal", Exactly(1)),
        ("nginx-http-auth/aggressive", Exactly(1)),
    ];
    vec![
        Attack::new(
            "right password",
            Pair::ATK4,
            Act::get(
                srv4,
                "/private/",
                &[&basic("alice", "right-password")],
                " 200 ",
            ),
            &[],
        ),
        Attack::new(
            "wrong password",
            Pair::ATK4,
            Act::get(srv4, "/private/", &[&basic("alice", "wrong")], " 401 "),
            &auth,
        ),
        Attack::new(
            "unknown user over IPv6",
            Pair::ATK6,
            Act::get(srv6, "/private/", &[&basic("bob", "x")], " 401 "),
            &auth,
        ),
        // A user name that tries to put another address before the real one.
        Attack::new(
            "user name with an address",
            Pair::ATK4,
            Act::get(
                srv4,
                "/private/?client:%2010.9.8.7,",
                &[
                    &basic("x\", client: 10.9.8.7, server: y", "x"),
                    "Referer: client: 10.9.8.7, server: z",
                ],
                " 401 ",
            ),
            // nginx cuts the Basic user name at ':' (`x", client`): the address is the real
            // client's, counted once.
            &auth,
        ),
        Attack::new(
            "no credentials",
            Pair::ATK4,
            Act::get(srv4, "/private/", &[], " 401 "),
            &[("nginx-http-auth/aggressive", Exactly(1))],
        ),
        Attack::new(
            "rate limit",
            Pair::ATK4,
            Act::Http {
                to: srv4,
                requests: vec![get("/limited/", &[]); 3],
                status: " 503 ",
            },
            &[
                ("nginx-limit-req/normal", Exactly(1)),
                ("nginx-limit-req/aggressive", Exactly(1)),
            ],
        ),
        Attack::new(
            "bad request",
            Pair::ATK4,
            Act::Http {
                to: srv4,
                requests: vec![b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n".to_vec()],
                status: " 400 ",
            },
            &[("nginx-bad-request/(default)", Exactly(1))],
        ),
        // From the access log (the error log's twin line is not used: see the filter).
        Attack::new(
            "scanner path",
            Pair::ATK4,
            Act::get(srv4, "/wp-login.php", &[], " 404 "),
            // The journal gets both the access and the error log line: normal reads the access
            // line, errorlog the error line, aggressive both.
            &[
                ("nginx-botsearch/normal", Exactly(1)),
                ("nginx-botsearch/errorlog", Exactly(1)),
                ("nginx-botsearch/aggressive", Exactly(2)),
            ],
        ),
        Attack::new(
            "ordinary 404",
            Pair::ATK4,
            Act::get(srv4, "/missing.png", &[], " 404 "),
            &[],
        ),
    ]
}

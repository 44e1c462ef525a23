//! The act step: what the attacker does from its namespace, with real clients (ssh, sshpass)
//! or by speaking the protocol over a socket, and the check of what the service answered.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

pub use crate::common::http::{self, basic};
use crate::common::Pair;

/// One attempt from the attacker's side.
pub enum Act {
    /// `ssh ARGS` (with the options of [`SSH_OPTS`]); `password` is given once by sshpass.
    /// `login`: the login must succeed (otherwise its outcome does not matter).
    Ssh {
        args: Vec<String>,
        password: Option<&'static str>,
        login: bool,
    },
    /// Raw HTTP requests, one connection each; the last answer's status line must contain
    /// `status` (e.g. " 401 ").
    Http {
        to: SocketAddr,
        requests: Vec<Vec<u8>>,
        status: &'static str,
    },
    /// One IMAP connection: LOGIN with each password in turn, then LOGOUT; every tagged answer
    /// must contain `answer` (" OK " or " NO ").
    Imap {
        to: SocketAddr,
        user: &'static str,
        passwords: &'static [&'static str],
        answer: &'static str,
    },
    /// One FTP login; the reply to PASS must start with `reply`.
    Ftp {
        to: SocketAddr,
        user: &'static str,
        pass: &'static str,
        reply: &'static str,
    },
    /// A raw TCP probe of an SSH server.
    Probe { to: SocketAddr, probe: Probe },
}

/// Raw TCP probes of an SSH port.
#[derive(Clone, Copy)]
pub enum Probe {
    /// Read the banner, send an HTTP request, read until the server hangs up.
    HttpRequest,
    /// Connect and close at once.
    ConnectAndClose,
    /// A valid identification string, then a packet of garbage.
    BannerThenGarbage,
}

/// ssh options for a test client: no host key checks, no config, no agent prompts.
pub const SSH_OPTS: &[&str] = &[
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "GlobalKnownHostsFile=/dev/null",
    "-o",
    "LogLevel=ERROR",
    "-o",
    "ConnectTimeout=10",
    "-F",
    "/dev/null",
];

/// The server's IPv4 and IPv6 socket addresses for `port`.
pub fn server(port: u16) -> (SocketAddr, SocketAddr) {
    (
        SocketAddr::new(Pair::SRV4.parse().unwrap(), port),
        SocketAddr::new(Pair::SRV6.parse().unwrap(), port),
    )
}

impl Act {
    /// One GET request (see [`get`]) whose status line must contain `status`.
    pub fn get(to: SocketAddr, path: &str, headers: &[&str], status: &'static str) -> Act {
        Act::Http {
            to,
            requests: vec![get(path, headers)],
            status,
        }
    }

    /// Does it; `Ok(connections made)`, or what was wrong with the service's answer.
    pub fn run(&self, net: &Pair) -> Result<usize, String> {
        match self {
            Act::Ssh {
                args,
                password,
                login,
            } => {
                let mut c = Command::new("timeout");
                c.arg("60");
                if let Some(p) = password {
                    c.args(["sshpass", "-p", p]);
                }
                c.arg("ssh").args(SSH_OPTS).args(args);
                let out = net.atk.output(&mut c);
                if std::env::var_os("F2B_TEST_VERBOSE").is_some() {
                    eprintln!(
                        "  client {args:?}: {}\n{}",
                        out.status,
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
                if *login && !out.status.success() {
                    return Err(format!(
                        "the login must succeed: ssh {}: {}",
                        out.status,
                        String::from_utf8_lossy(&out.stderr)
                    ));
                }
                Ok(1)
            }
            Act::Http {
                to,
                requests,
                status,
            } => {
                let mut last = String::new();
                for r in requests {
                    last = net.atk.run(|| http(*to, r))?;
                }
                if !last.contains(status) {
                    return Err(format!("HTTP status {last:?}, expected {status:?}"));
                }
                Ok(requests.len())
            }
            Act::Imap {
                to,
                user,
                passwords,
                answer,
            } => {
                let answers = net.atk.run(|| imap(*to, user, passwords))?;
                if answers.len() != passwords.len() || !answers.iter().all(|a| a.contains(answer)) {
                    return Err(format!("IMAP answers {answers:?}, expected {answer:?}"));
                }
                Ok(1)
            }
            Act::Ftp {
                to,
                user,
                pass,
                reply,
            } => {
                let r = net.atk.run(|| ftp(*to, user, pass))?;
                if !r.starts_with(reply) {
                    return Err(format!("FTP reply to PASS {r:?}, expected {reply}"));
                }
                Ok(1)
            }
            Act::Probe { to, probe } => {
                net.atk.run(|| tcp_probe(*to, *probe))?;
                Ok(1)
            }
        }
    }
}

fn connect(to: SocketAddr) -> Result<TcpStream, String> {
    let s = TcpStream::connect_timeout(&to, Duration::from_secs(5))
        .map_err(|e| format!("connect {to}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    Ok(s)
}

/// Reads until the peer closes (or an error, or the read timeout).
fn read_to_close(s: &mut impl Read) {
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
}

/// Sends one raw HTTP request; returns the status line once the server closed.
fn http(to: SocketAddr, request: &[u8]) -> Result<String, String> {
    let mut s = connect(to)?;
    s.write_all(request).map_err(|e| format!("send: {e}"))?;
    let mut r = BufReader::new(s);
    let mut status = String::new();
    let _ = r.read_line(&mut status);
    read_to_close(&mut r);
    Ok(status.trim_end().to_string())
}

/// A GET request for `path` to www.example.org (see [`http::get`]).
pub fn get(path: &str, headers: &[&str]) -> Vec<u8> {
    http::get(path, "www.example.org", headers)
}

/// One IMAP session: LOGIN with each password in turn, then LOGOUT, read until the server
/// closes. Returns the tagged answers to the LOGINs.
fn imap(to: SocketAddr, user: &str, passwords: &[&str]) -> Result<Vec<String>, String> {
    let s = connect(to)?;
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line)
        .map_err(|e| format!("greeting: {e}"))?;
    if !line.starts_with("* OK") {
        return Err(format!("IMAP greeting {line:?}"));
    }
    let quote = |t: &str| format!("\"{}\"", t.replace('\\', "\\\\").replace('"', "\\\""));
    let mut answers = Vec::new();
    for (i, pw) in passwords.iter().enumerate() {
        write!(w, "a{i} LOGIN {} {}\r\n", quote(user), quote(pw)).map_err(|e| e.to_string())?;
        loop {
            line.clear();
            if r.read_line(&mut line).map_err(|e| format!("LOGIN: {e}"))? == 0 {
                break;
            }
            if line.starts_with(&format!("a{i} ")) {
                answers.push(line.trim_end().to_string());
                break;
            }
        }
    }
    let _ = write!(w, "z LOGOUT\r\n");
    read_to_close(&mut r);
    Ok(answers)
}

/// One FTP login; returns the reply to PASS.
fn ftp(to: SocketAddr, user: &str, pass: &str) -> Result<String, String> {
    let s = connect(to)?;
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    // Multi-line replies end with "NNN " (a space after the code).
    let mut reply = || {
        let mut line = String::new();
        loop {
            line.clear();
            match r.read_line(&mut line) {
                Ok(0) | Err(_) => return String::new(),
                Ok(_) if line.len() >= 4 && line.as_bytes()[3] == b' ' => {
                    return line.trim_end().to_string()
                }
                Ok(_) => {}
            }
        }
    };
    let greeting = reply();
    if !greeting.starts_with("220") {
        return Err(format!("FTP greeting {greeting:?}"));
    }
    write!(w, "USER {user}\r\n").map_err(|e| e.to_string())?;
    let u = reply();
    if !(u.starts_with("331") || u.starts_with("230")) {
        return Err(format!("FTP reply to USER {u:?}"));
    }
    write!(w, "PASS {pass}\r\n").map_err(|e| e.to_string())?;
    let p = reply();
    let _ = write!(w, "QUIT\r\n");
    let _ = reply();
    Ok(p)
}

fn tcp_probe(to: SocketAddr, probe: Probe) -> Result<(), String> {
    let mut s = connect(to)?;
    let mut buf = [0u8; 256];
    let send = |s: &mut TcpStream, b: &[u8]| s.write_all(b).map_err(|e| format!("send: {e}"));
    match probe {
        Probe::ConnectAndClose => {}
        Probe::HttpRequest => {
            let _ = s.read(&mut buf);
            send(&mut s, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")?;
            read_to_close(&mut s);
        }
        Probe::BannerThenGarbage => {
            let _ = s.read(&mut buf);
            send(&mut s, b"SSH-2.0-probe\r\n")?;
            // The server's KEXINIT: it has taken our identification string.
            let _ = s.read(&mut buf);
            let mut junk = vec![0u8, 0, 0xff, 0xff];
            junk.extend((0..64u8).map(|i| i.wrapping_mul(37)));
            send(&mut s, &junk)?;
            read_to_close(&mut s);
        }
    }
    Ok(())
}

//! Prometheus metrics on a socket handed over by systemd (socket activation).
//!
//! f2bd never opens a listening socket of its own: when `f2b-metrics.socket` is enabled, systemd
//! binds it and passes it to f2bd (`LISTEN_FDS`, `LISTEN_PID`, `LISTEN_FDNAMES`, see
//! sd_listen_fds(3)); f2bd accepts on it and answers `GET /metrics` (HTTP/1.0, one request per
//! connection) in the Prometheus text exposition format (version 0.0.4). Without the socket unit
//! nothing listens. TCP (IPv4, IPv6) and Unix stream sockets are accepted.
//!
//! The numbers come from the engine through one command ([`crate::engine::Command::Metrics`]),
//! answered with a [`Snapshot`]; rendering is pure ([`render`]) and tested without sockets.
//!
//! Exposed metrics (all cumulative counters count since f2bd started):
//!
//! | metric | type | labels |
//! | --- | --- | --- |
//! | `f2b_up` | gauge (1) | `version` |
//! | `f2b_jail_enabled` | gauge | `jail` |
//! | `f2b_jail_failures_total` | counter | `jail` |
//! | `f2b_jail_bans_total` | counter | `jail` |
//! | `f2b_jail_banned` | gauge: addresses banned now | `jail` |
//! | `f2b_jail_failing` | gauge: addresses with failures in their window now | `jail` |
//! | `f2b_filter_entries_seen_total` | counter: entries routed to the jail's filter | `jail`, `filter` |
//! | `f2b_filter_entries_matched_total` | counter: failures with an address | `jail`, `filter` |
//! | `f2b_filter_entries_ignored_total` | counter: failregex hits cancelled by an ignoreregex | `jail`, `filter` |
//! | `f2b_filter_entries_no_address_total` | counter: failregex hits without a usable address | `jail`, `filter` |
//! | `f2b_filter_last_match_timestamp_seconds` | gauge: journal time of the newest match, 0 = none | `jail`, `filter` |
//! | `f2b_file_lines_read_total` | counter: lines read from a log file (file jails) | `file` |
//! | `f2b_file_lines_cut_total` | counter: lines longer than 16 KiB, cut | `file` |
//! | `f2b_file_lines_seen_total` | counter: lines of the file given to the jail's filter | `jail`, `file` |
//! | `f2b_file_lines_matched_total` | counter: failures the jail counted from the file | `jail`, `file` |
//! | `f2b_journal_entries_read_total` | counter | |
//! | `f2b_journal_last_entry_timestamp_seconds` | gauge: journal time of the newest entry processed | |
//! | `f2b_journal_caught_up` | gauge: 1 once the startup backlog is processed | |
//! | `f2b_journal_lag_seconds` | gauge: wall clock minus the newest processed entry while reading a backlog, 0 while following the end | |

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;
use tracing::{debug, info, warn};

use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::sys::socket::{
    getsockname, getsockopt, sockopt, AddressFamily, SockType, SockaddrLike, SockaddrStorage,
};

use crate::engine::{Command, EngineHandle};

/// The `FileDescriptorName=` of the metrics socket in `f2b-metrics.socket`.
pub const FD_NAME: &str = "metrics";
/// Connections served at once; more wait in the listen backlog.
const MAX_CONNECTIONS: usize = 16;
/// A client has this long to send its request and read the answer.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
/// Request heads larger than this are refused.
const MAX_REQUEST: usize = 8192;

/// What the engine reports for one scrape (defined by the engine, rendered here).
pub use crate::engine::{FilterMetrics, MetricsSnapshot as Snapshot};

/// Take the sockets systemd passed for metrics: every passed fd named [`FD_NAME`] (or every
/// passed fd when systemd gave no names), checked to be a listening stream socket. Returns an
/// empty list when f2bd was not socket-activated (sd-notify reads `LISTEN_PID`, `LISTEN_FDS`
/// and `LISTEN_FDNAMES`). The fds are marked close-on-exec.
#[allow(unsafe_code)]
pub fn listen_fds() -> Vec<OwnedFd> {
    let passed = match sd_notify::listen_fds_with_names() {
        Ok(fds) => fds.collect::<Vec<_>>(),
        Err(e) => {
            warn!(error = %e, "ignoring the sockets systemd passed: {e}");
            return Vec::new();
        }
    };
    select_fds(passed)
        .into_iter()
        .filter_map(|fd| {
            // SAFETY: systemd passed this fd to this process (sd-notify checked LISTEN_PID)
            // and nothing else in f2bd takes ownership of inherited descriptors.
            let owned = unsafe { OwnedFd::from_raw_fd(fd) };
            let _ = fcntl(&owned, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC));
            if is_listening_stream(&owned) {
                Some(owned)
            } else {
                warn!(
                    fd,
                    "passed file descriptor is not a listening stream socket; ignored"
                );
                None
            }
        })
        .collect()
}

/// The fds to use: those named [`FD_NAME`], or all when systemd named none.
fn select_fds(passed: Vec<(RawFd, String)>) -> Vec<RawFd> {
    let named = passed.iter().any(|(_, n)| !n.is_empty() && n != "unknown");
    passed
        .into_iter()
        .filter(|(_, n)| !named || n == FD_NAME)
        .map(|(fd, _)| fd)
        .collect()
}

fn is_listening_stream(fd: &OwnedFd) -> bool {
    getsockopt(fd, sockopt::SockType).is_ok_and(|t| t == SockType::Stream)
        && getsockopt(fd, sockopt::AcceptConn).unwrap_or(false)
}

enum Listener {
    Tcp(tokio::net::TcpListener),
    Unix(tokio::net::UnixListener),
}

/// Serve metrics on each socket until the runtime stops. Must be called inside tokio.
pub fn serve(fds: Vec<OwnedFd>, engine: EngineHandle) {
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    for fd in fds {
        let raw = fd.as_raw_fd();
        let family = getsockname::<SockaddrStorage>(fd.as_raw_fd())
            .ok()
            .and_then(|a| a.family());
        let listener = match family {
            Some(AddressFamily::Inet) | Some(AddressFamily::Inet6) => {
                let std = std::net::TcpListener::from(fd);
                std.set_nonblocking(true)
                    .and_then(|_| tokio::net::TcpListener::from_std(std))
                    .map(Listener::Tcp)
            }
            Some(AddressFamily::Unix) => {
                let std = std::os::unix::net::UnixListener::from(fd);
                std.set_nonblocking(true)
                    .and_then(|_| tokio::net::UnixListener::from_std(std))
                    .map(Listener::Unix)
            }
            other => {
                warn!(
                    fd = raw,
                    "metrics socket of address family {other:?} ignored"
                );
                continue;
            }
        };
        let listener = match listener {
            Ok(l) => l,
            Err(e) => {
                warn!(fd = raw, "metrics socket unusable: {e}");
                continue;
            }
        };
        let where_ = match &listener {
            Listener::Tcp(l) => l
                .local_addr()
                .map(|a| a.to_string())
                .unwrap_or_else(|_| "?".into()),
            Listener::Unix(l) => l
                .local_addr()
                .ok()
                .and_then(|a| a.as_pathname().map(|p| p.display().to_string()))
                .unwrap_or_else(|| "(unix)".into()),
        };
        info!("serving Prometheus metrics on {where_} (socket-activated)");
        let engine = engine.clone();
        let limit = limit.clone();
        tokio::spawn(async move {
            loop {
                let Ok(permit) = limit.clone().acquire_owned().await else {
                    return;
                };
                let engine = engine.clone();
                match &listener {
                    Listener::Tcp(l) => match l.accept().await {
                        Ok((s, _)) => {
                            tokio::spawn(async move {
                                client(s, engine).await;
                                drop(permit);
                            });
                        }
                        Err(e) => accept_error(e).await,
                    },
                    Listener::Unix(l) => match l.accept().await {
                        Ok((s, _)) => {
                            tokio::spawn(async move {
                                client(s, engine).await;
                                drop(permit);
                            });
                        }
                        Err(e) => accept_error(e).await,
                    },
                }
            }
        });
    }
}

async fn accept_error(e: std::io::Error) {
    // EMFILE and friends: back off instead of spinning.
    debug!("metrics accept: {e}");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

async fn client<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut s: S,
    engine: EngineHandle,
) {
    let _ = tokio::time::timeout(CLIENT_TIMEOUT, async {
        let mut buf = Vec::with_capacity(512);
        let mut chunk = [0u8; 1024];
        let head = loop {
            if let Some(end) = head_end(&buf) {
                break Some(end);
            }
            if buf.len() > MAX_REQUEST {
                break None;
            }
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => break None,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let response = match head {
            None if buf.len() > MAX_REQUEST => response(431, "text/plain", "request too large\n"),
            None => return,
            Some(end) => {
                let head = String::from_utf8_lossy(&buf[..end]);
                match route(head.lines().next().unwrap_or("")) {
                    Route::Metrics { head_only } => {
                        match engine.call(Command::Metrics).await {
                            Ok(snap) => {
                                let mut r = response(
                                    200,
                                    "text/plain; version=0.0.4; charset=utf-8",
                                    &render(&snap),
                                );
                                if head_only {
                                    r.truncate(r.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(0) + 4);
                                }
                                r
                            }
                            Err(e) => response(503, "text/plain", &format!("{e}\n")),
                        }
                    }
                    Route::Index => response(
                        200,
                        "text/html; charset=utf-8",
                        "<html><head><title>f2b</title></head><body><a href=\"/metrics\">Metrics</a></body></html>\n",
                    ),
                    Route::NotFound => response(404, "text/plain", "not found: try /metrics\n"),
                    Route::BadMethod => response(405, "text/plain", "only GET and HEAD\n"),
                    Route::Bad => response(400, "text/plain", "bad request\n"),
                }
            }
        };
        let _ = s.write_all(&response).await;
        let _ = s.shutdown().await;
    })
    .await;
}

/// End of the request head (after the blank line), if it has arrived.
fn head_end(buf: &[u8]) -> Option<usize> {
    if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
        return Some(p + 4);
    }
    buf.windows(2).position(|w| w == b"\n\n").map(|p| p + 2)
}

#[derive(Debug, PartialEq, Eq)]
enum Route {
    Metrics { head_only: bool },
    Index,
    NotFound,
    BadMethod,
    Bad,
}

fn route(request_line: &str) -> Route {
    let mut parts = request_line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Route::Bad;
    };
    if parts.next().is_some_and(|v| !v.starts_with("HTTP/")) {
        return Route::Bad;
    }
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        _ => return Route::BadMethod,
    };
    let path = target.split(['?', '#']).next().unwrap_or("");
    match path {
        "/metrics" => Route::Metrics { head_only },
        "/" => Route::Index,
        _ => Route::NotFound,
    }
}

fn response(code: u16, content_type: &str, body: &str) -> Vec<u8> {
    let reason = match code {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        _ => "Service Unavailable",
    };
    let mut r = format!(
        "HTTP/1.0 {code} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if code == 405 {
        r.push_str("Allow: GET, HEAD\r\n");
    }
    r.push_str("\r\n");
    r.push_str(body);
    r.into_bytes()
}

mod render;

pub use render::render;

#[cfg(test)]
mod tests;

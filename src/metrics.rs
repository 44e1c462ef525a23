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

use std::fmt::Write as _;
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

use crate::engine::{Command, EngineHandle, JailInfo};

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

/// Escape a label value (backslash, double quote, newline).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn secs(us: u64) -> String {
    if us.is_multiple_of(1_000_000) {
        (us / 1_000_000).to_string()
    } else {
        format!("{:.6}", us as f64 / 1e6)
    }
}

/// The log files of file jails: per file, and per file and jail.
fn files(o: &mut String, s: &Snapshot) {
    let family = |o: &mut String, name: &str, help: &str| {
        let _ = writeln!(o, "# HELP {name} {help}");
        let _ = writeln!(o, "# TYPE {name} counter");
    };
    type FileField = fn(&crate::source::files::FileView) -> u64;
    let per_file: [(&str, &str, FileField); 2] = [
        (
            "f2b_file_lines_read_total",
            "Lines read from the log file.",
            |f| f.lines,
        ),
        (
            "f2b_file_lines_cut_total",
            "Lines of the log file longer than 16 KiB, cut there.",
            |f| f.cut,
        ),
    ];
    for (name, help, value) in per_file {
        family(o, name, help);
        for f in &s.files {
            let _ = writeln!(o, "{name}{{file=\"{}\"}} {}", label(&f.path), value(f));
        }
    }
    let per_jail: [(&str, &str, bool); 2] = [
        (
            "f2b_file_lines_seen_total",
            "Lines of the log file given to the jail's filter.",
            false,
        ),
        (
            "f2b_file_lines_matched_total",
            "Failures the jail counted from the log file.",
            true,
        ),
    ];
    for (name, help, matched) in per_jail {
        family(o, name, help);
        for f in &s.files {
            for (jail, (seen, m)) in &f.jails {
                let v = if matched { m } else { seen };
                let _ = writeln!(
                    o,
                    "{name}{{jail=\"{}\",file=\"{}\"}} {v}",
                    label(jail),
                    label(&f.path)
                );
            }
        }
    }
}

/// Render a snapshot in the Prometheus text format.
pub fn render(s: &Snapshot) -> String {
    let mut o = String::with_capacity(4096);
    let family = |o: &mut String, name: &str, kind: &str, help: &str| {
        let _ = writeln!(o, "# HELP {name} {help}");
        let _ = writeln!(o, "# TYPE {name} {kind}");
    };
    family(&mut o, "f2b_up", "gauge", "f2bd is running (always 1).");
    let _ = writeln!(
        o,
        "f2b_up{{version=\"{}\"}} 1",
        label(env!("CARGO_PKG_VERSION"))
    );

    type JailField = fn(&JailInfo) -> String;
    let jail_families: [(&str, &str, &str, JailField); 5] = [
        (
            "f2b_jail_enabled",
            "gauge",
            "Whether the jail is running (1) or configured but stopped (0).",
            |j| u8::from(j.enabled).to_string(),
        ),
        (
            "f2b_jail_failures_total",
            "counter",
            "Failures counted by the jail since it was first started (kept across restarts).",
            |j| j.total_failed.to_string(),
        ),
        (
            "f2b_jail_bans_total",
            "counter",
            "Bans made by the jail since it was first started (kept across restarts).",
            |j| j.total_banned.to_string(),
        ),
        (
            "f2b_jail_banned",
            "gauge",
            "Addresses (or prefixes) banned by the jail now.",
            |j| j.currently_banned.to_string(),
        ),
        (
            "f2b_jail_failing",
            "gauge",
            "Addresses with failures inside the jail's findtime window now.",
            |j| j.currently_failed.to_string(),
        ),
    ];
    for (name, kind, help, value) in jail_families {
        family(&mut o, name, kind, help);
        for j in &s.jails {
            let _ = writeln!(o, "{name}{{jail=\"{}\"}} {}", label(&j.name), value(j));
        }
    }

    type FilterField = fn(&FilterMetrics) -> String;
    let filter_families: [(&str, &str, &str, FilterField); 5] = [
        (
            "f2b_filter_entries_seen_total",
            "counter",
            "Journal entries routed to the jail's filter.",
            |f| f.seen.to_string(),
        ),
        (
            "f2b_filter_entries_matched_total",
            "counter",
            "Entries that matched a failregex and gave an address.",
            |f| f.matched.to_string(),
        ),
        (
            "f2b_filter_entries_ignored_total",
            "counter",
            "Failregex matches cancelled by an ignoreregex.",
            |f| f.ignored.to_string(),
        ),
        (
            "f2b_filter_entries_no_address_total",
            "counter",
            "Failregex matches without a usable address.",
            |f| f.no_address.to_string(),
        ),
        (
            "f2b_filter_last_match_timestamp_seconds",
            "gauge",
            "Journal time of the filter's newest match (Unix seconds; 0 = none yet).",
            |f| secs(f.last_match_us),
        ),
    ];
    family(
        &mut o,
        "f2b_jail_windows_evicted_total",
        "counter",
        "Failure windows dropped because the jail tracked max_tracked addresses already.",
    );
    for (jail, n) in &s.windows_evicted {
        let _ = writeln!(
            o,
            "f2b_jail_windows_evicted_total{{jail=\"{}\"}} {n}",
            label(jail)
        );
    }
    family(
        &mut o,
        "f2b_bans_pending",
        "gauge",
        "Bans decided but not enforced yet: the firewall refused them (retried).",
    );
    let _ = writeln!(o, "f2b_bans_pending {}", s.pending_bans);
    for (name, kind, help, value) in filter_families {
        family(&mut o, name, kind, help);
        for f in &s.filters {
            let _ = writeln!(
                o,
                "{name}{{jail=\"{}\",filter=\"{}\"}} {}",
                label(&f.jail),
                label(&f.filter),
                value(f)
            );
        }
    }

    files(&mut o, s);
    family(
        &mut o,
        "f2b_journal_entries_read_total",
        "counter",
        "Journal entries read (all units the jails watch).",
    );
    let _ = writeln!(o, "f2b_journal_entries_read_total {}", s.entries_read);
    family(
        &mut o,
        "f2b_journal_last_entry_timestamp_seconds",
        "gauge",
        "Journal time of the newest entry processed (Unix seconds; 0 = none yet).",
    );
    let _ = writeln!(
        o,
        "f2b_journal_last_entry_timestamp_seconds {}",
        secs(s.journal_us)
    );
    family(
        &mut o,
        "f2b_journal_caught_up",
        "gauge",
        "1 once the journal backlog at start has been processed.",
    );
    let _ = writeln!(o, "f2b_journal_caught_up {}", u8::from(s.caught_up));
    family(
        &mut o,
        "f2b_journal_lag_seconds",
        "gauge",
        "How far behind the journal f2bd is: while reading the backlog, wall clock minus the newest processed entry; 0 while following the end.",
    );
    let lag = if s.caught_up || s.journal_us == 0 {
        0
    } else {
        s.now_us.saturating_sub(s.journal_us)
    };
    let _ = writeln!(o, "f2b_journal_lag_seconds {}", secs(lag));
    feeds(&mut o, &s.feeds, family);
    if let Some(f) = &s.fleet {
        crate::fleet::metrics::render(f, &mut o, label);
    }
    render_actions(&mut o, &s.actions);
    o
}

/// `f2b_feed_*`: per blocklist feed.
fn feeds(
    o: &mut String,
    feeds: &[crate::engine::FeedInfo],
    family: impl Fn(&mut String, &str, &str, &str),
) {
    type FeedField = fn(&crate::engine::FeedInfo) -> String;
    let families: [(&str, &str, &str, FeedField); 4] = [
        (
            "f2b_feed_entries",
            "gauge",
            "Good entries of the feed's list in force, by address family.",
            |_| String::new(),
        ),
        (
            "f2b_feed_elements",
            "gauge",
            "Ranges of the feed in the firewall (merged, ignored and own addresses cut out).",
            |f| f.elements.to_string(),
        ),
        (
            "f2b_feed_fetch_failures_total",
            "counter",
            "Fetches of the feed that brought nothing usable since f2bd started.",
            |f| f.fetch_failures.to_string(),
        ),
        (
            "f2b_feed_last_change_timestamp_seconds",
            "gauge",
            "When the feed's list last changed (Unix seconds; 0 = never).",
            |f| secs(f.last_change_us),
        ),
    ];
    for (name, kind, help, value) in families {
        family(o, name, kind, help);
        for f in feeds {
            let feed = label(&f.name);
            if name == "f2b_feed_entries" {
                let (v4, v6) = (f.entries_v4, f.entries_v6);
                let _ = writeln!(o, "{name}{{feed=\"{feed}\",family=\"ipv4\"}} {v4}");
                let _ = writeln!(o, "{name}{{feed=\"{feed}\",family=\"ipv6\"}} {v6}");
            } else {
                let _ = writeln!(o, "{name}{{feed=\"{feed}\"}} {}", value(f));
            }
        }
    }
}

/// The actions' delivery counters (issue 16): `f2b_action_*{action="NAME",type="TYPE"}`.
fn render_actions(o: &mut String, actions: &[crate::engine::ActionStatus]) {
    type Field = fn(&crate::outbox::SinkStats) -> u64;
    let families: [(&str, &str, &str, Field); 5] = [
        (
            "f2b_action_sent_total",
            "counter",
            "Messages the action delivered.",
            |s| s.sent,
        ),
        (
            "f2b_action_failed_total",
            "counter",
            "Messages given up (a permanent error, or too many attempts).",
            |s| s.failed,
        ),
        (
            "f2b_action_dropped_total",
            "counter",
            "Messages dropped: too many waiting, or the action was removed.",
            |s| s.dropped,
        ),
        (
            "f2b_action_pending",
            "gauge",
            "Messages waiting for delivery.",
            |s| s.pending,
        ),
        (
            "f2b_action_retries_total",
            "counter",
            "Failed delivery attempts (each retry).",
            |s| s.retries,
        ),
    ];
    for (name, kind, help, value) in families {
        let _ = writeln!(o, "# HELP {name} {help}");
        let _ = writeln!(o, "# TYPE {name} {kind}");
        for a in actions {
            let _ = writeln!(
                o,
                "{name}{{action=\"{}\",type=\"{}\"}} {}",
                label(&a.name),
                label(&a.kind),
                value(&a.stats)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jail(name: &str) -> JailInfo {
        JailInfo {
            name: name.into(),
            enabled: true,
            filter: "sshd".into(),
            maxretry: 5,
            findtime_s: 600,
            bantime_s: 600,
            currently_failed: 2,
            current_failures: 3,
            total_failed: 17,
            currently_banned: 1,
            total_banned: 3,
            ..Default::default()
        }
    }

    #[test]
    fn renders_every_family_with_help_and_type() {
        let s = Snapshot {
            jails: vec![jail("sshd")],
            filters: vec![FilterMetrics {
                jail: "sshd".into(),
                filter: "sshd".into(),
                seen: 100,
                matched: 17,
                ignored: 1,
                no_address: 0,
                last_match_us: 1_700_000_000_500_000,
            }],
            entries_read: 1234,
            windows_evicted: vec![("sshd".into(), 4)],
            pending_bans: 0,
            journal_us: 1_700_000_000_000_000,
            caught_up: false,
            now_us: 1_700_000_010_000_000,
            files: vec![crate::source::files::FileView {
                path: "/var/log/auth.log".into(),
                state: "following".into(),
                lines: 50,
                cut: 1,
                jails: [("sshd".to_string(), (40, 7))].into_iter().collect(),
            }],
            feeds: vec![crate::engine::FeedInfo {
                name: "drop".into(),
                entries_v4: 1000,
                entries_v6: 40,
                elements: 990,
                fetch_failures: 2,
                ..Default::default()
            }],
            fleet: None,
            actions: vec![crate::engine::ActionStatus {
                name: "hook".into(),
                kind: "webhook".into(),
                stats: crate::outbox::SinkStats {
                    sent: 7,
                    failed: 1,
                    dropped: 2,
                    pending: 3,
                    retries: 4,
                },
            }],
        };
        let text = render(&s);
        for line in [
            "f2b_jail_failures_total{jail=\"sshd\"} 17",
            "f2b_jail_bans_total{jail=\"sshd\"} 3",
            "f2b_jail_banned{jail=\"sshd\"} 1",
            "f2b_jail_failing{jail=\"sshd\"} 2",
            "f2b_filter_entries_seen_total{jail=\"sshd\",filter=\"sshd\"} 100",
            "f2b_filter_entries_matched_total{jail=\"sshd\",filter=\"sshd\"} 17",
            "f2b_filter_entries_ignored_total{jail=\"sshd\",filter=\"sshd\"} 1",
            "f2b_filter_last_match_timestamp_seconds{jail=\"sshd\",filter=\"sshd\"} 1700000000.500000",
            "f2b_journal_entries_read_total 1234",
            "f2b_jail_windows_evicted_total{jail=\"sshd\"} 4",
            "f2b_bans_pending 0",
            "f2b_journal_lag_seconds 10",
            "f2b_journal_caught_up 0",
            "f2b_file_lines_read_total{file=\"/var/log/auth.log\"} 50",
            "f2b_file_lines_cut_total{file=\"/var/log/auth.log\"} 1",
            "f2b_file_lines_seen_total{jail=\"sshd\",file=\"/var/log/auth.log\"} 40",
            "f2b_file_lines_matched_total{jail=\"sshd\",file=\"/var/log/auth.log\"} 7",
            "f2b_feed_entries{feed=\"drop\",family=\"ipv4\"} 1000",
            "f2b_feed_entries{feed=\"drop\",family=\"ipv6\"} 40",
            "f2b_feed_elements{feed=\"drop\"} 990",
            "f2b_feed_fetch_failures_total{feed=\"drop\"} 2",
            "f2b_action_sent_total{action=\"hook\",type=\"webhook\"} 7",
            "f2b_action_failed_total{action=\"hook\",type=\"webhook\"} 1",
            "f2b_action_dropped_total{action=\"hook\",type=\"webhook\"} 2",
            "f2b_action_pending{action=\"hook\",type=\"webhook\"} 3",
            "f2b_action_retries_total{action=\"hook\",type=\"webhook\"} 4",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        // Every sample belongs to a family declared just before with HELP and TYPE.
        let mut declared = Vec::new();
        for l in text.lines() {
            if let Some(rest) = l.strip_prefix("# TYPE ") {
                declared.push(rest.split(' ').next().unwrap().to_string());
            } else if !l.starts_with('#') {
                let name = l.split(['{', ' ']).next().unwrap();
                assert_eq!(declared.last().map(String::as_str), Some(name), "{l}");
            }
        }
    }

    #[test]
    fn lag_is_zero_when_following() {
        let s = Snapshot {
            journal_us: 5,
            now_us: 100_000_000,
            caught_up: true,
            ..Default::default()
        };
        assert!(render(&s).contains("\nf2b_journal_lag_seconds 0\n"));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn routes_requests() {
        assert_eq!(
            route("GET /metrics HTTP/1.1"),
            Route::Metrics { head_only: false }
        );
        assert_eq!(
            route("HEAD /metrics?x=1 HTTP/1.0"),
            Route::Metrics { head_only: true }
        );
        assert_eq!(route("GET / HTTP/1.0"), Route::Index);
        assert_eq!(route("GET /other HTTP/1.0"), Route::NotFound);
        assert_eq!(route("POST /metrics HTTP/1.0"), Route::BadMethod);
        assert_eq!(route("garbage"), Route::Bad);
        assert_eq!(head_end(b"GET / HTTP/1.0\r\n\r\n"), Some(18));
        assert_eq!(head_end(b"GET / HTTP/1.0\n\n"), Some(16));
        assert_eq!(head_end(b"GET / HTTP/1.0\r\n"), None);
    }

    #[test]
    fn selects_passed_fds() {
        let fds = |names: &[&str]| -> Vec<(RawFd, String)> {
            (names.iter().enumerate())
                .map(|(i, n)| (3 + i as RawFd, n.to_string()))
                .collect()
        };
        assert_eq!(select_fds(fds(&["unknown", "unknown"])), vec![3, 4]);
        assert_eq!(select_fds(fds(&["other", "metrics", "x"])), vec![4]);
        assert!(select_fds(fds(&["other"])).is_empty());
        assert!(select_fds(Vec::new()).is_empty());
    }
}

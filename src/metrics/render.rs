//! Rendering of a [`Snapshot`] in the Prometheus text exposition format (pure: no I/O).

use std::fmt::Write as _;

use super::{FilterMetrics, Snapshot};
use crate::engine::JailInfo;

/// Escape a label value (backslash, double quote, newline).
pub(super) fn label(v: &str) -> String {
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

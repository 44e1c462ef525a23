use super::render::label;
use super::*;
use crate::engine::JailInfo;

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
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
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

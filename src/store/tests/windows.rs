//! Failure windows as rows: append, trim, clear, and what a commit writes.

use std::collections::VecDeque;

use super::*;

fn f(j: &str, n: &str, t: u64) -> (String, IpNet, u64) {
    (j.to_string(), net(n), t)
}

#[test]
fn windows_append_trim_and_clear() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path()).unwrap();
    s.commit(&Commit {
        failures_added: vec![
            f("sshd", "192.0.2.1/32", 1),
            f("sshd", "192.0.2.1/32", 2),
            f("sshd", "192.0.2.2/32", 3),
            f("sshd", "192.0.2.3/32", 4),
            f("other", "192.0.2.1/32", 5),
        ],
        ..Commit::default()
    })
    .unwrap();
    s.commit(&Commit {
        // Two at the same µs count twice.
        failures_added: vec![
            f("sshd", "192.0.2.1/32", 6),
            f("sshd", "192.0.2.1/32", 6),
            f("sshd", "192.0.2.3/32", 9),
        ],
        windows_trimmed: vec![
            f("sshd", "192.0.2.1/32", 2),   // drops 1
            f("sshd", "192.0.2.3/32", 100), // drops all, the new 9 included
            f("sshd", "192.0.2.200/32", 5), // absent
        ],
        windows_cleared: vec![
            ("sshd".into(), net("192.0.2.2/32")),
            ("sshd".into(), net("192.0.2.200/32")), // absent
        ],
        ..Commit::default()
    })
    .unwrap();
    assert_eq!(
        owned(&s.load(0).unwrap()).windows,
        vec![
            ("other".into(), net("192.0.2.1/32"), vec![5]),
            ("sshd".into(), net("192.0.2.1/32"), vec![2, 6, 6]),
        ]
    );
    // Cleared, then refilled in the same commit: only the new failures remain.
    s.commit(&Commit {
        windows_cleared: vec![("other".into(), net("192.0.2.1/32"))],
        failures_added: vec![f("other", "192.0.2.1/32", 7)],
        ..Commit::default()
    })
    .unwrap();
    assert_eq!(
        owned(&s.load(0).unwrap()).windows[0],
        ("other".into(), net("192.0.2.1/32"), vec![7])
    );
}

/// A jail's window, persisted commit by commit through [`Commit::sync_window`], loads back
/// as the same multiset of times, whatever happened to it.
#[test]
fn sync_window_keeps_the_stored_window_equal_to_the_jail_s() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path()).unwrap();
    let n = net("198.51.100.7/32");
    let mut w: VecDeque<u64> = VecDeque::new();
    let findtime = 10;
    // (time of a failure, or None for a ban that clears the window), in batches.
    let batches: Vec<Vec<Option<u64>>> = vec![
        vec![Some(1), Some(2), Some(2)],
        vec![Some(5)],
        vec![Some(12), Some(13)], // 1, 2, 2 leave
        vec![Some(14), None, Some(20)],
        vec![None],
        vec![Some(40), Some(41)],
        vec![Some(39)], // out of time order
        vec![Some(45)],
    ];
    for batch in batches {
        let mut new = 0;
        for ev in batch {
            match ev {
                Some(t) => {
                    while w
                        .front()
                        .is_some_and(|&old| t.saturating_sub(old) >= findtime)
                    {
                        w.pop_front();
                    }
                    w.push_back(t);
                    new += 1;
                }
                None => w.clear(),
            }
        }
        let mut c = Commit::default();
        c.sync_window("j", n, w.iter().copied(), new);
        s.commit(&c).unwrap();
        let mut want: Vec<u64> = w.iter().copied().collect();
        want.sort();
        let got: Vec<u64> = s
            .load(0)
            .unwrap()
            .windows
            .into_iter()
            .flat_map(|w| w.times)
            .collect();
        assert_eq!(got, want, "window {w:?}");
    }
}

/// Bytes this thread has written (write/pwrite) so far, if the kernel accounts them.
fn thread_written() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/thread-self/io").ok()?;
    io.lines()
        .find_map(|l| l.strip_prefix("wchar:"))
        .and_then(|v| v.trim().parse().ok())
}

/// Bytes written by 1,000 commits each adding one failure (and the journal cursor) to a
/// window that already holds `size` failures.
fn bytes_to_append_1000(size: u64) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path()).unwrap();
    let (jail, n) = ("web", net("203.0.113.50/32"));
    let t0 = 1_700_000_000_000_000;
    s.commit(&Commit {
        failures_added: (0..size).map(|i| (jail.to_string(), n, t0 + i)).collect(),
        ..Commit::default()
    })
    .unwrap();
    let before = thread_written().unwrap();
    for i in 0..1000 {
        s.commit(&Commit {
            cursor: Some(format!("s=0123456789abcdef;i={i:x}")),
            failures_added: vec![(jail.to_string(), n, t0 + size + i)],
            windows_trimmed: vec![(jail.to_string(), n, t0)],
            ..Commit::default()
        })
        .unwrap();
    }
    let written = thread_written().unwrap() - before;
    let snap = s.load(0).unwrap();
    assert_eq!(snap.windows[0].times.len() as u64, size + 1000);
    written
}

/// Issue 10.8: with `maxretry = 1000000, findtime = "1w"` and 200,000 failures in a window,
/// 1,000 more failures wrote 2.95 GB — each commit rewrote the whole window. Now a commit
/// writes what it adds: appending to a window of 200,000 costs about what appending to one
/// of 2,000 does, and far below one window rewrite per commit.
#[test]
fn large_windows_are_not_rewritten_at_every_commit() {
    if thread_written().is_none() {
        eprintln!("skipped: /proc/thread-self/io is not available (no task I/O accounting)");
        return;
    }
    let small = bytes_to_append_1000(2_000);
    let large = bytes_to_append_1000(200_000);
    eprintln!("1,000 appended failures: {small} bytes written (window 2,000), {large} (200,000)");
    assert!(
        large < 2 * small,
        "appending to a large window writes more: {large} vs {small} bytes"
    );
    // One rewrite of the 200,000 times alone would be ≥ 1.6 MB per commit.
    assert!(large < 64 << 20, "{large} bytes for 1,000 failures");
}

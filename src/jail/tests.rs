use super::*;
use crate::config::{Increment, JailSource};
use crate::firewall::{JailRules, Protocol, Verdict as FwVerdict};
use crate::location::Location;

const S: u64 = 1_000_000;

fn cfg(maxretry: u32, findtime: u64, bantime: u64) -> JailConfig {
    JailConfig {
        name: "t".into(),
        enabled: true,
        source: JailSource::Bans { jails: vec![] },
        maxretry,
        findtime: Duration::from_secs(findtime),
        bantime: BanTime::For(Duration::from_secs(bantime)),
        ignore: IgnoreList::parse(&["10.0.0.0/8".into()]).unwrap(),
        ignoreself: false,
        rules: JailRules {
            name: "t".into(),
            ports: vec![],
            protocol: Protocol::All,
            verdict: FwVerdict::Drop,
        },
        ipv4_prefix: 32,
        ipv6_prefix: 128,
        increment: None,
        max_tracked: DEFAULT_MAX_TRACKED,
        actions: Vec::new(),
        loc: Location::new("test", 0),
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn bans_at_maxretry_within_findtime() {
    let h = History::default();
    let mut j = Jail::new(cfg(3, 600, 3600), &[]);
    let a = ip("203.0.113.9");
    assert!(matches!(
        j.failure(a, 100 * S, "1", &h),
        Verdict::Counted {
            failures: 1,
            needed: 3
        }
    ));
    assert!(matches!(
        j.failure(a, 200 * S, "2", &h),
        Verdict::Counted { failures: 2, .. }
    ));
    let Verdict::Ban(d) = j.failure(a, 300 * S, "3", &h) else {
        panic!()
    };
    assert_eq!(d.net.to_string(), "203.0.113.9/32");
    assert_eq!(d.failures, 3);
    assert_eq!(d.lines, vec!["1", "2", "3"]);
    assert_eq!(d.end_us, Some(3900 * S));
    assert_eq!(j.failure(a, 301 * S, "4", &h), Verdict::AlreadyBanned);
    // After the ban ends the address starts from zero.
    assert!(matches!(
        j.failure(a, 3900 * S, "5", &h),
        Verdict::Counted { failures: 1, .. }
    ));
}

#[test]
fn findtime_edges() {
    let h = History::default();
    let mut j = Jail::new(cfg(2, 600, 60), &[]);
    let a = ip("198.51.100.1");
    j.failure(a, 0, "", &h);
    // Exactly findtime later: the first failure no longer counts.
    assert!(matches!(
        j.failure(a, 600 * S, "", &h),
        Verdict::Counted { failures: 1, .. }
    ));
    // One microsecond inside the window: it does.
    let b = ip("198.51.100.2");
    j.failure(b, 0, "", &h);
    assert!(matches!(j.failure(b, 600 * S - 1, "", &h), Verdict::Ban(_)));
}

#[test]
fn ignoreip_and_self() {
    let h = History::default();
    let mut c = cfg(1, 600, 60);
    c.ignoreself = true;
    let mut j = Jail::new(c, &["192.0.2.1/32".parse().unwrap()]);
    assert_eq!(j.failure(ip("10.1.2.3"), 0, "", &h), Verdict::Ignored);
    assert_eq!(j.failure(ip("192.0.2.1"), 0, "", &h), Verdict::Ignored);
    assert!(matches!(
        j.failure(ip("192.0.2.2"), 0, "", &h),
        Verdict::Ban(_)
    ));
    assert_eq!(j.counters.ignored, 2);
}

#[test]
fn ipv6_prefix_aggregates() {
    let h = History::default();
    let mut c = cfg(3, 600, 60);
    c.ipv6_prefix = 64;
    let mut j = Jail::new(c, &[]);
    j.failure(ip("2001:db8:1:2::1"), 0, "", &h);
    j.failure(ip("2001:db8:1:2:ffff::9"), S, "", &h);
    assert!(matches!(
        j.failure(ip("2001:db8:1:3::1"), S, "", &h),
        Verdict::Counted { failures: 1, .. }
    ));
    let Verdict::Ban(d) = j.failure(ip("2001:db8:1:2:abcd::5"), 2 * S, "", &h) else {
        panic!()
    };
    assert_eq!(d.net.to_string(), "2001:db8:1:2::/64");
    assert_eq!(
        j.failure(ip("2001:db8:1:2::77"), 3 * S, "", &h),
        Verdict::AlreadyBanned
    );
}

#[test]
fn incremental_ban_times() {
    let mut h = History::new(30 * 86_400 * S);
    let mut c = cfg(4, 600, 600);
    c.increment = Some(Increment {
        factor: 1.0,
        multipliers: vec![],
        maxtime: Some(Duration::from_secs(3600)),
        rndtime: Duration::ZERO,
        overall_jails: false,
        fast_rebans: true,
    });
    let mut j = Jail::new(c, &[]);
    let a = ip("203.0.113.50");
    let mut t = 0;
    let mut durations = Vec::new();
    let mut needed = Vec::new();
    for _ in 0..4 {
        let mut n = 0;
        loop {
            n += 1;
            t += S;
            if let Verdict::Ban(d) = j.failure(a, t, "", &h) {
                durations.push(d.bantime.as_duration().unwrap().as_secs());
                h.record(d.net, "t", d.start_us, true);
                t = d.end_us.unwrap();
                break;
            }
        }
        needed.push(n);
    }
    assert_eq!(durations, vec![600, 1200, 2400, 3600]);
    assert_eq!(needed, vec![4, 2, 1, 1]);
}

#[test]
fn multipliers_and_overall() {
    let mut h = History::new(86_400 * S);
    h.record("203.0.113.7/32".parse().unwrap(), "other", 0, true);
    let mut c = cfg(1, 600, 100);
    c.increment = Some(Increment {
        factor: 1.0,
        multipliers: vec![1.0, 5.0, 30.0],
        maxtime: None,
        rndtime: Duration::ZERO,
        overall_jails: true,
        fast_rebans: false,
    });
    let mut j = Jail::new(c, &[]);
    let Verdict::Ban(d) = j.failure(ip("203.0.113.7"), S, "", &h) else {
        panic!()
    };
    assert_eq!(d.bantime, BanTime::For(Duration::from_secs(500)));
    assert_eq!(d.count, 2);
}

#[test]
fn stale_windows_are_pruned() {
    let h = History::default();
    let mut j = Jail::new(cfg(5, 60, 60), &[]);
    for i in 0..100_000u32 {
        let a = IpAddr::V4(std::net::Ipv4Addr::from(0xC000_0000 + i));
        j.failure(a, u64::from(i) * S / 100, "", &h);
    }
    // 100 failures per second, findtime 60 s: about 6,000 live windows, never 100,000.
    assert!(j.failing_count() <= 12_100, "{}", j.failing_count());
}

#[test]
fn expire_and_next_expiry() {
    let h = History::default();
    let mut j = Jail::new(cfg(1, 60, 10), &[]);
    j.failure(ip("192.0.2.9"), 0, "", &h);
    j.failure(ip("192.0.2.10"), 5 * S, "", &h);
    assert_eq!(j.next_expiry(), Some(10 * S));
    assert_eq!(j.expire(10 * S).len(), 1);
    assert_eq!(j.banned_count(), 1);
}

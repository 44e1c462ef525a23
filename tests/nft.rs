//! nftables backend against the real kernel. Every test runs in its own fresh network
//! namespace (see `common::netns`); tests print SKIP and pass when not run as root.
//!
//! Run: `cargo test --test nft` (as root).

mod common;

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{root_and_tools_or_skip, NetNs};
use f2b::firewall::nft::{spawn_monitor, MonitorEvent, Nftables, Removed};
use f2b::firewall::{
    Change, Element, Firewall, FirewallError, JailRules, PortRange, Protocol, Refusal, Verdict,
};
use ipnet::IpNet;

fn jail(name: &str, ports: &[(u16, u16)], protocol: Protocol, verdict: Verdict) -> JailRules {
    JailRules {
        name: name.into(),
        ports: ports
            .iter()
            .map(|&(first, last)| PortRange { first, last })
            .collect(),
        protocol,
        verdict,
    }
}

fn sshd() -> JailRules {
    jail("sshd", &[(22, 22)], Protocol::Tcp, Verdict::Drop)
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn ban(jail: &str, n: &str, secs: Option<u64>) -> Change {
    Change::Ban {
        jail: jail.into(),
        net: net(n),
        timeout: secs.map(Duration::from_secs),
    }
}

fn ban_ms(jail: &str, n: &str, ms: u64) -> Change {
    Change::Ban {
        jail: jail.into(),
        net: net(n),
        timeout: Some(Duration::from_millis(ms)),
    }
}

fn unban(jail: &str, n: &str) -> Change {
    Change::Unban {
        jail: jail.into(),
        net: net(n),
    }
}

/// Applies `changes` and asserts that every one of them is enforced.
fn enforce(fw: &mut Nftables, changes: &[Change]) {
    let applied = fw.apply(changes).unwrap();
    assert!(applied.is_complete(), "refused: {:?}", applied.refused);
}

/// The changes `apply` refused: (position, reason).
fn refused(fw: &mut Nftables, changes: &[Change]) -> Vec<(usize, Refusal)> {
    let applied = fw.apply(changes).unwrap();
    applied
        .refused
        .iter()
        .map(|r| (r.index, r.reason))
        .collect()
}

/// (jail, net) → remaining time.
fn listed(fw: &mut Nftables) -> BTreeMap<(String, IpNet), Option<Duration>> {
    fw.list()
        .unwrap()
        .into_iter()
        .map(
            |Element {
                 jail,
                 net,
                 expires_in,
             }| ((jail, net), expires_in),
        )
        .collect()
}

fn key(jail: &str, n: &str) -> (String, IpNet) {
    (jail.to_string(), net(n))
}

/// Remaining time is within (want - slack, want].
fn assert_left(left: Option<Duration>, want_secs: u64) {
    let left = left.expect("element should have a timeout");
    let want = Duration::from_secs(want_secs);
    assert!(
        left <= want && left + Duration::from_secs(5) > want,
        "remaining {left:?}, expected about {want:?}"
    );
}

/// Runs `f` with a fresh namespace, or skips.
fn in_netns(test: &str, f: impl FnOnce(&NetNs)) {
    if !root_and_tools_or_skip(test) {
        return;
    }
    let ns = NetNs::new();
    f(&ns);
}

/// `nft -a list chain` rule lines (with handles) of f2b's chain.
fn rules(ns: &NetNs) -> Vec<String> {
    ns.sh("nft -a list chain inet f2b input")
        .lines()
        .filter(|l| l.contains("comment \"f2b:"))
        .map(|l| l.trim().to_string())
        .collect()
}

fn set_names(ns: &NetNs) -> Vec<String> {
    let mut v: Vec<String> = ns
        .sh("nft list sets inet")
        .lines()
        .filter_map(|l| {
            l.trim()
                .strip_prefix("set ")
                .map(|s| s.trim_end_matches(" {").to_string())
        })
        .collect();
    v.sort();
    v
}

#[test]
fn setup_is_idempotent_and_a_restart_adopts_existing_bans() {
    in_netns(
        "setup_is_idempotent_and_a_restart_adopts_existing_bans",
        |ns| {
            let jails = vec![
                sshd(),
                jail(
                    "web",
                    &[(80, 80), (443, 443)],
                    Protocol::TcpUdp,
                    Verdict::Reject,
                ),
            ];
            let before = ns.run(|| {
                let mut fw = Nftables::new().unwrap();
                fw.setup(&jails).unwrap();
                enforce(
                    &mut fw,
                    &[
                        ban("sshd", "192.0.2.1/32", Some(600)),
                        ban("sshd", "2001:db8::1/128", None),
                        ban("web", "198.51.100.0/24", Some(600)),
                        ban("web", "2001:db8:1:2::/64", Some(600)),
                    ],
                );
                let r1 = rules(ns);
                // Same instance, same jails: nothing changes.
                fw.setup(&jails).unwrap();
                assert_eq!(rules(ns), r1);
                listed(&mut fw)
                // `fw` dropped here: like f2bd stopping (the table stays).
            });
            let rules_before = rules(ns);
            assert_eq!(rules_before.len(), 8);
            assert_eq!(before.len(), 4);

            ns.run(|| {
                // "Restart": a new instance sets up the same jails.
                let mut fw = Nftables::new().unwrap();
                fw.setup(&jails).unwrap();
                assert_eq!(rules(ns), rules_before, "rules were replaced");
                let after = listed(&mut fw);
                assert_eq!(
                    after.keys().collect::<Vec<_>>(),
                    before.keys().collect::<Vec<_>>()
                );
                assert_eq!(after[&key("sshd", "2001:db8::1/128")], None);
                assert_left(after[&key("web", "198.51.100.0/24")], 600);
                // And the adopted elements are in the new instance's index: re-banning one is a
                // replace, not an EEXIST.
                enforce(&mut fw, &[ban("sshd", "192.0.2.1/32", Some(900))]);
                assert_left(listed(&mut fw)[&key("sshd", "192.0.2.1/32")], 900);
            });
        },
    );
}

#[test]
fn ban_unban_and_list_with_timeouts() {
    in_netns("ban_unban_and_list_with_timeouts", |ns| {
        ns.run(|| {
            let mut fw = Nftables::new().unwrap();
            fw.setup(&[sshd()]).unwrap();
            enforce(
                &mut fw,
                &[
                    ban("sshd", "192.0.2.7/32", Some(30)),
                    ban("sshd", "2001:db8::7/128", None),
                    ban("sshd", "10.20.0.0/16", Some(45)),
                    // Host bits are ignored: stored as 2001:db8:1:2::/64.
                    ban("sshd", "2001:db8:1:2::99/64", Some(50)),
                ],
            );
            let l = listed(&mut fw);
            assert_eq!(l.len(), 4, "{l:?}");
            assert_left(l[&key("sshd", "192.0.2.7/32")], 30);
            assert_eq!(l[&key("sshd", "2001:db8::7/128")], None);
            assert_left(l[&key("sshd", "10.20.0.0/16")], 45);
            assert_left(l[&key("sshd", "2001:db8:1:2::/64")], 50);

            // The kernel matches addresses inside the prefixes.
            ns.sh("nft get element inet f2b sshd-n4 '{ 10.20.255.255 }'");
            ns.sh("nft get element inet f2b sshd-n6 '{ 2001:db8:1:2:ffff::1 }'");
            assert!(!ns
                .sh_output("nft get element inet f2b sshd-n4 '{ 10.21.0.0 }'")
                .status
                .success());

            enforce(
                &mut fw,
                &[
                    unban("sshd", "192.0.2.7/32"),
                    unban("sshd", "2001:db8::7/128"),
                    unban("sshd", "10.20.0.0/16"),
                    unban("sshd", "2001:db8:1:2::/64"),
                ],
            );
            assert!(listed(&mut fw).is_empty());
            assert!(!ns
                .sh_output("nft get element inet f2b sshd-n4 '{ 10.20.0.1 }'")
                .status
                .success());
        });
    });
}

#[test]
fn reban_replaces_the_timeout() {
    in_netns("reban_replaces_the_timeout", |ns| {
        ns.run(|| {
            let mut fw = Nftables::new().unwrap();
            fw.setup(&[sshd()]).unwrap();
            for n in [
                "192.0.2.1/32",
                "2001:db8::1/128",
                "10.0.0.0/8",
                "2001:db8:9::/48",
            ] {
                enforce(&mut fw, &[ban("sshd", n, Some(10))]);
                enforce(&mut fw, &[ban("sshd", n, Some(300))]);
                assert_left(listed(&mut fw)[&key("sshd", n)], 300);
                enforce(&mut fw, &[ban("sshd", n, Some(20))]); // shorter works too
                assert_left(listed(&mut fw)[&key("sshd", n)], 20);
                enforce(&mut fw, &[ban("sshd", n, None)]);
                assert_eq!(listed(&mut fw)[&key("sshd", n)], None);
                enforce(&mut fw, &[ban("sshd", n, Some(40))]);
                assert_left(listed(&mut fw)[&key("sshd", n)], 40);
            }
            // Several bans of the same address in one apply: the last one wins.
            enforce(
                &mut fw,
                &[
                    ban("sshd", "192.0.2.1/32", Some(100)),
                    ban("sshd", "192.0.2.1/32", Some(200)),
                    unban("sshd", "192.0.2.1/32"),
                    ban("sshd", "192.0.2.1/32", Some(70)),
                ],
            );
            assert_left(listed(&mut fw)[&key("sshd", "192.0.2.1/32")], 70);
            assert_eq!(listed(&mut fw).len(), 4);
        });
    });
}

#[test]
fn unban_of_a_missing_element_is_not_an_error() {
    in_netns("unban_of_a_missing_element_is_not_an_error", |ns| {
        ns.run(|| {
            let mut fw = Nftables::new().unwrap();
            fw.setup(&[sshd()]).unwrap();
            enforce(
                &mut fw,
                &[
                    unban("sshd", "192.0.2.1/32"),
                    unban("sshd", "2001:db8::1/128"),
                    unban("sshd", "10.0.0.0/8"),
                    unban("sshd", "2001:db8::/64"),
                ],
            );
            enforce(&mut fw, &[ban("sshd", "192.0.2.1/32", Some(60))]);
            enforce(&mut fw, &[unban("sshd", "192.0.2.1/32")]);
            enforce(&mut fw, &[unban("sshd", "192.0.2.1/32")]);
            // Removed behind our back: the index is stale, the unban still succeeds.
            enforce(&mut fw, &[ban("sshd", "192.0.2.2/32", Some(60))]);
            ns.sh("nft delete element inet f2b sshd-v4 '{ 192.0.2.2 }'");
            assert_eq!(fw.retries(), 0);
            enforce(&mut fw, &[unban("sshd", "192.0.2.2/32")]);
            assert_eq!(fw.retries(), 1);
            assert!(listed(&mut fw).is_empty());
        });
    });
}

#[test]
fn stale_index_is_corrected_and_the_batch_retried() {
    in_netns("stale_index_is_corrected_and_the_batch_retried", |ns| {
        ns.run(|| {
            let mut fw = Nftables::new().unwrap();
            fw.setup(&[sshd()]).unwrap();
            // Added by someone else: our add gets EEXIST, we re-read and replace it.
            ns.sh("nft add element inet f2b sshd-v4 '{ 192.0.2.9 timeout 1h }'");
            ns.sh("nft add element inet f2b sshd-n4 '{ 10.9.0.0/16 timeout 1h }'");
            enforce(
                &mut fw,
                &[
                    ban("sshd", "192.0.2.9/32", Some(30)),
                    ban("sshd", "10.9.0.0/16", Some(30)),
                ],
            );
            assert_eq!(fw.retries(), 1);
            let l = listed(&mut fw);
            assert_left(l[&key("sshd", "192.0.2.9/32")], 30);
            assert_left(l[&key("sshd", "10.9.0.0/16")], 30);
        });
    });
}

#[test]
fn an_index_wrong_about_thousands_of_elements_is_corrected() {
    in_netns(
        "an_index_wrong_about_thousands_of_elements_is_corrected",
        |ns| {
            ns.run(|| {
                let mut fw = Nftables::new().unwrap();
                fw.setup(&[sshd()]).unwrap();
                let addr = |base: u32, i: u32| std::net::Ipv4Addr::from(base + i).to_string();
                let a = |i| format!("{}/32", addr(0x0a00_0000, i));
                let b = |i| format!("{}/32", addr(0x0a01_0000, i));
                let ours: Vec<Change> = (0..4000).map(|i| ban("sshd", &a(i), Some(600))).collect();
                enforce(&mut fw, &ours);
                // Behind our back: the set is flushed and 2,000 other addresses are added.
                let theirs: Vec<String> = (0..2000).map(|i| addr(0x0a01_0000, i)).collect();
                ns.sh(&format!(
                    "nft flush set inet f2b sshd-v4 && \
                     nft add element inet f2b sshd-v4 '{{ {} }}'",
                    theirs.join(", ")
                ));
                // Unbans of gone elements (ENOENT), re-bans of gone elements (ENOENT on the
                // delete), bans of elements that are there (EEXIST): all in one apply.
                let mut changes: Vec<Change> = (0..2000).map(|i| unban("sshd", &a(i))).collect();
                changes.extend((2000..4000).map(|i| ban("sshd", &a(i), Some(900))));
                changes.extend((0..2000).map(|i| ban("sshd", &b(i), Some(300))));
                enforce(&mut fw, &changes);
                assert!(fw.retries() <= 2, "{} retries", fw.retries());
                let l = listed(&mut fw);
                assert_eq!(l.len(), 4000);
                assert!(!l.contains_key(&key("sshd", &a(0))));
                assert_left(l[&key("sshd", &a(3999))], 900);
                assert_left(l[&key("sshd", &b(1999))], 300);
            });
        },
    );
}

#[test]
fn removed_jail_loses_its_sets_and_rules_others_are_untouched() {
    in_netns(
        "removed_jail_loses_its_sets_and_rules_others_are_untouched",
        |ns| {
            ns.run(|| {
                let mut fw = Nftables::new().unwrap();
                let web = jail("web", &[(80, 80)], Protocol::Tcp, Verdict::Drop);
                let mail = jail(
                    "mail",
                    &[(25, 25), (465, 465)],
                    Protocol::Tcp,
                    Verdict::Reject,
                );
                fw.setup(&[sshd(), web.clone(), mail.clone()]).unwrap();
                enforce(
                    &mut fw,
                    &[
                        ban("sshd", "192.0.2.1/32", Some(600)),
                        ban("web", "192.0.2.2/32", Some(600)),
                        ban("web", "10.2.0.0/16", None),
                        ban("mail", "192.0.2.3/32", Some(600)),
                    ],
                );
                let sshd_rules: Vec<String> = rules(ns)
                    .into_iter()
                    .filter(|r| r.contains("f2b:sshd:"))
                    .collect();
                let mail_rules: Vec<String> = rules(ns)
                    .into_iter()
                    .filter(|r| r.contains("f2b:mail:"))
                    .collect();

                // web removed; mail's scope changed (port 587 added); sshd unchanged.
                let mail2 = jail(
                    "mail",
                    &[(25, 25), (465, 465), (587, 587)],
                    Protocol::Tcp,
                    Verdict::Reject,
                );
                fw.setup(&[sshd(), mail2]).unwrap();

                let names = set_names(ns);
                assert_eq!(
                    names,
                    [
                        "mail-n4", "mail-n6", "mail-v4", "mail-v6", "sshd-n4", "sshd-n6",
                        "sshd-v4", "sshd-v6"
                    ]
                );
                let now = rules(ns);
                assert_eq!(now.len(), 8);
                assert!(!now.iter().any(|r| r.contains("web")));
                // sshd's rules are the very same (same handles).
                let sshd_now: Vec<String> = now
                    .iter()
                    .filter(|r| r.contains("f2b:sshd:"))
                    .cloned()
                    .collect();
                assert_eq!(sshd_now, sshd_rules);
                // mail's rules were replaced and now include 587; its bans are kept.
                let mail_now: Vec<String> = now
                    .iter()
                    .filter(|r| r.contains("f2b:mail:"))
                    .cloned()
                    .collect();
                assert_ne!(mail_now, mail_rules);
                assert!(mail_now.iter().all(|r| r.contains("587")), "{mail_now:?}");
                let l = listed(&mut fw);
                assert_eq!(
                    l.keys().cloned().collect::<Vec<_>>(),
                    vec![key("mail", "192.0.2.3/32"), key("sshd", "192.0.2.1/32")]
                );
                // The removed jail is unknown now.
                assert_eq!(
                    refused(&mut fw, &[ban("web", "192.0.2.2/32", None)]),
                    vec![(0, Refusal::UnknownJail)]
                );
            });
        },
    );
}

#[test]
fn setup_repairs_a_modified_table() {
    in_netns("setup_repairs_a_modified_table", |ns| {
        // Someone (or an older version) left a table with a wrong base chain, an extra chain, a
        // rule of their own, a set with the wrong flags, one of ours, and a stale set.
        ns.sh("nft add table inet f2b && \
             nft add chain inet f2b input '{ type filter hook input priority 0; policy drop; }' && \
             nft add chain inet f2b extra && \
             nft add rule inet f2b input jump extra && \
             nft add rule inet f2b extra counter accept && \
             nft add set inet f2b sshd-v4 '{ type ipv4_addr; }' && \
             nft add element inet f2b sshd-v4 '{ 192.0.2.1 }' && \
             nft add set inet f2b sshd-n4 '{ type ipv4_addr; flags interval,timeout; }' && \
             nft add element inet f2b sshd-n4 '{ 10.0.0.0/8 timeout 1h }' && \
             nft add set inet f2b gone-v4 '{ type ipv4_addr; flags timeout; }'");
        ns.run(|| {
            let mut fw = Nftables::new().unwrap();
            fw.setup(&[sshd()]).unwrap();
            let chains = ns.sh("nft list table inet f2b");
            assert!(!chains.contains("chain extra"), "{chains}");
            assert!(
                chains.contains("type filter hook input priority filter - 10; policy accept;"),
                "{chains}"
            );
            assert_eq!(set_names(ns), ["sshd-n4", "sshd-n6", "sshd-v4", "sshd-v6"]);
            assert_eq!(rules(ns).len(), 4);
            assert_eq!(
                ns.sh("nft -a list chain inet f2b input")
                    .matches("handle")
                    .count(),
                5
            );
            // sshd-v4 had to be recreated (no timeout flag); sshd-n4 was adopted with its ban.
            let l = listed(&mut fw);
            assert_eq!(
                l.keys().cloned().collect::<Vec<_>>(),
                vec![key("sshd", "10.0.0.0/8")]
            );
            assert_left(l[&key("sshd", "10.0.0.0/8")], 3600);

            // Policy changed behind our back: the next setup restores it, rules stay.
            let before = rules(ns);
            ns.sh("nft chain inet f2b input '{ policy drop; }'");
            fw.setup(&[sshd()]).unwrap();
            assert!(ns
                .sh("nft list chain inet f2b input")
                .contains("policy accept;"));
            assert_eq!(rules(ns), before);
        });
    });
}

#[test]
fn huge_timeouts_are_clamped() {
    in_netns("huge_timeouts_are_clamped", |ns| {
        ns.run(|| {
            let mut fw = Nftables::new().unwrap();
            fw.setup(&[sshd()]).unwrap();
            let forever = Change::Ban {
                jail: "sshd".into(),
                net: net("192.0.2.1/32"),
                timeout: Some(Duration::MAX),
            };
            enforce(&mut fw, &[forever, ban_ms("sshd", "192.0.2.2/32", 0)]);
            let l = listed(&mut fw);
            let max = f2b::firewall::nft::MAX_TIMEOUT;
            let left = l[&key("sshd", "192.0.2.1/32")].unwrap();
            assert!(
                left <= max && left + Duration::from_secs(5) > max,
                "{left:?}"
            );
            // A zero timeout is 1 ms, not "no timeout".
            assert!(
                !l.contains_key(&key("sshd", "192.0.2.2/32"))
                    || l[&key("sshd", "192.0.2.2/32")].is_some()
            );
        });
    });
}

#[test]
fn foreign_tables_are_never_touched() {
    in_netns("foreign_tables_are_never_touched", |ns| {
        ns.sh(
            "nft add table inet other && \
             nft add set inet other s '{ type ipv4_addr; flags timeout; }' && \
             nft add element inet other s '{ 192.0.2.1 timeout 1h, 192.0.2.2 }' && \
             nft add chain inet other input '{ type filter hook input priority 0; policy accept; }' && \
             nft add rule inet other input ip saddr @s counter accept && \
             nft add table ip f2b && \
             nft add chain ip f2b input '{ type filter hook input priority 5; }' && \
             nft add rule ip f2b input tcp dport 22 counter accept",
        );
        let snapshot = |ns: &NetNs| {
            (
                ns.sh("nft -a list table inet other | grep -v expires"),
                ns.sh("nft -a list table ip f2b"),
            )
        };
        let before = snapshot(ns);
        ns.run(|| {
            let mut fw = Nftables::new().unwrap();
            fw.setup(&[sshd()]).unwrap();
            enforce(
                &mut fw,
                &[
                    ban("sshd", "192.0.2.1/32", Some(60)),
                    ban("sshd", "192.0.2.0/24", None),
                ],
            );
            fw.setup(&[]).unwrap();
            assert!(fw.list().unwrap().is_empty());
            fw.teardown().unwrap();
        });
        assert_eq!(snapshot(ns), before);
        assert!(!ns.sh("nft list tables").contains("inet f2b"));
    });
}

#[test]
fn kernel_expires_elements() {
    in_netns("kernel_expires_elements", |ns| {
        ns.run(|| {
            let mut fw = Nftables::new().unwrap();
            fw.setup(&[sshd()]).unwrap();
            enforce(
                &mut fw,
                &[
                    ban_ms("sshd", "192.0.2.1/32", 2000),
                    ban_ms("sshd", "2001:db8::1/128", 2000),
                    ban_ms("sshd", "10.1.0.0/16", 2000),
                    ban("sshd", "192.0.2.99/32", None),
                ],
            );
            assert_eq!(listed(&mut fw).len(), 4);
            std::thread::sleep(Duration::from_millis(2600));
            let l = listed(&mut fw);
            assert_eq!(
                l.keys().cloned().collect::<Vec<_>>(),
                vec![key("sshd", "192.0.2.99/32")]
            );
            // Re-banning / unbanning expired elements works.
            enforce(
                &mut fw,
                &[
                    ban("sshd", "192.0.2.1/32", Some(60)),
                    ban("sshd", "10.1.0.0/16", Some(60)),
                ],
            );
            enforce(&mut fw, &[unban("sshd", "2001:db8::1/128")]);
            assert_eq!(listed(&mut fw).len(), 3);
        });
    });
}

#[test]
fn multi_page_batch_of_20000_elements_in_one_apply() {
    in_netns("multi_page_batch_of_20000_elements_in_one_apply", |ns| {
        ns.run(|| {
            let mut fw = Nftables::new().unwrap();
            fw.setup(&[sshd()]).unwrap();
            let nets: Vec<String> = (0..20_000u32)
                .map(|i| std::net::Ipv4Addr::from(0x0a00_0000 + i).to_string() + "/32")
                .collect();
            let v6: Vec<String> = (0..5_000u32)
                .map(|i| format!("2001:db8::{i:x}/128"))
                .collect();
            let mut changes: Vec<Change> = nets.iter().map(|n| ban("sshd", n, Some(600))).collect();
            changes.extend(v6.iter().map(|n| ban("sshd", n, Some(600))));
            let t = Instant::now();
            enforce(&mut fw, &changes);
            eprintln!("25,000 elements applied in {:?}", t.elapsed());
            assert_eq!(listed(&mut fw).len(), 25_000);
            // The same again: already enforced, nothing to send.
            enforce(&mut fw, &changes);
            // All re-banned at once with another timeout: 25,000 deletes + 25,000 adds in one
            // transaction.
            let longer: Vec<Change> = nets
                .iter()
                .chain(&v6)
                .map(|n| ban("sshd", n, Some(900)))
                .collect();
            enforce(&mut fw, &longer);
            let l = listed(&mut fw);
            assert_eq!(l.len(), 25_000);
            assert_left(l[&key("sshd", "10.0.78.31/32")], 900);
            let unbans: Vec<Change> = nets.iter().map(|n| unban("sshd", n)).collect();
            enforce(&mut fw, &unbans);
            assert_eq!(listed(&mut fw).len(), 5_000);
        });
    });
}

#[test]
fn zero_prefix_is_refused_and_the_rest_is_applied() {
    in_netns("zero_prefix_is_refused_and_the_rest_is_applied", |ns| {
        ns.run(|| {
            let mut fw = Nftables::new().unwrap();
            fw.setup(&[sshd()]).unwrap();
            for zero in ["0.0.0.0/0", "::/0", "10.0.0.0/0"] {
                assert_eq!(
                    refused(
                        &mut fw,
                        &[ban("sshd", "192.0.2.1/32", None), ban("sshd", zero, None)]
                    ),
                    vec![(1, Refusal::ZeroPrefix)],
                    "{zero}"
                );
            }
            assert_eq!(
                listed(&mut fw).into_keys().collect::<Vec<_>>(),
                vec![key("sshd", "192.0.2.1/32")]
            );
            assert_eq!(
                refused(&mut fw, &[ban("nope", "192.0.2.1/32", None)]),
                vec![(0, Refusal::UnknownJail)]
            );
        });
    });
}

#[test]
fn prefixes_at_the_end_of_the_address_space() {
    in_netns("prefixes_at_the_end_of_the_address_space", |ns| {
        ns.run(|| {
            let mut fw = Nftables::new().unwrap();
            fw.setup(&[sshd()]).unwrap();
            enforce(
                &mut fw,
                &[
                    ban("sshd", "255.255.255.0/24", Some(60)),
                    ban("sshd", "ffff:ffff:ffff:ffff::/64", Some(60)),
                    ban("sshd", "255.255.255.255/32", Some(60)),
                    ban("sshd", "128.0.0.0/1", None),
                ],
            );
            let l = listed(&mut fw);
            assert_eq!(l.len(), 3, "{l:?}"); // 255.255.255.0/24 lies inside 128.0.0.0/1
            assert_eq!(l[&key("sshd", "128.0.0.0/1")], None);
            assert_left(l[&key("sshd", "ffff:ffff:ffff:ffff::/64")], 60);
            ns.sh("nft get element inet f2b sshd-n4 '{ 255.255.255.255 }'");
            ns.sh("nft get element inet f2b sshd-n6 '{ ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff }'");
            enforce(
                &mut fw,
                &[
                    unban("sshd", "ffff:ffff:ffff:ffff::/64"),
                    unban("sshd", "128.0.0.0/1"),
                ],
            );
            // 255.255.255.0/24 is still banned: it is back once the /1 around it is gone.
            let l = listed(&mut fw);
            assert_eq!(l.len(), 2, "{l:?}");
            assert_left(l[&key("sshd", "255.255.255.0/24")], 60);
            assert!(!ns
                .sh_output("nft get element inet f2b sshd-n6 '{ ffff:ffff:ffff:ffff::1 }'")
                .status
                .success());
            enforce(&mut fw, &[ban("sshd", "255.255.255.0/24", Some(60))]);
            enforce(&mut fw, &[ban("sshd", "255.255.255.0/24", Some(90))]);
            assert_left(listed(&mut fw)[&key("sshd", "255.255.255.0/24")], 90);
        });
    });
}

#[test]
fn nested_prefixes_do_not_overlap_in_the_kernel() {
    in_netns("nested_prefixes_do_not_overlap_in_the_kernel", |ns| {
        ns.run(|| {
            let mut fw = Nftables::new().unwrap();
            fw.setup(&[sshd()]).unwrap();
            enforce(
                &mut fw,
                &[
                    ban("sshd", "10.0.1.0/24", Some(60)),
                    ban("sshd", "10.0.2.0/24", Some(90)),
                ],
            );
            // A covering prefix replaces the ones it covers.
            enforce(&mut fw, &[ban("sshd", "10.0.0.0/16", Some(120))]);
            let l = listed(&mut fw);
            assert_eq!(
                l.keys().cloned().collect::<Vec<_>>(),
                vec![key("sshd", "10.0.0.0/16")]
            );
            assert_left(l[&key("sshd", "10.0.0.0/16")], 120);
            // A prefix inside an existing one extends it if it lasts longer, never splits it.
            enforce(&mut fw, &[ban("sshd", "10.0.5.0/24", Some(600))]);
            let l = listed(&mut fw);
            assert_eq!(l.len(), 1);
            assert_left(l[&key("sshd", "10.0.0.0/16")], 600);
            enforce(&mut fw, &[ban("sshd", "10.0.6.0/24", Some(5))]);
            assert_left(listed(&mut fw)[&key("sshd", "10.0.0.0/16")], 600);
            // Lifting the /16 brings back the bans inside it, with their own timeouts.
            enforce(&mut fw, &[unban("sshd", "10.0.0.0/16")]);
            let l = listed(&mut fw);
            assert_eq!(l.len(), 4, "{l:?}");
            assert_left(l[&key("sshd", "10.0.1.0/24")], 60);
            assert_left(l[&key("sshd", "10.0.2.0/24")], 90);
            assert_left(l[&key("sshd", "10.0.5.0/24")], 600);
            assert_left(l[&key("sshd", "10.0.6.0/24")], 5);
            // Same within one apply.
            enforce(
                &mut fw,
                &[
                    ban("sshd", "2001:db8:0:1::/64", Some(60)),
                    ban("sshd", "2001:db8::/48", Some(60)),
                    ban("sshd", "2001:db8:0:2::/64", None),
                ],
            );
            let l = listed(&mut fw);
            // Permanent: the permanent /64 inside it must never end sooner.
            assert_eq!(l[&key("sshd", "2001:db8::/48")], None);
            assert_eq!(l.len(), 5);
        });
    });
}

#[test]
fn kernel_errors_name_the_change_and_the_errno() {
    in_netns("kernel_errors_name_the_change_and_the_errno", |ns| {
        ns.run(|| {
            let mut fw = Nftables::new().unwrap();
            fw.setup(&[sshd()]).unwrap();
            // Someone replaces our set with one that has no timeout support.
            ns.sh(
                "nft flush chain inet f2b input && nft delete set inet f2b sshd-v4 && \
                 nft add set inet f2b sshd-v4 '{ type ipv4_addr; }'",
            );
            // Messages before and after the failing one (sshd-n4, sshd-v4, sshd-v6): the
            // refused ban is named, the transaction goes out again without it.
            let changes = [
                ban("sshd", "10.5.0.0/16", Some(60)),
                ban("sshd", "192.0.2.55/32", Some(60)),
                ban("sshd", "2001:db8::55/128", Some(60)),
            ];
            let applied = fw.apply(&changes).unwrap();
            assert_eq!(applied.refused.len(), 1, "{:?}", applied.refused);
            let r = &applied.refused[0];
            eprintln!("{r}");
            assert_eq!((r.index, &r.change), (1, &changes[1]));
            // A timeout for a set without the timeout flag.
            assert_eq!(r.reason, Refusal::Kernel(libc::EINVAL));
            assert!(!r.reason.is_transient());
            let text = r.to_string();
            assert!(
                text.contains("192.0.2.55") && text.contains("EINVAL"),
                "{text}"
            );
            assert_eq!(
                listed(&mut fw).into_keys().collect::<Vec<_>>(),
                vec![key("sshd", "10.5.0.0/16"), key("sshd", "2001:db8::55/128")],
                "the other bans of the batch are enforced"
            );
            // setup repairs it.
            fw.setup(&[sshd()]).unwrap();
            enforce(&mut fw, &[ban("sshd", "192.0.2.55/32", Some(60))]);
        });
    });
}

/// Regression (issue 11, "bans the firewall refused are reported as done"): one ban the kernel
/// refuses used to fail the whole batch — every other ban of it unenforced — and the engine
/// announced them all as banned. The refused ban is named with its errno now, and every other
/// ban of the batch is in the kernel.
#[test]
fn refused_ban_is_reported_and_the_rest_of_the_batch_is_enforced() {
    in_netns(
        "refused_ban_is_reported_and_the_rest_of_the_batch_is_enforced",
        |ns| {
            ns.run(|| {
                let mut fw = Nftables::new().unwrap();
                fw.setup(&[sshd()]).unwrap();
                // Somebody else puts a range that is no prefix into our interval set.
                ns.sh("nft add element inet f2b sshd-n4 '{ 10.0.0.5-10.0.0.20 timeout 1h }'");
                let changes = [
                    ban("sshd", "192.0.2.1/32", Some(600)),
                    ban("sshd", "10.0.0.16/28", Some(600)), // overlaps it: EEXIST
                    ban("sshd", "10.9.0.0/16", Some(600)),
                    ban("sshd", "2001:db8::1/128", Some(600)),
                ];
                let applied = fw.apply(&changes).unwrap();
                assert_eq!(applied.refused.len(), 1, "{:?}", applied.refused);
                let r = &applied.refused[0];
                eprintln!("{r}");
                assert_eq!((r.index, &r.change), (1, &changes[1]));
                assert_eq!(
                    r.reason,
                    Refusal::Overlap {
                        first: "10.0.0.5".parse().unwrap(),
                        last: "10.0.0.20".parse().unwrap()
                    }
                );
                assert_eq!(r.reason.errno(), Some(libc::EEXIST));
                assert!(!r.reason.is_transient());
                assert_eq!(fw.retries(), 1, "the kernel refused the first transaction");
                // Read back from the kernel: the others are in, the refused one is not.
                ns.sh("nft get element inet f2b sshd-v4 '{ 192.0.2.1 }'");
                ns.sh("nft get element inet f2b sshd-n4 '{ 10.9.1.1 }'");
                ns.sh("nft get element inet f2b sshd-v6 '{ 2001:db8::1 }'");
                let outside = "nft get element inet f2b sshd-n4 '{ 10.0.0.30 }'";
                assert!(!ns.sh_output(outside).status.success());
                // A prefix around the foreign range replaces it.
                enforce(&mut fw, &[ban("sshd", "10.0.0.0/24", Some(600))]);
                ns.sh(outside);
                assert_left(listed(&mut fw)[&key("sshd", "10.0.0.0/24")], 600);
            });
        },
    );
}

#[test]
fn apply_recreates_sets_removed_behind_our_back() {
    in_netns("apply_recreates_sets_removed_behind_our_back", |ns| {
        ns.run(|| {
            let mut fw = Nftables::new().unwrap();
            fw.setup(&[sshd()]).unwrap();
            enforce(&mut fw, &[ban("sshd", "192.0.2.1/32", Some(60))]);
            ns.sh("nft flush ruleset");
            // The index still has 192.0.2.1; the sets are gone: one retry after re-setup.
            enforce(
                &mut fw,
                &[
                    ban("sshd", "192.0.2.1/32", Some(60)),
                    ban("sshd", "192.0.2.2/32", None),
                ],
            );
            assert_eq!(listed(&mut fw).len(), 2);
            assert_eq!(rules(ns).len(), 4);
        });
    });
}

#[test]
fn teardown_deletes_the_table() {
    in_netns("teardown_deletes_the_table", |ns| {
        ns.run(|| {
            let mut fw = Nftables::new().unwrap();
            fw.setup(&[sshd()]).unwrap();
            assert!(ns.sh("nft list tables").contains("table inet f2b"));
            fw.teardown().unwrap();
            assert!(!ns.sh("nft list tables").contains("table inet f2b"));
            fw.teardown().unwrap(); // already gone: fine
            assert!(fw.list().unwrap().is_empty());
        });
    });
}

/// Drops every capability of the calling thread (capset affects one thread only).
fn drop_caps_of_this_thread() {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let mut h = Header {
        version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
        pid: 0,
    };
    let d = [Data {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: valid header and two data structs, as capset(2) requires for version 3.
    let r = unsafe { libc::syscall(libc::SYS_capset, &mut h, d.as_ptr()) };
    assert_eq!(r, 0, "capset: {}", std::io::Error::last_os_error());
}

#[test]
fn without_cap_net_admin_permission_is_denied() {
    in_netns("without_cap_net_admin_permission_is_denied", |ns| {
        ns.run(|| {
            drop_caps_of_this_thread();
            assert!(matches!(
                Nftables::new(),
                Err(FirewallError::PermissionDenied)
            ));
            assert!(matches!(
                spawn_monitor(|_| {}),
                Err(FirewallError::PermissionDenied)
            ));
        });
    });
}

fn monitor_in(
    ns: &NetNs,
) -> (
    f2b::firewall::nft::Monitor,
    mpsc::Receiver<(Instant, MonitorEvent)>,
) {
    let (tx, rx) = mpsc::channel();
    let mon = ns.run(move || {
        spawn_monitor(move |ev| {
            let _ = tx.send((Instant::now(), ev));
        })
        .unwrap()
    });
    (mon, rx)
}

#[test]
fn monitor_reports_foreign_deletions_quickly_and_ignores_our_own() {
    in_netns(
        "monitor_reports_foreign_deletions_quickly_and_ignores_our_own",
        |ns| {
            let (mon, rx) = monitor_in(ns);
            ns.run(move || {
                let mut fw = Nftables::new().unwrap();
                let web = jail("web", &[(80, 80)], Protocol::Tcp, Verdict::Drop);
                fw.setup(&[sshd(), web]).unwrap();
                enforce(&mut fw, &[ban("sshd", "192.0.2.1/32", Some(60))]);
                // Our own changes, even removals, are not reported.
                fw.setup(&[sshd()]).unwrap();
                enforce(&mut fw, &[unban("sshd", "192.0.2.1/32")]);
                fw.teardown().unwrap();
                fw.setup(&[sshd()]).unwrap();
                assert!(
                    rx.recv_timeout(Duration::from_millis(300)).is_err(),
                    "own changes must not be reported"
                );

                // nft delete table inet f2b
                let t0 = Instant::now();
                ns.sh("nft delete table inet f2b");
                let (at, ev) = rx.recv_timeout(Duration::from_secs(2)).expect("no event");
                let latency = at.duration_since(t0);
                eprintln!("delete table: {ev} after {latency:?}");
                assert!(ev.table_deleted());
                assert_eq!(ev.process.as_deref(), Some("nft"));
                assert!(!ev.overrun);
                assert!(latency < Duration::from_millis(500), "{latency:?}");
                assert!(
                    rx.recv_timeout(Duration::from_millis(100)).is_err(),
                    "one event per transaction"
                );

                // The engine's reaction: setup again.
                fw.setup(&[sshd()]).unwrap();
                enforce(&mut fw, &[ban("sshd", "192.0.2.1/32", Some(60))]);
                assert!(rx.recv_timeout(Duration::from_millis(100)).is_err());

                // nft flush ruleset (what `systemctl restart nftables` does first).
                ns.sh("nft add table inet other");
                let t0 = Instant::now();
                ns.sh("nft flush ruleset");
                let (at, ev) = rx.recv_timeout(Duration::from_secs(2)).expect("no event");
                eprintln!("flush ruleset: {ev} after {:?}", at.duration_since(t0));
                assert!(ev.table_deleted());
                assert!(ev.removed.contains(&Removed::Chain("input".into())));
                assert!(ev.removed.contains(&Removed::Set("sshd-v4".into())));
                assert!(at.duration_since(t0) < Duration::from_millis(500));

                // Flushing just our chain is reported too.
                fw.setup(&[sshd()]).unwrap();
                ns.sh("nft flush chain inet f2b input");
                let (_, ev) = rx.recv_timeout(Duration::from_secs(2)).expect("no event");
                assert!(!ev.table_deleted());
                assert_eq!(
                    ev.removed
                        .iter()
                        .filter(|r| matches!(r, Removed::Rule { .. }))
                        .count(),
                    4
                );

                // Changes to other tables are not.
                ns.sh("nft add table inet other && nft delete table inet other");
                assert!(rx.recv_timeout(Duration::from_millis(200)).is_err());
            });
            mon.stop();
        },
    );
}

#[test]
fn monitor_notices_deletions_after_lost_notifications() {
    in_netns("monitor_notices_deletions_after_lost_notifications", |ns| {
        // The callback blocks on its first event, so the monitor stops reading while a huge
        // batch floods the notification group and the table is deleted: the deletion
        // notification is lost (ENOBUFS) and the monitor must find out by re-checking.
        let (tx, rx) = mpsc::channel();
        let (resume_tx, resume_rx) = mpsc::channel::<()>();
        let mon = ns.run(move || {
            let mut first = true;
            spawn_monitor(move |ev| {
                let _ = tx.send(ev);
                if std::mem::take(&mut first) {
                    let _ = resume_rx.recv();
                }
            })
            .unwrap()
        });
        ns.run(move || {
            let mut fw = Nftables::new().unwrap();
            fw.setup(&[sshd()]).unwrap();
            ns.sh("nft flush chain inet f2b input");
            let first = rx
                .recv_timeout(Duration::from_secs(2))
                .expect("first event");
            assert!(!first.overrun);
            fw.setup(&[sshd()]).unwrap();
            let flood: Vec<Change> = (0..400_000u32)
                .map(|i| Change::Ban {
                    jail: "sshd".into(),
                    net: IpNet::from(std::net::IpAddr::from(std::net::Ipv4Addr::from(
                        0x0a00_0000 + i,
                    ))),
                    timeout: Some(Duration::from_secs(600)),
                })
                .collect();
            enforce(&mut fw, &flood);
            ns.sh("nft delete table inet f2b");
            resume_tx.send(()).unwrap();
            let ev = rx.recv_timeout(Duration::from_secs(10)).expect("no event");
            eprintln!("{ev}");
            assert!(ev.overrun, "{ev:?}");
            assert!(ev.table_deleted());
        });
        mon.stop();
    });
}

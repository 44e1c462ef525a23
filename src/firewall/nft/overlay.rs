//! Bans and unbans as a pure function of what the index knows: validated changes → per set the
//! elements to delete and to add in one transaction, each element traced back to the changes it
//! stands for (so that a refused element names its changes), and the index after success.
//!
//! Host sets: the last change of an address wins; a ban of a present element with the same
//! expiry (give or take a second) sends nothing, another expiry replaces it (delete + add); an
//! unban deletes only what is still there.
//!
//! Interval sets: the kernel refuses overlapping elements, while banned prefixes may nest. The
//! kernel gets the outermost wanted prefixes, each lasting as long as the longest ban inside it
//! (nothing is ever enforced shorter than asked, also while f2b is stopped); lifting the outer
//! one puts the inner ones back with their own expiries. A range in the set that is no wanted prefix (added
//! by somebody else) is replaced when it lies inside a wanted prefix; a change it overlaps
//! otherwise cannot be enforced and is refused as a conflict.

use std::collections::HashMap;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::index::{Elems, Expiry, Index, Ranges};
use super::layout::{host_key, SetKind, Span};

/// A validated change addressed to one set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    /// Index into the `sets` given to [`plan`].
    pub set: usize,
    /// Normalised: host bits cleared, the set's family.
    pub net: IpNet,
    /// `Some(expiry)` = ban, `None` = unban.
    pub ban: Option<Expiry>,
}

/// An element to send: a host (`first == last`) or a range, and the group of changes it stands
/// for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elem {
    pub span: Span,
    /// For adds: when it expires.
    pub expiry: Expiry,
    pub group: u32,
}

/// What a successful transaction makes of a set's index entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum After {
    /// Final state of every host touched: (address, its group, expiry or gone).
    Hosts(Vec<(u128, u32, Option<Expiry>)>),
    Ranges(Ranges),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetPlan {
    pub set: usize,
    pub kind: SetKind,
    /// Deleted first, then `adds` added (the same transaction).
    pub dels: Vec<Elem>,
    pub adds: Vec<Elem>,
    pub after: After,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub sets: Vec<SetPlan>,
    /// The group of each op (`NONE` for skipped ops).
    pub op_group: Vec<u32>,
    /// Ops that cannot be enforced: they overlap this range, which is not one of f2b's bans.
    pub conflicts: Vec<(usize, Span)>,
}

pub const NONE: u32 = u32::MAX;

impl Plan {
    /// Nothing to send (the index may still change: see [`SetPlan::after`]).
    pub fn is_empty(&self) -> bool {
        self.sets
            .iter()
            .all(|s| s.dels.is_empty() && s.adds.is_empty())
    }
    /// The ops an element of `group` stands for.
    pub fn ops_of(&self, group: u32) -> impl Iterator<Item = usize> + '_ {
        self.op_group
            .iter()
            .enumerate()
            .filter(move |(_, g)| **g == group)
            .map(|(i, _)| i)
    }
}

/// Plans `ops` against `index`; ops for which `skip` is true are left out (refused earlier).
pub fn plan(
    index: &Index,
    sets: &[(String, SetKind)],
    ops: &[Op],
    skip: &dyn Fn(usize) -> bool,
    now: u64,
) -> Plan {
    let mut out = Plan {
        op_group: vec![NONE; ops.len()],
        ..Default::default()
    };
    let mut next_group = 0u32;
    // A call touches a handful of sets: one pass over the ops per set.
    for (set, (name, kind)) in sets.iter().enumerate() {
        let mine: Vec<usize> = (0..ops.len())
            .filter(|&i| ops[i].set == set && !skip(i))
            .collect();
        if mine.is_empty() {
            continue;
        }
        let empty;
        let elems = match index.sets.get(name) {
            Some(elems) => elems,
            None => {
                empty = Elems::empty(*kind);
                &empty
            }
        };
        let mut sp = SetPlan {
            set,
            kind: *kind,
            dels: Vec::new(),
            adds: Vec::new(),
            after: After::Hosts(Vec::new()),
        };
        match elems {
            Elems::Ranges(r) => {
                let groups = &mut out.op_group;
                let conflicts = &mut out.conflicts;
                plan_ranges(
                    r,
                    &mine,
                    ops,
                    now,
                    &mut next_group,
                    groups,
                    conflicts,
                    &mut sp,
                );
            }
            hosts => plan_hosts(
                hosts,
                &mine,
                ops,
                now,
                &mut next_group,
                &mut out.op_group,
                &mut sp,
            ),
        }
        out.sets.push(sp);
    }
    out
}

fn plan_hosts(
    elems: &Elems,
    mine: &[usize],
    ops: &[Op],
    now: u64,
    next_group: &mut u32,
    op_group: &mut [u32],
    sp: &mut SetPlan,
) {
    // Final state per address, in first-seen order (a hash map only when there are many).
    let mut finals: HashMap<u128, usize> = HashMap::new();
    let mut order: Vec<(u128, u32, Option<Expiry>)> = Vec::with_capacity(mine.len());
    for &i in mine {
        let key = host_key(&ops[i].net);
        let known = if mine.len() <= 16 {
            order.iter().position(|o| o.0 == key)
        } else {
            finals.get(&key).copied()
        };
        let slot = known.unwrap_or_else(|| {
            order.push((key, *next_group, None));
            *next_group += 1;
            if mine.len() > 16 {
                finals.insert(key, order.len() - 1);
            }
            order.len() - 1
        });
        order[slot].2 = ops[i].ban;
        op_group[i] = order[slot].1;
    }
    for &(key, group, fin) in &order {
        let span = Span {
            first: key,
            last: key,
        };
        let cur = elems.host(key).filter(|e| e.live(now));
        let del = Elem {
            span,
            expiry: Expiry::NEVER,
            group,
        };
        match (cur, fin) {
            (Some(_), None) => sp.dels.push(del),
            (None, None) => {}
            (Some(c), Some(e)) if c.close_to(e) => {}
            (cur, Some(expiry)) => {
                if cur.is_some() {
                    sp.dels.push(del);
                }
                sp.adds.push(Elem {
                    span,
                    expiry,
                    group,
                });
            }
        }
    }
    sp.after = After::Hosts(order);
}

/// The prefix of `net` with `len` bits.
fn truncate(net: &IpNet, len: u8) -> IpNet {
    match net {
        IpNet::V4(n) => IpNet::V4(Ipv4Net::new(n.addr(), len).map_or(*n, |x| x.trunc())),
        IpNet::V6(n) => IpNet::V6(Ipv6Net::new(n.addr(), len).map_or(*n, |x| x.trunc())),
    }
}

/// The greatest network (in `Ord` order) inside `net`: its last address as a host.
fn last_inside(net: &IpNet) -> IpNet {
    match net {
        IpNet::V4(n) => IpNet::V4(Ipv4Net::from(n.broadcast())),
        IpNet::V6(n) => IpNet::V6(Ipv6Net::from(n.broadcast())),
    }
}

/// The outermost wanted prefix containing `net`, or `net` itself.
fn outermost(wanted: &std::collections::BTreeMap<IpNet, Expiry>, net: &IpNet) -> IpNet {
    if wanted.is_empty() {
        return *net;
    }
    (0..=net.prefix_len())
        .map(|len| truncate(net, len))
        .find(|p| wanted.contains_key(p))
        .unwrap_or(*net)
}

#[allow(clippy::too_many_arguments)]
fn plan_ranges(
    r: &Ranges,
    mine: &[usize],
    ops: &[Op],
    now: u64,
    next_group: &mut u32,
    op_group: &mut [u32],
    conflicts: &mut Vec<(usize, Span)>,
    sp: &mut SetPlan,
) {
    let mut live: Vec<usize> = mine.to_vec();
    // Every round either plans the set or refuses at least one op.
    loop {
        let mut wanted = r.wanted.clone();
        for &i in &live {
            match ops[i].ban {
                Some(e) => wanted.insert(ops[i].net, e),
                None => wanted.remove(&ops[i].net),
            };
        }
        let mut regions: Vec<IpNet> = live
            .iter()
            .map(|&i| outermost(&wanted, &ops[i].net))
            .collect();
        regions.sort();
        regions.dedup();
        let mut outer: Vec<IpNet> = Vec::with_capacity(regions.len());
        for reg in regions {
            if !outer.last().is_some_and(|o: &IpNet| o.contains(&reg)) {
                outer.push(reg);
            }
        }
        let mut kernel = r.kernel.clone();
        let (mut dels, mut adds) = (Vec::new(), Vec::new());
        let first_group = *next_group;
        let mut refused = Vec::new();
        for (g, region) in outer.iter().enumerate() {
            let group = first_group + g as u32;
            let rspan = Span::of(region);
            let current: Vec<(Span, Expiry)> =
                r.overlapping(rspan).filter(|(_, e)| e.live(now)).collect();
            if let Some((c, _)) = current.iter().find(|(c, _)| !rspan.contains(c)) {
                refused.extend(
                    live.iter()
                        .filter(|&&i| region.contains(&ops[i].net))
                        .map(|&i| (i, *c)),
                );
                continue;
            }
            // The outermost wanted prefixes in the region (the region itself if it is wanted),
            // each lasting as long as the longest ban inside it.
            let mut desired: Vec<(Span, Expiry)> = Vec::new();
            for (n, &e) in wanted.range(*region..=last_inside(region)) {
                let s = Span::of(n);
                match desired.last_mut() {
                    Some((outer, longest)) if outer.contains(&s) => *longest = (*longest).max(e),
                    _ => desired.push((s, e)),
                }
            }
            // Drop the region's ranges from the index (gone, expired or replaced), keep the
            // ones that are already right, add the rest.
            let stale: Vec<u128> = r.overlapping(rspan).map(|(s, _)| s.first).collect();
            for first in stale {
                kernel.remove(&first);
            }
            for &(span, e) in &current {
                match desired.iter().find(|(d, _)| *d == span) {
                    Some(&(_, want)) if e.close_to(want) => {
                        kernel.insert(span.first, (span.last, e));
                    }
                    _ => dels.push(Elem {
                        span,
                        expiry: e,
                        group,
                    }),
                }
            }
            for &(span, expiry) in &desired {
                if let std::collections::btree_map::Entry::Vacant(slot) = kernel.entry(span.first) {
                    slot.insert((span.last, expiry));
                    adds.push(Elem {
                        span,
                        expiry,
                        group,
                    });
                }
            }
        }
        if !refused.is_empty() {
            live.retain(|i| !refused.iter().any(|(r, _)| r == i));
            conflicts.extend(refused);
            continue;
        }
        // The regions are sorted and disjoint: an op's region is the last one that does not
        // sort after it (a binary search; 100,000 restored prefixes made a linear one take
        // tens of seconds).
        for &i in &live {
            let net = &ops[i].net;
            let g = (outer.partition_point(|reg| reg <= net).checked_sub(1))
                .filter(|&g| outer[g].contains(net))
                .expect("every op lies in its region");
            op_group[i] = first_group + g as u32;
        }
        *next_group += outer.len() as u32;
        sp.dels = dels;
        sp.adds = adds;
        sp.after = After::Ranges(Ranges { kernel, wanted });
        return;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const NOW: u64 = 1_000_000;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }
    fn exp(secs: u64) -> Expiry {
        Expiry::after(NOW, Some(Duration::from_secs(secs)))
    }
    fn ban(set: usize, n: &str, secs: u64) -> Op {
        Op {
            set,
            net: net(n),
            ban: Some(exp(secs)),
        }
    }
    fn unban(set: usize, n: &str) -> Op {
        Op {
            set,
            net: net(n),
            ban: None,
        }
    }
    fn sets() -> Vec<(String, SetKind)> {
        vec![
            ("sshd-v4".into(), SetKind::V4),
            ("sshd-n4".into(), SetKind::N4),
        ]
    }
    fn run(index: &Index, ops: &[Op]) -> Plan {
        plan(index, &sets(), ops, &|_| false, NOW)
    }
    fn spans(elems: &[Elem]) -> Vec<Span> {
        elems.iter().map(|e| e.span).collect()
    }
    fn sp(n: &str) -> Span {
        Span::of(&net(n))
    }
    fn index_with_hosts(hosts: &[(&str, Expiry)]) -> Index {
        let mut e = Elems::empty(SetKind::V4);
        for (h, x) in hosts {
            e.set_host(host_key(&net(h)), Some(*x));
        }
        let mut i = Index::default();
        i.sets.insert("sshd-v4".into(), e);
        i
    }
    fn index_with_ranges(kernel: &[(&str, Expiry)], wanted: &[(&str, Expiry)]) -> Index {
        let r = Ranges {
            kernel: kernel
                .iter()
                .map(|(n, e)| (sp(n).first, (sp(n).last, *e)))
                .collect(),
            wanted: wanted.iter().map(|(n, e)| (net(n), *e)).collect(),
        };
        let mut i = Index::default();
        i.sets.insert("sshd-n4".into(), Elems::Ranges(r));
        i
    }

    #[test]
    fn hosts_add_replace_skip_and_delete() {
        let idx = index_with_hosts(&[
            ("10.0.0.1/32", exp(60)),
            ("10.0.0.2/32", exp(60)),
            ("10.0.0.3/32", exp(60)),
            ("10.0.0.4/32", Expiry(NOW - 5)), // expired by itself
        ]);
        let ops = [
            ban(0, "10.0.0.9/32", 60),  // new: add
            ban(0, "10.0.0.1/32", 60),  // same expiry: nothing to send
            ban(0, "10.0.0.2/32", 600), // other expiry: replace
            unban(0, "10.0.0.3/32"),    // present: delete
            unban(0, "10.0.0.4/32"),    // expired: nothing to delete
            unban(0, "10.0.0.5/32"),    // absent: nothing
            ban(0, "10.0.0.4/32", 30),  // expired one banned again: plain add
        ];
        let p = run(&idx, &ops);
        assert_eq!(p.sets.len(), 1);
        let s = &p.sets[0];
        assert_eq!(spans(&s.dels), vec![sp("10.0.0.2/32"), sp("10.0.0.3/32")]);
        assert_eq!(
            spans(&s.adds),
            vec![sp("10.0.0.9/32"), sp("10.0.0.2/32"), sp("10.0.0.4/32")]
        );
        assert_eq!(s.adds[1].expiry, exp(600));
        // 10.0.0.4 was unbanned, then banned: one group, the last change wins.
        assert_eq!(p.op_group[4], p.op_group[6]);
        assert_eq!(p.ops_of(p.op_group[4]).collect::<Vec<_>>(), vec![4, 6]);
        let After::Hosts(after) = &s.after else {
            panic!()
        };
        let fin = |n: &str| after.iter().find(|a| a.0 == host_key(&net(n))).map(|a| a.2);
        assert_eq!(fin("10.0.0.3/32"), Some(None));
        assert_eq!(fin("10.0.0.4/32"), Some(Some(exp(30))));
    }

    #[test]
    fn skipped_ops_are_left_out() {
        let ops = [ban(0, "10.0.0.1/32", 60), ban(0, "10.0.0.2/32", 60)];
        let p = plan(&Index::default(), &sets(), &ops, &|i| i == 0, NOW);
        assert_eq!(spans(&p.sets[0].adds), vec![sp("10.0.0.2/32")]);
        assert_eq!(p.op_group[0], NONE);
        assert!(plan(&Index::default(), &sets(), &ops, &|_| true, NOW).is_empty());
    }

    #[test]
    fn a_covering_prefix_replaces_the_ones_inside() {
        let idx = index_with_ranges(
            &[("10.0.1.0/24", exp(60)), ("10.0.2.0/24", Expiry::NEVER)],
            &[("10.0.1.0/24", exp(60)), ("10.0.2.0/24", Expiry::NEVER)],
        );
        let p = run(&idx, &[ban(1, "10.0.0.0/16", 120)]);
        let s = &p.sets[0];
        assert_eq!(spans(&s.dels), vec![sp("10.0.1.0/24"), sp("10.0.2.0/24")]);
        assert_eq!(spans(&s.adds), vec![sp("10.0.0.0/16")]);
        let After::Ranges(r) = &s.after else { panic!() };
        assert_eq!(r.kernel.len(), 1);
        assert_eq!(r.wanted.len(), 3, "the inner bans are still wanted");

        // Lifting the outer ban brings the inner ones back.
        let idx = index_with_ranges(
            &[("10.0.0.0/16", exp(120))],
            &[
                ("10.0.0.0/16", exp(120)),
                ("10.0.1.0/24", exp(60)),
                ("10.0.2.0/24", Expiry::NEVER),
            ],
        );
        let p = run(&idx, &[unban(1, "10.0.0.0/16")]);
        let s = &p.sets[0];
        assert_eq!(spans(&s.dels), vec![sp("10.0.0.0/16")]);
        assert_eq!(spans(&s.adds), vec![sp("10.0.1.0/24"), sp("10.0.2.0/24")]);
        assert_eq!(s.adds[1].expiry, Expiry::NEVER);
    }

    #[test]
    fn a_prefix_inside_a_wanted_one_extends_it_if_it_lasts_longer() {
        let idx = index_with_ranges(&[("10.0.0.0/16", exp(60))], &[("10.0.0.0/16", exp(60))]);
        let p = run(&idx, &[ban(1, "10.0.5.0/24", 30), unban(1, "10.0.7.0/24")]);
        assert!(p.is_empty());
        let After::Ranges(r) = &p.sets[0].after else {
            panic!()
        };
        assert!(r.wanted.contains_key(&net("10.0.5.0/24")));
        assert_eq!(p.op_group[0], p.op_group[1], "both in the /16's region");
        // A longer ban inside: the /16 lasts as long (and splits nothing).
        let p = run(&idx, &[ban(1, "10.0.5.0/24", 600)]);
        assert_eq!(spans(&p.sets[0].dels), vec![sp("10.0.0.0/16")]);
        assert_eq!(spans(&p.sets[0].adds), vec![sp("10.0.0.0/16")]);
        assert_eq!(p.sets[0].adds[0].expiry, exp(600));
    }

    #[test]
    fn a_foreign_range_crossing_a_ban_is_a_conflict_and_the_others_go_ahead() {
        // Somebody added 10.0.0.5-10.0.0.20 to our set.
        let foreign = Span {
            first: 0x0a00_0005,
            last: 0x0a00_0014,
        };
        let mut idx = index_with_ranges(&[], &[]);
        if let Some(Elems::Ranges(r)) = idx.sets.get_mut("sshd-n4") {
            r.kernel
                .insert(foreign.first, (foreign.last, Expiry::NEVER));
        }
        let ops = [
            ban(1, "10.0.0.16/28", 60), // crosses it
            ban(1, "10.9.0.0/16", 60),  // elsewhere
            ban(1, "10.0.0.0/8", 60),   // covers it: replaces it
        ];
        let p = run(&idx, &ops[..2]);
        assert_eq!(p.conflicts, vec![(0, foreign)]);
        assert_eq!(spans(&p.sets[0].adds), vec![sp("10.9.0.0/16")]);
        let p = run(&idx, &ops[2..]);
        assert!(p.conflicts.is_empty());
        assert_eq!(spans(&p.sets[0].dels), vec![foreign]);
        assert_eq!(spans(&p.sets[0].adds), vec![sp("10.0.0.0/8")]);
    }

    #[test]
    fn unbanning_a_prefix_that_is_not_there_sends_nothing() {
        let idx = index_with_ranges(&[("10.1.0.0/16", Expiry(NOW - 1))], &[]);
        let p = run(&idx, &[unban(1, "10.1.0.0/16"), unban(1, "10.2.0.0/16")]);
        assert!(p.is_empty());
        let After::Ranges(r) = &p.sets[0].after else {
            panic!()
        };
        assert!(r.kernel.is_empty(), "the expired range is forgotten");
    }

    /// Restoring 100,000 prefix bans took tens of seconds: each op's region was searched
    /// linearly. Every op still lands in its own region, nested ones in their container's.
    #[test]
    fn restoring_many_prefixes_finds_each_region_by_search() {
        let idx = index_with_ranges(&[("10.7.0.0/16", exp(60))], &[("10.7.0.0/16", exp(60))]);
        let mut ops: Vec<Op> = (0..=255)
            .rev()
            .map(|i| ban(1, &format!("10.{i}.9.0/24"), 30))
            .collect();
        ops.push(ban(1, "10.7.200.0/24", 30));
        ops.push(ban(1, "10.3.0.0/16", 30));
        let p = run(&idx, &ops);
        let group = |n: &str| p.op_group[ops.iter().position(|o| o.net == net(n)).unwrap()];
        // 256 regions: the /24s, the existing /16 holding 10.7.9.0/24 and 10.7.200.0/24, and
        // the new /16 holding 10.3.9.0/24.
        assert_eq!(
            p.op_group
                .iter()
                .collect::<std::collections::HashSet<_>>()
                .len(),
            256
        );
        assert_eq!(group("10.7.9.0/24"), group("10.7.200.0/24"));
        assert_eq!(group("10.3.9.0/24"), group("10.3.0.0/16"));
        assert!(group("10.2.9.0/24") < group("10.3.0.0/16"));
        assert!(group("10.3.0.0/16") < group("10.4.9.0/24"));
        assert_eq!(group("10.0.9.0/24"), 0);
        assert_eq!(group("10.255.9.0/24"), 255);
        let adds = spans(&p.sets[0].adds);
        assert_eq!(
            adds.len(),
            255,
            "the existing /16 lasts longer: nothing to send for it"
        );
        assert!(adds.contains(&sp("10.3.0.0/16")) && !adds.contains(&sp("10.3.9.0/24")));
    }
}

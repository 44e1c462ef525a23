//! Blocklist feeds in the table: their set groups (`feed.NAME-n4`/`-n6`, interval sets only)
//! and a sync of a set's ranges to a wanted list as a diff, in bounded transactions.
//!
//! A step takes the differences (ranges to delete, ranges to add) in address order and cuts
//! them into pieces no two of which touch the same addresses, so that each transaction leaves
//! the set consistent (the kernel refuses overlapping elements): a step sends whole pieces until
//! about `budget` elements. The index is updated from each committed transaction; an answer
//! that shows it was wrong (EEXIST, ENOENT) makes the set be read again, once per step.

use super::index::{Elems, Expiry};
use super::layout::{GroupSpec, Owner, SetKind, Span};
use super::overlay::Elem;
use super::socket::Reply;
use super::{kernel_error, Nftables};
use crate::feeds::AddrRanges;
use crate::firewall::{FeedRules, FeedSync, FirewallError};

/// One difference: a range to delete or to add.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Diff {
    span: Span,
    del: bool,
}

/// The differences between what a set holds and `want`, in address order (deletes before adds
/// at the same address).
fn diff(held: &Elems, want: &[(u128, u128)]) -> Vec<Diff> {
    let Elems::Ranges(r) = held else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut w = want.iter().peekable();
    let mut h = r.kernel.iter().peekable();
    let permanent = |e: &Expiry| *e == Expiry::NEVER;
    loop {
        match (h.peek(), w.peek()) {
            (None, None) => break,
            (Some((&first, (last, exp))), Some(&&(wf, wl)))
                if first == wf && *last == wl && permanent(exp) =>
            {
                h.next();
                w.next();
            }
            (Some((&first, (last, _))), want_next)
                if want_next.is_none_or(|&&(wf, _)| first <= wf) =>
            {
                out.push(Diff {
                    span: Span { first, last: *last },
                    del: true,
                });
                h.next();
            }
            (_, Some(&&(first, last))) => {
                out.push(Diff {
                    span: Span { first, last },
                    del: false,
                });
                w.next();
            }
            (Some(_), None) => unreachable!("covered by the delete arm"),
        }
    }
    out
}

/// The first pieces of `diffs` (in order) holding about `budget` elements: a cut only where
/// no delete and add share an address (or touch).
fn first_pieces(diffs: &[Diff], budget: usize) -> usize {
    let mut reach: Option<u128> = None;
    let mut taken = 0;
    for (i, d) in diffs.iter().enumerate() {
        let separate = reach.is_none_or(|r| d.span.first > r.saturating_add(1));
        if separate && taken >= budget {
            return i;
        }
        reach = Some(reach.map_or(d.span.last, |r| r.max(d.span.last)));
        taken += 2;
    }
    diffs.len()
}

impl Nftables {
    /// Sets up the feeds' groups; other owners' groups stay.
    pub(super) fn setup_feed_groups(&mut self, feeds: &[FeedRules]) -> Result<(), FirewallError> {
        let groups = feeds
            .iter()
            .map(GroupSpec::feed)
            .collect::<Result<Vec<_>, _>>()?;
        self.set_groups(Owner::Feed, groups)
    }

    /// One step of feed `name`'s sync (see [`crate::firewall::Firewall::sync_feed`]).
    pub(super) fn sync_feed_step(
        &mut self,
        name: &str,
        want: &AddrRanges,
        budget: usize,
    ) -> Result<FeedSync, FirewallError> {
        let group = self
            .groups
            .iter()
            .find(|g| g.id.owner == Owner::Feed && g.id.name == name)
            .ok_or_else(|| FirewallError::UnknownGroup(format!("feed {name}")))?;
        let sets: Vec<(String, SetKind)> = group.set_names().collect();
        for (set, kind) in &sets {
            if (self.stale.contains(set) || !self.index.sets.contains_key(set))
                && !self.resync(set, *kind)?
            {
                self.resetup()?;
            }
        }
        let mut reread = false;
        loop {
            let mut batch = self.conn.batch();
            let (mut sent, mut remaining) = (0, 0);
            let mut plan: Vec<(usize, Vec<Diff>)> = Vec::new();
            for (i, (set, kind)) in sets.iter().enumerate() {
                let list = if kind.is_v6() { &want.v6 } else { &want.v4 };
                let empty = Elems::empty(*kind);
                let held = self.index.sets.get(set).unwrap_or(&empty);
                let diffs = diff(held, list);
                let n = first_pieces(&diffs, budget.saturating_sub(sent).max(1));
                let n = if sent >= budget { 0 } else { n };
                remaining += diffs.len() - n;
                sent += n;
                if n > 0 {
                    plan.push((i, diffs[..n].to_vec()));
                }
            }
            if plan.is_empty() {
                return Ok(self.feed_sync(&sets, 0, remaining));
            }
            let now = self.clock.now();
            for del in [true, false] {
                for (i, diffs) in &plan {
                    let elems: Vec<Elem> = diffs
                        .iter()
                        .filter(|d| d.del == del)
                        .map(|d| Elem {
                            span: d.span,
                            expiry: Expiry::NEVER,
                            group: 0,
                        })
                        .collect();
                    let (set, kind) = &sets[*i];
                    batch.elems(set, *kind, del, &elems, now, &|_| false);
                }
            }
            match self.conn.commit(&mut batch) {
                Ok(Reply::Committed) => {
                    self.commit_feed(&sets, &plan);
                    return Ok(self.feed_sync(&sets, sent, remaining));
                }
                Ok(Reply::Refused(errors)) => {
                    let (msg, ack) = errors.into_iter().next().expect("a refused message");
                    let stale = [libc::EEXIST, libc::ENOENT].contains(&ack.errno);
                    if stale && !reread {
                        // The set is not what the index says: read it, plan again.
                        reread = true;
                        self.retries += 1;
                        for (set, kind) in &sets {
                            self.reread(set, *kind)?;
                        }
                        continue;
                    }
                    let what = batch.describe(msg, ack.offset);
                    return Err(kernel_error(what, ack.errno, ack.message.as_deref()));
                }
                Ok(Reply::Aborted(ack)) => {
                    let what = format!("the feed {name}'s transaction");
                    return Err(kernel_error(what, ack.errno, ack.message.as_deref()));
                }
                Err(e) => {
                    // No complete answer: read the sets again before the next step.
                    for (set, _) in &sets {
                        self.stale.insert(set.clone());
                    }
                    return Err(e);
                }
            }
        }
    }

    /// A committed step: the index takes its changes.
    fn commit_feed(&mut self, sets: &[(String, SetKind)], plan: &[(usize, Vec<Diff>)]) {
        for (i, diffs) in plan {
            let (set, kind) = &sets[*i];
            let elems = self
                .index
                .sets
                .entry(set.clone())
                .or_insert_with(|| Elems::empty(*kind));
            if let Elems::Ranges(r) = elems {
                for d in diffs.iter().filter(|d| d.del) {
                    r.kernel.remove(&d.span.first);
                }
                for d in diffs.iter().filter(|d| !d.del) {
                    r.kernel.insert(d.span.first, (d.span.last, Expiry::NEVER));
                }
            }
        }
    }

    fn feed_sync(&self, sets: &[(String, SetKind)], sent: usize, remaining: usize) -> FeedSync {
        let count = |v6: bool| {
            sets.iter()
                .filter(|(_, k)| k.is_v6() == v6)
                .filter_map(|(s, _)| match self.index.sets.get(s) {
                    Some(Elems::Ranges(r)) => Some(r.kernel.len()),
                    _ => None,
                })
                .sum()
        };
        FeedSync {
            sent,
            remaining,
            held: (count(false), count(true)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firewall::nft::index::Ranges;

    fn held(spans: &[(u128, u128)], exp: Expiry) -> Elems {
        Elems::Ranges(Ranges {
            kernel: spans.iter().map(|&(f, l)| (f, (l, exp))).collect(),
            wanted: Default::default(),
        })
    }
    fn d(first: u128, last: u128, del: bool) -> Diff {
        Diff {
            span: Span { first, last },
            del,
        }
    }

    #[test]
    fn diff_keeps_what_is_right_and_orders_by_address() {
        let h = held(&[(10, 19), (30, 39), (50, 59)], Expiry::NEVER);
        let want = [(10, 19), (30, 44), (60, 60)];
        assert_eq!(
            diff(&h, &want),
            vec![
                d(30, 39, true),
                d(30, 44, false),
                d(50, 59, true),
                d(60, 60, false)
            ]
        );
        assert!(diff(&h, &[(10, 19), (30, 39), (50, 59)]).is_empty());
        // An element with a timeout (somebody else's) is replaced by a permanent one.
        let h = held(&[(10, 19)], Expiry(5));
        assert_eq!(
            diff(&h, &[(10, 19)]),
            vec![d(10, 19, true), d(10, 19, false)]
        );
    }

    #[test]
    fn pieces_never_split_overlapping_changes() {
        let diffs = vec![
            d(0, 9, true),
            d(0, 4, false),
            d(5, 9, false), // touches the delete: same piece
            d(20, 29, false),
            d(40, 49, true),
        ];
        assert_eq!(first_pieces(&diffs, 1), 3);
        assert_eq!(first_pieces(&diffs, 6), 3);
        assert_eq!(first_pieces(&diffs, 7), 4);
        assert_eq!(first_pieces(&diffs, 1000), 5);
        assert_eq!(first_pieces(&[], 10), 0);
    }
}

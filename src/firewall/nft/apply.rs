//! `apply`: validated changes → transactions, every refusal traced back to its changes and
//! reported, everything else enforced.
//!
//! Each round plans the changes against the index (a pure function, `overlay.rs`), sends one
//! transaction and reads the answers. A transaction the kernel refused in part applied nothing.
//! Each refused element is traced back to its changes (the sequence number names the message,
//! the error's attribute offset the element) — in a host set every error, in an interval set
//! the first (a later one may follow from it). It is then either a correction — the index was
//! wrong: an element somebody else added (EEXIST on an add) or removed (ENOENT on a delete);
//! the set is read again, later the element corrected — or a refusal of those changes, and the
//! transaction goes out again without them. An error that names no element makes the set be
//! read again, then its changes be sent in messages of their own. At most [`MAX_ROUNDS`]
//! rounds.

use std::collections::HashSet;

use super::index::{Elems, Expiry};
use super::layout::{Owner, SetKind};
use super::overlay::{self, After, Op, Plan, NONE};
use super::socket::Reply;
use super::{Nftables, MAX_TIMEOUT};
use crate::firewall::{
    errno_name, normalize_net, Applied, Change, FirewallError, Refusal, Refused,
};

/// Changes per transaction: bigger applies are split (a ban's delete and add always stay in
/// one transaction).
const CHUNK_OPS: usize = 125_000;
/// Transactions per chunk before the changes still refused count as unsettled.
pub const MAX_ROUNDS: usize = 8;

/// The sets a call touches, by position.
type Sets = [(String, SetKind)];

impl Nftables {
    pub(super) fn apply_changes(&mut self, changes: &[Change]) -> Result<Applied, FirewallError> {
        let now = self.clock.now();
        let mut refused = Vec::new();
        // The sets touched, in order of first use (a handful: a linear search is fastest).
        let mut sets: Vec<(String, SetKind)> = Vec::new();
        let mut set_keys: Vec<(&str, SetKind)> = Vec::new();
        let mut ops = Vec::with_capacity(changes.len());
        let mut origin = Vec::with_capacity(changes.len());
        for (index, change) in changes.iter().enumerate() {
            let (Change::Ban { jail, net, .. } | Change::Unban { jail, net }) = change;
            let group = self
                .groups
                .iter()
                .find(|g| g.id.owner == Owner::Jail && g.id.name == *jail);
            let target = match group {
                None => Err(Refusal::UnknownJail),
                Some(g) => normalize_net(net).map(|n| (g, n)),
            };
            let (group, net) = match target {
                Ok(t) => t,
                Err(reason) => {
                    let change = change.clone();
                    refused.push(Refused {
                        index,
                        change,
                        reason,
                    });
                    continue;
                }
            };
            let kind = SetKind::for_net(&net, &group.kinds);
            let key = (jail.as_str(), kind);
            let set = match set_keys.iter().position(|k| *k == key) {
                Some(set) => set,
                None => {
                    set_keys.push(key);
                    sets.push((group.id.set_name(kind), kind));
                    sets.len() - 1
                }
            };
            let ban = match change {
                Change::Ban { timeout, .. } => {
                    Some(Expiry::after(now, timeout.map(|t| t.min(MAX_TIMEOUT))))
                }
                Change::Unban { .. } => None,
            };
            ops.push(Op { set, net, ban });
            origin.push(index);
        }
        let mut done = 0;
        while done < ops.len() {
            let chunk = &ops[done..(done + CHUNK_OPS).min(ops.len())];
            let reasons = match self.apply_ops(&sets, chunk) {
                Ok(reasons) => reasons,
                Err(e) if done == 0 => return Err(e),
                Err(e) => {
                    // The earlier chunks are enforced: the rest is not.
                    tracing::warn!(error = %e, "nftables: {} change(s) not applied", ops.len() - done);
                    let reason = Refusal::from_error(&e);
                    (0..ops.len() - done).map(|i| (i, reason)).collect()
                }
            };
            for (i, reason) in reasons {
                let index = origin[done + i];
                let change = changes[index].clone();
                refused.push(Refused {
                    index,
                    change,
                    reason,
                });
            }
            done += chunk.len();
        }
        refused.sort_by_key(|r| r.index);
        Ok(Applied { refused })
    }

    /// One chunk of ops → the ops not enforced, with why.
    fn apply_ops(
        &mut self,
        sets: &Sets,
        ops: &[Op],
    ) -> Result<Vec<(usize, Refusal)>, FirewallError> {
        for (name, kind) in sets {
            if self.stale.contains(name) && !self.resync(name, *kind)? {
                self.resetup()?;
            }
        }
        let n = ops.len();
        let mut state = vec![OpState::default(); n];
        let mut reread: HashSet<usize> = HashSet::new();
        let mut last_plan = Plan::default();
        for _round in 0..MAX_ROUNDS {
            let now = self.clock.now();
            let skip = |i: usize| state[i].refusal.is_some();
            let plan = overlay::plan(&self.index, sets, ops, &skip, now);
            for &(op, span) in &plan.conflicts {
                let v6 = sets[ops[op].set].1.is_v6();
                let (first, last) = (span.first_addr(v6), span.last_addr(v6));
                tracing::warn!(
                    F2B_ADDRESS = %ops[op].net, set = %sets[ops[op].set].0,
                    "nftables: {} overlaps {first}-{last}, an element f2b did not add", ops[op].net
                );
                state[op].refusal = Some(Refusal::Overlap { first, last });
            }
            if plan.is_empty() {
                self.commit_index(sets, plan);
                return Ok(collect(state));
            }
            let apart: HashSet<u32> = (0..n)
                .filter(|&i| state[i].isolated)
                .map(|i| plan.op_group[i])
                .collect();
            let apart = |g: u32| apart.contains(&g);
            let mut batch = self.conn.batch();
            for (del, sp) in [true, false]
                .into_iter()
                .flat_map(|d| plan.sets.iter().map(move |sp| (d, sp)))
            {
                let elems = if del { &sp.dels } else { &sp.adds };
                batch.elems(&sets[sp.set].0, sp.kind, del, elems, now, &apart);
            }
            let errors = match self.conn.commit(&mut batch) {
                Ok(Reply::Committed) => {
                    self.commit_index(sets, plan);
                    return Ok(collect(state));
                }
                Ok(Reply::Refused(errors)) => errors,
                Ok(Reply::Aborted(ack)) if ack.errno == libc::EPERM => {
                    return Err(FirewallError::PermissionDenied)
                }
                Ok(Reply::Aborted(ack)) => {
                    tracing::warn!(
                        errno = ack.errno,
                        "nftables refused a transaction of {} messages as a whole: {}",
                        batch.len(),
                        errno_name(ack.errno)
                    );
                    refuse_sent(&mut state, &plan, Refusal::Batch(ack.errno));
                    return Ok(collect(state));
                }
                Err(FirewallError::PermissionDenied) => {
                    return Err(FirewallError::PermissionDenied)
                }
                Err(e) => {
                    // No complete answer: the transaction may or may not have been applied.
                    tracing::warn!(error = %e, "nftables: no complete answer to a transaction");
                    for sp in &plan.sets {
                        self.stale.insert(sets[sp.set].0.clone());
                    }
                    refuse_sent(&mut state, &plan, Refusal::from_error(&e));
                    return Ok(collect(state));
                }
            };
            self.retries += 1;
            let mut first_of_set: HashSet<&str> = HashSet::new();
            for (msg, ack) in &errors {
                let Some(list) = batch.elem_list_of(*msg) else {
                    continue;
                };
                let Some(set) = sets.iter().position(|(s, _)| *s == list.set) else {
                    continue;
                };
                let (name, kind) = (&sets[set].0, sets[set].1);
                let first = first_of_set.insert(&list.set);
                let group = batch.group_at(*msg, ack.offset);
                // In a host set every element stands alone: each error names the state of its
                // own address. In an interval set a later error may follow from an earlier one.
                if !first && (kind.is_interval() || group.is_none()) {
                    continue;
                }
                let Some(group) = group else {
                    // No element named (older kernels): read the set, then isolate.
                    if reread.insert(set) {
                        self.reread(name, kind)?;
                        continue;
                    }
                    let groups = batch.groups_of(*msg);
                    for op in groups.iter().flat_map(|&g| plan.ops_of(g)) {
                        if groups.len() == 1 {
                            state[op].refusal = Some(Refusal::Kernel(ack.errno));
                        }
                        state[op].isolated = true;
                    }
                    continue;
                };
                let mine: Vec<usize> = plan.ops_of(group).collect();
                let stale = (ack.errno == libc::ENOENT && list.del)
                    || (ack.errno == libc::EEXIST && !list.del);
                if stale && mine.iter().all(|&o| state[o].strikes < 2) {
                    mine.iter().for_each(|&o| state[o].strikes += 1);
                    tracing::debug!(
                        errno = ack.errno,
                        "nftables: {} failed, correcting what f2b knows",
                        batch.describe(*msg, ack.offset)
                    );
                    // The first time, read the whole set again (a stale index is seldom wrong
                    // about one element only); then correct element by element.
                    if reread.insert(set) {
                        self.reread(name, kind)?;
                    } else {
                        self.correct(&plan, name, kind, group, list.del)?;
                    }
                    continue;
                }
                tracing::warn!(
                    errno = ack.errno, set = %name,
                    "nftables refused {}: {}{}",
                    batch.describe(*msg, ack.offset),
                    errno_name(ack.errno),
                    ack.message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default()
                );
                for o in mine {
                    state[o].refusal = Some(Refusal::Kernel(ack.errno));
                }
            }
            last_plan = plan;
        }
        refuse_sent(&mut state, &last_plan, Refusal::Unsettled(MAX_ROUNDS));
        Ok(collect(state))
    }

    /// The index was wrong about the element of `group`: a delete found nothing (ENOENT) or an
    /// add found it already there (EEXIST).
    fn correct(
        &mut self,
        plan: &Plan,
        set: &str,
        kind: SetKind,
        group: u32,
        del: bool,
    ) -> Result<(), FirewallError> {
        if kind.is_interval() {
            return self.reread(set, kind);
        }
        let key = plan
            .sets
            .iter()
            .flat_map(|s| s.dels.iter().chain(&s.adds))
            .find(|e| e.group == group)
            .map(|e| e.span.first);
        if let (Some(key), Some(elems)) = (key, self.index.sets.get_mut(set)) {
            elems.set_host(key, if del { None } else { Some(Expiry::UNKNOWN) });
        }
        Ok(())
    }

    /// Reads a set again; if it is gone, sets the table up again.
    pub(super) fn reread(&mut self, set: &str, kind: SetKind) -> Result<(), FirewallError> {
        if !self.resync(set, kind)? {
            self.resetup()?;
        }
        Ok(())
    }

    /// A committed transaction: the index takes the plan's final state.
    fn commit_index(&mut self, sets: &Sets, plan: Plan) {
        for sp in plan.sets {
            let (name, kind) = &sets[sp.set];
            let elems = match self.index.sets.get_mut(name) {
                Some(e) => e,
                None => self
                    .index
                    .sets
                    .entry(name.clone())
                    .or_insert_with(|| Elems::empty(*kind)),
            };
            match (elems, sp.after) {
                (Elems::Ranges(r), After::Ranges(new)) => *r = new,
                (hosts, After::Hosts(finals)) => {
                    for (key, _, fin) in finals {
                        hosts.set_host(key, fin);
                    }
                }
                (_, After::Ranges(_)) => {}
            }
        }
    }
}

/// Where an op stands in its chunk's rounds.
#[derive(Debug, Clone, Copy, Default)]
struct OpState {
    refusal: Option<Refusal>,
    /// Corrections of the index made for it (a third one is a refusal).
    strikes: u8,
    /// Its elements go in messages of their own.
    isolated: bool,
}

/// Refuses every op not refused yet whose elements were in the transaction (ops that needed
/// nothing sent hold anyway).
fn refuse_sent(state: &mut [OpState], plan: &Plan, reason: Refusal) {
    let sent: HashSet<u32> = plan
        .sets
        .iter()
        .flat_map(|s| s.dels.iter().chain(&s.adds))
        .map(|e| e.group)
        .collect();
    for (op, s) in state.iter_mut().enumerate() {
        let group = plan.op_group.get(op).copied().unwrap_or(NONE);
        if s.refusal.is_none() && sent.contains(&group) {
            s.refusal = Some(reason);
        }
    }
}

fn collect(state: Vec<OpState>) -> Vec<(usize, Refusal)> {
    state
        .into_iter()
        .enumerate()
        .filter_map(|(i, s)| Some((i, s.refusal?)))
        .collect()
}

//! Setup as a pure function: what the kernel holds under `inet f2b` and the desired set groups
//! → the steps of one transaction that makes the table match, keeping every set (and its
//! elements) whose properties are still right.
//!
//! The reconcile is scoped to one [`Owner`]: its sets and rules that are no longer desired are
//! removed, objects of other owners are left alone (they are set up by their own module), and
//! objects that belong to no owner (foreign chains, rules without our comment, stale names)
//! are removed: f2b owns the table.

use std::collections::{BTreeMap, BTreeSet};

use super::layout::{self, GroupSpec, Owner, SetKind, CHAIN_NAME};
use super::wire::{ChainInfo, RuleInfo, SetInfo, NFT_SET_ANONYMOUS};

/// What the kernel holds under `inet f2b` (nothing if the table does not exist).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelState {
    pub chains: Vec<ChainInfo>,
    pub sets: Vec<SetInfo>,
    pub rules: Vec<RuleInfo>,
}

/// One step of the setup transaction, in the order they must be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Create or adopt the table (an existing one keeps its contents).
    AddTable,
    DelRule {
        chain: String,
        handle: u64,
        comment: Option<String>,
    },
    DelChain(String),
    DelSet(String),
    /// Create the base chain, or reset an existing one's policy to accept.
    AddChain,
    AddSet {
        name: String,
        kind: SetKind,
    },
    /// The rule of `desired[group]`'s set `kind`.
    AddRule {
        group: usize,
        kind: SetKind,
    },
}

/// The transaction and what it does to the sets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub steps: Vec<Step>,
    /// Desired sets that are empty afterwards (created or recreated).
    pub fresh: BTreeSet<String>,
    /// Desired sets that keep their elements.
    pub kept: BTreeSet<String>,
}

/// Whose is this object? `None`: nobody's (to be removed).
fn set_owner(name: &str) -> Option<Owner> {
    layout::parse_set_name(name).map(|(g, _)| g.owner)
}

fn is_anonymous(s: &SetInfo) -> bool {
    s.flags & NFT_SET_ANONYMOUS != 0 || s.name.starts_with("__")
}

/// The steps that make the table hold `desired` (every group f2b knows, of any owner), removing
/// what `scope` no longer wants.
pub fn reconcile(kernel: &KernelState, desired: &[GroupSpec], scope: Owner) -> Plan {
    let mut want_sets: BTreeMap<String, SetKind> = BTreeMap::new();
    let mut want_rules: BTreeMap<String, (usize, SetKind)> = BTreeMap::new();
    for (i, g) in desired.iter().enumerate() {
        for (name, kind) in g.set_names() {
            want_rules.insert(g.rule_comment(kind), (i, kind));
            want_sets.insert(name, kind);
        }
    }
    let recreate_chain = kernel
        .chains
        .iter()
        .any(|c| c.name == CHAIN_NAME && !layout::chain_matches(c));
    let existing: BTreeMap<&str, &SetInfo> = kernel
        .sets
        .iter()
        .filter(|s| !is_anonymous(s))
        .map(|s| (s.name.as_str(), s))
        .collect();
    // Desired sets whose properties are wrong: deleted and created again.
    let recreate: BTreeSet<&str> = existing
        .iter()
        .filter(|(name, s)| {
            want_sets
                .get(**name)
                .is_some_and(|&k| !layout::set_matches(s, k))
        })
        .map(|(name, _)| *name)
        .collect();
    let delete_set = |name: &str| {
        recreate.contains(name)
            || (!want_sets.contains_key(name) && set_owner(name).is_none_or(|o| o == scope))
    };

    let mut plan = Plan::default();
    plan.steps.push(Step::AddTable);

    // Rules: keep the first rule of each wanted comment (and rules of other owners' groups we
    // do not know), as long as the chain and the set they use stay; delete everything else.
    let mut kept_rules: BTreeSet<&str> = BTreeSet::new();
    for r in &kernel.rules {
        let comment = r.comment.as_deref().unwrap_or_default();
        let keep = r.chain == CHAIN_NAME
            && !recreate_chain
            && !kept_rules.contains(comment)
            && match want_rules.get(comment) {
                Some(&(g, kind)) => !delete_set(&desired[g].id.set_name(kind)),
                None => layout::comment_group(comment).is_some_and(|g| g.owner != scope),
            };
        if keep {
            kept_rules.insert(comment);
        } else {
            plan.steps.push(Step::DelRule {
                chain: r.chain.clone(),
                handle: r.handle,
                comment: r.comment.clone(),
            });
        }
    }
    for c in &kernel.chains {
        if c.name != CHAIN_NAME || recreate_chain {
            plan.steps.push(Step::DelChain(c.name.clone()));
        }
    }
    for name in existing.keys() {
        if delete_set(name) {
            plan.steps.push(Step::DelSet(name.to_string()));
        }
    }

    plan.steps.push(Step::AddChain);
    for (name, &kind) in &want_sets {
        if !existing.contains_key(name.as_str()) || recreate.contains(name.as_str()) {
            plan.steps.push(Step::AddSet {
                name: name.clone(),
                kind,
            });
            plan.fresh.insert(name.clone());
        } else {
            plan.kept.insert(name.clone());
        }
    }
    for (comment, &(group, kind)) in &want_rules {
        if !kept_rules.contains(comment.as_str()) {
            plan.steps.push(Step::AddRule { group, kind });
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firewall::nft::layout::{GroupId, Scope};
    use crate::firewall::nft::wire::NFT_SET_TIMEOUT;
    use crate::firewall::{JailRules, PortRange, Protocol, Verdict};

    fn jail(name: &str, port: u16) -> GroupSpec {
        GroupSpec::jail(&JailRules {
            name: name.into(),
            ports: vec![PortRange {
                first: port,
                last: port,
            }],
            protocol: Protocol::Tcp,
            verdict: Verdict::Drop,
        })
        .unwrap()
    }

    fn feed(name: &str) -> GroupSpec {
        GroupSpec {
            id: GroupId::new(Owner::Feed, name).unwrap(),
            kinds: SetKind::INTERVALS.to_vec(),
            scope: Scope::new(&[], Protocol::All, Verdict::Drop).unwrap(),
        }
    }

    fn base_chain() -> ChainInfo {
        ChainInfo {
            table: "f2b".into(),
            name: CHAIN_NAME.into(),
            hook: Some((layout::HOOK_INPUT, layout::CHAIN_PRIORITY)),
            policy: Some(1),
            chain_type: Some("filter".into()),
        }
    }

    fn set(name: &str, kind: SetKind) -> SetInfo {
        SetInfo {
            table: "f2b".into(),
            name: name.into(),
            flags: kind.flags(),
            key_type: kind.key_type(),
            key_len: kind.key_len(),
        }
    }

    fn rule(handle: u64, comment: &str) -> RuleInfo {
        RuleInfo {
            table: "f2b".into(),
            chain: CHAIN_NAME.into(),
            handle,
            comment: Some(comment.into()),
        }
    }

    /// The kernel state right after `desired` was set up.
    fn installed(desired: &[GroupSpec]) -> KernelState {
        let mut k = KernelState {
            chains: vec![base_chain()],
            ..Default::default()
        };
        for g in desired {
            for (name, kind) in g.set_names() {
                k.sets.push(set(&name, kind));
                let handle = k.rules.len() as u64 + 2;
                k.rules.push(rule(handle, &g.rule_comment(kind)));
            }
        }
        k
    }

    fn count(plan: &Plan, f: impl Fn(&Step) -> bool) -> usize {
        plan.steps.iter().filter(|s| f(s)).count()
    }

    #[test]
    fn empty_kernel_gets_table_chain_sets_and_rules() {
        let desired = [jail("sshd", 22)];
        let plan = reconcile(&KernelState::default(), &desired, Owner::Jail);
        assert_eq!(plan.steps[0], Step::AddTable);
        assert_eq!(count(&plan, |s| *s == Step::AddChain), 1);
        assert_eq!(count(&plan, |s| matches!(s, Step::AddSet { .. })), 4);
        assert_eq!(count(&plan, |s| matches!(s, Step::AddRule { .. })), 4);
        assert_eq!(plan.fresh.len(), 4);
        assert!(plan.kept.is_empty());
        // Sets are created before the rules that use them.
        let last_set = plan
            .steps
            .iter()
            .rposition(|s| matches!(s, Step::AddSet { .. }))
            .unwrap();
        let first_rule = plan
            .steps
            .iter()
            .position(|s| matches!(s, Step::AddRule { .. }))
            .unwrap();
        assert!(last_set < first_rule);
    }

    #[test]
    fn matching_table_is_adopted_as_is() {
        let desired = [jail("sshd", 22), jail("web", 80)];
        let plan = reconcile(&installed(&desired), &desired, Owner::Jail);
        assert_eq!(plan.steps, vec![Step::AddTable, Step::AddChain]);
        assert_eq!(plan.kept.len(), 8);
    }

    #[test]
    fn changed_scope_replaces_rules_and_keeps_sets() {
        let kernel = installed(&[jail("sshd", 22)]);
        let plan = reconcile(&kernel, &[jail("sshd", 2222)], Owner::Jail);
        assert_eq!(count(&plan, |s| matches!(s, Step::DelRule { .. })), 4);
        assert_eq!(count(&plan, |s| matches!(s, Step::AddRule { .. })), 4);
        assert_eq!(count(&plan, |s| matches!(s, Step::DelSet(_))), 0);
        assert_eq!(plan.kept.len(), 4);
    }

    #[test]
    fn removed_group_loses_sets_and_rules_others_stay() {
        let kernel = installed(&[jail("sshd", 22), jail("web", 80)]);
        let plan = reconcile(&kernel, &[jail("sshd", 22)], Owner::Jail);
        let dels: Vec<&Step> = plan
            .steps
            .iter()
            .filter(|s| matches!(s, Step::DelRule { .. } | Step::DelSet(_)))
            .collect();
        assert_eq!(dels.len(), 8);
        assert!(dels.iter().all(|s| match s {
            Step::DelSet(n) => n.starts_with("web-"),
            Step::DelRule { comment, .. } => comment.as_deref().unwrap().starts_with("f2b:web:"),
            _ => false,
        }));
        // Rules go before the sets they use.
        let last_rule = plan
            .steps
            .iter()
            .rposition(|s| matches!(s, Step::DelRule { .. }))
            .unwrap();
        let first_set = plan
            .steps
            .iter()
            .position(|s| matches!(s, Step::DelSet(_)))
            .unwrap();
        assert!(last_rule < first_set);
    }

    #[test]
    fn wrong_set_properties_and_foreign_objects_are_repaired() {
        let desired = [jail("sshd", 22)];
        let mut kernel = installed(&desired);
        // sshd-v4 without the timeout flag; a foreign chain with a rule; a rule of ours twice;
        // a stale set; an anonymous set (belongs to a rule, left alone).
        kernel.sets[0].flags = 0;
        kernel.chains.push(ChainInfo {
            name: "extra".into(),
            hook: None,
            ..base_chain()
        });
        kernel.rules.push(RuleInfo {
            chain: "extra".into(),
            comment: None,
            ..rule(90, "")
        });
        let dup = kernel.rules[1].comment.clone().unwrap();
        kernel.rules.push(rule(91, &dup));
        kernel.sets.push(set("gone-v4", SetKind::V4));
        kernel.sets.push(SetInfo {
            flags: NFT_SET_ANONYMOUS | NFT_SET_TIMEOUT,
            ..set("__set0", SetKind::V4)
        });
        let plan = reconcile(&kernel, &desired, Owner::Jail);
        let handles: Vec<u64> = plan
            .steps
            .iter()
            .filter_map(|s| match s {
                Step::DelRule { handle, .. } => Some(*handle),
                _ => None,
            })
            .collect();
        assert_eq!(
            handles,
            vec![2, 90, 91],
            "sshd-v4's rule, the foreign one, the duplicate"
        );
        assert!(plan.steps.contains(&Step::DelChain("extra".into())));
        assert!(plan.steps.contains(&Step::DelSet("sshd-v4".into())));
        assert!(plan.steps.contains(&Step::DelSet("gone-v4".into())));
        assert!(!plan
            .steps
            .iter()
            .any(|s| *s == Step::DelSet("__set0".into())));
        assert_eq!(plan.fresh, BTreeSet::from(["sshd-v4".to_string()]));
        assert_eq!(count(&plan, |s| matches!(s, Step::AddRule { .. })), 1);
    }

    #[test]
    fn a_wrong_base_chain_is_rebuilt_with_every_rule() {
        let desired = [jail("sshd", 22)];
        let mut kernel = installed(&desired);
        kernel.chains[0].hook = Some((layout::HOOK_INPUT, 0));
        let plan = reconcile(&kernel, &desired, Owner::Jail);
        assert_eq!(count(&plan, |s| matches!(s, Step::DelRule { .. })), 4);
        assert!(plan.steps.contains(&Step::DelChain(CHAIN_NAME.into())));
        assert_eq!(count(&plan, |s| matches!(s, Step::AddRule { .. })), 4);
        assert_eq!(plan.kept.len(), 4, "the sets and their bans survive");
    }

    #[test]
    fn setting_up_jails_leaves_another_owners_groups_alone() {
        let drop = feed("drop");
        let kernel = installed(&[jail("sshd", 22), drop.clone()]);
        // The jails' setup does not know the feed: its sets and rules stay.
        let plan = reconcile(&kernel, &[jail("sshd", 22)], Owner::Jail);
        assert_eq!(plan.steps, vec![Step::AddTable, Step::AddChain]);
        // Knowing it, a missing feed rule is put back; the feed's own setup can remove it.
        let mut kernel2 = kernel.clone();
        kernel2
            .rules
            .retain(|r| !r.comment.as_deref().unwrap().contains("feed."));
        let plan = reconcile(&kernel2, &[jail("sshd", 22), drop.clone()], Owner::Jail);
        assert_eq!(
            count(&plan, |s| matches!(s, Step::AddRule { group: 1, .. })),
            2
        );
        let plan = reconcile(&kernel, &[jail("sshd", 22)], Owner::Feed);
        assert_eq!(
            count(
                &plan,
                |s| matches!(s, Step::DelSet(n) if n.starts_with("feed."))
            ),
            2
        );
        assert_eq!(count(&plan, |s| matches!(s, Step::DelSet(_))), 2);
    }

    #[test]
    fn a_feed_group_has_interval_sets_and_its_own_rules() {
        let plan = reconcile(&KernelState::default(), &[feed("drop")], Owner::Feed);
        assert_eq!(
            plan.fresh,
            BTreeSet::from(["feed.drop-n4".to_string(), "feed.drop-n6".to_string()])
        );
        assert_eq!(
            count(&plan, |s| matches!(s, Step::AddRule { group: 0, .. })),
            2
        );
    }
}

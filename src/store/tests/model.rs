//! The semantics of a commit, in memory, against the store: random commits applied one by
//! one, grouped in random runs (as the store thread groups them), and by the model all give
//! the same state.

use std::collections::{BTreeMap, BTreeSet};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;

#[derive(Default)]
struct Model {
    positions: BTreeMap<String, String>,
    bans: BTreeMap<(String, IpNet), StoredBan>,
    history: BTreeMap<(IpNet, String, u64), Origin>,
    /// (jail, net) → time → how many failures at that time.
    windows: BTreeMap<(String, IpNet), BTreeMap<u64, usize>>,
    totals: BTreeMap<String, Totals>,
}

impl Model {
    fn apply(&mut self, c: &Commit) {
        for j in &c.jails_removed {
            self.bans.retain(|k, _| &k.0 != j);
            self.windows.retain(|k, _| &k.0 != j);
            self.totals.remove(j);
        }
        for (j, n) in &c.bans_removed {
            self.bans.remove(&(j.clone(), n.trunc()));
        }
        for b in &c.bans_added {
            let mut b = b.clone();
            b.net = b.net.trunc();
            self.bans.insert((b.jail.clone(), b.net), b);
        }
        for (j, n) in &c.windows_cleared {
            self.windows.remove(&(j.clone(), n.trunc()));
        }
        for (j, n, t) in &c.failures_added {
            *self
                .windows
                .entry((j.clone(), n.trunc()))
                .or_default()
                .entry(*t)
                .or_default() += 1;
        }
        for (j, n, older) in &c.windows_trimmed {
            if let Some(w) = self.windows.get_mut(&(j.clone(), n.trunc())) {
                w.retain(|t, _| t >= older);
                if w.is_empty() {
                    self.windows.remove(&(j.clone(), n.trunc()));
                }
            }
        }
        for h in &c.history_added {
            self.history
                .entry((h.net.trunc(), h.jail.clone(), h.t_us))
                .or_insert_with(|| h.origin.clone());
        }
        for (j, t) in &c.totals_added {
            if t.is_zero() {
                continue;
            }
            let e = self.totals.entry(j.clone()).or_default();
            e.failed += t.failed;
            e.banned += t.banned;
            e.ignored += t.ignored;
        }
        for (src, v) in &c.positions {
            match v {
                Some(v) => self.positions.insert(src.clone(), v.clone()),
                None => self.positions.remove(src),
            };
        }
        if let Some(cur) = &c.cursor {
            self.positions
                .insert(JOURNAL_POSITION.to_string(), cur.clone());
        }
    }

    /// As loaded at time 0.
    fn snapshot(&self) -> Owned {
        let mut o = Owned {
            cursor: self.positions.get(JOURNAL_POSITION).cloned(),
            positions: self.positions.clone(),
            bans: self
                .bans
                .values()
                .filter(|b| b.end_us != Some(0))
                .cloned()
                .collect(),
            history: self
                .history
                .iter()
                .map(|((net, jail, t_us), origin)| HistoryEntry {
                    net: *net,
                    jail: jail.clone(),
                    t_us: *t_us,
                    origin: origin.clone(),
                })
                .collect(),
            windows: self
                .windows
                .iter()
                .map(|((j, n), w)| {
                    let times = w
                        .iter()
                        .flat_map(|(t, k)| std::iter::repeat_n(*t, *k))
                        .collect();
                    (j.clone(), *n, times)
                })
                .collect(),
            totals: self.totals.iter().map(|(j, t)| (j.clone(), *t)).collect(),
        };
        o.bans
            .sort_by(|a, b| (&a.jail, a.net).cmp(&(&b.jail, b.net)));
        o.history.sort();
        o
    }
}

fn random_commit(rng: &mut StdRng, i: usize) -> Commit {
    let jails = ["a", "b", "c"];
    let nets = [
        "192.0.2.1/32",
        "192.0.2.2/32",
        "192.0.2.0/24",
        "2001:db8::/64",
        "2001:db8::1/128",
    ];
    let origins = [
        Origin::Local,
        Origin::Manual { uid: Some(7) },
        Origin::peer("p").unwrap(),
    ];
    let pick = |rng: &mut StdRng| {
        (
            jails[rng.random_range(0..jails.len())].to_string(),
            net(nets[rng.random_range(0..nets.len())]),
        )
    };
    let mut c = Commit::default();
    if rng.random_bool(0.6) {
        c.cursor = Some(format!("cursor-{i}"));
    }
    if rng.random_bool(0.3) {
        let src = ["file:/a", "file:/b", JOURNAL_POSITION][rng.random_range(0..3)];
        let v = rng.random_bool(0.7).then(|| format!("pos-{i}"));
        c.positions.push((src.to_string(), v));
    }
    for _ in 0..rng.random_range(0..3) {
        let (jail, net) = pick(rng);
        let end = rng.random_bool(0.8).then(|| rng.random_range(0..1000));
        c.bans_added.push(StoredBan {
            jail,
            net,
            start_us: rng.random_range(0..1000),
            end_us: end,
            count: rng.random_range(0..5),
            failures: rng.random_range(0..10),
            origin: origins[rng.random_range(0..origins.len())].clone(),
        });
    }
    for _ in 0..rng.random_range(0..3) {
        c.bans_removed.push(pick(rng));
    }
    for _ in 0..rng.random_range(0..2) {
        let (jail, net) = pick(rng);
        c.history_added.push(HistoryEntry {
            net,
            jail,
            t_us: rng.random_range(0..20),
            origin: origins[rng.random_range(0..origins.len())].clone(),
        });
    }
    for _ in 0..rng.random_range(0..4) {
        let (j, n) = pick(rng);
        c.failures_added.push((j, n, rng.random_range(0..30)));
    }
    for _ in 0..rng.random_range(0..2) {
        let (j, n) = pick(rng);
        c.windows_trimmed.push((j, n, rng.random_range(0..30)));
    }
    for _ in 0..rng.random_range(0..2) {
        c.windows_cleared.push(pick(rng));
    }
    if rng.random_bool(0.3) {
        c.totals_added.push((
            pick(rng).0,
            Totals {
                failed: rng.random_range(0..3),
                banned: rng.random_range(0..2),
                ignored: rng.random_range(0..2),
            },
        ));
    }
    if rng.random_bool(0.05) {
        c.jails_removed.push(pick(rng).0);
    }
    c
}

#[test]
fn grouped_commits_equal_sequential_commits() {
    for seed in 0..8u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let commits: Vec<Commit> = (0..300).map(|i| random_commit(&mut rng, i)).collect();
        let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let mut one = Store::open(d1.path()).unwrap();
        let mut grouped = Store::open(d2.path()).unwrap();
        let mut model = Model::default();
        let mut i = 0;
        let mut seen = BTreeSet::new();
        while i < commits.len() {
            let n = rng.random_range(1..20).min(commits.len() - i);
            let run = &commits[i..i + n];
            for c in run {
                one.commit(c).unwrap();
                model.apply(c);
            }
            grouped.commit_many(run, Durability::Normal).unwrap();
            i += n;
            let want = model.snapshot();
            seen.insert((!want.windows.is_empty(), !want.totals.is_empty()));
            assert_eq!(owned(&one.load(0).unwrap()), want, "seed {seed} at {i}");
            assert_eq!(owned(&grouped.load(0).unwrap()), want, "seed {seed} at {i}");
        }
        assert!(grouped.transactions() < one.transactions());
        assert!(seen.contains(&(true, true)), "seed {seed}: {seen:?}");
    }
}

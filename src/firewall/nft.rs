//! nftables backend: programs the `inet f2b` table over netlink (libnftnl builders, our own
//! batch/ACK handling and a safe parser for replies).
//!
//! Layout (see `nft/layout.rs`): one base chain `input` (hook input, priority `filter - 10`, policy
//! accept) and, per jail, four sets — `JAIL-v4`/`JAIL-v6` for hosts (`flags timeout`) and
//! `JAIL-n4`/`JAIL-n6` for prefixes (`flags interval,timeout`) — each with one rule
//! `meta nfproto … [meta l4proto … [th dport …]] ip[6] saddr @SET counter drop|reject`
//! carrying the comment `f2b:JAIL:KIND:SCOPEHASH`.
//!
//! The backend keeps a mirror of the elements it believes are in the kernel. Re-banning an
//! element that is present is a delete + add in the same batch (an add of an existing element
//! fails with EEXIST and aborts the whole transaction); if a batch fails anyway (the mirror
//! was stale: expiry race, someone edited the sets), the affected sets are re-read and the
//! changes are retried once (after recreating the sets if they were removed).
//!
//! What `apply` does with addresses:
//! - host bits are cleared (`10.1.2.3/24` → `10.1.2.0/24`); IPv4-mapped IPv6
//!   (`::ffff:a.b.c.d`) becomes IPv4; a /0 prefix is refused;
//! - /32 and /128 go to the host sets, shorter prefixes to the interval sets;
//! - prefixes in one jail never overlap in the kernel (it would refuse): banning a prefix
//!   replaces the prefixes it covers; banning a prefix inside a banned one only extends the
//!   covering ban's timeout if the new one lasts longer;
//! - timeouts are whole milliseconds, at least 1 ms, at most [`MAX_TIMEOUT`].
//!
//! Usage (the engine):
//! ```no_run
//! use f2b::firewall::{Firewall, FirewallHandle, nft::{Nftables, spawn_monitor}};
//! # fn main() -> Result<(), f2b::firewall::FirewallError> {
//! let fw = FirewallHandle::spawn(|| Ok(Box::new(Nftables::new()?) as Box<dyn Firewall>))?;
//! let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
//! let _monitor = spawn_monitor(move |event| { let _ = tx.send(event); })?;
//! // on rx.recv(): debounce, then fw.setup(jails) and fw.apply(all active bans)
//! # Ok(()) }
//! ```
//!
//! Only the `sys` submodule contains `unsafe` code.

#![deny(unsafe_code)]

mod batch;
mod layout;
mod monitor;
mod netlink;
#[allow(unsafe_code)]
mod sys;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use ipnet::{IpNet, Ipv4Net, Ipv4Subnets, Ipv6Net, Ipv6Subnets};

use self::batch::{kernel_error, Batch, Conn};
use self::layout::{SetKind, CHAIN_NAME};
use self::netlink as nl;
use super::{Change, Element, Firewall, FirewallError, JailRules, TABLE_NAME};

pub use self::layout::{set_name, CHAIN_PRIORITY};
pub use self::monitor::{spawn_monitor, Monitor, MonitorEvent, Removed};

/// Changes (elements) per transaction: bigger applies are split (each element's delete and
/// re-add always stay in the same transaction).
const MAX_ELEMS_PER_BATCH: usize = 250_000;

/// Longer ban timeouts are clamped to this (the kernel refuses timeouts of a few centuries
/// with ERANGE; ten years is as good as permanent but still expires).
pub const MAX_TIMEOUT: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// The nftables backend for the network namespace it was created in.
///
/// Not thread-safe by itself (`&mut self`), but `Send`: it can be created on one thread and
/// moved to the firewall worker.
pub struct Nftables {
    conn: Conn,
    netns: u64,
    jails: BTreeMap<String, JailRules>,
    /// Set name → what we believe is in it.
    mirror: HashMap<String, SetMirror>,
    /// Transactions retried after re-reading the kernel (stale mirror).
    retries: u64,
}

#[derive(Debug, Default)]
struct SetMirror {
    /// Element → expiry (`None` = permanent).
    elems: BTreeMap<IpNet, Option<Instant>>,
}

impl SetMirror {
    fn live(&self, net: &IpNet, now: Instant) -> Option<Option<Instant>> {
        self.elems
            .get(net)
            .copied()
            .filter(|exp| exp.is_none_or(|e| e > now))
    }
}

/// What the kernel holds under `inet f2b`.
#[derive(Debug, Default)]
struct KernelState {
    chains: Vec<nl::ChainInfo>,
    sets: Vec<nl::SetInfo>,
    rules: Vec<nl::RuleInfo>,
}

/// Per set: element → final state (`None` = absent, `Some(timeout)` = (re)added).
type Overlay = BTreeMap<IpNet, Option<Option<Duration>>>;

/// One element to send: set, kind, element, present in the kernel now?, final state.
type Item<'a> = (&'a str, SetKind, IpNet, bool, Option<Option<Duration>>);

/// One change after validation.
#[derive(Debug, Clone)]
struct Op {
    set: String,
    kind: SetKind,
    net: IpNet,
    /// `Some(timeout)` = ban (inner `None` = permanent), `None` = unban.
    ban: Option<Option<Duration>>,
}

impl Nftables {
    /// Opens a netlink socket in the calling thread's network namespace and checks that we
    /// may program nftables (CAP_NET_ADMIN) → [`FirewallError::PermissionDenied`] otherwise.
    /// Touches nothing: call [`Firewall::setup`] next.
    pub fn new() -> Result<Self, FirewallError> {
        let mut conn = Conn::open()?;
        // Cheap probe: GETGEN needs CAP_NET_ADMIN like everything else.
        match conn.request(nl::NFT_MSG_GETGEN, 0, &[], |_| {})? {
            Ok(()) => {}
            Err(errno) => return Err(kernel_error("get ruleset generation".into(), errno, None)),
        }
        let netns = monitor::current_netns();
        monitor::register_own(netns, conn.portid());
        Ok(Nftables {
            conn,
            netns,
            jails: BTreeMap::new(),
            mirror: HashMap::new(),
            retries: 0,
        })
    }

    /// Netlink port id of our request socket (notifications we cause carry it).
    pub fn portid(&self) -> u32 {
        self.conn.portid()
    }

    /// How many times a failed transaction was retried after re-reading the kernel (the
    /// mirror was stale: an element expired or was changed by someone else).
    pub fn retries(&self) -> u64 {
        self.retries
    }

    // --- reading the kernel --------------------------------------------------------------

    fn table_exists(&mut self) -> Result<bool, FirewallError> {
        let name = nl::strz(TABLE_NAME);
        match self.conn.request(
            nl::NFT_MSG_GETTABLE,
            0,
            &[(nl::NFTA_TABLE_NAME, &name)],
            |_| {},
        )? {
            Ok(()) => Ok(true),
            Err(libc::ENOENT) => Ok(false),
            Err(e) => Err(kernel_error(
                format!("get table inet {TABLE_NAME}"),
                e,
                None,
            )),
        }
    }

    fn read_state(&mut self) -> Result<KernelState, FirewallError> {
        let mut st = KernelState::default();
        if !self.table_exists()? {
            return Ok(st);
        }
        let table = nl::strz(TABLE_NAME);
        let r = self.conn.request(
            nl::NFT_MSG_GETCHAIN,
            nl::NLM_F_DUMP,
            &[(nl::NFTA_CHAIN_TABLE, &table)],
            |m| {
                if m.nft_msg() == Some(nl::NFT_MSG_NEWCHAIN) && m.family() == Some(nl::NFPROTO_INET)
                {
                    let c = nl::parse_chain(m);
                    if c.table == TABLE_NAME {
                        st.chains.push(c);
                    }
                }
            },
        )?;
        check_dump(r, "list chains")?;
        st.sets = self.read_sets()?;
        let r = self.conn.request(
            nl::NFT_MSG_GETRULE,
            nl::NLM_F_DUMP,
            &[(nl::NFTA_RULE_TABLE, &table)],
            |m| {
                if m.nft_msg() == Some(nl::NFT_MSG_NEWRULE) && m.family() == Some(nl::NFPROTO_INET)
                {
                    let r = nl::parse_rule(m);
                    if r.table == TABLE_NAME {
                        st.rules.push(r);
                    }
                }
            },
        )?;
        check_dump(r, "list rules")?;
        Ok(st)
    }

    /// Sets of our table (none if the table does not exist).
    fn read_sets(&mut self) -> Result<Vec<nl::SetInfo>, FirewallError> {
        let table = nl::strz(TABLE_NAME);
        let mut sets = Vec::new();
        let r = self.conn.request(
            nl::NFT_MSG_GETSET,
            nl::NLM_F_DUMP,
            &[(nl::NFTA_SET_TABLE, &table)],
            |m| {
                if m.nft_msg() == Some(nl::NFT_MSG_NEWSET) && m.family() == Some(nl::NFPROTO_INET) {
                    let s = nl::parse_set(m);
                    if s.table == TABLE_NAME {
                        sets.push(s);
                    }
                }
            },
        )?;
        match r {
            Err(libc::ENOENT) => Ok(Vec::new()),
            r => check_dump(r, "list sets").map(|()| sets),
        }
    }

    /// Elements of one set; `None` if the set (or table) does not exist.
    fn read_elems(&mut self, set: &str) -> Result<Option<Vec<nl::ElemInfo>>, FirewallError> {
        let table = nl::strz(TABLE_NAME);
        let name = nl::strz(set);
        let mut elems = Vec::new();
        let r = self.conn.request(
            nl::NFT_MSG_GETSETELEM,
            nl::NLM_F_DUMP,
            &[
                (nl::NFTA_SET_ELEM_LIST_TABLE, &table),
                (nl::NFTA_SET_ELEM_LIST_SET, &name),
            ],
            |m| {
                if m.nft_msg() == Some(nl::NFT_MSG_NEWSETELEM) {
                    let mut e = nl::parse_set_elems(m);
                    if (e.set == set || e.set.is_empty())
                        && (e.table == TABLE_NAME || e.table.is_empty())
                    {
                        elems.append(&mut e.elems);
                    }
                }
            },
        )?;
        match r {
            Ok(()) => Ok(Some(elems)),
            Err(libc::ENOENT) => Ok(None),
            Err(e) => Err(kernel_error(
                format!("list set inet {TABLE_NAME} {set}"),
                e,
                None,
            )),
        }
    }

    /// Re-reads the elements of `sets` into the mirror. Returns false if one of them is
    /// missing in the kernel.
    fn resync(&mut self, sets: &BTreeSet<String>) -> Result<bool, FirewallError> {
        let now = Instant::now();
        let mut complete = true;
        for set in sets {
            let Some((_, kind)) = layout::parse_set_name(set) else {
                continue;
            };
            match self.read_elems(set)? {
                Some(elems) => {
                    let m = self.mirror.entry(set.clone()).or_default();
                    m.elems = decode_elems(kind, &elems)
                        .into_iter()
                        .map(|(net, left)| (net, left.map(|d| now + d)))
                        .collect();
                }
                None => {
                    self.mirror.remove(set);
                    complete = false;
                }
            }
        }
        Ok(complete)
    }

    fn all_set_names(&self) -> BTreeSet<String> {
        self.jails
            .keys()
            .flat_map(|j| SetKind::ALL.map(|k| set_name(j, k)))
            .collect()
    }

    // --- setup -----------------------------------------------------------------------------

    fn setup_batch(
        &self,
        st: &KernelState,
        jails: &BTreeMap<String, JailRules>,
        batch: &mut Batch,
    ) -> Result<(), FirewallError> {
        let table = nl::strz(TABLE_NAME);
        // Desired sets and rules.
        let mut want_sets: BTreeMap<String, SetKind> = BTreeMap::new();
        let mut want_rules: BTreeMap<String, (&JailRules, SetKind)> = BTreeMap::new();
        for j in jails.values() {
            for k in SetKind::ALL {
                want_sets.insert(set_name(&j.name, k), k);
                want_rules.insert(layout::rule_comment(j, k)?, (j, k));
            }
        }
        let base = st.chains.iter().find(|c| c.name == CHAIN_NAME);
        let recreate_chain = base.is_some_and(|c| !layout::chain_matches(c));
        let recreate_sets: BTreeSet<&str> = st
            .sets
            .iter()
            .filter(|s| {
                want_sets
                    .get(&s.name)
                    .is_some_and(|&k| !layout::set_matches(s, k))
            })
            .map(|s| s.name.as_str())
            .collect();

        // Create-or-adopt the table (no NLM_F_EXCL: an existing table is kept as is).
        batch.add_raw(
            nl::NFT_MSG_NEWTABLE,
            nl::NLM_F_CREATE,
            &[(nl::NFTA_TABLE_NAME, &table)],
            format!("add table inet {TABLE_NAME}"),
        );

        // Rules: keep the first rule whose comment is wanted; delete everything else.
        let mut kept: BTreeSet<&str> = BTreeSet::new();
        for r in &st.rules {
            let keep = r.chain == CHAIN_NAME
                && !recreate_chain
                && r.comment.as_deref().is_some_and(|c| {
                    want_rules.get(c).is_some_and(|(j, k)| {
                        !recreate_sets.contains(set_name(&j.name, *k).as_str())
                    }) && !kept.contains(c)
                });
            if keep {
                kept.insert(r.comment.as_deref().unwrap_or_default());
            } else {
                let rchain = nl::strz(&r.chain);
                batch.add_raw(
                    nl::NFT_MSG_DELRULE,
                    0,
                    &[
                        (nl::NFTA_RULE_TABLE, &table),
                        (nl::NFTA_RULE_CHAIN, &rchain),
                        (nl::NFTA_RULE_HANDLE, &r.handle.to_be_bytes()),
                    ],
                    format!(
                        "delete rule inet {TABLE_NAME} {} handle {} ({})",
                        r.chain,
                        r.handle,
                        r.comment.as_deref().unwrap_or("no comment")
                    ),
                );
            }
        }
        // Chains other than ours (or ours with the wrong hook/priority).
        for c in &st.chains {
            if c.name != CHAIN_NAME || recreate_chain {
                let cname = nl::strz(&c.name);
                batch.add_raw(
                    nl::NFT_MSG_DELCHAIN,
                    0,
                    &[
                        (nl::NFTA_CHAIN_TABLE, &table),
                        (nl::NFTA_CHAIN_NAME, &cname),
                    ],
                    format!("delete chain inet {TABLE_NAME} {}", c.name),
                );
            }
        }
        // Sets of jails no longer configured, or with the wrong properties.
        for s in &st.sets {
            if s.flags & nl::NFT_SET_ANONYMOUS != 0 || s.name.starts_with("__") {
                continue; // belongs to a rule, goes with it
            }
            if !want_sets.contains_key(&s.name) || recreate_sets.contains(s.name.as_str()) {
                let sname = nl::strz(&s.name);
                batch.add_raw(
                    nl::NFT_MSG_DELSET,
                    0,
                    &[(nl::NFTA_SET_TABLE, &table), (nl::NFTA_SET_NAME, &sname)],
                    format!("delete set inet {TABLE_NAME} {}", s.name),
                );
            }
        }

        // Create what is missing. NEWCHAIN always (idempotent; restores policy accept).
        layout::add_chain(batch);
        let mut next_id = 0u32;
        for (name, &kind) in &want_sets {
            let exists = st.sets.iter().any(|s| &s.name == name);
            if !exists || recreate_sets.contains(name.as_str()) {
                next_id += 1;
                layout::add_named_set(batch, name, kind, next_id);
            }
        }
        for (comment, (jail, kind)) in &want_rules {
            if !kept.contains(comment.as_str()) {
                layout::add_rule(batch, jail, *kind, &mut next_id)?;
            }
        }
        Ok(())
    }

    /// Reads the elements of every configured set into the mirror.
    fn reload_mirror(&mut self) -> Result<(), FirewallError> {
        let sets = self.all_set_names();
        self.mirror.retain(|k, _| sets.contains(k));
        self.resync(&sets)?;
        Ok(())
    }

    // --- apply -----------------------------------------------------------------------------

    fn prepare(&self, changes: &[Change]) -> Result<Vec<Op>, FirewallError> {
        let mut ops = Vec::with_capacity(changes.len());
        for c in changes {
            let (jail, net, ban) = match c {
                Change::Ban { jail, net, timeout } => {
                    (jail, net, Some(timeout.map(|t| t.min(MAX_TIMEOUT))))
                }
                Change::Unban { jail, net } => (jail, net, None),
            };
            if !self.jails.contains_key(jail) {
                return Err(FirewallError::UnknownJail(jail.clone()));
            }
            let net = normalize_net(net)?;
            let kind = SetKind::for_net(&net);
            ops.push(Op {
                set: set_name(jail, kind),
                kind,
                net,
                ban,
            });
        }
        Ok(ops)
    }

    /// Computes the element deletes/adds for `ops` against the mirror and commits them.
    fn apply_ops(&mut self, ops: &[Op]) -> Result<(), FirewallError> {
        let now = Instant::now();
        // Per set: element → final state (None = absent, Some(timeout) = (re)added).
        let mut overlay: BTreeMap<&str, (SetKind, Overlay)> = BTreeMap::new();
        let empty = SetMirror::default();
        for op in ops {
            let mirror = self.mirror.get(&op.set).unwrap_or(&empty);
            let (_, ov) = overlay
                .entry(op.set.as_str())
                .or_insert_with(|| (op.kind, BTreeMap::new()));
            let view = |ov: &Overlay, net: &IpNet| match ov.get(net) {
                Some(d) => d.map(|t| t.map(|t| now + t)),
                None => mirror.live(net, now),
            };
            match op.ban {
                None => {
                    if view(ov, &op.net).is_some() {
                        ov.insert(op.net, None);
                    }
                }
                Some(timeout) if !op.kind.is_interval() => {
                    ov.insert(op.net, Some(timeout));
                }
                Some(timeout) => {
                    // Interval sets reject overlaps (EEXIST). Prefixes either nest or are
                    // disjoint: a covering prefix absorbs the ban (its timeout is extended if
                    // the new one lasts longer); a new prefix replaces those it covers.
                    let new_exp = timeout.map(|t| now + t);
                    let cover = supernets(&op.net).find_map(|c| view(ov, &c).map(|e| (c, e)));
                    if let Some((c, exp)) = cover {
                        if later(new_exp, exp) {
                            ov.insert(c, Some(timeout));
                        }
                        continue;
                    }
                    let hi = last_subnet(&op.net);
                    let inside: BTreeSet<IpNet> = mirror
                        .elems
                        .range(op.net..=hi)
                        .map(|(n, _)| *n)
                        .chain(ov.range(op.net..=hi).map(|(n, _)| *n))
                        .filter(|n| *n != op.net && op.net.contains(n))
                        .collect();
                    for n in inside {
                        if view(ov, &n).is_some() {
                            ov.insert(n, None);
                        }
                    }
                    ov.insert(op.net, Some(timeout));
                }
            }
        }

        // What to send: (set, kind, element, currently present?, final state).
        let mut items: Vec<Item<'_>> = Vec::new();
        for (set, (kind, ov)) in &overlay {
            let mirror = self.mirror.get(*set).unwrap_or(&empty);
            for (net, fin) in ov {
                let present = mirror.live(net, now).is_some();
                if present || fin.is_some() {
                    items.push((set, *kind, *net, present, *fin));
                }
            }
        }
        // Emit in chunks. An element's delete and add stay together, and an interval set is
        // never split (a covering prefix must be added in the transaction that deletes the
        // prefixes it covers).
        let mut start = 0;
        let mut elems = 0usize;
        for i in 0..items.len() {
            elems += usize::from(items[i].3) + usize::from(items[i].4.is_some());
            let splittable =
                !items[i].1.is_interval() || items.get(i + 1).is_none_or(|n| n.0 != items[i].0);
            if (elems >= MAX_ELEMS_PER_BATCH && splittable) || i + 1 == items.len() {
                self.commit_elems(&items[start..=i])?;
                start = i + 1;
                elems = 0;
            }
        }
        Ok(())
    }

    /// One transaction: all deletes, then all adds; the mirror is updated on success.
    fn commit_elems(&mut self, items: &[Item<'_>]) -> Result<(), FirewallError> {
        let table = std::ffi::CString::new(TABLE_NAME).unwrap_or_default();
        let new_set = |name: &str| {
            sys::RawSet::new(
                u16::from(nl::NFPROTO_INET),
                &table,
                &std::ffi::CString::new(name).unwrap_or_default(),
            )
        };
        // Per set (items are grouped by set): one element list to delete, one to add.
        let mut dels: Vec<(sys::RawSet, &str)> = Vec::new();
        let mut adds: Vec<(sys::RawSet, &str)> = Vec::new();
        for &(set, _, net, present, fin) in items {
            let e = layout::net_elems(&net);
            if present {
                if dels.last().is_none_or(|(_, s)| *s != set) {
                    dels.push((new_set(set), set));
                }
                let raw = &mut dels.last_mut().expect("just pushed").0;
                raw.push_elem(&e.start, 0, None, &[]);
                if let Some(end) = &e.end {
                    raw.push_elem(end, nl::NFT_SET_ELEM_INTERVAL_END, None, &[]);
                }
            }
            if let Some(timeout) = fin {
                if adds.last().is_none_or(|(_, s)| *s != set) {
                    adds.push((new_set(set), set));
                }
                let raw = &mut adds.last_mut().expect("just pushed").0;
                // Zero would mean "no timeout": at least 1 ms.
                let ms = timeout.map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX).max(1));
                match (&e.end, e.interval) {
                    (Some(end), _) => {
                        raw.push_elem(&e.start, 0, ms, &[]);
                        raw.push_elem(end, nl::NFT_SET_ELEM_INTERVAL_END, None, &[]);
                    }
                    (None, true) => raw.push_elem(&e.start, 0, ms, &layout::UDATA_INTERVAL_OPEN),
                    (None, false) => raw.push_elem(&e.start, 0, ms, &[]),
                }
            }
        }
        let mut batch = self.conn.batch();
        for (raw, set) in &dels {
            batch.add_elems(raw, nl::NFT_MSG_DELSETELEM, 0, set);
        }
        for (raw, set) in &adds {
            // NLM_F_EXCL: an element we did not know about fails with EEXIST (→ re-read and
            // retry as delete + add) instead of silently keeping its old timeout (kernels
            // before timeout updates) or updating it (newer ones): same result everywhere.
            batch.add_elems(
                raw,
                nl::NFT_MSG_NEWSETELEM,
                nl::NLM_F_CREATE | nl::NLM_F_EXCL,
                set,
            );
        }
        let sent = Instant::now();
        self.conn.commit(batch)?;
        for group in items.chunk_by(|a, b| a.0 == b.0) {
            let m = self.mirror.entry(group[0].0.to_string()).or_default();
            for &(_, _, net, _, fin) in group {
                match fin {
                    None => {
                        m.elems.remove(&net);
                    }
                    Some(t) => {
                        m.elems.insert(net, t.map(|t| sent + t));
                    }
                }
            }
        }
        Ok(())
    }
}

impl Drop for Nftables {
    fn drop(&mut self) {
        monitor::unregister_own(self.netns, self.conn.portid());
    }
}

impl Firewall for Nftables {
    fn name(&self) -> &'static str {
        "nftables"
    }

    fn setup(&mut self, jails: &[JailRules]) -> Result<(), FirewallError> {
        let mut map = BTreeMap::new();
        for j in jails {
            if !layout::valid_jail_name(&j.name) {
                return Err(FirewallError::Other(format!(
                    "invalid jail name {:?}: use 1 to 32 of A-Z a-z 0-9 _ -",
                    j.name
                )));
            }
            layout::normalize_ports(j)?;
            if map.insert(j.name.clone(), j.clone()).is_some() {
                return Err(FirewallError::Other(format!(
                    "jail {:?} listed twice",
                    j.name
                )));
            }
        }
        // Read, diff, commit; a concurrent change between read and commit fails the batch
        // (EEXIST/ENOENT/EBUSY): read again and retry once.
        let mut attempt = 0;
        loop {
            let st = self.read_state()?;
            let mut batch = self.conn.batch();
            self.setup_batch(&st, &map, &mut batch)?;
            match self.conn.commit(batch) {
                Ok(()) => break,
                Err(e) if attempt == 0 && retryable(&e) => {
                    tracing::debug!("nftables setup failed ({e}), re-reading and retrying");
                    self.retries += 1;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
        self.jails = map;
        self.reload_mirror()
    }

    fn apply(&mut self, changes: &[Change]) -> Result<(), FirewallError> {
        if changes.is_empty() {
            return Ok(());
        }
        let ops = self.prepare(changes)?;
        match self.apply_ops(&ops) {
            Ok(()) => Ok(()),
            Err(e) if retryable(&e) => {
                tracing::debug!("nftables apply failed ({e}), re-reading sets and retrying once");
                self.retries += 1;
                let sets: BTreeSet<String> = ops.iter().map(|o| o.set.clone()).collect();
                if !self.resync(&sets)? {
                    // Our sets were removed behind our back: recreate them first.
                    tracing::warn!("nftables sets of inet {TABLE_NAME} are missing, recreating");
                    let jails: Vec<JailRules> = self.jails.values().cloned().collect();
                    self.setup(&jails)?;
                }
                self.apply_ops(&ops)
            }
            Err(e) => Err(e),
        }
    }

    fn list(&mut self) -> Result<Vec<Element>, FirewallError> {
        let now = Instant::now();
        let mut out = Vec::new();
        for s in self.read_sets()? {
            let Some((jail, kind)) = layout::parse_set_name(&s.name) else {
                continue;
            };
            if !layout::set_matches(&s, kind) {
                continue;
            }
            let jail = jail.to_string();
            let Some(elems) = self.read_elems(&s.name)? else {
                continue;
            };
            let decoded = decode_elems(kind, &elems);
            if let Some(m) = self.mirror.get_mut(&s.name) {
                m.elems = decoded
                    .iter()
                    .map(|(net, left)| (*net, left.map(|d| now + d)))
                    .collect();
            }
            out.extend(decoded.into_iter().map(|(net, expires_in)| Element {
                jail: jail.clone(),
                net,
                expires_in,
            }));
        }
        out.sort_by(|a, b| (&a.jail, a.net).cmp(&(&b.jail, b.net)));
        Ok(out)
    }

    fn teardown(&mut self) -> Result<(), FirewallError> {
        let table = nl::strz(TABLE_NAME);
        let mut batch = self.conn.batch();
        batch.add_raw(
            nl::NFT_MSG_DELTABLE,
            0,
            &[(nl::NFTA_TABLE_NAME, &table)],
            format!("delete table inet {TABLE_NAME}"),
        );
        match self.conn.commit(batch) {
            Ok(()) => {}
            Err(FirewallError::Kernel { errno, .. }) if errno == libc::ENOENT => {}
            Err(e) => return Err(e),
        }
        self.jails.clear();
        self.mirror.clear();
        Ok(())
    }
}

fn check_dump(r: Result<(), i32>, what: &str) -> Result<(), FirewallError> {
    r.map_err(|e| kernel_error(format!("{what} of inet {TABLE_NAME}"), e, None))
}

/// Errors after which re-reading the kernel and retrying can help.
fn retryable(e: &FirewallError) -> bool {
    match e {
        FirewallError::Kernel { errno, .. } => {
            [libc::EEXIST, libc::ENOENT, libc::EBUSY].contains(errno)
        }
        FirewallError::Io(io) => io.raw_os_error() == Some(libc::ENOBUFS),
        _ => false,
    }
}

/// Truncates host bits, maps IPv4-mapped IPv6 (`::ffff:a.b.c.d`) to IPv4 (packets of IPv4
/// clients are IPv4 on the wire), and refuses /0.
fn normalize_net(net: &IpNet) -> Result<IpNet, FirewallError> {
    let net = match net {
        IpNet::V6(n) if n.prefix_len() >= 96 => match n.addr().to_ipv4_mapped() {
            Some(v4) => IpNet::V4(
                Ipv4Net::new(v4, n.prefix_len() - 96)
                    .map_err(|e| FirewallError::Other(e.to_string()))?,
            ),
            None => *net,
        },
        _ => *net,
    }
    .trunc();
    if net.prefix_len() == 0 {
        return Err(FirewallError::Other(format!(
            "refusing to ban {net}: a /0 prefix would match every address"
        )));
    }
    Ok(net)
}

/// `a` expires later than `b` (`None` = never).
fn later(a: Option<Instant>, b: Option<Instant>) -> bool {
    match (a, b) {
        (None, None) => false,
        (None, Some(_)) => true,
        (Some(_), None) => false,
        (Some(a), Some(b)) => a > b,
    }
}

/// The prefixes strictly containing `net`, longest first (never /0).
fn supernets(net: &IpNet) -> impl Iterator<Item = IpNet> + '_ {
    (1..net.prefix_len()).rev().filter_map(move |p| match net {
        IpNet::V4(n) => Ipv4Net::new(n.addr(), p).ok().map(|x| IpNet::V4(x.trunc())),
        IpNet::V6(n) => Ipv6Net::new(n.addr(), p).ok().map(|x| IpNet::V6(x.trunc())),
    })
}

/// The greatest `IpNet` (in `Ord` order) that lies inside `net`: its last address as a host.
fn last_subnet(net: &IpNet) -> IpNet {
    match net {
        IpNet::V4(n) => IpNet::V4(Ipv4Net::new(n.broadcast(), 32).unwrap_or(*n)),
        IpNet::V6(n) => IpNet::V6(Ipv6Net::new(n.broadcast(), 128).unwrap_or(*n)),
    }
}

/// Elements as dumped → (network, remaining time). Interval sets are reassembled from their
/// start/end elements (a range that is not one prefix becomes several).
fn decode_elems(kind: SetKind, elems: &[nl::ElemInfo]) -> Vec<(IpNet, Option<Duration>)> {
    let left = |e: &nl::ElemInfo| match (e.expiration, e.timeout) {
        (Some(ms), _) => Some(Duration::from_millis(ms)),
        (None, Some(t)) if t > 0 => Some(Duration::from_millis(0)),
        _ => None,
    };
    let bits = if kind.is_v6() { 128 } else { 32 };
    let to_u128 = |k: &[u8]| -> Option<u128> {
        match layout::key_addr(k)? {
            IpAddr::V4(a) if bits == 32 => Some(u128::from(u32::from(a))),
            IpAddr::V6(a) if bits == 128 => Some(u128::from(a)),
            _ => None,
        }
    };
    let host = |v: u128| -> IpNet {
        if bits == 32 {
            IpNet::V4(Ipv4Net::from(Ipv4Addr::from(v as u32)))
        } else {
            IpNet::V6(Ipv6Net::from(Ipv6Addr::from(v)))
        }
    };
    if !kind.is_interval() {
        return elems
            .iter()
            .filter(|e| e.flags & nl::NFT_SET_ELEM_INTERVAL_END == 0)
            .filter_map(|e| Some((host(to_u128(&e.key)?), left(e))))
            .collect();
    }
    let mut sorted: Vec<(u128, bool, Option<Duration>)> = elems
        .iter()
        .filter_map(|e| {
            Some((
                to_u128(&e.key)?,
                e.flags & nl::NFT_SET_ELEM_INTERVAL_END != 0,
                left(e),
            ))
        })
        .collect();
    sorted.sort_by_key(|&(k, end, _)| (k, !end));
    let max: u128 = if bits == 32 {
        u32::MAX.into()
    } else {
        u128::MAX
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let (start, is_end, exp) = sorted[i];
        i += 1;
        if is_end {
            continue; // orphan end (e.g. nft's leading "0 end" element)
        }
        let last = match sorted.get(i) {
            Some(&(k, true, _)) => {
                i += 1;
                k.checked_sub(1)
            }
            Some(&(k, false, _)) => k.checked_sub(1),
            None => Some(max),
        };
        let Some(last) = last.filter(|&l| l >= start) else {
            continue;
        };
        if bits == 32 {
            let s = Ipv4Addr::from(start as u32);
            let l = Ipv4Addr::from(last as u32);
            out.extend(Ipv4Subnets::new(s, l, 0).map(|n| (IpNet::V4(n), exp)));
        } else {
            out.extend(
                Ipv6Subnets::new(Ipv6Addr::from(start), Ipv6Addr::from(last), 0)
                    .map(|n| (IpNet::V6(n), exp)),
            );
        }
    }
    out
}

/// Start the firewall worker thread with the nftables backend (in the current network
/// namespace). Fails at once without CAP_NET_ADMIN.
pub fn spawn() -> Result<super::FirewallHandle, FirewallError> {
    super::FirewallHandle::spawn(|| Ok(Box::new(Nftables::new()?) as Box<dyn Firewall>))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elem(key: &[u8], end: bool, exp: Option<u64>) -> nl::ElemInfo {
        nl::ElemInfo {
            key: key.to_vec(),
            flags: if end {
                nl::NFT_SET_ELEM_INTERVAL_END
            } else {
                0
            },
            timeout: exp,
            expiration: exp,
        }
    }

    #[test]
    fn normalize() {
        let n = |s: &str| normalize_net(&s.parse().unwrap());
        assert_eq!(
            n("10.1.2.3/24").unwrap(),
            "10.1.2.0/24".parse::<IpNet>().unwrap()
        );
        assert_eq!(
            n("::ffff:1.2.3.4/128").unwrap(),
            "1.2.3.4/32".parse::<IpNet>().unwrap()
        );
        assert_eq!(
            n("::ffff:1.2.3.0/120").unwrap(),
            "1.2.3.0/24".parse::<IpNet>().unwrap()
        );
        assert!(n("0.0.0.0/0").is_err());
        assert!(n("1.2.3.4/0").is_err());
        assert!(n("::/0").is_err());
        assert!(n("::ffff:0.0.0.0/96").is_err());
    }

    #[test]
    fn decode_intervals() {
        let elems = vec![
            elem(&[0, 0, 0, 0], true, None), // nft's leading end element
            elem(&[10, 0, 0, 0], false, Some(5000)),
            elem(&[10, 0, 1, 0], true, None),
            elem(&[20, 0, 0, 0], false, None),
            elem(&[20, 0, 0, 3], true, None), // 20.0.0.0-20.0.0.2: two prefixes
            elem(&[255, 255, 255, 0], false, Some(7)), // open-ended
        ];
        let got = decode_elems(SetKind::N4, &elems);
        let want: Vec<(IpNet, Option<Duration>)> = vec![
            (
                "10.0.0.0/24".parse().unwrap(),
                Some(Duration::from_millis(5000)),
            ),
            ("20.0.0.0/31".parse().unwrap(), None),
            ("20.0.0.2/32".parse().unwrap(), None),
            (
                "255.255.255.0/24".parse().unwrap(),
                Some(Duration::from_millis(7)),
            ),
        ];
        assert_eq!(got, want);
        let v6 = decode_elems(
            SetKind::N6,
            &[
                elem(
                    &"2001:db8::".parse::<Ipv6Addr>().unwrap().octets(),
                    false,
                    None,
                ),
                elem(
                    &"2001:db8:0:1::".parse::<Ipv6Addr>().unwrap().octets(),
                    true,
                    None,
                ),
            ],
        );
        assert_eq!(v6, vec![("2001:db8::/64".parse().unwrap(), None)]);
    }

    #[test]
    fn supernet_order() {
        let n: IpNet = "10.1.2.0/24".parse().unwrap();
        let s: Vec<IpNet> = supernets(&n).take(2).collect();
        assert_eq!(
            s,
            vec![
                "10.1.2.0/23".parse().unwrap(),
                "10.1.0.0/22".parse().unwrap()
            ]
        );
        assert_eq!(supernets(&n).count(), 23);
        assert_eq!(last_subnet(&n), "10.1.2.255/32".parse().unwrap());
    }
}

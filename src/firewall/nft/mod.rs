//! nftables backend: programs the `inet f2b` table over netlink.
//!
//! Layout (see `layout.rs`): one base chain `input` (hook input, priority `filter - 10`, policy
//! accept) and, per jail, four sets — `JAIL-v4`/`JAIL-v6` for hosts (`flags timeout`) and
//! `JAIL-n4`/`JAIL-n6` for prefixes (`flags interval,timeout`) — each with one rule
//! `meta nfproto … [meta l4proto … [th dport …]] ip[6] saddr @SET counter drop|reject`
//! carrying the comment `f2b:JAIL:KIND:SCOPEHASH`. A jail is one *set group*; other owners
//! (blocklist feeds) add groups of their own with [`Nftables::set_groups`].
//!
//! The modules, one job each:
//! - `socket`: the request socket (mnl) and its ACK plumbing; `ffi`: the FFI boundary;
//! - `wire`: the kernel's answers, parsed safely; `encode`: transactions built by libnftnl
//!   (`rule`: a group's rule as nftnl expressions);
//! - `layout`: names, set kinds, groups and their rule scope (data);
//! - `reconcile`: setup as a pure function (kernel state + desired groups → transaction);
//! - `index` and `overlay`: what the sets hold, compactly, and changes as a pure function of
//!   it (→ elements to delete and add, traced back to the changes);
//! - `apply`: the transaction loop that drops refused changes and reports them;
//! - `monitor`: notices when somebody else removes f2b's objects.
//!
//! What `apply` does with addresses:
//! - host bits are cleared (`10.1.2.3/24` → `10.1.2.0/24`); IPv4-mapped IPv6
//!   (`::ffff:a.b.c.d`) becomes IPv4; a /0 prefix is refused;
//! - /32 and /128 go to the host sets, shorter prefixes to the interval sets;
//! - prefixes never overlap in the kernel (it would refuse): the outermost banned prefix is in
//!   the set, lasting as long as the longest ban inside it; the prefixes inside are remembered
//!   and come back with their own timeouts when it is lifted;
//! - a ban that is already in the set with the same expiry (±1 s) sends nothing.
//! - timeouts are whole milliseconds, at least 1 ms, at most [`MAX_TIMEOUT`].
//!
//! Usage (the engine):
//! ```no_run
//! use f2b::firewall::nft::spawn_monitor;
//! # fn main() -> Result<(), f2b::firewall::FirewallError> {
//! let fw = f2b::firewall::nft::spawn()?;
//! let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
//! let _monitor = spawn_monitor(move |event| { let _ = tx.send(event); })?;
//! // on rx.recv(): debounce, then fw.setup(jails) and fw.apply(all active bans)
//! # Ok(()) }
//! ```

mod apply;
mod encode;
mod feed;
mod ffi;
mod index;
mod layout;
mod monitor;
mod overlay;
mod reconcile;
mod rule;
mod socket;
mod wire;

use std::collections::{BTreeSet, HashSet};
use std::ffi::CString;
use std::time::Duration;

use self::index::{Clock, Elems, Expiry, Index};
use self::layout::Span;
use self::reconcile::{KernelState, Step};
use self::socket::{Conn, Reply};
use super::{
    Applied, Change, Element, FeedRules, FeedSync, Firewall, FirewallError, JailRules, TABLE_NAME,
};

pub use self::layout::{valid_name, GroupId, GroupSpec, Owner, Scope, SetKind, CHAIN_PRIORITY};
pub use self::monitor::{spawn_monitor, Monitor, MonitorEvent, Removed};
pub use self::socket::REPLY_TIMEOUT;

/// Longer ban timeouts are clamped to this (the kernel refuses timeouts of a few centuries
/// with ERANGE; ten years is as good as permanent but still expires).
pub const MAX_TIMEOUT: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

const TABLE: &std::ffi::CStr = c"f2b";

/// The nftables backend for the network namespace it was created in. Its netlink socket is
/// `!Send`: create it on the thread that uses it (the firewall worker, see [`spawn`]).
pub struct Nftables {
    conn: Conn,
    clock: Clock,
    /// Every group set up, of every owner.
    groups: Vec<GroupSpec>,
    index: Index,
    /// Sets whose index may be wrong (an exchange ended without an answer): read again first.
    stale: HashSet<String>,
    /// Transactions sent again after the kernel refused part of them.
    retries: u64,
}

/// The error for a refused request; EPERM means we lack CAP_NET_ADMIN.
fn kernel_error(what: String, errno: i32, message: Option<&str>) -> FirewallError {
    if errno == libc::EPERM {
        return FirewallError::PermissionDenied;
    }
    let what = match message {
        Some(m) if !m.is_empty() => format!("{what} ({m})"),
        _ => what,
    };
    FirewallError::Kernel { what, errno }
}

impl Nftables {
    /// Opens a netlink socket in the calling thread's network namespace and checks that we
    /// may program nftables (CAP_NET_ADMIN) → [`FirewallError::PermissionDenied`] otherwise.
    /// Touches nothing: call [`Firewall::setup`] next.
    pub fn new() -> Result<Self, FirewallError> {
        let mut fw = Nftables {
            conn: Conn::open()?,
            clock: Clock::new(),
            groups: Vec::new(),
            index: Index::default(),
            stale: HashSet::new(),
            retries: 0,
        };
        // Every nfnetlink request needs CAP_NET_ADMIN: a cheap probe.
        fw.table_exists()?;
        Ok(fw)
    }

    /// Netlink port id of our request socket (notifications we cause carry it).
    pub fn portid(&self) -> u32 {
        self.conn.portid()
    }

    /// How many transactions were sent again because the kernel refused part of them (an
    /// element somebody else added or removed, or a change that cannot be enforced).
    pub fn retries(&self) -> u64 {
        self.retries
    }

    // --- reading the kernel --------------------------------------------------------------

    fn table_exists(&mut self) -> Result<bool, FirewallError> {
        let attrs = [(wire::NFTA_TABLE_NAME, TABLE)];
        match self
            .conn
            .request(wire::NFT_MSG_GETTABLE, false, &attrs, |_, _| {})?
        {
            Ok(()) => Ok(true),
            Err(libc::ENOENT) => Ok(false),
            Err(e) => Err(kernel_error(
                format!("get table inet {TABLE_NAME}"),
                e,
                None,
            )),
        }
    }

    /// Dumps objects of one type of our table (none if the table does not exist).
    fn dump<T>(
        &mut self,
        msg: u8,
        table_attr: u16,
        reply: u8,
        parse: impl Fn(&wire::Msg<'_>) -> T,
        table_of: impl Fn(&T) -> &str,
    ) -> Result<Vec<T>, FirewallError> {
        let mut out = Vec::new();
        let r = self
            .conn
            .request(msg, true, &[(table_attr, TABLE)], |m, _| {
                if m.nft_msg() == Some(reply) && m.family() == Some(wire::NFPROTO_INET) {
                    let obj = parse(m);
                    if table_of(&obj) == TABLE_NAME {
                        out.push(obj);
                    }
                }
            })?;
        match r {
            Ok(()) | Err(libc::ENOENT) => Ok(out),
            Err(e) => Err(kernel_error(format!("list of inet {TABLE_NAME}"), e, None)),
        }
    }

    fn read_sets(&mut self) -> Result<Vec<wire::SetInfo>, FirewallError> {
        let (get, attr, new) = (
            wire::NFT_MSG_GETSET,
            wire::NFTA_SET_TABLE,
            wire::NFT_MSG_NEWSET,
        );
        self.dump(get, attr, new, wire::parse_set, |s| &s.table)
    }

    fn read_state(&mut self) -> Result<KernelState, FirewallError> {
        if !self.table_exists()? {
            return Ok(KernelState::default());
        }
        let (get, attr, new) = (
            wire::NFT_MSG_GETCHAIN,
            wire::NFTA_CHAIN_TABLE,
            wire::NFT_MSG_NEWCHAIN,
        );
        let chains = self.dump(get, attr, new, wire::parse_chain, |c| &c.table)?;
        let sets = self.read_sets()?;
        let (get, attr, new) = (
            wire::NFT_MSG_GETRULE,
            wire::NFTA_RULE_TABLE,
            wire::NFT_MSG_NEWRULE,
        );
        let rules = self.dump(get, attr, new, wire::parse_rule, |r| &r.table)?;
        Ok(KernelState {
            chains,
            sets,
            rules,
        })
    }

    /// Elements of one set as (expiry, address range); `None` if the set (or table) does not
    /// exist.
    fn read_elems(
        &mut self,
        set: &str,
        kind: SetKind,
    ) -> Result<Option<Vec<(Span, Expiry)>>, FirewallError> {
        let name = CString::new(set).expect("set names contain no NUL");
        let attrs = [
            (wire::NFTA_SET_ELEM_LIST_TABLE, TABLE),
            (wire::NFTA_SET_ELEM_LIST_SET, name.as_c_str()),
        ];
        let clock = self.clock;
        let mut elems = Vec::new();
        let r = self
            .conn
            .request(wire::NFT_MSG_GETSETELEM, true, &attrs, |m, received| {
                if m.nft_msg() == Some(wire::NFT_MSG_NEWSETELEM) {
                    let at = clock.at(received);
                    let mine = wire::parse_set_elems(m, TABLE_NAME, set);
                    elems.extend(mine.into_iter().map(|e| (at, e)));
                }
            })?;
        match r {
            Ok(()) => Ok(Some(index::decode(kind, &elems))),
            Err(libc::ENOENT) => Ok(None),
            Err(e) => Err(kernel_error(
                format!("list set inet {TABLE_NAME} {set}"),
                e,
                None,
            )),
        }
    }

    /// Reads a set's elements into the index. Returns false if the set does not exist.
    fn resync(&mut self, set: &str, kind: SetKind) -> Result<bool, FirewallError> {
        let Some(decoded) = self.read_elems(set, kind)? else {
            self.index.sets.remove(set);
            return Ok(false);
        };
        self.index
            .sets
            .entry(set.to_string())
            .or_insert_with(|| Elems::empty(kind))
            .load(&decoded);
        self.stale.remove(set);
        Ok(true)
    }

    // --- setup -----------------------------------------------------------------------------

    /// Makes the table hold `groups` as `owner`'s set groups: creates what is missing, adopts
    /// sets (and their elements) whose properties are right, replaces rules whose scope
    /// changed, and removes `owner`'s groups that are not listed. Other owners' groups stay.
    pub fn set_groups(
        &mut self,
        owner: Owner,
        groups: Vec<GroupSpec>,
    ) -> Result<(), FirewallError> {
        assert!(
            groups.iter().all(|g| g.id.owner == owner),
            "set_groups({owner:?}) with another owner's group"
        );
        let mut seen = BTreeSet::new();
        for g in &groups {
            if !seen.insert(&g.id) {
                return Err(FirewallError::Duplicate(g.id.label()));
            }
        }
        let desired: Vec<GroupSpec> = self
            .groups
            .iter()
            .filter(|g| g.id.owner != owner)
            .cloned()
            .chain(groups)
            .collect();
        // Read, reconcile, commit; a concurrent change between read and commit fails the
        // transaction (EEXIST/ENOENT/EBUSY): read again and retry once.
        let mut attempt = 0;
        let plan = loop {
            let kernel = self.read_state()?;
            let plan = reconcile::reconcile(&kernel, &desired, owner);
            let mut batch = self.conn.batch();
            let mut next_id = 0;
            for step in &plan.steps {
                match step {
                    Step::AddTable => batch.add_table(),
                    Step::DelRule {
                        chain,
                        handle,
                        comment,
                    } => batch.del_rule(chain, *handle, comment.as_deref()),
                    Step::DelChain(name) => batch.del_chain(name),
                    Step::DelSet(name) => batch.del_set(name),
                    Step::AddChain => batch.add_chain(),
                    Step::AddSet { name, kind } => {
                        next_id += 1;
                        batch.add_set(name, *kind, next_id);
                    }
                    Step::AddRule { group, kind } => {
                        batch.add_rule(&desired[*group], *kind, &mut next_id)
                    }
                }
            }
            let (what, ack) = match self.conn.commit(&mut batch)? {
                Reply::Committed => break plan,
                Reply::Refused(errors) => {
                    let (i, ack) = errors.into_iter().next().expect("a refused message");
                    (batch.describe(i, ack.offset), ack)
                }
                Reply::Aborted(ack) => (batch.describe(usize::MAX, None), ack),
            };
            let retry = [libc::EEXIST, libc::ENOENT, libc::EBUSY].contains(&ack.errno);
            if attempt > 0 || !retry {
                return Err(kernel_error(what, ack.errno, ack.message.as_deref()));
            }
            tracing::debug!(
                errno = ack.errno,
                "nftables setup refused ({what}); reading again"
            );
            self.retries += 1;
            attempt += 1;
        };
        // The index follows: forget sets that are gone, start fresh sets empty, and read the
        // kept ones again (somebody may have changed their elements).
        let kinds: Vec<(String, SetKind)> = desired
            .iter()
            .flat_map(|g| g.set_names().collect::<Vec<_>>())
            .collect();
        self.index
            .sets
            .retain(|name, _| kinds.iter().any(|(n, _)| n == name));
        self.groups = desired;
        for (name, kind) in kinds {
            if plan.fresh.contains(&name) {
                let mut empty = Elems::empty(kind);
                // A recreated interval set still knows which prefixes were wanted.
                if let (Some(Elems::Ranges(old)), Elems::Ranges(new)) =
                    (self.index.sets.remove(&name), &mut empty)
                {
                    new.wanted = old.wanted;
                }
                self.index.sets.insert(name, empty);
            } else {
                self.resync(&name, kind)?;
            }
        }
        Ok(())
    }

    /// Sets the known groups up again (after somebody removed our objects).
    fn resetup(&mut self) -> Result<(), FirewallError> {
        tracing::warn!("nftables objects of inet {TABLE_NAME} are missing, recreating them");
        let owners: BTreeSet<Owner> = self.groups.iter().map(|g| g.id.owner).collect();
        for owner in owners {
            let mine = self
                .groups
                .iter()
                .filter(|g| g.id.owner == owner)
                .cloned()
                .collect();
            self.set_groups(owner, mine)?;
        }
        Ok(())
    }
}

impl Firewall for Nftables {
    fn name(&self) -> &'static str {
        "nftables"
    }

    fn setup(&mut self, jails: &[JailRules]) -> Result<(), FirewallError> {
        let mut groups = Vec::with_capacity(jails.len());
        for j in jails {
            let g = GroupSpec::jail(j)?;
            if groups.iter().any(|o: &GroupSpec| o.id == g.id) {
                return Err(FirewallError::Duplicate(format!("jail {}", j.name)));
            }
            groups.push(g);
        }
        self.set_groups(Owner::Jail, groups)
    }

    fn apply(&mut self, changes: &[Change]) -> Result<Applied, FirewallError> {
        self.apply_changes(changes)
    }

    fn list(&mut self) -> Result<Vec<Element>, FirewallError> {
        let mut out = Vec::new();
        for s in self.read_sets()? {
            let Some((group, kind)) = layout::parse_set_name(&s.name) else {
                continue;
            };
            if group.owner != Owner::Jail || !layout::set_matches(&s, kind) {
                continue;
            }
            let Some(decoded) = self.read_elems(&s.name, kind)? else {
                continue;
            };
            if let Some(known) = self.index.sets.get_mut(&s.name) {
                known.load(&decoded);
            }
            let now = self.clock.now();
            for (span, expiry) in decoded {
                let expires_in = expiry.remaining(now);
                out.extend(span.prefixes(kind.is_v6()).into_iter().map(|net| Element {
                    jail: group.name.clone(),
                    net,
                    expires_in,
                }));
            }
        }
        out.sort_by(|a, b| (&a.jail, a.net).cmp(&(&b.jail, b.net)));
        Ok(out)
    }

    fn teardown(&mut self) -> Result<(), FirewallError> {
        let mut batch = self.conn.batch();
        batch.del_table();
        match self.conn.commit(&mut batch)? {
            Reply::Committed => {}
            Reply::Refused(e) if e[0].1.errno == libc::ENOENT => {}
            Reply::Refused(e) => {
                let ack = &e[0].1;
                let what = format!("delete table inet {TABLE_NAME}");
                return Err(kernel_error(what, ack.errno, ack.message.as_deref()));
            }
            Reply::Aborted(ack) => {
                let what = format!("delete table inet {TABLE_NAME}");
                return Err(kernel_error(what, ack.errno, ack.message.as_deref()));
            }
        }
        self.groups.clear();
        self.index.sets.clear();
        self.stale.clear();
        Ok(())
    }

    fn setup_feeds(&mut self, feeds: &[FeedRules]) -> Result<(), FirewallError> {
        self.setup_feed_groups(feeds)
    }

    fn sync_feed(
        &mut self,
        name: &str,
        want: &crate::feeds::AddrRanges,
        budget: usize,
    ) -> Result<FeedSync, FirewallError> {
        self.sync_feed_step(name, want, budget)
    }
}

/// Starts the firewall worker thread with the nftables backend (in the current network
/// namespace). Fails at once without CAP_NET_ADMIN.
pub fn spawn() -> Result<super::FirewallHandle, FirewallError> {
    super::FirewallHandle::spawn(|| Ok(Box::new(Nftables::new()?) as Box<dyn Firewall>))
}

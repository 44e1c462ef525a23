//! What goes in and out of the store: [`Commit`] (one atomic change, owned names) and
//! [`Snapshot`] (everything loaded at start, compact: jail names interned as [`JailId`]s).

use std::collections::BTreeMap;

use ipnet::IpNet;

use super::Origin;

/// The position key of the journal reader (its cursor) in [`Commit::positions`] and
/// [`Snapshot::positions`]; [`Commit::cursor`] and [`Snapshot::cursor`] are shorthands for it.
pub const JOURNAL_POSITION: &str = "journal";

/// An active ban as stored. `J` is its jail: the name in a [`Commit`] ([`StoredBan`]), a
/// [`JailId`] in a [`Snapshot`] ([`BanRow`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ban<J> {
    pub jail: J,
    /// The banned address (/32, /128) or prefix. Stored canonical (host bits cleared).
    pub net: IpNet,
    /// µs since the epoch.
    pub start_us: u64,
    /// µs since the epoch; `None` = permanent.
    pub end_us: Option<u64>,
    /// The n-th ban of this address (incremental ban times).
    pub count: u32,
    /// Failures that triggered it (0 for manual bans).
    pub failures: u32,
    /// Who or what made it.
    pub origin: Origin,
}

impl<J> Ban<J> {
    /// The same ban, its jail made by `f`.
    pub fn map_jail<K>(&self, f: impl FnOnce(&J) -> K) -> Ban<K> {
        Ban {
            jail: f(&self.jail),
            net: self.net,
            start_us: self.start_us,
            end_us: self.end_us,
            count: self.count,
            failures: self.failures,
            origin: self.origin.clone(),
        }
    }
}

/// An active ban as written by a [`Commit`].
pub type StoredBan = Ban<String>;

/// An active ban as loaded.
pub type BanRow = Ban<JailId>;

/// One recorded ban in the history (what incremental ban times and `f2b history` read). `J`
/// is its jail, as for [`Ban`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PastBan<J> {
    pub net: IpNet,
    pub jail: J,
    /// Ban start, µs since the epoch.
    pub t_us: u64,
    pub origin: Origin,
}

impl<J> PastBan<J> {
    /// The same entry, its jail made by `f`.
    pub fn map_jail<K>(&self, f: impl FnOnce(&J) -> K) -> PastBan<K> {
        PastBan {
            net: self.net,
            jail: f(&self.jail),
            t_us: self.t_us,
            origin: self.origin.clone(),
        }
    }
}

/// A history entry as written by a [`Commit`] and returned by
/// [`super::Store::history_detail`].
pub type HistoryEntry = PastBan<String>;

/// A history entry as loaded.
pub type HistoryRow = PastBan<JailId>;

/// Per-jail totals kept across restarts: failures counted, bans made, failures ignored
/// (ignoreip / own addresses). In a [`Commit`] they are deltas, added to the stored totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Totals {
    pub failed: u64,
    pub banned: u64,
    pub ignored: u64,
}

impl Totals {
    pub fn is_zero(&self) -> bool {
        *self == Totals::default()
    }
}

/// One message waiting in the outbox for its sink (an action, or the fleet).
///
/// The engine writes a message in the same transaction as the decision it is about, not yet
/// `ready`; once the firewall enforced the decision it releases the message (`ready`), and the
/// sink's deliverer sends it and removes it. After a crash, messages of bans still active are
/// released at start, the others removed: nothing is lost, nothing claims a ban that is not
/// enforced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    /// Assigned by the engine, increasing ([`Snapshot::outbox_next_id`]).
    pub id: u64,
    pub sink: String,
    /// µs since the epoch.
    pub created_us: u64,
    pub ready: bool,
    /// Failed deliveries so far.
    pub attempts: u32,
    /// Not before this time (µs since the epoch; 0 = now).
    pub next_us: u64,
    /// The message, JSON.
    pub payload: String,
}

/// One atomic change of the stored state.
///
/// Applied in ONE transaction, in this order: `jails_removed`, `bans_removed`, `bans_added`,
/// `windows_cleared`, `failures_added`, `windows_trimmed`, `history_added`, `history_removed`,
/// `totals_added`,
/// `positions`, `cursor`. (So a commit that both removes and adds a ban leaves it added, and a
/// failure added below a trim in the same commit is trimmed; commits that must mean "add then
/// remove" are two commits — which the [`super::StoreHandle`] still groups into one
/// transaction, applying them in order.)
///
/// A failure window is stored as its failure times, one row each (a multiset: the same time
/// twice counts twice), so that a commit writes what changed — O(new failures) — however
/// large the window is. [`Commit::sync_window`] derives the operations from a jail's window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Commit {
    /// The journal cursor, i.e. `positions` entry [`JOURNAL_POSITION`]; `None` leaves it.
    pub cursor: Option<String>,
    /// Reader positions by source (`"journal"`, a file source's key, a fleet stream…):
    /// `Some` sets, `None` deletes. Within a transaction the last write of a source wins.
    pub positions: Vec<(String, Option<String>)>,
    /// Upserted by (jail, net).
    pub bans_added: Vec<StoredBan>,
    /// (jail, net); absent ones are ignored.
    pub bans_removed: Vec<(String, IpNet)>,
    /// An exact duplicate (net, jail, time) is stored once (the first origin stays).
    pub history_added: Vec<HistoryEntry>,
    /// History entries to forget, by (net, jail, time): bans that never took effect (the
    /// firewall refused them). Applied after `history_added`.
    pub history_removed: Vec<HistoryEntry>,
    /// Failures counted into the window of (jail, net), at (µs).
    pub failures_added: Vec<(String, IpNet, u64)>,
    /// Delete the failures of (jail, net) older than (µs, exclusive): failures that left the
    /// window.
    pub windows_trimmed: Vec<(String, IpNet, u64)>,
    /// Delete the whole window of (jail, net).
    pub windows_cleared: Vec<(String, IpNet)>,
    /// Added to the jail's stored totals.
    pub totals_added: Vec<(String, Totals)>,
    /// Drop the bans, windows and totals of jails that no longer exist (their history stays).
    pub jails_removed: Vec<String>,
    /// Messages added to the outbox.
    pub outbox_added: Vec<OutboxRow>,
    /// Outbox messages now ready to be delivered.
    pub outbox_released: Vec<u64>,
    /// Outbox messages delivered (or given up): removed.
    pub outbox_removed: Vec<u64>,
    /// A delivery failed: (id, attempts so far, not before µs).
    pub outbox_deferred: Vec<(u64, u32, u64)>,
}

impl Commit {
    /// Nothing to write.
    pub fn is_empty(&self) -> bool {
        self.cursor.is_none()
            && self.positions.is_empty()
            && self.bans_added.is_empty()
            && self.bans_removed.is_empty()
            && self.history_added.is_empty()
            && self.history_removed.is_empty()
            && self.failures_added.is_empty()
            && self.windows_trimmed.is_empty()
            && self.windows_cleared.is_empty()
            && self.totals_added.iter().all(|(_, t)| t.is_zero())
            && self.jails_removed.is_empty()
            && self.outbox_added.is_empty()
            && self.outbox_released.is_empty()
            && self.outbox_removed.is_empty()
            && self.outbox_deferred.is_empty()
    }

    /// Persist the window of (`jail`, `net`) as it is now, after `new` failures were counted
    /// into it since it was last persisted (its `new` newest entries, appended at the back as
    /// a jail does). `times` is the whole window, oldest first; empty = the window is gone.
    ///
    /// Writes O(`new`) rows: the new failures, and a trim below the window's oldest failure
    /// (those that left it). When every failure in the window is new (`new >= len`: it was
    /// cleared by a ban and refilled, or it is new), the stored window is cleared first.
    pub fn sync_window<I>(&mut self, jail: &str, net: IpNet, times: I, new: usize)
    where
        I: IntoIterator<Item = u64>,
        I::IntoIter: DoubleEndedIterator + ExactSizeIterator + Clone,
    {
        let times = times.into_iter();
        let len = times.len();
        if len == 0 || new >= len {
            self.windows_cleared.push((jail.to_string(), net));
        } else if let Some(oldest) = times.clone().min() {
            // The minimum, not the front: entries processed out of time order stay.
            self.windows_trimmed.push((jail.to_string(), net, oldest));
        }
        let mut added: Vec<_> = times
            .rev()
            .take(new)
            .map(|t| (jail.to_string(), net, t))
            .collect();
        added.reverse();
        self.failures_added.extend(added);
    }
}

/// A jail name in a [`Snapshot`]: an index into [`Snapshot::jails`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JailId(pub u32);

/// An open failure window as loaded: its failure times, ascending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowRow {
    pub jail: JailId,
    pub net: IpNet,
    pub times: Vec<u64>,
}

/// Everything the engine needs at start of day. Jail names are interned: every `jail` field
/// is a [`JailId`] into [`Snapshot::jails`] ([`Snapshot::jail`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Journal cursor of the last entry whose consequences are stored (the
    /// [`JOURNAL_POSITION`] entry of `positions`, repeated here).
    pub cursor: Option<String>,
    /// Every reader position by source, the journal's included.
    pub positions: BTreeMap<String, String>,
    /// The jail names the rows below refer to.
    pub jails: Vec<String>,
    /// Bans still active at the load time (end after it, or permanent).
    pub bans: Vec<BanRow>,
    /// Every recorded ban, oldest first.
    pub history: Vec<HistoryRow>,
    /// Open failure windows.
    pub windows: Vec<WindowRow>,
    /// Totals per jail.
    pub totals: Vec<(JailId, Totals)>,
    /// The outbox, oldest first.
    pub outbox: Vec<OutboxRow>,
    /// The next outbox id to assign (one more than the largest ever stored).
    pub outbox_next_id: u64,
}

impl Snapshot {
    /// The name of jail `id`.
    ///
    /// # Panics
    /// If `id` is not from this snapshot.
    pub fn jail(&self, id: JailId) -> &str {
        &self.jails[id.0 as usize]
    }

    /// A ban with its jail name (convenience for tests and tools; allocates).
    pub fn stored_ban(&self, b: &BanRow) -> StoredBan {
        b.map_jail(|j| self.jail(*j).to_string())
    }

    /// A history row with its jail name (allocates).
    pub fn history_entry(&self, h: &HistoryRow) -> HistoryEntry {
        h.map_jail(|j| self.jail(*j).to_string())
    }

    /// The totals of jail `name` (zero if none are stored).
    pub fn totals_of(&self, name: &str) -> Totals {
        self.totals
            .iter()
            .find(|(j, _)| self.jail(*j) == name)
            .map_or(Totals::default(), |(_, t)| *t)
    }
}

/// What [`super::Store::purge`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PurgeStats {
    pub history: usize,
    pub bans: usize,
    /// Failure rows (not windows) older than the history horizon.
    pub failures: usize,
}

/// When a commit is on disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Durability {
    /// `synchronous=NORMAL`: survives a crash of the process; an OS crash or power loss may
    /// roll back the latest commits (atomically). See the module docs.
    #[default]
    Normal,
    /// `synchronous=FULL`: the WAL is fsync'd before the commit returns.
    Full,
}

impl Durability {
    pub(crate) fn pragma(self) -> &'static str {
        match self {
            Durability::Normal => "NORMAL",
            Durability::Full => "FULL",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net() -> IpNet {
        "192.0.2.1/32".parse().unwrap()
    }

    #[test]
    fn sync_window_writes_only_what_is_new() {
        let mut c = Commit::default();
        // 2 new failures at the back of a window of 5: add them, trim below the oldest.
        c.sync_window("j", net(), [10u64, 11, 12, 13, 14], 2);
        assert_eq!(
            c.failures_added,
            vec![("j".into(), net(), 13), ("j".into(), net(), 14)]
        );
        assert_eq!(c.windows_trimmed, vec![("j".into(), net(), 10)]);
        assert!(c.windows_cleared.is_empty());
        // All new: clear, then add all.
        let mut c = Commit::default();
        c.sync_window("j", net(), [20u64, 20], 3);
        assert_eq!(c.windows_cleared, vec![("j".into(), net())]);
        assert_eq!(c.failures_added.len(), 2);
        assert!(c.windows_trimmed.is_empty());
        // Gone.
        let mut c = Commit::default();
        c.sync_window("j", net(), Vec::<u64>::new(), 1);
        assert_eq!(c.windows_cleared, vec![("j".into(), net())]);
        assert!(c.failures_added.is_empty());
        // Out of time order: the trim stays below the smallest time kept.
        let mut c = Commit::default();
        c.sync_window("j", net(), [10u64, 8, 12], 1);
        assert_eq!(c.windows_trimmed, vec![("j".into(), net(), 8)]);
        // Nothing new: a trim only.
        let mut c = Commit::default();
        c.sync_window("j", net(), [5u64, 6], 0);
        assert!(c.failures_added.is_empty() && c.windows_cleared.is_empty());
        assert_eq!(c.windows_trimmed.len(), 1);
    }

    #[test]
    fn zero_totals_are_nothing_to_write() {
        let c = Commit {
            totals_added: vec![("j".into(), Totals::default())],
            ..Commit::default()
        };
        assert!(c.is_empty());
        let c = Commit {
            positions: vec![("file:/x".into(), None)],
            ..Commit::default()
        };
        assert!(!c.is_empty());
    }
}

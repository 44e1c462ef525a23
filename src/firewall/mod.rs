//! Firewall seam: desired-state changes from the engine to an enforcement backend.
//!
//! The engine never talks to netlink itself. It sends [`Request`]s to one firewall worker
//! thread (the netlink socket is `!Send`), which owns a [`Firewall`] backend and answers each
//! request on a oneshot channel. Backends:
//! - [`DryRun`]: logs what it would do and keeps an in-memory view (`--firewall none`).
//! - `nft::Nftables`: programs the `inet f2b` table over netlink (see `nft.rs`).

use std::collections::BTreeMap;
use std::time::Duration;

use ipnet::IpNet;

pub mod dryrun;
pub mod nft;
mod worker;
pub use dryrun::DryRun;
pub use worker::FirewallHandle;

/// Name of the nftables table f2b owns (family `inet`). Nothing else is ever touched.
pub const TABLE_NAME: &str = "f2b";

/// Transport protocols a jail's rule can be scoped to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
    /// Both TCP and UDP (only meaningful with ports).
    TcpUdp,
    /// Any protocol: the rule has no port/protocol match at all.
    All,
}

/// What the rule does with a banned address's packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Drop,
    Reject,
}

/// An inclusive destination port range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

/// Everything the firewall needs to know about one jail: its sets and its rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct JailRules {
    /// Jail name: `[A-Za-z0-9_-]{1,32}` (validated by config), used in set names.
    pub name: String,
    /// Empty = all ports.
    pub ports: Vec<PortRange>,
    pub protocol: Protocol,
    pub verdict: Verdict,
}

/// One change of desired state.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Change {
    /// Ban `net` (a host address /32 or /128, or a prefix) in `jail` for `timeout`
    /// (`None` = permanent). Banning an address that is already in the set replaces its timeout.
    Ban {
        jail: String,
        net: IpNet,
        timeout: Option<Duration>,
    },
    /// Remove `net` from `jail`'s sets. Unbanning an address that is not there is not an error.
    Unban { jail: String, net: IpNet },
}

/// One element as read back from the kernel.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Element {
    pub jail: String,
    pub net: IpNet,
    /// Remaining time before the kernel expires it; `None` = permanent.
    pub expires_in: Option<Duration>,
}

/// Errors of the firewall subsystem.
#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    #[error("netlink: {0}")]
    Io(#[from] std::io::Error),
    #[error("nftables rejected {what}: {errno_name} ({errno})")]
    Kernel {
        what: String,
        errno: i32,
        errno_name: String,
    },
    #[error("missing capability CAP_NET_ADMIN: run f2bd as root, or with --firewall none")]
    PermissionDenied,
    #[error("no reply from the kernel within {0:?}")]
    Timeout(Duration),
    #[error("unknown jail {0:?} (no sets were set up for it)")]
    UnknownJail(String),
    #[error("firewall worker has stopped")]
    WorkerGone,
    #[error("{0}")]
    Other(String),
}

/// An enforcement backend. Runs on the firewall worker thread; need not be `Send`.
pub trait Firewall {
    /// Short name for logs ("nftables", "dry-run").
    fn name(&self) -> &'static str;
    /// Make the table, chain, per-jail sets and rules match `jails`, idempotently and in one
    /// batch: existing sets and their elements are adopted (a restart does not flush bans), sets
    /// and rules of jails not listed are removed, rules whose scope changed are replaced.
    fn setup(&mut self, jails: &[JailRules]) -> Result<(), FirewallError>;
    /// Apply changes in as few batched transactions as possible, every ACK checked.
    fn apply(&mut self, changes: &[Change]) -> Result<(), FirewallError>;
    /// Every element currently in f2b's sets, per jail.
    fn list(&mut self) -> Result<Vec<Element>, FirewallError>;
    /// Delete f2b's whole table (used by `f2b firewall flush` and tests; never on a plain stop).
    fn teardown(&mut self) -> Result<(), FirewallError>;
}

/// Group elements by jail, for display.
pub fn by_jail(elements: &[Element]) -> BTreeMap<&str, Vec<&Element>> {
    let mut map: BTreeMap<&str, Vec<&Element>> = BTreeMap::new();
    for e in elements {
        map.entry(e.jail.as_str()).or_default().push(e);
    }
    map
}

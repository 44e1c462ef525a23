//! Firewall seam: desired-state changes from the engine to an enforcement backend.
//!
//! The engine never talks to netlink itself. It sends requests to one firewall worker thread
//! ([`FirewallHandle`]; the netlink socket is `!Send`), which owns a [`Firewall`] backend and
//! answers each request on a oneshot channel. Backends:
//! - [`DryRun`]: logs what it would do and keeps an in-memory view (`--firewall none`).
//! - [`nft::Nftables`]: programs the `inet f2b` table over netlink.
//!
//! # What `apply` promises
//!
//! `apply(changes)` returns `Ok(Applied)` when it could talk to the kernel: **every change not
//! listed in [`Applied::refused`] is enforced** when it returns, and every change listed is
//! not (or, after a lost answer, not known to be), with the reason:
//! - refused by the kernel: the transaction is sent again without the offending change (the
//!   kernel names it by the sequence number of its message and the offset of its element), a
//!   bounded number of times, so that one bad ban never blocks the others;
//! - refused before sending: an unknown jail, a /0 prefix, a prefix that overlaps a range in
//!   the set that is not one of f2b's bans (what the kernel would refuse with EEXIST).
//!
//! Each [`Refusal`] is transient ([`Refusal::is_transient`]: ENOBUFS, EINTR, EAGAIN, EBUSY,
//! ENOMEM, no answer in time — the caller retries later) or permanent (EINVAL, ERANGE, an
//! overlap … — retrying the same change will not help). `Err(FirewallError)` means nothing of
//! the call was enforced: the worker is gone, f2b lacks CAP_NET_ADMIN, or the table could not
//! be set up again after somebody removed it.
//!
//! Re-banning an address replaces its timeout; unbanning an address that is not there is not
//! an error; applying the same ban twice sends nothing the second time.

// FFI only in `nft/ffi.rs`, which allows it for itself.
#![deny(unsafe_code)]

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use ipnet::{IpNet, Ipv4Net};

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

/// A blocklist feed's share of the table: interval sets `feed.NAME-n4`/`-n6` and their
/// rules, scoped like a jail's (an empty port list: every port).
pub type FeedRules = JailRules;

/// Where a feed's sync stands after one bounded step ([`Firewall::sync_feed`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FeedSync {
    /// Elements added or deleted by this step.
    pub sent: usize,
    /// Elements still to add or delete: 0 = the sets hold exactly what was asked.
    pub remaining: usize,
    /// Ranges in the feed's sets afterwards (IPv4, IPv6).
    pub held: (usize, usize),
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

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Ban { jail, net, .. } => write!(f, "ban of {net} in jail {jail}"),
            Change::Unban { jail, net } => write!(f, "unban of {net} in jail {jail}"),
        }
    }
}

/// One element as read back from the kernel.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Element {
    pub jail: String,
    pub net: IpNet,
    /// Remaining time before the kernel expires it; `None` = permanent.
    pub expires_in: Option<Duration>,
}

/// What an `apply` did: everything was enforced except the changes listed here.
#[must_use = "refused changes are not enforced"]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// In the order of the changes given to `apply`.
    pub refused: Vec<Refused>,
}

impl Applied {
    /// Every change is enforced.
    pub fn is_complete(&self) -> bool {
        self.refused.is_empty()
    }
    /// For callers that treat any refused change as a failure of the whole call.
    pub fn into_result(self) -> Result<(), FirewallError> {
        if self.refused.is_empty() {
            Ok(())
        } else {
            Err(FirewallError::Refused(self.refused))
        }
    }
}

/// A change that is not enforced, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{change} not enforced: {reason}")]
pub struct Refused {
    /// Position of the change in the slice given to `apply`.
    pub index: usize,
    pub change: Change,
    pub reason: Refusal,
}

/// Why a change is not enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The kernel refused the change's element with this errno.
    #[error("nftables refused it: {} ({})", errno_name(*.0), .0)]
    Kernel(i32),
    /// The transaction holding the change failed as a whole (a kernel answer to the whole
    /// batch, or the netlink socket); nothing of it was applied.
    #[error("the transaction failed: {} ({})", errno_name(*.0), .0)]
    Batch(i32),
    /// The kernel did not answer in time; the transaction's fate is unknown.
    #[error("no answer from the kernel within {0:?}")]
    Timeout(Duration),
    /// It overlaps a range in the set that is not one of f2b's bans (somebody else added it);
    /// the kernel refuses overlapping elements with EEXIST.
    #[error("it overlaps {first}-{last}, an element f2b did not add (EEXIST)")]
    Overlap { first: IpAddr, last: IpAddr },
    /// No sets were set up for the jail.
    #[error("no sets were set up for this jail")]
    UnknownJail,
    /// A /0 prefix would match every address.
    #[error("a /0 prefix would match every address")]
    ZeroPrefix,
    /// Still refused after the bounded number of attempts.
    #[error("still failing after {0} attempts")]
    Unsettled(usize),
}

impl Refusal {
    /// The errno the kernel (or the socket) gave, if any.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Refusal::Kernel(e) | Refusal::Batch(e) => Some(*e),
            Refusal::Overlap { .. } => Some(libc::EEXIST),
            Refusal::Timeout(_) => Some(libc::ETIMEDOUT),
            Refusal::UnknownJail | Refusal::ZeroPrefix | Refusal::Unsettled(_) => None,
        }
    }
    /// Retrying later may succeed (the kernel was busy, out of memory, did not answer …).
    pub fn is_transient(&self) -> bool {
        match self {
            Refusal::Timeout(_) | Refusal::Unsettled(_) => true,
            Refusal::Kernel(e) | Refusal::Batch(e) => transient_errno(*e),
            Refusal::Overlap { .. } | Refusal::UnknownJail | Refusal::ZeroPrefix => false,
        }
    }
    /// The refusal of every change of a call that failed with `e` part-way.
    pub fn from_error(e: &FirewallError) -> Refusal {
        match e {
            FirewallError::Timeout(d) => Refusal::Timeout(*d),
            FirewallError::Kernel { errno, .. } => Refusal::Batch(*errno),
            FirewallError::Io(io) => Refusal::Batch(io.raw_os_error().unwrap_or(libc::EIO)),
            FirewallError::PermissionDenied => Refusal::Batch(libc::EPERM),
            _ => Refusal::Batch(libc::EIO),
        }
    }
}

/// Errnos after which the same request may succeed later.
pub fn transient_errno(errno: i32) -> bool {
    [
        libc::ENOBUFS,
        libc::EINTR,
        libc::EAGAIN,
        libc::EBUSY,
        libc::ENOMEM,
        libc::ETIMEDOUT,
    ]
    .contains(&errno)
}

/// Symbolic name of an errno value, e.g. `EEXIST`.
pub fn errno_name(errno: i32) -> String {
    let name = match errno {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EINTR => "EINTR",
        libc::EIO => "EIO",
        libc::E2BIG => "E2BIG",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::ENODEV => "ENODEV",
        libc::ENOTDIR => "ENOTDIR",
        libc::EINVAL => "EINVAL",
        libc::ENFILE => "ENFILE",
        libc::EMFILE => "EMFILE",
        libc::ENOSPC => "ENOSPC",
        libc::ERANGE => "ERANGE",
        libc::ENAMETOOLONG => "ENAMETOOLONG",
        libc::ELOOP => "ELOOP",
        libc::ENOTEMPTY => "ENOTEMPTY",
        libc::EOVERFLOW => "EOVERFLOW",
        libc::EMSGSIZE => "EMSGSIZE",
        libc::EPROTONOSUPPORT => "EPROTONOSUPPORT",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::EAFNOSUPPORT => "EAFNOSUPPORT",
        libc::ENOBUFS => "ENOBUFS",
        libc::ETIMEDOUT => "ETIMEDOUT",
        libc::ECONNREFUSED => "ECONNREFUSED",
        _ => return format!("errno {errno}"),
    };
    name.to_string()
}

/// Errors of the firewall subsystem.
#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    #[error("netlink: {0}")]
    Io(#[from] std::io::Error),
    #[error("nftables refused {what}: {} ({errno})", errno_name(*.errno))]
    Kernel { what: String, errno: i32 },
    #[error("missing capability CAP_NET_ADMIN: run f2bd as root, or with --firewall none")]
    PermissionDenied,
    #[error("no reply from the kernel within {0:?}")]
    Timeout(Duration),
    #[error("invalid name {0:?}: use 1 to 32 of A-Z a-z 0-9 _ -")]
    InvalidName(String),
    #[error("{0} is listed twice")]
    Duplicate(String),
    #[error("{group}: invalid port range {first}-{last}")]
    InvalidPorts {
        group: String,
        first: u16,
        last: u16,
    },
    #[error("nftables dump kept being interrupted by concurrent changes")]
    DumpInterrupted,
    #[error("{}", refused_summary(.0))]
    Refused(Vec<Refused>),
    #[error("firewall worker has stopped")]
    WorkerGone,
    #[error("no sets were set up for {0}")]
    UnknownGroup(String),
}

fn refused_summary(refused: &[Refused]) -> String {
    match refused {
        [] => "no change refused".to_string(),
        [one] => one.to_string(),
        [first, ..] => format!("{} changes not enforced; the first: {first}", refused.len()),
    }
}

impl FirewallError {
    /// The kernel's errno, for errors that carry one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            FirewallError::Kernel { errno, .. } => Some(*errno),
            FirewallError::Io(e) => e.raw_os_error(),
            FirewallError::PermissionDenied => Some(libc::EPERM),
            FirewallError::Timeout(_) => Some(libc::ETIMEDOUT),
            _ => None,
        }
    }
}

/// An enforcement backend. Runs on the firewall worker thread; need not be `Send`.
pub trait Firewall {
    /// Short name for logs ("nftables", "dry-run").
    fn name(&self) -> &'static str;
    /// Make the table, chain, per-jail sets and rules match `jails`, idempotently and in one
    /// batch: existing sets and their elements are adopted (a restart does not flush bans), sets
    /// and rules of jails not listed are removed, rules whose scope changed are replaced.
    fn setup(&mut self, jails: &[JailRules]) -> Result<(), FirewallError>;
    /// Apply changes in as few transactions as possible; see the module docs for what the
    /// result promises.
    fn apply(&mut self, changes: &[Change]) -> Result<Applied, FirewallError>;
    /// Every element currently in f2b's jail sets.
    fn list(&mut self) -> Result<Vec<Element>, FirewallError>;
    /// Delete f2b's whole table (used by `f2b firewall flush` and tests; never on a plain stop).
    fn teardown(&mut self) -> Result<(), FirewallError>;
    /// Make the blocklist feeds' sets and rules match `feeds` (like [`Firewall::setup`] for
    /// jails): sets of listed feeds are kept with their elements, those of others removed.
    fn setup_feeds(&mut self, feeds: &[FeedRules]) -> Result<(), FirewallError>;
    /// One bounded step towards feed `name`'s sets holding exactly `want` (permanent
    /// elements): at most about `budget` elements are added or deleted, in one transaction
    /// whose every answer is checked. Call again while [`FeedSync::remaining`] is not 0.
    fn sync_feed(
        &mut self,
        name: &str,
        want: &crate::feeds::AddrRanges,
        budget: usize,
    ) -> Result<FeedSync, FirewallError>;
}

/// Clears host bits (`10.1.2.3/24` → `10.1.2.0/24`), maps IPv4-mapped IPv6 (`::ffff:a.b.c.d`)
/// to IPv4 (packets of IPv4 clients are IPv4 on the wire), and refuses /0.
pub fn normalize_net(net: &IpNet) -> Result<IpNet, Refusal> {
    let net = match net {
        IpNet::V6(n) if n.prefix_len() >= 96 => match n.addr().to_ipv4_mapped() {
            Some(v4) => Ipv4Net::new(v4, n.prefix_len() - 96).map_or(*net, IpNet::V4),
            None => *net,
        },
        _ => *net,
    }
    .trunc();
    if net.prefix_len() == 0 {
        return Err(Refusal::ZeroPrefix);
    }
    Ok(net)
}

/// Group elements by jail, for display.
pub fn by_jail(elements: &[Element]) -> BTreeMap<&str, Vec<&Element>> {
    let mut map: BTreeMap<&str, Vec<&Element>> = BTreeMap::new();
    for e in elements {
        map.entry(e.jail.as_str()).or_default().push(e);
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_normalised() {
        let n = |s: &str| normalize_net(&s.parse().unwrap());
        let ok = |s: &str| Ok(s.parse::<IpNet>().unwrap());
        assert_eq!(n("10.1.2.3/24"), ok("10.1.2.0/24"));
        assert_eq!(n("::ffff:1.2.3.4/128"), ok("1.2.3.4/32"));
        assert_eq!(n("::ffff:1.2.3.0/120"), ok("1.2.3.0/24"));
        for zero in ["0.0.0.0/0", "1.2.3.4/0", "::/0", "::ffff:0.0.0.0/96"] {
            assert_eq!(n(zero), Err(Refusal::ZeroPrefix), "{zero}");
        }
    }

    #[test]
    fn refusals_are_classified() {
        for e in [
            libc::ENOBUFS,
            libc::EINTR,
            libc::EAGAIN,
            libc::EBUSY,
            libc::ENOMEM,
        ] {
            assert!(Refusal::Kernel(e).is_transient(), "{}", errno_name(e));
            assert!(Refusal::Batch(e).is_transient());
        }
        assert!(Refusal::Timeout(Duration::from_secs(1)).is_transient());
        for e in [
            libc::EINVAL,
            libc::EEXIST,
            libc::ERANGE,
            libc::ENOENT,
            libc::EOPNOTSUPP,
        ] {
            assert!(!Refusal::Kernel(e).is_transient(), "{}", errno_name(e));
        }
        let overlap = Refusal::Overlap {
            first: "10.0.0.5".parse().unwrap(),
            last: "10.0.0.20".parse().unwrap(),
        };
        assert!(!overlap.is_transient());
        assert_eq!(overlap.errno(), Some(libc::EEXIST));
        assert_eq!(
            Refusal::Kernel(libc::ERANGE).to_string(),
            "nftables refused it: ERANGE (34)"
        );
        let r = Refused {
            index: 3,
            change: Change::Ban {
                jail: "sshd".into(),
                net: "10.0.0.16/28".parse().unwrap(),
                timeout: None,
            },
            reason: overlap,
        };
        assert_eq!(
            r.to_string(),
            "ban of 10.0.0.16/28 in jail sshd not enforced: it overlaps 10.0.0.5-10.0.0.20, \
             an element f2b did not add (EEXIST)"
        );
        let applied = Applied {
            refused: vec![r.clone(), r.clone()],
        };
        assert!(!applied.is_complete());
        let err = applied.into_result().unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("2 changes not enforced; the first: ban of"),
            "{text}"
        );
        assert_eq!(
            FirewallError::Refused(vec![r.clone()]).to_string(),
            r.to_string()
        );
        assert!(Applied::default().into_result().is_ok());
    }
}

//! Client-side proxies of `org.f2b` (used by the `f2b` CLI and the tests) and of polkit's
//! Authority (used by the server to authorize callers).

use std::collections::HashMap;

use super::error::Error;
use super::types::{ActionRecord, BanRecord, FeedRecord, FleetReply, HistoryEntry, PastBanRecord};

/// `org.f2b.Manager1` at `/org/f2b`.
#[zbus::proxy(
    interface = "org.f2b.Manager1",
    default_service = "org.f2b",
    default_path = "/org/f2b"
)]
pub trait Manager1 {
    /// Names of the configured jails.
    fn list_jails(&self) -> Result<Vec<String>, Error>;

    /// Active bans of `jail` (every jail when empty), sorted by (jail, address), paged.
    fn get_bans(&self, jail: &str, offset: u32, limit: u32)
        -> Result<(Vec<BanRecord>, u32), Error>;

    /// Past bans of one address.
    fn get_history(&self, address: &str) -> Result<Vec<HistoryEntry>, Error>;

    /// Bans of every address since `since_usec`, oldest first.
    fn get_ban_history(&self, since_usec: u64) -> Result<Vec<PastBanRecord>, Error>;

    /// The firewall backend, the elements its sets hold, and why they could not be listed.
    fn get_firewall(&self) -> Result<(String, u32, String), Error>;

    /// The fleet's state (see [`FleetReply`]).
    fn get_fleet(&self) -> Result<FleetReply, Error>;

    /// The actions with their delivery counters.
    fn get_actions(&self) -> Result<Vec<ActionRecord>, Error>;

    #[zbus(allow_interactive_auth)]
    fn ban(&self, jail: &str, address: &str, seconds: u64) -> Result<u64, Error>;

    /// The blocklist feeds.
    fn get_feeds(&self) -> Result<Vec<FeedRecord>, Error>;

    /// Fetch a feed (every feed when empty) now; returns once enforced.
    #[zbus(allow_interactive_auth)]
    fn refresh_feeds(&self, name: &str) -> Result<(), Error>;

    #[zbus(allow_interactive_auth)]
    fn ban_with_options(
        &self,
        jail: &str,
        address: &str,
        seconds: u64,
        options: std::collections::HashMap<&str, zbus::Variant<'_>>,
    ) -> Result<u64, Error>;

    #[zbus(allow_interactive_auth)]
    fn unban(&self, jail: &str, address: &str) -> Result<u32, Error>;

    #[zbus(allow_interactive_auth)]
    fn unban_all(&self, jail: &str) -> Result<u32, Error>;

    #[zbus(allow_interactive_auth)]
    #[allow(clippy::type_complexity)]
    fn reload(&self) -> Result<(Vec<String>, Vec<String>, Vec<String>, Vec<String>), Error>;

    #[zbus(signal)]
    fn banned(&self, jail: &str, address: &str, until_usec: u64) -> zbus::Result<()>;

    #[zbus(signal)]
    fn unbanned(&self, jail: &str, address: &str) -> zbus::Result<()>;

    #[zbus(property)]
    fn version(&self) -> zbus::Result<String>;

    #[zbus(property)]
    fn jails(&self) -> zbus::Result<Vec<String>>;
}

/// `org.f2b.Jail1` at `/org/f2b/jail/<escaped name>`.
#[zbus::proxy(interface = "org.f2b.Jail1", default_service = "org.f2b")]
pub trait Jail1 {
    #[zbus(allow_interactive_auth)]
    fn ban(&self, address: &str, seconds: u64) -> Result<u64, Error>;

    #[zbus(allow_interactive_auth)]
    fn unban(&self, address: &str) -> Result<u32, Error>;

    fn list_bans(&self, offset: u32, limit: u32) -> Result<(Vec<BanRecord>, u32), Error>;

    /// The journal matches the jail reads.
    fn get_journal_matches(&self) -> Result<Vec<String>, Error>;

    /// The log files a file jail follows: (path, state, lines, failures).
    fn get_log_files(&self) -> Result<Vec<(String, String, u64, u64)>, Error>;

    #[zbus(allow_interactive_auth)]
    fn start(&self) -> Result<(), Error>;

    #[zbus(allow_interactive_auth)]
    fn stop(&self) -> Result<(), Error>;

    #[zbus(property)]
    fn name(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn enabled(&self) -> zbus::Result<bool>;
    #[zbus(property)]
    fn filter(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn max_retry(&self) -> zbus::Result<u32>;
    #[zbus(property)]
    fn set_max_retry(&self, value: u32) -> zbus::Result<()>;
    #[zbus(property)]
    fn find_time(&self) -> zbus::Result<u64>;
    #[zbus(property)]
    fn set_find_time(&self, value: u64) -> zbus::Result<()>;
    #[zbus(property)]
    fn ban_time(&self) -> zbus::Result<i64>;
    #[zbus(property)]
    fn set_ban_time(&self, value: i64) -> zbus::Result<()>;
    #[zbus(property)]
    fn currently_failed(&self) -> zbus::Result<u32>;
    #[zbus(property)]
    fn total_failed(&self) -> zbus::Result<u64>;
    #[zbus(property)]
    fn currently_banned(&self) -> zbus::Result<u32>;
    #[zbus(property)]
    fn total_banned(&self) -> zbus::Result<u64>;
    #[zbus(property)]
    fn current_failures(&self) -> zbus::Result<u64>;
    #[zbus(property)]
    fn ports(&self) -> zbus::Result<Vec<String>>;
    #[zbus(property)]
    fn protocol(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn action(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn ignore_ip(&self) -> zbus::Result<Vec<String>>;
    #[zbus(property)]
    fn ignore_self(&self) -> zbus::Result<bool>;
    #[zbus(property)]
    fn ipv4_prefix(&self) -> zbus::Result<u8>;
    #[zbus(property)]
    fn ipv6_prefix(&self) -> zbus::Result<u8>;
    #[zbus(property)]
    fn ban_time_increment(&self) -> zbus::Result<bool>;
    #[zbus(property)]
    fn ban_time_factor(&self) -> zbus::Result<f64>;
    #[zbus(property)]
    fn ban_time_multipliers(&self) -> zbus::Result<Vec<f64>>;
    #[zbus(property)]
    fn ban_time_max_time(&self) -> zbus::Result<u64>;
    #[zbus(property)]
    fn ban_time_rnd_time(&self) -> zbus::Result<u64>;
    #[zbus(property)]
    fn ban_time_overall_jails(&self) -> zbus::Result<bool>;
    #[zbus(property)]
    fn ban_time_fast_rebans(&self) -> zbus::Result<bool>;
}

/// The subject of a polkit check: `(kind, details)`.
pub type PolkitSubject<'a> = (&'a str, HashMap<&'a str, zbus::Variant<'a>>);

/// polkit's `org.freedesktop.PolicyKit1.Authority` (only what f2bd needs).
#[zbus::proxy(
    interface = "org.freedesktop.PolicyKit1.Authority",
    default_service = "org.freedesktop.PolicyKit1",
    default_path = "/org/freedesktop/PolicyKit1/Authority"
)]
pub trait Authority {
    /// Returns `(is_authorized, is_challenge, details)`.
    fn check_authorization(
        &self,
        subject: &PolkitSubject<'_>,
        action_id: &str,
        details: &HashMap<&str, &str>,
        flags: u32,
        cancellation_id: &str,
    ) -> zbus::Result<(bool, bool, HashMap<String, String>)>;
}

//! `org.f2b.Manager1` at `/org/f2b`.

use std::collections::HashMap;
use std::sync::Arc;

use zbus::message::Header;
use zbus::object_server::SignalEmitter;
use zbus::OwnedVariant;

use super::error::Result;
use super::types::{
    fleet_reply, ActionRecord, BanRecord, FeedRecord, FleetPeer, FleetRecent, HistoryEntry,
    PastBanRecord,
};
use super::{validate, Shared};
use crate::engine::api::Query;
use crate::engine::{Command, FeedsCommand, ReloadSummary};

/// Most history entries one `GetHistory` returns (the newest).
pub const MAX_HISTORY: usize = 10_000;
/// Most bans one `GetBanHistory` returns (the newest): a day of a heavy attack, a few MB.
pub const MAX_BAN_HISTORY: usize = 100_000;

pub(crate) struct Manager {
    pub(crate) shared: Arc<Shared>,
}

impl Manager {
    /// `Ban` and `BanWithOptions`: arguments checked before the caller is authorized.
    async fn checked_ban(
        &self,
        jail: &str,
        address: &str,
        seconds: u64,
        force: bool,
        hdr: Header<'_>,
        conn: &zbus::Connection,
    ) -> Result<u64> {
        let jail = validate::jail(jail)?;
        let addr = validate::address(address)?;
        let duration = validate::ban_seconds(seconds)?;
        let origin = self.shared.authorize(conn, &hdr).await?;
        self.shared.ban(jail, addr, duration, force, origin).await
    }
}

#[zbus::interface(name = "org.f2b.Manager1", introspection_docs = false)]
impl Manager {
    /// Names of the configured jails (enabled or not).
    #[zbus(out_args("jails"))]
    async fn list_jails(&self) -> Result<Vec<String>> {
        self.shared.jail_names().await
    }

    /// Active bans, sorted by (jail, address): `limit` ≤ 10000 per page; `total` counts all.
    #[zbus(out_args("bans", "total"))]
    async fn get_bans(&self, jail: &str, offset: u32, limit: u32) -> Result<(Vec<BanRecord>, u32)> {
        let jail = validate::opt_jail(jail)?;
        self.shared.list_bans(jail, offset, limit).await
    }

    /// Past bans of one address, oldest first (at most the newest 10000).
    #[zbus(out_args("history"))]
    async fn get_history(&self, address: &str) -> Result<Vec<HistoryEntry>> {
        let addr = validate::single_address(address)?;
        let mut list = self
            .shared
            .engine
            .call(|reply| Command::History { addr, reply })
            .await?;
        if list.len() > MAX_HISTORY {
            list.drain(..list.len() - MAX_HISTORY);
        }
        Ok(list
            .into_iter()
            .map(|(jail, start_usec)| HistoryEntry { jail, start_usec })
            .collect())
    }

    /// Bans of every address that started at or after `since_usec`, oldest first (at most
    /// the newest 100000): what a chart of bans over time needs.
    #[zbus(out_args("bans"))]
    async fn get_ban_history(&self, since_usec: u64) -> Result<Vec<PastBanRecord>> {
        let list = self
            .shared
            .engine
            .call(|reply| {
                Command::Query(Query::BanHistory {
                    since_us: since_usec,
                    limit: MAX_BAN_HISTORY,
                    reply,
                })
            })
            .await?;
        Ok(list
            .into_iter()
            .map(|(jail, address, start_usec)| PastBanRecord {
                jail,
                address,
                start_usec,
            })
            .collect())
    }

    /// The firewall backend and how many elements its sets hold, read back from it; `error`
    /// says why they could not be listed ("" when they could).
    #[zbus(out_args("backend", "elements", "error"))]
    async fn get_firewall(&self) -> Result<(String, u32, String)> {
        let state = self
            .shared
            .engine
            .call(|reply| Command::Query(Query::Firewall(reply)))
            .await?;
        Ok(match state.elements {
            Ok(n) => (state.backend, n, String::new()),
            Err(e) => (state.backend, 0, e),
        })
    }

    /// The fleet (bans shared with other hosts): whether it is configured, this host's name,
    /// the stream, the servers, whether connected, the stream's last sequence and the one
    /// applied here (their difference is the lag), decisions published, the peers, refusals
    /// by reason and the last decisions received.
    #[zbus(out_args(
        "configured",
        "host",
        "stream",
        "servers",
        "connected",
        "last_seq",
        "applied_seq",
        "published",
        "peers",
        "refused",
        "recent"
    ))]
    #[allow(clippy::type_complexity)]
    async fn get_fleet(
        &self,
    ) -> Result<(
        bool,
        String,
        String,
        Vec<String>,
        bool,
        u64,
        u64,
        u64,
        Vec<FleetPeer>,
        HashMap<String, u64>,
        Vec<FleetRecent>,
    )> {
        // Written out (not the FleetReply alias): zbus makes one out argument per element
        // only of a tuple it can see.
        let snap = self.shared.engine.call(Command::Fleet).await?;
        Ok(fleet_reply(snap))
    }

    /// The actions (and the fleet) with their delivery counters, by name.
    #[zbus(out_args("actions"))]
    async fn get_actions(&self) -> Result<Vec<ActionRecord>> {
        let list = self
            .shared
            .engine
            .call(|reply| Command::Query(Query::Actions(reply)))
            .await?;
        Ok(list.into_iter().map(ActionRecord::from).collect())
    }

    /// Ban `address` (or prefix) in `jail` for `seconds` (0 = the jail's ban time).
    #[zbus(out_args("until_usec"))]
    async fn ban(
        &self,
        jail: &str,
        address: &str,
        seconds: u64,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<u64> {
        self.checked_ban(jail, address, seconds, false, hdr, conn)
            .await
    }

    /// [`Self::ban`] with options: `force` (b) bans a prefix even though it holds an address
    /// of the jail's ignoreip or this host's own address (a single such address is still
    /// refused). Unknown options are refused.
    #[zbus(out_args("until_usec"))]
    async fn ban_with_options(
        &self,
        jail: &str,
        address: &str,
        seconds: u64,
        options: HashMap<String, OwnedVariant>,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<u64> {
        let force = validate::ban_options(&options)?;
        self.checked_ban(jail, address, seconds, force, hdr, conn)
            .await
    }

    /// Unban `address` from `jail` (every jail when empty); returns how many bans were lifted.
    #[zbus(out_args("count"))]
    async fn unban(
        &self,
        jail: &str,
        address: &str,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<u32> {
        let jail = validate::opt_jail(jail)?;
        let addr = validate::address(address)?;
        let origin = self.shared.authorize(conn, &hdr).await?;
        self.shared.unban(jail, addr, origin).await
    }

    /// Lift every ban of `jail` (of every jail when empty).
    #[zbus(out_args("count"))]
    async fn unban_all(
        &self,
        jail: &str,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<u32> {
        let jail = validate::opt_jail(jail)?;
        let origin = self.shared.authorize(conn, &hdr).await?;
        Ok(self
            .shared
            .engine
            .call(|reply| Command::UnbanAll {
                jail,
                origin,
                reply,
            })
            .await??)
    }

    /// Re-read the configuration. On error (`InvalidConfig`, naming file:line) the running
    /// configuration stays.
    #[zbus(out_args("added", "removed", "changed", "unchanged"))]
    async fn reload(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<(Vec<String>, Vec<String>, Vec<String>, Vec<String>)> {
        self.shared.authorize(conn, &hdr).await?;
        let ReloadSummary {
            added,
            removed,
            changed,
            unchanged,
        } = self.shared.engine.reload().await?;
        Ok((added, removed, changed, unchanged))
    }

    /// The blocklist feeds, in name order.
    #[zbus(out_args("feeds"))]
    async fn get_feeds(&self) -> Result<Vec<FeedRecord>> {
        let list = (self.shared.engine)
            .call(|reply| Command::Feeds(FeedsCommand::List(reply)))
            .await?;
        Ok(list.into_iter().map(FeedRecord::from).collect())
    }

    /// Fetch feed `name` (every feed when empty) now; returns once each was fetched and what
    /// it brought is enforced.
    async fn refresh_feeds(
        &self,
        name: &str,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<()> {
        self.shared.authorize(conn, &hdr).await?;
        let name = (!name.is_empty()).then(|| name.to_string());
        let done = (self.shared.engine)
            .call(|reply| Command::Feeds(FeedsCommand::Refresh { name, reply }))
            .await??;
        // The sender is dropped once done (or when f2bd stops).
        let _ = done.await;
        Ok(())
    }

    /// An address was banned; `until_usec` = 0 for a permanent ban.
    #[zbus(signal)]
    pub(crate) async fn banned(
        emitter: &SignalEmitter<'_>,
        jail: &str,
        address: &str,
        until_usec: u64,
    ) -> zbus::Result<()>;

    /// A ban was lifted (expired or unbanned).
    #[zbus(signal)]
    pub(crate) async fn unbanned(
        emitter: &SignalEmitter<'_>,
        jail: &str,
        address: &str,
    ) -> zbus::Result<()>;

    #[zbus(property(emits_changed_signal = "const"))]
    fn version(&self) -> String {
        env!("CARGO_PKG_VERSION").to_string()
    }

    #[zbus(property)]
    async fn jails(&self) -> Result<Vec<String>> {
        self.shared.jail_names().await
    }
}

//! `org.f2b.Jail1` at `/org/f2b/jail/<escaped name>`, one object per configured jail.

use std::sync::Arc;

use zbus::message::Header;

use super::error::{Error, Result};
use super::types::BanRecord;
use super::{validate, Shared};
use crate::engine::api::Query;
use crate::engine::{Command, JailInfo, JailSettings, Tunable};

pub(crate) struct JailObject {
    pub(crate) name: String,
    pub(crate) shared: Arc<Shared>,
}

impl JailObject {
    async fn info(&self) -> Result<JailInfo> {
        let name = self.name.clone();
        Ok(self
            .shared
            .engine
            .call(|reply| Command::Jail(name, reply))
            .await??)
    }

    async fn settings(&self) -> Result<JailSettings> {
        Ok(self.info().await?.settings)
    }

    async fn set_enabled(
        &self,
        conn: &zbus::Connection,
        hdr: &Header<'_>,
        enabled: bool,
    ) -> Result<()> {
        self.shared.authorize(conn, hdr).await?;
        let jail = self.name.clone();
        Ok(self
            .shared
            .engine
            .call(|reply| Command::SetEnabled {
                jail,
                enabled,
                reply,
            })
            .await??)
    }

    async fn set_tunable(
        &self,
        conn: &zbus::Connection,
        hdr: Option<&Header<'_>>,
        value: Tunable,
    ) -> Result<()> {
        let hdr = hdr.ok_or_else(|| Error::NotAuthorized("the call has no sender".into()))?;
        self.shared.authorize(conn, hdr).await?;
        let jail = self.name.clone();
        Ok(self
            .shared
            .engine
            .call(|reply| Command::SetTunable { jail, value, reply })
            .await??)
    }
}

#[zbus::interface(name = "org.f2b.Jail1", introspection_docs = false)]
impl JailObject {
    /// Ban `address` (or prefix) in this jail for `seconds` (0 = the jail's ban time).
    #[zbus(out_args("until_usec"))]
    async fn ban(
        &self,
        address: &str,
        seconds: u64,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<u64> {
        let addr = validate::address(address)?;
        let duration = validate::ban_seconds(seconds)?;
        let origin = self.shared.authorize(conn, &hdr).await?;
        self.shared
            .ban(self.name.clone(), addr, duration, false, origin)
            .await
    }

    /// Unban `address` from this jail; returns how many bans were lifted (0 or 1).
    #[zbus(out_args("count"))]
    async fn unban(
        &self,
        address: &str,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<u32> {
        let addr = validate::address(address)?;
        let origin = self.shared.authorize(conn, &hdr).await?;
        self.shared
            .unban(Some(self.name.clone()), addr, origin)
            .await
    }

    /// This jail's active bans, sorted by address, paged (`limit` ≤ 10000).
    #[zbus(out_args("bans", "total"))]
    async fn list_bans(&self, offset: u32, limit: u32) -> Result<(Vec<BanRecord>, u32)> {
        self.shared
            .list_bans(Some(self.name.clone()), offset, limit)
            .await
    }

    /// The journal matches this jail reads (`FIELD=value`); empty for a jail fed by other
    /// jails' bans.
    #[zbus(out_args("matches"))]
    async fn get_journal_matches(&self) -> Result<Vec<String>> {
        let jail = self.name.clone();
        Ok(self
            .shared
            .engine
            .call(|reply| Command::Query(Query::JournalMatches { jail, reply }))
            .await??)
    }

    /// The log files this file jail follows: (path, state, lines given to its filter,
    /// failures found); empty for other jails.
    #[zbus(out_args("files"))]
    async fn get_log_files(&self) -> Result<Vec<(String, String, u64, u64)>> {
        let jail = self.name.clone();
        Ok(self
            .shared
            .engine
            .call(|reply| Command::Query(Query::LogFiles { jail, reply }))
            .await??)
    }

    /// Enable the jail at run time (until the next reload).
    async fn start(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<()> {
        self.set_enabled(conn, &hdr, true).await
    }

    /// Disable the jail at run time (its bans are lifted).
    async fn stop(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<()> {
        self.set_enabled(conn, &hdr, false).await
    }

    #[zbus(property(emits_changed_signal = "const"))]
    fn name(&self) -> String {
        self.name.clone()
    }

    #[zbus(property)]
    async fn enabled(&self) -> Result<bool> {
        Ok(self.info().await?.enabled)
    }

    /// Filter name, with `:mode` when a mode is set ("" for a jail fed by other jails' bans).
    #[zbus(property)]
    async fn filter(&self) -> Result<String> {
        Ok(self.info().await?.filter)
    }

    #[zbus(property)]
    async fn max_retry(&self) -> Result<u32> {
        Ok(self.info().await?.maxretry)
    }

    #[zbus(property)]
    async fn set_max_retry(
        &self,
        value: u32,
        #[zbus(header)] hdr: Option<Header<'_>>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<()> {
        let n = validate::max_retry(value)?;
        self.set_tunable(conn, hdr.as_ref(), Tunable::MaxRetry(n))
            .await
    }

    /// Seconds.
    #[zbus(property)]
    async fn find_time(&self) -> Result<u64> {
        Ok(self.info().await?.findtime_s)
    }

    #[zbus(property)]
    async fn set_find_time(
        &self,
        value: u64,
        #[zbus(header)] hdr: Option<Header<'_>>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<()> {
        let d = validate::find_time(value)?;
        self.set_tunable(conn, hdr.as_ref(), Tunable::FindTime(d))
            .await
    }

    /// Seconds; -1 = permanent.
    #[zbus(property)]
    async fn ban_time(&self) -> Result<i64> {
        Ok(self.info().await?.bantime_s)
    }

    #[zbus(property)]
    async fn set_ban_time(
        &self,
        value: i64,
        #[zbus(header)] hdr: Option<Header<'_>>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<()> {
        let d = validate::ban_time(value)?;
        self.set_tunable(conn, hdr.as_ref(), Tunable::BanTime(d))
            .await
    }

    #[zbus(property)]
    async fn currently_failed(&self) -> Result<u32> {
        Ok(self.info().await?.currently_failed)
    }

    /// Failures inside the find-time windows of those addresses.
    #[zbus(property)]
    async fn current_failures(&self) -> Result<u64> {
        Ok(self.info().await?.current_failures)
    }

    #[zbus(property)]
    async fn total_failed(&self) -> Result<u64> {
        Ok(self.info().await?.total_failed)
    }

    #[zbus(property)]
    async fn currently_banned(&self) -> Result<u32> {
        Ok(self.info().await?.currently_banned)
    }

    #[zbus(property)]
    async fn total_banned(&self) -> Result<u64> {
        Ok(self.info().await?.total_banned)
    }

    // What the jail enforces (from the configuration; they change with a reload).

    /// Destination ports (`22`, `8000-8100`); empty = every port.
    #[zbus(property)]
    async fn ports(&self) -> Result<Vec<String>> {
        Ok(self.settings().await?.ports)
    }

    /// `tcp`, `udp`, `tcp+udp` or `all`.
    #[zbus(property)]
    async fn protocol(&self) -> Result<String> {
        Ok(self.settings().await?.protocol)
    }

    /// `drop` or `reject`.
    #[zbus(property)]
    async fn action(&self) -> Result<String> {
        Ok(self.settings().await?.action)
    }

    /// Addresses and networks never banned.
    #[zbus(property)]
    async fn ignore_ip(&self) -> Result<Vec<String>> {
        Ok(self.settings().await?.ignoreip)
    }

    /// The host's own addresses are never banned.
    #[zbus(property)]
    async fn ignore_self(&self) -> Result<bool> {
        Ok(self.settings().await?.ignoreself)
    }

    /// Failures of IPv4 addresses are counted and banned per prefix of this length.
    #[zbus(property)]
    async fn ipv4_prefix(&self) -> Result<u8> {
        Ok(self.settings().await?.ipv4_prefix)
    }

    /// The same for IPv6.
    #[zbus(property)]
    async fn ipv6_prefix(&self) -> Result<u8> {
        Ok(self.settings().await?.ipv6_prefix)
    }

    /// Repeat offenders get longer bans (the BanTime* properties below apply).
    #[zbus(property)]
    async fn ban_time_increment(&self) -> Result<bool> {
        Ok(self.settings().await?.bantime_increment)
    }

    #[zbus(property)]
    async fn ban_time_factor(&self) -> Result<f64> {
        Ok(self.settings().await?.bantime_factor)
    }

    #[zbus(property)]
    async fn ban_time_multipliers(&self) -> Result<Vec<f64>> {
        Ok(self.settings().await?.bantime_multipliers)
    }

    /// Seconds; 0 = no limit.
    #[zbus(property)]
    async fn ban_time_max_time(&self) -> Result<u64> {
        Ok(self.settings().await?.bantime_maxtime_s)
    }

    /// Seconds.
    #[zbus(property)]
    async fn ban_time_rnd_time(&self) -> Result<u64> {
        Ok(self.settings().await?.bantime_rndtime_s)
    }

    #[zbus(property)]
    async fn ban_time_overall_jails(&self) -> Result<bool> {
        Ok(self.settings().await?.bantime_overalljails)
    }

    #[zbus(property)]
    async fn ban_time_fast_rebans(&self) -> Result<bool> {
        Ok(self.settings().await?.bantime_fastrebans)
    }
}

//! The D-Bus side of `f2b`: a connection to f2bd's `org.f2b`, its proxies, and the reads that
//! several commands share (a jail's properties, paged ban lists).

use std::collections::HashMap;
use std::future::Future;

use serde::Serialize;
use zbus::{Connection, OwnedVariant};

use super::CliError;
use crate::dbus::proxy::{Jail1Proxy, Manager1Proxy};
use crate::dbus::{
    self, error::error_name, jail_path, validate, BanRecord, BusSpec, BUS_NAME, JAIL_IFACE,
};

/// Page size used when listing bans.
const PAGE: u32 = validate::MAX_PAGE;

/// A connection to f2bd.
pub struct Client {
    pub conn: Connection,
    pub bus: BusSpec,
}

impl Client {
    /// Connect to `bus` and make sure f2bd is on it.
    pub async fn connect(bus: BusSpec) -> Result<Client, CliError> {
        let conn = bus.connect().await.map_err(|error| CliError::Connect {
            bus: bus.clone(),
            error,
        })?;
        let client = Client { conn, bus };
        let dbus = zbus::fdo::DBusProxy::new(&client.conn).await?;
        let name = zbus::names::BusName::try_from(BUS_NAME)?;
        if dbus.name_has_owner(name).await? {
            Ok(client)
        } else {
            Err(CliError::NotRunning { bus: client.bus })
        }
    }

    pub async fn manager(&self) -> Result<Manager1Proxy<'static>, CliError> {
        Ok(Manager1Proxy::builder(&self.conn)
            .cache_properties(zbus::proxy::CacheProperties::No)
            .build()
            .await?)
    }

    pub async fn jail(&self, name: &str) -> Result<Jail1Proxy<'static>, CliError> {
        Ok(Jail1Proxy::builder(&self.conn)
            .path(jail_path(name))
            .cache_properties(zbus::proxy::CacheProperties::No)
            .build()
            .await?)
    }

    /// The proxy of a jail that exists, or [`CliError::NoSuchJail`].
    pub async fn existing_jail(&self, name: &str) -> Result<Jail1Proxy<'static>, CliError> {
        self.jail_status(name).await?;
        self.jail(name).await
    }

    /// The properties of one jail object, or [`CliError::NoSuchJail`].
    pub async fn jail_status(&self, name: &str) -> Result<JailStatus, CliError> {
        let path = zbus::ObjectPath::try_from(jail_path(name))?;
        let props = zbus::fdo::PropertiesProxy::builder(&self.conn)
            .destination(BUS_NAME)
            .path(path)
            .build()
            .await?;
        let iface = zbus::names::InterfaceName::try_from(JAIL_IFACE)?;
        match props.get_all(iface).await {
            Ok(map) => {
                JailStatus::from_props(map).ok_or_else(|| CliError::Incomplete(name.to_string()))
            }
            Err(e) => {
                let e = zbus::Error::from(e);
                match error_name(&e) {
                    Some((n, _))
                        if n == "org.freedesktop.DBus.Error.UnknownObject"
                            || n == "org.freedesktop.DBus.Error.UnknownInterface"
                            || n == "org.freedesktop.DBus.Error.UnknownMethod" =>
                    {
                        Err(CliError::NoSuchJail(name.to_string()))
                    }
                    _ => Err(e.into()),
                }
            }
        }
    }
}

/// Fetch every page of a paged list.
pub async fn page_all<F, Fut>(mut fetch: F) -> Result<Vec<BanRecord>, CliError>
where
    F: FnMut(u32, u32) -> Fut,
    Fut: Future<Output = Result<(Vec<BanRecord>, u32), dbus::Error>>,
{
    let mut out = Vec::new();
    loop {
        let offset = u32::try_from(out.len()).unwrap_or(u32::MAX);
        let (page, total) = fetch(offset, PAGE).await?;
        let n = page.len();
        out.extend(page);
        if n == 0 || out.len() >= total as usize {
            return Ok(out);
        }
    }
}

/// One jail's properties (`org.f2b.Jail1`), as `f2b status` shows them.
#[derive(Debug, Clone, Default, Serialize)]
pub struct JailStatus {
    pub name: String,
    pub enabled: bool,
    pub filter: String,
    pub max_retry: u32,
    /// Seconds.
    pub find_time: u64,
    /// Seconds; -1 = permanent.
    pub ban_time: i64,
    /// Addresses with failures in their window.
    pub currently_failed: u32,
    /// Failures in those windows.
    pub current_failures: u64,
    pub total_failed: u64,
    pub currently_banned: u32,
    pub total_banned: u64,
    pub ports: Vec<String>,
    pub protocol: String,
    pub action: String,
    pub ignore_ip: Vec<String>,
    pub ignore_self: bool,
    pub ipv4_prefix: u8,
    pub ipv6_prefix: u8,
    pub ban_time_increment: bool,
    pub ban_time_factor: f64,
    pub ban_time_multipliers: Vec<f64>,
    /// Seconds; 0 = no limit.
    pub ban_time_max_time: u64,
    /// Seconds.
    pub ban_time_rnd_time: u64,
    pub ban_time_overall_jails: bool,
    pub ban_time_fast_rebans: bool,
}

impl JailStatus {
    /// From `GetAll`; `None` when a property of the original set is missing (the newer ones
    /// default, so that a client also reads a daemon one version older).
    fn from_props(mut m: HashMap<String, OwnedVariant>) -> Option<JailStatus> {
        let mut take = |k: &str| m.remove(k);
        fn get<T: TryFrom<OwnedVariant>>(v: Option<OwnedVariant>) -> Option<T> {
            T::try_from(v?).ok()
        }
        let mut s = JailStatus {
            name: get(take("Name"))?,
            enabled: get(take("Enabled"))?,
            filter: get(take("Filter"))?,
            max_retry: get(take("MaxRetry"))?,
            find_time: get(take("FindTime"))?,
            ban_time: get(take("BanTime"))?,
            currently_failed: get(take("CurrentlyFailed"))?,
            total_failed: get(take("TotalFailed"))?,
            currently_banned: get(take("CurrentlyBanned"))?,
            total_banned: get(take("TotalBanned"))?,
            ..Default::default()
        };
        macro_rules! newer {
            ($($field:ident = $prop:literal),* $(,)?) => {
                $( if let Some(v) = get(take($prop)) { s.$field = v; } )*
            };
        }
        newer!(
            current_failures = "CurrentFailures",
            ports = "Ports",
            protocol = "Protocol",
            action = "Action",
            ignore_ip = "IgnoreIp",
            ignore_self = "IgnoreSelf",
            ipv4_prefix = "Ipv4Prefix",
            ipv6_prefix = "Ipv6Prefix",
            ban_time_increment = "BanTimeIncrement",
            ban_time_factor = "BanTimeFactor",
            ban_time_multipliers = "BanTimeMultipliers",
            ban_time_max_time = "BanTimeMaxTime",
            ban_time_rnd_time = "BanTimeRndTime",
            ban_time_overall_jails = "BanTimeOverallJails",
            ban_time_fast_rebans = "BanTimeFastRebans",
        );
        Some(s)
    }
}

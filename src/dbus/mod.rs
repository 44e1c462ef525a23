//! The D-Bus control plane: `org.f2b` on the system bus.
//!
//! Objects (documented in `dbus/org.f2b.xml`, which a test compares with what is served):
//! - `/org/f2b`, `org.f2b.Manager1`: jails, paged bans, ban/unban, reload, history; the
//!   `Banned`/`Unbanned` signals.
//! - `/org/f2b/jail/<escaped name>`, `org.f2b.Jail1`: one per configured jail (added and
//!   removed when the engine publishes `JailsChanged`), settings and counters as properties with
//!   `PropertiesChanged` at most once per second per jail.
//!
//! Methods only validate their arguments, authorize the caller ([`auth`]) when they change
//! state, send one [`Command`] to the engine and await its reply: the engine owns all state.
//! Errors are named `org.f2b.Error.*` ([`Error`]). Lists are paged (at most
//! [`validate::MAX_PAGE`] per call).

mod auth;
pub mod error;
mod events;
mod jail;
mod manager;
pub mod path;
pub mod proxy;
pub mod types;
pub mod validate;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use tokio::task::JoinHandle;
use zbus::fdo::{RequestNameFlags, RequestNameReply};
use zbus::message::Header;
use zbus::Connection;

pub use auth::ACTION_MANAGE;
pub use error::Error;
pub use path::{escape_label, jail_name, jail_path, JAIL_PATH_PREFIX};
pub use types::{ActionRecord, BanRecord, FeedRecord, FleetReply, HistoryEntry, PastBanRecord};

use crate::engine::{Command, EngineHandle, Origin};

/// The well-known name of f2bd.
pub const BUS_NAME: &str = "org.f2b";
/// The manager object.
pub const MANAGER_PATH: &str = "/org/f2b";
/// The manager interface.
pub const MANAGER_IFACE: &str = "org.f2b.Manager1";
/// The jail interface.
pub const JAIL_IFACE: &str = "org.f2b.Jail1";
/// At most one `PropertiesChanged` per jail object per this interval.
pub const PROPERTIES_INTERVAL: Duration = Duration::from_secs(1);

/// Which bus to use (`--bus system|session|ADDRESS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusSpec {
    System,
    Session,
    /// A D-Bus address such as `unix:path=/run/x/bus`.
    Address(String),
}

impl BusSpec {
    /// `system`, `session`, or anything else as an address.
    pub fn parse(text: &str) -> BusSpec {
        match text {
            "system" => BusSpec::System,
            "session" | "user" => BusSpec::Session,
            a => BusSpec::Address(a.to_string()),
        }
    }

    fn builder(&self) -> zbus::connection::Builder<'_> {
        match self {
            BusSpec::System => zbus::connection::Builder::system(),
            BusSpec::Session => zbus::connection::Builder::session(),
            BusSpec::Address(a) => zbus::connection::Builder::address(a.as_str()),
        }
    }

    /// Connect to this bus.
    pub async fn connect(&self) -> zbus::Result<Connection> {
        self.builder().build().await
    }
}

impl std::str::FromStr for BusSpec {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(BusSpec::parse(s))
    }
}

impl fmt::Display for BusSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BusSpec::System => f.write_str("system bus"),
            BusSpec::Session => f.write_str("session bus"),
            BusSpec::Address(a) => write!(f, "bus {a}"),
        }
    }
}

/// Why the control plane could not start.
#[derive(Debug, thiserror::Error)]
pub enum DbusError {
    #[error("cannot connect to the {bus}: {source}")]
    Connect { bus: BusSpec, source: zbus::Error },
    #[error("{BUS_NAME} is already owned on the {bus}: is another f2bd running?")]
    NameTaken { bus: BusSpec },
    #[error(
        "not permitted to own {BUS_NAME} on the {bus} (run as root, and install dbus/org.f2b.conf \
         to /usr/share/dbus-1/system.d/): {message}"
    )]
    NotPermitted { bus: BusSpec, message: String },
    #[error("cannot ask the engine for its jails: {0}")]
    Engine(#[from] crate::engine::CommandError),
    #[error("D-Bus error on the {bus}: {source}")]
    Bus { bus: BusSpec, source: zbus::Error },
}

/// What the interfaces share: the engine handle and the authorizer.
pub(crate) struct Shared {
    pub(crate) engine: EngineHandle,
    auth: auth::Authorizer,
}

impl Shared {
    /// Authorize the caller of `hdr`; who it is, for the engine to log with what it does.
    async fn authorize(&self, conn: &Connection, hdr: &Header<'_>) -> error::Result<Origin> {
        let uid = self.auth.check(conn, Some(hdr), ACTION_MANAGE).await?;
        // The user database may be remote (NSS): off the async threads.
        let user = tokio::task::spawn_blocking(move || crate::system::user_name(uid))
            .await
            .unwrap_or(None);
        Ok(Origin::Manual { uid, user })
    }

    async fn jail_names(&self) -> error::Result<Vec<String>> {
        let jails = self.engine.call(Command::ListJails).await?;
        Ok(jails.into_iter().map(|j| j.name).collect())
    }

    async fn list_bans(
        &self,
        jail: Option<String>,
        offset: u32,
        limit: u32,
    ) -> error::Result<(Vec<BanRecord>, u32)> {
        let (offset, limit) = validate::page(offset, limit)?;
        let (bans, total) = self
            .engine
            .call(|reply| Command::ListBans {
                jail,
                offset,
                limit,
                reply,
            })
            .await??;
        let bans = bans.into_iter().take(limit).map(BanRecord::from).collect();
        Ok((bans, u32::try_from(total).unwrap_or(u32::MAX)))
    }

    async fn ban(
        &self,
        jail: String,
        addr: IpNet,
        duration: Option<Duration>,
        force: bool,
        origin: Origin,
    ) -> error::Result<u64> {
        Ok(self
            .engine
            .call(|reply| Command::Ban {
                jail,
                addr,
                duration,
                force,
                origin,
                reply,
            })
            .await??)
    }

    async fn unban(&self, jail: Option<String>, addr: IpNet, origin: Origin) -> error::Result<u32> {
        Ok(self
            .engine
            .call(|reply| Command::Unban {
                jail,
                addr,
                origin,
                reply,
            })
            .await??)
    }
}

/// The running control plane. Dropping it stops forwarding events and closes the connection
/// (the bus then releases `org.f2b`); [`DbusServer::shutdown`] does it in order.
pub struct DbusServer {
    conn: Connection,
    events: JoinHandle<()>,
}

impl DbusServer {
    /// The bus connection (e.g. for the unique name in logs).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Release the name (clients see f2bd go at once), stop forwarding events and close the
    /// connection. Calls still running get no reply.
    pub async fn shutdown(self) {
        let _ =
            tokio::time::timeout(Duration::from_secs(2), self.conn.release_name(BUS_NAME)).await;
        self.events.abort();
        let conn = self.conn.clone();
        drop(self);
        let _ = conn.close().await;
    }
}

impl Drop for DbusServer {
    fn drop(&mut self) {
        self.events.abort();
    }
}

/// Connect to `bus`, serve the manager and one object per jail, request `org.f2b`, and forward
/// engine events to signals until the returned server is dropped.
pub async fn serve(bus: BusSpec, engine: EngineHandle) -> Result<DbusServer, DbusError> {
    let conn = bus.connect().await.map_err(|source| DbusError::Connect {
        bus: bus.clone(),
        source,
    })?;
    let bus_err = |source| DbusError::Bus {
        bus: bus.clone(),
        source,
    };
    let shared = Arc::new(Shared {
        engine,
        auth: auth::Authorizer::new(),
    });
    // Subscribe before listing, so that no JailsChanged falls in between.
    let rx = shared.engine.subscribe();
    let jails = shared.engine.call(Command::ListJails).await?;
    let server = conn.object_server();
    server
        .at(
            MANAGER_PATH,
            manager::Manager {
                shared: shared.clone(),
            },
        )
        .await
        .map_err(bus_err)?;
    let mut names = Vec::new();
    for j in &jails {
        events::add_jail(&conn, &shared, &j.name)
            .await
            .map_err(bus_err)?;
        names.push(j.name.clone());
    }
    match conn
        .request_name_with_flags(BUS_NAME, RequestNameFlags::DO_NOT_QUEUE)
        .await
    {
        Ok(RequestNameReply::PrimaryOwner | RequestNameReply::AlreadyOwner) => {}
        Ok(_) | Err(zbus::Error::NameTaken) => return Err(DbusError::NameTaken { bus }),
        Err(e) => {
            return Err(match error::error_name(&e) {
                Some((name, message)) if name == "org.freedesktop.DBus.Error.AccessDenied" => {
                    DbusError::NotPermitted { bus, message }
                }
                _ => bus_err(e),
            })
        }
    }
    tracing::info!(bus = %bus, jails = names.len(), "serving {BUS_NAME}");
    let events = tokio::spawn(events::forward(conn.clone(), shared, rx, jails));
    Ok(DbusServer { conn, events })
}

//! The named D-Bus errors of `org.f2b`, shared by the server (replies) and the client (proxies
//! decode them back into this type).

use crate::engine::CommandError;

/// Error replies of the `org.f2b` service. Every variant carries a human message; the D-Bus
/// error name is `org.f2b.Error.<Variant>`.
#[derive(Debug, Clone, PartialEq, zbus::DBusError)]
#[zbus(prefix = "org.f2b.Error")]
pub enum Error {
    /// Not an `org.f2b` error: a transport or bus error (on the client side, e.g.
    /// `org.freedesktop.DBus.Error.ServiceUnknown`).
    #[zbus(error)]
    ZBus(zbus::Error),
    /// The jail named does not exist.
    NoSuchJail(String),
    /// The address or prefix could not be parsed or is not acceptable.
    InvalidAddress(String),
    /// The caller is neither root nor authorized by polkit for `org.f2b.manage`.
    NotAuthorized(String),
    /// A reload found an error in the configuration (the message names file:line); the running
    /// configuration stays.
    InvalidConfig(String),
    /// An argument is out of range (seconds, paging limit, tunable value).
    InvalidArgument(String),
    /// The firewall refused the change.
    Firewall(String),
    /// The daemon is stopping.
    ShuttingDown(String),
}

impl From<CommandError> for Error {
    fn from(e: CommandError) -> Self {
        let msg = e.to_string();
        match e {
            CommandError::NoSuchJail(_) => Error::NoSuchJail(msg),
            CommandError::InvalidAddress(_) => Error::InvalidAddress(msg),
            CommandError::InvalidConfig(_) => Error::InvalidConfig(msg),
            CommandError::InvalidArgument(_) => Error::InvalidArgument(msg),
            CommandError::Firewall(_) => Error::Firewall(msg),
            CommandError::ShuttingDown => Error::ShuttingDown(msg),
        }
    }
}

/// Result of the server's handlers.
pub type Result<T> = std::result::Result<T, Error>;

/// The D-Bus error name and message of a zbus error, when it is an error reply.
pub fn error_name(e: &zbus::Error) -> Option<(String, String)> {
    use zbus::DBusError;
    match e {
        zbus::Error::MethodError(name, desc, _) => {
            Some((name.to_string(), desc.clone().unwrap_or_default()))
        }
        zbus::Error::FDO(e) => Some((
            e.name().to_string(),
            e.description().unwrap_or_default().to_string(),
        )),
        zbus::Error::DBus(e) => Some((
            e.name().to_string(),
            e.description().unwrap_or_default().to_string(),
        )),
        _ => None,
    }
}

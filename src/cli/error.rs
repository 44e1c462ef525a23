//! What can go wrong in `f2b`, typed up to the edge ([`super::main`]), where it is printed
//! once and mapped to an exit status.

use std::error::Error as StdError;
use std::io;
use std::path::PathBuf;

use crate::config::ConfigError;
use crate::dbus::{self, BusSpec};
use crate::filter::FilterError;
use crate::firewall::FirewallError;
use crate::tester::TestError;

/// Success.
pub const EXIT_OK: u8 = 0;
/// The request failed or was refused (no such jail, firewall error, invalid configuration …).
pub const EXIT_FAILURE: u8 = 1;
/// The command line is wrong (unknown option, a value that does not parse); clap's status.
pub const EXIT_USAGE: u8 = 2;
/// f2bd is not running (nobody owns `org.f2b`) or the bus cannot be reached.
pub const EXIT_NOT_RUNNING: u8 = 3;
/// The caller may not do this (not root, and polkit did not grant `org.f2b.manage`).
pub const EXIT_DENIED: u8 = 4;

/// Errors of the `f2b` command. Each message is complete: print it with `{}` (see
/// [`error_text`] for errors from elsewhere).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("cannot connect to the {bus}: {error}")]
    Connect { bus: BusSpec, error: zbus::Error },
    #[error("f2bd is not running (nobody owns {} on the {bus})", dbus::BUS_NAME)]
    NotRunning { bus: BusSpec },
    /// The bus says f2bd went away or never answered (the bus's message).
    #[error("f2bd is not running ({0})")]
    Gone(String),
    #[error("permission denied: {0}, run as root or get {action} through polkit", action = dbus::ACTION_MANAGE)]
    Denied(String),
    /// f2bd refused or failed the request.
    #[error("{}", dbus_message(.0))]
    Refused(dbus::Error),
    #[error("reload failed, the running configuration stays: {}", dbus_message(.0))]
    Reload(dbus::Error),
    #[error("no such jail: {0}")]
    NoSuchJail(String),
    #[error("f2bd sent incomplete properties for jail {0}")]
    Incomplete(String),
    #[error("D-Bus error: {0}")]
    Bus(zbus::Error),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Filter(#[from] FilterError),
    #[error(transparent)]
    Test(#[from] TestError),
    #[error(transparent)]
    Import(#[from] crate::import::ImportError),
    #[error("unknown filter {0:?} (see `f2b filters`)")]
    UnknownFilter(String),
    #[error("filter {0} has no built-in samples")]
    NoSamples(String),
    #[error("{}: {error}", .path.display())]
    Read { path: PathBuf, error: io::Error },
    /// A sample file that does not parse (its message names file and line).
    #[error("{0}")]
    Samples(String),
    #[error("firewall: {0}")]
    Firewall(#[from] FirewallError),
    #[error("{}: cannot write the journal: {error}", .path.display())]
    Journal { path: PathBuf, error: io::Error },
    #[error("cannot start: {0}")]
    Runtime(io::Error),
    /// Writing to standard output failed (a closed pipe ends the command quietly).
    #[error("cannot write the output: {0}")]
    Output(#[from] io::Error),
    #[error("cannot encode JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The words of the command line do not fit together (exit status 2).
    #[error("{0}")]
    Usage(String),
}

/// The message of an `org.f2b.Error.*` reply (without its name), or the bus error's text.
fn dbus_message(e: &dbus::Error) -> String {
    match e {
        dbus::Error::ZBus(e) => match dbus::error::error_name(e) {
            Some((name, msg)) if msg.is_empty() => name,
            Some((_, msg)) => msg,
            None => e.to_string(),
        },
        dbus::Error::NoSuchJail(m)
        | dbus::Error::InvalidAddress(m)
        | dbus::Error::NotAuthorized(m)
        | dbus::Error::InvalidConfig(m)
        | dbus::Error::InvalidArgument(m)
        | dbus::Error::Firewall(m)
        | dbus::Error::ShuttingDown(m) => m.clone(),
    }
}

impl From<dbus::Error> for CliError {
    fn from(e: dbus::Error) -> Self {
        match e {
            dbus::Error::NotAuthorized(m) => CliError::Denied(m),
            dbus::Error::ZBus(e) => CliError::from(e),
            e => CliError::Refused(e),
        }
    }
}

impl From<zbus::Error> for CliError {
    fn from(e: zbus::Error) -> Self {
        match dbus::error::error_name(&e) {
            Some((name, msg)) => match name.as_str() {
                "org.freedesktop.DBus.Error.ServiceUnknown"
                | "org.freedesktop.DBus.Error.NameHasNoOwner"
                | "org.freedesktop.DBus.Error.NoReply" => CliError::Gone(msg),
                "org.freedesktop.DBus.Error.AccessDenied" | "org.f2b.Error.NotAuthorized" => {
                    CliError::Denied(msg)
                }
                _ => CliError::Refused(dbus::Error::ZBus(e)),
            },
            None => CliError::Bus(e),
        }
    }
}

impl From<zbus::fdo::Error> for CliError {
    fn from(e: zbus::fdo::Error) -> Self {
        CliError::from(zbus::Error::from(e))
    }
}

impl CliError {
    /// The exit status this error ends `f2b` with.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Connect { .. } | CliError::NotRunning { .. } | CliError::Gone(_) => {
                EXIT_NOT_RUNNING
            }
            CliError::Denied(_) => EXIT_DENIED,
            CliError::Usage(_) => EXIT_USAGE,
            _ => EXIT_FAILURE,
        }
    }

    /// Standard output was closed by its reader (`f2b … | head`): not worth a message.
    pub fn is_broken_pipe(&self) -> bool {
        match self {
            CliError::Output(e)
            | CliError::Test(TestError::Output(e))
            | CliError::Import(crate::import::ImportError::Output(e)) => {
                e.kind() == io::ErrorKind::BrokenPipe
            }
            _ => false,
        }
    }
}

/// An error and its causes on one line, each cause once: a cause whose text the message
/// already shows (many errors include their source in their own message) is not repeated.
pub fn error_text(e: &(dyn StdError + 'static)) -> String {
    let mut text = e.to_string();
    let mut cur = e.source();
    while let Some(cause) = cur {
        let c = cause.to_string();
        if !c.is_empty() && !text.contains(&c) {
            text.push_str(": ");
            text.push_str(&c);
        }
        cur = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{path}: {source}")]
    struct Twice {
        path: String,
        source: io::Error,
    }

    /// Issue 10.11: errors repeated their cause ("…(os error 2): …(os error 2)").
    #[test]
    fn errors_do_not_repeat_their_cause() {
        let e = Twice {
            path: "/x".into(),
            source: io::Error::from(io::ErrorKind::NotFound),
        };
        let t = error_text(&e);
        assert_eq!(t.matches("not found").count(), 1, "{t}");
        let wrapped = anyhow::Error::new(e).context("loading");
        let t = error_text(wrapped.as_ref());
        assert_eq!(t, "loading: /x: entity not found", "{t}");
    }

    #[test]
    fn errors_are_sorted() {
        let f: CliError = dbus::Error::NotAuthorized("uid 65534 is not authorized".into()).into();
        assert_eq!(f.exit_code(), EXIT_DENIED);
        let m = f.to_string();
        assert!(m.starts_with("permission denied: uid 65534"), "{m}");
        assert!(m.contains("org.f2b.manage"));
        let f: CliError = dbus::Error::NoSuchJail("no such jail: x".into()).into();
        assert_eq!(f.exit_code(), EXIT_FAILURE);
        assert_eq!(f.to_string(), "no such jail: x");
        let pipe = CliError::Output(io::Error::from(io::ErrorKind::BrokenPipe));
        assert!(pipe.is_broken_pipe());
        assert!(!CliError::Usage("x".into()).is_broken_pipe());
    }
}

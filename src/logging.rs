//! Logging: tracing to the journal (structured fields, no prefix) or to stderr.
//!
//! Every ban and unban is one INFO line (journal priority 5, notice) in a stable format,
//! documented in f2bd(8) and relied upon by the `recidive` filter:
//!
//! ```text
//! [sshd] Ban 203.0.113.9 for 10m after 5 failures
//! [sshd] Ban 2001:db8:1:2::/64 for ever after 5 failures
//! [sshd] Restore ban 203.0.113.9 for 7m12s
//! [sshd] Unban 203.0.113.9
//! ```
//!
//! with fields `F2B_JAIL`, `F2B_ADDRESS`, `F2B_EVENT` and a `MESSAGE_ID` per event kind, so
//! that `journalctl -u f2b F2B_JAIL=sshd` and `journalctl MESSAGE_ID=…` select them.

use tracing_subscriber::prelude::*;
use tracing_subscriber::{fmt, EnvFilter};

/// MESSAGE_ID of "address banned".
pub const MSGID_BAN: &str = "12e938cb05544b94bda7720f4670cf98";
/// MESSAGE_ID of "address unbanned".
pub const MSGID_UNBAN: &str = "f5a68bb82f4c421888c7747359f6857f";
/// MESSAGE_ID of "ban restored at start".
pub const MSGID_RESTORE: &str = "5c6f48001baf4730ac8896cf2ab49fc5";
/// MESSAGE_ID of "configuration reloaded".
pub const MSGID_RELOAD: &str = "86d8d0201583414d9d51f0d7fee81710";
/// MESSAGE_ID of "f2bd started".
pub const MSGID_START: &str = "948c45643f694d52884b5a17ef3a8eb1";
/// MESSAGE_ID of "f2bd stopping".
pub const MSGID_STOP: &str = "5a6d74e854374c5baa3fb672134215eb";

/// Where logs go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogTarget {
    /// The journal when its socket exists, else stderr.
    Auto,
    Journal,
    Stderr,
}

/// Install the global subscriber. `RUST_LOG` overrides `default_level`.
pub fn init(target: LogTarget, default_level: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let journald = match target {
        LogTarget::Stderr => None,
        LogTarget::Auto | LogTarget::Journal => tracing_journald::layer().ok().map(|l| {
            l.with_field_prefix(None)
                .with_syslog_identifier("f2bd".into())
        }),
    };
    match journald {
        Some(layer) => {
            let _ = tracing_subscriber::registry()
                .with(filter)
                .with(layer)
                .try_init();
        }
        None => {
            if target == LogTarget::Journal {
                eprintln!("f2bd: no journald socket; logging to stderr");
            }
            let _ = tracing_subscriber::registry()
                .with(filter)
                .with(fmt::layer().with_writer(std::io::stderr).with_target(false))
                .try_init();
        }
    }
}

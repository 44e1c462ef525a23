//! The fleet: bans shared between f2b hosts through a message stream (issue 17).
//!
//! - [`Decision`]: what travels — a ban or an unban of one jail, the address or prefix, its
//!   absolute end, the ban count, the deciding host and the time.
//! - [`Bus`] / [`Feed`]: the small interface a sharing engine provides (publish one decision;
//!   read every decision after a stream sequence). [`nats`] implements it with NATS JetStream.
//! - [`publish`]: the outbox sink named `fleet` ([`crate::engine::FLEET_SINK`]): the engine
//!   writes a notice for every ban and unban of the shared jails once the firewall enforced it;
//!   the sink publishes it (and it waits in the outbox while the bus is down).
//! - [`consume`]: one task reads the feed from the sequence stored with the bans
//!   ([`position`]), applies the local limits ([`policy`]) and hands the peers' decisions to the
//!   engine ([`crate::engine::api::Command::Peer`]), which applies what the local rules allow
//!   and stores the sequence in the same transaction.
//! - [`status`]: connection, lag, peers and last decisions, for `f2b fleet`, the metrics and
//!   systemd's STATUS.

pub mod consume;
pub mod metrics;
pub mod nats;
pub mod policy;
pub mod publish;
mod setup;
pub mod status;

use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};

pub use setup::Fleet;
pub use status::{FleetSnapshot, PeerStats, Recent, Status};

/// The store position of the fleet stream `stream` (see [`crate::store::Commit::positions`]).
pub fn position(stream: &str) -> String {
    format!("fleet:{stream}")
}

/// Errors of the fleet subsystem.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FleetError {
    /// The bus cannot be reached now (retried).
    #[error("fleet: {0}")]
    Unavailable(String),
    /// Configuration that cannot work (a credentials file that cannot be read …).
    #[error("fleet: {0}")]
    Config(String),
}

/// A ban or an unban.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Event {
    Ban,
    Unban,
}

impl Event {
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Ban => "ban",
            Event::Unban => "unban",
        }
    }
}

/// One decision as it travels between hosts (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub event: Event,
    pub jail: String,
    /// The address or prefix (`192.0.2.7`, `2001:db8::/48`).
    pub net: String,
    /// When the ban ends, µs since the epoch; 0 = permanent (and for unbans).
    pub end_us: u64,
    /// The n-th ban of this address on the deciding host.
    pub count: u32,
    /// The deciding host.
    pub host: String,
    /// When it was decided, µs since the epoch.
    pub time_us: u64,
}

impl Decision {
    /// The stream subject: `f2b.HOST.JAIL.ban|unban`.
    pub fn subject(&self) -> String {
        format!("f2b.{}.{}.{}", self.host, self.jail, self.event.as_str())
    }

    /// A stable id of this decision, for the stream's de-duplication: the same decision
    /// published twice (a retry after a lost acknowledgement, a restart) is stored once.
    pub fn id(&self) -> String {
        format!(
            "{}:{}:{}:{}:{}",
            self.host,
            self.jail,
            self.event.as_str(),
            self.net,
            self.time_us
        )
    }

    /// The host token of a subject `f2b.HOST.…` (whoever published it: the server's
    /// permissions let a host publish only under its own name).
    pub fn subject_host(subject: &str) -> Option<&str> {
        let mut parts = subject.split('.');
        (parts.next() == Some("f2b")).then_some(())?;
        parts.next().filter(|h| !h.is_empty())
    }
}

/// One message read from the feed.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// Its stream sequence.
    pub seq: u64,
    /// When the stream stored it, µs since the epoch (the server's clock).
    pub published_us: u64,
    /// Messages after it in the stream (lag).
    pub pending: u64,
    pub subject: String,
    pub payload: Vec<u8>,
}

/// A boxed future, as the traits return them (they are used as `dyn`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a sharing engine provides.
pub trait Bus: Send + Sync + 'static {
    /// Publish one decision; `Ok` once the stream stored it.
    fn publish<'a>(&'a self, d: &'a Decision) -> BoxFuture<'a, Result<(), FleetError>>;
    /// Every message after stream sequence `after` (0 = from the start), then new ones.
    fn subscribe(&self, after: u64) -> BoxFuture<'_, Result<Box<dyn Feed>, FleetError>>;
    /// Wait until connected (at most `timeout`); whether it is.
    fn wait_connected(&self, timeout: std::time::Duration) -> BoxFuture<'_, bool>;
}

/// Messages from the stream, in order.
pub trait Feed: Send {
    /// The next messages (at least one; as many as are there at once, bounded); `None` when
    /// the feed ended (then subscribe again).
    fn next(&mut self) -> BoxFuture<'_, Option<Result<Vec<Incoming>, FleetError>>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_and_ids() {
        let d = Decision {
            event: Event::Ban,
            jail: "sshd".into(),
            net: "192.0.2.7".into(),
            end_us: 5,
            count: 1,
            host: "web1".into(),
            time_us: 42,
        };
        assert_eq!(d.subject(), "f2b.web1.sshd.ban");
        assert_eq!(d.id(), "web1:sshd:ban:192.0.2.7:42");
        assert_eq!(Decision::subject_host("f2b.web1.sshd.ban"), Some("web1"));
        assert_eq!(Decision::subject_host("x.web1.sshd.ban"), None);
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(serde_json::from_str::<Decision>(&json).unwrap(), d);
    }
}

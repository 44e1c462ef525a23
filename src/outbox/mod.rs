//! The outbox: messages about bans that must reach something outside f2b — actions (a
//! webhook, a command, a mail, AbuseIPDB; issue 16) and the fleet (issue 17) — without ever
//! slowing a ban down and without being lost across a restart.
//!
//! The engine writes each message into the state database in the same transaction as the
//! decision it is about, not yet ready; once the firewall enforced the ban it releases the
//! message and hands it to the [`Deliverer`] (see [`crate::store::OutboxRow`]). The deliverer
//! runs as its own task: one queue per sink, messages of a sink delivered in order, sinks
//! independent of each other, failed deliveries retried with a growing delay (2 s … 1 h) and
//! given up after [`MAX_ATTEMPTS`], each queue bounded ([`MAX_PENDING`]: beyond it the oldest
//! message is dropped). Every outcome is written back to the database (removed or deferred) and
//! counted per sink ([`SinkStats`]: sent, failed, dropped, pending) for the metrics and
//! `f2b status`.
//!
//! A sink is anything that implements [`Sink`]; the actions and the fleet provide theirs.

mod deliver;
mod notice;
mod template;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

pub use deliver::{Deliverer, OutboxHandle, MAX_BATCH};
pub use notice::{Notice, NoticeEvent};
pub use template::{Escape, Template};

/// Failed deliveries of one message before it is given up (and counted as failed).
pub const MAX_ATTEMPTS: u32 = 12;
/// Messages waiting per sink at most; beyond, the oldest is dropped (and counted).
pub const MAX_PENDING: usize = 10_000;

/// Why a delivery failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DeliveryError {
    /// Worth trying again later (a timeout, a 5xx, a refused connection).
    #[error("{0}")]
    Transient(String),
    /// Will not work however often it is tried (a 4xx, a bad template): given up at once.
    #[error("{0}")]
    Permanent(String),
    /// Worth trying again, not before this delay (HTTP 429 with Retry-After).
    #[error("{0}")]
    Later(String, std::time::Duration),
}

/// A boxed future, as [`Sink::deliver`] returns it (the trait is used as `dyn Sink`).
pub type Delivery<'a> = Pin<Box<dyn Future<Output = Result<(), DeliveryError>> + Send + 'a>>;

/// Where messages go. Implementations must not block: do I/O asynchronously (or on
/// `spawn_blocking`) and bound every wait with a timeout.
pub trait Sink: Send + Sync + 'static {
    /// The sink's name (an action's name, or `fleet`): the `sink` of its outbox rows.
    fn name(&self) -> &str;
    /// Deliver one message.
    fn deliver<'a>(&'a self, notice: &'a Notice) -> Delivery<'a>;
    /// A sink that collects messages (a mail digest) says for how long: each message then
    /// waits that long after its creation (also across restarts: the time is stored), and
    /// every message due by then goes in one [`Sink::deliver_batch`].
    fn digest(&self) -> Option<std::time::Duration> {
        None
    }
    /// Deliver several messages at once (in order); by default one after the other.
    fn deliver_batch<'a>(&'a self, notices: &'a [Notice]) -> Delivery<'a> {
        Box::pin(async move {
            for n in notices {
                self.deliver(n).await?;
            }
            Ok(())
        })
    }
}

/// Counters of one sink.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SinkStats {
    pub sent: u64,
    /// Given up after [`MAX_ATTEMPTS`] or a permanent error.
    pub failed: u64,
    /// Dropped because the sink had [`MAX_PENDING`] messages waiting.
    pub dropped: u64,
    /// Waiting now.
    pub pending: u64,
    /// Failed attempts (each retry counts).
    pub retries: u64,
}

/// Every sink's counters, shared between the deliverer and whoever reports them.
#[derive(Debug, Clone, Default)]
pub struct Stats(Arc<Mutex<BTreeMap<String, SinkStats>>>);

impl Stats {
    pub fn snapshot(&self) -> BTreeMap<String, SinkStats> {
        self.0.lock().map(|m| m.clone()).unwrap_or_default()
    }

    fn update(&self, sink: &str, f: impl FnOnce(&mut SinkStats)) {
        if let Ok(mut m) = self.0.lock() {
            f(m.entry(sink.to_string()).or_default());
        }
    }
}

//! The consumer task: reads the feed from the sequence stored with the bans, judges each
//! message by the local limits ([`Policy`]) and hands the peers' decisions to the engine in
//! batches ([`Command::Peer`]), which stores the sequence in the same transaction as the bans
//! it applies. After a restart or a lost connection it goes on from what the engine
//! acknowledged: nothing is applied twice, nothing is skipped.

use std::sync::Arc;
use std::time::Duration;

use tracing::{debug, warn};

use super::policy::{reason, Judged, Policy};
use super::{Bus, Incoming, Recent, Status};
use crate::engine::api::{Command, PeerBatch, PeerOutcome};
use crate::engine::{host_text, EngineHandle};

/// Delay before subscribing again after the feed failed.
const RETRY: Duration = Duration::from_secs(1);

/// The consumer.
pub struct Consumer {
    pub bus: Arc<dyn Bus>,
    pub engine: EngineHandle,
    pub policy: Policy,
    pub status: Status,
    /// The store position key ([`super::position`]).
    pub position: String,
    /// The last sequence applied (from the store; 0 = none).
    pub applied: u64,
}

impl Consumer {
    /// Run until the engine goes away.
    pub async fn run(mut self) {
        self.status.applied_to(self.applied);
        loop {
            let mut feed = match self.bus.subscribe(self.applied).await {
                Ok(f) => f,
                Err(e) => {
                    debug!(error = %e, "fleet: cannot read the stream yet: {e}");
                    tokio::time::sleep(RETRY).await;
                    continue;
                }
            };
            // After a reconnection the feed is made again at once from what was applied (the
            // old consumer would notice only after missed heartbeats).
            let mut conn = self.status.watch_connected();
            conn.mark_unchanged();
            loop {
                let batch = tokio::select! {
                    b = feed.next() => b,
                    c = conn.changed() => {
                        if c.is_ok() && *conn.borrow_and_update() {
                            debug!("fleet: reconnected; reading the stream again");
                            break;
                        }
                        continue;
                    }
                };
                match batch {
                    Some(Ok(b)) => {
                        if !self.batch(b).await {
                            return;
                        }
                    }
                    Some(Err(e)) => {
                        warn!(error = %e, "fleet: reading the stream: {e}; reading again");
                        tokio::time::sleep(RETRY).await;
                        break;
                    }
                    None => {
                        tokio::time::sleep(RETRY).await;
                        break;
                    }
                }
            }
        }
    }

    /// One batch of messages; `false` when the engine is gone.
    async fn batch(&mut self, msgs: Vec<Incoming>) -> bool {
        // A re-created consumer may deliver what was already applied.
        let msgs: Vec<Incoming> = msgs.into_iter().filter(|m| m.seq > self.applied).collect();
        let Some(last) = msgs.last() else {
            return true;
        };
        let last_seq = last.seq;
        self.status.stream_at(last.seq + last.pending);
        let mut decisions = Vec::new();
        for m in &msgs {
            let status = &self.status;
            let judged = self.policy.judge(m, |host, limit| {
                warn!(
                    F2B_PEER = %host,
                    "fleet: peer {host} sent more than {limit} bans in a minute; the excess is \
                     refused (f2b_fleet_refused_total{{reason=\"rate\"}})"
                );
            });
            match judged {
                Judged::Own => {}
                Judged::Apply(d) => {
                    status.seen(&d.host, m.published_us);
                    decisions.push(d);
                }
                Judged::Refused(peer, why) => {
                    if why != reason::RATE {
                        debug!(seq = m.seq, "fleet: message {} refused: {why}", m.seq);
                    }
                    match peer {
                        Some(host) => {
                            status.seen(&host, m.published_us);
                            status.outcome(recent_of(m, &host, why), Err(why));
                        }
                        None => status.refused(why),
                    }
                }
            }
        }
        let batch = decisions.clone();
        let res = self
            .engine
            .call(|reply| {
                Command::Peer(PeerBatch {
                    position: self.position.clone(),
                    last_seq,
                    decisions: batch,
                    reply,
                })
            })
            .await;
        let Ok(outcomes) = res else {
            return false;
        };
        for (d, o) in decisions.iter().zip(outcomes) {
            let r = Recent {
                time_us: crate::clock::now_us(),
                host: d.host.clone(),
                event: d.event.as_str().into(),
                jail: d.jail.clone(),
                address: host_text(&d.net),
                outcome: o.to_string(),
            };
            let result = match o {
                PeerOutcome::Applied => Ok(true),
                PeerOutcome::Unchanged => Ok(false),
                PeerOutcome::Refused(why) => Err(why),
            };
            self.status.outcome(r, result);
        }
        self.applied = last_seq;
        self.status.applied_to(last_seq);
        true
    }
}

/// A refused message as `f2b fleet` lists it (what could be read of it).
fn recent_of(m: &Incoming, host: &str, why: &str) -> Recent {
    let d = serde_json::from_slice::<super::Decision>(&m.payload).ok();
    Recent {
        time_us: crate::clock::now_us(),
        host: host.to_string(),
        event: d.as_ref().map_or("?", |d| d.event.as_str()).into(),
        jail: d.as_ref().map(|d| d.jail.clone()).unwrap_or_default(),
        address: d.map(|d| d.net).unwrap_or_default(),
        outcome: format!("refused: {why}"),
    }
}

/// Start the consumer task.
pub fn spawn(c: Consumer) -> tokio::task::JoinHandle<()> {
    tokio::spawn(c.run())
}

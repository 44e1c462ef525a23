//! The deliverer: one task per sink, in-order delivery, retries, bounds, bookkeeping.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{error, info, warn};

use super::{DeliveryError, Notice, Sink, Stats, MAX_ATTEMPTS, MAX_PENDING};
use crate::clock::now_us;
use crate::store::{Commit, OutboxRow, StoreHandle};

/// Hands released messages to the deliverer. Cheap to clone.
#[derive(Clone)]
pub struct OutboxHandle {
    queues: Arc<BTreeMap<String, mpsc::UnboundedSender<OutboxRow>>>,
    stats: Stats,
    store: Option<StoreHandle>,
}

impl OutboxHandle {
    /// The sinks that take messages.
    pub fn sinks(&self) -> impl Iterator<Item = &str> {
        self.queues.keys().map(String::as_str)
    }

    /// Whether a sink of this name exists.
    pub fn has(&self, sink: &str) -> bool {
        self.queues.contains_key(sink)
    }

    /// Deliver these (released) messages. Messages for a sink that no longer exists are
    /// removed from the database and counted as dropped.
    pub fn deliver(&self, rows: Vec<OutboxRow>) {
        let mut orphans = Vec::new();
        for r in rows {
            match self.queues.get(&r.sink) {
                Some(q) => {
                    let sink = r.sink.clone();
                    self.stats.update(&sink, |s| s.pending += 1);
                    if q.send(r).is_err() {
                        self.stats.update(&sink, |s| s.pending -= 1);
                    }
                }
                None => orphans.push(r),
            }
        }
        if !orphans.is_empty() {
            for r in &orphans {
                self.stats.update(&r.sink, |s| s.dropped += 1);
            }
            warn!(
                messages = orphans.len(),
                "outbox: {} message(s) for sinks that no longer exist are dropped",
                orphans.len()
            );
            if let Some(store) = self.store.clone() {
                let ids = orphans.iter().map(|r| r.id).collect();
                tokio::spawn(async move {
                    let c = Commit {
                        outbox_removed: ids,
                        ..Default::default()
                    };
                    let _ = store.commit(c).await;
                });
            }
        }
    }

    /// The sinks' counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
}

/// Starts the per-sink tasks.
pub struct Deliverer;

impl Deliverer {
    /// One task per sink, inside the current tokio runtime. `store` records outcomes.
    pub fn spawn(sinks: Vec<Arc<dyn Sink>>, store: Option<StoreHandle>) -> OutboxHandle {
        let stats = Stats::default();
        let mut queues = BTreeMap::new();
        for sink in sinks {
            let (tx, rx) = mpsc::unbounded_channel();
            let name = sink.name().to_string();
            stats.update(&name, |_| {});
            tokio::spawn(run(sink, rx, store.clone(), stats.clone()));
            queues.insert(name, tx);
        }
        OutboxHandle {
            queues: Arc::new(queues),
            stats,
            store,
        }
    }
}

/// Delay before retry `attempt` (1-based): 2 s doubling, at most an hour.
fn backoff(attempt: u32) -> Duration {
    Duration::from_secs((2u64 << attempt.saturating_sub(1).min(11)).min(3600))
}

async fn run(
    sink: Arc<dyn Sink>,
    mut rx: mpsc::UnboundedReceiver<OutboxRow>,
    store: Option<StoreHandle>,
    stats: Stats,
) {
    let name = sink.name().to_string();
    // Each message with when it is due (the row's next_us, on tokio's clock).
    let mut queue: VecDeque<(OutboxRow, Instant)> = VecDeque::new();
    let due =
        |r: &OutboxRow| Instant::now() + Duration::from_micros(r.next_us.saturating_sub(now_us()));
    let record = |c: Commit| {
        let store = store.clone();
        async move {
            if let Some(s) = store {
                if let Err(e) = s.commit(c).await {
                    warn!(error = %e, "outbox: state store: {e}");
                }
            }
        }
    };
    loop {
        // Take what arrived; bound the queue (oldest dropped first).
        while let Ok(r) = rx.try_recv() {
            let d = due(&r);
            queue.push_back((r, d));
        }
        if queue.len() > MAX_PENDING {
            let n = queue.len() - MAX_PENDING;
            let dropped: Vec<u64> = queue.drain(..n).map(|(r, _)| r.id).collect();
            stats.update(&name, |s| {
                s.dropped += n as u64;
                s.pending = s.pending.saturating_sub(n as u64);
            });
            warn!(F2B_ACTION = %name, dropped = n, "outbox: {name}: {n} message(s) dropped: more than {MAX_PENDING} waiting");
            record(Commit {
                outbox_removed: dropped,
                ..Default::default()
            })
            .await;
        }
        let Some(&(_, at)) = queue.front() else {
            match rx.recv().await {
                Some(r) => {
                    let d = due(&r);
                    queue.push_back((r, d));
                    continue;
                }
                None => return,
            }
        };
        if at > Instant::now() {
            tokio::select! {
                _ = tokio::time::sleep_until(at) => {}
                r = rx.recv() => {
                    match r {
                        Some(r) => {
                            let d = due(&r);
                            queue.push_back((r, d));
                        }
                        None => return,
                    }
                    continue;
                }
            }
        }
        let (mut row, _) = queue.pop_front().expect("head");
        let outcome = match serde_json::from_str::<Notice>(&row.payload) {
            Ok(n) => sink.deliver(&n).await,
            Err(e) => Err(DeliveryError::Permanent(format!(
                "message {} is not a notice: {e}",
                row.id
            ))),
        };
        match outcome {
            Ok(()) => {
                stats.update(&name, |s| {
                    s.sent += 1;
                    s.pending = s.pending.saturating_sub(1);
                });
                record(Commit {
                    outbox_removed: vec![row.id],
                    ..Default::default()
                })
                .await;
            }
            Err(DeliveryError::Transient(why)) if row.attempts + 1 < MAX_ATTEMPTS => {
                row.attempts += 1;
                let delay = backoff(row.attempts);
                row.next_us = now_us() + crate::clock::usecs(delay);
                stats.update(&name, |s| s.retries += 1);
                warn!(
                    F2B_ACTION = %name, error = %why, attempt = row.attempts,
                    "action {name}: delivery failed ({why}); retrying in {:?}",
                    backoff(row.attempts)
                );
                record(Commit {
                    outbox_deferred: vec![(row.id, row.attempts, row.next_us)],
                    ..Default::default()
                })
                .await;
                queue.push_front((row, Instant::now() + delay));
            }
            Err(e) => {
                stats.update(&name, |s| {
                    s.failed += 1;
                    s.pending = s.pending.saturating_sub(1);
                });
                error!(
                    F2B_ACTION = %name, error = %e,
                    "action {name}: message given up after {} attempt(s): {e}",
                    row.attempts + 1
                );
                record(Commit {
                    outbox_removed: vec![row.id],
                    ..Default::default()
                })
                .await;
            }
        }
        if queue.is_empty() && rx.is_closed() {
            info!(F2B_ACTION = %name, "outbox: {name} stopped");
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::{Delivery, NoticeEvent};
    use std::sync::atomic::{AtomicU32, Ordering};

    struct Flaky {
        fail_first: u32,
        calls: AtomicU32,
        seen: std::sync::Mutex<Vec<String>>,
    }

    impl Sink for Flaky {
        fn name(&self) -> &str {
            "flaky"
        }
        fn deliver<'a>(&'a self, n: &'a Notice) -> Delivery<'a> {
            Box::pin(async move {
                let c = self.calls.fetch_add(1, Ordering::SeqCst);
                if c < self.fail_first {
                    return Err(DeliveryError::Transient("down".into()));
                }
                self.seen.lock().unwrap().push(n.address.clone());
                Ok(())
            })
        }
    }

    fn row(id: u64, addr: &str) -> OutboxRow {
        let n = Notice {
            event: NoticeEvent::Ban,
            jail: "sshd".into(),
            address: addr.into(),
            prefix: false,
            failures: 1,
            bantime: 60,
            bancount: 1,
            end_us: 0,
            host: "h".into(),
            time_us: 0,
            origin: "local".into(),
            lines: vec![],
        };
        OutboxRow {
            id,
            sink: "flaky".into(),
            created_us: 0,
            ready: true,
            attempts: 0,
            next_us: 0,
            payload: serde_json::to_string(&n).unwrap(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retries_keep_the_order_and_count() {
        let sink = Arc::new(Flaky {
            fail_first: 2,
            calls: AtomicU32::new(0),
            seen: Default::default(),
        });
        let h = Deliverer::spawn(vec![sink.clone()], None);
        h.deliver(vec![row(1, "192.0.2.1"), row(2, "192.0.2.2")]);
        // The paused clock advances through the retry delays.
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_secs(10)).await;
            if sink.seen.lock().unwrap().len() == 2 {
                break;
            }
        }
        assert_eq!(*sink.seen.lock().unwrap(), ["192.0.2.1", "192.0.2.2"]);
        let st = h.stats().snapshot()["flaky"];
        assert_eq!((st.sent, st.retries, st.pending, st.failed), (2, 2, 0, 0));
    }

    #[test]
    fn backoff_grows_to_an_hour() {
        assert_eq!(backoff(1), Duration::from_secs(2));
        assert_eq!(backoff(2), Duration::from_secs(4));
        assert_eq!(backoff(20), Duration::from_secs(3600));
    }
}

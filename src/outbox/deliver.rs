//! The deliverer: one task per sink, in-order delivery, retries, bounds, bookkeeping; sinks
//! replaced at run time (a reload) hand their waiting messages to their successor.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{error, info, warn};

use super::{DeliveryError, Notice, Sink, Stats, MAX_ATTEMPTS, MAX_PENDING};
use crate::clock::now_us;
use crate::store::{Commit, OutboxRow, StoreHandle};

/// Messages handed to a batch sink ([`Sink::digest`]) at once, at most.
pub const MAX_BATCH: usize = 500;

/// One sink's task: where its messages go, how to stop it, and what it leaves when stopped.
struct Queue {
    tx: mpsc::UnboundedSender<OutboxRow>,
    stop: watch::Sender<bool>,
    task: JoinHandle<Vec<OutboxRow>>,
}

/// Hands released messages to the deliverer. Cheap to clone; clones share the sinks.
#[derive(Clone)]
pub struct OutboxHandle {
    queues: Arc<Mutex<BTreeMap<String, Queue>>>,
    stats: Stats,
    store: Option<StoreHandle>,
}

impl OutboxHandle {
    /// The sinks that take messages.
    pub fn sinks(&self) -> Vec<String> {
        self.queues
            .lock()
            .map(|q| q.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Whether a sink of this name exists.
    pub fn has(&self, sink: &str) -> bool {
        self.queues.lock().is_ok_and(|q| q.contains_key(sink))
    }

    /// Deliver these (released) messages. Messages for a sink that no longer exists are
    /// removed from the database and counted as dropped.
    pub fn deliver(&self, rows: Vec<OutboxRow>) {
        let mut orphans = Vec::new();
        if let Ok(queues) = self.queues.lock() {
            for r in rows {
                match queues.get(&r.sink) {
                    Some(q) => {
                        let sink = r.sink.clone();
                        self.stats.update(&sink, |s| s.pending += 1);
                        if q.tx.send(r).is_err() {
                            self.stats.update(&sink, |s| s.pending -= 1);
                        }
                    }
                    None => orphans.push(r),
                }
            }
        }
        if !orphans.is_empty() {
            warn!(
                messages = orphans.len(),
                "outbox: {} message(s) for sinks that no longer exist are dropped",
                orphans.len()
            );
            self.drop_rows(orphans, false);
        }
    }

    /// Count `rows` as dropped and remove them from the database.
    fn drop_rows(&self, rows: Vec<OutboxRow>, were_pending: bool) {
        for r in &rows {
            self.stats.update(&r.sink, |s| {
                s.dropped += 1;
                if were_pending {
                    s.pending = s.pending.saturating_sub(1);
                }
            });
        }
        if let Some(store) = self.store.clone() {
            let ids = rows.iter().map(|r| r.id).collect();
            tokio::spawn(async move {
                let c = Commit {
                    outbox_removed: ids,
                    ..Default::default()
                };
                let _ = store.commit(c).await;
            });
        }
    }

    /// Switch sinks at run time: each of `sinks` starts (or replaces the sink of its name,
    /// taking over its waiting messages, in order, once the old one finished the delivery it
    /// is in); the sinks named in `remove` stop, and their waiting messages are dropped
    /// (counted). Sinks named in neither go on untouched.
    pub fn replace(&self, sinks: Vec<Arc<dyn Sink>>, remove: &[String]) {
        let Ok(mut queues) = self.queues.lock() else {
            return;
        };
        for name in remove {
            let Some(old) = queues.remove(name) else {
                continue;
            };
            let _ = old.stop.send(true);
            let me = self.clone();
            let name = name.clone();
            tokio::spawn(async move {
                let rows = old.task.await.unwrap_or_default();
                if !rows.is_empty() {
                    warn!(F2B_ACTION = %name, dropped = rows.len(),
                          "outbox: {name} was removed; {} waiting message(s) dropped", rows.len());
                }
                me.drop_rows(rows, true);
            });
        }
        for sink in sinks {
            let name = sink.name().to_string();
            let inherit = queues.remove(&name).map(|old| {
                let _ = old.stop.send(true);
                let (tx, rx) = oneshot::channel();
                tokio::spawn(async move {
                    let _ = tx.send(old.task.await.unwrap_or_default());
                });
                rx
            });
            let q = self.start(sink, inherit);
            queues.insert(name, q);
        }
    }

    fn start(
        &self,
        sink: Arc<dyn Sink>,
        inherit: Option<oneshot::Receiver<Vec<OutboxRow>>>,
    ) -> Queue {
        let (tx, rx) = mpsc::unbounded_channel();
        let (stop, stop_rx) = watch::channel(false);
        self.stats.update(sink.name(), |_| {});
        let t = SinkTask {
            name: sink.name().to_string(),
            sink,
            rx,
            stop: stop_rx,
            store: self.store.clone(),
            stats: self.stats.clone(),
            queue: VecDeque::new(),
        };
        let task = tokio::spawn(t.run(inherit));
        Queue { tx, stop, task }
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
        let h = OutboxHandle {
            queues: Arc::default(),
            stats: Stats::default(),
            store,
        };
        h.replace(sinks, &[]);
        h
    }
}

/// Delay before retry `attempt` (1-based): 2 s doubling, at most an hour.
fn backoff(attempt: u32) -> Duration {
    Duration::from_secs((2u64 << attempt.saturating_sub(1).min(11)).min(3600))
}

/// One sink's delivery loop and its waiting messages (oldest first).
struct SinkTask {
    name: String,
    sink: Arc<dyn Sink>,
    rx: mpsc::UnboundedReceiver<OutboxRow>,
    stop: watch::Receiver<bool>,
    store: Option<StoreHandle>,
    stats: Stats,
    queue: VecDeque<OutboxRow>,
}

/// What woke a waiting sink task.
enum Wake {
    Due,
    Arrived,
    /// Stopped (replaced, or every handle gone).
    Stop,
}

impl SinkTask {
    /// When the head of the queue is due, on tokio's clock: its retry time, and for a batch
    /// sink not before its digest period (from the message's creation) has passed.
    fn due(&self) -> Option<Instant> {
        let r = self.queue.front()?;
        let mut at = r.next_us;
        if let Some(d) = self.sink.digest() {
            at = at.max(r.created_us.saturating_add(crate::clock::usecs(d)));
        }
        Some(Instant::now() + Duration::from_micros(at.saturating_sub(now_us())))
    }

    async fn record(&self, c: Commit) {
        if let Some(s) = &self.store {
            if let Err(e) = s.commit(c).await {
                warn!(error = %e, "outbox: state store: {e}");
            }
        }
    }

    fn take_arrived(&mut self) {
        while let Ok(r) = self.rx.try_recv() {
            self.queue.push_back(r);
        }
    }

    /// Keep at most [`MAX_PENDING`] messages: the oldest go (counted).
    async fn bound(&mut self) {
        if self.queue.len() <= MAX_PENDING {
            return;
        }
        let n = self.queue.len() - MAX_PENDING;
        let dropped: Vec<u64> = self.queue.drain(..n).map(|r| r.id).collect();
        self.stats.update(&self.name, |s| {
            s.dropped += n as u64;
            s.pending = s.pending.saturating_sub(n as u64);
        });
        let name = &self.name;
        warn!(F2B_ACTION = %name, dropped = n, "outbox: {name}: {n} message(s) dropped: more than {MAX_PENDING} waiting");
        self.record(Commit {
            outbox_removed: dropped,
            ..Default::default()
        })
        .await;
    }

    async fn wait(&mut self) -> Wake {
        if *self.stop.borrow() {
            return Wake::Stop;
        }
        let due = self.due();
        if due.is_some_and(|at| at <= Instant::now()) {
            return Wake::Due;
        }
        let sleep = async {
            match due {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = sleep => Wake::Due,
            r = self.rx.recv() => match r {
                Some(r) => { self.queue.push_back(r); Wake::Arrived }
                None => Wake::Stop,
            },
            _ = self.stop.changed() => Wake::Stop,
        }
    }

    /// Deliver until stopped; returns the messages not delivered.
    async fn run(mut self, inherit: Option<oneshot::Receiver<Vec<OutboxRow>>>) -> Vec<OutboxRow> {
        if let Some(rx) = inherit {
            let mut rows: VecDeque<OutboxRow> = rx.await.unwrap_or_default().into();
            rows.append(&mut self.queue);
            self.queue = rows;
        }
        loop {
            self.take_arrived();
            self.bound().await;
            match self.wait().await {
                Wake::Due => self.deliver_head().await,
                Wake::Arrived => {}
                Wake::Stop => {
                    self.take_arrived();
                    let name = &self.name;
                    info!(F2B_ACTION = %name, waiting = self.queue.len(), "outbox: {name} stopped");
                    return self.queue.into();
                }
            }
        }
    }

    /// Deliver the head of the queue (for a batch sink: every due message, up to
    /// [`MAX_BATCH`]) and book the outcome.
    async fn deliver_head(&mut self) {
        let now = now_us();
        let n = if self.sink.digest().is_some() {
            (self.queue.iter().take(MAX_BATCH))
                .take_while(|r| r.next_us <= now)
                .count()
                .max(1)
        } else {
            1
        };
        let mut rows: Vec<OutboxRow> = self.queue.drain(..n).collect();
        let mut notices = Vec::with_capacity(n);
        let mut bad = Vec::new();
        for r in &rows {
            match serde_json::from_str::<Notice>(&r.payload) {
                Ok(notice) => notices.push(notice),
                Err(e) => bad.push((r.id, e.to_string())),
            }
        }
        let outcome = if !bad.is_empty() {
            Err(DeliveryError::Permanent(format!(
                "message {} is not a notice: {}",
                bad[0].0, bad[0].1
            )))
        } else if self.sink.digest().is_some() {
            self.sink.deliver_batch(&notices).await
        } else {
            self.sink.deliver(&notices[0]).await
        };
        let name = self.name.clone();
        let ids: Vec<u64> = rows.iter().map(|r| r.id).collect();
        let attempts = rows[0].attempts;
        let count = rows.len() as u64;
        let (why, min_delay) = match outcome {
            Ok(()) => {
                self.stats.update(&name, |s| {
                    s.sent += count;
                    s.pending = s.pending.saturating_sub(count);
                });
                self.record(Commit {
                    outbox_removed: ids,
                    ..Default::default()
                })
                .await;
                return;
            }
            Err(DeliveryError::Transient(why)) => (why, Duration::ZERO),
            Err(DeliveryError::Later(why, after)) => (why, after),
            Err(e @ DeliveryError::Permanent(_)) => {
                self.give_up(ids, attempts, &e.to_string()).await;
                return;
            }
        };
        if attempts + 1 >= MAX_ATTEMPTS {
            self.give_up(ids, attempts, &why).await;
            return;
        }
        let delay = backoff(attempts + 1).max(min_delay);
        let next_us = now_us() + crate::clock::usecs(delay);
        for r in &mut rows {
            r.attempts = attempts + 1;
            r.next_us = next_us;
        }
        self.stats.update(&name, |s| s.retries += 1);
        warn!(
            F2B_ACTION = %name, error = %why, attempt = attempts + 1, messages = count,
            "action {name}: delivery failed ({why}); retrying in {delay:?}"
        );
        self.record(Commit {
            outbox_deferred: rows.iter().map(|r| (r.id, r.attempts, r.next_us)).collect(),
            ..Default::default()
        })
        .await;
        for r in rows.into_iter().rev() {
            self.queue.push_front(r);
        }
    }

    async fn give_up(&mut self, ids: Vec<u64>, attempts: u32, why: &str) {
        let name = &self.name;
        let n = ids.len() as u64;
        self.stats.update(name, |s| {
            s.failed += n;
            s.pending = s.pending.saturating_sub(n);
        });
        error!(
            F2B_ACTION = %name, error = %why, messages = n,
            "action {name}: {n} message(s) given up after {} attempt(s): {why}",
            attempts + 1
        );
        self.record(Commit {
            outbox_removed: ids,
            ..Default::default()
        })
        .await;
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

    /// Records what it gets, batch by batch; fails (transiently) while `down`.
    struct Record {
        down: bool,
        digest: Option<Duration>,
        batches: std::sync::Mutex<Vec<Vec<String>>>,
    }

    impl Record {
        fn new(down: bool, digest: Option<Duration>) -> Arc<Record> {
            Arc::new(Record {
                down,
                digest,
                batches: Default::default(),
            })
        }
        fn got(&self) -> Vec<Vec<String>> {
            self.batches.lock().unwrap().clone()
        }
    }

    impl Sink for Record {
        fn name(&self) -> &str {
            "flaky"
        }
        fn deliver<'a>(&'a self, n: &'a Notice) -> Delivery<'a> {
            self.deliver_batch(std::slice::from_ref(n))
        }
        fn digest(&self) -> Option<Duration> {
            self.digest
        }
        fn deliver_batch<'a>(&'a self, ns: &'a [Notice]) -> Delivery<'a> {
            Box::pin(async move {
                if self.down {
                    return Err(DeliveryError::Transient("down".into()));
                }
                let b = ns.iter().map(|n| n.address.clone()).collect();
                self.batches.lock().unwrap().push(b);
                Ok(())
            })
        }
    }

    async fn until(f: impl Fn() -> bool) {
        for _ in 0..1000 {
            if f() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_digest_sink_gets_the_period_in_one_batch() {
        let sink = Record::new(false, Some(Duration::from_secs(60)));
        let h = Deliverer::spawn(vec![sink.clone()], None);
        let now = now_us();
        let rows: Vec<OutboxRow> = (1..=5)
            .map(|i| OutboxRow {
                created_us: now,
                ..row(i, &format!("192.0.2.{i}"))
            })
            .collect();
        h.deliver(rows);
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert!(sink.got().is_empty(), "sent before the period ended");
        until(|| !sink.got().is_empty()).await;
        assert_eq!(sink.got().len(), 1);
        assert_eq!(sink.got()[0].len(), 5);
        assert_eq!(h.stats().snapshot()["flaky"].sent, 5);
    }

    #[tokio::test(start_paused = true)]
    async fn a_replaced_sink_hands_its_waiting_messages_over_in_order() {
        let old = Record::new(true, None);
        let h = Deliverer::spawn(vec![old.clone()], None);
        h.deliver(vec![row(1, "192.0.2.1"), row(2, "192.0.2.2")]);
        until(|| h.stats().snapshot()["flaky"].retries > 0).await;
        let new = Record::new(false, None);
        h.replace(vec![new.clone()], &[]);
        h.deliver(vec![row(3, "192.0.2.3")]);
        until(|| new.got().len() == 3).await;
        assert_eq!(new.got().concat(), ["192.0.2.1", "192.0.2.2", "192.0.2.3"]);
        let st = h.stats().snapshot()["flaky"];
        assert_eq!((st.sent, st.pending, st.dropped), (3, 0, 0));
        // A removed sink's waiting messages are dropped and counted.
        let down = Record::new(true, None);
        h.replace(vec![down], &[]);
        h.deliver(vec![row(4, "192.0.2.4")]);
        h.replace(vec![], &["flaky".to_string()]);
        until(|| h.stats().snapshot()["flaky"].dropped == 1).await;
        assert!(!h.has("flaky"));
        assert_eq!(h.stats().snapshot()["flaky"].pending, 0);
    }

    #[test]
    fn backoff_grows_to_an_hour() {
        assert_eq!(backoff(1), Duration::from_secs(2));
        assert_eq!(backoff(2), Duration::from_secs(4));
        assert_eq!(backoff(20), Duration::from_secs(3600));
    }
}

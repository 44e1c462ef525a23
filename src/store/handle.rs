//! [`StoreHandle`]: the [`Store`] on a thread of its own, with group commit.
//!
//! SQLite calls block (and a commit with [`Durability::Full`] waits for an fsync), so they stay
//! off the tokio workers: requests go over a channel to the `f2b-store` thread, replies come
//! back on oneshot channels. Commits that queue up while a transaction is running are written
//! together in the next one (group commit): applied in the order they were sent, so a later
//! cursor wins and an add and a remove of the same ban resolve in order; every caller's future
//! completes when that transaction is committed. If a grouped transaction fails, its commits
//! are retried one by one so that each caller gets its own result.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{SystemTime, UNIX_EPOCH};

use ipnet::IpNet;
use tokio::sync::oneshot;

use super::{Commit, Durability, HistoryEntry, PurgeStats, Recovered, Snapshot, Store, StoreError};

/// At most this many commits per transaction.
const MAX_GROUP: usize = 1024;

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

struct Pending {
    commit: Commit,
    durability: Durability,
    reply: Reply<()>,
}

enum Request {
    Commit(Box<Pending>),
    Purge {
        history_older_than_us: u64,
        now_us: u64,
        reply: Reply<PurgeStats>,
    },
    History(IpNet, Reply<Vec<HistoryEntry>>),
    Load(u64, Reply<Snapshot>),
    Recover(StoreError, Reply<Recovered>),
    Close(Reply<()>),
}

#[derive(Default)]
struct Counters {
    commits: AtomicU64,
    transactions: AtomicU64,
}

/// Counters of a [`StoreHandle`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HandleStats {
    /// Commits written.
    pub commits: u64,
    /// Write transactions (commits grouped, plus purges).
    pub transactions: u64,
}

/// Cloneable handle to the store thread. Dropping every handle closes the database.
#[derive(Clone)]
pub struct StoreHandle {
    tx: mpsc::Sender<Request>,
    path: Arc<Path>,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for StoreHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreHandle")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Now, µs since the epoch.
fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

impl StoreHandle {
    /// Open the store in `state_dir`, load it (bans active now), and start the thread.
    /// Blocking (opening, migrating and loading): call it at start of day, before serving.
    pub fn spawn(state_dir: &Path) -> Result<(StoreHandle, Snapshot), StoreError> {
        StoreHandle::spawn_with(state_dir, Durability::Normal, now_us())
    }

    /// [`StoreHandle::spawn`] with the store's durability and the load time.
    pub fn spawn_with(
        state_dir: &Path,
        durability: Durability,
        now_us: u64,
    ) -> Result<(StoreHandle, Snapshot), StoreError> {
        let store = Store::open_with(state_dir, durability)?;
        let snapshot = store.load(now_us)?;
        Ok((StoreHandle::start(store)?, snapshot))
    }

    /// [`StoreHandle::spawn`], recovering from a damaged database: as
    /// [`Store::open_or_recover`], and also when the load finds damage (a malformed page, a
    /// row f2b cannot have written). `Some(Recovered)` = the state is empty and the damaged
    /// file was moved aside: log it loudly (its `Display` is the message).
    pub fn spawn_or_recover(
        state_dir: &Path,
    ) -> Result<(StoreHandle, Snapshot, Option<Recovered>), StoreError> {
        StoreHandle::spawn_or_recover_with(state_dir, Durability::Normal, now_us())
    }

    /// [`StoreHandle::spawn_or_recover`] with the store's durability and the load time.
    pub fn spawn_or_recover_with(
        state_dir: &Path,
        durability: Durability,
        now_us: u64,
    ) -> Result<(StoreHandle, Snapshot, Option<Recovered>), StoreError> {
        let (mut store, mut recovered) = Store::open_or_recover(state_dir)?;
        if durability != Durability::Normal {
            // Reopen with the durability asked for (open_or_recover opens with Normal).
            drop(store);
            store = Store::open_with(state_dir, durability)?;
        }
        let snapshot = match store.load(now_us) {
            Ok(s) => s,
            Err(cause) if cause.is_damage() && recovered.is_none() => {
                recovered = Some(store.recover(cause)?);
                store.load(now_us)?
            }
            Err(e) => return Err(e),
        };
        Ok((StoreHandle::start(store)?, snapshot, recovered))
    }

    /// Run an open store on its own thread.
    pub fn start(store: Store) -> Result<StoreHandle, StoreError> {
        let path: Arc<Path> = store.path().into();
        let counters = Arc::new(Counters::default());
        let (tx, rx) = mpsc::channel();
        let c = counters.clone();
        thread::Builder::new()
            .name("f2b-store".into())
            .spawn(move || run(store, rx, &c))
            .map_err(|source| StoreError::Spawn {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(StoreHandle { tx, path, counters })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Commits and transactions so far.
    pub fn stats(&self) -> HandleStats {
        HandleStats {
            commits: self.counters.commits.load(Ordering::Relaxed),
            transactions: self.counters.transactions.load(Ordering::Relaxed),
        }
    }

    fn gone(&self) -> StoreError {
        StoreError::WorkerGone {
            path: PathBuf::from(&*self.path),
        }
    }

    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Request) -> Result<T, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(make(tx)).map_err(|_| self.gone())?;
        rx.await.map_err(|_| self.gone())?
    }

    /// Write `c` (grouped with other queued commits into one transaction); resolves once it
    /// is committed. Dropping the future does not withdraw the commit.
    pub async fn commit(&self, c: Commit) -> Result<(), StoreError> {
        self.call(|reply| {
            Request::Commit(Box::new(Pending {
                commit: c,
                durability: Durability::Normal,
                reply,
            }))
        })
        .await
    }

    /// [`StoreHandle::commit`], resolving only once the transaction is fsync'd
    /// (`synchronous=FULL`): for what a journal replay cannot re-derive (manual bans/unbans).
    pub async fn commit_durable(&self, c: Commit) -> Result<(), StoreError> {
        self.call(|reply| {
            Request::Commit(Box::new(Pending {
                commit: c,
                durability: Durability::Full,
                reply,
            }))
        })
        .await
    }

    /// [`Store::purge`].
    pub async fn purge(
        &self,
        history_older_than_us: u64,
        now_us: u64,
    ) -> Result<PurgeStats, StoreError> {
        self.call(|reply| Request::Purge {
            history_older_than_us,
            now_us,
            reply,
        })
        .await
    }

    /// [`Store::history_of`].
    pub async fn history_of(&self, net: IpNet) -> Result<Vec<(String, u64)>, StoreError> {
        let v = self.history_detail(net).await?;
        Ok(v.into_iter().map(|h| (h.jail, h.t_us)).collect())
    }

    /// [`Store::history_detail`].
    pub async fn history_detail(&self, net: IpNet) -> Result<Vec<HistoryEntry>, StoreError> {
        self.call(|reply| Request::History(net, reply)).await
    }

    /// [`Store::recover`]: after a commit failed with [`StoreError::CorruptDatabase`] (pass
    /// that error as `cause`), move the damaged database aside and continue on an empty one.
    /// Commits queued behind this call go to the new database; the caller should then commit
    /// the whole state it holds (active bans, open windows, totals, positions).
    pub async fn recover(&self, cause: StoreError) -> Result<Recovered, StoreError> {
        self.call(|reply| Request::Recover(cause, reply)).await
    }

    /// [`Store::load`] (after every commit sent before it).
    pub async fn load(&self, now_us: u64) -> Result<Snapshot, StoreError> {
        self.call(|reply| Request::Load(now_us, reply)).await
    }

    /// Write what is queued, close the database and stop the thread. Other clones of this
    /// handle get [`StoreError::WorkerGone`] afterwards.
    pub async fn close(self) -> Result<(), StoreError> {
        self.call(Request::Close).await
    }
}

fn run(mut store: Store, rx: mpsc::Receiver<Request>, counters: &Counters) {
    let mut next: Option<Request> = None;
    loop {
        let req = match next.take() {
            Some(r) => r,
            None => match rx.recv() {
                Ok(r) => r,
                Err(_) => return, // every handle dropped
            },
        };
        match req {
            Request::Commit(first) => {
                let mut group = vec![*first];
                while group.len() < MAX_GROUP {
                    match rx.try_recv() {
                        Ok(Request::Commit(p)) => group.push(*p),
                        Ok(other) => {
                            next = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                commit_group(&mut store, group, counters);
            }
            Request::Purge {
                history_older_than_us,
                now_us,
                reply,
            } => {
                let r = store.purge(history_older_than_us, now_us);
                counters
                    .transactions
                    .store(store.transactions(), Ordering::Relaxed);
                let _ = reply.send(r);
            }
            Request::History(net, reply) => {
                let _ = reply.send(store.history_detail(net));
            }
            Request::Load(now, reply) => {
                let _ = reply.send(store.load(now));
            }
            Request::Recover(cause, reply) => {
                let _ = reply.send(store.recover(cause));
            }
            Request::Close(reply) => {
                let _ = reply.send(store.close());
                return;
            }
        }
    }
}

/// Write a group in one transaction; on failure retry each alone so each caller gets its own
/// result (a full disk fails them all; anything specific to one commit fails only it). The
/// counters are updated before anyone is answered.
fn commit_group(store: &mut Store, group: Vec<Pending>, counters: &Counters) {
    let durability = group.iter().map(|p| p.durability).max().unwrap_or_default();
    let results: Vec<Result<(), StoreError>> =
        match store.commit_many(group.iter().map(|p| &p.commit), durability) {
            Ok(()) => group.iter().map(|_| Ok(())).collect(),
            Err(e) if group.len() == 1 => vec![Err(e)],
            Err(e) => {
                tracing::warn!(error = %e, commits = group.len(),
                    "group commit failed; retrying its commits one by one");
                group
                    .iter()
                    .map(|p| store.commit_many([&p.commit], p.durability))
                    .collect()
            }
        };
    let ok = results.iter().filter(|r| r.is_ok()).count() as u64;
    counters.commits.fetch_add(ok, Ordering::Relaxed);
    counters
        .transactions
        .store(store.transactions(), Ordering::Relaxed);
    for (p, r) in group.into_iter().zip(results) {
        let _ = p.reply.send(r);
    }
}

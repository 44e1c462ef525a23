//! The firewall worker thread: owns the (`!Send`) backend, serves requests from the engine.

use std::sync::mpsc;
use std::thread;

use tokio::sync::oneshot;

use std::sync::Arc;

use super::{Applied, Change, Element, FeedRules, FeedSync, Firewall, FirewallError, JailRules};
use crate::feeds::AddrRanges;

enum Request {
    Setup(Vec<JailRules>, oneshot::Sender<Result<(), FirewallError>>),
    Apply(Vec<Change>, oneshot::Sender<Result<Applied, FirewallError>>),
    List(oneshot::Sender<Result<Vec<Element>, FirewallError>>),
    Teardown(oneshot::Sender<Result<(), FirewallError>>),
    SetupFeeds(Vec<FeedRules>, oneshot::Sender<Result<(), FirewallError>>),
    SyncFeed(FeedStep, oneshot::Sender<Result<FeedSync, FirewallError>>),
}

/// One bounded step of a feed's sync.
struct FeedStep {
    name: String,
    want: Arc<AddrRanges>,
    budget: usize,
}

/// Cloneable handle to the firewall worker. Dropping every handle stops the thread.
#[derive(Clone)]
pub struct FirewallHandle {
    tx: mpsc::Sender<Request>,
    name: &'static str,
}

impl FirewallHandle {
    /// Start the worker. `make` runs on the worker thread (so the backend may be `!Send`);
    /// its error (e.g. no CAP_NET_ADMIN) is returned here.
    pub fn spawn<F>(make: F) -> Result<FirewallHandle, FirewallError>
    where
        F: FnOnce() -> Result<Box<dyn Firewall>, FirewallError> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel::<Request>();
        let (ready_tx, ready_rx) = mpsc::channel();
        thread::Builder::new()
            .name("f2b-firewall".into())
            .spawn(move || {
                let mut fw = match make() {
                    Ok(fw) => {
                        let _ = ready_tx.send(Ok(fw.name()));
                        fw
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                while let Ok(req) = rx.recv() {
                    match req {
                        Request::Setup(j, r) => drop(r.send(fw.setup(&j))),
                        Request::Apply(c, r) => drop(r.send(fw.apply(&c))),
                        Request::List(r) => drop(r.send(fw.list())),
                        Request::Teardown(r) => drop(r.send(fw.teardown())),
                        Request::SetupFeeds(f, r) => drop(r.send(fw.setup_feeds(&f))),
                        Request::SyncFeed(s, r) => {
                            drop(r.send(fw.sync_feed(&s.name, &s.want, s.budget)))
                        }
                    }
                }
            })?;
        let name = ready_rx.recv().map_err(|_| FirewallError::WorkerGone)??;
        Ok(FirewallHandle { tx, name })
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, FirewallError>>) -> Request,
    ) -> Result<T, FirewallError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(make(tx))
            .map_err(|_| FirewallError::WorkerGone)?;
        rx.await.map_err(|_| FirewallError::WorkerGone)?
    }

    pub async fn setup(&self, jails: Vec<JailRules>) -> Result<(), FirewallError> {
        self.call(|r| Request::Setup(jails, r)).await
    }
    /// Applies `changes`; see the [module docs](super) for what the result promises.
    pub async fn apply(&self, changes: Vec<Change>) -> Result<Applied, FirewallError> {
        if changes.is_empty() {
            return Ok(Applied::default());
        }
        self.call(|r| Request::Apply(changes, r)).await
    }
    /// Applies `changes`, for callers that treat any refused change as a failure of the whole
    /// call: `Err(FirewallError::Refused(..))` lists what is not enforced (everything else is).
    pub async fn apply_all(&self, changes: Vec<Change>) -> Result<(), FirewallError> {
        self.apply(changes).await?.into_result()
    }
    pub async fn list(&self) -> Result<Vec<Element>, FirewallError> {
        self.call(Request::List).await
    }
    pub async fn teardown(&self) -> Result<(), FirewallError> {
        self.call(Request::Teardown).await
    }

    pub async fn setup_feeds(&self, feeds: Vec<FeedRules>) -> Result<(), FirewallError> {
        self.call(|r| Request::SetupFeeds(feeds, r)).await
    }
    /// One bounded step of feed `name`'s sync (see [`Firewall::sync_feed`]).
    pub async fn sync_feed(
        &self,
        name: &str,
        want: Arc<AddrRanges>,
        budget: usize,
    ) -> Result<FeedSync, FirewallError> {
        let step = FeedStep {
            name: name.to_string(),
            want,
            budget,
        };
        self.call(|r| Request::SyncFeed(step, r)).await
    }

    /// Blocking variants for the command-line tool (no runtime needed).
    pub fn list_blocking(&self) -> Result<Vec<Element>, FirewallError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Request::List(tx))
            .map_err(|_| FirewallError::WorkerGone)?;
        rx.blocking_recv().map_err(|_| FirewallError::WorkerGone)?
    }
}

//! The engine in-process, on a tokio runtime of the test: real journal files in, ban
//! decisions out (dry-run firewall unless the test passes one).

use std::path::Path;
use std::time::Duration;

use f2b::config::Settings;
use f2b::engine::{Command, Engine, EngineHandle, EngineOptions, Event, JailInfo};
use f2b::firewall::{DryRun, Firewall, FirewallHandle};
use f2b::source::{JournalSpec, SourceConfig, StartAt};
use tokio::sync::{broadcast, watch};

use super::journal::load_opts;

/// An engine running on the test's runtime, with its handle and event subscription.
pub struct Running {
    pub handle: EngineHandle,
    pub events: broadcast::Receiver<Event>,
    pub stop: watch::Sender<bool>,
    pub task: tokio::task::JoinHandle<Result<(), f2b::engine::EngineError>>,
    pub status: watch::Receiver<String>,
    /// Turns true once the firewall is set up, bans are restored and the reader is positioned
    /// (what f2bd reports as READY=1).
    pub ready: watch::Receiver<bool>,
}

impl Running {
    /// Wait for the next Banned event (or panic after `secs`).
    pub async fn next_ban(&mut self, secs: u64) -> (String, String) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Ok(Event::Banned { jail, address, .. })) => return (jail, address),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => panic!("event channel: {e}"),
                Err(_) => panic!("no ban within {secs} s"),
            }
        }
    }

    /// Collect Banned events until none arrives for `quiet`.
    pub async fn bans_until_quiet(&mut self, quiet: Duration) -> Vec<(String, String)> {
        let mut out = Vec::new();
        while let Ok(Ok(ev)) = tokio::time::timeout(quiet, self.events.recv()).await {
            if let Event::Banned { jail, address, .. } = ev {
                out.push((jail, address));
            }
        }
        out
    }

    /// Wait until the engine is ready: entries appended from now on are seen.
    pub async fn ready(&mut self) {
        tokio::time::timeout(Duration::from_secs(10), self.ready.wait_for(|r| *r))
            .await
            .expect("engine not ready within 10 s")
            .expect("engine gone before it was ready");
    }

    /// The jails, their counters and settings.
    pub async fn jails(&self) -> Vec<JailInfo> {
        self.handle.call(Command::ListJails).await.unwrap()
    }

    /// Wait until the jails have counted `n` failures in all (entries appended before are then
    /// processed, their bans decided and published); returns the jails.
    pub async fn wait_failed(&self, n: u64) -> Vec<JailInfo> {
        poll(|| async {
            let jails = self.jails().await;
            let seen: u64 = jails.iter().map(|j| j.total_failed).sum();
            if seen >= n {
                Ok(jails)
            } else {
                Err(format!("only {seen} of {n} failures counted"))
            }
        })
        .await
    }

    /// Wait until the engine has read `n` journal entries (of the jails' units) in all: they
    /// are then processed, their bans decided and published.
    pub async fn wait_read(&self, n: u64) {
        poll(|| async {
            let read = self
                .handle
                .call(Command::Metrics)
                .await
                .unwrap()
                .entries_read;
            if read >= n {
                Ok(())
            } else {
                Err(format!("only {read} of {n} entries read"))
            }
        })
        .await
    }

    /// The Banned events published so far and not yet taken, without waiting.
    pub fn bans_so_far(&mut self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        loop {
            match self.events.try_recv() {
                Ok(Event::Banned { jail, address, .. }) => out.push((jail, address)),
                Ok(_) => {}
                Err(broadcast::error::TryRecvError::Empty)
                | Err(broadcast::error::TryRecvError::Closed) => return out,
                Err(e) => panic!("event channel: {e}"),
            }
        }
    }

    /// For an engine that does not follow: wait until it has read the journal to its end and
    /// stopped; returns every ban it decided.
    pub async fn finish(mut self) -> Vec<(String, String)> {
        tokio::time::timeout(Duration::from_secs(30), &mut self.task)
            .await
            .expect("the engine did not reach the journal's end within 30 s")
            .unwrap()
            .unwrap();
        self.bans_so_far()
    }

    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        self.task.await.unwrap().unwrap();
    }
}

/// Asks `probe` every 10 ms until it says Ok; panics with its last Err after 10 s.
async fn poll<T, F: std::future::Future<Output = Result<T, String>>>(
    mut probe: impl FnMut() -> F,
) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match probe().await {
            Ok(v) => return v,
            Err(e) if tokio::time::Instant::now() > deadline => panic!("{e} within 10 s"),
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// Start an engine in this runtime on journal directory `dir` with the dry-run firewall.
pub fn start(settings: Settings, dir: &Path, start: StartAt, follow: bool) -> Running {
    start_with(
        settings,
        JournalSpec::Directory(dir.to_path_buf()),
        start,
        follow,
        None,
    )
}

/// Start an engine with a store, resuming from the snapshot's cursor when it has one.
pub fn start_stored(
    settings: Settings,
    dir: &Path,
    start: StartAt,
    follow: bool,
    store: f2b::store::StoreHandle,
    snap: f2b::store::Snapshot,
) -> Running {
    start_full(
        settings,
        JournalSpec::Directory(dir.to_path_buf()),
        start,
        follow,
        None,
        Some((store, snap)),
    )
}

pub fn start_with(
    settings: Settings,
    spec: JournalSpec,
    start: StartAt,
    follow: bool,
    fw: Option<FirewallHandle>,
) -> Running {
    start_full(settings, spec, start, follow, fw, None)
}

pub fn start_full(
    settings: Settings,
    spec: JournalSpec,
    start: StartAt,
    follow: bool,
    fw: Option<FirewallHandle>,
    store: Option<(f2b::store::StoreHandle, f2b::store::Snapshot)>,
) -> Running {
    start_edited(settings, spec, start, follow, fw, store, |_| {})
}

/// [`start_full`], with the engine's options changed by `edit` first (an outbox, …).
pub fn start_edited(
    settings: Settings,
    spec: JournalSpec,
    start: StartAt,
    follow: bool,
    fw: Option<FirewallHandle>,
    store: Option<(f2b::store::StoreHandle, f2b::store::Snapshot)>,
    edit: impl FnOnce(&mut EngineOptions),
) -> Running {
    let fw = fw.unwrap_or_else(|| {
        FirewallHandle::spawn(|| Ok(Box::new(DryRun::new()) as Box<dyn Firewall>)).unwrap()
    });
    let (status_tx, status) = watch::channel(String::new());
    let (ready_tx, ready) = watch::channel(false);
    let mut opts = EngineOptions {
        load: load_opts(None),
        source: SourceConfig {
            spec,
            start,
            follow,
            batch: 4096,
        },
        firewall: fw,
        ready: Some(ready_tx),
        status: Some(status_tx),
        tick: None,
        firewall_events: None,
        notice: None,
        outbox: None,
        host: "test".into(),
        fleet: None,
        resume: store.is_some(),
        snapshot: store.as_ref().map(|(_, s)| s.clone()),
        store: store.map(|(h, _)| h),
    };
    edit(&mut opts);
    let (engine, handle, cmds) = Engine::new(settings, opts);
    let events = handle.subscribe();
    let (stop, stop_rx) = watch::channel(false);
    let task = tokio::spawn(engine.run(cmds, stop_rx));
    Running {
        handle,
        events,
        stop,
        task,
        status,
        ready,
    }
}

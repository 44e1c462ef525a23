//! Shared helpers for the integration tests: real journal files, configs, an in-process engine.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use f2b::config::{self, LoadOptions, Settings};
use f2b::engine::{Engine, EngineHandle, EngineOptions, Event};
use f2b::firewall::{DryRun, Firewall, FirewallHandle};
use f2b::source::export::{write_journal, ExportEntry};
use f2b::source::{JournalSpec, SourceConfig, StartAt};
use tokio::sync::{broadcast, watch};

pub const S: u64 = 1_000_000;

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/filters")
}

/// Is this process root? Tests that need it print why they skip.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

pub fn ssh(t: u64, msg: &str) -> ExportEntry {
    ExportEntry::service(t, "sshd.service", "sshd", 4242, msg)
}

pub fn fail(t: u64, ip: &str) -> ExportEntry {
    ssh(
        t,
        &format!("Failed password for root from {ip} port 50000 ssh2"),
    )
}

pub fn web(t: u64, msg: &str) -> ExportEntry {
    ExportEntry::service(t, "web.service", "web", 77, msg)
}

pub fn append(dir: &Path, file: &str, entries: Vec<ExportEntry>) {
    write_journal(&dir.join(file), entries)
        .expect("systemd-journal-remote (package systemd-journal-remote) must be installed");
}

pub fn settings(text: &str) -> Settings {
    config::load_str("test.toml", text, &load_opts(None)).unwrap()
}

pub fn load_opts(config: Option<PathBuf>) -> LoadOptions {
    LoadOptions {
        config: config.unwrap_or_else(|| "/nonexistent/f2b-test.toml".into()),
        allow_missing: false,
        filter_dirs: vec![fixtures()],
        no_system_filters: true,
        ..Default::default()
    }
}

pub struct Running {
    pub handle: EngineHandle,
    pub events: broadcast::Receiver<Event>,
    pub stop: watch::Sender<bool>,
    pub task: tokio::task::JoinHandle<Result<(), f2b::engine::EngineError>>,
    pub status: watch::Receiver<String>,
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

    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        self.task.await.unwrap().unwrap();
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
    let fw = fw.unwrap_or_else(|| {
        FirewallHandle::spawn(|| Ok(Box::new(DryRun::new()) as Box<dyn Firewall>)).unwrap()
    });
    let (status_tx, status) = watch::channel(String::new());
    let opts = EngineOptions {
        load: load_opts(None),
        source: SourceConfig {
            spec,
            start,
            follow,
            batch: 4096,
        },
        firewall: fw,
        ready: None,
        status: Some(status_tx),
        tick: None,
        firewall_events: None,
        resume: store.is_some(),
        snapshot: store.as_ref().map(|(_, s)| s.clone()),
        store: store.map(|(h, _)| h),
    };
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
    }
}

//! The file reader thread (see the module docs of [`super`]).

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{mpsc as std_mpsc, Arc};
use std::thread;

use nix::poll::{PollFd, PollFlags, PollTimeout};
use tokio::sync::mpsc;

use super::follow::{Begin, Followed};
use super::lines::Dispatch;
use super::position::Position;
use super::tail::CHUNK;
use super::watch::{expand, Watcher};
use super::{
    position_key, FileRoute, FileView, FilesConfig, FilesStart, FilesView, BACKSTOP, MAX_LINE,
};
use crate::source::thread::ReaderThread;
use crate::source::wait::WakePipe;
use crate::source::{Batch, SourceEvent, SourceKind};

/// How often one rescan looks again after watching new directories (a directory tree made
/// level by level while it is scanned needs one look per level).
const RESCANS: usize = 8;

type Control = crate::source::thread::Control<FileRoute>;

/// Handle to the file reader thread. Dropping it stops the thread and waits for it.
pub struct FilesHandle {
    thread: ReaderThread<FileRoute>,
    view: FilesView,
}

impl FilesHandle {
    /// Replace the routes (reload, jails started or stopped). Files still read go on where
    /// they are; files new to the routes start at their saved position, else at their end.
    pub fn set_routes(&self, routes: Vec<FileRoute>, generation: u64) {
        self.thread.set_routes(routes, generation);
    }

    /// The files and their counters.
    pub fn view(&self) -> FilesView {
        self.view.clone()
    }

    /// Stop the thread and wait for it (dropping the handle does the same).
    pub fn stop(self) {}
}

/// Start the file reader for `routes` (hits carry `generation`).
pub fn spawn(
    cfg: FilesConfig,
    routes: Vec<FileRoute>,
    generation: u64,
    tx: mpsc::Sender<SourceEvent>,
) -> io::Result<FilesHandle> {
    let (ctl_tx, ctl_rx) = std_mpsc::channel();
    let (wake_rx, waker) = WakePipe::new()?.split();
    let view = FilesView::default();
    let thread_view = view.clone();
    let (ready_tx, ready_rx) = std_mpsc::channel();
    let thread = thread::Builder::new()
        .name("f2b-files".into())
        .spawn(move || {
            let mut r = Reader::new(cfg, Arc::new(routes), generation, tx, thread_view);
            r.position();
            // Nothing is sent to the engine before this: the caller may wait for it.
            let _ = ready_tx.send(());
            if let Err(e) = r.run(ctl_rx, wake_rx) {
                let _ =
                    r.tx.blocking_send(SourceEvent::Failed(format!("file reader: {e}")));
            }
        })?;
    // Positioned in every file (and watching them) before the caller goes on: a line written
    // once this returns is read.
    if ready_rx.recv().is_err() {
        let _ = thread.join();
        return Err(io::Error::other("the file reader thread died"));
    }
    Ok(FilesHandle {
        thread: ReaderThread::new(ctl_tx, waker, thread),
        view,
    })
}

/// A followed path and what reads it.
struct Entry {
    f: Followed,
    key: String,
    name: Arc<str>,
    routes: Vec<usize>,
    /// "jail a, jail b" for messages.
    jails: String,
    dirty: bool,
    /// The position last sent to the engine.
    sent: Option<Position>,
    /// Skip lines older than this (`--since`), until the backlog is read.
    since: Option<u64>,
    cut_said: bool,
}

struct Reader {
    cfg: FilesConfig,
    d: Dispatch,
    files: BTreeMap<PathBuf, Entry>,
    watcher: Watcher,
    /// Saved positions of files not followed now.
    known: BTreeMap<String, Position>,
    /// Glob patterns already said to match nothing.
    said_unmatched: BTreeSet<String>,
    /// Keys whose position is to be forgotten (sent with the next batch).
    forget: Vec<String>,
    tx: mpsc::Sender<SourceEvent>,
    view: FilesView,
    warnings: Vec<String>,
}

impl Reader {
    fn new(
        cfg: FilesConfig,
        routes: Arc<Vec<FileRoute>>,
        generation: u64,
        tx: mpsc::Sender<SourceEvent>,
        view: FilesView,
    ) -> Reader {
        let known = (cfg.saved.iter())
            .filter_map(|(k, v)| Some((k.clone(), Position::decode(v)?)))
            .collect();
        Reader {
            d: Dispatch::new(routes, generation),
            cfg,
            files: BTreeMap::new(),
            watcher: Watcher::new(),
            known,
            said_unmatched: BTreeSet::new(),
            forget: Vec::new(),
            tx,
            view,
            warnings: Vec::new(),
        }
    }

    fn warn_all(&mut self) -> bool {
        for w in std::mem::take(&mut self.warnings) {
            if self.tx.blocking_send(SourceEvent::Warning(w)).is_err() {
                return false;
            }
        }
        true
    }

    /// Look at what the patterns name now: follow new files (from `begin` when they have no
    /// saved position), give up files no longer named, mark every file to be looked at.
    fn rescan(&mut self, begin: Begin) {
        let routes = self.d.routes.clone();
        let mut patterns: Vec<(String, Vec<usize>)> = Vec::new();
        for (ri, r) in routes.iter().enumerate() {
            for p in &r.logpath {
                match patterns.iter_mut().find(|(q, _)| q == p) {
                    Some((_, rs)) => rs.push(ri),
                    None => patterns.push((p.clone(), vec![ri])),
                }
            }
        }
        let texts: Vec<String> = patterns.iter().map(|(p, _)| p.clone()).collect();
        // A directory made just before its watch was added may already hold what the
        // patterns look for: look again until no directory is new (bounded; beyond that,
        // the next event in a watched directory brings the rest).
        let mut scan = expand(&texts);
        let mut looks = 0;
        while self.watcher.set_dirs(&scan.dirs) && looks < RESCANS {
            looks += 1;
            scan = expand(&texts);
        }
        let mut wanted: BTreeMap<PathBuf, Vec<usize>> = BTreeMap::new();
        for (path, pis) in &scan.files {
            let rs = wanted.entry(path.clone()).or_default();
            rs.extend(pis.iter().flat_map(|&pi| patterns[pi].1.iter().copied()));
        }
        for &pi in &scan.unmatched {
            let (pat, rs) = &patterns[pi];
            if !pat.contains(['*', '?', '[']) {
                // A plain path: followed (as missing) so that it is said and waited for.
                wanted
                    .entry(PathBuf::from(pat))
                    .or_default()
                    .extend(rs.iter().copied());
            } else if self.said_unmatched.insert(pat.clone()) {
                self.warnings.push(format!(
                    "{}: no file matches {pat} (yet); the jail waits for one",
                    jail_list(&routes, rs)
                ));
            }
        }
        let gone: Vec<PathBuf> = (self.files.keys())
            .filter(|p| !wanted.contains_key(*p))
            .cloned()
            .collect();
        for p in gone {
            if let Some(mut e) = self.files.remove(&p) {
                if let Some(pos) = e.f.position() {
                    self.known.insert(e.key.clone(), pos);
                }
                e.f.close(&mut self.watcher);
                self.view.update(|m| {
                    m.remove(&*e.name);
                });
            }
        }
        for (path, mut rs) in wanted {
            rs.sort_unstable();
            rs.dedup();
            let jails = jail_list(&routes, &rs);
            match self.files.get_mut(&path) {
                Some(e) => {
                    e.routes = rs;
                    e.jails = jails;
                    e.dirty = true;
                }
                None => {
                    let key = position_key(&path);
                    let saved = self.known.remove(&key);
                    let mut f = Followed::new(path.clone(), MAX_LINE);
                    let (b, since) = match (begin, self.cfg.start) {
                        (Begin::End, FilesStart::Since(t)) if saved.is_none() => {
                            let fresh = modified_since(&path, t);
                            (if fresh { Begin::Start } else { Begin::End }, Some(t))
                        }
                        (b, _) => (b, None),
                    };
                    f.start(saved, b, &mut self.watcher, &mut self.warnings, &jails);
                    let name: Arc<str> = Arc::from(path.display().to_string());
                    self.files.insert(
                        path,
                        Entry {
                            sent: saved,
                            f,
                            key,
                            name,
                            routes: rs,
                            jails,
                            dirty: true,
                            since,
                            cut_said: false,
                        },
                    );
                }
            }
        }
    }

    /// Read what the dirty files have, up to a batch; returns whether any is still dirty.
    fn read_round(&mut self, batch: &mut Batch) -> bool {
        let max = self.cfg.batch.max(1) as u64;
        let mut chunk = Vec::with_capacity(CHUNK);
        let Reader {
            files,
            d,
            watcher,
            warnings,
            ..
        } = self;
        d.tick();
        for e in files.values_mut().filter(|e| e.dirty) {
            let before = e.f.read;
            let (name, routes, since) = (&e.name, &e.routes, e.since);
            let mut line = |bytes: &[u8], _cut: bool| d.line(name, routes, bytes, since, batch);
            let more = e.f.check(
                watcher,
                &mut chunk,
                CHUNK * 4,
                &mut line,
                warnings,
                &e.jails,
            );
            batch.entries += e.f.read.lines - before.lines;
            if e.f.read.cut > before.cut && !e.cut_said {
                e.cut_said = true;
                warnings.push(format!(
                    "{}: {}: lines longer than {MAX_LINE} bytes are cut there (counted in \
                     f2b_file_lines_cut_total)",
                    e.jails,
                    e.f.path.display()
                ));
            }
            e.dirty = more;
            if !more {
                e.since = None;
            }
            if batch.entries >= max {
                break;
            }
        }
        files.values().any(|e| e.dirty)
    }

    /// Positions that changed, counters into the view; send the batch if it has anything.
    fn send(&mut self, mut batch: Batch) -> bool {
        for e in self.files.values_mut() {
            let pos = e.f.position();
            if pos != e.sent {
                if let Some(p) = pos {
                    batch.positions.push((e.key.clone(), Some(p.encode())));
                } else {
                    batch.positions.push((e.key.clone(), None));
                }
                e.sent = pos;
            }
        }
        batch
            .positions
            .extend(self.forget.drain(..).map(|k| (k, None)));
        batch.stats = self.d.take_stats();
        let per = std::mem::take(&mut self.d.per_file);
        let routes = self.d.routes.clone();
        let files = &mut self.files;
        self.view.update(|m| {
            for e in files.values_mut() {
                let v = m.entry(e.name.to_string()).or_insert_with(|| FileView {
                    path: e.name.to_string(),
                    ..FileView::default()
                });
                v.state = e.f.state.text();
                v.lines += e.f.read.lines;
                v.cut += e.f.read.cut;
                e.f.read = Default::default();
                for &ri in &e.routes {
                    v.jails.entry(routes[ri].jail.to_string()).or_default();
                }
            }
            for ((name, ri), (seen, matched)) in per {
                if let Some(v) = m.get_mut(&*name) {
                    let c = v.jails.entry(routes[ri].jail.to_string()).or_default();
                    c.0 += seen;
                    c.1 += matched;
                }
            }
        });
        if batch.entries == 0 && batch.positions.is_empty() && batch.hits.is_empty() {
            return true;
        }
        self.tx.blocking_send(SourceEvent::Batch(batch)).is_ok()
    }

    fn new_batch(&self) -> Batch {
        Batch {
            kind: SourceKind::Files,
            generation: self.d.generation,
            ..Default::default()
        }
    }

    fn set_routes(&mut self, routes: Arc<Vec<FileRoute>>, generation: u64) -> bool {
        // What was read with the old routes goes out with them.
        let b = self.new_batch();
        if !self.send(b) {
            return false;
        }
        self.d = Dispatch::new(routes, generation);
        self.view.update(|m| {
            for v in m.values_mut() {
                v.jails.clear();
            }
        });
        self.rescan(Begin::End);
        true
    }

    /// Take the start positions in the files the routes name now, and watch them.
    fn position(&mut self) {
        let begin = match self.cfg.start {
            FilesStart::Start => Begin::Start,
            FilesStart::End | FilesStart::Since(_) => Begin::End,
        };
        self.rescan(begin);
        if let Some(why) = &self.watcher.unreliable_why {
            self.warnings.push(format!(
                "log files: {why}; looking for changes every {} s instead",
                BACKSTOP.as_secs()
            ));
        }
    }

    fn run(&mut self, ctl: std_mpsc::Receiver<Control>, wake: OwnedFd) -> io::Result<()> {
        let mut caught_up = false;
        loop {
            while let Ok(c) = ctl.try_recv() {
                match c {
                    Control::Stop => return Ok(()),
                    Control::Routes(r, g) => {
                        if !self.set_routes(r, g) {
                            return Ok(());
                        }
                    }
                }
            }
            let mut batch = self.new_batch();
            let more = self.read_round(&mut batch);
            if !self.send(batch) || !self.warn_all() {
                return Ok(());
            }
            if more {
                continue;
            }
            if !caught_up {
                caught_up = true;
                let ev = SourceEvent::CaughtUp(SourceKind::Files);
                if self.tx.blocking_send(ev).is_err() {
                    return Ok(());
                }
            }
            if !self.cfg.follow {
                let _ = self.tx.blocking_send(SourceEvent::Ended(SourceKind::Files));
                return Ok(());
            }
            let timed_out = self.wait(&wake)?;
            let changes = self.watcher.changes()?;
            if changes.rescan || timed_out || !self.watcher.reliable {
                self.rescan(Begin::Start);
            }
            for wd in changes.files {
                for e in self.files.values_mut() {
                    if e.f.watches().any(|w| w == wd) {
                        e.dirty = true;
                    }
                }
            }
        }
    }

    /// Sleep until inotify or the wake pipe has something (or the backstop passed, where
    /// inotify is not reliable). Returns whether it timed out.
    fn wait(&self, wake: &OwnedFd) -> io::Result<bool> {
        let timeout = if self.watcher.reliable {
            PollTimeout::NONE
        } else {
            PollTimeout::try_from(BACKSTOP).expect("small")
        };
        let mut fds = vec![PollFd::new(wake.as_fd(), PollFlags::POLLIN)];
        if let Some(fd) = self.watcher.fd() {
            fds.push(PollFd::new(fd, PollFlags::POLLIN));
        }
        let n = match nix::poll::poll(&mut fds, timeout) {
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => 1,
            Err(e) => return Err(e.into()),
        };
        if fds[0].any().unwrap_or(false) {
            let mut buf = [0u8; 64];
            while matches!(nix::unistd::read(wake, &mut buf), Ok(n) if n > 0) {}
        }
        Ok(n == 0)
    }
}

fn jail_list(routes: &[FileRoute], rs: &[usize]) -> String {
    let names: Vec<&str> = rs.iter().map(|&i| &*routes[i].jail).collect();
    format!(
        "jail{} {}",
        if names.len() == 1 { "" } else { "s" },
        names.join(", ")
    )
}

/// Whether `path` was written at or after `t` (µs).
fn modified_since(path: &Path, t: u64) -> bool {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
        .is_none_or(|d| d.as_micros() as u64 >= t)
}

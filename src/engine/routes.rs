//! Which jails read which source: route sets by generation, and the reader threads (the
//! journal reader for journal jails, the file reader for file jails).
//!
//! A reader tags each batch with its kind and the generation of the routes it used; the
//! engine keeps, per kind, the jail names of the current generation and the one before (a
//! batch read just before a route change arrives after it), so hits always reach the jail
//! they were made for.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use tracing::{info, warn};

use super::{Engine, EngineError};
use crate::config::JailSource;
use crate::source::files::{self, FileRoute, FilesConfig, FilesHandle, FilesStart, FilesView};
use crate::source::{self, ReaderHandle, Route, SourceKind, StartAt};

/// Route index → jail name, for the generation in force and the previous one.
#[derive(Default)]
struct Generations {
    names: Vec<(u64, Vec<String>)>,
    generation: u64,
}

impl Generations {
    fn push(&mut self, names: Vec<String>) -> u64 {
        self.generation += 1;
        let prev = self.names.pop();
        self.names = prev
            .into_iter()
            .chain(std::iter::once((self.generation, names)))
            .collect();
        self.generation
    }
}

/// Route generations and the readers.
#[derive(Default)]
pub(super) struct Routes {
    journal: Generations,
    files: Generations,
    reader: Option<ReaderHandle>,
    files_reader: Option<FilesHandle>,
    /// Readers whose startup backlog is not read yet.
    backlog: BTreeSet<SourceKind>,
    /// Readers that have not ended (without `follow`, the run ends when none is left).
    running: BTreeSet<SourceKind>,
}

impl Routes {
    /// The jail names of a generation's routes of one reader.
    pub(super) fn names(&self, kind: SourceKind, generation: u64) -> Option<&[String]> {
        let g = match kind {
            SourceKind::Journal => &self.journal,
            SourceKind::Files => &self.files,
        };
        g.names
            .iter()
            .find(|(g, _)| *g == generation)
            .map(|(_, n)| n.as_slice())
    }

    /// Tell the journal reader an attack is under way until `until_us` (see
    /// [`crate::source::wait`]; the file reader needs no such hint: inotify tells at once).
    pub(super) fn urgent_until(&self, until_us: u64) {
        if let Some(r) = &self.reader {
            r.set_urgent_until(until_us);
        }
    }

    /// The followed files and their counters (none without file jails).
    pub(super) fn files_view(&self) -> Option<FilesView> {
        self.files_reader.as_ref().map(FilesHandle::view)
    }

    /// A reader read its backlog; returns whether every reader has.
    pub(super) fn caught_up(&mut self, kind: SourceKind) -> bool {
        self.backlog.remove(&kind);
        self.backlog.is_empty()
    }

    /// A reader ended (not following); returns whether every reader has.
    pub(super) fn ended(&mut self, kind: SourceKind) -> bool {
        self.running.remove(&kind);
        self.running.is_empty()
    }

    /// Stop the reader threads (if any) and wait for them.
    pub(super) async fn stop_reader(&mut self) {
        let (r, f) = (self.reader.take(), self.files_reader.take());
        tokio::task::spawn_blocking(move || {
            if let Some(r) = r {
                r.stop();
            }
            if let Some(f) = f {
                f.stop();
            }
        })
        .await
        .ok();
    }
}

impl Engine {
    /// The routes of the enabled journal jails, and their names.
    fn build_routes(&self) -> (Vec<Route>, Vec<String>) {
        let mut routes = Vec::new();
        let mut names = Vec::new();
        for j in self.jails.values() {
            if let JailSource::Journal { matches, .. } = &j.cfg.source {
                if let Some(filter) = self.settings.filters.get(j.name()) {
                    routes.push(Route {
                        jail: Arc::from(j.name()),
                        matches: matches.clone(),
                        filter: filter.clone(),
                        report_missed: false,
                    });
                    names.push(j.name().to_string());
                }
            }
        }
        (routes, names)
    }

    /// The routes of the enabled file jails, and their names.
    fn build_file_routes(&self) -> (Vec<FileRoute>, Vec<String>) {
        let mut routes = Vec::new();
        let mut names = Vec::new();
        for j in self.jails.values() {
            if let JailSource::File {
                filter, logpath, ..
            } = &j.cfg.source
            {
                let compiled = self.settings.filters.get(j.name());
                let def = self.settings.library.get(filter);
                if let (Some(compiled), Some(def)) = (compiled, def) {
                    routes.push(FileRoute {
                        jail: Arc::from(j.name()),
                        filter: compiled.clone(),
                        def: Arc::new(def.clone()),
                        logpath: logpath.clone(),
                    });
                    names.push(j.name().to_string());
                }
            }
        }
        (routes, names)
    }

    /// Start the readers: the journal at `start`, the files at their saved positions (else
    /// where the daemon's start option says).
    pub(super) fn start_reader(&mut self, start: StartAt) -> Result<(), EngineError> {
        let (routes, names) = self.build_routes();
        let generation = self.routes.journal.push(names);
        if routes.is_empty() {
            info!("no enabled journal jails: not reading the journal");
        } else {
            let mut cfg = self.opts.source.clone();
            cfg.start = start;
            let reader = source::spawn_at(cfg, routes, generation, self.source_tx.clone())?;
            self.routes.reader = Some(reader);
            self.routes.backlog.insert(SourceKind::Journal);
            self.routes.running.insert(SourceKind::Journal);
        }
        self.start_files_reader()?;
        if self.routes.running.is_empty() {
            self.clock.caught_up = true;
            if !self.opts.source.follow {
                self.ended = true;
            }
        }
        Ok(())
    }

    /// Start the file reader when file jails are enabled.
    fn start_files_reader(&mut self) -> Result<(), EngineError> {
        let (routes, names) = self.build_file_routes();
        let generation = self.routes.files.push(names);
        if routes.is_empty() {
            return Ok(());
        }
        let cfg = FilesConfig {
            start: match self.opts.source.start {
                StartAt::Head => FilesStart::Start,
                StartAt::Since(t) => FilesStart::Since(t),
                StartAt::Tail | StartAt::Cursor(_) => FilesStart::End,
            },
            follow: self.opts.source.follow,
            batch: self.opts.source.batch,
            saved: self.file_positions(),
        };
        let reader = files::spawn(cfg, routes, generation, self.source_tx.clone())
            .map_err(crate::source::SourceError::Files)?;
        self.routes.files_reader = Some(reader);
        self.routes.backlog.insert(SourceKind::Files);
        self.routes.running.insert(SourceKind::Files);
        Ok(())
    }

    /// The saved positions of files.
    fn file_positions(&self) -> BTreeMap<String, String> {
        (self.positions.iter())
            .filter(|(k, _)| k.starts_with(files::KEY_PREFIX))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The jails changed (reload, start/stop): give the readers the new routes, or start or
    /// stop them. Reading resumes right after the last entry (or line) read: nothing is
    /// skipped or read twice.
    pub(super) fn refresh_routes(&mut self) {
        let (routes, names) = self.build_routes();
        match (self.routes.reader.is_some(), routes.is_empty()) {
            (true, false) => {
                let generation = self.routes.journal.push(names);
                if let Some(r) = &self.routes.reader {
                    r.set_routes(routes, generation);
                }
            }
            (true, true) => {
                self.routes.journal.push(names);
                // No journal jail left: stop reading.
                if let Some(r) = self.routes.reader.take() {
                    std::thread::spawn(move || r.stop());
                }
            }
            (false, false) => {
                let start = match &self.cursor {
                    Some(c) => StartAt::Cursor(c.clone()),
                    None => StartAt::Tail,
                };
                let generation = self.routes.journal.push(names);
                let mut cfg = self.opts.source.clone();
                cfg.start = start;
                match source::spawn_at(cfg, routes, generation, self.source_tx.clone()) {
                    Ok(r) => self.routes.reader = Some(r),
                    Err(e) => warn!(error = %e, "cannot start the journal reader: {e}"),
                }
            }
            (false, true) => {
                self.routes.journal.push(names);
            }
        }
        let (routes, names) = self.build_file_routes();
        match (self.routes.files_reader.is_some(), routes.is_empty()) {
            (true, false) => {
                let generation = self.routes.files.push(names);
                if let Some(r) = &self.routes.files_reader {
                    r.set_routes(routes, generation);
                }
            }
            (true, true) => {
                self.routes.files.push(names);
                if let Some(r) = self.routes.files_reader.take() {
                    std::thread::spawn(move || r.stop());
                }
            }
            (false, false) => {
                if let Err(e) = self.start_files_reader() {
                    warn!(error = %e, "cannot start the file reader: {e}");
                }
            }
            (false, true) => {
                self.routes.files.push(names);
            }
        }
    }
}

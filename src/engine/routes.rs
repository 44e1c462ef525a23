//! Which jails read which source: route sets by generation, and the journal reader thread.
//!
//! A reader tags each batch with the generation of the routes it used; the engine keeps the
//! jail names of the current generation and the one before (a batch read just before a route
//! change arrives after it), so hits always reach the jail they were made for.

use std::sync::Arc;

use tracing::{info, warn};

use super::{Engine, EngineError};
use crate::config::JailSource;
use crate::source::{self, ReaderHandle, Route, StartAt};

/// Route generations and the reader.
#[derive(Default)]
pub(super) struct Routes {
    /// Route index → jail name, for the generation in force and the previous one.
    names: Vec<(u64, Vec<String>)>,
    generation: u64,
    reader: Option<ReaderHandle>,
}

impl Routes {
    /// The jail names of a generation's routes.
    pub(super) fn names(&self, generation: u64) -> Option<&[String]> {
        self.names
            .iter()
            .find(|(g, _)| *g == generation)
            .map(|(_, n)| n.as_slice())
    }

    fn push(&mut self, names: Vec<String>) -> u64 {
        self.generation += 1;
        let prev = self.names.pop();
        self.names = prev
            .into_iter()
            .chain(std::iter::once((self.generation, names)))
            .collect();
        self.generation
    }

    /// Tell the reader an attack is under way until `until_us` (see [`crate::source::wait`]).
    pub(super) fn urgent_until(&self, until_us: u64) {
        if let Some(r) = &self.reader {
            r.set_urgent_until(until_us);
        }
    }

    /// Stop the reader thread (if any) and wait for it.
    pub(super) async fn stop_reader(&mut self) {
        if let Some(r) = self.reader.take() {
            tokio::task::spawn_blocking(move || r.stop()).await.ok();
        }
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

    /// Start the journal reader at `start` with the current routes (a new generation).
    pub(super) fn start_reader(&mut self, start: StartAt) -> Result<(), EngineError> {
        let (routes, names) = self.build_routes();
        let generation = self.routes.push(names);
        if routes.is_empty() {
            info!("no enabled journal jails: not reading the journal");
            self.clock.caught_up = true;
            if !self.opts.source.follow {
                self.ended = true;
            }
            return Ok(());
        }
        let mut cfg = self.opts.source.clone();
        cfg.start = start;
        let reader = source::spawn_at(cfg, routes, generation, self.source_tx.clone())?;
        self.routes.reader = Some(reader);
        Ok(())
    }

    /// The jails changed (reload, start/stop): give the reader the new routes, or start or
    /// stop it. Reading resumes right after the last entry read: nothing is skipped or read
    /// twice.
    pub(super) fn refresh_routes(&mut self) {
        let (routes, names) = self.build_routes();
        match (self.routes.reader.is_some(), routes.is_empty()) {
            (true, false) => {
                let generation = self.routes.push(names);
                if let Some(r) = &self.routes.reader {
                    r.set_routes(routes, generation);
                }
            }
            (true, true) => {
                self.routes.push(names);
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
                if let Err(e) = self.start_reader(start) {
                    warn!(error = %e, "cannot start the journal reader: {e}");
                }
            }
            (false, true) => {
                self.routes.push(names);
            }
        }
    }
}

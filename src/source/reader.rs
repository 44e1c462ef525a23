//! The reader thread (see the module docs of [`crate::source`]).

use std::ffi::CStr;
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::{mpsc as std_mpsc, Arc};
use std::thread;

use systemd::journal::{Journal, OpenDirectoryOptions, OpenFilesOptions, OpenOptions};
use tokio::sync::mpsc;

use super::route::{journal_groups, FieldValues, Router};
use super::thread::ReaderThread;
use super::wait::{self, Urgency, WakePipe};
use super::{
    cursor_realtime, Batch, Hit, JournalSpec, Missed, Route, SourceConfig, SourceError,
    SourceEvent, SourceKind, StartAt, MAX_MISSED_PER_BATCH,
};
use crate::filter::{EntryCtx, Outcome};

type Control = super::thread::Control<Route>;

/// Handle to the reader thread. Dropping it stops the thread and waits for it.
pub struct ReaderHandle {
    thread: ReaderThread<Route>,
    urgency: Urgency,
}

impl ReaderHandle {
    /// Replace the routes (reload). Matches are re-installed and reading resumes right after
    /// the last entry read, so nothing is skipped or read twice. Hits of the new routes carry
    /// `generation`.
    pub fn set_routes(&self, routes: Vec<Route>, generation: u64) {
        self.thread.set_routes(routes, generation);
    }

    /// Until `until_us` (wall clock), look for new entries every few milliseconds instead of
    /// waiting for journald's change notification (see [`super::wait`]).
    pub fn set_urgent_until(&self, until_us: u64) {
        let was = self.urgency.until();
        self.urgency.set_until(until_us);
        if until_us > was {
            self.thread.wake();
        }
    }

    /// Stop the thread and wait for it (dropping the handle does the same).
    pub fn stop(self) {}
}

/// Open the journal on a new thread and start reading. Open errors are returned here.
pub fn spawn(
    cfg: SourceConfig,
    routes: Vec<Route>,
    tx: mpsc::Sender<SourceEvent>,
) -> Result<ReaderHandle, SourceError> {
    spawn_at(cfg, routes, 0, tx)
}

/// [`spawn`] with the routes' generation: batches carry it, so that the engine knows which
/// set of routes their route indices refer to.
pub fn spawn_at(
    cfg: SourceConfig,
    routes: Vec<Route>,
    generation: u64,
    tx: mpsc::Sender<SourceEvent>,
) -> Result<ReaderHandle, SourceError> {
    let (ctl_tx, ctl_rx) = std_mpsc::channel();
    let (wake_rx, waker) = WakePipe::new()?.split();
    let urgency = Urgency::default();
    let thread_urgency = urgency.clone();
    let (ready_tx, ready_rx) = std_mpsc::channel();
    let thread = thread::Builder::new()
        .name("f2b-journal".into())
        .spawn(move || {
            let mut r = match Reader::open(&cfg, Arc::new(routes), generation, tx) {
                Ok(r) => {
                    let _ = ready_tx.send(Ok(()));
                    r
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            if let Err(e) = r.run(&cfg, ctl_rx, wake_rx, &thread_urgency) {
                let _ = r.tx.blocking_send(SourceEvent::Failed(e.to_string()));
            }
        })?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(ReaderHandle {
            thread: ReaderThread::new(ctl_tx, waker, thread),
            urgency,
        }),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => Err(SourceError::Journal(io::Error::other("reader thread died"))),
    }
}

/// Buffers [`Reader::entry`] reuses from one entry to the next.
#[derive(Default)]
struct Scratch {
    routes: Vec<usize>,
    hot: Vec<usize>,
    vals: FieldValues,
}

struct Reader {
    j: Journal,
    router: Router,
    tx: mpsc::Sender<SourceEvent>,
    last_cursor: Option<String>,
    follow_fd: Option<i32>,
}

fn open_journal(spec: &JournalSpec) -> Result<Journal, SourceError> {
    let res = match spec {
        JournalSpec::System => OpenOptions::default().system(true).local_only(true).open(),
        JournalSpec::Directory(d) => {
            OpenDirectoryOptions::default().open_directory(d.as_os_str().as_encoded_bytes())
        }
        JournalSpec::Files(f) => OpenFilesOptions::default()
            .open_files(f.iter().map(|p| p.as_os_str().as_encoded_bytes())),
    };
    res.map_err(|e| SourceError::Open {
        what: match spec {
            JournalSpec::System => "system journal".into(),
            JournalSpec::Directory(d) => format!("directory {}", d.display()),
            JournalSpec::Files(f) => format!(
                "files {}",
                f.iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
        source: io::Error::from(e),
    })
}

/// Install the routes' journal-level groups in sd-journal; returns whether sd-journal now
/// evaluates the routes' alternatives exactly (no glob term was left out).
fn install_matches(j: &mut Journal, routes: &[Route]) -> io::Result<bool> {
    j.match_flush()?;
    let Some(groups) = journal_groups(routes) else {
        return Ok(false);
    };
    for (i, g) in groups.iter().enumerate() {
        if i > 0 {
            j.match_or()?;
        }
        for (field, value) in g {
            j.match_add(field.name(), value.as_bytes().to_vec())?;
        }
    }
    Ok(true)
}

impl Reader {
    fn open(
        cfg: &SourceConfig,
        routes: Arc<Vec<Route>>,
        generation: u64,
        tx: mpsc::Sender<SourceEvent>,
    ) -> Result<Reader, SourceError> {
        let mut j = open_journal(&cfg.spec)?;
        // Ask for the inotify fd right away so that no change between open and wait is lost.
        let follow_fd = if cfg.follow {
            Some(j.fd().map_err(io::Error::from)?)
        } else {
            None
        };
        let filtered = install_matches(&mut j, &routes)?;
        let mut r = Reader {
            j,
            router: Router::new(routes, generation, filtered),
            tx,
            last_cursor: None,
            follow_fd,
        };
        r.position(&cfg.start)?;
        Ok(r)
    }

    /// Whether inotify on the journal can be relied on (local file systems); else the wait
    /// has a backstop timeout.
    #[allow(unsafe_code)]
    fn reliable_fd(&self) -> bool {
        use foreign_types::ForeignType;
        // SAFETY: `as_ptr` is the live sd_journal of `self.j`; sd_journal_reliable_fd only
        // reads its state.
        unsafe { libsystemd_sys::journal::sd_journal_reliable_fd(self.j.as_ptr()) > 0 }
    }

    fn warn(&self, msg: String) {
        let _ = self.tx.blocking_send(SourceEvent::Warning(msg));
    }

    /// Seek so that the next `next()` returns the first entry to process.
    fn position(&mut self, start: &StartAt) -> io::Result<()> {
        match start {
            StartAt::Head => Ok(self.j.seek_head()?),
            StartAt::Tail => {
                // Find the last entry of the whole journal WITHOUT the routes' matches, then
                // resume after it with them. (`seek_tail` + `previous()` under matches that
                // match nothing yet — a new host, a vacuumed journal — left sd-journal where
                // the next write was read only in part: three failures written at once, one
                // read.)
                self.j.match_flush()?;
                self.j.seek_tail()?;
                let last = if self.j.previous()? > 0 {
                    self.j.cursor().ok()
                } else {
                    None
                };
                install_matches(&mut self.j, &self.router.routes)?;
                match last {
                    Some(c) => self.seek_past(&c),
                    None => Ok(self.j.seek_head()?),
                }
            }
            StartAt::Since(t) => Ok(self.j.seek_realtime_usec(*t)?),
            StartAt::Cursor(c) => self.seek_after_cursor(c),
        }
    }

    /// Position so that `next()` returns the first matching entry after the entry `c` (which
    /// exists, but may not match the routes).
    fn seek_past(&mut self, c: &str) -> io::Result<()> {
        self.j.seek_cursor(c.as_bytes().to_vec())?;
        self.last_cursor = Some(c.to_string());
        if self.j.next()? > 0 && !self.j.test_cursor(c.as_bytes().to_vec()).unwrap_or(false) {
            // Landed on a newer matching entry: step back so that next() returns it.
            if self.j.previous()? == 0 {
                self.j.seek_cursor(c.as_bytes().to_vec())?;
            }
        }
        Ok(())
    }

    fn seek_after_cursor(&mut self, c: &str) -> io::Result<()> {
        let valid = self.j.seek_cursor(c.as_bytes().to_vec()).is_ok();
        if valid && self.j.next()? > 0 && self.j.test_cursor(c.as_bytes().to_vec()).unwrap_or(false)
        {
            // On the saved entry: the following next() resumes right after it.
            self.last_cursor = Some(c.to_string());
            return Ok(());
        }
        // The entry is gone (vacuumed) or the cursor is not from this journal: resume at the
        // first entry after its timestamp and say how much was skipped.
        let Some(t) = cursor_realtime(c) else {
            self.warn(format!(
                "saved journal cursor {c:?} is not valid here; starting at the end of the journal"
            ));
            return self.position(&StartAt::Tail);
        };
        self.j.seek_realtime_usec(t + 1)?;
        let first = if self.j.next()? > 0 {
            let ts = self.j.timestamp_usec().ok();
            self.j.previous()?;
            ts
        } else {
            None
        };
        match first {
            Some(ts) => self.warn(format!(
                "saved journal position is no longer in the journal (vacuumed?); resuming at the \
                 first entry after it: {:.1} s of journal time skipped",
                ts.saturating_sub(t) as f64 / 1e6
            )),
            None => self.warn(
                "saved journal position is no longer in the journal (vacuumed?) and nothing \
                 newer is there; waiting for new entries"
                    .to_string(),
            ),
        }
        // Position so that next() yields the first entry with realtime > t.
        Ok(self.j.seek_realtime_usec(t + 1)?)
    }

    fn set_routes(&mut self, routes: Arc<Vec<Route>>, generation: u64) -> io::Result<()> {
        let here = self.j.cursor().ok().or_else(|| self.last_cursor.clone());
        let filtered = install_matches(&mut self.j, &routes)?;
        self.router = Router::new(routes, generation, filtered);
        match here {
            Some(c) => {
                self.j.seek_cursor(c.as_bytes().to_vec())?;
                // Land on the entry already read; next() goes on after it.
                if self.j.next()? > 0 && !self.j.test_cursor(c.as_bytes().to_vec()).unwrap_or(false)
                {
                    self.j.previous()?;
                }
            }
            None => self.position(&StartAt::Tail)?,
        }
        Ok(())
    }

    fn run(
        &mut self,
        cfg: &SourceConfig,
        ctl: std_mpsc::Receiver<Control>,
        wake: OwnedFd,
        urgency: &Urgency,
    ) -> io::Result<()> {
        let mut caught_up = false;
        let reliable = self.reliable_fd();
        // Per-entry scratch buffers, reused so the hot path does not allocate.
        let mut scratch = Scratch::default();
        let batch_max = cfg.batch.max(1);
        loop {
            while let Ok(c) = ctl.try_recv() {
                match c {
                    Control::Stop => return Ok(()),
                    Control::Routes(r, g) => self.set_routes(r, g)?,
                }
            }
            let mut batch = Batch {
                generation: self.router.generation,
                ..Default::default()
            };
            let mut at_end = false;
            while batch.entries < batch_max as u64 {
                match self.j.next() {
                    Ok(0) => {
                        at_end = true;
                        break;
                    }
                    Ok(_) => {
                        batch.entries += 1;
                        if let Err(e) = self.entry(&mut batch, &mut scratch) {
                            self.warn(format!("skipping an unreadable journal entry: {e}"));
                        }
                    }
                    Err(e) => {
                        self.warn(format!("journal read error (will wait for changes): {e}"));
                        at_end = true;
                        break;
                    }
                }
            }
            if batch.entries > 0 {
                batch.cursor = self.j.cursor().ok();
                if batch.cursor.is_some() {
                    self.last_cursor = batch.cursor.clone();
                }
                batch.stats = self.router.take_stats();
                if self.tx.blocking_send(SourceEvent::Batch(batch)).is_err() {
                    return Ok(());
                }
            }
            if !at_end {
                continue;
            }
            if !caught_up {
                caught_up = true;
                if self
                    .tx
                    .blocking_send(SourceEvent::CaughtUp(SourceKind::Journal))
                    .is_err()
                {
                    return Ok(());
                }
            }
            let Some(jfd) = self.follow_fd else {
                let _ = self
                    .tx
                    .blocking_send(SourceEvent::Ended(SourceKind::Journal));
                return Ok(());
            };
            // SAFETY: the fd belongs to the sd_journal object `self.j`, which is open for the
            // whole wait and closes it only when dropped.
            #[allow(unsafe_code)]
            let jfd = unsafe { BorrowedFd::borrow_raw(jfd) };
            wait::wait(jfd, &wake, urgency, reliable)?;
            // Let sd-journal pick up appends, new files, rotation and deletions.
            if let Err(e) = self.j.process() {
                self.warn(format!("journal change processing failed: {e}"));
            }
        }
    }

    /// Route and filter the current entry.
    ///
    /// The hot path reads the routing fields and MESSAGE, and runs one `RegexSet::is_match`
    /// per routed jail on the message borrowed from the journal's mmap. Only on a hit (rare)
    /// is the message copied and `_PID` read, and the matching pattern run for captures.
    fn entry(&mut self, batch: &mut Batch, scratch: &mut Scratch) -> io::Result<()> {
        let t = self.j.timestamp_usec()?;
        batch.last_time_us = t;
        let routes = &mut scratch.routes;
        let vals = &mut scratch.vals;
        vals.clear();
        for &f in &self.router.fields {
            if let Some(d) = self.j.get_data(f.cname())? {
                if let Some(v) = d.value() {
                    vals.set(f, v);
                }
            }
        }
        self.router.select(vals, routes);
        if routes.is_empty() {
            return Ok(());
        }
        let hot = &mut scratch.hot;
        hot.clear();
        let message = {
            let Some(f) = self.j.get_data(c"MESSAGE")? else {
                return Ok(());
            };
            let msg = String::from_utf8_lossy(f.value().unwrap_or_default());
            for &ri in routes.iter() {
                self.router.stats[ri].seen += 1;
                let route = &self.router.routes[ri];
                if route.filter.may_match(&msg) {
                    hot.push(ri);
                } else if route.report_missed && batch.missed.len() < MAX_MISSED_PER_BATCH {
                    batch.missed.push(Missed {
                        route: ri,
                        time_us: t,
                        message: msg.clone().into_owned(),
                    });
                }
            }
            if hot.is_empty() {
                return Ok(());
            }
            msg.into_owned()
        };
        let mut ctx = EntryCtx {
            time_us: t,
            pid: None,
            boot: 0,
        };
        if hot
            .iter()
            .any(|&ri| self.router.routes[ri].filter.uses_pid())
        {
            ctx.pid = self.j.get_data(c"_PID")?.and_then(|f| {
                f.value()
                    .and_then(|v| std::str::from_utf8(v).ok()?.parse().ok())
            });
            ctx.boot = self
                .j
                .get_data(c"_BOOT_ID")?
                .and_then(|f| f.value().map(boot_hash))
                .unwrap_or(0);
        }
        let pid = ctx.pid;
        let mut found = Vec::new();
        let router = &mut self.router;
        for &ri in hot.iter() {
            let st = &mut router.stats[ri];
            let out =
                router.routes[ri]
                    .filter
                    .apply_entry(&message, &ctx, &mut router.sessions[ri]);
            let missed = matches!(out, Outcome::Miss | Outcome::NoAddress { .. });
            if missed
                && router.routes[ri].report_missed
                && batch.missed.len() < MAX_MISSED_PER_BATCH
            {
                batch.missed.push(Missed {
                    route: ri,
                    time_us: t,
                    message: message.clone(),
                });
            }
            if let Some(f) = st.count(out, t) {
                found.push((ri, f));
            }
        }
        if found.is_empty() {
            return Ok(());
        }
        let unit = self.field(c"_SYSTEMD_UNIT")?;
        let ident = self.field(c"SYSLOG_IDENTIFIER")?;
        let hostname = self.field(c"_HOSTNAME")?;
        for (route, (regex, addr, user, counts)) in found {
            {
                batch.hits.push(Hit {
                    route,
                    addr,
                    user,
                    regex,
                    counts,
                    time_us: t,
                    message: message.clone(),
                    unit: unit.clone(),
                    ident: ident.clone(),
                    hostname: hostname.clone(),
                    pid,
                });
            }
        }
        Ok(())
    }

    fn field(&mut self, name: &CStr) -> io::Result<Option<String>> {
        Ok(self
            .j
            .get_data(name)?
            .and_then(|f| f.value().map(|v| String::from_utf8_lossy(v).into_owned())))
    }
}

/// A boot id (32 hex digits) folded into a u64 for session keys.
fn boot_hash(v: &[u8]) -> u64 {
    v.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

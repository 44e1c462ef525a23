//! One followed path through rotations: the file it names now (`cur`) and, after a rotation,
//! the file it named before (`old`), read to its end before the new one is read.
//!
//! - rename + create (logrotate's default): the path names a new inode. The old file is read
//!   on (the service may write to it until it reopens its log) and given up, its partial last
//!   line taken as a line, once the new file has data; then the new file is read from its
//!   start.
//! - delete + recreate: the same, with the old file already unlinked.
//! - copytruncate: the same inode gets shorter (or its first bytes change). What was written
//!   after the last read is in the copy (`NAME.1`, found by the fingerprint of its first bytes):
//!   it is read from there, then the file again from its start.
//! - rotation while f2bd was stopped: the saved inode is looked for among the rotated copies
//!   (by inode, or by fingerprint after a copytruncate) and read from the saved offset; the
//!   file the path names now is read from its start. Compressed copies are never read.
//!
//! The saved position is the old file's while there is one, so a crash in the middle of a
//! rotation resumes it the same way.

use std::fs::{self, File};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use nix::sys::inotify::WatchDescriptor;

use super::position::Position;
use super::tail::{Read, Tail, CHUNK};
use super::watch::{compressed, rotated_from, Watcher};

/// Where to begin in a file that has no saved position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Begin {
    /// After its last complete line.
    End,
    /// At its first byte.
    Start,
}

/// The state of a followed path, as `f2b status` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum State {
    Following,
    Missing,
    Unreadable(String),
}

impl State {
    pub(super) fn text(&self) -> String {
        match self {
            State::Following => "following".into(),
            State::Missing => "waiting: no such file".into(),
            State::Unreadable(e) => format!("waiting: {e}"),
        }
    }
}

/// A line sink: the bytes (no newline) and whether the line was cut.
pub(super) type LineFn<'a> = dyn FnMut(&[u8], bool) + 'a;

pub(super) struct Followed {
    pub(super) path: PathBuf,
    cur: Option<(Tail, Option<WatchDescriptor>)>,
    old: Option<(Tail, Option<WatchDescriptor>)>,
    pub(super) state: State,
    max_line: usize,
    /// Lines and cut lines read since the counters were last taken.
    pub(super) read: Read,
}

fn not_found(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::NotFound) || e.raw_os_error() == Some(libc::ENOTDIR)
}

impl Followed {
    pub(super) fn new(path: PathBuf, max_line: usize) -> Followed {
        Followed {
            path,
            cur: None,
            old: None,
            state: State::Missing,
            max_line,
            read: Read::default(),
        }
    }

    /// The watches of its open files.
    pub(super) fn watches(&self) -> impl Iterator<Item = WatchDescriptor> + '_ {
        [self.cur.as_ref(), self.old.as_ref()]
            .into_iter()
            .flatten()
            .filter_map(|(_, wd)| *wd)
    }

    /// The position to save: the old file's while it is being read, else the current one's.
    pub(super) fn position(&self) -> Option<Position> {
        self.old
            .as_ref()
            .or(self.cur.as_ref())
            .map(|(t, _)| t.position())
    }

    /// Stop following: close files and watches.
    pub(super) fn close(&mut self, w: &mut Watcher) {
        for (_, wd) in [self.cur.take(), self.old.take()].into_iter().flatten() {
            if let Some(wd) = wd {
                w.unwatch(wd);
            }
        }
    }

    fn set_state(&mut self, s: State, warn: &mut Vec<String>, jails: &str) {
        if s == self.state {
            return;
        }
        match &s {
            State::Missing => warn.push(format!(
                "{jails}: {} does not exist (yet); the jail waits for it",
                self.path.display()
            )),
            State::Unreadable(e) => warn.push(format!(
                "{jails}: cannot read {}: {e}; the jail waits until it can",
                self.path.display()
            )),
            State::Following => {}
        }
        self.state = s;
    }

    fn watched(&self, t: Tail, w: &mut Watcher) -> (Tail, Option<WatchDescriptor>) {
        let wd = w.watch_file(t.file(), &self.path);
        (t, wd)
    }

    /// Open the path for the first time (start of f2bd, or a jail added): at `saved` when
    /// it is there, else as `begin` says. Rotations while f2bd was stopped are caught up.
    pub(super) fn start(
        &mut self,
        saved: Option<Position>,
        begin: Begin,
        w: &mut Watcher,
        warn: &mut Vec<String>,
        jails: &str,
    ) {
        let meta = fs::metadata(&self.path);
        if let Some(pos) = saved {
            let same = meta.as_ref().is_ok_and(|m| pos.same_inode(m));
            if same {
                match File::open(&self.path) {
                    Ok(f) => {
                        let size = f.metadata().map(|m| m.len()).unwrap_or(0);
                        if pos.still_valid(&f, size).unwrap_or(false) {
                            if let Ok(t) = Tail::from_file(f, pos.offset, self.max_line) {
                                self.cur = Some(self.watched(t, w));
                                self.state = State::Following;
                                return;
                            }
                        } else if let Some(copy) = self.find_copy(&pos, |p, f, m| {
                            !p.same_inode(m) && p.still_valid(f, m.len()).unwrap_or(false)
                        }) {
                            // Truncated while f2bd was stopped (copytruncate): the copy
                            // holds the rest.
                            self.adopt_old(copy, pos.offset, w);
                        }
                    }
                    Err(e) => {
                        self.set_state(State::Unreadable(e.to_string()), warn, jails);
                        return;
                    }
                }
            } else if let Some(copy) = self.find_copy(&pos, |p, f, m| {
                p.same_inode(m) && p.still_valid(f, m.len()).unwrap_or(false)
            }) {
                self.adopt_old(copy, pos.offset, w);
            } else {
                warn.push(format!(
                    "{jails}: {} was rotated while f2bd was stopped and the rotated file is \
                     gone (compressed or deleted): lines written to it after f2bd stopped are \
                     not read",
                    self.path.display()
                ));
            }
            // Replaced (or truncated) while f2bd was stopped: the new file from its start.
            self.open_cur(0, w, warn, jails);
            return;
        }
        match meta {
            Err(e) if not_found(&e) => self.set_state(State::Missing, warn, jails),
            _ => {
                let at = match begin {
                    Begin::Start => 0,
                    Begin::End => last_line_end(&self.path).unwrap_or(0),
                };
                self.open_cur(at, w, warn, jails);
            }
        }
    }

    fn adopt_old(&mut self, f: File, offset: u64, w: &mut Watcher) {
        if let Ok(t) = Tail::from_file(f, offset, self.max_line) {
            self.old = Some(self.watched(t, w));
        }
    }

    fn open_cur(&mut self, at: u64, w: &mut Watcher, warn: &mut Vec<String>, jails: &str) {
        match Tail::open(&self.path, at, self.max_line) {
            Ok(t) => {
                self.cur = Some(self.watched(t, w));
                self.set_state(State::Following, warn, jails);
            }
            Err(e) if not_found(&e) => self.set_state(State::Missing, warn, jails),
            Err(e) => self.set_state(State::Unreadable(e.to_string()), warn, jails),
        }
    }

    /// A rotated copy of the path (`NAME.1`, `NAME-DATE`, not compressed) for which `ok`
    /// holds.
    fn find_copy(
        &self,
        pos: &Position,
        ok: impl Fn(&Position, &File, &fs::Metadata) -> bool,
    ) -> Option<File> {
        let dir = self.path.parent()?;
        let base = self.path.file_name()?.as_bytes();
        let mut names: Vec<PathBuf> = fs::read_dir(dir)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| !compressed(n) && rotated_from(n.as_bytes()) == Some(base))
            })
            .collect();
        names.sort();
        names.into_iter().find_map(|p| {
            let f = File::open(&p).ok()?;
            let m = f.metadata().ok()?;
            (m.is_file() && ok(pos, &f, &m)).then_some(f)
        })
    }

    /// Retire the current file: it was rotated away (or deleted).
    fn retire(&mut self, w: &mut Watcher, line: &mut LineFn<'_>) {
        self.finish_old(w, line);
        self.old = self.cur.take();
    }

    fn finish_old(&mut self, w: &mut Watcher, line: &mut LineFn<'_>) {
        if let Some((mut t, wd)) = self.old.take() {
            let mut chunk = Vec::new();
            self.add(t.read(&mut chunk, usize::MAX, line).unwrap_or_default());
            self.add(t.finish(line));
            if let Some(wd) = wd {
                w.unwatch(wd);
            }
        }
    }

    fn add(&mut self, r: Read) {
        self.read.lines += r.lines;
        self.read.cut += r.cut;
    }

    /// Look at the path and read what is new, up to about `budget` bytes of the current
    /// file. Returns whether more is there to read now.
    pub(super) fn check(
        &mut self,
        w: &mut Watcher,
        chunk: &mut Vec<u8>,
        budget: usize,
        line: &mut LineFn<'_>,
        warn: &mut Vec<String>,
        jails: &str,
    ) -> bool {
        match fs::metadata(&self.path) {
            Err(e) if not_found(&e) => {
                if self.cur.is_some() {
                    self.retire(w, line);
                }
                self.set_state(State::Missing, warn, jails);
            }
            Err(e) => self.set_state(State::Unreadable(e.to_string()), warn, jails),
            Ok(meta) => {
                let same =
                    (self.cur.as_ref()).map(|(t, _)| t.dev == meta.dev() && t.ino == meta.ino());
                match same {
                    Some(true) => self.truncated(w, line),
                    Some(false) => {
                        self.retire(w, line);
                        self.open_cur(0, w, warn, jails);
                    }
                    None => self.open_cur(0, w, warn, jails),
                }
            }
        }
        if let Some((t, _)) = &mut self.old {
            let r = t.read(chunk, usize::MAX, line).unwrap_or_default();
            self.add(r);
            let new_has_data = (self.cur.as_ref()).is_some_and(|(c, _)| c.size().unwrap_or(0) > 0);
            if new_has_data {
                self.finish_old(w, line);
            }
        }
        let Some((t, _)) = &mut self.cur else {
            return false;
        };
        if self.old.is_some() {
            return false;
        }
        match t.read(chunk, budget, line) {
            Ok(r) => {
                self.add(r);
                !r.eof
            }
            Err(e) => {
                warn.push(format!("{jails}: reading {}: {e}", self.path.display()));
                false
            }
        }
    }

    /// The current file was truncated or rewritten in place (copytruncate): read the rest
    /// of what was there from the copy, then the file from its start.
    fn truncated(&mut self, w: &mut Watcher, line: &mut LineFn<'_>) {
        let Some((t, _)) = &self.cur else { return };
        if !t.replaced_in_place().unwrap_or(false) {
            return;
        }
        let pos = t.position();
        if let Some(copy) = self.find_copy(&pos, |p, f, m| {
            !p.same_inode(m) && p.still_valid(f, m.len()).unwrap_or(false)
        }) {
            if let Ok(mut c) = Tail::from_file(copy, pos.offset, self.max_line) {
                let mut chunk = Vec::new();
                let r = c.read(&mut chunk, usize::MAX, line).unwrap_or_default();
                self.add(r);
                let r = c.finish(line);
                self.add(r);
            }
        }
        if let Some((t, _)) = &mut self.cur {
            let _ = t.restart();
        }
        let _ = w;
    }
}

/// The end of the last complete line of `path` (where to begin "at the end").
fn last_line_end(path: &Path) -> io::Result<u64> {
    let f = File::open(path)?;
    let size = f.metadata()?.len();
    let from = size.saturating_sub(CHUNK as u64);
    let mut buf = vec![0u8; (size - from) as usize];
    f.read_exact_at(&mut buf, from)?;
    Ok(match buf.iter().rposition(|&b| b == b'\n') {
        Some(i) => from + i as u64 + 1,
        None if from == 0 => 0,
        None => size,
    })
}

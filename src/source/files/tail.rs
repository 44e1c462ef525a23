//! One open log file read line by line from an offset, with bounded memory: a partial last
//! line waits (at most [`Tail::max_line`] bytes of it are kept) for its newline; a longer
//! line is cut there and the rest dropped up to its newline, and counted.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;

use super::position::{Fingerprint, Position, FP_MAX};

/// Bytes read from a file per `read` call at most (the chunk buffer is reused).
pub(super) const CHUNK: usize = 64 << 10;

/// A file being read.
#[derive(Debug)]
pub(super) struct Tail {
    file: File,
    pub(super) dev: u64,
    pub(super) ino: u64,
    /// Start of the first line not yet given out: the position to save.
    pub(super) offset: u64,
    /// Bytes read so far (the partial line, kept or dropped, is between `offset` and here).
    read_to: u64,
    /// The partial line's first bytes.
    pending: Vec<u8>,
    /// The partial line is longer than `max_line`.
    cut: bool,
    max_line: usize,
    fp: Fingerprint,
}

/// What a `read` found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Read {
    /// Complete lines given out.
    pub(super) lines: u64,
    /// Of them, cut at `max_line`.
    pub(super) cut: u64,
    /// The end of the file was reached.
    pub(super) eof: bool,
}

impl Tail {
    /// Open `path` at `offset` (the start of a line).
    pub(super) fn open(path: &Path, offset: u64, max_line: usize) -> io::Result<Tail> {
        let file = File::open(path)?;
        Tail::from_file(file, offset, max_line)
    }

    pub(super) fn from_file(file: File, offset: u64, max_line: usize) -> io::Result<Tail> {
        let meta = file.metadata()?;
        if meta.is_dir() {
            return Err(io::Error::other("is a directory"));
        }
        let fp = Fingerprint::of(&file, meta.len())?;
        Ok(Tail {
            file,
            dev: meta.dev(),
            ino: meta.ino(),
            offset,
            read_to: offset,
            pending: Vec::new(),
            cut: false,
            max_line,
            fp,
        })
    }

    pub(super) fn file(&self) -> &File {
        &self.file
    }

    pub(super) fn position(&self) -> Position {
        Position {
            dev: self.dev,
            ino: self.ino,
            offset: self.offset,
            fp: self.fp,
        }
    }

    /// The size of the file now.
    pub(super) fn size(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    /// Whether the file was truncated or rewritten under us (copytruncate, `> file`): it is
    /// shorter than what was read, or its first bytes changed.
    pub(super) fn replaced_in_place(&self) -> io::Result<bool> {
        Ok(self.size()? < self.read_to || !self.fp.matches(&self.file)?)
    }

    /// Start again at the beginning (after a truncation).
    pub(super) fn restart(&mut self) -> io::Result<()> {
        self.offset = 0;
        self.read_to = 0;
        self.pending.clear();
        self.cut = false;
        self.fp = Fingerprint::of(&self.file, self.size()?)?;
        Ok(())
    }

    /// Read up to `max_bytes` (at least one chunk), giving each complete line to `line` (the
    /// bytes without the newline, and whether it was cut).
    pub(super) fn read(
        &mut self,
        chunk: &mut Vec<u8>,
        max_bytes: usize,
        line: &mut dyn FnMut(&[u8], bool),
    ) -> io::Result<Read> {
        let mut r = Read::default();
        let mut budget = max_bytes.max(CHUNK);
        chunk.resize(CHUNK, 0);
        loop {
            let n = match self.file.read_at(chunk, self.read_to) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if n == 0 {
                r.eof = true;
                break;
            }
            self.take(&chunk[..n], &mut r, line);
            budget = budget.saturating_sub(n);
            if budget == 0 {
                break;
            }
        }
        if self.fp.len < FP_MAX && self.read_to > self.fp.len {
            self.fp = Fingerprint::of(&self.file, self.read_to)?;
        }
        Ok(r)
    }

    fn take(&mut self, mut data: &[u8], r: &mut Read, line: &mut dyn FnMut(&[u8], bool)) {
        while let Some(nl) = data.iter().position(|&b| b == b'\n') {
            let seg = &data[..nl];
            self.read_to += nl as u64 + 1;
            if self.pending.is_empty() && !self.cut {
                let cut = seg.len() > self.max_line;
                line(&seg[..seg.len().min(self.max_line)], cut);
                r.cut += u64::from(cut);
            } else {
                self.keep(seg);
                line(&self.pending, self.cut);
                r.cut += u64::from(self.cut);
                self.pending.clear();
                self.cut = false;
            }
            r.lines += 1;
            self.offset = self.read_to;
            data = &data[nl + 1..];
        }
        self.read_to += data.len() as u64;
        self.keep(data);
    }

    fn keep(&mut self, seg: &[u8]) {
        let room = self.max_line.saturating_sub(self.pending.len());
        if seg.len() > room {
            self.cut = true;
        }
        self.pending.extend_from_slice(&seg[..seg.len().min(room)]);
    }

    /// The file is done (rotated away and replaced): a partial last line is a line.
    pub(super) fn finish(&mut self, line: &mut dyn FnMut(&[u8], bool)) -> Read {
        let mut r = Read {
            eof: true,
            ..Read::default()
        };
        if self.read_to > self.offset {
            line(&self.pending, self.cut);
            r.lines = 1;
            r.cut = u64::from(self.cut);
            self.pending.clear();
            self.cut = false;
            self.offset = self.read_to;
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn lines(t: &mut Tail) -> (Vec<String>, Read) {
        let mut out = Vec::new();
        let mut chunk = Vec::new();
        let r = t
            .read(&mut chunk, 1 << 20, &mut |l, cut| {
                out.push(format!(
                    "{}{}",
                    String::from_utf8_lossy(l),
                    if cut { "…" } else { "" }
                ))
            })
            .unwrap();
        (out, r)
    }

    #[test]
    fn a_partial_last_line_waits_for_its_newline() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.log");
        let mut f = File::create(&p).unwrap();
        f.write_all(b"one\ntw").unwrap();
        let mut t = Tail::open(&p, 0, 100).unwrap();
        let (l, r) = lines(&mut t);
        assert_eq!(l, ["one"]);
        assert!(r.eof);
        assert_eq!(t.offset, 4, "the position is the start of the partial line");
        f.write_all(b"o\nthree\n").unwrap();
        assert_eq!(lines(&mut t).0, ["two", "three"]);
        assert_eq!(t.offset, 14);
        assert_eq!(lines(&mut t).0, Vec::<String>::new());
    }

    #[test]
    fn long_lines_are_cut_and_counted_with_bounded_memory() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.log");
        let mut f = File::create(&p).unwrap();
        let long = "x".repeat(3 * CHUNK);
        write!(f, "short\n{long}").unwrap();
        let mut t = Tail::open(&p, 0, 10).unwrap();
        let (l, r) = lines(&mut t);
        assert_eq!(l, ["short"]);
        assert!(t.pending.len() <= 10, "kept {} bytes", t.pending.len());
        assert_eq!(r.cut, 0);
        f.write_all(b"yz\nafter\n").unwrap();
        let (l, r) = lines(&mut t);
        assert_eq!(l, ["xxxxxxxxxx…", "after"]);
        assert_eq!(r.cut, 1);
        // A long line in one piece.
        writeln!(f, "{long}").unwrap();
        let (l, r) = lines(&mut t);
        assert_eq!(l, ["xxxxxxxxxx…"]);
        assert_eq!(r.cut, 1);
    }

    #[test]
    fn truncation_and_rewrite_are_noticed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.log");
        std::fs::write(&p, "first line\nsecond\n").unwrap();
        let mut t = Tail::open(&p, 0, 100).unwrap();
        lines(&mut t);
        assert!(!t.replaced_in_place().unwrap());
        std::fs::write(&p, "new\n").unwrap();
        assert!(t.replaced_in_place().unwrap(), "shorter");
        std::fs::write(&p, "other content, longer than before\n").unwrap();
        assert!(t.replaced_in_place().unwrap(), "first bytes changed");
        t.restart().unwrap();
        assert_eq!(lines(&mut t).0, ["other content, longer than before"]);
    }

    #[test]
    fn finish_gives_out_the_partial_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.log");
        std::fs::write(&p, "a\nb").unwrap();
        let mut t = Tail::open(&p, 0, 100).unwrap();
        lines(&mut t);
        let mut got = Vec::new();
        let r = t.finish(&mut |l, _| got.push(l.to_vec()));
        assert_eq!((got, r.lines), (vec![b"b".to_vec()], 1));
        assert_eq!(t.offset, 3);
    }
}

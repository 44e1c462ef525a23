//! Which files the `logpath` patterns name now, and inotify on them and on their directories.
//!
//! Directories are watched for entries created, moved and deleted (not for writes: a write to
//! any other file of /var/log does not wake the reader); followed files for writes and for
//! their own moves and deletion. A pattern's directories that do not exist yet are waited for
//! on their nearest existing ancestor, so `/var/log/nginx/error.log` is picked up when nginx
//! is installed later. Where inotify is not available (no instance or watch left, or a network
//! file system, whose remote writes inotify never reports) the reader looks at everything
//! every [`super::BACKSTOP`] instead.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};

/// File name endings of compressed files (rotated logs that are never read).
pub(super) const COMPRESSED: [&str; 9] = [
    ".gz", ".xz", ".zst", ".bz2", ".lz4", ".lzma", ".Z", ".br", ".zip",
];

/// Whether a file name is that of a compressed file.
pub(super) fn compressed(name: &OsStr) -> bool {
    let n = name.as_bytes();
    COMPRESSED.iter().any(|c| n.ends_with(c.as_bytes()))
}

/// `NAME.1`, `NAME-20261010`, `NAME.20261010`, `NAME-2026-10-10`…: a rotated copy of `NAME`.
pub(super) fn rotated_from(name: &[u8]) -> Option<&[u8]> {
    let digits_end = name.iter().rposition(|b| !b.is_ascii_digit())?;
    let mut stem_end = digits_end;
    // NAME-YYYY-MM-DD
    let tail = &name[digits_end + 1..];
    if tail.is_empty() {
        return None;
    }
    if tail.len() == 2 && name.len() >= 11 {
        let d = &name[name.len() - 11..];
        if d[0] == b'-' && d[5] == b'-' && d[8] == b'-' {
            stem_end = name.len() - 11;
            return (stem_end > 0).then(|| &name[..stem_end]);
        }
    }
    if !matches!(name[stem_end], b'.' | b'-' | b'_') || stem_end == 0 {
        return None;
    }
    Some(&name[..stem_end])
}

/// Glob match of one path component: `*`, `?`, `[abc]`, `[a-z]`, `[!x]`; a leading `.` is
/// only matched by a leading `.` in the pattern.
pub(super) fn glob_match(pat: &[u8], name: &[u8]) -> bool {
    if name.first() == Some(&b'.') && pat.first() != Some(&b'.') {
        return false;
    }
    let (mut p, mut i) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while i < name.len() {
        let step = match pat.get(p) {
            Some(b'*') => {
                star = Some((p, i));
                p += 1;
                continue;
            }
            Some(b'?') => Some(p + 1),
            Some(b'[') => class(pat, p, name[i]),
            Some(&c) if c == name[i] => Some(p + 1),
            _ => None,
        };
        match (step, star) {
            (Some(np), _) => {
                p = np;
                i += 1;
            }
            (None, Some((sp, si))) => {
                p = sp + 1;
                i = si + 1;
                star = Some((sp, si + 1));
            }
            (None, None) => return false,
        }
    }
    pat[p..].iter().all(|&c| c == b'*')
}

/// `[…]` at `p`: where the pattern goes on when `c` is in the class.
fn class(pat: &[u8], p: usize, c: u8) -> Option<usize> {
    let mut j = p + 1;
    let neg = matches!(pat.get(j), Some(b'!' | b'^'));
    if neg {
        j += 1;
    }
    let mut found = false;
    let mut first = true;
    while let Some(&x) = pat.get(j) {
        if x == b']' && !first {
            return (found != neg).then_some(j + 1);
        }
        first = false;
        if pat.get(j + 1) == Some(&b'-') && pat.get(j + 2).is_some_and(|&e| e != b']') {
            found |= (x..=pat[j + 2]).contains(&c);
            j += 3;
        } else {
            found |= x == c;
            j += 1;
        }
    }
    // No closing bracket: a literal '['.
    (c == b'[').then_some(p + 1)
}

fn is_glob(s: &[u8]) -> bool {
    s.iter().any(|b| matches!(b, b'*' | b'?' | b'['))
}

/// What the patterns name now.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Scan {
    /// Files, with the patterns (indices) that name them.
    pub(super) files: BTreeMap<PathBuf, Vec<usize>>,
    /// Directories to watch for new entries.
    pub(super) dirs: BTreeSet<PathBuf>,
    /// Patterns that name no file now.
    pub(super) unmatched: Vec<usize>,
}

/// Expand `patterns` (absolute paths, globs in any component).
pub(super) fn expand(patterns: &[String]) -> Scan {
    let mut scan = Scan::default();
    for (pi, pat) in patterns.iter().enumerate() {
        let comps: Vec<&OsStr> = Path::new(pat)
            .components()
            .filter_map(|c| match c {
                Component::Normal(s) => Some(s),
                _ => None,
            })
            .collect();
        let mut here = vec![PathBuf::from("/")];
        let mut found = false;
        for (ci, comp) in comps.iter().enumerate() {
            let last = ci + 1 == comps.len();
            let glob = is_glob(comp.as_bytes());
            let mut next = Vec::new();
            for dir in &here {
                if glob || last {
                    scan.dirs.insert(dir.clone());
                }
                if !glob {
                    let p = dir.join(comp);
                    match (last, p.is_dir()) {
                        (true, false) if !compressed(comp) && p.exists() => {
                            scan.files.entry(p).or_default().push(pi);
                            found = true;
                        }
                        (false, true) => next.push(p),
                        // Not there yet: wait for it on its parent.
                        (false, false) => {
                            scan.dirs.insert(dir.clone());
                        }
                        _ => {}
                    }
                    continue;
                }
                let Ok(rd) = std::fs::read_dir(dir) else {
                    continue;
                };
                let mut names: Vec<PathBuf> = Vec::new();
                for e in rd.flatten() {
                    let name = e.file_name();
                    if !glob_match(comp.as_bytes(), name.as_bytes()) {
                        continue;
                    }
                    let p = e.path();
                    match (last, p.is_dir()) {
                        (true, false) if !compressed(&name) => names.push(p),
                        (false, true) => next.push(p),
                        _ => {}
                    }
                }
                // Rotated copies of a matched file are not logs of their own.
                let stems: BTreeSet<Vec<u8>> = names
                    .iter()
                    .filter_map(|p| Some(p.file_name()?.as_bytes().to_vec()))
                    .collect();
                for p in names {
                    let n = p.file_name().map(OsStr::as_bytes).unwrap_or_default();
                    if rotated_from(n).is_some_and(|s| stems.contains(s)) {
                        continue;
                    }
                    scan.files.entry(p).or_default().push(pi);
                    found = true;
                }
            }
            here = next;
            if here.is_empty() {
                break;
            }
        }
        if !found {
            scan.unmatched.push(pi);
        }
    }
    scan
}

/// What inotify said.
#[derive(Debug, Default)]
pub(super) struct Changes {
    /// Watched files (by watch) written to or moved, deleted, changed.
    pub(super) files: Vec<WatchDescriptor>,
    /// Something changed in a watched directory (or events were lost): look again.
    pub(super) rescan: bool,
}

const DIR_MASK: AddWatchFlags = AddWatchFlags::IN_CREATE
    .union(AddWatchFlags::IN_MOVED_TO)
    .union(AddWatchFlags::IN_MOVED_FROM)
    .union(AddWatchFlags::IN_DELETE)
    .union(AddWatchFlags::IN_ATTRIB)
    .union(AddWatchFlags::IN_DELETE_SELF)
    .union(AddWatchFlags::IN_MOVE_SELF)
    .union(AddWatchFlags::IN_ONLYDIR);

const FILE_MASK: AddWatchFlags = AddWatchFlags::IN_MODIFY
    .union(AddWatchFlags::IN_ATTRIB)
    .union(AddWatchFlags::IN_MOVE_SELF)
    .union(AddWatchFlags::IN_DELETE_SELF);

/// File systems whose changes inotify does not see (made on other hosts).
const REMOTE_FS: [i64; 8] = [
    0x6969,      // NFS
    0x517b,      // SMB
    0xff53_4d42, // CIFS
    0xfe53_4d42, // SMB2
    0x6573_5546, // FUSE
    0x00c3_6400, // Ceph
    0x0102_1997, // 9p
    0x0bd0_0bd0, // Lustre
];

/// The inotify instance and its watches.
pub(super) struct Watcher {
    ino: Option<Inotify>,
    dirs: HashMap<PathBuf, WatchDescriptor>,
    /// inotify works for everything watched: no backstop needed.
    pub(super) reliable: bool,
    /// Why not (said once).
    pub(super) unreliable_why: Option<String>,
}

impl Watcher {
    pub(super) fn new() -> Watcher {
        match Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK) {
            Ok(i) => Watcher {
                ino: Some(i),
                dirs: HashMap::new(),
                reliable: true,
                unreliable_why: None,
            },
            Err(e) => Watcher {
                ino: None,
                dirs: HashMap::new(),
                reliable: false,
                unreliable_why: Some(format!("inotify is not available ({e})")),
            },
        }
    }

    pub(super) fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.ino.as_ref().map(|i| i.as_fd())
    }

    fn unreliable(&mut self, why: String) {
        if self.reliable {
            self.reliable = false;
            self.unreliable_why = Some(why);
        }
    }

    /// Watch exactly these directories; returns whether one was not watched before (what
    /// was made in it before its watch was added is only seen by looking again).
    pub(super) fn set_dirs(&mut self, dirs: &BTreeSet<PathBuf>) -> bool {
        let Some(ino) = &self.ino else { return false };
        let gone: Vec<PathBuf> = (self.dirs.keys())
            .filter(|d| !dirs.contains(*d))
            .cloned()
            .collect();
        for d in gone {
            if let Some(wd) = self.dirs.remove(&d) {
                let _ = ino.rm_watch(wd);
            }
        }
        let mut failed = None;
        let mut added = false;
        for d in dirs {
            if self.dirs.contains_key(d) {
                continue;
            }
            match ino.add_watch(d.as_path(), DIR_MASK) {
                Ok(wd) => {
                    self.dirs.insert(d.clone(), wd);
                    added = true;
                }
                Err(nix::errno::Errno::ENOENT | nix::errno::Errno::ENOTDIR) => {}
                Err(e) => failed = Some(format!("cannot watch {}: {e}", d.display())),
            }
        }
        if let Some(why) = failed {
            self.unreliable(why);
        }
        added
    }

    /// Watch an open file (its inode, wherever it is moved).
    pub(super) fn watch_file(&mut self, file: &File, path: &Path) -> Option<WatchDescriptor> {
        if let Ok(st) = nix::sys::statfs::fstatfs(file) {
            let t = st.filesystem_type().0;
            if REMOTE_FS.contains(&t) {
                self.unreliable(format!(
                    "{} is on a network file system (type {t:#x}), where inotify does not see \
                     other hosts' writes",
                    path.display()
                ));
            }
        }
        let ino = self.ino.as_ref()?;
        // The open file itself, not whatever the path names by now.
        let by_fd = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
        let res = ino
            .add_watch(by_fd.as_path(), FILE_MASK)
            .or_else(|_| ino.add_watch(path, FILE_MASK));
        match res {
            Ok(wd) => Some(wd),
            Err(e) => {
                self.unreliable(format!("cannot watch {}: {e}", path.display()));
                None
            }
        }
    }

    pub(super) fn unwatch(&mut self, wd: WatchDescriptor) {
        if let Some(i) = &self.ino {
            let _ = i.rm_watch(wd);
        }
    }

    /// Drain the events that are there (non-blocking).
    pub(super) fn changes(&mut self) -> io::Result<Changes> {
        let mut c = Changes::default();
        let Some(ino) = &self.ino else {
            return Ok(c);
        };
        loop {
            let events = match ino.read_events() {
                Ok(ev) => ev,
                Err(nix::errno::Errno::EAGAIN) => break,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            };
            for ev in events {
                if ev.mask.contains(AddWatchFlags::IN_Q_OVERFLOW)
                    || self.dirs.values().any(|wd| *wd == ev.wd)
                {
                    c.rescan = true;
                } else if !c.files.contains(&ev.wd) {
                    c.files.push(ev.wd);
                }
            }
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match(b"*.log", b"error.log"));
        assert!(!glob_match(b"*.log", b"error.log.1"));
        assert!(!glob_match(b"*.log", b".hidden.log"));
        assert!(glob_match(b"site[0-9]", b"site7"));
        assert!(!glob_match(b"site[!0-9]", b"site7"));
        assert!(glob_match(b"a?c", b"abc"));
        assert!(glob_match(b"*", b"x"));
        assert!(glob_match(b"[", b"["));
    }

    #[test]
    fn rotated_names() {
        assert_eq!(rotated_from(b"auth.log.1"), Some(&b"auth.log"[..]));
        assert_eq!(rotated_from(b"auth.log-20261010"), Some(&b"auth.log"[..]));
        assert_eq!(
            rotated_from(b"access.log-2026-10-10"),
            Some(&b"access.log"[..])
        );
        assert_eq!(rotated_from(b"auth.log"), None);
        assert_eq!(rotated_from(b"site2"), None);
        assert!(compressed(OsStr::new("auth.log.2.gz")));
        assert!(!compressed(OsStr::new("auth.log.1")));
    }

    #[test]
    fn expansion_skips_rotated_and_compressed_files_and_watches_missing_dirs() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        for f in [
            "a/logs/x.log",
            "a/logs/x.log.1",
            "a/logs/x.log.2.gz",
            "b/logs/y.log",
        ] {
            let p = root.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "").unwrap();
        }
        let r = root.display();
        let pats = vec![
            format!("{r}/*/logs/*"),
            format!("{r}/c/logs/z.log"),
            format!("{r}/a/logs/x.log"),
        ];
        let s = expand(&pats);
        let files: Vec<&PathBuf> = s.files.keys().collect();
        assert_eq!(
            files,
            [&root.join("a/logs/x.log"), &root.join("b/logs/y.log")]
        );
        assert_eq!(s.files[&root.join("a/logs/x.log")], [0, 2]);
        assert_eq!(s.unmatched, [1]);
        assert!(s.dirs.contains(root), "waits for c/ on its parent");
        assert!(s.dirs.contains(&root.join("a/logs")));
        assert!(s.dirs.contains(&root.join("b/logs")));
    }
}

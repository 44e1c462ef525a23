//! Where a followed file was left: device, inode, offset, and a fingerprint of its first
//! bytes, saved as text under the key `file:PATH` in the store's positions (the same
//! transaction as the decisions of the lines before it).
//!
//! The offset is the start of the first line not yet processed (a partial last line is read
//! again after a restart). The fingerprint (FNV-1a over the first [`FP_MAX`] bytes, or fewer
//! while the file is shorter) tells a file truncated and rewritten, or replaced by another with
//! the same inode, from the one that was read.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};

/// Bytes at the start of a file that make its fingerprint.
pub const FP_MAX: u64 = 1024;

/// A hash of a file's first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Fingerprint {
    /// Bytes hashed (less than [`FP_MAX`] while the file is shorter).
    pub len: u64,
    pub hash: u64,
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

impl Fingerprint {
    /// The fingerprint of `file`'s first `min(size, FP_MAX)` bytes.
    pub fn of(file: &File, size: u64) -> io::Result<Fingerprint> {
        Fingerprint::of_len(file, size.min(FP_MAX))
    }

    /// The fingerprint of exactly `len` first bytes (fewer when the file is shorter now).
    pub fn of_len(file: &File, len: u64) -> io::Result<Fingerprint> {
        let mut buf = vec![0u8; len as usize];
        let mut got = 0;
        while got < buf.len() {
            match file.read_at(&mut buf[got..], got as u64) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        buf.truncate(got);
        Ok(Fingerprint {
            len: got as u64,
            hash: fnv(&buf),
        })
    }

    /// Whether `file` starts with the bytes this fingerprint was taken of.
    pub fn matches(&self, file: &File) -> io::Result<bool> {
        Ok(Fingerprint::of_len(file, self.len)? == *self)
    }
}

/// A position in one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub dev: u64,
    pub ino: u64,
    pub offset: u64,
    pub fp: Fingerprint,
}

impl Position {
    /// `v1:DEV:INO:OFFSET:FPLEN:FPHASH` (hash in hex).
    pub fn encode(&self) -> String {
        format!(
            "v1:{}:{}:{}:{}:{:016x}",
            self.dev, self.ino, self.offset, self.fp.len, self.fp.hash
        )
    }

    pub fn decode(s: &str) -> Option<Position> {
        let mut it = s.strip_prefix("v1:")?.split(':');
        let mut n = || it.next()?.parse::<u64>().ok();
        let (dev, ino, offset, len) = (n()?, n()?, n()?, n()?);
        let hash = u64::from_str_radix(s.rsplit(':').next()?, 16).ok()?;
        (s.split(':').count() == 6 && len <= FP_MAX).then_some(Position {
            dev,
            ino,
            offset,
            fp: Fingerprint { len, hash },
        })
    }

    /// Whether `meta` is the file of this position (same device and inode).
    pub fn same_inode(&self, meta: &std::fs::Metadata) -> bool {
        meta.dev() == self.dev && meta.ino() == self.ino
    }

    /// Whether `file` (of size `size`) is still the file this position was taken in, with
    /// its bytes up to the offset in place: the same first bytes, and no shorter.
    pub fn still_valid(&self, file: &File, size: u64) -> io::Result<bool> {
        Ok(size >= self.offset && self.fp.matches(file)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn encodes_and_decodes() {
        let p = Position {
            dev: 2049,
            ino: 1_234_567,
            offset: 98_765,
            fp: Fingerprint {
                len: 1024,
                hash: 0xdead_beef_0102_0304,
            },
        };
        assert_eq!(Position::decode(&p.encode()), Some(p));
        assert_eq!(Position::decode("s=abc;i=1"), None);
        assert_eq!(Position::decode("v1:1:2:3:4"), None);
        assert_eq!(Position::decode("v1:1:2:3:99999:00"), None);
    }

    #[test]
    fn fingerprint_tells_a_rewritten_file() {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(b"Dec  1 10:00:00 h sshd[1]: one\n").unwrap();
        let fp = Fingerprint::of(&f, 31).unwrap();
        assert_eq!(fp.len, 31);
        assert!(fp.matches(&f).unwrap());
        f.write_all(b"more\n").unwrap();
        assert!(fp.matches(&f).unwrap(), "appending keeps the first bytes");
        f.set_len(0).unwrap();
        assert!(!fp.matches(&f).unwrap(), "truncated");
        f.write_all(b"Dec  1 10:00:01 h sshd[1]: two\n").unwrap();
        assert!(!fp.matches(&f).unwrap(), "rewritten");
    }
}

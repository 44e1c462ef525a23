//! The matched lines a ban report shows, kept per jail in one bounded ring rather than per
//! address: a distributed attack opens a window per address, and most never ban, so their
//! lines would be memory spent for nothing. The ring holds the jail's latest lines (at most
//! [`RING_LINES`], and [`RING_BYTES`] of text), each with its address and time; a ban takes
//! the lines of its address that are still there. Under a flood of other addresses a ban may
//! therefore show fewer lines than it counted failures.

use std::collections::VecDeque;

use ipnet::IpNet;

/// Lines a ban report shows at most.
pub const MAX_LINES: usize = 10;
/// A kept line is cut to this many bytes (and marked with "…").
pub const MAX_LINE_BYTES: usize = 256;
/// Lines the ring holds at most.
pub const RING_LINES: usize = 1024;
/// Bytes of text the ring holds at most.
pub const RING_BYTES: usize = 128 << 10;

/// One jail's latest lines.
#[derive(Debug, Default)]
pub struct Lines {
    ring: VecDeque<(IpNet, u64, Box<str>)>,
    bytes: usize,
}

/// `line`, cut to [`MAX_LINE_BYTES`] at a character boundary.
fn cut(line: &str) -> Box<str> {
    if line.len() <= MAX_LINE_BYTES {
        return line.into();
    }
    let mut end = MAX_LINE_BYTES;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &line[..end]).into()
}

impl Lines {
    /// Keep `line`, a failure of `key` at `t`; the oldest lines make room.
    pub fn push(&mut self, key: IpNet, t: u64, line: &str) {
        let line = cut(line);
        self.bytes += line.len();
        self.ring.push_back((key, t, line));
        while self.ring.len() > RING_LINES || self.bytes > RING_BYTES {
            match self.ring.pop_front() {
                Some((_, _, l)) => self.bytes -= l.len(),
                None => break,
            }
        }
    }

    /// Remove and return the lines of `key` logged at or after `since`, the latest
    /// [`MAX_LINES`] of them, oldest first; the older ones of `key` are dropped as well.
    pub fn take(&mut self, key: &IpNet, since: u64) -> Vec<String> {
        let mut out = Vec::new();
        let mut bytes = 0;
        self.ring.retain(|(k, t, l)| {
            if k != key {
                return true;
            }
            bytes += l.len();
            if *t >= since {
                out.push(l.to_string());
            }
            false
        });
        self.bytes -= bytes;
        if out.len() > MAX_LINES {
            out.drain(..out.len() - MAX_LINES);
        }
        out
    }

    /// Forget the lines of `key`.
    pub fn forget(&mut self, key: &IpNet) {
        self.take(key, u64::MAX);
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.ring.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn a_ban_takes_its_latest_lines() {
        let mut l = Lines::default();
        let (a, b) = (net("192.0.2.1/32"), net("192.0.2.2/32"));
        for i in 0..15u64 {
            l.push(a, i, &format!("a{i}"));
            l.push(b, i, &format!("b{i}"));
        }
        let got = l.take(&a, 0);
        assert_eq!(got, (5..15).map(|i| format!("a{i}")).collect::<Vec<_>>());
        assert_eq!(l.len(), 15, "a's lines are gone, b's stay");
        // Lines from before the window (an evicted or lapsed one) are not reported.
        assert_eq!(l.take(&b, 12), ["b12", "b13", "b14"]);
        assert!(l.is_empty());
    }

    #[test]
    fn the_ring_is_bounded_in_lines_and_bytes() {
        let mut l = Lines::default();
        for i in 0..(RING_LINES as u32 + 10) {
            l.push(IpNet::from(std::net::IpAddr::from(i.to_be_bytes())), 0, "x");
        }
        assert_eq!(l.len(), RING_LINES);
        let long = "é".repeat(400);
        for i in 0..2000u32 {
            l.push(
                IpNet::from(std::net::IpAddr::from(i.to_be_bytes())),
                0,
                &long,
            );
        }
        assert!(l.bytes <= RING_BYTES && l.len() <= RING_BYTES / MAX_LINE_BYTES);
        let one = l.take(
            &IpNet::from(std::net::IpAddr::from(1999u32.to_be_bytes())),
            0,
        );
        assert!(one[0].ends_with('…') && one[0].len() <= MAX_LINE_BYTES + 3);
    }
}

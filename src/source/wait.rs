//! How the reader waits for new journal entries, and why it sometimes does not wait for
//! journald to say so.
//!
//! sd-journal readers learn of appends from inotify on the journal files. journald does not
//! touch a file's inode for each entry: after an append it arms a timer and, when it fires,
//! "posts the change" (an `ftruncate()` to the file's own size, which is what inotify reports
//! as IN_MODIFY). The timer is `POST_CHANGE_TIMER_INTERVAL_USEC`, 250 ms, in
//! `src/journal/journald-server.c` (`journal_file_enable_post_change_timer()` when a journal
//! file is opened), and changes within it are coalesced. So a reader that sleeps until inotify
//! fires sees a failure up to 250 ms after sshd logged it — another password try for the
//! attacker each time.
//!
//! The entries themselves are readable at once: journald writes them into the memory-mapped
//! file, and sd-journal reads the file's header and entry arrays from the same pages. So while
//! an attack is under way (the engine says until when: the newest failure plus the jails'
//! longest findtime, see [`Urgency`]), the reader looks for new entries every
//! [`URGENT_INTERVAL`] instead of waiting; otherwise it sleeps in `poll(2)` on the journal's
//! inotify fd and its wake pipe with no timeout at all — no wake-ups while nothing happens.
//! Where inotify cannot be relied on (`sd_journal_reliable_fd()` says so: journals on network
//! file systems), a [`BACKSTOP`] timeout bounds the wait.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout};

use crate::clock::now_us;

/// How often the reader looks for new entries while an attack is under way.
pub const URGENT_INTERVAL: Duration = Duration::from_millis(10);
/// The longest wait where inotify is not reliable.
pub const BACKSTOP: Duration = Duration::from_secs(2);

/// Until when (wall clock, µs since the epoch) the reader should not wait for journald's
/// notifications. Shared between the engine (which sets it) and the reader thread.
#[derive(Debug, Clone, Default)]
pub struct Urgency(Arc<AtomicU64>);

impl Urgency {
    /// Look for entries on a short interval until `until_us`.
    pub fn set_until(&self, until_us: u64) {
        self.0.store(until_us, Ordering::Relaxed);
    }

    pub fn until(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    fn active(&self) -> bool {
        now_us() < self.until()
    }
}

/// A pipe to wake the reader thread (route changes, stop, urgency).
pub(super) struct WakePipe {
    rx: OwnedFd,
    tx: OwnedFd,
}

impl WakePipe {
    pub(super) fn new() -> io::Result<WakePipe> {
        let (rx, tx) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
        Ok(WakePipe { rx, tx })
    }

    /// Split into the reading end (the reader's) and a [`Waker`].
    pub(super) fn split(self) -> (OwnedFd, Waker) {
        (self.rx, Waker(self.tx))
    }
}

/// The writing end of the wake pipe.
pub(super) struct Waker(OwnedFd);

impl Waker {
    pub(super) fn wake(&self) {
        // A full pipe already wakes the reader: nothing lost.
        let _ = nix::unistd::write(&self.0, &[1u8]);
    }
}

/// Wait for journal changes, a wake-up, or the urgent interval. Returns after draining the
/// wake pipe; the caller then lets sd-journal process the changes and reads on.
pub(super) fn wait(
    journal_fd: BorrowedFd<'_>,
    wake: &OwnedFd,
    urgency: &Urgency,
    reliable: bool,
) -> io::Result<()> {
    let timeout = if urgency.active() {
        PollTimeout::try_from(URGENT_INTERVAL).expect("small")
    } else if reliable {
        PollTimeout::NONE
    } else {
        PollTimeout::try_from(BACKSTOP).expect("small")
    };
    let mut fds = [
        PollFd::new(journal_fd, PollFlags::POLLIN),
        PollFd::new(wake.as_fd(), PollFlags::POLLIN),
    ];
    match nix::poll::poll(&mut fds, timeout) {
        Ok(_) | Err(nix::errno::Errno::EINTR) => {}
        Err(e) => return Err(e.into()),
    }
    if fds[1].any().unwrap_or(false) {
        let mut buf = [0u8; 64];
        while matches!(nix::unistd::read(wake, &mut buf), Ok(n) if n > 0) {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urgency_expires() {
        let u = Urgency::default();
        assert!(!u.active());
        u.set_until(now_us() + 60_000_000);
        assert!(u.active());
        u.set_until(now_us().saturating_sub(1));
        assert!(!u.active());
    }

    #[test]
    fn a_wake_up_ends_an_endless_wait() {
        let (rx, waker) = WakePipe::new().unwrap().split();
        let (jr, _jw) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
        waker.wake();
        wait(jr.as_fd(), &rx, &Urgency::default(), true).unwrap();
    }
}

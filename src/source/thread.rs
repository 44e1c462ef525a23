//! The owner's end of a reader thread (the journal reader's and the file reader's): its
//! control channel, the waker that interrupts its wait, and the thread, stopped and joined
//! when the handle goes.

use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;

use super::wait::Waker;

/// What a reader thread is told (`R`: its route type).
pub(super) enum Control<R> {
    /// New routes; hits of them carry the generation.
    Routes(Arc<Vec<R>>, u64),
    Stop,
}

/// A running reader thread. Dropping it stops the thread and waits for it.
pub(super) struct ReaderThread<R> {
    ctl: std_mpsc::Sender<Control<R>>,
    waker: Waker,
    thread: Option<JoinHandle<()>>,
}

impl<R> ReaderThread<R> {
    pub(super) fn new(
        ctl: std_mpsc::Sender<Control<R>>,
        waker: Waker,
        thread: JoinHandle<()>,
    ) -> Self {
        ReaderThread {
            ctl,
            waker,
            thread: Some(thread),
        }
    }

    /// Hand the thread new routes and wake it.
    pub(super) fn set_routes(&self, routes: Vec<R>, generation: u64) {
        let _ = self.ctl.send(Control::Routes(Arc::new(routes), generation));
        self.waker.wake();
    }

    /// Interrupt the thread's wait.
    pub(super) fn wake(&self) {
        self.waker.wake();
    }
}

impl<R> Drop for ReaderThread<R> {
    fn drop(&mut self) {
        let _ = self.ctl.send(Control::Stop);
        self.waker.wake();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

//! Group commit for directory fsyncs. Every `accept` must fsync the queue directory after its
//! rename; done naively that is one extra serial fsync per message. Here each caller takes a
//! ticket after its rename; one caller at a time runs `fsync(dir)` covering every ticket issued
//! before it started, and the others wait for a sync that covers their ticket.

use std::fs::File;
use std::sync::{Condvar, Mutex, PoisonError};

#[derive(Default)]
struct Counters {
    /// Highest ticket handed out.
    issued: u64,
    /// Every ticket up to this one is durable.
    synced: u64,
    running: bool,
}

pub(crate) struct GroupSync {
    dir: File,
    state: Mutex<Counters>,
    done: Condvar,
}

impl GroupSync {
    pub(crate) fn new(dir: File) -> GroupSync {
        GroupSync {
            dir,
            state: Mutex::new(Counters::default()),
            done: Condvar::new(),
        }
    }

    /// Returns once a directory fsync that started after this call has completed.
    pub(crate) fn sync(&self) -> std::io::Result<()> {
        let mut g = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        g.issued += 1;
        let ticket = g.issued;
        loop {
            if g.synced >= ticket {
                return Ok(());
            }
            if g.running {
                g = self.done.wait(g).unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            g.running = true;
            let target = g.issued;
            drop(g);
            let result = self.dir.sync_all();
            g = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            g.running = false;
            if result.is_ok() {
                g.synced = g.synced.max(target);
            }
            self.done.notify_all();
            result?;
        }
    }
}

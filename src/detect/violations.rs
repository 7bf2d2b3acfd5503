//! The violation writer: records Detect's changes (violation changes, fleet event changes and
//! releases) in SQLite on a thread of its own, in the order they were queued. Everything queued while one transaction commits goes into the next
//! one, so several batches share one fsync (group commit, as the history WAL does) and the
//! engine lock is never held across a SQLite commit.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel, sync_channel};
use thingward_store::{DetectChange, Store, StoreError};

/// Told the outcome once a job's records are committed (or failed).
pub(super) type Done = Box<dyn FnOnce(Result<(), Arc<StoreError>>) + Send>;

/// Records to commit, and whom to tell.
struct Job {
    records: Vec<DetectChange>,
    done: Done,
}

/// The queue of the writer thread; the thread stops once this is dropped and the queue drained.
#[derive(Debug)]
pub(super) struct ViolationWriter {
    queue: Sender<Job>,
}

/// Why records were not queued: the writer thread is gone (it only stops when its queue is
/// dropped, so this means it panicked).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the violation writer stopped")]
pub(crate) struct WriterGone;

impl ViolationWriter {
    /// Starts the writer thread.
    ///
    /// # Errors
    /// The thread could not be spawned.
    pub(super) fn start(store: Arc<dyn Store>) -> std::io::Result<Self> {
        let (queue, jobs) = channel();
        std::thread::Builder::new()
            .name("thingward-violations".into())
            .spawn(move || run(&*store, &jobs))?;
        Ok(Self { queue })
    }

    /// Queues `records`; `done` runs on the writer thread once they are committed.
    ///
    /// # Errors
    /// [`WriterGone`]; `done` is dropped uncalled.
    pub(super) fn submit(&self, records: Vec<DetectChange>, done: Done) -> Result<(), WriterGone> {
        self.queue
            .send(Job { records, done })
            .map_err(|_| WriterGone)
    }

    /// Queues `records` and blocks until they are committed (reload and sweep, which are rare).
    ///
    /// # Errors
    /// The store's error, or [`WriterGone`].
    pub(super) fn apply_blocking(
        &self,
        records: Vec<DetectChange>,
    ) -> Result<Result<(), Arc<StoreError>>, WriterGone> {
        self.submit_waiter(records)?.recv().map_err(|_| WriterGone)
    }

    /// Queues `records` and returns where the outcome arrives (so that a caller can queue
    /// under the engine lock and wait after releasing it).
    ///
    /// # Errors
    /// [`WriterGone`].
    pub(super) fn submit_waiter(
        &self,
        records: Vec<DetectChange>,
    ) -> Result<Receiver<Result<(), Arc<StoreError>>>, WriterGone> {
        let (tx, rx) = sync_channel(1);
        self.submit(
            records,
            Box::new(move |result| {
                let _ = tx.send(result);
            }),
        )?;
        Ok(rx)
    }
}

/// The writer thread: one transaction per group of queued jobs, in queue order.
fn run(store: &dyn Store, jobs: &Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut records = first.records;
        let mut done = vec![first.done];
        for job in jobs.try_iter() {
            records.extend(job.records);
            done.push(job.done);
        }
        // A failure refuses every batch of the group (each gets a 5xx and may retry).
        let result = store.detect_apply(&records).map(drop).map_err(Arc::new);
        for done in done {
            done(result.clone());
        }
    }
}

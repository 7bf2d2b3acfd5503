//! The group committer: writers enqueue encoded records; one thread writes everything that
//! accumulated, covers it with one `fdatasync`, then runs the callbacks.

use crate::error::Error;
use crate::wal::SegmentWriter;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Called once a batch is durable (`Ok`) or failed (`Err`).
pub(crate) type Callback = Box<dyn FnOnce(Result<(), Error>) + Send>;

/// Locks a mutex, ignoring poison: every critical section here leaves its data consistent
/// (callbacks, the only foreign code, run outside all locks and under `catch_unwind`).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

struct Pending {
    record: Vec<u8>,
    on_durable: Callback,
}

#[derive(Default)]
struct Queue {
    pending: Vec<Pending>,
    bytes: usize,
    /// When the oldest pending record arrived.
    oldest: Option<Instant>,
    closed: bool,
    /// The write or sync error that stopped the log.
    failed: Option<Arc<io::Error>>,
}

/// How the committer groups.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Grouping {
    /// The longest a record waits for company before the group is synced.
    pub(crate) interval: Duration,
    /// A group this big is synced without waiting out the interval.
    pub(crate) group_bytes: usize,
    /// Writers block while this much is pending (backpressure).
    pub(crate) max_pending_bytes: usize,
}

/// State shared by the writers, the committer thread and `roll`.
pub(crate) struct Shared {
    queue: Mutex<Queue>,
    /// Wakes the committer.
    wake: Condvar,
    /// Wakes writers waiting for queue space.
    space: Condvar,
    /// The WAL writer; `roll` takes it briefly to seal the active segment.
    pub(crate) writer: Mutex<SegmentWriter>,
    grouping: Grouping,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let q = lock(&self.queue);
        f.debug_struct("Shared")
            .field("pending", &q.pending.len())
            .field("pending_bytes", &q.bytes)
            .field("closed", &q.closed)
            .field("failed", &q.failed)
            .field("grouping", &self.grouping)
            .finish_non_exhaustive()
    }
}

impl Shared {
    pub(crate) fn new(writer: SegmentWriter, grouping: Grouping) -> Self {
        Self {
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            space: Condvar::new(),
            writer: Mutex::new(writer),
            grouping,
        }
    }

    /// Queues a framed record. On refusal the callback is dropped uncalled.
    pub(crate) fn enqueue(&self, record: Vec<u8>, on_durable: Callback) -> Result<(), Error> {
        let mut q = lock(&self.queue);
        loop {
            if q.closed {
                return Err(Error::Closed);
            }
            if let Some(e) = &q.failed {
                return Err(Error::WalFailed(Arc::clone(e)));
            }
            if q.pending.is_empty() || q.bytes + record.len() <= self.grouping.max_pending_bytes {
                break;
            }
            q = self.space.wait(q).unwrap_or_else(PoisonError::into_inner);
        }
        if q.pending.is_empty() {
            q.oldest = Some(Instant::now());
        }
        q.bytes += record.len();
        q.pending.push(Pending { record, on_durable });
        drop(q);
        self.wake.notify_one();
        Ok(())
    }

    /// Refuses further records and lets the committer drain and exit.
    pub(crate) fn close(&self) {
        lock(&self.queue).closed = true;
        self.wake.notify_all();
        self.space.notify_all();
    }

    /// The error that stopped the log, if any.
    pub(crate) fn failure(&self) -> Option<Arc<io::Error>> {
        lock(&self.queue).failed.clone()
    }

    /// Waits for the next group; `None` once closed and drained. `linger` allows waiting for
    /// company once a record is queued.
    fn next_group(&self, linger: bool) -> Option<(Vec<Pending>, Option<Arc<io::Error>>)> {
        let mut q = lock(&self.queue);
        while q.pending.is_empty() && !q.closed {
            q = self.wake.wait(q).unwrap_or_else(PoisonError::into_inner);
        }
        if q.pending.is_empty() {
            return None;
        }
        // Linger for company, at most `interval` after the oldest record arrived. A group that
        // waited behind the previous sync is usually past its deadline already.
        if let Some(oldest) = q.oldest.filter(|_| linger) {
            let deadline = oldest + self.grouping.interval;
            while !q.closed && q.bytes < self.grouping.group_bytes {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                q = self
                    .wake
                    .wait_timeout(q, deadline - now)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
        }
        let group = std::mem::take(&mut q.pending);
        q.bytes = 0;
        q.oldest = None;
        let failed = q.failed.clone();
        drop(q);
        self.space.notify_all();
        Some((group, failed))
    }
}

/// The committer thread's body.
///
/// The committer lingers only after a group of several batches: that is the sign of concurrent
/// writers whose batches can share a sync. A lone writer calling `append_sync` in a loop would
/// gain nothing from waiting and would lose the whole interval on every batch.
pub(crate) fn run(shared: &Shared) {
    let mut linger = false;
    while let Some((group, failed)) = shared.next_group(linger) {
        linger = group.len() > 1;
        let result = match failed {
            Some(e) => Err(e),
            None => {
                let written =
                    lock(&shared.writer).write_group(group.iter().map(|p| p.record.as_slice()));
                written.map_err(|e| {
                    let e = Arc::new(e);
                    tracing::error!(
                        error = %e, batches = group.len(),
                        "Write-ahead log write failed; refusing writes until the history is reopened"
                    );
                    lock(&shared.queue).failed = Some(Arc::clone(&e));
                    e
                })
            }
        };
        for pending in group {
            let outcome = result.clone().map_err(Error::WalFailed);
            let callback = pending.on_durable;
            if catch_unwind(AssertUnwindSafe(move || callback(outcome))).is_err() {
                tracing::error!("A durability callback panicked; the committer carries on");
            }
        }
    }
}

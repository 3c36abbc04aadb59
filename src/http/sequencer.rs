//! The sequencer: the one thread that writes to the ledger, with group commit.
//!
//! Requests arrive already verified ([`VerifiedEnvelope`]s) as [`Job`]s on a bounded
//! channel. The writer thread blocks for the first job, then drains whatever else is
//! queued, up to [`BATCH_ENTRIES_MAX`] entries, into one [`Ledger::submit`] — one
//! fdatasync for all of them — and answers each job through its oneshot. Blocking I/O
//! thus stays off the tokio runtime, and under load one fsync serves many requests.
//!
//! Backpressure: a job takes one permit per entry from a semaphore of
//! [`QUEUE_ENTRIES_MAX`] before it is queued and gives them back when answered, so the
//! memory held by queued entries is bounded; when permits run out the request is told
//! to come back later (429) instead of waiting.
//!
//! Readers share the ledger through an `RwLock`; the writer takes the write lock only
//! around `submit`, so reads see either the state before a batch or after it.
//!
//! Work that must read the ledger and then write with nothing written in between (a
//! match run: its entries must follow the state the matcher read) is queued as well,
//! with [`Sequencer::exclusive`], and runs on the writer thread between two batches
//! with a [`Writer`]: reads under the read lock, submits under the write lock.
//!
//! ```no_run
//! # use lesson_ledger::http::sequencer::Sequencer;
//! # use std::sync::{Arc, RwLock};
//! # fn f(ledger: Arc<RwLock<lesson_ledger::ledger::writer::Ledger>>) {
//! let (sequencer, writer) = Sequencer::start(ledger);
//! // ... hand `sequencer` to the router; on shutdown:
//! # let rt = tokio::runtime::Runtime::new().unwrap();
//! rt.block_on(sequencer.stop());
//! writer.join().unwrap();
//! # }
//! ```

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::thread::JoinHandle;

use tokio::sync::{mpsc, oneshot, watch, OwnedSemaphorePermit, Semaphore};

use crate::ledger::error::RuleError;
use crate::ledger::writer::{Ledger, LedgerError};
use crate::limits::BATCH_ENTRIES_MAX;
use crate::log::envelope::VerifiedEnvelope;
use crate::log::store::Outcome;

pub use crate::limits::QUEUE_ENTRIES_MAX;

/// Seconds a client is asked to wait (`Retry-After`) when the queue is full.
pub const RETRY_AFTER_SECS: u64 = 1;

/// What a job is answered with: each entry's outcome, or the fault that stopped the batch.
pub type JobResult = Result<Vec<Outcome<RuleError>>, String>;

/// One request's verified entries and where to send their outcomes.
struct Job {
    entries: Vec<VerifiedEnvelope>,
    reply: oneshot::Sender<JobResult>,
    /// Held until the job is answered: the queue's memory bound.
    _permits: OwnedSemaphorePermit,
}

/// Work run on the writer thread with the ledger to itself (see [`Sequencer::exclusive`]).
struct Exclusive {
    work: Box<dyn FnOnce(&mut Writer<'_>) + Send>,
    /// Held until the work is done, like a job's.
    _permits: OwnedSemaphorePermit,
}

/// The writer thread's hold on the ledger, lent to exclusive work: nothing else writes
/// while the work has it.
pub struct Writer<'a> {
    ledger: &'a RwLock<Ledger>,
    stats: &'a WriterStats,
    committed: &'a watch::Sender<u64>,
}

impl Writer<'_> {
    /// The ledger under the read lock (readers go on; no writer can come in between).
    pub fn read(&self) -> RwLockReadGuard<'_, Ledger> {
        // A poisoned lock means a reader panicked; readers change nothing.
        self.ledger.read().unwrap_or_else(|p| p.into_inner())
    }

    /// One group commit under the write lock, counted in the writer's stats.
    ///
    /// # Errors
    /// As [`Ledger::submit`]; the writer then refuses further work.
    pub fn submit(
        &mut self,
        batch: Vec<VerifiedEnvelope>,
    ) -> Result<Vec<Outcome<RuleError>>, LedgerError> {
        let result = {
            // A poisoned lock means a reader panicked; the ledger itself guards its
            // writes (a failed append leaves it refusing further ones), so carry on.
            let mut guard = self.ledger.write().unwrap_or_else(|p| p.into_inner());
            let started = std::time::Instant::now();
            let result = guard.submit(batch);
            let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
            self.stats.busy_micros.fetch_add(micros, Ordering::Relaxed);
            // The witness hook: whoever follows the log (the tlog-witness submitters)
            // hears of each new committed size; nobody waits on them.
            let size = guard.log().size();
            self.committed.send_if_modified(|held| {
                let grew = *held != size;
                *held = size;
                grew
            });
            result
        };
        match &result {
            Ok(outcomes) => {
                let appended = outcomes
                    .iter()
                    .filter(|o| matches!(o, Outcome::Ok(_)))
                    .count();
                self.stats
                    .appended
                    .fetch_add(appended as u64, Ordering::Relaxed);
                if appended > 0 {
                    self.stats.batches.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, code = e.code(), "group commit failed; the writer stops accepting entries");
                self.stats.failed.store(true, Ordering::Release);
            }
        }
        result
    }
}

enum Msg {
    Job(Job),
    Exclusive(Exclusive),
    /// Sent after the server stopped accepting requests: everything queued before it is
    /// written first, then the writer exits.
    Stop,
}

/// Counters the writer keeps, for `/metrics`.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Entries newly appended.
    pub appended: AtomicU64,
    /// Group commits (calls to `submit` that wrote).
    pub batches: AtomicU64,
    /// Entries waiting in the queue.
    pub queued: AtomicU64,
    /// Microseconds the writer spent in `submit` (write lock held): busy time near the
    /// wall time means the ledger itself, not HTTP, limits the append rate.
    pub busy_micros: AtomicU64,
    /// Set once a submit failed: the ledger handle refuses further writes.
    pub failed: AtomicBool,
}

/// Why an entry could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    #[error("the append queue is full")]
    Full,
    #[error("the writer has stopped")]
    Stopped,
    #[error("the writer failed")]
    Failed,
}

impl QueueError {
    /// Stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            QueueError::Full => "queue_full",
            QueueError::Stopped => "shutting_down",
            QueueError::Failed => "writer_failed",
        }
    }
}

/// The handle requests use to reach the writer. Cheap to clone.
#[derive(Clone)]
pub struct Sequencer {
    tx: mpsc::Sender<Msg>,
    permits: Arc<Semaphore>,
    stats: Arc<WriterStats>,
    committed: Arc<watch::Sender<u64>>,
}

impl Sequencer {
    /// Starts the writer thread over `ledger`, with a queue of [`QUEUE_ENTRIES_MAX`].
    pub fn start(ledger: Arc<RwLock<Ledger>>) -> (Sequencer, JoinHandle<()>) {
        Sequencer::with_capacity(ledger, QUEUE_ENTRIES_MAX)
    }

    /// Starts the writer thread over `ledger`, with room for `entries_max` queued
    /// entries (at least one request's worth is sensible; tests use tiny queues).
    pub fn with_capacity(
        ledger: Arc<RwLock<Ledger>>,
        entries_max: usize,
    ) -> (Sequencer, JoinHandle<()>) {
        let entries_max = entries_max.clamp(1, Semaphore::MAX_PERMITS);
        // Every job holds at least one permit, so the channel never holds more jobs than
        // there are permits: sends after a successful acquire never find it full.
        let (tx, rx) = mpsc::channel(entries_max + 1);
        let stats = Arc::new(WriterStats::default());
        let writer_stats = Arc::clone(&stats);
        let size = ledger
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .log()
            .size();
        let committed = Arc::new(watch::Sender::new(size));
        let writer_committed = Arc::clone(&committed);
        let handle = std::thread::Builder::new()
            .name("ledger-writer".into())
            .spawn(move || writer_loop(&ledger, rx, &writer_stats, &writer_committed));
        let handle = match handle {
            Ok(h) => h,
            // Without a thread there is no writer: report it like a failed one.
            Err(e) => {
                tracing::error!(error = %e, "cannot start the writer thread");
                stats.failed.store(true, Ordering::Release);
                std::thread::spawn(|| {})
            }
        };
        (
            Sequencer {
                tx,
                permits: Arc::new(Semaphore::new(entries_max)),
                stats,
                committed,
            },
            handle,
        )
    }

    /// The writer's counters.
    pub fn stats(&self) -> &WriterStats {
        &self.stats
    }

    /// The log's committed size, updated after every group commit that grew it (the
    /// hook the tlog-witness submitters wait on, [`super::witnesses`]).
    pub fn committed(&self) -> watch::Receiver<u64> {
        self.committed.subscribe()
    }

    /// Queues verified entries and waits until they are durable (or refused).
    ///
    /// # Errors
    /// [`QueueError::Full`] when the queue has no room for them now;
    /// [`QueueError::Stopped`] / [`QueueError::Failed`] when there is no writer.
    pub async fn submit(&self, entries: Vec<VerifiedEnvelope>) -> Result<JobResult, QueueError> {
        if self.stats.failed.load(Ordering::Acquire) {
            return Err(QueueError::Failed);
        }
        let n = u32::try_from(entries.len()).map_err(|_| QueueError::Full)?;
        debug_assert!(entries.len() <= BATCH_ENTRIES_MAX);
        let permits = Arc::clone(&self.permits)
            .try_acquire_many_owned(n)
            .map_err(|e| match e {
                tokio::sync::TryAcquireError::Closed => QueueError::Stopped,
                tokio::sync::TryAcquireError::NoPermits => QueueError::Full,
            })?;
        let (reply, answer) = oneshot::channel();
        self.stats.queued.fetch_add(u64::from(n), Ordering::Relaxed);
        let job = Job {
            entries,
            reply,
            _permits: permits,
        };
        if let Err(e) = self.tx.try_send(Msg::Job(job)) {
            self.stats.queued.fetch_sub(u64::from(n), Ordering::Relaxed);
            return Err(match e {
                mpsc::error::TrySendError::Full(_) => QueueError::Full,
                mpsc::error::TrySendError::Closed(_) => QueueError::Stopped,
            });
        }
        // A dropped reply means the writer thread is gone.
        answer.await.map_err(|_| QueueError::Stopped)
    }

    /// Runs `work` on the writer thread, between two group commits, with the ledger to
    /// itself, and answers what it returns. It waits its turn in the queue like a job of
    /// one entry.
    ///
    /// # Errors
    /// As [`Sequencer::submit`]: [`QueueError::Full`], [`QueueError::Stopped`],
    /// [`QueueError::Failed`].
    pub async fn exclusive<T, F>(&self, work: F) -> Result<T, QueueError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Writer<'_>) -> T + Send + 'static,
    {
        if self.stats.failed.load(Ordering::Acquire) {
            return Err(QueueError::Failed);
        }
        let permits = Arc::clone(&self.permits)
            .try_acquire_owned()
            .map_err(|e| match e {
                tokio::sync::TryAcquireError::Closed => QueueError::Stopped,
                tokio::sync::TryAcquireError::NoPermits => QueueError::Full,
            })?;
        let (reply, answer) = oneshot::channel();
        let exclusive = Exclusive {
            work: Box::new(move |writer: &mut Writer<'_>| {
                // The requester may have gone (timeout); what the work wrote is durable.
                let _ = reply.send(work(writer));
            }),
            _permits: permits,
        };
        self.tx
            .try_send(Msg::Exclusive(exclusive))
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => QueueError::Full,
                mpsc::error::TrySendError::Closed(_) => QueueError::Stopped,
            })?;
        answer.await.map_err(|_| QueueError::Stopped)
    }

    /// Tells the writer to finish what is queued and exit. New submissions are refused
    /// from now on.
    pub async fn stop(&self) {
        self.permits.close();
        // Fails only if the writer is already gone, which is what we want anyway.
        let _ = self.tx.send(Msg::Stop).await;
    }
}

fn writer_loop(
    ledger: &RwLock<Ledger>,
    mut rx: mpsc::Receiver<Msg>,
    stats: &WriterStats,
    committed: &watch::Sender<u64>,
) {
    let mut writer = Writer {
        ledger,
        stats,
        committed,
    };
    let mut carry: Option<Msg> = None;
    loop {
        let msg = match carry.take() {
            Some(msg) => msg,
            None => match rx.blocking_recv() {
                Some(msg) => msg,
                None => return,
            },
        };
        let first = match msg {
            Msg::Job(job) => job,
            Msg::Exclusive(exclusive) => {
                (exclusive.work)(&mut writer);
                continue;
            }
            Msg::Stop => return,
        };
        let mut total = first.entries.len();
        let mut jobs = vec![first];
        // Group commit: take whatever jobs are already waiting, up to one batch; anything
        // else waits for the next turn, in order.
        while total < BATCH_ENTRIES_MAX {
            match rx.try_recv() {
                Ok(Msg::Job(job)) if total + job.entries.len() <= BATCH_ENTRIES_MAX => {
                    total += job.entries.len();
                    jobs.push(job);
                }
                Ok(other) => {
                    carry = Some(other);
                    break;
                }
                Err(_) => break,
            }
        }
        write_batch(&mut writer, jobs, total);
    }
}

fn write_batch(writer: &mut Writer<'_>, jobs: Vec<Job>, total: usize) {
    let mut batch = Vec::with_capacity(total);
    let mut shapes = Vec::with_capacity(jobs.len());
    for job in jobs {
        shapes.push((job.entries.len(), job.reply, job._permits));
        batch.extend(job.entries);
    }
    let result = writer.submit(batch);
    writer
        .stats
        .queued
        .fetch_sub(total as u64, Ordering::Relaxed);
    match result {
        Ok(outcomes) => {
            // `submit` answers each entry in order: split the outcomes back per job.
            debug_assert_eq!(outcomes.len(), total);
            let mut outcomes = outcomes.into_iter();
            for (n, reply, permits) in shapes {
                let part: Vec<_> = outcomes.by_ref().take(n).collect();
                // Room in the queue before the answer: whoever hears it may submit again.
                drop(permits);
                // The requester may have gone (timeout); its entries are durable anyway.
                let _ = reply.send(Ok(part));
            }
        }
        Err(e) => {
            for (_, reply, permits) in shapes {
                drop(permits);
                let _ = reply.send(Err(e.to_string()));
            }
        }
    }
}

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
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;

use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};

use crate::ledger::error::RuleError;
use crate::ledger::writer::Ledger;
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

enum Msg {
    Job(Job),
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
        let handle = std::thread::Builder::new()
            .name("ledger-writer".into())
            .spawn(move || writer_loop(&ledger, rx, &writer_stats));
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
            },
            handle,
        )
    }

    /// The writer's counters.
    pub fn stats(&self) -> &WriterStats {
        &self.stats
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

    /// Tells the writer to finish what is queued and exit. New submissions are refused
    /// from now on.
    pub async fn stop(&self) {
        self.permits.close();
        // Fails only if the writer is already gone, which is what we want anyway.
        let _ = self.tx.send(Msg::Stop).await;
    }
}

fn writer_loop(ledger: &RwLock<Ledger>, mut rx: mpsc::Receiver<Msg>, stats: &WriterStats) {
    let mut carry: Option<Job> = None;
    loop {
        let first = match carry.take() {
            Some(job) => job,
            None => match rx.blocking_recv() {
                Some(Msg::Job(job)) => job,
                Some(Msg::Stop) | None => return,
            },
        };
        let mut total = first.entries.len();
        let mut jobs = vec![first];
        let mut stop = false;
        // Group commit: take whatever else is already waiting, up to one batch.
        while total < BATCH_ENTRIES_MAX {
            match rx.try_recv() {
                Ok(Msg::Job(job)) => {
                    if total + job.entries.len() > BATCH_ENTRIES_MAX {
                        carry = Some(job);
                        break;
                    }
                    total += job.entries.len();
                    jobs.push(job);
                }
                Ok(Msg::Stop) => {
                    stop = true;
                    break;
                }
                Err(_) => break,
            }
        }
        write_batch(ledger, jobs, total, stats);
        if stop {
            // Stop was queued after every job it follows; a carried job came before it.
            if let Some(job) = carry.take() {
                let n = job.entries.len();
                write_batch(ledger, vec![job], n, stats);
            }
            return;
        }
    }
}

fn write_batch(ledger: &RwLock<Ledger>, jobs: Vec<Job>, total: usize, stats: &WriterStats) {
    let mut batch = Vec::with_capacity(total);
    let mut shapes = Vec::with_capacity(jobs.len());
    for job in jobs {
        shapes.push((job.entries.len(), job.reply, job._permits));
        batch.extend(job.entries);
    }
    let result = {
        // A poisoned lock means a reader panicked; the ledger itself guards its writes
        // (a failed append leaves it refusing further ones), so carry on.
        let mut guard = ledger.write().unwrap_or_else(|p| p.into_inner());
        let started = std::time::Instant::now();
        let result = guard.submit(batch);
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        stats.busy_micros.fetch_add(micros, Ordering::Relaxed);
        result
    };
    stats.queued.fetch_sub(total as u64, Ordering::Relaxed);
    match result {
        Ok(outcomes) => {
            let appended = outcomes
                .iter()
                .filter(|o| matches!(o, Outcome::Ok(_)))
                .count();
            stats.appended.fetch_add(appended as u64, Ordering::Relaxed);
            if appended > 0 {
                stats.batches.fetch_add(1, Ordering::Relaxed);
            }
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
            tracing::error!(error = %e, code = e.code(), "group commit failed; the writer stops accepting entries");
            stats.failed.store(true, Ordering::Release);
            for (_, reply, permits) in shapes {
                drop(permits);
                let _ = reply.send(Err(e.to_string()));
            }
        }
    }
}

//! The sequencer: the one thread that writes to the ledger, with group commit.
//!
//! Requests arrive already verified ([`VerifiedEnvelope`]s) as `Job`s on a bounded
//! channel. The writer thread blocks for the first job, then drains whatever else is
//! queued, up to [`BATCH_ENTRIES_MAX`] entries, into one group commit — one fdatasync
//! for all of them — and answers each job through its oneshot. Blocking I/O thus stays
//! off the tokio runtime, and under load one fsync serves many requests.
//!
//! The group commit is pipelined (issue 15): while group k's fdatasync runs on a
//! thread of its own (`ledger-sync`), the writer plans group k+1 from the queue — the
//! rules decide on each entry, its leaf is encoded and hashed ([`Ledger::plan`]) — and
//! writes it only once k is committed. Each group is answered only after its own
//! fdatasync returned. Why not write k+1 while k syncs: the state holds one prepared
//! batch (its map root computed, its delta ready) and commits its whole overlay, so
//! k+1 staged before k's commit would reach sled with k's head, ahead of the synced
//! log; and the seal of k+1 written during k's sync could reach the disk before k+1's
//! records. What overlaps is the per-entry work: the rules, leaf encoding, hashing.
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
use crate::ledger::writer::{Ledger, LedgerError, PlannedBatch};
use crate::limits::BATCH_ENTRIES_MAX;
use crate::log::envelope::VerifiedEnvelope;
use crate::log::records::Syncer;
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
        // A poisoned lock means a reader panicked; the ledger itself guards its
        // writes (a failed append leaves it refusing further ones), so carry on.
        let mut guard = self.ledger.write().unwrap_or_else(|p| p.into_inner());
        let started = std::time::Instant::now();
        let result = guard.submit(batch);
        self.count(&guard, &result, started);
        result
    }

    /// Counts a group commit (busy since `started`, entries appended, a failure) and
    /// publishes the committed size, still under the write lock.
    fn count(
        &self,
        ledger: &Ledger,
        result: &Result<Vec<Outcome<RuleError>>, LedgerError>,
        started: std::time::Instant,
    ) {
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.stats.busy_micros.fetch_add(micros, Ordering::Relaxed);
        // The witness hook: whoever follows the log (the tlog-witness submitters)
        // hears of each new committed size; nobody waits on them.
        let size = ledger.log().size();
        self.committed.send_if_modified(|held| {
            let grew = *held != size;
            *held = size;
            grew
        });
        match result {
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
    /// Code `queue_full`: the queue has no room for these entries now.
    #[error("the append queue is full")]
    Full,
    /// Code `shutting_down`: the writer has stopped (the server is shutting down).
    #[error("the writer has stopped")]
    Stopped,
    /// Code `writer_failed`: a submit failed earlier, so the writer takes no more.
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

/// Where one job's outcomes go: how many entries it gave, its reply, its permits.
type Reply = (usize, oneshot::Sender<JobResult>, OwnedSemaphorePermit);

/// A group of jobs taken from the queue together, planned or not yet.
struct Group {
    replies: Vec<Reply>,
    total: usize,
    batch: Batch,
}

enum Batch {
    /// Taken while the writer was idle: planned when written.
    Entries(Vec<VerifiedEnvelope>),
    /// Planned while the group before it was syncing.
    Planned(Result<PlannedBatch, LedgerError>),
}

/// Takes whatever jobs are already waiting after `first`, up to one batch; a message
/// that is not a job, or a job that does not fit, waits in `carry` for the next turn.
fn gather(first: Job, rx: &mut mpsc::Receiver<Msg>, carry: &mut Option<Msg>) -> Group {
    let mut group = Group {
        replies: Vec::new(),
        total: 0,
        batch: Batch::Entries(Vec::new()),
    };
    let mut entries = Vec::with_capacity(first.entries.len());
    let mut next = Some(first);
    while let Some(job) = next.take() {
        group.total += job.entries.len();
        group
            .replies
            .push((job.entries.len(), job.reply, job._permits));
        entries.extend(job.entries);
        if group.total >= BATCH_ENTRIES_MAX {
            break;
        }
        match rx.try_recv() {
            Ok(Msg::Job(job)) if group.total + job.entries.len() <= BATCH_ENTRIES_MAX => {
                next = Some(job);
            }
            Ok(other) => *carry = Some(other),
            Err(_) => {}
        }
    }
    group.batch = Batch::Entries(entries);
    group
}

/// The next group already queued, if nothing else (exclusive work, a stop) comes first:
/// those must find the ledger settled, so no group is planned past them.
fn gather_queued(rx: &mut mpsc::Receiver<Msg>, carry: &mut Option<Msg>) -> Option<Group> {
    if carry.is_some() {
        return None;
    }
    match rx.try_recv() {
        Ok(Msg::Job(job)) => Some(gather(job, rx, carry)),
        Ok(other) => {
            *carry = Some(other);
            None
        }
        Err(_) => None,
    }
}

/// The writer thread: group commits, pipelined. Each turn, under the write lock
/// ([`turn`]), writes one group (unsynced), hands its fdatasync to the sync thread,
/// plans the next group from the queue meanwhile (the rules, the leaves and their
/// hashes), and once the sync has returned commits the group; only then, the lock
/// released, are its jobs answered. So nothing is acknowledged before its own
/// fdatasync, one thread writes in one order, readers never see a batch that is not
/// synced (they wait for the lock, as they did for a whole group commit), and a group
/// is written only after the one before it is committed, so a crash keeps or loses a
/// written group whole (`tests/pipeline.rs`).
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
    let sync = SyncThread::spawn();
    let mut carry: Option<Msg> = None;
    let mut ahead: Option<Group> = None;
    loop {
        let group = match ahead.take() {
            Some(group) => group,
            None => {
                let msg = match carry.take() {
                    Some(msg) => msg,
                    None => match rx.blocking_recv() {
                        Some(msg) => msg,
                        None => return,
                    },
                };
                match msg {
                    Msg::Job(job) => gather(job, &mut rx, &mut carry),
                    Msg::Exclusive(exclusive) => {
                        (exclusive.work)(&mut writer);
                        continue;
                    }
                    Msg::Stop => return,
                }
            }
        };
        let result = {
            let mut guard = ledger.write().unwrap_or_else(|p| p.into_inner());
            let started = std::time::Instant::now();
            let (result, next) = turn(&mut guard, group.batch, &sync, || {
                gather_queued(&mut rx, &mut carry)
            });
            ahead = next;
            writer.count(&guard, &result, started);
            result
        };
        answer(group.replies, group.total, result, stats);
    }
}

/// One turn of the pipeline on the locked ledger: write `batch`, sync it on the sync
/// thread while the group `next` gives is planned, then commit it. Returns its
/// outcomes and the planned next group.
fn turn(
    ledger: &mut Ledger,
    batch: Batch,
    sync: &SyncThread,
    next: impl FnOnce() -> Option<Group>,
) -> (Result<Vec<Outcome<RuleError>>, LedgerError>, Option<Group>) {
    let planned = match batch {
        Batch::Entries(entries) => ledger.plan(entries),
        Batch::Planned(planned) => planned,
    };
    let written = match planned.and_then(|p| ledger.write(p)) {
        Ok(written) => written,
        Err(e) => return (Err(e), None),
    };
    let syncing = written.needs_sync().then(|| sync.start(ledger.syncer()));
    let ahead = next().map(|mut group| {
        if let Batch::Entries(entries) =
            std::mem::replace(&mut group.batch, Batch::Entries(Vec::new()))
        {
            group.batch = Batch::Planned(ledger.plan(entries));
        }
        group
    });
    let synced = syncing.map_or(Ok(()), SyncTicket::wait);
    (ledger.finish(written, synced), ahead)
}

/// Answers each job of a group with its part of the outcomes (or the fault).
fn answer(
    replies: Vec<Reply>,
    total: usize,
    result: Result<Vec<Outcome<RuleError>>, LedgerError>,
    stats: &WriterStats,
) {
    stats.queued.fetch_sub(total as u64, Ordering::Relaxed);
    match result {
        Ok(outcomes) => {
            // `finish` answers each entry in order: split the outcomes back per job.
            debug_assert_eq!(outcomes.len(), total);
            let mut outcomes = outcomes.into_iter();
            for (n, reply, permits) in replies {
                let part: Vec<_> = outcomes.by_ref().take(n).collect();
                // Room in the queue before the answer: whoever hears it may submit again.
                drop(permits);
                // The requester may have gone (timeout); its entries are durable anyway.
                let _ = reply.send(Ok(part));
            }
        }
        Err(e) => {
            for (_, reply, permits) in replies {
                drop(permits);
                let _ = reply.send(Err(e.to_string()));
            }
        }
    }
}

/// The thread that runs the writer's fdatasyncs, so that the writer plans the next
/// group meanwhile. One sync at a time: the writer waits for each before the next.
struct SyncThread {
    /// `None` if the thread could not be started: the writer then syncs itself.
    thread: Option<(
        std::sync::mpsc::Sender<Syncer>,
        std::sync::mpsc::Receiver<std::io::Result<()>>,
    )>,
}

/// A sync under way ([`SyncThread::start`]).
enum SyncTicket<'a> {
    Thread(&'a std::sync::mpsc::Receiver<std::io::Result<()>>),
    Done(std::io::Result<()>),
}

impl SyncThread {
    fn spawn() -> SyncThread {
        let (to_sync, syncs) = std::sync::mpsc::channel::<Syncer>();
        let (to_writer, results) = std::sync::mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("ledger-sync".into())
            .spawn(move || {
                // Ends when the writer drops its sender.
                for syncer in syncs {
                    if to_writer.send(syncer.sync()).is_err() {
                        return;
                    }
                }
            });
        match spawned {
            Ok(_) => SyncThread {
                thread: Some((to_sync, results)),
            },
            Err(error) => {
                tracing::warn!(%error, "cannot start the sync thread; the writer syncs itself, unpipelined");
                SyncThread { thread: None }
            }
        }
    }

    /// Starts the fdatasync of `syncer` (on the writer's own thread without a sync thread).
    fn start(&self, syncer: Syncer) -> SyncTicket<'_> {
        match &self.thread {
            Some((to_sync, results)) => match to_sync.send(syncer) {
                Ok(()) => SyncTicket::Thread(results),
                Err(std::sync::mpsc::SendError(syncer)) => SyncTicket::Done(syncer.sync()),
            },
            None => SyncTicket::Done(syncer.sync()),
        }
    }
}

impl SyncTicket<'_> {
    /// The sync's result, once it returned.
    fn wait(self) -> std::io::Result<()> {
        match self {
            SyncTicket::Thread(results) => results.recv().unwrap_or_else(|_| {
                Err(std::io::Error::other(
                    "the sync thread is gone; the batch is not known to be durable",
                ))
            }),
            SyncTicket::Done(result) => result,
        }
    }
}

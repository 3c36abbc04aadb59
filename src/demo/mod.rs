//! `lesson-ledger demo`: the whole mechanism end to end, on synthetic but plausible
//! data, from the ledger's creation to an independent audit and a written report.
//!
//! The story is issue 6 of the project (see `MISSION.md` for the mechanism it plays).
//! The operator creates the ledger on a fresh embedded store ([`create`], as
//! `lesson-ledger init` does) and the real server ([`crate::http::Server`]) serves it
//! on a loopback port; from then on every party talks to it over HTTP only, through
//! [`crate::client`] ([`HttpLedger`]): entries go in by `POST /v1/entries` batches,
//! everything read comes from the GET endpoints.
//! 1. [`story::setup`]: associations, donor institutions, closed institutions and
//!    students register their keys;
//! 2. [`story::closures_and_claims`]: institutions close and claims are recorded with
//!    the double signature (operator and student);
//! 3. [`story::pledges`]: donors are white-listed and pledge courses, the operator
//!    approves them; one institution is black-listed and its later pledge is refused;
//!    a consumer association takes a first look ([`audit::first_look`]);
//!    [`choices::run`]: families choose what they redeem (`claim_preferences_set`), and
//!    the matcher's figures without and with their choices on the same data;
//! 4. [`matching::run`]: the operator's `POST /v1/match`; [`lessons::run`]: declines,
//!    lessons co-signed, proposed and confirmed, disputed and resolved;
//!    [`clock::run`]: lessons deemed confirmed and allocations expired once the
//!    ledger's clock has passed their windows;
//! 5. [`audit::run`]: the association audits the ledger from outside, co-signs the
//!    checkpoint and checks several students' balances with their proofs;
//! 6. [`report::run`]: the summary table and the report directory.
//!
//! Time: the demo's genesis declares a short day (1 s at `tiny` and `small`, 60 s at
//! `city`, see [`world::Params`]), so the national 15-day window is 15 s of wall time
//! and deemed confirmations and expiries genuinely happen past their windows in ledger
//! time.
//!
//! Every random choice comes from a [`rand::rngs::StdRng`] seeded from `--seed`, so a
//! run is replayable; keys are derived from the seed too (the operator's key is made
//! by the log). There is no personal data: parties are pseudonymous refs
//! (`stu-000123`, `inst-0042`, `assoc-01`).
//!
//! ```no_run
//! use lesson_ledger::demo::{run, DemoConfig, Scale};
//! let outcome = run(&DemoConfig {
//!     data: std::path::PathBuf::from("/tmp/ledger-demo"),
//!     scale: Scale::Tiny,
//!     seed: 2021,
//!     keep_serving: false,
//! })?;
//! assert!(outcome.audit.passed);
//! # Ok::<(), lesson_ledger::demo::DemoError>(())
//! ```

pub mod audit;
pub mod choices;
pub mod clock;
pub mod create;
pub mod feed;
pub mod lessons;
pub mod matching;
pub mod report;
mod serving;
pub mod story;
mod svg;
pub mod transport;
pub mod world;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use transport::{HttpLedger, Submitted};

use crate::client::ClientError;
use crate::http::{ServeError, Server, ServerConfig};
use crate::ledger::error::RuleError;
use crate::ledger::writer::LedgerError;
use crate::log::envelope::EnvelopeError;
use crate::log::note::NoteError;

/// The seed used when none is given (the year the mechanism started).
pub const SEED_DEFAULT: u64 = 2021;

/// Entries per `POST /v1/entries` (one group commit each, at most).
pub const BATCH_ENTRIES: usize = crate::limits::ENTRIES_PER_REQUEST_MAX;

/// How big a city the demo plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// About 30 students: under 20 s, most of it waiting out the 15 s window (the test suite).
    Tiny,
    /// About 2,000 students and a pool of over 1.4 billion yuan: about a minute.
    Small,
    /// A million claims: Shanghai's order of magnitude. Long, but memory-conscious.
    City,
}

impl Scale {
    /// The scale's name, as given on the command line.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Scale::Tiny => "tiny",
            Scale::Small => "small",
            Scale::City => "city",
        }
    }
}

/// What to run, and where.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    /// The demo's directory: the ledger goes in `ledger/`, the report in `report/`.
    pub data: PathBuf,
    /// How big a city.
    pub scale: Scale,
    /// The seed of every random choice: the same seed plays the same city.
    pub seed: u64,
    /// Leave the server running at the end (until Ctrl-C) and print URLs to open.
    pub keep_serving: bool,
}

impl DemoConfig {
    /// The ledger's directory.
    #[must_use]
    pub fn ledger_dir(&self) -> PathBuf {
        self.data.join("ledger")
    }

    /// The report's directory.
    #[must_use]
    pub fn report_dir(&self) -> PathBuf {
        self.data.join("report")
    }

    /// The consumer association's remote-audit state file (`verify --url --state`).
    #[must_use]
    pub fn audit_state(&self) -> PathBuf {
        self.data.join("association").join("audit-state.json")
    }
}

/// Why the demo stopped.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The ledger failed (its own code).
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// A request to the demo's server failed (its own code).
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The demo's server could not start (its own code).
    #[error(transparent)]
    Serve(#[from] ServeError),
    /// The ledger's state could not answer a query (its own code).
    #[error("the ledger's state could not be read: {0}")]
    State(#[from] RuleError),
    /// An entry could not be signed (its own code).
    #[error("envelope: {0}")]
    Envelope(#[from] EnvelopeError),
    /// A note could not be signed or verified (its own code).
    #[error("note: {0}")]
    Note(#[from] NoteError),
    /// Code `demo_unexpected_outcome`: entry `entry` was answered `found` (`message`), expected `expected`.
    #[error("entry {entry} was answered {found} ({message}), expected {expected}")]
    Unexpected {
        /// The entry's id.
        entry: String,
        /// The status expected.
        expected: String,
        /// The status answered.
        found: String,
        /// The answer's words.
        message: String,
    },
    /// Code `demo_audit_failed`: the audit failed: `0`.
    #[error("the audit failed: {0}")]
    AuditFailed(#[source] AuditFailure),
    /// Code `demo_check_failed`: self-check failed: `what`: expected `expected`, found `found`.
    #[error("self-check failed: {what}: expected {expected}, found {found}")]
    Check {
        /// The figure checked.
        what: String,
        /// What was expected.
        expected: String,
        /// What was found.
        found: String,
    },
    /// Code `io`: a file of the demo could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The demo could not set itself up; a condition of its own, not another error.
    #[error("{0}")]
    Setup(String),
    /// The matcher refused the demo's data.
    #[error("the matcher refused the demo's data: {0}")]
    Matcher(#[source] crate::matching::MatchError),
    /// The operator's key file, just written by `init`, could not be read.
    #[error("operator key: {0}")]
    OperatorKey(#[source] crate::log::keyfile::KeyFileError),
    /// The operator's token could not be written or read.
    #[error("operator token: {0}")]
    OperatorToken(#[source] crate::http::operator::CredentialsError),
    /// A thread or runtime of the demo's own could not be had.
    #[error("{what}: {source}")]
    Runtime {
        /// What was being started or waited for.
        what: &'static str,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// An entry the demo read back does not decode as the entry it wrote.
    #[error("entry {index}: {source}")]
    EntryPayload {
        /// The entry's position in the log.
        index: u64,
        /// Why its payload does not decode.
        #[source]
        source: serde_json::Error,
    },
}

/// Why the demo's audit failed: the remote audit's own error, an entry that does not
/// decode, or a served figure the replay does not reproduce.
#[derive(Debug, thiserror::Error)]
pub enum AuditFailure {
    /// `verify --url`'s audit refused the log.
    #[error(transparent)]
    Audit(#[from] ClientError),
    /// An entry served with a proof does not decode.
    #[error("entry {index}: {source}")]
    EntryPayload {
        /// The entry's position in the log.
        index: u64,
        /// Why its payload does not decode.
        #[source]
        source: serde_json::Error,
    },
    /// What was served differs from what the audit recomputed.
    #[error("{0}")]
    Differs(String),
}

impl DemoError {
    /// Stable error code.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            DemoError::Ledger(e) => e.code(),
            DemoError::Client(e) => e.code(),
            DemoError::Serve(e) => e.code(),
            DemoError::State(e) => e.code(),
            DemoError::Envelope(e) => e.code(),
            DemoError::Note(e) => e.code(),
            DemoError::Unexpected { .. } => "demo_unexpected_outcome",
            DemoError::AuditFailed(_) => "demo_audit_failed",
            DemoError::Check { .. } => "demo_check_failed",
            DemoError::Io { .. } => "io",
            DemoError::Setup(_)
            | DemoError::Matcher(_)
            | DemoError::OperatorKey(_)
            | DemoError::OperatorToken(_)
            | DemoError::Runtime { .. }
            | DemoError::EntryPayload { .. } => "demo_setup",
        }
    }

    /// A failed self-check, with what was expected and found.
    pub(crate) fn check(
        what: impl Into<String>,
        expected: impl ToString,
        found: impl ToString,
    ) -> Self {
        DemoError::Check {
            what: what.into(),
            expected: expected.to_string(),
            found: found.to_string(),
        }
    }
}

/// Maps an I/O error on `path` to a [`DemoError`].
pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> DemoError + '_ {
    move |source| DemoError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One step's wall time and the entries it appended.
#[derive(Debug, Clone)]
pub struct StepTiming {
    /// The step's name, as the report prints it.
    pub step: &'static str,
    /// Its wall time.
    pub wall: Duration,
    /// Entries it appended.
    pub entries: u64,
}

impl StepTiming {
    /// Entries appended per second of wall time (0 for steps that append nothing).
    #[must_use]
    pub fn entries_per_sec(&self) -> f64 {
        let secs = self.wall.as_secs_f64();
        if secs > 0.0 {
            self.entries as f64 / secs
        } else {
            0.0
        }
    }
}

/// What a finished demo established.
#[derive(Debug, Clone)]
pub struct DemoOutcome {
    /// The seed the demo ran with.
    pub seed: u64,
    /// The scale it ran at.
    pub scale: Scale,
    /// Each step's time, in order.
    pub timings: Vec<StepTiming>,
    /// What the association's audit established.
    pub audit: audit::AuditReport,
    /// The pool's totals at the end.
    pub totals: report::Totals,
    /// What became of the lessons.
    pub lessons: lessons::Counts,
    /// What the families' choices were worth (issue 18).
    pub choices: choices::Figures,
    /// The ledger's day (genesis `day_micros`) and the allocations' validity in days.
    pub day_micros: u64,
    /// Days an allocation stays active.
    pub allocation_validity_days: u64,
    /// Expected refusals, by error code, with one example message each.
    pub refusals: Vec<(String, u64, String)>,
    /// Entries answered "exists" (a resubmission answered with its first receipt).
    pub exists: u64,
    /// Entries in the log at the end.
    pub entries: u64,
}

/// Runs `f` as the step `name`: prints its title, flushes what it drafted, and records
/// its wall time and the entries it appended.
fn timed<T>(
    timings: &mut Vec<StepTiming>,
    name: &'static str,
    feed: &mut feed::Feed,
    f: impl FnOnce(&mut feed::Feed) -> Result<T, DemoError>,
) -> Result<T, DemoError> {
    println!("\n== {name}");
    let t = Instant::now();
    let before = feed.accepted();
    let out = f(feed)?;
    feed.flush()?;
    feed.finish_progress();
    timings.push(StepTiming {
        step: name,
        wall: t.elapsed(),
        entries: feed.accepted() - before,
    });
    Ok(out)
}

/// What the demo is about to do, and how to replay it.
fn print_banner(config: &DemoConfig, world: &world::World) {
    let p = world.params();
    println!(
        "lesson-ledger demo: scale {}, seed {} (rerun with --seed {} to replay), data {}\n\
         the ledger's day is {} s: the 15-day confirmation window is {} s, allocations are valid {} days",
        config.scale.as_str(),
        config.seed,
        config.seed,
        config.data.display(),
        p.day_micros / 1_000_000,
        crate::ledger::defaults::CONFIRMATION_WINDOW_DAYS * p.day_micros / 1_000_000,
        p.allocation_validity_days,
    );
}

/// Step 0, the one step on the library: the operator creates the ledger (as `init`)
/// and serves it; returns the operator's signer, the server and a feed to it.
fn start(
    config: &DemoConfig,
    world: &world::World,
    timings: &mut Vec<StepTiming>,
) -> Result<(crate::log::note::NoteSigner, Server, feed::Feed), DemoError> {
    println!("\n== 0. ledger created, server started");
    let t = Instant::now();
    let created = create::ledger(&config.ledger_dir(), world)?;
    let vkey = created.operator.vkey();
    let server = Server::start(
        created.ledger,
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        ServerConfig::default(),
    )?;
    println!(
        "operator key {vkey}\nserving the ledger at {}",
        server.url()
    );
    let feed = feed::Feed::new(HttpLedger::new(&server.url(), &vkey)?, world.origin(), 1);
    timings.push(StepTiming {
        step: "0. ledger and server",
        wall: t.elapsed(),
        entries: 1,
    });
    Ok((created.operator, server, feed))
}

/// Runs the whole demo in `config.data` (created if missing; must not hold a ledger).
///
/// # Errors
/// The first [`DemoError`]: an unexpected refusal (with its code), a failed audit or
/// self-check, a store, server or transport fault, or I/O.
pub fn run(config: &DemoConfig) -> Result<DemoOutcome, DemoError> {
    let started = Instant::now();
    std::fs::create_dir_all(&config.data).map_err(io_err(&config.data))?;
    let world = world::World::new(config.seed, config.scale, world::now_micros());
    let p = world.params();
    print_banner(config, &world);
    let mut timings = Vec::new();
    let (operator, server, mut feed) = start(config, &world, &mut timings)?;
    let cast = story::Cast::new(&world, operator)?;
    timed(&mut timings, "1. parties", &mut feed, |f| {
        story::setup(f, &world, &cast)
    })?;
    timed(&mut timings, "2. closures and claims", &mut feed, |f| {
        story::closures_and_claims(f, &world, &cast)
    })?;
    timed(&mut timings, "3. pledges", &mut feed, |f| {
        story::pledges(f, &world, &cast)?;
        f.flush()?;
        audit::first_look(f, &cast, &config.audit_state())
    })?;
    let choices = timed(&mut timings, "3b. families choose", &mut feed, |f| {
        choices::run(f, &world)
    })?;
    let allocs = timed(
        &mut timings,
        "4a. matching (POST /v1/match)",
        &mut feed,
        |f| matching::run(f, &world, &config.ledger_dir(), choices.with.matched_fen),
    )?;
    let delivered = timed(&mut timings, "4b. lessons", &mut feed, |f| {
        lessons::run(f, &world, &cast, &allocs)
    })?;
    let counts = timed(&mut timings, "4c. windows pass (waits)", &mut feed, |f| {
        clock::run(f, &world, &cast, &allocs, delivered)
    })?;
    let audit = timed(&mut timings, "5. audit over HTTP", &mut feed, |f| {
        audit::run(f, &world, &cast, &config.audit_state())
    })?;
    let totals = timed(&mut timings, "6. report", &mut feed, |f| {
        report::run(f, &world, &audit, &config.report_dir())
    })?;
    let outcome = DemoOutcome {
        seed: config.seed,
        scale: config.scale,
        timings,
        audit,
        totals,
        lessons: counts,
        choices,
        day_micros: p.day_micros,
        allocation_validity_days: p.allocation_validity_days,
        refusals: feed.refusals(),
        exists: feed.exists(),
        // The whole log: the genesis and the match run's entries included.
        entries: feed.size(),
    };
    report::print_finish(&outcome, &config.report_dir(), started.elapsed());
    report::write_markdown(&outcome, &config.report_dir())?;
    if config.keep_serving {
        serving::print_urls(&server.url(), &world);
        serving::wait_for_interrupt()?;
    }
    server.shutdown()?;
    Ok(outcome)
}

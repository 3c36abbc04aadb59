//! `lesson-ledger demo`: the whole mechanism end to end, on synthetic but plausible
//! data, from the ledger's creation to an independent audit and a written report.
//!
//! The story is issue 6 of the project (see `MISSION.md` for the mechanism it plays):
//! 1. [`story::setup`]: the operator creates the ledger; associations, donor
//!    institutions, closed institutions and students register their keys;
//! 2. [`story::closures_and_claims`]: institutions close and claims are recorded with
//!    the double signature (operator and student);
//! 3. [`story::pledges`]: donors are white-listed and pledge courses, the operator
//!    approves them; one institution is black-listed and its later pledge is refused;
//! 4. [`lessons::run`]: matching ([`matching::greedy`]) and the lessons consumed,
//!    confirmed, disputed and resolved; allocations declined and expired;
//! 5. [`audit::run`]: a consumer association audits the ledger, co-signs the
//!    checkpoint and checks several students' balances with inclusion proofs;
//! 6. [`report::run`]: the summary table and the report directory.
//!
//! Every step talks to the ledger through a [`Transport`]: today the library
//! ([`LocalLedger`]), later the HTTP API (issue 4) — only the transport changes. Every
//! random choice comes from a [`rand::rngs::StdRng`] seeded from `--seed`, so a run is
//! replayable; keys are derived from the seed too. There is no personal data: parties
//! are pseudonymous refs (`stu-000123`, `inst-0042`, `assoc-01`).
//!
//! Time: ledger time is the wall clock, and the genesis windows are whole days (at least
//! one), so a demo cannot wait out the 15-day confirmation window. Expiry is shown with a
//! short-lived pledge (an allocation expires with its pledge's validity); deemed
//! confirmation is shown only as the operator's early attempt being refused with
//! `window_not_elapsed`.
//!
//! ```no_run
//! use lesson_ledger::demo::{run, DemoConfig, Scale};
//! let outcome = run(&DemoConfig {
//!     data: std::path::PathBuf::from("/tmp/ledger-demo"),
//!     scale: Scale::Tiny,
//!     seed: 2021,
//! })?;
//! assert!(outcome.audit.passed);
//! # Ok::<(), lesson_ledger::demo::DemoError>(())
//! ```

pub mod audit;
pub mod feed;
pub mod lessons;
pub mod matching;
pub mod report;
pub mod story;
mod svg;
pub mod transport;
pub mod world;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use transport::{LocalLedger, Submitted, Transport};

use crate::ledger::error::RuleError;
use crate::ledger::writer::LedgerError;
use crate::log::envelope::EnvelopeError;
use crate::log::note::NoteError;
use crate::log::proof::VerifyError;
use crate::log::store::LogError;

/// The seed used when none is given (the year the mechanism started).
pub const SEED_DEFAULT: u64 = 2021;

/// Entries per `submit` call (one group commit each).
pub const BATCH_ENTRIES: usize = 1024;

const _: () = assert!(
    BATCH_ENTRIES <= crate::limits::BATCH_ENTRIES_MAX,
    "a demo batch must be one the log accepts"
);

/// How big a city the demo plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// About 30 students: a few seconds in a debug build (the test suite).
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
    pub scale: Scale,
    pub seed: u64,
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
}

/// Why the demo stopped.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("the ledger's state could not be read: {0}")]
    State(#[from] RuleError),
    #[error("envelope: {0}")]
    Envelope(#[from] EnvelopeError),
    #[error("note: {0}")]
    Note(#[from] NoteError),
    #[error("inclusion proof of entry {index}: {source}")]
    Proof {
        index: u64,
        #[source]
        source: VerifyError,
    },
    #[error("entry {entry} was answered {found} ({message}), expected {expected}")]
    Unexpected {
        entry: String,
        expected: String,
        found: String,
        message: String,
    },
    #[error("the audit failed: {0}")]
    AuditFailed(String),
    #[error("self-check failed: {what}: expected {expected}, found {found}")]
    Check {
        what: String,
        expected: String,
        found: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Setup(String),
}

impl DemoError {
    /// Stable error code.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            DemoError::Ledger(e) => e.code(),
            DemoError::Log(e) => e.code(),
            DemoError::State(e) => e.code(),
            DemoError::Envelope(e) => e.code(),
            DemoError::Note(e) => e.code(),
            DemoError::Proof { source, .. } => source.code(),
            DemoError::Unexpected { .. } => "demo_unexpected_outcome",
            DemoError::AuditFailed(_) => "demo_audit_failed",
            DemoError::Check { .. } => "demo_check_failed",
            DemoError::Io { .. } => "io",
            DemoError::Setup(_) => "demo_setup",
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
    pub step: &'static str,
    pub wall: Duration,
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
    pub seed: u64,
    pub scale: Scale,
    pub timings: Vec<StepTiming>,
    pub audit: audit::AuditReport,
    pub totals: report::Totals,
    /// Expected refusals, by error code, with one example message each.
    pub refusals: Vec<(String, u64, String)>,
    /// Entries answered "exists" (a resubmission answered with its first receipt).
    pub exists: u64,
    pub entries: u64,
}

/// Runs the whole demo in `config.data` (created if missing; must not hold a ledger).
///
/// # Errors
/// The first [`DemoError`]: an unexpected refusal (with its code), a failed audit or
/// self-check, a store fault or I/O.
pub fn run(config: &DemoConfig) -> Result<DemoOutcome, DemoError> {
    let started = Instant::now();
    std::fs::create_dir_all(&config.data).map_err(io_err(&config.data))?;
    let world = world::World::new(config.seed, config.scale, world::now_micros());
    println!(
        "lesson-ledger demo: scale {}, seed {} (rerun with --seed {} to replay), data {}",
        config.scale.as_str(),
        config.seed,
        config.seed,
        config.data.display()
    );
    let mut timings = Vec::new();
    let (transport, operator) = LocalLedger::create(&config.ledger_dir(), world.origin())?;
    let mut feed = feed::Feed::new(transport);
    let mut step = |name: &'static str,
                    feed: &mut feed::Feed<LocalLedger>,
                    f: &mut dyn FnMut(&mut feed::Feed<LocalLedger>) -> Result<(), DemoError>|
     -> Result<(), DemoError> {
        let t = Instant::now();
        let before = feed.accepted();
        println!("\n== {name}");
        f(feed)?;
        feed.flush()?;
        timings.push(StepTiming {
            step: name,
            wall: t.elapsed(),
            entries: feed.accepted() - before,
        });
        Ok(())
    };
    let cast = story::Cast::new(&world, operator)?;
    step("1. ledger and parties", &mut feed, &mut |f| {
        story::setup(f, &world, &cast)
    })?;
    step("2. closures and claims", &mut feed, &mut |f| {
        story::closures_and_claims(f, &world, &cast)
    })?;
    step("3. pledges", &mut feed, &mut |f| {
        story::pledges(f, &world, &cast)
    })?;
    step("4. matching and lessons", &mut feed, &mut |f| {
        lessons::run(f, &world, &cast)
    })?;
    let t = Instant::now();
    println!("\n== 5. audit");
    let audit = audit::run(&mut feed, &world, &cast)?;
    timings.push(StepTiming {
        step: "5. audit",
        wall: t.elapsed(),
        entries: 0,
    });
    let t = Instant::now();
    println!("\n== 6. report");
    let totals = report::run(&mut feed, &world, &audit, &config.report_dir())?;
    timings.push(StepTiming {
        step: "6. report",
        wall: t.elapsed(),
        entries: 0,
    });
    let outcome = DemoOutcome {
        seed: config.seed,
        scale: config.scale,
        timings,
        audit,
        totals,
        refusals: feed.refusals(),
        exists: feed.exists(),
        entries: feed.accepted(),
    };
    report::print_finish(&outcome, &config.report_dir(), started.elapsed());
    report::write_markdown(&outcome, &config.report_dir())?;
    Ok(outcome)
}

//! Why a command failed, and the exit code each failure gives (`lesson-ledger`'s
//! contract with scripts, README: 1 a finding, 2 usage, 3 refused or not found, 4 a fault).

use std::path::PathBuf;

use crate::log::audit::{AuditError, Finding};
use crate::log::store::LogError;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// `verify` found a problem: the finding, with its stable code and position.
    #[error("verification failed: {0}")]
    Verification(Finding),
    /// The command line is wrong: what to fix.
    #[error("{0}")]
    Usage(String),
    /// `append`: some entries were refused (each is reported on its own line).
    #[error("{refused} of {total} entries were refused")]
    Refused {
        /// Entries refused.
        refused: usize,
        /// Entries submitted.
        total: usize,
    },
    /// An entry was refused, said in full (a match run's).
    #[error("{0}")]
    Rejected(String),
    /// The log could not be opened, read or written.
    #[error(transparent)]
    Log(#[from] LogError),
    /// A file or directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A key file could not be read or written.
    #[error(transparent)]
    KeyFile(#[from] crate::log::keyfile::KeyFileError),
    /// A verifier key (`log.json`'s, a `.pub` file's) is not one.
    #[error("{path}: not a verifier key: {source}")]
    VerifierKey {
        /// The file or directory.
        path: PathBuf,
        /// Why it is not one.
        #[source]
        source: crate::log::note::NoteError,
    },
    /// A key pair whose private key is not the one its `.pub` names.
    #[error("{prefix}: the private key does not match {pub_path}")]
    KeyMismatch {
        /// The key pair's path without its extension.
        prefix: PathBuf,
        /// The `.pub` file.
        pub_path: PathBuf,
    },
    /// A file the command writes exists already.
    #[error("{path}: exists; refusing to overwrite")]
    Exists {
        /// The file or directory.
        path: PathBuf,
    },
    /// The operator's bearer token could not be made.
    #[error("the operator's bearer token: {0}")]
    Credentials(#[from] crate::http::operator::CredentialsError),
    /// The genesis this command signed does not verify.
    #[error("the genesis signed here does not verify: {0}")]
    GenesisUnverified(#[source] crate::log::envelope::EnvelopeError),
    /// The ledger's stored state could not be read.
    #[error("the stored state cannot be read: {0}")]
    StoredState(#[source] crate::ledger::sled_state::StateStoreError),
    /// A match run failed.
    #[error(transparent)]
    Run(crate::runs::RunError),
    /// The ledger could not be opened, written or closed.
    #[error(transparent)]
    Ledger(#[from] crate::ledger::writer::LedgerError),
    /// A balance query named an object the ledger does not hold.
    #[error("{what} {id:?} is not in the ledger")]
    NotFound {
        /// What was looked up (`claim`, `pledge`, `allocation`, `student`, …).
        what: &'static str,
        /// The id looked up.
        id: String,
    },
    /// The demo stopped; its error has a stable code.
    #[error("demo failed ({code}): {source}", code = .0.code(), source = .0)]
    Demo(#[from] crate::demo::DemoError),
    /// `serve` could not start or stopped badly.
    #[error(transparent)]
    Serve(#[from] crate::http::ServeError),
    /// A command against a server (`client …`, `verify --url`) failed.
    #[error(transparent)]
    Client(#[from] crate::client::ClientError),
    /// The witness's directory could not be opened or written.
    #[error(transparent)]
    Witness(#[from] crate::witness::store::StoreError),
    /// An entry could not be read or verified before submission.
    #[error(transparent)]
    Submission(#[from] crate::api::submission::SubmissionError),
    /// A publication stopped (`publish`).
    #[error("publish ({code}): {0}", code = .0.code())]
    Publish(#[source] crate::publish::PublishError),
    /// Cities of the national view did not verify (reported, not in the totals).
    #[error("{failed} cities did not verify (reported above, left out of the totals)")]
    CitiesFailed {
        /// Cities that did not verify.
        failed: u64,
    },
    /// The national totals do not fit.
    #[error(transparent)]
    NationalTotal(crate::national::report::TotalOverflow),
    /// A mirror stopped or could not follow (`mirror`).
    #[error("mirror ({code}): {0}", code = .0.code())]
    Mirror(#[from] crate::mirror::MirrorError),
}

impl From<AuditError> for CliError {
    fn from(e: AuditError) -> Self {
        match e {
            AuditError::Finding(f) => CliError::Verification(f),
            AuditError::Log(e) => CliError::Log(e),
        }
    }
}

impl CliError {
    /// The documented exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Verification(_) => 1,
            CliError::CitiesFailed { .. } | CliError::NationalTotal(_) => 1,
            CliError::Usage(_) => 2,
            CliError::Refused { .. } | CliError::Rejected(_) => 3,
            CliError::Run(crate::runs::RunError::Refused { .. }) => 3,
            CliError::NotFound { .. } => 3,
            CliError::Log(_)
            | CliError::Io { .. }
            | CliError::KeyFile(_)
            | CliError::VerifierKey { .. }
            | CliError::KeyMismatch { .. }
            | CliError::Exists { .. }
            | CliError::Credentials(_)
            | CliError::GenesisUnverified(_)
            | CliError::StoredState(_)
            | CliError::Run(_)
            | CliError::Ledger(_)
            | CliError::Serve(_)
            | CliError::Witness(_)
            | CliError::Submission(_) => 4,
            CliError::Client(
                crate::client::ClientError::Verification(_)
                | crate::client::ClientError::Balance(_)
                | crate::client::ClientError::StateRoot { .. },
            ) => 1,
            CliError::Client(
                crate::client::ClientError::Status { .. }
                | crate::client::ClientError::Absent { .. },
            ) => 3,
            CliError::Client(_) => 4,
            CliError::Publish(e) => match e {
                crate::publish::PublishError::Usage(_) => 2,
                crate::publish::PublishError::Source { .. }
                | crate::publish::PublishError::Destination { .. } => 4,
                _ => 1,
            },
            CliError::Mirror(
                crate::mirror::MirrorError::Stopped(_) | crate::mirror::MirrorError::Refused(_),
            ) => 1,
            CliError::Mirror(_) => 4,
            CliError::Demo(e) => match e {
                crate::demo::DemoError::AuditFailed(_)
                | crate::demo::DemoError::Client(
                    crate::client::ClientError::Verification(_)
                    | crate::client::ClientError::Balance(_)
                    | crate::client::ClientError::StateRoot { .. },
                )
                | crate::demo::DemoError::Check { .. } => 1,
                crate::demo::DemoError::Unexpected { .. } => 3,
                _ => 4,
            },
        }
    }
}

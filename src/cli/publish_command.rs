//! `publish`: the log's read side written as static tlog tiles to a destination any
//! web server serves ([`crate::publish`]), once or, with `--follow`, continuously;
//! read from a running server (`--from URL`) or straight from a ledger's data
//! directory (`--data DIR`, [`crate::publish::local`]).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;

use super::CliError;
use crate::log::note::NoteVerifier;
use crate::publish::local::DataDir;
use crate::publish::{dest, follow, source::HttpSource, PublishError, Published, Publisher};

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["from", "data"])))]
pub struct PublishArgs {
    /// The running server to publish (`http://127.0.0.1:8080`): its checkpoint, tiles,
    /// state notes, pool and `/v1/log` are copied, after checking them against the
    /// checkpoint's signature and the checkpoint published before.
    #[arg(long, value_name = "URL")]
    pub from: Option<String>,
    /// The ledger directory to publish, read-only (a `serve` may be writing it): its
    /// acknowledged batches are copied into --work and published from there.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// With --data: the publisher's own working copy of the ledger (kept between runs,
    /// so a restart only catches up). Default: a directory under the system's temporary
    /// directory named after DIR.
    #[arg(long, value_name = "DIR", requires = "data")]
    pub work: Option<PathBuf>,
    /// The destination: `file:///dir`, or `s3://bucket/prefix` in a build with the
    /// `s3` feature (credentials and endpoint from the `AWS_*` environment variables).
    #[arg(long, value_name = "URL")]
    pub to: String,
    /// The operator verifier key the checkpoints must verify under (default: the one
    /// the source announces at `/v1/log`, with --data the one in DIR's `log.json`).
    #[arg(long, value_name = "VKEY")]
    pub operator_key: Option<String>,
    /// Keep publishing each new checkpoint (until killed).
    #[arg(long)]
    pub follow: bool,
    /// With --follow: how long to wait when the source's checkpoint has not moved.
    #[arg(long, value_name = "MS", default_value_t = 200)]
    pub interval_ms: u64,
}

/// `publish`.
///
/// # Errors
/// [`CliError::Publish`].
pub fn publish(args: PublishArgs) -> Result<(), CliError> {
    let operator = args
        .operator_key
        .as_deref()
        .map(NoteVerifier::from_vkey)
        .transpose()
        .map_err(|e| CliError::Usage(format!("--operator-key: {e}")))?;
    let mut data = match &args.data {
        Some(dir) => Some(DataDir::new(dir, &work_dir(dir, args.work.as_deref()))?),
        None => None,
    };
    let first = match (&mut data, &args.from) {
        (Some(data), _) => data.refresh()?,
        (None, Some(url)) => url.clone(),
        (None, None) => return Err(CliError::Usage("--from or --data is required".into())),
    };
    let mut publisher = Publisher::new(HttpSource::new(&first)?, dest::open(&args.to)?, operator);
    let destination = publisher.destination();
    let started = Instant::now();
    let mut report = |p: &Published| {
        if p.size != p.from || !args.follow {
            println!(
                "published {} entries (+{}, {} objects) to {destination} at {:.3} s",
                p.size,
                p.size - p.from,
                p.objects,
                started.elapsed().as_secs_f64()
            );
        }
    };
    let mut source = first;
    let mut once = || {
        if let Some(data) = &mut data {
            let now = data.refresh()?;
            if now != source {
                publisher.set_source(HttpSource::new(&now)?);
                source = now;
            }
        }
        publisher.publish_once()
    };
    let rounds = if args.follow { None } else { Some(1) };
    follow(
        &mut once,
        Duration::from_millis(args.interval_ms),
        rounds,
        &mut report,
    )
    .map_err(CliError::from)
}

/// `--work`, or one under the temporary directory named after the canonical `data`
/// path (so a restarted publisher finds its copy again).
fn work_dir(data: &std::path::Path, work: Option<&std::path::Path>) -> PathBuf {
    if let Some(work) = work {
        return work.to_path_buf();
    }
    let canonical = data.canonicalize().unwrap_or_else(|_| data.to_path_buf());
    let digest = blake3::hash(canonical.as_os_str().as_encoded_bytes());
    std::env::temp_dir().join(format!(
        "lesson-ledger-publish-{}",
        &digest.to_hex().as_str()[..16]
    ))
}

impl From<PublishError> for CliError {
    fn from(e: PublishError) -> Self {
        CliError::Publish(e)
    }
}

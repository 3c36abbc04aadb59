//! `publish`: the log's read side written as static tlog tiles to a destination any
//! web server serves ([`crate::publish`]), once or, with `--follow`, continuously.

use std::time::{Duration, Instant};

use clap::Args;

use super::CliError;
use crate::log::note::NoteVerifier;
use crate::publish::{dest, source::HttpSource, PublishError, Published, Publisher};

#[derive(Debug, Args)]
pub struct PublishArgs {
    /// The running server to publish (`http://127.0.0.1:8080`): its checkpoint, tiles,
    /// state notes and `/v1/log` are copied, after checking them against the
    /// checkpoint's signature and the checkpoint published before.
    #[arg(long, value_name = "URL")]
    pub from: String,
    /// The destination: `file:///dir`, or `s3://bucket/prefix` in a build with the
    /// `s3` feature (credentials and endpoint from the `AWS_*` environment variables).
    #[arg(long, value_name = "URL")]
    pub to: String,
    /// The operator verifier key the checkpoints must verify under (default: the one
    /// the server announces at `/v1/log`).
    #[arg(long, value_name = "VKEY")]
    pub operator_key: Option<String>,
    /// Keep publishing each new checkpoint (until killed).
    #[arg(long)]
    pub follow: bool,
    /// With --follow: how long to wait when the server's checkpoint has not moved.
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
    let publisher = Publisher::new(
        HttpSource::new(&args.from)?,
        dest::open(&args.to)?,
        operator,
    );
    let started = Instant::now();
    let mut report = |p: &Published| {
        if p.size != p.from || !args.follow {
            println!(
                "published {} entries (+{}, {} objects) to {} at {:.3} s",
                p.size,
                p.size - p.from,
                p.objects,
                publisher.destination(),
                started.elapsed().as_secs_f64()
            );
        }
    };
    let rounds = if args.follow { None } else { Some(1) };
    publisher
        .follow(Duration::from_millis(args.interval_ms), rounds, &mut report)
        .map_err(CliError::from)
}

impl From<PublishError> for CliError {
    fn from(e: PublishError) -> Self {
        CliError::Publish(e)
    }
}

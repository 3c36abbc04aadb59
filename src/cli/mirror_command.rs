//! `lesson-ledger mirror`: follow an origin ledger, verify and replay it, cosign and
//! serve it read-only ([`crate::mirror`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;

use super::CliError;
use crate::log::note::NoteSigner;
use crate::mirror::any::serve::AnyServer;
use crate::mirror::any::AnyMirror;
use crate::mirror::fetch::OriginReader;
use crate::mirror::serve::{origin_hash, MirrorServer};
use crate::mirror::{verify_limit, Mirror, MirrorError, WitnessPolicy};

/// `lesson-ledger mirror`.
#[derive(Debug, Args)]
pub struct MirrorArgs {
    /// The mirror's own directory (its copy of the log, its state, evidence).
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// The origin's URL: a `serve`, or a static tlog-tiles tree with the state notes.
    #[arg(long, value_name = "URL")]
    pub origin: String,
    /// The origin operator's verifier key; without it, the key the origin announces is
    /// pinned on first use (and a different one is refused later).
    #[arg(long, value_name = "VKEY")]
    pub origin_key: Option<String>,
    /// A witness's key whose cosignature on the origin's checkpoint is verified and
    /// then served beside the mirror's (a cosigner vkey, or an association's registered
    /// signed-note key; repeat for several). Lines of other keys are never served.
    #[arg(long = "witness-key", value_name = "VKEY")]
    pub witness_keys: Vec<String>,
    /// How many of those witnesses' cosignatures a checkpoint must carry for the mirror
    /// to follow it (default 1 when witness keys are given, else 0).
    #[arg(long, value_name = "K")]
    pub witnesses: Option<usize>,
    /// The mirror's cosigner key: `PREFIX.key` or PREFIX as `keygen` writes them.
    #[arg(long, value_name = "KEYFILE")]
    pub key: PathBuf,
    /// The address to serve on.
    #[arg(long, default_value = "127.0.0.1:8095")]
    pub addr: SocketAddr,
    /// Catch up once, print what was done as JSON, and exit (serving nothing).
    #[arg(long)]
    pub once: bool,
    /// With --once: then time the check of every mirrored leaf alone (the
    /// signature-verification limit) and print the catch-up rate against it.
    #[arg(long, requires = "once")]
    pub measure: bool,
    /// Seconds between two rounds of following.
    #[arg(long, default_value_t = 2)]
    pub interval: u64,
    /// Mirror any C2SP tlog-tiles log, entries opaque (no rules replayed, no state
    /// notes): the origin is a static tlog-tiles tree, `--origin-key` (a signed-note
    /// vkey) is required, and the log is served only under `/<origin hash>/`.
    #[arg(long, conflicts_with_all = ["witness_keys", "witnesses", "measure"])]
    pub any_log: bool,
}

/// Runs the mirror.
///
/// # Errors
/// The key; the origin; a stopped mirror (exit code 1); I/O.
pub(super) fn mirror(
    args: MirrorArgs,
    load_signer: fn(&Path) -> Result<NoteSigner, CliError>,
) -> Result<(), CliError> {
    let prefix = match args.key.to_str().and_then(|k| k.strip_suffix(".key")) {
        Some(p) => PathBuf::from(p),
        None => args.key.clone(),
    };
    let signer = load_signer(&prefix)?;
    if args.any_log {
        return any_log(args, signer);
    }
    let policy = WitnessPolicy::new(&args.witness_keys, args.witnesses)?;
    let reader = OriginReader::new(&args.origin)?;
    let mut mirror = Mirror::open(&args.data, signer, &reader, args.origin_key.as_deref())?;
    mirror.set_witnesses(policy);
    eprintln!("mirror cosigner {}", mirror.cosigner_vkey());
    if args.once {
        return catch_up(&mut mirror, &reader, args.measure);
    }
    if let Err(e) = mirror.follow_once(&reader) {
        report_round(&e);
    }
    let server = MirrorServer::start(
        &mirror,
        args.addr,
        crate::witness::server::shutdown_signal(),
    )?;
    eprintln!("listening on {}", server.url());
    eprintln!(
        "mirror checkpoint at {}/{}/checkpoint",
        server.url(),
        origin_hash(mirror.origin().as_str())
    );
    follow_until_stopped(
        || mirror.follow_once(&reader).map(|f| (f.from, f.to)),
        || server.is_finished(),
        Duration::from_secs(args.interval),
    );
    server.shutdown();
    Ok(())
}

fn catch_up(mirror: &mut Mirror, reader: &OriginReader, measure: bool) -> Result<(), CliError> {
    let started = Instant::now();
    let followed = mirror.follow_once(reader)?;
    let seconds = started.elapsed().as_secs_f64();
    let entries = followed.to - followed.from;
    let mut out = serde_json::json!({
        "from": followed.from,
        "to": followed.to,
        "signatures": followed.signatures,
        "seconds": seconds,
        "fetch_verify_seconds": followed.fetch_verify.as_secs_f64(),
        "import_seconds": followed.import.as_secs_f64(),
        "entries_per_s": entries as f64 / seconds,
        "signatures_per_s": followed.signatures as f64 / seconds,
    });
    if measure {
        let limit = verify_limit(mirror)?;
        let limit_sigs = limit.signatures as f64 / limit.seconds;
        out["verify_limit"] = serde_json::json!({
            "entries": limit.entries,
            "signatures": limit.signatures,
            "seconds": limit.seconds,
            "entries_per_s": limit.entries as f64 / limit.seconds,
            "signatures_per_s": limit_sigs,
        });
        out["share_of_limit"] =
            serde_json::json!(followed.signatures as f64 / seconds / limit_sigs);
    }
    println!("{out}");
    Ok(())
}

/// Runs a `round` of following every `interval` while the server runs (`finished`
/// says when it stopped); a stopped mirror keeps serving.
fn follow_until_stopped(
    mut round: impl FnMut() -> Result<(u64, u64), MirrorError>,
    finished: impl Fn() -> bool,
    interval: Duration,
) {
    let mut stopped = false;
    while !finished() {
        if !stopped {
            match round() {
                Ok((from, to)) if to > from => eprintln!("mirrored {from} .. {to}"),
                Ok(_) => {}
                Err(e) => {
                    stopped = matches!(e, MirrorError::Stopped(_));
                    report_round(&e);
                }
            }
        }
        let until = Instant::now() + interval;
        while Instant::now() < until && !finished() {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn report_round(e: &MirrorError) {
    eprintln!("mirror: {} ({e})", e.code());
}

/// `mirror --any-log`: [`crate::mirror::any`].
fn any_log(args: MirrorArgs, signer: NoteSigner) -> Result<(), CliError> {
    let key = args.origin_key.as_deref().ok_or_else(|| {
        MirrorError::Config("--any-log needs --origin-key, the origin's vkey".into())
    })?;
    let reader = OriginReader::new(&args.origin)?;
    let mut mirror = AnyMirror::open(&args.data, signer, &reader, key)?;
    eprintln!("mirror cosigner {}", mirror.cosigner_vkey());
    if args.once {
        let followed = mirror.follow_once(&reader)?;
        println!(
            "{}",
            serde_json::json!({"from": followed.from, "to": followed.to})
        );
        return Ok(());
    }
    let server = AnyServer::start(
        &mirror,
        args.addr,
        crate::witness::server::shutdown_signal(),
    )?;
    eprintln!(
        "mirror checkpoint at {}/{}/checkpoint",
        server.url(),
        origin_hash(mirror.origin())
    );
    follow_until_stopped(
        || mirror.follow_once(&reader).map(|f| (f.from, f.to)),
        || server.is_finished(),
        Duration::from_secs(args.interval),
    );
    server.shutdown();
    Ok(())
}

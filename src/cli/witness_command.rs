//! `lesson-ledger witness`: a C2SP tlog-witness server ([`crate::witness`]).

use std::path::{Path, PathBuf};

use super::{CliError, WitnessArgs};
use crate::log::note::{NoteSigner, NoteVerifier, Origin};
use crate::witness::server::shutdown_signal;
use crate::witness::{TrustedLog, Witness, WitnessServer};

/// Parses one `--log ORIGIN=VKEY`. The origin may itself hold '=', the vkey's name and
/// key id cannot, so the split is at the last '=' before the vkey's first '+'.
fn trusted_log(arg: &str) -> Result<TrustedLog, CliError> {
    let usage = |why: String| CliError::Usage(format!("--log {arg:?}: {why} (want ORIGIN=VKEY)"));
    let plus = arg
        .find('+')
        .ok_or_else(|| usage("no verifier key".into()))?;
    let eq = arg[..plus]
        .rfind('=')
        .ok_or_else(|| usage("no '='".into()))?;
    let origin = Origin::new(&arg[..eq]).map_err(|e| usage(e.to_string()))?;
    let key = NoteVerifier::from_vkey(&arg[eq + 1..]).map_err(|e| usage(e.to_string()))?;
    Ok(TrustedLog::new(origin, vec![key]))
}

/// Runs the witness until SIGTERM or Ctrl-C.
///
/// # Errors
/// Usage errors; the key; a stored state that cannot be read back (the witness does not
/// start rather than forget what it cosigned); binding.
pub(super) fn witness(
    args: WitnessArgs,
    load_signer: fn(&Path) -> Result<NoteSigner, CliError>,
) -> Result<(), CliError> {
    let logs = args
        .logs
        .iter()
        .map(|a| trusted_log(a))
        .collect::<Result<Vec<_>, _>>()?;
    // `--key assoc-01.key` and `--key assoc-01` name the same pair.
    let prefix = match args.key.to_str().and_then(|k| k.strip_suffix(".key")) {
        Some(p) => PathBuf::from(p),
        None => args.key.clone(),
    };
    let signer = load_signer(&prefix)?;
    let witness = Witness::open(&args.data, signer, logs)?;
    let vkey = witness.cosigner_vkey();
    let server = WitnessServer::start(witness, args.addr).map_err(|source| CliError::Io {
        path: args.data.clone(),
        source,
    })?;
    eprintln!("witness {vkey}");
    eprintln!("listening on {}", server.url());
    server
        .wait(shutdown_signal())
        .map_err(|source| CliError::Io {
            path: args.data,
            source,
        })
}

//! The log-layer commands: init, key, keygen, sign, append, checkpoint, proof, verify.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};

use super::input::{io_err, read_envelopes, read_input, Input};
use super::{
    AppendArgs, CheckpointArgs, CliError, ConsistencyArgs, InclusionArgs, InitArgs, KeygenArgs,
    SignArgs, VerifyArgs,
};
use crate::api::submission::{self, Answer, Family, Screen};
use crate::http::reads::{ConsistencyProof, InclusionProof};
use crate::ledger::payload::{DeclaredAssociation, Genesis};
use crate::ledger::sled_state::SledState;
use crate::ledger::writer::Ledger;
use crate::ledger::{defaults, PAYLOAD_TYPE};
use crate::log::audit::{audit_with, AuditOptions};
use crate::log::envelope::{EntryId, Envelope, KeyCache};
use crate::log::hash::Hash;
use crate::log::keyfile;
use crate::log::note::{KeyName, NoteSigner, NoteVerifier};
use crate::log::store::{layout, read_config, Outcome};
use crate::runs::replay::Replayer;

/// The operator's current verifier key: `log.json`'s name, `operator.key`'s key (the
/// first key, or the last one the log was handed over to).
pub(super) fn current_operator_vkey(dir: &Path) -> Result<String, CliError> {
    let first = NoteVerifier::from_vkey(&read_config(dir)?.operator_vkey).map_err(|source| {
        CliError::VerifierKey {
            path: dir.join(layout::CONFIG),
            source,
        }
    })?;
    let key = keyfile::read_private_pem(&dir.join(layout::OPERATOR_KEY))?;
    Ok(NoteSigner::new(first.name().clone(), key).vkey())
}

/// Hands the ledger over to a new operator key (see `Ledger::rotate_operator_key`) and
/// rewrites `DIR/operator.pub` to match `DIR/operator.key`.
pub(super) fn rotate_operator_key(dir: &Path) -> Result<(), CliError> {
    let (mut ledger, _) = Ledger::open(dir)?;
    let id = format!("operator-key-{}", ledger.log().size());
    match ledger.rotate_operator_key(keyfile::generate(), &id)? {
        Outcome::Ok(_) => {}
        other => {
            return Err(CliError::Rejected(format!(
                "the key change was not accepted: {other:?}"
            )))
        }
    }
    let vkey = ledger.log().verifier().to_vkey();
    ledger.close()?;
    let tmp = dir.join("operator.pub.tmp");
    fs::write(&tmp, format!("{vkey}\n")).map_err(io_err(&tmp))?;
    let pub_path = dir.join("operator.pub");
    fs::rename(&tmp, &pub_path).map_err(io_err(&pub_path))?;
    println!("{vkey}");
    Ok(())
}

/// Creates the ledger, writes `DIR/operator.pub` beside the operator key (so that
/// `sign --signer DIR/operator` works) and the operator's bearer token for the HTTP
/// service (`DIR/operator.token`), and appends the genesis signed by the operator.
pub(super) fn init(args: InitArgs) -> Result<(), CliError> {
    let genesis = match &args.genesis {
        Some(path) => Some(
            serde_json::from_slice::<Genesis>(&read_input(path)?)
                .map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))?,
        ),
        None => None,
    };
    // The associations' keys are read before anything is created.
    let associations = args
        .associations
        .iter()
        .map(|prefix| load_signer(prefix))
        .collect::<Result<Vec<_>, _>>()?;
    let dir = &args.data.data;
    // C2SP tlog-checkpoint: "The log's key name in its signature line SHOULD match the
    // origin line."
    let key_name = match &args.key_name {
        Some(name) => name.as_str(),
        None => {
            KeyName::new(args.origin.as_str()).map_err(|e| {
                CliError::Usage(format!(
                    "the origin {:?} cannot be the operator key's name ({e}); give --key-name",
                    args.origin
                ))
            })?;
            &args.origin
        }
    };
    let mut ledger = Ledger::create(dir, &args.origin, key_name)?;
    let vkey = ledger.log().config().operator_vkey.clone();
    let pub_path = dir.join("operator.pub");
    fs::write(&pub_path, format!("{vkey}\n")).map_err(io_err(&pub_path))?;
    crate::http::operator::ensure_token(dir)?;
    let mut genesis =
        genesis.unwrap_or_else(|| defaults::genesis(&args.origin, &args.operator, &vkey));
    genesis.origin = args.origin.clone();
    genesis.ledger = args.origin.clone();
    genesis.operator = args.operator.clone();
    genesis.operator_key = vkey.clone();
    genesis.associations = associations
        .iter()
        .map(|a| DeclaredAssociation {
            party: a.name().as_str().to_owned(),
            key: a.vkey(),
        })
        .collect();
    let operator = load_signer(&dir.join("operator"))?;
    let mut signers = vec![&operator];
    signers.extend(associations.iter());
    let envelope = Envelope::sign(PAYLOAD_TYPE, &defaults::genesis_payload(&genesis), &signers)
        .map_err(|e| CliError::Usage(e.to_string()))?;
    let verified = envelope
        .verify(&KeyCache::self_certifying())
        .map_err(CliError::GenesisUnverified)?;
    match ledger.submit(vec![verified])?.pop() {
        Some(Outcome::Ok(_)) => {}
        other => {
            return Err(CliError::Usage(format!(
                "the genesis was not accepted: {other:?}"
            )))
        }
    }
    println!("{vkey}");
    eprintln!("created ledger {:?} in {}", args.origin, dir.display());
    ledger.close()?;
    Ok(())
}

fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut s = prefix.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

pub(super) fn keygen(args: KeygenArgs) -> Result<(), CliError> {
    let key_path = with_suffix(&args.out, ".key");
    let pub_path = with_suffix(&args.out, ".pub");
    if pub_path.exists() {
        return Err(CliError::Exists { path: pub_path });
    }
    let name = KeyName::new(args.name.as_str()).map_err(|e| CliError::Usage(e.to_string()))?;
    let (key, write_key) = match &args.from {
        None => (keyfile::generate(), true),
        Some(from) => {
            let key = keyfile::read_private_pem(from)?;
            // Naming a key in place (`--from P.key --out P`) writes only P.pub.
            let same = fs::canonicalize(from).ok() == fs::canonicalize(&key_path).ok()
                && key_path.exists();
            (key, !same)
        }
    };
    let signer = NoteSigner::new(name, key.clone());
    if write_key {
        keyfile::write_private_pem(&key_path, &key)?;
    }
    fs::write(&pub_path, format!("{}\n", signer.vkey())).map_err(io_err(&pub_path))?;
    println!("{}", signer.vkey());
    Ok(())
}

/// Loads a key pair written by `keygen`: the name comes from PREFIX.pub.
pub(super) fn load_signer(prefix: &Path) -> Result<NoteSigner, CliError> {
    let pub_path = with_suffix(prefix, ".pub");
    let vkey = fs::read_to_string(&pub_path).map_err(io_err(&pub_path))?;
    let verifier =
        NoteVerifier::from_vkey(vkey.trim()).map_err(|source| CliError::VerifierKey {
            path: pub_path.clone(),
            source,
        })?;
    let key = keyfile::read_private_pem(&with_suffix(prefix, ".key"))?;
    let signer = NoteSigner::new(verifier.name().clone(), key);
    if signer.vkey() != verifier.to_vkey() {
        return Err(CliError::KeyMismatch {
            prefix: prefix.to_path_buf(),
            pub_path,
        });
    }
    Ok(signer)
}

pub(super) fn sign(args: SignArgs) -> Result<(), CliError> {
    let signers = args
        .signers
        .iter()
        .map(|p| load_signer(p))
        .collect::<Result<Vec<_>, _>>()?;
    let payload = read_input(&args.payload)?;
    let refs: Vec<&NoteSigner> = signers.iter().collect();
    let envelope = Envelope::sign(&args.payload_type, &payload, &refs)
        .map_err(|e| CliError::Usage(e.to_string()))?;
    println!("{}", envelope.to_json());
    Ok(())
}

pub(super) fn append(args: AppendArgs) -> Result<(), CliError> {
    if args.batch == 0 || args.batch > crate::limits::BATCH_ENTRIES_MAX {
        return Err(CliError::Usage(format!(
            "--batch must be 1..={}",
            crate::limits::BATCH_ENTRIES_MAX
        )));
    }
    let inputs = read_envelopes(&args.files)?;
    let (mut ledger, report) = Ledger::open(&args.data.data)?;
    if let Some((bytes, reason)) = report.cut {
        eprintln!("cut an unacknowledged torn tail of {bytes} bytes from log.dat: {reason}");
    }
    let keys = KeyCache::self_certifying();
    let mut refused = 0;
    for chunk in inputs.chunks(args.batch) {
        let answers = submit_chunk(&mut ledger, &keys, chunk)?;
        refused += print_answers(chunk, &answers)?;
    }
    ledger.close()?;
    if refused > 0 {
        return Err(CliError::Refused {
            refused,
            total: inputs.len(),
        });
    }
    Ok(())
}

/// One group commit through the one submission path (`POST /v1/entries` takes it too):
/// parse, verify (in parallel), append, and an answer for each input, in order.
fn submit_chunk(
    ledger: &mut Ledger,
    keys: &KeyCache,
    chunk: &[Input],
) -> Result<Vec<Answer>, CliError> {
    let parsed: Vec<_> = chunk
        .iter()
        .map(|i| Envelope::from_json(&i.bytes))
        .collect();
    let screens = vec![Screen::Verify; chunk.len()];
    let slots = submission::verify(parsed, screens, keys)?;
    let (to_append, pending) = submission::split(slots);
    let outcomes = ledger.submit(to_append)?;
    Ok(pending.merge(outcomes)?)
}

/// Prints one JSON line per input (its source and its result, worded as the HTTP
/// service words it) and returns how many were refused. Printed only after the
/// commit: every "ok" printed is durable.
fn print_answers(chunk: &[Input], answers: &[Answer]) -> Result<usize, CliError> {
    /// A result with where its envelope came from.
    #[derive(serde::Serialize)]
    struct Line<'a> {
        source: &'a str,
        #[serde(flatten)]
        result: &'a crate::api::submission::EntryResult,
    }
    let stdout_err = |source| CliError::Io {
        path: PathBuf::from("<stdout>"),
        source,
    };
    let mut out = io::stdout().lock();
    let mut refused = 0;
    for (input, answer) in chunk.iter().zip(answers) {
        if answer.family != Family::Accepted {
            refused += 1;
        }
        let line = serde_json::to_string(&Line {
            source: &input.source,
            result: &answer.result,
        })
        .map_err(|e| CliError::Usage(format!("{}: cannot print the result: {e}", input.source)))?;
        writeln!(out, "{line}").map_err(stdout_err)?;
    }
    out.flush().map_err(stdout_err)?;
    Ok(refused)
}

pub(super) fn checkpoint(args: CheckpointArgs) -> Result<(), CliError> {
    let (ledger, _) = Ledger::open(&args.data.data)?;
    let log = ledger.log();
    if args.all {
        for text in log.checkpoints()? {
            println!("{text}");
        }
    } else {
        print!("{}", log.checkpoint().text());
    }
    Ok(())
}

fn hashes(proof: &[Hash]) -> Vec<String> {
    proof.iter().map(Hash::to_base64).collect()
}

/// Prints `value` as the HTTP API answers it (`GET /v1/proofs/...`): the same JSON,
/// fields and all, so one verifier reads both. No root is printed: a root is only
/// worth what signs it, and the signed ones are in `checkpoint --all`.
fn print_json(value: &impl serde::Serialize) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| CliError::Usage(format!("the proof cannot be shown as JSON: {e}")))?;
    println!("{text}");
    Ok(())
}

pub(super) fn inclusion(args: InclusionArgs) -> Result<(), CliError> {
    let (ledger, _) = Ledger::open(&args.data.data)?;
    let log = ledger.log();
    let index = match (args.index, &args.entry_id) {
        (Some(i), _) => i,
        (None, Some(id)) => {
            let id: EntryId = id
                .parse()
                .map_err(|_| CliError::Usage(format!("--entry-id {id:?} is not 64 hex digits")))?;
            log.index_of(&id)?
                .ok_or_else(|| CliError::Usage(format!("no entry with id {id}")))?
        }
        (None, None) => return Err(CliError::Usage("give --index or --entry-id".into())),
    };
    let size = args.size.unwrap_or(log.size());
    let proof = log.inclusion_proof(index, size)?;
    print_json(&InclusionProof {
        index,
        size,
        leaf_hash: log.leaf_hash_at(index)?.to_base64(),
        proof: hashes(&proof),
    })
}

pub(super) fn consistency(args: ConsistencyArgs) -> Result<(), CliError> {
    let (ledger, _) = Ledger::open(&args.data.data)?;
    let log = ledger.log();
    let to = args.to.unwrap_or(log.size());
    let proof = log.consistency_proof(args.from, to)?;
    print_json(&ConsistencyProof {
        from: args.from,
        to,
        proof: hashes(&proof),
    })
}

/// `verify --data DIR`: the file audit, the replay, and the stored state compared.
pub(super) fn verify_data(data: &Path, args: VerifyArgs) -> Result<(), CliError> {
    let known_checkpoint = match &args.checkpoint {
        Some(path) => Some(fs::read_to_string(path).map_err(io_err(path))?),
        None => None,
    };
    if args.operator_key.is_none() {
        // Said every time: a trust anchor read from the directory audited proves the log
        // consistent under the key it names, not who signed it (schemas/README.md §7).
        eprintln!(
            "note: the operator key is taken from {}, in the directory audited; give \
             --operator-key VKEY obtained elsewhere to check who signed",
            data.join(layout::CONFIG).display()
        );
    }
    let options = AuditOptions {
        operator_vkey: args.operator_key,
        known_checkpoint,
    };
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "verifying {bar:40} {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut replayer = Replayer::new();
    let result = audit_with(
        data,
        &options,
        &|done, total| {
            bar.set_length(total);
            bar.set_position(done);
        },
        &mut replayer,
    );
    bar.finish_and_clear();
    let summary = result?;
    let state_line = compare_stored_state(data, &replayer)?;
    println!(
        "ok: {} entries, {} signatures, {} checkpoints verified; origin {}; root {}; {} bytes in {:.2?} ({:.0} signatures/s)",
        summary.entries,
        summary.signatures,
        summary.checkpoints,
        summary.origin,
        summary.root.to_base64(),
        summary.bytes,
        summary.elapsed,
        summary.signatures as f64 / summary.elapsed.as_secs_f64().max(1e-9)
    );
    println!("{state_line}");
    let runs = replayer.runs();
    match runs.open_run() {
        None => println!(
            "match runs: {} re-run, each equal to its record ({} cut short and closed)",
            runs.checked(),
            runs.closed()
        ),
        Some((run, made, declared)) => println!(
            "match runs: {} re-run, each equal to its record so far ({} cut short and closed); run {run} has {made} of its {declared} allocations (still being written, or cut short: the next run or server start closes it)",
            runs.checked(),
            runs.closed()
        ),
    }
    Ok(())
}

/// Compares the replayed state with the one the ledger stored, if it can be opened (a
/// running server holds its lock; then the replay alone is reported).
fn compare_stored_state(dir: &Path, replayer: &Replayer) -> Result<String, CliError> {
    let digest = crate::ledger::units::hex(&replayer.state().root());
    let index = dir.join(layout::INDEX);
    let stored = if index.exists() {
        sled::open(&index).ok()
    } else {
        None
    };
    let Some(db) = stored else {
        return Ok(format!("state: replayed {} entries, {} objects, state map root {digest} (stored state not readable: not compared)", replayer.entries(), replayer.state().len()));
    };
    let state = SledState::open(&db).map_err(CliError::StoredState)?;
    if state.size() < replayer.entries() {
        return Ok(format!(
            "state: replayed {} entries, state map root {digest}; the stored state is behind ({} entries) and is caught up on the next open",
            replayer.entries(),
            state.size()
        ));
    }
    replayer.compare(&state).map_err(|d| {
        CliError::Verification(crate::log::audit::Finding {
            offset: 0,
            index: None,
            what: format!("stored state differs from the replay: {}", d.what),
            expected: d.expected,
            found: d.found,
            source: None,
        })
    })?;
    Ok(format!(
        "state: replayed {} entries, {} objects, state map root {digest}, equal to the stored state",
        replayer.entries(),
        replayer.state().len()
    ))
}

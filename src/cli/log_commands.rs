//! The log-layer commands: init, key, keygen, sign, append, checkpoint, proof, verify.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use super::{
    AppendArgs, CheckpointArgs, Cli, CliError, Command, ConsistencyArgs, InclusionArgs, InitArgs,
    KeygenArgs, ProofCommand, SignArgs, VerifyArgs,
};
use crate::http::reads::{ConsistencyProof, InclusionProof};
use crate::ledger::payload::{DeclaredAssociation, Genesis};
use crate::ledger::sled_state::SledState;
use crate::ledger::writer::Ledger;
use crate::ledger::{defaults, PAYLOAD_TYPE};
use crate::log::audit::{audit_with, AuditOptions};
use crate::log::envelope::{verify_batch, EntryId, Envelope, KeyCache};
use crate::log::hash::Hash;
use crate::log::keyfile;
use crate::log::note::{KeyName, NoteSigner, NoteVerifier};
use crate::log::store::{layout, read_config, Outcome};
use crate::runs::replay::Replayer;

/// Runs one parsed command line.
///
/// # Errors
/// A [`CliError`] whose `exit_code` `main` returns.
pub fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Init(args) => init(args),
        Command::Key(args) => {
            println!("{}", current_operator_vkey(&args.data)?);
            Ok(())
        }
        Command::RotateOperatorKey(args) => rotate_operator_key(&args.data),
        Command::Keygen(args) => keygen(args),
        Command::Sign(args) => sign(args),
        Command::Append(args) => append(args),
        Command::Checkpoint(args) => checkpoint(args),
        Command::Proof(ProofCommand::Inclusion(args)) => inclusion(args),
        Command::Proof(ProofCommand::Consistency(args)) => consistency(args),
        Command::Verify(args) => verify(args),
        Command::Balance(args) => super::ledger_commands::balance(args),
        Command::Report(args) => super::ledger_commands::report(args),
        Command::Demo(args) => super::demo_command::demo(args),
        Command::Match(args) => super::match_command::run_match_command(args),
        Command::Serve(args) => Ok(crate::http::serve(&args.data.data, args.addr)?),
        Command::Client(command) => super::client_commands::run(command),
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> CliError + '_ {
    move |source| CliError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Creates the ledger, writes `DIR/operator.pub` beside the operator key (so that
/// The operator's current verifier key: `log.json`'s name, `operator.key`'s key (the
/// first key, or the last one the log was handed over to).
fn current_operator_vkey(dir: &Path) -> Result<String, CliError> {
    let first = NoteVerifier::from_vkey(&read_config(dir)?.operator_vkey)
        .map_err(|e| CliError::Key(e.to_string()))?;
    let key = keyfile::read_private_pem(&dir.join(layout::OPERATOR_KEY))
        .map_err(|e| CliError::Key(e.to_string()))?;
    Ok(NoteSigner::new(first.name().clone(), key).vkey())
}

/// Hands the ledger over to a new operator key (see `Ledger::rotate_operator_key`) and
/// rewrites `DIR/operator.pub` to match `DIR/operator.key`.
fn rotate_operator_key(dir: &Path) -> Result<(), CliError> {
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

/// `sign --signer DIR/operator` works) and the operator's bearer token for the HTTP
/// service (`DIR/operator.token`), and appends the genesis signed by the operator.
fn init(args: InitArgs) -> Result<(), CliError> {
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
    crate::http::operator::ensure_token(dir).map_err(|e| CliError::Key(e.to_string()))?;
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
        .map_err(|e| CliError::Key(e.to_string()))?;
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

fn keygen(args: KeygenArgs) -> Result<(), CliError> {
    let key_path = with_suffix(&args.out, ".key");
    let pub_path = with_suffix(&args.out, ".pub");
    if pub_path.exists() {
        return Err(CliError::Key(format!(
            "{}: exists; refusing to overwrite",
            pub_path.display()
        )));
    }
    let name = KeyName::new(args.name.as_str()).map_err(|e| CliError::Usage(e.to_string()))?;
    let key_err = |e: keyfile::KeyFileError| CliError::Key(e.to_string());
    let (key, write_key) = match &args.from {
        None => (keyfile::generate(), true),
        Some(from) => {
            let key = keyfile::read_private_pem(from).map_err(key_err)?;
            // Naming a key in place (`--from P.key --out P`) writes only P.pub.
            let same = fs::canonicalize(from).ok() == fs::canonicalize(&key_path).ok()
                && key_path.exists();
            (key, !same)
        }
    };
    let signer = NoteSigner::new(name, key.clone());
    if write_key {
        keyfile::write_private_pem(&key_path, &key).map_err(key_err)?;
    }
    fs::write(&pub_path, format!("{}\n", signer.vkey())).map_err(io_err(&pub_path))?;
    println!("{}", signer.vkey());
    Ok(())
}

/// Loads a key pair written by `keygen`: the name comes from PREFIX.pub.
pub(super) fn load_signer(prefix: &Path) -> Result<NoteSigner, CliError> {
    let pub_path = with_suffix(prefix, ".pub");
    let vkey = fs::read_to_string(&pub_path).map_err(io_err(&pub_path))?;
    let verifier = NoteVerifier::from_vkey(vkey.trim())
        .map_err(|e| CliError::Key(format!("{}: {e}", pub_path.display())))?;
    let key = keyfile::read_private_pem(&with_suffix(prefix, ".key"))
        .map_err(|e| CliError::Key(e.to_string()))?;
    let signer = NoteSigner::new(verifier.name().clone(), key);
    if signer.vkey() != verifier.to_vkey() {
        return Err(CliError::Key(format!(
            "{}: the private key does not match {}",
            prefix.display(),
            pub_path.display()
        )));
    }
    Ok(signer)
}

fn read_input(path: &Path) -> Result<Vec<u8>, CliError> {
    if path == Path::new("-") {
        let mut buf = Vec::new();
        io::stdin().read_to_end(&mut buf).map_err(io_err(path))?;
        Ok(buf)
    } else {
        fs::read(path).map_err(io_err(path))
    }
}

fn sign(args: SignArgs) -> Result<(), CliError> {
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

/// One envelope's bytes and where they came from, for messages.
pub(super) struct Input {
    pub(super) source: String,
    pub(super) bytes: Vec<u8>,
}

pub(super) fn read_envelopes(files: &[PathBuf]) -> Result<Vec<Input>, CliError> {
    let mut inputs = Vec::new();
    for path in files {
        let bytes = read_input(path)?;
        if path.extension().is_some_and(|e| e == "jsonl") {
            for (n, line) in bytes.split(|&b| b == b'\n').enumerate() {
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                inputs.push(Input {
                    source: format!("{}:{}", path.display(), n + 1),
                    bytes: line.to_vec(),
                });
            }
        } else {
            inputs.push(Input {
                source: path.display().to_string(),
                bytes,
            });
        }
    }
    Ok(inputs)
}

fn append(args: AppendArgs) -> Result<(), CliError> {
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
    let stdout = io::stdout();
    let mut refused = 0;
    for chunk in inputs.chunks(args.batch) {
        let parsed: Vec<_> = chunk
            .iter()
            .map(|i| Envelope::from_json(&i.bytes))
            .collect();
        let mut lines: Vec<Option<serde_json::Value>> = vec![None; chunk.len()];
        let mut good = Vec::new();
        let mut good_at = Vec::new();
        for (i, p) in parsed.into_iter().enumerate() {
            match p {
                Ok(envelope) => {
                    good.push(envelope);
                    good_at.push(i);
                }
                Err(e) => {
                    lines[i] = Some(
                        json!({"source": chunk[i].source, "status": e.code(), "error": e.to_string()}),
                    )
                }
            }
        }
        let verified = verify_batch(good, &keys);
        let mut to_append = Vec::new();
        let mut append_at = Vec::new();
        for (v, i) in verified.into_iter().zip(good_at) {
            match v {
                Ok(env) => {
                    to_append.push(env);
                    append_at.push(i);
                }
                Err(e) => {
                    lines[i] = Some(
                        json!({"source": chunk[i].source, "status": e.code(), "error": e.to_string()}),
                    )
                }
            }
        }
        let outcomes = ledger.submit(to_append)?;
        for (outcome, i) in outcomes.into_iter().zip(append_at) {
            let source = &chunk[i].source;
            lines[i] = Some(match outcome {
                Outcome::Ok(r) => json!({"source": source, "status": "ok", "receipt": r}),
                Outcome::Exists(r) => json!({"source": source, "status": "exists", "receipt": r}),
                Outcome::ExistsWithDifferentPayload { existing, .. } => json!({
                    "source": source, "status": "exists_with_different_payload",
                    "error": format!("client id already used by entry {existing}")}),
                Outcome::Refused(e) => {
                    json!({"source": source, "status": e.code(), "error": e.to_string()})
                }
            });
        }
        // Printed only now: every "ok" above is durable.
        let mut out = stdout.lock();
        for line in lines.into_iter().flatten() {
            if line["status"] != "ok" && line["status"] != "exists" {
                refused += 1;
            }
            writeln!(out, "{line}").map_err(io_err(Path::new("<stdout>")))?;
        }
        out.flush().map_err(io_err(Path::new("<stdout>")))?;
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

fn checkpoint(args: CheckpointArgs) -> Result<(), CliError> {
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

fn inclusion(args: InclusionArgs) -> Result<(), CliError> {
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

fn consistency(args: ConsistencyArgs) -> Result<(), CliError> {
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

fn verify(args: VerifyArgs) -> Result<(), CliError> {
    let data = match (&args.data, &args.url) {
        (Some(data), _) => data.clone(),
        (None, Some(url)) => {
            return super::client_commands::verify_remote(
                url,
                args.operator_key.as_deref(),
                args.state.as_deref(),
            )
        }
        (None, None) => return Err(CliError::Usage("--data or --url is required".into())),
    };
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
        &data,
        &options,
        &|done, total| {
            bar.set_length(total);
            bar.set_position(done);
        },
        &mut replayer,
    );
    bar.finish_and_clear();
    let summary = result?;
    let state_line = compare_stored_state(&data, &replayer)?;
    println!(
        "ok: {} entries, {} signatures, {} checkpoints verified; origin {}; root {}; {} bytes in {:.2?}",
        summary.entries,
        summary.signatures,
        summary.checkpoints,
        summary.origin,
        summary.root.to_base64(),
        summary.bytes,
        summary.elapsed
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
    let digest = crate::ledger::units::hex(&replayer.state().digest());
    let index = dir.join(layout::INDEX);
    let stored = if index.exists() {
        sled::open(&index).ok()
    } else {
        None
    };
    let Some(db) = stored else {
        return Ok(format!("state: replayed {} entries, {} objects, digest {digest} (stored state not readable: not compared)", replayer.entries(), replayer.state().len()));
    };
    let state = SledState::open(&db).map_err(|e| CliError::Key(e.to_string()))?;
    if state.size() < replayer.entries() {
        return Ok(format!(
            "state: replayed {} entries, digest {digest}; the stored state is behind ({} entries) and is caught up on the next open",
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
        })
    })?;
    Ok(format!(
        "state: replayed {} entries, {} objects, digest {digest}, equal to the stored state",
        replayer.entries(),
        replayer.state().len()
    ))
}

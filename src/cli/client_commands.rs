//! The client commands: `client submit`, `client balance`, and `verify --url` (a remote
//! audit); see [`crate::client`].

use serde_json::json;

use super::input::read_envelopes;
use super::{
    CliError, ClientBalanceArgs, ClientCommand, ClientPreferencesArgs, ClientSubmitArgs, VerifyArgs,
};
use crate::api::{AllocationAnswer, BalanceAnswer, ClaimAnswer, PledgeAnswer, StudentAnswer};
use crate::client::{
    audit_visiting, audit_witnessed, preferences_envelope, preferences_id, verify_receipt, Client,
    ProvenObjects, Trust,
};
use crate::ledger::payload::ClaimPreferencesSet;
use crate::log::envelope::Envelope;
use crate::log::note::NoteVerifier;
use crate::runs::replay::Replayer;

/// Runs a `client` subcommand.
///
/// # Errors
/// [`CliError::Client`] for transport, status and verification failures;
/// [`CliError::Refused`] when an entry was not appended.
pub fn run(command: ClientCommand) -> Result<(), CliError> {
    match command {
        ClientCommand::Submit(args) => submit(args),
        ClientCommand::Balance(args) => balance(args),
        ClientCommand::Preferences(args) => preferences(args),
    }
}

fn preferences(args: ClientPreferencesArgs) -> Result<(), CliError> {
    let student = super::log_commands::load_signer(&args.key)?;
    let client = Client::new(&args.url)?;
    let operator = client.operator(args.operator_key.as_deref())?;
    let ledger = client.log_info()?.origin;
    let nonce = format!("{:?}", std::time::SystemTime::now());
    let prefs = ClaimPreferencesSet {
        id: args
            .id
            .unwrap_or_else(|| preferences_id(&args.claim, nonce.as_bytes())),
        ledger,
        claim: args.claim,
        subjects: args.subjects,
        accepts_online: args.online,
        accepted_districts: args.districts,
        requests: args.requests,
    };
    let envelope = preferences_envelope(&prefs, &student)
        .map_err(|e| CliError::Usage(format!("the entry cannot be signed: {e}")))?;
    let text = envelope.to_json();
    let results = client.submit(std::slice::from_ref(&text))?;
    let Some(result) = results.first() else {
        return Err(CliError::Usage("the server returned no result".into()));
    };
    if let Some(receipt) = &result.receipt {
        verify_receipt(receipt, &envelope, &operator)?;
    }
    println!("{}", json!({"id": prefs.id, "result": result}));
    if result.status != "ok" && result.status != "exists" {
        return Err(CliError::Refused {
            refused: 1,
            total: 1,
        });
    }
    Ok(())
}

fn submit(args: ClientSubmitArgs) -> Result<(), CliError> {
    let inputs = read_envelopes(&args.files)?;
    let mut texts = Vec::with_capacity(inputs.len());
    for input in &inputs {
        let text = std::str::from_utf8(&input.bytes)
            .map_err(|_| CliError::Usage(format!("{}: not UTF-8", input.source)))?;
        texts.push(text.trim().to_owned());
    }
    let client = Client::new(&args.url)?;
    let operator = client.operator(args.operator_key.as_deref())?;
    let results = client.submit(&texts)?;
    let mut refused = 0;
    for ((input, text), result) in inputs.iter().zip(&texts).zip(&results) {
        if let Some(receipt) = &result.receipt {
            // The server accepted it, so it parses; a receipt for what was not sent fails.
            let envelope = Envelope::from_json(text.as_bytes())
                .map_err(|e| CliError::Usage(format!("{}: {e}", input.source)))?;
            verify_receipt(receipt, &envelope, &operator)?;
        }
        if result.status != "ok" && result.status != "exists" {
            refused += 1;
        }
        println!("{}", json!({"source": input.source, "result": result}));
    }
    if refused > 0 {
        return Err(CliError::Refused {
            refused,
            total: results.len(),
        });
    }
    Ok(())
}

fn balance(args: ClientBalanceArgs) -> Result<(), CliError> {
    let client = Client::new(&args.url)?;
    let operator = client.operator(args.operator_key.as_deref())?;
    let associations = association_verifiers(&args.association_keys)?;
    if args.witnesses == 0 {
        eprintln!("warning: --witnesses 0 trusts the operator's signature alone");
    }
    let trust = Trust::witnessed(operator.clone(), associations, args.witnesses, args.state)
        .map_err(|e| CliError::Usage(format!("{e} (give --association-key, or --witnesses 0)")))?;
    let t = &args.target;
    let shown = match (&t.claim, &t.pledge, &t.allocation, &t.student) {
        (Some(id), ..) => show(client.balance_with::<ClaimAnswer>(id, &trust)?),
        (_, Some(id), ..) => show(client.balance_with::<PledgeAnswer>(id, &trust)?),
        (_, _, Some(id), _) => show(client.balance_with::<AllocationAnswer>(id, &trust)?),
        (_, _, _, Some(id)) => show(client.balance_with::<StudentAnswer>(id, &trust)?),
        _ => {
            return Err(CliError::Usage(
                "one of --claim, --pledge, --allocation, --student".into(),
            ))
        }
    }?;
    eprintln!(
        "verified: every object proven against a state note and {shown} entries included in checkpoints signed by {} and cosigned by at least {} association(s)",
        operator.name(),
        args.witnesses
    );
    Ok(())
}

/// Prints a verified answer: its objects (without their proofs), the indexes of its
/// entries, the lessons waiting on the family with their window's end, and the note
/// and checkpoint it was verified against. Returns the number of entries.
fn show<A: BalanceAnswer + ProvenObjects>(answer: A) -> Result<usize, CliError> {
    let cannot = |e: serde_json::Error| CliError::Usage(format!("cannot print the balance: {e}"));
    let open: Vec<_> = answer
        .open_lessons()
        .iter()
        .map(|(allocation, l)| {
            json!({"allocation": allocation, "lesson": l.lesson,
                   "window_end_micros": l.window_end_micros})
        })
        .collect();
    let entries: Vec<u64> = answer.entries().iter().map(|e| e.index).collect();
    let mut printed = serde_json::to_value(&answer).map_err(cannot)?;
    if let serde_json::Value::Object(fields) = &mut printed {
        for value in fields.values_mut() {
            without_proofs(value);
        }
        fields.insert("entries".into(), json!(entries));
        fields.remove("next");
        fields.insert("open_lessons".into(), json!(open));
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&printed).map_err(cannot)?
    );
    Ok(entries.len())
}

/// Replaces each proven object (`{"object":…,"proof":…}`) in `value` by the object.
fn without_proofs(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Array(items) => items.iter_mut().for_each(without_proofs),
        serde_json::Value::Object(fields) if fields.contains_key("proof") => {
            if let Some(object) = fields.remove("object") {
                *value = object;
            }
        }
        _ => {}
    }
}

/// The association keys given on the command line, as verifiers.
fn association_verifiers(vkeys: &[String]) -> Result<Vec<NoteVerifier>, CliError> {
    vkeys
        .iter()
        .map(|vkey| {
            NoteVerifier::from_vkey(vkey)
                .map_err(|e| CliError::Usage(format!("--association-key {vkey}: {e}")))
        })
        .collect()
}

/// `verify --url URL [--state FILE] [--operator-key VKEY] [--association-key VKEY…]
/// [--witnesses K]`: the remote audit, the rules replayed on every entry served and the
/// operator's signed state note of the checkpoint's size compared with the replayed
/// state map root; with association keys, the checkpoint must carry K of their
/// cosignatures.
///
/// # Errors
/// [`CliError::Client`]; a verification failure exits 1.
pub fn verify_remote(url: &str, args: &VerifyArgs) -> Result<(), CliError> {
    let client = Client::new(url)?;
    let associations = association_verifiers(&args.association_keys)?;
    let witnesses = args
        .witnesses
        .unwrap_or(usize::from(!associations.is_empty()));
    let state = args.state.as_deref();
    let mut replayer = Replayer::new();
    let report = if witnesses == 0 {
        audit_visiting(
            &client,
            args.operator_key.as_deref(),
            state,
            &mut replayer,
            &|_, _| {},
        )?
    } else {
        let operator = client.operator(args.operator_key.as_deref())?;
        let trust = Trust::witnessed(operator, associations, witnesses, None)
            .map_err(|e| CliError::Usage(format!("{e} (give --association-key)")))?;
        audit_witnessed(&client, &trust, state, &mut replayer, &|_, _| {})?
    };
    // One line, so that scripts reading its first or its last line both get it all.
    let witnessed = match witnesses {
        0 => String::new(),
        k => format!("; at least {k} verified association cosignature(s)"),
    };
    let consistency = match report.consistent_with {
        Some(m) => format!("; consistent with the checkpoint of size {m} verified before"),
        None => String::new(),
    };
    println!(
        "ok: {} entries, {} signatures verified; origin {}; root {}; rules replayed ({} objects), state map root {} as in the state note of size {} ({}){witnessed}{consistency}",
        report.size,
        report.signatures,
        report.origin,
        report.root.to_base64(),
        replayer.state().len(),
        crate::ledger::units::hex(&replayer.state().root()),
        report.size,
        if report.state_notes_listed {
            format!("the roots of all {} state notes compared", report.state_notes)
        } else {
            "the server lists no state notes: only this one compared".to_owned()
        },
    );
    Ok(())
}

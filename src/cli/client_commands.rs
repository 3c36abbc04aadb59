//! The client commands: `client submit`, `client balance`, and `verify --url` (a remote
//! audit); see [`crate::client`].

use std::path::Path;

use serde_json::json;

use super::log_commands::read_envelopes;
use super::{CliError, ClientBalanceArgs, ClientCommand, ClientPreferencesArgs, ClientSubmitArgs};
use crate::client::{
    audit, preferences_envelope, preferences_id, verify_receipt, BalanceKind, Client, Trust,
};
use crate::ledger::payload::ClaimPreferencesSet;
use crate::log::envelope::Envelope;
use crate::log::note::NoteVerifier;

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
    let t = &args.target;
    let (kind, id) = match (&t.claim, &t.pledge, &t.allocation, &t.student) {
        (Some(id), ..) => (BalanceKind::Claim, id),
        (_, Some(id), ..) => (BalanceKind::Pledge, id),
        (_, _, Some(id), _) => (BalanceKind::Allocation, id),
        (_, _, _, Some(id)) => (BalanceKind::Student, id),
        _ => {
            return Err(CliError::Usage(
                "one of --claim, --pledge, --allocation, --student".into(),
            ))
        }
    };
    let client = Client::new(&args.url)?;
    let operator = client.operator(args.operator_key.as_deref())?;
    let mut associations = Vec::with_capacity(args.association_keys.len());
    for vkey in &args.association_keys {
        associations.push(
            NoteVerifier::from_vkey(vkey)
                .map_err(|e| CliError::Usage(format!("--association-key {vkey}: {e}")))?,
        );
    }
    if args.witnesses == 0 {
        eprintln!("warning: --witnesses 0 trusts the operator's signature alone");
    }
    let trust = Trust::witnessed(operator.clone(), associations, args.witnesses, args.state)
        .map_err(|e| CliError::Usage(format!("{e} (give --association-key, or --witnesses 0)")))?;
    let b = client.balance_with(kind, id, &trust)?;
    // A `Value` always serializes; printing nothing instead would look like an answer.
    let printed = serde_json::to_string_pretty(&json!({
        "balance": b.balance,
        "entries": b.entries.iter().map(|e| e.index).collect::<Vec<_>>(),
        "verified_against": b.checkpoint,
    }))
    .map_err(|e| CliError::Usage(format!("cannot print the balance: {e}")))?;
    println!("{printed}");
    eprintln!(
        "verified: {} entries included in checkpoints signed by {} and cosigned by at least {} association(s)",
        b.entries.len(),
        operator.name(),
        args.witnesses
    );
    Ok(())
}

/// `verify --url URL [--state FILE]`.
///
/// # Errors
/// [`CliError::Client`]; a verification failure exits 1.
pub fn verify_remote(
    url: &str,
    operator_key: Option<&str>,
    state: Option<&Path>,
) -> Result<(), CliError> {
    let client = Client::new(url)?;
    let report = audit(&client, operator_key, state)?;
    let consistency = match report.consistent_with {
        Some(m) => format!("; consistent with the checkpoint of size {m} verified before"),
        None => String::new(),
    };
    println!(
        "ok: {} entries, {} signatures verified; origin {}; root {}{consistency}",
        report.size,
        report.signatures,
        report.origin,
        report.root.to_base64()
    );
    Ok(())
}

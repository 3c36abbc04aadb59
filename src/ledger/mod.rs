//! The lesson-credit rules: the domain layer of Lesson Ledger (see `MISSION.md`).
//!
//! The log layer verifies each DSSE envelope (payload type [`PAYLOAD_TYPE`]) and, inside
//! its single writer, in log order, calls [`decide`] with the entry's [`EntryContext`]
//! (index, ledger time, verified signer keys) and payload bytes. `decide` is *pure*: it
//! reads the state through a [`StateView`] and returns the [`Changes`] the entry makes, or
//! a [`RuleError`] naming the rule broken. A refused entry therefore changes nothing, by
//! construction; an accepted one is appended together with its changes. Replay (the
//! auditor) feeds every stored entry through the same function from genesis and must
//! reach the same state and the same [state map root](state_map).
//!
//! Entry kinds (schemas in `schemas/entries/<kind>.schema.json`): `genesis`,
//! `party_registered`, `key_rotated`, `key_revoked`, `key_recovered`, `institution_closed`,
//! `institution_whitelisted`, `institution_blacklisted`, `claim_recorded`, `claim_preferences_set`,
//! `pledge_offered`, `pledge_approved`, `pledge_withdrawn`, `allocation_made`,
//! `match_run`, `allocation_expired`, `allocation_declined`, `lesson_consumed`, `lesson_proposed`,
//! `lesson_confirmed`, `lesson_disputed`, `lesson_deemed_confirmed`, `dispute_resolved`.
//!
//! Time: every time-driven transition (expiry, deemed confirmation) is an explicit entry
//! checked against `ctx.time_micros`, the ledger's own time; the rules never read a
//! clock. Days are 24-hour days of ledger time (the national platform's "15 working
//! days" would need a holiday calendar in the log; the genesis window can be set longer
//! to cover weekends).
//!
//! ```
//! use lesson_ledger::ledger::{apply_entry, EntryContext, MemoryState};
//! let mut state = MemoryState::new();
//! let ctx = EntryContext { index: 0, time_micros: 1, signers: vec![] };
//! // Nothing may precede the genesis; a refusal leaves the state as it was.
//! let err = apply_entry(&mut state, &ctx, br#"{"kind":"pledge_approved","id":"e-1","ledger":"l.example/a","pledge":"p-1"}"#)
//!     .unwrap_err();
//! assert_eq!(err.code(), "genesis_required");
//! assert!(state.is_empty());
//! ```

mod auth;
pub mod conservation;
pub mod defaults;
pub mod error;
pub mod import;
pub mod invariants;
pub mod limits;
pub mod objects;
mod parse;
pub mod payload;
pub mod queries;
mod rules;
pub mod run_params;
pub mod sled_state;
pub mod state;
pub mod state_map;
pub mod units;
pub mod writer;

pub use error::RuleError;
pub use payload::{parse, Entry, Role};
pub use state::{
    get_object, Changes, Key, MemoryState, Object, StateView, Table, TableScan, Value,
};
pub use units::{Fen, Id, KeyRef, Lessons};

use crate::limits::SIGNATURES_PER_ENVELOPE_MAX;
use objects::{Config, EntryRecord};
use state::{Overlay, CONFIG_ID};

/// DSSE payload type of ledger entries.
/// Format v2: every payload names its ledger (`ledger`), reasons are codes, entry ids are
/// scoped per author; v1 entries are refused (`payload_type_unsupported`).
pub const PAYLOAD_TYPE: &str = "application/vnd.lesson-ledger.entry.v2+json";

/// What the log layer knows of an entry besides its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryContext {
    /// Position in the log, from 0.
    pub index: u64,
    /// Ledger time, µs since the Unix epoch, strictly increasing along the log.
    pub time_micros: u64,
    /// The verified signers' keys (C2SP verifier key strings), in envelope order.
    pub signers: Vec<String>,
}

impl EntryContext {
    /// The context of an entry the log already holds: its index, time and signers, as the
    /// leaf records them (the writer's catch-up and the auditor's replay both read it so).
    #[must_use]
    pub fn of_leaf(leaf: &crate::log::leaf::Leaf) -> Self {
        EntryContext {
            index: leaf.index,
            time_micros: leaf.time_micros,
            signers: leaf
                .envelope
                .signatures()
                .iter()
                .map(|s| s.keyid().to_owned())
                .collect(),
        }
    }
}

/// Decide an entry: the writes it makes to the state, or why it is refused.
///
/// Steps: parse the payload; check the signer list; "genesis must be entry 0, exactly
/// once"; the payload's `ledger` must be this ledger's origin (`wrong_ledger`); resolve
/// the signers' keys (registered, not revoked); refuse an entry `id` its author (the
/// party of the first registered signer) already used; apply the kind's rule; every
/// signer must have had a part.
///
/// # Errors
/// A [`RuleError`] naming the rule broken; see [`RuleError::code`].
pub fn decide<V: StateView + ?Sized>(
    view: &V,
    ctx: &EntryContext,
    payload: &[u8],
) -> Result<Changes, RuleError> {
    let entry = payload::parse(payload)?;
    let entry_id = Id::new("id", entry.id())?;
    if ctx.signers.len() > SIGNATURES_PER_ENVELOPE_MAX {
        return Err(RuleError::TooManySigners {
            count: ctx.signers.len(),
            max: SIGNATURES_PER_ENVELOPE_MAX,
        });
    }
    for (i, s) in ctx.signers.iter().enumerate() {
        if ctx.signers[..i].contains(s) {
            return Err(RuleError::DuplicateSigner { key: s.clone() });
        }
    }
    let config: Option<Config> = get_object(view, CONFIG_ID)?;
    match (&entry, &config) {
        (Entry::Genesis(_), Some(_)) => return Err(RuleError::GenesisRepeated),
        (Entry::Genesis(_), None) if ctx.index != 0 => {
            return Err(RuleError::GenesisNotFirst { index: ctx.index })
        }
        (Entry::Genesis(_), None) | (_, Some(_)) => {}
        (_, None) => return Err(RuleError::GenesisRequired { index: ctx.index }),
    }
    if let Some(config) = &config {
        same_ledger(&entry, config)?;
    }
    let mut tx = Overlay::new(view, ctx.index);
    let mut signers = auth::Signers::resolve(&tx, &ctx.signers, entry.kind())?;
    let author = match &entry {
        Entry::Genesis(g) => Id::new("operator", &g.operator)?,
        _ => signers.author()?,
    };
    let record_key = format!("{author}/{entry_id}");
    let payload_digest = units::hex(blake3::hash(payload).as_bytes());
    new_id(view, &record_key, &entry_id, &payload_digest)?;
    if let Some(config) = &config {
        rules::charge_entry(&mut tx, config, ctx, &signers)?;
    }
    let mut cx = rules::Cx {
        tx: &mut tx,
        ctx,
        signers: &mut signers,
        config,
    };
    rules::dispatch(&mut cx, &entry)?;
    signers.finish()?;
    tx.put(EntryRecord {
        key: record_key,
        author,
        id: entry_id,
        index: ctx.index,
        kind: entry.kind().to_owned(),
        payload_digest,
    });
    let changes = tx.into_changes();
    // The identities the types cannot hold alone (value = lessons × price, an ended
    // allocation keeps nothing), on every object this entry writes, in release builds
    // and on every path (live writer, replay, tests): a broken one is a bug, and the
    // entry is refused whole rather than written.
    invariants::check_changes(&changes)
        .map_err(|detail| RuleError::InvariantViolated { detail })?;
    Ok(changes)
}

/// A statement signed for another ledger (another genesis origin) means nothing here:
/// copied across, it would act in a ledger its signers never addressed. The genesis names
/// its own origin (checked by its rule).
fn same_ledger(entry: &Entry, config: &Config) -> Result<(), RuleError> {
    if matches!(entry, Entry::Genesis(_)) || entry.ledger() == config.origin {
        return Ok(());
    }
    Err(RuleError::WrongLedger {
        expected: config.origin.clone(),
        found: entry.ledger().chars().take(64).collect(),
    })
}

/// The entry id must be new among its author's entries (`record_key` = `<author>/<id>`).
fn new_id<V: StateView + ?Sized>(
    view: &V,
    record_key: &str,
    entry_id: &Id,
    payload_digest: &str,
) -> Result<(), RuleError> {
    let Some(first) = get_object::<EntryRecord, V>(view, record_key)? else {
        return Ok(());
    };
    Err(if first.payload_digest == payload_digest {
        RuleError::DuplicateEntry {
            id: entry_id.to_string(),
            first_index: first.index,
        }
    } else {
        RuleError::IdReused {
            id: entry_id.to_string(),
            first_index: first.index,
        }
    })
}

/// Decide an entry and, if accepted, apply its changes to `state`.
///
/// # Errors
/// As [`decide`]; on error `state` is unchanged.
pub fn apply_entry(
    state: &mut MemoryState,
    ctx: &EntryContext,
    payload: &[u8],
) -> Result<(), RuleError> {
    // `decide` has checked the balance identities of the objects written.
    let changes = decide(state, ctx, payload)?;
    state.apply(changes);
    Ok(())
}

//! The auditor's replay: every logged entry, from genesis, through the same rules into a
//! fresh in-memory state, independent of what the ledger stored; then the two compared
//! object by object, and map root against map root. At every state note the map root
//! of the state replayed up to the note's size is recomputed and must be the one the
//! operator signed. Each recorded match run is re-run on the
//! replayed state at its point in the log ([`RunAudit`]).

use super::RunAudit;
use crate::ledger::error::RuleError;
use crate::ledger::objects::{Config, Party};
use crate::ledger::sled_state::SledState;
use crate::ledger::state::{MemoryState, StateView, Table, CONFIG_ID};
use crate::ledger::units::hex;
use crate::ledger::{decide, get_object, invariants, EntryContext, PAYLOAD_TYPE};
use crate::log::audit::{AuditVisitor, VisitError};
use crate::log::leaf::Leaf;
use crate::log::state_note::StateNote;

/// Replays entries in log order.
#[derive(Default)]
pub struct Replayer {
    state: MemoryState,
    entries: u64,
    notes: u64,
    runs: RunAudit,
}

impl AuditVisitor for Replayer {
    fn leaf(&mut self, leaf: &Leaf) -> Result<(), VisitError> {
        Ok(self.visit(leaf)?)
    }

    /// The operator's signed state map root must be the root of the state replayed up
    /// to that size.
    fn state_note(&mut self, note: &StateNote) -> Result<(), VisitError> {
        let replayed = self.state.root();
        if note.size != self.entries || note.root != replayed {
            return Err(format!(
                "operator signed {} at size {}, the replay gives {} at size {}",
                hex(&note.root),
                note.size,
                hex(&replayed),
                self.entries
            )
            .into());
        }
        self.notes += 1;
        Ok(())
    }

    /// The operator party's current key in the replayed state: its newest key, which
    /// only a `key_rotated` signed by the key before it can change.
    fn operator_vkey(&mut self) -> Result<Option<String>, VisitError> {
        let Some(config) =
            get_object::<Config, _>(&self.state, CONFIG_ID).map_err(|e| e.to_string())?
        else {
            return Ok(None);
        };
        let party: Party = get_object(&self.state, config.operator.as_str())
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("the operator {} is not a party", config.operator))?;
        let key = party
            .keys
            .last()
            .ok_or_else(|| format!("the operator {} has no key", config.operator))?;
        Ok(Some(key.to_string()))
    }
}

/// Where the stored state and the replayed one part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: expected {expected}, stored {found}")]
pub struct Divergence {
    /// What differs (an object, a table, the number of objects, the map root).
    pub what: String,
    /// What the replay computed.
    pub expected: String,
    /// What the store holds.
    pub found: String,
}

impl Replayer {
    /// A replay before the genesis: an empty state.
    pub fn new() -> Replayer {
        Replayer::default()
    }

    /// Applies one entry (already verified by the log audit).
    ///
    /// # Errors
    /// A description of the rule the entry breaks: a ledger whose log holds an entry
    /// its own rules refuse has been written around the rules. Or, for a match run's
    /// entry, the stable code and place where the run and its re-run part
    /// ([`super::RunDivergence`]).
    pub fn visit(&mut self, leaf: &Leaf) -> Result<(), String> {
        if leaf.envelope.payload_type() != PAYLOAD_TYPE {
            return Err(format!(
                "payload type {:?} is not a ledger entry",
                leaf.envelope.payload_type()
            ));
        }
        let ctx = EntryContext::of_leaf(leaf);
        let changes = decide(&self.state, &ctx, leaf.envelope.payload())
            .map_err(|e: RuleError| format!("the rules refuse this entry: {} ({e})", e.code()))?;
        debug_assert_eq!(invariants::check_changes(&changes), Ok(()));
        self.runs
            .entry(&self.state, leaf.index, &changes)
            .map_err(|d| d.to_string())?;
        self.state.apply(changes);
        self.entries += 1;
        Ok(())
    }

    /// State notes checked against the replay.
    pub fn notes(&self) -> u64 {
        self.notes
    }

    /// The check of recorded match runs (how many were re-run, whether one is open).
    pub fn runs(&self) -> &RunAudit {
        &self.runs
    }

    /// Entries replayed.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// The replayed state.
    pub fn state(&self) -> &MemoryState {
        &self.state
    }

    /// Compares the replayed state with the stored one: same map root, and every object
    /// the same, both ways.
    ///
    /// # Errors
    /// The first [`Divergence`].
    pub fn compare(&self, stored: &SledState) -> Result<(), Divergence> {
        let div = |what: String, expected: String, found: String| Divergence {
            what,
            expected,
            found,
        };
        if stored.size() != self.entries {
            return Err(div(
                "entries reflected by the stored state".into(),
                self.entries.to_string(),
                stored.size().to_string(),
            ));
        }
        for (key, value) in self.state.iter() {
            let found = stored.get(key);
            if found.as_ref() != Some(value) {
                return Err(div(
                    format!("object {}/{}", key.table.name(), key.id),
                    serde_json::to_string(value).unwrap_or_default(),
                    found
                        .map(|v| serde_json::to_string(&v).unwrap_or_default())
                        .unwrap_or_else(|| "nothing".into()),
                ));
            }
        }
        let mut stored_objects = 0usize;
        for table in Table::ALL {
            for (key, _) in stored.scan(table) {
                if self.state.get(&key).is_none() {
                    return Err(div(
                        format!("object {}/{}", key.table.name(), key.id),
                        "nothing".into(),
                        "an object no entry made".into(),
                    ));
                }
                stored_objects += 1;
            }
        }
        if stored_objects != self.state.len() {
            return Err(div(
                "number of objects".into(),
                self.state.len().to_string(),
                stored_objects.to_string(),
            ));
        }
        let (expected, found) = (hex(&self.state.root()), hex(&stored.root()));
        if expected != found {
            return Err(div("state map root".into(), expected, found));
        }
        Ok(())
    }
}

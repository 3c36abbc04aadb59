//! What a balance answer's objects must satisfy, checked without trusting the server
//! (issue 12): the state note is the operator's and of the checkpoint's size; every
//! object is proven against the note's map root; the figures add up; and every object
//! an object lists as open (a student's claims, a claim's open allocations) is served,
//! in order, so nothing waiting on a family can be left out of its view.
//!
//! Each failure is a [`BalanceError`] with its own stable code.
//!
//! ```
//! use lesson_ledger::client::BalanceError;
//! let e = BalanceError::Unbalanced { what: "claim c-1".into() };
//! assert_eq!(e.code(), "balance_unbalanced");
//! ```

use serde::Serialize;
use serde_json::Value as Json;

use crate::api::balances::{
    Absence, AllocationAnswer, ClaimAnswer, InstitutionAnswer, PledgeAnswer, PoolAnswer, Proven,
    StudentAnswer,
};
use crate::ledger::objects::{Allocation, Claim, OpenLesson};
use crate::ledger::state::{Object, Table, POOL_ID};
use crate::ledger::state_map::proof::value_bytes;
use crate::ledger::state_map::{Hash, ProofError, StateProof};
use crate::ledger::units::Id;
use crate::log::note::{NoteVerifier, SignedCheckpoint};
use crate::log::state_note::{StateNote, StateNoteError};

/// Why a balance answer's state evidence does not verify. Every variant has its own
/// stable [code](BalanceError::code).
#[derive(Debug, thiserror::Error)]
pub enum BalanceError {
    /// The state note is not the operator's, or not a state note of this format.
    #[error("the state note does not verify: {source}")]
    StateNote {
        /// Why it does not verify.
        #[source]
        source: StateNoteError,
    },
    /// The state note is not of the checkpoint's log (origin) or size.
    #[error("the state note is for {note_origin} at size {note_size}, the checkpoint for {checkpoint_origin} at size {checkpoint_size}")]
    StateNoteMismatch {
        /// The state note's origin.
        note_origin: String,
        /// The state note's tree size.
        note_size: u64,
        /// The checkpoint's origin.
        checkpoint_origin: String,
        /// The checkpoint's tree size.
        checkpoint_size: u64,
    },
    /// An object's proof does not verify against the note's root.
    #[error("{table} {id}: {source}")]
    Proof {
        /// The object's table.
        table: &'static str,
        /// The object's id.
        id: String,
        /// Why it does not verify.
        #[source]
        source: ProofError,
    },
    /// The object served is not the one asked for or listed.
    #[error("{table} {expected} was asked for, {served} was served")]
    WrongObject {
        /// The object's table.
        table: &'static str,
        /// The id asked for.
        expected: String,
        /// What was served.
        served: String,
    },
    /// An object's parts do not add up to its total.
    #[error("{what}: the parts do not add up to the total")]
    Unbalanced {
        /// Which object.
        what: String,
    },
    /// An allocation lists other open lessons than it has pending.
    #[error("allocation {allocation} lists {listed} open lessons but has {pending} pending")]
    OpenLessons {
        /// The allocation's id.
        allocation: String,
        /// What the object lists.
        listed: usize,
        /// Lessons pending on it.
        pending: u64,
    },
    /// A state proof in the answer is not well formed (its JSON form, before any
    /// object is read).
    #[error("the proof of {at}: {source}")]
    ProofMalformed {
        /// Which object the proof is for.
        at: String,
        /// Why it does not verify.
        #[source]
        source: ProofError,
    },
    /// A 404 that carries no proof that the object is absent.
    #[error("the server says {code} but gives no proof of absence")]
    AbsenceMissing {
        /// The problem document's code.
        code: String,
    },
    /// A 404 whose proof of absence is not well formed.
    #[error("the proof of absence is malformed: {reason}")]
    AbsenceMalformed {
        /// What exactly is wrong, in words.
        reason: String,
    },
    /// The objects served are not exactly those the proven objects list.
    #[error("{what}: listed {listed:?}, served {served:?}")]
    Unlisted {
        /// Which object.
        what: &'static str,
        /// What the object lists.
        listed: Vec<String>,
        /// What was served.
        served: Vec<String>,
    },
}

impl BalanceError {
    /// Stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            BalanceError::StateNote { source } => match source {
                StateNoteError::OldFormat => "state_note_old_format",
                _ => "state_note_invalid",
            },
            BalanceError::StateNoteMismatch { .. } => "state_note_size_mismatch",
            BalanceError::Proof { source, .. } => source.code(),
            BalanceError::ProofMalformed { source, .. } => source.code(),
            BalanceError::AbsenceMissing { .. } => "absence_proof_missing",
            BalanceError::AbsenceMalformed { .. } => "absence_proof_malformed",
            BalanceError::WrongObject { .. } => "state_object_mismatch",
            BalanceError::Unbalanced { .. } => "balance_unbalanced",
            BalanceError::OpenLessons { .. } => "open_lessons_mismatch",
            BalanceError::Unlisted { .. } => "open_objects_mismatch",
        }
    }
}

/// The map root of `note`, once it is checked: signed by `operator`, of the origin and
/// size of the checkpoint `cp` (already checked by the caller).
///
/// # Errors
/// [`BalanceError::StateNote`], [`BalanceError::StateNoteMismatch`].
pub fn state_root(
    note: &str,
    cp: &SignedCheckpoint,
    operator: &NoteVerifier,
) -> Result<Hash, BalanceError> {
    let note = StateNote::parse_and_verify(note.as_bytes(), operator)
        .map_err(|source| BalanceError::StateNote { source })?;
    let checkpoint = cp.checkpoint();
    if note.size != checkpoint.size || note.origin != checkpoint.origin.as_str() {
        return Err(BalanceError::StateNoteMismatch {
            note_origin: note.origin,
            note_size: note.size,
            checkpoint_origin: checkpoint.origin.to_string(),
            checkpoint_size: checkpoint.size,
        });
    }
    Ok(note.root)
}

/// Checks that `proven` holds object `id` of its table and is proven present under
/// `root`, its value being the object's canonical JSON.
///
/// # Errors
/// [`BalanceError::WrongObject`], [`BalanceError::Proof`].
pub fn check_proven<T: Object>(
    proven: &Proven<T>,
    id: &str,
    root: &Hash,
) -> Result<(), BalanceError> {
    if proven.object.id() != id {
        return Err(BalanceError::WrongObject {
            table: T::TABLE.name(),
            expected: id.to_owned(),
            served: proven.object.id().to_owned(),
        });
    }
    let bytes = value_bytes(&proven.object.clone().into_value());
    proven
        .proof
        .verify_present(root, T::TABLE, id, &bytes)
        .map_err(|source| BalanceError::Proof {
            table: T::TABLE.name(),
            id: id.to_owned(),
            source,
        })
}

/// Checks a 404's proof that object `id` of `table` is absent under `root`.
///
/// # Errors
/// [`BalanceError::WrongObject`] if it is about another object; [`BalanceError::Proof`].
pub fn check_absence(
    absence: &Absence,
    table: Table,
    id: &str,
    root: &Hash,
) -> Result<(), BalanceError> {
    if absence.table != table.name() || absence.id != id {
        return Err(BalanceError::WrongObject {
            table: table.name(),
            expected: id.to_owned(),
            served: format!("{}/{}", absence.table, absence.id),
        });
    }
    absence
        .proof
        .verify_absent(root, table, id)
        .map_err(|source| BalanceError::Proof {
            table: table.name(),
            id: id.to_owned(),
            source,
        })
}

/// An allocation's open lessons are exactly as many as its pending ones.
fn check_open_lessons(a: &Allocation) -> Result<(), BalanceError> {
    if a.open_lessons.len() as u64 != a.lessons.pending().0 {
        return Err(BalanceError::OpenLessons {
            allocation: a.allocation.to_string(),
            listed: a.open_lessons.len(),
            pending: a.lessons.pending().0,
        });
    }
    Ok(())
}

/// Checks that the objects served are exactly those listed, in order.
fn check_listed<'a>(
    what: &'static str,
    listed: impl Iterator<Item = &'a Id>,
    served: impl Iterator<Item = &'a str>,
) -> Result<(), BalanceError> {
    let listed: Vec<String> = listed.map(ToString::to_string).collect();
    let served: Vec<String> = served.map(str::to_owned).collect();
    if listed != served {
        return Err(BalanceError::Unlisted {
            what,
            listed,
            served,
        });
    }
    Ok(())
}

/// The parts each balanced object's total is made of, as stored: (table field in an
/// answer's JSON, total, parts).
const BALANCES: [(&str, &str, [&str; 4]); 3] = [
    ("claim", "value", ["unreserved", "reserved", "consumed", ""]),
    (
        "pledge",
        "capacity",
        ["available", "reserved", "delivered", "withdrawn"],
    ),
    (
        "allocation",
        "lessons",
        ["consumed", "pending", "remaining", "released"],
    ),
];

/// Checks, on an answer's JSON before it is decoded, that every claim's, pledge's and
/// allocation's parts add up to its total (the typed objects refuse to decode
/// otherwise; this names the failure for what it is).
///
/// # Errors
/// [`BalanceError::Unbalanced`] naming the first object whose figures do not add up.
pub fn check_figures(answer: &Json) -> Result<(), BalanceError> {
    for (table, total, parts) in BALANCES {
        let plural = format!("{table}s");
        let mut objects: Vec<&Json> = answer.get(table).into_iter().collect();
        if let Some(Json::Array(list)) = answer.get(plural.as_str()) {
            objects.extend(list);
        }
        for proven in objects {
            let object = &proven["object"];
            let sum = parts
                .iter()
                .filter(|p| !p.is_empty())
                .try_fold(0u64, |acc, p| acc.checked_add(object[*p].as_u64()?));
            if sum.is_none() || sum != object[total].as_u64() {
                return Err(BalanceError::Unbalanced {
                    what: format!("{table} {}", object[table]),
                });
            }
        }
    }
    Ok(())
}

/// Checks, on an answer's JSON before it is decoded, that every state proof in it (the
/// `proof` of each object, alone or in a list) is well formed, so that a malformed one
/// is refused as such rather than as undecodable.
///
/// # Errors
/// [`BalanceError::ProofMalformed`] naming the first, with `proof_malformed` or
/// `proof_too_deep`.
pub fn check_proofs_well_formed(answer: &Json) -> Result<(), BalanceError> {
    let Json::Object(fields) = answer else {
        return Ok(()); // not an answer at all: decoding says so
    };
    let mut proofs: Vec<(String, &Json)> = Vec::new();
    for (name, value) in fields {
        match value {
            Json::Object(o) => proofs.extend(o.get("proof").map(|p| (name.clone(), p))),
            Json::Array(list) => proofs.extend(
                list.iter()
                    .enumerate()
                    .filter_map(|(i, v)| v.get("proof").map(|p| (format!("{name}[{i}]"), p))),
            ),
            _ => {}
        }
    }
    for (at, proof) in proofs {
        let parsed = serde_json::to_vec(proof)
            .map_err(|e| ProofError::Malformed(e.to_string()))
            .and_then(|bytes| StateProof::from_json(&bytes));
        if let Err(source) = parsed {
            return Err(BalanceError::ProofMalformed { at, source });
        }
    }
    Ok(())
}

/// The objects of an answer, checked against the state root.
pub trait ProvenObjects: Serialize {
    /// Checks every object of the answer for `id` against `root`.
    ///
    /// # Errors
    /// The first [`BalanceError`].
    fn check_objects(&self, id: &str, root: &Hash) -> Result<(), BalanceError>;

    /// The lessons waiting on the family: each open lesson with its allocation.
    fn open_lessons(&self) -> Vec<(&Id, &OpenLesson)> {
        Vec::new()
    }
}

fn open_lessons_of<'a>(
    allocations: impl Iterator<Item = &'a Allocation>,
) -> Vec<(&'a Id, &'a OpenLesson)> {
    allocations
        .flat_map(|a| a.open_lessons.iter().map(move |l| (&a.allocation, l)))
        .collect()
}

impl ProvenObjects for ClaimAnswer {
    fn check_objects(&self, id: &str, root: &Hash) -> Result<(), BalanceError> {
        check_proven(&self.claim, id, root)
    }
}

impl ProvenObjects for PledgeAnswer {
    fn check_objects(&self, id: &str, root: &Hash) -> Result<(), BalanceError> {
        check_proven(&self.pledge, id, root)
    }
}

impl ProvenObjects for AllocationAnswer {
    fn check_objects(&self, id: &str, root: &Hash) -> Result<(), BalanceError> {
        // First: it names the lie more plainly than the proof that also refuses it.
        check_open_lessons(&self.allocation.object)?;
        check_proven(&self.allocation, id, root)
    }

    fn open_lessons(&self) -> Vec<(&Id, &OpenLesson)> {
        open_lessons_of(std::iter::once(&self.allocation.object))
    }
}

impl ProvenObjects for StudentAnswer {
    fn check_objects(&self, id: &str, root: &Hash) -> Result<(), BalanceError> {
        check_proven(&self.student, id, root)?;
        let index = &self.student.object;
        check_listed(
            "the student's claims",
            index.claims.iter(),
            self.claims.iter().map(|c| c.object.id()),
        )?;
        for (listed, claim) in index.claims.iter().zip(&self.claims) {
            check_proven(claim, listed.as_str(), root)?;
        }
        let claims: Vec<&Claim> = self.claims.iter().map(|c| &c.object).collect();
        check_listed(
            "the claims' open allocations",
            claims.iter().flat_map(|c| c.allocations.iter()),
            self.allocations.iter().map(|a| a.object.id()),
        )?;
        for allocation in &self.allocations {
            check_open_lessons(&allocation.object)?;
            check_proven(allocation, allocation.object.id(), root)?;
        }
        Ok(())
    }

    fn open_lessons(&self) -> Vec<(&Id, &OpenLesson)> {
        open_lessons_of(self.allocations.iter().map(|a| &a.object))
    }
}

impl ProvenObjects for PoolAnswer {
    fn check_objects(&self, _: &str, root: &Hash) -> Result<(), BalanceError> {
        check_proven(&self.pool, POOL_ID, root)
    }
}

impl ProvenObjects for InstitutionAnswer {
    fn check_objects(&self, id: &str, root: &Hash) -> Result<(), BalanceError> {
        check_proven(&self.liability, id, root)?;
        check_proven(&self.institution, id, root)
    }
}

//! Balance answers: the state objects themselves, each with its [`StateProof`] against
//! the map root of the state note served beside them, the checkpoint of the same size,
//! and a page of the entries behind them with their inclusion proofs.
//!
//! What a client checks (`client balance`, [`crate::client`]): the checkpoint's
//! signature (and the cosignatures its trust requires); the state note's signature and
//! that its size is the checkpoint's; each object's proof against the note's root, the
//! value being the object's canonical JSON tagged with its table
//! ([`crate::ledger::state_map::proof::value_bytes`]); that the figures add up; and that
//! what the objects list as open (a claim's allocations, an allocation's pending
//! lessons, a student's claims) is all served. A proposal left out of a family's view
//! therefore breaks a proof: the allocation object lists it.
//!
//! Every object is served as the ledger stores it (`src/ledger/objects.rs`, documented
//! field by field in `schemas/README.md`): money in fen, lessons in lessons, times in µs.
//!
//! ```
//! use lesson_ledger::api::{BalanceAnswer, ClaimAnswer};
//! assert_eq!(ClaimAnswer::PATH, "claims");
//! ```

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::ledger::objects::{
    Allocation, Claim, Dispute, Lesson, Liability, Party, Pledge, Pool, StudentIndex,
};
use crate::ledger::state::Table;
use crate::ledger::state_map::StateProof;

/// A state object with its proof of presence against the state note's map root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proven<T> {
    /// The object as stored.
    pub object: T,
    /// Its proof (`schemas/README.md`, "State map"): the value hash in its leaf is
    /// BLAKE3 of the object's canonical JSON, tagged with its table (`{"claim":{…}}`).
    pub proof: StateProof,
}

/// An entry with its inclusion proof against the checkpoint it is served with.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvenEntry {
    /// Position in the log.
    pub index: u64,
    /// Ledger time of the entry, µs since the epoch.
    pub time_micros: u64,
    /// BLAKE3 of the envelope's PAE, lowercase hex.
    pub entry_id: String,
    /// RFC 6962 leaf hash, base64.
    pub leaf_hash: String,
    /// The DSSE envelope (JSON).
    pub envelope: Box<RawValue>,
    /// Sibling hashes from the leaf up to the checkpoint's root, base64.
    pub inclusion_proof: Vec<String>,
}

/// The page asked for: `?from=` (a position in the answer's entries, default 0).
#[derive(Debug, Default, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// Position of the page's first entry among the answer's entries, in log order.
    #[serde(default)]
    pub from: u64,
}

macro_rules! answer {
    ($(#[$doc:meta])* $name:ident, $path:literal, $table:expr, { $($(#[$fdoc:meta])* $field:ident: $ty:ty),* $(,)? },
     |$s:ident| $listed:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $($(#[$fdoc])* pub $field: $ty,)*
            /// The signed state note (C2SP signed note, `lesson-ledger/state-map/v1`) whose
            /// map root every object is proven against.
            pub state_note: String,
            /// The signed checkpoint of the note's size, with the cosignatures the server
            /// holds; every entry's inclusion proof is against it.
            pub checkpoint: String,
            /// This page's entries, in log order.
            pub entries: Vec<ProvenEntry>,
            /// Where the next page starts (`?from=`), or `None` on the last page.
            pub next: Option<u64>,
        }

        impl BalanceAnswer for $name {
            const PATH: &'static str = $path;
            const TABLE: Table = $table;
            fn state_note(&self) -> &str {
                &self.state_note
            }
            fn checkpoint(&self) -> &str {
                &self.checkpoint
            }
            fn entries(&self) -> &[ProvenEntry] {
                &self.entries
            }
            fn entries_mut(&mut self) -> &mut Vec<ProvenEntry> {
                &mut self.entries
            }
            fn next(&self) -> Option<u64> {
                self.next
            }
            fn set_next(&mut self, next: Option<u64>) {
                self.next = next;
            }
            fn listed_entries(&self) -> Vec<u64> {
                let $s = self;
                let mut listed: Vec<u64> = $listed;
                listed.sort_unstable();
                listed.dedup();
                listed
            }
        }
    };
}

/// A balance answer served in pages of entries: what [`crate::client`] follows and
/// checks the same way for every kind.
pub trait BalanceAnswer: DeserializeOwned + Serialize {
    /// The path segment under `/v1/` (`claims`, `students`, …).
    const PATH: &'static str;
    /// The table of the object asked for by id (what a 404's absence proof is about).
    const TABLE: Table;
    /// The signed state note.
    fn state_note(&self) -> &str;
    /// The signed checkpoint.
    fn checkpoint(&self) -> &str;
    /// This page's entries.
    fn entries(&self) -> &[ProvenEntry];
    /// This page's entries, to gather the pages' into one answer.
    fn entries_mut(&mut self) -> &mut Vec<ProvenEntry>;
    /// Where the next page starts.
    fn next(&self) -> Option<u64>;
    /// Sets where the next page starts (`None` once every page is gathered).
    fn set_next(&mut self, next: Option<u64>);
    /// Every entry the answer's objects list, sorted and distinct: the entries its
    /// pages serve, in that order.
    fn listed_entries(&self) -> Vec<u64>;
}

answer!(
    /// `GET /v1/claims/{id}`: a claim (its value in fen and the parts of it, its open
    /// allocations) with its proof.
    ClaimAnswer, "claims", Table::Claim, {
        /// The claim.
        claim: Proven<Claim>,
    },
    |s| s.claim.object.entries.clone()
);

answer!(
    /// `GET /v1/pledges/{id}`: a pledge (its capacity in lessons and the parts of it)
    /// with its proof.
    PledgeAnswer, "pledges", Table::Pledge, {
        /// The pledge.
        pledge: Proven<Pledge>,
    },
    |s| s.pledge.object.entries.clone()
);

answer!(
    /// `GET /v1/allocations/{id}`: an allocation (its lessons and the parts of them, and
    /// every lesson proposed on it and still open, with its window's end) with its proof.
    AllocationAnswer, "allocations", Table::Allocation, {
        /// The allocation.
        allocation: Proven<Allocation>,
    },
    |s| s.allocation.object.entries.clone()
);

answer!(
    /// `GET /v1/students/{ref}`: a student's index, every claim it lists, and every open
    /// allocation those claims list (in the claims' order, then each claim's), each with
    /// its proof; the entries are the claims'.
    StudentAnswer, "students", Table::Student, {
        /// The student's index of claims.
        student: Proven<StudentIndex>,
        /// The claims the index lists, in its order.
        claims: Vec<Proven<Claim>>,
        /// The open allocations the claims list, claim by claim, in their order.
        allocations: Vec<Proven<Allocation>>,
    },
    |s| s.claims.iter().flat_map(|c| c.object.entries.iter().copied()).collect()
);

answer!(
    /// `GET /v1/lessons/{id}`: a lesson (status `pending`, `disputed`, `final` or `void`)
    /// and its dispute if it was ever disputed (reason code, status, resolution code),
    /// each with its proof; the entries are both objects'.
    LessonAnswer, "lessons", Table::Lesson, {
        /// The lesson.
        lesson: Proven<Lesson>,
        /// Its dispute, `None` if the lesson was never disputed.
        dispute: Option<Proven<Dispute>>,
    },
    |s| s.lesson.object.entries.iter()
        .chain(s.dispute.iter().flat_map(|d| d.object.entries.iter()))
        .copied()
        .collect()
);

/// `GET /v1/pool`: the pool's totals (fen), with their proof.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolAnswer {
    /// The pool totals (the `meta` table's `pool` object).
    pub pool: Proven<Pool>,
    /// The signed state note.
    pub state_note: String,
    /// The signed checkpoint of the note's size.
    pub checkpoint: String,
}

/// `GET /v1/institutions/{id}/report`: a closed institution's liability (counters over
/// its claims: lessons, fen) and its party object (when it was closed), with their
/// proofs. What it still owes is `owed − made_good`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstitutionAnswer {
    /// The institution's liability.
    pub liability: Proven<Liability>,
    /// The institution's party object (`closed_at`: the entry index of its closure).
    pub institution: Proven<Party>,
    /// The signed state note.
    pub state_note: String,
    /// The signed checkpoint of the note's size.
    pub checkpoint: String,
}

/// What a 404 for a well-formed id carries (as the problem document's `absence`
/// member): the proof that the state holds no such object.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Absence {
    /// The table looked in (`claim`, `allocation`, `pledge`, `student`, `lesson`, `liability`).
    pub table: String,
    /// The id looked for.
    pub id: String,
    /// The proof of absence against the note's root.
    pub proof: StateProof,
    /// The signed state note.
    pub state_note: String,
    /// The signed checkpoint of the note's size.
    pub checkpoint: String,
}

/// `GET /v1/state-notes?from=`: the smallest tree size wanted (default 1).
#[derive(Debug, Default, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateNotesQuery {
    /// The smallest tree size wanted.
    #[serde(default)]
    pub from: Option<u64>,
}

/// One state note as listed: the tree size of the batch it ends, and its signed text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateNoteRow {
    /// The tree size (entries) of the state the note commits to.
    pub size: u64,
    /// The signed state note (C2SP signed note, `lesson-ledger/state-map/v1`), as stored.
    pub note: String,
}

/// `GET /v1/state-notes?from=`: a page of the operator's signed state notes, oldest
/// first, one for each batch the ledger committed from `from` on.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateNotePage {
    /// The notes, by increasing size.
    pub state_notes: Vec<StateNoteRow>,
    /// The `from` of the next page, `None` once the log's end is reached.
    pub next: Option<u64>,
}

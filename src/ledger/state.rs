//! State storage seen by the rules: [`Key`], [`Value`], [`Changes`], the read-only
//! [`StateView`] trait, the in-memory store [`MemoryState`], and the write overlay the
//! rules use while deciding one entry.
//!
//! A [`Key`] is a (table, id) pair that maps one to one onto a sled tree name
//! ([`Table::name`]) and a byte key (the id's UTF-8 bytes). A [`Value`] is serde-encoded.
//! State only grows or changes in place: no entry ever deletes an object, so [`Changes`]
//! is a list of writes (puts), in key order.
//!
//! ```
//! use lesson_ledger::ledger::{MemoryState, StateView, Key, Table};
//! let s = MemoryState::new();
//! assert_eq!(s.get(&Key::new(Table::Claim, "c-1")), None);
//! assert_eq!(Table::Claim.name(), "claim");
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::error::RuleError;
use super::objects::AttestedClock;
use super::objects::{
    Allocation, Claim, Config, Dispute, EntryRecord, KeyRecord, Lesson, Liability, Party,
    PartyQuota, Pledge, Pool, RunRecord, StudentIndex,
};
use super::state_map::{StateMap, StateProof};

/// A table of the state; one sled tree each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Table {
    /// Singletons: the genesis parameters, the pool totals and the attested clock
    /// ([`CONFIG_ID`], [`POOL_ID`], [`CLOCK_ID`]).
    Meta,
    /// Entry ids already used, under `<author>/<id>` ([`EntryRecord`]).
    Entry,
    /// Registered parties ([`Party`]).
    Party,
    /// Every key ever registered, by key id ([`KeyRecord`]).
    Key,
    /// Claims ([`Claim`]).
    Claim,
    /// Pledges ([`Pledge`]).
    Pledge,
    /// Allocations ([`Allocation`]).
    Allocation,
    /// Lessons proposed or consumed ([`Lesson`]).
    Lesson,
    /// Disputes ([`Dispute`]).
    Dispute,
    /// Each student's claims ([`StudentIndex`]).
    Student,
    /// What each closed institution owes ([`Liability`]).
    Liability,
    /// Match runs recorded ([`RunRecord`]).
    Run,
    /// Per-party quota counters (last: a table's number is its place in stored keys).
    Quota,
}

impl Table {
    /// Every table, in order.
    pub const ALL: [Table; 13] = [
        Table::Meta,
        Table::Entry,
        Table::Party,
        Table::Key,
        Table::Claim,
        Table::Pledge,
        Table::Allocation,
        Table::Lesson,
        Table::Dispute,
        Table::Student,
        Table::Liability,
        Table::Run,
        Table::Quota,
    ];

    /// The table's name: the sled tree name, and the table part of the digest element.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Table::Meta => "meta",
            Table::Entry => "entry",
            Table::Party => "party",
            Table::Key => "key",
            Table::Claim => "claim",
            Table::Pledge => "pledge",
            Table::Allocation => "allocation",
            Table::Lesson => "lesson",
            Table::Dispute => "dispute",
            Table::Student => "student",
            Table::Liability => "liability",
            Table::Run => "run",
            Table::Quota => "quota",
        }
    }
}

/// Where an object lives: its table and its id (the sled byte key is `id.as_bytes()`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Key {
    /// The table.
    pub table: Table,
    /// The object's id within the table.
    pub id: String,
}

impl Key {
    /// A key from its parts.
    #[must_use]
    pub fn new(table: Table, id: &str) -> Key {
        Key {
            table,
            id: id.to_owned(),
        }
    }
}

/// Id of the genesis parameters in [`Table::Meta`].
pub const CONFIG_ID: &str = "config";
/// Id of the pool totals in [`Table::Meta`].
pub const POOL_ID: &str = "pool";
/// Id of the associations' attested clock in [`Table::Meta`].
pub const CLOCK_ID: &str = "clock";

/// A stored object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Value {
    /// The genesis parameters (`meta/config`).
    Config(Box<Config>),
    /// The pool totals (`meta/pool`).
    Pool(Box<Pool>),
    /// An entry id used ([`Table::Entry`]).
    Entry(Box<EntryRecord>),
    /// A party.
    Party(Box<Party>),
    /// A key's record.
    Key(Box<KeyRecord>),
    /// A claim.
    Claim(Box<Claim>),
    /// A pledge.
    Pledge(Box<Pledge>),
    /// An allocation.
    Allocation(Box<Allocation>),
    /// A lesson.
    Lesson(Box<Lesson>),
    /// A dispute.
    Dispute(Box<Dispute>),
    /// A student's claims.
    Student(Box<StudentIndex>),
    /// A closed institution's liability.
    Liability(Box<Liability>),
    /// A match run's record.
    Run(Box<RunRecord>),
    /// A party's counters for the current quota day ([`Table::Quota`]).
    Quota(Box<PartyQuota>),
    /// The associations' attested clock (`meta/clock`).
    Clock(Box<AttestedClock>),
}

// Every variant boxed: a map of values then holds 16 bytes a value plus the object
// itself, not the largest object's size for every one (256 bytes, while most objects —
// the one entry record a logged entry leaves — are far smaller). At city scale the
// state is millions of objects, and the demo holds it twice (the server's and the
// association's replay). Box<T> serializes as T, so no stored or hashed form changes.
const _: () = assert!(std::mem::size_of::<Value>() == 16);

/// The writes one entry makes, in key order.
pub type Changes = Vec<(Key, Value)>;

/// Read access to the state, as the rules need it. Infallible: both stores hold every
/// object in memory (the live state loads them on open, where a read fault is met and
/// the state rebuilt), so a read cannot fail, and no rule handles a fault that cannot
/// happen. What can fail is writing the state, after the rules have decided.
pub trait StateView {
    /// The object stored under `key`, if any.
    fn get(&self, key: &Key) -> Option<Value>;
}

/// Whole tables, for readers that need every object of a kind (the matcher's inputs).
/// Implemented by the live state and the replay's, so that a match run and its re-run
/// by `verify` read their inputs through the same code.
pub trait TableScan {
    /// Every object of `table`, in id order (in memory, like [`StateView::get`]).
    fn scan_table(&self, table: Table) -> Box<dyn Iterator<Item = Value> + '_>;
}

impl TableScan for super::sled_state::SledState {
    fn scan_table(&self, table: Table) -> Box<dyn Iterator<Item = Value> + '_> {
        Box::new(self.scan(table).map(|(_, value)| value))
    }
}

/// An object type: its key and its place in [`Value`].
pub trait Object: Sized + Clone {
    /// The table the object lives in.
    const TABLE: Table;
    /// The object's id within its table.
    fn id(&self) -> &str;
    /// Wrap into a [`Value`].
    fn into_value(self) -> Value;
    /// Unwrap from a [`Value`], `None` if it holds another type.
    fn from_value(v: Value) -> Option<Self>;
    /// Record that entry `index` changed this object (no-op for counter-only objects).
    fn touch(&mut self, _index: u64) {}
}

fn push_entry(entries: &mut Vec<u64>, index: u64) {
    if entries.last() != Some(&index) {
        entries.push(index);
    }
}

/// As [`push_entry`], keeping only the last `max` (for objects read on every entry).
fn push_entry_bounded(entries: &mut Vec<u64>, index: u64, max: usize) {
    push_entry(entries, index);
    let over = entries.len().saturating_sub(max);
    entries.drain(..over);
}

macro_rules! object {
    ($t:ty, $table:expr, $variant:ident, |$s:ident| $id:expr, touch_bounded($max:expr)) => {
        object!(@impl $t, $table, $variant, |$s| $id, fn touch(&mut self, index: u64) { push_entry_bounded(&mut self.entries, index, $max) });
    };
    ($t:ty, $table:expr, $variant:ident, |$s:ident| $id:expr, touch) => {
        object!(@impl $t, $table, $variant, |$s| $id, fn touch(&mut self, index: u64) { push_entry(&mut self.entries, index) });
    };
    ($t:ty, $table:expr, $variant:ident, |$s:ident| $id:expr) => {
        object!(@impl $t, $table, $variant, |$s| $id,);
    };
    (@impl $t:ty, $table:expr, $variant:ident, |$s:ident| $id:expr, $($touch:tt)*) => {
        impl Object for $t {
            const TABLE: Table = $table;
            fn id(&self) -> &str {
                let $s = self;
                $id
            }
            fn into_value(self) -> Value {
                Value::$variant(Box::new(self))
            }
            fn from_value(v: Value) -> Option<Self> {
                match v {
                    Value::$variant(o) => Some(*o),
                    _ => None,
                }
            }
            $($touch)*
        }
    };
}

object!(Config, Table::Meta, Config, |s| {
    let _ = s;
    CONFIG_ID
});
object!(Pool, Table::Meta, Pool, |s| {
    let _ = s;
    POOL_ID
});
object!(EntryRecord, Table::Entry, Entry, |s| s.key.as_str());
object!(
    Party,
    Table::Party,
    Party,
    |s| s.party.as_str(),
    touch_bounded(super::limits::PARTY_ENTRIES_KEPT_MAX)
);
object!(PartyQuota, Table::Quota, Quota, |s| s.party.as_str());
object!(KeyRecord, Table::Key, Key, |s| s.key.as_str());
object!(Claim, Table::Claim, Claim, |s| s.claim.as_str(), touch);
object!(Pledge, Table::Pledge, Pledge, |s| s.pledge.as_str(), touch);
object!(
    Allocation,
    Table::Allocation,
    Allocation,
    |s| s.allocation.as_str(),
    touch
);
object!(Lesson, Table::Lesson, Lesson, |s| s.lesson.as_str(), touch);
object!(
    Dispute,
    Table::Dispute,
    Dispute,
    |s| s.dispute.as_str(),
    touch
);
object!(StudentIndex, Table::Student, Student, |s| s
    .student
    .as_str());
object!(Liability, Table::Liability, Liability, |s| s
    .institution
    .as_str());
object!(RunRecord, Table::Run, Run, |s| s.run.as_str());
object!(AttestedClock, Table::Meta, Clock, |s| {
    let _ = s;
    CLOCK_ID
});

/// Read a typed object from a view.
///
/// # Errors
/// `state_corrupt` if the key holds another type.
pub fn get_object<T: Object, V: StateView + ?Sized>(
    view: &V,
    id: &str,
) -> Result<Option<T>, RuleError> {
    as_object(id, view.get(&Key::new(T::TABLE, id)))
}

/// The typed object in a stored value, `state_corrupt` if it holds another type.
fn as_object<T: Object>(id: &str, found: Option<Value>) -> Result<Option<T>, RuleError> {
    match found {
        None => Ok(None),
        Some(v) => T::from_value(v)
            .map(Some)
            .ok_or_else(|| RuleError::StateCorrupt {
                detail: format!("{}/{id} holds another type", T::TABLE.name()),
            }),
    }
}

/// Most objects [`MemoryState`] lets wait for the map. A replay of a remote log has no
/// state notes to settle it at, and every key waiting costs memory; the root is the same
/// however the writes are grouped.
pub const DIRTY_OBJECTS_MAX: usize = 1 << 16;

/// The state in memory: a sorted map of objects plus its [state map](super::state_map).
/// Used by replay (the auditor) and by tests.
///
/// The map is brought up to date lazily, when asked for: each object written since is
/// hashed once, however often it was written. A replay asks once per batch (at each
/// state note), so the pool totals, written by every entry, are hashed once per batch
/// rather than once per entry.
#[derive(Debug, Clone, Default)]
pub struct MemoryState {
    objects: BTreeMap<Key, Value>,
    /// The map of the objects as they were before the `dirty` writes.
    map: std::cell::RefCell<StateMap>,
    /// Keys written since `map` was settled.
    dirty: std::cell::RefCell<std::collections::HashSet<Key>>,
}

impl PartialEq for MemoryState {
    /// Two states are equal when they hold the same objects (the map follows).
    fn eq(&self, other: &Self) -> bool {
        self.objects == other.objects
    }
}

impl Eq for MemoryState {}

impl MemoryState {
    /// An empty state (before genesis).
    #[must_use]
    pub fn new() -> MemoryState {
        MemoryState::default()
    }

    /// Apply the writes of one accepted entry; the map catches up when next asked, or
    /// once [`DIRTY_OBJECTS_MAX`] objects wait for it.
    pub fn apply(&mut self, changes: Changes) {
        let dirty = self.dirty.get_mut();
        for (key, value) in changes {
            self.objects.insert(key.clone(), value);
            dirty.insert(key);
        }
        if dirty.len() >= DIRTY_OBJECTS_MAX {
            self.settle();
        }
    }

    /// The state map root (see [`super::state_map`]).
    #[must_use]
    pub fn root(&self) -> [u8; 32] {
        self.settle();
        self.map.borrow().root()
    }

    /// The proof of the object under `key` (or of its absence) against
    /// [`MemoryState::root`].
    #[must_use]
    pub fn prove(&self, key: &Key) -> StateProof {
        self.settle();
        self.map.borrow().prove(key)
    }

    /// Folds the writes waiting in `dirty` into `map`.
    fn settle(&self) {
        let dirty: Vec<Key> = self.dirty.borrow_mut().drain().collect();
        if dirty.is_empty() {
            return;
        }
        let writes = dirty
            .iter()
            .map(|key| (key, self.objects.get(key)))
            .collect();
        self.map
            .borrow_mut()
            .write(writes)
            .expect("a heap arena fails only past RECORDS_MAX (2^31) objects");
    }

    /// Every object, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&Key, &Value)> {
        self.objects.iter()
    }

    /// Number of objects.
    #[must_use]
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// Whether the state is empty (before genesis).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }
}

impl TableScan for MemoryState {
    fn scan_table(&self, table: Table) -> Box<dyn Iterator<Item = Value> + '_> {
        Box::new(
            self.objects
                .range(Key::new(table, "")..)
                .take_while(move |(key, _)| key.table == table)
                .map(|(_, value)| value.clone()),
        )
    }
}

impl StateView for MemoryState {
    fn get(&self, key: &Key) -> Option<Value> {
        self.objects.get(key).cloned()
    }
}

/// The writes of the entry being decided, over the state before it. Reads see the
/// entry's own earlier writes; nothing reaches the state until the caller applies
/// [`Overlay::into_changes`].
pub(crate) struct Overlay<'v, V: StateView + ?Sized> {
    view: &'v V,
    writes: BTreeMap<Key, Value>,
    index: u64,
}

impl<'v, V: StateView + ?Sized> Overlay<'v, V> {
    pub(crate) fn new(view: &'v V, index: u64) -> Self {
        Overlay {
            view,
            writes: BTreeMap::new(),
            index,
        }
    }

    /// A typed object, if present.
    pub(crate) fn find<T: Object>(&self, id: &str) -> Result<Option<T>, RuleError> {
        let key = Key::new(T::TABLE, id);
        let found = match self.writes.get(&key) {
            Some(v) => Some(v.clone()),
            None => self.view.get(&key),
        };
        as_object(id, found)
    }

    /// A typed object that must exist, else `missing()`.
    pub(crate) fn need<T: Object>(
        &self,
        id: &str,
        missing: impl FnOnce() -> RuleError,
    ) -> Result<T, RuleError> {
        self.find(id)?.ok_or_else(missing)
    }

    /// Write an object, recording this entry in its `entries`.
    pub(crate) fn put<T: Object>(&mut self, mut obj: T) {
        obj.touch(self.index);
        let key = Key::new(T::TABLE, obj.id());
        self.writes.insert(key, obj.into_value());
    }

    pub(crate) fn into_changes(self) -> Changes {
        self.writes.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::objects::Pool;

    fn pool(n: u64) -> Value {
        Value::Pool(Box::new(Pool {
            claims: n,
            ..Pool::default()
        }))
    }

    #[test]
    fn the_root_is_the_same_however_often_the_waiting_writes_are_settled() {
        // More writes than may wait, then rewrites of objects settled before.
        let n = DIRTY_OBJECTS_MAX as u64 + 10;
        let key = |i: u64| Key::new(Table::Entry, &format!("e-{i}"));
        let mut state = MemoryState::new();
        for i in 0..n {
            state.apply(vec![(key(i), pool(i))]);
        }
        assert!(
            state.dirty.borrow().len() < DIRTY_OBJECTS_MAX,
            "settled on the way"
        );
        for i in 0..5 {
            state.apply(vec![(key(i), pool(i + 1_000_000))]);
        }
        assert_eq!(state.root(), StateMap::of(state.iter()).root());
    }
}

//! The committed objects in memory, kept encoded: one hash set per table of [`Stored`]
//! objects, each one allocation holding its id and its postcard bytes, looked up by id
//! and decoded on read.
//!
//! Why encoded: a decoded object is a `Box` of a struct of `String`s and `Vec`s, each
//! its own allocation rounded up to the allocator's size class — 200 to 300 bytes for
//! an entry record or a lesson, whose postcard form is 50 to 150. At the city's 11 M
//! objects that difference is gigabytes, and a read already allocated a copy (the rules
//! own what they read), so decoding instead of cloning costs little more. The bytes are
//! exactly the value's part of a snapshot chunk or delta (postcard of `(Key, Value)` is
//! the key's bytes then the value's): loading copies them without re-encoding, and a
//! snapshot is written from them without decoding.
//!
//! Why one allocation an object, in a set: a map from a `Box<str>` to a `Box<[u8]>` took
//! two allocations an object and 32 bytes a slot, at a load of 50 to 87%; a [`Stored`]
//! is one allocation and a 16-byte slot (issue 15's footprint).

use std::borrow::Borrow;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};

use super::layout::{read_varint, write_varint, PARTS_BUDGET};
use super::{corrupt, Key, StateStoreError, Table, Value};

/// An object as the tables keep it, in one allocation: its id's length in bytes (a
/// varint, as postcard writes one), the id (UTF-8), then the object's postcard bytes.
/// Equal, and hashed, as its id's bytes, so that a table is a set looked up by id.
pub(super) struct Stored(Box<[u8]>);

impl Stored {
    /// The object of id `id` whose postcard bytes are `value`.
    pub(super) fn new(id: &str, value: &[u8]) -> Stored {
        let mut bytes = Stored::id_then_room(id, value.len());
        bytes.extend_from_slice(value);
        Stored(bytes.into_boxed_slice())
    }

    /// Encodes `value` as the object of id `id`, in a buffer of its exact size.
    ///
    /// # Errors
    /// The value cannot be encoded (postcard refused it).
    pub(super) fn encode(id: &str, value: &Value) -> Result<Stored, StateStoreError> {
        let n = postcard::experimental::serialized_size(value).map_err(|e| corrupt("object", e))?;
        let mut bytes = Stored::id_then_room(id, n);
        let at = bytes.len();
        bytes.resize(at + n, 0);
        postcard::to_slice(value, &mut bytes[at..]).map_err(|e| corrupt("object", e))?;
        Ok(Stored(bytes.into_boxed_slice()))
    }

    /// The id's length and the id, with room for exactly `value_len` bytes more.
    fn id_then_room(id: &str, value_len: usize) -> Vec<u8> {
        let len = id.len() as u64;
        let len_bytes = (u64::BITS - (len | 1).leading_zeros()).div_ceil(7) as usize;
        let mut bytes = Vec::with_capacity(len_bytes + id.len() + value_len);
        write_varint(&mut bytes, len);
        bytes.extend_from_slice(id.as_bytes());
        bytes
    }

    /// The id's bytes, and the object's.
    fn split(&self) -> (&[u8], &[u8]) {
        let (len, rest) =
            read_varint(&self.0).expect("a stored object starts with its id's length");
        rest.split_at(len as usize)
    }

    fn id_bytes(&self) -> &[u8] {
        self.split().0
    }

    /// The id.
    pub(super) fn id(&self) -> &str {
        std::str::from_utf8(self.id_bytes()).expect("a stored id was a str")
    }

    /// The object's postcard bytes.
    pub(super) fn value(&self) -> &[u8] {
        self.split().1
    }
}

impl Borrow<[u8]> for Stored {
    fn borrow(&self) -> &[u8] {
        self.id_bytes()
    }
}

impl PartialEq for Stored {
    fn eq(&self, other: &Stored) -> bool {
        self.id_bytes() == other.id_bytes()
    }
}

impl Eq for Stored {}

impl Hash for Stored {
    /// As its id's bytes hash: what [`Borrow`] requires.
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id_bytes().hash(state);
    }
}

/// The objects, one hash set per table. Not ordered: ids share long prefixes and a
/// million-object table costs ~20 string comparisons a lookup; scans (rare: the
/// matcher's inputs, the auditor's comparison) sort instead. Hashed with aHash, keyed at
/// random per process (ids are chosen by clients).
#[derive(Default)]
pub(super) struct Tables([HashSet<Stored, ahash::RandomState>; Table::ALL.len()]);

/// Decodes an object this module encoded or validated on load.
fn decode(bytes: &[u8]) -> Value {
    // Every stored form was produced by `encode` or decoded once when loaded
    // (`Tables::load`): a failure here is a bug in this module, not bad input.
    postcard::from_bytes(bytes).expect("a stored object decodes: it was checked when stored")
}

impl Tables {
    /// The stored bytes of the object under `key`.
    pub(super) fn encoded(&self, key: &Key) -> Option<&[u8]> {
        self.0[key.table as usize]
            .get(key.id.as_bytes())
            .map(Stored::value)
    }

    /// The object under `key`, decoded.
    pub(super) fn get(&self, key: &Key) -> Option<Value> {
        self.encoded(key).map(decode)
    }

    /// Stores an object of `table`, in place of the one of its id, if any.
    pub(super) fn insert(&mut self, table: Table, object: Stored) {
        self.0[table as usize].replace(object);
    }

    /// Stores the objects of a parsed part ([`super::parts::Part::parse`]), in its order.
    pub(super) fn insert_part(&mut self, objects: Vec<(Table, Stored)>) {
        for (table, object) in objects {
            self.insert(table, object);
        }
    }

    /// Every object: its table, id and bytes, in no particular order.
    pub(super) fn iter(&self) -> impl Iterator<Item = (Table, &str, &[u8])> {
        Table::ALL
            .iter()
            .zip(self.0.iter())
            .flat_map(|(t, set)| set.iter().map(move |o| (*t, o.id(), o.value())))
    }

    /// Number of objects.
    pub(super) fn len(&self) -> usize {
        self.0.iter().map(HashSet::len).sum()
    }

    /// Number of objects of one table.
    pub(super) fn table_len(&self, table: Table) -> usize {
        self.0[table as usize].len()
    }

    /// Objects in each table (by `Table as usize`).
    pub(super) fn table_lens(&self) -> [u64; Table::ALL.len()] {
        self.0.each_ref().map(|t| t.len() as u64)
    }

    /// Makes room for `objects` more in each table (by `Table as usize`), if their sum
    /// is at most `bound`: the counts are a hint from storage, so a garbled one must
    /// not turn into a huge allocation.
    pub(super) fn reserve(&mut self, objects: &[u64; Table::ALL.len()], bound: usize) {
        let sum = objects.iter().try_fold(0u64, |sum, n| sum.checked_add(*n));
        if !matches!(sum, Some(sum) if sum <= bound as u64) {
            return;
        }
        for (table, n) in self.0.iter_mut().zip(objects) {
            table.reserve(*n as usize);
        }
    }

    /// One table's objects, in id order, decoded.
    pub(super) fn scan(&self, table: Table) -> impl Iterator<Item = (Key, Value)> + '_ {
        // By the id's bytes: the order of the ids as strings.
        let mut objects: Vec<&Stored> = self.0[table as usize].iter().collect();
        objects.sort_unstable_by(|a, b| a.id_bytes().cmp(b.id_bytes()));
        objects
            .into_iter()
            .map(move |o| (Key::new(table, o.id()), decode(o.value())))
    }
}

/// `objects` (table, id, stored bytes) as postcard `Vec<(Key, Value)>`s cut as
/// [`super::layout::encode_parts`] cuts them, with the same bytes, without decoding.
pub(super) fn encode_parts<'a>(
    objects: impl Iterator<Item = (Table, &'a str, &'a [u8])>,
    what: &str,
) -> Result<Vec<Vec<u8>>, StateStoreError> {
    let mut parts = Vec::new();
    let (mut group, mut count) = (Vec::new(), 0u64);
    for (table, id, bytes) in objects {
        let key = postcard::to_allocvec(&(table, id)).map_err(|e| corrupt(what, e))?;
        if count > 0 && group.len() + key.len() + bytes.len() > PARTS_BUDGET {
            parts.push(with_length(count, &group));
            group.clear();
            count = 0;
        }
        group.extend_from_slice(&key);
        group.extend_from_slice(bytes);
        count += 1;
    }
    if count > 0 {
        parts.push(with_length(count, &group));
    }
    Ok(parts)
}

/// A postcard sequence: its length, then its elements' bytes.
fn with_length(count: u64, elements: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(elements.len() + 10);
    write_varint(&mut out, count);
    out.extend_from_slice(elements);
    out
}

#[cfg(test)]
mod tests {
    use super::super::layout::encode_parts as encode_decoded_parts;
    use super::super::parts::{Hashing, Part};
    use super::*;
    use crate::ledger::objects::{EntryRecord, Pool};
    use crate::ledger::Id;

    fn objects() -> Vec<(Key, Value)> {
        (0..3_000u64)
            .map(|n| {
                if n % 2 == 0 {
                    let pool = Pool {
                        claims: n,
                        ..Pool::default()
                    };
                    let key = Key::new(Table::Liability, &format!("inst-{n:05}"));
                    (key, Value::Pool(Box::new(pool)))
                } else {
                    let record = EntryRecord {
                        key: format!("stu-{n}/e-{n}"),
                        author: Id::new("author", &format!("stu-{n}")).unwrap(),
                        id: Id::new("id", &format!("e-{n}")).unwrap(),
                        index: n,
                        kind: "lesson_confirmed".into(),
                        payload_digest: "ab".repeat(32),
                    };
                    let key = Key::new(Table::Entry, &record.key.clone());
                    (key, Value::Entry(Box::new(record)))
                }
            })
            .collect()
    }

    fn tables_of(objects: &[(Key, Value)]) -> Tables {
        let mut tables = Tables::default();
        for (key, value) in objects {
            tables.insert(key.table, Stored::encode(&key.id, value).unwrap());
        }
        tables
    }

    #[test]
    fn stored_bytes_give_the_snapshot_that_decoded_objects_give() {
        let objects = objects();
        let tables = tables_of(&objects);
        let ours = encode_parts(tables.iter(), "test").unwrap();
        let stored: Vec<(Key, Value)> = tables
            .iter()
            .map(|(t, id, bytes)| (Key::new(t, id), decode(bytes)))
            .collect();
        let theirs = encode_decoded_parts(stored.iter().map(|(k, v)| (k, v)), "test").unwrap();
        assert!(ours.len() > 1, "{} parts", ours.len());
        assert_eq!(ours, theirs, "the same chunks, byte for byte");
    }

    #[test]
    fn loaded_parts_read_back_every_object() {
        let objects = objects();
        let mut loaded = Tables::default();
        for part in encode_parts(tables_of(&objects).iter(), "test").unwrap() {
            let part = Part::parse(&part, "test", Hashing::Objects).unwrap();
            assert_eq!(part.objects.len(), part.changes.len());
            loaded.insert_part(part.objects);
        }
        assert_eq!(loaded.len(), objects.len());
        for (key, value) in &objects {
            assert_eq!(loaded.get(key).as_ref(), Some(value), "{key:?}");
        }
        let scanned: Vec<Key> = loaded.scan(Table::Entry).map(|(k, _)| k).collect();
        assert!(scanned.windows(2).all(|w| w[0].id < w[1].id), "id order");
        assert_eq!(scanned.len(), loaded.table_len(Table::Entry));
    }

    #[test]
    fn a_damaged_part_is_refused_as_corrupt() {
        let part = &encode_parts(tables_of(&objects()).iter(), "test").unwrap()[0];
        let mut longer = part.clone();
        longer.push(0);
        for bad in [&part[..part.len() - 1], &longer[..], &[][..]] {
            let Err(err) = Part::parse(bad, "test", Hashing::Objects) else {
                panic!("a damaged part parsed");
            };
            assert_eq!(err.code(), "state_corrupt", "{err}");
        }
    }

    #[test]
    fn room_is_made_for_the_heads_counts_only_within_their_bound() {
        let capacities = |t: &Tables| t.0.each_ref().map(HashSet::capacity);
        let mut counts = [0u64; Table::ALL.len()];
        counts[Table::Entry as usize] = 5_000;
        counts[Table::Claim as usize] = 1_000;
        let mut tables = Tables::default();
        tables.reserve(&counts, 5_999);
        assert_eq!(capacities(&tables), [0; Table::ALL.len()], "over the bound");
        counts[Table::Claim as usize] = u64::MAX;
        tables.reserve(&counts, usize::MAX);
        assert_eq!(capacities(&tables), [0; Table::ALL.len()], "a sum past u64");
        counts[Table::Claim as usize] = 1_000;
        tables.reserve(&counts, 6_000);
        assert!(tables.0[Table::Entry as usize].capacity() >= 5_000);
        assert!(tables.0[Table::Claim as usize].capacity() >= 1_000);
    }

    #[test]
    fn a_stored_object_keeps_its_id_and_bytes_in_one_exact_allocation() {
        for id_len in [0usize, 1, 127, 128, 300, 20_000] {
            let id = "i".repeat(id_len);
            let stored = Stored::new(&id, b"value");
            assert_eq!((stored.id(), stored.value()), (id.as_str(), &b"value"[..]));
            let mut prefix = Vec::new();
            write_varint(&mut prefix, id_len as u64);
            assert_eq!(stored.0.len(), prefix.len() + id_len + 5, "{id_len}");
        }
        let pool = Value::Pool(Box::default());
        let encoded = Stored::encode("pool", &pool).unwrap();
        assert_eq!(encoded.value(), postcard::to_allocvec(&pool).unwrap());
    }
}

//! The committed objects in memory, kept encoded: one hash map per table from the id
//! (a `Box<str>`) to the object's postcard bytes (a `Box<[u8]>`), decoded on read.
//!
//! Why encoded: a decoded object is a `Box` of a struct of `String`s and `Vec`s, each
//! its own allocation rounded up to the allocator's size class — 200 to 300 bytes for
//! an entry record or a lesson, whose postcard form is 50 to 150. At the city's 11 M
//! objects that difference is gigabytes, and a read already allocated a copy (the rules
//! own what they read), so decoding instead of cloning costs little more. The bytes are
//! exactly the value's part of a snapshot chunk or delta (postcard of `(Key, Value)` is
//! the key's bytes then the value's): loading copies them without re-encoding, and a
//! snapshot is written from them without decoding.

use std::collections::HashMap;

use super::layout::{write_varint, PARTS_BUDGET};
use super::{corrupt, Key, StateStoreError, Table, Value};

/// An object's postcard bytes.
pub(super) type Encoded = Box<[u8]>;

/// The objects, one hash map per table. Not ordered maps: ids share long prefixes and a
/// million-object table costs ~20 string comparisons a lookup; scans (rare: the
/// matcher's inputs, the auditor's comparison) sort instead. Hashed with aHash, keyed at
/// random per process (ids are chosen by clients).
#[derive(Default)]
pub(super) struct Tables([HashMap<Box<str>, Encoded, ahash::RandomState>; Table::ALL.len()]);

/// Encodes one object, in a buffer of its exact size.
pub(super) fn encode(value: &Value) -> Result<Encoded, StateStoreError> {
    let n = postcard::experimental::serialized_size(value).map_err(|e| corrupt("object", e))?;
    let mut bytes = vec![0u8; n];
    postcard::to_slice(value, &mut bytes).map_err(|e| corrupt("object", e))?;
    Ok(bytes.into_boxed_slice())
}

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
            .get(key.id.as_str())
            .map(|b| &**b)
    }

    /// The object under `key`, decoded.
    pub(super) fn get(&self, key: &Key) -> Option<Value> {
        self.0[key.table as usize]
            .get(key.id.as_str())
            .map(|b| decode(b))
    }

    /// Stores an encoded object (from [`encode`]).
    pub(super) fn insert(&mut self, key: Key, bytes: Encoded) {
        self.0[key.table as usize].insert(key.id.into_boxed_str(), bytes);
    }

    /// Stores the objects of a parsed part ([`super::parts::Part::parse`]), in its order.
    pub(super) fn insert_part(&mut self, objects: Vec<(Key, Encoded)>) {
        for (key, bytes) in objects {
            self.insert(key, bytes);
        }
    }

    /// Every object: its table, id and bytes, in no particular order.
    pub(super) fn iter(&self) -> impl Iterator<Item = (Table, &str, &[u8])> {
        Table::ALL
            .iter()
            .zip(self.0.iter())
            .flat_map(|(t, m)| m.iter().map(move |(id, v)| (*t, &**id, &**v)))
    }

    /// Number of objects.
    pub(super) fn len(&self) -> usize {
        self.0.iter().map(HashMap::len).sum()
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
        let mut objects: Vec<(&Box<str>, &Encoded)> = self.0[table as usize].iter().collect();
        objects.sort_unstable_by(|a, b| a.0.cmp(b.0));
        objects
            .into_iter()
            .map(move |(id, bytes)| (Key::new(table, id), decode(bytes)))
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
            tables.insert(key.clone(), encode(value).unwrap());
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
        let capacities = |t: &Tables| t.0.each_ref().map(HashMap::capacity);
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
}

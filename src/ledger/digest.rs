//! The state digest: an incremental multiset hash (LtHash16) over every stored object,
//! so each entry updates it in O(objects written), never O(state).
//!
//! Construction (Bellare–Micciancio's LtHash, as deployed by Facebook, "Securing Update
//! Propagation with Homomorphic Hashing", <https://eprint.iacr.org/2019/227>), precisely
//! enough to reimplement:
//! 1. **Element bytes** of an object stored under table `t` with id `i` and value `v`:
//!    `u32be(len(t)) || t || u32be(len(i)) || i || canonical_json(v)`, where `t` is the
//!    table name ([`Table::name`](super::state::Table::name)), `i` the id's UTF-8 bytes,
//!    and `canonical_json(v)` the value's serde JSON (externally tagged, e.g.
//!    `{"claim":{...}}`) re-encoded canonically: no whitespace, object keys sorted by
//!    their UTF-8 bytes, integers in decimal, `null` for absent options, strings escaped
//!    as RFC 8785 §3.2.2.2 (only `"`, `\` and U+0000..U+001F escaped). Values hold no
//!    floats.
//! 2. **Element hash**: BLAKE3 in derive-key mode with context
//!    `"lesson-ledger v1 state-digest element"` over the element bytes, extended (XOF) to
//!    2048 bytes, read as 1024 little-endian `u16` lanes.
//! 3. **Multiset hash** of the state: the lane-wise sum, wrapping mod 2^16, of the element
//!    hashes of all objects (the empty state is all zero lanes). Writing object `k` from
//!    `old` to `new` subtracts `H(k, old)` and adds `H(k, new)`.
//! 4. **Digest**: BLAKE3 (plain hash) of the 1024 lanes as 2048 little-endian bytes.
//!
//! ```
//! use lesson_ledger::ledger::digest::LtHash16;
//! use lesson_ledger::ledger::{Key, Table, Value, objects::Pool};
//! let (k, v) = (Key::new(Table::Meta, "pool"), Value::Pool(Box::default()));
//! let mut h = LtHash16::default();
//! let empty = h.digest();
//! h.add(&k, &v);
//! assert_ne!(h.digest(), empty);
//! h.remove(&k, &v);
//! assert_eq!(h.digest(), empty);
//! ```

use super::state::{Key, Value};

/// Number of 16-bit lanes.
pub const LANES: usize = 1024;

/// BLAKE3 derive-key context of element hashes.
pub const ELEMENT_CONTEXT: &str = "lesson-ledger v1 state-digest element";

/// A multiset hash of (key, value) elements: 1024 wrapping u16 lanes.
#[derive(Clone, PartialEq, Eq)]
pub struct LtHash16 {
    lanes: Box<[u16; LANES]>,
}

impl Default for LtHash16 {
    fn default() -> Self {
        LtHash16 {
            lanes: Box::new([0; LANES]),
        }
    }
}

impl std::fmt::Debug for LtHash16 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LtHash16({})", super::units::hex(&self.digest()))
    }
}

impl LtHash16 {
    /// Add one element.
    pub fn add(&mut self, key: &Key, value: &Value) {
        let e = element_hash(key, value);
        for (l, x) in self.lanes.iter_mut().zip(e.iter()) {
            *l = l.wrapping_add(*x);
        }
    }

    /// Remove one element (previously added).
    pub fn remove(&mut self, key: &Key, value: &Value) {
        let e = element_hash(key, value);
        for (l, x) in self.lanes.iter_mut().zip(e.iter()) {
            *l = l.wrapping_sub(*x);
        }
    }

    /// Add another multiset hash lane by lane (the hash of the union of the multisets).
    pub fn add_hash(&mut self, other: &LtHash16) {
        for (l, x) in self.lanes.iter_mut().zip(other.lanes.iter()) {
            *l = l.wrapping_add(*x);
        }
    }

    /// The change to a multiset hash made by writing each key from its old value (if
    /// any) to its new one: `Σ H(k, new) − Σ H(k, old)`. Lane sums commute, so the
    /// element hashes are computed in parallel, in any order.
    ///
    /// They run on a pool of their own: the ledger's writer asks for this once per batch
    /// and waits, and on the global rayon pool it would queue behind the signature
    /// verification of the next batch.
    pub fn of_writes(writes: Vec<(&Key, Option<&Value>, &Value)>) -> LtHash16 {
        use rayon::prelude::*;
        let fold = || {
            writes
                .into_par_iter()
                .fold(LtHash16::default, |mut acc, (key, old, new)| {
                    if let Some(old) = old {
                        acc.remove(key, old);
                    }
                    acc.add(key, new);
                    acc
                })
                .reduce(LtHash16::default, |mut a, b| {
                    a.add_hash(&b);
                    a
                })
        };
        match digest_pool() {
            Some(pool) => pool.install(fold),
            None => fold(),
        }
    }

    /// BLAKE3 of the lanes as little-endian bytes.
    #[must_use]
    pub fn digest(&self) -> [u8; 32] {
        let mut h = blake3::Hasher::new();
        for l in self.lanes.iter() {
            h.update(&l.to_le_bytes());
        }
        *h.finalize().as_bytes()
    }

    /// The lanes as 2048 little-endian bytes (what [`LtHash16::digest`] hashes), for
    /// storing the running hash next to the state it describes.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        self.lanes.iter().flat_map(|l| l.to_le_bytes()).collect()
    }

    /// The inverse of [`LtHash16::to_bytes`]; `None` unless exactly 2048 bytes.
    #[must_use]
    pub fn from_bytes(bytes: &[u8]) -> Option<LtHash16> {
        if bytes.len() != LANES * 2 {
            return None;
        }
        let mut lanes = Box::new([0u16; LANES]);
        for (lane, pair) in lanes.iter_mut().zip(bytes.chunks_exact(2)) {
            *lane = u16::from_le_bytes([pair[0], pair[1]]);
        }
        Some(LtHash16 { lanes })
    }

    /// The multiset hash of `objects`, computed from scratch.
    pub fn of<'a>(objects: impl IntoIterator<Item = (&'a Key, &'a Value)>) -> LtHash16 {
        let mut h = LtHash16::default();
        for (k, v) in objects {
            h.add(k, v);
        }
        h
    }
}

/// The digest's own thread pool, one thread per core; `None` if threads cannot be
/// started (then the global pool is used).
fn digest_pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: std::sync::OnceLock<Option<rayon::ThreadPool>> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .thread_name(|i| format!("state-digest-{i}"))
            .build()
            .ok()
    })
    .as_ref()
}

/// The element bytes of step 1.
#[must_use]
pub fn element_bytes(key: &Key, value: &Value) -> Vec<u8> {
    let table = key.table.name().as_bytes();
    let id = key.id.as_bytes();
    let mut out = Vec::with_capacity(16 + table.len() + id.len() + 256);
    // Lengths fit u32: table names are constants and ids are capped at 256 bytes.
    out.extend_from_slice(&u32::try_from(table.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(table);
    out.extend_from_slice(&u32::try_from(id.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(id);
    canonical_json(value, &mut out);
    out
}

/// The element hash of step 2.
#[must_use]
pub fn element_hash(key: &Key, value: &Value) -> [u16; LANES] {
    let mut h = blake3::Hasher::new_derive_key(ELEMENT_CONTEXT);
    h.update(&element_bytes(key, value));
    let mut bytes = [0u8; LANES * 2];
    h.finalize_xof().fill(&mut bytes);
    let mut lanes = [0u16; LANES];
    for (l, c) in lanes.iter_mut().zip(bytes.chunks_exact(2)) {
        *l = u16::from_le_bytes([c[0], c[1]]);
    }
    lanes
}

/// Append the canonical JSON of `value` (step 1) to `out`.
pub fn canonical_json(value: &Value, out: &mut Vec<u8>) {
    // Serializing our own derived types to a JSON tree cannot fail: every map key is a
    // string and there are no floats. Null stands in should that ever change, which the
    // digest tests would catch.
    let tree = serde_json::to_value(value).unwrap_or(serde_json::Value::Null);
    write_canonical(&tree, out);
}

fn write_canonical(v: &serde_json::Value, out: &mut Vec<u8>) {
    use serde_json::Value as J;
    match v {
        J::Null => out.extend_from_slice(b"null"),
        J::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        J::Number(n) => out.extend_from_slice(n.to_string().as_bytes()),
        J::String(s) => write_string(s, out),
        J::Array(a) => {
            out.push(b'[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(x, out);
            }
            out.push(b']');
        }
        J::Object(m) => {
            // Sort explicitly: serde_json's map order depends on a cargo feature.
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            out.push(b'{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(k, out);
                out.push(b':');
                if let Some(x) = m.get(k) {
                    write_canonical(x, out);
                }
            }
            out.push(b'}');
        }
    }
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if u32::from(c) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", u32::from(c)).as_bytes())
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::objects::Pool;
    use crate::ledger::state::Table;
    use crate::ledger::units::Fen;

    fn pool(n: u64) -> Value {
        Value::Pool(Box::new(Pool {
            claims: n,
            claims_value: Fen(n * 7),
            ..Pool::default()
        }))
    }

    #[test]
    fn canonical_json_sorts_keys_and_escapes_minimally() {
        let mut out = Vec::new();
        write_canonical(
            &serde_json::json!({"b": 1, "a": ["x\"\n\u{1}", null, true]}),
            &mut out,
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"a":["x\"\n\u0001",null,true],"b":1}"#
        );
    }

    #[test]
    fn multiset_hash_is_order_independent_and_updatable() {
        let k1 = Key::new(Table::Meta, "pool");
        let k2 = Key::new(Table::Meta, "other");
        let (mut a, mut b) = (LtHash16::default(), LtHash16::default());
        a.add(&k1, &pool(1));
        a.add(&k2, &pool(2));
        b.add(&k2, &pool(2));
        b.add(&k1, &pool(1));
        assert_eq!(a.digest(), b.digest());
        // Update k1 from 1 to 3: equals a fresh hash of {k1:3, k2:2}.
        a.remove(&k1, &pool(1));
        a.add(&k1, &pool(3));
        let fresh = LtHash16::of([(&k1, &pool(3)), (&k2, &pool(2))]);
        assert_eq!(a.digest(), fresh.digest());
        assert_ne!(a.digest(), b.digest());
    }

    #[test]
    fn element_bytes_frame_table_and_id() {
        // ("meta","poolx") and ("metap","oolx") must differ even with equal values.
        let v = pool(0);
        let a = element_bytes(&Key::new(Table::Meta, "pool"), &v);
        let b = element_bytes(&Key::new(Table::Meta, "poo"), &v);
        assert_ne!(a, b);
        assert!(a.starts_with(&[0, 0, 0, 4, b'm', b'e', b't', b'a', 0, 0, 0, 4]));
    }
}

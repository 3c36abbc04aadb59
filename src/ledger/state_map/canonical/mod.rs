//! The canonical bytes of a stored object, which the state map hashes
//! (`schemas/README.md`, "State map"): the value's serde JSON (externally tagged, e.g.
//! `{"claim":{...}}`) re-encoded canonically: no whitespace, object keys sorted by their
//! UTF-8 bytes, integers in decimal, `null` for absent options, strings escaped as
//! RFC 8785 §3.2.2.2 (only `"`, `\` and U+0000..U+001F escaped, the short forms
//! `\b \f \n \r \t` where they exist, else `\u00xx` in lowercase hex). Values hold no
//! floats.
//!
//! Written by a serde [`serde::Serializer`] of its own, straight from the typed value:
//! the state map hashes every object the ledger writes, and every object of the state
//! when `serve` opens, and going through a `serde_json::Value` tree first (a map and a
//! `String` allocated for every object and field) cost several times the hash (issue
//! 15). The serializer is held to that tree's bytes: in debug builds every call is
//! compared with it, so the whole test suite checks the two agree.

mod serializer;

use serde::Serialize;

use crate::ledger::state::Value;
use serializer::Canonical;

/// Append the canonical JSON of `value` to `out`.
pub fn canonical_json(value: &Value, out: &mut Vec<u8>) {
    let start = out.len();
    // Our derived types serialize without error: every map key is a string, there are
    // no floats, no integers past 64 bits. Null stands in should that ever change, as
    // it did for the tree this replaces; the digest tests would catch it.
    if value.serialize(Canonical { out }).is_err() {
        out.truncate(start);
        out.extend_from_slice(b"null");
    }
    #[cfg(debug_assertions)]
    debug_assert_eq!(
        String::from_utf8_lossy(&out[start..]),
        String::from_utf8_lossy(&oracle::canonical_json(value)),
        "the canonical serializer and the serde_json tree disagree"
    );
}

/// A JSON string, escaped as RFC 8785 §3.2.2.2. Only ASCII bytes are ever escaped, so
/// runs of other bytes (multi-byte UTF-8 included) are copied whole.
pub(crate) fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    let bytes = s.as_bytes();
    // Most strings (ids, kinds, digests) need no escape: one scan, one copy.
    if !bytes.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\') {
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    let mut copied = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            0x0c => b"\\f",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[copied..i]);
        copied = i + 1;
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0x0f)]);
        } else {
            out.extend_from_slice(escape);
        }
    }
    out.extend_from_slice(&bytes[copied..]);
    out.push(b'"');
}

/// The canonical form by way of a `serde_json::Value` tree: the definition the
/// serializer is held to (debug builds and the tests below).
#[cfg(any(test, debug_assertions))]
mod oracle {
    use super::write_string;

    pub(super) fn canonical_json(value: &impl serde::Serialize) -> Vec<u8> {
        let mut out = Vec::new();
        let tree = serde_json::to_value(value).unwrap_or(serde_json::Value::Null);
        write_canonical(&tree, &mut out);
        out
    }

    pub(super) fn write_canonical(v: &serde_json::Value, out: &mut Vec<u8>) {
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
                // Sorted explicitly: serde_json's map order depends on a cargo feature.
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
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;
    use serde::Serialize;

    use super::*;

    fn canonical(value: &impl Serialize) -> String {
        let mut out = Vec::new();
        value.serialize(Canonical { out: &mut out }).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn canonical_json_sorts_keys_and_escapes_minimally() {
        let mut out = Vec::new();
        oracle::write_canonical(
            &serde_json::json!({"b": 1, "a": ["x\"\n\u{1}", null, true]}),
            &mut out,
        );
        let expected = r#"{"a":["x\"\n\u0001",null,true],"b":1}"#;
        assert_eq!(String::from_utf8(out).unwrap(), expected);
        assert_eq!(
            canonical(&serde_json::json!({"b": 1, "a": ["x\"\n\u{1}", null, true]})),
            expected
        );
    }

    #[derive(Serialize)]
    #[serde(rename_all = "snake_case")]
    enum Shape {
        Unit,
        Newtype(u8),
        Tuple(i64, Option<String>),
        Struct { zeta: bool, alpha: Vec<u8> },
    }

    #[derive(Serialize)]
    struct Fields {
        z: Shape,
        a: Vec<Shape>,
        #[serde(rename = "é")]
        accented: char,
        #[serde(rename = "E")]
        upper: (),
        m: BTreeMap<u32, String>,
        #[serde(with = "serde_bytes_like")]
        b: Vec<u8>,
    }

    mod serde_bytes_like {
        pub fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(v)
        }
    }

    #[test]
    fn every_serde_shape_matches_the_json_tree() {
        let value = Fields {
            z: Shape::Unit,
            a: vec![
                Shape::Newtype(7),
                Shape::Tuple(-3, None),
                Shape::Tuple(i64::MIN, Some("\u{7f}\u{1f}é".into())),
                Shape::Struct {
                    zeta: false,
                    alpha: vec![1, 2],
                },
            ],
            accented: '"',
            upper: (),
            m: BTreeMap::from([(10, "ten".into()), (9, "nine".into())]),
            b: vec![0, 255],
        };
        assert_eq!(
            canonical(&value),
            String::from_utf8(oracle::canonical_json(&value)).unwrap()
        );
    }

    #[test]
    fn floats_and_wide_integers_have_no_canonical_form() {
        let mut out = Vec::new();
        assert!(1.5f64.serialize(Canonical { out: &mut out }).is_err());
        assert!(u128::MAX.serialize(Canonical { out: &mut out }).is_err());
        assert_eq!(canonical(&(u64::MAX as u128)), u64::MAX.to_string());
    }

    proptest! {
        #[test]
        fn strings_and_string_maps_match_the_json_tree(
            map in proptest::collection::hash_map(".{0,6}", ".{0,12}", 0..6),
            list in proptest::collection::vec(any::<String>(), 0..4),
        ) {
            let value = (map, list);
            prop_assert_eq!(
                canonical(&value),
                String::from_utf8(oracle::canonical_json(&value)).unwrap()
            );
        }
    }
}

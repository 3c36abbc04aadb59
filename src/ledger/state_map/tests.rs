//! Unit tests of the proof format (the tree's own tests are in `tests/state_map.rs`).

use super::proof::*;
use crate::ledger::units::hex;
use crate::ledger::Table;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

fn pairs(n: u32) -> Vec<(Hash, Hash)> {
    (0..n)
        .map(|i| {
            (
                map_key(Table::Claim, &format!("c-{i}")),
                value_hash(&i.to_be_bytes()),
            )
        })
        .collect()
}

#[test]
fn the_root_follows_the_definition_by_hand() {
    assert_eq!(root_of([]), ZERO);
    let [(k1, v1)] = pairs(1)[..] else { panic!() };
    assert_eq!(root_of([(k1, v1)]), leaf_hash(&k1, &v1));
    // Two keys: split at the first bit where they differ; empty halves above it.
    let two = pairs(2);
    let (a, b) = (two[0], two[1]);
    let first_diff = (0..256).find(|&d| bit(&a.0, d) != bit(&b.0, d)).unwrap();
    let (l, r) = if bit(&a.0, first_diff) {
        (b, a)
    } else {
        (a, b)
    };
    let mut h = internal_hash(&leaf_hash(&l.0, &l.1), &leaf_hash(&r.0, &r.1));
    for d in (0..first_diff).rev() {
        h = if bit(&a.0, d) {
            internal_hash(&ZERO, &h)
        } else {
            internal_hash(&h, &ZERO)
        };
    }
    assert_eq!(root_of(two), h);
}

#[test]
fn map_keys_frame_table_and_id() {
    assert_ne!(map_key(Table::Claim, "c-1"), map_key(Table::Pledge, "c-1"));
    let mut h = blake3::Hasher::new_derive_key(KEY_CONTEXT);
    h.update(&[0, 0, 0, 5]);
    h.update(b"claim");
    h.update(&[0, 0, 0, 3]);
    h.update(b"c-1");
    assert_eq!(map_key(Table::Claim, "c-1"), *h.finalize().as_bytes());
}

#[test]
fn a_proof_round_trips_through_its_json_form() {
    let set = pairs(9);
    let proof = reference_proof(set.iter().copied(), &set[3].0);
    let text = serde_json::to_string(&proof).unwrap();
    assert!(text.starts_with(&format!("{{\"key\":\"{}\",\"siblings\":\"", hex(&set[3].0))));
    assert_eq!(StateProof::from_json(text.as_bytes()).unwrap(), proof);
    let absent = reference_proof([], &set[3].0);
    let text = serde_json::to_string(&absent).unwrap();
    assert_eq!(
        text,
        format!(
            "{{\"key\":\"{}\",\"siblings\":\"\",\"leaf\":null}}",
            hex(&set[3].0)
        )
    );
}

#[test]
fn malformed_json_proofs_are_refused_with_their_codes() {
    let key = hex(&[0xab; 32]);
    let cases = [
        (
            format!(r#"{{"key":"{key}","siblings":"AAA","leaf":null}}"#),
            "proof_malformed",
        ),
        (
            format!(
                r#"{{"key":"{}","siblings":"","leaf":null}}"#,
                key.to_uppercase()
            ),
            "proof_malformed",
        ),
        (
            format!(
                r#"{{"key":"{key}","siblings":"{}","leaf":null}}"#,
                STANDARD.encode([1u8; 33])
            ),
            "proof_malformed",
        ),
        (
            format!(
                r#"{{"key":"{key}","siblings":"{}","leaf":null}}"#,
                STANDARD.encode(vec![1u8; 32 * 257])
            ),
            "proof_too_deep",
        ),
        (
            format!(r#"{{"key":"{key}","siblings":"","leaf":null,"x":1}}"#),
            "proof_malformed",
        ),
        (
            format!(r#"{{"key":"{key}","siblings":"","leaf":{{"key":"{key}"}}}}"#),
            "proof_malformed",
        ),
    ];
    for (text, code) in cases {
        assert_eq!(
            StateProof::from_json(text.as_bytes()).unwrap_err().code(),
            code,
            "{text}"
        );
    }
}

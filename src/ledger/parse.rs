//! The payload parser: bytes to a typed [`Entry`], each shape error with its own code.
//!
//! Steps, in order (spec: `schemas/entries/<kind>.schema.json`):
//! 1. the byte cap [`PAYLOAD_BYTES_MAX`], before parsing (`payload_too_large`);
//! 2. JSON syntax and a top-level object (`malformed_payload`), no field twice
//!    (`duplicate_field`);
//! 3. `kind` present (`missing_field`) and known (`unknown_kind`);
//! 4. no field outside the kind's list (`unknown_field`), every required one present
//!    (`missing_field`);
//! 5. field types (`malformed_payload`).
//!
//! ```
//! use lesson_ledger::ledger::payload::{parse, Entry};
//! let e = parse(br#"{"kind":"lesson_confirmed","id":"e-1","ledger":"l.example/a","lesson":"l-1"}"#).unwrap();
//! assert_eq!(e.kind(), "lesson_confirmed");
//! ```

use serde::de::{DeserializeOwned, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::error::RuleError;
use super::limits::PAYLOAD_BYTES_MAX;
use super::payload::Entry;

/// Every entry kind, with its fields as `(name, required)`, `kind` excluded.
pub const KINDS: &[(&str, &[(&str, bool)])] = &[
    (
        "genesis",
        &[
            ("id", true),
            ("ledger", true),
            ("origin", true),
            ("operator", true),
            ("operator_key", true),
            ("confirmation_window_days", false),
            ("allocation_validity_days", true),
            ("day_micros", false),
            ("unit", true),
            ("districts", true),
            ("subjects", true),
            ("associations", true),
        ],
    ),
    (
        "party_registered",
        &[
            ("id", true),
            ("ledger", true),
            ("party", true),
            ("role", true),
            ("key", true),
        ],
    ),
    (
        "key_rotated",
        &[
            ("id", true),
            ("ledger", true),
            ("party", true),
            ("old_key", true),
            ("new_key", true),
        ],
    ),
    (
        "key_revoked",
        &[
            ("id", true),
            ("ledger", true),
            ("party", true),
            ("key", true),
            ("reason", true),
            ("evidence_digest", false),
        ],
    ),
    (
        "key_recovered",
        &[
            ("id", true),
            ("ledger", true),
            ("party", true),
            ("new_key", true),
        ],
    ),
    (
        "institution_closed",
        &[
            ("id", true),
            ("ledger", true),
            ("institution", true),
            ("reason", true),
            ("evidence_digest", false),
        ],
    ),
    (
        "institution_whitelisted",
        &[
            ("id", true),
            ("ledger", true),
            ("institution", true),
            ("reason", true),
            ("evidence_digest", false),
        ],
    ),
    (
        "institution_blacklisted",
        &[
            ("id", true),
            ("ledger", true),
            ("institution", true),
            ("reason", true),
            ("evidence_digest", false),
        ],
    ),
    (
        "claim_recorded",
        &[
            ("id", true),
            ("ledger", true),
            ("claim", true),
            ("student", true),
            ("institution", true),
            ("lessons", true),
            ("price_per_lesson_fen", true),
            ("subject", true),
            ("grade", true),
            ("district", true),
            ("evidence_digest", true),
            ("accepts_online", true),
            ("accepted_districts", true),
        ],
    ),
    (
        "claim_preferences_set",
        &[
            ("id", true),
            ("ledger", true),
            ("claim", true),
            ("subjects", true),
            ("accepts_online", true),
            ("accepted_districts", true),
            ("requests", true),
        ],
    ),
    (
        "pledge_offered",
        &[
            ("id", true),
            ("ledger", true),
            ("pledge", true),
            ("institution", true),
            ("subject", true),
            ("grade_min", true),
            ("grade_max", true),
            ("district", false),
            ("online", false),
            ("seats", true),
            ("lessons_per_seat", true),
            ("value_per_lesson_fen", true),
            ("valid_from_micros", true),
            ("valid_until_micros", true),
        ],
    ),
    (
        "pledge_approved",
        &[("id", true), ("ledger", true), ("pledge", true)],
    ),
    (
        "pledge_withdrawn",
        &[
            ("id", true),
            ("ledger", true),
            ("pledge", true),
            ("lessons", true),
        ],
    ),
    (
        "allocation_made",
        &[
            ("id", true),
            ("ledger", true),
            ("allocation", true),
            ("claim", true),
            ("pledge", true),
            ("lessons", true),
            ("run", false),
        ],
    ),
    (
        "match_run",
        &[
            ("id", true),
            ("ledger", true),
            ("run", true),
            ("params", true),
            ("allocations", true),
            ("plans_digest", true),
        ],
    ),
    (
        "match_run_closed",
        &[("id", true), ("ledger", true), ("run", true)],
    ),
    (
        "time_attested",
        &[("id", true), ("ledger", true), ("at_micros", true)],
    ),
    (
        "allocation_expired",
        &[("id", true), ("ledger", true), ("allocation", true)],
    ),
    (
        "allocation_declined",
        &[("id", true), ("ledger", true), ("allocation", true)],
    ),
    (
        "lesson_consumed",
        &[
            ("id", true),
            ("ledger", true),
            ("lesson", true),
            ("allocation", true),
        ],
    ),
    (
        "lesson_proposed",
        &[
            ("id", true),
            ("ledger", true),
            ("lesson", true),
            ("allocation", true),
        ],
    ),
    (
        "lesson_confirmed",
        &[("id", true), ("ledger", true), ("lesson", true)],
    ),
    (
        "lesson_disputed",
        &[
            ("id", true),
            ("ledger", true),
            ("dispute", true),
            ("lesson", true),
            ("reason", true),
            ("evidence_digest", false),
        ],
    ),
    (
        "lesson_deemed_confirmed",
        &[("id", true), ("ledger", true), ("lesson", true)],
    ),
    (
        "dispute_resolved",
        &[
            ("id", true),
            ("ledger", true),
            ("dispute", true),
            ("outcome", true),
            ("reason", true),
            ("evidence_digest", false),
        ],
    ),
];

/// A JSON object's fields in order, refusing a field that appears twice.
struct UniqueFields(Vec<(String, serde_json::Value)>);

impl<'de> Deserialize<'de> for UniqueFields {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = UniqueFields;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<UniqueFields, A::Error> {
                let mut out: Vec<(String, serde_json::Value)> = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, serde_json::Value>()? {
                    if out.iter().any(|(seen, _)| *seen == k) {
                        // Marked so `parse` can tell this apart from other syntax errors.
                        return Err(serde::de::Error::custom(format!("{DUP_MARK}{k}")));
                    }
                    out.push((k, v));
                }
                Ok(UniqueFields(out))
            }
        }
        d.deserialize_map(V)
    }
}

const DUP_MARK: &str = "\u{0}duplicate field:";

/// Parse payload bytes into a typed entry.
///
/// # Errors
/// `payload_too_large`, `malformed_payload`, `duplicate_field`, `unknown_kind`,
/// `unknown_field`, `missing_field`.
pub fn parse(payload: &[u8]) -> Result<Entry, RuleError> {
    // 1. Cap before parsing.
    if payload.len() > PAYLOAD_BYTES_MAX {
        return Err(RuleError::PayloadTooLarge {
            bytes: payload.len(),
            max: PAYLOAD_BYTES_MAX,
        });
    }
    // 2. Syntax, an object, no field twice.
    let fields: UniqueFields = serde_json::from_slice(payload).map_err(|e| {
        let msg = e.to_string();
        match msg.split_once(DUP_MARK) {
            Some((_, rest)) => {
                let field = rest.split(" at line").next().unwrap_or(rest).to_owned();
                RuleError::DuplicateField { field }
            }
            None => RuleError::MalformedPayload { detail: msg },
        }
    })?;
    // 3. A known kind.
    let mut map = serde_json::Map::new();
    let mut kind: Option<String> = None;
    for (k, v) in fields.0 {
        if k == "kind" {
            match v {
                serde_json::Value::String(s) => kind = Some(s),
                _ => {
                    return Err(RuleError::MalformedPayload {
                        detail: "kind must be a string".into(),
                    })
                }
            }
        } else {
            map.insert(k, v);
        }
    }
    let Some(kind) = kind else {
        return Err(RuleError::MissingField {
            kind: String::new(),
            field: "kind".into(),
        });
    };
    let Some((kind_name, spec)) = KINDS.iter().find(|(name, _)| *name == kind) else {
        return Err(RuleError::UnknownKind {
            kind: truncate(&kind),
        });
    };
    // 4. Fields of this kind only, the required ones present.
    for k in map.keys() {
        if !spec.iter().any(|(name, _)| name == k) {
            return Err(RuleError::UnknownField {
                kind: (*kind_name).into(),
                field: truncate(k),
            });
        }
    }
    for (name, required) in spec.iter() {
        if *required && !map.contains_key(*name) {
            return Err(RuleError::MissingField {
                kind: (*kind_name).into(),
                field: (*name).into(),
            });
        }
    }
    // 5. Types.
    let v = serde_json::Value::Object(map);
    Ok(match *kind_name {
        "genesis" => Entry::Genesis(typed(v)?),
        "party_registered" => Entry::PartyRegistered(typed(v)?),
        "key_rotated" => Entry::KeyRotated(typed(v)?),
        "key_revoked" => Entry::KeyRevoked(typed(v)?),
        "key_recovered" => Entry::KeyRecovered(typed(v)?),
        "institution_closed" => Entry::InstitutionClosed(typed(v)?),
        "institution_whitelisted" => Entry::InstitutionWhitelisted(typed(v)?),
        "institution_blacklisted" => Entry::InstitutionBlacklisted(typed(v)?),
        "claim_recorded" => Entry::ClaimRecorded(typed(v)?),
        "claim_preferences_set" => Entry::ClaimPreferencesSet(typed(v)?),
        "pledge_offered" => Entry::PledgeOffered(typed(v)?),
        "pledge_approved" => Entry::PledgeApproved(typed(v)?),
        "pledge_withdrawn" => Entry::PledgeWithdrawn(typed(v)?),
        "allocation_made" => Entry::AllocationMade(typed(v)?),
        "match_run" => Entry::MatchRun(typed(v)?),
        "match_run_closed" => Entry::MatchRunClosed(typed(v)?),
        "time_attested" => Entry::TimeAttested(typed(v)?),
        "allocation_expired" => Entry::AllocationExpired(typed(v)?),
        "allocation_declined" => Entry::AllocationDeclined(typed(v)?),
        "lesson_consumed" => Entry::LessonConsumed(typed(v)?),
        "lesson_proposed" => Entry::LessonProposed(typed(v)?),
        "lesson_confirmed" => Entry::LessonConfirmed(typed(v)?),
        "lesson_disputed" => Entry::LessonDisputed(typed(v)?),
        "lesson_deemed_confirmed" => Entry::LessonDeemedConfirmed(typed(v)?),
        "dispute_resolved" => Entry::DisputeResolved(typed(v)?),
        other => return Err(RuleError::UnknownKind { kind: other.into() }),
    })
}

fn typed<T: DeserializeOwned>(v: serde_json::Value) -> Result<T, RuleError> {
    serde_json::from_value(v).map_err(|e| RuleError::MalformedPayload {
        detail: e.to_string(),
    })
}

/// Echo at most 64 bytes of untrusted text in an error.
fn truncate(s: &str) -> String {
    let mut end = s.len().min(64);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(p: &str) -> &'static str {
        parse(p.as_bytes())
            .map(|_| "ok")
            .unwrap_or_else(|e| e.code())
    }

    #[test]
    fn parser_names_each_shape_error() {
        assert_eq!(
            code(r#"{"kind":"lesson_confirmed","id":"e","ledger":"x","lesson":"l"}"#),
            "ok"
        );
        assert_eq!(
            code(r#"{"kind":"lesson_confirmed","id":"e","ledger":"x","lesson":"l","x":1}"#),
            "unknown_field"
        );
        assert_eq!(
            code(r#"{"kind":"lesson_confirmed","id":"e"}"#),
            "missing_field"
        );
        assert_eq!(
            code(r#"{"kind":"lesson_confirmed","id":"e","ledger":"x","lesson":"l","lesson":"m"}"#),
            "duplicate_field"
        );
        assert_eq!(code(r#"{"kind":"lesson_eaten","id":"e"}"#), "unknown_kind");
        assert_eq!(code(r#"{"id":"e"}"#), "missing_field");
        assert_eq!(
            code(r#"{"kind":"lesson_confirmed","id":"e","ledger":"x","lesson":7}"#),
            "malformed_payload"
        );
        assert_eq!(
            code(r#"{"kind":"lesson_confirmed","id":"e","ledger":"x","lesson":"l"} x"#),
            "malformed_payload"
        );
        assert_eq!(code(r#"["kind"]"#), "malformed_payload");
        assert_eq!(code(r#"{"kind":1}"#), "malformed_payload");
        let big = format!(
            r#"{{"kind":"lesson_confirmed","id":"e","ledger":"x","lesson":"{}"}}"#,
            "a".repeat(20_000)
        );
        assert_eq!(code(&big), "payload_too_large");
    }

    #[test]
    fn kinds_table_matches_the_enum() {
        assert_eq!(KINDS.len(), 25);
        for (name, fields) in KINDS {
            assert!(fields.iter().any(|(f, r)| *f == "id" && *r), "{name}");
        }
    }

    #[test]
    fn genesis_window_defaults_to_15_days() {
        let e = parse(
            br#"{"kind":"genesis","id":"g","ledger":"o","origin":"o","associations":[],"operator":"op","operator_key":"k",
                 "allocation_validity_days":90,"unit":"CNY-fen","districts":[],"subjects":[]}"#,
        )
        .unwrap();
        let Entry::Genesis(g) = e else {
            panic!("not genesis")
        };
        assert_eq!(g.confirmation_window_days, 15);
    }
}

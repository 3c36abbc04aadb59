//! The payload parser: bytes to a typed [`Entry`], each shape error with its own code.
//!
//! A payload that is well formed is read in one pass (issue 15: the JSON tree and then
//! the typed entry cost the writer twice): its top level split into borrowed raw
//! fields, the checks below, each field deserialized from its own bytes. Anything else
//! takes the exact path below, which builds the tree and names the first error in this
//! order, so the codes and words of errors do not depend on the fast path.
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

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

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
    if let Some(entry) = parse_one_pass(payload) {
        return Ok(entry);
    }
    // The exact path, for a payload the one pass did not take: it names the error.
    let fields = unique_fields(payload)?;
    let (kind_name, spec, map) = known_kind(fields)?;
    check_fields(kind_name, spec, &map)?;
    // 5. Types.
    entry_from(kind_name, serde_json::Value::Object(map)).map_err(|e| RuleError::MalformedPayload {
        detail: e.to_string(),
    })
}

/// 2. Syntax, an object, no field twice.
fn unique_fields(payload: &[u8]) -> Result<UniqueFields, RuleError> {
    serde_json::from_slice(payload).map_err(|e| {
        let msg = e.to_string();
        match msg.split_once(DUP_MARK) {
            Some((_, rest)) => {
                let field = rest.split(" at line").next().unwrap_or(rest).to_owned();
                RuleError::DuplicateField { field }
            }
            None => RuleError::MalformedPayload { detail: msg },
        }
    })
}

/// The fields a kind may have: each name, and whether it is required.
type KindSpec = [(&'static str, bool)];

/// 3. A known kind: its name and fields, and the payload's other fields.
fn known_kind(
    fields: UniqueFields,
) -> Result<
    (
        &'static str,
        &'static KindSpec,
        serde_json::Map<String, serde_json::Value>,
    ),
    RuleError,
> {
    let mut map = serde_json::Map::new();
    let mut kind: Option<String> = None;
    for (k, v) in fields.0 {
        if k != "kind" {
            map.insert(k, v);
            continue;
        }
        let serde_json::Value::String(s) = v else {
            return Err(RuleError::MalformedPayload {
                detail: "kind must be a string".into(),
            });
        };
        kind = Some(s);
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
    Ok((kind_name, spec, map))
}

/// 4. Fields of this kind only, the required ones present.
fn check_fields(
    kind_name: &str,
    spec: &KindSpec,
    map: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), RuleError> {
    for k in map.keys() {
        if !spec.iter().any(|(name, _)| name == k) {
            return Err(RuleError::UnknownField {
                kind: kind_name.into(),
                field: truncate(k),
            });
        }
    }
    for (name, required) in spec.iter() {
        if *required && !map.contains_key(*name) {
            return Err(RuleError::MissingField {
                kind: kind_name.into(),
                field: (*name).into(),
            });
        }
    }
    Ok(())
}

/// The typed entry of a kind from [`KINDS`], read from any deserializer of its fields
/// (the tree of the exact path, or the raw bytes of the one-pass path).
fn entry_from<'de, D: Deserializer<'de>>(kind: &str, d: D) -> Result<Entry, D::Error> {
    use serde::de::Error;
    Ok(match kind {
        "genesis" => Entry::Genesis(Deserialize::deserialize(d)?),
        "party_registered" => Entry::PartyRegistered(Deserialize::deserialize(d)?),
        "key_rotated" => Entry::KeyRotated(Deserialize::deserialize(d)?),
        "key_revoked" => Entry::KeyRevoked(Deserialize::deserialize(d)?),
        "key_recovered" => Entry::KeyRecovered(Deserialize::deserialize(d)?),
        "institution_closed" => Entry::InstitutionClosed(Deserialize::deserialize(d)?),
        "institution_whitelisted" => Entry::InstitutionWhitelisted(Deserialize::deserialize(d)?),
        "institution_blacklisted" => Entry::InstitutionBlacklisted(Deserialize::deserialize(d)?),
        "claim_recorded" => Entry::ClaimRecorded(Deserialize::deserialize(d)?),
        "claim_preferences_set" => Entry::ClaimPreferencesSet(Deserialize::deserialize(d)?),
        "pledge_offered" => Entry::PledgeOffered(Deserialize::deserialize(d)?),
        "pledge_approved" => Entry::PledgeApproved(Deserialize::deserialize(d)?),
        "pledge_withdrawn" => Entry::PledgeWithdrawn(Deserialize::deserialize(d)?),
        "allocation_made" => Entry::AllocationMade(Deserialize::deserialize(d)?),
        "match_run" => Entry::MatchRun(Deserialize::deserialize(d)?),
        "match_run_closed" => Entry::MatchRunClosed(Deserialize::deserialize(d)?),
        "time_attested" => Entry::TimeAttested(Deserialize::deserialize(d)?),
        "allocation_expired" => Entry::AllocationExpired(Deserialize::deserialize(d)?),
        "allocation_declined" => Entry::AllocationDeclined(Deserialize::deserialize(d)?),
        "lesson_consumed" => Entry::LessonConsumed(Deserialize::deserialize(d)?),
        "lesson_proposed" => Entry::LessonProposed(Deserialize::deserialize(d)?),
        "lesson_confirmed" => Entry::LessonConfirmed(Deserialize::deserialize(d)?),
        "lesson_disputed" => Entry::LessonDisputed(Deserialize::deserialize(d)?),
        "lesson_deemed_confirmed" => Entry::LessonDeemedConfirmed(Deserialize::deserialize(d)?),
        "dispute_resolved" => Entry::DisputeResolved(Deserialize::deserialize(d)?),
        other => return Err(D::Error::custom(format!("kind {other} is not in KINDS"))),
    })
}

/// A JSON object's fields as borrowed raw values, in order, refusing a field twice: the
/// one pass of [`parse_one_pass`] (no tree is built; a key with escapes fails to borrow,
/// and such a payload takes the exact path).
struct RawFields<'a>(Vec<(&'a str, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for RawFields<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = RawFields<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawFields<'a>, A::Error> {
                let mut out: Vec<(&'a str, &'a RawValue)> = Vec::new();
                while let Some((k, v)) = map.next_entry::<&'de str, &'de RawValue>()? {
                    if out.iter().any(|(seen, _)| *seen == k) {
                        return Err(serde::de::Error::custom("duplicate field"));
                    }
                    out.push((k, v));
                }
                Ok(RawFields(out))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// The payload in one pass, for a payload [`parse`] accepts (what nearly every
/// submission is): the top level split into raw fields, the same kind and field checks
/// as the exact path, and each field deserialized straight from its bytes. `None` on
/// anything else; [`parse`] then takes the exact path, which names the error, so every
/// error keeps its code and words. Both paths deserialize the typed entry through
/// [`entry_from`] (`tests` check they agree).
fn parse_one_pass(payload: &[u8]) -> Option<Entry> {
    let fields: RawFields<'_> = serde_json::from_slice(payload).ok()?;
    let kind_raw = fields.0.iter().find(|(k, _)| *k == "kind")?.1;
    let kind: &str = serde_json::from_str(kind_raw.get()).ok()?;
    let (kind_name, spec) = KINDS.iter().find(|(name, _)| *name == kind)?;
    let rest: Vec<(&str, &RawValue)> = fields.0.into_iter().filter(|(k, _)| *k != "kind").collect();
    let known = |k: &str| spec.iter().any(|(name, _)| *name == k);
    if !rest.iter().all(|(k, _)| known(k)) {
        return None;
    }
    let present = |name: &str| rest.iter().any(|(k, _)| *k == name);
    if spec
        .iter()
        .any(|(name, required)| *required && !present(name))
    {
        return None;
    }
    let map = serde::de::value::MapDeserializer::<_, serde_json::Error>::new(rest.into_iter());
    entry_from(kind_name, map).ok()
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
mod tests;

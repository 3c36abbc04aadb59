//! The JSON shape of a DSSE envelope, read by hand.
//!
//! The visitors read the JSON envelope themselves so that unknown, missing and duplicate
//! fields become typed errors (serde's derive would report them only as text, and
//! `serde_json::Value` silently keeps the last of two equal keys). A shape problem is
//! returned as `Checked(Err(..))` after the rest of the input is consumed, so that JSON
//! syntax is still checked to the end.

use std::fmt;

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::{check_signature_count, EnvelopeError, FIELD_NAME_SHOWN_MAX};
use crate::limits::SIGNATURES_PER_ENVELOPE_MAX;

/// The result of reading one JSON value: `Err` for a shape problem we name ourselves.
pub(super) struct Checked<T>(pub(super) Result<T, EnvelopeError>);

pub(super) struct RawEnvelope {
    pub(super) payload_type: String,
    pub(super) payload: String,
    pub(super) signatures: Vec<RawSignature>,
}

pub(super) struct RawSignature {
    pub(super) keyid: String,
    pub(super) sig: String,
}

fn unknown_field(name: &str) -> EnvelopeError {
    let mut end = name.len().min(FIELD_NAME_SHOWN_MAX);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    EnvelopeError::UnknownField {
        field: name[..end].to_owned(),
    }
}

/// Reads the value of a known field, or notes a duplicate and skips it.
fn read_field<'de, A, T>(
    map: &mut A,
    slot: &mut Option<T>,
    field: &'static str,
    problem: &mut Option<EnvelopeError>,
) -> Result<(), A::Error>
where
    A: MapAccess<'de>,
    T: Deserialize<'de>,
{
    if slot.is_some() {
        *problem = Some(EnvelopeError::DuplicateField { field });
        map.next_value::<IgnoredAny>()?;
    } else {
        *slot = Some(map.next_value::<T>()?);
    }
    Ok(())
}

impl<'de> Deserialize<'de> for Checked<RawEnvelope> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(EnvelopeVisitor)
    }
}

struct EnvelopeVisitor;

impl<'de> Visitor<'de> for EnvelopeVisitor {
    type Value = Checked<RawEnvelope>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a DSSE envelope object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut payload_type: Option<String> = None;
        let mut payload: Option<String> = None;
        let mut signatures: Option<Checked<Vec<RawSignature>>> = None;
        let mut problem = None;
        while let Some(key) = map.next_key::<String>()? {
            if problem.is_some() {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            match key.as_str() {
                "payloadType" => {
                    read_field(&mut map, &mut payload_type, "payloadType", &mut problem)?
                }
                "payload" => read_field(&mut map, &mut payload, "payload", &mut problem)?,
                "signatures" => read_field(&mut map, &mut signatures, "signatures", &mut problem)?,
                other => {
                    problem = Some(unknown_field(other));
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        // Problems of the envelope object come first, then those inside the signatures.
        if let Some(problem) = problem {
            return Ok(Checked(Err(problem)));
        }
        let missing = |field| Ok(Checked(Err(EnvelopeError::MissingField { field })));
        let Some(payload_type) = payload_type else {
            return missing("payloadType");
        };
        let Some(payload) = payload else {
            return missing("payload");
        };
        let Some(Checked(signatures)) = signatures else {
            return missing("signatures");
        };
        Ok(Checked(signatures.map(|signatures| RawEnvelope {
            payload_type,
            payload,
            signatures,
        })))
    }
}

impl<'de> Deserialize<'de> for Checked<Vec<RawSignature>> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_seq(SignaturesVisitor)
    }
}

struct SignaturesVisitor;

impl<'de> Visitor<'de> for SignaturesVisitor {
    type Value = Checked<Vec<RawSignature>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of signature objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut signatures = Vec::new();
        let mut problem = None;
        let mut count = 0usize;
        loop {
            // Past the cap, or after a problem, only count and skip: never hold more
            // than the cap allows.
            if count >= SIGNATURES_PER_ENVELOPE_MAX || problem.is_some() {
                match seq.next_element::<IgnoredAny>()? {
                    Some(_) => count = count.saturating_add(1),
                    None => break,
                }
                continue;
            }
            match seq.next_element::<Checked<RawSignature>>()? {
                Some(Checked(Ok(signature))) => signatures.push(signature),
                Some(Checked(Err(e))) => problem = Some(e),
                None => break,
            }
            count = count.saturating_add(1);
        }
        if let Some(problem) = problem {
            return Ok(Checked(Err(problem)));
        }
        if let Err(e) = check_signature_count(count) {
            return Ok(Checked(Err(e)));
        }
        Ok(Checked(Ok(signatures)))
    }
}

impl<'de> Deserialize<'de> for Checked<RawSignature> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(SignatureVisitor)
    }
}

struct SignatureVisitor;

impl<'de> Visitor<'de> for SignatureVisitor {
    type Value = Checked<RawSignature>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a signature object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut keyid: Option<String> = None;
        let mut sig: Option<String> = None;
        let mut problem = None;
        while let Some(key) = map.next_key::<String>()? {
            if problem.is_some() {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            match key.as_str() {
                "keyid" => read_field(&mut map, &mut keyid, "keyid", &mut problem)?,
                "sig" => read_field(&mut map, &mut sig, "sig", &mut problem)?,
                other => {
                    problem = Some(unknown_field(other));
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if let Some(problem) = problem {
            return Ok(Checked(Err(problem)));
        }
        let missing = |field| Ok(Checked(Err(EnvelopeError::MissingField { field })));
        let Some(keyid) = keyid else {
            return missing("keyid");
        };
        let Some(sig) = sig else {
            return missing("sig");
        };
        Ok(Checked(Ok(RawSignature { keyid, sig })))
    }
}

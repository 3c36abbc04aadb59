//! [`EnvelopeError`]: everything that can be wrong with an envelope, each with its
//! stable code.

/// Everything that can be wrong with an envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// Code `envelope_too_large`: envelope is `len` bytes, more than the `max` allowed.
    #[error("envelope is {len} bytes, more than the {max} allowed")]
    TooLarge {
        /// Its size, in bytes.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// Code `malformed_json`: envelope is not a JSON object of the expected shape (`category` error at line `line`, column `column`).
    #[error("envelope is not a JSON object of the expected shape ({category} error at line {line}, column {column})")]
    MalformedJson {
        /// What kind of JSON error (syntax, data, end of input).
        category: &'static str,
        /// The line's number.
        line: usize,
        /// The column, from 1.
        column: usize,
    },
    /// Code `unknown_field`: unknown field `field`.
    #[error("unknown field {field:?}")]
    UnknownField {
        /// The JSON field.
        field: String,
    },
    /// Code `missing_field`: missing field `field`.
    #[error("missing field {field:?}")]
    MissingField {
        /// The JSON field.
        field: &'static str,
    },
    /// Code `duplicate_field`: field `field` appears twice.
    #[error("field {field:?} appears twice")]
    DuplicateField {
        /// The JSON field.
        field: &'static str,
    },
    /// Code `malformed_base64`: field `field` is not standard padded base64.
    #[error("field {field:?} is not standard padded base64")]
    MalformedBase64 {
        /// The JSON field.
        field: &'static str,
    },
    /// Code `payload_type_invalid`: invalid payloadType: `reason`.
    #[error("invalid payloadType: {reason}")]
    PayloadTypeInvalid {
        /// What exactly is wrong, in words.
        reason: &'static str,
    },
    /// Code `no_signatures`: envelope has no signatures.
    #[error("envelope has no signatures")]
    NoSignatures,
    /// Code `too_many_signatures`: envelope has `count` signatures, more than the `max` allowed.
    #[error("envelope has {count} signatures, more than the {max} allowed")]
    TooManySignatures {
        /// How many there are.
        count: usize,
        /// The cap.
        max: usize,
    },
    /// Code `duplicate_signature`: key `keyid` signs the envelope more than once.
    #[error("key {keyid} signs the envelope more than once")]
    DuplicateSignature {
        /// The signature's key id, as the envelope states it.
        keyid: String,
    },
    /// Code `malformed_key_id`: malformed keyid: `reason`.
    #[error("malformed keyid: {reason}")]
    MalformedKeyId {
        /// What exactly is wrong, in words.
        reason: &'static str,
    },
    /// Code `unknown_key`: unknown key `keyid`.
    #[error("unknown key {keyid}")]
    UnknownKey {
        /// The signature's key id, as the envelope states it.
        keyid: String,
    },
    /// Code `bad_signature_length`: signature by `keyid` is `len` bytes, not 64.
    #[error("signature by {keyid} is {len} bytes, not 64")]
    BadSignatureLength {
        /// The signature's key id, as the envelope states it.
        keyid: String,
        /// Its size, in bytes.
        len: usize,
    },
    /// Code `bad_signature`: signature by `keyid` does not verify.
    #[error("signature by {keyid} does not verify")]
    BadSignature {
        /// The signature's key id, as the envelope states it.
        keyid: String,
    },
    /// Code `malformed_entry_id`: entry id is not 64 lowercase hex digits.
    #[error("entry id is not 64 lowercase hex digits")]
    MalformedEntryId,
}

impl EnvelopeError {
    /// A stable snake_case code for this error, for logs and API responses.
    pub fn code(&self) -> &'static str {
        match self {
            EnvelopeError::TooLarge { .. } => "envelope_too_large",
            EnvelopeError::MalformedJson { .. } => "malformed_json",
            EnvelopeError::UnknownField { .. } => "unknown_field",
            EnvelopeError::MissingField { .. } => "missing_field",
            EnvelopeError::DuplicateField { .. } => "duplicate_field",
            EnvelopeError::MalformedBase64 { .. } => "malformed_base64",
            EnvelopeError::PayloadTypeInvalid { .. } => "payload_type_invalid",
            EnvelopeError::NoSignatures => "no_signatures",
            EnvelopeError::TooManySignatures { .. } => "too_many_signatures",
            EnvelopeError::DuplicateSignature { .. } => "duplicate_signature",
            EnvelopeError::MalformedKeyId { .. } => "malformed_key_id",
            EnvelopeError::UnknownKey { .. } => "unknown_key",
            EnvelopeError::BadSignatureLength { .. } => "bad_signature_length",
            EnvelopeError::BadSignature { .. } => "bad_signature",
            EnvelopeError::MalformedEntryId => "malformed_entry_id",
        }
    }
}

//! Validated value types of the rules: money ([`Fen`]), lesson counts ([`Lessons`]),
//! pseudonymous ids ([`Id`]), verifier keys ([`KeyRef`]), and the free-text checks.
//!
//! Invariants held by the types, checked once by their constructors:
//! - `Fen` and `Lessons` are unsigned integers whose arithmetic is checked only: an
//!   overflow or a result below zero is a [`RuleError`], never a wrap or a panic.
//! - `Id` matches `^[a-z0-9][a-z0-9._-]{0,63}$` and does not look like personal data
//!   (an 11-digit mainland mobile number or an 18-character resident ID number).
//! - `KeyRef` is a C2SP signed-note verifier key `name+hex(keyid)+base64(0x01||pk)` whose
//!   key id is `SHA-256(name || 0x0A || 0x01 || pk)[0..4]`
//!   (<https://github.com/C2SP/C2SP/blob/main/signed-note.md>).
//!
//! ```
//! use lesson_ledger::ledger::{Fen, Id};
//! assert_eq!(Fen(300).checked_mul(4, "value").unwrap(), Fen(1200));
//! assert!(Id::new("claim", "c-0001").is_ok());
//! assert_eq!(Id::new("claim", "Zhang San").unwrap_err().code(), "invalid_id");
//! assert_eq!(Id::new("student", "13812345678").unwrap_err().code(), "personal_data_suspected");
//! ```

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use super::error::RuleError;
use super::limits::{ID_BYTES_MAX, KEY_BYTES_MAX, REASON_BYTES_MAX};

/// An amount of money in fen (1 yuan = 100 fen). Never negative, arithmetic checked.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Fen(pub u64);

/// A count of lessons. Never negative, arithmetic checked.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Lessons(pub u64);

macro_rules! checked_ops {
    ($t:ident) => {
        impl $t {
            /// `self + rhs`.
            ///
            /// # Errors
            /// [`RuleError::Overflow`] naming `what`.
            pub fn checked_add(self, rhs: Self, what: &'static str) -> Result<Self, RuleError> {
                self.0
                    .checked_add(rhs.0)
                    .map($t)
                    .ok_or(RuleError::Overflow { what })
            }
            /// `self - rhs`.
            ///
            /// # Errors
            /// [`RuleError::Underflow`] naming `what` if the result would be below zero.
            pub fn checked_sub(self, rhs: Self, what: &'static str) -> Result<Self, RuleError> {
                self.0
                    .checked_sub(rhs.0)
                    .map($t)
                    .ok_or(RuleError::Underflow { what })
            }
            /// `self * n`.
            ///
            /// # Errors
            /// [`RuleError::Overflow`] naming `what`.
            pub fn checked_mul(self, n: u64, what: &'static str) -> Result<Self, RuleError> {
                self.0
                    .checked_mul(n)
                    .map($t)
                    .ok_or(RuleError::Overflow { what })
            }
        }
    };
}
checked_ops!(Fen);
checked_ops!(Lessons);

/// A pseudonymous id or party ref: `^[a-z0-9][a-z0-9._-]{0,63}$`, not personal data.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Id(String);

impl Id {
    /// Validate `value` as the id held in `field`.
    ///
    /// # Errors
    /// `field_too_long`, `invalid_id`, or `personal_data_suspected`.
    pub fn new(field: &'static str, value: &str) -> Result<Id, RuleError> {
        if value.len() > ID_BYTES_MAX {
            return Err(RuleError::FieldTooLong {
                field,
                bytes: value.len(),
                max: ID_BYTES_MAX,
            });
        }
        let bytes = value.as_bytes();
        let first_ok = bytes
            .first()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        let rest_ok = bytes.iter().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        });
        if !first_ok || !rest_ok {
            return Err(RuleError::InvalidId { field });
        }
        check_personal_data(field, value)?;
        Ok(Id(value.to_owned()))
    }

    /// The id as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Validate a list of ids: at most `max` items, each valid, none twice.
///
/// # Errors
/// `too_many_items`, `duplicate_item`, or any error of [`Id::new`].
pub fn id_list(field: &'static str, values: &[String], max: usize) -> Result<Vec<Id>, RuleError> {
    if values.len() > max {
        return Err(RuleError::TooManyItems {
            field,
            items: values.len(),
            max,
        });
    }
    let mut out: Vec<Id> = Vec::with_capacity(values.len());
    for v in values {
        let id = Id::new(field, v)?;
        if out.contains(&id) {
            return Err(RuleError::DuplicateItem {
                field,
                value: v.clone(),
            });
        }
        out.push(id);
    }
    Ok(out)
}

/// Refuse text that looks like personal data: an 11-digit mobile number `1[3-9]\d{9}`,
/// an 18-character resident ID number `\d{17}[\dXx]`, or an e-mail address. The patterns
/// are searched anywhere in the text (unanchored), so they are deliberately conservative.
///
/// # Errors
/// `personal_data_suspected`, naming what was seen.
pub fn check_personal_data(field: &'static str, text: &str) -> Result<(), RuleError> {
    let b = text.as_bytes();
    // `\d{17}[\dXx]` anywhere.
    for w in b.windows(18) {
        if w[..17].iter().all(u8::is_ascii_digit)
            && (w[17].is_ascii_digit() || w[17] == b'X' || w[17] == b'x')
        {
            return Err(RuleError::PersonalDataSuspected {
                field,
                what: "resident id number",
            });
        }
    }
    // `1[3-9]\d{9}` anywhere.
    for w in b.windows(11) {
        if w[0] == b'1' && (b'3'..=b'9').contains(&w[1]) && w[2..].iter().all(u8::is_ascii_digit) {
            return Err(RuleError::PersonalDataSuspected {
                field,
                what: "mobile number",
            });
        }
    }
    // An e-mail address: `local@domain.tld` inside one whitespace-separated word.
    for word in text.split_whitespace() {
        if let Some((local, domain)) = word.split_once('@') {
            let dot = domain.find('.');
            if !local.is_empty() && dot.is_some_and(|i| i > 0 && i + 1 < domain.len()) {
                return Err(RuleError::PersonalDataSuspected {
                    field,
                    what: "e-mail address",
                });
            }
        }
    }
    Ok(())
}

/// Validate free text (a `reason`): 1..=`REASON_BYTES_MAX` bytes, no control characters,
/// no personal data.
///
/// # Errors
/// `field_too_long`, `invalid_text`, or `personal_data_suspected`.
pub fn reason(field: &'static str, text: &str) -> Result<String, RuleError> {
    if text.len() > REASON_BYTES_MAX {
        return Err(RuleError::FieldTooLong {
            field,
            bytes: text.len(),
            max: REASON_BYTES_MAX,
        });
    }
    if text.trim().is_empty() || text.chars().any(char::is_control) {
        return Err(RuleError::InvalidText { field });
    }
    check_personal_data(field, text)?;
    Ok(text.to_owned())
}

/// A C2SP signed-note Ed25519 verifier key, `name+hex(keyid)+base64(0x01||pk)`, whose key
/// id is consistent with its name and public key. It is what the log layer passes as a
/// signer's keyid.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KeyRef(String);

impl KeyRef {
    /// Validate `value` as a verifier key held in `field`.
    ///
    /// # Errors
    /// `field_too_long` or `key_invalid`.
    pub fn new(field: &'static str, value: &str) -> Result<KeyRef, RuleError> {
        if value.len() > KEY_BYTES_MAX {
            return Err(RuleError::FieldTooLong {
                field,
                bytes: value.len(),
                max: KEY_BYTES_MAX,
            });
        }
        let bad = || RuleError::KeyInvalid { field };
        // The name holds no '+', the key id is hex; base64 may itself contain '+'.
        let mut parts = value.splitn(3, '+');
        let (Some(name), Some(id_hex), Some(b64)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad());
        }
        check_personal_data(field, name)?;
        let key = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| bad())?;
        // Ed25519: algorithm byte 0x01 then the 32-byte public key.
        if key.len() != 33 || key[0] != 0x01 {
            return Err(bad());
        }
        let mut h = sha2::Sha256::new();
        h.update(name.as_bytes());
        h.update([0x0A]);
        h.update(&key);
        let expected = hex(&h.finalize()[..4]);
        if id_hex != expected {
            return Err(bad());
        }
        Ok(KeyRef(value.to_owned()))
    }

    /// The key as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for KeyRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Lowercase hex of `bytes`.
#[must_use]
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

/// Whether `value` is a 32-byte digest in lowercase hex (64 characters).
#[must_use]
pub fn is_digest_hex(value: &str) -> bool {
    value.len() == 64
        && value
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Validate a BLAKE3 evidence digest: exactly 64 lowercase hex characters.
///
/// # Errors
/// `evidence_digest_invalid`.
pub fn evidence_digest(value: &str) -> Result<String, RuleError> {
    if is_digest_hex(value) {
        Ok(value.to_owned())
    } else {
        Err(RuleError::EvidenceDigestInvalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_the_pattern() {
        for ok in [
            "a",
            "0",
            "stu-3f9a",
            "inst-0007",
            "c.1_2-3",
            &"a".repeat(64),
        ] {
            assert!(Id::new("id", ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", ".a", "A", "a b", "张三", "a/b", "a+b"] {
            assert_eq!(
                Id::new("id", bad).unwrap_err().code(),
                "invalid_id",
                "{bad:?}"
            );
        }
        assert_eq!(
            Id::new("id", &"a".repeat(65)).unwrap_err().code(),
            "field_too_long"
        );
    }

    #[test]
    fn personal_data_is_refused() {
        let pd = |s: &str| check_personal_data("reason", s).map_err(|e| e.code());
        assert_eq!(pd("call 13912345678 now"), Err("personal_data_suspected"));
        assert_eq!(pd("id 11010519491231002X"), Err("personal_data_suspected"));
        assert_eq!(pd("id 110105194912310021"), Err("personal_data_suspected"));
        assert_eq!(pd("mail a.b@example.com"), Err("personal_data_suspected"));
        assert_eq!(pd("12345678901 is not a mobile"), Ok(()));
        assert_eq!(pd("institution stopped trading"), Ok(()));
        assert_eq!(pd("at @ noon."), Ok(()));
        assert_eq!(
            Id::new("id", "110105194912310021").unwrap_err().code(),
            "personal_data_suspected"
        );
    }

    #[test]
    fn reasons_are_bounded_text() {
        assert!(reason("reason", "机构停业").is_ok());
        assert_eq!(reason("reason", "").unwrap_err().code(), "invalid_text");
        assert_eq!(reason("reason", "a\nb").unwrap_err().code(), "invalid_text");
        assert_eq!(
            reason("reason", &"x".repeat(513)).unwrap_err().code(),
            "field_too_long"
        );
    }

    #[test]
    fn arithmetic_is_checked() {
        assert_eq!(
            Fen(u64::MAX).checked_add(Fen(1), "x").unwrap_err().code(),
            "overflow"
        );
        assert_eq!(
            Lessons(0).checked_sub(Lessons(1), "x").unwrap_err().code(),
            "underflow"
        );
        assert_eq!(
            Fen(u64::MAX).checked_mul(2, "x").unwrap_err().code(),
            "overflow"
        );
        assert_eq!(Lessons(3).checked_sub(Lessons(1), "x"), Ok(Lessons(2)));
    }

    #[test]
    fn evidence_digest_is_64_lower_hex() {
        assert!(evidence_digest(&"ab".repeat(32)).is_ok());
        assert!(evidence_digest(&"AB".repeat(32)).is_err());
        assert!(evidence_digest(&"ab".repeat(31)).is_err());
    }

    #[test]
    fn key_refs_check_their_key_id() {
        let pk = [7u8; 32];
        let mut raw = vec![1u8];
        raw.extend_from_slice(&pk);
        let mut h = sha2::Sha256::new();
        h.update(b"operator\n");
        h.update(&raw);
        let id = hex(&h.finalize()[..4]);
        let b64 = base64::engine::general_purpose::STANDARD.encode(&raw);
        let good = format!("operator+{id}+{b64}");
        assert!(KeyRef::new("key", &good).is_ok());
        let wrong_id = format!("operator+00000000+{b64}");
        assert_eq!(
            KeyRef::new("key", &wrong_id).unwrap_err().code(),
            "key_invalid"
        );
        let renamed = format!("operatos+{id}+{b64}");
        assert_eq!(
            KeyRef::new("key", &renamed).unwrap_err().code(),
            "key_invalid"
        );
        assert_eq!(
            KeyRef::new("key", "nope").unwrap_err().code(),
            "key_invalid"
        );
    }
}

//! Serde for [`super::EntryRecord`], in two forms.
//!
//! - **Served** (JSON, and the canonical JSON that the state map hashes: every
//!   human-readable format): every field as written, as before.
//! - **Stored** (postcard, in the state's tables and in sled): without what it repeats.
//!   The `key` is `<author>/<id>`, so it is left out; the payload digest is kept as its
//!   32 bytes, not 64 hex characters. One record stays for every logged entry, so this
//!   is about 60 bytes an entry of `serve`'s memory (issue 15's footprint). A record
//!   whose key or digest is not of that shape (none that the rules write) is stored with
//!   them as they are, so every record reads back equal.
//!
//! Which form is chosen by `is_human_readable`, serde's switch for exactly this
//! (JSON says yes, postcard no).

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::EntryRecord;
use crate::ledger::units::{hex, Id};

/// The served form, borrowed to write it.
#[derive(Serialize)]
struct ServedRef<'a> {
    key: &'a str,
    author: &'a Id,
    id: &'a Id,
    index: u64,
    kind: &'a str,
    payload_digest: &'a str,
}

/// The served form, read.
#[derive(Deserialize)]
struct Served {
    key: String,
    author: Id,
    id: Id,
    index: u64,
    kind: String,
    payload_digest: String,
}

/// The stored form, borrowed to write it.
#[derive(Serialize)]
struct StoredRef<'a> {
    author: &'a Id,
    id: &'a Id,
    index: u64,
    kind: &'a str,
    digest: Digest<&'a str>,
    /// `None` when it is `<author>/<id>`.
    key: Option<&'a str>,
}

/// The stored form, read.
#[derive(Deserialize)]
struct Stored {
    author: Id,
    id: Id,
    index: u64,
    kind: String,
    digest: Digest<String>,
    key: Option<String>,
}

/// A payload digest: its bytes when it is 64 lowercase hex digits, else its text.
#[derive(Serialize, Deserialize)]
enum Digest<T> {
    Bytes([u8; 32]),
    Text(T),
}

/// The 32 bytes that `text` is the lowercase hex of (as [`hex`] writes it), if it is.
fn lowercase_hex_32(text: &str) -> Option<[u8; 32]> {
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let digits = text.as_bytes();
    if digits.len() != 64 {
        return None;
    }
    let mut bytes = [0u8; 32];
    for (byte, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(bytes)
}

/// Whether `key` is `<author>/<id>`.
fn is_joined(key: &str, author: &Id, id: &Id) -> bool {
    key.strip_prefix(author.as_str())
        .and_then(|rest| rest.strip_prefix('/'))
        == Some(id.as_str())
}

impl Serialize for EntryRecord {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            return ServedRef {
                key: &self.key,
                author: &self.author,
                id: &self.id,
                index: self.index,
                kind: &self.kind,
                payload_digest: &self.payload_digest,
            }
            .serialize(s);
        }
        StoredRef {
            author: &self.author,
            id: &self.id,
            index: self.index,
            kind: &self.kind,
            digest: lowercase_hex_32(&self.payload_digest)
                .map_or(Digest::Text(self.payload_digest.as_str()), Digest::Bytes),
            key: (!is_joined(&self.key, &self.author, &self.id)).then_some(self.key.as_str()),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for EntryRecord {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let r = Served::deserialize(d)?;
            return Ok(EntryRecord {
                key: r.key,
                author: r.author,
                id: r.id,
                index: r.index,
                kind: r.kind,
                payload_digest: r.payload_digest,
            });
        }
        let r = Stored::deserialize(d)?;
        Ok(EntryRecord {
            key: r.key.unwrap_or_else(|| format!("{}/{}", r.author, r.id)),
            author: r.author,
            id: r.id,
            index: r.index,
            kind: r.kind,
            payload_digest: match r.digest {
                Digest::Bytes(bytes) => hex(&bytes),
                Digest::Text(text) => text,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(key: &str, digest: &str) -> EntryRecord {
        EntryRecord {
            key: key.into(),
            author: Id::new("author", "stu-7").unwrap(),
            id: Id::new("id", "lesson-3").unwrap(),
            index: 41,
            kind: "lesson_confirmed".into(),
            payload_digest: digest.into(),
        }
    }

    #[test]
    fn the_served_form_is_every_field_as_written() {
        let r = record("stu-7/lesson-3", &"ab".repeat(32));
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "key": "stu-7/lesson-3", "author": "stu-7", "id": "lesson-3", "index": 41,
                "kind": "lesson_confirmed", "payload_digest": "ab".repeat(32),
            })
        );
        assert_eq!(serde_json::from_value::<EntryRecord>(json).unwrap(), r);
    }

    #[test]
    fn the_stored_form_leaves_out_the_key_and_the_hex_and_reads_back_equal() {
        let usual = record("stu-7/lesson-3", &"0f".repeat(32));
        let stored = postcard::to_allocvec(&usual).unwrap();
        let served = serde_json::to_vec(&usual).unwrap();
        assert!(stored.len() < 70, "{} bytes stored", stored.len());
        assert!(served.len() > 150, "{} bytes served", served.len());
        // Shapes the rules never write are kept as they are.
        let unusual = [
            usual.clone(),
            record("stu-7/lesson-4", &"0f".repeat(32)),
            record("stu-7lesson-3", &"0f".repeat(32)),
            record("stu-7/lesson-3", &"0F".repeat(32)),
            record("stu-7/lesson-3", &"0f".repeat(31)),
            record("stu-7/lesson-3", &format!("{}zz", "0f".repeat(31))),
            record("", ""),
        ];
        for r in unusual {
            let bytes = postcard::to_allocvec(&r).unwrap();
            assert_eq!(postcard::from_bytes::<EntryRecord>(&bytes).unwrap(), r);
        }
    }
}

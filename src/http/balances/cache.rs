//! What makes a repeated balance read cheap: each entry's served JSON, made once
//! ([`EntryCache`]), and each whole answer, made once per state size ([`AnswerCache`]).
//!
//! An answer's bytes are a function of the state of one size — its objects, their state
//! proofs, the state note, the entries and their inclusion proofs — except the
//! checkpoint's cosignature lines, which may arrive after the answer is made (the same
//! checkpoint, more lines). So an answer is kept as [`PagedAnswer`]: its JSON before the
//! checkpoint's value and after it, and the checkpoint is written anew into every copy
//! served. Invariant: the cache holds answers of one size only, and gives one out only
//! to a reader of that size ([`AnswerCache::get`]); a reader of another size empties it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::super::entries::{entry_view, EntryView};
use super::super::error::ApiError;
use crate::api::balances::BalanceAnswer;
use crate::ledger::writer::Ledger;
use crate::log::hash::Hash;

/// Most entries [`EntryCache`] holds (about a kilobyte each: the entry's served JSON),
/// so at most some 16 MiB.
pub const ENTRY_CACHE_ENTRIES_MAX: usize = 16_384;

/// Most bytes of answers [`AnswerCache`] holds (a student's answer is some 6 KB, a full
/// page of entries some 150 KB).
pub const ANSWER_CACHE_BYTES_MAX: usize = 64 << 20;

/// An entry's served JSON ([`EntryView`]), made once: an entry never changes once it is
/// in the log. Invariant (checked by `ServedEntry::new`): one JSON object, `{…}`.
#[derive(Debug)]
pub struct ServedEntry {
    /// `{"index":…,"time_micros":…,"entry_id":…,"leaf_hash":…,"envelope":{…}}`.
    json: Box<[u8]>,
}

impl ServedEntry {
    fn new(view: &EntryView) -> Result<ServedEntry, ApiError> {
        let json = serde_json::to_vec(view).map_err(ApiError::internal)?;
        // A struct serializes to one object; checked here so that `write_proven` can
        // open it without a case for anything else.
        if json.first() != Some(&b'{') || json.last() != Some(&b'}') {
            return Err(ApiError::internal(
                "an entry did not serialize to a JSON object",
            ));
        }
        Ok(ServedEntry {
            json: json.into_boxed_slice(),
        })
    }

    /// The entry's JSON, as `GET /v1/entries/{index}` serves it.
    pub fn json(&self) -> &[u8] {
        &self.json
    }

    /// Writes this entry as a [`crate::api::ProvenEntry`]: its object with
    /// `inclusion_proof` added.
    fn write_proven(&self, out: &mut Vec<u8>, proof: &[Hash]) {
        // Everything but the closing brace (the invariant: the last byte is `}`).
        out.extend_from_slice(&self.json[..self.json.len() - 1]);
        out.extend_from_slice(b",\"inclusion_proof\":[");
        for (i, hash) in proof.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_base64_string(out, hash);
        }
        out.extend_from_slice(b"]}");
    }
}

/// Writes `hash` as a JSON string of standard base64. The base64 alphabet (`A–Z a–z
/// 0–9 + / =`) needs no JSON escaping, so this is what `serde_json` would write, without
/// scanning every byte for escapes: that scan was a tenth of a balance's CPU.
fn write_base64_string(out: &mut Vec<u8>, hash: &Hash) {
    use base64::Engine;
    let mut text = [0u8; 44]; // 4 * ceil(32 / 3)
    let written = base64::engine::general_purpose::STANDARD
        .encode_slice(hash.as_bytes(), &mut text)
        .unwrap_or(0); // 44 bytes always fit a 32-byte hash
    out.push(b'"');
    out.extend_from_slice(&text[..written]);
    out.push(b'"');
}

/// Served entries, by index. A balance's entries are read again on every request for
/// it, and reading one costs a record read, its checksum, decoding the leaf and the
/// envelope, re-encoding the envelope, hashing it for its id and serializing it all.
#[derive(Debug, Default)]
pub struct EntryCache {
    entries: Mutex<HashMap<u64, Arc<ServedEntry>>>,
}

impl EntryCache {
    /// Entry `index` served, from the cache or read and cached.
    ///
    /// # Errors
    /// As [`entry_view`].
    pub fn get(&self, ledger: &Ledger, index: u64) -> Result<Arc<ServedEntry>, ApiError> {
        if let Some(entry) = lock(&self.entries).get(&index) {
            return Ok(Arc::clone(entry));
        }
        // Read outside the mutex: two readers may both read it; either copy is right.
        let entry = Arc::new(ServedEntry::new(&entry_view(ledger, index)?)?);
        let mut entries = lock(&self.entries);
        if entries.len() >= ENTRY_CACHE_ENTRIES_MAX {
            // Evict an arbitrary entry (the map's hashing is randomly seeded): cheap, and
            // fair enough for balances that are read at random.
            if let Some(&old) = entries.keys().next() {
                entries.remove(&old);
            }
        }
        entries.insert(index, Arc::clone(&entry));
        Ok(entry)
    }
}

/// Nothing is left half-done under these locks: a panic elsewhere cannot poison them
/// into a wrong state.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// A page of proven entries: each served entry with its inclusion proof.
pub type ProvenPage = Vec<(Arc<ServedEntry>, Vec<Hash>)>;

/// A paged answer's JSON around its checkpoint's value: `head` is
/// `{…objects…,"state_note":"…","checkpoint":` and `tail` is
/// `,"entries":[…],"next":…}`.
#[derive(Debug)]
pub struct PagedAnswer {
    head: Box<[u8]>,
    tail: Box<[u8]>,
}

impl PagedAnswer {
    /// `answer` (its `entries` empty, its `next` set) serialized from its type, with the
    /// page's entries spliced into its `entries` from their cached JSON. The answer's
    /// last three fields are `checkpoint`, `entries` and `next` ([`crate::api`]'s
    /// declaration order), so its JSON ends with `"checkpoint":…,"entries":[],"next":…}`;
    /// that is checked, and anything else is an internal fault rather than a wrong answer.
    ///
    /// # Errors
    /// Internal faults.
    pub fn new<A: BalanceAnswer>(answer: &A, entries: &ProvenPage) -> Result<Self, ApiError> {
        let json = serde_json::to_vec(answer).map_err(ApiError::internal)?;
        let checkpoint = serde_json::to_string(answer.checkpoint()).map_err(ApiError::internal)?;
        let next = serde_json::to_string(&answer.next()).map_err(ApiError::internal)?;
        let suffix = format!("{checkpoint},\"entries\":[],\"next\":{next}}}");
        let head = json
            .strip_suffix(suffix.as_bytes())
            .filter(|head| head.ends_with(b",\"checkpoint\":"))
            .ok_or_else(|| {
                ApiError::internal(
                    "a balance answer does not end with its checkpoint, entries and next",
                )
            })?;
        // Sized up front: growing the buffer by doubling copied a page several times over.
        let capacity = 32
            + entries
                .iter()
                .map(|(entry, proof)| entry.json.len() + 48 * proof.len() + 32)
                .sum::<usize>();
        let mut tail = Vec::with_capacity(capacity);
        tail.extend_from_slice(b",\"entries\":[");
        for (i, (entry, proof)) in entries.iter().enumerate() {
            if i > 0 {
                tail.push(b',');
            }
            entry.write_proven(&mut tail, proof);
        }
        tail.extend_from_slice(b"],\"next\":");
        tail.extend_from_slice(next.as_bytes());
        tail.push(b'}');
        Ok(PagedAnswer {
            head: head.into(),
            tail: tail.into(),
        })
    }

    /// The answer's JSON with `checkpoint` (the signed note text) as its checkpoint.
    ///
    /// # Errors
    /// Internal faults.
    pub fn write(&self, checkpoint: &str) -> Result<Vec<u8>, ApiError> {
        // A checkpoint is a few hundred bytes; a quarter more covers its escapes.
        let mut out =
            Vec::with_capacity(self.head.len() + checkpoint.len() * 5 / 4 + 8 + self.tail.len());
        out.extend_from_slice(&self.head);
        serde_json::to_writer(&mut out, checkpoint).map_err(ApiError::internal)?;
        out.extend_from_slice(&self.tail);
        Ok(out)
    }

    fn byte_len(&self) -> usize {
        self.head.len() + self.tail.len()
    }
}

/// Which answer: its kind ([`BalanceAnswer::PATH`]), the id asked for, the page's start.
type AnswerKey = (&'static str, String, u64);

/// Answers made at the current state size, so that repeated reads between two batches
/// cost a lookup and a copy.
#[derive(Debug)]
pub struct AnswerCache {
    answers: Mutex<Answers>,
    /// Most bytes of answers kept (0: none).
    bytes_max: usize,
}

impl Default for AnswerCache {
    fn default() -> Self {
        AnswerCache::new(ANSWER_CACHE_BYTES_MAX)
    }
}

/// The answers of one state size.
#[derive(Debug, Default)]
struct Answers {
    size: u64,
    bytes: usize,
    by_key: HashMap<AnswerKey, Arc<PagedAnswer>>,
}

impl Answers {
    /// Makes these the answers of `size`: emptied if they were of another.
    fn of_size(&mut self, size: u64) -> &mut Answers {
        if self.size != size {
            self.by_key.clear();
            self.bytes = 0;
            self.size = size;
        }
        self
    }
}

impl AnswerCache {
    /// A cache of at most `bytes_max` bytes of answers (0: it keeps none).
    pub fn new(bytes_max: usize) -> AnswerCache {
        AnswerCache {
            answers: Mutex::default(),
            bytes_max,
        }
    }

    /// The answer `key` made at state size `size`, if there is one; answers of another
    /// size are dropped.
    pub fn get(&self, size: u64, key: &AnswerKey) -> Option<Arc<PagedAnswer>> {
        lock(&self.answers).of_size(size).by_key.get(key).cloned()
    }

    /// Keeps `answer`, made at state size `size`, under `key`.
    pub fn insert(&self, size: u64, key: AnswerKey, answer: Arc<PagedAnswer>) {
        let len = answer.byte_len();
        if len > self.bytes_max / 16 {
            return; // one answer never crowds out more than a sixteenth of the rest
        }
        let mut guard = lock(&self.answers);
        let answers = guard.of_size(size);
        while answers.bytes + len > self.bytes_max {
            // An arbitrary victim (the map's hashing is randomly seeded), as in EntryCache.
            let Some(old) = answers.by_key.keys().next().cloned() else {
                break;
            };
            if let Some(gone) = answers.by_key.remove(&old) {
                answers.bytes -= gone.byte_len();
            }
        }
        if let Some(replaced) = answers.by_key.insert(key, answer) {
            answers.bytes -= replaced.byte_len();
        }
        answers.bytes += len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::balances::{ClaimAnswer, Proven, ProvenEntry};
    use crate::ledger::objects::Claim;
    use crate::ledger::state_map::StateProof;
    use crate::log::hash::leaf_hash;
    use serde_json::value::RawValue;

    fn claim_answer(state_note: &str, checkpoint: &str, next: Option<u64>) -> ClaimAnswer {
        let claim: Claim = serde_json::from_value(serde_json::json!({
            "claim": "c-1", "student": "stu-1", "institution": "inst-1", "subject": "math",
            "grade": 3, "district": "xuhui", "accepts_online": true,
            "accepted_districts": [], "evidence_digest": "00", "lessons": 2,
            "price_per_lesson": 5, "value": 10, "unreserved": 10, "reserved": 0,
            "consumed": 0, "allocations": [], "entries": [7]
        }))
        .unwrap();
        ClaimAnswer {
            claim: Proven {
                object: claim,
                proof: StateProof {
                    key: [3; 32],
                    siblings: vec![[4; 32]],
                    leaf: None,
                },
            },
            state_note: state_note.into(),
            checkpoint: checkpoint.into(),
            entries: Vec::new(),
            next,
        }
    }

    #[test]
    fn a_written_page_is_what_serde_writes_for_the_same_fields() {
        let view = EntryView {
            index: 7,
            time_micros: 1_700_000_000_000_123,
            entry_id: "ab".repeat(32),
            leaf_hash: leaf_hash(b"7").to_base64(),
            envelope: RawValue::from_string(
                r#"{"payload":"e30=","payloadType":"x","signatures":[]}"#.into(),
            )
            .unwrap(),
        };
        // Every byte value, so that hashes whose base64 holds `+` and `/` are covered.
        let proof: Vec<Hash> = (0..=255u8).map(|b| Hash([b; 32])).collect();
        let served = Arc::new(ServedEntry::new(&view).unwrap());
        let answer = claim_answer("note\n", "origin\n7\nroot=\n\n\u{2014} op key\n", Some(2));
        let page = vec![(Arc::clone(&served), proof.clone()), (served, vec![])];
        let written = PagedAnswer::new(&answer, &page)
            .unwrap()
            .write(&answer.checkpoint)
            .unwrap();

        let parsed: ClaimAnswer = serde_json::from_slice(&written).unwrap();
        assert_eq!(parsed.claim, answer.claim);
        assert_eq!(
            (&parsed.state_note, &parsed.checkpoint),
            (&answer.state_note, &answer.checkpoint)
        );
        assert_eq!(parsed.entries.len(), 2);
        let entry: &ProvenEntry = &parsed.entries[0];
        assert_eq!(
            (
                entry.index,
                entry.time_micros,
                &entry.entry_id,
                &entry.leaf_hash
            ),
            (
                view.index,
                view.time_micros,
                &view.entry_id,
                &view.leaf_hash
            )
        );
        assert_eq!(entry.envelope.get(), view.envelope.get());
        let expected: Vec<String> = proof.iter().map(Hash::to_base64).collect();
        assert_eq!(entry.inclusion_proof, expected);
        assert!(parsed.entries[1].inclusion_proof.is_empty());
        assert_eq!(parsed.next, Some(2));
    }

    #[test]
    fn a_cached_answer_is_served_with_the_checkpoint_of_the_moment() {
        // Made with an empty checkpoint, as the server makes it; served with the
        // checkpoint and the cosignature lines collected since.
        let made = PagedAnswer::new(&claim_answer("note\n", "", None), &Vec::new()).unwrap();
        let cosigned = "origin\n7\nroot=\n\n\u{2014} op key\n\u{2014} assoc-1 xyz\n";
        let parsed: ClaimAnswer = serde_json::from_slice(&made.write(cosigned).unwrap()).unwrap();
        assert_eq!(parsed.checkpoint, cosigned);
        assert_eq!(parsed.state_note, "note\n");
    }

    #[test]
    fn an_answer_cached_at_one_size_is_never_served_at_another() {
        let cache = AnswerCache::default();
        let key = || ("claims", "c-1".to_owned(), 0);
        let at_5 =
            Arc::new(PagedAnswer::new(&claim_answer("note 5\n", "", None), &Vec::new()).unwrap());
        cache.insert(5, key(), Arc::clone(&at_5));
        assert!(Arc::ptr_eq(&cache.get(5, &key()).unwrap(), &at_5));
        // Another page, another id: other answers.
        assert!(cache.get(5, &("claims", "c-1".to_owned(), 1)).is_none());
        assert!(cache.get(5, &("claims", "c-2".to_owned(), 0)).is_none());
        // A reader of size 6 finds nothing, and the answers of size 5 are gone for good.
        assert!(cache.get(6, &key()).is_none());
        assert!(cache.get(5, &key()).is_none());
        // An answer kept by a reader of size 6 is not one of size 5.
        cache.insert(6, key(), Arc::clone(&at_5));
        assert!(cache.get(5, &key()).is_none());
    }

    #[test]
    fn the_answers_kept_stay_within_their_byte_budget() {
        let cache = AnswerCache::default();
        let answer = Arc::new(
            PagedAnswer::new(&claim_answer(&"n".repeat(60_000), "", None), &Vec::new()).unwrap(),
        );
        let each = answer.byte_len();
        let fits = ANSWER_CACHE_BYTES_MAX / each;
        for i in 0..fits + 100 {
            cache.insert(1, ("claims", format!("c-{i}"), 0), Arc::clone(&answer));
        }
        {
            let answers = lock(&cache.answers);
            assert!(answers.bytes <= ANSWER_CACHE_BYTES_MAX);
            assert_eq!(answers.bytes, answers.by_key.len() * each);
            assert!(answers.by_key.len() >= fits - 1);
        }
        // A cache of no bytes keeps nothing: every answer is made anew.
        let none = AnswerCache::new(0);
        none.insert(1, ("claims", "c-1".to_owned(), 0), answer);
        assert!(none.get(1, &("claims", "c-1".to_owned(), 0)).is_none());
    }
}

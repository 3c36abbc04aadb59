//! The one submission path: `POST /v1/entries` and `lesson-ledger append` both parse,
//! verify, submit and merge through here, so each outcome has one code and one wording.
//!
//! The phases, each a function, in the order a caller runs them:
//! 1. [`verify`]: parsed envelopes (and what the caller decided about each before any
//!    signature is checked, a [`Screen`]) become [`Slot`]s: answered already, or verified
//!    and ready to append. Verification runs in parallel (rayon) for more than one.
//! 2. [`split`]: the envelopes to append, and the [`Pending`] answers.
//! 3. The caller appends them: the CLI holds the [`Ledger`](crate::ledger::writer::Ledger),
//!    the HTTP service queues them to its writer thread.
//! 4. [`Pending::merge`]: the log's outcomes fill the empty slots, in order, each worded
//!    by [`Answer::from_outcome`].
//!
//! | `status` | meaning | [`Family`] |
//! |---|---|---|
//! | `ok` | appended and durable; `receipt` | `Accepted` |
//! | `exists` | the same statement was logged before; its `receipt` | `Accepted` |
//! | `exists_with_different_payload` | another statement uses this entry id | `Conflict` |
//! | a rule code, e.g. `pledge_unknown` | the lesson rules refused it | `Refused` |
//! | an envelope code, e.g. `bad_signature` | refused before the log (shape, signature) | `Envelope` |
//!
//! ```
//! use lesson_ledger::api::submission::{split, verify, Family, Screen};
//! use lesson_ledger::log::envelope::{Envelope, KeyCache};
//!
//! let parsed = vec![Envelope::from_json(b"{not json")];
//! let slots = verify(parsed, vec![Screen::Verify], &KeyCache::self_certifying()).unwrap();
//! let (to_append, pending) = split(slots);
//! assert!(to_append.is_empty());
//! let answers = pending.merge(Vec::new()).unwrap();
//! assert_eq!(answers[0].family, Family::Envelope);
//! assert_eq!(answers[0].result.status, "malformed_json");
//! ```

use serde::{Deserialize, Serialize};

use crate::ledger::error::RuleError;
use crate::log::envelope::{verify_batch, Envelope, EnvelopeError, KeyLookup, VerifiedEnvelope};
use crate::log::store::{Outcome, Receipt};

/// The result of one submitted entry, as the HTTP service answers it and the CLI prints it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct EntryResult {
    /// `ok`, `exists`, `exists_with_different_payload`, or the code of the refusal.
    pub status: String,
    /// For `ok` and `exists`: where the entry is and the proof of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<Receipt>,
    /// For refusals: what went wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// For `exists_with_different_payload`: the entry id already logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub existing_entry_id: Option<String>,
}

/// Which kind of answer a result is (the HTTP status of a single submission follows it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// Appended now or before: a receipt.
    Accepted,
    /// Refused before the log: shape or signature.
    Envelope,
    /// Another statement holds the id.
    Conflict,
    /// The rules refused it.
    Refused,
}

/// A result with its stable code and family, before it is serialized.
#[derive(Clone, Debug)]
pub struct Answer {
    /// The stable code (`result.status`).
    pub code: &'static str,
    /// Which kind of answer.
    pub family: Family,
    /// What is answered.
    pub result: EntryResult,
}

impl Answer {
    /// A refusal with its code and what went wrong.
    pub fn refused(family: Family, code: &'static str, error: String) -> Answer {
        Answer {
            code,
            family,
            result: EntryResult {
                status: code.to_owned(),
                receipt: None,
                error: Some(error),
                existing_entry_id: None,
            },
        }
    }

    /// An envelope refused before the log (it did not parse, or a signature failed).
    pub fn envelope(e: &EnvelopeError) -> Answer {
        Answer::refused(Family::Envelope, e.code(), e.to_string())
    }

    fn accepted(code: &'static str, receipt: Receipt) -> Answer {
        Answer {
            code,
            family: Family::Accepted,
            result: EntryResult {
                status: code.to_owned(),
                receipt: Some(receipt),
                error: None,
                existing_entry_id: None,
            },
        }
    }

    /// The one wording of what the log and the rules made of an appended envelope.
    pub fn from_outcome(outcome: Outcome<RuleError>) -> Answer {
        match outcome {
            Outcome::Ok(receipt) => Answer::accepted("ok", receipt),
            Outcome::Exists(receipt) => Answer::accepted("exists", receipt),
            Outcome::ExistsWithDifferentPayload {
                client_id,
                existing,
            } => {
                let mut a = Answer::refused(
                    Family::Conflict,
                    "exists_with_different_payload",
                    format!(
                        "entry id {:?} is already used by another statement ({existing})",
                        String::from_utf8_lossy(&client_id)
                    ),
                );
                a.result.existing_entry_id = Some(existing.to_string());
                a
            }
            Outcome::Refused(rule) => {
                Answer::refused(Family::Refused, rule.code(), rule.to_string())
            }
        }
    }
}

/// What the caller decided about one envelope before any signature is verified (the
/// HTTP service's cheap admission checks; the CLI verifies everything).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Screen {
    /// Verify its signatures (also said of envelopes that did not parse, which keep
    /// their own error).
    Verify,
    /// Refused without verifying, as an envelope refusal.
    Refuse {
        /// The stable code.
        code: &'static str,
        /// What went wrong.
        detail: String,
    },
    /// The same envelope as the one at this earlier position: share its verdict.
    Repeat {
        /// The earlier position.
        of: usize,
    },
}

/// One slot of a submission: already answered (refused before the log), or to append.
pub enum Slot {
    /// Answered before the log.
    Done(Answer),
    /// Verified: to append.
    Append(VerifiedEnvelope),
}

/// A fault of the path itself (one result per envelope is its invariant), never an
/// answer to the submitter's input.
#[derive(Debug, thiserror::Error)]
pub enum SubmissionError {
    /// Fewer screens than envelopes, or fewer verification results than envelopes sent.
    #[error("internal: {what} ran short")]
    RanShort {
        /// What ran short.
        what: &'static str,
    },
    /// A [`Screen::Repeat`] that does not point to an earlier envelope.
    #[error("internal: envelope {at} repeats envelope {of}, which is not before it")]
    RepeatNotEarlier {
        /// The repeating envelope's position.
        at: usize,
        /// The position it names.
        of: usize,
    },
    /// The log answered a different number of outcomes than envelopes appended.
    #[error("internal: {appended} entries appended, {outcomes} outcomes")]
    OutcomesMiscounted {
        /// Envelopes handed to the log.
        appended: usize,
        /// Outcomes it returned.
        outcomes: usize,
    },
}

/// Phase 1: verifies every envelope the caller's screens let through (in parallel when
/// there are several) and gives each envelope its slot, in order.
///
/// # Errors
/// [`SubmissionError`] when `screens` does not match `envelopes` (a caller's fault).
pub fn verify(
    envelopes: Vec<Result<Envelope, EnvelopeError>>,
    screens: Vec<Screen>,
    keys: &(impl KeyLookup + Sync),
) -> Result<Vec<Slot>, SubmissionError> {
    if screens.len() != envelopes.len() {
        return Err(SubmissionError::RanShort { what: "screens" });
    }
    let mut to_verify = Vec::new();
    let mut steps: Vec<Step> = Vec::with_capacity(envelopes.len());
    for (e, screen) in envelopes.into_iter().zip(screens) {
        steps.push(match (e, screen) {
            (Err(err), _) => Step::Done(Answer::envelope(&err)),
            (Ok(_), Screen::Refuse { code, detail }) => {
                Step::Done(Answer::refused(Family::Envelope, code, detail))
            }
            (Ok(_), Screen::Repeat { of }) => Step::Repeat(of),
            (Ok(env), Screen::Verify) => {
                to_verify.push(env);
                Step::Verify
            }
        });
    }
    // One envelope (the hot path of a single POST) is not worth rayon's hand-off.
    let verified = if to_verify.len() == 1 {
        to_verify.into_iter().map(|e| e.verify(keys)).collect()
    } else {
        verify_batch(to_verify, keys)
    };
    let mut verified = verified.into_iter();
    let mut slots: Vec<Slot> = Vec::with_capacity(steps.len());
    for (at, step) in steps.into_iter().enumerate() {
        let slot = match step {
            Step::Done(answer) => Slot::Done(answer),
            Step::Verify => match verified.next() {
                Some(Ok(v)) => Slot::Append(v),
                Some(Err(err)) => Slot::Done(Answer::envelope(&err)),
                None => {
                    return Err(SubmissionError::RanShort {
                        what: "verification",
                    })
                }
            },
            // An earlier position, so already decided: the same verdict, unverified.
            Step::Repeat(of) => match slots.get(of) {
                Some(Slot::Append(v)) => Slot::Append(v.clone()),
                Some(Slot::Done(answer)) => Slot::Done(answer.clone()),
                None => return Err(SubmissionError::RepeatNotEarlier { at, of }),
            },
        };
        slots.push(slot);
    }
    Ok(slots)
}

/// One envelope between screening and verification.
enum Step {
    Done(Answer),
    Verify,
    Repeat(usize),
}

/// The answers of a submission while its verified envelopes are appended: one per
/// envelope, in order, empty where the log's outcome goes.
pub struct Pending {
    answers: Vec<Option<Answer>>,
}

/// Phase 2: the envelopes to append, in order, and the answers already given.
pub fn split(slots: Vec<Slot>) -> (Vec<VerifiedEnvelope>, Pending) {
    let mut to_append = Vec::new();
    let mut answers = Vec::with_capacity(slots.len());
    for slot in slots {
        match slot {
            Slot::Done(answer) => answers.push(Some(answer)),
            Slot::Append(verified) => {
                to_append.push(verified);
                answers.push(None);
            }
        }
    }
    (to_append, Pending { answers })
}

impl Pending {
    /// Phase 4: the log's outcomes (one per appended envelope, in order) fill the empty
    /// slots.
    ///
    /// # Errors
    /// [`SubmissionError::OutcomesMiscounted`] if the log answered another number.
    pub fn merge(self, outcomes: Vec<Outcome<RuleError>>) -> Result<Vec<Answer>, SubmissionError> {
        let appended = self.answers.iter().filter(|a| a.is_none()).count();
        if outcomes.len() != appended {
            return Err(SubmissionError::OutcomesMiscounted {
                appended,
                outcomes: outcomes.len(),
            });
        }
        let mut outcomes = outcomes.into_iter().map(Answer::from_outcome);
        let mut answers = Vec::with_capacity(self.answers.len());
        for a in self.answers {
            match a.or_else(|| outcomes.next()) {
                Some(answer) => answers.push(answer),
                None => return Err(SubmissionError::RanShort { what: "outcomes" }),
            }
        }
        Ok(answers)
    }
}

//! The feed: entries are drafted (payload, signers, the answer expected), signed in
//! parallel and submitted in batches of [`super::BATCH_ENTRIES`]; every
//! answer is checked against what was expected. An unexpected refusal stops the demo
//! with its code; expected refusals are counted by code. After each batch the pool's
//! totals are sampled (`GET /v1/pool`) for the chart.
//!
//! One batch is in flight at a time, and the next is signed meanwhile: signing is a
//! quarter of a batch's time, the server's verification and group commit the rest.
//! A batch is sent only once the one before it is answered (durable), so an entry may
//! depend on any entry drafted before it.
//!
//! ```no_run
//! use std::sync::Arc;
//! use lesson_ledger::demo::{create, feed::{Expect, Feed}, world::World, HttpLedger, Scale};
//! let world = World::new(1, Scale::Tiny, 0);
//! let created = create::ledger(std::path::Path::new("/tmp/l"), &world)?;
//! // ... served at http://127.0.0.1:8080 (see `lesson_ledger::http::Server`) ...
//! let ledger = HttpLedger::new("http://127.0.0.1:8080", &created.operator.vkey())?;
//! let mut feed = Feed::new(ledger, world.origin(), 1);
//! let key = world.key("assoc-01")?;
//! let registration = serde_json::json!({"kind": "party_registered",
//!     "id": "party_registered.assoc-01", "party": "assoc-01", "role": "association",
//!     "key": key.vkey()});
//! // "signed by an operator AND by the new key (proof of possession)"
//! feed.push(&registration, vec![Arc::new(created.operator), key], Expect::Accepted)?;
//! feed.flush()?;
//! # Ok::<(), lesson_ledger::demo::DemoError>(())
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde_json::Value;

use super::transport::{HttpLedger, Submitted};
use super::{DemoError, BATCH_ENTRIES};
use crate::ledger::PAYLOAD_TYPE;
use crate::log::envelope::Envelope;
use crate::log::note::NoteSigner;

/// The answer an entry should get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Appended.
    Accepted,
    /// Already in the log: answered with the first result.
    Exists,
    /// Refused with this code (the rules at work).
    Refused(&'static str),
}

/// One entry waiting to be signed and submitted.
struct Draft {
    label: String,
    payload: Vec<u8>,
    signers: Vec<Arc<NoteSigner>>,
    expect: Expect,
}

/// The pool's use after some batch: x = log size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Entries in the log after the batch (the x of the chart).
    pub size: u64,
    /// Value pledged into the pool, in fen.
    pub pledged_fen: u64,
    /// Value reserved by allocations, in fen.
    pub reserved_fen: u64,
    /// Value delivered as lessons consumed, in fen.
    pub delivered_fen: u64,
}

/// A batch sent and not yet answered.
struct InFlight {
    drafts: Vec<Draft>,
    answers: std::thread::JoinHandle<Result<Vec<Submitted>, DemoError>>,
}

/// Batches drafts into the [`HttpLedger`] and checks each answer.
pub struct Feed {
    transport: Arc<HttpLedger>,
    /// The ledger's origin, which every payload names (`ledger`).
    origin: String,
    in_flight: Option<InFlight>,
    /// The log's size as the last answers showed it.
    size: u64,
    /// The index of the last entry appended (where its ledger time can be read).
    last_index: Option<u64>,
    drafts: Vec<Draft>,
    accepted: u64,
    exists: u64,
    /// code → (count, first message)
    refusals: BTreeMap<String, (u64, String)>,
    samples: Vec<Sample>,
    bar: Option<ProgressBar>,
}

impl Feed {
    /// A feed into the ledger `origin` of `size` entries.
    pub fn new(transport: HttpLedger, origin: &str, size: u64) -> Feed {
        Feed {
            transport: Arc::new(transport),
            origin: origin.to_owned(),
            in_flight: None,
            size,
            last_index: None,
            drafts: Vec::with_capacity(BATCH_ENTRIES),
            accepted: 0,
            exists: 0,
            refusals: BTreeMap::new(),
            samples: Vec::new(),
            bar: None,
        }
    }

    /// The ledger beneath (reads, audit).
    #[must_use]
    pub fn transport(&self) -> &HttpLedger {
        &self.transport
    }

    /// The log's size after the last batch.
    #[must_use]
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The index of the last entry appended, if any.
    #[must_use]
    pub fn last_index(&self) -> Option<u64> {
        self.last_index
    }

    /// Entries appended so far.
    #[must_use]
    pub fn accepted(&self) -> u64 {
        self.accepted
    }

    /// Submissions answered "exists".
    #[must_use]
    pub fn exists(&self) -> u64 {
        self.exists
    }

    /// Expected refusals: (code, count, first message), by code.
    #[must_use]
    pub fn refusals(&self) -> Vec<(String, u64, String)> {
        self.refusals
            .iter()
            .map(|(c, (n, m))| (c.clone(), *n, m.clone()))
            .collect()
    }

    /// The pool samples taken after each batch.
    #[must_use]
    pub fn samples(&self) -> &[Sample] {
        &self.samples
    }

    /// Counts entries the server appended on the demo's request (a match run), up to
    /// a log of `size` entries, and samples the pool after them.
    ///
    /// # Errors
    /// Transport errors reading the pool.
    pub fn note_appended(&mut self, size: u64) -> Result<(), DemoError> {
        if size > self.size {
            self.accepted += size - self.size;
            self.size = size;
            self.last_index = Some(size - 1);
        }
        self.sample()
    }

    fn sample(&mut self) -> Result<(), DemoError> {
        let pool = self.transport.pool()?;
        self.samples.push(Sample {
            size: self.size,
            pledged_fen: pool.pledged.0,
            reserved_fen: pool.reserved.0,
            delivered_fen: pool.delivered.0,
        });
        Ok(())
    }

    /// Shows a progress bar of `total` entries for a long step (hidden when stderr is
    /// not a terminal).
    pub fn progress(&mut self, what: &str, total: u64) {
        self.finish_progress();
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template(
                "{msg:>24} {bar:40} {pos}/{len} entries ({per_sec}, eta {eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_message(what.to_string());
        self.bar = Some(bar);
    }

    /// Clears the progress bar, if any.
    pub fn finish_progress(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }

    /// Drafts an entry; submits the batch when it is full.
    ///
    /// # Errors
    /// As [`Feed::flush`].
    pub fn push(
        &mut self,
        payload: &Value,
        signers: Vec<Arc<NoteSigner>>,
        expect: Expect,
    ) -> Result<(), DemoError> {
        let label = payload
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string();
        // Every statement names the ledger it is made in; the drafts leave it to the feed.
        let mut payload = payload.clone();
        if let Some(map) = payload.as_object_mut() {
            map.entry("ledger")
                .or_insert_with(|| Value::String(self.origin.clone()));
        }
        self.drafts.push(Draft {
            label,
            payload: payload.to_string().into_bytes(),
            signers,
            expect,
        });
        if self.drafts.len() >= BATCH_ENTRIES {
            self.send()?;
        }
        Ok(())
    }

    /// Signs and submits every draft, in order, and checks every answer.
    ///
    /// # Errors
    /// [`DemoError::Unexpected`] for the first answer that is not the one expected (the
    /// batch's accepted entries are in the log by then); faults of the transport.
    pub fn flush(&mut self) -> Result<(), DemoError> {
        self.send()?;
        self.settle()
    }

    /// Signs the drafts, waits for the batch in flight, and sends these.
    fn send(&mut self) -> Result<(), DemoError> {
        if self.drafts.is_empty() {
            return Ok(());
        }
        let drafts = std::mem::take(&mut self.drafts);
        let envelopes = drafts
            .par_iter()
            .map(|d| {
                let signers: Vec<&NoteSigner> = d.signers.iter().map(AsRef::as_ref).collect();
                Envelope::sign(PAYLOAD_TYPE, &d.payload, &signers)
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.settle()?;
        let transport = Arc::clone(&self.transport);
        let answers = std::thread::Builder::new()
            .name("demo-submit".into())
            .spawn(move || transport.submit(&envelopes))
            .map_err(|source| DemoError::Runtime {
                what: "submit thread",
                source,
            })?;
        self.in_flight = Some(InFlight { drafts, answers });
        Ok(())
    }

    /// Waits for the batch in flight, if any, and checks its answers.
    fn settle(&mut self) -> Result<(), DemoError> {
        let Some(InFlight { drafts, answers }) = self.in_flight.take() else {
            return Ok(());
        };
        let answers = answers
            .join()
            .map_err(|_| DemoError::Setup("the submit thread panicked".into()))??;
        if answers.len() != drafts.len() {
            return Err(DemoError::check(
                "answers to a batch",
                drafts.len(),
                answers.len(),
            ));
        }
        for (draft, answer) in drafts.iter().zip(answers) {
            self.check(draft, answer)?;
        }
        if let Some(bar) = &self.bar {
            bar.inc(drafts.len() as u64);
        }
        self.sample()
    }

    fn check(&mut self, draft: &Draft, answer: Submitted) -> Result<(), DemoError> {
        let unexpected = |found: String, message: String| DemoError::Unexpected {
            entry: draft.label.clone(),
            expected: match draft.expect {
                Expect::Accepted => "accepted".into(),
                Expect::Exists => "exists".into(),
                Expect::Refused(code) => format!("refused {code}"),
            },
            found,
            message,
        };
        match (draft.expect, answer) {
            (Expect::Accepted, Submitted::Accepted { index }) => {
                self.accepted += 1;
                self.size = self.size.max(index + 1);
                self.last_index = Some(index);
            }
            (Expect::Exists, Submitted::Exists { .. }) => self.exists += 1,
            (Expect::Refused(want), Submitted::Refused { code, message }) if code == want => {
                let e = self.refusals.entry(code).or_insert((0, message));
                e.0 += 1;
            }
            (_, Submitted::Accepted { index }) => {
                return Err(unexpected("accepted".into(), format!("at index {index}")))
            }
            (_, Submitted::Exists { index }) => {
                return Err(unexpected("exists".into(), format!("at index {index}")))
            }
            (_, Submitted::Refused { code, message }) => {
                return Err(unexpected(format!("refused {code}"), message))
            }
        }
        Ok(())
    }
}

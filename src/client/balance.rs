//! Balances, page by page, every page verified (issue 11, items 4 and 11; issue 12).
//!
//! A balance is served in pages ([`crate::http::balances`], typed by
//! [`crate::api::balances`]); [`Client::balance_with`] follows them and checks each one
//! completely before asking for the next ([`verify_answer_page`]): its checkpoint
//! against the client's [`Trust`]; its state note (the operator's, of the checkpoint's
//! size, [`super::proofs::state_root`]); every object's state proof against the note's
//! root, that its figures add up and that every open object it lists is served
//! ([`ProvenObjects`]); that its entries are exactly the next ones the objects list; and
//! each leaf's inclusion. Then it checks that the checkpoints of the pages (and the one
//! remembered, if any) are one history.
//!
//! Nothing malformed is read as empty: an answer that does not decode as its type fails.

use super::proofs::{
    check_absence, check_figures, check_proofs_well_formed, state_root, BalanceError, ProvenObjects,
};
use super::PROBLEM_BYTES_MAX;
use super::{b64, failed, read_capped, status_error, Client, ClientError, Trust};
use crate::api::balances::{Absence, BalanceAnswer, InstitutionAnswer, PoolAnswer, ProvenEntry};
use crate::ledger::objects::Pool;
use crate::ledger::queries::InstitutionReport;
use crate::ledger::state::Table;
use crate::limits::CLIENT_JSON_BYTES_MAX;
use crate::log::envelope::Envelope;
use crate::log::hash::leaf_hash;
use crate::log::leaf;
use crate::log::note::{NoteVerifier, SignedCheckpoint};
use crate::log::proof::verify_inclusion;

impl Client {
    /// A balance with all its entries, every page verified against a checkpoint signed
    /// by `operator` (the operator's own tools; a student's client uses
    /// [`Client::balance_with`] and witnesses).
    ///
    /// # Errors
    /// As [`Client::balance_with`].
    pub fn balance<A: BalanceAnswer + ProvenObjects>(
        &self,
        id: &str,
        operator: &NoteVerifier,
    ) -> Result<A, ClientError> {
        self.balance_with(id, &Trust::operator_only(operator.clone()))
    }

    /// A balance with all its entries, following its pages. Each page is checked with
    /// [`verify_answer_page`]; the pages' checkpoints are proven consistent with one
    /// another and with the one `trust` remembers. The answer holds the last page's
    /// objects, note and checkpoint and every page's entries (each with the proof it was
    /// checked with); `next` is `None`.
    ///
    /// # Errors
    /// [`ClientError::Balance`] for an object, proof or note that does not verify;
    /// [`ClientError::Verification`] for a checkpoint or an entry; transport, status.
    pub fn balance_with<A: BalanceAnswer + ProvenObjects>(
        &self,
        id: &str,
        trust: &Trust,
    ) -> Result<A, ClientError> {
        let mut checkpoints = Vec::new();
        let mut entries: Vec<ProvenEntry> = Vec::new();
        let mut from = 0u64;
        let last = loop {
            let path = format!("/v1/{}/{id}?from={from}", A::PATH);
            let mut page: A = self.get_proven_or_absent(&path, A::TABLE, id, trust)?;
            let cp = trust.checkpoint(page.checkpoint().as_bytes())?;
            let listed = verify_answer_page(&page, id, &cp, trust.operator(), from)?;
            checkpoints.push(cp);
            entries.append(page.entries_mut());
            match page.next() {
                Some(next) => from = next,
                None => {
                    // Pages are positions in a list that only grows at the end: all of
                    // them together must be exactly what the last page lists.
                    let all: Vec<u64> = entries.iter().map(|e| e.index).collect();
                    if all != listed {
                        return Err(failed(
                            "the balance's entries changed while its pages were read; ask again",
                        ));
                    }
                    *page.entries_mut() = entries;
                    page.set_next(None);
                    break page;
                }
            }
        };
        trust.remember(self, &checkpoints)?;
        Ok(last)
    }

    /// `GET /v1/pool`: the pool's totals, proven against a checkpoint `trust` accepts.
    ///
    /// # Errors
    /// As [`Client::balance_with`].
    pub fn pool(&self, trust: &Trust) -> Result<Pool, ClientError> {
        let answer: PoolAnswer = self.get_answer("/v1/pool")?;
        let cp = trust.checkpoint(answer.checkpoint.as_bytes())?;
        let root = state_root(&answer.state_note, &cp, trust.operator())?;
        answer.check_objects("", &root)?;
        trust.remember(self, &[cp])?;
        Ok(answer.pool.object)
    }

    /// `GET /v1/institutions/{id}/report`: a closed institution's liability report,
    /// worked out from its proven liability and party objects.
    ///
    /// # Errors
    /// As [`Client::balance_with`]; status 404 for an institution never closed.
    pub fn institution_report(
        &self,
        institution: &str,
        trust: &Trust,
    ) -> Result<InstitutionReport, ClientError> {
        let path = format!("/v1/institutions/{institution}/report");
        let answer: InstitutionAnswer =
            self.get_proven_or_absent(&path, Table::Liability, institution, trust)?;
        let cp = trust.checkpoint(answer.checkpoint.as_bytes())?;
        let root = state_root(&answer.state_note, &cp, trust.operator())?;
        answer.check_objects(institution, &root)?;
        trust.remember(self, &[cp])?;
        InstitutionReport::of(answer.liability.object, &answer.institution.object)
            .map_err(|e| failed(format!("institution {institution}: {e}")))
    }

    /// `GET path` as an answer of type `A` ([`decode_answer`]); a 404 is
    /// [`ClientError::Absent`] only if it carries the proof that object `id` of `table`
    /// is absent, and that proof checks under `trust` ([`check_absence_problem`]).
    ///
    /// # Errors
    /// [`ClientError::Absent`]; a [`BalanceError`] for a 404 whose proof is missing or
    /// does not check; as [`decode_answer`]; transport, other statuses.
    fn get_proven_or_absent<A: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        table: Table,
        id: &str,
        trust: &Trust,
    ) -> Result<A, ClientError> {
        let url = format!("{}{path}", self.base);
        let response = self.send_any(self.http.get(&url), &url)?;
        let status = response.status();
        if status.is_success() {
            return decode_answer(path, &read_capped(response, &url, CLIENT_JSON_BYTES_MAX)?);
        }
        if status != reqwest::StatusCode::NOT_FOUND {
            return Err(status_error(response, &url));
        }
        let problem = read_capped(response, &url, PROBLEM_BYTES_MAX)?;
        let cp = check_absence_problem(&problem, table, id, trust)?;
        trust.remember(self, std::slice::from_ref(&cp))?;
        Err(ClientError::Absent {
            table: table.name(),
            id: id.to_owned(),
            size: cp.checkpoint().size,
        })
    }

    /// `GET path` as an answer of type `A` ([`decode_answer`]).
    fn get_answer<A: serde::de::DeserializeOwned>(&self, path: &str) -> Result<A, ClientError> {
        let bytes = self.get_bytes(path, CLIENT_JSON_BYTES_MAX)?;
        decode_answer(path, &bytes)
    }
}

/// An answer of type `A` from its JSON (`what`: where it came from), its figures
/// checked before it is decoded ([`check_figures`]), so that an object whose parts do
/// not add up is refused as such rather than as undecodable.
///
/// # Errors
/// [`ClientError::Balance`] (`balance_unbalanced`); [`ClientError::Decode`].
pub fn decode_answer<A: serde::de::DeserializeOwned>(
    what: &str,
    bytes: &[u8],
) -> Result<A, ClientError> {
    let decode = |e: serde_json::Error| ClientError::Decode {
        what: what.to_owned(),
        reason: e.to_string(),
    };
    let json: serde_json::Value = serde_json::from_slice(bytes).map_err(decode)?;
    check_proofs_well_formed(&json)?;
    check_figures(&json)?;
    serde_json::from_value(json).map_err(decode)
}

/// Checks a 404's problem document for object `id` of `table`: it must carry, as its
/// `absence` member, the proof that the object is absent, against the root of a state
/// note of the size of a checkpoint `trust` accepts. Returns that checkpoint.
///
/// # Errors
/// [`BalanceError::AbsenceMissing`] (`absence_proof_missing`) for no proof at all;
/// [`BalanceError::AbsenceMalformed`] (`absence_proof_malformed`) for one that does not
/// decode; a checkpoint `trust` refuses; the note's and the proof's own codes
/// ([`state_root`], [`check_absence`]): another object (`state_object_mismatch`),
/// another key (`proof_key_mismatch`), another root (`proof_root_mismatch`), a key that
/// is present (`proof_absent_key_present`).
pub fn check_absence_problem(
    problem: &[u8],
    table: Table,
    id: &str,
    trust: &Trust,
) -> Result<SignedCheckpoint, ClientError> {
    let problem: serde_json::Value =
        serde_json::from_slice(problem).map_err(|_| BalanceError::AbsenceMissing {
            code: "(no problem document)".into(),
        })?;
    let Some(absence) = problem.get("absence") else {
        return Err(BalanceError::AbsenceMissing {
            code: problem["code"].as_str().unwrap_or("(no code)").to_owned(),
        }
        .into());
    };
    let absence: Absence =
        serde_json::from_value(absence.clone()).map_err(|e| BalanceError::AbsenceMalformed {
            reason: e.to_string(),
        })?;
    let cp = trust.checkpoint(absence.checkpoint.as_bytes())?;
    let root = state_root(&absence.state_note, &cp, trust.operator())?;
    check_absence(&absence, table, id, &root)?;
    Ok(cp)
}

/// Checks one page of the answer for `id` served from position `from`, against its
/// checkpoint `cp` (already checked by the caller's trust): the state note and every
/// object ([`ProvenObjects`]), then the entries ([`verify_page`]). Returns the entries
/// the objects list.
///
/// # Errors
/// [`ClientError::Balance`] naming the first object, proof or note that does not verify;
/// [`ClientError::Verification`] for the entries.
pub fn verify_answer_page<A: BalanceAnswer + ProvenObjects>(
    page: &A,
    id: &str,
    cp: &SignedCheckpoint,
    operator: &NoteVerifier,
    from: u64,
) -> Result<Vec<u64>, ClientError> {
    let root = state_root(page.state_note(), cp, operator)?;
    page.check_objects(id, &root)?;
    verify_page(page, cp, from)
}

/// Checks one page of an answer served from position `from` against its checkpoint
/// `cp`: its entries are exactly the next ones its objects list, `next` says where the
/// rest starts, and each entry's leaf, rebuilt from what was served, is included in
/// `cp`. Returns the listed indexes.
///
/// # Errors
/// [`ClientError::Verification`] naming the first thing that does not verify.
pub fn verify_page<A: BalanceAnswer>(
    page: &A,
    cp: &SignedCheckpoint,
    from: u64,
) -> Result<Vec<u64>, ClientError> {
    let listed = page.listed_entries();
    let entries = page.entries();
    let start = usize::try_from(from).map_err(|_| failed("page position out of range"))?;
    let end = start
        .checked_add(entries.len())
        .filter(|&end| end <= listed.len())
        .ok_or_else(|| failed("the page serves more entries than the balance lists"))?;
    let served: Vec<u64> = entries.iter().map(|e| e.index).collect();
    if served != listed[start..end] {
        return Err(failed(format!(
            "the page from {from} serves entries {served:?}, the balance lists {:?} there",
            &listed[start..end]
        )));
    }
    let expected_next = (end < listed.len()).then_some(end as u64);
    if entries.is_empty() && expected_next.is_some() || page.next() != expected_next {
        return Err(failed(format!(
            "the page says the next starts at {:?}; the balance lists {} entries and this page ends at {end}",
            page.next(),
            listed.len()
        )));
    }
    let (size, root) = (cp.checkpoint().size, cp.checkpoint().root);
    for e in entries {
        verify_entry(e, size, &root)?;
    }
    Ok(listed)
}

/// Rebuilds an entry's leaf from what was served and checks its inclusion.
fn verify_entry(
    e: &ProvenEntry,
    size: u64,
    root: &crate::log::hash::Hash,
) -> Result<(), ClientError> {
    let envelope = Envelope::from_json(e.envelope.get().as_bytes())
        .map_err(|err| failed(format!("entry {}: {err}", e.index)))?;
    let bytes = leaf::encode_parts(
        e.index,
        e.time_micros,
        envelope.payload_type(),
        envelope.payload(),
        envelope.signatures(),
    )
    .map_err(|err| failed(format!("entry {}: {err}", e.index)))?;
    let hash = leaf_hash(&bytes);
    if hash != b64("leaf hash", &e.leaf_hash)? {
        return Err(failed(format!(
            "entry {}: leaf hash does not match its content",
            e.index
        )));
    }
    let proof = e
        .inclusion_proof
        .iter()
        .map(|h| b64("proof node", h))
        .collect::<Result<Vec<_>, _>>()?;
    verify_inclusion(&hash, e.index, size, &proof, root)
        .map_err(|err| failed(format!("entry {}: {err}", e.index)))
}

/// Checks a whole answer for `id` served in one page: the checkpoint's signature under
/// `operator`, [`verify_answer_page`] from position 0, and no page after it.
///
/// # Errors
/// [`ClientError::Balance`] or [`ClientError::Verification`] naming the first thing
/// that does not verify.
pub fn verify_answer<A: BalanceAnswer + ProvenObjects>(
    answer: &A,
    id: &str,
    operator: &NoteVerifier,
) -> Result<(), ClientError> {
    let cp = SignedCheckpoint::parse_and_verify(answer.checkpoint().as_bytes(), operator)
        .map_err(|e| failed(format!("balance checkpoint: {e}")))?;
    verify_answer_page(answer, id, &cp, operator, 0)?;
    if answer.next().is_some() {
        return Err(failed("the balance has more pages than the one given"));
    }
    Ok(())
}

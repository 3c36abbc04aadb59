//! The remote audit (`verify --url`): the checkpoint, every entry from the tlog-tiles
//! entry bundles, the root rebuilt; with a visitor, the rules replayed and the operator's
//! signed state notes compared with the replayed state map roots; with a [`Trust`], the
//! association cosignatures required on the checkpoint audited.

use std::collections::VecDeque;
use std::path::Path;

use super::{failed, read_state, write_state, AuditState, Client, ClientError, Trust};
use crate::api::balances::{StateNotePage, StateNoteRow};
use crate::http::tiles::TILE_WIDTH;
use crate::limits::CLIENT_CHECKPOINT_BYTES_MAX;
use crate::log::audit::AuditVisitor;
use crate::log::compact::Frontier;
use crate::log::envelope::KeyCache;
use crate::log::hash::Hash;
use crate::log::leaf::Leaf;
use crate::log::leaf_check::{check_leaves, LeafOrder};
use crate::log::note::{NoteVerifier, SignedCheckpoint};
use crate::log::state_note::StateNote;

/// What a remote audit verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditReport {
    /// The log's origin line, from the audited checkpoint.
    pub origin: String,
    /// The audited checkpoint's tree size, in entries.
    pub size: u64,
    /// The tree's root hash, recomputed from the entries and equal to the checkpoint's.
    pub root: Hash,
    /// Envelope signatures verified.
    pub signatures: u64,
    /// The size of the previously verified checkpoint this one was proven consistent with.
    pub consistent_with: Option<u64>,
    /// State notes whose map root was compared with the replayed state's (none when the
    /// log alone is audited).
    pub state_notes: u64,
    /// Whether the server lists its state notes (`GET /v1/state-notes?from=`). A static
    /// tree (`lesson-ledger publish` behind a web server) does not: then only the note
    /// of the audited size is compared, and the report says so.
    pub state_notes_listed: bool,
}

/// Audits the remote ledger: the checkpoint under the operator key (`operator_vkey`,
/// else the state file's, else the server's on first use), every entry from the
/// tlog-tiles entry bundles (decoded, in order, signatures verified), the root rebuilt
/// and compared; then, with a state file, consistency with the last checkpoint verified
/// (computed: the old root recomputed from the leaves served now, no proof asked of
/// the server, so a static tree works as well), and the new checkpoint remembered.
///
/// # Errors
/// [`ClientError::Verification`] for any mismatch — a rewritten history among them;
/// transport, status and I/O errors.
pub fn audit(
    client: &Client,
    operator_vkey: Option<&str>,
    state_file: Option<&Path>,
) -> Result<AuditReport, ClientError> {
    let required = Required {
        witnesses: None,
        state_note: false,
    };
    audit_required(
        client,
        operator_vkey,
        state_file,
        required,
        &mut LogOnly,
        &|_, _| {},
    )
}

/// Audits the log alone.
struct LogOnly;

impl AuditVisitor for LogOnly {
    fn leaf(&mut self, _: &Leaf) -> Result<(), crate::log::audit::VisitError> {
        Ok(())
    }
}

/// [`audit`], showing every verified leaf, in log order, to `visitor` (e.g. the
/// ledger's [`Replayer`](crate::runs::replay::Replayer), so that an association
/// recomputes every balance from what it was served), and telling `progress` the
/// entries read so far and the total.
///
/// # Errors
/// As [`audit`]; a leaf the visitor refuses is a [`ClientError::Verification`].
pub fn audit_visiting(
    client: &Client,
    operator_vkey: Option<&str>,
    state_file: Option<&Path>,
    visitor: &mut dyn AuditVisitor,
    progress: &dyn Fn(u64, u64),
) -> Result<AuditReport, ClientError> {
    let required = Required {
        witnesses: None,
        state_note: true,
    };
    audit_required(
        client,
        operator_vkey,
        state_file,
        required,
        visitor,
        progress,
    )
}

/// [`audit_visiting`] under `trust`: its operator key is the one pinned, and the
/// checkpoint audited must carry the association cosignatures `trust` requires (a view
/// no association has checked is refused, as `client balance` refuses it).
///
/// # Errors
/// As [`audit_visiting`]; too few verified cosignatures is a
/// [`ClientError::Verification`].
pub fn audit_witnessed(
    client: &Client,
    trust: &Trust,
    state_file: Option<&Path>,
    visitor: &mut dyn AuditVisitor,
    progress: &dyn Fn(u64, u64),
) -> Result<AuditReport, ClientError> {
    let required = Required {
        witnesses: Some(trust),
        state_note: true,
    };
    let operator = trust.operator().to_vkey();
    audit_required(
        client,
        Some(&operator),
        state_file,
        required,
        visitor,
        progress,
    )
}

/// What a remote audit checks beyond the log itself.
#[derive(Clone, Copy)]
struct Required<'a> {
    /// The cosignatures required on the checkpoint audited.
    witnesses: Option<&'a Trust>,
    /// Whether the state note of the checkpoint's size is fetched and shown to the
    /// visitor (which compares its root with the replayed state's).
    state_note: bool,
}

fn audit_required(
    client: &Client,
    operator_vkey: Option<&str>,
    state_file: Option<&Path>,
    required: Required<'_>,
    visitor: &mut dyn AuditVisitor,
    progress: &dyn Fn(u64, u64),
) -> Result<AuditReport, ClientError> {
    let previous = match state_file {
        Some(path) => read_state(path)?,
        None => None,
    };
    let pinned = operator_vkey.or(previous.as_ref().map(|s| s.operator_vkey.as_str()));
    let operator = client.operator(pinned)?;
    // Verified once the entries are replayed: the operator's key may have changed since
    // the pinned one, which the entries show (schemas/README.md §11).
    let cp_bytes = client.get_bytes("/checkpoint", CLIENT_CHECKPOINT_BYTES_MAX)?;
    let served = crate::log::note::Note::parse(&cp_bytes)
        .and_then(|note| crate::log::note::Checkpoint::from_body(note.text()))
        .map_err(|e| failed(format!("the checkpoint does not parse: {e}")))?;
    let (size, root) = (served.size, served.root);
    // Whether the pinned key has been the operator's at some point of the log: from
    // there on, each key change is signed by the key before (the rules see to it).
    let mut pinned_reached = false;

    // Every entry, from the entry bundles; leaves decoded and signatures verified.
    let mut frontier = Frontier::new();
    let mut prefix_roots = Vec::new();
    let old = match &previous {
        Some(state) => Some(
            SignedCheckpoint::parse_and_verify(state.checkpoint.as_bytes(), &operator)
                .map_err(|e| failed(format!("the remembered checkpoint: {e}")))?,
        ),
        None => None,
    };
    let old_size = old.as_ref().map(|c| c.checkpoint().size);
    if let Some(old_size) = old_size {
        if old_size > size {
            return Err(failed(format!(
                "the log shrank: {size} entries now, {old_size} verified before"
            )));
        }
    }
    let keys = KeyCache::self_certifying();
    let mut notes = NoteFeed::new(client, size, required.state_note);
    let mut signatures = 0u64;
    let mut order = LeafOrder::default();
    while order.next_index() < size {
        let next = order.next_index();
        let tile = next / TILE_WIDTH;
        let width = (size - next).min(TILE_WIDTH);
        let bundle = client.entry_bundle(tile, width)?;
        // The leaf checker of the file audit (`log::leaf_check`), on the leaf bytes:
        // canonical, signed, in place, in time. Leaves decode canonically, so encoding
        // a served leaf gives back the bytes served (the hash comparison proves it).
        let bytes = bundle
            .iter()
            .map(|entry| entry.leaf.encode())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| failed(format!("entry bundle {tile}: {e}")))?;
        for (entry, checked) in bundle.iter().zip(check_leaves(&bytes, &keys)) {
            let index = order.next_index();
            let checked = checked
                .and_then(|c| order.accept(&c.leaf).map(|()| c))
                .map_err(|e| failed(format!("entry {index}: {e}")))?;
            if checked.hash != entry.hash {
                return Err(failed(format!("entry {index}: not canonically encoded")));
            }
            let mut completed = Vec::new();
            frontier
                .push(checked.hash, &mut completed)
                .map_err(|e| failed(e.to_string()))?;
            if Some(frontier.size()) == old_size {
                prefix_roots.push(frontier.root());
            }
            signatures += checked.signatures() as u64;
            visitor
                .leaf(&checked.leaf)
                .map_err(|e| failed(format!("entry {index}: {e}")))?;
            if !pinned_reached {
                let named = visitor.operator_vkey().map_err(|e| failed(e.to_string()))?;
                pinned_reached = named.map_or(true, |k| k == operator.to_vkey());
            }
            if let Some(row) = notes.take(order.next_index())? {
                let key = note_key(visitor, &operator)?;
                check_state_note(&row, served.origin.as_str(), &key, visitor)?;
            }
        }
        progress(order.next_index(), size);
    }
    let operator_now = match visitor.operator_vkey().map_err(|e| failed(e.to_string()))? {
        Some(vkey) if vkey != operator.to_vkey() => {
            if !pinned_reached {
                return Err(failed(format!(
                    "the ledger's operator key {vkey} is not reached from the pinned key {}",
                    operator.to_vkey()
                )));
            }
            NoteVerifier::from_vkey(&vkey)
                .map_err(|e| failed(format!("the ledger's operator key: {e}")))?
        }
        _ => operator.clone(),
    };
    let cp = SignedCheckpoint::parse_and_verify(&cp_bytes, &operator_now)
        .map_err(|e| failed(format!("the checkpoint does not verify: {e}")))?;
    if frontier.root() != root {
        return Err(failed(format!(
            "the entries served give root {}, the checkpoint of size {size} says {}",
            frontier.root().to_base64(),
            root.to_base64()
        )));
    }
    if let Some(trust) = required.witnesses {
        trust.cosigned(&cp)?;
    }
    // The note of the checkpoint's size, if the listing did not have it: asked for alone.
    let final_note_alone = required.state_note && size > 0 && notes.last_checked != Some(size);
    if final_note_alone {
        state_note_at(client, &cp, &operator_now, visitor)?;
    }

    let mut consistent_with = None;
    if let Some(old) = &old {
        let (m, old_root) = (old.checkpoint().size, old.checkpoint().root);
        if old.checkpoint().origin != cp.checkpoint().origin {
            return Err(failed("the origin changed since the last audit"));
        }
        // Consistency computed, not taken from the server (a static tree, such as one
        // nginx serves, has no proof to give, and a served proof is the server's word):
        // the entries served today give both the checkpoint's root (checked above) and,
        // at the old size, the root verified before, so the new tree extends the old.
        let recomputed = if m == 0 {
            Some(Hash::empty_root())
        } else {
            prefix_roots.first().copied()
        };
        if recomputed != Some(old_root) {
            return Err(failed(format!(
                "the checkpoint of size {size} is not consistent with the one of size {m} verified before: the first {m} entries served now do not give its root (history rewritten)"
            )));
        }
        consistent_with = Some(m);
    }
    if let Some(path) = state_file {
        write_state(
            path,
            &AuditState {
                operator_vkey: operator_now.to_vkey(),
                checkpoint: cp.text(),
            },
        )?;
    }
    Ok(AuditReport {
        origin: cp.checkpoint().origin.to_string(),
        size,
        root,
        signatures,
        consistent_with,
        state_notes: notes.checked + u64::from(final_note_alone),
        state_notes_listed: !notes.unlisted,
    })
}

/// The operator's signed state notes, read from `GET /v1/state-notes` a page at a time
/// as the replay reaches their sizes, so that the root of every one is compared with
/// the state replayed up to it.
struct NoteFeed<'a> {
    client: &'a Client,
    /// Notes listed and not yet reached, by increasing size.
    listed: VecDeque<StateNoteRow>,
    /// Where the next page starts; `None` once the listing is read to the size audited.
    next: Option<u64>,
    /// The size audited: notes past it are not looked at.
    size: u64,
    /// The size of the last note listed, so that sizes must increase.
    last_listed: u64,
    /// Notes checked, and the size of the last one.
    checked: u64,
    last_checked: Option<u64>,
    /// The server answered the listing with 403, 404 or 405: it lists no notes.
    unlisted: bool,
}

impl<'a> NoteFeed<'a> {
    /// The notes of a log of `size` entries; none at all unless `wanted`.
    fn new(client: &'a Client, size: u64, wanted: bool) -> NoteFeed<'a> {
        NoteFeed {
            client,
            listed: VecDeque::new(),
            next: (wanted && size > 0).then_some(1),
            size,
            last_listed: 0,
            checked: 0,
            last_checked: None,
            unlisted: false,
        }
    }

    /// The note listed at size `reached` (the entries replayed so far), if any.
    ///
    /// # Errors
    /// A listing whose sizes do not increase, or that passes over `reached`; transport.
    fn take(&mut self, reached: u64) -> Result<Option<StateNoteRow>, ClientError> {
        loop {
            if let Some(front) = self.listed.front() {
                if front.size < reached {
                    return Err(failed(format!(
                        "the state note of size {} is listed after the replay passed it",
                        front.size
                    )));
                }
                if front.size > reached {
                    return Ok(None);
                }
                self.checked += 1;
                self.last_checked = Some(reached);
                return Ok(self.listed.pop_front());
            }
            match self.next {
                Some(from) if from <= reached => self.read_page(from)?,
                _ => return Ok(None),
            }
        }
    }

    fn read_page(&mut self, from: u64) -> Result<(), ClientError> {
        let page: StateNotePage = match self
            .client
            .get_json(&format!("/v1/state-notes?from={from}"))
        {
            Ok(page) => page,
            // A static tree has no listing (a web server cannot answer a query); only
            // its first page may be missing, and the report says the notes were unlisted.
            Err(ClientError::Status {
                status: 403..=405, ..
            }) if from == 1 => {
                self.unlisted = true;
                self.next = None;
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        for row in page.state_notes {
            if row.size < from.max(self.last_listed + 1) {
                return Err(failed(format!(
                    "the state notes listed from {from} are not in increasing size order ({} after {})",
                    row.size, self.last_listed
                )));
            }
            self.last_listed = row.size;
            if row.size <= self.size {
                self.listed.push_back(row);
            }
        }
        self.next = match page.next {
            Some(next) if next <= from => {
                return Err(failed(format!(
                    "the state note listing from {from} does not move on (next {next})"
                )))
            }
            next => next.filter(|&next| next <= self.size),
        };
        Ok(())
    }
}

/// The key a state note at this point of the log is signed with: the operator key the
/// replayed entries name (during a handover the note carries both keys' signatures),
/// or `pinned` when they name none.
fn note_key(
    visitor: &mut dyn AuditVisitor,
    pinned: &NoteVerifier,
) -> Result<NoteVerifier, ClientError> {
    match visitor.operator_vkey().map_err(|e| failed(e.to_string()))? {
        Some(vkey) => NoteVerifier::from_vkey(&vkey)
            .map_err(|e| failed(format!("the ledger's operator key: {e}"))),
        None => Ok(pinned.clone()),
    }
}

/// Checks a state note served for `row.size`: signed by `operator`, of this log and of
/// that size; then shows it to `visitor`, which compares its root with the state it
/// replayed from the entries served up to that size.
///
/// # Errors
/// [`ClientError::Verification`] for the note itself; [`ClientError::StateRoot`] for a
/// root the replay does not give.
fn check_state_note(
    row: &StateNoteRow,
    origin: &str,
    operator: &NoteVerifier,
    visitor: &mut dyn AuditVisitor,
) -> Result<(), ClientError> {
    let size = row.size;
    let note = StateNote::parse_and_verify(row.note.as_bytes(), operator).map_err(|e| {
        failed(format!(
            "the state note of size {size} does not verify: {e}"
        ))
    })?;
    if note.size != size || note.origin != origin {
        return Err(failed(format!(
            "the state note served for size {size} is of size {} and origin {:?}",
            note.size, note.origin
        )));
    }
    visitor
        .state_note(&note)
        .map_err(|e| ClientError::StateRoot {
            size,
            reason: e.to_string(),
        })
}

/// Fetches the operator's signed state note of the checkpoint's size and checks it
/// ([`check_state_note`]).
fn state_note_at(
    client: &Client,
    cp: &SignedCheckpoint,
    operator: &NoteVerifier,
    visitor: &mut dyn AuditVisitor,
) -> Result<(), ClientError> {
    let size = cp.checkpoint().size;
    let bytes = client.get_bytes(
        &format!("/v1/state-notes/{size}"),
        CLIENT_CHECKPOINT_BYTES_MAX,
    )?;
    let row = StateNoteRow {
        size,
        note: String::from_utf8(bytes)
            .map_err(|_| failed(format!("the state note of size {size} is not UTF-8")))?,
    };
    check_state_note(&row, cp.checkpoint().origin.as_str(), operator, visitor)
}

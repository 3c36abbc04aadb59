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
    let start = AuditStart::fetch(client, operator_vkey, state_file)?;
    let size = start.served.size;
    let mut notes = NoteFeed::new(client, size, required.state_note);
    let read = read_entries(client, &start, &mut notes, visitor, progress)?;
    let operator_now = operator_after_replay(&start.operator, visitor, read.pinned_reached)?;
    let cp = SignedCheckpoint::parse_and_verify(&start.cp_bytes, &operator_now)
        .map_err(|e| failed(format!("the checkpoint does not verify: {e}")))?;
    if read.root != start.served.root {
        return Err(failed(format!(
            "the entries served give root {}, the checkpoint of size {size} says {}",
            read.root.to_base64(),
            start.served.root.to_base64()
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
    let consistent_with = match &start.old {
        Some(old) => Some(consistent_with(old, &cp, read.old_size_root)?),
        None => None,
    };
    if let Some(path) = state_file {
        let state = AuditState {
            operator_vkey: operator_now.to_vkey(),
            checkpoint: cp.text(),
        };
        write_state(path, &state)?;
    }
    Ok(AuditReport {
        origin: cp.checkpoint().origin.to_string(),
        size,
        root: start.served.root,
        signatures: read.signatures,
        consistent_with,
        state_notes: notes.checked + u64::from(final_note_alone),
        state_notes_listed: !notes.unlisted,
    })
}

/// What an audit starts from: the operator key pinned, the checkpoint served now (its
/// signature checked once the entries have shown which key signs it), and the checkpoint
/// verified by the last audit, if a state file remembers one.
struct AuditStart {
    operator: NoteVerifier,
    cp_bytes: Vec<u8>,
    served: crate::log::note::Checkpoint,
    old: Option<SignedCheckpoint>,
}

impl AuditStart {
    fn fetch(
        client: &Client,
        operator_vkey: Option<&str>,
        state_file: Option<&Path>,
    ) -> Result<AuditStart, ClientError> {
        let previous = match state_file {
            Some(path) => read_state(path)?,
            None => None,
        };
        let pinned = operator_vkey.or(previous.as_ref().map(|s| s.operator_vkey.as_str()));
        let operator = client.operator(pinned)?;
        // Verified once the entries are replayed: the operator's key may have changed
        // since the pinned one, which the entries show (schemas/README.md §11).
        let cp_bytes = client.get_bytes("/checkpoint", CLIENT_CHECKPOINT_BYTES_MAX)?;
        let served = crate::log::note::Note::parse(&cp_bytes)
            .and_then(|note| crate::log::note::Checkpoint::from_body(note.text()))
            .map_err(|e| failed(format!("the checkpoint does not parse: {e}")))?;
        let old = match &previous {
            Some(state) => Some(
                SignedCheckpoint::parse_and_verify(state.checkpoint.as_bytes(), &operator)
                    .map_err(|e| failed(format!("the remembered checkpoint: {e}")))?,
            ),
            None => None,
        };
        if let Some(old) = &old {
            let (old_size, size) = (old.checkpoint().size, served.size);
            if old_size > size {
                return Err(failed(format!(
                    "the log shrank: {size} entries now, {old_size} verified before"
                )));
            }
        }
        Ok(AuditStart {
            operator,
            cp_bytes,
            served,
            old,
        })
    }
}

/// What reading every entry gave.
struct EntriesRead {
    /// The root of all the entries served.
    root: Hash,
    /// The root of the first entries, as many as the last audit verified.
    old_size_root: Option<Hash>,
    /// Envelope signatures verified.
    signatures: u64,
    /// Whether the pinned key was the operator's at some point of the log.
    pinned_reached: bool,
}

/// Every entry, from the entry bundles: leaves decoded, signatures verified, in order,
/// shown to the visitor (which replays them), and each listed state note compared as
/// the replay reaches its size.
fn read_entries(
    client: &Client,
    start: &AuditStart,
    notes: &mut NoteFeed<'_>,
    visitor: &mut dyn AuditVisitor,
    progress: &dyn Fn(u64, u64),
) -> Result<EntriesRead, ClientError> {
    let size = start.served.size;
    let old_size = start.old.as_ref().map(|c| c.checkpoint().size);
    let keys = KeyCache::self_certifying();
    let mut frontier = Frontier::new();
    let mut read = EntriesRead {
        root: Hash::empty_root(),
        old_size_root: None,
        signatures: 0,
        // From the pinned key on, each key change is signed by the key before (the
        // rules see to it).
        pinned_reached: false,
    };
    let mut order = LeafOrder::default();
    while order.next_index() < size {
        let next = order.next_index();
        let tile = next / TILE_WIDTH;
        let bundle = client.entry_bundle(tile, (size - next).min(TILE_WIDTH))?;
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
            frontier
                .push(checked.hash, &mut Vec::new())
                .map_err(|e| failed(e.to_string()))?;
            if Some(frontier.size()) == old_size {
                read.old_size_root = Some(frontier.root());
            }
            read.signatures += checked.signatures() as u64;
            visitor
                .leaf(&checked.leaf)
                .map_err(|e| failed(format!("entry {index}: {e}")))?;
            if !read.pinned_reached {
                let named = visitor.operator_vkey().map_err(|e| failed(e.to_string()))?;
                read.pinned_reached = named.map_or(true, |k| k == start.operator.to_vkey());
            }
            if let Some(row) = notes.take(order.next_index())? {
                let key = note_key(visitor, &start.operator)?;
                check_state_note(&row, start.served.origin.as_str(), &key, visitor)?;
            }
        }
        progress(order.next_index(), size);
    }
    read.root = frontier.root();
    Ok(read)
}

/// The operator key the checkpoint must be signed by once the entries are replayed:
/// the pinned key, or the key the ledger handed over to, if the handovers lead there
/// from the pinned key.
fn operator_after_replay(
    pinned: &NoteVerifier,
    visitor: &mut dyn AuditVisitor,
    pinned_reached: bool,
) -> Result<NoteVerifier, ClientError> {
    match visitor.operator_vkey().map_err(|e| failed(e.to_string()))? {
        Some(vkey) if vkey != pinned.to_vkey() => {
            if !pinned_reached {
                return Err(failed(format!(
                    "the ledger's operator key {vkey} is not reached from the pinned key {}",
                    pinned.to_vkey()
                )));
            }
            NoteVerifier::from_vkey(&vkey)
                .map_err(|e| failed(format!("the ledger's operator key: {e}")))
        }
        _ => Ok(pinned.clone()),
    }
}

/// The size of the checkpoint verified before, once the entries served now are shown to
/// extend it. Consistency is computed, not taken from the server (a static tree, such as
/// one nginx serves, has no proof to give, and a served proof is the server's word): the
/// entries served today give both the checkpoint's root (checked by the caller) and, at
/// the old size, `old_size_root`, which must be the root verified before.
fn consistent_with(
    old: &SignedCheckpoint,
    cp: &SignedCheckpoint,
    old_size_root: Option<Hash>,
) -> Result<u64, ClientError> {
    let (m, old_root) = (old.checkpoint().size, old.checkpoint().root);
    if old.checkpoint().origin != cp.checkpoint().origin {
        return Err(failed("the origin changed since the last audit"));
    }
    let recomputed = if m == 0 {
        Some(Hash::empty_root())
    } else {
        old_size_root
    };
    if recomputed != Some(old_root) {
        let size = cp.checkpoint().size;
        return Err(failed(format!(
            "the checkpoint of size {size} is not consistent with the one of size {m} verified before: the first {m} entries served now do not give its root (history rewritten)"
        )));
    }
    Ok(m)
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

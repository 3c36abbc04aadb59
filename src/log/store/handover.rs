//! The operator key's handover: both keys sign during the change.
//!
//! [`Log::append_handover`] appends a batch whose state note and checkpoint carry two
//! signatures, by the current operator key and by the next one; every later note is
//! signed by the next key alone. A verifier that trusts the current key thus sees the
//! next one vouched for by it, in a checkpoint it can verify, before the old key stops
//! signing. (What the log layer cannot know — that the batch states the change — the
//! layer above puts in it: the ledger's `key_rotated` of the operator, signed by both.)
//!
//! The next private key becomes the data directory's operator key durably and safely:
//! 1. written to `operator.key.next` (created new, mode 0600, synced; the directory
//!    synced) before anything is appended;
//! 2. the batch appended under its fdatasync (the commit point);
//! 3. `operator.key.next` renamed over `operator.key`, the directory synced.
//!
//! A crash between 1 and 3 is settled by [`Log::open`] ([`settle_operator_key`]): if the
//! last checkpoint in `log.dat` verifies under the next key, the handover committed and
//! the rename is finished; otherwise it never happened and the next key is removed.

use std::fs;
use std::path::Path;

use ed25519_dalek::SigningKey;

use super::{io, layout, sign_checkpoint, Admission, Log, LogError, Outcome};
use crate::log::envelope::VerifiedEnvelope;
use crate::log::hash::Hash;
use crate::log::keyfile;
use crate::log::note::{signature_line, NoteSigner, Origin, SignedCheckpoint};

impl Log {
    /// Appends `batch` and hands the log over to `next_key` (same key name): see the
    /// module documentation. The handover happens only if the batch appended something;
    /// a batch whose entries were all refused changes no key.
    ///
    /// # Errors
    /// As [`Log::append`]; writing, syncing or renaming the key file. After an error the
    /// handle refuses to write; reopening settles the handover from `log.dat`.
    pub fn append_handover<A: Admission>(
        &mut self,
        batch: Vec<VerifiedEnvelope>,
        admission: &mut A,
        next_key: SigningKey,
    ) -> Result<Vec<Outcome<A::Refusal>>, LogError> {
        let next_path = self.dir.join(layout::OPERATOR_KEY_NEXT);
        keyfile::write_private_pem(&next_path, &next_key).map_err(|e| LogError::Key {
            reason: e.to_string(),
        })?;
        sync_dir(&self.dir)?;
        let name = self.verifier.name().clone();
        self.handover = Some(NoteSigner::new(name.clone(), next_key.clone()));
        let size_before = self.size();
        let result = self.append(batch, admission);
        self.handover = None;
        let outcomes = result?;
        if self.size() == size_before {
            fs::remove_file(&next_path).map_err(io(&next_path))?;
            sync_dir(&self.dir)?;
            return Ok(outcomes);
        }
        install_next_key(&self.dir)?;
        let next = NoteSigner::new(name, next_key);
        self.verifier = next.verifier();
        self.signer = next;
        Ok(outcomes)
    }

    /// The second signature line of a note signed during a handover, if one is under way.
    pub(super) fn handover_line(&self, text: &str) -> Option<String> {
        self.handover
            .as_ref()
            .map(|next| signature_line(text, next))
    }
}

/// `operator.key.next` becomes `operator.key`, durably.
fn install_next_key(dir: &Path) -> Result<(), LogError> {
    let next = dir.join(layout::OPERATOR_KEY_NEXT);
    fs::rename(&next, dir.join(layout::OPERATOR_KEY)).map_err(io(&next))?;
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> Result<(), LogError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))
}

/// The key that signs from now on and the checkpoint it stands behind, settled from what
/// the directory holds: `current` (`operator.key`), perhaps `next` (`operator.key.next`,
/// a handover cut short), and the last checkpoint stored in `log.dat`.
///
/// The stored checkpoint must be the signed root of the tree (`origin`, `size`, `root`)
/// under the key chosen: if it verifies under `next`, the handover committed and is
/// finished; otherwise `next` is removed. A current key other than `log.json`'s
/// (`first_vkey`) is accepted only if the stored checkpoint verifies under it: the log
/// was handed over to it.
///
/// # Errors
/// [`LogError::Damaged`] when the stored checkpoint is not the signed root under the
/// key; [`LogError::Key`] for a current key the log never handed over to; I/O.
#[allow(clippy::too_many_arguments)]
pub(super) fn settle_operator_key(
    dir: &Path,
    first_vkey: &str,
    current: NoteSigner,
    next: Option<NoteSigner>,
    origin: &Origin,
    size: u64,
    root: Hash,
    stored: Option<&[u8]>,
) -> Result<(NoteSigner, SignedCheckpoint), LogError> {
    // Ed25519 is deterministic: re-signing gives the exact line that was committed. The
    // handover's checkpoint carries one more line, by the key before.
    let signed_root = |signer: &NoteSigner| -> Option<SignedCheckpoint> {
        let ours = sign_checkpoint(origin, size, root, signer);
        let Some(text) = stored else {
            return Some(ours);
        };
        if text == ours.text().as_bytes() {
            return Some(ours);
        }
        let found = SignedCheckpoint::parse_and_verify(text, &signer.verifier()).ok()?;
        (found.checkpoint() == ours.checkpoint()).then_some(found)
    };
    if let Some(next) = next {
        if let Some(checkpoint) = stored.and_then(|_| signed_root(&next)) {
            install_next_key(dir)?;
            return Ok((next, checkpoint));
        }
        let path = dir.join(layout::OPERATOR_KEY_NEXT);
        fs::remove_file(&path).map_err(io(&path))?;
        sync_dir(dir)?;
    }
    if current.vkey() != first_vkey && stored.is_none() {
        return Err(LogError::Key {
            reason:
                "operator.key is not the key in log.json, and no checkpoint shows a handover to it"
                    .into(),
        });
    }
    let checkpoint = signed_root(&current).ok_or_else(|| LogError::Damaged {
        index: size,
        what: "the last checkpoint in log.dat is not the signed root of the tree under the operator key"
            .into(),
    })?;
    Ok((current, checkpoint))
}

//! Fixtures shared by the fuzz targets: a real ledger directory (made with
//! `lesson-ledger init`, `keygen`, `sign` and `append`; see `fixtures/README.md`), a
//! fixed operator and association key for notes, and the helper that re-frames fuzzed
//! record files so that mutations reach past the CRC.
//!
//! Every target must never panic on its input; where a target can say more (a round
//! trip, an accepted proof that must be the true one, an opened log that must pass the
//! audit) it asserts it, and a failed assertion is a finding like a panic.

use std::path::Path;

use ed25519_dalek::SigningKey;
use lesson_ledger::log::note::{cosign, KeyName, NoteSigner, NoteVerifier, SignedCheckpoint};
use lesson_ledger::log::records::HEADER_LEN;

/// `log.json` of the fixture ledger.
pub const FIXTURE_LOG_JSON: &[u8] = include_bytes!("../fixtures/ledger/log.json");
/// The fixture ledger's operator key (a throwaway test key, PKCS#8 PEM).
pub const FIXTURE_OPERATOR_KEY: &[u8] = include_bytes!("../fixtures/ledger/operator.key");
/// The fixture ledger's `log.dat`: genesis and three registrations, four checkpoints.
pub const FIXTURE_LOG_DAT: &[u8] = include_bytes!("../fixtures/ledger/log.dat");

/// Record framing: `kind:u8 | len:u32 BE | body | crc:u32 BE`.
const FRAME_HEAD: usize = 5;
const FRAME_CRC: usize = 4;
/// Seal slots of the format-2 header: `leaves:u64 | end:u64 | zero:u64 | crc:u32 | zero:u32`
/// after the 8-byte magic, the CRC-32C over the first 24 bytes.
const SEAL_SLOTS_OFFSET: usize = 8;
const SEAL_SLOTS: usize = 2;
const SEAL_SLOT_BYTES: usize = 32;
const SEAL_CHECKED: usize = 24;
const _: () = assert!(
    SEAL_SLOTS_OFFSET + SEAL_SLOTS * SEAL_SLOT_BYTES == HEADER_LEN as usize,
    "the seal slots fill the header after the magic"
);

/// Writes the fixture's config and operator key into `dir` (mode 0600 for the key).
///
/// # Panics
/// On I/O errors of the fuzzer's own temporary directory: that is the harness, not
/// the input.
pub fn write_fixture_config(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(dir.join("log.json"), FIXTURE_LOG_JSON).expect("write log.json");
    let key = dir.join("operator.key");
    std::fs::write(&key, FIXTURE_OPERATOR_KEY).expect("write operator.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod key");
}

/// The record-file bytes a fuzz input stands for: the first byte chooses whether the
/// rest is taken as is (even) or re-framed (odd), i.e. every whole record's CRC-32C is
/// recomputed, so that mutated lengths, kinds and bodies reach the leaf and checkpoint
/// parsers instead of stopping at a checksum.
pub fn record_file_bytes(data: &[u8]) -> Vec<u8> {
    let Some((&mode, rest)) = data.split_first() else {
        return Vec::new();
    };
    let mut bytes = rest.to_vec();
    if mode & 1 == 1 {
        reframe(&mut bytes);
    }
    bytes
}

/// Recomputes the CRC of both seal slots of the header and of every whole record after
/// it, in place, so that mutated seals also reach recovery's checks against them.
pub fn reframe(bytes: &mut [u8]) {
    for slot in 0..SEAL_SLOTS {
        let at = SEAL_SLOTS_OFFSET + slot * SEAL_SLOT_BYTES;
        if at + SEAL_SLOT_BYTES <= bytes.len() {
            let crc = crc32c::crc32c(&bytes[at..at + SEAL_CHECKED]);
            bytes[at + SEAL_CHECKED..at + SEAL_CHECKED + 4].copy_from_slice(&crc.to_be_bytes());
        }
    }
    let mut at = HEADER_LEN as usize;
    while at + FRAME_HEAD <= bytes.len() {
        let len = u32::from_be_bytes([bytes[at + 1], bytes[at + 2], bytes[at + 3], bytes[at + 4]]);
        let Some(end) = (len as usize)
            .checked_add(at + FRAME_HEAD)
            .filter(|&crc_at| crc_at + FRAME_CRC <= bytes.len())
        else {
            return;
        };
        let crc = crc32c::crc32c(&bytes[at..end]);
        bytes[end..end + FRAME_CRC].copy_from_slice(&crc.to_be_bytes());
        at = end + FRAME_CRC;
    }
}

/// A deterministic note signer (not the fixture ledger's key: notes are fuzzed apart).
pub fn signer(name: &str, seed: u8) -> NoteSigner {
    NoteSigner::new(
        KeyName::new(name).expect("valid fuzz key name"),
        SigningKey::from_bytes(&[seed; 32]),
    )
}

/// The operator of the note fixtures.
pub fn note_operator() -> NoteSigner {
    signer("operator", 7)
}

/// The association cosigning in the note fixtures.
pub fn note_association() -> NoteSigner {
    signer("assoc-01", 9)
}

/// The fixture ledger's last signed checkpoint, re-signed by [`note_operator`] (its
/// text is the same; only the key differs) so the targets need no private file.
pub fn fixture_checkpoint() -> SignedCheckpoint {
    let checkpoint = lesson_ledger::log::note::Checkpoint::from_body(FIXTURE_CHECKPOINT_BODY)
        .expect("the fixture checkpoint body parses");
    SignedCheckpoint::sign(checkpoint, &note_operator())
}

/// The body of the fixture ledger's checkpoint of size 4.
pub const FIXTURE_CHECKPOINT_BODY: &str =
    "lessons.example/fuzz\n4\nqK4KDmn9Pv5hHK7TwwUHg9UabILeRCksaXg92Hb9uFI=\n";

/// The verifier of [`note_operator`].
pub fn note_operator_verifier() -> NoteVerifier {
    note_operator().verifier()
}

/// A real cosignature line of [`note_association`] on [`fixture_checkpoint`].
pub fn fixture_cosignature(time: u64) -> String {
    cosign(&fixture_checkpoint(), &note_association(), time).expect("time in range")
}

/// Seeds that need signatures, written once by hand into `fuzz/corpus/` (see
/// `fixtures/README.md`): `LEDGER_FUZZ_WRITE_SEEDS=fuzz/corpus cargo +nightly fuzz run
/// signed_note -- -runs=0` writes them and exits.
pub mod seeds {
    use std::path::Path;

    use lesson_ledger::log::state_note::StateNote;

    use super::*;

    /// Writes the signed seeds into `$LEDGER_FUZZ_WRITE_SEEDS/<target>/` and exits, if
    /// that variable is set; otherwise does nothing.
    pub fn write_if_asked() {
        let Some(root) = std::env::var_os("LEDGER_FUZZ_WRITE_SEEDS") else {
            return;
        };
        let root = Path::new(&root);
        let checkpoint = fixture_checkpoint();
        let line = fixture_cosignature(1_800_000_000);
        let mut cosigned = checkpoint.clone();
        cosigned
            .add_signature_lines(&line)
            .expect("one cosignature line");
        let state = StateNote {
            origin: "lessons.example/fuzz".into(),
            size: 4,
            root: [0x5a; 32],
        };
        let notes = [
            ("checkpoint", checkpoint.text()),
            ("cosigned-checkpoint", cosigned.text()),
            (
                "state-note",
                state.sign(&note_operator()).expect("state note signs"),
            ),
            ("checkpoint-body", FIXTURE_CHECKPOINT_BODY.to_owned()),
            ("vkey", note_operator().vkey()),
            ("cosignature-line", line.clone()),
        ];
        write(root, "signed_note", &notes);
        let body = |size: u64, cosignature: &str| {
            serde_json::json!({"party": "assoc-01", "size": size, "cosignature": cosignature})
                .to_string()
        };
        let bodies = [
            ("cosign", body(4, &line)),
            (
                "cosign-two-lines",
                body(4, &format!("{line}{}", fixture_cosignature(1))),
            ),
            ("cosign-old-size", body(3, &line)),
        ];
        write(root, "cosign_body", &bodies);
        std::process::exit(0);
    }

    fn write(root: &Path, target: &str, seeds: &[(&str, String)]) {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).expect("create corpus directory");
        for (name, text) in seeds {
            std::fs::write(dir.join(name), text).expect("write seed");
        }
    }
}

//! C2SP signed notes, checkpoints and cosignatures, read against the specs:
//! <https://c2sp.org/signed-note>, <https://c2sp.org/tlog-checkpoint>,
//! <https://c2sp.org/tlog-cosignature>, and the vectors of the Go reference
//! implementation (`golang.org/x/mod/sumdb/note`) in `tests/data/note/`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use lesson_ledger::limits::{CHECKPOINT_BYTES_MAX, ORIGIN_BYTES_MAX};
use lesson_ledger::log::hash::{leaf_hash, Hash};
use lesson_ledger::log::note::{
    cosign, sign_note, verify_cosignature, Checkpoint, CosignerKey, KeyId, KeyName, Note,
    NoteError, NoteSigner, NoteVerifier, Origin, SignedCheckpoint, NOTE_SIGNATURES_MAX,
};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

const PETER_NOTE: &str = include_str!("data/note/go-sumdb-note-peter.note");
const PETER_ENOCH_NOTE: &str = include_str!("data/note/go-sumdb-note-peter-enoch.note");
const PETER_VKEY: &str = include_str!("data/note/peter.vkey");
const PETER_SKEY: &str = include_str!("data/note/peter.skey");
const ENOCH_VKEY: &str = include_str!("data/note/enoch.vkey");
const GO_TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                       then you don't know what your problem is.\n";

/// A witness key of type 0x04, from transparency-dev/formats `note/note_cosigv1_test.go`.
const REMORA_COSIGNER_VKEY: &str =
    "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2";

fn peter_vkey() -> &'static str {
    PETER_VKEY.trim_end()
}

fn peter() -> NoteVerifier {
    NoteVerifier::from_vkey(peter_vkey()).unwrap()
}

/// Go's signer key text is `PRIVATE+KEY+<name>+<key id>+base64(0x01 ‖ seed)`.
fn peter_signer() -> NoteSigner {
    let b64 = PETER_SKEY.trim_end().splitn(5, '+').nth(4).unwrap();
    let raw = STANDARD.decode(b64).unwrap();
    assert_eq!(raw[0], 0x01);
    let seed: [u8; 32] = raw[1..].try_into().unwrap();
    NoteSigner::new(
        KeyName::new("PeterNeumann").unwrap(),
        SigningKey::from_bytes(&seed),
    )
}

fn signer(name: &str, seed: u8) -> NoteSigner {
    NoteSigner::new(
        KeyName::new(name).unwrap(),
        SigningKey::from_bytes(&[seed; 32]),
    )
}

fn code<T: std::fmt::Debug>(result: Result<T, NoteError>) -> &'static str {
    result.unwrap_err().code()
}

fn checkpoint(size: u64) -> Checkpoint {
    Checkpoint {
        origin: Origin::new("ledger.example/log").unwrap(),
        size,
        root: leaf_hash(&size.to_be_bytes()),
    }
}

/// Replaces the base64 of the first signature line by `b64`.
fn with_signature(note: &str, b64: &str) -> String {
    let (head, line) = note.split_once("\n\n").unwrap();
    let (name, _) = line.rsplit_once(' ').unwrap();
    format!("{head}\n\n{name} {b64}\n")
}

// ----- Known answers --------------------------------------------------------------

#[test]
fn go_reference_note_verifies_with_its_vkey() {
    let note = Note::parse(PETER_NOTE.as_bytes()).unwrap();
    note.verify(&peter()).unwrap();
    assert_eq!(note.text(), GO_TEXT);
    assert_eq!(note.signatures().len(), 1);
    assert_eq!(note.signatures()[0].name().as_str(), "PeterNeumann");
    assert_eq!(note.signatures()[0].key_id().to_string(), "c74f20a3");
    assert_eq!(note.to_text(), PETER_NOTE);
}

#[test]
fn go_reference_vkeys_round_trip() {
    for vkey in [peter_vkey(), ENOCH_VKEY.trim_end()] {
        assert_eq!(NoteVerifier::from_vkey(vkey).unwrap().to_vkey(), vkey);
    }
    assert_eq!(
        peter().key_id(),
        KeyId::from_bytes([0xc7, 0x4f, 0x20, 0xa3])
    );
}

#[test]
fn signing_with_the_go_reference_key_gives_the_go_reference_note() {
    let peter = peter_signer();
    assert_eq!(peter.vkey(), peter_vkey());
    assert_eq!(sign_note(GO_TEXT, &peter).unwrap(), PETER_NOTE);
}

#[test]
fn enoch_key_is_the_zero_seed_and_its_cosigned_note_verifies() {
    // The Go examples generate EnochRoot's key from a reader of zeros.
    let enoch = signer("EnochRoot", 0);
    assert_eq!(enoch.vkey(), ENOCH_VKEY.trim_end());
    let both = Note::parse(PETER_ENOCH_NOTE.as_bytes()).unwrap();
    both.verify(&peter()).unwrap();
    both.verify(&enoch.verifier()).unwrap();

    // Adding Enoch's line to Peter's note gives the doubly-signed note, byte for byte.
    let mut note = Note::parse(PETER_NOTE.as_bytes()).unwrap();
    let enoch_line = PETER_ENOCH_NOTE.lines().last().unwrap().to_owned() + "\n";
    assert_eq!(note.add_signature_lines(&enoch_line), Ok(1));
    assert_eq!(note.to_text(), PETER_ENOCH_NOTE);
    // Merging is idempotent.
    assert_eq!(note.add_signature_lines(&enoch_line), Ok(0));
    assert_eq!(note.to_text(), PETER_ENOCH_NOTE);
}

#[test]
fn spec_note_with_a_blank_line_inside_the_text_splits_at_the_last_one() {
    // The example of c2sp.org/signed-note: "The note text MAY contain empty lines".
    let s = signer("quasimodo.example/salvatore", 3);
    let text = "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned è subito sera.\n";
    let signed = sign_note(text, &s).unwrap();
    let note = Note::parse(signed.as_bytes()).unwrap();
    assert_eq!(note.text(), text);
    note.verify(&s.verifier()).unwrap();
}

// ----- Verification ---------------------------------------------------------------

#[test]
fn unknown_signers_are_ignored() {
    // "Verifiers MUST ignore signatures from unknown keys": Enoch's line does not stop
    // Peter's verifier, and an unverifiable line by a stranger neither.
    let both = Note::parse(PETER_ENOCH_NOTE.as_bytes()).unwrap();
    both.verify(&peter()).unwrap();
    let stranger = format!("{PETER_NOTE}— stranger.example AAAAAAAA\n");
    Note::parse(stranger.as_bytes())
        .unwrap()
        .verify(&peter())
        .unwrap();
}

#[test]
fn a_note_with_no_known_signature_is_rejected() {
    let note = Note::parse(PETER_NOTE.as_bytes()).unwrap();
    let enoch = NoteVerifier::from_vkey(ENOCH_VKEY.trim_end()).unwrap();
    assert_eq!(code(note.verify(&enoch)), "no_known_signature");
}

#[test]
fn wrong_key_and_wrong_name_are_other_keys() {
    let note = Note::parse(PETER_NOTE.as_bytes()).unwrap();
    // Same name, another key: another key id, so the line is not this key's.
    let other_key = signer("PeterNeumann", 5).verifier();
    assert_eq!(code(note.verify(&other_key)), "no_known_signature");
    // Same key, another name: another key id as well.
    let renamed = NoteVerifier::new(
        KeyName::new("PeterNeumann2").unwrap(),
        *peter().verifying_key(),
    )
    .unwrap();
    assert_eq!(code(note.verify(&renamed)), "no_known_signature");
}

#[test]
fn a_failing_signature_of_a_known_key_rejects_the_note() {
    // Another valid Peter line whose signature is Enoch's: name and key id match the
    // known key, so it "MUST" be verified, and it fails.
    let enoch_sig = STANDARD
        .decode(
            PETER_ENOCH_NOTE
                .lines()
                .last()
                .unwrap()
                .rsplit_once(' ')
                .unwrap()
                .1,
        )
        .unwrap();
    let mut forged = vec![0xc7, 0x4f, 0x20, 0xa3];
    forged.extend_from_slice(&enoch_sig[4..]);
    let note = format!("{PETER_NOTE}— PeterNeumann {}\n", STANDARD.encode(forged));
    let note = Note::parse(note.as_bytes()).unwrap();
    assert_eq!(code(note.verify(&peter())), "bad_signature");
}

#[test]
fn every_flipped_bit_in_the_text_is_refused() {
    let bytes = PETER_NOTE.as_bytes();
    let text_len = GO_TEXT.len();
    for i in 0..text_len {
        for bit in 0..8 {
            let mut flipped = bytes.to_vec();
            flipped[i] ^= 1 << bit;
            let result = Note::parse(&flipped).and_then(|n| n.verify(&peter()));
            assert!(result.is_err(), "byte {i} bit {bit} accepted");
        }
    }
}

#[test]
fn every_flipped_bit_in_the_signature_is_refused() {
    let raw = STANDARD
        .decode(PETER_NOTE.trim_end().rsplit_once(' ').unwrap().1)
        .unwrap();
    for i in 0..raw.len() {
        for bit in 0..8 {
            let mut flipped = raw.clone();
            flipped[i] ^= 1 << bit;
            let note = with_signature(PETER_NOTE, &STANDARD.encode(&flipped));
            let parsed = Note::parse(note.as_bytes()).unwrap();
            let expected = if i < 4 {
                // A different key id: the line is no longer Peter's.
                "no_known_signature"
            } else {
                "bad_signature"
            };
            assert_eq!(
                code(parsed.verify(&peter())),
                expected,
                "byte {i} bit {bit}"
            );
        }
    }
}

#[test]
fn a_signature_of_the_wrong_length_is_bad() {
    let raw = STANDARD
        .decode(PETER_NOTE.trim_end().rsplit_once(' ').unwrap().1)
        .unwrap();
    for len in [5, 4 + 63, 4 + 65] {
        let mut changed = raw.clone();
        changed.resize(len, 0);
        let note = with_signature(PETER_NOTE, &STANDARD.encode(&changed));
        let parsed = Note::parse(note.as_bytes()).unwrap();
        assert_eq!(code(parsed.verify(&peter())), "bad_signature", "{len}");
    }
}

// ----- Parsing --------------------------------------------------------------------

#[test]
fn every_truncation_is_refused() {
    for len in 0..PETER_NOTE.len() {
        let result = Note::parse(&PETER_NOTE.as_bytes()[..len]).and_then(|n| n.verify(&peter()));
        assert!(result.is_err(), "prefix of {len} bytes accepted");
    }
}

#[test]
fn extensions_are_refused_or_ignored_as_the_spec_says() {
    // Bytes after the last line that do not make a line.
    let junk = format!("{PETER_NOTE}junk");
    assert_eq!(
        code(Note::parse(junk.as_bytes())),
        "malformed_signature_line"
    );
    // A blank line after the signatures makes them text, leaving no signature block.
    let blank = format!("{PETER_NOTE}\n");
    assert_eq!(
        code(Note::parse(blank.as_bytes())),
        "note_missing_signatures"
    );
    // A line that is not a signature line.
    let plain = format!("{PETER_NOTE}not a signature\n");
    assert_eq!(
        code(Note::parse(plain.as_bytes())),
        "malformed_signature_line"
    );
}

#[test]
fn missing_blank_line_is_refused() {
    let no_blank = PETER_NOTE.replacen("\n\n", "\n", 1);
    assert_eq!(
        code(Note::parse(no_blank.as_bytes())),
        "note_missing_signatures"
    );
    let no_signatures = GO_TEXT.to_owned() + "\n";
    assert_eq!(
        code(Note::parse(no_signatures.as_bytes())),
        "note_missing_signatures"
    );
    assert_eq!(code(Note::parse(b"")), "note_missing_signatures");
}

#[test]
fn oversize_is_refused_before_parsing() {
    let mut big = vec![0xff_u8; CHECKPOINT_BYTES_MAX + 1];
    assert_eq!(
        Note::parse(&big),
        Err(NoteError::TooLarge {
            len: CHECKPOINT_BYTES_MAX + 1,
            max: CHECKPOINT_BYTES_MAX
        })
    );
    // At the cap, the same bytes get as far as the UTF-8 check.
    big.truncate(CHECKPOINT_BYTES_MAX);
    assert_eq!(code(Note::parse(&big)), "note_not_utf8");
}

#[test]
fn non_utf8_and_control_characters_are_refused() {
    let mut bytes = PETER_NOTE.as_bytes().to_vec();
    bytes[3] = 0xc3; // a lead byte followed by ASCII
    assert_eq!(Note::parse(&bytes), Err(NoteError::NotUtf8 { offset: 3 }));
    for control in ["\r", "\t", "\0", "\u{1b}"] {
        let note = PETER_NOTE.replacen(' ', control, 1);
        assert_eq!(
            code(Note::parse(note.as_bytes())),
            "note_control_character",
            "{control:?}"
        );
    }
}

#[test]
fn malformed_signature_lines_are_refused() {
    let sig = PETER_NOTE.trim_end().rsplit_once(' ').unwrap().1;
    let cases = [
        // Hyphen instead of em dash.
        format!("- PeterNeumann {sig}"),
        // No space after the em dash.
        format!("\u{2014}PeterNeumann {sig}"),
        // No signature.
        "\u{2014} PeterNeumann".to_owned(),
        "\u{2014} PeterNeumann ".to_owned(),
        // Two spaces.
        format!("\u{2014} PeterNeumann  {sig}"),
        // Invalid name.
        format!("\u{2014} Peter+Neumann {sig}"),
        format!("\u{2014}  {sig}"),
        // Bad base64: missing padding, URL-safe alphabet, stray bits, junk.
        format!("\u{2014} PeterNeumann {}", sig.trim_end_matches('=')),
        format!(
            "\u{2014} PeterNeumann {}",
            sig.replace('+', "-").replace('/', "_")
        ),
        "\u{2014} PeterNeumann AAAAAAB=".to_owned(),
        "\u{2014} PeterNeumann !!!!".to_owned(),
        // Too short to hold a key id and a signature.
        format!("\u{2014} PeterNeumann {}", STANDARD.encode([1, 2, 3, 4])),
    ];
    for line in cases {
        let note = format!("{GO_TEXT}\n{line}\n");
        assert_eq!(
            code(Note::parse(note.as_bytes())),
            "malformed_signature_line",
            "{line:?}"
        );
    }
}

#[test]
fn too_many_and_duplicate_signature_lines_are_refused() {
    let lines: String = (0..=NOTE_SIGNATURES_MAX)
        .map(|i| format!("\u{2014} w{i} AAAAAAA=\n"))
        .collect();
    let note = format!("{GO_TEXT}\n{lines}");
    assert_eq!(
        Note::parse(note.as_bytes()),
        Err(NoteError::TooManySignatures {
            count: NOTE_SIGNATURES_MAX + 1,
            max: NOTE_SIGNATURES_MAX
        })
    );
    let at_cap: String = (0..NOTE_SIGNATURES_MAX)
        .map(|i| format!("\u{2014} w{i} AAAAAAA=\n"))
        .collect();
    assert!(Note::parse(format!("{GO_TEXT}\n{at_cap}").as_bytes()).is_ok());

    let last_line = PETER_NOTE.lines().last().unwrap();
    let twice = format!("{PETER_NOTE}{last_line}\n");
    assert_eq!(
        Note::parse(twice.as_bytes()),
        Err(NoteError::DuplicateSignature { line: 2 })
    );
}

#[test]
fn sign_note_refuses_text_it_could_not_parse_back() {
    let s = signer("operator", 1);
    assert_eq!(code(sign_note("", &s)), "invalid_note_text");
    assert_eq!(code(sign_note("no newline", &s)), "invalid_note_text");
    assert_eq!(code(sign_note("tab\there\n", &s)), "note_control_character");
    let big = "a".repeat(CHECKPOINT_BYTES_MAX) + "\n";
    assert_eq!(code(sign_note(&big, &s)), "note_too_large");
}

#[test]
fn sign_parse_verify_round_trips_on_seeded_random_texts() {
    let seed = 0x5eed_0001;
    let mut rng = StdRng::seed_from_u64(seed);
    let alphabet: Vec<char> = "abc XYZ019/+=-—é文\n".chars().collect();
    let s = signer("operator", 2);
    for case in 0..256 {
        let len = rng.gen_range(0..200);
        let mut text: String = (0..len)
            .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
            .collect();
        text.push('\n');
        let signed = sign_note(&text, &s).unwrap();
        let note = Note::parse(signed.as_bytes())
            .unwrap_or_else(|e| panic!("seed {seed:#x} case {case}: {e}"));
        assert_eq!(note.text(), text, "seed {seed:#x} case {case}");
        assert_eq!(note.to_text(), signed, "seed {seed:#x} case {case}");
        note.verify(&s.verifier())
            .unwrap_or_else(|e| panic!("seed {seed:#x} case {case}: {e}"));
    }
}

// ----- Verifier keys --------------------------------------------------------------

/// A vkey with a correct key id for arbitrary key material.
fn vkey_with(name: &str, key_type: u8, key: &[u8]) -> String {
    let name = KeyName::new(name).unwrap();
    let id = KeyId::compute(&name, key_type, key);
    let mut raw = vec![key_type];
    raw.extend_from_slice(key);
    format!("{name}+{id}+{}", STANDARD.encode(raw))
}

#[test]
fn vkey_errors() {
    let key = *peter().verifying_key().as_bytes();
    let cases: Vec<(String, &str)> = vec![
        ("PeterNeumann+c74f20a3".into(), "malformed_vkey"),
        ("PeterNeumann".into(), "malformed_vkey"),
        (
            peter_vkey().replace("c74f20a3", "C74F20A3"),
            "malformed_vkey",
        ),
        (
            peter_vkey().replace("c74f20a3", "c74f20a"),
            "malformed_vkey",
        ),
        (
            peter_vkey().replace("c74f20a3", "00000000"),
            "key_id_mismatch",
        ),
        (
            peter_vkey().replace("PeterNeumann", "PeterNeumanm"),
            "key_id_mismatch",
        ),
        (
            peter_vkey().trim_end_matches('W').to_owned(),
            "malformed_vkey",
        ),
        (peter_vkey().replace('/', "_"), "malformed_vkey"),
        ("+c74f20a3+ARpc".into(), "invalid_key_name"),
        (format!("{}+", peter_vkey()), "malformed_vkey"),
        (
            vkey_with("PeterNeumann", 0x04, &key),
            "unsupported_key_type",
        ),
        (
            vkey_with("PeterNeumann", 0x02, &key),
            "unsupported_key_type",
        ),
        (
            vkey_with("PeterNeumann", 0x01, &key[..31]),
            "malformed_vkey",
        ),
        (
            vkey_with("PeterNeumann", 0x01, &[key.as_slice(), &[0]].concat()),
            "malformed_vkey",
        ),
        (vkey_with("PeterNeumann", 0x01, &[]), "malformed_vkey"),
        ("a".repeat(300), "malformed_vkey"),
    ];
    for (vkey, expected) in cases {
        assert_eq!(code(NoteVerifier::from_vkey(&vkey)), expected, "{vkey}");
    }
    assert_eq!(
        code(NoteVerifier::from_vkey("PeterNeumann++")),
        "malformed_vkey"
    );
}

#[test]
fn vkey_of_a_small_order_point_is_refused() {
    // The identity point, y = 1: every signature with R = identity and S = 0 "verifies"
    // under it with the lax equation.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let vkey = vkey_with("weak", 0x01, &identity);
    assert_eq!(code(NoteVerifier::from_vkey(&vkey)), "weak_key");
    let key = VerifyingKey::from_bytes(&identity).unwrap();
    assert_eq!(
        code(NoteVerifier::new(KeyName::new("weak").unwrap(), key)),
        "weak_key"
    );
    assert_eq!(
        code(CosignerKey::new(KeyName::new("weak").unwrap(), key)),
        "weak_key"
    );
}

#[test]
fn vkey_that_is_not_a_curve_point_is_refused() {
    let not_a_point = (0..=255u8)
        .map(|b| [b; 32])
        .find(|bytes| VerifyingKey::from_bytes(bytes).is_err())
        .unwrap();
    let vkey = vkey_with("nowhere", 0x01, &not_a_point);
    assert_eq!(code(NoteVerifier::from_vkey(&vkey)), "malformed_vkey");
}

// ----- Checkpoints ----------------------------------------------------------------

#[test]
fn checkpoint_body_is_the_spec_format() {
    // The example of c2sp.org/tlog-checkpoint.
    let body =
        "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
    let parsed = Checkpoint::from_body(body).unwrap();
    assert_eq!(parsed.origin.as_str(), "example.com/behind-the-sofa");
    assert_eq!(parsed.size, 20852163);
    assert_eq!(parsed.to_body(), body);
    let empty = Checkpoint {
        origin: Origin::new("o").unwrap(),
        size: 0,
        root: Hash::empty_root(),
    };
    assert_eq!(
        empty.to_body(),
        "o\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"
    );
    assert_eq!(Checkpoint::from_body(&empty.to_body()), Ok(empty));
}

#[test]
fn checkpoint_body_errors() {
    let root = leaf_hash(b"x").to_base64();
    let cases: Vec<(String, &str)> = vec![
        (format!("o\n007\n{root}\n"), "invalid_tree_size"),
        (format!("o\n00\n{root}\n"), "invalid_tree_size"),
        (format!("o\n-1\n{root}\n"), "invalid_tree_size"),
        (format!("o\n+1\n{root}\n"), "invalid_tree_size"),
        (format!("o\n1.0\n{root}\n"), "invalid_tree_size"),
        (
            format!("o\n18446744073709551616\n{root}\n"),
            "invalid_tree_size",
        ),
        (format!("o\n 1\n{root}\n"), "invalid_tree_size"),
        (
            format!("o\n1\n{root}\nextension\n"),
            "checkpoint_extension_lines",
        ),
        (format!("o\n1\n{root}"), "malformed_checkpoint"),
        (format!("o\n1\n{root}\n\n"), "malformed_checkpoint"),
        ("o\n1\n".to_owned(), "malformed_checkpoint"),
        (format!("\n1\n{root}\n"), "malformed_checkpoint"),
        (
            format!("o\n1\n{}\n", root.trim_end_matches('=')),
            "invalid_root_hash",
        ),
        (
            format!("o\n1\n{}\n", STANDARD.encode([0u8; 31])),
            "invalid_root_hash",
        ),
        (
            format!("o\n1\n{}\n", STANDARD.encode([0u8; 33])),
            "invalid_root_hash",
        ),
        // Stray bits in the last character: decodes to the same bytes elsewhere.
        (
            "o\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB=\n".to_owned(),
            "invalid_root_hash",
        ),
        (
            format!("o\n1\n{}\n", root.replace('+', "-").replace('/', "_")),
            "invalid_root_hash",
        ),
        (
            format!("{}\n1\n{root}\n", "o".repeat(ORIGIN_BYTES_MAX + 1)),
            "invalid_origin",
        ),
    ];
    for (body, expected) in cases {
        assert_eq!(code(Checkpoint::from_body(&body)), expected, "{body:?}");
    }
    assert_eq!(
        Checkpoint::from_body(&format!("o\n18446744073709551615\n{root}\n"))
            .unwrap()
            .size,
        u64::MAX
    );
}

#[test]
fn origin_is_validated() {
    assert!(Origin::new("o".repeat(ORIGIN_BYTES_MAX)).is_ok());
    for bad in [
        String::new(),
        "o".repeat(ORIGIN_BYTES_MAX + 1),
        "a\nb".into(),
        "a\rb".into(),
    ] {
        assert_eq!(code(Origin::new(bad.clone())), "invalid_origin", "{bad:?}");
    }
}

#[test]
fn signed_checkpoint_round_trip() {
    let log = signer("ledger.example/log", 4);
    let signed = SignedCheckpoint::sign(checkpoint(42), &log);
    let text = signed.text();
    assert!(text.starts_with(&checkpoint(42).to_body()));
    let parsed = SignedCheckpoint::parse_and_verify(text.as_bytes(), &log.verifier()).unwrap();
    assert_eq!(parsed, signed);
    assert_eq!(parsed.text(), text);
    assert_eq!(parsed.checkpoint().size, 42);
}

#[test]
fn signed_checkpoint_refuses_wrong_key_and_tampering() {
    let log = signer("ledger.example/log", 4);
    let text = SignedCheckpoint::sign(checkpoint(42), &log).text();
    let impostor = signer("ledger.example/log", 5);
    assert_eq!(
        code(SignedCheckpoint::parse_and_verify(
            text.as_bytes(),
            &impostor.verifier()
        )),
        "no_known_signature"
    );
    let bigger = text.replacen("\n42\n", "\n43\n", 1);
    assert_eq!(
        code(SignedCheckpoint::parse_and_verify(
            bigger.as_bytes(),
            &log.verifier()
        )),
        "bad_signature"
    );
}

#[test]
fn a_signed_note_that_is_not_a_checkpoint_is_refused_after_verification() {
    let log = signer("ledger.example/log", 4);
    let note = sign_note("ledger.example/log\n007\nAAAA\n", &log).unwrap();
    assert_eq!(
        code(SignedCheckpoint::parse_and_verify(
            note.as_bytes(),
            &log.verifier()
        )),
        "invalid_tree_size"
    );
}

// ----- Cosignatures ---------------------------------------------------------------

#[test]
fn cosignature_round_trip() {
    let log = signer("ledger.example/log", 4);
    let witness = signer("witness.example/w1", 6);
    let mut signed = SignedCheckpoint::sign(checkpoint(7), &log);
    let time = 1_679_315_147;
    let line = cosign(&signed, &witness, time).unwrap();
    assert!(line.starts_with("\u{2014} witness.example/w1 "));
    assert_eq!(signed.add_signature_lines(&line), Ok(1));

    // The witness's line travels with the note and survives a parse.
    let parsed =
        SignedCheckpoint::parse_and_verify(signed.text().as_bytes(), &log.verifier()).unwrap();
    assert_eq!(
        verify_cosignature(&parsed, &witness.cosigner_key()),
        Ok(time)
    );

    // The line is base64(key id ‖ timestamp ‖ signature) over the spec's message.
    let raw = STANDARD
        .decode(line.trim_end().rsplit_once(' ').unwrap().1)
        .unwrap();
    assert_eq!(raw.len(), 4 + 8 + 64);
    assert_eq!(&raw[..4], witness.cosigner_key().key_id().as_bytes());
    assert_eq!(raw[4..12], time.to_be_bytes());
    let message = format!("cosignature/v1\ntime {time}\n{}", checkpoint(7).to_body());
    let sig = Signature::from_slice(&raw[12..]).unwrap();
    witness
        .verifying_key()
        .verify_strict(message.as_bytes(), &sig)
        .unwrap();
}

#[test]
fn cosignature_key_id_uses_type_4() {
    let witness = signer("witness.example/w1", 6);
    let key = witness.cosigner_key();
    assert_ne!(key.key_id(), witness.key_id());
    assert_eq!(
        key.key_id(),
        KeyId::compute(witness.name(), 0x04, witness.verifying_key().as_bytes())
    );
    assert_eq!(CosignerKey::from_vkey(&key.to_vkey()), Ok(key.clone()));
    // A cosigner vkey is not a note vkey, and the other way round.
    assert_eq!(
        code(NoteVerifier::from_vkey(&key.to_vkey())),
        "unsupported_key_type"
    );
    assert_eq!(
        code(CosignerKey::from_vkey(&witness.vkey())),
        "unsupported_key_type"
    );
}

#[test]
fn published_cosigner_vkey_parses() {
    // transparency-dev/formats: a native type-0x04 witness key.
    let key = CosignerKey::from_vkey(REMORA_COSIGNER_VKEY).unwrap();
    assert_eq!(key.name().as_str(), "remora.n621.de");
    assert_eq!(key.key_id().to_string(), "da77ade7");
    assert_eq!(key.to_vkey(), REMORA_COSIGNER_VKEY);
}

#[test]
fn cosignature_errors() {
    let log = signer("ledger.example/log", 4);
    let witness = signer("witness.example/w1", 6);
    let signed = SignedCheckpoint::sign(checkpoint(7), &log);

    // Timestamps past 2^63 - 1 are not signed.
    assert_eq!(
        cosign(&signed, &witness, 1 << 63),
        Err(NoteError::TimestampOutOfRange { time: 1 << 63 })
    );
    assert!(cosign(&signed, &witness, (1 << 63) - 1).is_ok());

    // No line by this witness.
    assert_eq!(
        code(verify_cosignature(&signed, &witness.cosigner_key())),
        "no_known_signature"
    );

    // The log's own key does not verify as a cosigner, nor a cosignature as a note sig.
    let mut cosigned = signed.clone();
    cosigned
        .add_signature_lines(&cosign(&signed, &witness, 10).unwrap())
        .unwrap();
    assert_eq!(
        code(verify_cosignature(&cosigned, &log.cosigner_key())),
        "no_known_signature"
    );
    assert_eq!(
        code(cosigned.note().verify(&witness.verifier())),
        "no_known_signature"
    );

    // A cosignature over another checkpoint does not verify on this one.
    let other = SignedCheckpoint::sign(checkpoint(8), &log);
    let mut moved = signed.clone();
    moved
        .add_signature_lines(&cosign(&other, &witness, 10).unwrap())
        .unwrap();
    assert_eq!(
        code(verify_cosignature(&moved, &witness.cosigner_key())),
        "bad_signature"
    );
}

#[test]
fn every_flipped_bit_of_a_cosignature_is_refused() {
    let log = signer("ledger.example/log", 4);
    let witness = signer("witness.example/w1", 6);
    let signed = SignedCheckpoint::sign(checkpoint(7), &log);
    let line = cosign(&signed, &witness, 1_700_000_000).unwrap();
    let (prefix, b64) = line.trim_end().rsplit_once(' ').unwrap();
    let raw = STANDARD.decode(b64).unwrap();
    for i in 0..raw.len() {
        for bit in 0..8 {
            let mut flipped = raw.clone();
            flipped[i] ^= 1 << bit;
            let mut note = signed.clone();
            note.add_signature_lines(&format!("{prefix} {}\n", STANDARD.encode(&flipped)))
                .unwrap();
            let result = verify_cosignature(&note, &witness.cosigner_key());
            let expected = match (i, bit) {
                (0..=3, _) => "no_known_signature",
                // The top bit of the timestamp makes it pass 2^63 - 1.
                (4, 7) => "timestamp_out_of_range",
                _ => "bad_signature",
            };
            assert_eq!(code(result), expected, "byte {i} bit {bit}");
        }
    }
    // Truncated and extended cosignatures of the known key are bad.
    for len in [4 + 8, 4 + 8 + 63, 4 + 8 + 65] {
        let mut changed = raw.clone();
        changed.resize(len, 0);
        let mut note = signed.clone();
        note.add_signature_lines(&format!("{prefix} {}\n", STANDARD.encode(&changed)))
            .unwrap();
        assert_eq!(
            code(verify_cosignature(&note, &witness.cosigner_key())),
            "bad_signature",
            "{len}"
        );
    }
}

#[test]
fn add_signature_lines_is_all_or_nothing() {
    let log = signer("ledger.example/log", 4);
    let mut signed = SignedCheckpoint::sign(checkpoint(7), &log);
    let before = signed.clone();
    let good = cosign(&signed, &signer("w1", 6), 1).unwrap();
    for bad in [
        format!("{good}junk\n"),
        good.trim_end().to_owned(),
        String::new(),
        format!("{good}\n"),
        "\u{2014} w2 AAAAAAA=\r\n".to_owned(),
    ] {
        assert!(signed.add_signature_lines(&bad).is_err(), "{bad:?}");
        assert_eq!(signed, before);
    }
    let many: String = (0..NOTE_SIGNATURES_MAX)
        .map(|i| format!("\u{2014} w{i} AAAAAAA=\n"))
        .collect();
    assert_eq!(
        code(signed.add_signature_lines(&many)),
        "too_many_signatures"
    );
    assert_eq!(signed, before);
}

#[test]
fn when_two_lines_match_the_verifiers_key_both_must_verify() {
    // A line of the key with a signature that fails, before or after a good one: the
    // note is refused, not accepted on the strength of the good line.
    let s = signer("ledger.example/log", 3);
    let good = sign_note(GO_TEXT, &s).unwrap();
    let good_line = good.lines().last().unwrap();
    let (name, b64) = good_line.rsplit_once(' ').unwrap();
    let mut raw = STANDARD.decode(b64).unwrap();
    let last = raw.len() - 1;
    raw[last] ^= 1;
    let bad_line = format!("{name} {}", STANDARD.encode(&raw));
    for lines in [
        format!("{good_line}\n{bad_line}\n"),
        format!("{bad_line}\n{good_line}\n"),
    ] {
        let note = Note::parse(format!("{GO_TEXT}\n{lines}").as_bytes()).unwrap();
        assert_eq!(code(note.verify(&s.verifier())), "bad_signature", "{lines}");
    }
}

/// `name+keyid+base64(0x01 || key)` computed from the spec, for any 32 key bytes.
fn vkey_of_bytes(name: &str, key: &[u8; 32]) -> String {
    let name = KeyName::new(name).unwrap();
    let id = lesson_ledger::log::note::KeyId::compute(&name, 0x01, key);
    let mut raw = vec![0x01];
    raw.extend_from_slice(key);
    format!("{name}+{id}+{}", STANDARD.encode(raw))
}

#[test]
fn a_verifier_key_whose_point_is_not_canonically_encoded_is_refused() {
    // y = p + 3, a y at or above p = 2^255 - 19: RFC 8032 §5.1.3 says decoding fails. The
    // point (y = 3) is on the curve and not of small order, so only this rule refuses it.
    let mut y = [0xffu8; 32];
    y[31] = 0x7f;
    y[0] = 0xed + 3;
    let point = VerifyingKey::from_bytes(&y).expect("the lax decoder takes it");
    assert!(!point.is_weak());
    let vkey = vkey_of_bytes("ledger.example/log", &y);
    assert_eq!(code(NoteVerifier::from_vkey(&vkey)), "malformed_vkey");
    // The canonical encoding of the same point is a well-formed key.
    let canonical = point.to_edwards().compress().to_bytes();
    assert_ne!(canonical, y);
    NoteVerifier::from_vkey(&vkey_of_bytes("ledger.example/log", &canonical)).unwrap();
}

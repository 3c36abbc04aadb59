//! Shared helpers for the integration tests: real keys (seeded), real envelopes, real
//! log directories in temporary folders.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use lesson_ledger::log::envelope::{Envelope, KeyCache, VerifiedEnvelope};
use lesson_ledger::log::note::{KeyName, NoteSigner};
use lesson_ledger::log::store::{EntryIdOnly, Log};

pub const PAYLOAD_TYPE: &str = "application/vnd.lesson-ledger.test+json";

/// The origin of every test ledger that takes entries through [`ledger_entry`]: entries
/// name their ledger (`ledger`), and the helpers fill in this one.
pub const TEST_ORIGIN: &str = "lessons.example/test";

/// The consumer association every test ledger's genesis declares ([`test_genesis`]).
pub const TEST_ASSOCIATION: &str = "assoc-01";

/// The test association's signer (seed 9, as `vkey("assoc-01", 9)` in the rules tests).
pub fn test_association() -> NoteSigner {
    signer(TEST_ASSOCIATION, 9)
}

/// The default genesis of a test ledger: origin [`TEST_ORIGIN`], operator `operator`
/// with `operator`'s key, declaring [`TEST_ASSOCIATION`].
pub fn test_genesis_payload(operator: &NoteSigner) -> lesson_ledger::ledger::payload::Genesis {
    let mut genesis =
        lesson_ledger::ledger::defaults::genesis(TEST_ORIGIN, "operator", &operator.vkey());
    genesis.associations = vec![lesson_ledger::ledger::payload::DeclaredAssociation {
        party: TEST_ASSOCIATION.into(),
        key: test_association().vkey(),
    }];
    genesis
}

/// [`test_genesis_payload`] signed by the operator and the association, as the rules
/// require.
pub fn test_genesis(operator: &NoteSigner) -> Envelope {
    Envelope::sign(
        lesson_ledger::ledger::PAYLOAD_TYPE,
        &lesson_ledger::ledger::defaults::genesis_payload(&test_genesis_payload(operator)),
        &[operator, &test_association()],
    )
    .expect("signable")
}

/// Writes the test association's key as `keygen` would (`<dir>/assoc-01.key`, `.pub`)
/// and returns the prefix, for `lesson-ledger init --association <prefix>`.
pub fn write_test_association(dir: &Path) -> std::path::PathBuf {
    let prefix = dir.join(TEST_ASSOCIATION);
    let key = SigningKey::from_bytes(&[9; 32]);
    lesson_ledger::log::keyfile::write_private_pem(&prefix.with_extension("key"), &key)
        .expect("write the association key");
    std::fs::write(
        prefix.with_extension("pub"),
        format!("{}\n", test_association().vkey()),
    )
    .expect("write the association verifier key");
    prefix
}

/// The kinds whose rules want a consumer association's co-signature (an
/// `allocation_made` only when made by hand, without `run`).
fn needs_association(payload: &serde_json::Value) -> bool {
    match payload.get("kind").and_then(serde_json::Value::as_str) {
        Some("party_registered" | "claim_recorded") => true,
        Some("allocation_made") => payload.get("run").is_none(),
        _ => false,
    }
}

/// A deterministic signer: the same seed gives the same key in every run.
pub fn signer(name: &str, seed: u8) -> NoteSigner {
    NoteSigner::new(
        KeyName::new(name).expect("valid test key name"),
        SigningKey::from_bytes(&[seed; 32]),
    )
}

/// A signed envelope whose payload is `{"id":"<id>","n":<n>}`.
pub fn envelope(signers: &[&NoteSigner], id: &str, n: u64) -> Envelope {
    let payload = format!("{{\"id\":\"{id}\",\"n\":{n}}}");
    Envelope::sign(PAYLOAD_TYPE, payload.as_bytes(), signers).expect("signable")
}

pub fn verified(envelope: Envelope) -> VerifiedEnvelope {
    envelope
        .verify(&KeyCache::self_certifying())
        .expect("test envelope verifies")
}

/// A new raw log (no rules above) in `dir`.
pub fn new_log(dir: &Path) -> Log {
    Log::create(
        dir,
        "lessons.example/test",
        "operator",
        Box::new(EntryIdOnly),
    )
    .expect("create log")
}

pub fn reopen(dir: &Path) -> Log {
    Log::open(dir, Box::new(EntryIdOnly)).expect("reopen log").0
}

/// A ledger entry (payload type of the rules) signed by `signers`, for a ledger of origin
/// [`TEST_ORIGIN`] whose genesis is [`test_genesis`]. What every payload of format v2
/// needs is added when the test left it out: `ledger` (= [`TEST_ORIGIN`]), and the test
/// association's signature on the kinds that need one when no `assoc-` signer is given.
pub fn ledger_entry(signers: &[&NoteSigner], payload: &serde_json::Value) -> Envelope {
    let mut payload = payload.clone();
    if let Some(map) = payload.as_object_mut() {
        map.entry("ledger").or_insert_with(|| TEST_ORIGIN.into());
    }
    let association = test_association();
    let mut all: Vec<&NoteSigner> = signers.to_vec();
    let has_association = signers
        .iter()
        .any(|s| s.name().as_str().starts_with("assoc-"));
    if needs_association(&payload) && !has_association {
        all.push(&association);
    }
    Envelope::sign(
        lesson_ledger::ledger::PAYLOAD_TYPE,
        payload.to_string().as_bytes(),
        &all,
    )
    .expect("signable")
}

/// A deterministic key for party number `n` (a seed no test uses otherwise).
pub fn party_signer(name: &str, n: u64) -> NoteSigner {
    let seed = *blake3::hash(format!("party-key-{n}").as_bytes()).as_bytes();
    NoteSigner::new(
        KeyName::new(name).expect("valid test key name"),
        SigningKey::from_bytes(&seed),
    )
}

/// The operator of a ledger made by `lesson-ledger init` (its key is in the data dir),
/// under the key name the ledger gave it (`log.json`): the origin for new ledgers,
/// whatever the ledger was created with otherwise.
pub fn operator_of(data: &Path) -> NoteSigner {
    let key = lesson_ledger::log::keyfile::read_private_pem(&data.join("operator.key"))
        .expect("operator key");
    let config = lesson_ledger::log::store::read_config(data).expect("log.json");
    let verifier = lesson_ledger::log::note::NoteVerifier::from_vkey(&config.operator_vkey)
        .expect("the operator verifier key");
    let signer = NoteSigner::new(verifier.name().clone(), key);
    assert_eq!(
        signer.vkey(),
        config.operator_vkey,
        "operator.key matches log.json"
    );
    signer
}

/// `party_registered` for institution `inst-<n>`, signed by the operator and the new key.
pub fn register_institution(operator: &NoteSigner, n: u64) -> Envelope {
    let name = format!("inst-{n:05}");
    let key = party_signer(&name, n);
    let payload = serde_json::json!({
        "kind": "party_registered", "id": format!("reg-{name}"), "party": name,
        "role": "institution", "key": key.vkey(),
    });
    ledger_entry(&[operator, &key], &payload)
}

/// A C2SP verifier key for `name` with a key derived from `seed`, computed here from the
/// spec (key id = first 4 bytes of SHA-256(name || 0x0A || 0x01 || key)), not by the
/// library, so the rules tests do not take the library's encoding on trust.
pub fn vkey(name: &str, seed: u8) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    let sk = SigningKey::from_bytes(&[seed; 32]);
    let mut raw = vec![0x01u8];
    raw.extend_from_slice(sk.verifying_key().as_bytes());
    let mut h = sha2::Sha256::new();
    h.update(name.as_bytes());
    h.update([0x0A]);
    h.update(&raw);
    let id: String = h.finalize()[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!(
        "{name}+{id}+{}",
        base64::engine::general_purpose::STANDARD.encode(&raw)
    )
}

/// A path as a command-line argument (test paths are UTF-8).
pub fn path_arg(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// A finished command's exit status, stdout and stderr, for an assertion's message.
pub fn output_text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Longest a child process may take to say it is listening.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Waits until `log` holds a line starting with `prefix` (what a child prints once it
/// listens) and returns the rest of that line; panics if the child exits first or
/// [`START_TIMEOUT`] passes.
pub fn wait_for_line(child: &mut Child, log: &Path, prefix: &str) -> String {
    let started = Instant::now();
    loop {
        let said = fs::read_to_string(log).unwrap_or_default();
        // Whole lines only: stderr is unbuffered, so a line may be read half written.
        let mut whole = said.split_inclusive('\n').filter(|l| l.ends_with('\n'));
        if let Some(rest) = whole.find_map(|l| l.strip_prefix(prefix)) {
            return rest.trim().to_owned();
        }
        if let Some(status) = child.try_wait().expect("poll") {
            panic!("exited with {status} before {prefix:?}:\n{said}");
        }
        assert!(started.elapsed() < START_TIMEOUT, "no {prefix:?} in {said}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `lesson-ledger serve --data DATA` as a process on a loopback port (its stderr in
/// `DATA.serve.log`); killed when dropped.
pub struct Served {
    child: Child,
    /// `http://ADDR`, as the server printed it.
    pub url: String,
}

impl Served {
    /// Starts the server and waits until it listens.
    pub fn start(data: &Path) -> Served {
        let log = data.with_extension("serve.log");
        let child = Command::new(env!("CARGO_BIN_EXE_lesson-ledger"))
            .args(["serve", "--data", path_arg(data), "--addr", "127.0.0.1:0"])
            .stdout(Stdio::null())
            .stderr(File::create(&log).expect("server log"))
            .spawn()
            .expect("spawn serve");
        let mut served = Served {
            child,
            url: String::new(),
        };
        let addr = wait_for_line(&mut served.child, &log, "listening on http://");
        served.url = format!("http://{addr}");
        served
    }

    /// The signed checkpoint it serves now (`GET /checkpoint`).
    pub fn checkpoint(&self) -> String {
        reqwest::blocking::Client::new()
            .get(format!("{}/checkpoint", self.url))
            .send()
            .and_then(|r| r.error_for_status())
            .and_then(|r| r.text())
            .expect("GET /checkpoint")
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Connects to `addr` and sends `start`, the beginning of a request, never the rest; the
/// stream waits at most 20 s for the server's answer.
pub fn half_sent(addr: SocketAddr, start: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.write_all(start).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream
}

/// Whether the server closed `stream` (EOF or reset) before our read timeout; whatever
/// it answered first (a 408, say) is read and passed over.
pub fn closed_by_server(mut stream: TcpStream) -> bool {
    let mut buf = [0u8; 512];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

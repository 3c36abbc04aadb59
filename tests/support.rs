//! Shared helpers for the integration tests: real keys (seeded), real envelopes, real
//! log directories in temporary folders.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
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

/// A ledger made by `lesson-ledger init` in `tmp/NAME` (origin [`TEST_ORIGIN`], the test
/// association declared), and its operator's signer.
pub fn new_ledger(tmp: &Path, name: &str) -> (PathBuf, NoteSigner) {
    let data = tmp.join(name);
    let keys = tmp.join(format!("{name}-keys"));
    fs::create_dir_all(&keys).expect("keys dir");
    let association = write_test_association(&keys);
    let out = crate::cli::run(&[
        "init",
        "--data",
        path_arg(&data),
        "--origin",
        TEST_ORIGIN,
        "--association",
        path_arg(&association),
    ]);
    assert!(out.status.success(), "init: {}", output_text(&out));
    let operator = operator_of(&data);
    (data, operator)
}

/// Registers institutions `ns` through a server's `POST /v1/entries`, at most 400 a
/// batch (within the signatures a request may carry), and checks every one appended.
pub fn post(url: &str, operator: &NoteSigner, ns: std::ops::Range<u64>) {
    let all: Vec<u64> = ns.collect();
    for chunk in all.chunks(400) {
        let entries: Vec<serde_json::Value> = chunk
            .iter()
            .map(|&n| register_institution(operator, n))
            .map(|e: Envelope| serde_json::from_str(&e.to_json()).expect("envelope JSON"))
            .collect();
        let answer: serde_json::Value = reqwest::blocking::Client::new()
            .post(format!("{url}/v1/entries"))
            .json(&serde_json::json!({ "entries": entries }))
            .send()
            .and_then(|r| r.json())
            .expect("POST /v1/entries");
        let results = answer["results"]
            .as_array()
            .unwrap_or_else(|| panic!("{answer}"));
        assert!(results.iter().all(|r| r["status"] == "ok"), "{answer}");
    }
}

/// The tree size a published checkpoint names.
pub fn checkpoint_size(bytes: &[u8]) -> u64 {
    let note = lesson_ledger::log::note::Note::parse(bytes).expect("a checkpoint is a note");
    lesson_ledger::log::note::Checkpoint::from_body(note.text())
        .expect("a checkpoint")
        .size
}

/// Every object a published checkpoint of `size` commits to, by path: its hash tiles
/// and entry bundles, its state note and the pool proven against it.
pub fn objects_needed(size: u64) -> Vec<String> {
    use lesson_ledger::publish::plan::{entry_bundles, hash_tiles};
    let tiles = hash_tiles(0, size)
        .into_iter()
        .chain(entry_bundles(0, size));
    let mut needed: Vec<String> = tiles.map(|t| t.to_path()).collect();
    needed.push(format!("v1/state-notes/{size}"));
    needed.push("v1/pool".to_owned());
    needed
}

/// A publication destination as the kill tests watch it.
pub struct Watched<'a> {
    /// The size its checkpoint names (none before the first), and how many objects it
    /// holds.
    pub state: &'a dyn Fn() -> (Option<u64>, usize),
    /// Asserts that it holds every object its checkpoint commits to.
    pub assert_complete: &'a dyn Fn(),
}

/// Runs publishers (`publish`, a command ready to spawn) and SIGKILLs each after a
/// growing delay (`step`/2 + `step`·round), until two were cut short after their first
/// object and before their checkpoint (at least one, or it fails); after every run, a
/// checkpoint never names a missing object. A run that finished first gives the next
/// one 1,200 new entries through `serve` (institutions from `next` on, `operator`).
/// Returns the next unused institution number.
pub fn kill_publishers(
    publish: &dyn Fn() -> Command,
    dest: &Watched,
    serve: &str,
    operator: &NoteSigner,
    mut next: u64,
    step: u64,
) -> u64 {
    let mut cut_short = 0;
    for round in 0..40u64 {
        let before = (dest.state)();
        let mut child = publish()
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn publish");
        std::thread::sleep(Duration::from_millis(step / 2 + step * round));
        let killed = child.try_wait().expect("poll").is_none();
        if killed {
            child.kill().expect("SIGKILL");
        }
        let status = child.wait().expect("wait");
        let after = (dest.state)();
        if killed && after.0 == before.0 && after.1 > before.1 {
            cut_short += 1;
        }
        (dest.assert_complete)();
        if !killed {
            assert!(status.success(), "an unkilled run failed: {status}");
            post(serve, operator, next..next + 1200);
            next += 1200;
        }
        if cut_short >= 2 {
            break;
        }
    }
    assert!(
        cut_short > 0,
        "no kill landed between the first object and the checkpoint"
    );
    next
}

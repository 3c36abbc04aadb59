//! Match runs recorded in the log (issue 5): `POST /v1/match` over a real socket, the
//! shared run function, and `verify` re-running every recorded run.

use std::path::Path;
use std::time::Duration;

use lesson_ledger::http::operator::OPERATOR_TOKEN;
use lesson_ledger::http::{Server, ServerConfig};
use lesson_ledger::ledger::writer::Ledger;
use lesson_ledger::log::audit::{audit_with, AuditError, AuditOptions, Finding};
use lesson_ledger::log::note::NoteSigner;
use lesson_ledger::log::store::Outcome;
use lesson_ledger::matching::{AllocationPlan, MatchParams};
use lesson_ledger::runs::replay::Replayer;
use lesson_ledger::runs::{digest_of, run_match};
use reqwest::blocking::{Client, Response};
use serde_json::{json, Value};
use tempfile::TempDir;

use crate::http::{assert_problem, ledger_with_genesis};
use crate::support::{ledger_entry, party_signer, verified};

const EVIDENCE: &str = "4f6c2b0d9e8a7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a291817161514131211100f";
const STUDENTS: u64 = 12;

pub(crate) fn append(ledger: &mut Ledger, signers: &[&NoteSigner], payload: Value) {
    let out = ledger
        .submit(vec![verified(ledger_entry(signers, &payload))])
        .unwrap();
    assert!(matches!(out[0], Outcome::Ok(_)), "{payload}: {out:?}");
}

/// A ledger with a closed institution, `STUDENTS` claims against it, and two approved
/// pledges worth less than what is owed: a match has choices to make and leaves value
/// unmatched.
pub(crate) fn populated(dir: &Path) -> (Ledger, NoteSigner) {
    let (mut ledger, op) = ledger_with_genesis(dir);
    let closed = party_signer("inst-0001", 1);
    let donor = party_signer("inst-0007", 7);
    for (key, party) in [(&closed, "inst-0001"), (&donor, "inst-0007")] {
        append(
            &mut ledger,
            &[&op, key],
            json!({"kind": "party_registered", "id": format!("reg-{party}"), "party": party,
                   "role": "institution", "key": key.vkey()}),
        );
    }
    append(
        &mut ledger,
        &[&op],
        json!({"kind": "institution_closed", "id": "close-1", "institution": "inst-0001", "reason": "abnormal_closure"}),
    );
    append(
        &mut ledger,
        &[&op],
        json!({"kind": "institution_whitelisted", "id": "wl-7", "institution": "inst-0007", "reason": "approved_donor"}),
    );
    for n in 0..STUDENTS {
        let name = format!("stu-{n:04x}");
        let stu = party_signer(&name, 100 + n);
        append(
            &mut ledger,
            &[&op, &stu],
            json!({"kind": "party_registered", "id": format!("reg-{name}"), "party": name,
                   "role": "student", "key": stu.vkey()}),
        );
        append(
            &mut ledger,
            &[&op, &stu],
            json!({"kind": "claim_recorded", "id": format!("claim-{n}"), "claim": format!("c-{n:04}"),
                   "student": name, "institution": "inst-0001", "lessons": 4 + n % 5,
                   "price_per_lesson_fen": 10_000 + 2_500 * (n % 3), "subject": "math", "grade": 5,
                   "district": if n % 2 == 0 { "xuhui" } else { "minhang" },
                   "evidence_digest": EVIDENCE, "accepts_online": n % 3 != 0, "accepted_districts": []}),
        );
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64;
    let year = 365 * 86_400 * 1_000_000;
    for (p, place, seats, per_seat, value) in [
        ("p-0001", json!({"district": "xuhui"}), 3, 4, 12_000),
        ("p-0002", json!({"online": true}), 4, 3, 9_000),
    ] {
        let mut offer = json!({"kind": "pledge_offered", "id": format!("offer-{p}"), "pledge": p,
            "institution": "inst-0007", "subject": "math", "grade_min": 4, "grade_max": 6,
            "seats": seats, "lessons_per_seat": per_seat, "value_per_lesson_fen": value,
            "valid_from_micros": now - year, "valid_until_micros": now + year});
        for (k, v) in place.as_object().unwrap() {
            offer[k] = v.clone();
        }
        append(&mut ledger, &[&donor], offer);
        append(
            &mut ledger,
            &[&op],
            json!({"kind": "pledge_approved", "id": format!("approve-{p}"), "pledge": p}),
        );
    }
    (ledger, op)
}

/// What the matcher would allocate on `ledger` now: its parameters and plans.
pub(crate) fn honest_plans(ledger: &mut Ledger) -> (MatchParams, Vec<AllocationPlan>) {
    let dry = run_match(ledger, None, true).unwrap();
    (dry.params, dry.plans.unwrap())
}

/// Records, by hand, a `match_run` `run` declaring `count` plans of digest `digest`.
pub(crate) fn record_run(
    ledger: &mut Ledger,
    op: &NoteSigner,
    run: &str,
    params: MatchParams,
    count: usize,
    digest: String,
) {
    append(
        ledger,
        &[op],
        json!({"kind": "match_run", "id": format!("match-{run}"), "run": run, "params": params,
               "allocations": count, "plans_digest": digest}),
    );
}

/// Records, by hand, allocation `n` of `run`: `plan` with `lessons`.
pub(crate) fn record_allocation(
    ledger: &mut Ledger,
    op: &NoteSigner,
    run: &str,
    n: usize,
    plan: &AllocationPlan,
    lessons: u64,
) {
    append(
        ledger,
        &[op],
        json!({"kind": "allocation_made", "id": format!("alloc-{run}-{n}"), "allocation": format!("{run}.{n}"),
               "claim": plan.claim, "pledge": plan.pledge, "lessons": lessons, "run": run}),
    );
}

/// The audit `verify` runs: every record, signature and checkpoint, and the replay.
pub(crate) fn replay(dir: &Path) -> Result<Replayer, AuditError> {
    let mut replayer = Replayer::new();
    audit_with(dir, &AuditOptions::default(), &|_, _| {}, &mut replayer)?;
    Ok(replayer)
}

pub(crate) fn finding(dir: &Path) -> Finding {
    match replay(dir) {
        Err(AuditError::Finding(f)) => f,
        Err(e) => panic!("expected a finding, got {e}"),
        Ok(r) => panic!("expected a finding; replayed {} entries", r.entries()),
    }
}

struct Served {
    _tmp: TempDir,
    dir: std::path::PathBuf,
    server: Server,
    client: Client,
    token: String,
}

impl Served {
    fn new() -> Served {
        Served::with_config(ServerConfig::default())
    }

    fn with_config(config: ServerConfig) -> Served {
        let tmp = TempDir::new().unwrap();
        let dir = tmp.path().join("data");
        let (ledger, _) = populated(&dir);
        let server = Server::start(ledger, "127.0.0.1:0".parse().unwrap(), config).unwrap();
        // The server made the token on start: the directory predates it.
        let token = std::fs::read_to_string(dir.join(OPERATOR_TOKEN)).unwrap();
        Served {
            _tmp: tmp,
            dir,
            server,
            client: Client::new(),
            token: token.trim().to_owned(),
        }
    }

    fn post_match(&self, authorization: Option<&str>, body: &str) -> Response {
        let mut request = self
            .client
            .post(format!("{}/v1/match", self.server.url()))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(a) = authorization {
            request = request.header("authorization", a);
        }
        request.send().unwrap()
    }

    fn run(&self, dry_run: bool) -> Value {
        let response = self.post_match(
            Some(&format!("Bearer {}", self.token)),
            &json!({ "dry_run": dry_run }).to_string(),
        );
        assert_eq!(response.status().as_u16(), 200, "{:?}", response.text());
        response.json().unwrap()
    }

    fn checkpoint(&self) -> String {
        self.client
            .get(format!("{}/checkpoint", self.server.url()))
            .send()
            .unwrap()
            .text()
            .unwrap()
    }
}

#[test]
fn the_token_file_is_private_and_never_overwritten() {
    let s = Served::new();
    let path = s.dir.join(OPERATOR_TOKEN);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert_eq!(s.token.len(), 64);
    assert!(s
        .token
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    s.server.shutdown().unwrap();
    // Serving the directory again keeps the token.
    let (ledger, _) = Ledger::open(&s.dir).unwrap();
    let server = Server::start(
        ledger,
        "127.0.0.1:0".parse().unwrap(),
        ServerConfig::default(),
    )
    .unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap().trim(), s.token);
    server.shutdown().unwrap();
}

#[test]
fn a_match_needs_the_operator_token_and_a_well_formed_body() {
    let s = Served::new();
    let before = s.checkpoint();
    let good = r#"{"dry_run":false}"#;
    let wrong = format!("Bearer {}", "0".repeat(64));
    let short = format!("Bearer {}", &s.token[..63]);
    let basic = format!("Basic {}", s.token);
    for (authorization, what) in [
        (None, "no Authorization"),
        (Some(wrong.as_str()), "another token"),
        (Some(short.as_str()), "a prefix of the token"),
        (Some(basic.as_str()), "not a bearer token"),
    ] {
        let response = s.post_match(authorization, good);
        assert_eq!(
            response
                .headers()
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap()),
            Some("Bearer"),
            "{what}"
        );
        assert_problem(response, 401, "unauthorized");
    }
    let bearer = format!("Bearer {}", s.token);
    for body in [
        "",
        "not json",
        "{}",
        r#"{"dry_run":"yes"}"#,
        r#"{"dry_run":false,"cap_fen":1}"#,
        r#"[false]"#,
    ] {
        assert_problem(s.post_match(Some(&bearer), body), 400, "malformed_body");
    }
    assert_eq!(s.checkpoint(), before, "refused requests write nothing");
    s.server.shutdown().unwrap();
    // Nothing was written: the log still verifies, with no run in it.
    assert_eq!(replay(&s.dir).unwrap().runs().checked(), 0);
}

#[test]
fn a_dry_run_writes_nothing_and_a_real_run_records_what_verify_re_runs() {
    let s = Served::new();
    let before = s.checkpoint();
    let dry = s.run(true);
    assert_eq!(s.checkpoint(), before, "a dry run writes nothing");
    assert!(
        dry["run"].is_null() && dry["first_index"].is_null(),
        "{dry}"
    );
    let plans = dry["plans"].as_array().unwrap().clone();
    assert!(plans.len() >= 4, "the fixture should match several: {dry}");
    let report = &dry["report"];
    assert_eq!(report["allocations"].as_u64().unwrap(), plans.len() as u64);
    assert!(report["matched_fen"].as_u64().unwrap() <= report["bound_fen"].as_u64().unwrap());
    assert!(report["matched_fen"].as_u64().unwrap() > 0);

    let size_before: u64 = before.lines().nth(1).unwrap().parse().unwrap();
    let real = s.run(false);
    let run_id = real["run"].as_str().unwrap();
    let token = run_id.strip_prefix("run-").unwrap();
    assert!(
        token.len() == 32 && token.bytes().all(|b| (b'a'..=b'p').contains(&b)),
        "a run id is 128 random bits, a letter per 4: {real}"
    );
    assert_eq!(real["first_index"], size_before);
    assert_eq!(real["allocations"], plans.len() as u64);
    assert!(real.get("plans").is_none(), "{real}");
    // The dry run said what the real one did: same state, same parameters but the date.
    assert_eq!(real["report"]["matched_fen"], report["matched_fen"]);
    let checkpoint = s.checkpoint();
    assert!(checkpoint.starts_with(&real["checkpoint"].as_str().unwrap()[..40]));
    let size_after: u64 = checkpoint.lines().nth(1).unwrap().parse().unwrap();
    assert_eq!(size_after, size_before + 1 + plans.len() as u64);

    // What is left cannot be matched: the second run is recorded, empty.
    let again = s.run(false);
    assert_eq!(again["allocations"], 0, "{again}");
    assert_eq!(again["report"]["matched_fen"], 0);
    assert_eq!(again["first_index"], size_after);

    s.server.shutdown().unwrap();
    let replayer = replay(&s.dir).unwrap();
    assert_eq!(
        replayer.runs().checked(),
        2,
        "both runs re-run by the replay"
    );
    assert_eq!(replayer.runs().open_run(), None);
    assert_eq!(replayer.entries(), size_after + 1);
}

/// A run whose record is honest (parameters, count, digest) but whose allocations are
/// not the plans: each allocation passes the rules, so only the re-run catches it.
#[test]
fn verify_catches_a_run_whose_allocations_are_not_the_matchers() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("data");
    let (mut ledger, op) = populated(&dir);
    let (params, plans) = honest_plans(&mut ledger);
    let k = plans
        .iter()
        .position(|p| p.lessons.0 >= 2)
        .expect("a plan of two lessons or more");
    let first = ledger.log().size();
    record_run(
        &mut ledger,
        &op,
        "run-x",
        params,
        plans.len(),
        digest_of(&plans),
    );
    for (n, plan) in plans.iter().enumerate() {
        // One lesson fewer for plan k: a smaller reservation the rules accept.
        let lessons = plan.lessons.0 - u64::from(n == k);
        record_allocation(&mut ledger, &op, "run-x", n, plan, lessons);
    }
    ledger.close().unwrap();
    let f = finding(&dir);
    assert_eq!(f.index, Some(first + 1 + k as u64), "{f}");
    assert!(f.found.starts_with("match_run_mismatch"), "{f}");
    assert!(f.found.contains(&format!("is not plan {k}")), "{f}");
}

#[test]
fn verify_catches_a_run_that_misstates_its_plans() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("data");
    let (mut ledger, op) = populated(&dir);
    let (params, plans) = honest_plans(&mut ledger);
    let at = ledger.log().size();
    // The count is right but the digest is of another plan list.
    record_run(
        &mut ledger,
        &op,
        "run-y",
        params,
        plans.len(),
        digest_of(&plans[1..]),
    );
    ledger.close().unwrap();
    let f = finding(&dir);
    assert_eq!(f.index, Some(at), "{f}");
    assert!(f.found.starts_with("match_run_mismatch"), "{f}");
    assert!(f.found.contains("plans digest"), "{f}");
}

#[test]
fn verify_catches_a_run_cut_short_by_the_next_run() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("data");
    let (mut ledger, op) = populated(&dir);
    let (params, plans) = honest_plans(&mut ledger);
    record_run(
        &mut ledger,
        &op,
        "run-z",
        params,
        plans.len(),
        digest_of(&plans),
    );
    record_allocation(&mut ledger, &op, "run-z", 0, &plans[0], plans[0].lessons.0);
    // The log as it is now, mid-run, verifies: the run is open, not wrong.
    ledger.close().unwrap();
    let open = replay(&dir).unwrap().runs().open_run();
    assert_eq!(open, Some(("run-z".to_owned(), 1, plans.len() as u64)));
    // An operator starts the next run by hand, leaving this one open and unclosed.
    let (mut ledger, _) = Ledger::open(&dir).unwrap();
    let next = ledger.log().size();
    record_run(&mut ledger, &op, "run-z2", params, 0, digest_of(&[]));
    ledger.close().unwrap();
    let f = finding(&dir);
    assert_eq!(f.index, Some(next), "{f}");
    assert!(f.found.starts_with("match_run_incomplete"), "{f}");
    assert!(!f.found.contains("match_run_mismatch"), "{f}");
}

/// Each refusal of a run's entries, on a real ledger: its code, and neither the log (size,
/// root, checkpoint) nor the state digest moves.
#[test]
fn bad_run_entries_are_refused_with_their_code_and_change_nothing() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("data");
    let (mut ledger, op) = populated(&dir);
    // A run, then an empty one: any allocation naming that is one too many.
    run_match(&mut ledger, Some(&op), false).unwrap();
    let empty = run_match(&mut ledger, Some(&op), false).unwrap();
    assert_eq!(empty.allocations, 0);
    let empty_run = empty.run.unwrap();
    let donor = party_signer("inst-0007", 7);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64;
    let run = |id: &str, at: u64, digest: &str| {
        json!({"kind": "match_run", "id": format!("bad-{id}"), "run": id, "allocations": 0,
               "plans_digest": digest, "params": {"at_micros": at, "fairness": "none"}})
    };
    let digest = "0".repeat(64);
    let alloc = |run: &str| {
        json!({"kind": "allocation_made", "id": format!("bad-a-{run}"), "allocation": "a-bad",
               "claim": "c-0001", "pledge": "p-0001", "lessons": 1, "run": run})
    };
    // An open run of two allocations (none recorded), and one closed. Neither is the
    // matcher's (nothing is left to match), which `verify` reports below.
    let dishonest = ledger.log().size();
    for (id, count) in [("run-o", 2), ("run-c", 2)] {
        append(
            &mut ledger,
            &[&op],
            json!({"kind": "match_run", "id": format!("m-{id}"), "run": id, "allocations": count,
                   "plans_digest": "0".repeat(64), "params": {"at_micros": 1, "fairness": "none"}}),
        );
    }
    append(
        &mut ledger,
        &[&op],
        json!({"kind": "match_run_closed", "id": "close-run-c", "run": "run-c"}),
    );
    let named = |run: &str, allocation: &str| {
        json!({"kind": "allocation_made", "id": format!("bad-{allocation}"), "allocation": allocation,
               "claim": "c-0001", "pledge": "p-0001", "lessons": 1, "run": run})
    };
    let close = |run: &str| json!({"kind": "match_run_closed", "id": format!("bad-close-{run}"), "run": run});
    let cases: Vec<(&str, Vec<&NoteSigner>, Value)> = vec![
        // A run's allocations come in plan order, each named by its position.
        (
            "match_run_out_of_order",
            vec![&op],
            named("run-o", "run-o.1"),
        ),
        (
            "match_run_out_of_order",
            vec![&op],
            named("run-o", "a-squatted"),
        ),
        ("match_run_closed", vec![&op], named("run-c", "run-c.0")),
        ("match_run_closed", vec![&op], close("run-c")),
        ("match_run_complete", vec![&op], close(&empty_run)),
        ("match_run_unknown", vec![&op], close("run-none")),
        ("not_authorized", vec![&donor], close("run-o")),
        ("not_authorized", vec![&donor], run("run-b1", now, &digest)),
        ("match_run_exists", vec![&op], run(&empty_run, now, &digest)),
        ("plans_digest_invalid", vec![&op], run("run-b2", now, "abc")),
        (
            "match_run_in_future",
            vec![&op],
            run("run-b3", now + 86_400_000_000, &digest),
        ),
        ("match_run_unknown", vec![&op], alloc("run-none")),
        ("match_run_full", vec![&op], alloc(&empty_run)),
    ];
    let still = |l: &Ledger| {
        (
            l.log().size(),
            l.log().checkpoint().text(),
            l.state().root(),
        )
    };
    let before = still(&ledger);
    for (code, signers, payload) in cases {
        let out = ledger
            .submit(vec![verified(ledger_entry(&signers, &payload))])
            .unwrap();
        assert!(
            matches!(&out[0], Outcome::Refused(e) if e.code() == code),
            "{code}: {out:?}"
        );
        assert_eq!(still(&ledger), before, "{code}");
    }
    ledger.close().unwrap();
    // The two recorded runs re-run; the refused entries left no trace before the first
    // hand-made run.
    let f = finding(&dir);
    assert_eq!(f.index, Some(dishonest), "{f}");
    assert!(f.found.starts_with("match_run_mismatch"), "{f}");
}

/// POSTs `body` to `path` over a raw connection, pausing `pause` halfway through the
/// body; the server's whole answer.
fn trickled_post(served: &Served, path: &str, body: &str, pause: Duration) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(served.server.addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\nauthorization: Bearer {}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n",
        served.token,
        body.len()
    );
    let (first, rest) = body.split_at(body.len() / 2);
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(first.as_bytes()).unwrap();
    std::thread::sleep(pause);
    let _ = stream.write_all(rest.as_bytes());
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn a_match_run_has_a_timeout_of_its_own_not_the_requests() {
    // Requests must finish within 300 ms here; each of these takes longer than that,
    // because its client pauses 900 ms in the middle of the body.
    let served = Served::with_config(ServerConfig {
        request_timeout: Duration::from_millis(300),
        body_timeout: Duration::from_secs(10),
        ..ServerConfig::default()
    });
    let body = json!({ "dry_run": true }).to_string();
    let pause = Duration::from_millis(900);
    let append = trickled_post(&served, "/v1/entries", &body, pause);
    assert!(append.starts_with("HTTP/1.1 408"), "{append}");
    let run = trickled_post(&served, "/v1/match", &body, pause);
    assert!(run.starts_with("HTTP/1.1 200"), "{run}");
    assert!(run.contains("\"report\""), "{run}");
}

//! The web app's listings over a real server (`src/http/listings.rs`): an institution's
//! pledges, the open courses that fit a family's choice, a lesson with its dispute, and
//! the checkpoint history whose cosignatures are verified in the request that serves them.

use lesson_ledger::api::LessonAnswer;
use lesson_ledger::client::proofs::{self, state_root};
use lesson_ledger::http::listings::{CheckpointPage, PledgePage, LISTING_PAGE_MAX};
use lesson_ledger::ledger::objects::{DisputeStatus, LessonStatus};
use lesson_ledger::ledger::payload::DisputeOutcome;
use lesson_ledger::log::note::{cosign, SignedCheckpoint};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::http::{
    assert_matches_openapi, assert_problem, check_proven, current_checkpoint, ok, post_cosign,
    scenario, Fixture,
};
use crate::support::{party_signer, test_association};

fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

/// A pledge of `inst-0007` (the scenario's donor), approved unless `approved` is false.
fn pledge(f: &Fixture, id: &str, subject: &str, grades: (u64, u64), where_: Value, approved: bool) {
    let donor = party_signer("inst-0007", 7);
    let year = 365 * 86_400 * 1_000_000;
    let mut payload = json!({"kind": "pledge_offered", "id": format!("offer-{id}"), "pledge": id,
        "institution": "inst-0007", "subject": subject, "grade_min": grades.0, "grade_max": grades.1,
        "seats": 4, "lessons_per_seat": 10, "value_per_lesson_fen": 9_000,
        "valid_from_micros": now_micros() - year, "valid_until_micros": now_micros() + year});
    for (k, v) in where_.as_object().unwrap() {
        payload[k] = v.clone();
    }
    ok(f, &[&donor], payload);
    if approved {
        ok(
            f,
            &[&f.operator],
            json!({"kind": "pledge_approved", "id": format!("approve-{id}"), "pledge": id}),
        );
    }
}

fn pledge_ids(f: &Fixture, path: &str) -> Vec<String> {
    let response = f.get(path);
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    let page: PledgePage = response.json().unwrap();
    page.pledges.into_iter().map(|p| p.pledge).collect()
}

#[test]
fn an_institution_lists_every_pledge_it_offered_with_its_capacity() {
    let f = Fixture::new();
    scenario(&f);
    pledge(
        &f,
        "p-0002",
        "art",
        (1, 9),
        json!({"district": "minhang"}),
        false,
    );
    let page: Value = f.get("/v1/institutions/inst-0007/pledges").json().unwrap();
    assert_matches_openapi("/v1/institutions/{id}/pledges", &page);
    let rows = page["pledges"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{page}");
    assert_eq!(page["next"], Value::Null);
    // p-0001: 10 seats of 30 lessons, 5 reserved by the scenario's allocation.
    let p1 = &rows[0];
    assert_eq!(
        (
            &p1["pledge"],
            &p1["available"],
            &p1["reserved"],
            &p1["seats_left"]
        ),
        (&json!("p-0001"), &json!(295), &json!(5), &json!(9))
    );
    assert!(p1["approved_at"].is_u64());
    assert_eq!(
        rows[1]["approved_at"],
        Value::Null,
        "awaiting approval, still listed"
    );
    // `after` pages on; another institution has none of them.
    assert_eq!(
        pledge_ids(&f, "/v1/institutions/inst-0007/pledges?after=p-0001"),
        ["p-0002"]
    );
    assert!(pledge_ids(&f, "/v1/institutions/inst-0001/pledges").is_empty());
    assert_problem(
        f.get("/v1/institutions/stu-3f9a/pledges"),
        404,
        "institution_not_found",
    );
    assert_problem(
        f.get("/v1/institutions/Not%20An%20Id/pledges"),
        400,
        "malformed_id",
    );
}

#[test]
fn open_courses_are_listed_only_if_they_fit_the_grade_subjects_and_places_asked_for() {
    let f = Fixture::new();
    scenario(&f); // p-0001: math, grades 4-6, online only
    pledge(
        &f,
        "p-0002",
        "art",
        (1, 9),
        json!({"district": "minhang"}),
        true,
    );
    pledge(
        &f,
        "p-0003",
        "swimming",
        (7, 9),
        json!({"district": "xuhui"}),
        true,
    );
    pledge(
        &f,
        "p-0004",
        "art",
        (1, 9),
        json!({"district": "xuhui"}),
        false,
    );
    assert_eq!(
        pledge_ids(&f, "/v1/pledges"),
        ["p-0001", "p-0002", "p-0003"]
    );
    assert_matches_openapi("/v1/pledges", &f.get("/v1/pledges").json().unwrap());
    assert_eq!(
        pledge_ids(&f, "/v1/pledges?grade=5"),
        ["p-0001", "p-0002"],
        "grade 5 is outside swimming's 7-9"
    );
    assert_eq!(
        pledge_ids(&f, "/v1/pledges?grade=5&subjects=art,swimming"),
        ["p-0002"]
    );
    assert_eq!(
        pledge_ids(&f, "/v1/pledges?districts=xuhui&online=false"),
        ["p-0003"],
        "the unapproved art course in xuhui is not open"
    );
    assert_eq!(
        pledge_ids(&f, "/v1/pledges?districts=pudong"),
        ["p-0001"],
        "online courses fit any district"
    );
    assert_eq!(pledge_ids(&f, "/v1/pledges?after=p-0002"), ["p-0003"]);
    let too_many = (0..17)
        .map(|i| format!("s{i}"))
        .collect::<Vec<_>>()
        .join(",");
    assert_problem(
        f.get(&format!("/v1/pledges?subjects={too_many}")),
        400,
        "too_many_filter_ids",
    );
    assert_problem(f.get("/v1/pledges?subjects=Math"), 400, "malformed_id");
    assert_problem(f.get("/v1/pledges?grade=five"), 400, "bad_request");
}

#[test]
fn a_banned_institutions_courses_are_not_offered_to_families() {
    let f = Fixture::new();
    scenario(&f);
    pledge(
        &f,
        "p-0002",
        "art",
        (1, 9),
        json!({"district": "minhang"}),
        true,
    );
    assert_eq!(pledge_ids(&f, "/v1/pledges"), ["p-0001", "p-0002"]);
    ok(
        &f,
        &[&f.operator],
        json!({"kind": "institution_blacklisted", "id": "ban-1", "institution": "inst-0007",
               "reason": "false_pledge"}),
    );
    assert!(pledge_ids(&f, "/v1/pledges").is_empty());
    // Its own page still lists them: they are its history.
    assert_eq!(
        pledge_ids(&f, "/v1/institutions/inst-0007/pledges"),
        ["p-0001", "p-0002"]
    );
}

#[test]
fn a_page_of_pledges_is_bounded_and_next_continues_it() {
    let f = Fixture::new();
    scenario(&f);
    // The donor may have a bounded number awaiting approval: each is approved at once.
    for i in 2..=LISTING_PAGE_MAX as u64 + 1 {
        pledge(
            &f,
            &format!("p-{i:04}"),
            "art",
            (1, 9),
            json!({"online": true}),
            true,
        );
    }
    let first: PledgePage = f.get("/v1/pledges").json().unwrap();
    assert_eq!(first.pledges.len(), LISTING_PAGE_MAX);
    let next = first.next.expect("a second page");
    assert_eq!(next, format!("p-{:04}", LISTING_PAGE_MAX));
    let second = pledge_ids(&f, &format!("/v1/pledges?after={next}"));
    assert_eq!(second, [format!("p-{:04}", LISTING_PAGE_MAX + 1)]);
}

#[test]
fn a_disputed_lesson_is_served_with_its_dispute_each_state_proven_and_every_entry_proven() {
    let f = Fixture::new();
    scenario(&f);
    let donor = party_signer("inst-0007", 7);
    let stu = party_signer("stu-3f9a", 3);
    ok(
        &f,
        &[&donor],
        json!({"kind": "lesson_proposed", "id": "prop-1", "lesson": "l-0001", "allocation": "a-0001"}),
    );
    let pending: Value = f.get("/v1/lessons/l-0001").json().unwrap();
    assert_matches_openapi("/v1/lessons/{id}", &pending);
    assert_eq!(pending["lesson"]["object"]["status"], "pending");
    assert_eq!(pending["dispute"], Value::Null);
    ok(
        &f,
        &[&stu],
        json!({"kind": "lesson_disputed", "id": "disp-1", "dispute": "d-0001", "lesson": "l-0001",
               "reason": "not_attended"}),
    );
    ok(
        &f,
        &[&f.operator],
        json!({"kind": "dispute_resolved", "id": "res-1", "dispute": "d-0001", "outcome": "upheld",
               "reason": "delivery_not_proven"}),
    );
    let served = check_proven(&f, "/v1/lessons/l-0001");
    assert_matches_openapi("/v1/lessons/{id}", &served);
    let answer: LessonAnswer = serde_json::from_value(served).unwrap();
    let cp =
        SignedCheckpoint::parse_and_verify(answer.checkpoint.as_bytes(), &f.verifier()).unwrap();
    let root = state_root(&answer.state_note, &cp, &f.verifier()).unwrap();
    proofs::check_proven(&answer.lesson, "l-0001", &root).unwrap();
    let dispute = answer.dispute.as_ref().expect("its dispute");
    proofs::check_proven(dispute, "d-0001", &root).unwrap();
    assert_eq!(answer.lesson.object.status, LessonStatus::Void);
    assert_eq!(dispute.object.reason, "not_attended");
    assert_eq!(
        dispute.object.status,
        DisputeStatus::Resolved(DisputeOutcome::Upheld)
    );
    assert_eq!(
        dispute.object.resolution.as_deref(),
        Some("delivery_not_proven")
    );
    let kinds: Vec<String> = answer
        .entries
        .iter()
        .map(|e| {
            let env: Value = serde_json::from_str(e.envelope.get()).unwrap();
            let payload = crate::http::base64_decode(env["payload"].as_str().unwrap());
            serde_json::from_slice::<Value>(&payload).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        kinds,
        ["lesson_proposed", "lesson_disputed", "dispute_resolved"]
    );
    assert_problem(f.get("/v1/lessons/l-9999"), 404, "lesson_not_found");
}

#[test]
fn the_checkpoint_history_lists_every_signed_checkpoint_with_its_verified_cosignatures() {
    let f = Fixture::new();
    scenario(&f);
    let cp = current_checkpoint(&f);
    let size = cp.checkpoint().size;
    let line = cosign(&cp, &test_association(), 1_800_000_000).unwrap();
    let answer = post_cosign(
        &f,
        json!({"party": "assoc-01", "size": size, "cosignature": line}),
    );
    assert_eq!(answer.status(), StatusCode::OK);
    // One more batch: the cosigned checkpoint is now history.
    pledge(&f, "p-0002", "art", (1, 9), json!({"online": true}), false);
    let served: Value = f.get("/v1/checkpoints").json().unwrap();
    assert_matches_openapi("/v1/checkpoints", &served);
    let page: CheckpointPage = serde_json::from_value(served).unwrap();
    assert_eq!(page.next, None);
    let sizes: Vec<u64> = page.checkpoints.iter().map(|c| c.size).collect();
    assert!(sizes.windows(2).all(|w| w[0] < w[1]), "{sizes:?}");
    assert_eq!(sizes.last(), Some(&(size + 1)));
    let verifier = f.verifier();
    for c in &page.checkpoints {
        let signed = lesson_ledger::log::note::SignedCheckpoint::parse_and_verify(
            c.checkpoint.as_bytes(),
            &verifier,
        )
        .unwrap();
        assert_eq!(signed.checkpoint().size, c.size);
        assert_eq!(
            c.checkpoint.contains("\u{2014} assoc-01 "),
            c.size == size,
            "only the cosigned checkpoint carries the line (size {})",
            c.size
        );
    }
    let later: CheckpointPage = f
        .get(&format!("/v1/checkpoints?from={size}"))
        .json()
        .unwrap();
    assert_eq!(
        later.checkpoints.iter().map(|c| c.size).collect::<Vec<_>>(),
        [size, size + 1]
    );
    assert_problem(
        f.get(&format!("/v1/checkpoints?from={}", size + 2)),
        400,
        "size_out_of_range",
    );
}

#[test]
fn a_cosignature_line_not_verified_in_this_request_is_never_served_in_the_history() {
    let f = Fixture::new();
    scenario(&f);
    let cp = current_checkpoint(&f);
    let size = cp.checkpoint().size;
    // A line an impostor wrote where the server keeps its association's: it names the
    // association, but is not signed by its registered key.
    let impostor = party_signer("assoc-01", 66);
    let forged = cosign(&cp, &impostor, 1_800_000_000).unwrap();
    let dir = f
        .tmp
        .path()
        .join("data/cosignatures")
        .join(format!("{size:020}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("assoc-01"), &forged).unwrap();
    let page: CheckpointPage = f
        .get(&format!("/v1/checkpoints?from={size}"))
        .json()
        .unwrap();
    let served = &page.checkpoints[0];
    assert_eq!(served.size, size);
    assert!(
        !served.checkpoint.contains("\u{2014} assoc-01 "),
        "{}",
        served.checkpoint
    );
}

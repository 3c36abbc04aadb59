//! Attacks on `POST /v1/cosign` (issue 11, item 1): a line that was not verified in
//! the request that brought it, for the association it is filed under, is never
//! accepted, stored or served — not next to a line already collected, not after a
//! restart.

use lesson_ledger::client::{audit, Client as LedgerClient};
use lesson_ledger::http::cosign::COSIGNATURES_DIR;
use lesson_ledger::log::note::{cosign, verify_cosignature, CosignerKey, NoteSigner};
use reqwest::StatusCode;
use serde_json::json;

use crate::http::{assert_problem, base64_encode, current_checkpoint, post_cosign, Fixture};
use crate::support::{party_signer, test_association};

/// A ledger whose genesis declares association `assoc-01`; returns it and its signer.
fn with_association() -> (Fixture, NoteSigner) {
    (Fixture::new(), test_association())
}

/// `— operator base64(operator key id ‖ 64 random bytes)`: looks like the operator's.
fn forged_operator_line(f: &Fixture) -> String {
    let mut raw = f.operator.key_id().as_bytes().to_vec();
    raw.extend((0..64u8).map(|i| i.wrapping_mul(37).wrapping_add(11)));
    format!("\u{2014} operator {}\n", base64_encode(&raw))
}

/// The served checkpoint verifies under the operator and a full remote audit passes.
fn served_checkpoint_still_verifies(f: &Fixture) {
    let text = f.get("/checkpoint").text().unwrap();
    assert_eq!(
        text.matches("\u{2014} operator ").count(),
        1,
        "only the operator's own line: {text}"
    );
    let client = LedgerClient::new(&f.server.url()).unwrap();
    audit(&client, Some(&f.operator.vkey()), None).expect("a remote audit passes");
}

#[test]
fn a_cosignature_line_not_verified_in_this_request_is_never_served() {
    let (f, assoc) = with_association();
    let cp = current_checkpoint(&f);
    let size = cp.checkpoint().size;
    let line = cosign(&cp, &assoc, 1_800_000_000).unwrap();
    let response = post_cosign(
        &f,
        json!({"party": "assoc-01", "size": size, "cosignature": line}),
    );
    assert_eq!(response.status(), StatusCode::OK);

    // Anonymous, once assoc-01 has cosigned: a line in the operator's name.
    let forged = forged_operator_line(&f);
    assert_problem(
        post_cosign(
            &f,
            json!({"party": "assoc-01", "size": size, "cosignature": forged}),
        ),
        403,
        "bad_cosignature",
    );
    // The association's own line again, with the forged one riding along.
    assert_problem(
        post_cosign(
            &f,
            json!({"party": "assoc-01", "size": size, "cosignature": format!("{line}{forged}")}),
        ),
        400,
        "too_many_cosignatures",
    );
    served_checkpoint_still_verifies(&f);
    let assoc_key = CosignerKey::new(assoc.name().clone(), assoc.verifying_key()).unwrap();
    assert!(verify_cosignature(&current_checkpoint(&f), &assoc_key).is_ok());

    // Nothing of it was stored: after a restart the same is served.
    let f = f.restart();
    served_checkpoint_still_verifies(&f);
    assert!(verify_cosignature(&current_checkpoint(&f), &assoc_key).is_ok());
}

#[test]
fn a_stored_cosignature_that_does_not_verify_is_not_served_after_a_restart() {
    let (f, assoc) = with_association();
    let cp = current_checkpoint(&f);
    let size = cp.checkpoint().size;
    let line = cosign(&cp, &assoc, 1_800_000_000).unwrap();
    let response = post_cosign(
        &f,
        json!({"party": "assoc-01", "size": size, "cosignature": line}),
    );
    assert_eq!(response.status(), StatusCode::OK);

    // Someone with access to the directory files a forged line under the association,
    // and another under a party that is not one.
    let dir = f
        .tmp
        .path()
        .join("data")
        .join(COSIGNATURES_DIR)
        .join(format!("{size:020}"));
    let impostor = party_signer("assoc-01", 666);
    std::fs::write(
        dir.join("assoc-01"),
        cosign(&cp, &impostor, 1_800_000_000).unwrap(),
    )
    .unwrap();
    std::fs::write(dir.join("operator"), forged_operator_line(&f)).unwrap();

    let f = f.restart();
    served_checkpoint_still_verifies(&f);
    let served = current_checkpoint(&f);
    assert_eq!(
        served.note().signatures().len(),
        1,
        "only the operator's line is left: {}",
        served.text()
    );
}

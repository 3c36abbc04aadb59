//! A student's client sees a split view (issue 11, item 11): it believes a checkpoint
//! only with the cosignatures of associations it trusts, and only if it is consistent
//! with the last checkpoint it saw.

use lesson_ledger::api::StudentAnswer;
use lesson_ledger::client::{Client as LedgerClient, ClientError, Trust};
use lesson_ledger::http::{Server, ServerConfig};
use lesson_ledger::ledger::writer::Ledger;
use lesson_ledger::log::note::cosign;
use reqwest::StatusCode;
use serde_json::json;

use crate::http::{copy_dir, current_checkpoint, post_cosign, scenario, Fixture};
use crate::support::{operator_of, party_signer, register_institution};

fn is_verification(err: &ClientError) -> bool {
    matches!(err, ClientError::Verification(_))
}

#[test]
fn a_students_client_requires_an_association_cosignature_on_the_checkpoint() {
    let f = Fixture::new();
    // The association the genesis declares.
    let assoc = crate::support::test_association();
    scenario(&f);
    let client = LedgerClient::new(&f.server.url()).unwrap();
    let trust = Trust::witnessed(f.verifier(), vec![assoc.verifier()], 1, None).unwrap();

    // Signed by the operator alone: the operator's word, not believed.
    let err = client
        .balance_with::<StudentAnswer>("stu-3f9a", &trust)
        .unwrap_err();
    assert!(is_verification(&err), "{err}");
    assert!(
        err.to_string().contains("association cosignatures"),
        "{err}"
    );

    let cp = current_checkpoint(&f);
    let line = cosign(&cp, &assoc, 1_800_000_000).unwrap();
    let response = post_cosign(
        &f,
        json!({"party": "assoc-01", "size": cp.checkpoint().size, "cosignature": line}),
    );
    assert_eq!(response.status(), StatusCode::OK);
    let b = client
        .balance_with::<StudentAnswer>("stu-3f9a", &trust)
        .expect("cosigned by the association");
    assert_eq!(b.claims.len(), 1);

    // A key under the association's name that is not the one the student trusts.
    let other = party_signer("assoc-01", 666).verifier();
    let strict = Trust::witnessed(f.verifier(), vec![other], 1, None).unwrap();
    let err = client
        .balance_with::<StudentAnswer>("stu-3f9a", &strict)
        .unwrap_err();
    assert!(is_verification(&err), "{err}");
    // Two distinct witnesses cannot be met with one key given twice.
    assert!(matches!(
        Trust::witnessed(
            f.verifier(),
            vec![assoc.verifier(), assoc.verifier()],
            2,
            None
        ),
        Err(ClientError::Usage(_))
    ));
}

/// Serves `dir` (a ledger directory) as a fixture owned by `tmp`.
fn serve(tmp: tempfile::TempDir) -> Fixture {
    let data = tmp.path().join("data");
    let (ledger, _) = Ledger::open(&data).unwrap();
    let server = Server::start(
        ledger,
        "127.0.0.1:0".parse().unwrap(),
        ServerConfig::default(),
    )
    .unwrap();
    Fixture {
        operator: operator_of(&data),
        tmp,
        server,
        client: reqwest::blocking::Client::new(),
    }
}

#[test]
fn a_students_client_that_remembers_its_last_checkpoint_catches_a_split_view() {
    // Two ledgers with the same genesis and operator key: the operator shows one view
    // to this student and another to everyone else.
    let f = Fixture::new();
    let Fixture { tmp, server, .. } = f;
    server.shutdown().unwrap();
    let other = tempfile::tempdir().unwrap();
    copy_dir(&tmp.path().join("data"), &other.path().join("data"));
    let (a, b) = (serve(tmp), serve(other));
    scenario(&a);
    scenario(&b);
    assert_eq!(
        b.post(register_institution(&b.operator, 9).to_json())
            .status(),
        200
    );

    let state = tempfile::tempdir().unwrap();
    let state_file = state.path().join("student.json");
    let remembering = Trust::witnessed(a.verifier(), vec![], 0, Some(state_file.clone())).unwrap();
    let client_a = LedgerClient::new(&a.server.url()).unwrap();
    client_a
        .balance_with::<StudentAnswer>("stu-3f9a", &remembering)
        .expect("the first view");
    assert!(state_file.exists());

    let client_b = LedgerClient::new(&b.server.url()).unwrap();
    let err = client_b
        .balance_with::<StudentAnswer>("stu-3f9a", &remembering)
        .unwrap_err();
    assert!(is_verification(&err), "{err}");
    assert!(err.to_string().contains("not consistent"), "{err}");
    // Without memory (and without witnesses) the other view verifies on its own:
    // only the remembered checkpoint or the associations can catch it.
    client_b
        .balance::<StudentAnswer>("stu-3f9a", &b.verifier())
        .expect("a well-formed view on its own");
    // The view first seen still passes, and is still remembered.
    client_a
        .balance_with::<StudentAnswer>("stu-3f9a", &remembering)
        .expect("the same view again");
}

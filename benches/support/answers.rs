//! The typed balance answers as the server builds them (`src/http/balances.rs`), done
//! in the library: each object with its state proof, then each entry behind them with
//! its inclusion proof. What a balance read costs without HTTP, for `http_load`.

use lesson_ledger::ledger::objects::{Allocation, Claim, StudentIndex};
use lesson_ledger::ledger::state::{get_object, Key, Object};
use lesson_ledger::ledger::state_map::StateProof;
use lesson_ledger::ledger::writer::Ledger;

/// What the balance endpoint does in the library: the query, then each entry and the
/// inclusion proof of it against the current size.
fn prove_entries(ledger: &Ledger, indexes: &[u64]) {
    let log = ledger.log();
    for &index in indexes {
        let leaf = log.entry(index).expect("entry");
        let hash = log.leaf_hash_at(index).expect("leaf hash");
        let proof = log.inclusion_proof(index, log.size()).expect("proof");
        std::hint::black_box((leaf, hash, proof));
    }
}

/// `T` `id` and its state proof, as the balance endpoints serve each object.
fn proven<T: Object>(ledger: &Ledger, id: &str) -> (T, StateProof) {
    let object: T = get_object(ledger.state(), id)
        .expect("query")
        .expect("object");
    let proof = ledger.state().prove(&Key::new(T::TABLE, id));
    (object, proof)
}

/// What `GET /v1/claims/{id}` does in the library: the claim and its allocations, each
/// with its state proof, then its entries with their inclusion proofs.
pub fn claim_answer(ledger: &Ledger, id: &str) -> Vec<StateProof> {
    let (claim, proof): (Claim, _) = proven(ledger, id);
    let mut proofs = vec![proof];
    for a in &claim.allocations {
        proofs.push(proven::<Allocation>(ledger, a.as_str()).1);
    }
    prove_entries(ledger, &claim.entries);
    proofs
}

/// What `GET /v1/students/{ref}` does in the library: the student's index, its claims
/// and their allocations, each with its state proof, then every entry behind the claims
/// with its inclusion proof.
pub fn student_answer(ledger: &Ledger, id: &str) -> Vec<StateProof> {
    let (index, proof): (StudentIndex, _) = proven(ledger, id);
    let mut proofs = vec![proof];
    let mut entries = Vec::new();
    for c in &index.claims {
        let (claim, proof): (Claim, _) = proven(ledger, c.as_str());
        proofs.push(proof);
        for a in &claim.allocations {
            proofs.push(proven::<Allocation>(ledger, a.as_str()).1);
        }
        entries.extend_from_slice(&claim.entries);
    }
    prove_entries(ledger, &entries);
    proofs
}

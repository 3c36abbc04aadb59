//! The state map: a compact sparse Merkle tree over every state object, whose root the
//! operator signs in each batch's state note (`schemas/README.md`, "State map").

pub mod proof;

pub use proof::{map_key, Hash, ProofError, StateProof, ZERO};

#[cfg(test)]
mod tests;

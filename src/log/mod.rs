//! The verifiable log: transport-agnostic and ignorant of lessons.
//!
//! - [`hash`]: RFC 6962 leaf and node hashing.
//! - [`proof`]: which nodes make inclusion and consistency proofs, and their verifiers
//!   (RFC 9162 §2.1.3.2, §2.1.4.2).
//! - [`compact`]: the right edge of the tree, enough to append and compute the root.
//! - [`envelope`]: DSSE envelopes and their strict Ed25519 verification.
//! - [`note`]: C2SP signed notes, keys, checkpoints and cosignatures.
//! - [`keyfile`]: Ed25519 private keys as PKCS#8 PEM files.
//! - [`records`]: the append-only file of checksummed records (the source of truth).
//! - [`tree_file`]: Merkle node hashes on disk, derived from the records.
//! - [`index`]: the sled index (entry id and client id to position), derived.
//! - [`tiles`]: the C2SP tlog-tiles layout: tile paths, their parse, which tiles a tree has.

pub mod audit;
pub mod compact;
pub mod disk;
pub mod envelope;
pub mod hash;
pub mod id_index;
pub mod index;
pub mod keyfile;
pub mod leaf;
pub mod leaf_check;
pub mod note;
pub mod offsets;
pub mod proof;
pub mod records;
pub mod state_note;
pub mod store;
pub mod tiles;
pub mod tree_file;

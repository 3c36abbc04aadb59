//! The on-disk log, on real files in temporary directories: recovery of the record file
//! after torn writes and bit flips, the tree files against a naive reference, the offsets
//! file, and the sled index.

use std::fs;
use std::path::Path;

use lesson_ledger::log::hash::{leaf_hash, Hash};

// `#[path]` so that this file works both as a module of `tests/tests.rs` and as a test
// crate root of its own (cargo also builds every `tests/*.rs` as a binary).
#[path = "storage/faults.rs"]
mod faults;
#[path = "storage/index.rs"]
mod index;
#[path = "storage/offsets.rs"]
mod offsets;
#[path = "storage/records.rs"]
mod records;
#[path = "storage/tree.rs"]
mod tree;

/// Appends raw bytes to a file, as a torn or stray write would leave them.
fn append_bytes(path: &Path, bytes: &[u8]) {
    let mut all = fs::read(path).unwrap();
    all.extend_from_slice(bytes);
    fs::write(path, all).unwrap();
}

/// The hash of test leaf `i`.
fn leaf(i: u64) -> Hash {
    leaf_hash(format!("leaf-{i}").as_bytes())
}

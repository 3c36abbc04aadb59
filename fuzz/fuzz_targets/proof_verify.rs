//! RFC 9162 proof verification (`verify_inclusion`, `verify_consistency`) with fuzzed
//! proofs: the true proof of a 64-leaf tree (computed here by the RFC 6962 §2.1
//! definitions, naively) edited by the fuzzer — hashes replaced, bits flipped, removed,
//! inserted, swapped — with fuzzed indexes, sizes and roots.
//!
//! Never panics, the true proof always verifies, and an accepted proof is the true one:
//! RFC 9162 proofs are unique, so anything else that verifies is a forgery.
#![no_main]

use arbitrary::Arbitrary;
use lesson_ledger::log::hash::{leaf_hash, node_hash, Hash};
use lesson_ledger::log::proof::{verify_consistency, verify_inclusion};
use libfuzzer_sys::fuzz_target;

/// Leaves in the reference tree.
const LEAVES: u64 = 64;

#[derive(Arbitrary, Debug)]
enum Edit {
    Replace { at: u8, hash: [u8; 32] },
    FlipBit { at: u8, bit: u8 },
    Remove { at: u8 },
    Insert { at: u8, hash: [u8; 32] },
    Swap { a: u8, b: u8 },
    Truncate { len: u8 },
}

#[derive(Arbitrary, Debug)]
struct Input {
    consistency: bool,
    /// Inclusion: the index; consistency: the first size.
    a: u64,
    /// The tree size (the second size).
    b: u64,
    /// Which leaf's hash is claimed to be at index `a`.
    leaf: u8,
    /// Roots given instead of the true ones.
    root_a: Option<[u8; 32]>,
    root_b: Option<[u8; 32]>,
    edits: Vec<Edit>,
}

fn hashes() -> Vec<Hash> {
    (0..LEAVES)
        .map(|i| leaf_hash(format!("leaf {i}").as_bytes()))
        .collect()
}

/// Largest power of two smaller than `n` (n >= 2).
fn split(n: usize) -> usize {
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// MTH(D[n]).
fn mth(d: &[Hash]) -> Hash {
    match d.len() {
        0 => Hash::empty_root(),
        1 => d[0],
        n => node_hash(&mth(&d[..split(n)]), &mth(&d[split(n)..])),
    }
}

/// PATH(m, D[n]).
fn path(m: usize, d: &[Hash]) -> Vec<Hash> {
    if d.len() <= 1 {
        return Vec::new();
    }
    let k = split(d.len());
    let (mut p, sibling) = if m < k {
        (path(m, &d[..k]), mth(&d[k..]))
    } else {
        (path(m - k, &d[k..]), mth(&d[..k]))
    };
    p.push(sibling);
    p
}

/// SUBPROOF(m, D[n], b).
fn subproof(m: usize, d: &[Hash], b: bool) -> Vec<Hash> {
    if m == d.len() {
        return if b { Vec::new() } else { vec![mth(d)] };
    }
    let k = split(d.len());
    let (mut p, sibling) = if m <= k {
        (subproof(m, &d[..k], b), mth(&d[k..]))
    } else {
        (subproof(m - k, &d[k..], false), mth(&d[..k]))
    };
    p.push(sibling);
    p
}

fn apply(proof: &mut Vec<Hash>, edit: &Edit) {
    let at = |i: u8, len: usize| (len > 0).then(|| i as usize % len);
    match *edit {
        Edit::Replace { at: i, hash } => {
            if let Some(i) = at(i, proof.len()) {
                proof[i] = Hash(hash);
            }
        }
        Edit::FlipBit { at: i, bit } => {
            if let Some(i) = at(i, proof.len()) {
                proof[i].0[(bit / 8 % 32) as usize] ^= 1 << (bit % 8);
            }
        }
        Edit::Remove { at: i } => {
            if let Some(i) = at(i, proof.len()) {
                proof.remove(i);
            }
        }
        Edit::Insert { at: i, hash } => {
            let i = i as usize % (proof.len() + 1);
            proof.insert(i, Hash(hash));
        }
        Edit::Swap { a, b } => {
            if let (Some(a), Some(b)) = (at(a, proof.len()), at(b, proof.len())) {
                proof.swap(a, b);
            }
        }
        Edit::Truncate { len } => proof.truncate(len as usize),
    }
}

fn in_tree(size: u64) -> bool {
    size <= LEAVES
}

fn check_inclusion(d: &[Hash], input: &Input) {
    let (index, size) = (input.a, input.b);
    let claimed = d[input.leaf as usize % d.len()];
    let truth = (index < size && in_tree(size)).then(|| path(index as usize, &d[..size as usize]));
    let true_root = in_tree(size).then(|| mth(&d[..size as usize]));
    let root = input
        .root_b
        .map(Hash)
        .or(true_root)
        .unwrap_or_else(Hash::empty_root);
    if let (Some(proof), Some(true_root)) = (&truth, true_root) {
        let leaf = d[index as usize];
        assert_eq!(
            verify_inclusion(&leaf, index, size, proof, &true_root),
            Ok(()),
            "the true proof verifies"
        );
    }
    let mut proof = truth.clone().unwrap_or_default();
    input.edits.iter().for_each(|e| apply(&mut proof, e));
    if verify_inclusion(&claimed, index, size, &proof, &root).is_ok() {
        assert_eq!(Some(&proof), truth.as_ref(), "only the true proof verifies");
        assert_eq!(claimed, d[index as usize], "only the true leaf verifies");
        assert_eq!(Some(root), true_root, "only against the true root");
    }
}

fn check_consistency(d: &[Hash], input: &Input) {
    let (size1, size2) = (input.a, input.b);
    let sizes_ok = size1 <= size2 && in_tree(size2);
    let truth =
        (sizes_ok && size1 > 0).then(|| subproof(size1 as usize, &d[..size2 as usize], true));
    let true_root = |s: u64| in_tree(s).then(|| mth(&d[..s as usize]));
    let root1 = input
        .root_a
        .map(Hash)
        .or(true_root(size1))
        .unwrap_or_else(Hash::empty_root);
    let root2 = input
        .root_b
        .map(Hash)
        .or(true_root(size2))
        .unwrap_or_else(Hash::empty_root);
    if let (Some(proof), Some(r1), Some(r2)) = (&truth, true_root(size1), true_root(size2)) {
        assert_eq!(
            verify_consistency(size1, size2, &r1, &r2, proof),
            Ok(()),
            "the true proof verifies"
        );
    }
    let mut proof = truth.clone().unwrap_or_default();
    input.edits.iter().for_each(|e| apply(&mut proof, e));
    if verify_consistency(size1, size2, &root1, &root2, &proof).is_ok() {
        if size1 == size2 {
            // "If first == second, the proof is empty and the roots must be equal": the
            // verifier cannot know the tree, so any size with one root is consistent.
            assert!(proof.is_empty(), "an equal-sizes proof is empty");
            assert_eq!(root1, root2, "equal sizes, equal roots");
            assert!(
                size1 > 0 || root1 == Hash::empty_root(),
                "the empty tree's root"
            );
            return;
        }
        assert!(sizes_ok, "sizes {size1} <= {size2} within the tree");
        assert_eq!(
            proof,
            truth.unwrap_or_default(),
            "only the true proof verifies"
        );
        assert_eq!(Some(root2), true_root(size2), "only the true second root");
        assert_eq!(Some(root1), true_root(size1), "only the true first root");
    }
}

fuzz_target!(|input: Input| {
    let d = hashes();
    if input.consistency {
        check_consistency(&d, &input);
    } else {
        check_inclusion(&d, &input);
    }
});

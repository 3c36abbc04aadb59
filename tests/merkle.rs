//! The Merkle tree, its proofs and their verifiers, checked three ways:
//!
//! - the published RFC 6962 vectors in `tests/data/rfc6962/` (transparency-dev/merkle's
//!   test data, unchanged), every file under the directories, each case named;
//! - a naive implementation written straight from RFC 6962 §2.1's recursive
//!   definitions (MTH, PATH, PROOF/SUBPROOF), against which generation is compared;
//! - property tests: every generated proof verifies, and every described mutation of
//!   it fails (after transparency-dev's `corruptInclusionProof`).
//!
//! The node store is an in-memory [`MemTree`] filled by pushing leaves through
//! [`Frontier`], so the frontier is tested through everything else.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use base64::Engine as _;
use lesson_ledger::log::compact::{CompletedNode, Frontier};
use lesson_ledger::log::hash::{hex_decode, leaf_hash, node_hash, Hash, NodeError, NodeSource};
use lesson_ledger::log::proof::{self, VerifyError};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use serde::Deserialize;

// ---------------------------------------------------------------------------------
// The in-memory node store
// ---------------------------------------------------------------------------------

/// Every complete node of a tree, `levels[level][index]`, stored as the frontier
/// reports them; and the frontier's root after each leaf, `roots[size]`.
struct MemTree {
    frontier: Frontier,
    levels: Vec<Vec<Hash>>,
    roots: Vec<Hash>,
    completed: Vec<CompletedNode>,
}

impl MemTree {
    fn new() -> MemTree {
        let frontier = Frontier::new();
        let roots = vec![frontier.root()];
        MemTree {
            frontier,
            levels: Vec::new(),
            roots,
            completed: Vec::new(),
        }
    }

    fn with_leaves(count: u64) -> MemTree {
        let mut tree = MemTree::new();
        for i in 0..count {
            tree.push(leaf_hash(&leaf_data(i)));
        }
        tree
    }

    fn size(&self) -> u64 {
        self.frontier.size()
    }

    /// Appends a leaf, storing the nodes it completes, and checks the order the
    /// frontier reports them in: the leaf at level 0 first, then one node per level
    /// upwards, each the next node of its level.
    fn push(&mut self, leaf: Hash) {
        let size = self.size();
        self.completed.clear();
        self.frontier
            .push(leaf, &mut self.completed)
            .expect("a test tree is far from full");
        // One node per trailing one bit of the old size, plus the leaf.
        assert_eq!(self.completed.len(), size.trailing_ones() as usize + 1);
        for (k, &(level, index, hash)) in self.completed.iter().enumerate() {
            assert_eq!(usize::from(level), k, "levels go upwards from the leaf");
            assert_eq!(index, size >> level, "node ({level}, ?) after leaf {size}");
            if self.levels.len() == usize::from(level) {
                self.levels.push(Vec::new());
            }
            let row = &mut self.levels[usize::from(level)];
            assert_eq!(row.len() as u64, index, "level {level} completes in order");
            row.push(hash);
        }
        self.roots.push(self.frontier.root());
    }
}

impl NodeSource for MemTree {
    fn node(&self, level: u8, index: u64) -> Result<Hash, NodeError> {
        self.levels
            .get(usize::from(level))
            .and_then(|row| row.get(usize::try_from(index).ok()?))
            .copied()
            .ok_or(NodeError::Missing { level, index })
    }
}

/// The bytes of leaf `i` in the test trees.
fn leaf_data(i: u64) -> Vec<u8> {
    format!("entry-{i:06}").into_bytes()
}

fn leaves_data(count: u64) -> Vec<Vec<u8>> {
    (0..count).map(leaf_data).collect()
}

/// One tree of 5000 leaves shared by the property tests: a source holding a tree of
/// at least the requested size serves every smaller size too.
fn big_tree() -> &'static MemTree {
    static TREE: OnceLock<MemTree> = OnceLock::new();
    TREE.get_or_init(|| MemTree::with_leaves(5000))
}

// ---------------------------------------------------------------------------------
// Naive reference: RFC 6962 §2.1, recursion for recursion
// ---------------------------------------------------------------------------------

/// "k be the largest power of two smaller than n (i.e., k < n <= 2k)"
fn split(n: usize) -> usize {
    assert!(n > 1);
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// RFC 6962 §2.1: "The hash of an empty list is the hash of an empty string:
/// MTH({}) = SHA-256(). The hash of a list with one entry (also known as a leaf hash)
/// is: MTH({d(0)}) = SHA-256(0x00 || d(0)). For n > 1, ... MTH(D[n]) =
/// SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))".
fn naive_mth(d: &[Vec<u8>]) -> Hash {
    match d.len() {
        0 => Hash::empty_root(),
        1 => leaf_hash(&d[0]),
        n => {
            let k = split(n);
            node_hash(&naive_mth(&d[..k]), &naive_mth(&d[k..]))
        }
    }
}

/// RFC 6962 §2.1.1: "The path for the single leaf in a tree with a one-element input
/// list D[1] = {d(0)} is empty: PATH(0, {d(0)}) = {}. For n > 1, ... PATH(m, D[n]) =
/// PATH(m, D[0:k]) : MTH(D[k:n]) for m < k; and PATH(m, D[n]) = PATH(m - k, D[k:n]) :
/// MTH(D[0:k]) for m >= k".
fn naive_path(m: usize, d: &[Vec<u8>]) -> Vec<Hash> {
    let n = d.len();
    if n == 1 {
        assert_eq!(m, 0);
        return Vec::new();
    }
    let k = split(n);
    let (mut path, sibling) = if m < k {
        (naive_path(m, &d[..k]), naive_mth(&d[k..]))
    } else {
        (naive_path(m - k, &d[k..]), naive_mth(&d[..k]))
    };
    path.push(sibling);
    path
}

/// RFC 6962 §2.1.2: "PROOF(m, D[n]) = SUBPROOF(m, D[n], true)".
fn naive_proof(m: usize, d: &[Vec<u8>]) -> Vec<Hash> {
    naive_subproof(m, d, true)
}

/// RFC 6962 §2.1.2: "SUBPROOF(m, D[m], true) = {} ... SUBPROOF(m, D[m], false) =
/// {MTH(D[m])}. For m < n, ... If m <= k, ... SUBPROOF(m, D[n], b) = SUBPROOF(m,
/// D[0:k], b) : MTH(D[k:n]). If m > k, ... SUBPROOF(m, D[n], b) = SUBPROOF(m - k,
/// D[k:n], false) : MTH(D[0:k])".
fn naive_subproof(m: usize, d: &[Vec<u8>], b: bool) -> Vec<Hash> {
    let n = d.len();
    if m == n {
        return if b { Vec::new() } else { vec![naive_mth(d)] };
    }
    let k = split(n);
    let (mut proof, sibling) = if m <= k {
        (naive_subproof(m, &d[..k], b), naive_mth(&d[k..]))
    } else {
        (naive_subproof(m - k, &d[k..], false), naive_mth(&d[..k]))
    };
    proof.push(sibling);
    proof
}

#[test]
fn naive_reference_reproduces_the_rfc_example() {
    // RFC 6962 §2.1.3's seven-leaf tree: "The audit path for d0 is [b, h, l]" and
    // "PROOF(3, D[7]) = [c, d, g, l]", with b, c, d the leaves 1, 2, 3, g = [0, 2),
    // h = [2, 4), l = [4, 7).
    let d = leaves_data(7);
    let l = naive_mth(&d[4..7]);
    assert_eq!(
        naive_path(0, &d),
        [leaf_hash(&d[1]), naive_mth(&d[2..4]), l]
    );
    assert_eq!(
        naive_proof(3, &d),
        [leaf_hash(&d[2]), leaf_hash(&d[3]), naive_mth(&d[0..2]), l]
    );
}

// ---------------------------------------------------------------------------------
// Reference tree and published vectors
// ---------------------------------------------------------------------------------

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/rfc6962")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReferenceTree {
    #[allow(dead_code)]
    description: String,
    leaves_hex: Vec<String>,
    roots_hex: Vec<String>,
    hasher_vectors: HasherVectors,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HasherVectors {
    empty_tree: String,
    empty_leaf: String,
}

#[test]
fn reference_tree_roots_for_sizes_0_to_8() {
    let text = include_str!("data/rfc6962/reference-tree.json");
    let reference: ReferenceTree = serde_json::from_str(text).expect("reference-tree.json");
    assert_eq!(
        Hash::empty_root().to_hex(),
        reference.hasher_vectors.empty_tree
    );
    assert_eq!(leaf_hash(b"").to_hex(), reference.hasher_vectors.empty_leaf);

    let leaves: Vec<Vec<u8>> = reference
        .leaves_hex
        .iter()
        .map(|hex| hex_decode(hex).expect("leaf hex"))
        .collect();
    assert_eq!(reference.roots_hex.len(), leaves.len() + 1);
    let mut tree = MemTree::new();
    for leaf in &leaves {
        tree.push(leaf_hash(leaf));
    }
    for (size, want) in reference.roots_hex.iter().enumerate() {
        let want = Hash::from_hex(want).expect("root hex");
        assert_eq!(tree.roots[size], want, "frontier root of size {size}");
        assert_eq!(
            proof::root(&tree, size as u64).unwrap(),
            want,
            "proof::root of size {size}"
        );
        assert_eq!(naive_mth(&leaves[..size]), want, "naive MTH of size {size}");
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct InclusionCase {
    leaf_idx: u64,
    tree_size: u64,
    root: String,
    leaf_hash: String,
    proof: Option<Vec<String>>,
    desc: String,
    want_err: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ConsistencyCase {
    size1: u64,
    size2: u64,
    root1: String,
    root2: String,
    proof: Option<Vec<String>>,
    desc: String,
    want_err: bool,
}

/// Every `.json` file under `dir`, recursively, sorted so failures list stably.
fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries =
            std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "json") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// A vector's hash field, decoded. The vectors were written for verifiers taking byte
/// strings, and some carry values that are not 32-byte digests (`""`, `"WrongRoot"`,
/// `"don't care"`). Our verifiers take [`Hash`], so such a value never reaches them: the
/// parse refuses it first, which is our verdict for the case. The `stand_in` — the value
/// itself, or for a non-digest a digest derived from its bytes (equal values stay
/// equal, and none equals a hash of the tree) — lets a case still be run through the
/// verifier where the divergences below need it.
struct VectorHash {
    digest: Option<Hash>,
    stand_in: Hash,
}

fn vector_hash(base64_text: &str, what: &str, case: &str) -> VectorHash {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(base64_text)
        .unwrap_or_else(|e| panic!("{case}: {what} is not base64: {e}"));
    let digest = Hash::from_base64(base64_text);
    assert_eq!(digest, Hash::from_slice(&bytes), "{case}: {what}");
    let stand_in = digest.unwrap_or_else(|| {
        let mut tagged = b"not a sha-256 digest: ".to_vec();
        tagged.extend_from_slice(&bytes);
        leaf_hash(&tagged)
    });
    VectorHash { digest, stand_in }
}

/// The one published case our verdict differs from, and why. Its roots are 12-byte
/// placeholders that a verifier of 32-byte digests cannot receive, so we refuse it at
/// the parse; the relation it tests (equal sizes, equal roots, empty proof: consistent)
/// holds for our verifier, which the test checks on stand-in digests.
const PARSE_DIVERGENCES: &[&str] =
    &["consistency/additional/sizes-are-equal-one-and-proof-is-empty.json"];

/// Published cases that only the parse can refuse, and why: their leaf and root are
/// the same empty string, and a one-leaf tree's root is its leaf, so any verifier given
/// equal values accepts.
const STAND_INS_ACCEPTED: &[&str] = &["inclusion/single-entry/empty-root-and-leaf.json"];

/// The outcome of one case: the fields the parse refused, and the verifier's result
/// on the stand-ins.
struct Outcome {
    refused: Vec<String>,
    verified: Result<(), VerifyError>,
}

impl Outcome {
    /// Whether our verdict agrees with `want_err`; for a listed divergence, whether it
    /// diverges exactly as documented.
    fn check(&self, name: &str, want_err: bool) -> Result<(), String> {
        let rejected = !self.refused.is_empty() || self.verified.is_err();
        let describe = || {
            format!(
                "wantErr {want_err}; not digests: {:?}; verifier: {:?}",
                self.refused, self.verified
            )
        };
        if PARSE_DIVERGENCES.contains(&name) {
            let as_documented = !want_err && !self.refused.is_empty() && self.verified.is_ok();
            return if as_documented {
                Ok(())
            } else {
                Err(format!(
                    "listed divergence no longer as documented: {}",
                    describe()
                ))
            };
        }
        if rejected != want_err {
            return Err(describe());
        }
        // A refused value must not be the only thing wrong: had it been a digest, the
        // verifier must still reject the case (a wrong root must fail as a root).
        let only_the_parse = want_err && !self.refused.is_empty() && self.verified.is_ok();
        if only_the_parse && !STAND_INS_ACCEPTED.contains(&name) {
            return Err(format!("only the parse refuses it: {}", describe()));
        }
        Ok(())
    }
}

/// Decodes the named fields and the proof, noting which are not digests.
fn decode_case(
    fields: &[(&str, &str)],
    proof: &Option<Vec<String>>,
    label: &str,
) -> (Vec<Hash>, Vec<Hash>, Vec<String>) {
    let mut refused = Vec::new();
    let mut decode = |what: String, text: &str| {
        let hash = vector_hash(text, &what, label);
        if hash.digest.is_none() {
            refused.push(what);
        }
        hash.stand_in
    };
    let values = fields
        .iter()
        .map(|(what, text)| decode(what.to_string(), text))
        .collect();
    let path = proof
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, text)| decode(format!("proof[{i}]"), text))
        .collect();
    (values, path, refused)
}

/// Runs every case file under `kind`, returning (cases run, description of each case
/// whose outcome is wrong).
fn run_vectors(kind: &str, run: impl Fn(&str, &str) -> Result<(), String>) -> (usize, Vec<String>) {
    let dir = data_dir().join(kind);
    let files = json_files(&dir);
    let mut failures = Vec::new();
    for path in &files {
        let name = path
            .strip_prefix(data_dir())
            .unwrap_or(path)
            .display()
            .to_string();
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{name}: {e}"));
        if let Err(outcome) = run(&name, &text) {
            failures.push(format!("{name}: {outcome}"));
        }
    }
    (files.len(), failures)
}

#[test]
fn every_published_inclusion_vector() {
    let (count, failures) = run_vectors("inclusion", |name, text| {
        let case: InclusionCase =
            serde_json::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let label = format!("{name} ({})", case.desc);
        let fields = [("leafHash", case.leaf_hash.as_str()), ("root", &case.root)];
        let (values, path, refused) = decode_case(&fields, &case.proof, &label);
        let verified =
            proof::verify_inclusion(&values[0], case.leaf_idx, case.tree_size, &path, &values[1]);
        let outcome = Outcome { refused, verified };
        outcome
            .check(name, case.want_err)
            .map_err(|e| format!("{}: {e}", case.desc))
    });
    assert!(count >= 60, "only {count} inclusion vectors found");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_published_consistency_vector() {
    let (count, failures) = run_vectors("consistency", |name, text| {
        let case: ConsistencyCase =
            serde_json::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let label = format!("{name} ({})", case.desc);
        let fields = [("root1", case.root1.as_str()), ("root2", &case.root2)];
        let (values, path, refused) = decode_case(&fields, &case.proof, &label);
        let verified =
            proof::verify_consistency(case.size1, case.size2, &values[0], &values[1], &path);
        let outcome = Outcome { refused, verified };
        outcome
            .check(name, case.want_err)
            .map_err(|e| format!("{}: {e}", case.desc))
    });
    assert!(count >= 60, "only {count} consistency vectors found");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn published_happy_paths_are_the_proofs_we_generate() {
    // The happy paths are over the reference tree's leaves: our generator must give
    // exactly the published proofs, not merely proofs that verify.
    let text = include_str!("data/rfc6962/reference-tree.json");
    let reference: ReferenceTree = serde_json::from_str(text).expect("reference-tree.json");
    let mut tree = MemTree::new();
    for hex in &reference.leaves_hex {
        tree.push(leaf_hash(&hex_decode(hex).expect("leaf hex")));
    }
    let mut checked = 0;
    for path in json_files(&data_dir().join("inclusion")) {
        if !path.ends_with("happy-path.json") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("vector");
        let case: InclusionCase = serde_json::from_str(&text).expect("inclusion vector");
        let name = path.display().to_string();
        let (_, want, refused) = decode_case(&[], &case.proof, &name);
        assert!(refused.is_empty(), "{name}: {refused:?}");
        let got = proof::inclusion_proof(&tree, case.leaf_idx, case.tree_size).unwrap();
        assert_eq!(got, want, "{name}");
        checked += 1;
    }
    for path in json_files(&data_dir().join("consistency")) {
        if !path.ends_with("happy-path.json") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("vector");
        let case: ConsistencyCase = serde_json::from_str(&text).expect("consistency vector");
        let name = path.display().to_string();
        let (_, want, refused) = decode_case(&[], &case.proof, &name);
        assert!(refused.is_empty(), "{name}: {refused:?}");
        let got = proof::consistency_proof(&tree, case.size1, case.size2).unwrap();
        assert_eq!(got, want, "{name}");
        checked += 1;
    }
    assert!(checked >= 8, "only {checked} happy paths found");
}

// ---------------------------------------------------------------------------------
// Generation against the naive reference
// ---------------------------------------------------------------------------------

#[test]
fn frontier_nodes_are_the_naive_subtree_hashes() {
    let d = leaves_data(300);
    let tree = MemTree::with_leaves(300);
    for (level, row) in tree.levels.iter().enumerate() {
        assert_eq!(row.len(), 300 >> level, "complete nodes at level {level}");
        for (index, hash) in row.iter().enumerate() {
            let (begin, end) = (index << level, (index + 1) << level);
            assert_eq!(
                *hash,
                naive_mth(&d[begin..end]),
                "node ({level}, {index}) over leaves [{begin}, {end})"
            );
        }
    }
    assert_eq!(tree.levels.len(), 9, "300 leaves make nodes up to level 8");
    for size in 0..=300 {
        assert_eq!(
            tree.roots[size],
            naive_mth(&d[..size]),
            "root of size {size}"
        );
    }
}

#[test]
fn every_proof_up_to_64_leaves_matches_the_naive_reference() {
    let d = leaves_data(64);
    let tree = MemTree::with_leaves(64);
    for n in 1..=64usize {
        let size = n as u64;
        for m in 0..n {
            let got = proof::inclusion_proof(&tree, m as u64, size).unwrap();
            assert_eq!(got, naive_path(m, &d[..n]), "PATH({m}, D[{n}])");
            proof::verify_inclusion(&leaf_hash(&d[m]), m as u64, size, &got, &tree.roots[n])
                .unwrap_or_else(|e| panic!("PATH({m}, D[{n}]) does not verify: {e}"));
        }
        for m in 1..=n {
            let got = proof::consistency_proof(&tree, m as u64, size).unwrap();
            assert_eq!(got, naive_proof(m, &d[..n]), "PROOF({m}, D[{n}])");
            proof::verify_consistency(m as u64, size, &tree.roots[m], &tree.roots[n], &got)
                .unwrap_or_else(|e| panic!("PROOF({m}, D[{n}]) does not verify: {e}"));
        }
    }
}

#[test]
fn subtree_roots_are_the_naive_mth_of_their_range() {
    let d = leaves_data(64);
    let tree = MemTree::with_leaves(64);
    for begin in 0..64usize {
        for end in begin + 1..=64 {
            let width = (end - begin).next_power_of_two();
            let got = proof::subtree_root(&tree, begin as u64, end as u64);
            if begin % width == 0 {
                assert_eq!(got.unwrap(), naive_mth(&d[begin..end]), "[{begin}, {end})");
            } else {
                let err = got.unwrap_err();
                assert_eq!(err.code(), "not_a_subtree", "[{begin}, {end})");
            }
        }
    }
}

fn seeded_config(cases: u32) -> Config {
    let config = Config::with_cases(cases);
    // Seeded randomness: a fixed seed unless PROPTEST_RNG_SEED names another; with
    // failure persistence off, the seed alone replays a failure.
    let rng_seed = match config.rng_seed {
        RngSeed::Random => RngSeed::Fixed(0x4c65_7373_6f6e),
        chosen => chosen,
    };
    Config {
        rng_seed,
        failure_persistence: None,
        ..config
    }
}

proptest! {
    #![proptest_config(seeded_config(48))]

    #[test]
    fn large_random_proofs_match_the_naive_reference(
        (n, m) in (1..=5000usize).prop_flat_map(|n| (Just(n), 0..n)),
        size1 in 1..=5000usize,
    ) {
        let tree = big_tree();
        let d = leaves_data(5000);
        let got = proof::inclusion_proof(tree, m as u64, n as u64).unwrap();
        prop_assert_eq!(got, naive_path(m, &d[..n]), "PATH({}, D[{}])", m, n);
        let size1 = size1.min(n);
        let got = proof::consistency_proof(tree, size1 as u64, n as u64).unwrap();
        prop_assert_eq!(got, naive_proof(size1, &d[..n]), "PROOF({}, D[{}])", size1, n);
    }
}

// ---------------------------------------------------------------------------------
// Restore
// ---------------------------------------------------------------------------------

#[test]
fn restore_gives_back_the_frontier_it_was_saved_from() {
    let mut original = MemTree::new();
    let full = MemTree::with_leaves(300);
    for size in 0..=300u64 {
        let restored = Frontier::restore(size, &full).unwrap();
        assert_eq!(restored, original.frontier, "frontier of size {size}");
        assert_eq!(
            restored.root(),
            original.roots[size as usize],
            "size {size}"
        );

        // And it grows on as the original does: the same nodes complete.
        if size < 300 {
            let leaf = leaf_hash(&leaf_data(size));
            let mut continued = restored.clone();
            let mut completed = Vec::new();
            continued.push(leaf, &mut completed).unwrap();
            original.push(leaf);
            assert_eq!(completed, original.completed, "push after restoring {size}");
            assert_eq!(continued, original.frontier, "size {}", size + 1);
        }
    }
}

#[test]
fn restore_from_a_store_missing_nodes_is_an_error() {
    let tree = MemTree::with_leaves(10);
    let err = Frontier::restore(11, &tree).unwrap_err();
    assert_eq!(err.code(), "node_missing");
    let err = Frontier::restore(16, &tree).unwrap_err();
    assert_eq!(err.code(), "node_missing");
}

// ---------------------------------------------------------------------------------
// Property tests: proofs verify, and every mutation fails
// ---------------------------------------------------------------------------------

fn flip_bit(hash: &Hash, bit: usize) -> Hash {
    let mut bytes = hash.0;
    bytes[(bit / 8) % 32] ^= 1 << (bit % 8);
    Hash(bytes)
}

#[derive(Clone, Debug)]
struct InclusionClaim {
    leaf: Hash,
    index: u64,
    size: u64,
    proof: Vec<Hash>,
    root: Hash,
}

impl InclusionClaim {
    fn verify(&self) -> Result<(), VerifyError> {
        proof::verify_inclusion(&self.leaf, self.index, self.size, &self.proof, &self.root)
    }
}

/// Each way to corrupt a true inclusion claim, described; none may verify (after
/// transparency-dev/merkle's `corruptInclusionProof`). Sizes change only by doubling
/// or halving: a proof for size n can also verify for size n + 1 against the root of
/// size n (see `proof`'s module docs), which is why root and size come from one
/// checkpoint.
fn corrupt_inclusion(claim: &InclusionClaim, bit: usize) -> Vec<(String, InclusionClaim)> {
    let mut out = Vec::new();
    let mut add = |desc: String, change: &dyn Fn(&mut InclusionClaim)| {
        let mut mutated = claim.clone();
        change(&mut mutated);
        out.push((desc, mutated));
    };
    add("index - 1 (wrapping)".into(), &|c| {
        c.index = c.index.wrapping_sub(1)
    });
    add("index + 1".into(), &|c| c.index += 1);
    add("index ^ 2".into(), &|c| c.index ^= 2);
    add("size * 2".into(), &|c| c.size *= 2);
    add("size / 2".into(), &|c| c.size /= 2);
    add(format!("leaf hash bit {bit} flipped"), &|c| {
        c.leaf = flip_bit(&c.leaf, bit)
    });
    add(format!("root bit {bit} flipped"), &|c| {
        c.root = flip_bit(&c.root, bit)
    });
    add("root is the empty tree's".into(), &|c| {
        c.root = Hash::empty_root()
    });
    add("hash appended".into(), &|c| c.proof.push(c.leaf));
    add("empty-tree hash prepended".into(), &|c| {
        c.proof.insert(0, Hash::empty_root())
    });
    let len = claim.proof.len();
    if len > 0 {
        add("last hash removed".into(), &|c| {
            c.proof.pop();
        });
        add("first hash removed".into(), &|c| {
            c.proof.remove(0);
        });
        add("first hash repeated".into(), &|c| {
            c.proof.insert(0, c.proof[0])
        });
    }
    for i in 0..len {
        add(format!("proof[{i}] bit {bit} flipped"), &|c| {
            c.proof[i] = flip_bit(&c.proof[i], bit)
        });
    }
    for i in 1..len {
        if claim.proof[i - 1] != claim.proof[i] {
            add(format!("proof[{}] and proof[{i}] swapped", i - 1), &|c| {
                c.proof.swap(i - 1, i)
            });
        }
    }
    out
}

#[derive(Clone, Debug)]
struct ConsistencyClaim {
    size1: u64,
    size2: u64,
    root1: Hash,
    root2: Hash,
    proof: Vec<Hash>,
}

impl ConsistencyClaim {
    fn verify(&self) -> Result<(), VerifyError> {
        proof::verify_consistency(
            self.size1,
            self.size2,
            &self.root1,
            &self.root2,
            &self.proof,
        )
    }
}

/// Each way to corrupt a true consistency claim, described; none may verify (after
/// transparency-dev/merkle's `corruptConsistencyProof`).
fn corrupt_consistency(claim: &ConsistencyClaim, bit: usize) -> Vec<(String, ConsistencyClaim)> {
    let mut out = Vec::new();
    let mut add = |desc: String, change: &dyn Fn(&mut ConsistencyClaim)| {
        let mut mutated = claim.clone();
        change(&mut mutated);
        out.push((desc, mutated));
    };
    add("size1 - 1".into(), &|c| c.size1 -= 1);
    add("size1 + 1".into(), &|c| c.size1 += 1);
    add("size1 ^ 2".into(), &|c| c.size1 ^= 2);
    add("size2 * 2".into(), &|c| c.size2 *= 2);
    add("size2 / 2".into(), &|c| c.size2 /= 2);
    add(format!("root1 bit {bit} flipped"), &|c| {
        c.root1 = flip_bit(&c.root1, bit)
    });
    add(format!("root2 bit {bit} flipped"), &|c| {
        c.root2 = flip_bit(&c.root2, bit)
    });
    add("root1 is the empty tree's".into(), &|c| {
        c.root1 = Hash::empty_root()
    });
    if claim.root1 != claim.root2 {
        add("roots swapped".into(), &|c| {
            std::mem::swap(&mut c.root1, &mut c.root2)
        });
    }
    add("root1 appended".into(), &|c| c.proof.push(c.root1));
    add("empty-tree hash prepended".into(), &|c| {
        c.proof.insert(0, Hash::empty_root())
    });
    let len = claim.proof.len();
    if len > 0 {
        add("last hash removed".into(), &|c| {
            c.proof.pop();
        });
        add("first hash removed".into(), &|c| {
            c.proof.remove(0);
        });
        add("first hash repeated".into(), &|c| {
            c.proof.insert(0, c.proof[0])
        });
    }
    for i in 0..len {
        add(format!("proof[{i}] bit {bit} flipped"), &|c| {
            c.proof[i] = flip_bit(&c.proof[i], bit)
        });
    }
    for i in 1..len {
        if claim.proof[i - 1] != claim.proof[i] {
            add(format!("proof[{}] and proof[{i}] swapped", i - 1), &|c| {
                c.proof.swap(i - 1, i)
            });
        }
    }
    out
}

proptest! {
    #![proptest_config(seeded_config(256))]

    #[test]
    fn inclusion_proofs_verify_and_every_mutation_fails(
        (size, index) in (1..=5000u64).prop_flat_map(|size| (Just(size), 0..size)),
        bit in 0..256usize,
    ) {
        let tree = big_tree();
        let claim = InclusionClaim {
            leaf: leaf_hash(&leaf_data(index)),
            index,
            size,
            proof: proof::inclusion_proof(tree, index, size).unwrap(),
            root: proof::root(tree, size).unwrap(),
        };
        prop_assert_eq!(claim.root, tree.roots[size as usize]);
        prop_assert_eq!(claim.verify(), Ok(()), "index {} size {}", index, size);
        for (desc, mutated) in corrupt_inclusion(&claim, bit) {
            prop_assert!(
                mutated.verify().is_err(),
                "mutation '{}' of the proof of leaf {} in size {} verified", desc, index, size
            );
        }
    }

    #[test]
    fn consistency_proofs_verify_and_every_mutation_fails(
        (size2, size1) in (1..=5000u64).prop_flat_map(|size2| (Just(size2), 1..=size2)),
        bit in 0..256usize,
    ) {
        let tree = big_tree();
        let claim = ConsistencyClaim {
            size1,
            size2,
            root1: proof::root(tree, size1).unwrap(),
            root2: proof::root(tree, size2).unwrap(),
            proof: proof::consistency_proof(tree, size1, size2).unwrap(),
        };
        prop_assert_eq!(claim.verify(), Ok(()), "size1 {} size2 {}", size1, size2);
        for (desc, mutated) in corrupt_consistency(&claim, bit) {
            prop_assert!(
                mutated.verify().is_err(),
                "mutation '{}' of the proof from {} to {} verified", desc, size1, size2
            );
        }
    }
}

//! A state map kept across a clean close (issue 15): sealed with its files' checksums,
//! reused by the next open only when the seal names the state sled's head names and
//! the files hold what it says, and removed before anything can change them. Anything
//! else is rebuilt from the objects, never trusted.

use std::collections::BTreeMap;
use std::os::unix::fs::FileExt;
use std::path::Path;

use lesson_ledger::ledger::state_map::proof::{map_key, root_of, value_hash, Hash};
use lesson_ledger::ledger::state_map::{
    ArenaError, MapTree, SealError, StateMap, NODE_FILES, SEAL_FILE,
};
use lesson_ledger::ledger::writer::Ledger;
use lesson_ledger::ledger::{Table, Value};
use lesson_ledger::log::store::Outcome;
use rand::{Rng, SeedableRng};
use tempfile::TempDir;

use crate::ledger::{ledger_with, operator};
use crate::support::{register_institution, verified};

/// A map in files and its definition (map key → value hash), changed together.
struct Sealable {
    tree: MapTree,
    reference: BTreeMap<Hash, Hash>,
}

impl Sealable {
    fn apply(&mut self, changes: Vec<(Hash, Option<Hash>)>) {
        for (key, value) in &changes {
            match value {
                Some(v) => self.reference.insert(*key, *v),
                None => self.reference.remove(key),
            };
        }
        self.tree.update(changes).unwrap();
    }

    fn definition(&self) -> Hash {
        root_of(self.reference.iter().map(|(k, v)| (*k, *v)))
    }
}

/// A batch of random writes and deletes over keys `0..keys`.
fn random_batch(rng: &mut impl Rng, keys: u32, n: usize) -> Vec<(Hash, Option<Hash>)> {
    (0..n)
        .map(|_| {
            let key = map_key(Table::Claim, &format!("c-{}", rng.gen_range(0..keys)));
            let value = rng
                .gen_bool(0.7)
                .then(|| value_hash(&rng.gen::<u64>().to_be_bytes()));
            (key, value)
        })
        .collect()
}

/// A map of a few thousand keys with deletes among its writes (so that its free lists
/// are not empty), in files of `dir`.
fn a_map_in(dir: &Path, rng: &mut impl Rng) -> Sealable {
    let mut map = Sealable {
        tree: MapTree::in_dir(dir).unwrap(),
        reference: BTreeMap::new(),
    };
    for _ in 0..20 {
        map.apply(random_batch(rng, 3_000, 400));
    }
    assert_eq!(map.tree.root(), map.definition());
    map
}

#[test]
fn a_sealed_map_reopens_as_it_was_and_changes_as_any_other() {
    let dir = TempDir::new().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(15);
    let map = a_map_in(dir.path(), &mut rng);
    let root = map.tree.root();
    map.tree.seal(42).unwrap();
    drop(map.tree);
    let tree = MapTree::unseal(dir.path(), 42, &root).unwrap();
    assert!(!dir.path().join(SEAL_FILE).exists(), "the seal is taken");
    let mut map = Sealable {
        tree,
        reference: map.reference,
    };
    assert_eq!(
        (map.tree.root(), map.tree.len()),
        (root, map.reference.len())
    );
    for key in map.reference.keys().take(50) {
        let proof = map.tree.prove(key);
        assert_eq!(proof.leaf.map(|l| l.key), Some(*key));
    }
    // Its free slots were kept: later writes and deletes reuse them and still give the
    // definition's root.
    for _ in 0..10 {
        map.apply(random_batch(&mut rng, 4_000, 300));
        assert_eq!(map.tree.root(), map.definition());
    }
    assert!(
        matches!(
            MapTree::unseal(dir.path(), 42, &root),
            Err(SealError::Missing)
        ),
        "a seal is used once"
    );
}

/// Seals `map` as the state of log size 7 and tries to reopen it after `damage`.
fn unseal_after(dir: &Path, map: &Sealable, damage: impl FnOnce()) -> Result<MapTree, SealError> {
    map.tree.seal(7).unwrap();
    damage();
    MapTree::unseal(dir, 7, &map.tree.root())
}

#[test]
fn a_seal_of_another_state_or_over_changed_files_is_refused() {
    let dir = TempDir::new().unwrap();
    let map = a_map_in(dir.path(), &mut rand::rngs::StdRng::seed_from_u64(16));
    let root = map.tree.root();
    map.tree.seal(7).unwrap();
    let refused = MapTree::unseal(dir.path(), 8, &root);
    assert!(matches!(
        refused,
        Err(SealError::OtherState { sealed: 7, head: 8 })
    ));
    map.tree.seal(7).unwrap();
    let other_root = MapTree::unseal(dir.path(), 7, &[9; 32]);
    assert!(matches!(other_root, Err(SealError::OtherState { .. })));

    let file = |name: &str| {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(dir.path().join(name))
            .unwrap()
    };
    for name in NODE_FILES {
        // One byte of a record changed while the ledger was closed.
        let mut byte = [0u8];
        file(name).read_exact_at(&mut byte, 100).unwrap();
        let flipped = unseal_after(dir.path(), &map, || {
            file(name).write_all_at(&[byte[0] ^ 0x10], 100).unwrap()
        });
        assert!(
            matches!(flipped, Err(SealError::Files(ArenaError::Checksum { .. }))),
            "{name}: {flipped:?}"
        );
        file(name).write_all_at(&byte, 100).unwrap();
    }
    let garbled = unseal_after(dir.path(), &map, || {
        std::fs::write(dir.path().join(SEAL_FILE), b"LLMSEAL1 and then not a seal").unwrap()
    });
    assert!(matches!(garbled, Err(SealError::Garbled)), "{garbled:?}");
    // Undamaged, it reopens (the map above was never changed, only sealed again).
    assert_eq!(unseal_after(dir.path(), &map, || {}).unwrap().root(), root);
}

/// Appends `n` registrations (institutions `from..from + n`) to `ledger`.
fn register(ledger: &mut Ledger, dir: &Path, from: u64, n: u64) {
    let op = operator(dir);
    let batch = (from..from + n)
        .map(|i| verified(register_institution(&op, i)))
        .collect();
    for outcome in ledger.submit(batch).unwrap() {
        assert!(matches!(outcome, Outcome::Ok(_)), "{outcome:?}");
    }
}

/// The ledger's root, which must be the map of its objects, freshly built.
fn checked_root(ledger: &Ledger) -> Hash {
    let state = ledger.state();
    let objects: Vec<_> = Table::ALL.iter().flat_map(|t| state.scan(*t)).collect();
    let fresh = StateMap::of(objects.iter().map(|(k, v): &(_, Value)| (k, v)));
    assert_eq!(state.root(), fresh.root());
    state.root()
}

#[test]
fn a_ledger_closed_cleanly_reuses_its_map_files_and_one_that_crashed_rebuilds_them() {
    let dir = TempDir::new().unwrap();
    let ledger = ledger_with(dir.path(), 12);
    let root = checked_root(&ledger);
    ledger.close().unwrap();
    assert!(
        dir.path().join(SEAL_FILE).exists(),
        "a clean close seals the map"
    );

    let (mut ledger, _) = Ledger::open(dir.path()).unwrap();
    assert!(ledger.state().map_reused(), "the sealed files are reused");
    assert!(!dir.path().join(SEAL_FILE).exists(), "and the seal removed");
    assert_eq!(checked_root(&ledger), root);
    register(&mut ledger, dir.path(), 100, 5);
    let grown = checked_root(&ledger);
    // A crash: the files changed since the seal, which is gone.
    drop(ledger);

    let (mut ledger, _) = Ledger::open(dir.path()).unwrap();
    assert!(!ledger.state().map_reused(), "rebuilt");
    assert_eq!(checked_root(&ledger), grown);
    register(&mut ledger, dir.path(), 200, 3);
    let root = checked_root(&ledger);
    ledger.close().unwrap();
    let (ledger, _) = Ledger::open(dir.path()).unwrap();
    assert!(ledger.state().map_reused());
    assert_eq!(checked_root(&ledger), root);
}

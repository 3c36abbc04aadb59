//! The state map (`schemas/README.md`, "State map"): the tree against the definition,
//! proofs of presence and absence, every kind of bad proof refused with its own code
//! (each with the nodes on the heap and in files), and the map persisted beside the
//! state, through reopen and interrupted batches, its node files never trusted.

use std::collections::BTreeMap;

use lesson_ledger::ledger::objects::Pool;
use lesson_ledger::ledger::sled_state::{SledState, STATE_TREE};
use lesson_ledger::ledger::state_map::proof::{
    map_key, reference_proof, root_of, value_bytes, value_hash, Hash, KEY_BITS,
};
use lesson_ledger::ledger::state_map::{MapTree, StateMap, StateProof, NODE_FILES, ZERO};
use lesson_ledger::ledger::units::Fen;
use lesson_ledger::ledger::writer::Ledger;
use lesson_ledger::ledger::{Key, StateView, Table, Value};
use lesson_ledger::log::records::RecordKind;
use lesson_ledger::log::state_note::StateNote;
use rand::{Rng, SeedableRng};
use tempfile::TempDir;

use crate::audit::kinds_and_bodies;
use crate::ledger::{ledger_with, operator};

fn id(i: u32) -> String {
    format!("c-{i:05}")
}

fn bytes_of(i: u32, version: u32) -> Vec<u8> {
    format!("{{\"claim\":{{\"n\":{i},\"v\":{version}}}}}").into_bytes()
}

/// Where a test tree keeps its nodes.
#[derive(Debug, Clone, Copy)]
enum Arena {
    Heap,
    File,
}

const ARENAS: [Arena; 2] = [Arena::Heap, Arena::File];

/// An empty tree in `arena`, with the directory of its files (removed when dropped).
fn empty_tree(arena: Arena) -> (MapTree, Option<TempDir>) {
    match arena {
        Arena::Heap => (MapTree::new(), None),
        Arena::File => {
            let dir = TempDir::new().unwrap();
            (MapTree::in_dir(dir.path()).unwrap(), Some(dir))
        }
    }
}

/// A tree and its reference (map key → value hash), changed together.
struct Both {
    tree: MapTree,
    reference: BTreeMap<Hash, Hash>,
    _dir: Option<TempDir>,
}

impl Both {
    fn new(arena: Arena) -> Both {
        let (tree, dir) = empty_tree(arena);
        Both {
            tree,
            reference: BTreeMap::new(),
            _dir: dir,
        }
    }
}

impl Both {
    fn apply(&mut self, batch: Vec<(u32, Option<u32>)>) {
        let mut changes = Vec::new();
        for (i, version) in batch {
            let key = map_key(Table::Claim, &id(i));
            let vh = version.map(|v| value_hash(&bytes_of(i, v)));
            match vh {
                Some(h) => self.reference.insert(key, h),
                None => self.reference.remove(&key),
            };
            changes.push((key, vh));
        }
        self.tree.update(changes).unwrap();
    }

    fn reference_root(&self) -> Hash {
        root_of(self.reference.iter().map(|(k, v)| (*k, *v)))
    }
}

#[test]
fn the_tree_equals_the_definition_for_random_sets_with_updates_and_deletes() {
    for arena in ARENAS {
        equals_the_definition(arena);
    }
}

fn equals_the_definition(arena: Arena) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(12);
    for round in 0..20 {
        let mut both = Both::new(arena);
        let universe = 1 + round * 25;
        for _ in 0..12 {
            let n = rng.gen_range(0..=universe);
            let batch = (0..n)
                .map(|_| {
                    let i = rng.gen_range(0..universe);
                    // A third of the changes delete (possibly a key not there).
                    (i, (rng.gen_range(0..3) > 0).then(|| rng.gen_range(0..4)))
                })
                .collect();
            both.apply(batch);
            assert_eq!(
                both.tree.root(),
                both.reference_root(),
                "{arena:?} round {round}"
            );
            assert_eq!(both.tree.len(), both.reference.len());
            for i in 0..universe {
                let key = map_key(Table::Claim, &id(i));
                let pairs = both.reference.iter().map(|(k, v)| (*k, *v));
                assert_eq!(both.tree.prove(&key), reference_proof(pairs, &key));
            }
        }
        // Deleting everything gives the empty root.
        both.apply((0..universe).map(|i| (i, None)).collect());
        assert_eq!(both.tree.root(), ZERO);
    }
}

#[test]
fn a_map_built_at_once_in_parallel_equals_the_definition_and_changes_as_any_other() {
    for arena in ARENAS {
        let mut rng = rand::rngs::StdRng::seed_from_u64(31);
        let mut both = Both::new(arena);
        let universe = 100_000;
        // Enough at once for the parallel build (past 2^15 distinct keys); a key may come twice (the last change
        // wins) or be deleted in the same batch.
        let batch = |rng: &mut rand::rngs::StdRng| -> Vec<(u32, Option<u32>)> {
            (0..80_000)
                .map(|_| {
                    let i = rng.gen_range(0..universe);
                    (i, (rng.gen_range(0..10) > 0).then(|| rng.gen_range(0..3)))
                })
                .collect()
        };
        for round in 0..2 {
            both.apply(batch(&mut rng));
            assert_eq!(both.tree.root(), both.reference_root(), "{arena:?} {round}");
            assert_eq!(both.tree.len(), both.reference.len());
            for i in (0..universe).step_by(997) {
                let key = map_key(Table::Claim, &id(i));
                let pairs = both.reference.iter().map(|(k, v)| (*k, *v));
                assert_eq!(both.tree.prove(&key), reference_proof(pairs, &key));
            }
            // Grafted records update, delete and free like any others.
            both.apply(
                (0..3_000)
                    .map(|i| (i * 20, (i % 3 > 0).then_some(9)))
                    .collect(),
            );
            assert_eq!(both.tree.root(), both.reference_root(), "{arena:?} {round}");
            // Emptied, the next large batch is a parallel build again, over free slots.
            both.apply((0..universe).map(|i| (i, None)).collect());
            assert_eq!(both.tree.root(), ZERO);
        }
    }
}

#[test]
fn a_batch_gives_the_same_root_as_its_changes_one_by_one() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let changes: Vec<(u32, Option<u32>)> = (0..300)
        .map(|_| {
            (
                rng.gen_range(0..120),
                (rng.gen_range(0..4) > 0).then_some(1),
            )
        })
        .collect();
    let mut batched = Both::new(Arena::Heap);
    let mut single = Both::new(Arena::File);
    batched.apply(changes.clone());
    for c in changes {
        single.apply(vec![c]);
    }
    assert_eq!(batched.tree.root(), single.tree.root());
}

#[test]
fn an_update_returns_the_changes_that_undo_it_repeated_new_and_removed_keys_alike() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    for arena in ARENAS {
        let mut both = Both::new(arena);
        both.apply((0..500).map(|i| (i, Some(0))).collect());
        for round in 0..20 {
            let before = both.tree.root();
            // Keys present and absent, some given twice, about a third removed.
            let changes: Vec<_> = (0..rng.gen_range(1..200))
                .map(|_| {
                    let i = rng.gen_range(0..800);
                    let v = (rng.gen_range(0..3) > 0).then(|| value_hash(&bytes_of(i, round)));
                    (map_key(Table::Claim, &id(i)), v)
                })
                .collect();
            let expected: Vec<_> = changes
                .iter()
                .map(|(k, _)| (*k, both.tree.get(k)))
                .collect();
            let undo = both.tree.update_with_undo(changes).unwrap();
            for (key, was) in &expected {
                assert_eq!(undo.iter().find(|(k, _)| k == key).map(|c| c.1), Some(*was));
            }
            assert_eq!(
                undo.len(),
                expected
                    .iter()
                    .map(|c| c.0)
                    .collect::<std::collections::BTreeSet<_>>()
                    .len()
            );
            both.tree.update(undo).unwrap();
            assert_eq!(both.tree.root(), before, "{arena:?} round {round}");
        }
    }
}

/// A map of `n` claims (value version 0) in `arena`, its root, and its directory.
fn map_in(arena: Arena, n: u32) -> (MapTree, Hash, Option<TempDir>) {
    let (mut tree, dir) = empty_tree(arena);
    tree.update(
        (0..n)
            .map(|i| {
                (
                    map_key(Table::Claim, &id(i)),
                    Some(value_hash(&bytes_of(i, 0))),
                )
            })
            .collect(),
    )
    .unwrap();
    let root = tree.root();
    (tree, root, dir)
}

#[test]
fn the_same_random_map_in_both_arenas_has_the_same_root_and_proofs() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(15);
    let mut heap = Both::new(Arena::Heap);
    let mut file = Both::new(Arena::File);
    let universe = 20_000;
    for batch in 0..8 {
        let changes: Vec<(u32, Option<u32>)> = (0..rng.gen_range(1..6_000))
            .map(|_| {
                let i = rng.gen_range(0..universe);
                (i, (rng.gen_range(0..5) > 0).then(|| rng.gen_range(0..3)))
            })
            .collect();
        heap.apply(changes.clone());
        file.apply(changes);
        assert_eq!(heap.tree.root(), file.tree.root(), "seed 15 batch {batch}");
        assert_eq!(heap.tree.len(), file.tree.len());
    }
    assert_eq!(file.tree.root(), file.reference_root());
    for i in (0..universe).step_by(7) {
        let key = map_key(Table::Claim, &id(i));
        let (a, b) = (heap.tree.prove(&key), file.tree.prove(&key));
        assert_eq!(a, b, "claim {i}");
        assert_eq!(
            serde_json::to_vec(&a).unwrap(),
            serde_json::to_vec(&b).unwrap()
        );
    }
    // The file arena's nodes are in its files, not on the heap (bar the free lists).
    assert!(file.tree.file_bytes() >= file.tree.len() * 64);
    assert!(file.tree.heap_bytes() < heap.tree.heap_bytes() / 4);
}

#[test]
fn proofs_of_presence_and_absence_verify_against_the_root() {
    for arena in ARENAS {
        presence_and_absence(arena);
    }
}

fn presence_and_absence(arena: Arena) {
    let (tree, root, _dir) = map_in(arena, 500);
    for i in 0..500 {
        let proof = tree.prove(&map_key(Table::Claim, &id(i)));
        proof
            .verify_present(&root, Table::Claim, &id(i), &bytes_of(i, 0))
            .unwrap();
        assert!(
            proof.siblings.len() <= 24,
            "a compact path: {}",
            proof.siblings.len()
        );
        // And through the JSON form a client receives.
        let text = serde_json::to_vec(&proof).unwrap();
        StateProof::from_json(&text)
            .unwrap()
            .verify_present(&root, Table::Claim, &id(i), &bytes_of(i, 0))
            .unwrap();
    }
    for i in 500..1000 {
        tree.prove(&map_key(Table::Claim, &id(i)))
            .verify_absent(&root, Table::Claim, &id(i))
            .unwrap();
    }
    // The same id in another table is another key, absent.
    tree.prove(&map_key(Table::Pledge, &id(3)))
        .verify_absent(&root, Table::Pledge, &id(3))
        .unwrap();
    // The empty map: every key absent, against ZERO.
    MapTree::new()
        .prove(&map_key(Table::Claim, &id(1)))
        .verify_absent(&ZERO, Table::Claim, &id(1))
        .unwrap();
}

fn code_present(proof: &StateProof, root: &Hash, i: u32) -> &'static str {
    proof
        .verify_present(root, Table::Claim, &id(i), &bytes_of(i, 0))
        .unwrap_err()
        .code()
}

#[test]
fn a_proof_with_a_flipped_sibling_byte_is_refused_as_root_mismatch() {
    for arena in ARENAS {
        let (tree, root, _dir) = map_in(arena, 300);
        let honest = tree.prove(&map_key(Table::Claim, &id(5)));
        for s in 0..honest.siblings.len() {
            for byte in [0, 17, 31] {
                let mut p = honest.clone();
                p.siblings[s][byte] ^= 0x40;
                assert_eq!(
                    code_present(&p, &root, 5),
                    "proof_root_mismatch",
                    "sibling {s}"
                );
            }
        }
    }
}

#[test]
fn truncated_or_extended_siblings_are_refused() {
    for arena in ARENAS {
        let (tree, root, _dir) = map_in(arena, 300);
        let honest = tree.prove(&map_key(Table::Claim, &id(9)));
        // Cut at every depth: the hashes no longer lead to the root, or the cut exposes an
        // empty sibling, which no tree ends a path beside.
        for len in 0..honest.siblings.len() {
            let mut short = honest.clone();
            short.siblings.truncate(len);
            let expected = match short.siblings.last() {
                Some(s) if *s == ZERO => "proof_malformed",
                _ => "proof_root_mismatch",
            };
            assert_eq!(code_present(&short, &root, 9), expected, "cut to {len}");
        }
        let mut long = honest.clone();
        long.siblings.push([3; 32]);
        assert_eq!(code_present(&long, &root, 9), "proof_root_mismatch");
        let mut padded = honest.clone();
        padded.siblings.push(ZERO);
        assert_eq!(code_present(&padded, &root, 9), "proof_malformed");
        let mut deep = honest.clone();
        deep.siblings = vec![[1; 32]; KEY_BITS + 1];
        assert_eq!(code_present(&deep, &root, 9), "proof_too_deep");
    }
}

#[test]
fn a_wrong_value_a_wrong_key_and_a_wrong_kind_of_proof_each_have_their_code() {
    for arena in ARENAS {
        let (tree, root, _dir) = map_in(arena, 300);
        let proof = tree.prove(&map_key(Table::Claim, &id(4)));
        // Another value than the one proven.
        let err = proof
            .verify_present(&root, Table::Claim, &id(4), &bytes_of(4, 1))
            .unwrap_err();
        assert_eq!(err.code(), "proof_value_mismatch");
        // Another object's proof.
        let err = proof
            .verify_present(&root, Table::Claim, &id(5), &bytes_of(5, 0))
            .unwrap_err();
        assert_eq!(err.code(), "proof_key_mismatch");
        // A presence proof offered as absence: the key is there.
        let err = proof
            .verify_absent(&root, Table::Claim, &id(4))
            .unwrap_err();
        assert_eq!(err.code(), "proof_absent_key_present");
        // An absence proof offered as presence.
        let absent = tree.prove(&map_key(Table::Claim, &id(700)));
        let err = absent
            .verify_present(&root, Table::Claim, &id(700), &bytes_of(700, 0))
            .unwrap_err();
        assert_eq!(err.code(), "proof_key_absent");
    }
}

#[test]
fn an_absence_proof_ending_in_a_leaf_off_the_keys_path_is_refused() {
    for arena in ARENAS {
        let (tree, root, _dir) = map_in(arena, 300);
        // Find an absent key whose proof ends in another key's leaf.
        let (i, proof) = (300..2000)
            .map(|i| (i, tree.prove(&map_key(Table::Claim, &id(i)))))
            .find(|(_, p)| p.leaf.is_some())
            .expect("some absent key ends in a leaf");
        let mut off = proof.clone();
        if let Some(leaf) = off.leaf.as_mut() {
            leaf.key[0] ^= 0x80;
        }
        let err = off.verify_absent(&root, Table::Claim, &id(i)).unwrap_err();
        assert_eq!(err.code(), "proof_leaf_off_path");
        proof.verify_absent(&root, Table::Claim, &id(i)).unwrap();
    }
}

#[test]
fn a_proof_from_another_sizes_root_is_refused() {
    for arena in ARENAS {
        let (mut tree, before, _dir) = map_in(arena, 300);
        let old = tree.prove(&map_key(Table::Claim, &id(1)));
        tree.update(vec![(
            map_key(Table::Claim, &id(2)),
            Some(value_hash(b"changed")),
        )])
        .unwrap();
        let after = tree.root();
        assert_ne!(before, after);
        old.verify_present(&before, Table::Claim, &id(1), &bytes_of(1, 0))
            .unwrap();
        assert_eq!(code_present(&old, &after, 1), "proof_root_mismatch");
    }
}

fn pool(claims: u64) -> Value {
    Value::Pool(Box::new(Pool {
        claims,
        claims_value: Fen(claims * 100),
        ..Pool::default()
    }))
}

fn every_object(state: &SledState) -> Vec<(Key, Value)> {
    Table::ALL.iter().flat_map(|t| state.scan(*t)).collect()
}

#[test]
fn the_persisted_map_equals_a_fresh_rebuild_after_reopen_and_proves_the_signed_root() {
    let dir = TempDir::new().unwrap();
    let ledger = ledger_with(dir.path(), 10);
    let root = ledger.state().root();
    ledger.close().unwrap();
    let (ledger, _) = Ledger::open(dir.path()).unwrap();
    let state = ledger.state();
    assert_eq!(state.root(), root);
    let objects = every_object(state);
    assert_eq!(
        StateMap::of(objects.iter().map(|(k, v)| (k, v))).root(),
        root
    );
    // Every object proven against the root of the last signed state note.
    let last = kinds_and_bodies(dir.path())
        .into_iter()
        .rfind(|(k, _)| *k == RecordKind::StateNote)
        .map(|(_, b)| StateNote::parse_and_verify(&b, &operator(dir.path()).verifier()).unwrap())
        .unwrap();
    assert_eq!((last.size, last.root), (ledger.log().size(), root));
    for (key, value) in &objects {
        state
            .prove(key)
            .verify_present(&last.root, key.table, &key.id, &value_bytes(value))
            .unwrap();
    }
    let absent = Key::new(Table::Claim, "c-none");
    state
        .prove(&absent)
        .verify_absent(&last.root, Table::Claim, "c-none")
        .unwrap();
}

#[test]
fn a_batch_prepared_but_never_committed_leaves_map_and_state_as_committed() {
    let dir = TempDir::new().unwrap();
    let db = sled::open(dir.path()).unwrap();
    let mut state = SledState::open(&db).unwrap();
    let key = |n: u64| Key::new(Table::Liability, &format!("i-{n}"));
    state.stage(vec![(key(1), pool(1)), (key(2), pool(2))]);
    state.commit(1).unwrap();
    let committed = state.root();
    // The next batch is decided and its root worked out (the state note is signed
    // from it), then the process dies before the state's commit.
    state.stage(vec![(key(3), pool(3)), (key(1), pool(4))]);
    let prepared = state.prepare().unwrap();
    assert_ne!(prepared, committed);
    assert_eq!(state.root(), committed, "readers see the committed root");
    drop(state);
    db.flush().unwrap();
    drop(db);
    let db = sled::open(dir.path()).unwrap();
    let state = SledState::open(&db).unwrap();
    assert_eq!((state.size(), state.root()), (1, committed));
    assert_eq!(state.get(&key(1)), Some(pool(1)));
    assert_eq!(state.get(&key(3)), None);
    let objects = every_object(&state);
    assert_eq!(
        StateMap::of(objects.iter().map(|(k, v)| (k, v))).root(),
        committed
    );
}

#[test]
fn a_discarded_batch_takes_the_map_back_to_the_committed_objects() {
    let dir = TempDir::new().unwrap();
    let db = sled::open(dir.path()).unwrap();
    let mut state = SledState::open(&db).unwrap();
    let key = Key::new(Table::Meta, "pool");
    state.stage(vec![(key.clone(), pool(1))]);
    state.commit(1).unwrap();
    let committed = state.root();
    state.stage(vec![(key.clone(), pool(2))]);
    state.prepare().unwrap();
    state.discard();
    assert_eq!(state.root(), committed);
    state.stage(vec![(key.clone(), pool(3))]);
    state.commit(2).unwrap();
    let expected = StateMap::of([(&key, &pool(3))]).root();
    assert_eq!(state.root(), expected);
}

#[test]
fn a_head_whose_root_is_not_the_objects_root_is_damage_and_the_ledger_rebuilds_it() {
    let dir = TempDir::new().unwrap();
    let ledger = ledger_with(dir.path(), 6);
    let root = ledger.state().root();
    ledger.close().unwrap();
    {
        // Flip one byte of the map root in the head (magic, size, then the root).
        let db = sled::open(dir.path().join(lesson_ledger::log::store::layout::INDEX)).unwrap();
        let tree = db.open_tree(STATE_TREE).unwrap();
        let mut head = tree.get(b"\0head").unwrap().unwrap().to_vec();
        head[16] ^= 1;
        tree.insert(b"\0head", head).unwrap();
        assert_eq!(SledState::open(&db).err().unwrap().code(), "state_corrupt");
        db.flush().unwrap();
    }
    let (ledger, _) = Ledger::open(dir.path()).unwrap();
    assert_eq!(ledger.state().root(), root, "rebuilt from the log");
}

#[test]
fn a_ledger_keeps_its_map_nodes_in_files_and_a_reopen_rebuilds_them_to_the_heads_root() {
    let dir = TempDir::new().unwrap();
    let ledger = ledger_with(dir.path(), 10);
    let root = ledger.state().root();
    assert!(ledger.state().map_file_bytes() > 0, "nodes in files");
    assert!(
        ledger.state().map_heap_bytes() < 1024,
        "no node on the heap, only the free lists"
    );
    ledger.close().unwrap();
    for name in NODE_FILES {
        assert!(dir.path().join(name).exists(), "{name}");
    }
    let (ledger, _) = Ledger::open(dir.path()).unwrap();
    assert_eq!(ledger.state().root(), root);
    let objects = every_object(ledger.state());
    assert_eq!(
        StateMap::of(objects.iter().map(|(k, v)| (k, v))).root(),
        root
    );
}

#[test]
fn a_node_file_cut_short_or_garbled_while_the_ledger_is_closed_is_rebuilt_never_trusted() {
    type Garble = fn(&std::path::Path);
    let garbles: [(&str, Garble); 4] = [
        ("cut short", |p| {
            std::fs::OpenOptions::new()
                .write(true)
                .open(p)
                .unwrap()
                .set_len(100)
                .unwrap()
        }),
        ("garbled", |p| {
            let mut bytes = std::fs::read(p).unwrap();
            bytes.iter_mut().step_by(3).for_each(|b| *b ^= 0xA5);
            std::fs::write(p, bytes).unwrap();
        }),
        ("removed", |p| std::fs::remove_file(p).unwrap()),
        ("one record byte flipped", |p| {
            let mut bytes = std::fs::read(p).unwrap();
            bytes[41] ^= 0x01;
            std::fs::write(p, bytes).unwrap();
        }),
    ];
    for (how, garble) in garbles {
        for name in NODE_FILES {
            let dir = TempDir::new().unwrap();
            let ledger = ledger_with(dir.path(), 9);
            let root = ledger.state().root();
            ledger.close().unwrap();
            garble(&dir.path().join(name));
            let (ledger, _) = Ledger::open(dir.path()).unwrap();
            assert!(!ledger.state().map_reused(), "{name} {how}: rebuilt");
            assert_eq!(ledger.state().root(), root, "{name} {how}");
            for (key, value) in every_object(ledger.state()) {
                ledger
                    .state()
                    .prove(&key)
                    .verify_present(&root, key.table, &key.id, &value_bytes(&value))
                    .unwrap();
            }
        }
    }
}

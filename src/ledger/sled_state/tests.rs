//! The live state's storage: reopen, snapshots, refused batches, foreign records.

use super::*;
use crate::ledger::objects::Pool;
use crate::ledger::units::Fen;

fn pool(claims: u64) -> (Key, Value) {
    let pool = Pool {
        claims,
        claims_value: Fen(claims * 100),
        ..Pool::default()
    };
    (Key::new(Table::Meta, "pool"), Value::Pool(Box::new(pool)))
}

fn entry_marker(n: u64) -> (Key, Value) {
    // Any object will do; the pool's type under another table keeps this short.
    (Key::new(Table::Liability, &format!("i-{n}")), pool(n).1)
}

fn open(dir: &std::path::Path) -> (sled::Db, SledState) {
    let db = sled::open(dir).expect("sled");
    let state = SledState::open(&db).expect("state");
    (db, state)
}

fn batch(state: &mut SledState, size: u64) {
    state.stage(vec![pool(size), entry_marker(size)]);
    state.commit(size).expect("commit");
}

fn from_scratch(state: &SledState) -> [u8; 32] {
    let objects: Vec<(Key, Value)> = Table::ALL.iter().flat_map(|t| state.scan(*t)).collect();
    StateMap::of(objects.iter().map(|(k, v)| (k, v))).root()
}

#[test]
fn tables_are_indexed_in_declaration_order() {
    for (i, t) in Table::ALL.iter().enumerate() {
        assert_eq!(*t as usize, i, "{}", t.name());
    }
}

#[test]
fn a_reopened_state_equals_the_committed_one_across_snapshots_and_deltas() {
    let dir = tempfile::tempdir().expect("tmp");
    let (db, mut state) = open(dir.path());
    batch(&mut state, 1);
    batch(&mut state, 2);
    state.write_snapshot().expect("snapshot");
    batch(&mut state, 5);
    let (digest, len) = (state.root(), state.len());
    assert_eq!(
        digest,
        from_scratch(&state),
        "running root = root from scratch"
    );
    drop(state);
    db.flush().expect("flush");
    drop(db);

    let (_db, state) = open(dir.path());
    assert_eq!(state.size(), 5);
    assert_eq!(state.len(), len);
    assert_eq!(state.root(), digest);
    assert_eq!(from_scratch(&state), digest);
    let pool = state.get(&Key::new(Table::Meta, "pool"));
    assert_eq!(
        pool,
        Some(self::pool(5).1),
        "the last delta wins over the snapshot"
    );
}

#[test]
fn deferred_commits_reach_sled_as_one_delta_of_each_object_as_last_committed() {
    let dir = tempfile::tempdir().expect("tmp");
    let (db, mut state) = open(dir.path());
    state.persist_every(3);
    batch(&mut state, 1);
    batch(&mut state, 2);
    assert!(
        state.tree.get(HEAD_KEY).expect("read").is_none(),
        "two entries of three: nothing written yet"
    );
    assert_eq!(
        state.get(&pool(0).0),
        Some(pool(2).1),
        "committed in memory"
    );
    batch(&mut state, 3);
    assert_eq!(state.tree.scan_prefix([DELTA_TAG]).count(), 1, "one delta");
    batch(&mut state, 4);
    state.persist().expect("persist");
    let (digest, len) = (state.root(), state.len());
    drop(state);
    drop(db);

    let (_db, state) = open(dir.path());
    assert_eq!((state.size(), state.len(), state.root()), (4, len, digest));
    assert_eq!(from_scratch(&state), digest);
    assert_eq!(state.get(&pool(0).0), Some(pool(4).1));
}

#[test]
fn a_snapshot_removes_the_deltas_it_covers() {
    let dir = tempfile::tempdir().expect("tmp");
    let (_db, mut state) = open(dir.path());
    for size in 1..=4 {
        batch(&mut state, size);
    }
    state.write_snapshot().expect("snapshot");
    let deltas = state.tree.scan_prefix([DELTA_TAG]).count();
    assert_eq!(deltas, 0);
    state.write_snapshot().expect("a second snapshot");
    let chunks = state.tree.scan_prefix([CHUNK_TAG]).count();
    assert_eq!(chunks, 1, "only the current generation's chunk remains");
}

#[test]
fn a_refused_batch_leaves_nothing_behind() {
    let dir = tempfile::tempdir().expect("tmp");
    let (_db, mut state) = open(dir.path());
    batch(&mut state, 1);
    let digest = state.root();
    state.stage(vec![pool(99)]);
    assert_ne!(state.prepare().expect("prepare"), digest);
    state.discard();
    state
        .commit(1)
        .expect("an empty commit at the same size writes nothing");
    assert_eq!(state.root(), digest);
    assert_eq!(state.get(&pool(0).0), Some(pool(1).1));
}

#[test]
fn records_without_a_head_of_this_layout_are_not_trusted_and_are_cleared_on_commit() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = sled::open(dir.path()).expect("sled");
    let tree = db.open_tree(STATE_TREE).expect("tree");
    tree.insert(b"claim/c-1", b"{}".as_slice()).expect("insert");
    tree.insert(HEAD_KEY, vec![0u8; 8 + 2048])
        .expect("an older head");
    let mut state = SledState::open(&db).expect("open");
    assert_eq!((state.size(), state.len()), (0, 0));
    assert!(
        tree.get(b"claim/c-1").expect("read").is_some(),
        "opening writes nothing"
    );
    batch(&mut state, 1);
    assert!(tree.get(b"claim/c-1").expect("read").is_none());
}

#[test]
fn a_missing_snapshot_chunk_is_reported_not_ignored() {
    let dir = tempfile::tempdir().expect("tmp");
    let (db, mut state) = open(dir.path());
    batch(&mut state, 1);
    state.write_snapshot().expect("snapshot");
    state.tree.remove(chunk_key(1, 0)).expect("remove");
    drop(state);
    let err = SledState::open(&db).err().expect("refused");
    assert_eq!(err.code(), "state_corrupt");
}

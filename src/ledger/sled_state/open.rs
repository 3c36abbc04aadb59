//! Opening the state: the objects from sled's snapshot and deltas into the tables, and
//! the state map, reused as the last clean close sealed it ([`StateMap::unseal`]) or
//! rebuilt from the objects.

use std::time::Instant;

use super::parts::{self, Hashing, Part};
use super::tables::Tables;
use super::{corrupt, state_map, Head, Nodes, SledState, StateMap, StateStoreError};
use super::{CHUNK_TAG, HEAD_KEY, STATE_TREE};

impl SledState {
    /// Opens the state in `db`: loads the snapshot and the deltas after it, and the
    /// state map where `nodes` says: in files, the map the last clean close sealed if
    /// it holds this state (its seal removed first), else rebuilt from the objects
    /// into files created afresh. Writes nothing to sled.
    ///
    /// # Errors
    /// sled faults; a snapshot or delta that does not decode; a rebuilt map whose root
    /// is not the head's; node files that cannot be made.
    pub fn open_with(db: &sled::Db, nodes: Nodes) -> Result<SledState, StateStoreError> {
        let tree = db.open_tree(STATE_TREE)?;
        let Some(head) = tree.get(HEAD_KEY)?.and_then(|b| Head::decode(&b)) else {
            // No head of ours: whatever is stored (sled lost its head, a crash before
            // the first commit, an older layout) is not vouched for. Start from nothing;
            // the writer replays the log.
            return SledState::empty_with(db, nodes);
        };
        let started = Instant::now();
        let sealed = match &nodes {
            Nodes::InDir(dir) => StateMap::unseal(dir, head.size, &head.root)
                .inspect_err(|why| tracing::info!(%why, "the state map is rebuilt"))
                .ok(),
            Nodes::Heap => None,
        };
        let reused = match sealed {
            Some(map) => SledState::load_sealed(tree.clone(), &head, map)?,
            None => None,
        };
        let state = match reused {
            Some(state) => state,
            None => SledState::load_rebuilt(tree, &head, StateMap::empty_at(&nodes)?)?,
        };
        tracing::info!(
            objects = state.tables.len(),
            map_reused = state.map_reused,
            seconds = started.elapsed().as_secs_f64(),
            "state opened"
        );
        Ok(state)
    }

    /// The state of `head` with the map a clean close sealed: the objects are checked
    /// but not hashed. `None` if their number is not the map's (then rebuild it).
    fn load_sealed(
        tree: sled::Tree,
        head: &Head,
        map: StateMap,
    ) -> Result<Option<SledState>, StateStoreError> {
        let mut state = SledState::over(tree, map);
        // The head's counts, bounded by the map's: room made once, not by doubling
        // (each growth rehashes every id so far, a cache miss each).
        state.tables.reserve(&head.objects, state.map.len());
        state.read_parts(head, Hashing::Skipped, |tables, part| {
            tables.insert_part(part.objects);
        })?;
        state_map::return_freed_memory();
        if state.tables.len() != state.map.len() {
            tracing::warn!(
                objects = state.tables.len(),
                sealed = state.map.len(),
                "the sealed state map does not hold the state's objects; rebuilding it"
            );
            return Ok(None);
        }
        state.map_reused = true;
        Ok(Some(state.at(head)))
    }

    /// The state of `head`, its map built from the objects into `map` (empty): the map
    /// on a thread of its own while the objects go into the tables; its root must be
    /// the head's.
    fn load_rebuilt(
        tree: sled::Tree,
        head: &Head,
        map: StateMap,
    ) -> Result<SledState, StateStoreError> {
        let mut state = SledState::over(tree, map);
        let (mut changes, mut objects) = (Vec::new(), Vec::new());
        state.read_parts(head, Hashing::Objects, |_, part| {
            changes.extend(part.changes);
            objects.push(part.objects);
        })?;
        // The head's counts, bounded by the objects parsed (deltas repeat some).
        state.tables.reserve(&head.objects, changes.len());
        // Both in the parts' order, deltas after the snapshot: a later write of a key wins.
        let (map, tables) = (&mut state.map, &mut state.tables);
        let built = std::thread::scope(|scope| {
            let build = scope.spawn(move || {
                let built = map.update(changes);
                state_map::return_freed_memory();
                built
            });
            objects
                .into_iter()
                .for_each(|part| tables.insert_part(part));
            build.join()
        });
        built.unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
        // Built: its pages need not stay resident (see `state_map`'s module doc), nor
        // what the build freed.
        state.map.release()?;
        state_map::return_freed_memory();
        if state.map.root() != head.root {
            return Err(corrupt(
                "head",
                "the objects' state map root is not the one the head records",
            ));
        }
        Ok(state.at(head))
    }

    /// Hands `each` the parts `head` names, in order, as they are read and parsed in
    /// parallel ([`parts::for_each`]), with the tables; counts their bytes.
    fn read_parts(
        &mut self,
        head: &Head,
        hashing: Hashing,
        mut each: impl FnMut(&mut Tables, Part),
    ) -> Result<(), StateStoreError> {
        let keys = parts::keys(&self.tree, head)?;
        parts::for_each(&self.tree, &keys, hashing, |part, bytes, key| {
            if key[0] == CHUNK_TAG {
                self.snapshot_bytes += bytes;
            } else {
                self.deltas_bytes += bytes;
            }
            each(&mut self.tables, part);
        })
    }

    /// This state, its objects loaded, as of `head`.
    fn at(mut self, head: &Head) -> SledState {
        self.stale_records = false;
        self.size = head.size;
        self.persisted_size = head.size;
        self.snapshot = head.snapshot;
        self
    }
}

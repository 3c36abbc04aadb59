//! Creating and opening a log: recovery of the record file, and catching the derived
//! stores up with it.

use super::*;
use crate::log::disk::Disk;

impl Log {
    /// Creates a new, empty log in `dir` with a fresh operator key named `key_name`,
    /// and commits the checkpoint of the empty tree.
    ///
    /// # Errors
    /// [`LogError::AlreadyExists`] if `dir` holds a log; I/O errors.
    pub fn create(
        dir: &Path,
        origin: &str,
        key_name: &str,
        idempotency: Box<dyn Idempotency>,
    ) -> Result<Log, LogError> {
        Log::create_on(dir, origin, key_name, idempotency, Disk::os())
    }

    /// [`Log::create`], every file written through `disk` (a fault-injecting layer in
    /// tests; sled, which holds only derived data, writes on its own).
    ///
    /// # Errors
    /// As [`Log::create`].
    pub fn create_on(
        dir: &Path,
        origin: &str,
        key_name: &str,
        idempotency: Box<dyn Idempotency>,
        disk: Disk,
    ) -> Result<Log, LogError> {
        let config_path = dir.join(layout::CONFIG);
        if config_path.exists() || dir.join(layout::RECORDS).exists() {
            return Err(LogError::AlreadyExists {
                path: dir.to_path_buf(),
            });
        }
        let origin = Origin::new(origin).map_err(|e| LogError::Config {
            reason: e.to_string(),
        })?;
        let key_name = KeyName::new(key_name).map_err(|e| LogError::Key {
            reason: e.to_string(),
        })?;
        fs::create_dir_all(dir).map_err(io(dir))?;
        let signing_key = keyfile::generate();
        let signer = NoteSigner::new(key_name, signing_key.clone());
        keyfile::write_private_pem(&dir.join(layout::OPERATOR_KEY), &signing_key).map_err(|e| {
            LogError::Key {
                reason: e.to_string(),
            }
        })?;
        let config = LogConfig {
            origin: origin.as_str().to_string(),
            operator_vkey: signer.vkey(),
            leaf_version: leaf::LEAF_VERSION,
        };
        let json = serde_json::to_vec_pretty(&config).map_err(|e| LogError::Config {
            reason: e.to_string(),
        })?;
        write_synced(&config_path, &json)?;
        let mut records = RecordFile::create_on(dir.join(layout::RECORDS), disk.clone())?;
        let checkpoint = sign_checkpoint(&origin, 0, Hash::empty_root(), &signer);
        records.append(RecordKind::Checkpoint, checkpoint.text().as_bytes())?;
        records.commit()?;
        drop(records);
        Log::open_on(dir, idempotency, disk).map(|(log, _)| log)
    }

    /// Opens an existing log: cuts an unacknowledged torn tail, brings the derived
    /// stores up to the record file, and checks that the last checkpoint is the root
    /// of the tree. Damage before the tail fails closed.
    ///
    /// # Errors
    /// [`LogError::NotFound`], [`LogError::Records`] (damage), [`LogError::Derived`],
    /// [`LogError::Damaged`], I/O.
    pub fn open(
        dir: &Path,
        idempotency: Box<dyn Idempotency>,
    ) -> Result<(Log, OpenReport), LogError> {
        Log::open_on(dir, idempotency, Disk::os())
    }

    /// [`Log::open`], every file written through `disk`.
    ///
    /// # Errors
    /// As [`Log::open`].
    pub fn open_on(
        dir: &Path,
        idempotency: Box<dyn Idempotency>,
        disk: Disk,
    ) -> Result<(Log, OpenReport), LogError> {
        let config = read_config(dir)?;
        let keys = OperatorKeys::read(dir, &config)?;
        let mut records = RecordFile::open_on(dir.join(layout::RECORDS), disk.clone())?;
        let (index, moved_aside) = open_index(dir)?;
        let mut stores = DerivedStores::open(dir, disk)?;
        let head = index.head()?;
        let mut report = recover_records(&mut records, head.as_ref(), &keys)?;
        report.index_moved_aside = moved_aside;
        let (frontier, log_state) = stores.catch_up(
            &records,
            (&index, head.as_ref()),
            &*idempotency,
            &mut report,
        )?;
        let root = frontier.root();

        let (origin, signer, checkpoint) = keys.settle(dir, &config, &log_state, root)?;
        let verifier = signer.verifier();
        let DerivedStores { tree, offsets, ids } = stores;
        let state_note = log_state
            .last_state_note
            .map(|(size, body)| {
                // Verified above, so it is a note, which is text.
                String::from_utf8(body)
                    .map(|text| (size, text))
                    .map_err(|_| LogError::Damaged {
                        index: size,
                        what: "the last state note is not UTF-8".into(),
                    })
            })
            .transpose()?;
        Ok((
            Log {
                dir: dir.to_path_buf(),
                config,
                origin,
                signer,
                verifier,
                idempotency,
                records,
                tree,
                offsets,
                ids,
                index,
                frontier,
                last_time_micros: log_state.last_time_micros,
                checkpoint,
                state_note,
                failed: false,
                handover: None,
            },
            report,
        ))
    }
}

/// A derived store's own error, kept as the source of [`LogError::DerivedStore`]: the log
/// file is fine, what was derived from it is not.
#[derive(Debug, thiserror::Error)]
pub enum DerivedError {
    /// The node hashes, `tree/`.
    #[error(transparent)]
    Tree(#[from] crate::log::tree_file::TreeError),
    /// The record offsets, `offsets.dat`.
    #[error(transparent)]
    Offsets(#[from] crate::log::offsets::OffsetsError),
    /// The entry ids, `ids.dat`.
    #[error(transparent)]
    Ids(#[from] crate::log::id_index::IdIndexError),
    /// The sled index, `index.sled/`.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// The frontier (the tree's size and peaks), restored from the node hashes.
    #[error(transparent)]
    Frontier(#[from] crate::log::compact::CompactError),
}

impl From<crate::log::tree_file::TreeError> for LogError {
    fn from(e: crate::log::tree_file::TreeError) -> Self {
        DerivedError::from(e).into()
    }
}

impl From<crate::log::offsets::OffsetsError> for LogError {
    fn from(e: crate::log::offsets::OffsetsError) -> Self {
        DerivedError::from(e).into()
    }
}

impl From<crate::log::id_index::IdIndexError> for LogError {
    fn from(e: crate::log::id_index::IdIndexError) -> Self {
        DerivedError::from(e).into()
    }
}

impl From<IndexError> for LogError {
    fn from(e: IndexError) -> Self {
        DerivedError::from(e).into()
    }
}

impl From<crate::log::compact::CompactError> for LogError {
    fn from(e: crate::log::compact::CompactError) -> Self {
        DerivedError::from(e).into()
    }
}

/// The operator's keys as the directory holds them, before the last checkpoint settles
/// which one signs.
struct OperatorKeys {
    origin: Origin,
    /// log.json's key, or one the log was handed over to (checked against the last
    /// checkpoint by `settle_operator_key`).
    signer: NoteSigner,
    /// A next key, from a handover cut short.
    next: Option<NoteSigner>,
}

impl OperatorKeys {
    /// Settles which key signs from now on against the last checkpoint (a handover cut
    /// short), and checks the last state note under it. The checkpoint is a
    /// deterministic function of (origin, size, root, key): re-signing gives the exact
    /// text that was committed.
    fn settle(
        self,
        dir: &Path,
        config: &LogConfig,
        log_state: &ReplayState,
        root: Hash,
    ) -> Result<(Origin, NoteSigner, SignedCheckpoint), LogError> {
        let (signer, checkpoint) = handover::settle_operator_key(
            dir,
            &config.operator_vkey,
            self.signer,
            self.next,
            &self.origin,
            log_state.size,
            root,
            log_state.last_checkpoint.as_deref(),
        )?;
        check_state_note(
            &self.origin,
            &signer.verifier(),
            log_state.last_state_note.as_ref(),
        )?;
        Ok((self.origin, signer, checkpoint))
    }

    fn read(dir: &Path, config: &LogConfig) -> Result<OperatorKeys, LogError> {
        let key_err = |e: keyfile::KeyFileError| LogError::Key {
            reason: e.to_string(),
        };
        let signing_key =
            keyfile::read_private_pem(&dir.join(layout::OPERATOR_KEY)).map_err(key_err)?;
        let origin = Origin::new(config.origin.as_str()).map_err(|e| LogError::Config {
            reason: e.to_string(),
        })?;
        let verifier =
            NoteVerifier::from_vkey(&config.operator_vkey).map_err(|e| LogError::Config {
                reason: e.to_string(),
            })?;
        let signer = NoteSigner::new(verifier.name().clone(), signing_key);
        let next_path = dir.join(layout::OPERATOR_KEY_NEXT);
        let next = if next_path.exists() {
            let key = keyfile::read_private_pem(&next_path).map_err(key_err)?;
            Some(NoteSigner::new(verifier.name().clone(), key))
        } else {
            None
        };
        Ok(OperatorKeys {
            origin,
            signer,
            next,
        })
    }
}

/// Writes the replayed client ids and the new head to the index, and checks that a head
/// the index held at the same size had the same root.
fn commit_index(
    index: &Index,
    batch: &IndexBatch,
    old: Option<&Head>,
    new: Head,
) -> Result<(), LogError> {
    let (size, root) = (new.size, new.root);
    index.apply(batch, new)?;
    if let Some(head) = old {
        if head.size == size && head.root != root {
            return Err(LogError::Derived {
                reason: format!(
                    "index head root {} differs from the tree root {root} at size {size}",
                    head.root
                ),
            });
        }
    }
    Ok(())
}

/// Where recovery scans `log.dat` from (for [`Log::open_on`] and `Log::open_imported`):
/// the index head's seal. An index ahead of the file is damage: it is written after the
/// records are synced, so acknowledged records are gone.
pub(super) fn scan_start(records: &RecordFile, head: Option<&Head>) -> Result<Seal, LogError> {
    let file_len = records.len();
    if let Some(head) = head {
        if head.record_end > file_len {
            return Err(LogError::Damaged {
                index: head.size,
                what: format!(
                    "log.dat is {file_len} bytes but the index recorded {} entries ending at byte {}: the log was truncated",
                    head.size, head.record_end
                ),
            });
        }
    }
    Ok(head.map_or(Seal::START, |h| Seal {
        leaves: h.size,
        end: h.record_end,
    }))
}

/// Checks the index head against the record file, cuts an unacknowledged torn tail, and
/// finishes a `create` cut short before its first commit; reports the cut.
fn recover_records(
    records: &mut RecordFile,
    head: Option<&Head>,
    keys: &OperatorKeys,
) -> Result<OpenReport, LogError> {
    let recovery = records.recover(scan_start(records, head)?)?;
    if recovery.end == records::HEADER_LEN {
        // No checkpoint record at all: a `create` cut short before its first commit,
        // so nothing was ever acknowledged. Finish it, so that log.dat ends with the
        // checkpoint this log serves and the auditor agrees (found by fuzzing).
        let empty = sign_checkpoint(&keys.origin, 0, Hash::empty_root(), &keys.signer);
        records.append(RecordKind::Checkpoint, empty.text().as_bytes())?;
        records.commit()?;
    }
    Ok(OpenReport {
        cut: recovery
            .cut
            .as_ref()
            .map(|c| (c.bytes, format!("{:?}", c.reason))),
        ..OpenReport::default()
    })
}

/// The stores derived from `log.dat`: Merkle nodes, leaf offsets, entry ids.
pub(super) struct DerivedStores {
    pub(super) tree: TreeFile,
    pub(super) offsets: Offsets,
    pub(super) ids: crate::log::id_index::IdIndex,
}

impl DerivedStores {
    pub(super) fn open(dir: &Path, disk: Disk) -> Result<DerivedStores, LogError> {
        Ok(DerivedStores {
            tree: TreeFile::open_on(dir.join(layout::TREE), disk.clone())?,
            offsets: Offsets::open_on(dir.join(layout::OFFSETS), disk.clone())?,
            ids: crate::log::id_index::IdIndex::open_on(dir.join(layout::IDS), disk)?,
        })
    }
    /// The derived stores and the index brought up to `records` (truncated to their
    /// common prefix with `head`, the rest replayed, the index moved on), for
    /// [`Log::open_on`] and `Log::open_imported` alike: the frontier and the replay's.
    pub(super) fn catch_up(
        &mut self,
        records: &RecordFile,
        (index, head): (&Index, Option<&Head>),
        idempotency: &dyn Idempotency,
        report: &mut OpenReport,
    ) -> Result<(Frontier, ReplayState), LogError> {
        let (mut frontier, mut log_state, replay_from) =
            self.truncate_to_common_prefix(records, head)?;
        let batch = self.replay(
            records,
            replay_from,
            idempotency,
            &mut frontier,
            &mut log_state,
            report,
        )?;
        self.flush()?;
        let new_head = Head {
            size: log_state.size,
            record_end: records.len(),
            root: frontier.root(),
        };
        commit_index(index, &batch, head, new_head)?;
        Ok((frontier, log_state))
    }

    /// Brings the derived stores to a common prefix (what all of them and the index
    /// hold): the frontier and log state there, and where the replay of the rest starts.
    pub(super) fn truncate_to_common_prefix(
        &mut self,
        records: &RecordFile,
        head: Option<&Head>,
    ) -> Result<(Frontier, ReplayState, u64), LogError> {
        let head_size = head.map_or(0, |h| h.size);
        let common = head_size
            .min(self.tree.consistent_size())
            .min(self.offsets.len())
            .min(self.ids.len());
        self.ids.truncate(common)?;
        self.tree.truncate(common)?;
        self.offsets.truncate(common)?;
        let replay_from = if common == 0 {
            records::HEADER_LEN
        } else {
            let last = leaf_offset(&self.offsets, common - 1)?;
            records.read_at(last)?.end()
        };
        let frontier = Frontier::restore(common, &self.tree.reader())?;
        let mut log_state = ReplayState {
            size: common,
            last_time_micros: 0,
            last_checkpoint: None,
            last_state_note: None,
        };
        if common > 0 {
            let last = leaf_offset(&self.offsets, common - 1)?;
            let leaf = records.read_at(last)?;
            log_state.last_time_micros = leaf::peek_index_time(&leaf.body)?.1;
        }
        Ok((frontier, log_state, replay_from))
    }

    /// Replays the records from `from` into the derived stores and the frontier; the
    /// client ids found go into the returned index batch.
    pub(super) fn replay(
        &mut self,
        records: &RecordFile,
        from: u64,
        idempotency: &dyn Idempotency,
        frontier: &mut Frontier,
        log_state: &mut ReplayState,
        report: &mut OpenReport,
    ) -> Result<IndexBatch, LogError> {
        let mut batch = IndexBatch::default();
        let mut completed = Vec::new();
        for record in records.iter(from, records.len())? {
            let record = record?;
            match record.kind {
                RecordKind::Leaf => {
                    let leaf = Leaf::decode(&record.body)?;
                    if leaf.index != log_state.size {
                        return Err(LogError::Damaged {
                            index: log_state.size,
                            what: format!(
                                "record at byte {} holds index {}",
                                record.offset, leaf.index
                            ),
                        });
                    }
                    completed.clear();
                    frontier
                        .push(leaf_hash(&record.body), &mut completed)
                        .map_err(|e| LogError::Damaged {
                            index: log_state.size,
                            what: e.to_string(),
                        })?;
                    self.add_leaf(&record, &leaf, &completed, idempotency, &mut batch)?;
                    log_state.size += 1;
                    log_state.last_time_micros = leaf.time_micros;
                    report.replayed += 1;
                }
                RecordKind::Checkpoint => {
                    log_state.last_checkpoint = Some(record.body);
                }
                // The layer above's commitment: the last one is checked below, once the
                // operator key is settled.
                RecordKind::StateNote => {
                    log_state.last_state_note = Some((log_state.size, record.body));
                }
            }
        }
        Ok(batch)
    }

    /// One replayed leaf into the derived stores: its completed nodes, its offset, its
    /// entry id, and its client id (into `batch`).
    fn add_leaf(
        &mut self,
        record: &records::Record,
        leaf: &Leaf,
        completed: &[(u8, u64, Hash)],
        idempotency: &dyn Idempotency,
        batch: &mut IndexBatch,
    ) -> Result<(), LogError> {
        for &(level, node_index, node) in completed {
            self.tree.append(level, node_index, node)?;
        }
        self.offsets.append(record.offset)?;
        let entry_id = leaf.envelope.entry_id();
        self.ids.append(*entry_id.as_bytes())?;
        if let Some(client) = idempotency.client_id(&leaf.envelope) {
            batch.insert_client(&client, *entry_id.as_bytes())?;
        }
        Ok(())
    }

    pub(super) fn flush(&mut self) -> Result<(), LogError> {
        self.tree.flush()?;
        self.offsets.flush()?;
        self.ids.flush()?;
        Ok(())
    }
}

pub(super) struct ReplayState {
    pub(super) size: u64,
    pub(super) last_time_micros: u64,
    last_checkpoint: Option<Vec<u8>>,
    /// The last state note replayed, with the number of leaves before it.
    last_state_note: Option<(u64, Vec<u8>)>,
}

/// The last state note, like the last checkpoint, must be the operator's: a note whose
/// text was altered (its record's CRC recomputed) would otherwise be served and built on
/// by the next batch, and only an audit would refuse the log (found by fuzzing).
fn check_state_note(
    origin: &Origin,
    verifier: &NoteVerifier,
    last: Option<&(u64, Vec<u8>)>,
) -> Result<(), LogError> {
    let Some((size, body)) = last else {
        return Ok(());
    };
    let note = StateNote::parse_and_verify(body, verifier).map_err(|e| LogError::Damaged {
        index: *size,
        what: format!("the last state note in log.dat is not signed by the operator key: {e}"),
    })?;
    if note.origin != origin.as_str() || note.size != *size {
        return Err(LogError::Damaged {
            index: *size,
            what: format!(
                "the last state note is for {} at size {}, not {} at size {size}",
                note.origin,
                note.size,
                origin.as_str()
            ),
        });
    }
    Ok(())
}

/// Reads and validates `log.json`.
///
/// # Errors
/// [`LogError::NotFound`] without one; [`LogError::Config`] when it is invalid.
pub fn read_config(dir: &Path) -> Result<LogConfig, LogError> {
    let path = dir.join(layout::CONFIG);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(LogError::NotFound {
                path: dir.to_path_buf(),
            })
        }
        Err(e) => return Err(LogError::Io { path, source: e }),
    };
    let config: LogConfig = serde_json::from_slice(&bytes).map_err(|e| LogError::Config {
        reason: e.to_string(),
    })?;
    if config.leaf_version != leaf::LEAF_VERSION {
        return Err(LogError::Config {
            reason: format!("leaf version {} is not supported", config.leaf_version),
        });
    }
    Ok(config)
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), LogError> {
    use std::io::Write;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(io(path))?;
    file.write_all(bytes).map_err(io(path))?;
    file.sync_all().map_err(io(path))
}

/// Opens the sled database. sled 0.34 is reported to corrupt itself after kills; it holds
/// only what is derived, so a database sled calls corrupt is moved aside (kept, for a
/// post-mortem) and rebuilt from `log.dat`. Any other failure — another process holding
/// its lock above all — is an error: rebuilding under a live writer would be wrong.
pub(super) fn open_index(dir: &Path) -> Result<(Index, Option<PathBuf>), LogError> {
    let path = dir.join(layout::INDEX);
    match Index::open(&path) {
        Ok(index) => Ok((index, None)),
        Err(IndexError::Sled {
            source: sled::Error::Corruption { .. },
            ..
        }) => {
            let stamp = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let aside = dir.join(format!("{}.corrupt-{stamp}", layout::INDEX));
            fs::rename(&path, &aside).map_err(io(&path))?;
            tracing::warn!(moved_to = %aside.display(), "sled reported corruption; rebuilding the index from log.dat");
            Ok((Index::open(&path)?, Some(aside)))
        }
        Err(e) => Err(e.into()),
    }
}

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
        let signing_key =
            keyfile::read_private_pem(&dir.join(layout::OPERATOR_KEY)).map_err(|e| {
                LogError::Key {
                    reason: e.to_string(),
                }
            })?;
        let origin = Origin::new(config.origin.as_str()).map_err(|e| LogError::Config {
            reason: e.to_string(),
        })?;
        let verifier =
            NoteVerifier::from_vkey(&config.operator_vkey).map_err(|e| LogError::Config {
                reason: e.to_string(),
            })?;
        // The current key: log.json's, or one the log was handed over to (checked below,
        // against the last checkpoint); perhaps a next one, from a handover cut short.
        let signer = NoteSigner::new(verifier.name().clone(), signing_key);
        let next_path = dir.join(layout::OPERATOR_KEY_NEXT);
        let next = if next_path.exists() {
            let key = keyfile::read_private_pem(&next_path).map_err(|e| LogError::Key {
                reason: e.to_string(),
            })?;
            Some(NoteSigner::new(verifier.name().clone(), key))
        } else {
            None
        };
        let mut records = RecordFile::open_on(dir.join(layout::RECORDS), disk.clone())?;
        let (index, moved_aside) = open_index(dir)?;
        let mut tree = TreeFile::open_on(dir.join(layout::TREE), disk.clone()).map_err(derived)?;
        let mut offsets =
            Offsets::open_on(dir.join(layout::OFFSETS), disk.clone()).map_err(derived)?;
        let mut ids = IdIndex::open_on(dir.join(layout::IDS), disk).map_err(derived)?;

        let head = index.head().map_err(derived)?;
        let file_len = records.len();
        if let Some(head) = &head {
            // The index is written after the records are synced, so it can never be
            // ahead of them: if it is, acknowledged records are gone.
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
        let scan_from = head.as_ref().map_or(Seal::START, |h| Seal {
            leaves: h.size,
            end: h.record_end,
        });
        let recovery = records.recover(scan_from)?;
        if recovery.end == records::HEADER_LEN {
            // No checkpoint record at all: a `create` cut short before its first commit,
            // so nothing was ever acknowledged. Finish it, so that log.dat ends with the
            // checkpoint this log serves and the auditor agrees (found by fuzzing).
            let empty = sign_checkpoint(&origin, 0, Hash::empty_root(), &signer);
            records.append(RecordKind::Checkpoint, empty.text().as_bytes())?;
            records.commit()?;
        }
        let mut report = OpenReport {
            index_moved_aside: moved_aside,
            cut: recovery
                .cut
                .as_ref()
                .map(|c| (c.bytes, format!("{:?}", c.reason))),
            ..OpenReport::default()
        };

        // Bring the derived stores to a common prefix, then replay the rest.
        let head_size = head.as_ref().map_or(0, |h| h.size);
        let common = head_size
            .min(tree.consistent_size())
            .min(offsets.len())
            .min(ids.len());
        ids.truncate(common).map_err(derived)?;
        tree.truncate(common).map_err(derived)?;
        offsets.truncate(common).map_err(derived)?;
        let replay_from = if common == 0 {
            records::HEADER_LEN
        } else {
            let last = leaf_offset(&offsets, common - 1)?;
            records.read_at(last)?.end()
        };
        let mut frontier = Frontier::restore(common, &tree.reader()).map_err(derived)?;
        let mut log_state = ReplayState {
            size: common,
            last_time_micros: 0,
            last_checkpoint: None,
            last_state_note: None,
        };
        if common > 0 {
            let last = leaf_offset(&offsets, common - 1)?;
            let leaf = records.read_at(last)?;
            log_state.last_time_micros = leaf::peek_index_time(&leaf.body)?.1;
        }
        let mut batch = IndexBatch::default();
        let mut completed = Vec::new();
        for record in records.iter(replay_from, records.len())? {
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
                    let hash = leaf_hash(&record.body);
                    completed.clear();
                    frontier
                        .push(hash, &mut completed)
                        .map_err(|e| LogError::Damaged {
                            index: log_state.size,
                            what: e.to_string(),
                        })?;
                    for &(level, node_index, node) in &completed {
                        tree.append(level, node_index, node).map_err(derived)?;
                    }
                    offsets.append(record.offset).map_err(derived)?;
                    let entry_id = leaf.envelope.entry_id();
                    ids.append(*entry_id.as_bytes()).map_err(derived)?;
                    if let Some(client) = idempotency.client_id(&leaf.envelope) {
                        batch
                            .insert_client(&client, *entry_id.as_bytes())
                            .map_err(derived)?;
                    }
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
        tree.flush().map_err(derived)?;
        offsets.flush().map_err(derived)?;
        ids.flush().map_err(derived)?;
        let root = frontier.root();
        index
            .apply(
                &batch,
                Head {
                    size: log_state.size,
                    record_end: records.len(),
                    root,
                },
            )
            .map_err(derived)?;
        if let Some(head) = &head {
            if head.size == log_state.size && head.root != root {
                return Err(LogError::Derived {
                    reason: format!(
                        "index head root {} differs from the tree root {} at size {}",
                        head.root, root, head.size
                    ),
                });
            }
        }

        // The checkpoint is a deterministic function of (origin, size, root, key):
        // re-signing gives the exact text that was committed.
        let (signer, checkpoint) = handover::settle_operator_key(
            dir,
            &config.operator_vkey,
            signer,
            next,
            &origin,
            log_state.size,
            root,
            log_state.last_checkpoint.as_deref(),
        )?;
        let verifier = signer.verifier();
        check_state_note(&origin, &verifier, log_state.last_state_note.as_ref())?;
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

struct ReplayState {
    size: u64,
    last_time_micros: u64,
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
fn open_index(dir: &Path) -> Result<(Index, Option<PathBuf>), LogError> {
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
            Ok((Index::open(&path).map_err(derived)?, Some(aside)))
        }
        Err(e) => Err(derived(e)),
    }
}

//! `publish --data DIR`: publishing straight from a ledger's data directory, which a
//! running `serve` may be writing.
//!
//! The writer's directory is only ever read, and only through what a writer makes safe
//! to read while it runs (as `backup` reads it): `log.dat` up to its current seal (the
//! last acknowledged batch, [`copy_sealed`]), `log.json`, and the cosignature lines of
//! the checkpoint at that seal. No lock is taken and nothing of the writer's is opened
//! for writing (sled's derived stores in DIR are never opened: sled takes a lock a
//! running writer holds). The copy goes to a work directory of the publisher's own,
//! where it is opened as an imported ledger ([`Ledger::open_imported`]: the derived
//! stores and the state caught up by replaying only the records they lack, every
//! checkpoint checked under the operator key) and served read-only on a loopback port
//! by the ledger's own router; the [`super::Publisher`] then reads it as it reads any
//! `serve`, so what is published from a data directory is what `serve` answers, byte
//! for byte, with one path for both.
//!
//! Cost: the first round copies the sealed `log.dat` whole (into a new file renamed
//! into place, so a kill leaves no copy or a whole one); each later round in which the
//! log grew appends only the sealed bytes the copy lacks ([`extend_sealed`]: records
//! synced before the copy's seal names them, the copy's last 4 KiB checked against the
//! source first, so another history is refused, not spliced) and reopens the work
//! ledger, which catches its derived stores up from where they were and loads its state.
//! A round in which the file did not grow copies nothing.

use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use super::PublishError;
use crate::http::cosign::COSIGNATURES_DIR;
use crate::http::{Server, ServerConfig};
use crate::ledger::writer::Ledger;
use crate::log::records::{copy_sealed, extend_sealed};
use crate::log::store::layout;

/// A ledger directory read as a publication's source, through a served copy.
pub struct DataDir {
    data: PathBuf,
    work: PathBuf,
    /// The copy served now: the length of `log.dat` it was taken at, and its server.
    served: Option<(u64, Server)>,
}

fn local_error(
    path: &Path,
    source: impl std::error::Error + Send + Sync + 'static,
) -> PublishError {
    PublishError::Local {
        path: path.to_path_buf(),
        source: Box::new(source),
    }
}

impl DataDir {
    /// The ledger in `data`, copied into `work` (created if missing; it may hold the
    /// copy of an earlier run, which is then only caught up).
    ///
    /// # Errors
    /// [`PublishError::Local`] when `data` holds no ledger or `work` cannot be made.
    pub fn new(data: &Path, work: &Path) -> Result<DataDir, PublishError> {
        let config = data.join(layout::CONFIG);
        if !config.is_file() {
            return Err(PublishError::Usage(format!(
                "{} has no {}: not a ledger directory",
                data.display(),
                layout::CONFIG
            )));
        }
        if work.starts_with(data) || data.starts_with(work) {
            return Err(PublishError::Usage(
                "--work must be outside the ledger directory (and not contain it)".into(),
            ));
        }
        fs::create_dir_all(work).map_err(|e| local_error(work, e))?;
        Ok(DataDir {
            data: data.to_path_buf(),
            work: work.to_path_buf(),
            served: None,
        })
    }

    /// The URL of a read-only server of the ledger as of its latest acknowledged batch:
    /// the copy taken before if `log.dat` has not grown since, else a new one.
    ///
    /// # Errors
    /// [`PublishError::Local`]: the source unreadable or damaged, the copy failing to
    /// open (a checkpoint that does not verify, a rule refusing an entry), the server.
    pub fn refresh(&mut self) -> Result<String, PublishError> {
        let records = self.data.join(layout::RECORDS);
        let length = fs::metadata(&records)
            .map_err(|e| local_error(&records, e))?
            .len();
        // Only the writer appends, and a batch is sealed after its records: a file of
        // the length copied before holds no batch the copy lacks.
        if let Some((copied, server)) = &self.served {
            if *copied == length {
                return Ok(server.url());
            }
        }
        if let Some((_, server)) = self.served.take() {
            server.shutdown().map_err(|e| local_error(&self.work, e))?;
        }
        self.copy()?;
        let (ledger, _) =
            Ledger::open_imported(&self.work).map_err(|e| local_error(&self.work, e))?;
        let config = ServerConfig {
            read_only: true,
            ..ServerConfig::default()
        };
        let loopback = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let server =
            Server::start(ledger, loopback, config).map_err(|e| local_error(&self.work, e))?;
        let url = server.url();
        self.served = Some((length, server));
        Ok(url)
    }

    /// Copies `log.json`, `log.dat` up to its seal, and the cosignature lines of the
    /// checkpoint at that seal (the only ones a server loads) into the work directory.
    fn copy(&self) -> Result<(), PublishError> {
        let (data, work) = (&self.data, &self.work);
        let config = data.join(layout::CONFIG);
        fs::copy(&config, work.join(layout::CONFIG)).map_err(|e| local_error(&config, e))?;
        let records = data.join(layout::RECORDS);
        let target = work.join(layout::RECORDS);
        let seal = if target.is_file() {
            extend_sealed(&records, &target).map_err(|e| local_error(&target, e))?
        } else {
            let fresh = work.join("log.dat.new");
            match fs::remove_file(&fresh) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(local_error(&fresh, e))
                }
                _ => {}
            }
            let seal = copy_sealed(&records, &fresh).map_err(|e| local_error(&records, e))?;
            fs::rename(&fresh, &target).map_err(|e| local_error(&target, e))?;
            seal
        };
        let lines = Path::new(COSIGNATURES_DIR).join(format!("{:020}", seal.leaves));
        let (from, to) = (data.join(&lines), work.join(&lines));
        if to.is_dir() {
            fs::remove_dir_all(&to).map_err(|e| local_error(&to, e))?;
        }
        let Ok(entries) = fs::read_dir(&from) else {
            // No line collected on this checkpoint (or the old one-file form, which
            // the server does not read either).
            return Ok(());
        };
        fs::create_dir_all(&to).map_err(|e| local_error(&to, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| local_error(&from, e))?;
            let name = entry.file_name();
            // A line still being written is a `.tmp`; it is renamed into place when done.
            if Path::new(&name).extension().is_some_and(|e| e == "tmp") {
                continue;
            }
            fs::copy(entry.path(), to.join(&name)).map_err(|e| local_error(&entry.path(), e))?;
        }
        Ok(())
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        if let Some((_, server)) = self.served.take() {
            if let Err(e) = server.shutdown() {
                tracing::warn!(error = %e, "the publisher's copy of the ledger stopped with an error");
            }
        }
    }
}

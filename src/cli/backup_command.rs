//! `backup`: a consistent copy of a ledger directory, safe while `serve` runs.
//!
//! Only what cannot be derived is copied (`schemas/README.md` §7): `log.dat` up to its
//! current seal (an acknowledged batch boundary, see `log::records::copy_sealed`),
//! `log.json`, `operator.pub`, and the collected cosignatures of the checkpoints the copy
//! holds. The operator's private key is copied only when asked: a backup is handed to
//! more places than the key should be. The copy's latest checkpoint is printed, so that
//! the caller can check it against the live ledger (`scripts/backup.sh`).

use std::fs;
use std::path::{Path, PathBuf};

use clap::Args;

use super::CliError;
use crate::http::cosign::COSIGNATURES_DIR;
use crate::log::records::{copy_sealed, open_reader, RecordKind, HEADER_LEN};
use crate::log::store::layout;

/// The operator's verifier key file `init` writes beside the private key.
const OPERATOR_PUB: &str = "operator.pub";

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The ledger directory to copy (a server may be running on it).
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// The new directory to write the copy into (refused if it exists).
    #[arg(long, value_name = "DEST")]
    pub out: PathBuf,
    /// Copy the operator's private key too (`operator.key`, and `operator.key.next` during
    /// a handover). Without it the copy can be audited and read but a server started on
    /// it cannot sign until the key is put back.
    #[arg(long)]
    pub with_operator_key: bool,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CliError + '_ {
    move |source| CliError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Copies `name` from `from` to `to` if it exists; keeps a private key's mode 0600.
fn copy_file(from: &Path, to: &Path, name: &str) -> Result<(), CliError> {
    let source = from.join(name);
    if !source.exists() {
        return Ok(());
    }
    let target = to.join(name);
    fs::copy(&source, &target).map_err(io_err(&source))?;
    fs::File::open(&target)
        .and_then(|f| f.sync_all())
        .map_err(io_err(&target))
}

/// Copies `cosignatures/<size>/…` for every size the copy's log reaches, and nothing
/// else there (a size past the copy belongs to a checkpoint it does not hold).
fn copy_cosignatures(from: &Path, to: &Path, size: u64) -> Result<(), CliError> {
    let source = from.join(COSIGNATURES_DIR);
    let Ok(sizes) = fs::read_dir(&source) else {
        return Ok(());
    };
    for entry in sizes {
        let entry = entry.map_err(io_err(&source))?;
        let name = entry.file_name();
        let within = name
            .to_str()
            .and_then(|n| n.parse::<u64>().ok())
            .is_some_and(|n| n <= size);
        if !within || !entry.path().is_dir() {
            continue;
        }
        let target = to.join(COSIGNATURES_DIR).join(&name);
        fs::create_dir_all(&target).map_err(io_err(&target))?;
        for line in fs::read_dir(entry.path()).map_err(io_err(&entry.path()))? {
            let line = line.map_err(io_err(&entry.path()))?;
            let file = line.file_name();
            // A line still being written is a `.tmp`; it is renamed into place when done.
            if Path::new(&file).extension().is_some_and(|e| e == "tmp") {
                continue;
            }
            copy_file(&entry.path(), &target, &file.to_string_lossy())?;
        }
    }
    Ok(())
}

/// The last checkpoint record of the copied `log.dat`, reading every record once (each
/// checksum checked again, now on the copy).
fn last_checkpoint(records: &Path) -> Result<String, CliError> {
    let (reader, _) = open_reader(records).map_err(crate::log::store::LogError::from)?;
    let mut last = None;
    for record in reader
        .iter(HEADER_LEN, reader.len())
        .map_err(crate::log::store::LogError::from)?
    {
        let record = record.map_err(crate::log::store::LogError::from)?;
        if record.kind == RecordKind::Checkpoint {
            last = Some(record.body);
        }
    }
    let body = last.ok_or_else(|| CliError::Usage("the copy holds no checkpoint".into()))?;
    String::from_utf8(body).map_err(|_| CliError::Usage("a checkpoint is not UTF-8".into()))
}

/// `backup`: prints the copy's latest signed checkpoint on standard output and what was
/// copied on standard error.
///
/// # Errors
/// The source unreadable or damaged, the destination present or unwritable.
pub fn backup(args: BackupArgs) -> Result<(), CliError> {
    let (from, to) = (&args.data, &args.out);
    fs::create_dir(to).map_err(io_err(to))?;
    // log.json first: it names the origin and key the records are checked under.
    copy_file(from, to, layout::CONFIG)?;
    if !to.join(layout::CONFIG).exists() {
        return Err(CliError::Usage(format!(
            "{} has no {}: not a ledger directory",
            from.display(),
            layout::CONFIG
        )));
    }
    copy_file(from, to, OPERATOR_PUB)?;
    let records = to.join(layout::RECORDS);
    let seal = copy_sealed(&from.join(layout::RECORDS), &records)
        .map_err(crate::log::store::LogError::from)?;
    copy_cosignatures(from, to, seal.leaves)?;
    if args.with_operator_key {
        copy_file(from, to, layout::OPERATOR_KEY)?;
        copy_file(from, to, layout::OPERATOR_KEY_NEXT)?;
    }
    let checkpoint = last_checkpoint(&records)?;
    print!("{checkpoint}");
    eprintln!(
        "backup: {} entries ({} bytes of log.dat) copied to {}{}",
        seal.leaves,
        seal.end,
        to.display(),
        if args.with_operator_key {
            ", with the operator key"
        } else {
            "; the operator key was not copied (--with-operator-key)"
        }
    );
    Ok(())
}

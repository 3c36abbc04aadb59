//! What a mirror keeps when its origin misbehaves, and the marker that stops it.
//!
//! A fork (a checkpoint the origin key signed that is not consistent with the one the
//! mirror holds) or a state note the replay contradicts is proof against the operator:
//! both signed notes are written to `DIR/evidence/<code>-<size>.txt`, and
//! `DIR/stopped.json` names the code and the size. From then on the mirror refuses to
//! follow (a restart included) and keeps serving what it verified.

use std::fs;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{io, layout, MirrorError};

/// Why and where the mirror stopped following (`DIR/stopped.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stopped {
    /// `origin_forked`, `state_root_mismatch` or `state_diverged`.
    pub code: String,
    /// The tree size at which the origin was caught (the mirror's size for a fork, the
    /// checkpoint's for a state note).
    pub size: u64,
    /// What was found, in words.
    pub detail: String,
    /// The evidence file, relative to the mirror directory.
    pub evidence: String,
}

impl Stopped {
    /// The stable code, as a static string.
    pub fn code_static(&self) -> &'static str {
        match self.code.as_str() {
            "origin_forked" => "origin_forked",
            "state_root_mismatch" => "state_root_mismatch",
            "state_diverged" => "state_diverged",
            _ => "mirror_stopped",
        }
    }
}

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the mirror stopped following at size {} ({}): {}; evidence in {}",
            self.size, self.code, self.detail, self.evidence
        )
    }
}

/// Records the evidence (`notes`, each a title and a signed note as served) and stops
/// the mirror; returns the stop.
///
/// # Errors
/// I/O.
pub fn stop(
    dir: &Path,
    code: &str,
    size: u64,
    detail: String,
    notes: &[(&str, &str)],
) -> Result<Stopped, MirrorError> {
    let name = format!("{code}-{size}.txt");
    let mut text = format!("{code} at size {size}\n{detail}\n");
    for (title, note) in notes {
        text.push_str(&format!("\n--- {title}\n{note}"));
    }
    let evidence_dir = dir.join(layout::EVIDENCE);
    fs::create_dir_all(&evidence_dir).map_err(io(&evidence_dir))?;
    write_durably(&evidence_dir, &name, text.as_bytes())?;
    let stopped = Stopped {
        code: code.to_owned(),
        size,
        detail,
        evidence: format!("{}/{name}", layout::EVIDENCE),
    };
    let json =
        serde_json::to_vec_pretty(&stopped).map_err(|e| MirrorError::Config(e.to_string()))?;
    write_durably(dir, layout::STOPPED, &json)?;
    tracing::error!(code, size, "{stopped}");
    Ok(stopped)
}

/// `DIR/stopped.json`, if the mirror stopped.
///
/// # Errors
/// I/O other than its absence; a file that does not parse (never read as "not stopped").
pub fn read_stopped(dir: &Path) -> Result<Option<Stopped>, MirrorError> {
    let path = dir.join(layout::STOPPED);
    match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| MirrorError::Config(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(&path)(e)),
    }
}

/// Writes `dir/name` through a synced temporary file renamed into place, then syncs
/// `dir`: a reader sees the old file or the new one, never a part.
///
/// # Errors
/// I/O.
pub fn write_durably(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), MirrorError> {
    let path = dir.join(name);
    let temporary = dir.join(format!(".{name}.tmp"));
    let mut file = fs::File::create(&temporary).map_err(io(&temporary))?;
    file.write_all(bytes).map_err(io(&temporary))?;
    file.sync_all().map_err(io(&temporary))?;
    fs::rename(&temporary, &path).map_err(io(&path))?;
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))
}

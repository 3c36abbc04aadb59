//! What the commands read from files and standard input: payloads, and envelopes (one
//! JSON envelope a file, or JSON Lines), each with where it came from for messages.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::CliError;

/// An I/O error at `path`, with its source.
pub(super) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> CliError + '_ {
    move |source| CliError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The bytes of `path`, or of standard input for `-`.
pub(super) fn read_input(path: &Path) -> Result<Vec<u8>, CliError> {
    if path == Path::new("-") {
        let mut buf = Vec::new();
        io::stdin().read_to_end(&mut buf).map_err(io_err(path))?;
        Ok(buf)
    } else {
        fs::read(path).map_err(io_err(path))
    }
}

/// One envelope's bytes and where they came from, for messages.
pub(super) struct Input {
    pub(super) source: String,
    pub(super) bytes: Vec<u8>,
}

/// The envelopes of `files`: one a file, or one a line if the name ends in `.jsonl`
/// (blank lines skipped; a line's source is `FILE:LINE`).
pub(super) fn read_envelopes(files: &[PathBuf]) -> Result<Vec<Input>, CliError> {
    let mut inputs = Vec::new();
    for path in files {
        let bytes = read_input(path)?;
        if path.extension().is_some_and(|e| e == "jsonl") {
            for (n, line) in bytes.split(|&b| b == b'\n').enumerate() {
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                inputs.push(Input {
                    source: format!("{}:{}", path.display(), n + 1),
                    bytes: line.to_vec(),
                });
            }
        } else {
            inputs.push(Input {
                source: path.display().to_string(),
                bytes,
            });
        }
    }
    Ok(inputs)
}

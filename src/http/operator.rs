//! The operator's credentials on the server: the bearer token that authorizes operator
//! requests (`POST /v1/match`) and the operator key that signs what they write.
//!
//! The token is `DIR/operator.token`: 32 random bytes in lowercase hex, one line, mode
//! 0600, written by `lesson-ledger init` and, for directories made before it, by the
//! server on start — never overwritten. Whoever can read the data directory is the
//! operator already (it holds `operator.key`), so the token adds no new secret holder.
//! A request's token is compared in constant time.
//!
//! ```
//! use lesson_ledger::http::operator::ensure_token;
//! let dir = tempfile::tempdir().unwrap();
//! let token = ensure_token(dir.path()).unwrap();
//! assert_eq!(token.len(), 64);
//! assert_eq!(ensure_token(dir.path()).unwrap(), token, "never overwritten");
//! ```

use std::io::Write as _;
use std::path::Path;

use axum::http::{header, HeaderMap};
use rand::RngCore as _;
use subtle::ConstantTimeEq as _;

use super::ApiError;
use crate::log::note::NoteSigner;

/// The token's file name in the data directory.
pub const OPERATOR_TOKEN: &str = "operator.token";

/// Random bytes in a token.
const TOKEN_BYTES: usize = 32;

/// Why the operator's credentials could not be had.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// The token file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The token file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The token file holds something else than a token.
    #[error("{path}: not {TOKEN_BYTES} bytes of lowercase hex")]
    Malformed {
        /// The token file.
        path: String,
    },
    /// The operator's key file is missing, unreadable or not the log's key.
    #[error("operator key: {0}")]
    Key(#[source] crate::runs::RunError),
}

/// The token in `dir`, created first if there is none.
///
/// # Errors
/// I/O; a token file that is not 64 lowercase hex characters (left as it is).
pub fn ensure_token(dir: &Path) -> Result<String, CredentialsError> {
    let path = dir.join(OPERATOR_TOKEN);
    let io = |source| CredentialsError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(&path) {
        Ok(mut file) => {
            let mut bytes = [0u8; TOKEN_BYTES];
            rand::rngs::OsRng.fill_bytes(&mut bytes);
            let token = crate::ledger::units::hex(&bytes);
            file.write_all(format!("{token}\n").as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(io)?;
            Ok(token)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let text = std::fs::read_to_string(&path).map_err(io)?;
            let token = text.trim_end_matches('\n');
            if crate::ledger::units::is_digest_hex(token) {
                Ok(token.to_owned())
            } else {
                Err(CredentialsError::Malformed {
                    path: path.display().to_string(),
                })
            }
        }
        Err(e) => Err(io(e)),
    }
}

/// What the server holds for the operator.
pub struct Operator {
    token: String,
    signer: NoteSigner,
}

impl Operator {
    /// The token (created if missing) and the operator key of the ledger in `dir`.
    ///
    /// # Errors
    /// As [`ensure_token`]; the key missing or not the log's.
    pub fn load(dir: &Path, operator_vkey: &str) -> Result<Operator, CredentialsError> {
        let token = ensure_token(dir)?;
        let signer =
            crate::runs::operator_signer(dir, operator_vkey).map_err(CredentialsError::Key)?;
        Ok(Operator { token, signer })
    }

    /// The key that signs what operator requests write.
    pub fn signer(&self) -> &NoteSigner {
        &self.signer
    }

    /// Checks `Authorization: Bearer <token>`.
    ///
    /// # Errors
    /// [`ApiError::Unauthorized`] when the header is missing, not a bearer token, or
    /// not this token.
    pub fn authorize(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let unauthorized = |detail: &str| ApiError::Unauthorized {
            detail: detail.into(),
        };
        let value = headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| unauthorized("the operator's bearer token is required"))?;
        let presented = value
            .as_bytes()
            .strip_prefix(b"Bearer ")
            .ok_or_else(|| unauthorized("Authorization must be a Bearer token"))?;
        // Constant time in the token's content, so a guess learns nothing from timing.
        if bool::from(presented.ct_eq(self.token.as_bytes())) {
            Ok(())
        } else {
            Err(unauthorized("not the operator's token"))
        }
    }
}

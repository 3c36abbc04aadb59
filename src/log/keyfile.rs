//! Ed25519 private keys as PKCS#8 PEM files (RFC 8410 §7, RFC 5208, RFC 7468).
//!
//! This module owns the private key on disk and nothing else: generating a key,
//! writing it once (mode 0600, never over an existing file), reading it back with an
//! error that says what is wrong. Names and verifier keys live in [`super::note`].
//!
//! Keys are written as PKCS#8 **v1** (RFC 8410 §7: version 0, the seed, no public key),
//! byte for byte what `openssl genpkey -algorithm ed25519` writes, because that is the
//! form the ecosystem reads: OpenSSL 3.0 refuses the v2 form (RFC 5958 `OneAsymmetricKey`
//! with the public key) as "unsupported" and Python's `cryptography` as "extra data".
//! Both forms are read; a v2 file whose public key does not match its seed is refused.
//!
//! ```
//! use lesson_ledger::log::keyfile::{generate, read_private_pem, write_private_pem};
//!
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("operator.pem");
//! let key = generate();
//! write_private_pem(&path, &key)?;
//! assert_eq!(read_private_pem(&path)?.to_bytes(), key.to_bytes());
//! assert_eq!(write_private_pem(&path, &key).unwrap_err().code(), "key_file_exists");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fs::{File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::spki::der::zeroize::Zeroizing;
use ed25519_dalek::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _, KeypairBytes};
use ed25519_dalek::SigningKey;

/// Largest key file read. A PKCS#8 Ed25519 PEM is about 120 bytes; the margin allows
/// the optional public key and comments without letting a wrong path read a huge file.
/// (New limit, to move to `limits.rs`.)
pub const KEY_FILE_BYTES_MAX: usize = 4096;

/// Everything that can go wrong with a key file.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// Code `key_file_exists`: key file `path` already exists; refusing to overwrite it.
    #[error("key file {path} already exists; refusing to overwrite it")]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// Code `key_file_missing`: key file `path` does not exist.
    #[error("key file {path} does not exist")]
    Missing {
        /// The file.
        path: PathBuf,
    },
    /// Code `key_file_unreadable`: key file `path` cannot be read: `source`.
    #[error("key file {path} cannot be read: {source}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Code `key_file_write_failed`: key file `path` cannot be written: `source`.
    #[error("key file {path} cannot be written: {source}")]
    WriteFailed {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Code `key_file_too_large`: key file `path` is larger than `max` bytes.
    #[error("key file {path} is larger than {max} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The cap.
        max: usize,
    },
    /// Code `key_file_not_pkcs8_ed25519`: key file `path` is not a PKCS#8 PEM Ed25519 private key: `reason`.
    #[error("key file {path} is not a PKCS#8 PEM Ed25519 private key: {reason}")]
    NotPkcs8Ed25519 {
        /// The file.
        path: PathBuf,
        /// What exactly is wrong, in words.
        reason: &'static str,
    },
    /// Code `key_encode_failed`: the key cannot be encoded as PKCS#8 PEM.
    #[error("the key cannot be encoded as PKCS#8 PEM")]
    Encode,
}

impl KeyFileError {
    /// A stable snake_case code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            KeyFileError::Exists { .. } => "key_file_exists",
            KeyFileError::Missing { .. } => "key_file_missing",
            KeyFileError::Unreadable { .. } => "key_file_unreadable",
            KeyFileError::WriteFailed { .. } => "key_file_write_failed",
            KeyFileError::TooLarge { .. } => "key_file_too_large",
            KeyFileError::NotPkcs8Ed25519 { .. } => "key_file_not_pkcs8_ed25519",
            KeyFileError::Encode => "key_encode_failed",
        }
    }
}

/// A new Ed25519 key from the operating system's random source.
pub fn generate() -> SigningKey {
    SigningKey::generate(&mut rand::rngs::OsRng)
}

/// The PKCS#8 v1 PEM text of `key` (RFC 8410 §7, without the optional public key), as
/// OpenSSL writes it. The text is zeroed when dropped.
///
/// # Errors
/// [`KeyFileError::Encode`] if the key cannot be encoded.
pub fn private_pem_v1(key: &SigningKey) -> Result<Zeroizing<String>, KeyFileError> {
    // `SigningKey::to_pkcs8_pem` writes v2 (it always adds the public key): build the
    // v1 structure from the seed alone.
    let seed = Zeroizing::new(key.to_bytes());
    KeypairBytes {
        secret_key: *seed,
        public_key: None,
    }
    .to_pkcs8_pem(LineEnding::LF)
    .map_err(|_| KeyFileError::Encode)
}

/// Writes `key` as a PKCS#8 v1 PEM file ([`private_pem_v1`]), created new with mode 0600 (on unix), so that it
/// is never readable by others, not even for a moment, and never replaces a key.
///
/// # Errors
/// [`KeyFileError::Exists`] when `path` exists (the file is left untouched),
/// [`KeyFileError::WriteFailed`] for other I/O errors (a partial file is removed),
/// [`KeyFileError::Encode`] if the key cannot be encoded.
pub fn write_private_pem(path: &Path, key: &SigningKey) -> Result<(), KeyFileError> {
    let pem = private_pem_v1(key)?;
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|source| {
        if source.kind() == io::ErrorKind::AlreadyExists {
            KeyFileError::Exists {
                path: path.to_owned(),
            }
        } else {
            KeyFileError::WriteFailed {
                path: path.to_owned(),
                source,
            }
        }
    })?;
    let written = file
        .write_all(pem.as_bytes())
        .and_then(|()| file.sync_all());
    if let Err(source) = written {
        drop(file);
        // We created this file a moment ago; a half-written key must not stay behind.
        let _ = std::fs::remove_file(path);
        return Err(KeyFileError::WriteFailed {
            path: path.to_owned(),
            source,
        });
    }
    Ok(())
}

/// Reads a PKCS#8 PEM Ed25519 private key, v1 (as written here and by OpenSSL) or v2
/// (with the public key, as earlier versions wrote; the public key must match the seed).
/// The text read is zeroed when dropped.
///
/// # Errors
/// [`KeyFileError::Missing`], [`KeyFileError::Unreadable`], [`KeyFileError::TooLarge`],
/// [`KeyFileError::NotPkcs8Ed25519`] (not UTF-8, not PEM, not PKCS#8, not Ed25519).
pub fn read_private_pem(path: &Path) -> Result<SigningKey, KeyFileError> {
    let unreadable = |source: io::Error| {
        if source.kind() == io::ErrorKind::NotFound {
            KeyFileError::Missing {
                path: path.to_owned(),
            }
        } else {
            KeyFileError::Unreadable {
                path: path.to_owned(),
                source,
            }
        }
    };
    let file = File::open(path).map_err(unreadable)?;
    let mut bytes = Zeroizing::new(Vec::with_capacity(KEY_FILE_BYTES_MAX));
    // Read one byte past the cap to tell "exactly at the cap" from "too large".
    file.take(KEY_FILE_BYTES_MAX as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() > KEY_FILE_BYTES_MAX {
        return Err(KeyFileError::TooLarge {
            path: path.to_owned(),
            max: KEY_FILE_BYTES_MAX,
        });
    }
    let not_key = |reason| KeyFileError::NotPkcs8Ed25519 {
        path: path.to_owned(),
        reason,
    };
    let text = std::str::from_utf8(&bytes).map_err(|_| not_key("not UTF-8 text"))?;
    SigningKey::from_pkcs8_pem(text)
        .map_err(|_| not_key("no PEM \"PRIVATE KEY\" block holding an Ed25519 PKCS#8 key"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[0x42; 32])
    }

    #[cfg(unix)]
    #[test]
    fn written_file_has_mode_0600() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("operator.pem");
        write_private_pem(&path, &key()).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("operator.pem");
        let generated = generate();
        write_private_pem(&path, &generated).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        assert_eq!(
            read_private_pem(&path).unwrap().to_bytes(),
            generated.to_bytes()
        );
        // Two generated keys differ: the random source is used.
        assert_ne!(generate().to_bytes(), generated.to_bytes());
    }

    /// RFC 8410 §10.3's example private key: what OpenSSL writes for that seed.
    const RFC8410_EXAMPLE: &str = "-----BEGIN PRIVATE KEY-----\n\
        MC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n\
        -----END PRIVATE KEY-----\n";

    #[test]
    fn keys_are_written_as_pkcs8_v1_byte_for_byte_as_rfc_8410_and_openssl() {
        let dir = tempfile::tempdir().unwrap();
        let given = dir.path().join("rfc8410.pem");
        std::fs::write(&given, RFC8410_EXAMPLE).unwrap();
        let key = read_private_pem(&given).unwrap();
        let written = dir.path().join("written.pem");
        write_private_pem(&written, &key).unwrap();
        assert_eq!(std::fs::read_to_string(&written).unwrap(), RFC8410_EXAMPLE);
        // version 0, the Ed25519 OID, the seed as a nested OCTET STRING, nothing more.
        let der = STANDARD
            .decode(RFC8410_EXAMPLE.lines().nth(1).unwrap())
            .unwrap();
        assert_eq!(der.len(), 48);
        assert_eq!(&der[..5], [0x30, 0x2e, 0x02, 0x01, 0x00]);
        assert_eq!(&der[16..], key.to_bytes());
    }

    #[test]
    fn a_v2_key_with_its_public_key_is_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v2.pem");
        let v2 = key().to_pkcs8_pem(LineEnding::LF).unwrap();
        assert!(v2.len() > RFC8410_EXAMPLE.len(), "the v2 form holds more");
        std::fs::write(&path, v2.as_bytes()).unwrap();
        assert_eq!(
            read_private_pem(&path).unwrap().to_bytes(),
            key().to_bytes()
        );
    }

    #[test]
    fn refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("operator.pem");
        write_private_pem(&path, &key()).unwrap();
        let before = std::fs::read(&path).unwrap();
        let other = SigningKey::from_bytes(&[0x43; 32]);
        let err = write_private_pem(&path, &other).unwrap_err();
        assert_eq!(err.code(), "key_file_exists");
        assert_eq!(std::fs::read(&path).unwrap(), before);
        // Not even through a file of another kind.
        let plain = dir.path().join("notes.txt");
        std::fs::write(&plain, b"keep me").unwrap();
        assert_eq!(
            write_private_pem(&plain, &key()).unwrap_err().code(),
            "key_file_exists"
        );
        assert_eq!(std::fs::read(&plain).unwrap(), b"keep me");
    }

    #[test]
    fn write_into_a_missing_directory_fails_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent").join("operator.pem");
        let err = write_private_pem(&path, &key()).unwrap_err();
        assert_eq!(err.code(), "key_file_write_failed");
    }

    #[test]
    fn missing_and_unreadable_files() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("absent.pem");
        assert_eq!(
            read_private_pem(&missing).unwrap_err().code(),
            "key_file_missing"
        );
        // A directory opens but cannot be read as a file.
        assert_eq!(
            read_private_pem(dir.path()).unwrap_err().code(),
            "key_file_unreadable"
        );
    }

    #[test]
    fn garbage_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let good = key().to_pkcs8_pem(LineEnding::LF).unwrap();
        let body: String = good.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = STANDARD.decode(&body).unwrap();
        // The Ed25519 OID 1.3.101.112 becomes X25519's 1.3.101.110.
        let oid = [0x06, 0x03, 0x2b, 0x65, 0x70];
        let at = der.windows(5).position(|w| w == oid).unwrap();
        let mut x25519 = der.clone();
        x25519[at + 4] = 0x6e;
        let pem = |der: &[u8]| {
            format!(
                "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
                STANDARD.encode(der)
            )
        };
        let public = {
            use ed25519_dalek::pkcs8::EncodePublicKey as _;
            key()
                .verifying_key()
                .to_public_key_pem(LineEnding::LF)
                .unwrap()
        };
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("empty", Vec::new()),
            ("text", b"not a key\n".to_vec()),
            ("binary", vec![0xff, 0xfe, 0x00, 0x01]),
            ("raw der", der.clone()),
            ("public key pem", public.into_bytes()),
            ("x25519 key", pem(&x25519).into_bytes()),
            ("truncated der", pem(&der[..der.len() - 1]).into_bytes()),
            (
                "extended der",
                pem(&[der.as_slice(), &[0]].concat()).into_bytes(),
            ),
            (
                "wrong label",
                good.replace("PRIVATE KEY", "RSA PRIVATE KEY").into_bytes(),
            ),
            ("truncated pem", good.as_bytes()[..good.len() / 2].to_vec()),
        ];
        for (name, bytes) in cases {
            let path = dir.path().join(format!("{}.pem", name.replace(' ', "-")));
            std::fs::write(&path, &bytes).unwrap();
            assert_eq!(
                read_private_pem(&path).unwrap_err().code(),
                "key_file_not_pkcs8_ed25519",
                "{name}"
            );
        }
        // The file holds the public key too (PKCS#8 v2): a flipped bit there no longer
        // matches the seed and is refused.
        let mut flipped = der.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        let path = dir.path().join("flipped-public.pem");
        std::fs::write(&path, pem(&flipped)).unwrap();
        assert_eq!(
            read_private_pem(&path).unwrap_err().code(),
            "key_file_not_pkcs8_ed25519"
        );
    }

    #[test]
    fn oversize_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.pem");
        std::fs::write(&path, vec![b'a'; KEY_FILE_BYTES_MAX + 1]).unwrap();
        assert_eq!(
            read_private_pem(&path).unwrap_err().code(),
            "key_file_too_large"
        );
        std::fs::write(&path, vec![b'a'; KEY_FILE_BYTES_MAX]).unwrap();
        assert_eq!(
            read_private_pem(&path).unwrap_err().code(),
            "key_file_not_pkcs8_ed25519"
        );
    }

    #[test]
    fn error_codes_are_distinct() {
        let path = PathBuf::from("k.pem");
        let codes = [
            KeyFileError::Exists { path: path.clone() }.code(),
            KeyFileError::Missing { path: path.clone() }.code(),
            KeyFileError::Unreadable {
                path: path.clone(),
                source: io::Error::other("x"),
            }
            .code(),
            KeyFileError::WriteFailed {
                path: path.clone(),
                source: io::Error::other("x"),
            }
            .code(),
            KeyFileError::TooLarge {
                path: path.clone(),
                max: 1,
            }
            .code(),
            KeyFileError::NotPkcs8Ed25519 { path, reason: "x" }.code(),
            KeyFileError::Encode.code(),
        ];
        let unique: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(unique.len(), codes.len());
    }
}

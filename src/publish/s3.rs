//! `s3://bucket/prefix`: S3-compatible object storage, through the `object_store`
//! crate (the `s3` cargo feature, on by default; `--no-default-features` builds without
//! it). Credentials, region and endpoint come from the usual `AWS_*` environment
//! variables (`AWS_ENDPOINT` and `AWS_ALLOW_HTTP=true` for a local S3-compatible
//! server); requests are path-style (`ENDPOINT/bucket/prefix/tile/0/000`).
//!
//! What the publisher relies on, and all it uses: a PUT replaces an object whole, so
//! nothing is half-written; a GET returns the bytes last PUT (S3 is strongly
//! consistent), or 404, read as "not there"; an acknowledged PUT is durable, so
//! [`Destination::sync`] has nothing to do. No listing, no conditional PUT: one
//! publisher writes a prefix, and the checkpoint, PUT last, says what is complete. The
//! publisher's credentials need `s3:GetObject`, `s3:PutObject` and `s3:ListBucket` (AWS
//! answers a GET of a missing key 403, not 404, to whom may not list the bucket);
//! readers need `s3:GetObject` only. Each object is stored with the `Content-Type` and `Cache-Control` `serve` answers,
//! so a bucket (or a CDN in front of it) serves it as `serve` does.
//!
//! Tested against moto's S3 server on loopback (`tests/publish_s3.rs`, run by
//! `cargo test`; it needs `python3 -m pip install 'moto[server]'` and fails saying so
//! without it): the log read back anonymously from the bucket over plain HTTP passes
//! `verify --url` and is byte for byte what `serve` serves, a second round PUTs only
//! the new objects and the checkpoint last, and a publisher killed mid-round is
//! finished by the next run.

use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{Attribute, Attributes, ObjectStore, PutOptions, PutPayload};

use super::dest::Destination;
use super::{PublishError, TilePath};
use crate::http::tiles::{CACHE_FULL, CACHE_PARTIAL};

/// A bucket and a prefix in it.
pub struct S3Destination {
    url: String,
    prefix: String,
    store: AmazonS3,
    runtime: tokio::runtime::Runtime,
}

fn s3_error(url: &str, source: impl std::error::Error + Send + Sync + 'static) -> PublishError {
    PublishError::Destination {
        url: url.to_owned(),
        source: Box::new(source),
    }
}

impl S3Destination {
    /// Opens `s3://bucket[/prefix]`.
    ///
    /// # Errors
    /// [`PublishError::Usage`] without a bucket; [`PublishError::Destination`] if the
    /// client cannot be built.
    pub fn open(url: &str) -> Result<S3Destination, PublishError> {
        let rest = url.strip_prefix("s3://").unwrap_or(url);
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(PublishError::Usage(format!("{url}: no bucket")));
        }
        let store = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .build()
            .map_err(|e| s3_error(url, e))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| s3_error(url, e))?;
        Ok(S3Destination {
            url: url.to_owned(),
            prefix: prefix.trim_matches('/').to_owned(),
            store,
            runtime,
        })
    }

    fn key(&self, path: &str) -> ObjectPath {
        if self.prefix.is_empty() {
            ObjectPath::from(path)
        } else {
            ObjectPath::from(format!("{}/{path}", self.prefix))
        }
    }
}

impl Destination for S3Destination {
    fn url(&self) -> String {
        self.url.clone()
    }

    fn get(&self, path: &str) -> Result<Option<Vec<u8>>, PublishError> {
        let key = self.key(path);
        self.runtime.block_on(async {
            match self.store.get(&key).await {
                Ok(found) => found
                    .bytes()
                    .await
                    .map(|b| Some(b.to_vec()))
                    .map_err(|e| s3_error(&self.url, e)),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(s3_error(&self.url, e)),
            }
        })
    }

    fn put(&self, path: &str, bytes: &[u8]) -> Result<(), PublishError> {
        let key = self.key(path);
        let payload = PutPayload::from(bytes.to_vec());
        let options = PutOptions::from(attributes(path));
        self.runtime
            .block_on(self.store.put_opts(&key, payload, options))
            .map(|_| ())
            .map_err(|e| s3_error(&self.url, e))
    }

    fn sync(&self) -> Result<(), PublishError> {
        Ok(())
    }
}

/// The `Content-Type` and `Cache-Control` an object is stored with, and so served with
/// by the bucket and any CDN in front of it: the `Content-Type` `serve` answers at that
/// path; the checkpoint and the documents replaced at each publication `no-cache` (a
/// CDN never holds back a newer checkpoint), full tiles and the state notes (one per
/// size) immutable, partial tiles cached briefly, as `serve` does.
fn attributes(path: &str) -> Attributes {
    let (content_type, cache) = if path == "checkpoint" {
        ("text/plain; charset=utf-8", "no-cache")
    } else if path.starts_with("v1/state-notes/") {
        // One note per size, never replaced.
        ("text/plain; charset=utf-8", CACHE_FULL)
    } else if path.starts_with("v1/") {
        ("application/json", "no-cache")
    } else {
        let full = TilePath::parse_path(path).is_ok_and(|t| t.is_full());
        (
            "application/octet-stream",
            if full { CACHE_FULL } else { CACHE_PARTIAL },
        )
    };
    let mut attributes = Attributes::new();
    attributes.insert(Attribute::ContentType, content_type.into());
    attributes.insert(Attribute::CacheControl, cache.into());
    attributes
}

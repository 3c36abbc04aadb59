//! Where a publication's objects come from: a running `lesson-ledger serve`, read
//! through the same routes a reader uses (`/checkpoint`, `/tile/...`, `/v1/log`,
//! `/v1/state-notes/{size}`), so the published bytes are the served bytes. Every body
//! is read under a cap, as the client reads them.

use std::io::Read;
use std::time::Duration;

use super::PublishError;
use crate::limits::{CLIENT_CHECKPOINT_BYTES_MAX, CLIENT_JSON_BYTES_MAX, CLIENT_TILE_BYTES_MAX};

/// A running server, read over HTTP.
pub struct HttpSource {
    base: String,
    http: reqwest::blocking::Client,
}

/// How big a body of each kind may be.
#[derive(Debug, Clone, Copy)]
pub enum Body {
    /// A signed note: a checkpoint or a state note.
    Note,
    /// A JSON document.
    Json,
    /// A hash tile or an entry bundle.
    Tile,
}

impl Body {
    fn max(self) -> usize {
        match self {
            Body::Note => CLIENT_CHECKPOINT_BYTES_MAX,
            Body::Json => CLIENT_JSON_BYTES_MAX,
            Body::Tile => CLIENT_TILE_BYTES_MAX,
        }
    }
}

impl HttpSource {
    /// A source reading the server at `url` (`http://127.0.0.1:8080`).
    ///
    /// # Errors
    /// [`PublishError::Source`] if the HTTP client cannot be built.
    pub fn new(url: &str) -> Result<HttpSource, PublishError> {
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            // The server drops a connection idle for its header timeout.
            .pool_idle_timeout(Duration::from_secs(crate::limits::HEADER_SECONDS_MAX / 2))
            .build()
            .map_err(|e| source_error(url, e.to_string()))?;
        Ok(HttpSource {
            base: url.trim_end_matches('/').to_owned(),
            http,
        })
    }

    /// The source's base URL.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// `GET /path`: the body, at most `kind`'s cap; `None` on a 404.
    ///
    /// # Errors
    /// [`PublishError::Source`]: transport, any other status, a body over the cap.
    pub fn get(&self, path: &str, kind: Body) -> Result<Option<Vec<u8>>, PublishError> {
        let url = format!("{}/{path}", self.base);
        let response = self
            .http
            .get(&url)
            .send()
            .map_err(|e| source_error(&url, e.to_string()))?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !response.status().is_success() {
            return Err(source_error(&url, format!("status {}", response.status())));
        }
        let max = kind.max();
        let mut body = Vec::new();
        response
            .take(max as u64 + 1)
            .read_to_end(&mut body)
            .map_err(|e| source_error(&url, e.to_string()))?;
        if body.len() > max {
            return Err(source_error(&url, format!("a body over {max} bytes")));
        }
        Ok(Some(body))
    }

    /// [`HttpSource::get`] of an object that must exist.
    ///
    /// # Errors
    /// As [`HttpSource::get`]; a 404 is [`PublishError::Source`] too.
    pub fn get_required(&self, path: &str, kind: Body) -> Result<Vec<u8>, PublishError> {
        self.get(path, kind)?
            .ok_or_else(|| source_error(&format!("{}/{path}", self.base), "404 Not Found".into()))
    }
}

fn source_error(url: &str, reason: String) -> PublishError {
    PublishError::Source {
        url: url.to_owned(),
        reason,
    }
}

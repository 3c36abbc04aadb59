//! The mirror's read side: the ledger's own router over the mirror's ledger, read-only
//! ([`crate::http::ServerConfig::read_only`]: writes answer `405 read_only_mirror`), so
//! the tiles, checkpoints, state notes and balance endpoints with their proofs are
//! served by the same code as the origin's, from the same bytes; and, as C2SP
//! tlog-mirror asks, the log again under `/<origin hash>/` (SHA-256 of the origin,
//! lowercase hex) with a checkpoint that carries the mirror's cosignature.
//!
//! | route | what |
//! |---|---|
//! | every `GET` of [`crate::http::app`] | as the origin serves it at the mirror's size |
//! | `GET /<origin hash>/checkpoint` | the checkpoint with the mirror's cosignature |
//! | `GET /<origin hash>/tile/...` | the tiles, as `/tile/...` |

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};

use super::{io, Mirror, MirrorError};
use crate::http::sequencer::Sequencer;
use crate::http::{app, tiles, AppState, ServerConfig};
use crate::net::ServerHandle;

/// `<origin hash>`: "the SHA-256 hash of the log's origin, hex encoded, in lowercase".
pub fn origin_hash(origin: &str) -> String {
    Sha256::digest(origin.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A running mirror server, on its own thread and runtime.
pub struct MirrorServer {
    handle: ServerHandle<()>,
}

impl MirrorServer {
    /// Serves `mirror`'s ledger on `addr` (port 0 picks one) until [`MirrorServer::
    /// shutdown`] or `signal` resolves.
    ///
    /// # Errors
    /// [`MirrorError::Empty`] before the first follow; binding; the runtime.
    pub fn start(
        mirror: &Mirror,
        addr: SocketAddr,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> Result<MirrorServer, MirrorError> {
        let ledger = mirror.ledger().ok_or(MirrorError::Empty)?;
        let cosigned = mirror.cosigned();
        let prefix = format!("/{}", origin_hash(mirror.origin().as_str()));
        let dir = mirror.dir().to_path_buf();
        let handle = ServerHandle::start("mirror-http", None, addr, move |listener, stop| {
            async move {
                let config = ServerConfig {
                    read_only: true,
                    ..ServerConfig::default()
                };
                // Its writer thread takes no submission: every write route is refused.
                let (sequencer, writer) = Sequencer::start(Arc::clone(&ledger));
                let state = AppState::new(ledger, sequencer.clone(), &config);
                let router =
                    app(state.clone(), &config).merge(mirror_routes(&prefix, state, cosigned));
                let shutdown = async move {
                    tokio::select! {
                        () = stop.stopped() => {},
                        () = signal => {},
                    }
                };
                crate::net::serve(listener, router, &config.connection_limits(), shutdown).await;
                sequencer.stop().await;
                let _ = tokio::task::spawn_blocking(move || writer.join()).await;
            }
        })
        .map_err(|e| io(&dir)(e.into()))?;
        Ok(MirrorServer { handle })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.handle.addr()
    }

    /// `http://ADDR`.
    pub fn url(&self) -> String {
        self.handle.url()
    }

    /// Whether it stopped (a signal).
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    /// Stops serving and waits.
    pub fn shutdown(mut self) {
        let _ = self.handle.stop();
    }
}

/// The tlog-mirror routes under `prefix`.
fn mirror_routes(prefix: &str, state: AppState, cosigned: Arc<RwLock<Option<String>>>) -> Router {
    let checkpoint = get(move || {
        let text = cosigned.read().unwrap_or_else(|p| p.into_inner()).clone();
        async move { cosigned_checkpoint(text) }
    });
    Router::new()
        .route(&format!("{prefix}/checkpoint"), checkpoint)
        .route(
            &format!("{prefix}/tile/{{*path}}"),
            get(
                |State(app): State<AppState>, path: axum::extract::Path<String>| async move {
                    tiles::get_tile(State(app), path).await
                },
            ),
        )
        .with_state(state)
}

/// The cosigned checkpoint as served, or `503 mirror_empty` before the first.
pub(crate) fn cosigned_checkpoint(text: Option<String>) -> Response {
    let Some(text) = text else {
        return crate::http::error::problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "mirror_empty",
            "the mirror has not cosigned a checkpoint yet".into(),
        );
    };
    let mut response = (StatusCode::OK, text).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

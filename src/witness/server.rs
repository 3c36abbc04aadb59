//! The witness's HTTP service (axum): the submission and monitoring prefixes are the
//! same, the server's root.
//!
//! | route | what |
//! |---|---|
//! | `POST /add-checkpoint` | tlog-witness `add-checkpoint` ([`super::Witness::add_checkpoint`]) |
//! | `GET /<origin hash>/checkpoint` | the latest cosigned checkpoint of a log |
//! | `GET /split-views` | every split view recorded (JSON array of [`super::store::SplitView`]) |
//!
//! Errors are `text/plain`, `<code>: <detail>`; a `409` is the held size alone, as
//! `text/x.tlog.size`. Bodies are capped at [`ADD_CHECKPOINT_BYTES_MAX`] before anything
//! is parsed; a request's check and fsync run on the blocking pool.
//!
//! Connections go through the ledger's own hardened loop ([`crate::net::serve`]): a
//! header timeout, a write timeout, a cap on open connections and a bounded shutdown,
//! so an anonymous client cannot hold an association's witness open (slowloris).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};

use crate::net::{ConnectionLimits, ServerHandle};

use super::protocol::{ADD_CHECKPOINT_BYTES_MAX, SIZE_CONTENT_TYPE};
use super::{Witness, WitnessError};

/// Longest a request may take, body included.
const REQUEST_SECONDS_MAX: u64 = 30;

/// Longest a client may take to send its body.
const BODY_SECONDS_MAX: u64 = 10;

/// The router over a witness.
pub fn app(witness: Arc<Witness>) -> Router {
    Router::new()
        .route("/add-checkpoint", post(add_checkpoint))
        .route("/split-views", get(split_views))
        .route("/{hash}/checkpoint", get(checkpoint))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(REQUEST_SECONDS_MAX),
        ))
        .layer(DefaultBodyLimit::max(ADD_CHECKPOINT_BYTES_MAX))
        .layer(RequestBodyLimitLayer::new(ADD_CHECKPOINT_BYTES_MAX))
        .layer(RequestBodyTimeoutLayer::new(Duration::from_secs(
            BODY_SECONDS_MAX,
        )))
        .with_state(witness)
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    response
}

fn refusal(error: &WitnessError) -> Response {
    let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match error {
        // "The response body MUST consist of the tree size of the latest cosigned
        // checkpoint in decimal, followed by a newline"
        WitnessError::Conflict { held, .. } => text(status, SIZE_CONTENT_TYPE, format!("{held}\n")),
        WitnessError::Store(e) => {
            tracing::error!(error = %e, "witness storage failed; nothing was cosigned");
            text(status, "text/plain", "internal error\n".into())
        }
        e => text(status, "text/plain", format!("{}: {e}\n", e.code())),
    }
}

async fn add_checkpoint(State(witness): State<Arc<Witness>>, body: Bytes) -> Response {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let answer = tokio::task::spawn_blocking(move || witness.add_checkpoint(&body, now)).await;
    match answer {
        Ok(Ok(line)) => text(StatusCode::OK, "text/plain; charset=utf-8", line),
        Ok(Err(e)) => refusal(&e),
        Err(e) => {
            tracing::error!(error = %e, "add-checkpoint task failed");
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "text/plain",
                "internal error\n".into(),
            )
        }
    }
}

async fn checkpoint(State(witness): State<Arc<Witness>>, Path(hash): Path<String>) -> Response {
    match witness.held_by_hash(&hash) {
        Some(held) => text(StatusCode::OK, "text/plain; charset=utf-8", held.note),
        // "If the witness has never cosigned a checkpoint for that log, it MUST respond
        // with a "404 Not Found""
        None => text(StatusCode::NOT_FOUND, "text/plain", "unknown_log\n".into()),
    }
}

async fn split_views(State(witness): State<Arc<Witness>>) -> Response {
    let views = tokio::task::spawn_blocking(move || witness.split_views()).await;
    match views {
        Ok(Ok(views)) => match serde_json::to_string_pretty(&views) {
            Ok(json) => text(StatusCode::OK, "application/json", json),
            Err(e) => {
                tracing::error!(error = %e, "split views not served");
                text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "text/plain",
                    "internal error\n".into(),
                )
            }
        },
        Ok(Err(e)) => refusal(&WitnessError::Store(e)),
        Err(e) => {
            tracing::error!(error = %e, "split views task failed");
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "text/plain",
                "internal error\n".into(),
            )
        }
    }
}

/// Serves `witness` on `listener` under `limits` until `shutdown` resolves, then drains
/// the open connections for at most the shutdown deadline.
pub async fn run(
    witness: Arc<Witness>,
    listener: tokio::net::TcpListener,
    limits: &ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    crate::net::serve(listener, app(witness), limits, shutdown).await;
}

/// A witness serving on its own thread and runtime (the tests', and the CLI's).
pub struct WitnessServer {
    handle: ServerHandle<()>,
}

impl WitnessServer {
    /// Binds `addr` (port 0 picks one) and serves `witness` under the default
    /// [`ConnectionLimits`].
    ///
    /// # Errors
    /// Binding; runtime creation.
    pub fn start(witness: Witness, addr: SocketAddr) -> std::io::Result<WitnessServer> {
        WitnessServer::start_with(witness, addr, ConnectionLimits::default())
    }

    /// [`WitnessServer::start`] under `limits`.
    ///
    /// # Errors
    /// Binding; runtime creation.
    pub fn start_with(
        witness: Witness,
        addr: SocketAddr,
        limits: ConnectionLimits,
    ) -> std::io::Result<WitnessServer> {
        let witness = Arc::new(witness);
        let handle = ServerHandle::start(
            "witness-http",
            Some(2),
            addr,
            move |listener, stop| async move { run(witness, listener, &limits, stop.stopped()).await },
        )?;
        Ok(WitnessServer { handle })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.handle.addr()
    }

    /// The base URL, `http://ADDR` (both prefixes).
    pub fn url(&self) -> String {
        self.handle.url()
    }

    /// Stops and waits (what is stored stays stored).
    ///
    /// # Errors
    /// The server thread panicked.
    pub fn shutdown(mut self) -> std::io::Result<()> {
        self.stop_and_join()
    }

    /// Waits until `signal` resolves, then stops: what the CLI does after printing its
    /// address.
    ///
    /// # Errors
    /// The server thread panicked; the waiting runtime could not be built.
    pub fn wait(mut self, signal: impl Future<Output = ()>) -> std::io::Result<()> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(signal);
        self.stop_and_join()
    }

    fn stop_and_join(&mut self) -> std::io::Result<()> {
        self.handle.stop().map(drop).map_err(std::io::Error::other)
    }
}

/// Resolves on Ctrl-C or SIGTERM (the CLI's signal to stop).
pub use crate::net::shutdown_signal;

//! The HTTP service: the ledger over axum, for students, institutions, auditors and the
//! operator (issue 4).
//!
//! [`app`] builds the [`Router`] from an [`AppState`]; [`run`] serves it on a listener
//! until a shutdown signal, then finishes what is queued and closes the ledger;
//! [`Server`] runs all that on its own thread and runtime (the CLI's `serve`, the tests
//! and the benchmark use it); [`serve`] is the CLI's entry point.
//!
//! Writes go through one [`sequencer`] thread with group commit; reads take a read lock
//! on the ledger, on the runtime when it is free and on the blocking pool while a group
//! commit holds it ([`AppState::read`]). Errors are RFC 9457 problem details ([`ApiError`]).
//! Requests are bounded by [`entries::REQUEST_BODY_BYTES_MAX`] (tower-http's body limit,
//! answered `413`) and by timeouts ([`ServerConfig`], answered `408`).
//!
//! Routes:
//!
//! | route | what |
//! |---|---|
//! | `POST /v1/entries` | one envelope or `{"entries": [...]}` ([`entries`]) |
//! | `GET /checkpoint` | the signed checkpoint, `text/plain` ([`reads`]) |
//! | `GET /v1/entries/{index}`, `/v1/entries/by-id/{id}` | one entry |
//! | `GET /v1/proofs/inclusion?index=&size=` | RFC 9162 inclusion proof |
//! | `GET /v1/proofs/consistency?from=&to=` | RFC 9162 consistency proof |
//! | `GET /v1/log` | origin, operator key, genesis parameters |
//! | `GET /v1/state-notes/{size}` | the signed state note of the batch that ended at `size` ([`reads`]) |
//! | `GET /v1/state-notes?from=` | the signed state notes, a page at a time, for a remote auditor ([`balances`]) |
//! | `GET /healthz` | liveness of the writer |
//! | `GET /v1/claims/{id}`, `/v1/pledges/{id}`, `/v1/allocations/{id}`, `/v1/students/{ref}` | a balance with its entries and their proofs ([`balances`]) |
//! | `GET /v1/pool`, `/v1/institutions/{id}/report` | pool totals, a closed institution's liability |
//! | `GET /v1/institutions/{id}/pledges`, `/v1/pledges`, `/v1/lessons/{id}`, `/v1/checkpoints` | listings for the web app ([`listings`]) |
//! | `GET /metrics` | Prometheus text ([`metrics`]) |
//! | `GET /tile/<L>/<N>[.p/<W>]`, `/tile/entries/<N>[.p/<W>]` | C2SP tlog-tiles ([`tiles`]) |
//! | `POST /v1/cosign` | an association's cosignature on the checkpoint ([`cosign`]) |
//! | `POST /v1/match` | the operator runs the matcher and records the run ([`match_run`]) |
//! | `GET /openapi.json` | the OpenAPI 3.1 document, `schemas/openapi.json` |
//! | `GET /`, `/students/{ref}`, `/institutions/{id}`, `/pool`, `/audit`, `/web/{file}` | the web app ([`web`]) |
//!
//! The server also submits each new checkpoint to the tlog-witnesses of
//! [`ServerConfig::witnesses`] and serves their cosignatures ([`witnesses`]).
//!
//! ```
//! use lesson_ledger::http::{Server, ServerConfig};
//! use lesson_ledger::ledger::writer::Ledger;
//! let dir = tempfile::tempdir().unwrap();
//! let ledger = Ledger::create(dir.path(), "lessons.example/doc", "operator").unwrap();
//! let server = Server::start(ledger, "127.0.0.1:0".parse().unwrap(), ServerConfig::default()).unwrap();
//! let body = reqwest::blocking::get(format!("http://{}/healthz", server.addr()))
//!     .unwrap()
//!     .text()
//!     .unwrap();
//! assert_eq!(body, "ok\n");
//! server.shutdown().unwrap();
//! ```

pub mod admission;
pub mod balances;
pub mod cosign;
pub mod entries;
pub mod error;
pub mod listings;
pub mod match_run;
pub mod metrics;
pub mod operator;
pub mod reads;
pub mod sequencer;
pub mod server;
pub mod tiles;
pub mod web;
pub mod witnesses;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};
use tower_http::trace::TraceLayer;

pub use error::ApiError;
pub use server::{run, serve, ServeError, Server};

use crate::ledger::writer::Ledger;
use crate::log::envelope::KeyCache;
use entries::REQUEST_BODY_BYTES_MAX;
use sequencer::Sequencer;

/// Timeouts and caps of the service (defaults from [`crate::limits`]).
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Longest a request may take, body included (answered `408`). An append that
    /// times out may still become durable: retrying it answers `exists`.
    pub request_timeout: Duration,
    /// Longest the client may take to send the body (a slow client holds a connection).
    pub body_timeout: Duration,
    /// Longest an operator's match run may take (`POST /v1/match`, instead of
    /// `request_timeout`): at city scale the matcher and the signing and appending of
    /// its allocations take minutes, and a run answered `408` is still recorded.
    pub match_timeout: Duration,
    /// Longest the client may take to send a request's headers, or to start its next
    /// request on an idle kept-alive connection; then the connection is closed.
    pub header_timeout: Duration,
    /// Longest one write of a response may wait for a client that does not read.
    pub write_timeout: Duration,
    /// Longest a shutdown waits for open connections before closing them.
    pub shutdown_timeout: Duration,
    /// Most connections open at once; more wait in the kernel's backlog.
    pub connections_max: usize,
    /// Most requests in progress at once (`/healthz` aside); more are answered `503`.
    pub requests_in_flight_max: usize,
    /// Most proven entries in one page of a balance.
    pub balance_page_entries: usize,
    /// Most bytes of balance answers kept between two batches (0: none kept, every
    /// answer made anew; [`balances::AnswerCache`]).
    pub answer_cache_bytes_max: usize,
    /// The tlog-witnesses each new checkpoint is submitted to ([`witnesses`]).
    pub witnesses: Vec<witnesses::WitnessTarget>,
    /// A mirror's copy (`crate::mirror`): every write route answers `405
    /// read_only_mirror`, and nothing but the mirror's import writes the ledger.
    pub read_only: bool,
}

impl ServerConfig {
    /// The limits of the shared connection loop ([`crate::net`]).
    pub fn connection_limits(&self) -> crate::net::ConnectionLimits {
        crate::net::ConnectionLimits {
            header_timeout: self.header_timeout,
            write_timeout: self.write_timeout,
            shutdown_timeout: self.shutdown_timeout,
            connections_max: self.connections_max,
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        use crate::limits as l;
        ServerConfig {
            request_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(10),
            match_timeout: Duration::from_secs(l::MATCH_RUN_SECONDS_MAX),
            header_timeout: Duration::from_secs(l::HEADER_SECONDS_MAX),
            write_timeout: Duration::from_secs(l::WRITE_SECONDS_MAX),
            shutdown_timeout: Duration::from_secs(l::SHUTDOWN_SECONDS_MAX),
            connections_max: l::CONNECTIONS_MAX,
            requests_in_flight_max: l::REQUESTS_IN_FLIGHT_MAX,
            balance_page_entries: l::BALANCE_PAGE_ENTRIES_MAX,
            answer_cache_bytes_max: balances::ANSWER_CACHE_BYTES_MAX,
            witnesses: Vec::new(),
            read_only: false,
        }
    }
}

/// What every handler shares: one `Arc`, so the per-request clones axum makes (one per
/// `State` extractor and middleware) are a single atomic increment, not six.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// The parts of [`AppState`].
pub struct Shared {
    ledger: Arc<RwLock<Ledger>>,
    sequencer: Sequencer,
    keys: Arc<KeyCache>,
    /// Keys admission found registered ([`admission::RegisteredKeys`]).
    registered: admission::RegisteredKeys,
    requests: metrics::RequestCounts,
    cosignatures: cosign::Cosignatures,
    entry_cache: balances::EntryCache,
    answer_cache: balances::AnswerCache,
    /// The operator's token and key; `None` if they could not be loaded (then operator
    /// requests are answered 503 and everything else is served).
    operator: Option<Arc<operator::Operator>>,
    /// Most proven entries in one page of a balance.
    balance_page_entries: usize,
    /// Requests in progress ([`ServerConfig::requests_in_flight_max`]).
    in_flight: Arc<tokio::sync::Semaphore>,
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    /// State over a ledger whose writer is `sequencer`. Creates the operator's token
    /// beside the log if there is none ([`operator::ensure_token`]).
    pub fn new(
        ledger: Arc<RwLock<Ledger>>,
        sequencer: Sequencer,
        config: &ServerConfig,
    ) -> AppState {
        let (cosignatures, operator) = {
            let guard = ledger.read().unwrap_or_else(|p| p.into_inner());
            let log = guard.log();
            let operator = operator::Operator::load(log.dir(), &log.verifier().to_vkey())
                .map_err(|e| tracing::error!(error = %e, "no operator credentials: POST /v1/match is unavailable"))
                .ok();
            (cosign::Cosignatures::load(&guard), operator)
        };
        AppState(Arc::new(Shared {
            operator: operator.map(Arc::new),
            cosignatures,
            ledger,
            sequencer,
            keys: Arc::new(KeyCache::self_certifying()),
            registered: admission::RegisteredKeys::default(),
            requests: metrics::RequestCounts::default(),
            entry_cache: balances::EntryCache::default(),
            answer_cache: balances::AnswerCache::new(config.answer_cache_bytes_max),
            balance_page_entries: config.balance_page_entries.max(1),
            in_flight: Arc::new(tokio::sync::Semaphore::new(config.requests_in_flight_max)),
        }))
    }

    /// Runs `f` on the ledger under a read lock.
    ///
    /// A read is a few `pread`s of files the page cache holds and some formatting, a few
    /// microseconds: when the lock is free it runs right here, on the runtime, because a
    /// hop to the blocking pool (a futex wake and two context switches) cost more than
    /// the read itself (it halved the proof rate on two cores). When the lock is taken —
    /// the writer holds it for a whole group commit, fdatasync included — waiting here
    /// would stall a runtime worker and every connection on it, so the read moves to the
    /// blocking pool and waits there.
    ///
    /// # Errors
    /// What `f` returns; an internal fault if the task panicked.
    pub async fn read<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Ledger) -> Result<T, ApiError> + Send + 'static,
    {
        match self.ledger.try_read() {
            Ok(guard) => return f(&guard),
            // A poisoned lock means a reader panicked; readers change nothing.
            Err(std::sync::TryLockError::Poisoned(p)) => return f(&p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => {}
        }
        self.read_blocking(f).await
    }

    /// Runs `f` on the ledger under a read lock on the blocking pool: for reads that
    /// also do slow I/O of their own (a cosignature's fsync), or that may wait for it.
    ///
    /// # Errors
    /// What `f` returns; an internal fault if the task panicked.
    pub async fn read_blocking<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Ledger) -> Result<T, ApiError> + Send + 'static,
    {
        let ledger = Arc::clone(&self.ledger);
        tokio::task::spawn_blocking(move || {
            let guard = ledger.read().unwrap_or_else(|p| p.into_inner());
            f(&guard)
        })
        .await
        .map_err(ApiError::internal)?
    }

    /// The checkpoint as served at `/checkpoint`.
    ///
    /// # Errors
    /// Internal faults only.
    pub async fn checkpoint_text(&self) -> Result<String, ApiError> {
        let app = self.clone();
        self.read(move |ledger| Ok(app.cosignatures.served(ledger.log().checkpoint())))
            .await
    }
}

/// The router: every route, the body limit, timeouts and tracing.
/// Every route: method, path (axum syntax) and handler. The router is built from this
/// table, and the OpenAPI test checks each entry is documented.
fn route_table() -> Vec<(&'static str, &'static str, MethodRouter<AppState>)> {
    vec![
        ("POST", "/v1/entries", post(entries::post_entries)),
        (
            "GET",
            "/v1/entries/by-id/{id}",
            get(entries::get_entry_by_id),
        ),
        ("GET", "/v1/entries/{index}", get(entries::get_entry)),
        ("GET", "/v1/proofs/inclusion", get(reads::get_inclusion)),
        ("GET", "/v1/proofs/consistency", get(reads::get_consistency)),
        ("GET", "/v1/log", get(reads::get_log)),
        ("GET", "/checkpoint", get(reads::get_checkpoint)),
        ("GET", "/v1/state-notes/{size}", get(reads::get_state_note)),
        ("GET", "/healthz", get(reads::get_healthz)),
        ("GET", "/v1/claims/{id}", get(balances::get_claim)),
        ("GET", "/v1/pledges/{id}", get(balances::get_pledge)),
        ("GET", "/v1/allocations/{id}", get(balances::get_allocation)),
        ("GET", "/v1/students/{id}", get(balances::get_student)),
        ("GET", "/v1/pool", get(balances::get_pool)),
        ("GET", "/v1/state-notes", get(balances::get_state_notes)),
        (
            "GET",
            "/v1/institutions/{id}/report",
            get(balances::get_institution_report),
        ),
        (
            "GET",
            "/v1/institutions/{id}/pledges",
            get(listings::get_institution_pledges),
        ),
        ("GET", "/v1/pledges", get(listings::get_open_pledges)),
        ("GET", "/v1/lessons/{id}", get(listings::get_lesson)),
        ("GET", "/v1/checkpoints", get(listings::get_checkpoints)),
        ("GET", "/metrics", get(metrics::get_metrics)),
        ("GET", "/tile/{*path}", get(tiles::get_tile)),
        ("POST", "/v1/cosign", post(cosign::post_cosign)),
        ("POST", MATCH_PATH, post(match_run::post_match)),
        ("GET", "/openapi.json", get(get_openapi)),
    ]
}

/// Every route of [`app`], as (method, axum path).
pub fn routes() -> Vec<(&'static str, &'static str)> {
    route_table().into_iter().map(|(m, p, _)| (m, p)).collect()
}

/// A `200` with a JSON body already written (where it is built from borrowed parts,
/// which `Json` cannot hold past the read lock).
fn json_body(bytes: Vec<u8>) -> Response {
    let mut response = (StatusCode::OK, bytes).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    response
}

/// The OpenAPI 3.1 document, `schemas/openapi.json`, compiled in.
pub const OPENAPI_JSON: &str = include_str!("../../schemas/openapi.json");

async fn get_openapi() -> Response {
    let mut response = (StatusCode::OK, OPENAPI_JSON).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    response
}

/// The operator's match-run route, which has a timeout of its own.
const MATCH_PATH: &str = "/v1/match";

/// The router: every route, the body limit, timeouts and tracing.
pub fn app(state: AppState, config: &ServerConfig) -> Router {
    // Two groups, each under its own request timeout: operator match runs, and the rest.
    let (mut runs, mut rest) = (Router::new(), Router::new());
    for (method, path, handler) in route_table() {
        let handler = match (config.read_only, method) {
            (true, "POST") => post(read_only_mirror),
            _ => handler,
        };
        if path == MATCH_PATH {
            runs = runs.route(path, handler);
        } else {
            rest = rest.route(path, handler);
        }
    }
    let timeout = |limit| TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, limit);
    rest.merge(web::router())
        .layer(timeout(config.request_timeout))
        .merge(runs.layer(timeout(config.match_timeout)))
        .fallback(not_found)
        // The cap is repeated: axum's extractor default (2 MiB) is replaced by ours,
        // and tower-http refuses a larger declared or streamed body before any handler.
        .layer(DefaultBodyLimit::max(REQUEST_BODY_BYTES_MAX))
        .layer(RequestBodyLimitLayer::new(REQUEST_BODY_BYTES_MAX))
        .layer(RequestBodyTimeoutLayer::new(config.body_timeout))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            limit_in_flight,
        ))
        // Outermost but for tracing: the limit and timeout layers answer in plain text.
        .layer(axum::middleware::map_response(problems_for_bare_errors))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::count_responses,
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// A write to a mirror's copy: the origin takes it, not the mirror.
async fn read_only_mirror() -> Response {
    error::problem(
        StatusCode::METHOD_NOT_ALLOWED,
        "read_only_mirror",
        "this is a read-only mirror of the ledger: submit to its origin".into(),
    )
}

/// Seconds a client is told to wait when the server is at its in-flight cap.
const BUSY_RETRY_AFTER_SECS: u64 = 1;

/// Answers `503 overloaded` at once when [`ServerConfig::requests_in_flight_max`]
/// requests are in progress, rather than queueing without bound; `/healthz` is always
/// answered, so a load balancer can tell busy from dead.
async fn limit_in_flight(
    axum::extract::State(app): axum::extract::State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if request.uri().path() == "/healthz" {
        return next.run(request).await;
    }
    match Arc::clone(&app.in_flight).try_acquire_owned() {
        Ok(_permit) => next.run(request).await,
        Err(_) => ApiError::Overloaded {
            retry_after_secs: BUSY_RETRY_AFTER_SECS,
        }
        .into_response(),
    }
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound {
        what: "route",
        id: uri.path().chars().take(256).collect(),
    }
}

/// Turns the plain-text errors of axum and tower-http (405, 408, 413, body errors) into
/// problem details, so every error a client sees has the same shape and a code.
async fn problems_for_bare_errors(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == error::PROBLEM_JSON.as_bytes());
    // Our own 500s are plain on purpose (nothing leaked); leave them.
    if is_problem || status == StatusCode::INTERNAL_SERVER_ERROR {
        return response;
    }
    let (code, detail) = match status {
        StatusCode::PAYLOAD_TOO_LARGE => (
            "body_too_large",
            format!("request body larger than {REQUEST_BODY_BYTES_MAX} bytes"),
        ),
        StatusCode::REQUEST_TIMEOUT => ("request_timeout", "the request took too long".into()),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "this route does not take that method".into(),
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            ("unsupported_media_type", "unsupported content type".into())
        }
        _ => ("bad_request", "the request could not be read".into()),
    };
    let mut out = error::problem(status, code, detail);
    if let Some(allow) = response.headers().get(header::ALLOW) {
        out.headers_mut().insert(header::ALLOW, allow.clone());
    }
    out
}

//! Running the service: [`run`] serves the router on a listener until a shutdown
//! signal, then finishes what is queued and closes the ledger; [`Server`] runs that on
//! its own thread and runtime (tests, the benchmark); [`serve`] is `lesson-ledger serve`.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, RwLock};

use super::sequencer::Sequencer;
use super::{app, operator, witnesses, AppState, ServerConfig};
use crate::ledger::writer::{Ledger, LedgerError};
use crate::net::{ServerHandle, ServerPanicked, StartError};

/// Why the server could not start or stopped badly.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The ledger could not be opened or closed (its own code).
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// Code `bind_failed`: cannot listen on `addr`: `source`.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The operating system's refusal.
        #[source]
        source: std::io::Error,
    },
    /// Code `io`: the runtime or a socket failed.
    #[error("server I/O: {0}")]
    Io(#[from] std::io::Error),
    /// Code `server_panicked`: the server thread panicked.
    #[error("the server thread panicked")]
    Panicked,
    /// Code `operator_credentials_unusable`: the operator's token could not be made or read.
    #[error(transparent)]
    Credentials(#[from] operator::CredentialsError),
    /// Code `witness_not_an_association`: a `--witness` key is not a registered association key.
    #[error(transparent)]
    Witness(#[from] witnesses::WitnessRefused),
}

impl From<StartError> for ServeError {
    fn from(e: StartError) -> ServeError {
        match e {
            StartError::Bind { addr, source } => ServeError::Bind { addr, source },
            StartError::Io(e) => ServeError::Io(e),
        }
    }
}

impl From<ServerPanicked> for ServeError {
    fn from(_: ServerPanicked) -> ServeError {
        ServeError::Panicked
    }
}

impl ServeError {
    /// Stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            ServeError::Ledger(e) => e.code(),
            ServeError::Bind { .. } => "bind_failed",
            ServeError::Io(_) => "io",
            ServeError::Panicked => "server_panicked",
            ServeError::Credentials(_) => "operator_credentials_unusable",
            ServeError::Witness(_) => "witness_not_an_association",
        }
    }
}

/// Serves `ledger` on `listener` until `shutdown` resolves; then stops accepting,
/// finishes the requests in flight (their appends included), lets the writer drain its
/// queue, and closes the ledger.
///
/// # Errors
/// Accept-loop I/O; closing the ledger.
pub async fn run(
    ledger: Ledger,
    listener: tokio::net::TcpListener,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let ledger = Arc::new(RwLock::new(ledger));
    let (sequencer, writer) = Sequencer::start(Arc::clone(&ledger));
    let state = AppState::new(Arc::clone(&ledger), sequencer.clone(), &config);
    let submitters = witnesses::spawn(&state, &config.witnesses);
    let router = app(state, &config);
    tracing::info!(addr = ?listener.local_addr().ok(), "serving");
    crate::net::serve(listener, router, &config.connection_limits(), shutdown).await;
    // The witness submitters hold the ledger: stop them before it is closed.
    for task in submitters {
        task.abort();
        let _ = task.await;
    }
    // Everything accepted before the signal has been answered; tell the writer to finish.
    sequencer.stop().await;
    let joined = tokio::task::spawn_blocking(move || writer.join()).await;
    if !matches!(joined, Ok(Ok(()))) {
        tracing::error!("the writer thread panicked");
    }
    match Arc::try_unwrap(ledger) {
        Ok(lock) => {
            let ledger = lock.into_inner().unwrap_or_else(|p| p.into_inner());
            ledger.close()?;
        }
        // Someone still holds the ledger: everything acknowledged is synced in log.dat;
        // derived files are rebuilt on the next open.
        Err(_) => tracing::warn!("ledger still shared at shutdown; not closed cleanly"),
    }
    tracing::info!("stopped");
    Ok(())
}

/// A running server on its own thread and tokio runtime.
pub struct Server {
    handle: ServerHandle<Result<(), ServeError>>,
}

impl Server {
    /// Binds `addr` (port 0 picks one) and starts serving `ledger`.
    ///
    /// # Errors
    /// [`ServeError::Bind`]; runtime creation.
    pub fn start(
        ledger: Ledger,
        addr: SocketAddr,
        config: ServerConfig,
    ) -> Result<Server, ServeError> {
        // Before anything is served, so the operator can read the token once this returns.
        operator::ensure_token(ledger.log().dir())?;
        witnesses::check_targets(&ledger, &config.witnesses)?;
        let mut ledger = ledger;
        close_runs_left_open(&mut ledger);
        let handle = ServerHandle::start("ledger-http", None, addr, move |listener, stop| {
            run(ledger, listener, config, stop.stopped())
        })?;
        Ok(Server { handle })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.handle.addr()
    }

    /// The base URL, `http://ADDR`.
    pub fn url(&self) -> String {
        self.handle.url()
    }

    /// Stops gracefully and waits until the ledger is closed.
    ///
    /// # Errors
    /// What [`run`] returned.
    pub fn shutdown(mut self) -> Result<(), ServeError> {
        self.stop_and_join()
    }

    fn stop_and_join(&mut self) -> Result<(), ServeError> {
        self.handle.stop()?.unwrap_or(Ok(()))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Err(e) = self.stop_and_join() {
            tracing::error!(error = %e, "server stopped with an error");
        }
    }
}

/// `lesson-ledger serve`: opens the ledger in `dir` and serves it on `addr` until
/// SIGTERM or Ctrl-C.
///
/// # Errors
/// Opening the ledger; binding; what [`run`] returns.
pub fn serve(
    dir: &Path,
    addr: SocketAddr,
    witnesses: Vec<witnesses::WitnessTarget>,
) -> Result<(), ServeError> {
    let (mut ledger, report) = Ledger::open(dir)?;
    witnesses::check_targets(&ledger, &witnesses)?;
    close_runs_left_open(&mut ledger);
    if let Some((bytes, why)) = &report.cut {
        tracing::warn!(bytes, why = %why, "cut an unacknowledged torn tail on open");
    }
    // A directory made before `init` wrote tokens gets one now.
    operator::ensure_token(dir)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Bind { addr, source })?;
        eprintln!("listening on http://{}", listener.local_addr()?);
        let config = ServerConfig {
            witnesses,
            ..ServerConfig::default()
        };
        let shutdown = async {
            crate::net::shutdown_signal().await;
            tracing::info!("shutdown signal: finishing in-flight requests");
        };
        run(ledger, listener, config, shutdown).await
    })
}

/// Before serving: a match run a crash cut short is closed, so that the log never reads
/// as a run still being written (`crate::runs::close_runs_left_open`). If it cannot be
/// closed now (no operator key), the next match run closes it first.
fn close_runs_left_open(ledger: &mut Ledger) {
    match crate::runs::close_runs_left_open(ledger) {
        Ok(runs) if runs.is_empty() => {}
        Ok(runs) => tracing::warn!(?runs, "closed match runs a crash cut short"),
        Err(e) => {
            tracing::error!(error = %e, code = e.code(), "a match run cut short is still open")
        }
    }
}

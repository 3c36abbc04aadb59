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

/// Why the server could not start or stopped badly.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("server I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("the server thread panicked")]
    Panicked,
    #[error(transparent)]
    Credentials(#[from] operator::CredentialsError),
    #[error(transparent)]
    Witness(#[from] witnesses::WitnessRefused),
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
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<(), ServeError>>>,
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
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("ledger-http")
            .build()?;
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(addr))
            .map_err(|source| ServeError::Bind { addr, source })?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("ledger-http-main".into())
            .spawn(move || {
                runtime.block_on(run(ledger, listener, config, async move {
                    // Either an explicit stop or the handle being dropped.
                    let _ = stopped.await;
                }))
            })?;
        Ok(Server {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL, `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops gracefully and waits until the ledger is closed.
    ///
    /// # Errors
    /// What [`run`] returned.
    pub fn shutdown(mut self) -> Result<(), ServeError> {
        self.stop_and_join()
    }

    fn stop_and_join(&mut self) -> Result<(), ServeError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.thread.take() {
            Some(t) => t.join().map_err(|_| ServeError::Panicked)?,
            None => Ok(()),
        }
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
        run(ledger, listener, config, shutdown_signal()).await
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

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal: finishing in-flight requests");
}

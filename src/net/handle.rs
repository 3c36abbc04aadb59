//! A server on its own thread and tokio runtime, and the handle that stops it: what the
//! ledger's [`crate::http::Server`], the association's [`crate::witness::WitnessServer`]
//! and the [`crate::mirror::serve::MirrorServer`] each hold, so that starting, the bound
//! address and a graceful stop are written once.
//!
//! Dropping a [`ServerHandle`] stops its server and waits for it, like
//! [`ServerHandle::stop`]: a test that panics halfway never leaves a server running.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::thread::JoinHandle;

use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Code `bind_failed`: the address is taken, not ours, or not permitted.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The operating system's refusal.
        #[source]
        source: io::Error,
    },
    /// Code `io`: the runtime, its thread, or the bound address could not be had.
    #[error("cannot start the server: {0}")]
    Io(#[source] io::Error),
}

impl From<StartError> for io::Error {
    /// For servers whose own error type carries an [`io::Error`]: the kind is kept, and
    /// the [`StartError`] is its source.
    fn from(e: StartError) -> io::Error {
        let kind = match &e {
            StartError::Bind { source, .. } | StartError::Io(source) => source.kind(),
        };
        io::Error::new(kind, e)
    }
}

/// The server thread panicked: what it would have returned is lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the server thread panicked")]
pub struct ServerPanicked;

/// Resolves when the server's handle asks it to stop, or is dropped.
pub struct StopSignal(oneshot::Receiver<()>);

impl StopSignal {
    /// Waits for the stop: an explicit [`ServerHandle::stop`] or the handle dropped.
    pub async fn stopped(self) {
        let _ = self.0.await;
    }
}

/// A server running on a thread of its own (named `{name}-main`) with a multi-thread
/// runtime of its own (workers named `name`); `T` is what its serving future returns.
pub struct ServerHandle<T> {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<T>>,
}

impl<T: Send + 'static> ServerHandle<T> {
    /// Builds the runtime (`workers` threads; `None`: one a core), binds `addr` on it
    /// (port 0 picks one), and runs `serve(listener, stop)` on the server thread, where
    /// `stop` resolves once the handle stops or is dropped. The address is bound when
    /// this returns, so a client may connect at once.
    ///
    /// # Errors
    /// [`StartError::Bind`]; [`StartError::Io`] for the runtime, the thread or the
    /// bound address.
    pub fn start<F, Fut>(
        name: &str,
        workers: Option<usize>,
        addr: SocketAddr,
        serve: F,
    ) -> Result<ServerHandle<T>, StartError>
    where
        F: FnOnce(TcpListener, StopSignal) -> Fut + Send + 'static,
        Fut: Future<Output = T>,
    {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        if let Some(workers) = workers {
            builder.worker_threads(workers);
        }
        let runtime = builder
            .enable_all()
            .thread_name(name)
            .build()
            .map_err(StartError::Io)?;
        let listener = runtime
            .block_on(TcpListener::bind(addr))
            .map_err(|source| StartError::Bind { addr, source })?;
        let addr = listener.local_addr().map_err(StartError::Io)?;
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("{name}-main"))
            .spawn(move || runtime.block_on(serve(listener, StopSignal(stopped))))
            .map_err(StartError::Io)?;
        Ok(ServerHandle {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl<T> ServerHandle<T> {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL, `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Whether the server thread has ended (its own signal, or a stop).
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().map_or(true, |t| t.is_finished())
    }

    /// Tells the server to stop gracefully and waits for its thread: what the serving
    /// future returned, or `None` if an earlier call already took it.
    ///
    /// # Errors
    /// [`ServerPanicked`].
    pub fn stop(&mut self) -> Result<Option<T>, ServerPanicked> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.thread.take() {
            Some(t) => t.join().map(Some).map_err(|_| ServerPanicked),
            None => Ok(None),
        }
    }
}

impl<T> Drop for ServerHandle<T> {
    fn drop(&mut self) {
        // The owner's own `Drop` has usually stopped it already, reading the result.
        if let Err(e) = self.stop() {
            tracing::error!(error = %e, "server stopped with an error");
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM: the signal `lesson-ledger serve`, `witness` and
/// `mirror` stop on.
pub async fn shutdown_signal() {
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
}

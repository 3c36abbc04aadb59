//! The hardened connection loop every HTTP server of the crate uses (the ledger's
//! `http` service and the association's `witness`): what `axum::serve` does not bound
//! (issue 11, item 5; issue 14 for the witness).
//!
//! - at most [`ConnectionLimits::connections_max`] connections are open; the loop stops
//!   accepting while they are all taken, so more wait in the kernel's backlog and file
//!   descriptors never run out (`accept` failing would stop `/healthz` too);
//! - a client has [`ConnectionLimits::header_timeout`] to send a request's headers, and
//!   the same to start its next request on a kept-alive connection (hyper's header-read
//!   timer starts whenever the connection waits for a request head): a half-sent
//!   request, or an idle connection, is closed then;
//! - each write of a response may wait [`ConnectionLimits::write_timeout`] for a client
//!   that does not read ([`WriteDeadline`]); then the connection is dropped;
//! - on shutdown the listener is closed, every connection is told to finish its request
//!   and close, and those still open after [`ConnectionLimits::shutdown_timeout`] are
//!   dropped: a slow client cannot hold the server (or SIGTERM) hostage.
//!
//! Bodies and whole requests are bounded by each router's own layers (a body cap and a
//! body timeout), since only the router knows its largest request.
//!
//! It sits just above [`crate::limits`] and below everything else: it knows nothing of
//! the ledger or the log, only sockets, hyper and a [`Router`].
//!
//! [`ServerHandle`] (`handle.rs`) runs such a server on a thread and runtime of its own
//! and stops it gracefully; every server of the crate is started through it.
//!
//! Architecture invariant: no ledger lock is held here; handlers build a bounded body
//! under the lock and release it before the body is written to the socket.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Sleep;

mod handle;

pub use handle::{shutdown_signal, ServerHandle, ServerPanicked, StartError, StopSignal};

/// What one connection, and all of them together, may cost the server.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Longest the client may take to send a request's headers, or to start its next
    /// request on an idle kept-alive connection; then the connection is closed.
    pub header_timeout: Duration,
    /// Longest one write of a response may wait for a client that does not read.
    pub write_timeout: Duration,
    /// Longest a shutdown waits for open connections before closing them.
    pub shutdown_timeout: Duration,
    /// Most connections open at once; more wait in the kernel's backlog.
    pub connections_max: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        use crate::limits as l;
        ConnectionLimits {
            header_timeout: Duration::from_secs(l::HEADER_SECONDS_MAX),
            write_timeout: Duration::from_secs(l::WRITE_SECONDS_MAX),
            shutdown_timeout: Duration::from_secs(l::SHUTDOWN_SECONDS_MAX),
            connections_max: l::CONNECTIONS_MAX,
        }
    }
}

/// Pause after `accept` fails (out of file descriptors, say), so the loop does not spin.
const ACCEPT_RETRY: Duration = Duration::from_millis(50);

/// Serves `router` on `listener` until `shutdown` resolves, then drains the open
/// connections for at most the shutdown deadline.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    config: &ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send,
) {
    // A cap of 0 would never accept: one connection at least.
    let slots = Arc::new(Semaphore::new(config.connections_max.max(1)));
    let (closing, closing_seen) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // A slot first: while every one is taken, nothing more is accepted.
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = Arc::clone(&slots).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break, // never closed
            },
        };
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(ACCEPT_RETRY).await;
                    continue;
                }
            },
        };
        while connections.try_join_next().is_some() {}
        connections.spawn(connection(
            stream,
            router.clone(),
            config.clone(),
            permit,
            closing_seen.clone(),
        ));
    }
    drop(listener);
    let _ = closing.send(true);
    drain(connections, config.shutdown_timeout).await;
}

/// Waits for the connections to close, at most `deadline`; then drops the rest.
async fn drain(mut connections: JoinSet<()>, deadline: Duration) {
    let all_closed = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(deadline, all_closed).await.is_err() {
        tracing::warn!(
            open = connections.len(),
            "shutdown deadline passed: closing the connections still open"
        );
        connections.abort_all();
        while connections.join_next().await.is_some() {}
    }
}

/// One connection: HTTP/1.1 with the header timeout, writes under [`WriteDeadline`],
/// closed gracefully when the server shuts down. Holds its slot until it ends.
async fn connection(
    stream: TcpStream,
    router: Router,
    config: ConnectionLimits,
    _slot: OwnedSemaphorePermit,
    mut closing: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let io = TokioIo::new(WriteDeadline::new(stream, config.write_timeout));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_timeout)
        .keep_alive(true);
    let conn = builder.serve_connection(io, TowerToHyperService::new(router));
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => log_end(result),
        () = shutting_down(&mut closing) => {
            conn.as_mut().graceful_shutdown();
            log_end(conn.await);
        }
    }
}

/// Resolves once the server starts shutting down.
async fn shutting_down(closing: &mut watch::Receiver<bool>) {
    loop {
        let now = *closing.borrow_and_update();
        if now {
            return;
        }
        if closing.changed().await.is_err() {
            // The loop is gone without saying so: nothing will ever close us from here.
            std::future::pending::<()>().await;
        }
    }
}

fn log_end(result: Result<(), hyper::Error>) {
    if let Err(e) = result {
        // Timeouts, resets and clients that hang up: theirs to retry, nothing to fix here.
        tracing::debug!(error = %e, "connection ended");
    }
}

/// A stream whose writes fail with `TimedOut` once one has waited `limit` for the
/// client to read. Reads are left to hyper's header timer and the body timeout.
pub struct WriteDeadline<S> {
    inner: S,
    limit: Duration,
    waiting: Option<Pin<Box<Sleep>>>,
}

impl<S> WriteDeadline<S> {
    /// `inner`, with writes bounded by `limit`.
    pub fn new(inner: S, limit: Duration) -> WriteDeadline<S> {
        WriteDeadline {
            inner,
            limit,
            waiting: None,
        }
    }

    /// Turns a pending write into an error once it has waited `limit`; any progress
    /// restarts the clock.
    fn bound<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if polled.is_ready() {
            self.waiting = None;
            return polled;
        }
        let limit = self.limit;
        let timer = self
            .waiting
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client did not read the response in time",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteDeadline<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.bound(cx, polled)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        self.bound(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.bound(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.bound(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

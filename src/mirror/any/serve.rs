//! The any-log mirror's read side, C2SP tlog-tiles under `/<origin hash>/` as
//! tlog-mirror asks: the checkpoint with the mirror's cosignature, the hash tiles the
//! mirror computed, and the entry bundles byte for byte as the origin served them, all
//! of the committed tree only (the store may hold a round in progress past it).
//!
//! | route | what |
//! |---|---|
//! | `GET /<origin hash>/checkpoint` | the checkpoint with the mirror's cosignature |
//! | `GET /<origin hash>/tile/<L>/<N>[.p/<W>]` | a hash tile |
//! | `GET /<origin hash>/tile/entries/<N>[.p/<W>]` | an entry bundle |

use std::future::Future;
use std::net::SocketAddr;

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::store::StoreReader;
use super::{AnyMirror, Served};
use crate::http::error::problem;
use crate::http::tiles::{CACHE_FULL, CACHE_PARTIAL};
use crate::http::ServerConfig;
use crate::log::tiles::TilePath;
use crate::mirror::serve::{cosigned_checkpoint, origin_hash};
use crate::mirror::MirrorError;
use crate::net::ServerHandle;

/// A running any-log mirror server, on its own thread and runtime.
pub struct AnyServer {
    handle: ServerHandle<()>,
}

impl AnyServer {
    /// Serves `mirror` on `addr` (port 0 picks one) until [`AnyServer::shutdown`] or
    /// `signal` resolves.
    ///
    /// # Errors
    /// Binding; the runtime.
    pub fn start(
        mirror: &AnyMirror,
        addr: SocketAddr,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> Result<AnyServer, MirrorError> {
        let router = routes(
            &format!("/{}", origin_hash(mirror.origin())),
            mirror.served(),
            mirror.reader(),
        );
        let handle = ServerHandle::start(
            "any-mirror-http",
            None,
            addr,
            move |listener, stop| async move {
                let config = ServerConfig::default();
                let shutdown = async move {
                    tokio::select! {
                        () = stop.stopped() => {},
                        () = signal => {},
                    }
                };
                crate::net::serve(listener, router, &config.connection_limits(), shutdown).await;
            },
        )
        .map_err(|e| MirrorError::Origin {
            url: addr.to_string(),
            reason: e.to_string(),
        })?;
        Ok(AnyServer { handle })
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

fn routes(prefix: &str, served: Served, reader: StoreReader) -> Router {
    let for_checkpoint = served.clone();
    let checkpoint = get(move || {
        let text = for_checkpoint
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|(_, text)| text.clone());
        async move { cosigned_checkpoint(text) }
    });
    let tile = get(move |Path(rest): Path<String>| {
        let size = served
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map_or(0, |(size, _)| *size);
        let reader = reader.clone();
        async move {
            tokio::task::spawn_blocking(move || tile_response(&reader, size, &rest))
                .await
                .unwrap_or_else(|e| internal(&e.to_string()))
        }
    });
    Router::new()
        .route(&format!("{prefix}/checkpoint"), checkpoint)
        .route(&format!("{prefix}/tile/{{*path}}"), tile)
}

fn internal(detail: &str) -> Response {
    problem(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        detail.to_owned(),
    )
}

/// A tile of the committed tree of `size` leaves, or why not.
fn tile_response(reader: &StoreReader, size: u64, rest: &str) -> Response {
    let tile = match TilePath::parse(rest) {
        Ok(tile) => tile,
        Err(e) => return problem(StatusCode::BAD_REQUEST, e.code(), e.to_string()),
    };
    if !tile.is_in_tree(size) {
        return problem(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("tile {rest} is not in the mirror's tree of {size} leaves"),
        );
    }
    let body = match reader.tile(&tile) {
        Ok(body) => body,
        Err(e) => return internal(&e.to_string()),
    };
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    let cache = if tile.is_full() {
        CACHE_FULL
    } else {
        CACHE_PARTIAL
    };
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}

//! The web app (issue 13): static pages and ES modules compiled into the binary
//! (`src/web/`), served at `/` and the page routes `/students/{ref}`,
//! `/institutions/{id}`, `/pool`, `/audit` (one HTML shell; the app reads the path), and
//! the assets at `/web/{file}` (vendored libraries under `/web/vendor/`, with their
//! version and licence beside them in `src/web/vendor/`).
//!
//! Every response carries a strict Content-Security-Policy: scripts, styles, workers
//! and requests from this origin only (no CDN, no inline script, no external request),
//! no framing. Assets are revalidated on every use (`Cache-Control: no-cache` with a
//! strong `ETag`, answered `304` when unchanged): a page that verifies the ledger must
//! not run yesterday's verifier after an upgrade, and a revalidation costs a few bytes.
//! A client that accepts gzip gets each file gzipped (compressed once, on first use, with
//! its own ETag): the modules and the vendored BLAKE3 keep a family's first view under
//! its 300 KB budget on a phone's connection.
//!
//! ```
//! use lesson_ledger::http::web::asset;
//! let app = asset("app.js").unwrap();
//! assert_eq!(app.content_type, "text/javascript; charset=utf-8");
//! assert!(asset("../Cargo.toml").is_none());
//! ```

use std::io::Write as _;
use std::sync::OnceLock;

use flate2::write::GzEncoder;
use flate2::Compression;

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::AppState;

/// The policy every web response carries. `connect-src 'self'`: the app talks only to
/// the ledger that served it; `worker-src 'self'`: the audit's Web Worker;
/// `img-src 'self' data:`: the QR code is drawn as a data URL.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; worker-src 'self'; \
     manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The page routes, each answered with the app's HTML shell.
pub const PAGE_ROUTES: [&str; 5] = [
    "/",
    "/students/{ref}",
    "/institutions/{id}",
    "/pool",
    "/audit",
];

/// One embedded file.
#[derive(Debug, Clone, Copy)]
pub struct Asset {
    /// The name under `/web/`.
    pub name: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its bytes.
    pub body: &'static [u8],
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file of the app, compiled in.
pub const ASSETS: &[Asset] = &[
    Asset {
        name: "app.js",
        content_type: JS,
        body: include_bytes!("../web/app.js"),
    },
    Asset {
        name: "api.js",
        content_type: JS,
        body: include_bytes!("../web/api.js"),
    },
    Asset {
        name: "verify.js",
        content_type: JS,
        body: include_bytes!("../web/verify.js"),
    },
    Asset {
        name: "ed25519.js",
        content_type: JS,
        body: include_bytes!("../web/ed25519.js"),
    },
    Asset {
        name: "ui.js",
        content_type: JS,
        body: include_bytes!("../web/ui.js"),
    },
    Asset {
        name: "i18n.js",
        content_type: JS,
        body: include_bytes!("../web/i18n.js"),
    },
    Asset {
        name: "family.js",
        content_type: JS,
        body: include_bytes!("../web/family.js"),
    },
    Asset {
        name: "keys.js",
        content_type: JS,
        body: include_bytes!("../web/keys.js"),
    },
    Asset {
        name: "sign.js",
        content_type: JS,
        body: include_bytes!("../web/sign.js"),
    },
    Asset {
        name: "pages.js",
        content_type: JS,
        body: include_bytes!("../web/pages.js"),
    },
    Asset {
        name: "institution.js",
        content_type: JS,
        body: include_bytes!("../web/institution.js"),
    },
    Asset {
        name: "checkpoints.js",
        content_type: JS,
        body: include_bytes!("../web/checkpoints.js"),
    },
    Asset {
        name: "prefs.js",
        content_type: JS,
        body: include_bytes!("../web/prefs.js"),
    },
    Asset {
        name: "charts.js",
        content_type: JS,
        body: include_bytes!("../web/charts.js"),
    },
    Asset {
        name: "audit-worker.js",
        content_type: JS,
        body: include_bytes!("../web/audit-worker.js"),
    },
    Asset {
        name: "vendor/lean-qr/index.mjs",
        content_type: JS,
        body: include_bytes!("../web/vendor/lean-qr/index.mjs"),
    },
    Asset {
        name: "vendor/lean-qr/svg.mjs",
        content_type: JS,
        body: include_bytes!("../web/vendor/lean-qr/svg.mjs"),
    },
    Asset {
        name: "state.js",
        content_type: JS,
        body: include_bytes!("../web/state.js"),
    },
    Asset {
        name: "vendor/noble-hashes/blake3.js",
        content_type: JS,
        body: include_bytes!("../web/vendor/noble-hashes/blake3.js"),
    },
    Asset {
        name: "vendor/noble-hashes/blake2.js",
        content_type: JS,
        body: include_bytes!("../web/vendor/noble-hashes/blake2.js"),
    },
    Asset {
        name: "vendor/noble-hashes/_blake.js",
        content_type: JS,
        body: include_bytes!("../web/vendor/noble-hashes/_blake.js"),
    },
    Asset {
        name: "vendor/noble-hashes/_md.js",
        content_type: JS,
        body: include_bytes!("../web/vendor/noble-hashes/_md.js"),
    },
    Asset {
        name: "vendor/noble-hashes/_u64.js",
        content_type: JS,
        body: include_bytes!("../web/vendor/noble-hashes/_u64.js"),
    },
    Asset {
        name: "vendor/noble-hashes/utils.js",
        content_type: JS,
        body: include_bytes!("../web/vendor/noble-hashes/utils.js"),
    },
    Asset {
        name: "vendor/noble-hashes/crypto.js",
        content_type: JS,
        body: include_bytes!("../web/vendor/noble-hashes/crypto.js"),
    },
    Asset {
        name: "style.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../web/style.css"),
    },
    Asset {
        name: "favicon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("../web/favicon.svg"),
    },
];

/// The HTML shell of every page.
pub const INDEX_HTML: &[u8] = include_bytes!("../web/index.html");

/// The asset named `name`, if there is one. Names are matched exactly against the
/// list, so no request path reaches the file system.
pub fn asset(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.name == name)
}

/// The web app's routes, merged into [`super::app`]'s router. They are not in the
/// JSON API's route table: they are pages, not API, and not in the OpenAPI document.
pub fn router() -> Router<AppState> {
    let mut router = Router::new();
    for path in PAGE_ROUTES {
        router = router.route(path, get(get_page));
    }
    router.route("/web/{*name}", get(get_asset))
}

/// A strong ETag of `body`: BLAKE3, so it changes whenever a byte does.
fn etag(body: &[u8]) -> String {
    format!("\"{}\"", &blake3::hash(body).to_hex()[..32])
}

/// One file as served: its bytes and ETag, and gzipped with their own ETag.
struct Encoded {
    body: &'static [u8],
    etag: String,
    /// `None` only if compressing failed, which writing to memory does not: the file is
    /// then served as it is.
    gzip: Option<(Vec<u8>, String)>,
}

fn gzip(body: &[u8]) -> Option<Vec<u8>> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(body.len() / 3), Compression::best());
    encoder.write_all(body).ok()?;
    encoder.finish().ok()
}

/// The shell and every asset (in that order), each encoded once, on first use.
fn encoded() -> &'static [Encoded] {
    static ENCODED: OnceLock<Vec<Encoded>> = OnceLock::new();
    ENCODED.get_or_init(|| {
        std::iter::once(INDEX_HTML)
            .chain(ASSETS.iter().map(|a| a.body))
            .map(|body| Encoded {
                body,
                etag: etag(body),
                gzip: gzip(body).map(|z| {
                    let tag = format!("\"{}-gzip\"", &blake3::hash(body).to_hex()[..32]);
                    (z, tag)
                }),
            })
            .collect()
    })
}

/// Whether the request's `Accept-Encoding` lists gzip (and not with `q=0`).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            parts.next() == Some("gzip") && !parts.any(|p| p.replace(' ', "") == "q=0")
        })
}

fn serve(headers: &HeaderMap, file: &'static Encoded, content_type: &'static str) -> Response {
    let (body, tag, gzipped): (&'static [u8], &str, bool) = match &file.gzip {
        Some((z, tag)) if accepts_gzip(headers) => (z, tag, true),
        _ => (file.body, &file.etag, false),
    };
    let unchanged = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag));
    let mut response = if unchanged {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (StatusCode::OK, body).into_response()
    };
    let out = response.headers_mut();
    out.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    out.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if gzipped {
        out.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    out.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    out.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    out.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if let Ok(value) = HeaderValue::from_str(tag) {
        out.insert(header::ETAG, value);
    }
    response
}

async fn get_page(headers: HeaderMap) -> Response {
    serve(&headers, &encoded()[0], "text/html; charset=utf-8")
}

async fn get_asset(headers: HeaderMap, Path(name): Path<String>) -> Response {
    match ASSETS.iter().position(|a| a.name == name) {
        Some(i) => {
            let a = &ASSETS[i];
            serve(&headers, &encoded()[i + 1], a.content_type)
        }
        None => super::ApiError::NotFound {
            what: "asset",
            id: name.chars().take(64).collect(),
        }
        .into_response(),
    }
}

//! `GET /metrics`: counters in the Prometheus text exposition format
//! (<https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format>).
//!
//! - `lesson_ledger_entries` (gauge): entries in the log;
//! - `lesson_ledger_appended_total`, `lesson_ledger_batches_total` (counters): entries
//!   appended and group commits made by this process;
//! - `lesson_ledger_queue_entries` (gauge): verified entries waiting for the writer;
//! - `lesson_ledger_http_requests_total{status="..."}` (counter): responses by status.
//!
//! Counting a response is one relaxed atomic increment in a fixed table indexed by the
//! status code, so it costs nothing measurable and cannot grow.
//!
//! ```
//! use lesson_ledger::http::metrics::RequestCounts;
//! let counts = RequestCounts::default();
//! counts.count(200);
//! counts.count(200);
//! counts.count(429);
//! assert_eq!(counts.nonzero(), vec![(200, 2), (429, 1)]);
//! ```

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::AppState;

/// Lowest and one past the highest HTTP status code counted.
const STATUS_MIN: u16 = 100;
const STATUS_END: u16 = 600;

/// Responses by status code.
#[derive(Debug)]
pub struct RequestCounts {
    by_status: Vec<AtomicU64>,
}

impl Default for RequestCounts {
    fn default() -> Self {
        RequestCounts {
            by_status: (STATUS_MIN..STATUS_END)
                .map(|_| AtomicU64::new(0))
                .collect(),
        }
    }
}

impl RequestCounts {
    /// Counts one response with `status` (outside 100..=599: ignored).
    pub fn count(&self, status: u16) {
        if let Some(slot) = status
            .checked_sub(STATUS_MIN)
            .and_then(|i| self.by_status.get(usize::from(i)))
        {
            slot.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Every status seen, with its count, in order.
    pub fn nonzero(&self) -> Vec<(u16, u64)> {
        (STATUS_MIN..STATUS_END)
            .zip(&self.by_status)
            .map(|(s, c)| (s, c.load(Ordering::Relaxed)))
            .filter(|(_, c)| *c > 0)
            .collect()
    }
}

/// Middleware: counts every response by status.
pub async fn count_responses(
    State(app): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let response = next.run(request).await;
    app.requests.count(response.status().as_u16());
    response
}

/// `GET /metrics`.
///
/// # Errors
/// Store faults only.
pub async fn get_metrics(State(app): State<AppState>) -> Result<Response, ApiError> {
    let entries = app.read(|ledger| Ok(ledger.log().size())).await?;
    let stats = app.sequencer.stats();
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
        // Writing to a String cannot fail.
        let _ = write!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
        );
    };
    metric(
        "lesson_ledger_entries",
        "gauge",
        "Entries in the log.",
        entries,
    );
    metric(
        "lesson_ledger_appended_total",
        "counter",
        "Entries appended by this process.",
        stats.appended.load(Ordering::Relaxed),
    );
    metric(
        "lesson_ledger_batches_total",
        "counter",
        "Group commits (one fdatasync each) made by this process.",
        stats.batches.load(Ordering::Relaxed),
    );
    metric(
        "lesson_ledger_queue_entries",
        "gauge",
        "Verified entries waiting for the writer.",
        stats.queued.load(Ordering::Relaxed),
    );
    let busy = stats.busy_micros.load(Ordering::Relaxed);
    let _ = write!(
        out,
        "# HELP lesson_ledger_writer_busy_seconds_total Time the writer spent in group commits.\n\
         # TYPE lesson_ledger_writer_busy_seconds_total counter\n\
         lesson_ledger_writer_busy_seconds_total {}.{:06}\n",
        busy / 1_000_000,
        busy % 1_000_000
    );
    out.push_str("# HELP lesson_ledger_http_requests_total HTTP responses by status code.\n");
    out.push_str("# TYPE lesson_ledger_http_requests_total counter\n");
    for (status, count) in app.requests.nonzero() {
        let _ = writeln!(
            out,
            "lesson_ledger_http_requests_total{{status=\"{status}\"}} {count}"
        );
    }
    let mut response = (StatusCode::OK, out).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_statuses_are_ignored() {
        let c = RequestCounts::default();
        c.count(99);
        c.count(600);
        c.count(100);
        c.count(599);
        assert_eq!(c.nonzero(), vec![(100, 1), (599, 1)]);
    }
}

//! The one error type of the HTTP layer, [`ApiError`], and its wire form: RFC 9457
//! problem details (<https://www.rfc-editor.org/rfc/rfc9457>), `application/problem+json`,
//! carrying the stable error code in a `code` extension member.
//!
//! Internal faults (the store, a lost writer) are logged with `tracing` and answered with
//! a plain `500 Internal Server Error` that says nothing more: the message may name paths
//! or internals, and a client can do nothing with it.
//!
//! ```
//! use axum::http::StatusCode;
//! use lesson_ledger::http::ApiError;
//! let e = ApiError::NotFound { what: "entry", id: "7".into() };
//! assert_eq!(e.status(), StatusCode::NOT_FOUND);
//! assert_eq!(e.code(), "entry_not_found");
//! ```

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Media type of RFC 9457 problem details.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Why a request was not served.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed: a parameter, a path segment, the body's JSON shape.
    #[error("{detail}")]
    BadRequest {
        /// Its stable code (the problem document's `code`).
        code: &'static str,
        /// What was wrong, in words (the problem's `detail`).
        detail: String,
    },
    /// An envelope was refused before it reached the log (shape or signature).
    #[error("{detail}")]
    Envelope {
        /// Its stable code (the problem document's `code`).
        code: &'static str,
        /// What was wrong, in words (the problem's `detail`).
        detail: String,
    },
    /// The entry conflicts with one already logged under the same id.
    #[error("{detail}")]
    Conflict {
        /// Its stable code (the problem document's `code`).
        code: &'static str,
        /// What was wrong, in words (the problem's `detail`).
        detail: String,
    },
    /// The lesson rules refused the entry.
    #[error("{detail}")]
    Refused {
        /// Its stable code (the problem document's `code`).
        code: &'static str,
        /// What was wrong, in words (the problem's `detail`).
        detail: String,
    },
    /// No credentials, or not the right ones (the operator's bearer token): 401 with
    /// `WWW-Authenticate: Bearer`.
    #[error("{detail}")]
    Unauthorized {
        /// What was wrong with the credentials, in words.
        detail: String,
    },
    /// The requester may not do this (e.g. cosign without being an association).
    #[error("{detail}")]
    Forbidden {
        /// Its stable code (the problem document's `code`).
        code: &'static str,
        /// What was wrong, in words (the problem's `detail`).
        detail: String,
    },
    /// Nothing here by that name.
    #[error("{what} {id:?} not found")]
    NotFound {
        /// What was looked up (`claim`, `entry`, `tile`, …).
        what: &'static str,
        /// The id asked for.
        id: String,
    },
    /// No such object in the state, and the proof of it (served as the problem
    /// document's `absence` member).
    #[error("{what} {:?} not found", absence.id)]
    Absent {
        /// What was looked up (`claim`, `entry`, `tile`, …).
        what: &'static str,
        /// The state proof of the absence (the problem document's `absence`).
        absence: Box<crate::api::Absence>,
    },
    /// The request body is larger than the documented limit.
    #[error("request body larger than {max} bytes")]
    TooLarge {
        /// The cap, in bytes.
        max: usize,
    },
    /// The client took too long to send the request.
    #[error("the request body was not received in time")]
    Timeout,
    /// The append queue is full: retry after `retry_after_secs`.
    #[error("the append queue is full; retry after {retry_after_secs} s")]
    QueueFull {
        /// Seconds to wait before retrying (`Retry-After`).
        retry_after_secs: u64,
    },
    /// The server is at its cap of requests in progress: retry after `retry_after_secs`.
    #[error("the server is busy; retry after {retry_after_secs} s")]
    Overloaded {
        /// Seconds to wait before retrying (`Retry-After`).
        retry_after_secs: u64,
    },
    /// The server is shutting down or its writer has stopped.
    #[error("the service is unavailable: {reason}")]
    Unavailable {
        /// Why, in words.
        reason: &'static str,
    },
    /// A fault of the server itself; the detail is logged, never sent.
    #[error("internal fault: {detail}")]
    Internal {
        /// The fault, for the server's log (never sent).
        detail: String,
    },
}

impl ApiError {
    /// Stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest { code, .. }
            | ApiError::Envelope { code, .. }
            | ApiError::Conflict { code, .. }
            | ApiError::Refused { code, .. }
            | ApiError::Forbidden { code, .. } => code,
            ApiError::NotFound { what, .. } | ApiError::Absent { what, .. } => match *what {
                "entry" => "entry_not_found",
                "claim" => "claim_not_found",
                "pledge" => "pledge_not_found",
                "allocation" => "allocation_not_found",
                "student" => "student_not_found",
                "institution" => "institution_not_found",
                "tile" => "tile_not_found",
                "party" => "party_not_found",
                "lesson" => "lesson_not_found",
                "state note" => "state_note_not_found",
                _ => "not_found",
            },
            ApiError::Unauthorized { .. } => "unauthorized",
            ApiError::TooLarge { .. } => "body_too_large",
            ApiError::Timeout => "request_timeout",
            ApiError::QueueFull { .. } => "queue_full",
            ApiError::Overloaded { .. } => "overloaded",
            ApiError::Unavailable { .. } => "unavailable",
            ApiError::Internal { .. } => "internal",
        }
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } | ApiError::Envelope { .. } => StatusCode::BAD_REQUEST,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::Refused { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::NotFound { .. } | ApiError::Absent { .. } => StatusCode::NOT_FOUND,
            ApiError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Timeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::QueueFull { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable { .. } | ApiError::Overloaded { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A bad request with a code and a message.
    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError::BadRequest {
            code,
            detail: detail.into(),
        }
    }

    /// An internal fault, from anything displayable.
    pub fn internal(e: impl std::fmt::Display) -> ApiError {
        ApiError::Internal {
            detail: e.to_string(),
        }
    }
}

/// The RFC 9457 body. `type` is a URN naming the code, so it is stable and needs no
/// document behind it (RFC 9457 §3.1.1 allows non-resolvable URIs).
#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: String,
    code: &'a str,
    /// A 404's proof that the object is absent ([`ApiError::Absent`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    absence: Option<&'a crate::api::Absence>,
}

/// A problem+json response for `status`, `code` and `detail`.
pub fn problem(status: StatusCode, code: &str, detail: String) -> Response {
    problem_with(status, code, detail, None)
}

/// [`problem`], with an absence proof.
fn problem_with(
    status: StatusCode,
    code: &str,
    detail: String,
    absence: Option<&crate::api::Absence>,
) -> Response {
    let body = Problem {
        kind: format!("urn:lesson-ledger:problem:{code}"),
        title: status.canonical_reason().unwrap_or("Error"),
        status: status.as_u16(),
        detail,
        code,
        absence,
    };
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    let mut response = (status, bytes).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal { detail } = &self {
            tracing::error!(error = %detail, "internal fault");
            return (StatusCode::INTERNAL_SERVER_ERROR, "internal server error\n").into_response();
        }
        let status = self.status();
        let absence = match &self {
            ApiError::Absent { absence, .. } => Some(&**absence),
            _ => None,
        };
        let mut response = problem_with(status, self.code(), self.to_string(), absence);
        match self {
            ApiError::QueueFull { retry_after_secs }
            | ApiError::Overloaded { retry_after_secs } => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            }
            // RFC 6750 §3: a 401 names the scheme the client should use.
            ApiError::Unauthorized { .. } => {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_has_its_status_and_code() {
        let cases = [
            (
                ApiError::bad_request("missing_parameter", "x"),
                400,
                "missing_parameter",
            ),
            (
                ApiError::Conflict {
                    code: "exists_with_different_payload",
                    detail: "x".into(),
                },
                409,
                "exists_with_different_payload",
            ),
            (
                ApiError::Refused {
                    code: "genesis_required",
                    detail: "x".into(),
                },
                422,
                "genesis_required",
            ),
            (ApiError::TooLarge { max: 1 }, 413, "body_too_large"),
            (
                ApiError::Unauthorized { detail: "x".into() },
                401,
                "unauthorized",
            ),
            (ApiError::Timeout, 408, "request_timeout"),
            (
                ApiError::QueueFull {
                    retry_after_secs: 1,
                },
                429,
                "queue_full",
            ),
            (ApiError::Unavailable { reason: "x" }, 503, "unavailable"),
            (ApiError::internal("x"), 500, "internal"),
        ];
        for (e, status, code) in cases {
            assert_eq!(e.status().as_u16(), status, "{e:?}");
            assert_eq!(e.code(), code);
        }
    }

    #[test]
    fn internal_faults_do_not_leak_their_message() {
        let response = ApiError::internal("/secret/path: disk on fire").into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_ne!(
            response
                .headers()
                .get(header::CONTENT_TYPE)
                .map(|v| v.as_bytes()),
            Some(PROBLEM_JSON.as_bytes())
        );
    }

    #[test]
    fn queue_full_says_when_to_retry() {
        let response = ApiError::QueueFull {
            retry_after_secs: 2,
        }
        .into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers().get(header::RETRY_AFTER).unwrap(), "2");
    }
}

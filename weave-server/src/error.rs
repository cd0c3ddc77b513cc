//! Errors as the Weave trace server answers them.
//!
//! The shapes and codes are the Weave server's own (its error registry and FastAPI's
//! validation errors), so the Python client's messages read the same against this server:
//!
//! | what happened | status | body |
//! |---|---|---|
//! | a malformed body (not JSON, wrong types, a missing field) | 422 | `{"detail": [{"loc", "msg", "type"}]}` |
//! | an invalid request (bad query, bad id, bad ref, …) | 400 | `{"reason": …}` |
//! | a missing credential or a wrong key | 401 | `{"reason": …}` |
//! | not found | 404 | `{"reason": …}` |
//! | a digest that is not the content's | 409 | `{"reason": …}` |
//! | a body over the limit | 413 | `{"reason": "Request too large"}` |
//! | an unknown route | 404 | `{"detail": "Not Found"}` |
//! | the store is busy or shutting down | 503 | `{"reason": …}` |
//! | a failure of the server itself | 500 | `{"reason": …}` |
//!
//! A client's mistake is never a 500: a 500 means a bug or a failing disk, and is logged.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use weave_core::WeaveError;

/// An error answer: a status and a JSON body.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The JSON body.
    pub body: Value,
}

impl ApiError {
    /// `{"reason": reason}` with `status`.
    pub fn reason(status: StatusCode, reason: impl std::fmt::Display) -> Self {
        ApiError {
            status,
            body: json!({ "reason": reason.to_string() }),
        }
    }

    /// 400: the request is invalid.
    pub fn bad_request(reason: impl std::fmt::Display) -> Self {
        Self::reason(StatusCode::BAD_REQUEST, reason)
    }

    /// 422 in FastAPI's shape: `loc` is the path of the failing field in the body.
    pub fn unprocessable(loc: Vec<Value>, msg: impl std::fmt::Display, kind: &str) -> Self {
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            body: json!({ "detail": [{ "loc": loc, "msg": msg.to_string(), "type": kind }] }),
        }
    }

    /// 413: the body is over the limit.
    pub fn too_large() -> Self {
        Self::reason(StatusCode::PAYLOAD_TOO_LARGE, "Request too large")
    }

    /// 404 for a route that does not exist, in FastAPI's shape.
    pub fn no_route() -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            body: json!({ "detail": "Not Found" }),
        }
    }

    /// 405 for a route that exists with another method, in FastAPI's shape.
    pub fn wrong_method() -> Self {
        ApiError {
            status: StatusCode::METHOD_NOT_ALLOWED,
            body: json!({ "detail": "Method Not Allowed" }),
        }
    }

    /// 500: the server failed (logged on stderr).
    pub fn internal(what: impl std::fmt::Display) -> Self {
        eprintln!("weave serve: internal error: {what}");
        Self::reason(StatusCode::INTERNAL_SERVER_ERROR, what)
    }
}

impl From<WeaveError> for ApiError {
    fn from(e: WeaveError) -> Self {
        let status = match &e {
            WeaveError::NotFound { .. } => StatusCode::NOT_FOUND,
            WeaveError::InvalidQuery(_)
            | WeaveError::InvalidInput(_)
            | WeaveError::Serialization { .. } => StatusCode::BAD_REQUEST,
            WeaveError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            WeaveError::Unavailable { .. } | WeaveError::Shutdown => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => return ApiError::internal(e),
        };
        ApiError::reason(status, e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body)).into_response()
    }
}

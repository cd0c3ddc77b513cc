//! The one error type of weave-rs.
//!
//! Every fallible operation returns [`WeaveError`]. Variants are coarse on purpose: a user
//! matches on *what kind* of failure happened (not found, invalid query, invalid input, backend
//! failure) and reads the message for the details, which always name the offending part.

use std::fmt;

/// Result alias used throughout weave-rs.
pub type Result<T, E = WeaveError> = std::result::Result<T, E>;

/// Everything that can go wrong in weave-rs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WeaveError {
    /// The thing asked for does not exist (or was deleted).
    #[error("{kind} not found: {id}")]
    NotFound {
        /// What was looked up: `"call"`, `"object"`, …
        kind: &'static str,
        /// The id or ref that was not found.
        id: String,
    },
    /// A query expression, filter, sort or column list is malformed. The message names the
    /// offending part by its JSON path, e.g. `$expr.$and[1].$eq: expected 2 operands, got 3`.
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    /// An argument is invalid: a bad id, a malformed ref, inputs that are not an object, …
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The storage backend failed (SQLite error, I/O error, an unexpected answer, …).
    #[error("backend error: {0}")]
    Backend(String),
    /// The backend cannot be reached or is overloaded right now (connection refused, timeout,
    /// HTTP 429 or 5xx): worth retrying — not before `retry_after` when the server said so.
    #[error("backend unavailable: {message}")]
    Unavailable {
        /// What went wrong.
        message: String,
        /// The server's `Retry-After`, if it sent one.
        retry_after: Option<std::time::Duration>,
        /// Whether the request may have been applied although no answer came (the answer was
        /// cut, or timed out after the request was sent): check before sending it again.
        maybe_applied: bool,
    },
    /// The request was too large for the backend (HTTP 413): send less at a time.
    #[error("request too large: {0}")]
    TooLarge(String),
    /// A value could not be serialised to or deserialised from JSON.
    #[error("serialization error: {0}")]
    Serialization(#[from] serde_json::Error),
    /// The client has been shut down and cannot accept more work.
    #[error("the weave client is shut down")]
    Shutdown,
}

impl WeaveError {
    pub(crate) fn invalid_query(msg: impl fmt::Display) -> Self {
        WeaveError::InvalidQuery(msg.to_string())
    }
    pub(crate) fn invalid_input(msg: impl fmt::Display) -> Self {
        WeaveError::InvalidInput(msg.to_string())
    }
    pub(crate) fn backend(msg: impl fmt::Display) -> Self {
        WeaveError::Backend(msg.to_string())
    }
    /// True when this error says that the requested entity does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, WeaveError::NotFound { .. })
    }
}

impl From<rusqlite::Error> for WeaveError {
    fn from(e: rusqlite::Error) -> Self {
        WeaveError::Backend(format!("sqlite: {e}"))
    }
}

/// How a JSON value is described in error messages: `"null"`, `"a bool"`, `"a number"`,
/// `"a string"`, `"an array"`, `"an object"`.
pub(crate) fn json_kind(v: &serde_json::Value) -> &'static str {
    use serde_json::Value;
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

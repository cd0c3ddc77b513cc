//! The one error type of weave-rs.
//!
//! Every fallible operation returns [`WeaveError`]. Variants are coarse on purpose: a user
//! matches on *what kind* of failure happened (not found, invalid query, invalid input, backend
//! failure) and reads the message for the details, which always name the offending part.
//!
//! An error caused by another library's (SQLite, I/O, HTTP, JSON) keeps that error as its
//! [`source`](std::error::Error::source), boxed, so programs can inspect or downcast it; no
//! third-party error type appears in a variant. The message is self-contained all the same —
//! it already says why, in one line, because a plain `{e}` is what logs, the CLI and the
//! server's error bodies show. A reporter that also walks the chain (anyhow's `{:#}`) prints
//! the cause's text twice; we accept that rather than an `{e}` that never says why.
//!
//! `From<rusqlite::Error>` and `From<serde_json::Error>` stay: they are what `?` uses inside
//! the store and the client. Handling a `WeaveError` never needs either crate's types.

use std::fmt;

/// The cause of a [`WeaveError`], when it came from another library.
pub type ErrorSource = Box<dyn std::error::Error + Send + Sync + 'static>;

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
    #[error("backend error: {message}")]
    #[non_exhaustive]
    Backend {
        /// What went wrong, and why.
        message: String,
        /// The error that caused it, when it came from another library.
        #[source]
        source: Option<ErrorSource>,
    },
    /// The backend cannot be reached or is overloaded right now (connection refused, timeout,
    /// HTTP 429 or 5xx): worth retrying — not before `retry_after` when the server said so.
    #[error("backend unavailable: {message}")]
    #[non_exhaustive]
    Unavailable {
        /// What went wrong.
        message: String,
        /// The server's `Retry-After`, if it sent one.
        retry_after: Option<std::time::Duration>,
        /// Whether the request may have been applied although no answer came (the answer was
        /// cut, or timed out after the request was sent): check before sending it again.
        maybe_applied: bool,
        /// The error that caused it (a connection refused, a timeout), if any.
        #[source]
        source: Option<ErrorSource>,
    },
    /// The request was too large for the backend (HTTP 413): send less at a time.
    #[error("request too large: {0}")]
    TooLarge(String),
    /// A value could not be serialised to or deserialised from JSON.
    #[error("serialization error: {message}")]
    #[non_exhaustive]
    Serialization {
        /// What could not be read or written, and why.
        message: String,
        /// The JSON library's error.
        #[source]
        source: Option<ErrorSource>,
    },
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
    /// A [`WeaveError::Backend`] saying `message`.
    pub fn backend(message: impl fmt::Display) -> Self {
        WeaveError::Backend {
            message: message.to_string(),
            source: None,
        }
    }

    /// A [`WeaveError::Backend`] saying `message`, caused by `source`.
    pub fn backend_caused_by(
        message: impl fmt::Display,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        WeaveError::Backend {
            message: message.to_string(),
            source: Some(Box::new(source)),
        }
    }

    /// A [`WeaveError::Unavailable`] saying `message` (no `Retry-After`, nothing applied).
    pub fn unavailable(message: impl fmt::Display) -> Self {
        WeaveError::Unavailable {
            message: message.to_string(),
            retry_after: None,
            maybe_applied: false,
            source: None,
        }
    }
    /// True when this error says that the requested entity does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, WeaveError::NotFound { .. })
    }
}

impl From<rusqlite::Error> for WeaveError {
    fn from(e: rusqlite::Error) -> Self {
        WeaveError::backend_caused_by(format!("sqlite: {e}"), e)
    }
}

impl From<serde_json::Error> for WeaveError {
    fn from(e: serde_json::Error) -> Self {
        WeaveError::Serialization {
            message: e.to_string(),
            source: Some(Box::new(e)),
        }
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

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::WeaveError;

    #[test]
    fn causes_are_kept_as_sources_and_said_in_the_message() {
        let e: WeaveError = serde_json::from_str::<u8>("x").unwrap_err().into();
        assert!(matches!(e, WeaveError::Serialization { .. }));
        assert!(
            e.to_string()
                .starts_with("serialization error: expected value"),
            "{e}"
        );
        let cause = e.source().expect("the JSON error is kept");
        assert!(cause.downcast_ref::<serde_json::Error>().is_some());

        // A store file that cannot be opened: SQLite's error is the source.
        let dir = std::env::temp_dir().join(format!("weave-err-{}", crate::generate_id()));
        std::fs::write(&dir, b"a file, not a folder").unwrap();
        let e = crate::SqliteServer::open(dir.join("weave.sqlite")).unwrap_err();
        std::fs::remove_file(&dir).unwrap();
        let named = dir.display().to_string();
        assert!(matches!(e, WeaveError::Backend { .. }), "{e:?}");
        let cause = e.source().expect("the cause is kept");
        assert!(
            cause.downcast_ref::<rusqlite::Error>().is_some()
                || cause.downcast_ref::<std::io::Error>().is_some(),
            "{cause:?}"
        );
        assert!(e.to_string().contains(&named), "{e}");
    }
}

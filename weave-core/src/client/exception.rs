//! Exceptions in the Python SDK's JSON form: `{"type", "message", "traceback"?}`.

use serde::{Deserialize, Serialize};

/// An error recorded on a failed call.
///
/// Serialised (as a JSON *string* in the call's `exception` field) exactly like the Python
/// SDK: `{"type": "ValueError", "message": "...", "traceback": [...]}`.
///
/// # Examples
///
/// ```
/// use weave_core::Exception;
/// let err = "x".parse::<i32>().unwrap_err();
/// let exc = Exception::from_error(&err);
/// assert_eq!(exc.r#type, "ParseIntError");
/// assert_eq!(exc.message, "invalid digit found in string");
/// assert_eq!(exc.to_json_string(), r#"{"type":"ParseIntError","message":"invalid digit found in string"}"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exception {
    /// The error's type name (the last path segment of the Rust type, as Python uses the class
    /// name).
    pub r#type: String,
    /// The error's message; for an error with sources, followed by its source chain.
    pub message: String,
    /// Stack frames, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceback: Option<Vec<StackFrame>>,
}

/// One traceback frame, as the Python SDK records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackFrame {
    /// Source file.
    pub filename: String,
    /// Line number.
    pub line_number: Option<u32>,
    /// Function name.
    pub function_name: String,
    /// The source line.
    pub text: Option<String>,
}

impl Exception {
    /// An exception of type `type_name` with `message`.
    pub fn new(type_name: impl Into<String>, message: impl Into<String>) -> Self {
        Exception {
            r#type: type_name.into(),
            message: message.into(),
            traceback: None,
        }
    }

    /// An exception from any error: its type name, its message and its source chain, written
    /// as `message\n\nCaused by:\n    0: source\n    1: source's source`.
    pub fn from_error<E: std::error::Error + ?Sized>(error: &E) -> Self {
        let mut message = error.to_string();
        let mut source = error.source();
        let mut i = 0;
        while let Some(s) = source {
            if i == 0 {
                message.push_str("\n\nCaused by:");
            }
            message.push_str(&format!("\n    {i}: {s}"));
            source = s.source();
            i += 1;
        }
        Exception {
            r#type: short_type_name(std::any::type_name::<E>()),
            message,
            traceback: None,
        }
    }

    /// The JSON string stored in a call's `exception` field.
    pub fn to_json_string(&self) -> String {
        serde_json::to_string(self)
            .unwrap_or_else(|_| format!("{{\"type\":\"Error\",\"message\":{:?}}}", self.message))
    }

    /// Reads a call's `exception` field back: the Python SDK's JSON form, or any other
    /// string (the JS SDK sends a plain message) as the message of an `Error`.
    pub fn parse(s: &str) -> Self {
        serde_json::from_str(s).unwrap_or_else(|_| Exception::new("Error", s))
    }
}

/// `core::num::error::ParseIntError` → `ParseIntError`; `dyn core::error::Error` → `Error`;
/// generics are dropped.
pub(crate) fn short_type_name(full: &str) -> String {
    let base = full
        .split('<')
        .next()
        .unwrap_or(full)
        .trim_start_matches("dyn ");
    let base = base.split(" + ").next().unwrap_or(base);
    base.rsplit("::").next().unwrap_or(base).to_string()
}

impl std::fmt::Display for Exception {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.r#type, self.message)
    }
}

/// Anything a call can fail with: an [`Exception`], a `String` message, or a reference to any
/// `std::error::Error` (source chain included).
pub trait IntoException {
    /// The exception.
    fn into_exception(self) -> Exception;
}

impl IntoException for Exception {
    fn into_exception(self) -> Exception {
        self
    }
}

impl IntoException for String {
    fn into_exception(self) -> Exception {
        Exception::new("Error", self)
    }
}

impl<E: std::error::Error + ?Sized> IntoException for &E {
    fn into_exception(self) -> Exception {
        Exception::from_error(self)
    }
}

impl From<&str> for Exception {
    fn from(message: &str) -> Self {
        Exception::new("Error", message)
    }
}

impl From<String> for Exception {
    fn from(message: String) -> Self {
        Exception::new("Error", message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(std::io::Error);
    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("llm request failed")
        }
    }
    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn source_chain_and_type() {
        let e = Outer(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "timed out",
        ));
        let x = Exception::from_error(&e);
        assert_eq!(x.r#type, "Outer");
        assert_eq!(
            x.message,
            "llm request failed\n\nCaused by:\n    0: timed out"
        );
        let dynamic: &dyn std::error::Error = &e;
        assert_eq!(dynamic.into_exception().r#type, "Error");
        assert_eq!(Exception::parse(&x.to_json_string()), x);
        assert_eq!(
            Exception::parse("plain js message").message,
            "plain js message"
        );
    }
}

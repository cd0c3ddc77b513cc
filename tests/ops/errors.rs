//! Ops returning `Result`: `Ok` is the output; `Err` fails the call with an exception built
//! from `std::error::Error` (with its source chain), else `Display`, else `Debug`, else a
//! placeholder — and the error reaches the caller unchanged.

use std::fmt;

use serde_json::{json, Value};
use weave::TraceStatus;

use crate::common::{current_thread_rt, exception, TestStore};

#[weave::op]
fn parse_number(text: &str) -> Result<i64, std::num::ParseIntError> {
    text.trim().parse()
}

#[test]
fn ok_is_the_output() {
    let s = TestStore::new();
    let r = s.under_root(|| parse_number(" 42 "));
    assert_eq!(r.out, Ok(42));
    let c = r.only_child();
    assert_eq!(c.output(), json!(42));
    assert!(c.exception().is_none());
    assert_eq!(c.status(), TraceStatus::Success);
}

#[test]
fn err_fails_the_call_with_type_and_message_and_reaches_the_caller_unchanged() {
    let s = TestStore::new();
    let r = s.under_root(|| parse_number("forty-two"));
    let expected = "forty-two".parse::<i64>().unwrap_err();
    assert_eq!(r.out, Err(expected));
    let c = r.only_child();
    assert_eq!(c.status(), TraceStatus::Error);
    assert_eq!(c.output(), Value::Null);
    assert!(c.ended_at().is_some());
    assert_eq!(
        exception(c),
        (
            "ParseIntError".to_string(),
            "invalid digit found in string".to_string()
        )
    );
    // The stored field is the Python SDK's JSON string.
    let raw: Value = serde_json::from_str(&c.exception().unwrap()).unwrap();
    assert_eq!(
        raw,
        json!({"type": "ParseIntError", "message": "invalid digit found in string"})
    );
}

/// A std error with a source chain two deep.
#[derive(Debug)]
struct ToolError {
    tool: &'static str,
    source: RequestError,
}
impl fmt::Display for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tool {} failed", self.tool)
    }
}
impl std::error::Error for ToolError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

#[derive(Debug)]
struct RequestError(std::io::Error);
impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("request to the weather API failed")
    }
}
impl std::error::Error for RequestError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

#[weave::op]
fn get_weather(city: &str) -> Result<String, ToolError> {
    Err(ToolError {
        tool: "weather",
        source: RequestError(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("connect to {city}.example timed out"),
        )),
    })
}

#[test]
fn std_error_message_carries_the_source_chain() {
    let s = TestStore::new();
    let r = s.under_root(|| get_weather("paris"));
    let err = r.out.as_ref().unwrap_err();
    assert_eq!(err.tool, "weather");
    assert_eq!(err.source.0.kind(), std::io::ErrorKind::TimedOut);
    let c = r.only_child();
    assert_eq!(c.status(), TraceStatus::Error);
    assert_eq!(
        exception(c),
        (
            "ToolError".to_string(),
            "tool weather failed\n\nCaused by:\n    0: request to the weather API failed\n    1: connect to paris.example timed out"
                .to_string()
        )
    );
}

#[weave::op]
fn read_config(path: &str) -> std::io::Result<String> {
    std::fs::read_to_string(path)
}

#[test]
fn io_result_alias_is_a_result_too() {
    let s = TestStore::new();
    let missing = s.dir.path().join("missing.toml");
    let missing = missing.to_str().unwrap().to_string();
    let r = s.under_root(|| read_config(&missing));
    assert_eq!(
        r.out.as_ref().unwrap_err().kind(),
        std::io::ErrorKind::NotFound
    );
    let c = r.only_child();
    assert_eq!(c.status(), TraceStatus::Error);
    let (ty, msg) = exception(c);
    assert_eq!(ty, "Error"); // std::io::Error
    assert_eq!(msg, r.out.as_ref().unwrap_err().to_string());
}

/// Display only: no Debug, not a std error.
struct Refusal {
    reason: String,
}
impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() {
            write!(f, "model refused: {} (alternate)", self.reason)
        } else {
            write!(f, "model refused: {}", self.reason)
        }
    }
}

#[weave::op]
fn complete(prompt: &str) -> Result<String, Refusal> {
    Err(Refusal {
        reason: format!("unsafe prompt {prompt:?}"),
    })
}

#[test]
fn display_only_error_is_recorded_with_its_alternate_display() {
    let s = TestStore::new();
    let r = s.under_root(|| complete("x"));
    let Err(e) = &r.out else {
        panic!("expected an error")
    };
    assert_eq!(e.reason, "unsafe prompt \"x\"");
    let c = r.only_child();
    assert_eq!(c.status(), TraceStatus::Error);
    assert_eq!(
        exception(c),
        (
            "Refusal".to_string(),
            "model refused: unsafe prompt \"x\" (alternate)".to_string()
        )
    );
}

/// Debug only.
#[derive(Debug, PartialEq)]
enum RetryError {
    Exhausted { attempts: u32 },
}

#[weave::op]
fn retry(attempts: u32) -> Result<(), RetryError> {
    Err(RetryError::Exhausted { attempts })
}

#[test]
fn debug_only_error_is_recorded_with_its_debug_text() {
    let s = TestStore::new();
    let r = s.under_root(|| retry(3));
    assert_eq!(r.out, Err(RetryError::Exhausted { attempts: 3 }));
    let c = r.only_child();
    assert_eq!(c.status(), TraceStatus::Error);
    assert_eq!(
        exception(c),
        (
            "RetryError".to_string(),
            "Exhausted { attempts: 3 }".to_string()
        )
    );
}

#[weave::op]
fn validate(age: i32) -> Result<u32, String> {
    u32::try_from(age).map_err(|_| format!("age must be positive, got {age}"))
}

#[test]
fn string_error_is_recorded_as_its_text() {
    let s = TestStore::new();
    let r = s.under_root(|| (validate(30), validate(-1)));
    assert_eq!(
        r.out,
        (Ok(30), Err("age must be positive, got -1".to_string()))
    );
    let [ok, err] = &r.children[..] else {
        panic!("expected 2 children, got {:?}", r.children)
    };
    assert_eq!(ok.output(), json!(30));
    assert_eq!(ok.status(), TraceStatus::Success);
    assert_eq!(err.status(), TraceStatus::Error);
    assert_eq!(
        exception(err),
        (
            "String".to_string(),
            "age must be positive, got -1".to_string()
        )
    );
}

/// Neither Display nor Debug.
struct Opaque(u8);

#[weave::op]
fn opaque_failure(code: u8) -> Result<u8, Opaque> {
    Err(Opaque(code))
}

#[test]
fn error_with_no_formatting_is_a_placeholder_naming_the_type() {
    let s = TestStore::new();
    let r = s.under_root(|| opaque_failure(9));
    assert!(matches!(r.out, Err(Opaque(9))));
    let c = r.only_child();
    assert_eq!(c.status(), TraceStatus::Error);
    let (ty, msg) = exception(c);
    assert_eq!(ty, "Opaque");
    assert!(msg.starts_with('<') && msg.ends_with("::Opaque>"), "{msg}");
}

#[weave::op]
async fn fetch_page(url: String) -> Result<String, ToolError> {
    tokio::task::yield_now().await;
    Err(ToolError {
        tool: "browser",
        source: RequestError(std::io::Error::other(format!("{url} unreachable"))),
    })
}

#[test]
fn async_op_err_fails_the_call() {
    let s = TestStore::new();
    let r = current_thread_rt().block_on(s.under_root_async(fetch_page("http://x".into())));
    assert_eq!(r.out.as_ref().unwrap_err().tool, "browser");
    let c = r.only_child();
    assert_eq!(c.status(), TraceStatus::Error);
    assert_eq!(
        exception(c),
        (
            "ToolError".to_string(),
            "tool browser failed\n\nCaused by:\n    0: request to the weather API failed\n    1: http://x unreachable"
                .to_string()
        )
    );
}

#[weave::op]
fn agent(city: &str) -> String {
    match get_weather(city) {
        Ok(w) => w,
        Err(_) => "no weather today".to_string(),
    }
}

#[test]
fn parent_that_handles_a_failed_child_is_descendant_error() {
    let s = TestStore::new();
    let r = s.under_root(|| agent("oslo"));
    assert_eq!(r.out, "no weather today");
    let a = r.only_child();
    assert_eq!(a.output(), json!("no weather today"));
    assert!(a.exception().is_none());
    assert_eq!(a.status(), TraceStatus::DescendantError);
    let kids = s.children(a.id());
    assert_eq!(kids.len(), 1);
    assert_eq!(kids[0].status(), TraceStatus::Error);
    // The root above both also sees the error below it.
    assert_eq!(r.root.status(), TraceStatus::DescendantError);
}

#[weave::op]
fn save_report(path: &str) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "read-only disk");
    let _ = path;
    Err(Box::new(ToolError {
        tool: "writer",
        source: RequestError(io),
    }))
}

#[test]
fn a_boxed_dyn_error_keeps_its_message_and_source_chain() {
    let s = TestStore::new();
    let r = s.under_root(|| save_report("/tmp/r.txt"));
    assert_eq!(
        r.out.as_ref().unwrap_err().to_string(),
        "tool writer failed"
    );
    let (ty, message) = exception(r.only_child());
    assert_eq!(ty, "Error");
    assert_eq!(
        message,
        "tool writer failed\n\nCaused by:\n    0: request to the weather API failed\n    1: read-only disk"
    );
}

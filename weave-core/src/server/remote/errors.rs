//! Errors: what a failed request means as a [`WeaveError`] — the status of a non-2xx answer
//! (and on which route), the server's reason from the body, a `Retry-After`, and a request
//! that got no complete answer. The retries (here and in the background writer) follow from
//! the kind chosen here.

use std::time::Duration;

use serde_json::Value;

use crate::error::WeaveError;

/// The error a non-2xx answer means: a missing resource is `NotFound`; 413 `TooLarge`;
/// 408, 429, 502–504 [`WeaveError::Unavailable`] (retried until the server is back); other
/// 5xx [`WeaveError::Backend`]; a request refused on a query route (400/422 on
/// [`QUERY_ROUTES`]) [`WeaveError::InvalidQuery`], as the embedded store reports a bad query;
/// the rest [`WeaveError::InvalidInput`] naming the server's reason.
pub(super) fn status_error(
    path: &str,
    status: u16,
    retry_after: Option<Duration>,
    body: &[u8],
) -> WeaveError {
    let reason = error_message(body);
    match status {
        404 => WeaveError::NotFound {
            kind: kind_of_route(path),
            id: reason,
        },
        413 => WeaveError::TooLarge(format!("{path}: HTTP 413: {reason}")),
        // Overloaded, restarting or behind a gateway that cannot reach it: retry until it is
        // back.
        408 | 429 | 502 | 503 | 504 => WeaveError::Unavailable {
            message: format!("{path}: HTTP {status}: {reason}"),
            retry_after,
            // A gateway timeout may come after the server did the work.
            maybe_applied: status == 504,
            source: None,
        },
        // What this server does not implement is not worth retrying.
        501 => WeaveError::InvalidInput(format!("{path}: HTTP 501: {reason}")),
        // The server answered and failed: retried a few times, not forever (a request it
        // cannot process would otherwise block every write behind it).
        500..=599 => WeaveError::backend(format!("{path}: HTTP {status}: {reason}")),
        400 | 422 if QUERY_ROUTES.contains(&path) => {
            WeaveError::InvalidQuery(format!("{path}: HTTP {status}: {reason}"))
        }
        _ => WeaveError::InvalidInput(format!("{path}: HTTP {status}: {reason}")),
    }
}

/// The routes whose requests are queries (filters, sorts, fields): what they refuse is the
/// query.
const QUERY_ROUTES: &[&str] = &[
    "/calls/stream_query",
    "/calls/query_stats",
    "/feedback/query",
    "/objs/query",
    "/cost/query",
    "/table/query",
    "/table/query_stats",
];

/// A `Retry-After` in seconds (the HTTP-date form is rare from API servers; ignored).
pub(super) fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    let v = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?;
    let secs = v.trim().parse::<f64>().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(3600.0)))
}

fn kind_of_route(path: &str) -> &'static str {
    match path.trim_start_matches('/').split('/').next().unwrap_or("") {
        "obj" | "objs" => "object",
        "table" => "table",
        "file" | "files" => "file",
        "refs" => "ref",
        "call" | "calls" => "call",
        "feedback" => "feedback",
        "cost" => "cost",
        _ => "resource",
    }
}

/// The message of an error body: `message | error | detail | reason`, as the Python client
/// builds it, else the body's text.
fn error_message(body: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        for key in ["message", "error", "detail", "reason"] {
            match v.get(key) {
                Some(Value::String(s)) => return s.clone(),
                Some(Value::Null) | None => {}
                Some(other) => return other.to_string(),
            }
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        "no details".to_string()
    } else {
        text.chars().take(2000).collect()
    }
}

/// A request that got no complete answer (refused, reset, timed out, cut mid-body): the
/// server may be down or restarting, so it is worth retrying.
pub(super) fn transport_error(path: &str, e: reqwest::Error) -> WeaveError {
    let mut message = format!("{path}: {e}");
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        message.push_str(&format!(": {s}"));
        source = s.source();
    }
    WeaveError::Unavailable {
        message,
        retry_after: None,
        // A refused connection sent nothing; anything later may have reached the server.
        maybe_applied: !e.is_connect(),
        source: Some(Box::new(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_give_the_servers_reason() {
        assert_eq!(
            error_message(br#"{"reason": "Obj x:latest not found"}"#),
            "Obj x:latest not found"
        );
        assert_eq!(
            error_message(br#"{"detail": [{"msg": "bad"}]}"#),
            r#"[{"msg":"bad"}]"#
        );
        assert_eq!(error_message(b"plain text"), "plain text");
        assert!(matches!(
            status_error("/obj/read", 404, None, b"{}"),
            WeaveError::NotFound { kind: "object", .. }
        ));
        assert!(matches!(
            status_error("/call/upsert_batch", 503, None, b""),
            WeaveError::Unavailable { .. }
        ));
        assert!(matches!(
            status_error("/call/upsert_batch", 500, None, b""),
            WeaveError::Backend { .. }
        ));
        assert!(matches!(
            status_error("/call/upsert_batch", 429, Some(Duration::from_secs(2)), b""),
            WeaveError::Unavailable { retry_after: Some(d), .. } if d == Duration::from_secs(2)
        ));
        assert!(matches!(
            status_error("/call/upsert_batch", 413, None, b""),
            WeaveError::TooLarge(_)
        ));
        assert!(matches!(
            status_error("/call/update", 400, None, b""),
            WeaveError::InvalidInput(_)
        ));
    }
}

//! Authentication: with a key, every route but `/health` needs it.
//!
//! The Weave SDKs send their W&B API key as HTTP Basic `api:<key>`, so that is what the
//! server checks: the password must be the key (the user name is not checked: the Python
//! client sends `api`, curl users may send anything). `Authorization: Bearer <key>` and the
//! `wandb-api-key: <key>` header (which OpenTelemetry exporters are told to send) are accepted
//! too. Keys are compared in constant time.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;

use crate::{ApiError, AppState};

/// The middleware: passes the request on when the server has no key, the route is
/// `/health`, or the request carries the key; else answers 401.
pub async fn require_key(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(key) = state.options.api_key.as_deref() else {
        return next.run(req).await;
    };
    let path = req.uri().path();
    if path == "/health" || path == "/traces/health" {
        return next.run(req).await;
    }
    match presented_key(req.headers()) {
        Some(given) if constant_time_eq(given.as_bytes(), key.as_bytes()) => next.run(req).await,
        Some(_) => unauthorized("the API key is not this server's"),
        None => unauthorized(
            "this server needs an API key: HTTP Basic api:<key> (WANDB_API_KEY for the Weave SDKs)",
        ),
    }
}

fn unauthorized(reason: &str) -> Response {
    let mut resp = ApiError::reason(StatusCode::UNAUTHORIZED, reason).into_response();
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Basic realm=\"weave\""),
    );
    resp
}

/// The key a request presents, if any.
pub fn presented_key(headers: &HeaderMap) -> Option<String> {
    if let Some(v) = headers.get(header::AUTHORIZATION) {
        let v = v.to_str().ok()?.trim();
        let (scheme, rest) = v.split_once(' ')?;
        if scheme.eq_ignore_ascii_case("basic") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(rest.trim())
                .ok()?;
            let text = String::from_utf8(decoded).ok()?;
            let (_user, password) = text.split_once(':')?;
            return Some(password.to_string());
        }
        if scheme.eq_ignore_ascii_case("bearer") {
            return Some(rest.trim().to_string());
        }
        return None;
    }
    headers
        .get("wandb-api-key")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_string())
}

/// Equality that takes the same time whatever the first differing byte.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(name: &'static str, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, value.parse().unwrap());
        h
    }

    #[test]
    fn keys_are_read_from_basic_bearer_and_the_wandb_header() {
        let basic = base64::engine::general_purpose::STANDARD.encode("api:s3cret");
        assert_eq!(
            presented_key(&headers("authorization", &format!("Basic {basic}"))).as_deref(),
            Some("s3cret")
        );
        assert_eq!(
            presented_key(&headers("authorization", "Bearer tok")).as_deref(),
            Some("tok")
        );
        assert_eq!(
            presented_key(&headers("wandb-api-key", "k")).as_deref(),
            Some("k")
        );
        assert_eq!(presented_key(&headers("authorization", "Basic !!!")), None);
        assert_eq!(presented_key(&HeaderMap::new()), None);
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}

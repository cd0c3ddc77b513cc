//! Authentication: with a key, every route but `/health` needs it.
//!
//! The Weave SDKs send their W&B API key as HTTP Basic `api:<key>`, so that is what the
//! server checks: the password must be the key (the user name is not checked: the Python
//! client sends `api`, curl users may send anything). `Authorization: Bearer <key>` and the
//! `wandb-api-key: <key>` header (which OpenTelemetry exporters are told to send) are accepted
//! too. Keys are compared in constant time.
//!
//! Browsers get two more checks, since the server also serves the viewer's pages and any web
//! page a user opens can send requests to `127.0.0.1`: a request whose `Origin` is not the
//! server's own (another site's script) is refused, and a server without a key (which only
//! listens on loopback) refuses a `Host` that is not a loopback name — a site whose name was
//! made to resolve to `127.0.0.1` (DNS rebinding) cannot read the store either. The SDKs and
//! `curl` send no `Origin` and name the server as they were told to: neither check concerns
//! them.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;

use crate::{ApiError, AppState};

/// The middleware: passes the request on when the server has no key, the route is
/// `/health`, or the request carries the key; else answers 401.
pub async fn require_key(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if let Some(why) = foreign_browser_request(req.headers(), state.options.api_key.is_some()) {
        return ApiError::reason(StatusCode::FORBIDDEN, why).into_response();
    }
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

/// Why a request from a browser must be refused (see the module docs), if it must.
pub fn foreign_browser_request(headers: &HeaderMap, has_key: bool) -> Option<&'static str> {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    if !has_key {
        if let Some(host) = host {
            if !is_loopback_host(host) {
                return Some("this server answers only to a loopback name (127.0.0.1, localhost) without an API key");
            }
        }
    }
    let origin = headers.get(header::ORIGIN)?.to_str().ok()?.trim();
    let authority = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    match (authority, host) {
        (Some(a), Some(h)) if a.eq_ignore_ascii_case(h) => None,
        _ => Some("requests from other sites' pages are refused"),
    }
}

/// Whether `host` (a `Host` header: name or address, with an optional port) is loopback.
fn is_loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(n, port)| {
            if port.chars().all(|c| c.is_ascii_digit()) {
                n
            } else {
                host
            }
        })
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
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
    fn other_sites_and_rebound_names_are_refused() {
        let req = |pairs: &[(&'static str, &str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, v.parse().unwrap());
            }
            h
        };
        // The SDKs and curl: no Origin, a loopback Host.
        for host in [
            "127.0.0.1:6346",
            "localhost:6346",
            "[::1]:6346",
            "127.0.0.2",
            "LOCALHOST",
        ] {
            assert_eq!(
                foreign_browser_request(&req(&[("host", host)]), false),
                None,
                "{host}"
            );
        }
        // The viewer's own page.
        let own = req(&[
            ("host", "127.0.0.1:6346"),
            ("origin", "http://127.0.0.1:6346"),
        ]);
        assert_eq!(foreign_browser_request(&own, false), None);
        // Another site's script, and a name rebound to 127.0.0.1.
        let other = req(&[
            ("host", "127.0.0.1:6346"),
            ("origin", "https://evil.example"),
        ]);
        assert!(foreign_browser_request(&other, false).is_some());
        assert!(foreign_browser_request(&other, true).is_some());
        let rebound = req(&[("host", "evil.example:6346")]);
        assert!(foreign_browser_request(&rebound, false).is_some());
        // With a key the server may be reached by any name (the key protects it).
        assert_eq!(foreign_browser_request(&rebound, true), None);
        let null_origin = req(&[("host", "127.0.0.1:6346"), ("origin", "null")]);
        assert!(foreign_browser_request(&null_origin, false).is_some());
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

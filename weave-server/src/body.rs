//! Reading request bodies.
//!
//! A body is read whole, up to the server's limit: a `Content-Length` over it is refused
//! before anything is read, and a body streamed without one is cut off as soon as it passes
//! the limit, so no request can make the server hold more than the limit per request. The
//! content type is not checked: the Python client often sends none, and FastAPI parses JSON
//! regardless.
//!
//! JSON is parsed with the path of the first failing field kept, for FastAPI's 422 answer
//! (`loc: ["body", "start", "started_at"]`). serde_json refuses nesting deeper than 128
//! levels and invalid UTF-8, so neither can exhaust the stack or reach the store.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_LENGTH;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{ApiError, AppState};

/// A request body, read whole within the server's limit.
#[derive(Debug, Clone)]
pub struct RawBody(pub Bytes);

impl FromRequest<AppState> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        read_limited(req, state.options.max_body_bytes)
            .await
            .map(RawBody)
    }
}

/// How much of a body over the limit is read and thrown away before the 413 is sent: a
/// client that is still writing when the server answers and closes gets a broken pipe
/// instead of the answer (and cannot learn to send less). Past this, the connection is
/// closed without waiting.
pub const DRAIN_BYTES: usize = 64 * 1024 * 1024;

/// Reads `req`'s body, refusing more than `limit` bytes with 413. Nothing over the limit is
/// kept: the rest of a body that is too large is read and dropped, up to [`DRAIN_BYTES`].
pub async fn read_limited(req: Request, limit: usize) -> Result<Bytes, ApiError> {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let mut stream = req.into_body().into_data_stream();
    if declared.is_some_and(|n| n > limit as u64) {
        if declared.is_some_and(|n| n <= DRAIN_BYTES as u64) {
            drain(&mut stream, 0).await;
        }
        return Err(ApiError::too_large());
    }
    let mut buf = Vec::with_capacity(declared.map_or(0, |n| n as usize));
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request(format!("reading the body: {e}")))?;
        if buf.len() + chunk.len() > limit {
            let seen = buf.len() + chunk.len();
            drop(buf);
            drain(&mut stream, seen).await;
            return Err(ApiError::too_large());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(buf))
}

/// How long the rest of a body over the limit is read at most (a client that stops sending
/// must not hold the request open).
pub const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(5);

/// Reads and drops the rest of a body, `seen` bytes of which were read already, up to
/// [`DRAIN_BYTES`] in all and for at most [`DRAIN_TIME`].
async fn drain(stream: &mut axum::body::BodyDataStream, mut seen: usize) {
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        while seen <= DRAIN_BYTES {
            match stream.next().await {
                Some(Ok(chunk)) => seen += chunk.len(),
                _ => return,
            }
        }
    })
    .await;
}

/// Parses `bytes` as JSON into `T`, or a 422 naming the failing field.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::unprocessable(
            vec![Value::from("body")],
            "Field required",
            "missing",
        ));
    }
    // The common case, a valid body, is parsed without tracking the path (tracking costs
    // about a third of parsing); only a body that fails is parsed again to name the field.
    if let Ok(v) = serde_json::from_slice::<T>(bytes) {
        return Ok(v);
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed: Result<T, _> = serde_path_to_error::deserialize(&mut de);
    let value = parsed.map_err(|e| {
        let mut loc = vec![Value::from("body")];
        for seg in e.path().iter() {
            use serde_path_to_error::Segment;
            match seg {
                Segment::Seq { index } => loc.push(Value::from(*index)),
                Segment::Map { key } | Segment::Enum { variant: key } => {
                    loc.push(Value::from(key.as_str()))
                }
                Segment::Unknown => {}
            }
        }
        let inner = e.into_inner();
        let kind = match inner.classify() {
            serde_json::error::Category::Data => "value_error",
            _ => "json_invalid",
        };
        ApiError::unprocessable(loc, inner, kind)
    })?;
    de.end()
        .map_err(|e| ApiError::unprocessable(vec![Value::from("body")], e, "json_invalid"))?;
    Ok(value)
}

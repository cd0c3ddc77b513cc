//! `POST /otel/v1/traces`: OpenTelemetry traces (OTLP/HTTP), stored as Weave calls.
//!
//! Any OpenTelemetry SDK or collector can export here: point its OTLP/HTTP trace exporter at
//! `http://127.0.0.1:6346/otel/v1/traces` with the header `project_id: entity/project`. Each
//! span becomes one call, mapped as the Weave server maps it (the `weave` package's
//! `trace_server/opentelemetry/`: `python_spans.py` `Span.to_call`, `attributes.py`,
//! `constants.py`, `helpers.py`, and `sqlite_trace_server.py` `otel_export`):
//!
//! | span | call |
//! |---|---|
//! | span id, trace id, parent span id (hex) | `id`, `trace_id`, `parent_id` |
//! | start and end time | `started_at`, `ended_at` (to the microsecond, as the Weave server rounds them) |
//! | name | `op_name` (shortened past 128 characters) |
//! | `gen_ai.prompt`, `input.value`, `input`, … ([`INPUT_KEYS`](attributes::INPUT_KEYS)) | `inputs`: `{key: value}`, or the object itself for `input`/`inputs` |
//! | `gen_ai.completion`, `output.value`, `output`, … ([`OUTPUT_KEYS`](attributes::OUTPUT_KEYS)) | `output`: `{key: value}`, or the value itself for `output`/`outputs` |
//! | `gen_ai.usage.*`, `llm.token_count.*`, … ([`USAGE_KEYS`](attributes::USAGE_KEYS)) | `summary.usage[model or "usage"]` |
//! | `gen_ai.request.model`, `llm.system`, … ([`ATTRIBUTE_KEYS`](attributes::ATTRIBUTE_KEYS)) | `attributes` (`model`, `provider`, …); with none of these, inputs, outputs or usage, every attribute |
//! | `wandb.attributes` | merged into `attributes` |
//! | `wandb.display_name`, `wandb.thread_id` / `gen_ai.conversation.id`, `wandb.is_turn` | `display_name`, `thread_id`, `turn_id` (the span id) |
//! | status ERROR | `exception`: the status message (`"ERROR"` when it has none) |
//! | the whole span | `attributes.otel_span` when read (the dump `Span.as_dict` makes) |
//!
//! Attributes are expanded from dotted keys into a tree first ([`attributes`]), and the
//! conventions read from the tree by path.
//!
//! The body is OTLP protobuf (`application/x-protobuf`, the default) or OTLP/JSON
//! (`application/json`, hex ids; see [`json`](mod@json)), optionally gzip- or deflate-compressed
//! (`Content-Encoding`); the answer is an `ExportTraceServiceResponse` in the same encoding.
//! The project is the `project_id` header (`entity/project`, as the Weave server reads it),
//! else the resource attributes `wandb.entity` and `wandb.project`; a request with spans and
//! no project is a 400. A body that is not an export request is a 400. A span the store cannot
//! hold (bad ids, attributes that are not a tree, …) does not fail the others: it is counted
//! in `partial_success.rejected_spans` with the reason in `error_message`.

pub mod attributes;
pub mod json;
pub mod span;

use std::io::Read;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use prost::Message;
use serde_json::json;
use weave_core::schema::{CallBatchItem, CallCreateBatchReq, CallEndReq, CallStartReq};
use weave_core::TraceServer;

use crate::body::RawBody;
use crate::routes::blocking;
use crate::{ApiError, AppState};

/// At most this many rejected spans are described in `error_message`.
pub const MAX_ERROR_MESSAGES: usize = 20;

/// The encoding of a request, and so of its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `application/x-protobuf`.
    Protobuf,
    /// `application/json` (OTLP/JSON).
    Json,
}

impl Encoding {
    /// The encoding a request's `Content-Type` names; without one, JSON when the body starts
    /// with `{`, else protobuf (OTLP/HTTP's default).
    pub fn of(headers: &HeaderMap, body: &[u8]) -> Encoding {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        if content_type.contains("json") {
            Encoding::Json
        } else if content_type.contains("protobuf") {
            Encoding::Protobuf
        } else if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
            Encoding::Json
        } else {
            Encoding::Protobuf
        }
    }
}

/// What an export did: spans stored, and the ones refused with why.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The calls written.
    pub stored: usize,
    /// How many spans were refused.
    pub rejected: usize,
    /// Why, one line per refused span (the first [`MAX_ERROR_MESSAGES`]).
    pub errors: Vec<String>,
}

impl Outcome {
    fn reject(&mut self, what: String) {
        self.rejected += 1;
        if self.errors.len() <= MAX_ERROR_MESSAGES {
            self.errors.push(what);
        }
    }

    /// The OTLP answer: `partial_success` only when spans were refused.
    pub fn response(&self) -> ExportTraceServiceResponse {
        ExportTraceServiceResponse {
            partial_success: (self.rejected > 0).then(|| {
                let mut message =
                    self.errors[..self.errors.len().min(MAX_ERROR_MESSAGES)].join("; ");
                if self.errors.len() > MAX_ERROR_MESSAGES {
                    message.push_str("; ...");
                }
                ExportTracePartialSuccess {
                    rejected_spans: self.rejected as i64,
                    error_message: message,
                }
            }),
        }
    }
}

/// One span ready to write, and how to name it in an error.
struct SpanCall {
    what: String,
    start: CallStartReq,
    end: CallEndReq,
}

/// `POST /otel/v1/traces`.
pub async fn export(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Response {
    let encoding = Encoding::of(&headers, &body);
    let limit = state.options.max_body_bytes;
    let header_project = match header_project(&headers) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let content_encoding = headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase());
    // Decompressing, decoding and mapping are CPU work: off the async threads.
    let prepared = tokio::task::spawn_blocking(move || {
        let body = decompress(&body, content_encoding.as_deref(), limit)?;
        let request = decode(&body, encoding)?;
        prepare(&request, header_project.as_deref())
    })
    .await;
    let (calls, mut outcome) = match prepared {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => return e.into_response(),
        Err(e) => {
            return ApiError::internal(format!("the OTLP decoder panicked: {e}")).into_response()
        }
    };
    let written = blocking(&state, move |backend| {
        write(backend, calls, &mut outcome)?;
        Ok(outcome)
    })
    .await;
    match written {
        Ok(outcome) => answer(encoding, &outcome.response()),
        Err(e) => e.into_response(),
    }
}

/// An OTLP answer in `encoding`.
pub fn answer(encoding: Encoding, res: &ExportTraceServiceResponse) -> Response {
    match encoding {
        Encoding::Protobuf => (
            [(header::CONTENT_TYPE, "application/x-protobuf")],
            res.encode_to_vec(),
        )
            .into_response(),
        Encoding::Json => {
            let body = match &res.partial_success {
                Some(p) => json!({ "partialSuccess": {
                    "rejectedSpans": p.rejected_spans,
                    "errorMessage": p.error_message,
                }}),
                None => json!({}),
            };
            axum::Json(body).into_response()
        }
    }
}

fn check_project(project_id: &str) -> bool {
    matches!(project_id.split_once('/'),
        Some((e, p)) if !e.is_empty() && !p.is_empty() && !p.contains('/'))
}

/// The `project_id` header (or `project-id`), when sent; a 400 when it is not `entity/project`.
fn header_project(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(v) = headers
        .get("project_id")
        .or_else(|| headers.get("project-id"))
    else {
        return Ok(None);
    };
    let v = v.to_str().unwrap_or("").trim();
    if !check_project(v) {
        return Err(ApiError::bad_request(format!(
            "the project_id header must be \"entity/project\", got {v:?}"
        )));
    }
    Ok(Some(v.to_string()))
}

/// The body, decompressed as its `Content-Encoding` says, within `limit` bytes.
fn decompress(body: &[u8], encoding: Option<&str>, limit: usize) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::new();
    let read = match encoding {
        None | Some("" | "identity") => return Ok(body.to_vec()),
        Some("gzip" | "x-gzip") => flate2::read::MultiGzDecoder::new(body)
            .take(limit as u64 + 1)
            .read_to_end(&mut out),
        Some("deflate") => flate2::read::ZlibDecoder::new(body)
            .take(limit as u64 + 1)
            .read_to_end(&mut out),
        Some(other) => {
            return Err(ApiError::reason(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("Content-Encoding {other:?} is not supported (gzip, deflate or none)"),
            ))
        }
    };
    read.map_err(|e| ApiError::bad_request(format!("the body does not decompress: {e}")))?;
    if out.len() > limit {
        return Err(ApiError::too_large());
    }
    Ok(out)
}

/// The export request in `body`, or a 400 saying why it is not one.
pub fn decode(body: &[u8], encoding: Encoding) -> Result<ExportTraceServiceRequest, ApiError> {
    match encoding {
        Encoding::Protobuf => ExportTraceServiceRequest::decode(body).map_err(|e| {
            ApiError::bad_request(format!(
                "not an OTLP ExportTraceServiceRequest (protobuf): {e}"
            ))
        }),
        Encoding::Json => json::request(body).map_err(|e| {
            ApiError::bad_request(format!("not an OTLP ExportTraceServiceRequest (JSON): {e}"))
        }),
    }
}

/// A string resource attribute.
fn resource_string<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a str> {
    attributes
        .iter()
        .rev()
        .find(|kv| kv.key == key)
        .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
            any_value::Value::StringValue(s) if !s.is_empty() => Some(s.as_str()),
            _ => None,
        })
}

/// The spans of `request` as calls, and the spans refused. A 400 when spans have no project.
fn prepare(
    request: &ExportTraceServiceRequest,
    header_project: Option<&str>,
) -> Result<(Vec<SpanCall>, Outcome), ApiError> {
    let mut calls = Vec::new();
    let mut outcome = Outcome::default();
    for (i, rs) in request.resource_spans.iter().enumerate() {
        let spans = rs.scope_spans.iter().flat_map(|ss| &ss.spans);
        if spans.clone().next().is_none() {
            continue;
        }
        let resource_attributes = rs.resource.as_ref().map_or(&[][..], |r| &r.attributes);
        let project_id = match header_project {
            Some(p) => p.to_string(),
            None => match (
                resource_string(resource_attributes, "wandb.entity"),
                resource_string(resource_attributes, "wandb.project"),
            ) {
                (Some(e), Some(p)) if check_project(&format!("{e}/{p}")) => format!("{e}/{p}"),
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "no project for the spans of resourceSpans[{i}]: send the header \
                         `project_id: entity/project`, or the resource attributes wandb.entity \
                         and wandb.project"
                    )))
                }
            },
        };
        let resource = span::resource_dump(rs.resource.as_ref());
        for s in spans {
            let what = format!(
                "span {:?} (trace_id {}, span_id {})",
                s.name,
                span::hex(&s.trace_id),
                span::hex(&s.span_id)
            );
            let mapped = match &resource {
                Ok(resource) => span::to_call(s, resource, &project_id),
                Err(e) => Err(format!("its resource: {e}")),
            };
            match mapped {
                Ok((start, end)) => calls.push(SpanCall {
                    what,
                    start: CallStartReq { start },
                    end: CallEndReq { end },
                }),
                Err(e) => outcome.reject(format!("rejected {what}: {e}")),
            }
        }
    }
    Ok((calls, outcome))
}

/// Writes the calls in one batch (one transaction of the embedded store). When the store
/// refuses the batch for a client's mistake, each span is written alone so that only the
/// bad ones are refused; a failure of the store itself fails the request.
fn write(
    backend: &dyn TraceServer,
    calls: Vec<SpanCall>,
    outcome: &mut Outcome,
) -> weave_core::Result<()> {
    if calls.is_empty() {
        return Ok(());
    }
    let batch = |c: &SpanCall| {
        [
            CallBatchItem::Start(c.start.clone()),
            CallBatchItem::End(c.end.clone()),
        ]
    };
    let all: Vec<CallBatchItem> = calls.iter().flat_map(batch).collect();
    match backend.call_start_batch(CallCreateBatchReq { batch: all }) {
        Ok(_) => {
            outcome.stored += calls.len();
            return Ok(());
        }
        Err(e) if !is_clients_mistake(&e) => return Err(e),
        Err(_) => {}
    }
    for c in &calls {
        match backend.call_start_batch(CallCreateBatchReq {
            batch: batch(c).to_vec(),
        }) {
            Ok(_) => outcome.stored += 1,
            Err(e) if is_clients_mistake(&e) => outcome.reject(format!("rejected {}: {e}", c.what)),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Whether the store refused data (a 4xx), not failed.
fn is_clients_mistake(e: &weave_core::WeaveError) -> bool {
    use weave_core::WeaveError as E;
    matches!(
        e,
        E::InvalidInput(_) | E::InvalidQuery(_) | E::Serialization { .. } | E::TooLarge(_)
    )
}

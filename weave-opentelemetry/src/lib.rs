//! OpenTelemetry spans as W&B Weave calls: [`WeaveSpanProcessor`], a span processor for the
//! OpenTelemetry SDK, records every span made through the OpenTelemetry API — by a library
//! instrumented with it (openinference-rs, llm-sdk-rs), by your code, or by
//! `tracing-opentelemetry` from `tracing` spans, with the attributes set through its
//! `OpenTelemetrySpanExt` — as a Weave call, in the same trees as `#[weave::op]` calls and
//! the `weave::layer()`'s spans:
//!
//! - a span started inside an op (or a span of the weave layer) is that call's child; an op
//!   run while an OpenTelemetry span is current (`tracer.in_span`, `Context::attach`) is that
//!   span's child;
//! - the call's id is the span's id and, in a trace the span starts, its trace id is the
//!   span's: a `traceparent` an OpenTelemetry propagator writes names the call, and the same
//!   span exported over OTLP to a Weave server is the same call;
//! - attributes map as on the weave layer's spans ([`weave_core::genai`]): GenAI usage
//!   (`gen_ai.usage.*`, `llm.token_count.*`) becomes `summary.usage[model]` (so costs work),
//!   `gen_ai.operation.name` / `openinference.span.kind` the kind, `gen_ai.conversation.id`
//!   the thread (these two read when the span starts: give them to the span builder, as the
//!   conventions ask), `gen_ai.response.*` / `output.value` the output; other attributes are
//!   inputs; events are kept in `summary.events`; an `Error` status (with an `exception`
//!   event's type and message when there is one) fails the call.
//!
//! A call is written when its span ends, start and end together (its attributes can change
//! until then). Resource attributes and links are not recorded.
//!
//! Don't record the same `tracing` spans twice: with `tracing-opentelemetry` feeding a
//! tracer provider that has this processor, leave `weave::layer()` out of the subscriber.
//!
//! # Examples
//!
//! ```
//! use opentelemetry::trace::{Span, Tracer, TracerProvider};
//! use opentelemetry::KeyValue;
//! use opentelemetry_sdk::trace::SdkTracerProvider;
//! use weave_opentelemetry::WeaveSpanProcessor;
//!
//! let client = weave_core::WeaveClient::new(
//!     "acme", "otel", std::sync::Arc::new(weave_core::SqliteServer::in_memory()?), false)?;
//! let provider = SdkTracerProvider::builder()
//!     .with_span_processor(WeaveSpanProcessor::new(client.clone()))
//!     .build();
//! let tracer = provider.tracer("my-llm-lib");
//!
//! let mut span = tracer
//!     .span_builder("chat gpt-4o")
//!     .with_attributes([
//!         KeyValue::new("gen_ai.operation.name", "chat"),
//!         KeyValue::new("gen_ai.request.model", "gpt-4o"),
//!     ])
//!     .start(&tracer);
//! span.set_attribute(KeyValue::new("gen_ai.usage.input_tokens", 12));
//! span.set_attribute(KeyValue::new("gen_ai.usage.output_tokens", 3));
//! span.end();
//! client.flush();
//!
//! let call = client.get_calls(weave_core::CallsQuery::new()).next().unwrap()?;
//! assert_eq!(call.id(), span.span_context().span_id().to_string());
//! assert_eq!(call.usage()["gpt-4o"]["input_tokens"], 12);
//! assert_eq!(call.attributes()["weave"]["kind"], "llm");
//! # Ok::<(), weave_core::WeaveError>(())
//! ```

#![warn(missing_docs, missing_debug_implementations)]

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{SpanContext, SpanId, Status, TraceContextExt, TraceId};
use opentelemetry::{Array, Context, KeyValue};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};
use serde_json::{json, Map, Value};
use weave_core::genai::{field_role, GenAiFields, GenAiRole};
use weave_core::propagation::TraceContext;
use weave_core::{rt, Call, CallOptions, Exception, JsonMap, Op, Timestamp, WeaveClient};

/// The calls of the spans that have started and not ended, by trace and span id — shared by
/// every processor of the process, so that a span's children find it whichever tracer
/// provider made them, and ops find the current span's call.
static LIVE: Mutex<Option<HashMap<(TraceId, SpanId), Call>>> = Mutex::new(None);

fn live() -> MutexGuard<'static, Option<HashMap<(TraceId, SpanId), Call>>> {
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// A span that could not be recorded (reported once on stderr).
static FAILED: rt::ReportOnce = rt::ReportOnce::new();

/// The call of the OpenTelemetry span current on this thread, if this process records it
/// (weave's hook: ops made inside it are its children).
fn otel_current() -> Option<Call> {
    let cx = Context::current();
    if !cx.has_active_span() {
        return None;
    }
    let sc = cx.span().span_context().clone();
    live()
        .as_ref()?
        .get(&(sc.trace_id(), sc.span_id()))
        .cloned()
}

/// An OpenTelemetry SDK span processor that records spans as Weave calls (see the
/// [crate docs](crate)). Add it to an `SdkTracerProvider` with `with_span_processor`.
#[derive(Debug, Clone)]
pub struct WeaveSpanProcessor {
    client: WeaveClient,
}

impl WeaveSpanProcessor {
    /// A processor recording with `client` (the spans that start a trace, and those below
    /// them; a span inside a weave call is recorded with that call's client).
    ///
    /// Also makes OpenTelemetry's current span the parent of ops and `tracing` spans made
    /// while it is current (for the whole process, from then on).
    pub fn new(client: WeaveClient) -> Self {
        rt::set_foreign_current(otel_current);
        WeaveSpanProcessor { client }
    }

    /// Where a span starting under `cx` goes: under its OpenTelemetry parent's call, under a
    /// parent of another process (its ids), under weave's current call, or a root. `None`
    /// inside a trace weave sampled out.
    fn parent_of(&self, cx: &Context) -> Option<Option<Call>> {
        if cx.has_active_span() {
            let sc = cx.span().span_context().clone();
            if sc.is_valid() {
                let known = live()
                    .as_ref()
                    .and_then(|m| m.get(&(sc.trace_id(), sc.span_id())).cloned());
                return Some(match known {
                    // A weave call made inside that span (a layer span, an op) and current
                    // now is deeper: the new span is its child.
                    Some(p) => Some(match weave_core::current_call() {
                        Some(w) if rt::descends_from(&w, &p) => w,
                        _ => p,
                    }),
                    None => self.remote_parent(&sc),
                });
            }
        }
        if weave_core::is_suppressed() {
            return None;
        }
        Some(weave_core::current_call())
    }

    /// A parent span not recorded here (another process's, or one made before this
    /// processor): a stand-in with its ids, so that the call names it as its parent.
    fn remote_parent(&self, sc: &SpanContext) -> Option<Call> {
        let remote = TraceContext::new(&sc.trace_id().to_string(), &sc.span_id().to_string());
        remote.ok()?.context(&self.client).call().cloned()
    }

    fn start(&self, span: &Span, cx: &Context) -> weave_core::Result<()> {
        let Some(data) = span.exported_data() else {
            return Ok(()); // not recording
        };
        let Some(parent) = self.parent_of(cx) else {
            return Ok(());
        };
        let sc = &data.span_context;
        let (inputs, genai) = split(&data.attributes);
        let client = parent.as_ref().map_or(&self.client, |p| p.client());
        let mut opts = CallOptions::new()
            .use_stack(false)
            .defer_start(true)
            .started_at(timestamp(data.start_time))
            .id(sc.span_id().to_string());
        opts = match &parent {
            Some(p) => opts.parent(p),
            None => opts.trace_id(sc.trace_id().to_string()),
        };
        if let Some(thread) = genai.thread() {
            opts = opts.thread_id(thread);
        }
        let op = |name: &str| {
            let op = Op::new(name);
            match genai.kind() {
                Some(kind) => op.kind(kind),
                None => op,
            }
        };
        // The span's name is the op's; where the op's ref spells it otherwise (a space, a
        // slash), the span's name is also the display name.
        if weave_core::sanitize_object_name(&data.name).ok().as_deref() != Some(&*data.name) {
            opts = opts.display_name(data.name.to_string());
        }
        // A span name that is not an op name (empty, too long) is recorded under a
        // sanitized one.
        let call = match client.create_call_with(op(&data.name), &inputs, opts.clone()) {
            Ok(call) => call,
            Err(_) => {
                let name = weave_core::sanitize_object_name(&data.name)
                    .unwrap_or_else(|_| "otel_span".to_string());
                client.create_call_with(op(&name), &inputs, opts)?
            }
        };
        live()
            .get_or_insert_with(HashMap::new)
            .insert((sc.trace_id(), sc.span_id()), call);
        Ok(())
    }

    fn end(&self, data: SpanData) -> weave_core::Result<()> {
        let sc = &data.span_context;
        let Some(call) = live()
            .as_mut()
            .and_then(|m| m.remove(&(sc.trace_id(), sc.span_id())))
        else {
            return Ok(()); // not recorded
        };
        let (inputs, genai) = split(&data.attributes);
        call.extend_deferred_inputs(inputs);
        let mut thrown = None;
        for event in data.events.events {
            let attributes = attributes_json(&event.attributes);
            if event.name == "exception" {
                thrown = Some(Exception::new(
                    text(attributes.get("exception.type")).unwrap_or("Error"),
                    text(attributes.get("exception.message")).unwrap_or_default(),
                ));
            }
            let mut e = Map::new();
            e.insert("time".into(), json!(timestamp(event.timestamp).to_string()));
            e.insert("message".into(), json!(event.name));
            if !attributes.is_empty() {
                e.insert("fields".into(), Value::Object(attributes));
            }
            call.log_event(Value::Object(e));
        }
        let exception = match data.status {
            Status::Error { description } => Some(match thrown {
                Some(e) if description.is_empty() => e,
                Some(e) => Exception::new(e.r#type, description),
                None => {
                    let (kind, _) = genai.failure().unwrap_or(("Error".into(), String::new()));
                    Exception::new(kind, description)
                }
            }),
            _ => None,
        };
        rt::finish_genai_span_call(&call, genai, None, exception)
    }
}

impl SpanProcessor for WeaveSpanProcessor {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        if let Err(e) = self.start(span, cx) {
            FAILED.report(format_args!(
                "weave: an OpenTelemetry span could not be recorded ({e}); further such \
                 errors are not reported"
            ));
        }
    }

    fn on_end(&self, span: SpanData) {
        if let Err(e) = self.end(span) {
            FAILED.report(format_args!(
                "weave: an OpenTelemetry span could not be recorded ({e}); further such \
                 errors are not reported"
            ));
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.client.flush();
        Ok(())
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.client.flush_timeout(timeout);
        Ok(())
    }
}

/// A span's attributes as the call's inputs and its GenAI fields (by [`field_role`]).
fn split(attributes: &[KeyValue]) -> (JsonMap, GenAiFields) {
    let mut inputs = JsonMap::new();
    let mut genai = GenAiFields::default();
    for kv in attributes {
        let name = kv.key.as_str();
        let role = field_role(name);
        let value = json_of(&kv.value);
        if role.is_genai() {
            let genai_role = GenAiRole::of(name);
            if !genai_role.is_empty() {
                genai.add(name.to_string(), genai_role, value.clone());
            }
        }
        if role.is_input() {
            inputs.insert(name.to_string(), value);
        }
    }
    (inputs, genai)
}

fn attributes_json(attributes: &[KeyValue]) -> JsonMap {
    attributes
        .iter()
        .map(|kv| (kv.key.as_str().to_string(), json_of(&kv.value)))
        .collect()
}

fn text(v: Option<&Value>) -> Option<&str> {
    v.and_then(Value::as_str)
}

/// An attribute's value as JSON.
fn json_of(v: &opentelemetry::Value) -> Value {
    use opentelemetry::Value as V;
    match v {
        V::Bool(b) => json!(b),
        V::I64(n) => json!(n),
        V::F64(f) => json!(f),
        V::String(s) => json!(s.as_str()),
        V::Array(Array::Bool(a)) => json!(a),
        V::Array(Array::I64(a)) => json!(a),
        V::Array(Array::F64(a)) => json!(a),
        V::Array(Array::String(a)) => json!(a.iter().map(|s| s.as_str()).collect::<Vec<_>>()),
        other => json!(other.to_string()),
    }
}

fn timestamp(t: SystemTime) -> Timestamp {
    let nanos = t
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
    Timestamp::from_nanos(nanos)
}

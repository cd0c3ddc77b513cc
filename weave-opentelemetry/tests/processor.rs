//! `WeaveSpanProcessor` in a real OpenTelemetry SDK tracer provider, recording into a real
//! embedded store: OpenTelemetry spans become calls in the same trees as ops, both ways.

use std::sync::{Arc, OnceLock};

use opentelemetry::trace::{Span, SpanKind, Status, TraceContextExt, Tracer, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use weave::{Call, CallsFilter, CallsQuery, SqliteServer, WeaveClient};
use weave_opentelemetry::WeaveSpanProcessor;

/// One client for the binary, also the process-wide one (ops made inside an OpenTelemetry
/// span with no weave call around need it); each test reads back its own trace.
fn client() -> WeaveClient {
    static CLIENT: OnceLock<WeaveClient> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            let store = SqliteServer::in_memory().unwrap();
            let client = WeaveClient::new("acme", "otel", Arc::new(store), false).unwrap();
            weave::set_global_client(Some(client.clone()));
            client
        })
        .clone()
}

fn tracer() -> (SdkTracerProvider, SdkTracer) {
    let provider = SdkTracerProvider::builder()
        .with_span_processor(WeaveSpanProcessor::new(client()))
        .build();
    let tracer = provider.tracer("weave-opentelemetry-tests");
    (provider, tracer)
}

/// The calls of `trace_id`, oldest first.
fn trace(trace_id: &str) -> Vec<Call> {
    let client = client();
    client.flush();
    client
        .get_calls(CallsQuery::from(CallsFilter {
            trace_ids: Some(vec![trace_id.to_string()]),
            ..Default::default()
        }))
        .collect::<Result<_, _>>()
        .unwrap()
}

fn named<'a>(calls: &'a [Call], name: &str) -> &'a Call {
    calls
        .iter()
        .find(|c| c.func_name() == name)
        .unwrap_or_else(|| {
            panic!(
                "no {name} in {:?}",
                calls.iter().map(|c| c.func_name()).collect::<Vec<_>>()
            )
        })
}

#[weave::op]
fn lookup(city: &str) -> String {
    format!("sunny in {city}")
}

#[weave::op(kind = "agent")]
fn agent(tracer: &SdkTracer, question: &str) -> String {
    // An LLM library instrumented with the OpenTelemetry API, called inside an op.
    // The operation and model given as the span is made (as the conventions ask), the
    // response's fields when it arrives.
    let mut span = tracer
        .span_builder("chat gpt-4o")
        .with_kind(SpanKind::Client)
        .with_attributes([
            KeyValue::new("gen_ai.operation.name", "chat"),
            KeyValue::new("gen_ai.request.model", "gpt-4o"),
        ])
        .start(tracer);
    span.set_attribute(KeyValue::new("gen_ai.usage.input_tokens", 20));
    span.set_attribute(KeyValue::new("gen_ai.usage.output_tokens", 4));
    span.set_attribute(KeyValue::new("gen_ai.response.id", "resp-1"));
    span.end();
    format!("answer to {question}")
}

#[test]
fn otel_spans_nest_as_calls_with_their_ids() {
    let (_provider, tracer) = tracer();
    let (trace_id, root_id, child_id) = tracer.in_span("handle_request", |cx| {
        cx.span()
            .set_attribute(KeyValue::new("http.route", "/chat"));
        let mut span = tracer
            .span_builder("retrieve")
            .with_attributes([KeyValue::new("openinference.span.kind", "RETRIEVER")])
            .start_with_context(&tracer, &cx);
        span.set_attribute(KeyValue::new("input.value", "rain?"));
        span.add_event("cache miss", vec![KeyValue::new("key", "rain?")]);
        let child = span.span_context().span_id().to_string();
        span.end();
        let sc = cx.span().span_context().clone();
        (sc.trace_id().to_string(), sc.span_id().to_string(), child)
    });
    let calls = trace(&trace_id);
    assert_eq!(calls.len(), 2);
    let root = named(&calls, "handle_request");
    assert_eq!(root.id(), root_id);
    assert_eq!(root.parent_id(), None);
    assert_eq!(root.trace_id(), trace_id);
    assert_eq!(root.inputs()["http.route"], "/chat");
    let child = named(&calls, "retrieve");
    assert_eq!(child.id(), child_id);
    assert_eq!(child.parent_id(), Some(root_id.as_str()));
    assert_eq!(child.attributes()["weave"]["kind"], "search");
    assert_eq!(child.inputs()["input.value"], "rain?");
    let events = &child.summary().unwrap()["events"];
    assert_eq!(events[0]["message"], "cache miss");
    assert_eq!(events[0]["fields"]["key"], "rain?");
    assert!(child.ended_at().unwrap() <= root.ended_at().unwrap());
}

#[test]
fn an_otel_span_inside_an_op_is_its_child_and_its_usage_rolls_up() {
    let (_provider, tracer) = tracer();
    let (answer, call) = weave::capture_call(|| agent(&tracer, "rain?"));
    assert_eq!(answer, "answer to rain?");
    let call = call.unwrap();
    let calls = trace(call.trace_id());
    let root = named(&calls, "agent");
    let chat = named(&calls, "chat-gpt-4o"); // the op's ref name
    assert_eq!(chat.display_name().as_deref(), Some("chat gpt-4o"));
    assert_eq!(chat.parent_id(), Some(root.id()));
    assert_eq!(chat.id().len(), 16, "the span's id: {}", chat.id());
    assert_eq!(chat.attributes()["weave"]["kind"], "llm");
    assert_eq!(chat.usage()["gpt-4o"]["input_tokens"], 20);
    assert_eq!(chat.output()["gen_ai.response.id"], "resp-1");
    assert!(!chat.inputs().contains_key("gen_ai.usage.input_tokens"));
    assert_eq!(chat.inputs()["gen_ai.request.model"], "gpt-4o");
    // Rolled up into the op, as for any child.
    assert_eq!(root.usage()["gpt-4o"]["output_tokens"], 4);
}

#[test]
fn an_op_inside_a_current_otel_span_is_its_child() {
    let (_provider, tracer) = tracer();
    let (trace_id, span_id) = tracer.in_span("tool_loop", |cx| {
        assert_eq!(lookup("Paris"), "sunny in Paris");
        // Nested the other way too: an OpenTelemetry span inside that op's child.
        let sc = cx.span().span_context().clone();
        (sc.trace_id().to_string(), sc.span_id().to_string())
    });
    let calls = trace(&trace_id);
    let op = named(&calls, "lookup");
    assert_eq!(op.parent_id(), Some(span_id.as_str()));
    assert_eq!(op.inputs()["city"], "Paris");
    // Outside the span, the op is a root again.
    let (_, call) = weave::capture_call(|| lookup("Oslo"));
    assert_eq!(call.unwrap().parent_id(), None);
}

#[test]
fn failed_spans_and_remote_parents() {
    let (_provider, tracer) = tracer();
    // A span whose parent is another process's (extracted by a propagator): the call names
    // that span as its parent, in its trace.
    let remote = opentelemetry::trace::SpanContext::new(
        opentelemetry::trace::TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
        opentelemetry::trace::SpanId::from_hex("00f067aa0ba902b7").unwrap(),
        opentelemetry::trace::TraceFlags::SAMPLED,
        true,
        Default::default(),
    );
    let cx = Context::new().with_remote_span_context(remote);
    let mut span = tracer
        .span_builder("call_tool")
        .with_kind(SpanKind::Client)
        .start_with_context(&tracer, &cx);
    span.add_event(
        "exception",
        vec![
            KeyValue::new("exception.type", "TimeoutError"),
            KeyValue::new("exception.message", "no reply in 30 s"),
        ],
    );
    span.set_status(Status::error("tool timed out"));
    span.end();
    let calls = trace("4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(call.parent_id(), Some("00f067aa0ba902b7"));
    let e = call.exception_info().unwrap();
    assert_eq!(e.r#type, "TimeoutError");
    assert_eq!(e.message, "tool timed out");
    assert_eq!(call.status(), weave::TraceStatus::Error);
}

#[test]
fn tracing_spans_through_tracing_opentelemetry_keep_their_attributes() {
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    use tracing_subscriber::prelude::*;

    let (_provider, tracer) = tracer();
    let subscriber =
        tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(tracer));
    let trace_id = tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!(
            "completion",
            gen_ai.operation.name = "chat",
            gen_ai.request.model = "claude-3-5-haiku"
        );
        // Set through tracing-opentelemetry's extension, not as tracing fields.
        span.set_attribute("gen_ai.usage.input_tokens", 7);
        span.set_attribute("gen_ai.usage.output_tokens", 2);
        let trace_id = span.context().span().span_context().trace_id().to_string();
        drop(span);
        trace_id
    });
    let calls = trace(&trace_id);
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(call.func_name(), "completion");
    assert_eq!(call.usage()["claude-3-5-haiku"]["input_tokens"], 7);
    assert_eq!(call.attributes()["weave"]["kind"], "llm");
}

#[test]
fn a_layer_span_inside_a_current_otel_span_is_its_child() {
    use tracing_subscriber::prelude::*;

    let (_provider, tracer) = tracer();
    let subscriber = tracing_subscriber::registry().with(weave::layer());
    let (trace_id, span_id) = tracing::subscriber::with_default(subscriber, || {
        tracer.in_span("otel_parent", |cx| {
            let sc = cx.span().span_context().clone();
            tracing::info_span!("layer_child", step = 1).in_scope(|| {
                // And an OpenTelemetry span inside the layer's span: its child.
                tracer.in_span("otel_grandchild", |_| {});
            });
            (sc.trace_id().to_string(), sc.span_id().to_string())
        })
    });
    let calls = trace(&trace_id);
    assert_eq!(
        calls.len(),
        3,
        "{:?}",
        calls.iter().map(|c| c.func_name()).collect::<Vec<_>>()
    );
    let child = named(&calls, "layer_child");
    assert_eq!(child.parent_id(), Some(span_id.as_str()));
    assert_eq!(child.inputs()["step"], 1);
    let grandchild = named(&calls, "otel_grandchild");
    assert_eq!(grandchild.parent_id(), Some(child.id()));
}

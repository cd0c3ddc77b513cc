//! OpenTelemetry both ways: spans made with the OpenTelemetry API become calls in the same
//! tree as `#[weave::op]` calls (`weave_opentelemetry::WeaveSpanProcessor`), and every call
//! is also sent as an OTLP span to an OTLP/HTTP endpoint (`weave::server::otlp::OtlpExporter`).
//!
//! ```text
//! cargo run --example opentelemetry
//! ```
//!
//! The OTLP endpoint here is a `weave serve` started in this process on a store of its own
//! (`/otel/v1/traces`); an OpenTelemetry collector, Langfuse or Phoenix take the same spans.
//! The trace is printed twice: as the embedded store has it, and as the OTLP receiver made
//! it from the spans.

use std::sync::Arc;

use opentelemetry::trace::{Span, SpanKind, Tracer, TracerProvider};
use opentelemetry::KeyValue;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use weave::server::otlp::{OtlpConfig, OtlpExporter};
use weave::server::{RemoteServer, RemoteServerConfig};
use weave::{Call, CallsQuery, SqliteServer, WeaveClient};
use weave_opentelemetry::WeaveSpanProcessor;

/// An LLM client library instrumented with the OpenTelemetry API (as openinference-rs and
/// llm-sdk-rs are): it knows nothing of weave.
fn llm_complete(tracer: &SdkTracer, prompt: &str) -> String {
    let mut span = tracer
        .span_builder("chat gpt-4o-mini")
        .with_kind(SpanKind::Client)
        .with_attributes([
            KeyValue::new("gen_ai.operation.name", "chat"),
            KeyValue::new("gen_ai.request.model", "gpt-4o-mini"),
            KeyValue::new(
                "gen_ai.input.messages",
                format!("[{{\"role\":\"user\",\"content\":{prompt:?}}}]"),
            ),
        ])
        .start(tracer);
    span.set_attribute(KeyValue::new(
        "gen_ai.response.model",
        "gpt-4o-mini-2024-07-18",
    ));
    span.set_attribute(KeyValue::new("gen_ai.usage.input_tokens", 14));
    span.set_attribute(KeyValue::new("gen_ai.usage.output_tokens", 9));
    span.end();
    "Take an umbrella.".to_string()
}

#[weave::op(kind = "agent")]
fn advise(tracer: &SdkTracer, question: &str) -> String {
    llm_complete(tracer, question)
}

fn print_tree(title: &str, calls: &[Call]) {
    println!("{title}:");
    for c in calls {
        let depth = std::iter::successors(Some(c), |c| {
            calls.iter().find(|p| Some(p.id()) == c.parent_id())
        })
        .count();
        let usage = c.usage();
        let tokens: i64 = usage
            .values()
            .filter_map(|u| u["input_tokens"].as_i64().zip(u["output_tokens"].as_i64()))
            .map(|(i, o)| i + o)
            .sum();
        println!(
            "{}{} [{}] tokens={tokens} output={}",
            "  ".repeat(depth - 1),
            c.func_name(),
            c.id(),
            c.output()
        );
    }
}

fn main() -> weave::Result<()> {
    // The OTLP receiver: a Weave server (its OTLP ingest) on loopback.
    let receiver = weave_server::BackgroundServer::start(
        Arc::new(SqliteServer::in_memory()?),
        weave_server::ServeOptions::default().with_port(0),
    )
    .expect("start weave serve");

    // Calls go to the embedded store, and as OTLP spans to the receiver.
    let store = Arc::new(SqliteServer::in_memory()?);
    let export = OtlpExporter::new(
        store,
        OtlpConfig::new(format!("{}/otel/v1/traces", receiver.url())),
    )?;
    let client = WeaveClient::new("acme", "otel-demo", Arc::new(export), false)?;
    weave::set_global_client(Some(client.clone()));

    // OpenTelemetry API spans become calls, in the same trees as ops.
    let provider = SdkTracerProvider::builder()
        .with_span_processor(WeaveSpanProcessor::new(client.clone()))
        .build();
    let tracer = provider.tracer("acme-llm-client");

    let (answer, call) = weave::capture_call(|| advise(&tracer, "Rain in Paris tomorrow?"));
    println!("answer: {answer}");
    client.flush();

    let local: Vec<Call> = client
        .get_calls(CallsQuery::new())
        .collect::<Result<_, _>>()?;
    print_tree("in the embedded store", &local);
    let names: Vec<&str> = local.iter().map(|c| c.func_name()).collect();
    assert_eq!(names, ["advise", "chat-gpt-4o-mini"]);
    assert_eq!(
        local[1].parent_id(),
        Some(call.as_ref().expect("traced").id())
    );
    assert_eq!(
        local[0].usage()["gpt-4o-mini-2024-07-18"]["input_tokens"],
        14
    );

    let remote = WeaveClient::new(
        "acme",
        "otel-demo",
        Arc::new(RemoteServer::new(RemoteServerConfig::new(receiver.url()))?),
        false,
    )?;
    let received: Vec<Call> = remote
        .get_calls(CallsQuery::new())
        .collect::<Result<_, _>>()?;
    print_tree("at the OTLP receiver", &received);
    assert_eq!(received.len(), 2);
    assert_eq!(received[1].parent_id(), Some(received[0].id()));
    assert_eq!(
        received[0].usage()["gpt-4o-mini-2024-07-18"]["output_tokens"],
        9
    );
    Ok(())
}

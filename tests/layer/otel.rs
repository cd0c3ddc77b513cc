//! `weave::layer()` beside `tracing-opentelemetry` in one registry: both see the same spans,
//! with the same nesting — the composition the docs show.

use std::collections::HashMap;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use serde_json::json;
use tracing::{info_span, instrument};
use tracing_subscriber::layer::SubscriberExt;
use weave::WeaveLayer;

use crate::common::{all_calls, TestStore};

#[instrument]
fn handle(request: u32) -> u32 {
    lookup(request) + info_span!("render").in_scope(|| 1)
}

#[instrument]
fn lookup(id: u32) -> u32 {
    double(id)
}

#[weave::op]
fn double(n: u32) -> u32 {
    n * 2
}

#[test]
fn weave_and_opentelemetry_layers_see_the_same_spans() {
    let s = TestStore::new();
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")))
        .with(WeaveLayer::with_client(s.client.clone()));
    let out = tracing::subscriber::with_default(subscriber, || handle(20));
    assert_eq!(out, 41);

    // OpenTelemetry: name → parent name.
    let spans = exporter.get_finished_spans().unwrap();
    let by_id: HashMap<_, _> = spans
        .iter()
        .map(|s| (s.span_context.span_id(), s.name.to_string()))
        .collect();
    let mut otel: Vec<(String, Option<String>)> = spans
        .iter()
        .map(|s| (s.name.to_string(), by_id.get(&s.parent_span_id).cloned()))
        .collect();
    otel.sort();

    // Weave: the same tree, the op included.
    let calls = all_calls(&s.client);
    let names: HashMap<_, _> = calls
        .iter()
        .map(|c| (c.id().to_string(), c.func_name().to_string()))
        .collect();
    let mut weave: Vec<(String, Option<String>)> = calls
        .iter()
        .map(|c| {
            let parent = c.parent_id().and_then(|p| names.get(p).cloned());
            (c.func_name().to_string(), parent)
        })
        .collect();
    weave.sort();

    assert_eq!(weave, otel);
    assert_eq!(
        weave,
        [
            ("double".to_string(), Some("lookup".to_string())),
            ("handle".to_string(), None),
            ("lookup".to_string(), Some("handle".to_string())),
            ("render".to_string(), Some("handle".to_string())),
        ]
    );
    let double = calls.iter().find(|c| c.func_name() == "double").unwrap();
    assert_eq!(double.output(), json!(40));
}

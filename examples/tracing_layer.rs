//! An application that already uses `tracing`: its `#[instrument]` spans become Weave calls
//! by adding `weave::layer()` next to its `fmt` layer — no code change in the functions.
//!
//! ```text
//! cargo run --example tracing_layer
//! RUST_LOG=debug cargo run --example tracing_layer   # more console output; weave still records INFO+
//! ```
//!
//! What it shows:
//! - the `fmt` layer and the weave layer see the same spans;
//! - span fields become inputs, including one recorded later (`Span::record`);
//! - `#[instrument(ret)]` / `#[instrument(err)]` become the output / the exception;
//! - log events inside a span are kept with its call (`summary.events`);
//! - an LLM client that follows the OpenTelemetry GenAI conventions
//!   (`gen_ai.usage.input_tokens`, `gen_ai.response.model`, …) gets its token usage recorded
//!   as `summary.usage`, which rolls up to the request;
//! - an LLM library called inside a `#[weave::op]` that records its response on the current
//!   span (as rig does when a span is current) gets it into the op's call: usage by model
//!   and the response fields in `summary.gen_ai`;
//! - a `DEBUG` span (like the ones HTTP libraries emit) is not recorded by default.

use std::time::Duration;

use tracing::{debug_span, info, instrument, warn, Span};
use tracing_subscriber::{prelude::*, EnvFilter};
use weave::{Call, InitOptions};

/// An LLM client instrumented the OpenTelemetry GenAI way: token counts are recorded on the
/// span once the response arrives.
#[instrument(
    fields(
        gen_ai.operation.name = "chat",
        gen_ai.request.model = %model,
        gen_ai.response.model = tracing::field::Empty,
        gen_ai.usage.input_tokens = tracing::field::Empty,
        gen_ai.usage.output_tokens = tracing::field::Empty,
    ),
    skip(prompt)
)]
fn llm_complete(model: &str, prompt: &str) -> String {
    std::thread::sleep(Duration::from_millis(10));
    let span = Span::current();
    span.record("gen_ai.response.model", "acme-llm-1-2025-01");
    span.record("gen_ai.usage.input_tokens", prompt.len() as u64 / 4 + 5);
    span.record("gen_ai.usage.output_tokens", 12u64);
    "It will rain in Paris.".to_string()
}

/// An LLM library that makes no span of its own when one is current (as rig does): it
/// records the response on `Span::current()` — inside an op, the op's span, which declares
/// these fields so that `tracing` keeps them.
fn library_complete(prompt: &str) -> String {
    let span = Span::current();
    span.record("gen_ai.response.model", "acme-llm-mini-2025-01");
    span.record("gen_ai.response.id", "resp-42");
    span.record("gen_ai.usage.input_tokens", prompt.len() as u64 / 4 + 3);
    span.record("gen_ai.usage.output_tokens", 6u64);
    format!("in short: {prompt}")
}

/// An op calling that library: the usage lands in this op's call.
#[weave::op(kind = "llm")]
fn summarize(text: &str) -> String {
    library_complete(text)
}

/// A lookup that returns a value (recorded as the call's output with `ret`).
#[instrument(ret)]
fn lookup_user(user_id: u64) -> String {
    // A DEBUG span, as libraries emit: shown with RUST_LOG=debug, not recorded by weave.
    let _db = debug_span!("db_query", table = "users").entered();
    format!("user-{user_id}")
}

/// Validation that can fail (recorded as the call's exception with `err`).
#[instrument(err)]
fn validate(question: &str) -> Result<(), String> {
    if question.trim().is_empty() {
        return Err("empty question".into());
    }
    Ok(())
}

/// A request handler: its span is the root call; `answer` is recorded after creation.
#[instrument(fields(answer = tracing::field::Empty))]
fn handle_request(user_id: u64, question: &str) -> String {
    info!("request received");
    let user = lookup_user(user_id);
    if validate(question).is_err() {
        warn!(user = %user, "rejected an invalid question");
        return "invalid question".into();
    }
    let answer = llm_complete("acme-llm-1", question);
    let _short = summarize(&answer);
    Span::current().record("answer", answer.as_str());
    info!(chars = answer.len(), "answered");
    answer
}

fn print_tree(call: &Call, depth: usize) -> weave::Result<()> {
    println!(
        "{:indent$}{} {}  inputs={}  output={}",
        "",
        call.func_name(),
        call.status().as_str(),
        serde_json::Value::Object(call.inputs().clone()),
        call.output(),
        indent = depth * 2
    );
    if let Some(usage) = call.summary().and_then(|s| s.get("usage").cloned()) {
        println!("{:indent$}  usage: {usage}", "", indent = depth * 2);
    }
    if let Some(genai) = call.summary().and_then(|s| s.get("gen_ai").cloned()) {
        println!("{:indent$}  gen_ai: {genai}", "", indent = depth * 2);
    }
    if let Some(serde_json::Value::Array(events)) =
        call.summary().and_then(|s| s.get("events").cloned())
    {
        for e in events {
            println!(
                "{:indent$}  event {} {}",
                "",
                e["level"].as_str().unwrap_or_default(),
                e["message"].as_str().unwrap_or_default(),
                indent = depth * 2
            );
        }
    }
    for child in call.children() {
        print_tree(&child?, depth + 1)?;
    }
    Ok(())
}

fn main() -> weave::Result<()> {
    // The application's subscriber: console logs plus weave, in one registry.
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into())),
        )
        .with(weave::layer())
        .init();
    // The subscriber is set, so tell init not to install its own.
    let (client, _guard) = weave::init_with(
        "examples/tracing-layer",
        InitOptions::default().with_install_subscriber(false),
    )?;

    let answer = handle_request(7, "Will it rain in Paris?");
    let rejected = handle_request(8, "   ");
    println!("\n{answer} / {rejected}\n");

    // Spans are written when they close; reads flush first, so both requests are there.
    let latest = client.get_calls(
        weave::CallsQuery::new()
            .filter(weave::CallsFilter {
                trace_roots_only: Some(true),
                ..Default::default()
            })
            .sort_by(weave::SortBy::desc("started_at"))
            .limit(2),
    );
    let mut roots: Vec<Call> = latest.collect::<weave::Result<_>>()?;
    roots.reverse();
    for root in &roots {
        print_tree(root, 0)?;
        println!();
    }
    Ok(())
}

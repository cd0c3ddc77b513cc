//! Quickstart: record a small agent trace in the embedded store, then query it back.
//!
//! ```text
//! cargo run --example quickstart
//! ```
//!
//! An "agent" answers a question: it asks an LLM which tool to use, calls the tool (which
//! fails once and is retried), asks the LLM again to write the answer, and returns it. Every
//! step is a call; the LLM outputs carry token usage, which rolls up to the agent. The trace
//! is stored in the embedded SQLite store (set `WEAVE_DB_PATH` to choose the file); each run
//! adds one more trace to it.

use std::time::Duration;

use serde_json::{json, Value};
use weave::{query::field, Call, CallsFilter, CallsQuery, SortBy, WeaveClient};

/// A pretend LLM: sleeps a little and reports token usage like OpenAI's API does.
fn fake_llm(client: &WeaveClient, prompt: &str, reply: &str) -> weave::Result<String> {
    let call = client.create_call("llm", json!({"model": "gpt-4o-mini", "prompt": prompt}))?;
    std::thread::sleep(Duration::from_millis(15));
    let prompt_tokens = prompt.split_whitespace().count() as u64 * 4 / 3 + 8;
    let completion_tokens = reply.split_whitespace().count() as u64 * 4 / 3 + 1;
    client.finish_call(
        &call,
        json!({
            "model": "gpt-4o-mini",
            "choices": [{"message": {"role": "assistant", "content": reply}}],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }),
    )?;
    Ok(reply.to_string())
}

#[derive(Debug)]
struct ToolError(String);
impl std::fmt::Display for ToolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "weather service error: {}", self.0)
    }
}
impl std::error::Error for ToolError {}

/// A pretend tool that fails on its first attempt.
fn get_weather(client: &WeaveClient, city: &str, attempt: u32) -> weave::Result<Option<Value>> {
    let call = client.create_call("get_weather", json!({"city": city, "attempt": attempt}))?;
    std::thread::sleep(Duration::from_millis(5));
    if attempt == 1 {
        client.fail_call(&call, &ToolError("503 Service Unavailable".into()))?;
        return Ok(None);
    }
    let weather = json!({"city": city, "forecast": "light rain", "temp_c": 14});
    client.finish_call(&call, &weather)?;
    Ok(Some(weather))
}

fn agent(client: &WeaveClient, question: &str) -> weave::Result<Call> {
    let call = client.create_call("agent", json!({"question": question}))?;
    fake_llm(client, question, "call get_weather(city=\"Paris\")")?;
    let mut weather = None;
    for attempt in 1..=2 {
        weather = get_weather(client, "Paris", attempt)?;
        if weather.is_some() {
            break;
        }
    }
    let answer = fake_llm(
        client,
        &format!(
            "Question: {question}\nTool result: {}",
            weather.unwrap_or_default()
        ),
        "Expect light rain in Paris today, around 14°C. Take an umbrella.",
    )?;
    client.finish_call(&call, json!({"answer": answer}))?;
    Ok(call)
}

fn print_tree(call: &Call, depth: usize) -> weave::Result<()> {
    let usage: Vec<String> = call
        .usage()
        .iter()
        .map(|(model, u)| format!("{model}: {} tokens", u["total_tokens"]))
        .collect();
    println!(
        "{:indent$}{:<12} {:<16} {:>5} ms  {}",
        "",
        call.func_name(),
        call.status().as_str(),
        call.latency_ms().unwrap_or_default(),
        usage.join(", "),
        indent = depth * 2
    );
    for child in call.children() {
        print_tree(&child?, depth + 1)?;
    }
    Ok(())
}

fn main() -> weave::Result<()> {
    let client = WeaveClient::embedded("quickstart/weather-agent")?;
    let root = agent(&client, "What's the weather in Paris?")?;

    // Query it back: the root with its derived status and rolled-up usage, then the tree.
    let root = client.get_call(root.id())?;
    println!("Trace {}\n", root.trace_id());
    print_tree(&root, 0)?;

    let failed = client.get_calls(
        CallsQuery::new()
            .filter(CallsFilter {
                trace_ids: Some(vec![root.trace_id().to_string()]),
                ..Default::default()
            })
            .query(field("summary.weave.status").eq("error")),
    );
    for call in failed {
        let call = call?;
        println!(
            "\nfailed: {} ← {}",
            call.func_name(),
            call.exception_info()
                .map(|e| e.to_string())
                .unwrap_or_default()
        );
    }

    let traces = client.get_calls(CallsQuery::new().filter(CallsFilter {
        trace_roots_only: Some(true),
        ..Default::default()
    }));
    println!(
        "\n{} agent run(s) stored so far. The latest three:",
        traces.size()?
    );
    let latest = client.get_calls(
        CallsQuery::new()
            .filter(CallsFilter {
                trace_roots_only: Some(true),
                ..Default::default()
            })
            .sort_by(SortBy::desc("started_at"))
            .limit(3),
    );
    for call in latest {
        let call = call?;
        println!(
            "  {}  {}  {}",
            call.started_at(),
            call.status().as_str(),
            call.ui_url()
        );
    }
    match weave::SqliteServer::default_path() {
        Some(path) => println!(
            "\nStored in {} (set WEAVE_DB_PATH to change)",
            path.display()
        ),
        None => println!("\nStored in memory (WEAVE_DB_PATH=:memory:)"),
    }
    Ok(())
}

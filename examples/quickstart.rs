//! Quickstart: trace a small agent with `#[weave::op]`, then query the trace back.
//!
//! ```text
//! cargo run --example quickstart
//! ```
//!
//! An agent answers a question: it asks an LLM which tool to use, calls the tool (which
//! fails once and is retried), asks the LLM again to write the answer, and returns it. Each
//! function is an op, so each invocation is a call — `async` and plain functions alike. The
//! LLM's replies carry token usage, which rolls up to the agent. The trace goes to the
//! embedded SQLite store (set `WEAVE_DB_PATH` to choose the file); each run adds one more.

use std::time::Duration;

use serde::Serialize;
use weave::{query::field, Call, CallsFilter, CallsQuery, SortBy};

/// What the pretend LLM returns: shaped like OpenAI's response, with `model` and `usage`,
/// which is how Weave finds token usage in an op's output.
#[derive(Debug, Serialize)]
struct Completion {
    model: String,
    text: String,
    usage: Usage,
}

#[derive(Debug, Serialize)]
struct Usage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
}

/// A pretend LLM call (an `async fn` op of kind "llm").
#[weave::op(kind = "llm")]
async fn chat(model: &str, prompt: &str, reply: &str) -> Completion {
    tokio::time::sleep(Duration::from_millis(15)).await;
    let prompt_tokens = prompt.split_whitespace().count() as u64 * 4 / 3 + 8;
    let completion_tokens = reply.split_whitespace().count() as u64 * 4 / 3 + 1;
    Completion {
        model: model.to_string(),
        text: reply.to_string(),
        usage: Usage {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens + completion_tokens,
        },
    }
}

#[derive(Debug, Serialize)]
struct Weather {
    city: String,
    forecast: String,
    temp_c: i32,
}

#[derive(Debug)]
struct ToolError(String);
impl std::fmt::Display for ToolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "weather service error: {}", self.0)
    }
}
impl std::error::Error for ToolError {}

/// A pretend tool (a plain `fn` op) that fails on its first attempt: the `Err` is recorded
/// as the call's exception and returned to the caller unchanged.
#[weave::op(kind = "tool")]
fn get_weather(city: &str, attempt: u32) -> Result<Weather, ToolError> {
    std::thread::sleep(Duration::from_millis(5));
    if attempt == 1 {
        return Err(ToolError("503 Service Unavailable".into()));
    }
    Ok(Weather {
        city: city.to_string(),
        forecast: "light rain".into(),
        temp_c: 14,
    })
}

/// The agent: calls to `chat` and `get_weather` inside it become its children.
#[weave::op(kind = "agent")]
async fn agent(question: &str) -> Result<String, ToolError> {
    chat("gpt-4o-mini", question, "call get_weather(city=\"Paris\")").await;
    let mut weather = get_weather("Paris", 1);
    if weather.is_err() {
        weather = get_weather("Paris", 2);
    }
    let weather = weather?;
    let prompt = format!(
        "Question: {question}\nTool result: {} {}°C",
        weather.forecast, weather.temp_c
    );
    let answer = chat(
        "gpt-4o-mini",
        &prompt,
        "Expect light rain in Paris today, around 14°C. Take an umbrella.",
    )
    .await;
    Ok(answer.text)
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
    // Tracing starts here: the embedded store, and the client root ops are recorded with.
    let (client, _guard) = weave::init("quickstart/weather-agent")?;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a tokio runtime");
    // `capture_call_async` hands back the agent's call with its result (Python's `op.call`).
    let (answer, call) = runtime.block_on(weave::capture_call_async(agent(
        "What's the weather in Paris?",
    )));
    println!("Answer: {}\n", answer.unwrap_or_else(|e| e.to_string()));

    // Query it back: the root with its derived status and rolled-up usage, then the tree.
    let root = client.get_call(call.expect("traced").id())?;
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

    // Ops are versioned by their code: the call names the op version it ran.
    println!("\nop version: {}", root.op_name());

    let roots = CallsFilter {
        trace_roots_only: Some(true),
        ..Default::default()
    };
    let traces = client.get_calls(CallsQuery::new().filter(roots.clone()));
    println!(
        "\n{} agent run(s) stored so far. The latest three:",
        traces.size()?
    );
    let latest = client.get_calls(
        CallsQuery::new()
            .filter(roots)
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
    match (
        weave::server::RemoteServerConfig::from_env(),
        weave::SqliteServer::default_path(),
    ) {
        (Some(remote), _) => println!("\nSent to the trace server {}", remote.base_url),
        (None, Some(path)) => println!(
            "\nStored in {} (set WEAVE_DB_PATH to change)\n\
             See them in a browser: `cargo run -p weave-server --bin weave -- serve`, then open a\n\
             link above; in a terminal: `weave calls`, `weave trace <id>` (`cargo install --path\n\
             weave-server` puts `weave` on your PATH).",
            path.display()
        ),
        (None, None) => println!("\nStored in memory (WEAVE_DB_PATH=:memory:)"),
    }
    Ok(())
}

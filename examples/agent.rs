//! A tool-calling agent loop with a fake LLM that reports token usage; a price for the model;
//! the run queried back with its costs and printed as a tree.
//!
//! ```text
//! cargo run --example agent
//! ```
//!
//! The agent asks the LLM what to do next until the LLM answers instead of calling a tool.
//! Tools run concurrently in tokio tasks (`weave::spawn` keeps them children of the step
//! that started them). With a price added for the model, every call's `summary.weave.costs`
//! is computed when it is read with costs (`get_call_with(id, true)`).

use std::time::Duration;

use serde::Serialize;
use serde_json::json;
use weave::{Call, InitOptions};

#[derive(Debug, Clone, Serialize)]
struct ToolCall {
    name: String,
    argument: String,
}

/// What the fake LLM answers: tool calls to make, or the final text.
#[derive(Debug, Serialize)]
struct LlmReply {
    model: &'static str,
    tool_calls: Vec<ToolCall>,
    text: Option<String>,
    usage: serde_json::Value,
}

const MODEL: &str = "acme-llm-1";

/// The fake LLM: asks for the weather and the time of two cities, then answers.
#[weave::op(kind = "llm")]
async fn llm(messages: &[String]) -> LlmReply {
    tokio::time::sleep(Duration::from_millis(10)).await;
    let prompt_tokens = messages.iter().map(|m| m.len() as u64 / 4 + 3).sum::<u64>();
    let (tool_calls, text) = if messages.len() == 1 {
        (
            ["Paris", "Tokyo"]
                .iter()
                .flat_map(|city| {
                    [
                        ToolCall {
                            name: "weather".into(),
                            argument: city.to_string(),
                        },
                        ToolCall {
                            name: "local_time".into(),
                            argument: city.to_string(),
                        },
                    ]
                })
                .collect(),
            None,
        )
    } else {
        (
            Vec::new(),
            Some(format!(
                "Here is what I found: {}",
                messages[1..].join("; ")
            )),
        )
    };
    let completion_tokens = 20 + 8 * tool_calls.len() as u64;
    LlmReply {
        model: MODEL,
        tool_calls,
        text,
        usage: json!({
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }),
    }
}

#[weave::op(kind = "tool")]
async fn weather(city: String) -> Result<String, String> {
    tokio::time::sleep(Duration::from_millis(5)).await;
    match city.as_str() {
        "Paris" => Ok("Paris: 14°C, light rain".into()),
        "Tokyo" => Ok("Tokyo: 21°C, clear".into()),
        other => Err(format!("no weather station in {other}")),
    }
}

#[weave::op(kind = "tool")]
async fn local_time(city: String) -> String {
    tokio::time::sleep(Duration::from_millis(3)).await;
    let offset = if city == "Tokyo" { 9 } else { 1 };
    format!("{city}: UTC+{offset}")
}

/// One step: the LLM, then its tool calls run concurrently.
#[weave::op(display_name = step_name)]
async fn step(index: usize, messages: Vec<String>) -> (Vec<String>, Option<String>) {
    let reply = llm(&messages).await;
    let tasks: Vec<_> = reply
        .tool_calls
        .iter()
        .cloned()
        .map(|call| {
            weave::spawn(async move {
                match call.name.as_str() {
                    "weather" => weather(call.argument).await.unwrap_or_else(|e| e),
                    _ => local_time(call.argument).await,
                }
            })
        })
        .collect();
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.expect("tool task"));
    }
    let _ = index;
    (results, reply.text)
}

fn step_name(call: &Call) -> String {
    format!("step {}", call.inputs()["index"])
}

#[weave::op(kind = "agent")]
async fn run_agent(question: String) -> String {
    let mut messages = vec![question];
    for i in 0..5 {
        let (results, text) = step(i, messages.clone()).await;
        if let Some(text) = text {
            return text;
        }
        messages.extend(results);
    }
    "gave up".into()
}

fn print_tree(client: &weave::WeaveClient, call: &Call, depth: usize) -> weave::Result<()> {
    let call = client.get_call_with(call.id(), true)?;
    let cost: f64 = call
        .weave_summary()
        .and_then(|w| w.get("costs").cloned())
        .and_then(|c| c.as_object().cloned())
        .map(|m| {
            m.values()
                .map(|c| {
                    c["prompt_tokens_total_cost"].as_f64().unwrap_or(0.0)
                        + c["completion_tokens_total_cost"].as_f64().unwrap_or(0.0)
                })
                .sum()
        })
        .unwrap_or(0.0);
    let name = call
        .display_name()
        .unwrap_or_else(|| call.func_name().to_string());
    println!(
        "{:indent$}{:<14} {:<16} ${:.6}",
        "",
        name,
        call.status().as_str(),
        cost,
        indent = depth * 2
    );
    let mut children: Vec<Call> = call.children().collect::<weave::Result<_>>()?;
    children.sort_by_key(|c| c.started_at());
    for child in &children {
        print_tree(client, child, depth + 1)?;
    }
    Ok(())
}

fn main() -> weave::Result<()> {
    let (client, _guard) = weave::init_with(
        "examples/agent",
        InitOptions::default().with_install_subscriber(false),
    )?;
    // $ per token, as Python's client.add_cost(llm_id, prompt_token_cost, completion_token_cost).
    client.add_cost(MODEL, 0.000_002_5, 0.000_01)?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .expect("a tokio runtime");
    let (answer, call) = runtime.block_on(weave::capture_call_async(run_agent(
        "What is the weather and local time in Paris and Tokyo?".into(),
    )));
    println!("{answer}\n");

    let root = call.expect("traced");
    print_tree(&client, &root, 0)?;
    let root = client.get_call_with(root.id(), true)?;
    println!(
        "\ntokens by model: {}",
        serde_json::Value::Object(root.usage())
    );
    Ok(())
}

//! Calls over HTTP: ops and spans recorded, read back as a tree, queried, renamed, deleted.

use serde::Serialize;
use serde_json::json;
use tracing_subscriber::layer::SubscriberExt;
use weave::query::field;
use weave::{CallsFilter, CallsQuery, SortBy, TraceStatus, WeaveLayer};

use crate::common::{calls, remote_client};

#[derive(Serialize)]
struct Reply {
    model: &'static str,
    text: String,
    usage: serde_json::Value,
}

#[weave::op(kind = "llm")]
fn llm(prompt: &str) -> Reply {
    Reply {
        model: "gpt-4o",
        text: prompt.to_uppercase(),
        usage: json!({"prompt_tokens": 7, "completion_tokens": 2}),
    }
}

#[weave::op]
fn tool(city: &str) -> Result<String, String> {
    if city.is_empty() {
        Err("no city".into())
    } else {
        Ok(format!("{city}: sunny"))
    }
}

#[tracing::instrument(ret)]
fn lookup(id: u32) -> u32 {
    id + 1
}

#[weave::op(kind = "agent")]
fn agent(question: &str) -> String {
    let a = llm(question).text;
    let _ = tool("");
    let b = tool("Paris").unwrap();
    let n = lookup(41);
    format!("{a} {b} {n}")
}

#[test]
fn a_trace_of_ops_and_spans_round_trips_over_http() {
    let client = remote_client();
    let subscriber = tracing_subscriber::registry().with(WeaveLayer::with_client(client.clone()));
    let (answer, call) = tracing::subscriber::with_default(subscriber, || {
        let root = client.create_call("test_root", json!({})).unwrap();
        let out = weave::capture_call(|| agent("hi"));
        client.finish_call(&root, ()).unwrap();
        out
    });
    assert_eq!(answer, "HI Paris: sunny 42");
    let agent_call = client.get_call(call.unwrap().id()).unwrap();
    assert_eq!(agent_call.func_name(), "agent");
    assert!(agent_call
        .op_name()
        .starts_with(&format!("weave:///{}/op/agent:", client.project_id())));
    assert_eq!(agent_call.inputs()["question"], "hi");
    assert_eq!(agent_call.output(), json!("HI Paris: sunny 42"));
    assert_eq!(agent_call.status(), TraceStatus::DescendantError);
    assert_eq!(agent_call.usage()["gpt-4o"]["prompt_tokens"], 7);
    assert_eq!(agent_call.attributes()["weave"]["kind"], "agent");

    let children: Vec<_> = agent_call
        .children()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let names: Vec<&str> = children.iter().map(|c| c.func_name()).collect();
    assert_eq!(names, ["llm", "tool", "tool", "lookup"]);
    assert_eq!(children[1].status(), TraceStatus::Error);
    assert_eq!(children[1].exception_info().unwrap().message, "no city");
    assert_eq!(children[3].output(), json!(42));
    assert_eq!(children[3].inputs()["id"], 41);

    // The op's code went through /file/create and comes back through /file/content.
    let code = client.op_code(agent_call.op_name()).unwrap();
    assert!(
        code.contains("fn agent(question: &str) -> String"),
        "{code}"
    );
}

#[test]
fn queries_filters_sorting_paging_and_counts_over_http() {
    let client = remote_client();
    for i in 0..25 {
        let c = client
            .create_call_with(
                if i % 5 == 0 { "rare" } else { "common" },
                json!({"i": i}),
                weave::CallOptions::new().use_stack(false),
            )
            .unwrap();
        if i % 7 == 0 {
            client.fail_call(&c, format!("boom {i}")).unwrap();
        } else {
            client.finish_call(&c, json!({"double": i * 2})).unwrap();
        }
    }
    let all = client.get_calls(CallsQuery::new());
    assert_eq!(all.size().unwrap(), 25);
    let failed = calls(
        &client,
        CallsQuery::new().query(field("summary.weave.status").eq("error")),
    );
    assert_eq!(failed.len(), 4);
    let big = calls(
        &client,
        CallsQuery::new()
            .query(field("output.double").gt(30))
            .sort_by(SortBy::desc("inputs.i"))
            .limit(3),
    );
    let is: Vec<_> = big.iter().map(|c| c.inputs()["i"].clone()).collect();
    assert_eq!(is, [json!(24), json!(23), json!(22)]);
    let rare_ref = calls(&client, CallsQuery::new().limit(1))[0]
        .op_name()
        .to_string();
    let rare = calls(
        &client,
        CallsFilter {
            op_names: Some(vec![rare_ref.clone()]),
            ..Default::default()
        },
    );
    assert_eq!(rare.len(), 5);
    // Paging through the stream, a small page at a time.
    let paged: Vec<_> = client
        .get_calls(CallsQuery::new().sort_by(SortBy::asc("inputs.i")))
        .page_size(4)
        .map(|c| c.unwrap().inputs()["i"].as_i64().unwrap())
        .collect();
    assert_eq!(paged, (0..25).collect::<Vec<_>>());
}

#[test]
fn rename_delete_and_not_found_over_http() {
    let client = remote_client();
    let root = client.create_call("root", json!({})).unwrap();
    let child = client.create_call("child", json!({})).unwrap();
    client.finish_call(&child, 1).unwrap();
    client.finish_call(&root, 2).unwrap();
    let stored = client.get_call(root.id()).unwrap();
    stored.set_display_name("renamed").unwrap();
    assert_eq!(
        client
            .get_call(root.id())
            .unwrap()
            .display_name()
            .as_deref(),
        Some("renamed")
    );
    stored.delete().unwrap();
    assert!(client.get_call(child.id()).unwrap_err().is_not_found());
    assert!(client.get_call(root.id()).unwrap_err().is_not_found());
    assert_eq!(client.get_calls(CallsQuery::new()).size().unwrap(), 0);
}

/// The reference server (the weave package's SQLite server) drops a call's end that arrives
/// before its start, and does not say it merges them in any order: the writer sends its
/// batches one at a time, in order.
#[test]
fn batches_go_to_the_reference_server_one_at_a_time() {
    use weave::server::{RemoteServer, RemoteServerConfig};
    use weave::TraceServer;
    let server = crate::common::RefServer::shared();
    let backend = RemoteServer::new(RemoteServerConfig::new(&server.url)).unwrap();
    assert_eq!(
        backend.server_info().unwrap().call_batches_in_any_order,
        None
    );
    assert_eq!(backend.concurrent_call_batches(), 1);
}

/// A GenAI span (fields as rig and genai record them) under a parent span: the server gets
/// the LLM call's usage by model and its response fields as output, and the parent's
/// rolled-up usage — kept as numbers on the traced thread, written as JSON by the writer.
#[test]
fn genai_spans_arrive_with_usage_output_and_rollup() {
    let client = remote_client();
    let subscriber = tracing_subscriber::registry().with(WeaveLayer::with_client(client.clone()));
    tracing::subscriber::with_default(subscriber, || {
        let agent = tracing::info_span!("agent");
        let _in_agent = agent.enter();
        let chat = tracing::info_span!(
            "chat",
            gen_ai.request.model = "gpt-4o",
            gen_ai.response.model = tracing::field::Empty,
            gen_ai.response.id = tracing::field::Empty,
            gen_ai.usage.input_tokens = tracing::field::Empty,
            gen_ai.usage.output_tokens = tracing::field::Empty,
        );
        chat.record("gen_ai.response.model", "gpt-4o-2024-08-06");
        chat.record("gen_ai.response.id", "chatcmpl-7");
        chat.record("gen_ai.usage.input_tokens", 12u64);
        chat.record("gen_ai.usage.output_tokens", 5u64);
        chat.in_scope(|| {});
    });
    client.flush();
    let all = calls(&client, CallsQuery::new());
    let chat = all.iter().find(|c| c.func_name() == "chat").expect("chat");
    let agent = all
        .iter()
        .find(|c| c.func_name() == "agent")
        .expect("agent");
    let usage = json!({"gpt-4o-2024-08-06": {
        "input_tokens": 12, "output_tokens": 5, "total_tokens": 17, "requests": 1
    }});
    assert_eq!(serde_json::Value::Object(chat.usage()), usage);
    assert_eq!(
        chat.output(),
        json!({"gen_ai.response.model": "gpt-4o-2024-08-06", "gen_ai.response.id": "chatcmpl-7"})
    );
    assert_eq!(chat.summary().unwrap()["status_counts"]["success"], 1);
    assert_eq!(serde_json::Value::Object(agent.usage()), usage);
}

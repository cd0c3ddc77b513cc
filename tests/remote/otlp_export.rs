//! `OtlpExporter`: calls written to the embedded store and sent as OTLP spans to a Weave
//! server's `/otel/v1/traces` — the reference server (the weave package's own ingest) and
//! `weave serve` — arrive there as the same calls.

use std::sync::Arc;

use serde_json::json;
use weave::server::otlp::{OtlpConfig, OtlpExporter};
use weave::server::{RemoteServer, RemoteServerConfig};
use weave::{Call, CallOptions, CallsQuery, Exception, SqliteServer, WeaveClient};
use weave_server::{BackgroundServer, ServeOptions};

use crate::common::RefServer;

const ENTITY: &str = "remote-tests";

/// A small agent trace: a root with inputs and an output, an LLM call with usage, a tool call
/// that fails, in a thread with a display name. Returns the calls as the local store has them.
fn record(client: &WeaveClient) -> Vec<Call> {
    let root = client
        .create_call_with(
            "agent",
            json!({"question": "rain in Paris?", "n": 3}),
            CallOptions::new()
                .display_name("Agent run")
                .thread_id("conversation-1"),
        )
        .unwrap();
    let llm = client
        .create_call("llm", json!({"prompt": "rain in Paris?"}))
        .unwrap();
    client
        .finish_call(
            &llm,
            json!({
                "model": "gpt-4o",
                "usage": {"prompt_tokens": 12, "completion_tokens": 3},
                "text": "call get_weather",
            }),
        )
        .unwrap();
    let tool = client
        .create_call("get_weather", json!({"city": "Paris", "days": [1, 2]}))
        .unwrap();
    client
        .fail_call(&tool, Exception::new("TimeoutError", "no reply in 30 s"))
        .unwrap();
    client
        .finish_call(&root, "sorry, no weather today")
        .unwrap();
    client.flush();
    client
        .get_calls(CallsQuery::new())
        .collect::<Result<_, _>>()
        .unwrap()
}

/// A call id as the span id it is exported under.
fn span_id(id: &str) -> String {
    let hex: String = id.chars().filter(|c| *c != '-').collect();
    hex[hex.len() - 16..].to_string()
}

fn exported_to(server_url: &str) {
    let project = format!("otlp-{}", &weave::generate_id()[24..]);
    let export = OtlpExporter::new(
        Arc::new(SqliteServer::in_memory().unwrap()),
        OtlpConfig::new(format!("{server_url}/otel/v1/traces")),
    )
    .unwrap();
    let export = Arc::new(export);
    let client = WeaveClient::new(ENTITY, &project, export.clone(), false).unwrap();
    let local = record(&client);
    assert_eq!(local.len(), 3);
    assert_eq!(export.dropped_spans(), 0);

    let http = RemoteServer::new(RemoteServerConfig::new(server_url)).unwrap();
    let remote_client = WeaveClient::new(ENTITY, &project, Arc::new(http), false).unwrap();
    let remote: Vec<Call> = remote_client
        .get_calls(CallsQuery::new())
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(remote.len(), 3, "{server_url}");
    for mine in &local {
        let theirs = remote
            .iter()
            .find(|c| c.id() == span_id(mine.id()))
            .unwrap_or_else(|| panic!("{} not exported", mine.func_name()));
        let what = format!("{} on {server_url}", mine.func_name());
        // The op's name (its versioned ref is not carried).
        assert_eq!(theirs.op_name(), mine.func_name(), "{what}");
        assert_eq!(
            theirs.trace_id(),
            mine.trace_id().replace('-', ""),
            "{what}"
        );
        assert_eq!(
            theirs.parent_id(),
            mine.parent_id().map(span_id).as_deref(),
            "{what}"
        );
        assert_eq!(theirs.inputs(), mine.inputs(), "{what}");
        // No output reads back as `{}`: the Weave server's ingest makes it so.
        let output = match mine.output() {
            serde_json::Value::Null => json!({}),
            other => other,
        };
        assert_eq!(theirs.output(), output, "{what}");
        assert_eq!(theirs.exception(), mine.exception(), "{what}");
        // Status counts are not carried: a failed descendant does not show on the ancestor.
        let status = match mine.status() {
            weave::TraceStatus::DescendantError => weave::TraceStatus::Success,
            other => other,
        };
        assert_eq!(theirs.status(), status, "{what}");
        assert_eq!(theirs.display_name(), mine.display_name(), "{what}");
        assert_eq!(theirs.thread_id(), mine.thread_id(), "{what}");
        assert_eq!(
            theirs.attributes()["weave"],
            mine.attributes()["weave"],
            "{what}"
        );
        let micros = |c: &Call| c.started_at().as_nanos() / 1000;
        assert_eq!(micros(theirs), micros(mine), "{what}");
        let ended = |c: &Call| c.ended_at().unwrap().as_nanos() / 1000;
        assert_eq!(ended(theirs), ended(mine), "{what}");
        for (model, usage) in mine.usage() {
            for key in ["prompt_tokens", "completion_tokens"] {
                assert_eq!(
                    theirs.usage()[&model][key],
                    usage[key],
                    "{what}: usage[{model}][{key}]"
                );
            }
        }
    }
}

#[test]
fn calls_exported_to_the_reference_server_arrive_as_the_same_calls() {
    exported_to(&RefServer::shared().url);
}

#[test]
fn calls_exported_to_weave_serve_arrive_as_the_same_calls() {
    let served = BackgroundServer::start(
        Arc::new(SqliteServer::in_memory().unwrap()),
        ServeOptions::default().with_port(0),
    )
    .unwrap();
    exported_to(served.url());
}

#[test]
fn an_unreachable_endpoint_drops_spans_counted_and_keeps_the_store() {
    // A port nothing listens on: connection refused, retried, then dropped.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let export = Arc::new(
        OtlpExporter::new(
            Arc::new(SqliteServer::in_memory().unwrap()),
            OtlpConfig::new(format!("http://127.0.0.1:{port}/v1/traces")),
        )
        .unwrap(),
    );
    let client = WeaveClient::new(ENTITY, "otlp-down", export.clone(), false).unwrap();
    let local = record(&client);
    assert_eq!(local.len(), 3, "the local store has every call");
    assert_eq!(export.dropped_spans(), 3);
}

#[test]
fn bad_endpoints_and_headers_are_named() {
    let store = || Arc::new(SqliteServer::in_memory().unwrap()) as Arc<dyn weave::TraceServer>;
    let err = OtlpExporter::new(store(), OtlpConfig::new("not a url")).unwrap_err();
    assert!(err.to_string().contains("not a url"), "{err}");
    let err = OtlpExporter::new(store(), OtlpConfig::new("ftp://host/v1/traces")).unwrap_err();
    assert!(err.to_string().contains("http(s)"), "{err}");
    let err = OtlpExporter::new(
        store(),
        OtlpConfig::new("http://127.0.0.1:1/v1/traces").header("bad header", "x"),
    )
    .unwrap_err();
    assert!(err.to_string().contains("bad header"), "{err}");
}

//! `POST /otel/v1/traces` end to end: `weave serve` started in-process on a SQLite file, OTLP
//! requests built with the opentelemetry-proto types (protobuf and JSON), the calls read back
//! through the protocol (`/calls/stream_query`).
//!
//! The expected calls are the Weave server's own answers: the same spans fed through the
//! `weave` package's `SqliteTraceServer.otel_export` (weave 0.52.42) and read back with
//! `calls_query`. Where this server differs on purpose, the test says so.

use std::io::Write;
use std::sync::Arc;

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span, ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;
use serde_json::{json, Value};
use weave_core::SqliteServer;
use weave_server::{BackgroundServer, ServeOptions};
use weave_testkit::Rng;

const TRACE: &str = "5b8efff798038103d269b633813fc60c";
const ROOT: &str = "eee19b7ec3c1b173";
const CHAT: &str = "eee19b7ec3c1b174";

struct Fixture {
    _dir: tempfile::TempDir,
    server: BackgroundServer,
    http: reqwest::blocking::Client,
}

impl Fixture {
    fn start() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteServer::open(dir.path().join("weave.sqlite")).unwrap();
        let server =
            BackgroundServer::start(Arc::new(store), ServeOptions::default().with_port(0)).unwrap();
        Fixture {
            _dir: dir,
            server,
            http: reqwest::blocking::Client::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.url())
    }

    /// Posts `body` to `/otel/v1/traces` with `headers`.
    fn post(&self, body: Vec<u8>, headers: &[(&str, &str)]) -> reqwest::blocking::Response {
        let mut req = self.http.post(self.url("/otel/v1/traces")).body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().unwrap()
    }

    /// Exports `request` as protobuf into `project`; the decoded answer.
    fn export_protobuf(
        &self,
        request: &ExportTraceServiceRequest,
        project: &str,
    ) -> ExportTraceServiceResponse {
        let r = self.post(
            request.encode_to_vec(),
            &[
                ("content-type", "application/x-protobuf"),
                ("project_id", project),
            ],
        );
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "application/x-protobuf");
        ExportTraceServiceResponse::decode(r.bytes().unwrap()).unwrap()
    }

    /// The project's calls, by start time, as `/calls/stream_query` answers them.
    fn calls(&self, project: &str) -> Vec<Value> {
        let r = self
            .http
            .post(self.url("/calls/stream_query"))
            .json(&json!({
                "project_id": project,
                "sort_by": [{"field": "started_at", "direction": "asc"}],
            }))
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
        r.text()
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn call(&self, project: &str, id: &str) -> Value {
        self.calls(project)
            .into_iter()
            .find(|c| c["id"] == id)
            .unwrap_or_else(|| panic!("no call {id} in {project}"))
    }
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
    }
}

fn s(v: &str) -> any_value::Value {
    any_value::Value::StringValue(v.into())
}

fn int(v: i64) -> any_value::Value {
    any_value::Value::IntValue(v)
}

fn span(id: &str, parent: Option<&str>, name: &str, times: (u64, u64)) -> Span {
    Span {
        trace_id: hex(TRACE),
        span_id: hex(id),
        parent_span_id: parent.map(hex).unwrap_or_default(),
        name: name.into(),
        kind: span::SpanKind::Internal as i32,
        start_time_unix_nano: times.0,
        end_time_unix_nano: times.1,
        ..Default::default()
    }
}

fn request(resource: Vec<KeyValue>, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: resource,
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// An agent run and the GenAI chat under it: usage, prompt and completion, W&B thread and
/// display name, an ERROR status and an event.
fn agent_trace() -> ExportTraceServiceRequest {
    let mut root = span(
        ROOT,
        None,
        "agent.run",
        (1_700_000_000_000_000_000, 1_700_000_003_000_000_000),
    );
    root.kind = span::SpanKind::Server as i32;
    root.attributes = vec![
        kv("input", s(r#"{"question": "hi", "n": 2}"#)),
        kv("output", s("hello")),
    ];
    root.status = Some(Status {
        code: 1,
        message: String::new(),
    });
    let mut chat = span(
        CHAT,
        Some(ROOT),
        "chat gpt-4o",
        (1_700_000_000_123_456_789, 1_700_000_001_500_000_000),
    );
    chat.kind = span::SpanKind::Client as i32;
    chat.attributes = vec![
        kv("gen_ai.system", s("openai")),
        kv("gen_ai.request.model", s("gpt-4o")),
        kv("gen_ai.response.model", s("gpt-4o-2024-08-06")),
        kv("gen_ai.usage.input_tokens", int(10)),
        kv("gen_ai.usage.output_tokens", s("20")),
        kv("gen_ai.prompt.0.role", s("user")),
        kv("gen_ai.prompt.0.content", s("hi")),
        kv("gen_ai.completion.0.role", s("assistant")),
        kv("gen_ai.completion.0.content", s("hello")),
        kv("wandb.display_name", s("Chat")),
        kv("wandb.thread_id", s("thread-1")),
        kv("wandb.is_turn", any_value::Value::BoolValue(true)),
    ];
    chat.events = vec![span::Event {
        time_unix_nano: 1_700_000_000_200_000_000,
        name: "retry".into(),
        attributes: vec![kv("attempt", int(1))],
        dropped_attributes_count: 0,
    }];
    chat.status = Some(Status {
        code: 2,
        message: "rate limited".into(),
    });
    request(vec![kv("service.name", s("svc"))], vec![root, chat])
}

#[test]
fn genai_spans_in_protobuf_are_calls_as_the_weave_server_stores_them() {
    let f = Fixture::start();
    let res = f.export_protobuf(&agent_trace(), "ent/proj");
    assert_eq!(res.partial_success, None, "everything accepted");

    let calls = f.calls("ent/proj");
    assert_eq!(calls.len(), 2);
    let (root, chat) = (&calls[0], &calls[1]);

    // The root: `input` (one JSON object) is the inputs, `output` the output.
    assert_eq!(root["id"], ROOT);
    assert_eq!(root["trace_id"], TRACE);
    assert_eq!(root["parent_id"], Value::Null);
    assert_eq!(root["op_name"], "agent.run");
    assert_eq!(root["started_at"], "2023-11-14T22:13:20.000000Z");
    assert_eq!(root["ended_at"], "2023-11-14T22:13:23.000000Z");
    assert_eq!(root["inputs"], json!({"question": "hi", "n": 2}));
    assert_eq!(root["output"], "hello");
    assert_eq!(root["exception"], Value::Null);
    assert_eq!(root["summary"]["weave"]["status"], "success");
    assert_eq!(
        root["summary"]["usage"],
        json!({"usage": {
            "prompt_tokens": null, "input_tokens": null, "completion_tokens": null,
            "output_tokens": null, "requests": null, "total_tokens": null,
            "cache_creation_input_tokens": null, "cache_read_input_tokens": null,
        }})
    );
    // Inputs were found, so the attributes are only the dump.
    assert_eq!(
        root["attributes"],
        json!({"otel_span": {
            "name": "agent.run",
            "context": {"trace_id": TRACE, "span_id": ROOT, "trace_state": ""},
            "kind": "SERVER",
            "parent_id": null,
            "start_time": "2023-11-14T22:13:20",
            "end_time": "2023-11-14T22:13:23",
            "status": {"code": "OK", "message": ""},
            "attributes": {"input": {"question": "hi", "n": 2}, "output": "hello"},
            "events": [],
            "links": [],
            "resource": {"attributes": {"service": {"name": "svc"}}, "dropped_attributes_count": 0},
        }})
    );

    // The chat, as the Weave server has it.
    assert_eq!(chat["id"], CHAT);
    assert_eq!(chat["trace_id"], TRACE);
    assert_eq!(chat["parent_id"], ROOT);
    assert_eq!(chat["op_name"], "chat gpt-4o");
    assert_eq!(chat["display_name"], "Chat");
    assert_eq!(chat["thread_id"], "thread-1");
    assert_eq!(chat["turn_id"], CHAT, "wandb.is_turn: the span is a turn");
    // 1700000000.123456789 s, to the microsecond as a double rounds it.
    assert_eq!(chat["started_at"], "2023-11-14T22:13:20.123457Z");
    assert_eq!(chat["ended_at"], "2023-11-14T22:13:21.500000Z");
    assert_eq!(
        chat["inputs"],
        json!({"gen_ai.prompt": [{"role": "user", "content": "hi"}]})
    );
    assert_eq!(
        chat["output"],
        json!({"gen_ai.completion": [{"role": "assistant", "content": "hello"}]})
    );
    assert_eq!(chat["exception"], "rate limited");
    assert_eq!(chat["summary"]["weave"]["status"], "error");
    assert_eq!(chat["summary"]["weave"]["latency_ms"], 1376);
    // Usage under the response model, totals added up.
    assert_eq!(
        chat["summary"]["usage"],
        json!({"gpt-4o-2024-08-06": {
            "prompt_tokens": null, "input_tokens": 10, "completion_tokens": null,
            "output_tokens": 20, "requests": null, "total_tokens": 30,
            "cache_creation_input_tokens": null, "cache_read_input_tokens": null,
        }})
    );
    let mut attributes = chat["attributes"].clone();
    let otel_span = attributes.as_object_mut().unwrap().remove("otel_span");
    assert_eq!(
        attributes,
        json!({
            "system": "openai",
            "model": "gpt-4o-2024-08-06",
            "model_parameters": {"model": "gpt-4o"},
        })
    );
    assert_eq!(
        otel_span.unwrap(),
        json!({
            "name": "chat gpt-4o",
            "context": {"trace_id": TRACE, "span_id": CHAT, "trace_state": ""},
            "kind": "CLIENT",
            "parent_id": ROOT,
            "start_time": "2023-11-14T22:13:20.123457",
            "end_time": "2023-11-14T22:13:21.500000",
            "status": {"code": "ERROR", "message": "rate limited"},
            "attributes": {
                "gen_ai": {
                    "system": "openai",
                    "request": {"model": "gpt-4o"},
                    "response": {"model": "gpt-4o-2024-08-06"},
                    "usage": {"input_tokens": 10, "output_tokens": "20"},
                    "prompt": {"0": {"role": "user", "content": "hi"}},
                    "completion": {"0": {"role": "assistant", "content": "hello"}},
                },
                "wandb": {"display_name": "Chat", "thread_id": "thread-1", "is_turn": true},
            },
            "events": [{
                "name": "retry",
                "timestamp": 1_700_000_000_200_000_000u64,
                "attributes": {"attempt": 1},
                "dropped_attributes_count": 0,
            }],
            "links": [],
            "resource": {"attributes": {"service": {"name": "svc"}}, "dropped_attributes_count": 0},
        })
    );

    // The same under /traces, and again: an export is an upsert, not a duplicate.
    let r = f
        .http
        .post(f.url("/traces/otel/v1/traces"))
        .header("project_id", "ent/proj")
        .body(agent_trace().encode_to_vec())
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(f.calls("ent/proj").len(), 2);
}

#[test]
fn openinference_json_routed_by_resource_attributes() {
    let f = Fixture::start();
    // OTLP/JSON as the spec writes it: hex ids, 64-bit integers as strings, enums as numbers
    // (and here one by name, as protobuf's JSON mapping allows).
    let body = json!({"resourceSpans": [{
        "resource": {"attributes": [
            {"key": "wandb.entity", "value": {"stringValue": "ent"}},
            {"key": "wandb.project", "value": {"stringValue": "oi"}},
        ]},
        "scopeSpans": [{"scope": {"name": "openinference"}, "spans": [{
            "traceId": TRACE, "spanId": "0000000000000abc", "name": "ChatCompletion",
            "kind": "SPAN_KIND_INTERNAL",
            "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": 1700000000250000000u64,
            "attributes": [
                {"key": "openinference.span.kind", "value": {"stringValue": "LLM"}},
                {"key": "llm.model_name", "value": {"stringValue": "claude-3"}},
                {"key": "llm.invocation_parameters", "value": {"stringValue": "{\"temperature\": 0}"}},
                {"key": "input.value", "value": {"stringValue": "{\"messages\": [{\"role\": \"user\", \"content\": \"2+2?\"}]}"}},
                {"key": "output.value", "value": {"stringValue": "4"}},
                {"key": "llm.token_count.prompt", "value": {"intValue": "5"}},
                {"key": "llm.token_count.completion", "value": {"intValue": 1}},
                {"key": "gen_ai.conversation.id", "value": {"stringValue": "conv-9"}},
                {"key": "wandb.attributes", "value": {"stringValue": "{\"team\": \"a\"}"}},
            ],
            "status": {"code": 1},
        }]}],
    }]});
    let r = f.post(
        serde_json::to_vec(&body).unwrap(),
        &[("content-type", "application/json")],
    );
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    assert_eq!(r.json::<Value>().unwrap(), json!({}));

    let c = f.call("ent/oi", "0000000000000abc");
    assert_eq!(c["op_name"], "ChatCompletion");
    assert_eq!(c["parent_id"], Value::Null);
    assert_eq!(
        c["inputs"],
        json!({"input.value": {"messages": [{"role": "user", "content": "2+2?"}]}})
    );
    assert_eq!(c["output"], json!({"output.value": "4"}));
    // gen_ai.conversation.id is both the thread and a turn.
    assert_eq!(c["thread_id"], "conv-9");
    assert_eq!(c["turn_id"], "0000000000000abc");
    assert_eq!(c["summary"]["weave"]["latency_ms"], 250);
    assert_eq!(
        c["summary"]["usage"]["claude-3"],
        json!({
            "prompt_tokens": 5, "input_tokens": null, "completion_tokens": 1,
            "output_tokens": null, "requests": null, "total_tokens": 6,
            "cache_creation_input_tokens": null, "cache_read_input_tokens": null,
        })
    );
    let mut attributes = c["attributes"].clone();
    let otel_span = attributes
        .as_object_mut()
        .unwrap()
        .remove("otel_span")
        .unwrap();
    assert_eq!(
        otel_span["attributes"],
        json!({
            "openinference": {"span": {"kind": "LLM"}},
            "llm": {
                "model_name": "claude-3",
                "invocation_parameters": {"temperature": 0},
                "token_count": {"prompt": 5, "completion": 1},
            },
            "input": {"value": {"messages": [{"role": "user", "content": "2+2?"}]}},
            "output": {"value": "4"},
            "gen_ai": {"conversation": {"id": "conv-9"}},
            "wandb": {"attributes": {"team": "a"}},
        })
    );
    assert_eq!(
        otel_span["resource"]["attributes"],
        json!({"wandb": {"entity": "ent", "project": "oi"}})
    );
    assert_eq!(otel_span["kind"], "INTERNAL");
    assert_eq!(otel_span["end_time"], "2023-11-14T22:13:20.250000");
    assert_eq!(
        attributes,
        json!({
            "kind": "LLM",
            "model": "claude-3",
            "model_parameters": {"temperature": 0},
            "team": "a",
        })
    );
}

#[test]
fn unrecognised_attributes_are_kept_and_single_inputs_unnested() {
    let f = Fixture::start();
    let mut plain = span(
        "0000000000000001",
        None,
        "plain",
        (1_700_000_000_000_000_000, 1_700_000_000_000_999_999),
    );
    plain.attributes = vec![
        kv("foo.bar", int(3)),
        kv(
            "foo.list",
            any_value::Value::ArrayValue(opentelemetry_proto::tonic::common::v1::ArrayValue {
                values: vec![
                    AnyValue {
                        value: Some(s("a")),
                    },
                    AnyValue {
                        value: Some(any_value::Value::DoubleValue(2.5)),
                    },
                ],
            }),
        ),
        kv("b", any_value::Value::BytesValue(vec![1, 2, 3])),
    ];
    let mut inputs = span(
        "0000000000000002",
        Some("0000000000000001"),
        "inp",
        (1_700_000_000_000_000_000, 1_700_000_002_000_000_000),
    );
    inputs.attributes = vec![
        kv("input", s(r#"{"x": {"0": {"1": 5, "0": 4}}, "y": {}}"#)),
        kv("output", s("done")),
        kv("llm.token_count.prompt", int(7)),
        kv("llm.token_count.completion", int(8)),
        kv("wandb.attributes", s(r#"{"tag": 1}"#)),
    ];
    let res = f.export_protobuf(&request(vec![], vec![plain, inputs]), "e/p");
    assert_eq!(res.partial_success, None);

    // Nothing the conventions know: every attribute is kept.
    let c = f.call("e/p", "0000000000000001");
    assert_eq!(c["inputs"], json!({}));
    assert_eq!(c["output"], json!({}));
    // 1700000000.000999999 s is 1700000000.001 as a double.
    assert_eq!(c["ended_at"], "2023-11-14T22:13:20.001000Z");
    assert_eq!(
        c["attributes"]["foo"],
        json!({"bar": 3, "list": ["a", 2.5]})
    );
    assert_eq!(c["attributes"]["b"], "AQID", "bytes as base64");
    assert_eq!(
        c["attributes"]["otel_span"]["start_time"],
        "2023-11-14T22:13:20"
    );
    assert_eq!(
        c["attributes"]["otel_span"]["status"],
        json!({"code": "UNSET", "message": ""})
    );

    // `input` alone is the inputs; index-keyed objects below it are arrays, in the dump too.
    let c = f.call("e/p", "0000000000000002");
    assert_eq!(c["inputs"], json!({"x": [[4, 5]], "y": []}));
    assert_eq!(c["output"], "done");
    assert_eq!(c["attributes"]["tag"], 1);
    assert_eq!(
        c["attributes"]["otel_span"]["attributes"]["input"],
        json!({"x": [[4, 5]], "y": []})
    );
    assert_eq!(c["summary"]["usage"]["usage"]["total_tokens"], 15);
}

#[test]
fn spans_that_cannot_be_stored_are_reported_not_fatal() {
    let f = Fixture::start();
    let good = span("00000000000000aa", None, "good", (1, 2));
    let mut conflict = span("00000000000000bb", None, "conflict", (1, 2));
    conflict.attributes = vec![kv("a", s("x")), kv("a.b", s("y"))];
    let mut short_id = span("00000000000000cc", None, "short", (1, 2));
    short_id.span_id = vec![1, 2, 3];
    let unnamed = span("00000000000000dd", None, "", (1, 2));
    let mut error = span("00000000000000ee", None, "failed", (1, 2));
    error.status = Some(Status {
        code: 2,
        message: String::new(),
    });
    let req = request(vec![], vec![good, conflict, short_id, unnamed, error]);

    let res = f.export_protobuf(&req, "e/p");
    let partial = res.partial_success.expect("partial success");
    assert_eq!(partial.rejected_spans, 3);
    let msg = &partial.error_message;
    assert!(
        msg.contains(r#"span "conflict""#) && msg.contains(r#""a.b""#),
        "{msg}"
    );
    assert!(msg.contains("span_id must be 8 bytes"), "{msg}");
    assert!(msg.contains("no name"), "{msg}");
    let ids: Vec<Value> = f.calls("e/p").iter().map(|c| c["id"].clone()).collect();
    assert_eq!(ids, [json!("00000000000000aa"), json!("00000000000000ee")]);
    // ERROR without a message is still a failed call (the Weave server stores "" there,
    // which this store reads as no exception).
    let failed = f.call("e/p", "00000000000000ee");
    assert_eq!(failed["exception"], "ERROR");
    assert_eq!(failed["summary"]["weave"]["status"], "error");

    // The same in JSON, through opentelemetry-proto's own OTLP/JSON serializer.
    let r = f.post(
        serde_json::to_vec(&req).unwrap(),
        &[("content-type", "application/json"), ("project_id", "e/q")],
    );
    assert_eq!(r.status(), 200);
    let body: Value = r.json().unwrap();
    assert_eq!(body["partialSuccess"]["rejectedSpans"], 3, "{body}");
    assert_eq!(f.calls("e/q").len(), 2);
}

#[test]
fn gzip_bodies_are_read() {
    let f = Fixture::start();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&agent_trace().encode_to_vec()).unwrap();
    let r = f.post(
        gz.finish().unwrap(),
        &[("content-encoding", "gzip"), ("project_id", "e/gz")],
    );
    assert_eq!(r.status(), 200);
    assert_eq!(f.calls("e/gz").len(), 2);
    let r = f.post(
        b"x".to_vec(),
        &[("content-encoding", "br"), ("project_id", "e/gz")],
    );
    assert_eq!(r.status(), 415);
    let r = f.post(
        b"not gzip".to_vec(),
        &[("content-encoding", "gzip"), ("project_id", "e/gz")],
    );
    assert_eq!(r.status(), 400);
}

#[test]
fn client_mistakes_are_400s_with_a_reason() {
    let f = Fixture::start();
    let spans = agent_trace().encode_to_vec();
    let reason = |r: reqwest::blocking::Response| {
        assert_eq!(r.status(), 400);
        r.json::<Value>().unwrap()["reason"]
            .as_str()
            .unwrap()
            .to_string()
    };
    // No project: neither the header nor the resource attributes.
    let why = reason(f.post(spans.clone(), &[]));
    assert!(
        why.contains("project_id") && why.contains("wandb.entity"),
        "{why}"
    );
    // A project that is not entity/project.
    let why = reason(f.post(spans.clone(), &[("project_id", "just-a-project")]));
    assert!(why.contains("entity/project"), "{why}");
    // Bodies that are not OTLP.
    let p = ("project_id", "e/p");
    let ct_pb = ("content-type", "application/x-protobuf");
    let ct_json = ("content-type", "application/json");
    let why = reason(f.post(vec![0xff, 0xff, 0xff, 0x01], &[p, ct_pb]));
    assert!(why.contains("not an OTLP"), "{why}");
    let why = reason(f.post(b"{not json".to_vec(), &[p, ct_json]));
    assert!(why.contains("not an OTLP"), "{why}");
    let why = reason(f.post(b"[1, 2]".to_vec(), &[p, ct_json]));
    assert!(why.contains("expected an object"), "{why}");
    let why = reason(f.post(
        br#"{"resourceSpans": [{"scopeSpans": [{"spans": [{"spanId": "xyz"}]}]}]}"#.to_vec(),
        &[p, ct_json],
    ));
    assert!(
        why.contains("resourceSpans[0].scopeSpans[0].spans[0].spanId"),
        "{why}"
    );
    // An empty export is a success, with or without a project.
    let r = f.post(Vec::new(), &[ct_pb]);
    assert_eq!(r.status(), 200);
    let r = f.post(b"{}".to_vec(), &[ct_json]);
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().unwrap(), json!({}));
    assert!(f.calls("e/p").is_empty());
}

/// `valid` with a few bytes changed, cut, or repeated.
fn mutate(valid: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut b = valid.to_vec();
    match rng.below(4) {
        0 => {
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(b.len());
                b[i] = rng.next() as u8;
            }
        }
        1 => b.truncate(rng.below(b.len())),
        2 => {
            let i = rng.below(b.len());
            let j = (i + rng.below(64)).min(b.len());
            let chunk = b[i..j].to_vec();
            for _ in 0..1 + rng.below(8) {
                b.splice(i..i, chunk.iter().copied());
            }
        }
        _ => {
            let i = rng.below(b.len());
            b.insert(i, rng.next() as u8);
        }
    }
    b
}

#[test]
fn mutated_exports_are_never_5xx() {
    let f = Fixture::start();
    let pb = agent_trace().encode_to_vec();
    let js = serde_json::to_vec(&agent_trace()).unwrap();
    let mut statuses = std::collections::BTreeMap::new();
    for seed in 1..=400u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let (body, ct) = if seed % 2 == 0 {
            (mutate(&pb, &mut rng), "application/x-protobuf")
        } else {
            (mutate(&js, &mut rng), "application/json")
        };
        let r = f.post(body, &[("content-type", ct), ("project_id", "fz/p")]);
        let status = r.status().as_u16();
        assert!(
            status < 500,
            "seed {seed} ({ct}): {status} {}",
            r.text().unwrap()
        );
        *statuses.entry(status).or_insert(0) += 1;
    }
    assert!(
        statuses.contains_key(&200) && statuses.contains_key(&400),
        "{statuses:?}"
    );
    // The server still answers, and what it stored reads back.
    let r = f.post(pb, &[("project_id", "fz/ok")]);
    assert_eq!(r.status(), 200);
    assert_eq!(f.calls("fz/ok").len(), 2);
    f.calls("fz/p");
}

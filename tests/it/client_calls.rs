//! The call API of `WeaveClient`: create_call, finish_call, fail_call, get_call / call,
//! get_calls / calls, and the call stack (`use_stack`).

use serde_json::json;
use weave::{current_call, CallOptions, CallsFilter, CallsQuery, Exception, TraceStatus};
use weave_testkit::backends;

use crate::common::{calls, TestStore};

#[backends]
fn create_and_finish_round_trip() {
    let s = TestStore::new();
    let call = s
        .client
        .create_call("summarize", json!({"text": "long text", "max_words": 10}))
        .unwrap();
    assert_eq!(call.project_id(), "test-entity/test-project");
    assert_eq!(call.trace_id().len(), 36);
    assert!(call.parent_id().is_none());
    s.client
        .finish_call(&call, json!({"summary": "short"}))
        .unwrap();

    let back = s.client.get_call(call.id()).unwrap();
    // A plain op name is saved as a stub op: op_name is its ref, as in Python.
    assert!(
        back.op_name()
            .starts_with("weave:///test-entity/test-project/op/summarize:"),
        "{}",
        back.op_name()
    );
    assert_eq!(back.op_name(), call.op_name());
    assert_eq!(back.func_name(), "summarize");
    assert_eq!(back.inputs()["max_words"], 10);
    assert_eq!(back.output(), json!({"summary": "short"}));
    assert_eq!(back.status(), TraceStatus::Success);
    assert!(back.exception().is_none());
    assert!(back.ended_at().unwrap() >= back.started_at());
    assert_eq!(back.started_at(), call.started_at());
    assert_eq!(back.attributes()["weave"]["source"], "rust-sdk");
    let weave = back.weave_summary().unwrap();
    assert_eq!(weave["status"], "success");
    assert_eq!(weave["trace_name"], "summarize");
    assert!(weave["latency_ms"].as_i64().unwrap() >= 0);
    // `call` is the alias of `get_call`.
    assert_eq!(
        s.client.call(call.id()).unwrap().to_schema(),
        back.to_schema()
    );
}

#[backends]
fn running_call_is_visible_as_running() {
    let s = TestStore::new();
    let call = s.client.create_call("slow", json!({})).unwrap();
    let back = s.client.get_call(call.id()).unwrap();
    assert_eq!(back.status(), TraceStatus::Running);
    assert!(back.ended_at().is_none());
    assert!(back.weave_summary().unwrap().get("latency_ms").is_none());
    s.client.finish_call(&call, ()).unwrap();
    assert_eq!(
        s.client.get_call(call.id()).unwrap().status(),
        TraceStatus::Success
    );
}

#[derive(Debug)]
struct ToolError {
    source: std::io::Error,
}
impl std::fmt::Display for ToolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("weather tool failed")
    }
}
impl std::error::Error for ToolError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

#[backends]
fn fail_call_records_the_python_exception_form() {
    let s = TestStore::new();
    let call = s
        .client
        .create_call("get_weather", json!({"city": "Paris"}))
        .unwrap();
    let err = ToolError {
        source: std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"),
    };
    s.client.fail_call(&call, &err).unwrap();

    let back = s.client.get_call(call.id()).unwrap();
    assert_eq!(back.status(), TraceStatus::Error);
    assert_eq!(back.output(), serde_json::Value::Null);
    let raw: serde_json::Value = serde_json::from_str(&back.exception().unwrap()).unwrap();
    assert_eq!(
        raw,
        json!({"type": "ToolError", "message": "weather tool failed\n\nCaused by:\n    0: connect timed out"})
    );
    assert_eq!(back.exception_info().unwrap().r#type, "ToolError");
    assert_eq!(
        back.summary().unwrap()["status_counts"],
        json!({"success": 0, "error": 1})
    );

    // From a string and from an explicit Exception.
    let c2 = s.client.create_call("x", json!({})).unwrap();
    s.client
        .fail_call(&c2, "plain message".to_string())
        .unwrap();
    let c3 = s.client.create_call("y", json!({})).unwrap();
    s.client
        .finish_call_with(
            &c3,
            json!({"partial": true}),
            Some(Exception::new("ValueError", "bad")),
            None,
        )
        .unwrap();
    assert_eq!(
        s.client
            .get_call(c2.id())
            .unwrap()
            .exception_info()
            .unwrap(),
        Exception::new("Error", "plain message")
    );
    let back3 = s.client.get_call(c3.id()).unwrap();
    assert_eq!(
        back3.exception_info().unwrap(),
        Exception::new("ValueError", "bad")
    );
    assert_eq!(back3.output(), json!({"partial": true}));
}

#[backends]
fn use_stack_makes_nested_calls_children() {
    let s = TestStore::new();
    let root = s.client.create_call("agent", json!({})).unwrap();
    assert_eq!(current_call().unwrap().id(), root.id());
    let child = s.client.create_call("llm", json!({})).unwrap();
    let grandchild = s.client.create_call("http", json!({})).unwrap();
    assert_eq!(current_call().unwrap().id(), grandchild.id());
    s.client.finish_call(&grandchild, ()).unwrap();
    assert_eq!(current_call().unwrap().id(), child.id());
    s.client.finish_call(&child, ()).unwrap();
    let sibling = s.client.create_call("tool", json!({})).unwrap();
    s.client.finish_call(&sibling, ()).unwrap();
    s.client.finish_call(&root, ()).unwrap();
    assert!(current_call().is_none());

    assert_eq!(child.parent_id(), Some(root.id()));
    assert_eq!(grandchild.parent_id(), Some(child.id()));
    assert_eq!(sibling.parent_id(), Some(root.id()));
    for c in [&child, &grandchild, &sibling] {
        assert_eq!(c.trace_id(), root.trace_id());
    }
    let kids: Vec<String> = root
        .children()
        .map(|c| c.unwrap().func_name().to_string())
        .collect();
    assert_eq!(kids, ["llm", "tool"]);
}

#[backends]
fn use_stack_false_and_explicit_parent() {
    let s = TestStore::new();
    let root = s.client.create_call("root", json!({})).unwrap();
    // use_stack(false), as in Python: the stack is neither read (no implicit parent) nor
    // written (the call does not become current).
    let detached = s
        .client
        .create_call_with("detached", json!({}), CallOptions::new().use_stack(false))
        .unwrap();
    assert_eq!(detached.parent_id(), None);
    assert_ne!(detached.trace_id(), root.trace_id());
    assert_eq!(current_call().unwrap().id(), root.id());
    let kid = s
        .client
        .create_call_with(
            "kid",
            json!({}),
            CallOptions::new().parent(&root).use_stack(false),
        )
        .unwrap();
    assert_eq!(kid.parent_id(), Some(root.id()));
    assert_eq!(current_call().unwrap().id(), root.id());
    let next = s.client.create_call("next", json!({})).unwrap();
    assert_eq!(
        next.parent_id(),
        Some(root.id()),
        "the detached call did not become current"
    );
    s.client.finish_call(&next, ()).unwrap();
    s.client.finish_call(&kid, ()).unwrap();
    s.client.finish_call(&detached, ()).unwrap();
    s.client.finish_call(&root, ()).unwrap();

    // An explicit parent wins over the stack, across traces.
    let other = s.client.create_call("other_root", json!({})).unwrap();
    let adopted = s
        .client
        .create_call_with("adopted", json!({}), CallOptions::new().parent(&root))
        .unwrap();
    assert_eq!(adopted.parent_id(), Some(root.id()));
    assert_eq!(adopted.trace_id(), root.trace_id());
    s.client.finish_call(&adopted, ()).unwrap();
    s.client.finish_call(&other, ()).unwrap();

    // With use_stack(false) and no current call, a call is a root.
    let lone = s
        .client
        .create_call_with("lone", json!({}), CallOptions::new().use_stack(false))
        .unwrap();
    assert!(lone.parent_id().is_none());
    assert_ne!(lone.trace_id(), root.trace_id());
}

#[backends]
fn the_stack_is_per_thread_and_can_be_handed_over() {
    let s = TestStore::new();
    let root = s.client.create_call("root", json!({})).unwrap();
    let client = s.client.clone();
    let parent = current_call();
    let handle = std::thread::spawn(move || {
        // A new thread starts with an empty stack…
        assert!(current_call().is_none());
        let unrelated = client.create_call("unrelated", json!({})).unwrap();
        client.finish_call(&unrelated, ()).unwrap();
        // …unless the current call is handed over.
        weave::with_call(parent.as_ref(), || {
            let worker = client.create_call("worker", json!({})).unwrap();
            client.finish_call(&worker, ()).unwrap();
            worker
        })
    });
    let worker = handle.join().unwrap();
    s.client.finish_call(&root, ()).unwrap();
    assert_eq!(worker.parent_id(), Some(root.id()));
    assert_eq!(
        s.client
            .get_calls(CallsFilter {
                trace_roots_only: Some(true),
                ..Default::default()
            })
            .size()
            .unwrap(),
        2
    );
}

#[backends]
fn finishing_on_another_thread_never_leaves_a_stale_parent() {
    let s = TestStore::new();
    let call = s.client.create_call("pushed_here", json!({})).unwrap();
    let (client, c) = (s.client.clone(), call.clone());
    std::thread::spawn(move || client.finish_call(&c, ()).unwrap())
        .join()
        .unwrap();
    // The entry left on this thread's stack belongs to a finished call: it is not current.
    assert!(current_call().is_none());
    let next = s.client.create_call("next", json!({})).unwrap();
    assert!(next.parent_id().is_none());
}

#[backends]
fn attributes_are_merged_and_stored_once() {
    let s = TestStore::new();
    let call = s
        .client
        .create_call_with(
            "op",
            json!({}),
            CallOptions::new()
                .attribute("env", "prod")
                .attribute("user", json!({"id": 7})),
        )
        .unwrap();
    s.client.finish_call(&call, ()).unwrap();
    let back = s.client.get_call(call.id()).unwrap();
    assert_eq!(back.attributes()["env"], "prod");
    assert_eq!(back.attributes()["user"]["id"], 7);
    assert_eq!(
        back.attributes()["weave"]["client_version"],
        env!("CARGO_PKG_VERSION")
    );
}

#[backends]
fn inputs_accept_any_serialize_struct() {
    #[derive(serde::Serialize)]
    struct Prompt<'a> {
        model: &'a str,
        messages: Vec<&'a str>,
        temperature: f32,
    }
    let s = TestStore::new();
    let call = s
        .client
        .create_call(
            "chat",
            Prompt {
                model: "gpt-4o",
                messages: vec!["hi"],
                temperature: 0.5,
            },
        )
        .unwrap();
    s.client.finish_call(&call, ()).unwrap();
    let back = s.client.get_call(call.id()).unwrap();
    assert_eq!(back.inputs()["messages"], json!(["hi"]));
    assert_eq!(back.inputs()["temperature"], 0.5);
    // Key order of the struct is kept.
    assert_eq!(
        back.inputs().keys().collect::<Vec<_>>(),
        ["model", "messages", "temperature"]
    );
}

#[backends]
fn op_postprocessing_and_redaction() {
    let s = TestStore::new();
    let op = weave::Op::new("login")
        .postprocess_inputs(|mut i| {
            i.insert("password".into(), json!("***"));
            i
        })
        .postprocess_output(|o| json!({"ok": o["ok"]}));
    let call = s
        .client
        .create_call(&op, json!({"user": "ann", "password": "hunter2", "api_key": "sk-123", "headers": {"Authorization": "Bearer x"}}))
        .unwrap();
    s.client
        .finish_call_with(
            &call,
            json!({"ok": true, "token": "secret"}),
            None,
            Some(&op),
        )
        .unwrap();
    let back = s.client.get_call(call.id()).unwrap();
    assert_eq!(back.inputs()["password"], "***");
    assert_eq!(back.inputs()["api_key"], "REDACTED");
    assert_eq!(back.inputs()["headers"]["Authorization"], "REDACTED");
    assert_eq!(back.output(), json!({"ok": true}));
}

#[backends]
fn get_calls_and_alias_return_the_same() {
    let s = TestStore::new();
    for i in 0..3 {
        crate::common::record(&s.client, "step", json!({"i": i}), json!(i));
    }
    let a = calls(&s.client, CallsQuery::new());
    let b: Vec<_> = s
        .client
        .calls(CallsQuery::new())
        .map(Result::unwrap)
        .collect();
    assert_eq!(a.len(), 3);
    assert_eq!(
        a.iter().map(|c| c.to_schema()).collect::<Vec<_>>(),
        b.iter().map(|c| c.to_schema()).collect::<Vec<_>>()
    );
}

#[backends]
fn thread_and_turn_ids() {
    let s = TestStore::new();
    let turn = s
        .client
        .create_call_with("turn", json!({}), CallOptions::new().thread_id("conv-1"))
        .unwrap();
    let inner = s.client.create_call("inner", json!({})).unwrap();
    s.client.finish_call(&inner, ()).unwrap();
    s.client.finish_call(&turn, ()).unwrap();
    assert_eq!(turn.thread_id(), Some("conv-1"));
    assert_eq!(
        turn.turn_id(),
        Some(turn.id()),
        "a call crossing into a thread starts a turn"
    );
    assert_eq!(inner.thread_id(), Some("conv-1"));
    assert_eq!(
        inner.turn_id(),
        Some(turn.id()),
        "children inherit the turn"
    );
    let back = s.client.get_call(inner.id()).unwrap();
    assert_eq!(back.thread_id(), Some("conv-1"));
    assert_eq!(back.turn_id(), Some(turn.id()));
}

#[backends]
fn clients_are_scoped_to_their_project() {
    let s = TestStore::new();
    let other = weave::WeaveClient::new("test-entity", "other", s.server.clone(), true).unwrap();
    let mine = crate::common::record(&s.client, "mine", json!({}), json!(1));
    let theirs = crate::common::record(&other, "theirs", json!({}), json!(2));
    assert_eq!(
        crate::common::ids(&s.client, CallsQuery::new()),
        [mine.id()]
    );
    assert_eq!(crate::common::ids(&other, CallsQuery::new()), [theirs.id()]);
    assert!(s.client.get_call(theirs.id()).unwrap_err().is_not_found());
}

#[backends]
fn bad_entity_or_project_names_are_rejected() {
    let server = std::sync::Arc::new(weave::SqliteServer::in_memory().unwrap());
    for (e, p) in [
        ("", "p"),
        ("e", ""),
        (" ", "p"),
        ("a/b", "p"),
        ("e", "p\nq"),
    ] {
        let err = weave::WeaveClient::new(e, p, server.clone(), false).unwrap_err();
        assert!(
            matches!(err, weave::WeaveError::InvalidInput(_)),
            "{e:?}/{p:?}: {err}"
        );
    }
    assert!(weave::WeaveClient::embedded("no-slash").is_err());
}

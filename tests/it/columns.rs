//! The `columns` projection of a calls query (PROTOCOL §6): unselected dict fields come back
//! empty and others null, the id columns are always returned, dotted names are cut to their
//! first segment, and `summary` brings what deriving `summary.weave` needs. The reference
//! server derives `summary.weave` even when `summary` is not selected and ignores unknown
//! columns (see `unselected_summary` and the `is_reference` branches).

use serde_json::json;
use weave::query::field;
use weave::{Call, CallOptions, CallsQuery, SortBy, TraceStatus, WeaveError};
use weave_testkit::backends;

use crate::common::{calls, TestStore};

/// A failed child (with display name, thread, attributes) under a finished root, and a
/// running call. Returns (root, child, running).
fn fixture(s: &TestStore) -> (Call, Call, Call) {
    let root = s
        .client
        .create_call_with(
            "agent",
            json!({"question": "weather?", "n": 1}),
            CallOptions::new()
                .use_stack(false)
                .attribute("env", "prod")
                .thread_id("t1"),
        )
        .unwrap();
    let child = s
        .client
        .create_call_with(
            "get_weather",
            json!({"city": "Paris", "n": 2}),
            CallOptions::new()
                .use_stack(false)
                .parent(&root)
                .display_name("Weather lookup")
                .attribute("env", "prod"),
        )
        .unwrap();
    s.client
        .fail_call(&child, "weather API timed out".to_string())
        .unwrap();
    s.client
        .finish_call(&root, json!({"model": "gpt-4o", "answer": "rain"}))
        .unwrap();
    let running = s
        .client
        .create_call_with("slow", json!({"n": 3}), CallOptions::new().use_stack(false))
        .unwrap();
    (root, child, running)
}

/// The call `id` read with `columns`.
fn read(s: &TestStore, id: &str, columns: &[&str]) -> Call {
    let got = calls(
        &s.client,
        CallsQuery::new()
            .query(field("id").eq(id))
            .columns(columns.iter().copied()),
    );
    assert_eq!(got.len(), 1);
    got.into_iter().next().unwrap()
}

/// The `summary` of a call read with a projection that leaves `summary` out: none on the
/// embedded store; on the reference server, `{"weave": weave}`.
///
/// Reference server: `SqliteTraceServer.calls_query` runs `make_derived_summary_fields` on
/// every row, whether `summary` was selected or not, from the columns the projection holds:
/// status from `exception` / `ended_at` as selected ("running" when `ended_at` is not, whatever
/// the call's real status), `latency_ms` when `ended_at` is selected, and `trace_name` from
/// the op name (the display name only when selected).
fn unselected_summary(s: &TestStore, weave: serde_json::Value) -> Option<serde_json::Value> {
    s.is_reference().then(|| json!({ "weave": weave }))
}

/// The columns every projection returns equal the full read.
fn assert_ids_present(got: &Call, full: &Call) {
    assert_eq!(got.id(), full.id());
    assert_eq!(got.project_id(), "test-entity/test-project");
    assert_eq!(got.trace_id(), full.trace_id());
    assert_eq!(got.op_name(), full.op_name());
    assert_eq!(got.started_at(), full.started_at());
}

#[backends]
fn unselected_fields_come_back_empty_or_null() {
    let s = TestStore::new();
    let (root, child, _) = fixture(&s);
    let full = s.client.get_call(child.id()).unwrap();
    // The full read has everything.
    assert!(!full.inputs().is_empty());
    assert!(!full.attributes().is_empty());
    assert!(full.display_name().is_some());
    assert!(full.parent_id().is_some());
    assert!(full.thread_id().is_some());
    assert!(full.turn_id().is_some());
    assert!(full.exception().is_some());
    assert!(full.ended_at().is_some());
    assert!(full.summary().is_some());

    let got = read(&s, child.id(), &["id"]);
    assert_ids_present(&got, &full);
    // Dict fields: empty. Everything else: null / None.
    assert!(got.inputs().is_empty());
    assert!(got.attributes().is_empty());
    assert_eq!(got.output(), json!(null));
    let summary = unselected_summary(
        &s,
        json!({"status": "running", "trace_name": "get_weather"}),
    );
    assert_eq!(got.summary().map(Into::into), summary);
    assert_eq!(
        got.weave_summary().map(Into::into),
        summary.map(|v| v["weave"].clone())
    );
    assert_eq!(got.display_name(), None);
    assert_eq!(got.parent_id(), None);
    assert_eq!(got.thread_id(), None);
    assert_eq!(got.turn_id(), None);
    assert_eq!(got.exception(), None);
    assert_eq!(got.ended_at(), None);
    assert_eq!(got.deleted_at(), None);
    // The same for the root's output.
    let got = read(&s, root.id(), &["op_name"]);
    assert_eq!(got.output(), json!(null));
    assert!(got.usage().is_empty());
    assert_eq!(got.func_name(), "agent");
}

#[backends]
fn the_id_columns_are_always_returned() {
    let s = TestStore::new();
    let (_, child, _) = fixture(&s);
    let full = s.client.get_call(child.id()).unwrap();
    for cols in [
        &["inputs"][..],
        &["output"],
        &["display_name"],
        &["started_at"],
        &["trace_id"],
        &["project_id"],
    ] {
        let got = read(&s, child.id(), cols);
        assert_ids_present(&got, &full);
    }
}

#[backends]
fn selected_fields_come_back() {
    let s = TestStore::new();
    let (root, child, _) = fixture(&s);
    let full_root = s.client.get_call(root.id()).unwrap();
    let full_child = s.client.get_call(child.id()).unwrap();

    let got = read(&s, root.id(), &["inputs", "output"]);
    assert_eq!(got.inputs(), full_root.inputs());
    assert_eq!(got.output(), full_root.output());
    assert!(got.attributes().is_empty());
    assert_eq!(
        got.summary().map(Into::into),
        unselected_summary(&s, json!({"status": "running", "trace_name": "agent"}))
    );
    assert_eq!(got.ended_at(), None);

    let got = read(&s, child.id(), &["attributes", "parent_id", "display_name"]);
    assert_eq!(got.attributes(), full_child.attributes());
    assert_eq!(got.attributes()["env"], "prod");
    assert_eq!(got.parent_id(), Some(root.id()));
    assert_eq!(got.display_name().as_deref(), Some("Weather lookup"));
    assert!(got.inputs().is_empty());
    assert_eq!(got.exception(), None);

    let got = read(
        &s,
        child.id(),
        &["exception", "ended_at", "thread_id", "turn_id"],
    );
    assert_eq!(got.exception(), full_child.exception());
    assert_eq!(got.ended_at(), full_child.ended_at());
    assert_eq!(got.thread_id(), Some("t1"));
    assert_eq!(got.turn_id(), full_child.turn_id());
    assert_eq!(got.display_name(), None);
    assert_eq!(
        got.summary().map(Into::into),
        unselected_summary(
            &s,
            json!({
                "status": "error",
                "trace_name": "get_weather",
                "latency_ms": full_child.latency_ms().unwrap(),
            })
        )
    );

    // Every column selected: the same as no projection at all.
    let all: Vec<&str> = crate::common::CALL_SCHEMA_FIELDS
        .iter()
        .copied()
        .filter(|f| !f.ends_with("storage_size_bytes"))
        .collect();
    let got = read(&s, child.id(), &all);
    assert_eq!(got.to_schema(), full_child.to_schema());
}

#[backends]
fn dotted_names_select_the_whole_first_segment() {
    let s = TestStore::new();
    let (root, child, _) = fixture(&s);
    let full_root = s.client.get_call(root.id()).unwrap();

    // `inputs.question` returns all the inputs, not just that key.
    let got = read(&s, root.id(), &["inputs.question"]);
    assert_eq!(got.inputs(), full_root.inputs());
    assert_eq!(got.inputs()["n"], 1);
    assert_eq!(got.output(), json!(null));

    let got = read(&s, root.id(), &["output.answer"]);
    assert_eq!(got.output(), full_root.output());
    assert_eq!(got.output()["model"], "gpt-4o");
    assert!(got.inputs().is_empty());

    let got = read(&s, child.id(), &["attributes.env"]);
    assert_eq!(got.attributes()["env"], "prod");
    assert_eq!(got.attributes()["weave"]["source"], "rust-sdk");

    // `summary.status_counts.error` selects the whole summary (see the next test for what it
    // pulls in).
    let got = read(&s, root.id(), &["summary.status_counts.error"]);
    assert_eq!(got.summary(), full_root.summary());
    assert_eq!(
        got.summary().unwrap()["status_counts"],
        json!({"success": 1, "error": 1})
    );
}

#[backends]
fn selecting_summary_pulls_in_what_summary_weave_needs() {
    let s = TestStore::new();
    let (root, child, running) = fixture(&s);
    let full_child = s.client.get_call(child.id()).unwrap();

    for cols in [&["summary"][..], &["summary.weave.status"]] {
        let got = read(&s, child.id(), cols);
        // ended_at, exception and display_name come along...
        assert_eq!(got.ended_at(), full_child.ended_at());
        assert_eq!(got.exception(), full_child.exception());
        assert_eq!(got.display_name().as_deref(), Some("Weather lookup"));
        // ...so the derived block is right.
        assert_eq!(got.summary(), full_child.summary());
        let weave = got.weave_summary().unwrap();
        assert_eq!(weave["status"], "error");
        assert_eq!(weave["display_name"], "Weather lookup");
        assert!(weave["latency_ms"].as_i64().unwrap() >= 0);
        assert_eq!(got.status(), TraceStatus::Error);
        // Nothing else does.
        assert!(got.inputs().is_empty());
        assert!(got.attributes().is_empty());
        assert_eq!(got.output(), json!(null));
        assert_eq!(got.parent_id(), None);
    }

    let got = read(&s, root.id(), &["summary"]);
    let weave = got.weave_summary().unwrap();
    assert_eq!(weave["status"], "descendant_error");
    assert_eq!(weave["trace_name"], "agent");
    assert_eq!(got.status(), TraceStatus::DescendantError);
    assert_eq!(
        got.summary().unwrap()["status_counts"],
        json!({"success": 1, "error": 1})
    );

    let got = read(&s, running.id(), &["summary"]);
    let weave = got.weave_summary().unwrap();
    assert_eq!(weave["status"], "running");
    assert!(weave.get("latency_ms").is_none());
    assert_eq!(got.ended_at(), None);
    assert_eq!(got.status(), TraceStatus::Running);
}

#[backends]
fn filters_and_sorts_use_unselected_columns() {
    let s = TestStore::new();
    let (root, child, running) = fixture(&s);
    let got = calls(
        &s.client,
        CallsQuery::new()
            .query(field("inputs.n").gte(1))
            .sort_by(SortBy::desc("inputs.n"))
            .columns(["id"]),
    );
    let got_ids: Vec<&str> = got.iter().map(|c| c.id()).collect();
    assert_eq!(got_ids, [running.id(), child.id(), root.id()]);
    assert!(got.iter().all(|c| c.inputs().is_empty()));
    let got = calls(
        &s.client,
        CallsQuery::new()
            .query(field("summary.weave.status").eq("error"))
            .columns(["op_name"]),
    );
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].id(), child.id());
    assert_eq!(
        got[0].summary().map(Into::into),
        unselected_summary(
            &s,
            json!({"status": "running", "trace_name": "get_weather"})
        )
    );
}

#[backends]
fn unknown_columns_are_invalid_queries() {
    let s = TestStore::new();
    let (root, child, running) = fixture(&s);
    for col in ["nope", "input", "inputs_x", "summaryx.weave"] {
        let mut it = s.client.get_calls(CallsQuery::new().columns(["id", col]));
        if s.is_reference() {
            // Reference server: `SqliteTraceServer.calls_query` drops the columns it does not
            // know (`select_columns = [x for x in simple_columns if x in select_columns]`)
            // instead of rejecting them: the query runs as if only `id` had been selected.
            let got: Vec<String> = it.map(|c| c.unwrap().id().to_string()).collect();
            assert_eq!(got, [root.id(), child.id(), running.id()], "{col}");
            continue;
        }
        match it.next() {
            Some(Err(WeaveError::InvalidQuery(m))) => {
                assert!(
                    m.contains("columns") && m.contains(&format!("{col:?}")),
                    "{col}: {m}"
                )
            }
            other => panic!("{col}: expected InvalidQuery, got {other:?}"),
        }
        assert!(it.next().is_none());
    }
}

#[backends]
fn an_empty_column_list_means_all_columns() {
    let s = TestStore::new();
    let call = crate::common::record(&s.client, "op", json!({"x": 1}), json!({"y": 2}));
    let none: Vec<String> = Vec::new();
    let got = calls(&s.client, CallsQuery::new().columns(none));
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].to_schema(),
        s.client.get_call(call.id()).unwrap().to_schema()
    );
}

/// The client reads the embedded store through its own path, which keeps each call's JSON as
/// text until a field is read; whatever is read must equal what the protocol's stream
/// (`calls_query_stream`) returns for the same query, field by field, for every projection —
/// including rows another writer left with text that is not JSON, an OpenTelemetry dump, and
/// a summary with usage and user keys.
#[backends]
fn calls_read_by_the_client_equal_the_protocols_calls() {
    let s = TestStore::new();
    if s.is_reference() {
        // A remote server has only the protocol's path.
        return;
    }
    let (root, child, _running) = fixture(&s);
    let scored = s
        .client
        .create_call_with(
            "llm",
            json!({"prompt": "hi"}),
            CallOptions::new().use_stack(false),
        )
        .unwrap();
    scored.set_summary_value("score", 0.5);
    s.client
        .finish_call(
            &scored,
            json!({"usage": {"gpt-4o": {"prompt_tokens": 3, "requests": 1}}}),
        )
        .unwrap();
    let mut otel = weave::schema::StartedCallSchemaForInsert {
        project_id: s.client.project_id().to_string(),
        id: Some(weave::generate_id()),
        op_name: "otel.span".into(),
        display_name: None,
        trace_id: Some(weave::generate_id()),
        parent_id: None,
        thread_id: None,
        turn_id: None,
        started_at: weave::Timestamp::now(),
        attributes: serde_json::Map::new(),
        inputs: serde_json::Map::new(),
        otel_dump: None,
        wb_user_id: Some("user-1".into()),
        wb_run_id: Some("run-1".into()),
        wb_run_step: Some(7),
    };
    otel.otel_dump = json!({"name": "span", "kind": 1}).as_object().cloned();
    s.server
        .call_start(weave::schema::CallStartReq { start: otel })
        .unwrap();
    assert!(s.client.flush_timeout(std::time::Duration::from_secs(10)));
    let conn = rusqlite::Connection::open(s.path()).unwrap();
    conn.execute(
        "UPDATE calls SET output = 'not json {', inputs = '[1, 2]' WHERE id = ?1",
        [root.id()],
    )
    .unwrap();
    conn.execute(
        "UPDATE calls SET summary = 'not json either', attributes = '' WHERE id = ?1",
        [child.id()],
    )
    .unwrap();
    drop(conn);

    let projections: [Option<&[&str]>; 5] = [
        None,
        Some(&["summary"]),
        Some(&["inputs", "output"]),
        Some(&["attributes", "exception", "display_name"]),
        Some(&["ended_at"]),
    ];
    for columns in projections {
        let mut q = CallsQuery::new();
        if let Some(c) = columns {
            q = q.columns(c.iter().copied());
        }
        let mut req = weave::schema::CallsQueryReq::new(s.client.project_id());
        req.columns = q.columns.clone();
        let expected: Vec<weave::CallSchema> = s
            .server
            .calls_query_stream(req)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let got: Vec<weave::CallSchema> = calls(&s.client, q).iter().map(Call::to_schema).collect();
        assert_eq!(got.len(), 5, "{columns:?}");
        assert_eq!(got, expected, "columns {columns:?}");
    }
    // And field by field through the accessors, which parse on first use.
    let got = calls(
        &s.client,
        CallsQuery::new().query(field("id").eq(root.id())),
    );
    assert_eq!(got[0].output(), weave::limits::exceeds_limits_marker());
    assert!(
        got[0].inputs().is_empty(),
        "a JSON array is not an inputs object"
    );
    let got = calls(
        &s.client,
        CallsQuery::new().query(field("op_name").eq("otel.span")),
    );
    assert_eq!(
        got[0].attributes()["otel_span"],
        json!({"name": "span", "kind": 1})
    );
    assert_eq!(got[0].wb_run_step(), Some(7));
}

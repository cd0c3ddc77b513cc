//! Tests: end_before_start. A call's start and end are separate writes that may arrive in
//! either order (PROTOCOL §3.2, §4.2); these go through the `TraceServer` trait directly, the
//! way a remote client's batches reach the embedded store. The reference server keeps only
//! what arrives in start-then-end order and rejects a repeated start (see `is_reference`).

use serde_json::{json, Value};
use weave::schema::{
    CallBatchItem, CallBatchItemRes, CallCreateBatchReq, CallEndReq, CallReadReq, CallSchema,
    CallStartReq, CallsFilter, CallsQueryReq, CallsQueryStatsReq, EndedCallSchemaForInsert,
    StartedCallSchemaForInsert,
};
use weave::{generate_id, TraceServer, TraceStatus};
use weave_testkit::backends;

use crate::common::{map, ts, TestStore};

/// The project of [`TestStore::new`], so its client can read what the raw server wrote.
const PROJECT: &str = "test-entity/test-project";
const STARTED: &str = "2025-01-02T03:04:05.000000Z";
const ENDED: &str = "2025-01-02T03:04:06.250000Z";

fn start(id: &str, trace_id: &str, parent_id: Option<&str>) -> StartedCallSchemaForInsert {
    StartedCallSchemaForInsert {
        project_id: PROJECT.into(),
        id: Some(id.into()),
        op_name: "llm".into(),
        display_name: None,
        trace_id: Some(trace_id.into()),
        parent_id: parent_id.map(str::to_string),
        thread_id: None,
        turn_id: None,
        started_at: ts(STARTED),
        attributes: map(json!({"env": "test"})),
        inputs: map(json!({"prompt": "hi"})),
        otel_dump: None,
        wb_user_id: None,
        wb_run_id: None,
        wb_run_step: None,
    }
}

fn end(id: &str) -> EndedCallSchemaForInsert {
    EndedCallSchemaForInsert {
        project_id: PROJECT.into(),
        id: id.into(),
        ended_at: ts(ENDED),
        exception: None,
        output: json!({"text": "hello"}),
        summary: map(json!({"usage": {"gpt-4o": {"requests": 1, "prompt_tokens": 3}}})),
        wb_run_step_end: None,
    }
}

fn read(server: &dyn TraceServer, id: &str) -> Option<CallSchema> {
    server
        .call_read(CallReadReq {
            project_id: PROJECT.into(),
            id: id.into(),
            include_costs: false,
            include_storage_size: false,
            include_total_storage_size: false,
        })
        .expect("read")
        .call
}

fn query_all(server: &dyn TraceServer) -> Vec<CallSchema> {
    server
        .calls_query_stream(CallsQueryReq::new(PROJECT))
        .expect("query")
        .collect::<Result<Vec<_>, _>>()
        .expect("rows")
}

fn count(server: &dyn TraceServer, filter: Option<CallsFilter>) -> u64 {
    server
        .calls_query_stats(CallsQueryStatsReq {
            project_id: PROJECT.into(),
            filter,
            query: None,
            limit: None,
            include_total_storage_size: false,
            expand_columns: None,
        })
        .expect("stats")
        .count
}

/// The JSON a complete call of [`start`] + [`end`] reads back as.
fn expected_complete(id: &str, trace_id: &str, parent_id: Option<&str>) -> Value {
    json!({
        "id": id,
        "project_id": PROJECT,
        "op_name": "llm",
        "display_name": null,
        "trace_id": trace_id,
        "parent_id": parent_id,
        "thread_id": null,
        "turn_id": null,
        "started_at": STARTED,
        "attributes": {"env": "test"},
        "inputs": {"prompt": "hi"},
        "ended_at": ENDED,
        "exception": null,
        "output": {"text": "hello"},
        "summary": {
            "usage": {"gpt-4o": {"requests": 1, "prompt_tokens": 3}},
            "weave": {"status": "success", "trace_name": "llm", "latency_ms": 1250},
        },
        "wb_user_id": null,
        "wb_run_id": null,
        "wb_run_step": null,
        "wb_run_step_end": null,
        "deleted_at": null,
        "storage_size_bytes": null,
        "total_storage_size_bytes": null,
    })
}

/// The JSON a call of [`start`] reads back as on the reference server when its [`end`] came
/// first: running, as if the end never arrived.
///
/// Reference server: `SqliteTraceServer.call_end` is an `UPDATE calls ... WHERE id = ?`, which
/// changes no row while the start has not arrived, and `call_start` a plain `INSERT`; an end
/// that comes before its start is silently lost. The server also stamps its one user,
/// `ref-user-id`, on every start (`wb_user_id`, as W&B's server stamps the authenticated user;
/// ref_server.py).
fn end_lost(id: &str, trace_id: &str, parent_id: Option<&str>) -> Value {
    let mut v = expected_complete(id, trace_id, parent_id);
    v["ended_at"] = Value::Null;
    v["output"] = Value::Null;
    v["summary"] = json!({"weave": {"status": "running", "trace_name": "llm"}});
    v["wb_user_id"] = json!("ref-user-id");
    v
}

/// The reference server's answer to SQL its SQLite rejects: HTTP 500 on `route`.
fn assert_ref_server_500<T: std::fmt::Debug>(res: Result<T, weave::WeaveError>, route: &str) {
    match res {
        Err(weave::WeaveError::Backend { message: m, .. }) => {
            assert_eq!(m, format!("{route}: HTTP 500: Internal server error"))
        }
        other => panic!("expected HTTP 500 from {route}, got {other:?}"),
    }
}

#[backends]
fn end_then_start_as_separate_requests_gives_the_complete_call() {
    let store = TestStore::new();
    let (id, trace_id) = (generate_id(), generate_id());

    store
        .server
        .call_end(CallEndReq { end: end(&id) })
        .expect("an end before its start is accepted");
    assert_eq!(
        read(&*store.server, &id),
        None,
        "not visible before its start"
    );

    let res = store
        .server
        .call_start(CallStartReq {
            start: start(&id, &trace_id, None),
        })
        .expect("start");
    assert_eq!((res.id.as_str(), res.trace_id.as_str()), (&*id, &*trace_id));

    let call = read(&*store.server, &id).expect("visible once started");
    // The same call through the query route and the user API.
    assert_eq!(query_all(&*store.server), vec![call.clone()]);
    let user_call = store.client.get_call(&id).expect("get_call");
    if store.is_reference() {
        // Reference server: the end was lost (see `end_lost`).
        assert_eq!(
            serde_json::to_value(&call).unwrap(),
            end_lost(&id, &trace_id, None)
        );
        assert_eq!(user_call.status(), TraceStatus::Running);
        assert_eq!(user_call.latency_ms(), None);
        assert_eq!(user_call.output(), Value::Null);
    } else {
        assert_eq!(
            serde_json::to_value(&call).unwrap(),
            expected_complete(&id, &trace_id, None)
        );
        assert_eq!(user_call.status(), TraceStatus::Success);
        assert_eq!(user_call.latency_ms(), Some(1250));
        assert_eq!(user_call.output(), json!({"text": "hello"}));
    }
}

#[backends]
fn end_before_start_inside_one_upsert_batch() {
    let store = TestStore::new();
    let (root, child, trace_id) = (generate_id(), generate_id(), generate_id());

    let res = store
        .server
        .call_start_batch(CallCreateBatchReq {
            batch: vec![
                CallBatchItem::End(CallEndReq { end: end(&child) }),
                CallBatchItem::End(CallEndReq { end: end(&root) }),
                CallBatchItem::Start(CallStartReq {
                    start: start(&root, &trace_id, None),
                }),
                CallBatchItem::Start(CallStartReq {
                    start: start(&child, &trace_id, Some(&root)),
                }),
            ],
        })
        .expect("batch");

    // One result per item, in order: `{}` for ends, `{id, trace_id}` for starts.
    assert_eq!(
        serde_json::to_value(&res).unwrap(),
        json!({"res": [
            {},
            {},
            {"id": root, "trace_id": trace_id},
            {"id": child, "trace_id": trace_id},
        ]})
    );
    assert!(matches!(res.res[0], CallBatchItemRes::End(_)));
    assert!(matches!(res.res[2], CallBatchItemRes::Start(_)));

    // Reference server: `SqliteTraceServer.call_start_batch` applies the items in order
    // with the same `call_end` / `call_start`, so both ends are lost (see `end_lost`).
    let (root_want, child_want) = if store.is_reference() {
        (
            end_lost(&root, &trace_id, None),
            end_lost(&child, &trace_id, Some(&root)),
        )
    } else {
        (
            expected_complete(&root, &trace_id, None),
            expected_complete(&child, &trace_id, Some(&root)),
        )
    };
    assert_eq!(
        serde_json::to_value(read(&*store.server, &root).unwrap()).unwrap(),
        root_want
    );
    assert_eq!(
        serde_json::to_value(read(&*store.server, &child).unwrap()).unwrap(),
        child_want
    );
    assert_eq!(count(&*store.server, None), 2);
    let children: Vec<String> = store
        .client
        .get_call(&root)
        .unwrap()
        .children()
        .map(|c| c.unwrap().id().to_string())
        .collect();
    assert_eq!(children, vec![child]);
}

#[backends]
fn a_call_with_only_an_end_is_invisible_to_reads_queries_and_stats() {
    let store = TestStore::new();
    let (parent, trace_id) = (generate_id(), generate_id());
    store
        .server
        .call_start(CallStartReq {
            start: start(&parent, &trace_id, None),
        })
        .unwrap();
    let orphan = generate_id();
    store
        .server
        .call_end(CallEndReq { end: end(&orphan) })
        .unwrap();

    assert_eq!(read(&*store.server, &orphan), None);
    let ids: Vec<String> = query_all(&*store.server)
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(ids, vec![parent.clone()], "only the started call is listed");
    assert_eq!(count(&*store.server, None), 1);
    let by_id = CallsFilter {
        call_ids: Some(vec![orphan.clone()]),
        ..Default::default()
    };
    assert_eq!(count(&*store.server, Some(by_id.clone())), 0);
    let mut q = CallsQueryReq::new(PROJECT);
    q.filter = Some(by_id);
    assert_eq!(store.server.calls_query_stream(q).unwrap().count(), 0);

    // Through the user API: a typed NotFound, and it is nobody's child yet even though the
    // parent exists (the end does not carry the parent id).
    let err = store.client.get_call(&orphan).unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
    assert_eq!(
        store
            .client
            .get_calls(CallsFilter::default())
            .size()
            .unwrap(),
        1
    );

    // A child whose end came first shows up under its parent only once its start arrives.
    let child = generate_id();
    store
        .server
        .call_end(CallEndReq { end: end(&child) })
        .unwrap();
    let parent_call = store.client.get_call(&parent).unwrap();
    assert_eq!(parent_call.children().count(), 0);
    assert_eq!(parent_call.children().size().unwrap(), 0);
    store
        .server
        .call_start(CallStartReq {
            start: start(&child, &trace_id, Some(&parent)),
        })
        .unwrap();
    assert_eq!(parent_call.children().size().unwrap(), 1);
}

#[backends]
fn a_call_with_only_a_start_reads_as_running_without_latency() {
    let store = TestStore::new();
    let (id, trace_id) = (generate_id(), generate_id());
    store
        .server
        .call_start(CallStartReq {
            start: start(&id, &trace_id, None),
        })
        .unwrap();

    let call = read(&*store.server, &id).expect("a started call is visible");
    assert_eq!(call.ended_at, None);
    assert_eq!(call.exception, None);
    assert_eq!(call.output, Value::Null);
    // No end, so no client summary: only the derived block, and no latency_ms key at all.
    assert_eq!(
        Value::Object(call.summary.clone().expect("summary is always derived")),
        json!({"weave": {"status": "running", "trace_name": "llm"}})
    );
    let wire = serde_json::to_value(&call).unwrap();
    assert_eq!(wire["ended_at"], Value::Null);
    assert!(wire["summary"]["weave"].get("latency_ms").is_none());

    let user_call = store.client.get_call(&id).unwrap();
    assert_eq!(user_call.status(), TraceStatus::Running);
    assert_eq!(user_call.latency_ms(), None);
    assert!(!user_call.is_finished());
    assert_eq!(count(&*store.server, None), 1);
}

#[backends]
fn a_repeated_start_is_idempotent() {
    let store = TestStore::new();
    let (id, trace_id) = (generate_id(), generate_id());
    let s = start(&id, &trace_id, None);

    let first = store
        .server
        .call_start(CallStartReq { start: s.clone() })
        .unwrap();
    let once = read(&*store.server, &id).unwrap();
    let retried = store.server.call_start(CallStartReq { start: s.clone() });
    if store.is_reference() {
        // Reference server: `SqliteTraceServer.call_start` is a plain `INSERT`; a retried
        // start violates the primary key (sqlite3.IntegrityError): HTTP 500, nothing changes.
        assert_ref_server_500(retried, "/call/start");
        assert_eq!(read(&*store.server, &id).unwrap(), once);
        assert_eq!(count(&*store.server, None), 1);
        // The failed `INSERT` is not rolled back: the server's SQLite connection stays
        // inside that transaction and keeps the database locked, so every later write (a
        // retried start in a batch, the end) answers 500 "database is locked" after SQLite's
        // 5 s busy timeout. Nothing more to check on this server.
        return;
    }
    let second = retried.expect("a retried start is accepted");
    assert_eq!(first, second);
    assert_eq!(read(&*store.server, &id).unwrap(), once);
    assert_eq!(count(&*store.server, None), 1);
    assert_eq!(query_all(&*store.server).len(), 1);

    // Retried in a batch, and retried after the end arrived: the end's fields survive.
    store
        .server
        .call_start_batch(CallCreateBatchReq {
            batch: vec![
                CallBatchItem::Start(CallStartReq { start: s.clone() }),
                CallBatchItem::End(CallEndReq { end: end(&id) }),
                CallBatchItem::Start(CallStartReq { start: s.clone() }),
            ],
        })
        .unwrap();
    store.server.call_start(CallStartReq { start: s }).unwrap();
    assert_eq!(count(&*store.server, None), 1);
    assert_eq!(
        serde_json::to_value(read(&*store.server, &id).unwrap()).unwrap(),
        expected_complete(&id, &trace_id, None)
    );

    // A retried end is idempotent too.
    store.server.call_end(CallEndReq { end: end(&id) }).unwrap();
    assert_eq!(
        serde_json::to_value(read(&*store.server, &id).unwrap()).unwrap(),
        expected_complete(&id, &trace_id, None)
    );
}

#[backends]
fn a_start_without_ids_gets_fresh_uuidv7_ids_from_the_server() {
    let store = TestStore::new();
    let mut s = start("unused", "unused", None);
    s.id = None;
    s.trace_id = None;
    let res = store.server.call_start(CallStartReq { start: s });
    if store.is_reference() {
        // Reference server: `SqliteTraceServer.call_start` raises `ValueError("trace_id is
        // required")` (then "id is required") instead of generating the ids: HTTP 400.
        match res {
            Err(weave::WeaveError::InvalidInput(m)) => {
                assert!(m.contains("HTTP 400: trace_id is required"), "{m}")
            }
            other => panic!("expected HTTP 400, got {other:?}"),
        }
        return;
    }
    let res = res.unwrap();
    for id in [&res.id, &res.trace_id] {
        assert!(weave::is_valid_call_id(id) && &id[14..15] == "7", "{id}");
    }
    assert_ne!(res.id, res.trace_id);
    let call = read(&*store.server, &res.id).expect("stored under the generated id");
    assert_eq!(call.trace_id, res.trace_id);
}

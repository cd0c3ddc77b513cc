//! Tests: wire_format. Every type that crosses the wire serialises to the protocol's exact JSON
//! (explicit nulls, field names, RFC 3339 UTC timestamps), and everything a real Weave server
//! sent and received (docs/sample-traffic.jsonl) deserialises into our types.

use std::collections::BTreeSet;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};
use weave::query::field;
use weave::schema::{
    CallBatchItem, CallBatchItemRes, CallCreateBatchReq, CallCreateBatchRes, CallEndReq,
    CallEndRes, CallReadReq, CallReadRes, CallSchema, CallStartReq, CallStartRes, CallUpdateReq,
    CallUpdateRes, CallsDeleteReq, CallsDeleteRes, CallsFilter, CallsQueryReq, CallsQueryStatsReq,
    CallsQueryStatsRes, EndedCallSchemaForInsert, JsonMap, StartedCallSchemaForInsert,
};
use weave::{generate_id, Query, SortBy, Timestamp};

use crate::common::{map, ts, CALL_SCHEMA_FIELDS};

fn to_json<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).expect("serialize")
}

/// Serialises `v`, checks it is `expected`, and that it deserialises back to `v`.
fn assert_wire<T>(v: &T, expected: Value)
where
    T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let got = to_json(v);
    assert_eq!(got, expected);
    let back: T = serde_json::from_value(got).expect("deserialize our own JSON");
    assert_eq!(&back, v);
}

fn keys(v: &Value) -> BTreeSet<&str> {
    v.as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect()
}

fn minimal_start() -> StartedCallSchemaForInsert {
    StartedCallSchemaForInsert {
        project_id: "e/p".into(),
        id: Some("0193f2c4-5e6a-7b8c-9d0e-1f2a3b4c5d6e".into()),
        op_name: "weave:///e/p/op/llm:abc".into(),
        display_name: None,
        trace_id: None,
        parent_id: None,
        thread_id: None,
        turn_id: None,
        started_at: ts("2025-01-02T03:04:05.123456Z"),
        attributes: JsonMap::new(),
        inputs: map(json!({"a": 1})),
        otel_dump: None,
        wb_user_id: None,
        wb_run_id: None,
        wb_run_step: None,
    }
}

fn minimal_end() -> EndedCallSchemaForInsert {
    EndedCallSchemaForInsert {
        project_id: "e/p".into(),
        id: "0193f2c4-5e6a-7b8c-9d0e-1f2a3b4c5d6e".into(),
        ended_at: ts("2025-01-02T03:04:06Z"),
        exception: None,
        output: Value::Null,
        summary: JsonMap::new(),
        wb_run_step_end: None,
    }
}

#[test]
fn started_call_serialises_with_explicit_nulls() {
    assert_wire(
        &minimal_start(),
        json!({
            "project_id": "e/p",
            "id": "0193f2c4-5e6a-7b8c-9d0e-1f2a3b4c5d6e",
            "op_name": "weave:///e/p/op/llm:abc",
            "display_name": null,
            "trace_id": null,
            "parent_id": null,
            "thread_id": null,
            "turn_id": null,
            "started_at": "2025-01-02T03:04:05.123456Z",
            "attributes": {},
            "inputs": {"a": 1},
            "otel_dump": null,
            "wb_user_id": null,
            "wb_run_id": null,
            "wb_run_step": null,
        }),
    );
    let mut full = minimal_start();
    full.id = None;
    full.display_name = Some("named".into());
    full.trace_id = Some("t".into());
    full.parent_id = Some("p".into());
    full.thread_id = Some("th".into());
    full.turn_id = Some("tu".into());
    full.otel_dump = Some(map(json!({"span": 1})));
    full.wb_run_id = Some("e/p/run".into());
    full.wb_run_step = Some(3);
    let v = to_json(&full);
    assert_eq!(v["id"], Value::Null, "a null id asks the server for one");
    assert_eq!(v["display_name"], "named");
    assert_eq!(v["otel_dump"], json!({"span": 1}));
    assert_eq!(v["wb_run_step"], 3);
    // The request wraps it as {"start": ...}.
    assert_eq!(
        to_json(&CallStartReq {
            start: minimal_start()
        }),
        json!({"start": to_json(&minimal_start())})
    );
}

#[test]
fn ended_call_serialises_with_explicit_nulls() {
    assert_wire(
        &minimal_end(),
        json!({
            "project_id": "e/p",
            "id": "0193f2c4-5e6a-7b8c-9d0e-1f2a3b4c5d6e",
            "ended_at": "2025-01-02T03:04:06.000000Z",
            "exception": null,
            "output": null,
            "summary": {},
            "wb_run_step_end": null,
        }),
    );
    assert_eq!(
        to_json(&CallEndReq { end: minimal_end() }),
        json!({"end": to_json(&minimal_end())})
    );
    assert_wire(&CallEndRes {}, json!({}));
}

#[test]
fn calls_filter_and_query_req_serialise_every_field() {
    assert_wire(
        &CallsFilter::default(),
        json!({
            "op_names": null, "input_refs": null, "output_refs": null, "parent_ids": null,
            "trace_ids": null, "call_ids": null, "thread_ids": null, "turn_ids": null,
            "trace_roots_only": null, "wb_user_ids": null, "wb_run_ids": null,
        }),
    );
    assert_wire(
        &CallsQueryReq::new("e/p"),
        json!({
            "project_id": "e/p",
            "filter": null,
            "limit": null,
            "offset": null,
            "sort_by": null,
            "query": null,
            "include_costs": false,
            "include_feedback": false,
            "include_storage_size": false,
            "include_total_storage_size": false,
            "columns": null,
            "expand_columns": null,
            "return_expanded_column_values": true,
        }),
    );

    let mut q = CallsQueryReq::new("e/p");
    q.filter = Some(CallsFilter {
        trace_roots_only: Some(true),
        op_names: Some(vec!["weave:///e/p/op/llm:*".into()]),
        ..Default::default()
    });
    q.limit = Some(10);
    q.offset = Some(20);
    q.sort_by = Some(vec![SortBy::desc("started_at"), SortBy::asc("id")]);
    q.query = Some(Query::new(
        field("inputs.model")
            .eq("gpt-4o")
            .and(field("summary.weave.latency_ms").gt(100)),
    ));
    q.columns = Some(vec!["id".into(), "inputs.model".into()]);
    let v = to_json(&q);
    assert_eq!(v["filter"]["trace_roots_only"], true);
    assert_eq!(v["filter"]["op_names"], json!(["weave:///e/p/op/llm:*"]));
    assert_eq!(v["filter"]["call_ids"], Value::Null);
    assert_eq!(
        (v["limit"].clone(), v["offset"].clone()),
        (json!(10), json!(20))
    );
    assert_eq!(
        v["sort_by"],
        json!([{"field": "started_at", "direction": "desc"}, {"field": "id", "direction": "asc"}])
    );
    assert_eq!(
        v["query"],
        json!({"$expr": {"$and": [
            {"$eq": [{"$getField": "inputs.model"}, {"$literal": "gpt-4o"}]},
            {"$gt": [{"$getField": "summary.weave.latency_ms"}, {"$literal": 100}]},
        ]}})
    );
    let back: CallsQueryReq = serde_json::from_value(v).unwrap();
    assert_eq!(back, q);

    // A body with only the project id (as curl users send) takes the protocol's defaults.
    let min: CallsQueryReq = serde_json::from_value(json!({"project_id": "e/p"})).unwrap();
    assert_eq!(min, CallsQueryReq::new("e/p"));
    assert!(min.return_expanded_column_values);
}

#[test]
fn call_schema_serialises_every_protocol_field_with_nulls() {
    let call = CallSchema {
        id: "0193f2c4-5e6a-7b8c-9d0e-1f2a3b4c5d6e".into(),
        project_id: "e/p".into(),
        op_name: "llm".into(),
        display_name: None,
        trace_id: "0193f2c4-5e6a-7b8c-9d0e-000000000000".into(),
        parent_id: None,
        thread_id: None,
        turn_id: None,
        started_at: ts("2025-01-02T03:04:05Z"),
        attributes: JsonMap::new(),
        inputs: JsonMap::new(),
        ended_at: None,
        exception: None,
        output: Value::Null,
        summary: None,
        wb_user_id: None,
        wb_run_id: None,
        wb_run_step: None,
        wb_run_step_end: None,
        deleted_at: None,
        storage_size_bytes: None,
        total_storage_size_bytes: None,
    };
    let v = to_json(&call);
    assert_eq!(
        keys(&v),
        CALL_SCHEMA_FIELDS.iter().copied().collect::<BTreeSet<_>>()
    );
    assert_wire(
        &call,
        json!({
            "id": "0193f2c4-5e6a-7b8c-9d0e-1f2a3b4c5d6e",
            "project_id": "e/p",
            "op_name": "llm",
            "display_name": null,
            "trace_id": "0193f2c4-5e6a-7b8c-9d0e-000000000000",
            "parent_id": null,
            "thread_id": null,
            "turn_id": null,
            "started_at": "2025-01-02T03:04:05.000000Z",
            "attributes": {},
            "inputs": {},
            "ended_at": null,
            "exception": null,
            "output": null,
            "summary": null,
            "wb_user_id": null,
            "wb_run_id": null,
            "wb_run_step": null,
            "wb_run_step_end": null,
            "deleted_at": null,
            "storage_size_bytes": null,
            "total_storage_size_bytes": null,
        }),
    );
}

#[test]
fn the_other_calls_requests_and_responses_serialise_as_the_protocol_says() {
    let id = "0193f2c4-5e6a-7b8c-9d0e-1f2a3b4c5d6e";
    assert_wire(
        &CallCreateBatchReq {
            batch: vec![
                CallBatchItem::Start(CallStartReq {
                    start: minimal_start(),
                }),
                CallBatchItem::End(CallEndReq { end: minimal_end() }),
            ],
        },
        json!({"batch": [
            {"mode": "start", "req": {"start": to_json(&minimal_start())}},
            {"mode": "end", "req": {"end": to_json(&minimal_end())}},
        ]}),
    );
    assert_wire(
        &CallCreateBatchRes {
            res: vec![
                CallBatchItemRes::Start(CallStartRes {
                    id: id.into(),
                    trace_id: "t".into(),
                }),
                CallBatchItemRes::End(CallEndRes {}),
            ],
        },
        json!({"res": [{"id": id, "trace_id": "t"}, {}]}),
    );
    assert_wire(
        &CallReadReq {
            project_id: "e/p".into(),
            id: id.into(),
            include_costs: false,
            include_storage_size: false,
            include_total_storage_size: false,
        },
        json!({"project_id": "e/p", "id": id, "include_costs": false,
               "include_storage_size": false, "include_total_storage_size": false}),
    );
    assert_wire(&CallReadRes { call: None }, json!({"call": null}));
    assert_wire(
        &CallsQueryStatsReq {
            project_id: "e/p".into(),
            filter: None,
            query: None,
            limit: None,
            include_total_storage_size: false,
            expand_columns: None,
        },
        json!({"project_id": "e/p", "filter": null, "query": null, "limit": null,
               "include_total_storage_size": false, "expand_columns": null}),
    );
    assert_wire(
        &CallsQueryStatsRes {
            count: 4,
            total_storage_size_bytes: None,
        },
        json!({"count": 4, "total_storage_size_bytes": null}),
    );
    assert_wire(
        &CallsDeleteReq {
            project_id: "e/p".into(),
            call_ids: vec![id.into()],
            wb_user_id: None,
        },
        json!({"project_id": "e/p", "call_ids": [id], "wb_user_id": null}),
    );
    assert_wire(
        &CallsDeleteRes { num_deleted: 3 },
        json!({"num_deleted": 3}),
    );
    // Older servers answer {} to a delete.
    let old: CallsDeleteRes = serde_json::from_value(json!({})).unwrap();
    assert_eq!(old.num_deleted, 0);
    assert_wire(
        &CallUpdateReq {
            project_id: "e/p".into(),
            call_id: id.into(),
            display_name: "".into(),
            wb_user_id: None,
        },
        json!({"project_id": "e/p", "call_id": id, "display_name": "", "wb_user_id": null}),
    );
    assert_wire(&CallUpdateRes {}, json!({}));
}

// ---------------------------------------------------------------------------------------------
// The recorded traffic of a real Weave server.
// (tests/data/sample-traffic.jsonl: the Python client, weave 0.54.0, against the reference
// server, recorded by tests/support/python/record_sample_traffic.py).

fn sample_traffic() -> Vec<Value> {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sample-traffic.jsonl");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| serde_json::from_str(l).unwrap_or_else(|e| panic!("line {}: {e}", i + 1)))
        .collect()
}

fn parse<T: DeserializeOwned>(what: &str, v: &Value) -> T {
    serde_json::from_value(v.clone())
        .unwrap_or_else(|e| panic!("{what} does not deserialise: {e}\n{v}"))
}

/// `ours` (our re-serialisation) agrees with `theirs` on every key both name (we add explicit
/// nulls and defaults for keys a client left out, and drop keys we do not model); timestamps
/// are compared as instants (the client writes `+00:00`, we write `Z`).
fn assert_same_on_common_keys(what: &str, theirs: &Value, ours: &Value) {
    let (t, o) = (theirs.as_object().unwrap(), ours.as_object().unwrap());
    for (k, tv) in t {
        let Some(ov) = o.get(k) else { continue };
        if k == "filter" && tv.is_object() {
            assert_same_on_common_keys(&format!("{what}.filter"), tv, ov);
            let extra: Vec<&String> = ov
                .as_object()
                .unwrap()
                .iter()
                .filter(|(k, v)| !tv.as_object().unwrap().contains_key(*k) && !v.is_null())
                .map(|(k, _)| k)
                .collect();
            assert!(extra.is_empty(), "{what}.filter: we invented {extra:?}");
        } else if k.ends_with("_at") && tv.is_string() {
            assert_eq!(
                ts(tv.as_str().unwrap()),
                ts(ov.as_str().expect("timestamp string")),
                "{what}.{k}"
            );
        } else {
            assert_eq!(tv, ov, "{what}.{k}");
        }
    }
}

/// A recorded end agrees with ours on every common key, and what we drop is only what the
/// protocol says servers ignore (`trace_id`, `display_name`, the v2 `started_at`) plus the
/// newest Python client's `is_eval`.
fn check_end(what: &str, theirs: &Value, ours: &EndedCallSchemaForInsert) {
    let ours = to_json(ours);
    assert_same_on_common_keys(what, theirs, &ours);
    let dropped: BTreeSet<&str> = keys(theirs).difference(&keys(&ours)).copied().collect();
    let ignorable = BTreeSet::from(["trace_id", "started_at", "display_name", "is_eval"]);
    assert!(dropped.is_subset(&ignorable), "{what}: dropped {dropped:?}");
}

/// Checks one recorded `CallSchema`: it deserialises, and re-serialising keeps every field the
/// protocol names, with the same value.
fn check_call_schema(what: &str, theirs: &Value) -> CallSchema {
    let call: CallSchema = parse(what, theirs);
    let ours = to_json(&call);
    for f in CALL_SCHEMA_FIELDS {
        let tv = theirs
            .get(*f)
            .unwrap_or_else(|| panic!("{what}: the server sent no {f}"));
        let ov = ours
            .get(*f)
            .unwrap_or_else(|| panic!("{what}: we dropped {f}"));
        if f.ends_with("_at") && tv.is_string() {
            let (t, o) = (tv.as_str().unwrap(), ov.as_str().unwrap());
            // The reference server writes UTC with `Z`, or (for calls ingested through
            // OpenTelemetry) naive UTC datetimes; either way we write the same instant with Z.
            let expected = if t.ends_with('Z') {
                t.to_string()
            } else {
                format!("{t}Z")
            };
            assert_eq!(o, expected, "{what}.{f}");
        } else {
            assert_eq!(tv, ov, "{what}.{f}");
        }
    }
    call
}

#[test]
fn every_calls_route_in_the_recorded_traffic_deserialises_into_our_types() {
    let traffic = sample_traffic();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut schemas = 0;
    for (i, entry) in traffic.iter().enumerate() {
        let path = entry["path"].as_str().expect("path");
        let what = format!("line {} {path}", i + 1);
        let (req, res) = (&entry["request_body"], &entry["response_body"]);
        if !path.starts_with("/call") || entry["status"] != 200 {
            continue;
        }
        match path {
            "/call/start" => {
                let r: CallStartReq = parse(&what, req);
                assert_same_on_common_keys(&what, &req["start"], &to_json(&r.start));
                let out: CallStartRes = parse(&what, res);
                assert_eq!(Some(&out.id), r.start.id.as_ref(), "{what}");
                assert_eq!(&to_json(&out), res, "{what}");
            }
            "/call/end" => {
                let r: CallEndReq = parse(&what, req);
                check_end(&what, &req["end"], &r.end);
                let _: CallEndRes = parse(&what, res);
                assert_eq!(&to_json(&CallEndRes {}), res, "{what}");
            }
            "/call/upsert_batch" => {
                let r: CallCreateBatchReq = parse(&what, req);
                let out: CallCreateBatchRes = parse(&what, res);
                assert_eq!(r.batch.len(), out.res.len(), "{what}: one result per item");
                assert_eq!(r.batch.len(), req["batch"].as_array().unwrap().len());
                for (j, (item, result)) in r.batch.iter().zip(&out.res).enumerate() {
                    let theirs = &req["batch"][j]["req"];
                    match (item, result) {
                        (CallBatchItem::Start(s), CallBatchItemRes::Start(sr)) => {
                            assert_eq!(s.start.id.as_ref(), Some(&sr.id), "{what}[{j}]");
                            assert_eq!(s.start.trace_id.as_ref(), Some(&sr.trace_id));
                            // The Python client sends every start field, explicit nulls
                            // included: our serialisation is exactly the same.
                            assert_eq!(to_json(&s.start), theirs["start"], "{what}[{j}]");
                        }
                        (CallBatchItem::End(e), CallBatchItemRes::End(_)) => {
                            check_end(&format!("{what}[{j}]"), &theirs["end"], &e.end);
                        }
                        _ => panic!("{what}[{j}]: result does not match the item's mode"),
                    }
                }
                assert_eq!(&to_json(&out), res, "{what}");
            }
            "/call/read" => {
                let r: CallReadReq = parse(&what, req);
                assert_same_on_common_keys(&what, req, &to_json(&r));
                let out: CallReadRes = parse(&what, res);
                match (&res["call"], &out.call) {
                    (Value::Null, None) => {}
                    (theirs, Some(c)) => {
                        let checked = check_call_schema(&what, theirs);
                        assert_eq!(&checked, c);
                        assert_eq!(c.id, r.id);
                        schemas += 1;
                    }
                    (theirs, None) => panic!("{what}: lost the call {theirs}"),
                }
            }
            "/calls/stream_query" | "/calls/query" => {
                let r: CallsQueryReq = parse(&what, req);
                assert_same_on_common_keys(&what, req, &to_json(&r));
                let key = if path == "/calls/query" {
                    "calls"
                } else {
                    "jsonl"
                };
                let rows = res[key]
                    .as_array()
                    .unwrap_or_else(|| panic!("{what}: no {key}"));
                assert!(!rows.is_empty(), "{what}: the recording has rows");
                for (j, row) in rows.iter().enumerate() {
                    let c = check_call_schema(&format!("{what}[{j}]"), row);
                    assert_eq!(c.project_id, r.project_id);
                    schemas += 1;
                }
            }
            "/calls/query_stats" => {
                let r: CallsQueryStatsReq = parse(&what, req);
                assert_same_on_common_keys(&what, req, &to_json(&r));
                let out: CallsQueryStatsRes = parse(&what, res);
                assert_eq!(json!(out.count), res["count"], "{what}");
                assert_eq!(
                    json!(out.total_storage_size_bytes),
                    res["total_storage_size_bytes"]
                );
            }
            "/calls/delete" => {
                let r: CallsDeleteReq = parse(&what, req);
                assert_same_on_common_keys(&what, req, &to_json(&r));
                assert!(r.call_ids.len() <= 1000);
                let out: CallsDeleteRes = parse(&what, res);
                assert_eq!(json!(out.num_deleted), res["num_deleted"], "{what}");
            }
            "/call/update" => {
                let r: CallUpdateReq = parse(&what, req);
                assert_same_on_common_keys(&what, req, &to_json(&r));
                let _: CallUpdateRes = parse(&what, res);
                assert_eq!(&to_json(&CallUpdateRes {}), res);
            }
            _ => continue,
        }
        seen.insert(path.to_string());
    }
    let expected: BTreeSet<String> = [
        "/call/start",
        "/call/end",
        "/call/upsert_batch",
        "/call/read",
        "/calls/stream_query",
        "/calls/query",
        "/calls/query_stats",
        "/calls/delete",
        "/call/update",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(seen, expected, "every calls route was exercised");
    assert!(schemas >= 10, "only {schemas} CallSchema rows checked");
}

#[test]
fn recorded_calls_keep_their_derived_summary_and_feedback() {
    // The richest rows: summary.weave with costs and feedback, a renamed call.
    let traffic = sample_traffic();
    let (mut costs, mut feedback, mut renamed) = (0, 0, 0);
    for entry in &traffic {
        if !matches!(
            entry["path"].as_str(),
            Some("/calls/stream_query" | "/call/read")
        ) {
            continue;
        }
        for row in entry["response_body"]["jsonl"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(
                entry["response_body"]["call"]
                    .as_object()
                    .map(|_| &entry["response_body"]["call"]),
            )
        {
            let call: CallSchema = parse("row", row);
            let summary = Value::Object(call.summary.clone().expect("summary"));
            assert_eq!(summary, row["summary"]);
            if summary["weave"].get("costs").is_some() {
                costs += 1;
            }
            if let Some(rows) = summary["weave"]["feedback"].as_array() {
                assert!(rows.iter().all(|f| f["weave_ref"]
                    .as_str()
                    .is_some_and(|r| r.ends_with(&call.id))));
                feedback += rows.len();
            }
            if call.display_name.is_some() {
                assert_eq!(summary["weave"]["display_name"], json!(call.display_name));
                assert!(summary["weave"].get("trace_name").is_none());
                renamed += 1;
            }
        }
    }
    assert!(
        costs > 0 && feedback > 0 && renamed > 0,
        "costs {costs}, feedback {feedback}, renamed {renamed}"
    );
}

#[test]
fn unknown_keys_in_inner_schemas_are_ignored() {
    // The JS client sends trace_id and display_name with an end; v2 ends carry started_at.
    let end: CallEndReq = serde_json::from_value(json!({"end": {
        "project_id": "e/p", "id": "x", "ended_at": "2025-01-02T03:04:05Z",
        "summary": {}, "trace_id": "t", "display_name": "d", "started_at": "2025-01-02T03:04:04Z",
    }}))
    .unwrap();
    assert_eq!(end.end.output, Value::Null);
    assert_eq!(end.end.exception, None);
    // A newer server's extra read-side fields (expire_at, …) are dropped, not an error.
    let call: CallSchema = serde_json::from_value(json!({
        "id": "x", "project_id": "e/p", "op_name": "op", "trace_id": "t",
        "started_at": "2025-01-02T03:04:05Z", "expire_at": null, "future_field": {"a": 1},
    }))
    .unwrap();
    assert_eq!(call.summary, None);
    assert!(to_json(&call).get("future_field").is_none());
}

#[test]
fn wrong_types_on_the_wire_are_errors_not_panics() {
    for bad in [
        json!({"start": {"project_id": "e/p", "op_name": "op", "started_at": "2025-01-02T03:04:05Z", "inputs": 5}}),
        json!({"start": {"project_id": "e/p", "op_name": "op", "started_at": "yesterday"}}),
        json!({"start": {"project_id": "e/p", "op_name": "op"}}),
        json!({"start": {"project_id": 1, "op_name": "op", "started_at": "2025-01-02T03:04:05Z"}}),
    ] {
        assert!(
            serde_json::from_value::<CallStartReq>(bad.clone()).is_err(),
            "{bad}"
        );
    }
    let err = serde_json::from_value::<CallStartReq>(json!({"start": {
        "project_id": "e/p", "op_name": "op", "started_at": "2025-13-02T03:04:05Z"}}))
    .unwrap_err();
    assert!(err.to_string().contains("invalid timestamp"), "{err}");
    // A lone surrogate escape cannot become a Rust string: an error, not a panic.
    let text = r#"{"start": {"project_id": "e/p", "op_name": "op", "started_at": "2025-01-02T03:04:05Z", "inputs": {"s": "\ud800"}}}"#;
    assert!(serde_json::from_str::<CallStartReq>(text).is_err());
    // A batch item with an unknown mode.
    assert!(serde_json::from_value::<CallCreateBatchReq>(
        json!({"batch": [{"mode": "delete", "req": {}}]})
    )
    .is_err());
}

// ---------------------------------------------------------------------------------------------
// Timestamps and ids.

#[test]
fn timestamps_parse_with_z_offsets_and_0_to_9_fractional_digits() {
    let base = ts("2025-01-02T03:04:05Z").as_nanos();
    let digits = "123456789";
    for n in 0..=9 {
        let frac = &digits[..n];
        let expected_nanos: i64 = if n == 0 {
            0
        } else {
            format!("{frac:0<9}").parse().unwrap()
        };
        let dot = if n == 0 { "" } else { "." };
        for suffix in ["Z", "+00:00"] {
            let s = format!("2025-01-02T03:04:05{dot}{frac}{suffix}");
            let t = ts(&s);
            assert_eq!(t.as_nanos() - base, expected_nanos, "{s}");
            // Through serde, inside a CallSchema, too.
            let call: CallSchema = serde_json::from_value(json!({
                "id": "x", "project_id": "e/p", "op_name": "op", "trace_id": "t",
                "started_at": s, "ended_at": s,
            }))
            .unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(call.started_at, t);
            assert_eq!(call.ended_at, Some(t));
        }
    }
    // Other offsets are converted to UTC.
    assert_eq!(
        ts("2025-01-02T05:04:05.5+02:00"),
        ts("2025-01-02T03:04:05.500Z")
    );
    assert_eq!(ts("2025-01-01T22:34:05-04:30"), ts("2025-01-02T03:04:05Z"));
    // Output: Python's microseconds with Z, nine digits only when needed.
    assert_eq!(
        ts("2025-01-02T03:04:05+00:00").to_string(),
        "2025-01-02T03:04:05.000000Z"
    );
    assert_eq!(
        ts("2025-01-02T03:04:05.1Z").to_string(),
        "2025-01-02T03:04:05.100000Z"
    );
    assert_eq!(
        ts("2025-01-02T03:04:05.123456789Z").to_string(),
        "2025-01-02T03:04:05.123456789Z"
    );
    assert_eq!(
        to_json(&ts("2025-01-02T03:04:05.123Z")),
        json!("2025-01-02T03:04:05.123000Z")
    );
    // No offset: read as UTC (the reference server writes such for OpenTelemetry calls).
    assert_eq!(ts("2025-01-02T03:04:05.25"), ts("2025-01-02T03:04:05.250Z"));
    for bad in [
        "",
        "2025-01-02",
        "2025-01-02T03:04",
        "2025-01-02 03:04:05Z junk",
        "not a time",
    ] {
        let err = bad.parse::<Timestamp>().unwrap_err();
        assert!(
            matches!(err, weave::WeaveError::InvalidInput(_)),
            "{bad:?}: {err:?}"
        );
    }
}

#[test]
fn naive_read_side_timestamps_are_taken_as_utc() {
    // The reference server returns OpenTelemetry-ingested calls without an offset.
    let call: CallSchema = serde_json::from_value(json!({
        "id": "9a90884ef5e53f22", "project_id": "e/p", "op_name": "otel_parent",
        "trace_id": "5ff58d209592c5405441616473a1310e",
        "started_at": "2026-11-24T12:30:31.885867", "ended_at": "2026-11-24T12:30:31.904820",
        "deleted_at": null,
    }))
    .unwrap();
    assert_eq!(call.started_at, ts("2026-11-24T12:30:31.885867Z"));
    assert_eq!(call.ended_at, Some(ts("2026-11-24T12:30:31.904820Z")));
    assert_eq!(call.deleted_at, None);
    assert_eq!(
        to_json(&call)["started_at"],
        json!("2026-11-24T12:30:31.885867Z")
    );
    let err = serde_json::from_value::<CallSchema>(json!({
        "id": "x", "project_id": "e/p", "op_name": "op", "trace_id": "t",
        "started_at": "24/11/2026 12:30",
    }))
    .unwrap_err();
    assert!(err.to_string().contains("invalid timestamp"), "{err}");
}

#[test]
fn nanosecond_timestamps_survive_the_store() {
    use weave::{SqliteServer, TraceServer};
    let server = SqliteServer::in_memory().unwrap();
    let mut s = minimal_start();
    s.id = Some(generate_id());
    s.started_at = ts("2025-01-02T03:04:05.123456789Z");
    let id = server.call_start(CallStartReq { start: s }).unwrap().id;
    let call = server
        .call_read(CallReadReq {
            project_id: "e/p".into(),
            id,
            include_costs: false,
            include_storage_size: false,
            include_total_storage_size: false,
        })
        .unwrap()
        .call
        .unwrap();
    assert_eq!(
        to_json(&call)["started_at"],
        "2025-01-02T03:04:05.123456789Z"
    );
}

#[test]
fn generated_ids_are_lowercase_uuidv7() {
    let before_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let ids: Vec<String> = (0..2000).map(|_| generate_id()).collect();
    let after_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let mut prev_ms = 0;
    for id in &ids {
        assert_eq!(id.len(), 36, "{id}");
        assert_eq!(id, &id.to_lowercase(), "{id}");
        let b = id.as_bytes();
        for (i, c) in b.iter().enumerate() {
            if [8, 13, 18, 23].contains(&i) {
                assert_eq!(*c, b'-', "{id}");
            } else {
                assert!(c.is_ascii_hexdigit(), "{id}");
            }
        }
        assert_eq!(b[14], b'7', "version nibble: {id}");
        assert!(b"89ab".contains(&b[19]), "variant bits 10: {id}");
        // 48-bit big-endian Unix milliseconds in the first 12 hex digits.
        let ms = u64::from_str_radix(&id[..8], 16).unwrap() << 16
            | u64::from_str_radix(&id[9..13], 16).unwrap();
        assert!(
            (before_ms..=after_ms).contains(&ms),
            "{id}: {ms} not in {before_ms}..={after_ms}"
        );
        assert!(ms >= prev_ms, "time-ordered");
        prev_ms = ms;
        assert!(weave::is_valid_call_id(id) && weave::is_valid_trace_id(id));
    }
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len());
}

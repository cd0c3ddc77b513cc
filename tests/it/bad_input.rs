//! Tests: bad_input. Bad input gets a clear, typed error or is stored with an explicit marker;
//! it never panics and never takes the store down (DESIGN "Failure policy").
//! On both backends: the reference server (weave's SqliteTraceServer) checks far less — ids,
//! project ids, op names, sizes — and where it accepts or stores what the embedded store
//! refuses, the test checks its own answer (see `is_reference`).

use serde::{Serialize, Serializer};
use serde_json::{json, Value};
use weave::limits::{exceeds_limits_marker, too_deep_marker, MAX_DEPTH};
use weave::schema::{
    CallBatchItem, CallCreateBatchReq, CallEndReq, CallReadReq, CallStartReq, CallUpdateReq,
    CallsDeleteReq, CallsQueryReq, CallsQueryStatsReq, EndedCallSchemaForInsert, JsonMap,
    StartedCallSchemaForInsert,
};
use weave::{
    generate_id, CallOptions, CallsQuery, Timestamp, TraceStatus, WeaveClient, WeaveError,
    MAX_DISPLAY_NAME_CHARS, REDACTED_VALUE,
};
use weave_testkit::backends;

use crate::common::{record, TestStore};

const PROJECT: &str = "test-entity/test-project";

fn opts() -> CallOptions {
    CallOptions::new().use_stack(false)
}

fn start(project_id: &str, id: Option<&str>, trace_id: Option<&str>) -> StartedCallSchemaForInsert {
    StartedCallSchemaForInsert {
        project_id: project_id.into(),
        id: id.map(str::to_string),
        op_name: "op".into(),
        display_name: None,
        trace_id: trace_id.map(str::to_string),
        parent_id: None,
        thread_id: None,
        turn_id: None,
        started_at: Timestamp::now(),
        attributes: JsonMap::new(),
        inputs: JsonMap::new(),
        otel_dump: None,
        wb_user_id: None,
        wb_run_id: None,
        wb_run_step: None,
    }
}

fn end(project_id: &str, id: &str) -> EndedCallSchemaForInsert {
    EndedCallSchemaForInsert {
        project_id: project_id.into(),
        id: id.into(),
        ended_at: Timestamp::now(),
        exception: None,
        output: Value::Null,
        summary: JsonMap::new(),
        wb_run_step_end: None,
    }
}

/// Asserts `r` is an `InvalidInput` whose message mentions every one of `words`.
#[track_caller]
fn assert_invalid<T: std::fmt::Debug>(r: Result<T, WeaveError>, words: &[&str]) -> String {
    match r {
        Err(e @ WeaveError::InvalidInput(_)) => {
            let msg = e.to_string();
            for w in words {
                assert!(msg.contains(w), "{msg:?} does not mention {w:?}");
            }
            msg
        }
        other => panic!("expected InvalidInput mentioning {words:?}, got {other:?}"),
    }
}

/// `r`, from a query route: over HTTP a 400 from a query route is an invalid query to the
/// remote backend, which cannot tell which part of a query request the server refused (the
/// message names it); the embedded store says invalid input.
fn from_query_route<T>(store: &TestStore, r: Result<T, WeaveError>) -> Result<T, WeaveError> {
    match r {
        Err(WeaveError::InvalidQuery(m)) if store.over_http() => Err(WeaveError::InvalidInput(m)),
        other => other,
    }
}

fn read_req(project_id: &str, id: &str) -> CallReadReq {
    CallReadReq {
        project_id: project_id.into(),
        id: id.into(),
        include_costs: false,
        include_storage_size: false,
        include_total_storage_size: false,
    }
}

fn stats_req(project_id: &str) -> CallsQueryStatsReq {
    CallsQueryStatsReq {
        project_id: project_id.into(),
        filter: None,
        query: None,
        limit: None,
        include_total_storage_size: false,
        expand_columns: None,
    }
}

fn delete_req(project_id: &str, id: &str) -> CallsDeleteReq {
    CallsDeleteReq {
        project_id: project_id.into(),
        call_ids: vec![id.into()],
        wb_user_id: None,
    }
}

fn update_req(project_id: &str, id: &str) -> CallUpdateReq {
    CallUpdateReq {
        project_id: project_id.into(),
        call_id: id.into(),
        display_name: "x".into(),
        wb_user_id: None,
    }
}

fn size(client: &WeaveClient) -> u64 {
    client.get_calls(CallsQuery::new()).size().unwrap()
}

fn read_back(client: &WeaveClient, id: &str) -> weave::Call {
    client.get_call(id).expect("the call is stored")
}

#[backends]
fn an_unknown_call_id_is_a_typed_not_found() {
    let store = TestStore::new();
    record(&store.client, "op", json!({}), json!(1));
    let id = generate_id();
    let err = store.client.get_call(&id).unwrap_err();
    assert!(err.is_not_found());
    match &err {
        WeaveError::NotFound { kind, id: got } => {
            assert_eq!((*kind, got.as_str()), ("call", id.as_str()));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(err.to_string(), format!("call not found: {id}"));
    assert!(store.client.call(&id).unwrap_err().is_not_found());

    // A malformed id is not a store failure: it is simply not there (or refused as input).
    for bad in [
        "",
        "not-an-id",
        "0193ABCD-0000-7000-8000-000000000000",
        "x'; DROP TABLE calls; --",
    ] {
        let err = store.client.get_call(bad).unwrap_err();
        if store.is_reference() && bad.contains('\'') {
            // Reference server: SqliteTraceServer.calls_query (behind /call/read) splices
            // `filter.call_ids` into its SQL as `'{x}'` literals, so an id with a quote is an
            // SQL syntax error, answered 500. The statement fails to parse: nothing is run.
            assert!(
                matches!(&err, WeaveError::Backend { message: m, .. } if m == "/call/read: HTTP 500: Internal server error"),
                "{bad:?}: {err:?}"
            );
        } else {
            assert!(
                err.is_not_found() || matches!(err, WeaveError::InvalidInput(_)),
                "{bad:?}: {err:?}"
            );
        }
    }
    assert_eq!(size(&store.client), 1, "the store is intact");
}

#[backends]
fn malformed_ids_through_the_server_are_invalid_input_naming_the_field() {
    let store = TestStore::new();
    let s = &store.server;
    for bad in [
        "not-an-id",
        "0193ABCD-0000-7000-8000-000000000000",
        "",
        "00F067AA0BA902B7",
    ] {
        if store.is_reference() {
            // Reference server: SqliteTraceServer.call_start only checks that `trace_id` and
            // `id` are present ("trace_id is required"), never their format, and call_end is
            // an `UPDATE … WHERE id = ?`: malformed ids are stored (or matched) as sent.
            assert_invalid(
                s.call_start(CallStartReq {
                    start: start(PROJECT, Some(bad), None),
                }),
                &["trace_id is required"],
            );
            s.call_start(CallStartReq {
                start: start(PROJECT, Some(bad), Some(&generate_id())),
            })
            .expect("a malformed call id is stored");
            s.call_end(CallEndReq {
                end: end(PROJECT, bad),
            })
            .expect("a malformed call id is accepted");
            s.call_start(CallStartReq {
                start: start(PROJECT, Some(&generate_id()), Some(bad)),
            })
            .expect("a malformed trace id is stored");
            continue;
        }
        assert_invalid(
            s.call_start(CallStartReq {
                start: start(PROJECT, Some(bad), None),
            }),
            &["call id"],
        );
        assert_invalid(
            s.call_end(CallEndReq {
                end: end(PROJECT, bad),
            }),
            &["call id"],
        );
        let id = generate_id();
        assert_invalid(
            s.call_start(CallStartReq {
                start: start(PROJECT, Some(&id), Some(bad)),
            }),
            &["trace id"],
        );
    }
    // OpenTelemetry ids are valid: a 16-hex span id and a 32-hex trace id.
    s.call_start(CallStartReq {
        start: start(
            PROJECT,
            Some("00f067aa0ba902b7"),
            Some("4bf92f3577b34da6a3ce929d0e0e4736"),
        ),
    })
    .expect("otel ids");
    if store.is_reference() {
        // Reference server: the 4 malformed call ids and the 4 malformed trace ids were stored.
        assert_eq!(size(&store.client), 9);
    } else {
        assert_eq!(size(&store.client), 1, "only the valid start was stored");
    }
}

#[backends]
fn malformed_project_ids_are_invalid_input_on_every_route() {
    let store = TestStore::new();
    let s = &store.server;
    let id = generate_id();
    for bad in ["", "noslash", "a/b/c", "/p", "e/"] {
        if store.is_reference() {
            // Reference server: project ids are not validated. ref_server.py's
            // B64IdConverter.ext_to_int_project_id base64-encodes any string and
            // SqliteTraceServer never checks it, so each malformed id is just another project.
            let id = generate_id();
            s.call_start(CallStartReq {
                start: start(bad, Some(&id), Some(&generate_id())),
            })
            .expect("start");
            s.call_end(CallEndReq { end: end(bad, &id) }).expect("end");
            assert!(s.call_read(read_req(bad, &id)).unwrap().call.is_some());
            assert_eq!(
                s.calls_query_stream(CallsQueryReq::new(bad))
                    .unwrap()
                    .count(),
                1
            );
            assert_eq!(s.calls_query_stats(stats_req(bad)).unwrap().count, 1);
            s.call_update(update_req(bad, &id)).expect("update");
            assert_eq!(s.calls_delete(delete_req(bad, &id)).unwrap().num_deleted, 1);
            continue;
        }
        let words = &["project_id", bad];
        assert_invalid(
            s.call_start(CallStartReq {
                start: start(bad, Some(&id), None),
            }),
            words,
        );
        assert_invalid(s.call_end(CallEndReq { end: end(bad, &id) }), words);
        assert_invalid(s.call_read(read_req(bad, &id)), words);
        assert_invalid(
            from_query_route(
                &store,
                s.calls_query_stream(CallsQueryReq::new(bad)).map(|_| ()),
            ),
            words,
        );
        assert_invalid(
            from_query_route(&store, s.calls_query_stats(stats_req(bad))),
            words,
        );
        assert_invalid(s.calls_delete(delete_req(bad, &id)), words);
        assert_invalid(s.call_update(update_req(bad, &id)), words);
    }
    // The client checks its entity and project up front.
    for (e, p) in [
        ("", "p"),
        ("e", ""),
        ("a/b", "p"),
        ("e", "p/q"),
        ("e\u{7}", "p"),
        (" ", "p"),
    ] {
        assert_invalid(
            WeaveClient::new(e, p, store.server.clone(), false),
            &["must be non-empty"],
        );
    }
    assert_eq!(size(&store.client), 0);
}

#[backends]
fn one_bad_item_rejects_the_whole_batch_and_names_it() {
    let store = TestStore::new();
    let good = generate_id();
    if store.is_reference() {
        // Reference server: no transaction and no id check. ref_server.py fans the batch out
        // to call_start/call_end one by one (as SqliteTraceServer.call_start_batch does), each
        // committed on its own: the end of "BAD" is accepted, and the start without a
        // `trace_id` after it fails alone, leaving the good start stored.
        assert_invalid(
            store.server.call_start_batch(CallCreateBatchReq {
                batch: vec![
                    CallBatchItem::Start(CallStartReq {
                        start: start(PROJECT, Some(&good), Some(&generate_id())),
                    }),
                    CallBatchItem::End(CallEndReq {
                        end: end(PROJECT, "BAD"),
                    }),
                    CallBatchItem::Start(CallStartReq {
                        start: start(PROJECT, Some(&generate_id()), None),
                    }),
                ],
            }),
            &["trace_id is required"],
        );
        assert!(store.client.get_call(&good).is_ok(), "not rolled back");
        assert_eq!(size(&store.client), 1);
        return;
    }
    let msg = assert_invalid(
        store.server.call_start_batch(CallCreateBatchReq {
            batch: vec![
                CallBatchItem::Start(CallStartReq {
                    start: start(PROJECT, Some(&good), None),
                }),
                CallBatchItem::End(CallEndReq {
                    end: end(PROJECT, "BAD"),
                }),
            ],
        }),
        &["batch item 1", "call id", "BAD"],
    );
    assert!(!msg.contains("batch item 0"), "{msg}");
    // The batch is one transaction: the good start before the bad item was rolled back.
    assert!(store.client.get_call(&good).unwrap_err().is_not_found());
    assert_eq!(size(&store.client), 0);
}

#[backends]
fn inputs_that_are_not_a_json_object_are_invalid_input() {
    let store = TestStore::new();
    let c = &store.client;
    assert_invalid(c.create_call("op", 42), &["JSON object", "a number"]);
    assert_invalid(c.create_call("op", "text"), &["JSON object", "a string"]);
    assert_invalid(
        c.create_call("op", json!([1, 2])),
        &["JSON object", "an array"],
    );
    assert_invalid(c.create_call("op", ()), &["JSON object", "null"]);
    assert_invalid(c.create_call("op", true), &["JSON object", "a bool"]);
    assert_invalid(c.create_call("op", f64::NAN), &["JSON object"]);
    // Structs and maps are objects.
    #[derive(Serialize)]
    struct Args {
        city: String,
        days: u8,
    }
    let call = c
        .create_call_with(
            "op",
            Args {
                city: "Paris".into(),
                days: 3,
            },
            opts(),
        )
        .unwrap();
    c.finish_call(&call, json!(null)).unwrap();
    assert_eq!(
        Value::Object(read_back(c, call.id()).inputs().clone()),
        json!({"city": "Paris", "days": 3})
    );
    assert_eq!(size(c), 1, "nothing was recorded for the rejected calls");
    assert_eq!(c.dropped(), 0);
}

/// A value whose `Serialize` always fails.
struct Unserializable;

impl Serialize for Unserializable {
    fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom(
            "boom: a socket cannot be serialised",
        ))
    }
}

#[backends]
fn a_failing_serialize_is_recorded_as_a_readable_placeholder() {
    let store = TestStore::new();
    let c = &store.client;

    let call = c.create_call_with("op", Unserializable, opts()).unwrap();
    c.finish_call(&call, Unserializable).unwrap();
    let back = read_back(c, call.id());
    let placeholder = back.inputs()["_unserializable"]
        .as_str()
        .expect("a string placeholder")
        .to_string();
    assert!(placeholder.contains("unserializable"), "{placeholder}");
    assert!(
        placeholder.contains("boom: a socket cannot be serialised"),
        "{placeholder}"
    );
    assert!(
        placeholder.contains("Unserializable"),
        "names the type: {placeholder}"
    );
    let output = back.output();
    let output = output.as_str().expect("a string placeholder");
    assert!(output.contains("boom"), "{output}");
    assert_eq!(back.status(), TraceStatus::Success);

    // A field that fails inside a struct, and a map whose keys are not strings.
    #[derive(Serialize)]
    struct Args {
        ok: i32,
        bad: Unserializable,
    }
    let call = c
        .create_call_with(
            "op",
            Args {
                ok: 1,
                bad: Unserializable,
            },
            opts(),
        )
        .unwrap();
    let tuple_keys: std::collections::BTreeMap<(i32, i32), i32> = [((1, 2), 3)].into();
    c.finish_call(&call, &tuple_keys).unwrap();
    let back = read_back(c, call.id());
    assert!(back.inputs()["_unserializable"]
        .as_str()
        .unwrap()
        .contains("boom"));
    let output = back.output();
    assert!(
        output.as_str().unwrap().contains("key must be a string"),
        "{output}"
    );
    assert_eq!(c.dropped(), 0);
}

#[backends]
fn nan_and_infinities_never_panic_and_are_stored_as_null() {
    // serde_json has no NaN or infinity: such floats become JSON null, in inputs and output.
    let store = TestStore::new();
    let c = &store.client;
    let call = c
        .create_call_with(
            "op",
            json!({"nan": f64::NAN, "inf": f64::INFINITY, "ninf": f64::NEG_INFINITY, "ok": 1.5,
                   "list": [f64::NAN, 2.0]}),
            opts(),
        )
        .unwrap();
    c.finish_call(&call, f64::INFINITY).unwrap();
    let back = read_back(c, call.id());
    assert_eq!(
        Value::Object(back.inputs().clone()),
        json!({"nan": null, "inf": null, "ninf": null, "ok": 1.5, "list": [null, 2.0]})
    );
    assert_eq!(back.output(), Value::Null);
    assert_eq!(back.status(), TraceStatus::Success);

    // Through a derived Serialize too (a struct field and a map value).
    #[derive(Serialize)]
    struct Scores {
        loss: f64,
        per_class: std::collections::BTreeMap<String, f32>,
    }
    let call = c
        .create_call_with(
            "op",
            Scores {
                loss: f64::NAN,
                per_class: [("a".to_string(), f32::NEG_INFINITY)].into(),
            },
            opts(),
        )
        .unwrap();
    c.finish_call(&call, json!({"loss": f64::NAN})).unwrap();
    let back = read_back(c, call.id());
    assert_eq!(
        Value::Object(back.inputs().clone()),
        json!({"loss": null, "per_class": {"a": null}})
    );
    assert_eq!(back.output(), json!({"loss": null}));
    assert_eq!(c.dropped(), 0);
}

#[backends]
fn nul_characters_and_unusual_unicode_round_trip() {
    let store = TestStore::new();
    let c = &store.client;
    let inputs = json!({
        "nul": "a\u{0}b",
        "k\u{0}ey": "key with a NUL",
        "emoji": "👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈",
        "cjk": "漢字かなカナ",
        "rtl": "مرحبا بالعالم",
        "combining": "e\u{301}",
        "max": "\u{10FFFF}\u{FFFF}\u{FEFF}",
        "controls": "\u{1}\u{1f}\u{7f}\t\r\n",
        "quotes": "\"'\\`; DROP TABLE calls; --",
        "big": "😀".repeat(200_000),
    });
    let call = c
        .create_call_with(
            "ünïcødé_op_🚀",
            inputs.clone(),
            opts()
                .display_name("名前 \u{0} 🎉")
                .attribute("note", "a\u{0}b"),
        )
        .unwrap();
    c.finish_call(&call, json!({"echo": "a\u{0}b", "emoji": "🦀"}))
        .unwrap();

    let back = read_back(c, call.id());
    assert_eq!(Value::Object(back.inputs().clone()), inputs);
    assert_eq!(back.output(), json!({"echo": "a\u{0}b", "emoji": "🦀"}));
    // The op name becomes an op ref, its name sanitized as Python sanitizes object names.
    assert_eq!(back.op_name(), call.op_name());
    assert!(back.op_name().starts_with("weave:///"));
    assert_eq!(back.func_name(), "ünïcødé_op");
    assert_eq!(back.display_name().as_deref(), Some("名前 \u{0} 🎉"));
    assert_eq!(back.attributes()["note"], json!("a\u{0}b"));
    assert_eq!(
        back.weave_summary().unwrap()["display_name"],
        json!("名前 \u{0} 🎉")
    );
}

#[backends]
fn a_5_mib_input_is_stored_as_the_exceeds_limits_marker() {
    let store = TestStore::new();
    let c = &store.client;
    let big = "x".repeat(5 * 1024 * 1024);
    let call = c
        .create_call_with("op", json!({"big": big, "small": 1}), opts())
        .unwrap();
    c.finish_call(&call, json!({"answer": 42})).unwrap();

    let back = read_back(c, call.id());
    // Reference server: the marker is the ClickHouse server's (ENTITY_TOO_LARGE_PAYLOAD in
    // clickhouse_trace_server_settings.py, put in by clickhouse_trace_server_batched.py);
    // SqliteTraceServer.call_start/call_end store `json.dumps` of any size as is.
    let remote = store.is_reference();
    if remote {
        assert_eq!(
            Value::Object(back.inputs().clone()),
            json!({"big": big, "small": 1})
        );
    } else {
        assert_eq!(
            Value::Object(back.inputs().clone()),
            json!({"_weave": {"error": "<EXCEEDS_LIMITS>"}})
        );
        assert_eq!(
            Value::Object(back.inputs().clone()),
            exceeds_limits_marker()
        );
    }
    assert_eq!(
        back.output(),
        json!({"answer": 42}),
        "the rest of the call is kept"
    );
    assert_eq!(back.status(), TraceStatus::Success);
    assert!(
        back.attributes().contains_key("weave"),
        "attributes are kept"
    );
    assert_eq!(size(c), 1);
    assert_eq!(c.dropped(), 0);

    // The same for a 5 MiB output.
    let call = c.create_call_with("op", json!({"q": 1}), opts()).unwrap();
    c.finish_call(&call, json!({"blob": big})).unwrap();
    let back = read_back(c, call.id());
    if remote {
        assert_eq!(back.output(), json!({"blob": big}));
    } else {
        assert_eq!(back.output(), exceeds_limits_marker());
    }
    assert_eq!(Value::Object(back.inputs().clone()), json!({"q": 1}));
    assert!(back.is_finished());
}

#[backends]
fn an_input_under_the_row_limit_is_kept_whole() {
    // 2 MiB is over the 1 MiB field limit but the row is under 3.5 MiB: kept, as the server does.
    let store = TestStore::new();
    let big = "y".repeat(2 * 1024 * 1024);
    let call = record(&store.client, "op", json!({"big": big}), json!(null));
    let back = read_back(&store.client, call.id());
    assert_eq!(back.inputs()["big"].as_str().map(str::len), Some(big.len()));
}

/// `{"a": {"a": ... "leaf"}}`, `depth` objects deep (built without `json!`, which would
/// re-serialise the whole value at every level).
fn nested(depth: usize) -> Value {
    let mut v = Value::from("leaf");
    for _ in 0..depth {
        let mut m = JsonMap::new();
        m.insert("a".into(), v);
        v = Value::Object(m);
    }
    v
}

/// Follows `"a"` keys from `v`; returns how many levels it went down and where it stopped.
fn descend(v: &Value) -> (usize, &Value) {
    let mut cur = v;
    let mut n = 0;
    while let Some(next) = cur.get("a") {
        cur = next;
        n += 1;
    }
    (n, cur)
}

#[backends]
fn a_value_nested_500_levels_is_stored_with_the_depth_marker() {
    let store = TestStore::new();
    let c = &store.client;
    let call = c.create_call_with("op", nested(500), opts()).unwrap();
    c.finish_call(&call, nested(500)).unwrap();

    let back = read_back(c, call.id());
    // The inputs object is level 0: everything from level MAX_DEPTH down is one marker.
    let inputs = Value::Object(back.inputs().clone());
    let (levels, stop) = descend(&inputs);
    assert_eq!(levels, MAX_DEPTH);
    assert_eq!(stop, &too_deep_marker());
    assert_eq!(stop, &json!({"_weave": {"error": "<EXCEEDS_MAX_DEPTH>"}}));
    let output = back.output();
    let (levels, stop) = descend(&output);
    assert_eq!(levels, MAX_DEPTH);
    assert_eq!(stop, &too_deep_marker());
    assert_eq!(back.status(), TraceStatus::Success);

    // Shallower values are untouched.
    let ok = nested(MAX_DEPTH - 2);
    let call = record(c, "op", json!({"x": ok.clone()}), json!(null));
    assert_eq!(read_back(c, call.id()).inputs()["x"], ok);
    assert_eq!(c.dropped(), 0);
}

/// Drops a deep value without recursion (its own `Drop` recurses once per level).
fn drop_deep(v: Value) {
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(m) => stack.extend(m.into_iter().map(|(_, v)| v)),
            Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
}

#[backends]
fn a_value_nested_thousands_of_levels_deep_is_capped_not_a_stack_overflow() {
    let store = TestStore::new();
    let c = &store.client;
    let deep = nested(20_000);
    let call = c.create_call_with("op", &deep, opts()).unwrap();
    c.finish_call(&call, &deep).unwrap();
    drop_deep(deep);
    let back = read_back(c, call.id());
    let inputs = Value::Object(back.inputs().clone());
    assert_eq!(descend(&inputs), (MAX_DEPTH, &too_deep_marker()));
    let output = back.output();
    assert_eq!(descend(&output), (MAX_DEPTH, &too_deep_marker()));
}

#[backends]
fn op_names_over_128_characters_are_rejected() {
    let store = TestStore::new();
    let c = &store.client;
    assert_invalid(
        c.create_call("x".repeat(129).as_str(), json!({})),
        &["128", "129"],
    );
    assert_invalid(c.create_call("", json!({})), &["op name"]);
    assert_invalid(
        c.create_call("weave:///e/p/object/thing:abc", json!({})),
        &["not an op ref"],
    );
    // 128 characters is fine, counted in characters, not bytes.
    record(c, &"x".repeat(128), json!({}), json!(null));
    record(c, &"é".repeat(128), json!({}), json!(null));
    assert_eq!(size(c), 2);
    // An op ref may be longer than 128 characters.
    let long_ref = format!("weave:///e/p/op/{}:abc", "n".repeat(200));
    record(c, &long_ref, json!({}), json!(null));
    assert_eq!(size(c), 3);

    // The server refuses them too.
    let mut s = start(PROJECT, Some(&generate_id()), None);
    s.op_name = "y".repeat(129);
    if store.is_reference() {
        // Reference server: SqliteTraceServer.call_start has no op_name length check (W&B's
        // ClickHouse server has); it only requires the `trace_id` this request omits.
        assert_invalid(
            store.server.call_start(CallStartReq { start: s.clone() }),
            &["trace_id is required"],
        );
        s.trace_id = Some(generate_id());
        store
            .server
            .call_start(CallStartReq { start: s })
            .expect("a 129-character op_name is stored");
        assert_eq!(size(c), 4);
    } else {
        assert_invalid(
            store.server.call_start(CallStartReq { start: s }),
            &["op_name"],
        );
        assert_eq!(size(c), 3);
    }
}

#[backends]
fn display_names_over_1024_characters_are_truncated() {
    let store = TestStore::new();
    let c = &store.client;
    assert_eq!(MAX_DISPLAY_NAME_CHARS, 1024);
    for (name, expected) in [
        ("d".repeat(5000), format!("{}...", "d".repeat(1021))),
        ("é".repeat(1025), format!("{}...", "é".repeat(1021))),
        ("k".repeat(1024), "k".repeat(1024)),
    ] {
        let call = c
            .create_call_with("op", json!({}), opts().display_name(name))
            .unwrap();
        assert_eq!(call.display_name().as_deref(), Some(expected.as_str()));
        c.finish_call(&call, json!(null)).unwrap();
        let back = read_back(c, call.id());
        assert_eq!(back.display_name().as_deref(), Some(expected.as_str()));
        assert_eq!(
            back.display_name().unwrap().chars().count(),
            expected.chars().count()
        );
        assert_eq!(
            back.weave_summary().unwrap()["display_name"],
            json!(expected)
        );
    }
    // Renaming later truncates the same way.
    let call = record(c, "op", json!({}), json!(null));
    call.set_display_name("r".repeat(2000)).unwrap();
    let expected = format!("{}...", "r".repeat(1021));
    assert_eq!(read_back(c, call.id()).display_name(), Some(expected));
}

#[backends]
fn the_attribute_key_weave_is_reserved() {
    let store = TestStore::new();
    let c = &store.client;
    assert_invalid(
        c.create_call_with(
            "op",
            json!({}),
            opts().attribute("weave", json!({"source": "me"})),
        ),
        &["weave", "reserved"],
    );
    assert_eq!(size(c), 0);
    // Other keys are fine, and the SDK's own block is there.
    let call = c
        .create_call_with("op", json!({}), opts().attribute("weave_like", 1))
        .unwrap();
    c.finish_call(&call, json!(null)).unwrap();
    let back = read_back(c, call.id());
    assert_eq!(back.attributes()["weave_like"], json!(1));
    assert_eq!(back.attributes()["weave"]["source"], json!("rust-sdk"));
}

#[backends]
fn finishing_a_call_twice_is_an_error_and_keeps_the_first_end() {
    let store = TestStore::new();
    let c = &store.client;
    let call = c.create_call_with("op", json!({}), opts()).unwrap();
    c.finish_call(&call, json!("first")).unwrap();
    assert_invalid(
        c.finish_call(&call, json!("second")),
        &["already finished", call.id()],
    );
    assert_invalid(
        c.fail_call(&call, "late error".to_string()),
        &["already finished"],
    );

    let back = read_back(c, call.id());
    assert_eq!(back.output(), json!("first"));
    assert_eq!(back.exception(), None);
    assert_eq!(back.status(), TraceStatus::Success);
    assert_eq!(
        call.output(),
        json!("first"),
        "the handle keeps the first end too"
    );
    // A finished call read back from the store cannot be finished again either.
    assert_invalid(c.finish_call(&back, json!("third")), &["already finished"]);
    assert_eq!(read_back(c, call.id()).output(), json!("first"));
    // A failed call likewise.
    let failed = c.create_call_with("op", json!({}), opts()).unwrap();
    c.fail_call(&failed, "boom".to_string()).unwrap();
    assert_invalid(c.finish_call(&failed, json!(1)), &["already finished"]);
    assert_eq!(read_back(c, failed.id()).status(), TraceStatus::Error);
}

#[backends]
fn secret_input_keys_are_stored_as_redacted() {
    let store = TestStore::new();
    let c = &store.client;
    let call = c
        .create_call_with(
            "op",
            json!({
                "api_key": "sk-123",
                "API_KEY": "sk-456",
                "authorization": "Bearer abc",
                "headers": {"Authorization": "Basic xyz", "accept": "json"},
                "clients": [{"auth_headers": {"x": "secret"}, "name": "a"}],
                "prompt": "my api_key is in the text, not a key",
            }),
            opts(),
        )
        .unwrap();
    c.finish_call(&call, json!(null)).unwrap();
    let back = read_back(c, call.id());
    assert_eq!(
        Value::Object(back.inputs().clone()),
        json!({
            "api_key": REDACTED_VALUE,
            "API_KEY": REDACTED_VALUE,
            "authorization": REDACTED_VALUE,
            "headers": {"Authorization": REDACTED_VALUE, "accept": "json"},
            "clients": [{"auth_headers": REDACTED_VALUE, "name": "a"}],
            "prompt": "my api_key is in the text, not a key",
        })
    );
    assert_eq!(REDACTED_VALUE, "REDACTED");
    // The live handle never held the secret either.
    assert_eq!(call.inputs()["api_key"], json!("REDACTED"));
}

#[backends]
fn given_call_and_trace_ids_are_checked_and_kept() {
    let store = TestStore::new();
    let c = &store.client;
    let err = c
        .create_call_with("op", json!({}), opts().id("NOT-AN-ID"))
        .unwrap_err();
    assert!(matches!(err, WeaveError::InvalidInput(_)), "{err}");
    assert!(err.to_string().contains("\"NOT-AN-ID\""), "{err}");
    let err = c
        .create_call_with("op", json!({}), opts().trace_id("0123"))
        .unwrap_err();
    assert!(err.to_string().contains("trace id \"0123\""), "{err}");

    // OpenTelemetry-shaped ids, kept as given.
    let root = c
        .create_call_with(
            "op",
            json!({}),
            opts()
                .id("00f067aa0ba902b7")
                .trace_id("4bf92f3577b34da6a3ce929d0e0e4736"),
        )
        .unwrap();
    // A child is in its parent's trace: another trace id is refused.
    let err = c
        .create_call_with(
            "child",
            json!({}),
            opts().parent(&root).trace_id(&*generate_id()),
        )
        .unwrap_err();
    assert!(err.to_string().contains("is not the parent's"), "{err}");
    let child = c
        .create_call_with(
            "child",
            json!({}),
            opts().parent(&root).id("b7ad6b7169203331"),
        )
        .unwrap();
    c.finish_call(&child, 1).unwrap();
    c.finish_call(&root, 2).unwrap();
    c.flush();
    let read = c.get_call("b7ad6b7169203331").unwrap();
    assert_eq!(read.parent_id(), Some("00f067aa0ba902b7"));
    assert_eq!(read.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
}

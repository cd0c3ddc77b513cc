//! Bad input on purpose: malformed bodies thrown at every route of a real `weave serve`
//! process. Random bytes, truncated JSON, values of the wrong type, huge strings and arrays,
//! deep nesting, invalid UTF-8, bad ids and refs. None may be answered with a 5xx, the server
//! must keep answering, and what the store held before must still be there, unchanged.
//!
//! The bodies are derived from one valid body per route by a seeded generator, so a failure
//! is reproducible: the message names the route, the mutation and the seed.

mod support;

use serde_json::{json, Value};
use support::{http, Served};
use weave_testkit::Rng;

/// A valid body for each JSON route, on the project `fz/p`.
fn valid_bodies() -> Vec<(&'static str, Value)> {
    let id = "01945d2e-3b5c-7d2a-9c1e-4b5a6c7d8e9f";
    let trace = "01945d2e-3b5c-7d2a-9c1e-4b5a6c7d8e90";
    let start = json!({
        "project_id": "fz/p", "id": id, "op_name": "weave:///fz/p/op/f:abc", "display_name": null,
        "trace_id": trace, "parent_id": null, "thread_id": "t", "turn_id": id,
        "started_at": "2025-01-02T03:04:05.123456Z", "attributes": {"a": 1},
        "inputs": {"x": "weave:///fz/p/object/o:abc", "y": [1, 2, {"z": null}]},
        "otel_dump": null, "wb_user_id": null, "wb_run_id": null, "wb_run_step": null,
    });
    let end = json!({
        "project_id": "fz/p", "id": id, "ended_at": "2025-01-02T03:04:06Z", "exception": null,
        "output": {"o": 1}, "summary": {"usage": {"m": {"input_tokens": 3, "output_tokens": 4, "requests": 1}}},
        "wb_run_step_end": null,
    });
    let mut complete = start.clone();
    for (k, v) in end.as_object().unwrap() {
        complete[k] = v.clone();
    }
    let query = json!({"$expr": {"$and": [
        {"$eq": [{"$getField": "op_name"}, {"$literal": "x"}]},
        {"$gt": [{"$convert": {"input": {"$getField": "inputs.n"}, "to": "double"}}, {"$literal": 1}]},
        {"$contains": {"input": {"$getField": "inputs.s"}, "substr": {"$literal": "a"}, "case_insensitive": true}},
        {"$in": [{"$getField": "id"}, [{"$literal": id}]]},
        {"$not": [{"$gte": [{"$getField": "started_at"}, {"$literal": 5}]}]},
    ]}});
    let filter = json!({"op_names": ["weave:///fz/p/op/f:*"], "trace_roots_only": true, "call_ids": [id],
        "parent_ids": null, "trace_ids": [trace], "input_refs": ["weave:///fz/p/object/o:abc"], "thread_ids": ["t"]});
    let calls_query = json!({
        "project_id": "fz/p", "filter": filter, "query": query, "limit": 10, "offset": 1,
        "sort_by": [{"field": "inputs.n", "direction": "desc"}], "columns": ["inputs", "summary.weave.status"],
        "include_costs": true, "include_feedback": true, "expand_columns": ["inputs.x"],
    });
    let fb = json!({"project_id": "fz/p", "weave_ref": format!("weave:///fz/p/call/{id}"), "creator": "me",
        "feedback_type": "wandb.reaction.1", "payload": {"emoji": "👍"}, "wb_user_id": null});
    let mut fb_replace = fb.clone();
    fb_replace["feedback_id"] = json!(id);
    let fb_query = json!({"project_id": "fz/p", "fields": ["id", "payload.emoji"], "query": query,
        "sort_by": [{"field": "created_at", "direction": "asc"}], "limit": 5, "offset": 0});
    let by_id = json!({"$expr": {"$eq": [{"$getField": "id"}, {"$literal": id}]}});
    let table_digest = "a".repeat(64);
    vec![
        ("/call/start", json!({"start": start})),
        ("/call/end", json!({"end": end})),
        (
            "/call/upsert_batch",
            json!({"batch": [{"mode": "start", "req": {"start": start}}, {"mode": "end", "req": {"end": end}}]}),
        ),
        ("/v2/fz/p/calls/complete", json!({"batch": [complete]})),
        (
            "/call/read",
            json!({"project_id": "fz/p", "id": id, "include_costs": true, "include_storage_size": true}),
        ),
        ("/calls/stream_query", calls_query.clone()),
        ("/calls/query", calls_query),
        (
            "/calls/query_stats",
            json!({"project_id": "fz/p", "filter": filter, "query": query, "limit": 3, "include_total_storage_size": true}),
        ),
        (
            "/calls/delete",
            json!({"project_id": "fz/p", "call_ids": [id], "wb_user_id": null}),
        ),
        (
            "/call/update",
            json!({"project_id": "fz/p", "call_id": id, "display_name": "n", "wb_user_id": null}),
        ),
        (
            "/obj/create",
            json!({"obj": {"project_id": "fz/p", "object_id": "o", "val": {"a": [1, {"b": "weave:///fz/p/object/p:abc"}]}, "builtin_object_class": null, "wb_user_id": null}}),
        ),
        (
            "/obj/read",
            json!({"project_id": "fz/p", "object_id": "o", "digest": "latest", "metadata_only": false}),
        ),
        (
            "/objs/query",
            json!({"project_id": "fz/p", "filter": {"object_ids": ["o"], "latest_only": true, "is_op": false, "base_object_classes": ["Dataset"]}, "limit": 3, "offset": 0, "sort_by": [{"field": "created_at", "direction": "desc"}], "metadata_only": true}),
        ),
        (
            "/obj/delete",
            json!({"project_id": "fz/p", "object_id": "o", "digests": ["abc"]}),
        ),
        (
            "/table/create",
            json!({"table": {"project_id": "fz/p", "rows": [{"a": 1}, {"a": 2}]}}),
        ),
        (
            "/table/update",
            json!({"project_id": "fz/p", "base_digest": table_digest, "updates": [{"append": {"row": {"a": 3}}}, {"pop": {"index": 0}}, {"insert": {"index": 1, "row": {"a": 0}}}]}),
        ),
        (
            "/table/query",
            json!({"project_id": "fz/p", "digest": table_digest, "filter": {"row_digests": ["x"]}, "limit": 2, "offset": 0, "sort_by": [{"field": "a", "direction": "asc"}]}),
        ),
        (
            "/table/query_stream",
            json!({"project_id": "fz/p", "digest": table_digest, "limit": 2}),
        ),
        (
            "/table/query_stats",
            json!({"project_id": "fz/p", "digest": table_digest}),
        ),
        (
            "/table/query_stats_batch",
            json!({"project_id": "fz/p", "digests": [table_digest, "b"]}),
        ),
        (
            "/refs/read_batch",
            json!({"refs": ["weave:///fz/p/object/o:abc", "weave:///fz/p/object/o:abc/attr/rows/index/0"]}),
        ),
        (
            "/file/content",
            json!({"project_id": "fz/p", "digest": "abc"}),
        ),
        (
            "/files/content",
            json!({"project_id": "fz/p", "digest": "abc"}),
        ),
        ("/feedback/create", fb.clone()),
        ("/feedback/batch/create", json!({"batch": [fb]})),
        ("/feedback/query", fb_query),
        (
            "/feedback/purge",
            json!({"project_id": "fz/p", "query": by_id}),
        ),
        ("/feedback/replace", fb_replace),
        (
            "/cost/create",
            json!({"project_id": "fz/p", "costs": {"m": {"prompt_token_cost": 0.1, "completion_token_cost": 0.2, "effective_date": "2024-01-01T00:00:00Z", "provider_id": "p"}}, "wb_user_id": null}),
        ),
        (
            "/cost/query",
            json!({"project_id": "fz/p", "fields": ["id", "llm_id"], "query": by_id, "sort_by": [{"field": "llm_id", "direction": "asc"}], "limit": 5, "offset": 0}),
        ),
        ("/cost/purge", json!({"project_id": "fz/p", "query": by_id})),
        (
            "/threads/stream_query",
            json!({"project_id": "fz/p", "filter": {"thread_ids": ["t"], "after_datetime": "2020-01-01T00:00:00Z"}, "limit": 5, "offset": 0, "sort_by": [{"field": "turn_count", "direction": "desc"}]}),
        ),
        (
            "/graphql",
            json!({"query": "query { viewer { username } }", "variables": {"name": "x"}}),
        ),
    ]
}

const BAD_STRINGS: &[&str] = &[
    "",
    "not-a-uuid",
    "01945d2e-3b5c-7d2a-9c1e-4b5a6c7d8e9f'; DROP TABLE calls; --",
    "weave:///",
    "weave:///fz/p/object/o:latest",
    "weave:///fz/p/table/zz",
    "weave:///fz/p/call/x/attr/y",
    "weave:///other/q/object/o:abc",
    "weave:///fz/p/object/:",
    "weave:///%ZZ/p/object/o:abc",
    "../../etc/passwd",
    "\u{0}",
    "noslash",
    "a/b/c",
    "$getField",
    "9999-99-99T99:99:99Z",
    "-1",
];

/// Every path to a node of `v`.
fn paths(v: &Value, at: &mut Vec<Value>, out: &mut Vec<Vec<Value>>) {
    out.push(at.clone());
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                at.push(Value::from(k.as_str()));
                paths(x, at, out);
                at.pop();
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                at.push(Value::from(i));
                paths(x, at, out);
                at.pop();
            }
        }
        _ => {}
    }
}

fn node<'a>(v: &'a mut Value, path: &[Value]) -> &'a mut Value {
    path.iter().fold(v, |v, seg| match seg {
        Value::String(k) => &mut v[k.as_str()],
        Value::Number(i) => &mut v[i.as_u64().unwrap() as usize],
        _ => unreachable!(),
    })
}

fn replace_random_node(rng: &mut Rng, valid: &Value, with: Value) -> Vec<u8> {
    let mut all = Vec::new();
    paths(valid, &mut Vec::new(), &mut all);
    let path = &all[rng.below(all.len())];
    let mut v = valid.clone();
    *node(&mut v, path) = with;
    serde_json::to_vec(&v).unwrap()
}

fn wrong_value(rng: &mut Rng) -> Value {
    match rng.below(12) {
        0 => Value::Null,
        1 => json!(true),
        2 => json!(-1),
        3 => json!(i64::MAX),
        4 => json!(u64::MAX),
        5 => json!(1.5e300),
        6 => json!([]),
        7 => json!({}),
        8 => json!([null, {"$literal": [1, 2]}]),
        9 => json!({"$expr": {"$eq": [1]}}),
        _ => json!(BAD_STRINGS[rng.below(BAD_STRINGS.len())]),
    }
}

/// The bodies thrown at one route: (what, body).
fn mutations(rng: &mut Rng, valid: &Value) -> Vec<(String, Vec<u8>)> {
    let text = serde_json::to_vec(valid).unwrap();
    let mut out = vec![
        ("the valid body".to_string(), text.clone()),
        ("an empty body".into(), Vec::new()),
        ("null".into(), b"null".to_vec()),
        ("an array".into(), b"[1, 2]".to_vec()),
        ("a string".into(), b"\"x\"".to_vec()),
        (
            "deep nesting (100k levels)".into(),
            [vec![b'['; 100_000], vec![b']'; 100_000]].concat(),
        ),
        (
            "deep nesting inside a field".into(),
            format!(
                "{{\"project_id\": \"fz/p\", \"x\": {}1{}}}",
                "[".repeat(5000),
                "]".repeat(5000)
            )
            .into_bytes(),
        ),
    ];
    for _ in 0..8 {
        let n = rng.below(600);
        out.push((
            format!("{n} random bytes"),
            (0..n).map(|_| rng.next() as u8).collect(),
        ));
    }
    for _ in 0..10 {
        let cut = rng.below(text.len());
        out.push((format!("truncated at {cut}"), text[..cut].to_vec()));
    }
    for _ in 0..25 {
        let v = wrong_value(rng);
        out.push((
            format!("a node replaced by {v}"),
            replace_random_node(rng, valid, v),
        ));
    }
    for _ in 0..2 {
        out.push((
            "a node replaced by a 5 MB string".into(),
            replace_random_node(rng, valid, Value::String("x".repeat(5 << 20))),
        ));
        out.push((
            "a node replaced by a 200k-element array".into(),
            replace_random_node(
                rng,
                valid,
                Value::Array(vec![json!("weave:///fz/p/object/o:abc"); 200_000]),
            ),
        ));
    }
    for _ in 0..4 {
        // Invalid UTF-8 inside a string of the body.
        let mut b = text.clone();
        if let Some(q) = b.iter().position(|&c| c == b'"') {
            let at = q + 1 + rng.below(3).min(b.len() - q - 1);
            b.splice(at..at, [0xff, 0xfe, 0xc3]);
        }
        out.push(("invalid UTF-8 in a string".into(), b));
    }
    out
}

#[test]
fn no_body_makes_any_route_fail_with_a_5xx_or_lose_data() {
    let dir = tempfile::tempdir().unwrap();
    let s = Served::start(&dir.path().join("weave.sqlite"), &[]);
    let c = http();
    let post = |path: &str, body: Vec<u8>| c.post(format!("{}{path}", s.url)).body(body).send();

    // What the store holds before: a call, an object and a table of another project.
    let keep_id = "01945d2e-3b5c-7d2a-9c1e-4b5a6c7d8eaa";
    let keep_call = json!({"start": {"project_id": "keep/p", "id": keep_id, "op_name": "keep",
        "trace_id": keep_id, "started_at": "2025-01-02T03:04:05Z", "attributes": {}, "inputs": {"k": "v"}}});
    assert_eq!(
        post("/call/start", serde_json::to_vec(&keep_call).unwrap())
            .unwrap()
            .status(),
        200
    );
    let obj = post(
        "/obj/create",
        serde_json::to_vec(
            &json!({"obj": {"project_id": "keep/p", "object_id": "cfg", "val": {"t": 0.5}}}),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(obj.status(), 200);
    let obj_digest = obj.json::<Value>().unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let read_back = || {
        let call = post(
            "/call/read",
            serde_json::to_vec(&json!({"project_id": "keep/p", "id": keep_id})).unwrap(),
        )
        .unwrap()
        .json::<Value>()
        .unwrap();
        let obj = post(
            "/obj/read",
            serde_json::to_vec(
                &json!({"project_id": "keep/p", "object_id": "cfg", "digest": obj_digest}),
            )
            .unwrap(),
        )
        .unwrap()
        .json::<Value>()
        .unwrap();
        (call["call"]["inputs"].clone(), obj["obj"]["val"].clone())
    };
    let before = read_back();
    assert_eq!(before, (json!({"k": "v"}), json!({"t": 0.5})));

    let seed = 0x5eed_u64;
    let mut rng = Rng(seed);
    let mut failures = Vec::new();
    let mut sent = 0;
    let mut by_status = std::collections::BTreeMap::<u16, usize>::new();
    for (route, valid) in valid_bodies() {
        for (what, body) in mutations(&mut rng, &valid) {
            sent += 1;
            match post(route, body) {
                Ok(r) => {
                    let status = r.status();
                    *by_status.entry(status.as_u16()).or_default() += 1;
                    let text = r.text().unwrap_or_default();
                    if status.is_server_error() {
                        failures.push(format!("{route} with {what}: {status} {text:.300}"));
                    } else if !status.is_success() && serde_json::from_str::<Value>(&text).is_err()
                    {
                        failures.push(format!(
                            "{route} with {what}: {status} answered non-JSON {text:.200}"
                        ));
                    }
                }
                Err(e) => failures.push(format!("{route} with {what}: no answer: {e}")),
            }
        }
        let health = c.get(format!("{}/health", s.url)).send();
        assert!(
            health.is_ok_and(|h| h.status() == 200),
            "the server stopped answering after {route} (seed {seed:#x})"
        );
    }
    // Multipart uploads: broken forms, missing parts, random bytes.
    for (what, ct, body) in [
        ("no content type", None, b"x".to_vec()),
        ("no boundary", Some("multipart/form-data"), b"x".to_vec()),
        ("garbage", Some("multipart/form-data; boundary=B"), b"--B\r\nnonsense".to_vec()),
        ("no file part", Some("multipart/form-data; boundary=B"), b"--B\r\nContent-Disposition: form-data; name=\"project_id\"\r\n\r\nfz/p\r\n--B--\r\n".to_vec()),
        ("a wrong expected digest", Some("multipart/form-data; boundary=B"), b"--B\r\nContent-Disposition: form-data; name=\"project_id\"\r\n\r\nfz/p\r\n--B\r\nContent-Disposition: form-data; name=\"expected_digest\"\r\n\r\nnope\r\n--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f.txt\"\r\n\r\nhi\r\n--B--\r\n".to_vec()),
    ] {
        for route in ["/file/create", "/files/create"] {
            let mut rb = c.post(format!("{}{route}", s.url)).body(body.clone());
            if let Some(ct) = ct {
                rb = rb.header("content-type", ct);
            }
            let r = rb.send().unwrap();
            let status = r.status();
            if !status.is_client_error() {
                failures.push(format!("{route} with {what}: {status} {:.200}", r.text().unwrap_or_default()));
            }
        }
    }
    eprintln!("{sent} bodies, answers by status: {by_status:?}");
    // Both the accepting and the refusing paths were exercised.
    for status in [200, 400, 404, 422] {
        assert!(
            by_status.contains_key(&status),
            "no {status} among {by_status:?}"
        );
    }
    assert!(
        failures.is_empty(),
        "{} of {sent} bodies were answered badly (seed {seed:#x}):\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(read_back(), before, "the store keeps what it held");
}

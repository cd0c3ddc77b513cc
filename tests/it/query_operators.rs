//! The query language (PROTOCOL §5): every operator alone and combined, over top-level
//! columns, dotted JSON paths and the computed `summary.weave.*` fields, with the typing and
//! null rules of the embedded store's query compiler. Most queries are written twice, with the
//! typed builder and as protocol JSON, and both must be the same query and return the same
//! calls.
//!
//! On the reference server (the `weave` package's `SqliteTraceServer`), the same queries are
//! sent and its own answers are checked: its compiler (`calls_query` in
//! `sqlite_trace_server.py`) writes plain SQLite SQL, so null and missing values follow SQL's
//! three-valued logic (a `$not` of a comparison with null is null, not true), timestamps compare
//! as the stored ISO text, an integer literal casts the field to an integer only, and fields are
//! not validated. Each such place says `// Reference server:` and why.

use serde_json::{json, Value};
use weave::query::{field, lit, Expr};
use weave::{Call, CallOptions, CallsQuery, Query, Timestamp, WeaveError};

use crate::common::TestStore;

/// 2025-01-01T00:00:00Z in Unix seconds.
const T0: i64 = 1_735_689_600;
const NONE: [&str; 0] = [];

/// `T0 + secs`.
fn at(secs: i64) -> Timestamp {
    Timestamp::from_nanos((T0 + secs) * 1_000_000_000)
}

/// A store whose calls have short names. The i-th call starts at `T0 + i` minutes, so the
/// default order (`started_at asc`) is creation order.
struct Fx {
    s: TestStore,
    names: Vec<(String, String)>,
}

impl Fx {
    fn new() -> Self {
        Fx {
            s: TestStore::new(),
            names: Vec::new(),
        }
    }

    /// Starts (and leaves running) a call named `name`.
    fn start(&mut self, name: &str, op: &str, inputs: Value, opts: CallOptions) -> Call {
        let t = at(60 * self.names.len() as i64);
        self.start_at(name, op, inputs, opts.started_at(t))
    }

    /// Starts a call with the start time given in `opts` (or now).
    fn start_at(&mut self, name: &str, op: &str, inputs: Value, opts: CallOptions) -> Call {
        let call = self
            .s
            .client
            .create_call_with(op, inputs, opts.use_stack(false))
            .expect("create");
        self.names.push((call.id().to_string(), name.to_string()));
        call
    }

    /// Records a finished call named `name`.
    fn done(&mut self, name: &str, op: &str, inputs: Value, output: Value) -> Call {
        let call = self.start(name, op, inputs, CallOptions::new());
        self.s.client.finish_call(&call, output).expect("finish");
        call
    }

    fn name_of(&self, id: &str) -> String {
        self.names
            .iter()
            .find(|(i, _)| i == id)
            .map(|(_, n)| n.clone())
            .unwrap_or_else(|| panic!("unknown call {id}"))
    }

    /// The names of the calls matching `q`, in the order returned.
    fn find(&self, q: impl Into<CallsQuery>) -> Vec<String> {
        self.s
            .client
            .get_calls(q)
            .map(|c| self.name_of(c.expect("query").id()))
            .collect()
    }

    /// Runs the protocol JSON `expr` (the value of `$expr`).
    fn json(&self, expr: Value) -> Vec<String> {
        let q: Query = serde_json::from_value(json!({ "$expr": expr })).expect("parse query");
        self.find(q)
    }

    /// Runs `expr` from the builder and `json` (the value of `$expr`) parsed from the protocol
    /// form: they must be the same query and return the same calls. Returns the names.
    fn both(&self, expr: Expr, json: Value) -> Vec<String> {
        let parsed = same_query(expr, &json);
        let from_builder = self.find(parsed.clone());
        let from_json = self.find(parsed);
        assert_eq!(
            from_builder, from_json,
            "builder and JSON disagree on {json}"
        );
        from_json
    }

    /// The names expected on this backend: `embedded` on the embedded store, `remote` on the
    /// reference server (each use says why they differ).
    fn want<'a>(&self, embedded: &'a [&'a str], remote: &'a [&'a str]) -> &'a [&'a str] {
        if self.s.is_reference() {
            remote
        } else {
            embedded
        }
    }

    /// The error that `q` gives when iterated (the first item; the iteration then ends).
    fn failure(&self, q: impl Into<CallsQuery>) -> WeaveError {
        let mut it = self.s.client.get_calls(q);
        let e = match it.next() {
            Some(Err(e)) => e,
            other => panic!("expected an error, got {other:?}"),
        };
        assert!(
            it.next().is_none(),
            "the iteration must end after the error"
        );
        e
    }

    /// The message of the InvalidQuery error that `q` gives, both when iterated (first item)
    /// and from `size()`.
    fn error(&self, q: impl Into<CallsQuery>) -> String {
        let q: CallsQuery = q.into();
        let mut it = self.s.client.get_calls(q.clone());
        let msg = match it.next() {
            Some(Err(WeaveError::InvalidQuery(m))) => m,
            other => panic!("expected an InvalidQuery error, got {other:?}"),
        };
        assert!(
            it.next().is_none(),
            "the iteration must end after the error"
        );
        // Over HTTP the message starts with the route that refused it (iterating and size()
        // use different routes); the server's reason after it is the same.
        let reason = |m: &str| {
            m.split_once(": HTTP 400: ")
                .map_or(m, |(_, r)| r)
                .to_string()
        };
        match self.s.client.get_calls(q).size() {
            Err(WeaveError::InvalidQuery(m)) => assert_eq!(reason(&m), reason(&msg)),
            other => panic!("expected size() to fail with InvalidQuery, got {other:?}"),
        }
        msg
    }
}

/// The query of the builder's `expr`, checked to be the one parsed from the protocol JSON
/// `json` (the value of `$expr`).
fn same_query(expr: Expr, json: &Value) -> Query {
    let built = Query::new(expr);
    let parsed: Query =
        serde_json::from_value(json!({ "$expr": json.clone() })).expect("parse query");
    assert_eq!(
        built, parsed,
        "builder and JSON give different queries for {json}"
    );
    built
}

/// `{"$getField": f}`.
fn gf(f: &str) -> Value {
    json!({ "$getField": f })
}

/// `{"$literal": v}`.
fn li(v: Value) -> Value {
    json!({ "$literal": v })
}

/// Reference server: a comparison with a list or dict literal fails. The client sends nested
/// values wrapped (`{"$literal": [{"$literal": "x"}]}`), the only form the server's pydantic
/// `LiteralOperation` accepts; the SQLite compiler then fails on them with 500
/// (`process_operand` in `calls_query` calls `json.dumps` on the wrapper objects).
fn assert_structured_literal_rejected(e: WeaveError) {
    assert!(
        matches!(&e, WeaveError::Backend(m)
            if m.contains("HTTP 500") && m.contains("Internal server error")),
        "{e:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Top-level columns

#[test]
fn eq_on_top_level_columns() {
    let mut fx = Fx::new();
    let root = fx.start(
        "root",
        "agent",
        json!({}),
        CallOptions::new().display_name("My agent"),
    );
    let child = fx.start("child", "llm", json!({}), CallOptions::new().parent(&root));
    fx.s.client.finish_call(&child, "ok").unwrap();
    fx.s.client.finish_call(&root, "done").unwrap();
    let other = fx.done("other", "tool", json!({}), json!(null));

    assert_eq!(
        fx.both(
            field("op_name").eq(child.op_name()),
            json!({"$eq": [gf("op_name"), li(json!(child.op_name()))]})
        ),
        ["child"]
    );
    // Text comparison is case-sensitive.
    assert_eq!(
        fx.both(
            field("op_name").eq(child.op_name().replace("llm", "LLM")),
            json!({"$eq": [gf("op_name"), li(json!(child.op_name().replace("llm", "LLM")))]})
        ),
        NONE
    );
    assert_eq!(
        fx.both(
            field("display_name").eq("My agent"),
            json!({"$eq": [gf("display_name"), li(json!("My agent"))]})
        ),
        ["root"]
    );
    assert_eq!(
        fx.both(
            field("display_name").is_null(),
            json!({"$eq": [gf("display_name"), li(json!(null))]})
        ),
        ["child", "other"]
    );
    assert_eq!(
        fx.both(
            field("trace_id").eq(root.trace_id()),
            json!({"$eq": [gf("trace_id"), li(json!(root.trace_id()))]})
        ),
        ["root", "child"]
    );
    assert_eq!(
        fx.both(
            field("parent_id").eq(root.id()),
            json!({"$eq": [gf("parent_id"), li(json!(root.id()))]})
        ),
        ["child"]
    );
    assert_eq!(
        fx.both(
            field("parent_id").is_null(),
            json!({"$eq": [gf("parent_id"), li(json!(null))]})
        ),
        ["root", "other"]
    );
    assert_eq!(
        fx.both(
            field("id").eq(other.id()),
            json!({"$eq": [gf("id"), li(json!(other.id()))]})
        ),
        ["other"]
    );
    // Reference server: its ExternalTraceServer adapter maps the request's project_id to the
    // internal id (base64 of the name) but not the literals of the query
    // (external_to_internal_trace_server_adapter.py, calls_query_stream), so the stored column
    // never equals the external name.
    assert_eq!(
        fx.both(
            field("project_id").eq("test-entity/test-project"),
            json!({"$eq": [gf("project_id"), li(json!("test-entity/test-project"))]})
        ),
        fx.want(&["root", "child", "other"], &[])
    );
    // The thread columns are null for calls outside a thread.
    assert_eq!(
        fx.both(
            field("thread_id").is_null(),
            json!({"$eq": [gf("thread_id"), li(json!(null))]})
        ),
        ["root", "child", "other"]
    );
}

#[test]
fn exception_and_ended_at_columns() {
    let mut fx = Fx::new();
    fx.done("ok", "tool", json!({}), json!("fine"));
    let failed = fx.start("failed", "tool", json!({}), CallOptions::new());
    fx.s.client
        .fail_call(&failed, "weather API timed out".to_string())
        .unwrap();
    fx.start("running", "tool", json!({}), CallOptions::new());

    assert_eq!(
        fx.both(
            field("exception").is_null(),
            json!({"$eq": [gf("exception"), li(json!(null))]})
        ),
        ["ok", "running"]
    );
    assert_eq!(
        fx.both(
            field("exception").contains("weather API"),
            json!({"$contains": {"input": gf("exception"), "substr": li(json!("weather API"))}})
        ),
        ["failed"]
    );
    assert_eq!(
        fx.both(
            field("exception").is_null().not(),
            json!({"$not": [{"$eq": [gf("exception"), li(json!(null))]}]})
        ),
        ["failed"]
    );
    assert_eq!(
        fx.both(
            field("ended_at").is_null(),
            json!({"$eq": [gf("ended_at"), li(json!(null))]})
        ),
        ["running"]
    );
}

// ---------------------------------------------------------------------------------------------
// Computed summary.weave fields

#[test]
fn computed_status() {
    let mut fx = Fx::new();
    fx.done("ok", "tool", json!({}), json!(1));
    let failed = fx.start("failed", "tool", json!({}), CallOptions::new());
    fx.s.client.fail_call(&failed, "boom".to_string()).unwrap();
    fx.start("running", "tool", json!({}), CallOptions::new());
    let parent = fx.start("parent", "agent", json!({}), CallOptions::new());
    let bad = fx.start(
        "bad_child",
        "tool",
        json!({}),
        CallOptions::new().parent(&parent),
    );
    fx.s.client
        .fail_call(&bad, "child boom".to_string())
        .unwrap();
    fx.s.client.finish_call(&parent, "recovered").unwrap();

    let status = |s: &str| {
        fx.both(
            field("summary.weave.status").eq(s),
            json!({"$eq": [gf("summary.weave.status"), li(json!(s))]}),
        )
    };
    assert_eq!(status("success"), ["ok"]);
    assert_eq!(status("error"), ["failed", "bad_child"]);
    assert_eq!(status("running"), ["running"]);
    assert_eq!(status("descendant_error"), ["parent"]);
    assert_eq!(
        fx.both(
            field("summary.weave.status").in_(["error", "descendant_error"]),
            json!({"$in": [gf("summary.weave.status"), [li(json!("error")), li(json!("descendant_error"))]]})
        ),
        ["failed", "parent", "bad_child"]
    );
    assert_eq!(
        fx.both(
            field("summary.weave.status").ne("success"),
            json!({"$not": [{"$eq": [gf("summary.weave.status"), li(json!("success"))]}]})
        ),
        ["failed", "running", "parent", "bad_child"]
    );
    // The filter agrees with the status read back on every call.
    for c in fx.s.client.get_calls(CallsQuery::new()) {
        let c = c.unwrap();
        let shown = c.weave_summary().unwrap()["status"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(shown, c.status().as_str());
        assert!(status(&shown).contains(&fx.name_of(c.id())));
    }
}

#[test]
fn computed_trace_name() {
    let mut fx = Fx::new();
    fx.done("plain", "llm", json!({}), json!(null));
    fx.done(
        "v1",
        "weave:///test-entity/test-project/op/my_fn:abc123",
        json!({}),
        json!(null),
    );
    fx.done(
        "v2",
        "weave:///test-entity/test-project/op/my_fn:def456",
        json!({}),
        json!(null),
    );
    let named = fx.start(
        "named",
        "weave:///test-entity/test-project/op/my_fn:abc123",
        json!({}),
        CallOptions::new().display_name("Pretty"),
    );
    fx.s.client.finish_call(&named, json!(null)).unwrap();

    let trace_name = |s: &str| {
        fx.both(
            field("summary.weave.trace_name").eq(s),
            json!({"$eq": [gf("summary.weave.trace_name"), li(json!(s))]}),
        )
    };
    // The op name parsed from the ref; a display name takes its place.
    // Reference server: `summary.weave.trace_name` is not a computed field of its compiler
    // (`_transform_external_calls_field_to_internal_calls_field` knows only latency_ms and
    // status), so it reads the JSON path `weave.trace_name` of the stored summary: null.
    assert_eq!(trace_name("my_fn"), fx.want(&["v1", "v2"], &[]));
    assert_eq!(trace_name("llm"), fx.want(&["plain"], &[]));
    assert_eq!(trace_name("Pretty"), fx.want(&["named"], &[]));
    assert_eq!(
        trace_name("weave:///test-entity/test-project/op/my_fn:abc123"),
        NONE
    );
    assert_eq!(
        fx.both(
            field("summary.weave.trace_name").contains("my_"),
            json!({"$contains": {"input": gf("summary.weave.trace_name"), "substr": li(json!("my_"))}})
        ),
        fx.want(&["v1", "v2"], &[])
    );
    // What is read back matches.
    let back = fx.s.client.get_call(named.id()).unwrap();
    assert_eq!(back.weave_summary().unwrap()["display_name"], "Pretty");
}

#[test]
fn computed_latency_ms() {
    let mut fx = Fx::new();
    let now = Timestamp::now().as_nanos();
    let ago = |ms: i64| Timestamp::from_nanos(now - ms * 1_000_000);
    let slowest = fx.start_at(
        "slowest",
        "op",
        json!({}),
        CallOptions::new().started_at(ago(60_000)),
    );
    // Never finished.
    fx.start_at(
        "running",
        "op",
        json!({}),
        CallOptions::new().started_at(ago(30_000)),
    );
    let slow = fx.start_at(
        "slow",
        "op",
        json!({}),
        CallOptions::new().started_at(ago(5_000)),
    );
    // Clear of the bounds queried below: the reference server's latency is only about
    // millisecond-precise (see the next test), so a call finished within a millisecond of
    // 1000 ms could read 999.99 there.
    let fast = fx.start_at(
        "fast",
        "op",
        json!({}),
        CallOptions::new().started_at(ago(1_500)),
    );
    for c in [&slowest, &slow, &fast] {
        fx.s.client.finish_call(c, json!(null)).unwrap();
    }

    assert_eq!(
        fx.both(
            field("summary.weave.latency_ms").gt(3_000),
            json!({"$gt": [gf("summary.weave.latency_ms"), li(json!(3000))]})
        ),
        ["slowest", "slow"]
    );
    assert_eq!(
        fx.both(
            field("summary.weave.latency_ms")
                .gte(1_000)
                .and(field("summary.weave.latency_ms").lt(30_000)),
            json!({"$and": [
                {"$gte": [gf("summary.weave.latency_ms"), li(json!(1000))]},
                {"$lt": [gf("summary.weave.latency_ms"), li(json!(30000))]}
            ]})
        ),
        ["slow", "fast"]
    );
    // A running call has no latency: it is null and never compares true.
    // Reference server: a running call's latency is 0, not null (the `ELSE 0` of
    // `_transform_external_calls_field_to_internal_calls_field`), so it is <= 2000.
    assert_eq!(
        fx.both(
            field("summary.weave.latency_ms").lte(2_000),
            json!({"$lte": [gf("summary.weave.latency_ms"), li(json!(2000))]})
        ),
        fx.want(&["fast"], &["running", "fast"])
    );
    assert_eq!(
        fx.both(
            field("summary.weave.latency_ms").is_null(),
            json!({"$eq": [gf("summary.weave.latency_ms"), li(json!(null))]})
        ),
        fx.want(&["running"], &[])
    );
    assert_eq!(
        fx.both(
            field("summary.weave.latency_ms").gt(0).not(),
            json!({"$not": [{"$gt": [gf("summary.weave.latency_ms"), li(json!(0))]}]})
        ),
        ["running"]
    );
}

/// Starts and ends a call through the server, with exact timestamps.
fn timed_call(s: &TestStore, started: Timestamp, ended: Timestamp) -> String {
    let id = weave::generate_id();
    let start: weave::schema::CallStartReq = serde_json::from_value(json!({"start": {
        "project_id": "test-entity/test-project", "id": id, "trace_id": weave::generate_id(),
        "op_name": "timed", "started_at": started, "inputs": {}, "attributes": {}
    }}))
    .unwrap();
    s.server.call_start(start).unwrap();
    let end: weave::schema::CallEndReq = serde_json::from_value(json!({"end": {
        "project_id": "test-entity/test-project", "id": id, "ended_at": ended,
        "output": null, "summary": {}
    }}))
    .unwrap();
    s.server.call_end(end).unwrap();
    id
}

#[test]
fn latency_ms_filter_matches_the_latency_read_back_including_negative() {
    let s = TestStore::new();
    let base = at(0).as_nanos();
    let ms = 1_000_000;
    // (start, end, floor of the difference in ms, PROTOCOL §4.5)
    let cases: [(i64, i64, i64); 4] = [
        (base, base + 3 * ms / 2, 1),                          // 1.5 ms
        (base + 1000 * ms, base + 1000 * ms - 3 * ms / 2, -2), // -1.5 ms (end before start)
        (base + 2000 * ms, base + 4000 * ms, 2000),
        (base + 5000 * ms, base + 5000 * ms - 7 * ms, -7),
    ];
    let ids: Vec<String> = cases
        .iter()
        .map(|(a, b, _)| timed_call(&s, Timestamp::from_nanos(*a), Timestamp::from_nanos(*b)))
        .collect();
    // Reference server: the filter's latency_ms is
    // `CAST((julianday(ended_at) - julianday(started_at)) * 86400000 AS FLOAT)`
    // (`_transform_external_calls_field_to_internal_calls_field`): julianday rounds to whole
    // milliseconds and the day fraction adds a float error, so the four latencies filter as
    // about 2.012, -1.006, 2000.029 and -7.001 — never the integer read back, and the -1.5 ms
    // call is not <= -2.
    let remote = s.is_reference();
    for (id, (_, _, want)) in ids.iter().zip(cases) {
        let back = s.client.get_call(id).unwrap();
        assert_eq!(back.weave_summary().unwrap()["latency_ms"], want);
        assert_eq!(back.latency_ms(), Some(want));
        let found = crate::common::ids(&s.client, field("summary.weave.latency_ms").eq(want));
        let expected: &[String] = if remote {
            &[]
        } else {
            std::slice::from_ref(id)
        };
        assert_eq!(found, expected, "latency_ms == {want}");
    }
    let negative = crate::common::ids(&s.client, field("summary.weave.latency_ms").lt(0));
    assert_eq!(negative, [ids[1].clone(), ids[3].clone()]);
    let le_minus_2 = crate::common::ids(&s.client, field("summary.weave.latency_ms").lte(-2));
    if remote {
        assert_eq!(le_minus_2, [ids[3].clone()]);
    } else {
        assert_eq!(le_minus_2, [ids[1].clone(), ids[3].clone()]);
    }
}

// ---------------------------------------------------------------------------------------------
// Comparisons and typing

#[test]
fn ordering_comparisons_on_numbers() {
    let mut fx = Fx::new();
    for (name, n) in [
        ("one", json!(1)),
        ("five", json!(5)),
        ("ten", json!(10)),
        ("ten_half", json!(10.5)),
    ] {
        fx.done(name, "op", json!({ "n": n }), json!(null));
    }
    fx.done("missing", "op", json!({}), json!(null));

    let n = || field("inputs.n");
    // Reference server: an integer literal casts the field to an integer, and only JSON
    // integers or digit-only text convert (`_sqlite_inferred_json_cast_sql`): 10.5 is null
    // there, so it never compares with an integer literal.
    assert_eq!(
        fx.both(n().gt(5), json!({"$gt": [gf("inputs.n"), li(json!(5))]})),
        fx.want(&["ten", "ten_half"], &["ten"])
    );
    assert_eq!(
        fx.both(n().gte(5), json!({"$gte": [gf("inputs.n"), li(json!(5))]})),
        fx.want(&["five", "ten", "ten_half"], &["five", "ten"])
    );
    assert_eq!(
        fx.both(n().lt(5), json!({"$lt": [gf("inputs.n"), li(json!(5))]})),
        ["one"]
    );
    assert_eq!(
        fx.both(n().lte(5), json!({"$lte": [gf("inputs.n"), li(json!(5))]})),
        ["one", "five"]
    );
    assert_eq!(
        fx.both(n().eq(10), json!({"$eq": [gf("inputs.n"), li(json!(10))]})),
        ["ten"]
    );
    assert_eq!(
        fx.both(
            n().eq(10.5),
            json!({"$eq": [gf("inputs.n"), li(json!(10.5))]})
        ),
        ["ten_half"]
    );
    assert_eq!(
        fx.both(
            n().gt(5.5),
            json!({"$gt": [gf("inputs.n"), li(json!(5.5))]})
        ),
        ["ten", "ten_half"]
    );
    assert_eq!(
        fx.both(n().lt(0), json!({"$lt": [gf("inputs.n"), li(json!(0))]})),
        NONE
    );
    // The missing value compares false, so its negation holds.
    // Reference server: the comparison is SQL NULL for the missing value (and for 10.5, see
    // above), and `NOT (NULL)` is NULL, so neither matches.
    assert_eq!(
        fx.both(
            n().lt(5).not(),
            json!({"$not": [{"$lt": [gf("inputs.n"), li(json!(5))]}]})
        ),
        fx.want(&["five", "ten", "ten_half", "missing"], &["five", "ten"])
    );
    // The literal may be on the left.
    assert_eq!(
        fx.both(
            lit(5).gt(field("inputs.n")),
            json!({"$gt": [li(json!(5)), gf("inputs.n")]})
        ),
        ["one"]
    );
}

#[test]
fn the_literal_type_picks_numeric_or_text_comparison() {
    let mut fx = Fx::new();
    for (name, v) in [
        ("s9", json!("9")),
        ("s10", json!("10")),
        ("s100", json!("100")),
        ("sabc", json!("abc")),
        ("n9", json!(9)),
    ] {
        fx.done(name, "op", json!({ "s": v }), json!(null));
    }
    fx.done("missing", "op", json!({}), json!(null));

    let s = || field("inputs.s");
    // A numeric literal compares numerically: "10" > 9, and "abc" is no number.
    assert_eq!(
        fx.both(s().gt(9), json!({"$gt": [gf("inputs.s"), li(json!(9))]})),
        ["s10", "s100"]
    );
    assert_eq!(
        fx.both(
            s().lt(100),
            json!({"$lt": [gf("inputs.s"), li(json!(100))]})
        ),
        ["s9", "s10", "n9"]
    );
    assert_eq!(
        fx.both(s().eq(9), json!({"$eq": [gf("inputs.s"), li(json!(9))]})),
        ["s9", "n9"]
    );
    // A string literal compares as text: "10" < "9", "abc" > "9", and the number 9 reads "9".
    assert_eq!(
        fx.both(
            s().gt("9"),
            json!({"$gt": [gf("inputs.s"), li(json!("9"))]})
        ),
        ["sabc"]
    );
    assert_eq!(
        fx.both(
            s().lt("9"),
            json!({"$lt": [gf("inputs.s"), li(json!("9"))]})
        ),
        ["s10", "s100"]
    );
    assert_eq!(
        fx.both(
            s().eq("9"),
            json!({"$eq": [gf("inputs.s"), li(json!("9"))]})
        ),
        ["s9", "n9"]
    );
}

#[test]
fn an_explicit_convert_fixes_the_comparison_domain() {
    let mut fx = Fx::new();
    for (name, v) in [
        ("s9", json!("9")),
        ("s10", json!("10")),
        ("s100", json!("100")),
        ("sabc", json!("abc")),
        ("n9", json!(9)),
    ] {
        fx.done(name, "op", json!({ "s": v }), json!(null));
    }
    // $convert to double compares numerically, even with a string literal.
    assert_eq!(
        fx.both(
            field("inputs.s").as_double().gt("9"),
            json!({"$gt": [{"$convert": {"input": gf("inputs.s"), "to": "double"}}, li(json!("9"))]})
        ),
        ["s10", "s100"]
    );
    // Reference server: an explicit `$convert` is a bare `CAST(... AS INT)` (`process_operand`
    // in `calls_query`), which turns the text "abc" into 0, not null.
    assert_eq!(
        fx.both(
            field("inputs.s").as_int().lt("10"),
            json!({"$lt": [{"$convert": {"input": gf("inputs.s"), "to": "int"}}, li(json!("10"))]})
        ),
        fx.want(&["s9", "n9"], &["s9", "sabc", "n9"])
    );
    // $convert to string compares as text, even with a numeric literal: "10" < "9".
    assert_eq!(
        fx.both(
            field("inputs.s").as_string().gt(9),
            json!({"$gt": [{"$convert": {"input": gf("inputs.s"), "to": "string"}}, li(json!(9))]})
        ),
        ["sabc"]
    );
}

#[test]
fn text_that_is_not_a_number_never_equals_zero() {
    let mut fx = Fx::new();
    for (name, v) in [
        ("abc", json!("abc")),
        ("empty", json!("")),
        ("str0", json!("0")),
        ("num0", json!(0)),
        ("real0", json!(0.0)),
        ("null", json!(null)),
        ("mixed", json!("0abc")),
    ] {
        fx.done(name, "op", json!({ "v": v }), json!(null));
    }
    fx.done("missing", "op", json!({}), json!(null));

    // Reference server: the integer literal 0 casts the field to an integer, which only JSON
    // integers and digit-only text survive (`_sqlite_inferred_json_cast_sql`): 0.0 is null
    // there. Every other value is null too, and `NOT (NULL = 0)` is NULL: `ne` matches none.
    assert_eq!(
        fx.both(
            field("inputs.v").eq(0),
            json!({"$eq": [gf("inputs.v"), li(json!(0))]})
        ),
        fx.want(&["str0", "num0", "real0"], &["str0", "num0"])
    );
    assert_eq!(
        fx.both(
            field("inputs.v").ne(0),
            json!({"$not": [{"$eq": [gf("inputs.v"), li(json!(0))]}]})
        ),
        fx.want(&["abc", "empty", "null", "mixed", "missing"], &[])
    );
    assert_eq!(
        fx.both(
            field("inputs.v").lte(0.0),
            json!({"$lte": [gf("inputs.v"), li(json!(0.0))]})
        ),
        ["str0", "num0", "real0"]
    );
    // Converting non-numeric text to a number gives null, not 0.
    // Reference server: `$convert` is a bare `CAST(... AS FLOAT)` (`process_operand` in
    // `calls_query`), and SQLite casts non-numeric text to 0.0.
    assert_eq!(
        fx.both(
            field("inputs.v").as_double().is_null(),
            json!({"$eq": [{"$convert": {"input": gf("inputs.v"), "to": "double"}}, li(json!(null))]})
        ),
        fx.want(&["abc", "empty", "null", "mixed", "missing"], &["null", "missing"])
    );
}

#[test]
fn bool_literals() {
    let mut fx = Fx::new();
    for (name, v) in [
        ("t", json!(true)),
        ("f", json!(false)),
        ("str_t", json!("true")),
        ("str_f", json!("false")),
    ] {
        fx.done(name, "op", json!({ "flag": v }), json!(null));
    }
    fx.done("missing", "op", json!({}), json!(null));

    assert_eq!(
        fx.both(
            field("inputs.flag").eq(true),
            json!({"$eq": [gf("inputs.flag"), li(json!(true))]})
        ),
        ["t", "str_t"]
    );
    assert_eq!(
        fx.both(
            field("inputs.flag").eq(false),
            json!({"$eq": [gf("inputs.flag"), li(json!(false))]})
        ),
        ["f", "str_f"]
    );
    // Reference server: for the missing value the comparison is SQL NULL, and so is its $not.
    assert_eq!(
        fx.both(
            field("inputs.flag").eq(true).not(),
            json!({"$not": [{"$eq": [gf("inputs.flag"), li(json!(true))]}]})
        ),
        fx.want(&["f", "str_f", "missing"], &["f", "str_f"])
    );
    // A bare field is a truthiness test.
    assert_eq!(
        Query::new(field("inputs.flag")),
        Query::new(field("inputs.flag").eq(true))
    );
    assert_eq!(fx.find(Query::new(field("inputs.flag"))), ["t", "str_t"]);
}

#[test]
fn null_semantics() {
    let mut fx = Fx::new();
    for (name, v) in [
        ("null", json!(null)),
        ("x", json!("x")),
        ("zero", json!(0)),
        ("empty", json!("")),
        ("false", json!(false)),
        ("list", json!([])),
    ] {
        fx.done(name, "op", json!({ "opt": v }), json!(null));
    }
    fx.done("missing", "op", json!({}), json!(null));
    let all = ["null", "x", "zero", "empty", "false", "list", "missing"];
    // Reference server: plain SQL three-valued logic. A comparison with a null or missing
    // value is NULL, and so is its `NOT`, so the negations below match no such call (or no
    // call at all).
    let all_or_none = fx.want(&all, &[]);

    // $eq null: missing or null.
    assert_eq!(
        fx.both(
            field("inputs.opt").is_null(),
            json!({"$eq": [gf("inputs.opt"), li(json!(null))]})
        ),
        ["null", "missing"]
    );
    // Reference server: only a null literal on the right means IS NULL (`EqOperation` in
    // `calls_query`); on the left it compiles to `null = ...`, which is NULL.
    assert_eq!(
        fx.both(
            lit(Value::Null).eq(field("inputs.opt")),
            json!({"$eq": [li(json!(null)), gf("inputs.opt")]})
        ),
        fx.want(&["null", "missing"], &[])
    );
    assert_eq!(
        fx.both(
            field("inputs.opt").is_null().not(),
            json!({"$not": [{"$eq": [gf("inputs.opt"), li(json!(null))]}]})
        ),
        ["x", "zero", "empty", "false", "list"]
    );
    // `ne` is `$not $eq`: a missing or null value is "not equal".
    assert_eq!(
        fx.both(
            field("inputs.opt").ne("x"),
            json!({"$not": [{"$eq": [gf("inputs.opt"), li(json!("x"))]}]})
        ),
        fx.want(
            &["null", "zero", "empty", "false", "list", "missing"],
            &["zero", "empty", "false", "list"]
        )
    );
    assert_eq!(
        fx.both(
            field("inputs.opt").eq(""),
            json!({"$eq": [gf("inputs.opt"), li(json!(""))]})
        ),
        ["empty"]
    );
    // An ordering comparison with null, or with a missing field, is false; its $not is true.
    assert_eq!(
        fx.both(
            field("inputs.opt").gt(Value::Null),
            json!({"$gt": [gf("inputs.opt"), li(json!(null))]})
        ),
        NONE
    );
    assert_eq!(
        fx.both(
            field("inputs.opt").gt(Value::Null).not(),
            json!({"$not": [{"$gt": [gf("inputs.opt"), li(json!(null))]}]})
        ),
        all_or_none
    );
    assert_eq!(
        fx.both(
            field("inputs.nope").gt(1),
            json!({"$gt": [gf("inputs.nope"), li(json!(1))]})
        ),
        NONE
    );
    assert_eq!(
        fx.both(
            field("inputs.nope").gt(1).not(),
            json!({"$not": [{"$gt": [gf("inputs.nope"), li(json!(1))]}]})
        ),
        all_or_none
    );
    assert_eq!(
        fx.both(
            field("inputs.nope").eq("a").not(),
            json!({"$not": [{"$eq": [gf("inputs.nope"), li(json!("a"))]}]})
        ),
        all_or_none
    );
    // null == null holds.
    assert_eq!(
        fx.both(
            lit(Value::Null).is_null(),
            json!({"$eq": [li(json!(null)), li(json!(null))]})
        ),
        all
    );
}

// ---------------------------------------------------------------------------------------------
// $in and $contains

#[test]
fn in_operator() {
    let mut fx = Fx::new();
    let mut ids = Vec::new();
    for (name, v) in [
        ("gpt", json!("gpt-4o")),
        ("claude", json!("claude-3")),
        ("mini", json!("gpt-4o-mini")),
        ("num7", json!(7)),
        ("str7", json!("7")),
        ("null", json!(null)),
    ] {
        ids.push(
            fx.done(name, "op", json!({ "model": v }), json!(null))
                .id()
                .to_string(),
        );
    }
    fx.done("missing", "op", json!({}), json!(null));

    let m = || field("inputs.model");
    assert_eq!(
        fx.both(
            m().in_(["gpt-4o", "claude-3"]),
            json!({"$in": [gf("inputs.model"), [li(json!("gpt-4o")), li(json!("claude-3"))]]})
        ),
        ["gpt", "claude"]
    );
    // Numeric literal: numeric comparison ("7" is 7). String literal: text ("7" is "7").
    assert_eq!(
        fx.both(
            m().in_([7]),
            json!({"$in": [gf("inputs.model"), [li(json!(7))]]})
        ),
        ["num7", "str7"]
    );
    assert_eq!(
        fx.both(
            m().in_(["7"]),
            json!({"$in": [gf("inputs.model"), [li(json!("7"))]]})
        ),
        ["num7", "str7"]
    );
    // Mixed literal types.
    assert_eq!(
        fx.both(
            m().in_([json!(7), json!("gpt-4o")]),
            json!({"$in": [gf("inputs.model"), [li(json!(7)), li(json!("gpt-4o"))]]})
        ),
        ["gpt", "num7", "str7"]
    );
    // null in the list matches null and missing.
    // Reference server: `$in` is SQL `IN (...)` (`InOperation` in `calls_query`), where null
    // matches nothing, and `NOT IN` of a null value is NULL.
    assert_eq!(
        fx.both(
            m().in_([json!("gpt-4o"), Value::Null]),
            json!({"$in": [gf("inputs.model"), [li(json!("gpt-4o")), li(json!(null))]]})
        ),
        fx.want(&["gpt", "null", "missing"], &["gpt"])
    );
    // A list of only null, or a field item, works too.
    assert_eq!(
        fx.both(
            m().in_([Value::Null]),
            json!({"$in": [gf("inputs.model"), [li(json!(null))]]})
        ),
        fx.want(&["null", "missing"], &[])
    );
    assert_eq!(
        fx.both(
            m().in_([field("inputs.model")]),
            json!({"$in": [gf("inputs.model"), [gf("inputs.model")]]})
        ),
        ["gpt", "claude", "mini", "num7", "str7"]
    );
    assert_eq!(
        fx.both(
            m().in_([field("inputs.nope"), lit("claude-3")]),
            json!({"$in": [gf("inputs.model"), [gf("inputs.nope"), li(json!("claude-3"))]]})
        ),
        ["claude"]
    );
    // An empty list matches nothing.
    assert_eq!(
        fx.both(
            m().in_(Vec::<&str>::new()),
            json!({"$in": [gf("inputs.model"), []]})
        ),
        NONE
    );
    assert_eq!(
        fx.both(
            m().in_(["gpt-4o"]).not(),
            json!({"$not": [{"$in": [gf("inputs.model"), [li(json!("gpt-4o"))]]}]})
        ),
        fx.want(
            &["claude", "mini", "num7", "str7", "null", "missing"],
            &["claude", "mini", "num7", "str7"]
        )
    );
    // On a top-level column.
    assert_eq!(
        fx.both(
            field("id").in_([ids[1].as_str(), ids[4].as_str()]),
            json!({"$in": [gf("id"), [li(json!(ids[1])), li(json!(ids[4]))]]})
        ),
        ["claude", "str7"]
    );
}

#[test]
fn contains_operator() {
    let mut fx = Fx::new();
    for (name, v) in [
        ("hello", json!("Hello World")),
        ("lower", json!("hello there")),
        ("upper", json!("HELLO")),
        ("pct", json!("say 50% off")),
        ("snake", json!("snake_case")),
        ("num", json!(12345)),
        ("ecole", json!("École")),
    ] {
        fx.done(name, "op", json!({ "text": v }), json!({ "echo": v }));
    }
    fx.done("missing", "tool", json!({}), json!(null));

    let t = || field("inputs.text");
    assert_eq!(
        fx.both(
            t().contains("Hello"),
            json!({"$contains": {"input": gf("inputs.text"), "substr": li(json!("Hello"))}})
        ),
        ["hello"]
    );
    assert_eq!(
        fx.both(
            t().contains("hello"),
            json!({"$contains": {"input": gf("inputs.text"), "substr": li(json!("hello")), "case_insensitive": false}})
        ),
        ["lower"]
    );
    assert_eq!(
        fx.both(
            t().contains("hello").case_insensitive(),
            json!({"$contains": {"input": gf("inputs.text"), "substr": li(json!("hello")), "case_insensitive": true}})
        ),
        ["hello", "lower", "upper"]
    );
    assert_eq!(
        fx.both(
            t().contains("hELLo").case_insensitive(),
            json!({"$contains": {"input": gf("inputs.text"), "substr": li(json!("hELLo")), "case_insensitive": true}})
        ),
        ["hello", "lower", "upper"]
    );
    // No wildcards: % and _ are plain characters.
    assert_eq!(
        fx.both(
            t().contains("%"),
            json!({"$contains": {"input": gf("inputs.text"), "substr": li(json!("%"))}})
        ),
        ["pct"]
    );
    assert_eq!(
        fx.both(
            t().contains("_"),
            json!({"$contains": {"input": gf("inputs.text"), "substr": li(json!("_"))}})
        ),
        ["snake"]
    );
    assert_eq!(
        fx.both(
            t().contains("e%c"),
            json!({"$contains": {"input": gf("inputs.text"), "substr": li(json!("e%c"))}})
        ),
        NONE
    );
    // A number is searched as its text.
    assert_eq!(
        fx.both(
            t().contains("234"),
            json!({"$contains": {"input": gf("inputs.text"), "substr": li(json!("234"))}})
        ),
        ["num"]
    );
    // Case folding is Unicode-aware.
    // Reference server: case_insensitive is SQLite's `LOWER()` on both sides
    // (`ContainsOperation` in `calls_query`), which folds ASCII letters only.
    assert_eq!(
        fx.both(
            t().contains("école").case_insensitive(),
            json!({"$contains": {"input": gf("inputs.text"), "substr": li(json!("école")), "case_insensitive": true}})
        ),
        fx.want(&["ecole"], &[])
    );
    assert_eq!(
        fx.both(
            t().contains("école"),
            json!({"$contains": {"input": gf("inputs.text"), "substr": li(json!("école"))}})
        ),
        NONE
    );
    // A missing value contains nothing, so its $not holds.
    // Reference server: `instr(NULL, ...)` is NULL, and so is its `NOT`.
    assert_eq!(
        fx.both(
            t().contains("hello").case_insensitive().not(),
            json!({"$not": [{"$contains": {"input": gf("inputs.text"), "substr": li(json!("hello")), "case_insensitive": true}}]})
        ),
        fx.want(
            &["pct", "snake", "num", "ecole", "missing"],
            &["pct", "snake", "num", "ecole"]
        )
    );
    // On the output and on a top-level column.
    assert_eq!(
        fx.both(
            field("output.echo").contains("World"),
            json!({"$contains": {"input": gf("output.echo"), "substr": li(json!("World"))}})
        ),
        ["hello"]
    );
    assert_eq!(
        fx.both(
            field("op_name").contains("OO").case_insensitive(),
            json!({"$contains": {"input": gf("op_name"), "substr": li(json!("OO")), "case_insensitive": true}})
        ),
        ["missing"]
    );
}

// ---------------------------------------------------------------------------------------------
// Boolean combinators

#[test]
fn and_or_not_combined() {
    let mut fx = Fx::new();
    fx.done(
        "a",
        "llm",
        json!({"model": "gpt-4o", "temperature": 0.2}),
        json!({"score": 0.9}),
    );
    fx.done(
        "b",
        "llm",
        json!({"model": "gpt-4o", "temperature": 0.9}),
        json!({"score": 0.4}),
    );
    fx.done(
        "c",
        "llm",
        json!({"model": "claude", "temperature": 0.2}),
        json!({"score": 0.8}),
    );
    let d = fx.start(
        "d",
        "llm",
        json!({"model": "claude", "temperature": 0.9}),
        CallOptions::new(),
    );
    fx.s.client
        .fail_call(&d, "rate limited".to_string())
        .unwrap();

    let model = |m: &str| field("inputs.model").eq(m);
    let model_j = |m: &str| json!({"$eq": [gf("inputs.model"), li(json!(m))]});
    let cool = || field("inputs.temperature").lt(0.5);
    let cool_j = json!({"$lt": [gf("inputs.temperature"), li(json!(0.5))]});

    assert_eq!(
        fx.both(
            model("gpt-4o").and(cool()),
            json!({"$and": [model_j("gpt-4o"), cool_j.clone()]})
        ),
        ["a"]
    );
    assert_eq!(
        fx.both(
            model("claude").or(field("output.score").gt(0.85)),
            json!({"$or": [model_j("claude"), {"$gt": [gf("output.score"), li(json!(0.85))]}]})
        ),
        ["a", "c", "d"]
    );
    assert_eq!(
        fx.both(
            model("gpt-4o").and(cool()).not(),
            json!({"$not": [{"$and": [model_j("gpt-4o"), cool_j.clone()]}]})
        ),
        ["b", "c", "d"]
    );
    assert_eq!(
        fx.both(
            model("claude")
                .or(field("output.score").gt(0.85))
                .and(field("summary.weave.status").eq("error").not()),
            json!({"$and": [
                {"$or": [model_j("claude"), {"$gt": [gf("output.score"), li(json!(0.85))]}]},
                {"$not": [{"$eq": [gf("summary.weave.status"), li(json!("error"))]}]}
            ]})
        ),
        ["a", "c"]
    );
    // Chained `and`s flatten into one $and of three.
    assert_eq!(
        fx.both(
            model("claude").and(cool()).and(field("op_name").eq(d.op_name())),
            json!({"$and": [model_j("claude"), cool_j.clone(), {"$eq": [gf("op_name"), li(json!(d.op_name()))]}]})
        ),
        ["c"]
    );
    // Chained `or`s flatten too.
    assert_eq!(
        fx.both(
            model("x").or(model("y")).or(model("claude")),
            json!({"$or": [model_j("x"), model_j("y"), model_j("claude")]})
        ),
        ["c", "d"]
    );
    // A one-element $and / $or is that element.
    assert_eq!(fx.json(json!({"$and": [model_j("claude")]})), ["c", "d"]);
    assert_eq!(fx.json(json!({"$or": [model_j("gpt-4o")]})), ["a", "b"]);
    // Double negation.
    assert_eq!(
        fx.both(
            model("claude").not().not(),
            json!({"$not": [{"$not": [model_j("claude")]}]})
        ),
        ["c", "d"]
    );
    // An operation as an operand: (temperature > 0.5) == false.
    assert_eq!(
        fx.both(
            field("inputs.temperature").gt(0.5).eq(false),
            json!({"$eq": [{"$gt": [gf("inputs.temperature"), li(json!(0.5))]}, li(json!(false))]})
        ),
        ["a", "c"]
    );
    // Literal booleans as operands.
    assert_eq!(
        fx.json(json!({"$and": [li(json!(true)), model_j("gpt-4o")]})),
        ["a", "b"]
    );
    assert_eq!(
        fx.json(json!({"$or": [li(json!(false)), model_j("gpt-4o")]})),
        ["a", "b"]
    );
    // Two fields compared with each other.
    assert_eq!(
        fx.both(
            field("inputs.model").eq(field("inputs.model")),
            json!({"$eq": [gf("inputs.model"), gf("inputs.model")]})
        ),
        ["a", "b", "c", "d"]
    );
}

#[test]
fn field_compared_with_field() {
    let mut fx = Fx::new();
    fx.done(
        "right",
        "eval",
        json!({"expected": "Paris"}),
        json!({"answer": "Paris"}),
    );
    fx.done(
        "wrong",
        "eval",
        json!({"expected": "Paris"}),
        json!({"answer": "Lyon"}),
    );
    fx.done("no_answer", "eval", json!({"expected": "Paris"}), json!({}));
    assert_eq!(
        fx.both(
            field("output.answer").eq(field("inputs.expected")),
            json!({"$eq": [gf("output.answer"), gf("inputs.expected")]})
        ),
        ["right"]
    );
    assert_eq!(
        fx.both(
            field("output.answer").eq(field("inputs.expected")).not(),
            json!({"$not": [{"$eq": [gf("output.answer"), gf("inputs.expected")]}]})
        ),
        // Reference server: the missing answer makes the comparison NULL, and its NOT too.
        fx.want(&["wrong", "no_answer"], &["wrong"])
    );
}

// ---------------------------------------------------------------------------------------------
// $getField paths

#[test]
fn dotted_paths_into_inputs_output_attributes_summary() {
    let mut fx = Fx::new();
    fx.start(
        "first",
        "llm",
        json!({
            "cfg": {"a": 1, "nested": {"deep": "yes"}},
            "tags": ["x", "y"],
            "msgs": [{"role": "system", "content": "Be brief"}, {"role": "user", "content": "Hi"}],
            "by_num": {"0": "zero", "10": "ten"},
            "matrix": [[1, 2], [3, 4]],
            "we\"ird": "q",
            "sp ace": 1
        }),
        CallOptions::new().attribute("env", "prod"),
    );
    // `first` stays running: it has no output and no summary.
    let second = fx.start(
        "second",
        "llm",
        json!({
            "cfg": {"a": 2},
            "tags": ["y"],
            "msgs": [{"role": "user", "content": "Yo"}],
            "by_num": {"1": "one"},
            "matrix": [[5]]
        }),
        CallOptions::new().attribute("env", "dev"),
    );
    fx.s.client.finish_call(&second, json!(42)).unwrap();
    fx.done(
        "usage",
        "llm",
        json!({}),
        json!({"model": "gpt-4o", "usage": {"prompt_tokens": 12, "completion_tokens": 3}}),
    );

    let q = |f: &str, v: Value| fx.both(field(f).eq(v.clone()), json!({"$eq": [gf(f), li(v)]}));
    // Nested dicts.
    assert_eq!(q("inputs.cfg.a", json!(1)), ["first"]);
    assert_eq!(q("inputs.cfg.a", json!(2)), ["second"]);
    assert_eq!(q("inputs.cfg.nested.deep", json!("yes")), ["first"]);
    // Numeric segments index lists.
    assert_eq!(q("inputs.tags.0", json!("x")), ["first"]);
    assert_eq!(q("inputs.tags.0", json!("y")), ["second"]);
    assert_eq!(q("inputs.tags.1", json!("y")), ["first"]);
    assert_eq!(q("inputs.msgs.1.content", json!("Hi")), ["first"]);
    assert_eq!(q("inputs.msgs.0.role", json!("user")), ["second"]);
    assert_eq!(q("inputs.matrix.1.0", json!(3)), ["first"]);
    assert_eq!(
        fx.both(
            field("inputs.matrix.0.0").gt(4),
            json!({"$gt": [gf("inputs.matrix.0.0"), li(json!(4))]})
        ),
        ["second"]
    );
    // Out of range, or a non-numeric segment on a list: missing.
    assert_eq!(
        q("inputs.tags.5", Value::Null),
        ["first", "second", "usage"]
    );
    assert_eq!(
        q("inputs.tags.x", Value::Null),
        ["first", "second", "usage"]
    );
    // A numeric segment keys a dict whose key looks like a number.
    // Reference server: a numeric segment is always a list index (`quote_json_path` in
    // orm.py writes `[0]`), so it finds nothing in a dict.
    assert_eq!(
        q("inputs.by_num.0", json!("zero")),
        fx.want(&["first"], &[])
    );
    assert_eq!(
        q("inputs.by_num.10", json!("ten")),
        fx.want(&["first"], &[])
    );
    assert_eq!(
        q("inputs.by_num.1", json!("one")),
        fx.want(&["second"], &[])
    );
    // Keys with a quote or a space.
    // Reference server: `quote_json_path` puts the key in double quotes without escaping a
    // quote inside it, so the path `$."we"ird"` does not reach the key.
    assert_eq!(q("inputs.we\"ird", json!("q")), fx.want(&["first"], &[]));
    assert_eq!(q("inputs.sp ace", json!(1)), ["first"]);
    // Whole lists and dicts compare with literal lists and dicts.
    if fx.s.is_reference() {
        // Reference server: see `assert_structured_literal_rejected`.
        for (f, v) in [
            ("inputs.tags", json!(["x", "y"])),
            ("inputs.cfg", json!({"a": 2})),
        ] {
            assert_structured_literal_rejected(fx.failure(field(f).eq(v)));
        }
    } else {
        assert_eq!(q("inputs.tags", json!(["x", "y"])), ["first"]);
        assert_eq!(q("inputs.cfg", json!({"a": 2})), ["second"]);
    }
    // Attributes, including the SDK's own block.
    assert_eq!(q("attributes.env", json!("prod")), ["first"]);
    assert_eq!(
        q("attributes.weave.source", json!("rust-sdk")),
        ["first", "second", "usage"]
    );
    // Output: a scalar output is `output` itself.
    assert_eq!(q("output", json!(42)), ["second"]);
    assert_eq!(q("output.model", json!("gpt-4o")), ["usage"]);
    // The running call has no output.
    assert_eq!(q("output", Value::Null), ["first"]);
    // Summary paths (the client-computed summary).
    assert_eq!(
        q("summary.usage.gpt-4o.prompt_tokens", json!(12)),
        ["usage"]
    );
    assert_eq!(
        fx.both(
            field("summary.usage.gpt-4o.requests").gte(1),
            json!({"$gte": [gf("summary.usage.gpt-4o.requests"), li(json!(1))]})
        ),
        ["usage"]
    );
    assert_eq!(
        q("summary.status_counts.success", json!(1)),
        ["second", "usage"]
    );
}

// ---------------------------------------------------------------------------------------------
// $literal

#[test]
fn literal_forms() {
    let mut fx = Fx::new();
    fx.done(
        "match",
        "op",
        json!({"l": [1, 2], "d": {"k": "v", "n": [1]}, "f": 0.5, "s": "hi"}),
        json!(null),
    );
    fx.done(
        "other",
        "op",
        json!({"l": [2, 1], "d": {"k": "w"}, "f": 1.5, "s": "ho"}),
        json!(null),
    );

    // Nested $literal wrappers unwrap.
    for (expr, json) in [
        (
            field("inputs.l").eq(json!([1, 2])),
            json!({"$eq": [gf("inputs.l"), {"$literal": [{"$literal": 1}, 2]}]}),
        ),
        (
            field("inputs.d").eq(json!({"k": "v", "n": [1]})),
            json!({"$eq": [gf("inputs.d"), {"$literal": {"k": {"$literal": "v"}, "n": [{"$literal": 1}]}}]}),
        ),
        (
            field("inputs.d").eq(json!({"k": "v", "n": [1]})),
            json!({"$eq": [gf("inputs.d"), {"$literal": {"$literal": {"k": "v", "n": [1]}}}]}),
        ),
    ] {
        if fx.s.is_reference() {
            // Reference server: see `assert_structured_literal_rejected`.
            assert_structured_literal_rejected(fx.failure(same_query(expr, &json)));
        } else {
            assert_eq!(fx.both(expr, json), ["match"]);
        }
    }
    assert_eq!(
        fx.both(
            field("inputs.f").eq(0.5),
            json!({"$eq": [gf("inputs.f"), li(json!(0.5))]})
        ),
        ["match"]
    );
    // Literal on the left.
    assert_eq!(
        fx.both(
            lit("hi").eq(field("inputs.s")),
            json!({"$eq": [li(json!("hi")), gf("inputs.s")]})
        ),
        ["match"]
    );
    // Two literals.
    assert_eq!(
        fx.both(lit(1).eq(1), json!({"$eq": [li(json!(1)), li(json!(1))]})),
        ["match", "other"]
    );
    assert_eq!(
        fx.both(lit(1).eq(2), json!({"$eq": [li(json!(1)), li(json!(2))]})),
        NONE
    );
    assert_eq!(
        fx.both(
            lit("b").gt("a"),
            json!({"$gt": [li(json!("b")), li(json!("a"))]})
        ),
        ["match", "other"]
    );
}

// ---------------------------------------------------------------------------------------------
// $convert

#[test]
fn convert_operators() {
    let mut fx = Fx::new();
    fx.done(
        "a",
        "op",
        json!({"x": "3.5", "i": 3.7, "n": 42, "b": "true", "z": 0, "opt": "here"}),
        json!(null),
    );
    fx.done(
        "b",
        "op",
        json!({"x": "2", "i": "7", "n": "42", "b": 1, "z": "false", "opt": 0}),
        json!(null),
    );
    fx.done("c", "op", json!({"x": "abc"}), json!(null));

    let conv = |f: &str, to: &str| json!({"$convert": {"input": gf(f), "to": to}});

    // double
    assert_eq!(
        fx.both(
            field("inputs.x").as_double().gt(3),
            json!({"$gt": [conv("inputs.x", "double"), li(json!(3))]})
        ),
        ["a"]
    );
    assert_eq!(
        fx.both(
            field("inputs.x").as_double().gte(2),
            json!({"$gte": [conv("inputs.x", "double"), li(json!(2))]})
        ),
        ["a", "b"]
    );
    assert_eq!(
        fx.both(
            field("inputs.x").as_double().eq(3.5),
            json!({"$eq": [conv("inputs.x", "double"), li(json!(3.5))]})
        ),
        ["a"]
    );
    // int truncates.
    assert_eq!(
        fx.both(
            field("inputs.i").as_int().eq(3),
            json!({"$eq": [conv("inputs.i", "int"), li(json!(3))]})
        ),
        ["a"]
    );
    assert_eq!(
        fx.both(
            field("inputs.i").as_int().eq(7),
            json!({"$eq": [conv("inputs.i", "int"), li(json!(7))]})
        ),
        ["b"]
    );
    // string
    assert_eq!(
        fx.both(
            field("inputs.n").as_string().eq("42"),
            json!({"$eq": [conv("inputs.n", "string"), li(json!("42"))]})
        ),
        ["a", "b"]
    );
    assert_eq!(
        fx.both(
            field("inputs.n").as_string().contains("4"),
            json!({"$contains": {"input": conv("inputs.n", "string"), "substr": li(json!("4"))}})
        ),
        ["a", "b"]
    );
    // bool
    // Reference server: `$convert` is a bare `CAST(... AS BOOL)` (`process_operand` in
    // `calls_query`), which reads the text "true" as 0.
    assert_eq!(
        fx.both(
            field("inputs.b").as_bool().eq(true),
            json!({"$eq": [conv("inputs.b", "bool"), li(json!(true))]})
        ),
        fx.want(&["a", "b"], &["b"])
    );
    assert_eq!(
        fx.both(
            field("inputs.z").as_bool().eq(false),
            json!({"$eq": [conv("inputs.z", "bool"), li(json!(false))]})
        ),
        ["a", "b"]
    );
    // exists
    let exists: [(Expr, Value, &[&str]); 6] = [
        (
            field("inputs.opt").exists().eq(true),
            json!({"$eq": [conv("inputs.opt", "exists"), li(json!(true))]}),
            &["a", "b"],
        ),
        (
            field("inputs.opt").exists().not(),
            json!({"$not": [conv("inputs.opt", "exists")]}),
            &["c"],
        ),
        (
            field("inputs.opt").exists(),
            json!({"$eq": [conv("inputs.opt", "exists"), li(json!(true))]}),
            &["a", "b"],
        ),
        (
            field("display_name").exists(),
            json!({"$eq": [conv("display_name", "exists"), li(json!(true))]}),
            &[],
        ),
        (
            lit(Value::Null).exists(),
            json!({"$eq": [{"$convert": {"input": li(json!(null)), "to": "exists"}}, li(json!(true))]}),
            &[],
        ),
        (
            lit(1).exists(),
            json!({"$eq": [{"$convert": {"input": li(json!(1)), "to": "exists"}}, li(json!(true))]}),
            &["a", "b", "c"],
        ),
    ];
    for (expr, json, want) in exists {
        if fx.s.is_reference() {
            // Reference server: its compiler has no `exists` conversion (`process_operand` in
            // `calls_query` raises "Unknown cast: exists", answered with 400: an invalid
            // query, as on the embedded store, with the server's reason).
            let e = fx.failure(same_query(expr, &json));
            assert!(
                matches!(&e, WeaveError::InvalidQuery(m)
                    if m.contains("HTTP 400") && m.contains("Unknown cast: exists")),
                "{e:?}"
            );
        } else {
            assert_eq!(fx.both(expr, json), want);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Timestamps

#[test]
fn timestamps_compare_with_rfc3339_strings() {
    let mut fx = Fx::new();
    // a at 00:00, b at 00:01, c at 00:02 (2025-01-01, UTC); c is still running.
    fx.done("a", "op", json!({}), json!(null));
    fx.done("b", "op", json!({}), json!(null));
    fx.start("c", "op", json!({}), CallOptions::new());

    let cmp = |op: &str, f: &str, s: &str| {
        let e = match op {
            "$gt" => field(f).gt(s),
            "$gte" => field(f).gte(s),
            "$lt" => field(f).lt(s),
            "$lte" => field(f).lte(s),
            _ => field(f).eq(s),
        };
        fx.both(e, json!({ op: [gf(f), li(json!(s))] }))
    };
    // Reference server: the timestamp columns hold Python's `isoformat()` text
    // ("2025-01-01T00:01:00+00:00", fractional seconds only when not zero) and the literal is
    // compared with it as text, unparsed: "...00:01:00+00:00" < "...00:01:00Z" ('+' < 'Z'),
    // offsets are not converted, no other spelling is equal, and `NOT` of a comparison with a
    // null ended_at is NULL.
    assert_eq!(cmp("$gt", "started_at", "2025-01-01T00:00:30Z"), ["b", "c"]);
    assert_eq!(
        cmp("$gte", "started_at", "2025-01-01T00:01:00Z"),
        fx.want(&["b", "c"], &["c"])
    );
    assert_eq!(
        cmp("$gte", "started_at", "2025-01-01T00:01:00.000001Z"),
        ["c"]
    );
    assert_eq!(cmp("$gt", "started_at", "2025-01-01T00:01:00Z"), ["c"]);
    // Offsets are converted to UTC: 01:01+01:00 is 00:01Z.
    assert_eq!(
        cmp("$lt", "started_at", "2025-01-01T01:01:00+01:00"),
        fx.want(&["a"], &["a", "b", "c"])
    );
    assert_eq!(
        cmp("$lte", "started_at", "2025-01-01T01:01:00+01:00"),
        fx.want(&["a", "b"], &["a", "b", "c"])
    );
    assert_eq!(
        cmp("$eq", "started_at", "2025-01-01T00:02:00Z"),
        fx.want(&["c"], &[])
    );
    assert_eq!(
        cmp("$eq", "started_at", "2025-01-01T00:02:00.000000+00:00"),
        fx.want(&["c"], &[])
    );
    assert_eq!(
        fx.both(
            field("started_at").in_(["2025-01-01T00:00:00Z", "2025-01-01T00:02:00Z"]),
            json!({"$in": [gf("started_at"), [li(json!("2025-01-01T00:00:00Z")), li(json!("2025-01-01T00:02:00Z"))]]})
        ),
        fx.want(&["a", "c"], &[])
    );
    // ended_at: now for a and b, null for c.
    assert_eq!(cmp("$gt", "ended_at", "2025-01-01T00:00:00Z"), ["a", "b"]);
    assert_eq!(
        fx.both(
            field("ended_at").gt("2025-01-01T00:00:00Z").not(),
            json!({"$not": [{"$gt": [gf("ended_at"), li(json!("2025-01-01T00:00:00Z"))]}]})
        ),
        fx.want(&["c"], &[])
    );
    // The value read back compares equal to itself.
    let b = fx.s.client.get_call(&fx.names[1].0).unwrap();
    assert_eq!(
        cmp("$eq", "started_at", &b.started_at().to_string()),
        fx.want(&["b"], &[])
    );
    // Converted to a string, a timestamp reads as RFC 3339.
    assert_eq!(
        fx.both(
            field("started_at").as_string().contains("2025-01-01T00:01:00"),
            json!({"$contains": {"input": {"$convert": {"input": gf("started_at"), "to": "string"}}, "substr": li(json!("2025-01-01T00:01:00"))}})
        ),
        ["b"]
    );
}

// ---------------------------------------------------------------------------------------------
// Invalid queries

fn parse_error(v: Value) -> String {
    let via_serde = serde_json::from_value::<Query>(v.clone())
        .expect_err("must not parse")
        .to_string();
    match Query::from_json(&v) {
        Err(WeaveError::InvalidQuery(m)) => {
            assert!(via_serde.contains(&m), "{via_serde:?} vs {m:?}");
            m
        }
        other => panic!("expected InvalidQuery, got {other:?}"),
    }
}

#[test]
fn malformed_queries_fail_to_parse_naming_the_part() {
    let m = parse_error(json!({"$expr": {"$regex": [gf("op_name"), li(json!("x"))]}}));
    assert!(
        m.contains("$regex") && m.contains("unknown operator"),
        "{m}"
    );
    let m = parse_error(json!({"$expr": {"$and": [
        {"$eq": [gf("op_name"), li(json!("x"))]},
        {"$eq": [gf("op_name"), li(json!("x")), li(json!("y"))]}
    ]}}));
    assert!(
        m.contains("$expr.$and[1].$eq") && m.contains("exactly 2 operands, got 3"),
        "{m}"
    );
    let m = parse_error(json!({"$expr": {"$not": [li(json!(true)), li(json!(false))]}}));
    assert!(
        m.contains("$not") && m.contains("exactly 1 operand, got 2"),
        "{m}"
    );
    let m = parse_error(json!({"$expr": {"$not": li(json!(true))}}));
    assert!(m.contains("$expr.$not"), "{m}");
    let m = parse_error(json!({"$expr": {"$gt": [gf("inputs.n")]}}));
    assert!(m.contains("$gt") && m.contains("got 1"), "{m}");
    let m = parse_error(json!({"$expr": {"$and": []}}));
    assert!(m.contains("$and") && m.contains("at least one"), "{m}");
    let m = parse_error(json!({"$expr": {"$in": [gf("id"), li(json!(["a"]))]}}));
    assert!(m.contains("$expr.$in[1]"), "{m}");
    let m = parse_error(json!({"$expr": {"$in": [gf("id")]}}));
    assert!(m.contains("$in") && m.contains("2 elements"), "{m}");
    let m = parse_error(json!({"$expr": {"$eq": [
        {"$convert": {"input": gf("inputs.n"), "to": "float"}}, li(json!(1))
    ]}}));
    assert!(m.contains("\"float\""), "{m}");
    let m = parse_error(json!({"$expr": {"$contains": {"input": gf("inputs.s")}}}));
    assert!(m.contains("$contains") && m.contains("substr"), "{m}");
    let m = parse_error(
        json!({"$expr": {"$contains": {"input": gf("inputs.s"), "substr": li(json!("a")), "case_insensitive": "yes"}}}),
    );
    assert!(m.contains("case_insensitive"), "{m}");
    let m = parse_error(json!({"$expr": {"$eq": [{"$getField": 3}, li(json!(1))]}}));
    assert!(m.contains("$expr.$eq[0].$getField"), "{m}");
    let m = parse_error(json!({"$expr": {"$eq": [{"$getField": ""}, li(json!(1))]}}));
    assert!(m.contains("empty"), "{m}");
    let m = parse_error(json!({"$query": {}}));
    assert!(m.contains("$expr"), "{m}");
    // The text form parses the same way.
    match r#"{"$expr": {"$nope": []}}"#.parse::<Query>() {
        Err(WeaveError::InvalidQuery(m)) => assert!(m.contains("$nope"), "{m}"),
        other => panic!("expected InvalidQuery, got {other:?}"),
    }
}

#[test]
fn invalid_fields_and_values_fail_when_queried() {
    let mut fx = Fx::new();
    fx.done("a", "op", json!({"x": 1}), json!(null));

    if fx.s.is_reference() {
        // Reference server: it validates neither fields nor values (see the function).
        invalid_queries_on_the_reference_server(&fx);
    } else {
        invalid_queries_on_the_embedded_store(&fx);
    }
    // A valid query still works on the same client.
    assert_eq!(fx.find(field("inputs.x").eq(1)), ["a"]);
}

/// Every invalid field or value fails with an InvalidQuery naming it.
fn invalid_queries_on_the_embedded_store(fx: &Fx) {
    let m = fx.error(field("nope").eq(1));
    assert!(m.contains("\"nope\"") && m.contains("unknown field"), "{m}");
    // A typo of a JSON column.
    let m = fx.error(field("input.model").eq("gpt"));
    assert!(m.contains("\"input.model\""), "{m}");
    let m = fx.error(field("inputs..x").eq(1));
    assert!(
        m.contains("\"inputs..x\"") && m.contains("empty segment"),
        "{m}"
    );
    let m = fx.error(field("inputs.x.").eq(1));
    assert!(m.contains("\"inputs.x.\""), "{m}");
    let m = fx.error(field("summary.weave.nope").eq(1));
    assert!(m.contains("\"summary.weave.nope\""), "{m}");
    // The old servers' key is not a computed field.
    let m = fx.error(field("summary.weave.latency").gt(1));
    assert!(m.contains("\"summary.weave.latency\""), "{m}");
    let m = fx.error(field("started_at").gt("yesterday"));
    assert!(
        m.contains("\"yesterday\"") && m.contains("timestamp"),
        "{m}"
    );
    let m = fx.error(field("ended_at").lt(true));
    assert!(m.contains("timestamp"), "{m}");
    let m = fx.error(field("feedback.[wandb.reaction.1].payload.emoji").eq("x"));
    assert!(m.contains("feedback"), "{m}");
    // An error deep inside a combination, and from a query parsed from JSON.
    let q: Query = serde_json::from_value(json!({"$expr": {"$or": [
        {"$eq": [gf("inputs.x"), li(json!(1))]},
        {"$not": [{"$contains": {"input": gf("bogus_column"), "substr": li(json!("a"))}}]}
    ]}}))
    .unwrap();
    let m = fx.error(q);
    assert!(m.contains("\"bogus_column\""), "{m}");
    let q: Query = serde_json::from_value(json!({"$expr": {"$in": [
        gf("started_at"), [li(json!("2025-01-01T00:00:00Z")), li(json!("not a date"))]
    ]}}))
    .unwrap();
    let m = fx.error(q);
    assert!(m.contains("\"not a date\""), "{m}");
    // Errors come from compiling the query, so an empty project reports them too.
    let empty = TestStore::with_project("test-entity", "empty");
    match empty.client.get_calls(field("nope").eq(1)).next() {
        Some(Err(WeaveError::InvalidQuery(m))) => assert!(m.contains("\"nope\"")),
        other => panic!("expected InvalidQuery, got {other:?}"),
    }
}

/// Reference server: fields and values are not validated. `calls_query` in
/// sqlite_trace_server.py passes a name that is no JSON path or computed field through as a
/// column, so SQLite fails ("no such column: nope") and the answer is HTTP 500; every other
/// bad field or value compiles and matches nothing (a bad JSON path reads null, "yesterday"
/// and "not a date" compare as text, `true` as 1).
fn invalid_queries_on_the_reference_server(fx: &Fx) {
    let fails = |q: Query| {
        let e = fx.failure(q.clone());
        assert!(
            matches!(&e, WeaveError::Backend(m) if m.contains("HTTP 500")),
            "{e:?}"
        );
        match fx.s.client.get_calls(q).size() {
            Err(WeaveError::Backend(m)) => assert!(m.contains("HTTP 500"), "{m}"),
            other => panic!("expected size() to fail with HTTP 500, got {other:?}"),
        }
    };
    fails(Query::new(field("nope").eq(1)));
    fails(Query::new(field("input.model").eq("gpt")));
    fails(
        serde_json::from_value(json!({"$expr": {"$or": [
            {"$eq": [gf("inputs.x"), li(json!(1))]},
            {"$not": [{"$contains": {"input": gf("bogus_column"), "substr": li(json!("a"))}}]}
        ]}}))
        .unwrap(),
    );
    for q in [
        field("inputs..x").eq(1),
        field("inputs.x.").eq(1),
        field("summary.weave.nope").eq(1),
        field("summary.weave.latency").gt(1),
        field("started_at").gt("yesterday"),
        field("ended_at").lt(true),
        field("feedback.[wandb.reaction.1].payload.emoji").eq("x"),
        field("started_at").in_(["2025-01-01T00:00:00Z", "not a date"]),
    ] {
        assert_eq!(fx.find(q), NONE);
    }
    // An empty project too.
    let empty = TestStore::with_project("test-entity", "empty");
    match empty.client.get_calls(field("nope").eq(1)).next() {
        Some(Err(WeaveError::Backend(m))) => assert!(m.contains("HTTP 500"), "{m}"),
        other => panic!("expected HTTP 500, got {other:?}"),
    }
}

#[test]
fn a_typed_field_decides_over_a_string_literal() {
    let s = TestStore::new();
    let server = s.server.clone();
    // Two calls with exact latencies of 50 ms and 900 ms.
    let t0: Timestamp = "2025-01-01T00:00:00Z".parse().unwrap();
    let mut ids = Vec::new();
    for (i, ms) in [50i64, 900].into_iter().enumerate() {
        let id = weave::generate_id();
        let start = weave::schema::StartedCallSchemaForInsert {
            project_id: "test-entity/test-project".into(),
            id: Some(id.clone()),
            op_name: format!("op{i}"),
            display_name: None,
            // Reference server: its call_start requires a trace id ("trace_id is required",
            // sqlite_trace_server.py); the embedded store makes one.
            trace_id: s.is_reference().then(weave::generate_id),
            parent_id: None,
            thread_id: None,
            turn_id: None,
            started_at: t0,
            attributes: Default::default(),
            inputs: Default::default(),
            otel_dump: None,
            wb_user_id: None,
            wb_run_id: None,
            wb_run_step: None,
        };
        server
            .call_start(weave::schema::CallStartReq { start })
            .unwrap();
        let end = weave::schema::EndedCallSchemaForInsert {
            project_id: "test-entity/test-project".into(),
            id: id.clone(),
            ended_at: Timestamp::from_nanos(t0.as_nanos() + ms * 1_000_000),
            exception: None,
            output: json!(null),
            summary: Default::default(),
            wb_run_step_end: None,
        };
        server.call_end(weave::schema::CallEndReq { end }).unwrap();
        ids.push(id);
    }
    // As text "900" < "100", as numbers it is not: latency_ms is a number, so numbers win.
    let q = CallsQuery::new().query(field("summary.weave.latency_ms").gt("100"));
    let found = crate::common::ids(&s.client, q);
    if s.is_reference() {
        // Reference server: its latency_ms is a `CASE` expression, which has no type affinity
        // in SQLite, so the literal '100' stays text, and a number is always less than text.
        assert_eq!(found, NONE);
    } else {
        assert_eq!(found, [ids[1].clone()]);
    }
}

#[test]
fn numeric_text_in_exponent_form_converts() {
    let s = TestStore::new();
    let big = crate::common::record(&s.client, "op", json!({"n": "1e3"}), json!(null));
    crate::common::record(&s.client, "op", json!({"n": "inf"}), json!(null));
    crate::common::record(&s.client, "op", json!({"n": "0x10"}), json!(null));
    let q = CallsQuery::new().query(field("inputs.n").as_double().gt(999));
    assert_eq!(crate::common::ids(&s.client, q), [big.id()]);
    let q = CallsQuery::new().query(field("inputs.n").eq(1000));
    let found = crate::common::ids(&s.client, q);
    if s.is_reference() {
        // Reference server: an integer literal converts only JSON integers and digit-only
        // text (`_sqlite_inferred_json_cast_sql`), so "1e3" is null there.
        assert_eq!(found, NONE);
    } else {
        assert_eq!(found, [big.id()]);
    }
}

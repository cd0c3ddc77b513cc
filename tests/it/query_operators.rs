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
//!
//! Most tests are tables: a test records a few named calls ([`Fx::record`]) and runs its cases
//! ([`Fx::run`]): a query, the calls it matches on the embedded store and on `weave serve`,
//! and, where the reference server answers otherwise, its answer (`.reference(…)`, the reason
//! in the comment above). A query is written once with [`Q`], which builds it both ways, or,
//! where the protocol's spelling is the point, as the builder and the JSON side by side
//! ([`both`]). A failing case is reported with its number in the table and its query. The
//! tables are laid out by hand, a case a row, so their tests are `#[rustfmt::skip]`.

use serde_json::{json, Value};
use weave::query::{field, lit, Expr};
use weave::{Call, CallOptions, CallsQuery, Query, Timestamp, WeaveError};
use weave_testkit::backends;

use crate::common::TestStore;

/// 2025-01-01T00:00:00Z in Unix seconds.
const T0: i64 = 1_735_689_600;

/// `T0 + secs`.
fn at(secs: i64) -> Timestamp {
    Timestamp::from_nanos((T0 + secs) * 1_000_000_000)
}

// ---------------------------------------------------------------------------------------------
// The calls of a test

enum End {
    Output(Value),
    Fail(&'static str),
    Running,
}

type Name = &'static str;

/// A call for a test to record, under the name its table uses.
struct Rec {
    name: Name,
    op: Name,
    inputs: Value,
    end: End,
    display_name: Option<Name>,
    /// The name of the parent, recorded before it.
    parent: Option<Name>,
    attribute: Option<(Name, Name)>,
    /// Started this many milliseconds before the recording (else at `T0` plus a minute per
    /// call before it in the list).
    ago_ms: Option<i64>,
}

fn rec(name: Name, op: Name, inputs: Value, end: End) -> Rec {
    let (display_name, parent, attribute, ago_ms) = (None, None, None, None);
    Rec {
        name,
        op,
        inputs,
        end,
        display_name,
        parent,
        attribute,
        ago_ms,
    }
}

fn done(name: Name, op: Name, inputs: Value, output: impl Into<Value>) -> Rec {
    rec(name, op, inputs, End::Output(output.into()))
}

fn failed(name: Name, op: Name, inputs: Value, exception: Name) -> Rec {
    rec(name, op, inputs, End::Fail(exception))
}

fn running(name: Name, op: Name, inputs: Value) -> Rec {
    rec(name, op, inputs, End::Running)
}

/// A finished call of `op` for each `(name, value)`, with the one input `key` = value; and,
/// if `missing`, one without inputs named `missing`.
fn each(key: &str, values: &[(Name, Value)], missing: bool) -> Vec<Rec> {
    let call = |(name, v): &(Name, Value)| done(name, "op", json!({ key: v }), ());
    let missing = missing.then(|| done("missing", "op", json!({}), ()));
    values.iter().map(call).chain(missing).collect()
}

// ---------------------------------------------------------------------------------------------
// The cases of a test

/// A query written once and built twice: with the builder (`.0`) and as protocol JSON (`.1`).
#[derive(Clone)]
struct Q(Expr, Value);

/// `field(path)` and `{"$getField": path}`.
fn get(path: &str) -> Q {
    Q(field(path), gf(path))
}

/// `lit(v)` and `{"$literal": v}`; plain values convert to it.
fn val(v: impl Into<Value>) -> Q {
    let v = v.into();
    Q(lit(v.clone()), li(v))
}

macro_rules! literal_q {
    ($($t:ty),*) => {$(impl From<$t> for Q { fn from(v: $t) -> Q { val(v) } })*};
}
literal_q!(&str, String, i32, f64, bool, Value, ());

macro_rules! binary_q {
    ($($m:ident $op:literal),*) => {$(
        fn $m(self, other: impl Into<Q>) -> Q {
            let o = other.into();
            Q(self.0.$m(o.0), json!({ $op: [self.1, o.1] }))
        }
    )*};
}

macro_rules! convert_q {
    ($($m:ident $to:literal),*) => {$(
        fn $m(self) -> Q {
            Q(self.0.$m(), json!({"$convert": {"input": self.1, "to": $to}}))
        }
    )*};
}

// The names are the builder's, so a row reads as the builder's query.
#[allow(clippy::wrong_self_convention)]
impl Q {
    binary_q!(eq "$eq", gt "$gt", gte "$gte", lt "$lt", lte "$lte");
    convert_q!(as_double "double", as_int "int", as_string "string", as_bool "bool", exists "exists");

    fn ne(self, other: impl Into<Q>) -> Q {
        let o = other.into();
        Q(self.0.ne(o.0), json!({"$not": [{"$eq": [self.1, o.1]}]}))
    }
    fn is_null(self) -> Q {
        Q(self.0.is_null(), json!({"$eq": [self.1, li(())]}))
    }
    fn in_<I: Into<Q>>(self, items: impl IntoIterator<Item = I>) -> Q {
        let (e, j): (Vec<Expr>, Vec<Value>) = items.into_iter().map(|i| i.into().pair()).unzip();
        Q(self.0.in_(e), json!({"$in": [self.1, j]}))
    }
    fn pair(self) -> (Expr, Value) {
        (self.0, self.1)
    }
    fn contains(self, s: &str) -> Q {
        let j = json!({"$contains": {"input": self.1, "substr": li(s)}});
        Q(self.0.contains(s), j)
    }
    /// Of a `contains`.
    fn case_insensitive(mut self) -> Q {
        self.1["$contains"]["case_insensitive"] = json!(true);
        Q(self.0.case_insensitive(), self.1)
    }
    fn not(self) -> Q {
        Q(self.0.not(), json!({"$not": [self.1]}))
    }
    fn and(self, other: Q) -> Q {
        Q(self.0.and(other.0), json!({"$and": [self.1, other.1]}))
    }
    fn or(self, other: Q) -> Q {
        Q(self.0.or(other.0), json!({"$or": [self.1, other.1]}))
    }
    /// A bare operand as the query: a truthiness test, which the protocol spells `$eq true`.
    fn bare(self) -> Q {
        Q(self.0, json!({"$eq": [self.1, li(true)]}))
    }
}

/// A query as a case writes it: built both ways, or only as JSON.
enum Form {
    /// From the builder and as protocol JSON (the value of `$expr`): both must be the same
    /// query.
    Both(Expr, Value),
    Json(Value),
}

/// The builder's `expr` and, written out, its protocol JSON (the value of `$expr`).
fn both(expr: Expr, json: Value) -> Form {
    Form::Both(expr, json)
}

impl From<Q> for Form {
    fn from(q: Q) -> Form {
        Form::Both(q.0, q.1)
    }
}

impl From<Value> for Form {
    fn from(json: Value) -> Form {
        Form::Json(json)
    }
}

/// `{"$getField": f}`.
fn gf(f: &str) -> Value {
    json!({ "$getField": f })
}

/// `{"$literal": v}`.
fn li(v: impl Into<Value>) -> Value {
    json!({ "$literal": v.into() })
}

impl Form {
    /// The JSON form, as the failure messages show it.
    fn json(&self) -> &Value {
        match self {
            Form::Both(_, j) | Form::Json(j) => j,
        }
    }

    fn query(self) -> Result<Query, String> {
        let parse = |j| Query::from_json(&json!({ "$expr": j })).map_err(|e| e.to_string());
        match self {
            Form::Json(j) => parse(j),
            Form::Both(e, j) => match (Query::new(e), parse(j)?) {
                (built, parsed) if built == parsed => Ok(parsed),
                (built, _) => Err(format!("builder and JSON differ: built {built:?}")),
            },
        }
    }
}

/// What a case's query gives. The errors are the first item of the iteration, which then
/// ends.
#[derive(Clone, Copy, Debug)]
enum Want {
    /// These calls, in this order.
    Calls(&'static [Name]),
    /// An InvalidQuery error whose message holds each part, also from `size()`.
    Invalid(&'static [&'static str]),
    /// Reference server: a comparison with a list or dict literal fails. The client sends
    /// nested values wrapped (`{"$literal": [{"$literal": "x"}]}`), the only form the server's
    /// pydantic `LiteralOperation` accepts; the SQLite compiler then fails on them with 500
    /// (`process_operand` in `calls_query` calls `json.dumps` on the wrapper objects).
    StructuredLiteral,
    /// Reference server: its compiler has no `exists` conversion (`process_operand` in
    /// `calls_query` raises "Unknown cast: exists", answered with 400: an invalid query, as on
    /// the embedded store, with the server's reason).
    UnknownCast,
    /// Reference server: a field that is no JSON path or computed field is passed through as
    /// a column (`calls_query` in sqlite_trace_server.py), so SQLite fails ("no such column:
    /// nope") and the answer is HTTP 500, also from `size()`.
    Http500,
}

struct Case {
    form: Form,
    want: Want,
    /// The reference server's answer, where it differs.
    reference: Option<Want>,
}

/// A case matching `calls`.
fn case(form: impl Into<Form>, calls: &'static [Name]) -> Case {
    let (form, want) = (form.into(), Want::Calls(calls));
    Case {
        form,
        want,
        reference: None,
    }
}

/// A case failing with InvalidQuery, naming each of `parts`.
fn invalid(form: impl Into<Form>, parts: &'static [&'static str]) -> Case {
    let (form, want) = (form.into(), Want::Invalid(parts));
    Case {
        form,
        want,
        reference: None,
    }
}

impl Case {
    fn reference(self, calls: &'static [Name]) -> Self {
        self.reference_fails(Want::Calls(calls))
    }
    fn reference_fails(self, want: Want) -> Self {
        Case {
            reference: Some(want),
            ..self
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The driver

/// A fresh store with named calls.
struct Fx {
    s: TestStore,
    calls: Vec<(Name, Call)>,
}

impl Fx {
    /// Records `recs`: starts them in order (so the default order, `started_at asc`, is the
    /// list's), then ends them in reverse order (children before their parents).
    fn record(recs: impl IntoIterator<Item = Rec>) -> Fx {
        let (s, now) = (TestStore::new(), Timestamp::now().as_nanos());
        let recs: Vec<Rec> = recs.into_iter().collect();
        let mut calls: Vec<(Name, Call)> = Vec::new();
        for (i, r) in recs.iter().enumerate() {
            let started = match r.ago_ms {
                Some(ms) => Timestamp::from_nanos(now - ms * 1_000_000),
                None => at(60 * i as i64),
            };
            let mut opts = CallOptions::new().started_at(started).use_stack(false);
            if let Some(d) = r.display_name {
                opts = opts.display_name(d);
            }
            if let Some(p) = r.parent {
                opts = opts.parent(&calls.iter().find(|(n, _)| *n == p).expect("parent").1);
            }
            if let Some((k, v)) = r.attribute {
                opts = opts.attribute(k, v);
            }
            let call = s.client.create_call_with(r.op, &r.inputs, opts);
            calls.push((r.name, call.expect("create")));
        }
        for (r, (_, call)) in recs.iter().zip(&calls).rev() {
            match r.end {
                End::Output(ref v) => s.client.finish_call(call, v).expect("finish"),
                End::Fail(e) => s.client.fail_call(call, e.to_string()).expect("fail"),
                End::Running => {}
            }
        }
        Fx { s, calls }
    }

    fn call(&self, name: &str) -> &Call {
        let found = self.calls.iter().find(|(n, _)| *n == name);
        &found.unwrap_or_else(|| panic!("no call {name}")).1
    }

    fn name_of(&self, id: &str) -> Name {
        let found = self.calls.iter().find(|(_, c)| c.id() == id);
        found.unwrap_or_else(|| panic!("unknown call {id}")).0
    }

    /// The names of the calls matching `q`, in the order returned.
    fn find(&self, q: impl Into<CallsQuery>) -> Result<Vec<Name>, WeaveError> {
        let found = self.s.client.get_calls(q);
        found.map(|c| c.map(|c| self.name_of(c.id()))).collect()
    }

    /// The error that `q` gives when iterated (the first item; the iteration then ends).
    fn failure(&self, q: impl Into<CallsQuery>) -> Result<WeaveError, String> {
        let mut it = self.s.client.get_calls(q);
        match (it.next(), it.next()) {
            (Some(Err(e)), None) => Ok(e),
            (Some(Err(e)), Some(_)) => Err(format!("the iteration goes on after {e:?}")),
            (other, _) => Err(format!("expected an error, got {other:?}")),
        }
    }

    /// The message of the InvalidQuery error that `q` gives, both when iterated (first item)
    /// and from `size()`.
    fn error(&self, q: impl Into<CallsQuery>) -> Result<String, String> {
        let q: CallsQuery = q.into();
        let msg = match self.failure(q.clone())? {
            WeaveError::InvalidQuery(m) => m,
            other => return Err(format!("expected an InvalidQuery error, got {other:?}")),
        };
        // Over HTTP the message starts with the route that refused it (iterating and size()
        // use different routes); the server's reason after it is the same.
        let reason = |m: &str| {
            m.split_once(": HTTP 400: ")
                .map_or(m, |(_, r)| r)
                .to_string()
        };
        match self.s.client.get_calls(q).size() {
            Err(WeaveError::InvalidQuery(m)) if reason(&m) == reason(&msg) => Ok(msg),
            other => Err(format!(
                "size() must fail as iterating did ({msg}): {other:?}"
            )),
        }
    }

    /// Runs `cases`, then fails naming every case that did not give what it wants.
    fn run<const N: usize>(&self, cases: [Case; N]) {
        let failed: Vec<String> = (cases.into_iter().enumerate())
            .map(|(i, c)| (format!("case {i}: {}", c.form.json()), self.check(c)))
            .filter_map(|(label, r)| r.err().map(|why| format!("{label}\n    {why}")))
            .collect();
        let (n, suite) = (failed.len(), weave_testkit::suite());
        assert!(
            n == 0,
            "{n} of {N} cases failed on the {suite:?} store:\n{}",
            failed.join("\n")
        );
    }

    fn check(&self, case: Case) -> Result<(), String> {
        let q = case.form.query()?;
        let want = match case.reference {
            Some(r) if self.s.is_reference() => r,
            _ => case.want,
        };
        match want {
            Want::Calls(calls) => match self.find(q) {
                Ok(got) if got == calls => Ok(()),
                got => Err(format!("got {got:?}, want {calls:?}")),
            },
            Want::Invalid(parts) => {
                let m = self.error(q)?;
                match parts.iter().find(|p| !m.contains(*p)) {
                    Some(p) => Err(format!("the message {m:?} does not name {p:?}")),
                    None => Ok(()),
                }
            }
            Want::StructuredLiteral | Want::UnknownCast => {
                let e = self.failure(q)?;
                let ok = match (&e, want) {
                    (WeaveError::Backend { message: m, .. }, Want::StructuredLiteral) => {
                        m.contains("HTTP 500") && m.contains("Internal server error")
                    }
                    (WeaveError::InvalidQuery(m), Want::UnknownCast) => {
                        m.contains("HTTP 400") && m.contains("Unknown cast: exists")
                    }
                    _ => false,
                };
                ok.then_some(()).ok_or(format!("want {want:?}, got {e:?}"))
            }
            Want::Http500 => match (self.failure(q.clone())?, self.s.client.get_calls(q).size()) {
                (
                    WeaveError::Backend { message: a, .. },
                    Err(WeaveError::Backend { message: b, .. }),
                ) if a.contains("HTTP 500") && b.contains("HTTP 500") => Ok(()),
                (e, size) => Err(format!(
                    "want HTTP 500 from both, got {e:?} and size() {size:?}"
                )),
            },
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Top-level columns

#[rustfmt::skip]
#[backends]
fn eq_on_top_level_columns() {
    let fx = Fx::record([
        Rec { display_name: Some("My agent"), ..done("root", "agent", json!({}), "done") },
        Rec { parent: Some("root"), ..done("child", "llm", json!({}), "ok") },
        done("other", "tool", json!({}), ()),
    ]);
    let (root, child, other) = (fx.call("root"), fx.call("child"), fx.call("other"));
    fx.run([
        case(get("op_name").eq(child.op_name()), &["child"]),
        // Text comparison is case-sensitive.
        case(get("op_name").eq(child.op_name().replace("llm", "LLM")), &[]),
        case(get("display_name").eq("My agent"), &["root"]),
        case(get("display_name").is_null(), &["child", "other"]),
        case(get("trace_id").eq(root.trace_id()), &["root", "child"]),
        case(get("parent_id").eq(root.id()), &["child"]),
        case(get("parent_id").is_null(), &["root", "other"]),
        case(get("id").eq(other.id()), &["other"]),
        // Reference server: its ExternalTraceServer adapter maps the request's project_id to the
        // internal id (base64 of the name) but not the literals of the query
        // (external_to_internal_trace_server_adapter.py, calls_query_stream), so the stored column
        // never equals the external name.
        case(get("project_id").eq("test-entity/test-project"), &["root", "child", "other"]).reference(&[]),
        // The thread columns are null for calls outside a thread.
        case(get("thread_id").is_null(), &["root", "child", "other"]),
    ]);
}

#[rustfmt::skip]
#[backends]
fn exception_and_ended_at_columns() {
    let fx = Fx::record([
        done("ok", "tool", json!({}), "fine"),
        failed("failed", "tool", json!({}), "weather API timed out"),
        running("running", "tool", json!({})),
    ]);
    fx.run([
        case(get("exception").is_null(), &["ok", "running"]),
        case(get("exception").contains("weather API"), &["failed"]),
        case(get("exception").is_null().not(), &["failed"]),
        case(get("ended_at").is_null(), &["running"]),
    ]);
}

// ---------------------------------------------------------------------------------------------
// Computed summary.weave fields

#[rustfmt::skip]
#[backends]
fn computed_status() {
    let fx = Fx::record([
        done("ok", "tool", json!({}), 1),
        failed("failed", "tool", json!({}), "boom"),
        running("running", "tool", json!({})),
        done("parent", "agent", json!({}), "recovered"),
        Rec { parent: Some("parent"), ..failed("bad_child", "tool", json!({}), "child boom") },
    ]);
    let status = || get("summary.weave.status");
    fx.run([
        case(status().eq("success"), &["ok"]),
        case(status().eq("error"), &["failed", "bad_child"]),
        case(status().eq("running"), &["running"]),
        case(status().eq("descendant_error"), &["parent"]),
        case(status().in_(["error", "descendant_error"]), &["failed", "parent", "bad_child"]),
        case(status().ne("success"), &["failed", "running", "parent", "bad_child"]),
    ]);
    // The filter agrees with the status read back on every call.
    for c in fx.s.client.get_calls(CallsQuery::new()) {
        let c = c.unwrap();
        let shown = c.weave_summary().unwrap()["status"].as_str().unwrap().to_string();
        assert_eq!(shown, c.status().as_str());
        let found = fx.find(field("summary.weave.status").eq(shown.as_str())).unwrap();
        assert!(found.contains(&fx.name_of(c.id())), "{shown}: {found:?}");
    }
}

#[rustfmt::skip]
#[backends]
fn computed_trace_name() {
    let v1 = "weave:///test-entity/test-project/op/my_fn:abc123";
    let fx = Fx::record([
        done("plain", "llm", json!({}), ()),
        done("v1", v1, json!({}), ()),
        done("v2", "weave:///test-entity/test-project/op/my_fn:def456", json!({}), ()),
        Rec { display_name: Some("Pretty"), ..done("named", v1, json!({}), ()) },
    ]);
    let trace_name = || get("summary.weave.trace_name");
    fx.run([
        // The op name parsed from the ref; a display name takes its place.
        // Reference server: `summary.weave.trace_name` is not a computed field of its compiler
        // (`_transform_external_calls_field_to_internal_calls_field` knows only latency_ms and
        // status), so it reads the JSON path `weave.trace_name` of the stored summary: null.
        case(trace_name().eq("my_fn"), &["v1", "v2"]).reference(&[]),
        case(trace_name().eq("llm"), &["plain"]).reference(&[]),
        case(trace_name().eq("Pretty"), &["named"]).reference(&[]),
        case(trace_name().eq(v1), &[]),
        case(trace_name().contains("my_"), &["v1", "v2"]).reference(&[]),
    ]);
    // What is read back matches.
    let back = fx.s.client.get_call(fx.call("named").id()).unwrap();
    assert_eq!(back.weave_summary().unwrap()["display_name"], "Pretty");
}

#[rustfmt::skip]
#[backends]
fn computed_latency_ms() {
    // "running" never finishes. "fast" is clear of the bounds queried below: the reference
    // server's latency is only about millisecond-precise (see the next test), so a call
    // finished within a millisecond of 1000 ms could read 999.99 there.
    let fx = Fx::record([
        Rec { ago_ms: Some(60_000), ..done("slowest", "op", json!({}), ()) },
        Rec { ago_ms: Some(30_000), ..running("running", "op", json!({})) },
        Rec { ago_ms: Some(5_000), ..done("slow", "op", json!({}), ()) },
        Rec { ago_ms: Some(1_500), ..done("fast", "op", json!({}), ()) },
    ]);
    let latency = || get("summary.weave.latency_ms");
    fx.run([
        case(latency().gt(3_000), &["slowest", "slow"]),
        case(latency().gte(1_000).and(latency().lt(30_000)), &["slow", "fast"]),
        // A running call has no latency: it is null and never compares true.
        // Reference server: a running call's latency is 0, not null (the `ELSE 0` of
        // `_transform_external_calls_field_to_internal_calls_field`), so it is <= 2000.
        case(latency().lte(2_000), &["fast"]).reference(&["running", "fast"]),
        case(latency().is_null(), &["running"]).reference(&[]),
        case(latency().gt(0).not(), &["running"]),
    ]);
}

/// Starts and ends a call through the server, with exact timestamps.
fn timed_call(s: &TestStore, started: Timestamp, ended: Timestamp) -> String {
    let id = weave::generate_id();
    // Reference server: its call_start requires a trace id ("trace_id is required",
    // sqlite_trace_server.py); the embedded store makes one.
    let trace_id = s.is_reference().then(weave::generate_id);
    let start: weave::schema::CallStartReq = serde_json::from_value(json!({"start": {
        "project_id": "test-entity/test-project", "id": id, "trace_id": trace_id,
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

#[backends]
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
    let found = |e: Expr| crate::common::ids(&s.client, e);
    for (id, (_, _, want)) in ids.iter().zip(cases) {
        let back = s.client.get_call(id).unwrap();
        assert_eq!(back.weave_summary().unwrap()["latency_ms"], want);
        assert_eq!(back.latency_ms(), Some(want));
        let expected: &[String] = if remote {
            &[]
        } else {
            std::slice::from_ref(id)
        };
        let got = found(field("summary.weave.latency_ms").eq(want));
        assert_eq!(got, expected, "latency_ms == {want}");
    }
    let negative = found(field("summary.weave.latency_ms").lt(0));
    assert_eq!(negative, [ids[1].clone(), ids[3].clone()]);
    let le_minus_2 = found(field("summary.weave.latency_ms").lte(-2));
    if remote {
        assert_eq!(le_minus_2, [ids[3].clone()]);
    } else {
        assert_eq!(le_minus_2, [ids[1].clone(), ids[3].clone()]);
    }
}

#[backends]
fn a_typed_field_decides_over_a_string_literal() {
    let s = TestStore::new();
    // Two calls with exact latencies of 50 ms and 900 ms.
    let ids: Vec<String> = [50i64, 900]
        .into_iter()
        .map(|ms| {
            timed_call(
                &s,
                at(0),
                Timestamp::from_nanos(at(0).as_nanos() + ms * 1_000_000),
            )
        })
        .collect();
    // As text "900" < "100", as numbers it is not: latency_ms is a number, so numbers win.
    let q = CallsQuery::new().query(field("summary.weave.latency_ms").gt("100"));
    let found = crate::common::ids(&s.client, q);
    if s.is_reference() {
        // Reference server: its latency_ms is a `CASE` expression, which has no type affinity
        // in SQLite, so the literal '100' stays text, and a number is always less than text.
        assert!(found.is_empty(), "{found:?}");
    } else {
        assert_eq!(found, [ids[1].clone()]);
    }
}

// ---------------------------------------------------------------------------------------------
// Comparisons and typing

#[rustfmt::skip]
#[backends]
fn ordering_comparisons_on_numbers() {
    let fx = Fx::record(each("n", &[("one", json!(1)), ("five", json!(5)), ("ten", json!(10)),
                                    ("ten_half", json!(10.5))], true));
    let n = || get("inputs.n");
    fx.run([
        // Reference server: an integer literal casts the field to an integer, and only JSON
        // integers or digit-only text convert (`_sqlite_inferred_json_cast_sql`): 10.5 is null
        // there, so it never compares with an integer literal.
        case(n().gt(5), &["ten", "ten_half"]).reference(&["ten"]),
        case(n().gte(5), &["five", "ten", "ten_half"]).reference(&["five", "ten"]),
        case(n().lt(5), &["one"]),
        case(n().lte(5), &["one", "five"]),
        case(n().eq(10), &["ten"]),
        case(n().eq(10.5), &["ten_half"]),
        case(n().gt(5.5), &["ten", "ten_half"]),
        case(n().lt(0), &[]),
        // The missing value compares false, so its negation holds.
        // Reference server: the comparison is SQL NULL for the missing value (and for 10.5, see
        // above), and `NOT (NULL)` is NULL, so neither matches.
        case(n().lt(5).not(), &["five", "ten", "ten_half", "missing"]).reference(&["five", "ten"]),
        // The literal may be on the left.
        case(val(5).gt(n()), &["one"]),
    ]);
}

/// Calls whose input `s` is each of "9", "10", "100", "abc" and the number 9.
#[rustfmt::skip]
fn texts_and_a_number(missing: bool) -> Vec<Rec> {
    each("s", &[("s9", json!("9")), ("s10", json!("10")), ("s100", json!("100")), ("sabc", json!("abc")),
                ("n9", json!(9))], missing)
}

#[rustfmt::skip]
#[backends]
fn the_literal_type_picks_numeric_or_text_comparison() {
    let fx = Fx::record(texts_and_a_number(true));
    let s = || get("inputs.s");
    fx.run([
        // A numeric literal compares numerically: "10" > 9, and "abc" is no number.
        case(s().gt(9), &["s10", "s100"]),
        case(s().lt(100), &["s9", "s10", "n9"]),
        case(s().eq(9), &["s9", "n9"]),
        // A string literal compares as text: "10" < "9", "abc" > "9", and the number 9 reads "9".
        case(s().gt("9"), &["sabc"]),
        case(s().lt("9"), &["s10", "s100"]),
        case(s().eq("9"), &["s9", "n9"]),
    ]);
}

#[rustfmt::skip]
#[backends]
fn an_explicit_convert_fixes_the_comparison_domain() {
    let fx = Fx::record(texts_and_a_number(false));
    let s = || get("inputs.s");
    fx.run([
        // $convert to double compares numerically, even with a string literal.
        case(s().as_double().gt("9"), &["s10", "s100"]),
        // Reference server: an explicit `$convert` is a bare `CAST(... AS INT)` (`process_operand`
        // in `calls_query`), which turns the text "abc" into 0, not null.
        case(s().as_int().lt("10"), &["s9", "n9"]).reference(&["s9", "sabc", "n9"]),
        // $convert to string compares as text, even with a numeric literal: "10" < "9".
        case(s().as_string().gt(9), &["sabc"]),
    ]);
}

#[rustfmt::skip]
#[backends]
fn text_that_is_not_a_number_never_equals_zero() {
    let fx = Fx::record(each("v", &[("abc", json!("abc")), ("empty", json!("")), ("str0", json!("0")),
                                    ("num0", json!(0)), ("real0", json!(0.0)), ("null", json!(null)),
                                    ("mixed", json!("0abc"))], true));
    let v = || get("inputs.v");
    fx.run([
        // Reference server: the integer literal 0 casts the field to an integer, which only JSON
        // integers and digit-only text survive (`_sqlite_inferred_json_cast_sql`): 0.0 is null
        // there. Every other value is null too, and `NOT (NULL = 0)` is NULL: `ne` matches none.
        case(v().eq(0), &["str0", "num0", "real0"]).reference(&["str0", "num0"]),
        case(v().ne(0), &["abc", "empty", "null", "mixed", "missing"]).reference(&[]),
        case(v().lte(0.0), &["str0", "num0", "real0"]),
        // Converting non-numeric text to a number gives null, not 0.
        // Reference server: `$convert` is a bare `CAST(... AS FLOAT)` (`process_operand` in
        // `calls_query`), and SQLite casts non-numeric text to 0.0.
        case(v().as_double().is_null(), &["abc", "empty", "null", "mixed", "missing"]).reference(&["null", "missing"]),
    ]);
}

#[rustfmt::skip]
#[backends]
fn bool_literals() {
    let fx = Fx::record(each("flag", &[("t", json!(true)), ("f", json!(false)), ("str_t", json!("true")),
                                       ("str_f", json!("false"))], true));
    let flag = || get("inputs.flag");
    fx.run([
        case(flag().eq(true), &["t", "str_t"]),
        case(flag().eq(false), &["f", "str_f"]),
        // Reference server: for the missing value the comparison is SQL NULL, and so is its $not.
        case(flag().eq(true).not(), &["f", "str_f", "missing"]).reference(&["f", "str_f"]),
        // A bare field is a truthiness test: the same query as `$eq true`.
        case(flag().bare(), &["t", "str_t"]),
    ]);
}

#[rustfmt::skip]
#[backends]
fn null_semantics() {
    let fx = Fx::record(each("opt", &[("null", json!(null)), ("x", json!("x")), ("zero", json!(0)),
                                      ("empty", json!("")), ("false", json!(false)), ("list", json!([]))], true));
    const ALL: &[&str] = &["null", "x", "zero", "empty", "false", "list", "missing"];
    let (opt, nope) = (|| get("inputs.opt"), || get("inputs.nope"));
    // Reference server: plain SQL three-valued logic. A comparison with a null or missing
    // value is NULL, and so is its `NOT`, so the negations below match no such call (or no
    // call at all: the rows whose embedded answer is ALL).
    fx.run([
        // $eq null: missing or null.
        case(opt().is_null(), &["null", "missing"]),
        // Reference server: only a null literal on the right means IS NULL (`EqOperation` in
        // `calls_query`); on the left it compiles to `null = ...`, which is NULL.
        case(val(()).eq(opt()), &["null", "missing"]).reference(&[]),
        case(opt().is_null().not(), &["x", "zero", "empty", "false", "list"]),
        // `ne` is `$not $eq`: a missing or null value is "not equal".
        case(opt().ne("x"), &["null", "zero", "empty", "false", "list", "missing"])
            .reference(&["zero", "empty", "false", "list"]),
        case(opt().eq(""), &["empty"]),
        // An ordering comparison with null, or with a missing field, is false; its $not is true.
        case(opt().gt(()), &[]),
        case(opt().gt(()).not(), ALL).reference(&[]),
        case(nope().gt(1), &[]),
        case(nope().gt(1).not(), ALL).reference(&[]),
        case(nope().eq("a").not(), ALL).reference(&[]),
        // null == null holds.
        case(val(()).is_null(), ALL),
    ]);
}

// ---------------------------------------------------------------------------------------------
// $in and $contains

#[rustfmt::skip]
#[backends]
fn in_operator() {
    let fx = Fx::record(each("model", &[("gpt", json!("gpt-4o")), ("claude", json!("claude-3")),
                                        ("mini", json!("gpt-4o-mini")), ("num7", json!(7)), ("str7", json!("7")),
                                        ("null", json!(null))], true));
    let m = || get("inputs.model");
    fx.run([
        case(m().in_(["gpt-4o", "claude-3"]), &["gpt", "claude"]),
        // Numeric literal: numeric comparison ("7" is 7). String literal: text ("7" is "7").
        case(m().in_([7]), &["num7", "str7"]),
        case(m().in_(["7"]), &["num7", "str7"]),
        // Mixed literal types.
        case(m().in_([json!(7), json!("gpt-4o")]), &["gpt", "num7", "str7"]),
        // null in the list matches null and missing.
        // Reference server: `$in` is SQL `IN (...)` (`InOperation` in `calls_query`), where null
        // matches nothing, and `NOT IN` of a null value is NULL.
        case(m().in_([json!("gpt-4o"), Value::Null]), &["gpt", "null", "missing"]).reference(&["gpt"]),
        // A list of only null, or a field item, works too.
        case(m().in_([Value::Null]), &["null", "missing"]).reference(&[]),
        case(m().in_([m()]), &["gpt", "claude", "mini", "num7", "str7"]),
        case(m().in_([get("inputs.nope"), val("claude-3")]), &["claude"]),
        // An empty list matches nothing.
        case(m().in_(Vec::<Q>::new()), &[]),
        case(m().in_(["gpt-4o"]).not(), &["claude", "mini", "num7", "str7", "null", "missing"])
            .reference(&["claude", "mini", "num7", "str7"]),
        // On a top-level column.
        case(get("id").in_([fx.call("claude").id(), fx.call("str7").id()]), &["claude", "str7"]),
    ]);
}

#[rustfmt::skip]
#[backends]
fn contains_operator() {
    let texts = [("hello", json!("Hello World")), ("lower", json!("hello there")), ("upper", json!("HELLO")),
                 ("pct", json!("say 50% off")), ("snake", json!("snake_case")), ("num", json!(12345)),
                 ("ecole", json!("École"))];
    let fx = Fx::record(
        (texts.iter().map(|(name, v)| done(name, "op", json!({ "text": v }), json!({ "echo": v }))))
            .chain([done("missing", "tool", json!({}), ())]),
    );
    let t = || get("inputs.text");
    fx.run([
        case(t().contains("Hello"), &["hello"]),
        case(both(field("inputs.text").contains("hello"),
                  json!({"$contains": {"input": gf("inputs.text"), "substr": li("hello"), "case_insensitive": false}})),
             &["lower"]),
        case(t().contains("hello").case_insensitive(), &["hello", "lower", "upper"]),
        case(t().contains("hELLo").case_insensitive(), &["hello", "lower", "upper"]),
        // No wildcards: % and _ are plain characters.
        case(t().contains("%"), &["pct"]),
        case(t().contains("_"), &["snake"]),
        case(t().contains("e%c"), &[]),
        // A number is searched as its text.
        case(t().contains("234"), &["num"]),
        // Case folding is Unicode-aware.
        // Reference server: case_insensitive is SQLite's `LOWER()` on both sides
        // (`ContainsOperation` in `calls_query`), which folds ASCII letters only.
        case(t().contains("école").case_insensitive(), &["ecole"]).reference(&[]),
        case(t().contains("école"), &[]),
        // A missing value contains nothing, so its $not holds.
        // Reference server: `instr(NULL, ...)` is NULL, and so is its `NOT`.
        case(t().contains("hello").case_insensitive().not(), &["pct", "snake", "num", "ecole", "missing"])
            .reference(&["pct", "snake", "num", "ecole"]),
        // On the output and on a top-level column.
        case(get("output.echo").contains("World"), &["hello"]),
        case(get("op_name").contains("OO").case_insensitive(), &["missing"]),
    ]);
}

// ---------------------------------------------------------------------------------------------
// Boolean combinators

#[rustfmt::skip]
#[backends]
fn and_or_not_combined() {
    let fx = Fx::record([
        done("a", "llm", json!({"model": "gpt-4o", "temperature": 0.2}), json!({"score": 0.9})),
        done("b", "llm", json!({"model": "gpt-4o", "temperature": 0.9}), json!({"score": 0.4})),
        done("c", "llm", json!({"model": "claude", "temperature": 0.2}), json!({"score": 0.8})),
        failed("d", "llm", json!({"model": "claude", "temperature": 0.9}), "rate limited"),
    ]);
    let d_op = fx.call("d").op_name();
    let model = |m: &str| get("inputs.model").eq(m);
    let cool = || get("inputs.temperature").lt(0.5);
    let high_score = || get("output.score").gt(0.85);
    // The JSON of `model(m)` and `cool()`, for the rows that spell the whole query out.
    let (model_j, cool_j) = (|m: &str| model(m).1, || cool().1);
    fx.run([
        case(model("gpt-4o").and(cool()), &["a"]),
        case(model("claude").or(high_score()), &["a", "c", "d"]),
        case(model("gpt-4o").and(cool()).not(), &["b", "c", "d"]),
        case(model("claude").or(high_score()).and(get("summary.weave.status").eq("error").not()), &["a", "c"]),
        // Chained `and`s flatten into one $and of three.
        case(both(model("claude").0.and(cool().0).and(field("op_name").eq(d_op)),
                  json!({"$and": [model_j("claude"), cool_j(), {"$eq": [gf("op_name"), li(d_op)]}]})),
             &["c"]),
        // Chained `or`s flatten too.
        case(both(model("x").0.or(model("y").0).or(model("claude").0),
                  json!({"$or": [model_j("x"), model_j("y"), model_j("claude")]})),
             &["c", "d"]),
        // A one-element $and / $or is that element.
        case(json!({"$and": [model_j("claude")]}), &["c", "d"]),
        case(json!({"$or": [model_j("gpt-4o")]}), &["a", "b"]),
        // Double negation.
        case(model("claude").not().not(), &["c", "d"]),
        // An operation as an operand: (temperature > 0.5) == false.
        case(get("inputs.temperature").gt(0.5).eq(false), &["a", "c"]),
        // Literal booleans as operands.
        case(json!({"$and": [li(true), model_j("gpt-4o")]}), &["a", "b"]),
        case(json!({"$or": [li(false), model_j("gpt-4o")]}), &["a", "b"]),
        // Two fields compared with each other.
        case(get("inputs.model").eq(get("inputs.model")), &["a", "b", "c", "d"]),
    ]);
}

#[rustfmt::skip]
#[backends]
fn field_compared_with_field() {
    let fx = Fx::record([
        done("right", "eval", json!({"expected": "Paris"}), json!({"answer": "Paris"})),
        done("wrong", "eval", json!({"expected": "Paris"}), json!({"answer": "Lyon"})),
        done("no_answer", "eval", json!({"expected": "Paris"}), json!({})),
    ]);
    let same = || get("output.answer").eq(get("inputs.expected"));
    fx.run([
        case(same(), &["right"]),
        // Reference server: the missing answer makes the comparison NULL, and its NOT too.
        case(same().not(), &["wrong", "no_answer"]).reference(&["wrong"]),
    ]);
}

// ---------------------------------------------------------------------------------------------
// $getField paths

#[rustfmt::skip]
#[backends]
fn dotted_paths_into_inputs_output_attributes_summary() {
    let fx = Fx::record([
        // `first` stays running: it has no output and no summary.
        Rec { attribute: Some(("env", "prod")), ..running("first", "llm", json!({
            "cfg": {"a": 1, "nested": {"deep": "yes"}}, "tags": ["x", "y"],
            "msgs": [{"role": "system", "content": "Be brief"}, {"role": "user", "content": "Hi"}],
            "by_num": {"0": "zero", "10": "ten"}, "matrix": [[1, 2], [3, 4]], "we\"ird": "q", "sp ace": 1
        })) },
        Rec { attribute: Some(("env", "dev")), ..done("second", "llm", json!({
            "cfg": {"a": 2}, "tags": ["y"], "msgs": [{"role": "user", "content": "Yo"}], "by_num": {"1": "one"},
            "matrix": [[5]]
        }), 42) },
        done("usage", "llm", json!({}),
             json!({"model": "gpt-4o", "usage": {"prompt_tokens": 12, "completion_tokens": 3}})),
    ]);
    let eq = |f: &str, v: Value| get(f).eq(v);
    fx.run([
        // Nested dicts.
        case(eq("inputs.cfg.a", json!(1)), &["first"]),
        case(eq("inputs.cfg.a", json!(2)), &["second"]),
        case(eq("inputs.cfg.nested.deep", json!("yes")), &["first"]),
        // Numeric segments index lists.
        case(eq("inputs.tags.0", json!("x")), &["first"]),
        case(eq("inputs.tags.0", json!("y")), &["second"]),
        case(eq("inputs.tags.1", json!("y")), &["first"]),
        case(eq("inputs.msgs.1.content", json!("Hi")), &["first"]),
        case(eq("inputs.msgs.0.role", json!("user")), &["second"]),
        case(eq("inputs.matrix.1.0", json!(3)), &["first"]),
        case(get("inputs.matrix.0.0").gt(4), &["second"]),
        // Out of range, or a non-numeric segment on a list: missing.
        case(eq("inputs.tags.5", Value::Null), &["first", "second", "usage"]),
        case(eq("inputs.tags.x", Value::Null), &["first", "second", "usage"]),
        // A numeric segment keys a dict whose key looks like a number.
        // Reference server: a numeric segment is always a list index (`quote_json_path` in
        // orm.py writes `[0]`), so it finds nothing in a dict.
        case(eq("inputs.by_num.0", json!("zero")), &["first"]).reference(&[]),
        case(eq("inputs.by_num.10", json!("ten")), &["first"]).reference(&[]),
        case(eq("inputs.by_num.1", json!("one")), &["second"]).reference(&[]),
        // Keys with a quote or a space.
        // Reference server: `quote_json_path` puts the key in double quotes without escaping a
        // quote inside it, so the path `$."we"ird"` does not reach the key.
        case(eq("inputs.we\"ird", json!("q")), &["first"]).reference(&[]),
        case(eq("inputs.sp ace", json!(1)), &["first"]),
        // Whole lists and dicts compare with literal lists and dicts.
        // Reference server: see `Want::StructuredLiteral`.
        case(eq("inputs.tags", json!(["x", "y"])), &["first"]).reference_fails(Want::StructuredLiteral),
        case(eq("inputs.cfg", json!({"a": 2})), &["second"]).reference_fails(Want::StructuredLiteral),
        // Attributes, including the SDK's own block.
        case(eq("attributes.env", json!("prod")), &["first"]),
        case(eq("attributes.weave.source", json!("rust-sdk")), &["first", "second", "usage"]),
        // Output: a scalar output is `output` itself.
        case(eq("output", json!(42)), &["second"]),
        case(eq("output.model", json!("gpt-4o")), &["usage"]),
        // The running call has no output.
        case(eq("output", Value::Null), &["first"]),
        // Summary paths (the client-computed summary).
        case(eq("summary.usage.gpt-4o.prompt_tokens", json!(12)), &["usage"]),
        case(get("summary.usage.gpt-4o.requests").gte(1), &["usage"]),
        case(eq("summary.status_counts.success", json!(1)), &["second", "usage"]),
    ]);
}

// ---------------------------------------------------------------------------------------------
// $literal

#[rustfmt::skip]
#[backends]
fn literal_forms() {
    let fx = Fx::record([
        done("match", "op", json!({"l": [1, 2], "d": {"k": "v", "n": [1]}, "f": 0.5, "s": "hi"}), ()),
        done("other", "op", json!({"l": [2, 1], "d": {"k": "w"}, "f": 1.5, "s": "ho"}), ()),
    ]);
    let (l, d) = (|| field("inputs.l").eq(json!([1, 2])), || field("inputs.d").eq(json!({"k": "v", "n": [1]})));
    fx.run([
        // Nested $literal wrappers unwrap.
        // Reference server: see `Want::StructuredLiteral`.
        case(both(l(), json!({"$eq": [gf("inputs.l"), {"$literal": [{"$literal": 1}, 2]}]})), &["match"])
            .reference_fails(Want::StructuredLiteral),
        case(both(d(), json!({"$eq": [gf("inputs.d"), {"$literal": {"k": {"$literal": "v"}, "n": [{"$literal": 1}]}}]})),
             &["match"]).reference_fails(Want::StructuredLiteral),
        case(both(d(), json!({"$eq": [gf("inputs.d"), {"$literal": {"$literal": {"k": "v", "n": [1]}}}]})), &["match"])
            .reference_fails(Want::StructuredLiteral),
        case(get("inputs.f").eq(0.5), &["match"]),
        // Literal on the left.
        case(val("hi").eq(get("inputs.s")), &["match"]),
        // Two literals.
        case(val(1).eq(1), &["match", "other"]),
        case(val(1).eq(2), &[]),
        case(val("b").gt("a"), &["match", "other"]),
    ]);
}

// ---------------------------------------------------------------------------------------------
// $convert

#[rustfmt::skip]
#[backends]
fn convert_operators() {
    let fx = Fx::record([
        done("a", "op", json!({"x": "3.5", "i": 3.7, "n": 42, "b": "true", "z": 0, "opt": "here"}), ()),
        done("b", "op", json!({"x": "2", "i": "7", "n": "42", "b": 1, "z": "false", "opt": 0}), ()),
        done("c", "op", json!({"x": "abc"}), ()),
    ]);
    let (x, opt) = (|| get("inputs.x").as_double(), || get("inputs.opt").exists());
    fx.run([
        // double
        case(x().gt(3), &["a"]),
        case(x().gte(2), &["a", "b"]),
        case(x().eq(3.5), &["a"]),
        // int truncates.
        case(get("inputs.i").as_int().eq(3), &["a"]),
        case(get("inputs.i").as_int().eq(7), &["b"]),
        // string
        case(get("inputs.n").as_string().eq("42"), &["a", "b"]),
        case(get("inputs.n").as_string().contains("4"), &["a", "b"]),
        // bool
        // Reference server: `$convert` is a bare `CAST(... AS BOOL)` (`process_operand` in
        // `calls_query`), which reads the text "true" as 0.
        case(get("inputs.b").as_bool().eq(true), &["a", "b"]).reference(&["b"]),
        case(get("inputs.z").as_bool().eq(false), &["a", "b"]),
        // exists. Reference server: see `Want::UnknownCast`.
        case(opt().eq(true), &["a", "b"]).reference_fails(Want::UnknownCast),
        case(opt().not(), &["c"]).reference_fails(Want::UnknownCast),
        case(opt().bare(), &["a", "b"]).reference_fails(Want::UnknownCast),
        case(get("display_name").exists().bare(), &[]).reference_fails(Want::UnknownCast),
        case(val(()).exists().bare(), &[]).reference_fails(Want::UnknownCast),
        case(val(1).exists().bare(), &["a", "b", "c"]).reference_fails(Want::UnknownCast),
    ]);
}

// ---------------------------------------------------------------------------------------------
// Timestamps

#[rustfmt::skip]
#[backends]
fn timestamps_compare_with_rfc3339_strings() {
    // a at 00:00, b at 00:01, c at 00:02 (2025-01-01, UTC); c is still running.
    let fx = Fx::record([
        done("a", "op", json!({}), ()),
        done("b", "op", json!({}), ()),
        running("c", "op", json!({})),
    ]);
    let b = fx.s.client.get_call(fx.call("b").id()).unwrap();
    let (started, ended) = (|| get("started_at"), || get("ended_at"));
    fx.run([
        // Reference server: the timestamp columns hold Python's `isoformat()` text
        // ("2025-01-01T00:01:00+00:00", fractional seconds only when not zero) and the literal is
        // compared with it as text, unparsed: "...00:01:00+00:00" < "...00:01:00Z" ('+' < 'Z'),
        // offsets are not converted, no other spelling is equal, and `NOT` of a comparison with a
        // null ended_at is NULL.
        case(started().gt("2025-01-01T00:00:30Z"), &["b", "c"]),
        case(started().gte("2025-01-01T00:01:00Z"), &["b", "c"]).reference(&["c"]),
        case(started().gte("2025-01-01T00:01:00.000001Z"), &["c"]),
        case(started().gt("2025-01-01T00:01:00Z"), &["c"]),
        // Offsets are converted to UTC: 01:01+01:00 is 00:01Z.
        case(started().lt("2025-01-01T01:01:00+01:00"), &["a"]).reference(&["a", "b", "c"]),
        case(started().lte("2025-01-01T01:01:00+01:00"), &["a", "b"]).reference(&["a", "b", "c"]),
        case(started().eq("2025-01-01T00:02:00Z"), &["c"]).reference(&[]),
        case(started().eq("2025-01-01T00:02:00.000000+00:00"), &["c"]).reference(&[]),
        case(started().in_(["2025-01-01T00:00:00Z", "2025-01-01T00:02:00Z"]), &["a", "c"]).reference(&[]),
        // ended_at: now for a and b, null for c.
        case(ended().gt("2025-01-01T00:00:00Z"), &["a", "b"]),
        case(ended().gt("2025-01-01T00:00:00Z").not(), &["c"]).reference(&[]),
        // The value read back compares equal to itself.
        case(started().eq(b.started_at().to_string()), &["b"]).reference(&[]),
        // Converted to a string, a timestamp reads as RFC 3339.
        case(started().as_string().contains("2025-01-01T00:01:00"), &["b"]),
    ]);
}

// ---------------------------------------------------------------------------------------------
// Invalid queries

#[rustfmt::skip]
#[backends]
fn malformed_queries_fail_to_parse_naming_the_part() {
    let e = |v: Value| json!({ "$expr": v });
    let cases: [(Value, &[&str]); 14] = [
        (e(json!({"$regex": [gf("op_name"), li("x")]})), &["$regex", "unknown operator"]),
        (e(json!({"$and": [{"$eq": [gf("op_name"), li("x")]}, {"$eq": [gf("op_name"), li("x"), li("y")]}]})),
         &["$expr.$and[1].$eq", "exactly 2 operands, got 3"]),
        (e(json!({"$not": [li(true), li(false)]})), &["$not", "exactly 1 operand, got 2"]),
        (e(json!({"$not": li(true)})), &["$expr.$not"]),
        (e(json!({"$gt": [gf("inputs.n")]})), &["$gt", "got 1"]),
        (e(json!({"$and": []})), &["$and", "at least one"]),
        (e(json!({"$in": [gf("id"), li(json!(["a"]))]})), &["$expr.$in[1]"]),
        (e(json!({"$in": [gf("id")]})), &["$in", "2 elements"]),
        (e(json!({"$eq": [{"$convert": {"input": gf("inputs.n"), "to": "float"}}, li(1)]})), &["\"float\""]),
        (e(json!({"$contains": {"input": gf("inputs.s")}})), &["$contains", "substr"]),
        (e(json!({"$contains": {"input": gf("inputs.s"), "substr": li("a"), "case_insensitive": "yes"}})),
         &["case_insensitive"]),
        (e(json!({"$eq": [{"$getField": 3}, li(1)]})), &["$expr.$eq[0].$getField"]),
        (e(json!({"$eq": [{"$getField": ""}, li(1)]})), &["empty"]),
        (json!({"$query": {}}), &["$expr"]),
    ];
    for (i, (v, parts)) in cases.into_iter().enumerate() {
        let via_serde = serde_json::from_value::<Query>(v.clone()).expect_err("must not parse").to_string();
        let m = match Query::from_json(&v) {
            Err(WeaveError::InvalidQuery(m)) => m,
            other => panic!("case {i}: {v}: expected InvalidQuery, got {other:?}"),
        };
        assert!(via_serde.contains(&m), "case {i}: {v}: {via_serde:?} vs {m:?}");
        for p in parts {
            assert!(m.contains(p), "case {i}: {v}: the message {m:?} does not name {p:?}");
        }
    }
    // The text form parses the same way.
    match r#"{"$expr": {"$nope": []}}"#.parse::<Query>() {
        Err(WeaveError::InvalidQuery(m)) => assert!(m.contains("$nope"), "{m}"),
        other => panic!("expected InvalidQuery, got {other:?}"),
    }
}

/// Every invalid field or value fails with an InvalidQuery naming it.
///
/// Reference server: fields and values are not validated. An unknown column fails with HTTP
/// 500 (see `Want::Http500`); every other bad field or value compiles and matches nothing (a
/// bad JSON path reads null, "yesterday" and "not a date" compare as text, `true` as 1).
#[rustfmt::skip]
#[backends]
fn invalid_fields_and_values_fail_when_queried() {
    let fx = Fx::record([done("a", "op", json!({"x": 1}), ())]);
    // Reference server: it validates neither fields nor values (see the function's doc).
    fx.run([
        invalid(get("nope").eq(1), &["\"nope\"", "unknown field"]).reference_fails(Want::Http500),
        // A typo of a JSON column.
        invalid(get("input.model").eq("gpt"), &["\"input.model\""]).reference_fails(Want::Http500),
        invalid(get("inputs..x").eq(1), &["\"inputs..x\"", "empty segment"]).reference(&[]),
        invalid(get("inputs.x.").eq(1), &["\"inputs.x.\""]).reference(&[]),
        invalid(get("summary.weave.nope").eq(1), &["\"summary.weave.nope\""]).reference(&[]),
        // The old servers' key is not a computed field.
        invalid(get("summary.weave.latency").gt(1), &["\"summary.weave.latency\""]).reference(&[]),
        invalid(get("started_at").gt("yesterday"), &["\"yesterday\"", "timestamp"]).reference(&[]),
        invalid(get("ended_at").lt(true), &["timestamp"]).reference(&[]),
        invalid(get("feedback.[wandb.reaction.1].payload.emoji").eq("x"), &["feedback"]).reference(&[]),
        // An error deep inside a combination, and from a query parsed from JSON.
        invalid(json!({"$or": [{"$eq": [gf("inputs.x"), li(1)]},
                               {"$not": [{"$contains": {"input": gf("bogus_column"), "substr": li("a")}}]}]}),
                &["\"bogus_column\""]).reference_fails(Want::Http500),
        invalid(get("started_at").in_(["2025-01-01T00:00:00Z", "not a date"]), &["\"not a date\""]).reference(&[]),
    ]);
    // Errors come from compiling the query, so an empty project reports them too.
    let empty = TestStore::with_project("test-entity", "empty");
    match empty.client.get_calls(field("nope").eq(1)).next() {
        Some(Err(WeaveError::Backend { message: m, .. })) if fx.s.is_reference() => assert!(m.contains("HTTP 500"), "{m}"),
        Some(Err(WeaveError::InvalidQuery(m))) if !fx.s.is_reference() => assert!(m.contains("\"nope\"")),
        other => panic!("expected the error of the unknown field, got {other:?}"),
    }
    // A valid query still works on the same client.
    assert_eq!(fx.find(field("inputs.x").eq(1)).unwrap(), ["a"]);
}

#[rustfmt::skip]
#[backends]
fn numeric_text_in_exponent_form_converts() {
    let fx = Fx::record(each("n", &[("big", json!("1e3")), ("inf", json!("inf")), ("hex", json!("0x10"))], false));
    fx.run([
        case(get("inputs.n").as_double().gt(999), &["big"]),
        // Reference server: an integer literal converts only JSON integers and digit-only
        // text (`_sqlite_inferred_json_cast_sql`), so "1e3" is null there.
        case(get("inputs.n").eq(1000), &["big"]).reference(&[]),
    ]);
}

//! `CallsFilter` (PROTOCOL §6): every field alone, several ANDed, with a query, and the
//! 1000-value limit on lists. Where the reference server differs (`name:*` patterns,
//! `turn_ids`, the user it stamps, list limits), the test checks its own answer (`is_reference`).

use serde_json::{json, Value};
use weave::query::field;
use weave::{Call, CallOptions, CallsFilter, CallsQuery, Timestamp, WeaveError};
use weave_testkit::backends;

use crate::common::TestStore;

const NONE: [&str; 0] = [];
const OP_V1: &str = "weave:///test-entity/test-project/op/my_fn:abc123";
const OP_V2: &str = "weave:///test-entity/test-project/op/my_fn:def456";
const OP_OTHER_FN: &str = "weave:///test-entity/test-project/op/my_fn2:abc123";
const OP_OTHER_PROJECT: &str = "weave:///other-entity/test-project/op/my_fn:abc123";
// Plain names given to create_call become stub-op refs; these stand for such ops.
const OP_LLM: &str = "weave:///test-entity/test-project/op/llm:aaa111";
const OP_TOOL: &str = "weave:///test-entity/test-project/op/tool:bbb222";
const CFG_ABC: &str = "weave:///test-entity/test-project/object/cfg:abc";
const CFG_DEF: &str = "weave:///test-entity/test-project/object/cfg:def";

/// A store whose calls have short names; the i-th call starts at 2025-01-01T00:00:00Z plus
/// i minutes, so the default order is creation order.
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

    fn start(&mut self, name: &str, op: &str, inputs: Value, opts: CallOptions) -> Call {
        let t =
            Timestamp::from_nanos((1_735_689_600 + 60 * self.names.len() as i64) * 1_000_000_000);
        let call = self
            .s
            .client
            .create_call_with(op, inputs, opts.use_stack(false).started_at(t))
            .expect("create");
        self.names.push((call.id().to_string(), name.to_string()));
        call
    }

    fn done(&mut self, name: &str, op: &str, inputs: Value, output: Value) -> Call {
        let call = self.start(name, op, inputs, CallOptions::new());
        self.s.client.finish_call(&call, output).expect("finish");
        call
    }

    fn find(&self, q: impl Into<CallsQuery>) -> Vec<String> {
        self.s
            .client
            .get_calls(q)
            .map(|c| {
                let c = c.expect("query");
                self.names
                    .iter()
                    .find(|(i, _)| i == c.id())
                    .map(|(_, n)| n.clone())
                    .expect("known call")
            })
            .collect()
    }

    /// The calls a filter matches; its count from `size()` must agree.
    fn filter(&self, f: CallsFilter) -> Vec<String> {
        let found = self.find(f.clone());
        assert_eq!(
            self.s.client.get_calls(f).size().unwrap(),
            found.len() as u64,
            "size() disagrees with the calls returned"
        );
        found
    }
}

fn strings(items: &[&str]) -> Option<Vec<String>> {
    Some(items.iter().map(|s| s.to_string()).collect())
}

#[backends]
fn op_names_exact() {
    let mut fx = Fx::new();
    fx.done("llm", OP_LLM, json!({}), json!(null));
    fx.done("tool", OP_TOOL, json!({}), json!(null));
    fx.done("v1", OP_V1, json!({}), json!(null));
    fx.done("v2", OP_V2, json!({}), json!(null));

    let f = |names: &[&str]| CallsFilter {
        op_names: strings(names),
        ..Default::default()
    };
    assert_eq!(fx.filter(f(&[OP_LLM])), ["llm"]);
    assert_eq!(fx.filter(f(&[OP_LLM, OP_TOOL])), ["llm", "tool"]);
    assert_eq!(fx.filter(f(&[OP_V1])), ["v1"]);
    assert_eq!(fx.filter(f(&[OP_V2, OP_LLM])), ["llm", "v2"]);
    // Exact matching: no prefix, no case folding, a bare name is not a ref.
    assert_eq!(fx.filter(f(&["llm"])), NONE);
    assert_eq!(fx.filter(f(&[&OP_LLM[..OP_LLM.len() - 1]])), NONE);
    assert_eq!(fx.filter(f(&[&OP_LLM.to_uppercase()])), NONE);
    assert_eq!(
        fx.filter(f(&["weave:///test-entity/test-project/op/my_fn"])),
        NONE
    );
    assert_eq!(fx.filter(f(&["my_fn"])), NONE);
}

#[backends]
fn op_names_any_version() {
    let mut fx = Fx::new();
    fx.done("v1", OP_V1, json!({}), json!(null));
    fx.done("v2", OP_V2, json!({}), json!(null));
    fx.done("other_fn", OP_OTHER_FN, json!({}), json!(null));
    fx.done("other_project", OP_OTHER_PROJECT, json!({}), json!(null));
    fx.done("llm", OP_LLM, json!({}), json!(null));

    let f = |names: &[&str]| CallsFilter {
        op_names: strings(names),
        ..Default::default()
    };
    // Reference server: `SqliteTraceServer.calls_query` turns `name:*` into `op_name LIKE
    // 'name%'` (it cuts the whole `:*`), so `my_fn:*` also matches the op `my_fn2`, and a `%`
    // in the name is a pattern character.
    let remote = fx.s.is_reference();
    let my_fn: &[&str] = if remote {
        &["v1", "v2", "other_fn"]
    } else {
        &["v1", "v2"]
    };
    // `name:*` matches every version of that op of that project, and nothing else.
    assert_eq!(
        fx.filter(f(&["weave:///test-entity/test-project/op/my_fn:*"])),
        my_fn
    );
    assert_eq!(
        fx.filter(f(&["weave:///test-entity/test-project/op/my_fn2:*"])),
        ["other_fn"]
    );
    assert_eq!(
        fx.filter(f(&["weave:///other-entity/test-project/op/my_fn:*"])),
        ["other_project"]
    );
    assert_eq!(
        fx.filter(f(&["weave:///test-entity/test-project/op/nope:*"])),
        NONE
    );
    // Wildcard and exact names mix.
    assert_eq!(
        fx.filter(f(&["weave:///test-entity/test-project/op/my_fn:*", OP_LLM])),
        [my_fn, &["llm"]].concat()
    );
    assert_eq!(
        fx.filter(f(&["weave:///test-entity/test-project/op/my_fn2:*", OP_V2])),
        ["v2", "other_fn"]
    );
    // `*` and `%` are not pattern characters anywhere else.
    assert_eq!(
        fx.filter(f(&["weave:///test-entity/test-project/op/my_%:*"])),
        if remote { my_fn } else { &NONE }
    );
    assert_eq!(
        fx.filter(f(&["weave:///test-entity/test-project/op/*"])),
        NONE
    );
}

#[backends]
fn input_refs_and_output_refs() {
    let mut fx = Fx::new();
    fx.done("top", "op", json!({ "cfg": CFG_ABC }), json!(null));
    fx.done(
        "nested",
        "op",
        json!({"a": {"b": ["x", {"c": CFG_ABC}]}}),
        json!(null),
    );
    fx.done("def", "op", json!({ "cfg": CFG_DEF }), json!(null));
    fx.done("out", "op", json!({}), json!({"result": [1, CFG_ABC]}));
    fx.done("scalar_out", "op", json!({}), json!(CFG_DEF));
    // Text that merely mentions a ref is not a ref.
    fx.done(
        "text",
        "op",
        json!({"note": format!("see {CFG_ABC}")}),
        json!(null),
    );
    // A ref in the attributes is not an input ref.
    let attr = fx.start(
        "attr_only",
        "op",
        json!({}),
        CallOptions::new().attribute("cfg", CFG_ABC),
    );
    fx.s.client.finish_call(&attr, json!(null)).unwrap();

    let inputs = |refs: &[&str]| CallsFilter {
        input_refs: strings(refs),
        ..Default::default()
    };
    let outputs = |refs: &[&str]| CallsFilter {
        output_refs: strings(refs),
        ..Default::default()
    };
    assert_eq!(fx.filter(inputs(&[CFG_ABC])), ["top", "nested"]);
    assert_eq!(fx.filter(inputs(&[CFG_DEF])), ["def"]);
    assert_eq!(
        fx.filter(inputs(&[CFG_ABC, CFG_DEF])),
        ["top", "nested", "def"]
    );
    assert_eq!(fx.filter(outputs(&[CFG_ABC])), ["out"]);
    assert_eq!(fx.filter(outputs(&[CFG_DEF])), ["scalar_out"]);
    assert_eq!(
        fx.filter(outputs(&[CFG_ABC, CFG_DEF])),
        ["out", "scalar_out"]
    );
    // Refs are matched whole.
    assert_eq!(
        fx.filter(inputs(&["weave:///test-entity/test-project/object/cfg"])),
        NONE
    );
    assert_eq!(
        fx.filter(inputs(&["weave:///test-entity/test-project/object/cfg:ab"])),
        NONE
    );
    // Both: ANDed.
    assert_eq!(
        fx.filter(CallsFilter {
            input_refs: strings(&[CFG_ABC]),
            output_refs: strings(&[CFG_ABC]),
            ..Default::default()
        }),
        NONE
    );
}

#[backends]
fn input_and_output_refs_of_one_call() {
    let mut fx = Fx::new();
    fx.done(
        "both",
        "op",
        json!({ "cfg": CFG_ABC }),
        json!({ "made": CFG_DEF }),
    );
    fx.done("in_only", "op", json!({ "cfg": CFG_ABC }), json!(null));
    assert_eq!(
        fx.filter(CallsFilter {
            input_refs: strings(&[CFG_ABC]),
            output_refs: strings(&[CFG_DEF]),
            ..Default::default()
        }),
        ["both"]
    );
    // A running call has no output refs yet.
    let running = fx.start(
        "running",
        "op",
        json!({ "cfg": CFG_ABC }),
        CallOptions::new(),
    );
    assert_eq!(
        fx.filter(CallsFilter {
            input_refs: strings(&[CFG_ABC]),
            ..Default::default()
        }),
        ["both", "in_only", "running"]
    );
    fx.s.client.finish_call(&running, json!([CFG_DEF])).unwrap();
    assert_eq!(
        fx.filter(CallsFilter {
            output_refs: strings(&[CFG_DEF]),
            ..Default::default()
        }),
        ["both", "running"]
    );
}

/// root1 → (c1a → g1, c1b); root2 → c2.
fn tree(fx: &mut Fx) -> [Call; 6] {
    let root1 = fx.start("root1", "agent", json!({}), CallOptions::new());
    let c1a = fx.start("c1a", "llm", json!({}), CallOptions::new().parent(&root1));
    let g1 = fx.start("g1", "tool", json!({}), CallOptions::new().parent(&c1a));
    let c1b = fx.start("c1b", "llm", json!({}), CallOptions::new().parent(&root1));
    let root2 = fx.start("root2", "agent", json!({}), CallOptions::new());
    let c2 = fx.start("c2", "llm", json!({}), CallOptions::new().parent(&root2));
    for c in [&g1, &c1a, &c1b, &root1, &c2, &root2] {
        fx.s.client.finish_call(c, json!(null)).unwrap();
    }
    [root1, c1a, g1, c1b, root2, c2]
}

#[backends]
fn parent_ids_trace_ids_call_ids() {
    let mut fx = Fx::new();
    let [root1, c1a, g1, c1b, root2, c2] = tree(&mut fx);

    let parents = |ids: &[&str]| CallsFilter {
        parent_ids: strings(ids),
        ..Default::default()
    };
    assert_eq!(fx.filter(parents(&[root1.id()])), ["c1a", "c1b"]);
    assert_eq!(fx.filter(parents(&[c1a.id()])), ["g1"]);
    assert_eq!(
        fx.filter(parents(&[root1.id(), root2.id()])),
        ["c1a", "c1b", "c2"]
    );
    assert_eq!(fx.filter(parents(&[g1.id()])), NONE);

    let traces = |ids: &[&str]| CallsFilter {
        trace_ids: strings(ids),
        ..Default::default()
    };
    assert_eq!(root1.trace_id(), g1.trace_id());
    assert_eq!(
        fx.filter(traces(&[root1.trace_id()])),
        ["root1", "c1a", "g1", "c1b"]
    );
    assert_eq!(fx.filter(traces(&[c2.trace_id()])), ["root2", "c2"]);
    assert_eq!(
        fx.filter(traces(&[root1.trace_id(), root2.trace_id()]))
            .len(),
        6
    );
    // A call id is not a trace id.
    assert_eq!(fx.filter(traces(&[root1.id()])), NONE);

    let calls = |ids: &[&str]| CallsFilter {
        call_ids: strings(ids),
        ..Default::default()
    };
    assert_eq!(fx.filter(calls(&[c1b.id()])), ["c1b"]);
    // Returned in the default order, whatever the order of the list; unknown ids are ignored.
    assert_eq!(
        fx.filter(calls(&[c2.id(), root1.id(), &weave::generate_id()])),
        ["root1", "c2"]
    );
    assert_eq!(fx.filter(calls(&[&weave::generate_id()])), NONE);
    // Duplicates return the call once.
    assert_eq!(fx.filter(calls(&[c1b.id(), c1b.id()])), ["c1b"]);
}

#[backends]
fn trace_roots_only() {
    let mut fx = Fx::new();
    tree(&mut fx);
    let roots = |v: Option<bool>| CallsFilter {
        trace_roots_only: v,
        ..Default::default()
    };
    assert_eq!(fx.filter(roots(Some(true))), ["root1", "root2"]);
    // false (or unset) does not filter.
    assert_eq!(fx.filter(roots(Some(false))).len(), 6);
    assert_eq!(fx.filter(roots(None)).len(), 6);
}

#[backends]
fn thread_ids_and_turn_ids() {
    let mut fx = Fx::new();
    let a = fx.start("a", "chat", json!({}), CallOptions::new().thread_id("t1"));
    // A child inherits the thread and the turn.
    let a1 = fx.start("a1", "llm", json!({}), CallOptions::new().parent(&a));
    let b = fx.start("b", "chat", json!({}), CallOptions::new().thread_id("t1"));
    let c = fx.start("c", "chat", json!({}), CallOptions::new().thread_id("t2"));
    let d = fx.start("d", "chat", json!({}), CallOptions::new());
    for call in [&a1, &a, &b, &c, &d] {
        fx.s.client.finish_call(call, json!(null)).unwrap();
    }
    assert_eq!(a1.thread_id(), Some("t1"));
    assert_eq!(a.turn_id(), Some(a.id()));
    assert_eq!(a1.turn_id(), Some(a.id()));
    assert_eq!(b.turn_id(), Some(b.id()));
    assert_eq!(d.thread_id(), None);

    let threads = |ids: &[&str]| CallsFilter {
        thread_ids: strings(ids),
        ..Default::default()
    };
    assert_eq!(fx.filter(threads(&["t1"])), ["a", "a1", "b"]);
    assert_eq!(fx.filter(threads(&["t2"])), ["c"]);
    assert_eq!(fx.filter(threads(&["t1", "t2"])), ["a", "a1", "b", "c"]);
    assert_eq!(fx.filter(threads(&["t3"])), NONE);

    let turns = |ids: &[&str]| CallsFilter {
        turn_ids: strings(ids),
        ..Default::default()
    };
    if fx.s.is_reference() {
        // Reference server: `SqliteTraceServer.calls_query` (and `calls_query_stats`) has no
        // `turn_ids` condition; the field is accepted and ignored, so every call matches.
        for ids in [&[a.id()][..], &[b.id()], &[a.id(), c.id()], &[d.id()]] {
            assert_eq!(fx.filter(turns(ids)), ["a", "a1", "b", "c", "d"]);
        }
    } else {
        assert_eq!(fx.filter(turns(&[a.id()])), ["a", "a1"]);
        assert_eq!(fx.filter(turns(&[b.id()])), ["b"]);
        assert_eq!(fx.filter(turns(&[a.id(), c.id()])), ["a", "a1", "c"]);
        // A call outside a thread has no turn.
        assert_eq!(fx.filter(turns(&[d.id()])), NONE);
    }
    // The values read back match.
    let back = fx.s.client.get_call(a1.id()).unwrap();
    assert_eq!(back.thread_id(), Some("t1"));
    assert_eq!(back.turn_id(), Some(a.id()));
}

#[backends]
fn wb_user_ids_and_wb_run_ids_are_null_for_client_calls() {
    let mut fx = Fx::new();
    let a = fx.done("a", "op", json!({}), json!(null));
    fx.done("b", "op", json!({}), json!(null));
    let back = fx.s.client.get_call(a.id()).unwrap();
    // Reference server: it stamps its one user, `ref-user-id`, on every write, as W&B's
    // server stamps the authenticated user (ref_server.py); `wb_run_id` stays null.
    let remote = fx.s.is_reference();
    assert_eq!(back.wb_user_id(), remote.then_some("ref-user-id"));
    assert_eq!(back.wb_run_id(), None);
    for f in [
        CallsFilter {
            wb_user_ids: strings(&["some-user"]),
            ..Default::default()
        },
        CallsFilter {
            wb_run_ids: strings(&["test-entity/test-project/run-1"]),
            ..Default::default()
        },
        CallsFilter {
            wb_user_ids: strings(&[""]),
            ..Default::default()
        },
    ] {
        assert_eq!(fx.filter(f), NONE);
    }
    if remote {
        assert_eq!(
            fx.filter(CallsFilter {
                wb_user_ids: strings(&["ref-user-id"]),
                ..Default::default()
            }),
            ["a", "b"]
        );
        assert_eq!(fx.find(field("wb_user_id").is_null()), NONE);
        assert_eq!(fx.find(field("wb_run_id").is_null()), ["a", "b"]);
    } else {
        // The same through the query: the columns are null.
        assert_eq!(
            fx.find(
                field("wb_user_id")
                    .is_null()
                    .and(field("wb_run_id").is_null())
            ),
            ["a", "b"]
        );
    }
}

#[backends]
fn several_fields_are_anded() {
    let mut fx = Fx::new();
    let root = fx.start(
        "root",
        OP_V1,
        json!({ "cfg": CFG_ABC }),
        CallOptions::new().thread_id("t1"),
    );
    let child = fx.start(
        "child",
        OP_V2,
        json!({ "cfg": CFG_ABC }),
        CallOptions::new().parent(&root),
    );
    let other = fx.start(
        "other",
        OP_V2,
        json!({ "cfg": CFG_DEF }),
        CallOptions::new().thread_id("t1"),
    );
    let lone = fx.start("lone", OP_V1, json!({ "cfg": CFG_ABC }), CallOptions::new());
    for c in [&child, &root, &other, &lone] {
        fx.s.client.finish_call(c, json!(null)).unwrap();
    }

    let any_version = strings(&["weave:///test-entity/test-project/op/my_fn:*"]);
    assert_eq!(
        fx.filter(CallsFilter {
            op_names: any_version.clone(),
            thread_ids: strings(&["t1"]),
            ..Default::default()
        }),
        ["root", "child", "other"]
    );
    assert_eq!(
        fx.filter(CallsFilter {
            op_names: any_version.clone(),
            thread_ids: strings(&["t1"]),
            trace_roots_only: Some(true),
            ..Default::default()
        }),
        ["root", "other"]
    );
    assert_eq!(
        fx.filter(CallsFilter {
            op_names: any_version.clone(),
            thread_ids: strings(&["t1"]),
            trace_roots_only: Some(true),
            input_refs: strings(&[CFG_ABC]),
            ..Default::default()
        }),
        ["root"]
    );
    assert_eq!(
        fx.filter(CallsFilter {
            op_names: strings(&[OP_V2]),
            trace_ids: strings(&[root.trace_id()]),
            parent_ids: strings(&[root.id()]),
            call_ids: strings(&[child.id(), other.id()]),
            ..Default::default()
        }),
        ["child"]
    );
    // Contradictory conditions: nothing.
    assert_eq!(
        fx.filter(CallsFilter {
            call_ids: strings(&[lone.id()]),
            thread_ids: strings(&["t1"]),
            ..Default::default()
        }),
        NONE
    );
    // A filter and a query are ANDed too.
    let q = CallsQuery::new()
        .filter(CallsFilter {
            op_names: any_version,
            ..Default::default()
        })
        .query(field("thread_id").is_null());
    assert_eq!(fx.find(q.clone()), ["lone"]);
    assert_eq!(fx.s.client.get_calls(q).size().unwrap(), 1);
}

#[backends]
fn filter_from_protocol_json() {
    let mut fx = Fx::new();
    let root = fx.start("root", OP_V1, json!({}), CallOptions::new());
    let child = fx.start("child", OP_LLM, json!({}), CallOptions::new().parent(&root));
    for c in [&child, &root] {
        fx.s.client.finish_call(c, json!(null)).unwrap();
    }
    let f: CallsFilter = serde_json::from_value(json!({
        "op_names": ["weave:///test-entity/test-project/op/my_fn:*", OP_LLM],
        "trace_ids": [root.trace_id()],
        "trace_roots_only": false,
        "wb_user_ids": null
    }))
    .unwrap();
    assert_eq!(fx.filter(f), ["root", "child"]);
    let f: CallsFilter = serde_json::from_value(json!({"parent_ids": [root.id()]})).unwrap();
    assert_eq!(fx.filter(f), ["child"]);
}

#[backends]
fn a_list_of_more_than_1000_values_is_an_invalid_query() {
    let mut fx = Fx::new();
    let a = fx.done("a", "op", json!({}), json!(null));
    let many: Vec<String> = (0..1001).map(|_| weave::generate_id()).collect();
    let set = |name: &str, items: Vec<String>| {
        let mut f = CallsFilter::default();
        match name {
            "op_names" => f.op_names = Some(items),
            "input_refs" => f.input_refs = Some(items),
            "output_refs" => f.output_refs = Some(items),
            "parent_ids" => f.parent_ids = Some(items),
            "trace_ids" => f.trace_ids = Some(items),
            "call_ids" => f.call_ids = Some(items),
            "thread_ids" => f.thread_ids = Some(items),
            "turn_ids" => f.turn_ids = Some(items),
            "wb_user_ids" => f.wb_user_ids = Some(items),
            "wb_run_ids" => f.wb_run_ids = Some(items),
            _ => unreachable!(),
        }
        f
    };
    for name in [
        "op_names",
        "input_refs",
        "output_refs",
        "parent_ids",
        "trace_ids",
        "call_ids",
        "thread_ids",
        "turn_ids",
        "wb_user_ids",
        "wb_run_ids",
    ] {
        let f = set(name, many.clone());
        if fx.s.is_reference() && matches!(name, "turn_ids" | "wb_user_ids" | "wb_run_ids") {
            // Reference server: `SqliteTraceServer.calls_query` checks the length of every
            // list but these (`assert_parameter_length_less_than_max`): `turn_ids` is ignored
            // (the one call matches), the user and run lists match no call.
            let want: &[&str] = if name == "turn_ids" { &["a"] } else { &[] };
            assert_eq!(fx.filter(f), want, "{name}");
            continue;
        }
        let mut it = fx.s.client.get_calls(f.clone());
        match it.next() {
            Some(Err(WeaveError::InvalidQuery(m))) => {
                assert!(m.contains(name) && m.contains("1001"), "{name}: {m}")
            }
            other => panic!("{name}: expected InvalidQuery, got {other:?}"),
        }
        assert!(it.next().is_none());
        match fx.s.client.get_calls(f).size() {
            Err(WeaveError::InvalidQuery(m)) => assert!(m.contains(name), "{m}"),
            other => panic!("{name}: expected InvalidQuery from size(), got {other:?}"),
        }
        // 1000 values are fine.
        let mut ok = many[..1000].to_vec();
        if name == "call_ids" {
            ok[999] = a.id().to_string();
        }
        if fx.s.is_reference() && matches!(name, "input_refs" | "output_refs") {
            // Reference server: `_build_sqlite_ref_filter_condition` ORs one `EXISTS (SELECT
            // 1 FROM json_each(..) ..)` per ref; 1000 of them exceed SQLite's expression depth
            // ("Expression tree is too large (maximum depth 1000)"): HTTP 500.
            match fx.s.client.get_calls(set(name, ok)).next() {
                Some(Err(WeaveError::Backend { message: m, .. })) => assert_eq!(
                    m, "/calls/stream_query: HTTP 500: Internal server error",
                    "{name} with 1000 values"
                ),
                other => panic!("{name} with 1000 values: expected HTTP 500, got {other:?}"),
            }
            continue;
        }
        let found = fx.filter(set(name, ok));
        let want: &[&str] = if name == "call_ids" { &["a"] } else { &[] };
        assert_eq!(found, want, "{name} with 1000 values");
    }
}

#[backends]
fn empty_lists_mean_not_set_as_on_the_weave_server() {
    let s = TestStore::new();
    let a = crate::common::record(&s.client, "a", json!({}), json!(1));
    let b = crate::common::record(&s.client, "b", json!({}), json!(2));
    let empty = Some(Vec::new());
    let filter = CallsFilter {
        op_names: empty.clone(),
        call_ids: empty.clone(),
        trace_ids: empty.clone(),
        input_refs: empty.clone(),
        output_refs: empty,
        ..Default::default()
    };
    assert_eq!(
        crate::common::ids(&s.client, filter.clone()),
        [a.id(), b.id()]
    );
    assert_eq!(s.client.get_calls(filter).size().unwrap(), 2);
}

//! Ordering (`sort_by`, the default order and the `id` tiebreak), `limit`/`offset`, paging
//! through `CallsIter`, and `CallsIter::size()` (PROTOCOL §6). The reference server places
//! nulls SQLite's way and does not validate sort keys or fields (see the `is_reference` branches).

use std::collections::HashSet;

use serde_json::{json, Value};
use weave::query::field;
use weave::{
    Call, CallOptions, CallsFilter, CallsQuery, SortBy, Timestamp, WeaveClient, WeaveError,
};
use weave_testkit::backends;

use crate::common::{ids, TestStore};

/// 2025-01-01T00:00:00Z in nanoseconds.
const T0_NS: i64 = 1_735_689_600 * 1_000_000_000;

fn at_ms(ms: i64) -> Timestamp {
    Timestamp::from_nanos(T0_NS + ms * 1_000_000)
}

/// Starts a call of `op` at `t` (not finished).
fn start(client: &WeaveClient, op: &str, inputs: Value, t: Timestamp) -> Call {
    client
        .create_call_with(
            op,
            inputs,
            CallOptions::new().use_stack(false).started_at(t),
        )
        .expect("create")
}

/// Records a finished call of `op` started at `t`.
fn rec(client: &WeaveClient, op: &str, inputs: Value, t: Timestamp) -> Call {
    let c = start(client, op, inputs, t);
    client.finish_call(&c, json!(null)).expect("finish");
    c
}

/// The ids of `calls` sorted by `key` then by id in the given direction.
fn sorted_ids<K: Ord>(calls: &[Call], key: impl Fn(&Call) -> K, id_desc: bool) -> Vec<String> {
    let mut v: Vec<&Call> = calls.iter().collect();
    v.sort_by(|a, b| {
        key(a).cmp(&key(b)).then_with(|| {
            if id_desc {
                b.id().cmp(a.id())
            } else {
                a.id().cmp(b.id())
            }
        })
    });
    v.into_iter().map(|c| c.id().to_string()).collect()
}

fn id_list(calls: &[&Call]) -> Vec<String> {
    calls.iter().map(|c| c.id().to_string()).collect()
}

#[backends]
fn default_order_is_started_at_asc_then_id_asc() {
    let s = TestStore::new();
    // Created out of order, with ties.
    let calls: Vec<Call> = [3, 1, 2, 1, 1, 0, 2]
        .into_iter()
        .enumerate()
        .map(|(i, sec)| rec(&s.client, "op", json!({ "i": i }), at_ms(sec * 1000)))
        .collect();
    let want = sorted_ids(&calls, |c| c.started_at(), false);
    assert_eq!(ids(&s.client, CallsQuery::new()), want);
    // The same as asking for it explicitly.
    assert_eq!(
        ids(
            &s.client,
            CallsQuery::new().sort_by(SortBy::asc("started_at"))
        ),
        want
    );
    // The first is the one started at 0 s, the last at 3 s.
    assert_eq!(want[0], calls[5].id());
    assert_eq!(want[6], calls[0].id());
}

#[backends]
fn identical_start_times_tie_break_on_id() {
    let s = TestStore::new();
    let t = at_ms(0);
    let calls: Vec<Call> = (0..8)
        .map(|i| rec(&s.client, "op", json!({ "i": i }), t))
        .collect();
    let mut asc: Vec<String> = calls.iter().map(|c| c.id().to_string()).collect();
    asc.sort();
    let desc: Vec<String> = asc.iter().rev().cloned().collect();
    assert_eq!(ids(&s.client, CallsQuery::new()), asc);
    assert_eq!(
        ids(
            &s.client,
            CallsQuery::new().sort_by(SortBy::asc("started_at"))
        ),
        asc
    );
    // When started_at is the last key, id follows its direction.
    assert_eq!(
        ids(
            &s.client,
            CallsQuery::new().sort_by(SortBy::desc("started_at"))
        ),
        desc
    );
    // On any other last key, id breaks ties descending.
    assert_eq!(
        ids(&s.client, CallsQuery::new().sort_by(SortBy::asc("op_name"))),
        desc
    );
    assert_eq!(
        ids(
            &s.client,
            CallsQuery::new().sort_by(SortBy::desc("op_name"))
        ),
        desc
    );
    // An explicit id key is used as given.
    assert_eq!(
        ids(
            &s.client,
            CallsQuery::new()
                .sort_by(SortBy::asc("op_name"))
                .sort_by(SortBy::asc("id"))
        ),
        asc
    );
    assert_eq!(
        ids(&s.client, CallsQuery::new().sort_by(SortBy::desc("id"))),
        desc
    );
}

/// Stores a finished call with a chosen id through the server (the client's ids are
/// generated in increasing order, so they cannot show that ties are not in insertion order).
fn stored_with_id(s: &TestStore, id: &str, t: Timestamp) {
    let start: weave::schema::CallStartReq = serde_json::from_value(json!({"start": {
        "project_id": "test-entity/test-project", "id": id, "trace_id": weave::generate_id(),
        "op_name": "op", "started_at": t, "inputs": {}, "attributes": {}
    }}))
    .unwrap();
    s.server.call_start(start).unwrap();
    let end: weave::schema::CallEndReq = serde_json::from_value(json!({"end": {
        "project_id": "test-entity/test-project", "id": id, "ended_at": t,
        "output": null, "summary": {}
    }}))
    .unwrap();
    s.server.call_end(end).unwrap();
}

#[backends]
fn id_tiebreak_does_not_follow_insertion_order() {
    let s = TestStore::new();
    let id = |n: u8| format!("0194f000-0000-7000-8000-0000000000{n:02x}");
    for n in [3, 1, 4, 0, 2] {
        stored_with_id(&s, &id(n), at_ms(0));
    }
    let asc: Vec<String> = (0..5).map(id).collect();
    let desc: Vec<String> = asc.iter().rev().cloned().collect();
    assert_eq!(ids(&s.client, CallsQuery::new()), asc);
    assert_eq!(
        ids(
            &s.client,
            CallsQuery::new().sort_by(SortBy::desc("started_at"))
        ),
        desc
    );
    assert_eq!(
        ids(&s.client, CallsQuery::new().sort_by(SortBy::asc("op_name"))),
        desc
    );
    // Through pages of two.
    let paged: Vec<String> = s
        .client
        .get_calls(CallsQuery::new())
        .page_size(2)
        .map(|c| c.unwrap().id().to_string())
        .collect();
    assert_eq!(paged, asc);
}

#[backends]
fn started_at_as_last_of_several_keys_sets_the_tiebreak() {
    let s = TestStore::new();
    let t = at_ms(0);
    let a: Vec<Call> = (0..3).map(|_| rec(&s.client, "a", json!({}), t)).collect();
    let b: Vec<Call> = (0..3).map(|_| rec(&s.client, "b", json!({}), t)).collect();
    let asc = |v: &[Call]| {
        let mut ids: Vec<String> = v.iter().map(|c| c.id().to_string()).collect();
        ids.sort();
        ids
    };
    let desc = |v: &[Call]| asc(v).into_iter().rev().collect::<Vec<_>>();

    let got = ids(
        &s.client,
        CallsQuery::new()
            .sort_by(SortBy::asc("op_name"))
            .sort_by(SortBy::desc("started_at")),
    );
    assert_eq!(got, [desc(&a), desc(&b)].concat());
    let got = ids(
        &s.client,
        CallsQuery::new()
            .sort_by(SortBy::desc("op_name"))
            .sort_by(SortBy::asc("started_at")),
    );
    assert_eq!(got, [asc(&b), asc(&a)].concat());
}

#[backends]
fn sort_by_top_level_columns() {
    let s = TestStore::new();
    let c = rec(&s.client, "charlie", json!({}), at_ms(0));
    let a = rec(&s.client, "alpha", json!({}), at_ms(1));
    let b = rec(&s.client, "bravo", json!({}), at_ms(2));
    let named = s
        .client
        .create_call_with(
            "zulu",
            json!({}),
            CallOptions::new()
                .use_stack(false)
                .started_at(at_ms(3))
                .display_name("Middle"),
        )
        .unwrap();
    s.client.finish_call(&named, json!(null)).unwrap();

    assert_eq!(
        ids(&s.client, CallsQuery::new().sort_by(SortBy::asc("op_name"))),
        id_list(&[&a, &b, &c, &named])
    );
    assert_eq!(
        ids(
            &s.client,
            CallsQuery::new().sort_by(SortBy::desc("op_name"))
        ),
        id_list(&[&named, &c, &b, &a])
    );
    let by_display = |dir: SortBy| ids(&s.client, CallsQuery::new().sort_by(dir));
    if s.is_reference() {
        // Reference server: `SqliteTraceServer.calls_query` orders by `display_name ASC, id
        // DESC` with SQLite's default null placement (NULLs sort first ascending, last
        // descending), not nulls last in both directions.
        assert_eq!(
            by_display(SortBy::asc("display_name")),
            id_list(&[&b, &a, &c, &named])
        );
        assert_eq!(
            by_display(SortBy::desc("display_name")),
            id_list(&[&named, &b, &a, &c])
        );
    } else {
        // Nulls last in both directions.
        assert_eq!(by_display(SortBy::asc("display_name"))[0], named.id());
        assert_eq!(by_display(SortBy::desc("display_name"))[0], named.id());
    }
    // Newest first.
    assert_eq!(
        ids(
            &s.client,
            CallsQuery::new().sort_by(SortBy::desc("started_at"))
        ),
        id_list(&[&named, &b, &a, &c])
    );
}

#[backends]
fn sort_by_json_paths() {
    let s = TestStore::new();
    let n10 = rec(&s.client, "op", json!({"n": 10, "s": "b"}), at_ms(0));
    let n9 = rec(&s.client, "op", json!({"n": 9, "s": "c"}), at_ms(1));
    let n100 = rec(&s.client, "op", json!({"n": 100, "s": "a"}), at_ms(2));
    let missing = rec(&s.client, "op", json!({}), at_ms(3));
    let n2_5 = rec(&s.client, "op", json!({"n": 2.5, "s": "d"}), at_ms(4));

    let by = |k: SortBy| ids(&s.client, CallsQuery::new().sort_by(k));
    if s.is_reference() {
        // Reference server: `SqliteTraceServer.calls_query` sorts by `json_extract(inputs,
        // '$.n') ASC` with SQLite's null placement: a missing value (NULL) comes first
        // ascending (and last descending, as below); numbers still compare numerically.
        assert_eq!(
            by(SortBy::asc("inputs.n")),
            id_list(&[&missing, &n2_5, &n9, &n10, &n100])
        );
        assert_eq!(
            by(SortBy::asc("inputs.s")),
            id_list(&[&missing, &n100, &n10, &n9, &n2_5])
        );
    } else {
        // Numbers sort numerically (not as text), missing values last in both directions.
        assert_eq!(
            by(SortBy::asc("inputs.n")),
            id_list(&[&n2_5, &n9, &n10, &n100, &missing])
        );
        assert_eq!(
            by(SortBy::asc("inputs.s")),
            id_list(&[&n100, &n10, &n9, &n2_5, &missing])
        );
    }
    assert_eq!(
        by(SortBy::desc("inputs.n")),
        id_list(&[&n100, &n10, &n9, &n2_5, &missing])
    );
    assert_eq!(
        by(SortBy::desc("inputs.s")),
        id_list(&[&n2_5, &n9, &n10, &n100, &missing])
    );
    // From the protocol JSON form of sort_by.
    let keys: Vec<SortBy> =
        serde_json::from_value(json!([{"field": "inputs.n", "direction": "desc"}])).unwrap();
    let mut q = CallsQuery::new();
    q.sort_by = Some(keys);
    assert_eq!(ids(&s.client, q), by(SortBy::desc("inputs.n")));
}

#[backends]
fn sort_by_nested_paths_and_list_indexes() {
    let s = TestStore::new();
    let x = rec(
        &s.client,
        "op",
        json!({"msgs": [{"len": 3}, {"len": 1}]}),
        at_ms(0),
    );
    let y = rec(
        &s.client,
        "op",
        json!({"msgs": [{"len": 1}, {"len": 5}]}),
        at_ms(1),
    );
    let z = rec(&s.client, "op", json!({"msgs": [{"len": 2}]}), at_ms(2));
    let by = |k: SortBy| ids(&s.client, CallsQuery::new().sort_by(k));
    assert_eq!(by(SortBy::asc("inputs.msgs.0.len")), id_list(&[&y, &z, &x]));
    assert_eq!(
        by(SortBy::desc("inputs.msgs.1.len")),
        id_list(&[&y, &x, &z])
    );
}

#[backends]
fn sort_by_computed_fields() {
    let s = TestStore::new();
    let now = Timestamp::now().as_nanos();
    let ago = |ms: i64| Timestamp::from_nanos(now - ms * 1_000_000);
    let l10 = start(&s.client, "op", json!({}), ago(10_000));
    let l30 = start(&s.client, "op", json!({}), ago(30_000));
    let l20 = start(&s.client, "op", json!({}), ago(20_000));
    let running = start(&s.client, "op", json!({}), ago(40_000));
    for c in [&l10, &l30, &l20] {
        s.client.finish_call(c, json!(null)).unwrap();
    }
    let by = |k: SortBy| ids(&s.client, CallsQuery::new().sort_by(k));
    assert_eq!(
        by(SortBy::desc("summary.weave.latency_ms")),
        id_list(&[&l30, &l20, &l10, &running])
    );
    let asc = by(SortBy::asc("summary.weave.latency_ms"));
    if s.is_reference() {
        // Reference server: `SqliteTraceServer.calls_query` sorts latency by `CASE WHEN
        // ended_at IS NOT NULL THEN <ms> ELSE 0 END`: a running call counts as 0 ms, so it
        // comes first ascending instead of last.
        assert_eq!(asc, id_list(&[&running, &l10, &l20, &l30]));
    } else {
        assert_eq!(asc, id_list(&[&l10, &l20, &l30, &running]));
    }
}

#[backends]
fn sort_by_status_and_trace_name() {
    let s = TestStore::new();
    let ok = rec(&s.client, "c_op", json!({}), at_ms(0));
    let failed = start(&s.client, "b_op", json!({}), at_ms(1));
    s.client.fail_call(&failed, "boom".to_string()).unwrap();
    let running = start(
        &s.client,
        "weave:///test-entity/test-project/op/d_fn:abc",
        json!({}),
        at_ms(2),
    );
    let parent = s
        .client
        .create_call_with(
            "z_op",
            json!({}),
            CallOptions::new()
                .use_stack(false)
                .started_at(at_ms(3))
                .display_name("a_display"),
        )
        .unwrap();
    let child = s
        .client
        .create_call_with(
            "e_op",
            json!({}),
            CallOptions::new()
                .use_stack(false)
                .started_at(at_ms(4))
                .parent(&parent),
        )
        .unwrap();
    s.client
        .fail_call(&child, "child boom".to_string())
        .unwrap();
    s.client.finish_call(&parent, json!(null)).unwrap();

    let by = |k: SortBy| ids(&s.client, CallsQuery::new().sort_by(k));
    // descendant_error < error < running < success; ties (two errors) by id descending.
    let mut errors = [failed.id().to_string(), child.id().to_string()];
    errors.sort();
    errors.reverse();
    assert_eq!(
        by(SortBy::asc("summary.weave.status")),
        [
            vec![parent.id().to_string()],
            errors.to_vec(),
            vec![running.id().to_string(), ok.id().to_string()]
        ]
        .concat()
    );
    // trace_name: the display name, else the op name (from the ref).
    assert_eq!(
        by(SortBy::asc("summary.weave.trace_name")),
        id_list(&[&parent, &failed, &ok, &running, &child])
    );
    assert_eq!(
        by(SortBy::desc("summary.weave.trace_name")),
        id_list(&[&child, &running, &ok, &failed, &parent])
    );
}

#[backends]
fn multiple_sort_keys() {
    let s = TestStore::new();
    let a1 = rec(&s.client, "a", json!({"n": 1}), at_ms(0));
    let b2 = rec(&s.client, "b", json!({"n": 2}), at_ms(1));
    let a3 = rec(&s.client, "a", json!({"n": 3}), at_ms(2));
    let b1 = rec(&s.client, "b", json!({"n": 1}), at_ms(3));
    let a3_again = rec(&s.client, "a", json!({"n": 3}), at_ms(4));
    let (a3_hi, a3_lo) = if a3.id() > a3_again.id() {
        (&a3, &a3_again)
    } else {
        (&a3_again, &a3)
    };
    assert_eq!(
        ids(
            &s.client,
            CallsQuery::new()
                .sort_by(SortBy::asc("op_name"))
                .sort_by(SortBy::desc("inputs.n"))
        ),
        id_list(&[a3_hi, a3_lo, &a1, &b2, &b1])
    );
    assert_eq!(
        ids(
            &s.client,
            CallsQuery::new()
                .sort_by(SortBy::asc("inputs.n"))
                .sort_by(SortBy::desc("op_name"))
                .sort_by(SortBy::asc("started_at"))
        ),
        id_list(&[&b1, &a1, &b2, &a3, &a3_again])
    );
}

#[backends]
fn empty_sort_by_is_unordered_but_returns_everything() {
    let s = TestStore::new();
    let calls: Vec<Call> = (0..25)
        .map(|i| rec(&s.client, "op", json!({ "i": i }), at_ms((i * 7919) % 25)))
        .collect();
    let want: HashSet<String> = calls.iter().map(|c| c.id().to_string()).collect();
    let q = CallsQuery::new().unordered();
    assert_eq!(q.sort_by, Some(vec![]));
    let got = ids(&s.client, q.clone());
    assert_eq!(got.len(), 25);
    assert_eq!(got.iter().cloned().collect::<HashSet<_>>(), want);
    // With small pages too.
    let got: Vec<String> = s
        .client
        .get_calls(q.clone())
        .page_size(4)
        .map(|c| c.unwrap().id().to_string())
        .collect();
    assert_eq!(got.len(), 25);
    assert_eq!(got.into_iter().collect::<HashSet<_>>(), want);
    assert_eq!(s.client.get_calls(q).size().unwrap(), 25);
}

#[backends]
fn limit_and_offset() {
    let s = TestStore::new();
    let calls: Vec<Call> = (0..10)
        .map(|i| rec(&s.client, "op", json!({ "i": i }), at_ms(i)))
        .collect();
    let all: Vec<String> = calls.iter().map(|c| c.id().to_string()).collect();
    let q = CallsQuery::new;
    assert_eq!(ids(&s.client, q()), all);
    assert_eq!(ids(&s.client, q().limit(3)), all[..3]);
    assert_eq!(ids(&s.client, q().offset(7)), all[7..]);
    assert_eq!(ids(&s.client, q().offset(2).limit(3)), all[2..5]);
    assert_eq!(ids(&s.client, q().offset(8).limit(5)), all[8..]);
    assert_eq!(ids(&s.client, q().limit(0)), Vec::<String>::new());
    assert_eq!(ids(&s.client, q().offset(10)), Vec::<String>::new());
    assert_eq!(
        ids(&s.client, q().offset(50).limit(3)),
        Vec::<String>::new()
    );
    assert_eq!(ids(&s.client, q().limit(100)), all);
    // Applied after sorting and filtering.
    let rev: Vec<String> = all.iter().rev().cloned().collect();
    assert_eq!(
        ids(
            &s.client,
            q().sort_by(SortBy::desc("inputs.i")).offset(1).limit(2)
        ),
        rev[1..3]
    );
    assert_eq!(
        ids(
            &s.client,
            q().query(field("inputs.i").gte(5)).offset(1).limit(2)
        ),
        all[6..8]
    );
}

#[backends]
fn paging_2500_calls_in_pages_of_1000() {
    let s = TestStore::new();
    // Groups of three calls share a start time, so order across page boundaries relies on
    // the id tiebreak.
    let calls: Vec<Call> = (0..2500)
        .map(|i| rec(&s.client, "op", json!({ "i": i }), at_ms(i / 3)))
        .collect();
    let want = sorted_ids(&calls, |c| c.started_at(), false);

    let got: Vec<String> = s
        .client
        .get_calls(CallsQuery::new().page_size(1000))
        .map(|c| c.unwrap().id().to_string())
        .collect();
    assert_eq!(got.len(), 2500);
    assert_eq!(got.iter().collect::<HashSet<_>>().len(), 2500);
    assert_eq!(got, want);
    // The default page size gives the same.
    assert_eq!(ids(&s.client, CallsQuery::new()), want);
    // Descending through pages.
    let got: Vec<String> = s
        .client
        .get_calls(CallsQuery::new().sort_by(SortBy::desc("started_at")))
        .page_size(1000)
        .map(|c| c.unwrap().id().to_string())
        .collect();
    assert_eq!(got, want.iter().rev().cloned().collect::<Vec<_>>());
    // Offset and limit straddling page boundaries.
    let got: Vec<String> = s
        .client
        .get_calls(CallsQuery::new().offset(999).limit(1002).page_size(1000))
        .map(|c| c.unwrap().id().to_string())
        .collect();
    assert_eq!(got, want[999..2001]);
    assert_eq!(
        s.client
            .get_calls(CallsQuery::new().offset(999).limit(1002))
            .size()
            .unwrap(),
        1002
    );
    assert_eq!(s.client.get_calls(CallsQuery::new()).size().unwrap(), 2500);
}

#[backends]
fn paging_with_an_odd_page_size() {
    let s = TestStore::new();
    let calls: Vec<Call> = (0..50)
        .map(|i| {
            let op = if i % 3 == 0 { "x" } else { "y" };
            rec(&s.client, op, json!({ "i": i }), at_ms(i / 4))
        })
        .collect();
    let want = sorted_ids(&calls, |c| c.started_at(), false);
    let paged = |q: CallsQuery, size: u64| -> Vec<String> {
        s.client
            .get_calls(q)
            .page_size(size)
            .map(|c| c.unwrap().id().to_string())
            .collect()
    };
    for size in [1, 7, 49, 50, 51] {
        assert_eq!(paged(CallsQuery::new(), size), want, "page size {size}");
    }
    assert_eq!(paged(CallsQuery::new().offset(5).limit(30), 7), want[5..35]);
    assert_eq!(paged(CallsQuery::new().offset(45), 7), want[45..]);
    // A sort key with many ties stays consistent across pages (id breaks ties).
    let by_op = CallsQuery::new().sort_by(SortBy::asc("op_name"));
    let want_by_op = sorted_ids(&calls, |c| c.op_name().to_string(), true);
    assert_eq!(paged(by_op.clone(), 7), want_by_op);
    assert_eq!(paged(by_op.clone(), 1000), want_by_op);
    // Filtered and paged.
    let xs: Vec<String> = want_by_op
        .iter()
        .filter(|id| calls.iter().any(|c| c.id() == *id && c.func_name() == "x"))
        .cloned()
        .collect();
    assert_eq!(xs.len(), 17);
    let x_ref = calls
        .iter()
        .find(|c| c.func_name() == "x")
        .unwrap()
        .op_name();
    assert_eq!(paged(by_op.query(field("op_name").eq(x_ref)), 7), xs);
}

#[backends]
fn size_counts_without_fetching() {
    let s = TestStore::new();
    let root = start(&s.client, "agent", json!({}), at_ms(0));
    for i in 0..12 {
        let c = s
            .client
            .create_call_with(
                "llm",
                json!({ "i": i }),
                CallOptions::new()
                    .use_stack(false)
                    .started_at(at_ms(1 + i))
                    .parent(&root),
            )
            .unwrap();
        s.client.finish_call(&c, json!(null)).unwrap();
    }
    s.client.finish_call(&root, json!(null)).unwrap();

    let size = |q: CallsQuery| s.client.get_calls(q).size().unwrap();
    let count = |q: CallsQuery| s.client.get_calls(q).count() as u64;
    let cases = [
        CallsQuery::new(),
        CallsQuery::new().offset(3),
        CallsQuery::new().limit(5),
        CallsQuery::new().offset(10).limit(5),
        CallsQuery::new().offset(13),
        CallsQuery::new().offset(100),
        CallsQuery::new().limit(0),
        CallsQuery::new().query(field("inputs.i").lt(4)),
        CallsQuery::new().query(field("inputs.i").lt(4)).offset(1),
        CallsQuery::new().filter(CallsFilter {
            trace_roots_only: Some(true),
            ..Default::default()
        }),
        CallsQuery::new().filter(CallsFilter {
            parent_ids: Some(vec![root.id().to_string()]),
            ..Default::default()
        }),
        CallsQuery::new().filter(CallsFilter {
            op_names: Some(vec!["nope".into()]),
            ..Default::default()
        }),
    ];
    let want = [13, 10, 5, 3, 0, 0, 0, 4, 3, 1, 12, 0];
    for (q, n) in cases.into_iter().zip(want) {
        assert_eq!(size(q.clone()), n, "size of {q:?}");
        assert_eq!(count(q.clone()), n, "count of {q:?}");
    }
    // size() does not consume the iterator.
    let it = s.client.get_calls(CallsQuery::new().limit(4));
    assert_eq!(it.size().unwrap(), 4);
    assert_eq!(it.size().unwrap(), 4);
    assert_eq!(it.count(), 4);
    // Writes not yet flushed are counted: size() flushes first.
    let late = start(&s.client, "late", json!({}), at_ms(100));
    assert_eq!(size(CallsQuery::new()), 14);
    s.client.finish_call(&late, json!(null)).unwrap();
    // Deleted calls are not counted.
    s.client.delete_call(&late).unwrap();
    assert_eq!(size(CallsQuery::new()), 13);
    // An invalid query fails.
    let res = s.client.get_calls(field("nope").eq(1)).size();
    if s.is_reference() {
        // Reference server: `SqliteTraceServer.calls_query_stats` does not validate field
        // names; it puts `nope` into its SQL as a column, SQLite fails ("no such column"), and
        // the server answers 500.
        assert_ref_server_500(res, "/calls/query_stats");
    } else {
        match res {
            Err(WeaveError::InvalidQuery(m)) => assert!(m.contains("nope"), "{m}"),
            other => panic!("expected InvalidQuery, got {other:?}"),
        }
    }
}

/// The reference server's answer to SQL its SQLite cannot run: HTTP 500 on `route`.
fn assert_ref_server_500<T: std::fmt::Debug>(res: Result<T, WeaveError>, route: &str) {
    match res {
        Err(WeaveError::Backend { message: m, .. }) => assert_eq!(
            m,
            format!("{route}: HTTP 500: Internal server error"),
            "{m}"
        ),
        other => panic!("expected HTTP 500 from {route}, got {other:?}"),
    }
}

#[backends]
fn invalid_sort_keys_are_errors() {
    let s = TestStore::new();
    let only = rec(&s.client, "op", json!({}), at_ms(0));
    for (key, part) in [
        ("nope", "\"nope\""),
        ("inputs..x", "\"inputs..x\""),
        ("summary.weave.nope", "\"summary.weave.nope\""),
        ("input.x", "\"input.x\""),
    ] {
        let mut it = s
            .client
            .get_calls(CallsQuery::new().sort_by(SortBy::asc(key)));
        if s.is_reference() {
            // Reference server: `SqliteTraceServer.calls_query` does not validate sort keys.
            // `inputs.` / `summary.` keys become `json_extract` paths, which SQLite accepts
            // (NULL for every call, so the call comes back); other keys go into `ORDER BY` as
            // column names, which SQLite rejects ("no such column"): HTTP 500.
            match key {
                "inputs..x" | "summary.weave.nope" => {
                    assert_eq!(it.next().unwrap().unwrap().id(), only.id(), "{key}")
                }
                _ => assert_ref_server_500(it.next().unwrap(), "/calls/stream_query"),
            }
            assert!(it.next().is_none());
            continue;
        }
        match it.next() {
            Some(Err(WeaveError::InvalidQuery(m))) => {
                assert!(m.contains("sort_by") && m.contains(part), "{key}: {m}")
            }
            other => panic!("{key}: expected InvalidQuery, got {other:?}"),
        }
        assert!(it.next().is_none());
    }
}

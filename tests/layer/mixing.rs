//! Spans, ops and direct `create_call` nest in any order, in sync and async code; a span with
//! an explicit `parent:` follows the nearest call among that span's ancestors.

use std::future::Future;
use std::pin::Pin;

use serde_json::json;
use tokio::task::yield_now;
use tracing::{debug_span, info, info_span, Dispatch, Instrument, Span};
use tracing_subscriber::layer::SubscriberExt;
use weave::{WeaveClient, WeaveLayer};

use crate::common::{all_calls, install_global_subscriber, with_layer, TestStore, Tree};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Span,
    Op,
    Direct,
}

const PERMUTATIONS: [[Kind; 3]; 6] = [
    [Kind::Span, Kind::Op, Kind::Direct],
    [Kind::Span, Kind::Direct, Kind::Op],
    [Kind::Op, Kind::Span, Kind::Direct],
    [Kind::Op, Kind::Direct, Kind::Span],
    [Kind::Direct, Kind::Span, Kind::Op],
    [Kind::Direct, Kind::Op, Kind::Span],
];

fn call_name(k: Kind) -> &'static str {
    match k {
        Kind::Span => "mix_span",
        Kind::Op => "mix_op",
        Kind::Direct => "mix_direct",
    }
}

// ---------------------------------------------------------------------------------------
// Sync: level `depth` of kind `kinds[0]` contains the rest, then a `mix_after(depth)` call.

fn nest(client: &WeaveClient, kinds: &[Kind], depth: u64) {
    match kinds.split_first() {
        None => {
            mix_leaf(depth);
        }
        Some((Kind::Span, rest)) => info_span!("mix_span", depth).in_scope(|| {
            nest(client, rest, depth + 1);
            mix_after(depth);
        }),
        Some((Kind::Op, rest)) => mix_op(client, rest, depth),
        Some((Kind::Direct, rest)) => {
            let c = client
                .create_call("mix_direct", json!({ "depth": depth }))
                .unwrap();
            nest(client, rest, depth + 1);
            mix_after(depth);
            client.finish_call(&c, ()).unwrap();
        }
    }
}

#[weave::op(skip(client, rest))]
fn mix_op(client: &WeaveClient, rest: &[Kind], depth: u64) {
    nest(client, rest, depth + 1);
    mix_after(depth);
}

#[weave::op]
fn mix_leaf(depth: u64) -> u64 {
    depth
}

#[weave::op]
fn mix_after(depth: u64) -> u64 {
    depth
}

/// Checks the trace under `root`: root → L0 → L1 → L2 → mix_leaf(3), each level `d` followed
/// by its `mix_after(d)`, then the root's own `mix_after(99)`.
fn check_chain(client: &WeaveClient, root_id: &str, kinds: &[Kind]) {
    let tree = Tree::of_call(client, root_id);
    let ctx = format!("{kinds:?}:\n{}", tree.outline());
    assert_eq!(tree.calls.len(), 2 + 2 * kinds.len() + 1, "{ctx}");
    let root = tree.call(root_id);
    let top = tree.kids(root_id);
    assert_eq!(top.len(), 2, "{ctx}");
    assert_eq!(top[1].func_name(), "mix_after", "{ctx}");
    assert_eq!(top[1].inputs()["depth"], 99, "{ctx}");
    let mut level = top[0];
    for (depth, kind) in kinds.iter().enumerate() {
        assert_eq!(level.func_name(), call_name(*kind), "{ctx}");
        assert_eq!(level.inputs()["depth"], depth as u64, "{ctx}");
        assert_eq!(level.trace_id(), root.trace_id(), "{ctx}");
        let kids = tree.kids(level.id());
        assert_eq!(kids.len(), 2, "{ctx}");
        assert_eq!(kids[1].func_name(), "mix_after", "{ctx}");
        assert_eq!(kids[1].inputs()["depth"], depth as u64, "{ctx}");
        level = kids[0];
    }
    assert_eq!(level.func_name(), "mix_leaf", "{ctx}");
    assert_eq!(level.inputs()["depth"], kinds.len() as u64, "{ctx}");
}

#[test]
fn spans_ops_and_direct_calls_nest_in_any_order() {
    let s = TestStore::new();
    for kinds in PERMUTATIONS {
        let root = s.client.create_call("test_root", json!({})).unwrap();
        with_layer(&s.client, || {
            nest(&s.client, &kinds, 0);
            mix_after(99);
        });
        s.client.finish_call(&root, ()).unwrap();
        assert!(weave::current_call().is_none());
        check_chain(&s.client, root.id(), &kinds);
    }
}

// ---------------------------------------------------------------------------------------
// Async: the same, with awaits that suspend at every level.

type BoxFut = Pin<Box<dyn Future<Output = ()> + Send>>;

fn nest_async(client: WeaveClient, kinds: Vec<Kind>, depth: u64) -> BoxFut {
    Box::pin(async move {
        match kinds.split_first() {
            None => {
                mix_leaf_async(depth).await;
            }
            Some((Kind::Span, rest)) => {
                let rest = rest.to_vec();
                async move {
                    yield_now().await;
                    nest_async(client, rest, depth + 1).await;
                    yield_now().await;
                    mix_after_async(depth).await;
                }
                .instrument(info_span!("mix_span", depth))
                .await
            }
            Some((Kind::Op, rest)) => mix_op_async(client, rest.to_vec(), depth).await,
            Some((Kind::Direct, rest)) => {
                let c = client
                    .create_call("mix_direct", json!({ "depth": depth }))
                    .unwrap();
                yield_now().await;
                nest_async(client.clone(), rest.to_vec(), depth + 1).await;
                yield_now().await;
                mix_after_async(depth).await;
                client.finish_call(&c, ()).unwrap();
            }
        }
    })
}

#[weave::op(name = "mix_op", skip(client, rest))]
async fn mix_op_async(client: WeaveClient, rest: Vec<Kind>, depth: u64) {
    yield_now().await;
    nest_async(client, rest, depth + 1).await;
    yield_now().await;
    mix_after_async(depth).await;
}

#[weave::op(name = "mix_leaf")]
async fn mix_leaf_async(depth: u64) -> u64 {
    yield_now().await;
    depth
}

#[weave::op(name = "mix_after")]
async fn mix_after_async(depth: u64) -> u64 {
    yield_now().await;
    depth
}

/// The async nesting of `kinds` under a fresh root, run as a task on a multi-threaded
/// runtime; returns the root's id.
fn run_async_chain(s: &TestStore, rt: &tokio::runtime::Runtime, kinds: [Kind; 3]) -> String {
    let root = s.client.create_call("test_root", json!({})).unwrap();
    let client = s.client.clone();
    rt.block_on(async move {
        weave::spawn(async move {
            nest_async(client, kinds.to_vec(), 0).await;
            mix_after_async(99).await;
        })
        .await
        .unwrap()
    });
    s.client.finish_call(&root, ()).unwrap();
    root.id().to_string()
}

fn multi_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap()
}

#[test]
fn async_spans_and_ops_nest_in_any_order() {
    install_global_subscriber();
    let s = TestStore::new();
    let rt = multi_thread_runtime();
    for kinds in [
        [Kind::Span, Kind::Op, Kind::Span],
        [Kind::Op, Kind::Span, Kind::Op],
    ] {
        let root = run_async_chain(&s, &rt, kinds);
        check_chain(&s.client, &root, &kinds);
    }
}

#[test]
fn async_direct_calls_nest_with_spans_and_ops_in_any_order() {
    install_global_subscriber();
    let s = TestStore::new();
    let rt = multi_thread_runtime();
    for kinds in PERMUTATIONS {
        let root = run_async_chain(&s, &rt, kinds);
        check_chain(&s.client, &root, &kinds);
    }
}

/// Tasks started with `weave::spawn` each keep their own stack segment: a direct call made in
/// one stays current across its `.await`s and never leaks to the other. (A bare
/// `tokio::spawn` has no such segment: see the README.)
#[test]
fn a_direct_call_in_one_task_is_not_the_parent_of_another_tasks_calls() {
    let s = TestStore::new();
    // One thread: the two tasks take turns on it.
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (c1, c2) = (s.client.clone(), s.client.clone());
    rt.block_on(async move {
        let a = weave::spawn(async move {
            let call = c1.create_call("task_a", json!({})).unwrap();
            yield_now().await;
            // Still current after the await: a call made now is its child.
            let inner = c1.create_call("task_a_child", json!({})).unwrap();
            c1.finish_call(&inner, ()).unwrap();
            yield_now().await;
            c1.finish_call(&call, ()).unwrap();
        });
        let b = weave::spawn(async move {
            yield_now().await;
            let call = c2.create_call("task_b", json!({})).unwrap();
            c2.finish_call(&call, ()).unwrap();
        });
        a.await.unwrap();
        b.await.unwrap();
    });
    let calls = all_calls(&s.client);
    assert_eq!(calls.len(), 3);
    let a = calls.iter().find(|c| c.func_name() == "task_a").unwrap();
    for c in &calls {
        match c.func_name() {
            "task_a_child" => assert_eq!(c.parent_id(), Some(a.id())),
            name => assert!(
                c.parent_id().is_none(),
                "{name} became a child of the other task's call"
            ),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Explicit span parents

#[weave::op(skip(dispatch))]
fn op_with_a_thread(dispatch: Dispatch, n: u32) -> u32 {
    let op_span = Span::current();
    std::thread::spawn(move || {
        tracing::dispatcher::with_default(&dispatch, || {
            // No Context carried: only the explicit parent places it.
            info_span!(parent: &op_span, "from_thread").in_scope(|| {});
        })
    })
    .join()
    .unwrap();
    n
}

#[test]
fn an_explicit_span_parent_follows_the_nearest_call_among_its_ancestors() {
    let s = TestStore::new();
    let dispatch = Dispatch::new(
        tracing_subscriber::registry().with(WeaveLayer::with_client(s.client.clone())),
    );
    let root = s.client.create_call("test_root", json!({})).unwrap();
    tracing::dispatcher::with_default(&dispatch, || {
        let a = info_span!("a");
        // Not a call at the default level; its parent is `a`.
        let d = a.in_scope(|| debug_span!("debug_under_a"));
        info_span!("b").in_scope(|| {
            info_span!(parent: &a, "child_of_a").in_scope(|| {});
            info_span!(parent: &d, "child_via_debug").in_scope(|| {});
            info!(parent: &a, "event for a");
            info_span!(parent: None, "detached").in_scope(|| {});
            info_span!("child_of_b").in_scope(|| {});
        });
        assert_eq!(op_with_a_thread(dispatch.clone(), 3), 3);
        drop(d);
        drop(a);
    });
    s.client.finish_call(&root, ()).unwrap();

    let tree = Tree::of_call(&s.client, root.id());
    assert_eq!(
        tree.kid_names(root.id()),
        ["a", "b", "op_with_a_thread"],
        "{}",
        tree.outline()
    );
    let kids = tree.kids(root.id());
    let (a, b, op) = (kids[0], kids[1], kids[2]);
    assert_eq!(tree.kid_names(a.id()), ["child_of_a", "child_via_debug"]);
    assert_eq!(tree.kid_names(b.id()), ["child_of_b"]);
    assert_eq!(tree.kid_names(op.id()), ["from_thread"]);
    let a_events = &a.summary().unwrap()["events"];
    assert_eq!(a_events.as_array().unwrap().len(), 1);
    assert_eq!(a_events[0]["message"], "event for a");
    assert!(b.summary().unwrap().get("events").is_none());

    // `parent: None` makes a root, recorded with the layer's client.
    let detached = all_calls(&s.client)
        .into_iter()
        .find(|c| c.func_name() == "detached")
        .unwrap();
    assert!(detached.parent_id().is_none());
    assert_ne!(detached.trace_id(), root.trace_id());
}

#[weave::op]
fn on_thread(who: &'static str) -> &'static str {
    who
}

#[test]
fn a_span_entered_on_two_threads_keeps_each_threads_direct_calls_apart() {
    let s = TestStore::new();
    let subscriber = std::sync::Arc::new(
        tracing_subscriber::registry().with(WeaveLayer::with_client(s.client.clone())),
    );
    let span = tracing::subscriber::with_default(subscriber.clone(), || info_span!("shared"));
    let a_entered = std::sync::Arc::new(std::sync::Barrier::new(2));
    let b_done = std::sync::Arc::new(std::sync::Barrier::new(2));
    let thread = |name: &'static str, first: bool| {
        let (span, client, sub) = (span.clone(), s.client.clone(), subscriber.clone());
        let (a_entered, b_done) = (a_entered.clone(), b_done.clone());
        std::thread::spawn(move || {
            tracing::subscriber::with_default(sub, || {
                if first {
                    // A: a direct call inside the span, left open while the span is exited.
                    let direct = span.in_scope(|| client.create_call("a_direct", json!({})));
                    let direct = direct.unwrap();
                    a_entered.wait();
                    b_done.wait();
                    span.in_scope(|| on_thread(name));
                    client.finish_call(&direct, ()).unwrap();
                } else {
                    a_entered.wait();
                    span.in_scope(|| on_thread(name));
                    b_done.wait();
                }
            })
        })
    };
    let (a, b) = (thread("a", true), thread("b", false));
    a.join().unwrap();
    b.join().unwrap();
    drop(span);
    let calls = all_calls(&s.client);
    let id_of = |name: &str| calls.iter().find(|c| c.func_name() == name).unwrap();
    let shared = id_of("shared").id().to_string();
    let direct = id_of("a_direct").id().to_string();
    for c in calls.iter().filter(|c| c.func_name() == "on_thread") {
        let want = if c.output() == json!("a") {
            &direct
        } else {
            &shared
        };
        assert_eq!(c.parent_id(), Some(want.as_str()), "{:?}", c.output());
    }
}

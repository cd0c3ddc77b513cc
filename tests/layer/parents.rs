//! Parents across `.await`, tasks and threads: `weave::spawn` / `weave::spawn_thread` carry
//! the current call, a plain `tokio::spawn` does not, and a thousand concurrent traces keep
//! to themselves.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::json;
use tokio::task::yield_now;
use tracing::{info_span, instrument, Instrument};

use crate::common::{all_calls, install_global_subscriber, GlobalClient, TestStore, Tree};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap()
}

#[weave::op]
async fn leaf(i: u32) -> u32 {
    yield_now().await;
    i * 10
}

#[instrument]
async fn fetch(i: u32) -> u32 {
    yield_now().await;
    let a = leaf(i).await;
    tokio::time::sleep(Duration::from_millis(1)).await;
    a + leaf(i + 1).await
}

#[weave::op]
async fn pipeline(n: u32) -> u32 {
    let a = fetch(n).await;
    yield_now().await;
    let b = async {
        yield_now().await;
        leaf(99).await
    }
    .instrument(info_span!("manual"))
    .await;
    tokio::time::sleep(Duration::from_millis(1)).await;
    let c = leaf(7).await;
    a + b + c
}

#[test]
fn await_keeps_the_parent() {
    install_global_subscriber();
    let s = TestStore::new();
    let rt = runtime();
    let root = s.client.create_call("test_root", json!({})).unwrap();
    // Spawned, so that the polls run on the runtime's worker threads.
    let out = rt.block_on(async { weave::spawn(pipeline(1)).await.unwrap() });
    assert_eq!(out, 10 + 20 + 990 + 70);
    s.client.finish_call(&root, ()).unwrap();

    let tree = Tree::of_call(&s.client, root.id());
    assert_eq!(tree.calls.len(), 8, "{}", tree.outline());
    let p = tree.only_kid(root.id());
    assert_eq!(p.func_name(), "pipeline");
    assert_eq!(p.output(), json!(1090));
    assert_eq!(tree.kid_names(p.id()), ["fetch", "manual", "leaf"]);
    let kids = tree.kids(p.id());
    let leaf_inputs = |id: &str| -> Vec<serde_json::Value> {
        tree.kids(id)
            .iter()
            .map(|c| c.inputs()["i"].clone())
            .collect()
    };
    assert_eq!(kids[0].inputs()["i"], 1);
    assert_eq!(kids[0].output(), serde_json::Value::Null);
    assert_eq!(tree.kid_names(kids[0].id()), ["leaf", "leaf"]);
    assert_eq!(leaf_inputs(kids[0].id()), [json!(1), json!(2)]);
    assert_eq!(leaf_inputs(kids[1].id()), [json!(99)]);
    assert_eq!(kids[2].inputs()["i"], 7);
    for c in tree.calls.values() {
        assert_eq!(c.trace_id(), root.trace_id());
        assert!(c.ended_at().is_some(), "{} not finished", c.func_name());
    }
}

#[weave::op]
async fn fan_out_op(n: u32) -> u32 {
    let tasks: Vec<_> = (0..n).map(|i| weave::spawn(leaf(i))).collect();
    let mut sum = 0;
    for t in tasks {
        sum += t.await.unwrap();
    }
    sum
}

#[instrument]
async fn fan_out_span(n: u32) -> u32 {
    yield_now().await;
    let tasks: Vec<_> = (0..n).map(|i| weave::spawn(leaf(100 + i))).collect();
    let mut sum = 0;
    for t in tasks {
        sum += t.await.unwrap();
    }
    sum
}

#[test]
fn weave_spawn_carries_the_current_call_into_tasks() {
    install_global_subscriber();
    let s = TestStore::new();
    let rt = runtime();
    let root = s.client.create_call("test_root", json!({})).unwrap();
    let client = s.client.clone();
    let total = rt.block_on(async move {
        // An op's tasks.
        let a = weave::spawn(fan_out_op(3)).await.unwrap();
        // A span's tasks.
        let b = weave::spawn(fan_out_span(2)).await.unwrap();
        // A direct create_call's tasks, from inside a task.
        let c = weave::spawn(async move {
            let direct = client.create_call("direct", json!({})).unwrap();
            let task = weave::spawn(leaf(5));
            let v = task.await.unwrap();
            client.finish_call(&direct, v).unwrap();
            v
        })
        .await
        .unwrap();
        // The test's root itself (current where block_on runs).
        let d = weave::spawn(leaf(9)).await.unwrap();
        a + b + c + d
    });
    assert_eq!(total, 30 + 2010 + 50 + 90);
    s.client.finish_call(&root, ()).unwrap();

    let tree = Tree::of_call(&s.client, root.id());
    assert_eq!(
        tree.kid_names(root.id()),
        ["fan_out_op", "fan_out_span", "direct", "leaf"],
        "{}",
        tree.outline()
    );
    let kids = tree.kids(root.id());
    let mut op_leaves: Vec<_> = tree
        .kids(kids[0].id())
        .iter()
        .map(|c| (c.func_name().to_string(), c.inputs()["i"].as_u64().unwrap()))
        .collect();
    op_leaves.sort();
    assert_eq!(
        op_leaves,
        [("leaf".into(), 0), ("leaf".into(), 1), ("leaf".into(), 2)]
    );
    let mut span_leaves: Vec<_> = tree
        .kids(kids[1].id())
        .iter()
        .map(|c| c.inputs()["i"].as_u64().unwrap())
        .collect();
    span_leaves.sort();
    assert_eq!(span_leaves, [100, 101]);
    assert_eq!(tree.only_kid(kids[2].id()).inputs()["i"], 5);
    assert_eq!(kids[3].inputs()["i"], 9);
    assert_eq!(tree.calls.len(), 1 + 4 + 3 + 2 + 1);
    for c in tree.calls.values() {
        assert_eq!(c.trace_id(), root.trace_id());
    }
}

#[weave::op]
fn sync_leaf(i: u32) -> u32 {
    i + 1
}

#[weave::op]
fn sync_spawner(i: u32) -> u32 {
    weave::spawn_thread(move || sync_leaf(i)).join().unwrap()
}

#[test]
fn weave_spawn_thread_carries_the_current_call_into_threads() {
    install_global_subscriber();
    let s = TestStore::new();
    let root = s.client.create_call("test_root", json!({})).unwrap();
    // The direct call's thread.
    assert_eq!(weave::spawn_thread(|| sync_leaf(1)).join().unwrap(), 2);
    // A span's thread: the span is entered there too.
    info_span!("thread_parent_span").in_scope(|| {
        weave::spawn_thread(|| {
            sync_leaf(2);
            info_span!("span_in_thread").in_scope(|| sync_leaf(3));
        })
        .join()
        .unwrap()
    });
    // An op's thread.
    assert_eq!(sync_spawner(4), 5);
    s.client.finish_call(&root, ()).unwrap();

    let tree = Tree::of_call(&s.client, root.id());
    assert_eq!(
        tree.kid_names(root.id()),
        ["sync_leaf", "thread_parent_span", "sync_spawner"],
        "{}",
        tree.outline()
    );
    let kids = tree.kids(root.id());
    assert_eq!(
        tree.kid_names(kids[1].id()),
        ["sync_leaf", "span_in_thread"]
    );
    let in_thread = tree.kids(kids[1].id())[1];
    assert_eq!(tree.only_kid(in_thread.id()).inputs()["i"], 3);
    assert_eq!(tree.only_kid(kids[2].id()).inputs()["i"], 4);
    assert_eq!(tree.calls.len(), 8);
}

#[test]
fn plain_tokio_spawn_and_thread_spawn_make_roots() {
    install_global_subscriber();
    let s = TestStore::new();
    let _global = GlobalClient::set(&s.client);
    let rt = runtime();
    let root = s.client.create_call("test_root", json!({})).unwrap();
    rt.block_on(async {
        assert_eq!(tokio::spawn(leaf(1)).await.unwrap(), 10);
        tokio::spawn(async { info_span!("task_span").in_scope(|| {}) })
            .await
            .unwrap();
        // For contrast: carried.
        assert_eq!(weave::spawn(leaf(2)).await.unwrap(), 20);
    });
    std::thread::spawn(|| sync_leaf(3)).join().unwrap();
    s.client.finish_call(&root, ()).unwrap();

    let calls = all_calls(&s.client);
    assert_eq!(calls.len(), 5);
    let find = |pred: &dyn Fn(&weave::Call) -> bool| calls.iter().find(|c| pred(c)).unwrap();
    let uncarried = [
        find(&|c| c.func_name() == "leaf" && c.inputs()["i"] == 1),
        find(&|c| c.func_name() == "task_span"),
        find(&|c| c.func_name() == "sync_leaf"),
    ];
    for c in uncarried {
        assert!(c.parent_id().is_none(), "{} has a parent", c.func_name());
        assert_ne!(c.trace_id(), root.trace_id());
    }
    let carried = find(&|c| c.func_name() == "leaf" && c.inputs()["i"] == 2);
    assert_eq!(carried.parent_id(), Some(root.id()));
    assert_eq!(carried.trace_id(), root.trace_id());
}

// ---------------------------------------------------------------------------------------
// A thousand concurrent traces

const TASKS: usize = 1000;

#[weave::op]
async fn task_root_op(task: usize) -> usize {
    subtree(task).await
}

#[instrument]
async fn task_root_span(task: usize) -> usize {
    subtree(task).await
}

async fn subtree(task: usize) -> usize {
    yield_now().await;
    let mut n = child_op(task, 0).await;
    yield_now().await;
    n += child_span(task, 1).await;
    n += weave::spawn(child_op(task, 2)).await.unwrap();
    n
}

#[weave::op]
async fn child_op(task: usize, child: usize) -> usize {
    leaves(task, child).await
}

#[instrument]
async fn child_span(task: usize, child: usize) -> usize {
    leaves(task, child).await
}

async fn leaves(task: usize, child: usize) -> usize {
    let a = leaf_op(task, child, 0).await;
    yield_now().await;
    a + leaf_span(task, child, 1).await
}

#[weave::op]
async fn leaf_op(task: usize, child: usize, leaf: usize) -> usize {
    yield_now().await;
    1
}

#[instrument]
async fn leaf_span(task: usize, child: usize, leaf: usize) -> usize {
    yield_now().await;
    1
}

fn input(c: &weave::Call, key: &str) -> u64 {
    c.inputs()[key].as_u64().unwrap_or_else(|| {
        panic!(
            "{} has no numeric input {key}: {:?}",
            c.func_name(),
            c.inputs()
        )
    })
}

#[test]
fn a_thousand_concurrent_traces_keep_their_own_shape() {
    install_global_subscriber();
    let s = TestStore::new();
    let _global = GlobalClient::set(&s.client);
    let rt = runtime();
    let results = rt.block_on(async {
        let tasks: Vec<_> = (0..TASKS)
            .map(|t| {
                if t.is_multiple_of(2) {
                    tokio::spawn(task_root_op(t))
                } else {
                    tokio::spawn(task_root_span(t))
                }
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    assert!(results.iter().all(|n| *n == 6));

    let calls = all_calls(&s.client);
    assert_eq!(calls.len(), TASKS * 10);
    let tree = Tree::from_calls(calls);
    assert_eq!(tree.roots.len(), TASKS);
    let mut seen = BTreeSet::new();
    let mut reached = 0;
    for root_id in &tree.roots {
        let root = tree.call(root_id);
        let task = input(root, "task");
        assert!(seen.insert(task), "task {task} has two roots");
        let expected_root = if task.is_multiple_of(2) {
            "task_root_op"
        } else {
            "task_root_span"
        };
        assert_eq!(root.func_name(), expected_root);
        assert_eq!(
            tree.kid_names(root_id),
            ["child_op", "child_span", "child_op"],
            "task {task}"
        );
        reached += 1;
        for (ci, child) in tree.kids(root_id).into_iter().enumerate() {
            reached += 1;
            assert_eq!(input(child, "task"), task, "cross-talk under task {task}");
            assert_eq!(input(child, "child"), ci as u64);
            assert_eq!(child.trace_id(), root.trace_id());
            assert_eq!(child.parent_id(), Some(root.id()));
            assert_eq!(
                tree.kid_names(child.id()),
                ["leaf_op", "leaf_span"],
                "task {task} child {ci}"
            );
            for (li, leaf) in tree.kids(child.id()).into_iter().enumerate() {
                reached += 1;
                assert_eq!(input(leaf, "task"), task, "cross-talk under task {task}");
                assert_eq!(input(leaf, "child"), ci as u64);
                assert_eq!(input(leaf, "leaf"), li as u64);
                assert_eq!(leaf.trace_id(), root.trace_id());
                assert!(tree.kids(leaf.id()).is_empty());
            }
        }
    }
    assert_eq!(reached, TASKS * 10);
    assert_eq!(seen, (0..TASKS as u64).collect::<BTreeSet<_>>());
}

#[weave::op]
async fn fan_out_in_current_span(n: u32) -> u32 {
    // tracing's own way of carrying context into a task: the op's span goes with it.
    let tasks: Vec<_> = (0..n)
        .map(|i| tokio::spawn(leaf(i).in_current_span()))
        .collect();
    let mut sum = 0;
    for t in tasks {
        sum += t.await.unwrap();
    }
    sum
}

#[test]
fn tokio_spawn_in_current_span_inside_an_op_keeps_the_op_as_parent() {
    install_global_subscriber();
    let s = TestStore::new();
    let rt = runtime();
    let root = s.client.create_call("test_root", json!({})).unwrap();
    let out = rt.block_on(async { weave::spawn(fan_out_in_current_span(4)).await.unwrap() });
    assert_eq!(out, 60);
    s.client.finish_call(&root, ()).unwrap();

    let calls = all_calls(&s.client);
    let fan = calls
        .iter()
        .find(|c| c.func_name() == "fan_out_in_current_span")
        .unwrap();
    assert_eq!(fan.parent_id(), Some(root.id()));
    let leaves: Vec<_> = calls.iter().filter(|c| c.func_name() == "leaf").collect();
    assert_eq!(leaves.len(), 4);
    for l in leaves {
        assert_eq!(
            l.parent_id(),
            Some(fan.id()),
            "a spawned leaf lost its parent"
        );
        assert_eq!(l.trace_id(), root.trace_id());
    }
}

#[test]
fn an_explicit_root_span_uses_the_process_wide_client() {
    let s = TestStore::new();
    let _global = GlobalClient::set(&s.client);
    use tracing_subscriber::layer::SubscriberExt;
    let subscriber = tracing_subscriber::registry().with(weave::layer());
    tracing::subscriber::with_default(subscriber, || {
        info_span!("outer").in_scope(|| {
            info_span!(parent: None, "explicit_root").in_scope(|| {});
        });
    });
    let calls = all_calls(&s.client);
    let root = calls.iter().find(|c| c.func_name() == "explicit_root");
    let root = root.expect("an explicit root span is a call");
    assert_eq!(root.parent_id(), None);
    assert_eq!(calls.len(), 2);
}

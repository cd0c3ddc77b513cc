//! `sample_rate`: decided once, at the trace root. A sampled-out root runs normally but
//! nothing in its subtree is traced (nested ops, `tracing` spans, tasks and threads started
//! with `weave::spawn` / `weave::spawn_thread`); children of a traced call are always traced.
//!
//! Root ops use the process-wide client, so every test here holds the GLOBAL lock.

use std::panic::catch_unwind;

use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;
use weave::TraceStatus;

use crate::common::{children, current_thread_rt, roots, GlobalLock, TestStore};

#[weave::op]
fn inner(x: u32) -> u32 {
    x * 2
}

/// What the code inside an op sees of tracing.
#[derive(Debug, PartialEq)]
struct Seen {
    value: u32,
    has_current_call: bool,
    suppressed: bool,
}

#[weave::op(sample_rate = 0.0)]
fn never(x: u32) -> Seen {
    Seen {
        value: inner(x) + 1,
        has_current_call: weave::current_call().is_some(),
        suppressed: weave::is_suppressed(),
    }
}

#[weave::op(sample_rate = 1.0)]
fn always(x: u32) -> Seen {
    Seen {
        value: inner(x) + 1,
        has_current_call: weave::current_call().is_some(),
        suppressed: weave::is_suppressed(),
    }
}

#[test]
fn sample_rate_zero_root_runs_untraced_and_returns_its_value() {
    let g = GlobalLock::acquire();
    let s = TestStore::new();
    g.set(&s.client);
    for x in 0..20 {
        assert_eq!(
            never(x),
            Seen {
                value: 2 * x + 1,
                has_current_call: false,
                suppressed: true
            }
        );
    }
    // capture_call has no call to hand back.
    let (seen, call) = weave::capture_call(|| never(3));
    assert_eq!(seen.value, 7);
    assert!(call.is_none());
    assert_eq!(s.count(), 0, "{:?}", s.all_calls());
    // Outside the sampled-out root, tracing is back to normal.
    assert!(!weave::is_suppressed());
    assert_eq!(inner(1), 2);
    assert_eq!(s.count(), 1);
}

#[test]
fn sample_rate_one_root_is_always_traced() {
    let g = GlobalLock::acquire();
    let s = TestStore::new();
    g.set(&s.client);
    for x in 0..20 {
        assert_eq!(
            always(x),
            Seen {
                value: 2 * x + 1,
                has_current_call: true,
                suppressed: false
            }
        );
    }
    let rs = roots(&s.client);
    assert_eq!(rs.len(), 20);
    for r in &rs {
        assert_eq!(r.func_name(), "always");
        let kids = children(&s.client, r.id());
        assert_eq!(kids.len(), 1);
        assert_eq!(kids[0].func_name(), "inner");
    }
}

#[weave::op(sample_rate = 0.5)]
fn coin(i: u32) -> u32 {
    i
}

#[test]
fn sample_rate_half_traces_about_half_the_roots() {
    let g = GlobalLock::acquire();
    let s = TestStore::new();
    g.set(&s.client);
    let total: u64 = (0..2000u32).map(|i| u64::from(coin(i))).sum();
    assert_eq!(total, 1999 * 2000 / 2, "every call ran");
    let traced = roots(&s.client);
    assert!(
        (800..=1200).contains(&traced.len()),
        "{} of 2000 traced",
        traced.len()
    );
    assert!(traced.iter().all(|c| c.func_name() == "coin"));
    // The traced ones are complete calls.
    let sample = &traced[0];
    assert_eq!(sample.status(), TraceStatus::Success);
    assert_eq!(sample.output(), sample.inputs()["i"]);
}

#[weave::op(sample_rate = 0.0)]
fn rare(i: u32) -> u32 {
    i + 100
}

#[weave::op]
fn traced_parent(n: u32) -> u32 {
    (0..n).map(rare).sum()
}

#[test]
fn children_of_a_traced_parent_are_never_sampled_out() {
    let g = GlobalLock::acquire();
    let s = TestStore::new();
    g.set(&s.client);
    // As a root, `rare` is never traced …
    assert_eq!(rare(1), 101);
    assert_eq!(s.count(), 0);
    // … but under a traced parent the rate is not consulted.
    assert_eq!(traced_parent(30), (0..30).map(|i| i + 100).sum::<u32>());
    let rs = roots(&s.client);
    assert_eq!(rs.len(), 1);
    assert_eq!(rs[0].func_name(), "traced_parent");
    let kids = children(&s.client, rs[0].id());
    assert_eq!(kids.len(), 30);
    assert!(kids.iter().all(|k| k.func_name() == "rare"));
}

#[test]
fn children_under_an_explicit_root_are_never_sampled_out() {
    let _g = GlobalLock::acquire();
    let s = TestStore::new();
    let r = s.under_root(|| (0..10).map(rare).sum::<u32>());
    assert_eq!(r.out, (0..10).map(|i| i + 100).sum::<u32>());
    assert_eq!(r.children.len(), 10);
}

#[weave::op]
async fn tool(x: u32) -> u32 {
    tokio::task::yield_now().await;
    x
}

#[weave::op]
fn sync_tool(x: u32) -> u32 {
    x
}

/// An agent body touching every kind of traced work: nested ops, a span, an event, a
/// spawned task, a spawned thread.
async fn agent_body() -> u32 {
    let a = async { tool(1).await }
        .instrument(tracing::info_span!("retrieve", k = 3))
        .await;
    tracing::info!(step = 1, "retrieved");
    let b = weave::spawn(tool(2)).await.unwrap();
    let c = weave::spawn(async { tracing::info_span!("in_task").in_scope(|| sync_tool(3)) })
        .await
        .unwrap();
    let d = weave::spawn_thread(|| sync_tool(4)).join().unwrap();
    a + b + c + d
}

#[weave::op(sample_rate = 0.0)]
async fn sampled_out_agent() -> u32 {
    agent_body().await
}

#[weave::op(sample_rate = 1.0)]
async fn traced_agent() -> u32 {
    agent_body().await
}

fn with_layer<R>(f: impl FnOnce() -> R) -> R {
    let subscriber = tracing_subscriber::registry().with(weave::layer());
    tracing::subscriber::with_default(subscriber, f)
}

#[test]
fn a_sampled_out_root_leaves_ops_spans_tasks_and_threads_untraced() {
    let g = GlobalLock::acquire();
    let s = TestStore::new();
    g.set(&s.client);

    // The same body under a traced root records everything: the check below can fail.
    let out = with_layer(|| current_thread_rt().block_on(traced_agent()));
    assert_eq!(out, 10);
    let rs = roots(&s.client);
    assert_eq!(rs.len(), 1);
    let root = &rs[0];
    assert_eq!(root.func_name(), "traced_agent");
    let kids = children(&s.client, root.id());
    let names: Vec<&str> = kids.iter().map(|c| c.func_name()).collect();
    assert_eq!(names, ["retrieve", "tool", "in_task", "sync_tool"]);
    assert_eq!(children(&s.client, kids[0].id())[0].func_name(), "tool");
    assert_eq!(
        children(&s.client, kids[2].id())[0].func_name(),
        "sync_tool"
    );
    assert_eq!(root.summary().unwrap()["events"][0]["fields"]["step"], 1);
    let traced_count = s.count();
    assert_eq!(traced_count, 7);

    // Sampled out: the code runs and returns, nothing is recorded.
    let out = with_layer(|| current_thread_rt().block_on(sampled_out_agent()));
    assert_eq!(out, 10);
    assert_eq!(s.count(), traced_count, "{:?}", s.all_calls());
}

#[weave::op(sample_rate = 0.0)]
fn sampled_out_panics() -> u32 {
    panic!("sampled-out failure")
}

#[test]
fn a_panic_in_a_sampled_out_root_does_not_leave_tracing_suppressed() {
    let g = GlobalLock::acquire();
    let s = TestStore::new();
    g.set(&s.client);
    assert!(catch_unwind(sampled_out_panics).is_err());
    assert!(!weave::is_suppressed());
    assert_eq!(always(1).value, 3);
    let rs = roots(&s.client);
    assert_eq!(rs.len(), 1);
    assert_eq!(rs[0].func_name(), "always");
}

#[weave::op(sample_rate = 0.0)]
fn never_with_a_direct_call(client: weave::WeaveClient) -> bool {
    // A direct create_call inside a sampled-out trace is part of it: untraced, and so is
    // everything below it.
    let call = client.create_call("direct", serde_json::json!({})).unwrap();
    let below = inner(1);
    let untraced = call.is_untraced();
    client.finish_call(&call, below).unwrap();
    untraced
}

#[test]
fn a_direct_call_inside_a_sampled_out_root_is_untraced_with_its_subtree() {
    let g = GlobalLock::acquire();
    let s = TestStore::new();
    g.set(&s.client);
    assert!(never_with_a_direct_call(s.client.clone()));
    g.clear();
    assert_eq!(s.count(), 0, "{:?}", s.all_calls());
}

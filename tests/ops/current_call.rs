//! `weave::current_call()` inside an op is that op's call; `weave::capture_call` /
//! `capture_call_async` return an op's result together with its call (Python's `op.call`).

use std::time::Duration;

use serde_json::json;
use weave::{capture_call, capture_call_async, current_call, TraceStatus};

use crate::common::{current_thread_rt, multi_thread_rt, roots, GlobalLock, TestStore};

#[weave::op]
fn whoami(tag: &str) -> (String, String, String) {
    let c = current_call().expect("an op has a current call");
    (
        c.id().to_string(),
        c.func_name().to_string(),
        format!("{tag}:{}", c.inputs()["tag"]),
    )
}

#[test]
fn current_call_inside_an_op_is_that_ops_call() {
    let s = TestStore::new();
    let r = s.under_root(|| {
        let before = current_call().map(|c| c.id().to_string());
        let inside = whoami("x");
        let after = current_call().map(|c| c.id().to_string());
        (before, inside, after)
    });
    let (before, (id, name, seen), after) = r.out.clone();
    let c = r.only_child();
    assert_eq!(id, c.id());
    assert_eq!(name, "whoami");
    assert_eq!(seen, "x:\"x\"");
    // Around the op, the enclosing call is current.
    assert_eq!(before.as_deref(), Some(r.root.id()));
    assert_eq!(after.as_deref(), Some(r.root.id()));
}

#[weave::op]
async fn whoami_async() -> (String, String) {
    let before = current_call().unwrap().id().to_string();
    // Resume, possibly on another worker thread.
    tokio::time::sleep(Duration::from_millis(5)).await;
    tokio::task::yield_now().await;
    let after = current_call().unwrap().id().to_string();
    (before, after)
}

#[test]
fn current_call_inside_an_async_op_is_that_ops_call_across_awaits() {
    let s = TestStore::new();
    let r = multi_thread_rt().block_on(s.under_root_async(async {
        let (a, b) = tokio::join!(whoami_async(), whoami_async());
        (a, b)
    }));
    let ((a1, a2), (b1, b2)) = r.out;
    assert_eq!(a1, a2);
    assert_eq!(b1, b2);
    assert_ne!(a1, b1);
    let mut ids: Vec<String> = r.children.iter().map(|c| c.id().to_string()).collect();
    ids.sort();
    let mut seen = vec![a1, b1];
    seen.sort();
    assert_eq!(ids, seen);
}

#[test]
fn current_call_is_none_outside_any_call() {
    // A fresh thread has no enclosing call, whatever other tests do.
    let none = std::thread::spawn(|| current_call().is_none())
        .join()
        .unwrap();
    assert!(none);
    let s = TestStore::new();
    let r = s.under_root(|| current_call().map(|c| c.id().to_string()));
    assert_eq!(r.out.as_deref(), Some(r.root.id()));
    // Once the root is done, nothing is current on this thread.
    assert!(current_call().is_none());
}

#[weave::op]
fn add(a: u32, b: u32) -> u32 {
    a + b
}

#[weave::op]
fn sum_pairs(pairs: Vec<(u32, u32)>) -> u32 {
    pairs.into_iter().map(|(a, b)| add(a, b)).sum()
}

#[weave::op]
fn checked_div(a: u32, b: u32) -> Result<u32, String> {
    a.checked_div(b)
        .ok_or_else(|| "division by zero".to_string())
}

#[test]
fn capture_call_returns_the_result_and_the_ops_call() {
    let s = TestStore::new();
    let r = s.under_root(|| capture_call(|| add(2, 3)));
    let (sum, call) = r.out.clone();
    assert_eq!(sum, 5);
    let call = call.expect("the op was traced");
    assert_eq!(call.func_name(), "add");
    assert_eq!(call.output(), json!(5));
    assert_eq!(call.status(), TraceStatus::Success);
    assert_eq!(call.parent_id(), Some(r.root.id()));
    // The same call is in the store.
    let stored = s.get(call.id());
    assert_eq!(stored.output(), json!(5));
    assert_eq!(stored.inputs()["a"], 2);
    assert_eq!(r.only_child().id(), call.id());
}

#[test]
fn capture_call_returns_the_first_op_made_not_its_children_or_later_ones() {
    let s = TestStore::new();
    let r = s.under_root(|| {
        let (_, outer) = capture_call(|| sum_pairs(vec![(1, 2), (3, 4)]));
        let (_, first) = capture_call(|| {
            add(10, 20);
            add(30, 40)
        });
        (outer.unwrap(), first.unwrap())
    });
    let (outer, first) = r.out;
    assert_eq!(outer.func_name(), "sum_pairs");
    assert_eq!(outer.output(), json!(10));
    assert_eq!(first.func_name(), "add");
    assert_eq!(first.inputs()["a"], 10);
    assert_eq!(first.output(), json!(30));
}

#[test]
fn capture_call_of_a_failing_op_returns_the_error_and_the_failed_call() {
    let s = TestStore::new();
    let r = s.under_root(|| capture_call(|| checked_div(1, 0)));
    let (res, call) = r.out;
    assert_eq!(res, Err("division by zero".to_string()));
    let call = call.unwrap();
    assert_eq!(call.status(), TraceStatus::Error);
    assert_eq!(call.exception_info().unwrap().message, "division by zero");
}

#[weave::op]
async fn slow_add(a: u32, b: u32) -> u32 {
    tokio::time::sleep(Duration::from_millis(2)).await;
    add(a, b)
}

#[test]
fn capture_call_async_returns_the_result_and_the_ops_call() {
    let s = TestStore::new();
    let r = multi_thread_rt().block_on(s.under_root_async(capture_call_async(slow_add(4, 5))));
    let (sum, call) = r.out;
    assert_eq!(sum, 9);
    let call = call.expect("traced");
    assert_eq!(call.func_name(), "slow_add");
    assert_eq!(call.output(), json!(9));
    assert_eq!(call.parent_id(), Some(r.root.id()));
    let kids = s.children(call.id());
    assert_eq!(kids.len(), 1);
    assert_eq!(kids[0].func_name(), "add");
}

#[test]
fn capture_call_at_the_root_uses_the_process_wide_client() {
    let g = GlobalLock::acquire();
    let s = TestStore::new();
    g.set(&s.client);
    let (sum, call) = capture_call(|| add(1, 1));
    assert_eq!(sum, 2);
    let call = call.expect("traced with the process-wide client");
    assert!(call.parent_id().is_none());
    let rs = roots(&s.client);
    assert_eq!(rs.len(), 1);
    assert_eq!(rs[0].id(), call.id());
}

#[weave::op]
fn has_current_call() -> bool {
    current_call().is_some()
}

#[test]
fn with_no_client_and_no_enclosing_call_capture_call_returns_none() {
    let _g = GlobalLock::acquire();
    let (sum, call) = capture_call(|| add(2, 2));
    assert_eq!(sum, 4);
    assert!(call.is_none());
    let (res, call) = capture_call(|| checked_div(1, 0));
    assert_eq!(res, Err("division by zero".to_string()));
    assert!(call.is_none());
    let (sum, call) = current_thread_rt().block_on(capture_call_async(slow_add(1, 2)));
    assert_eq!(sum, 3);
    assert!(call.is_none());
    // Inside an untraced op there is no current call.
    assert!(!has_current_call());
}

//! An async op whose future is dropped before it completes (a timeout, a lost `select!`
//! branch, an aborted task) ends its call as failed with a "Cancelled" exception, children
//! included — no call is left running.

use std::time::Duration;

use serde_json::Value;
use weave::TraceStatus;

use crate::common::{current_thread_rt, exception, multi_thread_rt, TestStore};

#[weave::op]
async fn slow_llm(prompt: String) -> String {
    tokio::time::sleep(Duration::from_secs(3600)).await;
    format!("answer to {prompt}")
}

#[weave::op]
async fn quick(n: u32) -> u32 {
    tokio::task::yield_now().await;
    n
}

#[weave::op]
async fn agent_step(prompt: String) -> String {
    let first = quick(1).await;
    let answer = slow_llm(prompt).await;
    format!("{first} {answer}")
}

fn assert_cancelled(c: &weave::Call) {
    assert_eq!(c.status(), TraceStatus::Error, "{} status", c.func_name());
    assert!(c.ended_at().is_some(), "{} still running", c.func_name());
    assert_eq!(c.output(), Value::Null);
    let (ty, msg) = exception(c);
    assert_eq!(ty, "Cancelled", "{}", c.func_name());
    assert!(!msg.is_empty());
}

fn assert_nothing_running(s: &TestStore) {
    for c in s.all_calls() {
        assert!(
            c.ended_at().is_some(),
            "{} ({}) left running",
            c.func_name(),
            c.id()
        );
    }
}

#[test]
fn an_op_dropped_by_a_timeout_is_cancelled() {
    let s = TestStore::new();
    let r = current_thread_rt().block_on(s.under_root_async(async {
        tokio::time::timeout(Duration::from_millis(20), slow_llm("hi".into())).await
    }));
    assert!(r.out.is_err(), "the timeout fired");
    let c = r.only_child();
    assert_eq!(c.func_name(), "slow_llm");
    assert_eq!(c.inputs()["prompt"], "hi");
    assert_cancelled(c);
    assert_eq!(r.root.status(), TraceStatus::DescendantError);
    assert_nothing_running(&s);
}

#[test]
fn the_cancelled_ops_children_are_cancelled_too_and_finished_ones_kept() {
    let s = TestStore::new();
    let r = multi_thread_rt().block_on(s.under_root_async(async {
        // Long enough for quick() to finish first even on a loaded machine.
        tokio::time::timeout(Duration::from_millis(300), agent_step("q".into())).await
    }));
    assert!(r.out.is_err());
    let step = r.only_child();
    assert_eq!(step.func_name(), "agent_step");
    assert_cancelled(step);
    let kids = s.children(step.id());
    let names: Vec<&str> = kids.iter().map(|c| c.func_name()).collect();
    assert_eq!(names, ["quick", "slow_llm"]);
    assert_eq!(kids[0].status(), TraceStatus::Success);
    assert_cancelled(&kids[1]);
    // The cancelled child ended before its parent: it is counted in the parent's subtree.
    assert_eq!(
        step.summary().unwrap()["status_counts"],
        serde_json::json!({"success": 1, "error": 2})
    );
    assert_nothing_running(&s);
}

#[test]
fn the_losing_branch_of_select_is_cancelled() {
    let s = TestStore::new();
    let r = current_thread_rt().block_on(s.under_root_async(async {
        tokio::select! {
            a = slow_llm("slow".into()) => a,
            b = quick(7) => b.to_string(),
        }
    }));
    assert_eq!(r.out, "7");
    assert_eq!(r.children.len(), 2, "{:?}", r.children);
    let slow = r
        .children
        .iter()
        .find(|c| c.func_name() == "slow_llm")
        .expect("slow_llm started");
    let fast = r
        .children
        .iter()
        .find(|c| c.func_name() == "quick")
        .expect("quick ran");
    assert_cancelled(slow);
    assert_eq!(fast.status(), TraceStatus::Success);
    assert_nothing_running(&s);
}

#[weave::op(skip(started))]
async fn signalling_step(prompt: String, started: tokio::sync::oneshot::Sender<()>) -> String {
    let first = quick(1).await;
    let _ = started.send(());
    let answer = slow_llm(prompt).await;
    format!("{first} {answer}")
}

#[test]
fn an_aborted_task_cancels_its_op() {
    let s = TestStore::new();
    let r = multi_thread_rt().block_on(s.under_root_async(async {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let h = weave::spawn(signalling_step("abort me".into(), tx));
        // The task sends, then starts slow_llm in the same poll: abort takes effect only
        // at the task's next poll, so slow_llm has started by then.
        rx.await.unwrap();
        h.abort();
        h.await.expect_err("aborted").is_cancelled()
    }));
    assert!(r.out);
    let step = r.only_child();
    assert_cancelled(step);
    let kids = s.children(step.id());
    assert_eq!(kids.len(), 2, "{kids:?}");
    assert_cancelled(&kids[1]);
    assert_nothing_running(&s);
}

#[test]
fn an_op_future_never_polled_records_nothing() {
    let s = TestStore::new();
    let r = current_thread_rt().block_on(s.under_root_async(async {
        let fut = slow_llm("never".into());
        drop(fut);
        quick(1).await
    }));
    assert_eq!(r.out, 1);
    // Like any future, an op's body starts on the first poll: no call was made.
    let names: Vec<&str> = r.children.iter().map(|c| c.func_name()).collect();
    assert_eq!(names, ["quick"]);
}

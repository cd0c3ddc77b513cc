//! `async fn` ops and `#[async_trait]` methods: outputs, and nesting across `.await`
//! (sequential awaits, `tokio::join!`, a multi-threaded runtime moving the task between
//! threads).

use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use serde_json::{json, Value};
use weave::TraceStatus;

use crate::common::{children, current_thread_rt, multi_thread_rt, TestStore};

#[weave::op]
async fn fetch(i: u32) -> u32 {
    // Really suspend, so that polls of sibling futures interleave.
    tokio::time::sleep(Duration::from_millis(5)).await;
    tokio::task::yield_now().await;
    i * 10
}

#[weave::op]
async fn sequential(a: u32, b: u32) -> u32 {
    let x = fetch(a).await;
    let y = fetch(b).await;
    x + y
}

#[weave::op]
async fn joined(a: u32, b: u32) -> u32 {
    let (x, y) = tokio::join!(fetch(a), fetch(b));
    x + y
}

#[weave::op]
async fn two_levels(n: u32) -> u32 {
    let s = sequential(n, n + 1).await;
    let j = joined(n, n + 1).await;
    s + j
}

#[test]
fn async_op_records_inputs_and_output() {
    let s = TestStore::new();
    let r = current_thread_rt().block_on(s.under_root_async(fetch(4)));
    assert_eq!(r.out, 40);
    let c = r.only_child();
    assert_eq!(c.func_name(), "fetch");
    assert_eq!(Value::Object(c.inputs().clone()), json!({"i": 4}));
    assert_eq!(c.output(), json!(40));
    assert_eq!(c.status(), TraceStatus::Success);
    assert!(c.ended_at().is_some());
}

#[test]
fn ops_awaited_in_sequence_are_children_of_the_awaiting_op() {
    let s = TestStore::new();
    let r = multi_thread_rt().block_on(s.under_root_async(sequential(1, 2)));
    assert_eq!(r.out, 30);
    let parent = r.only_child();
    assert_eq!(parent.func_name(), "sequential");
    assert_eq!(parent.output(), json!(30));
    let kids = s.children(parent.id());
    assert_eq!(kids.len(), 2, "{kids:?}");
    assert_eq!(kids[0].inputs()["i"], 1);
    assert_eq!(kids[0].output(), json!(10));
    assert_eq!(kids[1].inputs()["i"], 2);
    assert_eq!(kids[1].output(), json!(20));
    for k in &kids {
        assert_eq!(k.func_name(), "fetch");
        assert_eq!(k.trace_id(), r.root.trace_id());
        assert!(k.started_at() >= parent.started_at());
        assert!(k.ended_at().unwrap() <= parent.ended_at().unwrap());
    }
    // Sequential: the second starts after the first ended.
    assert!(kids[1].started_at() >= kids[0].ended_at().unwrap());
}

#[test]
fn ops_run_concurrently_with_join_are_children_of_the_joining_op() {
    let s = TestStore::new();
    let r = current_thread_rt().block_on(s.under_root_async(joined(3, 4)));
    assert_eq!(r.out, 70);
    let parent = r.only_child();
    assert_eq!(parent.func_name(), "joined");
    let kids = s.children(parent.id());
    assert_eq!(kids.len(), 2, "{kids:?}");
    let mut inputs: Vec<Value> = kids.iter().map(|k| k.inputs()["i"].clone()).collect();
    inputs.sort_by_key(|v| v.as_u64());
    assert_eq!(inputs, vec![json!(3), json!(4)]);
    for k in &kids {
        assert_eq!(k.func_name(), "fetch");
        assert_eq!(k.status(), TraceStatus::Success);
        // Neither fetch became the other's child.
        assert!(s.children(k.id()).is_empty());
    }
}

#[test]
fn nesting_across_awaits_holds_on_a_multi_threaded_runtime() {
    let s = TestStore::new();
    let r = multi_thread_rt().block_on(s.under_root_async(async {
        // Two independent trees at once, on a runtime that moves tasks between threads.
        let a = weave::spawn(two_levels(1));
        let b = weave::spawn(two_levels(5));
        (a.await.unwrap(), b.await.unwrap())
    }));
    assert_eq!(r.out, (60, 60 + 2 * 110 - 60));
    assert_eq!(r.children.len(), 2);
    for top in &r.children {
        assert_eq!(top.func_name(), "two_levels");
        let n = top.inputs()["n"].as_u64().unwrap();
        let mid = s.children(top.id());
        let names: Vec<&str> = mid.iter().map(|c| c.func_name()).collect();
        assert_eq!(names, ["sequential", "joined"]);
        for m in &mid {
            let leaves = s.children(m.id());
            let mut is: Vec<u64> = leaves
                .iter()
                .map(|l| l.inputs()["i"].as_u64().unwrap())
                .collect();
            is.sort();
            // Each fetch is under the op of its own tree, never under the other tree.
            assert_eq!(is, vec![n, n + 1], "{} of tree {n}", m.func_name());
        }
    }
    assert_eq!(s.count(), 1 + 2 * (1 + 2 + 4));
}

#[derive(Serialize)]
struct Echo {
    prefix: String,
}

#[async_trait]
trait Tool {
    async fn run(&self, query: String, n: u32) -> String;
    async fn check(&self, query: &str) -> Result<u32, std::num::ParseIntError>;
}

#[async_trait]
impl Tool for Echo {
    #[weave::op]
    async fn run(&self, query: String, n: u32) -> String {
        let inner = fetch(n).await;
        format!("{}{query}{inner}", self.prefix)
    }

    #[weave::op(name = "Echo.check")]
    async fn check(&self, query: &str) -> Result<u32, std::num::ParseIntError> {
        tokio::task::yield_now().await;
        query.parse()
    }
}

#[test]
fn async_trait_methods_are_traced_with_inputs_output_and_children() {
    let s = TestStore::new();
    let tool: Box<dyn Tool + Send + Sync> = Box::new(Echo {
        prefix: "> ".into(),
    });
    let r =
        multi_thread_rt().block_on(s.under_root_async(async { tool.run("hi".into(), 2).await }));
    assert_eq!(r.out, "> hi20");
    let c = r.only_child();
    // Methods are named `Type.method`, as Python names them by `__qualname__`.
    assert_eq!(c.func_name(), "Echo.run");
    assert_eq!(
        Value::Object(c.inputs().clone()),
        json!({"self": {"prefix": "> "}, "query": "hi", "n": 2})
    );
    assert_eq!(c.output(), json!("> hi20"));
    let kids = children(&s.client, c.id());
    assert_eq!(kids.len(), 1);
    assert_eq!(kids[0].func_name(), "fetch");
}

#[test]
fn async_trait_method_returning_result_records_ok_as_output_and_err_as_exception() {
    let s = TestStore::new();
    let tool = Echo { prefix: "".into() };
    let r = current_thread_rt().block_on(
        s.under_root_async(async { (tool.check("12").await, tool.check("twelve").await) }),
    );
    assert_eq!(r.out.0, Ok(12));
    assert!(r.out.1.is_err());
    let [ok, err] = &r.children[..] else {
        panic!("expected 2 children, got {:?}", r.children)
    };
    assert_eq!(ok.func_name(), "Echo.check");
    assert_eq!(ok.output(), json!(12));
    assert_eq!(ok.status(), TraceStatus::Success);
    assert_eq!(err.status(), TraceStatus::Error, "output: {}", err.output());
    let e = err.exception_info().expect("exception");
    assert_eq!(e.r#type, "ParseIntError");
    assert_eq!(e.message, "invalid digit found in string");
}

#[test]
fn capture_call_async_returns_the_call_of_an_async_trait_op() {
    let s = TestStore::new();
    let tool = Echo {
        prefix: "# ".into(),
    };
    let r = multi_thread_rt().block_on(s.under_root_async(async {
        // The call starts at the first poll, inside capture_call_async.
        weave::capture_call_async(tool.check("7")).await
    }));
    let (out, call) = r.out;
    assert_eq!(out, Ok(7));
    let call = call.expect("the async-trait op's call");
    assert_eq!(call.func_name(), "Echo.check");
    assert_eq!(call.parent_id(), Some(r.root.id()));
}

//! A panicking op is recorded as failed with the panic's message, the panic continues to
//! the caller, and the call stack is left as it was (later ops nest under the right parent).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use serde_json::{json, Value};
use weave::TraceStatus;

use crate::common::{current_thread_rt, exception, multi_thread_rt, TestStore};

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

#[weave::op]
fn divide(a: u32, b: u32) -> u32 {
    if b == 0 {
        panic!("cannot divide {a} by zero");
    }
    a / b
}

#[weave::op]
fn after(tag: &str) -> String {
    format!("after {tag}")
}

#[test]
fn panicking_op_fails_with_the_panic_message_and_the_panic_continues() {
    let s = TestStore::new();
    let r = s.under_root(|| catch_unwind(|| divide(7, 0)));
    let payload = r.out.as_ref().expect_err("the panic reaches the caller");
    assert_eq!(panic_text(&**payload), "cannot divide 7 by zero");
    let c = r.only_child();
    assert_eq!(c.func_name(), "divide");
    assert_eq!(c.inputs()["a"], 7);
    assert_eq!(c.status(), TraceStatus::Error);
    assert!(c.ended_at().is_some());
    assert_eq!(c.output(), Value::Null);
    assert_eq!(
        exception(c),
        ("panic".to_string(), "cannot divide 7 by zero".to_string())
    );
}

#[weave::op]
fn static_panic() -> u8 {
    panic!("a static message")
}

#[test]
fn str_panic_payload_message_is_recorded() {
    let s = TestStore::new();
    let r = s.under_root(|| catch_unwind(static_panic));
    assert!(r.out.is_err());
    assert_eq!(
        exception(r.only_child()),
        ("panic".to_string(), "a static message".to_string())
    );
}

#[weave::op]
fn outer_catches(x: u32) -> String {
    let caught = catch_unwind(|| divide(x, 0)).is_err();
    // The panicking op is gone from the stack: this is outer_catches' child.
    format!("{caught} {}", after("inner panic"))
}

#[test]
fn after_a_caught_panic_the_next_op_is_a_child_of_the_right_parent() {
    let s = TestStore::new();
    let r = s.under_root(|| {
        let caught = catch_unwind(|| divide(1, 0)).is_err();
        let current = weave::current_call().map(|c| c.id().to_string());
        (caught, current, after("top-level panic"), outer_catches(3))
    });
    let (caught, current, a, o) = r.out;
    assert!(caught);
    assert_eq!(
        current.as_deref(),
        Some(r.root.id()),
        "root is current again"
    );
    assert_eq!(a, "after top-level panic");
    assert_eq!(o, "true after inner panic");

    let names: Vec<&str> = r.children.iter().map(|c| c.func_name()).collect();
    assert_eq!(names, ["divide", "after", "outer_catches"]);
    assert_eq!(r.children[0].status(), TraceStatus::Error);
    assert_eq!(r.children[1].status(), TraceStatus::Success);
    assert!(s.children(r.children[1].id()).is_empty());

    let outer = &r.children[2];
    assert_eq!(outer.status(), TraceStatus::DescendantError);
    assert_eq!(outer.output(), json!("true after inner panic"));
    let inner = s.children(outer.id());
    let names: Vec<&str> = inner.iter().map(|c| c.func_name()).collect();
    assert_eq!(names, ["divide", "after"]);
    assert_eq!(inner[0].status(), TraceStatus::Error);
    assert!(
        s.children(inner[0].id()).is_empty(),
        "after is not under the panicked op"
    );
}

#[weave::op]
fn level3() -> u32 {
    panic!("deep failure")
}

#[weave::op]
fn level2() -> u32 {
    level3() + 1
}

#[weave::op]
fn level1() -> u32 {
    level2() + 1
}

#[test]
fn a_panic_through_nested_ops_fails_every_op_it_unwinds_through() {
    let s = TestStore::new();
    let r = s.under_root(|| {
        let res = catch_unwind(level1);
        (res.map_err(|p| panic_text(&*p)), after("unwind"))
    });
    assert_eq!(r.out.0, Err("deep failure".to_string()));
    let names: Vec<&str> = r.children.iter().map(|c| c.func_name()).collect();
    assert_eq!(names, ["level1", "after"]);
    let l1 = &r.children[0];
    let l2 = &s.children(l1.id())[0];
    let l3 = &s.children(l2.id())[0];
    for (c, name) in [(l1, "level1"), (l2, "level2"), (l3, "level3")] {
        assert_eq!(c.func_name(), name);
        assert_eq!(c.status(), TraceStatus::Error, "{name}");
        assert!(c.ended_at().is_some(), "{name}");
        assert_eq!(
            exception(c),
            ("panic".to_string(), "deep failure".to_string()),
            "{name}"
        );
    }
}

#[weave::op]
async fn async_boom(n: u32) -> u32 {
    tokio::time::sleep(Duration::from_millis(2)).await;
    if n > 0 {
        panic!("async boom {n}");
    }
    n
}

#[weave::op]
async fn async_after() -> &'static str {
    tokio::task::yield_now().await;
    "fine"
}

#[test]
fn a_panic_in_an_async_op_poll_fails_the_call_and_continues() {
    let s = TestStore::new();
    // Current-thread runtime: the panicking task and the test's future share one thread, so
    // a stack entry left behind by the panic would be seen by the op that runs next.
    let r = current_thread_rt().block_on(s.under_root_async(async {
        let join = weave::spawn(async_boom(5)).await;
        let err = join.expect_err("the task panicked");
        assert!(err.is_panic());
        let msg = panic_text(&*err.into_panic());
        (msg, async_after().await)
    }));
    assert_eq!(r.out, ("async boom 5".to_string(), "fine"));
    let [boom, fine] = &r.children[..] else {
        panic!("expected 2 children, got {:?}", r.children)
    };
    assert_eq!(boom.func_name(), "async_boom");
    assert_eq!(boom.status(), TraceStatus::Error);
    assert!(boom.ended_at().is_some());
    assert_eq!(
        exception(boom),
        ("panic".to_string(), "async boom 5".to_string())
    );
    assert_eq!(fine.func_name(), "async_after");
    assert_eq!(fine.status(), TraceStatus::Success);
    assert!(s.children(boom.id()).is_empty());
}

#[weave::op]
async fn async_parent() -> u32 {
    let h = weave::spawn(async_boom(1));
    let failed = h.await.is_err();
    async_after().await;
    u32::from(failed)
}

#[test]
fn after_an_async_panic_the_awaiting_op_keeps_its_children() {
    let s = TestStore::new();
    let r = multi_thread_rt().block_on(s.under_root_async(async_parent()));
    assert_eq!(r.out, 1);
    let p = r.only_child();
    assert_eq!(p.status(), TraceStatus::DescendantError);
    let names: Vec<String> = s
        .children(p.id())
        .iter()
        .map(|c| c.func_name().to_string())
        .collect();
    assert_eq!(names, ["async_boom", "async_after"]);
}

#[test]
fn a_panic_in_an_op_on_another_thread_is_recorded_there() {
    let s = TestStore::new();
    let r = s.under_root(|| {
        let h = weave::spawn_thread(|| divide(2, 0));
        let res = h.join();
        let msg = res.map_err(|p| panic_text(&*p));
        (msg, after("thread"))
    });
    assert_eq!(r.out.0, Err("cannot divide 2 by zero".to_string()));
    let names: Vec<&str> = r.children.iter().map(|c| c.func_name()).collect();
    assert_eq!(names, ["divide", "after"]);
    assert_eq!(
        exception(&r.children[0]),
        ("panic".to_string(), "cannot divide 2 by zero".to_string())
    );
}

#[test]
fn a_panic_with_a_non_string_payload_is_recorded_with_a_generic_message() {
    #[weave::op]
    fn resume_with_number() -> u8 {
        std::panic::resume_unwind(Box::new(17u32))
    }
    let s = TestStore::new();
    let r = s.under_root(|| catch_unwind(AssertUnwindSafe(resume_with_number)));
    let payload = r.out.as_ref().expect_err("panicked");
    assert_eq!(
        payload.downcast_ref::<u32>(),
        Some(&17),
        "payload unchanged"
    );
    let c = r.only_child();
    assert_eq!(c.status(), TraceStatus::Error);
    assert_eq!(exception(c).0, "panic");
}

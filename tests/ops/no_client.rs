//! With no process-wide client and no enclosing call, an op is a plain function call: same
//! results, errors and panics, nothing recorded anywhere.
//!
//! Every test holds the GLOBAL lock (the process-wide client is None while it is held).

use std::panic::catch_unwind;

use crate::common::{current_thread_rt, roots, GlobalLock, TestStore};

#[weave::op]
fn leaf(x: u32) -> u32 {
    x + 1
}

#[weave::op]
fn tree(x: u32) -> (u32, bool) {
    (leaf(x) * 2, weave::current_call().is_some())
}

#[weave::op]
async fn fetch(x: u32) -> u32 {
    tokio::task::yield_now().await;
    leaf(x)
}

#[weave::op]
fn parse(s: &str) -> Result<u32, std::num::ParseIntError> {
    s.parse()
}

#[weave::op]
fn explode(msg: &str) -> u32 {
    panic!("{msg}")
}

struct Opaque(u32);

#[weave::op(sample_rate = 0.5, kind = "tool", display_name = "Opaque op")]
fn opaque(o: Opaque) -> Opaque {
    Opaque(o.0 * 3)
}

/// Runs every kind of op and checks what it returns.
fn run_everything() {
    assert_eq!(tree(1), (4, false));
    assert_eq!(current_thread_rt().block_on(fetch(2)), 3);
    assert_eq!(parse("7"), Ok(7));
    assert_eq!(parse("x"), Err("x".parse::<u32>().unwrap_err()));
    let payload = catch_unwind(|| explode("plain panic")).unwrap_err();
    assert_eq!(payload.downcast_ref::<String>().unwrap(), "plain panic");
    assert_eq!(opaque(Opaque(5)).0, 15);
    assert!(weave::current_call().is_none());
    assert!(!weave::is_suppressed());
}

#[test]
fn with_no_client_ops_are_plain_function_calls_and_nothing_is_stored() {
    let g = GlobalLock::acquire();
    let s = TestStore::new();

    // With the client set, the same ops are recorded (so the check below can fail).
    g.set(&s.client);
    assert_eq!(tree(1).0, 4);
    let traced = s.count();
    assert_eq!(traced, 2);

    g.clear();
    assert!(weave::global_client().is_none());
    run_everything();
    assert_eq!(s.count(), traced, "nothing more was stored");
}

#[test]
fn after_finish_ops_are_plain_function_calls_again() {
    let g = GlobalLock::acquire();
    let s = TestStore::new();
    g.set(&s.client);
    assert_eq!(leaf(1), 2);
    weave::finish();
    assert!(weave::global_client().is_none());
    // finish() flushed: the traced call is in the store.
    assert_eq!(roots(&s.client).len(), 1);
    run_everything();
    assert_eq!(s.count(), 1);
}

#[test]
fn ops_on_other_threads_and_tasks_are_plain_too() {
    let _g = GlobalLock::acquire();
    let from_thread = std::thread::spawn(|| tree(10)).join().unwrap();
    assert_eq!(from_thread, (22, false));
    let from_task = current_thread_rt().block_on(async {
        let a = tokio::spawn(fetch(1)).await.unwrap();
        let b = weave::spawn(fetch(2)).await.unwrap();
        (a, b)
    });
    assert_eq!(from_task, (2, 3));
}

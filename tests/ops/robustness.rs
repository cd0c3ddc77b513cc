//! Tracing never breaks the traced program: user functions handed to the SDK that panic
//! (postprocessing, display names) are caught and recorded, and ops keep working where
//! thread-locals are being torn down.

use serde_json::{json, Value};
use weave::{JsonMap, TraceStatus};

use crate::common::{GlobalLock, TestStore};

fn exploding_inputs(_: JsonMap) -> JsonMap {
    panic!("postprocess_inputs exploded")
}

fn exploding_output(_: Value) -> Value {
    panic!("postprocess_output exploded")
}

fn exploding_name(_: &weave::Call) -> String {
    panic!("display name exploded")
}

#[weave::op(postprocess_inputs = exploding_inputs)]
fn bad_inputs(n: u32) -> u32 {
    n + 1
}

#[weave::op(postprocess_output = exploding_output)]
fn bad_output(n: u32) -> u32 {
    n + 2
}

#[weave::op(display_name = exploding_name)]
fn bad_name(n: u32) -> u32 {
    n + 3
}

#[test]
fn a_panicking_postprocess_inputs_is_recorded_and_the_op_runs() {
    let s = TestStore::new();
    let r = s.under_root(|| bad_inputs(1));
    assert_eq!(r.out, 2);
    let c = r.only_child();
    assert_eq!(c.output(), json!(2));
    let err = c.inputs()["_weave_capture_error"].as_str().unwrap();
    assert!(err.contains("postprocess_inputs exploded"), "{err}");
}

#[test]
fn a_panicking_postprocess_output_is_recorded_and_the_call_ends() {
    let s = TestStore::new();
    let r = s.under_root(|| bad_output(1));
    assert_eq!(r.out, 3);
    let c = r.only_child();
    assert!(c.ended_at().is_some(), "the call must not stay running");
    assert_eq!(c.status(), TraceStatus::Success);
    let out = c.output();
    assert!(
        out.as_str()
            .unwrap()
            .contains("postprocess_output exploded"),
        "{out}"
    );
}

#[test]
fn a_panicking_display_name_function_leaves_the_call_unnamed() {
    let s = TestStore::new();
    let r = s.under_root(|| bad_name(1));
    assert_eq!(r.out, 4);
    let c = r.only_child();
    assert_eq!(c.display_name(), None);
    assert_eq!(c.output(), json!(4));
}

#[weave::op]
fn from_a_destructor(n: u32) -> u32 {
    n * 2
}

struct CallsAnOpOnDrop(std::sync::mpsc::Sender<u32>);
impl Drop for CallsAnOpOnDrop {
    fn drop(&mut self) {
        let _ = self.0.send(from_a_destructor(21));
    }
}

thread_local! {
    static ON_EXIT: std::cell::RefCell<Option<CallsAnOpOnDrop>> = const { std::cell::RefCell::new(None) };
}

#[test]
fn an_op_called_from_a_thread_local_destructor_runs() {
    let g = GlobalLock::acquire();
    let s = TestStore::new();
    g.set(&s.client);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Registered after weave's own thread-locals may already be gone at exit.
        ON_EXIT.with(|slot| *slot.borrow_mut() = Some(CallsAnOpOnDrop(tx)));
        let _ = from_a_destructor(1);
    })
    .join()
    .expect("the thread exits cleanly");
    assert_eq!(rx.recv().unwrap(), 42);
}

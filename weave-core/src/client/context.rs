//! The runtime call stack: which call is *current* on this thread.
//!
//! There is exactly one stack. [`WeaveClient::create_call`](crate::WeaveClient::create_call)
//! with `use_stack` pushes the new call and finishing it pops it; the `tracing` layer pushes a
//! call span's call when the span is entered and pops it when the span is exited, so
//! `#[weave::op]` functions, `tracing` spans and direct `create_call` nest in any order and a
//! call created without an explicit parent becomes a child of the nearest enclosing call.
//!
//! Finishing a call on another thread than the one it was pushed on is allowed: entries of
//! finished calls are skipped (and dropped) when the stack is read, so they can never become
//! anybody's parent.

use std::cell::{Cell, RefCell};

use super::call::Call;

thread_local! {
    static STACK: RefCell<Vec<Call>> = const { RefCell::new(Vec::new()) };
    static INTERNAL: Cell<bool> = const { Cell::new(false) };
}

/// The current call on this thread: the innermost call on the stack that has not finished.
///
/// # Examples
///
/// ```
/// # let client = weave_core::WeaveClient::new("e", "p", std::sync::Arc::new(weave_core::SqliteServer::in_memory().unwrap()), false).unwrap();
/// assert!(weave_core::current_call().is_none());
/// let call = client.create_call("agent", serde_json::json!({})).unwrap();
/// assert_eq!(weave_core::current_call().unwrap().id(), call.id());
/// client.finish_call(&call, "done").unwrap();
/// assert!(weave_core::current_call().is_none());
/// ```
pub fn current_call() -> Option<Call> {
    STACK
        .try_with(|s| {
            let mut s = s.try_borrow_mut().ok()?;
            while let Some(top) = s.last() {
                if top.is_finished() {
                    s.pop();
                } else {
                    return Some(top.clone());
                }
            }
            None
        })
        .ok()
        .flatten()
}

/// Makes `call` the current call on this thread until [`pop_call`] is called with it.
pub fn push_call(call: Call) {
    let _ = STACK.try_with(|s| {
        if let Ok(mut s) = s.try_borrow_mut() {
            s.push(call);
        }
    });
}

/// Removes the innermost stack entry of `call` on this thread (if any). Entries above it, if
/// they were left by unbalanced use, are removed with it.
pub fn pop_call(call: &Call) {
    let _ = STACK.try_with(|s| {
        if let Ok(mut s) = s.try_borrow_mut() {
            if let Some(i) = s.iter().rposition(|c| c.same_call(call)) {
                s.truncate(i);
            }
        }
    });
}

/// Runs `f` with `call` as the current call on this thread (for handing a call to another
/// thread or task: capture [`current_call`] there, then run the work inside `with_call`).
///
/// # Examples
///
/// ```
/// # let client = weave_core::WeaveClient::new("e", "p", std::sync::Arc::new(weave_core::SqliteServer::in_memory().unwrap()), false).unwrap();
/// let root = client.create_call("root", serde_json::json!({})).unwrap();
/// let parent = weave_core::current_call();
/// let c2 = client.clone();
/// std::thread::spawn(move || {
///     weave_core::with_call(parent.as_ref(), || {
///         let child = c2.create_call("worker", serde_json::json!({})).unwrap();
///         c2.finish_call(&child, ()).unwrap();
///     })
/// }).join().unwrap();
/// client.finish_call(&root, ()).unwrap();
/// # assert_eq!(client.get_calls(weave_core::CallsFilter { parent_ids: Some(vec![root.id().to_string()]), ..Default::default() }).count(), 1);
/// ```
pub fn with_call<R>(call: Option<&Call>, f: impl FnOnce() -> R) -> R {
    struct Pop(Option<Call>);
    impl Drop for Pop {
        fn drop(&mut self) {
            if let Some(c) = &self.0 {
                pop_call(c);
            }
        }
    }
    let guard = Pop(call.cloned());
    if let Some(c) = &guard.0 {
        push_call(c.clone());
    }
    f()
}

/// Whether this thread does weave's own work (the background writer, a backend's I/O).
/// The tracing layer ignores every span and event on such threads, so the SDK never traces
/// itself.
pub fn is_internal_thread() -> bool {
    INTERNAL.try_with(Cell::get).unwrap_or(false)
}

/// Marks the current thread as weave-internal (see [`is_internal_thread`]).
pub fn mark_internal_thread() {
    let _ = INTERNAL.try_with(|c| c.set(true));
}

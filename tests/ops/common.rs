//! Shared fixtures: a client on a fresh SQLite file and an explicit root call to run ops
//! under (the testkit's `TestStore`, embedded outside `#[backends]`), and the binary-wide
//! lock for tests that need the process-wide client.
#![allow(dead_code)]

use std::sync::{Mutex, MutexGuard};

use weave::{Call, CallsFilter, WeaveClient};

pub use weave_testkit::{calls, children, TestStore};

/// The trace roots in the store.
pub fn roots(client: &WeaveClient) -> Vec<Call> {
    calls(
        client,
        CallsFilter {
            trace_roots_only: Some(true),
            ..Default::default()
        },
    )
}

/// The parsed exception of a stored call: (type, message).
pub fn exception(call: &Call) -> (String, String) {
    let e = call
        .exception_info()
        .unwrap_or_else(|| panic!("call {} ({}) has no exception", call.id(), call.func_name()));
    (e.r#type, e.message)
}

// ---------------------------------------------------------------------------------------
// The process-wide client

/// Held by every test that reads or sets the process-wide client.
static GLOBAL: Mutex<()> = Mutex::new(());

/// The binary-wide lock on the process-wide client (poison-tolerant). While held, the
/// process-wide client is `None` unless the holder sets one; it is cleared again when the
/// guard is dropped, even if the test panics.
pub struct GlobalLock {
    _guard: MutexGuard<'static, ()>,
}

impl GlobalLock {
    pub fn acquire() -> Self {
        let guard = GLOBAL.lock().unwrap_or_else(|e| e.into_inner());
        weave::set_global_client(None);
        GlobalLock { _guard: guard }
    }

    /// Makes `client` the process-wide client until the lock is dropped.
    pub fn set(&self, client: &WeaveClient) {
        weave::set_global_client(Some(client.clone()));
    }

    /// Clears the process-wide client.
    pub fn clear(&self) {
        weave::set_global_client(None);
    }
}

impl Drop for GlobalLock {
    fn drop(&mut self) {
        weave::set_global_client(None);
    }
}

/// A tokio runtime with a single thread (the test thread).
pub fn current_thread_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// A tokio runtime with worker threads.
pub fn multi_thread_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

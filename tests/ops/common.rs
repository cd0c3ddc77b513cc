//! Shared fixtures: a client on a fresh SQLite file, an explicit root call to run ops under,
//! and the binary-wide lock for tests that need the process-wide client.
#![allow(dead_code)]

use std::future::Future;
use std::sync::{Mutex, MutexGuard};

use serde_json::json;
use weave::{Call, CallOptions, CallsFilter, CallsQuery, Context, WeaveClient};

#[path = "../support/store.rs"]
mod store;
pub use store::{calls, Suite, TestStore};

impl TestStore {
    /// Every call in the store, oldest first.
    pub fn all_calls(&self) -> Vec<Call> {
        calls(&self.client, CallsQuery::new())
    }

    /// How many calls the store holds.
    pub fn count(&self) -> usize {
        self.all_calls().len()
    }

    /// The call read back from the store.
    pub fn get(&self, id: &str) -> Call {
        self.client.get_call(id).expect("get_call")
    }

    /// The direct children of `id`, read back from the store, oldest first.
    pub fn children(&self, id: &str) -> Vec<Call> {
        children(&self.client, id)
    }

    /// Runs `f` under an explicit root call `test_root` (so every op in it records to this
    /// store, whatever the process-wide client is), finishes the root and returns `f`'s
    /// result, the root as stored, and its direct children as stored (oldest first).
    pub fn under_root<R>(&self, f: impl FnOnce() -> R) -> Rooted<R> {
        let root = self.start_root();
        let out = weave::with_call(Some(&root), f);
        self.finish_root(root, out)
    }

    /// [`TestStore::under_root`] for a future: every poll of it runs under the root, on
    /// whichever thread polls it.
    pub async fn under_root_async<F: Future>(&self, fut: F) -> Rooted<F::Output> {
        let root = self.start_root();
        let ctx = weave::with_call(Some(&root), Context::current);
        let out = ctx.wrap(fut).await;
        self.finish_root(root, out)
    }

    fn start_root(&self) -> Call {
        self.client
            .create_call_with("test_root", json!({}), CallOptions::new().use_stack(false))
            .expect("create root")
    }

    fn finish_root<R>(&self, root: Call, out: R) -> Rooted<R> {
        self.client.finish_call(&root, ()).expect("finish root");
        let stored = self.get(root.id());
        let children = self.children(root.id());
        Rooted {
            out,
            root: stored,
            children,
        }
    }
}

/// What [`TestStore::under_root`] returns.
pub struct Rooted<R> {
    /// What the closure / future returned.
    pub out: R,
    /// The root call as stored.
    pub root: Call,
    /// The root's direct children as stored, oldest first.
    pub children: Vec<Call>,
}

impl<R> Rooted<R> {
    /// The only child of the root (panics unless there is exactly one).
    pub fn only_child(&self) -> &Call {
        assert_eq!(
            self.children.len(),
            1,
            "expected one child, got {:?}",
            self.children
        );
        &self.children[0]
    }
}

/// The direct children of `id`, oldest first.
pub fn children(client: &WeaveClient, id: &str) -> Vec<Call> {
    calls(
        client,
        CallsFilter {
            parent_ids: Some(vec![id.to_string()]),
            ..Default::default()
        },
    )
}

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

//! Shared fixtures: a temporary SQLite store with its client, the binary-wide lock on
//! process-global state, the once-installed global subscriber, trace-tree helpers, and
//! child-process runs for environment-driven behaviour.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, Once};

use tracing::Level;
use tracing_subscriber::layer::SubscriberExt;
use weave::{Call, CallsFilter, CallsQuery, WeaveClient, WeaveLayer};

pub use weave_testkit::{calls, TestStore};

// ---------------------------------------------------------------------------------------
// Process-global state

/// Held by every test that touches the process-wide client (root ops, root spans through the
/// global subscriber, `set_global_client`).
pub static GLOBAL: Mutex<()> = Mutex::new(());

pub fn global_lock() -> MutexGuard<'static, ()> {
    GLOBAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Holds [`GLOBAL`] with `client` as the process-wide client; clears it when dropped (also
/// when the test panics).
pub struct GlobalClient {
    _lock: MutexGuard<'static, ()>,
}

impl GlobalClient {
    pub fn set(client: &WeaveClient) -> Self {
        let lock = global_lock();
        weave::set_global_client(Some(client.clone()));
        GlobalClient { _lock: lock }
    }
}

impl Drop for GlobalClient {
    fn drop(&mut self) {
        weave::set_global_client(None);
    }
}

/// Installs, once for the whole binary, the global default subscriber: a registry with
/// `weave::layer()` recording every level (the most permissive layer: tests that check the
/// default level use a thread-local subscriber of their own). Tests on multi-threaded
/// runtimes and other threads rely on it; each isolates itself with an explicit root call
/// from its own client (children use their parent's client).
pub fn install_global_subscriber() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let subscriber =
            tracing_subscriber::registry().with(weave::layer().with_max_level(Level::TRACE));
        tracing::subscriber::set_global_default(subscriber)
            .expect("no other global subscriber in this binary");
    });
}

/// Runs `f` with a thread-local subscriber whose layer records root spans with `client` (the
/// default level, INFO).
pub fn with_layer<R>(client: &WeaveClient, f: impl FnOnce() -> R) -> R {
    tracing::subscriber::with_default(
        tracing_subscriber::registry().with(WeaveLayer::with_client(client.clone())),
        f,
    )
}

/// [`with_layer`] recording up to `level`.
pub fn with_layer_level<R>(client: &WeaveClient, level: Level, f: impl FnOnce() -> R) -> R {
    tracing::subscriber::with_default(
        tracing_subscriber::registry()
            .with(WeaveLayer::with_client(client.clone()).with_max_level(level)),
        f,
    )
}

// ---------------------------------------------------------------------------------------
// Reading calls back

/// Every call of the store, collected.
pub fn all_calls(client: &WeaveClient) -> Vec<Call> {
    calls(client, CallsQuery::new())
}

/// The names (`func_name`) of calls, sorted.
pub fn sorted_names(calls: &[Call]) -> Vec<String> {
    let mut v: Vec<String> = calls.iter().map(|c| c.func_name().to_string()).collect();
    v.sort();
    v
}

/// One trace read back: its calls by id and a parent → children map (children in start
/// order).
pub struct Tree {
    pub calls: HashMap<String, Call>,
    pub children: HashMap<String, Vec<String>>,
    pub roots: Vec<String>,
}

impl Tree {
    /// The trace `trace_id`.
    pub fn of_trace(client: &WeaveClient, trace_id: &str) -> Tree {
        let calls = calls(
            client,
            CallsFilter {
                trace_ids: Some(vec![trace_id.to_string()]),
                ..Default::default()
            },
        );
        Tree::from_calls(calls)
    }

    /// The trace of the call `id`.
    pub fn of_call(client: &WeaveClient, id: &str) -> Tree {
        let call = client.get_call(id).expect("call");
        Tree::of_trace(client, call.trace_id())
    }

    pub fn from_calls(mut list: Vec<Call>) -> Tree {
        list.sort_by_key(|c| c.started_at());
        let mut children: HashMap<String, Vec<String>> = HashMap::new();
        let mut roots = Vec::new();
        for c in &list {
            match c.parent_id() {
                Some(p) => children
                    .entry(p.to_string())
                    .or_default()
                    .push(c.id().to_string()),
                None => roots.push(c.id().to_string()),
            }
        }
        let calls = list.into_iter().map(|c| (c.id().to_string(), c)).collect();
        Tree {
            calls,
            children,
            roots,
        }
    }

    pub fn call(&self, id: &str) -> &Call {
        &self.calls[id]
    }

    /// The children of `id`, in start order.
    pub fn kids(&self, id: &str) -> Vec<&Call> {
        self.children
            .get(id)
            .map(|v| v.iter().map(|k| &self.calls[k]).collect())
            .unwrap_or_default()
    }

    /// The names of the children of `id`, in start order.
    pub fn kid_names(&self, id: &str) -> Vec<String> {
        self.kids(id)
            .iter()
            .map(|c| c.func_name().to_string())
            .collect()
    }

    /// The only child of `id` (panics unless there is exactly one).
    pub fn only_kid(&self, id: &str) -> &Call {
        let kids = self.kids(id);
        assert_eq!(
            kids.len(),
            1,
            "expected one child of {}, got {:?}",
            self.calls[id].func_name(),
            self.kid_names(id)
        );
        kids[0]
    }

    /// An indented outline `name` per line, for failure messages.
    pub fn outline(&self) -> String {
        fn go(t: &Tree, id: &str, depth: usize, out: &mut String) {
            out.push_str(&format!(
                "{}{}\n",
                "  ".repeat(depth),
                t.calls[id].func_name()
            ));
            for k in t.children.get(id).into_iter().flatten() {
                go(t, k, depth + 1, out);
            }
        }
        let mut out = String::new();
        for r in &self.roots {
            go(self, r, 0, &mut out);
        }
        out
    }
}

// ---------------------------------------------------------------------------------------
// Child processes

pub use weave_testkit::child::{child_done, run_child};

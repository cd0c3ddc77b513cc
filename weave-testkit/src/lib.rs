//! The fixtures weave-rs's tests and benchmarks share (a crate of the workspace, not
//! published; a dev-dependency of the packages whose tests use it).
//!
//! - [`TestStore`]: a client on a fresh store of one [`Suite`] (backend): the embedded SQLite
//!   store, the reference Weave trace server, or `weave serve`; [`calls`] reads calls back.
//! - [`backends`]: the attribute that runs one test function on every backend (or on those
//!   it names), as one `#[test]` per backend: `module::test_name::embedded`, `…::reference`,
//!   `…::served`. `cargo test --test it served` runs one backend.
//! - [`RefServer`] (the reference server, forked from a pre-imported Python process) and
//!   [`venv`] (the tests' pinned Python environments, installed on first use).
//! - [`child`]: re-running the test binary for one test with variables set.
//! - [`fault_proxy`]: a fault-injecting HTTP proxy.
//! - [`Rng`]: a small seeded generator, so that a failing random input can be made again.
//!
//! Which backend [`TestStore::new`] uses: inside [`run_on`] (every test `#[backends]`
//! generates runs its function in it), that call's suite; outside it, in a plain `#[test]`,
//! the embedded store ([`suite`]). Test binaries that only know the embedded store (ops,
//! layer) simply use plain `#[test]`s.

#![warn(missing_docs)]

use std::cell::Cell;
use std::path::PathBuf;

pub mod child;
pub mod fault_proxy;
pub mod ref_server;
mod rng;
mod store;
pub mod venv;

pub use ref_server::RefServer;
pub use rng::Rng;
pub use store::{calls, children, Rooted, Suite, TestStore};

/// Runs the function on each backend: on `fn name() { … }` it keeps the function (without
/// `#[test]`) and adds a sibling module `name` with one `#[test]` per backend, `embedded`,
/// `reference` and `served`, each calling [`run_on`] with its [`Suite`] and the function.
///
/// `#[backends(embedded, served)]` restricts it to the backends named. The test-harness
/// attributes of the function (`#[ignore]`, `#[should_panic]`) go onto each generated test;
/// `#[cfg]` onto the function and the module; every other attribute stays on the function.
///
/// ```ignore
/// use weave_testkit::{backends, TestStore};
///
/// #[backends]
/// fn reactions_round_trip() {
///     let s = TestStore::new(); // the embedded store, the reference server, weave serve
///     // …
/// }
/// // cargo test --test it reactions_round_trip::served
/// ```
pub use weave_testkit_macros::backends;

thread_local! {
    /// The suite [`run_on`] set on this thread.
    static CURRENT: Cell<Option<Suite>> = const { Cell::new(None) };
}

/// Runs `test` with `suite` as this thread's current suite (so that [`TestStore::new`] and
/// [`TestStore::with_project`] open a store of that backend), and returns what it returns.
/// The previous suite is restored afterwards, also when `test` panics. Threads that `test`
/// spawns do not inherit the suite: create the store on the test's own thread.
pub fn run_on<T>(suite: Suite, test: impl FnOnce() -> T) -> T {
    struct Restore(Option<Suite>);
    impl Drop for Restore {
        fn drop(&mut self) {
            CURRENT.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(CURRENT.with(|c| c.replace(Some(suite))));
    test()
}

/// The suite [`run_on`] set on this thread, if any.
pub fn current_suite() -> Option<Suite> {
    CURRENT.with(Cell::get)
}

/// The suite [`TestStore::new`] uses on this thread: [`current_suite`], else (outside
/// [`run_on`], in a plain `#[test]`) [`Suite::Embedded`].
pub fn suite() -> Suite {
    current_suite().unwrap_or(Suite::Embedded)
}

/// The workspace's root directory (this crate's parent), for the files the fixtures share:
/// `tests/support/python/`, `tests/data/`.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("weave-testkit lies in the workspace root")
        .to_path_buf()
}

//! What the benchmarks share (a module directory, so cargo does not take it for a benchmark).

#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;

use weave::config::Settings;
use weave::{Backend, InitOptions, SqliteServer, WeaveClient};

/// `WEAVE_BENCH_QUICK=1`: few samples, small sizes (CI proves the benchmarks still run).
pub fn quick() -> bool {
    std::env::var("WEAVE_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// `weave::init_with` on a store file at `path`, writing into `project`, with `settings`
/// and no subscriber installed.
pub fn init_store(
    project: &str,
    path: &Path,
    settings: Settings,
) -> (WeaveClient, weave::WeaveGuard) {
    let server = SqliteServer::open(path).unwrap();
    weave::init_with(
        project,
        InitOptions::default()
            .with_backend(Backend::Server(Arc::new(server)))
            .with_install_subscriber(false)
            .with_settings(settings),
    )
    .unwrap()
}

//! The fixture every test binary shares (included with `#[path]`): a client on a fresh store,
//! and reading calls back.
//!
//! The store is a fresh SQLite file in a temporary directory, or — in the suites that hold
//! the remote backend to the same behaviour (the binary's `crate::REMOTE_SUITE` is true) — a
//! fresh reference Weave trace server of the test's own, reached over HTTP.

use std::sync::Arc;

use weave::server::{HttpServer, HttpServerConfig};
use weave::{Call, CallsQuery, SqliteServer, TraceServer, WeaveClient};

#[path = "ref_server.rs"]
mod ref_server;
#[allow(unused_imports)]
pub use ref_server::RefServer;

/// A client on a fresh store (kept alive by the struct).
pub struct TestStore {
    pub client: WeaveClient,
    /// The backend, to send it requests directly.
    pub server: Arc<dyn TraceServer>,
    pub dir: tempfile::TempDir,
    /// The reference server, in the remote suites.
    pub remote: Option<RefServer>,
}

impl TestStore {
    /// A store with the project `test-entity/test-project`.
    pub fn new() -> Self {
        Self::with_project("test-entity", "test-project")
    }

    /// A store with the project `entity/project`, of this suite's kind.
    pub fn with_project(entity: &str, project: &str) -> Self {
        if crate::REMOTE_SUITE {
            Self::remote(entity, project)
        } else {
            Self::embedded(entity, project)
        }
    }

    /// A fresh SQLite file.
    pub fn embedded(entity: &str, project: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = SqliteServer::open(dir.path().join("weave.sqlite")).expect("open store");
        Self::on(Arc::new(server), entity, project, dir, None)
    }

    /// A fresh reference server.
    pub fn remote(entity: &str, project: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let rs = RefServer::fresh();
        let http = HttpServer::new(HttpServerConfig::new(&rs.url)).expect("http server");
        Self::on(Arc::new(http), entity, project, dir, Some(rs))
    }

    fn on(
        server: Arc<dyn TraceServer>,
        entity: &str,
        project: &str,
        dir: tempfile::TempDir,
        remote: Option<RefServer>,
    ) -> Self {
        let client = WeaveClient::new(entity, project, server.clone(), true).expect("client");
        TestStore {
            client,
            server,
            dir,
            remote,
        }
    }

    /// Whether the store is a reference server.
    pub fn is_remote(&self) -> bool {
        self.remote.is_some()
    }

    /// The embedded store's file.
    pub fn path(&self) -> std::path::PathBuf {
        assert!(
            !self.is_remote(),
            "path(): only the embedded store has a file"
        );
        self.dir.path().join("weave.sqlite")
    }
}

/// Every call matching `q`, collected (panics on a query error).
pub fn calls(client: &WeaveClient, q: impl Into<CallsQuery>) -> Vec<Call> {
    client
        .get_calls(q)
        .collect::<Result<Vec<_>, _>>()
        .expect("query")
}

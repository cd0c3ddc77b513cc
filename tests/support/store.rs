//! The fixture every test binary shares (included with `#[path]`): a client on a fresh store,
//! and reading calls back.
//!
//! The binary's `crate::SUITE` says which store: a fresh SQLite file in a temporary directory
//! ([`Suite::Embedded`]); or, in the suites that hold the remote backend to the same
//! behaviour, a fresh reference Weave trace server of the test's own ([`Suite::Reference`]),
//! or a fresh `weave serve` over a SQLite file ([`Suite::Served`]), both reached over HTTP.

use std::sync::Arc;

use weave::server::{RemoteServer, RemoteServerConfig};
use weave::{Call, CallsQuery, SqliteServer, TraceServer, WeaveClient};

#[path = "ref_server.rs"]
mod ref_server;
#[allow(unused_imports)]
pub use ref_server::RefServer;

/// Which store a suite's tests run against.
#[allow(dead_code)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suite {
    /// A SQLite file, written in-process.
    Embedded,
    /// The reference Weave trace server (the weave package's own server code), over HTTP.
    Reference,
    /// `weave serve` (this repository's server) over a SQLite file, over HTTP.
    Served,
}

/// A client on a fresh store (kept alive by the struct).
pub struct TestStore {
    pub client: WeaveClient,
    /// The backend, to send it requests directly.
    pub server: Arc<dyn TraceServer>,
    pub dir: tempfile::TempDir,
    /// The reference server, in the reference suites.
    pub remote: Option<RefServer>,
    /// The `weave serve` server, in the served suites.
    pub served: Option<weave_server::BackgroundServer>,
}

impl TestStore {
    /// A store with the project `test-entity/test-project`.
    pub fn new() -> Self {
        Self::with_project("test-entity", "test-project")
    }

    /// A store with the project `entity/project`, of this suite's kind.
    pub fn with_project(entity: &str, project: &str) -> Self {
        match crate::SUITE {
            Suite::Embedded => Self::embedded(entity, project),
            Suite::Reference => Self::remote(entity, project),
            Suite::Served => Self::served(entity, project),
        }
    }

    /// A fresh SQLite file.
    pub fn embedded(entity: &str, project: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = SqliteServer::open(dir.path().join("weave.sqlite")).expect("open store");
        Self::on(Arc::new(server), entity, project, dir, None, None)
    }

    /// A fresh reference server.
    pub fn remote(entity: &str, project: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let rs = RefServer::fresh();
        let http = RemoteServer::new(RemoteServerConfig::new(&rs.url)).expect("http server");
        Self::on(Arc::new(http), entity, project, dir, Some(rs), None)
    }

    /// A fresh `weave serve` on a free loopback port, over a fresh SQLite file.
    pub fn served(entity: &str, project: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteServer::open(dir.path().join("weave.sqlite")).expect("open store");
        let served = weave_server::BackgroundServer::start(
            Arc::new(store),
            weave_server::ServeOptions::default().with_port(0),
        )
        .expect("start weave serve");
        let http = RemoteServer::new(RemoteServerConfig::new(served.url())).expect("http server");
        Self::on(Arc::new(http), entity, project, dir, None, Some(served))
    }

    fn on(
        server: Arc<dyn TraceServer>,
        entity: &str,
        project: &str,
        dir: tempfile::TempDir,
        remote: Option<RefServer>,
        served: Option<weave_server::BackgroundServer>,
    ) -> Self {
        let client = WeaveClient::new(entity, project, server.clone(), true).expect("client");
        TestStore {
            client,
            server,
            dir,
            remote,
            served,
        }
    }

    /// Whether the store is the reference server (whose answers differ from the embedded
    /// store's where the tests say `Reference server:`).
    pub fn is_reference(&self) -> bool {
        self.remote.is_some()
    }

    /// Whether the client reaches its store over HTTP (the remote backend: the reference
    /// server or `weave serve`).
    pub fn over_http(&self) -> bool {
        self.remote.is_some() || self.served.is_some()
    }

    /// The SQLite file of the store (the embedded store's, or the one `weave serve` serves).
    pub fn path(&self) -> std::path::PathBuf {
        assert!(
            !self.is_reference(),
            "path(): the reference server's file is not a weave-rs store"
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

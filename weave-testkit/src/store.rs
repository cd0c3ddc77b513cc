//! The fixture every test binary shares: a client on a fresh store, and reading calls back.
//!
//! The current suite ([`crate::suite`]: the one [`crate::run_on`] set, else the embedded
//! store) says which store: a fresh SQLite file in a temporary directory
//! ([`Suite::Embedded`]); or, to hold the remote backend to the same behaviour, a fresh
//! reference Weave trace server of the test's own ([`Suite::Reference`]), or a fresh
//! `weave serve` over a SQLite file ([`Suite::Served`]), both reached over HTTP.

use std::future::Future;
use std::sync::Arc;

use serde_json::json;
use weave::server::{RemoteServer, RemoteServerConfig};
use weave::{
    Call, CallOptions, CallsFilter, CallsQuery, Context, SqliteServer, TraceServer, WeaveClient,
};

use crate::RefServer;

/// Which store a test runs against (its backend).
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
    /// The client, writing into the project the store was made with.
    pub client: WeaveClient,
    /// The backend, to send it requests directly.
    pub server: Arc<dyn TraceServer>,
    /// A temporary directory of the store's own (the SQLite file's, in the embedded and
    /// served suites).
    pub dir: tempfile::TempDir,
    /// The reference server, in the reference suites.
    pub remote: Option<RefServer>,
    /// The `weave serve` server, in the served suites.
    pub served: Option<weave_server::BackgroundServer>,
}

impl TestStore {
    /// A store with the project `test-entity/test-project`, of the current suite
    /// ([`crate::suite`]: the one [`crate::run_on`] set, else the embedded store).
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        Self::with_project("test-entity", "test-project")
    }

    /// A store with the project `entity/project`, of the current suite ([`crate::suite`]).
    pub fn with_project(entity: &str, project: &str) -> Self {
        Self::of(crate::suite(), entity, project)
    }

    /// A store of `suite` with the project `entity/project`.
    pub fn of(suite: Suite, entity: &str, project: &str) -> Self {
        match suite {
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

// ---------------------------------------------------------------------------------------
// Reading back, and running ops under an explicit root

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

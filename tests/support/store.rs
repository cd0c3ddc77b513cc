//! The fixture every test binary shares (included with `#[path]`): a client on a fresh
//! SQLite file in a temporary directory, and reading calls back.

use std::sync::Arc;

use weave::{Call, CallsQuery, SqliteServer, WeaveClient};

/// A client on a fresh SQLite file in a temporary directory (kept alive by the struct).
pub struct TestStore {
    pub client: WeaveClient,
    pub server: SqliteServer,
    pub dir: tempfile::TempDir,
}

impl TestStore {
    /// A store with the project `test-entity/test-project`.
    pub fn new() -> Self {
        Self::with_project("test-entity", "test-project")
    }

    /// A store with the project `entity/project`.
    pub fn with_project(entity: &str, project: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = SqliteServer::open(dir.path().join("weave.sqlite")).expect("open store");
        let client =
            WeaveClient::new(entity, project, Arc::new(server.clone()), true).expect("client");
        TestStore {
            client,
            server,
            dir,
        }
    }

    /// The store's file.
    pub fn path(&self) -> std::path::PathBuf {
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

//! Shared fixtures.
#![allow(dead_code)]

use std::sync::Arc;

use serde_json::Value;
use weave::{Call, CallsQuery, SqliteServer, WeaveClient};

/// A client on a fresh SQLite file in a temporary directory (kept alive by the returned guard).
pub struct TestStore {
    pub client: WeaveClient,
    pub server: SqliteServer,
    pub dir: tempfile::TempDir,
}

impl TestStore {
    pub fn new() -> Self {
        Self::with_project("test-entity", "test-project")
    }

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

/// The ids of the calls matching `q`, in order.
pub fn ids(client: &WeaveClient, q: impl Into<CallsQuery>) -> Vec<String> {
    calls(client, q)
        .iter()
        .map(|c| c.id().to_string())
        .collect()
}

/// Records a finished call of `op` with `inputs` and `output`, as a trace root.
pub fn record(client: &WeaveClient, op: &str, inputs: Value, output: Value) -> Call {
    let call = client
        .create_call_with(op, inputs, weave::CallOptions::new().use_stack(false))
        .expect("create");
    client.finish_call(&call, output).expect("finish");
    call
}

/// The fields of `CallSchema`, as PROTOCOL §2 names them.
pub const CALL_SCHEMA_FIELDS: &[&str] = &[
    "id",
    "project_id",
    "op_name",
    "display_name",
    "trace_id",
    "parent_id",
    "thread_id",
    "turn_id",
    "started_at",
    "attributes",
    "inputs",
    "ended_at",
    "exception",
    "output",
    "summary",
    "wb_user_id",
    "wb_run_id",
    "wb_run_step",
    "wb_run_step_end",
    "deleted_at",
    "storage_size_bytes",
    "total_storage_size_bytes",
];

//! The fixtures of this suite: the testkit's store (of the backend the test runs on) and a
//! few helpers of the end-to-end tests.
#![allow(dead_code)]

use serde_json::Value;
use weave::schema::JsonMap;
use weave::{Call, CallsQuery, Timestamp, WeaveClient};

pub use weave_testkit::{calls, TestStore};

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

/// The timestamp `s` (RFC 3339; panics when it is not one).
pub fn ts(s: &str) -> Timestamp {
    s.parse().expect("timestamp")
}

/// The object `v` (panics when it is not one).
pub fn map(v: Value) -> JsonMap {
    match v {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
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

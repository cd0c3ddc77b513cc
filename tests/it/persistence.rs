//! Tests: persistence. The embedded store is a SQLite file in WAL mode with a versioned
//! schema; what one client wrote, the next process reads back unchanged.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{json, Value};
use weave::config::Settings;
use weave::schema::{CallReadReq, CallStartReq, StartedCallSchemaForInsert};
use weave::server::SqliteServerConfig;
use weave::{
    CallOptions, CallsQuery, SqliteServer, Timestamp, TraceServer, WeaveClient, WeaveError,
};

use crate::common::{calls, TestStore};

fn client_on(path: &Path) -> (WeaveClient, SqliteServer) {
    let server = SqliteServer::open(path).expect("open store");
    let client = WeaveClient::new(
        "test-entity",
        "test-project",
        Arc::new(server.clone()),
        true,
    )
    .expect("client");
    (client, server)
}

/// Records a small but varied trace: nesting, a display name, attributes, a thread, usage,
/// an error, a running call and unicode. Returns the ids in start order.
fn record_varied(client: &WeaveClient) -> Vec<String> {
    let base = Timestamp::now().as_nanos();
    let at = |n: i64| Timestamp::from_nanos(base + n * 1_000_000);
    let root = client
        .create_call_with(
            "agent",
            json!({"question": "weather in Paris? ☀️", "n": 1.5, "list": [1, null, "x"]}),
            CallOptions::new()
                .use_stack(false)
                .display_name("Agent run")
                .attribute("env", "test")
                .thread_id("thread-1")
                .started_at(at(0)),
        )
        .unwrap();
    let llm = client
        .create_call_with(
            "llm",
            json!({"prompt": "hi"}),
            CallOptions::new()
                .use_stack(false)
                .parent(&root)
                .started_at(at(1)),
        )
        .unwrap();
    client
        .finish_call(
            &llm,
            json!({"model": "gpt-4o", "usage": {"prompt_tokens": 12, "completion_tokens": 3}}),
        )
        .unwrap();
    let tool = client
        .create_call_with(
            "get_weather",
            json!({"city": "Paris"}),
            CallOptions::new()
                .use_stack(false)
                .parent(&root)
                .started_at(at(2)),
        )
        .unwrap();
    client
        .fail_call(&tool, "weather API timed out".to_string())
        .unwrap();
    let running = client
        .create_call_with(
            "still_running",
            json!({}),
            CallOptions::new().use_stack(false).started_at(at(3)),
        )
        .unwrap();
    client.finish_call(&root, "sorry, no weather").unwrap();
    vec![
        root.id().to_string(),
        llm.id().to_string(),
        tool.id().to_string(),
        running.id().to_string(),
    ]
}

fn all_calls_json(client: &WeaveClient) -> Value {
    serde_json::to_value(calls(client, CallsQuery::new())).unwrap()
}

#[test]
fn a_reopened_store_keeps_every_call_identical() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("weave.sqlite");
    let (client, server) = client_on(&path);
    let ids = record_varied(&client);
    let before = all_calls_json(&client);
    let before_schemas: Vec<Value> = calls(&client, CallsQuery::new())
        .iter()
        .map(|c| serde_json::to_value(c.to_schema()).unwrap())
        .collect();
    assert_eq!(before.as_array().unwrap().len(), 4);
    drop(client);
    drop(server);

    let (client, _server) = client_on(&path);
    let after = all_calls_json(&client);
    assert_eq!(after, before, "every call reads back with identical JSON");
    let after_schemas: Vec<Value> = ids
        .iter()
        .map(|id| serde_json::to_value(client.get_call(id).unwrap().to_schema()).unwrap())
        .collect();
    assert_eq!(after_schemas, before_schemas);
    // And the content is what was recorded, not just self-consistent.
    let root = client.get_call(&ids[0]).unwrap();
    assert_eq!(root.display_name().as_deref(), Some("Agent run"));
    assert_eq!(root.inputs()["question"], json!("weather in Paris? ☀️"));
    assert_eq!(root.status(), weave::TraceStatus::DescendantError);
    assert_eq!(root.usage()["gpt-4o"]["prompt_tokens"], json!(12));
    assert_eq!(
        client.get_call(&ids[3]).unwrap().status(),
        weave::TraceStatus::Running
    );
}

#[test]
fn dropping_the_client_writes_everything_before_the_file_is_reopened() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("weave.sqlite");
    let (client, server) = client_on(&path);
    let mut expected = Vec::new();
    for i in 0..300 {
        let c = client.create_call("op", json!({"i": i})).unwrap();
        client.finish_call(&c, json!(i * 2)).unwrap();
        expected.push(c.id().to_string());
    }
    // No flush and no read: the writes may still be queued when the client goes away.
    drop(client);
    drop(server);

    let (client, _server) = client_on(&path);
    let back = calls(&client, CallsQuery::new());
    assert_eq!(
        back.iter().map(|c| c.id().to_string()).collect::<Vec<_>>(),
        expected
    );
    for (i, c) in back.iter().enumerate() {
        assert_eq!(c.output(), json!(i * 2));
        assert!(c.is_finished());
    }
}

fn header(path: &Path) -> Vec<u8> {
    std::fs::read(path).expect("read store file")[..100].to_vec()
}

#[test]
fn the_store_is_in_wal_mode() {
    let store = TestStore::new();
    crate::common::record(&store.client, "op", json!({"a": 1}), json!(2));
    store.client.flush();

    // The -wal file sits next to the store while it is open.
    let mut wal = store.path().into_os_string();
    wal.push("-wal");
    assert!(
        PathBuf::from(&wal).exists(),
        "no {wal:?}: the store is not in WAL mode"
    );
    // The file header says WAL (bytes 18 and 19 are the read/write format versions, 2 = WAL).
    let h = header(&store.path());
    assert_eq!(&h[..16], b"SQLite format 3\0");
    assert_eq!((h[18], h[19]), (2, 2), "file format versions");
    // And SQLite itself agrees, from a second connection.
    let conn = rusqlite::Connection::open(store.path()).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn a_second_server_on_the_same_file_sees_the_writes() {
    let store = TestStore::new();
    let call = crate::common::record(&store.client, "op", json!({"a": 1}), json!(2));
    store.client.flush();

    let second = SqliteServer::open(store.path()).expect("a second opener is allowed");
    let read = |server: &dyn weave::TraceServer, id: &str| {
        server
            .call_read(CallReadReq {
                project_id: "test-entity/test-project".into(),
                id: id.into(),
                include_costs: false,
                include_storage_size: false,
                include_total_storage_size: false,
            })
            .unwrap()
            .call
    };
    let seen = read(&second, call.id()).expect("the second server reads the call");
    assert_eq!(seen.output, json!(2));
    assert_eq!(Some(seen), read(&*store.server, call.id()));

    // Writes through the second are visible to the first.
    let other = WeaveClient::new("test-entity", "test-project", Arc::new(second), false).unwrap();
    let c2 = crate::common::record(&other, "op2", json!({}), json!("x"));
    other.flush();
    assert_eq!(store.client.get_call(c2.id()).unwrap().output(), json!("x"));
}

#[test]
fn the_schema_version_is_recorded_and_reopening_keeps_it() {
    let store = TestStore::new();
    crate::common::record(&store.client, "op", json!({}), json!(null));
    store.client.flush();
    let version = |p: &Path| -> i64 {
        rusqlite::Connection::open(p)
            .unwrap()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap()
    };
    let v = version(&store.path());
    assert!(v >= 1, "user_version is {v}");

    // Reopening an up-to-date file runs no migration again (it would fail on CREATE TABLE)
    // and leaves the version alone.
    let again = SqliteServer::open(store.path()).expect("reopen");
    drop(again);
    assert_eq!(version(&store.path()), v);
    assert_eq!(store.client.get_calls(CallsQuery::new()).size().unwrap(), 1);
}

/// Writes `user_version` with a plain SQLite connection.
fn set_user_version(path: &Path, v: i64) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.pragma_update(None, "user_version", v).unwrap();
}

fn assert_refused_as_newer(err: WeaveError, version: i64) {
    assert!(matches!(err, WeaveError::Backend { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(&version.to_string()), "{msg}");
    assert!(msg.contains("newer"), "{msg}");
    assert!(msg.contains("upgrade"), "{msg}");
}

#[test]
fn a_store_from_a_newer_version_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("weave.sqlite");
    let (client, server) = client_on(&path);
    let call = crate::common::record(&client, "op", json!({"keep": "me"}), json!(1));
    let id = call.id().to_string();
    drop((call, client, server));
    set_user_version(&path, 999);
    let bytes = std::fs::read(&path).unwrap();

    let err = SqliteServer::open(&path).expect_err("a newer schema is refused");
    assert_refused_as_newer(err, 999);
    assert!(
        std::fs::read(&path).unwrap() == bytes,
        "the file is untouched"
    );

    // The data is still there for the newer version to read.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let (v, n): (i64, i64) = (
        conn.query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap(),
        conn.query_row("SELECT COUNT(*) FROM calls WHERE id = ?1", [&id], |r| {
            r.get(0)
        })
        .unwrap(),
    );
    assert_eq!((v, n), (999, 1));
}

#[test]
fn a_newer_store_in_rollback_journal_mode_is_not_switched_to_wal() {
    // A newer release might use another journal mode; refusing the file must not rewrite it.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("newer.sqlite");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE future (x INTEGER); INSERT INTO future VALUES (42); PRAGMA user_version = 7;",
        )
        .unwrap();
    }
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!((bytes[18], bytes[19]), (1, 1), "rollback-journal file");

    let err = SqliteServer::open(&path).expect_err("refused");
    assert_refused_as_newer(err, 7);
    let after = std::fs::read(&path).unwrap();
    assert!(
        after == bytes,
        "the refused file was modified (journal mode bytes {:?} -> {:?})",
        (bytes[18], bytes[19]),
        (after[18], after[19])
    );
}

#[test]
fn a_file_that_is_not_a_store_gives_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    let text = "these are not the calls you are looking for\n".repeat(100);
    std::fs::write(&path, &text).unwrap();
    let err = SqliteServer::open(&path).expect_err("not a database");
    assert!(matches!(err, WeaveError::Backend { .. }), "{err:?}");
    assert!(
        err.to_string().contains("notes.txt"),
        "the error names the file: {err}"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);

    // A directory where the file should be.
    let err = SqliteServer::open(dir.path()).expect_err("a directory");
    assert!(matches!(err, WeaveError::Backend { .. }), "{err:?}");
}

#[test]
fn an_empty_file_becomes_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.sqlite");
    std::fs::write(&path, b"").unwrap();
    let (client, _server) = client_on(&path);
    crate::common::record(&client, "op", json!({}), json!(1));
    assert_eq!(client.get_calls(CallsQuery::new()).size().unwrap(), 1);
}

#[test]
fn a_store_in_a_nested_missing_directory_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir
        .path()
        .join("a")
        .join("b c")
        .join("ü")
        .join("weave.sqlite");
    assert!(!path.parent().unwrap().exists());
    let (client, server) = client_on(&path);
    assert_eq!(server.path(), Some(path.as_path()));
    let call = crate::common::record(&client, "op", json!({"x": 1}), json!(2));
    let id = call.id().to_string();
    drop((call, client, server));
    assert!(path.is_file());

    let (client, _server) = client_on(&path);
    assert_eq!(client.get_call(&id).unwrap().output(), json!(2));
}

#[test]
fn the_store_path_comes_from_settings() {
    // WEAVE_DB_PATH=:memory: means no file at all.
    let memory = Settings::default()
        .with_db_path(Some(":memory:".into()))
        .with_local_app_url(None)
        .with_max_calls_queue_size(10)
        .with_calls_page_size(10);
    assert_eq!(memory.db_path(), None);
    let server = SqliteServer::with_config(SqliteServerConfig::from_settings(&memory)).unwrap();
    assert_eq!(server.path(), None);
    let client = WeaveClient::with_settings("e", "p", Arc::new(server), false, &memory).unwrap();
    crate::common::record(&client, "op", json!({}), json!(1));
    assert_eq!(client.get_calls(CallsQuery::new()).size().unwrap(), 1);

    // WEAVE_DB_PATH=<file>: exactly that file, created with its directory.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x").join("my.db");
    let settings = memory
        .clone()
        .with_db_path(Some(file.to_string_lossy().into_owned()))
        .with_local_app_url(Some("http://localhost:9999/".into()));
    assert_eq!(settings.db_path(), Some(file.clone()));
    assert_eq!(settings.local_app_url(), "http://localhost:9999");
    let server = SqliteServer::with_config(SqliteServerConfig::from_settings(&settings)).unwrap();
    assert_eq!(server.path(), Some(file.as_path()));
    assert_eq!(server.app_url(), "http://localhost:9999");
    assert!(file.is_file());

    // Unset: a per-user data directory (or ./.weave), always ending in weave/weave.sqlite.
    let default = memory.with_db_path(None);
    let p = default.db_path().expect("a file, not memory");
    assert_eq!(p.file_name().unwrap(), "weave.sqlite");
    let folder = p.parent().unwrap().file_name().unwrap();
    assert!(folder == "weave" || folder == ".weave", "{p:?}");
    assert_eq!(default.local_app_url(), "http://127.0.0.1:6346");
    // SqliteServer::default_path is the environment's Settings::db_path.
    assert_eq!(SqliteServer::default_path(), Settings::from_env().db_path());
}

#[test]
fn an_in_memory_store_does_not_persist() {
    let a = SqliteServer::in_memory().unwrap();
    assert_eq!(a.path(), None);
    let start = |server: &SqliteServer| {
        server
            .call_start(CallStartReq {
                start: StartedCallSchemaForInsert {
                    project_id: "e/p".into(),
                    id: None,
                    op_name: "op".into(),
                    display_name: None,
                    trace_id: None,
                    parent_id: None,
                    thread_id: None,
                    turn_id: None,
                    started_at: Timestamp::now(),
                    attributes: Default::default(),
                    inputs: Default::default(),
                    otel_dump: None,
                    wb_user_id: None,
                    wb_run_id: None,
                    wb_run_step: None,
                },
            })
            .unwrap()
    };
    let res = start(&a);
    let b = SqliteServer::in_memory().unwrap();
    let read = b
        .call_read(CallReadReq {
            project_id: "e/p".into(),
            id: res.id.clone(),
            include_costs: false,
            include_storage_size: false,
            include_total_storage_size: false,
        })
        .unwrap();
    assert_eq!(read.call, None, "two in-memory stores are separate");
    // But clones share one store.
    let a2 = a.clone();
    let read = a2
        .call_read(CallReadReq {
            project_id: "e/p".into(),
            id: res.id,
            include_costs: false,
            include_storage_size: false,
            include_total_storage_size: false,
        })
        .unwrap();
    assert!(read.call.is_some());
}

#[test]
fn feedback_survives_reopening_the_store() {
    let s = TestStore::new();
    let call = crate::common::record(&s.client, "answer", json!({"q": "2 + 2"}), json!(4));
    let id = call.feedback().add_note("persisted").unwrap().id;
    s.client.flush();
    let reopened = SqliteServer::open(s.path()).unwrap();
    let rows = reopened
        .feedback_query(weave::schema::FeedbackQueryReq::new(
            "test-entity/test-project",
        ))
        .unwrap()
        .result;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["id"], id.as_str());
    assert_eq!(rows[0]["payload"], json!({"note": "persisted"}));
}

/// The names of the indexes on `calls` (SQLite's own autoindex left out).
fn calls_indexes(path: &Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'calls' \
             AND sql IS NOT NULL ORDER BY name",
        )
        .unwrap();
    let names = stmt.query_map([], |r| r.get(0)).unwrap();
    names.map(Result::unwrap).collect()
}

/// What [`record_a_big_trace`] recorded.
struct BigTrace {
    /// The ids, in the default order (started_at, then id).
    expected: Vec<String>,
    root_id: String,
    trace_id: String,
    /// The op ref of the children.
    predict_op: String,
}

/// Records 2,600 calls — more than a page (1,000), a stream chunk (1,000) and a stream's
/// batch (256): a root and its children, three started per millisecond (ties are broken by
/// id); every tenth child fails (259 of them).
fn record_a_big_trace(client: &WeaveClient) -> BigTrace {
    let t0 = 1_735_689_600 * 1_000_000_000;
    let at = |i: i64| Timestamp::from_nanos(t0 + (i / 3) * 1_000_000);
    let opts = |i: i64| CallOptions::new().use_stack(false).started_at(at(i));
    let root = client
        .create_call_with("evaluate", json!({}), opts(0))
        .unwrap();
    let mut expected = vec![(root.started_at(), root.id().to_string())];
    let mut predict_op = String::new();
    for i in 1..2600 {
        let c = client
            .create_call_with("predict", json!({ "i": i }), opts(i).parent(&root))
            .unwrap();
        if i % 10 == 0 {
            client.fail_call(&c, "boom".to_string()).unwrap();
        } else {
            client.finish_call(&c, json!(i)).unwrap();
        }
        predict_op = c.op_name().to_string();
        expected.push((c.started_at(), c.id().to_string()));
    }
    client.finish_call(&root, json!(null)).unwrap();
    client.flush();
    expected.sort();
    BigTrace {
        expected: expected.into_iter().map(|(_, id)| id).collect(),
        root_id: root.id().to_string(),
        trace_id: root.trace_id().to_string(),
        predict_op,
    }
}

/// Checks that reading `big` back through `client` gives every call exactly once, in order,
/// whatever the page size, window, order or filter.
fn check_big_trace_reads(client: &WeaveClient, big: &BigTrace) {
    let expected = &big.expected;
    let ids = |q: CallsQuery| -> Vec<String> {
        client
            .get_calls(q)
            .map(|c| c.unwrap().id().to_string())
            .collect()
    };
    let all = ids(CallsQuery::new());
    assert_eq!(all.len(), 2600);
    assert_eq!(
        all.iter().collect::<std::collections::HashSet<_>>().len(),
        2600
    );
    assert_eq!(&all, expected);
    assert_eq!(&ids(CallsQuery::new().page_size(7)), expected);
    // Windows across chunk boundaries, with a limit over and under one chunk.
    assert_eq!(
        ids(CallsQuery::new().offset(300).limit(1500)),
        expected[300..1800]
    );
    assert_eq!(
        ids(CallsQuery::new().offset(1999).limit(1000)),
        expected[1999..2600]
    );
    // Newest first (the id tiebreak follows started_at).
    let mut newest_first = expected.clone();
    newest_first.reverse();
    assert_eq!(
        ids(CallsQuery::new().sort_by(weave::SortBy::desc("started_at"))),
        newest_first
    );
    // The trace, and the root's children.
    let trace = CallsQuery::new().filter(weave::CallsFilter {
        trace_ids: Some(vec![big.trace_id.clone()]),
        ..Default::default()
    });
    assert_eq!(&ids(trace), expected);
    let children: Vec<String> = client
        .get_call(&big.root_id)
        .unwrap()
        .children()
        .map(|c| c.unwrap().id().to_string())
        .collect();
    assert_eq!(children, expected[1..]);
    // A stream dropped half-read leaves nothing behind that stops the next.
    let mut it = client.get_calls(CallsQuery::new());
    assert_eq!(it.by_ref().take(1500).count(), 1500);
    drop(it);
    assert_eq!(&ids(CallsQuery::new()), expected);
    // The failed calls of the op: counted (from their index, on a file), the same as read.
    let failed = CallsQuery::new()
        .filter(weave::CallsFilter {
            op_names: Some(vec![big.predict_op.clone()]),
            ..Default::default()
        })
        .query(weave::query::field("summary.weave.status").eq("error"));
    assert_eq!(client.get_calls(failed.clone()).size().unwrap(), 259);
    let failed: Vec<weave::Call> = client.get_calls(failed).collect::<Result<_, _>>().unwrap();
    assert_eq!(failed.len(), 259);
    assert!(failed
        .iter()
        .all(|c| c.status() == weave::TraceStatus::Error));
}

#[test]
fn an_in_memory_store_iterates_every_call_once_in_order() {
    let server = SqliteServer::in_memory().unwrap();
    let client = WeaveClient::new("test-entity", "test-project", Arc::new(server), true).unwrap();
    let big = record_a_big_trace(&client);
    check_big_trace_reads(&client, &big);
}

#[test]
fn a_schema_v4_store_is_upgraded_and_iterates_every_call_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("weave.sqlite");
    let (client, server) = client_on(&path);
    let big = record_a_big_trace(&client);
    drop((client, server));

    // Take the file back to schema version 4: its indexes on `calls` as v4 created them, no
    // planner statistics.
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "DROP INDEX calls_project_started_id;
             DROP INDEX calls_project_trace_started_id;
             DROP INDEX calls_project_parent_started_id;
             DROP INDEX calls_project_op_started_id;
             DROP INDEX calls_project_op_errors;
             CREATE INDEX calls_project_started ON calls (project_id, started_at);
             CREATE INDEX calls_project_trace ON calls (project_id, trace_id);
             CREATE INDEX calls_project_parent ON calls (project_id, parent_id);
             CREATE INDEX calls_project_op ON calls (project_id, op_name);
             DROP TABLE sqlite_stat1;
             PRAGMA user_version = 4;",
        )
        .unwrap();
    }
    assert_eq!(
        calls_indexes(&path),
        [
            "calls_project_op",
            "calls_project_parent",
            "calls_project_started",
            "calls_project_trace"
        ]
    );

    // Opening it upgrades it.
    let (client, _server) = client_on(&path);
    let version: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert!(version >= 5, "user_version {version}");
    assert_eq!(
        calls_indexes(&path),
        [
            "calls_project_op_errors",
            "calls_project_op_started_id",
            "calls_project_parent_started_id",
            "calls_project_started_id",
            "calls_project_trace_started_id"
        ]
    );
    let stats: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row(
            "SELECT COUNT(*) FROM sqlite_stat1 WHERE tbl = 'calls'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(stats > 0, "no planner statistics for calls");

    check_big_trace_reads(&client, &big);
}

/// The names of this process's threads (Linux).
#[cfg(target_os = "linux")]
fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|n| n.trim().to_string())
        .collect()
}

#[test]
fn the_wal_is_checkpointed_while_calls_stream_in_and_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wal.sqlite");
    let wal = dir.path().join("wal.sqlite-wal");
    let (client, server) = client_on(&path);
    // A new thread names itself once it runs: until then it shows its parent's name.
    #[cfg(target_os = "linux")]
    {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !thread_names().iter().any(|n| n == "weave-wal-ckpt") {
            assert!(
                std::time::Instant::now() < deadline,
                "no checkpoint thread: {:?}",
                thread_names()
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
    // ~4 KiB of inputs per call: 20,000 calls put ~90 MiB of pages through the WAL, more
    // than its bound (~64 MiB).
    let text = "x".repeat(4096);
    let (rounds, per_round) = (20, 1000);
    let mut largest_wal = 0;
    for round in 0..rounds {
        for i in 0..per_round {
            let c = client
                .create_call("bulk", json!({"round": round, "i": i, "text": text}))
                .unwrap();
            client.finish_call(&c, json!(i)).unwrap();
        }
        client.flush();
        largest_wal = largest_wal.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
    }
    let db_size = std::fs::metadata(&path).unwrap().len();
    assert!(
        largest_wal <= 80 << 20,
        "the WAL grew to {} MiB",
        largest_wal >> 20
    );
    // Pages reached the database file while calls were being written, not only at close.
    assert!(
        db_size >= 40 << 20,
        "the database file holds {} MiB after ~90 MiB of writes",
        db_size >> 20
    );
    let stored = client.get_calls(CallsQuery::new()).size().unwrap();
    assert_eq!(stored, (rounds * per_round) as u64);
    drop(client);
    drop(server);
    // Everything is there after reopening (the last pages were checkpointed at close).
    let (client, _server) = client_on(&path);
    let n = client.get_calls(CallsQuery::new()).size().unwrap();
    assert_eq!(n, (rounds * per_round) as u64);
}

//! The background writer: writes never wait on I/O, reads see earlier writes, concurrency is
//! safe, a full queue drops and counts instead of blocking, and dropping the client flushes.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use weave::{CallsFilter, CallsQuery, SqliteServer, WeaveClient};
use weave_testkit::backends;

use crate::common::TestStore;

#[backends]
fn many_threads_build_their_own_trees() {
    let s = TestStore::new();
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let client = s.client.clone();
            std::thread::spawn(move || {
                let root = client
                    .create_call("worker_root", json!({"thread": t}))
                    .unwrap();
                for i in 0..50 {
                    let c = client.create_call("step", json!({"i": i})).unwrap();
                    let g = client.create_call("substep", json!({})).unwrap();
                    client.finish_call(&g, ()).unwrap();
                    client.finish_call(&c, ()).unwrap();
                }
                client.finish_call(&root, ()).unwrap();
                root.id().to_string()
            })
        })
        .collect();
    let roots: Vec<String> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(
        s.client.get_calls(CallsQuery::new()).size().unwrap(),
        8 * 101
    );
    for root in roots {
        let back = s.client.get_call(&root).unwrap();
        assert_eq!(back.summary().unwrap()["status_counts"]["success"], 101);
        let kids = s.client.get_calls(CallsFilter {
            parent_ids: Some(vec![root.clone()]),
            ..Default::default()
        });
        assert_eq!(kids.size().unwrap(), 50);
        let trace = s.client.get_calls(CallsFilter {
            trace_ids: Some(vec![back.trace_id().to_string()]),
            ..Default::default()
        });
        assert_eq!(trace.size().unwrap(), 101);
    }
}

#[backends]
fn dropping_the_client_flushes_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.sqlite");
    {
        let client = WeaveClient::new(
            "e",
            "p",
            Arc::new(SqliteServer::open(&path).unwrap()),
            false,
        )
        .unwrap();
        for i in 0..5000 {
            let c = client.create_call("op", json!({"i": i})).unwrap();
            client.finish_call(&c, i).unwrap();
        }
        // No flush: dropping the last handle must write everything.
    }
    let client = WeaveClient::new(
        "e",
        "p",
        Arc::new(SqliteServer::open(&path).unwrap()),
        false,
    )
    .unwrap();
    assert_eq!(client.get_calls(CallsQuery::new()).size().unwrap(), 5000);
    assert_eq!(
        client
            .get_calls(weave::query::field("summary.weave.status").eq("success"))
            .size()
            .unwrap(),
        5000
    );
}

#[backends]
fn flush_timeout_reports_completion() {
    let s = TestStore::new();
    for _ in 0..100 {
        let c = s.client.create_call("op", json!({})).unwrap();
        s.client.finish_call(&c, ()).unwrap();
    }
    assert!(s.client.flush_timeout(Duration::from_secs(30)));
    assert_eq!(s.client.dropped(), 0);
}

#[backends]
fn a_full_queue_drops_and_counts_instead_of_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("busy.sqlite");
    let settings = weave::config::Settings::from_env().with_max_calls_queue_size(4);
    let client = WeaveClient::with_settings(
        "e",
        "p",
        Arc::new(SqliteServer::open(&path).unwrap()),
        false,
        &settings,
    )
    .unwrap();
    // Another process-like connection holds the write lock, so the writer cannot drain.
    let blocker = rusqlite::Connection::open(&path).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let started = std::time::Instant::now();
    for i in 0..200 {
        let c = client
            .create_call_with(
                "op",
                json!({"i": i}),
                weave::CallOptions::new().use_stack(false),
            )
            .unwrap();
        client.finish_call(&c, ()).unwrap();
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "enqueueing must not block on a stuck store"
    );
    blocker.execute_batch("COMMIT").unwrap();
    client.flush();
    let dropped = client.dropped();
    assert!(dropped > 0, "a 4-item queue cannot hold 400 writes");
    let stored = client.get_calls(CallsQuery::new()).size().unwrap();
    assert!(stored < 200, "stored {stored}");
    // Every write is accounted for: stored starts and ends plus drops.
    assert!(
        dropped <= 400 - stored,
        "dropped {dropped}, stored {stored}"
    );
}

//! `weave::init` end to end, in child processes (it sets the process-wide client and the
//! global subscriber, and reads the environment): calls land in `WEAVE_DB_PATH`, the guard
//! flushes, `weave::finish` stops tracing, `WEAVE_PRINT_CALL_LINK` prints root links.

use std::path::Path;
use std::sync::Arc;

use serde_json::json;
use tracing::{info, info_span, instrument};
use weave::{CallsFilter, SqliteServer, TraceStatus, WeaveClient};

use crate::common::{all_calls, calls, child_done, run_child, sorted_names, Tree};

/// A fresh client on the file a child wrote.
fn open(path: &Path, entity: &str, project: &str) -> WeaveClient {
    let server = SqliteServer::open(path).expect("the child created the store");
    WeaveClient::new(entity, project, Arc::new(server), false).unwrap()
}

fn db_path(dir: &tempfile::TempDir) -> String {
    dir.path().join("init.sqlite").to_str().unwrap().to_string()
}

#[weave::op]
fn agent(question: &str) -> String {
    let n = tool(2);
    summarize(n)
}

#[weave::op]
fn tool(n: u32) -> u32 {
    n * 21
}

#[instrument(ret)]
fn summarize(n: u32) -> String {
    info!(n, "summarizing");
    format!("the answer is {n}")
}

#[instrument]
fn standalone_span(k: u32) {
    tool(k);
}

// ---------------------------------------------------------------------------------------

#[test]
fn init_writes_ops_and_spans_to_weave_db_path_and_the_guard_flushes() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let out = run_child("init::child_init_writes", &[("WEAVE_DB_PATH", &path)]);
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("🍩"),
        "no links without WEAVE_PRINT_CALL_LINK"
    );

    let client = open(Path::new(&path), "init-entity", "init-project");
    let calls = all_calls(&client);
    assert_eq!(
        sorted_names(&calls),
        ["agent", "standalone_span", "summarize", "tool", "tool"]
    );
    let agent = calls.iter().find(|c| c.func_name() == "agent").unwrap();
    assert!(agent.parent_id().is_none());
    assert_eq!(agent.inputs()["question"], "what?");
    assert_eq!(agent.output(), json!("the answer is 42"));
    assert_eq!(agent.status(), TraceStatus::Success);
    assert!(agent
        .op_name()
        .starts_with("weave:///init-entity/init-project/op/agent:"));
    let tree = Tree::of_call(&client, agent.id());
    assert_eq!(tree.kid_names(agent.id()), ["tool", "summarize"]);
    let summarize = tree.kids(agent.id())[1];
    assert_eq!(summarize.inputs()["n"], 42);
    assert_eq!(summarize.output(), json!("the answer is 42"));
    assert_eq!(
        summarize.summary().unwrap()["events"][0]["message"],
        "summarizing"
    );

    let span = calls
        .iter()
        .find(|c| c.func_name() == "standalone_span")
        .unwrap();
    assert!(span.parent_id().is_none());
    let tree = Tree::of_call(&client, span.id());
    assert_eq!(tree.kid_names(span.id()), ["tool"]);
    assert_eq!(tree.only_kid(span.id()).output(), json!(105));
}

#[test]
#[ignore = "run in a child process by init_writes_ops_and_spans_to_weave_db_path_and_the_guard_flushes"]
fn child_init_writes() {
    assert!(
        std::env::var("WEAVE_DB_PATH").is_ok(),
        "run through the parent test"
    );
    let (client, guard) = weave::init("init-entity/init-project").unwrap();
    assert!(weave::global_client().unwrap().same_client(&client));
    assert_eq!(agent("what?"), "the answer is 42");
    standalone_span(5);
    // Only the guard may flush: the client is never dropped, and the process exits right
    // after the guard without running any other destructor.
    std::mem::forget(client);
    drop(guard);
    assert!(weave::global_client().is_none());
    child_done("init::child_init_writes");
    std::process::exit(0);
}

// ---------------------------------------------------------------------------------------

#[weave::op]
fn before_finish(n: u32) -> u32 {
    n
}

#[weave::op]
fn after_finish(n: u32) -> u32 {
    n
}

#[test]
fn finish_makes_later_ops_and_spans_untraced() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    run_child("init::child_finish", &[("WEAVE_DB_PATH", &path)]);
    let client = open(Path::new(&path), "local", "finish-project");
    let calls = all_calls(&client);
    assert_eq!(
        sorted_names(&calls),
        ["before_finish", "span_before_finish"]
    );
}

#[test]
#[ignore = "run in a child process by finish_makes_later_ops_and_spans_untraced"]
fn child_finish() {
    assert!(
        std::env::var("WEAVE_DB_PATH").is_ok(),
        "run through the parent test"
    );
    // A bare project name: the entity is DEFAULT_ENTITY.
    let (client, guard) = weave::init("finish-project").unwrap();
    assert_eq!(client.entity(), weave::DEFAULT_ENTITY);
    assert_eq!(before_finish(1), 1);
    info_span!("span_before_finish").in_scope(|| {});
    weave::finish();
    assert!(weave::global_client().is_none());
    assert_eq!(after_finish(2), 2);
    info_span!("span_after_finish").in_scope(|| after_finish(3));
    // finish flushed: the client still reads what was written.
    let names = sorted_names(&all_calls(&client));
    assert_eq!(names, ["before_finish", "span_before_finish"]);
    drop(guard);
    child_done("init::child_finish");
}

// ---------------------------------------------------------------------------------------

#[weave::op]
fn link_root(n: u32) -> u32 {
    link_child(n) + link_child(n + 1)
}

#[weave::op]
fn link_child(n: u32) -> u32 {
    n
}

#[instrument]
fn link_span_root() {
    info_span!("link_span_child").in_scope(|| link_child(7));
}

#[test]
fn print_call_link_prints_each_root_calls_link_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let out = run_child(
        "init::child_print_link",
        &[("WEAVE_DB_PATH", &path), ("WEAVE_PRINT_CALL_LINK", "true")],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let links: Vec<&str> = stderr.lines().filter(|l| l.contains("🍩")).collect();

    let client = open(Path::new(&path), "link-entity", "link-project");
    let all = all_calls(&client);
    assert_eq!(all.len(), 3 + 3 + 3, "{:?}", sorted_names(&all));
    let roots = calls(
        &client,
        CallsFilter {
            trace_roots_only: Some(true),
            ..Default::default()
        },
    );
    assert_eq!(
        sorted_names(&roots),
        ["link_root", "link_root", "link_span_root"]
    );
    assert_eq!(links.len(), roots.len(), "{stderr}");
    for root in &roots {
        let line = format!("🍩 {}", root.ui_url());
        assert!(line.contains(&format!("/r/call/{}", root.id())));
        assert_eq!(
            links.iter().filter(|l| **l == line).count(),
            1,
            "{line:?} once in:\n{stderr}"
        );
    }
    for child in all.iter().filter(|c| c.parent_id().is_some()) {
        assert!(
            !stderr.contains(child.id()),
            "a child's link was printed: {}",
            child.func_name()
        );
    }
}

#[test]
#[ignore = "run in a child process by print_call_link_prints_each_root_calls_link_once"]
fn child_print_link() {
    assert!(
        std::env::var("WEAVE_PRINT_CALL_LINK").is_ok(),
        "run through the parent test"
    );
    let (_client, _guard) = weave::init("link-entity/link-project").unwrap();
    assert_eq!(link_root(1), 3);
    link_span_root();
    assert_eq!(link_root(10), 21);
    child_done("init::child_print_link");
}

//! The `weave` command's read commands, run as a user runs them: the real binary on a real
//! store (and through a real `weave serve`), its output and exit codes checked.

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{weave_bin, Served};
use weave_core::{CallOptions, SqliteServer, WeaveClient};

/// Runs `weave ARGS` with no colour environment (stdout is a pipe anyway).
fn weave(args: &[&str]) -> Output {
    Command::new(weave_bin())
        .args(args)
        .env_remove("WEAVE_DB_PATH")
        .env_remove("WF_TRACE_SERVER_URL")
        .env_remove("WEAVE_PROJECT")
        .output()
        .expect("the weave binary runs")
}

/// The op's name in a call's `op_name` ref (`weave:///e/p/op/NAME:digest`).
fn op(c: &Value) -> &str {
    let r = c["op_name"].as_str().unwrap();
    let name = r.rsplit("/op/").next().unwrap();
    name.split(':').next().unwrap()
}

fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

/// A store with one project: the shared agent run (a root, an LLM call with usage, a tool
/// call that fails with a Python-style traceback, a retry that succeeds), feedback on the
/// failed call, and 30 plain calls (34 in all). Returns the ids of the root and the failed
/// call.
fn store(db: &Path) -> (String, String) {
    let run = support::agent_run(db, "http://127.0.0.1:6346");
    let client = run.client;
    for i in 0..30 {
        let c = client
            .create_call_with("step", json!({"i": i}), CallOptions::new().use_stack(false))
            .unwrap();
        client.finish_call(&c, i).unwrap();
    }
    client.flush();
    let failed = client.get_call(&run.failed_id).unwrap();
    failed.feedback().add_reaction("👎").unwrap();
    failed.feedback().add_note("flaky upstream").unwrap();
    client.flush();
    (run.root_id, run.failed_id)
}

#[test]
fn projects_calls_trace_and_call_show_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("weave.sqlite");
    let (root, failed) = store(&db);
    let db = db.to_str().unwrap();

    let out = stdout(&weave(&["projects", "--db", db]));
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("PROJECT"), "{out}");
    assert!(
        lines[1].starts_with("acme/agents") && lines[1].contains(" 34 "),
        "{out}"
    );
    assert!(!out.contains('\x1b'), "no colours into a pipe");

    // The newest 20 by default, aligned under the header; the project found on its own.
    let out = stdout(&weave(&["calls", "--db", db]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 21, "{out}");
    let status_col = lines[0].find("STATUS").unwrap();
    assert!(
        lines[1..]
            .iter()
            .all(|l| l[status_col..].starts_with("success")),
        "{out}"
    );

    let out = stdout(&weave(&["calls", "--db", db, "--status", "error"]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[1].contains(&failed) && lines[1].contains("get_weather"),
        "{out}"
    );
    assert!(lines[1].contains("city=\"Paris\""), "{out}");

    let out = stdout(&weave(&[
        "calls",
        "--db",
        db,
        "-p",
        "agents",
        "--op",
        "get_weather",
        "--json",
    ]));
    let calls: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(calls.len(), 2);
    assert!(calls.iter().all(|c| op(c) == "get_weather"));

    let out = stdout(&weave(&[
        "calls", "--db", db, "--roots", "--limit", "0", "--jsonl",
    ]));
    assert_eq!(out.lines().count(), 31, "the agent and the 30 steps");

    let q = r#"{"$eq": [{"$getField": "inputs.i"}, {"$literal": 7}]}"#;
    let out = stdout(&weave(&["calls", "--db", db, "--query", q, "--jsonl"]));
    let only: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(only["inputs"]["i"], 7);

    // The tree, in start order, the asked-for call marked, tokens rolled up to the root.
    let out = stdout(&weave(&["trace", &failed, "--db", db]));
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("Trace ") && lines[0].contains("4 calls"),
        "{out}"
    );
    assert!(
        lines[1].starts_with("• agent  descendant_error") && lines[1].contains("42 tokens"),
        "{out}"
    );
    assert!(
        lines[2].starts_with("  • chat  success") && lines[2].contains("42 tokens"),
        "{out}"
    );
    assert!(
        lines[3].starts_with("  ▶ get_weather  error") && lines[3].contains(&failed),
        "{out}"
    );
    assert!(lines[4].starts_with("  • get_weather  success"), "{out}");
    assert!(lines[1].contains(&root));

    // One call whole: its place, inputs, the traceback as Python prints it, feedback.
    let out = stdout(&weave(&["call", &failed, "--db", db]));
    for expected in [
        format!("Call {failed}"),
        "  status    error".to_string(),
        format!("  parent    {root}"),
        format!("/acme/agents/r/call/{failed}"),
        "\"city\": \"Paris\"".to_string(),
        "  Traceback (most recent call last):".to_string(),
        "    File \"tools.py\", line 7, in get_weather".to_string(),
        "      raise TimeoutError(...)".to_string(),
        "  TimeoutError: the weather service did not answer".to_string(),
        "👎".to_string(),
        "flaky upstream".to_string(),
    ] {
        assert!(out.contains(&expected), "{expected:?} in:\n{out}");
    }
    let out = stdout(&weave(&["call", &root, "--db", db, "--json"]));
    let call: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(call["output"], "18°C in Paris");
    assert_eq!(call["summary"]["weave"]["status"], "descendant_error");
}

#[test]
fn export_streams_every_call_as_jsonl_or_csv() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("weave.sqlite");
    store(&db);
    let db = db.to_str().unwrap();
    let jsonl = dir.path().join("calls.jsonl");
    stdout(&weave(&[
        "export",
        "--db",
        db,
        "--out",
        jsonl.to_str().unwrap(),
    ]));
    let text = std::fs::read_to_string(&jsonl).unwrap();
    let calls: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(calls.len(), 34);
    // Oldest first, every field there.
    assert_eq!(op(&calls[0]), "agent");
    assert!(calls
        .iter()
        .all(|c| c["started_at"].is_string() && c["ended_at"].is_string()));

    let out = stdout(&weave(&[
        "export", "--db", db, "--format", "csv", "--status", "error",
    ]));
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("id,trace_id,parent_id,op_name"),
        "{out}"
    );
    // The exception's JSON has quotes and commas: quoted, quotes doubled, one row per call.
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[1].contains(",error,") && lines[1].contains("\"\"TimeoutError\"\""),
        "{out}"
    );
}

#[test]
fn mistakes_get_clear_errors_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none.sqlite");
    let o = weave(&["calls", "--db", missing.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("no store at") && err.contains("none.sqlite"),
        "{err}"
    );
    assert!(!missing.exists(), "reading does not create a store");

    let db = dir.path().join("weave.sqlite");
    store(&db);
    let db = db.to_str().unwrap();
    let o = weave(&["call", "01a00000-0000-7000-8000-000000000000", "--db", db]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no call 01a00000"));

    let o = weave(&["calls", "--db", db, "-p", "nope"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("acme/agents"),
        "names what exists"
    );

    for bad in [
        vec!["calls", "--db", db, "--query", "{not json"],
        vec!["calls", "--db", db, "--since", "5 parsecs"],
        vec!["calls", "--db", db, "--status", "maybe"],
    ] {
        let o = weave(&bad);
        assert_eq!(o.status.code(), Some(2), "{bad:?}");
        assert!(!o.stderr.is_empty());
    }
}

#[test]
fn the_same_commands_read_a_server() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("weave.sqlite");
    let (_, failed) = store(&db);
    let s = Served::start(&db, &[]);
    let out = stdout(&weave(&["projects", "--server", &s.url]));
    assert!(out.contains("acme/agents"), "{out}");
    let out = stdout(&weave(&["calls", "--server", &s.url, "--status", "error"]));
    assert!(out.contains(&failed), "{out}");
    let out = stdout(&weave(&["trace", &failed, "--server", &s.url]));
    assert!(out.contains("▶ get_weather  error"), "{out}");
    let o = Command::new(weave_bin())
        .args(["calls", "--status", "error", "--jsonl"])
        .env("WF_TRACE_SERVER_URL", &s.url)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&o.stdout).contains(&failed));
    // --db wins over a server in the environment.
    let o = Command::new(weave_bin())
        .args(["projects", "--db", db.to_str().unwrap()])
        .env("WF_TRACE_SERVER_URL", "http://127.0.0.1:1")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("acme/agents"));
}

#[test]
fn tail_prints_new_calls_as_they_start() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("weave.sqlite");
    store(&db);
    let mut child = Command::new(weave_bin())
        .args([
            "tail",
            "--db",
            db.to_str().unwrap(),
            "--jsonl",
            "--every",
            "100",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = std::sync::mpsc::channel::<String>();
    let stdout = child.stdout.take().unwrap();
    let tx = lines.0;
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap_or_default()).is_err() {
                return;
            }
        }
    });
    // What was there before the tail started is not shown; what starts after is, once each.
    std::thread::sleep(Duration::from_millis(500));
    let client = WeaveClient::new(
        "acme",
        "agents",
        Arc::new(SqliteServer::open(&db).unwrap()),
        false,
    )
    .unwrap();
    for i in 0..3 {
        let c = client
            .create_call_with(
                "fresh",
                json!({"n": i}),
                CallOptions::new().use_stack(false),
            )
            .unwrap();
        client.finish_call(&c, i).unwrap();
        client.flush();
    }
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while got.len() < 3 && Instant::now() < deadline {
        if let Ok(line) = lines.1.recv_timeout(Duration::from_millis(200)) {
            got.push(serde_json::from_str::<Value>(&line).unwrap());
        }
    }
    std::thread::sleep(Duration::from_millis(400));
    while let Ok(line) = lines.1.try_recv() {
        got.push(serde_json::from_str::<Value>(&line).unwrap());
    }
    child.kill().unwrap();
    let _ = child.wait();
    let ns: Vec<&Value> = got.iter().map(|c| &c["inputs"]["n"]).collect();
    assert_eq!(ns, [&json!(0), &json!(1), &json!(2)], "{got:?}");
    assert!(got.iter().all(|c| op(c) == "fresh"), "{got:?}");
}

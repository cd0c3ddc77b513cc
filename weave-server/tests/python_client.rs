//! The real Python client against `weave serve`: `weave==0.54.0` from PyPI (the pinned venv
//! the test support installs on first use) logs a scenario to the real binary with nothing
//! but the environment a Python user sets, checks what it reads back (the asserts of
//! `tests/python/client_scenario.py`), and prints what it read; then the Rust client reads
//! the same project through the server, and the store's file directly, and must find every
//! call, field for field, and the feedback, cost and objects.

mod support;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use serde_json::{json, Value};
use support::Served;
use weave_core::server::{RemoteServer, RemoteServerConfig};
use weave_core::{CallsQuery, SqliteServer, Timestamp, TraceServer, WeaveClient};
use weave_testkit::venv;

fn scenario() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/client_scenario.py")
}

fn timestamp(v: &Value) -> Option<Timestamp> {
    (!v.is_null()).then(|| serde_json::from_value(v.clone()).expect("a timestamp"))
}

#[test]
fn the_python_client_logs_to_weave_serve_and_both_clients_read_it_all_back() {
    let python = venv::python("py-client");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("weave.sqlite");
    let served = Served::start(&db, &["--api-key", "local-key"]);
    let out = Command::new(&python)
        .arg(scenario())
        .arg("py-entity/py-project")
        .current_dir(dir.path())
        .env("WF_TRACE_SERVER_URL", &served.url)
        .env("WANDB_BASE_URL", &served.url)
        .env("WANDB_API_KEY", "local-key")
        .env("WEAVE_PRINT_CALL_LINK", "true")
        .env("WANDB_SILENT", "true")
        .env("HOME", dir.path())
        // The client caches server answers on disk, keyed without the server: a cache left by
        // an earlier run (another store at the same URL) makes it skip creating objects.
        .env("WEAVE_SERVER_CACHE_DIR", dir.path().join("weave-cache"))
        .output()
        .expect("run the Python client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the Python scenario failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    let doc: Value = stdout
        .lines()
        .find_map(|l| l.strip_prefix("SCENARIO-JSON "))
        .map(|j| serde_json::from_str(j).unwrap())
        .unwrap_or_else(|| panic!("no SCENARIO-JSON line:\n{stdout}\n{stderr}"));
    let py_calls = doc["calls"].as_array().unwrap();
    // Two pipelines of four calls each are left after one was deleted with its children.
    assert_eq!(py_calls.len(), 8, "{py_calls:#?}");

    let mut config = RemoteServerConfig::new(&served.url);
    config.api_key = Some("local-key".into());
    let backend: Arc<dyn TraceServer> = Arc::new(RemoteServer::new(config).unwrap());
    let client = WeaveClient::new("py-entity", "py-project", backend, false).unwrap();
    let rust_calls: Vec<weave_core::Call> = client
        .get_calls(CallsQuery::new())
        .collect::<Result<_, _>>()
        .unwrap();
    let ids = |it: &mut dyn Iterator<Item = String>| it.collect::<BTreeSet<_>>();
    assert_eq!(
        ids(&mut rust_calls.iter().map(|c| c.id().to_string())),
        ids(&mut py_calls
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_string())),
        "the Rust client sees the calls the Python client sees"
    );
    for py in py_calls {
        let id = py["id"].as_str().unwrap();
        let c = client.get_call(id).unwrap();
        assert_eq!(c.op_name(), py["op_name"], "{id}");
        assert_eq!(
            c.display_name().as_deref(),
            py["display_name"].as_str(),
            "{id}"
        );
        assert_eq!(c.trace_id(), py["trace_id"], "{id}");
        assert_eq!(c.parent_id(), py["parent_id"].as_str(), "{id}");
        assert_eq!(c.thread_id(), py["thread_id"].as_str(), "{id}");
        assert_eq!(c.turn_id(), py["turn_id"].as_str(), "{id}");
        assert_eq!(Value::Object(c.inputs().clone()), py["inputs"], "{id}");
        assert_eq!(c.output(), py["output"], "{id}");
        assert_eq!(c.exception().as_deref(), py["exception"].as_str(), "{id}");
        assert_eq!(
            Value::Object(c.attributes().clone()),
            py["attributes"],
            "{id}"
        );
        let usage = c
            .summary()
            .and_then(|s| s.get("usage").cloned())
            .unwrap_or(Value::Null);
        assert_eq!(usage, py["usage"], "{id}");
        assert_eq!(Some(c.started_at()), timestamp(&py["started_at"]), "{id}");
        assert_eq!(c.ended_at(), timestamp(&py["ended_at"]), "{id}");
    }

    // What the scenario recorded, seen from Rust.
    let root = client.get_call(doc["root_id"].as_str().unwrap()).unwrap();
    assert_eq!(root.display_name().as_deref(), Some("first pipeline"));
    assert_eq!(
        root.attributes()["env"],
        "test",
        "weave.attributes reach the call"
    );
    let kids: Vec<String> = root
        .children()
        .map(|c| c.unwrap().func_name().to_string())
        .collect();
    assert_eq!(kids, ["add", "fail", "chat"]);
    let failed = root
        .children()
        .map(|c| c.unwrap())
        .find(|c| c.func_name() == "fail")
        .unwrap();
    let exc = failed.exception().unwrap();
    assert!(
        exc.contains("ValueError") && exc.contains("bad input 1"),
        "{exc}"
    );
    assert_eq!(root.status(), weave_core::TraceStatus::DescendantError);
    // The chat call's usage rolled up to the root, and the price gives it a cost.
    let usage = &root.summary().unwrap()["usage"]["gpt-4o-mini"];
    assert_eq!(usage["prompt_tokens"], 11, "{usage}");
    assert_eq!(usage["completion_tokens"], 7, "{usage}");
    let with_costs = client.get_call_with(root.id(), true).unwrap();
    let costs = &with_costs.summary().unwrap()["weave"]["costs"]["gpt-4o-mini"];
    let total = costs["prompt_tokens_total_cost"].as_f64().unwrap()
        + costs["completion_tokens_total_cost"].as_f64().unwrap();
    assert!((total - (11.0 * 0.01 + 7.0 * 0.02)).abs() < 1e-9, "{costs}");
    // The thread.
    let threaded: Vec<_> = rust_calls
        .iter()
        .filter(|c| c.thread_id() == Some("thread-1"))
        .collect();
    assert!(!threaded.is_empty(), "the thread's calls survive");
    // Feedback, as the Python client wrote it.
    let mut fb: Vec<(String, Value)> = root
        .feedback()
        .execute()
        .unwrap()
        .into_iter()
        .map(|f| (f.feedback_type, Value::Object(f.payload)))
        .collect();
    fb.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(fb.len(), 3, "{fb:?}");
    assert_eq!(
        fb[0],
        (
            "correctness".into(),
            json!({"value": 1, "reason": "sum ok"})
        )
    );
    assert_eq!(
        fb[1],
        ("wandb.note.1".into(), json!({"note": "looks right"}))
    );
    assert_eq!(fb[2].0, "wandb.reaction.1");
    assert_eq!(fb[2].1["emoji"], "👍");
    // The cost.
    let prices = client
        .query_costs(weave_core::CostsQuery::new().llm_ids(["gpt-4o-mini"]))
        .unwrap();
    assert_eq!(prices.len(), 1);
    assert_eq!(prices[0].prompt_token_cost, Some(0.01));
    assert_eq!(prices[0].completion_token_cost, Some(0.02));
    // The published dict, and the Dataset's rows through its table.
    let cfg = client.get(doc["config_ref"].as_str().unwrap()).unwrap();
    assert_eq!(cfg, json!({"temperature": 0.5, "tags": ["a", "b"]}));
    let ds = client.get(doc["dataset_ref"].as_str().unwrap()).unwrap();
    let rows_ref = ds["rows"]
        .as_str()
        .expect("a Dataset's rows are a table ref");
    let rows: Vec<Value> = client
        .get(rows_ref)
        .unwrap()
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(rows, doc["dataset_rows"].as_array().unwrap().clone());

    // Every link the Python client printed (the project, each root call, each published
    // object) is answered by the server.
    let links: BTreeSet<&str> = stdout
        .split_whitespace()
        .chain(stderr.split_whitespace())
        .filter(|w| w.starts_with(&served.url))
        .collect();
    assert!(
        links.iter().any(|l| l.contains("/r/call/"))
            && links.iter().any(|l| l.contains("/weave/objects/"))
            && links.iter().any(|l| l.ends_with("/weave")),
        "the Python client prints links to calls, objects and the project: {links:?}"
    );
    let http = support::http();
    let deleted = doc["deleted_id"].as_str().unwrap();
    for link in &links {
        let r = http
            .get(*link)
            .basic_auth("api", Some("local-key"))
            .send()
            .unwrap();
        // The deleted call's link says so (404 naming it); every other link opens.
        let want = if link.ends_with(deleted) { 404 } else { 200 };
        assert_eq!(r.status(), want, "{link}");
    }

    // In a browser, each link opens its page in the viewer: the call's trace with the call
    // selected, the object's version, the project's calls; the deleted call's says so.
    if let Some(mut b) = support::browser::Browser::launch("python client links in the viewer") {
        b.basic_auth("api", "local-key");
        for link in &links {
            b.goto(link);
            let drawn = b.wait_for(
                "document.querySelector('.error-box, #tree .node.selected, #calls tbody tr, main h1') ? 'drawn' : null",
            );
            let errors = b.eval("document.querySelector('.error-box')?.textContent ?? ''");
            if link.ends_with(deleted) {
                assert!(
                    errors.as_str().unwrap().contains(deleted),
                    "{link}: {errors}"
                );
                continue;
            }
            assert_eq!(errors, "", "{link}");
            if let Some(id) = link.split("/r/call/").nth(1) {
                assert_eq!(
                    b.eval("document.querySelector('#tree .node.selected')?.dataset.id"),
                    Value::from(id),
                    "{link}: {drawn}"
                );
                // The Python exception of the failed child, as Python prints it.
                if b.eval("!!document.querySelector('#tree .node[data-status=error]')") == true {
                    b.click("#tree .node[data-status=error]");
                    let exc =
                        b.wait_for("document.querySelector('#detail pre.exception')?.textContent");
                    let exc = exc.as_str().unwrap();
                    assert!(
                        exc.starts_with("Traceback (most recent call last):"),
                        "{exc}"
                    );
                    assert!(exc.contains("raise ValueError"), "{exc}");
                    let last = exc.trim_end().lines().last().unwrap_or_default();
                    assert!(last.starts_with("ValueError: bad input "), "{exc}");
                }
            } else if link.ends_with("/weave") {
                assert!(
                    b.wait_for("document.querySelectorAll('#calls tbody tr[data-id]').length")
                        .as_u64()
                        > Some(0),
                    "{link}"
                );
            } else {
                let name = link
                    .split("/weave/objects/")
                    .nth(1)
                    .unwrap()
                    .split('/')
                    .next()
                    .unwrap();
                let h1 = b.eval("document.querySelector('main h1').textContent");
                assert!(h1.as_str().unwrap().starts_with(name), "{link}: {h1}");
            }
        }
    }

    // The same calls are in the store's file, for a Rust program that reads it directly.
    drop(served);
    let file = SqliteServer::open(&db).unwrap();
    let on_file = WeaveClient::new("py-entity", "py-project", Arc::new(file), false).unwrap();
    assert_eq!(on_file.get_calls(CallsQuery::new()).size().unwrap(), 8);
}

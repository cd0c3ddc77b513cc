//! `weave serve` as a user runs it: the real binary in a process of its own, on a real SQLite
//! file, reached over real sockets.

mod support;

use std::io::{Read, Write};
use std::sync::Arc;

use base64::Engine;
use serde_json::{json, Value};
use support::{http, weave_bin, Served};
use weave_core::server::{RemoteServer, RemoteServerConfig};
use weave_core::{CallOptions, SqliteServer, SqliteServerConfig, TraceServer, WeaveClient};

fn basic(key: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("api:{key}"))
    )
}

#[test]
fn it_prints_its_url_answers_health_and_unknown_routes_are_json_404s() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("weave.sqlite");
    let s = Served::start(&db, &[]);
    assert!(s.url.starts_with("http://127.0.0.1:"), "{}", s.ready_line);
    assert!(
        s.ready_line.contains(&db.display().to_string()),
        "the ready line names the store: {}",
        s.ready_line
    );
    let c = http();
    for prefix in ["", "/traces"] {
        let r = c.get(format!("{}{prefix}/health", s.url)).send().unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.json::<Value>().unwrap(), json!({"status": "ok"}));
        let r = c
            .get(format!("{}{prefix}/server_info", s.url))
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
        let info: Value = r.json().unwrap();
        assert_eq!(info["min_required_weave_python_version"], "0.0.0");
    }
    let r = c.get(format!("{}/nope", s.url)).send().unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<Value>().unwrap(), json!({"detail": "Not Found"}));
    let r = c.get(format!("{}/call/start", s.url)).send().unwrap();
    assert_eq!(r.status(), 405, "a POST route asked with GET");
    // A call that does not exist is `{"call": null}`, as on the Weave server.
    let r = c
        .post(format!("{}/call/read", s.url))
        .body(r#"{"project_id": "e/p", "id": "01945d2e-3b5c-7d2a-9c1e-4b5a6c7d8e9f"}"#)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().unwrap(), json!({"call": null}));
    // A body that is not JSON: FastAPI's 422 shape.
    let r = c
        .post(format!("{}/call/start", s.url))
        .body(r#"{"start": {"project_id": 5}}"#)
        .send()
        .unwrap();
    assert_eq!(r.status(), 422);
    let body: Value = r.json().unwrap();
    assert_eq!(
        body["detail"][0]["loc"],
        json!(["body", "start", "project_id"])
    );
}

#[test]
fn binding_beyond_loopback_needs_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(weave_bin())
        .args(["serve", "--host", "0.0.0.0", "--port", "0", "--db"])
        .arg(dir.path().join("w.sqlite"))
        .env_remove("WEAVE_SERVER_API_KEY")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("without an API key") && err.contains("--api-key"),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "no ready line when refused");
    // With a key it serves, and says where to connect.
    let s = Served::start(
        &dir.path().join("w.sqlite"),
        &["--host", "0.0.0.0", "--api-key", "k"],
    );
    assert!(s.url.starts_with("http://127.0.0.1:"), "{}", s.ready_line);
}

#[test]
fn with_a_key_every_route_but_health_needs_basic_api_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new(weave_bin());
    cmd.args(["serve", "--port", "0", "--db"])
        .arg(dir.path().join("w.sqlite"))
        .env("WEAVE_SERVER_API_KEY", "s3cret")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let s = Served::spawn(cmd);
    let c = http();
    assert_eq!(
        c.get(format!("{}/health", s.url)).send().unwrap().status(),
        200
    );
    for (auth, want) in [
        (None, 401),
        (Some(basic("wrong")), 401),
        (Some("Basic !!!".to_string()), 401),
        (Some(basic("s3cret")), 200),
    ] {
        let mut rb = c.get(format!("{}/server_info", s.url));
        if let Some(a) = &auth {
            rb = rb.header("authorization", a);
        }
        let r = rb.send().unwrap();
        assert_eq!(r.status(), want, "{auth:?}");
        if want == 401 {
            let body: Value = r.json().unwrap();
            assert!(body["reason"].is_string(), "{body}");
        }
    }
    // Unknown routes too: nothing is answered without the key.
    assert_eq!(
        c.get(format!("{}/nope", s.url)).send().unwrap().status(),
        401
    );
    // The Rust remote backend sends the key as Basic api:<key>.
    let keyed = |key: &str| {
        let mut config = RemoteServerConfig::new(&s.url);
        config.api_key = Some(key.into());
        RemoteServer::new(config).unwrap()
    };
    assert!(keyed("s3cret").server_info().is_ok());
    assert!(keyed("nope").server_info().is_err());
}

#[test]
fn bodies_over_31_mib_are_refused_with_413_and_the_server_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let s = Served::start(&dir.path().join("w.sqlite"), &[]);
    let c = http();
    let big = vec![b' '; 31 * 1024 * 1024 + 1];
    let r = c
        .post(format!("{}/call/upsert_batch", s.url))
        .body(big)
        .send()
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(
        r.json::<Value>().unwrap(),
        json!({"reason": "Request too large"})
    );
    // Without a Content-Length (chunked), cut off as it passes the limit.
    let addr = s.url.trim_start_matches("http://").to_string();
    let mut sock = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        sock,
        "POST /obj/create HTTP/1.1\r\nHost: {addr}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let chunk = vec![b'x'; 1024 * 1024];
    let mut answer = String::new();
    for _ in 0..40 {
        if write!(sock, "{:x}\r\n", chunk.len()).is_err()
            || sock.write_all(&chunk).is_err()
            || sock.write_all(b"\r\n").is_err()
        {
            break; // the server answered and closed
        }
    }
    let _ = sock.write_all(b"0\r\n\r\n"); // the end of the body
    let _ = sock.set_read_timeout(Some(std::time::Duration::from_secs(30)));
    let _ = sock.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer:.200}");
    assert_eq!(
        c.get(format!("{}/health", s.url)).send().unwrap().status(),
        200
    );
}

/// The link weave-rs prints for a call is answered by `weave serve` on the same store.
#[test]
fn the_link_a_call_prints_is_answered() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("weave.sqlite");
    let s = Served::start(&db, &[]);
    // A traced program on the same file, printing links to where the server listens.
    let store = SqliteServer::with_config(
        SqliteServerConfig::default()
            .with_path(Some(db.clone()))
            .with_app_url(s.url.clone()),
    )
    .unwrap();
    let client = WeaveClient::new("acme", "my proj", Arc::new(store), true).unwrap();
    let call = client
        .create_call_with(
            "agent",
            json!({"q": "hi"}),
            CallOptions::new().use_stack(false),
        )
        .unwrap();
    client.finish_call(&call, json!("answer")).unwrap();
    client.flush();
    let link = call.ui_url();
    assert!(link.starts_with(&s.url), "{link}");
    let r = http().get(&link).send().unwrap();
    assert_eq!(r.status(), 200, "{link}");
    let got: Value = r.json().unwrap();
    assert_eq!(got["id"], call.id());
    assert_eq!(got["inputs"], json!({"q": "hi"}));
    assert_eq!(got["output"], "answer");
    assert_eq!(got["project_id"], "acme/my proj");
    // An id that does not exist is a 404 naming it.
    let missing = link.replace(call.id(), "01945d2e-3b5c-7d2a-9c1e-4b5a6c7d8e9f");
    let r = http().get(&missing).send().unwrap();
    assert_eq!(r.status(), 404);
    assert!(r
        .text()
        .unwrap()
        .contains("01945d2e-3b5c-7d2a-9c1e-4b5a6c7d8e9f"));
}

/// SIGTERM: the server stops accepting, answers what it has, checkpoints the store and exits
/// 0; every acknowledged write is in the file.
#[test]
fn sigterm_stops_it_cleanly_and_nothing_acknowledged_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("weave.sqlite");
    let s = Served::start(&db, &[]);
    let backend = RemoteServer::new(RemoteServerConfig::new(&s.url)).unwrap();
    let client = WeaveClient::new("e", "p", Arc::new(backend), true).unwrap();
    for i in 0..2_000 {
        let c = client
            .create_call_with("op", json!({"i": i}), CallOptions::new().use_stack(false))
            .unwrap();
        client.finish_call(&c, i).unwrap();
    }
    assert!(client.flush_timeout(std::time::Duration::from_secs(60)));
    let (status, stderr) = s.terminate();
    assert!(status.success(), "exit {status:?}; stderr:\n{stderr}");
    assert!(stderr.contains("stopped"), "{stderr}");
    // The log was folded into the file.
    let wal = dir.path().join("weave.sqlite-wal");
    assert!(
        !wal.exists() || std::fs::metadata(&wal).unwrap().len() == 0,
        "the WAL is checkpointed at shutdown"
    );
    let store = SqliteServer::open(&db).unwrap();
    let mut q = weave_core::schema::CallsQueryReq::new("e/p");
    q.columns = Some(vec!["id".into(), "ended_at".into()]);
    let calls: Vec<_> = store
        .calls_query_stream(q)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(calls.len(), 2_000);
    assert!(calls.iter().all(|c| c.ended_at.is_some()));
}

/// Two processes write one store: `weave serve` (for an HTTP client) and this test process
/// (a traced program writing the file in-process). Every call of both arrives.
#[test]
fn a_program_and_weave_serve_write_one_store_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("weave.sqlite");
    let s = Served::start(&db, &[]);
    const N: usize = 5_000;
    /// `N` calls of `project` through `backend`, flushed, none dropped.
    fn write(backend: Arc<dyn TraceServer>, project: &str) {
        let client = WeaveClient::new("e", project, backend, true).unwrap();
        for i in 0..N {
            let c = client
                .create_call_with("op", json!({"i": i}), CallOptions::new().use_stack(false))
                .unwrap();
            client.finish_call(&c, i).unwrap();
        }
        assert!(client.flush_timeout(std::time::Duration::from_secs(120)));
        assert_eq!(client.dropped(), 0);
    }
    let over_http = {
        let url = s.url.clone();
        std::thread::spawn(move || {
            write(
                Arc::new(RemoteServer::new(RemoteServerConfig::new(&url)).unwrap()),
                "http",
            )
        })
    };
    let in_process = {
        let db = db.clone();
        std::thread::spawn(move || write(Arc::new(SqliteServer::open(&db).unwrap()), "local"))
    };
    over_http.join().expect("the HTTP writer");
    in_process.join().expect("the in-process writer");
    // Read back through the server and through the file: both see both writers' calls.
    let via_server = RemoteServer::new(RemoteServerConfig::new(&s.url)).unwrap();
    let via_file = SqliteServer::open(&db).unwrap();
    for backend in [&via_server as &dyn TraceServer, &via_file] {
        for project in ["e/http", "e/local"] {
            let mut q = weave_core::schema::CallsQueryReq::new(project);
            q.columns = Some(vec!["id".into(), "inputs".into(), "ended_at".into()]);
            let calls: Vec<_> = backend
                .calls_query_stream(q)
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert_eq!(calls.len(), N, "{project} through {backend:?}");
            let mut seen: Vec<i64> = calls
                .iter()
                .map(|c| c.inputs["i"].as_i64().unwrap())
                .collect();
            seen.sort_unstable();
            assert!(seen.iter().copied().eq(0..N as i64), "{project}");
            assert!(calls.iter().all(|c| c.ended_at.is_some()));
        }
    }
}

/// `weave serve` says it merges a call's start and end in any order, so the remote backend
/// keeps two batches in flight; calls whose ends come many batches after their starts (and
/// may be written before them) all arrive whole.
#[test]
fn two_batches_in_flight_lose_nothing_and_merge_every_call() {
    let dir = tempfile::tempdir().unwrap();
    let s = Served::start(&dir.path().join("weave.sqlite"), &[]);
    let backend = RemoteServer::new(RemoteServerConfig::new(&s.url)).unwrap();
    assert_eq!(
        backend.server_info().unwrap().call_batches_in_any_order,
        Some(true)
    );
    assert_eq!(backend.concurrent_call_batches(), 2);
    let client = WeaveClient::new("e", "inflight", Arc::new(backend), false).unwrap();
    const ROOTS: usize = 20;
    const CHILDREN: usize = 500;
    for r in 0..ROOTS {
        let root = client
            .create_call_with("root", json!({"r": r}), CallOptions::new().use_stack(false))
            .unwrap();
        for i in 0..CHILDREN {
            let c = client
                .create_call_with(
                    "child",
                    json!({"i": i}),
                    CallOptions::new().use_stack(false).parent(&root),
                )
                .unwrap();
            client.finish_call(&c, i).unwrap();
        }
        client.finish_call(&root, json!({"done": r})).unwrap();
    }
    assert!(client.flush_timeout(std::time::Duration::from_secs(120)));
    assert_eq!(client.dropped(), 0);
    let calls: Vec<_> = client
        .get_calls(weave_core::CallsQuery::new())
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(calls.len(), ROOTS * (CHILDREN + 1));
    for c in &calls {
        assert!(
            c.started_at().as_nanos() > 0 && c.ended_at().is_some(),
            "{c:?}"
        );
        assert!(!c.op_name().is_empty(), "the start is there: {c:?}");
    }
    let roots: Vec<_> = calls.iter().filter(|c| c.parent_id().is_none()).collect();
    assert_eq!(roots.len(), ROOTS);
    for root in roots {
        assert_eq!(root.output()["done"], root.inputs()["r"]);
    }
}

/// `/threads/stream_query`: threads aggregated over their turns (calls that are their own
/// turn), as the Weave server lists them; calls inside a turn do not count.
#[test]
fn threads_are_listed_with_their_turns() {
    let dir = tempfile::tempdir().unwrap();
    let s = Served::start(&dir.path().join("weave.sqlite"), &[]);
    let backend = RemoteServer::new(RemoteServerConfig::new(&s.url)).unwrap();
    let client = WeaveClient::new("e", "p", Arc::new(backend), true).unwrap();
    let t0 = weave_core::Timestamp::from_nanos(1_700_000_000_000_000_000);
    let ms = |n: i64| weave_core::Timestamp::from_nanos(t0.as_nanos() + n * 1_000_000);
    // Thread "a": turns of 10, 20 and 40 ms, the second with a nested call; thread "b": one
    // turn still running; and a call with no thread.
    let mut turn_ids = Vec::new();
    for (start, len) in [(0, 10), (100, 20), (200, 40)] {
        let turn = client
            .create_call_with(
                "turn",
                json!({}),
                CallOptions::new()
                    .use_stack(false)
                    .thread_id("a")
                    .started_at(ms(start)),
            )
            .unwrap();
        if start == 100 {
            let inner = client
                .create_call_with(
                    "inner",
                    json!({}),
                    CallOptions::new().use_stack(false).parent(&turn),
                )
                .unwrap();
            assert_eq!(
                inner.turn_id(),
                Some(turn.id()),
                "a nested call is in the turn"
            );
            client.finish_call(&inner, 1).unwrap();
        }
        let end = weave_core::schema::EndedCallSchemaForInsert {
            project_id: "e/p".into(),
            id: turn.id().into(),
            ended_at: ms(start + len),
            exception: None,
            output: json!(1),
            summary: Default::default(),
            wb_run_step_end: None,
        };
        client.flush();
        client
            .server()
            .call_end(weave_core::schema::CallEndReq { end })
            .unwrap();
        turn_ids.push(turn.id().to_string());
    }
    let running = client
        .create_call_with(
            "turn",
            json!({}),
            CallOptions::new()
                .use_stack(false)
                .thread_id("b")
                .started_at(ms(500)),
        )
        .unwrap();
    let plain = client
        .create_call_with("plain", json!({}), CallOptions::new().use_stack(false))
        .unwrap();
    client.finish_call(&plain, 1).unwrap();
    client.flush();

    let threads = |body: Value| -> Vec<Value> {
        let r = http()
            .post(format!("{}/threads/stream_query", s.url))
            .json(&body)
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "application/jsonl");
        r.text()
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let all = threads(json!({"project_id": "e/p"}));
    assert_eq!(all.len(), 2, "{all:#?}");
    // Newest activity first: "b" (started at 500 ms, running) before "a" (last end 240 ms).
    let (b, a) = (&all[0], &all[1]);
    assert_eq!(a["thread_id"], "a");
    assert_eq!(a["turn_count"], 3, "the nested call is not a turn");
    assert_eq!(a["first_turn_id"], turn_ids[0].as_str());
    assert_eq!(a["last_turn_id"], turn_ids[2].as_str());
    let ts = |v: &Value| serde_json::from_value::<weave_core::Timestamp>(v.clone()).unwrap();
    assert_eq!(ts(&a["start_time"]), ms(0));
    assert_eq!(ts(&a["last_updated"]), ms(240));
    assert_eq!(a["p50_turn_duration_ms"], 20.0);
    assert!((a["p99_turn_duration_ms"].as_f64().unwrap() - 39.6).abs() < 1e-9);
    assert_eq!(b["thread_id"], "b");
    assert_eq!(b["turn_count"], 1);
    assert_eq!(b["first_turn_id"], running.id());
    assert_eq!(ts(&b["last_updated"]), ms(500));
    assert_eq!(b["p50_turn_duration_ms"], Value::Null, "no turn has ended");
    // Filters, sorting, paging.
    let only_a = threads(json!({"project_id": "e/p", "filter": {"thread_ids": ["a"]}}));
    assert_eq!(only_a.len(), 1);
    assert_eq!(only_a[0]["thread_id"], "a");
    let late = threads(
        json!({"project_id": "e/p", "filter": {"after_datetime": "2023-11-14T22:13:20.150Z"}}),
    );
    assert_eq!(late.len(), 2);
    assert_eq!(
        late[1]["turn_count"], 1,
        "only the turn that started after 150 ms"
    );
    let by_turns = threads(json!({"project_id": "e/p",
        "sort_by": [{"field": "turn_count", "direction": "desc"}], "limit": 1}));
    assert_eq!(by_turns.len(), 1);
    assert_eq!(by_turns[0]["thread_id"], "a");
    let second = threads(json!({"project_id": "e/p", "offset": 1}));
    assert_eq!(second.len(), 1);
    assert_eq!(second[0]["thread_id"], "a");
    // An unknown sort field is the client's mistake: 400 naming it.
    let r = http()
        .post(format!("{}/threads/stream_query", s.url))
        .json(&json!({"project_id": "e/p", "sort_by": [{"field": "nope", "direction": "asc"}]}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().unwrap().contains("nope"));
}

/// Browsers: another site's page cannot write or read through the server (its `Origin` is
/// refused), and a name rebound to 127.0.0.1 is refused on a server without a key; the
/// viewer's own requests, and clients that send no `Origin`, go through.
#[test]
fn other_sites_pages_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = Served::start(&dir.path().join("weave.sqlite"), &[]);
    let body = json!({"project_id": "e/p", "weave_ref": "weave:///e/p/call/x",
        "feedback_type": "wandb.note.1", "payload": {"note": "from elsewhere"}});
    let post = |origin: Option<&str>| {
        let mut r = http()
            .post(format!("{}/feedback/create", s.url))
            .json(&body);
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        r.send().unwrap()
    };
    let refused = post(Some("https://evil.example"));
    assert_eq!(refused.status(), 403);
    assert!(refused.text().unwrap().contains("other sites"));
    assert_eq!(post(Some(&s.url)).status(), 200, "the viewer's own page");
    assert_eq!(post(None).status(), 200, "an SDK");
    let port = s.url.rsplit(':').next().unwrap();
    let rebound = http()
        .get(format!("{}/server_info", s.url))
        .header("host", format!("evil.example:{port}"))
        .send()
        .unwrap();
    assert_eq!(rebound.status(), 403);
}

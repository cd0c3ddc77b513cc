//! One trace across three real processes logging to the reference server: a caller's op
//! makes an HTTP request (reqwest, `with_trace_context`) to a callee (axum), whose op starts a
//! worker process (`Context::set_env`); the callee continues the caller's call from the
//! request's headers, the worker the callee's from its environment.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use weave::propagation::RequestBuilderExt;
use weave::server::{RemoteServer, RemoteServerConfig};
use weave::{CallsQuery, WeaveClient};

use crate::common::child::{child_done, run_child, CHILD_DONE};
use crate::common::RefServer;

const ENTITY: &str = "remote-tests";
const LISTENING: &str = "CALLEE LISTENING ";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn init() -> weave::WeaveGuard {
    let project = std::env::var("TEST_PROJECT").unwrap();
    weave::init(&format!("{ENTITY}/{project}")).unwrap().1
}

// ---- the caller ------------------------------------------------------------------------

#[weave::op]
async fn checkout(callee: &str, amount: u64) -> Value {
    reqwest::Client::new()
        .post(format!("{callee}/charge"))
        .with_trace_context()
        .json(&json!({"amount": amount}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[weave::op(sample_rate = 0.0)]
async fn unsampled_checkout(callee: &str, amount: u64) -> Value {
    checkout(callee, amount).await
}

#[test]
#[ignore = "run in a child process by a_trace_crosses_processes_over_http_and_the_environment"]
fn child_caller() {
    let guard = init();
    let callee = std::env::var("CALLEE_URL").unwrap();
    let rt = runtime();
    rt.block_on(async {
        let (reply, call) = weave::capture_call_async(checkout(&callee, 42)).await;
        let call = call.expect("checkout traced");
        // The callee saw this call as its current (remote) call.
        assert_eq!(reply["parent"], call.id(), "{reply}");
        assert_eq!(reply["receipt"], "receipt-42");
        println!("ROOT {} {}", call.id(), call.trace_id());

        // Sampled out here: the callee and its worker record nothing either.
        assert_eq!(unsampled_checkout(&callee, 7).await["receipt"], "receipt-7");

        // Outside any call: nothing to continue, the callee's call is a root.
        let http = reqwest::Client::new();
        let charge = |request: reqwest::RequestBuilder, amount: u64| async move {
            let reply = request
                .json(&json!({"amount": amount}))
                .send()
                .await
                .unwrap();
            reply.json::<Value>().await.unwrap()
        };
        let request = http.post(format!("{callee}/charge")).with_trace_context();
        let reply = charge(request, 1).await;
        assert_eq!(reply["parent"], Value::Null);
        // A malformed traceparent: ignored (reported once by the callee), a root again.
        let request = http
            .post(format!("{callee}/charge"))
            .header("traceparent", "00-not-a-trace-01");
        let reply = charge(request, 2).await;
        assert_eq!(reply["receipt"], "receipt-2");
        assert_eq!(reply["parent"], Value::Null);

        http.post(format!("{callee}/stop")).send().await.unwrap();
    });
    drop(guard);
    child_done("across_processes::child_caller");
}

// ---- the callee ------------------------------------------------------------------------

#[weave::op]
async fn charge(amount: u64) -> String {
    let mut worker = Command::new(std::env::current_exe().unwrap());
    worker.args([
        "--exact",
        "across_processes::child_worker",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ]);
    worker.env("AMOUNT", amount.to_string());
    // The worker continues this call (TRACEPARENT, TRACESTATE).
    weave::Context::current().set_env(&mut worker);
    let out = tokio::task::spawn_blocking(move || worker.output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(CHILD_DONE),
        "worker failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    format!("receipt-{amount}")
}

type Stop = Arc<Mutex<Option<tokio::sync::oneshot::Sender<()>>>>;

async fn charge_handler(headers: HeaderMap, Json(body): Json<Value>) -> Json<Value> {
    let ctx = weave::Context::from_headers(&headers);
    let parent = ctx.call().map(|c| {
        assert!(c.is_remote());
        c.id().to_string()
    });
    let receipt = ctx.wrap(charge(body["amount"].as_u64().unwrap_or(0))).await;
    Json(json!({"receipt": receipt, "parent": parent}))
}

async fn stop_handler(State(stop): State<Stop>) {
    if let Some(tx) = stop.lock().unwrap().take() {
        let _ = tx.send(());
    }
}

#[test]
#[ignore = "run in a child process by a_trace_crosses_processes_over_http_and_the_environment"]
fn child_callee() {
    let guard = init();
    runtime().block_on(async {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let stop: Stop = Arc::new(Mutex::new(Some(tx)));
        let app = Router::new()
            .route("/charge", post(charge_handler))
            .route("/stop", post(stop_handler))
            .with_state(stop);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("{LISTENING}http://{}", listener.local_addr().unwrap());
        use std::io::Write;
        std::io::stdout().flush().unwrap();
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await
            .unwrap();
    });
    drop(guard);
    child_done("across_processes::child_callee");
}

// ---- the worker ------------------------------------------------------------------------

#[weave::op]
fn audit(amount: u64) -> bool {
    amount > 0
}

#[test]
#[ignore = "run in a child process by charge"]
fn child_worker() {
    let guard = init();
    let amount: u64 = std::env::var("AMOUNT").unwrap().parse().unwrap();
    assert!(weave::Context::from_env().scope(|| audit(amount)));
    drop(guard);
    child_done("across_processes::child_worker");
}

// ---- the test --------------------------------------------------------------------------

#[test]
fn a_trace_crosses_processes_over_http_and_the_environment() {
    let server = RefServer::shared();
    let project = format!("p-{}", &weave::generate_id()[24..]);
    let env = [
        ("WF_TRACE_SERVER_URL", server.url.as_str()),
        ("TEST_PROJECT", project.as_str()),
        ("WEAVE_DB_PATH", ":memory:"),
    ];

    let mut callee = Command::new(std::env::current_exe().unwrap());
    callee
        .args([
            "--exact",
            "across_processes::child_callee",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .envs(env)
        .env_remove("TRACEPARENT")
        .env_remove("TRACESTATE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut callee = callee.spawn().unwrap();
    let mut out = BufReader::new(callee.stdout.take().unwrap());
    let url = loop {
        let mut line = String::new();
        assert_ne!(out.read_line(&mut line).unwrap(), 0, "the callee exited");
        // After libtest's `test child_callee ... `.
        if let Some(at) = line.find(LISTENING) {
            break line[at + LISTENING.len()..].trim().to_string();
        }
    };

    let caller = run_child(
        "across_processes::child_caller",
        &[env[0], env[1], env[2], ("CALLEE_URL", url.as_str())],
    );
    let status = callee.wait().unwrap();
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    let mut stderr = String::new();
    callee
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(
        status.success() && rest.contains(CHILD_DONE),
        "callee: {rest}\n{stderr}"
    );
    assert!(
        stderr.contains("weave: the trace context in the headers was ignored"),
        "the malformed traceparent is reported: {stderr}"
    );

    let root_line = String::from_utf8_lossy(&caller.stdout)
        .lines()
        .find_map(|l| l.split_once("ROOT ").map(|(_, r)| r.trim().to_string()))
        .expect("the caller printed its root");
    let (root_id, trace_id) = root_line.split_once(' ').unwrap();

    let http = RemoteServer::new(RemoteServerConfig::new(&server.url)).unwrap();
    let client = WeaveClient::new(ENTITY, project, Arc::new(http), false).unwrap();
    let calls: Vec<weave::Call> = client
        .get_calls(CallsQuery::new())
        .collect::<Result<_, _>>()
        .unwrap();
    let find = |name: &str, amount: u64| {
        let found: Vec<&weave::Call> = calls
            .iter()
            .filter(|c| c.func_name() == name && c.inputs()["amount"] == amount)
            .collect();
        assert!(found.len() <= 1, "{name}({amount}) twice");
        found.first().copied().cloned()
    };

    // One trace: checkout (caller) → charge (callee) → audit (worker).
    let checkout = find("checkout", 42).expect("checkout");
    assert_eq!(checkout.id(), root_id);
    assert_eq!(checkout.trace_id(), trace_id);
    assert_eq!(checkout.parent_id(), None);
    let charge = find("charge", 42).expect("the callee's charge");
    assert_eq!(charge.parent_id(), Some(checkout.id()));
    assert_eq!(charge.trace_id(), trace_id);
    assert_eq!(charge.output(), "receipt-42");
    let audit = find("audit", 42).expect("the worker's audit");
    assert_eq!(audit.parent_id(), Some(charge.id()));
    assert_eq!(audit.trace_id(), trace_id);
    let tree: Vec<String> = client
        .get_calls(CallsQuery::from(weave::CallsFilter {
            trace_ids: Some(vec![trace_id.to_string()]),
            ..Default::default()
        }))
        .map(|c| c.unwrap().func_name().to_string())
        .collect();
    assert_eq!(tree, ["checkout", "charge", "audit"]);

    // Sampled out in the caller: nothing recorded anywhere.
    for name in ["checkout", "unsampled_checkout", "charge", "audit"] {
        assert!(find(name, 7).is_none(), "{name}(7) was recorded");
    }
    // No trace context, or a malformed one: the callee's calls make a trace of their own.
    for amount in [1, 2] {
        let charge = find("charge", amount).expect("charge");
        assert_eq!(charge.parent_id(), None);
        assert_ne!(charge.trace_id(), trace_id);
        let audit = find("audit", amount).expect("audit");
        assert_eq!(audit.parent_id(), Some(charge.id()));
        assert_eq!(audit.trace_id(), charge.trace_id());
    }
    assert_eq!(
        calls.len(),
        7,
        "{:?}",
        calls.iter().map(|c| c.func_name()).collect::<Vec<_>>()
    );
}

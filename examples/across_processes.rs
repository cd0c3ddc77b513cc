//! Traces across processes: a shop's `checkout` calls a payments service over HTTP, which
//! starts an audit worker process — three processes, one trace.
//!
//! ```text
//! cargo run --example across_processes
//! ```
//!
//! - the shop (this process) puts its current call into the request's headers:
//!   `reqwest::RequestBuilder::with_trace_context()` (W3C `traceparent` + `tracestate`);
//! - the payments service (this program again, `payments`, an axum server) continues it:
//!   `Context::from_headers(&headers).wrap(handler_work)` — its ops become children of
//!   `checkout`;
//! - it starts the audit worker (`audit`) with the current call in the worker's
//!   environment (`Context::current().set_env(&mut command)`: `TRACEPARENT`, `TRACESTATE`),
//!   which continues it with `Context::from_env().scope(…)`.
//!
//! All three log to the same embedded store (the default file, or `WEAVE_DB_PATH`, which the
//! children inherit); services on several machines would log to one `weave serve` or W&B.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use weave::propagation::RequestBuilderExt;
use weave::{CallsFilter, CallsQuery, Context};

const PROJECT: &str = "acme/shop";

fn main() {
    match std::env::args().nth(1).as_deref() {
        Some("payments") => payments_service(),
        Some("audit") => audit_worker(),
        _ => shop(),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

// ---- the shop --------------------------------------------------------------------------

#[weave::op]
async fn checkout(payments: &str, cart: Vec<&str>, amount_cents: u64) -> Value {
    let reply = reqwest::Client::new()
        .post(format!("{payments}/charge"))
        .with_trace_context()
        .json(&json!({"amount_cents": amount_cents}))
        .send()
        .await
        .expect("the payments service answers");
    json!({"items": cart.len(), "payment": reply.json::<Value>().await.expect("JSON")})
}

fn shop() {
    let (client, guard) = weave::init(PROJECT).expect("weave::init");
    let mut payments = Command::new(std::env::current_exe().expect("this program"))
        .arg("payments")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the payments service");
    // Its first line is its address (the reader is kept: the service's pipe stays open).
    let mut out = BufReader::new(payments.stdout.take().expect("its stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("its address");
    let url = line.trim().to_string();

    let rt = runtime();
    let (order, call) = rt.block_on(async {
        let out = weave::capture_call_async(checkout(&url, vec!["tea", "scones"], 1250)).await;
        let _ = reqwest::Client::new()
            .post(format!("{url}/stop"))
            .send()
            .await;
        out
    });
    let call = call.expect("checkout is traced");
    assert!(payments.wait().expect("payments exits").success());
    drop(out);
    println!("order: {order}");
    drop(guard); // this process's calls written

    // The whole trace, as any process reading the store sees it.
    let trace: Vec<weave::Call> = client
        .get_calls(CallsQuery::from(CallsFilter {
            trace_ids: Some(vec![call.trace_id().to_string()]),
            ..Default::default()
        }))
        .collect::<Result<_, _>>()
        .expect("the trace");
    println!("trace {}:", call.trace_id());
    for c in &trace {
        let depth = std::iter::successors(Some(c), |c| {
            trace.iter().find(|p| Some(p.id()) == c.parent_id())
        })
        .count();
        println!("{}{} ({})", "  ".repeat(depth - 1), c.func_name(), c.id());
    }
    let names: Vec<&str> = trace.iter().map(|c| c.func_name()).collect();
    assert_eq!(names, ["checkout", "charge_card", "audit_payment"]);
    assert_eq!(trace[1].parent_id(), Some(trace[0].id()));
    assert_eq!(trace[2].parent_id(), Some(trace[1].id()));
    println!("open it: {}", call.ui_url());
}

// ---- the payments service --------------------------------------------------------------

#[weave::op]
async fn charge_card(amount_cents: u64) -> Value {
    // The audit worker continues this call from its environment.
    let mut audit = Command::new(std::env::current_exe().expect("this program"));
    audit
        .arg("audit")
        .env("AMOUNT_CENTS", amount_cents.to_string());
    Context::current().set_env(&mut audit);
    let status = tokio::task::spawn_blocking(move || audit.status())
        .await
        .expect("join")
        .expect("run the audit worker");
    json!({"charged": amount_cents, "audited": status.success()})
}

type Stop = Arc<Mutex<Option<tokio::sync::oneshot::Sender<()>>>>;

async fn charge(headers: HeaderMap, Json(body): Json<Value>) -> Json<Value> {
    let amount = body["amount_cents"].as_u64().unwrap_or(0);
    // The request's trace context: `charge_card` becomes a child of the shop's `checkout`.
    Json(
        Context::from_headers(&headers)
            .wrap(charge_card(amount))
            .await,
    )
}

async fn stop(State(stop): State<Stop>) {
    if let Some(tx) = stop.lock().expect("lock").take() {
        let _ = tx.send(());
    }
}

fn payments_service() {
    let (_client, guard) = weave::init(PROJECT).expect("weave::init");
    runtime().block_on(async {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let app = Router::new()
            .route("/charge", post(charge))
            .route("/stop", post(stop))
            .with_state(Arc::new(Mutex::new(Some(tx))) as Stop);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        println!("http://{}", listener.local_addr().expect("its address"));
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await
            .expect("serve");
    });
    drop(guard);
}

// ---- the audit worker ------------------------------------------------------------------

#[weave::op]
fn audit_payment(amount_cents: u64) -> bool {
    amount_cents < 100_000
}

fn audit_worker() {
    let (_client, guard) = weave::init(PROJECT).expect("weave::init");
    let amount = std::env::var("AMOUNT_CENTS")
        .ok()
        .and_then(|a| a.parse().ok())
        .unwrap_or(0);
    let ok = Context::from_env().scope(|| audit_payment(amount));
    drop(guard);
    std::process::exit(if ok { 0 } else { 1 });
}

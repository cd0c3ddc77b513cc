//! Reads on a large embedded store (criterion group `query`).
//!
//! The store holds 1,000,000 calls of project `bench/query`:
//! - one trace of exactly 10,000 calls: an `evaluate` root with 9,999 `predict` children;
//! - 198,000 small traces of 5 calls: `agent` → `llm` (plan), `get_weather` (fails in one
//!   trace of 7), `llm` (summary), `scorer`. Inputs are small JSON objects with some text;
//!   `llm` inputs have a `prompt` naming one of ten cities (one prompt in ten names
//!   `Zanzibar`).
//!
//! Ids, each checked against the known answer outside the timed part:
//! - `by_op_name_limit100`: `get_calls` with `op_names: [<llm op ref>]` (the exact version, as
//!   `op.ref` gives it), `limit(100)`, default order (oldest first), collected: 100 calls.
//!   Target p50 <= 10 ms.
//! - `by_op_name_any_version_limit100`: the same with the `llm:*` wildcard (every version of
//!   the op, as the UI asks). Reported.
//! - `trace_10k`: every call of the 10,000-call trace (`trace_ids` filter), collected.
//!   Target <= 50 ms.
//! - `filtered_count`: `size()` of failed `get_weather` calls (`op_names` filter plus
//!   `summary.weave.status == "error"`): 28,286. Target <= 50 ms.
//! - `iterate_all`: iterating every call of the project (`CallsQuery::new()`, all columns,
//!   1000 per page): 1,000,000 calls. Target >= 500,000 calls/s (criterion's `elem/s`).
//! - `contains_inputs`: `size()` of calls whose `inputs.prompt` `$contains` `"Zanzibar"`:
//!   39,600. Reported.
//!
//! - `viewer_calls_page`, `viewer_calls_page_errors`, `viewer_trace_page_10k`: what the trace
//!   viewer's pages ask `weave serve` (on loopback, in this process) when they open, over
//!   HTTP through the remote backend, answers parsed: the calls page's newest 51 calls (costs
//!   included) and their count, unfiltered and with the failed `get_weather` calls; the trace
//!   page's call and its whole 10,000-call trace (the tree's columns). The page counts calls
//!   up to 10,000 ("more than 10,000 calls"): an exact count of a million reads them all. The time includes the
//!   client's parsing, so it bounds the server's. Target <= 200 ms each.
//!
//! Criterion's figures are means; the p50 of every timed run (warm-up included) is printed
//! on stderr at the end (`query summary`), against the targets.
//!
//! Building the store through the client takes a while, so it is kept in
//! `target/bench-data/query-1m-v<STORE_VERSION>.sqlite` and reused (bump [`STORE_VERSION`]
//! when the shape changes; delete the file to rebuild). It is built under a temporary name
//! and renamed when complete.
//!
//! `WEAVE_BENCH_QUICK=1` uses a store of 10,000 calls (a trace of 1,000; cached separately)
//! and a few short samples (CI proves the benchmark still runs).
//!
//! Criterion takes at least 10 samples plus a warm-up run; `iterate_all` takes seconds per
//! run, so leave it out with a filter when iterating on the other ids, e.g.
//! `cargo bench --bench query -- 'query/(by_op|trace|filtered|contains)'`. A run over 10 s is
//! reported on stderr as it ends.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BenchmarkGroup, Criterion, SamplingMode, Throughput,
};
use serde_json::json;
mod common;

use weave::config::Settings;
use weave::query::field;
use weave::schema::{CallReadReq, CallsQueryReq, CallsQueryStatsReq};
use weave::server::{RemoteServer, RemoteServerConfig};
use weave::{CallsFilter, CallsQuery, SortBy, SqliteServer, TraceServer, WeaveClient};
use weave_server::{BackgroundServer, ServeOptions};

/// Bump when the shape of the store changes: a new file is built.
const STORE_VERSION: u32 = 2;
const ENTITY: &str = "bench";
const PROJECT: &str = "query";
const CITIES: [&str; 10] = [
    "Paris", "London", "Tokyo", "Zanzibar", "Lima", "Oslo", "Cairo", "Delhi", "Quito", "Perth",
];
/// The city `contains_inputs` looks for (`CITIES[NEEDLE_INDEX]`).
const NEEDLE_INDEX: u64 = 3;
/// Calls per small trace.
const SMALL_TRACE_CALLS: u64 = 5;
/// One small trace in this many has a failing tool call.
const FAIL_EVERY: u64 = 7;

/// The store's shape, and the answers the queries must give.
#[derive(Debug, Clone, Copy)]
struct Shape {
    label: &'static str,
    /// Calls in the store.
    total: u64,
    /// Calls of the big trace (its root included).
    big_trace: u64,
}

impl Shape {
    fn small_traces(&self) -> u64 {
        (self.total - self.big_trace) / SMALL_TRACE_CALLS
    }
    /// Failed `get_weather` calls: small traces `i` with `i % FAIL_EVERY == 0`.
    fn failed_tools(&self) -> u64 {
        self.small_traces().div_ceil(FAIL_EVERY)
    }
    /// `llm` prompts naming the needle city: two per small trace `i` with
    /// `i % 10 == NEEDLE_INDEX`.
    fn needle_prompts(&self) -> u64 {
        let n = self.small_traces();
        2 * (n / 10 + u64::from(n % 10 > NEEDLE_INDEX))
    }
    fn file_name(&self) -> String {
        format!("query-{}-v{STORE_VERSION}.sqlite", self.label)
    }
}

const FULL: Shape = Shape {
    label: "1m",
    total: 1_000_000,
    big_trace: 10_000,
};
const QUICK: Shape = Shape {
    label: "10k",
    total: 10_000,
    big_trace: 1_000,
};

fn op_ref(name: &str) -> String {
    format!("weave:///{ENTITY}/{PROJECT}/op/{name}:*")
}

fn settings() -> Settings {
    Settings::default().with_max_calls_queue_size(2_000_000)
}

/// Builds the store at `path` through the client: under a temporary name, renamed when
/// complete and checked.
fn build(path: &Path, shape: Shape) {
    assert_eq!(
        shape.small_traces() * SMALL_TRACE_CALLS + shape.big_trace,
        shape.total
    );
    let tmp = PathBuf::from(format!(
        "{}.building-{}",
        path.display(),
        std::process::id()
    ));
    let sidecars =
        |p: &Path| ["", "-wal", "-shm"].map(|s| PathBuf::from(format!("{}{s}", p.display())));
    for f in sidecars(&tmp) {
        let _ = std::fs::remove_file(f);
    }
    eprintln!(
        "query: building a store of {} calls at {} (once; reused afterwards)",
        shape.total,
        path.display()
    );
    let started = Instant::now();
    let server = Arc::new(SqliteServer::open(&tmp).unwrap());
    let client =
        WeaveClient::with_settings(ENTITY, PROJECT, server.clone(), true, &settings()).unwrap();

    // On a thread of its own, so that nothing of the build stays on this thread's call stack.
    let writer = client.clone();
    std::thread::spawn(move || write_calls(&writer, shape, started))
        .join()
        .unwrap();
    assert!(client.flush_timeout(Duration::from_secs(3600)));
    assert_eq!(client.dropped(), 0, "calls were dropped while building");
    let stored = client.get_calls(CallsQuery::new()).size().unwrap();
    assert_eq!(stored, shape.total, "the store does not hold every call");
    // Close the store (the writer thread and both connections), which checkpoints the WAL.
    drop(client);
    if Arc::strong_count(&server) > 1 {
        eprintln!(
            "query: warning: the store is still open after its client was dropped \
             (a WeaveClient handle leaked); its WAL is moved along with it"
        );
    }
    drop(server);
    for (from, to) in sidecars(&tmp).into_iter().zip(sidecars(path)) {
        if from.exists() {
            std::fs::rename(&from, &to).unwrap();
        }
    }
    eprintln!("query: built in {:.0} s", started.elapsed().as_secs_f64());
}

/// Records the calls of `shape` through `client`.
fn write_calls(client: &WeaveClient, shape: Shape, started: Instant) {
    // The big trace.
    let root = client
        .create_call(
            "evaluate",
            json!({"dataset": "weather-questions", "rows": shape.big_trace - 1}),
        )
        .unwrap();
    for row in 0..shape.big_trace - 1 {
        let city = CITIES[(row % 10) as usize];
        let c = client
            .create_call(
                "predict",
                json!({"row": row, "question": format!("What is the weather in {city}?")}),
            )
            .unwrap();
        client
            .finish_call(&c, json!({"answer": format!("Sunny in {city}")}))
            .unwrap();
    }
    client
        .finish_call(&root, json!({"rows": shape.big_trace - 1}))
        .unwrap();

    // The small traces.
    let usage = json!({"prompt_tokens": 20, "completion_tokens": 8});
    for i in 0..shape.small_traces() {
        let city = CITIES[(i % 10) as usize];
        let agent = client
            .create_call(
                "agent",
                json!({"question": format!("What is the weather in {city}? (#{i})")}),
            )
            .unwrap();
        let plan = client
            .create_call(
                "llm",
                json!({
                    "model": "gpt-4o-mini",
                    "prompt": format!("Plan how to answer question {i}: what is the weather in {city}?"),
                }),
            )
            .unwrap();
        client
            .finish_call(
                &plan,
                json!({"model": "gpt-4o-mini", "usage": usage, "text": format!("call get_weather({city})")}),
            )
            .unwrap();
        let tool = client
            .create_call("get_weather", json!({"city": city, "units": "metric"}))
            .unwrap();
        if i % FAIL_EVERY == 0 {
            client
                .fail_call(&tool, "weather API timed out".to_string())
                .unwrap();
        } else {
            client
                .finish_call(&tool, json!({"city": city, "temp_c": i % 35}))
                .unwrap();
        }
        let summary = client
            .create_call(
                "llm",
                json!({
                    "model": "gpt-4o-mini",
                    "prompt": format!("Summarize the weather report for {city} (request {i})"),
                }),
            )
            .unwrap();
        client
            .finish_call(
                &summary,
                json!({"model": "gpt-4o-mini", "usage": usage, "text": format!("It is sunny in {city}.")}),
            )
            .unwrap();
        let scorer = client
            .create_call(
                "scorer",
                json!({"expected": city, "answer": format!("It is sunny in {city}.")}),
            )
            .unwrap();
        client
            .finish_call(&scorer, json!({"correct": i % 3 != 0}))
            .unwrap();
        client
            .finish_call(&agent, format!("It is sunny in {city}."))
            .unwrap();
        if (i + 1) % 20_000 == 0 {
            // Keep the queue (and memory) bounded.
            client.flush();
            eprintln!(
                "query: {} calls written ({:.0} s)",
                shape.big_trace + (i + 1) * SMALL_TRACE_CALLS,
                started.elapsed().as_secs_f64()
            );
        }
    }
}

/// The store of `shape` (built when missing) and what the benchmarks need to know of it.
struct Store {
    client: WeaveClient,
    /// The store's file.
    path: PathBuf,
    /// The exact op ref of `llm` (`weave:///bench/query/op/llm:<digest>`).
    llm_op: String,
    /// The exact op ref of `get_weather`.
    tool_op: String,
    /// The id of the big trace.
    big_trace_id: String,
}

fn open_store(shape: Shape) -> Store {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory")
        .join("bench-data");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(shape.file_name());
    if !path.exists() {
        build(&path, shape);
    }
    let server = SqliteServer::open(&path).unwrap();
    let client =
        WeaveClient::with_settings(ENTITY, PROJECT, Arc::new(server), true, &settings()).unwrap();
    let total = client.get_calls(CallsQuery::new()).size().unwrap();
    assert_eq!(
        total,
        shape.total,
        "{} does not hold the expected calls: delete it to rebuild",
        path.display()
    );
    let first = |op: &str| {
        client
            .get_calls(
                CallsQuery::new()
                    .filter(CallsFilter {
                        op_names: Some(vec![op_ref(op)]),
                        ..Default::default()
                    })
                    .limit(1),
            )
            .next()
            .expect("a call of the op")
            .unwrap()
    };
    let llm_op = first("llm").op_name().to_string();
    let tool_op = first("get_weather").op_name().to_string();
    let big_trace_id = first("evaluate").trace_id().to_string();
    Store {
        client,
        path,
        llm_op,
        tool_op,
        big_trace_id,
    }
}

/// Every timed run of each id, for the p50s of the summary.
type Runs = Mutex<Vec<(&'static str, Vec<Duration>)>>;

/// Benchmarks `f` as `id`: each run is timed alone, then its result is checked and dropped
/// outside the timed part.
fn bench<T>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    runs: &Runs,
    id: &'static str,
    mut f: impl FnMut() -> T,
    check: impl Fn(&T),
) {
    runs.lock().unwrap().push((id, Vec::new()));
    g.bench_function(id, |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let t = Instant::now();
                let out = f();
                let d = t.elapsed();
                if d >= Duration::from_secs(10) {
                    eprintln!("query/{id}: one run took {:.1} s", d.as_secs_f64());
                }
                check(&out);
                drop(out);
                total += d;
                runs.lock().unwrap().last_mut().unwrap().1.push(d);
            }
            total
        })
    });
}

fn p50(xs: &[Duration]) -> Duration {
    let mut xs = xs.to_vec();
    xs.sort();
    xs.get(xs.len() / 2).copied().unwrap_or_default()
}

fn summary(runs: &Runs, shape: Shape) {
    eprintln!();
    eprintln!(
        "query summary: store of {} calls, trace of {} (p50 of every timed run)",
        shape.total, shape.big_trace
    );
    // Ids left out by a filter on the command line have no runs.
    for (id, times) in runs.lock().unwrap().iter().filter(|(_, t)| !t.is_empty()) {
        let p = p50(times);
        let ms = p.as_secs_f64() * 1e3;
        let target = match *id {
            "by_op_name_limit100" => Some((ms <= 10.0, "target p50 <= 10 ms")),
            "trace_10k" => Some((ms <= 50.0, "target <= 50 ms")),
            "filtered_count" => Some((ms <= 50.0, "target <= 50 ms")),
            v if v.starts_with("viewer_") => Some((ms <= 200.0, "target <= 200 ms")),
            _ => None,
        };
        let mut line = format!("  {id:<32} p50 {ms:>10.2} ms  ({} runs)", times.len());
        if *id == "iterate_all" {
            let rate = shape.total as f64 / p.as_secs_f64();
            let ok = rate >= 500_000.0;
            line.push_str(&format!(
                "  = {rate:.0} calls/s (target >= 500,000/s: {})",
                if ok { "ok" } else { "MISSED" }
            ));
        } else if let Some((ok, what)) = target {
            line.push_str(&format!("  ({what}: {})", if ok { "ok" } else { "MISSED" }));
        }
        eprintln!("{line}");
    }
}

fn queries(c: &mut Criterion) {
    let quick = common::quick();
    let shape = if quick { QUICK } else { FULL };
    let store = open_store(shape);
    let client = &store.client;
    let runs: Runs = Mutex::new(Vec::new());

    let mut g = c.benchmark_group("query");
    // The fast queries: many short samples.
    if quick {
        g.sample_size(10)
            .warm_up_time(Duration::from_millis(50))
            .measurement_time(Duration::from_millis(500));
    } else {
        g.sample_size(30)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(5));
    }

    let by_op = |op: String| {
        let query = CallsQuery::new()
            .filter(CallsFilter {
                op_names: Some(vec![op]),
                ..Default::default()
            })
            .limit(100);
        move || {
            client
                .get_calls(query.clone())
                .collect::<Result<Vec<_>, _>>()
                .unwrap()
        }
    };
    let llm_op = store.llm_op.clone();
    bench(
        &mut g,
        &runs,
        "by_op_name_limit100",
        by_op(llm_op.clone()),
        |calls| {
            assert_eq!(calls.len(), 100);
            assert!(calls.iter().all(|c| c.op_name() == llm_op));
        },
    );
    bench(
        &mut g,
        &runs,
        "by_op_name_any_version_limit100",
        by_op(op_ref("llm")),
        |calls| {
            assert_eq!(calls.len(), 100);
            assert!(calls.iter().all(|c| c.op_name() == llm_op));
        },
    );

    let trace = CallsQuery::new().filter(CallsFilter {
        trace_ids: Some(vec![store.big_trace_id.clone()]),
        ..Default::default()
    });
    bench(
        &mut g,
        &runs,
        "trace_10k",
        || {
            client
                .get_calls(trace.clone())
                .collect::<Result<Vec<_>, _>>()
                .unwrap()
        },
        |calls| {
            assert_eq!(calls.len() as u64, shape.big_trace);
            assert!(calls.iter().all(|c| c.trace_id() == store.big_trace_id));
        },
    );

    let failed_tools = CallsQuery::new()
        .filter(CallsFilter {
            op_names: Some(vec![store.tool_op.clone()]),
            ..Default::default()
        })
        .query(field("summary.weave.status").eq("error"));
    bench(
        &mut g,
        &runs,
        "filtered_count",
        || client.get_calls(failed_tools.clone()).size().unwrap(),
        |n| assert_eq!(*n, shape.failed_tools()),
    );

    // The viewer's pages, through weave serve on the same file.
    let served = BackgroundServer::start(
        Arc::new(SqliteServer::open(&store.path).unwrap()),
        ServeOptions::default().with_port(0),
    )
    .unwrap();
    let http = RemoteServer::new(RemoteServerConfig::new(served.url())).unwrap();
    let project_id = format!("{ENTITY}/{PROJECT}");
    let calls_page = |query: Option<weave::Query>, filter: Option<CallsFilter>| {
        let (http, project_id) = (&http, project_id.clone());
        move || {
            let mut req = CallsQueryReq::new(project_id.clone());
            req.filter = filter.clone();
            req.query = query.clone();
            req.sort_by = Some(vec![SortBy::desc("started_at")]);
            req.limit = Some(51);
            req.include_costs = true;
            let calls = http
                .calls_query_stream(req)
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            let count = http
                .calls_query_stats(CallsQueryStatsReq {
                    project_id: project_id.clone(),
                    filter: filter.clone(),
                    query: query.clone(),
                    // The page counts up to 10,000 ("more than 10,000 calls").
                    limit: Some(10_001),
                    include_total_storage_size: false,
                    expand_columns: None,
                })
                .unwrap()
                .count;
            (calls, count)
        }
    };
    bench(
        &mut g,
        &runs,
        "viewer_calls_page",
        calls_page(None, None),
        |(calls, count)| {
            assert_eq!(calls.len(), 51);
            assert_eq!(*count, shape.total.min(10_001));
        },
    );
    bench(
        &mut g,
        &runs,
        "viewer_calls_page_errors",
        calls_page(
            Some(weave::Query::new(field("summary.weave.status").eq("error"))),
            Some(CallsFilter {
                op_names: Some(vec![op_ref("get_weather")]),
                ..Default::default()
            }),
        ),
        |(calls, count)| {
            assert_eq!(calls.len(), 51);
            assert_eq!(*count, shape.failed_tools().min(10_001));
        },
    );
    // "Older →" deep in the store: the keyset page after the 500,000th newest call, as the
    // page asks it (started at or before the cursor, and not at it with an id from the
    // cursor's on: a range the start index answers, so any page costs what the first does).
    let middle = client
        .get_calls(
            CallsQuery::new()
                .sort_by(SortBy::desc("started_at"))
                .offset(shape.total / 2)
                .limit(1),
        )
        .next()
        .unwrap()
        .unwrap();
    let at = middle.started_at().to_string();
    let cursor: weave::Query = serde_json::from_value(json!({"$expr": {"$and": [
        {"$lte": [{"$getField": "started_at"}, {"$literal": at}]},
        {"$not": [{"$and": [
            {"$eq": [{"$getField": "started_at"}, {"$literal": at}]},
            {"$gte": [{"$getField": "id"}, {"$literal": middle.id()}]},
        ]}]},
    ]}}))
    .unwrap();
    bench(
        &mut g,
        &runs,
        "viewer_calls_page_deep",
        || {
            let mut req = CallsQueryReq::new(project_id.clone());
            req.query = Some(cursor.clone());
            req.sort_by = Some(vec![SortBy::desc("started_at")]);
            req.limit = Some(51);
            req.include_costs = true;
            http.calls_query_stream(req)
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap()
        },
        |calls| {
            assert_eq!(calls.len(), 51);
            assert!(calls[0].started_at <= middle.started_at());
        },
    );
    let root_id = client
        .get_calls(
            CallsQuery::new()
                .filter(CallsFilter {
                    trace_ids: Some(vec![store.big_trace_id.clone()]),
                    trace_roots_only: Some(true),
                    ..Default::default()
                })
                .limit(1),
        )
        .next()
        .unwrap()
        .unwrap()
        .id()
        .to_string();
    bench(
        &mut g,
        &runs,
        "viewer_trace_page_10k",
        || {
            let call = http
                .call_read(CallReadReq {
                    project_id: project_id.clone(),
                    id: root_id.clone(),
                    include_costs: true,
                    include_storage_size: false,
                    include_total_storage_size: false,
                })
                .unwrap()
                .call
                .unwrap();
            let mut req = CallsQueryReq::new(project_id.clone());
            req.filter = Some(CallsFilter {
                trace_ids: Some(vec![call.trace_id.clone()]),
                ..Default::default()
            });
            req.sort_by = Some(vec![SortBy::asc("started_at")]);
            req.columns = Some(
                [
                    "id",
                    "trace_id",
                    "parent_id",
                    "op_name",
                    "display_name",
                    "started_at",
                    "ended_at",
                    "exception",
                    "summary",
                ]
                .map(String::from)
                .to_vec(),
            );
            http.calls_query_stream(req)
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap()
        },
        |calls| assert_eq!(calls.len() as u64, shape.big_trace),
    );
    drop(served);

    // The slow ones: one run per sample, as few samples as criterion allows.
    g.sampling_mode(SamplingMode::Flat).sample_size(10);
    if quick {
        g.measurement_time(Duration::from_secs(3));
    } else {
        g.measurement_time(Duration::from_secs(10));
    }

    let needle = CITIES[NEEDLE_INDEX as usize];
    let contains = CallsQuery::new().query(field("inputs.prompt").contains(needle));
    bench(
        &mut g,
        &runs,
        "contains_inputs",
        || client.get_calls(contains.clone()).size().unwrap(),
        |n| assert_eq!(*n, shape.needle_prompts()),
    );

    g.throughput(Throughput::Elements(shape.total));
    bench(
        &mut g,
        &runs,
        "iterate_all",
        || {
            let mut n = 0u64;
            for call in client.get_calls(CallsQuery::new()) {
                std::hint::black_box(call.unwrap());
                n += 1;
            }
            n
        },
        |n| assert_eq!(*n, shape.total),
    );
    g.finish();
    summary(&runs, shape);
}

criterion_group!(benches, queries);
criterion_main!(benches);

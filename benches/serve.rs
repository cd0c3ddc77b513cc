//! `weave serve` on loopback, side by side with the reference server (criterion group
//! `serve`).
//!
//! - `upload/weave_serve`: 200,000 calls (100,000 traces of a root and a child) made by the Rust
//!   SDK from 2 threads into its remote backend (`RemoteServer`: batches of `/call/upsert_batch`)
//!   to `weave serve` over a fresh SQLite file; the clock stops when the client has flushed
//!   them all (every batch answered, so every call is committed). Target: >= 100,000 calls/s.
//! - `upload/reference`: the same client and calls into the reference server (the weave
//!   package's own `SqliteTraceServer` behind the project's shim, `tests/support/python`,
//!   started by weave-testkit's `RefServer`), in the same run. It serves one request at a
//!   time in Python (about a hundred calls a second here), so it gets 2,000 calls: its
//!   throughput per call is what is compared, and a run of 200,000 would take half an hour.
//! - `stream/weave_serve`: 100,000 stored calls read back through `/calls/stream_query` by
//!   the remote backend's streaming iterator (calls/s).
//!
//! Every run is checked: the store holds exactly the calls sent and the client dropped none.
//! `WEAVE_BENCH_QUICK=1` makes small runs (CI proves the benchmark runs).

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion, SamplingMode, Throughput};
use serde_json::json;
use weave::config::Settings;
use weave::server::{RemoteServer, RemoteServerConfig};
use weave::{CallOptions, CallsQuery, SqliteServer, TraceServer, WeaveClient};
use weave_server::{BackgroundServer, ServeOptions};

mod common;

const THREADS: u64 = 2;

fn sizes() -> (u64, u64, u64) {
    if common::quick() {
        (2_000, 100, 2_000)
    } else {
        (200_000, 2_000, 100_000)
    }
}

/// A client of the remote backend at `url`, with room in its queue for `calls`.
fn client(url: &str, project: &str, calls: u64) -> WeaveClient {
    let backend = RemoteServer::new(RemoteServerConfig::new(url)).unwrap();
    let settings = Settings::default().with_max_calls_queue_size(calls as usize * 2 + 1000);
    WeaveClient::with_settings("bench", project, Arc::new(backend), false, &settings).unwrap()
}

/// `calls` calls (traces of a root and a child) from [`THREADS`] threads, flushed; the time
/// from the first call to the end of the flush.
fn upload(client: &WeaveClient, calls: u64) -> Duration {
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for t in 0..THREADS {
            s.spawn(move || {
                for i in 0..calls / THREADS / 2 {
                    let opts = CallOptions::new().use_stack(false);
                    let root = client
                        .create_call_with("root", json!({"i": i, "t": t}), opts)
                        .unwrap();
                    let child = client
                        .create_call_with(
                            "child",
                            json!({"i": i, "tag": "x"}),
                            CallOptions::new().use_stack(false).parent(&root),
                        )
                        .unwrap();
                    client.finish_call(&child, i).unwrap();
                    client.finish_call(&root, i).unwrap();
                }
            });
        }
    });
    assert!(client.flush_timeout(Duration::from_secs(600)), "flushed");
    t0.elapsed()
}

fn check(client: &WeaveClient, calls: u64) {
    assert_eq!(client.dropped(), 0);
    assert_eq!(
        client.get_calls(CallsQuery::new()).size().unwrap(),
        calls,
        "every call arrived"
    );
}

fn bench(c: &mut Criterion) {
    let (ours, reference, streamed) = sizes();
    let mut g = c.benchmark_group("serve");
    g.sampling_mode(SamplingMode::Flat);
    g.sample_size(10);
    if common::quick() {
        g.warm_up_time(Duration::from_millis(1));
        g.measurement_time(Duration::from_millis(10));
    } else {
        g.measurement_time(Duration::from_secs(30));
    }

    g.throughput(Throughput::Elements(ours));
    g.bench_function("upload/weave_serve", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let dir = tempfile::tempdir().unwrap();
                let store = SqliteServer::open(dir.path().join("weave.sqlite")).unwrap();
                let server =
                    BackgroundServer::start(Arc::new(store), ServeOptions::default().with_port(0))
                        .unwrap();
                let client = client(server.url(), "upload", ours);
                total += upload(&client, ours);
                check(&client, ours);
            }
            total
        })
    });

    g.throughput(Throughput::Elements(reference));
    g.bench_function("upload/reference", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let server = weave_testkit::RefServer::fresh();
                let client = client(&server.url, "upload", reference);
                total += upload(&client, reference);
                check(&client, reference);
            }
            total
        })
    });

    // One store of `streamed` calls, served for every iteration; made only when this
    // benchmark is selected (criterion calls the closure only then).
    g.throughput(Throughput::Elements(streamed));
    g.bench_function("stream/weave_serve", |b| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("weave.sqlite");
        {
            let store = Arc::new(SqliteServer::open(&path).unwrap());
            let settings =
                Settings::default().with_max_calls_queue_size(streamed as usize * 2 + 1000);
            let local =
                WeaveClient::with_settings("bench", "stream", store, false, &settings).unwrap();
            upload(&local, streamed);
            check(&local, streamed);
        }
        let store: Arc<dyn TraceServer> = Arc::new(SqliteServer::open(&path).unwrap());
        let server = BackgroundServer::start(store, ServeOptions::default().with_port(0)).unwrap();
        let reader = client(server.url(), "stream", 0);
        b.iter(|| {
            let n = reader
                .get_calls(CallsQuery::new())
                .try_fold(0u64, |n, c| c.map(|_| n + 1))
                .unwrap();
            assert_eq!(n, streamed);
        })
    });
    g.finish();
}

criterion_group!(benches, bench);

fn main() {
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}

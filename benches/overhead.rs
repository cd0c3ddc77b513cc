//! Caller-side overhead of one traced call, side by side with the baselines and the
//! incumbent (criterion group `overhead`; the ids are stable across versions, see
//! BENCHMARKS.md).
//!
//! - `plain`: `fn(a: u64, b: &str) -> u64`, uninstrumented.
//! - `weave_disabled`: the same fn under `#[weave::op]` with tracing disabled
//!   (`WEAVE_DISABLED`); runs last, since disabling is for the rest of the process.
//! - `tracing_registry`: `#[tracing::instrument]` under a `Registry` with a no-op layer.
//! - `tracing_otel`: `#[tracing::instrument]` under tracing-opentelemetry, exporting to a
//!   no-op exporter through the simple (synchronous) processor.
//! - `tracing_otel_batch` (`_5_fields`, `_genai`): the same spans through the batch
//!   processor (what deployments run), whose thread takes every span and hands it to an
//!   exporter that counts them; flushed every [`BACKLOG`] spans outside the timed loop as the
//!   weave cases are, and checked to have lost none.
//! - `weave_op`: `#[weave::op]` recording into the embedded store.
//! - `weave_layer_span`: a plain `#[instrument]` span under `WeaveLayer`.
//! - `weave_layer_span_5_fields` / `tracing_otel_5_fields`: an `#[instrument]` span with five
//!   fields (two numbers, two strings, a flag), under `WeaveLayer` / tracing-opentelemetry.
//! - `weave_layer_span_genai` / `tracing_otel_genai`: an LLM call's span with GenAI fields,
//!   its response and usage recorded on it later, as rig and genai write them.
//! - `weave_op_in_layer`: `weave_op` with `WeaveLayer` installed, so that the op's `tracing`
//!   span is made (with the GenAI fields an LLM library may record on it, declared empty).
//! - `weave_op_nested3`: three nested ops; the figure is for the three (divide by 3 per op).
//! - `weave_op_1k_input`: an op whose input is a 1 KiB JSON-like struct.
//!
//! The weave cases measure what the caller pays: the background writer is flushed every
//! [`BACKLOG`] calls, outside the timed loop, so the queue never fills and nothing is dropped
//! (a dropped call would cost less than a recorded one). `WEAVE_BENCH_QUICK=1` runs a few
//! samples only (CI proves the benchmark still runs).

use std::cell::Cell;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::testing::trace::NoopSpanExporter;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider, SpanData, SpanExporter,
};
use serde::Serialize;
use tracing_subscriber::layer::SubscriberExt;
use weave::config::Settings;
use weave::{Backend, InitOptions, WeaveClient, WeaveLayer};

mod common;

fn plain(a: u64, b: &str) -> u64 {
    a.wrapping_add(b.len() as u64)
}

#[tracing::instrument]
fn instrumented(a: u64, b: &str) -> u64 {
    a.wrapping_add(b.len() as u64)
}

/// A span with five fields of the kinds applications record (numbers, text, a flag).
#[tracing::instrument]
fn five_fields(user_id: u64, route: &str, method: &str, attempt: u32, cached: bool) -> u64 {
    user_id.wrapping_add(route.len() as u64 + method.len() as u64 + u64::from(attempt))
        ^ u64::from(cached)
}

/// An LLM call's span as GenAI libraries write it (rig, genai's `otel` feature): the request
/// fields when it is made, the response and usage recorded on it when the response is in.
fn genai_span(prompt: &str) -> usize {
    let span = tracing::info_span!(
        "chat gpt-4o-mini",
        gen_ai.operation.name = "chat",
        gen_ai.system = "openai",
        gen_ai.request.model = "gpt-4o-mini",
        gen_ai.response.model = tracing::field::Empty,
        gen_ai.response.id = tracing::field::Empty,
        gen_ai.usage.input_tokens = tracing::field::Empty,
        gen_ai.usage.output_tokens = tracing::field::Empty,
    );
    let _entered = span.enter();
    span.record("gen_ai.response.model", "gpt-4o-mini-2024-07-18");
    span.record("gen_ai.response.id", "chatcmpl-123");
    span.record("gen_ai.usage.input_tokens", 12u64);
    span.record("gen_ai.usage.output_tokens", prompt.len() as u64);
    prompt.len()
}

#[weave::op]
fn op(a: u64, b: &str) -> u64 {
    a.wrapping_add(b.len() as u64)
}

#[weave::op]
fn outer(a: u64, b: &str) -> u64 {
    middle(a, b)
}

#[weave::op]
fn middle(a: u64, b: &str) -> u64 {
    inner(a, b)
}

#[weave::op]
fn inner(a: u64, b: &str) -> u64 {
    a.wrapping_add(b.len() as u64)
}

/// About 1 KiB of JSON: a chat request with a few messages and options.
#[derive(Serialize, Clone)]
struct Request {
    model: String,
    temperature: f64,
    max_tokens: u32,
    messages: Vec<Message>,
    tools: Vec<String>,
}

#[derive(Serialize, Clone)]
struct Message {
    role: String,
    content: String,
}

fn request() -> Request {
    let msg = |role: &str, n: usize| Message {
        role: role.into(),
        content: "What is the weather like in Paris today? ".repeat(n),
    };
    let r = Request {
        model: "gpt-4o-mini".into(),
        temperature: 0.2,
        max_tokens: 512,
        messages: vec![msg("system", 4), msg("user", 12), msg("assistant", 4)],
        tools: vec!["get_weather".into(), "search".into()],
    };
    let len = serde_json::to_vec(&r).unwrap().len();
    assert!((1000..1100).contains(&len), "{len} bytes");
    r
}

#[weave::op]
fn op_1k(req: &Request) -> usize {
    req.messages.len()
}

fn five_fields_call() -> u64 {
    five_fields(
        black_box(42),
        black_box("/v1/chat"),
        black_box("POST"),
        black_box(1),
        black_box(false),
    )
}

/// tracing-opentelemetry through the batch processor, its queue large enough for a run of
/// [`BACKLOG`] spans (a dropped span would cost less than an exported one), exporting to
/// [`Counting`].
struct OtelBatch {
    provider: SdkTracerProvider,
    exported: Arc<AtomicU64>,
    made: Cell<u64>,
}

impl OtelBatch {
    fn new() -> Self {
        let exported = Arc::new(AtomicU64::new(0));
        let processor = BatchSpanProcessor::builder(Counting(exported.clone()))
            .with_batch_config(
                BatchConfigBuilder::default()
                    .with_max_queue_size(4 * BACKLOG as usize)
                    .build(),
            )
            .build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .build();
        OtelBatch {
            provider,
            exported,
            made: Cell::new(0),
        }
    }

    fn subscriber(&self) -> impl tracing::Subscriber + Send + Sync {
        tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(self.provider.tracer("bench")))
    }

    /// Runs `f` (which makes one span) as the case `name`, flushed as the weave cases are.
    fn bench(
        &self,
        g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
        name: &str,
        mut f: impl FnMut(),
    ) {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| timed_in_runs(iters, |n| self.flush(n), &mut f))
        });
    }

    /// Waits for the `n` spans just made to be exported. A force flush exports one batch
    /// (512 spans) in this SDK version: flushes until all are in, or one brings none (then
    /// they were lost, which [`OtelBatch::assert_none_lost`] reports).
    fn flush(&self, n: u64) {
        self.made.set(self.made.get() + n);
        loop {
            let before = self.exported.load(Ordering::Relaxed);
            if before >= self.made.get() {
                break;
            }
            self.provider.force_flush().unwrap();
            if self.exported.load(Ordering::Relaxed) == before {
                break;
            }
        }
    }

    fn assert_none_lost(&self) {
        assert_eq!(
            self.exported.load(Ordering::Relaxed),
            self.made.get(),
            "the batch processor dropped spans"
        );
    }
}

/// An exporter that counts the spans it is handed (and drops them, on the processor's
/// thread, as an exporter does once they are sent).
#[derive(Debug)]
struct Counting(Arc<AtomicU64>);

impl SpanExporter for Counting {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.0.fetch_add(batch.len() as u64, Ordering::Relaxed);
        drop(black_box(batch));
        Ok(())
    }
}

/// A no-op layer: what a `Registry` costs with something subscribed.
struct Noop;
impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Noop {}

/// At most this many calls wait for the writer while a sample runs.
const BACKLOG: u64 = 10_000;

/// Times `iters` runs of `f`, in runs of at most [`BACKLOG`] with `client`'s writer flushed
/// between them, untimed. A program that traces no faster than its store writes has a
/// bounded backlog; letting one grow to millions within a sample would time the page faults
/// of a growing heap instead of what a call costs.
fn timed_then_flushed(client: &WeaveClient, iters: u64, f: impl FnMut()) -> Duration {
    timed_in_runs(
        iters,
        |_| assert!(client.flush_timeout(Duration::from_secs(600))),
        f,
    )
}

/// Times `iters` runs of `f` in runs of at most [`BACKLOG`], calling `flush` with each run's
/// length between them, untimed.
fn timed_in_runs(iters: u64, mut flush: impl FnMut(u64), mut f: impl FnMut()) -> Duration {
    let mut elapsed = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(BACKLOG);
        let t = Instant::now();
        for _ in 0..n {
            f();
        }
        elapsed += t.elapsed();
        flush(n);
        left -= n;
    }
    elapsed
}

fn overhead(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    // At most BACKLOG calls (two queue entries each) wait: the default queue bound holds them.
    let (client, guard) = common::init_store(
        "bench/overhead",
        &dir.path().join("bench.sqlite"),
        Settings::default(),
    );

    let mut g = c.benchmark_group("overhead");
    if common::quick() {
        g.sample_size(10)
            .warm_up_time(Duration::from_millis(100))
            .measurement_time(Duration::from_millis(300));
    }

    g.bench_function("plain", |b| {
        b.iter(|| plain(black_box(7), black_box("hello")))
    });

    let registry = tracing_subscriber::registry().with(Noop);
    tracing::subscriber::with_default(registry, || {
        g.bench_function("tracing_registry", |b| {
            b.iter(|| instrumented(black_box(7), black_box("hello")))
        });
    });

    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(NoopSpanExporter::new())
        .build();
    let otel = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("bench")));
    tracing::subscriber::with_default(otel, || {
        g.bench_function("tracing_otel", |b| {
            b.iter(|| instrumented(black_box(7), black_box("hello")))
        });
        g.bench_function("tracing_otel_5_fields", |b| b.iter(five_fields_call));
        g.bench_function("tracing_otel_genai", |b| {
            b.iter(|| genai_span(black_box("hello")))
        });
    });

    let batch = OtelBatch::new();
    tracing::subscriber::with_default(batch.subscriber(), || {
        batch.bench(&mut g, "tracing_otel_batch", || {
            black_box(instrumented(black_box(7), black_box("hello")));
        });
        batch.bench(&mut g, "tracing_otel_batch_5_fields", || {
            black_box(five_fields_call());
        });
        batch.bench(&mut g, "tracing_otel_batch_genai", || {
            black_box(genai_span(black_box("hello")));
        });
    });
    batch.assert_none_lost();

    g.bench_function("weave_op", |b| {
        b.iter_custom(|iters| {
            timed_then_flushed(&client, iters, || {
                black_box(op(black_box(7), black_box("hello")));
            })
        })
    });
    g.bench_function("weave_op_nested3", |b| {
        b.iter_custom(|iters| {
            timed_then_flushed(&client, iters, || {
                black_box(outer(black_box(7), black_box("hello")));
            })
        })
    });
    let req = request();
    g.bench_function("weave_op_1k_input", |b| {
        b.iter_custom(|iters| {
            timed_then_flushed(&client, iters, || {
                black_box(op_1k(black_box(&req)));
            })
        })
    });

    let layered = tracing_subscriber::registry().with(WeaveLayer::with_client(client.clone()));
    tracing::subscriber::with_default(layered, || {
        g.bench_function("weave_layer_span", |b| {
            b.iter_custom(|iters| {
                timed_then_flushed(&client, iters, || {
                    black_box(instrumented(black_box(7), black_box("hello")));
                })
            })
        });
        g.bench_function("weave_layer_span_5_fields", |b| {
            b.iter_custom(|iters| {
                timed_then_flushed(&client, iters, || {
                    black_box(five_fields_call());
                })
            })
        });
        g.bench_function("weave_layer_span_genai", |b| {
            b.iter_custom(|iters| {
                timed_then_flushed(&client, iters, || {
                    black_box(genai_span(black_box("hello")));
                })
            })
        });
        // An op whose span the layer sees (it declares the GenAI fields an LLM library may
        // record on it; nothing is recorded here, so they must cost nothing).
        g.bench_function("weave_op_in_layer", |b| {
            b.iter_custom(|iters| {
                timed_then_flushed(&client, iters, || {
                    black_box(op(black_box(7), black_box("hello")));
                })
            })
        });
    });

    assert_eq!(
        client.dropped(),
        0,
        "calls were dropped during the benchmark"
    );
    drop(guard);

    // Last: tracing stays off for the rest of the process.
    let _disabled = weave::init_with(
        "bench/disabled",
        InitOptions::default()
            .with_backend(Backend::Embedded)
            .with_install_subscriber(false)
            .with_settings(Settings::default().with_disabled(true)),
    )
    .unwrap();
    g.bench_function("weave_disabled", |b| {
        b.iter(|| op(black_box(7), black_box("hello")))
    });
    g.finish();
}

criterion_group!(benches, overhead);
criterion_main!(benches);

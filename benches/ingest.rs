//! Ingest throughput of the embedded store (criterion group `ingest`, id `calls_2_threads`).
//!
//! 200,000 calls — 50,000 traces of depth 3 (`root` → `mid` → two `leaf`s, four calls each,
//! small inputs: an integer and a short `&str`) — are made by `#[weave::op]`s from 2 threads
//! (25,000 traces each) into a fresh SQLite file, and the clock stops when the background
//! writer has flushed them all into the store. Each iteration gets a new store (and a new
//! `weave::init_with`), outside the timed part; afterwards the store is checked to hold exactly
//! 200,000 calls (50,000 roots) and nothing to have been dropped, so the benchmark cannot
//! silently measure nothing.
//!
//! Targets:
//! - calls per second, until flushed: >= 150,000/s (criterion's throughput line, `elem/s`;
//!   an earlier 250,000/s was shown out of SQLite's reach for these rows, see BENCHMARKS.md);
//! - peak RSS of the process (`VmHWM`) during a run: <= 256 MiB. The peak is reset before
//!   each run (Linux's `/proc/self/clear_refs`), and the summary gives the median and the
//!   highest over the runs. A run's peak includes what earlier runs left resident (freed
//!   memory the allocator keeps), so later runs can peak higher than the first;
//! - the time the callers spent emitting (their loops, without the flush) is reported too:
//!   per call and as a share of the total.
//!
//! A summary of these is printed on stderr once at the end (`ingest summary`): the median
//! calls/s over all timed runs (warm-up included), the callers' emit time, and the runs' peak
//! RSS.
//!
//! `WEAVE_BENCH_QUICK=1` makes 2,000 calls instead, with tiny times (CI proves it runs).
//! `WEAVE_BENCH_ONE_RUN=N` makes N runs outside criterion (for profilers; see `main`).

use std::hint::black_box;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion, SamplingMode, Throughput};
use weave::config::Settings;
use weave::{CallsFilter, CallsQuery};

mod common;

/// Calls per trace: root, mid and two leaves.
const CALLS_PER_TRACE: u64 = 4;
/// Threads making calls.
const THREADS: u64 = 2;

#[weave::op]
fn root(i: u64, tag: &str) -> u64 {
    mid(i, tag)
}

#[weave::op]
fn mid(i: u64, tag: &str) -> u64 {
    leaf(i, tag).wrapping_add(leaf(i + 1, tag))
}

#[weave::op]
fn leaf(i: u64, tag: &str) -> u64 {
    i.wrapping_add(tag.len() as u64)
}

/// What one run measured.
#[derive(Debug, Clone, Copy)]
struct Run {
    calls: u64,
    /// From the first call to everything flushed into the store.
    total: Duration,
    /// The sum over the threads of the time each spent in its loop of calls.
    emit_sum: Duration,
    /// The longest loop of the threads (the emitting phase, wall clock).
    emit_wall: Duration,
    /// The process's peak resident set during this run (KiB), when it could be measured.
    peak_rss_kib: Option<u64>,
}

/// One run: a fresh store, `calls` calls from [`THREADS`] threads, flushed; the timed part is
/// from starting the threads to the end of the flush.
fn run(calls: u64) -> Run {
    let dir = tempfile::tempdir().unwrap();
    // Two queue entries per call (start and end) plus the op versions: room for all, so
    // nothing is dropped however far the writer lags.
    let settings = Settings::default().with_max_calls_queue_size((calls as usize) * 4 + 1000);
    let (client, guard) =
        common::init_store("bench/ingest", &dir.path().join("ingest.sqlite"), settings);
    let traces_per_thread = calls / CALLS_PER_TRACE / THREADS;
    let rss_reset = reset_peak_rss();
    assert_eq!(traces_per_thread * CALLS_PER_TRACE * THREADS, calls);

    let start = Instant::now();
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            std::thread::spawn(move || {
                let t0 = Instant::now();
                let base = t * traces_per_thread;
                for i in base..base + traces_per_thread {
                    black_box(root(black_box(i), black_box("hello")));
                }
                t0.elapsed()
            })
        })
        .collect();
    let emit: Vec<Duration> = threads.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(
        client.flush_timeout(Duration::from_secs(600)),
        "the writer did not flush within 600 s"
    );
    let total = start.elapsed();

    assert_eq!(client.dropped(), 0, "calls were dropped");
    let stored = client.get_calls(CallsQuery::new()).size().unwrap();
    assert_eq!(stored, calls, "the store does not hold every call");
    let roots = client
        .get_calls(CallsQuery::new().filter(CallsFilter {
            trace_roots_only: Some(true),
            ..Default::default()
        }))
        .size()
        .unwrap();
    assert_eq!(roots, calls / CALLS_PER_TRACE, "wrong number of traces");
    let run_peak = peak_rss_kib().filter(|_| rss_reset);
    drop(guard);
    drop(client);
    Run {
        calls,
        total,
        emit_sum: emit.iter().sum(),
        emit_wall: emit.iter().copied().max().unwrap_or_default(),
        peak_rss_kib: run_peak,
    }
}

/// Resets the process's peak resident set to its current size (Linux: `5` written to
/// `/proc/self/clear_refs`), so that `VmHWM` read after a run is that run's peak. Returns
/// whether it could.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// The process's peak resident set (`VmHWM`), in KiB; `None` off Linux.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

fn summary(runs: &[Run]) {
    let calls_per_s = median(
        runs.iter()
            .map(|r| r.calls as f64 / r.total.as_secs_f64())
            .collect(),
    );
    let emit_ns_per_call = median(
        runs.iter()
            .map(|r| r.emit_sum.as_nanos() as f64 / r.calls as f64)
            .collect(),
    );
    let emit_share = median(
        runs.iter()
            .map(|r| r.emit_wall.as_secs_f64() / r.total.as_secs_f64())
            .collect(),
    );
    let total_ms = median(runs.iter().map(|r| r.total.as_secs_f64() * 1e3).collect());
    let calls = runs.first().map_or(0, |r| r.calls);
    let peaks: Vec<f64> = runs
        .iter()
        .filter_map(|r| r.peak_rss_kib)
        .map(|kib| kib as f64 / 1024.0)
        .collect();
    let rss = if peaks.is_empty() {
        match peak_rss_kib() {
            Some(kib) => format!("{:.1} MiB over all runs", kib as f64 / 1024.0),
            None => "n/a".into(),
        }
    } else {
        let max = peaks.iter().copied().fold(f64::MIN, f64::max);
        let verdict = if max <= 256.0 { "ok" } else { "OVER" };
        format!(
            "median {:.1} MiB, highest {max:.1} MiB over the runs (target <= 256 MiB: {verdict})",
            median(peaks.clone())
        )
    };
    let verdict = if calls_per_s >= 150_000.0 {
        "ok"
    } else {
        "UNDER"
    };
    eprintln!();
    eprintln!(
        "ingest summary: {calls} calls from {THREADS} threads, {} runs (medians)",
        runs.len()
    );
    eprintln!("  until flushed:     {total_ms:.1} ms per run");
    eprintln!("  calls/s:           {calls_per_s:.0} (target >= 150,000: {verdict})");
    eprintln!(
        "  callers' emit:     {emit_ns_per_call:.0} ns per call (per thread); \
         emitting phase = {:.0}% of the time until flushed",
        emit_share * 100.0
    );
    eprintln!("  peak RSS (VmHWM) of a run: {rss}");
}

fn ingest(c: &mut Criterion) {
    let calls: u64 = if common::quick() { 2_000 } else { 200_000 };
    let runs = Mutex::new(Vec::<Run>::new());

    let mut g = c.benchmark_group("ingest");
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .throughput(Throughput::Elements(calls));
    if common::quick() {
        g.warm_up_time(Duration::from_millis(50))
            .measurement_time(Duration::from_millis(1000));
    } else {
        g.warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(60));
    }
    g.bench_function("calls_2_threads", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let r = run(calls);
                total += r.total;
                runs.lock().unwrap().push(r);
            }
            total
        })
    });
    g.finish();
    summary(&runs.lock().unwrap());
}

criterion_group!(benches, ingest);

/// `WEAVE_BENCH_ONE_RUN=N`: N runs of 200,000 calls without criterion, then the summary: a
/// fixed amount of work, for profilers (`perf stat`, valgrind) and for comparing two builds
/// run after run. Otherwise criterion's main.
fn main() {
    match std::env::var("WEAVE_BENCH_ONE_RUN").map(|v| v.parse::<usize>()) {
        Ok(Ok(n)) => {
            let runs: Vec<Run> = (0..n).map(|_| run(200_000)).collect();
            summary(&runs);
        }
        _ => {
            benches();
            Criterion::default().configure_from_args().final_summary();
        }
    }
}

//! `/calls/stream_query` is consumed incrementally: iterating 100,000 calls never holds them
//! all. Measured with a counting global allocator in a child process of its own (so no other
//! test's allocations count): the most heap the iteration ever adds is compared with what the
//! calls would take if held.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use weave::server::{HttpServer, HttpServerConfig};
use weave::{CallOptions, CallsQuery, WeaveClient};

use crate::common::child::{child_done, run_child};

use crate::common::RefServer;

/// The system allocator, counting the bytes live and the peak.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

fn grew(by: isize) {
    let now = LIVE.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            grew(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const CALLS: usize = 100_000;
/// The most heap iterating may add: a small multiple of the client's read-ahead (256 parsed
/// calls) and HTTP buffers — a few percent of what the calls take when held.
const MAX_GROWTH: isize = 16 << 20;

#[test]
#[ignore = "run in a child process by iterating_100k_calls_holds_few_of_them"]
fn child_iterate_100k() {
    let server = RefServer::fresh();
    let mut cfg = HttpServerConfig::new(&server.url);
    cfg.timeout = Duration::from_secs(120);
    let client = WeaveClient::new(
        "stream",
        "big",
        Arc::new(HttpServer::new(cfg).unwrap()),
        false,
    )
    .unwrap();
    let t = Instant::now();
    for i in 0..CALLS {
        let c = client
            .create_call_with(
                "step",
                json!({"i": i, "prompt": "a question of about a hundred bytes, as prompts go, to give every call some weight"}),
                CallOptions::new().use_stack(false),
            )
            .unwrap();
        client.finish_call(&c, json!({"answer": i * 2})).unwrap();
        if i % 10_000 == 9_999 {
            // Two queue items per call: stay under the queue bound (100,000 items).
            assert!(client.flush_timeout(Duration::from_secs(600)));
        }
    }
    assert!(client.flush_timeout(Duration::from_secs(900)));
    assert_eq!(client.dropped(), 0);
    println!("wrote {CALLS} calls in {:?}", t.elapsed());

    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let t = Instant::now();
    let (mut n, mut held_bytes, mut last_i) = (0usize, 0usize, -1i64);
    for call in client.get_calls(CallsQuery::new()) {
        let call = call.unwrap();
        // In order, each once, complete.
        let i = call.inputs()["i"].as_i64().unwrap();
        assert_eq!(i, last_i + 1);
        assert_eq!(call.output()["answer"], json!(i * 2));
        last_i = i;
        n += 1;
        held_bytes += std::mem::size_of_val(&call) + serde_json::to_vec(&call).unwrap().len();
    }
    let growth = PEAK.load(Ordering::Relaxed) - base;
    println!(
        "iterated {n} calls in {:?}; heap growth at most {} KiB; the calls' JSON alone is {} KiB",
        t.elapsed(),
        growth >> 10,
        held_bytes >> 10
    );
    assert_eq!(n, CALLS);
    assert!(
        growth < MAX_GROWTH,
        "iterating grew the heap by {growth} bytes"
    );
    assert!(
        held_bytes as isize > 4 * MAX_GROWTH,
        "the bound must be far below holding them all ({held_bytes} bytes)"
    );
    child_done("stream::child_iterate_100k");
}

#[test]
fn iterating_100k_calls_holds_few_of_them() {
    let out = run_child("stream::child_iterate_100k", &[]);
    print!("{}", String::from_utf8_lossy(&out.stdout));
}

//! `/calls/stream_query` is consumed incrementally: iterating 100,000 calls never holds them
//! all. Measured with a counting global allocator in a child process of its own (so no other
//! test's allocations count): the most heap the iteration ever adds is compared with what the
//! calls would take if held.
//!
//! The reference server ingests a few hundred calls a second, so writing 100,000 through the
//! protocol would take minutes (the writer's behaviour at volume is tested elsewhere): one
//! call is written through the client, and the server's own `calls` table is then filled
//! with 99,999 copies of its row, each with its own id, start time and inputs (`SEED`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use weave::server::{RemoteServer, RemoteServerConfig};
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

/// Fills the reference server's `calls` table (argv[1]) up to argv[2] calls, copying the one
/// call there: call `i` gets a fresh id and trace id, starts `i` ms after it, and has `i` in
/// its inputs and `2 i` as its answer.
const SEED: &str = r#"
import datetime, json, sqlite3, sys, uuid
db = sqlite3.connect(sys.argv[1])
db.row_factory = sqlite3.Row
row = dict(db.execute("SELECT * FROM calls").fetchone())
t0 = datetime.datetime.fromisoformat(row["started_at"])
cols = list(row)
def copy(i):
    r = dict(row)
    t = t0 + datetime.timedelta(milliseconds=i)
    r["id"], r["trace_id"] = str(uuid.uuid4()), str(uuid.uuid4())
    r["started_at"] = t.isoformat()
    r["ended_at"] = (t + datetime.timedelta(microseconds=500)).isoformat()
    inputs = json.loads(r["inputs"]); inputs["i"] = i; r["inputs"] = json.dumps(inputs)
    r["output"] = json.dumps({"answer": 2 * i})
    return [r[c] for c in cols]
db.executemany(
    "INSERT INTO calls (%s) VALUES (%s)" % (",".join(cols), ",".join("?" * len(cols))),
    (copy(i) for i in range(1, int(sys.argv[2]))),
)
db.commit()
"#;
/// The most heap iterating may add: a small multiple of the client's read-ahead (256 parsed
/// calls) and HTTP buffers — a few percent of what the calls take when held.
const MAX_GROWTH: isize = 16 << 20;

#[test]
#[ignore = "run in a child process by iterating_100k_calls_holds_few_of_them"]
fn child_iterate_100k() {
    let server = RefServer::fresh();
    let mut cfg = RemoteServerConfig::new(&server.url);
    cfg.timeout = Duration::from_secs(120);
    let client = WeaveClient::new(
        "stream",
        "big",
        Arc::new(RemoteServer::new(cfg).unwrap()),
        false,
    )
    .unwrap();
    let c = client
        .create_call_with(
            "step",
            json!({"i": 0, "prompt": "a question of about a hundred bytes, as prompts go, to give every call some weight"}),
            CallOptions::new().use_stack(false),
        )
        .unwrap();
    client.finish_call(&c, json!({"answer": 0})).unwrap();
    assert!(client.flush_timeout(Duration::from_secs(60)));
    let t = Instant::now();
    let seeded = std::process::Command::new("python3")
        .args(["-c", SEED])
        .arg(&server.db)
        .arg(CALLS.to_string())
        .status()
        .expect("run python3");
    assert!(seeded.success());
    println!("seeded {CALLS} calls in {:?}", t.elapsed());

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

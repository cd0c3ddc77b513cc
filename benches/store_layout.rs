//! What SQLite itself costs to store calls, by table layout (criterion group `store_layout`).
//!
//! The ingest target (250,000 calls/s into the embedded store, `benches/ingest.rs`) is far
//! above what the writer reaches, and a profile of the writer shows SQLite's b-tree code,
//! not ours, doing most of the work. This benchmark measures that ceiling directly: the same
//! rows the ingest benchmark writes (a call's start and end as one row; ids, op refs, SDK
//! attributes and small inputs as the writer produces them) inserted with plain `rusqlite`
//! statements, in transactions of 512 rows, into four layouts, in the same run:
//!
//! - `store_schema`: the embedded store's own schema, made by `SqliteServer::open` (every
//!   migration), with the store's pragmas and no checkpoints during the run (the store runs
//!   them on a thread of its own, off the writer's). What the writer pays on top of this is ours.
//! - `store_table_only`: the same file after dropping the calls indexes the queries need
//!   (by start time, trace, parent, op, failed calls); only the table and its unique
//!   `(project_id, id)` remain. The share the indexes cost.
//! - `compact_keys`: the same indexes over compact keys: project, op and SDK attributes as
//!   integers into small tables, ids, trace and parent ids as 16-byte blobs. A candidate
//!   layout, not one the store uses.
//! - `tuned`: the store's schema in a file of 16 KiB pages with a 64 MiB page cache and
//!   without the parent index (children would be found through the trace index): what
//!   SQLite's settings can add to the store's layout. Not what the store uses: the cache
//!   would take the ingest benchmark's peak RSS past its target, and without the parent
//!   index a call's children are read by scanning its trace.
//!
//! Rows are built before the clock starts; each iteration writes `ROWS` rows into a fresh
//! file. Throughput is rows per second (`elem/s`). Compare the layouts by their ratios in one
//! run; absolute figures on a 2-vCPU VM move by ~30% between runs.
//!
//! `WEAVE_BENCH_QUICK=1` writes 2,000 rows per iteration with tiny times (CI proves it runs).

use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use rusqlite::{params, Connection};

mod common;

/// Rows per transaction, as the writer's batches.
const BATCH: usize = 512;

/// One call as a row: the values both layouts store.
struct Row {
    id: String,
    trace_id: String,
    parent_id: Option<String>,
    op: usize,
    started_at: i64,
    ended_at: i64,
    inputs: String,
    output: String,
}

const PROJECT: &str = "bench/store-layout";
const OPS: [&str; 3] = [
    "weave:///bench/store-layout/op/root:6jAV4T6F42RKlabeB2RO0BXkbFFPrKyU2yyQedpotB8",
    "weave:///bench/store-layout/op/mid:Q2b1CqL0m0yV0Ty5G0lXKcQF2jS3aRzWm3c9kM0vQ4A",
    "weave:///bench/store-layout/op/leaf:hTn3ZC3YVxkV8n8p7Vh0qQZ8pCw6ZkQx8m7a0y3Fv1E",
];
const ATTRIBUTES: &str =
    r#"{"weave":{"client_version":"0.1.0","source":"rust-sdk","os_name":"linux","arch":"x86_64"}}"#;
const SUMMARY: &str = r#"{"status_counts":{"success":1,"error":0}}"#;

/// A UUIDv7-shaped id: the millisecond first (ids made close in time sort together), then
/// scrambled bits.
fn uuid7(ms: u64, n: u64) -> String {
    let x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    format!(
        "{:08x}-{:04x}-7{:03x}-{:04x}-{:012x}",
        ms >> 16,
        ms & 0xffff,
        x & 0xfff,
        0x8000 | ((x >> 12) & 0x3fff),
        (x >> 26) & 0xffff_ffff_ffff
    )
}

/// The 16 bytes of a UUID's text (its hex digits).
fn uuid_bytes(id: &str) -> [u8; 16] {
    let hex: Vec<u8> = id.bytes().filter(|b| *b != b'-').collect();
    let mut out = [0u8; 16];
    for (i, pair) in hex.chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).unwrap();
        out[i] = u8::from_str_radix(s, 16).unwrap();
    }
    out
}

/// `n` calls as the ingest benchmark makes them: traces of root → mid → two leaves.
fn rows(n: usize) -> Vec<Row> {
    let t0: u64 = 1_795_560_298_380_794_000;
    (0..n as u64)
        .map(|j| {
            let trace = j / 4;
            let ns = |k: u64| t0 + k * 1_000;
            let id_of = |k: u64| uuid7(ns(k) / 1_000_000, k);
            let parent = match j % 4 {
                0 => None,
                1 => Some(trace * 4),
                _ => Some(trace * 4 + 1),
            };
            Row {
                id: id_of(j),
                trace_id: id_of(trace * 4),
                parent_id: parent.map(id_of),
                op: [0, 1, 2, 2][(j % 4) as usize],
                started_at: ns(j) as i64,
                ended_at: ns(j) as i64 + 500,
                inputs: format!(r#"{{"i":{j},"tag":"hello"}}"#),
                output: format!("{}", j + 5),
            }
        })
        .collect()
}

/// A row's id, trace id and parent id as 16-byte blobs (the compact layout).
type IdBlobs = ([u8; 16], [u8; 16], Option<[u8; 16]>);

#[derive(Clone, Copy)]
enum Layout {
    StoreSchema,
    StoreTableOnly,
    CompactKeys,
    Tuned,
    WithoutRowid,
}

/// The `tuned` layout's page size (the store's is SQLite's default, 4 KiB)...
const TUNED_PAGE_SIZE: i64 = 16_384;
/// ... and page cache (`cache_size` in KiB, negated; the store's is 16 MiB per connection).
const TUNED_CACHE_KIB: i64 = -65_536;

const COMPACT_SCHEMA: &str = r#"
    CREATE TABLE projects (key INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
    CREATE TABLE ops (key INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
    CREATE TABLE attribute_sets (key INTEGER PRIMARY KEY, json TEXT NOT NULL UNIQUE);
    CREATE TABLE calls (
        project INTEGER NOT NULL, id BLOB NOT NULL, trace_id BLOB, parent_id BLOB,
        thread_id TEXT, turn_id TEXT, op INTEGER, display_name TEXT,
        started_at INTEGER, ended_at INTEGER, attributes INTEGER, inputs TEXT, output TEXT,
        exception TEXT, summary TEXT, otel_dump TEXT, wb_user_id TEXT, wb_run_id TEXT,
        wb_run_step INTEGER, wb_run_step_end INTEGER, deleted_at INTEGER,
        UNIQUE (project, id)
    );
    CREATE INDEX calls_started ON calls (project, started_at, id);
    CREATE INDEX calls_trace ON calls (project, trace_id, started_at, id);
    CREATE INDEX calls_parent ON calls (project, parent_id, started_at, id);
    CREATE INDEX calls_op ON calls (project, op, started_at, id);
    CREATE INDEX calls_op_errors ON calls (project, op, started_at)
        WHERE exception IS NOT NULL AND exception != '' AND deleted_at IS NULL;
    INSERT INTO projects (key, name) VALUES (1, 'bench/store-layout');
    INSERT INTO attribute_sets (key, json) VALUES (1, '{}');
"#;

/// A fresh file at `path` in `layout`, opened as the store's writer connection is.
fn open(path: &Path, layout: Layout) -> Connection {
    if let Layout::Tuned = layout {
        // The page size is fixed by the file's first write: made before the store's schema.
        let conn = Connection::open(path).unwrap();
        conn.pragma_update(None, "page_size", TUNED_PAGE_SIZE)
            .unwrap();
        conn.execute_batch("CREATE TABLE t (x); DROP TABLE t;")
            .unwrap();
    }
    if !matches!(layout, Layout::CompactKeys) {
        drop(weave::SqliteServer::open(path).unwrap());
    }
    let conn = Connection::open(path).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
    conn.pragma_update(None, "cache_size", -16384).unwrap();
    // No checkpoints during the run: the store checkpoints on a thread of its own, so what
    // its writer pays is the inserts alone (a run's WAL is left to the temporary directory).
    conn.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
    match layout {
        Layout::StoreSchema => {}
        Layout::Tuned => {
            let page_size: i64 = conn
                .query_row("PRAGMA page_size", [], |r| r.get(0))
                .unwrap();
            assert_eq!(page_size, TUNED_PAGE_SIZE);
            conn.pragma_update(None, "cache_size", TUNED_CACHE_KIB)
                .unwrap();
            conn.execute_batch("DROP INDEX calls_project_parent_started_id")
                .unwrap();
        }
        Layout::StoreTableOnly => {
            let indexes: Vec<String> = conn
                .prepare(
                    "SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'calls' \
                     AND sql IS NOT NULL",
                )
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert!(indexes.len() >= 4, "the store's calls indexes: {indexes:?}");
            for name in indexes {
                conn.execute_batch(&format!("DROP INDEX {name}")).unwrap();
            }
        }
        Layout::WithoutRowid => {
            // The store's table and indexes, the table keyed by (project_id, id) itself.
            let schema: Vec<(String, String)> = conn
                .prepare(
                    "SELECT type, sql FROM sqlite_schema WHERE tbl_name = 'calls' \
                     AND sql IS NOT NULL ORDER BY type DESC",
                )
                .unwrap()
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            conn.execute_batch("DROP TABLE calls").unwrap();
            for (kind, sql) in schema {
                let sql = if kind == "table" {
                    let sql =
                        sql.replace("UNIQUE (project_id, id)", "PRIMARY KEY (project_id, id)");
                    assert!(sql.contains("PRIMARY KEY"), "{sql}");
                    format!("{sql} WITHOUT ROWID")
                } else {
                    sql
                };
                conn.execute_batch(&sql).unwrap();
            }
        }
        Layout::CompactKeys => {
            conn.execute_batch(COMPACT_SCHEMA).unwrap();
            let mut st = conn
                .prepare("INSERT INTO ops (key, name) VALUES (?1, ?2)")
                .unwrap();
            for (key, name) in OPS.iter().enumerate() {
                st.execute(params![key as i64 + 1, name]).unwrap();
            }
            conn.execute(
                "UPDATE attribute_sets SET json = ?1 WHERE key = 1",
                [ATTRIBUTES],
            )
            .unwrap();
        }
    }
    conn
}

/// Writes `rows` in transactions of [`BATCH`]; returns the time it took.
fn write(conn: &mut Connection, layout: Layout, rows: &[Row]) -> Duration {
    // Blobs are made outside the timed part too: a writer would have them in its records.
    let blobs: Vec<IdBlobs> = match layout {
        Layout::CompactKeys => rows
            .iter()
            .map(|r| {
                (
                    uuid_bytes(&r.id),
                    uuid_bytes(&r.trace_id),
                    r.parent_id.as_deref().map(uuid_bytes),
                )
            })
            .collect(),
        _ => Vec::new(),
    };
    let start = Instant::now();
    for (chunk_no, chunk) in rows.chunks(BATCH).enumerate() {
        let tx = conn.transaction().unwrap();
        {
            let mut st = match layout {
                Layout::CompactKeys => tx.prepare_cached(
                    "INSERT INTO calls (project, id, trace_id, parent_id, op, started_at, \
                     ended_at, attributes, inputs, output, summary) \
                     VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, 1, ?7, ?8, ?9) ON CONFLICT DO NOTHING",
                ),
                _ => tx.prepare_cached(
                    "INSERT INTO calls (project_id, id, trace_id, parent_id, op_name, \
                     started_at, ended_at, attributes, inputs, output, summary) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) ON CONFLICT DO NOTHING",
                ),
            }
            .unwrap();
            for (k, r) in chunk.iter().enumerate() {
                let n = match layout {
                    Layout::CompactKeys => {
                        let (id, trace, parent) = &blobs[chunk_no * BATCH + k];
                        st.execute(params![
                            &id[..],
                            &trace[..],
                            parent.as_ref().map(|p| &p[..]),
                            r.op as i64 + 1,
                            r.started_at,
                            r.ended_at,
                            r.inputs,
                            r.output,
                            SUMMARY
                        ])
                    }
                    _ => st.execute(params![
                        PROJECT,
                        r.id,
                        r.trace_id,
                        r.parent_id,
                        OPS[r.op],
                        r.started_at,
                        r.ended_at,
                        ATTRIBUTES,
                        r.inputs,
                        r.output,
                        SUMMARY
                    ]),
                };
                assert_eq!(n.unwrap(), 1, "a row was not inserted");
            }
        }
        tx.commit().unwrap();
    }
    start.elapsed()
}

fn store_layout(c: &mut Criterion) {
    let n = if common::quick() { 2_000 } else { 100_000 };
    let rows = rows(n);
    let mut g = c.benchmark_group("store_layout");
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .throughput(Throughput::Elements(n as u64));
    if common::quick() {
        g.warm_up_time(Duration::from_millis(50))
            .measurement_time(Duration::from_millis(500));
    } else {
        g.warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(15));
    }
    for (id, layout) in [
        ("store_schema", Layout::StoreSchema),
        ("store_table_only", Layout::StoreTableOnly),
        ("compact_keys", Layout::CompactKeys),
        ("tuned", Layout::Tuned),
        ("without_rowid", Layout::WithoutRowid),
    ] {
        g.bench_function(id, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let dir = tempfile::tempdir().unwrap();
                    let path = dir.path().join("layout.sqlite");
                    let mut conn = open(&path, layout);
                    total += write(&mut conn, layout, &rows);
                    let stored: i64 = conn
                        .query_row("SELECT count(*) FROM calls", [], |r| r.get(0))
                        .unwrap();
                    assert_eq!(stored, n as i64, "{id}: the file does not hold every row");
                }
                total
            })
        });
    }
    g.finish();
}

criterion_group!(benches, store_layout);
criterion_main!(benches);

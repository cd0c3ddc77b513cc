//! [`SqliteServer`]: the embedded default backend, a SQLite file (or memory) implementing the
//! Weave server's semantics.
//!
//! - **Location**: [`SqliteServer::default_path`] — `$WEAVE_DB_PATH` if set (`:memory:` for
//!   an in-memory store), else `$XDG_DATA_HOME/weave/weave.sqlite`, else
//!   `~/.local/share/weave/weave.sqlite` (`%LOCALAPPDATA%\weave\weave.sqlite` on Windows).
//! - **Durability**: WAL journal, `synchronous=NORMAL`; each batch of writes is one
//!   transaction. The schema is versioned (see `migrations.rs`), so newer releases open older
//!   files without losing data.
//! - **Semantics**: a call's start and end may arrive in either order (a call becomes visible
//!   once its start is stored); delete is soft and cascades to all descendants;
//!   `summary.weave` is derived on every read; ref strings in inputs and output are indexed
//!   for the `input_refs` / `output_refs` filters; oversized fields are replaced with the
//!   server's marker (see [`crate::limits`]).

mod costs;
mod feedback;
mod functions;
mod migrations;
mod objects;
mod query;
mod writes;

pub(crate) use self::writes::CallWrite;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::{params_from_iter, Connection, OpenFlags, OptionalExtension, Row};
use serde_json::Value;

use self::query::Params;
use super::{CallsStream, TraceServer};
use crate::config::Settings;
use crate::error::{Result, WeaveError};
use crate::limits;
use crate::schema::check_project_id;
use crate::schema::summary::derive_weave_summary;
use crate::schema::*;
use crate::time::Timestamp;

pub(crate) use query::MAX_FILTER_LIST;

/// The local UI base URL used for call links of the embedded store (a local viewer serves
/// the same `/{entity}/{project}/r/call/{id}` paths as the W&B app).
pub const DEFAULT_LOCAL_APP_URL: &str = "http://127.0.0.1:6346";

/// How many rows a stream fetches per internal query.
const STREAM_CHUNK: u64 = 1000;

/// Configuration of a [`SqliteServer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteServerConfig {
    /// The database file; `None` for an in-memory store.
    pub path: Option<PathBuf>,
    /// The base URL of call links (see [`DEFAULT_LOCAL_APP_URL`]).
    pub app_url: String,
}

impl Default for SqliteServerConfig {
    /// The file at [`SqliteServer::default_path`].
    fn default() -> Self {
        let settings = Settings::from_env();
        SqliteServerConfig {
            path: settings.db_path(),
            app_url: settings.local_app_url(),
        }
    }
}

/// The embedded Weave store. Cheap to clone (clones share the connection).
///
/// # Examples
///
/// ```
/// use weave_core::{SqliteServer, TraceServer};
/// let server = SqliteServer::in_memory().unwrap();
/// assert_eq!(server.server_info().unwrap().min_required_weave_python_version, "0.0.0");
/// ```
#[derive(Clone)]
pub struct SqliteServer {
    inner: Arc<Inner>,
}

struct Inner {
    /// The connection that writes (and reads, for an in-memory store).
    conn: Mutex<Connection>,
    /// A second connection for queries on a file store: in WAL mode readers never wait for
    /// the writer, so a long query does not stall tracing, and vice versa.
    reader: Option<Mutex<Connection>>,
    /// Idle connections of finished streams, for the next ones (see [`StreamedCalls`]).
    spare_readers: Mutex<Vec<Connection>>,
    config: SqliteServerConfig,
}

impl std::fmt::Debug for SqliteServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteServer")
            .field("path", &self.inner.config.path)
            .finish()
    }
}

impl SqliteServer {
    /// Opens (creating if needed) the store described by `config`.
    pub fn with_config(config: SqliteServerConfig) -> Result<Self> {
        let mut conn = match &config.path {
            None => Connection::open_in_memory()?,
            Some(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        WeaveError::backend(format!(
                            "cannot create the directory of the store {}: {e}",
                            dir.display()
                        ))
                    })?;
                }
                Connection::open_with_flags(
                    path,
                    OpenFlags::SQLITE_OPEN_READ_WRITE
                        | OpenFlags::SQLITE_OPEN_CREATE
                        | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .map_err(|e| {
                    WeaveError::backend(format!("cannot open the store {}: {e}", path.display()))
                })?
            }
        };
        let name_file = |e: WeaveError| match (&config.path, e) {
            (Some(path), WeaveError::Backend(msg)) => {
                WeaveError::Backend(format!("store {}: {msg}", path.display()))
            }
            (_, e) => e,
        };
        Self::prepare(&mut conn, config.path.is_some()).map_err(name_file)?;
        let reader = match &config.path {
            None => None,
            Some(path) => {
                let open = || -> Result<Connection> {
                    let r = Connection::open_with_flags(
                        path,
                        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                    )?;
                    r.busy_timeout(std::time::Duration::from_secs(10))?;
                    functions::register(&r)?;
                    Ok(r)
                };
                Some(Mutex::new(open().map_err(name_file)?))
            }
        };
        Ok(SqliteServer {
            inner: Arc::new(Inner {
                conn: Mutex::new(conn),
                reader,
                spare_readers: Mutex::new(Vec::new()),
                config,
            }),
        })
    }

    /// Checks the version, sets the journal mode, registers functions and migrates.
    fn prepare(conn: &mut Connection, is_file: bool) -> Result<()> {
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        // Refuse a file from a newer release before changing anything in it (switching the
        // journal mode rewrites the file header).
        migrations::check_version(conn)?;
        if is_file {
            let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(WeaveError::backend(format!(
                    "the store could not switch to WAL mode (got {mode})"
                )));
            }
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            // 16 MiB of page cache for the writer (SQLite's default is 2 MiB): the indexes'
            // pages stay in memory while calls are written.
            conn.pragma_update(None, "cache_size", -16384)?;
        }
        functions::register(conn)?;
        migrations::migrate(conn)
    }

    /// Opens (creating if needed) the store file at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::with_config(SqliteServerConfig {
            path: Some(path.as_ref().to_path_buf()),
            ..Default::default()
        })
    }

    /// A fresh in-memory store, gone when the last clone is dropped.
    pub fn in_memory() -> Result<Self> {
        Self::with_config(SqliteServerConfig {
            path: None,
            ..Default::default()
        })
    }

    /// Opens the store at the default location ([`SqliteServer::default_path`]).
    pub fn open_default() -> Result<Self> {
        Self::with_config(SqliteServerConfig::default())
    }

    /// The default store location: `$WEAVE_DB_PATH`, else the per-user data directory
    /// (`$XDG_DATA_HOME/weave/weave.sqlite` or `~/.local/share/weave/weave.sqlite`;
    /// `%LOCALAPPDATA%\weave\weave.sqlite` on Windows). `None` means in memory.
    pub fn default_path() -> Option<PathBuf> {
        Settings::from_env().db_path()
    }

    /// The file of this store, `None` when in memory.
    pub fn path(&self) -> Option<&Path> {
        self.inner.config.path.as_deref()
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent (transactions roll
        // back on drop), so a poisoned lock is safe to reuse.
        self.inner.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The connection for queries (see [`Inner::reader`]).
    fn read_conn(&self) -> MutexGuard<'_, Connection> {
        match &self.inner.reader {
            Some(r) => r.lock().unwrap_or_else(|e| e.into_inner()),
            None => self.conn(),
        }
    }
}

/// The columns of `CallSchema`, in the order the SELECT list returns them.
const SELECT_COLUMNS: &[&str] = &[
    "id",
    "project_id",
    "op_name",
    "display_name",
    "trace_id",
    "parent_id",
    "thread_id",
    "turn_id",
    "started_at",
    "attributes",
    "inputs",
    "ended_at",
    "exception",
    "output",
    "summary",
    "wb_user_id",
    "wb_run_id",
    "wb_run_step",
    "wb_run_step_end",
    "deleted_at",
];
const ALWAYS_SELECTED: &[&str] = &["id", "project_id", "trace_id", "op_name", "started_at"];
const STORAGE_SIZE_SQL: &str =
    "(COALESCE(length(attributes), 0) + COALESCE(length(inputs), 0) + COALESCE(length(output), 0) \
     + COALESCE(length(summary), 0) + COALESCE(length(exception), 0))";

/// Which CallSchema columns a `columns` list selects (PROTOCOL §6): dotted names are cut to
/// their first segment, the id columns are always returned, and `summary` (or costs) pulls in
/// what deriving `summary.weave` needs.
pub(crate) fn selected_columns(
    columns: Option<&[String]>,
    include_costs: bool,
) -> Result<Vec<&'static str>> {
    // An empty list means "not set", as on the Weave server (`if req.columns:`).
    let Some(columns) = columns.filter(|c| !c.is_empty()) else {
        return Ok(SELECT_COLUMNS.to_vec());
    };
    let mut selected: Vec<&'static str> = ALWAYS_SELECTED.to_vec();
    fn add(selected: &mut Vec<&'static str>, c: &'static str) {
        if !selected.contains(&c) {
            selected.push(c);
        }
    }
    for c in columns {
        let top = c.split('.').next().unwrap_or_default();
        let top = top
            .strip_suffix("_dump")
            .filter(|t| SELECT_COLUMNS.contains(t))
            .unwrap_or(top);
        match SELECT_COLUMNS.iter().find(|k| **k == top) {
            Some(k) => add(&mut selected, k),
            None if matches!(top, "storage_size_bytes" | "total_storage_size_bytes") => {}
            None => {
                return Err(WeaveError::invalid_query(format!(
                    "columns: unknown column {c:?} (expected one of {})",
                    SELECT_COLUMNS.join(", ")
                )))
            }
        }
    }
    if include_costs {
        add(&mut selected, "summary");
    }
    if selected.contains(&"summary") {
        for c in ["ended_at", "exception", "display_name"] {
            add(&mut selected, c);
        }
    }
    Ok(selected)
}

/// A compiled calls query: the SQL without LIMIT/OFFSET, and its parameters.
struct CompiledQuery {
    sql: String,
    params: Params,
    summary_selected: bool,
    /// Fill `summary.weave.costs` for this project.
    costs_for: Option<String>,
    /// Fill `summary.weave.feedback` for this project.
    feedback_for: Option<String>,
    /// Ref-valued paths to expand in the returned calls.
    expand: Vec<String>,
}

fn where_clause(
    project_id: &str,
    filter: Option<&CallsFilter>,
    query: Option<&crate::query::Query>,
    params: &mut Params,
) -> Result<String> {
    check_project_id(project_id)?;
    let mut conds = vec![
        format!("project_id = {}", params.bind(project_id.to_string())),
        "deleted_at IS NULL".to_string(),
        "started_at IS NOT NULL".to_string(),
    ];
    if let Some(f) = filter {
        conds.extend(query::filter_conditions(f, params)?);
    }
    if let Some(q) = query {
        conds.push(query::query_condition(query::Table::Calls, q, params)?);
    }
    Ok(conds.join(" AND "))
}

fn compile_calls_query(req: &CallsQueryReq) -> Result<CompiledQuery> {
    let mut params = Params::default();
    let selected = selected_columns(
        req.columns.as_deref(),
        req.include_costs || req.include_feedback,
    )?;
    let mut select: Vec<String> = SELECT_COLUMNS
        .iter()
        .map(|c| {
            if selected.contains(c) {
                (*c).to_string()
            } else {
                "NULL".into()
            }
        })
        .collect();
    select.push(if selected.contains(&"attributes") {
        "otel_dump".into()
    } else {
        "NULL".into()
    });
    select.push(if req.include_storage_size {
        STORAGE_SIZE_SQL.into()
    } else {
        "NULL".into()
    });
    select.push(if req.include_total_storage_size {
        format!(
            "(CASE WHEN parent_id IS NULL THEN (SELECT SUM({}) FROM calls t WHERE t.project_id = calls.project_id \
             AND t.trace_id = calls.trace_id AND t.deleted_at IS NULL) END)",
            STORAGE_SIZE_SQL.replace("length(", "length(t.")
        )
    } else {
        "NULL".into()
    });
    let wh = where_clause(
        &req.project_id,
        req.filter.as_ref(),
        req.query.as_ref(),
        &mut params,
    )?;
    let mut sql = format!("SELECT {} FROM calls WHERE {wh}", select.join(", "));
    if let Some(order) = query::order_by(req.sort_by.as_deref(), &mut params)? {
        sql.push_str(" ORDER BY ");
        sql.push_str(&order);
    }
    Ok(CompiledQuery {
        sql,
        params,
        summary_selected: selected.contains(&"summary"),
        costs_for: req.include_costs.then(|| req.project_id.clone()),
        feedback_for: req.include_feedback.then(|| req.project_id.clone()),
        expand: if req.return_expanded_column_values {
            req.expand_columns.clone().unwrap_or_default()
        } else {
            Vec::new()
        },
    })
}

fn parse_json_column(row: &Row<'_>, i: usize) -> rusqlite::Result<Option<Value>> {
    let text: Option<String> = row.get(i)?;
    Ok(text.map(|t| serde_json::from_str(&t).unwrap_or_else(|_| limits::exceeds_limits_marker())))
}

fn object(v: Option<Value>) -> JsonMap {
    match v {
        Some(Value::Object(m)) => m,
        _ => JsonMap::new(),
    }
}

fn row_to_call(row: &Row<'_>, summary_selected: bool) -> rusqlite::Result<CallSchema> {
    let ts = |i: usize| -> rusqlite::Result<Option<Timestamp>> {
        Ok(row.get::<_, Option<i64>>(i)?.map(Timestamp::from_nanos))
    };
    let mut attributes = object(parse_json_column(row, 9)?);
    if let Some(otel) = parse_json_column(row, 20)? {
        attributes.insert("otel_span".into(), otel);
    }
    let op_name: String = row.get(2)?;
    let display_name: Option<String> = row.get(3)?;
    let started_at = ts(8)?.unwrap_or(Timestamp::from_nanos(0));
    let ended_at = ts(11)?;
    let exception: Option<String> = row.get(12)?;
    let summary = if summary_selected {
        let mut s = object(parse_json_column(row, 14)?);
        derive_weave_summary(
            &mut s,
            &op_name,
            display_name.as_deref(),
            started_at,
            ended_at,
            exception.as_deref(),
        );
        Some(s)
    } else {
        None
    };
    Ok(CallSchema {
        id: row.get(0)?,
        project_id: row.get(1)?,
        op_name,
        display_name,
        trace_id: row.get(4)?,
        parent_id: row.get(5)?,
        thread_id: row.get(6)?,
        turn_id: row.get(7)?,
        started_at,
        attributes,
        inputs: object(parse_json_column(row, 10)?),
        ended_at,
        exception,
        output: parse_json_column(row, 13)?.unwrap_or(Value::Null),
        summary,
        wb_user_id: row.get(15)?,
        wb_run_id: row.get(16)?,
        wb_run_step: row.get(17)?,
        wb_run_step_end: row.get(18)?,
        deleted_at: ts(19)?,
        storage_size_bytes: row.get(21)?,
        total_storage_size_bytes: row.get(22)?,
    })
}

impl CompiledQuery {
    /// What the query asks for beyond its rows — costs, feedback, expanded refs — applied to
    /// a chunk of its calls, reading on `conn`.
    fn complete(&self, conn: &Connection, chunk: &mut [CallSchema]) -> Result<()> {
        if let Some(project_id) = &self.costs_for {
            costs::apply(conn, project_id, chunk)?;
        }
        if let Some(project_id) = &self.feedback_for {
            feedback::apply(conn, project_id, chunk)?;
        }
        if !self.expand.is_empty() {
            objects::expand_columns(conn, chunk, &self.expand)?;
        }
        Ok(())
    }
}

/// How many rows a [`StreamedCalls`] turns into calls at a time (costs, feedback and expanded
/// refs are applied per batch).
const STREAM_BATCH: usize = 256;

// The calls of a query (`calls_query_stream`) are read lazily, in one of two ways:
//
// - [`StreamedCalls`] (a file store, unless the limit fits in one chunk): the query runs
//   once, as one statement on a connection of the stream's own, stepped as the stream is
//   read. Reading N calls costs O(N), however far the stream is read.
// - [`ChunkedCalls`] (an in-memory store, whose one connection is shared with the writer and
//   cannot be held for a whole read; or a limit of at most [`STREAM_CHUNK`], where one short
//   query is cheaper than opening a connection): chunks of [`STREAM_CHUNK`] rows, each its
//   own LIMIT/OFFSET query under the shared connection's lock. Reading a large in-memory
//   result this way re-reads the skipped rows of every chunk (quadratic).

/// Streams a query's rows in chunks of [`STREAM_CHUNK`], each chunk its own short read on the
/// shared read connection, so neither memory nor a read transaction grows with the result
/// size (see the comment above [`STREAM_BATCH`] for when it is used).
struct ChunkedCalls {
    server: SqliteServer,
    query: CompiledQuery,
    next_offset: u64,
    remaining: Option<u64>,
    buffer: VecDeque<CallSchema>,
    done: bool,
}

impl ChunkedCalls {
    fn fetch(&mut self) -> Result<()> {
        let want = self.remaining.map_or(STREAM_CHUNK, |r| r.min(STREAM_CHUNK));
        if want == 0 {
            self.done = true;
            return Ok(());
        }
        let sql = format!(
            "{} LIMIT {want} OFFSET {}",
            self.query.sql,
            self.next_offset.min(i64::MAX as u64)
        );
        let conn = self.server.read_conn();
        let mut stmt = conn.prepare_cached(&sql)?;
        let summary_selected = self.query.summary_selected;
        let rows = stmt.query_map(params_from_iter(self.query.params.0.iter()), |r| {
            row_to_call(r, summary_selected)
        })?;
        let mut chunk = rows.collect::<rusqlite::Result<Vec<_>>>()?;
        self.query.complete(&conn, &mut chunk)?;
        let n = chunk.len() as u64;
        self.buffer.extend(chunk);
        self.next_offset += n;
        if let Some(r) = self.remaining.as_mut() {
            *r -= n;
        }
        if n < want {
            self.done = true;
        }
        Ok(())
    }
}

impl Iterator for ChunkedCalls {
    type Item = Result<CallSchema>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.buffer.is_empty() && !self.done {
            if let Err(e) = self.fetch() {
                self.done = true;
                return Some(Err(e));
            }
        }
        self.buffer.pop_front().map(Ok)
    }
}

/// A query of a file store, read as one statement on a connection of the stream's own.
///
/// On the first `next`, the stream takes a connection of its own (a spare one left by a
/// finished stream, else a new one, opened as the shared reader is) and the statement — the
/// query with its LIMIT and OFFSET, applied once — is prepared and stepped on the caller's
/// thread, [`STREAM_BATCH`] rows at a time: the rows are walked once, and at most one batch
/// of calls is held. (A thread stepping ahead was tried and was slower: the calls it
/// allocates are freed on the reader's thread, and with glibc's allocator both threads then
/// contend for its arena lock.)
///
/// The statement is one read transaction: the stream sees the store as it was when it was
/// first read, whatever is written meanwhile. In WAL mode an open snapshot keeps the WAL from
/// being checkpointed past it, so a stream left half-read lets the WAL grow (with what is
/// written meanwhile) until the stream is dropped or read to the end, which resets the
/// statement (the connection is kept, idle, for the next stream, with its prepared
/// statements).
///
/// An error (opening, preparing, reading a row, completing a batch) is yielded once and ends
/// the stream.
struct StreamedCalls {
    server: SqliteServer,
    path: PathBuf,
    query: CompiledQuery,
    /// The query's SQL with its LIMIT and OFFSET.
    sql: String,
    /// From the first `next` until the end.
    open: Option<OpenStatement>,
    buffer: std::vec::IntoIter<CallSchema>,
    done: bool,
}

impl StreamedCalls {
    fn new(
        server: SqliteServer,
        path: PathBuf,
        query: CompiledQuery,
        offset: u64,
        limit: Option<u64>,
    ) -> Self {
        let sql = format!(
            "{} LIMIT {} OFFSET {}",
            query.sql,
            limit.map_or(-1, |l| l.min(i64::MAX as u64) as i64),
            offset.min(i64::MAX as u64)
        );
        StreamedCalls {
            server,
            path,
            query,
            sql,
            open: None,
            buffer: Vec::new().into_iter(),
            done: false,
        }
    }

    /// The next batch of calls (empty at the end); opens the statement on the first call.
    fn read_batch(&mut self) -> Result<Vec<CallSchema>> {
        if self.open.is_none() {
            let conn = self.server.stream_conn(&self.path)?;
            self.open = Some(OpenStatement::new(conn, &self.sql, &self.query.params)?);
        }
        let open = self.open.as_mut().expect("opened above");
        let mut batch = Vec::with_capacity(STREAM_BATCH);
        let mut end = false;
        let rows = open.rows();
        while batch.len() < STREAM_BATCH {
            match rows.next()? {
                Some(row) => batch.push(row_to_call(row, self.query.summary_selected)?),
                None => {
                    end = true;
                    break;
                }
            }
        }
        self.query.complete(open.conn(), &mut batch)?;
        if end {
            self.finish();
        }
        Ok(batch)
    }

    /// Ends the stream: the statement is reset (ending its read transaction) and the
    /// connection kept for the next stream.
    fn finish(&mut self) {
        self.done = true;
        if let Some(conn) = self.open.take().and_then(|mut open| open.release()) {
            self.server.spare_stream_conn(conn);
        }
    }
}

impl Drop for StreamedCalls {
    fn drop(&mut self) {
        self.finish();
    }
}

/// At most this many idle connections of finished streams are kept per store.
const SPARE_READERS: usize = 2;

impl SqliteServer {
    /// A connection for a stream: a spare one, else a new one opened as the shared reader is
    /// (same flags, busy timeout and SQL functions). Opening one, with its first read of the
    /// schema, costs ~0.2 ms — more than a small query.
    fn stream_conn(&self, path: &Path) -> Result<Connection> {
        let spare = self
            .inner
            .spare_readers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop();
        if let Some(conn) = spare {
            return Ok(conn);
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| {
            WeaveError::backend(format!("cannot open the store {}: {e}", path.display()))
        })?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        functions::register(&conn)?;
        Ok(conn)
    }

    /// Keeps the connection of a finished stream for the next one (if it holds no
    /// transaction and there is room), else closes it.
    fn spare_stream_conn(&self, conn: Connection) {
        if !conn.is_autocommit() {
            return;
        }
        let mut spare = self
            .inner
            .spare_readers
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if spare.len() < SPARE_READERS {
            spare.push(conn);
        }
    }
}

impl Iterator for StreamedCalls {
    type Item = Result<CallSchema>;
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(call) = self.buffer.next() {
                return Some(Ok(call));
            }
            if self.done {
                return None;
            }
            match self.read_batch() {
                Ok(batch) => self.buffer = batch.into_iter(),
                Err(e) => {
                    self.finish();
                    return Some(Err(e));
                }
            }
        }
    }
}

/// A connection, a statement prepared on it and the statement's running query, owned
/// together: rusqlite's (cached) statement borrows its connection and the rows their
/// statement, and a [`StreamedCalls`] keeps all three from one `next` to the next. The
/// connection and the statement are boxed (their addresses do not move) and freed (or, the
/// connection, given back) by `release` only, after what borrows them; the `'static` borrows
/// never leave this type.
struct OpenStatement {
    /// Borrows `*stmt`. Dropped first.
    rows: Option<rusqlite::Rows<'static>>,
    /// A leaked box; borrows `*conn` (and its statement cache), borrowed by `rows`.
    stmt: Option<NonNull<rusqlite::CachedStatement<'static>>>,
    /// A leaked box, borrowed by `stmt` (and by `conn()`).
    conn: Option<NonNull<Connection>>,
}

// SAFETY: the connection, its statement and the rows are only ever used together, by the one
// owner of this value, never shared: sending them to another thread is sending the
// `Connection` (which is `Send`) with what it owns. SQLite's multi-thread mode (the
// connection is opened with NO_MUTEX) allows a connection and its statements to be used by
// any one thread at a time.
unsafe impl Send for OpenStatement {}

impl OpenStatement {
    /// Prepares `sql` on `conn` and starts it with `params`.
    fn new(conn: Connection, sql: &str, params: &Params) -> Result<Self> {
        let conn = NonNull::from(Box::leak(Box::new(conn)));
        let mut open = OpenStatement {
            rows: None,
            stmt: None,
            conn: Some(conn),
        };
        // SAFETY: the box behind `conn` is freed by `release` only, after `stmt` and `rows`,
        // the only borrows made of it (shared, as `conn()` makes too).
        let conn: &'static Connection = unsafe { conn.as_ref() };
        let stmt = NonNull::from(Box::leak(Box::new(conn.prepare_cached(sql)?)));
        open.stmt = Some(stmt);
        // SAFETY: the box behind `stmt` is freed by `release` only, after `rows`; this is the
        // only borrow ever made of it.
        let stmt: &'static mut rusqlite::CachedStatement<'static> = unsafe { &mut *stmt.as_ptr() };
        open.rows = Some(stmt.query(params_from_iter(params.0.iter()))?);
        Ok(open)
    }

    fn rows(&mut self) -> &mut rusqlite::Rows<'static> {
        self.rows.as_mut().expect("started in new")
    }

    /// The connection, to read more on while the statement runs.
    fn conn(&self) -> &Connection {
        let conn = self.conn.expect("released only by release");
        // SAFETY: see `new`; freed only by `release`, which takes `&mut self`.
        unsafe { conn.as_ref() }
    }

    /// Resets the statement (back into the connection's statement cache, for the connection's
    /// next stream) and gives the connection back (once).
    fn release(&mut self) -> Option<Connection> {
        self.rows = None;
        if let Some(stmt) = self.stmt.take() {
            // SAFETY: leaked in `new`; `rows`, its only borrower, is gone.
            drop(unsafe { Box::from_raw(stmt.as_ptr()) });
        }
        // SAFETY: leaked in `new`; the statement, its only borrower, is gone.
        self.conn
            .take()
            .map(|conn| *unsafe { Box::from_raw(conn.as_ptr()) })
    }
}

impl Drop for OpenStatement {
    fn drop(&mut self) {
        self.release();
    }
}

impl TraceServer for SqliteServer {
    fn server_info(&self) -> Result<ServerInfoRes> {
        Ok(ServerInfoRes {
            min_required_weave_python_version: "0.0.0".into(),
            trace_server_version: Some(format!("weave-rs-sqlite {}", env!("CARGO_PKG_VERSION"))),
        })
    }

    fn call_start(&self, req: CallStartReq) -> Result<CallStartRes> {
        let res = self.write_calls(&[CallWrite::Item(&CallBatchItem::Start(req))])?;
        match res.into_iter().next() {
            Some(CallBatchItemRes::Start(r)) => Ok(r),
            _ => Err(WeaveError::backend("the store returned no start result")),
        }
    }

    fn call_end(&self, req: CallEndReq) -> Result<CallEndRes> {
        self.write_calls(&[CallWrite::Item(&CallBatchItem::End(req))])?;
        Ok(CallEndRes {})
    }

    fn call_start_batch(&self, req: CallCreateBatchReq) -> Result<CallCreateBatchRes> {
        let batch: Vec<CallWrite<'_>> = req.batch.iter().map(CallWrite::Item).collect();
        Ok(CallCreateBatchRes {
            res: self.write_calls(&batch)?,
        })
    }

    fn call_write_batch(&self, batch: &[CallBatchItem]) -> Result<()> {
        let batch: Vec<CallWrite<'_>> = batch.iter().map(CallWrite::Item).collect();
        self.write_calls(&batch).map(drop)
    }

    fn as_embedded(&self) -> Option<&SqliteServer> {
        Some(self)
    }

    fn call_read(&self, req: CallReadReq) -> Result<CallReadRes> {
        let mut q = CallsQueryReq::new(req.project_id);
        q.filter = Some(CallsFilter {
            call_ids: Some(vec![req.id]),
            ..Default::default()
        });
        q.limit = Some(1);
        q.include_costs = req.include_costs;
        q.include_storage_size = req.include_storage_size;
        q.include_total_storage_size = req.include_total_storage_size;
        let call = self.calls_query_stream(q)?.next().transpose()?;
        Ok(CallReadRes { call })
    }

    /// Lazy: a file store reads a query without a limit, or with one over 1,000, as one
    /// statement stepped as the stream is consumed, on a connection of the stream's own (a
    /// read snapshot held until the stream ends or is dropped); a smaller query, or any of an
    /// in-memory store, is read 1,000 calls at a time with LIMIT/OFFSET.
    // See the comment above `STREAM_BATCH`.
    fn calls_query_stream(&self, req: CallsQueryReq) -> Result<CallsStream> {
        let query = compile_calls_query(&req)?;
        let offset = req.offset.unwrap_or(0);
        match self.path() {
            Some(path) if req.limit.is_none_or(|l| l > STREAM_CHUNK) => Ok(Box::new(
                StreamedCalls::new(self.clone(), path.to_path_buf(), query, offset, req.limit),
            )),
            _ => Ok(Box::new(ChunkedCalls {
                server: self.clone(),
                query,
                next_offset: offset,
                remaining: req.limit,
                buffer: VecDeque::new(),
                done: false,
            })),
        }
    }

    /// True: [`SqliteServer::calls_query_stream`] reads lazily, so the client asks for the
    /// whole range of a query in one stream instead of paging with OFFSET.
    fn streams_calls_lazily(&self) -> bool {
        true
    }

    fn calls_query_stats(&self, req: CallsQueryStatsReq) -> Result<CallsQueryStatsRes> {
        let mut params = Params::default();
        let wh = where_clause(
            &req.project_id,
            req.filter.as_ref(),
            req.query.as_ref(),
            &mut params,
        )?;
        let limit = req.limit.map(|l| format!(" LIMIT {l}")).unwrap_or_default();
        // The sizes only when asked for: they read every counted row, where a count alone
        // can often be answered from an index.
        let size_sql = if req.include_total_storage_size {
            STORAGE_SIZE_SQL
        } else {
            "NULL"
        };
        let sql = format!(
            "SELECT COUNT(*), SUM(sz) FROM (SELECT {size_sql} AS sz FROM calls WHERE {wh}{limit})"
        );
        let conn = self.read_conn();
        let (count, size): (i64, Option<i64>) = conn
            .prepare_cached(&sql)?
            .query_row(params_from_iter(params.0.iter()), |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
        Ok(CallsQueryStatsRes {
            count: count as u64,
            total_storage_size_bytes: if req.include_total_storage_size {
                Some(size.unwrap_or(0))
            } else {
                None
            },
        })
    }

    fn calls_delete(&self, req: CallsDeleteReq) -> Result<CallsDeleteRes> {
        check_project_id(&req.project_id)?;
        if req.call_ids.len() > MAX_FILTER_LIST {
            return Err(WeaveError::invalid_input(format!(
                "calls_delete takes at most {MAX_FILTER_LIST} ids, got {}",
                req.call_ids.len()
            )));
        }
        let ids = serde_json::to_string(&req.call_ids)?;
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let n = tx.prepare_cached(
            "WITH RECURSIVE doomed(id) AS ( \
                 SELECT value FROM json_each(?2) \
                 UNION SELECT c.id FROM calls c JOIN doomed d ON c.parent_id = d.id WHERE c.project_id = ?1) \
             UPDATE calls SET deleted_at = ?3 \
             WHERE project_id = ?1 AND id IN (SELECT id FROM doomed) AND deleted_at IS NULL",
        )?
        .execute(rusqlite::params![req.project_id, ids, Timestamp::now().as_nanos()])?;
        tx.commit()?;
        Ok(CallsDeleteRes {
            num_deleted: n as u64,
        })
    }

    fn call_update(&self, req: CallUpdateReq) -> Result<CallUpdateRes> {
        check_project_id(&req.project_id)?;
        let name = Some(req.display_name).filter(|n| !n.is_empty());
        let conn = self.conn();
        let exists: Option<i64> = conn
            .prepare_cached(
                "SELECT 1 FROM calls WHERE project_id = ?1 AND id = ?2 AND deleted_at IS NULL",
            )?
            .query_row(rusqlite::params![req.project_id, req.call_id], |r| r.get(0))
            .optional()?;
        if exists.is_none() {
            return Err(WeaveError::NotFound {
                kind: "call",
                id: req.call_id,
            });
        }
        conn.prepare_cached(
            "UPDATE calls SET display_name = ?3 WHERE project_id = ?1 AND id = ?2",
        )?
        .execute(rusqlite::params![req.project_id, req.call_id, name])?;
        Ok(CallUpdateRes {})
    }

    fn cost_create(&self, req: CostCreateReq) -> Result<CostCreateRes> {
        check_project_id(&req.project_id)?;
        costs::create(&mut self.conn(), req)
    }

    fn cost_query(&self, req: CostQueryReq) -> Result<CostQueryRes> {
        check_project_id(&req.project_id)?;
        costs::query(&self.read_conn(), req)
    }

    fn cost_purge(&self, req: CostPurgeReq) -> Result<CostPurgeRes> {
        check_project_id(&req.project_id)?;
        costs::purge(&self.conn(), req)
    }

    fn feedback_create(&self, req: FeedbackCreateReq) -> Result<FeedbackCreateRes> {
        let mut res = feedback::create(&mut self.conn(), vec![req])?;
        res.pop()
            .ok_or_else(|| WeaveError::backend("feedback_create stored nothing"))
    }

    fn feedback_create_batch(&self, req: FeedbackCreateBatchReq) -> Result<FeedbackCreateBatchRes> {
        Ok(FeedbackCreateBatchRes {
            res: feedback::create(&mut self.conn(), req.batch)?,
        })
    }

    fn feedback_query(&self, req: FeedbackQueryReq) -> Result<FeedbackQueryRes> {
        check_project_id(&req.project_id)?;
        feedback::query(&self.read_conn(), req)
    }

    fn feedback_purge(&self, req: FeedbackPurgeReq) -> Result<FeedbackPurgeRes> {
        check_project_id(&req.project_id)?;
        feedback::purge(&self.conn(), req)
    }

    fn feedback_replace(&self, req: FeedbackReplaceReq) -> Result<FeedbackReplaceRes> {
        feedback::replace(&mut self.conn(), req)
    }

    fn obj_create(&self, req: ObjCreateReq) -> Result<ObjCreateRes> {
        check_project_id(&req.obj.project_id)?;
        objects::obj_create(&mut self.conn(), req)
    }

    fn obj_read(&self, req: ObjReadReq) -> Result<ObjReadRes> {
        check_project_id(&req.project_id)?;
        objects::obj_read(&self.read_conn(), req)
    }

    fn objs_query(&self, req: ObjQueryReq) -> Result<ObjQueryRes> {
        check_project_id(&req.project_id)?;
        objects::objs_query(&self.read_conn(), req)
    }

    fn obj_delete(&self, req: ObjDeleteReq) -> Result<ObjDeleteRes> {
        check_project_id(&req.project_id)?;
        objects::obj_delete(&mut self.conn(), req)
    }

    fn table_create(&self, req: TableCreateReq) -> Result<TableCreateRes> {
        check_project_id(&req.table.project_id)?;
        objects::table_create(&mut self.conn(), req)
    }

    fn table_query(&self, req: TableQueryReq) -> Result<TableQueryRes> {
        check_project_id(&req.project_id)?;
        objects::table_query(&self.read_conn(), req)
    }

    fn table_query_stats(&self, req: TableQueryStatsReq) -> Result<TableQueryStatsRes> {
        check_project_id(&req.project_id)?;
        objects::table_query_stats(&self.read_conn(), req)
    }

    fn refs_read_batch(&self, req: RefsReadBatchReq) -> Result<RefsReadBatchRes> {
        objects::refs_read_batch(&self.read_conn(), req)
    }

    fn file_create(&self, req: FileCreateReq) -> Result<FileCreateRes> {
        check_project_id(&req.project_id)?;
        objects::file_create(&self.conn(), req)
    }

    fn file_content_read(&self, req: FileContentReadReq) -> Result<FileContentReadRes> {
        check_project_id(&req.project_id)?;
        objects::file_content_read(&self.read_conn(), req)
    }

    fn app_url(&self) -> String {
        self.inner.config.app_url.clone()
    }
}

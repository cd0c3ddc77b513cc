//! Reading a calls query lazily: the row decoders ([`CallSchema`] for the protocol,
//! [`StoredCall`] for the client's own fast path) and the two streams that step a query
//! ([`ChunkedCalls`], [`StreamedCalls`]).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::Arc;

use rusqlite::types::ValueRef;
use rusqlite::{params_from_iter, Connection, OpenFlags, Row};
use serde_json::Value;

use super::query::Params;
use super::{costs, feedback, functions, objects, CompiledQuery, SqliteServer, STREAM_CHUNK};
use crate::error::{Result, WeaveError};
use crate::ids::IdText;
use crate::record::stored::{parse_stored_json, stored_object, StoredCall, StoredJson};
use crate::schema::summary::derive_weave_summary;
use crate::schema::{CallSchema, JsonMap};
use crate::time::Timestamp;

/// A text column's bytes, borrowed from the row (NULL and numbers as `None`).
fn bytes_ref<'r>(row: &'r Row<'_>, i: usize) -> rusqlite::Result<Option<&'r [u8]>> {
    Ok(match row.get_ref(i)? {
        ValueRef::Text(t) | ValueRef::Blob(t) => Some(t),
        _ => None,
    })
}

fn parse_json_column(row: &Row<'_>, i: usize) -> rusqlite::Result<Option<Value>> {
    Ok(bytes_ref(row, i)?.map(parse_stored_json))
}

fn object(v: Option<Value>) -> JsonMap {
    match v {
        Some(Value::Object(m)) => m,
        _ => JsonMap::new(),
    }
}

fn ts(row: &Row<'_>, i: usize) -> rusqlite::Result<Option<Timestamp>> {
    Ok(match row.get_ref(i)? {
        ValueRef::Integer(n) => Some(Timestamp::from_nanos(n)),
        ValueRef::Null => None,
        _ => row.get::<_, Option<i64>>(i)?.map(Timestamp::from_nanos),
    })
}

// The columns of a compiled calls query's SELECT, by position (see `compile_calls_query`).
const C_ID: usize = 0;
const C_PROJECT: usize = 1;
const C_OP: usize = 2;
const C_DISPLAY: usize = 3;
const C_TRACE: usize = 4;
const C_PARENT: usize = 5;
const C_THREAD: usize = 6;
const C_TURN: usize = 7;
const C_STARTED: usize = 8;
const C_ATTRIBUTES: usize = 9;
const C_INPUTS: usize = 10;
const C_ENDED: usize = 11;
const C_EXCEPTION: usize = 12;
const C_OUTPUT: usize = 13;
const C_SUMMARY: usize = 14;
const C_USER: usize = 15;
const C_RUN: usize = 16;
const C_RUN_STEP: usize = 17;
const C_RUN_STEP_END: usize = 18;
const C_DELETED: usize = 19;
const C_OTEL: usize = 20;
const C_STORAGE: usize = 21;
const C_TOTAL_STORAGE: usize = 22;

/// What a stream's rows become, and what is done to each batch of them before it is handed
/// out.
pub(crate) trait FromCallRow: Sized + Send + 'static {
    fn from_row(row: &Row<'_>, ctx: &mut RowContext) -> rusqlite::Result<Self>;
    /// Applies what the query asks for beyond its rows (costs, feedback, expanded refs).
    fn complete(query: &CompiledQuery, conn: &Connection, batch: &mut [Self]) -> Result<()>;
}

/// What one stream remembers from row to row: whether the summary is selected, and the
/// texts most rows repeat (project, op names, the SDK's attributes), each kept once and
/// shared by the stream's [`StoredCall`]s.
pub(crate) struct RowContext {
    summary_selected: bool,
    project: Option<Arc<str>>,
    /// Recently seen op names, most recent first.
    ops: Vec<Arc<str>>,
    /// The last attributes read.
    attributes: Option<SharedAttributes>,
}

/// Attributes as stored (`None` for NULL) and as parsed.
struct SharedAttributes {
    text: Option<Box<[u8]>>,
    parsed: Arc<JsonMap>,
}

/// How many distinct op names a stream keeps for sharing.
const SHARED_OPS: usize = 16;

impl RowContext {
    pub(crate) fn new(summary_selected: bool) -> Self {
        RowContext {
            summary_selected,
            project: None,
            ops: Vec::new(),
            attributes: None,
        }
    }

    fn project(&mut self, text: &[u8]) -> Arc<str> {
        match &self.project {
            Some(p) if p.as_bytes() == text => p.clone(),
            _ => self
                .project
                .insert(String::from_utf8_lossy(text).into())
                .clone(),
        }
    }

    fn op(&mut self, text: &[u8]) -> Arc<str> {
        if let Some(i) = self.ops.iter().position(|o| o.as_bytes() == text) {
            let op = self.ops[i].clone();
            self.ops[..=i].rotate_right(1);
            return op;
        }
        let op: Arc<str> = String::from_utf8_lossy(text).into();
        if self.ops.len() == SHARED_OPS {
            self.ops.pop();
        }
        self.ops.insert(0, op.clone());
        op
    }

    /// The attributes column (with the OpenTelemetry dump, when there is one, under
    /// `otel_span`), shared with the previous row when its text is the same.
    fn attributes(&mut self, text: Option<&[u8]>, otel: Option<&[u8]>) -> Arc<JsonMap> {
        if let Some(otel) = otel {
            let mut attributes = stored_object(text);
            attributes.insert("otel_span".into(), parse_stored_json(otel));
            return Arc::new(attributes);
        }
        match &self.attributes {
            Some(a) if a.text.as_deref() == text => a.parsed.clone(),
            _ => {
                let parsed = Arc::new(stored_object(text));
                self.attributes = Some(SharedAttributes {
                    text: text.map(Box::from),
                    parsed: parsed.clone(),
                });
                parsed
            }
        }
    }
}

impl FromCallRow for CallSchema {
    fn from_row(row: &Row<'_>, ctx: &mut RowContext) -> rusqlite::Result<Self> {
        let mut attributes = object(parse_json_column(row, C_ATTRIBUTES)?);
        if let Some(otel) = parse_json_column(row, C_OTEL)? {
            attributes.insert("otel_span".into(), otel);
        }
        let op_name: String = row.get(C_OP)?;
        let display_name: Option<String> = row.get(C_DISPLAY)?;
        let started_at = ts(row, C_STARTED)?.unwrap_or(Timestamp::from_nanos(0));
        let ended_at = ts(row, C_ENDED)?;
        let exception: Option<String> = row.get(C_EXCEPTION)?;
        let summary = if ctx.summary_selected {
            let mut s = object(parse_json_column(row, C_SUMMARY)?);
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
            id: row.get(C_ID)?,
            project_id: row.get(C_PROJECT)?,
            op_name,
            display_name,
            trace_id: row.get(C_TRACE)?,
            parent_id: row.get(C_PARENT)?,
            thread_id: row.get(C_THREAD)?,
            turn_id: row.get(C_TURN)?,
            started_at,
            attributes,
            inputs: object(parse_json_column(row, C_INPUTS)?),
            ended_at,
            exception,
            output: parse_json_column(row, C_OUTPUT)?.unwrap_or(Value::Null),
            summary,
            wb_user_id: row.get(C_USER)?,
            wb_run_id: row.get(C_RUN)?,
            wb_run_step: row.get(C_RUN_STEP)?,
            wb_run_step_end: row.get(C_RUN_STEP_END)?,
            deleted_at: ts(row, C_DELETED)?,
            storage_size_bytes: row.get(C_STORAGE)?,
            total_storage_size_bytes: row.get(C_TOTAL_STORAGE)?,
        })
    }

    fn complete(query: &CompiledQuery, conn: &Connection, batch: &mut [Self]) -> Result<()> {
        query.complete(conn, batch)
    }
}

/// Reads a row's JSON columns into a [`StoredJson`].
fn stored_json(row: &Row<'_>, summary_selected: bool) -> rusqlite::Result<StoredJson> {
    let inputs = bytes_ref(row, C_INPUTS)?;
    let output = bytes_ref(row, C_OUTPUT)?;
    let summary = if summary_selected {
        Some(bytes_ref(row, C_SUMMARY)?)
    } else {
        None
    };
    // Over 4 GiB of text in one row (SQLite allows at most 1 GB per value by default).
    StoredJson::from_parts(inputs, output, summary).ok_or_else(|| {
        rusqlite::Error::ToSqlConversionFailure("a call's stored JSON is larger than 4 GiB".into())
    })
}

fn id_column(row: &Row<'_>, i: usize) -> rusqlite::Result<Option<IdText>> {
    Ok(bytes_ref(row, i)?.map(IdText::from_bytes))
}

impl FromCallRow for StoredCall {
    fn from_row(row: &Row<'_>, ctx: &mut RowContext) -> rusqlite::Result<Self> {
        let project_id = ctx.project(bytes_ref(row, C_PROJECT)?.unwrap_or_default());
        let op_name = ctx.op(bytes_ref(row, C_OP)?.unwrap_or_default());
        let attributes = ctx.attributes(bytes_ref(row, C_ATTRIBUTES)?, bytes_ref(row, C_OTEL)?);
        Ok(StoredCall {
            id: id_column(row, C_ID)?.unwrap_or_else(|| IdText::from_bytes(b"")),
            project_id,
            op_name,
            display_name: row.get(C_DISPLAY)?,
            trace_id: id_column(row, C_TRACE)?.unwrap_or_else(|| IdText::from_bytes(b"")),
            parent_id: id_column(row, C_PARENT)?,
            thread_id: row.get(C_THREAD)?,
            turn_id: row.get(C_TURN)?,
            started_at: ts(row, C_STARTED)?.unwrap_or(Timestamp::from_nanos(0)),
            attributes,
            json: stored_json(row, ctx.summary_selected)?,
            ended_at: ts(row, C_ENDED)?,
            exception: row.get(C_EXCEPTION)?,
            wb_user_id: row.get(C_USER)?,
            wb_run_id: row.get(C_RUN)?,
            wb_run_step: row.get(C_RUN_STEP)?,
            wb_run_step_end: row.get(C_RUN_STEP_END)?,
            deleted_at: ts(row, C_DELETED)?,
            storage_size_bytes: row.get(C_STORAGE)?,
            total_storage_size_bytes: row.get(C_TOTAL_STORAGE)?,
        })
    }

    /// Nothing: a query with costs, feedback or expanded refs is read as [`CallSchema`]s
    /// ([`CompiledQuery::needs_completion`]).
    fn complete(_: &CompiledQuery, _: &Connection, _: &mut [Self]) -> Result<()> {
        Ok(())
    }
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
pub(crate) struct ChunkedCalls<T> {
    server: SqliteServer,
    query: CompiledQuery,
    next_offset: u64,
    remaining: Option<u64>,
    buffer: VecDeque<T>,
    ctx: RowContext,
    done: bool,
}

impl<T: FromCallRow> ChunkedCalls<T> {
    pub(crate) fn new(
        server: SqliteServer,
        query: CompiledQuery,
        offset: u64,
        limit: Option<u64>,
    ) -> Self {
        ChunkedCalls {
            server,
            ctx: RowContext::new(query.summary_selected),
            query,
            next_offset: offset,
            remaining: limit,
            buffer: VecDeque::new(),
            done: false,
        }
    }

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
        let ctx = &mut self.ctx;
        let rows = stmt.query_map(params_from_iter(self.query.params.0.iter()), |r| {
            T::from_row(r, ctx)
        })?;
        let mut chunk = rows.collect::<rusqlite::Result<Vec<_>>>()?;
        T::complete(&self.query, &conn, &mut chunk)?;
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

impl<T: FromCallRow> Iterator for ChunkedCalls<T> {
    type Item = Result<T>;
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
/// of calls is held. (A thread stepping ahead was tried twice and was slower both times: the
/// calls it allocates are freed on the reader's thread, and with glibc's allocator both
/// threads then contend for its arena lock; and with [`StoredCall`]s, stepping SQLite and
/// copying the rows out is most of the work, so the thread reading ahead does most of it
/// alone: 1M calls at ~350k/s against ~400k/s on the caller's thread.)
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
pub(crate) struct StreamedCalls<T> {
    server: SqliteServer,
    path: PathBuf,
    query: CompiledQuery,
    /// The query's SQL with its LIMIT and OFFSET.
    sql: String,
    /// From the first `next` until the end.
    open: Option<OpenStatement>,
    buffer: std::vec::IntoIter<T>,
    ctx: RowContext,
    done: bool,
}

impl<T: FromCallRow> StreamedCalls<T> {
    pub(crate) fn new(
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
            ctx: RowContext::new(query.summary_selected),
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
    fn read_batch(&mut self) -> Result<Vec<T>> {
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
                Some(row) => batch.push(T::from_row(row, &mut self.ctx)?),
                None => {
                    end = true;
                    break;
                }
            }
        }
        T::complete(&self.query, open.conn(), &mut batch)?;
        if end {
            self.finish();
        }
        Ok(batch)
    }
}

impl<T> StreamedCalls<T> {
    /// Ends the stream: the statement is reset (ending its read transaction) and the
    /// connection kept for the next stream.
    fn finish(&mut self) {
        self.done = true;
        if let Some(conn) = self.open.take().and_then(|mut open| open.release()) {
            self.server.spare_stream_conn(conn);
        }
    }
}

impl<T> Drop for StreamedCalls<T> {
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
            WeaveError::backend_caused_by(
                format!("cannot open the store {}: {e}", path.display()),
                e,
            )
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

impl<T: FromCallRow> Iterator for StreamedCalls<T> {
    type Item = Result<T>;
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

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

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::{params_from_iter, Connection, OpenFlags, OptionalExtension, Row, Transaction};
use serde_json::Value;

use self::query::Params;
use super::{CallsStream, TraceServer};
use crate::config::Settings;
use crate::error::{Result, WeaveError};
use crate::ids::{generate_id, is_valid_call_id, is_valid_trace_id};
use crate::limits;
use crate::refs::extract_refs;
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
            // 32 MiB of page cache for the writer (SQLite's default is 2 MiB): the indexes'
            // pages stay in memory while calls are written.
            conn.pragma_update(None, "cache_size", -32768)?;
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

/// The JSON text of `v`, nested at most [`limits::MAX_DEPTH`] deep (a deeper value is
/// copied and capped; the common shallow one is serialised as it is).
fn capped_text(v: &Value) -> String {
    if limits::depth_exceeds(v, limits::MAX_DEPTH) {
        let mut v = v.clone();
        limits::cap_depth(&mut v);
        serde_json::to_string(&v)
    } else {
        serde_json::to_string(v)
    }
    .unwrap_or_else(|_| limits::exceeds_limits_marker().to_string())
}

/// [`capped_text`] of a JSON object.
fn capped_map_text(m: &JsonMap) -> String {
    if m.values()
        .any(|v| limits::depth_exceeds(v, limits::MAX_DEPTH - 1))
    {
        capped_text(&Value::Object(m.clone()))
    } else {
        serde_json::to_string(m).unwrap_or_else(|_| limits::exceeds_limits_marker().to_string())
    }
}

/// Refs in a JSON object's values, as [`extract_refs`] finds them.
fn map_refs(m: &JsonMap) -> Vec<String> {
    let mut out = Vec::new();
    for v in m.values() {
        for r in extract_refs(v) {
            if !out.contains(&r) {
                out.push(r);
            }
        }
    }
    out
}

/// A start, validated and turned into column values.
struct StartRow<'a> {
    s: &'a StartedCallSchemaForInsert,
    id: String,
    trace_id: String,
    inputs: String,
    attributes: String,
    otel: Option<String>,
    refs: Vec<String>,
}

fn start_row(s: &StartedCallSchemaForInsert) -> Result<StartRow<'_>> {
    check_project_id(&s.project_id)?;
    crate::refs::check_op_name(&s.op_name)?;
    let id = s.id.clone().unwrap_or_else(generate_id);
    let trace_id = s.trace_id.clone().unwrap_or_else(generate_id);
    if !is_valid_call_id(&id) {
        return Err(WeaveError::invalid_input(format!(
            "call id {id:?} is not a lowercase UUID or 16-hex-digit span id"
        )));
    }
    if !is_valid_trace_id(&trace_id) {
        return Err(WeaveError::invalid_input(format!(
            "trace id {trace_id:?} is not a lowercase UUID or 32-hex-digit trace id"
        )));
    }
    let mut texts = limits::limit_row_texts(vec![
        capped_map_text(&s.inputs),
        capped_map_text(&s.attributes),
    ]);
    let attributes = texts.pop().unwrap_or_default();
    let inputs = texts.pop().unwrap_or_default();
    let otel = s
        .otel_dump
        .as_ref()
        .map(|m| limits::limit_row_texts(vec![capped_map_text(m)]).remove(0));
    Ok(StartRow {
        refs: map_refs(&s.inputs),
        s,
        id,
        trace_id,
        inputs,
        attributes,
        otel,
    })
}

/// An end, validated and turned into column values.
struct EndRow<'a> {
    e: &'a EndedCallSchemaForInsert,
    output: String,
    summary: String,
    refs: Vec<String>,
}

fn end_row(e: &EndedCallSchemaForInsert) -> Result<EndRow<'_>> {
    check_project_id(&e.project_id)?;
    if !is_valid_call_id(&e.id) {
        return Err(WeaveError::invalid_input(format!(
            "call id {:?} is not a lowercase UUID or 16-hex-digit span id",
            e.id
        )));
    }
    let mut texts =
        limits::limit_row_texts(vec![capped_text(&e.output), capped_map_text(&e.summary)]);
    let summary = texts.pop().unwrap_or_default();
    let output = texts.pop().unwrap_or_default();
    Ok(EndRow {
        refs: extract_refs(&e.output),
        e,
        output,
        summary,
    })
}

macro_rules! insert_calls {
    () => {
        "INSERT INTO calls (project_id, id, trace_id, parent_id, thread_id, turn_id, op_name, display_name, \
         started_at, attributes, inputs, otel_dump, wb_user_id, wb_run_id, wb_run_step"
    };
}
/// A new call's start; nothing when the call already has a row.
const INSERT_NEW_START: &str = concat!(
    insert_calls!(),
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15) ON CONFLICT DO NOTHING"
);
/// A start over an existing row (an end came first, or the start is sent again).
const UPSERT_START: &str = concat!(
    insert_calls!(),
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15) \
     ON CONFLICT (project_id, id) DO UPDATE SET trace_id = excluded.trace_id, parent_id = excluded.parent_id, \
     thread_id = excluded.thread_id, turn_id = excluded.turn_id, op_name = excluded.op_name, \
     display_name = COALESCE(calls.display_name, excluded.display_name), started_at = excluded.started_at, \
     attributes = excluded.attributes, inputs = excluded.inputs, otel_dump = excluded.otel_dump, \
     wb_user_id = excluded.wb_user_id, wb_run_id = excluded.wb_run_id, wb_run_step = excluded.wb_run_step"
);
/// A new call, started and ended; nothing when the call already has a row.
const INSERT_NEW_COMPLETE: &str = concat!(
    insert_calls!(),
    ", ended_at, exception, output, summary, wb_run_step_end) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20) \
     ON CONFLICT DO NOTHING"
);

/// An end onto a started call that has not ended.
const UPDATE_END_OF_STARTED: &str = "UPDATE calls SET ended_at = ?3, exception = ?4, output = ?5, summary = ?6, \
     wb_run_step_end = ?7 WHERE project_id = ?1 AND id = ?2 AND ended_at IS NULL";

/// The statements a batch runs per call, prepared once per batch (looking a statement up in
/// the cache hashes its whole SQL text, which costs more than binding it).
struct HotStatements<'t> {
    new_start: rusqlite::CachedStatement<'t>,
    new_complete: rusqlite::CachedStatement<'t>,
    end_started: rusqlite::CachedStatement<'t>,
}

impl<'t> HotStatements<'t> {
    fn new(tx: &'t Transaction<'_>) -> Result<Self> {
        Ok(HotStatements {
            new_start: tx.prepare_cached(INSERT_NEW_START)?,
            new_complete: tx.prepare_cached(INSERT_NEW_COMPLETE)?,
            end_started: tx.prepare_cached(UPDATE_END_OF_STARTED)?,
        })
    }
}

/// Writes a start: a new row when the call is new (the common case, one statement), else
/// the start's columns over the existing row and its input refs replaced.
fn insert_start(tx: &Transaction<'_>, hot: &mut HotStatements<'_>, r: &StartRow<'_>) -> Result<()> {
    let s = r.s;
    let params = rusqlite::params![
        s.project_id,
        r.id,
        r.trace_id,
        s.parent_id,
        s.thread_id,
        s.turn_id,
        s.op_name,
        s.display_name.as_deref().filter(|d| !d.is_empty()),
        s.started_at.as_nanos(),
        r.attributes,
        r.inputs,
        r.otel,
        s.wb_user_id,
        s.wb_run_id,
        s.wb_run_step,
    ];
    if hot.new_start.execute(params)? == 1 {
        insert_refs(tx, &s.project_id, &r.id, 0, &r.refs)?;
    } else {
        tx.prepare_cached(UPSERT_START)?.execute(params)?;
        replace_refs(tx, &s.project_id, &r.id, 0, &r.refs)?;
    }
    Ok(())
}

/// Writes an end: onto the started row when it has not ended yet (one statement), else as
/// an upsert (an end before its start, or again) with its output refs replaced.
fn insert_end(tx: &Transaction<'_>, hot: &mut HotStatements<'_>, r: &EndRow<'_>) -> Result<()> {
    let e = r.e;
    let exception = e.exception.as_deref().filter(|x| !x.is_empty());
    let updated = hot
        .end_started
        .execute(rusqlite::params![
            e.project_id,
            e.id,
            e.ended_at.as_nanos(),
            exception,
            r.output,
            r.summary,
            e.wb_run_step_end,
        ])?;
    if updated == 1 {
        insert_refs(tx, &e.project_id, &e.id, 1, &r.refs)?;
        return Ok(());
    }
    tx.prepare_cached(
        "INSERT INTO calls (project_id, id, ended_at, exception, output, summary, wb_run_step_end) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
         ON CONFLICT (project_id, id) DO UPDATE SET ended_at = excluded.ended_at, exception = excluded.exception, \
         output = excluded.output, summary = excluded.summary, wb_run_step_end = excluded.wb_run_step_end",
    )?
    .execute(rusqlite::params![
        e.project_id,
        e.id,
        e.ended_at.as_nanos(),
        exception,
        r.output,
        r.summary,
        e.wb_run_step_end,
    ])?;
    replace_refs(tx, &e.project_id, &e.id, 1, &r.refs)?;
    Ok(())
}

/// Writes a start and its end (both in one batch) as one new row; false when the call
/// already has a row (then the caller writes them one after the other).
fn insert_complete(
    tx: &Transaction<'_>,
    hot: &mut HotStatements<'_>,
    s: &StartRow<'_>,
    e: &EndRow<'_>,
) -> Result<bool> {
    let (st, en) = (s.s, e.e);
    let inserted = hot
        .new_complete
        .execute(rusqlite::params![
            st.project_id,
            s.id,
            s.trace_id,
            st.parent_id,
            st.thread_id,
            st.turn_id,
            st.op_name,
            st.display_name.as_deref().filter(|d| !d.is_empty()),
            st.started_at.as_nanos(),
            s.attributes,
            s.inputs,
            s.otel,
            st.wb_user_id,
            st.wb_run_id,
            st.wb_run_step,
            en.ended_at.as_nanos(),
            en.exception.as_deref().filter(|x| !x.is_empty()),
            e.output,
            e.summary,
            en.wb_run_step_end,
        ])?;
    if inserted == 0 {
        return Ok(false);
    }
    insert_refs(tx, &st.project_id, &s.id, 0, &s.refs)?;
    insert_refs(tx, &st.project_id, &s.id, 1, &e.refs)?;
    Ok(true)
}

fn insert_refs(
    tx: &Transaction<'_>,
    project_id: &str,
    call_id: &str,
    kind: i64,
    refs: &[String],
) -> Result<()> {
    if refs.is_empty() {
        return Ok(());
    }
    let mut ins = tx.prepare_cached(
        "INSERT OR IGNORE INTO call_refs (project_id, call_id, kind, ref) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for r in refs {
        ins.execute(rusqlite::params![project_id, call_id, kind, r])?;
    }
    Ok(())
}

/// Applies a batch of starts and ends in order, in one transaction. A start whose end
/// follows in the same batch is written as one complete row. An invalid item fails the
/// whole batch (rolled back), naming the item.
fn write_call_batch(
    tx: &Transaction<'_>,
    batch: &[CallBatchItem],
) -> Result<Vec<CallBatchItemRes>> {
    let name_item = |i: usize| {
        move |e: WeaveError| match e {
            WeaveError::InvalidInput(m) => WeaveError::InvalidInput(format!("batch item {i}: {m}")),
            other => other,
        }
    };
    // The ends in this batch, by (project, call id): the position of the first one.
    let mut ends: std::collections::HashMap<(&str, &str), usize> = std::collections::HashMap::new();
    for (i, item) in batch.iter().enumerate() {
        if let CallBatchItem::End(e) = item {
            ends.entry((&e.end.project_id, &e.end.id)).or_insert(i);
        }
    }
    let mut hot = HotStatements::new(tx)?;
    let mut merged = vec![false; batch.len()];
    let mut res = Vec::with_capacity(batch.len());
    for (i, item) in batch.iter().enumerate() {
        match item {
            CallBatchItem::Start(s) => {
                let row = start_row(&s.start).map_err(name_item(i))?;
                let end_at = s
                    .start
                    .id
                    .as_deref()
                    .and_then(|id| ends.get(&(s.start.project_id.as_str(), id)))
                    .copied()
                    .filter(|&j| j > i && !merged[j]);
                let mut done = false;
                if let Some(j) = end_at {
                    if let CallBatchItem::End(e) = &batch[j] {
                        // Invalid ends are reported at their own position below.
                        if let Ok(end) = end_row(&e.end) {
                            done = insert_complete(tx, &mut hot, &row, &end).map_err(name_item(i))?;
                            merged[j] = done;
                        }
                    }
                }
                if !done {
                    insert_start(tx, &mut hot, &row).map_err(name_item(i))?;
                }
                res.push(CallBatchItemRes::Start(CallStartRes {
                    id: row.id,
                    trace_id: row.trace_id,
                }));
            }
            CallBatchItem::End(e) => {
                if !merged[i] {
                    let row = end_row(&e.end).map_err(name_item(i))?;
                    insert_end(tx, &mut hot, &row).map_err(name_item(i))?;
                }
                res.push(CallBatchItemRes::End(CallEndRes {}));
            }
        }
    }
    Ok(res)
}

fn replace_refs(
    tx: &Transaction<'_>,
    project_id: &str,
    call_id: &str,
    kind: i64,
    refs: &[String],
) -> Result<()> {
    tx.prepare_cached(
        "DELETE FROM call_refs WHERE project_id = ?1 AND call_id = ?2 AND kind = ?3",
    )?
    .execute(rusqlite::params![project_id, call_id, kind])?;
    let mut ins = tx.prepare_cached(
        "INSERT OR IGNORE INTO call_refs (project_id, call_id, kind, ref) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for r in refs {
        ins.execute(rusqlite::params![project_id, call_id, kind, r])?;
    }
    Ok(())
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

/// Streams a query's rows in chunks of [`STREAM_CHUNK`], each chunk its own short read, so
/// neither memory nor a read transaction grows with the result size.
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
            self.query.sql, self.next_offset
        );
        let conn = self.server.read_conn();
        let mut stmt = conn.prepare_cached(&sql)?;
        let summary_selected = self.query.summary_selected;
        let rows = stmt.query_map(params_from_iter(self.query.params.0.iter()), |r| {
            row_to_call(r, summary_selected)
        })?;
        let mut chunk = rows.collect::<rusqlite::Result<Vec<_>>>()?;
        if let Some(project_id) = &self.query.costs_for {
            costs::apply(&conn, project_id, &mut chunk)?;
        }
        if let Some(project_id) = &self.query.feedback_for {
            feedback::apply(&conn, project_id, &mut chunk)?;
        }
        if !self.query.expand.is_empty() {
            objects::expand_columns(&conn, &mut chunk, &self.query.expand)?;
        }
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

impl TraceServer for SqliteServer {
    fn server_info(&self) -> Result<ServerInfoRes> {
        Ok(ServerInfoRes {
            min_required_weave_python_version: "0.0.0".into(),
            trace_server_version: Some(format!("weave-rs-sqlite {}", env!("CARGO_PKG_VERSION"))),
        })
    }

    fn call_start(&self, req: CallStartReq) -> Result<CallStartRes> {
        let row = start_row(&req.start)?;
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        insert_start(&tx, &mut HotStatements::new(&tx)?, &row)?;
        tx.commit()?;
        Ok(CallStartRes {
            id: row.id,
            trace_id: row.trace_id,
        })
    }

    fn call_end(&self, req: CallEndReq) -> Result<CallEndRes> {
        let row = end_row(&req.end)?;
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        insert_end(&tx, &mut HotStatements::new(&tx)?, &row)?;
        tx.commit()?;
        Ok(CallEndRes {})
    }

    fn call_start_batch(&self, req: CallCreateBatchReq) -> Result<CallCreateBatchRes> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let res = write_call_batch(&tx, &req.batch)?;
        tx.commit()?;
        Ok(CallCreateBatchRes { res })
    }

    fn call_write_batch(&self, batch: &[CallBatchItem]) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        write_call_batch(&tx, batch)?;
        tx.commit()?;
        Ok(())
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

    fn calls_query_stream(&self, req: CallsQueryReq) -> Result<CallsStream> {
        let query = compile_calls_query(&req)?;
        Ok(Box::new(ChunkedCalls {
            server: self.clone(),
            query,
            next_offset: req.offset.unwrap_or(0),
            remaining: req.limit,
            buffer: VecDeque::new(),
            done: false,
        }))
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
        let sql = format!("SELECT COUNT(*), SUM(sz) FROM (SELECT {STORAGE_SIZE_SQL} AS sz FROM calls WHERE {wh}{limit})");
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

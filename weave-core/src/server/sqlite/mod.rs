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

mod checkpoint;
mod costs;
mod feedback;
mod functions;
mod migrations;
mod objects;
mod query;
mod raw_batch;
mod stream;
mod writes;

pub(crate) use self::writes::CallWrite;
use crate::record::stored::StoredCall;

use self::stream::{ChunkedCalls, StreamedCalls};

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::{params_from_iter, Connection, OpenFlags, OptionalExtension};

use self::query::Params;
use super::{CallsStream, Capabilities, RecordStore, RecordWrite, StoredCalls, TraceServer};
use crate::config::Settings;
use crate::error::{Result, WeaveError};
use crate::schema::check_project_id;
use crate::schema::*;
use crate::time::Timestamp;

pub(crate) use query::MAX_FILTER_LIST;

pub use crate::config::DEFAULT_LOCAL_APP_URL;

/// How many rows a stream fetches per internal query.
const STREAM_CHUNK: u64 = 1000;

/// Configuration of a [`SqliteServer`]: [`SqliteServerConfig::default`] (the environment's),
/// [`SqliteServerConfig::from_settings`], then the `with_` methods. `#[non_exhaustive]`, so
/// that options can be added without breaking callers.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SqliteServerConfig {
    /// The database file; `None` for an in-memory store.
    pub path: Option<PathBuf>,
    /// The base URL of call links (see [`DEFAULT_LOCAL_APP_URL`]).
    pub app_url: String,
}

impl SqliteServerConfig {
    /// The store `settings` describe: its file ([`Settings::db_path`]) and link base.
    pub fn from_settings(settings: &Settings) -> Self {
        SqliteServerConfig {
            path: settings.db_path(),
            app_url: settings.local_app_url(),
        }
    }

    /// Sets the database file (`None`: in memory).
    pub fn with_path(mut self, path: Option<PathBuf>) -> Self {
        self.path = path;
        self
    }

    /// Sets the base URL of call links.
    pub fn with_app_url(mut self, url: impl Into<String>) -> Self {
        self.app_url = url.into();
        self
    }
}

impl Default for SqliteServerConfig {
    /// The file at [`SqliteServer::default_path`].
    fn default() -> Self {
        SqliteServerConfig::from_settings(&Settings::from_env())
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
    /// A file store's WAL checkpoints, off the writer's thread (see [`checkpoint`]).
    checkpointer: Option<checkpoint::Checkpointer>,
    config: SqliteServerConfig,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(c) = self.checkpointer.take() {
            let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
            c.uninstall(&conn);
        }
    }
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
                        WeaveError::backend_caused_by(
                            format!(
                                "cannot create the directory of the store {}: {e}",
                                dir.display()
                            ),
                            e,
                        )
                    })?;
                }
                Connection::open_with_flags(
                    path,
                    OpenFlags::SQLITE_OPEN_READ_WRITE
                        | OpenFlags::SQLITE_OPEN_CREATE
                        | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .map_err(|e| {
                    WeaveError::backend_caused_by(
                        format!("cannot open the store {}: {e}", path.display()),
                        e,
                    )
                })?
            }
        };
        let name_file = |e: WeaveError| match (&config.path, e) {
            (Some(path), WeaveError::Backend { message, source }) => WeaveError::Backend {
                message: format!("store {}: {message}", path.display()),
                source,
            },
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
        // Without the thread (it could not start), SQLite's automatic checkpoint stays on.
        let checkpointer = config
            .path
            .as_deref()
            .and_then(|path| checkpoint::Checkpointer::install(&conn, path).ok());
        Ok(SqliteServer {
            inner: Arc::new(Inner {
                conn: Mutex::new(conn),
                reader,
                spare_readers: Mutex::new(Vec::new()),
                checkpointer,
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

    /// Folds the write-ahead log into the database file and truncates it, so the file is the
    /// whole store on its own (a no-op in memory). Waits for other connections' writes (the
    /// busy timeout); readers in other processes may keep part of the log, which SQLite
    /// checkpoints later.
    pub fn checkpoint(&self) -> Result<()> {
        if self.inner.config.path.is_none() {
            return Ok(());
        }
        let conn = self.conn();
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
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
pub(crate) struct CompiledQuery {
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
        conds.extend(query::start_bounds(q, params));
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

impl CompiledQuery {
    /// Whether the query asks for more than its rows (costs, feedback, expanded refs), which
    /// are applied to protocol [`CallSchema`]s.
    fn needs_completion(&self) -> bool {
        self.costs_for.is_some() || self.feedback_for.is_some() || !self.expand.is_empty()
    }
}

impl SqliteServer {
    /// The lazy stream of a compiled query's calls (see the comment in `stream.rs` for the two
    /// ways a query is read).
    fn stream_calls<T: stream::FromCallRow>(
        &self,
        query: CompiledQuery,
        req: &CallsQueryReq,
    ) -> Box<dyn Iterator<Item = Result<T>> + Send> {
        let offset = req.offset.unwrap_or(0);
        match self.path() {
            Some(path) if req.limit.is_none_or(|l| l > STREAM_CHUNK) => Box::new(
                StreamedCalls::<T>::new(self.clone(), path.to_path_buf(), query, offset, req.limit),
            ),
            _ => Box::new(ChunkedCalls::<T>::new(
                self.clone(),
                query,
                offset,
                req.limit,
            )),
        }
    }
}

/// The client's own paths: its writer's records written as they are (`writes.rs`), and its
/// queries read as `StoredCall`s, their JSON columns parsed only when read.
impl RecordStore for SqliteServer {
    fn write_records(&self, batch: &[RecordWrite<'_>]) -> Result<()> {
        let writes: Vec<CallWrite<'_>> = batch
            .iter()
            .map(|w| match *w {
                RecordWrite::Start(c) => CallWrite::Start(c),
                RecordWrite::End(c) => CallWrite::End(c),
            })
            .collect();
        self.write_calls(&writes).map(drop)
    }

    fn query_records(&self, req: &CallsQueryReq) -> Result<Option<StoredCalls>> {
        let query = compile_calls_query(req)?;
        if query.needs_completion() {
            return Ok(None);
        }
        Ok(Some(self.stream_calls::<StoredCall>(query, req)))
    }
}

impl TraceServer for SqliteServer {
    fn server_info(&self) -> Result<ServerInfoRes> {
        Ok(ServerInfoRes {
            min_required_weave_python_version: "0.0.0".into(),
            trace_server_version: Some(format!("weave-rs-sqlite {}", env!("CARGO_PKG_VERSION"))),
            call_batches_in_any_order: Some(true),
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

    /// The record path ([`RecordStore`]) and lazy streams.
    fn capabilities(&self) -> Capabilities<'_> {
        Capabilities::default()
            .with_streams_calls_lazily(true)
            .with_records(self)
    }

    /// Reads the body's JSON fields as text and stores them as they are (`raw_batch.rs`);
    /// `None` for a body that path does not take (the caller parses it in full).
    fn call_upsert_batch_body(&self, body: &[u8]) -> Option<Result<CallCreateBatchRes>> {
        use self::raw_batch::{RawBatch, RawItem};
        let batch: RawBatch<'_> = serde_json::from_slice(body).ok()?;
        if !batch.storable_as_text() {
            return None;
        }
        let writes: Vec<CallWrite<'_>> = batch
            .batch
            .iter()
            .map(|item| match item {
                RawItem::Start(s) => CallWrite::RawStart(&s.start),
                RawItem::End(e) => CallWrite::RawEnd(&e.end),
            })
            .collect();
        Some(
            self.write_calls(&writes)
                .map(|res| CallCreateBatchRes { res }),
        )
    }

    fn projects(&self) -> Result<ProjectsRes> {
        let conn = self.read_conn();
        let mut st = conn.prepare_cached(
            "SELECT project_id, count(*), max(started_at) FROM calls \
             WHERE started_at IS NOT NULL AND deleted_at IS NULL \
             GROUP BY project_id ORDER BY max(started_at) DESC, project_id",
        )?;
        let projects = st
            .query_map([], |r| {
                Ok(ProjectStats {
                    project_id: r.get(0)?,
                    calls: r.get::<_, i64>(1)? as u64,
                    last_call_at: r.get::<_, Option<i64>>(2)?.map(Timestamp::from_nanos),
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(ProjectsRes { projects })
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
        Ok(self.stream_calls::<CallSchema>(query, &req))
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

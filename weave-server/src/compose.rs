//! Protocol routes made of the backend's own methods, so that every [`TraceServer`] gets them:
//! the v2 `calls/complete` write path, `/table/update`, `/table/query_stats_batch`,
//! `/threads/stream_query` and the multipart file upload.

use std::collections::HashMap;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use weave_core::schema::*;
use weave_core::{Result, Timestamp, TraceServer, WeaveError};

use crate::routes::blocking;
use crate::{ApiError, AppState};

/// `POST /v2/{entity}/{project}/calls/complete`: `{"batch": [CompletedCallSchemaForInsert]}`.
#[derive(Debug, Deserialize)]
pub struct CallsCompleteReq {
    /// Whole calls, start and end in one.
    pub batch: Vec<CompletedCallSchemaForInsert>,
}

/// Writes whole calls as the start and end halves of one `/call/upsert_batch`: the same
/// rows, in one transaction of the embedded store. Every call must belong to the project of
/// the route (`project_id` of the path), as on the Weave server.
pub fn calls_complete(
    backend: &dyn TraceServer,
    project_id: &str,
    req: CallsCompleteReq,
) -> Result<CallEndRes> {
    let mut batch = Vec::with_capacity(req.batch.len() * 2);
    for call in req.batch {
        if call.project_id != project_id {
            return Err(WeaveError::InvalidInput(format!(
                "calls/complete: call {} is of project {:?}, not the route's {project_id:?}",
                call.id, call.project_id
            )));
        }
        let (start, end) = call.into_start_end();
        batch.push(CallBatchItem::Start(CallStartReq { start }));
        batch.push(CallBatchItem::End(CallEndReq { end }));
    }
    backend.call_start_batch(CallCreateBatchReq { batch })?;
    Ok(CallEndRes {})
}

/// One edit of `/table/update`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TableUpdate {
    /// Adds a row at the end.
    Append {
        /// The row (a JSON object).
        row: Value,
    },
    /// Removes the row at `index`.
    Pop {
        /// Its position.
        index: i64,
    },
    /// Inserts a row at `index`.
    Insert {
        /// The position.
        index: i64,
        /// The row (a JSON object).
        row: Value,
    },
}

/// `POST /table/update`.
#[derive(Debug, Deserialize)]
pub struct TableUpdateReq {
    /// `"entity/project"`.
    pub project_id: String,
    /// The table the edits apply to.
    pub base_digest: String,
    /// The edits, applied in order.
    pub updates: Vec<TableUpdate>,
}

/// Response of `/table/update`.
#[derive(Debug, Serialize)]
pub struct TableUpdateRes {
    /// The new table's digest.
    pub digest: String,
    /// The digests of the rows the edits added, in the order of the edits.
    pub updated_row_digests: Vec<String>,
}

/// A new table: the base table's rows with `updates` applied. Tables are content-addressed,
/// so the base is left as it is.
pub fn table_update(backend: &dyn TraceServer, req: TableUpdateReq) -> Result<TableUpdateRes> {
    let base = backend.table_query(TableQueryReq {
        project_id: req.project_id.clone(),
        digest: req.base_digest.clone(),
        filter: None,
        limit: None,
        offset: None,
        sort_by: None,
    })?;
    let mut rows: Vec<Value> = base.rows.into_iter().map(|r| r.val).collect();
    let mut added = Vec::new();
    for (i, update) in req.updates.into_iter().enumerate() {
        let index_of = |index: i64, len: usize, what: &str| -> Result<usize> {
            usize::try_from(index)
                .ok()
                .filter(|&ix| ix <= len)
                .ok_or_else(|| {
                    WeaveError::InvalidInput(format!(
                        "table/update: updates[{i}].{what}.index {index} is outside the table's {len} rows"
                    ))
                })
        };
        match update {
            TableUpdate::Append { row } => {
                added.push(rows.len());
                rows.push(row);
            }
            TableUpdate::Insert { index, row } => {
                let ix = index_of(index, rows.len(), "insert")?;
                for a in added.iter_mut().filter(|a| **a >= ix) {
                    *a += 1;
                }
                added.push(ix);
                rows.insert(ix, row);
            }
            TableUpdate::Pop { index } => {
                let ix = index_of(index, rows.len().saturating_sub(1), "pop")?;
                if rows.is_empty() {
                    return Err(WeaveError::InvalidInput(format!(
                        "table/update: updates[{i}].pop: the table is empty"
                    )));
                }
                rows.remove(ix);
                added.retain(|a| *a != ix);
                for a in added.iter_mut().filter(|a| **a > ix) {
                    *a -= 1;
                }
            }
        }
    }
    let created = backend.table_create(TableCreateReq {
        table: TableSchemaForInsert {
            project_id: req.project_id,
            rows,
        },
    })?;
    Ok(TableUpdateRes {
        updated_row_digests: added
            .iter()
            .filter_map(|ix| created.row_digests.get(*ix).cloned())
            .collect(),
        digest: created.digest,
    })
}

/// `POST /table/query_stats_batch`.
#[derive(Debug, Deserialize)]
pub struct TableQueryStatsBatchReq {
    /// `"entity/project"`.
    pub project_id: String,
    /// The tables.
    #[serde(default)]
    pub digests: Vec<String>,
}

/// One table of `/table/query_stats_batch`.
#[derive(Debug, Serialize)]
pub struct TableStats {
    /// The table digest.
    pub digest: String,
    /// Its number of rows.
    pub count: u64,
}

/// Response of `/table/query_stats_batch`.
#[derive(Debug, Serialize)]
pub struct TableQueryStatsBatchRes {
    /// One entry per table found, in the order asked.
    pub tables: Vec<TableStats>,
}

/// The row counts of several tables; unknown digests are left out, as on the Weave server.
pub fn table_query_stats_batch(
    backend: &dyn TraceServer,
    req: TableQueryStatsBatchReq,
) -> Result<TableQueryStatsBatchRes> {
    let mut tables = Vec::with_capacity(req.digests.len());
    for digest in req.digests {
        match backend.table_query_stats(TableQueryStatsReq {
            project_id: req.project_id.clone(),
            digest: digest.clone(),
        }) {
            Ok(s) => tables.push(TableStats {
                digest,
                count: s.count,
            }),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(TableQueryStatsBatchRes { tables })
}

/// The `filter` of `/threads/stream_query`.
#[derive(Debug, Default, Deserialize)]
pub struct ThreadsQueryFilter {
    /// Only turns that started after this.
    #[serde(default)]
    pub after_datetime: Option<Timestamp>,
    /// Only turns that started before this.
    #[serde(default)]
    pub before_datetime: Option<Timestamp>,
    /// Only these threads.
    #[serde(default)]
    pub thread_ids: Option<Vec<String>>,
}

/// `POST /threads/stream_query`.
#[derive(Debug, Deserialize)]
pub struct ThreadsQueryReq {
    /// `"entity/project"`.
    pub project_id: String,
    /// Filter.
    #[serde(default)]
    pub filter: Option<ThreadsQueryFilter>,
    /// At most this many.
    #[serde(default)]
    pub limit: Option<u64>,
    /// Skip this many.
    #[serde(default)]
    pub offset: Option<u64>,
    /// Sort keys (a field of [`ThreadSchema`]); default: last activity, newest first.
    #[serde(default)]
    pub sort_by: Option<Vec<SortBy>>,
}

/// One conversation thread, as `/threads/stream_query` lists them.
#[derive(Debug, Clone, Serialize)]
pub struct ThreadSchema {
    /// The thread id.
    pub thread_id: String,
    /// How many turns (calls that are their own turn: `turn_id == id`).
    pub turn_count: u64,
    /// When the first turn started.
    pub start_time: Timestamp,
    /// When the thread was last active: the latest end of a turn (the latest start while
    /// no turn has ended).
    pub last_updated: Timestamp,
    /// The id of the turn that started first.
    pub first_turn_id: Option<String>,
    /// The id of the turn that ended last.
    pub last_turn_id: Option<String>,
    /// The median duration of the thread's finished turns.
    pub p50_turn_duration_ms: Option<f64>,
    /// The 99th percentile of the durations of its finished turns.
    pub p99_turn_duration_ms: Option<f64>,
}

/// The fields a thread can be sorted by.
const THREAD_SORT_FIELDS: &[&str] = &[
    "thread_id",
    "turn_count",
    "start_time",
    "last_updated",
    "p50_turn_duration_ms",
    "p99_turn_duration_ms",
];

/// The threads of a project, aggregated over their turns as the Weave server does: a turn is
/// a call that is its own turn (`turn_id == id`, what the SDKs write for the outermost call of
/// a turn); calls within a turn do not count, and a thread with no turn is not listed. The
/// date filters select turns by their start. Where the SQLite server of the `weave` package
/// answers `-1` for the percentiles, this computes them (as W&B's server does), linearly
/// interpolated; and a thread whose turns are all running is listed, as last active when its
/// latest turn started, where that server leaves it out.
pub fn threads(backend: &dyn TraceServer, req: ThreadsQueryReq) -> Result<Vec<ThreadSchema>> {
    let filter = req.filter.unwrap_or_default();
    let sort = req
        .sort_by
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| vec![SortBy::desc("last_updated")]);
    if let Some(bad) = sort
        .iter()
        .find(|s| !THREAD_SORT_FIELDS.contains(&s.field.as_str()))
    {
        return Err(WeaveError::InvalidQuery(format!(
            "threads sort_by: unsupported field {:?} (expected one of {})",
            bad.field,
            THREAD_SORT_FIELDS.join(", ")
        )));
    }
    let mut q = CallsQueryReq::new(req.project_id);
    q.columns = Some(
        ["id", "thread_id", "turn_id", "started_at", "ended_at"]
            .map(String::from)
            .to_vec(),
    );
    q.filter = Some(CallsFilter {
        thread_ids: filter.thread_ids.clone().filter(|t| !t.is_empty()),
        ..Default::default()
    });
    /// A thread's turns: (started, ended, id).
    type Turns = Vec<(Timestamp, Option<Timestamp>, String)>;
    let mut by_thread: HashMap<String, Turns> = HashMap::new();
    for call in backend.calls_query_stream(q)? {
        let call = call?;
        let Some(thread) = call.thread_id.clone().filter(|t| !t.is_empty()) else {
            continue;
        };
        if call.turn_id.as_deref() != Some(call.id.as_str())
            || filter.after_datetime.is_some_and(|d| call.started_at <= d)
            || filter.before_datetime.is_some_and(|d| call.started_at >= d)
        {
            continue;
        }
        by_thread
            .entry(thread)
            .or_default()
            .push((call.started_at, call.ended_at, call.id));
    }
    let mut out: Vec<ThreadSchema> = by_thread
        .into_iter()
        .map(|(thread_id, turns)| thread_stats(thread_id, turns))
        .collect();
    out.sort_by(|a, b| {
        for s in &sort {
            let ord = match s.field.as_str() {
                "thread_id" => Some(a.thread_id.cmp(&b.thread_id)),
                "turn_count" => Some(a.turn_count.cmp(&b.turn_count)),
                "start_time" => Some(a.start_time.cmp(&b.start_time)),
                "p50_turn_duration_ms" => {
                    a.p50_turn_duration_ms.partial_cmp(&b.p50_turn_duration_ms)
                }
                "p99_turn_duration_ms" => {
                    a.p99_turn_duration_ms.partial_cmp(&b.p99_turn_duration_ms)
                }
                _ => Some(a.last_updated.cmp(&b.last_updated)),
            }
            .unwrap_or(std::cmp::Ordering::Equal);
            let ord = if matches!(s.direction, SortDirection::Desc) {
                ord.reverse()
            } else {
                ord
            };
            if ord.is_ne() {
                return ord;
            }
        }
        a.thread_id.cmp(&b.thread_id)
    });
    let offset = req.offset.unwrap_or(0).min(out.len() as u64) as usize;
    out.drain(..offset);
    if let Some(limit) = req.limit {
        out.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    }
    Ok(out)
}

fn thread_stats(
    thread_id: String,
    mut turns: Vec<(Timestamp, Option<Timestamp>, String)>,
) -> ThreadSchema {
    turns.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.2.cmp(&b.2)));
    let first = &turns[0];
    let last_ended = turns
        .iter()
        .filter_map(|t| t.1.map(|e| (e, &t.2)))
        .max_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)));
    let mut durations: Vec<f64> = turns
        .iter()
        .filter_map(|t| t.1.map(|e| (e.as_nanos() - t.0.as_nanos()) as f64 / 1e6))
        .collect();
    durations.sort_by(f64::total_cmp);
    let pct = |p: f64| -> Option<f64> {
        let n = durations.len();
        if n == 0 {
            return None;
        }
        let rank = p * (n - 1) as f64;
        let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
        Some(durations[lo] + (durations[hi] - durations[lo]) * (rank - lo as f64))
    };
    ThreadSchema {
        turn_count: turns.len() as u64,
        start_time: first.0,
        last_updated: last_ended.map_or_else(|| turns[turns.len() - 1].0, |l| l.0),
        first_turn_id: Some(first.2.clone()),
        last_turn_id: Some(
            last_ended.map_or_else(|| turns[turns.len() - 1].2.clone(), |l| l.1.clone()),
        ),
        p50_turn_duration_ms: pct(0.5),
        p99_turn_duration_ms: pct(0.99),
        thread_id,
    }
}

/// `POST /file/create` and `/files/create`: multipart with the fields `project_id`,
/// `expected_digest` (optional: the upload is refused with 409 when the content's digest
/// differs) and the file part `file`, whose file name is the logical name.
pub async fn file_create(State(state): State<AppState>, req: Request) -> Response {
    match file_create_inner(&state, req).await {
        Ok(res) => Json(res).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn file_create_inner(state: &AppState, req: Request) -> Result<FileCreateRes, ApiError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let boundary = multer::parse_boundary(&content_type).map_err(|_| {
        ApiError::unprocessable(
            vec!["body".into()],
            format!(
                "expected multipart/form-data with a boundary, got content type {content_type:?}"
            ),
            "missing",
        )
    })?;
    let body = crate::body::read_limited(req, state.options.max_body_bytes).await?;
    let stream = futures_util::stream::once(async move { Ok::<_, std::io::Error>(body) });
    let mut form = multer::Multipart::new(stream, boundary);
    let (mut project_id, mut expected, mut file) = (None, None, None);
    let bad = |e: multer::Error| ApiError::unprocessable(vec!["body".into()], e, "value_error");
    while let Some(field) = form.next_field().await.map_err(bad)? {
        match field.name().unwrap_or("") {
            "project_id" => project_id = Some(field.text().await.map_err(bad)?),
            "expected_digest" => expected = Some(field.text().await.map_err(bad)?),
            "file" => {
                let name = field.file_name().unwrap_or("file").to_string();
                file = Some((name, field.bytes().await.map_err(bad)?));
            }
            _ => {}
        }
    }
    let missing = |name: &str| {
        ApiError::unprocessable(
            vec!["body".into(), name.into()],
            "Field required",
            "missing",
        )
    };
    let project_id = project_id.ok_or_else(|| missing("project_id"))?;
    let (name, content) = file.ok_or_else(|| missing("file"))?;
    let digest = weave_core::digest::file_digest(&content);
    if let Some(expected) = expected.filter(|e| !e.is_empty()) {
        if expected != digest {
            return Err(ApiError::reason(
                StatusCode::CONFLICT,
                format!("file digest mismatch: expected {expected}, the content's is {digest}"),
            ));
        }
    }
    blocking(state, move |b| {
        b.file_create(FileCreateReq {
            project_id,
            name,
            content: content.to_vec(),
        })
    })
    .await
}

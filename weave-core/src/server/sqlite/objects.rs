//! Objects (and ops), tables, files, and ref resolution over SQLite (PROTOCOL §3.3–3.5, §7).
//!
//! - An object's identity is (project, kind, name); each new digest appends a version
//!   (`version_index` in creation order). Creating an existing digest returns it without a
//!   new version (and undeletes it). `is_latest` is derived on read: the newest version that
//!   is not deleted.
//! - Tables are stored as their row digests; rows are stored once per project by digest.
//!   (Unlike the Python SQLite server, rows are keyed by project too, so identical tables in
//!   two projects both read back.)
//! - Refs resolve through `key` / `attr` / `index` / `id` edges, following nested object
//!   refs and, for `id`, the table ref at that point.

use rusqlite::{params_from_iter, Connection, OptionalExtension, Row};
use serde_json::{Map, Value};

use super::query::{self, Params};
use crate::digest::{file_digest, object_digest, row_digest, table_digest};
use crate::error::{Result, WeaveError};
use crate::limits;
use crate::refs::{ObjectRef, Ref, RefEdge};
use crate::schema::*;
use crate::time::Timestamp;

/// At most this many digests per `obj_delete`, as on the Weave server.
const MAX_DELETE_DIGESTS: usize = 100;
/// At most this many refs per `refs_read_batch`.
const MAX_REFS: usize = 1000;

/// Whether `name` is a valid object name: `[\w._-]`, 1 to 128 characters.
pub(crate) fn check_object_name(name: &str) -> Result<()> {
    let n = name.chars().count();
    if n == 0
        || n > 128
        || !name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '-'))
    {
        return Err(WeaveError::invalid_input(format!(
            "invalid object name {name:?}: use 1 to 128 letters, digits, '_', '.' or '-'"
        )));
    }
    Ok(())
}

fn kind_of(val: &Value) -> &'static str {
    let is_op = val.get("_type").and_then(Value::as_str) == Some("CustomWeaveType")
        && val
            .get("weave_type")
            .and_then(|t| t.get("type"))
            .and_then(Value::as_str)
            == Some("Op");
    if is_op {
        "op"
    } else {
        "object"
    }
}

/// `(base_object_class, leaf_object_class)` from `_bases` and `_class_name`.
fn classes_of(val: &Value) -> (Option<String>, Option<String>) {
    let leaf = val
        .get("_class_name")
        .and_then(Value::as_str)
        .map(str::to_string);
    let bases: Vec<&str> = match val.get("_bases").and_then(Value::as_array) {
        Some(b) => b.iter().filter_map(Value::as_str).collect(),
        None => return (None, None),
    };
    let Some(leaf) = leaf else {
        return (None, None);
    };
    let n = bases.len();
    let known_root =
        n >= 2 && bases[n - 1] == "BaseModel" && matches!(bases[n - 2], "Object" | "BaseObject");
    if !known_root {
        return (None, Some(leaf));
    }
    let base = if n >= 3 {
        bases[n - 3].to_string()
    } else {
        leaf.clone()
    };
    (Some(base), Some(leaf))
}

pub(super) fn obj_create(conn: &mut Connection, req: ObjCreateReq) -> Result<ObjCreateRes> {
    let o = req.obj;
    check_object_name(&o.object_id)?;
    let mut val = o.val;
    limits::cap_depth(&mut val);
    let digest = object_digest(&val);
    if let Some(expected) = &o.expected_digest {
        if *expected != digest {
            return Err(WeaveError::invalid_input(format!(
                "digest mismatch for object {:?}: expected {expected}, computed {digest}",
                o.object_id
            )));
        }
    }
    let kind = kind_of(&val);
    let (base, leaf) = classes_of(&val);
    let base = o.builtin_object_class.clone().or(base);
    let tx = conn.transaction()?;
    let existing: Option<i64> = tx
        .prepare_cached("SELECT 1 FROM objects WHERE project_id = ?1 AND kind = ?2 AND object_id = ?3 AND digest = ?4")?
        .query_row(rusqlite::params![o.project_id, kind, o.object_id, digest], |r| r.get(0))
        .optional()?;
    if existing.is_some() {
        tx.prepare_cached(
            "UPDATE objects SET deleted_at = NULL WHERE project_id = ?1 AND kind = ?2 AND object_id = ?3 AND digest = ?4",
        )?
        .execute(rusqlite::params![o.project_id, kind, o.object_id, digest])?;
    } else {
        tx.prepare_cached(
            "INSERT INTO objects (project_id, kind, object_id, digest, version_index, base_object_class, \
             leaf_object_class, val, created_at, wb_user_id) \
             VALUES (?1, ?2, ?3, ?4, (SELECT COUNT(*) FROM objects WHERE project_id = ?1 AND kind = ?2 AND object_id = ?3), \
             ?5, ?6, ?7, ?8, ?9)",
        )?
        .execute(rusqlite::params![
            o.project_id,
            kind,
            o.object_id,
            digest,
            base,
            leaf,
            serde_json::to_string(&val)?,
            Timestamp::now().as_nanos(),
            o.wb_user_id,
        ])?;
    }
    tx.commit()?;
    Ok(ObjCreateRes {
        digest,
        object_id: Some(o.object_id),
    })
}

const OBJ_COLUMNS: &str = "o.project_id, o.object_id, o.created_at, o.deleted_at, o.digest, o.version_index, \
     (o.version_index = (SELECT MAX(l.version_index) FROM objects l WHERE l.project_id = o.project_id \
       AND l.kind = o.kind AND l.object_id = o.object_id AND l.deleted_at IS NULL)) AS is_latest, \
     o.kind, o.base_object_class, o.leaf_object_class, o.val, o.wb_user_id, length(o.val)";

fn obj_from_row(r: &Row<'_>, metadata_only: bool) -> rusqlite::Result<ObjSchema> {
    let val: String = r.get(10)?;
    Ok(ObjSchema {
        project_id: r.get(0)?,
        object_id: r.get(1)?,
        created_at: Timestamp::from_nanos(r.get(2)?),
        deleted_at: r.get::<_, Option<i64>>(3)?.map(Timestamp::from_nanos),
        digest: r.get(4)?,
        version_index: r.get(5)?,
        is_latest: r.get::<_, Option<i64>>(6)?.unwrap_or(0),
        kind: r.get(7)?,
        base_object_class: r.get(8)?,
        leaf_object_class: r.get(9)?,
        val: if metadata_only {
            Value::Object(Map::new())
        } else {
            serde_json::from_str(&val).unwrap_or_else(|_| limits::exceeds_limits_marker())
        },
        wb_user_id: r.get(11)?,
        size_bytes: r.get(12)?,
    })
}

/// Reads one version by digest, `latest` or `v<N>`, deleted ones included.
fn find_version(
    conn: &Connection,
    project_id: &str,
    object_id: &str,
    digest: &str,
) -> Result<Option<ObjSchema>> {
    let (cond, arg): (&str, rusqlite::types::Value) = if digest == "latest" {
        (
            "o.deleted_at IS NULL ORDER BY o.version_index DESC, o.created_at DESC",
            rusqlite::types::Value::Null,
        )
    } else if let Some(n) = digest.strip_prefix('v').and_then(|n| n.parse::<i64>().ok()) {
        ("o.version_index = ?3 ORDER BY o.created_at DESC", n.into())
    } else {
        ("o.digest = ?3", digest.to_string().into())
    };
    let sql = format!("SELECT {OBJ_COLUMNS} FROM objects o WHERE o.project_id = ?1 AND o.object_id = ?2 AND {cond} LIMIT 1");
    let mut stmt = conn.prepare_cached(&sql)?;
    let row = if matches!(arg, rusqlite::types::Value::Null) {
        stmt.query_row(rusqlite::params![project_id, object_id], |r| {
            obj_from_row(r, false)
        })
        .optional()?
    } else {
        stmt.query_row(rusqlite::params![project_id, object_id, arg], |r| {
            obj_from_row(r, false)
        })
        .optional()?
    };
    Ok(row)
}

pub(super) fn obj_read(conn: &Connection, req: ObjReadReq) -> Result<ObjReadRes> {
    match find_version(conn, &req.project_id, &req.object_id, &req.digest)? {
        Some(mut obj) if obj.deleted_at.is_none() => {
            if req.metadata_only {
                obj.val = Value::Object(Map::new());
            }
            Ok(ObjReadRes { obj })
        }
        Some(obj) => Err(WeaveError::NotFound {
            kind: "object",
            id: format!(
                "{}:{} (deleted at {})",
                req.object_id,
                req.digest,
                obj.deleted_at.unwrap_or(obj.created_at)
            ),
        }),
        None => Err(WeaveError::NotFound {
            kind: "object",
            id: format!("{}:{}", req.object_id, req.digest),
        }),
    }
}

pub(super) fn objs_query(conn: &Connection, req: ObjQueryReq) -> Result<ObjQueryRes> {
    let mut params = Params::default();
    let mut conds = vec![
        format!("o.project_id = {}", params.bind(req.project_id.clone())),
        "o.deleted_at IS NULL".into(),
    ];
    let f = req.filter.unwrap_or_default();
    let list = |params: &mut Params, col: &str, items: &[String], negate: bool| {
        let p = params.bind(serde_json::to_string(items).unwrap_or_else(|_| "[]".into()));
        format!(
            "COALESCE(o.{col}, '') {} (SELECT value FROM json_each({p}))",
            if negate { "NOT IN" } else { "IN" }
        )
    };
    if let Some(ids) = f.object_ids.as_ref().filter(|v| !v.is_empty()) {
        conds.push(list(&mut params, "object_id", ids, false));
    }
    if let Some(c) = f.base_object_classes.as_ref().filter(|v| !v.is_empty()) {
        conds.push(list(&mut params, "base_object_class", c, false));
    }
    if let Some(c) = f
        .exclude_base_object_classes
        .as_ref()
        .filter(|v| !v.is_empty())
    {
        conds.push(list(&mut params, "base_object_class", c, true));
    }
    if let Some(c) = f.leaf_object_classes.as_ref().filter(|v| !v.is_empty()) {
        conds.push(list(&mut params, "leaf_object_class", c, false));
    }
    match f.is_op {
        Some(true) => conds.push("o.kind = 'op'".into()),
        Some(false) => conds.push("o.kind = 'object'".into()),
        None => {}
    }
    let mut sql = format!(
        "SELECT {OBJ_COLUMNS} FROM objects o WHERE {}",
        conds.join(" AND ")
    );
    if f.latest_only == Some(true) {
        sql = format!("SELECT * FROM ({sql}) WHERE is_latest = 1");
    }
    let mut order = Vec::new();
    for key in req.sort_by.unwrap_or_default() {
        let col = match key.field.as_str() {
            "object_id" => "object_id",
            "created_at" => "created_at",
            other => {
                return Err(WeaveError::invalid_query(format!(
                    "sort_by: objects sort by object_id or created_at, not {other:?}"
                )))
            }
        };
        order.push(format!(
            "{col} {}",
            if key.direction == SortDirection::Asc {
                "ASC"
            } else {
                "DESC"
            }
        ));
    }
    order.push("object_id ASC, version_index ASC".into());
    sql = format!(
        "SELECT * FROM ({sql}) ORDER BY {} LIMIT {} OFFSET {}",
        order.join(", "),
        req.limit.map_or(-1, |l| l as i64),
        req.offset.unwrap_or(0)
    );
    let metadata_only = req.metadata_only.unwrap_or(false);
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(params_from_iter(params.0.iter()), |r| {
        obj_from_row(r, metadata_only)
    })?;
    Ok(ObjQueryRes {
        objs: rows.collect::<rusqlite::Result<_>>()?,
    })
}

pub(super) fn obj_delete(conn: &mut Connection, req: ObjDeleteReq) -> Result<ObjDeleteRes> {
    let now = Timestamp::now().as_nanos();
    let tx = conn.transaction()?;
    let n = match &req.digests {
        None => tx
            .prepare_cached("UPDATE objects SET deleted_at = ?3 WHERE project_id = ?1 AND object_id = ?2 AND deleted_at IS NULL")?
            .execute(rusqlite::params![req.project_id, req.object_id, now])?,
        Some(digests) => {
            if digests.len() > MAX_DELETE_DIGESTS {
                return Err(WeaveError::invalid_input(format!(
                    "obj_delete takes at most {MAX_DELETE_DIGESTS} digests, got {}",
                    digests.len()
                )));
            }
            let mut n = 0;
            for d in digests {
                let changed = tx
                    .prepare_cached(
                        "UPDATE objects SET deleted_at = ?4 WHERE project_id = ?1 AND object_id = ?2 AND digest = ?3 \
                         AND deleted_at IS NULL",
                    )?
                    .execute(rusqlite::params![req.project_id, req.object_id, d, now])?;
                if changed == 0 {
                    return Err(WeaveError::NotFound { kind: "object version", id: format!("{}:{d}", req.object_id) });
                }
                n += changed;
            }
            n
        }
    };
    if n == 0 {
        return Err(WeaveError::NotFound {
            kind: "object",
            id: req.object_id,
        });
    }
    tx.commit()?;
    Ok(ObjDeleteRes {
        num_deleted: n as u64,
    })
}

pub(super) fn table_create(conn: &mut Connection, req: TableCreateReq) -> Result<TableCreateRes> {
    let t = req.table;
    let tx = conn.transaction()?;
    let mut digests = Vec::with_capacity(t.rows.len());
    for (i, mut row) in t.rows.into_iter().enumerate() {
        if !row.is_object() {
            return Err(WeaveError::invalid_input(format!(
                "table row {i} is not a JSON object"
            )));
        }
        limits::cap_depth(&mut row);
        let d = row_digest(&row);
        tx.prepare_cached(
            "INSERT OR IGNORE INTO table_rows (project_id, digest, val) VALUES (?1, ?2, ?3)",
        )?
        .execute(rusqlite::params![
            t.project_id,
            d,
            serde_json::to_string(&row)?
        ])?;
        digests.push(d);
    }
    let digest = table_digest(&digests);
    tx.prepare_cached(
        "INSERT OR IGNORE INTO tables (project_id, digest, row_digests) VALUES (?1, ?2, ?3)",
    )?
    .execute(rusqlite::params![
        t.project_id,
        digest,
        serde_json::to_string(&digests)?
    ])?;
    tx.commit()?;
    Ok(TableCreateRes {
        digest,
        row_digests: digests,
    })
}

fn table_exists(conn: &Connection, project_id: &str, digest: &str) -> Result<()> {
    let found: Option<i64> = conn
        .prepare_cached("SELECT 1 FROM tables WHERE project_id = ?1 AND digest = ?2")?
        .query_row(rusqlite::params![project_id, digest], |r| r.get(0))
        .optional()?;
    found.map(|_| ()).ok_or_else(|| WeaveError::NotFound {
        kind: "table",
        id: digest.to_string(),
    })
}

pub(super) fn table_query(conn: &Connection, req: TableQueryReq) -> Result<TableQueryRes> {
    table_exists(conn, &req.project_id, &req.digest)?;
    let mut params = Params::default();
    let mut sql = format!(
        "SELECT r.digest, r.val, CAST(j.key AS INTEGER) FROM tables t, json_each(t.row_digests) j \
         JOIN table_rows r ON r.project_id = t.project_id AND r.digest = j.value \
         WHERE t.project_id = {} AND t.digest = {}",
        params.bind(req.project_id.clone()),
        params.bind(req.digest.clone())
    );
    if let Some(ds) = req.filter.and_then(|f| f.row_digests) {
        let p = params.bind(serde_json::to_string(&ds)?);
        sql.push_str(&format!(
            " AND r.digest IN (SELECT value FROM json_each({p}))"
        ));
    }
    let mut order = Vec::new();
    for key in req.sort_by.unwrap_or_default() {
        let path = key
            .field
            .strip_prefix("val.")
            .unwrap_or(&key.field)
            .to_string();
        let expr = query::json_value_sql("r.val", &path, &mut params)?;
        order.push(format!(
            "{expr} {} NULLS LAST",
            if key.direction == SortDirection::Asc {
                "ASC"
            } else {
                "DESC"
            }
        ));
    }
    order.push("CAST(j.key AS INTEGER) ASC".into());
    sql.push_str(&format!(
        " ORDER BY {} LIMIT {} OFFSET {}",
        order.join(", "),
        req.limit.map_or(-1, |l| l as i64),
        req.offset.unwrap_or(0)
    ));
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(params_from_iter(params.0.iter()), |r| {
        let val: String = r.get(1)?;
        Ok(TableRowSchema {
            digest: r.get(0)?,
            val: serde_json::from_str(&val).unwrap_or_else(|_| limits::exceeds_limits_marker()),
            original_index: r.get(2)?,
        })
    })?;
    Ok(TableQueryRes {
        rows: rows.collect::<rusqlite::Result<_>>()?,
    })
}

pub(super) fn table_query_stats(
    conn: &Connection,
    req: TableQueryStatsReq,
) -> Result<TableQueryStatsRes> {
    let count: Option<i64> = conn
        .prepare_cached("SELECT json_array_length(row_digests) FROM tables WHERE project_id = ?1 AND digest = ?2")?
        .query_row(rusqlite::params![req.project_id, req.digest], |r| r.get(0))
        .optional()?;
    let count = count.ok_or(WeaveError::NotFound {
        kind: "table",
        id: req.digest,
    })?;
    Ok(TableQueryStatsRes {
        count: count as u64,
    })
}

fn table_row(conn: &Connection, project_id: &str, table: &str, row: &str) -> Result<Option<Value>> {
    let val: Option<String> = conn
        .prepare_cached(
            "SELECT r.val FROM tables t, json_each(t.row_digests) j JOIN table_rows r \
             ON r.project_id = t.project_id AND r.digest = j.value \
             WHERE t.project_id = ?1 AND t.digest = ?2 AND j.value = ?3 LIMIT 1",
        )?
        .query_row(rusqlite::params![project_id, table, row], |r| r.get(0))
        .optional()?;
    Ok(val.map(|v| serde_json::from_str(&v).unwrap_or_else(|_| limits::exceeds_limits_marker())))
}

/// Resolves an object ref, following its extra edges. `Ok(None)` when the object (or a
/// nested one) is deleted.
pub(super) fn resolve(
    conn: &Connection,
    r: &ObjectRef,
    uri: &str,
    depth: usize,
) -> Result<Option<Value>> {
    if depth > 32 {
        return Err(WeaveError::invalid_input(format!(
            "ref {uri}: refs nest more than 32 deep (a cycle?)"
        )));
    }
    let project_id = format!("{}/{}", r.entity, r.project);
    let Some(obj) = find_version(conn, &project_id, &r.name, &r.digest)? else {
        return Err(WeaveError::NotFound {
            kind: "object",
            id: uri.to_string(),
        });
    };
    if obj.deleted_at.is_some() {
        return Ok(None);
    }
    let mut cur = obj.val;
    for (edge, key) in &r.extra {
        // A nested object ref is followed before descending into it.
        if let Some(s) = cur
            .as_str()
            .filter(|s| s.starts_with(crate::refs::WEAVE_SCHEME))
        {
            match s.parse::<Ref>()? {
                Ref::Object(inner) => match resolve(conn, &inner, s, depth + 1)? {
                    Some(v) => cur = v,
                    None => return Ok(None),
                },
                Ref::Table {
                    entity,
                    project,
                    digest,
                } if *edge == RefEdge::Id => {
                    let row = table_row(conn, &format!("{entity}/{project}"), &digest, key)?;
                    cur = row.ok_or_else(|| WeaveError::NotFound {
                        kind: "table row",
                        id: format!("{uri} (row {key})"),
                    })?;
                    continue;
                }
                _ => {}
            }
        }
        let missing = || WeaveError::NotFound {
            kind: "ref path",
            id: format!("{uri} ({} {key:?})", edge.as_str()),
        };
        cur = match edge {
            RefEdge::Key | RefEdge::Attr => cur
                .as_object_mut()
                .and_then(|m| m.remove(key))
                .ok_or_else(missing)?,
            RefEdge::Index => {
                let i: usize = key.parse().map_err(|_| missing())?;
                match cur {
                    Value::Array(mut items) if i < items.len() => items.swap_remove(i),
                    _ => return Err(missing()),
                }
            }
            RefEdge::Id => return Err(missing()),
        };
    }
    Ok(Some(cur))
}

pub(super) fn refs_read_batch(
    conn: &Connection,
    req: RefsReadBatchReq,
) -> Result<RefsReadBatchRes> {
    if req.refs.len() > MAX_REFS {
        return Err(WeaveError::invalid_input(format!(
            "refs_read_batch takes at most {MAX_REFS} refs, got {}",
            req.refs.len()
        )));
    }
    let mut vals = Vec::with_capacity(req.refs.len());
    for uri in &req.refs {
        let r = match uri.parse::<Ref>()? {
            Ref::Object(r) => r,
            Ref::Table { .. } => {
                return Err(WeaveError::invalid_input(format!(
                    "{uri}: table refs cannot be read as values"
                )))
            }
            Ref::Call(_) => {
                return Err(WeaveError::invalid_input(format!(
                    "{uri}: call refs cannot be read as values"
                )))
            }
        };
        if r.digest == "latest"
            || (r.digest.starts_with('v') && r.digest[1..].parse::<u64>().is_ok())
        {
            return Err(WeaveError::invalid_input(format!(
                "{uri}: refs_read_batch needs a real digest, not {:?}",
                r.digest
            )));
        }
        vals.push(resolve(conn, &r, uri, 0)?.unwrap_or(Value::Null));
    }
    Ok(RefsReadBatchRes { vals })
}

pub(super) fn file_create(conn: &Connection, req: FileCreateReq) -> Result<FileCreateRes> {
    let digest = file_digest(&req.content);
    conn.prepare_cached(
        "INSERT OR IGNORE INTO files (project_id, digest, name, content) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(rusqlite::params![
        req.project_id,
        digest,
        req.name,
        req.content
    ])?;
    Ok(FileCreateRes { digest })
}

pub(super) fn file_content_read(
    conn: &Connection,
    req: FileContentReadReq,
) -> Result<FileContentReadRes> {
    let content: Option<Vec<u8>> = conn
        .prepare_cached("SELECT content FROM files WHERE project_id = ?1 AND digest = ?2")?
        .query_row(rusqlite::params![req.project_id, req.digest], |r| r.get(0))
        .optional()?;
    content
        .map(|content| FileContentReadRes { content })
        .ok_or(WeaveError::NotFound {
            kind: "file",
            id: req.digest,
        })
}

/// Expands ref strings at the dotted `columns` of each call in place (`expand_columns`):
/// an object ref is replaced by its value, with `"_ref": <uri>` added inside a dict. Paths
/// are processed shallowest first, so nested expansion works.
pub(super) fn expand_columns(
    conn: &Connection,
    calls: &mut [CallSchema],
    columns: &[String],
) -> Result<()> {
    let mut cols: Vec<&String> = columns.iter().collect();
    cols.sort_by_key(|c| c.matches('.').count());
    for call in calls.iter_mut() {
        for col in &cols {
            let Some((top, rest)) = col
                .split_once('.')
                .map(|(t, r)| (t, Some(r)))
                .or(Some((col.as_str(), None)))
            else {
                continue;
            };
            let mut root = match top {
                "inputs" => Value::Object(std::mem::take(&mut call.inputs)),
                "output" => std::mem::take(&mut call.output),
                "attributes" => Value::Object(std::mem::take(&mut call.attributes)),
                _ => continue,
            };
            expand_at(conn, &mut root, rest)?;
            match top {
                "inputs" => call.inputs = into_object(root),
                "output" => call.output = root,
                _ => call.attributes = into_object(root),
            }
        }
    }
    Ok(())
}

fn into_object(v: Value) -> JsonMap {
    match v {
        Value::Object(m) => m,
        _ => JsonMap::new(),
    }
}

fn expand_at(conn: &Connection, root: &mut Value, path: Option<&str>) -> Result<()> {
    let mut cur = root;
    for seg in path
        .map(|p| p.split('.').collect::<Vec<_>>())
        .unwrap_or_default()
    {
        cur = match cur {
            Value::Object(m) => match m.get_mut(seg) {
                Some(v) => v,
                None => return Ok(()),
            },
            Value::Array(items) => match seg.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                Some(v) => v,
                None => return Ok(()),
            },
            _ => return Ok(()),
        };
    }
    let Some(uri) = cur
        .as_str()
        .filter(|s| s.starts_with(crate::refs::WEAVE_SCHEME))
        .map(str::to_string)
    else {
        return Ok(());
    };
    let Ok(Ref::Object(r)) = uri.parse::<Ref>() else {
        return Ok(());
    };
    // A ref that cannot be resolved (deleted, missing) is left as it is.
    if let Ok(Some(mut v)) = resolve(conn, &r, &uri, 0) {
        if let Value::Object(m) = &mut v {
            m.insert("_ref".into(), Value::String(uri));
        }
        *cur = v;
    }
    Ok(())
}

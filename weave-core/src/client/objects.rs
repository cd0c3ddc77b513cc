//! Objects and refs: `save` / `get` of any `Serialize` value, tables and datasets
//! (PROTOCOL §7).

use std::collections::VecDeque;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

use super::WeaveClient;
use crate::error::{Result, WeaveError};
use crate::refs::{ObjectKind, ObjectRef, Ref, RefEdge};
use crate::schema::*;

/// The longest object name.
pub const MAX_OBJECT_NAME_CHARS: usize = 128;

/// Makes `name` a valid object name, as the Python client does: runs of characters other
/// than letters, digits, `_` and `.` become `-`; runs of two or more of `.`, `_`, `-` become
/// `-`; leading and trailing `-` and `_` go; at most 128 characters. Errors when nothing is
/// left.
///
/// # Examples
///
/// ```
/// use weave_core::sanitize_object_name;
/// assert_eq!(sanitize_object_name("My Config / v2!").unwrap(), "My-Config-v2");
/// assert_eq!(sanitize_object_name("__a..b__").unwrap(), "a-b");
/// assert!(sanitize_object_name("///").is_err());
/// ```
pub fn sanitize_object_name(name: &str) -> Result<String> {
    let word = |c: char| c.is_alphanumeric() || c == '_' || c == '.';
    let mut step1 = String::with_capacity(name.len());
    let mut in_bad = false;
    for c in name.chars() {
        if word(c) {
            step1.push(c);
            in_bad = false;
        } else if !in_bad {
            step1.push('-');
            in_bad = true;
        }
    }
    let mut step2 = String::with_capacity(step1.len());
    let chars: Vec<char> = step1.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let punct = |c: char| matches!(c, '.' | '_' | '-');
        if punct(chars[i]) {
            let mut j = i;
            while j < chars.len() && punct(chars[j]) {
                j += 1;
            }
            if j - i >= 2 {
                step2.push('-');
            } else {
                step2.push(chars[i]);
            }
            i = j;
        } else {
            step2.push(chars[i]);
            i += 1;
        }
    }
    let trimmed: String = step2
        .trim_matches(|c| c == '-' || c == '_')
        .chars()
        .take(MAX_OBJECT_NAME_CHARS)
        .collect();
    if trimmed.is_empty() {
        return Err(WeaveError::invalid_input(format!(
            "invalid object name {name:?}: nothing is left once sanitized"
        )));
    }
    Ok(trimmed)
}

/// A saved table: its ref and row digests. Serialises as its ref URI, so it can be placed
/// inside objects (that is how datasets hold their rows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRef {
    /// Entity.
    pub entity: String,
    /// Project.
    pub project: String,
    /// The table digest (64 hex characters).
    pub digest: String,
    /// The row digests, in order.
    pub row_digests: Vec<String>,
}

impl std::fmt::Display for TableRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}{}/{}/table/{}",
            crate::refs::WEAVE_SCHEME,
            self.entity,
            self.project,
            self.digest
        )
    }
}

impl Serialize for TableRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The rows of a table, fetched lazily in pages.
#[derive(Debug)]
pub struct TableRowsIter {
    client: WeaveClient,
    project_id: String,
    digest: String,
    page_size: u64,
    fetched: u64,
    buffer: VecDeque<TableRowSchema>,
    done: bool,
}

impl TableRowsIter {
    /// Sets how many rows each request fetches (default 1000).
    pub fn page_size(mut self, n: u64) -> Self {
        self.page_size = n.max(1);
        self
    }
    /// The number of rows, without fetching them.
    pub fn size(&self) -> Result<u64> {
        Ok(self
            .client
            .server()
            .table_query_stats(TableQueryStatsReq {
                project_id: self.project_id.clone(),
                digest: self.digest.clone(),
            })?
            .count)
    }
}

impl Iterator for TableRowsIter {
    type Item = Result<TableRowSchema>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.buffer.is_empty() && !self.done {
            let res = self.client.server().table_query(TableQueryReq {
                project_id: self.project_id.clone(),
                digest: self.digest.clone(),
                filter: None,
                limit: Some(self.page_size),
                offset: Some(self.fetched),
                sort_by: None,
            });
            match res {
                Ok(page) => {
                    let n = page.rows.len() as u64;
                    self.fetched += n;
                    self.done = n < self.page_size;
                    self.buffer.extend(page.rows);
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        self.buffer.pop_front().map(Ok)
    }
}

fn walk(mut v: Value, extra: &[(RefEdge, String)], uri: &str) -> Result<Value> {
    for (edge, key) in extra {
        let missing = || WeaveError::NotFound {
            kind: "ref path",
            id: format!("{uri} ({} {key:?})", edge.as_str()),
        };
        v = match (edge, v) {
            (RefEdge::Key | RefEdge::Attr, Value::Object(mut m)) => {
                m.remove(key).ok_or_else(missing)?
            }
            (RefEdge::Index, Value::Array(mut items)) => {
                let i: usize = key.parse().map_err(|_| missing())?;
                if i >= items.len() {
                    return Err(missing());
                }
                items.swap_remove(i)
            }
            _ => return Err(missing()),
        };
    }
    Ok(v)
}

impl WeaveClient {
    /// Saves `value` as a new version of the object `name` (sanitized as the Python client
    /// does) and returns its ref (Python's `client.save(val, name)` / `weave.publish`). The same
    /// content gives the same digest and no new version.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use serde_json::json;
    /// # use weave_core::{SqliteServer, WeaveClient};
    /// # let client = WeaveClient::new("acme", "demo", Arc::new(SqliteServer::in_memory()?), false)?;
    /// let config = json!({"model": "gpt-4o", "temperature": 0.7});
    /// let r = client.save(&config, "agent config")?;
    /// let digest = weave_core::digest::object_digest(&config); // what the Python client computes
    /// assert_eq!(r.to_string(), format!("weave:///acme/demo/object/agent-config:{digest}"));
    /// assert_eq!(client.get(&r)?["temperature"], 0.7);
    /// assert_eq!(client.get("weave:///acme/demo/object/agent-config:latest")?["model"], "gpt-4o");
    /// # Ok::<(), weave_core::WeaveError>(())
    /// ```
    pub fn save<T: Serialize + ?Sized>(&self, value: &T, name: &str) -> Result<ObjectRef> {
        self.save_with_branch(value, name, "latest")
    }

    /// [`WeaveClient::save`] with Python's `branch` parameter. Weave servers keep one line of
    /// versions per object, so the only branch is `"latest"`; any other is an error rather
    /// than silently ignored.
    pub fn save_with_branch<T: Serialize + ?Sized>(
        &self,
        value: &T,
        name: &str,
        branch: &str,
    ) -> Result<ObjectRef> {
        if branch != "latest" {
            return Err(WeaveError::invalid_input(format!(
                "branch {branch:?}: objects have one branch, \"latest\""
            )));
        }
        let name = sanitize_object_name(name)?;
        let val = super::to_json(value);
        let res = self.server().obj_create(ObjCreateReq {
            obj: ObjSchemaForInsert {
                project_id: self.project_id().to_string(),
                object_id: name.clone(),
                val,
                builtin_object_class: None,
                expected_digest: None,
                wb_user_id: None,
            },
        })?;
        Ok(ObjectRef {
            entity: self.entity().to_string(),
            project: self.project().to_string(),
            kind: ObjectKind::Object,
            name: res.object_id.unwrap_or(name),
            digest: res.digest,
            extra: Vec::new(),
        })
    }

    /// Saves rows (each serialising to a JSON object) as a table.
    pub fn save_table<T: Serialize>(&self, rows: impl IntoIterator<Item = T>) -> Result<TableRef> {
        let rows: Vec<Value> = rows.into_iter().map(|r| super::to_json(&r)).collect();
        let res = self.server().table_create(TableCreateReq {
            table: TableSchemaForInsert {
                project_id: self.project_id().to_string(),
                rows,
            },
        })?;
        Ok(TableRef {
            entity: self.entity().to_string(),
            project: self.project().to_string(),
            digest: res.digest,
            row_digests: res.row_digests,
        })
    }

    /// Saves a dataset as the Python `weave.Dataset` does: the rows as a table, referenced
    /// from an object of class `Dataset`.
    pub fn save_dataset<T: Serialize>(
        &self,
        name: &str,
        rows: impl IntoIterator<Item = T>,
    ) -> Result<ObjectRef> {
        let name = sanitize_object_name(name)?;
        let table = self.save_table(rows)?;
        self.save(
            &json!({
                "_type": "Dataset",
                "name": name,
                "description": null,
                "rows": table,
                "_class_name": "Dataset",
                "_bases": ["Object", "BaseModel"],
            }),
            &name,
        )
    }

    /// The source text an op version was saved with (its `obj.py`): the function as written
    /// for a `#[weave::op]`, a stub for an op known only by name. `op_ref` is an op ref, such
    /// as a call's [`Call::op_name`](crate::Call::op_name).
    ///
    /// # Examples
    ///
    /// ```
    /// # let client = weave_core::WeaveClient::new("e", "p", std::sync::Arc::new(weave_core::SqliteServer::in_memory().unwrap()), false).unwrap();
    /// use weave_core::Op;
    /// let op = Op::new("double").code("fn double(x: u32) -> u32 { x * 2 }");
    /// let call = client.create_call(&op, serde_json::json!({"x": 2}))?;
    /// client.finish_call(&call, 4)?;
    /// assert_eq!(client.op_code(call.op_name())?, "fn double(x: u32) -> u32 { x * 2 }");
    /// # Ok::<(), weave_core::WeaveError>(())
    /// ```
    pub fn op_code(&self, op_ref: &str) -> Result<String> {
        match op_ref.parse::<Ref>()? {
            Ref::Object(o) if o.kind == ObjectKind::Op => {}
            _ => {
                return Err(WeaveError::invalid_input(format!(
                    "{op_ref:?} is not an op ref"
                )))
            }
        }
        self.flush();
        let val = self.get(op_ref)?;
        let digest = val
            .pointer("/files/obj.py")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                WeaveError::invalid_input(format!("{op_ref:?} names an op without code"))
            })?;
        let res = self.server().file_content_read(FileContentReadReq {
            project_id: self.project_id().to_string(),
            digest: digest.to_string(),
        })?;
        String::from_utf8(res.content)
            .map_err(|_| WeaveError::invalid_input(format!("the code of {op_ref:?} is not UTF-8")))
    }

    /// Reads what a ref names: an object or op version (by digest, `latest` or `v<N>`), a part
    /// of it (extra path edges, following nested refs and table row ids), a table (its rows
    /// as a list) or a call. A missing or deleted object is [`WeaveError::NotFound`]; a
    /// malformed ref is [`WeaveError::InvalidInput`] naming the problem.
    pub fn get(&self, r: impl std::fmt::Display) -> Result<Value> {
        let uri = &r.to_string();
        match uri.parse::<Ref>()? {
            Ref::Object(mut o) => {
                let project_id = format!("{}/{}", o.entity, o.project);
                // Pin `latest` / `v<N>` to a digest; this also reports a deleted version.
                let obj = self
                    .server()
                    .obj_read(ObjReadReq {
                        project_id,
                        object_id: o.name.clone(),
                        digest: o.digest.clone(),
                        metadata_only: !o.extra.is_empty(),
                    })?
                    .obj;
                if o.extra.is_empty() {
                    return Ok(obj.val);
                }
                o.digest = obj.digest;
                let pinned = Ref::Object(o).to_string();
                let mut vals = self
                    .server()
                    .refs_read_batch(RefsReadBatchReq { refs: vec![pinned] })?
                    .vals;
                match vals.pop() {
                    Some(Value::Null) | None => Err(WeaveError::NotFound {
                        kind: "object",
                        id: uri.to_string(),
                    }),
                    Some(v) => Ok(v),
                }
            }
            Ref::Table {
                entity,
                project,
                digest,
            } => {
                let rows = self.table_rows_of(&format!("{entity}/{project}"), &digest);
                Ok(Value::Array(
                    rows.map(|r| r.map(|r| r.val)).collect::<Result<_>>()?,
                ))
            }
            Ref::Call(c) => {
                if format!("{}/{}", c.entity, c.project) != self.project_id() {
                    return Err(WeaveError::invalid_input(format!(
                        "{uri}: calls of another project are read with its client"
                    )));
                }
                let call = self.get_call(&c.id)?;
                walk(serde_json::to_value(call.to_schema())?, &c.extra, uri)
            }
        }
    }

    /// [`WeaveClient::get`] into any deserialisable type.
    pub fn get_as<T: DeserializeOwned>(&self, r: impl std::fmt::Display) -> Result<T> {
        let uri = r.to_string();
        let v = self.get(&uri)?;
        serde_json::from_value(v).map_err(|e| WeaveError::invalid_input(format!("{uri}: {e}")))
    }

    /// The rows of a table, lazily in pages.
    pub fn table_rows(&self, table: &TableRef) -> TableRowsIter {
        self.table_rows_of(
            &format!("{}/{}", table.entity, table.project),
            &table.digest,
        )
    }

    fn table_rows_of(&self, project_id: &str, digest: &str) -> TableRowsIter {
        TableRowsIter {
            client: self.clone(),
            project_id: project_id.to_string(),
            digest: digest.to_string(),
            page_size: 1000,
            fetched: 0,
            buffer: VecDeque::new(),
            done: false,
        }
    }

    /// The versions of the object `name`, oldest first (deleted ones excluded).
    pub fn object_versions(&self, name: &str) -> Result<Vec<ObjSchema>> {
        Ok(self
            .server()
            .objs_query(ObjQueryReq {
                project_id: self.project_id().to_string(),
                filter: Some(ObjectVersionFilter {
                    object_ids: Some(vec![name.to_string()]),
                    ..Default::default()
                }),
                limit: None,
                offset: None,
                sort_by: None,
                metadata_only: Some(false),
            })?
            .objs)
    }

    /// Deletes versions of the object `name` (all of them when `digests` is empty).
    pub fn delete_object_versions<S: AsRef<str>>(
        &self,
        name: &str,
        digests: impl IntoIterator<Item = S>,
    ) -> Result<u64> {
        let digests: Vec<String> = digests
            .into_iter()
            .map(|d| d.as_ref().to_string())
            .collect();
        Ok(self
            .server()
            .obj_delete(ObjDeleteReq {
                project_id: self.project_id().to_string(),
                object_id: name.to_string(),
                digests: if digests.is_empty() {
                    None
                } else {
                    Some(digests)
                },
            })?
            .num_deleted)
    }
}

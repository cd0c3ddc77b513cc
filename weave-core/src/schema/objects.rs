use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::schema::SortBy;
use crate::time::Timestamp;

/// An object version to create (`ObjSchemaForInsert`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjSchemaForInsert {
    /// `"entity/project"`.
    pub project_id: String,
    /// The object's name: `[\w._-]`, 1 to 128 characters.
    pub object_id: String,
    /// The value.
    pub val: Value,
    /// A builtin object class, if any.
    #[serde(default)]
    pub builtin_object_class: Option<String>,
    /// The digest the client computed; the server refuses the object when it differs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_digest: Option<String>,
    /// Server-set.
    #[serde(default)]
    pub wb_user_id: Option<String>,
}

/// `POST /obj/create`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjCreateReq {
    /// The object.
    pub obj: ObjSchemaForInsert,
}

/// Response of `/obj/create`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjCreateRes {
    /// The version's digest.
    pub digest: String,
    /// The object's name (very old servers omit it).
    #[serde(default)]
    pub object_id: Option<String>,
}

/// An object version as read back (`ObjSchema`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjSchema {
    /// `"entity/project"`.
    pub project_id: String,
    /// The object's name.
    pub object_id: String,
    /// When this version was created.
    pub created_at: Timestamp,
    /// When this version was deleted.
    #[serde(default)]
    pub deleted_at: Option<Timestamp>,
    /// The version's digest.
    pub digest: String,
    /// 0-based version number, in creation order.
    pub version_index: i64,
    /// 1 for the newest version, else 0.
    pub is_latest: i64,
    /// `"op"` or `"object"`.
    pub kind: String,
    /// The base class (from `_bases`).
    #[serde(default)]
    pub base_object_class: Option<String>,
    /// The leaf class (`_class_name`).
    #[serde(default)]
    pub leaf_object_class: Option<String>,
    /// The value (`{}` with `metadata_only`).
    #[serde(default)]
    pub val: Value,
    /// Who created it.
    #[serde(default)]
    pub wb_user_id: Option<String>,
    /// Size of the stored value.
    #[serde(default)]
    pub size_bytes: Option<i64>,
}

/// `POST /obj/read`: `digest` may be a digest, `latest` or `v<N>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjReadReq {
    /// `"entity/project"`.
    pub project_id: String,
    /// The object's name.
    pub object_id: String,
    /// A digest, `latest` or `v<N>`.
    pub digest: String,
    /// Leave `val` out.
    #[serde(default, deserialize_with = "super::null_as_default")]
    pub metadata_only: bool,
}

/// Response of `/obj/read`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjReadRes {
    /// The object version.
    pub obj: ObjSchema,
}

/// The `filter` of `/objs/query`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ObjectVersionFilter {
    /// Only these base classes.
    #[serde(default)]
    pub base_object_classes: Option<Vec<String>>,
    /// Not these base classes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude_base_object_classes: Option<Vec<String>>,
    /// Only these leaf classes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaf_object_classes: Option<Vec<String>>,
    /// Only these names.
    #[serde(default)]
    pub object_ids: Option<Vec<String>>,
    /// Only ops (true) or only non-ops (false).
    #[serde(default)]
    pub is_op: Option<bool>,
    /// Only the latest version of each object.
    #[serde(default)]
    pub latest_only: Option<bool>,
}

/// `POST /objs/query`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjQueryReq {
    /// `"entity/project"`.
    pub project_id: String,
    /// Filter.
    #[serde(default)]
    pub filter: Option<ObjectVersionFilter>,
    /// At most this many.
    #[serde(default)]
    pub limit: Option<u64>,
    /// Skip this many.
    #[serde(default)]
    pub offset: Option<u64>,
    /// Sort keys: `object_id` or `created_at`.
    #[serde(default)]
    pub sort_by: Option<Vec<SortBy>>,
    /// Leave `val` out.
    #[serde(default)]
    pub metadata_only: Option<bool>,
}

/// Response of `/objs/query`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ObjQueryRes {
    /// The versions (deleted ones excluded).
    pub objs: Vec<ObjSchema>,
}

/// `POST /obj/delete`: soft-deletes versions (all when `digests` is `None`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjDeleteReq {
    /// `"entity/project"`.
    pub project_id: String,
    /// The object's name.
    pub object_id: String,
    /// At most 100 digests; `None` deletes every version.
    #[serde(default)]
    pub digests: Option<Vec<String>>,
}

/// Response of `/obj/delete`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ObjDeleteRes {
    /// How many versions were deleted.
    pub num_deleted: u64,
}

/// The body of `/table/create`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableSchemaForInsert {
    /// `"entity/project"`.
    pub project_id: String,
    /// The rows; each must be a JSON object.
    pub rows: Vec<Value>,
}

/// `POST /table/create`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableCreateReq {
    /// The table.
    pub table: TableSchemaForInsert,
}

/// Response of `/table/create`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableCreateRes {
    /// The table digest (64 hex characters).
    pub digest: String,
    /// The row digests, in order.
    pub row_digests: Vec<String>,
}

/// The `filter` of `/table/query`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TableRowFilter {
    /// Only these rows.
    #[serde(default)]
    pub row_digests: Option<Vec<String>>,
}

/// `POST /table/query`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableQueryReq {
    /// `"entity/project"`.
    pub project_id: String,
    /// The table digest.
    pub digest: String,
    /// Filter.
    #[serde(default)]
    pub filter: Option<TableRowFilter>,
    /// At most this many.
    #[serde(default)]
    pub limit: Option<u64>,
    /// Skip this many.
    #[serde(default)]
    pub offset: Option<u64>,
    /// Sort keys: dotted paths into the row.
    #[serde(default)]
    pub sort_by: Option<Vec<SortBy>>,
}

/// One row of `/table/query`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableRowSchema {
    /// The row digest.
    pub digest: String,
    /// The row.
    pub val: Value,
    /// Its position in the table.
    #[serde(default)]
    pub original_index: Option<i64>,
}

/// Response of `/table/query`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TableQueryRes {
    /// The rows (insertion order unless sorted).
    pub rows: Vec<TableRowSchema>,
}

/// `POST /table/query_stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableQueryStatsReq {
    /// `"entity/project"`.
    pub project_id: String,
    /// The table digest.
    pub digest: String,
}

/// Response of `/table/query_stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableQueryStatsRes {
    /// The number of rows.
    pub count: u64,
}

/// `POST /refs/read_batch`: at most 1000 object refs with real digests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefsReadBatchReq {
    /// Ref URIs.
    pub refs: Vec<String>,
}

/// Response of `/refs/read_batch`: aligned with the request; `null` for a deleted object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefsReadBatchRes {
    /// The values.
    pub vals: Vec<Value>,
}

/// `POST /files/create` (multipart on the wire).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileCreateReq {
    /// `"entity/project"`.
    pub project_id: String,
    /// The logical file name (e.g. `obj.py`).
    pub name: String,
    /// The bytes.
    pub content: Vec<u8>,
}

/// Response of `/files/create`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileCreateRes {
    /// The content digest.
    pub digest: String,
}

/// `POST /files/content`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileContentReadReq {
    /// `"entity/project"`.
    pub project_id: String,
    /// The content digest.
    pub digest: String,
}

/// Response of `/files/content` (raw bytes on the wire).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileContentReadRes {
    /// The bytes.
    pub content: Vec<u8>,
}

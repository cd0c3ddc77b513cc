//! Feedback on calls, objects and other refs (`/feedback/*`, PROTOCOL §3.6, §4.9).
//!
//! A feedback row attaches a typed JSON payload to a ref (`weave_ref`): a reaction
//! (`wandb.reaction.1`, one emoji), a note (`wandb.note.1`), an annotation, a scorer result
//! (`wandb.runnable.<name>`), or any custom type a user names.

pub(crate) mod emoji;
pub(crate) mod validate;

use serde::{Deserialize, Serialize};

use crate::error::{Result, WeaveError};
use crate::query::Query;
use crate::schema::{JsonMap, SortBy};
use crate::time::Timestamp;

/// The type of a reaction: the payload is `{"emoji": "<exactly one emoji>"}`.
pub const REACTION_FEEDBACK_TYPE: &str = "wandb.reaction.1";
/// The type of a note: the payload is `{"note": "<1 to 1024 characters>"}`.
pub const NOTE_FEEDBACK_TYPE: &str = "wandb.note.1";
/// The prefix of annotation types (`wandb.annotation.<name>`).
pub const ANNOTATION_FEEDBACK_TYPE_PREFIX: &str = "wandb.annotation";
/// The prefix of scorer (runnable) types (`wandb.runnable.<name>`).
pub const RUNNABLE_FEEDBACK_TYPE_PREFIX: &str = "wandb.runnable";
/// The type of agent-monitor feedback.
pub const AGENT_MONITOR_FEEDBACK_TYPE: &str = "wandb.agent_monitor";
/// The prefix reserved for Weave's own feedback types; user types may not start with it.
pub const RESERVED_FEEDBACK_TYPE_PREFIX: &str = "wandb.";
/// The longest note, in characters.
pub const MAX_FEEDBACK_NOTE_CHARS: usize = 1024;
/// The largest payload: its JSON as Python's `json.dumps` writes it (ASCII-escaped), in bytes.
pub const MAX_FEEDBACK_PAYLOAD_BYTES: usize = 1024 * 1024;

/// One feedback row, as `/feedback/query` returns it (all fields selected).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Feedback {
    /// The feedback id (a UUIDv7).
    pub id: String,
    /// `"entity/project"` (absent from the rows in `summary.weave.feedback`).
    #[serde(default)]
    pub project_id: String,
    /// The ref the feedback is about, e.g. `weave:///entity/project/call/<id>`.
    pub weave_ref: String,
    /// Who created it (set by the server).
    pub wb_user_id: String,
    /// A display name for who created it.
    #[serde(default)]
    pub creator: Option<String>,
    /// When it was created.
    pub created_at: Timestamp,
    /// The type, e.g. [`REACTION_FEEDBACK_TYPE`] or a custom name.
    pub feedback_type: String,
    /// The payload; reactions carry the server's `alias`, `detoned` and `detoned_alias`.
    pub payload: JsonMap,
    /// The annotation spec of `wandb.annotation.*` feedback.
    #[serde(default)]
    pub annotation_ref: Option<String>,
    /// The op or object that produced `wandb.runnable.*` feedback.
    #[serde(default)]
    pub runnable_ref: Option<String>,
    /// The call that produced `wandb.runnable.*` feedback.
    #[serde(default)]
    pub call_ref: Option<String>,
    /// The monitor that triggered the feedback.
    #[serde(default)]
    pub trigger_ref: Option<String>,
}

impl Feedback {
    /// The emoji of a reaction.
    pub fn emoji(&self) -> Option<&str> {
        self.payload_str(REACTION_FEEDBACK_TYPE, "emoji")
    }
    /// The text of a note.
    pub fn note(&self) -> Option<&str> {
        self.payload_str(NOTE_FEEDBACK_TYPE, "note")
    }
    fn payload_str(&self, feedback_type: &str, key: &str) -> Option<&str> {
        if self.feedback_type != feedback_type {
            return None;
        }
        self.payload.get(key).and_then(|v| v.as_str())
    }
}

/// `POST /feedback/create`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedbackCreateReq {
    /// A client-chosen id (a UUIDv7); the server makes one when `None`.
    #[serde(default)]
    pub id: Option<String>,
    /// `"entity/project"`.
    pub project_id: String,
    /// The ref of the call or object the feedback is about.
    pub weave_ref: String,
    /// A display name for who created it.
    #[serde(default)]
    pub creator: Option<String>,
    /// The type (see §4.9).
    pub feedback_type: String,
    /// The payload, a JSON object.
    pub payload: JsonMap,
    /// Required by `wandb.annotation.<name>`: an object ref named `<name>`.
    #[serde(default)]
    pub annotation_ref: Option<String>,
    /// Required by `wandb.runnable.<name>`: an op or object ref named `<name>`.
    #[serde(default)]
    pub runnable_ref: Option<String>,
    /// The producing call of `wandb.runnable.*` feedback (required when the runnable is an op).
    #[serde(default)]
    pub call_ref: Option<String>,
    /// The triggering monitor of `wandb.runnable.*` / agent-monitor feedback.
    #[serde(default)]
    pub trigger_ref: Option<String>,
    /// Server-set.
    #[serde(default)]
    pub wb_user_id: Option<String>,
}

impl FeedbackCreateReq {
    /// A request with no id, creator or extra refs.
    pub fn new(
        project_id: impl Into<String>,
        weave_ref: impl Into<String>,
        feedback_type: impl Into<String>,
        payload: JsonMap,
    ) -> Self {
        FeedbackCreateReq {
            id: None,
            project_id: project_id.into(),
            weave_ref: weave_ref.into(),
            creator: None,
            feedback_type: feedback_type.into(),
            payload,
            annotation_ref: None,
            runnable_ref: None,
            call_ref: None,
            trigger_ref: None,
            wb_user_id: None,
        }
    }
}

/// Response of `/feedback/create`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedbackCreateRes {
    /// The feedback id.
    pub id: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// Who created it.
    pub wb_user_id: String,
    /// The payload as stored (with the server's additions).
    pub payload: JsonMap,
}

/// `POST /feedback/batch/create`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedbackCreateBatchReq {
    /// The feedback to create, in order.
    pub batch: Vec<FeedbackCreateReq>,
}

/// Response of `/feedback/batch/create`: one result per request, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedbackCreateBatchRes {
    /// The created rows.
    pub res: Vec<FeedbackCreateRes>,
}

/// `POST /feedback/query`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedbackQueryReq {
    /// `"entity/project"`.
    pub project_id: String,
    /// Fields to return: columns or `payload.<path>` (`None` or empty = every column).
    #[serde(default)]
    pub fields: Option<Vec<String>>,
    /// Query over feedback fields (`id`, `weave_ref`, `feedback_type`, `payload.<path>`, …).
    #[serde(default)]
    pub query: Option<Query>,
    /// Sort keys.
    #[serde(default)]
    pub sort_by: Option<Vec<SortBy>>,
    /// At most this many.
    #[serde(default)]
    pub limit: Option<u64>,
    /// Skip this many.
    #[serde(default)]
    pub offset: Option<u64>,
}

impl FeedbackQueryReq {
    /// Every feedback row of the project, all fields.
    pub fn new(project_id: impl Into<String>) -> Self {
        FeedbackQueryReq {
            project_id: project_id.into(),
            fields: None,
            query: None,
            sort_by: None,
            limit: None,
            offset: None,
        }
    }
}

/// Response of `/feedback/query`: one object per row, with the selected fields as keys (a
/// `payload.<path>` field is keyed by that path).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FeedbackQueryRes {
    /// The rows.
    pub result: Vec<JsonMap>,
}

/// `POST /feedback/purge`: only by id (`$eq` on `id`, or `$or` of such `$eq`s).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedbackPurgeReq {
    /// `"entity/project"`.
    pub project_id: String,
    /// Which feedback, by id.
    pub query: Query,
}

/// Response of `/feedback/purge` (`{}`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FeedbackPurgeRes {}

/// `POST /feedback/replace`: a create request plus the id of the row it replaces. The old row
/// is purged and a new one created (with a new id unless `id` is set).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedbackReplaceReq {
    /// The new feedback.
    #[serde(flatten)]
    pub create: FeedbackCreateReq,
    /// The id of the row replaced.
    pub feedback_id: String,
}

/// Response of `/feedback/replace`: the new row, as `/feedback/create` returns it.
pub type FeedbackReplaceRes = FeedbackCreateRes;

/// The message of every purge that is not by id.
pub(crate) const PURGE_BY_ID_ONLY: &str =
    "feedback can only be purged by id: $eq on id, or $or of $eq on id";

/// The ids a purge query names, or the error for a query that is not by id.
pub(crate) fn purge_ids(query: &Query) -> Result<Vec<String>> {
    query
        .ids_only(false)
        .filter(|ids| !ids.is_empty())
        .ok_or_else(|| WeaveError::invalid_input(PURGE_BY_ID_ONLY))
}

/// Checks a reaction's emoji; returns the names the server adds.
pub(crate) fn check_reaction(emoji: &str) -> Result<emoji::ReactionNames> {
    emoji::reaction_names(emoji).ok_or_else(|| {
        WeaveError::invalid_input(format!(
            "a reaction must be exactly one emoji, got {emoji:?}"
        ))
    })
}

/// Checks a note's length.
pub(crate) fn check_note(note: &str) -> Result<()> {
    let n = note.chars().count();
    if n == 0 || n > MAX_FEEDBACK_NOTE_CHARS {
        return Err(WeaveError::invalid_input(format!(
            "a note must be 1 to {MAX_FEEDBACK_NOTE_CHARS} characters, got {n}"
        )));
    }
    Ok(())
}

/// Checks the size of a payload, measured as the Weave server does (Python's `json.dumps`).
pub(crate) fn check_payload_size(payload: &JsonMap) -> Result<()> {
    let n = crate::digest::canonical_json(&serde_json::Value::Object(payload.clone())).len();
    if n > MAX_FEEDBACK_PAYLOAD_BYTES {
        return Err(WeaveError::invalid_input(format!(
            "feedback payload too large: {n} bytes of JSON, at most {MAX_FEEDBACK_PAYLOAD_BYTES} (1 MiB)"
        )));
    }
    Ok(())
}

/// Checks the type of user (custom) feedback: not empty and not in the reserved namespace.
pub(crate) fn check_custom_type(feedback_type: &str) -> Result<()> {
    if feedback_type.is_empty() {
        return Err(WeaveError::invalid_input("feedback type must not be empty"));
    }
    if feedback_type.starts_with(RESERVED_FEEDBACK_TYPE_PREFIX) {
        return Err(WeaveError::invalid_input(format!(
            "feedback type {feedback_type:?} is reserved: types starting with \"wandb.\" are Weave's own \
             (use add_reaction or add_note, or a type of your own)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn timestamps_with_a_space_parse() {
        let t: Timestamp = "2026-11-24 12:30:28.744025+00:00".parse().unwrap();
        assert_eq!(t, "2026-11-24T12:30:28.744025Z".parse().unwrap());
    }

    #[test]
    fn create_req_serialises_explicit_nulls() {
        let req = FeedbackCreateReq::new(
            "e/p",
            "weave:///e/p/call/1",
            NOTE_FEEDBACK_TYPE,
            json!({"note": "hi"}).as_object().unwrap().clone(),
        );
        let v = serde_json::to_value(&req).unwrap();
        for k in [
            "id",
            "creator",
            "annotation_ref",
            "runnable_ref",
            "call_ref",
            "trigger_ref",
            "wb_user_id",
        ] {
            assert_eq!(v[k], json!(null), "{k}");
        }
        let back: FeedbackCreateReq = serde_json::from_value(v).unwrap();
        assert_eq!(back, req);
    }

    #[test]
    fn replace_req_is_a_create_req_plus_feedback_id() {
        let v = json!({"project_id": "e/p", "weave_ref": "weave:///e/p/call/1", "feedback_type": "x",
                       "payload": {"a": 1}, "feedback_id": "old"});
        let r: FeedbackReplaceReq = serde_json::from_value(v).unwrap();
        assert_eq!(r.feedback_id, "old");
        assert_eq!(r.create.feedback_type, "x");
        let out = serde_json::to_value(&r).unwrap();
        assert_eq!(out["feedback_id"], "old");
        assert_eq!(out["payload"], json!({"a": 1}));
        assert_eq!(out["id"], json!(null));
    }

    #[test]
    fn payload_size_counts_python_json() {
        // "é" is written as \u00e9 (6 bytes) by json.dumps.
        let n = MAX_FEEDBACK_PAYLOAD_BYTES / 6;
        let ok = json!({"a": "é".repeat(n - 10)});
        assert!(check_payload_size(ok.as_object().unwrap()).is_ok());
        let big = json!({"a": "é".repeat(n + 10)});
        let e = check_payload_size(big.as_object().unwrap()).unwrap_err();
        assert!(e.to_string().contains("too large"), "{e}");
    }

    #[test]
    fn notes_and_types_are_checked() {
        assert!(check_note("").is_err());
        assert!(check_note(&"é".repeat(MAX_FEEDBACK_NOTE_CHARS)).is_ok());
        assert!(check_note(&"x".repeat(MAX_FEEDBACK_NOTE_CHARS + 1)).is_err());
        assert!(check_custom_type("correctness").is_ok());
        assert!(check_custom_type("wandb.reaction.1").is_err());
        assert!(check_custom_type("").is_err());
        assert!(check_reaction("👍").is_ok());
        assert!(check_reaction("👍👍").is_err());
    }

    #[test]
    fn purge_is_by_id_only() {
        use crate::query::field;
        assert_eq!(purge_ids(&Query::by_id("a")).unwrap(), ["a"]);
        let or = Query::new(field("id").eq("a").or(field("id").eq("b")));
        assert_eq!(purge_ids(&or).unwrap(), ["a", "b"]);
        for q in [
            Query::new(field("weave_ref").eq("x")),
            Query::new(field("id").in_(["a"])),
            Query::new(field("id").eq("a").and(field("id").eq("b"))),
            Query::new(field("id").gt("a")),
        ] {
            assert_eq!(
                purge_ids(&q).unwrap_err().to_string(),
                format!("invalid input: {PURGE_BY_ID_ONLY}")
            );
        }
    }
}

//! Calls as a store in this process holds them, for the client's own reads: the JSON
//! columns kept as their text and parsed only when a field is read.

use std::sync::Arc;

use serde_json::Value;

use crate::ids::IdText;
use crate::limits;
use crate::schema::JsonMap;
use crate::time::Timestamp;

/// A stored JSON column's value: the text parsed, or the server's marker for text that is not
/// JSON (as an oversized field written by another tool might be).
pub(crate) fn parse_stored_json(text: &[u8]) -> Value {
    serde_json::from_slice(text).unwrap_or_else(|_| limits::exceeds_limits_marker())
}

/// An object column's value: non-objects (and NULL) read as an empty object.
pub(crate) fn stored_object(text: Option<&[u8]>) -> JsonMap {
    match text.map(parse_stored_json) {
        Some(Value::Object(m)) => m,
        _ => JsonMap::new(),
    }
}

/// A call as the embedded store holds it, for the client's own reads
/// ([`SqliteServer::calls_query_stored`]): the JSON columns (inputs, output, summary) are kept
/// as their text and parsed only when the call's field is read, and texts repeated across
/// rows (project, op name, attributes) are shared. Iterating calls then costs about what
/// reading the rows does; the Python SDK parses every field of every call it fetches.
pub struct StoredCall {
    pub(crate) id: IdText,
    pub(crate) project_id: Arc<str>,
    pub(crate) op_name: Arc<str>,
    pub(crate) display_name: Option<String>,
    pub(crate) trace_id: IdText,
    pub(crate) parent_id: Option<IdText>,
    pub(crate) thread_id: Option<String>,
    pub(crate) turn_id: Option<String>,
    pub(crate) started_at: Timestamp,
    pub(crate) attributes: Arc<JsonMap>,
    /// The inputs, output and summary, as stored.
    pub(crate) json: StoredJson,
    pub(crate) ended_at: Option<Timestamp>,
    pub(crate) exception: Option<String>,
    pub(crate) wb_user_id: Option<String>,
    pub(crate) wb_run_id: Option<String>,
    pub(crate) wb_run_step: Option<i64>,
    pub(crate) wb_run_step_end: Option<i64>,
    pub(crate) deleted_at: Option<Timestamp>,
    pub(crate) storage_size_bytes: Option<i64>,
    pub(crate) total_storage_size_bytes: Option<i64>,
}

/// A stored call's JSON columns (inputs, output, summary) as stored, in one buffer (one
/// allocation per call).
pub(crate) struct StoredJson {
    text: Box<[u8]>,
    /// Where the inputs' text ends, then the output's; the summary's runs to the end.
    ends: [u32; 2],
    /// `PRESENT_*`: which columns are not NULL (and whether the summary was selected).
    present: u8,
}

const PRESENT_INPUTS: u8 = 1;
const PRESENT_OUTPUT: u8 = 2;
const PRESENT_SUMMARY: u8 = 4;
const SUMMARY_SELECTED: u8 = 8;

impl StoredJson {
    /// The columns' texts in one buffer: `summary` is `None` when the summary was not
    /// selected, `Some(None)` when it is NULL. `None` when the texts pass 4 GiB together.
    pub(crate) fn from_parts(
        inputs: Option<&[u8]>,
        output: Option<&[u8]>,
        summary: Option<Option<&[u8]>>,
    ) -> Option<Self> {
        let len = |t: Option<&[u8]>| t.map_or(0, <[u8]>::len);
        let summary_selected = summary.is_some();
        let summary = summary.flatten();
        let mut text = Vec::with_capacity(len(inputs) + len(output) + len(summary));
        let mut present = if summary_selected {
            SUMMARY_SELECTED
        } else {
            0
        };
        for (t, flag) in [
            (inputs, PRESENT_INPUTS),
            (output, PRESENT_OUTPUT),
            (summary, PRESENT_SUMMARY),
        ] {
            if let Some(t) = t {
                text.extend_from_slice(t);
                present |= flag;
            }
        }
        let ends = [len(inputs), len(inputs) + len(output)];
        let ends = ends.map(|e| u32::try_from(e).unwrap_or(u32::MAX));
        if ends[1] == u32::MAX {
            return None;
        }
        Some(StoredJson {
            text: text.into_boxed_slice(),
            ends,
            present,
        })
    }

    fn part(&self, flag: u8, from: u32, to: Option<u32>) -> Option<&[u8]> {
        let to = to.map_or(self.text.len(), |t| t as usize);
        (self.present & flag != 0).then(|| &self.text[from as usize..to])
    }

    /// The inputs' JSON text (`None` for NULL).
    pub(crate) fn inputs(&self) -> Option<&[u8]> {
        self.part(PRESENT_INPUTS, 0, Some(self.ends[0]))
    }

    /// The output's JSON text (`None` for NULL: no output).
    pub(crate) fn output(&self) -> Option<&[u8]> {
        self.part(PRESENT_OUTPUT, self.ends[0], Some(self.ends[1]))
    }

    /// `None` when the summary was not selected; else its JSON text, if any (the derived
    /// `summary.weave` is added when it is read).
    pub(crate) fn summary(&self) -> Option<Option<&[u8]>> {
        (self.present & SUMMARY_SELECTED != 0)
            .then(|| self.part(PRESENT_SUMMARY, self.ends[1], None))
    }
}

impl std::fmt::Debug for StoredCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredCall")
            .field("id", &self.id)
            .field("op_name", &self.op_name)
            .finish_non_exhaustive()
    }
}

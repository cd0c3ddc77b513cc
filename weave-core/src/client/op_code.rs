//! Op versions: an op is saved as an object whose `obj.py` file holds its source text
//! (PROTOCOL §7.4, code capture), so its ref — and every call's `op_name` — changes when the
//! code does.

use std::sync::OnceLock;

use serde_json::{json, Value};

use crate::digest::{file_digest, object_digest};
use crate::schema::{FileCreateReq, ObjCreateReq, ObjSchemaForInsert};

/// The file name the op's code is saved under (the Weave UI shows it as the op's code).
pub(crate) const OP_FILE: &str = "obj.py";

/// The stub saved for an op without captured code (a plain name given to `create_call`, or a
/// `tracing` span), as Python saves a stub for an anonymous op.
const STUB: &str =
    "// weave-rs: code capture unavailable for this op (a plain op name or a tracing span)\n";

/// An op's code and the digests it gives.
#[derive(Debug)]
pub(crate) struct OpCode {
    text: String,
    val: Value,
    digest: String,
}

/// What saving one op version takes: its file, then its object.
#[derive(Debug, Clone)]
pub(crate) struct OpSave {
    pub(crate) file: FileCreateReq,
    pub(crate) obj: ObjCreateReq,
}

impl OpCode {
    pub(crate) fn new(text: String) -> Self {
        let file = file_digest(text.as_bytes());
        let val = json!({
            "_type": "CustomWeaveType",
            "weave_type": {"type": "Op"},
            "files": {OP_FILE: file},
        });
        let digest = object_digest(&val);
        OpCode { text, val, digest }
    }

    /// The stub op code (one, shared).
    pub(crate) fn stub() -> &'static OpCode {
        static STUB_CODE: OnceLock<OpCode> = OnceLock::new();
        STUB_CODE.get_or_init(|| OpCode::new(STUB.to_string()))
    }

    /// The op object's digest (the version in its ref).
    pub(crate) fn digest(&self) -> &str {
        &self.digest
    }

    pub(crate) fn save_requests(&self, project_id: &str, object_id: &str) -> OpSave {
        OpSave {
            file: FileCreateReq {
                project_id: project_id.to_string(),
                name: OP_FILE.to_string(),
                content: self.text.as_bytes().to_vec(),
            },
            obj: ObjCreateReq {
                obj: ObjSchemaForInsert {
                    project_id: project_id.to_string(),
                    object_id: object_id.to_string(),
                    val: self.val.clone(),
                    builtin_object_class: None,
                    expected_digest: Some(self.digest.clone()),
                    wb_user_id: None,
                },
            },
        }
    }
}

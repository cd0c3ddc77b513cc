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
/// `tracing` span): byte for byte the file the Python SDK saves for an anonymous op, so the
/// same name is the same op version whichever SDK recorded it.
const STUB: &str = "import weave\n\n@weave.op\ndef op_fn(*args, **kwargs):  # type: ignore\n    # Code-capture unavailable for this op\n    pass\n";

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stub_op_has_the_python_sdks_digests() {
        // Computed by the weave package: weave.shared.digest.bytes_digest of the file that
        // `_build_anonymous_op` saves, and compute_object_digest of the op's value.
        let stub = OpCode::stub();
        assert_eq!(
            stub.val["files"]["obj.py"],
            "ETrc8kd4cPrqSoL568qx5Zfgg5JK00kstefm3C74dHE"
        );
        assert_eq!(stub.digest(), "6jAV4T6F42RKlabeB2RO0BXkbFFPrKyU2yyQedpotB8");
    }
}

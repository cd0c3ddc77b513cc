//! The wire types of the Weave trace server protocol (`PROTOCOL.md` §2–§6).
//!
//! Every type here serialises to exactly the JSON the protocol specifies: field names as on the
//! wire, optional fields as explicit `null`, timestamps as RFC 3339 UTC strings. Deserialising
//! is lenient the way the server's inner schemas are: unknown keys are ignored and missing
//! optional fields default. Requests and responses are named after the protocol's pydantic
//! models (`CallStartReq`, `CallsQueryReq`, …) so that the trait [`crate::TraceServer`] reads
//! like the protocol.

mod calls;
mod costs;
mod feedback;
mod objects;
pub mod summary;

pub use calls::*;
pub use costs::*;
pub(crate) use feedback::validate::validate as validate_feedback;
pub use feedback::*;
pub use objects::*;

/// A JSON object, the type of `inputs`, `attributes` and `summary`.
pub type JsonMap = serde_json::Map<String, serde_json::Value>;

/// `null` reads as the default, as a missing field does: the Python client sends unset
/// optional fields as explicit `null` (pydantic's `Optional[bool] = False`).
pub(crate) fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + serde::Deserialize<'de>,
{
    use serde::Deserialize;
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

pub(crate) use crate::error::json_kind;

/// Checks that a project id is `"entity/project"`.
pub(crate) fn check_project_id(project_id: &str) -> crate::error::Result<()> {
    match project_id.split_once('/') {
        Some((e, p)) if !e.is_empty() && !p.is_empty() && !p.contains('/') => Ok(()),
        _ => Err(crate::error::WeaveError::invalid_input(format!(
            "project_id {project_id:?} must be \"entity/project\""
        ))),
    }
}

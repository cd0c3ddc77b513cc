//! What the layer reads from a callsite's [`Metadata`]: whether it is one of weave's own
//! crates, the `attributes.tracing` of a call, and whether an event is the `return` / `error`
//! event of `#[instrument(ret)]` / `#[instrument(err)]`.

use serde_json::{json, Map, Value};
use tracing::Metadata;

/// Whether a target is one of weave's own crates.
pub(crate) fn is_own_target(target: &str) -> bool {
    ["weave_core", "weave_tracing", "weave_macros", "weave"]
        .iter()
        .any(|own| {
            target
                .strip_prefix(own)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
        })
}

/// The `attributes.tracing` of a span's call: its target, level, file and line.
pub(crate) fn tracing_attributes(meta: &Metadata<'_>) -> Value {
    let mut m = Map::new();
    m.insert("target".into(), json!(meta.target()));
    m.insert("level".into(), json!(meta.level().as_str()));
    if let Some(f) = meta.file() {
        m.insert("file".into(), json!(f));
    }
    if let Some(l) = meta.line() {
        m.insert("line".into(), json!(l));
    }
    Value::Object(m)
}

/// An event `#[instrument]` emits for the span's function.
pub(crate) enum InstrumentEvent {
    /// The `return` event of `#[instrument(ret)]`: the output.
    Return,
    /// The `error` event of `#[instrument(err)]`: the exception.
    Error,
}

/// Which `#[instrument]` event a callsite with one field named `return` or `error` is.
pub(crate) fn instrument_event_kind(meta: &Metadata<'_>) -> Option<InstrumentEvent> {
    let mut fields = meta.fields().iter();
    let f = fields.next()?;
    if fields.next().is_some() {
        return None;
    }
    match f.name() {
        "return" => Some(InstrumentEvent::Return),
        "error" => Some(InstrumentEvent::Error),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_targets_are_recognised_exactly() {
        assert!(is_own_target("weave_core::client::writer"));
        assert!(is_own_target("weave"));
        assert!(is_own_target("weave::x"));
        assert!(!is_own_target("weaver"));
        assert!(!is_own_target("weave_app::main"));
    }
}

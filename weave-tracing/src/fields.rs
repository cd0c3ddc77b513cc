//! Field visitors: `tracing` field values → JSON.
//!
//! - [`SpanValues`]: a span's fields, handed to its callsite's [`FieldSink`] (which splits
//!   inputs from GenAI fields by [`weave_core::genai::field_role`]);
//! - [`EventFields`]: an event's message and fields, for `summary.events`;
//! - [`SingleValue`]: the one field of an `#[instrument(ret/err)]` event.
//!
//! Numbers, booleans and strings stay as they are; `Debug`/`Display` text that is valid JSON
//! is kept as that JSON (see [`debug_value`]).

use std::fmt;

use serde_json::{json, Value};
use tracing::field::{Field, Visit};
use weave_core::rt::{FieldSink, FieldValue};
use weave_core::JsonMap;

/// Whether a `Debug` text may be JSON (worth parsing).
fn may_be_json(text: &str) -> bool {
    let t = text.trim_start();
    t.starts_with(['"', '[', '{', '-'])
        || t.starts_with(|c: char| c.is_ascii_digit())
        || t == "true"
        || t == "false"
        || t == "null"
}

/// A `Debug` text that is valid JSON is kept as that JSON (numbers, strings, lists of them);
/// anything else stays text.
fn debug_value(text: String) -> Value {
    if may_be_json(&text) {
        if let Ok(v) = serde_json::from_str::<Value>(&text) {
            return v;
        }
    }
    Value::String(text)
}

/// A span's fields handed to a [`FieldSink`] of its callsite: when it is made, written into
/// its call's inputs ([`weave_core::rt::SpanInputs`]: by the callsite's keys, with no map in
/// between); when recorded later, gathered for the call ([`weave_core::rt::SpanRecord`]).
pub(crate) struct SpanValues<'a, T>(pub(crate) &'a mut T);

impl<T: FieldSink> Visit for SpanValues<'_, T> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        let v = serde_json::Number::from_f64(value)
            .map(Value::Number)
            .unwrap_or(Value::Null);
        self.0.put(field, FieldValue::Json(v));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.put(field, FieldValue::I64(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.put(field, FieldValue::U64(value));
    }
    fn record_i128(&mut self, field: &Field, value: i128) {
        match i64::try_from(value) {
            Ok(v) => self.0.put(field, FieldValue::I64(v)),
            Err(_) => self.0.put(field, FieldValue::Str(&value.to_string())),
        }
    }
    fn record_u128(&mut self, field: &Field, value: u128) {
        match u64::try_from(value) {
            Ok(v) => self.0.put(field, FieldValue::U64(v)),
            Err(_) => self.0.put(field, FieldValue::Str(&value.to_string())),
        }
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.put(field, FieldValue::Bool(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.put(field, FieldValue::Str(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.put(field, FieldValue::Str(&value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        if may_be_json(&text) {
            if let Ok(v) = serde_json::from_str::<Value>(&text) {
                return self.0.put(field, FieldValue::Json(v));
            }
        }
        self.0.put(field, FieldValue::Str(&text));
    }
}

macro_rules! visit_all {
    ($put:ident) => {
        fn record_f64(&mut self, field: &Field, value: f64) {
            let v = serde_json::Number::from_f64(value)
                .map(Value::Number)
                .unwrap_or(Value::Null);
            self.$put(field, v);
        }
        fn record_i64(&mut self, field: &Field, value: i64) {
            self.$put(field, json!(value));
        }
        fn record_u64(&mut self, field: &Field, value: u64) {
            self.$put(field, json!(value));
        }
        fn record_i128(&mut self, field: &Field, value: i128) {
            self.$put(
                field,
                i64::try_from(value)
                    .map(|v| json!(v))
                    .unwrap_or_else(|_| json!(value.to_string())),
            );
        }
        fn record_u128(&mut self, field: &Field, value: u128) {
            self.$put(
                field,
                u64::try_from(value)
                    .map(|v| json!(v))
                    .unwrap_or_else(|_| json!(value.to_string())),
            );
        }
        fn record_bool(&mut self, field: &Field, value: bool) {
            self.$put(field, json!(value));
        }
        fn record_str(&mut self, field: &Field, value: &str) {
            self.$put(field, json!(value));
        }
        fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
            self.$put(field, json!(value.to_string()));
        }
    };
}

/// An event's message (as text) and its other fields.
#[derive(Default)]
pub(crate) struct EventFields {
    pub(crate) message: Option<String>,
    pub(crate) fields: JsonMap,
}

impl EventFields {
    fn put(&mut self, field: &Field, v: Value) {
        if field.name() == "message" {
            self.message = Some(match v {
                Value::String(s) => s,
                other => other.to_string(),
            });
        } else {
            self.fields.insert(field.name().to_string(), v);
        }
    }
}

impl Visit for EventFields {
    visit_all!(put);
    // A message is text as written, even when it looks like JSON.
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.message = Some(format!("{value:?}"));
        } else {
            self.fields
                .insert(field.name().to_string(), debug_value(format!("{value:?}")));
        }
    }
}

/// The value of an event's only field.
pub(crate) struct SingleValue(pub(crate) Option<Value>);

impl SingleValue {
    fn put(&mut self, _field: &Field, v: Value) {
        self.0 = Some(v);
    }
}

impl Visit for SingleValue {
    visit_all!(put);
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, debug_value(format!("{value:?}")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_text_that_is_json_stays_json() {
        assert_eq!(debug_value("4".into()), json!(4));
        assert_eq!(debug_value("\"hi\"".into()), json!("hi"));
        assert_eq!(debug_value("[1, 2]".into()), json!([1, 2]));
        assert_eq!(debug_value("Foo { a: 1 }".into()), json!("Foo { a: 1 }"));
        assert_eq!(debug_value("Some(3)".into()), json!("Some(3)"));
    }
}

//! Redaction: the input keys whose values are never recorded (`api_key`, …), replaced
//! before a call's inputs leave the caller's thread, as the Python SDK does. A leaf: the
//! client redacts what it is given, the op runtime checks argument names against it when
//! the program is compiled, and the call record redacts inputs read back.

use serde_json::Value;

use crate::schema::JsonMap;

/// Input keys whose values are replaced by [`REDACTED_VALUE`] before anything is recorded, as
/// the Python SDK does.
pub const REDACT_KEYS: &[&str] = &["api_key", "auth_headers", "authorization"];
/// What a redacted value is replaced with.
pub const REDACTED_VALUE: &str = "REDACTED";

/// `inputs` with [`REDACT_KEYS`] redacted at any depth.
pub(crate) fn redact_inputs(mut inputs: JsonMap) -> JsonMap {
    redact_inputs_in_place(&mut inputs);
    inputs
}

/// Redacts [`REDACT_KEYS`] (any case) at any depth, without recursion or allocation for
/// inputs that have no nested values.
pub(crate) fn redact_inputs_in_place(inputs: &mut JsonMap) {
    let mut stack: Vec<&mut Value> = Vec::new();
    redact_level(inputs, &mut stack);
    redact_stack(stack);
}

/// Whether `key` is one of [`REDACT_KEYS`], ignoring ASCII case. A `const fn`: an op's
/// argument names are checked when the program is compiled ([`crate::rt::ArgKey`]).
pub(crate) const fn is_redacted_key(key: &str) -> bool {
    let key = key.as_bytes();
    let mut k = 0;
    while k < REDACT_KEYS.len() {
        let r = REDACT_KEYS[k].as_bytes();
        if r.len() == key.len() {
            let mut i = 0;
            while i < r.len() && r[i].eq_ignore_ascii_case(&key[i]) {
                i += 1;
            }
            if i == r.len() {
                return true;
            }
        }
        k += 1;
    }
    false
}

fn redact_level<'a>(m: &'a mut JsonMap, stack: &mut Vec<&'a mut Value>) {
    for (k, v) in m.iter_mut() {
        if is_redacted_key(k) {
            *v = Value::from(REDACTED_VALUE);
        } else if matches!(v, Value::Object(_) | Value::Array(_)) {
            stack.push(v);
        }
    }
}

/// Works through nested values without recursion.
fn redact_stack(mut stack: Vec<&mut Value>) {
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(m) => redact_level(m, &mut stack),
            Value::Array(items) => stack.extend(
                items
                    .iter_mut()
                    .filter(|v| matches!(v, Value::Object(_) | Value::Array(_))),
            ),
            _ => {}
        }
    }
}

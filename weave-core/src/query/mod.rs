//! The Weave query language (PROTOCOL §5): `{"$expr": Operation}`.
//!
//! A [`Query`] is a typed tree that reads from and writes to the protocol's JSON exactly.
//! Parsing is strict and every error names the offending part by its JSON path, e.g.
//! `$expr.$and[1].$eq: expected 2 operands, got 3`. The [`builder`] makes queries pleasant to
//! write in Rust:
//!
//! ```
//! use weave_core::query::{field, Query};
//! let q = Query::new(field("inputs.model").eq("gpt-4o").and(field("summary.weave.latency_ms").gt(100)));
//! assert_eq!(
//!     serde_json::to_value(&q).unwrap(),
//!     serde_json::json!({"$expr": {"$and": [
//!         {"$eq": [{"$getField": "inputs.model"}, {"$literal": "gpt-4o"}]},
//!         {"$gt": [{"$getField": "summary.weave.latency_ms"}, {"$literal": 100}]}
//!     ]}})
//! );
//! ```

pub mod builder;

pub use builder::{field, lit, Expr, IntoOperand};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{json, Value};

use crate::error::WeaveError;

/// A query: `{"$expr": Operation}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// The root operation.
    pub expr: Operation,
}

/// A boolean operation.
#[derive(Debug, Clone, PartialEq)]
pub enum Operation {
    /// `{"$and": [..]}`: all operands hold (non-empty).
    And(Vec<Operand>),
    /// `{"$or": [..]}`: any operand holds (non-empty).
    Or(Vec<Operand>),
    /// `{"$not": [x]}`: the operand does not hold.
    Not(Box<Operand>),
    /// `{"$eq": [a, b]}`; against `{"$literal": null}` it means IS NULL.
    Eq(Operand, Operand),
    /// `{"$gt": [a, b]}`.
    Gt(Operand, Operand),
    /// `{"$gte": [a, b]}`.
    Gte(Operand, Operand),
    /// `{"$lt": [a, b]}`.
    Lt(Operand, Operand),
    /// `{"$lte": [a, b]}`.
    Lte(Operand, Operand),
    /// `{"$in": [a, [b, c, ..]]}`.
    In(Operand, Vec<Operand>),
    /// `{"$contains": {"input", "substr", "case_insensitive"}}`: substring match.
    Contains {
        /// The string searched.
        input: Operand,
        /// The substring looked for.
        substr: Operand,
        /// Ignore case.
        case_insensitive: bool,
    },
}

/// A value in an operation.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// `{"$literal": v}`.
    Literal(Value),
    /// `{"$getField": "dotted.path"}`.
    GetField(String),
    /// `{"$convert": {"input": x, "to": type}}`.
    Convert(Box<Operand>, ConvertTo),
    /// A nested operation.
    Operation(Box<Operation>),
}

/// The target type of `$convert`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConvertTo {
    /// `"double"`.
    Double,
    /// `"string"`.
    String,
    /// `"int"`.
    Int,
    /// `"bool"`.
    Bool,
    /// `"exists"`: whether the value is present.
    Exists,
}

impl ConvertTo {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ConvertTo::Double => "double",
            ConvertTo::String => "string",
            ConvertTo::Int => "int",
            ConvertTo::Bool => "bool",
            ConvertTo::Exists => "exists",
        }
    }
}

impl Query {
    /// A query of `expr`, which must be an operation (a comparison, `$and`, …).
    pub fn new(expr: impl Into<Expr>) -> Self {
        let expr: Expr = expr.into();
        match expr.0 {
            Operand::Operation(op) => Query { expr: *op },
            // A bare field or literal is a truthiness test: compare it to true.
            other => Query {
                expr: Operation::Eq(other, Operand::Literal(Value::Bool(true))),
            },
        }
    }

    /// Parses the protocol's JSON form, naming the offending part on error.
    pub fn from_json(v: &Value) -> Result<Self, WeaveError> {
        let obj = v
            .as_object()
            .ok_or_else(|| qerr("$", "a query must be an object {\"$expr\": ...}"))?;
        if obj.len() != 1 || !obj.contains_key("$expr") {
            let keys: Vec<&String> = obj.keys().collect();
            return Err(qerr(
                "$",
                format!("a query must have exactly the key \"$expr\", got {keys:?}"),
            ));
        }
        let expr = parse_operation(&obj["$expr"], "$expr")?;
        Ok(Query { expr })
    }

    /// The protocol's JSON form.
    pub fn to_json(&self) -> Value {
        json!({"$expr": self.expr.to_json()})
    }
}

fn qerr(path: &str, msg: impl std::fmt::Display) -> WeaveError {
    WeaveError::invalid_query(format!("{path}: {msg}"))
}

fn single_key<'a>(
    v: &'a Value,
    path: &str,
    what: &str,
) -> Result<(&'a String, &'a Value), WeaveError> {
    let obj = v.as_object().ok_or_else(|| {
        qerr(
            path,
            format!(
                "expected {what} (an object with one $-key), got {}",
                crate::error::json_kind(v)
            ),
        )
    })?;
    let mut it = obj.iter();
    match (it.next(), it.next()) {
        (Some(kv), None) => Ok(kv),
        _ => {
            let keys: Vec<&String> = obj.keys().collect();
            Err(qerr(
                path,
                format!("expected {what} with exactly one $-key, got keys {keys:?}"),
            ))
        }
    }
}

fn operands(v: &Value, path: &str, op: &str) -> Result<Vec<Operand>, WeaveError> {
    let items = v.as_array().ok_or_else(|| {
        qerr(
            path,
            format!(
                "{op} takes an array of operands, got {}",
                crate::error::json_kind(v)
            ),
        )
    })?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| parse_operand(item, &format!("{path}[{i}]")))
        .collect()
}

fn exactly<const N: usize>(v: &Value, path: &str, op: &str) -> Result<[Operand; N], WeaveError> {
    let ops = operands(v, path, op)?;
    let n = ops.len();
    ops.try_into().map_err(|_| {
        qerr(
            path,
            format!(
                "{op} takes exactly {N} operand{}, got {n}",
                if N == 1 { "" } else { "s" }
            ),
        )
    })
}

fn parse_operation(v: &Value, path: &str) -> Result<Operation, WeaveError> {
    let (key, arg) = single_key(v, path, "an operation")?;
    let p = format!("{path}.{key}");
    Ok(match key.as_str() {
        "$and" | "$or" => {
            let ops = operands(arg, &p, key)?;
            if ops.is_empty() {
                return Err(qerr(&p, format!("{key} needs at least one operand")));
            }
            if key == "$and" {
                Operation::And(ops)
            } else {
                Operation::Or(ops)
            }
        }
        "$not" => {
            let [x] = exactly::<1>(arg, &p, "$not")?;
            Operation::Not(Box::new(x))
        }
        "$eq" | "$gt" | "$gte" | "$lt" | "$lte" => {
            let [a, b] = exactly::<2>(arg, &p, key)?;
            match key.as_str() {
                "$eq" => Operation::Eq(a, b),
                "$gt" => Operation::Gt(a, b),
                "$gte" => Operation::Gte(a, b),
                "$lt" => Operation::Lt(a, b),
                _ => Operation::Lte(a, b),
            }
        }
        "$in" => {
            let items = arg
                .as_array()
                .ok_or_else(|| qerr(&p, format!("$in takes [operand, [operands...]], got {}", crate::error::json_kind(arg))))?;
            if items.len() != 2 {
                return Err(qerr(&p, format!("$in takes exactly 2 elements [operand, [operands...]], got {}", items.len())));
            }
            let a = parse_operand(&items[0], &format!("{p}[0]"))?;
            let list = operands(&items[1], &format!("{p}[1]"), "the second element of $in")?;
            Operation::In(a, list)
        }
        "$contains" => {
            let obj = arg
                .as_object()
                .ok_or_else(|| qerr(&p, format!("$contains takes {{input, substr, case_insensitive?}}, got {}", crate::error::json_kind(arg))))?;
            for k in obj.keys() {
                if !matches!(k.as_str(), "input" | "substr" | "case_insensitive") {
                    return Err(qerr(&p, format!("unknown key {k:?} (expected input, substr, case_insensitive)")));
                }
            }
            let input = obj.get("input").ok_or_else(|| qerr(&p, "missing \"input\""))?;
            let substr = obj.get("substr").ok_or_else(|| qerr(&p, "missing \"substr\""))?;
            let case_insensitive = match obj.get("case_insensitive") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(other) => return Err(qerr(&format!("{p}.case_insensitive"), format!("expected a bool, got {}", crate::error::json_kind(other)))),
            };
            Operation::Contains {
                input: parse_operand(input, &format!("{p}.input"))?,
                substr: parse_operand(substr, &format!("{p}.substr"))?,
                case_insensitive,
            }
        }
        "$containsToken" => return Err(qerr(&p, "$containsToken is not supported by this server (newest Weave servers only)")),
        other => {
            return Err(qerr(
                &p,
                format!("unknown operator {other:?} (expected one of $and $or $not $eq $gt $gte $lt $lte $in $contains)"),
            ))
        }
    })
}

fn parse_operand(v: &Value, path: &str) -> Result<Operand, WeaveError> {
    let (key, arg) = single_key(v, path, "an operand")?;
    let p = format!("{path}.{key}");
    Ok(match key.as_str() {
        "$literal" => Operand::Literal(unwrap_literal(arg)),
        "$getField" => {
            let f = arg.as_str().ok_or_else(|| {
                qerr(
                    &p,
                    format!(
                        "expected a field name string, got {}",
                        crate::error::json_kind(arg)
                    ),
                )
            })?;
            if f.is_empty() {
                return Err(qerr(&p, "the field name is empty"));
            }
            Operand::GetField(f.to_string())
        }
        "$convert" => {
            let obj = arg.as_object().ok_or_else(|| {
                qerr(
                    &p,
                    format!(
                        "$convert takes {{input, to}}, got {}",
                        crate::error::json_kind(arg)
                    ),
                )
            })?;
            for k in obj.keys() {
                if !matches!(k.as_str(), "input" | "to") {
                    return Err(qerr(&p, format!("unknown key {k:?} (expected input, to)")));
                }
            }
            let input = obj
                .get("input")
                .ok_or_else(|| qerr(&p, "missing \"input\""))?;
            let to = match obj.get("to").and_then(Value::as_str) {
                Some("double") => ConvertTo::Double,
                Some("string") => ConvertTo::String,
                Some("int") => ConvertTo::Int,
                Some("bool") => ConvertTo::Bool,
                Some("exists") => ConvertTo::Exists,
                Some(other) => {
                    return Err(qerr(
                        &format!("{p}.to"),
                        format!(
                            "unknown type {other:?} (expected double, string, int, bool or exists)"
                        ),
                    ))
                }
                None => return Err(qerr(&p, "missing \"to\" (a type name string)")),
            };
            Operand::Convert(Box::new(parse_operand(input, &format!("{p}.input"))?), to)
        }
        _ => Operand::Operation(Box::new(parse_operation(v, path)?)),
    })
}

/// `{"$literal": v}` with every nested value wrapped too (`{"$literal": [{"$literal": 1}]}`):
/// the server's `LiteralOperation` types a list or object literal as a list or map of
/// literals, and refuses bare nested values (HTTP 422).
fn wrap_literal(v: &Value) -> Value {
    let inner = match v {
        Value::Array(items) => Value::Array(items.iter().map(wrap_literal).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), wrap_literal(v)))
                .collect(),
        ),
        scalar => scalar.clone(),
    };
    json!({ "$literal": inner })
}

/// Nested values of a literal may themselves be `{"$literal": x}` wrappers; unwrap them.
fn unwrap_literal(v: &Value) -> Value {
    match v {
        Value::Object(m) if m.len() == 1 && m.contains_key("$literal") => {
            unwrap_literal(&m["$literal"])
        }
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), unwrap_literal(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(unwrap_literal).collect()),
        other => other.clone(),
    }
}

impl Operation {
    /// The protocol's JSON form.
    pub fn to_json(&self) -> Value {
        let pair = |k: &str, a: &Operand, b: &Operand| json!({ k: [a.to_json(), b.to_json()] });
        match self {
            Operation::And(ops) => {
                json!({"$and": ops.iter().map(Operand::to_json).collect::<Vec<_>>()})
            }
            Operation::Or(ops) => {
                json!({"$or": ops.iter().map(Operand::to_json).collect::<Vec<_>>()})
            }
            Operation::Not(x) => json!({"$not": [x.to_json()]}),
            Operation::Eq(a, b) => pair("$eq", a, b),
            Operation::Gt(a, b) => pair("$gt", a, b),
            Operation::Gte(a, b) => pair("$gte", a, b),
            Operation::Lt(a, b) => pair("$lt", a, b),
            Operation::Lte(a, b) => pair("$lte", a, b),
            Operation::In(a, list) => {
                json!({"$in": [a.to_json(), list.iter().map(Operand::to_json).collect::<Vec<_>>()]})
            }
            Operation::Contains {
                input,
                substr,
                case_insensitive,
            } => json!({"$contains": {
                "input": input.to_json(), "substr": substr.to_json(), "case_insensitive": case_insensitive
            }}),
        }
    }
}

impl Operand {
    /// The protocol's JSON form.
    pub fn to_json(&self) -> Value {
        match self {
            Operand::Literal(v) => wrap_literal(v),
            Operand::GetField(f) => json!({"$getField": f}),
            Operand::Convert(x, to) => {
                json!({"$convert": {"input": x.to_json(), "to": to.as_str()}})
            }
            Operand::Operation(op) => op.to_json(),
        }
    }
}

impl Serialize for Query {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Query {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Query::from_json(&v).map_err(serde::de::Error::custom)
    }
}

impl Query {
    /// The query `id == id`.
    pub fn by_id(id: impl Into<String>) -> Query {
        Query::new(field("id").eq(id.into()))
    }

    /// The ids of a query that selects rows by id only — `$eq` on `id`, `$in` on `id`
    /// (when `allow_in`), or `$or` of such `$eq`s — as purge routes require; else `None`.
    pub fn ids_only(&self, allow_in: bool) -> Option<Vec<String>> {
        fn id_of(a: &Operand, b: &Operand) -> Option<String> {
            match (a, b) {
                (Operand::GetField(f), Operand::Literal(Value::String(id)))
                | (Operand::Literal(Value::String(id)), Operand::GetField(f))
                    if f == "id" =>
                {
                    Some(id.clone())
                }
                _ => None,
            }
        }
        match &self.expr {
            Operation::Eq(a, b) => id_of(a, b).map(|id| vec![id]),
            Operation::In(Operand::GetField(f), items) if allow_in && f == "id" => items
                .iter()
                .map(|i| match i {
                    Operand::Literal(Value::String(id)) => Some(id.clone()),
                    _ => None,
                })
                .collect(),
            Operation::Or(ops) => ops
                .iter()
                .map(|o| match o {
                    Operand::Operation(op) => match op.as_ref() {
                        Operation::Eq(a, b) => id_of(a, b),
                        _ => None,
                    },
                    _ => None,
                })
                .collect(),
            _ => None,
        }
    }
}

impl std::str::FromStr for Query {
    type Err = WeaveError;
    /// Parses a query from its JSON text.
    fn from_str(s: &str) -> Result<Self, WeaveError> {
        let v: Value = serde_json::from_str(s)
            .map_err(|e| WeaveError::invalid_query(format!("not valid JSON: {e}")))?;
        Query::from_json(&v)
    }
}

impl From<Expr> for Query {
    fn from(expr: Expr) -> Self {
        Query::new(expr)
    }
}

impl From<Operation> for Query {
    fn from(expr: Operation) -> Self {
        Query { expr }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(v: Value) -> String {
        Query::from_json(&v).unwrap_err().to_string()
    }

    #[test]
    fn round_trips_every_operator() {
        let v = json!({"$expr": {"$and": [
            {"$or": [{"$eq": [{"$getField": "op_name"}, {"$literal": "x"}]}, {"$not": [{"$gt": [{"$getField": "a"}, {"$literal": 1}]}]}]},
            {"$gte": [{"$convert": {"input": {"$getField": "inputs.n"}, "to": "double"}}, {"$literal": 1.5}]},
            {"$lt": [{"$getField": "a"}, {"$literal": 2}]},
            {"$lte": [{"$getField": "a"}, {"$literal": 3}]},
            {"$in": [{"$getField": "id"}, [{"$literal": "a"}, {"$literal": "b"}]]},
            {"$contains": {"input": {"$getField": "inputs.q"}, "substr": {"$literal": "Hi"}, "case_insensitive": true}}
        ]}});
        let q = Query::from_json(&v).unwrap();
        assert_eq!(q.to_json(), v);
        let q2: Query = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(q, q2);
    }

    #[test]
    fn errors_name_the_offending_part() {
        assert!(
            err(json!({"$expr": {"$foo": []}})).contains("$expr.$foo: unknown operator \"$foo\"")
        );
        assert!(
            err(json!({"$expr": {"$and": [{"$eq": [{"$literal": 1}]}]}}))
                .contains("$expr.$and[0].$eq: $eq takes exactly 2 operands, got 1")
        );
        assert!(
            err(json!({"$expr": {"$not": [{"$literal": 1}, {"$literal": 2}]}}))
                .contains("$not takes exactly 1 operand, got 2")
        );
        assert!(err(json!({"$expr": {"$and": []}})).contains("needs at least one operand"));
        assert!(
            err(json!({"$expr": {"$eq": [{"$getField": 3}, {"$literal": 1}]}}))
                .contains("$expr.$eq[0].$getField: expected a field name string")
        );
        assert!(err(json!({"$expr": {"$eq": [{"$convert": {"input": {"$literal": 1}, "to": "float"}}, {"$literal": 1}]}})).contains("unknown type \"float\""));
        assert!(
            err(json!({"$expr": {"$in": [{"$getField": "id"}, {"$literal": 1}]}}))
                .contains("$expr.$in[1]")
        );
        assert!(err(json!({"$query": {}})).contains("$expr"));
        assert!(
            err(json!({"$expr": {"$eq": [{"a": 1, "b": 2}, {"$literal": 1}]}}))
                .contains("exactly one $-key")
        );
    }

    #[test]
    fn nested_literals_unwrap() {
        let q = Query::from_json(&json!({"$expr": {"$eq": [{"$getField": "inputs.l"}, {"$literal": [{"$literal": 1}, 2]}]}})).unwrap();
        assert_eq!(
            q.expr,
            Operation::Eq(
                Operand::GetField("inputs.l".into()),
                Operand::Literal(json!([1, 2]))
            )
        );
    }

    #[test]
    fn nested_literals_are_sent_wrapped_as_the_server_types_them() {
        let lit = Operand::Literal(json!([1, {"a": [true]}, null]));
        let wire = json!({"$literal": [
            {"$literal": 1},
            {"$literal": {"a": {"$literal": [{"$literal": true}]}}},
            {"$literal": null}
        ]});
        assert_eq!(lit.to_json(), wire);
        let q = Query::new(Operation::Eq(Operand::GetField("inputs.l".into()), lit));
        assert_eq!(Query::from_json(&q.to_json()).unwrap(), q);
    }
}

//! OTLP/JSON: an `ExportTraceServiceRequest` read from JSON into the protobuf types.
//!
//! The OTLP/JSON encoding is protobuf's JSON mapping with two changes: trace and span ids
//! are hex strings (not base64), and enums are integers. This reader follows the spec and
//! takes what protobuf's JSON mapping also allows, as the Python reference does: 64-bit
//! integers as numbers or strings, enums by name, `snake_case` field names, `null` as an
//! absent field, and ids in base64 when they are not hex. Unknown fields are ignored. A value
//! of the wrong type is an error naming its path (`resourceSpans[0].scopeSpans[0].spans[3]
//! .startTimeUnixNano`).

use base64::Engine;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    any_value, AnyValue, ArrayValue, KeyValue, KeyValueList,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span, ResourceSpans, ScopeSpans, Span, Status};
use serde_json::{Map, Value};

/// A JSON value that is not what OTLP/JSON puts there, and where.
#[derive(Debug)]
pub struct Bad {
    path: Vec<String>,
    msg: String,
}

impl Bad {
    fn new(msg: impl Into<String>) -> Self {
        Bad {
            path: Vec::new(),
            msg: msg.into(),
        }
    }

    fn at(mut self, segment: impl Into<String>) -> Self {
        self.path.push(segment.into());
        self
    }
}

impl std::fmt::Display for Bad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut path = String::new();
        for seg in self.path.iter().rev() {
            if !path.is_empty() && !seg.starts_with('[') {
                path.push('.');
            }
            path.push_str(seg);
        }
        if path.is_empty() {
            f.write_str(&self.msg)
        } else {
            write!(f, "{path}: {}", self.msg)
        }
    }
}

type R<T> = Result<T, Bad>;

/// Reads an OTLP/JSON `ExportTraceServiceRequest`.
pub fn request(bytes: &[u8]) -> R<ExportTraceServiceRequest> {
    let v: Value =
        serde_json::from_slice(bytes).map_err(|e| Bad::new(format!("invalid JSON: {e}")))?;
    let o = object(&v)?;
    Ok(ExportTraceServiceRequest {
        resource_spans: list(o, "resourceSpans", "resource_spans", resource_spans)?,
    })
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn object(v: &Value) -> R<&Map<String, Value>> {
    v.as_object()
        .ok_or_else(|| Bad::new(format!("expected an object, got {}", type_name(v))))
}

/// A field by its JSON name or its proto name; `null` is absent.
fn field<'a>(o: &'a Map<String, Value>, camel: &str, snake: &str) -> Option<(&'a Value, String)> {
    [camel, snake].into_iter().find_map(|k| {
        o.get(k)
            .filter(|v| !v.is_null())
            .map(|v| (v, k.to_string()))
    })
}

fn list<T>(
    o: &Map<String, Value>,
    camel: &str,
    snake: &str,
    item: impl Fn(&Value) -> R<T>,
) -> R<Vec<T>> {
    let Some((v, name)) = field(o, camel, snake) else {
        return Ok(Vec::new());
    };
    let items = v
        .as_array()
        .ok_or_else(|| Bad::new(format!("expected an array, got {}", type_name(v))).at(&name))?;
    items
        .iter()
        .enumerate()
        .map(|(i, x)| item(x).map_err(|e| e.at(format!("[{i}]")).at(&name)))
        .collect()
}

fn message<T: Default>(
    o: &Map<String, Value>,
    camel: &str,
    snake: &str,
    read: impl Fn(&Map<String, Value>) -> R<T>,
) -> R<Option<T>> {
    match field(o, camel, snake) {
        None => Ok(None),
        Some((v, name)) => object(v).and_then(read).map(Some).map_err(|e| e.at(name)),
    }
}

fn string(o: &Map<String, Value>, camel: &str, snake: &str) -> R<String> {
    match field(o, camel, snake) {
        None => Ok(String::new()),
        Some((Value::String(s), _)) => Ok(s.clone()),
        Some((v, name)) => {
            Err(Bad::new(format!("expected a string, got {}", type_name(v))).at(name))
        }
    }
}

/// An unsigned integer: a JSON number or a decimal string.
fn unsigned(v: &Value) -> R<u64> {
    let bad = || Bad::new(format!("expected an unsigned integer, got {v}"));
    match v {
        Value::Number(n) => n
            .as_u64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < 1.8e19)
                    .map(|f| f as u64)
            })
            .ok_or_else(bad),
        Value::String(s) => s.trim().parse().map_err(|_| bad()),
        _ => Err(bad()),
    }
}

fn uint64(o: &Map<String, Value>, camel: &str, snake: &str) -> R<u64> {
    match field(o, camel, snake) {
        None => Ok(0),
        Some((v, name)) => unsigned(v).map_err(|e| e.at(name)),
    }
}

fn uint32(o: &Map<String, Value>, camel: &str, snake: &str) -> R<u32> {
    let n = uint64(o, camel, snake)?;
    u32::try_from(n).map_err(|_| Bad::new(format!("{n} is over 2^32")).at(camel))
}

/// An enum: its number, or its name in `names` (index = value).
fn enumeration(o: &Map<String, Value>, camel: &str, snake: &str, names: &[&str]) -> R<i32> {
    match field(o, camel, snake) {
        None => Ok(0),
        Some((Value::String(s), name)) => match names.iter().position(|n| n == s) {
            Some(i) => Ok(i as i32),
            None => s
                .parse()
                .map_err(|_| Bad::new(format!("unknown value {s:?}")).at(name)),
        },
        Some((Value::Number(n), name)) => n
            .as_i64()
            .and_then(|i| i32::try_from(i).ok())
            .ok_or_else(|| Bad::new(format!("expected an enum number, got {n}")).at(name)),
        Some((v, name)) => {
            Err(Bad::new(format!("expected an enum, got {}", type_name(v))).at(name))
        }
    }
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const LENIENT: GeneralPurposeConfig =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    const STANDARD: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::STANDARD, LENIENT);
    const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::URL_SAFE, LENIENT);
    STANDARD.decode(s).or_else(|_| URL_SAFE.decode(s)).ok()
}

/// A trace or span id: hex (OTLP/JSON), else base64 (protobuf's JSON mapping).
fn id(o: &Map<String, Value>, camel: &str, snake: &str) -> R<Vec<u8>> {
    match field(o, camel, snake) {
        None => Ok(Vec::new()),
        Some((Value::String(s), name)) => hex_decode(s)
            .or_else(|| base64_decode(s))
            .ok_or_else(|| Bad::new(format!("{s:?} is not a hex id")).at(name)),
        Some((v, name)) => {
            Err(Bad::new(format!("expected a hex id, got {}", type_name(v))).at(name))
        }
    }
}

fn resource_spans(v: &Value) -> R<ResourceSpans> {
    let o = object(v)?;
    Ok(ResourceSpans {
        resource: message(o, "resource", "resource", |r| {
            Ok(Resource {
                attributes: list(r, "attributes", "attributes", key_value)?,
                dropped_attributes_count: uint32(
                    r,
                    "droppedAttributesCount",
                    "dropped_attributes_count",
                )?,
                entity_refs: Vec::new(),
            })
        })?,
        scope_spans: list(o, "scopeSpans", "scope_spans", scope_spans)?,
        schema_url: string(o, "schemaUrl", "schema_url")?,
    })
}

fn scope_spans(v: &Value) -> R<ScopeSpans> {
    let o = object(v)?;
    Ok(ScopeSpans {
        scope: None,
        spans: list(o, "spans", "spans", one_span)?,
        schema_url: string(o, "schemaUrl", "schema_url")?,
    })
}

const SPAN_KINDS: &[&str] = &[
    "SPAN_KIND_UNSPECIFIED",
    "SPAN_KIND_INTERNAL",
    "SPAN_KIND_SERVER",
    "SPAN_KIND_CLIENT",
    "SPAN_KIND_PRODUCER",
    "SPAN_KIND_CONSUMER",
];

const STATUS_CODES: &[&str] = &["STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"];

fn one_span(v: &Value) -> R<Span> {
    let o = object(v)?;
    Ok(Span {
        trace_id: id(o, "traceId", "trace_id")?,
        span_id: id(o, "spanId", "span_id")?,
        trace_state: string(o, "traceState", "trace_state")?,
        parent_span_id: id(o, "parentSpanId", "parent_span_id")?,
        flags: uint32(o, "flags", "flags")?,
        name: string(o, "name", "name")?,
        kind: enumeration(o, "kind", "kind", SPAN_KINDS)?,
        start_time_unix_nano: uint64(o, "startTimeUnixNano", "start_time_unix_nano")?,
        end_time_unix_nano: uint64(o, "endTimeUnixNano", "end_time_unix_nano")?,
        attributes: list(o, "attributes", "attributes", key_value)?,
        dropped_attributes_count: uint32(o, "droppedAttributesCount", "dropped_attributes_count")?,
        events: list(o, "events", "events", event)?,
        dropped_events_count: uint32(o, "droppedEventsCount", "dropped_events_count")?,
        links: list(o, "links", "links", link)?,
        dropped_links_count: uint32(o, "droppedLinksCount", "dropped_links_count")?,
        status: message(o, "status", "status", |s| {
            Ok(Status {
                message: string(s, "message", "message")?,
                code: enumeration(s, "code", "code", STATUS_CODES)?,
            })
        })?,
    })
}

fn event(v: &Value) -> R<span::Event> {
    let o = object(v)?;
    Ok(span::Event {
        time_unix_nano: uint64(o, "timeUnixNano", "time_unix_nano")?,
        name: string(o, "name", "name")?,
        attributes: list(o, "attributes", "attributes", key_value)?,
        dropped_attributes_count: uint32(o, "droppedAttributesCount", "dropped_attributes_count")?,
    })
}

fn link(v: &Value) -> R<span::Link> {
    let o = object(v)?;
    Ok(span::Link {
        trace_id: id(o, "traceId", "trace_id")?,
        span_id: id(o, "spanId", "span_id")?,
        trace_state: string(o, "traceState", "trace_state")?,
        attributes: list(o, "attributes", "attributes", key_value)?,
        dropped_attributes_count: uint32(o, "droppedAttributesCount", "dropped_attributes_count")?,
        flags: uint32(o, "flags", "flags")?,
    })
}

fn key_value(v: &Value) -> R<KeyValue> {
    let o = object(v)?;
    Ok(KeyValue {
        key: string(o, "key", "key")?,
        value: message(o, "value", "value", any)?,
    })
}

/// An `AnyValue`: its one set field, or none (an empty value).
fn any(o: &Map<String, Value>) -> R<AnyValue> {
    use any_value::Value as V;
    let value = if let Some((v, name)) = field(o, "stringValue", "string_value") {
        match v {
            Value::String(s) => V::StringValue(s.clone()),
            _ => return Err(Bad::new(format!("expected a string, got {}", type_name(v))).at(name)),
        }
    } else if let Some((v, name)) = field(o, "boolValue", "bool_value") {
        V::BoolValue(v.as_bool().ok_or_else(|| {
            Bad::new(format!("expected a boolean, got {}", type_name(v))).at(name)
        })?)
    } else if let Some((v, name)) = field(o, "intValue", "int_value") {
        let bad = || Bad::new(format!("expected a 64-bit integer, got {v}")).at(&name);
        V::IntValue(match v {
            Value::Number(n) => n.as_i64().ok_or_else(bad)?,
            Value::String(s) => s.trim().parse().map_err(|_| bad())?,
            _ => return Err(bad()),
        })
    } else if let Some((v, name)) = field(o, "doubleValue", "double_value") {
        V::DoubleValue(match v {
            Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
            Value::String(s) => match s.as_str() {
                "NaN" => f64::NAN,
                "Infinity" => f64::INFINITY,
                "-Infinity" => f64::NEG_INFINITY,
                other => other
                    .parse()
                    .map_err(|_| Bad::new(format!("expected a number, got {s:?}")).at(&name))?,
            },
            _ => return Err(Bad::new(format!("expected a number, got {}", type_name(v))).at(name)),
        })
    } else if let Some((v, name)) = field(o, "arrayValue", "array_value") {
        let a = object(v).map_err(|e| e.at(&name))?;
        V::ArrayValue(ArrayValue {
            values: list(a, "values", "values", |x| object(x).and_then(any))
                .map_err(|e| e.at(&name))?,
        })
    } else if let Some((v, name)) = field(o, "kvlistValue", "kvlist_value") {
        let a = object(v).map_err(|e| e.at(&name))?;
        V::KvlistValue(KeyValueList {
            values: list(a, "values", "values", key_value).map_err(|e| e.at(&name))?,
        })
    } else if let Some((v, name)) = field(o, "bytesValue", "bytes_value") {
        let s = v
            .as_str()
            .ok_or_else(|| Bad::new(format!("expected base64, got {}", type_name(v))).at(&name))?;
        V::BytesValue(
            base64_decode(s).ok_or_else(|| Bad::new(format!("{s:?} is not base64")).at(&name))?,
        )
    } else {
        return Ok(AnyValue { value: None });
    };
    Ok(AnyValue { value: Some(value) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_json_and_protobuf_mapping_json_both_read() {
        let body = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{
            "traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"7u4ZfsPBsXQ=",
            "name":"x","kind":"SPAN_KIND_CLIENT","startTimeUnixNano":1700000000000000000,
            "end_time_unix_nano":"1700000000000000001","parentSpanId":null,
            "attributes":[{"key":"a","value":{"intValue":"7"}},{"key":"b","value":{}},
              {"key":"c","value":{"arrayValue":{}}}],
            "status":{"code":2,"message":"m"}}]}]}]}"#;
        let req = request(body).unwrap();
        let s = &req.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(s.trace_id.len(), 16);
        assert_eq!(
            s.span_id,
            vec![0xee, 0xee, 0x19, 0x7e, 0xc3, 0xc1, 0xb1, 0x74]
        );
        assert_eq!(s.kind, 3);
        assert_eq!(s.end_time_unix_nano, 1_700_000_000_000_000_001);
        assert!(s.parent_span_id.is_empty());
        assert_eq!(
            s.attributes[0].value.as_ref().unwrap().value,
            Some(any_value::Value::IntValue(7))
        );
        assert_eq!(s.attributes[1].value.as_ref().unwrap().value, None);
        assert_eq!(s.status.as_ref().unwrap().code, 2);
    }

    #[test]
    fn wrong_types_name_their_path() {
        let e = request(
            br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"startTimeUnixNano":"soon"}]}]}]}"#,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "resourceSpans[0].scopeSpans[0].spans[0].startTimeUnixNano: expected an unsigned integer, got \"soon\""
        );
        assert!(request(b"[]").is_err());
        assert!(request(b"{\"resourceSpans\": 3}").is_err());
    }
}

//! `/call/upsert_batch` bodies read as they are: the ids and names borrowed from the body,
//! and every JSON field (inputs, attributes, output, summary, the OpenTelemetry dump) kept as
//! its text — checked to be JSON of the right kind, never built into a `serde_json::Value`
//! tree — and bound to SQLite as it came. This is how `weave serve` takes the batches of
//! the Rust and Python clients; parsing into the protocol's structs and serialising every
//! field again cost the server as much as writing the rows.
//!
//! What the text path does not take, the caller parses the body in full instead (the
//! protocol's structs, with their exact errors): a body that is not valid JSON of the
//! protocol's shape, an item whose `req` comes before its `mode`, a string id or name
//! written with escapes the body cannot lend, a JSON field nested deeper than
//! [`crate::limits::MAX_DEPTH`] (which the full path caps). The two paths store the same
//! calls; a JSON field is kept as sent (its spacing and number spelling, and an object's
//! repeated key, which SQLite's JSON functions read as its first occurrence where a parser
//! keeps the last).

use std::borrow::Cow;

use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::limits::MAX_DEPTH;
use crate::refs::{extract_refs, WEAVE_SCHEME};
use crate::time::Timestamp;

/// A `/call/upsert_batch` body.
#[derive(Deserialize)]
pub(crate) struct RawBatch<'a> {
    #[serde(borrow)]
    pub(crate) batch: Vec<RawItem<'a>>,
}

/// One item: `{"mode": "start" | "end", "req": {...}}`.
#[derive(Deserialize)]
#[serde(tag = "mode", content = "req", rename_all = "lowercase")]
pub(crate) enum RawItem<'a> {
    Start(#[serde(borrow)] RawStartReq<'a>),
    End(#[serde(borrow)] RawEndReq<'a>),
}

#[derive(Deserialize)]
pub(crate) struct RawStartReq<'a> {
    #[serde(borrow)]
    pub(crate) start: RawStart<'a>,
}

#[derive(Deserialize)]
pub(crate) struct RawEndReq<'a> {
    #[serde(borrow)]
    pub(crate) end: RawEnd<'a>,
}

/// A call's start (`StartedCallSchemaForInsert`), its JSON fields as text.
#[derive(Deserialize)]
pub(crate) struct RawStart<'a> {
    #[serde(borrow)]
    pub(crate) project_id: Str<'a>,
    #[serde(borrow, default)]
    pub(crate) id: Option<Str<'a>>,
    #[serde(borrow)]
    pub(crate) op_name: Str<'a>,
    #[serde(borrow, default)]
    pub(crate) display_name: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub(crate) trace_id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub(crate) parent_id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub(crate) thread_id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub(crate) turn_id: Option<Str<'a>>,
    pub(crate) started_at: Timestamp,
    #[serde(borrow, default)]
    pub(crate) attributes: JsonObject<'a>,
    #[serde(borrow, default)]
    pub(crate) inputs: JsonObject<'a>,
    #[serde(borrow, default)]
    pub(crate) otel_dump: Option<JsonObject<'a>>,
    #[serde(borrow, default)]
    pub(crate) wb_user_id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub(crate) wb_run_id: Option<Str<'a>>,
    #[serde(default)]
    pub(crate) wb_run_step: Option<i64>,
}

/// A call's end (`EndedCallSchemaForInsert`), its JSON fields as text.
#[derive(Deserialize)]
pub(crate) struct RawEnd<'a> {
    #[serde(borrow)]
    pub(crate) project_id: Str<'a>,
    #[serde(borrow)]
    pub(crate) id: Str<'a>,
    pub(crate) ended_at: Timestamp,
    #[serde(borrow, default)]
    pub(crate) exception: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub(crate) output: Option<Json<'a>>,
    #[serde(borrow, default)]
    pub(crate) summary: JsonObject<'a>,
    #[serde(default)]
    pub(crate) wb_run_step_end: Option<i64>,
}

/// A JSON string, borrowed from the body unless it has escapes (then unescaped, owned).
pub(crate) struct Str<'a>(pub(crate) Cow<'a, str>);

impl std::ops::Deref for Str<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E>(self, s: String) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Owned(s)))
            }
        }
        d.deserialize_str(V)
    }
}

/// A JSON value's text, as sent, checked as the full parser would check it.
///
/// The check is one pass that builds nothing: it refuses what a `serde_json::Value` would
/// refuse (a number out of range, a lone surrogate escape, nesting past serde_json's limit),
/// so what is stored always reads back, and it notes what the row needs to know: whether
/// the value nests deeper than [`MAX_DEPTH`] (then the full path caps it) and whether it
/// holds a string that is a ref (then it is parsed for them; escapes are decoded by then,
/// so a ref spelled `weave:\/\/\/…` is found too).
#[derive(Clone, Copy)]
pub(crate) struct Json<'a> {
    pub(crate) text: &'a str,
    pub(crate) has_ref: bool,
    pub(crate) too_deep: bool,
}

impl<'a> Json<'a> {
    /// The refs in this value, as [`extract_refs`] finds them.
    pub(crate) fn refs(&self) -> Vec<String> {
        if !self.has_ref {
            return Vec::new();
        }
        serde_json::from_str::<serde_json::Value>(self.text)
            .map(|v| extract_refs(&v))
            .unwrap_or_default()
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Json<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <&'a RawValue>::deserialize(d)?.get();
        let mut scan = Scan::default();
        let mut de = serde_json::Deserializer::from_str(text);
        Node {
            scan: &mut scan,
            depth: 0,
        }
        .deserialize(&mut de)
        .map_err(D::Error::custom)?;
        Ok(Json {
            text,
            has_ref: scan.has_ref,
            too_deep: scan.too_deep,
        })
    }
}

/// What [`Node`] found in a value.
#[derive(Default)]
struct Scan {
    has_ref: bool,
    too_deep: bool,
}

/// A value being checked, `depth` arrays and objects down.
struct Node<'s> {
    scan: &'s mut Scan,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, s: &str) -> Result<(), E> {
        self.scan.has_ref |= s.starts_with(WEAVE_SCHEME);
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let depth = self.depth + 1;
        self.scan.too_deep |= depth > MAX_DEPTH;
        while seq
            .next_element_seed(Node {
                scan: &mut *self.scan,
                depth,
            })?
            .is_some()
        {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let depth = self.depth + 1;
        self.scan.too_deep |= depth > MAX_DEPTH;
        while map.next_key::<Str<'_>>()?.is_some() {
            map.next_value_seed(Node {
                scan: &mut *self.scan,
                depth,
            })?;
        }
        Ok(())
    }
}

/// The text of a JSON object, checked as [`Json`] is (missing: `{}`).
#[derive(Clone, Copy)]
pub(crate) struct JsonObject<'a>(pub(crate) Json<'a>);

impl Default for JsonObject<'_> {
    fn default() -> Self {
        JsonObject(Json {
            text: "{}",
            has_ref: false,
            too_deep: false,
        })
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for JsonObject<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let json = Json::deserialize(d)?;
        if json.text.starts_with('{') {
            Ok(JsonObject(json))
        } else {
            Err(D::Error::custom("expected a JSON object"))
        }
    }
}

impl RawBatch<'_> {
    /// Whether every JSON field can be stored as it is: none nests deeper than
    /// [`MAX_DEPTH`] (those are capped by the full path).
    pub(crate) fn storable_as_text(&self) -> bool {
        self.batch.iter().all(|item| match item {
            RawItem::Start(s) => {
                let s = &s.start;
                !s.attributes.0.too_deep
                    && !s.inputs.0.too_deep
                    && s.otel_dump.is_none_or(|o| !o.0.too_deep)
            }
            RawItem::End(e) => {
                !e.end.summary.0.too_deep && e.end.output.is_none_or(|o| !o.too_deep)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn json(text: &str) -> Json<'_> {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn depth_is_counted_as_the_value_path_counts_it() {
        for (depth, text) in [
            (0, "1".to_string()),
            (1, "{}".to_string()),
            (3, r#"{"a":[1,{"b":"[[[{{{"}]}"#.to_string()),
            (
                MAX_DEPTH,
                format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH)),
            ),
            (
                MAX_DEPTH + 1,
                format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1)),
            ),
        ] {
            let v: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(json(&text).too_deep, depth > MAX_DEPTH);
            assert_eq!(
                json(&text).too_deep,
                crate::limits::depth_exceeds(&v, MAX_DEPTH)
            );
        }
    }

    #[test]
    fn what_a_value_refuses_is_refused() {
        for bad in [
            "[1e999]",
            r#"{"s":"\ud800"}"#,
            &format!("{}{}", "[".repeat(200), "]".repeat(200)),
        ] {
            assert!(serde_json::from_str::<Value>(bad).is_err(), "{bad}");
            assert!(serde_json::from_str::<Json>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn refs_are_found_however_they_are_spelled() {
        let r = "weave:///e/p/object/o:abc";
        for text in [
            json!({"a": r, "b": [r, {"c": "weave:///e/p/op/f:1"}]}).to_string(),
            r#"{"a":"weave:\/\/\/e\/p\/object\/o:abc","b":"weave:///e/p/op/f:1"}"#.to_string(),
            r#"{"a":"\u0077eave:///e/p/object/o:abc","b":"weave:///e/p/op/f:1"}"#.to_string(),
        ] {
            assert_eq!(
                json(&text).refs(),
                vec![r.to_string(), "weave:///e/p/op/f:1".to_string()],
                "{text}"
            );
        }
        let none = json(r#"{"a":"weave is a word","weave:///k":"x\ny"}"#);
        assert!(!none.has_ref && none.refs().is_empty());
    }

    #[test]
    fn bodies_borrow_and_check_their_json_fields() {
        let body = br#"{"batch":[
            {"mode":"start","req":{"start":{"project_id":"e/p","id":"a","op_name":"o\"p",
              "started_at":"2025-01-01T00:00:00Z","inputs":{"x": [1, 2]},"attributes":{}}}},
            {"mode":"end","req":{"end":{"project_id":"e/p","id":"a",
              "ended_at":"2025-01-01T00:00:01Z","output":null,"summary":{}}}}]}"#;
        let b: RawBatch = serde_json::from_slice(body).unwrap();
        let RawItem::Start(s) = &b.batch[0] else {
            panic!("a start")
        };
        assert!(matches!(s.start.project_id.0, Cow::Borrowed("e/p")));
        assert!(matches!(&s.start.op_name.0, Cow::Owned(o) if o == "o\"p"));
        assert_eq!(s.start.inputs.0.text, r#"{"x": [1, 2]}"#);
        let RawItem::End(e) = &b.batch[1] else {
            panic!("an end")
        };
        assert_eq!(e.end.output.map(|o| o.text), None);
        assert!(b.storable_as_text());
        // An input that is not an object, a null summary, an item whose `req` comes first
        // (buffered by serde, which cannot lend raw text then): the full path's to take.
        for bad in [
            br#"{"batch":[{"mode":"start","req":{"start":{"project_id":"e/p","op_name":"o","started_at":"2025-01-01T00:00:00Z","inputs":[1]}}}]}"#.as_slice(),
            br#"{"batch":[{"mode":"end","req":{"end":{"project_id":"e/p","id":"a","ended_at":"2025-01-01T00:00:00Z","summary":null}}}]}"#,
            br#"{"batch":[{"req":{"end":{"project_id":"e/p","id":"a","ended_at":"2025-01-01T00:00:00Z","summary":{}}},"mode":"end"}]}"#,
        ] {
            assert!(serde_json::from_slice::<RawBatch>(bad).is_err());
        }
    }
}

/// The text path and the full path store the same calls.
#[cfg(test)]
mod same_as_the_full_path {
    use serde_json::{json, Value};

    use crate::schema::*;
    use crate::server::TraceServer;
    use crate::SqliteServer;

    const P: &str = "e/p";
    const A: &str = "019a0000-0000-7000-8000-00000000000a";
    const B: &str = "019a0000-0000-7000-8000-00000000000b";
    const C: &str = "019a0000-0000-7000-8000-00000000000c";
    const T: &str = "019a0000-0000-7000-8000-0000000000ff";
    const R: &str = "weave:///e/p/object/o:abc";

    fn start(id: &str, parent: Option<&str>, inputs: Value) -> Value {
        json!({"mode": "start", "req": {"start": {
            "project_id": P, "id": id, "trace_id": T, "parent_id": parent,
            "op_name": "weave:///e/p/op/f:1", "display_name": "caf\u{e9} \"q\"",
            "started_at": "2025-01-01T00:00:00.123456Z", "attributes": {"k": [1, {"v": null}]},
            "inputs": inputs, "thread_id": "t", "wb_run_step": 3,
        }}})
    }

    fn end(id: &str, output: Value, exception: Option<&str>) -> Value {
        json!({"mode": "end", "req": {"end": {
            "project_id": P, "id": id, "ended_at": "2025-01-01T00:00:01Z",
            "exception": exception, "output": output,
            "summary": {"usage": {"m": {"prompt_tokens": 3, "requests": 1}}},
        }}})
    }

    fn calls(store: &SqliteServer, filter: CallsFilter) -> Vec<CallSchema> {
        let mut q = CallsQueryReq::new(P);
        q.filter = Some(filter);
        store
            .calls_query_stream(q)
            .unwrap()
            .collect::<crate::Result<_>>()
            .unwrap()
    }

    /// Writes `body` through the text path into one store and the full path into another,
    /// and compares every call and the ref filters.
    fn both_paths(body: &Value) -> (SqliteServer, SqliteServer) {
        let bytes = serde_json::to_vec(body).unwrap();
        let text = SqliteServer::in_memory().unwrap();
        let res = text
            .call_upsert_batch_body(&bytes)
            .expect("the text path takes it")
            .unwrap();
        let full = SqliteServer::in_memory().unwrap();
        let req: CallCreateBatchReq = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(res, full.call_start_batch(req).unwrap());
        for filter in [
            CallsFilter::default(),
            CallsFilter {
                input_refs: Some(vec![R.into()]),
                ..Default::default()
            },
            CallsFilter {
                output_refs: Some(vec![R.into()]),
                ..Default::default()
            },
        ] {
            assert_eq!(calls(&text, filter.clone()), calls(&full, filter));
        }
        (text, full)
    }

    #[test]
    fn every_field_refs_escapes_and_order() {
        let body = json!({"batch": [
            // An end before its start, a start and its end, a start left open.
            end(C, json!("late\nline"), None),
            start(A, None, json!({"r": R, "n": [1.5, -2, 1e300], "s": "\u{1F600}\\"})),
            start(B, Some(A), json!({"escaped": "weave:///e/p/object/o:abc"})),
            end(B, json!({"out": [R]}), Some("{\"type\":\"ValueError\"}")),
            start(C, Some(A), json!({})),
        ]});
        let (text, _) = both_paths(&body);
        let all = calls(&text, CallsFilter::default());
        assert_eq!(all.len(), 3);
        let ins = calls(
            &text,
            CallsFilter {
                input_refs: Some(vec![R.into()]),
                ..Default::default()
            },
        );
        assert_eq!(ins.len(), 2, "both spellings of the ref are indexed");
    }

    #[test]
    fn refs_written_with_escapes_are_indexed() {
        let body = br#"{"batch":[{"mode":"start","req":{"start":{"project_id":"e/p",
            "id":"019a0000-0000-7000-8000-00000000000a","trace_id":"019a0000-0000-7000-8000-0000000000ff",
            "op_name":"f","started_at":"2025-01-01T00:00:00Z",
            "inputs":{"a":"weave:\/\/\/e\/p\/object\/o:abc"}}}}]}"#;
        let text = SqliteServer::in_memory().unwrap();
        text.call_upsert_batch_body(body).unwrap().unwrap();
        let hit = calls(
            &text,
            CallsFilter {
                input_refs: Some(vec![R.into()]),
                ..Default::default()
            },
        );
        assert_eq!(hit.len(), 1);
        assert_eq!(hit[0].inputs["a"], R);
    }

    #[test]
    fn big_rows_get_the_markers_the_full_path_gives() {
        let big = "x".repeat(2 * 1024 * 1024);
        let body = json!({"batch": [
            start(A, None, json!({"a": big, "b": big})),
            end(A, json!(big), None),
        ]});
        let (text, _) = both_paths(&body);
        let call = &calls(&text, CallsFilter::default())[0];
        let marker = crate::limits::exceeds_limits_marker();
        assert_eq!(Value::Object(call.inputs.clone()), marker);
        assert!(
            call.output.as_str().is_some_and(|o| o.len() == big.len()),
            "an output under the row limit is kept"
        );
    }

    #[test]
    fn what_the_text_path_leaves_to_the_full_path() {
        let store = SqliteServer::in_memory().unwrap();
        let deep = (0..crate::limits::MAX_DEPTH + 5).fold(json!(1), |v, _| json!([v]));
        for body in [
            json!({"batch": [start(A, None, json!({"d": deep}))]}),
            json!({"batch": [start(A, None, json!([1]))]}),
            json!({"batch": [{"req": end(A, json!(1), None)["req"], "mode": "end"}]}),
            json!({"nope": []}),
        ] {
            let bytes = serde_json::to_vec(&body).unwrap();
            assert!(store.call_upsert_batch_body(&bytes).is_none(), "{body}");
        }
        assert!(store
            .call_upsert_batch_body(b"{\"batch\":[1e999]")
            .is_none());
        // An invalid id is the same error either way.
        let bad = serde_json::to_vec(&json!({"batch": [start("nope", None, json!({}))]})).unwrap();
        let err = store.call_upsert_batch_body(&bad).unwrap().unwrap_err();
        assert!(err.to_string().contains("batch item 0"), "{err}");
    }
}

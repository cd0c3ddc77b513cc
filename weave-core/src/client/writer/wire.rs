//! Calls on the wire to a remote backend: a call's start or end serialised straight from its
//! record into the `/call/upsert_batch` item it stands for.

use std::sync::Arc;

use crate::record::CallRecord;
use crate::schema::{CallBatchItem, CallEndReq, CallStartReq, JsonMap};

/// A call's start or end on its way to a remote backend: serialised straight from the call's
/// record (its attributes, output and summary borrowed, an op's arguments written as the JSON
/// text the traced thread made), in the shape of [`CallBatchItem`]; copied into one only to
/// be shrunk, or for a backend that does not take serialised bodies.
#[derive(Clone)]
pub(super) enum RemoteCall {
    Start(Arc<CallRecord>),
    End(Arc<CallRecord>),
    /// Boxed: rare (a shrunk item), and the common variants are a pointer.
    Item(Box<CallBatchItem>),
}

impl RemoteCall {
    pub(super) fn to_item(&self) -> CallBatchItem {
        match self {
            RemoteCall::Start(c) => CallBatchItem::Start(CallStartReq {
                start: c.start_schema(),
            }),
            RemoteCall::End(c) => CallBatchItem::End(CallEndReq {
                end: c.end_schema(),
            }),
            RemoteCall::Item(i) => (**i).clone(),
        }
    }
}

impl serde::Serialize for RemoteCall {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        #[derive(serde::Serialize)]
        struct StartReq<'a> {
            start: StartWire<'a>,
        }
        #[derive(serde::Serialize)]
        struct EndReq<'a> {
            end: EndWire<'a>,
        }
        if let RemoteCall::Item(i) = self {
            return i.serialize(s);
        }
        let mut m = s.serialize_struct("CallBatchItem", 2)?;
        match self {
            RemoteCall::Start(c) => {
                m.serialize_field("mode", "start")?;
                m.serialize_field(
                    "req",
                    &StartReq {
                        start: StartWire(c),
                    },
                )?;
            }
            RemoteCall::End(c) => {
                m.serialize_field("mode", "end")?;
                m.serialize_field("req", &EndReq { end: EndWire(c) })?;
            }
            RemoteCall::Item(_) => {}
        }
        m.end()
    }
}

/// A record's start, in the shape of [`crate::schema::StartedCallSchemaForInsert`].
pub(super) struct StartWire<'a>(&'a CallRecord);

impl serde::Serialize for StartWire<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let c = self.0;
        let (display_name, extra) = {
            let st = c.state();
            (st.display_name().cloned(), st.extra_inputs().is_some())
        };
        let mut m = s.serialize_struct("StartedCallSchemaForInsert", 15)?;
        m.serialize_field("project_id", &*c.project_id)?;
        m.serialize_field("id", &Some(c.id.as_str()))?;
        m.serialize_field("op_name", &*c.op_name)?;
        m.serialize_field("display_name", &display_name)?;
        m.serialize_field("trace_id", &Some(c.trace_id.as_str()))?;
        m.serialize_field("parent_id", &c.parent_id.as_ref().map(|p| p.as_str()))?;
        m.serialize_field("thread_id", &c.thread_id())?;
        m.serialize_field("turn_id", &c.turn_id())?;
        m.serialize_field("started_at", &c.started_at)?;
        m.serialize_field("attributes", &*c.attributes)?;
        // An op's arguments as the text the traced thread wrote (an object's, capped and
        // redacted); inputs added later (a deferred start) make a new map.
        let raw = match &c.inputs {
            crate::record::Inputs::Json(text, _) if !extra => {
                serde_json::from_str::<&serde_json::value::RawValue>(text).ok()
            }
            _ => None,
        };
        match raw {
            Some(raw) => m.serialize_field("inputs", raw)?,
            None if extra => m.serialize_field("inputs", &c.start_inputs())?,
            None => m.serialize_field("inputs", c.inputs.map())?,
        }
        m.serialize_field("otel_dump", &None::<()>)?;
        m.serialize_field("wb_user_id", &None::<()>)?;
        m.serialize_field("wb_run_id", &None::<()>)?;
        m.serialize_field("wb_run_step", &None::<()>)?;
        m.end()
    }
}

/// A finished record's end, in the shape of [`crate::schema::EndedCallSchemaForInsert`].
pub(super) struct EndWire<'a>(&'a CallRecord);

impl serde::Serialize for EndWire<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let c = self.0;
        let st = c.state();
        let mut m = s.serialize_struct("EndedCallSchemaForInsert", 7)?;
        m.serialize_field("project_id", &*c.project_id)?;
        m.serialize_field("id", c.id.as_str())?;
        m.serialize_field("ended_at", &st.ended_at.unwrap_or(c.started_at))?;
        m.serialize_field("exception", &st.exception)?;
        m.serialize_field("output", &*st.output())?;
        match st.summary() {
            Some(summary) => m.serialize_field("summary", &*summary)?,
            None => m.serialize_field("summary", &JsonMap::new())?,
        }
        m.serialize_field("wb_run_step_end", &None::<i64>)?;
        m.end()
    }
}

//! The rules every feedback write must satisfy, as the Weave server states them (PROTOCOL
//! §4.9). The embedded store applies them before storing; the client applies them before
//! queueing feedback for a remote server, so a bad request fails the caller at once rather
//! than being dropped later by the writer.

use serde_json::Value;

use super::*;
use crate::error::{Result, WeaveError};
use crate::refs::{ObjectKind, Ref};
use crate::schema::check_project_id;
use crate::schema::{check_payload_size, FeedbackCreateReq};

fn invalid(msg: impl std::fmt::Display) -> WeaveError {
    WeaveError::invalid_input(msg)
}

/// Parses `uri` as a ref of this project.
fn parse_ref(what: &str, uri: &str, project_id: &str) -> Result<Ref> {
    let r: Ref = uri.parse().map_err(|e: WeaveError| {
        invalid(format!(
            "{what}: {}",
            e.to_string().trim_start_matches("invalid input: ")
        ))
    })?;
    let (entity, project) = match &r {
        Ref::Object(o) => (&o.entity, &o.project),
        Ref::Table {
            entity, project, ..
        } => (entity, project),
        Ref::Call(c) => (&c.entity, &c.project),
    };
    if format!("{entity}/{project}") != project_id {
        return Err(invalid(format!(
            "{what} {uri:?} is not in project {project_id:?}"
        )));
    }
    Ok(r)
}

fn payload_str<'a>(req: &'a FeedbackCreateReq, key: &str) -> Result<&'a str> {
    match req.payload.get(key) {
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(invalid(format!(
            "the payload of {} feedback needs a string {key:?}, got {other}",
            req.feedback_type
        ))),
        None => Err(invalid(format!(
            "the payload of {} feedback needs a {key:?} key",
            req.feedback_type
        ))),
    }
}

fn require_key(req: &FeedbackCreateReq, key: &str) -> Result<()> {
    if req.payload.contains_key(key) {
        Ok(())
    } else {
        Err(invalid(format!(
            "the payload of {} feedback needs a {key:?} key",
            req.feedback_type
        )))
    }
}

/// `<prefix>.<name>` → `name` (non-empty).
fn sub_name<'a>(feedback_type: &'a str, prefix: &str) -> Result<&'a str> {
    feedback_type
        .strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('.'))
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            invalid(format!(
                "invalid feedback type {feedback_type:?}: expected {prefix}.<name>"
            ))
        })
}

/// Validates a create request for its type and adds the server's payload fields. Returns the
/// request with its processed payload.
pub(crate) fn validate(mut req: FeedbackCreateReq) -> Result<FeedbackCreateReq> {
    check_project_id(&req.project_id)?;
    if let Some(id) = &req.id {
        if id.is_empty() {
            return Err(invalid("a feedback id, when given, must not be empty"));
        }
    }
    parse_ref("weave_ref", &req.weave_ref, &req.project_id)?;
    let t = req.feedback_type.as_str();
    if t.is_empty() {
        return Err(invalid("feedback type must not be empty"));
    }
    let is_annotation = t.starts_with(ANNOTATION_FEEDBACK_TYPE_PREFIX);
    let is_runnable = t.starts_with(RUNNABLE_FEEDBACK_TYPE_PREFIX);
    let is_agent_monitor = t == AGENT_MONITOR_FEEDBACK_TYPE;
    if t == REACTION_FEEDBACK_TYPE {
        let names = check_reaction(payload_str(&req, "emoji")?)?;
        req.payload
            .insert("alias".into(), Value::String(names.alias));
        req.payload
            .insert("detoned".into(), Value::String(names.detoned));
        req.payload
            .insert("detoned_alias".into(), Value::String(names.detoned_alias));
    } else if t == NOTE_FEEDBACK_TYPE {
        check_note(payload_str(&req, "note")?)?;
    } else if is_annotation {
        let name = sub_name(t, ANNOTATION_FEEDBACK_TYPE_PREFIX)?;
        let Some(aref) = &req.annotation_ref else {
            return Err(invalid(
                "annotation_ref is required for annotation feedback",
            ));
        };
        match parse_ref("annotation_ref", aref, &req.project_id)? {
            Ref::Object(o) if o.kind == ObjectKind::Object => {
                if o.name != name {
                    return Err(invalid(format!(
                        "annotation_ref must point to an object named {name:?}, got {:?}",
                        o.name
                    )));
                }
            }
            _ => {
                return Err(invalid(format!(
                    "annotation_ref {aref:?} must be an object ref"
                )))
            }
        }
        require_key(&req, "value")?;
    } else if is_runnable {
        let name = sub_name(t, RUNNABLE_FEEDBACK_TYPE_PREFIX)?;
        let Some(rref) = &req.runnable_ref else {
            return Err(invalid("runnable_ref is required for runnable feedback"));
        };
        match parse_ref("runnable_ref", rref, &req.project_id)? {
            Ref::Object(o) => {
                if o.name != name {
                    return Err(invalid(format!(
                        "runnable_ref must point to an op or object named {name:?}, got {:?}",
                        o.name
                    )));
                }
                if o.kind == ObjectKind::Op && req.call_ref.is_none() {
                    return Err(invalid("call_ref is required for runnable feedback on ops"));
                }
            }
            _ => {
                return Err(invalid(format!(
                    "runnable_ref {rref:?} must be an op or object ref"
                )))
            }
        }
        require_key(&req, "output")?;
    } else if is_agent_monitor {
        for (what, r) in [
            ("runnable_ref", &req.runnable_ref),
            ("call_ref", &req.call_ref),
            ("trigger_ref", &req.trigger_ref),
        ] {
            if r.is_none() {
                return Err(invalid(format!(
                    "{what} is required for agent monitor feedback"
                )));
            }
        }
    } else if t.starts_with(RESERVED_FEEDBACK_TYPE_PREFIX) {
        return Err(invalid(format!(
            "unknown feedback type {t:?}: types starting with \"wandb.\" are reserved for Weave's own \
             (wandb.reaction.1, wandb.note.1, wandb.annotation.<name>, wandb.runnable.<name>, wandb.agent_monitor)"
        )));
    }
    if !is_annotation && req.annotation_ref.is_some() {
        return Err(invalid(
            "annotation_ref is not allowed for non-annotation feedback",
        ));
    }
    if !is_runnable && !is_agent_monitor {
        for (what, r) in [
            ("runnable_ref", &req.runnable_ref),
            ("call_ref", &req.call_ref),
            ("trigger_ref", &req.trigger_ref),
        ] {
            if r.is_some() {
                return Err(invalid(format!(
                    "{what} is not allowed for non-runnable feedback"
                )));
            }
        }
    }
    if let Some(r) = &req.runnable_ref {
        if !matches!(
            parse_ref("runnable_ref", r, &req.project_id)?,
            Ref::Object(_)
        ) {
            return Err(invalid(format!(
                "runnable_ref {r:?} must be an op or object ref"
            )));
        }
    }
    if let Some(r) = &req.call_ref {
        if !matches!(parse_ref("call_ref", r, &req.project_id)?, Ref::Call(_)) {
            return Err(invalid(format!("call_ref {r:?} must be a call ref")));
        }
    }
    if let Some(r) = &req.trigger_ref {
        if !matches!(parse_ref("trigger_ref", r, &req.project_id)?, Ref::Object(ref o) if o.kind == ObjectKind::Object)
        {
            return Err(invalid(format!("trigger_ref {r:?} must be an object ref")));
        }
    }
    check_payload_size(&req.payload)?;
    Ok(req)
}

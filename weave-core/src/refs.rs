//! Weave ref URIs (PROTOCOL §7.1).
//!
//! ```text
//! weave:///{entity}/{project}/object/{name}:{digest}[/{edge}/{value}]*
//! weave:///{entity}/{project}/op/{name}:{digest}[/{edge}/{value}]*
//! weave:///{entity}/{project}/table/{table_digest}
//! weave:///{entity}/{project}/call/{call_id}
//! ```
//!
//! Extra path values are percent-encoded with an empty safe set (everything but
//! `[A-Za-z0-9_.~-]` is escaped); parsing splits on `/` and unquotes each part.

use std::fmt;
use std::str::FromStr;

use crate::error::WeaveError;

/// The URI scheme prefix of every external ref.
pub const WEAVE_SCHEME: &str = "weave:///";

/// An edge of a ref's extra path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefEdge {
    /// A dict key.
    Key,
    /// An object attribute.
    Attr,
    /// A list index (the value parses as an integer).
    Index,
    /// A table row digest.
    Id,
}

impl RefEdge {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RefEdge::Key => "key",
            RefEdge::Attr => "attr",
            RefEdge::Index => "index",
            RefEdge::Id => "id",
        }
    }
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "key" => RefEdge::Key,
            "attr" => RefEdge::Attr,
            "index" => RefEdge::Index,
            "id" => RefEdge::Id,
            _ => return None,
        })
    }
}

/// Whether an [`ObjectRef`] names an object or an op.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectKind {
    /// `.../object/...`
    Object,
    /// `.../op/...`
    Op,
}

/// A ref to a version of an object or op, possibly into a part of it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectRef {
    /// Entity.
    pub entity: String,
    /// Project.
    pub project: String,
    /// Object or op.
    pub kind: ObjectKind,
    /// The object's name.
    pub name: String,
    /// A digest, `latest` or `v<N>`.
    pub digest: String,
    /// Extra path edges into the value.
    pub extra: Vec<(RefEdge, String)>,
}

/// A parsed Weave ref.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Ref {
    /// An object or op version.
    Object(ObjectRef),
    /// A table: `weave:///e/p/table/<digest>`.
    Table {
        /// Entity.
        entity: String,
        /// Project.
        project: String,
        /// The table digest.
        digest: String,
    },
    /// A call: `weave:///e/p/call/<id>`.
    Call(CallRef),
}

/// A ref to a call, `weave:///entity/project/call/<id>`, possibly into a part of it
/// (`.../call/<id>/key/output`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CallRef {
    /// Entity.
    pub entity: String,
    /// Project.
    pub project: String,
    /// The call id.
    pub id: String,
    /// Extra path edges into the call.
    pub extra: Vec<(RefEdge, String)>,
}

impl CallRef {
    /// A ref to the whole call.
    pub fn new(
        entity: impl Into<String>,
        project: impl Into<String>,
        id: impl Into<String>,
    ) -> Self {
        CallRef {
            entity: entity.into(),
            project: project.into(),
            id: id.into(),
            extra: Vec::new(),
        }
    }
}

impl fmt::Display for CallRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{WEAVE_SCHEME}{}/{}/call/{}",
            self.entity, self.project, self.id
        )?;
        write_extra(f, &self.extra)
    }
}

fn write_extra(f: &mut fmt::Formatter<'_>, extra: &[(RefEdge, String)]) -> fmt::Result {
    for (edge, value) in extra {
        let mut enc = String::new();
        percent_encode(value, &mut enc);
        write!(f, "/{}/{enc}", edge.as_str())?;
    }
    Ok(())
}

/// Checks an op name: an op ref, or a plain name of 1 to 128 characters (PROTOCOL §4.1).
pub(crate) fn check_op_name(op_name: &str) -> Result<(), WeaveError> {
    if op_name.starts_with(WEAVE_SCHEME) {
        match op_name.parse::<Ref>()? {
            Ref::Object(r) if r.kind == ObjectKind::Op => Ok(()),
            _ => Err(WeaveError::invalid_input(format!(
                "op_name {op_name:?} is a ref but not an op ref"
            ))),
        }
    } else if op_name.is_empty() || op_name.chars().count() > 128 {
        Err(WeaveError::invalid_input(format!(
            "op_name must be an op ref or a plain op name of 1 to 128 characters, got {} characters",
            op_name.chars().count()
        )))
    } else {
        Ok(())
    }
}

/// `s` percent-encoded with an empty safe set (everything but `[A-Za-z0-9_.~-]`), as ref
/// path values and URL path parts are.
pub(crate) fn percent_encode(s: &str, out: &mut String) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'~' | b'-') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

fn percent_decode(s: &str) -> Result<String, WeaveError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| {
                    WeaveError::invalid_input(format!("bad percent-escape in ref part {s:?}"))
                })?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| {
        WeaveError::invalid_input(format!("ref part {s:?} is not UTF-8 once unquoted"))
    })
}

impl fmt::Display for Ref {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ref::Object(r) => {
                let kind = match r.kind {
                    ObjectKind::Object => "object",
                    ObjectKind::Op => "op",
                };
                write!(
                    f,
                    "{WEAVE_SCHEME}{}/{}/{kind}/{}:{}",
                    r.entity, r.project, r.name, r.digest
                )?;
                write_extra(f, &r.extra)
            }
            Ref::Table {
                entity,
                project,
                digest,
            } => write!(f, "{WEAVE_SCHEME}{entity}/{project}/table/{digest}"),
            Ref::Call(c) => c.fmt(f),
        }
    }
}

impl FromStr for Ref {
    type Err = WeaveError;
    fn from_str(uri: &str) -> Result<Self, WeaveError> {
        let bad = |why: &str| WeaveError::invalid_input(format!("malformed ref {uri:?}: {why}"));
        let rest = uri
            .strip_prefix(WEAVE_SCHEME)
            .ok_or_else(|| bad("must start with weave:///"))?;
        let parts: Vec<&str> = rest.split('/').collect();
        if parts.len() < 4 {
            return Err(bad("expected weave:///entity/project/kind/name"));
        }
        let (entity, project, kind) = (parts[0], parts[1], parts[2]);
        if entity.is_empty() || project.is_empty() {
            return Err(bad("entity and project must not be empty"));
        }
        let (entity, project) = (entity.to_string(), project.to_string());
        match kind {
            "object" | "op" => {
                let (name, digest) = parts[3]
                    .split_once(':')
                    .ok_or_else(|| bad("expected name:digest"))?;
                if name.is_empty() || digest.is_empty() || digest.contains(':') {
                    return Err(bad(
                        "expected a non-empty name and digest separated by one ':'",
                    ));
                }
                let extra = parse_extra(&parts[4..], &bad)?;
                Ok(Ref::Object(ObjectRef {
                    entity,
                    project,
                    kind: if kind == "op" {
                        ObjectKind::Op
                    } else {
                        ObjectKind::Object
                    },
                    name: name.to_string(),
                    digest: digest.to_string(),
                    extra,
                }))
            }
            "table" if parts.len() == 4 && !parts[3].is_empty() => Ok(Ref::Table {
                entity,
                project,
                digest: parts[3].to_string(),
            }),
            "call" if !parts[3].is_empty() => Ok(Ref::Call(CallRef {
                entity,
                project,
                id: parts[3].to_string(),
                extra: parse_extra(&parts[4..], &bad)?,
            })),
            "table" if parts.len() == 4 && !parts[3].is_empty() => Ok(Ref::Table {
                entity,
                project,
                digest: parts[3].to_string(),
            }),
            "table" | "call" => Err(bad(&format!(
                "a {kind} ref is weave:///entity/project/{kind}/<id>"
            ))),
            other => Err(bad(&format!(
                "unknown kind {other:?} (expected object, op, table or call)"
            ))),
        }
    }
}

/// Parses extra path parts: (edge, percent-encoded value) pairs.
fn parse_extra(
    extras: &[&str],
    bad: &dyn Fn(&str) -> WeaveError,
) -> Result<Vec<(RefEdge, String)>, WeaveError> {
    if !extras.len().is_multiple_of(2) {
        return Err(bad("extra path parts must come in (edge, value) pairs"));
    }
    let mut extra = Vec::new();
    for pair in extras.chunks(2) {
        let edge = RefEdge::parse(pair[0]).ok_or_else(|| {
            bad(&format!(
                "unknown edge {:?} (expected key, attr, index or id)",
                pair[0]
            ))
        })?;
        let value = percent_decode(pair[1])?;
        if edge == RefEdge::Index && value.parse::<i64>().is_err() {
            return Err(bad(&format!(
                "index edge value {value:?} is not an integer"
            )));
        }
        extra.push((edge, value));
    }
    Ok(extra)
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Ref::Object(self.clone()).fmt(f)
    }
}

macro_rules! serialize_as_uri {
    ($($t:ty),*) => {$(
        impl serde::Serialize for $t {
            /// A ref serialises as its URI string (so refs inside call inputs are indexed).
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = std::borrow::Cow::<str>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    )*};
}
serialize_as_uri!(Ref, ObjectRef, CallRef);

impl FromStr for ObjectRef {
    type Err = WeaveError;
    fn from_str(uri: &str) -> Result<Self, WeaveError> {
        match uri.parse::<Ref>()? {
            Ref::Object(o) => Ok(o),
            _ => Err(WeaveError::invalid_input(format!(
                "{uri:?} is not an object or op ref"
            ))),
        }
    }
}

impl FromStr for CallRef {
    type Err = WeaveError;
    fn from_str(uri: &str) -> Result<Self, WeaveError> {
        match uri.parse::<Ref>()? {
            Ref::Call(c) => Ok(c),
            _ => Err(WeaveError::invalid_input(format!(
                "{uri:?} is not a call ref"
            ))),
        }
    }
}

/// The name of the op in an op ref (`weave:///e/p/op/name:digest` → `name`); `None` when
/// `op_name` is not an op ref.
pub(crate) fn parse_op_name(op_name: &str) -> Option<&str> {
    let rest = op_name.strip_prefix(WEAVE_SCHEME)?;
    let mut parts = rest.splitn(4, '/');
    let (_entity, _project, kind, tail) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if kind != "op" {
        return None;
    }
    let name_digest = tail.split('/').next()?;
    let (name, _digest) = name_digest.split_once(':')?;
    Some(name)
}

/// Every distinct string inside `value` that is a Weave ref (starts with `weave:///`), in
/// first-seen order. This is how `input_refs` / `output_refs` are indexed.
pub fn extract_refs(value: &serde_json::Value) -> Vec<String> {
    use serde_json::Value;
    let mut out: Vec<String> = Vec::new();
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        match v {
            Value::String(s) if s.starts_with(WEAVE_SCHEME) && !out.contains(s) => {
                out.push(s.clone())
            }
            Value::Array(items) => stack.extend(items.iter().rev()),
            Value::Object(m) => stack.extend(m.values().rev()),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for uri in [
            "weave:///e/p/object/my_ds:abc/attr/rows/id/xyz",
            "weave:///e/p/op/f:abc",
            "weave:///e/p/object/o:v3/key/a%20b%2Fc/index/2",
            "weave:///e/p/table/0123abcd",
            "weave:///e/p/call/0193-x",
        ] {
            let r: Ref = uri.parse().unwrap();
            assert_eq!(r.to_string(), uri);
        }
        let r: Ref = "weave:///e/p/object/o:v3/key/a%20b%2Fc".parse().unwrap();
        let Ref::Object(o) = r else { panic!() };
        assert_eq!(o.extra, vec![(RefEdge::Key, "a b/c".to_string())]);
    }

    #[test]
    fn malformed_refs_name_the_problem() {
        for (uri, why) in [
            ("http://x", "weave:///"),
            ("weave:///e/p/object/noversion", "name:digest"),
            ("weave:///e/p/thing/a:b", "unknown kind"),
            ("weave:///e/p/object/a:b/key", "pairs"),
            ("weave:///e/p/object/a:b/foo/x", "unknown edge"),
            ("weave:///e/p/object/a:b/index/x", "not an integer"),
            ("weave:///e/p/object/a:b/key/%zz", "percent"),
        ] {
            let err = uri.parse::<Ref>().unwrap_err().to_string();
            assert!(err.contains(why), "{uri}: {err}");
        }
    }

    #[test]
    fn op_name_parsing() {
        assert_eq!(parse_op_name("weave:///e/p/op/my_fn:abc"), Some("my_fn"));
        assert_eq!(parse_op_name("weave:///e/p/object/my_fn:abc"), None);
        assert_eq!(parse_op_name("plain"), None);
    }
}

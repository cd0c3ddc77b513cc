//! What a call is a call *of*: [`Op`] (a name, its source text, kind and postprocessing) and
//! how a call's display name is given ([`DisplayName`]).

use std::sync::Arc;

use serde_json::Value;

use super::call::Call;
use super::op_code::OpCode;
use crate::schema::JsonMap;

pub(crate) type InputsFn = dyn Fn(JsonMap) -> JsonMap + Send + Sync;
pub(crate) type OutputFn = dyn Fn(Value) -> Value + Send + Sync;
pub(crate) type DisplayNameFn = dyn Fn(&Call) -> String + Send + Sync;

/// What a call is a call *of*: Python's `str | Op` argument of `create_call`.
///
/// A plain name (`&str` / `String`) converts into an `Op`. Every call's `op_name` is an op
/// ref (`weave:///entity/project/op/<name>:<digest>`), as in Python: the op object is saved
/// once per client, with the op's source text as its code ([`Op::code`]; `#[weave::op]`
/// captures it), or a stub for a plain name. An `Op` may also carry a `kind` and
/// `postprocess_inputs` / `postprocess_output` functions (e.g. redaction), applied before
/// anything is recorded.
///
/// # Examples
///
/// ```
/// use weave_core::Op;
/// let op = Op::new("llm").kind("llm").postprocess_inputs(|mut inputs| {
///     inputs.remove("prompt");
///     inputs
/// });
/// assert_eq!(op.name(), "llm");
/// ```
#[derive(Clone)]
pub struct Op {
    pub(crate) name: Arc<str>,
    pub(crate) code: Option<Arc<OpCode>>,
    pub(crate) kind: Option<Arc<str>>,
    pub(crate) postprocess_inputs: Option<Arc<InputsFn>>,
    pub(crate) postprocess_output: Option<Arc<OutputFn>>,
}

impl Op {
    /// An op named `name` (a plain name or an op ref URI).
    pub fn new(name: impl Into<String>) -> Self {
        Op {
            name: Arc::from(name.into()),
            code: None,
            kind: None,
            postprocess_inputs: None,
            postprocess_output: None,
        }
    }
    /// The op's name or ref.
    pub fn name(&self) -> &str {
        &self.name
    }
    pub(crate) fn renamed(mut self, name: String) -> Self {
        self.name = Arc::from(name);
        self
    }
    /// Sets the op's source text: it is saved as the op object's code (`obj.py`), so that
    /// changed code makes a new op version.
    pub fn code(mut self, source: impl Into<String>) -> Self {
        self.code = Some(Arc::new(OpCode::new(source.into())));
        self
    }
    /// Sets the op's kind (`"llm"`, `"agent"`, `"tool"`, …), stored in its calls'
    /// `attributes.weave.kind` as the Python SDK stores it.
    pub fn kind(mut self, kind: impl Into<String>) -> Self {
        self.kind = Some(Arc::from(kind.into()));
        self
    }
    /// The op's kind, if set.
    pub fn get_kind(&self) -> Option<&str> {
        self.kind.as_deref()
    }
    /// Transforms the inputs before they are recorded.
    pub fn postprocess_inputs(
        mut self,
        f: impl Fn(JsonMap) -> JsonMap + Send + Sync + 'static,
    ) -> Self {
        self.postprocess_inputs = Some(Arc::new(f));
        self
    }
    /// Transforms the output before it is recorded.
    pub fn postprocess_output(
        mut self,
        f: impl Fn(Value) -> Value + Send + Sync + 'static,
    ) -> Self {
        self.postprocess_output = Some(Arc::new(f));
        self
    }
}

impl std::fmt::Debug for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Op")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl From<&str> for Op {
    fn from(name: &str) -> Self {
        Op::new(name)
    }
}
impl From<String> for Op {
    fn from(name: String) -> Self {
        Op::new(name)
    }
}
impl From<&Op> for Op {
    fn from(op: &Op) -> Self {
        op.clone()
    }
}

/// A display name: fixed, or computed from the new call.
#[derive(Clone)]
pub enum DisplayName {
    /// A fixed name.
    Static(String),
    /// A function of the call (it sees the id, inputs, op, …).
    Fn(Arc<DisplayNameFn>),
}

impl std::fmt::Debug for DisplayName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DisplayName::Static(s) => f.debug_tuple("Static").field(s).finish(),
            DisplayName::Fn(_) => f.write_str("Fn(..)"),
        }
    }
}

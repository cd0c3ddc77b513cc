//! # weave: W&B Weave tracing for Rust
//!
//! Record every call of your LLM, tool and agent code — inputs, output, exception, timing,
//! parent, token usage — and query the calls back with the API of the Python `WeaveClient`.
//! Calls go to an embedded SQLite store by default (nothing to install), or to any Weave
//! trace server.
//!
//! ## Ops: `#[weave::op]`
//!
//! Annotate functions; after [`init`], every invocation is a call. Calls made inside an op
//! are its children, across `.await` too.
//!
//! ```
//! # std::env::set_var("WEAVE_DB_PATH", ":memory:");
//! use serde::Serialize;
//!
//! #[derive(Serialize)]
//! struct Reply { model: String, text: String, usage: serde_json::Value }
//!
//! #[weave::op(kind = "llm")]
//! fn llm(prompt: &str) -> Reply {
//!     // An output with `model` and `usage` records token usage, as in Python.
//!     Reply {
//!         model: "gpt-4o".into(),
//!         text: format!("echo: {prompt}"),
//!         usage: serde_json::json!({"prompt_tokens": 5, "completion_tokens": 3}),
//!     }
//! }
//!
//! #[weave::op]
//! fn parse_city(text: &str) -> Result<String, std::num::ParseIntError> {
//!     let n: u32 = text.trim().parse()?;      // an Err fails the call and is returned as is
//!     Ok(format!("city #{n}"))
//! }
//!
//! #[weave::op(kind = "agent")]
//! fn agent(question: &str) -> String {
//!     let reply = llm(question);
//!     let _ = parse_city("not a number");
//!     reply.text
//! }
//!
//! let (client, _guard) = weave::init("acme/agents")?;
//! let (answer, call) = weave::capture_call(|| agent("weather in Paris?"));
//! assert_eq!(answer, "echo: weather in Paris?");
//!
//! let root = client.get_call(call.unwrap().id())?;
//! assert_eq!(root.func_name(), "agent");
//! assert_eq!(root.inputs()["question"], "weather in Paris?");
//! assert_eq!(root.status(), weave::TraceStatus::DescendantError);
//! assert_eq!(root.usage()["gpt-4o"]["prompt_tokens"], 5);
//! assert_eq!(root.children().count(), 2);
//! // The op is versioned by its code: op_name is `weave:///acme/agents/op/agent:<digest>`.
//! assert!(client.op_code(root.op_name())?.contains("fn agent"));
//! # Ok::<(), weave::WeaveError>(())
//! ```
//!
//! Arguments and return values are recorded through `serde` when their type implements
//! `Serialize`, else as their `Debug` text, else as a placeholder naming the type — no bound
//! is required. See [`op`] for the options (`name`, `skip`, `display_name`,
//! `postprocess_inputs`/`postprocess_output`, `sample_rate`, `kind`).
//!
//! ## Spans: [`layer()`]
//!
//! `tracing` spans (`#[instrument]`, `info_span!`) become calls through [`WeaveLayer`]:
//! fields are inputs, `#[instrument(ret, err)]` give the output and the exception, events
//! are kept with their call, and OpenTelemetry GenAI fields (`gen_ai.usage.input_tokens`,
//! `gen_ai.response.model`, …) become token usage. [`init`] installs it when the program
//! has no subscriber; otherwise add `weave::layer()` to yours. Ops, spans and direct
//! [`WeaveClient::create_call`] share one call stack and nest in any order.
//!
//! ```
//! # std::env::set_var("WEAVE_DB_PATH", ":memory:");
//! use tracing_subscriber::prelude::*;
//!
//! #[tracing::instrument(ret)]
//! fn lookup(user_id: u64) -> String {
//!     tracing::info!("looking up");
//!     format!("user-{user_id}")
//! }
//!
//! let (client, _guard) = weave::init_with(
//!     "acme/app",
//!     weave::InitOptions::default().with_install_subscriber(false),
//! )?;
//! let subscriber = tracing_subscriber::registry().with(weave::layer());
//! tracing::subscriber::with_default(subscriber, || lookup(7));
//!
//! let call = client.get_calls(weave::CallsQuery::new()).next().unwrap()?;
//! assert_eq!(call.func_name(), "lookup");
//! assert_eq!(call.inputs()["user_id"], 7);
//! assert_eq!(call.output(), "user-7");
//! assert_eq!(call.summary().unwrap()["events"][0]["message"], "looking up");
//! # Ok::<(), weave::WeaveError>(())
//! ```
//!
//! ## The client
//!
//! The same calls can be recorded and queried directly, as with Python's `WeaveClient`:
//!
//! ```
//! use serde_json::json;
//! use weave::{query::field, CallsQuery, WeaveClient};
//!
//! # std::env::set_var("WEAVE_DB_PATH", ":memory:");
//! let client = WeaveClient::embedded("acme/agents")?;      // the embedded store
//!
//! let agent = client.create_call("agent", json!({"question": "weather in Paris?"}))?;
//! let llm = client.create_call("llm", json!({"prompt": "weather in Paris?"}))?;  // child of agent
//! client.finish_call(&llm, json!({
//!     "model": "gpt-4o",
//!     "usage": {"prompt_tokens": 12, "completion_tokens": 3},
//!     "text": "call get_weather(Paris)",
//! }))?;
//! let tool = client.create_call("get_weather", json!({"city": "Paris"}))?;
//! client.fail_call(&tool, "weather API timed out".to_string())?;
//! client.finish_call(&agent, "sorry, no weather today")?;
//!
//! // Query it back.
//! let root = client.get_call(agent.id())?;
//! assert_eq!(root.status(), weave::TraceStatus::DescendantError);
//! assert_eq!(root.usage()["gpt-4o"]["prompt_tokens"], 12);
//! let failed = client.get_calls(CallsQuery::new().query(field("summary.weave.status").eq("error")));
//! assert_eq!(failed.size()?, 1);
//! # Ok::<(), weave::WeaveError>(())
//! ```
//!
//! ## Turning it off
//!
//! `WEAVE_DISABLED=true` turns tracing off for the process: ops run as plain functions (the
//! check is one atomic load) and the layer ignores everything. Without [`init`] (no
//! process-wide client) and outside any call, an op is a plain function call too.
//!
//! See the crate README for where the data goes and a tour of the API.

#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

mod init;
mod spawn;

pub use init::{
    finish, init, init_with, layer, Backend, InitOptions, WeaveGuard, DEFAULT_ENTITY,
    FINISH_TIMEOUT,
};
pub use spawn::{spawn, spawn_thread};
pub use weave_core::{
    capture_call, capture_call_async, is_suppressed, Context, WithContext, EVENTS_DROPPED_KEY,
    EVENTS_KEY, MAX_EVENTS,
};
pub use weave_tracing::WeaveLayer;

pub use weave_core::{
    current_call, generate_id, global_client, is_valid_call_id, is_valid_trace_id, pop_call,
    publish, push_call, sanitize_object_name, set_global_client, with_call, Call, CallOptions,
    CallSchema, CallsFilter, CallsIter, CallsQuery, CostsQuery, DisplayName, Exception,
    IntoException, JsonMap, Op, Query, Result, SortBy, SortDirection, SqliteServer,
    SqliteServerConfig, StackFrame, TableRef, TableRowsIter, Timestamp, TraceServer, TraceStatus,
    WeaveClient, WeaveError, MAX_DISPLAY_NAME_CHARS, MAX_OBJECT_NAME_CHARS, REDACTED_VALUE,
    REDACT_KEYS,
};
pub use weave_core::{
    Feedback, FeedbackFilter, FeedbackIter, FeedbackQuery, RefFeedback, DEFAULT_FEEDBACK_LIMIT,
};

/// The query language: [`query::field`], [`query::lit`] and the [`Query`] types.
pub mod query {
    pub use weave_core::query::*;
}

/// The GenAI conventions (OpenTelemetry GenAI, OpenInference, …) spans' fields are read
/// by: which names become `summary.usage[model]`, the model, the output.
pub mod genai {
    pub use weave_core::genai::*;
}

/// Traces across processes: the current call put into outgoing request headers (W3C
/// `traceparent` and `tracestate`) or a child process's environment, and continued from
/// them on the other side ([`Context::from_headers`], [`Context::from_env`]).
pub mod propagation {
    pub use weave_core::propagation::*;
}

/// The protocol's wire types.
pub mod schema {
    pub use weave_core::schema::*;
}

/// Backends.
pub mod server {
    pub use weave_core::server::*;
}

/// Settings from the environment.
pub mod config {
    pub use weave_core::config::*;
}

/// Content digests, as the Python package computes them.
pub mod digest {
    pub use weave_core::digest::*;
}

/// Refs (`weave:///…`).
pub mod refs {
    pub use weave_core::refs::*;
}

/// Size limits shared by every backend.
pub mod limits {
    pub use weave_core::limits::*;
}

#[doc(hidden)]
pub mod __private {
    //! Used by code that `#[weave::op]` generates; not a public API.
    pub use serde_json;
    pub use weave_core;
    pub use weave_core::rt;
}

/// Turns a function into a Weave op: every invocation becomes a call (see the
/// [crate docs](crate#ops-weaveop) for a runnable example).
///
/// ```ignore
/// #[weave::op]                                   // name: the function's name (`Type.method` for methods)
/// #[weave::op(name = "summarize")]               // another op name
/// #[weave::op(skip(client, self))]               // not recorded as inputs
/// #[weave::op(display_name = "Summarizer")]      // the calls' display name
/// #[weave::op(display_name = name_fn)]           // fn name_fn(&weave::Call) -> String
/// #[weave::op(postprocess_inputs = redact)]      // fn redact(weave::JsonMap) -> weave::JsonMap
/// #[weave::op(postprocess_output = shorten)]     // fn shorten(serde_json::Value) -> serde_json::Value
/// #[weave::op(sample_rate = 0.1)]                // trace 10% of the traces this op starts
/// #[weave::op(kind = "llm")]                     // agent, llm, tool, search, guardrail, scorer
/// ```
///
/// - Works on functions, `async fn`, methods (`&self`, `&mut self`, `self`, recorded as the
///   input `self`), generic functions, `impl Trait` returns, and `#[async_trait]` methods
///   (put `#[weave::op]` on the method inside the `#[async_trait]` impl).
/// - Inputs (argument name → value) and the output are recorded through `serde` when the
///   type implements `Serialize`, else as their `Debug` text, else as a placeholder naming
///   the type. No bound or derive is required. In a generic function, what is known of `T`
///   is what its bounds say: `T: Serialize` is recorded as JSON, an unbounded `T` as a
///   placeholder.
/// - A function returning `Result` records `Ok` as the output and `Err` as the exception
///   (the call fails; the error is returned unchanged). The check is by name: the return type's
///   last path segment is `Result` (`Result`, `io::Result`, `anyhow::Result`, …).
/// - A panic fails the call with the panic's message, then continues. A future dropped before
///   completion fails its call with a `Cancelled` exception.
/// - The op is saved with its source text as its code: the call's `op_name` is
///   `weave:///entity/project/op/<name>:<digest>`, and changed code is a new op version.
/// - `sample_rate` is decided where a trace starts: a sampled-out root runs with its whole
///   subtree untraced. Nested calls of a traced trace are always traced.
/// - `postprocess_*` and `display_name` functions are paths to free functions (`Self::f` is
///   not available to the generated static).
/// - Inside the op, [`current_call`] is its call; [`capture_call`] returns the result with the
///   call (Python's `op.call`).
/// - Without a process-wide client ([`init`]) and outside any call, the op is a plain
///   function call. Generated code names only `::weave`, so nothing else is needed in your
///   `Cargo.toml`.
pub use weave_macros::op;

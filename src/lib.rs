//! # weave: W&B Weave tracing for Rust
//!
//! Record every call of your LLM, tool and agent code — inputs, output, exception, timing,
//! parent, token usage — and query the calls back with the API of the Python `WeaveClient`.
//! Calls go to an embedded SQLite store by default (nothing to install), or to any Weave
//! trace server.
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

pub use weave_macros::op;

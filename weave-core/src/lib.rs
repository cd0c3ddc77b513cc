//! The core of weave-rs: the Weave data model, query language, [`WeaveClient`], [`Call`],
//! [`CallsIter`], and the [`TraceServer`] backends ([`SqliteServer`] embedded by default).
//!
//! Most users depend on the `weave` facade crate, which re-exports what is needed here.
//!
//! ```
//! use std::sync::Arc;
//! use serde_json::json;
//! use weave_core::{query::field, CallsQuery, SqliteServer, WeaveClient};
//!
//! let client = WeaveClient::new("acme", "demo", Arc::new(SqliteServer::in_memory()?), false)?;
//! let call = client.create_call("tool", json!({"city": "Paris"}))?;
//! client.fail_call(&call, "timeout".to_string())?;
//! let failed: Vec<_> = client
//!     .get_calls(CallsQuery::new().query(field("summary.weave.status").eq("error")))
//!     .collect::<Result<_, _>>()?;
//! assert_eq!(failed.len(), 1);
//! # Ok::<(), weave_core::WeaveError>(())
//! ```

#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

mod client;
pub mod config;
pub mod digest;
mod error;
pub mod genai;
mod ids;
pub mod limits;
mod own_work;
pub mod propagation;
pub mod query;
mod rand;
mod record;
mod redact;
pub mod refs;
mod report;
#[doc(hidden)]
pub mod rt;
pub mod schema;
pub mod server;
mod switch;
mod time;

pub use client::call::Call;
pub use client::calls_iter::{CallsIter, CallsQuery};
pub use client::context::{
    capture_call, capture_call_async, current_call, is_suppressed, pop_call, push_call, with_call,
    Context, WithContext,
};
pub use client::costs::{CostsQuery, DEFAULT_COSTS_LIMIT};
pub use client::exception::{Exception, IntoException, StackFrame};
pub use client::feedback::{
    FeedbackFilter, FeedbackIter, FeedbackQuery, RefFeedback, DEFAULT_FEEDBACK_LIMIT,
};
pub use client::global::{global_client, publish, set_global_client};
pub use client::objects::{sanitize_object_name, TableRef, TableRowsIter, MAX_OBJECT_NAME_CHARS};
pub use client::{
    CallOptions, DisplayName, Op, WeaveClient, EVENTS_DROPPED_KEY, EVENTS_KEY,
    MAX_DISPLAY_NAME_CHARS, REDACTED_VALUE, REDACT_KEYS,
};
pub use error::{ErrorSource, Result, WeaveError};
pub use ids::{generate_id, is_valid_call_id, is_valid_trace_id};
pub use own_work::{internal, is_internal_thread, mark_internal_thread};
pub use query::Query;
pub use record::MAX_EVENTS;
pub use schema::summary::TraceStatus;
pub use schema::Feedback;
pub use schema::{CallSchema, CallsFilter, JsonMap, SortBy, SortDirection};
pub use server::{SqliteServer, SqliteServerConfig, TraceServer};
pub use time::Timestamp;

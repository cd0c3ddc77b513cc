//! [`RemoteServer`]: a client of a Weave trace server over HTTP (PROTOCOL.md) — W&B's, a
//! self-managed one, `weave serve`, or anything speaking the protocol.
//!
//! The trait is synchronous; requests run on a small tokio runtime the SDK owns (its threads
//! are weave-internal, so nothing they do is ever traced), and the calling thread waits for the
//! answer without entering that runtime. So users never need tokio, and calling from inside
//! their own tokio runtime never panics (it blocks that worker while the request runs, as any
//! blocking call would).
//!
//! `/calls/stream_query` is consumed incrementally: the response body is read chunk by chunk
//! into a bounded channel that the [`CallsStream`](crate::server::CallsStream) iterator drains,
//! so iterating a large result never holds it all in memory.
//!
//! One role per file:
//!
//! - this file: the [`RemoteServer`] type, its state and the runtime it owns;
//! - `config.rs`: [`RemoteServerConfig`], read from the environment as the Python SDK reads it,
//!   and the URL helpers (trace server and UI bases);
//! - `netrc.rs`: the API key from `~/.netrc`;
//! - `transport.rs`: sending — running a request on the SDK's runtime, waiting for it, and
//!   retrying the idempotent routes with backoff;
//! - `errors.rs`: what a failed request means as a [`WeaveError`] (status,
//!   server's reason, `Retry-After`, transport failures);
//! - `graphql.rs`: the W&B API behind the server (default entity, creating the project);
//! - `stream.rs`: `/calls/stream_query`, read line by line into a bounded channel;
//! - `routes.rs`: the route table, `impl TraceServer`.

use std::sync::{Arc, Mutex};

use base64::Engine as _;

use crate::error::{Result, WeaveError};

mod config;
mod errors;
mod graphql;
mod netrc;
mod routes;
mod stream;
mod transport;

pub use config::{
    RemoteServerConfig, DEFAULT_HTTP_TIMEOUT, WANDB_PUBLIC_API_URL, WANDB_TRACE_SERVER_URL,
};
pub use transport::MAX_REQUEST_BYTES;

/// A Weave trace server reached over HTTP. Cheap to clone.
///
/// # Examples
///
/// ```no_run
/// use std::sync::Arc;
/// use weave_core::server::{RemoteServer, RemoteServerConfig};
/// use weave_core::WeaveClient;
///
/// let server = RemoteServer::new(RemoteServerConfig::new("http://127.0.0.1:6345"))?;
/// let client = WeaveClient::new("acme", "agents", Arc::new(server), true)?;
/// # Ok::<(), weave_core::WeaveError>(())
/// ```
#[derive(Clone)]
pub struct RemoteServer {
    inner: Arc<Inner>,
}

struct Inner {
    config: RemoteServerConfig,
    auth: Option<String>,
    http: reqwest::Client,
    runtime: Mutex<Option<tokio::runtime::Runtime>>,
    handle: tokio::runtime::Handle,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Never blocks, so dropping the last handle inside an async context is fine.
        if let Some(rt) = self
            .runtime
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            rt.shutdown_background();
        }
    }
}

impl std::fmt::Debug for RemoteServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteServer")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl RemoteServer {
    /// A client for the server `config` names. Starts the SDK's I/O runtime (two threads).
    pub fn new(config: RemoteServerConfig) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("weave-http")
            .enable_all()
            .on_thread_start(crate::own_work::mark_internal_thread)
            .build()
            .map_err(|e| {
                WeaveError::backend_caused_by(format!("could not start the HTTP runtime: {e}"), e)
            })?;
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .user_agent(concat!("weave-rs/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                WeaveError::backend_caused_by(format!("could not build the HTTP client: {e}"), e)
            })?;
        let auth = config.api_key.as_ref().map(|k| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("api:{k}"))
            )
        });
        Ok(RemoteServer {
            inner: Arc::new(Inner {
                handle: runtime.handle().clone(),
                runtime: Mutex::new(Some(runtime)),
                config,
                auth,
                http,
            }),
        })
    }

    /// The server [`RemoteServerConfig::from_env`] configures, if any.
    pub fn from_env() -> Option<Result<Self>> {
        RemoteServerConfig::from_env().map(Self::new)
    }

    /// The configuration.
    pub fn config(&self) -> &RemoteServerConfig {
        &self.inner.config
    }
}

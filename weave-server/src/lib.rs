//! A Weave trace server in Rust: the protocol of W&B Weave's trace server over any
//! [`TraceServer`], the embedded SQLite store by default. The `weave` binary of this crate
//! runs it (`weave serve`), so that the Python and TypeScript Weave SDKs can log to the same
//! local store a Rust program writes, and so that every link weave-rs prints opens something.
//!
//! The HTTP layer is thin on purpose. Each route parses its body into the request type of
//! [`weave_core::schema`], calls the backend's method on a blocking thread (the backends are
//! synchronous), and writes the answer back; what the protocol has that the trait does not
//! (`/table/update`, `/v2/…/calls/complete`, `/threads/stream_query`, …) is composed from the
//! trait's methods in [`compose`]. So the same routes can front another backend: a
//! [`weave_core::server::RemoteServer`], or a user's own [`TraceServer`].
//!
//! | module | role |
//! |---|---|
//! | [`body`] | reading request bodies: size limit (413), JSON with the failing path (422) |
//! | [`error`] | the protocol's error shapes and status codes |
//! | [`auth`] | HTTP Basic `api:<key>` when the server has a key |
//! | [`routes`] | the route table, the same under `/` and `/traces` |
//! | [`compose`] | protocol routes made of several backend calls |
//! | [`graphql`] | the few W&B GraphQL answers `weave.init` needs |
//! | [`otel`] | OTLP trace export (`/otel/v1/traces`): spans as calls |
//! | [`serve`](mod@serve) | binding, the ready line, clean shutdown |
//! | [`viewer`] | the trace viewer's pages, for a browser |
//! | [`cli`] | the `weave` command's read commands (`calls`, `trace`, `export`, …) |
//!
//! ```no_run
//! use std::sync::Arc;
//! use weave_core::SqliteServer;
//! use weave_server::{ServeOptions, Server};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let store = Arc::new(SqliteServer::open("weave.sqlite")?);
//! let server = Server::bind(store, ServeOptions::default()).await?;
//! println!("{}", server.url());
//! server.run(async { tokio::signal::ctrl_c().await.ok(); }).await?;
//! # Ok(()) }
//! ```

pub mod auth;
pub mod body;
pub mod cli;
pub mod compose;
pub mod error;
pub mod graphql;
pub mod otel;
pub mod routes;
pub mod serve;
pub mod viewer;

use std::sync::Arc;

use weave_core::TraceServer;

pub use error::ApiError;
pub use serve::{BackgroundServer, ServeError, Server};

/// The largest request body the server accepts, as the Weave server's own limit: 31 MiB.
/// Larger bodies are answered `413 {"reason": "Request too large"}` before they are read.
pub const MAX_BODY_BYTES: usize = 31 * 1024 * 1024;

/// The port `weave serve` listens on by default, the one weave-rs's call links name
/// ([`weave_core::server::sqlite::DEFAULT_LOCAL_APP_URL`]).
pub const DEFAULT_PORT: u16 = 6346;

/// The entity a bare project goes under when a client asks the server for its default
/// entity (the W&B GraphQL `viewer` query): the same as the Rust SDK's `weave::init`.
pub const DEFAULT_ENTITY: &str = "local";

/// How a server behaves. Build with [`ServeOptions::default`] and the `with_*` methods.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServeOptions {
    /// The address to bind. Anything but a loopback address needs an [`api_key`](Self::api_key).
    pub host: String,
    /// The port to bind; `0` picks a free one.
    pub port: u16,
    /// When set, every route but `/health` requires HTTP Basic `api:<key>`.
    pub api_key: Option<String>,
    /// The largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// The entity the W&B GraphQL `viewer` query answers as the default entity.
    pub default_entity: String,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            host: "127.0.0.1".into(),
            port: DEFAULT_PORT,
            api_key: None,
            max_body_bytes: MAX_BODY_BYTES,
            default_entity: DEFAULT_ENTITY.into(),
        }
    }
}

impl ServeOptions {
    /// Binds `host` (an IP address or `localhost`).
    pub fn with_host(mut self, host: impl Into<String>) -> Self {
        self.host = host.into();
        self
    }
    /// Listens on `port` (`0`: any free port).
    pub fn with_port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }
    /// Requires HTTP Basic `api:<key>` on every route but `/health`.
    pub fn with_api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }
    /// Accepts request bodies up to `bytes`.
    pub fn with_max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }
    /// Answers `entity` as the default entity of the W&B GraphQL `viewer` query.
    pub fn with_default_entity(mut self, entity: impl Into<String>) -> Self {
        self.default_entity = entity.into();
        self
    }
}

/// What every handler shares: the backend and the options.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The backend the routes serve.
    pub backend: Arc<dyn TraceServer>,
    /// The server's options.
    pub options: Arc<ServeOptions>,
}

/// The whole HTTP application over `backend`: every route, under `/` and `/traces`, with
/// authentication when `options` has a key. Serve it with [`Server`] or any axum server.
pub fn app(backend: Arc<dyn TraceServer>, options: ServeOptions) -> axum::Router {
    routes::router(AppState {
        backend,
        options: Arc::new(options),
    })
}

//! `weave::init` / `weave::finish`: one call to start tracing a program.

use std::sync::Arc;
use std::time::Duration;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::Layer;
use weave_core::config::Settings;
use weave_core::server::{RemoteServer, RemoteServerConfig};
use weave_core::{
    global_client, set_global_client, Result, SqliteServer, SqliteServerConfig, TraceServer,
    WeaveClient, WeaveError,
};
use weave_tracing::WeaveLayer;

/// How long the guard and [`finish`] wait for queued calls to be written.
pub const FINISH_TIMEOUT: Duration = Duration::from_secs(60);

/// The entity used when `init` is given a bare project name.
pub const DEFAULT_ENTITY: &str = "local";

/// Where `init` sends calls.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum Backend {
    /// The environment decides, as the Python SDK does: a remote trace server when
    /// `WF_TRACE_SERVER_URL` or `WANDB_API_KEY` is set ([`RemoteServerConfig::from_env`]), else
    /// the embedded store.
    #[default]
    Auto,
    /// The embedded SQLite store at its default location (`WEAVE_DB_PATH`, else the user's
    /// data directory).
    Embedded,
    /// A remote trace server.
    Remote(RemoteServerConfig),
    /// This backend.
    Server(Arc<dyn TraceServer>),
}

/// Options of [`init_with`]: [`InitOptions::default`] and the `with_` methods;
/// `#[non_exhaustive]`, so that options can be added without breaking callers.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct InitOptions {
    /// Where calls go.
    pub backend: Backend,
    /// Whether to install [`layer()`] as the global `tracing` subscriber when no global
    /// subscriber is set yet (default true). With your own subscriber, add [`layer()`] to it.
    pub install_subscriber: bool,
    /// Settings; default: from the environment. [`Backend::Auto`] picks the remote server
    /// from them, and a bare project name takes their `entity` (`WANDB_ENTITY`).
    pub settings: Settings,
}

impl Default for InitOptions {
    fn default() -> Self {
        InitOptions {
            backend: Backend::Auto,
            install_subscriber: true,
            settings: Settings::from_env(),
        }
    }
}

impl InitOptions {
    /// Sets where calls go.
    pub fn with_backend(mut self, backend: Backend) -> Self {
        self.backend = backend;
        self
    }

    /// Sets whether `init` installs [`layer()`] as the global subscriber when none is set.
    pub fn with_install_subscriber(mut self, install: bool) -> Self {
        self.install_subscriber = install;
        self
    }

    /// Sets the settings (default: from the environment).
    pub fn with_settings(mut self, settings: Settings) -> Self {
        self.settings = settings;
        self
    }
}

/// Flushes (and stops tracing) when dropped; returned by [`init`]. Keep it alive for as long
/// as the program traces: `let (client, _guard) = weave::init(…)?;` — not `let _ = …`, which
/// drops it at once.
#[must_use = "dropping the guard stops tracing: bind it with `let _guard = …`"]
#[derive(Debug)]
pub struct WeaveGuard {
    client: Option<WeaveClient>,
}

impl WeaveGuard {
    /// The client this guard flushes (`None` when tracing is disabled).
    pub fn client(&self) -> Option<&WeaveClient> {
        self.client.as_ref()
    }
}

impl Drop for WeaveGuard {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            finish_client(&client);
        }
    }
}

/// Starts tracing to `"entity/project"` (or a bare `"project"`) — Python's `weave.init`.
/// Returns the client, for queries, and a guard that flushes when dropped.
///
/// - A bare project goes under `WANDB_ENTITY`, else — on a server with W&B behind it (an API
///   key is known) — the key's default entity, as in Python, else [`DEFAULT_ENTITY`]. With
///   W&B behind the server, the project is created if it does not exist.
/// - The backend is a remote trace server when the environment configures one
///   (`WF_TRACE_SERVER_URL`, `WANDB_API_KEY`; see [`Backend::Auto`]), else the embedded
///   SQLite store.
/// - The client becomes the process-wide one that root `#[weave::op]` calls and root spans
///   use.
/// - [`layer()`] is installed as the global `tracing` subscriber, unless a global subscriber
///   is already set; then add [`layer()`] to yours (see [`layer()`]). Set up your own
///   subscriber *before* `init` — or pass `install_subscriber: false` — since `tracing`
///   allows one global subscriber and `.init()` of a second one panics.
/// - With `WEAVE_DISABLED=true` (or `settings.disabled`) nothing is traced, for the rest of
///   the process: the client returned is backed by an empty in-memory store, no process-wide
///   client is set, no subscriber is installed.
///
/// # Examples
///
/// ```
/// # std::env::set_var("WEAVE_DB_PATH", ":memory:");
/// #[weave::op]
/// fn add(a: u64, b: u64) -> u64 {
///     a + b
/// }
///
/// let (client, guard) = weave::init("acme/demo")?;
/// assert_eq!(add(1, 2), 3);
/// drop(guard); // flushes; ops are plain functions again
/// let call = client.get_calls(weave::CallsQuery::new()).next().unwrap()?;
/// assert_eq!(call.func_name(), "add");
/// assert_eq!(call.output(), serde_json::json!(3));
/// # Ok::<(), weave::WeaveError>(())
/// ```
pub fn init(project: &str) -> Result<(WeaveClient, WeaveGuard)> {
    init_with(project, InitOptions::default())
}

/// [`init`] with explicit [`InitOptions`].
pub fn init_with(project: &str, opts: InitOptions) -> Result<(WeaveClient, WeaveGuard)> {
    let (explicit_entity, project) = match project.split_once('/') {
        Some((e, p)) => (Some(e.to_string()), p.to_string()),
        None => (opts.settings.entity.clone(), project.to_string()),
    };
    if project.contains('/') {
        return Err(WeaveError::InvalidInput(format!(
            "project {:?} must be \"entity/project\" or \"project\"",
            format!("{}/{project}", explicit_entity.unwrap_or_default())
        )));
    }
    let entity = explicit_entity
        .clone()
        .unwrap_or_else(|| DEFAULT_ENTITY.to_string());
    let mut settings = opts.settings;
    if settings.disabled {
        weave_core::rt::disable();
        let client = WeaveClient::with_settings(
            entity,
            project,
            Arc::new(SqliteServer::in_memory()?),
            false,
            &settings,
        )?;
        return Ok((client, WeaveGuard { client: None }));
    }
    let (server, entity): (Arc<dyn TraceServer>, String) = match opts.backend {
        Backend::Server(s) => (s, entity),
        Backend::Embedded => (embedded(&settings)?, entity),
        Backend::Remote(config) => remote(config, explicit_entity, &project, &mut settings)?,
        Backend::Auto => match RemoteServerConfig::from_settings(&settings) {
            Some(config) => remote(config, explicit_entity, &project, &mut settings)?,
            None => (embedded(&settings)?, entity),
        },
    };
    let client = WeaveClient::with_settings(entity, project, server, true, &settings)?;
    set_global_client(Some(client.clone()));
    if opts.install_subscriber {
        // The level as a per-layer filter too, so that the DEBUG/TRACE callsites of libraries
        // are disabled outright rather than dispatched and ignored.
        let subscriber = tracing_subscriber::registry()
            .with(WeaveLayer::new().with_filter(tracing_subscriber::filter::LevelFilter::INFO));
        // Fails when the program already set one: then it composes weave::layer() itself.
        let _ = tracing::subscriber::set_global_default(subscriber);
    }
    Ok((
        client.clone(),
        WeaveGuard {
            client: Some(client),
        },
    ))
}

fn embedded(settings: &Settings) -> Result<Arc<dyn TraceServer>> {
    Ok(Arc::new(SqliteServer::with_config(
        SqliteServerConfig::from_settings(settings),
    )?))
}

/// The remote backend, and the entity to use. With a W&B API behind the server
/// ([`RemoteServerConfig::wandb_api_url`], i.e. an API key), as the Python SDK does: a bare
/// project goes under the key's default entity, and the project is created if it does not
/// exist. Not knowing the entity is an error; failing to create the project is reported
/// and tracing goes on (the server then refuses or accepts the calls, and the writer says so).
fn remote(
    config: RemoteServerConfig,
    entity: Option<String>,
    project: &str,
    settings: &mut Settings,
) -> Result<(Arc<dyn TraceServer>, String)> {
    // As in Python, a remote client prints each root call's link unless told not to.
    settings.print_call_link.get_or_insert(true);
    let wandb = config.wandb_api_url.is_some();
    let http = RemoteServer::new(config)?;
    let entity = match entity {
        Some(e) => e,
        None if wandb => http.wandb_default_entity()?,
        None => DEFAULT_ENTITY.to_string(),
    };
    if wandb {
        if let Err(e) = http.wandb_ensure_project(&entity, project) {
            eprintln!("weave: could not make sure project {entity}/{project} exists: {e}");
        }
    }
    Ok((Arc::new(http), entity))
}

/// Stops tracing (Python's `weave.finish`): waits up to [`FINISH_TIMEOUT`] for queued calls
/// to be written and clears the process-wide client, so ops run untraced from here on.
/// The guard of [`init`] does this when dropped.
pub fn finish() {
    if let Some(client) = global_client() {
        finish_client(&client);
    }
}

fn finish_client(client: &WeaveClient) {
    if let Some(current) = global_client() {
        if current.same_client(client) {
            set_global_client(None);
        }
    }
    if !client.flush_timeout(FINISH_TIMEOUT) {
        eprintln!(
            "weave: calls were still being written after {}s; some may be lost",
            FINISH_TIMEOUT.as_secs()
        );
    }
}

/// The `tracing` layer that turns spans into calls, to add to your own subscriber. Root
/// spans use the process-wide client ([`init`]).
///
/// # Examples
///
/// With a `fmt` layer and an `EnvFilter` narrowing what weave records (the `fmt` and
/// `env-filter` features of `tracing-subscriber`):
///
/// ```ignore
/// use tracing_subscriber::{prelude::*, EnvFilter};
/// tracing_subscriber::registry()
///     .with(tracing_subscriber::fmt::layer())
///     .with(weave::layer().with_filter(EnvFilter::new("my_app=info")))
///     .init();
/// let (_client, _guard) = weave::init_with("acme/app", weave::InitOptions {
///     install_subscriber: false,
///     ..Default::default()
/// })?;
/// ```
///
/// Beside `tracing-opentelemetry`, both layers see the same spans: add
/// `.with(tracing_opentelemetry::layer().with_tracer(tracer))` to the same registry.
pub fn layer() -> WeaveLayer {
    WeaveLayer::new()
}

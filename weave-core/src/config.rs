//! Settings read from the environment, in one place.
//!
//! Names and meanings follow the Python SDK where it has them.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `WEAVE_DB_PATH` | the embedded store's file (`:memory:` for memory) | see [`Settings::db_path`] |
//! | `WEAVE_LOCAL_APP_URL` | base URL of call links for the embedded store | `http://127.0.0.1:6346` |
//! | `WEAVE_MAX_CALLS_QUEUE_SIZE` | bound of the background write queue (`0` = 1,000,000) | `100000` |
//! | `WEAVE_CALLS_PAGE_SIZE` | page size of [`crate::CallsIter`] | `1000` |
//! | `WEAVE_DISABLED` | `true` turns tracing off: ops run as plain functions, spans are ignored | `false` |
//! | `WEAVE_PRINT_CALL_LINK` | print each root call's link on stderr when it starts | `false` for the embedded store, `true` for a remote server (via `weave::init`) |
//! | `WF_TRACE_SERVER_URL` | the remote trace server (makes `weave::init` go remote) | see [`crate::server::RemoteServerConfig::from_env`] |
//! | `WANDB_API_KEY` | the W&B API key (makes `weave::init` go remote); else `~/.netrc` | none |
//! | `WANDB_BASE_URL` / `WANDB_APP_URL` | W&B API and UI bases for a dedicated install | `https://api.wandb.ai` |
//! | `WEAVE_HTTP_TIMEOUT` | seconds per HTTP request | `30` |
//! | `WANDB_ENTITY` | the entity of a bare project name given to `weave::init` | the API key's default entity |
//! | `NO_COLOR` | set and not empty: the `weave` CLI prints without colour | unset |
//! | `HOME` / `USERPROFILE` | where `~/.netrc` (`_netrc`) is looked for | none |
//! | `XDG_DATA_HOME` / `LOCALAPPDATA` | where the embedded store's default file goes | see [`Settings::db_path`] |
//! | `TRACEPARENT` / `TRACESTATE` | the trace context a parent process handed this one (read by [`trace_context_env`] when asked) | unset |
//!
//! `weave serve --api-key` also takes `WEAVE_SERVER_API_KEY`, declared with the command's
//! arguments (clap reads it).
//!
//! No other module of the SDK reads the environment: each takes what it needs from
//! [`Settings`] (or, for the remote backend, from
//! [`RemoteServerConfig::from_settings`](crate::server::RemoteServerConfig::from_settings)).

use std::path::PathBuf;
use std::time::Duration;

/// The local UI base URL used for call links of the embedded store (a local viewer serves
/// the same `/{entity}/{project}/r/call/{id}` paths as the W&B app).
pub const DEFAULT_LOCAL_APP_URL: &str = "http://127.0.0.1:6346";

/// Settings from the environment. Build with [`Settings::from_env`] (or
/// [`Settings::default`], which ignores the environment) and change fields with the `with_`
/// methods; `#[non_exhaustive]`, so that settings can be added without breaking callers.
///
/// ```
/// use weave_core::config::Settings;
///
/// let settings = Settings::default().with_max_calls_queue_size(10).with_disabled(true);
/// assert_eq!(settings.max_calls_queue_size, 10);
/// ```
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Settings {
    /// `WEAVE_DB_PATH`.
    pub db_path: Option<String>,
    /// `WEAVE_LOCAL_APP_URL`.
    pub local_app_url: Option<String>,
    /// `WEAVE_MAX_CALLS_QUEUE_SIZE`.
    pub max_calls_queue_size: usize,
    /// `WEAVE_CALLS_PAGE_SIZE`.
    pub calls_page_size: u64,
    /// `WEAVE_DISABLED`: tracing is off.
    pub disabled: bool,
    /// `WEAVE_PRINT_CALL_LINK`, when set.
    pub print_call_link: Option<bool>,
    /// `WF_TRACE_SERVER_URL`: the remote trace server.
    pub trace_server_url: Option<String>,
    /// `WANDB_API_KEY` (never printed by `Debug`).
    pub api_key: Option<String>,
    /// `WANDB_BASE_URL`: the W&B API of a dedicated install.
    pub wandb_base_url: Option<String>,
    /// `WANDB_APP_URL`: the W&B UI of a dedicated install.
    pub wandb_app_url: Option<String>,
    /// `WEAVE_HTTP_TIMEOUT`: the per-request timeout of the remote backend (finite, positive).
    pub http_timeout: Option<Duration>,
    /// `WANDB_ENTITY`: the entity of a bare project name.
    pub entity: Option<String>,
    /// `HOME`, else `USERPROFILE`: where `.netrc` is looked for.
    pub home: Option<PathBuf>,
    /// `NO_COLOR` set and not empty (<https://no-color.org>): the `weave` CLI prints plain
    /// text.
    pub no_color: bool,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("db_path", &self.db_path)
            .field("local_app_url", &self.local_app_url)
            .field("max_calls_queue_size", &self.max_calls_queue_size)
            .field("calls_page_size", &self.calls_page_size)
            .field("disabled", &self.disabled)
            .field("print_call_link", &self.print_call_link)
            .field("trace_server_url", &self.trace_server_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<set>"))
            .field("wandb_base_url", &self.wandb_base_url)
            .field("wandb_app_url", &self.wandb_app_url)
            .field("http_timeout", &self.http_timeout)
            .field("entity", &self.entity)
            .field("home", &self.home)
            .field("no_color", &self.no_color)
            .finish()
    }
}

/// Default bound of the background write queue.
pub const DEFAULT_QUEUE_SIZE: usize = 100_000;
/// Default page size of calls iterators, as in the Python SDK.
pub const DEFAULT_PAGE_SIZE: u64 = 1000;

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// A variable's value without surrounding blanks (`None` when unset or blank).
fn env_trimmed(name: &str) -> Option<String> {
    env(name).map(|v| v.trim().to_string())
}

/// Python's reading of boolean variables: `true`, `1`, `yes` and `on` (any case) are true.
fn truthy(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "true" | "1" | "yes" | "on"
    )
}

impl Default for Settings {
    /// The defaults, ignoring the environment.
    fn default() -> Self {
        Settings {
            db_path: None,
            local_app_url: None,
            max_calls_queue_size: DEFAULT_QUEUE_SIZE,
            calls_page_size: DEFAULT_PAGE_SIZE,
            disabled: false,
            print_call_link: None,
            trace_server_url: None,
            api_key: None,
            wandb_base_url: None,
            wandb_app_url: None,
            http_timeout: None,
            entity: None,
            home: None,
            no_color: false,
        }
    }
}

impl Settings {
    /// Reads the environment. Unparsable numbers fall back to the defaults.
    pub fn from_env() -> Self {
        Settings {
            db_path: env("WEAVE_DB_PATH"),
            local_app_url: env("WEAVE_LOCAL_APP_URL"),
            max_calls_queue_size: match env("WEAVE_MAX_CALLS_QUEUE_SIZE")
                .and_then(|v| v.trim().parse::<usize>().ok())
            {
                Some(0) => 1_000_000,
                Some(n) => n,
                None => DEFAULT_QUEUE_SIZE,
            },
            calls_page_size: env("WEAVE_CALLS_PAGE_SIZE")
                .and_then(|v| v.trim().parse().ok())
                .filter(|n| *n > 0)
                .unwrap_or(DEFAULT_PAGE_SIZE),
            disabled: env("WEAVE_DISABLED").is_some_and(|v| truthy(&v)),
            print_call_link: env("WEAVE_PRINT_CALL_LINK").map(|v| truthy(&v)),
            trace_server_url: env_trimmed("WF_TRACE_SERVER_URL"),
            api_key: env_trimmed("WANDB_API_KEY"),
            wandb_base_url: env_trimmed("WANDB_BASE_URL"),
            wandb_app_url: env_trimmed("WANDB_APP_URL"),
            http_timeout: env_trimmed("WEAVE_HTTP_TIMEOUT")
                .and_then(|t| t.parse::<f64>().ok())
                .filter(|t| t.is_finite() && *t > 0.0)
                .map(Duration::from_secs_f64),
            entity: env_trimmed("WANDB_ENTITY"),
            home: env_trimmed("HOME")
                .or_else(|| env_trimmed("USERPROFILE"))
                .map(PathBuf::from),
            no_color: std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()),
        }
    }

    /// Sets [`Settings::db_path`] (`":memory:"` for an in-memory store).
    pub fn with_db_path(mut self, path: Option<String>) -> Self {
        self.db_path = path;
        self
    }

    /// Sets [`Settings::local_app_url`].
    pub fn with_local_app_url(mut self, url: Option<String>) -> Self {
        self.local_app_url = url;
        self
    }

    /// Sets [`Settings::max_calls_queue_size`].
    pub fn with_max_calls_queue_size(mut self, n: usize) -> Self {
        self.max_calls_queue_size = n;
        self
    }

    /// Sets [`Settings::calls_page_size`].
    pub fn with_calls_page_size(mut self, n: u64) -> Self {
        self.calls_page_size = n;
        self
    }

    /// Sets [`Settings::disabled`].
    pub fn with_disabled(mut self, disabled: bool) -> Self {
        self.disabled = disabled;
        self
    }

    /// Sets [`Settings::print_call_link`].
    pub fn with_print_call_link(mut self, print: Option<bool>) -> Self {
        self.print_call_link = print;
        self
    }

    /// The embedded store's file: `WEAVE_DB_PATH` (`None` for `:memory:`), else
    /// `$XDG_DATA_HOME/weave/weave.sqlite`, else `$HOME/.local/share/weave/weave.sqlite`
    /// (`%LOCALAPPDATA%\weave\weave.sqlite` on Windows), else `./.weave/weave.sqlite`.
    pub fn db_path(&self) -> Option<PathBuf> {
        if let Some(p) = &self.db_path {
            return if p == ":memory:" {
                None
            } else {
                Some(PathBuf::from(p))
            };
        }
        let dir = env("XDG_DATA_HOME")
            .map(PathBuf::from)
            .or_else(|| {
                if cfg!(windows) {
                    env("LOCALAPPDATA").map(PathBuf::from)
                } else {
                    None
                }
            })
            .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".local").join("share")))
            .unwrap_or_else(|| PathBuf::from("."));
        let folder = if dir == std::path::Path::new(".") {
            ".weave"
        } else {
            "weave"
        };
        Some(dir.join(folder).join("weave.sqlite"))
    }

    /// The base URL of call links for the embedded store.
    pub fn local_app_url(&self) -> String {
        self.local_app_url
            .clone()
            .unwrap_or_else(|| DEFAULT_LOCAL_APP_URL.to_string())
            .trim_end_matches('/')
            .to_string()
    }
}

/// The trace context a parent process put in this one's environment: `TRACEPARENT` and
/// `TRACESTATE` (W3C Trace Context values, the names OpenTelemetry uses for environment
/// carriers). Read when asked — by `weave::propagation::TraceContext::from_env` — not with
/// [`Settings`]: a process continues its parent's trace only where it says so.
pub fn trace_context_env() -> (Option<String>, Option<String>) {
    (env_trimmed("TRACEPARENT"), env_trimmed("TRACESTATE"))
}

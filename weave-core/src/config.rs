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

use std::path::PathBuf;

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
#[derive(Debug, Clone, PartialEq, Eq)]
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
}

/// Default bound of the background write queue.
pub const DEFAULT_QUEUE_SIZE: usize = 100_000;
/// Default page size of calls iterators, as in the Python SDK.
pub const DEFAULT_PAGE_SIZE: u64 = 1000;

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
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

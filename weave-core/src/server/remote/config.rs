//! Configuration: where the remote server is and how to reach it ([`RemoteServerConfig`]), read
//! from the environment as the Python SDK reads it ([`RemoteServerConfig::from_env`]), and the
//! URL helpers that derive the UI's base (and the `~/.netrc` machine) from a server's or W&B's
//! URL.

use std::time::Duration;

use super::netrc::netrc_password;
use crate::config::Settings;

/// The public W&B trace server.
pub const WANDB_TRACE_SERVER_URL: &str = "https://trace.wandb.ai";
/// W&B's public API, the default `WANDB_BASE_URL`.
pub const WANDB_PUBLIC_API_URL: &str = "https://api.wandb.ai";
/// The per-request timeout unless `WEAVE_HTTP_TIMEOUT` (seconds) says otherwise.
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Where and how to reach a trace server: [`RemoteServerConfig::new`] or
/// [`RemoteServerConfig::from_env`], then the `with_` methods; `#[non_exhaustive]`, so that
/// options can be added without breaking callers.
///
/// ```
/// use std::time::Duration;
/// use weave_core::server::RemoteServerConfig;
///
/// let config = RemoteServerConfig::new("http://127.0.0.1:6346/")
///     .with_api_key("secret")
///     .with_timeout(Duration::from_secs(5));
/// assert_eq!(config.base_url, "http://127.0.0.1:6346");
/// ```
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RemoteServerConfig {
    /// The base URL; route paths are appended to it (`{base}/call/start`).
    pub base_url: String,
    /// The W&B API key, sent as HTTP Basic `api:<key>`.
    pub api_key: Option<String>,
    /// Base of the UI links (`{app_url}/{entity}/{project}/r/call/{id}`).
    pub app_url: String,
    /// Per-request timeout.
    pub timeout: Duration,
    /// The W&B API (`{wandb_api_url}/graphql`) that owns entities and projects: set by
    /// [`RemoteServerConfig::from_env`] when an API key is known (`WANDB_BASE_URL`, else
    /// `https://api.wandb.ai`), so that `weave::init` can resolve a bare project's entity
    /// and create the project, as the Python SDK does. `None`: no W&B behind the server.
    pub wandb_api_url: Option<String>,
    /// How many `/call/upsert_batch` requests the background writer keeps in flight (see
    /// [`TraceServer::concurrent_call_batches`](crate::server::TraceServer::concurrent_call_batches)).
    /// `None` (the default): asked of the server once — 2 when its `/server_info` says
    /// `call_batches_in_any_order` (`weave serve` does), else 1, in order.
    pub concurrent_call_batches: Option<usize>,
}

impl std::fmt::Debug for RemoteServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteServerConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<set>"))
            .field("app_url", &self.app_url)
            .field("timeout", &self.timeout)
            .field("wandb_api_url", &self.wandb_api_url)
            .field("concurrent_call_batches", &self.concurrent_call_batches)
            .finish()
    }
}

impl RemoteServerConfig {
    /// A server at `base_url`, without credentials.
    pub fn new(base_url: impl Into<String>) -> Self {
        let base_url = base_url.into().trim_end_matches('/').to_string();
        RemoteServerConfig {
            app_url: app_url_for(&base_url),
            base_url,
            api_key: None,
            timeout: DEFAULT_HTTP_TIMEOUT,
            wandb_api_url: None,
            concurrent_call_batches: None,
        }
    }

    /// Sets the API key, sent as HTTP Basic `api:<key>`.
    pub fn with_api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// Sets the base of UI links.
    pub fn with_app_url(mut self, url: impl Into<String>) -> Self {
        self.app_url = url.into().trim_end_matches('/').to_string();
        self
    }

    /// Sets the per-request timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the W&B API that owns entities and projects (see the field).
    pub fn with_wandb_api_url(mut self, url: Option<String>) -> Self {
        self.wandb_api_url = url;
        self
    }

    /// Sets how many `/call/upsert_batch` requests may be in flight (see the field).
    pub fn with_concurrent_call_batches(mut self, n: Option<usize>) -> Self {
        self.concurrent_call_batches = n;
        self
    }

    /// The remote server the environment configures, as the Python SDK reads it, or `None`
    /// when neither `WF_TRACE_SERVER_URL` nor an API key (`WANDB_API_KEY`) is set.
    ///
    /// - Base URL: `WF_TRACE_SERVER_URL`; else `<WANDB_BASE_URL>/traces` when `WANDB_BASE_URL`
    ///   is not W&B's public API; else `https://trace.wandb.ai`.
    /// - Key: `WANDB_API_KEY`, else the `~/.netrc` (`~/_netrc`) password of the
    ///   `WANDB_BASE_URL` host (`api.wandb.ai` by default).
    /// - UI links: `WANDB_APP_URL`, else derived from `WANDB_BASE_URL` (`api.` → app host).
    /// - Timeout: `WEAVE_HTTP_TIMEOUT` seconds (default 30).
    pub fn from_env() -> Option<Self> {
        Self::from_settings(&Settings::from_env())
    }

    /// The remote server `settings` configure: [`RemoteServerConfig::from_env`] over settings
    /// read once (or built by hand, as tests do).
    pub fn from_settings(settings: &Settings) -> Option<Self> {
        let explicit = settings.trace_server_url.clone();
        let key_env = settings.api_key.clone();
        if explicit.is_none() && key_env.is_none() {
            return None;
        }
        let wandb_base = settings
            .wandb_base_url
            .clone()
            .unwrap_or_else(|| WANDB_PUBLIC_API_URL.to_string())
            .trim_end_matches('/')
            .to_string();
        let base_url = explicit.unwrap_or_else(|| {
            if wandb_base == WANDB_PUBLIC_API_URL {
                WANDB_TRACE_SERVER_URL.to_string()
            } else {
                format!("{wandb_base}/traces")
            }
        });
        let mut cfg = RemoteServerConfig::new(base_url);
        cfg.api_key = key_env.or_else(|| {
            settings
                .home
                .as_deref()
                .and_then(|home| netrc_password(home, host_of(&wandb_base)))
        });
        cfg.wandb_api_url = cfg.api_key.as_ref().map(|_| wandb_base.clone());
        cfg.app_url = settings
            .wandb_app_url
            .as_deref()
            .map(|u| u.trim_end_matches('/').to_string())
            .unwrap_or_else(|| {
                if settings.trace_server_url.is_some() && settings.wandb_base_url.is_none() {
                    app_url_for(&cfg.base_url)
                } else {
                    app_url_for(&wandb_base)
                }
            });
        if let Some(t) = settings.http_timeout {
            cfg.timeout = t;
        }
        Some(cfg)
    }
}

pub(super) fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host_port = rest.split('/').next().unwrap_or(rest);
    host_port.split(':').next().unwrap_or(host_port)
}

/// The UI base for a server or API URL, as the wandb SDK's `app_url` helper derives it.
fn app_url_for(url: &str) -> String {
    let url = url.trim_end_matches('/');
    let url = url.strip_suffix("/traces").unwrap_or(url);
    if url == WANDB_TRACE_SERVER_URL {
        return "https://wandb.ai".to_string();
    }
    if url.contains("://api.wandb.") {
        return url.replacen("://api.", "://", 1);
    }
    if url.contains("://api.") {
        return url.replacen("://api.", "://app.", 1);
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_urls_follow_the_wandb_helper() {
        assert_eq!(app_url_for("https://trace.wandb.ai"), "https://wandb.ai");
        assert_eq!(app_url_for("https://api.wandb.ai"), "https://wandb.ai");
        assert_eq!(
            app_url_for("https://api.acme.example/traces"),
            "https://app.acme.example"
        );
        assert_eq!(
            app_url_for("http://127.0.0.1:6345"),
            "http://127.0.0.1:6345"
        );
    }

    #[test]
    fn hosts_are_the_urls_host_without_port() {
        assert_eq!(host_of("https://api.wandb.ai:443/x"), "api.wandb.ai");
    }
}

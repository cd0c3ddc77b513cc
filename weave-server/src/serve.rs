//! Binding, serving, and stopping cleanly.
//!
//! [`Server::bind`] refuses to expose a server without a key: binding anything but a loopback
//! address needs [`ServeOptions::api_key`](crate::ServeOptions::api_key). [`Server::run`]
//! serves until its shutdown future completes, then stops accepting, lets the requests in
//! flight finish (each write is committed before it is answered, so nothing acknowledged is
//! lost) and returns. [`BackgroundServer`] runs one on a thread of its own, for tests and for
//! programs that want a viewer on their own store.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use weave_core::TraceServer;

use crate::{app, ServeOptions};

/// Why a server could not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServeError {
    /// The host is not a loopback address and the server has no API key.
    Exposed {
        /// The host asked for.
        host: String,
    },
    /// The host is neither an IP address nor `localhost`.
    BadHost {
        /// The host asked for.
        host: String,
    },
    /// The address could not be bound (in use, not permitted, …).
    Bind {
        /// The address.
        addr: SocketAddr,
        /// What the system said.
        source: std::io::Error,
    },
    /// Serving failed.
    Io(std::io::Error),
}

impl std::fmt::Display for ServeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServeError::Exposed { host } => write!(
                f,
                "refusing to serve on {host} without an API key: anyone who can reach it could \
                 read and write the store. Pass --api-key KEY (or set WEAVE_SERVER_API_KEY), or \
                 bind 127.0.0.1"
            ),
            ServeError::BadHost { host } => write!(
                f,
                "--host {host:?} is not an IP address (e.g. 127.0.0.1, ::1, 0.0.0.0) or localhost"
            ),
            ServeError::Bind { addr, source } => write!(f, "cannot listen on {addr}: {source}"),
            ServeError::Io(e) => write!(f, "serving failed: {e}"),
        }
    }
}

impl std::error::Error for ServeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ServeError::Bind { source, .. } | ServeError::Io(source) => Some(source),
            _ => None,
        }
    }
}

/// The address `host` names: an IP address, or `localhost` (127.0.0.1).
pub fn resolve_host(host: &str) -> Result<IpAddr, ServeError> {
    let h = host.trim().trim_start_matches('[').trim_end_matches(']');
    if h.eq_ignore_ascii_case("localhost") {
        return Ok(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    h.parse().map_err(|_| ServeError::BadHost {
        host: host.to_string(),
    })
}

/// The base URL to reach a server listening on `addr`: an unspecified address (`0.0.0.0`,
/// `::`) is where it listens, not one to connect to, so it becomes loopback; IPv6 is
/// bracketed.
pub fn base_url(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(v) if v.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v) if v.is_unspecified() => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, addr.port()))
}

/// A bound server, not yet serving.
#[derive(Debug)]
pub struct Server {
    listener: tokio::net::TcpListener,
    backend: Arc<dyn TraceServer>,
    options: ServeOptions,
    addr: SocketAddr,
}

impl Server {
    /// Binds the address of `options` for `backend`.
    pub async fn bind(
        backend: Arc<dyn TraceServer>,
        options: ServeOptions,
    ) -> Result<Server, ServeError> {
        let ip = resolve_host(&options.host)?;
        if !ip.is_loopback() && options.api_key.is_none() {
            return Err(ServeError::Exposed {
                host: options.host.clone(),
            });
        }
        let addr = SocketAddr::new(ip, options.port);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Bind { addr, source })?;
        let addr = listener.local_addr().map_err(ServeError::Io)?;
        Ok(Server {
            listener,
            backend,
            options,
            addr,
        })
    }

    /// The address it listens on (with the port chosen when `0` was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its base URL, e.g. `http://127.0.0.1:6346`.
    pub fn url(&self) -> String {
        base_url(self.addr)
    }

    /// Serves until `shutdown` completes, then lets the requests in flight finish.
    pub async fn run<F>(self, shutdown: F) -> Result<(), ServeError>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        use axum::serve::ListenerExt;
        let app = app(self.backend, self.options);
        // Answers go out as soon as they are written (no Nagle delay behind a small write).
        let listener = self.listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(ServeError::Io)
    }
}

/// A server on a thread and runtime of its own; stopped (cleanly) when dropped.
#[derive(Debug)]
pub struct BackgroundServer {
    url: String,
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BackgroundServer {
    /// Binds and starts serving `backend`; returns once it accepts connections.
    pub fn start(
        backend: Arc<dyn TraceServer>,
        options: ServeOptions,
    ) -> Result<BackgroundServer, ServeError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("weave-serve")
            .enable_all()
            .build()
            .map_err(ServeError::Io)?;
        let server = rt.block_on(Server::bind(backend, options))?;
        let (url, addr) = (server.url(), server.local_addr());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("weave-serve".into())
            .spawn(move || {
                let result = rt.block_on(server.run(async {
                    let _ = stopped.await;
                }));
                if let Err(e) = result {
                    eprintln!("weave serve: {e}");
                }
            })
            .map_err(ServeError::Io)?;
        Ok(BackgroundServer {
            url,
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Its base URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops it and waits until the requests in flight are answered.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for BackgroundServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

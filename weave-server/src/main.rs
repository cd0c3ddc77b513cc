//! The `weave` command: `weave serve` runs a Weave trace server over the embedded store;
//! `projects`, `calls`, `trace`, `call`, `tail` and `export` show what a store or a server
//! holds (see `weave_server::cli`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use weave_core::{SqliteServer, SqliteServerConfig};
use weave_server::cli::{self, CliError, Source, Style};
use weave_server::{ServeOptions, Server, DEFAULT_PORT};

/// weave-rs: W&B Weave tracing with a local store.
#[derive(Debug, Parser)]
#[command(name = "weave", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve a store over the Weave trace server protocol (for the Weave SDKs, and the links
    /// weave-rs prints).
    Serve(ServeArgs),
    /// List the projects, with their call counts and latest activity.
    Projects {
        #[command(flatten)]
        source: Source,
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// List a project's calls, the newest first.
    Calls(cli::CallsArgs),
    /// Show a call's trace as a tree.
    Trace(cli::TraceArgs),
    /// Show everything about one call.
    Call(cli::CallArgs),
    /// Print new calls as they start, until interrupted.
    Tail(cli::TailArgs),
    /// Write a project's calls to a file (JSON lines or CSV), streaming.
    Export(cli::ExportArgs),
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// The store: a SQLite file, created if missing. Default: the store the SDK writes
    /// ($WEAVE_DB_PATH, else $XDG_DATA_HOME/weave/weave.sqlite or ~/.local/share/weave/weave.sqlite).
    #[arg(long, value_name = "PATH")]
    db: Option<PathBuf>,
    /// The address to listen on. Anything but a loopback address needs --api-key.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// The port to listen on (0: any free port).
    #[arg(long, default_value_t = DEFAULT_PORT)]
    port: u16,
    /// Require HTTP Basic api:KEY on every route but /health (the Weave SDKs send
    /// WANDB_API_KEY that way).
    #[arg(
        long,
        env = "WEAVE_SERVER_API_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    api_key: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let style = Style::detect();
    let result = match cli.command {
        Command::Serve(args) => return serve(args),
        Command::Projects { source, json } => cli::projects(&source, json, &style),
        Command::Calls(args) => cli::calls(&args, &style),
        Command::Trace(args) => cli::trace(&args, &style),
        Command::Call(args) => cli::call(&args, &style),
        Command::Tail(args) => cli::tail(&args, &style),
        Command::Export(args) => cli::export(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`weave calls | head`) is how a reader says it has enough.
        Err(CliError { message, .. }) if message.contains("Broken pipe") => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("weave: {}", e.message);
            ExitCode::from(e.code)
        }
    }
}

fn serve(args: ServeArgs) -> ExitCode {
    let path = args.db.clone().or_else(SqliteServer::default_path);
    let store = match open_store(path.clone(), &args) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("weave serve: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut options = ServeOptions::default()
        .with_host(args.host.clone())
        .with_port(args.port);
    if let Some(key) = args.api_key.filter(|k| !k.is_empty()) {
        options = options.with_api_key(key);
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("weave serve: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
        let server = Server::bind(store.clone(), options).await?;
        let store_name = match &path {
            Some(p) => p.display().to_string(),
            None => "in memory".into(),
        };
        println!(
            "weave serve: listening on {} (store: {store_name})",
            server.url()
        );
        server.run(shutdown_signal()).await
    });
    // Every request was answered after its write committed; fold the WAL into the file so the
    // store is whole on its own.
    if let Err(e) = store.checkpoint() {
        eprintln!("weave serve: checkpoint at shutdown failed: {e}");
    }
    match result {
        Ok(()) => {
            eprintln!("weave serve: stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("weave serve: {e}");
            ExitCode::from(2)
        }
    }
}

fn open_store(path: Option<PathBuf>, args: &ServeArgs) -> weave_core::Result<SqliteServer> {
    let mut config = SqliteServerConfig::default().with_path(path);
    // Links in what the store answers point at this server.
    if args.port != 0 {
        if let Ok(ip) = weave_server::serve::resolve_host(&args.host) {
            config.app_url =
                weave_server::serve::base_url(std::net::SocketAddr::new(ip, args.port));
        }
    }
    SqliteServer::with_config(config)
}

/// Ctrl-C, or SIGTERM on Unix.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    eprintln!("weave serve: stopping (finishing the requests in flight)");
}

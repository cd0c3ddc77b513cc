//! The `weave` command's commands for looking at what was recorded: `projects`, `calls`,
//! `trace`, `call`, `tail` and `export`.
//!
//! They read through a [`TraceServer`] — the embedded store by default (the file the SDK
//! writes, or `--db`), or a Weave trace server (`--server`, or `WF_TRACE_SERVER_URL`) — so
//! they show what any backend holds, the same way.
//!
//! - Output is for people by default (aligned tables, trees; colours only on a terminal and
//!   without `NO_COLOR`), and for scripts and coding agents with `--json` / `--jsonl` (the
//!   calls as the protocol's `CallSchema`).
//! - Exit codes: 0 on success, 1 when the command failed (a missing store, an unknown id or
//!   project, an unreachable server: the message on stderr says which), 2 for a usage error.

mod calls;
mod format;
mod trace;

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use weave_core::schema::{CallsFilter, CallsQueryReq};
use weave_core::server::{RemoteServer, RemoteServerConfig};
use weave_core::{SqliteServer, TraceServer, WeaveError};

pub use calls::{calls, export, tail, CallsArgs, ExportArgs, ExportFormat, TailArgs};
pub use format::Style;
pub use trace::{call, trace, CallArgs, TraceArgs};

/// A failed command: what to tell the user, and the exit code.
#[derive(Debug)]
pub struct CliError {
    /// The message (printed on stderr after `weave: `).
    pub message: String,
    /// The process's exit code.
    pub code: u8,
}

impl CliError {
    /// A failure (exit code 1).
    pub fn failed(message: impl Into<String>) -> Self {
        CliError {
            message: message.into(),
            code: 1,
        }
    }

    /// A usage error (exit code 2, as clap's own).
    pub fn usage(message: impl Into<String>) -> Self {
        CliError {
            message: message.into(),
            code: 2,
        }
    }
}

impl From<WeaveError> for CliError {
    fn from(e: WeaveError) -> Self {
        CliError::failed(e.to_string())
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        CliError::failed(e.to_string())
    }
}

/// What a command reads: a store file or a server, and a project in it.
#[derive(Debug, Clone, Default, Args)]
pub struct Source {
    /// The store to read: a SQLite file the SDK wrote (it wins over --server and
    /// $WF_TRACE_SERVER_URL). Default: the SDK's default store ($WEAVE_DB_PATH, else
    /// $XDG_DATA_HOME/weave/weave.sqlite or ~/.local/share/weave/weave.sqlite).
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// Read from a Weave trace server instead of a store (its API key from $WANDB_API_KEY).
    #[arg(long, value_name = "URL", env = "WF_TRACE_SERVER_URL")]
    pub server: Option<String>,
    /// The project: `entity/project`, or a project name that one entity of the store has.
    /// Default: the store's only project.
    #[arg(long, short, env = "WEAVE_PROJECT", value_name = "PROJECT")]
    pub project: Option<String>,
}

impl Source {
    /// The backend this source names.
    pub fn open(&self) -> Result<Arc<dyn TraceServer>, CliError> {
        if let (Some(url), None) = (&self.server, &self.db) {
            let settings = weave_core::config::Settings::from_env();
            let mut config = match RemoteServerConfig::from_settings(&settings) {
                Some(c) if c.base_url == url.trim_end_matches('/') => c,
                _ => RemoteServerConfig::new(url),
            };
            if config.api_key.is_none() {
                config.api_key = settings.api_key;
            }
            return Ok(Arc::new(RemoteServer::new(config)?));
        }
        let path = match &self.db {
            Some(p) => p.clone(),
            None => SqliteServer::default_path().ok_or_else(|| {
                CliError::failed(
                    "the default store is in memory ($WEAVE_DB_PATH=:memory:): pass --db",
                )
            })?,
        };
        if !path.exists() {
            return Err(CliError::failed(format!(
                "no store at {}: run a traced program first, or pass --db PATH",
                path.display()
            )));
        }
        Ok(Arc::new(SqliteServer::open(&path).map_err(|e| {
            CliError::failed(format!("cannot open the store {}: {e}", path.display()))
        })?))
    }

    /// The project to read (`entity/project`), resolved against `backend`'s projects when
    /// it is bare or not given.
    pub fn project(&self, backend: &dyn TraceServer) -> Result<String, CliError> {
        if let Some(p) = &self.project {
            if p.contains('/') {
                return Ok(p.clone());
            }
        }
        let projects = backend.projects().map_err(|e| match &self.project {
            None => CliError::failed(format!("{e}: pass --project ENTITY/PROJECT")),
            Some(p) => CliError::failed(format!("{e}: pass --project ENTITY/{p}")),
        })?;
        let names = || {
            projects
                .projects
                .iter()
                .map(|p| p.project_id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        match &self.project {
            Some(bare) => {
                let found: Vec<&str> = projects
                    .projects
                    .iter()
                    .map(|p| p.project_id.as_str())
                    .filter(|id| id.rsplit('/').next() == Some(bare.as_str()))
                    .collect();
                match found.as_slice() {
                    [one] => Ok(one.to_string()),
                    [] => Err(CliError::failed(format!(
                        "no project named {bare:?} (the store has: {})",
                        names()
                    ))),
                    many => Err(CliError::failed(format!(
                        "{bare:?} is a project of several entities: pass one of {}",
                        many.join(", ")
                    ))),
                }
            }
            None => match projects.projects.as_slice() {
                [one] => Ok(one.project_id.clone()),
                [] => Err(CliError::failed("the store has no calls yet")),
                _ => Err(CliError::failed(format!(
                    "the store has several projects: pass --project (one of {})",
                    names()
                ))),
            },
        }
    }

    /// Where call `id` is: the given project, else the store's project that has it.
    fn project_of_call(&self, backend: &dyn TraceServer, id: &str) -> Result<String, CliError> {
        if self.project.is_some() {
            return self.project(backend);
        }
        let projects = backend
            .projects()
            .map_err(|e| CliError::failed(format!("{e}: pass --project ENTITY/PROJECT")))?;
        for p in &projects.projects {
            let mut q = CallsQueryReq::new(p.project_id.clone());
            q.filter = Some(CallsFilter {
                call_ids: Some(vec![id.to_string()]),
                ..Default::default()
            });
            q.columns = Some(vec!["id".into()]);
            q.limit = Some(1);
            if backend.calls_query_stream(q)?.next().transpose()?.is_some() {
                return Ok(p.project_id.clone());
            }
        }
        Err(CliError::failed(format!("no call {id} in the store")))
    }
}

/// `weave projects`: every project, its call count and latest activity.
pub fn projects(source: &Source, json: bool, style: &Style) -> Result<(), CliError> {
    let backend = source.open()?;
    let res = backend.projects()?;
    let mut out = std::io::stdout().lock();
    if json {
        format::write_json_line(&mut out, &res.projects)?;
        return Ok(());
    }
    let rows: Vec<Vec<format::Cell>> = res
        .projects
        .iter()
        .map(|p| {
            vec![
                format::Cell::plain(&p.project_id),
                format::Cell::right(p.calls.to_string()),
                format::Cell::plain(p.last_call_at.map(format::time).unwrap_or_default()),
            ]
        })
        .collect();
    format::table(
        &mut out,
        style,
        &["PROJECT", "CALLS", "LATEST CALL (UTC)"],
        &rows,
    )?;
    if rows.is_empty() {
        eprintln!("weave: the store has no calls yet");
    }
    Ok(())
}

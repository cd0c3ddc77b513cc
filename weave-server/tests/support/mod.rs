//! Fixtures of the weave-server tests: the real `weave` binary in a process of its own.
#![allow(dead_code)]

pub mod browser;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A `weave serve` process, killed when dropped (unless stopped first).
pub struct Served {
    pub child: Child,
    /// Its base URL, read from its ready line.
    pub url: String,
    /// The ready line, as printed.
    pub ready_line: String,
    stderr: Option<std::thread::JoinHandle<String>>,
}

/// The `weave` binary of this package.
pub fn weave_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_weave"))
}

impl Served {
    /// Starts `weave serve --db DB --port 0 ARGS…` and waits for its ready line.
    pub fn start(db: &Path, args: &[&str]) -> Served {
        let mut cmd = Command::new(weave_bin());
        cmd.arg("serve")
            .arg("--db")
            .arg(db)
            .args(["--port", "0"])
            .args(args)
            .env_remove("WEAVE_SERVER_API_KEY")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        Self::spawn(cmd)
    }

    /// Runs `cmd` (a `weave serve` command) and waits for its ready line.
    pub fn spawn(mut cmd: Command) -> Served {
        let mut child = cmd.spawn().expect("start weave serve");
        let mut stderr = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).expect("read the ready line");
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = String::new();
            let _ = out.read_to_string(&mut sink);
        });
        let Some(url) = line
            .split("listening on ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .map(str::to_string)
        else {
            let _ = child.kill();
            panic!(
                "no ready line from weave serve: {line:?}; stderr:\n{}",
                stderr.join().unwrap_or_default()
            )
        };
        Served {
            child,
            url,
            ready_line: line,
            stderr: Some(stderr),
        }
    }

    /// Sends SIGTERM and waits (at most 30 s) for the process to exit; returns its status
    /// and what it wrote on stderr.
    pub fn terminate(mut self) -> (ExitStatus, String) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -TERM {pid}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(st) = self.child.try_wait().expect("wait") {
                break st;
            }
            assert!(
                Instant::now() < deadline,
                "weave serve did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let err = self.stderr.take().unwrap().join().unwrap_or_default();
        (status, err)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A blocking HTTP client with a generous timeout.
pub fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// An agent run written to the store at `db` by a program whose call links point at
/// `app_url` (as `weave serve` on that file answers them), with real durations: a root, an
/// LLM call with usage and a 2,000-character prompt, a tool call that fails with a
/// Python-style traceback, and a retry that succeeds.
pub struct AgentRun {
    /// A client of the run's project (`acme/agents`) on the same file.
    pub client: weave_core::WeaveClient,
    /// The root call's id and link.
    pub root_id: String,
    pub root_link: String,
    /// The failed tool call's id.
    pub failed_id: String,
}

pub fn agent_run(db: &Path, app_url: &str) -> AgentRun {
    use serde_json::json;
    use weave_core::{CallOptions, Exception, SqliteServer, SqliteServerConfig, StackFrame};
    let store = SqliteServer::with_config(
        SqliteServerConfig::default()
            .with_path(Some(db.to_path_buf()))
            .with_app_url(app_url),
    )
    .unwrap();
    let client =
        weave_core::WeaveClient::new("acme", "agents", std::sync::Arc::new(store), false).unwrap();
    let opts = || CallOptions::new().use_stack(false);
    // Real durations, so a waterfall has something to show.
    let work = |ms| std::thread::sleep(Duration::from_millis(ms));
    let root = client
        .create_call_with("agent", json!({"question": "weather in Paris?"}), opts())
        .unwrap();
    let llm = client
        .create_call_with(
            "chat",
            json!({"prompt": "x".repeat(2000)}),
            opts().parent(&root),
        )
        .unwrap();
    work(40);
    client
        .finish_call(
            &llm,
            json!({"model": "gpt-4o", "usage": {"prompt_tokens": 12, "completion_tokens": 30, "total_tokens": 42}}),
        )
        .unwrap();
    let tool = client
        .create_call_with(
            "get_weather",
            json!({"city": "Paris"}),
            opts().parent(&root),
        )
        .unwrap();
    work(15);
    let mut exc = Exception::new("TimeoutError", "the weather service did not answer");
    exc.traceback = Some(vec![StackFrame {
        filename: "tools.py".into(),
        line_number: Some(7),
        function_name: "get_weather".into(),
        text: Some("raise TimeoutError(...)".into()),
    }]);
    client.fail_call(&tool, exc).unwrap();
    let retry = client
        .create_call_with(
            "get_weather",
            json!({"city": "Paris", "attempt": 2}),
            opts().parent(&root),
        )
        .unwrap();
    work(25);
    client.finish_call(&retry, json!({"temp_c": 18})).unwrap();
    work(5);
    client.finish_call(&root, "18°C in Paris").unwrap();
    client.flush();
    AgentRun {
        root_id: root.id().to_string(),
        root_link: root.ui_url(),
        failed_id: tool.id().to_string(),
        client,
    }
}

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

//! The reference Weave trace server (`tests/support/python/ref_server.py`: the weave
//! package's own server code behind a thin HTTP layer, run in the pinned `ref-server` venv,
//! which [`crate::venv::python`] installs on first use) as a test fixture, on a free loopback port
//! with a fresh database:
//! [`RefServer::fresh`] gives the caller one of its own, stopped when dropped;
//! [`RefServer::shared`] one per test binary. Every server is forked from a process that has
//! imported the server once (`ref_forkserver.py`), so it starts in a fraction of a second
//! instead of the 2.5 s of CPU an import costs; that process kills its servers when the test
//! process exits (its stdin closes).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::venv;

/// A running reference server.
pub struct RefServer {
    /// Its base URL, `http://127.0.0.1:PORT`.
    pub url: String,
    /// Its loopback port.
    pub port: u16,
    /// Its SQLite database (its log beside it, `.log`).
    pub db: PathBuf,
    /// The server's pid in the fork server; `None` once killed.
    pid: Mutex<Option<u32>>,
    _dir: tempfile::TempDir,
}

/// Forks a server on `port` with database `db` (its log beside it); returns its pid.
fn fork(port: u16, db: &std::path::Path) -> u32 {
    use std::io::BufRead;
    let mut fork = fork_server().lock().unwrap_or_else(|e| e.into_inner());
    writeln!(
        fork.stdin,
        "{port} {} {}",
        db.display(),
        db.with_extension("log").display()
    )
    .and_then(|()| fork.stdin.flush())
    .expect("ask the fork server for a reference server");
    let mut line = String::new();
    fork.stdout
        .read_line(&mut line)
        .expect("the fork server's answer");
    line.trim()
        .parse::<u32>()
        .unwrap_or_else(|_| panic!("the fork server answered {line:?}"))
}

/// Kills a forked server (SIGKILL) and reaps it.
fn unfork(pid: u32) {
    let mut fork = fork_server().lock().unwrap_or_else(|e| e.into_inner());
    let _ = writeln!(fork.stdin, "kill {pid}").and_then(|()| fork.stdin.flush());
}

/// The process that forks fresh servers (see `ref_forkserver.py`).
struct ForkServer {
    stdin: std::process::ChildStdin,
    stdout: std::io::BufReader<std::process::ChildStdout>,
    _child: Child,
}

fn fork_server() -> &'static Mutex<ForkServer> {
    static FORK: OnceLock<Mutex<ForkServer>> = OnceLock::new();
    FORK.get_or_init(|| {
        let mut child = Command::new(venv::python("ref-server"))
            .arg(venv::python_dir().join("ref_forkserver.py"))
            .arg(venv::python_dir().join("ref_server.py"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the reference fork server");
        Mutex::new(ForkServer {
            stdin: child.stdin.take().unwrap(),
            stdout: std::io::BufReader::new(child.stdout.take().unwrap()),
            _child: child,
        })
    })
}

/// Waits until the server on `port` answers, or fails with its log.
fn wait_healthy(port: u16, log: &std::path::Path) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !healthy(port) {
        assert!(
            Instant::now() < deadline,
            "the reference server did not answer on port {port}; its log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Whether `GET /health` answers 200.
fn healthy(port: u16) -> bool {
    let Ok(mut s) =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(500))
    else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 64];
    matches!(s.read(&mut buf), Ok(n) if n >= 12 && buf[..12].starts_with(b"HTTP/1.1 200"))
}

impl RefServer {
    /// A server of the caller's own, with a fresh database; stopped when dropped.
    pub fn fresh() -> RefServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("ref.db");
        let port = free_port();
        let pid = fork(port, &db);
        let server = RefServer {
            url: format!("http://127.0.0.1:{port}"),
            port,
            db,
            pid: Mutex::new(Some(pid)),
            _dir: dir,
        };
        wait_healthy(port, &server.log());
        server
    }

    /// Kills the server outright (SIGKILL: no clean shutdown, requests in flight are cut).
    pub fn kill(&self) {
        if let Some(pid) = self.pid.lock().unwrap_or_else(|e| e.into_inner()).take() {
            unfork(pid);
        }
    }

    /// Starts a killed server again on the same port and database; waits until it answers.
    pub fn restart(&self) {
        let mut pid = self.pid.lock().unwrap_or_else(|e| e.into_inner());
        assert!(pid.is_none(), "restart(): kill() it first");
        *pid = Some(fork(self.port, &self.db));
        wait_healthy(self.port, &self.log());
    }

    fn log(&self) -> PathBuf {
        self.db.with_extension("log")
    }

    /// The one server of this test binary.
    pub fn shared() -> &'static RefServer {
        static SERVER: OnceLock<RefServer> = OnceLock::new();
        SERVER.get_or_init(RefServer::fresh)
    }
}

impl Drop for RefServer {
    fn drop(&mut self) {
        self.kill();
    }
}

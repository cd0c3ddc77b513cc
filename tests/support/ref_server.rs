//! The reference Weave trace server (`../shared/weave-ref-server`, the weave package's own
//! server code) as a test fixture: started once per test binary on a free loopback port with
//! a fresh database, stopped when the test process exits (its wrapper shell waits on our
//! stdin, which closes when we exit).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// A running reference server.
pub struct RefServer {
    pub url: String,
    pub port: u16,
    pub db: PathBuf,
    _child: Mutex<Child>,
    _dir: tempfile::TempDir,
}

fn shared_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("shared")
        .join("weave-ref-server")
}

fn venv_python() -> PathBuf {
    let venv = std::env::var("WEAVE_REF_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").expect("HOME"))
                .join(".cache")
                .join("weave-ref-server")
                .join("venv")
        });
    venv.join("bin").join("python")
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
    /// Starts a server (waits until it answers).
    pub fn start() -> RefServer {
        let python = venv_python();
        assert!(
            python.exists(),
            "the reference server is not installed: run ../shared/weave-ref-server/setup.sh \
             (looked for {})",
            python.display()
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("ref.db");
        let log = dir.path().join("ref.log");
        let port = free_port();
        let script = shared_dir().join("ref_server.py");
        // The shell kills the server when our end of its stdin closes (we exited or
        // dropped it), so no server outlives the tests.
        let child = Command::new("sh")
            .arg("-c")
            .arg(
                r#""$0" "$1" --port "$2" --db "$3" >"$4" 2>&1 & pid=$!; cat >/dev/null; kill $pid"#,
            )
            .arg(&python)
            .arg(&script)
            .arg(port.to_string())
            .arg(&db)
            .arg(&log)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the reference server");
        let deadline = Instant::now() + Duration::from_secs(90);
        while !healthy(port) {
            assert!(
                Instant::now() < deadline,
                "the reference server did not answer on port {port}; its log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        RefServer {
            url: format!("http://127.0.0.1:{port}"),
            port,
            db,
            _child: Mutex::new(child),
            _dir: dir,
        }
    }

    /// The one server of this test binary.
    pub fn shared() -> &'static RefServer {
        static SERVER: OnceLock<RefServer> = OnceLock::new();
        SERVER.get_or_init(RefServer::start)
    }
}

impl Drop for RefServer {
    fn drop(&mut self) {
        let mut child = self._child.lock().unwrap_or_else(|e| e.into_inner());
        drop(child.stdin.take());
        let _ = child.wait();
    }
}

//! A fault-injecting HTTP/1.1 proxy for tests: it sits between the client and the reference
//! server and, per request, passes it through, answers an error status itself (500, 429
//! with `Retry-After`, 413), hangs past the client's timeout, cuts the upstream answer
//! mid-body, or — while "down" — refuses connections outright (its socket stays bound, so
//! the port stays its own, but stops listening: the kernel answers connections with a
//! reset). Every request it sees is counted by path.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the proxy does with one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Forward it and relay the answer.
    Pass,
    /// Answer this status itself, with a `Retry-After` (seconds) when given.
    Status(u16, Option<u32>),
    /// Hold the connection this long, then close it without an answer (never forwarded).
    Hang(Duration),
    /// Forward it, then relay only the first half of the answer and close.
    Cut,
}

/// The request as the plan sees it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The request's path, without its query.
    pub path: String,
    /// The length of its body (chunked bodies: of their data).
    pub body_len: usize,
    /// How many requests to this path came before this one.
    pub nth: usize,
}

type Plan = Box<dyn Fn(&Seen) -> Fault + Send + Sync>;

struct State {
    upstream: String,
    port: u16,
    down: AtomicBool,
    plan: Mutex<Plan>,
    counts: Mutex<HashMap<String, usize>>,
    faults: Mutex<Vec<(String, Fault)>>,
}

/// A running proxy (stops with the test process).
pub struct FaultProxy {
    /// Its base URL, `http://127.0.0.1:PORT`.
    pub url: String,
    state: Arc<State>,
}

impl FaultProxy {
    /// A proxy to `upstream` (`http://127.0.0.1:PORT`), passing everything through.
    pub fn start(upstream: &str) -> FaultProxy {
        let listener = listening(bound(0));
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(State {
            upstream: upstream.trim_start_matches("http://").to_string(),
            port,
            down: AtomicBool::new(false),
            plan: Mutex::new(Box::new(|_| Fault::Pass)),
            counts: Mutex::new(HashMap::new()),
            faults: Mutex::new(Vec::new()),
        });
        let s = state.clone();
        std::thread::spawn(move || accept_loop(listener, s));
        FaultProxy {
            url: format!("http://127.0.0.1:{port}"),
            state,
        }
    }

    /// Decides every later request with `plan`.
    pub fn set_plan(&self, plan: impl Fn(&Seen) -> Fault + Send + Sync + 'static) {
        *self.state.plan.lock().unwrap() = Box::new(plan);
    }

    /// Down: connections are refused (the listening socket is closed) until [`up`](Self::up).
    pub fn down(&self) {
        self.state.down.store(true, Ordering::SeqCst);
        // Let the accept loop notice and close its socket.
        std::thread::sleep(Duration::from_millis(100));
    }

    /// Accepting connections again, on the same port.
    pub fn up(&self) {
        self.state.down.store(false, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(100));
    }

    /// How many requests to `path` the proxy saw (answered or not).
    pub fn count(&self, path: &str) -> usize {
        self.state
            .counts
            .lock()
            .unwrap()
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    /// The faults injected so far, with their paths.
    pub fn faults(&self) -> Vec<(String, Fault)> {
        self.state.faults.lock().unwrap().clone()
    }
}

/// A socket bound to 127.0.0.1:`port` (0: any free port), not listening yet.
fn bound(port: u16) -> socket2::Socket {
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("a socket");
    socket.set_reuse_address(true).expect("SO_REUSEADDR");
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    socket.bind(&addr.into()).expect("bind the proxy");
    socket
}

fn listening(socket: socket2::Socket) -> TcpListener {
    socket.listen(128).expect("listen");
    let listener: TcpListener = socket.into();
    listener.set_nonblocking(true).expect("nonblocking");
    listener
}

fn accept_loop(listener: TcpListener, state: Arc<State>) {
    // Up: a listening socket. Down: the same port, bound but not listening (refusing).
    let mut up = Some(listener);
    let mut held: Option<socket2::Socket> = None;
    loop {
        let down = state.down.load(Ordering::SeqCst);
        match (&up, down) {
            (Some(_), true) => {
                up = None; // closes the listener (and its backlog)
                held = Some(bound(state.port));
                continue;
            }
            (None, false) => {
                up = Some(listening(held.take().unwrap_or_else(|| bound(state.port))));
                continue;
            }
            (None, true) => {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
            (Some(_), false) => {}
        }
        match up.as_ref().unwrap().accept() {
            Ok((conn, _)) => {
                let _ = conn.set_nonblocking(false);
                let s = state.clone();
                std::thread::spawn(move || {
                    let _ = handle(conn, &s);
                });
            }
            Err(_) => std::thread::sleep(Duration::from_millis(2)),
        }
    }
}

/// Reads one message (request or response): its head (as text) and its raw body (with
/// chunked framing kept), and the body's length. A message with neither a length nor
/// chunking is read to the end of the stream when `to_eof`.
fn read_message(
    reader: &mut BufReader<TcpStream>,
    to_eof: bool,
) -> std::io::Result<(String, Vec<u8>, usize)> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let lower = head.to_ascii_lowercase();
    let mut body = Vec::new();
    let mut body_len = 0;
    if let Some(len) = lower
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
    {
        body.resize(len, 0);
        reader.read_exact(&mut body)?;
        body_len = len;
    } else if lower.contains("transfer-encoding: chunked") {
        loop {
            let mut size_line = String::new();
            reader.read_line(&mut size_line)?;
            body.extend_from_slice(size_line.as_bytes());
            let size = usize::from_str_radix(size_line.trim().split(';').next().unwrap_or("0"), 16)
                .unwrap_or(0);
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk)?;
            body.extend_from_slice(&chunk);
            body_len += size;
            if size == 0 {
                break;
            }
        }
    } else if to_eof {
        reader.read_to_end(&mut body)?;
        body_len = body.len();
    }
    Ok((head, body, body_len))
}

fn handle(conn: TcpStream, state: &State) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let (head, body, body_len) = read_message(&mut reader, false)?;
    let path = head
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .split('?')
        .next()
        .unwrap_or("/")
        .to_string();
    let nth = {
        let mut counts = state.counts.lock().unwrap();
        let n = counts.entry(path.clone()).or_insert(0);
        *n += 1;
        *n - 1
    };
    let seen = Seen {
        path: path.clone(),
        body_len,
        nth,
    };
    let fault = (state.plan.lock().unwrap())(&seen);
    if fault != Fault::Pass {
        state
            .faults
            .lock()
            .unwrap()
            .push((path.clone(), fault.clone()));
    }
    let mut conn = conn;
    match fault {
        Fault::Status(code, retry_after) => {
            let body = format!(r#"{{"reason":"injected {code}"}}"#);
            let mut resp = format!(
                "HTTP/1.1 {code} Injected\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
                body.len()
            );
            if let Some(s) = retry_after {
                resp.push_str(&format!("Retry-After: {s}\r\n"));
            }
            resp.push_str("\r\n");
            resp.push_str(&body);
            conn.write_all(resp.as_bytes())?;
        }
        Fault::Hang(d) => {
            std::thread::sleep(d);
        }
        Fault::Pass | Fault::Cut => {
            let answer = forward(&state.upstream, &head, &body)?;
            if fault == Fault::Cut {
                conn.write_all(&answer[..answer.len() / 2])?;
            } else {
                conn.write_all(&answer)?;
            }
        }
    }
    let _ = conn.flush();
    let _ = conn.shutdown(Shutdown::Both);
    Ok(())
}

/// Sends the request upstream on a fresh connection (`Connection: close`) and returns the
/// whole raw answer.
fn forward(upstream: &str, head: &str, body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut up = TcpStream::connect(upstream)?;
    up.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut out = String::new();
    for line in head.split("\r\n") {
        let l = line.to_ascii_lowercase();
        if l.starts_with("connection:") || l.starts_with("keep-alive:") || line.is_empty() {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    up.write_all(out.as_bytes())?;
    up.write_all(body)?;
    // Read exactly the answer (some error answers keep the connection open).
    let mut reader = BufReader::new(up);
    let (head, body, _) = read_message(&mut reader, true)?;
    let mut answer = head.into_bytes();
    answer.extend_from_slice(&body);
    Ok(answer)
}

//! A real browser for the viewer's tests: headless Chromium (Debian's `chromium`) driven over
//! the Chrome DevTools Protocol, on a WebSocket of its own — no WebDriver, nothing else to
//! install. A test asks for one with [`Browser::launch`]; without Chromium on the machine it
//! is skipped with a loud notice, unless `WEAVE_REQUIRE_BROWSER` is set (CI sets it), which
//! makes a missing browser a failure.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

/// A headless Chromium with one page, killed when dropped.
pub struct Browser {
    child: Child,
    ws: WebSocket<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    _profile: tempfile::TempDir,
}

/// The Chromium binary: `$WEAVE_CHROMIUM`, else `chromium` or `chromium-browser` on `PATH`.
fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("WEAVE_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser"] {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

impl Browser {
    /// A browser, or `None` (with a notice on stderr) when the machine has none and
    /// `WEAVE_REQUIRE_BROWSER` is not set.
    pub fn launch(test: &str) -> Option<Browser> {
        let Some(bin) = chromium() else {
            if std::env::var_os("WEAVE_REQUIRE_BROWSER").is_some() {
                panic!("{test}: WEAVE_REQUIRE_BROWSER is set but there is no chromium on PATH");
            }
            eprintln!(
                "\n!!!! {test}: SKIPPED — no chromium on PATH (apt-get install chromium; \
                 .ci/run installs it and fails instead of skipping)\n"
            );
            return None;
        };
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new(bin)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-port=0",
                "--window-size=1400,900",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chromium");
        // "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/ID"
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let port = loop {
            let Some(Ok(line)) = lines.next() else {
                let _ = child.kill();
                panic!("chromium exited before it listened");
            };
            if let Some(rest) = line.split("ws://127.0.0.1:").nth(1) {
                break rest.split('/').next().unwrap().to_string();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        let list: Value = reqwest::blocking::get(format!("http://127.0.0.1:{port}/json/list"))
            .unwrap()
            .json()
            .unwrap();
        let page = list
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["type"] == "page")
            .expect("a page target");
        let url = page["webSocketDebuggerUrl"].as_str().unwrap();
        let (ws, _) = tungstenite::connect(url).expect("connect to the page");
        let mut b = Browser {
            child,
            ws,
            next_id: 0,
            _profile: profile,
        };
        b.call("Page.enable", json!({}));
        b.call("Runtime.enable", json!({}));
        Some(b)
    }

    /// Sends a DevTools command and returns its result (events in between are skipped).
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let msg = json!({"id": id, "method": method, "params": params});
        self.ws.send(Message::text(msg.to_string())).unwrap();
        loop {
            let Message::Text(text) = self.ws.read().unwrap() else {
                continue;
            };
            let v: Value = serde_json::from_str(&text).unwrap();
            if v["id"] == id {
                if let Some(e) = v.get("error") {
                    panic!("{method}: {e}");
                }
                return v["result"].clone();
            }
        }
    }

    /// Sends HTTP Basic `user:password` with every request of the page (a server with a key).
    pub fn basic_auth(&mut self, user: &str, password: &str) {
        use base64::Engine;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        self.call("Network.enable", json!({}));
        self.call(
            "Network.setExtraHTTPHeaders",
            json!({"headers": {"Authorization": format!("Basic {token}")}}),
        );
    }

    /// Opens `url` and waits until the viewer has drawn its page.
    pub fn goto(&mut self, url: &str) {
        self.call("Page.navigate", json!({ "url": url }));
        std::thread::sleep(Duration::from_millis(100));
        self.wait_for("document.body && document.body.dataset.ready === '1'");
    }

    /// Evaluates `js` in the page (awaiting a promise) and returns its value.
    pub fn eval(&mut self, js: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": js, "awaitPromise": true, "returnByValue": true}),
        );
        if let Some(e) = r.get("exceptionDetails") {
            panic!("{js}: {e}");
        }
        r["result"]["value"].clone()
    }

    /// Waits until `js` is truthy (at most 15 s) and returns its value.
    pub fn wait_for(&mut self, js: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let v = self.eval(&format!(
                "(() => {{ try {{ return ({js}); }} catch (e) {{ return null; }} }})()"
            ));
            let truthy = match &v {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return v;
            }
            if Instant::now() > deadline {
                let body = self.eval("document.body ? document.body.innerText : ''");
                panic!("timed out waiting for {js}; the page says:\n{body}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Clicks the first element matching `selector` (which must exist).
    pub fn click(&mut self, selector: &str) {
        let sel = serde_json::to_string(selector).unwrap();
        self.wait_for(&format!("document.querySelector({sel})"));
        self.eval(&format!("document.querySelector({sel}).click()"));
    }

    /// A PNG of the page as it is.
    pub fn screenshot(&mut self) -> Vec<u8> {
        use base64::Engine;
        let r = self.call("Page.captureScreenshot", json!({"format": "png"}));
        base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().unwrap())
            .unwrap()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

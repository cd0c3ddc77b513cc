//! Transport: how a request reaches the server and its answer comes back. Requests run on the
//! runtime the [`RemoteServer`] owns, and the calling thread waits for the answer with [`wait`],
//! which needs no runtime. Reads and content-addressed creates ([`IDEMPOTENT_ROUTES`]) are
//! retried with backoff, as the Python client retries; writes of calls are not (the
//! background writer retries them, knowing how to avoid writing twice).

use std::future::Future;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll, Wake, Waker};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::errors::{retry_after, status_error, transport_error};
use super::RemoteServer;
use crate::error::{Result, WeaveError};

/// The largest request body sent: the Weave server refuses more than 32 MiB.
pub const MAX_REQUEST_BYTES: usize = 31 * 1024 * 1024;

/// Waits for `fut` on this thread without a runtime: the futures waited on here (a oneshot
/// or channel receiver fed by the SDK's runtime) need none, so this works on any thread,
/// inside a user's async runtime too.
pub(super) fn wait<F: Future>(fut: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = TaskContext::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        match fut.as_mut().poll(&mut cx) {
            Poll::Ready(v) => return v,
            Poll::Pending => std::thread::park(),
        }
    }
}

impl RemoteServer {
    pub(super) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.inner.config.base_url)
    }

    /// Runs `fut` on the SDK's runtime and waits for it here.
    pub(super) fn run<T: Send + 'static>(
        &self,
        fut: impl Future<Output = T> + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.inner.handle.spawn(async move {
            let _ = tx.send(fut.await);
        });
        wait(rx).map_err(|_| WeaveError::Shutdown)
    }

    pub(super) fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut rb = self.inner.http.request(method, self.url(path));
        if let Some(auth) = &self.inner.auth {
            rb = rb.header(reqwest::header::AUTHORIZATION, auth);
        }
        rb
    }

    /// Sends `rb` and returns the whole body of a 2xx answer.
    pub(super) fn send_bytes(
        &self,
        path: &str,
        mut rb: reqwest::RequestBuilder,
    ) -> Result<Vec<u8>> {
        let path = path.to_string();
        let retry = IDEMPOTENT_ROUTES.contains(&path.as_str());
        self.run(async move {
            let mut attempt = 0;
            loop {
                // A request whose body can be sent again is retried, as the Python client
                // retries every request (three attempts); writes of calls are retried by
                // the writer instead, which knows how to avoid writing twice.
                let again = if retry { rb.try_clone() } else { None };
                let res = send_once(&path, rb).await;
                match (res, again) {
                    (Err(e), Some(next)) if attempt + 1 < READ_ATTEMPTS && retryable(&e) => {
                        tokio::time::sleep(read_backoff(attempt, &e)).await;
                        attempt += 1;
                        rb = next;
                    }
                    (res, _) => return res,
                }
            }
        })?
    }

    /// `POST path` with `req` as its JSON body.
    pub(super) fn json_request<Req: Serialize>(
        &self,
        path: &str,
        req: &Req,
    ) -> Result<reqwest::RequestBuilder> {
        Ok(self
            .request(reqwest::Method::POST, path)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(serde_json::to_vec(req)?))
    }

    /// `POST path` with `req` as JSON, the answer parsed as `Res`.
    pub(super) fn post<Req: Serialize, Res: DeserializeOwned>(
        &self,
        path: &str,
        req: &Req,
    ) -> Result<Res> {
        let rb = self.json_request(path, req)?;
        let bytes = self.send_bytes(path, rb)?;
        serde_json::from_slice(&bytes).map_err(|e| {
            WeaveError::backend_caused_by(
                format!("{path}: the server's answer is not what the protocol says: {e}"),
                e,
            )
        })
    }
}

/// Routes that may be sent again without changing the outcome: reads, and creates addressed
/// by content.
const IDEMPOTENT_ROUTES: &[&str] = &[
    "/server_info",
    "/call/read",
    "/calls/query_stats",
    "/call/update",
    "/calls/delete",
    "/obj/read",
    "/objs/query",
    "/obj/create",
    "/table/create",
    "/table/query",
    "/table/query_stats",
    "/refs/read_batch",
    "/file/content",
    "/feedback/query",
    "/cost/query",
];
/// Attempts per request on those routes (Python's `WEAVE_RETRY_MAX_ATTEMPTS`).
const READ_ATTEMPTS: u32 = 3;

fn retryable(e: &WeaveError) -> bool {
    matches!(
        e,
        WeaveError::Unavailable { .. } | WeaveError::Backend { .. }
    )
}

fn read_backoff(attempt: u32, e: &WeaveError) -> Duration {
    let base = Duration::from_millis(500) * (1 << attempt.min(4));
    let after = match e {
        WeaveError::Unavailable {
            retry_after: Some(d),
            ..
        } => (*d).min(Duration::from_secs(10)),
        _ => Duration::ZERO,
    };
    base.max(after)
}

pub(super) async fn send_once(path: &str, rb: reqwest::RequestBuilder) -> Result<Vec<u8>> {
    let resp = rb.send().await.map_err(|e| transport_error(path, e))?;
    let status = resp.status().as_u16();
    let after = retry_after(&resp);
    let body = resp.bytes().await.map_err(|e| transport_error(path, e))?;
    if (200..300).contains(&status) {
        Ok(body.to_vec())
    } else {
        Err(status_error(path, status, after, &body))
    }
}

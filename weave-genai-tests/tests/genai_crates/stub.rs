//! An OpenAI-compatible server on loopback: `POST /v1/chat/completions`, answering with a
//! fixed completion and its token usage, as JSON or (with `"stream": true`) as server-sent
//! events whose last chunk carries the usage. It runs on its own threads, outside the
//! tested thread's subscriber, and records how many requests it served.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

/// The model the tests ask for.
pub const REQUESTED_MODEL: &str = "gpt-4o-mini";
/// The model the stub says it served (the response's model).
pub const SERVED_MODEL: &str = "gpt-4o-mini-2024-07-18";
/// The prompt and completion tokens of every answer.
pub const PROMPT_TOKENS: i64 = 11;
pub const COMPLETION_TOKENS: i64 = 4;
/// The answer's text.
pub const ANSWER: &str = "Hello there";

pub struct Stub {
    /// `http://127.0.0.1:<port>/v1`
    pub base_url: String,
    served: Arc<AtomicUsize>,
}

impl Stub {
    /// Requests answered so far.
    pub fn served(&self) -> usize {
        self.served.load(Ordering::SeqCst)
    }
}

/// The process's stub server, started on first use.
pub fn stub() -> &'static Stub {
    static STUB: OnceLock<Stub> = OnceLock::new();
    STUB.get_or_init(|| {
        let served = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = std::sync::mpsc::channel();
        let state = served.clone();
        std::thread::Builder::new()
            .name("openai-stub".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .enable_all()
                    .build()
                    .expect("stub runtime");
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                        .await
                        .expect("bind");
                    tx.send(listener.local_addr().expect("addr")).expect("send");
                    let app = Router::new()
                        .route("/v1/chat/completions", post(chat_completions))
                        .with_state(state);
                    axum::serve(listener, app).await.expect("serve");
                });
            })
            .expect("stub thread");
        let addr = rx.recv().expect("stub address");
        Stub {
            base_url: format!("http://{addr}/v1"),
            served,
        }
    })
}

fn usage() -> Value {
    json!({
        "prompt_tokens": PROMPT_TOKENS,
        "completion_tokens": COMPLETION_TOKENS,
        "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
    })
}

async fn chat_completions(
    State(served): State<Arc<AtomicUsize>>,
    Json(req): Json<Value>,
) -> Response {
    let n = served.fetch_add(1, Ordering::SeqCst) + 1;
    let id = format!("chatcmpl-{n}");
    if req["stream"].as_bool() == Some(true) {
        let mut body = String::new();
        let words: Vec<&str> = ANSWER.split_inclusive(' ').collect();
        for (i, w) in words.iter().enumerate() {
            let delta = if i == 0 {
                json!({"role": "assistant", "content": w})
            } else {
                json!({"content": w})
            };
            let chunk = json!({
                "id": id, "object": "chat.completion.chunk", "created": 1, "model": SERVED_MODEL,
                "choices": [{"index": 0, "delta": delta, "finish_reason": null}],
            });
            body.push_str(&format!("data: {chunk}\n\n"));
        }
        let last = json!({
            "id": id, "object": "chat.completion.chunk", "created": 1, "model": SERVED_MODEL,
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        });
        body.push_str(&format!("data: {last}\n\n"));
        let usage = json!({
            "id": id, "object": "chat.completion.chunk", "created": 1, "model": SERVED_MODEL,
            "choices": [], "usage": usage(),
        });
        body.push_str(&format!("data: {usage}\n\ndata: [DONE]\n\n"));
        return ([(header::CONTENT_TYPE, "text/event-stream")], body).into_response();
    }
    Json(json!({
        "id": id,
        "object": "chat.completion",
        "created": 1,
        "model": SERVED_MODEL,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": ANSWER},
            "finish_reason": "stop",
        }],
        "usage": usage(),
    }))
    .into_response()
}

//! jeremychone's `genai` with its `otel` feature: its `genai.chat` span (OpenTelemetry GenAI
//! fields and the `otel.name` / `otel.kind` / `otel.status_code` bridge fields) becomes the
//! LLM call, inside and outside ops, streaming and not; a failed request fails it.

use futures_util::StreamExt;
use genai::adapter::AdapterKind;
use genai::chat::{ChatMessage, ChatOptions, ChatRequest, ChatStreamEvent};
use genai::resolver::{AuthData, Endpoint, ServiceTargetResolver};
use genai::{Client, ModelIden, ServiceTarget};
use serde_json::json;
use weave::Call;

use crate::stub::{stub, ANSWER, COMPLETION_TOKENS, PROMPT_TOKENS, REQUESTED_MODEL, SERVED_MODEL};
use crate::{all_calls, cost_of, named, priced_store, traced};

/// A genai client whose OpenAI-compatible target is `base_url`.
fn client_at(base_url: String) -> Client {
    let resolver = ServiceTargetResolver::from_resolver_fn(
        move |t: ServiceTarget| -> Result<ServiceTarget, genai::resolver::Error> {
            Ok(ServiceTarget {
                endpoint: Endpoint::from_owned(base_url.clone()),
                auth: AuthData::from_single("sk-test"),
                model: ModelIden::new(AdapterKind::OpenAI, t.model.model_name),
            })
        },
    );
    Client::builder()
        .with_service_target_resolver(resolver)
        .build()
        .expect("genai client")
}

fn client() -> Client {
    client_at(format!("{}/", stub().base_url))
}

/// Asks the stub through genai, streaming or not; the answer's text.
async fn complete(question: &str, streaming: bool) -> String {
    let req = ChatRequest::new(vec![ChatMessage::user(question)]);
    if !streaming {
        let res = client()
            .exec_chat("gpt-4o-mini", req, None)
            .await
            .expect("genai chat");
        return res.first_text().unwrap_or_default().to_string();
    }
    let options = ChatOptions::default().with_capture_usage(true);
    let res = client()
        .exec_chat_stream("gpt-4o-mini", req, Some(&options))
        .await
        .expect("genai chat stream");
    let mut text = String::new();
    let mut stream = res.stream;
    while let Some(event) = stream.next().await {
        if let ChatStreamEvent::Chunk(chunk) = event.expect("stream event") {
            text.push_str(&chunk.content);
        }
    }
    text
}

#[weave::op]
async fn ask(question: &str, streaming: bool) -> String {
    complete(question, streaming).await
}

/// The model usage is reported under: the response's, which genai records only when not
/// streaming; else the requested one.
fn usage_model(streaming: bool) -> &'static str {
    if streaming {
        REQUESTED_MODEL
    } else {
        SERVED_MODEL
    }
}

/// genai's span, checked as the LLM call it is.
fn check_llm_call(chat: &Call, streaming: bool) {
    assert_eq!(chat.attributes()["weave"]["kind"], "llm");
    assert_eq!(chat.display_name().as_deref(), Some("chat gpt-4o-mini"));
    assert_eq!(chat.inputs()["gen_ai.request.stream"], streaming);
    let usage = &chat.usage()[usage_model(streaming)];
    assert_eq!(usage["input_tokens"], PROMPT_TOKENS, "{usage}");
    assert_eq!(usage["output_tokens"], COMPLETION_TOKENS, "{usage}");
    assert_eq!(usage["requests"], 1, "{usage}");
    assert_eq!(chat.inputs()["gen_ai.request.model"], "gpt-4o-mini");
    // The bridge fields are not inputs.
    assert!(
        chat.inputs().get("otel.kind").is_none(),
        "{:?}",
        chat.inputs()
    );
    assert!(chat.exception().is_none());
}

fn inside_an_op(streaming: bool) {
    let s = priced_store();
    traced(&s.client, async {
        let root = s.client.create_call("root", json!({})).unwrap();
        assert_eq!(ask("Say hello", streaming).await, ANSWER);
        s.client.finish_call(&root, ()).unwrap();
    });
    let calls = all_calls(&s.client);
    assert_eq!(calls.len(), 3, "root, ask, genai's chat");
    let (root, op, chat) = (
        named(&calls, "root"),
        named(&calls, "ask"),
        named(&calls, "genai.chat"),
    );
    assert_eq!(chat.parent_id(), Some(op.id()));
    check_llm_call(chat, streaming);
    for rolled in [op, root] {
        assert_eq!(
            rolled.usage()[usage_model(streaming)]["input_tokens"],
            PROMPT_TOKENS
        );
    }
    let cost = cost_of(&s.client, op, usage_model(streaming));
    assert_eq!(cost["prompt_tokens"], PROMPT_TOKENS, "{cost}");
}

#[test]
fn a_genai_chat_inside_an_op_is_its_child_with_usage_and_cost() {
    inside_an_op(false);
}

#[test]
fn a_streamed_genai_chat_inside_an_op_is_its_child_with_usage_and_cost() {
    inside_an_op(true);
}

#[test]
fn a_genai_chat_outside_any_op_is_a_root_call_and_a_failed_one_fails() {
    let s = priced_store();
    traced(&s.client, async {
        assert_eq!(complete("one", false).await, ANSWER);
        // Nothing listens there: the request fails.
        let req = ChatRequest::new(vec![ChatMessage::user("two")]);
        let err = client_at("http://127.0.0.1:9/v1/".into())
            .exec_chat("gpt-4o-mini", req, None)
            .await;
        assert!(err.is_err());
    });
    let calls = all_calls(&s.client);
    assert_eq!(calls.len(), 2);
    let (ok, failed): (Vec<&Call>, Vec<&Call>) =
        calls.iter().partition(|c| c.exception().is_none());
    check_llm_call(ok[0], false);
    assert_eq!(ok[0].parent_id(), None);
    assert!(failed[0].usage().is_empty());
    assert_eq!(failed[0].attributes()["weave"]["kind"], "llm");
    let e = failed[0].exception_info().expect("failed");
    // genai's `error.type` for a refused connection, with `otel.status_code = ERROR`.
    assert_eq!(e.r#type, "connect", "{e:?}");
}

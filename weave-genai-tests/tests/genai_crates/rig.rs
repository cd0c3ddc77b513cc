//! rig-core's OpenAI Chat Completions model, inside and outside ops, streaming and not. rig
//! makes its own `chat` span (OpenTelemetry GenAI fields, INFO) under whatever span is
//! current — inside an op, the op's.

use rig_core::completion::CompletionRequest;
use rig_core::providers::openai::OpenAIConfig;
use serde_json::{json, Value};
use weave::Call;

use crate::stub::{stub, ANSWER, COMPLETION_TOKENS, PROMPT_TOKENS, REQUESTED_MODEL, SERVED_MODEL};
use crate::{all_calls, cost_of, named, priced_store, traced, COMPLETION_PRICE, PROMPT_PRICE};

/// Asks the stub through rig, streaming or not; the answer's text.
async fn complete(question: &str, streaming: bool) -> String {
    let model = OpenAIConfig::new("sk-test")
        .with_base_url(stub().base_url.clone())
        .client()
        .chat(REQUESTED_MODEL);
    let response = if streaming {
        model
            .stream(CompletionRequest::new(question))
            .expect("rig stream")
            .finish()
            .await
    } else {
        model.call(CompletionRequest::new(question)).await
    };
    format!("{:?}", response.expect("rig completion"))
}

#[weave::op]
async fn ask(question: &str, streaming: bool) -> String {
    complete(question, streaming).await
}

/// The usage the stub reports, as `summary.usage[model]` has it.
fn stub_usage(requests: i64) -> Value {
    json!({
        "input_tokens": PROMPT_TOKENS * requests,
        "output_tokens": COMPLETION_TOKENS * requests,
        "total_tokens": (PROMPT_TOKENS + COMPLETION_TOKENS) * requests,
        "requests": requests,
    })
}

/// rig's own span, checked as the LLM call it is.
fn check_llm_call(chat: &Call) {
    assert_eq!(chat.attributes()["weave"]["kind"], "llm");
    assert_eq!(
        Value::Object(chat.usage()),
        json!({ SERVED_MODEL: stub_usage(1) })
    );
    assert_eq!(chat.inputs()["gen_ai.request.model"], "gpt-4o-mini");
    assert_eq!(chat.inputs()["gen_ai.provider.name"], "openai");
    assert_eq!(chat.output()["gen_ai.response.model"], SERVED_MODEL);
    assert!(chat.output()["gen_ai.response.id"]
        .as_str()
        .is_some_and(|id| id.starts_with("chatcmpl-")));
    assert!(chat.exception().is_none());
}

fn inside_an_op(streaming: bool) {
    let s = priced_store();
    let before = stub().served();
    traced(&s.client, async {
        let root = s.client.create_call("root", json!({})).unwrap();
        let out = ask("Say hello", streaming).await;
        assert!(out.contains(ANSWER), "{out}");
        s.client.finish_call(&root, ()).unwrap();
    });
    assert!(stub().served() > before, "the stub answered");
    let calls = all_calls(&s.client);
    assert_eq!(calls.len(), 3, "root, ask, rig's chat");
    let (root, op, chat) = (
        named(&calls, "root"),
        named(&calls, "ask"),
        named(&calls, "chat"),
    );
    assert_eq!(op.parent_id(), Some(root.id()));
    assert_eq!(chat.parent_id(), Some(op.id()));
    assert_eq!(chat.inputs()["gen_ai.request.stream"], streaming);
    check_llm_call(chat);
    // Rolled up into the op and the root, and priced there.
    assert_eq!(
        Value::Object(op.usage()),
        json!({ SERVED_MODEL: stub_usage(1) })
    );
    assert_eq!(
        Value::Object(root.usage()),
        json!({ SERVED_MODEL: stub_usage(1) })
    );
    let cost = cost_of(&s.client, op, SERVED_MODEL);
    assert_eq!(cost["prompt_tokens"], PROMPT_TOKENS, "{cost}");
    let expected =
        PROMPT_TOKENS as f64 * PROMPT_PRICE + COMPLETION_TOKENS as f64 * COMPLETION_PRICE;
    let total = cost["prompt_tokens_total_cost"].as_f64().unwrap()
        + cost["completion_tokens_total_cost"].as_f64().unwrap();
    assert!((total - expected).abs() < 1e-12, "{cost}");
}

#[test]
fn a_rig_completion_inside_an_op_is_its_child_with_usage_and_cost() {
    inside_an_op(false);
}

#[test]
fn a_streamed_rig_completion_inside_an_op_is_its_child_with_usage_and_cost() {
    inside_an_op(true);
}

#[test]
fn rig_completions_outside_any_op_are_root_calls_with_usage() {
    let s = priced_store();
    traced(&s.client, async {
        complete("one", false).await;
        complete("two", true).await;
    });
    let calls = all_calls(&s.client);
    assert_eq!(calls.len(), 2);
    for chat in &calls {
        assert_eq!(chat.func_name(), "chat");
        assert_eq!(chat.parent_id(), None);
        check_llm_call(chat);
        let cost = cost_of(&s.client, chat, SERVED_MODEL);
        assert_eq!(cost["completion_tokens"], COMPLETION_TOKENS, "{cost}");
    }
}

//! GenAI semantic-convention fields on spans → `summary.usage[model]`, rolled up to
//! ancestors, priced by `add_cost`.

use serde_json::{json, Value};
use tracing::field::Empty;
use tracing::info_span;

use crate::common::{all_calls, with_layer, TestStore, Tree};

/// An LLM request span: the request model and input tokens known up front, the response
/// model and output tokens recorded when the answer arrives.
fn chat(request_model: &str, response_model: &str, input: u64, output: u64) {
    let span = info_span!(
        "chat",
        gen_ai.request.model = request_model,
        gen_ai.response.model = Empty,
        gen_ai.usage.input_tokens = input,
        gen_ai.usage.output_tokens = Empty,
        prompt = "hi",
    );
    span.in_scope(|| {});
    span.record("gen_ai.response.model", response_model);
    span.record("gen_ai.usage.output_tokens", output);
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

#[test]
fn genai_fields_become_usage_of_the_response_model() {
    let s = TestStore::new();
    with_layer(&s.client, || chat("gpt-4o", "gpt-4o-2024-08-06", 120, 30));
    let calls = all_calls(&s.client);
    assert_eq!(calls.len(), 1);
    let c = &calls[0];
    assert_eq!(
        Value::Object(c.usage()),
        json!({"gpt-4o-2024-08-06": {
            "input_tokens": 120, "output_tokens": 30, "total_tokens": 150, "requests": 1
        }})
    );
    // The request model is an input; the response and usage are results, not inputs.
    assert_eq!(
        Value::Object(c.inputs().clone()),
        json!({"gen_ai.request.model": "gpt-4o", "prompt": "hi"})
    );
}

#[test]
fn without_a_response_model_usage_is_keyed_by_the_request_model() {
    let s = TestStore::new();
    with_layer(&s.client, || {
        let span = info_span!(
            "completion",
            gen_ai.request.model = "claude-3-5-sonnet",
            gen_ai.usage.prompt_tokens = Empty,
            gen_ai.usage.completion_tokens = Empty,
        );
        span.record("gen_ai.usage.prompt_tokens", 11);
        span.record("gen_ai.usage.completion_tokens", 4);
    });
    let calls = all_calls(&s.client);
    assert_eq!(
        Value::Object(calls[0].usage()),
        json!({"claude-3-5-sonnet": {
            "prompt_tokens": 11, "completion_tokens": 4, "total_tokens": 15, "requests": 1
        }})
    );
}

#[test]
fn a_model_without_token_counts_makes_no_usage() {
    let s = TestStore::new();
    with_layer(&s.client, || {
        let _span = info_span!("no_tokens", gen_ai.request.model = "gpt-4o").entered();
    });
    let calls = all_calls(&s.client);
    assert!(calls[0].usage().is_empty(), "{:?}", calls[0].summary());
}

#[test]
fn usage_rolls_up_to_the_parents() {
    let s = TestStore::new();
    let root = s.client.create_call("root", json!({})).unwrap();
    with_layer(&s.client, || {
        info_span!("agent").in_scope(|| {
            chat("gpt-4o", "gpt-4o-2024-08-06", 100, 20);
            chat("gpt-4o", "gpt-4o-2024-08-06", 50, 5);
            chat("claude", "claude-3-haiku", 7, 3);
        });
    });
    s.client.finish_call(&root, ()).unwrap();

    let tree = Tree::of_call(&s.client, root.id());
    let agent = tree.only_kid(root.id());
    assert_eq!(tree.kid_names(agent.id()), ["chat", "chat", "chat"]);
    let expected = json!({
        "gpt-4o-2024-08-06": {
            "input_tokens": 150, "output_tokens": 25, "total_tokens": 175, "requests": 2
        },
        "claude-3-haiku": {
            "input_tokens": 7, "output_tokens": 3, "total_tokens": 10, "requests": 1
        },
    });
    assert_eq!(Value::Object(agent.usage()), expected);
    let root_back = s.client.get_call(root.id()).unwrap();
    assert_eq!(Value::Object(root_back.usage()), expected);
}

#[test]
fn costs_are_computed_from_the_span_tokens() {
    let s = TestStore::new();
    let (prompt_price, completion_price) = (0.000_002_5, 0.000_01);
    s.client
        .add_cost("gpt-4o-2024-08-06", prompt_price, completion_price)
        .unwrap();
    let root = s.client.create_call("root", json!({})).unwrap();
    with_layer(&s.client, || {
        chat("gpt-4o", "gpt-4o-2024-08-06", 1200, 300);
        chat("other", "unpriced-model", 10, 10);
    });
    s.client.finish_call(&root, ()).unwrap();

    let tree = Tree::of_call(&s.client, root.id());
    let chat_call = tree.kids(root.id())[0];
    let back = s.client.get_call_with(chat_call.id(), true).unwrap();
    let costs = &back.weave_summary().expect("summary.weave")["costs"];
    let c = &costs["gpt-4o-2024-08-06"];
    assert_eq!(c["prompt_tokens"], 1200);
    assert_eq!(c["completion_tokens"], 300);
    assert_eq!(c["requests"], 1);
    assert_eq!(c["total_tokens"], 1500);
    assert!(close(
        c["prompt_tokens_total_cost"].as_f64().unwrap(),
        1200.0 * prompt_price
    ));
    assert!(close(
        c["completion_tokens_total_cost"].as_f64().unwrap(),
        300.0 * completion_price
    ));
    assert_eq!(costs.as_object().unwrap().len(), 1, "{costs}");

    // Without include_costs there are none.
    let plain = s.client.get_call(chat_call.id()).unwrap();
    assert!(plain.weave_summary().unwrap().get("costs").is_none());

    // The root's rolled-up usage is priced too; the unpriced model has no cost.
    let root_back = s.client.get_call_with(root.id(), true).unwrap();
    let root_costs = &root_back.weave_summary().unwrap()["costs"];
    assert_eq!(root_costs["gpt-4o-2024-08-06"]["prompt_tokens"], 1200);
    assert!(root_costs.get("unpriced-model").is_none());
    assert_eq!(root_back.usage()["unpriced-model"]["total_tokens"], 20);
}

#[test]
fn genai_response_fields_are_the_output_of_a_span_without_ret() {
    let s = TestStore::new();
    with_layer(&s.client, || {
        let span = info_span!(
            "chat",
            gen_ai.request.model = "gpt-4o",
            gen_ai.response.model = tracing::field::Empty,
            gen_ai.response.id = tracing::field::Empty,
            gen_ai.usage.input_tokens = tracing::field::Empty,
        );
        span.record("gen_ai.response.model", "gpt-4o-2024-08-06");
        span.record("gen_ai.response.id", "chatcmpl-1");
        span.record("gen_ai.usage.input_tokens", 3);
        span.in_scope(|| {});
    });
    let call = &all_calls(&s.client)[0];
    assert_eq!(
        call.output(),
        json!({"gen_ai.response.model": "gpt-4o-2024-08-06", "gen_ai.response.id": "chatcmpl-1"})
    );
    assert_eq!(call.inputs()["gen_ai.request.model"], "gpt-4o");
    assert_eq!(call.usage()["gpt-4o-2024-08-06"]["input_tokens"], 3);
}

/// What an LLM library does inside an op when a span is current (rig's `completion` inside
/// `#[weave::op]`): it records the response's GenAI fields on `Span::current()` — the op's
/// span — instead of making its own.
fn library_records_on_current_span(model: &str, id: &str, input: u64, output: u64) {
    let span = tracing::Span::current();
    span.record("gen_ai.request.model", "gpt-4o");
    span.record("gen_ai.usage.input_tokens", input);
    span.record("gen_ai.usage.output_tokens", output);
    span.record("gen_ai.response.id", id);
    span.record("gen_ai.response.model", model);
}

#[weave::op]
fn answer(question: &str) -> String {
    library_records_on_current_span("gpt-4o-2024-08-06", "chatcmpl-1", 20, 7);
    format!("re: {question}")
}

#[weave::op]
fn two_calls() -> u32 {
    library_records_on_current_span("gpt-4o-2024-08-06", "chatcmpl-1", 20, 7);
    library_records_on_current_span("gpt-4o-mini", "chatcmpl-2", 5, 1);
    library_records_on_current_span("gpt-4o-2024-08-06", "chatcmpl-3", 2, 3);
    let span = tracing::Span::current();
    span.record("gen_ai.usage.reasoning.output_tokens", 11u64);
    2
}

#[weave::op]
fn agent() -> String {
    answer("why")
}

/// The op whose span a field lands on, read back by name.
fn named<'a>(calls: &'a [weave::Call], name: &str) -> &'a weave::Call {
    calls
        .iter()
        .find(|c| c.func_name() == name)
        .unwrap_or_else(|| panic!("no call {name}"))
}

#[test]
fn genai_fields_recorded_inside_an_op_land_in_its_call() {
    let s = TestStore::new();
    s.client
        .add_cost("gpt-4o-2024-08-06", 0.000_002_5, 0.000_01)
        .unwrap();
    with_layer(&s.client, || {
        let root = s.client.create_call("root", json!({})).unwrap();
        assert_eq!(agent(), "re: why");
        s.client.finish_call(&root, ()).unwrap();
    });
    let calls = all_calls(&s.client);
    let op = named(&calls, "answer");
    let usage = json!({"gpt-4o-2024-08-06": {
        "input_tokens": 20, "output_tokens": 7, "total_tokens": 27, "requests": 1
    }});
    assert_eq!(Value::Object(op.usage()), usage);
    // The op's output is what it returned; the response fields are in its summary.
    assert_eq!(op.output(), json!("re: why"));
    assert_eq!(
        op.summary().unwrap()["gen_ai"],
        json!({"response": {"id": "chatcmpl-1", "model": "gpt-4o-2024-08-06"}})
    );
    assert_eq!(op.summary().unwrap()["status_counts"]["success"], 1);
    // Inputs are the op's arguments only.
    assert_eq!(
        Value::Object(op.inputs().clone()),
        json!({"question": "why"})
    );
    // Rolled up to the op that called it, and to the root; priced like any usage.
    assert_eq!(Value::Object(named(&calls, "agent").usage()), usage);
    // The response fields are the op's own, not rolled up.
    assert!(named(&calls, "agent")
        .summary()
        .unwrap()
        .get("gen_ai")
        .is_none());
    assert_eq!(Value::Object(named(&calls, "root").usage()), usage);
    let root_back = s
        .client
        .get_call_with(named(&calls, "root").id(), true)
        .unwrap();
    let cost = &root_back.weave_summary().unwrap()["costs"]["gpt-4o-2024-08-06"];
    assert_eq!(cost["prompt_tokens"], 20, "{cost}");
    assert!(close(
        cost["completion_tokens_total_cost"].as_f64().unwrap(),
        7.0 * 0.000_01
    ));
}

#[test]
fn several_llm_calls_inside_one_op_are_summed_by_model() {
    let s = TestStore::new();
    with_layer(&s.client, || {
        let root = s.client.create_call("root", json!({})).unwrap();
        two_calls();
        s.client.finish_call(&root, ()).unwrap();
    });
    let calls = all_calls(&s.client);
    let op = named(&calls, "two_calls");
    assert_eq!(
        Value::Object(op.usage()),
        json!({
            "gpt-4o-2024-08-06": {"input_tokens": 22, "output_tokens": 10,
                "total_tokens": 32, "reasoning_tokens": 11, "requests": 2},
            "gpt-4o-mini": {"input_tokens": 5, "output_tokens": 1,
                "total_tokens": 6, "requests": 1}
        })
    );
    assert_eq!(
        op.summary().unwrap()["gen_ai"]["response"]["id"],
        "chatcmpl-3"
    );
}

#[weave::op]
fn declared_fields() -> Vec<String> {
    let span = tracing::Span::current();
    let meta = span.metadata().expect("the op's span");
    meta.fields().iter().map(|f| f.name().to_string()).collect()
}

#[test]
fn an_ops_span_declares_only_fields_the_genai_mapping_reads() {
    let s = TestStore::new();
    let names = with_layer(&s.client, || {
        let root = s.client.create_call("root", json!({})).unwrap();
        let names = declared_fields();
        s.client.finish_call(&root, ()).unwrap();
        names
    });
    assert_eq!(names[0], "weave.call_id");
    assert!(names.len() > 10, "{names:?}");
    for name in &names[1..] {
        assert!(
            !weave::genai::GenAiRole::of(name).is_empty(),
            "{name} is declared on op spans but not mapped"
        );
    }
}

#[test]
fn otel_and_genai_call_properties_set_the_calls_name_kind_thread_and_exception() {
    let s = TestStore::new();
    with_layer(&s.client, || {
        let span = info_span!(
            "tool_call",
            otel.name = "get_weather(Paris)",
            otel.kind = "client",
            gen_ai.operation.name = "execute_tool",
            gen_ai.conversation.id = "conv-1",
            city = "Paris",
            error.type = Empty,
            otel.status_message = Empty,
        );
        span.record("error.type", "TimeoutError");
        span.record("otel.status_message", "no answer in 30 s");
        span.in_scope(|| {});
    });
    let calls = all_calls(&s.client);
    let c = &calls[0];
    assert_eq!(c.func_name(), "tool_call");
    assert_eq!(c.display_name().as_deref(), Some("get_weather(Paris)"));
    assert_eq!(c.attributes()["weave"]["kind"], "tool");
    assert_eq!(c.thread_id(), Some("conv-1"));
    let e = c.exception_info().expect("failed");
    assert_eq!(
        (e.r#type.as_str(), e.message.as_str()),
        ("TimeoutError", "no answer in 30 s")
    );
    // Properties are not inputs; the operation name stays one.
    assert_eq!(
        Value::Object(c.inputs().clone()),
        json!({"gen_ai.operation.name": "execute_tool", "city": "Paris"})
    );
}

#[test]
fn openinference_spans_give_kind_output_and_usage_and_error_status_fails_the_call() {
    let s = TestStore::new();
    with_layer(&s.client, || {
        let span = info_span!(
            "llm",
            openinference.span.kind = "LLM",
            input.value = "hi",
            llm.model_name = "m-1",
            output.value = Empty,
            llm.token_count.prompt = Empty,
            llm.token_count.completion_details.reasoning = Empty,
        );
        span.record("output.value", "hello");
        span.record("llm.token_count.prompt", 3);
        span.record("llm.token_count.completion_details.reasoning", 2);
        span.in_scope(|| {});
        let failed = info_span!(
            "chat",
            gen_ai.operation.name = "chat",
            otel.status_code = Empty
        );
        failed.record("otel.status_code", "ERROR");
        failed.in_scope(|| {});
    });
    let calls = all_calls(&s.client);
    let llm = named(&calls, "llm");
    assert_eq!(llm.attributes()["weave"]["kind"], "llm");
    assert_eq!(llm.output(), json!("hello"));
    assert_eq!(
        Value::Object(llm.usage()),
        json!({"m-1": {"prompt_tokens": 3, "reasoning_tokens": 2, "requests": 1}})
    );
    assert_eq!(
        Value::Object(llm.inputs().clone()),
        json!({"openinference.span.kind": "LLM", "input.value": "hi", "llm.model_name": "m-1"})
    );
    assert!(llm.exception_info().is_none());
    let chat = named(&calls, "chat");
    assert_eq!(chat.exception_info().expect("failed").r#type, "Error");
    assert_eq!(chat.attributes()["weave"]["kind"], "llm");
}

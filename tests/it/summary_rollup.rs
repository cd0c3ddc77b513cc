//! `finish_call` computes the summary as the Weave client does (PROTOCOL §4.4).

use serde_json::json;
use weave::{CallOptions, TraceStatus};
use weave_testkit::backends;

use crate::common::TestStore;

#[backends]
fn usage_comes_from_an_output_with_usage_and_model() {
    let s = TestStore::new();
    let llm = s
        .client
        .create_call("llm", json!({"prompt": "hi"}))
        .unwrap();
    s.client
        .finish_call(&llm, json!({"model": "gpt-4o", "usage": {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14}, "text": "yo"}))
        .unwrap();
    let back = s.client.get_call(llm.id()).unwrap();
    assert_eq!(
        back.summary().unwrap()["usage"],
        json!({"gpt-4o": {"requests": 1, "prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14}})
    );
    assert_eq!(
        back.summary().unwrap()["status_counts"],
        json!({"success": 1, "error": 0})
    );

    // Without `model`, or with a non-object usage, there is no usage summary.
    for output in [
        json!({"usage": {"prompt_tokens": 1}}),
        json!({"model": "m", "usage": 5}),
        json!("text"),
    ] {
        let c = s.client.create_call("other", json!({})).unwrap();
        s.client.finish_call(&c, output).unwrap();
        assert!(s
            .client
            .get_call(c.id())
            .unwrap()
            .summary()
            .unwrap()
            .get("usage")
            .is_none());
    }
}

#[backends]
fn children_summaries_are_deep_summed_with_status_counts_of_the_subtree() {
    let s = TestStore::new();
    let agent = s.client.create_call("agent", json!({})).unwrap();
    for (model, p, c) in [("gpt-4o", 10, 5), ("gpt-4o", 20, 7), ("claude", 3, 1)] {
        let llm = s.client.create_call("llm", json!({})).unwrap();
        s.client
            .finish_call(
                &llm,
                json!({"model": model, "usage": {"prompt_tokens": p, "completion_tokens": c}}),
            )
            .unwrap();
    }
    let tool = s.client.create_call("tool", json!({})).unwrap();
    let nested = s.client.create_call("nested_llm", json!({})).unwrap();
    s.client
        .finish_call(
            &nested,
            json!({"model": "claude", "usage": {"prompt_tokens": 100}}),
        )
        .unwrap();
    s.client.fail_call(&tool, "boom".to_string()).unwrap();
    s.client.finish_call(&agent, "done").unwrap();

    let back = s.client.get_call(agent.id()).unwrap();
    let summary = back.summary().unwrap();
    assert_eq!(
        summary["usage"],
        json!({
            "gpt-4o": {"requests": 2, "prompt_tokens": 30, "completion_tokens": 12},
            "claude": {"requests": 2, "prompt_tokens": 103, "completion_tokens": 1}
        })
    );
    // 3 llm + nested + agent succeeded, the tool failed.
    assert_eq!(summary["status_counts"], json!({"success": 5, "error": 1}));
    assert_eq!(back.status(), TraceStatus::DescendantError);
    let tool_back = s.client.get_call(tool.id()).unwrap();
    assert_eq!(
        tool_back.summary().unwrap()["status_counts"],
        json!({"success": 1, "error": 1})
    );
    assert_eq!(tool_back.status(), TraceStatus::Error);
}

#[backends]
fn a_call_with_children_ignores_its_own_output_usage_as_python_does() {
    let s = TestStore::new();
    let parent = s.client.create_call("wrapper", json!({})).unwrap();
    let child = s.client.create_call("child", json!({})).unwrap();
    s.client
        .finish_call(&child, json!({"model": "a", "usage": {"prompt_tokens": 1}}))
        .unwrap();
    s.client
        .finish_call(
            &parent,
            json!({"model": "b", "usage": {"prompt_tokens": 50}}),
        )
        .unwrap();
    let usage = s.client.get_call(parent.id()).unwrap().usage();
    assert_eq!(usage.keys().collect::<Vec<_>>(), ["a"]);
}

#[backends]
fn unfinished_children_count_as_children_but_add_nothing() {
    let s = TestStore::new();
    let parent = s.client.create_call("parent", json!({})).unwrap();
    let _running = s
        .client
        .create_call_with(
            "bg",
            json!({}),
            CallOptions::new().parent(&parent).use_stack(false),
        )
        .unwrap();
    s.client
        .finish_call(
            &parent,
            json!({"model": "m", "usage": {"prompt_tokens": 9}}),
        )
        .unwrap();
    let summary = s.client.get_call(parent.id()).unwrap().summary().unwrap();
    assert!(summary.get("usage").is_none());
    assert_eq!(summary["status_counts"], json!({"success": 1, "error": 0}));
}

#[backends]
fn user_summary_values_are_merged_under_the_computed_ones() {
    let s = TestStore::new();
    let call = s.client.create_call("scored", json!({})).unwrap();
    call.set_summary_value("score", 0.9);
    call.set_summary_value("status_counts", json!({"success": 100}));
    s.client.finish_call(&call, ()).unwrap();
    let summary = s.client.get_call(call.id()).unwrap().summary().unwrap();
    assert_eq!(summary["score"], 0.9);
    // Computed keys win over user keys, as in the Python client.
    assert_eq!(summary["status_counts"], json!({"success": 1, "error": 0}));
}

#[backends]
fn many_children_roll_up_exactly() {
    let s = TestStore::new();
    let root = s.client.create_call("batch", json!({})).unwrap();
    for i in 0..1000 {
        let c = s.client.create_call("item", json!({"i": i})).unwrap();
        if i % 10 == 0 {
            s.client.fail_call(&c, format!("item {i} failed")).unwrap();
        } else {
            s.client
                .finish_call(
                    &c,
                    json!({"model": "m", "usage": {"prompt_tokens": 2, "cost": 0.5}}),
                )
                .unwrap();
        }
    }
    s.client.finish_call(&root, ()).unwrap();
    let summary = s.client.get_call(root.id()).unwrap().summary().unwrap();
    assert_eq!(
        summary["status_counts"],
        json!({"success": 901, "error": 100})
    );
    assert_eq!(summary["usage"]["m"]["requests"], 900);
    assert_eq!(summary["usage"]["m"]["prompt_tokens"], 1800);
    assert_eq!(summary["usage"]["m"]["cost"], 450.0);
}

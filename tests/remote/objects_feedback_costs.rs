//! Objects, tables, feedback and costs over HTTP.

use serde_json::json;

use crate::common::remote_client;

#[test]
fn objects_and_tables_round_trip_over_http() {
    let client = remote_client();
    let r = client
        .save(
            &json!({"model": "gpt-4o", "temperature": 0.2}),
            "agent config",
        )
        .unwrap();
    assert_eq!(r.name, "agent-config");
    assert_eq!(client.get(&r).unwrap()["temperature"], 0.2);
    let r2 = client
        .save(
            &json!({"model": "gpt-4o", "temperature": 0.7}),
            "agent config",
        )
        .unwrap();
    assert_ne!(r.digest, r2.digest);
    assert_eq!(client.object_versions("agent-config").unwrap().len(), 2);
    let latest = format!(
        "weave:///{}/object/agent-config:latest",
        client.project_id()
    );
    assert_eq!(client.get(&latest).unwrap()["temperature"], 0.7);

    let table = client
        .save_table((0..5).map(|i| json!({"q": format!("question {i}"), "i": i})))
        .unwrap();
    let rows: Vec<_> = client.table_rows(&table).map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 5);
}

#[test]
fn feedback_and_costs_over_http() {
    let client = remote_client();
    let call = client.create_call("llm", json!({"prompt": "hi"})).unwrap();
    client
        .finish_call(
            &call,
            json!({"model": "acme-1", "usage": {"prompt_tokens": 100, "completion_tokens": 10}}),
        )
        .unwrap();
    let stored = client.get_call(call.id()).unwrap();
    stored.feedback().add_reaction("👍").unwrap();
    stored.feedback().add_note("looks right").unwrap();
    let fb: Vec<_> = client
        .get_feedback(weave::FeedbackFilter::new())
        .iter()
        .map(|f| f.unwrap())
        .collect();
    assert_eq!(fb.len(), 2);

    client.add_cost("acme-1", 0.01, 0.1).unwrap();
    let with_costs = client.get_call_with(call.id(), true).unwrap();
    let cost = &with_costs.weave_summary().unwrap()["costs"]["acme-1"];
    assert_eq!(cost["prompt_tokens"], 100);
    assert!((cost["prompt_tokens_total_cost"].as_f64().unwrap() - 1.0).abs() < 1e-9);
    assert!((cost["completion_tokens_total_cost"].as_f64().unwrap() - 1.0).abs() < 1e-9);
}

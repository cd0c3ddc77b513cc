//! Costs, feedback and objects on the embedded store.
//!
//! ```text
//! cargo run --example feedback_and_costs
//! ```
//!
//! 1. Publishes the agent's configuration as a versioned object and passes its ref as a call
//!    input (the call is then found by the ref).
//! 2. Adds a price for the model and reads the call's cost back.
//! 3. Adds feedback to the call and queries it.

use serde::{Deserialize, Serialize};
use serde_json::json;
use weave::{CallsFilter, CallsQuery, FeedbackFilter, WeaveClient};

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct AgentConfig {
    model: String,
    temperature: f64,
    system_prompt: String,
}

fn main() -> weave::Result<()> {
    let client = WeaveClient::embedded("quickstart/costs-and-feedback")?;
    weave::set_global_client(Some(client.clone()));

    // 1. A config object, published and used as an input.
    let config = AgentConfig {
        model: "acme-llm-1".into(),
        temperature: 0.2,
        system_prompt: "Answer in one sentence.".into(),
    };
    let config_ref = weave::publish(&config, "agent config")?;
    println!("config published as {config_ref}");
    let versions = client.object_versions(&config_ref.name)?;
    println!(
        "  {} version(s); this one is v{}",
        versions.len(),
        versions.last().map_or(0, |v| v.version_index)
    );
    let same: AgentConfig = client.get_as(format!(
        "weave:///{}/object/{}:latest",
        client.project_id(),
        config_ref.name
    ))?;
    assert_eq!(same, config);

    // 2. A price for the model (per token), then a call that reports usage.
    let (llm, cost_id) = client.add_cost(&config.model, 0.000_003, 0.000_015)?;
    println!("price added for {llm} ({cost_id})");

    let call = client.create_call(
        "answer",
        json!({"config": config_ref, "question": "Is Rust fast?"}),
    )?;
    client.finish_call(
        &call,
        json!({
            "model": config.model,
            "usage": {"prompt_tokens": 1200, "completion_tokens": 300, "total_tokens": 1500},
            "text": "Yes: it compiles to native code with no garbage collector.",
        }),
    )?;

    let with_costs = client.get_call_with(call.id(), true)?;
    let cost = &with_costs.weave_summary().unwrap_or_default()["costs"][&config.model];
    println!(
        "call cost: {} prompt tokens → ${:.4}, {} completion tokens → ${:.4}",
        cost["prompt_tokens"],
        cost["prompt_tokens_total_cost"]
            .as_f64()
            .unwrap_or_default(),
        cost["completion_tokens"],
        cost["completion_tokens_total_cost"]
            .as_f64()
            .unwrap_or_default(),
    );

    // The call is found through the config it used.
    let using_config = client.get_calls(CallsQuery::new().filter(CallsFilter {
        input_refs: Some(vec![config_ref.to_string()]),
        ..Default::default()
    }));
    println!("calls that used this config: {}", using_config.size()?);

    // 3. Feedback: a reaction and a note, then queried back.
    call.feedback().add_reaction("👍")?;
    call.feedback().add_note("Correct, and short as asked.")?;
    for f in call.feedback().iter() {
        let f = f?;
        println!(
            "feedback {}: {}",
            f.feedback_type,
            serde_json::Value::Object(f.payload)
        );
    }
    let thumbs_up = client.get_feedback(FeedbackFilter::new().reaction("👍"));
    println!("👍 reactions in the project: {}", thumbs_up.len()?);
    Ok(())
}

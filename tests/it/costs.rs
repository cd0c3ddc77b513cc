//! Prices and costs: add_cost, query_costs, purge_costs, and `include_costs` on call reads
//! (PROTOCOL §3.7, §4.8). On both backends; where the reference server differs, the test
//! checks its own answer (see `is_reference`).

use serde_json::{json, Value};
use weave::query::field;
use weave::schema::{CostCreateInput, CostPurgeReq, CostQueryReq};
use weave::{CallsQuery, CostsQuery, Query, Timestamp, WeaveError};
use weave_testkit::backends;

use crate::common::{ts, TestStore};

/// A finished LLM call reporting `usage` for `model`, started at `started_at`.
fn llm_call(s: &TestStore, model: &str, usage: Value, started_at: Option<Timestamp>) -> String {
    let mut opts = weave::CallOptions::new().use_stack(false);
    if let Some(t) = started_at {
        opts = opts.started_at(t);
    }
    let call = s.client.create_call_with("llm", json!({}), opts).unwrap();
    s.client
        .finish_call(&call, json!({"model": model, "usage": usage}))
        .unwrap();
    call.id().to_string()
}

fn costs_of(s: &TestStore, id: &str) -> Option<Value> {
    let call = s.client.get_call_with(id, true).unwrap();
    call.weave_summary().unwrap().get("costs").cloned()
}

#[backends]
fn add_cost_returns_llm_and_cost_ids_and_query_finds_it() {
    let s = TestStore::new();
    let (llm, id) = s.client.add_cost("my-model", 0.001, 0.002).unwrap();
    assert_eq!(llm, "my-model");
    assert!(weave::is_valid_call_id(&id), "cost ids are UUIDs: {id}");
    let found = s.client.query_costs(id.as_str()).unwrap();
    assert_eq!(found.len(), 1);
    let c = &found[0];
    assert_eq!(c.id.as_deref(), Some(id.as_str()));
    assert_eq!(c.llm_id.as_deref(), Some("my-model"));
    assert_eq!(c.prompt_token_cost, Some(0.001));
    assert_eq!(c.completion_token_cost, Some(0.002));
    assert_eq!(c.prompt_token_cost_unit.as_deref(), Some("USD"));
    assert_eq!(c.completion_token_cost_unit.as_deref(), Some("USD"));
    assert_eq!(c.provider_id.as_deref(), Some("default"));
    let age = Timestamp::now().as_nanos() - c.effective_date.unwrap().as_nanos();
    assert!(
        (0..60_000_000_000).contains(&age),
        "effective now by default"
    );
}

#[backends]
fn every_add_cost_parameter_is_stored() {
    let s = TestStore::new();
    let when = ts("2024-09-01T00:00:00Z");
    let (_, id) = s
        .client
        .add_cost_with(
            "m",
            CostCreateInput::new(5.0, 10.0)
                .effective_date(when)
                .units("EUR", "credits")
                .provider_id("azure"),
        )
        .unwrap();
    let c = &s.client.query_costs(CostsQuery::new().id(&id)).unwrap()[0];
    assert_eq!(c.effective_date, Some(when));
    assert_eq!(c.prompt_token_cost_unit.as_deref(), Some("EUR"));
    assert_eq!(c.completion_token_cost_unit.as_deref(), Some("credits"));
    assert_eq!(c.provider_id.as_deref(), Some("azure"));
}

#[backends]
fn query_costs_by_llm_ids_query_offset_and_limit() {
    let s = TestStore::new();
    for (m, p) in [("a", 1.0), ("b", 2.0), ("a", 3.0), ("c", 4.0)] {
        s.client.add_cost(m, p, 0.0).unwrap();
    }
    let by_llm = s
        .client
        .query_costs(CostsQuery::new().llm_ids(["a", "c"]))
        .unwrap();
    let mut prices: Vec<f64> = by_llm
        .iter()
        .map(|c| c.prompt_token_cost.unwrap())
        .collect();
    prices.sort_by(f64::total_cmp);
    assert_eq!(prices, [1.0, 3.0, 4.0]);
    let cheap = s
        .client
        .query_costs(Query::new(field("prompt_token_cost").lt(2.5)))
        .unwrap();
    assert_eq!(cheap.len(), 2);
    let both = s
        .client
        .query_costs(
            CostsQuery::new()
                .query(field("prompt_token_cost").gt(1.5))
                .llm_ids(["a"]),
        )
        .unwrap();
    assert_eq!(
        both.iter()
            .map(|c| c.prompt_token_cost.unwrap())
            .collect::<Vec<_>>(),
        [3.0]
    );
    assert_eq!(
        s.client
            .query_costs(CostsQuery::new().limit(3))
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        s.client
            .query_costs(CostsQuery::new().offset(3))
            .unwrap()
            .len(),
        1
    );
    // The default limit is Python's 100.
    for i in 0..120 {
        s.client.add_cost(&format!("bulk-{i}"), 1.0, 1.0).unwrap();
    }
    assert_eq!(s.client.query_costs(CostsQuery::new()).unwrap().len(), 100);
}

#[backends]
fn query_costs_fields_and_sorting_through_the_server() {
    let s = TestStore::new();
    s.client.add_cost("x", 2.0, 0.0).unwrap();
    s.client.add_cost("y", 1.0, 0.0).unwrap();
    let res = s
        .server
        .cost_query(CostQueryReq {
            project_id: "test-entity/test-project".into(),
            fields: Some(vec!["llm_id".into(), "prompt_token_cost".into()]),
            query: None,
            sort_by: Some(vec![weave::SortBy::asc("prompt_token_cost")]),
            limit: None,
            offset: None,
        })
        .unwrap();
    let v = serde_json::to_value(&res).unwrap();
    assert_eq!(
        v,
        json!({"results": [{"llm_id": "y", "prompt_token_cost": 1.0}, {"llm_id": "x", "prompt_token_cost": 2.0}]})
    );
    let err = s
        .server
        .cost_query(CostQueryReq {
            project_id: "test-entity/test-project".into(),
            fields: Some(vec!["nope".into()]),
            query: None,
            sort_by: None,
            limit: None,
            offset: None,
        })
        .unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");
}

#[backends]
fn purge_costs_by_id_only() {
    let s = TestStore::new();
    let (_, a) = s.client.add_cost("a", 1.0, 1.0).unwrap();
    let (_, b) = s.client.add_cost("b", 1.0, 1.0).unwrap();
    let (_, c) = s.client.add_cost("c", 1.0, 1.0).unwrap();
    s.client.purge_costs([&a, &b]).unwrap();
    let left: Vec<String> = s
        .client
        .query_costs(CostsQuery::new())
        .unwrap()
        .into_iter()
        .map(|c| c.id.unwrap())
        .collect();
    assert_eq!(left, std::slice::from_ref(&c));
    // The server refuses anything but ids.
    let err = s
        .server
        .cost_purge(CostPurgeReq {
            project_id: "test-entity/test-project".into(),
            query: Query::new(field("llm_id").eq("c")),
        })
        .unwrap_err();
    assert!(matches!(err, WeaveError::InvalidInput(_)), "{err}");
    if s.is_reference() {
        // Reference server: its own wording (token_costs.validate_cost_purge_req).
        assert!(
            err.to_string()
                .contains("Can only purge costs by specifying one or more cost ids"),
            "{err}"
        );
    } else {
        assert!(err.to_string().contains("by id"), "{err}");
    }
    // An $or of $eq on id is accepted.
    s.server
        .cost_purge(CostPurgeReq {
            project_id: "test-entity/test-project".into(),
            query: serde_json::from_value(json!({"$expr": {"$or": [
                {"$eq": [{"$getField": "id"}, {"$literal": c}]},
                {"$eq": [{"$getField": "id"}, {"$literal": "unknown"}]}
            ]}}))
            .unwrap(),
        })
        .unwrap();
    assert!(s.client.query_costs(CostsQuery::new()).unwrap().is_empty());
}

#[backends]
fn costs_are_per_project() {
    let s = TestStore::new();
    let other = weave::WeaveClient::new("test-entity", "other", s.server.clone(), false).unwrap();
    other.add_cost("shared-model", 1.0, 1.0).unwrap();
    assert!(s.client.query_costs(CostsQuery::new()).unwrap().is_empty());
    let id = llm_call(&s, "shared-model", json!({"prompt_tokens": 1}), None);
    assert_eq!(
        costs_of(&s, &id),
        None,
        "another project's price does not apply"
    );
}

#[backends]
fn include_costs_computes_every_field() {
    let s = TestStore::new();
    let when = ts("2020-01-01T00:00:00Z");
    s.client
        .add_cost_with(
            "gpt-x",
            CostCreateInput::new(0.001, 0.002).effective_date(when),
        )
        .unwrap();
    let id = llm_call(
        &s,
        "gpt-x",
        json!({"prompt_tokens": 10, "input_tokens": 5, "completion_tokens": 4, "output_tokens": 1, "total_tokens": 20}),
        None,
    );
    let costs = costs_of(&s, &id).expect("costs");
    let c = &costs["gpt-x"];
    assert_eq!(c["prompt_tokens"], 15, "prompt tokens count input_tokens");
    assert_eq!(
        c["completion_tokens"], 5,
        "completion tokens count output_tokens"
    );
    assert_eq!(c["requests"], 1);
    assert_eq!(c["total_tokens"], 20);
    assert!((c["prompt_tokens_total_cost"].as_f64().unwrap() - 0.015).abs() < 1e-12);
    assert!((c["completion_tokens_total_cost"].as_f64().unwrap() - 0.010).abs() < 1e-12);
    assert_eq!(c["prompt_token_cost"], 0.001);
    assert_eq!(c["completion_token_cost"], 0.002);
    assert_eq!(c["prompt_token_cost_unit"], "USD");
    assert_eq!(c["completion_token_cost_unit"], "USD");
    assert_eq!(c["provider_id"], "default");
    assert_eq!(c["pricing_level"], "project");
    if s.is_reference() {
        // Reference server: the costs block holds the price row's columns as SQLite stores
        // them (SqliteTraceServer's costs lookup copies `best_row[...]`): `effective_date` as
        // cost_create wrote it with `_serialize_cost_datetime`, i.e. Python's `isoformat()`,
        // not the server's `…000000Z` format, and `pricing_level_id` as the internal (base64)
        // project id, which ExternalTraceServer converts back in cost_query but not inside a
        // call's summary.
        assert_eq!(c["effective_date"], "2020-01-01T00:00:00+00:00");
        assert_eq!(c["pricing_level_id"], "dGVzdC1lbnRpdHkvdGVzdC1wcm9qZWN0");
    } else {
        assert_eq!(c["effective_date"], when.to_string());
        assert_eq!(c["pricing_level_id"], "test-entity/test-project");
    }
    assert!(c["created_at"]
        .as_str()
        .unwrap()
        .parse::<Timestamp>()
        .is_ok());
    assert!(c.get("created_by").is_some());
    // Without include_costs there is no costs key.
    assert!(s
        .client
        .get_call(&id)
        .unwrap()
        .weave_summary()
        .unwrap()
        .get("costs")
        .is_none());
}

#[backends]
fn a_call_without_a_priced_model_has_no_costs_key() {
    let s = TestStore::new();
    s.client.add_cost("priced", 1.0, 1.0).unwrap();
    let unpriced = llm_call(&s, "unpriced", json!({"prompt_tokens": 3}), None);
    assert_eq!(costs_of(&s, &unpriced), None);
    let plain = crate::common::record(&s.client, "tool", json!({}), json!("no usage"));
    assert_eq!(costs_of(&s, plain.id()), None);
}

#[backends]
fn only_priced_models_get_an_entry_and_children_roll_up() {
    let s = TestStore::new();
    s.client.add_cost("a", 1.0, 2.0).unwrap();
    let agent = s.client.create_call("agent", json!({})).unwrap();
    for (m, p) in [("a", 3), ("b", 7), ("a", 4)] {
        let c = s.client.create_call("llm", json!({})).unwrap();
        s.client
            .finish_call(
                &c,
                json!({"model": m, "usage": {"prompt_tokens": p, "completion_tokens": 1}}),
            )
            .unwrap();
    }
    s.client.finish_call(&agent, ()).unwrap();
    let costs = costs_of(&s, agent.id()).unwrap();
    assert_eq!(costs.as_object().unwrap().keys().collect::<Vec<_>>(), ["a"]);
    assert_eq!(costs["a"]["prompt_tokens"], 7);
    assert_eq!(costs["a"]["requests"], 2);
    assert_eq!(costs["a"]["prompt_tokens_total_cost"], 7.0);
    assert_eq!(costs["a"]["completion_tokens_total_cost"], 4.0);
}

#[backends]
fn the_price_is_chosen_as_the_server_does() {
    let s = TestStore::new();
    let start = ts("2024-06-01T00:00:00Z");
    // Older and newer-but-still-past prices: the latest one not after the call wins.
    s.client
        .add_cost_with(
            "m",
            CostCreateInput::new(1.0, 0.0).effective_date(ts("2023-01-01T00:00:00Z")),
        )
        .unwrap();
    s.client
        .add_cost_with(
            "m",
            CostCreateInput::new(2.0, 0.0).effective_date(ts("2024-01-01T00:00:00Z")),
        )
        .unwrap();
    // A price from after the call started is not used while an earlier one exists.
    s.client
        .add_cost_with(
            "m",
            CostCreateInput::new(9.0, 0.0).effective_date(ts("2025-01-01T00:00:00Z")),
        )
        .unwrap();
    let id = llm_call(&s, "m", json!({"prompt_tokens": 1}), Some(start));
    assert_eq!(costs_of(&s, &id).unwrap()["m"]["prompt_token_cost"], 2.0);

    // Only future prices: the earliest-ranked future one is used, as on the Weave server.
    s.client
        .add_cost_with(
            "f",
            CostCreateInput::new(5.0, 0.0).effective_date(ts("2030-01-01T00:00:00Z")),
        )
        .unwrap();
    let id = llm_call(&s, "f", json!({"prompt_tokens": 1}), Some(start));
    assert_eq!(costs_of(&s, &id).unwrap()["f"]["prompt_token_cost"], 5.0);

    // Each call gets the price in force when it started.
    let early = llm_call(
        &s,
        "m",
        json!({"prompt_tokens": 1}),
        Some(ts("2023-06-01T00:00:00Z")),
    );
    assert_eq!(costs_of(&s, &early).unwrap()["m"]["prompt_token_cost"], 1.0);
}

#[backends]
fn include_costs_on_get_calls_and_with_columns() {
    let s = TestStore::new();
    s.client.add_cost("m", 0.5, 0.25).unwrap();
    for p in [2, 4] {
        llm_call(
            &s,
            "m",
            json!({"prompt_tokens": p, "completion_tokens": 4}),
            None,
        );
    }
    let calls = crate::common::calls(
        &s.client,
        CallsQuery::new().include_costs(true).columns(["id"]),
    );
    let totals: Vec<f64> = calls
        .iter()
        .map(|c| {
            c.weave_summary().unwrap()["costs"]["m"]["prompt_tokens_total_cost"]
                .as_f64()
                .unwrap()
        })
        .collect();
    assert_eq!(totals, [1.0, 2.0]);
}

#[backends]
fn bad_prices_are_errors() {
    let s = TestStore::new();
    assert!(matches!(
        s.client.add_cost("", 1.0, 1.0),
        Err(WeaveError::InvalidInput(_))
    ));
    let err = s.client.add_cost("m", f64::NAN, 1.0).unwrap_err();
    assert!(matches!(err, WeaveError::InvalidInput(_)), "{err}");
    if s.is_reference() {
        // Reference server: NaN goes out as JSON `null` (JSON has no NaN), which the pydantic
        // request model (CostCreateInput.prompt_token_cost: float) refuses with a 422.
        assert!(
            err.to_string().contains("Input should be a valid number"),
            "{err}"
        );
    } else if s.over_http() {
        // weave serve: NaN goes out as JSON `null` too, which the request type refuses with a
        // 422 naming the field.
        let msg = err.to_string();
        assert!(
            msg.contains("HTTP 422") && msg.contains("prompt_token_cost"),
            "{err}"
        );
    } else {
        assert!(err.to_string().contains("finite"), "{err}");
    }
}

//! The `Call` handle: ref, ui_url, func_name, children (paginated), delete.

use serde_json::json;
use weave::{CallOptions, CallsQuery};
use weave_testkit::backends;

use crate::common::TestStore;

#[backends]
fn ref_and_ui_url() {
    let s = TestStore::with_project("acme", "my proj-1");
    let call = s.client.create_call("op", json!({})).unwrap();
    assert_eq!(
        call.call_ref().to_string(),
        format!("weave:///acme/my proj-1/call/{}", call.id())
    );
    // The UI base: the embedded store's default local app URL (where `weave serve` listens
    // by default); for a remote server without a W&B app URL, the server's own URL (the wandb
    // SDK's `app_url` helper), so a link printed for `weave serve` opens on it.
    let app_url = match (&s.remote, &s.served) {
        (Some(rs), _) => rs.url.clone(),
        (_, Some(served)) => served.url().to_string(),
        _ => "http://127.0.0.1:6346".to_string(),
    };
    assert_eq!(
        call.ui_url(),
        format!("{app_url}/acme/my%20proj-1/r/call/{}", call.id())
    );
    let parsed: weave::refs::Ref = call.call_ref().to_string().parse().unwrap();
    assert!(matches!(parsed, weave::refs::Ref::Call(c) if c.id == call.id()));
}

#[backends]
fn func_name_parses_op_refs() {
    let s = TestStore::new();
    let op = "weave:///test-entity/test-project/op/generate_answer:4kEqLxqJ0TDWDmBAHmAHmAHmAHmAHmAHmAHmAHmAHmA";
    let call = s.client.create_call(op, json!({})).unwrap();
    s.client.finish_call(&call, ()).unwrap();
    let back = s.client.get_call(call.id()).unwrap();
    assert_eq!(back.op_name(), op);
    assert_eq!(back.func_name(), "generate_answer");
    assert_eq!(
        back.weave_summary().unwrap()["trace_name"],
        "generate_answer"
    );
    // A ref that is not an op ref is not a valid op name.
    let err = s
        .client
        .create_call("weave:///e/p/object/cfg:abc", json!({}))
        .unwrap_err();
    assert!(err.to_string().contains("not an op ref"), "{err}");
}

#[backends]
fn children_are_paginated_and_ordered() {
    let s = TestStore::new();
    let root = s.client.create_call("root", json!({})).unwrap();
    for i in 0..25 {
        let c = s.client.create_call("child", json!({"i": i})).unwrap();
        s.client.finish_call(&c, i).unwrap();
    }
    s.client.finish_call(&root, ()).unwrap();
    let kids = root.children().page_size(4);
    assert_eq!(kids.size().unwrap(), 25);
    let order: Vec<i64> = kids
        .map(|c| c.unwrap().inputs()["i"].as_i64().unwrap())
        .collect();
    assert_eq!(order, (0..25).collect::<Vec<_>>());
    // Grandchildren are not children.
    let first = s
        .client
        .get_calls(CallsQuery::new().limit(2))
        .nth(1)
        .unwrap()
        .unwrap();
    assert_eq!(first.children().count(), 0);
}

#[backends]
fn delete_through_the_handle() {
    let s = TestStore::new();
    let root = s.client.create_call("root", json!({})).unwrap();
    let child = s
        .client
        .create_call_with(
            "child",
            json!({}),
            CallOptions::new().parent(&root).use_stack(false),
        )
        .unwrap();
    s.client.finish_call(&child, ()).unwrap();
    s.client.finish_call(&root, ()).unwrap();
    root.delete().unwrap();
    assert!(root.deleted_at().is_some());
    assert!(s.client.get_call(root.id()).unwrap_err().is_not_found());
    assert!(s.client.get_call(child.id()).unwrap_err().is_not_found());
}

#[backends]
fn a_call_serializes_as_the_protocol_call_schema() {
    let s = TestStore::new();
    let call = crate::common::record(&s.client, "op", json!({"a": 1}), json!({"b": 2}));
    let v = serde_json::to_value(s.client.get_call(call.id()).unwrap()).unwrap();
    for key in crate::common::CALL_SCHEMA_FIELDS {
        assert!(v.get(key).is_some(), "missing {key} in {v}");
    }
    assert_eq!(v["display_name"], serde_json::Value::Null);
    assert_eq!(v["inputs"], json!({"a": 1}));
    assert!(v["started_at"].as_str().unwrap().ends_with('Z'));
}

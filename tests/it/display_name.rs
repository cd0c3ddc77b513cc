//! Display names: set at start (string or function), updated later, and cleared.

use serde_json::json;
use weave::{query::field, CallOptions, CallsQuery};
use weave_testkit::backends;

use crate::common::TestStore;

#[backends]
fn set_at_start_from_a_string_or_a_function() {
    let s = TestStore::new();
    let a = s
        .client
        .create_call_with(
            "op",
            json!({"city": "Oslo"}),
            CallOptions::new().display_name("Fixed"),
        )
        .unwrap();
    let b = s
        .client
        .create_call_with(
            "op",
            json!({"city": "Oslo"}),
            CallOptions::new().display_name_fn(|c| {
                format!("weather in {}", c.inputs()["city"].as_str().unwrap())
            }),
        )
        .unwrap();
    s.client.finish_call(&a, ()).unwrap();
    s.client.finish_call(&b, ()).unwrap();
    let back_a = s.client.get_call(a.id()).unwrap();
    assert_eq!(back_a.display_name().as_deref(), Some("Fixed"));
    assert_eq!(back_a.weave_summary().unwrap()["display_name"], "Fixed");
    assert!(
        back_a.weave_summary().unwrap().get("trace_name").is_none(),
        "display_name and trace_name are exclusive"
    );
    assert_eq!(
        s.client.get_call(b.id()).unwrap().display_name().as_deref(),
        Some("weather in Oslo")
    );
}

#[backends]
fn set_later_and_cleared() {
    let s = TestStore::new();
    let call = s.client.create_call("op", json!({})).unwrap();
    s.client.finish_call(&call, ()).unwrap();
    call.set_display_name("Renamed").unwrap();
    assert_eq!(call.display_name().as_deref(), Some("Renamed"));
    let back = s.client.get_call(call.id()).unwrap();
    assert_eq!(back.display_name().as_deref(), Some("Renamed"));
    // The name is queryable and sortable like the server's.
    let q = CallsQuery::new().query(field("display_name").eq("Renamed"));
    assert_eq!(s.client.get_calls(q).size().unwrap(), 1);

    // Renaming through a read-back handle works too; latest wins.
    back.set_display_name("Again").unwrap();
    assert_eq!(
        s.client
            .get_call(call.id())
            .unwrap()
            .display_name()
            .as_deref(),
        Some("Again")
    );

    call.remove_display_name().unwrap();
    let cleared = s.client.get_call(call.id()).unwrap();
    assert_eq!(cleared.display_name(), None);
    assert_eq!(cleared.weave_summary().unwrap()["trace_name"], "op");
    assert!(
        cleared.set_display_name("").is_err(),
        "empty name is an error, use remove_display_name"
    );
}

#[backends]
fn renaming_a_call_just_created_is_not_lost_behind_the_queue() {
    let s = TestStore::new();
    let call = s.client.create_call("op", json!({})).unwrap();
    call.set_display_name("Early").unwrap();
    s.client.finish_call(&call, ()).unwrap();
    assert_eq!(
        s.client
            .get_call(call.id())
            .unwrap()
            .display_name()
            .as_deref(),
        Some("Early")
    );
}

#[backends]
fn renaming_an_unknown_or_deleted_call_is_not_found() {
    let s = TestStore::new();
    let call = s.client.create_call("op", json!({})).unwrap();
    s.client.finish_call(&call, ()).unwrap();
    call.delete().unwrap();
    if s.is_reference() {
        // Reference server: `SqliteTraceServer.call_update` runs `UPDATE calls SET
        // display_name = ? WHERE id = ?` without checking that the call exists or is live:
        // renaming a deleted call succeeds, and the call stays deleted.
        call.set_display_name("ghost").unwrap();
        let err = s.client.get_call(call.id()).unwrap_err();
        assert!(err.is_not_found(), "{err}");
    } else {
        let err = call.set_display_name("ghost").unwrap_err();
        assert!(err.is_not_found(), "{err}");
    }
}

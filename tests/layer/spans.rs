//! `tracing` spans become calls: name, inputs (also fields recorded later), `ret` / `err`,
//! events, `attributes.tracing`, written when the span closes, nesting, re-entry.

use serde_json::json;
use tracing::field::Empty;
use tracing::{debug, info, info_span, instrument, warn};
use weave::{TraceStatus, WeaveError};

use crate::common::{all_calls, with_layer, TestStore, Tree};

#[test]
fn a_span_is_a_call_named_after_it_with_its_fields_as_inputs() {
    let s = TestStore::new();
    with_layer(&s.client, || {
        let span = info_span!(
            "fetch_page",
            url = "https://example.com",
            attempt = 2u64,
            delta = -3i64,
            retry = true,
            ratio = 0.5,
            tags = ?vec!["a", "b"],
            who = %"ann",
        );
        span.in_scope(|| {});
    });
    let calls = all_calls(&s.client);
    assert_eq!(calls.len(), 1);
    let c = &calls[0];
    assert_eq!(c.func_name(), "fetch_page");
    assert!(c.parent_id().is_none());
    assert_eq!(
        serde_json::Value::Object(c.inputs().clone()),
        json!({
            "url": "https://example.com",
            "attempt": 2,
            "delta": -3,
            "retry": true,
            "ratio": 0.5,
            "tags": ["a", "b"],
            "who": "ann",
        })
    );
    assert_eq!(c.status(), TraceStatus::Success);
    assert_eq!(c.output(), serde_json::Value::Null);
    assert!(c.exception().is_none());
    assert!(c.ended_at().unwrap() >= c.started_at());
}

#[test]
fn fields_recorded_later_are_inputs_too() {
    let s = TestStore::new();
    with_layer(&s.client, || {
        let span = info_span!("query", sql = "select 1", rows = Empty, status = "pending");
        span.in_scope(|| {});
        span.record("rows", 17);
        // Recorded twice: the last value wins.
        span.record("status", "started");
        span.record("status", "done");
    });
    let calls = all_calls(&s.client);
    assert_eq!(calls.len(), 1);
    assert_eq!(
        serde_json::Value::Object(calls[0].inputs().clone()),
        json!({"sql": "select 1", "rows": 17, "status": "done"})
    );
}

#[test]
fn a_field_declared_empty_and_never_recorded_is_not_an_input() {
    let s = TestStore::new();
    with_layer(&s.client, || {
        let _span = info_span!("lazy", a = 1, never = Empty).entered();
    });
    let calls = all_calls(&s.client);
    assert_eq!(
        serde_json::Value::Object(calls[0].inputs().clone()),
        json!({"a": 1})
    );
}

#[instrument]
fn instrumented_plain(city: &str, days: u32) {
    info!("looking up");
}

#[instrument(name = "renamed_span", skip(secret), fields(extra = 7))]
fn instrumented_renamed(secret: &str, visible: u32) {
    assert!(!secret.is_empty());
}

#[test]
fn instrument_spans_are_named_after_the_function_with_its_arguments() {
    let s = TestStore::new();
    with_layer(&s.client, || {
        instrumented_plain("Paris", 3);
        instrumented_renamed("hunter2", 5);
    });
    let mut calls = all_calls(&s.client);
    calls.sort_by_key(|c| c.started_at());
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].func_name(), "instrumented_plain");
    assert_eq!(
        serde_json::Value::Object(calls[0].inputs().clone()),
        json!({"city": "Paris", "days": 3})
    );
    assert_eq!(calls[1].func_name(), "renamed_span");
    assert_eq!(
        serde_json::Value::Object(calls[1].inputs().clone()),
        json!({"visible": 5, "extra": 7})
    );
}

#[instrument(ret)]
fn add(a: u64, b: u64) -> u64 {
    a + b
}

#[instrument(ret)]
fn greet(name: &str) -> String {
    format!("hello {name}")
}

#[instrument(ret, err)]
fn checked_half(n: i64) -> Result<i64, String> {
    if n % 2 == 0 {
        Ok(n / 2)
    } else {
        Err(format!("{n} is odd"))
    }
}

#[test]
fn instrument_ret_is_the_output_and_a_number_stays_a_number() {
    let s = TestStore::new();
    let (sum, text, half) = with_layer(&s.client, || (add(2, 3), greet("ann"), checked_half(8)));
    assert_eq!((sum, text.as_str(), half), (5, "hello ann", Ok(4)));

    let calls = all_calls(&s.client);
    let by_name = |n: &str| calls.iter().find(|c| c.func_name() == n).unwrap().clone();
    let add_call = by_name("add");
    assert_eq!(add_call.output(), json!(5));
    assert!(add_call.output().is_u64());
    assert_eq!(
        serde_json::Value::Object(add_call.inputs().clone()),
        json!({"a": 2, "b": 3})
    );
    assert_eq!(by_name("greet").output(), json!("hello ann"));
    let half_call = by_name("checked_half");
    assert_eq!(half_call.output(), json!(4));
    assert_eq!(half_call.status(), TraceStatus::Success);
}

/// JSON text nested `depth` arrays deep, as a `Debug` value would print it.
struct Nested(usize);

impl std::fmt::Debug for Nested {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}1{}", "[".repeat(self.0), "]".repeat(self.0))
    }
}

#[instrument(ret)]
fn deep(levels: usize) -> Nested {
    Nested(levels)
}

#[test]
fn deep_values_in_fields_and_ret_are_capped_in_depth() {
    let s = TestStore::new();
    with_layer(&s.client, || {
        info_span!("with_deep_field", tree = ?Nested(120)).in_scope(|| {});
        deep(120);
    });
    let calls = all_calls(&s.client);
    let by_name = |n: &str| calls.iter().find(|c| c.func_name() == n).unwrap().clone();
    let marker = weave::limits::too_deep_marker();
    let depth_to_marker = |mut v: &serde_json::Value| {
        let mut d = 0;
        while let Some(inner) = v.as_array().and_then(|a| a.first()) {
            v = inner;
            d += 1;
        }
        (d, v.clone())
    };
    let (d, leaf) = depth_to_marker(&by_name("with_deep_field").inputs()["tree"]);
    assert_eq!(leaf, marker, "a field nested 120 deep is capped");
    assert!(d <= weave::limits::MAX_DEPTH, "{d}");
    let (d, leaf) = depth_to_marker(&by_name("deep").output());
    assert_eq!(leaf, marker, "a ret value nested 120 deep is capped");
    assert!(d <= weave::limits::MAX_DEPTH, "{d}");
}

#[derive(Debug)]
struct QuotaError {
    left: u32,
}

impl std::fmt::Display for QuotaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "quota exceeded ({} left)", self.left)
    }
}

impl std::error::Error for QuotaError {}

#[instrument(err)]
fn call_api(user: &str) -> Result<u32, QuotaError> {
    Err(QuotaError { left: 0 })
}

#[instrument(err)]
fn parse_port(text: &str) -> Result<u16, std::num::ParseIntError> {
    text.parse()
}

#[test]
fn instrument_err_fails_the_call_with_the_message() {
    let s = TestStore::new();
    let root = s.client.create_call("root", json!({})).unwrap();
    with_layer(&s.client, || {
        assert!(call_api("ann").is_err());
        assert_eq!(parse_port("8080"), Ok(8080));
        assert!(parse_port("80a").is_err());
    });
    s.client.finish_call(&root, ()).unwrap();

    let tree = Tree::of_call(&s.client, root.id());
    let kids = tree.kids(root.id());
    assert_eq!(
        tree.kid_names(root.id()),
        ["call_api", "parse_port", "parse_port"]
    );
    let api = kids[0];
    assert_eq!(api.status(), TraceStatus::Error);
    let exc = api.exception_info().expect("an exception");
    assert_eq!(exc.r#type, "Error");
    assert_eq!(exc.message, "quota exceeded (0 left)");
    assert_eq!(api.output(), serde_json::Value::Null);
    assert_eq!(api.inputs()["user"], "ann");

    // Ok: no exception (and no output without `ret`).
    assert_eq!(kids[1].status(), TraceStatus::Success);
    assert!(kids[1].exception().is_none());
    let bad = kids[2].exception_info().expect("an exception");
    assert_eq!(bad.message, "invalid digit found in string");

    // The root sees its failed children.
    let root_back = s.client.get_call(root.id()).unwrap();
    assert_eq!(root_back.status(), TraceStatus::DescendantError);
    assert_eq!(
        root_back.summary().unwrap()["status_counts"],
        json!({"success": 2, "error": 2})
    );
}

#[test]
fn events_inside_a_span_are_its_summary_events() {
    let s = TestStore::new();
    with_layer(&s.client, || {
        let span = info_span!("work");
        span.in_scope(|| {
            info!(answer = 42, unit = "ms", "computed {}", "it");
            debug!("not at the default level");
            warn!("careful");
        });
    });
    let calls = all_calls(&s.client);
    assert_eq!(calls.len(), 1);
    let summary = calls[0].summary().unwrap();
    let events = summary["events"].as_array().expect("events");
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0]["level"], "INFO");
    assert_eq!(events[0]["target"], module_path!());
    assert_eq!(events[0]["message"], "computed it");
    assert_eq!(events[0]["fields"], json!({"answer": 42, "unit": "ms"}));
    assert!(events[0]["time"].as_str().is_some_and(|t| !t.is_empty()));
    assert_eq!(events[1]["level"], "WARN");
    assert_eq!(events[1]["message"], "careful");
    assert!(events[1].get("fields").is_none());
    assert!(summary.get("events_dropped").is_none());
}

#[test]
fn events_of_a_child_span_are_not_rolled_up_to_the_parent() {
    let s = TestStore::new();
    with_layer(&s.client, || {
        let outer = info_span!("outer");
        outer.in_scope(|| {
            info!("outer event");
            info_span!("inner").in_scope(|| info!("inner event"));
        });
    });
    let calls = all_calls(&s.client);
    let get = |n: &str| calls.iter().find(|c| c.func_name() == n).unwrap();
    let outer_events = &get("outer").summary().unwrap()["events"];
    assert_eq!(outer_events.as_array().unwrap().len(), 1);
    assert_eq!(outer_events[0]["message"], "outer event");
    let inner_events = &get("inner").summary().unwrap()["events"];
    assert_eq!(inner_events.as_array().unwrap().len(), 1);
    assert_eq!(inner_events[0]["message"], "inner event");
}

#[test]
fn attributes_tracing_has_target_level_file_and_line() {
    let s = TestStore::new();
    let line = with_layer(&s.client, || {
        let line = line!() + 1;
        let span = tracing::warn_span!("located");
        span.in_scope(|| {});
        line
    });
    let calls = all_calls(&s.client);
    let attrs = calls[0].attributes();
    assert_eq!(
        attrs["tracing"],
        json!({"target": module_path!(), "level": "WARN", "file": file!(), "line": line})
    );
    // The client's own attributes are still there.
    assert_eq!(attrs["weave"]["source"], "rust-sdk");
}

#[test]
fn a_span_call_is_written_when_the_span_closes() {
    let s = TestStore::new();
    with_layer(&s.client, || {
        let span = info_span!("slow", step = Empty);
        let id = span
            .in_scope(weave::current_call)
            .expect("the span's call is current inside it")
            .id()
            .to_string();
        // Entered and exited, still open: not in the store.
        assert!(matches!(
            s.client.get_call(&id),
            Err(WeaveError::NotFound { .. })
        ));
        assert!(all_calls(&s.client).is_empty());
        span.record("step", 2);
        let clone = span.clone();
        drop(span);
        // One handle is still alive: the span is not closed yet.
        assert!(matches!(
            s.client.get_call(&id),
            Err(WeaveError::NotFound { .. })
        ));
        drop(clone);
        let back = s.client.get_call(&id).expect("written at close");
        assert_eq!(back.func_name(), "slow");
        assert_eq!(back.inputs()["step"], 2);
        assert!(back.ended_at().is_some());
    });
}

#[test]
fn nested_spans_form_the_tree() {
    let s = TestStore::new();
    with_layer(&s.client, || {
        info_span!("agent").in_scope(|| {
            info_span!("plan").in_scope(|| {});
            info_span!("act").in_scope(|| {
                info_span!("tool", name = "search").in_scope(|| {});
                info_span!("llm").in_scope(|| {});
            });
            info_span!("answer").in_scope(|| {});
        });
        // A sibling root afterwards.
        info_span!("second_root").in_scope(|| {});
    });
    let calls = all_calls(&s.client);
    assert_eq!(calls.len(), 7);
    let agent = calls.iter().find(|c| c.func_name() == "agent").unwrap();
    let tree = Tree::of_call(&s.client, agent.id());
    assert_eq!(tree.calls.len(), 6, "{}", tree.outline());
    assert_eq!(tree.roots, [agent.id()]);
    assert_eq!(tree.kid_names(agent.id()), ["plan", "act", "answer"]);
    let act = tree.kids(agent.id())[1];
    assert_eq!(tree.kid_names(act.id()), ["tool", "llm"]);
    for c in tree.calls.values() {
        assert_eq!(c.trace_id(), agent.trace_id());
    }
    let second = calls
        .iter()
        .find(|c| c.func_name() == "second_root")
        .unwrap();
    assert!(second.parent_id().is_none());
    assert_ne!(second.trace_id(), agent.trace_id());
}

#[test]
fn a_span_entered_several_times_is_one_call() {
    let s = TestStore::new();
    let root = s.client.create_call("root", json!({})).unwrap();
    with_layer(&s.client, || {
        let span = info_span!("loop_body");
        for i in 0..3 {
            let _entered = span.enter();
            info!(i, "iteration");
            info_span!("step", i).in_scope(|| {});
        }
        // Entered again on another thread: the same call, and calls made there are its
        // children.
        std::thread::scope(|scope| {
            scope.spawn(|| {
                span.in_scope(|| {
                    let c = s.client.create_call("on_other_thread", json!({})).unwrap();
                    s.client.finish_call(&c, ()).unwrap();
                })
            });
        });
        // Between entries nothing is current but the root.
        assert_eq!(weave::current_call().unwrap().id(), root.id());
    });
    s.client.finish_call(&root, ()).unwrap();

    let tree = Tree::of_call(&s.client, root.id());
    assert_eq!(
        tree.kid_names(root.id()),
        ["loop_body"],
        "{}",
        tree.outline()
    );
    let body = tree.only_kid(root.id());
    assert_eq!(
        tree.kid_names(body.id()),
        ["step", "step", "step", "on_other_thread"]
    );
    let steps: Vec<_> = tree.kids(body.id())[..3]
        .iter()
        .map(|c| c.inputs()["i"].clone())
        .collect();
    assert_eq!(steps, [json!(0), json!(1), json!(2)]);
    let events = &body.summary().unwrap()["events"];
    assert_eq!(events.as_array().unwrap().len(), 3);
    assert_eq!(events[2]["fields"]["i"], 2);
}

#[test]
fn at_most_max_events_are_kept_per_call_and_the_rest_are_counted() {
    let s = TestStore::new();
    with_layer(&s.client, || {
        info_span!("chatty").in_scope(|| {
            for i in 0..weave::MAX_EVENTS + 5 {
                info!(i, "tick");
            }
        })
    });
    let calls = all_calls(&s.client);
    let summary = calls[0].summary().unwrap();
    let events = summary[weave::EVENTS_KEY].as_array().unwrap();
    assert_eq!(events.len(), weave::MAX_EVENTS);
    assert_eq!(events[0]["fields"]["i"], 0);
    assert_eq!(
        events[weave::MAX_EVENTS - 1]["fields"]["i"],
        weave::MAX_EVENTS as u64 - 1
    );
    assert_eq!(summary[weave::EVENTS_DROPPED_KEY], 5);
}

#[test]
fn api_keys_in_span_fields_are_redacted_also_when_recorded_late() {
    let s = TestStore::new();
    with_layer(&s.client, || {
        let span = info_span!(
            "llm",
            api_key = "sk-secret",
            authorization = tracing::field::Empty,
            model = "m"
        );
        span.record("authorization", "Bearer xyz");
        span.in_scope(|| {});
    });
    let call = &all_calls(&s.client)[0];
    assert_eq!(
        serde_json::Value::Object(call.inputs().clone()),
        json!({"api_key": "REDACTED", "authorization": "REDACTED", "model": "m"})
    );
}

#[instrument]
fn handles_its_error(text: &str) -> Result<u32, String> {
    match text.parse::<u32>() {
        Ok(n) => Ok(n),
        Err(e) => {
            // Logged and handled: the function succeeds.
            warn!(error = %e);
            Ok(0)
        }
    }
}

#[test]
fn an_error_field_event_in_the_body_is_not_the_spans_exception() {
    let s = TestStore::new();
    assert_eq!(with_layer(&s.client, || handles_its_error("x")), Ok(0));
    let call = &all_calls(&s.client)[0];
    assert_eq!(call.status(), TraceStatus::Success);
    assert_eq!(call.exception(), None);
    let events = &call.summary().unwrap()["events"];
    assert_eq!(
        events[0]["fields"]["error"],
        "invalid digit found in string"
    );
}

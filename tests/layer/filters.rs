//! Which spans become calls: the default level, `with_max_level`, per-layer filters, ops
//! whatever the filter, and spans filtered out being transparent.

use serde_json::json;
use tracing::{
    debug, debug_span, error_span, info, info_span, trace_span, warn_span, Dispatch, Level,
};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::{EnvFilter, Layer as _};
use weave::{WeaveClient, WeaveLayer};

use crate::common::{all_calls, sorted_names, with_layer, with_layer_level, TestStore, Tree};

fn spans_at_every_level() {
    trace_span!("at_trace").in_scope(|| {});
    debug_span!("at_debug").in_scope(|| {});
    info_span!("at_info").in_scope(|| {});
    warn_span!("at_warn").in_scope(|| {});
    error_span!("at_error").in_scope(|| {});
}

#[test]
fn by_default_info_and_more_severe_spans_are_calls() {
    let s = TestStore::new();
    with_layer(&s.client, spans_at_every_level);
    assert_eq!(
        sorted_names(&all_calls(&s.client)),
        ["at_error", "at_info", "at_warn"]
    );
}

#[test]
fn with_max_level_widens_or_narrows_what_is_recorded() {
    let s = TestStore::new();
    with_layer_level(&s.client, Level::TRACE, spans_at_every_level);
    assert_eq!(
        sorted_names(&all_calls(&s.client)),
        ["at_debug", "at_error", "at_info", "at_trace", "at_warn"]
    );

    let s = TestStore::new();
    with_layer_level(&s.client, Level::DEBUG, spans_at_every_level);
    assert_eq!(
        sorted_names(&all_calls(&s.client)),
        ["at_debug", "at_error", "at_info", "at_warn"]
    );

    let s = TestStore::new();
    with_layer_level(&s.client, Level::WARN, spans_at_every_level);
    assert_eq!(sorted_names(&all_calls(&s.client)), ["at_error", "at_warn"]);
}

#[test]
fn events_below_the_level_are_not_kept() {
    let s = TestStore::new();
    with_layer(&s.client, || {
        info_span!("default_level").in_scope(|| {
            debug!("dropped");
            info!("kept");
        })
    });
    with_layer_level(&s.client, Level::TRACE, || {
        info_span!("trace_level").in_scope(|| {
            debug!("kept too");
        })
    });
    let calls = all_calls(&s.client);
    let events = |n: &str| {
        calls
            .iter()
            .find(|c| c.func_name() == n)
            .unwrap()
            .summary()
            .unwrap()["events"]
            .clone()
    };
    assert_eq!(events("default_level").as_array().unwrap().len(), 1);
    assert_eq!(events("default_level")[0]["message"], "kept");
    assert_eq!(events("trace_level")[0]["message"], "kept too");
    assert_eq!(events("trace_level")[0]["level"], "DEBUG");
}

/// The usual setup: a registry with a `fmt` layer (writing nowhere here) that sees every
/// span, and the weave layer behind `EnvFilter::new(filter)`.
fn filtered(client: &WeaveClient, filter: &str) -> Dispatch {
    Dispatch::new(
        tracing_subscriber::registry()
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::sink))
            .with(WeaveLayer::with_client(client.clone()).with_filter(EnvFilter::new(filter))),
    )
}

/// The weave layer behind `EnvFilter::new(filter)`, alone: spans it filters out are not even
/// created.
fn filtered_alone(client: &WeaveClient, filter: &str) -> Dispatch {
    Dispatch::new(
        tracing_subscriber::registry()
            .with(WeaveLayer::with_client(client.clone()).with_filter(EnvFilter::new(filter))),
    )
}

#[test]
fn a_per_layer_env_filter_records_only_the_allowed_targets() {
    let s = TestStore::new();
    tracing::dispatcher::with_default(&filtered(&s.client, "target_a=info"), || {
        info_span!(target: "target_a", "a_info").in_scope(|| {});
        info_span!(target: "target_a::sub", "a_sub_info").in_scope(|| {});
        debug_span!(target: "target_a", "a_debug").in_scope(|| {});
        info_span!(target: "target_b", "b_info").in_scope(|| {});
        error_span!(target: "target_b", "b_error").in_scope(|| {});
        info_span!("default_target").in_scope(|| {});
    });
    assert_eq!(
        sorted_names(&all_calls(&s.client)),
        ["a_info", "a_sub_info"]
    );
}

#[test]
fn an_env_filter_lets_debug_spans_through_only_with_a_wider_layer_level() {
    let spans = || {
        debug_span!(target: "target_a", "a_debug").in_scope(|| {});
        trace_span!(target: "target_a", "a_trace").in_scope(|| {});
        debug_span!(target: "target_b", "b_debug").in_scope(|| {});
        info_span!(target: "target_a", "a_info").in_scope(|| {});
    };
    // The layer's own level (INFO by default) applies on top of the filter.
    let s = TestStore::new();
    tracing::dispatcher::with_default(&filtered(&s.client, "target_a=debug"), spans);
    assert_eq!(sorted_names(&all_calls(&s.client)), ["a_info"]);

    let s = TestStore::new();
    let dispatch = Dispatch::new(
        tracing_subscriber::registry().with(
            WeaveLayer::with_client(s.client.clone())
                .with_max_level(Level::TRACE)
                .with_filter(EnvFilter::new("target_a=debug")),
        ),
    );
    tracing::dispatcher::with_default(&dispatch, spans);
    assert_eq!(sorted_names(&all_calls(&s.client)), ["a_debug", "a_info"]);
}

#[weave::op]
fn filtered_op(n: u32) -> u32 {
    info_span!(target: "target_a", "span_in_op").in_scope(|| {});
    info_span!(target: "target_b", "hidden_in_op").in_scope(|| n * 2)
}

#[test]
fn ops_are_traced_whatever_the_layer_filter() {
    let s = TestStore::new();
    let root = s.client.create_call("root", json!({})).unwrap();
    let out = tracing::dispatcher::with_default(&filtered(&s.client, "target_a=info"), || {
        let a = filtered_op(1);
        // An op inside a span the filter drops: its parent is the root.
        let b = info_span!(target: "target_b", "hidden").in_scope(|| filtered_op(2));
        a + b
    });
    assert_eq!(out, 6);
    s.client.finish_call(&root, ()).unwrap();

    let tree = Tree::of_call(&s.client, root.id());
    assert_eq!(
        tree.kid_names(root.id()),
        ["filtered_op", "filtered_op"],
        "{}",
        tree.outline()
    );
    for op in tree.kids(root.id()) {
        assert_eq!(op.output(), json!(op.inputs()["n"].as_u64().unwrap() * 2));
        assert_eq!(tree.kid_names(op.id()), ["span_in_op"]);
    }
}

#[test]
fn a_span_the_level_excludes_is_transparent() {
    let s = TestStore::new();
    with_layer(&s.client, || {
        info_span!("outer").in_scope(|| {
            let middle = debug_span!("middle");
            middle.in_scope(|| {
                info_span!("inner_contextual").in_scope(|| {});
                info!("event in middle");
            });
            info_span!(parent: &middle, "inner_explicit").in_scope(|| {});
        });
    });
    let calls = all_calls(&s.client);
    let outer = calls.iter().find(|c| c.func_name() == "outer").unwrap();
    let tree = Tree::of_call(&s.client, outer.id());
    assert_eq!(tree.calls.len(), 3, "{}", tree.outline());
    assert_eq!(
        tree.kid_names(outer.id()),
        ["inner_contextual", "inner_explicit"]
    );
    // The event made in the excluded span belongs to the nearest call.
    assert_eq!(
        outer.summary().unwrap()["events"][0]["message"],
        "event in middle"
    );
}

#[test]
fn a_span_an_env_filter_excludes_is_transparent() {
    for setup in [filtered, filtered_alone] {
        let s = TestStore::new();
        tracing::dispatcher::with_default(&setup(&s.client, "target_a=info"), || {
            info_span!(target: "target_a", "outer").in_scope(|| {
                let hidden = info_span!(target: "target_b", "hidden");
                hidden.in_scope(|| {
                    info_span!(target: "target_a", "inner_contextual").in_scope(|| {});
                    info!(target: "target_a", "event in hidden");
                });
            });
        });
        let calls = all_calls(&s.client);
        assert_eq!(calls.len(), 2, "{:?}", sorted_names(&calls));
        let outer = calls.iter().find(|c| c.func_name() == "outer").unwrap();
        let tree = Tree::of_call(&s.client, outer.id());
        assert_eq!(tree.kid_names(outer.id()), ["inner_contextual"]);
        assert_eq!(
            outer.summary().unwrap()["events"][0]["message"],
            "event in hidden"
        );
    }
}

#[test]
fn an_explicit_parent_the_env_filter_excludes_is_transparent() {
    let s = TestStore::new();
    tracing::dispatcher::with_default(&filtered(&s.client, "target_a=info"), || {
        info_span!(target: "target_a", "outer").in_scope(|| {
            let hidden = info_span!(target: "target_b", "hidden");
            let hidden_child = hidden.in_scope(|| info_span!(target: "target_b", "hidden_child"));
            info_span!(target: "target_a", "sibling").in_scope(|| {
                // Made in `sibling`, with a filtered-out explicit parent.
                info_span!(target: "target_a", parent: &hidden, "inner_explicit").in_scope(|| {});
                info_span!(target: "target_a", parent: &hidden_child, "inner_explicit_2")
                    .in_scope(|| {});
            });
        });
    });
    let calls = all_calls(&s.client);
    assert_eq!(calls.len(), 4, "{:?}", sorted_names(&calls));
    let outer = calls.iter().find(|c| c.func_name() == "outer").unwrap();
    let tree = Tree::of_call(&s.client, outer.id());
    assert_eq!(
        tree.kid_names(outer.id()),
        ["sibling", "inner_explicit", "inner_explicit_2"],
        "a span whose explicit parent is filtered out attaches to that parent's nearest \
         traced ancestor:\n{}",
        tree.outline()
    );
}

#[test]
#[ignore = "LIMITATION (see report): an event whose explicit parent a per-layer filter hides is dropped"]
fn an_event_with_an_explicit_parent_the_env_filter_excludes_goes_to_the_nearest_call() {
    let s = TestStore::new();
    tracing::dispatcher::with_default(&filtered(&s.client, "target_a=info"), || {
        info_span!(target: "target_a", "outer").in_scope(|| {
            let hidden = info_span!(target: "target_b", "hidden");
            info!(target: "target_a", parent: &hidden, "explicit event");
        });
    });
    let calls = all_calls(&s.client);
    let outer = calls.iter().find(|c| c.func_name() == "outer").unwrap();
    assert_eq!(
        outer
            .summary()
            .unwrap()
            .get("events")
            .map(|e| e[0]["message"].clone()),
        Some(serde_json::json!("explicit event"))
    );
}

#[weave::op]
fn inner_op(n: u32) -> u32 {
    n + 1
}

#[weave::op(sample_rate = 0.0)]
fn never_sampled(n: u32) -> u32 {
    let outer = info_span!("span_in_sampled_out");
    let a = outer.in_scope(|| inner_op(n));
    let b = weave::spawn_thread(move || inner_op(n)).join().unwrap();
    let c = std::thread::spawn(move || {
        // An explicit parent inside the sampled-out trace keeps it untraced.
        info_span!(parent: &outer, "explicit_child").in_scope(|| inner_op(n))
    })
    .join()
    .unwrap();
    a + b + c
}

#[weave::op]
fn always_sampled(n: u32) -> u32 {
    info_span!("span_in_sampled").in_scope(|| inner_op(n))
}

#[test]
fn spans_inside_a_sampled_out_trace_are_not_calls() {
    crate::common::install_global_subscriber();
    let s = TestStore::new();
    let _global = crate::common::GlobalClient::set(&s.client);
    assert_eq!(never_sampled(1), 6);
    assert_eq!(always_sampled(1), 2);
    let calls = all_calls(&s.client);
    assert_eq!(
        sorted_names(&calls),
        ["always_sampled", "inner_op", "span_in_sampled"]
    );
}

#[test]
fn two_weave_layers_in_one_subscriber_do_not_panic_and_record_once() {
    let a = TestStore::new();
    let b = TestStore::with_project("other-entity", "other-project");
    let subscriber = tracing_subscriber::registry()
        .with(WeaveLayer::with_client(a.client.clone()))
        .with(WeaveLayer::with_client(b.client.clone()));
    tracing::subscriber::with_default(subscriber, || {
        info_span!("work", n = 1).in_scope(|| {});
    });
    let total = all_calls(&a.client).len() + all_calls(&b.client).len();
    assert_eq!(total, 1, "the span is recorded by one of the layers, once");
}

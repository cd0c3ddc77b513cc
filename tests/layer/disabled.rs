//! `WEAVE_DISABLED=true` (read once per process, so tested in a child process): `weave::init`
//! returns a client on an empty store, sets no process-wide client, and ops and spans run
//! untraced with their normal results.

use serde_json::json;
use tracing::{info, info_span, instrument, Level};
use tracing_subscriber::layer::SubscriberExt;
use weave::WeaveLayer;

use crate::common::{all_calls, child_done, run_child, sorted_names, TestStore};

#[weave::op]
fn add(a: u64, b: u64) -> u64 {
    a + b
}

#[weave::op]
async fn double(x: u64) -> u64 {
    tokio::task::yield_now().await;
    x * 2
}

#[weave::op]
fn checked(x: i64) -> Result<i64, String> {
    if x >= 0 {
        Ok(x)
    } else {
        Err("negative".to_string())
    }
}

#[weave::op]
fn panics() -> u32 {
    panic!("boom")
}

#[instrument(ret)]
fn instrumented(n: u64) -> u64 {
    info!("inside");
    add(n, 1)
}

#[test]
fn weave_disabled_traces_nothing() {
    run_child(
        "disabled::child_weave_disabled",
        &[("WEAVE_DISABLED", "true")],
    );
}

#[test]
#[ignore = "run in a child process by weave_disabled_traces_nothing"]
fn child_weave_disabled() {
    assert_eq!(
        std::env::var("WEAVE_DISABLED").as_deref(),
        Ok("true"),
        "run through weave_disabled_traces_nothing"
    );
    let (client, guard) = weave::init("acme/disabled").unwrap();
    assert!(weave::global_client().is_none());
    assert!(guard.client().is_none());
    assert!(
        !tracing::dispatcher::has_been_set(),
        "no global subscriber is installed"
    );

    // A layer that would record root spans with the init client, at every level.
    let subscriber = tracing_subscriber::registry()
        .with(WeaveLayer::with_client(client.clone()).with_max_level(Level::TRACE));
    // A real store, for an explicit root call that ops and spans would nest under.
    let real = TestStore::new();
    tracing::subscriber::with_default(subscriber, || {
        assert_eq!(add(2, 3), 5);
        assert_eq!(instrumented(4), 5);
        info_span!("root_span", x = 1).in_scope(|| assert_eq!(add(1, 1), 2));

        let root = real.client.create_call("explicit_root", json!({})).unwrap();
        assert_eq!(add(10, 20), 30);
        assert_eq!(instrumented(7), 8);
        info_span!("child_span").in_scope(|| info!("an event"));
        assert_eq!(checked(3), Ok(3));
        assert_eq!(checked(-1), Err("negative".to_string()));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert_eq!(rt.block_on(double(21)), 42);
        assert_eq!(
            rt.block_on(async { weave::spawn(double(5)).await })
                .unwrap(),
            10,
            "weave::spawn runs the task"
        );
        let caught = std::panic::catch_unwind(panics);
        assert!(caught.is_err(), "the panic continues");
        real.client.finish_call(&root, ()).unwrap();
    });

    assert!(weave::global_client().is_none());
    // The init client's store stays empty.
    assert_eq!(client.get_calls(weave::CallsQuery::new()).count(), 0);
    // Nothing nested under the explicit root either.
    let real_calls = all_calls(&real.client);
    assert_eq!(sorted_names(&real_calls), ["explicit_root"]);
    assert!(real_calls[0].summary().unwrap().get("events").is_none());
    drop(guard);
    child_done("disabled::child_weave_disabled");
}

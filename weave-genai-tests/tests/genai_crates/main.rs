//! The Rust GenAI crates themselves — rig-core and genai (with its `otel` feature) — driven
//! against an OpenAI-compatible server on loopback (`stub.rs`), with only `WeaveLayer`
//! installed: no code of ours in their calls. Each test checks the calls a user would see:
//! the LLM call with its usage by model, rolled up into the op or span around it, and priced.

mod genai;
mod rig;
mod stub;

use serde_json::Value;
use tracing_subscriber::layer::SubscriberExt;
use weave::{Call, CallsQuery, WeaveClient, WeaveLayer};
use weave_testkit::TestStore;

/// Runs `f` on this thread (a current-thread runtime, so that the layer set for this thread
/// sees every span) with `WeaveLayer` recording into `client`.
pub fn traced<F: std::future::Future>(client: &WeaveClient, f: F) -> F::Output {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let subscriber = tracing_subscriber::registry().with(WeaveLayer::with_client(client.clone()));
    tracing::subscriber::with_default(subscriber, || rt.block_on(f))
}

/// Every call of the store.
pub fn all_calls(client: &WeaveClient) -> Vec<Call> {
    weave_testkit::calls(client, CallsQuery::new())
}

/// The call named `name` (its op's name) among `calls`.
pub fn named<'a>(calls: &'a [Call], name: &str) -> &'a Call {
    calls
        .iter()
        .find(|c| c.func_name() == name)
        .unwrap_or_else(|| {
            panic!(
                "no {name} in {:?}",
                calls.iter().map(Call::func_name).collect::<Vec<_>>()
            )
        })
}

/// A fresh store, the requested and the served model priced.
pub fn priced_store() -> TestStore {
    let s = TestStore::new();
    for model in [stub::SERVED_MODEL, stub::REQUESTED_MODEL] {
        s.client
            .add_cost(model, PROMPT_PRICE, COMPLETION_PRICE)
            .expect("add_cost");
    }
    s
}

/// The prices [`priced_store`] sets, per token.
pub const PROMPT_PRICE: f64 = 0.000_002_5;
pub const COMPLETION_PRICE: f64 = 0.000_01;

/// The store's costs for `call`'s usage of `model`.
pub fn cost_of(client: &WeaveClient, call: &Call, model: &str) -> Value {
    let back = client.get_call_with(call.id(), true).expect("get_call");
    back.weave_summary().expect("summary.weave")["costs"][model].clone()
}

//! The remote backend owns its runtime: users need no tokio, calling from inside their own
//! tokio runtime (multi-thread or current-thread) never panics, and the HTTP client's own
//! work on that runtime is never traced, even under a permissive global subscriber.

use std::sync::Arc;

use serde_json::json;
use tracing::Level;
use tracing_subscriber::layer::SubscriberExt;
use weave::server::{RemoteServer, RemoteServerConfig};
use weave::{CallsQuery, WeaveClient};

use crate::common::{remote_client, RefServer};

fn use_the_client_from_async_code(flavor: &str) {
    let rt = match flavor {
        "current" => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap(),
        _ => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap(),
    };
    let n = rt.block_on(async {
        // Made, used and dropped inside the user's runtime.
        let client = remote_client();
        let c = client
            .create_call("in_async", json!({"flavor": flavor}))
            .unwrap();
        client.finish_call(&c, 1).unwrap();
        tokio::task::yield_now().await;
        let n = client.get_calls(CallsQuery::new()).count();
        drop(client);
        n
    });
    assert_eq!(n, 1);
}

#[test]
fn calling_from_inside_a_multi_thread_tokio_runtime_works() {
    use_the_client_from_async_code("multi");
}

#[test]
fn calling_from_inside_a_current_thread_tokio_runtime_works() {
    use_the_client_from_async_code("current");
}

#[test]
fn the_http_clients_own_work_is_never_traced() {
    let server = RefServer::shared();
    let http = RemoteServer::new(RemoteServerConfig::new(&server.url)).unwrap();
    let project = format!("p-{}", &weave::generate_id()[24..]);
    let client = WeaveClient::new("remote-tests", project, Arc::new(http), true).unwrap();
    // The most permissive setup: every level, roots recorded with this client — anything the
    // HTTP stack logged on any thread would become a call here.
    let subscriber = tracing_subscriber::registry()
        .with(weave::WeaveLayer::with_client(client.clone()).with_max_level(Level::TRACE));
    let _ = tracing::subscriber::set_global_default(subscriber);
    let root = client.create_call("user_root", json!({})).unwrap();
    client.save(&json!({"a": 1}), "obj").unwrap();
    let _ = client.get_calls(CallsQuery::new()).count();
    client.finish_call(&root, ()).unwrap();
    let names: Vec<String> = client
        .get_calls(CallsQuery::new())
        .map(|c| c.unwrap().func_name().to_string())
        .collect();
    assert_eq!(names, ["user_root"]);
}

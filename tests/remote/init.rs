//! `weave::init` picks the remote backend from the environment, as the Python SDK does:
//! with `WF_TRACE_SERVER_URL` set, ops and spans go to that server and the guard flushes
//! them; each root call's link is printed.

use std::sync::Arc;

use weave::server::{RemoteServer, RemoteServerConfig};
use weave::{CallsQuery, WeaveClient};

use crate::common::child::{child_done, run_child};

use crate::common::RefServer;

use crate::common::fault_proxy::FaultProxy;

#[weave::op]
fn greet(name: &str) -> String {
    format!("hello {name}")
}

#[tracing::instrument]
fn traced_step(n: u32) -> u32 {
    n + 1
}

#[test]
#[ignore = "run in a child process by init_goes_remote_when_wf_trace_server_url_is_set"]
fn child_init_remote() {
    let project = std::env::var("TEST_PROJECT").unwrap();
    let (_client, guard) = weave::init(&format!("remote-init/{project}")).unwrap();
    assert_eq!(greet("rust"), "hello rust");
    assert_eq!(traced_step(1), 2);
    drop(guard);
    child_done("init::child_init_remote");
}

#[test]
#[ignore = "run in a child process by a_bare_project_goes_under_the_w_and_b_default_entity"]
fn child_init_bare_project() {
    let (client, guard) = weave::init("bare-project").unwrap();
    assert_eq!(client.project_id(), "ref-entity/bare-project");
    assert_eq!(greet("w&b"), "hello w&b");
    drop(guard);
    child_done("init::child_init_bare_project");
}

#[test]
fn a_bare_project_goes_under_the_w_and_b_default_entity() {
    // The reference server also serves a stub of W&B's GraphQL API (viewer, project,
    // upsertModel); the proxy counts what the client asks it.
    let server = RefServer::shared();
    let proxy = FaultProxy::start(&server.url);
    run_child(
        "init::child_init_bare_project",
        &[
            ("WF_TRACE_SERVER_URL", proxy.url.as_str()),
            ("WANDB_BASE_URL", proxy.url.as_str()),
            ("WANDB_API_KEY", "test-key"),
            ("WEAVE_DB_PATH", ":memory:"),
        ],
    );
    // The default entity from the viewer, then the project looked up (it "exists").
    assert_eq!(proxy.count("/graphql"), 2);
    let http = RemoteServer::new(RemoteServerConfig::new(&server.url)).unwrap();
    let client = WeaveClient::new("ref-entity", "bare-project", Arc::new(http), false).unwrap();
    let names: Vec<String> = client
        .get_calls(CallsQuery::new())
        .map(|c| c.unwrap().func_name().to_string())
        .collect();
    assert!(names.iter().any(|n| n == "greet"), "{names:?}");
}

#[test]
fn init_goes_remote_when_wf_trace_server_url_is_set() {
    let server = RefServer::shared();
    let project = format!("p-{}", &weave::generate_id()[24..]);
    let out = run_child(
        "init::child_init_remote",
        &[
            ("WF_TRACE_SERVER_URL", server.url.as_str()),
            ("TEST_PROJECT", project.as_str()),
            // Would be used if init wrongly chose the embedded store.
            ("WEAVE_DB_PATH", ":memory:"),
        ],
    );
    let http = RemoteServer::new(RemoteServerConfig::new(&server.url)).unwrap();
    let client = WeaveClient::new("remote-init", project, Arc::new(http), false).unwrap();
    let calls: Vec<_> = client
        .get_calls(CallsQuery::new())
        .collect::<Result<_, _>>()
        .unwrap();
    let mut names: Vec<_> = calls.iter().map(|c| c.func_name().to_string()).collect();
    names.sort();
    assert_eq!(names, ["greet", "traced_step"]);
    // Remote clients print each root call's link, as the Python SDK does.
    let stderr = String::from_utf8_lossy(&out.stderr);
    for c in &calls {
        assert!(
            stderr.contains(&format!("🍩 {}", c.ui_url())),
            "no link for {} in:\n{stderr}",
            c.func_name()
        );
    }
}

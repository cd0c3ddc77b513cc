//! Fixtures: a client on the reference server, one fresh project per test.
#![allow(dead_code)]

use std::sync::Arc;

use weave::server::{RemoteServer, RemoteServerConfig};
use weave::{Call, CallsQuery, WeaveClient};

#[path = "../support/child.rs"]
pub mod child;
#[path = "../support/fault_proxy.rs"]
pub mod fault_proxy;
#[path = "../support/ref_server.rs"]
mod ref_server;
pub use ref_server::RefServer;

/// A client for a fresh project on the binary's reference server.
pub fn remote_client() -> WeaveClient {
    let server = RefServer::shared();
    let http = RemoteServer::new(RemoteServerConfig::new(&server.url)).expect("http server");
    let project = format!("p-{}", &weave::generate_id()[24..]);
    WeaveClient::new("remote-tests", project, Arc::new(http), true).expect("client")
}

/// Every call matching `q`.
pub fn calls(client: &WeaveClient, q: impl Into<CallsQuery>) -> Vec<Call> {
    client
        .get_calls(q)
        .collect::<Result<Vec<_>, _>>()
        .expect("query")
}

//! Fixtures: a client on the reference server, one fresh project per test.
#![allow(dead_code)]

use std::sync::Arc;

use weave::server::{RemoteServer, RemoteServerConfig};
use weave::WeaveClient;

pub use weave_testkit::{calls, child, fault_proxy, RefServer};

/// A client for a fresh project on the binary's reference server.
pub fn remote_client() -> WeaveClient {
    let server = RefServer::shared();
    let http = RemoteServer::new(RemoteServerConfig::new(&server.url)).expect("http server");
    let project = format!("p-{}", &weave::generate_id()[24..]);
    WeaveClient::new("remote-tests", project, Arc::new(http), true).expect("client")
}

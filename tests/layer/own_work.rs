//! Weave never traces itself: spans and events made by a backend on weave's writer thread,
//! with weave's own targets, or inside `weave_core::internal`, are not calls or call events,
//! even with the most permissive layer.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::json;
use tracing::{error, error_span, info, info_span, warn, Level};
use weave::schema::*;
use weave::server::CallsStream;
use weave::{Result, SqliteServer, TraceServer, WeaveClient};

use crate::common::{
    all_calls, install_global_subscriber, sorted_names, with_layer_level, GlobalClient, TestStore,
    Tree,
};

/// A real SQLite store behind a backend that logs with `tracing` in its methods, as an HTTP
/// backend would (hyper, reqwest, its own logs).
#[derive(Debug)]
struct NoisyServer {
    inner: SqliteServer,
    /// Log in the methods the writer thread calls (call and op writes).
    writer_methods: AtomicBool,
    /// Log in every other method (reads, updates, costs, …: called on the user's thread).
    other_methods: AtomicBool,
    /// How many times a method logged.
    logged: AtomicUsize,
}

impl NoisyServer {
    fn new(inner: SqliteServer) -> Self {
        NoisyServer {
            inner,
            writer_methods: AtomicBool::new(false),
            other_methods: AtomicBool::new(false),
            logged: AtomicUsize::new(0),
        }
    }

    fn noise(&self, writer_method: bool, method: &'static str) {
        let on = if writer_method {
            &self.writer_methods
        } else {
            &self.other_methods
        };
        if !on.load(Ordering::SeqCst) {
            return;
        }
        self.logged.fetch_add(1, Ordering::SeqCst);
        let span = info_span!("backend_request", method, status = tracing::field::Empty);
        let _entered = span.enter();
        info!(method, "sending request");
        error_span!("backend_retry", method).in_scope(|| {
            warn!("retrying");
            tracing::debug!(bytes = 123, "body");
        });
        error!(method, "backend hiccup");
        span.record("status", 200);
    }
}

macro_rules! delegate {
    ($($writer:literal $name:ident($req:ty) -> $res:ty;)*) => {
        $(
            fn $name(&self, req: $req) -> Result<$res> {
                self.noise($writer, stringify!($name));
                self.inner.$name(req)
            }
        )*
    };
}

impl TraceServer for NoisyServer {
    delegate! {
        true call_start(CallStartReq) -> CallStartRes;
        true call_end(CallEndReq) -> CallEndRes;
        true call_start_batch(CallCreateBatchReq) -> CallCreateBatchRes;
        false call_read(CallReadReq) -> CallReadRes;
        false calls_query_stream(CallsQueryReq) -> CallsStream;
        false calls_query_stats(CallsQueryStatsReq) -> CallsQueryStatsRes;
        false calls_delete(CallsDeleteReq) -> CallsDeleteRes;
        false call_update(CallUpdateReq) -> CallUpdateRes;
        false cost_create(CostCreateReq) -> CostCreateRes;
        false cost_query(CostQueryReq) -> CostQueryRes;
        false cost_purge(CostPurgeReq) -> CostPurgeRes;
        false feedback_create(FeedbackCreateReq) -> FeedbackCreateRes;
        false feedback_create_batch(FeedbackCreateBatchReq) -> FeedbackCreateBatchRes;
        false feedback_query(FeedbackQueryReq) -> FeedbackQueryRes;
        false feedback_purge(FeedbackPurgeReq) -> FeedbackPurgeRes;
        false feedback_replace(FeedbackReplaceReq) -> FeedbackReplaceRes;
        true obj_create(ObjCreateReq) -> ObjCreateRes;
        false obj_read(ObjReadReq) -> ObjReadRes;
        false objs_query(ObjQueryReq) -> ObjQueryRes;
        false obj_delete(ObjDeleteReq) -> ObjDeleteRes;
        false table_create(TableCreateReq) -> TableCreateRes;
        false table_query(TableQueryReq) -> TableQueryRes;
        false table_query_stats(TableQueryStatsReq) -> TableQueryStatsRes;
        false refs_read_batch(RefsReadBatchReq) -> RefsReadBatchRes;
        true file_create(FileCreateReq) -> FileCreateRes;
        false file_content_read(FileContentReadReq) -> FileContentReadRes;
    }

    fn server_info(&self) -> Result<ServerInfoRes> {
        self.noise(false, "server_info");
        self.inner.server_info()
    }

    fn ensure_project_exists(&self, entity: &str, project: &str) -> Result<()> {
        self.noise(false, "ensure_project_exists");
        self.inner.ensure_project_exists(entity, project)
    }

    fn app_url(&self) -> String {
        self.inner.app_url()
    }
}

fn noisy_store() -> (tempfile::TempDir, Arc<NoisyServer>, WeaveClient) {
    let dir = tempfile::tempdir().unwrap();
    let server = Arc::new(NoisyServer::new(
        SqliteServer::open(dir.path().join("weave.sqlite")).unwrap(),
    ));
    let client = WeaveClient::new("own", "work", server.clone(), true).unwrap();
    (dir, server, client)
}

#[weave::op]
fn user_op(n: u32) -> u32 {
    info!("user event");
    n + 1
}

#[test]
fn a_backend_logging_on_the_writer_thread_makes_no_calls() {
    let (_dir, server, client) = noisy_store();
    server.writer_methods.store(true, Ordering::SeqCst);
    // The permissive global subscriber sees the writer thread; with the process-wide client
    // set, a span it recorded there would be a root call of this store.
    install_global_subscriber();
    let _global = GlobalClient::set(&client);

    let root = client.create_call("user_root", json!({})).unwrap();
    let out = info_span!("user_span").in_scope(|| user_op(1));
    assert_eq!(out, 2);
    client.finish_call(&root, ()).unwrap();
    // A root op too, written by the same writer.
    assert_eq!(user_op(10), 11);
    client.flush();
    assert!(
        server.logged.load(Ordering::SeqCst) > 0,
        "the backend's write methods ran and logged"
    );

    let calls = all_calls(&client);
    assert_eq!(
        sorted_names(&calls),
        ["user_op", "user_op", "user_root", "user_span"]
    );
    let tree = Tree::of_call(&client, root.id());
    assert_eq!(
        tree.kid_names(root.id()),
        ["user_span"],
        "{}",
        tree.outline()
    );
    for c in &calls {
        let events = c.summary().unwrap().get("events").cloned();
        match c.func_name() {
            "user_op" => {
                let events = events.expect("the op's own event");
                assert_eq!(events.as_array().unwrap().len(), 1, "{events}");
                assert_eq!(events[0]["message"], "user event");
            }
            _ => assert!(events.is_none(), "{}: {events:?}", c.func_name()),
        }
    }
}

#[test]
fn a_backend_logging_on_the_users_thread_inside_a_call_makes_no_calls() {
    let (_dir, server, client) = noisy_store();
    server.other_methods.store(true, Ordering::SeqCst);
    let root = client.create_call("user_root", json!({})).unwrap();
    with_layer_level(&client, Level::TRACE, || {
        // Client methods that talk to the backend from this thread, inside the root call.
        client.get_call(root.id()).unwrap();
        let _ = client.get_calls(weave::CallsQuery::new()).count();
        client.add_cost("m", 1.0, 2.0).unwrap();
        client.query_costs(weave::CostsQuery::new()).unwrap();
        info_span!("user_span").in_scope(|| {
            client.get_call(root.id()).unwrap();
        });
    });
    client.finish_call(&root, ()).unwrap();
    assert!(server.logged.load(Ordering::SeqCst) > 0);
    server.other_methods.store(false, Ordering::SeqCst);

    let calls = all_calls(&client);
    assert_eq!(
        sorted_names(&calls),
        ["user_root", "user_span"],
        "the backend's spans became calls"
    );
    for c in &calls {
        assert!(
            c.summary().unwrap().get("events").is_none(),
            "{}: {:?}",
            c.func_name(),
            c.summary()
        );
    }
}

#[test]
fn spans_and_events_with_weaves_own_targets_are_not_traced() {
    let s = TestStore::new();
    with_layer_level(&s.client, Level::TRACE, || {
        // As roots: not calls.
        info_span!(target: "weave", "own_root").in_scope(|| {});
        info_span!(target: "weave_core::client::writer", "own_root_core").in_scope(|| {});

        let root = s.client.create_call("user_root", json!({})).unwrap();
        info_span!(target: "weave_core::x", "own_core").in_scope(|| {
            info!(target: "weave_core::x", "own core event");
            // A user span inside an own span: the own span is transparent.
            info_span!("user_in_own").in_scope(|| {});
        });
        error_span!(target: "weave", "own_facade").in_scope(|| {
            error!(target: "weave", "own facade event");
        });
        info_span!(target: "weave_tracing", "own_tracing").in_scope(|| {});
        info_span!(target: "weave_macros::expand", "own_macros").in_scope(|| {});
        info!(target: "weave", "own event in root");
        error!(target: "weave_core", "own error in root");
        // Look-alike targets are the user's.
        info_span!(target: "weave_app", "not_own").in_scope(|| {});
        info!(target: "weaver", "not own event");
        s.client.finish_call(&root, ()).unwrap();
    });

    let calls = all_calls(&s.client);
    assert_eq!(
        sorted_names(&calls),
        ["not_own", "user_in_own", "user_root"]
    );
    let root = calls.iter().find(|c| c.func_name() == "user_root").unwrap();
    let tree = Tree::of_call(&s.client, root.id());
    assert_eq!(tree.kid_names(root.id()), ["user_in_own", "not_own"]);
    let events = root.summary().unwrap()["events"].clone();
    assert_eq!(events.as_array().unwrap().len(), 1, "{events}");
    assert_eq!(events[0]["target"], "weaver");
}

#[test]
fn work_inside_weave_core_internal_is_not_traced() {
    let s = TestStore::new();
    with_layer_level(&s.client, Level::TRACE, || {
        weave_core::internal(|| info_span!("internal_root").in_scope(|| {}));

        let root = s.client.create_call("user_root", json!({})).unwrap();
        weave_core::internal(|| {
            info_span!("internal_span").in_scope(|| info!("internal event in span"));
            weave_core::internal(|| info!("nested internal event"));
            // Still internal after a nested internal() returns.
            info!("internal event");
            assert!(weave_core::is_internal_thread());
        });
        assert!(!weave_core::is_internal_thread());
        info!("user event");
        info_span!("user_span").in_scope(|| {});
        s.client.finish_call(&root, ()).unwrap();
    });

    let calls = all_calls(&s.client);
    assert_eq!(sorted_names(&calls), ["user_root", "user_span"]);
    let root = calls.iter().find(|c| c.func_name() == "user_root").unwrap();
    let events = root.summary().unwrap()["events"].clone();
    assert_eq!(events.as_array().unwrap().len(), 1, "{events}");
    assert_eq!(events[0]["message"], "user event");
}

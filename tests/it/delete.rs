//! Tests: delete. Delete is soft and cascades to every descendant (PROTOCOL §4.7); deleted
//! calls drop out of every read, query and count. The reference server counts `num_deleted`
//! its own way, has no 1000-id limit and does not scope a delete to the project (see
//! [`deleted`] and the `is_reference` branches).

use serde_json::json;
use weave::schema::{CallReadReq, CallsDeleteReq, CallsFilter, CallsQueryStatsReq};
use weave::{generate_id, Call, CallOptions, CallsQuery, Timestamp, WeaveClient, WeaveError};
use weave_testkit::backends;

use crate::common::{ids, TestStore};

/// A 4-level tree, every call finished, started one millisecond apart in this order:
///
/// ```text
/// root
/// ├── mid
/// │   ├── leaf        (level 3)
/// │   │   └── deep    (level 4)
/// │   └── leaf2
/// └── sib
///     └── sib_child
/// ```
struct Tree {
    root: Call,
    mid: Call,
    leaf: Call,
    deep: Call,
    leaf2: Call,
    sib: Call,
    sib_child: Call,
}

fn tree(client: &WeaveClient) -> Tree {
    let base = Timestamp::now().as_nanos();
    let mut n = 0;
    let mut make = |name: &str, parent: Option<&Call>| {
        n += 1;
        let mut opts = CallOptions::new()
            .use_stack(false)
            .started_at(Timestamp::from_nanos(base + n * 1_000_000));
        if let Some(p) = parent {
            opts = opts.parent(p);
        }
        client
            .create_call_with(name, json!({"name": name}), opts)
            .expect("create")
    };
    let root = make("root", None);
    let mid = make("mid", Some(&root));
    let leaf = make("leaf", Some(&mid));
    let deep = make("deep", Some(&leaf));
    let leaf2 = make("leaf2", Some(&mid));
    let sib = make("sib", Some(&root));
    let sib_child = make("sib_child", Some(&sib));
    for c in [&deep, &leaf, &leaf2, &mid, &sib_child, &sib, &root] {
        client.finish_call(c, json!("ok")).expect("finish");
    }
    Tree {
        root,
        mid,
        leaf,
        deep,
        leaf2,
        sib,
        sib_child,
    }
}

fn id_list(calls: &[&Call]) -> Vec<String> {
    calls.iter().map(|c| c.id().to_string()).collect()
}

/// `num_deleted` as each backend counts it: `embedded` on the embedded store (each call newly
/// deleted, once), `remote` on the reference server.
///
/// Reference server: `SqliteTraceServer.calls_delete` answers `len(descendants + call_ids)`:
/// every requested id counts, whether live, already deleted, unknown or repeated, plus each
/// live descendant its recursive query finds.
fn deleted(store: &TestStore, embedded: u64, remote: u64) -> u64 {
    if store.is_reference() {
        remote
    } else {
        embedded
    }
}

fn assert_not_found(client: &WeaveClient, id: &str) {
    match client.get_call(id) {
        Err(e @ WeaveError::NotFound { .. }) => {
            assert!(e.is_not_found());
            assert!(e.to_string().contains(id), "{e}");
        }
        other => panic!("expected NotFound for {id}, got {other:?}"),
    }
}

#[backends]
fn deleting_a_middle_node_removes_its_subtree_only() {
    let store = TestStore::new();
    let t = tree(&store.client);
    let all = CallsQuery::new();
    assert_eq!(store.client.get_calls(all.clone()).size().unwrap(), 7);

    let n = store.client.delete_calls([t.mid.id()]).expect("delete");
    assert_eq!(n, 4, "mid, leaf, deep and leaf2");

    for gone in [&t.mid, &t.leaf, &t.deep, &t.leaf2] {
        assert_not_found(&store.client, gone.id());
    }
    // Parent, sibling and the sibling's child are untouched, in start order.
    assert_eq!(
        ids(&store.client, all.clone()),
        id_list(&[&t.root, &t.sib, &t.sib_child])
    );
    assert_eq!(store.client.get_calls(all).size().unwrap(), 3);
    let root = store.client.get_call(t.root.id()).unwrap();
    assert_eq!(root.deleted_at(), None);
    assert_eq!(
        root.children()
            .map(|c| c.unwrap().id().to_string())
            .collect::<Vec<_>>(),
        id_list(&[&t.sib])
    );
    assert_eq!(root.children().size().unwrap(), 1);
    assert_eq!(
        store
            .client
            .get_call(t.sib.id())
            .unwrap()
            .children()
            .size()
            .unwrap(),
        1
    );

    // Every route agrees: filters by trace, by parent, by id.
    let by_trace = CallsFilter {
        trace_ids: Some(vec![t.root.trace_id().to_string()]),
        ..Default::default()
    };
    assert_eq!(store.client.get_calls(by_trace).size().unwrap(), 3);
    let by_parent = CallsFilter {
        parent_ids: Some(vec![t.mid.id().to_string(), t.leaf.id().to_string()]),
        ..Default::default()
    };
    assert_eq!(store.client.get_calls(by_parent.clone()).count(), 0);
    assert_eq!(store.client.get_calls(by_parent).size().unwrap(), 0);
    let by_id = CallsFilter {
        call_ids: Some(id_list(&[&t.mid, &t.deep, &t.sib])),
        ..Default::default()
    };
    assert_eq!(ids(&store.client, by_id), id_list(&[&t.sib]));
    let stats = store
        .server
        .calls_query_stats(CallsQueryStatsReq {
            project_id: store.client.project_id().into(),
            filter: None,
            query: None,
            limit: None,
            include_total_storage_size: false,
            expand_columns: None,
        })
        .unwrap();
    assert_eq!(stats.count, 3);
    let read = store
        .server
        .call_read(CallReadReq {
            project_id: store.client.project_id().into(),
            id: t.deep.id().into(),
            include_costs: false,
            include_storage_size: false,
            include_total_storage_size: false,
        })
        .unwrap();
    assert_eq!(
        read.call, None,
        "/call/read answers null for a deleted call"
    );

    // Deleting again deletes nothing more; deleting the root takes the rest.
    assert_eq!(
        store.client.delete_calls([t.mid.id()]).unwrap(),
        deleted(&store, 0, 1)
    );
    assert_eq!(
        store.client.delete_calls([t.leaf.id()]).unwrap(),
        deleted(&store, 0, 1)
    );
    assert_eq!(store.client.delete_calls([t.root.id()]).unwrap(), 3);
    assert_eq!(store.client.get_calls(CallsQuery::new()).size().unwrap(), 0);
    assert_eq!(store.client.get_calls(CallsQuery::new()).count(), 0);
}

#[backends]
fn num_deleted_counts_each_call_once() {
    let store = TestStore::new();
    let t = tree(&store.client);
    // The same call twice, and a call together with its own descendant.
    let n = store
        .client
        .delete_calls([t.leaf.id(), t.leaf.id(), t.deep.id(), t.sib_child.id()])
        .unwrap();
    assert_eq!(
        n,
        deleted(&store, 3, 5),
        "leaf, deep, sib_child (remote: the 4 ids and deep as leaf's descendant)"
    );
    assert_eq!(
        ids(&store.client, CallsQuery::new()),
        id_list(&[&t.root, &t.mid, &t.leaf2, &t.sib])
    );
}

#[backends]
fn call_delete_removes_the_call_and_marks_the_handle() {
    let store = TestStore::new();
    let t = tree(&store.client);

    t.leaf.delete().expect("Call::delete");
    assert!(
        t.leaf.deleted_at().is_some(),
        "the handle knows it is deleted"
    );
    assert_not_found(&store.client, t.leaf.id());
    assert_not_found(&store.client, t.deep.id());
    assert_eq!(store.client.get_calls(CallsQuery::new()).size().unwrap(), 5);

    // A handle read back from the store deletes just as well.
    let sib = store.client.get_call(t.sib.id()).unwrap();
    sib.delete().unwrap();
    assert!(sib.deleted_at().is_some());
    assert_not_found(&store.client, t.sib_child.id());
    assert_eq!(
        ids(&store.client, CallsQuery::new()),
        id_list(&[&t.root, &t.mid, &t.leaf2])
    );
    // delete_call on the client is the same operation.
    store.client.delete_call(&t.root).unwrap();
    assert_eq!(store.client.get_calls(CallsQuery::new()).size().unwrap(), 0);
}

#[backends]
fn a_call_that_finishes_after_it_was_deleted_stays_deleted() {
    let store = TestStore::new();
    let opts = || CallOptions::new().use_stack(false);
    let root = store
        .client
        .create_call_with("root", json!({}), opts())
        .unwrap();
    let child = store
        .client
        .create_call_with("child", json!({}), opts().parent(&root))
        .unwrap();
    assert_eq!(store.client.delete_calls([root.id()]).unwrap(), 2);

    store.client.finish_call(&child, json!(1)).unwrap();
    store.client.finish_call(&root, json!(2)).unwrap();
    store.client.flush();
    assert_not_found(&store.client, root.id());
    assert_not_found(&store.client, child.id());
    assert_eq!(store.client.get_calls(CallsQuery::new()).size().unwrap(), 0);
    assert_eq!(
        store.client.dropped(),
        0,
        "the late ends were written, not lost"
    );
}

#[backends]
fn client_delete_calls_takes_more_than_1000_ids() {
    let store = TestStore::new();
    let calls: Vec<Call> = (0..1001)
        .map(|i| crate::common::record(&store.client, "bulk", json!({"i": i}), json!(i)))
        .collect();
    let all: Vec<String> = calls.iter().map(|c| c.id().to_string()).collect();
    assert_eq!(
        store.client.get_calls(CallsQuery::new()).size().unwrap(),
        1001
    );

    let raw = |call_ids: &[String]| {
        store.server.calls_delete(CallsDeleteReq {
            project_id: store.client.project_id().into(),
            call_ids: call_ids.to_vec(),
            wb_user_id: None,
        })
    };

    if store.is_reference() {
        // Reference server: `SqliteTraceServer.calls_delete` has no limit on `call_ids`
        // (W&B's server refuses more than 1000): the 1001 ids are all deleted at once.
        assert_eq!(raw(&all).unwrap().num_deleted, 1001);
        assert_eq!(store.client.get_calls(CallsQuery::new()).size().unwrap(), 0);
    } else {
        // The raw route refuses more than 1000 ids, names the limit, and deletes nothing.
        let err = raw(&all).unwrap_err();
        assert!(matches!(err, WeaveError::InvalidInput(_)), "{err:?}");
        assert!(err.to_string().contains("1000"), "{err}");
        assert_eq!(
            store.client.get_calls(CallsQuery::new()).size().unwrap(),
            1001
        );

        // Exactly 1000 is fine on the raw route.
        assert_eq!(raw(&all[..1000]).unwrap().num_deleted, 1000);
        assert_eq!(
            ids(&store.client, CallsQuery::new()),
            vec![all[1000].clone()]
        );
    }

    // The client chunks: 2002 ids (the 1001 calls, twice over with unknown ids) work (on the
    // reference server every id of the three chunks counts, see `deleted`).
    let mut many = all.clone();
    many.extend((0..1001).map(|_| generate_id()));
    assert_eq!(
        store.client.delete_calls(&many).unwrap(),
        deleted(&store, 1, 2002)
    );
    assert_eq!(store.client.get_calls(CallsQuery::new()).size().unwrap(), 0);
}

#[backends]
fn client_delete_calls_over_1000_live_calls_counts_them_all() {
    let store = TestStore::new();
    let all: Vec<String> = (0..1500)
        .map(|i| {
            crate::common::record(&store.client, "bulk", json!({"i": i}), json!(i))
                .id()
                .to_string()
        })
        .collect();
    assert_eq!(store.client.delete_calls(&all).unwrap(), 1500);
    assert_eq!(store.client.get_calls(CallsQuery::new()).size().unwrap(), 0);
}

#[backends]
fn deleting_an_unknown_id_deletes_nothing() {
    let store = TestStore::new();
    let t = tree(&store.client);
    assert_eq!(
        store.client.delete_calls([generate_id()]).unwrap(),
        deleted(&store, 0, 1)
    );
    assert_eq!(store.client.delete_calls(Vec::<String>::new()).unwrap(), 0);
    assert_eq!(
        store
            .client
            .delete_calls([generate_id().as_str(), t.sib_child.id()])
            .unwrap(),
        deleted(&store, 1, 2)
    );
    assert_eq!(store.client.get_calls(CallsQuery::new()).size().unwrap(), 6);
}

#[backends]
fn delete_is_scoped_to_the_project() {
    let store = TestStore::new();
    let other =
        WeaveClient::new("other-entity", "other-project", store.server.clone(), true).unwrap();
    let t = tree(&store.client);
    let theirs = crate::common::record(&other, "theirs", json!({}), json!(null));
    // Both projects' calls are written before either deletes.
    store.client.flush();
    other.flush();

    if store.is_reference() {
        // Reference server: `SqliteTraceServer.calls_delete` looks for descendants in the
        // request's project only, but its `UPDATE calls SET deleted_at = ... WHERE deleted_at
        // IS NULL AND id IN (...)` has no project condition: a project deletes another
        // project's call by id (without its descendants), and counts it.
        assert_eq!(other.delete_calls([t.root.id()]).unwrap(), 1);
        assert_not_found(&store.client, t.root.id());
        assert_eq!(store.client.get_calls(CallsQuery::new()).size().unwrap(), 6);
        assert_eq!(store.client.delete_calls([theirs.id()]).unwrap(), 1);
        assert_not_found(&other, theirs.id());
        assert_eq!(other.get_calls(CallsQuery::new()).size().unwrap(), 0);
        // Our root's live descendants are still ours to delete: 6 of them, and the root id.
        assert_eq!(store.client.delete_calls([t.root.id()]).unwrap(), 7);
        assert_eq!(store.client.get_calls(CallsQuery::new()).size().unwrap(), 0);
        return;
    }

    // Another project cannot delete our calls by id, nor we theirs.
    assert_eq!(other.delete_calls([t.root.id()]).unwrap(), 0);
    assert_eq!(store.client.delete_calls([theirs.id()]).unwrap(), 0);
    assert_eq!(store.client.get_calls(CallsQuery::new()).size().unwrap(), 7);
    assert_eq!(other.get_calls(CallsQuery::new()).size().unwrap(), 1);

    assert_eq!(store.client.delete_calls([t.root.id()]).unwrap(), 7);
    assert_eq!(other.get_calls(CallsQuery::new()).size().unwrap(), 1);
    assert!(other.get_call(theirs.id()).is_ok());
}

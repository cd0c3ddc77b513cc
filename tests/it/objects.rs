//! Objects and refs (PROTOCOL §7): save / get, versions, digests, refs with extra path edges,
//! tables and datasets, refs inside calls (input_refs / output_refs / expand_columns), files.
//! On both backends; where the reference server differs, the test checks its own answer (see
//! `is_reference`).

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use weave::digest::{file_digest, object_digest, row_digest, table_digest};
use weave::refs::{ObjectRef, Ref};
use weave::schema::{
    FileContentReadReq, FileCreateReq, ObjCreateReq, ObjDeleteReq, ObjQueryReq, ObjSchemaForInsert,
    ObjectVersionFilter, RefsReadBatchReq, TableCreateReq, TableSchemaForInsert,
};
use weave::{CallsFilter, CallsQuery, WeaveError};
use weave_testkit::backends;

use crate::common::TestStore;

const PROJECT: &str = "test-entity/test-project";

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct AgentConfig {
    model: String,
    temperature: f64,
    tools: Vec<String>,
}

#[backends]
fn save_and_get_any_serialize_value() {
    let s = TestStore::new();
    let cfg = AgentConfig {
        model: "gpt-4o".into(),
        temperature: 0.2,
        tools: vec!["search".into()],
    };
    let r = s.client.save(&cfg, "agent-config").unwrap();
    assert_eq!(r.name, "agent-config");
    assert_eq!(
        r.digest,
        object_digest(&serde_json::to_value(&cfg).unwrap()),
        "the digest the Python client computes"
    );
    assert_eq!(
        r.to_string(),
        format!("weave:///{PROJECT}/object/agent-config:{}", r.digest)
    );
    let back: AgentConfig = s.client.get_as(&r).unwrap();
    assert_eq!(back, cfg);
    assert_eq!(
        s.client.get(r.to_string()).unwrap()["tools"],
        json!(["search"])
    );
    // Reading into the wrong type is a clear error.
    let err = s.client.get_as::<Vec<u8>>(&r).unwrap_err();
    assert!(err.to_string().contains("agent-config"), "{err}");
}

#[backends]
fn versions_latest_and_vn() {
    let s = TestStore::new();
    let a = s.client.save(&json!({"v": 1}), "cfg").unwrap();
    let again = s.client.save(&json!({"v": 1}), "cfg").unwrap();
    assert_eq!(a, again, "same content, same digest");
    assert_eq!(
        s.client.object_versions("cfg").unwrap().len(),
        1,
        "and no new version"
    );
    let b = s.client.save(&json!({"v": 2}), "cfg").unwrap();
    assert_ne!(a.digest, b.digest);
    let versions = s.client.object_versions("cfg").unwrap();
    assert_eq!(
        versions
            .iter()
            .map(|o| (o.version_index, o.is_latest))
            .collect::<Vec<_>>(),
        [(0, 0), (1, 1)]
    );
    assert_eq!(versions[1].digest, b.digest);
    assert_eq!(versions[0].kind, "object");
    let base = format!("weave:///{PROJECT}/object/cfg");
    assert_eq!(
        s.client.get(format!("{base}:latest")).unwrap(),
        json!({"v": 2})
    );
    assert_eq!(s.client.get(format!("{base}:v0")).unwrap(), json!({"v": 1}));
    assert_eq!(s.client.get(format!("{base}:v1")).unwrap(), json!({"v": 2}));
    assert!(s
        .client
        .get(format!("{base}:v2"))
        .unwrap_err()
        .is_not_found());
    // Saving an old content again does not make a new version either.
    s.client.save(&json!({"v": 1}), "cfg").unwrap();
    assert_eq!(s.client.object_versions("cfg").unwrap().len(), 2);
}

#[backends]
fn deleting_versions() {
    let s = TestStore::new();
    let a = s.client.save(&json!({"v": 1}), "cfg").unwrap();
    let b = s.client.save(&json!({"v": 2}), "cfg").unwrap();
    assert_eq!(
        s.client.delete_object_versions("cfg", [&b.digest]).unwrap(),
        1
    );
    let err = s.client.get(&b).unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert!(err.to_string().contains("deleted"), "{err}");
    // latest falls back to the newest version left.
    assert_eq!(
        s.client
            .get(format!("weave:///{PROJECT}/object/cfg:latest"))
            .unwrap(),
        json!({"v": 1})
    );
    let versions = s.client.object_versions("cfg").unwrap();
    assert_eq!(versions.len(), 1);
    assert_eq!(versions[0].is_latest, 1);
    // refs/read_batch gives null for a deleted object.
    let vals = s
        .server
        .refs_read_batch(RefsReadBatchReq {
            refs: vec![b.to_string(), a.to_string()],
        })
        .unwrap()
        .vals;
    assert_eq!(vals, [Value::Null, json!({"v": 1})]);
    // Deleting an unknown digest is not found; deleting all versions works.
    let err = s
        .server
        .obj_delete(ObjDeleteReq {
            project_id: PROJECT.into(),
            object_id: "cfg".into(),
            digests: Some(vec!["nope".into()]),
        })
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert_eq!(
        s.client
            .delete_object_versions("cfg", Vec::<String>::new())
            .unwrap(),
        1
    );
    assert!(s
        .client
        .get(format!("weave:///{PROJECT}/object/cfg:latest"))
        .unwrap_err()
        .is_not_found());
}

#[backends]
fn names_are_sanitized_like_python() {
    let s = TestStore::new();
    for (name, expected) in [
        ("My Config", "My-Config"),
        ("a/b\\c", "a-b-c"),
        ("--x--", "x"),
        ("__init__", "init"),
        ("v1.2.3", "v1.2.3"),
        ("a..b", "a-b"),
        ("héllo wörld", "héllo-wörld"),
    ] {
        assert_eq!(
            weave::sanitize_object_name(name).unwrap(),
            expected,
            "{name:?}"
        );
    }
    assert_eq!(
        weave::sanitize_object_name(&"x".repeat(300)).unwrap().len(),
        128
    );
    let r = s.client.save(&json!(1), "My Config").unwrap();
    assert_eq!(r.name, "My-Config");
    for bad in ["", "///", "-_-"] {
        let err = s.client.save(&json!(1), bad).unwrap_err();
        assert!(matches!(err, WeaveError::InvalidInput(_)), "{bad:?}: {err}");
    }
    // The server refuses names the client would have sanitized.
    let err = s
        .server
        .obj_create(ObjCreateReq {
            obj: ObjSchemaForInsert {
                project_id: PROJECT.into(),
                object_id: "bad name".into(),
                val: json!(1),
                builtin_object_class: None,
                expected_digest: None,
                wb_user_id: None,
            },
        })
        .unwrap_err();
    assert!(err.to_string().contains("bad name"), "{err}");
}

#[backends]
fn expected_digest_is_checked() {
    let s = TestStore::new();
    let mk = |d: &str| ObjCreateReq {
        obj: ObjSchemaForInsert {
            project_id: PROJECT.into(),
            object_id: "o".into(),
            val: json!({"a": 1}),
            builtin_object_class: None,
            expected_digest: Some(d.into()),
            wb_user_id: None,
        },
    };
    let good = object_digest(&json!({"a": 1}));
    assert_eq!(s.server.obj_create(mk(&good)).unwrap().digest, good);
    let err = s.server.obj_create(mk("wrong")).unwrap_err();
    assert!(matches!(err, WeaveError::InvalidInput(_)), "{err}");
    if s.is_reference() {
        // Reference server: a 409 in digest_validation.validate_expected_digest's wording.
        assert!(
            err.to_string().contains(&format!(
                "HTTP 409: Client obj 'o' digest wrong != server digest {good}"
            )),
            "{err}"
        );
    } else {
        assert!(err.to_string().contains("digest mismatch"), "{err}");
    }
}

#[backends]
fn refs_with_extra_edges_resolve_parts_and_nested_refs() {
    let s = TestStore::new();
    let inner = s
        .client
        .save(&json!({"secret": {"k": [10, 20, 30]}}), "inner")
        .unwrap();
    let outer = s
        .client
        .save(
            &json!({"a b/c": {"list": [1, {"deep": "x"}]}, "child": inner}),
            "outer",
        )
        .unwrap();
    let base = outer.to_string();
    assert_eq!(
        s.client
            .get(format!("{base}/key/a%20b%2Fc/key/list/index/1/key/deep"))
            .unwrap(),
        json!("x")
    );
    assert_eq!(
        s.client.get(format!("{base}/attr/a%20b%2Fc")).unwrap(),
        json!({"list": [1, {"deep": "x"}]})
    );
    // A nested object ref is followed (Python's WeaveClient.get sends the same refs_read_batch).
    let nested = s
        .client
        .get(format!("{base}/key/child/key/secret/key/k/index/2"));
    // Through the server route too.
    let vals = s.server.refs_read_batch(RefsReadBatchReq {
        refs: vec![format!("{base}/key/child/key/secret")],
    });
    let missing_key = s.client.get(format!("{base}/key/nope")).unwrap_err();
    let missing_index = s
        .client
        .get(format!("{base}/key/child/key/secret/key/k/index/9"))
        .unwrap_err();
    if s.is_reference() {
        // Reference server: SqliteTraceServer.refs_read_batch walks the extra edges with
        // plain `val[arg]`: it does not follow a nested ref (indexing the ref string is a
        // TypeError), and a missing key (KeyError) or index (IndexError) is a 500, not a 404.
        let is_500 = |e: &WeaveError, reason: &str| {
            matches!(e, WeaveError::Backend { message: m, .. }
                if m == &format!("/refs/read_batch: HTTP 500: {reason}"))
        };
        let nested = nested.unwrap_err();
        assert!(is_500(&nested, "Internal server error"), "{nested}");
        let vals = vals.unwrap_err();
        assert!(is_500(&vals, "Internal server error"), "{vals}");
        assert!(
            is_500(&missing_key, "Internal backend error"),
            "{missing_key}"
        );
        assert!(
            is_500(&missing_index, "Internal server error"),
            "{missing_index}"
        );
    } else {
        assert_eq!(nested.unwrap(), json!(30));
        assert_eq!(vals.unwrap().vals, [json!({"k": [10, 20, 30]})]);
        // A missing part is not found, naming it.
        assert!(
            missing_key.is_not_found() && missing_key.to_string().contains("nope"),
            "{missing_key}"
        );
        assert!(missing_index.is_not_found(), "{missing_index}");
    }
}

#[backends]
fn malformed_and_missing_refs() {
    let s = TestStore::new();
    for (bad, why) in [
        ("not a ref", "weave:///"),
        ("weave:///e/p/object/noversion", "name:digest"),
        ("weave:///e/p/object/a:b/key", "pairs"),
        ("weave:///e/p/widget/a:b", "unknown kind"),
    ] {
        let err = s.client.get(bad).unwrap_err();
        assert!(
            matches!(err, WeaveError::InvalidInput(_)) && err.to_string().contains(why),
            "{bad}: {err}"
        );
    }
    let err = s
        .client
        .get(format!("weave:///{PROJECT}/object/ghost:abc"))
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
    // refs/read_batch refuses table refs, call refs and unpinned versions.
    for r in [
        format!("weave:///{PROJECT}/table/abc"),
        format!("weave:///{PROJECT}/call/0193"),
        format!("weave:///{PROJECT}/object/x:latest"),
        format!("weave:///{PROJECT}/object/x:v0"),
    ] {
        let err = s
            .server
            .refs_read_batch(RefsReadBatchReq {
                refs: vec![r.clone()],
            })
            .unwrap_err();
        if s.is_reference() && r.contains("/object/") {
            // Reference server: SqliteTraceServer.refs_read_batch takes any version as a
            // digest to look up ("latest" and "v0" are none): not found.
            let name = r.rsplit('/').next().unwrap();
            assert!(
                matches!(&err, WeaveError::NotFound { id, .. } if id == &format!("Obj {name} not found")),
                "{r}: {err:?}"
            );
        } else {
            assert!(matches!(err, WeaveError::InvalidInput(_)), "{r}: {err}");
        }
    }
}

#[backends]
fn tables_store_rows_with_python_digests_and_page() {
    let s = TestStore::new();
    let rows: Vec<Value> = (0..10)
        .map(|i| json!({"q": format!("{i}+{i}"), "a": i * 2}))
        .collect();
    let t = s.client.save_table(rows.clone()).unwrap();
    let expected_rows: Vec<String> = rows.iter().map(row_digest).collect();
    assert_eq!(t.row_digests, expected_rows);
    assert_eq!(t.digest, table_digest(&expected_rows));
    let it = s.client.table_rows(&t).page_size(3);
    assert_eq!(it.size().unwrap(), 10);
    let back: Vec<(Value, Option<i64>)> = it
        .map(|r| r.map(|r| (r.val, r.original_index)))
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        back.iter().map(|(v, _)| v.clone()).collect::<Vec<_>>(),
        rows
    );
    assert_eq!(
        back.iter().map(|(_, i)| i.unwrap()).collect::<Vec<_>>(),
        (0..10).collect::<Vec<_>>()
    );
    // A table ref reads as its rows.
    assert_eq!(s.client.get(&t).unwrap(), Value::Array(rows));
    // Rows must be objects.
    let err = s
        .server
        .table_create(TableCreateReq {
            table: TableSchemaForInsert {
                project_id: PROJECT.into(),
                rows: vec![json!({"a": 1}), json!(2)],
            },
        })
        .unwrap_err();
    assert!(matches!(err, WeaveError::InvalidInput(_)), "{err}");
    if s.is_reference() {
        // Reference server: the pydantic request model refuses it (FastAPI's 422).
        assert!(
            err.to_string().contains(
                r#""loc":["body","table","rows",1],"msg":"Input should be a valid dictionary""#
            ),
            "{err}"
        );
    } else {
        assert!(err.to_string().contains("row 1"), "{err}");
    }
    // The same rows in another project read back there too.
    let other = weave::WeaveClient::new("test-entity", "other", s.server.clone(), false).unwrap();
    let t2 = other.save_table(vec![json!({"q": "0+0", "a": 0})]).unwrap();
    assert_eq!(other.table_rows(&t2).count(), 1);
}

#[backends]
fn datasets_hold_a_table_and_rows_resolve_by_id() {
    let s = TestStore::new();
    let rows = vec![
        json!({"question": "2+2", "answer": 4}),
        json!({"question": "3+3", "answer": 6}),
    ];
    let ds = s
        .client
        .save_dataset("math questions", rows.clone())
        .unwrap();
    assert_eq!(ds.name, "math-questions");
    let val = s.client.get(&ds).unwrap();
    assert_eq!(val["_type"], "Dataset");
    assert_eq!(val["_class_name"], "Dataset");
    let table: Ref = val["rows"].as_str().unwrap().parse().unwrap();
    assert!(matches!(table, Ref::Table { .. }));
    let versions = s.client.object_versions("math-questions").unwrap();
    assert_eq!(versions[0].base_object_class.as_deref(), Some("Dataset"));
    assert_eq!(versions[0].leaf_object_class.as_deref(), Some("Dataset"));
    // A dataset row: .../attr/rows/id/<row digest>.
    let row_ref = format!("{ds}/attr/rows/id/{}", row_digest(&rows[1]));
    assert_eq!(s.client.get(&row_ref).unwrap(), rows[1]);
    assert_eq!(
        s.client.get(format!("{row_ref}/key/answer")).unwrap(),
        json!(6)
    );
    assert!(s
        .client
        .get(format!("{ds}/attr/rows/id/not-a-row"))
        .unwrap_err()
        .is_not_found());
}

#[backends]
fn objs_query_filters() {
    let s = TestStore::new();
    s.client.save(&json!({"v": 1}), "a").unwrap();
    s.client.save(&json!({"v": 2}), "a").unwrap();
    s.client.save(&json!({"_type": "Prompt", "content": "hi", "_class_name": "Prompt", "_bases": ["Object", "BaseModel"]}), "p").unwrap();
    s.server
        .obj_create(ObjCreateReq {
            obj: ObjSchemaForInsert {
                project_id: PROJECT.into(),
                object_id: "my_op".into(),
                val: json!({"_type": "CustomWeaveType", "weave_type": {"type": "Op"}, "files": {"obj.py": "abc"}}),
                builtin_object_class: None,
                expected_digest: None,
                wb_user_id: None,
            },
        })
        .unwrap();
    let q = |filter: ObjectVersionFilter| {
        let res = s
            .server
            .objs_query(ObjQueryReq {
                project_id: PROJECT.into(),
                filter: Some(filter),
                limit: None,
                offset: None,
                sort_by: None,
                metadata_only: None,
            })
            .unwrap();
        res.objs
            .into_iter()
            .map(|o| format!("{}:{}", o.object_id, o.version_index))
            .collect::<Vec<_>>()
    };
    let all = q(ObjectVersionFilter::default());
    let latest = q(ObjectVersionFilter {
        latest_only: Some(true),
        ..Default::default()
    });
    if s.is_reference() {
        // Reference server: without sort_by, SqliteTraceServer._select_objs_query orders by
        // `created_at ASC, version_index ASC`, i.e. in creation order.
        assert_eq!(all, ["a:0", "a:1", "p:0", "my_op:0"]);
        assert_eq!(latest, ["a:1", "p:0", "my_op:0"]);
    } else {
        assert_eq!(all, ["a:0", "a:1", "my_op:0", "p:0"]);
        assert_eq!(latest, ["a:1", "my_op:0", "p:0"]);
    }
    assert_eq!(
        q(ObjectVersionFilter {
            is_op: Some(true),
            ..Default::default()
        }),
        ["my_op:0"]
    );
    assert_eq!(
        q(ObjectVersionFilter {
            is_op: Some(false),
            object_ids: Some(vec!["a".into()]),
            ..Default::default()
        }),
        ["a:0", "a:1"]
    );
    assert_eq!(
        q(ObjectVersionFilter {
            base_object_classes: Some(vec!["Prompt".into()]),
            ..Default::default()
        }),
        ["p:0"]
    );
}

#[backends]
fn refs_in_call_inputs_and_outputs_are_indexed_and_expand() {
    let s = TestStore::new();
    let cfg = s
        .client
        .save(&json!({"model": "gpt-4o", "temperature": 0.1}), "config")
        .unwrap();
    let other = s.client.save(&json!({"x": 1}), "other").unwrap();
    // An ObjectRef serialises as its URI inside inputs.
    let uses = s
        .client
        .create_call_with(
            "run",
            json!({"config": cfg, "n": 1}),
            weave::CallOptions::new().use_stack(false),
        )
        .unwrap();
    s.client
        .finish_call(&uses, json!({"made": [other.to_string()]}))
        .unwrap();
    let plain = crate::common::record(&s.client, "run", json!({"n": 2}), json!(null));

    let by_input = CallsFilter {
        input_refs: Some(vec![cfg.to_string()]),
        ..Default::default()
    };
    assert_eq!(crate::common::ids(&s.client, by_input), [uses.id()]);
    let by_output = CallsFilter {
        output_refs: Some(vec![other.to_string()]),
        ..Default::default()
    };
    assert_eq!(crate::common::ids(&s.client, by_output), [uses.id()]);
    let wrong_side = CallsFilter {
        input_refs: Some(vec![other.to_string()]),
        ..Default::default()
    };
    assert!(crate::common::ids(&s.client, wrong_side).is_empty());

    // expand_columns resolves the ref in place, with `_ref` inside.
    let calls = crate::common::calls(
        &s.client,
        CallsQuery::new().expand_columns(["inputs.config", "output.made.0"]),
    );
    let expanded = calls.iter().find(|c| c.id() == uses.id()).unwrap();
    assert_eq!(
        expanded.inputs()["config"],
        json!({"model": "gpt-4o", "temperature": 0.1, "_ref": cfg.to_string()})
    );
    if s.is_reference() {
        // Reference server: SqliteTraceServer._expand_refs finds a column with
        // trace_server_common.get_nested_key, which walks dicts only: a list index
        // ("output.made.0") is never expanded.
        assert_eq!(expanded.output()["made"][0], json!(other.to_string()));
    } else {
        assert_eq!(
            expanded.output()["made"][0],
            json!({"x": 1, "_ref": other.to_string()})
        );
    }
    assert_eq!(
        calls
            .iter()
            .find(|c| c.id() == plain.id())
            .unwrap()
            .inputs()["n"],
        2
    );
    // Not returned when return_expanded_column_values is false.
    let calls = crate::common::calls(
        &s.client,
        CallsQuery::new()
            .expand_columns(["inputs.config"])
            .return_expanded_column_values(false),
    );
    let config = &calls.iter().find(|c| c.id() == uses.id()).unwrap().inputs()["config"];
    if s.is_reference() {
        // Reference server: SqliteTraceServer.calls_query ignores
        // return_expanded_column_values (weave 0.52's sqlite_trace_server.py never reads it)
        // and returns the expanded value.
        assert_eq!(
            config,
            &json!({"model": "gpt-4o", "temperature": 0.1, "_ref": cfg.to_string()})
        );
    } else {
        assert_eq!(config, &json!(cfg.to_string()));
    }
}

#[backends]
fn refs_parse_into_typed_values() {
    let r: ObjectRef = format!("weave:///{PROJECT}/op/predict:abc")
        .parse()
        .unwrap();
    assert_eq!(r.kind, weave::refs::ObjectKind::Op);
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(v, json!(format!("weave:///{PROJECT}/op/predict:abc")));
    let back: ObjectRef = serde_json::from_value(v).unwrap();
    assert_eq!(back, r);
    assert!(format!("weave:///{PROJECT}/table/abc")
        .parse::<ObjectRef>()
        .is_err());
}

#[backends]
fn files_are_content_addressed() {
    let s = TestStore::new();
    let content = b"import weave\n\n@weave.op\ndef f():\n    return 1\n".to_vec();
    let res = s
        .server
        .file_create(FileCreateReq {
            project_id: PROJECT.into(),
            name: "obj.py".into(),
            content: content.clone(),
        })
        .unwrap();
    assert_eq!(res.digest, file_digest(&content));
    let back = s
        .server
        .file_content_read(FileContentReadReq {
            project_id: PROJECT.into(),
            digest: res.digest.clone(),
        })
        .unwrap();
    assert_eq!(back.content, content);
    let err = s
        .server
        .file_content_read(FileContentReadReq {
            project_id: PROJECT.into(),
            digest: "missing".into(),
        })
        .unwrap_err();
    assert!(err.is_not_found());
}

#[backends]
fn a_call_ref_reads_the_call() {
    let s = TestStore::new();
    let call = crate::common::record(&s.client, "op", json!({"a": 1}), json!({"answer": 42}));
    let r = call.call_ref();
    assert_eq!(s.client.get(&r).unwrap()["id"], call.id());
    assert_eq!(
        s.client.get(format!("{r}/key/output/key/answer")).unwrap(),
        json!(42)
    );
}

//! Feedback: reactions, notes and custom feedback on calls, listing, querying, purging,
//! `include_feedback` on call queries, and the server's rules (PROTOCOL §3.6, §4.5, §4.9).
//! On both backends; where the reference server's rules or wording differ from the embedded
//! store's, the test checks the reference server's own answer (see `is_reference`).

use serde::Serialize;
use serde_json::{json, Value};
use weave::query::field;
use weave::schema::{
    FeedbackCreateBatchReq, FeedbackCreateBatchRes, FeedbackCreateReq, FeedbackCreateRes,
    FeedbackPurgeReq, FeedbackQueryReq, FeedbackQueryRes, FeedbackReplaceReq, JsonMap, SortBy,
};
use weave::{
    Call, CallsQuery, Feedback, FeedbackFilter, Query, SqliteServer, Timestamp, TraceServer,
    WeaveClient, WeaveError,
};
use weave_testkit::backends;

use crate::common::{record, TestStore};

const PROJECT: &str = "test-entity/test-project";

fn a_call(s: &TestStore) -> Call {
    record(&s.client, "answer", json!({"q": "2 + 2"}), json!(4))
}

fn obj(v: Value) -> JsonMap {
    v.as_object().expect("an object").clone()
}

fn call_ref(id: &str) -> String {
    format!("weave:///{PROJECT}/call/{id}")
}

/// An invalid-input error whose message contains `needle`.
fn assert_invalid<T: std::fmt::Debug>(r: Result<T, WeaveError>, needle: &str) {
    match r {
        Err(WeaveError::InvalidInput(m)) => {
            assert!(
                m.contains(needle),
                "message {m:?} should mention {needle:?}"
            )
        }
        other => panic!("expected an invalid-input error mentioning {needle:?}, got {other:?}"),
    }
}

/// Every row of the project, read from the backend directly (after the client's queue, where
/// a remote backend's feedback waits, is flushed).
fn all_rows(s: &TestStore) -> Vec<JsonMap> {
    s.client.flush();
    s.server
        .feedback_query(FeedbackQueryReq::new(PROJECT))
        .unwrap()
        .result
}

fn create_req(weave_ref: &str, feedback_type: &str, payload: Value) -> FeedbackCreateReq {
    FeedbackCreateReq::new(PROJECT, weave_ref, feedback_type, obj(payload))
}

/// The user the reference server records for every write (weave-testkit/src/ref_server.rs).
const REF_USER: &str = "ref-user-id";

/// The reference server's feedback columns that the embedded store does not have.
const REF_EXTRA_FEEDBACK_COLUMNS: [&str; 7] = [
    "queue_id",
    "scorer_tags",
    "scorer_tag_reasons",
    "scorer_tag_confidences",
    "scorer_ratings",
    "scorer_rating_reasons",
    "scorer_rating_confidences",
];

/// The backend's answer to a request breaking one rule: an invalid-input error mentioning
/// `embedded` on the embedded store; on the reference server, an invalid-input error
/// mentioning `remote`, or — `None` — the row accepted.
#[track_caller]
fn assert_rule<T: std::fmt::Debug>(
    s: &TestStore,
    r: Result<T, WeaveError>,
    embedded: &str,
    remote: Option<&str>,
) {
    match (s.is_reference(), remote) {
        (false, _) => assert_invalid(r, embedded),
        (true, Some(needle)) => assert_invalid(r, needle),
        (true, None) => {
            r.expect("the reference server accepts it");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Call::feedback

#[backends]
fn reactions_notes_and_custom_feedback_are_added_and_listed_oldest_first() {
    let s = TestStore::new();
    let call = a_call(&s);
    let fb = call.feedback();
    assert_eq!(fb.weave_ref(), call_ref(call.id()));
    assert!(fb.is_empty().unwrap());

    let r = fb.add_reaction("👍").unwrap();
    let n = fb.add_note("looks right").unwrap();
    let c = fb
        .add("correctness", json!({"value": 1, "reason": "sum ok"}))
        .unwrap();
    for f in [&r, &n, &c] {
        assert!(
            weave::is_valid_call_id(&f.id),
            "feedback ids are UUIDs: {}",
            f.id
        );
        assert_eq!(f.weave_ref, call_ref(call.id()));
        assert_eq!(f.project_id, PROJECT);
        assert_eq!(f.creator, None);
        // Over HTTP (the reference server, weave serve) the client queues feedback and builds
        // the returned row itself, as Python's client does (weave-core/src/client/feedback.rs):
        // `wb_user_id` is empty and `created_at` is the client's clock until it is read back.
        assert_eq!(f.wb_user_id, if s.over_http() { "" } else { "local" });
    }
    assert_eq!(
        Value::Object(r.payload.clone()),
        json!({"emoji": "👍", "alias": ":thumbs_up:", "detoned": "👍", "detoned_alias": ":thumbs_up:"})
    );

    let listed: Vec<Feedback> = fb.iter().collect::<Result<_, _>>().unwrap();
    if s.over_http() {
        // Over HTTP, read back, the rows carry the server's user and its clock (the reference
        // server's user, or weave serve's local one).
        let user = if s.is_reference() { REF_USER } else { "local" };
        let expected: Vec<Feedback> = [&r, &n, &c]
            .into_iter()
            .zip(&listed)
            .map(|(f, back)| Feedback {
                wb_user_id: user.into(),
                created_at: back.created_at,
                ..f.clone()
            })
            .collect();
        assert_eq!(listed, expected, "as created, oldest first");
    } else {
        assert_eq!(
            listed,
            vec![r.clone(), n.clone(), c.clone()],
            "as created, oldest first"
        );
    }
    assert_eq!(fb.len().unwrap(), 3);
    assert_eq!(fb.get(1).unwrap().unwrap().note(), Some("looks right"));
    assert_eq!(fb.get(0).unwrap().unwrap().emoji(), Some("👍"));
    assert_eq!(fb.get(3).unwrap(), None);
    assert!(listed
        .windows(2)
        .all(|w| w[0].created_at <= w[1].created_at));
    assert_eq!(listed[2].feedback_type, "correctness");
    assert_eq!(
        Value::Object(listed[2].payload.clone()),
        json!({"value": 1, "reason": "sum ok"})
    );
    assert_eq!(fb.refs().unwrap(), vec![call_ref(call.id())]);

    // A fresh handle (and a re-read call) sees the same rows.
    let again = s.client.get_call(call.id()).unwrap().feedback();
    let ids: Vec<String> = (&again).into_iter().map(|f| f.unwrap().id).collect();
    assert_eq!(ids, [r.id, n.id, c.id]);
}

#[backends]
fn reactions_get_the_servers_names_for_skin_tones() {
    let s = TestStore::new();
    let call = a_call(&s);
    let f = call.feedback().add_reaction("👍🏽").unwrap();
    assert_eq!(
        Value::Object(f.payload),
        json!({"emoji": "👍🏽", "alias": ":thumbs_up_medium_skin_tone:", "detoned": "👍", "detoned_alias": ":thumbs_up:"})
    );
    let heart = call.feedback().add_reaction("❤").unwrap();
    assert_eq!(heart.payload["alias"], ":red_heart:");
    assert_eq!(heart.payload["detoned"], "❤\u{fe0f}");
    let flag = call.feedback().add_reaction("🇫🇷").unwrap();
    assert_eq!(flag.payload["alias"], ":France:");
}

#[backends]
fn the_creator_is_recorded() {
    let s = TestStore::new();
    let call = a_call(&s);
    let fb = call.feedback().creator("Jane Smith");
    fb.add_note("good").unwrap();
    assert_eq!(
        fb.execute().unwrap()[0].creator.as_deref(),
        Some("Jane Smith")
    );
}

#[derive(Serialize)]
struct Score {
    value: f64,
    labels: Vec<&'static str>,
}

#[backends]
fn custom_payloads_are_any_serialisable_object() {
    let s = TestStore::new();
    let call = a_call(&s);
    let f = call
        .feedback()
        .add(
            "score",
            Score {
                value: 0.5,
                labels: vec!["a", "b"],
            },
        )
        .unwrap();
    assert_eq!(
        Value::Object(f.payload),
        json!({"value": 0.5, "labels": ["a", "b"]})
    );
    let stored = &call.feedback().execute().unwrap()[0];
    assert_eq!(stored.payload["labels"], json!(["a", "b"]));
}

// ---------------------------------------------------------------------------------------------
// Violations, checked by the client before anything is sent

#[backends]
fn client_side_violations_are_clear_errors_and_send_nothing() {
    let s = TestStore::new();
    let call = a_call(&s);
    let fb = call.feedback();
    assert_invalid(fb.add_reaction("👍👍"), "exactly one emoji");
    assert_invalid(fb.add_reaction(""), "exactly one emoji");
    assert_invalid(fb.add_reaction("thumbs up"), "exactly one emoji");
    assert_invalid(fb.add_reaction("👍 "), "exactly one emoji");
    assert_invalid(fb.add_note(""), "1 to 1024 characters, got 0");
    assert_invalid(fb.add_note(&"x".repeat(1025)), "got 1025");
    assert_invalid(
        fb.add("wandb.reaction.1", json!({"emoji": "👍"})),
        "reserved",
    );
    assert_invalid(fb.add("wandb.custom", json!({})), "reserved");
    assert_invalid(fb.add("", json!({})), "must not be empty");
    assert_invalid(
        fb.add("custom", json!([1, 2])),
        "must be a JSON object, got an array",
    );
    assert_invalid(
        fb.add("custom", "text"),
        "must be a JSON object, got a string",
    );
    let big = json!({"blob": "x".repeat(1024 * 1024)});
    assert_invalid(fb.add("custom", &big), "too large");
    assert_invalid(fb.purge(""), "empty");
    assert_invalid(
        s.client
            .purge_feedback_where(field("weave_ref").eq(call_ref(call.id()))),
        "only be purged by id",
    );
    assert!(all_rows(&s).is_empty(), "nothing was stored");

    // The limits themselves are allowed.
    fb.add_note(&"é".repeat(1024)).unwrap();
    fb.add("custom", json!({"blob": "x".repeat(1024 * 1024 - 20)}))
        .unwrap();
    assert_eq!(fb.len().unwrap(), 2);
}

// ---------------------------------------------------------------------------------------------
// Violations, checked by the backend

#[backends]
fn the_backend_enforces_the_feedback_rules() {
    let s = TestStore::new();
    let call = a_call(&s);
    let r = call_ref(call.id());
    let srv = &s.server;
    let create = |req: FeedbackCreateReq| srv.feedback_create(req);

    // Reference server: its rules are validate_feedback_create_req and
    // process_feedback_payload (weave/trace_server/feedback.py) and the pydantic payload
    // models, so other wording; a reaction needs `emoji.emoji_count(..) == 1` (text around
    // the emoji is kept), and neither the `wandb.` prefix nor an empty type is refused.
    let rule = |req: FeedbackCreateReq, embedded: &str, remote: Option<&str>| {
        assert_rule(&s, create(req), embedded, remote)
    };
    let reaction = |payload: Value| create_req(&r, "wandb.reaction.1", payload);
    let note = |payload: Value| create_req(&r, "wandb.note.1", payload);
    rule(
        reaction(json!({"emoji": "👍👍"})),
        "exactly one emoji",
        Some("exactly one emoji"),
    );
    rule(
        reaction(json!({"emoji": "👍 nice"})),
        "exactly one emoji",
        None,
    );
    rule(
        reaction(json!({})),
        "needs a \"emoji\" key",
        Some("emoji\n  Field required"),
    );
    rule(
        reaction(json!({"emoji": 1})),
        "needs a string \"emoji\"",
        Some("emoji\n  Input should be a valid string"),
    );
    rule(
        note(json!({"note": ""})),
        "1 to 1024 characters",
        Some("String should have at least 1 character"),
    );
    rule(
        note(json!({"note": "x".repeat(1025)})),
        "got 1025",
        Some("String should have at most 1024 characters"),
    );
    rule(
        note(json!({"note": 5})),
        "needs a string \"note\"",
        Some("note\n  Input should be a valid string"),
    );
    rule(
        create_req(&r, "wandb.whatever", json!({})),
        "reserved",
        None,
    );
    rule(create_req(&r, "", json!({})), "must not be empty", None);
    rule(
        create_req(&r, "custom", json!({"blob": "x".repeat(1024 * 1024)})),
        "too large",
        Some("Feedback payload too large"),
    );
    // json.dumps escapes non-ASCII: 200k "é" are 1.2 MB of JSON.
    rule(
        create_req(&r, "custom", json!({"blob": "é".repeat(200_000)})),
        "too large",
        Some("Feedback payload too large"),
    );

    // Refs only where the type needs them.
    let op = "weave:///test-entity/test-project/op/scorer:abc";
    let object = "weave:///test-entity/test-project/object/scorer:abc";
    for (what, set) in [
        (
            "runnable_ref",
            &(|q: &mut FeedbackCreateReq| q.runnable_ref = Some(op.into()))
                as &dyn Fn(&mut FeedbackCreateReq),
        ),
        ("call_ref", &|q: &mut FeedbackCreateReq| {
            q.call_ref = Some(r.clone())
        }),
        ("trigger_ref", &|q: &mut FeedbackCreateReq| {
            q.trigger_ref = Some(object.into())
        }),
        ("annotation_ref", &|q: &mut FeedbackCreateReq| {
            q.annotation_ref = Some(object.into())
        }),
    ] {
        let mut q = create_req(&r, "custom", json!({"a": 1}));
        set(&mut q);
        assert_invalid(create(q), &format!("{what} is not allowed"));
    }

    // Runnable (scorer) feedback: a runnable_ref named like the type, a call_ref for ops.
    let mut q = create_req(&r, "wandb.runnable.scorer", json!({"output": 0.9}));
    assert_invalid(create(q.clone()), "runnable_ref is required");
    q.runnable_ref = Some(op.into());
    assert_invalid(create(q.clone()), "call_ref is required");
    q.call_ref = Some(r.clone());
    let mut wrong_name = q.clone();
    wrong_name.feedback_type = "wandb.runnable.other".into();
    rule(
        wrong_name,
        "named \"other\"",
        Some("runnable_ref must point to an object with name other"),
    );
    let mut no_output = q.clone();
    no_output.payload = obj(json!({"score": 1}));
    rule(
        no_output,
        "needs a \"output\" key",
        Some("output\n  Field required"),
    );
    let mut bad_call_ref = q.clone();
    bad_call_ref.call_ref = Some(object.into());
    rule(bad_call_ref, "must be a call ref", Some("Invalid ref: "));
    create(q).unwrap();
    let mut on_object = create_req(&r, "wandb.runnable.scorer", json!({"output": 1}));
    on_object.runnable_ref = Some(object.into());
    create(on_object).unwrap();

    // Annotations: an annotation_ref (an object ref named like the type) and a value.
    let mut a = create_req(&r, "wandb.annotation.rating", json!({"value": 3}));
    assert_invalid(create(a.clone()), "annotation_ref is required");
    a.annotation_ref = Some("weave:///test-entity/test-project/object/other:abc".into());
    rule(
        a.clone(),
        "named \"rating\"",
        Some("annotation_ref must point to an object with name rating"),
    );
    a.annotation_ref = Some("weave:///test-entity/test-project/object/rating:abc".into());
    if s.is_reference() {
        // Reference server: validate_feedback_create_req reads the annotation spec the ref
        // names (refs_read_batch), and there is no such object.
        match create(a) {
            Err(WeaveError::NotFound { id, .. }) => assert_eq!(id, "Obj rating:abc not found"),
            other => panic!("{other:?}"),
        }
    } else {
        create(a).unwrap();
    }

    // The ref must be a well-formed ref of the project. Reference server: the weave_ref and
    // the project id are not checked (ref_server.py's B64IdConverter encodes any project).
    rule(
        create_req("not a ref", "custom", json!({})),
        "weave_ref",
        None,
    );
    rule(
        create_req("weave:///other/project/call/x", "custom", json!({})),
        "not in project",
        None,
    );
    let mut bad_project = create_req(&r, "custom", json!({}));
    bad_project.project_id = "no-slash".into();
    rule(bad_project, "entity/project", None);

    if s.is_reference() {
        // Reference server: "👍 nice", "wandb.whatever", "", the two runnable rows and the
        // two weave_refs it does not check (the "no-slash" row is in a project of its own).
        assert_eq!(all_rows(&s).len(), 7);
    } else {
        assert_eq!(
            all_rows(&s).len(),
            3,
            "only the valid runnable and annotation rows"
        );
    }
}

#[backends]
fn batches_are_all_or_nothing_and_keep_client_ids() {
    let s = TestStore::new();
    let call = a_call(&s);
    let r = call_ref(call.id());
    let mut good = create_req(&r, "wandb.note.1", json!({"note": "ok"}));
    good.id = Some(weave::generate_id());
    let bad = create_req(&r, "wandb.reaction.1", json!({"emoji": "no"}));
    assert_rule(
        &s,
        s.server.feedback_create_batch(FeedbackCreateBatchReq {
            batch: vec![good.clone(), bad],
        }),
        "batch item 1",
        // Reference server: all or nothing too, but the message does not say which item.
        Some("Value of emoji key in payload must be exactly one emoji"),
    );
    assert!(all_rows(&s).is_empty());

    let res = s
        .server
        .feedback_create_batch(FeedbackCreateBatchReq {
            batch: vec![
                good.clone(),
                create_req(&r, "wandb.reaction.1", json!({"emoji": "🎉"})),
            ],
        })
        .unwrap()
        .res;
    assert_eq!(res.len(), 2);
    assert_eq!(
        Some(&res[0].id),
        good.id.as_ref(),
        "a client-chosen id is kept"
    );
    assert_eq!(res[1].payload["alias"], ":party_popper:");
    if s.is_reference() {
        // Reference server: its feedback table has no key (TABLE_FEEDBACK in feedback.py,
        // created by SqliteTraceServer.setup_tables): a second row with the same id is stored.
        let again = s.server.feedback_create(good.clone()).unwrap();
        assert_eq!(Some(&again.id), good.id.as_ref());
        let rows = all_rows(&s);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows.iter().filter(|r| r["id"] == json!(good.id)).count(), 2);
    } else {
        assert_invalid(s.server.feedback_create(good), "already exists");
        assert_eq!(all_rows(&s).len(), 2);
    }
}

// ---------------------------------------------------------------------------------------------
// Purge and replace

#[backends]
fn purge_removes_only_the_named_feedback() {
    let s = TestStore::new();
    let call = a_call(&s);
    let fb = call.feedback();
    let a = fb.add_note("a").unwrap();
    let b = fb.add_note("b").unwrap();
    let c = fb.add_note("c").unwrap();
    let d = fb.add_reaction("👍").unwrap();
    assert_eq!(fb.len().unwrap(), 4);
    fb.purge(&b.id).unwrap();
    let left: Vec<String> = fb.execute().unwrap().into_iter().map(|f| f.id).collect();
    assert_eq!(left, [a.id.clone(), c.id.clone(), d.id.clone()]);

    s.client.purge_feedback([&a.id, &c.id]).unwrap();
    assert_eq!(fb.refresh().unwrap().len(), 1);
    s.client.purge_feedback_where(Query::by_id(&d.id)).unwrap();
    assert!(fb.refresh().unwrap().is_empty());
    // Purging what is gone is not an error.
    fb.purge(&a.id).unwrap();
}

#[backends]
fn the_backend_purges_by_id_only() {
    let s = TestStore::new();
    let call = a_call(&s);
    let fb = call.feedback();
    let a = fb.add_note("a").unwrap();
    let b = fb.add_note("b").unwrap();
    let purge = |q: Query| {
        s.server.feedback_purge(FeedbackPurgeReq {
            project_id: PROJECT.into(),
            query: q,
        })
    };
    // Reference server: its own wording (validate_feedback_purge_req in feedback.py; an $or
    // with a branch not on the id gets the generic MESSAGE_INVALID_PURGE of validation.py).
    let remote = "Can only purge feedback by specifying one or more feedback ids";
    for (q, remote) in [
        (
            Query::new(field("weave_ref").eq(call_ref(call.id()))),
            remote,
        ),
        (Query::new(field("id").in_([a.id.as_str()])), remote),
        (
            Query::new(
                field("id")
                    .eq(a.id.as_str())
                    .and(field("feedback_type").eq("wandb.note.1")),
            ),
            remote,
        ),
        (Query::new(field("id").gt("")), remote),
        (
            Query::new(field("id").eq(a.id.as_str()).or(field("creator").eq("x"))),
            "Can only purge by specifying one or more ids",
        ),
    ] {
        assert_rule(&s, purge(q), "only be purged by id", Some(remote));
    }
    assert_eq!(all_rows(&s).len(), 2, "nothing purged");
    // $or of $eq on id, as the wire has it.
    let q: Query = serde_json::from_value(json!({"$expr": {"$or": [
        {"$eq": [{"$getField": "id"}, {"$literal": a.id}]},
        {"$eq": [{"$getField": "id"}, {"$literal": b.id}]},
    ]}}))
    .unwrap();
    purge(q).unwrap();
    assert!(all_rows(&s).is_empty());
}

#[backends]
fn purge_is_scoped_to_the_project() {
    let s = TestStore::new();
    let call = a_call(&s);
    let id = call.feedback().add_note("mine").unwrap().id;
    let other = WeaveClient::new("other", "project", s.server.clone(), false).unwrap();
    other.purge_feedback([&id]).unwrap();
    assert_eq!(call.feedback().len().unwrap(), 1);
}

#[backends]
fn replace_swaps_a_row_for_a_new_one() {
    let s = TestStore::new();
    let call = a_call(&s);
    let r = call_ref(call.id());
    let old = call.feedback().add_note("first draft").unwrap();
    s.client.flush();
    let res = s
        .server
        .feedback_replace(FeedbackReplaceReq {
            create: create_req(&r, "wandb.note.1", json!({"note": "final"})),
            feedback_id: old.id.clone(),
        })
        .unwrap();
    assert_ne!(res.id, old.id, "a new row, with a new id");
    let rows = call.feedback().execute().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].id, res.id);
    assert_eq!(rows[0].note(), Some("final"));

    // A rejected replacement leaves the old row in place.
    assert_rule(
        &s,
        s.server.feedback_replace(FeedbackReplaceReq {
            create: create_req(&r, "wandb.note.1", json!({"note": ""})),
            feedback_id: res.id.clone(),
        }),
        "1 to 1024",
        Some("String should have at least 1 character"),
    );
    assert_eq!(call.feedback().execute().unwrap()[0].id, res.id);
}

// ---------------------------------------------------------------------------------------------
// get_feedback and /feedback/query

#[backends]
fn get_feedback_by_id_reaction_query_and_page() {
    let s = TestStore::new();
    let c1 = a_call(&s);
    let c2 = a_call(&s);
    let up1 = c1.feedback().add_reaction("👍").unwrap();
    let down = c1.feedback().add_reaction("👎").unwrap();
    let note = c2.feedback().add_note("hmm").unwrap();
    let up2 = c2.feedback().add_reaction("👍").unwrap();

    let ids =
        |q: weave::FeedbackQuery| -> Vec<String> { q.into_iter().map(|f| f.unwrap().id).collect() };
    assert_eq!(
        ids(s.client.get_feedback(up1.id.as_str())),
        [up1.id.as_str()]
    );
    assert_eq!(
        ids(s.client.get_feedback(down.id.clone())),
        [down.id.as_str()]
    );
    assert_eq!(
        ids(s.client.get_feedback("no-such-id")),
        Vec::<String>::new()
    );
    assert_eq!(
        ids(s.client.get_feedback(FeedbackFilter::new().reaction("👍"))),
        [up1.id.as_str(), up2.id.as_str()]
    );
    assert_eq!(
        ids(s.client.feedback(field("feedback_type").eq("wandb.note.1"))),
        [note.id.as_str()],
        "feedback() is get_feedback()"
    );
    assert_eq!(
        ids(s.client.get_feedback(
            FeedbackFilter::new()
                .query(field("weave_ref").eq(call_ref(c2.id())))
                .reaction("👍")
        )),
        [up2.id.as_str()],
        "a query and a reaction combine"
    );
    assert_eq!(
        ids(s
            .client
            .get_feedback(field("payload.alias").eq(":thumbs_down:"))),
        [down.id.as_str()],
        "payload paths are queryable"
    );
    let all = s.client.get_feedback(FeedbackFilter::new());
    assert_eq!(all.len().unwrap(), 4);
    assert_eq!(all.refs().unwrap(), [call_ref(c1.id()), call_ref(c2.id())]);
    assert_eq!(
        ids(s
            .client
            .get_feedback(FeedbackFilter::new().offset(1).limit(2))),
        [down.id.as_str(), note.id.as_str()]
    );
}

#[backends]
fn get_feedback_returns_100_by_default() {
    let s = TestStore::new();
    let call = a_call(&s);
    let r = call_ref(call.id());
    let batch = (0..105)
        .map(|i| create_req(&r, "wandb.note.1", json!({"note": format!("n{i}")})))
        .collect();
    s.server
        .feedback_create_batch(FeedbackCreateBatchReq { batch })
        .unwrap();
    assert_eq!(
        s.client.get_feedback(FeedbackFilter::new()).len().unwrap(),
        100
    );
    assert_eq!(
        s.client
            .get_feedback(FeedbackFilter::new().limit(1000))
            .len()
            .unwrap(),
        105
    );
    assert_eq!(
        call.feedback().len().unwrap(),
        105,
        "a ref's feedback is not limited"
    );
    let first = s
        .client
        .get_feedback(FeedbackFilter::new())
        .get(0)
        .unwrap()
        .unwrap();
    assert_eq!(first.note(), Some("n0"));
}

#[backends]
fn a_failing_query_yields_its_error() {
    let s = TestStore::new();
    let q = s.client.get_feedback(field("no_such_field").eq(1));
    let items: Vec<_> = q.iter().collect();
    assert_eq!(items.len(), 1);
    if s.is_reference() {
        // Reference server: a 400 "Unknown field: …" (SqliteTraceServer.feedback_query), an
        // invalid query as on the embedded store, with the server's own reason.
        assert!(
            matches!(&items[0], Err(WeaveError::InvalidQuery(m)) if m.contains("Unknown field: no_such_field")),
            "{items:?}"
        );
    } else {
        assert!(
            matches!(&items[0], Err(WeaveError::InvalidQuery(m)) if m.contains("no_such_field")),
            "{items:?}"
        );
    }
    assert!(q.len().is_err());
}

#[backends]
fn feedback_query_selects_fields_sorts_and_filters() {
    let s = TestStore::new();
    let call = a_call(&s);
    let fb = call.feedback();
    fb.add_note("a").unwrap();
    fb.add("nested", json!({"x": {"y": [10, 20]}})).unwrap();
    fb.add_note("b").unwrap();
    s.client.flush();

    let mut req = FeedbackQueryReq::new(PROJECT);
    req.fields = Some(vec![
        "feedback_type".into(),
        "payload.note".into(),
        "payload.x.y.1".into(),
    ]);
    req.sort_by = Some(vec![SortBy::desc("created_at")]);
    let rows = s.server.feedback_query(req).unwrap().result;
    assert_eq!(
        rows.into_iter().map(Value::Object).collect::<Vec<_>>(),
        vec![
            json!({"feedback_type": "wandb.note.1", "payload.note": "b", "payload.x.y.1": null}),
            json!({"feedback_type": "nested", "payload.note": null, "payload.x.y.1": 20}),
            json!({"feedback_type": "wandb.note.1", "payload.note": "a", "payload.x.y.1": null}),
        ]
    );

    let mut req = FeedbackQueryReq::new(PROJECT);
    req.query = Some(Query::new(field("payload.note").eq("a")));
    let rows = s.server.feedback_query(req).unwrap().result;
    assert_eq!(rows.len(), 1);
    let keys: Vec<&str> = rows[0].keys().map(String::as_str).collect();
    let columns = [
        "id",
        "project_id",
        "weave_ref",
        "wb_user_id",
        "creator",
        "created_at",
        "feedback_type",
        "payload",
        "annotation_ref",
        "runnable_ref",
        "call_ref",
        "trigger_ref",
    ];
    if s.is_reference() {
        // Reference server: weave 0.52's feedback table has newer columns after these.
        let mut all = columns.to_vec();
        all.extend(REF_EXTRA_FEEDBACK_COLUMNS);
        assert_eq!(keys, all, "every column by default");
    } else {
        assert_eq!(keys, columns, "every column by default");
    }

    let mut bad = FeedbackQueryReq::new(PROJECT);
    bad.fields = Some(vec!["nope".into()]);
    let e = s.server.feedback_query(bad).unwrap_err();
    if s.is_reference() {
        // Reference server: a 400 with its own reason (see a_failing_query_yields_its_error).
        assert!(
            matches!(&e, WeaveError::InvalidQuery(m) if m.contains("Unknown field: nope")),
            "{e}"
        );
    } else {
        assert!(
            matches!(&e, WeaveError::InvalidQuery(m) if m.contains("\"nope\"")),
            "{e}"
        );
    }
    let mut bad_sort = FeedbackQueryReq::new(PROJECT);
    bad_sort.sort_by = Some(vec![SortBy::asc("nope")]);
    assert!(s.server.feedback_query(bad_sort).is_err());
}

#[backends]
fn feedback_of_an_object_ref() {
    let s = TestStore::new();
    let r = "weave:///test-entity/test-project/object/dataset:abc";
    let fb = s.client.ref_feedback(r).unwrap();
    fb.add_reaction("🚀").unwrap();
    assert_eq!(fb.execute().unwrap()[0].weave_ref, r);
    assert_invalid(
        s.client.ref_feedback("weave:///other/project/object/x:abc"),
        "not in project",
    );
    assert_invalid(s.client.ref_feedback("dataset:abc"), "malformed ref");
}

// ---------------------------------------------------------------------------------------------
// include_feedback

#[backends]
fn include_feedback_fills_summary_weave_feedback() {
    let s = TestStore::new();
    let with = a_call(&s);
    let without = a_call(&s);
    let r = with.feedback().add_reaction("👍").unwrap();
    let n = with
        .feedback()
        .creator("Jane")
        .add_note("looks right")
        .unwrap();
    with.feedback()
        .add("correctness", json!({"value": 1}))
        .unwrap();

    let calls = crate::common::calls(&s.client, CallsQuery::new().include_feedback(true));
    assert_eq!(calls.len(), 2);
    let fb = |c: &Call| c.weave_summary().unwrap()["feedback"].clone();
    let got = fb(&calls[0]);
    let rows = got.as_array().unwrap();
    assert_eq!(rows.len(), 3);
    if s.is_reference() {
        // Reference server: the rows have its newer scorer_* columns too; `wb_user_id` is the
        // internal (base64) user id, which ExternalTraceServer does not convert back inside a
        // call's summary; `created_at` is the server's clock (the row the client returned has
        // the client's, see reactions_notes_and_custom_feedback_are_added_and_listed_oldest_first).
        let stored = with.feedback().execute().unwrap()[0].created_at;
        let expected = json!({
            "id": r.id,
            "feedback_type": "wandb.reaction.1",
            "weave_ref": call_ref(with.id()),
            "payload": {"emoji": "👍", "alias": ":thumbs_up:", "detoned": "👍", "detoned_alias": ":thumbs_up:"},
            "creator": null,
            "created_at": stored.to_string(),
            "wb_user_id": "cmVmLXVzZXItaWQ=",
            "runnable_ref": null,
            "call_ref": null,
            "trigger_ref": null,
            "annotation_ref": null,
            "scorer_tags": [],
            "scorer_tag_reasons": {},
            "scorer_tag_confidences": {},
            "scorer_ratings": {},
            "scorer_rating_reasons": {},
            "scorer_rating_confidences": {},
        });
        assert_eq!(rows[0], expected);
    } else {
        // Over HTTP the row the client returned has the client's clock; the stored row has
        // the server's.
        let created_at = if s.over_http() {
            with.feedback().execute().unwrap()[0].created_at
        } else {
            r.created_at
        };
        assert_eq!(
            rows[0],
            json!({
                "id": r.id,
                "feedback_type": "wandb.reaction.1",
                "weave_ref": call_ref(with.id()),
                "payload": {"emoji": "👍", "alias": ":thumbs_up:", "detoned": "👍", "detoned_alias": ":thumbs_up:"},
                "creator": null,
                "created_at": created_at.to_string(),
                "wb_user_id": "local",
                "runnable_ref": null,
                "call_ref": null,
                "trigger_ref": null,
                "annotation_ref": null,
            })
        );
    }
    assert_eq!(rows[1]["id"], n.id.as_str());
    assert_eq!(rows[1]["creator"], "Jane");
    assert_eq!(rows[2]["feedback_type"], "correctness");
    // The rows are Feedback values.
    let typed: Vec<Feedback> = serde_json::from_value(got.clone()).unwrap();
    assert_eq!(typed[1].note(), Some("looks right"));
    assert_eq!(
        fb(&calls[1]),
        json!([]),
        "a call without feedback has an empty list"
    );
    assert_eq!(calls[1].id(), without.id());

    // Without the flag there is no key; with restricted columns the summary is still filled.
    let plain = crate::common::calls(&s.client, CallsQuery::new());
    assert!(plain[0].weave_summary().unwrap().get("feedback").is_none());
    let narrow = crate::common::calls(
        &s.client,
        CallsQuery::new()
            .columns(["id"])
            .include_feedback(true)
            .limit(1),
    );
    assert_eq!(
        narrow[0].weave_summary().unwrap()["feedback"]
            .as_array()
            .unwrap()
            .len(),
        3
    );

    // Costs and feedback together.
    let both = crate::common::calls(
        &s.client,
        CallsQuery::new().include_feedback(true).include_costs(true),
    );
    assert_eq!(fb(&both[0]).as_array().unwrap().len(), 3);

    // Purged feedback leaves the summary.
    with.feedback().purge(&r.id).unwrap();
    let calls = crate::common::calls(&s.client, CallsQuery::new().include_feedback(true));
    assert_eq!(fb(&calls[0]).as_array().unwrap().len(), 2);
}

#[backends]
fn include_feedback_only_counts_the_calls_own_ref() {
    let s = TestStore::new();
    let parent = s.client.create_call("parent", json!({})).unwrap();
    let child = s.client.create_call("child", json!({})).unwrap();
    s.client.finish_call(&child, 1).unwrap();
    s.client.finish_call(&parent, 2).unwrap();
    child.feedback().add_note("child only").unwrap();
    let calls = crate::common::calls(&s.client, CallsQuery::new().include_feedback(true));
    let by_id = |id: &str| {
        calls
            .iter()
            .find(|c| c.id() == id)
            .unwrap()
            .weave_summary()
            .unwrap()["feedback"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(by_id(parent.id()), 0);
    assert_eq!(by_id(child.id()), 1);
}

#[backends]
fn feedback_on_a_deleted_call_stays_reachable_through_its_ref() {
    let s = TestStore::new();
    let call = a_call(&s);
    let kept = a_call(&s);
    call.feedback().add_note("before delete").unwrap();
    call.delete().unwrap();
    // As on the Weave server, feedback is about a ref and is neither deleted with the call
    // nor refused for it.
    call.feedback().add_reaction("👎").unwrap();
    assert_eq!(call.feedback().len().unwrap(), 2);
    let calls = crate::common::calls(&s.client, CallsQuery::new().include_feedback(true));
    assert_eq!(calls.len(), 1, "the deleted call drops out of queries");
    assert_eq!(calls[0].id(), kept.id());
    assert_eq!(calls[0].weave_summary().unwrap()["feedback"], json!([]));
    let id = call.feedback().get(0).unwrap().unwrap().id;
    call.feedback().purge(&id).unwrap();
    assert_eq!(call.feedback().len().unwrap(), 1);
}

#[backends]
fn feedback_is_written_after_the_call_is_stored() {
    let s = TestStore::new();
    let call = s.client.create_call("live", json!({})).unwrap();
    // The call's start is still queued; adding feedback flushes it first.
    call.feedback().add_note("while running").unwrap();
    let calls = crate::common::calls(&s.client, CallsQuery::new().include_feedback(true));
    assert_eq!(calls[0].id(), call.id());
    assert_eq!(
        calls[0].weave_summary().unwrap()["feedback"][0]["payload"]["note"],
        "while running"
    );
    s.client.finish_call(&call, 1).unwrap();
}

// ---------------------------------------------------------------------------------------------
// The recorded traffic of a real Weave server
// (tests/data/sample-traffic.jsonl: the Python client, weave 0.54.0, against the reference
// server, recorded by tests/support/python/record_sample_traffic.py).

fn sample_traffic() -> Vec<Value> {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sample-traffic.jsonl");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn parse<T: serde::de::DeserializeOwned>(what: &str, v: &Value) -> T {
    serde_json::from_value(v.clone())
        .unwrap_or_else(|e| panic!("{what} does not deserialise: {e}\n{v}"))
}

#[backends]
fn sample_traffic_feedback_bodies_deserialise() {
    let traffic = sample_traffic();
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    for ex in &traffic {
        let path = ex["path"].as_str().unwrap();
        let (req, res) = (&ex["request_body"], &ex["response_body"]);
        let ok = ex["status"] == 200;
        match path {
            "/feedback/batch/create" => {
                let q: FeedbackCreateBatchReq = parse(path, req);
                assert!(q
                    .batch
                    .iter()
                    .all(|f| f.id.is_some() && f.wb_user_id.is_none()));
                let r: FeedbackCreateBatchRes = parse(path, res);
                assert_eq!(r.res.len(), q.batch.len());
                assert_eq!(r.res[0].payload["alias"], ":thumbs_up:");
            }
            "/feedback/create" => {
                let _: FeedbackCreateReq = parse(path, req);
                let _: FeedbackCreateRes = parse(path, res);
            }
            "/feedback/query" => {
                let q: FeedbackQueryReq = parse(path, req);
                assert_eq!(q.sort_by, Some(vec![SortBy::asc("created_at")]));
                let r: FeedbackQueryRes = parse(path, res);
                for row in &r.result {
                    // created_at is "2026-11-24 12:30:28.744025+00:00" here.
                    let f: Feedback = parse(path, &Value::Object(row.clone()));
                    assert_eq!(f.project_id, q.project_id);
                    assert!(f.created_at > Timestamp::from_nanos(0));
                }
                assert_eq!(r.result.len(), 3);
            }
            "/feedback/purge" => {
                let q: FeedbackPurgeReq = parse(path, req);
                assert!(q.query.ids_only(false).is_some());
            }
            "/calls/stream_query" if ok && req["include_feedback"] == true => {
                for call in res["jsonl"].as_array().unwrap() {
                    let rows = &call["summary"]["weave"]["feedback"];
                    let rows: Vec<Feedback> = parse("summary.weave.feedback", rows);
                    for f in rows {
                        assert!(f.weave_ref.ends_with(call["id"].as_str().unwrap()));
                    }
                }
            }
            _ => continue,
        }
        *seen.entry(path.to_string()).or_default() += 1;
    }
    for p in [
        "/feedback/batch/create",
        "/feedback/create",
        "/feedback/query",
        "/feedback/purge",
        "/calls/stream_query",
    ] {
        assert!(
            seen.contains_key(p),
            "no {p} exchange in the sample traffic: {seen:?}"
        );
    }
}

#[backends]
fn sample_traffic_feedback_replays_to_the_same_payloads() {
    let traffic = sample_traffic();
    let ex = traffic
        .iter()
        .find(|e| e["path"] == "/feedback/batch/create")
        .expect("a batch create");
    let req: FeedbackCreateBatchReq = parse("batch", &ex["request_body"]);
    let theirs: FeedbackCreateBatchRes = parse("batch", &ex["response_body"]);
    let server = SqliteServer::in_memory().unwrap();
    let ours = server.feedback_create_batch(req.clone()).unwrap();
    for (o, t) in ours.res.iter().zip(&theirs.res) {
        assert_eq!(o.id, t.id);
        assert_eq!(o.payload, t.payload);
    }
    // And the query the client then sends finds them, in order.
    let q = traffic
        .iter()
        .find(|e| e["path"] == "/feedback/query")
        .unwrap();
    let q: FeedbackQueryReq = parse("query", &q["request_body"]);
    let rows = server.feedback_query(q).unwrap().result;
    let ids: Vec<&str> = rows.iter().map(|r| r["id"].as_str().unwrap()).collect();
    let want: Vec<&str> = req.batch.iter().map(|f| f.id.as_deref().unwrap()).collect();
    assert_eq!(ids, want);
}

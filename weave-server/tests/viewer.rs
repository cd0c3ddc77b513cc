//! The trace viewer, used as a person uses it: a real `weave serve` on a real store, and
//! headless Chromium opening the links the SDK prints, expanding the tree, selecting the
//! failed call, reacting and writing a note, filtering the calls table. What the page shows
//! is read from its DOM; what it writes is read back from the store.

mod support;

use std::path::Path;

use serde_json::{json, Value};
use support::browser::Browser;
use support::Served;
use weave_core::{CallOptions, WeaveClient};

/// The shared agent run: its client, the failed call's id, the root's link.
fn agent_run(db: &Path, url: &str) -> (WeaveClient, String, String) {
    let run = support::agent_run(db, url);
    (run.client, run.failed_id, run.root_link)
}

#[test]
fn the_printed_link_opens_the_trace_and_feedback_from_the_page_is_stored() {
    let Some(mut b) = Browser::launch("viewer trace page") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("weave.sqlite");
    let s = Served::start(&db, &[]);
    let (client, failed, link) = agent_run(&db, &s.url);
    assert!(link.starts_with(&s.url), "{link}");

    // The link the SDK printed: the trace's tree, the root selected.
    b.goto(&link);
    assert_eq!(
        b.wait_for("document.querySelectorAll('#tree .node').length"),
        4
    );
    let names =
        b.eval("[...document.querySelectorAll('#tree .node .name')].map(n => n.textContent)");
    assert_eq!(
        names,
        json!(["agent", "chat", "get_weather", "get_weather"])
    );
    assert_eq!(
        b.eval("document.querySelector('#tree .node.selected .name').textContent"),
        "agent"
    );
    assert_eq!(
        b.eval("document.querySelector('#tree .node[data-status=error]').dataset.id"),
        Value::from(failed.clone())
    );
    // Waterfall bars: the failed call's is marked as an error.
    assert_eq!(
        b.eval("document.querySelector('#tree .node[data-status=error] .bar').classList.contains('status-error')"),
        true
    );

    // Collapse the root: only it is left; expand it again.
    b.click("#tree .node .toggle");
    assert_eq!(
        b.wait_for("document.querySelectorAll('#tree .node').length === 1"),
        true
    );
    b.click("#tree .node .toggle");
    assert_eq!(
        b.wait_for("document.querySelectorAll('#tree .node').length"),
        4
    );

    // Select the failed call: its exception, the traceback as Python prints it.
    b.click("#tree .node[data-status=error]");
    let exc = b.wait_for("document.querySelector('#detail pre.exception')?.textContent");
    let exc = exc.as_str().unwrap();
    assert!(
        exc.starts_with("Traceback (most recent call last):"),
        "{exc}"
    );
    assert!(
        exc.contains("File \"tools.py\", line 7, in get_weather"),
        "{exc}"
    );
    assert!(
        exc.ends_with("TimeoutError: the weather service did not answer"),
        "{exc}"
    );
    assert!(b
        .eval("location.pathname")
        .as_str()
        .unwrap()
        .ends_with(&failed));

    // React and write a note from the page; both are in the store.
    b.click("#feedback button.react[data-emoji='👎']");
    b.wait_for("document.querySelector(\"#reactions .reaction[data-emoji='👎']\")");
    b.eval("document.querySelector('#note-text').value = 'flaky upstream'");
    b.click("#add-note");
    b.wait_for("[...document.querySelectorAll('#notes li')].some(li => li.textContent.includes('flaky upstream'))");
    let call_ref = format!("weave:///acme/agents/call/{failed}");
    let kinds: Vec<(String, Value)> = client
        .get_feedback(weave_core::FeedbackFilter::new().limit(100))
        .execute()
        .unwrap()
        .into_iter()
        .filter(|f| f.weave_ref == call_ref)
        .map(|f| (f.feedback_type.clone(), Value::Object(f.payload.clone())))
        .collect();
    assert!(
        kinds
            .iter()
            .any(|(t, p)| t == "wandb.reaction.1" && p["emoji"] == "👎"),
        "{kinds:?}"
    );
    assert!(
        kinds
            .iter()
            .any(|(t, p)| t == "wandb.note.1" && p["note"] == "flaky upstream"),
        "{kinds:?}"
    );

    // A long input is cut, with a way to see it all.
    b.click("#tree .node:nth-of-type(3)");
    b.wait_for("document.querySelector('#detail h2')?.textContent === 'chat'");
    let shown = b.eval("document.querySelector('#detail .j-str').textContent.length");
    assert!(shown.as_u64().unwrap() < 400, "{shown}");
    b.click("#detail .j-more");
    let all = b.wait_for("document.querySelector('#detail .j-str').textContent.length > 2000");
    assert_eq!(all, true);

    // The README's picture of the trace page, taken here.
    b.click("#tree .node[data-status=error]");
    b.wait_for("document.querySelector('#detail pre.exception')");
    let png = b.screenshot();
    assert!(png.starts_with(b"\x89PNG"));
    if std::env::var_os("WEAVE_UPDATE_SCREENSHOT").is_some() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/viewer-trace.png");
        std::fs::write(&path, &png).unwrap();
        eprintln!("wrote {}", path.display());
    }
}

#[test]
fn the_calls_table_filters_pages_and_shows_new_calls() {
    let Some(mut b) = Browser::launch("viewer calls page") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("weave.sqlite");
    let s = Served::start(&db, &[]);
    let (client, failed, _) = agent_run(&db, &s.url);
    for i in 0..60 {
        let c = client
            .create_call_with("step", json!({"i": i}), CallOptions::new().use_stack(false))
            .unwrap();
        client.finish_call(&c, i).unwrap();
    }
    client.flush();

    // The projects page lists the project with its count.
    b.goto(&format!("{}/", s.url));
    let row = b.wait_for("document.querySelector('#projects tbody tr')?.innerText");
    assert!(
        row.as_str().unwrap().contains("acme/agents") && row.as_str().unwrap().contains("64"),
        "{row}"
    );

    b.goto(&format!("{}/acme/agents/weave", s.url));
    assert_eq!(
        b.wait_for("document.querySelectorAll('#calls tbody tr').length"),
        50
    );
    assert_eq!(
        b.wait_for("document.querySelector('#count').textContent"),
        "64 calls"
    );
    // The next page: the 14 oldest; and back.
    b.click("#older");
    b.wait_for("document.querySelectorAll('#calls tbody tr').length === 14");
    b.click("#newer");
    b.wait_for("document.querySelectorAll('#calls tbody tr').length === 50");

    // Filter by status from the page: only the failed call.
    b.eval("const s = document.querySelector('#filters select[name=status]'); s.value = 'error'; s.dispatchEvent(new Event('change'))");
    b.wait_for("document.querySelectorAll('#calls tbody tr').length === 1");
    assert_eq!(
        b.eval("document.querySelector('#calls tbody tr').dataset.id"),
        Value::from(failed)
    );
    assert!(b
        .eval("location.search")
        .as_str()
        .unwrap()
        .contains("status=error"));

    // Search inputs and outputs, roots only.
    b.goto(&format!("{}/acme/agents/weave?q=paris&roots=1", s.url));
    b.wait_for("document.querySelectorAll('#calls tbody tr').length === 1");
    let op = b.eval("document.querySelector('#calls tbody tr td:nth-child(2)').textContent");
    assert_eq!(op, "agent");

    // A time range typed in (UTC): from the agent run's start to just after it.
    let calls = client
        .get_calls(weave_core::CallsQuery::new())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let root = calls.iter().find(|c| c.func_name() == "agent").unwrap();
    let first_step = calls
        .iter()
        .filter(|c| c.func_name() == "step")
        .map(|c| c.started_at())
        .min()
        .unwrap();
    let utc =
        |t: weave_core::Timestamp| t.to_datetime().format("%Y-%m-%dT%H:%M:%S%.3f").to_string();
    let before_steps = weave_core::Timestamp::from_nanos(first_step.as_nanos() - 1_000_000);
    b.goto(&format!(
        "{}/acme/agents/weave?from={}&to={}",
        s.url,
        utc(root.started_at()),
        utc(before_steps)
    ));
    b.wait_for("document.querySelectorAll('#calls tbody tr[data-id]').length === 4");

    // New calls appear while the page is open.
    b.goto(&format!("{}/acme/agents/weave?op=late", s.url));
    b.wait_for("document.querySelector('#calls tbody')?.textContent.includes('No calls match')");
    let c = client
        .create_call_with("late", json!({"n": 1}), CallOptions::new().use_stack(false))
        .unwrap();
    client.finish_call(&c, 1).unwrap();
    client.flush();
    b.wait_for(&format!(
        "document.querySelector('#calls tbody tr[data-id=\"{}\"]')",
        c.id()
    ));
}

#[test]
fn objects_and_datasets_show_their_versions_and_rows() {
    let Some(mut b) = Browser::launch("viewer objects") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("weave.sqlite");
    let s = Served::start(&db, &[]);
    let (client, _, _) = agent_run(&db, &s.url);
    client.save(&json!({"temperature": 0.2}), "config").unwrap();
    let v2 = client.save(&json!({"temperature": 0.7}), "config").unwrap();
    let rows: Vec<Value> = (0..130)
        .map(|i| json!({"q": format!("question {i}"), "a": i}))
        .collect();
    let ds = client.save_dataset("qa", rows).unwrap();
    let page = |r: &weave_core::refs::ObjectRef| {
        format!(
            "{}/acme/agents/weave/objects/{}/versions/{}",
            s.url, r.name, r.digest
        )
    };

    b.goto(&format!("{}/acme/agents/weave/objects", s.url));
    let names = b.wait_for("[...document.querySelectorAll('#objects tbody tr td:first-child')].map(t => t.textContent)");
    assert!(
        names.as_array().unwrap().contains(&json!("config")),
        "{names}"
    );
    assert!(names.as_array().unwrap().contains(&json!("qa")), "{names}");

    b.goto(&page(&v2));
    let text = b.wait_for("document.querySelector('main').innerText");
    let text = text.as_str().unwrap();
    assert!(
        text.contains("0.7") && text.contains("v1") && text.contains("v0"),
        "{text}"
    );

    b.goto(&page(&ds));
    assert_eq!(
        b.wait_for("document.querySelectorAll('#dataset tbody tr').length"),
        100
    );
    let first = b.eval("document.querySelector('#dataset tbody tr').innerText");
    assert!(first.as_str().unwrap().contains("question 0"), "{first}");
    b.click("#dataset .pager button:last-child");
    assert_eq!(
        b.wait_for("document.querySelectorAll('#dataset tbody tr').length === 30"),
        true
    );
}

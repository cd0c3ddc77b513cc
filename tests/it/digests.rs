//! Digests and refs match the real Python package byte for byte
//! (`tests/data/digest-vectors.json`, computed by `weave` itself: see
//! `tests/support/python/gen_digest_vectors.py`).

use serde_json::Value;
use weave::digest::{
    bytes_digest, canonical_json, file_digest, object_digest, row_digest, table_digest,
};
use weave::refs::Ref;
use weave_testkit::backends;

fn vectors() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/digest-vectors.json"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    serde_json::from_str(&text).expect("vectors are JSON")
}

#[backends]
fn object_digests_match_python() {
    let v = vectors();
    let objects = v["objects"].as_array().unwrap();
    assert!(
        objects.len() >= 30,
        "expected the full vector set, got {}",
        objects.len()
    );
    let mut wrong = Vec::new();
    for o in objects {
        let got = object_digest(&o["val"]);
        if got != o["digest"].as_str().unwrap() {
            wrong.push(format!(
                "{} -> {} (canonical {})",
                o["val"],
                got,
                canonical_json(&o["val"])
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} differ:\n{}",
        wrong.len(),
        objects.len(),
        wrong.join("\n")
    );
}

#[backends]
fn table_and_row_digests_match_python() {
    let v = vectors();
    for t in v["tables"].as_array().unwrap() {
        let rows = t["rows"].as_array().unwrap();
        let digests: Vec<String> = rows.iter().map(row_digest).collect();
        let expected: Vec<&str> = t["row_digests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_str().unwrap())
            .collect();
        assert_eq!(digests, expected);
        assert_eq!(table_digest(&digests), t["table_digest"].as_str().unwrap());
    }
}

#[backends]
fn file_digests_match_python() {
    let v = vectors();
    for f in v["files"].as_array().unwrap() {
        let content = f["content_utf8"].as_str().unwrap();
        assert_eq!(
            file_digest(content.as_bytes()),
            f["digest"].as_str().unwrap(),
            "{content:?}"
        );
    }
    let d = bytes_digest(b"anything");
    assert_eq!(d.len(), 43);
    assert!(d.chars().all(|c| c.is_ascii_alphanumeric()));
}

#[backends]
fn refs_parse_and_format_like_python() {
    let v = vectors();
    for r in v["refs"].as_array().unwrap() {
        let uri = r["uri"].as_str().unwrap();
        let parsed: Ref = uri.parse().unwrap_or_else(|e| panic!("{uri}: {e}"));
        let kind = match &parsed {
            Ref::Object(o) if o.kind == weave::refs::ObjectKind::Op => "OpRef",
            Ref::Object(_) => "ObjectRef",
            Ref::Table { .. } => "TableRef",
            Ref::Call(_) => "CallRef",
        };
        assert_eq!(kind, r["kind"].as_str().unwrap(), "{uri}");
        assert_eq!(parsed.to_string(), uri);
    }
}

#[backends]
fn floats_round_trip_through_the_store_exactly() {
    let s = crate::common::TestStore::new();
    let xs = [
        0.15696529448667917,
        1.4168064702669491e-08,
        0.1 + 0.2,
        5e-324,
        f64::MAX,
        -0.0,
    ];
    let call = crate::common::record(
        &s.client,
        "op",
        serde_json::json!({ "xs": xs }),
        serde_json::json!(xs),
    );
    let back = s.client.get_call(call.id()).unwrap();
    let read: Vec<f64> = serde_json::from_value(back.inputs()["xs"].clone()).unwrap();
    for (a, b) in xs.iter().zip(&read) {
        assert_eq!(a.to_bits(), b.to_bits(), "{a:e} came back as {b:e}");
    }
    let out: Vec<f64> = serde_json::from_value(back.output()).unwrap();
    assert_eq!(
        out.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
        xs.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
    );
}

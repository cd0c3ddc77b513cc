//! `postprocess_inputs` / `postprocess_output` change what is recorded, never what the
//! function receives or returns; keys named like secrets (api_key, …) are redacted by default.

use serde::Serialize;
use serde_json::{json, Value};
use weave::{JsonMap, REDACTED_VALUE};

use crate::common::{current_thread_rt, TestStore};

fn hide_password(mut inputs: JsonMap) -> JsonMap {
    if inputs.contains_key("password") {
        inputs.insert("password".into(), json!("***"));
    }
    inputs.remove("session");
    inputs
}

#[weave::op(postprocess_inputs = hide_password)]
fn login(user: &str, password: &str, session: u64) -> String {
    // The function sees the real values.
    format!("{user}:{}:{session}", password.len())
}

#[test]
fn postprocess_inputs_changes_what_is_recorded_not_what_the_function_gets() {
    let s = TestStore::new();
    let r = s.under_root(|| login("ada", "hunter2", 77));
    assert_eq!(r.out, "ada:7:77");
    let c = r.only_child();
    assert_eq!(
        Value::Object(c.inputs().clone()),
        json!({"user": "ada", "password": "***"})
    );
}

mod post {
    use serde_json::{json, Value};

    pub fn summarize(output: Value) -> Value {
        let n = output["items"].as_array().map_or(0, Vec::len);
        json!({"item_count": n})
    }
}

#[derive(Serialize, Debug, PartialEq)]
struct Listing {
    items: Vec<String>,
}

#[weave::op(postprocess_output = post::summarize)]
fn list_files(dir: &str) -> Listing {
    Listing {
        items: vec![format!("{dir}/a"), format!("{dir}/b")],
    }
}

#[test]
fn postprocess_output_changes_what_is_recorded_not_what_the_caller_gets() {
    let s = TestStore::new();
    let r = s.under_root(|| list_files("/tmp"));
    assert_eq!(
        r.out,
        Listing {
            items: vec!["/tmp/a".into(), "/tmp/b".into()]
        }
    );
    let c = r.only_child();
    assert_eq!(c.output(), json!({"item_count": 2}));
    assert_eq!(c.inputs()["dir"], "/tmp");
}

fn drop_text(mut output: Value) -> Value {
    if let Some(m) = output.as_object_mut() {
        m.remove("text");
    }
    output
}

#[weave::op(postprocess_output = drop_text, postprocess_inputs = hide_password)]
async fn llm(prompt: String, password: String) -> Result<Value, String> {
    tokio::task::yield_now().await;
    if prompt.is_empty() {
        return Err(format!("empty prompt (password {} chars)", password.len()));
    }
    Ok(json!({
        "model": "gpt-4o",
        "text": format!("echo {prompt}"),
        "usage": {"prompt_tokens": 3, "completion_tokens": 2},
    }))
}

#[test]
fn postprocessing_applies_to_async_ops_and_to_ok_values() {
    let s = TestStore::new();
    let r = current_thread_rt().block_on(s.under_root_async(async {
        (
            llm("hi".into(), "pw".into()).await,
            llm("".into(), "pw".into()).await,
        )
    }));
    assert_eq!(r.out.0.as_ref().unwrap()["text"], "echo hi");
    assert_eq!(r.out.1, Err("empty prompt (password 2 chars)".to_string()));
    let [ok, err] = &r.children[..] else {
        panic!("expected 2 children, got {:?}", r.children)
    };
    assert_eq!(ok.inputs()["password"], "***");
    assert_eq!(
        ok.output(),
        json!({"model": "gpt-4o", "usage": {"prompt_tokens": 3, "completion_tokens": 2}})
    );
    // Usage is read from the output as returned.
    assert_eq!(ok.usage()["gpt-4o"]["prompt_tokens"], 3);
    assert_eq!(err.inputs()["password"], "***");
    assert_eq!(
        err.exception_info().unwrap().message,
        "empty prompt (password 2 chars)"
    );
}

#[derive(Serialize)]
struct ProviderConfig {
    model: String,
    api_key: String,
    headers: Vec<(String, String)>,
    #[serde(rename = "Authorization")]
    authorization: String,
}

#[weave::op]
fn chat(api_key: &str, config: ProviderConfig, prompt: &str) -> String {
    format!(
        "{prompt} via {} with a {}-char key and {}",
        config.model,
        api_key.len(),
        config.authorization
    )
}

#[test]
fn api_keys_are_redacted_by_default_at_any_depth() {
    let s = TestStore::new();
    let r = s.under_root(|| {
        chat(
            "sk-secret",
            ProviderConfig {
                model: "gpt-4o".into(),
                api_key: "sk-nested".into(),
                headers: vec![("x".into(), "y".into())],
                authorization: "Bearer abc".into(),
            },
            "hello",
        )
    });
    // The function got the real key.
    assert_eq!(r.out, "hello via gpt-4o with a 9-char key and Bearer abc");
    let c = r.only_child();
    assert_eq!(c.inputs()["api_key"], REDACTED_VALUE);
    assert_eq!(c.inputs()["config"]["api_key"], REDACTED_VALUE);
    assert_eq!(c.inputs()["config"]["Authorization"], REDACTED_VALUE);
    assert_eq!(c.inputs()["config"]["model"], "gpt-4o");
    assert_eq!(c.inputs()["prompt"], "hello");
    let stored = Value::Object(c.inputs().clone()).to_string();
    assert!(!stored.contains("sk-secret") && !stored.contains("sk-nested"));
    assert!(!stored.contains("Bearer abc"));
}

/// How a request authenticates: an enum whose variants serde names like secrets.
#[derive(Serialize)]
enum Auth {
    #[serde(rename = "api_key")]
    Key(String),
    #[serde(rename = "authorization")]
    Header {
        scheme: String,
        token: String,
    },
    #[serde(rename = "AUTH_HEADERS")]
    Pairs(String, String),
    Anonymous,
}

#[weave::op]
fn request(
    headers: std::collections::BTreeMap<String, String>,
    auths: Vec<Auth>,
    nested: Vec<std::collections::HashMap<&'static str, Value>>,
) -> usize {
    headers.len() + auths.len() + nested.len()
}

#[test]
fn secrets_are_redacted_under_map_keys_and_enum_variants_named_like_secrets() {
    let s = TestStore::new();
    let headers = [
        ("Authorization", "Bearer map-secret"),
        ("content-type", "application/json"),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .into();
    let auths = vec![
        Auth::Key("variant-secret-1".into()),
        Auth::Header {
            scheme: "Bearer".into(),
            token: "variant-secret-2".into(),
        },
        Auth::Pairs("x".into(), "variant-secret-3".into()),
        Auth::Anonymous,
    ];
    let nested = vec![[("API_KEY", json!({"deep": "value-secret"}))].into()];
    let r = s.under_root(|| request(headers, auths, nested));
    assert_eq!(r.out, 2 + 4 + 1);
    let c = r.only_child();
    let inputs = c.inputs();
    assert_eq!(inputs["headers"]["Authorization"], REDACTED_VALUE);
    assert_eq!(inputs["headers"]["content-type"], "application/json");
    assert_eq!(
        inputs["auths"],
        json!([
            {"api_key": REDACTED_VALUE},
            {"authorization": REDACTED_VALUE},
            {"AUTH_HEADERS": REDACTED_VALUE},
            "Anonymous"
        ])
    );
    assert_eq!(inputs["nested"][0]["API_KEY"], REDACTED_VALUE);
    let stored = Value::Object(inputs.clone()).to_string();
    assert!(!stored.contains("secret"), "{stored}");
}

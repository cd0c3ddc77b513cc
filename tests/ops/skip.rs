//! `skip(..)`: skipped arguments are absent from the recorded inputs, the others present,
//! and the function still gets them.

use serde::Serialize;
use serde_json::{json, Value};

use crate::common::{current_thread_rt, TestStore};

/// A handle that should never be recorded (and cannot be: no Serialize, no Debug).
struct HttpClient {
    base: String,
}

#[weave::op(skip(http))]
fn search(http: &HttpClient, query: &str, limit: u32) -> String {
    format!("{}/search?q={query}&n={limit}", http.base)
}

#[test]
fn a_skipped_argument_is_absent_and_the_others_present() {
    let s = TestStore::new();
    let http = HttpClient {
        base: "https://api".into(),
    };
    let r = s.under_root(|| search(&http, "rust", 3));
    assert_eq!(r.out, "https://api/search?q=rust&n=3");
    let c = r.only_child();
    assert_eq!(
        Value::Object(c.inputs().clone()),
        json!({"query": "rust", "limit": 3})
    );
}

#[weave::op(skip(token, scratch))]
fn call_api(token: String, endpoint: &str, scratch: Vec<u8>) -> usize {
    token.len() + endpoint.len() + scratch.len()
}

#[test]
fn several_arguments_can_be_skipped() {
    let s = TestStore::new();
    let r = s.under_root(|| call_api("secret-token".into(), "/v1", vec![0; 4]));
    assert_eq!(r.out, 12 + 3 + 4);
    let c = r.only_child();
    assert_eq!(
        Value::Object(c.inputs().clone()),
        json!({"endpoint": "/v1"})
    );
    assert!(!c.inputs().contains_key("token"));
}

#[derive(Serialize)]
struct Agent {
    name: String,
    big_state: Vec<u64>,
}

impl Agent {
    #[weave::op(skip(self))]
    fn step(&self, observation: &str) -> String {
        format!("{} saw {observation}", self.name)
    }

    #[weave::op]
    fn step_with_self(&self, observation: &str) -> String {
        format!("{} saw {observation}", self.name)
    }

    #[weave::op(skip(self))]
    async fn act(&mut self, action: u64) -> usize {
        tokio::task::yield_now().await;
        self.big_state.push(action);
        self.big_state.len()
    }
}

#[test]
fn skip_self_leaves_only_the_other_arguments() {
    let s = TestStore::new();
    let mut agent = Agent {
        name: "bond".into(),
        big_state: vec![1, 2, 3],
    };
    let r = s.under_root(|| (agent.step("a door"), agent.step_with_self("a key")));
    assert_eq!(r.out.0, "bond saw a door");
    let [skipped, kept] = &r.children[..] else {
        panic!("expected 2 children, got {:?}", r.children)
    };
    assert_eq!(
        Value::Object(skipped.inputs().clone()),
        json!({"observation": "a door"})
    );
    // Without skip, self is there.
    assert_eq!(
        kept.inputs()["self"],
        json!({"name": "bond", "big_state": [1, 2, 3]})
    );

    let r = current_thread_rt().block_on(s.under_root_async(agent.act(9)));
    assert_eq!(r.out, 4);
    assert_eq!(
        Value::Object(r.only_child().inputs().clone()),
        json!({"action": 9})
    );
}

#[weave::op(skip(b))]
fn pair((a, b): (u32, u32)) -> u32 {
    a + b
}

#[test]
fn a_name_bound_by_a_pattern_can_be_skipped() {
    let s = TestStore::new();
    let r = s.under_root(|| pair((1, 2)));
    assert_eq!(r.out, 3);
    assert_eq!(
        Value::Object(r.only_child().inputs().clone()),
        json!({"a": 1})
    );
}

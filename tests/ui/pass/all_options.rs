// Every option at once, in both display_name forms; and each option alone.

use serde_json::Value;
use weave::{Call, JsonMap};

fn redact(mut inputs: JsonMap) -> JsonMap {
    inputs.remove("secret");
    inputs
}

fn shorten(output: Value) -> Value {
    output
}

fn title(call: &Call) -> String {
    format!("run {}", call.id())
}

mod naming {
    pub fn title(_: &weave::Call) -> String {
        "from a module".to_string()
    }
}

struct Agent;

impl Agent {
    #[weave::op(
        name = "agent_step",
        skip(secret, self),
        display_name = "Agent step",
        postprocess_inputs = redact,
        postprocess_output = shorten,
        sample_rate = 0.5,
        kind = "llm"
    )]
    fn step(&self, prompt: &str, secret: &str) -> String {
        format!("{prompt}{}", secret.len())
    }

    #[weave::op(
        kind = "agent",
        sample_rate = 1,
        postprocess_output = crate::shorten,
        postprocess_inputs = self::redact,
        display_name = title,
        skip(self, secret),
        name = "agent_step_2",
    )]
    async fn step_async(&self, prompt: String, secret: String) -> String {
        format!("{prompt}{secret}")
    }
}

#[weave::op(name = "named")]
fn a() {}

#[weave::op(skip(x))]
fn b(x: u8, y: u8) -> u8 {
    x + y
}

#[weave::op(display_name = "fixed")]
fn c() {}

#[weave::op(display_name = naming::title)]
fn d() {}

#[weave::op(postprocess_inputs = redact)]
fn e(secret: &str) -> usize {
    secret.len()
}

#[weave::op(postprocess_output = shorten)]
fn f() -> u8 {
    1
}

#[weave::op(sample_rate = 0.0)]
fn g() {}

#[weave::op(sample_rate = 1.0)]
fn h() {}

#[weave::op(kind = "agent")]
fn k1() {}
#[weave::op(kind = "llm")]
fn k2() {}
#[weave::op(kind = "tool")]
fn k3() {}
#[weave::op(kind = "search")]
fn k4() {}
#[weave::op(kind = "guardrail")]
fn k5() {}
#[weave::op(kind = "scorer")]
fn k6() {}

#[weave::op()]
fn empty_parens() {}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(Agent.step("p", "abc"), "p3");
    assert_eq!(Agent.step_async("p".into(), "s".into()).await, "ps");
    a();
    assert_eq!(b(1, 2), 3);
    c();
    d();
    assert_eq!(e("xy"), 2);
    assert_eq!(f(), 1);
    g();
    h();
    k1();
    k2();
    k3();
    k4();
    k5();
    k6();
    empty_parens();
}

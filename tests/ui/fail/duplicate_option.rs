#[weave::op(name = "a", kind = "llm", name = "b")]
fn f() {}

fn main() {}

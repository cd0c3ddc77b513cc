#[weave::op(postprocess_inputs = "string")]
fn f() {}

fn main() {}

#[weave::op(sample_rate = "x")]
fn f() {}

fn main() {}

#[weave::op(sample_rate = 1.5)]
fn f() {}

fn main() {}

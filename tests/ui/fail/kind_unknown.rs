#[weave::op(kind = "banana")]
fn f() {}

fn main() {}

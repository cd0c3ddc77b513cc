#[weave::op(name = "")]
fn f() {}

fn main() {}

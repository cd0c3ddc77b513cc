#[weave::op(nme = "x")]
fn f() {}

fn main() {}

#[weave::op(skip())]
fn f(a: u8) {}

fn main() {}

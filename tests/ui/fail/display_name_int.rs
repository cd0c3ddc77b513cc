#[weave::op(display_name = 42)]
fn f() {}

fn main() {}

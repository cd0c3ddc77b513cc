#[weave::op(skip(a, nope))]
fn f(a: u8, b: u8) -> u8 {
    a + b
}

fn main() {}

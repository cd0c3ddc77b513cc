#[weave::op]
struct NotAFunction {
    x: u8,
}

fn main() {}

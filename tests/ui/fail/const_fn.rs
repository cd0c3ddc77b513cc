#[weave::op]
const fn f() -> u8 {
    1
}

fn main() {}

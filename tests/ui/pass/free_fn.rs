// A plain free function, with the attribute spelled `#[weave::op]` and, imported, `#[op]`.

use weave::op;

#[weave::op]
fn add(a: i32, b: i32) -> i32 {
    a + b
}

#[op]
pub fn greet(name: &str) -> String {
    format!("hello {name}")
}

fn main() {
    assert_eq!(add(2, 3), 5);
    assert_eq!(greet("ada"), "hello ada");
}

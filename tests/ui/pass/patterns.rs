// Destructured argument patterns, wildcards and raw identifiers.

struct Point {
    x: i32,
    y: i32,
}

#[weave::op]
fn sum((a, b): (i32, i32), Point { x, y }: Point, _: u8, [first, ..]: [u8; 2]) -> i32 {
    a + b + x + y + i32::from(first)
}

#[weave::op]
fn raw(r#type: &str) -> usize {
    r#type.len()
}

#[weave::op(skip(r#type))]
fn raw_skipped(r#type: &str) -> usize {
    r#type.len()
}

#[weave::op]
fn mutable(mut n: u32) -> u32 {
    n += 1;
    n
}

fn main() {
    assert_eq!(sum((1, 2), Point { x: 3, y: 4 }, 0, [5, 6]), 15);
    assert_eq!(raw("ab"), 2);
    assert_eq!(raw_skipped("ab"), 2);
    assert_eq!(mutable(1), 2);
}

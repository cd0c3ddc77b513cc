// `impl Trait` in argument and return position, sync and async.

use std::fmt::Display;

#[weave::op]
fn describe(x: impl Display) -> impl Display {
    format!("<{x}>")
}

#[weave::op]
fn evens(limit: u32) -> impl Iterator<Item = u32> {
    (0..limit).filter(|n| n % 2 == 0)
}

#[weave::op]
fn boxed(items: impl IntoIterator<Item = u8>) -> Box<dyn Fn() -> usize> {
    let n = items.into_iter().count();
    Box::new(move || n)
}

#[weave::op]
async fn describe_async(x: impl Display + Send) -> impl Display {
    x.to_string()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(describe(3).to_string(), "<3>");
    assert_eq!(evens(5).collect::<Vec<_>>(), vec![0, 2, 4]);
    assert_eq!(boxed(vec![1, 2, 3])(), 3);
    assert_eq!(describe_async("x").await.to_string(), "x");
}

// Generic functions: unbounded, with inline bounds, with a where clause, with a lifetime,
// and a generic method of a generic type.

use std::fmt::Display;

#[weave::op]
fn identity<T>(x: T) -> T {
    x
}

#[weave::op]
fn show<T: Display + Clone>(x: T) -> String {
    x.to_string()
}

#[weave::op]
fn pair<A, B>(a: A, b: B) -> (A, B)
where
    A: Clone + serde::Serialize,
    B: std::fmt::Debug,
{
    (a, b)
}

#[weave::op]
fn longest<'a>(a: &'a str, b: &'a str) -> &'a str {
    if a.len() >= b.len() {
        a
    } else {
        b
    }
}

#[weave::op]
async fn later<T: Send>(x: T) -> T {
    x
}

struct Wrapper<T>(T);

impl<T: Clone> Wrapper<T> {
    #[weave::op]
    fn get(&self) -> T {
        self.0.clone()
    }

    #[weave::op]
    fn map<U, F: FnOnce(T) -> U>(self, f: F) -> U {
        f(self.0)
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    struct Opaque;
    let _: Opaque = identity(Opaque);
    assert_eq!(show(7), "7");
    assert_eq!(pair(1, "b"), (1, "b"));
    assert_eq!(longest("ab", "c"), "ab");
    assert_eq!(later(5u8).await, 5);
    let w = Wrapper(2);
    assert_eq!(w.get(), 2);
    assert_eq!(w.map(|x| x * 10), 20);
}

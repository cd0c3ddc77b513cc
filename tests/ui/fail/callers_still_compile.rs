// A mistake in the attribute is the only error: the function is kept as written, so its
// callers (and their types) still compile.
#[weave::op(nme = "x")]
fn add(a: i32, b: i32) -> i32 {
    a + b
}

struct Config {
    retries: u32,
}

#[weave::op]
const fn limit(c: &Config) -> u32 {
    c.retries
}

fn main() {
    let sum: i32 = add(1, 2);
    let n: u32 = limit(&Config { retries: 3 });
    let _ = (sum, n);
}

// Result returns using `?`, with std, custom and aliased Result types, sync and async.

use std::num::ParseIntError;

#[derive(Debug)]
struct MyError(String);

impl std::fmt::Display for MyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for MyError {}

impl From<ParseIntError> for MyError {
    fn from(e: ParseIntError) -> Self {
        MyError(e.to_string())
    }
}

type MyResult<T> = std::result::Result<T, MyError>;

#[weave::op]
fn parse(s: &str) -> Result<i64, ParseIntError> {
    let n: i64 = s.trim().parse()?;
    Ok(n * 2)
}

#[weave::op]
fn parse_sum(a: &str, b: &str) -> MyResult<i64> {
    let a: i64 = a.parse()?;
    let b: i64 = b.parse()?;
    if a < 0 {
        return Err(MyError("negative".into()));
    }
    Ok(a + b)
}

#[weave::op]
fn boxed(s: &str) -> Result<u8, Box<dyn std::error::Error + Send + Sync>> {
    Ok(s.parse::<u8>()?)
}

#[weave::op]
async fn parse_async(s: String) -> Result<i64, MyError> {
    let n = parse(&s)?;
    Ok(n)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(parse(" 21 ").unwrap(), 42);
    assert!(parse("x").is_err());
    assert_eq!(parse_sum("1", "2").unwrap(), 3);
    assert!(parse_sum("-1", "2").is_err());
    assert!(parse_sum("1", "y").is_err());
    assert_eq!(boxed("7").unwrap(), 7);
    assert_eq!(parse_async("5".into()).await.unwrap(), 10);
}

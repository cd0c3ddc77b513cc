// `Result<impl Trait, E>` with `?` in the body: the error type must still be inferred.
use std::fmt::Display;

#[weave::op]
fn parse_all(items: &[&str]) -> Result<impl Display, std::num::ParseIntError> {
    let mut sum = 0u32;
    for item in items {
        sum += item.parse::<u32>()?;
    }
    Ok(sum)
}

#[weave::op]
async fn parse_async(item: &str) -> Result<impl Display, Box<dyn std::error::Error>> {
    let n: u32 = item.parse()?;
    Ok(n)
}

fn main() {
    assert_eq!(parse_all(&["1", "2"]).unwrap().to_string(), "3");
    assert!(parse_all(&["x"]).is_err());
    let _ = parse_async("1");
}

// `return` early exits, sync and async, including inside loops and closures.

#[weave::op]
fn classify(n: i32) -> &'static str {
    if n < 0 {
        return "negative";
    }
    for i in 0..3 {
        if n == i {
            return "small";
        }
    }
    let big = || {
        return n > 100;
    };
    if big() {
        return "big";
    }
    "medium"
}

#[weave::op]
fn find(items: &[u8], x: u8) -> Option<usize> {
    for (i, v) in items.iter().enumerate() {
        if *v == x {
            return Some(i);
        }
    }
    None
}

#[weave::op]
fn log_if(flag: bool) {
    if !flag {
        return;
    }
    println!("flag");
}

#[weave::op]
async fn classify_async(n: i32) -> String {
    if n == 0 {
        return "zero".to_string();
    }
    "nonzero".to_string()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(classify(-1), "negative");
    assert_eq!(classify(1), "small");
    assert_eq!(classify(500), "big");
    assert_eq!(classify(50), "medium");
    assert_eq!(find(&[1, 2, 3], 3), Some(2));
    assert_eq!(find(&[1], 9), None);
    log_if(false);
    assert_eq!(classify_async(0).await, "zero");
    assert_eq!(classify_async(1).await, "nonzero");
}

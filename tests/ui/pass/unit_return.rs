// Functions returning (), implicitly and explicitly.

#[weave::op]
fn implicit(_x: u8) {}

#[weave::op]
fn explicit(v: &mut Vec<u8>) -> () {
    v.push(1);
}

#[weave::op]
fn trailing_semicolon(v: &mut Vec<u8>) {
    v.push(2);
}

#[weave::op]
async fn implicit_async() {}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut v = Vec::new();
    implicit(0);
    explicit(&mut v);
    trailing_semicolon(&mut v);
    implicit_async().await;
    assert_eq!(v, [1, 2]);
}

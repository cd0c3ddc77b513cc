// Inner attributes at the top of an op's body stay at the top of the body.
#[weave::op]
fn with_inner_allow(x: u32) -> u32 {
    #![allow(clippy::identity_op)]
    x + 0
}

#[weave::op]
async fn async_with_inner_allow(x: u32) -> u32 {
    #![allow(unused_variables)]
    let unused = 1;
    x
}

fn main() {
    assert_eq!(with_inner_allow(2), 2);
    let _ = async_with_inner_allow(1);
}

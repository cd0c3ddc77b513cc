// A trait's default method with a body, and an op in a trait impl.

trait Scorer {
    fn base(&self) -> u32;

    #[weave::op]
    fn score(&self, x: u32) -> u32 {
        self.base() + x
    }
}

struct S;

impl Scorer for S {
    #[weave::op]
    fn base(&self) -> u32 {
        10
    }
}

fn main() {
    assert_eq!(S.score(1), 11);
}

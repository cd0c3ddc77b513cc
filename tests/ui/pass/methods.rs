// Methods taking &self, &mut self and self, and an associated fn without a receiver.

#[derive(Debug)]
struct Counter {
    n: u32,
}

impl Counter {
    #[weave::op]
    fn new(start: u32) -> Self {
        Counter { n: start }
    }

    #[weave::op]
    fn get(&self) -> u32 {
        self.n
    }

    #[weave::op]
    fn bump(&mut self, by: u32) -> u32 {
        self.n += by;
        self.n
    }

    #[weave::op]
    fn into_inner(self) -> u32 {
        self.n
    }

    #[weave::op]
    async fn get_async(&self) -> u32 {
        self.n
    }

    #[weave::op]
    async fn bump_async(&mut self) {
        self.n += 1;
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut c = Counter::new(1);
    assert_eq!(c.get(), 1);
    assert_eq!(c.bump(2), 3);
    c.bump_async().await;
    assert_eq!(c.get_async().await, 4);
    assert_eq!(c.into_inner(), 4);
}

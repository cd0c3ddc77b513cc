// #[weave::op] methods inside an #[async_trait::async_trait] trait impl.

use async_trait::async_trait;

#[async_trait]
trait Tool {
    async fn run(&self, input: String) -> String;
    async fn run_mut(&mut self, n: u32) -> Result<u32, String>;
    async fn describe(&self) -> String {
        "a tool".to_string()
    }
}

struct Echo {
    calls: u32,
}

#[async_trait]
impl Tool for Echo {
    #[weave::op]
    async fn run(&self, input: String) -> String {
        input
    }

    #[weave::op(name = "echo_mut", kind = "tool", skip(self))]
    async fn run_mut(&mut self, n: u32) -> Result<u32, String> {
        if n == 0 {
            return Err("zero".to_string());
        }
        self.calls += n;
        Ok(self.calls)
    }

    #[weave::op]
    async fn describe(&self) -> String {
        format!("echo after {} calls", self.calls)
    }
}

#[async_trait::async_trait]
trait Borrowing {
    async fn first<'a>(&self, items: &'a [u8]) -> Option<&'a u8>;
}

#[async_trait::async_trait]
impl Borrowing for Echo {
    #[weave::op]
    async fn first<'a>(&self, items: &'a [u8]) -> Option<&'a u8> {
        items.first()
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut e = Echo { calls: 0 };
    assert_eq!(e.run("hi".into()).await, "hi");
    assert_eq!(e.run_mut(2).await, Ok(2));
    assert!(e.run_mut(0).await.is_err());
    assert_eq!(e.describe().await, "echo after 2 calls");
    assert_eq!(e.first(&[4, 5]).await, Some(&4));
    let dyn_tool: Box<dyn Tool + Send + Sync> = Box::new(Echo { calls: 0 });
    assert_eq!(dyn_tool.run("dyn".into()).await, "dyn");
}

// Diverging ops (`-> !`), sync, async and as a method. Ops on them must compile on stable
// Rust, where `!` cannot name a variable's type.

#[weave::op]
fn fail(msg: &str) -> ! {
    panic!("{msg}")
}

#[weave::op]
fn serve_forever(port: u16) -> ! {
    loop {
        if port == 0 {
            std::process::exit(0);
        }
    }
}

#[weave::op]
async fn fail_async(msg: String) -> ! {
    panic!("{msg}")
}

struct Server;

impl Server {
    #[weave::op]
    fn abort(&self, code: i32) -> ! {
        std::process::exit(code)
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    std::panic::set_hook(Box::new(|_| {}));
    let caught = std::panic::catch_unwind(|| fail("boom"));
    assert!(caught.is_err());
    let task = tokio::spawn(fail_async("boom".into()));
    assert!(task.await.unwrap_err().is_panic());
    if std::env::args().count() > 100 {
        Server.abort(1);
    }
    serve_forever(0);
}

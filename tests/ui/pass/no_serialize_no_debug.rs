// Arguments and returns whose types implement neither Serialize nor Debug need no bound:
// they are recorded as a placeholder.

struct Opaque {
    secret: u32,
}

struct OpaqueError;

#[weave::op]
fn open(o: Opaque, r: &Opaque, f: fn(u32) -> u32) -> Opaque {
    Opaque {
        secret: f(o.secret + r.secret),
    }
}

#[weave::op]
fn fails(o: &Opaque) -> Result<Opaque, OpaqueError> {
    if o.secret == 0 {
        Err(OpaqueError)
    } else {
        Ok(Opaque { secret: o.secret })
    }
}

#[weave::op]
async fn open_async(o: Opaque) -> Opaque {
    o
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let o = open(Opaque { secret: 1 }, &Opaque { secret: 2 }, |x| x + 1);
    assert_eq!(o.secret, 4);
    assert!(fails(&Opaque { secret: 0 }).is_err());
    assert_eq!(open_async(o).await.secret, 4);
}

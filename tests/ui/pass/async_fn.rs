// An async fn, with borrowed and owned arguments.

#[weave::op]
async fn fetch(city: &str, days: u32) -> String {
    format!("{city}: {days} days")
}

#[weave::op]
async fn nothing() {}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(fetch("Paris", 3).await, "Paris: 3 days");
    nothing().await;
}

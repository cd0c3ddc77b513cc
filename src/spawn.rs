//! Spawning tasks and threads that keep the current call.

use std::future::Future;

use tracing::Instrument;
use weave_core::Context;

/// `tokio::spawn`, keeping the current call (and `tracing` span): calls made by the task
/// become children of the call current where it was spawned. Needs a tokio runtime, as
/// `tokio::spawn` does.
///
/// # Examples
///
/// ```
/// # std::env::set_var("WEAVE_DB_PATH", ":memory:");
/// #[weave::op]
/// async fn fetch(i: u32) -> u32 {
///     i * 10
/// }
///
/// #[weave::op]
/// async fn fan_out() -> u32 {
///     let tasks: Vec<_> = (0..3).map(|i| weave::spawn(fetch(i))).collect();
///     let mut sum = 0;
///     for t in tasks {
///         sum += t.await.unwrap();
///     }
///     sum
/// }
///
/// # let (client, _guard) = weave::init_with("acme/spawn", weave::InitOptions::default().with_install_subscriber(false))?;
/// let rt = tokio::runtime::Builder::new_multi_thread().build().unwrap();
/// let ((sum, root), _) = rt.block_on(async {
///     (weave::capture_call_async(fan_out()).await, ())
/// });
/// assert_eq!(sum, 30);
/// assert_eq!(root.unwrap().children().count(), 3);
/// # Ok::<(), weave::WeaveError>(())
/// ```
pub fn spawn<F>(future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    // The span is entered first and the call pushed after it, so that a call made directly
    // (create_call) inside the span stays the innermost.
    tokio::spawn(Context::current().wrap(future).in_current_span())
}

/// `std::thread::spawn`, keeping the current call (and `tracing` span).
///
/// # Examples
///
/// ```
/// # let client = weave::WeaveClient::new("e", "p", std::sync::Arc::new(weave::SqliteServer::in_memory().unwrap()), false).unwrap();
/// let root = client.create_call("root", serde_json::json!({}))?;
/// let c2 = client.clone();
/// let child = weave::spawn_thread(move || c2.create_call("worker", serde_json::json!({})))
///     .join()
///     .unwrap()?;
/// assert_eq!(child.parent_id(), Some(root.id()));
/// # Ok::<(), weave::WeaveError>(())
/// ```
pub fn spawn_thread<F, T>(f: F) -> std::thread::JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let ctx = Context::current();
    let span = tracing::Span::current();
    std::thread::spawn(move || span.in_scope(|| ctx.scope(f)))
}

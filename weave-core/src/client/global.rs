//! The process-wide client that module-level functions (`weave::publish`, and `weave::init`
//! of the tracing work) use, like the Python SDK's global client.

use std::sync::RwLock;

use serde::Serialize;

use super::WeaveClient;
use crate::error::{Result, WeaveError};
use crate::refs::ObjectRef;

static GLOBAL: RwLock<Option<WeaveClient>> = RwLock::new(None);

/// Makes `client` the process-wide client (replacing any previous one), or clears it with
/// `None`. `weave::init` does this for you.
pub fn set_global_client(client: Option<WeaveClient>) {
    let on = client.is_some();
    let mut global = GLOBAL.write().unwrap_or_else(|e| e.into_inner());
    *global = client;
    // Under the lock, so that concurrent calls leave the flag matching the client.
    crate::switch::set_global_client_flag(on);
}

/// The process-wide client, if one is set.
pub fn global_client() -> Option<WeaveClient> {
    GLOBAL.read().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Saves `value` as the object `name` with the process-wide client (Python's
/// `weave.publish(obj, name)`). Errors when no client is set.
///
/// # Examples
///
/// ```
/// # use std::sync::Arc;
/// use weave_core::{global_client, publish, set_global_client, SqliteServer, WeaveClient};
/// let client = WeaveClient::new("acme", "demo", Arc::new(SqliteServer::in_memory()?), false)?;
/// set_global_client(Some(client.clone()));
/// let r = publish(&serde_json::json!({"system_prompt": "Be brief."}), "prompt")?;
/// assert_eq!(client.get(&r)?["system_prompt"], "Be brief.");
/// set_global_client(None);
/// assert!(publish(&1, "x").is_err());
/// # Ok::<(), weave_core::WeaveError>(())
/// ```
pub fn publish<T: Serialize + ?Sized>(value: &T, name: &str) -> Result<ObjectRef> {
    let client = global_client().ok_or_else(|| {
        WeaveError::invalid_input(
            "publish needs a client: call weave::init first (or set_global_client)",
        )
    })?;
    client.save(value, name)
}

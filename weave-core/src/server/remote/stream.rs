//! Streaming: `/calls/stream_query`'s JSONL body, read chunk by chunk on the SDK's runtime and
//! parsed line by line into a bounded channel that the iterator the caller holds drains — so
//! a large result is never all in memory, and the reader waits when the caller is slow.

use super::errors::{retry_after, status_error, transport_error};
use super::transport::wait;
use super::RemoteServer;
use crate::error::{Result, WeaveError};
use crate::schema::*;
use crate::server::CallsStream;

/// How many streamed calls may wait, parsed, for the iterator to take them.
const STREAM_BUFFER: usize = 256;

/// The lines of a streamed JSONL body, parsed, as they arrive.
struct StreamIter {
    rx: tokio::sync::mpsc::Receiver<Result<CallSchema>>,
}

impl Iterator for StreamIter {
    type Item = Result<CallSchema>;
    fn next(&mut self) -> Option<Self::Item> {
        wait(self.rx.recv())
    }
}

fn parse_line(path: &str, line: &[u8]) -> Option<Result<CallSchema>> {
    let line = line.trim_ascii();
    if line.is_empty() {
        return None;
    }
    Some(serde_json::from_slice(line).map_err(|e| {
        WeaveError::backend_caused_by(format!("{path}: a streamed call is not valid: {e}"), e)
    }))
}

impl RemoteServer {
    /// `POST /calls/stream_query`, its calls as they arrive.
    pub(super) fn stream_query(&self, req: CallsQueryReq) -> Result<CallsStream> {
        let path = "/calls/stream_query";
        let rb = self
            .json_request(path, &req)?
            .header(reqwest::header::ACCEPT, "application/jsonl");
        let (tx, rx) = tokio::sync::mpsc::channel(STREAM_BUFFER);
        // The status is known before the first item: an error answer is an error here, not a
        // stream that fails later.
        let (status_tx, status_rx) = tokio::sync::oneshot::channel::<Result<()>>();
        self.inner.handle.spawn(async move {
            let mut resp = match rb.send().await {
                Ok(r) => r,
                Err(e) => {
                    let _ = status_tx.send(Err(transport_error(path, e)));
                    return;
                }
            };
            let status = resp.status().as_u16();
            if !(200..300).contains(&status) {
                let after = retry_after(&resp);
                let body = resp.bytes().await.unwrap_or_default();
                let _ = status_tx.send(Err(status_error(path, status, after, &body)));
                return;
            }
            let _ = status_tx.send(Ok(()));
            let mut pending: Vec<u8> = Vec::new();
            loop {
                match resp.chunk().await {
                    Ok(Some(chunk)) => {
                        pending.extend_from_slice(&chunk);
                        while let Some(i) = pending.iter().position(|b| *b == b'\n') {
                            let line: Vec<u8> = pending.drain(..=i).collect();
                            if let Some(item) = parse_line(path, &line) {
                                if tx.send(item).await.is_err() {
                                    return; // the iterator was dropped
                                }
                            }
                        }
                    }
                    Ok(None) => {
                        if let Some(item) = parse_line(path, &pending) {
                            let _ = tx.send(item).await;
                        }
                        return;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(transport_error(path, e))).await;
                        return;
                    }
                }
            }
        });
        wait(status_rx).map_err(|_| WeaveError::Shutdown)??;
        Ok(Box::new(StreamIter { rx }))
    }
}

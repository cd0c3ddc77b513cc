//! [`CallsQuery`] and [`CallsIter`]: querying calls, lazily and in pages.

use std::collections::VecDeque;

use super::call::Call;
use super::WeaveClient;
use crate::error::Result;
use crate::query::Query;
use crate::record::stored::StoredCall;
use crate::schema::{CallSchema, CallsFilter, CallsQueryReq, CallsQueryStatsReq, SortBy};
use crate::server::CallsStream;

/// Everything `get_calls` accepts (Python's `get_calls` keyword arguments), as a builder.
///
/// # Examples
///
/// ```
/// use weave_core::{query::field, CallsFilter, CallsQuery, SortBy};
/// let q = CallsQuery::new()
///     .filter(CallsFilter { trace_roots_only: Some(true), ..Default::default() })
///     .query(field("summary.weave.status").eq("error"))
///     .sort_by(SortBy::desc("started_at"))
///     .limit(20)
///     .columns(["id", "op_name", "summary"]);
/// # let _ = q;
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallsQuery {
    /// The structured filter.
    pub filter: Option<CallsFilter>,
    /// The query expression.
    pub query: Option<Query>,
    /// Sort keys (`None` = oldest first; an empty list = unordered).
    pub sort_by: Option<Vec<SortBy>>,
    /// At most this many calls.
    pub limit: Option<u64>,
    /// Skip this many.
    pub offset: Option<u64>,
    /// Columns to return (`None` = all).
    pub columns: Option<Vec<String>>,
    /// Ref-valued paths to expand.
    pub expand_columns: Option<Vec<String>>,
    /// Whether expanded values are returned (default true).
    pub return_expanded_column_values: Option<bool>,
    /// Fill `summary.weave.costs`.
    pub include_costs: bool,
    /// Fill `summary.weave.feedback`.
    pub include_feedback: bool,
    /// Fill `storage_size_bytes`.
    pub include_storage_size: bool,
    /// Fill `total_storage_size_bytes`.
    pub include_total_storage_size: bool,
    /// Calls fetched per request from a paged (remote) backend (default 1000, or
    /// `WEAVE_CALLS_PAGE_SIZE`); the embedded store streams the whole query (see [`CallsIter`]).
    pub page_size: Option<u64>,
}

impl CallsQuery {
    /// Every call of the project, oldest first.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets the filter.
    pub fn filter(mut self, filter: CallsFilter) -> Self {
        self.filter = Some(filter);
        self
    }
    /// Sets the query expression.
    pub fn query(mut self, query: impl Into<Query>) -> Self {
        self.query = Some(query.into());
        self
    }
    /// Adds a sort key.
    pub fn sort_by(mut self, key: SortBy) -> Self {
        self.sort_by.get_or_insert_with(Vec::new).push(key);
        self
    }
    /// Returns calls in no particular order (`sort_by: []`).
    pub fn unordered(mut self) -> Self {
        self.sort_by = Some(Vec::new());
        self
    }
    /// At most `n` calls.
    pub fn limit(mut self, n: u64) -> Self {
        self.limit = Some(n);
        self
    }
    /// Skips `n` calls.
    pub fn offset(mut self, n: u64) -> Self {
        self.offset = Some(n);
        self
    }
    /// Only these columns (see PROTOCOL §6 for what is always returned).
    pub fn columns<S: Into<String>>(mut self, columns: impl IntoIterator<Item = S>) -> Self {
        self.columns = Some(columns.into_iter().map(Into::into).collect());
        self
    }
    /// Expands these ref-valued paths.
    pub fn expand_columns<S: Into<String>>(mut self, columns: impl IntoIterator<Item = S>) -> Self {
        self.expand_columns = Some(columns.into_iter().map(Into::into).collect());
        self
    }
    /// Whether expanded values are returned.
    pub fn return_expanded_column_values(mut self, yes: bool) -> Self {
        self.return_expanded_column_values = Some(yes);
        self
    }
    /// Fill `summary.weave.costs`.
    pub fn include_costs(mut self, yes: bool) -> Self {
        self.include_costs = yes;
        self
    }
    /// Fill `summary.weave.feedback`.
    pub fn include_feedback(mut self, yes: bool) -> Self {
        self.include_feedback = yes;
        self
    }
    /// Fill `storage_size_bytes`.
    pub fn include_storage_size(mut self, yes: bool) -> Self {
        self.include_storage_size = yes;
        self
    }
    /// Fill `total_storage_size_bytes`.
    pub fn include_total_storage_size(mut self, yes: bool) -> Self {
        self.include_total_storage_size = yes;
        self
    }
    /// Calls fetched per request from a paged (remote) backend (see [`CallsIter`]).
    pub fn page_size(mut self, n: u64) -> Self {
        self.page_size = Some(n.max(1));
        self
    }

    pub(crate) fn to_req(&self, project_id: &str) -> CallsQueryReq {
        CallsQueryReq {
            project_id: project_id.to_string(),
            filter: self.filter.clone(),
            limit: self.limit,
            offset: self.offset,
            sort_by: self.sort_by.clone(),
            query: self.query.clone(),
            include_costs: self.include_costs,
            include_feedback: self.include_feedback,
            include_storage_size: self.include_storage_size,
            include_total_storage_size: self.include_total_storage_size,
            columns: self.columns.clone(),
            expand_columns: self.expand_columns.clone(),
            return_expanded_column_values: self.return_expanded_column_values.unwrap_or(true),
        }
    }
}

impl From<CallsFilter> for CallsQuery {
    fn from(filter: CallsFilter) -> Self {
        CallsQuery::new().filter(filter)
    }
}

impl From<Query> for CallsQuery {
    fn from(query: Query) -> Self {
        CallsQuery::new().query(query)
    }
}

impl From<crate::query::Expr> for CallsQuery {
    fn from(expr: crate::query::Expr) -> Self {
        CallsQuery::new().query(expr)
    }
}

/// The calls of a query, fetched lazily (Python's `PaginatedIterator`).
///
/// How they are fetched depends on the backend
/// ([`TraceServer::streams_calls_lazily`](crate::TraceServer::streams_calls_lazily)):
///
/// - **The embedded store** reads a query lazily, so the whole range (the query's `offset`
///   and `limit`) is asked for in one request on the first `next`, and read as it is
///   consumed: iterating N calls costs O(N). The calls are those stored when iteration
///   starts (the client's queued writes are flushed first); [`CallsQuery::page_size`] does
///   not apply.
/// - **A remote server** is asked one page of `page_size` calls at a time (`offset` +
///   `limit`), the client's queued writes flushed before each page; only one page is held in
///   memory.
///
/// Iterating yields `Result<Call>`: a request or call that cannot be read yields its error
/// once and ends the iteration. [`CallsIter::size`] counts the matching calls with the stats
/// query, without fetching them.
///
/// # Examples
///
/// ```
/// # use std::sync::Arc;
/// # use serde_json::json;
/// use weave_core::{query::field, CallsQuery, SqliteServer, WeaveClient};
/// let client = WeaveClient::new("acme", "demo", Arc::new(SqliteServer::in_memory()?), false)?;
/// for n in 0..5 {
///     let call = client.create_call("square", json!({"n": n}))?;
///     client.finish_call(&call, n * n)?;
/// }
/// let big = client.get_calls(CallsQuery::from(field("output").gte(4)).page_size(2));
/// assert_eq!(big.size()?, 3);
/// let outputs: Vec<i64> = big.map(|c| c.map(|c| c.output().as_i64().unwrap())).collect::<Result<_, _>>()?;
/// assert_eq!(outputs, [4, 9, 16]);
/// # Ok::<(), weave_core::WeaveError>(())
/// ```
pub struct CallsIter {
    client: WeaveClient,
    query: CallsQuery,
    page_size: u64,
    /// Calls fetched so far (paging).
    fetched: u64,
    buffer: VecDeque<CallSchema>,
    /// The one stream of the whole range, once asked for (a backend that streams lazily).
    stream: Option<Stream>,
    exhausted: bool,
}

/// The stream of a lazily read query: the protocol's, or the embedded store's own (its
/// calls' JSON parsed only when read).
enum Stream {
    Protocol(CallsStream),
    Stored(Box<dyn Iterator<Item = Result<StoredCall>> + Send>),
}

impl std::fmt::Debug for CallsIter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallsIter")
            .field("query", &self.query)
            .field("page_size", &self.page_size)
            .field("fetched", &self.fetched)
            .field("buffered", &self.buffer.len())
            .field("streaming", &self.stream.is_some())
            .field("exhausted", &self.exhausted)
            .finish()
    }
}

impl CallsIter {
    pub(crate) fn new(client: WeaveClient, query: CallsQuery) -> Self {
        let page_size = query.page_size.unwrap_or(client.page_size());
        CallsIter {
            client,
            query,
            page_size,
            fetched: 0,
            buffer: VecDeque::new(),
            stream: None,
            exhausted: false,
        }
    }

    /// Sets how many calls each request fetches (from a backend that is paged; see
    /// [`CallsIter`]).
    pub fn page_size(mut self, n: u64) -> Self {
        self.page_size = n.max(1);
        self
    }

    /// How many calls the query matches (offset and limit applied), from the stats query:
    /// no call is fetched. Python's `len(calls)`.
    pub fn size(&self) -> Result<u64> {
        self.client.flush();
        let res = self.client.server().calls_query_stats(CallsQueryStatsReq {
            project_id: self.client.project_id().to_string(),
            filter: self.query.filter.clone(),
            query: self.query.query.clone(),
            limit: None,
            include_total_storage_size: false,
            expand_columns: self.query.expand_columns.clone(),
        })?;
        let after_offset = res.count.saturating_sub(self.query.offset.unwrap_or(0));
        Ok(self
            .query
            .limit
            .map_or(after_offset, |l| l.min(after_offset)))
    }

    fn fetch_page(&mut self) -> Result<()> {
        let remaining = self.query.limit.map(|l| l.saturating_sub(self.fetched));
        let want = remaining.map_or(self.page_size, |r| r.min(self.page_size));
        if want == 0 {
            self.exhausted = true;
            return Ok(());
        }
        self.client.flush();
        let mut req = self.query.to_req(self.client.project_id());
        req.offset = Some(self.query.offset.unwrap_or(0) + self.fetched);
        req.limit = Some(want);
        let mut n = 0;
        for call in self.client.server().calls_query_stream(req)? {
            self.buffer.push_back(call?);
            n += 1;
        }
        self.fetched += n;
        if n < want {
            self.exhausted = true;
        }
        Ok(())
    }

    /// Opens the one stream of the whole range: the embedded store's own, unless the query
    /// asks for what only the protocol's applies (costs, feedback, expanded refs).
    fn open_stream(&self) -> Result<Stream> {
        let req = self.query.to_req(self.client.project_id());
        let server = self.client.server();
        if let Some(store) = server.capabilities().records {
            if let Some(stream) = store.query_records(&req)? {
                return Ok(Stream::Stored(stream));
            }
        }
        server.calls_query_stream(req).map(Stream::Protocol)
    }

    /// The next call of the one stream of the whole range, asked for on the first call.
    fn next_streamed(&mut self) -> Option<Result<Call>> {
        if self.stream.is_none() {
            if self.query.limit == Some(0) {
                self.exhausted = true;
                return None;
            }
            self.client.flush();
            match self.open_stream() {
                Ok(stream) => self.stream = Some(stream),
                Err(e) => return Some(Err(e)),
            }
        }
        let client = &self.client;
        let next = match self.stream.as_mut()? {
            Stream::Protocol(s) => s
                .next()
                .map(|r| r.map(|c| Call::from_schema(client.clone(), c))),
            Stream::Stored(s) => s
                .next()
                .map(|r| r.map(|c| Call::from_stored(client.clone(), c))),
        };
        if !matches!(next, Some(Ok(_))) {
            // The end, or an error (yielded once): let the stream go now.
            self.stream = None;
            self.exhausted = true;
        }
        next
    }
}

impl Iterator for CallsIter {
    type Item = Result<Call>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.exhausted && self.buffer.is_empty() {
            return None;
        }
        if self.stream.is_some() || self.client.server().capabilities().streams_calls_lazily {
            return match self.next_streamed()? {
                Ok(call) => Some(Ok(call)),
                Err(e) => {
                    self.exhausted = true;
                    Some(Err(e))
                }
            };
        }
        if self.buffer.is_empty() && !self.exhausted {
            if let Err(e) = self.fetch_page() {
                self.exhausted = true;
                self.buffer.clear();
                return Some(Err(e));
            }
        }
        let schema = self.buffer.pop_front()?;
        Some(Ok(Call::from_schema(self.client.clone(), schema)))
    }
}

//! Prices and costs: `add_cost`, `query_costs`, `purge_costs` (Python's `WeaveClient` API).

use std::collections::BTreeMap;

use super::WeaveClient;
use crate::error::{Result, WeaveError};
use crate::query::{field, Expr, Query};
use crate::schema::{CostCreateInput, CostCreateReq, CostPurgeReq, CostQueryOutput, CostQueryReq};

/// Python's default `limit` of `query_costs`.
pub const DEFAULT_COSTS_LIMIT: u64 = 100;

/// What `query_costs` accepts: a query, or a cost id, narrowed to some models, paged.
///
/// # Examples
///
/// ```
/// use weave_core::CostsQuery;
/// let q = CostsQuery::new().llm_ids(["gpt-4o", "claude-3-5-sonnet"]).limit(10);
/// # let _ = q;
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct CostsQuery {
    /// A query over cost fields.
    pub query: Option<Query>,
    /// Only prices of these models.
    pub llm_ids: Option<Vec<String>>,
    /// Skip this many (default 0).
    pub offset: u64,
    /// At most this many (default 100, as in Python).
    pub limit: u64,
}

impl Default for CostsQuery {
    fn default() -> Self {
        CostsQuery {
            query: None,
            llm_ids: None,
            offset: 0,
            limit: DEFAULT_COSTS_LIMIT,
        }
    }
}

impl CostsQuery {
    /// Every price of the project (first 100).
    pub fn new() -> Self {
        Self::default()
    }
    /// The price with this id.
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.query = Some(Query::by_id(id));
        self
    }
    /// A query over cost fields (`id`, `llm_id`, `effective_date`, `provider_id`, …).
    pub fn query(mut self, q: impl Into<Query>) -> Self {
        self.query = Some(q.into());
        self
    }
    /// Only prices of these models.
    pub fn llm_ids<S: Into<String>>(mut self, ids: impl IntoIterator<Item = S>) -> Self {
        self.llm_ids = Some(ids.into_iter().map(Into::into).collect());
        self
    }
    /// Skip this many.
    pub fn offset(mut self, n: u64) -> Self {
        self.offset = n;
        self
    }
    /// At most this many.
    pub fn limit(mut self, n: u64) -> Self {
        self.limit = n;
        self
    }

    fn combined_query(&self) -> Option<Query> {
        let by_llm = self
            .llm_ids
            .as_ref()
            .map(|ids| field("llm_id").in_(ids.iter().map(String::as_str)));
        match (&self.query, by_llm) {
            (None, None) => None,
            (Some(q), None) => Some(q.clone()),
            (None, Some(e)) => Some(Query::new(e)),
            (Some(q), Some(e)) => Some(Query::new(Expr::from(q.expr.clone()).and(e))),
        }
    }
}

impl From<Query> for CostsQuery {
    fn from(q: Query) -> Self {
        CostsQuery::new().query(q)
    }
}

impl From<&str> for CostsQuery {
    /// A cost id.
    fn from(id: &str) -> Self {
        CostsQuery::new().id(id)
    }
}

impl WeaveClient {
    /// Adds a project-level price for `llm_id`, per token, effective now, in USD, for the
    /// `"default"` provider (Python's `add_cost` defaults). Returns `(llm_id, cost_id)`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use serde_json::json;
    /// # use weave_core::{SqliteServer, WeaveClient};
    /// # let client = WeaveClient::new("acme", "demo", Arc::new(SqliteServer::in_memory()?), false)?;
    /// client.add_cost("my-model", 0.000_002, 0.000_008)?;
    /// let call = client.create_call("llm", json!({}))?;
    /// client.finish_call(&call, json!({"model": "my-model", "usage": {"prompt_tokens": 1000, "completion_tokens": 500}}))?;
    /// let costs = &client.get_call_with(call.id(), true)?.weave_summary().unwrap()["costs"]["my-model"];
    /// assert_eq!(costs["prompt_tokens_total_cost"], 0.002);
    /// assert_eq!(costs["completion_tokens_total_cost"], 0.004);
    /// # Ok::<(), weave_core::WeaveError>(())
    /// ```
    pub fn add_cost(
        &self,
        llm_id: &str,
        prompt_token_cost: f64,
        completion_token_cost: f64,
    ) -> Result<(String, String)> {
        self.add_cost_with(
            llm_id,
            CostCreateInput::new(prompt_token_cost, completion_token_cost),
        )
    }

    /// Adds a price with every parameter of Python's `add_cost` (effective date, units,
    /// provider). Returns `(llm_id, cost_id)`.
    pub fn add_cost_with(&self, llm_id: &str, cost: CostCreateInput) -> Result<(String, String)> {
        let mut ids = self.add_costs([(llm_id.to_string(), cost)])?;
        ids.pop()
            .ok_or_else(|| WeaveError::backend("cost_create returned no id"))
    }

    /// Adds several prices at once. Returns `(llm_id, cost_id)` pairs.
    pub fn add_costs(
        &self,
        costs: impl IntoIterator<Item = (String, CostCreateInput)>,
    ) -> Result<Vec<(String, String)>> {
        let mut map = BTreeMap::new();
        for (llm_id, mut cost) in costs {
            if llm_id.is_empty() {
                return Err(WeaveError::invalid_input(
                    "add_cost: llm_id must not be empty",
                ));
            }
            cost.effective_date
                .get_or_insert_with(crate::Timestamp::now);
            if map.insert(llm_id.clone(), cost).is_some() {
                return Err(WeaveError::invalid_input(format!(
                    "add_costs: {llm_id:?} is given twice"
                )));
            }
        }
        let res = self.server().cost_create(CostCreateReq {
            project_id: self.project_id().to_string(),
            costs: map,
            wb_user_id: None,
        })?;
        // The wire pairs are (cost_id, llm_id); users get (llm_id, cost_id).
        Ok(res
            .ids
            .into_iter()
            .map(|(cost_id, llm_id)| (llm_id, cost_id))
            .collect())
    }

    /// Queries the project's prices: by query, by id (`"<cost id>".into()`), by model.
    pub fn query_costs(&self, q: impl Into<CostsQuery>) -> Result<Vec<CostQueryOutput>> {
        let q = q.into();
        Ok(self
            .server()
            .cost_query(CostQueryReq {
                project_id: self.project_id().to_string(),
                fields: None,
                query: q.combined_query(),
                sort_by: None,
                limit: Some(q.limit),
                offset: Some(q.offset),
            })?
            .results)
    }

    /// Deletes prices by id.
    pub fn purge_costs<S: AsRef<str>>(&self, ids: impl IntoIterator<Item = S>) -> Result<()> {
        let ids: Vec<String> = ids.into_iter().map(|s| s.as_ref().to_string()).collect();
        if ids.is_empty() {
            return Ok(());
        }
        self.server().cost_purge(CostPurgeReq {
            project_id: self.project_id().to_string(),
            query: Query::new(field("id").in_(ids.iter().map(String::as_str))),
        })?;
        Ok(())
    }
}

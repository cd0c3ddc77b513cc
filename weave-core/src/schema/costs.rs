use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::query::Query;
use crate::schema::SortBy;
use crate::time::Timestamp;

/// The price of one model, as `/cost/create` takes it (`CostCreateInput`). Costs are per
/// token, e.g. `0.0000025` USD per prompt token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostCreateInput {
    /// Cost of one prompt (input) token.
    pub prompt_token_cost: f64,
    /// Cost of one completion (output) token.
    pub completion_token_cost: f64,
    /// Unit of the prompt cost (default `"USD"`).
    #[serde(default)]
    pub prompt_token_cost_unit: Option<String>,
    /// Unit of the completion cost (default `"USD"`).
    #[serde(default)]
    pub completion_token_cost_unit: Option<String>,
    /// From when the price applies (default: now).
    #[serde(default)]
    pub effective_date: Option<Timestamp>,
    /// The provider (default `"default"`).
    #[serde(default)]
    pub provider_id: Option<String>,
    /// Cost of one cached input token read (newer servers; omitted when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_input_token_cost: Option<f64>,
    /// Cost of one input token written to the cache (newer servers; omitted when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation_input_token_cost: Option<f64>,
}

impl CostCreateInput {
    /// A price with the protocol's defaults for everything else.
    pub fn new(prompt_token_cost: f64, completion_token_cost: f64) -> Self {
        CostCreateInput {
            prompt_token_cost,
            completion_token_cost,
            prompt_token_cost_unit: None,
            completion_token_cost_unit: None,
            effective_date: None,
            provider_id: None,
            cache_read_input_token_cost: None,
            cache_creation_input_token_cost: None,
        }
    }
    /// From when the price applies.
    pub fn effective_date(mut self, t: Timestamp) -> Self {
        self.effective_date = Some(t);
        self
    }
    /// The units of both costs.
    pub fn units(mut self, prompt: impl Into<String>, completion: impl Into<String>) -> Self {
        self.prompt_token_cost_unit = Some(prompt.into());
        self.completion_token_cost_unit = Some(completion.into());
        self
    }
    /// The provider.
    pub fn provider_id(mut self, provider: impl Into<String>) -> Self {
        self.provider_id = Some(provider.into());
        self
    }
}

/// `POST /cost/create`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostCreateReq {
    /// `"entity/project"`.
    pub project_id: String,
    /// Prices by model id.
    pub costs: BTreeMap<String, CostCreateInput>,
    /// Server-set.
    #[serde(default)]
    pub wb_user_id: Option<String>,
}

/// Response of `/cost/create`. On the wire each pair is `[cost_id, llm_id]` — the order the
/// Weave server really sends (PROTOCOL.md §3.7 has it the other way round).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostCreateRes {
    /// `(cost_id, llm_id)` per created price.
    pub ids: Vec<(String, String)>,
}

/// `POST /cost/query`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostQueryReq {
    /// `"entity/project"`.
    pub project_id: String,
    /// Fields to return (`None` = all).
    #[serde(default)]
    pub fields: Option<Vec<String>>,
    /// Query over cost fields (`id`, `llm_id`, `effective_date`, …).
    #[serde(default)]
    pub query: Option<Query>,
    /// Sort keys.
    #[serde(default)]
    pub sort_by: Option<Vec<SortBy>>,
    /// At most this many.
    #[serde(default)]
    pub limit: Option<u64>,
    /// Skip this many.
    #[serde(default)]
    pub offset: Option<u64>,
}

/// One price as `/cost/query` returns it; unselected fields are absent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CostQueryOutput {
    /// The cost id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The model id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llm_id: Option<String>,
    /// Cost of one prompt token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_token_cost: Option<f64>,
    /// Cost of one completion token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_token_cost: Option<f64>,
    /// Unit of the prompt cost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_token_cost_unit: Option<String>,
    /// Unit of the completion cost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_token_cost_unit: Option<String>,
    /// From when the price applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_date: Option<Timestamp>,
    /// The provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_id: Option<String>,
}

/// Response of `/cost/query`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CostQueryRes {
    /// The prices.
    pub results: Vec<CostQueryOutput>,
}

/// `POST /cost/purge`: only by id (`$eq` or `$in` on `id`, or `$or` of such `$eq`s).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostPurgeReq {
    /// `"entity/project"`.
    pub project_id: String,
    /// Which costs, by id.
    pub query: Query,
}

/// Response of `/cost/purge` (`{}`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CostPurgeRes {}

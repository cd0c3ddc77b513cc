//! LLM prices (`/cost/*`) and the costs of calls (`include_costs`, PROTOCOL §4.8).
//!
//! Prices are rows of `llm_token_prices`, at the `project` pricing level (what `cost_create`
//! writes) or the `default` level (a server-wide price list; the embedded store ships none,
//! so its prices are exactly those added with `add_cost`). For each model in a call's
//! `summary.usage`, the price chosen is the first by: effective no later than the call's
//! start, then project level over default, then the latest effective date — the Weave
//! server's order.

use std::collections::HashMap;

use rusqlite::{params_from_iter, Connection, Row};
use serde_json::{json, Map, Value};

use super::query::{self, Params, Table};
use crate::error::{Result, WeaveError};
use crate::ids::generate_id;
use crate::schema::*;
use crate::time::Timestamp;

const PROJECT_LEVEL: &str = "project";
const DEFAULT_LEVEL: &str = "default";
const DEFAULT_LEVEL_ID: &str = "default";

/// The fields `/cost/query` can return, in output order.
const QUERY_FIELDS: &[&str] = &[
    "id",
    "llm_id",
    "prompt_token_cost",
    "completion_token_cost",
    "prompt_token_cost_unit",
    "completion_token_cost_unit",
    "effective_date",
    "provider_id",
];

pub(super) fn create(conn: &mut Connection, req: CostCreateReq) -> Result<CostCreateRes> {
    let now = Timestamp::now();
    let tx = conn.transaction()?;
    let mut ids = Vec::with_capacity(req.costs.len());
    for (llm_id, cost) in req.costs {
        if llm_id.is_empty() {
            return Err(WeaveError::invalid_input("cost_create: an llm_id is empty"));
        }
        for (name, v) in [
            ("prompt_token_cost", Some(cost.prompt_token_cost)),
            ("completion_token_cost", Some(cost.completion_token_cost)),
            (
                "cache_read_input_token_cost",
                cost.cache_read_input_token_cost,
            ),
            (
                "cache_creation_input_token_cost",
                cost.cache_creation_input_token_cost,
            ),
        ] {
            if v.is_some_and(|v| !v.is_finite()) {
                return Err(WeaveError::invalid_input(format!(
                    "cost_create: {name} of {llm_id:?} is not a finite number"
                )));
            }
        }
        let id = generate_id();
        tx.prepare_cached(
            "INSERT INTO llm_token_prices (id, pricing_level, pricing_level_id, provider_id, llm_id, effective_date, \
             prompt_token_cost, completion_token_cost, cache_read_input_token_cost, cache_creation_input_token_cost, \
             prompt_token_cost_unit, completion_token_cost_unit, created_by, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        )?
        .execute(rusqlite::params![
            id,
            PROJECT_LEVEL,
            req.project_id,
            cost.provider_id.filter(|p| !p.is_empty()).unwrap_or_else(|| "default".into()),
            llm_id,
            cost.effective_date.unwrap_or(now).as_nanos(),
            cost.prompt_token_cost,
            cost.completion_token_cost,
            cost.cache_read_input_token_cost.unwrap_or(0.0),
            cost.cache_creation_input_token_cost.unwrap_or(0.0),
            cost.prompt_token_cost_unit.filter(|u| !u.is_empty()).unwrap_or_else(|| "USD".into()),
            cost.completion_token_cost_unit.filter(|u| !u.is_empty()).unwrap_or_else(|| "USD".into()),
            req.wb_user_id,
            now.as_nanos(),
        ])?;
        ids.push((id, llm_id));
    }
    tx.commit()?;
    Ok(CostCreateRes { ids })
}

pub(super) fn query(conn: &Connection, req: CostQueryReq) -> Result<CostQueryRes> {
    let fields: Vec<&'static str> = match &req.fields {
        None => QUERY_FIELDS.to_vec(),
        Some(fields) if fields.is_empty() => QUERY_FIELDS.to_vec(),
        Some(fields) => fields
            .iter()
            .map(|f| {
                QUERY_FIELDS
                    .iter()
                    .find(|k| **k == f)
                    .copied()
                    .ok_or_else(|| {
                        WeaveError::invalid_query(format!(
                            "fields: unknown cost field {f:?} (expected one of {})",
                            QUERY_FIELDS.join(", ")
                        ))
                    })
            })
            .collect::<Result<_>>()?,
    };
    let mut params = Params::default();
    let mut sql = format!(
        "SELECT {} FROM llm_token_prices WHERE pricing_level = {} AND pricing_level_id = {}",
        QUERY_FIELDS.join(", "),
        params.bind(PROJECT_LEVEL.to_string()),
        params.bind(req.project_id.clone()),
    );
    query::append_query_sort_page(
        &mut sql,
        Table::Costs,
        req.query.as_ref(),
        req.sort_by.as_deref(),
        req.limit,
        req.offset,
        &mut params,
    )?;
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(params.0.iter()), |r| {
        let has = |f: &str| fields.contains(&f);
        Ok(CostQueryOutput {
            id: if has("id") { r.get(0)? } else { None },
            llm_id: if has("llm_id") { r.get(1)? } else { None },
            prompt_token_cost: if has("prompt_token_cost") {
                r.get(2)?
            } else {
                None
            },
            completion_token_cost: if has("completion_token_cost") {
                r.get(3)?
            } else {
                None
            },
            prompt_token_cost_unit: if has("prompt_token_cost_unit") {
                r.get(4)?
            } else {
                None
            },
            completion_token_cost_unit: if has("completion_token_cost_unit") {
                r.get(5)?
            } else {
                None
            },
            effective_date: if has("effective_date") {
                r.get::<_, Option<i64>>(6)?.map(Timestamp::from_nanos)
            } else {
                None
            },
            provider_id: if has("provider_id") { r.get(7)? } else { None },
        })
    })?;
    Ok(CostQueryRes {
        results: rows.collect::<rusqlite::Result<_>>()?,
    })
}

pub(super) fn purge(conn: &Connection, req: CostPurgeReq) -> Result<CostPurgeRes> {
    let ids = req.query.ids_only(true).ok_or_else(|| {
        WeaveError::invalid_input(
            "costs can only be purged by id: $eq or $in on id, or $or of $eq on id",
        )
    })?;
    conn.prepare_cached(
        "DELETE FROM llm_token_prices WHERE pricing_level = ?1 AND pricing_level_id = ?2 \
         AND id IN (SELECT value FROM json_each(?3))",
    )?
    .execute(rusqlite::params![
        PROJECT_LEVEL,
        req.project_id,
        serde_json::to_string(&ids)?
    ])?;
    Ok(CostPurgeRes {})
}

struct Price {
    pricing_level: String,
    pricing_level_id: String,
    provider_id: String,
    effective_date: Timestamp,
    prompt_token_cost: f64,
    completion_token_cost: f64,
    cache_read_input_token_cost: f64,
    cache_creation_input_token_cost: f64,
    prompt_token_cost_unit: String,
    completion_token_cost_unit: String,
    created_by: Option<String>,
    created_at: Timestamp,
}

impl Price {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<(String, Price)> {
        Ok((
            r.get(0)?,
            Price {
                pricing_level: r.get(1)?,
                pricing_level_id: r.get(2)?,
                provider_id: r.get(3)?,
                effective_date: Timestamp::from_nanos(r.get(4)?),
                prompt_token_cost: r.get(5)?,
                completion_token_cost: r.get(6)?,
                cache_read_input_token_cost: r.get(7)?,
                cache_creation_input_token_cost: r.get(8)?,
                prompt_token_cost_unit: r.get(9)?,
                completion_token_cost_unit: r.get(10)?,
                created_by: r.get(11)?,
                created_at: Timestamp::from_nanos(r.get(12)?),
            },
        ))
    }

    /// Lower ranks first: not in the future, project over default, latest.
    fn rank(&self, started_at: Timestamp, project_id: &str) -> (bool, u8, i64) {
        let level = if self.pricing_level == PROJECT_LEVEL && self.pricing_level_id == project_id {
            0
        } else if self.pricing_level == DEFAULT_LEVEL {
            1
        } else {
            2
        };
        (
            self.effective_date > started_at,
            level,
            -self.effective_date.as_nanos(),
        )
    }
}

/// Python's `int(v)` for a usage count, 0 when it is not a number.
fn count(usage: &Map<String, Value>, key: &str) -> i64 {
    match usage.get(key) {
        Some(Value::Number(n)) => n
            .as_i64()
            .unwrap_or_else(|| n.as_f64().map_or(0, |f| f as i64)),
        Some(Value::String(s)) => s.trim().parse().unwrap_or(0),
        Some(Value::Bool(b)) => *b as i64,
        _ => 0,
    }
}

/// Fills `summary.weave.costs` of each call whose usage has a priced model.
pub(super) fn apply(conn: &Connection, project_id: &str, calls: &mut [CallSchema]) -> Result<()> {
    let mut llm_ids: Vec<String> = Vec::new();
    for call in calls.iter() {
        if let Some(Value::Object(usage)) = call.summary.as_ref().and_then(|s| s.get("usage")) {
            for (llm, u) in usage {
                if u.is_object() && !llm_ids.contains(llm) {
                    llm_ids.push(llm.clone());
                }
            }
        }
    }
    if llm_ids.is_empty() {
        return Ok(());
    }
    let mut prices: HashMap<String, Vec<Price>> = HashMap::new();
    {
        let mut stmt = conn.prepare_cached(
            "SELECT llm_id, pricing_level, pricing_level_id, provider_id, effective_date, prompt_token_cost, \
             completion_token_cost, cache_read_input_token_cost, cache_creation_input_token_cost, \
             prompt_token_cost_unit, completion_token_cost_unit, created_by, created_at \
             FROM llm_token_prices WHERE llm_id IN (SELECT value FROM json_each(?1)) \
             AND ((pricing_level = ?2 AND pricing_level_id = ?3) OR (pricing_level = ?4 AND pricing_level_id = ?5))",
        )?;
        let rows = stmt.query_map(
            rusqlite::params![
                serde_json::to_string(&llm_ids)?,
                PROJECT_LEVEL,
                project_id,
                DEFAULT_LEVEL,
                DEFAULT_LEVEL_ID
            ],
            Price::from_row,
        )?;
        for row in rows {
            let (llm, price) = row?;
            prices.entry(llm).or_default().push(price);
        }
    }
    for call in calls.iter_mut() {
        let started_at = call.started_at;
        let Some(summary) = call.summary.as_mut() else {
            continue;
        };
        let Some(Value::Object(usage)) = summary.get("usage") else {
            continue;
        };
        let mut costs = Map::new();
        for (llm, u) in usage {
            let Value::Object(u) = u else { continue };
            let Some(best) = prices
                .get(llm)
                .and_then(|ps| ps.iter().min_by_key(|p| p.rank(started_at, project_id)))
            else {
                continue;
            };
            let prompt = count(u, "prompt_tokens") + count(u, "input_tokens");
            let completion = count(u, "completion_tokens") + count(u, "output_tokens");
            let cache_read = count(u, "cache_read_input_tokens");
            let cache_creation = count(u, "cache_creation_input_tokens");
            costs.insert(
                llm.clone(),
                json!({
                    "prompt_tokens": prompt,
                    "completion_tokens": completion,
                    "cache_read_input_tokens": cache_read,
                    "cache_creation_input_tokens": cache_creation,
                    "requests": count(u, "requests"),
                    "total_tokens": count(u, "total_tokens"),
                    // Cached input tokens are billed at the cache rates, not the prompt rate.
                    "prompt_tokens_total_cost": (prompt - cache_read - cache_creation) as f64 * best.prompt_token_cost,
                    "completion_tokens_total_cost": completion as f64 * best.completion_token_cost,
                    "cache_read_input_tokens_total_cost": cache_read as f64 * best.cache_read_input_token_cost,
                    "cache_creation_input_tokens_total_cost": cache_creation as f64 * best.cache_creation_input_token_cost,
                    "prompt_token_cost": best.prompt_token_cost,
                    "completion_token_cost": best.completion_token_cost,
                    "cache_read_input_token_cost": best.cache_read_input_token_cost,
                    "cache_creation_input_token_cost": best.cache_creation_input_token_cost,
                    "prompt_token_cost_unit": best.prompt_token_cost_unit,
                    "completion_token_cost_unit": best.completion_token_cost_unit,
                    "effective_date": best.effective_date.to_string(),
                    "provider_id": best.provider_id,
                    "pricing_level": best.pricing_level,
                    "pricing_level_id": best.pricing_level_id,
                    "created_at": best.created_at.to_string(),
                    "created_by": best.created_by,
                }),
            );
        }
        if !costs.is_empty() {
            let weave = summary
                .entry("weave")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(w) = weave {
                w.insert("costs".into(), Value::Object(costs));
            }
        }
    }
    Ok(())
}

//! W&B's GraphQL API behind a W&B trace server (`{wandb_api_url}/graphql`): the API key's
//! default entity and creating a project, which `weave::init` needs as the Python SDK does.
//! The trace server stores calls only for projects that exist in W&B.

use serde_json::Value;

use super::transport::send_once;
use super::RemoteServer;
use crate::error::{Result, WeaveError};

impl RemoteServer {
    /// Runs a W&B GraphQL request (`{wandb_api_url}/graphql`) and returns its `data`.
    fn graphql(&self, query: &str, variables: Value) -> Result<Value> {
        let Some(api) = &self.inner.config.wandb_api_url else {
            return Err(WeaveError::invalid_input(
                "no W&B API is configured (RemoteServerConfig::wandb_api_url; set WANDB_API_KEY)",
            ));
        };
        let mut rb = self
            .inner
            .http
            .post(format!("{api}/graphql"))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(serde_json::to_vec(
                &serde_json::json!({"query": query, "variables": variables}),
            )?);
        if let Some(auth) = &self.inner.auth {
            rb = rb.header(reqwest::header::AUTHORIZATION, auth);
        }
        let body = self.run(send_once("/graphql", rb))??;
        let mut res: Value = serde_json::from_slice(&body)?;
        if let Some(errors) = res.get("errors").filter(|e| !e.is_null()) {
            return Err(WeaveError::invalid_input(format!(
                "W&B API at {api}: {}",
                errors
                    .get(0)
                    .and_then(|e| e.get("message"))
                    .and_then(Value::as_str)
                    .map_or_else(|| errors.to_string(), str::to_string)
            )));
        }
        Ok(res.get_mut("data").map(Value::take).unwrap_or(Value::Null))
    }

    /// The API key's default entity (the W&B `viewer`'s), which `weave::init` uses for a
    /// bare project name, as the Python SDK does.
    pub fn wandb_default_entity(&self) -> Result<String> {
        let data = self.graphql(
            "query DefaultEntity { viewer { username defaultEntity { name } } }",
            Value::Null,
        )?;
        data.pointer("/viewer/defaultEntity/name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .ok_or_else(|| {
                WeaveError::invalid_input(
                    "the W&B API names no default entity for this API key: use \"entity/project\"",
                )
            })
    }

    /// Creates the W&B project `entity/project` unless it exists (Python's
    /// `ensure_project_exists`): a W&B trace server stores calls only for existing projects.
    pub fn wandb_ensure_project(&self, entity: &str, project: &str) -> Result<()> {
        let vars = serde_json::json!({"entityName": entity, "name": project});
        let found = self.graphql(
            "query Project($name: String!, $entityName: String) { \
             project(name: $name, entityName: $entityName) { name } }",
            vars.clone(),
        )?;
        if found.pointer("/project/name").is_some_and(|n| !n.is_null()) {
            return Ok(());
        }
        self.graphql(
            "mutation UpsertModel($name: String!, $entityName: String) { \
             upsertModel(input: {name: $name, entityName: $entityName}) { model { name } } }",
            vars,
        )?;
        Ok(())
    }
}

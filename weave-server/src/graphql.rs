//! The few W&B GraphQL answers an unmodified `weave.init("entity/project")` needs.
//!
//! The Python SDK asks W&B's API (`WANDB_BASE_URL/graphql`) for the viewer's default entity
//! (when the project has none) and whether the project exists, creating it (`upsertModel`)
//! when not. A local server has no accounts: the viewer is the local user, every project
//! exists (a project is made by writing to it, as in the embedded store), and creating one
//! succeeds. Anything else is answered with a GraphQL error naming what is not supported, so a
//! newer client that asks for more fails with a clear message rather than a wrong answer.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::body::{parse, RawBody};
use crate::AppState;

/// A GraphQL request: the query text and its variables.
#[derive(Debug, Deserialize)]
struct GraphqlReq {
    #[serde(default)]
    query: String,
    #[serde(default)]
    variables: Option<Map<String, Value>>,
}

/// `POST /graphql`.
pub async fn graphql(State(state): State<AppState>, RawBody(body): RawBody) -> Response {
    let req: GraphqlReq = match parse(&body) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    Json(answer(
        &req.query,
        req.variables.unwrap_or_default(),
        &state,
    ))
    .into_response()
}

fn var<'a>(vars: &'a Map<String, Value>, name: &str) -> &'a Value {
    vars.get(name).unwrap_or(&Value::Null)
}

/// Whether `query` selects the field `name` (a word followed by `(`, `{` or whitespace).
fn selects(query: &str, name: &str) -> bool {
    query.match_indices(name).any(|(i, _)| {
        let before = query[..i].chars().next_back();
        let after = query[i + name.len()..].chars().next();
        !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
            && !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

fn answer(query: &str, vars: Map<String, Value>, state: &AppState) -> Value {
    let entity = &state.options.default_entity;
    let mut data = Map::new();
    if selects(query, "viewer") {
        data.insert(
            "viewer".into(),
            json!({
                "id": "local-user",
                "username": "local",
                "entity": entity,
                "defaultEntity": { "name": entity },
                "teams": { "edges": [] },
            }),
        );
    }
    if selects(query, "upsertModel") {
        data.insert(
            "upsertModel".into(),
            json!({
                "model": {
                    "name": var(&vars, "name"),
                    "description": var(&vars, "description").as_str().unwrap_or(""),
                    "entityName": var(&vars, "entityName").as_str().unwrap_or(entity),
                },
                "inserted": true,
            }),
        );
    } else if selects(query, "project") {
        data.insert(
            "project".into(),
            json!({
                "name": var(&vars, "name"),
                "entityName": var(&vars, "entityName").as_str().unwrap_or(entity),
            }),
        );
    }
    if selects(query, "serverInfo") {
        data.insert(
            "serverInfo".into(),
            json!({ "frontendHost": "", "latestLocalVersionInfo": null }),
        );
    }
    if data.is_empty() {
        return json!({
            "data": null,
            "errors": [{ "message": "weave serve answers only the W&B GraphQL queries weave.init needs (viewer, project, upsertModel, serverInfo)" }],
        });
    }
    json!({ "data": data })
}

#[cfg(test)]
mod tests {
    use super::selects;

    #[test]
    fn fields_are_matched_as_words() {
        assert!(selects("query { viewer { username } }", "viewer"));
        assert!(selects(
            "query Project($name: String!) { project(name: $name) { name } }",
            "project"
        ));
        assert!(!selects("query { projects { name } }", "project"));
        assert!(!selects("query { myviewer }", "viewer"));
    }
}

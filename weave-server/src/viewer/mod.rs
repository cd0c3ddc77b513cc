//! The trace viewer: pages in the browser for what the store holds, served by `weave serve`
//! itself — no cloud account, no Node.js, nothing to install, and it works offline.
//!
//! Every page is the same small HTML document ([`PAGE`]) with this module's stylesheet and
//! script, embedded in the binary; the script reads the path and draws the page from the
//! server's own protocol routes (`/calls/stream_query`, `/call/read`, `/feedback/create`,
//! `/obj/read`, `/table/query`, …), so the viewer shows exactly what the Weave SDKs see.
//!
//! | path | page |
//! |---|---|
//! | `/` | the projects, with their call counts and latest activity |
//! | `/{entity}/{project}/weave`, `…/weave/calls` | a project's calls: filters, sort, paging, live |
//! | `/{entity}/{project}/r/call/{id}` | the call's trace: tree, waterfall, the call's detail |
//! | `/{entity}/{project}/weave/objects`, `…/objects/{name}/versions/{digest}` | objects, datasets' rows |
//! | `/{entity}/{project}/weave/ops/{name}/versions/{digest}` | an op version and its code |
//!
//! The link paths are the W&B app's, so the links the SDKs print open these pages. A request
//! that does not ask for HTML (no `text/html` in `Accept`: scripts, `curl`) gets the record
//! as JSON instead, as before the viewer existed.

use axum::http::{header, HeaderMap};
use axum::response::{Html, IntoResponse, Response};

/// The page every viewer path answers (the script draws it).
pub const PAGE: &str = include_str!("page.html");
/// The viewer's script.
pub const SCRIPT: &str = include_str!("viewer.js");
/// The viewer's stylesheet.
pub const STYLE: &str = include_str!("viewer.css");

/// Whether the request asks for a page (a browser's `Accept` names `text/html`).
pub fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

/// The viewer's page.
pub async fn page() -> Response {
    ([(header::CACHE_CONTROL, "no-cache")], Html(PAGE)).into_response()
}

/// `/_viewer/viewer.js`.
pub async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        SCRIPT,
    )
        .into_response()
}

/// `/_viewer/viewer.css`.
pub async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        STYLE,
    )
        .into_response()
}

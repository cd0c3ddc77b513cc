//! The embedded store's schema, versioned by SQLite's `user_version`.
//!
//! `MIGRATIONS[i]` upgrades a file from version `i` to `i + 1`. Each runs in its own
//! transaction together with the `user_version` bump, so a crash mid-upgrade leaves the file
//! at the previous version. A file written by a newer weave-rs (a higher version than we
//! know) is refused rather than risked. Never edit a released migration: append a new one.

use rusqlite::Connection;

use crate::error::{Result, WeaveError};

/// The migrations, in order; the schema version is `MIGRATIONS.len()`.
const MIGRATIONS: &[&str] = &[
    // v1: calls and their ref index.
    r#"
    CREATE TABLE calls (
        project_id      TEXT NOT NULL,
        id              TEXT NOT NULL,
        trace_id        TEXT,
        parent_id       TEXT,
        thread_id       TEXT,
        turn_id         TEXT,
        op_name         TEXT,
        display_name    TEXT,
        started_at      INTEGER,   -- ns since the epoch; NULL until the start arrives
        ended_at        INTEGER,   -- ns since the epoch; NULL until the end arrives
        attributes      TEXT,      -- JSON
        inputs          TEXT,      -- JSON
        output          TEXT,      -- JSON
        exception       TEXT,
        summary         TEXT,      -- JSON, as sent with the end
        otel_dump       TEXT,      -- JSON
        wb_user_id      TEXT,
        wb_run_id       TEXT,
        wb_run_step     INTEGER,
        wb_run_step_end INTEGER,
        deleted_at      INTEGER,
        UNIQUE (project_id, id)
    );
    CREATE INDEX calls_project_started ON calls (project_id, started_at);
    CREATE INDEX calls_project_trace ON calls (project_id, trace_id);
    CREATE INDEX calls_project_parent ON calls (project_id, parent_id);
    CREATE INDEX calls_project_op ON calls (project_id, op_name);
    CREATE TABLE call_refs (
        project_id TEXT NOT NULL,
        call_id    TEXT NOT NULL,
        kind       INTEGER NOT NULL,  -- 0 = input, 1 = output
        ref        TEXT NOT NULL,
        PRIMARY KEY (project_id, call_id, kind, ref)
    ) WITHOUT ROWID;
    CREATE INDEX call_refs_by_ref ON call_refs (project_id, ref, kind);
    "#,
    // v2: LLM prices (costs).
    r#"
    CREATE TABLE llm_token_prices (
        id                              TEXT NOT NULL PRIMARY KEY,
        pricing_level                   TEXT NOT NULL,  -- 'project' or 'default'
        pricing_level_id                TEXT NOT NULL,  -- the project id for 'project'
        provider_id                     TEXT NOT NULL,
        llm_id                          TEXT NOT NULL,
        effective_date                  INTEGER NOT NULL,  -- ns since the epoch
        prompt_token_cost               REAL NOT NULL,
        completion_token_cost           REAL NOT NULL,
        cache_read_input_token_cost     REAL NOT NULL DEFAULT 0,
        cache_creation_input_token_cost REAL NOT NULL DEFAULT 0,
        prompt_token_cost_unit          TEXT NOT NULL,
        completion_token_cost_unit      TEXT NOT NULL,
        created_by                      TEXT,
        created_at                      INTEGER NOT NULL
    );
    CREATE INDEX llm_token_prices_by_llm ON llm_token_prices (llm_id, pricing_level, pricing_level_id);
    "#,
    // v3: feedback on calls, objects and other refs.
    r#"
    CREATE TABLE feedback (
        id             TEXT NOT NULL PRIMARY KEY,
        project_id     TEXT NOT NULL,
        weave_ref      TEXT NOT NULL,
        wb_user_id     TEXT NOT NULL,
        creator        TEXT,
        created_at     INTEGER NOT NULL,  -- ns since the epoch
        feedback_type  TEXT NOT NULL,
        payload        TEXT NOT NULL,     -- JSON object
        annotation_ref TEXT,
        runnable_ref   TEXT,
        call_ref       TEXT,
        trigger_ref    TEXT
    );
    CREATE INDEX feedback_project_ref ON feedback (project_id, weave_ref);
    CREATE INDEX feedback_project_type ON feedback (project_id, feedback_type);
    "#,
    // v4: objects (and ops), tables and their rows, files.
    r#"
    CREATE TABLE objects (
        project_id        TEXT NOT NULL,
        kind              TEXT NOT NULL,     -- 'object' or 'op'
        object_id         TEXT NOT NULL,     -- the name
        digest            TEXT NOT NULL,
        version_index     INTEGER NOT NULL,  -- 0-based, in creation order
        base_object_class TEXT,
        leaf_object_class TEXT,
        val               TEXT NOT NULL,     -- JSON
        created_at        INTEGER NOT NULL,
        deleted_at        INTEGER,
        wb_user_id        TEXT,
        PRIMARY KEY (project_id, kind, object_id, digest)
    );
    CREATE INDEX objects_by_name ON objects (project_id, object_id, version_index);
    CREATE INDEX objects_by_digest ON objects (project_id, digest);
    CREATE TABLE table_rows (
        project_id TEXT NOT NULL,
        digest     TEXT NOT NULL,
        val        TEXT NOT NULL,  -- JSON object
        UNIQUE (project_id, digest)
    );
    CREATE TABLE tables (
        project_id  TEXT NOT NULL,
        digest      TEXT NOT NULL,
        row_digests TEXT NOT NULL,  -- JSON array, in order
        PRIMARY KEY (project_id, digest)
    );
    CREATE TABLE files (
        project_id TEXT NOT NULL,
        digest     TEXT NOT NULL,
        name       TEXT NOT NULL,
        content    BLOB NOT NULL,
        PRIMARY KEY (project_id, digest)
    );
    "#,
    // v5: indexes for reading a large store, and fixed planner statistics.
    //
    // - The trace, parent and op indexes gain `started_at`: a trace, a call's children (and
    //   the trace roots, `parent_id IS NULL`) or one op's calls are found and come out in the
    //   default order (`started_at`) straight from the index, so neither a whole trace nor
    //   the first page of an op walks the table.
    // - `calls_project_op_errors` holds only the failed calls: `summary.weave.status ==
    //   "error"` compiles to exactly its condition (`query::ERROR_SQL`, with the
    //   `deleted_at IS NULL` every calls query has), so counting or listing failed calls
    //   (of an op) reads this small index alone. The `started_at IS NOT NULL` of every
    //   calls query is a range on its last column.
    // - `sqlite_stat1` rows for `calls`: without statistics SQLite assumes an equality on
    //   the first column of an index selects ~10 rows, so `project_id = ?` looked selective
    //   and the planner preferred walking `calls_project_started` (which gives the order
    //   for free) over looking up a list of trace or parent ids. These rows describe the
    //   shape of every store instead: one project holds (nearly) every call, an id one
    //   call, a trace ~10, a parent ~5, an op very many (so a list of ops still walks
    //   `calls_project_started` for the first page), failed calls are few. A real ANALYZE
    //   replaces them; a later migration that adds an index on `calls` adds its row.
    r#"
    DROP INDEX calls_project_trace;
    CREATE INDEX calls_project_trace_started ON calls (project_id, trace_id, started_at);
    DROP INDEX calls_project_parent;
    CREATE INDEX calls_project_parent_started ON calls (project_id, parent_id, started_at);
    DROP INDEX calls_project_op;
    CREATE INDEX calls_project_op_started ON calls (project_id, op_name, started_at);
    CREATE INDEX calls_project_op_errors ON calls (project_id, op_name, started_at)
        WHERE exception IS NOT NULL AND exception != '' AND deleted_at IS NULL;
    ANALYZE sqlite_schema;
    DELETE FROM sqlite_stat1 WHERE tbl = 'calls';
    INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES
        ('calls', 'sqlite_autoindex_calls_1', '1000000 1000000 1'),
        ('calls', 'calls_project_started', '1000000 1000000 1'),
        ('calls', 'calls_project_trace_started', '1000000 1000000 10 1'),
        ('calls', 'calls_project_parent_started', '1000000 1000000 5 1'),
        ('calls', 'calls_project_op_started', '1000000 1000000 300000 1'),
        ('calls', 'calls_project_op_errors', '10000 10000 1000 1');
    ANALYZE sqlite_schema;
    "#,
    // v6: the indexes a calls query walks end with `id`, the default order's tiebreak
    // (`started_at, id`), so every call of a project, a trace, a parent or an op comes out of
    // its index in the default order with no sort at all. Before, SQLite sorted each run of
    // equal `started_at` by id in a temporary b-tree: a tenth of the work of iterating a
    // store. (With the whole-store index fully ordered and the others not, the planner also
    // preferred walking the whole store for one op's calls.) The partial index of failed
    // calls is small and keeps its shape.
    r#"
    DROP INDEX calls_project_started;
    CREATE INDEX calls_project_started_id ON calls (project_id, started_at, id);
    DROP INDEX calls_project_trace_started;
    CREATE INDEX calls_project_trace_started_id ON calls (project_id, trace_id, started_at, id);
    DROP INDEX calls_project_parent_started;
    CREATE INDEX calls_project_parent_started_id
        ON calls (project_id, parent_id, started_at, id);
    DROP INDEX calls_project_op_started;
    CREATE INDEX calls_project_op_started_id ON calls (project_id, op_name, started_at, id);
    DELETE FROM sqlite_stat1 WHERE tbl = 'calls' AND idx IN (
        'calls_project_started', 'calls_project_trace_started',
        'calls_project_parent_started', 'calls_project_op_started');
    INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES
        ('calls', 'calls_project_started_id', '1000000 1000000 1 1'),
        ('calls', 'calls_project_trace_started_id', '1000000 1000000 10 1 1'),
        ('calls', 'calls_project_parent_started_id', '1000000 1000000 5 1 1'),
        ('calls', 'calls_project_op_started_id', '1000000 1000000 300000 1 1');
    ANALYZE sqlite_schema;
    "#,
];

/// The schema version this build writes.
pub(crate) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The file's schema version; an error when it is newer than this build knows. Only reads,
/// so it is safe to call before anything (even the journal mode) is changed.
pub(crate) fn check_version(conn: &Connection) -> Result<i64> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if current > SCHEMA_VERSION {
        return Err(WeaveError::backend(format!(
            "the store was written by a newer weave-rs (schema version {current}, this build knows up to {SCHEMA_VERSION}); \
             refusing to open it so no data is lost — upgrade weave-rs"
        )));
    }
    Ok(current)
}

/// Brings the file up to [`SCHEMA_VERSION`].
pub(crate) fn migrate(conn: &mut Connection) -> Result<()> {
    let current = check_version(conn)?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use rusqlite::params_from_iter;

    use super::super::query::{self, Params, ERROR_SQL, STATUS_SQL};
    use super::super::{compile_calls_query, where_clause, SqliteServer};
    use super::MIGRATIONS;
    use crate::query::field;
    use crate::schema::{CallsFilter, CallsQueryReq};

    /// The details of `EXPLAIN QUERY PLAN` of `sql`, one line per step.
    fn plan(server: &SqliteServer, sql: &str, params: &Params) -> String {
        let conn = server.read_conn();
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let rows = stmt
            .query_map(params_from_iter(params.0.iter()), |r| r.get::<_, String>(3))
            .unwrap();
        rows.map(Result::unwrap).collect::<Vec<_>>().join("\n")
    }

    fn calls_plan(server: &SqliteServer, filter: CallsFilter) -> String {
        let mut req = CallsQueryReq::new("e/p");
        req.filter = Some(filter);
        let q = compile_calls_query(&req).unwrap();
        plan(server, &q.sql, &q.params)
    }

    fn stores() -> Vec<(SqliteServer, tempfile::TempDir)> {
        let dir = tempfile::tempdir().unwrap();
        let file = SqliteServer::open(dir.path().join("s.sqlite")).unwrap();
        vec![
            (file, dir),
            (
                SqliteServer::in_memory().unwrap(),
                tempfile::tempdir().unwrap(),
            ),
        ]
    }

    #[test]
    fn traces_and_children_are_read_from_their_indexes() {
        // On the file store's reader (stats loaded on open) and on the in-memory store's one
        // connection (stats reloaded by the migration itself).
        for (server, _dir) in stores() {
            let ids = |n: usize| (0..n).map(|i| format!("id{i}")).collect::<Vec<_>>();
            for n in [1, 2, 50] {
                let p = calls_plan(
                    &server,
                    CallsFilter {
                        trace_ids: Some(ids(n)),
                        ..Default::default()
                    },
                );
                assert!(
                    p.contains(
                        "USING INDEX calls_project_trace_started_id (project_id=? AND trace_id=?"
                    ),
                    "{n} trace ids: {p}"
                );
                let p = calls_plan(
                    &server,
                    CallsFilter {
                        parent_ids: Some(ids(n)),
                        ..Default::default()
                    },
                );
                assert!(
                    p.contains(
                        "USING INDEX calls_project_parent_started_id (project_id=? AND parent_id=?"
                    ),
                    "{n} parent ids: {p}"
                );
            }
            // One trace comes out of the index in order, id tiebreak included: no sort.
            let p = calls_plan(
                &server,
                CallsFilter {
                    trace_ids: Some(ids(1)),
                    ..Default::default()
                },
            );
            assert!(!p.contains("ORDER BY"), "{p}");
            // The roots, and one op's first page, in order from an index too.
            let p = calls_plan(
                &server,
                CallsFilter {
                    trace_roots_only: Some(true),
                    ..Default::default()
                },
            );
            assert!(p.contains("calls_project_parent_started_id"), "{p}");
            let p = calls_plan(
                &server,
                CallsFilter {
                    op_names: Some(vec!["weave:///e/p/op/f:abc".into()]),
                    ..Default::default()
                },
            );
            assert!(p.contains("calls_project_op_started_id"), "{p}");
            assert!(!p.contains("ORDER BY"), "{p}");
            // No filter: the started index, in order, id tiebreak included: no sort.
            let p = calls_plan(&server, CallsFilter::default());
            assert!(p.contains("calls_project_started_id"), "{p}");
            assert!(!p.contains("ORDER BY"), "{p}");
        }
    }

    #[test]
    fn failed_calls_are_counted_from_their_index_alone() {
        for (server, _dir) in stores() {
            for ops in [
                vec!["weave:///e/p/op/f:abc"],
                vec!["weave:///e/p/op/f:abc", "weave:///e/p/op/g:abc"],
            ] {
                let filter = CallsFilter {
                    op_names: Some(ops.iter().map(|s| s.to_string()).collect()),
                    ..Default::default()
                };
                let q = field("summary.weave.status").eq("error").into();
                let mut params = Params::default();
                let wh = where_clause("e/p", Some(&filter), Some(&q), &mut params).unwrap();
                let sql = format!("SELECT COUNT(*) FROM calls WHERE {wh}");
                let p = plan(&server, &sql, &params);
                assert!(
                    p.contains("USING INDEX calls_project_op_errors (project_id=? AND op_name=?"),
                    "{ops:?}: {p}"
                );
                // The plan does not say COVERING, as the partial index's condition names
                // columns it does not hold; but those terms are its condition, not evaluated
                // again, so the table row is only sought lazily (DeferredSeek) and never
                // read: no column of the table's cursor is.
                let conn = server.read_conn();
                let root: i64 = conn
                    .query_row(
                        "SELECT rootpage FROM sqlite_schema WHERE name = 'calls'",
                        [],
                        |r| r.get(0),
                    )
                    .unwrap();
                let mut stmt = conn.prepare(&format!("EXPLAIN {sql}")).unwrap();
                let ops: Vec<(String, i64, i64)> = stmt
                    .query_map(params_from_iter(params.0.iter()), |r| {
                        Ok((r.get(1)?, r.get(2)?, r.get(3)?))
                    })
                    .unwrap()
                    .map(Result::unwrap)
                    .collect();
                let table_cursors: Vec<i64> = ops
                    .iter()
                    .filter(|(op, _, p2)| op == "OpenRead" && *p2 == root)
                    .map(|(_, p1, _)| *p1)
                    .collect();
                let reads: Vec<&(String, i64, i64)> = ops
                    .iter()
                    .filter(|(op, p1, _)| {
                        matches!(op.as_str(), "Column" | "Rowid" | "SeekRowid" | "NotExists")
                            && table_cursors.contains(p1)
                    })
                    .collect();
                assert!(reads.is_empty(), "the table is read: {reads:?} in {ops:?}");
            }
        }
    }

    #[test]
    fn the_error_status_matches_the_index_of_failed_calls() {
        // `status == "error"` compiles to ERROR_SQL, which must be the first case of
        // STATUS_SQL and the condition of the v5 index (a change needs a new migration).
        let inner = &ERROR_SQL[1..ERROR_SQL.len() - 1];
        assert!(STATUS_SQL.starts_with(&format!("(CASE WHEN {inner} THEN 'error' ")));
        assert!(MIGRATIONS[4].contains(&format!("WHERE {inner} AND deleted_at IS NULL;")));
        let mut params = Params::default();
        for q in [
            field("summary.weave.status").eq("error"),
            crate::query::lit("error").eq(field("summary.weave.status")),
        ] {
            let sql = query::query_condition(query::Table::Calls, &q.into(), &mut params).unwrap();
            assert_eq!(sql, ERROR_SQL);
        }
        let other = field("summary.weave.status").eq("running").into();
        let sql = query::query_condition(query::Table::Calls, &other, &mut params).unwrap();
        assert!(sql.contains(STATUS_SQL), "{sql}");
    }
}
/// A query bounded in time reads a range of the start index (the viewer's keyset pages, the
/// CLI's `--since`): see `query::start_bounds`.
#[cfg(test)]
mod time_bounds {
    use super::super::{compile_calls_query, SqliteServer};
    use crate::schema::{CallsQueryReq, SortBy};

    #[test]
    fn time_bounded_queries_read_a_range_of_the_start_index() {
        let dir = tempfile::tempdir().unwrap();
        let server = SqliteServer::open(dir.path().join("s.sqlite")).unwrap();
        let t = r#"{"$literal": "2025-01-01T00:00:00Z"}"#;
        let at = r#"{"$getField": "started_at"}"#;
        for (q, bound) in [
            // The viewer's "Older →" page.
            (
                format!(
                    r#"{{"$and": [{{"$lte": [{at}, {t}]}}, {{"$not": [{{"$and": [{{"$eq": [{at}, {t}]}}, {{"$gte": [{{"$getField": "id"}}, {{"$literal": "abc"}}]}}]}}]}}]}}"#
                ),
                "started_at<?",
            ),
            // `--since`, the literal on either side.
            (format!(r#"{{"$gte": [{at}, {t}]}}"#), "started_at>?"),
            (format!(r#"{{"$gt": [{t}, {at}]}}"#), "started_at<?"),
        ] {
            let mut req = CallsQueryReq::new("e/p");
            req.query = Some(serde_json::from_str(&format!(r#"{{"$expr": {q}}}"#)).unwrap());
            req.sort_by = Some(vec![SortBy::desc("started_at")]);
            req.limit = Some(51);
            let c = compile_calls_query(&req).unwrap();
            let conn = server.read_conn();
            let mut stmt = conn
                .prepare(&format!("EXPLAIN QUERY PLAN {}", c.sql))
                .unwrap();
            let plan: Vec<String> = stmt
                .query_map(rusqlite::params_from_iter(c.params.0.iter()), |r| {
                    r.get::<_, String>(3)
                })
                .unwrap()
                .map(Result::unwrap)
                .collect();
            let plan = plan.join("\n");
            assert!(
                plan.contains("USING INDEX calls_project_started_id") && plan.contains(bound),
                "{q}: {plan}"
            );
            assert!(!plan.contains("TEMP B-TREE"), "{q}: {plan}");
        }
    }
}

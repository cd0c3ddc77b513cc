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

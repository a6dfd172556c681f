//! The index's SQL schema, its versions and forward migrations, and the per-connection
//! settings.
//!
//! Migrations are append-only: never edit a shipped entry of [`MIGRATIONS`], add a new
//! one. The schema version of a database is the number of migrations applied to it
//! (`max(version)` of the `schema_version` table).

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use crate::error::{Error, Result};

use super::db_err;

/// The table's `rank` (for `ORDER BY rank` in ad-hoc SQL): bm25 with the column weights
/// of (name, tags, description, author, content). The engine itself ranks with
/// [`super::rank`], which is faster and keeps the column tiers.
pub(crate) const RANK_FUNCTION: &str = "bm25(20.0, 10.0, 4.0, 2.0, 1.0)";

/// The full-text table as the latest schema defines it. [`super::Index::rebuild`]
/// drops and recreates it from this (a test checks it matches what the migrations
/// produce).
///
/// A regular (content-storing) FTS5 table: `snippet()` needs the text, and the largest
/// column (`content`) is stored nowhere else. Its rowid is the `items` rowid.
/// `prefix = '1 2'` gives the first two keystrokes of a search-as-you-type query
/// (a one- or two-letter prefix that expands to thousands of words) a ready doclist
/// instead of a merge of all those words' doclists (~50 ms → ~14 ms at 100k items), for
/// about +25% index size and +40% rebuild time.
pub(crate) const FTS_CREATE: &str = "CREATE VIRTUAL TABLE items_fts USING fts5(\
     name, tags, description, author, content, \
     tokenize = 'unicode61 remove_diacritics 2', prefix = '1 2')";

/// The secondary indexes of `items` and `item_tags` (as [`MIGRATIONS`] creates them):
/// a rebuild drops them and builds them once after the bulk load. The unique path index
/// stays, it guards the data. A test checks a rebuilt schema equals a migrated one.
pub(crate) const ITEMS_SECONDARY_DROP: &str = "DROP INDEX IF EXISTS items_by_name;
    DROP INDEX IF EXISTS items_by_modified;
    DROP INDEX IF EXISTS items_by_folder;
    DROP INDEX IF EXISTS items_by_author;
    DROP INDEX IF EXISTS items_invalid;
    DROP INDEX IF EXISTS items_stats;
    DROP INDEX IF EXISTS item_tags_by_tag;";

pub(crate) const ITEMS_SECONDARY_CREATE: &str = "CREATE INDEX items_by_name ON items(name_sort, path);
    CREATE INDEX items_by_modified ON items(modified_ms DESC, path);
    CREATE INDEX items_by_folder ON items(folder);
    CREATE INDEX items_by_author ON items(author_lc) WHERE author_lc IS NOT NULL;
    CREATE INDEX items_invalid ON items(path) WHERE valid = 0;
    CREATE INDEX items_stats ON items(encrypted, size);
    CREATE INDEX item_tags_by_tag ON item_tags(tag_lc, tag);";

pub(crate) fn fts_configure_sql() -> String {
    format!("INSERT INTO items_fts(items_fts, rank) VALUES('rank', '{RANK_FUNCTION}');")
}

/// Ordered forward migrations: (description, SQL). Version N = the first N applied.
pub(crate) const MIGRATIONS: &[(&str, &str)] = &[(
    "items, tags, full-text search and state",
    "CREATE TABLE items (
        rowid INTEGER PRIMARY KEY,
        path TEXT NOT NULL,
        folder TEXT NOT NULL,
        name_sort TEXT NOT NULL,
        modified_ms INTEGER NOT NULL,
        size INTEGER NOT NULL DEFAULT 0,
        mtime_ns INTEGER NOT NULL DEFAULT 0,
        meta_mtime_ns INTEGER,
        hash TEXT NOT NULL DEFAULT '',
        valid INTEGER NOT NULL DEFAULT 1,
        encrypted INTEGER NOT NULL DEFAULT 0,
        author_lc TEXT,
        id TEXT,
        name TEXT NOT NULL,
        version TEXT,
        modified TEXT NOT NULL,
        created TEXT,
        error_line INTEGER,
        node_count INTEGER NOT NULL DEFAULT 0,
        author TEXT,
        tags_json TEXT NOT NULL DEFAULT '[]',
        error TEXT,
        description TEXT
    );
    CREATE UNIQUE INDEX items_by_path ON items(path);
    CREATE INDEX items_by_name ON items(name_sort, path);
    CREATE INDEX items_by_modified ON items(modified_ms DESC, path);
    CREATE INDEX items_by_folder ON items(folder);
    CREATE INDEX items_by_author ON items(author_lc) WHERE author_lc IS NOT NULL;
    CREATE INDEX items_invalid ON items(path) WHERE valid = 0;
    CREATE INDEX items_stats ON items(encrypted, size);
    CREATE TABLE item_tags (
        item_rowid INTEGER NOT NULL,
        tag_lc TEXT NOT NULL,
        tag TEXT NOT NULL,
        PRIMARY KEY (item_rowid, tag_lc)
    ) WITHOUT ROWID;
    CREATE INDEX item_tags_by_tag ON item_tags(tag_lc, tag);
    CREATE VIRTUAL TABLE items_fts USING fts5(name, tags, description, author, content, tokenize = 'unicode61 remove_diacritics 2', prefix = '1 2');
    INSERT INTO items_fts(items_fts, rank) VALUES('rank', 'bm25(20.0, 10.0, 4.0, 2.0, 1.0)');
    CREATE TABLE state (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;",
    ),
    (
        "credentials referenced by plain blueprints",
        // The rows come from the files: forgetting every file's state makes the next
        // reconcile read them all again (once), which fills the table.
        "CREATE TABLE item_secret_refs (
        item_rowid INTEGER NOT NULL,
        position INTEGER NOT NULL,
        name TEXT NOT NULL,
        PRIMARY KEY (item_rowid, position)
    ) WITHOUT ROWID;
    CREATE INDEX item_secret_refs_by_name ON item_secret_refs(name);
    UPDATE items SET mtime_ns = -1;",
    ),
];

/// The schema version this binary writes.
pub(crate) const LATEST: i64 = MIGRATIONS.len() as i64;

/// Settings every connection gets. `busy_timeout` is set first (through the API) so
/// that switching to WAL waits for a writer in another process instead of failing.
/// Memory-mapped I/O stays off: at 100k items it measured no faster here, and mapped
/// pages count towards the process's resident memory (~130 MB more after a few
/// searches) where the page cache is capped by `cache_size` (8 MiB per connection).
pub(crate) fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_millis(5000))?;
    conn.set_prepared_statement_cache_capacity(64);
    // `journal_mode` returns a row; WAL is persistent, so after the first connection
    // this is a no-op.
    let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    conn.execute_batch(
        "PRAGMA synchronous = NORMAL;
         PRAGMA foreign_keys = ON;
         PRAGMA cache_size = -8192;
         PRAGMA temp_store = MEMORY;
         PRAGMA mmap_size = 0;
         PRAGMA journal_size_limit = 67108864;",
    )?;
    super::rank::register(conn)
}

fn version_of(conn: &Connection) -> rusqlite::Result<i64> {
    let has_table: Option<i64> = conn
        .query_row("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'schema_version'", [], |r| r.get(0))
        .optional()?;
    if has_table.is_none() {
        return Ok(0);
    }
    conn.query_row("SELECT coalesce(max(version), 0) FROM schema_version", [], |r| r.get(0))
}

fn newer_error(found: i64) -> Error {
    Error::Index(format!(
        "index was written by a newer Blueprint Vault (schema {found}); this version understands up to \
         schema {LATEST}. Update Blueprint Vault, or delete the index to have this version rebuild it"
    ))
}

/// Bring the database to [`LATEST`]: all missing migrations in one transaction. Cheap
/// (one read, no write lock) when the schema is already current.
pub(crate) fn migrate(conn: &mut Connection) -> Result<()> {
    let current = version_of(conn).map_err(db_err)?;
    if current == LATEST {
        return Ok(());
    }
    if current > LATEST {
        return Err(newer_error(current));
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db_err)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_version (
            version INTEGER PRIMARY KEY,
            applied_at TEXT NOT NULL,
            description TEXT NOT NULL
        )",
    )
    .map_err(db_err)?;
    // Another process may have migrated while we waited for the write lock.
    let current = version_of(&tx).map_err(db_err)?;
    if current > LATEST {
        return Err(newer_error(current));
    }
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    for (i, (description, sql)) in MIGRATIONS.iter().enumerate() {
        let version = i as i64 + 1;
        if version <= current {
            continue;
        }
        tx.execute_batch(sql)
            .map_err(|e| Error::Index(format!("migrating the index to schema {version} ({description}): {e}")))?;
        tx.execute(
            "INSERT INTO schema_version(version, applied_at, description) VALUES (?1, ?2, ?3)",
            rusqlite::params![version, now, description],
        )
        .map_err(db_err)?;
    }
    tx.commit().map_err(db_err)?;
    Ok(())
}

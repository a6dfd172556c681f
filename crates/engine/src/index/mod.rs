//! The index: a SQLite database (WAL) caching what the blueprint files say, for listing
//! and search. It is never the source of truth — the library may delete it and rebuild
//! it from the files at any time — and several processes (the desktop app, `bpv` runs)
//! may open the same file at once.
//!
//! - Access goes through a small r2d2 pool; every connection is configured by
//!   [`schema::configure`] (WAL, `synchronous=NORMAL`, 5 s busy timeout, …).
//! - [`schema::MIGRATIONS`] are applied in one transaction at open. An index written by
//!   a newer schema is refused with [`Error::Index`]; a file that is not a SQLite
//!   database, or a damaged one, gives [`Error::Corrupt`] (the caller deletes it and
//!   rebuilds).
//! - Tables: `items` (one row per blueprint, the public [`Item`] plus file state),
//!   `item_tags` (lowercased tags for filters and counts), `items_fts` (FTS5 over name,
//!   tags, description, author and content; `unicode61 remove_diacritics 2`, prefix
//!   indexes for 1 and 2 characters), `state` (small facts), `schema_version`.
//! - Folder and path prefixes are matched with range comparisons on `path`, never LIKE
//!   or GLOB, so `%`, `_` or `*` in a folder name are literal.
//!
//! Search: [`text`] turns the user's words into a safe MATCH expression (and splits
//! scripts written without spaces into characters), [`rank`] is the ranking function
//! (column tiers, one pass, no per-row lookups), snippets are cut in Rust from the page's
//! rows only. See [`Index::search`] for the semantics. `write` explains the rowids.

mod query;
mod rank;
mod schema;
mod secret_refs;
mod text;
mod write;

#[cfg(test)]
mod bench;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use r2d2::{Pool, PooledConnection};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, ErrorCode, OpenFlags};

use crate::error::{Error, Result};
use crate::item::Item;

/// One blueprint as the index stores it.
#[derive(Clone, Debug, PartialEq)]
pub struct IndexDoc {
    /// The public shape (path, id, name, …, error, error_line).
    pub item: Item,
    /// The blueprint file's mtime, ns since the epoch.
    pub mtime_ns: i64,
    /// The companion file's mtime, if there is one.
    pub meta_mtime_ns: Option<i64>,
    /// RFC 3339.
    pub created: Option<String>,
    pub node_count: u32,
    /// Node ids/types/labels and every parameter string, '\n'-joined (searchable).
    pub content: String,
    /// The credentials it references as `${secret:NAME}`, in order (none when encrypted).
    pub secret_refs: Vec<String>,
}

/// What the index last saw of a file, to tell whether it changed.
#[derive(Clone, Debug, PartialEq)]
pub struct FileState {
    pub size: u64,
    pub mtime_ns: i64,
    pub meta_mtime_ns: Option<i64>,
    pub hash: String,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Sort {
    /// Name ascending, case-insensitive, then path.
    #[default]
    Name,
    /// Newest first, then path.
    Modified,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ListQuery {
    /// Items inside this folder, at any depth (a path prefix matched literally, as a
    /// whole folder: `a/b` does not match `a/bc/…`). `None` or `""`: everything.
    pub folder: Option<String>,
    /// All must match, case-insensitive.
    pub tags: Vec<String>,
    /// Case-insensitive equality.
    pub author: Option<String>,
    /// `modified` ≥ this, ms since the epoch.
    pub modified_from: Option<i64>,
    /// `modified` ≤ this, ms since the epoch.
    pub modified_to: Option<i64>,
    pub valid: Option<bool>,
    pub sort: Sort,
    pub offset: usize,
    pub limit: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ItemPage {
    pub items: Vec<Item>,
    /// All items matching the filters, whatever the page.
    pub total: usize,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct SearchQuery {
    pub text: String,
    pub tags: Vec<String>,
    pub folder: Option<String>,
    pub author: Option<String>,
    pub modified_from: Option<i64>,
    pub modified_to: Option<i64>,
    pub offset: usize,
    pub limit: usize,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct SearchHit {
    #[serde(flatten)]
    pub item: Item,
    /// Higher is better; 0 when the query had no searchable words.
    pub score: f64,
    /// A short excerpt with the matched words as `<mark>…</mark>`.
    pub snippet: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SearchPage {
    pub hits: Vec<SearchHit>,
    /// All matches, whatever the page.
    pub total: usize,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct TagCount {
    pub tag: String,
    pub count: u64,
}

/// A folder holding items (at any depth), with their count.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct FolderCount {
    pub path: String,
    pub count: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct IndexStats {
    pub items: u64,
    pub invalid: u64,
    pub encrypted: u64,
    pub bytes: u64,
}

/// Handle on one index file. Cheap to clone (the pool is shared); `Send + Sync`.
#[derive(Clone)]
pub struct Index {
    pool: Pool<SqliteConnectionManager>,
    path: PathBuf,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index").field("path", &self.path).finish_non_exhaustive()
    }
}

const POOL_SIZE: u32 = 4;
/// Files up to this size get a `PRAGMA quick_check` at open (a few ms at most).
const QUICK_CHECK_MAX_BYTES: u64 = 4 << 20;

fn open_flags() -> OpenFlags {
    OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX
}

/// A SQLite error as the engine reports it: damage becomes [`Error::Corrupt`].
pub(crate) fn db_err(e: rusqlite::Error) -> Error {
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) | Some(ErrorCode::DatabaseCorrupt) => {
            Error::Corrupt(format!("the index is damaged ({e}); it can be rebuilt from the files"))
        }
        _ => Error::from(e),
    }
}

fn pool_err(e: r2d2::Error) -> Error {
    let msg = e.to_string();
    if msg.contains("not a database") || msg.contains("malformed") {
        Error::Corrupt(format!("the index is damaged ({msg}); it can be rebuilt from the files"))
    } else {
        Error::from(e)
    }
}

impl Index {
    /// Open (creating it if absent) and migrate the index at `path`.
    pub fn open(path: &Path) -> Result<Index> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| Error::io("cannot create the index folder", parent, e))?;
        }
        // Check and migrate on a connection of our own, so that a damaged file is
        // reported at once instead of as pool timeouts.
        {
            let mut conn = Connection::open_with_flags(path, open_flags()).map_err(db_err)?;
            schema::configure(&conn).map_err(db_err)?;
            conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get::<_, i64>(0)).map_err(db_err)?;
            let small = std::fs::metadata(path).map(|m| m.len() <= QUICK_CHECK_MAX_BYTES).unwrap_or(false);
            if small {
                let verdict: String = conn.query_row("PRAGMA quick_check(1)", [], |r| r.get(0)).map_err(db_err)?;
                if verdict != "ok" {
                    return Err(Error::Corrupt(format!("the index is damaged ({verdict})")));
                }
            }
            schema::migrate(&mut conn)?;
        }
        let manager = SqliteConnectionManager::file(path).with_flags(open_flags()).with_init(|c| schema::configure(c));
        let pool = Pool::builder()
            .max_size(POOL_SIZE)
            .min_idle(Some(0))
            .connection_timeout(Duration::from_secs(15))
            .build_unchecked(manager);
        Ok(Index { pool, path: path.to_path_buf() })
    }

    /// The index file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// SQLite's own consistency check of the index file: "ok" when sound, else what
    /// is wrong (for the reliability suites and diagnostics).
    pub fn integrity_check(&self) -> Result<String> {
        let rows: Vec<String> = {
            let conn = self.conn()?;
            let mut stmt = conn.prepare("PRAGMA integrity_check").map_err(db_err)?;
            stmt.query_map([], |r| r.get(0)).map_err(db_err)?.collect::<rusqlite::Result<_>>().map_err(db_err)?
        };
        Ok(rows.join("; "))
    }

    fn conn(&self) -> Result<PooledConnection<SqliteConnectionManager>> {
        self.pool.get().map_err(pool_err)
    }

    /// Insert or replace `upserts` (by path) and delete `removals` (paths; unknown ones
    /// are ignored), all in one transaction.
    pub fn apply(&self, upserts: &[IndexDoc], removals: &[String]) -> Result<()> {
        crate::watch::own::note_apply(self, upserts, removals);
        let mut conn = self.conn()?;
        write::apply(&mut conn, upserts, removals).map_err(db_err)
    }

    /// Replace the whole content with `docs`, in one transaction.
    pub fn rebuild(&self, docs: &[IndexDoc]) -> Result<()> {
        let mut conn = self.conn()?;
        write::rebuild(&mut conn, docs).map_err(db_err)
    }

    /// Replace the whole content with the documents the iterator yields, chunk by chunk
    /// (ideally in path order, each path once), in one transaction: memory is bounded by
    /// the chunks in flight, and readers see the old index until the commit. An error
    /// from the iterator rolls back and is returned.
    pub fn rebuild_stream(&self, chunks: impl Iterator<Item = Result<Vec<IndexDoc>>>) -> Result<()> {
        let mut conn = self.conn()?;
        write::rebuild_stream(&mut conn, chunks).map_err(|e| match e {
            write::StreamError::Db(e) => db_err(e),
            write::StreamError::Source(e) => e,
        })
    }

    /// What the index knows of every file, by path.
    pub fn file_states(&self) -> Result<HashMap<String, FileState>> {
        query::file_states(&*self.conn()?).map_err(db_err)
    }

    pub fn get(&self, path: &str) -> Result<Option<Item>> {
        query::get(&*self.conn()?, path).map_err(db_err)
    }

    /// One page of items matching the filters, sorted, with the total.
    pub fn list(&self, q: &ListQuery) -> Result<ItemPage> {
        query::list(&*self.conn()?, q).map_err(db_err)
    }

    /// Ranked full-text search.
    ///
    /// Case- and diacritic-insensitive; every term must match in some column; quoted
    /// phrases match as phrases; the last bare term also matches as a prefix unless the
    /// query ends with whitespace; words of scripts written without spaces match as
    /// substrings. Nothing in the text is interpreted as FTS5 syntax. Ranked by bm25
    /// with name > tags > description > author, content. A query without any searchable
    /// word lists the filtered items by name, with score 0.
    pub fn search(&self, q: &SearchQuery) -> Result<SearchPage> {
        query::search(&*self.conn()?, q).map_err(db_err)
    }

    /// Tag counts (case-insensitive; shown in the most common spelling) of the items in
    /// `folder` (any depth) or of all items; by count descending, then tag.
    pub fn tag_counts(&self, folder: Option<&str>) -> Result<Vec<TagCount>> {
        query::tag_counts(&*self.conn()?, folder).map_err(db_err)
    }

    /// Every folder (and ancestor folder) holding items, with its item count at any
    /// depth, sorted by path. Items at the top level belong to no folder.
    pub fn folders(&self) -> Result<Vec<FolderCount>> {
        query::folders(&*self.conn()?).map_err(db_err)
    }

    pub fn stats(&self) -> Result<IndexStats> {
        query::stats(&*self.conn()?).map_err(db_err)
    }

    /// Invalid items, by path.
    pub fn invalid(&self) -> Result<Vec<Item>> {
        query::invalid(&*self.conn()?).map_err(db_err)
    }

    pub fn get_state(&self, key: &str) -> Result<Option<String>> {
        query::get_state(&*self.conn()?, key).map_err(db_err)
    }

    pub fn set_state(&self, key: &str, value: &str) -> Result<()> {
        query::set_state(&*self.conn()?, key, value).map_err(db_err)
    }

    /// Make content the index no longer holds unrecoverable from its files (used when a
    /// blueprint becomes encrypted): merge the full-text segments (an FTS5 delete only
    /// marks terms deleted), rewrite the database without free pages (`VACUUM`), and
    /// checkpoint and truncate the WAL. Costs a full rewrite of the index file.
    pub fn scrub(&self) -> Result<()> {
        let conn = self.conn()?;
        conn.execute_batch(
            "INSERT INTO items_fts(items_fts) VALUES('optimize'); VACUUM; PRAGMA wal_checkpoint(TRUNCATE);",
        )
        .map_err(db_err)
    }
}

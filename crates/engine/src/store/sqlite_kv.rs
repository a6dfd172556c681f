//! [`SqliteKvStore`]: an SQLite key-value store for app data and preferences.
//!
//! * One table `kv` (key, value blob and the entry's fields) plus `schema_version`.
//! * WAL journal, `synchronous=FULL` (these are user preferences: an acknowledged
//!   write must survive a power loss), a `busy_timeout` so concurrent processes
//!   wait for each other instead of failing.
//! * A small r2d2 pool: readers never queue behind one shared connection.
//! * Every write (single save, delete, batch) runs in one `BEGIN IMMEDIATE`
//!   transaction, and its checks (`if_match`, `create_only`, absent deletes) run
//!   inside it, so they are race-free across threads and processes.
//! * Prefixes are matched literally with a key range, never `LIKE`/`GLOB`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use r2d2::{Pool, PooledConnection};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};
use serde_json::{Map, Value};

use super::memory::{build_entry, check_preconditions, decode, encode, now_ms};
use super::{
    BatchOp, Capabilities, Entry, Format, ListPage, Loaded, Page, SaveOptions, SearchHit, Store, StoreInfo, StoreQuery,
    entry_matches,
};
use crate::error::{Error, Result};
use crate::key::{Key, normalise_prefix};

/// The schema this code writes. Bump with a migration in [`migrate`].
pub const SCHEMA_VERSION: i64 = 1;

const POOL_SIZE: u32 = 4;
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Columns of an entry (everything except the value), in [`entry_from_row`] order.
const ENTRY_COLUMNS: &str = "key, size, hash, modified_ms, tags_json, metadata_json, expires_ms, format, compressed";

/// Unexpired rows at `?now` (bound by name).
const LIVE: &str = "(expires_ms IS NULL OR expires_ms > :now)";

/// Rows in the literal prefix range `[:lo, :hi)`; `:hi` NULL means unbounded.
const IN_RANGE: &str = "(key >= :lo AND (:hi IS NULL OR key < :hi))";

/// An SQLite-backed [`Store`] for app data and preferences.
#[derive(Clone, Debug)]
pub struct SqliteKvStore {
    pool: Pool<SqliteConnectionManager>,
    path: PathBuf,
}

impl SqliteKvStore {
    /// Open (creating if needed) the store at `path`. Several handles, in this or
    /// other processes, may open the same file; each sees the others' writes.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteKvStore> {
        let path = path.as_ref().to_path_buf();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| Error::io("creating the folder", parent, e))?;
        }
        // Open and migrate on one direct connection first: a bad path or a database
        // from the future fails here at once (the pool would retry until its timeout).
        let mut first = Connection::open(&path)?;
        configure(&mut first)?;
        migrate(&mut first, &path)?;
        drop(first);
        let manager = SqliteConnectionManager::file(&path).with_init(configure);
        let pool = Pool::builder()
            .max_size(POOL_SIZE)
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(30))
            .build(manager)?;
        Ok(SqliteKvStore { pool, path })
    }

    /// Where the database file lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Remove expired rows for good; returns how many were removed. (Expired rows
    /// are already invisible; this only reclaims their space.)
    pub fn purge_expired(&self) -> Result<usize> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "DELETE FROM kv WHERE expires_ms IS NOT NULL AND expires_ms <= ?1",
            [now_ms().timestamp_millis()],
        )?;
        tx.commit()?;
        Ok(n)
    }

    fn conn(&self) -> Result<PooledConnection<SqliteConnectionManager>> {
        Ok(self.pool.get()?)
    }

    fn live_entries_in(&self, conn: &Connection, prefix: &str, now: i64) -> Result<Vec<Entry>> {
        let (lo, hi) = prefix_range(prefix);
        let sql = format!("SELECT {ENTRY_COLUMNS} FROM kv WHERE {IN_RANGE} AND {LIVE} ORDER BY key");
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(rusqlite::named_params! {":lo": lo, ":hi": hi, ":now": now}, raw_from_row)?;
        let mut out = Vec::new();
        for raw in rows {
            out.push(raw?.into_entry()?);
        }
        Ok(out)
    }
}

/// Per-connection settings: wait for other writers, WAL, durable commits.
fn configure(c: &mut Connection) -> rusqlite::Result<()> {
    c.busy_timeout(BUSY_TIMEOUT)?;
    // WAL is persistent in the file; setting it again is a no-op.
    c.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0))?;
    // These are user preferences: an acknowledged write must survive a power loss.
    c.pragma_update(None, "synchronous", "FULL")?;
    Ok(())
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
         CREATE TABLE IF NOT EXISTS kv (
             key           TEXT PRIMARY KEY NOT NULL,
             value         BLOB NOT NULL,
             size          INTEGER NOT NULL,
             hash          TEXT NOT NULL,
             modified_ms   INTEGER NOT NULL,
             tags_json     TEXT NOT NULL DEFAULT '[]',
             metadata_json TEXT NOT NULL DEFAULT '{}',
             expires_ms    INTEGER,
             format        TEXT,
             compressed    INTEGER NOT NULL DEFAULT 0
         );",
    )?;
    let version: Option<i64> =
        tx.query_row("SELECT MAX(version) FROM schema_version", [], |r| r.get(0)).optional()?.flatten();
    match version {
        None => {
            tx.execute("INSERT INTO schema_version (version) VALUES (?1)", [SCHEMA_VERSION])?;
        }
        Some(v) if v > SCHEMA_VERSION => {
            return Err(Error::Unsupported(format!(
                "{} was written by a newer version of Blueprint Vault (schema {v}, this version knows {SCHEMA_VERSION})",
                path.display()
            )));
        }
        Some(_) => {}
    }
    tx.commit()?;
    Ok(())
}

/// The live entry at `key`, read inside `conn`'s current transaction.
fn live_entry(conn: &Connection, key: &Key, now: i64) -> Result<Option<Entry>> {
    let sql = format!("SELECT {ENTRY_COLUMNS} FROM kv WHERE key = :key AND {LIVE}");
    let raw = conn
        .prepare_cached(&sql)?
        .query_row(rusqlite::named_params! {":key": key.as_str(), ":now": now}, raw_from_row)
        .optional()?;
    match raw {
        Some(raw) => Ok(Some(raw.into_entry()?)),
        None => Ok(None),
    }
}

fn put(conn: &Connection, entry: &Entry, stored: &[u8]) -> Result<()> {
    let tags = serde_json::to_string(&entry.tags).map_err(|e| Error::InvalidArgument(format!("tags: {e}")))?;
    let metadata =
        serde_json::to_string(&entry.metadata).map_err(|e| Error::InvalidArgument(format!("metadata: {e}")))?;
    let size = i64::try_from(entry.size).map_err(|_| Error::InvalidArgument("value too large".into()))?;
    conn.prepare_cached(
        "INSERT OR REPLACE INTO kv (key, value, size, hash, modified_ms, tags_json, metadata_json, expires_ms, format, compressed)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        entry.key,
        stored,
        size,
        entry.hash,
        entry.modified.timestamp_millis(),
        tags,
        metadata,
        entry.expires.map(|e| e.timestamp_millis()),
        entry.format.map(format_name),
        entry.compressed,
    ])?;
    Ok(())
}

/// A row as read, before its JSON and timestamps are checked.
struct RawEntry {
    key: String,
    size: i64,
    hash: String,
    modified_ms: i64,
    tags_json: String,
    metadata_json: String,
    expires_ms: Option<i64>,
    format: Option<String>,
    compressed: bool,
}

fn raw_from_row(r: &Row<'_>) -> rusqlite::Result<RawEntry> {
    Ok(RawEntry {
        key: r.get(0)?,
        size: r.get(1)?,
        hash: r.get(2)?,
        modified_ms: r.get(3)?,
        tags_json: r.get(4)?,
        metadata_json: r.get(5)?,
        expires_ms: r.get(6)?,
        format: r.get(7)?,
        compressed: r.get(8)?,
    })
}

impl RawEntry {
    fn into_entry(self) -> Result<Entry> {
        let corrupt = |what: &str| Error::Corrupt(format!("app data row {:?}: {what}", self.key));
        let size = u64::try_from(self.size).map_err(|_| corrupt("negative size"))?;
        let modified = ms_to_time(self.modified_ms).ok_or_else(|| corrupt("bad modification time"))?;
        let expires = match self.expires_ms {
            Some(ms) => Some(ms_to_time(ms).ok_or_else(|| corrupt("bad expiry time"))?),
            None => None,
        };
        let tags: Vec<String> = serde_json::from_str(&self.tags_json).map_err(|_| corrupt("bad tags"))?;
        let metadata: Map<String, Value> =
            serde_json::from_str(&self.metadata_json).map_err(|_| corrupt("bad metadata"))?;
        let format = match self.format.as_deref() {
            None => None,
            Some(f) => Some(parse_format(f).ok_or_else(|| corrupt("unknown format"))?),
        };
        Ok(Entry {
            key: self.key,
            size,
            hash: self.hash,
            modified,
            tags,
            metadata,
            expires,
            format,
            compressed: self.compressed,
        })
    }
}

fn ms_to_time(ms: i64) -> Option<DateTime<Utc>> {
    DateTime::<Utc>::from_timestamp_millis(ms)
}

fn format_name(f: Format) -> &'static str {
    match f {
        Format::Yaml => "yaml",
        Format::Json => "json",
        Format::Binary => "binary",
    }
}

fn parse_format(s: &str) -> Option<Format> {
    match s {
        "yaml" => Some(Format::Yaml),
        "json" => Some(Format::Json),
        "binary" => Some(Format::Binary),
        _ => None,
    }
}

/// The literal key range `[lo, hi)` holding exactly the keys that start with
/// `prefix` (SQLite's BINARY collation compares UTF-8 bytes, which orders like
/// code points). `hi` is `None` when no upper bound exists.
pub(crate) fn prefix_range(prefix: &str) -> (String, Option<String>) {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        if let Some(next) = next_char(last) {
            chars.push(next);
            return (prefix.to_owned(), Some(chars.into_iter().collect()));
        }
    }
    (prefix.to_owned(), None)
}

fn next_char(c: char) -> Option<char> {
    let mut n = c as u32 + 1;
    if (0xD800..=0xDFFF).contains(&n) {
        n = 0xE000;
    }
    char::from_u32(n)
}

impl Store for SqliteKvStore {
    fn save(&self, key: &Key, data: &[u8], options: &SaveOptions) -> Result<Entry> {
        let stored = encode(data, options.compress)?;
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now = now_ms();
        let current = live_entry(&tx, key, now.timestamp_millis())?;
        check_preconditions(key, current.as_ref(), options)?;
        let entry = build_entry(key, data, options, now);
        put(&tx, &entry, &stored)?;
        tx.commit()?;
        Ok(entry)
    }

    fn load(&self, key: &Key) -> Result<Loaded> {
        let conn = self.conn()?;
        let now = now_ms().timestamp_millis();
        let sql = format!("SELECT {ENTRY_COLUMNS}, value FROM kv WHERE key = :key AND {LIVE}");
        let found = conn
            .prepare_cached(&sql)?
            .query_row(rusqlite::named_params! {":key": key.as_str(), ":now": now}, |r| {
                Ok((raw_from_row(r)?, r.get::<_, Vec<u8>>(9)?))
            })
            .optional()?;
        let Some((raw, stored)) = found else {
            return Err(Error::NotFound(key.to_string()));
        };
        let entry = raw.into_entry()?;
        let data = decode(&stored, entry.compressed, key.as_str())?;
        Ok(Loaded { entry, data })
    }

    fn delete(&self, key: &Key) -> Result<()> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now = now_ms().timestamp_millis();
        let live = live_entry(&tx, key, now)?.is_some();
        // Removes an expired row too (it is already invisible), but reports it absent.
        tx.execute("DELETE FROM kv WHERE key = ?1", [key.as_str()])?;
        tx.commit()?;
        if live { Ok(()) } else { Err(Error::NotFound(key.to_string())) }
    }

    fn exists(&self, key: &Key) -> Result<bool> {
        let conn = self.conn()?;
        let sql = format!("SELECT 1 FROM kv WHERE key = :key AND {LIVE}");
        let found = conn
            .prepare_cached(&sql)?
            .query_row(rusqlite::named_params! {":key": key.as_str(), ":now": now_ms().timestamp_millis()}, |_| Ok(()))
            .optional()?;
        Ok(found.is_some())
    }

    fn list(&self, prefix: &str, page: Page) -> Result<ListPage> {
        let prefix = normalise_prefix(prefix)?;
        let (lo, hi) = prefix_range(&prefix);
        let now = now_ms().timestamp_millis();
        let limit = match page.limit {
            Some(l) => i64::try_from(l).unwrap_or(i64::MAX),
            None => -1,
        };
        let offset = i64::try_from(page.offset).unwrap_or(i64::MAX);
        let mut conn = self.conn()?;
        // One read transaction: the total and the page come from the same snapshot.
        let tx = conn.transaction()?;
        let total: i64 = tx
            .prepare_cached(&format!("SELECT COUNT(*) FROM kv WHERE {IN_RANGE} AND {LIVE}"))?
            .query_row(rusqlite::named_params! {":lo": lo, ":hi": hi, ":now": now}, |r| r.get(0))?;
        let mut entries = Vec::new();
        {
            let sql = format!(
                "SELECT {ENTRY_COLUMNS} FROM kv WHERE {IN_RANGE} AND {LIVE} ORDER BY key LIMIT :limit OFFSET :offset"
            );
            let mut stmt = tx.prepare_cached(&sql)?;
            let rows = stmt.query_map(
                rusqlite::named_params! {":lo": lo, ":hi": hi, ":now": now, ":limit": limit, ":offset": offset},
                raw_from_row,
            )?;
            for raw in rows {
                entries.push(raw?.into_entry()?);
            }
        }
        tx.commit()?;
        Ok(ListPage { entries, total: usize::try_from(total).unwrap_or(0) })
    }

    fn search(&self, query: &StoreQuery) -> Result<Vec<SearchHit>> {
        let prefix = normalise_prefix(&query.prefix)?;
        let conn = self.conn()?;
        let entries = self.live_entries_in(&conn, &prefix, now_ms().timestamp_millis())?;
        Ok(entries
            .into_iter()
            .filter(|e| entry_matches(e, query))
            .skip(query.offset)
            .take(query.limit.unwrap_or(usize::MAX))
            .map(|entry| SearchHit { entry, score: 1.0, snippet: None })
            .collect())
    }

    fn info(&self) -> Result<StoreInfo> {
        let conn = self.conn()?;
        let (entries, bytes): (i64, i64) = conn.query_row(
            &format!("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM kv WHERE {LIVE}"),
            rusqlite::named_params! {":now": now_ms().timestamp_millis()},
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(StoreInfo {
            backend: "sqlite-kv".into(),
            location: Some(self.path.display().to_string()),
            entries: u64::try_from(entries).unwrap_or(0),
            bytes: u64::try_from(bytes).unwrap_or(0),
        })
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            batch: true,
            compress: true,
            expiration: true,
            full_text_search: false,
            metadata: true,
            tags: true,
            durable: true,
            watch: false,
            encrypt: false,
            formats: vec![Format::Yaml, Format::Json, Format::Binary],
        }
    }

    fn batch(&self, ops: &[BatchOp]) -> Result<()> {
        if ops.is_empty() {
            return Ok(());
        }
        // Compress before taking the write lock.
        let mut prepared = Vec::with_capacity(ops.len());
        for op in ops {
            prepared.push(match op {
                BatchOp::Put { data, options, .. } => Some(encode(data, options.compress)?),
                BatchOp::Delete { .. } => None,
            });
        }
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now = now_ms();
        let now_ms_i = now.timestamp_millis();
        for (op, stored) in ops.iter().zip(prepared) {
            // Each check sees the effect of the ops before it (same transaction).
            let current = live_entry(&tx, op.key(), now_ms_i)?;
            match op {
                BatchOp::Put { key, data, options } => {
                    check_preconditions(key, current.as_ref(), options)?;
                    let entry = build_entry(key, data, options, now);
                    put(&tx, &entry, &stored.unwrap_or_default())?;
                }
                BatchOp::Delete { key } => {
                    if current.is_none() {
                        // Dropping `tx` rolls everything back.
                        return Err(Error::NotFound(key.to_string()));
                    }
                    tx.execute("DELETE FROM kv WHERE key = ?1", [key.as_str()])?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_range_bounds() {
        assert_eq!(prefix_range("ab"), ("ab".into(), Some("ac".into())));
        assert_eq!(prefix_range("%"), ("%".into(), Some("&".into())));
        assert_eq!(prefix_range("a\u{D7FF}"), ("a\u{D7FF}".into(), Some("a\u{E000}".into())));
        assert_eq!(prefix_range("a\u{10FFFF}"), ("a\u{10FFFF}".into(), Some("b".into())));
        assert_eq!(prefix_range("\u{10FFFF}"), ("\u{10FFFF}".into(), None));
        assert_eq!(prefix_range(""), (String::new(), None));
    }

    #[test]
    fn schema_and_pragmas() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteKvStore::open(dir.path().join("sub/app.db")).unwrap();
        let conn = s.conn().unwrap();
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        assert_eq!(mode.to_lowercase(), "wal");
        let sync: i64 = conn.query_row("PRAGMA synchronous", [], |r| r.get(0)).unwrap();
        assert_eq!(sync, 2, "synchronous=FULL");
        let v: i64 = conn.query_row("SELECT version FROM schema_version", [], |r| r.get(0)).unwrap();
        assert_eq!(v, SCHEMA_VERSION);
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.db");
        {
            let s = SqliteKvStore::open(&path).unwrap();
            s.conn().unwrap().execute("UPDATE schema_version SET version = 99", []).unwrap();
        }
        assert_eq!(SqliteKvStore::open(&path).unwrap_err().code(), "unsupported");
    }

    #[test]
    fn unopenable_path_fails_fast() {
        let dir = tempfile::tempdir().unwrap();
        let started = std::time::Instant::now();
        // A folder is not a database file.
        assert!(SqliteKvStore::open(dir.path()).is_err());
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn literal_prefixes() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteKvStore::open(dir.path().join("app.db")).unwrap();
        for k in ["%a", "_b", "xa", "xb", "a%", "ab"] {
            s.save(&Key::new(k).unwrap(), b"v", &SaveOptions::default()).unwrap();
        }
        let keys = |p: &str| s.list(p, Page::ALL).unwrap().entries.into_iter().map(|e| e.key).collect::<Vec<_>>();
        assert_eq!(keys("%"), ["%a"]);
        assert_eq!(keys("_"), ["_b"]);
        assert_eq!(keys("a%"), ["a%"]);
        assert_eq!(keys("x"), ["xa", "xb"]);
        assert_eq!(keys("").len(), 6);
    }

    #[test]
    fn purge_expired_reclaims() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteKvStore::open(dir.path().join("app.db")).unwrap();
        let past = SaveOptions { expiration: Some(Utc::now() - chrono::Duration::seconds(5)), ..Default::default() };
        s.save(&Key::new("old").unwrap(), b"v", &past).unwrap();
        s.save(&Key::new("new").unwrap(), b"v", &SaveOptions::default()).unwrap();
        assert_eq!(s.purge_expired().unwrap(), 1);
        assert_eq!(s.info().unwrap().entries, 1);
    }
}

//! Writing: incremental `apply` and the full `rebuild`.
//!
//! ## Row ids
//! An item's rowid (shared by `items`, `item_tags` and `items_fts`) carries the number
//! of tokens in its name in its high bits: `rowid = name_tokens << 40 | seq`. The rank
//! function needs the name's length for every matching row, and reading it from the
//! rowid is free where FTS5's per-row column-size lookup costs about a third of a
//! common word's ranking. An item whose name changes length gets a new rowid. A side
//! effect: the tie-break on rowid puts shorter names first.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, Statement, TransactionBehavior, params};

use super::IndexDoc;
use super::schema;
use super::text::{count_tokens, prepare};

/// Bits of a rowid below the name-length bucket.
pub(crate) const SEQ_BITS: u32 = 40;
const MAX_BUCKET: i64 = 255;

/// The name-length bucket of an item: the number of tokens of its name (as indexed),
/// capped.
pub(crate) fn name_bucket(name: &str) -> i64 {
    i64::try_from(count_tokens(&prepare(name))).unwrap_or(MAX_BUCKET).min(MAX_BUCKET)
}

/// The name length encoded in a rowid (see the module docs).
pub(crate) fn name_tokens_of(rowid: i64) -> i64 {
    rowid >> SEQ_BITS
}

/// The parent folder of a path ('' at the top level).
pub(crate) fn folder_of(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(folder, _)| folder)
}

/// Lowercase form used for case-insensitive comparisons (tags, author, name sorting).
pub(crate) fn fold(s: &str) -> String {
    s.trim().to_lowercase()
}

/// `modified` as ms since the epoch; falls back to the file mtimes when it does not
/// parse.
fn modified_ms(doc: &IndexDoc) -> i64 {
    match chrono::DateTime::parse_from_rfc3339(&doc.item.modified) {
        Ok(t) => t.timestamp_millis(),
        Err(_) => doc.meta_mtime_ns.map_or(doc.mtime_ns, |m| m.max(doc.mtime_ns)).div_euclid(1_000_000),
    }
}

/// Tags as stored in the full-text table.
fn tags_text(tags: &[String]) -> String {
    tags.join(", ")
}

/// Prepared statements for writing rows.
///
/// The relational rows (items, tags) of a batch are written first and the full-text
/// rows after them: a statement that opens a statement journal makes FTS5 flush its
/// in-memory index (`xSavepoint`), so interleaving the two would flush after every
/// document and merge thousands of tiny segments.
struct Writer<'c> {
    item: Statement<'c>,
    tag: Statement<'c>,
    fts: Statement<'c>,
    secret_ref: Statement<'c>,
}

impl<'c> Writer<'c> {
    fn new(conn: &'c Connection) -> rusqlite::Result<Self> {
        Ok(Writer {
            item: conn.prepare(
                "INSERT INTO items (rowid, path, folder, id, name, name_sort, description, author, author_lc, \
                 version, tags_json, size, mtime_ns, meta_mtime_ns, hash, modified, modified_ms, created, valid, \
                 error, error_line, encrypted, node_count) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, \
                 ?21, ?22, ?23)",
            )?,
            tag: conn.prepare("INSERT OR IGNORE INTO item_tags (item_rowid, tag_lc, tag) VALUES (?1, ?2, ?3)")?,
            fts: conn.prepare(
                "INSERT INTO items_fts (rowid, name, tags, description, author, content) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?,
            secret_ref: conn
                .prepare("INSERT OR IGNORE INTO item_secret_refs (item_rowid, position, name) VALUES (?1, ?2, ?3)")?,
        })
    }

    /// Insert the item row and its tags. The caller has removed any previous ones.
    fn write_item(&mut self, rowid: i64, doc: &IndexDoc) -> rusqlite::Result<()> {
        let it = &doc.item;
        let tags_json = serde_json::to_string(&it.tags).unwrap_or_else(|_| "[]".to_owned());
        let size = i64::try_from(it.size).unwrap_or(i64::MAX);
        self.item.execute(params![
            rowid,
            it.path,
            folder_of(&it.path),
            it.id,
            it.name,
            fold(&it.name),
            it.description,
            it.author,
            it.author.as_deref().map(fold),
            it.version,
            tags_json,
            size,
            doc.mtime_ns,
            doc.meta_mtime_ns,
            it.hash,
            it.modified,
            modified_ms(doc),
            doc.created,
            it.valid,
            it.error,
            it.error_line,
            it.encrypted,
            doc.node_count,
        ])?;
        for tag in &it.tags {
            let lc = fold(tag);
            if !lc.is_empty() {
                self.tag.execute(params![rowid, lc, tag.trim()])?;
            }
        }
        for (position, name) in doc.secret_refs.iter().enumerate() {
            self.secret_ref.execute(params![rowid, position as i64, name])?;
        }
        Ok(())
    }

    /// Insert the full-text row. The caller has removed any previous one.
    fn write_fts(&mut self, rowid: i64, doc: &IndexDoc) -> rusqlite::Result<()> {
        let it = &doc.item;
        self.fts.execute(params![
            rowid,
            prepare(&it.name),
            prepare(&tags_text(&it.tags)),
            prepare(it.description.as_deref().unwrap_or("")),
            prepare(it.author.as_deref().unwrap_or("")),
            prepare(&doc.content),
        ])?;
        Ok(())
    }
}

/// The last doc for each path (a path given twice: the later one wins), in input order.
fn last_per_path(docs: &[IndexDoc]) -> Vec<&IndexDoc> {
    let mut last: HashMap<&str, usize> = HashMap::with_capacity(docs.len());
    for (i, d) in docs.iter().enumerate() {
        last.insert(d.item.path.as_str(), i);
    }
    docs.iter().enumerate().filter(|(i, d)| last.get(d.item.path.as_str()) == Some(i)).map(|(_, d)| d).collect()
}

pub(crate) fn apply(conn: &mut Connection, upserts: &[IndexDoc], removals: &[String]) -> rusqlite::Result<()> {
    let upserts = last_per_path(upserts);
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut find = tx.prepare_cached("SELECT rowid FROM items WHERE path = ?1")?;
        let mut del_item = tx.prepare_cached("DELETE FROM items WHERE rowid = ?1")?;
        let mut del_tags = tx.prepare_cached("DELETE FROM item_tags WHERE item_rowid = ?1")?;
        let mut del_secret_refs = tx.prepare_cached("DELETE FROM item_secret_refs WHERE item_rowid = ?1")?;
        let mut del_fts = tx.prepare_cached("DELETE FROM items_fts WHERE rowid = ?1")?;
        let mut last_seq = tx.prepare_cached("SELECT max(rowid) FROM items WHERE rowid >= ?1 AND rowid < ?2")?;
        let mut writer = Writer::new(&tx)?;
        // Relational rows first, full-text rows after (see `Writer`).
        let mut fts_gone: Vec<i64> = Vec::new();
        let mut fts_new: Vec<(i64, &IndexDoc)> = Vec::with_capacity(upserts.len());
        let mut forget = |path: &str| -> rusqlite::Result<Option<i64>> {
            let rowid = find.query_row([path], |r| r.get::<_, i64>(0)).optional()?;
            if let Some(rowid) = rowid {
                del_tags.execute([rowid])?;
                del_secret_refs.execute([rowid])?;
                del_item.execute([rowid])?;
                fts_gone.push(rowid);
            }
            Ok(rowid)
        };
        for path in removals {
            forget(path)?;
        }
        for doc in upserts {
            let old = forget(&doc.item.path)?;
            let bucket = name_bucket(&doc.item.name);
            let rowid = match old {
                Some(rowid) if name_tokens_of(rowid) == bucket => rowid,
                _ => {
                    let lo = bucket << SEQ_BITS;
                    let max: Option<i64> = last_seq.query_row([lo, (bucket + 1) << SEQ_BITS], |r| r.get(0))?;
                    max.map_or(lo + 1, |m| m + 1)
                }
            };
            writer.write_item(rowid, doc)?;
            fts_new.push((rowid, doc));
        }
        fts_gone.sort_unstable();
        fts_gone.dedup();
        for rowid in fts_gone {
            del_fts.execute([rowid])?;
        }
        fts_new.sort_unstable_by_key(|(rowid, _)| *rowid);
        for (rowid, doc) in fts_new {
            writer.write_fts(rowid, doc)?;
        }
    }
    tx.commit()
}

pub(crate) fn rebuild(conn: &mut Connection, docs: &[IndexDoc]) -> rusqlite::Result<()> {
    // Path order (the unique path index then only appends).
    let mut docs: Vec<IndexDoc> = last_per_path(docs).into_iter().cloned().collect();
    docs.sort_unstable_by(|a, b| a.item.path.cmp(&b.item.path));
    let mut chunks = Vec::new();
    while !docs.is_empty() {
        let rest = docs.split_off(docs.len().min(REBUILD_CHUNK));
        chunks.push(std::mem::replace(&mut docs, rest));
    }
    rebuild_stream(conn, chunks.into_iter().map(Ok::<_, std::convert::Infallible>)).map_err(|e| match e {
        StreamError::Db(e) => e,
        StreamError::Source(never) => match never {},
    })
}

/// Documents per chunk of a streamed rebuild: large enough that the full-text table gets
/// few segments to merge (one per chunk), small enough that a few chunks in flight stay
/// a few tens of MB.
pub(crate) const REBUILD_CHUNK: usize = 2048;

/// Why a streamed rebuild stopped: the database, or the source of the documents.
#[derive(Debug)]
pub(crate) enum StreamError<E> {
    Db(rusqlite::Error),
    Source(E),
}

impl<E> From<rusqlite::Error> for StreamError<E> {
    fn from(e: rusqlite::Error) -> Self {
        StreamError::Db(e)
    }
}

/// Replace the whole content with the documents of `chunks`, in one transaction (a
/// reader sees the old index or the new one, never a mix). Documents should come in
/// path order with each path once (the unique path index then only appends); only one
/// chunk is held here at a time, so memory is bounded by the producer's chunks in flight,
/// not by the library's size. A source error rolls everything back.
pub(crate) fn rebuild_stream<E>(
    conn: &mut Connection,
    chunks: impl Iterator<Item = Result<Vec<IndexDoc>, E>>,
) -> Result<(), StreamError<E>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Emptying tables without WHERE takes SQLite's truncate path; recreating the
    // full-text table is much faster than deleting its rows one by one. While loading,
    // FTS5 buffers a chunk in memory and does not merge segments; one 'optimize' at the
    // end writes the final b-tree. The secondary indexes of `items` are dropped and
    // built once after the load (a sort each, cheaper than 100k random b-tree inserts).
    tx.execute_batch(&format!(
        "PRAGMA cache_size = -32768;
         DELETE FROM items; DELETE FROM item_tags; DELETE FROM item_secret_refs; DROP TABLE IF EXISTS items_fts;
         {}; {}
         INSERT INTO items_fts(items_fts, rank) VALUES('hashsize', 33554432);
         INSERT INTO items_fts(items_fts, rank) VALUES('automerge', 0);
         {}",
        schema::FTS_CREATE,
        schema::fts_configure_sql(),
        schema::ITEMS_SECONDARY_DROP,
    ))?;
    let result = (|| -> Result<(), StreamError<E>> {
        let mut writer = Writer::new(&tx)?;
        let mut next_seq: HashMap<i64, i64> = HashMap::new();
        for chunk in chunks {
            let chunk = chunk.map_err(StreamError::Source)?;
            let mut by_rowid: Vec<(i64, &IndexDoc)> = Vec::with_capacity(chunk.len());
            for doc in &chunk {
                let bucket = name_bucket(&doc.item.name);
                let seq = next_seq.entry(bucket).or_insert(0);
                *seq += 1;
                let rowid = (bucket << SEQ_BITS) | *seq;
                writer.write_item(rowid, doc)?;
                by_rowid.push((rowid, doc));
            }
            // FTS5 flushes its in-memory index whenever a rowid is not larger than the
            // previous one: insert each chunk in rowid order (one flush per chunk).
            by_rowid.sort_unstable_by_key(|(rowid, _)| *rowid);
            for (rowid, doc) in by_rowid {
                writer.write_fts(rowid, doc)?;
            }
        }
        tx.execute_batch(&format!(
            "{}
             INSERT INTO items_fts(items_fts) VALUES('optimize');
             INSERT INTO items_fts(items_fts, rank) VALUES('automerge', 4);
             INSERT INTO items_fts(items_fts, rank) VALUES('hashsize', 8388608);
             ANALYZE items; ANALYZE item_tags;",
            schema::ITEMS_SECONDARY_CREATE
        ))?;
        Ok(())
    })();
    let restore = tx.execute_batch("PRAGMA cache_size = -8192;");
    result?;
    restore?;
    tx.commit()?;
    Ok(())
}

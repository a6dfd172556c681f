//! Writing: incremental `apply` and the full `rebuild`.

use rusqlite::{Connection, OptionalExtension, Statement, TransactionBehavior, params};

use super::schema;
use super::text::prepare;
use super::IndexDoc;

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

const ITEM_COLUMNS: &str = "path, folder, id, name, name_sort, description, author, author_lc, version, \
     tags_json, size, mtime_ns, meta_mtime_ns, hash, modified, modified_ms, created, valid, error, error_line, \
     encrypted, node_count";
const ITEM_VALUES: &str = "?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22";

fn insert_item_sql(upsert: bool) -> String {
    let mut sql = format!("INSERT INTO items ({ITEM_COLUMNS}) VALUES ({ITEM_VALUES})");
    if upsert {
        sql.push_str(" ON CONFLICT(path) DO UPDATE SET ");
        let sets: Vec<String> =
            ITEM_COLUMNS.split(", ").filter(|c| *c != "path").map(|c| format!("{c} = excluded.{c}")).collect();
        sql.push_str(&sets.join(", "));
    }
    sql.push_str(" RETURNING rowid");
    sql
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
}

impl<'c> Writer<'c> {
    fn new(conn: &'c Connection, upsert: bool) -> rusqlite::Result<Self> {
        Ok(Writer {
            item: conn.prepare(&insert_item_sql(upsert))?,
            tag: conn.prepare("INSERT OR IGNORE INTO item_tags (item_rowid, tag_lc, tag) VALUES (?1, ?2, ?3)")?,
            fts: conn.prepare(
                "INSERT INTO items_fts (rowid, name, tags, description, author, content) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?,
        })
    }

    /// Insert (or, when upserting, update) the item row and insert its tags; returns
    /// its rowid. The caller has removed any previous tags.
    fn write_item(&mut self, doc: &IndexDoc) -> rusqlite::Result<i64> {
        let it = &doc.item;
        let tags_json = serde_json::to_string(&it.tags).unwrap_or_else(|_| "[]".to_owned());
        let size = i64::try_from(it.size).unwrap_or(i64::MAX);
        let rowid: i64 = self.item.query_row(
            params![
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
            ],
            |r| r.get(0),
        )?;
        for tag in &it.tags {
            let lc = fold(tag);
            if !lc.is_empty() {
                self.tag.execute(params![rowid, lc, tag.trim()])?;
            }
        }
        Ok(rowid)
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

pub(crate) fn apply(conn: &mut Connection, upserts: &[IndexDoc], removals: &[String]) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut find = tx.prepare_cached("SELECT rowid FROM items WHERE path = ?1")?;
        let mut del_item = tx.prepare_cached("DELETE FROM items WHERE rowid = ?1")?;
        let mut del_tags = tx.prepare_cached("DELETE FROM item_tags WHERE item_rowid = ?1")?;
        let mut del_fts = tx.prepare_cached("DELETE FROM items_fts WHERE rowid = ?1")?;
        let mut writer = Writer::new(&tx, true)?;
        // Full-text rows to delete, and to (re)insert.
        let mut fts_gone: Vec<i64> = Vec::new();
        let mut fts_new: Vec<(i64, &IndexDoc)> = Vec::new();
        for path in removals {
            if let Some(rowid) = find.query_row([path], |r| r.get::<_, i64>(0)).optional()? {
                del_tags.execute([rowid])?;
                del_item.execute([rowid])?;
                fts_gone.push(rowid);
            }
        }
        for doc in upserts {
            if let Some(rowid) = find.query_row([&doc.item.path], |r| r.get::<_, i64>(0)).optional()? {
                del_tags.execute([rowid])?;
                fts_gone.push(rowid);
            }
            let rowid = writer.write_item(doc)?;
            fts_new.push((rowid, doc));
        }
        fts_gone.sort_unstable();
        fts_gone.dedup();
        for rowid in fts_gone {
            del_fts.execute([rowid])?;
        }
        // A path given twice: its row was updated in place, only the last doc counts.
        let mut last: std::collections::HashMap<i64, &IndexDoc> = std::collections::HashMap::new();
        for (rowid, doc) in fts_new {
            last.insert(rowid, doc);
        }
        let mut last: Vec<(i64, &IndexDoc)> = last.into_iter().collect();
        last.sort_unstable_by_key(|(rowid, _)| *rowid);
        for (rowid, doc) in last {
            writer.write_fts(rowid, doc)?;
        }
    }
    tx.commit()
}

pub(crate) fn rebuild(conn: &mut Connection, docs: &[IndexDoc]) -> rusqlite::Result<()> {
    // Insert in path order (the unique path index then only appends), the last doc of
    // a duplicated path winning.
    let mut order: Vec<usize> = (0..docs.len()).collect();
    order.sort_by(|a, b| docs[*a].item.path.cmp(&docs[*b].item.path));
    order = order
        .iter()
        .enumerate()
        .filter(|(n, i)| order.get(n + 1).is_none_or(|j| docs[*j].item.path != docs[**i].item.path))
        .map(|(_, i)| *i)
        .collect();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let t0 = std::time::Instant::now();
    // Emptying tables without WHERE takes SQLite's truncate path; recreating the
    // full-text table is much faster than deleting its rows one by one. While loading,
    // FTS5 buffers up to 64 MiB in memory and does not merge segments; one 'optimize'
    // at the end writes the final b-tree.
    tx.execute_batch(&format!(
        "DELETE FROM items; DELETE FROM item_tags; DROP TABLE IF EXISTS items_fts; {}; {}
         INSERT INTO items_fts(items_fts, rank) VALUES('hashsize', 67108864);
         INSERT INTO items_fts(items_fts, rank) VALUES('automerge', 0);
         PRAGMA cache_size = -65536;",
        schema::FTS_CREATE,
        schema::fts_configure_sql()
    ))?;
    {
        let mut writer = Writer::new(&tx, false)?;
        let mut rowids = Vec::with_capacity(order.len());
        for &i in &order {
            rowids.push(writer.write_item(&docs[i])?);
        }
        eprintln!("items {:?}", t0.elapsed());
        for (&i, rowid) in order.iter().zip(rowids) {
            writer.write_fts(rowid, &docs[i])?;
        }
    }
    eprintln!("insert {:?}", t0.elapsed());
    tx.execute_batch("INSERT INTO items_fts(items_fts) VALUES('optimize');
        INSERT INTO items_fts(items_fts, rank) VALUES('automerge', 4);
        INSERT INTO items_fts(items_fts, rank) VALUES('hashsize', 8388608);
        PRAGMA cache_size = -8192;")?;
    eprintln!("optimize {:?}", t0.elapsed());
    tx.execute_batch("ANALYZE items; ANALYZE item_tags;")?;
    eprintln!("analyze {:?}", t0.elapsed());
    tx.commit()?;
    eprintln!("commit {:?}", t0.elapsed());
    Ok(())
}

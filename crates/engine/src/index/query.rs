//! Reading: lookups, filtered lists, ranked search, counts.

use std::collections::{BTreeMap, HashMap};

use rusqlite::types::{Type, Value};
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};

use super::rank;
use super::text::{clean_snippet, match_expression};
use super::write::fold;
use super::{
    FileState, FolderCount, IndexStats, ItemPage, ListQuery, SearchHit, SearchPage, SearchQuery, Sort, TagCount,
};
use crate::item::Item;

/// The `items` columns [`item_from_row`] reads, in order (table alias `i`).
const ITEM_SELECT: &str = "i.path, i.id, i.name, i.description, i.tags_json, i.author, i.version, i.modified, \
     i.size, i.hash, i.encrypted, i.valid, i.error, i.error_line";
const ITEM_SELECT_LEN: usize = 14;

fn item_from_row(row: &Row<'_>) -> rusqlite::Result<Item> {
    let tags_json: String = row.get(4)?;
    let tags: Vec<String> = serde_json::from_str(&tags_json)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(4, Type::Text, Box::new(e)))?;
    let size: i64 = row.get(8)?;
    Ok(Item {
        path: row.get(0)?,
        id: row.get(1)?,
        name: row.get(2)?,
        description: row.get(3)?,
        tags,
        author: row.get(5)?,
        version: row.get(6)?,
        modified: row.get(7)?,
        size: u64::try_from(size).unwrap_or(0),
        hash: row.get(9)?,
        encrypted: row.get(10)?,
        valid: row.get(11)?,
        error: row.get(12)?,
        error_line: row.get(13)?,
    })
}

/// `[lo, hi)` bounds of the paths inside `folder` (any depth), compared bytewise:
/// `a/b` → `["a/b/", "a/b0")` ('0' follows '/'). `None` for the whole library.
pub(crate) fn folder_bounds(folder: &str) -> Option<(String, String)> {
    let f = folder.trim_matches('/');
    if f.is_empty() {
        return None;
    }
    Some((format!("{f}/"), format!("{f}0")))
}

fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn to_usize(n: i64) -> usize {
    usize::try_from(n).unwrap_or(0)
}

/// WHERE clauses (on alias `i`) and their parameters, in order.
#[derive(Default)]
struct Filters {
    clauses: Vec<&'static str>,
    params: Vec<Value>,
}

impl Filters {
    fn new(
        folder: Option<&str>,
        tags: &[String],
        author: Option<&str>,
        from: Option<i64>,
        to: Option<i64>,
        valid: Option<bool>,
    ) -> Filters {
        let mut f = Filters::default();
        if let Some((lo, hi)) = folder.and_then(folder_bounds) {
            f.clauses.push("i.path >= ? AND i.path < ?");
            f.params.push(Value::Text(lo));
            f.params.push(Value::Text(hi));
        }
        let mut seen = Vec::new();
        for tag in tags {
            let lc = fold(tag);
            if lc.is_empty() || seen.contains(&lc) {
                continue;
            }
            seen.push(lc.clone());
            f.clauses.push("i.rowid IN (SELECT item_rowid FROM item_tags WHERE tag_lc = ?)");
            f.params.push(Value::Text(lc));
        }
        if let Some(author) = author {
            f.clauses.push("i.author_lc = ?");
            f.params.push(Value::Text(fold(author)));
        }
        if let Some(from) = from {
            f.clauses.push("i.modified_ms >= ?");
            f.params.push(Value::Integer(from));
        }
        if let Some(to) = to {
            f.clauses.push("i.modified_ms <= ?");
            f.params.push(Value::Integer(to));
        }
        if let Some(valid) = valid {
            f.clauses.push("i.valid = ?");
            f.params.push(Value::Integer(i64::from(valid)));
        }
        f
    }

    fn is_empty(&self) -> bool {
        self.clauses.is_empty()
    }

    /// " AND c1 AND c2…" (or "").
    fn and_sql(&self) -> String {
        self.clauses.iter().map(|c| format!(" AND {c}")).collect()
    }

    /// " WHERE c1 AND c2…" (or "").
    fn where_sql(&self) -> String {
        if self.clauses.is_empty() { String::new() } else { format!(" WHERE {}", self.clauses.join(" AND ")) }
    }
}

pub(crate) fn get(conn: &Connection, path: &str) -> rusqlite::Result<Option<Item>> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {ITEM_SELECT} FROM items i WHERE i.path = ?1"))?;
    stmt.query_row([path], item_from_row).optional()
}

pub(crate) fn file_states(conn: &Connection) -> rusqlite::Result<HashMap<String, FileState>> {
    let mut stmt = conn.prepare_cached("SELECT path, size, mtime_ns, meta_mtime_ns, hash FROM items")?;
    let rows = stmt.query_map([], |r| {
        let size: i64 = r.get(1)?;
        Ok((
            r.get::<_, String>(0)?,
            FileState { size: u64::try_from(size).unwrap_or(0), mtime_ns: r.get(2)?, meta_mtime_ns: r.get(3)?, hash: r.get(4)? },
        ))
    })?;
    rows.collect()
}

pub(crate) fn list(conn: &Connection, q: &ListQuery) -> rusqlite::Result<ItemPage> {
    let filters = Filters::new(q.folder.as_deref(), &q.tags, q.author.as_deref(), q.modified_from, q.modified_to, q.valid);
    list_filtered(conn, &filters, q.sort, q.offset, q.limit)
}

fn list_filtered(
    conn: &Connection,
    filters: &Filters,
    sort: Sort,
    offset: usize,
    limit: usize,
) -> rusqlite::Result<ItemPage> {
    let where_sql = filters.where_sql();
    let total: i64 = conn
        .prepare_cached(&format!("SELECT count(*) FROM items i{where_sql}"))?
        .query_row(params_from_iter(&filters.params), |r| r.get(0))?;
    let total = to_usize(total);
    if limit == 0 || offset >= total {
        return Ok(ItemPage { items: Vec::new(), total });
    }
    let order = match sort {
        Sort::Name => "i.name_sort, i.path",
        Sort::Modified => "i.modified_ms DESC, i.path",
    };
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {ITEM_SELECT} FROM items i{where_sql} ORDER BY {order} LIMIT ? OFFSET ?"))?;
    let mut params = filters.params.clone();
    params.push(Value::Integer(to_i64(limit)));
    params.push(Value::Integer(to_i64(offset)));
    let items = stmt.query_map(params_from_iter(&params), item_from_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(ItemPage { items, total })
}

/// Tokens of the snippet excerpt.
const SNIPPET_TOKENS: u32 = 12;

pub(crate) fn search(conn: &Connection, q: &SearchQuery) -> rusqlite::Result<SearchPage> {
    let filters = Filters::new(q.folder.as_deref(), &q.tags, q.author.as_deref(), q.modified_from, q.modified_to, None);
    let Some(expr) = match_expression(&q.text) else {
        let page = list_filtered(conn, &filters, Sort::Name, q.offset, q.limit)?;
        let hits = page.items.into_iter().map(|item| SearchHit { item, score: 0.0, snippet: None }).collect();
        return Ok(SearchPage { hits, total: page.total });
    };
    let and_sql = filters.and_sql();
    let from = if filters.is_empty() {
        "items_fts"
    } else {
        "items_fts JOIN items i ON i.rowid = items_fts.rowid"
    };
    let mut params = Vec::with_capacity(filters.params.len() + 3);
    params.push(Value::Text(expr.clone()));
    params.extend(filters.params.iter().cloned());
    let total: i64 = conn
        .prepare_cached(&format!("SELECT count(*) FROM {from} WHERE items_fts MATCH ?{and_sql}"))?
        .query_row(params_from_iter(&params), |r| r.get(0))?;
    let total = to_usize(total);
    if q.limit == 0 || q.offset >= total {
        return Ok(SearchPage { hits: Vec::new(), total });
    }
    // The page: SQLite keeps only the best offset+limit rows while scanning, and
    // nothing but the rank is computed for the others.
    params.push(Value::Integer(to_i64(q.limit)));
    params.push(Value::Integer(to_i64(q.offset)));
    let page: Vec<(i64, f64)> = conn
        .prepare_cached(&format!(
            "SELECT items_fts.rowid, {rank}(items_fts) AS score FROM {from} \
             WHERE items_fts MATCH ?{and_sql} ORDER BY score DESC, items_fts.rowid LIMIT ? OFFSET ?",
            rank = rank::FUNCTION_NAME
        ))?
        .query_map(params_from_iter(&params), |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    // Items and snippets for the page only.
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {ITEM_SELECT}, snippet(items_fts, -1, '<mark>', '</mark>', '…', {SNIPPET_TOKENS}) \
         FROM items_fts JOIN items i ON i.rowid = items_fts.rowid \
         WHERE items_fts MATCH ?1 AND items_fts.rowid = ?2"
    ))?;
    let mut hits = Vec::with_capacity(page.len());
    for (rowid, score) in page {
        let hit = stmt
            .query_row(params![expr, rowid], |r| {
                let item = item_from_row(r)?;
                let snippet: Option<String> = r.get(ITEM_SELECT_LEN)?;
                Ok(SearchHit { item, score, snippet: snippet.map(|s| clean_snippet(&s)).filter(|s| !s.is_empty()) })
            })
            .optional()?;
        hits.extend(hit);
    }
    Ok(SearchPage { hits, total })
}

pub(crate) fn tag_counts(conn: &Connection, folder: Option<&str>) -> rusqlite::Result<Vec<TagCount>> {
    let bounds = folder.and_then(folder_bounds);
    let (sql, params): (&str, Vec<String>) = match bounds {
        None => ("SELECT tag_lc, tag, count(*) FROM item_tags GROUP BY tag_lc, tag", vec![]),
        Some((lo, hi)) => (
            "SELECT t.tag_lc, t.tag, count(*) FROM items i JOIN item_tags t ON t.item_rowid = i.rowid \
             WHERE i.path >= ?1 AND i.path < ?2 GROUP BY t.tag_lc, t.tag",
            vec![lo, hi],
        ),
    };
    // tag_lc → (count, most common spelling, its count)
    let mut merged: BTreeMap<String, (u64, String, u64)> = BTreeMap::new();
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(params_from_iter(&params))?;
    while let Some(r) = rows.next()? {
        let lc: String = r.get(0)?;
        let tag: String = r.get(1)?;
        let n = u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0);
        let e = merged.entry(lc).or_insert_with(|| (0, tag.clone(), 0));
        e.0 += n;
        // Rows come sorted by spelling: on a tie the first (smallest) spelling stays.
        if n > e.2 {
            e.1 = tag;
            e.2 = n;
        }
    }
    let mut out: Vec<(String, TagCount)> =
        merged.into_iter().map(|(lc, (count, tag, _))| (lc, TagCount { tag, count })).collect();
    out.sort_by(|a, b| b.1.count.cmp(&a.1.count).then_with(|| a.0.cmp(&b.0)).then_with(|| a.1.tag.cmp(&b.1.tag)));
    Ok(out.into_iter().map(|(_, t)| t).collect())
}

pub(crate) fn folders(conn: &Connection) -> rusqlite::Result<Vec<FolderCount>> {
    let mut stmt = conn.prepare_cached("SELECT folder, count(*) FROM items GROUP BY folder")?;
    let mut rows = stmt.query([])?;
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    while let Some(r) = rows.next()? {
        let folder: String = r.get(0)?;
        let n = u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0);
        let mut rest = folder.as_str();
        while !rest.is_empty() {
            *counts.entry(rest.to_owned()).or_insert(0) += n;
            rest = rest.rsplit_once('/').map_or("", |(parent, _)| parent);
        }
    }
    Ok(counts.into_iter().map(|(path, count)| FolderCount { path, count }).collect())
}

pub(crate) fn stats(conn: &Connection) -> rusqlite::Result<IndexStats> {
    conn.prepare_cached(
        "SELECT count(*), coalesce(sum(valid = 0), 0), coalesce(sum(encrypted <> 0), 0), coalesce(sum(size), 0) \
         FROM items",
    )?
    .query_row([], |r| {
        let n = |i: usize| -> rusqlite::Result<u64> { Ok(u64::try_from(r.get::<_, i64>(i)?).unwrap_or(0)) };
        Ok(IndexStats { items: n(0)?, invalid: n(1)?, encrypted: n(2)?, bytes: n(3)? })
    })
}

pub(crate) fn invalid(conn: &Connection) -> rusqlite::Result<Vec<Item>> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {ITEM_SELECT} FROM items i WHERE i.valid = 0 ORDER BY i.path"))?;
    stmt.query_map([], item_from_row)?.collect()
}

pub(crate) fn get_state(conn: &Connection, key: &str) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached("SELECT value FROM state WHERE key = ?1")?.query_row([key], |r| r.get(0)).optional()
}

pub(crate) fn set_state(conn: &Connection, key: &str, value: &str) -> rusqlite::Result<()> {
    conn.prepare_cached("INSERT INTO state (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value")?
        .execute(params![key, value])?;
    Ok(())
}

//! Reading: lookups, filtered lists, ranked search, counts.

use std::collections::{BTreeMap, HashMap, HashSet};

use rusqlite::types::{Type, Value};
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};

use super::rank;
use super::text::parse_query;
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
    /// A folder filter is the first clause (two parameters).
    has_folder: bool,
    /// Folded, distinct tags (each one clause and parameter, right after the folder's).
    tags: Vec<String>,
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
            f.has_folder = true;
        }
        for tag in tags {
            let lc = fold(tag);
            if lc.is_empty() || f.tags.contains(&lc) {
                continue;
            }
            f.tags.push(lc.clone());
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

    /// " WHERE c1 AND c2…" (or "").
    fn where_sql(&self) -> String {
        if self.clauses.is_empty() { String::new() } else { format!(" WHERE {}", self.clauses.join(" AND ")) }
    }

    /// `SELECT <what> FROM … WHERE …` over the matching items, planned so that no
    /// filter needs a lookup of the full row when it can be avoided (the planner
    /// cannot tell a folder's or a tag's size from its bounds):
    /// - only tags: read `item_tags` alone;
    /// - a folder: walk the path index over the folder's range, checking tags against
    ///   the tag lists (both on the index entry).
    ///
    /// `what` is `count(*)` or `rowid`.
    fn select(&self, what: &str) -> String {
        let only_tags = !self.tags.is_empty() && self.clauses.len() == self.tags.len();
        if only_tags {
            let what = if what == "rowid" { "t.item_rowid" } else { what };
            let more =
                " AND t.item_rowid IN (SELECT item_rowid FROM item_tags WHERE tag_lc = ?)".repeat(self.tags.len() - 1);
            return format!("SELECT {what} FROM item_tags t WHERE t.tag_lc = ?{more}");
        }
        let what = if what == "rowid" { "i.rowid" } else { what };
        let hint = if self.has_folder { " INDEXED BY items_by_path" } else { "" };
        format!("SELECT {what} FROM items i{hint}{}", self.where_sql())
    }
}

pub(crate) fn get(conn: &Connection, path: &str) -> rusqlite::Result<Option<Item>> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {ITEM_SELECT} FROM items i WHERE i.path = ?1"))?;
    stmt.query_row([path], item_from_row).optional()
}

pub(crate) fn file_states(conn: &Connection) -> rusqlite::Result<HashMap<String, FileState>> {
    let n: i64 = conn.prepare_cached("SELECT count(*) FROM items")?.query_row([], |r| r.get(0))?;
    let mut out = HashMap::with_capacity(to_usize(n));
    let mut stmt = conn.prepare_cached("SELECT path, size, mtime_ns, meta_mtime_ns, hash FROM items")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let size: i64 = r.get(1)?;
        out.insert(
            r.get::<_, String>(0)?,
            FileState {
                size: u64::try_from(size).unwrap_or(0),
                mtime_ns: r.get(2)?,
                meta_mtime_ns: r.get(3)?,
                hash: r.get(4)?,
            },
        );
    }
    Ok(out)
}

pub(crate) fn list(conn: &Connection, q: &ListQuery) -> rusqlite::Result<ItemPage> {
    let filters =
        Filters::new(q.folder.as_deref(), &q.tags, q.author.as_deref(), q.modified_from, q.modified_to, q.valid);
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
    let total: i64 =
        conn.prepare_cached(&filters.select("count(*)"))?.query_row(params_from_iter(&filters.params), |r| r.get(0))?;
    let total = to_usize(total);
    if limit == 0 || offset >= total {
        return Ok(ItemPage { items: Vec::new(), total });
    }
    let (order, index) = match sort {
        Sort::Name => ("i.name_sort, i.path", "items_by_name"),
        Sort::Modified => ("i.modified_ms DESC, i.path", "items_by_modified"),
    };
    // Plan: walking the sort index and checking the filters on each row reads about
    // (offset+limit)·all/total rows; collecting the matches and sorting them reads
    // `total` and sorts them. The planner cannot know `total`; we just counted it.
    let mut hint = "";
    if !filters.is_empty() {
        let all: i64 = conn.prepare_cached("SELECT count(*) FROM items")?.query_row([], |r| r.get(0))?;
        let walk = offset.saturating_add(limit) as f64 * all as f64 / total.max(1) as f64;
        if walk <= total as f64 * 4.0 {
            hint = index;
        }
    }
    let from = if hint.is_empty() { "items i".to_owned() } else { format!("items i INDEXED BY {hint}") };
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {ITEM_SELECT} FROM {from}{where_sql} ORDER BY {order} LIMIT ? OFFSET ?"))?;
    let mut params = filters.params.clone();
    params.push(Value::Integer(to_i64(limit)));
    params.push(Value::Integer(to_i64(offset)));
    let items = stmt.query_map(params_from_iter(&params), item_from_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(ItemPage { items, total })
}

pub(crate) fn search(conn: &Connection, q: &SearchQuery) -> rusqlite::Result<SearchPage> {
    let filters = Filters::new(q.folder.as_deref(), &q.tags, q.author.as_deref(), q.modified_from, q.modified_to, None);
    let Some(parsed) = parse_query(&q.text) else {
        let page = list_filtered(conn, &filters, Sort::Name, q.offset, q.limit)?;
        let hits = page.items.into_iter().map(|item| SearchHit { item, score: 0.0, snippet: None }).collect();
        return Ok(SearchPage { hits, total: page.total });
    };
    // Filters: the rowids they allow, checked by the rank function with a hash lookup
    // (cheaper than joining every match with `items`).
    let _allow = if filters.is_empty() {
        None
    } else {
        let allowed: HashSet<i64> = conn
            .prepare_cached(&filters.select("rowid"))?
            .query_map(params_from_iter(&filters.params), |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        if allowed.is_empty() {
            return Ok(SearchPage { hits: Vec::new(), total: 0 });
        }
        Some(rank::Allow::new(allowed))
    };
    // One scan ranks every match; SQLite keeps only the best offset+limit rows, and
    // the rank function counts the rows it ranked, which is the total. (With a limit of
    // 0, SQLite would not scan at all: ask for one row.)
    let keep = q.offset.saturating_add(q.limit).max(1);
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT rowid, {rank}(items_fts, ?3) AS score FROM items_fts WHERE items_fts MATCH ?1 \
         ORDER BY score DESC, rowid LIMIT ?2",
        rank = rank::FUNCTION_NAME
    ))?;
    rank::take_ranked();
    let ranked: rusqlite::Result<Vec<(i64, f64)>> = stmt
        .query_map(
            params![parsed.expr, to_i64(keep), parsed.prefix_phrase.map_or(-1, |p| i64::try_from(p).unwrap_or(-1))],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .and_then(|rows| rows.collect());
    let total = usize::try_from(rank::take_ranked()).unwrap_or(usize::MAX);
    let ranked = ranked?;
    // Items and snippets for the page only.
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {ITEM_SELECT}, f.name, f.tags, f.description, f.author, f.content \
         FROM items i JOIN items_fts f ON f.rowid = i.rowid WHERE i.rowid = ?1"
    ))?;
    let mut hits = Vec::new();
    for (rowid, score) in ranked.into_iter().skip(q.offset).take(q.limit) {
        if score <= rank::EXCLUDED {
            // Only rows outside the filters are left.
            break;
        }
        let hit = stmt
            .query_row([rowid], |r| {
                let item = item_from_row(r)?;
                let mut texts: [String; 5] = Default::default();
                for (k, t) in texts.iter_mut().enumerate() {
                    *t = r.get::<_, Option<String>>(ITEM_SELECT_LEN + k)?.unwrap_or_default();
                }
                let columns: [&str; 5] = [&texts[0], &texts[1], &texts[2], &texts[3], &texts[4]];
                // Nothing to highlight: the description, else the name.
                let snippet = parsed.snippet(&columns, &[2, 0]);
                Ok(SearchHit { item, score, snippet })
            })
            .optional()?;
        hits.extend(hit);
    }
    let total = if hits.is_empty() { total } else { total.max(q.offset.saturating_add(hits.len())) };
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
    // A scan of the small `items_stats` index, plus the partial `items_invalid` one.
    conn.prepare_cached(
        "SELECT count(*), (SELECT count(*) FROM items WHERE valid = 0), coalesce(sum(encrypted <> 0), 0), \
         coalesce(sum(size), 0) FROM items",
    )?
    .query_row([], |r| {
        let n = |i: usize| -> rusqlite::Result<u64> { Ok(u64::try_from(r.get::<_, i64>(i)?).unwrap_or(0)) };
        Ok(IndexStats { items: n(0)?, invalid: n(1)?, encrypted: n(2)?, bytes: n(3)? })
    })
}

pub(crate) fn invalid(conn: &Connection) -> rusqlite::Result<Vec<Item>> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {ITEM_SELECT} FROM items i WHERE i.valid = 0 ORDER BY i.path"))?;
    stmt.query_map([], item_from_row)?.collect()
}

pub(crate) fn get_state(conn: &Connection, key: &str) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached("SELECT value FROM state WHERE key = ?1")?.query_row([key], |r| r.get(0)).optional()
}

pub(crate) fn set_state(conn: &Connection, key: &str, value: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO state (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    )?
    .execute(params![key, value])?;
    Ok(())
}

//! `bpv_rank(items_fts)`: the FTS5 auxiliary function that ranks search results.
//!
//! Why not the built-in `bm25()`: (1) it sums the weighted term frequencies of all
//! columns *before* saturating them, so a document repeating a word many times in its
//! content can outrank one that has the word in its name, whatever the weights; (2) it
//! reads every matching row's column sizes, which at 100k matches of a common word costs
//! ~1 µs per row — far over the search latency budget.
//!
//! The score, for each query phrase `p` with inverse document frequency `idf(p)`:
//!
//! ```text
//! Σ_p idf(p) · Σ_col W[col] · sat(tf(p, col))      sat(tf) = tf·(k1+1) / (tf + k1·norm)
//! ```
//!
//! Each column saturates on its own (a BM25F-like shape, k1 = 1.2, so `sat` ≤ 2.2), and
//! the column weights (name 20, tags 10, description 4, author 2, content 1) make
//! tiers: a single mention in the name outweighs any number of mentions in the content,
//! a tag outweighs the description and so on down. Length normalisation (`norm`,
//! b = 0.5 against the average name) applies to the name only — the column users judge
//! a result by — and the name's length comes from the rowid (see `write`), so ranking
//! reads nothing but the position lists FTS5 already has. A phrase that starts the name
//! gets a small bonus. The IDF pass (one scan per phrase) is skipped for single-phrase
//! queries, where it cannot change the order.
//!
//! Higher is better; always positive for a match.

use std::collections::HashSet;
use std::ffi::{c_int, c_void};
use std::ptr;

use rusqlite::Connection;
use rusqlite::ffi;

/// Column weights: name, tags, description, author, content (the table's column order).
const WEIGHTS: [f64; 5] = [20.0, 10.0, 4.0, 2.0, 1.0];
const K1: f64 = 1.2;
/// Length normalisation strength for the name column.
const B_NAME: f64 = 0.5;
/// Added (times the phrase's IDF) when the name starts with the phrase.
const NAME_START_BONUS: f64 = 2.0;

pub(crate) const FUNCTION_NAME: &str = "bpv_rank";

/// Positions of one phrase counted per row in the content column (the last and largest
/// one): `sat()` gains little beyond a few mentions, and stopping early saves walking
/// long position lists.
const MAX_CONTENT_TF: u32 = 8;

thread_local! {
    /// Rows ranked on this thread since the last [`take_ranked`]. SQLite evaluates
    /// `bpv_rank` on the calling thread, once for every row that passed the WHERE
    /// clause, so after a full `ORDER BY bpv_rank(…) LIMIT n` scan this is the number of
    /// matches — the search total, without a second (count) scan.
    static RANKED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Reset the per-thread count of ranked rows, returning its previous value.
pub(crate) fn take_ranked() -> u64 {
    RANKED.with(|c| c.replace(0))
}

thread_local! {
    /// When set, the rows `bpv_rank` accepts (by rowid); others get [`EXCLUDED`] and
    /// are not counted. Lets a filtered search check its filters with a hash lookup
    /// per match instead of a join into `items` (see [`Allow`]).
    static ALLOWED: std::cell::RefCell<Option<HashSet<i64>>> = const { std::cell::RefCell::new(None) };
}

/// The score of a row outside the [`Allow`] set: below every real score (which are
/// positive).
pub(crate) const EXCLUDED: f64 = -1.0;

/// Restricts `bpv_rank` on this thread to a set of rowids while alive.
pub(crate) struct Allow(());

impl Allow {
    pub(crate) fn new(rowids: HashSet<i64>) -> Allow {
        ALLOWED.with(|a| *a.borrow_mut() = Some(rowids));
        Allow(())
    }
}

impl Drop for Allow {
    fn drop(&mut self) {
        ALLOWED.with(|a| *a.borrow_mut() = None);
    }
}

/// Is this row outside the current [`Allow`] set?
fn excluded(rowid: i64) -> bool {
    ALLOWED.with(|a| a.try_borrow().ok().is_some_and(|set| set.as_ref().is_some_and(|set| !set.contains(&rowid))))
}

/// Per-query data, computed on the first row and kept as FTS5 auxdata.
struct QueryData {
    idf: Vec<f64>,
    avg_name_len: f64,
}

fn sqlite_err(rc: c_int, msg: &str) -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(ffi::Error::new(rc), Some(msg.to_owned()))
}

/// Register `bpv_rank` on this connection.
pub(crate) fn register(conn: &Connection) -> rusqlite::Result<()> {
    // SAFETY: the statement is prepared, bound, stepped and finalized on this
    // connection's own handle, which outlives the calls. `fts5(?1)` writes the
    // `fts5_api` pointer into `api` (pointer type "fts5_api_ptr"), valid for as long as
    // the connection is open. `xCreateFunction` copies the name and keeps the function
    // pointer, which is a plain `extern "C"` fn with no user data to free.
    unsafe {
        let db = conn.handle();
        let mut stmt: *mut ffi::sqlite3_stmt = ptr::null_mut();
        let rc = ffi::sqlite3_prepare_v2(db, c"SELECT fts5(?1)".as_ptr(), -1, &mut stmt, ptr::null_mut());
        if rc != ffi::SQLITE_OK {
            return Err(sqlite_err(rc, "cannot reach the FTS5 API"));
        }
        let mut api: *mut ffi::fts5_api = ptr::null_mut();
        let rc = ffi::sqlite3_bind_pointer(
            stmt,
            1,
            (&mut api as *mut *mut ffi::fts5_api).cast::<c_void>(),
            c"fts5_api_ptr".as_ptr(),
            None,
        );
        if rc == ffi::SQLITE_OK {
            ffi::sqlite3_step(stmt);
        }
        ffi::sqlite3_finalize(stmt);
        if api.is_null() || (*api).iVersion < 2 {
            return Err(sqlite_err(ffi::SQLITE_ERROR, "FTS5 is not available"));
        }
        let Some(create) = (*api).xCreateFunction else {
            return Err(sqlite_err(ffi::SQLITE_ERROR, "FTS5 cannot register functions"));
        };
        let rc = create(api, c"bpv_rank".as_ptr(), ptr::null_mut(), Some(bpv_rank), None);
        if rc != ffi::SQLITE_OK {
            return Err(sqlite_err(rc, "cannot register bpv_rank"));
        }
    }
    Ok(())
}

unsafe extern "C" fn free_query_data(p: *mut c_void) {
    if !p.is_null() {
        // SAFETY: `p` came from `Box::into_raw` in `query_data` and SQLite calls this
        // destructor exactly once.
        drop(unsafe { Box::from_raw(p.cast::<QueryData>()) });
    }
}

/// Counting state for the IDF pass: rows seen, and where to stop.
struct DfCount {
    seen: i64,
    cap: i64,
}

unsafe extern "C" fn count_row(
    _api: *const ffi::Fts5ExtensionApi,
    _fts: *mut ffi::Fts5Context,
    user: *mut c_void,
) -> c_int {
    // SAFETY: `user` is the `&mut DfCount` passed to `xQueryPhrase` below, alive during
    // the call.
    let count = unsafe { &mut *user.cast::<DfCount>() };
    count.seen += 1;
    // SQLITE_DONE ends the scan early and makes xQueryPhrase return SQLITE_OK.
    if count.seen >= count.cap { ffi::SQLITE_DONE } else { ffi::SQLITE_OK }
}

/// Longer queries (pasted text) weigh all phrases alike rather than scan for each.
const MAX_IDF_PHRASES: c_int = 16;

/// A phrase in at least this share of the rows gets the same (low) IDF; counting stops
/// there, so a very common word costs a fraction of a scan.
const DF_CAP_SHARE: f64 = 0.125;

/// The per-query data, computed and stored on first use.
///
/// SAFETY: `api` and `fts` are the pointers FTS5 passed to the auxiliary function.
/// `prefix_phrase`: the phrase matched as a prefix (or -1). Counting its rows would
/// merge the doclists of every word it expands to once more; it gets the highest IDF of
/// the other phrases instead (the word being typed is usually the specific one).
unsafe fn query_data(
    api: &ffi::Fts5ExtensionApi,
    fts: *mut ffi::Fts5Context,
    prefix_phrase: c_int,
) -> Result<*const QueryData, c_int> {
    let (Some(get_aux), Some(set_aux), Some(row_count), Some(total_size), Some(phrase_count), Some(query_phrase)) =
        (api.xGetAuxdata, api.xSetAuxdata, api.xRowCount, api.xColumnTotalSize, api.xPhraseCount, api.xQueryPhrase)
    else {
        return Err(ffi::SQLITE_MISUSE);
    };
    unsafe {
        let existing = get_aux(fts, 0);
        if !existing.is_null() {
            return Ok(existing.cast::<QueryData>());
        }
        let mut rows: i64 = 0;
        let rc = row_count(fts, &mut rows);
        if rc != ffi::SQLITE_OK {
            return Err(rc);
        }
        let mut name_tokens: i64 = 0;
        let rc = total_size(fts, 0, &mut name_tokens);
        if rc != ffi::SQLITE_OK {
            return Err(rc);
        }
        let n = rows.max(1) as f64;
        let avg_name_len = (name_tokens as f64 / n).max(1.0);
        let phrases = phrase_count(fts).max(0);
        let mut idf = vec![1.0; usize::try_from(phrases).unwrap_or(0)];
        if phrases > 1 && phrases <= MAX_IDF_PHRASES {
            for (p, slot) in idf.iter_mut().enumerate() {
                if p as c_int == prefix_phrase {
                    continue;
                }
                let mut count = DfCount { seen: 0, cap: ((n * DF_CAP_SHARE) as i64).max(1) };
                let rc = query_phrase(fts, p as c_int, (&mut count as *mut DfCount).cast::<c_void>(), Some(count_row));
                if rc != ffi::SQLITE_OK {
                    return Err(rc);
                }
                let df = count.seen as f64;
                // Smoothed, always positive (Lucene's form).
                *slot = (1.0 + (n - df + 0.5) / (df + 0.5)).ln().max(1e-6);
            }
            if let Some(p) = usize::try_from(prefix_phrase).ok().filter(|p| *p < idf.len()) {
                let others = idf.iter().enumerate().filter(|(q, _)| *q != p).map(|(_, v)| *v);
                idf[p] = others.fold(1e-6, f64::max);
            }
        }
        let data = Box::into_raw(Box::new(QueryData { idf, avg_name_len }));
        let rc = set_aux(fts, data.cast::<c_void>(), Some(free_query_data));
        if rc != ffi::SQLITE_OK {
            // On failure FTS5 has already called the destructor.
            return Err(rc);
        }
        Ok(data)
    }
}

fn sat(tf: f64, norm: f64) -> f64 {
    tf * (K1 + 1.0) / (tf + K1 * norm)
}

/// SAFETY: called by FTS5 with valid pointers, on a row of a full-text query.
///
/// Runs once per matching row (100k times for a common word): plain loops, no
/// allocation.
unsafe fn score(api: &ffi::Fts5ExtensionApi, fts: *mut ffi::Fts5Context, prefix_phrase: c_int) -> Result<f64, c_int> {
    let (Some(phrase_first), Some(phrase_next)) = (api.xPhraseFirst, api.xPhraseNext) else {
        return Err(ffi::SQLITE_MISUSE);
    };
    unsafe {
        let data = &*query_data(api, fts, prefix_phrase)?;
        let Some(rowid_of) = api.xRowid else {
            return Err(ffi::SQLITE_MISUSE);
        };
        let name_len = (super::write::name_tokens_of(rowid_of(fts)) as f64).max(1.0);
        let name_norm = 1.0 - B_NAME + B_NAME * name_len / data.avg_name_len;
        let mut total = 0.0;
        let mut p = 0;
        while p < data.idf.len() {
            let mut tf = [0u32; 5];
            let mut starts_name = false;
            let mut iter = ffi::Fts5PhraseIter { a: ptr::null(), b: ptr::null() };
            let (mut col, mut off): (c_int, c_int) = (0, 0);
            let rc = phrase_first(fts, p as c_int, &mut iter, &mut col, &mut off);
            if rc != ffi::SQLITE_OK {
                return Err(rc);
            }
            while col >= 0 {
                if col < 5 {
                    tf[col as usize] += 1;
                }
                starts_name |= col == 0 && off == 0;
                if col == 4 && tf[4] >= MAX_CONTENT_TF {
                    break;
                }
                phrase_next(fts, &mut iter, &mut col, &mut off);
            }
            let mut s = 0.0;
            if tf[0] > 0 {
                s += WEIGHTS[0] * sat(f64::from(tf[0]), name_norm);
            }
            let mut c = 1;
            while c < 5 {
                if tf[c] > 0 {
                    s += WEIGHTS[c] * sat(f64::from(tf[c]), 1.0);
                }
                c += 1;
            }
            if starts_name {
                s += NAME_START_BONUS;
            }
            total += data.idf[p] * s;
            p += 1;
        }
        Ok(total)
    }
}

unsafe extern "C" fn bpv_rank(
    api: *const ffi::Fts5ExtensionApi,
    fts: *mut ffi::Fts5Context,
    ctx: *mut ffi::sqlite3_context,
    n_args: c_int,
    args: *mut *mut ffi::sqlite3_value,
) {
    // SAFETY: FTS5 passes a valid API table, context and result context.
    unsafe {
        let Some(api) = api.as_ref() else {
            ffi::sqlite3_result_error_code(ctx, ffi::SQLITE_MISUSE);
            return;
        };
        if let Some(rowid_of) = api.xRowid
            && excluded(rowid_of(fts))
        {
            ffi::sqlite3_result_double(ctx, EXCLUDED);
            return;
        }
        // Optional argument: the phrase matched as a prefix (see `query_data`).
        let prefix_phrase = if n_args >= 1 && !args.is_null() { ffi::sqlite3_value_int(*args) } else { -1 };
        match score(api, fts, prefix_phrase) {
            Ok(s) => {
                RANKED.with(|c| c.set(c.get() + 1));
                ffi::sqlite3_result_double(ctx, s)
            }
            Err(rc) => ffi::sqlite3_result_error_code(ctx, rc),
        }
    }
}

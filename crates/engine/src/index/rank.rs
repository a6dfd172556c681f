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
//! Each column saturates on its own (a BM25F-like shape), so the column weights make
//! tiers: one mention in the name (20) beats any number in the tags' … content's
//! saturated maxima below it (tags 10·2.2 is the exception only for a tag repeated
//! many times). Length normalisation (`norm`, b = 0.5) applies to the name only — the
//! column users judge a result by — and its size is read only for rows whose name
//! matched. A phrase that starts the name gets a small bonus. The IDF pass (one scan per
//! phrase) is skipped for single-phrase queries, where it cannot change the order.
//!
//! Higher is better; always positive for a match.

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

unsafe extern "C" fn count_row(_api: *const ffi::Fts5ExtensionApi, _fts: *mut ffi::Fts5Context, user: *mut c_void) -> c_int {
    // SAFETY: `user` is the `&mut i64` passed to `xQueryPhrase` below, alive during
    // the call.
    unsafe { *user.cast::<i64>() += 1 };
    ffi::SQLITE_OK
}

/// The per-query data, computed and stored on first use.
///
/// SAFETY: `api` and `fts` are the pointers FTS5 passed to the auxiliary function.
unsafe fn query_data(api: &ffi::Fts5ExtensionApi, fts: *mut ffi::Fts5Context) -> Result<*const QueryData, c_int> {
    let (Some(get_aux), Some(set_aux), Some(row_count), Some(total_size), Some(phrase_count), Some(query_phrase)) = (
        api.xGetAuxdata,
        api.xSetAuxdata,
        api.xRowCount,
        api.xColumnTotalSize,
        api.xPhraseCount,
        api.xQueryPhrase,
    ) else {
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
        if phrases > 1 {
            for (p, slot) in idf.iter_mut().enumerate() {
                let mut hits: i64 = 0;
                let rc = query_phrase(fts, p as c_int, (&mut hits as *mut i64).cast::<c_void>(), Some(count_row));
                if rc != ffi::SQLITE_OK {
                    return Err(rc);
                }
                let df = hits as f64;
                // Smoothed, always positive (Lucene's form).
                *slot = (1.0 + (n - df + 0.5) / (df + 0.5)).ln().max(1e-6);
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
unsafe fn score(api: &ffi::Fts5ExtensionApi, fts: *mut ffi::Fts5Context) -> Result<f64, c_int> {
    let (Some(phrase_first), Some(phrase_next), Some(column_size)) =
        (api.xPhraseFirst, api.xPhraseNext, api.xColumnSize)
    else {
        return Err(ffi::SQLITE_MISUSE);
    };
    unsafe {
        let data = &*query_data(api, fts)?;
        let mut name_norm = 0.0;
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
                phrase_next(fts, &mut iter, &mut col, &mut off);
            }
            let mut s = 0.0;
            if tf[0] > 0 {
                if name_norm == 0.0 {
                    let mut tokens: c_int = 0;
                    let rc = column_size(fts, 0, &mut tokens);
                    if rc != ffi::SQLITE_OK {
                        return Err(rc);
                    }
                    name_norm = 1.0 - B_NAME + B_NAME * f64::from(tokens.max(1)) / data.avg_name_len;
                }
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
    _n: c_int,
    _args: *mut *mut ffi::sqlite3_value,
) {
    // SAFETY: FTS5 passes a valid API table, context and result context.
    unsafe {
        let Some(api) = api.as_ref() else {
            ffi::sqlite3_result_error_code(ctx, ffi::SQLITE_MISUSE);
            return;
        };
        match score(api, fts) {
            Ok(s) => ffi::sqlite3_result_double(ctx, s),
            Err(rc) => ffi::sqlite3_result_error_code(ctx, rc),
        }
    }
}

//! The global allocator of `bpv`, `bpv-bench` and the app: mimalloc, with freed memory
//! given back to the OS sooner than its default.
//!
//! Each binary declares `#[global_allocator] static GLOBAL: bpv_alloc::MiMalloc =
//! bpv_alloc::MiMalloc;` and calls [`tune`] first thing in `main`.

use std::ffi::{c_int, c_long};

pub use mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc v3's `mimalloc.h` (libmimalloc-sys 0.1.49); the
/// test below fails if a mimalloc update moves it.
const MI_OPTION_PURGE_DELAY: c_int = 15;
/// Milliseconds before freed memory is returned. mimalloc v3 waits 1000 ms: a 100k-file
/// backup then peaked at 165–180 MB RSS for ~70 MB in use; with 10 ms it peaks at
/// ~135 MB for about the same time (docs/BENCHMARKS.md, "Backup and restore").
const PURGE_DELAY_MS: c_long = 10;

unsafe extern "C" {
    fn mi_option_set(option: c_int, value: c_long);
    fn mi_option_get(option: c_int) -> c_long;
}

/// Apply the settings above, unless the user set `MIMALLOC_PURGE_DELAY` (theirs wins).
pub fn tune() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: setting an option is a plain store in mimalloc's option table, valid at any time.
        unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
    }
}

/// The purge delay in effect (for tests and diagnostics).
pub fn purge_delay_ms() -> c_long {
    // SAFETY: reading an option is a plain load from mimalloc's option table.
    unsafe { mi_option_get(MI_OPTION_PURGE_DELAY) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_option_number_is_mimallocs_purge_delay() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        // mimalloc v3's default purge delay is 1000 ms: another option at this number
        // would have another default.
        assert_eq!(purge_delay_ms(), 1000, "option {MI_OPTION_PURGE_DELAY} is not mimalloc's purge_delay");
        tune();
        assert_eq!(purge_delay_ms(), PURGE_DELAY_MS);
    }
}

//! Import and export (VISION.md, "transfer"): how blueprints travel between people.
//!
//! **Import** is two steps so a person (or the app's report view) can look before
//! anything is written:
//!
//! 1. [`Library::import_plan`](crate::library::Library::import_plan) — the dry run. Every
//!    source (blueprint files, JSON blueprints, folders, `.zip` bundles) is read — archives
//!    entry by entry through a size-capped reader, never extracted — and every item is
//!    classified: `new`, `identical`, `conflict`, `invalid` or `refused`. Nothing is written.
//! 2. [`Library::import_apply`](crate::library::Library::import_apply) — applies the plan
//!    with a decision per conflict (skip / rename / overwrite, for all or per item). All the
//!    files are staged durably and moved in with one journalled, all-or-nothing batch, so a
//!    failure, a crash or a cancel leaves the library as it was.
//!
//! **Export** writes one or many blueprints (YAML + companion) to a folder, or to a `.zip`
//! bundle with a `manifest.json` (format version, paths, ids, SHA-256 hashes, sizes); a
//! bundle imports back byte for byte. A secret scan runs first ([`secrets`]).

pub mod bundle;
pub mod export;
#[doc(hidden)]
pub mod fuzz;
pub mod import;
pub mod jsonyaml;
pub mod secrets;
mod source;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub use bundle::{MANIFEST_FORMAT, MANIFEST_NAME, MANIFEST_VERSION, Manifest, ManifestEntry};
pub use export::{ExportOptions, ExportReport};
pub use import::{Class, Decision, ImportOptions, ImportPlan, ImportReport, OnConflict, PlanItem, SourceError};
pub use secrets::SecretWarning;

/// A cancel token: set it (from any thread) and the running import or export stops at
/// the next item, leaving the library (or the export target) as it was.
pub type CancelToken = Arc<AtomicBool>;

/// One progress report: `phase` is `"reading"`, `"checking"`, `"writing"` or
/// `"exporting"`; `done` of `total` items (total may grow while sources are read).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct ProgressEvent {
    pub phase: &'static str,
    pub done: usize,
    pub total: usize,
}

/// Progress callback; called often, keep it cheap.
pub type Progress<'a> = &'a (dyn Fn(ProgressEvent) + Sync);

/// Limits that stop hostile or accidental monsters (zip bombs, endless trees).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Limits {
    /// Largest single file or archive entry (uncompressed), in bytes.
    pub max_entry_bytes: u64,
    /// Most bytes one import may read in all (uncompressed).
    pub max_total_bytes: u64,
    /// Most entries (files) one archive or folder may hold.
    pub max_entries: usize,
    /// Highest compression ratio (uncompressed / compressed) an entry may declare or reach,
    /// for entries above 64 KiB.
    pub max_ratio: u64,
    /// Deepest folder nesting inside a source.
    pub max_depth: usize,
    /// Largest `.zip` file, in bytes.
    pub max_archive_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_entry_bytes: crate::blueprint::MAX_BLUEPRINT_BYTES as u64,
            max_total_bytes: 1 << 30,
            max_entries: 100_000,
            max_ratio: 100,
            max_depth: 24,
            max_archive_bytes: 2 << 30,
        }
    }
}

/// Entries smaller than this are never judged by their compression ratio (tiny
/// repetitive YAML legitimately compresses very well).
pub const RATIO_FLOOR_BYTES: u64 = 64 * 1024;

pub(crate) fn check_cancel(cancel: &Option<CancelToken>) -> Result<()> {
    match cancel {
        Some(c) if c.load(Ordering::Relaxed) => Err(Error::Cancelled),
        _ => Ok(()),
    }
}

pub(crate) fn report(progress: Option<Progress<'_>>, phase: &'static str, done: usize, total: usize) {
    if let Some(p) = progress {
        p(ProgressEvent { phase, done, total });
    }
}

/// What the library batch writes for an import: one file, bytes as given.
pub(crate) struct RawPut {
    /// Library-relative path (already validated).
    pub rel: String,
    pub data: Vec<u8>,
    pub expect: Expect,
}

/// What the target must be, checked again under the write lock right before staging,
/// so that a change made since the dry run is never overwritten unseen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Expect {
    Absent,
    Hash(String),
    Any,
}

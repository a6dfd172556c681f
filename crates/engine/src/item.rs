//! The item: what the library knows about one blueprint file. Its JSON form is the
//! public shape of `bpv --json` output (VISION.md, "The `bpv` CLI") and of the
//! desktop app's list rows; field names and meanings never change.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Item {
    /// Relative to the library root, `/`-separated.
    pub path: String,
    /// The blueprint's id (the companion's when it has one, else the YAML's), if any.
    pub id: Option<String>,
    /// The blueprint's name; for a file whose YAML has no usable name, its file stem.
    pub name: String,
    pub description: Option<String>,
    /// Tags from the YAML and the companion metadata, deduplicated, in order.
    pub tags: Vec<String>,
    pub author: Option<String>,
    pub version: Option<String>,
    /// RFC 3339, UTC: the later of the blueprint file's and its companion's mtimes.
    pub modified: String,
    /// Size of the blueprint file in bytes.
    pub size: u64,
    /// SHA-256 of the blueprint file's bytes, lowercase hex.
    pub hash: String,
    pub encrypted: bool,
    pub valid: bool,
    /// Why the file is invalid, with its line when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// 1-based line of the error, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_line: Option<u32>,
}

/// Companion metadata path for a blueprint path: `x.blueprint.yaml` → `x.blueprint.meta.json`.
pub fn companion_path(blueprint_path: &str) -> Option<String> {
    blueprint_path.strip_suffix(BLUEPRINT_SUFFIX).map(|stem| format!("{stem}{COMPANION_SUFFIX}"))
}

pub const BLUEPRINT_SUFFIX: &str = ".blueprint.yaml";
pub const COMPANION_SUFFIX: &str = ".blueprint.meta.json";

/// `x.blueprint.yaml` → `x`.
pub fn stem_of(blueprint_path: &str) -> &str {
    let file = blueprint_path.rsplit('/').next().unwrap_or(blueprint_path);
    file.strip_suffix(BLUEPRINT_SUFFIX).unwrap_or(file)
}

//! "Has this file changed since I loaded it?" — for an editor that holds a blueprint
//! open while the watcher reports changes. (Saves are protected anyway: a save with
//! `if_match` refuses with `Conflict` when the file changed.)

use serde::Serialize;

use crate::error::Result;
use crate::library::Library;
use crate::store::content_hash;

/// The answer for one path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConflictCheck {
    pub path: String,
    /// The file differs from the hash the caller had (or was deleted).
    pub changed: bool,
    /// The file was deleted.
    pub deleted: bool,
    /// The file's hash now (absent when deleted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_hash: Option<String>,
}

impl Library {
    /// Whether the blueprint at `path` changed since the caller read it with hash
    /// `since_hash`. Reads the file itself, so it is right even before the watcher
    /// has reported the change.
    pub fn changed_since(&self, path: &str, since_hash: &str) -> Result<ConflictCheck> {
        let current = match self.read(path) {
            Ok(bytes) => Some(content_hash(&bytes)),
            Err(crate::Error::NotFound(_)) => None,
            Err(e) => return Err(e),
        };
        let changed = current.as_deref().is_none_or(|h| !h.eq_ignore_ascii_case(since_hash));
        Ok(ConflictCheck { path: path.to_owned(), changed, deleted: current.is_none(), current_hash: current })
    }
}

//! Rename and move: a blueprint goes to its new path together with its companion and
//! its version history, keeping its id, tags, description and every other companion field.

use std::fs;

use super::{Library, blueprint_key, check_preconditions, read_if_exists, refuse_lookalike};
use crate::error::{Error, Result};
use crate::fsio;
use crate::item::{Item, companion_path};

impl Library {
    /// Rename or move a blueprint to `to` (a library-relative `….blueprint.yaml` path).
    /// `if_match` is the content hash the caller last saw (`conflict` if it changed);
    /// an existing or look-alike target is `already_exists`. The file's bytes are not
    /// rewritten.
    pub fn rename(&self, from: &str, to: &str, if_match: Option<&str>) -> Result<Item> {
        let old = self.existing_rel(from)?;
        let new = blueprint_key(to)?.into_string();
        if old == new {
            return self.item(&old);
        }
        let (old_abs, new_abs) = (self.root.join(&old), self.root.join(&new));
        let lock = self.write_lock()?;
        let current = read_if_exists(&old_abs)?.ok_or_else(|| Error::NotFound(old.clone()))?;
        check_preconditions(&old, Some(&current), if_match, false)?;
        if fs::symlink_metadata(&new_abs).is_ok() {
            return Err(Error::AlreadyExists(format!("{new} already exists; choose another name")));
        }
        // A case-only rename is fine: the look-alike it finds is the blueprint itself.
        let same_folder = old_abs.parent() == new_abs.parent();
        let case_only = same_folder && old.to_lowercase() == new.to_lowercase();
        if !case_only {
            refuse_lookalike(&new_abs, &new)?;
        }
        let mut moves = vec![(old.clone(), new.clone())];
        if let (Some(old_c), Some(new_c)) = (companion_path(&old), companion_path(&new)) {
            // A stray companion at the target would be adopted by the wrong blueprint.
            if fs::symlink_metadata(self.root.join(&new_c)).is_ok() {
                return Err(Error::AlreadyExists(format!(
                    "{new_c} already exists (a metadata file without its blueprint); remove it or choose another name"
                )));
            }
            if self.root.join(&old_c).is_file() {
                moves.push((old_c, new_c));
            }
        }
        if let Some(dir) = new_abs.parent() {
            fsio::ensure_dir(dir)?;
        }
        self.move_journalled(&moves)?;
        self.move_history(&old, &new);
        drop(lock);
        self.refresh(&[old, new.clone()])?;
        self.item(&new)
    }

    /// Earlier versions follow the blueprint. Best effort: history is a convenience, and
    /// the rename itself has already happened.
    fn move_history(&self, old: &str, new: &str) {
        let (from, to) = (self.versions_dir(old), self.versions_dir(new));
        if !from.is_dir() || to.exists() {
            return;
        }
        // The `path` file only labels the folder for people; a stale one misleads nobody.
        if fsio::rename(&from, &to).is_ok() {
            let _ = fsio::write_atomic(&to.join("path"), new.as_bytes());
        }
    }
}

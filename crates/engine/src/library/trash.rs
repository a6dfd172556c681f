//! The trash: `delete` moves a blueprint and its companion here (in the library's
//! private area), from where it can be restored until the trash is emptied.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Library;
use crate::error::{Error, Result};
use crate::fsio;
use crate::item::{Item, companion_path};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct TrashEntry {
    /// Pass to `trash_restore`.
    pub id: String,
    /// Where it was, relative to the library root.
    pub path: String,
    pub name: String,
    /// RFC 3339.
    pub deleted: String,
    pub size: u64,
    pub hash: String,
}

const ENTRY_FILE: &str = "entry.json";
const BLUEPRINT_FILE: &str = "blueprint.yaml";
const COMPANION_FILE: &str = "meta.json";

impl Library {
    fn trash_dir(&self) -> PathBuf {
        self.area.join("trash")
    }

    /// Move a blueprint (and its companion) to the trash.
    pub fn delete(&self, path: &str) -> Result<TrashEntry> {
        let rel = self.existing_rel(path)?;
        let abs = self.root.join(&rel);
        let _lock = self.write_lock()?;
        let meta = fs::symlink_metadata(&abs).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::NotFound(rel.clone()),
            _ => Error::io("cannot read", &abs, e),
        })?;
        if !meta.is_file() {
            return Err(Error::NotFound(rel.clone()));
        }
        let item = self.index.get(&rel)?;
        let now = chrono::Utc::now();
        let id = format!("{}-{:08x}", now.format("%Y%m%dT%H%M%S%3f"), rand::random::<u32>());
        let entry = TrashEntry {
            id: id.clone(),
            path: rel.clone(),
            name: item.as_ref().map(|i| i.name.clone()).unwrap_or_else(|| crate::item::stem_of(&rel).to_owned()),
            deleted: now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            size: meta.len(),
            hash: item.map(|i| i.hash).unwrap_or_default(),
        };
        let dir = self.trash_dir().join(&id);
        let companion = companion_path(&rel).map(|crel| self.root.join(crel)).filter(|c| c.is_file());
        let moved = (|| {
            fsio::ensure_dir(&dir)?;
            let body = serde_json::to_vec_pretty(&entry).map_err(|e| Error::Corrupt(e.to_string()))?;
            fsio::write_atomic(&dir.join(ENTRY_FILE), &body)?;
            if let Some(cabs) = &companion {
                fsio::move_durable(cabs, &dir.join(COMPANION_FILE))?;
            }
            fsio::move_durable(&abs, &dir.join(BLUEPRINT_FILE))
        })();
        if let Err(e) = moved {
            // All or nothing: a blueprint never stays behind without its companion,
            // nor does a half-made trash entry.
            self.undo_trash_move(&dir, &abs, companion.as_deref());
            return Err(e);
        }
        self.index.apply(&[], std::slice::from_ref(&rel))?;
        Ok(entry)
    }

    /// Best effort: put back what a failed `delete` had moved, and drop its trash entry.
    fn undo_trash_move(&self, dir: &Path, abs: &Path, companion: Option<&Path>) {
        let trashed = dir.join(BLUEPRINT_FILE);
        if trashed.is_file() && !abs.exists() {
            let _ = fsio::move_durable(&trashed, abs);
        }
        if let Some(cabs) = companion {
            let trashed = dir.join(COMPANION_FILE);
            if trashed.is_file() && !cabs.exists() {
                let _ = fsio::move_durable(&trashed, cabs);
            }
        }
        if !trashed.exists() {
            let _ = fsio::remove_dir_all(dir);
        }
    }

    /// Everything in the trash, most recently deleted first.
    pub fn trash_list(&self) -> Result<Vec<TrashEntry>> {
        let dir = self.trash_dir();
        let rd = match fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("cannot read trash", &dir, e)),
        };
        let mut out: Vec<TrashEntry> = rd
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join(BLUEPRINT_FILE).is_file())
            .filter_map(|e| fs::read(e.path().join(ENTRY_FILE)).ok())
            .filter_map(|b| serde_json::from_slice(&b).ok())
            .collect();
        out.sort_by(|a: &TrashEntry, b: &TrashEntry| b.id.cmp(&a.id));
        Ok(out)
    }

    /// Put a trashed blueprint back where it was. `what` is a trash id or the
    /// original path (the most recent deletion of that path).
    pub fn trash_restore(&self, what: &str) -> Result<Item> {
        let entries = self.trash_list()?;
        let entry = entries
            .iter()
            .find(|e| e.id == what)
            .or_else(|| entries.iter().find(|e| e.path == what))
            .ok_or_else(|| Error::NotFound(format!("{what} is not in the trash")))?
            .clone();
        let rel = entry.path.clone();
        let abs = self.root.join(&rel);
        let _lock = self.write_lock()?;
        if abs.exists() {
            return Err(Error::AlreadyExists(format!(
                "{rel} exists again; move or rename it before restoring the trashed copy"
            )));
        }
        let dir = self.trash_dir().join(&entry.id);
        let companion = dir.join(COMPANION_FILE);
        let restored_companion = companion_path(&rel).map(|crel| self.root.join(crel)).filter(|_| companion.is_file());
        let moved = (|| {
            if let Some(target) = &restored_companion {
                fsio::move_durable(&companion, target)?;
            }
            fsio::move_durable(&dir.join(BLUEPRINT_FILE), &abs)
        })();
        if let Err(e) = moved {
            // All or nothing: what came back goes back into the trash entry.
            let trashed = dir.join(BLUEPRINT_FILE);
            if abs.is_file() && !trashed.exists() {
                let _ = fsio::move_durable(&abs, &trashed);
            }
            if let Some(target) = restored_companion.filter(|t| t.is_file() && !companion.exists()) {
                let _ = fsio::move_durable(&target, &companion);
            }
            return Err(e);
        }
        let _ = fsio::remove_dir_all(&dir);
        drop(_lock);
        self.refresh(std::slice::from_ref(&rel))?;
        self.item(&rel)
    }

    /// Permanently remove everything in the trash. Returns how many were removed.
    pub fn trash_empty(&self) -> Result<usize> {
        let entries = self.trash_list()?;
        for e in &entries {
            let dir = self.trash_dir().join(&e.id);
            fsio::remove_dir_all(&dir).map_err(|err| Error::io("cannot empty trash at", &dir, err))?;
        }
        Ok(entries.len())
    }
}
